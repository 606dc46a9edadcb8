//! Object bytes in and out: request bodies cut into stored blocks, and block
//! ranges streamed back without holding whole objects in memory.

use crate::blocks::BlockHash;
use crate::cloud::blockstore::{BlockBuf, BlockStore, Pinned};
use crate::cloud::fault::Fault;
use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;

/// Where each byte of an object (or of a manifest's concatenation) lives.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// (block hash, offset of the block in the object, bytes of the block used)
    extents: Vec<(BlockHash, u64, u64)>,
    pub size: u64,
}

impl Layout {
    pub fn of_object(hashmap: &[BlockHash], size: u64, block_size: u64) -> Layout {
        let mut l = Layout::default();
        l.append(hashmap, size, block_size);
        l
    }

    /// Adds an object's blocks after the current end (manifests).
    pub fn append(&mut self, hashmap: &[BlockHash], size: u64, block_size: u64) {
        let mut left = size;
        for h in hashmap {
            if left == 0 {
                break;
            }
            let len = left.min(block_size);
            self.extents.push((*h, self.size, len));
            self.size += len;
            left -= len;
        }
    }

    /// The extents overlapping `[start, end)`, as (hash, offset in block, length).
    pub fn pieces(&self, start: u64, end: u64) -> Vec<(BlockHash, u64, u64)> {
        let first = self.extents.partition_point(|(_, off, len)| off + len <= start);
        let mut out = Vec::new();
        for (h, off, len) in &self.extents[first..] {
            if *off >= end {
                break;
            }
            let a = start.max(*off);
            let b = end.min(off + len);
            out.push((*h, a - off, b - a));
        }
        out
    }
}

/// A piece of a response body: literal bytes (multipart framing) or a byte
/// range `[start, end)` of the layout.
pub enum Piece {
    Literal(Bytes),
    Range(u64, u64),
}

/// Largest read handed to the socket at once.
const CHUNK: u64 = 4 << 20;

/// Block reads in flight at once ahead of the socket: a backend with a round
/// trip per block (Swift) overlaps them, the directory reads ahead.
const READ_AHEAD: usize = 4;

