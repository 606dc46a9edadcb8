//! Accounts, containers and object versions in SQLite: every query of the
//! Pithos+ service lives here. Writes take a `Transaction` so a request's
//! changes commit together or not at all.

use crate::blocks::{self, Algorithm, BlockHash};
use crate::cloud::fault::Fault;
use crate::cloud::sql::{params, OptionalExt, Row, Tx};
use std::collections::BTreeMap;

/// User metadata and the other per-version headers Pithos keeps with it
/// (`Content-Encoding`, `Content-Disposition`, `X-Object-Manifest`), keyed by
/// canonical header name.
pub type Meta = BTreeMap<String, String>;

pub const DIRECTORY_TYPES: [&str; 2] = ["application/directory", "application/folder"];

pub fn meta_from_json(s: &str) -> Meta {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn meta_to_json(m: &Meta) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

#[derive(Debug, Clone, Default)]
pub struct Account {
    pub uuid: String,
    pub meta: Meta,
    pub groups: BTreeMap<String, Vec<String>>,
    pub modified: f64,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: i64,
    pub account: String,
    pub name: String,
    pub created: f64,
    pub modified: f64,
    pub versioning: String,
    pub quota: u64,
    pub project: String,
    pub meta: Meta,
    pub count: u64,
    pub bytes: u64,
}

/// One version of an object, without its hashmap (see [`hashmap`]).
#[derive(Debug, Clone)]
pub struct Version {
    pub serial: i64,
    pub container: i64,
    pub name: String,
    pub uuid: String,
    pub bytes: u64,
    pub etag: String,
    pub content_type: String,
    pub checksum: String,
    pub mtime: f64,
    pub modified_by: String,
    pub meta: Meta,
    pub deleted: bool,
}

impl Version {
    pub fn is_directory(&self) -> bool {
        is_directory_type(&self.content_type)
    }
}

/// Whether a content type makes an object a directory object (parameters ignored).
pub fn is_directory_type(content_type: &str) -> bool {
    DIRECTORY_TYPES.contains(&content_type.split(';').next().unwrap_or("").trim())
}

pub const VERSION_COLUMNS: &str =
    "v.serial, v.container, v.name, v.uuid, v.bytes, v.etag, v.content_type, v.checksum, v.mtime, v.modified_by, v.meta, v.deleted";

pub fn version_from_row(r: &dyn Row) -> crate::cloud::sql::Result<Version> {
    Ok(Version {
        serial: r.get(0)?,
        container: r.get(1)?,
        name: r.get(2)?,
        uuid: r.get(3)?,
        bytes: r.get::<i64>(4)? as u64,
        etag: r.get(5)?,
        content_type: r.get(6)?,
        checksum: r.get(7)?,
        mtime: r.get(8)?,
        modified_by: r.get(9)?,
        meta: meta_from_json(&r.get::<String>(10)?),
        deleted: r.get::<i64>(11)? != 0,
    })
}

const CONTAINER_COLUMNS: &str = "id, account, name, created, modified, versioning, quota, project, meta, count, bytes";

fn container_from_row(r: &dyn Row) -> crate::cloud::sql::Result<Container> {
    Ok(Container {
        id: r.get(0)?,
        account: r.get(1)?,
        name: r.get(2)?,
        created: r.get(3)?,
        modified: r.get(4)?,
        versioning: r.get(5)?,
        quota: r.get::<i64>(6)?.max(0) as u64,
        project: r.get(7)?,
        meta: meta_from_json(&r.get::<String>(8)?),
        count: r.get::<i64>(9)?.max(0) as u64,
        bytes: r.get::<i64>(10)?.max(0) as u64,
    })
}

// ---------- accounts ----------

pub fn account(conn: &Tx, uuid: &str) -> Result<Account, Fault> {
    let row = conn
        .query_row("SELECT meta, groups, modified FROM accounts WHERE uuid = ?1", params![uuid], |r| {
            Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<f64>(2)?))
        })
        .optional()?;
    Ok(match row {
        Some((meta, groups, modified)) => Account {
            uuid: uuid.to_string(),
            meta: meta_from_json(&meta),
            groups: serde_json::from_str(&groups).unwrap_or_default(),
            modified,
        },
        None => Account { uuid: uuid.to_string(), ..Default::default() },
    })
}

