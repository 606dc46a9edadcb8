//! Garbage collection of blocks no version refers to.
//!
//! Candidates come from `gc_queue`: blocks whose last reference went away
//! (in the transaction that deleted the version), uploads whose grace period
//! ended, blocks a refused request created (the block store's suspects) and,
//! on a sweep, stored files nothing records at all (a crash, or a database
//! older than reference counts). A candidate goes only when no version
//! lists it, no upload holds it, no request in flight has it pinned, and it
//! has been a candidate for `delay`.
//!
//! Each batch decides and deletes its rows in one write transaction and
//! unlinks the files before releasing the writer and the pins: a hashmap PUT,
//! which decides block existence from the same rows in its own write
//! transaction, sees either the block with its rows or neither.
//!
//! It runs in the background every `interval`, and on demand through
//! `DIR/gc.sock` (`pithosfs serve gc`), or on the data directory itself when
//! no server holds it.

use super::blockstore::BlockStore;
use super::db::Db;
use super::fault::Fault;
use super::wire::now;
use crate::blocks::{Algorithm, BlockHash, DEFAULT_BLOCK_SIZE};
use crate::cloud::sql::params;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GcConfig {
    /// How often the background pass runs.
    pub interval: Duration,
    /// How long a block stays once its last reference is gone (a download
    /// of a version just purged may still be reading it).
    pub delay: Duration,
    /// How long a POSTed block waits for the hashmap PUT that uses it.
    pub upload_grace: Duration,
}

