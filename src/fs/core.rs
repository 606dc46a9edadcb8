//! The filesystem's logic as plain async methods over the Pithos client:
//! names to objects, attributes from listings, reads through the block cache,
//! writes as dirty blocks committed by hashmap. The FUSE adapter (`fuse.rs`)
//! only translates; everything here can run without a kernel mount.

use super::attr::{
    now, sane_time, Attr, Kind, MAX_LISTED_SIZE, META_GID, META_HOST, META_UID, SYMLINK_MAX, SYMLINK_TYPE,
};
use super::cache::BlockCache;
use super::errno::{Errno, FsResult};
use super::handle::{
    pithos_max_size, plain_keys, BlockRef, DirtySnapshot, OpenFile, PlainVersion, Source, PLAIN_MAX_SIZE,
};
use super::inode::{InodeTable, ROOT};
use super::names;
use super::owners::{Owners, Policy};
use crate::blocks::{self, Algorithm, BlockHash};
use crate::clients::pithos::PithosClient;
use crate::clients::storage::{GetOptions, ListOptions, Listed, ObjectStorage, PutOptions, Written};
use crate::clients::ClientError;
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the mount behaves.
#[derive(Debug, Clone)]
pub struct FsOptions {
    pub read_only: bool,
    /// Mount one container as the root instead of the whole account.
    pub container: Option<String>,
    /// Memory for cached blocks, in bytes.
    pub cache_size: u64,
    pub attr_ttl: Duration,
    pub dir_ttl: Duration,
    /// Who owns what: the account owner's uid/gid and which recorded owners count.
    pub owners: Owners,
    pub file_mode: u32,
    pub dir_mode: u32,
    /// Dirty bytes of one open file kept in memory before full blocks are sent early.
    pub dirty_limit: u64,
    /// Largest prefetch window, in blocks.
    pub max_prefetch: usize,
    /// Where dirty blocks beyond `dirty_limit` are spilled (unnamed files).
    pub spill_dir: PathBuf,
    /// Show setuid/setgid bits the server records (`--suid`; the mount is
    /// then not `nosuid` either). Off: they are masked.
    pub suid: bool,
}

/// User xattrs one file may carry (`ENOSPC` past it, as a full xattr block
/// on ext4): Pithos keeps at most 32 metadata keys on an object, and the
/// POSIX attributes take up to 5 (mode, uid, gid, host, mtime).
pub const MAX_XATTRS: usize = 27;

/// Blocks sent ahead of a commit at once (4 MiB each on Pithos).
const EARLY_UPLOADS: usize = 16;

/// Block size for plain storage, which has none of its own.
pub const PLAIN_BLOCK_SIZE: u64 = 4 << 20;

/// The default directory for spilled dirty blocks and the disk cache:
/// `$XDG_CACHE_HOME/pithosfs` (not /tmp, which may be memory).
pub fn default_cache_dir() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("pithosfs")
}

impl Default for FsOptions {
    fn default() -> FsOptions {
        FsOptions {
            read_only: false,
            container: None,
            cache_size: 512 << 20,
            attr_ttl: Duration::from_secs(1),
            dir_ttl: Duration::from_secs(1),
            owners: Owners::current(Policy::Local),
            file_mode: 0o644,
            dir_mode: 0o755,
            dirty_limit: 64 << 20,
            max_prefetch: 8,
            spill_dir: default_cache_dir().join("spill"),
            suid: false,
        }
    }
}

/// Where a node lives remotely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub container: String,
    /// Object name in the container ("" for the container itself).
    pub path: String,
}

impl Loc {
    fn child(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.path)
        }
    }
}

pub struct Fs {
    pithos: PithosClient,
    /// Plain OpenStack storage (Swift): no hashmaps, blocks are byte ranges,
    /// writes send whole objects, renames copy then delete.
    plain: bool,
    pub opts: FsOptions,
    inodes: Mutex<InodeTable>,
    pub cache: Arc<BlockCache>,
    handles: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<OpenFile>>>>,
    /// Open directories: the listing taken at opendir, served by offset.
    dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    next_fh: AtomicU64,
    /// Versions last opened per inode: an unchanged file keeps the kernel's page cache.
    opened_versions: Mutex<HashMap<u64, String>>,
    block_params: Mutex<HashMap<String, (u64, Algorithm)>>,
    /// Permits for blocks sent ahead of a commit (each holds a block in memory).
    early_uploads: Arc<tokio::sync::Semaphore>,
}

/// One directory entry for readdir.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub ino: u64,
    pub name: String,
    pub attr: Attr,
}

impl Fs {
    /// A filesystem over `pithos` whose blocks go through `cache`.
    pub fn with_cache(pithos: PithosClient, opts: FsOptions, cache: BlockCache) -> Fs {
        Fs {
            cache: Arc::new(cache),
            plain: !pithos.http().speaks_pithos(),
            pithos,
            inodes: Mutex::new(InodeTable::new(Attr::dir(now()))),
            opts,
            handles: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            opened_versions: Mutex::new(HashMap::new()),
            block_params: Mutex::new(HashMap::new()),
            early_uploads: Arc::new(tokio::sync::Semaphore::new(EARLY_UPLOADS)),
        }
    }

    pub fn client(&self) -> &PithosClient {
        &self.pithos
    }

    fn inodes(&self) -> std::sync::MutexGuard<'_, InodeTable> {
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn in_container(&self, c: &str) -> PithosClient {
        self.pithos.with_container(c)
    }

    /// The container and object path of a node.
    pub fn locate(&self, ino: u64) -> FsResult<Loc> {
        let comps = self.inodes().components(ino).ok_or(Errno::NOENT)?;
        Ok(match &self.opts.container {
            Some(c) => Loc { container: c.clone(), path: comps.join("/") },
            None => match comps.split_first() {
                None => Loc { container: String::new(), path: String::new() },
                Some((c, rest)) => Loc { container: c.clone(), path: rest.join("/") },
            },
        })
    }

    /// Where `name` under `parent` is (or would be) on the server, or
    /// `ENAMETOOLONG` when it cannot be: a component over `NAME_MAX`, or an
    /// object name past the server's limit. Such a name cannot exist, so
    /// every call answers this, never `ENOENT`.
    fn child_loc(&self, parent: u64, name: &str) -> FsResult<Loc> {
        names::check_component(name)?;
        if self.is_account_root(parent) {
            return Ok(Loc { container: name.to_string(), path: String::new() });
        }
        let at = self.locate(parent)?;
        let path = at.child(name);
        names::check_object_name(&path)?;
        Ok(Loc { container: at.container, path })
    }

    /// Whether `ino` is the account root (its children are containers).
    fn is_account_root(&self, ino: u64) -> bool {
        ino == ROOT && self.opts.container.is_none()
    }

    fn check_writable(&self) -> FsResult<()> {
        if self.opts.read_only {
            Err(Errno::ROFS)
        } else {
            Ok(())
        }
    }

    pub fn attr_of(&self, ino: u64) -> FsResult<Attr> {
        self.inodes().get(ino).map(|n| n.attr.clone()).ok_or(Errno::NOENT)
    }

    async fn block_params(&self, container: &str) -> FsResult<(u64, Algorithm)> {
        if self.plain {
            return Ok((PLAIN_BLOCK_SIZE, Algorithm::Sha256));
        }
        if let Some(p) = self.block_params.lock().unwrap_or_else(|p| p.into_inner()).get(container) {
            return Ok(*p);
        }
        let p = self.in_container(container).block_info().await?;
        self.block_params.lock().unwrap_or_else(|p| p.into_inner()).insert(container.to_string(), p);
        Ok(p)
    }

    /// The largest file the server can hold in `container` (`EFBIG` past it):
    /// `MAX_BLOCKS_PER_OBJECT` blocks on Pithos (1 TiB at 4 MiB), Swift's
    /// largest single object on plain storage (the mount writes one PUT).
    async fn max_file_size(&self, container: &str) -> FsResult<u64> {
        if self.plain {
            return Ok(PLAIN_MAX_SIZE);
        }
        let (bs, _) = self.block_params(container).await?;
        Ok(pithos_max_size(bs))
    }

