//! Opening and reading: an open pins the version every read of the handle
//! sees; blocks come through the block cache (checked before they enter it);
//! sequential readers prefetch; random readers fetch whole checked blocks
//! (just the bytes asked where no hash could check them).

use super::attr::{Attr, Kind};
use super::errno::{errno_of, During, Errno, FsResult, Op};
use super::filesystem::{lock, Fs};
use super::handle::{BlockRef, OpenFile};
use super::store::{Store, StoreError, Version};
use crate::blocks::BlockHash;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

impl<S: Store> Fs<S> {
    /// Opens a file: one request (Pithos: its hashmap; Swift: a HEAD) pins
    /// the version every read of this handle sees. Returns (fh, keep the
    /// kernel's page cache: the version is the one opened last time).
    pub async fn open(&self, ino: u64, write: bool, truncate: bool) -> FsResult<(u64, bool)> {
        if write {
            let loc = self.locate(ino)?;
            self.check_writable(&loc)?;
            if !self.pending_new(ino) {
                self.check_grant(&loc).await?;
            }
        }
        let attr = self.attr_of(ino)?;
        match attr.kind {
            Kind::Dir => return Err(Errno::ISDIR),
            Kind::Symlink => return Err(Errno::INVAL),
            // The kernel opens FIFOs, sockets and devices itself; an open
            // that reaches here anyway finds no data behind them.
            Kind::Fifo | Kind::Socket | Kind::CharDevice | Kind::BlockDevice => return Err(Errno(libc::ENXIO)),
            Kind::File => {}
        }
        let loc = self.locate(ino)?;
        let (mut file, keep) = match self.store_for(&loc)?.open(&loc.container, &loc.path).await {
            Ok(opened) => {
                let version = opened.version.pin.clone().unwrap_or_default();
                let keep = lock(&self.opened_versions).insert(ino, version.clone()).is_some_and(|v| v == version);
                if let Some(n) = self.inodes().get_mut(ino) {
                    n.set_attr(&Attr::from_object(&opened.meta));
                    n.attr_at = Instant::now();
                }
                (OpenFile::opened(ino, opened, write), keep && !truncate)
            }
            // Created here and not committed yet: nothing remote to pin.
            Err(StoreError::NotFound) if self.pending_new(ino) => {
                let geometry = self.geometry(&loc, Op::Open).await?;
                (OpenFile::uncommitted(ino, &geometry, write), false)
            }
            Err(e) => return Err(errno_of(Op::Open, &e)),
        };
        if truncate && write {
            file.set_size(0)?;
            self.content_changed(ino);
        }
        if file.is_changed() {
            self.note_pending(ino, Some(file.size()));
        }
        self.note_open(ino, 1);
        Ok((self.add_handle(file), keep))
    }

    /// Block `i` of the opened version, through the cache; checked against its hash.
    pub(super) async fn clean_block(&self, f: &OpenFile, i: usize) -> FsResult<Bytes> {
        let r = f.block_ref(i).ok_or(Errno::IO)?;
        self.fetch_block(f.ino(), r).await
    }

    /// A clean block through the cache: a miss reads it from the store at
    /// the node's place now (it may have been renamed since it was opened).
    /// A block shorter or longer than its version says is refused, never
    /// cached nor padded with zeros.
    pub(super) async fn fetch_block(&self, ino: u64, r: BlockRef) -> FsResult<Bytes> {
        let len = r.len;
        if r.key == BlockHash::empty() {
            return Ok(Bytes::from(vec![0u8; len]));
        }
        // A block copied from another file is read from that file.
        let loc = self.locate(r.ino.unwrap_or(ino))?;
        let (store, key, i, version) = (self.store_for(&loc)?, r.key, r.i, r.version);
        let data = self
            .cache
            .get_or_fetch(key, async move {
                let Some(version) = version else { return Err(Errno::IO) };
                let block = store.read_block(&loc.container, &loc.path, &version, i, key).await.during(Op::Read)?;
                let want = version.block_len(i);
                if block.data.len() != want {
                    tracing::error!("block {i} of {}: {} bytes read, {want} expected", loc.path, block.data.len());
                    return Err(Errno::IO);
                }
                Ok((block.data, block.checked))
            })
            .await?;
        // A cached block may be longer than this file's last block (zero padding).
        Ok(if data.len() > len { data.slice(..len) } else { data })
    }

    /// The largest prefetch window for blocks of `bs` bytes: at most half
    /// the cache, so that prefetched blocks are not pushed out (and fetched
    /// again) before their reader gets to them.
    fn window_max(&self, bs: u64) -> usize {
        let fit = (self.opts.cache_size / bs.max(1) / 2) as usize;
        self.opts.max_prefetch.min(fit).max(1)
    }

    /// Releases from the cache the clean blocks a sequential reader, now in
    /// block `i`, has passed (see `BlockCache::release`).
    fn release_passed(&self, f: &mut OpenFile, i: usize) {
        for k in f.passed(i) {
            if let Some(key) = f.key(k).filter(|_| !f.is_dirty(k)) {
                self.cache.release(key);
            }
        }
    }

