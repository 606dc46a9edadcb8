//! Plankton, the Synnefo image service.
//!
//! An image is a Pithos object plus metadata: its id is the object's UUID, and
//! its size, checksum (the Merkle hash) and location always come from the live
//! object, found by that UUID, so an image follows its object through
//! overwrites and moves and disappears with it. Name, formats, properties and
//! the public flag live in the `images` table, members in `image_members`.
//!
//! Request headers are read raw rather than through `Call::headers`: Plankton
//! percent-decodes exactly the name, the location and the properties, once.

use super::cyclades::json_body;
use super::fault::{Fault, Reply};
use super::pithos::model;
use super::wire::{now, plain_date, Query, Reply as Out, PATH};
use super::{Call, Cloud};
use axum::http::{HeaderMap, Method, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

pub type Properties = BTreeMap<String, String>;

/// What a usable image reports as its status; the compute API calls it ACTIVE.
pub const AVAILABLE: &str = "AVAILABLE";

const DISK_FORMATS: [&str; 3] = ["diskdump", "extdump", "ntfsdump"];
const CONTAINER_FORMATS: [&str; 5] = ["aki", "ari", "ami", "bare", "ovf"];

/// `X-Image-Meta-*` names Plankton reads; any other one is ignored.
const KNOWN_FIELDS: [&str; 16] = [
    "name",
    "disk_format",
    "container_format",
    "size",
    "checksum",
    "location",
    "created_at",
    "updated_at",
    "deleted_at",
    "status",
    "is_public",
    "owner",
    "id",
    "is_snapshot",
    "description",
    "store",
];
const REGISTER_FIELDS: [&str; 10] =
    ["name", "id", "store", "disk_format", "container_format", "size", "checksum", "is_public", "owner", "location"];
const UPDATE_FIELDS: [&str; 6] = ["name", "disk_format", "container_format", "is_public", "owner", "status"];
const SORT_KEYS: [&str; 8] =
    ["id", "name", "status", "size", "disk_format", "container_format", "created_at", "updated_at"];

/// Plankton stores a property as Pithos metadata `plankton:property:<key>`
/// and allows that whole key `128 - len("plankton") - len("property:")` characters.
const MAX_PROPERTY_KEY: usize = 128 - "plankton".len() - "property:".len() - "plankton:property:".len();
const MAX_META_VALUE: usize = 256;

/// Python's `quote` for header names: it keeps `_.-` (and `/`, which no
/// header name may hold, so it is escaped here).
const QUOTE_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-');

#[derive(Debug, Clone)]
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

impl Image {
    /// The status the compute API shows.
    pub fn compute_status(&self) -> &'static str {
        match self.status.to_ascii_uppercase().as_str() {
            AVAILABLE => "ACTIVE",
            "UNAVAILABLE" => "SAVING",
            "ERROR" => "ERROR",
            "DELETED" => "DELETED",
            _ => "UNKNOWN",
        }
    }

    /// The status image headers carry: Plankton maps anything unknown.
    fn header_status(&self) -> &'static str {
        match self.status.to_ascii_uppercase().as_str() {
            AVAILABLE => AVAILABLE,
            "UNAVAILABLE" => "SAVING",
            "ERROR" => "ERROR",
            "DELETED" => "DELETED",
            _ => "UNKNOWN",
        }
    }

    fn summary_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "disk_format": self.disk_format,
            "container_format": self.container_format,
            "size": self.size,
        })
    }

    fn detail_json(&self) -> Value {
        let mut d = Map::new();
        if let Value::Object(summary) = self.summary_json() {
            d.extend(summary);
        }
        d.insert("checksum".into(), self.checksum.clone().into());
        d.insert("location".into(), self.location.clone().into());
        d.insert("created_at".into(), plain_date(self.created).into());
        d.insert("updated_at".into(), plain_date(self.updated).into());
        d.insert("deleted_at".into(), "".into());
        d.insert("is_public".into(), self.is_public.into());
        d.insert("owner".into(), self.owner.clone().into());
        d.insert("properties".into(), json!(self.properties));
        d.insert("is_snapshot".into(), self.is_snapshot.into());
        d.insert("description".into(), self.description.clone().into());
        Value::Object(d)
    }

    /// The image as `x-image-meta-*` headers (register, HEAD and update replies).
    fn headers(&self) -> Out {
        let python_bool = |b: bool| if b { "True" } else { "False" };
        let mut out = Out::new(StatusCode::OK);
        let fields: [(&str, String); 15] = [
            ("name", quote(&self.name)),
            ("disk-format", self.disk_format.clone()),
            ("container-format", self.container_format.clone()),
            ("size", self.size.to_string()),
            ("checksum", self.checksum.clone()),
            ("location", self.location.clone()),
            ("created-at", plain_date(self.created)),
            ("updated-at", plain_date(self.updated)),
            ("deleted-at", String::new()),
            ("status", self.header_status().to_string()),
            ("is-public", python_bool(self.is_public).to_string()),
            ("owner", self.owner.clone()),
            ("id", self.id.clone()),
            ("is-snapshot", python_bool(self.is_snapshot).to_string()),
            ("description", quote(&self.description)),
        ];
        for (name, value) in fields {
            out.add_header(&format!("x-image-meta-{name}"), value);
        }
        for (key, value) in &self.properties {
            let name = format!("x-image-meta-property-{}", key.replace('_', "-"));
            let name = utf8_percent_encode(&name, QUOTE_NAME).to_string();
            out.add_header(&name, quote(value));
        }
        out
    }
}

