//! Object level: `HEAD|GET|PUT|COPY|MOVE|POST|DELETE {PITHOS}/{acct}/{cont}/{obj}`.

use super::access::{check_history, check_type_change, require, Grant, Perm, Resolver};
use super::data::{self, Budget, Layout, Piece};
use super::model::{self, Container, Meta, NewVersion, Sharing, Version};
use super::refs;
use super::tree::{self, apply_sharing_public, CopySpec};
use super::{apply_meta, check_object_preconditions, last_modified, put_meta, request_meta, MAX_UPLOAD};
use crate::blocks::{self, BlockHash, HashmapForm, HashmapJson, HashmapJsonError, MAX_BLOCKS_PER_OBJECT};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::sql::Tx;
use crate::cloud::wire::{http_date, now, Headers, Reply as Out};
use crate::cloud::{Call, Cloud};
use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn handle(cloud: Arc<Cloud>, call: Call, account: &str, container: &str, name: &str) -> Reply {
    let t = Target { account: account.to_string(), container: container.to_string(), name: name.to_string() };
    if let Some(user) = call.user.as_ref().filter(|u| u.uuid != account) {
        // Another account's missing container answers as one with nothing shared.
        let (a, c, u) = (t.account.clone(), t.container.clone(), user.uuid.clone());
        cloud.db.read(move |conn| super::container::visible_container(conn, &a, &c, &u).map(drop)).await?;
    }
    match call.method.as_str() {
        "HEAD" | "GET" => read(&cloud, call, t).await,
        "PUT" => put(&cloud, call, t).await,
        "COPY" => copy_method(&cloud, call, t, false).await,
        "MOVE" => copy_method(&cloud, call, t, true).await,
        "POST" => post(&cloud, call, t).await,
        "DELETE" => delete(&cloud, call, t).await,
        _ => Err(Fault::not_allowed("HEAD, GET, PUT, COPY, MOVE, POST, DELETE")),
    }
}

#[derive(Debug, Clone)]
struct Target {
    account: String,
    container: String,
    name: String,
}

fn object_not_found() -> Fault {
    Fault::not_found("Object does not exist")
}

fn container_of(conn: &Tx, account: &str, container: &str) -> Result<Container, Fault> {
    model::container(conn, account, container)?.ok_or_else(super::container::not_found)
}

// ---------- reading ----------

struct Found {
    container: Container,
    version: Version,
    /// Modification time of the object (its live version), whatever version was asked.
    modified: f64,
    hashmap: Vec<BlockHash>,
    grant: Grant,
    sharing: Option<Sharing>,
    public: Option<String>,
    /// For manifests: the parts, in order.
    parts: Option<Vec<Part>>,
}

/// Headers every object reply carries (2.8).
fn object_headers(cloud: &Cloud, out: &mut Out, f: &Found, explicit_version: bool) {
    let v = &f.version;
    out.add_header("ETag", cloud.etags.of(v));
    out.add_quoted("Content-Type", &v.content_type);
    last_modified(out, f.modified);
    out.add_header("X-Object-Hash", &v.etag);
    out.add_header("X-Object-UUID", &v.uuid);
    out.add_header("X-Object-Version", v.serial.to_string());
    out.add_header("X-Object-Version-Timestamp", http_date(v.mtime));
    out.add_quoted("X-Object-Modified-By", &v.modified_by);
    put_meta(out, &v.meta);
    if explicit_version {
        return;
    }
    if let Some(s) = &f.sharing {
        out.add_quoted("X-Object-Sharing", &s.format());
    }
    if let Some(by) = &f.grant.shared_by {
        out.add_quoted("X-Object-Shared-By", by);
    }
    match f.grant.perm {
        Perm::Owner => {
            if let Some(t) = &f.public {
                out.add_quoted("X-Object-Public", &cloud.public_url(t));
            }
        }
        Perm::Write => out.add_header("X-Object-Allowed-To", "write"),
        Perm::Read => out.add_header("X-Object-Allowed-To", "read"),
    }
}

