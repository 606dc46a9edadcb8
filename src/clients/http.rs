//! The HTTP core every client shares: one keep-alive pool, timeouts, retries
//! with jittered backoff, URL quoting, Pithos header decoding and counters of
//! requests and bytes that callers (the mount, the benchmarks) read.
//!
//! A server is not trusted to behave: every reply read whole has a size limit
//! fitting its call (a body past it is an error, never memory), every
//! transfer must keep a minimum pace (a server dripping a byte now and then
//! fails the attempt), a reply's headers must come within a deadline, and
//! retries stop at an overall deadline. See [`Options`].

use super::error::ClientError;
use bytes::Bytes;
use futures_util::Stream;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Path characters sent as they are (everything else is %-quoted, UTF-8).
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');
/// Query values: like form encoding, but with %20 for spaces.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~');
/// Header values Pithos wants quoted (names and values of metadata, sources).
const HEADER: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/')
    .remove(b'=')
    .remove(b',')
    .remove(b':')
    .remove(b'@')
    .remove(b';')
    .remove(b' ')
    .remove(b'*');

pub fn quote_path(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

pub fn quote_query(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

/// A secret that never shows in Debug output, logs or error messages.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(t: impl Into<String>) -> Token {
        Token(t.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The environment variable that adjusts [`Options`] for every client made
/// with [`Http::new`] (the mount, the control command): `key=value` pairs
/// separated by commas, durations in seconds, sizes in bytes, for example
/// `PITHOSFS_HTTP_LIMITS=stall_window=5,retry_deadline=20`.
pub const LIMITS_ENV: &str = "PITHOSFS_HTTP_LIMITS";

/// Timeouts, pace, retry policy and reply limits.
#[derive(Debug, Clone)]
pub struct Options {
    pub connect_timeout: Duration,
    /// Longest silence of a connection while a reply is read (the transport's idle timeout).
    pub read_timeout: Duration,
    /// Longest wait for a reply's headers once the request (and its body) went out.
    pub response_timeout: Duration,
    /// The slowest transfer taken, in bytes a second: over every
    /// `stall_window`, a body (sent or received) must move at least this
    /// many bytes a second on average, or the attempt fails as too slow. A
    /// slow but steady link of any size passes; a server that drips a byte
    /// now and then does not.
    pub min_rate: u64,
    pub stall_window: Duration,
    /// Retries after the first attempt, for idempotent requests.
    pub retries: u32,
    /// No new attempt starts later than this after the first one began.
    pub retry_deadline: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Largest reply read whole when the call names no limit of its own:
    /// JSON (one listing page, a catalog, a list of servers).
    pub max_reply: u64,
    /// Largest object read whole into memory without a range (`get_object`).
    pub max_object: u64,
    /// Most entries one listing call reads; a longer listing is an error
    /// unless the caller asked for fewer (the mount shows this many per
    /// folder: a folder of a million objects shows whole).
    pub max_listing: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(60),
            min_rate: 1024,
            stall_window: Duration::from_secs(20),
            retries: 5,
            retry_deadline: Duration::from_secs(60),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(8),
            max_reply: 8 << 20,
            max_object: 1 << 30,
            max_listing: 1_000_000,
        }
    }
}

impl Options {
    /// The defaults, adjusted by [`LIMITS_ENV`] when it is set.
    pub fn from_env() -> Result<Options, ClientError> {
        let mut o = Options::default();
        if let Ok(spec) = std::env::var(LIMITS_ENV) {
            o.apply(&spec).map_err(|e| ClientError::new(format!("{LIMITS_ENV}: {e}")))?;
        }
        Ok(o)
    }

    /// Applies `key=value,...` (the keys are the field names).
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let (k, v) = (k.trim(), v.trim());
            let secs = || -> Result<Duration, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{k} must be seconds between 0 and 86400, not {v:?}"))
            };
            let count = || -> Result<u64, String> {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{k} must be a positive integer, not {v:?}"))
            };
            match k {
                "connect_timeout" => self.connect_timeout = secs()?,
                "read_timeout" => self.read_timeout = secs()?,
                "response_timeout" => self.response_timeout = secs()?,
                "stall_window" => self.stall_window = secs()?,
                "retry_deadline" => self.retry_deadline = secs()?,
                "first_backoff" => self.first_backoff = secs()?,
                "max_backoff" => self.max_backoff = secs()?,
                "min_rate" => self.min_rate = count()?,
                "max_reply" => self.max_reply = count()?,
                "max_object" => self.max_object = count()?,
                "max_listing" => self.max_listing = usize::try_from(count()?).map_err(|e| e.to_string())?,
                "retries" => {
                    self.retries = v.parse().map_err(|_| format!("retries must be a number, not {v:?}"))?;
                }
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        Ok(())
    }
}

