//! The content-addressed block directory: `blocks/<2 hex>/<64 hex>`, each file
//! holding one block with its trailing zero bytes removed (they are restored on
//! read). Paths are made from validated hashes only, so no request can name a
//! file outside the directory.
//!
//! A block is written to `tmp/`, synced, renamed into place and its directory
//! synced before the write returns: by the time metadata refers to a block, the
//! block is on disk, so a crash never leaves an object pointing at nothing.
//!
//! Every write goes through a request's [`Pinned`] set: garbage collection
//! leaves a pinned block alone, so a block a request wrote (or found already
//! there) stays until the request has committed the version that lists it.
//! Blocks a request created but never committed become *suspects*, which
//! the collector checks on its next pass.

use crate::blocks::{self, Algorithm, BlockHash};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct BlockStore {
    root: PathBuf,
    tmp: PathBuf,
    pub block_size: u64,
    pub algorithm: Algorithm,
    next_tmp: AtomicU64,
    /// Blocks requests in flight rely on, with how many requests do.
    pins: Mutex<HashMap<BlockHash, u32>>,
    /// Blocks created by requests that did not commit: (hash, when, epoch seconds).
    suspects: Mutex<Vec<(BlockHash, f64)>>,
}

/// The pins held while garbage collection decides and unlinks.
pub struct PinsHeld<'a>(MutexGuard<'a, HashMap<BlockHash, u32>>);

impl PinsHeld<'_> {
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.0.contains_key(hash)
    }
}

/// The blocks one request wrote or relies on; they are safe from garbage
/// collection until this is dropped.
pub struct Pinned {
    store: Arc<BlockStore>,
    state: Mutex<PinnedState>,
}

#[derive(Default)]
struct PinnedState {
    hashes: HashSet<BlockHash>,
    created: Vec<BlockHash>,
    kept: bool,
}

impl Pinned {
    /// Stores one block (at most `block_size` bytes) durably; returns its hash.
    pub fn put(&self, block: &[u8]) -> io::Result<BlockHash> {
        let hash = blocks::hash_block(self.store.algorithm, block);
        if hash == BlockHash::empty() {
            return Ok(hash); // all zeros: nothing to keep
        }
        // Pinned before the store looks for the file: the collector either
        // sees the pin or has already unlinked, and then the block is written anew.
        let first = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.hashes.insert(hash)
        };
        if first {
            *self.store.lock_pins().entry(hash).or_insert(0) += 1;
        }
        if self.store.put_hashed(hash, block)? {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).created.push(hash);
        }
        Ok(hash)
    }

    /// The request committed what it wrote: its new blocks are referenced
    /// (or recorded as uploads) and need no checking.
    pub fn keep(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).kept = true;
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let st = std::mem::take(&mut *self.state.lock().unwrap_or_else(|p| p.into_inner()));
        {
            let mut pins = self.store.lock_pins();
            for h in &st.hashes {
                if let Some(n) = pins.get_mut(h) {
                    *n -= 1;
                    if *n == 0 {
                        pins.remove(h);
                    }
                }
            }
        }
        if !st.kept && !st.created.is_empty() {
            let now = crate::cloud::wire::now();
            let mut suspects = self.store.suspects.lock().unwrap_or_else(|p| p.into_inner());
            suspects.extend(st.created.into_iter().map(|h| (h, now)));
        }
    }
}

