//! The changed blocks of one open file: in memory up to a bound, then in an
//! unnamed spill file (gone with the handle, or with the process), and a
//! detached snapshot of them for a commit in flight.

use crate::blocks::{self, Algorithm, BlockHash};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The changed blocks of one open file: in memory, and past a bound in an
/// unnamed spill file (gone with the handle, or with the process).
#[derive(Default)]
pub struct DirtyBlocks {
    mem: BTreeMap<usize, Vec<u8>>,
    /// Spilled blocks; block `i` lives at `i * block_size` of the file.
    spilled: BTreeMap<usize, Spilled>,
    file: Option<Arc<File>>,
    /// The spill file opened again for direct I/O, where its file system
    /// allows it: a spilled block is not copied into the page cache (the
    /// copy cost a large write more CPU than anything else), and a page-
    /// aligned scratch buffer to write it from. Reads use `file`.
    direct: Option<(File, Vec<u8>)>,
    block_size: u64,
}

/// A block in the spill file: its length and content hash (taken while it
/// was in memory, so a commit need not read it back to hash it; none where
/// blocks are not named by content).
#[derive(Clone, Copy)]
struct Spilled {
    len: usize,
    hash: Option<BlockHash>,
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

    /// Block `i` is no longer changed (it became another clean block).
    pub fn remove(&mut self, i: usize) {
        self.mem.remove(&i);
        self.spilled.remove(&i);
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
        self.direct = None;
    }

    /// Forgets the blocks from index `count` on (the file was cut).
    pub fn retain_below(&mut self, count: usize) {
        self.mem.retain(|i, _| *i < count);
        self.spilled.retain(|i, _| *i < count);
    }

    /// Moves the full blocks (all but `keep_last`) to the spill file in `dir`,
    /// so a large write holds a bounded amount of memory, hashing them with
    /// `algorithm` on the way. Hands back the blocks moved (their memory,
    /// for the caller to send on or drop).
    pub fn spill(
        &mut self,
        dir: &Path,
        block_size: u64,
        keep_last: usize,
        algorithm: Option<Algorithm>,
    ) -> io::Result<Vec<(usize, Bytes)>> {
        if self.file.is_none() {
            std::fs::create_dir_all(dir)?;
            let file = tempfile::tempfile_in(dir)?;
            self.direct = open_direct(&file, block_size);
            self.file = Some(Arc::new(file));
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
                let at = i as u64 * self.block_size;
                let direct = match self.direct.as_mut() {
                    Some((direct, scratch)) => {
                        let off = scratch.as_ptr().align_offset(ALIGN);
                        let aligned = &mut scratch[off..off + b.len()];
                        aligned.copy_from_slice(b);
                        direct.write_all_at(aligned, at)
                    }
                    None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
                };
                match direct {
                    Ok(()) => {}
                    // No direct I/O here after all: through the page cache.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        self.direct = None;
                        file.write_all_at(b, at)?;
                    }
                    Err(e) => return Err(e),
                }
                let hash = algorithm.map(|a| blocks::hash_block(a, b));
                self.spilled.insert(i, Spilled { len: b.len(), hash });
            }
            if let Some(b) = self.mem.remove(&i) {
                moved.push((i, Bytes::from(b)));
            }
        }
        Ok(moved)
    }
}

/// Alignment direct I/O needs (the page size: enough for every common disk).
const ALIGN: usize = 4096;

/// `file` opened a second time with `O_DIRECT` (through /proc/self/fd, which
/// reopens an unnamed file too), with its scratch buffer; none where the file
/// system refuses direct I/O (tmpfs) or blocks are not whole pages (only
/// full blocks are spilled, at multiples of the block size).
fn open_direct(file: &File, block_size: u64) -> Option<(File, Vec<u8>)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let len = usize::try_from(block_size).ok().filter(|n| *n > 0 && n % ALIGN == 0)?;
    let direct = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .ok()?;
    Some((direct, vec![0u8; len + ALIGN]))
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
    /// Some blocks went to the spill file (a large write).
    pub fn has_spilled(&self) -> bool {
        !self.spilled.is_empty()
    }

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
        self.spilled.get(&i).and_then(|s| s.hash)
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
        let moved = d.spill(dir.path(), 8, 2, Some(Algorithm::Sha256)).unwrap();
        let hash = |b: u8| Some(blocks::hash_block(Algorithm::Sha256, &[b; 8]));
        assert_eq!(moved.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(d.mem_bytes(), 3);
        let snap = d.snapshot();
        assert_eq!((snap.known_hash(0), snap.known_hash(2)), (hash(1), None), "0 and 1 spilled, 2 kept");
        assert_eq!(snap.indices(), vec![0, 1, 2]);
        assert_eq!(d.read(1).unwrap().unwrap(), Bytes::from(vec![2u8; 8]));
        assert_eq!(d.snapshot().known_hash(1), hash(2));
        d.get_mut(0).unwrap().unwrap()[0] = 9;
        assert_eq!((d.mem_bytes(), d.snapshot().known_hash(0)), (11, None), "0 came back to memory");
        assert_eq!(d.read(0).unwrap().unwrap()[..2], [9, 1]);
        d.retain_below(1);
        assert_eq!(d.snapshot().indices(), vec![0]);
        // The spill file has no name: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