/// How much of a reply's body a call reads into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// At most this many bytes; a longer body is an error.
    Max(u64),
    /// A ranged read of `len` bytes from `start`. A 206 reply holds at most
    /// `len` bytes (more is an error); a 200 reply (a server that ignored the
    /// range) is the whole object: bytes `start..start + len` of it are kept
    /// and the rest is not read.
    Range { start: u64, len: u64 },
}

/// What is read of an error reply's body: enough for its message.
const ERROR_BODY: u64 = 64 << 10;

/// Pieces a request body is sent in (so its progress can be watched).
const UPLOAD_PIECE: usize = 256 << 10;

/// Counters of traffic, shared by every client made from one `Http`.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    retries: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub retries: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl std::ops::Sub for StatsSnapshot {
    type Output = StatsSnapshot;
    fn sub(self, o: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests - o.requests,
            retries: self.retries - o.retries,
            bytes_up: self.bytes_up - o.bytes_up,
            bytes_down: self.bytes_down - o.bytes_down,
        }
    }
}

struct Shared {
    client: reqwest::Client,
    stats: Stats,
    options: Options,
}

/// An endpoint (base URL, optional token) over the shared pool.
#[derive(Clone)]
pub struct Http {
    shared: Arc<Shared>,
    base: String,
    token: Option<Token>,
    /// Pithos (and Plankton) percent-encode header text; plain Swift does not.
    pithos_quoting: bool,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http").field("base", &self.base).field("token", &self.token).finish()
    }
}

impl Http {
    /// An endpoint with the default options (adjusted by [`LIMITS_ENV`]).
    pub fn new(base_url: &str, token: Option<&str>) -> Result<Http, ClientError> {
        Http::with_options(base_url, token, Options::from_env()?)
    }

    pub fn with_options(base_url: &str, token: Option<&str>, options: Options) -> Result<Http, ClientError> {
        let base = check_url(base_url)?;
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::new(format!("Cannot set up the HTTP client: {e}")))?;
        Ok(Http {
            shared: Arc::new(Shared { client, stats: Stats::default(), options }),
            base,
            token: token.map(Token::new),
            pithos_quoting: true,
        })
    }

    /// The same pool, counters and token at another base URL (a catalog endpoint).
    pub fn at(&self, base_url: &str) -> Result<Http, ClientError> {
        Ok(Http { base: check_url(base_url)?, ..self.clone() })
    }

    /// The same pool and counters with another token.
    pub fn with_token(&self, token: Option<&str>) -> Http {
        Http { token: token.map(Token::new), ..self.clone() }
    }

    /// Plain OpenStack Swift: header text is sent and read as is.
    pub fn plain_quoting(mut self) -> Http {
        self.pithos_quoting = false;
        self
    }

    /// Whether this endpoint is Pithos+ (rather than a plain Swift).
    pub fn speaks_pithos(&self) -> bool {
        self.pithos_quoting
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.shared.stats;
        StatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            bytes_up: s.bytes_up.load(Ordering::Relaxed),
            bytes_down: s.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// A header value as this endpoint wants it: %-quoted for Pithos; for
    /// Swift as is, and non-ASCII refused.
    pub fn quote_header(&self, v: &str) -> Result<String, ClientError> {
        if self.pithos_quoting {
            Ok(utf8_percent_encode(v, HEADER).to_string())
        } else if v.is_ascii() {
            Ok(v.to_string())
        } else {
            Err(ClientError::new(format!("Header value {v:?} is not ASCII, which this server cannot take")))
        }
    }

    /// A request to `path` (unquoted, relative to the base; "" for the base itself).
    pub fn request(&self, method: Method, path: &str) -> Call<'_> {
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE);
        Call {
            http: self,
            method,
            path: path.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            idempotent,
            ok: Vec::new(),
            auth: true,
            limit: None,
        }
    }
}

