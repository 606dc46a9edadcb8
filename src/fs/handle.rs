//! An open file: the version it was opened at (its hashmap), the blocks
//! changed since (dirty, in memory), and the read pattern for prefetching.

use crate::blocks::{self, Algorithm, BlockHash};
use crate::clients::pithos::Hashmap;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct OpenFile {
    pub ino: u64,
    pub block_size: u64,
    pub algorithm: Algorithm,
    /// The hashmap the file was opened at (None for a file created here).
    pub base: Option<Arc<Hashmap>>,
    /// The ETag of the opened version: commits are conditional on it.
    pub etag: Option<String>,
    pub size: u64,
    /// Hashes of the clean blocks (index < block count of `size`).
    pub hashes: Vec<BlockHash>,
    /// Changed blocks, whole (up to `block_size` bytes each).
    pub dirty: BTreeMap<usize, Vec<u8>>,
    /// Anything to commit (data, size or a new file).
    pub changed: bool,
    pub writable: bool,
    /// Where the last read ended, and the prefetch window in blocks.
    pub last_end: u64,
    pub window: usize,
}

impl OpenFile {
    pub fn opened(ino: u64, hm: Hashmap, writable: bool) -> OpenFile {
        let count = hm.data_blocks();
        OpenFile {
            ino,
            block_size: hm.block_size,
            algorithm: hm.algorithm,
            etag: hm.info.hash.clone().or_else(|| (!hm.info.etag.is_empty()).then(|| hm.info.etag.clone())),
            size: hm.bytes,
            hashes: hm.hashes.iter().take(count).copied().collect(),
            base: Some(Arc::new(hm)),
            dirty: BTreeMap::new(),
            changed: false,
            writable,
            last_end: 0,
            window: 0,
        }
    }

    pub fn created(ino: u64, block_size: u64, algorithm: Algorithm) -> OpenFile {
        OpenFile {
            ino,
            block_size,
            algorithm,
            base: None,
            etag: None,
            size: 0,
            hashes: Vec::new(),
            dirty: BTreeMap::new(),
            changed: true,
            writable: true,
            last_end: 0,
            window: 0,
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
        Some(BlockRef {
            i,
            hash: *self.hashes.get(i)?,
            len: self.block_len(i),
            algorithm: self.algorithm,
            base: self.base.clone(),
            is_last: self.base.as_ref().is_some_and(|h| i + 1 == h.data_blocks()),
        })
    }

    pub fn dirty_bytes(&self) -> u64 {
        self.dirty.values().map(|b| b.len() as u64).sum()
    }

    /// Cuts or extends the file to `size`; new bytes read as zeros.
    pub fn set_size(&mut self, size: u64) {
        if size == self.size {
            return;
        }
        let bs = self.block_size;
        let old_count = self.block_count();
        let new_count = blocks::block_count(size, bs) as usize;
        self.dirty.retain(|i, _| *i < new_count);
        if size < self.size {
            // The new last block keeps only its first bytes.
            if new_count > 0 {
                let last = new_count - 1;
                let keep = (size - last as u64 * bs) as usize;
                if let Some(b) = self.dirty.get_mut(&last) {
                    b.truncate(keep);
                } else if keep < self.block_len(last) {
                    // Clean block cut short: the caller must load it dirty first.
                    self.size = size;
                    self.hashes.truncate(new_count);
                    self.changed = true;
                    return;
                }
            }
            self.hashes.truncate(new_count);
        } else {
            // Growing: the old last block gains zeros (hash unchanged: trailing
            // zeros do not count), new blocks are all zeros.
            if let Some(b) = old_count.checked_sub(1).and_then(|l| self.dirty.get_mut(&l)) {
                let want = ((size - (old_count as u64 - 1) * bs).min(bs)) as usize;
                b.resize(want, 0);
            }
            while self.hashes.len() < new_count {
                self.hashes.push(BlockHash::empty());
            }
        }
        self.size = size;
        self.changed = true;
    }
}

/// A clean block of an open file's version, as the fetcher needs it.
#[derive(Clone)]
pub struct BlockRef {
    pub i: usize,
    pub hash: BlockHash,
    /// Bytes of the block that belong to the file.
    pub len: usize,
    pub algorithm: Algorithm,
    pub base: Option<Arc<Hashmap>>,
    /// The object's last block (whose hash Pithos may leave stale after a truncate).
    pub is_last: bool,
}
