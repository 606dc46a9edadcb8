//! The disk tier under the block cache (`--cache-dir`): blocks evicted from
//! memory are kept in a directory, bounded in bytes, least recently used
//! first out, and survive a remount.
//!
//! Each block is one file named by its key in hex: a header (magic, version,
//! payload length, SHA-256 of the payload) then the payload. Keys are not
//! always the content's hash (plain-Swift files use synthetic keys), so the
//! checksum in the header is what a read is checked against; a short, torn or
//! altered file is deleted and read as a miss. Files are written to a
//! temporary name and renamed, without fsync: a file cut by a crash fails its
//! checksum. The directory is locked while open, so two mounts cannot share
//! (and evict from under each other) one cache directory.
//!
//! Every method blocks on disk I/O: call them off the async runtime
//! (`spawn_blocking`, or a thread of their own). I/O errors never reach the
//! caller: they are counted, logged now and then, and the tier acts as a miss.

use crate::blocks::BlockHash;
use bytes::Bytes;
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const MAGIC: [u8; 4] = *b"PFSB";
const VERSION: u32 = 1;
/// magic (4) + version (4, LE) + payload length (8, LE) + SHA-256 of the payload (32).
pub const HEADER_LEN: usize = 48;
const TMP_PREFIX: &str = "tmp.";
const LOCK_NAME: &str = ".lock";
/// At most one warning per this interval (the others are only counted).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A directory of cached blocks, at most `capacity` bytes of files (headers included).
pub struct DiskTier {
    dir: PathBuf,
    capacity: u64,
    state: Mutex<State>,
    /// Held (with its lock) while the tier is open.
    _lock: File,
    tmp_seq: AtomicU64,
    last_warn: Mutex<Option<Instant>>,
}

struct Entry {
    /// Size of the file, header included.
    size: u64,
    /// Which write put it there: a reader only drops the entry it read.
    generation: u64,
}

struct State {
    lru: LruCache<BlockHash, Entry>,
    bytes: u64,
    next_generation: u64,
    hits: u64,
    misses: u64,
    writes: u64,
    errors: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Bytes of the files kept (headers included).
    pub bytes: u64,
    pub entries: usize,
    pub capacity: u64,
    pub hits: u64,
    pub misses: u64,
    /// Blocks written.
    pub writes: u64,
    /// I/O errors and corrupt files met (each one acted as a miss or a skipped write).
    pub errors: u64,
}

