//! Pithos+ object storage: accounts, containers, objects, as section 2 of the
//! protocol reference describes them.

pub mod access;
pub mod account;
pub mod container;
pub mod data;
pub mod listing;
pub mod model;
pub mod object;
pub mod public;
pub mod refs;
pub mod tree;

use super::fault::{Fault, Reply};
use super::wire::{canonical_meta_key, http_date, now, parse_http_date, Headers, Reply as Out};
use super::{Call, Cloud};
use axum::http::Method;
use model::{Meta, Version};
use std::sync::Arc;

pub const MAX_CONTAINER_NAME: usize = 256;
/// Longest object name (bytes). Synnefo takes 1,024; this cloud takes
/// 8,192, twice `PATH_MAX`, so that a mounted path of `PATH_MAX` works below
/// any folder short of 4 KiB (the mount asks for no longer names).
pub const MAX_OBJECT_NAME: usize = 8192;
/// Largest plain PUT body (5 GiB, as Pithos).
pub const MAX_UPLOAD: u64 = 5 << 30;

/// Routes `{PITHOS}/[acct[/cont[/obj]]]`.
pub async fn handle(cloud: Arc<Cloud>, call: Call) -> Reply {
    let path = call.path.strip_prefix('/').unwrap_or(&call.path).to_string();
    let mut parts = path.splitn(3, '/');
    let account = parts.next().unwrap_or("").to_string();
    let container = parts.next().unwrap_or("").to_string();
    let object = parts.next().map(str::to_string);
    if account.is_empty() {
        return match call.method {
            Method::GET | Method::HEAD => account::sharing_accounts(&cloud, call).await,
            _ => Err(Fault::not_allowed("GET")),
        };
    }
    if container.is_empty() && object.is_none() {
        return account::handle(&cloud, call, &account).await;
    }
    check_container_name(&container)?;
    match object {
        None => container::handle(&cloud, call, &account, &container).await,
        Some(o) if o.is_empty() => container::handle(&cloud, call, &account, &container).await,
        Some(o) => {
            check_object_name(&o)?;
            object::handle(cloud, call, &account, &container, &o).await
        }
    }
}

pub fn check_container_name(name: &str) -> Result<(), Fault> {
    if name.is_empty() || name.len() > MAX_CONTAINER_NAME || name.contains('\0') {
        return Err(Fault::bad_request(format!(
            "Container names are 1 to {MAX_CONTAINER_NAME} bytes of UTF-8 without NUL"
        )));
    }
    Ok(())
}

pub fn check_object_name(name: &str) -> Result<(), Fault> {
    if name.is_empty() || name.len() > MAX_OBJECT_NAME || name.contains('\0') {
        return Err(Fault::bad_request(format!("Object names are 1 to {MAX_OBJECT_NAME} bytes of UTF-8 without NUL")));
    }
    Ok(())
}

/// Every user gets the `pithos` container kamaki expects.
pub async fn ensure_default_containers(cloud: &Cloud) -> Result<(), Fault> {
    let uuids: Vec<String> = cloud.users.all().map(|u| u.uuid.clone()).collect();
    cloud
        .db
        .write(move |tx| {
            let t = now();
            for uuid in uuids {
                if model::container(tx, &uuid, "pithos")?.is_none() {
                    model::create_container(tx, &new_container(&uuid, "pithos", t))?;
                }
            }
            Ok(())
        })
        .await
}

pub fn new_container(account: &str, name: &str, t: f64) -> model::Container {
    model::Container {
        id: 0,
        account: account.to_string(),
        name: name.to_string(),
        created: t,
        modified: t,
        versioning: "auto".into(),
        quota: 0,
        project: account.to_string(),
        meta: Meta::new(),
        count: 0,
        bytes: 0,
    }
}

/// User metadata sent with a request: `X-<Kind>-Meta-*` headers, canonicalised,
/// with Pithos's limits (90 headers, keys ≤ 128, values ≤ 256 characters).
pub fn request_meta(headers: &Headers, kind: &str) -> Result<Vec<(String, String)>, Fault> {
    let prefix = format!("x-{}-meta-", kind.to_ascii_lowercase());
    let mut out = Vec::new();
    for (k, v) in headers.with_prefix(&prefix) {
        if k.is_empty() {
            continue;
        }
        if k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(Fault::bad_request("Metadata keys are at most 128 and values at most 256 characters"));
        }
        let v: String = v.chars().filter(|c| *c != '~').collect();
        out.push((format!("X-{kind}-Meta-{}", canonical_meta_key(k)), v.trim().to_string()));
    }
    if out.len() > 90 {
        return Err(Fault::bad_request("Too many metadata headers (at most 90)"));
    }
    Ok(out)
}