pub fn save_account(tx: &Tx, a: &Account, now: f64) -> Result<(), Fault> {
    tx.execute(
        "INSERT INTO accounts (uuid, meta, groups, modified) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (uuid) DO UPDATE SET meta = excluded.meta, groups = excluded.groups, modified = excluded.modified",
        params![a.uuid, meta_to_json(&a.meta), serde_json::to_string(&a.groups).unwrap_or_default(), now],
    )?;
    Ok(())
}

pub fn touch_account(tx: &Tx, uuid: &str, now: f64) -> Result<(), Fault> {
    tx.execute(
        "INSERT INTO accounts (uuid, modified) VALUES (?1, ?2) ON CONFLICT (uuid) DO UPDATE SET modified = excluded.modified",
        params![uuid, now],
    )?;
    Ok(())
}

/// (containers, bytes) of an account.
pub fn account_usage(conn: &Tx, uuid: &str) -> Result<(u64, u64), Fault> {
    let (n, b): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM containers WHERE account = ?1",
        params![uuid],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((n as u64, b.max(0) as u64))
}

// ---------- containers ----------

pub fn container(conn: &Tx, account: &str, name: &str) -> Result<Option<Container>, Fault> {
    Ok(conn
        .query_row(
            &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE account = ?1 AND name = ?2"),
            params![account, name],
            container_from_row,
        )
        .optional()?)
}

pub fn container_by_id(conn: &Tx, id: i64) -> Result<Option<Container>, Fault> {
    Ok(conn
        .query_row(
            &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE id = ?1"),
            params![id],
            container_from_row,
        )
        .optional()?)
}

pub fn containers(conn: &Tx, account: &str) -> Result<Vec<Container>, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE account = ?1 ORDER BY name"))?;
    let rows = stmt.query_map(params![account], container_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn create_container(tx: &Tx, c: &Container) -> Result<Container, Fault> {
    let id: i64 = tx.query_row(
        "INSERT INTO containers (account, name, created, modified, versioning, quota, project, meta)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        params![
            c.account,
            c.name,
            c.created,
            c.modified,
            c.versioning,
            c.quota as i64,
            c.project,
            meta_to_json(&c.meta)
        ],
        |r| r.get(0),
    )?;
    touch_account(tx, &c.account, c.modified)?;
    Ok(Container { id, ..c.clone() })
}

/// Saves policies and metadata of a container.
pub fn save_container(tx: &Tx, c: &Container, now: f64) -> Result<(), Fault> {
    tx.execute(
        "UPDATE containers SET versioning = ?2, quota = ?3, project = ?4, meta = ?5, modified = ?6 WHERE id = ?1",
        params![c.id, c.versioning, c.quota as i64, c.project, meta_to_json(&c.meta), now],
    )?;
    Ok(())
}

pub fn delete_container(tx: &Tx, c: &Container, now: f64) -> Result<(), Fault> {
    drop_versions(tx, "container = ?1", params![c.id], now)?;
    for table in ["current", "sharing", "public"] {
        tx.execute(&format!("DELETE FROM {table} WHERE container = ?1"), params![c.id])?;
    }
    tx.execute("DELETE FROM containers WHERE id = ?1", params![c.id])?;
    touch_account(tx, &c.account, now)?;
    Ok(())
}