fn check_url(u: &str) -> Result<String, ClientError> {
    let trimmed = u.trim().trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Ok(trimmed.to_string()),
        _ => Err(ClientError::new(format!("{u:?} is not an http(s) URL"))),
    }
}

/// One request being built.
pub struct Call<'a> {
    http: &'a Http,
    method: Method,
    path: String,
    query: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    idempotent: bool,
    ok: Vec<u16>,
    auth: bool,
    limit: Option<BodyLimit>,
}

impl<'a> Call<'a> {
    pub fn query(mut self, k: &str, v: impl ToString) -> Self {
        self.query.push((k.to_string(), Some(v.to_string())));
        self
    }
    pub fn query_opt(self, k: &str, v: Option<impl ToString>) -> Self {
        match v {
            Some(v) => self.query(k, v),
            None => self,
        }
    }
    /// A parameter that counts by presence (`?update`).
    pub fn flag(mut self, k: &str) -> Self {
        self.query.push((k.to_string(), None));
        self
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn header_opt(self, k: &str, v: Option<impl Into<String>>) -> Self {
        match v {
            Some(v) => self.header(k, v),
            None => self,
        }
    }
    pub fn body(mut self, b: impl Into<Bytes>) -> Self {
        self.body = Some(b.into());
        self
    }
    pub fn json(self, v: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(v).unwrap_or_default();
        self.header("Content-Type", "application/json").body(body)
    }
    /// Statuses that count as success (default: any 2xx).
    pub fn ok(mut self, codes: &[u16]) -> Self {
        self.ok = codes.to_vec();
        self
    }
    /// Whether the request may be sent again after a failure (GET, HEAD, PUT
    /// and DELETE are; a POST is when its effect is, like a block upload).
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
    /// Sends no token (public objects, the token call itself).
    pub fn anonymous(mut self) -> Self {
        self.auth = false;
        self
    }
    /// How much of the reply's body may be read (default: `Options::max_reply`).
    pub fn limit(mut self, limit: BodyLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    fn url(&self) -> String {
        let mut url = self.http.base.clone();
        if !self.path.is_empty() {
            url.push('/');
            url.push_str(&quote_path(self.path.trim_start_matches('/')));
        }
        if !self.query.is_empty() {
            url.push('?');
            let parts: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{}={}", quote_query(k), quote_query(v)),
                    None => quote_query(k),
                })
                .collect();
            url.push_str(&parts.join("&"));
        }
        url
    }

