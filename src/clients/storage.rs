//! OpenStack object storage (kamaki's `StorageClient`): accounts, containers,
//! objects, listings, metadata, copy/move, ranged and conditional reads,
//! streaming up and down. Works against Pithos+ and against a plain Swift
//! (v1 auth with X-Auth-User/X-Auth-Key, or a storage URL and a token).
//!
//! The calls are provided methods of the [`ObjectStorage`] trait, so a
//! [`super::pithos::PithosClient`], which holds a `StorageClient`, offers them
//! as well as its own.

use super::error::ClientError;
use super::http::{header_in, BodyLimit, Call, Http, Reply};
use bytes::Bytes;
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;

/// Largest page a listing asks for (and the most either server returns).
pub const PAGE: usize = 10_000;

/// Smallest page a listing falls back to when a page of entries is longer
/// than `Options::max_reply` (entries with long names and much metadata).
const MIN_PAGE: usize = 100;

/// A storage account at `<endpoint>/<account>`, working in one container.
#[derive(Clone, Debug)]
pub struct StorageClient {
    http: Http,
    account: String,
    container: String,
}

impl StorageClient {
    /// `endpoint` is the object-store URL (…/v1), `account` the account name
    /// (the user UUID on Pithos, `AUTH_<name>` on Swift).
    pub fn new(endpoint: &str, token: &str, account: &str, container: &str) -> Result<StorageClient, ClientError> {
        StorageClient::with_http(Http::new(endpoint, Some(token))?, account, container)
    }

    pub fn with_http(http: Http, account: &str, container: &str) -> Result<StorageClient, ClientError> {
        if account.is_empty() || account.contains('/') {
            return Err(ClientError::new(format!("Bad account name {account:?}")));
        }
        Ok(StorageClient { http, account: account.to_string(), container: container.to_string() })
    }

    /// A Swift storage URL (`http://host/v1/AUTH_test`) and its token.
    pub fn from_storage_url(storage_url: &str, token: &str, container: &str) -> Result<StorageClient, ClientError> {
        let url = storage_url.trim_end_matches('/');
        let (endpoint, account) =
            url.rsplit_once('/').ok_or_else(|| ClientError::new(format!("{storage_url:?} is not a storage URL")))?;
        StorageClient::with_http(Http::new(endpoint, Some(token))?.plain_quoting(), account, container)
    }

    /// Swift v1 authentication (tempauth): `GET auth_url` with X-Auth-User and
    /// X-Auth-Key gives the storage URL and a token.
    pub async fn swift_v1_auth(
        auth_url: &str,
        user: &str,
        key: &str,
        container: &str,
    ) -> Result<StorageClient, ClientError> {
        let auth = Http::new(auth_url, None)?.plain_quoting();
        let reply = auth
            .request(Method::GET, "")
            .header("X-Auth-User", user)
            .header("X-Auth-Key", key)
            .anonymous()
            .send()
            .await?;
        let url =
            reply.header("x-storage-url").ok_or_else(|| ClientError::new("The auth reply has no X-Storage-Url"))?;
        let token =
            reply.header("x-auth-token").ok_or_else(|| ClientError::new("The auth reply has no X-Auth-Token"))?;
        StorageClient::from_storage_url(url, token, container)
    }

    pub fn http(&self) -> &Http {
        &self.http
    }
    pub fn account(&self) -> &str {
        &self.account
    }
    pub fn container(&self) -> &str {
        &self.container
    }
    /// The same client working in another container.
    pub fn with_container(&self, container: &str) -> StorageClient {
        StorageClient { container: container.to_string(), ..self.clone() }
    }
    /// The same client acting on another account (what others share with us).
    pub fn with_account(&self, account: &str) -> StorageClient {
        StorageClient { account: account.to_string(), ..self.clone() }
    }
}

/// Headers of an account, container or object, and what they mean.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub headers: Vec<(String, String)>,
}

