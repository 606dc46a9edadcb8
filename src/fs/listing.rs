//! Folders: their listings, paged from the store and checked before they are
//! shown, and the snapshots open folders are read from.

use super::attr::{Attr, Kind, Time, MAX_LISTED_SIZE};
use super::errno::{During, Errno, FsResult, Op};
use super::filesystem::{lock, Fs, Loc};
use super::inode::{Listed, Listing};
use super::listed::ListedAttr;
use super::names;
use super::store::{Container, Entry, Store, StoreError, StoreResult};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// One entry of an open folder's snapshot: its number, name and kind. Its
/// attributes are read when readdirplus gives it (`Fs::bind_entry`), from
/// its node or the folder's listing, so a snapshot of a large folder holds
/// a few words per entry (the name is shared with the listing).
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub ino: u64,
    pub name: Arc<str>,
    pub kind: Kind,
}

impl<S: Store> Fs<S> {
    /// Lists a directory (from the cache while fresh): a snapshot of its children.
    pub async fn list_dir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        self.ensure_listing(ino).await?;
        let t = self.inodes();
        let Some(listing) = t.get(ino).and_then(|n| n.listing.as_ref()) else { return Ok(Vec::new()) };
        Ok(listing
            .entries
            .iter()
            .filter_map(|(name, e)| {
                // A node bound here knows more than the listing (changes made since).
                match (t.child(ino, name).and_then(|k| t.get(k).map(|n| (k, n))), &e.attr) {
                    (Some((k, n)), _) => Some(DirEntry { ino: k, name: name.clone(), kind: n.kind() }),
                    (None, Some(a)) => Some(DirEntry { ino: e.ino, name: name.clone(), kind: a.kind }),
                    // Lent to a node that is gone: never the case (see `Listed`).
                    (None, None) => None,
                }
            })
            .collect())
    }

    /// Opens a directory: one snapshot of its listing for all the readdir
    /// calls that follow (each returns a page of it).
    pub async fn opendir(&self, ino: u64) -> FsResult<u64> {
        let entries = Arc::new(self.list_dir(ino).await?);
        let fh = self.next_fh();
        lock(&self.dirs).insert(fh, entries);
        Ok(fh)
    }

    /// The snapshot of an open directory (a fresh listing if the handle is unknown).
    pub async fn dir_entries(&self, ino: u64, fh: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        if let Some(e) = lock(&self.dirs).get(&fh) {
            return Ok(e.clone());
        }
        Ok(Arc::new(self.list_dir(ino).await?))
    }

    pub fn releasedir(&self, fh: u64) {
        // The last holder of a snapshot frees it here (the allocator gives
        // freed pages back within a second: see `malloc_conf` in main.rs).
        drop(lock(&self.dirs).remove(&fh));
    }

    pub(super) fn listing_fresh(&self, ino: u64) -> FsResult<bool> {
        let t = self.inodes();
        let node = t.get(ino).ok_or(Errno::NOENT)?;
        if node.kind() != Kind::Dir {
            return Err(Errno::NOTDIR);
        }
        Ok(node.listing.as_ref().is_some_and(|l| l.at.elapsed() < self.opts.dir_ttl))
    }

    /// Lists a directory from the store unless its listing is fresh, keeping
    /// every entry with the attributes the listing carries.
    ///
    /// What a server lists is checked before it is shown: a name a POSIX
    /// directory cannot hold (`names::check_component`; an object name past
    /// `names::check_object_name`), an entry outside the folder asked for, or
    /// a size no object of this mount can have hides that entry only, with a
    /// log line. A folder shows at most the store's `listing_cap` entries; a
    /// listing whose pages do not move forward fails (`EIO`), never loops.
    pub(super) async fn ensure_listing(&self, ino: u64) -> FsResult<()> {
        if self.listing_fresh(ino)? {
            return Ok(());
        }
        let loc = self.locate(ino)?;
        if let Some(found) = self.view_listing(ino, &loc).await? {
            self.keep_listing(ino, found);
            return Ok(());
        }
        let store = self.store_for(&loc)?;
        let (cap, per_page) = (store.listing_cap(), self.opts.listing_page.max(1));
        let mut hidden = HiddenEntries::new(&loc);
        // Each page is checked and made compact as it comes: the listing is
        // never held twice (pages and entries) nor as the store's objects.
        let mut found: Vec<(Arc<str>, ListedAttr)> = Vec::new();
        if loc.is_account() {
            let store = &store;
            let page = |m: Option<String>, n| async move { store.list_containers(m.as_deref(), n).await };
            let listed = walk(
                cap,
                per_page,
                page,
                |c: &Container| c.name.clone(),
                |containers| {
                    for c in containers {
                        match names::check_component(&c.name) {
                            Ok(()) => {
                                let mtime = c.modified.and_then(Time::from_secs_f64).unwrap_or(Time::EPOCH);
                                found.push((c.name.into(), ListedAttr::new(&Attr::dir(mtime))));
                            }
                            Err(e) => hidden.hide(&c.name, name_problem(e)),
                        }
                    }
                },
            )
            .await?;
            hidden.note_cap(listed, cap);
        } else {
            let prefix = if loc.path.is_empty() { String::new() } else { format!("{}/", loc.path) };
            let (store, container, p) = (&store, &loc.container, &prefix);
            let page = |m: Option<String>, n| async move { store.list_page(container, p, m.as_deref(), n).await };
            // Where each name is in `found`: a marker object and a roll-up of
            // the same name follow each other in the store's order, but a
            // hostile server need not keep to it.
            let mut seen: HashMap<Arc<str>, usize> = HashMap::new();
            let listed = walk(
                cap,
                per_page,
                page,
                |e: &Entry| e.name().to_string(),
                |entries| {
                    for e in entries {
                        let (full, attr) = match &e {
                            // `a/b/` is folder `b`; `a/b//` is no folder a POSIX path can name.
                            Entry::Folder(s) => (s.strip_suffix('/').unwrap_or(s), Attr::dir(Time::EPOCH)),
                            Entry::Object(o) => (o.name.as_str(), Attr::from_object(o)),
                        };
                        let name: Arc<str> = match child_name(full, &prefix) {
                            Ok(n) => n.into(),
                            Err(why) => {
                                hidden.hide(full, why);
                                continue;
                            }
                        };
                        if attr.size > MAX_LISTED_SIZE {
                            let why = format!(
                                "its size {} is past the {MAX_LISTED_SIZE} bytes this mount handles",
                                attr.size
                            );
                            hidden.hide(&name, why);
                            continue;
                        }
                        // A marker object and the prefix of the same name are one
                        // folder: the marker's attributes win.
                        match seen.get(&name) {
                            Some(&i) => {
                                if attr.stored {
                                    found[i].1 = ListedAttr::new(&attr);
                                }
                            }
                            None => {
                                seen.insert(name.clone(), found.len());
                                found.push((name, ListedAttr::new(&attr)));
                            }
                        }
                    }
                },
            )
            .await?;
            hidden.note_cap(listed, cap);
        }
        hidden.summarize();
        self.keep_listing(ino, found);
        Ok(())
    }

    /// Keeps what was listed as the folder's listing: entries keep the
    /// numbers they had, bound children learn their new attributes, and
    /// children created here but not committed yet stay.
    fn keep_listing(&self, ino: u64, found: Vec<(Arc<str>, ListedAttr)>) {
        let mut t = self.inodes();
        let previous = t.get_mut(ino).and_then(|n| n.listing.take());
        // A bound child learns what was listed and keeps it (see `Listed`).
        let listed = found.into_iter().map(|(name, attr)| match t.child(ino, &name) {
            Some(bound) => {
                t.learn(bound, attr);
                (name, Listed { ino: bound, attr: None })
            }
            None => {
                let number = t.number_for(ino, &name, attr.link(), previous.as_deref());
                (name, Listed { ino: number, attr: Some(Box::new(attr)) })
            }
        });
        // Built at once from (nearly) sorted names: no insert one by one.
        let mut entries: BTreeMap<Arc<str>, Listed> = listed.collect();
        drop(previous);
        let local: Vec<(Arc<str>, Listed)> = t
            .get(ino)
            .map(|n| {
                n.children()
                    .filter_map(|(name, k)| {
                        t.get(*k).filter(|c| c.open > 0 && c.uncommitted())?;
                        Some((name.as_str().into(), Listed { ino: *k, attr: None }))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (name, e) in local {
            entries.entry(name).or_insert(e);
        }
        if let Some(n) = t.get_mut(ino) {
            n.listing = Some(Box::new(Listing { at: Instant::now(), entries }));
        }
    }
}

/// Pages through a listing: at most `cap` entries, pages of at most
/// `per_page`, each page after the last name of the one before, each given
/// to `take` as it comes. The next page is asked for before this one is
/// taken, so the server makes it while the mount sorts this one in (a
/// folder of 100,000 is ten pages). A page that does not move forward
/// fails the listing rather than looping. Returns how many entries were
/// taken.
async fn walk<T, Fut>(
    cap: usize,
    per_page: usize,
    page: impl Fn(Option<String>, usize) -> Fut,
    name: impl Fn(&T) -> String,
    mut take: impl FnMut(Vec<T>),
) -> FsResult<usize>
where
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let mut count = 0usize;
    let mut marker: Option<String> = None;
    let mut want = cap.min(per_page);
    if want == 0 {
        return Ok(0);
    }
    let mut got = page(None, want).await.during(Op::Listing)?;
    loop {
        let n = got.len();
        got.truncate(want);
        let last = got.last().map(&name);
        count += got.len();
        if let (Some(last), Some(before)) = (&last, &marker) {
            if last <= before {
                let e = StoreError::Invalid(format!(
                    "the listing does not move forward: after {:?} it gave {:?} again or earlier",
                    shorten(before),
                    shorten(last)
                ));
                return Err(e).during(Op::Listing);
            }
        }
        if n < want || count >= cap {
            take(got);
            return Ok(count);
        }
        marker = last;
        want = (cap - count).min(per_page);
        // The next page's request is polled (sent) first, then this page
        // is taken while the server answers.
        let (next, ()) = tokio::join!(page(marker.clone(), want), async { take(got) });
        got = next.during(Op::Listing)?;
    }
}

/// The name under `prefix` that a listed object (or roll-up) `full` shows
/// as, or why it cannot show.
fn child_name<'a>(full: &'a str, prefix: &str) -> Result<&'a str, String> {
    let name = full.strip_prefix(prefix).ok_or_else(|| "it is outside the folder listed".to_string())?;
    names::check_object_name(full).map_err(|_| format!("the object name is past {} bytes", names::MAX_OBJECT_NAME))?;
    names::check_component(name).map_err(name_problem)?;
    Ok(name)
}

