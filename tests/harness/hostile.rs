//! A hostile server for tests: an HTTP proxy in front of a real local cloud
//! that forwards every request and rewrites only the replies a test names
//! (a hashmap, a listing page, an object's metadata, a block's body), so
//! whatever talks to it otherwise talks to a real Pithos.
//!
//! The identity service's replies are rewritten so that the service catalog
//! names the proxy: a client that starts at `Hostile::identity()` stays on it.
//! Each rule counts its hits, so a test can show that its case was served.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as a rule sees it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    /// Query pairs, decoded (`?hashmap` gives ("hashmap", "")).
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
}

impl Req {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, key: &str) -> bool {
        self.query(key).is_some()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Container and object name of a Pithos object request.
    pub fn object(&self) -> Option<(&str, &str)> {
        let rest = self.path.strip_prefix(pithosfs::cloud::PITHOS_PATH)?.strip_prefix('/')?;
        let mut parts = rest.splitn(3, '/');
        let (_account, container, name) = (parts.next()?, parts.next()?, parts.next()?);
        (!name.is_empty()).then_some((container, name))
    }
    /// Whether this is object `container/name` (any method).
    pub fn is_object(&self, container: &str, name: &str) -> bool {
        self.object() == Some((container, name))
    }
    /// Whether this is a JSON listing of `container` (with `prefix`, when given).
    pub fn is_listing(&self, container: &str, prefix: Option<&str>) -> bool {
        let Some(rest) = self.path.strip_prefix(pithosfs::cloud::PITHOS_PATH).and_then(|r| r.strip_prefix('/')) else {
            return false;
        };
        let mut parts = rest.split('/');
        let (_account, c) = (parts.next(), parts.next());
        self.method == "GET"
            && c == Some(container)
            && parts.next().is_none()
            && self.query("format") == Some("json")
            && prefix.is_none_or(|p| self.query("prefix") == Some(p))
    }
    /// Whether this is the JSON listing of the account's containers.
    pub fn is_account_listing(&self) -> bool {
        let Some(rest) = self.path.strip_prefix(pithosfs::cloud::PITHOS_PATH).and_then(|r| r.strip_prefix('/')) else {
            return false;
        };
        self.method == "GET" && !rest.is_empty() && !rest.contains('/') && self.query("format") == Some("json")
    }
    /// A reading of this object's data (not a HEAD, not its hashmap).
    pub fn is_data_read(&self, container: &str, name: &str) -> bool {
        self.method == "GET" && self.is_object(container, name) && !self.has("hashmap")
    }
    pub fn is_hashmap(&self, container: &str, name: &str) -> bool {
        self.method == "GET" && self.is_object(container, name) && self.has("hashmap")
    }
}

/// A reply made up by a rule.
pub struct Made {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Made {
    pub fn json(v: &Value) -> Made {
        Made {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
            body: serde_json::to_vec(v).unwrap(),
        }
    }
}

type Matcher = Box<dyn Fn(&Req) -> bool + Send + Sync>;
type JsonRewrite = Box<dyn Fn(Value, &Req) -> Value + Send + Sync>;
type HeaderRewrite = Box<dyn Fn(&mut HeaderMap) + Send + Sync>;
type Maker = Box<dyn Fn(&Req) -> Made + Send + Sync>;

/// What a rule does with a request it matches.
pub enum Action {
    /// Forwards, then rewrites the JSON body of the reply.
    Json(JsonRewrite),
    /// Forwards, then rewrites the reply's headers.
    Headers(HeaderRewrite),
    /// Forwards the request without these headers (a server that ignores them).
    DropRequestHeaders(Vec<&'static str>),
    /// Answers with a reply of its own.
    Answer(Maker),
    /// Answers `status` with `headers`, then `prefix` and `filler` again and
    /// again, for ever (chunked: no length announced).
    Endless { status: u16, headers: Vec<(String, String)>, prefix: Vec<u8>, filler: Vec<u8> },
    /// Answers `status` and `headers` at once, then one byte of the body every `every`.
    Drip { status: u16, headers: Vec<(String, String)>, every: Duration },
    /// Forwards, then sends the reply's body at this many bytes a second.
    SlowReply(u64),
    /// Reads the request's body at this many bytes a second, then forwards.
    SlowRead(u64),
    /// Reads the request and never answers.
    Silent,
    /// Neither reads the request body nor answers.
    Deaf,
}

struct Rule {
    name: String,
    matches: Matcher,
    action: Arc<Action>,
    hits: Arc<AtomicU64>,
}

struct State {
    upstream: String,
    me: String,
    rules: Mutex<Vec<Rule>>,
    client: reqwest::Client,
    /// Bytes of request bodies passed on to the server.
    up: AtomicU64,
}

/// The proxy; it stops when dropped.
pub struct Hostile {
    pub url: String,
    state: Arc<State>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Hostile {
    /// A proxy in front of the server at `upstream` (its base URL).
    pub fn start(upstream: &str) -> Hostile {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            me: url.clone(),
            rules: Mutex::new(Vec::new()),
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            up: AtomicU64::new(0),
        });
        let st = state.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let st = st.clone();
            async move { handle(st, req).await }
        });
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hostile { url, state, rt: Some(rt) }
    }

    pub fn identity(&self) -> String {
        format!("{}{}", self.url, pithosfs::cloud::IDENTITY_PATH)
    }

    pub fn pithos(&self) -> String {
        format!("{}{}", self.url, pithosfs::cloud::PITHOS_PATH)
    }

    /// Adds a rule (the first rule that matches a request decides); returns its hit counter.
    pub fn rule(&self, name: &str, matches: impl Fn(&Req) -> bool + Send + Sync + 'static, action: Action) -> Hits {
        let hits = Arc::new(AtomicU64::new(0));
        self.state.rules.lock().unwrap().push(Rule {
            name: name.to_string(),
            matches: Box::new(matches),
            action: Arc::new(action),
            hits: hits.clone(),
        });
        Hits(hits)
    }

    /// Bytes of request bodies the server received through the proxy so far.
    pub fn bytes_up(&self) -> u64 {
        self.state.up.load(Ordering::SeqCst)
    }

    /// Removes every rule: from now on the proxy is an honest one.
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// How many requests a rule served.
#[derive(Clone)]
pub struct Hits(Arc<AtomicU64>);