    fn build_headers(&self) -> Result<HeaderMap, ClientError> {
        let mut map = HeaderMap::new();
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ClientError::new(format!("{k:?} is not a valid header name")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| ClientError::new(format!("The value of header {k} is not valid header text")))?;
            map.append(name, value);
        }
        if self.auth {
            if let Some(t) = &self.http.token {
                let mut v = HeaderValue::from_str(t.expose())
                    .map_err(|_| ClientError::new("The token holds characters a header cannot carry"))?;
                v.set_sensitive(true);
                map.insert("X-Auth-Token", v);
            }
        }
        Ok(map)
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let o = &self.http.shared.options;
        let exp = o.first_backoff.saturating_mul(1u32 << attempt.min(16)).min(o.max_backoff);
        let jittered = exp.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        match retry_after {
            Some(ra) => ra.min(Duration::from_secs(30)).max(jittered),
            None => jittered,
        }
    }

    /// Whether another attempt may start after waiting `wait` (bounded by
    /// `retries` and `retry_deadline`); returns the wait, clipped to the deadline.
    fn may_retry(&self, attempt: u32, started: Instant, wait: Duration) -> Option<Duration> {
        let o = &self.http.shared.options;
        let left = o.retry_deadline.checked_sub(started.elapsed())?;
        (attempt < o.retries).then_some(wait.min(left))
    }

    /// Sends, retrying what may be retried, and reads the whole reply
    /// (within the call's body limit).
    pub async fn send(self) -> Result<Reply, ClientError> {
        let stats = &self.http.shared.stats;
        let url = self.url();
        let headers = self.build_headers()?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let resp = self.send_once(&url, headers.clone(), None).await;
            let (failure, retry_after) = match resp {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retryable_status = self.idempotent && matches!(status, 500 | 502 | 503 | 504);
                    if retryable_status && self.may_retry(attempt, started, Duration::ZERO).is_some() {
                        let retry_after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        (ClientError::from_reply(status, b""), retry_after)
                    } else {
                        let head = ReplyHead::of(&resp, self.http.pithos_quoting);
                        match self.read_body(resp, status).await {
                            Ok(body) => return self.check(Reply { status, headers: head.headers, body }),
                            Err(Failure::Retry(e)) if self.idempotent => (e, None),
                            Err(Failure::Retry(e) | Failure::Final(e)) => return Err(e),
                        }
                    }
                }
                Err((e, sent)) if self.idempotent || !sent => (e, None),
                Err((e, _)) => return Err(e),
            };
            let Some(wait) = self.may_retry(attempt, started, self.backoff(attempt, retry_after)) else {
                return Err(failure);
            };
            tracing::info!(
                "{}: retrying in {wait:?} (attempt {}): {}",
                self.describe_call(),
                attempt + 2,
                failure.message
            );
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Sends (connection failures retried as in `send`) and hands back the
    /// body as a stream, for downloads that write as they read. The stream
    /// keeps the minimum pace.
    pub async fn send_streaming(self) -> Result<Streaming, ClientError> {
        let url = self.url();
        let headers = self.build_headers()?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            match self.send_once(&url, headers.clone(), None).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let head = ReplyHead::of(&resp, self.http.pithos_quoting);
                    if !self.is_ok(status) {
                        let body = self.read_body(resp, status).await.unwrap_or_default();
                        return Err(ClientError::from_reply(status, &body));
                    }
                    let pace = Pace::new(&self.http.shared.options, self.describe_call());
                    return Ok(Streaming { status, headers: head.headers, resp, http: self.http.clone(), pace });
                }
                Err((e, sent)) if self.idempotent || !sent => {
                    let Some(wait) = self.may_retry(attempt, started, self.backoff(attempt, None)) else {
                        return Err(e);
                    };
                    self.http.shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        "{}: retrying in {wait:?} (attempt {}): {}",
                        self.describe_call(),
                        attempt + 2,
                        e.message
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Sends once with a body streamed from `body`, `len` bytes long. A stream
    /// cannot be replayed, so this is never retried: the caller starts over
    /// with a new stream if it wants another attempt. The upload must keep
    /// the minimum pace, however long it is.
    pub async fn send_streamed<S>(self, len: u64, body: S) -> Result<Reply, ClientError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let url = self.url();
        let headers = self.build_headers()?;
        let body: Upload = Box::pin(body);
        let resp = self.send_once(&url, headers, Some((len, body))).await.map_err(|(e, _)| e)?;
        let status = resp.status().as_u16();
        let head = ReplyHead::of(&resp, self.http.pithos_quoting);
        let body = self.read_body(resp, status).await.map_err(Failure::into_error)?;
        self.check(Reply { status, headers: head.headers, body })
    }

    /// One attempt up to the reply's headers: the body goes out in watched
    /// pieces (`upload` when given, else the call's own body), then the
    /// headers must come within `response_timeout`. The error tells whether
    /// the request may have reached the server.
    async fn send_once(
        &self,
        url: &str,
        headers: HeaderMap,
        upload: Option<(u64, Upload)>,
    ) -> Result<reqwest::Response, (ClientError, bool)> {
        let stats = &self.http.shared.stats;
        let progress = Arc::new(Progress::default());
        let mut rb = self.http.shared.client.request(self.method.clone(), url).headers(headers);
        let upload = upload.or_else(|| {
            let b = self.body.clone().filter(|b| !b.is_empty())?;
            let len = b.len() as u64;
            let pieces = futures_util::stream::iter(
                (0..b.len()).step_by(UPLOAD_PIECE).map(move |at| Ok(b.slice(at..(at + UPLOAD_PIECE).min(b.len())))),
            );
            Some((len, Box::pin(pieces) as Upload))
        });
        let len = upload.as_ref().map_or(0, |(len, _)| *len);
        match upload {
            Some((len, body)) => {
                let counted = Counted { inner: body, len, progress: progress.clone() };
                rb = rb.header("Content-Length", len).body(reqwest::Body::wrap_stream(counted));
            }
            // An empty body goes out without a length unless told: Swift then answers 411.
            None if matches!(self.method, Method::PUT | Method::POST) => rb = rb.header("Content-Length", "0"),
            None => {}
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let reply = tokio::select! {
            r = rb.send() => r,
            e = self.watch_request(&progress, len > 0) => return Err((e, true)),
        };
        match reply {
            Ok(r) => {
                // The call (no token: headers are not logged), its answer and how long the head took.
                tracing::debug!("{}: {} in {} ms", self.describe_call(), r.status(), started.elapsed().as_millis());
                stats.bytes_up.fetch_add(progress.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
                Ok(r)
            }
            Err(e) => {
                let sent = !e.is_connect();
                Err((self.fail(&describe(&e)), sent))
            }
        }
    }

    /// Resolves (with the error) when the attempt must be given up: an
    /// upload slower than the minimum pace, or no reply within the timeout.
    async fn watch_request(&self, progress: &Progress, uploading: bool) -> ClientError {
        let o = &self.http.shared.options;
        while uploading && !progress.done.load(Ordering::Acquire) {
            let (before, since) = (progress.bytes.load(Ordering::Relaxed), Instant::now());
            tokio::select! {
                _ = tokio::time::sleep(o.stall_window) => {}
                _ = progress.finished.notified() => break,
            }
            if progress.done.load(Ordering::Acquire) {
                break;
            }
            let moved = progress.bytes.load(Ordering::Relaxed).saturating_sub(before);
            if let Some(slow) = too_slow(o.min_rate, moved, since.elapsed()) {
                return self.fail(&format!("sending too slowly: {slow}"));
            }
        }
        tokio::time::sleep(o.response_timeout).await;
        self.fail(&format!("no reply within {} s", o.response_timeout.as_secs_f64()))
    }

    /// Reads the body of a reply with the given status, within the call's limit and the pace.
    async fn read_body(&self, mut resp: reqwest::Response, status: u16) -> Result<Bytes, Failure> {
        let plan = self.plan(status);
        let announced = resp.content_length();
        if plan.strict && announced.is_some_and(|n| n > plan.keep) {
            return Err(Failure::Final(self.too_long(plan.keep)));
        }
        let mut buf = bytes::BytesMut::new();
        if let Some(n) = announced {
            buf.reserve(n.saturating_sub(plan.skip).min(plan.keep).min(64 << 20) as usize);
        }
        let stats = &self.http.shared.stats;
        let mut pace = Pace::new(&self.http.shared.options, self.describe_call());
        let mut skip = plan.skip;
        while let Some(c) = pace.chunk(&mut resp).await.map_err(Failure::Retry)? {
            stats.bytes_down.fetch_add(c.len() as u64, Ordering::Relaxed);
            let c = if skip > 0 {
                let n = skip.min(c.len() as u64);
                skip -= n;
                c.slice(n as usize..)
            } else {
                c
            };
            let room = plan.keep - buf.len() as u64;
            if c.len() as u64 > room {
                if plan.strict {
                    return Err(Failure::Final(self.too_long(plan.keep)));
                }
                // All that is wanted is here: the rest is never read.
                buf.extend_from_slice(&c[..room as usize]);
                break;
            }
            buf.extend_from_slice(&c);
        }
        Ok(buf.freeze())
    }

    /// What to keep of a body with this status.
    fn plan(&self, status: u16) -> ReadPlan {
        if !self.is_ok(status) {
            // A fault: its message is at the start.
            return ReadPlan { skip: 0, keep: ERROR_BODY, strict: false };
        }
        match self.limit.unwrap_or(BodyLimit::Max(self.http.shared.options.max_reply)) {
            BodyLimit::Max(n) => ReadPlan { skip: 0, keep: n, strict: true },
            BodyLimit::Range { len, .. } if status == 206 => ReadPlan { skip: 0, keep: len, strict: true },
            BodyLimit::Range { start, len } => ReadPlan { skip: start, keep: len, strict: false },
        }
    }

    fn too_long(&self, limit: u64) -> ClientError {
        self.fail(&format!("{REPLY_TOO_LONG} {limit} bytes, the most this call takes"))
    }

    /// `GET account/container/name to host:port`, for messages (the path
    /// cut to 160 characters: a server's names can be long). An anonymous
    /// call names no path: a public link's path is a secret of its own.
    fn describe_call(&self) -> String {
        let path = if self.auth { self.path.trim_start_matches('/') } else { "" };
        let path = match path.char_indices().nth(160) {
            Some((at, _)) => format!("{}…", &path[..at]),
            None => path.to_string(),
        };
        let space = if path.is_empty() { "" } else { " " };
        format!("{}{space}{path} to {}", self.method, host_of(&self.http.base))
    }

    fn fail(&self, what: &str) -> ClientError {
        ClientError::new(format!("{}: {what}", self.describe_call()))
    }

    fn is_ok(&self, status: u16) -> bool {
        if self.ok.is_empty() {
            (200..300).contains(&status)
        } else {
            self.ok.contains(&status)
        }
    }

    fn check(&self, reply: Reply) -> Result<Reply, ClientError> {
        if self.is_ok(reply.status) {
            Ok(reply)
        } else {
            Err(ClientError::from_reply(reply.status, &reply.body))
        }
    }
}

/// The start of the message of a reply longer than its call takes.
pub const REPLY_TOO_LONG: &str = "the reply is longer than";

/// How a failed attempt ends: `Retry` may succeed on another attempt (a
/// body cut short or too slow), `Final` never would (a body too long).
enum Failure {
    Retry(ClientError),
    Final(ClientError),
}

impl Failure {
    fn into_error(self) -> ClientError {
        match self {
            Failure::Retry(e) | Failure::Final(e) => e,
        }
    }
}

/// What to keep of a body: `keep` bytes after the first `skip`; `strict`:
/// a longer body is an error (else the rest is left unread).
struct ReadPlan {
    skip: u64,
    keep: u64,
    strict: bool,
}

type Upload = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// How far a request body has gone out.
#[derive(Default)]
struct Progress {
    bytes: AtomicU64,
    done: AtomicBool,
    finished: tokio::sync::Notify,
}

/// A request body that counts what the transport took of it. It is done
/// once `len` bytes went (the transport stops asking then).
struct Counted {
    inner: Upload,
    len: u64,
    progress: Arc<Progress>,
}

impl Stream for Counted {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        let p = &self.progress;
        let finished = match &polled {
            Poll::Ready(Some(Ok(c))) => {
                p.bytes.fetch_add(c.len() as u64, Ordering::Relaxed) + c.len() as u64 >= self.len
            }
            Poll::Ready(_) => true,
            Poll::Pending => false,
        };
        if finished && !p.done.swap(true, Ordering::AcqRel) {
            p.finished.notify_one();
        }
        polled
    }
}

