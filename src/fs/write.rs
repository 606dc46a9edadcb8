//! Writing: writes change whole blocks in memory (dirty blocks); past a bound
//! a file's complete dirty blocks move to a spill file, and where the store
//! names blocks by content they also start for it at once, so the commit at
//! close finds them there. Truncation is a write of the size.

use super::attr::now;
use super::errno::{Errno, FsResult};
use super::filesystem::Fs;
use super::handle::OpenFile;
use super::store::Store;
use bytes::Bytes;
use std::sync::Arc;

impl<S: Store> Fs<S> {
    /// Makes block `i` dirty (loading its current content), for changing it.
    pub(super) async fn make_dirty(&self, f: &mut OpenFile, i: usize) -> FsResult<()> {
        if f.is_dirty(i) {
            return Ok(());
        }
        let content = if i < f.block_count() { self.clean_block(f, i).await?.to_vec() } else { Vec::new() };
        f.begin_change(i, content);
        Ok(())
    }

    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        // A handle is writable only where its open was allowed to write.
        self.check_mount_writable()?;
        let h = self.handle(fh)?;
        let mut f = h.lock().await;
        if !f.is_writable() {
            return Err(Errno::BADF);
        }
        self.write_into(&mut f, offset, data).await
    }

    /// Writes `data` at `offset` of the open file `f` (writable).
    pub(super) async fn write_into(&self, f: &mut OpenFile, offset: u64, data: &[u8]) -> FsResult<u32> {
        // Past the largest file the server holds: EFBIG at the limit, and a
        // write that crosses it is cut short there (POSIX's partial write).
        if data.is_empty() {
            return Ok(0);
        }
        let limit = f.max_size().max(f.size());
        if offset >= limit {
            return Err(Errno::FBIG);
        }
        let room = usize::try_from(limit.saturating_sub(offset)).unwrap_or(usize::MAX);
        let data = &data[..data.len().min(room)];
        let bs = f.block_size();
        let end = offset + data.len() as u64; // <= limit: no overflow
        if end > f.size() {
            f.set_size(end)?;
        }
        let mut pos = offset;
        while pos < end {
            let i = (pos / bs) as usize;
            let block_start = i as u64 * bs;
            let in_block = (pos - block_start) as usize;
            let n = ((bs - in_block as u64).min(end - pos)) as usize;
            // A write covering a whole block needs not its old content.
            if in_block == 0 && n as u64 == bs.min(f.size() - block_start) && !f.is_dirty(i) {
                f.begin_change(i, Vec::with_capacity(n));
            } else {
                self.make_dirty(f, i).await?;
            }
            let from = (pos - offset) as usize;
            f.patch(i, in_block, &data[from..from + n])?;
            pos += n as u64;
        }
        self.note_pending(f.ino(), Some(f.size()));
        self.content_changed(f.ino());
        if f.dirty_bytes_in_memory() > self.opts.dirty_limit {
            let dir = self.opts.spill_dir.clone();
            // Disk writes of tens of MiB: off the runtime's reactor.
            let moved = tokio::task::block_in_place(|| f.spill(&dir)).map_err(|e| {
                tracing::error!("cannot spill dirty blocks to {}: {e}", dir.display());
                Errno::from(e)
            })?;
            if f.content_hash().is_some() {
                self.send_early(f.ino(), moved).await;
            }
        }
        Ok(data.len() as u32)
    }

    /// Blocks just spilled also start for the store while the writer goes
    /// on, so the commit at close finds them there (content-addressed: a
    /// block sent for nothing costs nothing but the trip). Bounded: past
    /// the permits the writer waits, so a large write proceeds at the
    /// store's pace and every block is sent once, early.
    async fn send_early(&self, ino: u64, blocks: Vec<(usize, Bytes)>) {
        let Ok(loc) = self.locate(ino) else { return };
        let Ok(store) = self.store_for(&loc) else { return };
        for (_, data) in blocks {
            let Ok(permit) = self.early_uploads.clone().acquire_owned().await else { return };
            let (store, container) = (store.clone(), loc.container.clone());
            tokio::spawn(async move {
                if let Err(e) = store.upload_block(&container, data).await {
                    tracing::debug!("early block upload failed (the commit sends it): {e}");
                }
                drop(permit);
            });
        }
    }

    /// Waits until no early block upload is in flight: a commit that
    /// follows finds them stored rather than sending them again.
    pub(super) async fn early_uploads_settled(&self) {
        let all = u32::try_from(super::filesystem::EARLY_UPLOADS).unwrap_or(u32::MAX);
        drop(self.early_uploads.acquire_many(all).await);
    }

    /// truncate/ftruncate to `size` through the open handle `fh` or a
    /// handle of its own. Past the largest file the server holds: `EFBIG`,
    /// before anything is opened or allocated.
    pub(super) async fn truncate(
        self: &Arc<Self>,
        ino: u64,
        size: u64,
        keeps_mtime: bool,
        fh: Option<u64>,
    ) -> FsResult<()> {
        let current = self.inodes().get(ino).map(|n| n.pending.unwrap_or(n.size())).ok_or(Errno::NOENT)?;
        if size > current {
            let loc = self.locate(ino)?;
            if size > self.geometry(&loc, super::errno::Op::Setattr).await?.max_size {
                return Err(Errno::FBIG);
            }
        }
        let (fh, temporary) = match fh.filter(|f| self.handle(*f).is_ok()) {
            Some(f) => (f, false),
            None => (self.open(ino, true, false).await?.0, true),
        };
        let h = self.handle(fh)?;
        let cut = async {
            let mut f = h.lock().await;
            if size < f.size() && size > 0 {
                let last = ((size - 1) / f.block_size()) as usize;
                self.make_dirty(&mut f, last).await?;
            }
            f.set_size(size)?;
            self.note_pending(ino, Some(f.size()));
            if !keeps_mtime {
                self.content_changed(ino);
            }
            Ok::<(), Errno>(())
        }
        .await;
        // A handle opened here is closed (committing the cut) whatever happened.
        let released = if temporary { self.release(fh).await } else { Ok(()) };
        cut.and(released)
    }

    /// The content changed now (a write, a truncate): mtime and ctime are
    /// this moment's, for stat now and for the commit that writes them (an
    /// mtime set by utimes before is overridden, as on a local disk; one
    /// set after is what the commit keeps).
    pub(super) fn content_changed(&self, ino: u64) {
        if let Some(n) = self.inodes().get_mut(ino) {
            n.changed(now(), true);
        }
    }
}
