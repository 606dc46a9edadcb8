//! The mount's folders of views: `.snapshots` (the account at any past
//! moment, or one version by id) and `.shared` (other accounts' objects
//! shared with this user). They are answered here, not listed by the
//! store: `.snapshots` and `.shared` at the root, the moments and owners in
//! them, and the names under a version (`.snapshots/v<ID>/PATH`), which are
//! looked up one by one since no listing names what a version id holds.
//! Below a moment or an owner the tree is an ordinary one, listed by that
//! view's store (see `scope`).

use super::attr::{now, Attr};
use super::errno::{errno_of, Errno, FsResult, Op};
use super::filesystem::{lock, Fs, Loc};
use super::inode::ROOT;
use super::listed::ListedAttr;
use super::names;
use super::scope::{Scope, SHARED, SNAPSHOTS};
use super::store::{Store, StoreError};
use std::sync::Arc;

/// Permission bits of the mount's own folders of views: anyone may look,
/// no one may write.
const VIEW_DIR_MODE: u32 = 0o555;

fn view_dir() -> Attr {
    let mut a = Attr::dir(now());
    a.mode = Some(VIEW_DIR_MODE);
    a
}

impl<S: Store> Fs<S> {
    /// Whether `name` under `parent` is answered by the views rather than
    /// by a listing.
    pub(super) fn is_view_lookup(&self, parent: u64, name: &str) -> bool {
        if parent == ROOT {
            return (name == SNAPSHOTS && self.has_history) || (name == SHARED && self.has_sharing);
        }
        // Most lookups are in the present: told without building the path.
        let in_views = match self.inodes().top_name(parent) {
            Some(SNAPSHOTS) => self.has_history,
            Some(SHARED) => self.has_sharing,
            _ => false,
        };
        in_views && self.locate(parent).is_ok_and(|l| by_name(&l.scope))
    }

    /// A lookup the views answer (see `is_view_lookup`): the node, counted
    /// as one the kernel holds.
    pub(super) async fn lookup_view(&self, parent: u64, name: &str) -> FsResult<(u64, Attr)> {
        names::check_component(name)?;
        let attr = if parent == ROOT {
            view_dir()
        } else {
            let at = self.locate(parent)?;
            match &at.scope {
                Scope::Snapshots => {
                    Scope::of_snapshot_name(name)?;
                    view_dir()
                }
                Scope::Sharers => {
                    self.owner_uuid(name).await?;
                    view_dir()
                }
                Scope::Version(_) => {
                    let loc = self.child_loc(parent, name)?;
                    self.version_child(&loc).await?
                }
                _ => return Err(Errno::NOENT),
            }
        };
        let mut t = self.inodes();
        let ino = t.upsert(parent, name, attr.clone());
        if parent != ROOT {
            t.list(parent, name, ino, attr);
        }
        t.remember(ino, 1);
        let attr = t.get(ino).map(|n| n.attr()).ok_or(Errno::NOENT)?;
        Ok((ino, attr))
    }

    /// What `loc` is in a version view: the object, if it has that version;
    /// `ENOENT` for an object name with other versions only; a container,
    /// or a folder on the way to one, otherwise (taken on trust: no listing
    /// can tell which names a version id lies under).
    async fn version_child(&self, loc: &Loc) -> FsResult<Attr> {
        if loc.path.is_empty() {
            return Ok(view_dir());
        }
        let store = self.store_for(loc)?;
        match store.stat(&loc.container, &loc.path).await {
            Ok(meta) => return Ok(Attr::from_object(&meta)),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(errno_of(Op::Lookup, &e)),
        }
        match store.versions(&loc.container, &loc.path).await {
            Some(Ok(history)) if !history.is_empty() => Err(Errno::NOENT),
            Some(Ok(_)) | Some(Err(StoreError::NotFound)) => Ok(view_dir()),
            Some(Err(e)) => Err(errno_of(Op::Lookup, &e)),
            None => Err(Errno::NOENT),
        }
    }

    /// The UUID of the owner shown as `name` under `.shared`: as listed
    /// there, else asked of the identity service.
    async fn owner_uuid(&self, name: &str) -> FsResult<String> {
        if let Some(uuid) = lock(&self.sharers).get(name) {
            return Ok(uuid.clone());
        }
        let found = self.store.user_uuids(&[name.to_string()]).await.map_err(|e| errno_of(Op::Lookup, &e))?;
        let uuid = found.get(name).cloned().ok_or(Errno::NOENT)?;
        lock(&self.sharers).insert(name.to_string(), uuid.clone());
        Ok(uuid)
    }

    /// The entries of a folder the views answer, or None for one the store
    /// lists: the owners sharing with this user (`.shared`), or the names
    /// bound so far (`.snapshots`, a folder under a version: their entries
    /// are whatever was looked up).
    pub(super) async fn view_listing(&self, ino: u64, at: &Loc) -> FsResult<Option<Vec<(Arc<str>, ListedAttr)>>> {
        match &at.scope {
            Scope::Sharers => {
                let owners = match self.store.sharers().await {
                    Some(found) => found.map_err(|e| errno_of(Op::Listing, &e))?,
                    None => Vec::new(),
                };
                let names = self.store.user_names(&owners).await.unwrap_or_default();
                let mut found = Vec::new();
                let mut map = lock(&self.sharers);
                for uuid in owners {
                    // An owner whose name cannot be a file name shows as its UUID.
                    let name = names
                        .get(&uuid)
                        .filter(|n| names::check_component(n).is_ok() && !n.is_empty())
                        .cloned()
                        .unwrap_or_else(|| uuid.clone());
                    if names::check_component(&name).is_err() {
                        continue; // a UUID no file can be named by: not shown
                    }
                    map.insert(name.clone(), uuid);
                    found.push((name.into(), ListedAttr::new(&view_dir())));
                }
                Ok(Some(found))
            }
            scope if by_name(scope) => {
                let t = self.inodes();
                let Some(n) = t.get(ino) else { return Err(Errno::NOENT) };
                let bound = n
                    .children()
                    .filter_map(|(name, k)| Some((Arc::from(name.as_str()), ListedAttr::new(&t.get(*k)?.attr()))))
                    .collect();
                Ok(Some(bound))
            }
            _ => Ok(None),
        }
    }
}

/// Whether names in a folder of this scope are looked up one by one (not
/// listed).
fn by_name(scope: &Scope) -> bool {
    matches!(scope, Scope::Snapshots | Scope::Sharers | Scope::Version(_))
}
