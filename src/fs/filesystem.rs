//! The filesystem: what it holds (the store, the inode table, the block
//! cache, open files and folders) and where a node lives on the store. Its
//! operations are plain async methods, one file per concern (`listing`,
//! `namespace`, `open`, `read`, `write`, `commit`, `metadata`, `xattr`);
//! the FUSE adapter (`fuse.rs`) only translates, so everything here runs
//! without a kernel mount.

use super::attr::{now, Attr};
use super::cache::BlockCache;
use super::errno::{During, Errno, FsResult, Op};
use super::handle::OpenFile;
use super::inode::InodeTable;
use super::listing::DirEntry;
use super::names;
use super::owners::{Owners, Policy};
use super::scope::{Scope, SHARED, SNAPSHOTS};
use super::store::{Access, Geometry, Store, StoreError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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
    /// Entries asked for in one listing page (tests page small folders).
    pub listing_page: usize,
    /// Where dirty blocks beyond `dirty_limit` are spilled (unnamed files).
    pub spill_dir: PathBuf,
    /// Show setuid/setgid bits the server records (`--suid`; the mount is
    /// then not `nosuid` either). Off: they are masked.
    pub suid: bool,
    /// Let device nodes open their devices (`--dev`; off: the mount is `nodev`).
    pub dev: bool,
    /// Random reads of files with block hashes (Pithos) fetch just the bytes
    /// asked for, unchecked (`--unverified-range-reads`). Off: they fetch
    /// whole blocks, checked against their hashes, through the cache.
    pub unverified_range_reads: bool,
}

/// Blocks sent ahead of a commit at once (4 MiB each on Pithos).
pub(super) const EARLY_UPLOADS: usize = 16;

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
            listing_page: crate::clients::storage::PAGE,
            spill_dir: default_cache_dir().join("spill"),
            suid: false,
            dev: false,
            unverified_range_reads: false,
        }
    }
}

/// Where a node lives on the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// The view it is in (the present, a past moment, another account…).
    pub scope: Scope,
    /// Its container ("" for an account's root, or a folder of views).
    pub container: String,
    /// Object name in the container ("" for the container itself).
    pub path: String,
}

impl Loc {
    /// Whether its children are containers (an account's root).
    pub(super) fn is_account(&self) -> bool {
        self.container.is_empty() && !self.scope.is_folder_of_views()
    }
}

/// An open file's handle, shared by the calls on it.
pub(super) type Handle = Arc<tokio::sync::Mutex<OpenFile>>;

pub struct Fs<S: Store> {
    pub(super) store: Arc<S>,
    pub opts: FsOptions,
    inodes: Mutex<InodeTable>,
    pub cache: Arc<BlockCache>,
    handles: Mutex<HashMap<u64, Handle>>,
    /// Open directories: the listing taken at opendir, served by offset.
    pub(super) dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    next_fh: AtomicU64,
    /// Versions last opened per inode: an unchanged file keeps the kernel's page cache.
    pub(super) opened_versions: Mutex<HashMap<u64, String>>,
    geometries: Mutex<HashMap<String, Geometry>>,
    /// Permits for blocks sent ahead of a commit (each holds a block in memory).
    pub(super) early_uploads: Arc<tokio::sync::Semaphore>,
    /// The names of each link group known here (see `links`).
    pub(super) links: Mutex<HashMap<String, super::links::Members>>,
    /// The store's views besides the present, made when first used.
    scoped: Mutex<HashMap<Scope, Arc<S>>>,
    /// Whether the store keeps history (`.snapshots`) and shares (`.shared`).
    pub(super) has_history: bool,
    pub(super) has_sharing: bool,
    /// Owners under `.shared`: display name (as shown) → UUID.
    pub(super) sharers: Mutex<HashMap<String, String>>,
}

/// The most views kept at once (each a few hundred bytes; a user names
/// moments by hand, a script may name many).
const MAX_SCOPES: usize = 256;