/// Streams `pieces` of `layout`. Up to `READ_AHEAD` chunk reads run at once
/// ahead of the socket, in order, so reads overlap with each other and with
/// sending. A read that fails ends the body there (the client sees a cut
/// reply, never wrong bytes).
pub fn stream(blocks: Arc<BlockStore>, layout: Layout, pieces: Vec<Piece>) -> Body {
    enum Item {
        Literal(Bytes),
        Read(BlockHash, u64, usize),
    }
    let items = pieces.into_iter().flat_map(move |piece| match piece {
        Piece::Literal(b) => vec![Item::Literal(b)],
        Piece::Range(start, end) => {
            let mut reads = Vec::new();
            for (hash, off, len) in layout.pieces(start, end) {
                let mut done = 0;
                while done < len {
                    let n = (len - done).min(CHUNK);
                    reads.push(Item::Read(hash, off + done, n as usize));
                    done += n;
                }
            }
            reads
        }
    });
    let chunks = futures_util::stream::iter(items)
        .map(move |item| {
            let store = blocks.clone();
            async move {
                match item {
                    Item::Literal(b) => Ok(b),
                    Item::Read(hash, at, n) => {
                        let data = tokio::task::spawn_blocking(move || store.read_range(&hash, at, n))
                            .await
                            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                        if let Err(e) = &data {
                            tracing::error!("reading block {hash}: {e}");
                        }
                        data.map(Bytes::from)
                    }
                }
            }
        })
        .buffered(READ_AHEAD);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

/// At most GET ranges one request may ask for, once overlapping and
/// adjacent ones are merged.
pub const MAX_RANGES: usize = 64;

/// What a request body became once stored.
pub struct Ingested {
    pub hashmap: Vec<BlockHash>,
    pub size: u64,
    pub md5: Option<String>,
}

/// How many bytes a request may still send, and what to answer past them
/// (413: a quota, or the largest body of its kind).
#[derive(Debug, Clone)]
pub struct Budget {
    pub bytes: u64,
    pub fault: Fault,
}

impl Budget {
    pub fn new(bytes: u64, fault: Fault) -> Budget {
        Budget { bytes, fault }
    }
    /// The tighter of two budgets.
    pub fn min(self, other: Budget) -> Budget {
        if other.bytes < self.bytes {
            other
        } else {
            self
        }
    }
    /// Refuses `bytes` when over budget.
    pub fn check(&self, bytes: u64) -> Result<(), Fault> {
        if bytes > self.bytes {
            return Err(self.fault.clone());
        }
        Ok(())
    }
}

/// Blocks of one request body being written at once: a backend with a
/// round trip per block (Swift) overlaps them, and the block directory
/// makes them durable in one group.
const WRITES_IN_FLIGHT: usize = 4;

type BlockWrite = tokio::task::JoinHandle<std::io::Result<BlockHash>>;

/// Cuts a request body into blocks and stores each durably under the
/// request's pins, up to `WRITES_IN_FLIGHT` blocks being hashed and written
/// while the next arrives (their hashes kept in order). Stops reading as
/// soon as the body passes `budget`: what it stored stays pinned until the
/// request ends, then garbage collection takes it back. With `want_md5`,
/// the MD5 of the body is taken on a thread of its own as the chunks arrive
/// (the bytes are read once, and the digest overlaps with receiving and
/// block hashing).
pub async fn ingest(
    blocks: &Arc<BlockStore>,
    pins: &Arc<Pinned>,
    body: Body,
    budget: &Budget,
    want_md5: bool,
) -> Result<Ingested, Fault> {
    let mut stream = body.into_data_stream();
    // Chunks are gathered straight into the buffer the block is written from.
    let mut buf = blocks.buffer();
    let mut md5 = want_md5.then(Md5Task::start);
    let mut size: u64 = 0;
    let mut hashmap = Vec::new();
    let mut pending: std::collections::VecDeque<BlockWrite> = std::collections::VecDeque::new();
    let store = |block: BlockBuf| -> BlockWrite {
        let p = pins.clone();
        tokio::task::spawn_blocking(move || p.put_buf(block))
    };
    async fn finish(h: BlockWrite, out: &mut Vec<BlockHash>) -> Result<(), Fault> {
        let hash = h.await.map_err(|e| Fault::internal(format!("block writer failed: {e}")))??;
        out.push(hash);
        Ok(())
    }
    loop {
        let chunk = match stream.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(Fault::bad_request(format!("The request body could not be read: {e}"))),
            None => break,
        };
        size = size.saturating_add(chunk.len() as u64);
        if let Err(over) = budget.check(size) {
            // Let the blocks being written land first: once the answer is
            // out, what this request stored is already the collector's to check.
            while let Some(h) = pending.pop_front() {
                let _ = finish(h, &mut hashmap).await;
            }
            return Err(over);
        }
        if let Some(m) = md5.as_mut() {
            m.update(chunk.clone()).await?;
        }
        let mut chunk = &chunk[..];
        while !chunk.is_empty() {
            let took = buf.extend(chunk);
            chunk = &chunk[took..];
            if buf.is_full() {
                let block = std::mem::replace(&mut buf, blocks.buffer());
                pending.push_back(store(block));
                if pending.len() >= WRITES_IN_FLIGHT {
                    if let Some(h) = pending.pop_front() {
                        finish(h, &mut hashmap).await?;
                    }
                }
            }
        }
    }
    if !buf.is_empty() {
        pending.push_back(store(buf));
    }
    while let Some(h) = pending.pop_front() {
        finish(h, &mut hashmap).await?;
    }
    let md5 = match md5 {
        Some(m) => Some(m.finish().await?),
        None => None,
    };
    Ok(Ingested { hashmap, size, md5 })
}

/// An MD5 computed on a blocking thread from chunks sent to it in order.
struct Md5Task {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    task: tokio::task::JoinHandle<String>,
}

