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
//!
//! Where the blocks lie is a [`BlockBackend`] under the store: the directory
//! ([`DirBlocks`]) now; another backend (an object store shared by several
//! servers) keeps the same contract: a block is put by its hash, durably
//! and idempotently, and read back whole or by range.

use crate::blocks::{self, Algorithm, BlockHash};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Where blocks are kept, by hash: the durable half of the block store
/// (pins, suspects and buffers stay above it, in [`BlockStore`]). Every
/// call may block on I/O: callers run it off the async reactor.
pub trait BlockBackend: Send + Sync {
    /// Whether block `hash` is stored durably.
    fn contains(&self, hash: &BlockHash) -> bool;
    /// Stores the block in `buf` as `hash` (the caller hashed it), durably
    /// before it returns; idempotent. True when it was not stored before.
    fn put(&self, hash: BlockHash, buf: &mut BlockBuf) -> io::Result<bool>;
    /// `len` bytes at `offset` of block `hash`, zeros past what is stored
    /// (trailing zeros are not kept). A missing block is an error.
    fn read_range(&self, hash: &BlockHash, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Deletes a block; the bytes freed (0 if it was not there).
    fn delete(&self, hash: &BlockHash) -> io::Result<u64>;
    /// Every stored block whose hash begins with byte `prefix`, with when it
    /// was stored (epoch seconds).
    fn stored(&self, prefix: u8) -> io::Result<Vec<(BlockHash, f64)>>;
    /// Number of stored blocks and their bytes as stored.
    fn usage(&self) -> io::Result<(u64, u64)>;
    /// Whether other servers may store blocks here too (then a stored block
    /// nothing records may be another server's upload in flight).
    fn shared(&self) -> bool {
        false
    }
}

/// Where a shared block store's blocks are accounted for (the metadata
/// database): which blocks are stored, and which a request in flight on
/// some server relies on. With many servers, a block's existence is
/// decided here, not by the store (Swift answers a HEAD after a DELETE
/// from any replica), and the collector of any server honours the leases.
pub trait BlockLedger: Send + Sync {
    /// Leases `hash` for request `lease` of this server (the collector of
    /// every server keeps a leased block, until the lease is released or
    /// the upload grace ends: a server killed mid-request), then says
    /// whether it is known to be stored. Both in one transaction.
    fn lease(&self, lease: u64, hash: &BlockHash) -> io::Result<bool>;
    /// Records that `hash` is stored.
    fn stored(&self, hash: &BlockHash) -> io::Result<()>;
    /// Ends every lease of request `lease` (it committed or gave up).
    fn release(&self, lease: u64) -> io::Result<()>;
}

pub struct BlockStore {
    backend: Box<dyn BlockBackend>,
    /// Set for a shared store: see [`BlockLedger`].
    ledger: std::sync::OnceLock<Arc<dyn BlockLedger>>,
    pub block_size: u64,
    pub algorithm: Algorithm,
    /// Blocks requests in flight rely on, with how many requests do.
    pins: Mutex<HashMap<BlockHash, u32>>,
    /// Blocks created by requests that did not commit: (hash, when, epoch seconds).
    suspects: Mutex<Vec<(BlockHash, f64)>>,
    /// Page-aligned block buffers to reuse (no page faults, no zeroing per block).
    buffers: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// The block directory: `<2 hex>/<64 hex>` files, written through `tmp/`
/// and made durable in groups.
pub struct DirBlocks {
    root: PathBuf,
    tmp: PathBuf,
    next_tmp: AtomicU64,
    /// Blocks written to `tmp/` and waiting to be made durable together.
    sync: GroupSync,
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
    /// This request's lease in a shared store's ledger, once it took one.
    lease: Option<u64>,
}

impl Pinned {
    /// Stores one block (at most `block_size` bytes) durably; returns its hash.
    pub fn put(&self, block: &[u8]) -> io::Result<BlockHash> {
        let mut buf = self.store.buffer_for(block.len());
        buf.extend(block);
        self.put_buf(buf)
    }

    /// Stores the block gathered in `buf` durably; returns its hash. The
    /// buffer goes back to the store's pool.
    pub fn put_buf(&self, mut buf: BlockBuf) -> io::Result<BlockHash> {
        let hash = blocks::hash_block(self.store.algorithm, buf.data());
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
        let created = match self.store.ledger.get() {
            // Leased before anything is decided: a collector on another
            // server either sees the lease, or finished deleting before
            // the lease (it holds the write lock until then), and then the
            // ledger says the block is gone and it is written anew.
            Some(ledger) if ledger.lease(self.lease_id(), &hash)? => false,
            Some(ledger) => {
                let created = self.store.backend.put(hash, &mut buf)?;
                ledger.stored(&hash)?;
                created
            }
            None => self.store.backend.put(hash, &mut buf)?,
        };
        if created {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).created.push(hash);
        }
        Ok(hash)
    }