impl Hits {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

async fn handle(st: Arc<State>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = percent_encoding::percent_decode_str(parts.uri.path()).decode_utf8_lossy().into_owned();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default();
    let info = Req { method: parts.method.to_string(), path, query, headers: parts.headers.clone() };
    let action = {
        let rules = st.rules.lock().unwrap();
        rules.iter().find(|r| (r.matches)(&info)).map(|r| {
            r.hits.fetch_add(1, Ordering::SeqCst);
            eprintln!("hostile: rule {:?} serves {} {}", r.name, info.method, info.path);
            r.action.clone()
        })
    };
    match action.as_deref() {
        Some(Action::Deaf) => std::future::pending().await,
        Some(Action::Silent) => {
            let _ = axum::body::to_bytes(body, usize::MAX).await;
            std::future::pending().await
        }
        Some(Action::Answer(make)) => {
            let _ = axum::body::to_bytes(body, usize::MAX).await;
            let made = make(&info);
            reply(made.status, &made.headers, Body::from(made.body))
        }
        Some(Action::Endless { status, headers, prefix, filler }) => {
            let _ = axum::body::to_bytes(body, usize::MAX).await;
            let first = Bytes::from(prefix.clone());
            let more = Bytes::from(filler.repeat((64 << 10) / filler.len().max(1) + 1));
            // About 64 MB a second: fast enough to fill a careless client's memory.
            let rest = futures_util::stream::unfold(more, |more| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Some((Ok::<Bytes, std::io::Error>(more.clone()), more))
            });
            let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(first) }).chain(rest);
            reply(*status, headers, Body::from_stream(stream))
        }
        Some(Action::Drip { status, headers, every }) => {
            let _ = axum::body::to_bytes(body, usize::MAX).await;
            let every = *every;
            let stream = futures_util::stream::unfold((), move |()| async move {
                tokio::time::sleep(every).await;
                Some((Ok::<Bytes, std::io::Error>(Bytes::from_static(b"x")), ()))
            });
            reply(*status, headers, Body::from_stream(stream))
        }
        other => {
            let body = match other {
                Some(Action::SlowRead(rate)) => read_slowly(body, *rate).await,
                _ => axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default(),
            };
            let mut headers = parts.headers.clone();
            if let Some(Action::DropRequestHeaders(names)) = other {
                for n in names {
                    headers.remove(*n);
                }
            }
            let (status, mut out_headers, mut out) = match forward(&st, &parts, headers, body).await {
                Ok(r) => r,
                Err(e) => return reply(502, &[], Body::from(format!("hostile proxy: {e}"))),
            };
            if info.path.starts_with(pithosfs::cloud::IDENTITY_PATH) {
                // The catalog names the proxy, so the client comes back here.
                out = Bytes::from(String::from_utf8_lossy(&out).replace(&st.upstream, &st.me));
            }
            match other {
                Some(Action::Json(rewrite)) => {
                    let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
                    out = Bytes::from(serde_json::to_vec(&rewrite(v, &info)).unwrap());
                    out_headers.insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
                }
                Some(Action::Headers(rewrite)) => rewrite(&mut out_headers),
                _ => {}
            }
            let body = match other {
                Some(Action::SlowReply(rate)) => {
                    // A twentieth of a second's worth every 50 ms.
                    let piece = (*rate as usize / 20).max(1);
                    let pieces: Vec<Bytes> =
                        (0..out.len()).step_by(piece).map(|at| out.slice(at..(at + piece).min(out.len()))).collect();
                    Body::from_stream(futures_util::stream::iter(pieces).then(|p| async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<Bytes, std::io::Error>(p)
                    }))
                }
                _ => Body::from(out),
            };
            let mut resp = Response::new(body);
            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
            // A HEAD's length is the object's, not its (empty) body's: keep it.
            let keep_length = info.method == "HEAD";
            for (k, v) in out_headers.iter() {
                let hop = matches!(k.as_str(), "transfer-encoding" | "connection");
                if !hop && (keep_length || k.as_str() != "content-length") {
                    resp.headers_mut().append(k.clone(), v.clone());
                }
            }
            resp
        }
    }
}

