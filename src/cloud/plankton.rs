//! Plankton, the Synnefo image service (the Glance v1 API); the images
//! themselves are kept in the registry of [`super::images`].
//!
//! Request headers are read raw rather than through `Call::headers`: Plankton
//! percent-decodes exactly the name, the location and the properties, once.

use super::fault::{Fault, Reply};
use super::images::{self, is_image_id, pithos_url, Image, Properties, AVAILABLE};
use super::pithos::model;
use super::wire::{now, plain_date, quote_path, Query, Reply as Out};
use super::{json_request, Call, Cloud};
use axum::http::{HeaderMap, Method, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

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

/// Python's `quote` for header names: it keeps `_.-` (and `/`, which no
/// header name may hold, so it is escaped here).
const QUOTE_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-');

impl Image {
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
            ("name", quote_path(&self.name)),
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
            ("description", quote_path(&self.description)),
        ];
        for (name, value) in fields {
            out.add_header(&format!("x-image-meta-{name}"), value);
        }
        for (key, value) in &self.properties {
            let name = format!("x-image-meta-property-{}", key.replace('_', "-"));
            let name = utf8_percent_encode(&name, QUOTE_NAME).to_string();
            out.add_header(&name, quote_path(value));
        }
        out
    }
}

fn unquote(s: &str) -> Result<String, Fault> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Fault::bad_request("Could not decode request as UTF-8 string"))
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
            images::check_meta_value(name)?;
        }
        for (k, v) in &self.properties {
            images::check_property(k, v)?;
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
        ["images", id] if is_image_id(id) => match method {
            // Plankton never serves image data: clients download it from Pithos.
            Method::GET => Ok(Out::new(StatusCode::NOT_IMPLEMENTED).empty()),
            Method::HEAD => meta(cloud, &user.uuid, id).await,
            Method::PUT => update(cloud, &user.uuid, id, &call.raw_headers).await,
            Method::DELETE => delete(cloud, &user.uuid, id).await,
            _ => Err(Fault::not_allowed("GET, HEAD, PUT, DELETE")),
        },
        ["images", id, "members"] if is_image_id(id) => match method {
            Method::GET => list_members(cloud, &user.uuid, id).await,
            Method::PUT => replace_members(cloud, &user.uuid, id, call).await,
            _ => Err(Fault::not_allowed("GET, PUT")),
        },
        ["images", id, "members", member] if is_image_id(id) && is_member(member) => match method {
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

/// Member names as Plankton's URLs match them (`[\w@._-]+`).
fn is_member(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_@.-".contains(c))
}

async fn list(cloud: &Cloud, user: &str, query: &Query, detail: bool) -> Reply {
    let filters = ImageFilters::from_query(query)?;
    let order = ImageOrder::from_query(query)?;
    let user = user.to_string();
    let mut images = cloud.db.read(move |c| images::visible_images(c, &user)).await?;
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
            let mut properties = images::stored_properties(tx, &v.uuid)?.unwrap_or_default();
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
            images::save_image(tx, &image, c.id, &v.name)?;
            images::replace_members(tx, &image.id, &[])?;
            Ok(image)
        })
        .await?;
    Ok(image.headers().empty())
}

async fn meta(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    let image = cloud.db.read(move |c| images::visible_image(c, &user, &id)).await?;
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
            let mut image = images::owned_image(tx, &user, &id)?;
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
            images::update_image(tx, &image)?;
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
            images::owned_image(tx, &user, &id)?;
            images::unregister(tx, &id)
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}

async fn list_members(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    let members = cloud
        .db
        .read(move |c| {
            images::visible_image(c, &user, &id)?;
            images::members(c, &id)
        })
        .await?;
    let list: Vec<Value> = members.iter().map(|m| json!({"member_id": m, "can_share": false})).collect();
    Ok(Out::new(StatusCode::OK).json(&json!({ "members": list })))
}

async fn replace_members(cloud: &Cloud, user: &str, id: &str, call: Call) -> Reply {
    let body = json_request(&call.headers, call.body).await?;
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
            images::owned_image(tx, &user, &id)?;
            images::replace_members(tx, &id, &new_members)
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
            images::owned_image(tx, &user, &id)?;
            if add {
                images::add_member(tx, &id, &member)
            } else {
                images::remove_member(tx, &id, &member)
            }
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}

/// Plankton's reading of this call: the private images of `member` that the
/// caller can see (kamaki: "images shared by member").
async fn shared_images(cloud: &Cloud, user: &str, member: &str) -> Reply {
    let (user, member) = (user.to_string(), member.to_string());
    let images = cloud.db.read(move |c| images::visible_images(c, &user)).await?;
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
    fn locations_split() {
        let (a, c, o) = split_location("pithos://acct/images/dir/my%20disk.img").unwrap();
        assert_eq!((a.as_str(), c.as_str(), o.as_str()), ("acct", "images", "dir/my disk.img"));
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
        assert_eq!(i.header_status(), AVAILABLE);
        i.status = "queued".into();
        assert_eq!(i.header_status(), "UNKNOWN");
    }
}
