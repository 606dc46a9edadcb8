//! The filesystem (`Fs`) driven in process, without a kernel, for the
//! `fs_*` test crates: over the local cloud (`PithosStore` on `TestCloud`)
//! and over the real Swift (`SwiftStore`, with `PITHOSFS_SWIFT_AUTH`), each
//! wrapped in a `FaultyStore` that counts the store's calls and fails the
//! ones a test chooses.
//!
//! `Driver` does what the kernel would, by path (relative to the mounted
//! container, `"a/b.txt"`; `""` is the root):
//!
//! - `lookup(path)`: each component looked up from the root, as the kernel
//!   resolves a path; every entry it gets is counted, and `drop_caches()`
//!   forgets them all (as `echo 2 > /proc/sys/vm/drop_caches` does);
//! - `create`, `open(path, write)`, `write(fh, offset, data)`,
//!   `read(fh, offset, len)`, `flush(fh)` (close or fsync: commits),
//!   `release(fh)` (commits, closes); `put(path, data)` and `get(path)` do
//!   the whole of `cp` in and `cat`;
//! - `ls(path)`: opendir, every entry as readdirplus gives it (so each is one
//!   more node the kernel holds), releasedir; what `ls -l` costs;
//! - `mkdir`, `unlink`, `rmdir`, `rename`, `symlink`, `readlink`, `chmod`,
//!   `utimes`, `setxattr`, `getxattr`, `mknod`, `link`, `stat`;
//! - `store()`: the `FaultyStore`, for `calls(op)`, `counts()`/`since()`
//!   (calls per operation) and `inject(op, nth, fault)`; `requests()`: the
//!   HTTP requests the store's client made.
//!
//! Errors are the errno the kernel would get (`Errno`). TTLs are long (60 s)
//! so that counts do not depend on timing, unless a test says otherwise.