impl Md5Task {
    fn start() -> Md5Task {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let task = tokio::task::spawn_blocking(move || {
            use md5::Digest;
            let mut md5 = md5::Md5::new();
            while let Some(chunk) = rx.blocking_recv() {
                md5.update(&chunk);
            }
            hex::encode(md5.finalize())
        });
        Md5Task { tx, task }
    }

    async fn update(&mut self, chunk: Bytes) -> Result<(), Fault> {
        self.tx.send(chunk).await.map_err(|_| Fault::internal("the MD5 task ended early"))
    }

    /// The lowercase hex digest of everything sent.
    async fn finish(self) -> Result<String, Fault> {
        drop(self.tx);
        self.task.await.map_err(|e| Fault::internal(format!("the MD5 task failed: {e}")))
    }
}

/// The MD5 (lowercase hex) of the first `size` bytes of an object's blocks,
/// read one block at a time: Synnefo's `hashmap_md5`, for MD5 mode, when a
/// version's bytes never came in one request (a hashmap PUT, a ranged POST).
/// Synnefo cuts the last block to `size % block_size` bytes, which loses a
/// whole last block when the size is a multiple of the block size; this
/// takes exactly `size` bytes. Blocking: call it off the async runtime.
pub fn md5_of(blocks: &BlockStore, hashmap: &[BlockHash], size: u64) -> std::io::Result<String> {
    use md5::Digest;
    let mut md5 = md5::Md5::new();
    let layout = Layout::of_object(hashmap, size, blocks.block_size);
    for (hash, off, len) in layout.pieces(0, size) {
        let len = usize::try_from(len).map_err(std::io::Error::other)?;
        md5.update(blocks.read_range(&hash, off, len)?);
    }
    Ok(hex::encode(md5.finalize()))
}

/// Parses a `Range` header against an object of `size` bytes: `Ok(None)` when
/// the header is to be ignored (not `bytes=`, or malformed), inclusive ranges
/// otherwise. An end past the object is clamped (as RFC 7233 and Swift do).
/// Overlapping or adjacent ranges are merged (in offset order); more than
/// [`MAX_RANGES`] after that is 416, so no request makes the reply grow
/// past a few copies of the object.
pub fn parse_ranges(header: &str, size: u64) -> Result<Option<Vec<(u64, u64)>>, Fault> {
    let Some(ranges) = parse_range_specs(header, size)? else { return Ok(None) };
    let ranges = merge_ranges(ranges);
    if ranges.len() > MAX_RANGES {
        return Err(Fault::range_not_satisfiable(size)
            .with_details(format!("at most {MAX_RANGES} ranges once overlapping ones are merged")));
    }
    Ok(Some(ranges))
}

/// Sorts and merges ranges when any two overlap or touch; leaves the
/// client's order otherwise.
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut sorted = ranges.clone();
    sorted.sort_unstable();
    let touching = sorted.windows(2).any(|w| w[1].0 <= w[0].1.saturating_add(1));
    if !touching {
        return ranges;
    }
    ranges.clear();
    for (a, b) in sorted {
        match ranges.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => ranges.push((a, b)),
        }
    }
    ranges
}

