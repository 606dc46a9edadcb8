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

/// Connections to the metadata database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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
        let writer = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.execute_batch(SCHEMA)?;
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

    pub fn write_blocking<T>(&self, f: impl FnOnce(&Transaction) -> Result<T, Fault>) -> Result<T, Fault> {
        let mut conn = self.inner.writer.lock().map_err(|_| Fault::internal("database writer poisoned"))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}