/// The table function of a version's metadata entries (`key` column): the
/// metadata is JSON text, which PostgreSQL must be told.
pub fn meta_entries(tx: &Tx) -> &'static str {
    match tx.dialect() {
        crate::cloud::sql::Dialect::Sqlite => "json_each(v.meta)",
        crate::cloud::sql::Dialect::Postgres => "json_each(v.meta::json)",
    }
}

/// Union of user meta keys of the container's live objects.
pub fn container_object_meta_keys(conn: &Tx, cid: i64) -> Result<Vec<String>, Fault> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT DISTINCT j.key FROM current c JOIN versions v ON v.serial = c.serial, {} j
         WHERE c.container = ?1 AND j.key LIKE 'X-Object-Meta-%' ORDER BY j.key",
        meta_entries(conn)
    ))?;
    let rows = stmt.query_map(params![cid], |r| r.get::<String>(0))?;
    Ok(rows.filter_map(|k| k.ok()).filter_map(|k| k.strip_prefix("X-Object-Meta-").map(str::to_string)).collect())
}

// ---------- versions ----------

pub fn current(conn: &Tx, cid: i64, name: &str) -> Result<Option<Version>, Fault> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM current c JOIN versions v ON v.serial = c.serial WHERE c.container = ?1 AND c.name = ?2"
    ))?;
    Ok(stmt.query_row(params![cid, name], version_from_row).optional()?)
}

/// The live version of the object with this UUID (UUIDs follow moves), and
/// its container.
pub fn live_by_uuid(conn: &Tx, uuid: &str) -> Result<Option<(Container, Version)>, Fault> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN current c
           ON c.container = v.container AND c.name = v.name AND c.serial = v.serial
         WHERE v.uuid = ?1 AND v.deleted = 0 LIMIT 1"
    ))?;
    let Some(version) = stmt.query_row(params![uuid], version_from_row).optional()? else {
        return Ok(None);
    };
    Ok(container_by_id(conn, version.container)?.map(|c| (c, version)))
}

/// A given version of a name (not a deletion).
pub fn version(conn: &Tx, cid: i64, name: &str, serial: i64) -> Result<Option<Version>, Fault> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.serial = ?1 AND v.container = ?2 AND v.name = ?3 AND v.deleted = 0"
    ))?;
    Ok(stmt.query_row(params![serial, cid, name], version_from_row).optional()?)
}

/// The live version of `name` as of `until` (epoch seconds).
pub fn version_at(conn: &Tx, cid: i64, name: &str, until: f64) -> Result<Option<Version>, Fault> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.container = ?1 AND v.name = ?2 AND v.mtime <= ?3
         ORDER BY v.serial DESC LIMIT 1"
    ))?;
    Ok(stmt.query_row(params![cid, name, until], version_from_row).optional()?.filter(|v| !v.deleted))
}