impl Default for GcConfig {
    fn default() -> GcConfig {
        GcConfig {
            interval: Duration::from_secs(20),
            delay: Duration::from_secs(30),
            upload_grace: Duration::from_secs(6 * 3600),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Stored blocks looked at by a sweep.
    pub swept: u64,
    /// Uploads whose grace period ended (their blocks became candidates).
    pub expired_uploads: u64,
    /// Blocks unlinked, and their bytes on disk.
    pub removed: u64,
    pub freed_bytes: u64,
    /// Candidates left for later: a request in flight relies on them.
    pub pinned: u64,
}

/// Candidates decided per write transaction: short enough that writers
/// never wait long behind the collector.
const BATCH: usize = 1000;

/// The collector of one data directory.
pub struct Collector {
    db: Db,
    blocks: Arc<BlockStore>,
    config: GcConfig,
    /// One pass at a time (background and on demand).
    pass: Mutex<()>,
}

impl Collector {
    pub fn new(db: Db, blocks: Arc<BlockStore>, config: GcConfig) -> Arc<Collector> {
        Arc::new(Collector { db, blocks, config, pass: Mutex::new(()) })
    }

    /// One pass, on the calling (blocking) thread. `sweep` also walks the
    /// block directory; `on_demand` takes blocks whose last reference went
    /// away at once, without waiting `delay` (uploads keep their grace).
    pub fn collect(&self, sweep: bool, on_demand: bool) -> Result<GcReport, Fault> {
        let _one = self.pass.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = GcReport::default();
        let t = now();
        let suspects = self.blocks.take_suspects();
        if !suspects.is_empty() {
            self.db.write_blocking(move |tx| {
                // A suspect's time wins over a later one: a sweep of a shared
                // store may have queued the block first, dated past the
                // upload grace, while the request that wrote it was ending.
                let mut add = tx.prepare_cached(
                    "INSERT INTO gc_queue (hash, since) VALUES (?1, ?2) ON CONFLICT (hash) DO UPDATE
                     SET since = CASE WHEN excluded.since < gc_queue.since THEN excluded.since ELSE gc_queue.since END",
                )?;
                for (h, since) in &suspects {
                    add.execute(params![&h.0[..], since])?;
                }
                Ok(())
            })?;
        }
        let grace_cut = t - self.config.upload_grace.as_secs_f64();
        report.expired_uploads = self.db.write_blocking(move |tx| {
            tx.execute(
                "INSERT INTO gc_queue (hash, since) SELECT hash, MAX(at) FROM uploads WHERE at <= ?1 GROUP BY hash
                 ON CONFLICT DO NOTHING",
                params![grace_cut],
            )?;
            // Leases of requests that never ended (a server killed mid-request).
            tx.execute("DELETE FROM block_leases WHERE at <= ?1", params![grace_cut])?;
            Ok(tx.execute("DELETE FROM uploads WHERE at <= ?1", params![grace_cut])? as u64)
        })?;
        if sweep {
            report.swept = self.sweep()?;
        }
        let cutoff = if on_demand { t } else { t - self.config.delay.as_secs_f64() };
        let mut cursor: Vec<u8> = Vec::new();
        loop {
            let (seen, last) = self.batch(cutoff, &cursor, &mut report)?;
            match last {
                Some(l) if seen == BATCH => cursor = l,
                _ => break,
            }
        }
        if report.removed > 0 || report.expired_uploads > 0 {
            tracing::info!(
                removed = report.removed,
                freed_bytes = report.freed_bytes,
                expired_uploads = report.expired_uploads,
                "garbage collection"
            );
        }
        Ok(report)
    }

    /// Queues every stored block nothing records; returns how many were looked at.
    fn sweep(&self) -> Result<u64, Fault> {
        let mut seen = 0u64;
        let mut found: Vec<(BlockHash, f64)> = Vec::new();
        for prefix in 0..=255u8 {
            found.extend(self.blocks.stored(prefix)?);
            if found.len() >= 4 * BATCH || prefix == 255 {
                seen += found.len() as u64;
                let batch = std::mem::take(&mut found);
                // In a shared block store, a block nothing records is a
                // candidate only once it is older than the upload grace:
                // another server may have stored it for a request that has
                // not recorded it yet (this server's own such blocks are pinned).
                let grace = if self.blocks.shared() { self.config.upload_grace.as_secs_f64() } else { 0.0 };
                self.db.write_blocking(move |tx| {
                    let mut recorded = tx.prepare_cached(
                        "SELECT 1 WHERE EXISTS (SELECT 1 FROM block_refs WHERE hash = ?1)
                                     OR EXISTS (SELECT 1 FROM uploads WHERE hash = ?1)",
                    )?;
                    let mut add =
                        tx.prepare_cached("INSERT INTO gc_queue (hash, since) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?;
                    for (h, mtime) in &batch {
                        if !recorded.exists(params![&h.0[..]])? {
                            add.execute(params![&h.0[..], mtime + grace])?;
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok(seen)
    }

    /// Decides up to [`BATCH`] candidates after `cursor` and unlinks the
    /// unreferenced ones, holding the writer and the pins throughout.
    fn batch(&self, cutoff: f64, cursor: &[u8], report: &mut GcReport) -> Result<(usize, Option<Vec<u8>>), Fault> {
        self.db.exclusive_blocking(|ex| {
            let held = self.blocks.hold_pins();
            let tx = ex.tx()?;
            let candidates: Vec<Vec<u8>> = {
                let mut q = tx.prepare_cached(
                    "SELECT hash FROM gc_queue WHERE since <= ?1 AND hash > ?2 ORDER BY hash LIMIT ?3",
                )?;
                let rows = q.query_map(params![cutoff, cursor, BATCH as i64], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut doomed = Vec::new();
            {
                let mut referenced = tx.prepare_cached(
                    "SELECT 1 WHERE EXISTS (SELECT 1 FROM block_refs WHERE hash = ?1)
                                 OR EXISTS (SELECT 1 FROM uploads WHERE hash = ?1)",
                )?;
                // A request on some server relies on it (a shared store's lease).
                let mut leased = tx.prepare_cached("SELECT 1 FROM block_leases WHERE hash = ?1 AND at > ?2 LIMIT 1")?;
                let lease_cut = now() - self.config.upload_grace.as_secs_f64();
                let mut forget = tx.prepare_cached("DELETE FROM shared_blocks WHERE hash = ?1")?;
                let mut dequeue = tx.prepare_cached("DELETE FROM gc_queue WHERE hash = ?1")?;
                for raw in &candidates {
                    match BlockHash::from_slice(raw) {
                        Some(h) if !referenced.exists(params![raw])? => {
                            if held.contains(&h) || leased.exists(params![raw, lease_cut])? {
                                report.pinned += 1;
                                continue; // stays queued
                            }
                            // Gone from the ledger with the decision: a
                            // request after this commit stores it anew.
                            forget.execute(params![raw])?;
                            doomed.push(h);
                        }
                        _ => {} // used again (or not a hash): no longer a candidate
                    }
                    dequeue.execute(params![raw])?;
                }
            }
            // (`tx` borrows `ex`: its last use is above.)
            ex.commit()?;
            for h in doomed {
                match self.blocks.remove(&held, &h) {
                    Ok(0) => {}
                    Ok(n) => {
                        report.removed += 1;
                        report.freed_bytes += n;
                    }
                    // The row is gone: the next sweep finds the file again.
                    Err(e) => tracing::error!("cannot remove block {h}: {e}"),
                }
            }
            Ok((candidates.len(), candidates.last().cloned()))
        })
    }

    /// Runs a pass every `interval` (the first one sweeps) until `stop`.
    pub async fn background(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut first = true;
        loop {
            let wait = if first { self.config.interval.min(Duration::from_secs(1)) } else { self.config.interval };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            let me = self.clone();
            let sweep = first;
            match tokio::task::spawn_blocking(move || me.collect(sweep, false)).await {
                Ok(Ok(_)) => first = false,
                Ok(Err(f)) => tracing::error!("garbage collection failed: {}", f.message),
                Err(e) => tracing::error!("garbage collection failed: {e}"),
            }
        }
    }

    /// Answers `collect` requests on the control socket until `stop`.
    pub async fn control(
        self: Arc<Self>,
        listener: tokio::net::UnixListener,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!("control socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stop.changed() => return,
            };
            tokio::spawn(self.clone().answer(stream));
        }
    }

    async fn answer(self: Arc<Self>, stream: tokio::net::UnixStream) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            let mut limited = (&mut stream).take(64);
            limited.read_line(&mut line).await
        });
        let reply = match read.await {
            Ok(Ok(_)) if line.trim() == "collect" => {
                let me = self.clone();
                match tokio::task::spawn_blocking(move || me.collect(true, true)).await {
                    Ok(Ok(r)) => serde_json::to_string(&r).unwrap_or_default(),
                    Ok(Err(f)) => serde_json::json!({ "error": f.message }).to_string(),
                    Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
                }
            }
            _ => serde_json::json!({ "error": "expected the line: collect" }).to_string(),
        };
        let _ = stream.get_mut().write_all(format!("{reply}\n").as_bytes()).await;
    }
}

/// Where a running server listens for `pithosfs serve gc`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("gc.sock")
}

/// Binds the control socket (owner only: it triggers work on the server).
pub fn bind_socket(data_dir: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data_dir);
    // A leftover of a server that died: this one holds the lock now.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// `pithosfs serve gc --data DIR`: asks the server running on `DIR` for a
/// pass, or makes one itself when no server holds the directory.
pub fn collect_in(data_dir: &Path, config: GcConfig) -> Result<GcReport, String> {
    let dir = data_dir.canonicalize().map_err(|e| format!("{}: {e}", data_dir.display()))?;
    if !dir.join("meta.sqlite").is_file() && !dir.join("meta.backend").is_file() {
        return Err(format!("{} holds no pithosfs data (no meta.sqlite)", dir.display()));
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|e| format!("{}: {e}", dir.join("lock").display()))?;
    if lock.try_lock().is_err() {
        return ask_server(&socket_path(&dir));
    }
    let (at, meta_at) = (super::recorded_blocks(&dir), super::recorded_meta(&dir));
    if at != "dir" || meta_at != "sqlite" {
        return Err(format!(
            "the blocks of {} are at `{at}` and its metadata at `{meta_at}`: collect through a running server",
            dir.display()
        ));
    }
    let db = Db::open(&dir.join("meta.sqlite")).map_err(|e| format!("cannot open the database: {e}"))?;
    let blocks = BlockStore::open(&dir.join("blocks"), DEFAULT_BLOCK_SIZE, Algorithm::Sha256)
        .map_err(|e| format!("cannot open the block store: {e}"))?;
    let report = Collector::new(db, Arc::new(blocks), config).collect(true, true).map_err(|f| f.message)?;
    drop(lock);
    Ok(report)
}

fn ask_server(socket: &Path) -> Result<GcReport, String> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        format!("a server holds the data directory but its control socket {} does not answer: {e}", socket.display())
    })?;
    s.write_all(b"collect\n").map_err(|e| format!("{}: {e}", socket.display()))?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).map_err(|e| format!("{}: {e}", socket.display()))?;
    serde_json::from_str::<GcReport>(&line).map_err(|_| {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        format!("the server refused: {}", v["error"].as_str().unwrap_or(line.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::pithos::refs;

    fn setup() -> (tempfile::TempDir, Db, Arc<BlockStore>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("meta.sqlite")).unwrap();
        let blocks = Arc::new(BlockStore::open(&dir.path().join("blocks"), 8, Algorithm::Sha256).unwrap());
        db.write_blocking(|tx| {
            tx.execute(
                "INSERT INTO containers (id, account, name, created, modified, project) VALUES (1, 'a', 'c', 0, 0, 'a')",
                crate::cloud::sql::params![],
            )?;
            Ok(())
        })
        .unwrap();
        (dir, db, blocks)
    }

    fn config(grace: u64) -> GcConfig {
        GcConfig { interval: Duration::from_secs(60), delay: Duration::ZERO, upload_grace: Duration::from_secs(grace) }
    }

    /// What a hashmap commit decides from the database agrees with what the
    /// collector leaves on disk: an upload row means the file is there, and
    /// once the collector took the file the commit sees the block absent
    /// (and answers 409), never a version pointing at nothing.
    #[test]
    fn a_commit_and_the_collector_agree() {
        let (_dir, db, blocks) = setup();
        let pins = blocks.pinned();
        let h = pins.put(b"block").unwrap();
        db.write_blocking(move |tx| refs::record_upload(tx, "a", 1, &h, 5, now())).unwrap();
        pins.keep();
        drop(pins);
        let absent = |db: &Db| db.write_blocking(move |tx| refs::absent(tx, &[h])).unwrap();
        assert!(absent(&db).is_empty());
        // within its grace the upload stays, file and row
        let report = Collector::new(db.clone(), blocks.clone(), config(3600)).collect(true, true).unwrap();
        assert_eq!((report.removed, blocks.contains(&h)), (0, true));
        assert!(absent(&db).is_empty());
        // past it, both go together
        let report = Collector::new(db.clone(), blocks.clone(), config(0)).collect(false, true).unwrap();
        assert_eq!((report.expired_uploads, report.removed, blocks.contains(&h)), (1, 1, false));
        assert_eq!(absent(&db), vec![h]);
    }

    /// A block a request has pinned (written, not yet committed) stays
    /// through sweeps and passes; once the request ends without committing,
    /// the next pass takes it.
    #[test]
    fn pinned_blocks_wait_for_their_request() {
        let (_dir, db, blocks) = setup();
        let gc = Collector::new(db, blocks.clone(), config(0));
        let pins = blocks.pinned();
        let h = pins.put(b"in flight").unwrap();
        let report = gc.collect(true, true).unwrap();
        assert_eq!((report.swept, report.pinned, report.removed), (1, 1, 0));
        assert!(blocks.contains(&h));
        drop(pins);
        let report = gc.collect(false, true).unwrap();
        assert_eq!(report.removed, 1);
        assert!(!blocks.contains(&h));
    }

    /// Referenced blocks are never taken, whatever queued them.
    #[test]
    fn referenced_blocks_stay() {
        let (_dir, db, blocks) = setup();
        let pins = blocks.pinned();
        let h = pins.put(b"kept").unwrap();
        db.write_blocking(move |tx| {
            refs::add(tx, 1, &[h])?;
            tx.execute("INSERT INTO gc_queue (hash, since) VALUES (?1, 0)", crate::cloud::sql::params![&h.0[..]])?;
            Ok(())
        })
        .unwrap();
        drop(pins);
        let report = Collector::new(db.clone(), blocks.clone(), config(0)).collect(true, true).unwrap();
        assert_eq!(report.removed, 0);
        assert!(blocks.contains(&h));
        let queued: i64 = db
            .read_blocking(|c| {
                Ok(c.query_row("SELECT COUNT(*) FROM gc_queue", crate::cloud::sql::params![], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(queued, 0, "a referenced block leaves the queue");
    }
}