/// A lock that a panic elsewhere left held is still the map it was: go on.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Store> Fs<S> {
    /// A filesystem over `store` whose blocks go through `cache`.
    pub fn new(store: S, opts: FsOptions, cache: BlockCache) -> Fs<S> {
        let has_history = store.scoped(&Scope::AsOf(0)).is_some();
        let has_sharing = store.scoped(&Scope::Shared(String::new())).is_some();
        Fs {
            scoped: Mutex::new(HashMap::new()),
            has_history,
            has_sharing,
            sharers: Mutex::new(HashMap::new()),
            store: Arc::new(store),
            cache: Arc::new(cache),
            inodes: Mutex::new(InodeTable::new(Attr::dir(now()))),
            opts,
            handles: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            opened_versions: Mutex::new(HashMap::new()),
            geometries: Mutex::new(HashMap::new()),
            early_uploads: Arc::new(tokio::sync::Semaphore::new(EARLY_UPLOADS)),
            links: Mutex::new(HashMap::new()),
        }
    }

    /// The store under the filesystem.
    pub fn store(&self) -> &S {
        &self.store
    }

    pub(super) fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        lock(&self.inodes)
    }

    /// Nodes the inode table holds now (the kernel's, and those needed here).
    pub fn node_count(&self) -> usize {
        self.inodes().len()
    }

    /// The view, container and object path of a node.
    pub fn locate(&self, ino: u64) -> FsResult<Loc> {
        let comps = self.inodes().components(ino).ok_or(Errno::NOENT)?;
        self.loc_of(&comps)
    }

    /// Where the node at these names from the root is: the first names say
    /// the view (`.snapshots/<moment>`, `.snapshots/v<ID>`,
    /// `.shared/<owner>`), the rest the container and object path in it.
    fn loc_of(&self, comps: &[String]) -> FsResult<Loc> {
        let folder = |scope| Loc { scope, container: String::new(), path: String::new() };
        let (scope, rest, account) = match comps.split_first() {
            Some((first, rest)) if first == SNAPSHOTS && self.has_history => match rest.split_first() {
                None => return Ok(folder(Scope::Snapshots)),
                Some((moment, rest)) => (Scope::of_snapshot_name(moment)?, rest, self.opts.container.is_none()),
            },
            Some((first, rest)) if first == SHARED && self.has_sharing => match rest.split_first() {
                None => return Ok(folder(Scope::Sharers)),
                Some((owner, rest)) => {
                    let uuid = lock(&self.sharers).get(owner).cloned().ok_or(Errno::NOENT)?;
                    (Scope::Shared(uuid), rest, true)
                }
            },
            _ => (Scope::Now, comps, self.opts.container.is_none()),
        };
        Ok(match (account, &self.opts.container) {
            (false, Some(c)) => Loc { scope, container: c.clone(), path: rest.join("/") },
            _ => match rest.split_first() {
                None => Loc { scope, container: String::new(), path: String::new() },
                Some((c, rest)) => Loc { scope, container: c.clone(), path: rest.join("/") },
            },
        })
    }

    /// Where `name` under `parent` is (or would be) on the server, or
    /// `ENAMETOOLONG` when it cannot be: a component over `NAME_MAX`, or an
    /// object name past the server's limit (as far as the store knows it). Such a name cannot exist, so
    /// every call answers this, never `ENOENT`.
    pub(super) fn child_loc(&self, parent: u64, name: &str) -> FsResult<Loc> {
        names::check_component(name)?;
        let mut comps = self.inodes().components(parent).ok_or(Errno::NOENT)?;
        comps.push(name.to_string());
        let loc = self.loc_of(&comps)?;
        names::check_object_name_within(&loc.path, self.store.max_object_name())?;
        Ok(loc)
    }

    /// Whether `ino` is an account's root (its children are containers).
    pub(super) fn is_account_root(&self, ino: u64) -> bool {
        self.locate(ino).is_ok_and(|l| l.is_account())
    }

    /// The store that serves `loc`'s view (made the first time it is used).
    pub(super) fn store_for(&self, loc: &Loc) -> FsResult<Arc<S>> {
        if loc.scope == Scope::Now {
            return Ok(self.store.clone());
        }
        let mut views = lock(&self.scoped);
        if let Some(s) = views.get(&loc.scope) {
            return Ok(s.clone());
        }
        let made = Arc::new(self.store.scoped(&loc.scope).ok_or(Errno::NOENT)?);
        if views.len() >= MAX_SCOPES {
            views.clear();
        }
        views.insert(loc.scope.clone(), made.clone());
        Ok(made)
    }

    /// `EROFS` for a read-only mount.
    pub(super) fn check_mount_writable(&self) -> FsResult<()> {
        if self.opts.read_only {
            Err(Errno::ROFS)
        } else {
            Ok(())
        }
    }

    /// Where `name` under `parent` is, for a call that makes, changes or
    /// removes it: `EROFS` in a read-only view (a name that could be none
    /// there, such as a non-moment under `.snapshots`, included).
    pub(super) fn writable_child(&self, parent: u64, name: &str) -> FsResult<Loc> {
        self.check_writable(&self.locate(parent)?)?;
        let loc = self.child_loc(parent, name)?;
        self.check_writable(&loc)?;
        Ok(loc)
    }

    /// In another account's view, a write that the server takes only when
    /// it is done (a file's content, sent at close) is checked first: what
    /// `at` (the file, or the folder a new file goes in) allows this user
    /// must be `write`, else `EACCES` now rather than a close that fails.
    pub(super) async fn check_grant(&self, at: &Loc) -> FsResult<()> {
        if !matches!(at.scope, Scope::Shared(_)) {
            return Ok(());
        }
        if at.path.is_empty() {
            return Err(Errno::ACCES); // a container itself is never shared
        }
        match self.store_for(at)?.stat(&at.container, &at.path).await {
            Ok(meta) if meta.allowed_to == Some(Access::Write) => Ok(()),
            Ok(_) | Err(StoreError::NotFound | StoreError::Denied) => Err(Errno::ACCES),
            Err(e) => Err(e).during(Op::Open),
        }
    }

    /// `EROFS` for a read-only mount, or a name in a read-only view.
    pub(super) fn check_writable(&self, loc: &Loc) -> FsResult<()> {
        if self.opts.read_only || loc.scope.read_only() {
            Err(Errno::ROFS)
        } else {
            Ok(())
        }
    }

    pub fn attr_of(&self, ino: u64) -> FsResult<Attr> {
        self.inodes().get(ino).map(|n| n.attr()).ok_or(Errno::NOENT)
    }

    /// How `loc`'s container cuts files into blocks (asked once per
    /// container; another account's apart).
    pub(super) async fn geometry(&self, loc: &Loc, op: Op) -> FsResult<Geometry> {
        let key = match &loc.scope {
            Scope::Shared(owner) => format!("{owner}/{}", loc.container),
            _ => loc.container.clone(),
        };
        if let Some(g) = lock(&self.geometries).get(&key) {
            return Ok(*g);
        }
        let g = self.store_for(loc)?.geometry(&loc.container).await.during(op)?;
        lock(&self.geometries).insert(key, g);
        Ok(g)
    }

    /// Whether an uncommitted file created here backs `ino`.
    pub(super) fn pending_new(&self, ino: u64) -> bool {
        self.inodes().get(ino).is_some_and(|n| n.open > 0 && n.unsent)
    }

    /// One more (or one fewer) open handle on `ino`; a node nothing holds
    /// any more goes.
    pub(super) fn note_open(&self, ino: u64, delta: i32) {
        let gone = {
            let mut t = self.inodes();
            if let Some(n) = t.get_mut(ino) {
                n.open = n.open.saturating_add_signed(delta);
                if n.open == 0 {
                    // The last handle is gone, and with it every change not
                    // committed (its close failed): what the server holds is
                    // the file now, not a size or a new file known only here.
                    n.pending = None;
                    n.unsent = false;
                }
            }
            delta < 0 && t.release(ino) > 0
        };
        if gone {
            lock(&self.opened_versions).remove(&ino);
        }
    }

    /// Records the size of changes not committed yet (None: all committed).
    pub(super) fn note_pending(&self, ino: u64, size: Option<u64>) {
        if let Some(n) = self.inodes().get_mut(ino) {
            n.pending = size;
            if size.is_some() {
                n.attr_at = Instant::now();
            }
        }
    }

    /// Registers an open file: its handle number.
    pub(super) fn add_handle(&self, file: OpenFile) -> u64 {
        let fh = self.next_fh();
        lock(&self.handles).insert(fh, Arc::new(tokio::sync::Mutex::new(file)));
        fh
    }

    pub(super) fn next_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn handle(&self, fh: u64) -> FsResult<Handle> {
        lock(&self.handles).get(&fh).cloned().ok_or(Errno::BADF)
    }

    pub(super) fn remove_handle(&self, fh: u64) {
        lock(&self.handles).remove(&fh);
    }

    pub(super) fn all_handles(&self) -> Vec<Handle> {
        lock(&self.handles).values().cloned().collect()
    }
}