    // ---------- names and attributes ----------

    /// Lists a directory (from the cache while fresh): a snapshot of its children.
    pub async fn list_dir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        self.ensure_listing(ino).await?;
        let t = self.inodes();
        let kids = t.get(ino).and_then(|n| n.listing.as_ref().map(|(_, k)| k.clone())).unwrap_or_default();
        Ok(kids
            .iter()
            .filter_map(|k| t.get(*k).map(|n| DirEntry { ino: *k, name: n.name.clone(), attr: n.attr.clone() }))
            .collect())
    }

    /// Opens a directory: one snapshot of its listing for all the readdir
    /// calls that follow (each returns a page of it).
    pub async fn opendir(&self, ino: u64) -> FsResult<u64> {
        let entries = Arc::new(self.list_dir(ino).await?);
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, entries);
        Ok(fh)
    }

    /// The snapshot of an open directory (a fresh listing if the handle is unknown).
    pub async fn dir_entries(&self, ino: u64, fh: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        if let Some(e) = self.dirs.lock().unwrap_or_else(|p| p.into_inner()).get(&fh) {
            return Ok(e.clone());
        }
        Ok(Arc::new(self.list_dir(ino).await?))
    }

    pub fn releasedir(&self, fh: u64) {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
    }

    fn listing_fresh(&self, ino: u64) -> FsResult<bool> {
        let t = self.inodes();
        let node = t.get(ino).ok_or(Errno::NOENT)?;
        if node.attr.kind != Kind::Dir {
            return Err(Errno::NOTDIR);
        }
        Ok(node.listing.as_ref().is_some_and(|(at, _)| at.elapsed() < self.opts.dir_ttl))
    }

    /// Lists a directory from the server unless its listing is fresh, binding
    /// every child with the attributes the listing carries.
    ///
    /// What a server lists is checked before it is shown: a name a POSIX
    /// directory cannot hold (`names::check_component`; an object name past
    /// `names::check_object_name`), an entry outside the folder asked for, or
    /// a size no object of this mount can have hides that entry only, with a
    /// log line. A folder shows at most `max_listing` entries (the client
    /// library's cap, which also refuses a listing that does not move forward).
    async fn ensure_listing(&self, ino: u64) -> FsResult<()> {
        if self.listing_fresh(ino)? {
            return Ok(());
        }
        let loc = self.locate(ino)?;
        let cap = self.pithos.http().options().max_listing;
        let listed = ListOptions { limit: Some(cap), ..Default::default() };
        let mut hidden = HiddenEntries::new(&loc);
        let mut found: Vec<(String, Attr)> = Vec::new();
        if self.is_account_root(ino) {
            let containers = self.pithos.list_containers_with(&listed).await?;
            hidden.note_cap(containers.len(), cap);
            for c in containers {
                match names::check_component(&c.name) {
                    Ok(()) => found.push((c.name, Attr::dir(c.last_modified.and_then(sane_time).unwrap_or(0.0)))),
                    Err(e) => hidden.hide(&c.name, name_problem(e)),
                }
            }
        } else {
            let prefix = if loc.path.is_empty() { String::new() } else { format!("{}/", loc.path) };
            let entries = self
                .in_container(&loc.container)
                .list_objects(&ListOptions {
                    prefix: (!prefix.is_empty()).then(|| prefix.clone()),
                    delimiter: Some("/".into()),
                    ..listed
                })
                .await?;
            hidden.note_cap(entries.len(), cap);
            let mut seen: HashMap<String, usize> = HashMap::new();
            for e in entries {
                let (full, attr) = match &e {
                    // `a/b/` is folder `b`; `a/b//` is no folder a POSIX path can name.
                    Listed::Subdir(s) => (s.strip_suffix('/').unwrap_or(s), Attr::dir(0.0)),
                    Listed::Object(o) => (o.name.as_str(), Attr::from_entry(o)),
                };
                let name = match child_name(full, &prefix) {
                    Ok(n) => n.to_string(),
                    Err(why) => {
                        hidden.hide(full, why);
                        continue;
                    }
                };
                // A marker object and the prefix of the same name are one folder:
                // the marker's attributes win.
                match seen.get(&name) {
                    Some(&i) => {
                        if attr.stored {
                            found[i].1 = attr;
                        }
                    }
                    None => {
                        seen.insert(name.clone(), found.len());
                        found.push((name, attr));
                    }
                }
            }
            if self.plain {
                self.plain_attrs(ino, &loc.container, &prefix, &mut found).await?;
            }
        }
        found.retain(|(name, attr)| {
            let fits = attr.size <= MAX_LISTED_SIZE;
            if !fits {
                hidden.hide(
                    name,
                    format!("its size {} is past the {MAX_LISTED_SIZE} bytes this mount handles", attr.size),
                );
            }
            fits
        });
        hidden.summarize();
        let mut t = self.inodes();
        let mut kids = Vec::with_capacity(found.len());
        let previous: Vec<u64> =
            t.get(ino).and_then(|n| n.listing.as_ref().map(|(_, k)| k.clone())).unwrap_or_default();
        for (name, attr) in found {
            kids.push(t.upsert(ino, &name, attr));
        }
        // Children created here but not committed yet stay.
        for k in previous {
            let local = t.get(k).is_some_and(|n| n.open > 0 && (n.pending.is_some() || n.unsent));
            if local && !kids.contains(&k) {
                kids.push(k);
            }
        }
        if let Some(n) = t.get_mut(ino) {
            n.listing = Some((Instant::now(), kids));
        }
        Ok(())
    }

    /// Plain storage lists no user metadata: modes, owners and mtimes come
    /// from a HEAD of each object, once per version (an object whose ETag and
    /// size are unchanged keeps what was read before).
    async fn plain_attrs(
        &self,
        parent: u64,
        container: &str,
        prefix: &str,
        found: &mut [(String, Attr)],
    ) -> FsResult<()> {
        let mut need = Vec::new();
        {
            let t = self.inodes();
            for (i, (name, attr)) in found.iter_mut().enumerate() {
                if !attr.stored {
                    continue; // a folder that is only a prefix: nothing to read
                }
                match t.child(parent, name).and_then(|k| t.get(k)) {
                    Some(n) if n.attr.stored && n.attr.hash == attr.hash && n.attr.size == attr.size => {
                        *attr = n.attr.clone();
                    }
                    _ => need.push((i, format!("{prefix}{name}"))),
                }
            }
        }
        let pc = self.in_container(container);
        let heads: Vec<_> = stream::iter(need)
            .map(|(i, path)| {
                let pc = pc.clone();
                async move { (i, pc.get_object_info(&path).await) }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (i, head) in heads {
            match head {
                Ok(info) => found[i].1 = Attr::from_info(&info),
                Err(e) if e.status == 404 => {} // gone since the listing
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A lookup answered from a fresh listing without waiting on anything
    /// (None: it needs the network, call `lookup`).
    pub fn cached_lookup(&self, parent: u64, name: &str) -> Option<FsResult<(u64, Attr)>> {
        if let Err(e) = self.child_loc(parent, name) {
            return Some(Err(e));
        }
        match self.listing_fresh(parent) {
            Ok(true) => Some(self.lookup_listed(parent, name)),
            _ => None,
        }
    }

    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<(u64, Attr)> {
        self.child_loc(parent, name)?;
        self.ensure_listing(parent).await?;
        self.lookup_listed(parent, name)
    }

    fn lookup_listed(&self, parent: u64, name: &str) -> FsResult<(u64, Attr)> {
        let t = self.inodes();
        let ino = t.child(parent, name).ok_or(Errno::NOENT)?;
        // Bound but gone from a fresher listing (deleted remotely): not there.
        let listed = t.get(parent).and_then(|p| p.listing.as_ref()).is_none_or(|(_, kids)| kids.contains(&ino));
        match t.get(ino) {
            Some(n) if listed => Ok((ino, n.attr.clone())),
            _ => Err(Errno::NOENT),
        }
    }

    /// Attributes answered without waiting on anything (None: they are
    /// stale, call `getattr`).
    pub fn cached_attr(&self, ino: u64) -> Option<FsResult<Attr>> {
        let t = self.inodes();
        let Some(n) = t.get(ino) else { return Some(Err(Errno::NOENT)) };
        // Uncommitted changes (or a file created here) are known only here.
        if let Some(size) = n.pending {
            return Some(Ok(Attr { size, ..n.attr.clone() }));
        }
        let local_only = n.open > 0 && n.unsent && n.attr.kind == Kind::File;
        let fresh = local_only || n.attr_at.elapsed() < self.opts.attr_ttl;
        (fresh || !n.attr.stored || ino == ROOT).then(|| Ok(n.attr.clone()))
    }

    pub async fn getattr(&self, ino: u64) -> FsResult<Attr> {
        if let Some(known) = self.cached_attr(ino) {
            return known;
        }
        let attr = self.attr_of(ino)?;
        // A folder once listed is refreshed by listing it again: one request
        // for all its children, rather than a HEAD for each.
        let parent = self.inodes().get(ino).map(|n| n.parent).filter(|p| *p != ino);
        if let Some(p) = parent {
            if self.inodes().get(p).is_some_and(|n| n.listing.is_some()) {
                self.ensure_listing(p).await?;
                let t = self.inodes();
                let still = t.get(p).and_then(|n| n.listing.as_ref()).is_some_and(|(_, kids)| kids.contains(&ino));
                return match t.get(ino) {
                    Some(n) if still => Ok(n.attr.clone()),
                    _ => Err(Errno::NOENT),
                };
            }
        }
        let loc = self.locate(ino)?;
        if loc.path.is_empty() {
            return Ok(attr);
        }
        match self.in_container(&loc.container).get_object_info(&loc.path).await {
            Ok(info) => {
                let a = Attr::from_info(&info);
                if let Some(n) = self.inodes().get_mut(ino) {
                    n.attr = a.clone();
                    n.attr_at = Instant::now();
                }
                Ok(a)
            }
            Err(e) if e.status == 404 && attr.kind == Kind::Dir => Ok(attr),
            Err(e) => Err(e.into()),
        }
    }

    // ---------- open, read, write, commit ----------

    /// Opens a file: one request for its hashmap (and attributes) pins the
    /// version every read of this handle sees. Returns (fh, keep kernel cache).
    pub async fn open(&self, ino: u64, write: bool, truncate: bool) -> FsResult<(u64, bool)> {
        if write {
            self.check_writable()?;
        }
        let attr = self.attr_of(ino)?;
        match attr.kind {
            Kind::Dir => return Err(Errno::ISDIR),
            Kind::Symlink => return Err(Errno::INVAL),
            Kind::File => {}
        }
        let loc = self.locate(ino)?;
        let pc = self.in_container(&loc.container);
        let opened = if self.plain {
            // Plain storage: a HEAD pins the ETag every ranged read checks.
            pc.get_object_info(&loc.path).await.and_then(|info| {
                // Its blocks are ranges with a key each: a size the server
                // made up must not make millions of them.
                let most = blocks::MAX_BLOCKS_PER_OBJECT * PLAIN_BLOCK_SIZE;
                if info.bytes > most {
                    return Err(ClientError::new(format!(
                        "{}: the server reports {} bytes, more than the {most} this mount reads of one object",
                        loc.path, info.bytes
                    )));
                }
                let etag = info.etag.clone();
                let f = OpenFile::opened_plain(ino, &etag, info.bytes, PLAIN_BLOCK_SIZE, write);
                Ok((f, Attr::from_info(&info), etag))
            })
        } else {
            pc.get_object_hashmap(&loc.path, None).await.map(|hm| {
                let attr = Attr { size: hm.bytes, ..Attr::from_info(&hm.info) };
                let version = hm.version.clone().unwrap_or_default();
                (OpenFile::opened(ino, hm, write), attr, version)
            })
        };
        let (file, keep) = match opened {
            Ok((file, fresh_attr, version)) => {
                let keep = {
                    let mut ov = self.opened_versions.lock().unwrap_or_else(|p| p.into_inner());
                    ov.insert(ino, version.clone()).is_some_and(|v| v == version)
                };
                if let Some(n) = self.inodes().get_mut(ino) {
                    n.attr = fresh_attr;
                    n.attr_at = Instant::now();
                }
                (file, keep && !truncate)
            }
            // Created here and not committed yet: nothing remote to pin.
            Err(e) if e.status == 404 && self.pending_new(ino) => {
                let (bs, alg) = self.block_params(&loc.container).await?;
                (OpenFile::created(ino, bs, alg, self.max_file_size(&loc.container).await?), false)
            }
            Err(e) => return Err(e.into()),
        };
        let mut file = file;
        if truncate && write {
            file.set_size(0)?;
        }
        if file.changed {
            self.note_pending(ino, Some(file.size));
        }
        self.note_open(ino, 1);
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, Arc::new(tokio::sync::Mutex::new(file)));
        Ok((fh, keep))
    }

    /// Whether an uncommitted file created here backs `ino`.
    fn pending_new(&self, ino: u64) -> bool {
        self.inodes().get(ino).is_some_and(|n| n.open > 0 && n.unsent)
    }

    fn note_open(&self, ino: u64, delta: i32) {
        if let Some(n) = self.inodes().get_mut(ino) {
            n.open = n.open.saturating_add_signed(delta);
        }
    }

    /// Records the size of changes not committed yet (None: all committed).
    fn note_pending(&self, ino: u64, size: Option<u64>) {
        if let Some(n) = self.inodes().get_mut(ino) {
            n.pending = size;
            if size.is_some() {
                n.attr_at = Instant::now();
            }
        }
    }

    fn handle(&self, fh: u64) -> FsResult<Arc<tokio::sync::Mutex<OpenFile>>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).get(&fh).cloned().ok_or(Errno::BADF)
    }

    /// Block `i` of the opened version, through the cache; checked against its hash.
    async fn clean_block(&self, f: &OpenFile, i: usize) -> FsResult<Bytes> {
        let r = f.block_ref(i).ok_or(Errno::IO)?;
        self.fetch_block(f.ino, r).await
    }

    async fn fetch_block(&self, ino: u64, r: BlockRef) -> FsResult<Bytes> {
        let len = r.len;
        if r.hash == BlockHash::empty() {
            return Ok(Bytes::from(vec![0u8; len]));
        }
        let loc = self.locate(ino)?;
        let pc = self.in_container(&loc.container);
        let (hash, i) = (r.hash, r.i);
        let data = self
            .cache
            .get_or_fetch(hash, async move {
                let hm = match r.base {
                    Some(Source::Hashmap(hm)) => hm,
                    Some(Source::Pinned(v)) => {
                        // Plain storage: the byte range of this version (If-Match on
                        // its ETag: a changed object fails rather than mixing versions).
                        let start = i as u64 * r.block_size;
                        let end = (start + r.block_size).min(v.size);
                        if end <= start {
                            return Ok((Bytes::new(), true)); // past the version's end: zeros
                        }
                        let o = GetOptions {
                            range: Some((start, end - 1)),
                            if_match: (!v.etag.is_empty()).then(|| v.etag.clone()),
                            ..Default::default()
                        };
                        let (_, data) = pc.get_object(&loc.path, &o).await?;
                        if data.len() as u64 != end - start {
                            tracing::error!("{}: asked bytes {start}-{}, got {}", loc.path, end - 1, data.len());
                            return Err(Errno::IO);
                        }
                        return Ok((data, true));
                    }
                    None => return Err(Errno::IO),
                };
                let data = match pc.fetch_block(&loc.path, &hm, i).await {
                    Ok(d) => d,
                    // Renamed since it was opened: the content is what matters, and the hash checks it.
                    Err(e) if e.status == 404 => {
                        let (start, end) = hm.block_range(i);
                        pc.get_range(&loc.path, start, end - 1, None).await?
                    }
                    Err(e) => return Err(e.into()),
                };
                let ok = tokio::task::spawn_blocking({
                    let data = data.clone();
                    move || blocks::hash_block(r.algorithm, &data) == hash
                })
                .await
                .map_err(|_| Errno::IO)?;
                // Pithos keeps the old hash of a block cut by truncation: such a
                // last block cannot be checked, and must not be cached under it.
                if !ok && !r.is_last {
                    tracing::error!("block {i} of {} does not match its hash", loc.path);
                    return Err(Errno::IO);
                }
                Ok((data, ok))
            })
            .await?;
        // A cached block may be longer than this file's last block (zero padding).
        Ok(if data.len() > len { data.slice(..len) } else { data })
    }

    /// Starts fetching the next blocks of a sequential reader.
    fn prefetch(self: &Arc<Self>, f: &OpenFile, from: usize, count: usize) {
        let end = (from + count).min(f.block_count());
        for i in from..end {
            if f.dirty.contains(i) {
                continue;
            }
            let Some(r) = f.block_ref(i) else { continue };
            if r.hash == BlockHash::empty() || self.cache.get(&r.hash).is_some() {
                continue;
            }
            let (fs, ino) = (self.clone(), f.ino);
            tokio::spawn(async move {
                let _ = fs.fetch_block(ino, r).await;
            });
        }
    }

    /// Notes a read of `offset..end` for the prefetcher: whether it continues
    /// the previous one (the window grows) or jumps (the window closes).
    fn note_read(&self, f: &mut OpenFile, offset: u64, end: u64) -> bool {
        let sequential = offset == f.last_end || offset == 0;
        f.window = if sequential { (f.window * 2).clamp(1, self.opts.max_prefetch) } else { 0 };
        f.last_end = end;
        sequential
    }

    /// A read answered at once from a block in memory (None: it needs `read`).
    /// Most reads of a sequential reader end here, prefetched: no task, no wait.
    /// Must run inside the runtime's context (prefetches are spawned).
    pub fn read_now(self: &Arc<Self>, fh: u64, offset: u64, size: u32) -> Option<Bytes> {
        let h = self.handle(fh).ok()?;
        let mut f = h.try_lock().ok()?;
        let end = offset.saturating_add(size as u64).min(f.size);
        let bs = f.block_size;
        let i = (offset / bs) as usize;
        if offset >= end || ((end - 1) / bs) as usize != i || f.dirty.contains(i) {
            return None;
        }
        let data = self.cache.get(f.hashes.get(i)?)?;
        let (a, b) = ((offset - i as u64 * bs) as usize, (end - i as u64 * bs) as usize);
        if b > data.len() {
            return None;
        }
        if self.note_read(&mut f, offset, end) && f.window > 0 {
            self.prefetch(&f, i + 1, f.window);
        }
        Some(data.slice(a..b))
    }

    pub async fn read(self: &Arc<Self>, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let h = self.handle(fh)?;
        let mut f = h.lock().await;
        if offset >= f.size {
            return Ok(Bytes::new());
        }
        let end = offset.saturating_add(size as u64).min(f.size);
        let bs = f.block_size;
        let sequential = self.note_read(&mut f, offset, end);
        let first = (offset / bs) as usize;
        let last = ((end - 1) / bs) as usize;
        if !sequential && f.dirty.is_empty() && !f.changed {
            // A random reader gets just the bytes it asked for, pinned to its version.
            let all_cached = (first..=last).all(|i| f.hashes.get(i).is_some_and(|h| self.cache.get(h).is_some()));
            if !all_cached {
                let loc = self.locate(f.ino)?;
                let pc = self.in_container(&loc.container);
                let data = match &f.base {
                    Some(Source::Hashmap(hm)) => {
                        pc.get_range(&loc.path, offset, end - 1, hm.version.as_deref()).await?
                    }
                    Some(Source::Pinned(v)) => {
                        let o = GetOptions {
                            range: Some((offset, end - 1)),
                            if_match: (!v.etag.is_empty()).then(|| v.etag.clone()),
                            ..Default::default()
                        };
                        pc.get_object(&loc.path, &o).await?.1
                    }
                    None => Bytes::new(),
                };
                if data.len() as u64 == end - offset {
                    return Ok(data);
                }
            }
        }
        if sequential && f.window > 0 {
            // The next blocks are on their way while this one is served.
            self.prefetch(&f, last + 1, f.window);
        }
        if first == last && !f.dirty.contains(first) {
            // The common case, a read inside one clean block: a slice of the
            // cached block, no copy.
            let data = self.clean_block(&f, first).await?;
            let (a, b) = ((offset - first as u64 * bs) as usize, (end - first as u64 * bs) as usize);
            if b <= data.len() {
                return Ok(data.slice(a..b));
            }
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for i in first..=last {
            let block_start = i as u64 * bs;
            let a = offset.max(block_start) - block_start;
            let b = end.min(block_start + bs) - block_start;
            let fetched;
            let data: &[u8] = match f.dirty.in_memory(i) {
                Some(d) => d,
                None => {
                    fetched = match f.dirty.read(i)? {
                        Some(d) => d,
                        None => self.clean_block(&f, i).await?,
                    };
                    &fetched
                }
            };
            let (a, b) = (a as usize, b as usize);
            if a < data.len() {
                out.extend_from_slice(&data[a..b.min(data.len())]);
            }
            // Zeros past what the block holds (holes, grown files).
            out.resize(out.len() + b.saturating_sub(data.len().max(a)), 0);
        }
        Ok(Bytes::from(out))
    }

    /// Makes block `i` dirty (loading its current content), for changing it.
    async fn make_dirty(&self, f: &mut OpenFile, i: usize) -> FsResult<()> {
        if f.dirty.contains(i) {
            return Ok(());
        }
        let content = if i < f.block_count() { self.clean_block(f, i).await?.to_vec() } else { Vec::new() };
        f.dirty.insert(i, content);
        Ok(())
    }

    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        self.check_writable()?;
        let h = self.handle(fh)?;
        let mut f = h.lock().await;
        if !f.writable {
            return Err(Errno::BADF);
        }
        // Past the largest file the server holds: EFBIG at the limit, and a
        // write that crosses it is cut short there (POSIX's partial write).
        if data.is_empty() {
            return Ok(0);
        }
        let limit = f.max_size.max(f.size);
        if offset >= limit {
            return Err(Errno::FBIG);
        }
        let room = usize::try_from(limit.saturating_sub(offset)).unwrap_or(usize::MAX);
        let data = &data[..data.len().min(room)];
        let bs = f.block_size;
        let end = offset + data.len() as u64; // <= limit: no overflow
        if end > f.size {
            f.set_size(end)?;
        }
        let mut pos = offset;
        while pos < end {
            let i = (pos / bs) as usize;
            let block_start = i as u64 * bs;
            let in_block = (pos - block_start) as usize;
            let n = ((bs - in_block as u64).min(end - pos)) as usize;
            // A write covering a whole block needs not its old content.
            if in_block == 0 && n as u64 == bs.min(f.size - block_start) && !f.dirty.contains(i) {
                f.dirty.insert(i, Vec::with_capacity(n));
            } else {
                self.make_dirty(&mut f, i).await?;
            }
            let want_len = f.block_len(i);
            let count = f.block_count();
            let from = (pos - offset) as usize;
            if let Some(block) = f.dirty.get_mut(i)? {
                if block.len() < in_block + n {
                    block.resize(in_block + n, 0);
                }
                block[in_block..in_block + n].copy_from_slice(&data[from..from + n]);
                if block.len() < want_len && i + 1 < count {
                    block.resize(want_len, 0);
                }
            }
            pos += n as u64;
        }
        f.changed = true;
        self.note_pending(f.ino, Some(f.size));
        if let Some(n) = self.inodes().get_mut(f.ino) {
            n.touched = None; // a write after utimes: the mtime is the write's
        }
        if f.dirty.mem_bytes() > self.opts.dirty_limit {
            let (dir, bs, last) = (self.opts.spill_dir.clone(), f.block_size, f.block_count().saturating_sub(1));
            // Disk writes of tens of MiB: off the runtime's reactor.
            let alg = f.algorithm;
            let moved = tokio::task::block_in_place(|| {
                f.dirty.spill(
                    &dir,
                    bs,
                    last,
                    |b| if self.plain { BlockHash::empty() } else { blocks::hash_block(alg, b) },
                )
            })
            .map_err(|e| {
                tracing::error!("cannot spill dirty blocks to {}: {e}", dir.display());
                Errno::from(e)
            })?;
            if !self.plain {
                self.send_early(f.ino, moved);
            }
        }
        Ok(data.len() as u32)
    }

    /// Pithos: blocks just spilled also start for the server while the writer
    /// goes on, so the commit at close finds them there (content-addressed:
    /// a block sent for nothing costs nothing but the trip). Bounded: blocks
    /// beyond the permits are left for the commit to send.
    fn send_early(&self, ino: u64, blocks: Vec<(usize, Bytes)>) {
        let Ok(loc) = self.locate(ino) else { return };
        let pc = self.in_container(&loc.container);
        for (_, data) in blocks {
            let Ok(permit) = self.early_uploads.clone().try_acquire_owned() else { return };
            let pc = pc.clone();
            tokio::spawn(async move {
                if let Err(e) = pc.upload_block(data).await {
                    tracing::debug!("early block upload failed (the commit sends it): {}", e.message);
                }
                drop(permit);
            });
        }
    }

    /// Commits a changed file, conditionally on the version it was opened at.
    /// A concurrent remote change keeps both: ours goes to a conflict copy
    /// and the call fails with EIO.
    async fn commit(self: &Arc<Self>, f: &mut OpenFile) -> FsResult<()> {
        if !f.changed {
            return Ok(());
        }
        let loc = self.locate(f.ino)?;
        let (mut attr, touched) = {
            let t = self.inodes();
            let n = t.get(f.ino).ok_or(Errno::NOENT)?;
            (n.attr.clone(), n.touched)
        };
        attr.mtime = touched.unwrap_or_else(now);
        let mut opts = PutOptions {
            content_type: Some("application/octet-stream".into()),
            meta: attr.to_meta(),
            ..Default::default()
        };
        match &f.etag {
            Some(e) => opts.if_match = Some(e.clone()),
            None => opts.if_not_exists = true,
        }
        let snapshot = Arc::new(f.dirty.snapshot());
        let sent = match self.send_version(f, &loc, &loc.path, &opts, &snapshot).await {
            // A retried request whose first attempt landed (its reply was
            // lost) finds our own version there: not a conflict.
            Err(e) if e.status == 412 => self.landed(f, &loc, &snapshot).await.ok_or(e),
            other => other,
        };
        match sent {
            Ok((w, hashes)) => {
                if !self.plain {
                    // What was just written is likely read next: keep it (the
                    // blocks in memory; spilled ones would only evict others).
                    for (i, b) in snapshot.in_memory() {
                        if let Some(h) = hashes.get(i) {
                            self.cache.insert(*h, b.clone());
                        }
                    }
                }
                if self.plain {
                    // The new version's keys: unchanged blocks stay cached under them.
                    for (i, key) in hashes.iter().enumerate() {
                        let kept =
                            snapshot.read(i).ok().flatten().or_else(|| f.hashes.get(i).and_then(|h| self.cache.get(h)));
                        if let Some(b) = kept.filter(|b| b.len() == f.block_len(i)) {
                            self.cache.insert(*key, b);
                        }
                    }
                }
                f.hashes = hashes;
                f.dirty.clear();
                f.etag = Some(w.etag.clone());
                f.changed = false;
                if self.plain {
                    f.base = Some(Source::Pinned(Arc::new(PlainVersion { etag: w.etag.clone(), size: f.size })));
                }
                let mut t = self.inodes();
                if let Some(n) = t.get_mut(f.ino) {
                    n.attr =
                        Attr { size: f.size, hash: Some(w.etag), version: w.version.clone(), stored: true, ..attr };
                    n.attr_at = Instant::now();
                    n.pending = None;
                    n.touched = None;
                    n.unsent = false;
                }
                if let Some(v) = w.version {
                    self.opened_versions.lock().unwrap_or_else(|p| p.into_inner()).insert(f.ino, v);
                }
                Ok(())
            }
            Err(e) if e.status == 412 => {
                let copy = format!("{}.conflict-{}", loc.path, now() as u64);
                let mut o = opts.clone();
                o.if_match = None;
                o.if_not_exists = false;
                self.send_version(f, &loc, &copy, &o, &snapshot).await?;
                tracing::error!("{} changed remotely while open here; this side was saved as {copy}", loc.path);
                f.changed = false;
                Err(Errno::IO)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the file's content as a new version of `path`: returns what
    /// the server said and the cache keys of the new version's blocks.
    async fn send_version(
        self: &Arc<Self>,
        f: &OpenFile,
        loc: &Loc,
        path: &str,
        opts: &PutOptions,
        dirty: &Arc<DirtySnapshot>,
    ) -> Result<(Written, Vec<BlockHash>), ClientError> {
        let pc = self.in_container(&loc.container);
        let count = f.block_count();
        if self.plain {
            return self.send_whole(f, loc, path, opts, dirty).await;
        }
        let alg = f.algorithm;
        let io = |e: std::io::Error| ClientError::new(format!("cannot read back dirty blocks: {e}"));
        // A file of one block, all of it here: one PUT instead of hashmap, 409, upload, hashmap.
        if count <= 1 && (count == 0 || dirty.contains(0)) {
            let mut data =
                if count == 0 { Vec::new() } else { dirty.read(0).map_err(io)?.unwrap_or_default().to_vec() };
            data.resize(f.size as usize, 0);
            let hashes = if count == 0 { Vec::new() } else { vec![blocks::hash_block(alg, &data)] };
            let w = pc.put_object(path, Bytes::from(data), opts).await?;
            return Ok((w, hashes));
        }
        let hashes = new_hashes(f, dirty).map_err(io)?;
        let cache = self.cache.clone();
        let reader = |i: usize| {
            let got = match dirty.read(i) {
                Ok(Some(b)) => Ok(b),
                // A hole: a server that asks for the empty block gets it
                // (sparse files never keep zeros anywhere).
                Ok(None) if hashes.get(i) == Some(&BlockHash::empty()) => Ok(Bytes::new()),
                Ok(None) => hashes
                    .get(i)
                    .and_then(|h| cache.get(h))
                    .ok_or_else(|| ClientError::new(format!("block {i} is gone from memory"))),
                Err(e) => Err(io(e)),
            };
            async move { got }
        };
        let w = pc.commit_hashmap(path, f.size, &hashes, opts, reader).await?;
        Ok((w, hashes))
    }

    /// Whether the object already is the version `f` would commit (same
    /// size and Merkle hash): a commit whose reply was lost and whose retry
    /// was refused (412). Pithos only: a plain Swift commit is never retried.
    async fn landed(&self, f: &OpenFile, loc: &Loc, dirty: &DirtySnapshot) -> Option<(Written, Vec<BlockHash>)> {
        if self.plain {
            return None;
        }
        let hashes = new_hashes(f, dirty).ok()?;
        let info = self.in_container(&loc.container).get_object_info(&loc.path).await.ok()?;
        let top = blocks::merkle(f.algorithm, &hashes).to_hex();
        let ours = info.bytes == f.size && info.hash.as_deref() == Some(top.as_str());
        ours.then_some((Written { etag: info.etag, version: info.version }, hashes))
    }

    /// Plain storage: the whole object in one streamed PUT, assembled block
    /// by block from the dirty blocks and the opened version. Swift has no
    /// conditional PUT on an ETag, so a HEAD just before checks the version
    /// (a narrow race remains; SEMANTICS.md says so).
    async fn send_whole(
        self: &Arc<Self>,
        f: &OpenFile,
        loc: &Loc,
        path: &str,
        opts: &PutOptions,
        dirty: &Arc<DirtySnapshot>,
    ) -> Result<(Written, Vec<BlockHash>), ClientError> {
        let pc = self.in_container(&loc.container);
        let mut o = opts.clone();
        if let Some(expected) = o.if_match.take() {
            let changed = match pc.get_object_info(path).await {
                Ok(info) => info.etag != expected,
                Err(e) if e.status == 404 => true,
                Err(e) => return Err(e),
            };
            if changed {
                return Err(ClientError { message: format!("{path} changed remotely"), status: 412, details: vec![] });
            }
        }
        let refs: Vec<(usize, usize, Option<BlockRef>)> =
            (0..f.block_count()).map(|i| (i, f.block_len(i), f.block_ref(i))).collect();
        let (fs, dirty, ino) = (self.clone(), dirty.clone(), f.ino);
        let body = stream::iter(refs).then(move |(i, len, clean)| {
            let (fs, dirty) = (fs.clone(), dirty.clone());
            async move {
                let block = match dirty.read(i)? {
                    Some(b) => b,
                    None => match clean {
                        Some(r) => fs.fetch_block(ino, r).await.map_err(std::io::Error::from)?,
                        None => Bytes::new(),
                    },
                };
                if block.len() >= len {
                    // A cut block keeps its first bytes (no copy).
                    return Ok(block.slice(..len));
                }
                // Holes and grown ends read as zeros.
                let mut padded = block.to_vec();
                padded.resize(len, 0);
                Ok::<Bytes, std::io::Error>(Bytes::from(padded))
            }
        });
        let w = pc.put_object_streamed(path, f.size, body, &o).await?;
        Ok((w.clone(), plain_keys(&w.etag, f.size, f.block_size)))
    }

    pub async fn flush(self: &Arc<Self>, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        let mut f = h.lock().await;
        self.commit(&mut f).await
    }

    pub async fn release(self: &Arc<Self>, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        let (result, ino) = {
            let mut f = h.lock().await;
            (self.commit(&mut f).await, f.ino)
        };
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
        self.note_open(ino, -1);
        result
    }

    /// Commits every changed open file (unmount).
    pub async fn commit_all(self: &Arc<Self>) {
        let all: Vec<_> = self.handles.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for h in all {
            let mut f = h.lock().await;
            if let Err(e) = self.commit(&mut f).await {
                tracing::error!("commit at unmount failed: errno {}", e.0);
            }
        }
    }

    // ---------- namespace ----------

    fn bind(&self, parent: u64, name: &str, attr: Attr) -> u64 {
        let mut t = self.inodes();
        let ino = t.upsert(parent, name, attr);
        if let Some(p) = t.get_mut(parent) {
            if let Some((_, kids)) = p.listing.as_mut() {
                if !kids.contains(&ino) {
                    kids.push(ino);
                }
            }
        }
        ino
    }

    /// A new file, open for writing, owned by the caller `uid`/`gid`.
    pub async fn create(&self, parent: u64, name: &str, mode: u32, uid: u32, gid: u32) -> FsResult<(u64, u64, Attr)> {
        self.check_writable()?;
        let loc = self.child_loc(parent, name)?;
        if self.is_account_root(parent) {
            return Err(Errno::PERM);
        }
        let (bs, alg) = self.block_params(&loc.container).await?;
        let max_size = self.max_file_size(&loc.container).await?;
        let mut attr = Attr::new_file(now());
        attr.mode = Some(mode & 0o7777);
        self.opts.owners.record(&mut attr, uid, gid);
        attr.stored = true;
        let ino = self.bind(parent, name, attr.clone());
        let file = OpenFile::created(ino, bs, alg, max_size);
        if let Some(n) = self.inodes().get_mut(ino) {
            n.unsent = true;
        }
        self.note_open(ino, 1);
        self.note_pending(ino, Some(0));
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, Arc::new(tokio::sync::Mutex::new(file)));
        Ok((ino, fh, attr))
    }

    /// mknod: a regular file is created (and committed empty) as by
    /// `create`; devices, FIFOs and sockets cannot be objects (`EPERM`).
    pub async fn mknod(
        self: &Arc<Self>,
        parent: u64,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<(u64, Attr)> {
        self.check_writable()?;
        self.child_loc(parent, name)?;
        if mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Errno::PERM);
        }
        let (ino, fh, _) = self.create(parent, name, mode, uid, gid).await?;
        self.release(fh).await?;
        Ok((ino, self.attr_of(ino)?))
    }

    /// Hard links cannot be made (an object has one name): `EPERM`, as
    /// POSIX says for a filesystem without them, once the name is checked.
    pub fn link(&self, new_parent: u64, new_name: &str) -> Errno {
        let checked = self.check_writable().and_then(|()| self.child_loc(new_parent, new_name));
        checked.err().unwrap_or(Errno::PERM)
    }

    /// A new folder owned by the caller (a container at the account root:
    /// containers keep no owner or mode).
    pub async fn mkdir(&self, parent: u64, name: &str, mode: u32, uid: u32, gid: u32) -> FsResult<(u64, Attr)> {
        self.check_writable()?;
        let loc = self.child_loc(parent, name)?;
        if self.list_dir(parent).await?.iter().any(|e| e.name == name) {
            return Err(Errno::EXIST);
        }
        let mut attr = Attr::dir(now());
        if self.is_account_root(parent) {
            self.pithos.with_container(name).create_container(&[]).await?;
        } else {
            attr.mode = Some(mode & 0o7777);
            self.opts.owners.record(&mut attr, uid, gid);
            attr.stored = true;
            let opts = PutOptions {
                content_type: Some("application/directory".into()),
                meta: attr.to_meta(),
                ..Default::default()
            };
            self.in_container(&loc.container).put_object(&loc.path, Bytes::new(), &opts).await?;
        }
        Ok((self.bind(parent, name, attr.clone()), attr))
    }

    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        self.check_writable()?;
        let (ino, attr) = self.lookup(parent, name).await?;
        if attr.kind == Kind::Dir {
            return Err(Errno::ISDIR);
        }
        let loc = self.locate(ino)?;
        match self.in_container(&loc.container).delete_object(&loc.path).await {
            Ok(()) => {}
            // Created here and never committed; or gone already, as asked
            // (a retried delete whose first attempt landed, its reply lost).
            Err(e) if e.status == 404 => {}
            Err(e) => return Err(e.into()),
        }
        self.inodes().unbind(parent, name);
        Ok(())
    }

    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        self.check_writable()?;
        let (ino, attr) = self.lookup(parent, name).await?;
        if attr.kind != Kind::Dir {
            return Err(Errno::NOTDIR);
        }
        let loc = self.locate(ino)?;
        if self.is_account_root(parent) {
            self.pithos.with_container(&loc.container).delete_container().await?;
        } else {
            if self.has_anything_under(&loc).await? {
                return Err(Errno::NOTEMPTY);
            }
            match self.in_container(&loc.container).delete_object(&loc.path).await {
                Ok(()) => {}
                Err(e) if e.status == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.inodes().unbind(parent, name);
        Ok(())
    }

    /// Whether any object lies under the folder at `loc` (one listing of one entry).
    async fn has_anything_under(&self, loc: &Loc) -> FsResult<bool> {
        let o = ListOptions { prefix: Some(format!("{}/", loc.path)), limit: Some(1), ..Default::default() };
        Ok(!self.in_container(&loc.container).list_objects(&o).await?.is_empty())
    }

    pub async fn rename(&self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> FsResult<()> {
        self.check_writable()?;
        self.child_loc(parent, name)?;
        let to = self.child_loc(new_parent, new_name)?;
        if self.is_account_root(parent) || self.is_account_root(new_parent) {
            return Err(Errno::PERM); // containers cannot be renamed
        }
        let (ino, attr) = self.lookup(parent, name).await?;
        let from = self.locate(ino)?;
        if let Ok((_, existing)) = self.lookup(new_parent, new_name).await {
            match (attr.kind == Kind::Dir, existing.kind == Kind::Dir) {
                (false, true) => return Err(Errno::ISDIR),
                (true, false) => return Err(Errno::NOTDIR),
                (true, true) if self.has_anything_under(&to).await? => return Err(Errno::NOTEMPTY),
                (true, true) => {}
                (false, false) => {}
            }
        }
        let pc = self.in_container(&to.container);
        if attr.kind == Kind::Dir && self.plain {
            self.move_tree_plain(&from, &to).await?;
        } else if attr.kind == Kind::Dir {
            // One request moves the folder and everything under it.
            match pc.move_tree(&from.container, &from.path, &to.path).await {
                Ok(_) => {}
                // A retried move whose first attempt landed (its reply was lost).
                Err(e) if e.status == 404 && self.tree_moved_already(&from, &to).await => {}
                Err(e) => return Err(e.into()),
            }
        } else if self.pending_new(ino) {
            // Not committed yet: the commit will write at the new name.
        } else {
            match pc.move_object(&from.container, &from.path, &to.path).await {
                Ok(_) => {}
                // A retried move whose first attempt landed (its reply was
                // lost) finds no source: the object (a move keeps its UUID)
                // is at the new name already.
                Err(e) if e.status == 404 && self.moved_already(&attr, &to).await => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut t = self.inodes();
        t.rename(parent, name, new_parent, new_name);
        if let Some(n) = t.get_mut(ino) {
            n.listing = None;
        }
        Ok(())
    }

    /// Whether the object `attr` describes now lies at `to`: the same UUID
    /// (a Pithos move keeps it) or, when it was not known here (a file made
    /// here), the same Merkle hash and size.
    async fn moved_already(&self, attr: &Attr, to: &Loc) -> bool {
        let known = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let Ok(info) = self.in_container(&to.container).get_object_info(&to.path).await else { return false };
        match (known(&attr.uuid), known(&attr.hash)) {
            (Some(uuid), _) => info.uuid == Some(uuid),
            (None, Some(hash)) => (info.hash == Some(hash.clone()) || info.etag == hash) && info.bytes == attr.size,
            (None, None) => false,
        }
    }

    /// Whether the folder at `from` now lies at `to`: nothing is left at the
    /// old name (no marker, nothing under it) and the new one holds a folder.
    async fn tree_moved_already(&self, from: &Loc, to: &Loc) -> bool {
        let src = self.in_container(&from.container);
        let dst = self.in_container(&to.container);
        let marker_gone = matches!(src.get_object_info(&from.path).await, Err(e) if e.status == 404);
        if !marker_gone || !matches!(self.has_anything_under(from).await, Ok(false)) {
            return false;
        }
        match dst.get_object_info(&to.path).await {
            Ok(info) => info.is_directory(),
            Err(e) if e.status == 404 => matches!(self.has_anything_under(to).await, Ok(true)),
            Err(_) => false,
        }
    }

    /// Plain storage has no folder move: every object under the folder (and
    /// its marker) is copied, then the originals deleted. Not atomic: a
    /// failure midway leaves both names partly filled, never a lost object.
    async fn move_tree_plain(&self, from: &Loc, to: &Loc) -> FsResult<()> {
        let src = self.in_container(&from.container);
        let dst = self.in_container(&to.container);
        let under =
            src.list_objects(&ListOptions { prefix: Some(format!("{}/", from.path)), ..Default::default() }).await?;
        let mut names: Vec<String> = under
            .into_iter()
            .filter_map(|l| match l {
                Listed::Object(o) => Some(o.name),
                Listed::Subdir(_) => None,
            })
            .collect();
        match src.get_object_info(&from.path).await {
            Ok(_) => names.push(from.path.clone()),
            Err(e) if e.status == 404 => {}
            Err(e) => return Err(e.into()),
        }
        // Only names under the folder move (a server answering others is ignored).
        names.retain(|n| n.starts_with(&from.path));
        let jobs: Vec<(String, String)> = names
            .iter()
            .filter_map(|n| n.strip_prefix(&from.path).map(|rest| (n.clone(), format!("{}{rest}", to.path))))
            .collect();
        let from_container = from.container.clone();
        stream::iter(jobs)
            .map(|(n, t)| {
                let (dst, c) = (dst.clone(), from_container.clone());
                async move { dst.copy_object(&c, &n, &t).await }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await?;
        stream::iter(names)
            .map(|n| {
                let src = src.clone();
                async move {
                    match src.delete_object(&n).await {
                        Err(e) if e.status != 404 => Err(e),
                        _ => Ok(()),
                    }
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// A symlink owned by the caller.
    pub async fn symlink(&self, parent: u64, name: &str, target: &str, uid: u32, gid: u32) -> FsResult<(u64, Attr)> {
        self.check_writable()?;
        let loc = self.child_loc(parent, name)?;
        if self.is_account_root(parent) {
            return Err(Errno::PERM); // only containers live at the account root
        }
        let mut attr = Attr::new_file(now());
        attr.kind = Kind::Symlink;
        attr.size = target.len() as u64;
        self.opts.owners.record(&mut attr, uid, gid);
        attr.stored = true;
        let opts = PutOptions { content_type: Some(SYMLINK_TYPE.into()), meta: attr.to_meta(), ..Default::default() };
        self.in_container(&loc.container)
            .put_object(&loc.path, Bytes::copy_from_slice(target.as_bytes()), &opts)
            .await?;
        let ino = self.bind(parent, name, attr.clone());
        if let Some(n) = self.inodes().get_mut(ino) {
            n.target = Some(target.to_string());
        }
        Ok((ino, attr))
    }

    pub async fn readlink(&self, ino: u64) -> FsResult<String> {
        if let Some(t) = self.inodes().get(ino).and_then(|n| n.target.clone()) {
            return Ok(t);
        }
        let loc = self.locate(ino)?;
        // A target is at most what the kernel takes: a longer reply is refused, not read.
        let o = GetOptions { max_bytes: Some(SYMLINK_MAX as u64), ..Default::default() };
        let (_, data) = self.in_container(&loc.container).get_object(&loc.path, &o).await?;
        let target = match String::from_utf8(data.to_vec()) {
            Ok(t) if !t.is_empty() && !t.contains('\0') => t,
            _ => {
                tracing::warn!("{}: the symlink's target is empty, not UTF-8 or holds NUL", shorten(&loc.path));
                return Err(Errno::IO);
            }
        };
        if let Some(n) = self.inodes().get_mut(ino) {
            n.target = Some(target.clone());
        }
        Ok(target)
    }

    /// chmod, chown, utimes and truncate. Who may do which was checked by
    /// the kernel (`default_permissions`): only the owner or root changes a
    /// mode, only root an owner. Here they are recorded (owners through
    /// `owners`, so a number is kept only with this machine's tag).
    #[allow(clippy::too_many_arguments)]
    pub async fn setattr(
        self: &Arc<Self>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        mtime: Option<f64>,
        fh: Option<u64>,
    ) -> FsResult<Attr> {
        self.check_writable()?;
        if let Some(size) = size {
            self.truncate(ino, size, mtime.is_some(), fh).await?;
        }
        let mut attr = self.attr_of(ino)?;
        if mode.is_none() && uid.is_none() && gid.is_none() && mtime.is_none() {
            return self.getattr(ino).await;
        }
        let before = (attr.mode, self.opts.owners.shown(&attr));
        if let Some(m) = mode {
            attr.mode = Some(m & 0o7777);
        }
        if uid.is_some() || gid.is_some() {
            self.opts.owners.chown(&mut attr, uid, gid);
        }
        if let Some(t) = mtime {
            attr.mtime = t;
        }
        let uncommitted = self.inodes().get(ino).is_some_and(|n| n.pending.is_some()) || self.pending_new(ino);
        if uncommitted {
            // The coming commit carries these; an mtime set now outlives it.
            if let Some(n) = self.inodes().get_mut(ino) {
                n.attr = attr.clone();
                if mtime.is_some() {
                    n.touched = mtime;
                }
            }
            return self.getattr(ino).await;
        }
        let loc = self.locate(ino)?;
        if loc.path.is_empty() {
            // The mount's root and containers keep no mode or owner: a change
            // could not outlive the next listing, so it is refused.
            let asked = (mode.map(|m| m & 0o7777).or(before.0), self.opts.owners.shown(&attr));
            let shown = |(m, o): (Option<u32>, (u32, u32)), default: u32| (m.unwrap_or(default), o);
            if shown(asked, self.opts.dir_mode) != shown(before, self.opts.dir_mode) {
                return Err(Errno::PERM);
            }
        } else {
            self.store_meta(ino, &loc, &attr).await?;
        }
        attr.stored = attr.stored || attr.kind == Kind::Dir;
        if let Some(n) = self.inodes().get_mut(ino) {
            n.attr = attr.clone();
            n.attr_at = Instant::now();
        }
        Ok(attr)
    }

    /// truncate/ftruncate to `size` through the open handle `fh` or a
    /// handle of its own. Past the largest file the server holds: `EFBIG`,
    /// before anything is opened or allocated.
    async fn truncate(self: &Arc<Self>, ino: u64, size: u64, keeps_mtime: bool, fh: Option<u64>) -> FsResult<()> {
        let current = self.inodes().get(ino).map(|n| n.pending.unwrap_or(n.attr.size)).ok_or(Errno::NOENT)?;
        if size > current {
            let loc = self.locate(ino)?;
            if size > self.max_file_size(&loc.container).await? {
                return Err(Errno::FBIG);
            }
        }
        let (fh, temporary) = match fh.filter(|f| self.handle(*f).is_ok()) {
            Some(f) => (f, false),
            None => (self.open(ino, true, false).await?.0, true),
        };
        let h = self.handle(fh)?;
        let cut = async {
            let mut f = h.lock().await;
            if size < f.size && size > 0 {
                let last = ((size - 1) / f.block_size) as usize;
                self.make_dirty(&mut f, last).await?;
            }
            f.set_size(size)?;
            self.note_pending(ino, Some(f.size));
            if !keeps_mtime {
                // Like a write, a truncate sets the mtime to the commit's.
                if let Some(n) = self.inodes().get_mut(ino) {
                    n.touched = None;
                }
            }
            Ok::<(), Errno>(())
        }
        .await;
        // A handle opened here is closed (committing the cut) whatever happened.
        let released = if temporary { self.release(fh).await } else { Ok(()) };
        cut.and(released)
    }

    /// Writes a node's metadata: POST on its object, or (for a folder that is
    /// only a prefix, or a file not yet committed) what makes it exist.
    async fn store_meta(&self, ino: u64, loc: &Loc, attr: &Attr) -> FsResult<()> {
        let pc = self.in_container(&loc.container);
        let pairs = attr.to_meta();
        // The POST merges: an owner no longer recorded (given back to the
        // account owner) is deleted by an empty value.
        let mut merge = pairs.clone();
        for key in [META_UID, META_GID, META_HOST] {
            if !merge.iter().any(|(k, _)| k == key) {
                merge.push((key.to_string(), String::new()));
            }
        }
        let refs: Vec<(&str, &str)> = merge.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match pc.set_object_meta(&loc.path, &refs).await {
            Ok(()) => Ok(()),
            Err(e) if e.status == 404 && attr.kind == Kind::Dir => {
                let opts = PutOptions {
                    content_type: Some("application/directory".into()),
                    meta: pairs.clone(),
                    ..Default::default()
                };
                pc.put_object(&loc.path, Bytes::new(), &opts).await?;
                Ok(())
            }
            // An uncommitted new file: its commit carries the attributes.
            Err(e) if e.status == 404 && self.pending_new(ino) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    // ---------- extended attributes ----------

    /// Read-only attributes with Pithos facts.
    pub async fn getxattr(&self, ino: u64, name: &str) -> FsResult<Vec<u8>> {
        if let Some(fact) = name.strip_prefix("user.pithos.") {
            // Facts of the object as the server has it now: one HEAD.
            let loc = self.locate(ino)?;
            if loc.path.is_empty() || self.pending_new(ino) {
                return Err(Errno::NODATA);
            }
            let info = self.in_container(&loc.container).get_object_info(&loc.path).await?;
            let v = match fact {
                "hash" => info.hash.clone(),
                "uuid" => info.uuid.clone(),
                "version" => info.version.clone(),
                "public" => info.info.header("x-object-public").map(str::to_string),
                _ => None,
            };
            return v.map(String::into_bytes).ok_or(Errno::NODATA);
        }
        let attr = self.getattr(ino).await?;
        let v = name.strip_prefix("user.").and_then(|k| attr.meta.get(&k.to_lowercase().replace('_', "-")).cloned());
        v.map(String::into_bytes).ok_or(Errno::NODATA)
    }

    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<String>> {
        let attr = self.getattr(ino).await?;
        let mut names: Vec<String> = attr.meta.keys().map(|k| format!("user.{k}")).collect();
        if attr.stored && attr.hash.is_some() {
            names.extend(["user.pithos.hash", "user.pithos.uuid", "user.pithos.version"].map(String::from));
        }
        Ok(names)
    }

    pub async fn setxattr(&self, ino: u64, name: &str, value: Option<&[u8]>) -> FsResult<()> {
        self.check_writable()?;
        let key = name.strip_prefix("user.").ok_or(Errno::NOTSUP)?;
        // Metadata keys are case-insensitive and travel in headers.
        if key.is_empty()
            || key.len() > 128
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(Errno::INVAL);
        }
        let key = key.to_lowercase().replace('_', "-");
        // Checked on the key as stored: `user.POSIX_UID` is `posix-uid`, the
        // owner, which no xattr may set (it would be a chown without root).
        if key.starts_with("pithos.") || key.starts_with("posix-") {
            return Err(Errno::PERM);
        }
        let mut attr = self.getattr(ino).await?;
        match value {
            Some(v) => {
                let v = std::str::from_utf8(v).map_err(|_| Errno::INVAL)?;
                if v.len() > 256 {
                    return Err(Errno::RANGE);
                }
                if !attr.meta.contains_key(&key) && attr.meta.len() >= MAX_XATTRS {
                    return Err(Errno::NOSPC);
                }
                attr.meta.insert(key, v.to_string());
            }
            None => {
                if attr.meta.remove(&key).is_none() {
                    return Err(Errno::NODATA);
                }
            }
        }
        let loc = self.locate(ino)?;
        let pc = self.in_container(&loc.container);
        let mut pairs = attr.to_meta();
        if value.is_none() {
            pairs.push((name.trim_start_matches("user.").to_lowercase().replace('_', "-"), String::new()));
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pc.set_object_meta(&loc.path, &refs).await?;
        if let Some(n) = self.inodes().get_mut(ino) {
            n.attr = attr;
            n.attr_at = Instant::now();
        }
        Ok(())
    }

    /// (total bytes, free bytes) from the account quota.
    pub async fn statfs(&self) -> FsResult<(u64, u64)> {
        let (quota, used) = self.pithos.get_account_quota().await?;
        let total = if quota == 0 { 1 << 50 } else { quota };
        Ok((total, total.saturating_sub(used)))
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
fn shorten(name: &str) -> String {
    match name.char_indices().nth(120) {
        Some((at, _)) => format!("{}… ({} bytes)", &name[..at], name.len()),
        None => name.to_string(),
    }
}

/// The hashmap of the version `f` commits: the opened version's hashes
/// with the dirty blocks' own. Hashing is CPU work (and spilled blocks are
/// read back): off the runtime's reactor, on all cores.
fn new_hashes(f: &OpenFile, dirty: &DirtySnapshot) -> std::io::Result<Vec<BlockHash>> {
    let indices = dirty.indices();
    let hashed = tokio::task::block_in_place(|| hash_blocks(dirty, &indices, f.algorithm))?;
    let mut hashes = f.hashes.clone();
    hashes.resize(f.block_count(), BlockHash::empty());
    for (i, h) in &hashed {
        if *i < hashes.len() {
            hashes[*i] = *h;
        }
    }
    Ok(hashes)
}

/// Hashes dirty blocks on every core: (index, hash) in index order.
fn hash_blocks(dirty: &DirtySnapshot, indices: &[usize], alg: Algorithm) -> std::io::Result<Vec<(usize, BlockHash)>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let per = indices.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = indices
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&i| match dirty.known_hash(i) {
                            Some(h) => Ok((i, h)),
                            None => Ok((i, blocks::hash_block(alg, &dirty.read(i)?.unwrap_or_default()))),
                        })
                        .collect::<std::io::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(indices.len());
        for p in parts {
            all.extend(p.join().map_err(|_| std::io::Error::other("a hashing thread failed"))??);
        }
        Ok(all)
    })
}