    /// This request's lease id, drawn at its first lease.
    fn lease_id(&self) -> u64 {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Random, so that servers never share one; 63 bits (a BIGINT).
        *st.lease.get_or_insert_with(|| rand::random::<u64>() >> 1)
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
        if let (Some(lease), Some(ledger)) = (st.lease, self.store.ledger.get()) {
            // A ledger may block (PostgreSQL's client must not run on an
            // async worker): off the runtime when there is one. A lease
            // not released expires with the upload grace.
            let ledger = ledger.clone();
            let release = move || {
                if let Err(e) = ledger.release(lease) {
                    tracing::warn!("cannot release a block lease: {e}");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(release)),
                Err(_) => release(),
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
    /// The block directory at `root`.
    pub fn open(root: &Path, block_size: u64, algorithm: Algorithm) -> io::Result<BlockStore> {
        Ok(BlockStore::with_backend(Box::new(DirBlocks::open(root)?), block_size, algorithm))
    }

    /// Blocks kept by `backend`.
    pub fn with_backend(backend: Box<dyn BlockBackend>, block_size: u64, algorithm: Algorithm) -> BlockStore {
        BlockStore {
            backend,
            ledger: std::sync::OnceLock::new(),
            block_size,
            algorithm,
            pins: Mutex::new(HashMap::new()),
            suspects: Mutex::new(Vec::new()),
            buffers: Arc::default(),
        }
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

    /// Deletes a block; returns the bytes freed (0 if it was not there).
    /// Only garbage collection calls this, holding the pins.
    pub fn remove(&self, _held: &PinsHeld<'_>, hash: &BlockHash) -> io::Result<u64> {
        self.backend.delete(hash)
    }

    /// Every stored block of prefix `prefix` (`0..=255`) with when it was
    /// stored (epoch seconds).
    pub fn stored(&self, prefix: u8) -> io::Result<Vec<(BlockHash, f64)>> {
        self.backend.stored(prefix)
    }

    /// Whether other servers may store blocks here too.
    pub fn shared(&self) -> bool {
        self.backend.shared()
    }

    /// Accounts for this (shared) store's blocks in `ledger` from now on.
    pub fn set_ledger(&self, ledger: Arc<dyn BlockLedger>) {
        let _ = self.ledger.set(ledger);
    }

    /// Number of stored blocks and their bytes (as stored, trailing zeros excluded).
    pub fn usage(&self) -> io::Result<(u64, u64)> {
        self.backend.usage()
    }

    pub fn contains(&self, hash: &BlockHash) -> bool {
        *hash == BlockHash::empty() || self.backend.contains(hash)
    }

    /// A buffer for one block, from the pool (or a new one).
    pub fn buffer(&self) -> BlockBuf {
        self.buffer_for(0)
    }

    /// A buffer for at least `len` bytes: from the pool when a block fits.
    fn buffer_for(&self, len: usize) -> BlockBuf {
        let block = usize::try_from(self.block_size).unwrap_or(usize::MAX);
        let pooled = len <= block;
        let cap = block.max(len);
        let reused = if pooled { self.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop() } else { None };
        // Zeroed once, here; a reused buffer is already faulted in.
        let mem = reused.unwrap_or_else(|| vec![0u8; cap.div_ceil(ALIGN) * ALIGN + ALIGN]);
        let off = mem.as_ptr().align_offset(ALIGN);
        BlockBuf { mem, off, len: 0, cap, pool: pooled.then(|| self.buffers.clone()) }
    }

    /// Reads a block, zero-padded to `len` bytes (the caller knows how long the
    /// block is from the object size).
    pub fn get(&self, hash: &BlockHash, len: usize) -> io::Result<Vec<u8>> {
        self.read_range(hash, 0, len)
    }

    /// Reads `len` bytes at `offset` of a block, zeros past what is stored.
    pub fn read_range(&self, hash: &BlockHash, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        if *hash == BlockHash::empty() || len == 0 {
            return Ok(vec![0u8; len]);
        }
        self.backend.read_range(hash, offset, len)
    }
}

impl DirBlocks {
    /// The block directory at `root` (made if missing; leftovers of writes
    /// a crash interrupted are removed).
    pub fn open(root: &Path) -> io::Result<DirBlocks> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        // Leftovers of writes a crash interrupted; never referenced by metadata.
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        for i in 0..=255u8 {
            fs::create_dir_all(root.join(format!("{i:02x}")))?;
        }
        Ok(DirBlocks { root: root.to_path_buf(), tmp, next_tmp: AtomicU64::new(0), sync: GroupSync::default() })
    }

    fn path(&self, hash: &BlockHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }
}

impl BlockBackend for DirBlocks {
    fn contains(&self, hash: &BlockHash) -> bool {
        self.path(hash).exists()
    }

    /// A file a batch has renamed into place but not yet made durable does
    /// not count as found: this request writes its own copy and waits for
    /// its own batch.
    fn put(&self, hash: BlockHash, buf: &mut BlockBuf) -> io::Result<bool> {
        let dest = self.path(&hash);
        if dest.exists() && !self.sync.is_pending(&hash) {
            return Ok(false);
        }
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}-{n}", std::process::id()));
        let file = match write_unsynced(&tmp, buf) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        self.sync.commit(Pending { hash, file, tmp, dest })?;
        Ok(true)
    }

    fn read_range(&self, hash: &BlockHash, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::io::{Seek, SeekFrom};
        let mut f = File::open(self.path(hash))
            .map_err(|e| io::Error::new(e.kind(), format!("block {hash} is missing from the block store: {e}")))?;
        // Read into spare capacity rather than a zero-filled buffer: GETs are hot.
        let mut buf = Vec::with_capacity(len);
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))?;
        }
        f.take(len as u64).read_to_end(&mut buf)?;
        buf.resize(len, 0); // trailing zeros are not stored
        Ok(buf)
    }

