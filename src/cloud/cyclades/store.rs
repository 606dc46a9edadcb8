//! Servers in SQLite: rows, and the two ways a handler gets at one of the
//! caller's servers (read it as of now, or change it in one transaction).

use super::server::Server;
use crate::cloud::fault::Fault;
use crate::cloud::sql::{params, OptionalExt, Row, Tx};
use crate::cloud::users::User;
use crate::cloud::wire::now;
use crate::cloud::Cloud;

const SERVER_COLUMNS: &str =
    "id, owner, name, flavor, image, status, next_status, transition_at, metadata, tags, project, created, updated, deleted";

fn server_from_row(r: &dyn Row) -> crate::cloud::sql::Result<Server> {
    Ok(Server {
        id: r.get(0)?,
        owner: r.get(1)?,
        name: r.get(2)?,
        flavor: r.get(3)?,
        image: r.get(4)?,
        status: r.get(5)?,
        next_status: r.get(6)?,
        transition_at: r.get(7)?,
        metadata: serde_json::from_str(&r.get::<String>(8)?).unwrap_or_default(),
        tags: serde_json::from_str(&r.get::<String>(9)?).unwrap_or_default(),
        project: r.get(10)?,
        created: r.get(11)?,
        updated: r.get(12)?,
        deleted: r.get::<i64>(13)? != 0,
    })
}

fn to_json_text<T: serde::Serialize>(v: &T, empty: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| empty.to_string())
}

/// A server of `owner`; someone else's is as missing as one never made.
fn server_of(conn: &Tx, owner: &str, id: i64) -> Result<Server, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {SERVER_COLUMNS} FROM servers WHERE id = ?1 AND owner = ?2"))?;
    stmt.query_row(params![id, owner], server_from_row).optional()?.ok_or_else(|| Fault::not_found("Server not found."))
}

pub(super) fn servers_of(conn: &Tx, owner: &str) -> Result<Vec<Server>, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {SERVER_COLUMNS} FROM servers WHERE owner = ?1 ORDER BY id"))?;
    let rows = stmt.query_map(params![owner], server_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn insert_server(conn: &Tx, s: &Server) -> Result<i64, Fault> {
    Ok(conn.query_row(
        "INSERT INTO servers (owner, name, flavor, image, status, next_status, transition_at, metadata, tags,
                              project, created, updated, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
        params![
            s.owner,
            s.name,
            s.flavor,
            s.image,
            s.status,
            s.next_status,
            s.transition_at,
            to_json_text(&s.metadata, "{}"),
            to_json_text(&s.tags, "[]"),
            s.project,
            s.created,
            s.updated,
            s.deleted
        ],
        |r| r.get(0),
    )?)
}

fn save_server(conn: &Tx, s: &Server) -> Result<(), Fault> {
    conn.execute(
        "UPDATE servers SET name = ?2, flavor = ?3, image = ?4, status = ?5, next_status = ?6, transition_at = ?7,
                            metadata = ?8, tags = ?9, project = ?10, updated = ?11, deleted = ?12
         WHERE id = ?1",
        params![
            s.id,
            s.name,
            s.flavor,
            s.image,
            s.status,
            s.next_status,
            s.transition_at,
            to_json_text(&s.metadata, "{}"),
            to_json_text(&s.tags, "[]"),
            s.project,
            s.updated,
            s.deleted
        ],
    )?;
    Ok(())
}

/// How many servers `owner` has (deleted ones aside): what the quota counts.
pub fn live_servers(conn: &Tx, owner: &str) -> Result<u64, Fault> {
    let n: i64 =
        conn.query_row("SELECT COUNT(*) FROM servers WHERE owner = ?1 AND deleted = 0", params![owner], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Wipes the server passwords an earlier version kept in the database in
/// clear: the freed bytes are zeroed (`secure_delete`) and the write-ahead
/// log, which still holds the old pages, is checkpointed and truncated. Runs
/// at start-up on a connection of its own, before anything else uses the
/// file. (PostgreSQL metadata came later: it never held them.)
pub fn forget_stored_passwords(db_file: &std::path::Path) -> Result<(), Fault> {
    let conn = rusqlite::Connection::open(db_file)?;
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM servers WHERE admin_pass <> ''", [], |r| r.get(0))?;
    if stored > 0 {
        conn.execute_batch("PRAGMA secure_delete = ON; UPDATE servers SET admin_pass = '' WHERE admin_pass <> '';")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// One of the caller's servers, as of now.
pub(super) async fn load(cloud: &Cloud, user: &User, id: i64) -> Result<Server, Fault> {
    let owner = user.uuid.clone();
    let now = now();
    Ok(cloud.db.read(move |c| server_of(c, &owner, id)).await?.settled(now))
}

/// Applies `change` to one of the caller's servers in one transaction and
/// saves it, pending transition included, unless `change` fails.
pub(super) async fn modify<T, F>(cloud: &Cloud, user: &User, id: i64, change: F) -> Result<(Server, T), Fault>
where
    T: Send + 'static,
    F: FnOnce(&mut Server, f64) -> Result<T, Fault> + Send + 'static,
{
    let owner = user.uuid.clone();
    let now = now();
    cloud
        .db
        .write(move |tx| {
            let mut server = server_of(tx, &owner, id)?.settled(now);
            let out = change(&mut server, now)?;
            save_server(tx, &server)?;
            Ok((server, out))
        })
        .await
}