impl DiskTier {
    /// Opens (creating it, mode 0700) a cache directory bounded to `capacity`
    /// bytes: removes leftover temporary files, takes in the blocks already
    /// there (most recently modified = most recently used) and evicts the
    /// oldest beyond `capacity`. Fails if the directory cannot be created or
    /// read, or is in use by another process.
    pub fn open(dir: &Path, capacity: u64) -> io::Result<DiskTier> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_NAME))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("cache directory {} is in use by another process", dir.display()),
                ))
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }

        let mut found: Vec<(SystemTime, BlockHash, u64)> = Vec::new();
        for item in fs::read_dir(dir)? {
            let Ok(item) = item else { continue };
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(item.path());
                continue;
            }
            let Some(h) = parse_name(name) else { continue };
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            if meta.len() < HEADER_LEN as u64 {
                let _ = fs::remove_file(item.path());
                continue;
            }
            found.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), h, meta.len()));
        }
        found.sort();

        let mut state = State {
            lru: LruCache::unbounded(),
            bytes: 0,
            next_generation: 0,
            hits: 0,
            misses: 0,
            writes: 0,
            errors: 0,
        };
        for (_, h, size) in found {
            state.lru.put(h, Entry { size, generation: 0 });
            state.bytes += size;
        }
        let tier = DiskTier {
            dir: dir.to_path_buf(),
            capacity,
            state: Mutex::new(state),
            _lock: lock,
            tmp_seq: AtomicU64::new(0),
            last_warn: Mutex::new(None),
        };
        {
            let mut state = tier.lock();
            tier.evict(&mut state);
        }
        Ok(tier)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, h: &BlockHash) -> PathBuf {
        self.dir.join(h.to_hex())
    }

    /// Whether a block is kept (without reading it or refreshing its recency).
    pub fn contains(&self, h: &BlockHash) -> bool {
        self.lock().lru.contains(h)
    }

    /// The block, if kept and intact; a file that fails its checks is deleted.
    pub fn get(&self, h: &BlockHash) -> Option<Bytes> {
        let generation = {
            let mut state = self.lock();
            match state.lru.peek(h) {
                Some(e) => e.generation,
                None => {
                    state.misses += 1;
                    return None;
                }
            }
        };
        let path = self.path(h);
        match read_entry(&path) {
            Ok((data, f)) => {
                let mut state = self.lock();
                state.hits += 1;
                // Refresh its recency (unless it was evicted meanwhile), here and for the next mount.
                let _ = state.lru.get(h);
                drop(state);
                let _ = f.set_modified(SystemTime::now());
                Some(data)
            }
            Err(e) => {
                let mut state = self.lock();
                state.misses += 1;
                let same = state.lru.peek(h).is_some_and(|e| e.generation == generation);
                if same {
                    if let Some(old) = state.lru.pop(h) {
                        state.bytes -= old.size;
                    }
                    if e.kind() != io::ErrorKind::NotFound {
                        state.errors += 1;
                        let _ = fs::remove_file(&path);
                    }
                }
                drop(state);
                if same && e.kind() != io::ErrorKind::NotFound {
                    self.warn(format_args!("cache file {} dropped: {e}", path.display()));
                }
                None
            }
        }
    }

    /// Keeps a block, evicting the least recently used beyond the capacity. A
    /// block already kept is only refreshed (a key always names one content);
    /// one larger than the whole capacity is not kept.
    pub fn put(&self, h: BlockHash, data: &[u8]) {
        let size = (HEADER_LEN + data.len()) as u64;
        if size > self.capacity {
            return;
        }
        if self.lock().lru.get(&h).is_some() {
            return;
        }
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}.{seq}", std::process::id()));
        if let Err(e) = write_entry(&tmp, data) {
            let _ = fs::remove_file(&tmp);
            self.lock().errors += 1;
            self.warn(format_args!("cannot write to cache directory {}: {e}", self.dir.display()));
            return;
        }
        let mut state = self.lock();
        // Renamed under the lock, so that bookkeeping and files agree.
        if let Err(e) = fs::rename(&tmp, self.path(&h)) {
            state.errors += 1;
            drop(state);
            let _ = fs::remove_file(&tmp);
            self.warn(format_args!("cannot write to cache directory {}: {e}", self.dir.display()));
            return;
        }
        let generation = state.next_generation + 1;
        state.next_generation = generation;
        if let Some(old) = state.lru.put(h, Entry { size, generation }) {
            state.bytes -= old.size;
        }
        state.bytes += size;
        state.writes += 1;
        self.evict(&mut state);
    }

    /// Drops least recently used entries until within the capacity.
    fn evict(&self, state: &mut State) {
        let mut failed = None;
        while state.bytes > self.capacity {
            let Some((h, e)) = state.lru.pop_lru() else { break };
            state.bytes -= e.size;
            match fs::remove_file(self.path(&h)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    state.errors += 1;
                    failed = Some(err);
                }
            }
        }
        if let Some(e) = failed {
            self.warn(format_args!("cannot evict from cache directory {}: {e}", self.dir.display()));
        }
    }

    pub fn stats(&self) -> DiskStats {
        let state = self.lock();
        DiskStats {
            bytes: state.bytes,
            entries: state.lru.len(),
            capacity: self.capacity,
            hits: state.hits,
            misses: state.misses,
            writes: state.writes,
            errors: state.errors,
        }
    }

    fn warn(&self, msg: std::fmt::Arguments<'_>) {
        let mut last = self.last_warn.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            *last = Some(now);
            tracing::warn!("{msg} (the disk cache acts as a miss; further errors are only counted for a while)");
        }
    }
}

/// A block's key from its file name: exactly 64 lowercase hex digits.
fn parse_name(name: &str) -> Option<BlockHash> {
    if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    BlockHash::from_hex(name).ok()
}

