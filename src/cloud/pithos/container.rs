//! Container level: `HEAD|GET|PUT|POST|DELETE {PITHOS}/{acct}/{cont}`,
//! including block upload (`POST` with `application/octet-stream`).

use super::access::{Perm, Resolver};
use super::listing::{self, Entry, ListParams, MetaFilter};
use super::model::{self, Container};
use super::refs;
use super::{apply_meta, check_modified, data, last_modified, new_container, put_meta, request_meta};
use crate::blocks;
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::sql::Tx;
use crate::cloud::wire::{epoch_string, http_date, iso_date, now, Reply as Out};
use crate::cloud::{Call, Cloud};
use axum::http::{Method, StatusCode};
use serde::Serialize;
use std::collections::BTreeMap;

pub async fn handle(cloud: &Cloud, call: Call, account: &str, container: &str) -> Reply {
    match call.method {
        Method::HEAD | Method::GET => read(cloud, call, account, container).await,
        Method::PUT => create(cloud, call, account, container).await,
        Method::POST => update(cloud, call, account, container).await,
        Method::DELETE => delete(cloud, call, account, container).await,
        _ => Err(Fault::not_allowed("HEAD, GET, PUT, POST, DELETE")),
    }
}

pub fn not_found() -> Fault {
    Fault::not_found("Container does not exist")
}

/// A container as `user` may learn of it: another account's missing container
/// is 403, as one with nothing shared is, so that names cannot be probed.
pub fn visible_container(conn: &Tx, account: &str, name: &str, user: &str) -> Result<Container, Fault> {
    match model::container(conn, account, name)? {
        Some(c) => Ok(c),
        None if account != user => Err(Fault::forbidden("Not allowed")),
        None => Err(not_found()),
    }
}

/// Policies from `X-Container-Policy-*`: (quota, versioning, project), each
/// `Some("")` when sent empty (revert to default).
struct Policy {
    quota: Option<String>,
    versioning: Option<String>,
    project: Option<String>,
}

impl Policy {
    fn from_call(call: &Call) -> Result<Policy, Fault> {
        let p = Policy {
            quota: call.headers.get("x-container-policy-quota").map(|s| s.trim().to_string()),
            versioning: call.headers.get("x-container-policy-versioning").map(|s| s.trim().to_lowercase()),
            project: call.headers.get("x-container-policy-project").map(|s| s.trim().to_string()),
        };
        if let Some(q) = p.quota.as_deref().filter(|q| !q.is_empty()) {
            // Kept as SQLite's signed 64-bit integer: anything larger would wrap.
            if q.parse::<u64>().ok().filter(|q| *q <= i64::MAX as u64).is_none() {
                return Err(Fault::bad_request(format!(
                    "Invalid quota policy: a non-negative integer of bytes, at most {}",
                    i64::MAX
                )));
            }
        }
        if let Some(v) = p.versioning.as_deref().filter(|v| !v.is_empty()) {
            if v != "auto" && v != "none" {
                return Err(Fault::bad_request("Invalid versioning policy: auto or none"));
            }
        }
        Ok(p)
    }

    fn any(&self) -> bool {
        self.quota.is_some() || self.versioning.is_some() || self.project.is_some()
    }

    /// Applies to `c`; without `update`, keys not sent revert to defaults.
    fn apply(&self, c: &mut Container, update: bool) {
        let quota = self.quota.as_deref().and_then(|q| q.parse::<u64>().ok());
        match (&self.quota, update) {
            (Some(_), _) => c.quota = quota.unwrap_or(0),
            (None, false) => c.quota = 0,
            _ => {}
        }
        match (&self.versioning, update) {
            (Some(v), _) if !v.is_empty() => c.versioning = v.clone(),
            (Some(_), _) | (None, false) => c.versioning = "auto".into(),
            _ => {}
        }
        match (&self.project, update) {
            (Some(p), _) if !p.is_empty() => c.project = p.clone(),
            (Some(_), _) | (None, false) => c.project = c.account.clone(),
            _ => {}
        }
    }
}