fn name_problem(e: Errno) -> String {
    if e == Errno::NAMETOOLONG {
        format!("the name is past {} bytes", names::NAME_MAX)
    } else {
        "no file can have that name (empty, `.`, `..`, or holding `/` or NUL)".to_string()
    }
}

/// Entries of one listing the mount does not show, logged: one line each for
/// the first few, then how many more (a hostile listing cannot flood the log).
struct HiddenEntries {
    folder: String,
    count: usize,
}

impl HiddenEntries {
    const LOGGED: usize = 8;

    fn new(loc: &Loc) -> HiddenEntries {
        let folder = match (loc.container.is_empty(), loc.path.is_empty()) {
            (true, _) => "the account".to_string(),
            (false, true) => loc.container.clone(),
            (false, false) => format!("{}/{}", loc.container, loc.path),
        };
        HiddenEntries { folder: shorten(&folder), count: 0 }
    }

    fn hide(&mut self, name: &str, why: impl std::fmt::Display) {
        self.count += 1;
        if self.count <= Self::LOGGED {
            tracing::warn!("{}: not showing {:?} from the server's listing: {why}", self.folder, shorten(name));
        }
    }

    /// A listing that reached the cap is cut there: say so.
    fn note_cap(&self, listed: usize, cap: usize) {
        if listed >= cap {
            tracing::warn!("{}: the server lists {cap} entries or more; only the first {cap} are shown", self.folder);
        }
    }

    fn summarize(&self) {
        if self.count > Self::LOGGED {
            tracing::warn!("{}: {} more entries of the listing not shown", self.folder, self.count - Self::LOGGED);
        }
    }
}

/// A server's name for a log line: at most 120 characters of it.
pub(super) fn shorten(name: &str) -> String {
    match name.char_indices().nth(120) {
        Some((at, _)) => format!("{}… ({} bytes)", &name[..at], name.len()),
        None => name.to_string(),
    }
}