/// Why `moved` bytes in `elapsed` are below the minimum pace, if they are.
fn too_slow(min_rate: u64, moved: u64, elapsed: Duration) -> Option<String> {
    let need = (min_rate as f64 * elapsed.as_secs_f64()) as u64;
    (moved < need).then(|| {
        format!("{moved} bytes in {:.1} s, below the minimum of {min_rate} bytes a second", elapsed.as_secs_f64())
    })
}

/// The minimum pace of a body being received: over every window, at least
/// `min_rate` bytes a second, else the read fails (a body that keeps that
/// pace takes at most its size divided by the rate, plus a window).
struct Pace {
    min_rate: u64,
    window: Duration,
    window_start: Instant,
    moved: u64,
    call: String,
}

impl Pace {
    fn new(o: &Options, call: String) -> Pace {
        Pace { min_rate: o.min_rate, window: o.stall_window, window_start: Instant::now(), moved: 0, call }
    }

    /// The next piece of the body, or None at its end.
    async fn chunk(&mut self, resp: &mut reqwest::Response) -> Result<Option<Bytes>, ClientError> {
        loop {
            let check_at = tokio::time::Instant::from_std(self.window_start + self.window);
            match tokio::time::timeout_at(check_at, resp.chunk()).await {
                Ok(Ok(Some(c))) => {
                    self.moved += c.len() as u64;
                    self.check()?;
                    return Ok(Some(c));
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => {
                    return Err(ClientError::new(format!("{}: the reply was cut short: {}", self.call, describe(&e))))
                }
                Err(_) => self.check()?,
            }
        }
    }

    /// At the end of each window: enough bytes came, or the read fails.
    fn check(&mut self) -> Result<(), ClientError> {
        let elapsed = self.window_start.elapsed();
        if elapsed < self.window {
            return Ok(());
        }
        if let Some(slow) = too_slow(self.min_rate, self.moved, elapsed) {
            return Err(ClientError::new(format!("{}: the reply comes too slowly: {slow}", self.call)));
        }
        self.window_start = Instant::now();
        self.moved = 0;
        Ok(())
    }
}

/// What went wrong, without the URL (reqwest's own text names it).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "error reading the body"
    } else {
        "request failed"
    });
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn host_of(base: &str) -> String {
    reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0))))
        .unwrap_or_default()
}

