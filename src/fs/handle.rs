//! An open file: the version it was opened at, the blocks changed since
//! (dirty: in memory up to a bound, then in a spill file), and the read
//! pattern for prefetching.
//!
//! A Pithos file is pinned by its hashmap: block `i` is the block with hash
//! `hashes[i]`. A plain-storage (Swift) file has no hashmap: it is pinned by
//! its ETag, block `i` is a byte range read with `If-Match`, and `hashes[i]`
//! holds a key derived from the ETag so the block cache serves it too.

use crate::blocks::{self, Algorithm, BlockHash};
use crate::clients::pithos::Hashmap;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The largest object plain storage takes in one PUT (Swift's default
/// `max_file_size`, 5 GiB): the mount commits a plain file in one PUT.
pub const PLAIN_MAX_SIZE: u64 = 5 << 30;

/// The largest Pithos object with blocks of `block_size`: one hashmap of at
/// most `MAX_BLOCKS_PER_OBJECT` hashes (the local cloud refuses more).
pub fn pithos_max_size(block_size: u64) -> u64 {
    block_size.saturating_mul(blocks::MAX_BLOCKS_PER_OBJECT)
}

/// Where the clean blocks of an opened version come from.
#[derive(Clone)]
pub enum Source {
    /// Pithos: the version's hashmap.
    Hashmap(Arc<Hashmap>),
    /// Plain storage: ranged reads of this version.
    Pinned(Arc<PlainVersion>),
}

/// A version of a plain-storage object: ranged reads carry `If-Match` with
/// its ETag and stop at its size (the open file may have grown since).
pub struct PlainVersion {
    pub etag: String,
    pub size: u64,
}

pub struct OpenFile {
    pub ino: u64,
    pub block_size: u64,
    pub algorithm: Algorithm,
    /// The version the file was opened at (None for a file created here).
    pub base: Option<Source>,
    /// The ETag of the opened version: commits are conditional on it.
    pub etag: Option<String>,
    pub size: u64,
    /// The largest size the server can hold: growing past it is `EFBIG`.
    pub max_size: u64,
    /// Cache keys of the clean blocks (index < block count of `size`): the
    /// block hashes on Pithos, ETag-derived keys on plain storage.
    pub hashes: Vec<BlockHash>,
    /// Changed blocks, whole (up to `block_size` bytes each).
    pub dirty: DirtyBlocks,
    /// Anything to commit (data, size or a new file).
    pub changed: bool,
    pub writable: bool,
    /// Where the last read ended, and the prefetch window in blocks.
    pub last_end: u64,
    pub window: usize,
}

/// The cache key of block `i` of a plain-storage object: the ETag (an MD5 of
/// the content on Swift) with the size and block geometry, so copies of one
/// object share cached blocks and a new version never meets an old block.
pub fn plain_key(etag: &str, size: u64, block_size: u64, i: usize) -> BlockHash {
    let mut h = Sha256::new();
    h.update(b"pithosfs-plain\0");
    h.update(etag.as_bytes());
    h.update([0]);
    h.update(size.to_le_bytes());
    h.update(block_size.to_le_bytes());
    h.update((i as u64).to_le_bytes());
    BlockHash(h.finalize().into())
}

/// The cache keys of every block of a plain-storage object.
pub fn plain_keys(etag: &str, size: u64, block_size: u64) -> Vec<BlockHash> {
    (0..blocks::block_count(size, block_size) as usize).map(|i| plain_key(etag, size, block_size, i)).collect()
}

impl OpenFile {
    fn with(ino: u64, block_size: u64, algorithm: Algorithm, max_size: u64) -> OpenFile {
        OpenFile {
            ino,
            block_size,
            algorithm,
            base: None,
            etag: None,
            size: 0,
            max_size,
            hashes: Vec::new(),
            dirty: DirtyBlocks::default(),
            changed: false,
            writable: false,
            last_end: 0,
            window: 0,
        }
    }

    pub fn opened(ino: u64, hm: Hashmap, writable: bool) -> OpenFile {
        let count = hm.data_blocks();
        let mut f = OpenFile::with(ino, hm.block_size, hm.algorithm, pithos_max_size(hm.block_size));
        f.etag = hm.info.hash.clone().or_else(|| (!hm.info.etag.is_empty()).then(|| hm.info.etag.clone()));
        f.size = hm.bytes;
        f.hashes = hm.hashes.iter().take(count).copied().collect();
        f.base = Some(Source::Hashmap(Arc::new(hm)));
        f.writable = writable;
        f
    }

    /// A plain-storage object of `size` bytes at `etag`, cut in `block_size` ranges.
    pub fn opened_plain(ino: u64, etag: &str, size: u64, block_size: u64, writable: bool) -> OpenFile {
        let mut f = OpenFile::with(ino, block_size, Algorithm::Sha256, PLAIN_MAX_SIZE);
        f.etag = (!etag.is_empty()).then(|| etag.to_string());
        f.size = size;
        f.hashes = plain_keys(etag, size, block_size);
        f.base = Some(Source::Pinned(Arc::new(PlainVersion { etag: etag.to_string(), size })));
        f.writable = writable;
        f
    }

    /// A file created here, on a server that holds at most `max_size` bytes.
    pub fn created(ino: u64, block_size: u64, algorithm: Algorithm, max_size: u64) -> OpenFile {
        let mut f = OpenFile::with(ino, block_size, algorithm, max_size);
        f.changed = true;
        f.writable = true;
        f
    }

    pub fn hashmap(&self) -> Option<&Arc<Hashmap>> {
        match &self.base {
            Some(Source::Hashmap(h)) => Some(h),
            _ => None,
        }
    }

    pub fn block_count(&self) -> usize {
        blocks::block_count(self.size, self.block_size) as usize
    }

    /// Bytes of block `i` that belong to the file.
    pub fn block_len(&self, i: usize) -> usize {
        let start = i as u64 * self.block_size;
        self.size.saturating_sub(start).min(self.block_size) as usize
    }

    /// What fetching clean block `i` needs, detached from the handle.
    pub fn block_ref(&self, i: usize) -> Option<BlockRef> {
        let base_blocks = match &self.base {
            Some(Source::Hashmap(h)) => h.data_blocks(),
            Some(Source::Pinned(_)) => self.hashes.len(),
            None => 0,
        };
        Some(BlockRef {
            i,
            hash: *self.hashes.get(i)?,
            len: self.block_len(i),
            algorithm: self.algorithm,
            block_size: self.block_size,
            base: self.base.clone(),
            is_last: i + 1 == base_blocks,
        })
    }

    /// Cuts or extends the file to `size`; new bytes read as zeros. Cutting
    /// inside a clean block needs that block dirty first: the caller loads it.
    /// Growing past `max_size` is `EFBIG` (and changes nothing): the hashes
    /// of the blocks, all a sparse file costs, stay within one hashmap.
    pub fn set_size(&mut self, size: u64) -> io::Result<()> {
        if size == self.size {
            return Ok(());
        }
        if size > self.size && size > self.max_size {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        let bs = self.block_size;
        let old_count = self.block_count();
        let new_count = blocks::block_count(size, bs) as usize;
        self.dirty.retain_below(new_count);
        if size < self.size {
            // The new last block keeps only its first bytes.
            if new_count > 0 {
                let last = new_count - 1;
                let keep = (size - last as u64 * bs) as usize;
                if let Some(b) = self.dirty.get_mut(last)? {
                    b.truncate(keep);
                }
            }
            self.hashes.truncate(new_count);
        } else {
            // Growing: the old last block gains zeros (hash unchanged: trailing
            // zeros do not count), new blocks are all zeros.
            if let Some(l) = old_count.checked_sub(1) {
                let want = ((size - l as u64 * bs).min(bs)) as usize;
                if let Some(b) = self.dirty.get_mut(l)? {
                    b.resize(want, 0);
                }
            }
            while self.hashes.len() < new_count {
                self.hashes.push(BlockHash::empty());
            }
        }
        self.size = size;
        self.changed = true;
        Ok(())
    }
}

/// A clean block of an open file's version, as the fetcher needs it.
#[derive(Clone)]
pub struct BlockRef {
    pub i: usize,
    /// Its cache key (the block hash on Pithos).
    pub hash: BlockHash,
    /// Bytes of the block that belong to the file.
    pub len: usize,
    pub algorithm: Algorithm,
    pub block_size: u64,
    pub base: Option<Source>,
    /// The version's last block (whose hash Pithos may leave stale after a truncate).
    pub is_last: bool,
}

/// The changed blocks of one open file: in memory, and past a bound in an
/// unnamed spill file (gone with the handle, or with the process).
#[derive(Default)]
pub struct DirtyBlocks {
    mem: BTreeMap<usize, Vec<u8>>,
    /// Spilled blocks; block `i` lives at `i * block_size` of the file.
    spilled: BTreeMap<usize, Spilled>,
    file: Option<Arc<File>>,
    block_size: u64,
}

/// A block in the spill file: its length and hash (taken while it was in
/// memory, so a commit need not read it back to hash it).
#[derive(Clone, Copy)]
struct Spilled {
    len: usize,
    hash: BlockHash,
}

impl DirtyBlocks {
    pub fn contains(&self, i: usize) -> bool {
        self.mem.contains_key(&i) || self.spilled.contains_key(&i)
    }

    pub fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.spilled.is_empty()
    }

    /// Bytes held in memory.
    pub fn mem_bytes(&self) -> u64 {
        self.mem.values().map(|b| b.len() as u64).sum()
    }

    pub fn in_memory(&self, i: usize) -> Option<&[u8]> {
        self.mem.get(&i).map(Vec::as_slice)
    }

    /// A copy of block `i`, from memory or from the spill file.
    pub fn read(&self, i: usize) -> io::Result<Option<Bytes>> {
        if let Some(b) = self.mem.get(&i) {
            return Ok(Some(Bytes::copy_from_slice(b)));
        }
        read_spilled(self.file.as_deref(), self.spilled.get(&i).map(|s| s.len), i as u64 * self.block_size)
    }

    /// Block `i` to change in place (a spilled block comes back to memory).
    pub fn get_mut(&mut self, i: usize) -> io::Result<Option<&mut Vec<u8>>> {
        if !self.mem.contains_key(&i) {
            let Some(data) = self.read(i)? else { return Ok(None) };
            self.spilled.remove(&i);
            self.mem.insert(i, data.to_vec());
        }
        Ok(self.mem.get_mut(&i))
    }

    pub fn insert(&mut self, i: usize, data: Vec<u8>) {
        self.spilled.remove(&i);
        self.mem.insert(i, data);
    }

    /// The dirty blocks as they are now, detached from the handle (blocks in
    /// memory are copied; spilled ones are read from the shared file on demand).
    pub fn snapshot(&self) -> DirtySnapshot {
        DirtySnapshot {
            mem: self.mem.iter().map(|(i, b)| (*i, Bytes::copy_from_slice(b))).collect(),
            spilled: self.spilled.clone(),
            file: self.file.clone(),
            block_size: self.block_size,
        }
    }

    /// Forgets every dirty block (after a commit) and the spill file.
    pub fn clear(&mut self) {
        self.mem.clear();
        self.spilled.clear();
        self.file = None;
    }

    /// Forgets the blocks from index `count` on (the file was cut).
    pub fn retain_below(&mut self, count: usize) {
        self.mem.retain(|i, _| *i < count);
        self.spilled.retain(|i, _| *i < count);
    }

    /// Moves the full blocks (all but `keep_last`) to the spill file in `dir`,
    /// so a large write holds a bounded amount of memory. Hands back the
    /// blocks moved (their memory, for the caller to send on or drop).
    pub fn spill(
        &mut self,
        dir: &Path,
        block_size: u64,
        keep_last: usize,
        hash: impl Fn(&[u8]) -> BlockHash,
    ) -> io::Result<Vec<(usize, Bytes)>> {
        if self.file.is_none() {
            std::fs::create_dir_all(dir)?;
            self.file = Some(Arc::new(tempfile::tempfile_in(dir)?));
            self.block_size = block_size;
        }
        let Some(file) = &self.file else { return Ok(Vec::new()) };
        let full: Vec<usize> = self
            .mem
            .iter()
            .filter(|(i, b)| b.len() as u64 == self.block_size && **i != keep_last)
            .map(|(i, _)| *i)
            .collect();
        let mut moved = Vec::with_capacity(full.len());
        for i in full {
            if let Some(b) = self.mem.get(&i) {
                file.write_all_at(b, i as u64 * self.block_size)?;
                self.spilled.insert(i, Spilled { len: b.len(), hash: hash(b) });
            }
            if let Some(b) = self.mem.remove(&i) {
                moved.push((i, Bytes::from(b)));
            }
        }
        Ok(moved)
    }
}

/// A spilled block of `len` bytes at `offset` of the spill file.
fn read_spilled(file: Option<&File>, len: Option<usize>, offset: u64) -> io::Result<Option<Bytes>> {
    let (Some(file), Some(len)) = (file, len) else { return Ok(None) };
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(Some(Bytes::from(buf)))
}

/// A detached copy of an open file's dirty blocks, for a commit in flight.
pub struct DirtySnapshot {
    mem: BTreeMap<usize, Bytes>,
    spilled: BTreeMap<usize, Spilled>,
    file: Option<Arc<File>>,
    block_size: u64,
}

impl DirtySnapshot {
    pub fn contains(&self, i: usize) -> bool {
        self.mem.contains_key(&i) || self.spilled.contains_key(&i)
    }

    pub fn indices(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.mem.keys().chain(self.spilled.keys()).copied().collect();
        all.sort_unstable();
        all
    }

    /// The hash of block `i` when it was taken at spill time.
    pub fn known_hash(&self, i: usize) -> Option<BlockHash> {
        self.spilled.get(&i).map(|s| s.hash)
    }

    /// The blocks held in memory (cheap clones).
    pub fn in_memory(&self) -> impl Iterator<Item = (usize, &Bytes)> {
        self.mem.iter().map(|(i, b)| (*i, b))
    }

    /// Block `i`, from memory or read back from the spill file.
    pub fn read(&self, i: usize) -> io::Result<Option<Bytes>> {
        if let Some(b) = self.mem.get(&i) {
            return Ok(Some(b.clone()));
        }
        read_spilled(self.file.as_deref(), self.spilled.get(&i).map(|s| s.len), i as u64 * self.block_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_blocks_read_back_and_come_back_to_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = DirtyBlocks::default();
        d.insert(0, vec![1; 8]);
        d.insert(1, vec![2; 8]);
        d.insert(2, vec![3; 3]);
        let moved = d.spill(dir.path(), 8, 2, |b| BlockHash([b[0]; 32])).unwrap();
        assert_eq!(moved.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(d.mem_bytes(), 3);
        let snap = d.snapshot();
        assert_eq!(
            (snap.known_hash(0), snap.known_hash(2)),
            (Some(BlockHash([1; 32])), None),
            "0 and 1 spilled, 2 kept"
        );
        assert_eq!(snap.indices(), vec![0, 1, 2]);
        assert_eq!(d.read(1).unwrap().unwrap(), Bytes::from(vec![2u8; 8]));
        assert_eq!(d.snapshot().known_hash(1), Some(BlockHash([2; 32])));
        d.get_mut(0).unwrap().unwrap()[0] = 9;
        assert_eq!((d.mem_bytes(), d.snapshot().known_hash(0)), (11, None), "0 came back to memory");
        assert_eq!(d.read(0).unwrap().unwrap()[..2], [9, 1]);
        d.retain_below(1);
        assert_eq!(d.snapshot().indices(), vec![0]);
        // The spill file has no name: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn growing_past_the_largest_object_is_efbig_and_changes_nothing() {
        let mut f = OpenFile::created(1, 8, Algorithm::Sha256, 80);
        f.set_size(80).unwrap();
        assert_eq!((f.size, f.hashes.len()), (80, 10));
        let e = f.set_size(81).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFBIG));
        let e = f.set_size(u64::MAX).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFBIG));
        assert_eq!((f.size, f.hashes.len()), (80, 10), "a refused size leaves the file as it was");
        f.set_size(3).unwrap();
        assert_eq!((f.size, f.hashes.len()), (3, 1));
        // On Pithos the limit is a hashmap of MAX_BLOCKS_PER_OBJECT blocks.
        assert_eq!(pithos_max_size(4 << 20), 1 << 40);
        assert_eq!(pithos_max_size(u64::MAX), u64::MAX);
    }

    #[test]
    fn plain_keys_differ_by_version_and_block() {
        assert_ne!(plain_key("a", 10, 4, 0), plain_key("a", 10, 4, 1));
        assert_ne!(plain_key("a", 10, 4, 0), plain_key("b", 10, 4, 0));
        assert_eq!(plain_keys("a", 10, 4).len(), 3);
    }
}