use super::{TestCloud, ALICE_TOKEN};
use pithosfs::clients::pithos::PithosClient;
use pithosfs::clients::storage::{ListOptions, ObjectStorage, PutOptions, StorageClient};
use pithosfs::fs::cache::BlockCache;
use pithosfs::fs::errno::Errno;
use pithosfs::fs::inode::ROOT;
use pithosfs::fs::metadata::Times;
use pithosfs::fs::store::{FaultyStore, PithosStore, Store, SwiftStore};
use pithosfs::fs::{Fs, FsOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes a driver's `read` and `write` move per call, as the kernel does.
pub const PIECE: usize = 128 << 10;

/// Block size of the local cloud in these tests: files of several blocks stay small.
pub const BS: usize = 64 << 10;

pub struct Driver<S: Store> {
    pub fs: Arc<Fs<FaultyStore<S>>>,
    /// Entries handed out, as the kernel counts them (ino → lookups).
    held: Mutex<HashMap<u64, u64>>,
    _spill: tempfile::TempDir,
}

pub type Result<T> = std::result::Result<T, Errno>;

impl<S: Store> Driver<S> {
    /// `Fs` over `store`, mounting `container`, with options tuned by `tune`.
    pub fn new(store: S, container: &str, tune: impl FnOnce(&mut FsOptions)) -> Driver<S> {
        let spill = tempfile::tempdir().unwrap();
        let mut opts = FsOptions {
            container: Some(container.to_string()),
            attr_ttl: Duration::from_secs(60),
            dir_ttl: Duration::from_secs(60),
            spill_dir: spill.path().to_path_buf(),
            ..Default::default()
        };
        tune(&mut opts);
        let cache = BlockCache::new(opts.cache_size);
        let fs = Arc::new(Fs::new(FaultyStore::new(store), opts, cache));
        Driver { fs, held: Mutex::new(HashMap::new()), _spill: spill }
    }

    pub fn store(&self) -> &FaultyStore<S> {
        self.fs.store()
    }

    fn hold(&self, ino: u64) {
        *self.held.lock().unwrap().entry(ino).or_insert(0) += 1;
    }

    /// The kernel forgets every entry it was given.
    pub fn drop_caches(&self) {
        for (ino, n) in self.held.lock().unwrap().drain() {
            self.fs.forget(ino, n);
        }
    }

    /// (parent, last name) of `path`, the parent looked up.
    pub async fn parent_of(&self, path: &str) -> Result<(u64, String)> {
        match path.rsplit_once('/') {
            Some((dir, name)) => Ok((self.lookup(dir).await?, name.to_string())),
            None => Ok((ROOT, path.to_string())),
        }
    }

    /// The node at `path`, every component looked up as the kernel does.
    pub async fn lookup(&self, path: &str) -> Result<u64> {
        let mut ino = ROOT;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            ino = self.fs.lookup(ino, name).await?.0;
            self.hold(ino);
        }
        Ok(ino)
    }

    pub async fn create(&self, path: &str) -> Result<u64> {
        let (parent, name) = self.parent_of(path).await?;
        let (ino, fh, _) = self.fs.create(parent, &name, 0o644, 0, 0).await?;
        self.hold(ino);
        Ok(fh)
    }

    pub async fn open(&self, path: &str, write: bool) -> Result<u64> {
        let ino = self.lookup(path).await?;
        Ok(self.fs.open(ino, write, false).await?.0)
    }

    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<()> {
        for (i, piece) in data.chunks(PIECE).enumerate() {
            let n = self.fs.write(fh, offset + (i * PIECE) as u64, piece).await?;
            assert_eq!(n as usize, piece.len(), "a short write");
        }
        Ok(())
    }

    pub async fn read(&self, fh: u64, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < len {
            let want = (len - out.len()).min(PIECE) as u32;
            let got = self.fs.read(fh, offset + out.len() as u64, want).await?;
            if got.is_empty() {
                break;
            }
            out.extend_from_slice(&got);
        }
        Ok(out)
    }

    pub async fn flush(&self, fh: u64) -> Result<()> {
        self.fs.flush(fh).await
    }

    pub async fn release(&self, fh: u64) -> Result<()> {
        self.fs.release(fh).await
    }

    /// `cp` in: creates (or truncates) `path`, writes `data`, closes.
    pub async fn put(&self, path: &str, data: &[u8]) -> Result<()> {
        let fh = match self.lookup(path).await {
            Ok(ino) => self.fs.open(ino, true, true).await?.0,
            Err(Errno::NOENT) => self.create(path).await?,
            Err(e) => return Err(e),
        };
        let written = self.write(fh, 0, data).await;
        let closed = self.release(fh).await;
        written.and(closed)
    }

    /// `cat`: opens `path`, reads it to the end, closes.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>> {
        let fh = self.open(path, false).await?;
        let data = self.read(fh, 0, usize::MAX >> 1).await;
        self.release(fh).await?;
        data
    }

    /// `ls -l`: the folder's entries as readdirplus gives them (each one the
    /// kernel then holds), sorted by name.
    pub async fn ls(&self, path: &str) -> Result<Vec<String>> {
        self.ls_at(self.lookup(path).await?).await
    }

    /// `ls -l` of the folder `ino`.
    pub async fn ls_at(&self, ino: u64) -> Result<Vec<String>> {
        let fh = self.fs.opendir(ino).await?;
        let entries = self.fs.dir_entries(ino, fh).await?;
        let mut names = Vec::new();
        for e in entries.iter() {
            if let Some((child, _)) = self.fs.bind_entry(ino, e) {
                self.hold(child);
                names.push(e.name.to_string());
            }
        }
        self.fs.releasedir(fh);
        names.sort();
        Ok(names)
    }

    pub async fn mkdir(&self, path: &str) -> Result<()> {
        let (parent, name) = self.parent_of(path).await?;
        let (ino, _) = self.fs.mkdir(parent, &name, 0o755, 0, 0).await?;
        self.hold(ino);
        Ok(())
    }

    pub async fn unlink(&self, path: &str) -> Result<()> {
        let (parent, name) = self.parent_of(path).await?;
        self.fs.unlink(parent, &name).await
    }

    pub async fn rmdir(&self, path: &str) -> Result<()> {
        let (parent, name) = self.parent_of(path).await?;
        self.fs.rmdir(parent, &name).await
    }

    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (p, n) = self.parent_of(from).await?;
        let (q, m) = self.parent_of(to).await?;
        self.fs.rename(p, &n, q, &m).await
    }

    pub async fn symlink(&self, path: &str, target: &str) -> Result<()> {
        let (parent, name) = self.parent_of(path).await?;
        let (ino, _) = self.fs.symlink(parent, &name, target, 0, 0).await?;
        self.hold(ino);
        Ok(())
    }

    /// `mknod path mode rdev` (the file type in `mode`, as `libc::S_IFIFO`).
    pub async fn mknod(&self, path: &str, mode: u32, rdev: u32) -> Result<u64> {
        let (parent, name) = self.parent_of(path).await?;
        let (ino, _) = self.fs.mknod(parent, &name, mode, rdev, 0, 0).await?;
        self.hold(ino);
        Ok(ino)
    }

    /// `ln from to`: the node both names now share.
    pub async fn link(&self, from: &str, to: &str) -> Result<u64> {
        let ino = self.lookup(from).await?;
        let (parent, name) = self.parent_of(to).await?;
        let (ino, _) = self.fs.link(ino, parent, &name).await?;
        self.hold(ino);
        Ok(ino)
    }

    /// What `stat` says of `path`: (inode number, attributes).
    pub async fn stat(&self, path: &str) -> Result<(u64, pithosfs::fs::attr::Attr)> {
        let ino = self.lookup(path).await?;
        Ok((ino, self.fs.getattr(ino).await?))
    }

    pub async fn readlink(&self, path: &str) -> Result<String> {
        self.fs.readlink(self.lookup(path).await?).await
    }

    /// The mode recorded for `path` (None: the mount's default).
    pub async fn mode(&self, path: &str) -> Result<Option<u32>> {
        Ok(self.fs.getattr(self.lookup(path).await?).await?.mode)
    }

    pub async fn chmod(&self, path: &str, mode: u32) -> Result<()> {
        let ino = self.lookup(path).await?;
        self.fs.setattr(ino, Some(mode), None, None, None, Times::default(), None).await.map(drop)
    }

    /// `touch -d`: sets the mtime (seconds since the epoch).
    pub async fn utimes(&self, path: &str, mtime: f64) -> Result<()> {
        let ino = self.lookup(path).await?;
        let t = pithosfs::fs::time::Time::from_secs_f64(mtime).unwrap_or(pithosfs::fs::time::Time::EPOCH);
        self.fs.setattr(ino, None, None, None, None, Times::mtime(t), None).await.map(drop)
    }

    /// `truncate -s`: through the handle `fh` when given, else by path.
    pub async fn truncate(&self, path: &str, size: u64, fh: Option<u64>) -> Result<()> {
        let ino = self.lookup(path).await?;
        self.fs.setattr(ino, None, None, None, Some(size), Times::default(), fh).await.map(drop)
    }

    pub async fn setxattr(&self, path: &str, name: &str, value: &[u8]) -> Result<()> {
        self.fs.setxattr(self.lookup(path).await?, name, Some(value)).await
    }

    pub async fn getxattr(&self, path: &str, name: &str) -> Result<Vec<u8>> {
        self.fs.getxattr(self.lookup(path).await?, name).await
    }
}