impl Info {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    fn number(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }
    /// User metadata (`X-<kind>-Meta-*`), keys lower-cased.
    pub fn meta(&self, kind: &str) -> BTreeMap<String, String> {
        let prefix = format!("x-{}-meta-", kind.to_ascii_lowercase());
        self.headers.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|r| (r.to_string(), v.clone()))).collect()
    }
}

/// An object as HEAD (or a GET) describes it.
#[derive(Debug, Clone, Default)]
pub struct ObjectInfo {
    pub bytes: u64,
    pub content_type: String,
    pub etag: String,
    pub last_modified: Option<f64>,
    /// Pithos: Merkle hash, UUID and version of the object.
    pub hash: Option<String>,
    pub uuid: Option<String>,
    pub version: Option<String>,
    pub meta: BTreeMap<String, String>,
    pub info: Info,
}

impl ObjectInfo {
    pub fn from_headers(headers: Vec<(String, String)>) -> ObjectInfo {
        let info = Info { headers };
        ObjectInfo {
            bytes: info.number("content-length").unwrap_or(0),
            content_type: info.header("content-type").unwrap_or("").to_string(),
            etag: info.header("etag").unwrap_or("").trim_matches('"').to_string(),
            last_modified: info.header("last-modified").and_then(parse_http_date),
            hash: info.header("x-object-hash").map(str::to_string),
            uuid: info.header("x-object-uuid").map(str::to_string),
            version: info.header("x-object-version").map(str::to_string),
            meta: info.meta("object"),
            info,
        }
    }
    pub fn is_directory(&self) -> bool {
        is_directory_type(&self.content_type)
    }
}

pub fn is_directory_type(ct: &str) -> bool {
    matches!(ct.split(';').next().unwrap_or("").trim(), "application/directory" | "application/folder")
}

pub fn parse_http_date(s: &str) -> Option<f64> {
    httpdate::parse_http_date(s.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// `2017-01-14T10:02:03.123456+00:00` (Pithos) or without a zone (Swift).
pub fn parse_listing_date(s: &str) -> Option<f64> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros() as f64 / 1e6);
    }
    chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_micros() as f64 / 1e6)
}

/// One entry of an object listing.
#[derive(Debug, Clone)]
pub enum Listed {
    Object(ObjectEntry),
    /// A roll-up of names under a common prefix (`photos/`).
    Subdir(String),
}

impl Listed {
    pub fn name(&self) -> &str {
        match self {
            Listed::Object(o) => &o.name,
            Listed::Subdir(s) => s,
        }
    }
}

/// An object as a JSON listing describes it.
#[derive(Debug, Clone, Default)]
pub struct ObjectEntry {
    pub name: String,
    pub bytes: u64,
    pub content_type: String,
    /// Swift: the MD5; Pithos: the stored MD5 (often empty).
    pub md5: String,
    pub last_modified: Option<f64>,
    /// Pithos extensions.
    pub hash: Option<String>,
    pub uuid: Option<String>,
    pub version: Option<u64>,
    /// User metadata when the server lists it (the local cloud does).
    pub meta: BTreeMap<String, String>,
    /// Pithos: who the object is shared with (`x_object_sharing`).
    pub sharing: Option<String>,
}

impl ObjectEntry {
    fn from_json(v: Value) -> Result<ObjectEntry, ClientError> {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::new("A listing entry has no name"))?
            .to_string();
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let num = |k: &str| v.get(k).and_then(|x| x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())));
        let meta = v
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, val)| {
                        k.strip_prefix("x_object_meta_")
                            .map(|m| (m.replace('_', "-"), val.as_str().unwrap_or("").to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ObjectEntry {
            name,
            bytes: num("bytes").unwrap_or(0),
            content_type: s("content_type").unwrap_or_default(),
            md5: s("hash").unwrap_or_default(),
            last_modified: s("last_modified").as_deref().and_then(parse_listing_date),
            hash: s("x_object_hash"),
            uuid: s("x_object_uuid"),
            version: num("x_object_version"),
            meta,
            sharing: s("x_object_sharing"),
        })
    }
    pub fn is_directory(&self) -> bool {
        is_directory_type(&self.content_type)
    }
}

