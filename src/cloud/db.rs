//! SQLite holds every piece of metadata of the local cloud. One writer
//! connection (SQLite serialises writers anyway) and a few readers in WAL mode,
//! each used on a blocking thread so the async runtime never waits on disk.
//!
//! Writes are committed in groups: requests that want to write while
//! another group is committing queue up, and the next writer runs every
//! queued one, each in a savepoint of one transaction, and commits them
//! together: one sync of the log for all of them (`synchronous = FULL`, so
//! nobody, reader or writer, sees a write before it is on disk, and each is
//! answered only then). A write that fails is rolled back to its savepoint
//! alone; the others of its group go on.

use super::fault::Fault;
use super::pg::{PgDb, PgTarget};
use super::sql::Tx;
use rusqlite::{Connection, OpenFlags, Transaction};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, TryRecvError};
use std::sync::{Arc, Mutex};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    uuid TEXT PRIMARY KEY,
    meta TEXT NOT NULL DEFAULT '{}',
    groups TEXT NOT NULL DEFAULT '{}',
    modified REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    versioning TEXT NOT NULL DEFAULT 'auto',
    quota INTEGER NOT NULL DEFAULT 0,
    project TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    count INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account, name)
);
-- Every version of every object; a deletion is a version with deleted = 1.
CREATE TABLE IF NOT EXISTS versions (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    container INTEGER NOT NULL,
    name TEXT NOT NULL,
    uuid TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    hashmap BLOB NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT NOT NULL,
    checksum TEXT NOT NULL DEFAULT '',
    mtime REAL NOT NULL,
    modified_by TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS versions_by_name ON versions (container, name, serial);
CREATE INDEX IF NOT EXISTS versions_by_uuid ON versions (uuid);
-- The latest live version of each name: what listings and reads see.
CREATE TABLE IF NOT EXISTS current (
    container INTEGER NOT NULL,
    name TEXT NOT NULL,
    serial INTEGER NOT NULL,
    PRIMARY KEY (container, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sharing (
    container INTEGER NOT NULL,
    name TEXT NOT NULL,
    readers TEXT NOT NULL DEFAULT '',
    writers TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (container, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS public (
    token TEXT PRIMARY KEY,
    container INTEGER NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (container, name)
);
CREATE TABLE IF NOT EXISTS servers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    flavor INTEGER NOT NULL,
    image TEXT NOT NULL,
    status TEXT NOT NULL,
    next_status TEXT NOT NULL DEFAULT '',
    transition_at REAL NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]',
    admin_pass TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    location TEXT NOT NULL,
    container INTEGER NOT NULL,
    object TEXT NOT NULL,
    size INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    disk_format TEXT NOT NULL,
    container_format TEXT NOT NULL,
    status TEXT NOT NULL,
    is_public INTEGER NOT NULL DEFAULT 0,
    is_snapshot INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    properties TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_members (
    image TEXT NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (image, member)
) WITHOUT ROWID;
"#;

/// Schema changes after the first release, in order: entry `i` brings a
/// database from `PRAGMA user_version` `i` to `i + 1`, in one transaction.
/// A database made by an older pithosfs is brought up to date when opened.
const MIGRATIONS: &[fn(&Transaction) -> rusqlite::Result<()>] = &[block_references, shared_blocks];

/// Version 2: the ledger of a shared block store (see `ledger`): which
/// blocks are stored, and when a request last relied on each.
fn shared_blocks(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS shared_blocks (
            hash BLOB PRIMARY KEY,
            stored INTEGER NOT NULL DEFAULT 1
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS block_leases (
            hash BLOB NOT NULL,
            lease INTEGER NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (hash, lease)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS block_leases_by_lease ON block_leases (lease);",
    )
}

/// Version 1: block reference counts (garbage collection, and who may use a
/// block in a hashmap), uploaded blocks not yet in an object, and blocks
/// waiting to be collected. The counts are backfilled from every version's
/// hashmap.
fn block_references(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        r#"
-- How many versions of a container list a block (each version counts a block once).
CREATE TABLE IF NOT EXISTS block_refs (
    hash BLOB NOT NULL,
    container INTEGER NOT NULL,
    refs INTEGER NOT NULL,
    PRIMARY KEY (hash, container)
) WITHOUT ROWID;
-- Blocks a user POSTed that no object of theirs lists yet: theirs to use in a
-- hashmap, kept for a grace period, and counted against the container's quota.
CREATE TABLE IF NOT EXISTS uploads (
    hash BLOB NOT NULL,
    uploader TEXT NOT NULL,
    container INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (hash, uploader)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_container ON uploads (container);
-- Blocks that may have lost their last reference, since when.
CREATE TABLE IF NOT EXISTS gc_queue (
    hash BLOB PRIMARY KEY,
    since REAL NOT NULL
) WITHOUT ROWID;
"#,
    )?;
    let mut versions = tx.prepare("SELECT container, hashmap FROM versions")?;
    let mut add = tx.prepare(
        "INSERT INTO block_refs (hash, container, refs) VALUES (?1, ?2, 1)
         ON CONFLICT (hash, container) DO UPDATE SET refs = refs + 1",
    )?;
    let mut rows = versions.query([])?;
    while let Some(row) = rows.next()? {
        let container: i64 = row.get(0)?;
        let blob: Vec<u8> = row.get(1)?;
        for hash in crate::cloud::pithos::refs::distinct_blocks(&blob) {
            add.execute(rusqlite::params![&hash.0[..], container])?;
        }
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let at: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if at > MIGRATIONS.len() as i64 {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!("the database is at schema version {at}, made by a newer pithosfs")),
        ));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(at.max(0) as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        step(&tx)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Connections to the metadata database: the embedded SQLite file, or a
/// PostgreSQL database that many nodes share.
#[derive(Clone)]
pub struct Db {
    engine: Arc<Engine>,
}

enum Engine {
    Sqlite(DbInner),
    Postgres(PgDb),
}

/// Where the metadata lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaAt {
    /// The data directory's `meta.sqlite` (the default).
    Sqlite,
    Postgres(PgTarget),
}

// Fields drop in order: the read-only connections close first, so the last
// one to close is the writer, which checkpoints the write-ahead log into the
// database and removes it (deleted rows, such as an old stored password, do
// not linger in the log after a clean shutdown).
struct DbInner {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// Writes waiting for the next group commit.
    queue: Mutex<Vec<Job>>,
    /// Group commits so far (each one sync of the log).
    groups: std::sync::atomic::AtomicU64,
    writer: Mutex<Connection>,
}

/// The most writes committed in one transaction: a group stays short, so
/// that one slow write delays few others.
const MAX_GROUP: usize = 64;

/// A queued write: runs in its savepoint of the group's transaction, and
/// answers its caller once the group's commit is known.
struct Job {
    /// The write, in a savepoint unless it is alone in its group.
    run: Box<Run>,
    /// The group's transaction could not begin: nothing ran.
    fail: Box<dyn FnOnce(Fault) + Send>,
}
/// Runs a write: given the transaction and whether the write is alone in
/// it, whether it succeeded and its [`Answer`].
type Run = dyn FnOnce(&Transaction, bool) -> (bool, Answer) + Send;
/// Tells a write's caller how it ended, given the group commit's outcome.
type Answer = Box<dyn FnOnce(Option<&Fault>) + Send>;

/// A write as a [`Job`], and where its answer arrives.
fn job<T, F>(f: F) -> (Job, std::sync::mpsc::Receiver<Result<T, Fault>>)
where
    T: Send + 'static,
    F: FnOnce(&Tx) -> Result<T, Fault> + Send + 'static,
{
    let (answer, answered) = sync_channel(1);
    let failed = answer.clone();
    let run = Box::new(move |tx: &Transaction, alone: bool| -> (bool, Answer) {
        // Alone, a failed write is undone with the group's transaction.
        let out = if alone { f(&Tx::Sqlite(tx)) } else { in_savepoint(tx, |tx| f(&Tx::Sqlite(tx))) };
        let ok = out.is_ok();
        let answer: Answer = Box::new(move |commit: Option<&Fault>| {
            let out = match (out, commit) {
                (Ok(_), Some(e)) => Err(e.clone()),
                (out, _) => out,
            };
            let _ = answer.send(out);
        });
        (ok, answer)
    });
    let fail = Box::new(move |e: Fault| {
        let _ = failed.send(Err(e));
    });
    (Job { run, fail }, answered)
}

/// Runs `f` in a savepoint of `tx`: undone alone when it fails.
fn in_savepoint<T>(tx: &Transaction, f: impl FnOnce(&Transaction) -> Result<T, Fault>) -> Result<T, Fault> {
    // A statement that failed badly (I/O, disk full) may have rolled the
    // whole transaction back: nothing more runs in it.
    if tx.is_autocommit() {
        return Err(Fault::internal("the group's transaction was rolled back"));
    }
    tx.execute_batch("SAVEPOINT job")?;
    match f(tx) {
        Ok(v) => {
            tx.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            if !tx.is_autocommit() {
                tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            }
            Err(e)
        }
    }
}

/// One transaction for `jobs`, each in its savepoint, and one commit.
fn commit_group(conn: &mut Connection, jobs: Vec<Job>) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let fault = Fault::from(e);
            for job in jobs {
                (job.fail)(fault.clone());
            }
            return;
        }
    };
    let alone = jobs.len() == 1;
    let (oks, answers): (Vec<bool>, Vec<Answer>) = jobs.into_iter().map(|job| (job.run)(&tx, alone)).unzip();
    if alone && !oks[0] {
        // Its answer is its own failure; what it did goes (a drop rolls back).
        drop(tx);
        answers.into_iter().for_each(|a| a(None));
        return;
    }
    let committed = if tx.is_autocommit() {
        Err(Fault::internal("the group's transaction was rolled back"))
    } else {
        tx.commit().map_err(Fault::from)
    };
    for answer in answers {
        answer(committed.as_ref().err());
    }
}

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // FULL: a commit is on disk before the client hears of it.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536;")?;
    Ok(conn)
}

impl Db {
    /// The embedded SQLite database at `path` (created if missing).
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        let mut writer = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.execute_batch(SCHEMA)?;
        migrate(&mut writer)?;
        Ok(Db {
            engine: Arc::new(Engine::Sqlite(DbInner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                queue: Mutex::new(Vec::new()),
                groups: Default::default(),
                readers: Mutex::new(Vec::new()),
            })),
        })
    }

    /// A PostgreSQL database shared by every node (its schema made or
    /// brought up to date first).
    pub fn connect(target: &PgTarget) -> Result<Db, Fault> {
        Ok(Db { engine: Arc::new(Engine::Postgres(PgDb::connect(target)?)) })
    }

    /// The SQLite file, if this is the embedded database.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &*self.engine {
            Engine::Sqlite(inner) => Some(&inner.path),
            Engine::Postgres(_) => None,
        }
    }

    /// Runs `f` on a read connection, on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, Fault>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> Result<T, Fault> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f))
            .await
            .map_err(|e| Fault::internal(format!("database task failed: {e}")))?
    }

    pub fn read_blocking<T>(&self, f: impl FnOnce(&Tx) -> Result<T, Fault>) -> Result<T, Fault> {
        let inner = match &*self.engine {
            Engine::Sqlite(inner) => inner,
            Engine::Postgres(pg) => return pg.read(f),
        };
        let pooled = inner.readers.lock().map_err(|_| Fault::internal("database pool poisoned"))?.pop();
        let conn = match pooled {
            Some(c) => c,
            // Each connection serves one thread at a time: SQLite's own mutex is not needed.
            None => open(&inner.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?,
        };
        let out = f(&Tx::Sqlite(&conn));
        if let Ok(mut pool) = inner.readers.lock() {
            if pool.len() < 8 {
                pool.push(conn);
            }
        }
        out
    }

    /// Runs `f` in one write transaction, on a blocking thread; it commits only
    /// if `f` succeeds, so a failed request leaves nothing half-done.
    pub async fn write<T, F>(&self, f: F) -> Result<T, Fault>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> Result<T, Fault> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(f))
            .await
            .map_err(|e| Fault::internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` holding the right to write, across the commit of `f`'s
    /// transaction and what follows it, on the calling thread: no other
    /// write, of this node or (on PostgreSQL) any other, runs meanwhile.
    /// Garbage collection decides which blocks go in the transaction and
    /// deletes them after its commit, before any write can refer to them
    /// again. `f` is given its transaction's [`Tx`] and does the rest after
    /// [`Exclusive::commit`].
    pub fn exclusive_blocking<T>(&self, f: impl FnOnce(&mut Exclusive) -> Result<T, Fault>) -> Result<T, Fault> {
        match &*self.engine {
            Engine::Sqlite(inner) => {
                let mut conn = inner.writer.lock().map_err(|_| Fault::internal("database writer poisoned"))?;
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut ex = Exclusive { tx: ExclusiveTx::Sqlite(Some(tx)) };
                f(&mut ex)
            }
            Engine::Postgres(pg) => pg.exclusive(|session| {
                let mut ex = Exclusive { tx: ExclusiveTx::Postgres(session, true) };
                let out = f(&mut ex);
                if let ExclusiveTx::Postgres(session, true) = ex.tx {
                    // Not committed: undone.
                    let _ = session.batch("ROLLBACK");
                }
                out
            }),
        }
    }

    /// Queues the write, then takes the writer: whoever holds it commits
    /// every queued write at once (see the module's note), so by the time
    /// this caller holds it, its write was committed by an earlier group or
    /// is in this one. On PostgreSQL, one transaction per write, serialised
    /// across nodes (see [`PgDb::write`]).
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T, Fault>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> Result<T, Fault> + Send + 'static,
    {
        let inner = match &*self.engine {
            Engine::Sqlite(inner) => inner,
            Engine::Postgres(pg) => return pg.write(f),
        };
        let (job, answered) = job(f);
        inner.queue.lock().map_err(|_| Fault::internal("database queue poisoned"))?.push(job);
        loop {
            let mut conn = inner.writer.lock().map_err(|_| Fault::internal("database writer poisoned"))?;
            // Committed by the group before: the writes queued since are
            // their own callers' to commit (each is waiting for the writer).
            if let Ok(out) = answered.try_recv() {
                return out;
            }
            let group: Vec<Job> = {
                let mut queue = inner.queue.lock().map_err(|_| Fault::internal("database queue poisoned"))?;
                let n = queue.len().min(MAX_GROUP);
                queue.drain(..n).collect()
            };
            if !group.is_empty() {
                commit_group(&mut conn, group);
                inner.groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            drop(conn);
            match answered.try_recv() {
                Ok(out) => return out,
                // Queued behind a full group: the next one.
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Disconnected) => return Err(Fault::internal("a database write was lost")),
            }
        }
    }
}

/// The transaction of [`Db::exclusive_blocking`], and its commit.
pub struct Exclusive<'a> {
    tx: ExclusiveTx<'a>,
}

enum ExclusiveTx<'a> {
    /// `None` once committed.
    Sqlite(Option<Transaction<'a>>),
    /// Whether the transaction is still open.
    Postgres(&'a super::sql::PgSession, bool),
}

impl Exclusive<'_> {
    /// The open transaction.
    pub fn tx(&self) -> Result<Tx<'_>, Fault> {
        match &self.tx {
            ExclusiveTx::Sqlite(Some(tx)) => Ok(Tx::Sqlite(tx)),
            ExclusiveTx::Postgres(session, true) => Ok(Tx::Postgres(session)),
            _ => Err(Fault::internal("the exclusive transaction was already committed")),
        }
    }

    /// Commits it; the right to write is kept until `exclusive_blocking` returns.
    pub fn commit(&mut self) -> Result<(), Fault> {
        match &mut self.tx {
            ExclusiveTx::Sqlite(tx) => match tx.take() {
                Some(tx) => Ok(tx.commit()?),
                None => Err(Fault::internal("the exclusive transaction was already committed")),
            },
            ExclusiveTx::Postgres(session, open) => {
                if !*open {
                    return Err(Fault::internal("the exclusive transaction was already committed"));
                }
                *open = false;
                session.batch("COMMIT").map_err(Fault::from)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(db: &Db) -> &DbInner {
        match &*db.engine {
            Engine::Sqlite(inner) => inner,
            Engine::Postgres(_) => unreachable!("a SQLite database"),
        }
    }
    use crate::blocks::BlockHash;

    /// A clean close leaves no write-ahead log behind, even after reads.
    #[test]
    fn closing_checkpoints_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let db = Db::open(&path).unwrap();
        db.write_blocking(|tx| {
            Ok(tx.execute("INSERT INTO accounts (uuid, modified) VALUES ('a', 0)", crate::cloud::sql::params![])?)
        })
        .unwrap();
        let n: i64 = db
            .read_blocking(|c| {
                Ok(c.query_row("SELECT COUNT(*) FROM accounts", crate::cloud::sql::params![], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 1);
        assert!(dir.path().join("meta.sqlite-wal").exists());
        drop(db);
        assert!(!dir.path().join("meta.sqlite-wal").exists(), "the log was checkpointed and removed");
    }

    /// A database of the first release (no block tables, user_version 0)
    /// gets reference counts from its versions' hashmaps when opened.
    #[test]
    fn migration_backfills_block_references() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let (a, b, empty) = (BlockHash([1; 32]), BlockHash([2; 32]), BlockHash::empty());
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            let blob = |hs: &[BlockHash]| hs.iter().flat_map(|h| h.0).collect::<Vec<u8>>();
            for (container, hs) in [(1, vec![a, a, b]), (1, vec![a]), (2, vec![b, empty]), (2, vec![])] {
                conn.execute(
                    "INSERT INTO versions (container, name, uuid, bytes, hashmap, etag, content_type, mtime, modified_by)
                     VALUES (?1, 'o', 'u', 1, ?2, '', '', 0, '')",
                    rusqlite::params![container, blob(&hs)],
                )
                .unwrap();
            }
        }
        let db = Db::open(&path).unwrap();
        let refs = db
            .read_blocking(|c| {
                let mut s = c.prepare("SELECT hash, container, refs FROM block_refs ORDER BY hash, container")?;
                let rows = s.query_map(crate::cloud::sql::params![], |r| {
                    Ok((r.get::<Vec<u8>>(0)?, r.get::<i64>(1)?, r.get::<i64>(2)?))
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        // a block listed twice in one version counts once; the empty block is never counted
        assert_eq!(refs, vec![(a.0.to_vec(), 1, 2), (b.0.to_vec(), 1, 1), (b.0.to_vec(), 2, 1)]);
        let version: i64 = db
            .read_blocking(|c| Ok(c.query_row("PRAGMA user_version", crate::cloud::sql::params![], |r| r.get(0))?))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        drop(db);
        // opening again changes nothing
        let db = Db::open(&path).unwrap();
        let n: i64 = db
            .read_blocking(|c| {
                Ok(c.query_row("SELECT SUM(refs) FROM block_refs", crate::cloud::sql::params![], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 4);
    }

    /// Writes that queue while another holds the writer are committed
    /// together, in one transaction (one sync of the log); one that fails
    /// is undone alone, and its caller hears why.
    #[test]
    fn queued_writes_commit_as_one_group() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("meta.sqlite")).unwrap();
        let insert = |db: &Db, id: &'static str| {
            db.write_blocking(move |tx| {
                Ok(tx.execute("INSERT INTO accounts (uuid, modified) VALUES (?1, 0)", crate::cloud::sql::params![id])?)
            })
        };
        insert(&db, "first").unwrap();
        let before = sqlite(&db).groups.load(std::sync::atomic::Ordering::Relaxed);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (holding, wait_holding) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let db = db.clone();
            std::thread::spawn(move || {
                db.exclusive_blocking(|_| {
                    holding.send(()).unwrap();
                    held.recv().unwrap();
                    Ok(())
                })
            })
        };
        wait_holding.recv().unwrap();
        let writers: Vec<_> = (0..6)
            .map(|i| {
                let db = db.clone();
                std::thread::spawn(move || {
                    db.write_blocking(move |tx| {
                        tx.execute(
                            "INSERT INTO accounts (uuid, modified) VALUES (?1, 0)",
                            crate::cloud::sql::params![format!("w{i}")],
                        )?;
                        if i == 3 {
                            return Err(Fault::bad_request("writer 3 gives up"));
                        }
                        Ok(i)
                    })
                })
            })
            .collect();
        while sqlite(&db).queue.lock().unwrap().len() < 6 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        release.send(()).unwrap();
        blocker.join().unwrap().unwrap();
        for (i, w) in writers.into_iter().enumerate() {
            match w.join().unwrap() {
                Ok(n) => assert_eq!(n, i),
                Err(e) => assert!(i == 3 && format!("{e:?}").contains("writer 3 gives up"), "{e:?}"),
            }
        }
        let groups = sqlite(&db).groups.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert_eq!(groups, 1, "six queued writes, one commit");
        let ids: Vec<String> = db
            .read_blocking(|c| {
                let mut s = c.prepare("SELECT uuid FROM accounts ORDER BY uuid")?;
                let rows = s.query_map(crate::cloud::sql::params![], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(ids, ["first", "w0", "w1", "w2", "w4", "w5"]);
        // The duplicate key of a later write fails that write alone.
        assert!(insert(&db, "w0").is_err());
        insert(&db, "last").unwrap();
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        let e = Db::open(&path).err().expect("refused").to_string();
        assert!(e.contains("newer pithosfs"), "{e}");
    }
}
