//! Who refers to a block, and who may use one.
//!
//! Every version row counts once for each distinct block of its hashmap in
//! `block_refs` (per container), changed in the transaction that adds or
//! deletes the version; a block whose last count goes away enters `gc_queue`.
//! Blocks a user POSTs are recorded in `uploads` until an object of theirs
//! lists them or their grace period ends.
//!
//! A block hash is not a key: a hashmap may list only blocks the caller
//! could read anyway (of its own objects, of objects shared with it, or
//! uploaded by it). Any other block is reported missing, exactly as one the
//! server lacks, so the client must send the data to use it.

use super::access::{Perm, Resolver};
use super::model::{self, Container};
use crate::blocks::BlockHash;
use crate::cloud::fault::Fault;
use crate::cloud::sql::{params, OptionalExt, Tx};
use std::collections::HashSet;

/// Objects of other accounts looked through for one hashmap: past this the
/// remaining blocks count as unreadable (the client uploads them; nothing
/// is lost but the trip).
pub const SHARED_SCAN_LIMIT: usize = 10_000;

/// The distinct blocks of a stored hashmap, without the empty block (never
/// stored, so never referenced).
pub fn distinct_blocks(blob: &[u8]) -> Vec<BlockHash> {
    let hashes: Vec<BlockHash> = blob.chunks_exact(BlockHash::LEN).filter_map(BlockHash::from_slice).collect();
    distinct(&hashes)
}

/// `hashes` in their first-seen order, each once, without the empty block.
pub fn distinct(hashes: &[BlockHash]) -> Vec<BlockHash> {
    let empty = BlockHash::empty();
    let mut seen = HashSet::with_capacity(hashes.len().min(1 << 16));
    hashes.iter().filter(|h| **h != empty && seen.insert(**h)).copied().collect()
}

/// A new version of container `cid` lists `hashes`.
pub fn add(tx: &Tx, cid: i64, hashes: &[BlockHash]) -> Result<(), Fault> {
    let mut up = tx.prepare_cached(
        "INSERT INTO block_refs (hash, container, refs) VALUES (?1, ?2, 1)
         ON CONFLICT (hash, container) DO UPDATE SET refs = block_refs.refs + 1",
    )?;
    for h in distinct(hashes) {
        up.execute(params![&h.0[..], cid])?;
    }
    Ok(())
}

/// A version of container `cid` listing `blob` (a stored hashmap) is gone.
pub fn release(tx: &Tx, cid: i64, blob: &[u8], now: f64) -> Result<(), Fault> {
    let mut down =
        tx.prepare_cached("UPDATE block_refs SET refs = refs - 1 WHERE hash = ?1 AND container = ?2 RETURNING refs")?;
    let mut gone = tx.prepare_cached("DELETE FROM block_refs WHERE hash = ?1 AND container = ?2")?;
    let mut elsewhere = tx.prepare_cached("SELECT 1 FROM block_refs WHERE hash = ?1 LIMIT 1")?;
    let mut queue = tx.prepare_cached(
        "INSERT INTO gc_queue (hash, since) VALUES (?1, ?2) ON CONFLICT (hash) DO UPDATE SET since = excluded.since",
    )?;
    for h in distinct_blocks(blob) {
        let left: Option<i64> = down.query_row(params![&h.0[..], cid], |r| r.get(0)).optional()?;
        if left.is_some_and(|n| n > 0) {
            continue;
        }
        gone.execute(params![&h.0[..], cid])?;
        if !elsewhere.exists(params![&h.0[..]])? {
            queue.execute(params![&h.0[..], now])?;
        }
    }
    Ok(())
}

