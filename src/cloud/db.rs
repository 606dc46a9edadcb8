//! SQLite holds every piece of metadata of the local cloud. One writer
//! connection (SQLite serialises writers anyway) and a few readers in WAL mode,
//! each used on a blocking thread so the async runtime never waits on disk.

use super::fault::Fault;
use rusqlite::{Connection, OpenFlags, Transaction};
use std::path::{Path, PathBuf};
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
const MIGRATIONS: &[fn(&Transaction) -> rusqlite::Result<()>] = &[block_references];

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

/// Connections to the metadata database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

// Fields drop in order: the read-only connections close first, so the last
// one to close is the writer, which checkpoints the write-ahead log into the
// database and removes it (deleted rows, such as an old stored password, do
// not linger in the log after a clean shutdown).
struct DbInner {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Connection>,
}

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // FULL: a commit is on disk before the client hears of it.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536;")?;
    Ok(conn)
}

impl Db {
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        let mut writer = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.execute_batch(SCHEMA)?;
        migrate(&mut writer)?;
        Ok(Db {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `f` on a read connection, on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, Fault>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fault> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f))
            .await
            .map_err(|e| Fault::internal(format!("database task failed: {e}")))?
    }

    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Fault>) -> Result<T, Fault> {
        let pooled = self.inner.readers.lock().map_err(|_| Fault::internal("database pool poisoned"))?.pop();
        let conn = match pooled {
            Some(c) => c,
            // Each connection serves one thread at a time: SQLite's own mutex is not needed.
            None => open(&self.inner.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?,
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.inner.readers.lock() {
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
        F: FnOnce(&Transaction) -> Result<T, Fault> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(f))
            .await
            .map_err(|e| Fault::internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` with the writer connection itself, on the calling thread: for
    /// work that must hold the writer across a commit and what follows it
    /// (garbage collection unlinks blocks after its commit, before any other
    /// write can refer to them again).
    pub fn exclusive_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, Fault>) -> Result<T, Fault> {
        let mut conn = self.inner.writer.lock().map_err(|_| Fault::internal("database writer poisoned"))?;
        f(&mut conn)
    }

    pub fn write_blocking<T>(&self, f: impl FnOnce(&Transaction) -> Result<T, Fault>) -> Result<T, Fault> {
        let mut conn = self.inner.writer.lock().map_err(|_| Fault::internal("database writer poisoned"))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockHash;

    /// A clean close leaves no write-ahead log behind, even after reads.
    #[test]
    fn closing_checkpoints_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let db = Db::open(&path).unwrap();
        db.write_blocking(|tx| Ok(tx.execute("INSERT INTO accounts (uuid, modified) VALUES ('a', 0)", [])?)).unwrap();
        let n: i64 = db.read_blocking(|c| Ok(c.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))?)).unwrap();
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
                let rows =
                    s.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        // a block listed twice in one version counts once; the empty block is never counted
        assert_eq!(refs, vec![(a.0.to_vec(), 1, 2), (b.0.to_vec(), 1, 1), (b.0.to_vec(), 2, 1)]);
        let version: i64 = db.read_blocking(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        drop(db);
        // opening again changes nothing
        let db = Db::open(&path).unwrap();
        let n: i64 =
            db.read_blocking(|c| Ok(c.query_row("SELECT SUM(refs) FROM block_refs", [], |r| r.get(0))?)).unwrap();
        assert_eq!(n, 4);
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
