//! An open file: the version it was opened at, the blocks changed since
//! (`dirty`: in memory up to a bound, then in a spill file), and the read
//! pattern for prefetching. Its state changes only through its methods.
//!
//! Block `i` of the opened version has the cache key `keys[i]`: its hash
//! where the store names blocks by content (Pithos), a key derived from the
//! version's ETag elsewhere (Swift), so the block cache serves both.

use super::dirty::{DirtyBlocks, DirtySnapshot};
use super::store::{Condition, Geometry, Opened, Version};
use crate::blocks::{self, Algorithm, BlockHash};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub struct OpenFile {
    ino: u64,
    block_size: u64,
    content_hash: Option<Algorithm>,
    /// The version the file was opened at, or last committed (None for a
    /// file created here and not committed yet).
    base: Option<Arc<Version>>,
    size: u64,
    /// The largest size the store can hold: growing past it is `EFBIG`.
    max_size: u64,
    /// Cache keys of the clean blocks (index < block count of `size`).
    keys: Vec<BlockHash>,
    /// Changed blocks, whole (up to `block_size` bytes each).
    dirty: DirtyBlocks,
    /// Anything to commit (data, size or a new file).
    changed: bool,
    writable: bool,
    /// Where the last read ended, and the prefetch window in blocks.
    last_end: u64,
    window: usize,
    /// Blocks below this a sequential reader has passed and released.
    released: usize,
    /// A commit whose outcome is unknown (its reply was lost and the store
    /// could not be asked): what the name holds may be that version of ours.
    lost: Option<LostCommit>,
    /// Clean blocks taken from another file by `copy_file_range` (by their
    /// hash, no data moved), until the next commit makes them this file's:
    /// where each is read from meanwhile.
    copied: BTreeMap<usize, CopiedBlock>,
}

/// Where a block copied from another file is read from: block `i` of
/// `version` of the file `ino` (its hash is the key the copy took).
#[derive(Clone, Debug)]
pub struct CopiedBlock {
    pub ino: u64,
    pub i: usize,
    pub version: Arc<Version>,
}

/// A commit that may or may not have landed, as a later `stat` would show
/// it: the next commit replaces it if the name holds it, and otherwise is
/// conditional on the version before it, as if it had never been tried.
#[derive(Clone, Debug, PartialEq)]
pub struct LostCommit {
    pub size: u64,
    /// The store's name for its content; None when it could not be told
    /// (then whatever the name holds may be it).
    pub content_id: Option<String>,
}

/// A clean block of an open file's version, as the fetcher needs it.
#[derive(Clone)]
pub struct BlockRef {
    pub i: usize,
    /// Its cache key (the block hash on Pithos).
    pub key: BlockHash,
    /// Bytes of the block that belong to the file now.
    pub len: usize,
    /// The version it is read from.
    pub version: Option<Arc<Version>>,
    /// The file it is read from, when not the one asking (a copied block).
    pub ino: Option<u64>,
}

impl OpenFile {
    fn with(ino: u64, block_size: u64, content_hash: Option<Algorithm>, max_size: u64) -> OpenFile {
        OpenFile {
            ino,
            block_size,
            content_hash,
            base: None,
            size: 0,
            max_size,
            keys: Vec::new(),
            dirty: DirtyBlocks::default(),
            changed: false,
            writable: false,
            last_end: 0,
            window: 0,
            released: 0,
            lost: None,
            copied: BTreeMap::new(),
        }
    }

    /// A file opened at the version `o` pins.
    pub fn opened(ino: u64, o: Opened, writable: bool) -> OpenFile {
        let v = o.version;
        let mut f = OpenFile::with(ino, v.block_size, v.content_hash, o.max_size);
        f.size = v.size;
        f.keys = o.keys;
        f.keys.truncate(f.block_count());
        f.base = Some(Arc::new(v));
        f.writable = writable;
        f
    }

    /// A file created here, in a container of geometry `g`.
    pub fn created(ino: u64, g: &Geometry) -> OpenFile {
        let mut f = OpenFile::with(ino, g.block_size, g.content_hash, g.max_size);
        f.changed = true;
        f.writable = true;
        f
    }