impl BlockStore {
    pub fn open(root: &Path, block_size: u64, algorithm: Algorithm) -> io::Result<BlockStore> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        // Leftovers of writes a crash interrupted; never referenced by metadata.
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        for i in 0..=255u8 {
            fs::create_dir_all(root.join(format!("{i:02x}")))?;
        }
        Ok(BlockStore {
            root: root.to_path_buf(),
            tmp,
            block_size,
            algorithm,
            next_tmp: AtomicU64::new(0),
            pins: Mutex::new(HashMap::new()),
            suspects: Mutex::new(Vec::new()),
        })
    }

    /// A new pin set for one request's writes.
    pub fn pinned(self: &Arc<Self>) -> Arc<Pinned> {
        Arc::new(Pinned { store: self.clone(), state: Mutex::new(PinnedState::default()) })
    }

    fn lock_pins(&self) -> MutexGuard<'_, HashMap<BlockHash, u32>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds every pin still: no request can pin (and so write or rely on) a
    /// block until this is dropped. Garbage collection decides and unlinks
    /// under it.
    pub fn hold_pins(&self) -> PinsHeld<'_> {
        PinsHeld(self.lock_pins())
    }

    /// Blocks created by requests that did not commit, since the last call.
    pub fn take_suspects(&self) -> Vec<(BlockHash, f64)> {
        std::mem::take(&mut *self.suspects.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Unlinks a block; returns the bytes freed (0 if it was not there).
    /// Only garbage collection calls this, holding the pins.
    pub fn remove(&self, _held: &PinsHeld<'_>, hash: &BlockHash) -> io::Result<u64> {
        let path = self.path(hash);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        match fs::remove_file(&path) {
            Ok(()) => Ok(len),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Every stored block of directory `prefix` (`0..=255`) with its
    /// modification time (epoch seconds); names that are not block hashes are skipped.
    pub fn stored(&self, prefix: u8) -> io::Result<Vec<(BlockHash, f64)>> {
        let mut out = Vec::new();
        let dir = match fs::read_dir(self.root.join(format!("{prefix:02x}"))) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in dir {
            let entry = entry?;
            let Some(hash) = entry.file_name().to_str().and_then(|n| BlockHash::from_hex(n).ok()) else { continue };
            let mtime = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            out.push((hash, mtime));
        }
        Ok(out)
    }

    /// Number of stored blocks and their bytes (on disk, trailing zeros excluded).
    pub fn usage(&self) -> io::Result<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for prefix in 0..=255u8 {
            for (hash, _) in self.stored(prefix)? {
                n += 1;
                bytes += fs::metadata(self.path(&hash)).map_or(0, |m| m.len());
            }
        }
        Ok((n, bytes))
    }

    fn path(&self, hash: &BlockHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    pub fn contains(&self, hash: &BlockHash) -> bool {
        *hash == BlockHash::empty() || self.path(hash).exists()
    }

    /// Stores a block whose hash the caller computed (and pinned); true when
    /// the file was created rather than found.
    fn put_hashed(&self, hash: BlockHash, block: &[u8]) -> io::Result<bool> {
        let dest = self.path(&hash);
        if dest.exists() {
            return Ok(false);
        }
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}-{n}", std::process::id()));
        let data = blocks::strip_trailing_zeros(block);
        let result = write_synced(&tmp, data).and_then(|()| {
            fs::rename(&tmp, &dest)?;
            match dest.parent() {
                Some(dir) => File::open(dir)?.sync_all(),
                None => Ok(()),
            }
        });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| true)
    }

    /// Reads a block, zero-padded to `len` bytes (the caller knows how long the
    /// block is from the object size).
    pub fn get(&self, hash: &BlockHash, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(len);
        if *hash != BlockHash::empty() {
            let f = File::open(self.path(hash))
                .map_err(|e| io::Error::new(e.kind(), format!("block {hash} is missing from the block store: {e}")))?;
            f.take(len as u64).read_to_end(&mut buf)?;
        }
        buf.resize(len, 0);
        Ok(buf)
    }

    /// Reads `len` bytes at `offset` of a block, zeros past what is stored.
    pub fn read_range(&self, hash: &BlockHash, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::io::{Seek, SeekFrom};
        if *hash == BlockHash::empty() || len == 0 {
            return Ok(vec![0u8; len]);
        }
        let mut f = File::open(self.path(hash))
            .map_err(|e| io::Error::new(e.kind(), format!("block {hash} is missing from the block store: {e}")))?;
        // Read into spare capacity rather than a zero-filled buffer: GETs are hot.
        let mut buf = Vec::with_capacity(len);
        f.seek(SeekFrom::Start(offset))?;
        f.take(len as u64).read_to_end(&mut buf)?;
        buf.resize(len, 0); // trailing zeros are not stored
        Ok(buf)
    }
}

/// Writes `data` to a new file and syncs it. Direct I/O where the file system
/// allows it: the block skips the page cache, which halves the CPU and memory
/// traffic of an upload (blocks are read back from disk, not from memory).
fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    const ALIGN: usize = 4096;
    let padded = data.len().div_ceil(ALIGN) * ALIGN;
    if padded > 0 {
        if let Some(mut buf) = AlignedBuf::zeroed(padded, ALIGN) {
            buf[..data.len()].copy_from_slice(data);
            let direct = fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_DIRECT).open(path);
            match direct {
                Ok(mut f) => {
                    f.write_all(&buf)?;
                    f.set_len(data.len() as u64)?;
                    return f.sync_all();
                }
                // tmpfs and some others refuse O_DIRECT: buffered below.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// A zeroed, `align`-aligned heap buffer, as direct I/O needs.
struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    fn zeroed(len: usize, align: usize) -> Option<AlignedBuf> {
        let layout = std::alloc::Layout::from_size_align(len, align).ok()?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        std::ptr::NonNull::new(ptr).map(|ptr| AlignedBuf { ptr, layout })
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` owns `layout.size()` initialised (zeroed) bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_dedup() {
        let dir = tempfile::tempdir().unwrap();
        let bs = Arc::new(BlockStore::open(dir.path(), 8, Algorithm::Sha256).unwrap());
        let pins = bs.pinned();
        let h = pins.put(b"abc\0\0").unwrap();
        assert_eq!(h, blocks::hash_block(Algorithm::Sha256, b"abc"));
        assert_eq!(pins.put(b"abc").unwrap(), h);
        assert_eq!(bs.get(&h, 5).unwrap(), b"abc\0\0");
        assert_eq!(bs.get(&h, 2).unwrap(), b"ab");
        assert_eq!(bs.get(&BlockHash::empty(), 3).unwrap(), vec![0; 3]);
        let other = blocks::hash_block(Algorithm::Sha256, b"zzz");
        assert!(bs.contains(&h) && !bs.contains(&other));
        assert!(bs.get(&other, 3).is_err());
        assert_eq!(bs.read_range(&h, 1, 4).unwrap(), b"bc\0\0");
        // a block of several pages, with a tail that is not page-aligned
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8 + 1).collect();
        let bs = Arc::new(BlockStore::open(dir.path(), 16384, Algorithm::Sha256).unwrap());
        let hb = bs.pinned().put(&big).unwrap();
        assert_eq!(bs.get(&hb, 10_000).unwrap(), big);
        assert_eq!(fs::metadata(bs.path(&hb)).unwrap().len(), 10_000);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    /// A request's pins hold its blocks; once it ends without committing,
    /// the blocks it created (not those it found) become suspects.
    #[test]
    fn pins_and_suspects() {
        let dir = tempfile::tempdir().unwrap();
        let bs = Arc::new(BlockStore::open(dir.path(), 8, Algorithm::Sha256).unwrap());
        let old = bs.pinned();
        let a = old.put(b"aaa").unwrap();
        old.keep();
        drop(old);
        assert!(bs.take_suspects().is_empty());
        let req = bs.pinned();
        assert_eq!(req.put(b"aaa").unwrap(), a);
        let b = req.put(b"bbb").unwrap();
        assert_eq!(req.put(&[0u8; 8]).unwrap(), BlockHash::empty());
        {
            let held = bs.hold_pins();
            assert!(held.contains(&a) && held.contains(&b));
        }
        drop(req);
        assert!(!bs.hold_pins().contains(&a));
        let suspects: Vec<BlockHash> = bs.take_suspects().into_iter().map(|(h, _)| h).collect();
        assert_eq!(suspects, vec![b]);
        let held = bs.hold_pins();
        assert_eq!(bs.remove(&held, &b).unwrap(), 3);
        assert_eq!(bs.remove(&held, &b).unwrap(), 0);
        drop(held);
        let mut all: Vec<BlockHash> = (0..=255u8).flat_map(|p| bs.stored(p).unwrap()).map(|(h, _)| h).collect();
        all.sort();
        assert_eq!(all, vec![a]);
        assert_eq!(bs.usage().unwrap(), (1, 3));
    }
}
