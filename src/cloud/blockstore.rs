//! The content-addressed block directory: `blocks/<2 hex>/<64 hex>`, each file
//! holding one block with its trailing zero bytes removed (they are restored on
//! read). Paths are made from validated hashes only, so no request can name a
//! file outside the directory.
//!
//! A block is written to `tmp/`, synced, renamed into place and its directory
//! synced before the write returns: by the time metadata refers to a block, the
//! block is on disk, so a crash never leaves an object pointing at nothing.

use crate::blocks::{self, Algorithm, BlockHash};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct BlockStore {
    root: PathBuf,
    tmp: PathBuf,
    pub block_size: u64,
    pub algorithm: Algorithm,
    next_tmp: AtomicU64,
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
        Ok(BlockStore { root: root.to_path_buf(), tmp, block_size, algorithm, next_tmp: AtomicU64::new(0) })
    }

    fn path(&self, hash: &BlockHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    pub fn contains(&self, hash: &BlockHash) -> bool {
        *hash == BlockHash::empty() || self.path(hash).exists()
    }

    /// Stores one block (at most `block_size` bytes) durably; returns its hash.
    pub fn put(&self, block: &[u8]) -> io::Result<BlockHash> {
        let hash = blocks::hash_block(self.algorithm, block);
        self.put_hashed(hash, block)?;
        Ok(hash)
    }

    /// Stores a block whose hash the caller computed.
    pub fn put_hashed(&self, hash: BlockHash, block: &[u8]) -> io::Result<()> {
        if hash == BlockHash::empty() {
            return Ok(()); // all zeros: nothing to keep
        }
        let dest = self.path(&hash);
        if dest.exists() {
            return Ok(());
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
        result
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

    pub fn missing(&self, hashes: &[BlockHash]) -> Vec<BlockHash> {
        let mut seen = std::collections::HashSet::new();
        hashes.iter().filter(|h| seen.insert(**h) && !self.contains(h)).copied().collect()
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
        let bs = BlockStore::open(dir.path(), 8, Algorithm::Sha256).unwrap();
        let h = bs.put(b"abc\0\0").unwrap();
        assert_eq!(h, blocks::hash_block(Algorithm::Sha256, b"abc"));
        assert_eq!(bs.put(b"abc").unwrap(), h);
        assert_eq!(bs.get(&h, 5).unwrap(), b"abc\0\0");
        assert_eq!(bs.get(&h, 2).unwrap(), b"ab");
        assert_eq!(bs.get(&BlockHash::empty(), 3).unwrap(), vec![0; 3]);
        let other = blocks::hash_block(Algorithm::Sha256, b"zzz");
        assert_eq!(bs.missing(&[h, other, other]), vec![other]);
        assert!(bs.get(&other, 3).is_err());
        assert_eq!(bs.read_range(&h, 1, 4).unwrap(), b"bc\0\0");
        // a block of several pages, with a tail that is not page-aligned
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8 + 1).collect();
        let bs = BlockStore::open(dir.path(), 16384, Algorithm::Sha256).unwrap();
        let hb = bs.put(&big).unwrap();
        assert_eq!(bs.get(&hb, 10_000).unwrap(), big);
        assert_eq!(fs::metadata(bs.path(&hb)).unwrap().len(), 10_000);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
