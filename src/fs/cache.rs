//! The block cache: blocks kept by hash, not by path, so a block read for one
//! file serves every copy and version holding it. Least recently used blocks
//! go first once the byte budget is spent. Only blocks whose content was
//! checked against their hash get in; concurrent misses of one block share a
//! single fetch.

use super::errno::Errno;
use crate::blocks::BlockHash;
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;
use std::collections::HashMap;
use std::sync::Mutex;

type Fetch = Shared<BoxFuture<'static, Result<(Bytes, bool), Errno>>>;

pub struct BlockCache {
    capacity: u64,
    inner: Mutex<Inner>,
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
    pub bytes: u64,
    pub blocks: usize,
    pub hits: u64,
    pub misses: u64,
}

impl BlockCache {
    pub fn new(capacity: u64) -> BlockCache {
        BlockCache {
            capacity,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                inflight: HashMap::new(),
                hits: 0,
                misses: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a consistent map: go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, h: &BlockHash) -> Option<Bytes> {
        let mut inner = self.lock();
        let got = inner.lru.get(h).cloned();
        if got.is_some() {
            inner.hits += 1;
        }
        got
    }

    /// Keeps a block whose content the caller checked against `h`.
    pub fn insert(&self, h: BlockHash, data: Bytes) {
        if data.len() as u64 > self.capacity {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.lru.put(h, data.clone()) {
            inner.bytes -= old.len() as u64;
        }
        inner.bytes += data.len() as u64;
        while inner.bytes > self.capacity {
            match inner.lru.pop_lru() {
                Some((_, b)) => inner.bytes -= b.len() as u64,
                None => break,
            }
        }
    }

    /// The block from memory, or from `fetch` (which must check the hash and
    /// say whether the result may be cached); one fetch per block at a time.
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
                    let f: Fetch = fetch.boxed().shared();
                    inner.inflight.insert(h, f.clone());
                    f
                }
            }
        };
        let result = shared.await;
        self.lock().inflight.remove(&h);
        let (data, cacheable) = result?;
        if cacheable {
            self.insert(h, data.clone());
        }
        Ok(data)
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats { bytes: inner.bytes, blocks: inner.lru.len(), hits: inner.hits, misses: inner.misses }
    }
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
}
