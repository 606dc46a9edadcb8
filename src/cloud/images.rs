//! The image registry: what Plankton (the image API) and Cyclades (the
//! compute API's view of images) both read and change. Each API depends on
//! this module and on neither of the other.
//!
//! An image is a Pithos object plus metadata: its id is the object's UUID, and
//! its size, checksum (the Merkle hash) and location always come from the live
//! object, found by that UUID, so an image follows its object through
//! overwrites and moves and disappears with it. Name, formats, properties and
//! the public flag live in the `images` table, members in `image_members`.

use super::fault::Fault;
use super::pithos::model;
use super::wire::quote_path;
use crate::cloud::sql::{params, OptionalExt, Row, Tx};
use std::collections::BTreeMap;

pub type Properties = BTreeMap<String, String>;

/// What a usable image reports as its status; the compute API calls it ACTIVE.
pub const AVAILABLE: &str = "AVAILABLE";

/// Plankton stores a property as Pithos metadata `plankton:property:<key>`
/// and allows that whole key `128 - len("plankton") - len("property:")` characters.
const MAX_PROPERTY_KEY: usize = 128 - "plankton".len() - "property:".len() - "plankton:property:".len();
const MAX_META_VALUE: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct Image {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub location: String,
    pub size: u64,
    pub checksum: String,
    pub disk_format: String,
    pub container_format: String,
    pub status: String,
    pub is_public: bool,
    pub is_snapshot: bool,
    pub description: String,
    pub properties: Properties,
    pub created: f64,
    pub updated: f64,
}

/// Image ids as Synnefo's URLs match them (`[\w-]+`), in both APIs.
pub fn is_image_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// `pithos://<account>/<container>/<path>`, each part quoted (Python's `quote`).
pub fn pithos_url(account: &str, container: &str, name: &str) -> String {
    format!("pithos://{}/{}/{}", quote_path(account), quote_path(container), quote_path(name))
}

/// Property limits of Plankton (they come from Pithos metadata limits).
pub fn check_property(key: &str, value: &str) -> Result<(), Fault> {
    if key.chars().count() > MAX_PROPERTY_KEY {
        return Err(Fault::bad_request(format!("Metadata keys should be less than {MAX_PROPERTY_KEY} characters")));
    }
    check_meta_value(value)
}

/// The limit of any value Plankton keeps as Pithos metadata (a name too).
pub fn check_meta_value(value: &str) -> Result<(), Fault> {
    if value.chars().count() > MAX_META_VALUE {
        return Err(Fault::bad_request(format!("Metadata values should be less than {MAX_META_VALUE} characters.")));
    }
    Ok(())
}

// ---------- rows ----------

const IMAGE_COLUMNS: &str =
    "id, owner, name, disk_format, container_format, status, is_public, is_snapshot, description, properties, created, updated";

/// An image row; size, checksum and location are filled in from the object.
fn image_from_row(r: &dyn Row) -> crate::cloud::sql::Result<Image> {
    Ok(Image {
        id: r.get(0)?,
        owner: r.get(1)?,
        name: r.get(2)?,
        location: String::new(),
        size: 0,
        checksum: String::new(),
        disk_format: r.get(3)?,
        container_format: r.get(4)?,
        status: r.get(5)?,
        is_public: r.get::<i64>(6)? != 0,
        is_snapshot: r.get::<i64>(7)? != 0,
        description: r.get(8)?,
        properties: serde_json::from_str(&r.get::<String>(9)?).unwrap_or_default(),
        created: r.get(10)?,
        updated: r.get(11)?,
    })
}

/// Completes an image row from its object; None when the object is gone.
fn with_object(conn: &Tx, mut image: Image) -> Result<Option<Image>, Fault> {
    let Some((container, version)) = model::live_by_uuid(conn, &image.id)? else { return Ok(None) };
    image.size = version.bytes;
    image.checksum = version.etag;
    image.location = pithos_url(&container.account, &container.name, &version.name);
    Ok(Some(image))
}

const VISIBLE_TO: &str = "(owner = ?1 OR is_public = 1 OR id IN (SELECT image FROM image_members WHERE member = ?1))";

/// The images `user` may see: their own, public ones and those shared with them.
pub fn visible_images(conn: &Tx, user: &str) -> Result<Vec<Image>, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {IMAGE_COLUMNS} FROM images WHERE {VISIBLE_TO} ORDER BY created, id"))?;
    let rows = stmt.query_map(params![user], image_from_row)?.collect::<Result<Vec<_>, _>>()?;
    let mut images = Vec::with_capacity(rows.len());
    for row in rows {
        images.extend(with_object(conn, row)?);
    }
    Ok(images)
}

/// One image `user` may see, or 404.
pub fn visible_image(conn: &Tx, user: &str, id: &str) -> Result<Image, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {IMAGE_COLUMNS} FROM images WHERE {VISIBLE_TO} AND id = ?2"))?;
    let row = stmt.query_row(params![user, id], image_from_row).optional()?;
    let image = match row {
        Some(row) => with_object(conn, row)?,
        None => None,
    };
    image.ok_or_else(|| Fault::not_found(format!("Image '{id}' not found")))
}