async fn read(cloud: &Arc<Cloud>, call: Call, t: Target) -> Reply {
    let user = call.user()?;
    let version_param = call.query.value("version").map(str::to_string);
    let want_hashmap = call.query.has("hashmap");
    if version_param.as_deref() == Some("list") {
        let uuid = user.uuid.clone();
        let versions = cloud
            .db
            .read(move |conn| {
                let c = container_of(conn, &t.account, &t.container)?;
                let grant = require(Resolver::new(conn, &uuid).object(&c, &t.name)?, Perm::Read)?;
                let list = match grant.perm {
                    Perm::Owner => model::version_list(conn, c.id, &t.name)?,
                    // A grantee sees the history of the object, not of its name.
                    _ => match model::current(conn, c.id, &t.name)? {
                        Some(live) => model::version_list_of(conn, c.id, &t.name, &live.uuid)?,
                        None => Vec::new(),
                    },
                };
                if list.is_empty() {
                    return Err(object_not_found());
                }
                Ok(list)
            })
            .await?;
        let items: Vec<Value> =
            versions.iter().map(|(s, m)| json!([s, crate::cloud::wire::epoch_string(*m)])).collect();
        return Ok(Out::new(StatusCode::OK).json(&json!({ "versions": items })));
    }
    let explicit = version_param.is_some();
    let uuid = user.uuid.clone();
    let mut found = cloud
        .db
        .read(move |conn| {
            let c = container_of(conn, &t.account, &t.container)?;
            let grant = require(Resolver::new(conn, &uuid).object(&c, &t.name)?, Perm::Read)?;
            let current = model::current(conn, c.id, &t.name)?;
            let version = match &version_param {
                Some(v) => {
                    let serial =
                        v.parse::<i64>().map_err(|_| Fault::bad_request("Invalid version: an integer or 'list'"))?;
                    let v = model::version(conn, c.id, &t.name, serial)?
                        .ok_or_else(|| Fault::not_found("Version does not exist"))?;
                    check_history(grant.perm, current.as_ref(), &v)?;
                    v
                }
                None => current.clone().ok_or_else(object_not_found)?,
            };
            let modified = current.as_ref().map_or(version.mtime, |c| c.mtime);
            let hashmap = model::hashmap(conn, version.serial)?;
            let sharing = if explicit { None } else { model::sharing(conn, c.id, &t.name)? };
            let public =
                if explicit || grant.perm != Perm::Owner { None } else { model::public_token(conn, c.id, &t.name)? };
            let parts = match version.meta.get("X-Object-Manifest") {
                Some(m) if !want_hashmap => Some(manifest_parts(conn, &c.account, m, &uuid)?),
                _ => None,
            };
            Ok(Found { container: c, version, modified, hashmap, grant, sharing, public, parts })
        })
        .await?;
    if let (Some(parts), true) = (&found.parts, cloud.etags.md5()) {
        // As Swift's dynamic large objects (and Synnefo): the MD5 of the
        // parts' ETags, concatenated in order.
        use md5::Digest;
        let mut md5 = md5::Md5::new();
        for p in parts {
            md5.update(p.checksum.as_bytes());
        }
        found.version.checksum = hex::encode(md5.finalize());
    }
    check_object_preconditions(&call.headers, Some(&found.version), true, cloud.etags)?;
    let mut out = Out::new(StatusCode::OK);
    object_headers(cloud, &mut out, &found, explicit);
    if want_hashmap {
        let (bs, algorithm) = (cloud.blocks.block_size, cloud.blocks.algorithm);
        return Ok(out.json_bytes(HashmapJson::reply(bs, algorithm, found.version.bytes, &found.hashmap).to_json()));
    }
    let _ = &found.container;
    let layout = match &found.parts {
        Some(parts) => {
            let mut l = Layout::default();
            for p in parts {
                l.append(&p.hashmap, p.bytes, cloud.blocks.block_size);
            }
            l
        }
        None => Layout::of_object(&found.hashmap, found.version.bytes, cloud.blocks.block_size),
    };
    data_reply(cloud, &call, out, &found.version, found.modified, layout)
}

/// One part of a manifest object.
struct Part {
    hashmap: Vec<BlockHash>,
    bytes: u64,
    /// Its stored MD5 (empty when none was computed).
    checksum: String,
}

/// The parts of a manifest object: every object of `cont` whose name starts
/// with `prefix` (`X-Object-Manifest: cont/prefix`), in name order.
fn manifest_parts(conn: &Tx, account: &str, manifest: &str, user: &str) -> Result<Vec<Part>, Fault> {
    let (cont, prefix) = manifest.trim_start_matches('/').split_once('/').unwrap_or((manifest, ""));
    let c = container_of(conn, account, cont)?;
    let mut resolver = Resolver::new(conn, user);
    let found = model::live_under(conn, c.id, prefix, MAX_MANIFEST_PARTS + 1)?;
    if found.len() > MAX_MANIFEST_PARTS {
        return Err(Fault::bad_request(format!("The manifest names more than {MAX_MANIFEST_PARTS} parts")));
    }
    let mut parts = Vec::with_capacity(found.len());
    let mut blocks: u64 = 0;
    for v in found {
        if resolver.object(&c, &v.name)?.is_none() {
            return Err(Fault::forbidden("Not allowed"));
        }
        let hashmap = model::hashmap(conn, v.serial)?;
        // The parts are served as one object: as large as one may be.
        blocks = blocks.saturating_add(hashmap.len() as u64);
        if blocks > MAX_BLOCKS_PER_OBJECT {
            return Err(Fault::bad_request(format!(
                "The manifest's parts hold more than {MAX_BLOCKS_PER_OBJECT} blocks together"
            )));
        }
        parts.push(Part { hashmap, bytes: v.bytes, checksum: v.checksum });
    }
    Ok(parts)
}

/// Most parts one manifest (`X-Object-Manifest`) object may gather, so that a
/// GET of it holds a bounded layout in memory.
pub const MAX_MANIFEST_PARTS: usize = 10_000;