    fn delete(&self, hash: &BlockHash) -> io::Result<u64> {
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

    /// Names that are not block hashes are skipped.
    fn stored(&self, prefix: u8) -> io::Result<Vec<(BlockHash, f64)>> {
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

    fn usage(&self) -> io::Result<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for prefix in 0..=255u8 {
            for (hash, _) in self.stored(prefix)? {
                n += 1;
                bytes += fs::metadata(self.path(&hash)).map_or(0, |m| m.len());
            }
        }
        Ok((n, bytes))
    }
}

/// Alignment of direct I/O (the page size: enough for every common disk).
const ALIGN: usize = 4096;

/// Block buffers kept for reuse (32 MiB at 4 MiB blocks).
const POOLED_BUFFERS: usize = 8;

/// A page-aligned buffer for one block: a request body is gathered straight
/// into it and written from it with direct I/O, so a block is copied once on
/// its way from the socket to the disk. Its memory goes back to the store's
/// pool when dropped.
pub struct BlockBuf {
    /// Never grows: `off` stays the page-aligned start of the block.
    mem: Vec<u8>,
    off: usize,
    len: usize,
    cap: usize,
    pool: Option<Arc<Mutex<Vec<Vec<u8>>>>>,
}

impl BlockBuf {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.cap
    }

    /// Appends as much of `data` as fits; returns how many bytes it took.
    pub fn extend(&mut self, data: &[u8]) -> usize {
        let n = (self.cap - self.len).min(data.len());
        let at = self.off + self.len;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    pub fn data(&self) -> &[u8] {
        &self.mem[self.off..self.off + self.len]
    }

    /// The first `len` bytes padded with zeros to whole pages, for direct I/O
    /// (what lies past them is left over from the buffer's last block).
    fn padded(&mut self, len: usize) -> &[u8] {
        let end = self.off + len.div_ceil(ALIGN) * ALIGN;
        self.mem[self.off + len..end].fill(0);
        &self.mem[self.off..end]
    }
}

impl Drop for BlockBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOLED_BUFFERS {
                pool.push(std::mem::take(&mut self.mem));
            }
        }
    }
}

/// Writes the block in `buf` (its trailing zeros left out) to a new file,
/// not yet synced. Direct I/O where the file system allows it: the block
/// skips the page cache, which halves the CPU and memory traffic of an
/// upload (blocks are read back from disk, not from memory).
fn write_unsynced(path: &Path, buf: &mut BlockBuf) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let len = blocks::strip_trailing_zeros(buf.data()).len();
    let direct = fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_DIRECT).open(path);
    match direct {
        Ok(mut f) => {
            f.write_all(buf.padded(len))?;
            f.set_len(len as u64)?;
            return Ok(f);
        }
        // tmpfs and some others refuse O_DIRECT: buffered below.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(e),
    }
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    f.write_all(&buf.data()[..len])?;
    Ok(f)
}