/// Applies supplied metadata: merged (an empty value deletes a key) with
/// `update`, replacing everything without it.
pub fn apply_meta(
    current: &Meta,
    supplied: Vec<(String, String)>,
    update: bool,
    keep: impl Fn(&str) -> bool,
) -> Result<Meta, Fault> {
    let mut out: Meta = if update {
        current.clone()
    } else {
        current.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    for (k, v) in supplied {
        if v.is_empty() {
            out.remove(&k);
        } else {
            out.insert(k, v);
        }
    }
    let user_keys = out.keys().filter(|k| k.contains("-Meta-")).count();
    if user_keys > 32 {
        return Err(Fault::bad_request("Too many metadata keys on one item (at most 32)"));
    }
    Ok(out)
}

/// Adds user metadata headers to a reply.
pub fn put_meta(out: &mut Out, meta: &Meta) {
    for (k, v) in meta {
        out.add_quoted(k, v);
    }
}

/// `If-Modified-Since` / `If-Unmodified-Since` on accounts and containers.
pub fn check_modified(headers: &Headers, modified: f64) -> Result<(), Fault> {
    let m = modified.floor();
    if let Some(d) = headers.get("if-modified-since").and_then(parse_http_date) {
        if m <= d {
            return Err(Fault::not_modified());
        }
    }
    if let Some(d) = headers.get("if-unmodified-since").and_then(parse_http_date) {
        if m > d {
            return Err(Fault::precondition_failed("Resource has been modified"));
        }
    }
    Ok(())
}

fn etag_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|e| e.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect()
}

/// What names an object version in `ETag` headers and in the preconditions
/// `If-Match` / `If-None-Match` / `If-Range` (protocol reference 2.4).
/// `X-Object-Hash` is the Merkle hash and a listing's `hash` the stored MD5
/// in both modes, as in Synnefo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EtagMode {
    /// Synnefo's default: the Merkle top hash of the object's blocks.
    #[default]
    Merkle,
    /// Synnefo's `PITHOS_UPDATE_MD5`: the MD5 of the content, computed when
    /// the version is written (empty for versions written without it).
    /// Swift clients (rclone, python-swiftclient) check a PUT's `ETag`
    /// against the MD5 of what they sent.
    Md5,
}

impl EtagMode {
    /// The `ETag` of version `v`.
    pub fn of(self, v: &Version) -> &str {
        match self {
            EtagMode::Merkle => &v.etag,
            EtagMode::Md5 => &v.checksum,
        }
    }

    /// Whether `tag` (unquoted, lowercase) names version `v` in a
    /// precondition. In MD5 mode the Merkle hash (`X-Object-Hash`) names it
    /// too: both are strong validators of the same bytes, and Pithos clients
    /// (the pithosfs mount, kamaki) condition their writes on the Merkle
    /// hash they read. Synnefo's MD5 mode takes only the MD5 there.
    pub fn matches(self, v: &Version, tag: &str) -> bool {
        let md5 = self.of(v);
        (!md5.is_empty() && tag == md5) || (self == EtagMode::Md5 && tag == v.etag)
    }

    /// Whether the MD5 of a new version's content is computed when written:
    /// always in MD5 mode; otherwise only for a plain PUT carrying an `ETag`
    /// to check.
    pub fn md5(self) -> bool {
        self == EtagMode::Md5
    }
}

/// Object preconditions (2.8.3), against the `ETag` of `mode`. `read`
/// selects 304 over 412 for If-None-Match.
pub fn check_object_preconditions(
    headers: &Headers,
    object: Option<&Version>,
    read: bool,
    mode: EtagMode,
) -> Result<(), Fault> {
    if let Some(v) = object {
        if read {
            check_modified(headers, v.mtime)?;
        } else if let Some(d) = headers.get("if-unmodified-since").and_then(parse_http_date) {
            if v.mtime.floor() > d {
                return Err(Fault::precondition_failed("Resource has been modified"));
            }
        }
    }
    if let Some(m) = headers.get("if-match") {
        match object {
            None => return Err(Fault::precondition_failed("Resource does not exist")),
            Some(v) => {
                let tags = etag_list(m);
                if !tags.iter().any(|t| t == "*" || mode.matches(v, t)) {
                    return Err(Fault::precondition_failed("Resource ETag does not match"));
                }
            }
        }
    }
    if let (Some(m), Some(v)) = (headers.get("if-none-match"), object) {
        let tags = etag_list(m);
        if tags.iter().any(|t| t == "*" || mode.matches(v, t)) {
            return Err(if read {
                Fault::not_modified().with_header("ETag", mode.of(v).to_string())
            } else {
                Fault::precondition_failed("Resource exists or ETag matches")
            });
        }
    }
    Ok(())
}

/// `Last-Modified` for a date.
pub fn last_modified(out: &mut Out, t: f64) {
    out.add_header("Last-Modified", http_date(t));
}