/// A container as the account listing describes it.
#[derive(Debug, Clone, Default)]
pub struct ContainerEntry {
    pub name: String,
    pub count: u64,
    pub bytes: u64,
    pub last_modified: Option<f64>,
    pub raw: Value,
}

/// Pages through a JSON listing (`kind`: what it lists, for messages).
///
/// A server is not trusted to end it: each page must move the marker
/// forward (a repeated or backwards marker is an error, not a loop), a page
/// holds at most what was asked, and the walk reads at most
/// `Options::max_listing` entries. With `limit` at most that, the walk stops
/// there; otherwise a longer listing is an error, never a silently partial
/// one. A page longer than `Options::max_reply` is asked again, smaller.
async fn walk_listing<'a, T>(
    http: &Http,
    kind: &str,
    limit: Option<usize>,
    mut marker: Option<String>,
    request: impl Fn(usize, Option<&str>) -> Call<'a>,
    entry: impl Fn(Value) -> Result<T, ClientError>,
    name: impl Fn(&T) -> &str,
) -> Result<Vec<T>, ClientError> {
    let cap = http.options().max_listing;
    // Past the cap: one entry more tells a longer listing from one that ends there.
    let (wanted, beyond_is_error) = match limit {
        Some(l) if l <= cap => (l, false),
        _ => (cap.saturating_add(1), true),
    };
    let mut out: Vec<T> = Vec::new();
    let mut page = PAGE;
    while out.len() < wanted {
        let want = (wanted - out.len()).min(page);
        let reply = match request(want, marker.as_deref()).ok(&[200, 204]).send().await {
            Ok(r) => r,
            Err(e) if e.is_reply_too_long() && page > MIN_PAGE => {
                page = (page / 4).max(MIN_PAGE);
                continue;
            }
            Err(e) => return Err(e),
        };
        if reply.status == 204 || reply.body.is_empty() {
            break;
        }
        let Value::Array(items) = reply.json()? else {
            return Err(ClientError::new(format!("The {kind} listing is not a JSON list")));
        };
        let n = items.len();
        for v in items.into_iter().take(want) {
            out.push(entry(v)?);
        }
        if n < want {
            break;
        }
        let last = out.last().map(|e| name(e).to_string());
        if let (Some(last), Some(before)) = (&last, &marker) {
            if last <= before {
                return Err(ClientError::new(format!(
                    "The {kind} listing does not move forward: after {before:?} it gave {last:?} again or earlier"
                )));
            }
        }
        marker = last;
    }
    if beyond_is_error && out.len() > cap {
        return Err(ClientError::new(format!(
            "The {kind} listing has more than {cap} entries, the most one call reads; list it in parts (marker and limit)"
        )));
    }
    Ok(out)
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    /// Pithos `path=`: direct children of a folder.
    pub path: Option<String>,
    pub marker: Option<String>,
    /// At most this many entries. None (or more than `Options::max_listing`)
    /// lists everything page by page, up to `max_listing` entries: a longer
    /// listing is an error.
    pub limit: Option<usize>,
    /// Pithos meta filter (`key`, `!key`, `key=value`…).
    pub meta: Option<String>,
    pub shared: bool,
    pub public: bool,
    /// Pithos: the state at this time (epoch seconds).
    pub until: Option<i64>,
}

/// Conditions and range of a read.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Inclusive byte range.
    pub range: Option<(u64, u64)>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub if_unmodified_since: Option<String>,
    /// Pithos: read this version.
    pub version: Option<String>,
    /// At most this many bytes of body: a longer reply is an error. Default:
    /// the range's length, else `Options::max_object`.
    pub max_bytes: Option<u64>,
}