    /// A file created here by another handle and not committed yet, opened
    /// again: empty, and nothing to commit until this handle changes it (a
    /// reader's close must not write the file, empty, over its creator's).
    pub fn uncommitted(ino: u64, g: &Geometry, writable: bool) -> OpenFile {
        let mut f = OpenFile::with(ino, g.block_size, g.content_hash, g.max_size);
        f.writable = writable;
        f
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The hash that names blocks by content, where the store has one.
    pub fn content_hash(&self) -> Option<Algorithm> {
        self.content_hash
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Whether anything awaits a commit.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// The largest size the file may grow to.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// The version reads are pinned to.
    pub fn version(&self) -> Option<&Arc<Version>> {
        self.base.as_ref()
    }

    /// What the next commit is conditional on: the version it replaces, or
    /// no object at all for a file created here.
    pub fn condition(&self) -> Condition {
        match self.base.as_ref().and_then(|v| v.tag.clone()) {
            Some(tag) => Condition::Matches(tag),
            None => Condition::Absent,
        }
    }

    /// A commit failed with an unknown outcome: it may be on the server.
    pub fn lost_commit(&mut self, lost: LostCommit) {
        self.lost = Some(lost);
    }

    /// The last commit whose outcome is unknown, if no commit went through since.
    pub fn lost(&self) -> Option<&LostCommit> {
        self.lost.as_ref()
    }

    /// The cache key of clean block `i`.
    pub fn key(&self, i: usize) -> Option<&BlockHash> {
        self.keys.get(i)
    }

    pub fn keys(&self) -> &[BlockHash] {
        &self.keys
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
        let key = *self.keys.get(i)?;
        Some(match self.copied.get(&i) {
            Some(c) => {
                BlockRef { i: c.i, key, len: self.block_len(i), version: Some(c.version.clone()), ino: Some(c.ino) }
            }
            None => BlockRef { i, key, len: self.block_len(i), version: self.base.clone(), ino: None },
        })
    }

    /// The blocks copied from other files, by index.
    pub fn copied(&self) -> &BTreeMap<usize, CopiedBlock> {
        &self.copied
    }

    /// Block `i` becomes the clean block `key` of another file, `len`
    /// bytes long (a whole block, or the last block of the file, which then
    /// ends with it): no data moves, the next commit lists the hash.
    pub fn take_block(&mut self, i: usize, key: BlockHash, len: usize, from: CopiedBlock) -> io::Result<()> {
        let start = i as u64 * self.block_size;
        let end = start + len as u64;
        if len as u64 > self.block_size || (len as u64) < self.block_size && end < self.size {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if end > self.size {
            self.set_size(end)?;
        }
        self.dirty.remove(i);
        self.keys[i] = key;
        self.copied.insert(i, from);
        self.changed = true;
        Ok(())
    }

    /// Notes a read of `offset..end` for the prefetcher: whether it continues
    /// the previous one (the window doubles, up to `max` blocks) or jumps
    /// (the window closes).
    pub fn note_read(&mut self, offset: u64, end: u64, max: usize) -> bool {
        let sequential = offset == self.last_end || offset == 0;
        self.window = if sequential { (self.window * 2).clamp(1, max) } else { 0 };
        self.last_end = end;
        sequential
    }

    /// Blocks a sequential reader now in block `i` has left behind and not
    /// released yet: those before the block before `i` (the kernel may still
    /// send a late read of that one).
    pub fn passed(&mut self, i: usize) -> std::ops::Range<usize> {
        let behind = i.saturating_sub(1);
        let from = self.released.min(behind);
        self.released = self.released.max(behind);
        from..behind
    }

    /// Blocks to prefetch past the current read.
    pub fn window(&self) -> usize {
        self.window
    }

    // ---------- changed blocks ----------

    pub fn is_dirty(&self, i: usize) -> bool {
        self.dirty.contains(i)
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub fn dirty_in_memory(&self, i: usize) -> Option<&[u8]> {
        self.dirty.in_memory(i)
    }

    /// A copy of changed block `i`, from memory or the spill file.
    pub fn read_dirty(&self, i: usize) -> io::Result<Option<Bytes>> {
        self.dirty.read(i)
    }

    /// Bytes of changed blocks held in memory.
    pub fn dirty_bytes_in_memory(&self) -> u64 {
        self.dirty.mem_bytes()
    }

    /// Block `i` becomes changed, starting from `content` (its current
    /// bytes, or nothing when a write covers it whole).
    pub fn begin_change(&mut self, i: usize, content: Vec<u8>) {
        self.dirty.insert(i, content);
    }

    /// Writes `data` at byte `at` of changed block `i` (within the file's size).
    pub fn patch(&mut self, i: usize, at: usize, data: &[u8]) -> io::Result<()> {
        let want_len = self.block_len(i);
        let count = self.block_count();
        if let Some(block) = self.dirty.get_mut(i)? {
            let end = at + data.len();
            if block.len() < end {
                block.resize(end, 0);
            }
            block[at..end].copy_from_slice(data);
            // A block before the last is whole: a hole before the write reads as zeros.
            if block.len() < want_len && i + 1 < count {
                block.resize(want_len, 0);
            }
        }
        self.changed = true;
        Ok(())
    }

    /// Moves the full changed blocks (all but the last block) to a spill file
    /// in `dir`; hands back the blocks moved.
    pub fn spill(&mut self, dir: &Path) -> io::Result<Vec<(usize, Bytes)>> {
        let last = self.block_count().saturating_sub(1);
        self.dirty.spill(dir, self.block_size, last, self.content_hash)
    }

    /// The changed blocks as they are now, for a commit in flight.
    pub fn snapshot(&self) -> DirtySnapshot {
        self.dirty.snapshot()
    }

    /// Cuts or extends the file to `size`; new bytes read as zeros. Cutting
    /// inside a clean block needs that block changed first: the caller loads it.
    /// Growing past `max_size` is `EFBIG` (and changes nothing): the keys
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
        self.copied.retain(|i, _| *i < new_count);
        if size < self.size {
            // The new last block keeps only its first bytes.
            if new_count > 0 {
                let last = new_count - 1;
                let keep = (size - last as u64 * bs) as usize;
                if let Some(b) = self.dirty.get_mut(last)? {
                    b.truncate(keep);
                }
            }
            self.keys.truncate(new_count);
        } else {
            // Growing: the old last block gains zeros (hash unchanged: trailing
            // zeros do not count), new blocks are all zeros.
            if let Some(l) = old_count.checked_sub(1) {
                let want = ((size - l as u64 * bs).min(bs)) as usize;
                if let Some(b) = self.dirty.get_mut(l)? {
                    b.resize(want, 0);
                }
            }
            while self.keys.len() < new_count {
                self.keys.push(BlockHash::empty());
            }
        }
        self.size = size;
        self.changed = true;
        Ok(())
    }

    /// The commit went through: `version` is what the file is now, and its
    /// blocks go by `keys`.
    pub fn committed(&mut self, version: Version, keys: Vec<BlockHash>) {
        self.keys = keys;
        self.dirty.clear();
        self.base = Some(Arc::new(version));
        self.changed = false;
        self.lost = None;
        self.copied.clear();
    }

    /// Our content went somewhere else (a conflict copy): nothing is left
    /// to commit over the version that changed.
    pub fn set_aside(&mut self) {
        self.changed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::store::pithos::pithos_max_size;

    #[test]
    fn growing_past_the_largest_object_is_efbig_and_changes_nothing() {
        let g = Geometry { block_size: 8, content_hash: Some(Algorithm::Sha256), max_size: 80 };
        let mut f = OpenFile::created(1, &g);
        f.set_size(80).unwrap();
        assert_eq!((f.size, f.keys.len()), (80, 10));
        let e = f.set_size(81).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFBIG));
        let e = f.set_size(u64::MAX).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFBIG));
        assert_eq!((f.size, f.keys.len()), (80, 10), "a refused size leaves the file as it was");
        f.set_size(3).unwrap();
        assert_eq!((f.size, f.keys.len()), (3, 1));
        // On Pithos the limit is a hashmap of MAX_BLOCKS_PER_OBJECT blocks.
        assert_eq!(pithos_max_size(4 << 20), 1 << 40);
        assert_eq!(pithos_max_size(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_commit_pins_the_new_version() {
        let g = Geometry { block_size: 8, content_hash: None, max_size: 80 };
        let mut f = OpenFile::created(1, &g);
        assert_eq!(f.condition(), Condition::Absent);
        f.begin_change(0, Vec::new());
        f.set_size(5).unwrap();
        f.patch(0, 0, b"hello").unwrap();
        assert!(f.is_changed() && f.has_dirty());
        let v = Version {
            size: 5,
            block_size: 8,
            content_hash: None,
            pin: Some("e".into()),
            id: None,
            tag: Some("e".into()),
        };
        f.committed(v, vec![BlockHash([7; 32])]);
        assert!(!f.is_changed() && !f.has_dirty());
        assert_eq!(f.condition(), Condition::Matches("e".into()));
        assert_eq!(f.block_ref(0).map(|r| (r.key, r.len)), Some((BlockHash([7; 32]), 5)));
    }
}