/// An image `user` may change: 404 when invisible, 403 when someone else's.
pub fn owned_image(conn: &Tx, user: &str, id: &str) -> Result<Image, Fault> {
    let image = visible_image(conn, user, id)?;
    if image.owner != user {
        return Err(Fault::forbidden(format!("Image {id} belongs to another user")));
    }
    Ok(image)
}

/// The properties kept for image `id`, even when its object is gone (a
/// registration of the same object again keeps them, as Plankton merges
/// object metadata).
pub fn stored_properties(conn: &Tx, id: &str) -> Result<Option<Properties>, Fault> {
    let text = conn
        .query_row("SELECT properties FROM images WHERE id = ?1", params![id], |r| r.get::<String>(0))
        .optional()?;
    Ok(text.map(|p| serde_json::from_str(&p).unwrap_or_default()))
}

/// Registers (or registers again) the image of object `object` in container `container`.
pub fn save_image(conn: &Tx, image: &Image, container: i64, object: &str) -> Result<(), Fault> {
    conn.execute(
        "INSERT INTO images (id, owner, name, location, container, object, size, checksum, disk_format,
                             container_format, status, is_public, is_snapshot, description, properties, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, name = excluded.name, location = excluded.location,
             container = excluded.container, object = excluded.object, size = excluded.size,
             checksum = excluded.checksum, disk_format = excluded.disk_format,
             container_format = excluded.container_format, status = excluded.status,
             is_public = excluded.is_public, is_snapshot = excluded.is_snapshot,
             description = excluded.description, properties = excluded.properties,
             created = excluded.created, updated = excluded.updated",
        params![
            image.id,
            image.owner,
            image.name,
            image.location,
            container,
            object,
            image.size as i64,
            image.checksum,
            image.disk_format,
            image.container_format,
            image.status,
            image.is_public,
            image.is_snapshot,
            image.description,
            properties_json(&image.properties),
            image.created,
            image.updated
        ],
    )?;
    Ok(())
}

/// Saves what an update may change (the object's fields stay as registered).
pub fn update_image(conn: &Tx, image: &Image) -> Result<(), Fault> {
    conn.execute(
        "UPDATE images SET name = ?2, disk_format = ?3, container_format = ?4, status = ?5, is_public = ?6,
                           properties = ?7, updated = ?8 WHERE id = ?1",
        params![
            image.id,
            image.name,
            image.disk_format,
            image.container_format,
            image.status,
            image.is_public,
            properties_json(&image.properties),
            image.updated
        ],
    )?;
    Ok(())
}

fn properties_json(p: &Properties) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "{}".into())
}

/// Replaces the properties of an image (compute metadata calls).
pub fn set_properties(conn: &Tx, id: &str, properties: &Properties, now: f64) -> Result<(), Fault> {
    for (k, v) in properties {
        check_property(k, v)?;
    }
    conn.execute(
        "UPDATE images SET properties = ?2, updated = ?3 WHERE id = ?1",
        params![id, properties_json(properties), now],
    )?;
    Ok(())
}

/// Forgets an image; the Pithos object stays.
pub fn unregister(conn: &Tx, id: &str) -> Result<(), Fault> {
    conn.execute("DELETE FROM image_members WHERE image = ?1", params![id])?;
    conn.execute("DELETE FROM images WHERE id = ?1", params![id])?;
    Ok(())
}

// ---------- members ----------

pub fn members(conn: &Tx, id: &str) -> Result<Vec<String>, Fault> {
    let mut stmt = conn.prepare_cached("SELECT member FROM image_members WHERE image = ?1 ORDER BY member")?;
    let rows = stmt.query_map(params![id], |r| r.get::<String>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn add_member(conn: &Tx, id: &str, member: &str) -> Result<(), Fault> {
    conn.execute(
        "INSERT INTO image_members (image, member) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![id, member],
    )?;
    Ok(())
}

pub fn remove_member(conn: &Tx, id: &str, member: &str) -> Result<(), Fault> {
    conn.execute("DELETE FROM image_members WHERE image = ?1 AND member = ?2", params![id, member])?;
    Ok(())
}

/// Makes `members` the image's whole list of members.
pub fn replace_members(conn: &Tx, id: &str, members: &[String]) -> Result<(), Fault> {
    conn.execute("DELETE FROM image_members WHERE image = ?1", params![id])?;
    for m in members {
        add_member(conn, id, m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_quote_each_part() {
        assert_eq!(pithos_url("acct", "images", "dir/my disk.img"), "pithos://acct/images/dir/my%20disk.img");
    }

    #[test]
    fn image_ids() {
        assert!(is_image_id("1f2e-a_b"));
        assert!(!is_image_id(""));
        assert!(!is_image_id("a.b"));
    }
}