/// A data reply: whole object, one range (206) or several (multipart 206).
pub fn data_reply(cloud: &Cloud, call: &Call, mut out: Out, v: &Version, modified: f64, layout: Layout) -> Reply {
    let size = layout.size;
    let disposition_type = call.query.value("disposition-type").filter(|d| *d == "inline" || *d == "attachment");
    match (v.meta.get("Content-Disposition"), disposition_type) {
        (Some(d), None) => out.add_quoted("Content-Disposition", d),
        (_, d) => {
            let file = v.name.rsplit('/').next().unwrap_or(&v.name);
            out.add_quoted("Content-Disposition", &format!("{}; filename=\"{}\"", d.unwrap_or("inline"), file))
        }
    }
    let mut ranges = match call.headers.get("range") {
        Some(r) => data::parse_ranges(r, size)?,
        None => None,
    };
    if let (Some(ir), Some(_)) = (call.headers.get("if-range"), &ranges) {
        let still_valid = match crate::cloud::wire::parse_http_date(ir) {
            Some(d) => d == modified.floor(),
            None => cloud.etags.matches(v, &ir.trim().trim_matches('"').to_ascii_lowercase()),
        };
        if !still_valid {
            ranges = None;
        }
    }
    out.add_header("Accept-Ranges", "bytes");
    let head = call.is_head();
    match ranges {
        None => {
            out.add_header("Content-Length", size.to_string());
            if head {
                return Ok(out.empty());
            }
            Ok(out.body(data::stream(cloud.blocks.clone(), layout, vec![Piece::Range(0, size)])))
        }
        Some(r) if r.len() == 1 => {
            let (a, b) = r[0];
            let mut out = out.status(StatusCode::PARTIAL_CONTENT);
            out.add_quoted("Content-Range", &format!("bytes {a}-{b}/{size}"));
            out.add_header("Content-Length", (b - a + 1).to_string());
            if head {
                return Ok(out.empty());
            }
            Ok(out.body(data::stream(cloud.blocks.clone(), layout, vec![Piece::Range(a, b + 1)])))
        }
        Some(r) => {
            let boundary = hex::encode(rand::random::<[u8; 16]>());
            let mut out = out.status(StatusCode::PARTIAL_CONTENT);
            out.add_header("Content-Type", format!("multipart/byteranges; boundary={boundary}"));
            let mut pieces = Vec::new();
            for (i, (a, b)) in r.iter().enumerate() {
                let lead = if i == 0 { "" } else { "\r\n" };
                pieces.push(Piece::Literal(Bytes::from(format!(
                    "{lead}--{boundary}\r\nContent-Range: bytes {a}-{b}/{size}\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                ))));
                pieces.push(Piece::Range(*a, b + 1));
            }
            pieces.push(Piece::Literal(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
            if head {
                return Ok(out.empty());
            }
            Ok(out.body(data::stream(cloud.blocks.clone(), layout, pieces)))
        }
    }
}

// ---------- request headers shared by writes ----------

/// User metadata plus the per-version headers Pithos keeps with it.
fn object_meta(headers: &Headers) -> Result<Vec<(String, String)>, Fault> {
    let mut meta = request_meta(headers, "Object")?;
    for h in ["Content-Encoding", "Content-Disposition", "X-Object-Manifest"] {
        if let Some(v) = headers.get(h) {
            meta.push((h.to_string(), v.trim().to_string()));
        }
    }
    Ok(meta)
}

fn sharing_header(headers: &Headers) -> Result<Option<Sharing>, Fault> {
    headers.get("x-object-sharing").map(Sharing::parse).transpose()
}

fn public_header(headers: &Headers) -> Result<Option<bool>, Fault> {
    match headers.get("x-object-public") {
        None => Ok(None),
        Some(v) => match v.replace(' ', "").to_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" | "" => Ok(Some(false)),
            _ => Err(Fault::bad_request("Invalid X-Object-Public header: true or false")),
        },
    }
}

fn content_length(headers: &Headers) -> Result<Option<u64>, Fault> {
    if headers.get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        return Ok(None);
    }
    match headers.get("content-length") {
        // Without Content-Length or chunked encoding an HTTP/1.1 request has no body.
        None => Ok(Some(0)),
        Some(l) => l.trim().parse::<u64>().map(Some).map_err(|_| Fault::bad_request("Invalid Content-Length header")),
    }
}

fn created(cloud: &Cloud, v: &Version) -> Reply {
    Ok(Out::new(StatusCode::CREATED)
        .header("ETag", cloud.etags.of(v))
        .header("X-Object-Version", v.serial.to_string())
        .empty())
}

// ---------- PUT ----------

async fn put(cloud: &Arc<Cloud>, call: Call, t: Target) -> Reply {
    let user = call.user()?;
    let copy_from = call.headers.get("x-copy-from").map(str::to_string);
    let move_from = call.headers.get("x-move-from").map(str::to_string);
    if let Some(src) = move_from.or(copy_from.clone()) {
        content_length(&call.headers)?;
        let (src_container, src_name) = parse_source(&src)?;
        let spec = CopySpec {
            user: user.uuid.clone(),
            src_account: call.headers.get("x-source-account").map_or(user.uuid.clone(), str::to_string),
            src_container,
            src_name,
            src_version: source_version(&call.headers, copy_from.is_some())?,
            dst_account: t.account,
            dst_container: t.container,
            dst_name: t.name,
            is_move: copy_from.is_none(),
            delimiter: call.query.value("delimiter").map(str::to_string),
            content_type: call.headers.get("content-type").map(str::to_string),
            meta: object_meta(&call.headers)?,
            sharing: sharing_header(&call.headers)?,
            public: public_header(&call.headers)?,
            check_destination: true,
            etags: cloud.etags,
        };
        let v = tree::copy(cloud, spec, call.headers).await?;
        return created(cloud, &v);
    }
    // Pithos answers 411 to a PUT without Content-Type; python-swiftclient
    // sends none, and Swift takes `application/octet-stream` then. MD5 mode
    // exists for Swift clients, so there it does the same.
    let content_type = match call.headers.get("content-type") {
        Some(ct) => ct.to_string(),
        None if cloud.etags.md5() => "application/octet-stream".to_string(),
        None => return Err(Fault::length_required("Missing Content-Type header")),
    };
    let declared = content_length(&call.headers)?;
    let bs = cloud.blocks.block_size;
    let largest = MAX_UPLOAD.min(max_object_size(bs));
    if declared.is_some_and(|n| n > largest) {
        return Err(Fault::too_large(format!("Uploads are at most {largest} bytes; use the hashmap protocol")));
    }
    let meta = object_meta(&call.headers)?;
    let sharing = sharing_header(&call.headers)?;
    let public = public_header(&call.headers)?;
    let (uuid, headers, quota, etags) = (user.uuid.clone(), call.headers.clone(), cloud.quota, cloud.etags);
    let t2 = t.clone();
    let hashmap_upload = call.query.has("hashmap");
    let (ct, sharing_asked) = (content_type.clone(), sharing.clone());
    // Permission, preconditions and quota before reading any data.
    let room = cloud
        .db
        .read(move |conn| {
            let c = container_of(conn, &t2.account, &t2.container)?;
            let grant = require(Resolver::new(conn, &uuid).object(&c, &t2.name)?, Perm::Write)?;
            tree::check_sharing_public(conn, &c, &t2.name, grant.perm, &sharing_asked, public)?;
            let current = model::current(conn, c.id, &t2.name)?;
            check_type_change(grant.perm, current.as_ref(), &ct)?;
            check_object_preconditions(&headers, current.as_ref(), false, etags)?;
            let old = current.map_or(0, |v| v.bytes);
            if let (Some(n), false) = (declared, hashmap_upload) {
                model::check_quota(conn, &c, n as i64 - old as i64, quota)?;
            }
            model::quota_room(conn, &c, old, quota, false)
        })
        .await?;
    if hashmap_upload {
        return put_hashmap(cloud, call, t, content_type, meta, sharing, public).await;
    }
    let etag = call.headers.get("etag").map(|e| e.trim().trim_matches('"').to_ascii_lowercase());
    // Chunked bodies announce no size: the quota is enforced as they stream in.
    let budget = Budget::new(room, Fault::quota("the object would pass the container's or the account's quota"))
        .min(Budget::new(largest, Fault::too_large(format!("Uploads are at most {largest} bytes"))));
    let pins = cloud.blocks.pinned();
    // The MD5 is taken as the body streams in: the bytes are read once.
    let want_md5 = etag.is_some() || cloud.etags.md5();
    let ingested = data::ingest(&cloud.blocks, &pins, call.body, &budget, want_md5).await?;
    if declared.is_some_and(|n| n != ingested.size) {
        return Err(Fault::bad_request("The request body is shorter than its Content-Length"));
    }
    let md5 = ingested.md5.unwrap_or_default();
    if etag.as_ref().is_some_and(|e| *e != md5) {
        return Err(Fault::unprocessable("Object ETag does not match"));
    }
    let (hashmap, size) = (ingested.hashmap, ingested.size);
    let (uuid, headers, quota, etags) = (user.uuid.clone(), call.headers, cloud.quota, cloud.etags);
    let v = cloud
        .db
        .write(move |tx| {
            let c = container_of(tx, &t.account, &t.container)?;
            let grant = require(Resolver::new(tx, &uuid).object(&c, &t.name)?, Perm::Write)?;
            let current = model::current(tx, c.id, &t.name)?;
            check_type_change(grant.perm, current.as_ref(), &content_type)?;
            check_object_preconditions(&headers, current.as_ref(), false, etags)?;
            let new = NewVersion {
                uuid: current.map_or_else(|| uuid::Uuid::new_v4().to_string(), |v| v.uuid),
                bytes: size,
                hashmap,
                content_type,
                checksum: md5,
                meta: apply_meta(&Meta::new(), meta, false, |_| false)?,
                modified_by: uuid.clone(),
            };
            let v = model::put_version(tx, &c, &t.name, new, quota, now())?;
            apply_sharing_public(tx, &c, &t.name, grant.perm, &sharing, public)?;
            Ok(v)
        })
        .await?;
    pins.keep();
    created(cloud, &v)
}

/// The largest object: [`MAX_BLOCKS_PER_OBJECT`] blocks.
fn max_object_size(block_size: u64) -> u64 {
    MAX_BLOCKS_PER_OBJECT.saturating_mul(block_size)
}

/// A hashmap PUT: the object is made of blocks already stored. Blocks the
/// caller may not use (see [`refs::unreadable`]) and blocks the store lacks
/// are answered alike: 409 with their list, so the client uploads them.
async fn put_hashmap(
    cloud: &Arc<Cloud>,
    call: Call,
    t: Target,
    content_type: String,
    meta: Vec<(String, String)>,
    sharing: Option<Sharing>,
    public: Option<bool>,
) -> Reply {
    let user = call.user()?;
    let body = crate::cloud::read_body(call.body, HASHMAP_BODY_LIMIT).await?;
    let (size, hashes) = parse_hashmap_body(&body, cloud.blocks.block_size)?;
    drop(body);
    let hashes = Arc::new(hashes);
    let (uuid, t2, check) = (user.uuid.clone(), t.clone(), hashes.clone());
    let unreadable = cloud
        .db
        .read(move |conn| {
            let c = container_of(conn, &t2.account, &t2.container)?;
            refs::unreadable(conn, &uuid, Some((&c, &t2.name)), &check)
        })
        .await?;
    if !unreadable.is_empty() {
        return Ok(missing_blocks(&unreadable));
    }
    // MD5 mode: the server never saw these bytes in one stream, so it reads
    // them back from the blocks, as Synnefo does (`hashmap_md5`). Every
    // block is known here; one that vanished since is caught by the commit.
    let md5 = if cloud.etags.md5() {
        let (blocks, h) = (cloud.blocks.clone(), hashes.clone());
        match tokio::task::spawn_blocking(move || data::md5_of(&blocks, &h, size))
            .await
            .map_err(|e| Fault::internal(format!("block reader failed: {e}")))?
        {
            Ok(sum) => Some(sum),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        Some(String::new())
    };
    let (uuid, headers, quota, etags) = (user.uuid.clone(), call.headers, cloud.quota, cloud.etags);
    let committed = cloud
        .db
        .write(move |tx| {
            let c = container_of(tx, &t.account, &t.container)?;
            let grant = require(Resolver::new(tx, &uuid).object(&c, &t.name)?, Perm::Write)?;
            let current = model::current(tx, c.id, &t.name)?;
            check_type_change(grant.perm, current.as_ref(), &content_type)?;
            check_object_preconditions(&headers, current.as_ref(), false, etags)?;
            // Decided in the commit's transaction, as garbage collection decides.
            let absent = refs::absent(tx, &hashes)?;
            if !absent.is_empty() {
                return Ok(Err(absent));
            }
            // A block missing while the MD5 was read but stored by now.
            let checksum = md5.ok_or_else(|| Fault::conflict("A block changed during the upload; retry"))?;
            let new = NewVersion {
                uuid: current.map_or_else(|| uuid::Uuid::new_v4().to_string(), |v| v.uuid),
                bytes: size,
                hashmap: hashes.to_vec(),
                content_type,
                checksum,
                meta: apply_meta(&Meta::new(), meta, false, |_| false)?,
                modified_by: uuid.clone(),
            };
            let v = model::put_version(tx, &c, &t.name, new, quota, now())?;
            refs::consume_uploads(tx, &uuid, &hashes)?;
            apply_sharing_public(tx, &c, &t.name, grant.perm, &sharing, public)?;
            Ok(Ok(v))
        })
        .await?;
    match committed {
        Ok(v) => created(cloud, &v),
        Err(absent) => Ok(missing_blocks(&absent)),
    }
}

/// 409 listing the blocks to upload, as Pithos answers.
fn missing_blocks(hashes: &[BlockHash]) -> axum::response::Response {
    Out::new(StatusCode::CONFLICT).json_bytes(blocks::hash_list_json(hashes))
}

/// The largest hashmap body taken.
pub const HASHMAP_BODY_LIMIT: usize = blocks::MAX_HASHMAP_JSON as usize;

/// The body of a hashmap PUT (see [`HashmapJson`]), with the Pithos length
/// rule against this cloud's block size: 400 when it is no hashmap, 413 when
/// it lists more hashes than an object may have.
pub fn parse_hashmap_body(body: &[u8], block_size: u64) -> Result<(u64, Vec<BlockHash>), Fault> {
    let hm = HashmapJson::parse(HashmapForm::Request, body).map_err(|e| match e {
        HashmapJsonError::Syntax(e) => Fault::bad_request(format!("Invalid hashmap JSON: {e}")),
        HashmapJsonError::Invalid(e) => Fault::bad_request(format!("Invalid data formatting: {e}")),
        HashmapJsonError::TooMany(n) => {
            Fault::too_large(format!("A hashmap lists at most {MAX_BLOCKS_PER_OBJECT} hashes, this one {n}"))
        }
    })?;
    blocks::check_hashmap_len(hm.bytes, hm.hashes.len(), block_size).map_err(Fault::bad_request)?;
    Ok((hm.bytes, hm.hashes.into_owned()))
}

// ---------- COPY / MOVE ----------

/// `/<container>/<object>` from X-Copy-From, X-Move-From, Destination, X-Source-Object.
fn parse_source(v: &str) -> Result<(String, String), Fault> {
    let bad = || Fault::bad_request(format!("Invalid source or destination {v:?}: expected /container/object"));
    let rest = v.trim().strip_prefix('/').ok_or_else(bad)?;
    let (c, o) = rest.split_once('/').ok_or_else(bad)?;
    if c.is_empty() || o.is_empty() {
        return Err(bad());
    }
    super::check_container_name(c)?;
    super::check_object_name(o)?;
    Ok((c.to_string(), o.to_string()))
}

/// Swift clients send `Destination: container/object` (rclone's server-side
/// copy, hence its renames); Pithos wants `/container/object` and answers 400
/// otherwise. MD5 mode exists for Swift clients, so there the Swift form is
/// taken too; the default mode stays as strict as Synnefo.
fn swift_destination(cloud: &Cloud, dest: &str) -> String {
    let dest = dest.trim();
    if cloud.etags.md5() && !dest.starts_with('/') {
        format!("/{dest}")
    } else {
        dest.to_string()
    }
}

fn source_version(h: &Headers, allowed: bool) -> Result<Option<i64>, Fault> {
    match h.get("x-source-version") {
        Some(v) if allowed => {
            v.trim().parse::<i64>().map(Some).map_err(|_| Fault::bad_request("Invalid X-Source-Version"))
        }
        _ => Ok(None),
    }
}

async fn copy_method(cloud: &Arc<Cloud>, call: Call, src: Target, is_move: bool) -> Reply {
    let user = call.user()?;
    let dest = call.headers.get("destination").ok_or_else(|| Fault::bad_request("Missing Destination header"))?;
    let (dst_container, dst_name) = parse_source(&swift_destination(cloud, dest))?;
    let content_type =
        if call.query.has("ignore_content_type") { None } else { call.headers.get("content-type").map(str::to_string) };
    let spec = CopySpec {
        user: user.uuid.clone(),
        src_account: src.account.clone(),
        src_container: src.container,
        src_name: src.name,
        src_version: source_version(&call.headers, !is_move)?,
        dst_account: call.headers.get("destination-account").map_or(user.uuid.clone(), str::to_string),
        dst_container,
        dst_name,
        is_move,
        delimiter: call.query.value("delimiter").map(str::to_string),
        content_type,
        meta: object_meta(&call.headers)?,
        sharing: sharing_header(&call.headers)?,
        public: public_header(&call.headers)?,
        check_destination: false,
        etags: cloud.etags,
    };
    let v = tree::copy(cloud, spec, call.headers).await?;
    created(cloud, &v)
}

// ---------- POST ----------

/// `Content-Range` of a data update: (start, end inclusive, total), start None
/// for append (`bytes */*`).
pub type ContentRange = (Option<u64>, Option<u64>, Option<u64>);

pub fn parse_content_range(v: &str, size: u64) -> Result<ContentRange, Fault> {
    let bad = || Fault::range_not_satisfiable(size);
    let spec = v.trim().strip_prefix("bytes").ok_or_else(bad)?.trim();
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse::<u64>().map_err(|_| bad())?),
    };
    if range.trim() == "*" {
        return if total.is_none() { Ok((None, None, None)) } else { Err(bad()) };
    }
    let (a, b) = range.trim().split_once('-').ok_or_else(bad)?;
    let a = a.trim().parse::<u64>().map_err(|_| bad())?;
    let b = match b.trim() {
        "" => None,
        n => Some(n.parse::<u64>().map_err(|_| bad())?),
    };
    if b.is_some_and(|b| a > b) {
        return Err(bad());
    }
    if let Some(tot) = total {
        if a >= tot || b.is_some_and(|b| b >= tot) {
            return Err(bad());
        }
    }
    Ok((Some(a), b, total))
}

async fn post(cloud: &Arc<Cloud>, call: Call, t: Target) -> Reply {
    let user = call.user()?;
    let ctype = call.headers.get("content-type").map(|c| c.trim().to_string());
    if ctype.as_deref().is_some_and(|c| c.starts_with("multipart/form-data")) {
        return Err(Fault::not_implemented("HTML form uploads are not supported; use PUT"));
    }
    let source = call.headers.get("x-source-object").map(str::to_string);
    let data_mode = ctype.as_deref() == Some("application/octet-stream") || source.is_some();
    let update = call.query.has("update");
    let meta = object_meta(&call.headers)?;
    let sharing = sharing_header(&call.headers)?;
    let public = public_header(&call.headers)?;
    if !data_mode {
        let (uuid, headers, quota, etags) = (user.uuid.clone(), call.headers, cloud.quota, cloud.etags);
        let version = cloud
            .db
            .write(move |tx| {
                let c = container_of(tx, &t.account, &t.container)?;
                let grant = require(Resolver::new(tx, &uuid).object(&c, &t.name)?, Perm::Write)?;
                let current = model::current(tx, c.id, &t.name)?.ok_or_else(object_not_found)?;
                check_object_preconditions(&headers, Some(&current), false, etags)?;
                apply_sharing_public(tx, &c, &t.name, grant.perm, &sharing, public)?;
                let new_meta = apply_meta(&current.meta, meta, update, |_| false)?;
                if new_meta == current.meta {
                    return Ok(None);
                }
                let new = NewVersion {
                    uuid: current.uuid.clone(),
                    bytes: current.bytes,
                    hashmap: model::hashmap(tx, current.serial)?,
                    content_type: current.content_type.clone(),
                    checksum: current.checksum.clone(),
                    meta: new_meta,
                    modified_by: uuid.clone(),
                };
                Ok(Some(model::put_version(tx, &c, &t.name, new, quota, now())?))
            })
            .await?;
        let out = Out::new(StatusCode::ACCEPTED);
        return Ok(match version {
            Some(v) => out.header("X-Object-Version", v.serial.to_string()).empty(),
            None => out.empty(),
        });
    }
    partial_update(cloud, call, t, user.uuid.clone(), source, update, meta, sharing, public).await
}

/// Where the bytes of a data update come from.
enum Source {
    Body { stream: axum::body::BodyDataStream, left: Bytes },
    Object { layout: Layout, pos: u64, blocks: Arc<crate::cloud::blockstore::BlockStore> },
}

impl Source {
    /// Up to `n` bytes; fewer only at the end of the source.
    async fn read_up_to(&mut self, n: usize) -> Result<Vec<u8>, Fault> {
        match self {
            Source::Body { stream, left } => {
                let mut out = Vec::with_capacity(n);
                while out.len() < n {
                    if left.is_empty() {
                        match stream.next().await {
                            Some(Ok(b)) => *left = b,
                            Some(Err(e)) => {
                                return Err(Fault::bad_request(format!("The request body could not be read: {e}")))
                            }
                            None => break,
                        }
                    }
                    let take = (n - out.len()).min(left.len());
                    out.extend_from_slice(&left.split_to(take));
                }
                Ok(out)
            }
            Source::Object { layout, pos, blocks } => {
                let end = pos.saturating_add(n as u64).min(layout.size);
                let mut out = Vec::with_capacity((end - *pos) as usize);
                for (hash, off, len) in layout.pieces(*pos, end) {
                    let b = blocks.clone();
                    let data = tokio::task::spawn_blocking(move || b.read_range(&hash, off, len as usize))
                        .await
                        .map_err(|e| Fault::internal(format!("block reader failed: {e}")))??;
                    out.extend_from_slice(&data);
                }
                *pos = end;
                Ok(out)
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn partial_update(
    cloud: &Arc<Cloud>,
    call: Call,
    t: Target,
    uuid: String,
    source: Option<String>,
    update: bool,
    meta: Vec<(String, String)>,
    sharing: Option<Sharing>,
    public: Option<bool>,
) -> Reply {
    let range_header = call.headers.get("content-range").map(str::to_string);
    let truncate_to = match call.headers.get("x-object-bytes") {
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| Fault::bad_request("Invalid X-Object-Bytes: a non-negative integer"))?,
        ),
        None => None,
    };
    let source_account = call.headers.get("x-source-account").map_or(uuid.clone(), str::to_string);
    let source_version = source_version(&call.headers, true)?;
    let declared = if source.is_none() { content_length(&call.headers)? } else { None };
    let (headers, t2, u2, bs) = (call.headers.clone(), t.clone(), uuid.clone(), cloud.blocks.block_size);
    let etags = cloud.etags;
    let account_quota = cloud.quota;
    // Read the object, its hashmap, the source's layout and how much the object may grow.
    let (c, current, hashmap, source_layout, room) = cloud
        .db
        .read(move |conn| {
            let c = container_of(conn, &t2.account, &t2.container)?;
            let mut resolver = Resolver::new(conn, &u2);
            require(resolver.object(&c, &t2.name)?, Perm::Write)?;
            let current = model::current(conn, c.id, &t2.name)?.ok_or_else(object_not_found)?;
            check_object_preconditions(&headers, Some(&current), false, etags)?;
            let hashmap = model::hashmap(conn, current.serial)?;
            let source_layout = match &source {
                None => None,
                Some(s) => {
                    let (sc, so) = parse_source(s)?;
                    let scont = container_of(conn, &source_account, &sc)?;
                    let grant = require(resolver.object(&scont, &so)?, Perm::Read)?;
                    let live = model::current(conn, scont.id, &so)?;
                    let sv = match source_version {
                        Some(serial) => {
                            let v = model::version(conn, scont.id, &so, serial)?
                                .ok_or_else(|| Fault::not_found("Source object does not exist"))?;
                            // A grantee reaches the history of the object, not of its name.
                            check_history(grant.perm, live.as_ref(), &v)?;
                            v
                        }
                        None => live.ok_or_else(|| Fault::not_found("Source object does not exist"))?,
                    };
                    let shm = model::hashmap(conn, sv.serial)?;
                    Some(Layout::of_object(&shm, sv.bytes, bs))
                }
            };
            let room = model::quota_room(conn, &c, 0, account_quota, false)?;
            Ok((c, current, hashmap, source_layout, room))
        })
        .await?;
    let size = current.bytes;
    let range = range_header.ok_or_else(|| Fault::bad_request("Missing Content-Range header"))?;
    let (start, end, total) = parse_content_range(&range, size)?;
    let offset = start.unwrap_or(size);
    if offset > size {
        return Err(Fault::range_not_satisfiable(size));
    }
    if let Some(tot) = total {
        if tot != size || end.is_some_and(|e| e >= size) {
            return Err(Fault::range_not_satisfiable(size));
        }
    }
    // Bytes the request writes, when known (the range's end, the source's
    // size or Content-Length), in checked arithmetic: an end near u64::MAX
    // is refused, never wrapped.
    let max = max_object_size(bs);
    let too_large = || Fault::too_large(format!("Objects are at most {max} bytes"));
    let span = |e: u64| e.checked_sub(offset).and_then(|d| d.checked_add(1)).ok_or_else(too_large);
    let length: Option<u64> = match &source_layout {
        Some(l) => {
            let n = match end {
                Some(e) => span(e)?,
                None => l.size,
            };
            if n > l.size {
                return Err(Fault::bad_request("The range is longer than the source object"));
            }
            Some(n)
        }
        None => {
            if let (Some(e), Some(n)) = (end, declared) {
                if span(e)? != n {
                    return Err(Fault::bad_request("Content-Range and Content-Length disagree"));
                }
            }
            match declared {
                Some(n) => Some(n),
                None => end.map(span).transpose()?,
            }
        }
    };
    let limit = match length {
        Some(l) => Some(offset.checked_add(l).filter(|e| *e <= max).ok_or_else(too_large)?),
        None => None,
    };
    if limit.is_some_and(|l| l.saturating_sub(size) > room) {
        return Err(Fault::quota("the object would pass the container's or the account's quota"));
    }
    let pins = cloud.blocks.pinned();
    let mut src = match source_layout {
        Some(layout) => Source::Object { layout, pos: 0, blocks: cloud.blocks.clone() },
        None => Source::Body { stream: call.body.into_data_stream(), left: Bytes::new() },
    };
    let mut hashes: Vec<BlockHash> = hashmap.into_iter().take(blocks::block_count(size, bs) as usize).collect();
    let mut new_size = size;
    let mut pos = offset;
    loop {
        let i = pos / bs;
        let block_start = i * bs;
        let in_block = pos - block_start;
        let want = match limit {
            Some(l) => (bs - in_block).min(l - pos),
            None => bs - in_block,
        };
        if want == 0 {
            break;
        }
        let chunk = src.read_up_to(want as usize).await?;
        if chunk.is_empty() {
            break;
        }
        let got = chunk.len() as u64;
        // Appends of unknown length stop as soon as they pass a limit.
        let grown_to = new_size.max(pos + got);
        if grown_to > max {
            return Err(too_large());
        }
        if grown_to - size > room {
            return Err(Fault::quota("the object would pass the container's or the account's quota"));
        }
        let old_len = new_size.saturating_sub(block_start).min(bs) as usize;
        let old_hash = hashes.get(i as usize).copied();
        let (store, pinned) = (cloud.blocks.clone(), pins.clone());
        let hash = tokio::task::spawn_blocking(move || -> std::io::Result<BlockHash> {
            let mut block = match old_hash {
                Some(h) => store.get(&h, old_len)?,
                None => Vec::new(),
            };
            let end = in_block as usize + chunk.len();
            if block.len() < end {
                block.resize(end, 0);
            }
            block[in_block as usize..end].copy_from_slice(&chunk);
            pinned.put(&block)
        })
        .await
        .map_err(|e| Fault::internal(format!("block writer failed: {e}")))??;
        if (i as usize) < hashes.len() {
            hashes[i as usize] = hash;
        } else {
            hashes.push(hash);
        }
        pos += got;
        new_size = new_size.max(pos);
        if got < want {
            if limit.is_some() {
                return Err(Fault::bad_request("The request body is shorter than its Content-Length"));
            }
            break;
        }
    }
    if let Some(n) = truncate_to {
        if n < new_size {
            new_size = n;
            // Faithful to Pithos: the hash of the new last block is kept as is.
            hashes.truncate(blocks::block_count(n, bs) as usize);
        }
    }
    // MD5 mode: the whole new content, read back from its blocks (Synnefo's
    // `hashmap_md5`); the default mode keeps no MD5 for a patched version.
    let checksum = if etags.md5() {
        let (store, h) = (cloud.blocks.clone(), hashes.clone());
        tokio::task::spawn_blocking(move || data::md5_of(&store, &h, new_size))
            .await
            .map_err(|e| Fault::internal(format!("block reader failed: {e}")))??
    } else {
        String::new()
    };
    let (headers, quota) = (call.headers, cloud.quota);
    let v = cloud
        .db
        .write(move |tx| {
            let now_current = model::current(tx, c.id, &t.name)?.ok_or_else(object_not_found)?;
            if now_current.serial != current.serial {
                return Err(Fault::conflict("The object changed during the update; retry"));
            }
            check_object_preconditions(&headers, Some(&now_current), false, etags)?;
            let new = NewVersion {
                uuid: current.uuid.clone(),
                bytes: new_size,
                hashmap: hashes,
                content_type: current.content_type.clone(),
                checksum,
                meta: apply_meta(&current.meta, meta, update, |_| false)?,
                modified_by: uuid.clone(),
            };
            let v = model::put_version(tx, &c, &t.name, new, quota, now())?;
            let perm = if c.account == uuid { Perm::Owner } else { Perm::Write };
            apply_sharing_public(tx, &c, &t.name, perm, &sharing, public)?;
            Ok(v)
        })
        .await?;
    pins.keep();
    Ok(Out::new(StatusCode::NO_CONTENT)
        .header("ETag", etags.of(&v))
        .header("X-Object-Version", v.serial.to_string())
        .empty())
}

// ---------- DELETE ----------

async fn delete(cloud: &Arc<Cloud>, call: Call, t: Target) -> Reply {
    let user = call.user()?;
    if user.uuid != t.account {
        return Err(Fault::forbidden("Only the owner may delete"));
    }
    let until = call.query.int("until");
    let delimiter = call.query.value("delimiter").map(str::to_string);
    let by = user.uuid.clone();
    if let (Some(d), None) = (&delimiter, until) {
        let prefix = format!("{}{d}", t.name);
        tree::delete(cloud, &t.account, &t.container, &by, Some(t.name), prefix).await?;
        return Ok(Out::new(StatusCode::NO_CONTENT).empty());
    }
    cloud
        .db
        .write(move |tx| {
            let c = container_of(tx, &t.account, &t.container)?;
            if let Some(u) = until {
                return model::purge_history(tx, c.id, Some(&t.name), u as f64);
            }
            if !model::delete_object(tx, &c, &t.name, &by, now())? {
                return Err(object_not_found());
            }
            Ok(())
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}