/// Reads a request body at `rate` bytes a second (the sender feels a slow link).
async fn read_slowly(body: Body, rate: u64) -> Bytes {
    let mut stream = body.into_data_stream();
    let mut all = bytes::BytesMut::new();
    while let Some(Ok(piece)) = stream.next().await {
        tokio::time::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64)).await;
        all.extend_from_slice(&piece);
    }
    all.freeze()
}

async fn forward(
    st: &State,
    parts: &axum::http::request::Parts,
    mut headers: HeaderMap,
    body: Bytes,
) -> Result<(u16, HeaderMap, Bytes), reqwest::Error> {
    let url = format!("{}{}", st.upstream, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    headers.remove("host");
    headers.remove("content-length");
    st.up.fetch_add(body.len() as u64, Ordering::SeqCst);
    let r = st.client.request(parts.method.clone(), &url).headers(headers).body(body).send().await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await?;
    Ok((status, headers, body))
}

fn reply(status: u16, headers: &[(String, String)], body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        resp.headers_mut().insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    resp
}

// ---------------------------------------------------------------------------
// replies the tests serve
// ---------------------------------------------------------------------------

/// A listing that never ends: each page holds as many entries as asked
/// (`limit`), named `{prefix}{n:08}` after the marker.
pub fn endless_listing(prefix: &'static str) -> Action {
    Action::Answer(Box::new(move |req| {
        let limit: usize = req.query("limit").and_then(|l| l.parse().ok()).unwrap_or(10_000);
        let after = req
            .query("marker")
            .and_then(|m| m.strip_prefix(prefix))
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |n| n + 1);
        let page: Vec<Value> = (after..after + limit as u64)
            .map(|n| serde_json::json!({"name": format!("{prefix}{n:08}"), "bytes": 1, "content_type": "text/plain"}))
            .collect();
        Made::json(&Value::Array(page))
    }))
}

/// A listing whose every page is the same (the marker never moves on).
pub fn looping_listing(prefix: &'static str) -> Action {
    Action::Answer(Box::new(move |req| {
        let limit: usize = req.query("limit").and_then(|l| l.parse().ok()).unwrap_or(10_000);
        let page: Vec<Value> = (0..limit)
            .map(|n| serde_json::json!({"name": format!("{prefix}{n:08}"), "bytes": 1, "content_type": "text/plain"}))
            .collect();
        Made::json(&Value::Array(page))
    }))
}

/// A listing that goes backwards: the first page is `{prefix}m…`, every page
/// after a marker is `{prefix}a…`, earlier than the marker.
pub fn backwards_listing(prefix: &'static str) -> Action {
    Action::Answer(Box::new(move |req| {
        let limit: usize = req.query("limit").and_then(|l| l.parse().ok()).unwrap_or(10_000);
        let letter = if req.has("marker") { 'a' } else { 'm' };
        let page: Vec<Value> = (0..limit)
            .map(|n| {
                serde_json::json!({"name": format!("{prefix}{letter}{n:08}"), "bytes": 1, "content_type": "text/plain"})
            })
            .collect();
        Made::json(&Value::Array(page))
    }))
}

/// Forwards a hashmap reply with `change` applied to its JSON.
pub fn hashmap_rewrite(change: impl Fn(&mut serde_json::Map<String, Value>) + Send + Sync + 'static) -> Action {
    Action::Json(Box::new(move |mut v, _| {
        if let Some(m) = v.as_object_mut() {
            change(m);
        }
        v
    }))
}

/// An endless body of `filler` after `prefix`, with status and content type.
pub fn endless(status: u16, content_type: &str, prefix: &[u8], filler: &[u8]) -> Action {
    Action::Endless {
        status,
        headers: vec![("Content-Type".into(), content_type.into())],
        prefix: prefix.to_vec(),
        filler: filler.to_vec(),
    }
}

/// A reply whose body comes one byte every `every` (announced `length` long).
pub fn drip(status: u16, length: u64, every: Duration) -> Action {
    Action::Drip {
        status,
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("Content-Length".into(), length.to_string()),
        ],
        every,
    }
}
