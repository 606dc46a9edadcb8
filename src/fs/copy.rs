//! `copy_file_range` inside the mount (what `cp` uses on current coreutils):
//! on Pithos a block of the source that lands whole on a block of the
//! destination is taken by its hash, no byte moving anywhere; the commit at
//! the destination's close lists the hash, which the store already holds.
//! Only the unaligned edges (or everything, between files of different
//! block sizes) are read and written as bytes. A source with changes not
//! committed is committed first, so the hashes taken are the store's.
//!
//! On plain Swift (no block hashes) the call is `ENOSYS`: the kernel then
//! copies through reads and writes, as it would for any file system.

use super::errno::{Errno, FsResult};
use super::filesystem::Fs;
use super::handle::{CopiedBlock, OpenFile};
use super::store::Store;
use std::sync::Arc;

/// The most one call copies (the reply counts bytes in 32 bits): the caller
/// calls again for the rest, as for a short write.
const MAX_COPY: u64 = 1 << 30;

impl<S: Store> Fs<S> {
    /// Copies `len` bytes at `off_in` of the file open as `fh_in` to
    /// `off_out` of the file open as `fh_out`; answers the bytes copied (0
    /// at or past the source's end).
    pub async fn copy_range(
        self: &Arc<Self>,
        fh_in: u64,
        off_in: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
    ) -> FsResult<u32> {
        // The destination's handle was opened for writing where that is allowed.
        self.check_mount_writable()?;
        let (hin, hout) = (self.handle(fh_in)?, self.handle(fh_out)?);
        if fh_in == fh_out {
            // One open file for both ends (the kernel refuses overlapping
            // ranges of one file): bytes through it.
            let mut f = hin.lock().await;
            if !f.is_writable() {
                return Err(Errno::BADF);
            }
            if f.content_hash().is_none() {
                return Err(Errno::NOSYS);
            }
            let total = span(&f, off_in, off_out, len)?;
            let done = self.copy_bytes_within(&mut f, off_in, off_out, total).await?;
            return self.copied(&f, done);
        }
        // Two handles locked in one order, so two copies the other way round
        // cannot wait on each other.
        let (mut src, mut dst) = if fh_in < fh_out {
            let s = hin.lock().await;
            (s, hout.lock().await)
        } else {
            let d = hout.lock().await;
            (hin.lock().await, d)
        };
        if !dst.is_writable() {
            return Err(Errno::BADF);
        }
        if src.content_hash().is_none() || dst.content_hash().is_none() {
            return Err(Errno::NOSYS);
        }
        let by_hash = src.content_hash() == dst.content_hash() && src.block_size() == dst.block_size();
        if by_hash && src.is_changed() {
            // What the copy takes by hash must be what the store holds.
            self.commit(&mut src).await?;
        }
        let total = span(&src, off_in, off_out, len)?;
        let bs = dst.block_size();
        let mut done = 0u64;
        while done < total {
            let (pin, pout, left) = (off_in + done, off_out + done, total - done);
            if by_hash && pin % bs == 0 && pout % bs == 0 {
                if let Some(n) = take_block(&src, &mut dst, pin, pout, left)? {
                    done += n;
                    continue;
                }
            }
            // Bytes up to the next block boundary of either side.
            let n = left.min(src.block_size() - pin % src.block_size()).min(bs - pout % bs);
            let data = self.read_from(&mut src, pin, n as u32).await?;
            if data.is_empty() {
                break;
            }
            let written = self.write_into(&mut dst, pout, &data).await? as u64;
            done += written;
            if written < data.len() as u64 {
                break;
            }
        }
        self.copied(&dst, done)
    }

    /// Copies `total` bytes within one open file, a block's worth at a time.
    async fn copy_bytes_within(
        self: &Arc<Self>,
        f: &mut OpenFile,
        off_in: u64,
        off_out: u64,
        total: u64,
    ) -> FsResult<u64> {
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(f.block_size()) as u32;
            let data = self.read_from(f, off_in + done, n).await?;
            if data.is_empty() {
                break;
            }
            let written = self.write_into(f, off_out + done, &data).await? as u64;
            done += written;
            if written < data.len() as u64 {
                break;
            }
        }
        Ok(done)
    }

    /// The copy into `f` is done: its size and times are those of a write.
    fn copied(&self, f: &OpenFile, done: u64) -> FsResult<u32> {
        if done > 0 {
            self.note_pending(f.ino(), Some(f.size()));
            self.content_changed(f.ino());
        }
        u32::try_from(done).map_err(|_| Errno::INVAL)
    }
}

/// Bytes a copy of `len` at `off_in` of `f` covers: up to its end, at most
/// `MAX_COPY`. A destination range past the largest offset is `EFBIG`.
fn span(f: &OpenFile, off_in: u64, off_out: u64, len: u64) -> FsResult<u64> {
    let total = f.size().saturating_sub(off_in).min(len).min(MAX_COPY);
    off_out.checked_add(total).map(|_| total).ok_or(Errno::FBIG)
}

/// Block-aligned at both ends: the source's block at `pin` becomes the
/// destination's at `pout`, by its hash, when the copy covers it whole and
/// it fills the destination's block (a full block, or the source's last one
/// landing at or past the destination's end). Answers the bytes taken, or
/// None when this block must go as bytes.
fn take_block(src: &OpenFile, dst: &mut OpenFile, pin: u64, pout: u64, left: u64) -> FsResult<Option<u64>> {
    let bs = src.block_size();
    let (i, j) = ((pin / bs) as usize, (pout / bs) as usize);
    let len = src.block_len(i) as u64;
    let fills = len == bs || pout + len >= dst.size();
    if len == 0 || len > left || !fills || src.is_dirty(i) {
        return Ok(None);
    }
    let Some(r) = src.block_ref(i) else { return Ok(None) };
    let Some(version) = r.version.clone() else { return Ok(None) };
    let from = CopiedBlock { ino: r.ino.unwrap_or(src.ino()), i: r.i, version };
    dst.take_block(j, r.key, len as usize, from)?;
    Ok(Some(len))
}