/// Python's `quote(s)`: what Plankton does to names, descriptions and properties.
fn quote(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

fn unquote(s: &str) -> Result<String, Fault> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Fault::bad_request("Could not decode request as UTF-8 string"))
}

/// `pithos://<account>/<container>/<path>`, each part quoted.
fn pithos_url(account: &str, container: &str, name: &str) -> String {
    format!("pithos://{}/{}/{}", quote(account), quote(container), quote(name))
}

/// A location's (account, container, object), unquoted.
fn split_location(location: &str) -> Result<(String, String, String), Fault> {
    let invalid = || Fault::bad_request(format!("Invalid location '{location}'"));
    let rest = location.strip_prefix("pithos://").ok_or_else(invalid)?;
    let mut parts = rest.splitn(3, '/');
    let (Some(account), Some(container), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let (account, container, name) = (unquote(account)?, unquote(container)?, unquote(name)?);
    if account.is_empty() || container.is_empty() || name.is_empty() {
        return Err(invalid());
    }
    Ok((account, container, name))
}

// ---------- storage ----------

const IMAGE_COLUMNS: &str =
    "id, owner, name, disk_format, container_format, status, is_public, is_snapshot, description, properties, created, updated";

/// An image row; size, checksum and location are filled in from the object.
fn image_from_row(r: &Row) -> rusqlite::Result<Image> {
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
        is_public: r.get::<_, i64>(6)? != 0,
        is_snapshot: r.get::<_, i64>(7)? != 0,
        description: r.get(8)?,
        properties: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
        created: r.get(10)?,
        updated: r.get(11)?,
    })
}

/// Completes an image row from its object; None when the object is gone.
fn with_object(conn: &Connection, mut image: Image) -> Result<Option<Image>, Fault> {
    let Some((container, version)) = model::live_by_uuid(conn, &image.id)? else { return Ok(None) };
    image.size = version.bytes;
    image.checksum = version.etag;
    image.location = pithos_url(&container.account, &container.name, &version.name);
    Ok(Some(image))
}

const VISIBLE_TO: &str = "(owner = ?1 OR is_public = 1 OR id IN (SELECT image FROM image_members WHERE member = ?1))";