/// `uploader` POSTed block `hash` (`bytes` long) into container `cid`.
pub fn record_upload(tx: &Tx, uploader: &str, cid: i64, hash: &BlockHash, bytes: u64, now: f64) -> Result<(), Fault> {
    if *hash == BlockHash::empty() {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO uploads (hash, uploader, container, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (hash, uploader) DO UPDATE SET container = excluded.container, bytes = excluded.bytes, at = excluded.at",
    )?
    .execute(params![&hash.0[..], uploader, cid, i64::try_from(bytes).unwrap_or(i64::MAX), now])?;
    Ok(())
}

/// `uploader`'s uploads of these blocks are now in an object: they no longer
/// count as pending.
pub fn consume_uploads(tx: &Tx, uploader: &str, hashes: &[BlockHash]) -> Result<(), Fault> {
    let mut del = tx.prepare_cached("DELETE FROM uploads WHERE hash = ?1 AND uploader = ?2")?;
    for h in distinct(hashes) {
        del.execute(params![&h.0[..], uploader])?;
    }
    Ok(())
}

/// Bytes of blocks POSTed into container `cid` that no object uses yet.
pub fn pending_in_container(conn: &Tx, cid: i64) -> Result<u64, Fault> {
    let n: i64 = conn.query_row(
        "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM uploads WHERE container = ?1",
        params![cid],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// Bytes of blocks POSTed into any container of `account` that no object uses yet.
pub fn pending_in_account(conn: &Tx, account: &str) -> Result<u64, Fault> {
    let n: i64 = conn.query_row(
        "SELECT CAST(COALESCE(SUM(u.bytes), 0) AS BIGINT) FROM uploads u JOIN containers c ON c.id = u.container WHERE c.account = ?1",
        params![account],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// The blocks of `hashes` that `user` may not list in a hashmap (each once,
/// in hashmap order): those of no object of theirs, not uploaded by them,
/// and of no object they may read. `target` is the object being written: a
/// grantee rewriting a shared object may always keep its blocks.
pub fn unreadable(
    conn: &Tx,
    user: &str,
    target: Option<(&Container, &str)>,
    hashes: &[BlockHash],
) -> Result<Vec<BlockHash>, Fault> {
    let mut own = conn.prepare_cached(
        "SELECT 1 FROM block_refs r JOIN containers c ON c.id = r.container
         WHERE r.hash = ?1 AND c.account = ?2 LIMIT 1",
    )?;
    let mut uploaded = conn.prepare_cached("SELECT 1 FROM uploads WHERE hash = ?1 AND uploader = ?2")?;
    let mut left = Vec::new();
    for h in distinct(hashes) {
        if !own.exists(params![&h.0[..], user])? && !uploaded.exists(params![&h.0[..], user])? {
            left.push(h);
        }
    }
    if left.is_empty() {
        return Ok(left);
    }
    let mut wanted: HashSet<BlockHash> = left.iter().copied().collect();
    let mut resolver = Resolver::new(conn, user);
    let readable = |c: &Container, name: &str, wanted: &mut HashSet<BlockHash>| -> Result<(), Fault> {
        if let Some(v) = model::current(conn, c.id, name)? {
            for h in model::hashmap(conn, v.serial)? {
                wanted.remove(&h);
            }
        }
        Ok(())
    };
    if let Some((c, name)) = target {
        if c.account != user && resolver.object(c, name)?.is_some_and(|g| g.perm >= Perm::Read) {
            readable(c, name, &mut wanted)?;
        }
    }
    // Other accounts' containers that hold any of the rest, looked through
    // only where something is shared with the caller.
    let mut holders = conn.prepare_cached(
        "SELECT r.container FROM block_refs r JOIN containers c ON c.id = r.container
         WHERE r.hash = ?1 AND c.account <> ?2",
    )?;
    let mut containers = Vec::new();
    for h in &left {
        if !wanted.contains(h) {
            continue;
        }
        for cid in holders.query_map(params![&h.0[..], user], |r| r.get::<i64>(0))? {
            let cid = cid?;
            if !containers.contains(&cid) {
                containers.push(cid);
            }
        }
    }
    let mut scanned = 0usize;
    'containers: for cid in containers {
        let Some(c) = model::container_by_id(conn, cid)? else { continue };
        for (path, _) in resolver.shared_paths(&c)? {
            if wanted.is_empty() || scanned >= SHARED_SCAN_LIMIT {
                break 'containers;
            }
            let mut names = conn.prepare_cached(
                "SELECT name FROM current WHERE container = ?1 AND name >= ?2 AND name < ?3 ORDER BY name LIMIT ?4",
            )?;
            let upper = model::prefix_upper_bound(&path);
            let room = (SHARED_SCAN_LIMIT - scanned) as i64;
            let names: Vec<String> =
                names.query_map(params![c.id, path, upper, room], |r| r.get(0))?.collect::<Result<_, _>>()?;
            for name in names {
                if wanted.is_empty() {
                    break 'containers;
                }
                scanned += 1;
                if resolver.object(&c, &name)?.is_some_and(|g| g.perm >= Perm::Read) {
                    readable(&c, &name, &mut wanted)?;
                }
            }
        }
    }
    left.retain(|h| wanted.contains(h));
    Ok(left)
}

/// The blocks of `hashes` the store may not hold, decided from the database
/// alone: a block some version lists or some upload holds is on disk, since
/// garbage collection removes neither the row nor the file of such a block.
/// Called in the transaction that commits the hashmap, so the answer holds
/// until the commit.
pub fn absent(conn: &Tx, hashes: &[BlockHash]) -> Result<Vec<BlockHash>, Fault> {
    let mut referenced = conn.prepare_cached("SELECT 1 FROM block_refs WHERE hash = ?1 LIMIT 1")?;
    let mut uploaded = conn.prepare_cached("SELECT 1 FROM uploads WHERE hash = ?1 LIMIT 1")?;
    let mut out = Vec::new();
    for h in distinct(hashes) {
        if !referenced.exists(params![&h.0[..]])? && !uploaded.exists(params![&h.0[..]])? {
            out.push(h);
        }
    }
    Ok(out)
}