/// What a write sets besides the data.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub meta: Vec<(String, String)>,
    /// `If-None-Match: *`: create only.
    pub if_not_exists: bool,
    pub if_match: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    /// Pithos: `read=…; write=…`.
    pub sharing: Option<String>,
    /// Pithos: publish (true) or unpublish (false).
    pub public: Option<bool>,
}

/// Result of a write.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub etag: String,
    pub version: Option<String>,
}

impl Written {
    fn of(r: &Reply) -> Written {
        Written {
            etag: r.header("etag").unwrap_or("").trim_matches('"').to_string(),
            version: r.header("x-object-version").map(str::to_string),
        }
    }
}

pub(crate) fn put_headers<'a>(
    http: &Http,
    mut call: super::http::Call<'a>,
    o: &PutOptions,
) -> Result<super::http::Call<'a>, ClientError> {
    call = call.header("Content-Type", o.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()));
    for (k, v) in &o.meta {
        call = call.header(&format!("X-Object-Meta-{}", http.quote_header(k)?), http.quote_header(v)?);
    }
    if o.if_not_exists {
        call = call.header("If-None-Match", "*");
    }
    call = call.header_opt("If-Match", o.if_match.clone());
    if let Some(e) = &o.content_encoding {
        call = call.header("Content-Encoding", http.quote_header(e)?);
    }
    if let Some(d) = &o.content_disposition {
        call = call.header("Content-Disposition", http.quote_header(d)?);
    }
    if let Some(s) = &o.sharing {
        call = call.header("X-Object-Sharing", http.quote_header(s)?);
    }
    if let Some(p) = o.public {
        call = call.header("X-Object-Public", if p { "True" } else { "False" });
    }
    Ok(call)
}

/// `X-Copy-From` as each server reads it: Pithos decodes header values that
/// hold `%`, Swift's copy middleware always URL-decodes the path.
fn copy_source(http: &Http, container: &str, name: &str) -> Result<String, ClientError> {
    let path = format!("/{container}/{name}");
    if http.speaks_pithos() {
        http.quote_header(&path)
    } else {
        Ok(super::http::quote_path(&path))
    }
}

/// The OpenStack object storage calls, for any client that holds a `StorageClient`.
#[allow(async_fn_in_trait)]
pub trait ObjectStorage {
    fn storage(&self) -> &StorageClient;

    fn object_path(&self, name: &str) -> String {
        let s = self.storage();
        format!("{}/{}/{}", s.account, s.container, name)
    }

    // ---------- account ----------

    async fn get_account_info(&self) -> Result<Info, ClientError> {
        let s = self.storage();
        let r = s.http.request(Method::HEAD, &s.account).ok(&[200, 204]).send().await?;
        Ok(Info { headers: r.headers })
    }

    /// Merges account metadata (an empty value deletes a key).
    async fn set_account_meta(&self, pairs: &[(&str, &str)]) -> Result<(), ClientError> {
        let s = self.storage();
        let mut call = s.http.request(Method::POST, &s.account).flag("update").ok(&[202, 204]).idempotent(true);
        for (k, v) in pairs {
            call = call.header(&format!("X-Account-Meta-{}", s.http.quote_header(k)?), s.http.quote_header(v)?);
        }
        call.send().await.map(|_| ())
    }

    /// Every container of the account (paged past 10,000; see [`ListOptions::limit`]).
    async fn list_containers(&self) -> Result<Vec<ContainerEntry>, ClientError> {
        self.list_containers_with(&ListOptions::default()).await
    }