impl Driver<PithosStore> {
    /// HTTP requests alice's client made so far.
    pub fn requests(&self) -> u64 {
        self.store().inner().client().http().stats().requests
    }
}

impl Driver<SwiftStore> {
    pub fn requests(&self) -> u64 {
        self.store().inner().client().http().stats().requests
    }
}

// ---------------------------------------------------------------------------
// the local cloud
// ---------------------------------------------------------------------------

/// A local cloud whose containers cut files in blocks of `BS`.
pub async fn cloud() -> TestCloud {
    TestCloud::start_with(|c| c.block_size = BS as u64).await
}

/// Alice's client, on `container`.
pub fn alice_at(tc: &TestCloud, container: &str) -> PithosClient {
    PithosClient::new(&tc.pithos(), ALICE_TOKEN, &tc.alice, container).unwrap()
}

pub fn alice(tc: &TestCloud) -> PithosClient {
    alice_at(tc, "pithos")
}

/// `Fs` over alice's container `pithos`.
pub fn pithos(tc: &TestCloud) -> Driver<PithosStore> {
    Driver::new(PithosStore::new(alice(tc)), "pithos", |_| {})
}

/// The object's content on the server, or None.
pub async fn on_server(tc: &TestCloud, name: &str) -> Option<Vec<u8>> {
    alice(tc).get_object(name, &Default::default()).await.ok().map(|(_, b)| b.to_vec())
}

pub async fn upload(tc: &TestCloud, name: &str, data: &[u8]) {
    alice(tc).upload_from_bytes(name, data.to_vec().into(), &PutOptions::default()).await.unwrap();
}

// ---------------------------------------------------------------------------
// the real Swift
// ---------------------------------------------------------------------------

/// The Swift's auth URL, or None (the test is skipped; under CI it fails).
pub fn swift_auth() -> Option<String> {
    match std::env::var("PITHOSFS_SWIFT_AUTH") {
        Ok(u) if !u.trim().is_empty() => Some(u.trim().to_string()),
        _ => {
            let ci = std::env::var("CI").unwrap_or_default();
            assert!(matches!(ci.as_str(), "" | "0" | "false"), "PITHOSFS_SWIFT_AUTH is not set under CI");
            println!("skipped: PITHOSFS_SWIFT_AUTH not set (run scripts/swift start)");
            None
        }
    }
}

/// A fresh container of the test Swift, removed at the end by `remove`.
pub struct SwiftBox {
    pub client: StorageClient,
}

impl SwiftBox {
    pub async fn new(test: &str) -> Option<SwiftBox> {
        let auth = swift_auth()?;
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let name = format!("pithosfs-fscore-{test}-{}-{ms}", std::process::id());
        let client = StorageClient::swift_v1_auth(&auth, "test:tester", "testing", &name).await.unwrap();
        client.create_container(&[]).await.unwrap();
        Some(SwiftBox { client })
    }

    pub fn driver(&self, tune: impl FnOnce(&mut FsOptions)) -> Driver<SwiftStore> {
        Driver::new(SwiftStore::new(self.client.clone()), self.client.container(), tune)
    }

    pub async fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.client.get_object(name, &Default::default()).await.ok().map(|(_, b)| b.to_vec())
    }

    pub async fn remove(self) {
        for _ in 0..5 {
            if let Ok(all) = self.client.list_objects(&ListOptions::default()).await {
                for o in all {
                    let _ = self.client.delete_object(o.name()).await;
                }
            }
            if self.client.delete_container().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