    /// Starts fetching the next blocks of a sequential reader.
    fn prefetch(self: &Arc<Self>, f: &OpenFile, from: usize, count: usize) {
        let end = (from + count).min(f.block_count());
        for i in from..end {
            if f.is_dirty(i) {
                continue;
            }
            let Some(r) = f.block_ref(i) else { continue };
            // Each read of a sequential reader asks again for the whole
            // window: blocks already on their way get no second task.
            if r.key == BlockHash::empty() || self.cache.holds_or_fetches(&r.key) {
                continue;
            }
            let (fs, ino) = (self.clone(), f.ino());
            tokio::spawn(async move {
                let _ = fs.fetch_block(ino, r).await;
            });
        }
    }

    /// A read answered at once from a block in memory (None: it needs `read`).
    /// Most reads of a sequential reader end here, prefetched: no task, no wait.
    /// Must run inside the runtime's context (prefetches are spawned).
    pub fn read_now(self: &Arc<Self>, fh: u64, offset: u64, size: u32) -> Option<Bytes> {
        let h = self.handle(fh).ok()?;
        let mut f = h.try_lock().ok()?;
        let end = offset.saturating_add(size as u64).min(f.size());
        let bs = f.block_size();
        let i = (offset / bs) as usize;
        if offset >= end || ((end - 1) / bs) as usize != i || f.is_dirty(i) {
            return None;
        }
        let data = self.cache.get(f.key(i)?)?;
        let (a, b) = ((offset - i as u64 * bs) as usize, (end - i as u64 * bs) as usize);
        if b > data.len() {
            return None;
        }
        if f.note_read(offset, end, self.window_max(bs)) {
            self.release_passed(&mut f, i);
            if f.window() > 0 {
                self.prefetch(&f, i + 1, f.window());
            }
        }
        Some(data.slice(a..b))
    }

    pub async fn read(self: &Arc<Self>, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let h = self.handle(fh)?;
        let mut f = h.lock().await;
        self.read_from(&mut f, offset, size).await
    }

    /// Reads `size` bytes at `offset` of the open file `f`.
    pub(super) async fn read_from(self: &Arc<Self>, f: &mut OpenFile, offset: u64, size: u32) -> FsResult<Bytes> {
        if offset >= f.size() {
            return Ok(Bytes::new());
        }
        let end = offset.saturating_add(size as u64).min(f.size());
        let bs = f.block_size();
        let sequential = f.note_read(offset, end, self.window_max(bs));
        let first = (offset / bs) as usize;
        let last = ((end - 1) / bs) as usize;
        if !sequential && !f.has_dirty() && !f.is_changed() {
            // A random reader gets just the bytes it asked for, pinned to its
            // version, where that gives up no check: on Swift, whose blocks
            // are ranges anyway, or when the user traded the check for
            // latency. Blocks with hashes are otherwise fetched whole and
            // checked (below), and later reads in them are memory hits.
            let all_cached = (first..=last).all(|i| f.key(i).is_some_and(|h| self.cache.get(h).is_some()));
            let unchecked = |v: &Version| v.content_hash.is_none() || self.opts.unverified_range_reads;
            if let (false, Some(version)) = (all_cached, f.version().filter(|v| unchecked(v))) {
                let loc = self.locate(f.ino())?;
                match self.store_for(&loc)?.read_range(&loc.container, &loc.path, version, offset, end).await {
                    Ok(data) if data.len() as u64 == end - offset => return Ok(data),
                    Ok(_) => {}
                    // Renamed since it was opened: on Pithos its pinned version
                    // stayed with the old name. The block path reads the new
                    // name and checks each block by its hash.
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(errno_of(Op::Read, &e)),
                }
            }
        }
        if sequential {
            self.release_passed(f, first);
        }
        if sequential && f.window() > 0 {
            // The next blocks are on their way while this one is served.
            self.prefetch(f, last + 1, f.window());
        }
        if first == last && !f.is_dirty(first) {
            // The common case, a read inside one clean block: a slice of the
            // cached block, no copy.
            let data = self.clean_block(f, first).await?;
            let (a, b) = ((offset - first as u64 * bs) as usize, (end - first as u64 * bs) as usize);
            if b <= data.len() {
                return Ok(data.slice(a..b));
            }
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for i in first..=last {
            let block_start = i as u64 * bs;
            let a = offset.max(block_start) - block_start;
            let b = end.min(block_start + bs) - block_start;
            let fetched;
            let data: &[u8] = match f.dirty_in_memory(i) {
                Some(d) => d,
                None => {
                    fetched = match f.read_dirty(i)? {
                        Some(d) => d,
                        None => self.clean_block(f, i).await?,
                    };
                    &fetched
                }
            };
            let (a, b) = (a as usize, b as usize);
            if a < data.len() {
                out.extend_from_slice(&data[a..b.min(data.len())]);
            }
            // Zeros past what the block holds (holes, grown files).
            out.resize(out.len() + b.saturating_sub(data.len().max(a)), 0);
        }
        Ok(Bytes::from(out))
    }
}