fn container_headers(
    cloud: &Cloud,
    out: &mut Out,
    c: &Container,
    owner: bool,
    object_meta: &[String],
    until: Option<i64>,
) {
    last_modified(out, c.modified);
    out.add_header("X-Container-Block-Size", cloud.blocks.block_size.to_string());
    out.add_header("X-Container-Block-Hash", cloud.blocks.algorithm.name());
    out.add_quoted("X-Container-Object-Meta", &object_meta.join(","));
    if !owner {
        return;
    }
    out.add_header("X-Container-Object-Count", c.count.to_string());
    out.add_header("X-Container-Bytes-Used", c.bytes.to_string());
    out.add_header("X-Container-Policy-Quota", c.quota.to_string());
    out.add_header("X-Container-Policy-Versioning", &c.versioning);
    out.add_quoted("X-Container-Policy-Project", &c.project);
    if let Some(u) = until {
        out.add_header("X-Container-Until-Timestamp", http_date(u as f64));
    }
    put_meta(out, &c.meta);
}

async fn read(cloud: &Cloud, call: Call, account: &str, container: &str) -> Reply {
    let user = call.user()?;
    let owner = user.uuid == account;
    let until = call.query.int("until");
    if !owner && (until.is_some() || call.query.has("public")) {
        return Err(Fault::forbidden("Not allowed"));
    }
    let q = &call.query;
    let path = q.get("path").map(str::to_string);
    let params = ListParams {
        prefix: path.clone().or_else(|| q.get("prefix").map(str::to_string)).unwrap_or_default(),
        delimiter: if path.is_some() { Some("/".into()) } else { q.value("delimiter").map(str::to_string) },
        path_mode: path.is_some(),
        marker: q.get("marker").unwrap_or("").to_string(),
        limit: q
            .int("limit")
            .filter(|l| *l > 0)
            .map_or(super::account::LISTING_LIMIT, |l| (l as usize).min(super::account::LISTING_LIMIT)),
        meta: q.value("meta").map(MetaFilter::parse_list).unwrap_or_default(),
        shared: q.has("shared"),
        public: q.has("public"),
        until: until.map(|u| u as f64),
    };
    let head = call.is_head();
    let (acct, cont, uuid) = (account.to_string(), container.to_string(), user.uuid.clone());
    let (c, object_meta, entries) = cloud
        .db
        .read(move |conn| {
            let c = visible_container(conn, &acct, &cont, &uuid)?;
            let visible = if owner {
                None
            } else {
                let map = Resolver::new(conn, &uuid).container(&c)?;
                if !map.reads_anything() {
                    return Err(Fault::forbidden("Not allowed"));
                }
                Some(map)
            };
            // A scan of every object's metadata: only HEAD, where kamaki reads it.
            let object_meta = if head { listing::object_meta_keys(conn, &c, visible.as_ref())? } else { Vec::new() };
            let entries = if head { Vec::new() } else { listing::list(conn, &c, &params, visible.as_ref())? };
            Ok((c, object_meta, entries))
        })
        .await?;
    check_modified(&call.headers, c.modified)?;
    let status = if head { StatusCode::NO_CONTENT } else { StatusCode::OK };
    let mut out = Out::new(status);
    container_headers(cloud, &mut out, &c, owner, &object_meta, until);
    if head {
        return Ok(out.empty());
    }
    if call.query.get("format") == Some("json") {
        let items: Vec<EntryJson> = entries.iter().map(|e| entry_json(cloud, e, owner, until.is_some())).collect();
        return Ok(out.json_bytes(serde_json::to_vec(&items).unwrap_or_default()));
    }
    if entries.is_empty() {
        let mut empty = Out::new(StatusCode::NO_CONTENT);
        container_headers(cloud, &mut empty, &c, owner, &object_meta, until);
        return Ok(empty.empty());
    }
    let mut text = String::new();
    for e in &entries {
        text.push_str(e.name());
        text.push('\n');
    }
    Ok(out.text(text))
}