/// Headers of a reply: names lower-cased, Pithos-quoted values decoded.
struct ReplyHead {
    headers: Vec<(String, String)>,
}

impl ReplyHead {
    fn of(resp: &reqwest::Response, pithos: bool) -> ReplyHead {
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                let name = k.as_str().to_string();
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                if pithos && decoded(&name) {
                    let n = percent_decode_str(&name).decode_utf8_lossy().to_lowercase();
                    (n, percent_decode_str(&value).decode_utf8_lossy().into_owned())
                } else {
                    (name, value)
                }
            })
            .collect();
        ReplyHead { headers }
    }
}

/// The headers kamaki percent-decodes.
fn decoded(name: &str) -> bool {
    ["x-account-", "x-container-", "x-object-", "content-", "x-image-meta-"].iter().any(|p| name.starts_with(p))
        || matches!(name, "etag" | "last-modified")
}

/// A whole reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ClientError::with_status(format!("The server answered malformed JSON: {e}"), self.status)
                .detail(String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned())
        })
    }
    /// Headers starting with `prefix`, prefix removed (`x-object-meta-` → meta).
    pub fn headers_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.headers.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|r| (r.to_string(), v.clone()))).collect()
    }
    /// A header parsed as an integer; a clear error when absent or malformed.
    pub fn header_u64(&self, name: &str) -> Result<u64, ClientError> {
        let v = self.header(name).ok_or_else(|| ClientError::new(format!("The reply has no {name} header")))?;
        v.trim().parse().map_err(|_| ClientError::new(format!("The reply's {name} header is not a number: {v:?}")))
    }
}

pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// A reply whose body is read as it arrives.
pub struct Streaming {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    resp: reqwest::Response,
    http: Http,
    pace: Pace,
}

impl Streaming {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    /// The next piece of the body, or None at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        let c = self.pace.chunk(&mut self.resp).await?;
        if let Some(c) = &c {
            self.http.shared.stats.bytes_down.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_quote_like_kamaki() {
        let http = Http::new("http://h:1/v1/", Some("secret")).unwrap();
        let c = http.request(Method::GET, "acct/cont/dir/ά b%.txt").query("format", "json").flag("update");
        assert_eq!(c.url(), "http://h:1/v1/acct/cont/dir/%CE%AC%20b%25.txt?format=json&update");
        assert!(Http::new("ftp://x", None).is_err());
        assert!(Http::new("not a url", None).is_err());
        assert!(!format!("{http:?}").contains("secret"));
    }

    #[test]
    fn options_from_text() {
        let mut o = Options::default();
        o.apply("stall_window=2.5, min_rate=10,retries=0,max_listing=7,max_reply=100").unwrap();
        assert_eq!(o.stall_window, Duration::from_millis(2500));
        assert_eq!((o.min_rate, o.retries, o.max_listing, o.max_reply), (10, 0, 7, 100));
        for bad in ["stall_window", "stall_window=0", "stall_window=-1", "stall_window=1e9", "min_rate=0", "nope=1"] {
            assert!(Options::default().apply(bad).is_err(), "{bad}");
        }
        assert!(Options::default().apply("").is_ok());
    }

    #[test]
    fn minimum_pace() {
        let s = Duration::from_secs(1);
        assert_eq!(too_slow(1024, 1024, s), None);
        assert_eq!(too_slow(1024, 10_240, 10 * s), None);
        assert!(too_slow(1024, 1023, s).unwrap().contains("1023 bytes in 1.0 s"));
        assert!(too_slow(1024, 3, 20 * s).is_some());
    }

    #[test]
    fn header_quoting_per_server_kind() {
        let pithos = Http::new("http://h", None).unwrap();
        assert_eq!(pithos.quote_header("α 100%").unwrap(), "%CE%B1 100%25");
        let swift = pithos.clone().plain_quoting();
        assert_eq!(swift.quote_header("plain").unwrap(), "plain");
        assert!(swift.quote_header("α").is_err());
    }
}