pub fn version_list(conn: &Tx, cid: i64, name: &str) -> Result<Vec<(i64, f64)>, Fault> {
    let mut stmt = conn.prepare_cached(
        "SELECT serial, mtime FROM versions WHERE container = ?1 AND name = ?2 AND deleted = 0 ORDER BY serial",
    )?;
    let rows = stmt.query_map(params![cid, name], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn hashmap(conn: &Tx, serial: i64) -> Result<Vec<BlockHash>, Fault> {
    let blob: Vec<u8> =
        conn.query_row("SELECT hashmap FROM versions WHERE serial = ?1", params![serial], |r| r.get(0))?;
    Ok(blob.chunks_exact(BlockHash::LEN).filter_map(BlockHash::from_slice).collect())
}

/// The content of a new version.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub uuid: String,
    pub bytes: u64,
    pub hashmap: Vec<BlockHash>,
    pub content_type: String,
    pub checksum: String,
    pub meta: Meta,
    pub modified_by: String,
}

/// Quota check for a change of `delta` bytes in container `c` (wide
/// arithmetic: no sum of sizes can wrap).
pub fn check_quota(conn: &Tx, c: &Container, delta: i64, account_quota: u64) -> Result<(), Fault> {
    if delta <= 0 {
        return Ok(());
    }
    let after = c.bytes as i128 + delta as i128;
    if c.quota > 0 && after > c.quota as i128 {
        return Err(Fault::quota(format!(
            "container {} would hold {after} bytes, over its quota of {}",
            c.name, c.quota
        )));
    }
    if account_quota > 0 {
        let (_, used) = account_usage(conn, &c.account)?;
        let after = used as i128 + delta as i128;
        if after > account_quota as i128 {
            return Err(Fault::quota(format!(
                "the account would use {after} bytes, over its quota of {account_quota}"
            )));
        }
    }
    Ok(())
}

/// How many more bytes container `c` may take before a quota (its own or
/// the account's) refuses, once `freed` bytes (the version being replaced)
/// are given back; `u64::MAX` when neither has a quota. With `pending`,
/// blocks POSTed but not yet in an object count as used: that is what
/// bounds block uploads.
pub fn quota_room(conn: &Tx, c: &Container, freed: u64, account_quota: u64, pending: bool) -> Result<u64, Fault> {
    let room = |quota: u64, used: u64, waiting: u64| -> u64 {
        let left = quota as i128 - used as i128 - waiting as i128 + freed as i128;
        left.clamp(0, u64::MAX as i128) as u64
    };
    // Counters may have moved since `c` was read.
    let fresh = container_by_id(conn, c.id)?.ok_or_else(|| Fault::not_found("Container does not exist"))?;
    let mut out = u64::MAX;
    if fresh.quota > 0 {
        let waiting = if pending { super::refs::pending_in_container(conn, c.id)? } else { 0 };
        out = out.min(room(fresh.quota, fresh.bytes, waiting));
    }
    if account_quota > 0 {
        let (_, used) = account_usage(conn, &c.account)?;
        let waiting = if pending { super::refs::pending_in_account(conn, &c.account)? } else { 0 };
        out = out.min(room(account_quota, used, waiting));
    }
    Ok(out)
}

/// Deletes the version rows `filter` selects (a condition on `versions`,
/// with `args` as `?1`...), giving back their blocks' references. Hashmaps
/// are read a page at a time: a container's whole history never sits in
/// memory.
fn drop_versions(tx: &Tx, filter: &str, args: crate::cloud::sql::Args, now: f64) -> Result<(), Fault> {
    const PAGE: i64 = 1000;
    let (after, limit) = (args.len() + 1, args.len() + 2);
    let sql = format!(
        "SELECT serial, container, hashmap FROM versions WHERE {filter} AND serial > ?{after} ORDER BY serial LIMIT ?{limit}"
    );
    let mut last = i64::MIN;
    loop {
        let page: Vec<(i64, i64, Vec<u8>)> = {
            let mut all: Vec<&dyn crate::cloud::sql::ToArg> = args.to_vec();
            all.push(&last);
            all.push(&PAGE);
            let mut q = tx.prepare(&sql)?;
            q.query_map(&all, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?
        };
        let mut del = tx.prepare_cached("DELETE FROM versions WHERE serial = ?1")?;
        for (serial, cid, blob) in &page {
            super::refs::release(tx, *cid, blob, now)?;
            del.execute(params![serial])?;
            last = *serial;
        }
        if (page.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

/// Records a new version of `name` as its live one, applying the container's
/// versioning policy, quotas and usage counters.
pub fn put_version(
    tx: &Tx,
    c: &Container,
    name: &str,
    new: NewVersion,
    account_quota: u64,
    now: f64,
) -> Result<Version, Fault> {
    let old = current(tx, c.id, name)?;
    let delta = new.bytes as i64 - old.as_ref().map_or(0, |o| o.bytes as i64);
    // Counters may have moved since `c` was read: re-read them inside the transaction.
    let fresh = container_by_id(tx, c.id)?.ok_or_else(|| Fault::not_found("Container does not exist"))?;
    check_quota(tx, &fresh, delta, account_quota)?;
    let hashes = if new.hashmap.is_empty() { vec![BlockHash::empty()] } else { new.hashmap };
    let etag = blocks::merkle(Algorithm::Sha256, &hashes).to_hex();
    let blob: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
    let serial = tx.prepare_cached(
        "INSERT INTO versions (container, name, uuid, bytes, hashmap, etag, content_type, checksum, mtime, modified_by, meta)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING serial",
    )?
    .query_row(params![
        c.id,
        name,
        new.uuid,
        new.bytes as i64,
        blob,
        etag,
        new.content_type,
        new.checksum,
        now,
        new.modified_by,
        meta_to_json(&new.meta)
    ], |r| r.get::<i64>(0))?;
    super::refs::add(tx, c.id, &hashes)?;
    if fresh.versioning == "none" {
        drop_versions(tx, "container = ?1 AND name = ?2 AND serial <> ?3", params![c.id, name, serial], now)?;
    }
    tx.prepare_cached(
        "INSERT INTO current (container, name, serial) VALUES (?1, ?2, ?3)
         ON CONFLICT (container, name) DO UPDATE SET serial = excluded.serial",
    )?
    .execute(params![c.id, name, serial])?;
    let added = if old.is_some() { 0 } else { 1 };
    tx.prepare_cached("UPDATE containers SET count = count + ?2, bytes = bytes + ?3, modified = ?4 WHERE id = ?1")?
        .execute(params![c.id, added, delta, now])?;
    touch_account(tx, &c.account, now)?;
    Ok(Version {
        serial,
        container: c.id,
        name: name.to_string(),
        uuid: new.uuid,
        bytes: new.bytes,
        etag,
        content_type: new.content_type,
        checksum: new.checksum,
        mtime: now,
        modified_by: new.modified_by,
        meta: new.meta,
        deleted: false,
    })
}

/// Deletes the live version of `name` (history stays under `auto` versioning),
/// and its sharing and public link.
pub fn delete_object(tx: &Tx, c: &Container, name: &str, by: &str, now: f64) -> Result<bool, Fault> {
    let Some(old) = current(tx, c.id, name)? else { return Ok(false) };
    let fresh = container_by_id(tx, c.id)?.ok_or_else(|| Fault::not_found("Container does not exist"))?;
    if fresh.versioning == "none" {
        drop_versions(tx, "container = ?1 AND name = ?2", params![c.id, name], now)?;
    } else {
        tx.prepare_cached(
            "INSERT INTO versions (container, name, uuid, bytes, hashmap, etag, content_type, checksum, mtime, modified_by, meta, deleted)
             VALUES (?1, ?2, ?3, 0, ?6, '', '', '', ?4, ?5, '{}', 1)",
        )?
        .execute(params![c.id, name, old.uuid, now, by, Vec::<u8>::new()])?;
    }
    tx.prepare_cached("DELETE FROM current WHERE container = ?1 AND name = ?2")?.execute(params![c.id, name])?;
    tx.prepare_cached("DELETE FROM sharing WHERE container = ?1 AND name = ?2")?.execute(params![c.id, name])?;
    tx.prepare_cached("DELETE FROM public WHERE container = ?1 AND name = ?2")?.execute(params![c.id, name])?;
    tx.prepare_cached("UPDATE containers SET count = count - 1, bytes = bytes - ?2, modified = ?3 WHERE id = ?1")?
        .execute(params![c.id, old.bytes as i64, now])?;
    touch_account(tx, &c.account, now)?;
    Ok(true)
}

/// Names of live objects equal to `name` or under `name/` (for `delimiter`).
pub fn names_under(conn: &Tx, cid: i64, prefix: &str) -> Result<Vec<String>, Fault> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM current WHERE container = ?1 AND name >= ?2 AND name < ?3 ORDER BY name")?;
    let upper = prefix_upper_bound(prefix);
    let rows = stmt.query_map(params![cid, prefix, upper], |r| r.get::<String>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The smallest string greater than every string starting with `prefix`
/// (SQLite compares text by UTF-8 bytes, which is code point order).
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return chars.into_iter().collect();
        }
    }
    // The prefix was empty or all U+10FFFF: nothing is above it but this.
    "\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}".to_string()
}

/// Drops history older than `until` (keeps live versions).
pub fn purge_history(tx: &Tx, cid: i64, name: Option<&str>, until: f64) -> Result<(), Fault> {
    let now = crate::cloud::wire::now();
    match name {
        Some(n) => drop_versions(
            tx,
            "container = ?1 AND name = ?2 AND mtime < ?3
             AND serial NOT IN (SELECT serial FROM current WHERE container = ?1)",
            params![cid, n, until],
            now,
        ),
        None => drop_versions(
            tx,
            "container = ?1 AND mtime < ?2 AND serial NOT IN (SELECT serial FROM current WHERE container = ?1)",
            params![cid, until],
            now,
        ),
    }
}

// ---------- sharing and public links ----------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing {
    pub read: Vec<String>,
    pub write: Vec<String>,
}

impl Sharing {
    /// Parses `read=a,b; write=c`. An empty value means "no permissions".
    pub fn parse(s: &str) -> Result<Sharing, Fault> {
        let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != '~').collect();
        let mut out = Sharing::default();
        if s.is_empty() {
            return Ok(out);
        }
        for part in s.split(';').filter(|p| !p.is_empty()) {
            let (kind, list) = part
                .split_once('=')
                .ok_or_else(|| Fault::bad_request("Bad X-Object-Sharing header: expected read=... or write=..."))?;
            let entries: Vec<String> = list.split(',').filter(|e| !e.is_empty()).map(|e| e.to_lowercase()).collect();
            if entries.is_empty() {
                return Err(Fault::bad_request("Bad X-Object-Sharing header: empty list"));
            }
            let entries = if entries.iter().any(|e| e == "*") { vec!["*".to_string()] } else { entries };
            match kind.to_ascii_lowercase().as_str() {
                "read" => out.read.extend(entries),
                "write" => out.write.extend(entries),
                _ => return Err(Fault::bad_request("Bad X-Object-Sharing header: expected read= or write=")),
            }
        }
        dedup(&mut out.write);
        dedup(&mut out.read);
        // `*` stands for everyone in a whole list, however many parts named it.
        for list in [&mut out.read, &mut out.write].into_iter().filter(|l| l.iter().any(|e| e == "*")) {
            *list = vec!["*".to_string()];
        }
        out.read.retain(|e| !out.write.contains(e));
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }

    pub fn format(&self) -> String {
        let mut parts = Vec::new();
        if !self.read.is_empty() {
            parts.push(format!("read={}", self.read.join(",")));
        }
        if !self.write.is_empty() {
            parts.push(format!("write={}", self.write.join(",")));
        }
        parts.join("; ")
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|e| seen.insert(e.clone()));
}

fn split_list(s: String) -> Vec<String> {
    s.split(',').filter(|e| !e.is_empty()).map(str::to_string).collect()
}

pub fn sharing(conn: &Tx, cid: i64, name: &str) -> Result<Option<Sharing>, Fault> {
    let mut stmt = conn.prepare_cached("SELECT readers, writers FROM sharing WHERE container = ?1 AND name = ?2")?;
    Ok(stmt
        .query_row(params![cid, name], |r| Ok(Sharing { read: split_list(r.get(0)?), write: split_list(r.get(1)?) }))
        .optional()?)
}

/// Every sharing entry of a container: (path, sharing).
pub fn container_sharing(conn: &Tx, cid: i64) -> Result<Vec<(String, Sharing)>, Fault> {
    let mut stmt = conn.prepare_cached("SELECT name, readers, writers FROM sharing WHERE container = ?1")?;
    let rows = stmt.query_map(params![cid], |r| {
        Ok((r.get::<String>(0)?, Sharing { read: split_list(r.get(1)?), write: split_list(r.get(2)?) }))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn set_sharing(tx: &Tx, cid: i64, name: &str, s: &Sharing) -> Result<(), Fault> {
    if s.is_empty() {
        tx.execute("DELETE FROM sharing WHERE container = ?1 AND name = ?2", params![cid, name])?;
    } else {
        tx.execute(
            "INSERT INTO sharing (container, name, readers, writers) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (container, name) DO UPDATE SET readers = excluded.readers, writers = excluded.writers",
            params![cid, name, s.read.join(","), s.write.join(",")],
        )?;
    }
    Ok(())
}

pub fn public_token(conn: &Tx, cid: i64, name: &str) -> Result<Option<String>, Fault> {
    let mut stmt = conn.prepare_cached("SELECT token FROM public WHERE container = ?1 AND name = ?2")?;
    Ok(stmt.query_row(params![cid, name], |r| r.get(0)).optional()?)
}

/// Publishes (keeping an existing token) or unpublishes.
pub fn set_public(tx: &Tx, cid: i64, name: &str, public: bool) -> Result<(), Fault> {
    if !public {
        tx.execute("DELETE FROM public WHERE container = ?1 AND name = ?2", params![cid, name])?;
    } else if public_token(tx, cid, name)?.is_none() {
        use rand::distr::{Alphanumeric, SampleString};
        let token = Alphanumeric.sample_string(&mut rand::rng(), 16);
        tx.execute("INSERT INTO public (token, container, name) VALUES (?1, ?2, ?3)", params![token, cid, name])?;
    }
    Ok(())
}

pub fn resolve_public(conn: &Tx, token: &str) -> Result<Option<(i64, String)>, Fault> {
    Ok(conn
        .query_row("SELECT container, name FROM public WHERE token = ?1", params![token], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

// ---------- tree operations and access (issue 8) ----------

/// Live versions of the objects whose names start with `prefix`, in name
/// order, at most `limit` of them.
pub fn live_under(conn: &Tx, cid: i64, prefix: &str, limit: usize) -> Result<Vec<Version>, Fault> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM current c JOIN versions v ON v.serial = c.serial
         WHERE c.container = ?1 AND c.name >= ?2 AND c.name < ?3 ORDER BY c.name LIMIT ?4"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![cid, prefix, prefix_upper_bound(prefix), limit], version_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Like [`version_list`], only the versions of the object with this UUID
/// (what a grantee of the object may see of its name's history).
pub fn version_list_of(conn: &Tx, cid: i64, name: &str, uuid: &str) -> Result<Vec<(i64, f64)>, Fault> {
    let mut stmt = conn.prepare_cached(
        "SELECT serial, mtime FROM versions WHERE container = ?1 AND name = ?2 AND uuid = ?3 AND deleted = 0
         ORDER BY serial",
    )?;
    let rows = stmt.query_map(params![cid, name, uuid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_parse_and_format() {
        let s = Sharing::parse("read=A,b, c ;write=c,owner:Group").unwrap();
        assert_eq!(s.read, vec!["a", "b"]);
        assert_eq!(s.write, vec!["c", "owner:group"]);
        assert_eq!(s.format(), "read=a,b; write=c,owner:group");
        assert_eq!(Sharing::parse("read=a,*").unwrap().read, vec!["*"]);
        assert!(Sharing::parse("").unwrap().is_empty());
        assert!(Sharing::parse("delete=a").is_err());
        assert!(Sharing::parse("read=").is_err());
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("a/"), "a0");
        assert_eq!(prefix_upper_bound("ab"), "ac");
        assert!(prefix_upper_bound("a/").as_str() > "a/\u{10FFFF}");
    }
}