fn parse_range_specs(header: &str, size: u64) -> Result<Option<Vec<(u64, u64)>>, Fault> {
    let Some(specs) = header.trim().strip_prefix("bytes=") else { return Ok(None) };
    let mut out = Vec::new();
    for spec in specs.split(',') {
        let spec = spec.trim();
        let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
        let (a, b) = (a.trim(), b.trim());
        let range = match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ok(None),
            (true, false) => {
                let Ok(n) = b.parse::<u64>() else { return Ok(None) };
                if n == 0 || size == 0 {
                    return Err(Fault::range_not_satisfiable(size));
                }
                (size - n.min(size), size - 1)
            }
            (false, _) => {
                let Ok(start) = a.parse::<u64>() else { return Ok(None) };
                let end = if b.is_empty() {
                    size.saturating_sub(1)
                } else {
                    let Ok(end) = b.parse::<u64>() else { return Ok(None) };
                    if end < start {
                        return Err(Fault::range_not_satisfiable(size));
                    }
                    end.min(size.saturating_sub(1))
                };
                if start >= size {
                    return Err(Fault::range_not_satisfiable(size));
                }
                (start, end)
            }
        };
        out.push(range);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_ranges("bytes=0-4", 10).unwrap(), Some(vec![(0, 4)]));
        assert_eq!(parse_ranges("bytes=5-", 10).unwrap(), Some(vec![(5, 9)]));
        assert_eq!(parse_ranges("bytes=-3", 10).unwrap(), Some(vec![(7, 9)]));
        assert_eq!(parse_ranges("bytes=-30", 10).unwrap(), Some(vec![(0, 9)]));
        assert_eq!(parse_ranges("bytes=0-1,4-5", 10).unwrap(), Some(vec![(0, 1), (4, 5)]));
        assert_eq!(parse_ranges("bytes=8-20", 10).unwrap(), Some(vec![(8, 9)]));
        assert_eq!(parse_ranges("items=0-1", 10).unwrap(), None);
        assert_eq!(parse_ranges("bytes=x-1", 10).unwrap(), None);
        assert!(parse_ranges("bytes=10-", 10).is_err());
        assert!(parse_ranges("bytes=5-4", 10).is_err());
        assert!(parse_ranges("bytes=0-0", 0).is_err());
        assert!(parse_ranges("bytes=-0", 10).is_err());
        // overlapping and adjacent ranges merge; others keep their order
        assert_eq!(parse_ranges("bytes=0-4,2-6,7-8", 10).unwrap(), Some(vec![(0, 8)]));
        assert_eq!(parse_ranges("bytes=6-7,0-1", 10).unwrap(), Some(vec![(6, 7), (0, 1)]));
        assert_eq!(parse_ranges("bytes=6-9,0-1,1-2", 10).unwrap(), Some(vec![(0, 2), (6, 9)]));
        let many = (0..200).map(|_| "0-0").collect::<Vec<_>>().join(",");
        assert_eq!(parse_ranges(&format!("bytes={many}"), 10).unwrap(), Some(vec![(0, 0)]));
        let spread = |n: u64| (0..n).map(|i| format!("{}-{}", i * 2, i * 2)).collect::<Vec<_>>().join(",");
        assert_eq!(parse_ranges(&format!("bytes={}", spread(64)), 1000).unwrap().map(|r| r.len()), Some(64));
        let e = parse_ranges(&format!("bytes={}", spread(65)), 1000).unwrap_err();
        assert_eq!(e.status.as_u16(), 416);
        // numbers at the edges: never a wrap
        assert_eq!(parse_ranges("bytes=-18446744073709551615", 10).unwrap(), Some(vec![(0, 9)]));
        assert!(parse_ranges("bytes=18446744073709551615-", 10).is_err());
        assert_eq!(parse_ranges("bytes=0-18446744073709551615", 10).unwrap(), Some(vec![(0, 9)]));
        assert_eq!(parse_ranges("bytes=0-18446744073709551616", 10).unwrap(), None);
    }

    #[test]
    fn layout_pieces() {
        let h = |b: u8| BlockHash([b; 32]);
        let l = Layout::of_object(&[h(1), h(2), h(3)], 10, 4);
        assert_eq!(l.size, 10);
        assert_eq!(l.pieces(0, 10), vec![(h(1), 0, 4), (h(2), 0, 4), (h(3), 0, 2)]);
        assert_eq!(l.pieces(3, 5), vec![(h(1), 3, 1), (h(2), 0, 1)]);
        assert_eq!(l.pieces(9, 10), vec![(h(3), 1, 1)]);
        let mut m = Layout::default();
        m.append(&[h(1)], 3, 4);
        m.append(&[h(2)], 2, 4);
        assert_eq!(m.pieces(2, 5), vec![(h(1), 2, 1), (h(2), 0, 2)]);
    }
}