/// A listing entry as JSON: system fields, plus user metadata as
/// `x_object_meta_*` so a listing answers what a per-object HEAD would.
/// Serialised straight from borrowed fields: listings of 10,000 are hot.
#[derive(Serialize)]
#[serde(untagged)]
enum EntryJson<'a> {
    Subdir { subdir: &'a str },
    Object(Box<ObjectJson<'a>>),
}

#[derive(Serialize)]
struct ObjectJson<'a> {
    name: &'a str,
    bytes: u64,
    content_type: &'a str,
    hash: &'a str,
    x_object_hash: &'a str,
    x_object_uuid: &'a str,
    x_object_version: i64,
    x_object_version_timestamp: String,
    x_object_modified_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_object_sharing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_object_public: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_object_allowed_to: Option<&'static str>,
    #[serde(flatten)]
    meta: BTreeMap<String, &'a str>,
}

fn entry_json<'a>(cloud: &Cloud, e: &'a Entry, owner: bool, until: bool) -> EntryJson<'a> {
    match e {
        Entry::Subdir(s) => EntryJson::Subdir { subdir: s },
        Entry::Object { version: v, sharing, public, allowed } => EntryJson::Object(Box::new(ObjectJson {
            name: &v.name,
            bytes: v.bytes,
            content_type: &v.content_type,
            hash: &v.checksum,
            x_object_hash: &v.etag,
            x_object_uuid: &v.uuid,
            x_object_version: v.serial,
            x_object_version_timestamp: epoch_string(v.mtime),
            x_object_modified_by: &v.modified_by,
            last_modified: (!until).then(|| iso_date(v.mtime)),
            x_object_sharing: sharing.as_ref().filter(|_| !until).map(|s| s.format()),
            x_object_public: public.as_ref().filter(|_| owner && !until).map(|t| cloud.public_url(t)),
            x_object_allowed_to: allowed.filter(|_| !until).map(|p| if p >= Perm::Write { "write" } else { "read" }),
            meta: v.meta.iter().map(|(k, val)| (k.to_lowercase().replace('-', "_"), val.as_str())).collect(),
        })),
    }
}

async fn create(cloud: &Cloud, call: Call, account: &str, container: &str) -> Reply {
    let user = call.user()?;
    if user.uuid != account {
        return Err(Fault::forbidden("Not allowed"));
    }
    let policy = Policy::from_call(&call)?;
    let meta = request_meta(&call.headers, "Container")?;
    let (acct, cont) = (account.to_string(), container.to_string());
    let created = cloud
        .db
        .write(move |tx| {
            let t = now();
            match model::container(tx, &acct, &cont)? {
                Some(mut c) => {
                    policy.apply(&mut c, true);
                    c.meta = apply_meta(&c.meta, meta, true, |_| true)?;
                    model::save_container(tx, &c, t)?;
                    Ok(false)
                }
                None => {
                    let mut c = new_container(&acct, &cont, t);
                    policy.apply(&mut c, false);
                    c.meta = apply_meta(&c.meta, meta, true, |_| true)?;
                    model::create_container(tx, &c)?;
                    Ok(true)
                }
            }
        })
        .await?;
    Ok(Out::new(if created { StatusCode::CREATED } else { StatusCode::ACCEPTED }).empty())
}

