//! The block cache: blocks kept by hash, not by path, so a block read for one
//! file serves every copy and version holding it. Least recently used blocks
//! go first once the byte budget is spent. Only blocks whose content was
//! checked against their hash get in; concurrent misses of one block share a
//! single fetch.
//!
//! With a disk tier (`--cache-dir`), blocks pushed out of memory are handed
//! to a writer thread that keeps them on disk, and a miss in memory looks on
//! disk (off the async runtime) before fetching.

use super::disk::{DiskStats, DiskTier};
use super::errno::Errno;
use crate::blocks::BlockHash;
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

type Fetch = Shared<BoxFuture<'static, Result<(Bytes, bool), Errno>>>;

/// Blocks waiting for the disk writer; more are dropped (not kept on disk)
/// rather than holding up readers or memory.
const SPILL_QUEUE: usize = 16;

pub struct BlockCache {
    capacity: u64,
    inner: Mutex<Inner>,
    disk: Option<Tier>,
}

struct Tier {
    disk: Arc<DiskTier>,
    /// To the writer thread; `None` if it could not be started. Dropping it
    /// (with the cache) ends the thread once the queue is written.
    spill: Option<SyncSender<Spill>>,
    counters: Arc<TierCounters>,
}

#[derive(Default)]
struct TierCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    spill_dropped: AtomicU64,
}

enum Spill {
    Block(BlockHash, Bytes),
    /// Answered once everything queued before it is written.
    Flush(mpsc::Sender<()>),
}

struct Inner {
    lru: LruCache<BlockHash, Bytes>,
    bytes: u64,
    inflight: HashMap<BlockHash, Fetch>,
    hits: u64,
    misses: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// In memory.
    pub bytes: u64,
    pub blocks: usize,
    /// Memory hits (`get` and `get_or_fetch`) and `get_or_fetch` memory misses.
    pub hits: u64,
    pub misses: u64,
    /// The disk tier (all zero without one): bytes of its files, blocks kept;
    /// memory misses it served or not; blocks written, I/O errors or corrupt
    /// files met; evicted blocks not written because the writer was behind.
    pub disk_bytes: u64,
    pub disk_blocks: usize,
    pub disk_capacity: u64,
    pub disk_hits: u64,
    pub disk_misses: u64,
    pub disk_writes: u64,
    pub disk_errors: u64,
    pub disk_dropped: u64,
}

impl BlockCache {
    /// A memory-only cache of `capacity` bytes.
    pub fn new(capacity: u64) -> BlockCache {
        BlockCache::with_disk(capacity, None)
    }