/// The images `user` may see: their own, public ones and those shared with them.
pub fn visible_images(conn: &Connection, user: &str) -> Result<Vec<Image>, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {IMAGE_COLUMNS} FROM images WHERE {VISIBLE_TO} ORDER BY created, id"))?;
    let rows = stmt.query_map([user], image_from_row)?.collect::<Result<Vec<_>, _>>()?;
    let mut images = Vec::with_capacity(rows.len());
    for row in rows {
        images.extend(with_object(conn, row)?);
    }
    Ok(images)
}

/// One image `user` may see, or 404.
pub fn visible_image(conn: &Connection, user: &str, id: &str) -> Result<Image, Fault> {
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
pub fn owned_image(conn: &Connection, user: &str, id: &str) -> Result<Image, Fault> {
    let image = visible_image(conn, user, id)?;
    if image.owner != user {
        return Err(Fault::forbidden(format!("Image {id} belongs to another user")));
    }
    Ok(image)
}

fn save_image(conn: &Connection, image: &Image, container: i64, object: &str) -> Result<(), Fault> {
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
fn update_image_row(conn: &Connection, image: &Image) -> Result<(), Fault> {
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
pub fn set_properties(conn: &Connection, id: &str, properties: &Properties, now: f64) -> Result<(), Fault> {
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
pub fn unregister(conn: &Connection, id: &str) -> Result<(), Fault> {
    conn.execute("DELETE FROM image_members WHERE image = ?1", [id])?;
    conn.execute("DELETE FROM images WHERE id = ?1", [id])?;
    Ok(())
}

fn members(conn: &Connection, id: &str) -> Result<Vec<String>, Fault> {
    let mut stmt = conn.prepare_cached("SELECT member FROM image_members WHERE image = ?1 ORDER BY member")?;
    let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn add_member(conn: &Connection, id: &str, member: &str) -> Result<(), Fault> {
    conn.execute("INSERT OR IGNORE INTO image_members (image, member) VALUES (?1, ?2)", [id, member])?;
    Ok(())
}

/// Property limits of Plankton (they come from Pithos metadata limits).
pub fn check_property(key: &str, value: &str) -> Result<(), Fault> {
    if key.chars().count() > MAX_PROPERTY_KEY {
        return Err(Fault::bad_request(format!("Metadata keys should be less than {MAX_PROPERTY_KEY} characters")));
    }
    check_meta_value(value)
}

fn check_meta_value(value: &str) -> Result<(), Fault> {
    if value.chars().count() > MAX_META_VALUE {
        return Err(Fault::bad_request(format!("Metadata values should be less than {MAX_META_VALUE} characters.")));
    }
    Ok(())
}

// ---------- request headers ----------

/// The `X-Image-Meta-*` headers of a request, as Plankton reads them.
#[derive(Debug, Default)]
struct ImageParams {
    fields: BTreeMap<String, String>,
    /// Properties to set; an empty value removes the property, as in Pithos.
    properties: Properties,
}

/// Header names lower-cased with punctuation turned into `_`.
fn normalize(key: &str) -> String {
    key.chars().flat_map(|c| if c.is_ascii_punctuation() { vec!['_'] } else { c.to_lowercase().collect() }).collect()
}

impl ImageParams {
    fn from_headers(headers: &HeaderMap) -> Result<ImageParams, Fault> {
        let mut params = ImageParams::default();
        for (name, value) in headers {
            let name = name.as_str().to_ascii_lowercase();
            let Some(rest) = name.strip_prefix("x-image-meta-") else { continue };
            let value = value
                .to_str()
                .map_err(|_| Fault::bad_request(format!("Header {name} holds non-ASCII bytes: percent-encode it")))?;
            if let Some(key) = rest.strip_prefix("property-") {
                let key = normalize(&unquote(key)?);
                if key.is_empty() {
                    return Err(Fault::bad_request("Image property names cannot be empty"));
                }
                params.properties.insert(key, unquote(value)?);
            } else {
                let key = normalize(rest);
                if KNOWN_FIELDS.contains(&key.as_str()) {
                    let value = if key == "name" { unquote(value)? } else { value.to_string() };
                    params.fields.insert(key, value);
                }
            }
        }
        Ok(params)
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    fn is_public(&self) -> Option<bool> {
        self.get("is_public").map(|v| v.eq_ignore_ascii_case("true"))
    }

    fn only(&self, allowed: &[&str], message: &str) -> Result<(), Fault> {
        if self.fields.keys().all(|k| allowed.contains(&k.as_str())) {
            Ok(())
        } else {
            Err(Fault::bad_request(message))
        }
    }

    fn validate(&self) -> Result<(), Fault> {
        if self.fields.contains_key("id") {
            return Err(Fault::bad_request("Setting the image ID is not supported"));
        }
        if let Some(store) = self.get("store") {
            if store != "pithos" {
                return Err(Fault::bad_request(format!("Invalid store type '{store}'")));
            }
        }
        if let Some(f) = self.get("disk_format") {
            if !DISK_FORMATS.contains(&f) {
                return Err(Fault::bad_request(format!("Invalid disk format '{f}'")));
            }
        }
        if let Some(f) = self.get("container_format") {
            if !CONTAINER_FORMATS.contains(&f) {
                return Err(Fault::bad_request(format!("Invalid container format '{f}'")));
            }
        }
        if let Some(name) = self.get("name") {
            check_meta_value(name)?;
        }
        for (k, v) in &self.properties {
            check_property(k, v)?;
        }
        Ok(())
    }

    fn merge_properties_into(&self, target: &mut Properties) {
        for (k, v) in &self.properties {
            if v.is_empty() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

// ---------- the API ----------

/// `{IMAGE}/…` (IMAGE = `/cyclades/image/v1.0`).
pub async fn handle(cloud: &Cloud, call: Call) -> Reply {
    let user = call.user()?;
    let path = call.path.trim_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').collect();
    let method = call.method.clone();
    match segments.as_slice() {
        ["images"] => match method {
            Method::GET => list(cloud, &user.uuid, &call.query, false).await,
            Method::POST => register(cloud, &user.uuid, &call.raw_headers).await,
            _ => Err(Fault::not_allowed("GET, POST")),
        },
        ["images", "detail"] => match method {
            Method::GET => list(cloud, &user.uuid, &call.query, true).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        ["images", id] if is_word(id) => match method {
            // Plankton never serves image data: clients download it from Pithos.
            Method::GET => Ok(Out::new(StatusCode::NOT_IMPLEMENTED).empty()),
            Method::HEAD => meta(cloud, &user.uuid, id).await,
            Method::PUT => update(cloud, &user.uuid, id, &call.raw_headers).await,
            Method::DELETE => delete(cloud, &user.uuid, id).await,
            _ => Err(Fault::not_allowed("GET, HEAD, PUT, DELETE")),
        },
        ["images", id, "members"] if is_word(id) => match method {
            Method::GET => list_members(cloud, &user.uuid, id).await,
            Method::PUT => replace_members(cloud, &user.uuid, id, call).await,
            _ => Err(Fault::not_allowed("GET, PUT")),
        },
        ["images", id, "members", member] if is_word(id) && is_member(member) => match method {
            Method::PUT => change_member(cloud, &user.uuid, id, member, true).await,
            Method::DELETE => change_member(cloud, &user.uuid, id, member, false).await,
            _ => Err(Fault::not_allowed("DELETE, PUT")),
        },
        ["shared-images", member] if is_member(member) => match method {
            Method::GET => shared_images(cloud, &user.uuid, member).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        _ => Err(Fault::endpoint_not_found()),
    }
}

/// Image ids as Plankton's URLs match them (`[\w-]+`).
pub(super) fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Member names as Plankton's URLs match them (`[\w@._-]+`).
fn is_member(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_@.-".contains(c))
}

async fn list(cloud: &Cloud, user: &str, query: &Query, detail: bool) -> Reply {
    let filters = ImageFilters::from_query(query)?;
    let order = ImageOrder::from_query(query)?;
    let user = user.to_string();
    let mut images = cloud.db.read(move |c| visible_images(c, &user)).await?;
    images.retain(|i| filters.admit(i));
    order.sort(&mut images);
    let list: Vec<Value> = images.iter().map(|i| if detail { i.detail_json() } else { i.summary_json() }).collect();
    // A bare list, as Synnefo sent it until late 2017 and as every kamaki
    // release expects (Synnefo 0.21 wraps it in {"images": …}, which kamaki
    // cannot read).
    Ok(Out::new(StatusCode::OK).json(&Value::Array(list)))
}

/// The Glance list filters.
struct ImageFilters {
    name: Option<String>,
    container_format: Option<String>,
    disk_format: Option<String>,
    status: Option<String>,
    size_min: Option<u64>,
    size_max: Option<u64>,
}

impl ImageFilters {
    fn from_query(query: &Query) -> Result<ImageFilters, Fault> {
        let text = |k: &str| query.get(k).map(str::to_string);
        let size = |k: &str| -> Result<Option<u64>, Fault> {
            query
                .get(k)
                .map(|v| v.trim().parse::<u64>().map_err(|_| Fault::bad_request("Malformed request.")))
                .transpose()
        };
        Ok(ImageFilters {
            name: text("name"),
            container_format: text("container_format"),
            disk_format: text("disk_format"),
            status: text("status"),
            size_min: size("size_min")?,
            size_max: size("size_max")?,
        })
    }

    fn admit(&self, i: &Image) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.name, &i.name)
            && same(&self.container_format, &i.container_format)
            && same(&self.disk_format, &i.disk_format)
            && self.status.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(&i.status))
            && self.size_min.is_none_or(|m| i.size >= m)
            && self.size_max.is_none_or(|m| i.size <= m)
    }
}

struct ImageOrder {
    key: String,
    descending: bool,
}

impl ImageOrder {
    fn from_query(query: &Query) -> Result<ImageOrder, Fault> {
        let key = query.get("sort_key").unwrap_or("created_at");
        if !SORT_KEYS.contains(&key) {
            return Err(Fault::bad_request("Invalid 'sort_key'"));
        }
        let descending = match query.get("sort_dir").unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            _ => return Err(Fault::bad_request("Invalid 'sort_dir'")),
        };
        Ok(ImageOrder { key: key.to_string(), descending })
    }

    fn compare(&self, a: &Image, b: &Image) -> Ordering {
        match self.key.as_str() {
            "id" => a.id.cmp(&b.id),
            "name" => a.name.cmp(&b.name),
            "status" => a.status.cmp(&b.status),
            "size" => a.size.cmp(&b.size),
            "disk_format" => a.disk_format.cmp(&b.disk_format),
            "container_format" => a.container_format.cmp(&b.container_format),
            "updated_at" => a.updated.total_cmp(&b.updated),
            _ => a.created.total_cmp(&b.created),
        }
    }

    fn sort(&self, images: &mut [Image]) {
        images.sort_by(|a, b| {
            let o = self.compare(a, b);
            if self.descending {
                o.reverse()
            } else {
                o
            }
        });
    }
}

async fn register(cloud: &Cloud, user: &str, headers: &HeaderMap) -> Reply {
    let params = ImageParams::from_headers(headers)?;
    params.only(&REGISTER_FIELDS, "Invalid parameters")?;
    let name = params.get("name").ok_or_else(|| Fault::bad_request("Image 'name' parameter is required"))?;
    if name.is_empty() {
        return Err(Fault::bad_request("Invalid image name"));
    }
    let location = params.get("location").ok_or_else(|| Fault::bad_request("'location' parameter is required"))?;
    let (account, container, object) = split_location(location)?;
    params.validate()?;
    let size = params
        .get("size")
        .map(|s| s.trim().parse::<u64>().map_err(|_| Fault::bad_request("Invalid 'size' field")))
        .transpose()?;
    if account != user {
        return Err(Fault::forbidden("Only the owner of an object may register it as an image"));
    }
    let user = user.to_string();
    let now = now();
    let image = cloud
        .db
        .write(move |tx| {
            let c = model::container(tx, &account, &container)?
                .ok_or_else(|| Fault::not_found("Container does not exist"))?;
            let v = model::current(tx, c.id, &object)?.ok_or_else(|| Fault::not_found("Object does not exist"))?;
            if size.is_some_and(|s| s != v.bytes) {
                return Err(Fault::bad_request("Invalid 'size' field"));
            }
            if params.get("checksum").is_some_and(|sum| sum != v.etag) {
                return Err(Fault::bad_request("Invalid checksum field"));
            }
            // Registering again keeps the properties (Plankton merges object
            // metadata) but resets sharing, as Plankton rewrites the object's
            // permissions.
            let mut properties = match tx
                .query_row("SELECT properties FROM images WHERE id = ?1", [&v.uuid], |r| r.get::<_, String>(0))
                .optional()?
            {
                Some(p) => serde_json::from_str(&p).unwrap_or_default(),
                None => Properties::new(),
            };
            params.merge_properties_into(&mut properties);
            let image = Image {
                id: v.uuid.clone(),
                owner: user.clone(),
                name: params.get("name").unwrap_or_default().to_string(),
                location: pithos_url(&c.account, &c.name, &v.name),
                size: v.bytes,
                checksum: v.etag.clone(),
                disk_format: params.get("disk_format").unwrap_or("diskdump").to_string(),
                container_format: params.get("container_format").unwrap_or("bare").to_string(),
                status: AVAILABLE.to_string(),
                is_public: params.is_public().unwrap_or(false),
                is_snapshot: false,
                description: String::new(),
                properties,
                created: now,
                updated: now,
            };
            save_image(tx, &image, c.id, &v.name)?;
            tx.execute("DELETE FROM image_members WHERE image = ?1", [&image.id])?;
            Ok(image)
        })
        .await?;
    Ok(image.headers().empty())
}

async fn meta(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    let image = cloud.db.read(move |c| visible_image(c, &user, &id)).await?;
    Ok(image.headers().empty())
}

async fn update(cloud: &Cloud, user: &str, id: &str, headers: &HeaderMap) -> Reply {
    let params = ImageParams::from_headers(headers)?;
    params.only(&UPDATE_FIELDS, "Invalid metadata")?;
    params.validate()?;
    let (user, id) = (user.to_string(), id.to_string());
    let now = now();
    let image = cloud
        .db
        .write(move |tx| {
            let mut image = owned_image(tx, &user, &id)?;
            if let Some(name) = params.get("name") {
                image.name = name.to_string();
            }
            if let Some(f) = params.get("disk_format") {
                image.disk_format = f.to_string();
            }
            if let Some(f) = params.get("container_format") {
                image.container_format = f.to_string();
            }
            if let Some(s) = params.get("status") {
                image.status = s.to_string();
            }
            if let Some(p) = params.is_public() {
                image.is_public = p;
            }
            params.merge_properties_into(&mut image.properties);
            image.updated = now;
            update_image_row(tx, &image)?;
            Ok(image)
        })
        .await?;
    Ok(image.headers().empty())
}

async fn delete(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    cloud
        .db
        .write(move |tx| {
            owned_image(tx, &user, &id)?;
            unregister(tx, &id)
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}

async fn list_members(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    let members = cloud
        .db
        .read(move |c| {
            visible_image(c, &user, &id)?;
            members(c, &id)
        })
        .await?;
    let list: Vec<Value> = members.iter().map(|m| json!({"member_id": m, "can_share": false})).collect();
    Ok(Out::new(StatusCode::OK).json(&json!({ "members": list })))
}

async fn replace_members(cloud: &Cloud, user: &str, id: &str, call: Call) -> Reply {
    let body = json_body(&call.headers, call.body).await?;
    let memberships = match body.get("memberships") {
        None | Some(Value::Null) => {
            return Err(Fault::bad_request("Malformed request. Missing attribute 'memberships'."))
        }
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(Fault::bad_request("Malformed request. Invalid 'memberships' field")),
    };
    let mut new_members = Vec::with_capacity(memberships.len());
    for m in &memberships {
        let member = m
            .as_object()
            .ok_or_else(|| Fault::bad_request("Invalid 'memberships' field"))?
            .get("member_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Fault::bad_request("Malformed request. Missing attribute 'member_id'."))?;
        new_members.push(member.to_string());
    }
    let (user, id) = (user.to_string(), id.to_string());
    cloud
        .db
        .write(move |tx| {
            owned_image(tx, &user, &id)?;
            tx.execute("DELETE FROM image_members WHERE image = ?1", [&id])?;
            for m in &new_members {
                add_member(tx, &id, m)?;
            }
            Ok(())
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}

/// Adds or removes one member. The body is never read: kamaki announces a
/// Content-Length here and sends nothing.
async fn change_member(cloud: &Cloud, user: &str, id: &str, member: &str, add: bool) -> Reply {
    let (user, id, member) = (user.to_string(), id.to_string(), member.to_string());
    cloud
        .db
        .write(move |tx| {
            owned_image(tx, &user, &id)?;
            if add {
                add_member(tx, &id, &member)
            } else {
                tx.execute("DELETE FROM image_members WHERE image = ?1 AND member = ?2", [&id, &member])?;
                Ok(())
            }
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}

/// Plankton's reading of this call: the private images of `member` that the
/// caller can see (kamaki: "images shared by member").
async fn shared_images(cloud: &Cloud, user: &str, member: &str) -> Reply {
    let (user, member) = (user.to_string(), member.to_string());
    let images = cloud.db.read(move |c| visible_images(c, &user)).await?;
    let list: Vec<Value> = images
        .iter()
        .filter(|i| !i.is_public && i.owner == member)
        .map(|i| json!({"image_id": i.id, "can_share": false}))
        .collect();
    Ok(Out::new(StatusCode::OK).json(&json!({ "shared_images": list })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_and_quote() {
        let (a, c, o) = split_location("pithos://acct/images/dir/my%20disk.img").unwrap();
        assert_eq!((a.as_str(), c.as_str(), o.as_str()), ("acct", "images", "dir/my disk.img"));
        assert_eq!(pithos_url("acct", "images", "dir/my disk.img"), "pithos://acct/images/dir/my%20disk.img");
        assert!(split_location("http://acct/c/o").is_err());
        assert!(split_location("pithos://acct/c").is_err());
        assert!(split_location("pithos://acct/c/").is_err());
    }

    #[test]
    fn header_names_normalize_like_plankton() {
        assert_eq!(normalize("Root-Partition"), "root_partition");
        assert_eq!(normalize("OS.Family"), "os_family");
        assert_eq!(normalize("Ελλάδα"), "ελλάδα");
    }

    #[test]
    fn status_maps() {
        let mut i = Image {
            id: String::new(),
            owner: String::new(),
            name: String::new(),
            location: String::new(),
            size: 0,
            checksum: String::new(),
            disk_format: String::new(),
            container_format: String::new(),
            status: AVAILABLE.into(),
            is_public: false,
            is_snapshot: false,
            description: String::new(),
            properties: Properties::new(),
            created: 0.0,
            updated: 0.0,
        };
        assert_eq!(i.compute_status(), "ACTIVE");
        i.status = "queued".into();
        assert_eq!(i.compute_status(), "UNKNOWN");
        assert_eq!(i.header_status(), "UNKNOWN");
    }
}