async fn update(cloud: &Cloud, call: Call, account: &str, container: &str) -> Reply {
    let user = call.user()?;
    let owner = user.uuid == account;
    let is_upload = call.headers.get("content-type").map(|t| t.trim()) == Some("application/octet-stream")
        && (call.headers.get("content-length").is_some_and(|l| l.trim() != "0")
            || call.headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")));
    let policy = Policy::from_call(&call)?;
    let meta = request_meta(&call.headers, "Container")?;
    let update = call.query.has("update");
    let (acct, cont, uuid) = (account.to_string(), container.to_string(), user.uuid.clone());
    let changes_meta = owner && (policy.any() || !meta.is_empty() || !update);
    if !owner && !is_upload {
        return Err(Fault::forbidden("Not allowed"));
    }
    let account_quota = cloud.quota;
    let (cid, room) = cloud
        .db
        .write(move |tx| {
            let mut c = model::container(tx, &acct, &cont)?.ok_or_else(not_found)?;
            if !owner {
                // Block upload into someone else's container needs write access to something in it.
                let paths = Resolver::new(tx, &uuid).shared_paths(&c)?;
                if !paths.iter().any(|(_, p)| *p >= Perm::Write) {
                    return Err(Fault::forbidden("Not allowed"));
                }
            }
            if changes_meta {
                if policy.any() {
                    policy.apply(&mut c, update);
                }
                c.meta = apply_meta(&c.meta, meta, update, |_| false)?;
                model::save_container(tx, &c, now())?;
            }
            let room = if is_upload { model::quota_room(tx, &c, 0, account_quota, true)? } else { 0 };
            Ok((c.id, room))
        })
        .await?;
    if !is_upload {
        return Ok(Out::new(StatusCode::ACCEPTED).empty());
    }
    upload_blocks(cloud, call, &user.uuid, cid, room).await
}

/// Blocks in one POST: kamaki and the mount send one at a time.
pub const MAX_BLOCKS_PER_POST: u64 = 16;

/// A block upload: the body is cut into blocks and stored. Until an object
/// of the uploader lists them (or their grace period ends) they count
/// against the container's and the account's quota as pending, so a stream
/// of uploads stops at the quota like any other write (413), and what a
/// refused upload stored goes back to garbage collection.
async fn upload_blocks(cloud: &Cloud, call: Call, uploader: &str, cid: i64, room: u64) -> Reply {
    let bs = cloud.blocks.block_size;
    let largest = MAX_BLOCKS_PER_POST.saturating_mul(bs);
    let over_quota = || Fault::quota("uploaded blocks not yet in an object would pass the quota");
    let budget = data::Budget::new(room, over_quota())
        .min(data::Budget::new(largest, Fault::too_large(format!("A block upload is at most {largest} bytes"))));
    let pins = cloud.blocks.pinned();
    let ingested = data::ingest(&cloud.blocks, &pins, call.body, &budget, false).await?;
    let (size, hashes) = (ingested.size, ingested.hashmap);
    let (who, list) = (uploader.to_string(), hashes.clone());
    let account_quota = cloud.quota;
    cloud
        .db
        .write(move |tx| {
            let c = model::container_by_id(tx, cid)?.ok_or_else(not_found)?;
            // Exact now, under the writer: concurrent uploads cannot pass it together.
            if size > model::quota_room(tx, &c, 0, account_quota, true)? {
                return Err(over_quota());
            }
            let t = now();
            let mut left = size;
            for h in &list {
                let len = left.min(bs);
                left -= len;
                refs::record_upload(tx, &who, cid, h, len, t)?;
            }
            Ok(())
        })
        .await?;
    pins.keep();
    Ok(Out::new(StatusCode::ACCEPTED).json_bytes(blocks::hash_list_json(&hashes)))
}

async fn delete(cloud: &Cloud, call: Call, account: &str, container: &str) -> Reply {
    let user = call.user()?;
    if user.uuid != account {
        return Err(Fault::forbidden("Not allowed"));
    }
    let until = call.query.int("until");
    let delimiter = call.query.value("delimiter").is_some();
    if delimiter && until.is_none() {
        super::tree::delete(cloud, account, container, &user.uuid, None, String::new()).await?;
        return Ok(Out::new(StatusCode::NO_CONTENT).empty());
    }
    let (acct, cont) = (account.to_string(), container.to_string());
    cloud
        .db
        .write(move |tx| {
            let c = model::container(tx, &acct, &cont)?.ok_or_else(not_found)?;
            let t = now();
            if let Some(u) = until {
                return model::purge_history(tx, c.id, None, u as f64);
            }
            if c.count > 0 {
                return Err(Fault::conflict("Container is not empty"));
            }
            model::delete_container(tx, &c, t)
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}