fn write_entry(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC);
    header[4..8].copy_from_slice(&VERSION.to_le_bytes());
    header[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
    header[16..48].copy_from_slice(&Sha256::digest(data));
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(&header)?;
    f.write_all(data)?;
    Ok(())
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A file's payload, checked against its header (and the file, still open).
fn read_entry(path: &Path) -> io::Result<(Bytes, File)> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if len < HEADER_LEN as u64 {
        return Err(corrupt("short file"));
    }
    let mut header = [0u8; HEADER_LEN];
    f.read_exact(&mut header)?;
    if header[0..4] != MAGIC || header[4..8] != VERSION.to_le_bytes() {
        return Err(corrupt("unknown format"));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&header[8..16]);
    let payload_len = u64::from_le_bytes(n);
    if payload_len != len - HEADER_LEN as u64 {
        return Err(corrupt("length does not match its header"));
    }
    let payload_len = usize::try_from(payload_len).map_err(|_| corrupt("too large"))?;
    let mut data = vec![0u8; payload_len];
    f.read_exact(&mut data)?;
    if Sha256::digest(&data)[..] != header[16..48] {
        return Err(corrupt("checksum mismatch"));
    }
    Ok((Bytes::from(data), f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> BlockHash {
        BlockHash([b; 32])
    }

    fn size(payload: usize) -> u64 {
        (HEADER_LEN + payload) as u64
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    fn disk_bytes(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| parse_name(e.file_name().to_str().unwrap()).is_some())
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn stays_within_capacity_and_evicts_least_recently_used() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DiskTier::open(tmp.path(), 3 * size(100)).unwrap();
        d.put(h(1), &[1; 100]);
        d.put(h(2), &[2; 100]);
        d.put(h(3), &[3; 100]);
        assert_eq!(d.stats().bytes, 3 * size(100));
        assert_eq!(d.get(&h(1)).unwrap(), Bytes::from(vec![1u8; 100])); // 1 is now the most recent
        d.put(h(4), &[4; 100]);
        assert!(d.get(&h(2)).is_none());
        assert!(!tmp.path().join(h(2).to_hex()).exists());
        for k in [1, 3, 4] {
            assert_eq!(d.get(&h(k)).unwrap(), Bytes::from(vec![k; 100]));
        }
        let s = d.stats();
        assert!(s.bytes <= s.capacity);
        assert_eq!((s.entries, s.bytes), (3, disk_bytes(tmp.path())));
        assert_eq!(s.writes, 4);
        // A big one pushes out several; one larger than the capacity is not kept.
        d.put(h(5), &[5; 200]);
        assert!(d.stats().bytes <= 3 * size(100));
        assert!(d.get(&h(5)).is_some() && d.get(&h(4)).is_some());
        d.put(h(6), &[6; 3 * 100 + 2 * HEADER_LEN + 1]);
        assert!(d.get(&h(6)).is_none());
        assert_eq!(d.stats().bytes, disk_bytes(tmp.path()));
        // No temporary files left behind.
        assert!(files(tmp.path()).iter().all(|n| !n.starts_with(TMP_PREFIX)));
    }

    #[test]
    fn survives_reopening_and_shrinks_to_a_smaller_capacity() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        {
            let d = DiskTier::open(&dir, 1 << 20).unwrap();
            for k in 1..=3 {
                d.put(h(k), &[k; 100]);
                // Distinct mtimes: the order of use across a remount.
                let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + k as u64);
                File::open(dir.join(h(k).to_hex())).unwrap().set_modified(t).unwrap();
            }
            // Locked while open.
            let e = DiskTier::open(&dir, 1 << 20).err().unwrap();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        fs::write(dir.join(format!("{TMP_PREFIX}123.0")), b"torn").unwrap();
        fs::write(dir.join("unrelated"), b"kept").unwrap();
        {
            let d = DiskTier::open(&dir, 1 << 20).unwrap();
            assert_eq!(d.stats().entries, 3);
            assert_eq!(d.get(&h(2)).unwrap(), Bytes::from(vec![2u8; 100]));
            assert!(!dir.join(format!("{TMP_PREFIX}123.0")).exists());
            assert!(dir.join("unrelated").exists());
        }
        // Reopened smaller: the oldest by mtime go (2 was just read, so 1 and 3 are older).
        let d = DiskTier::open(&dir, size(100)).unwrap();
        assert_eq!(d.stats().entries, 1);
        assert!(d.get(&h(2)).is_some());
        assert!(d.get(&h(1)).is_none() && d.get(&h(3)).is_none());
        assert_eq!(d.stats().bytes, disk_bytes(&dir));
    }

    #[test]
    fn corrupt_files_are_misses_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DiskTier::open(tmp.path(), 1 << 20).unwrap();
        for k in 1..=4 {
            d.put(h(k), &[k; 1000]);
        }
        // A flipped payload byte.
        let p1 = tmp.path().join(h(1).to_hex());
        let mut raw = fs::read(&p1).unwrap();
        raw[HEADER_LEN + 500] ^= 0x40;
        fs::write(&p1, &raw).unwrap();
        // Truncated within the payload, and within the header.
        let p2 = tmp.path().join(h(2).to_hex());
        File::options().write(true).open(&p2).unwrap().set_len(size(500)).unwrap();
        let p3 = tmp.path().join(h(3).to_hex());
        File::options().write(true).open(&p3).unwrap().set_len(10).unwrap();
        for (k, p) in [(1, &p1), (2, &p2), (3, &p3)] {
            assert!(d.get(&h(k)).is_none(), "block {k}");
            assert!(!p.exists(), "block {k}");
        }
        // Deleted behind its back: a miss.
        fs::remove_file(tmp.path().join(h(4).to_hex())).unwrap();
        assert!(d.get(&h(4)).is_none());
        let s = d.stats();
        assert_eq!((s.entries, s.bytes, s.hits, s.errors), (0, 0, 0, 3));
        // A short file found when opening is dropped too.
        drop(d);
        fs::write(tmp.path().join(h(9).to_hex()), b"short").unwrap();
        let d = DiskTier::open(tmp.path(), 1 << 20).unwrap();
        assert_eq!(d.stats().entries, 0);
        assert!(!tmp.path().join(h(9).to_hex()).exists());
    }

    #[test]
    fn write_errors_are_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let d = DiskTier::open(&dir, 1 << 20).unwrap();
        d.put(h(1), &[1; 10]);
        fs::remove_dir_all(&dir).unwrap(); // as if the disk went away (modes do not stop root)
        d.put(h(2), &[2; 10]);
        assert!(d.get(&h(1)).is_none() && d.get(&h(2)).is_none());
        let s = d.stats();
        assert_eq!((s.entries, s.bytes, s.writes, s.errors), (0, 0, 1, 1));
    }
}