    /// Containers of the account: `prefix`, `marker`, `limit` and `until` of `o` apply.
    async fn list_containers_with(&self, o: &ListOptions) -> Result<Vec<ContainerEntry>, ClientError> {
        let s = self.storage();
        let request = |limit: usize, marker: Option<&str>| {
            s.http
                .request(Method::GET, &s.account)
                .query("format", "json")
                .query("limit", limit)
                .query_opt("prefix", o.prefix.as_deref())
                .query_opt("marker", marker)
                .query_opt("until", o.until)
        };
        let entry = |v: Value| -> Result<ContainerEntry, ClientError> {
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ClientError::new("A container listing entry has no name"))?
                .to_string();
            Ok(ContainerEntry {
                name,
                count: v.get("count").and_then(Value::as_u64).unwrap_or(0),
                bytes: v.get("bytes").and_then(Value::as_u64).unwrap_or(0),
                last_modified: v.get("last_modified").and_then(Value::as_str).and_then(parse_listing_date),
                raw: v,
            })
        };
        walk_listing(&s.http, "container", o.limit, o.marker.clone(), request, entry, |c| &c.name).await
    }

    // ---------- containers ----------

    /// Creates the client's container (or merges into an existing one).
    async fn create_container(&self, meta: &[(&str, &str)]) -> Result<(), ClientError> {
        let s = self.storage();
        let mut call = s.http.request(Method::PUT, &format!("{}/{}", s.account, s.container)).ok(&[201, 202]);
        for (k, v) in meta {
            call = call.header(&format!("X-Container-Meta-{}", s.http.quote_header(k)?), s.http.quote_header(v)?);
        }
        call.send().await.map(|_| ())
    }

    async fn get_container_info(&self) -> Result<Info, ClientError> {
        let s = self.storage();
        let r = s.http.request(Method::HEAD, &format!("{}/{}", s.account, s.container)).ok(&[200, 204]).send().await?;
        Ok(Info { headers: r.headers })
    }

    /// Merges container metadata (an empty value deletes a key).
    async fn set_container_meta(&self, pairs: &[(&str, &str)]) -> Result<(), ClientError> {
        let s = self.storage();
        let mut call = s
            .http
            .request(Method::POST, &format!("{}/{}", s.account, s.container))
            .flag("update")
            .ok(&[202, 204])
            .idempotent(true);
        for (k, v) in pairs {
            call = call.header(&format!("X-Container-Meta-{}", s.http.quote_header(k)?), s.http.quote_header(v)?);
        }
        call.send().await.map(|_| ())
    }

    /// Deletes the (empty) container.
    async fn delete_container(&self) -> Result<(), ClientError> {
        let s = self.storage();
        s.http.request(Method::DELETE, &format!("{}/{}", s.account, s.container)).ok(&[204]).send().await.map(|_| ())
    }

    // ---------- listing ----------

    /// Lists the container, page by page past 10,000 (see [`ListOptions::limit`]).
    async fn list_objects(&self, o: &ListOptions) -> Result<Vec<Listed>, ClientError> {
        let s = self.storage();
        let path = format!("{}/{}", s.account, s.container);
        let request = |limit: usize, marker: Option<&str>| {
            let r = s
                .http
                .request(Method::GET, &path)
                .query("format", "json")
                .query("limit", limit)
                .query_opt("prefix", o.prefix.as_deref())
                .query_opt("delimiter", o.delimiter.as_deref())
                .query_opt("path", o.path.as_deref())
                .query_opt("marker", marker)
                .query_opt("meta", o.meta.as_deref())
                .query_opt("until", o.until);
            let r = if o.shared { r.flag("shared") } else { r };
            if o.public {
                r.flag("public")
            } else {
                r
            }
        };
        let entry = |v: Value| match v.get("subdir").and_then(Value::as_str) {
            Some(sd) => Ok(Listed::Subdir(sd.to_string())),
            None => ObjectEntry::from_json(v).map(Listed::Object),
        };
        walk_listing(&s.http, "object", o.limit, o.marker.clone(), request, entry, Listed::name).await
    }

    // ---------- objects ----------

    async fn get_object_info(&self, name: &str) -> Result<ObjectInfo, ClientError> {
        self.get_object_info_at(name, None).await
    }

    /// HEAD of an object, or of one of its versions (Pithos).
    async fn get_object_info_at(&self, name: &str, version: Option<&str>) -> Result<ObjectInfo, ClientError> {
        let r = self
            .storage()
            .http
            .request(Method::HEAD, &self.object_path(name))
            .query_opt("version", version)
            .ok(&[200, 204])
            .send()
            .await?;
        Ok(ObjectInfo::from_headers(r.headers))
    }

    /// Reads an object (or a range of it) whole into memory.
    async fn get_object(&self, name: &str, o: &GetOptions) -> Result<(ObjectInfo, Bytes), ClientError> {
        let mut call = self
            .storage()
            .http
            .request(Method::GET, &self.object_path(name))
            .query_opt("version", o.version.as_deref())
            .ok(&[200, 206]);
        let limit = match (o.range, o.max_bytes) {
            (_, Some(n)) => BodyLimit::Max(n),
            (Some((a, b)), None) if b >= a => BodyLimit::Range { start: a, len: b - a + 1 },
            _ => BodyLimit::Max(self.storage().http.options().max_object),
        };
        if let Some((a, b)) = o.range {
            call = call.header("Range", format!("bytes={a}-{b}"));
        }
        call = call
            .limit(limit)
            .header_opt("If-Match", o.if_match.clone())
            .header_opt("If-None-Match", o.if_none_match.clone())
            .header_opt("If-Modified-Since", o.if_modified_since.clone())
            .header_opt("If-Unmodified-Since", o.if_unmodified_since.clone());
        let r = call.send().await?;
        let mut info = ObjectInfo::from_headers(r.headers.clone());
        if let Some(total) = r.header("content-range").and_then(|cr| cr.rsplit('/').next()).and_then(|t| t.parse().ok())
        {
            info.bytes = total;
        }
        Ok((info, r.body))
    }

    /// Streams an object into `out`, returning its size. Not retried midway:
    /// for large objects prefer the Pithos block download.
    async fn download_to<W: tokio::io::AsyncWrite + Unpin>(&self, name: &str, out: &mut W) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt;
        let mut r =
            self.storage().http.request(Method::GET, &self.object_path(name)).ok(&[200]).send_streaming().await?;
        let mut n = 0u64;
        while let Some(chunk) = r.chunk().await? {
            out.write_all(&chunk).await?;
            n += chunk.len() as u64;
        }
        out.flush().await?;
        Ok(n)
    }

    /// Writes an object from memory in one PUT.
    async fn put_object(&self, name: &str, data: Bytes, o: &PutOptions) -> Result<Written, ClientError> {
        let s = self.storage();
        let call = s.http.request(Method::PUT, &self.object_path(name)).body(data).ok(&[201]);
        let r = put_headers(&s.http, call, o)?.send().await?;
        Ok(Written::of(&r))
    }

    /// Writes an object of `len` bytes from a stream, in one PUT (Swift takes
    /// up to 5 GiB this way). Not retried: a failed stream is started over by the caller.
    async fn put_object_streamed<S>(
        &self,
        name: &str,
        len: u64,
        data: S,
        o: &PutOptions,
    ) -> Result<Written, ClientError>
    where
        S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let s = self.storage();
        let call = s.http.request(Method::PUT, &self.object_path(name)).ok(&[201]);
        let r = put_headers(&s.http, call, o)?.send_streamed(len, data).await?;
        Ok(Written::of(&r))
    }

    /// Creates a folder marker object (`application/directory`).
    async fn create_directory(&self, name: &str) -> Result<Written, ClientError> {
        let o = PutOptions { content_type: Some("application/directory".into()), ..Default::default() };
        self.put_object(name, Bytes::new(), &o).await
    }

    async fn delete_object(&self, name: &str) -> Result<(), ClientError> {
        self.storage().http.request(Method::DELETE, &self.object_path(name)).ok(&[204]).send().await.map(|_| ())
    }

    /// Merges object metadata (an empty value deletes a key).
    async fn set_object_meta(&self, name: &str, pairs: &[(&str, &str)]) -> Result<(), ClientError> {
        let s = self.storage();
        if s.http.speaks_pithos() {
            let mut call =
                s.http.request(Method::POST, &self.object_path(name)).flag("update").ok(&[202, 204]).idempotent(true);
            for (k, v) in pairs {
                call = call.header(&format!("X-Object-Meta-{}", s.http.quote_header(k)?), s.http.quote_header(v)?);
            }
            return call.send().await.map(|_| ());
        }
        // Swift's POST replaces all metadata: merge with what is there.
        let mut meta = self.get_object_info(name).await?.meta;
        for (k, v) in pairs {
            if v.is_empty() {
                meta.remove(&k.to_lowercase());
            } else {
                meta.insert(k.to_lowercase(), v.to_string());
            }
        }
        let mut call = s.http.request(Method::POST, &self.object_path(name)).ok(&[202, 204]).idempotent(true);
        for (k, v) in &meta {
            call = call.header(&format!("X-Object-Meta-{}", s.http.quote_header(k)?), s.http.quote_header(v)?);
        }
        call.send().await.map(|_| ())
    }

    /// Server-side copy (`X-Copy-From`) into this client's container.
    async fn copy_object(&self, src_container: &str, src: &str, dst: &str) -> Result<Written, ClientError> {
        self.copy_object_with(src_container, src, dst, &[]).await
    }

    /// Server-side copy whose metadata is the source's merged with `meta`
    /// (Pithos and Swift both merge the request's `X-Object-Meta-*`).
    async fn copy_object_with(
        &self,
        src_container: &str,
        src: &str,
        dst: &str,
        meta: &[(String, String)],
    ) -> Result<Written, ClientError> {
        let s = self.storage();
        let mut call = s
            .http
            .request(Method::PUT, &self.object_path(dst))
            .header("X-Copy-From", copy_source(&s.http, src_container, src)?)
            .ok(&[201]);
        for (k, v) in meta {
            call = call.header(&format!("X-Object-Meta-{}", s.http.quote_header(k)?), s.http.quote_header(v)?);
        }
        let r = call.send().await?;
        Ok(Written::of(&r))
    }

    /// Server-side move: `X-Move-From` on Pithos; copy then delete on Swift.
    async fn move_object(&self, src_container: &str, src: &str, dst: &str) -> Result<Written, ClientError> {
        let s = self.storage();
        if s.http.speaks_pithos() {
            let r = s
                .http
                .request(Method::PUT, &self.object_path(dst))
                .header("X-Move-From", s.http.quote_header(&format!("/{src_container}/{src}"))?)
                .ok(&[201])
                .send()
                .await?;
            return Ok(Written::of(&r));
        }
        let w = self.copy_object(src_container, src, dst).await?;
        s.with_container(src_container).delete_object(src).await?;
        Ok(w)
    }
}

impl ObjectStorage for StorageClient {
    fn storage(&self) -> &StorageClient {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_entries_parse_both_servers() {
        let pithos = serde_json::json!({"name": "a/b", "bytes": 5, "content_type": "text/plain", "hash": "",
            "x_object_hash": "h", "x_object_uuid": "u", "x_object_version": 7,
            "last_modified": "2017-01-14T10:02:03.5+00:00", "x_object_meta_mtime": "12"});
        let e = ObjectEntry::from_json(pithos).unwrap();
        assert_eq!((e.name.as_str(), e.bytes, e.version), ("a/b", 5, Some(7)));
        assert_eq!(e.last_modified, Some(1484388123.5));
        assert_eq!(e.meta.get("mtime").map(String::as_str), Some("12"));
        let swift = serde_json::json!({"name": "x", "bytes": 1, "hash": "md5", "content_type": "a/b",
            "last_modified": "2017-01-14T10:02:03.000000"});
        let e = ObjectEntry::from_json(swift).unwrap();
        assert_eq!(e.last_modified, Some(1484388123.0));
        assert!(ObjectEntry::from_json(serde_json::json!({"bytes": 1})).is_err());
    }
}