/// A block written to `tmp/`, waiting for its batch.
struct Pending {
    hash: BlockHash,
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
}

/// Group commit of block writes. Each writer writes its block to `tmp/` and
/// queues it; one waiting writer at a time (the leader) takes the whole
/// queue and makes it durable together: every file's data synced, then all
/// renamed into place, then each directory they landed in synced once. A
/// writer returns only once its own block is durable (or with the error
/// that kept it from being so). Blocks that arrive while a batch syncs form
/// the next one, so the more requests in flight, the fewer syncs per block.
#[derive(Default)]
struct GroupSync {
    state: Mutex<SyncState>,
    turn: Condvar,
}

#[derive(Default)]
struct SyncState {
    queue: Vec<(u64, Pending)>,
    /// A leader is syncing a batch.
    busy: bool,
    next_ticket: u64,
    /// Outcomes of synced blocks, by ticket, until their writers take them.
    outcomes: HashMap<u64, Outcome>,
    /// Blocks queued or in a batch: renamed maybe, durable not yet.
    pending: HashMap<BlockHash, u32>,
}

impl GroupSync {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_pending(&self, hash: &BlockHash) -> bool {
        self.lock().pending.contains_key(hash)
    }

    /// Queues `p` and returns once it is durable in place.
    fn commit(&self, p: Pending) -> io::Result<()> {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        *st.pending.entry(p.hash).or_insert(0) += 1;
        st.queue.push((ticket, p));
        loop {
            if let Some(outcome) = st.outcomes.remove(&ticket) {
                return outcome.map_err(|(kind, msg)| io::Error::new(kind, msg));
            }
            if st.busy {
                st = self.turn.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: sync everything queued so far, ours included.
            st.busy = true;
            let batch = std::mem::take(&mut st.queue);
            drop(st);
            let hashes: Vec<BlockHash> = batch.iter().map(|(_, p)| p.hash).collect();
            let outcomes = sync_batch(batch);
            st = self.lock();
            for h in hashes {
                if let Some(n) = st.pending.get_mut(&h) {
                    *n -= 1;
                    if *n == 0 {
                        st.pending.remove(&h);
                    }
                }
            }
            st.outcomes.extend(outcomes);
            st.busy = false;
            self.turn.notify_all();
        }
    }
}

/// Whether a queued block became durable (an `io::Error` is not `Clone`:
/// its kind and message travel from the leader to the writer).
type Outcome = Result<(), (io::ErrorKind, String)>;

/// Makes a batch of written blocks durable in place; the outcome of each.
fn sync_batch(batch: Vec<(u64, Pending)>) -> Vec<(u64, Outcome)> {
    let fail = |e: io::Error| Err((e.kind(), e.to_string()));
    let mut out = Vec::with_capacity(batch.len());
    let mut placed = Vec::with_capacity(batch.len());
    // Data first: a name never points at a block that is not on disk.
    let synced: Vec<(u64, Pending, io::Result<()>)> = batch
        .into_iter()
        .map(|(t, p)| {
            let r = p.file.sync_all();
            (t, p, r)
        })
        .collect();
    for (ticket, p, synced) in synced {
        match synced.and_then(|()| fs::rename(&p.tmp, &p.dest)) {
            Ok(()) => placed.push((ticket, p.dest)),
            Err(e) => {
                let _ = fs::remove_file(&p.tmp);
                out.push((ticket, fail(e)));
            }
        }
    }
    // Then the names: each directory once, however many blocks landed in it.
    let mut dirs: HashMap<PathBuf, io::Result<()>> = HashMap::new();
    for (_, dest) in &placed {
        if let Some(dir) = dest.parent() {
            if !dirs.contains_key(dir) {
                dirs.insert(dir.to_path_buf(), File::open(dir).and_then(|d| d.sync_all()));
            }
        }
    }
    for (ticket, dest) in placed {
        let outcome = match dest.parent().and_then(|d| dirs.get(d)) {
            Some(Err(e)) => Err((e.kind(), format!("syncing the directory of block {}: {e}", dest.display()))),
            _ => Ok(()),
        };
        out.push((ticket, outcome));
    }
    out
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
        let hex = hb.to_hex();
        assert_eq!(fs::metadata(dir.path().join(&hex[..2]).join(&hex)).unwrap().len(), 10_000);
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