    /// A cache of `capacity` bytes in memory over an optional disk tier, which
    /// gets the blocks pushed out of memory (written by a thread of its own).
    pub fn with_disk(capacity: u64, disk: Option<DiskTier>) -> BlockCache {
        let disk = disk.map(|d| {
            let disk = Arc::new(d);
            let (tx, rx) = mpsc::sync_channel::<Spill>(SPILL_QUEUE);
            let writer = disk.clone();
            let spawned = std::thread::Builder::new().name("pithosfs-cache-writer".into()).spawn(move || {
                for msg in rx {
                    match msg {
                        Spill::Block(h, data) => writer.put(h, &data),
                        Spill::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
            let spill = match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!("cannot start the disk cache writer ({e}): blocks are read from disk, not written");
                    None
                }
            };
            Tier { disk, spill, counters: Arc::default() }
        });
        BlockCache {
            capacity,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                inflight: HashMap::new(),
                hits: 0,
                misses: 0,
            }),
            disk,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a consistent map: go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The block if in memory (the disk tier is not looked at).
    pub fn get(&self, h: &BlockHash) -> Option<Bytes> {
        let mut inner = self.lock();
        let got = inner.lru.get(h).cloned();
        if got.is_some() {
            inner.hits += 1;
        }
        got
    }

    /// Whether the block is in memory or being fetched: a prefetcher has
    /// nothing to start for it. Neither a hit nor a use (the LRU order stays).
    pub fn holds_or_fetches(&self, h: &BlockHash) -> bool {
        let inner = self.lock();
        inner.lru.contains(h) || inner.inflight.contains_key(h)
    }

    /// Keeps a block whose content the caller checked against `h`. Blocks it
    /// pushes out of memory (or itself, if larger than the memory budget) go
    /// to the disk tier.
    pub fn insert(&self, h: BlockHash, data: Bytes) {
        if data.len() as u64 > self.capacity {
            self.spill(h, data);
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut inner = self.lock();
            if let Some(old) = inner.lru.put(h, data.clone()) {
                inner.bytes -= old.len() as u64;
            }
            inner.bytes += data.len() as u64;
            while inner.bytes > self.capacity {
                match inner.lru.pop_lru() {
                    Some((k, b)) => {
                        inner.bytes -= b.len() as u64;
                        evicted.push((k, b));
                    }
                    None => break,
                }
            }
        }
        for (k, b) in evicted {
            self.spill(k, b);
        }
    }

    /// Lets a block go from memory as if least recently used (to the disk
    /// tier, if any): a sequential reader is done with it, and the kernel's
    /// page cache holds what it read. A scan of a large file then neither
    /// pushes out what others use nor keeps a second copy of the file, and
    /// its memory is reused for the next blocks instead of fresh pages.
    pub fn release(&self, h: &BlockHash) {
        let popped = {
            let mut inner = self.lock();
            let popped = inner.lru.pop(h);
            if let Some(b) = &popped {
                inner.bytes -= b.len() as u64;
            }
            popped
        };
        if let Some(b) = popped {
            self.spill(*h, b);
        }
    }

    /// Writes every block held in memory to the disk tier, least recently
    /// used first, so the next mount on the same cache dir starts warm.
    /// Blocking: for the end of a mount, off the runtime.
    pub fn persist(&self) {
        let Some(tier) = &self.disk else { return };
        self.flush();
        let held: Vec<(BlockHash, Bytes)> = self.lock().lru.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (h, b) in held.into_iter().rev() {
            tier.disk.put(h, &b);
        }
    }

    /// Hands a block to the disk writer, unless it is behind (never waits).
    fn spill(&self, h: BlockHash, data: Bytes) {
        let Some(tier) = &self.disk else { return };
        let Some(tx) = &tier.spill else { return };
        match tx.try_send(Spill::Block(h, data)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                tier.counters.spill_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until the blocks handed to the disk writer so far are written.
    /// Blocks the calling thread: not for the async runtime's threads.
    pub fn flush(&self) {
        let Some(Tier { spill: Some(tx), .. }) = &self.disk else { return };
        let (done_tx, done_rx) = mpsc::channel();
        if tx.send(Spill::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// The block from memory, from the disk tier, or from `fetch` (which must
    /// check the hash and say whether the result may be cached); one lookup
    /// and fetch per block at a time.
    pub async fn get_or_fetch<F>(&self, h: BlockHash, fetch: F) -> Result<Bytes, Errno>
    where
        F: std::future::Future<Output = Result<(Bytes, bool), Errno>> + Send + 'static,
    {
        let shared = {
            let mut inner = self.lock();
            if let Some(b) = inner.lru.get(&h).cloned() {
                inner.hits += 1;
                return Ok(b);
            }
            inner.misses += 1;
            match inner.inflight.get(&h) {
                Some(f) => f.clone(),
                None => {
                    let f: Fetch = match &self.disk {
                        None => fetch.boxed().shared(),
                        Some(tier) => {
                            let (disk, counters) = (tier.disk.clone(), tier.counters.clone());
                            async move {
                                if let Some(data) = disk_lookup(disk, h).await {
                                    counters.hits.fetch_add(1, Ordering::Relaxed);
                                    return Ok((data, true));
                                }
                                counters.misses.fetch_add(1, Ordering::Relaxed);
                                fetch.await
                            }
                            .boxed()
                            .shared()
                        }
                    };
                    inner.inflight.insert(h, f.clone());
                    f
                }
            }
        };
        let result = shared.clone().await;
        // Only while this fetch is still the one in flight: a waiter woken
        // late (a prefetch task) must not put back a block that its reader
        // has used and released since.
        let ours = |inner: &Inner| inner.inflight.get(&h).is_some_and(|f| f.ptr_eq(&shared));
        if ours(&self.lock()) {
            if let Ok((data, true)) = &result {
                self.insert(h, data.clone());
            }
            // Only after it is in memory, and only this fetch (not a later one).
            let mut inner = self.lock();
            if ours(&inner) {
                inner.inflight.remove(&h);
            }
        }
        result.map(|(data, _)| data)
    }

    pub fn stats(&self) -> CacheStats {
        let mut s = {
            let inner = self.lock();
            CacheStats {
                bytes: inner.bytes,
                blocks: inner.lru.len(),
                hits: inner.hits,
                misses: inner.misses,
                ..CacheStats::default()
            }
        };
        if let Some(tier) = &self.disk {
            let d: DiskStats = tier.disk.stats();
            s.disk_bytes = d.bytes;
            s.disk_blocks = d.entries;
            s.disk_capacity = d.capacity;
            s.disk_writes = d.writes;
            s.disk_errors = d.errors;
            s.disk_hits = tier.counters.hits.load(Ordering::Relaxed);
            s.disk_misses = tier.counters.misses.load(Ordering::Relaxed);
            s.disk_dropped = tier.counters.spill_dropped.load(Ordering::Relaxed);
        }
        s
    }
}

/// A block from the disk tier, read off the async runtime's threads.
async fn disk_lookup(disk: Arc<DiskTier>, h: BlockHash) -> Option<Bytes> {
    if !disk.contains(&h) {
        return None;
    }
    tokio::task::spawn_blocking(move || disk.get(&h)).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> BlockHash {
        BlockHash([b; 32])
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let c = BlockCache::new(10);
        c.insert(h(1), Bytes::from(vec![1; 4]));
        c.insert(h(2), Bytes::from(vec![2; 4]));
        assert!(c.get(&h(1)).is_some()); // 1 is now the most recent
        c.insert(h(3), Bytes::from(vec![3; 4]));
        assert!(c.get(&h(2)).is_none());
        assert!(c.get(&h(1)).is_some() && c.get(&h(3)).is_some());
        assert!(c.stats().bytes <= 10);
        c.insert(h(4), Bytes::from(vec![4; 11])); // larger than the budget: not kept
        assert!(c.get(&h(4)).is_none());
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let c = Arc::new(BlockCache::new(1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_fetch(h(9), async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok((Bytes::from_static(b"data"), true))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Bytes::from_static(b"data"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    fn counting_fetch(
        calls: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
        data: &'static [u8],
    ) -> impl std::future::Future<Output = Result<(Bytes, bool), Errno>> + Send + 'static {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok((Bytes::from_static(data), true))
        }
    }

    #[tokio::test]
    async fn serves_blocks_evicted_from_memory_from_disk() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let tmp = tempfile::tempdir().unwrap();
        let c = BlockCache::with_disk(8, Some(DiskTier::open(tmp.path(), 1 << 20).unwrap()));
        c.insert(h(1), Bytes::from_static(b"one1"));
        c.insert(h(2), Bytes::from_static(b"two2"));
        c.insert(h(3), Bytes::from_static(b"three")); // pushes 1 and 2 out of memory
        c.insert(h(4), Bytes::from_static(b"larger than memory")); // straight to disk
        c.flush();
        assert!(c.get(&h(1)).is_none() && c.get(&h(2)).is_none());
        let s = c.stats();
        assert_eq!((s.blocks, s.disk_blocks, s.disk_writes), (1, 3, 3));

        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let got = c.get_or_fetch(h(1), counting_fetch(&calls, b"wrong")).await.unwrap();
        assert_eq!(got, Bytes::from_static(b"one1"));
        let got = c.get_or_fetch(h(4), counting_fetch(&calls, b"wrong")).await.unwrap();
        assert_eq!(got, Bytes::from_static(b"larger than memory"));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(c.get(&h(1)), Some(Bytes::from_static(b"one1"))); // back in memory

        // Not in either tier: fetched, once.
        let got = c.get_or_fetch(h(5), counting_fetch(&calls, b"five")).await.unwrap();
        assert_eq!(got, Bytes::from_static(b"five"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let s = c.stats();
        assert_eq!((s.disk_hits, s.disk_misses, s.disk_errors), (2, 1, 0));
        assert!(s.bytes <= 8 && s.disk_bytes <= s.disk_capacity);

        // A corrupt file on disk is a miss: fetched again.
        c.insert(h(6), Bytes::from_static(b"66666666"));
        c.flush();
        assert!(c.get(&h(5)).is_none());
        let p = tmp.path().join(h(5).to_hex());
        let mut raw = std::fs::read(&p).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        std::fs::write(&p, raw).unwrap();
        let got = c.get_or_fetch(h(5), counting_fetch(&calls, b"five")).await.unwrap();
        assert_eq!(got, Bytes::from_static(b"five"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(c.stats().disk_errors, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_lookup_and_fetch_with_disk() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let tmp = tempfile::tempdir().unwrap();
        let c = Arc::new(BlockCache::with_disk(4, Some(DiskTier::open(tmp.path(), 1 << 20).unwrap())));
        c.insert(h(1), Bytes::from_static(b"disk"));
        c.insert(h(2), Bytes::from_static(b"keep")); // 1 goes to disk
        c.flush();
        let calls = Arc::new(AtomicUsize::new(0));
        for (key, want) in [(h(1), b"disk"), (h(9), b"data")] {
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (c, fetch) = (c.clone(), counting_fetch(&calls, b"data"));
                tasks.push(tokio::spawn(async move { c.get_or_fetch(key, fetch).await }));
            }
            for t in tasks {
                assert_eq!(t.await.unwrap().unwrap(), Bytes::from_static(want));
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let s = c.stats();
        assert_eq!((s.disk_hits, s.disk_misses), (1, 1));
    }

    #[test]
    fn writer_thread_ends_with_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let c = BlockCache::with_disk(4, Some(DiskTier::open(tmp.path(), 1 << 20).unwrap()));
        for k in 1..=4 {
            c.insert(h(k), Bytes::from(vec![k; 4]));
        }
        drop(c);
        // The writer thread held the tier (and its directory lock): once it ends, it can be opened again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let d = loop {
            match DiskTier::open(tmp.path(), 1 << 20) {
                Ok(d) => break d,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("the writer thread still holds the cache directory: {e}"),
            }
        };
        // What was queued before the drop was written.
        assert_eq!(d.stats().entries, 3);
        assert_eq!(d.get(&h(2)), Some(Bytes::from(vec![2; 4])));
    }
}
