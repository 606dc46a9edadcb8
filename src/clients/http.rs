//! The HTTP core every client shares: one keep-alive pool, timeouts, retries
//! with jittered backoff, URL quoting, Pithos header decoding and counters of
//! requests and bytes that callers (the mount, the benchmarks) read.

use super::error::ClientError;
use bytes::Bytes;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// Timeouts and retry policy.
#[derive(Debug, Clone)]
pub struct Options {
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a reply.
    pub read_timeout: Duration,
    /// Retries after the first attempt, for idempotent requests.
    pub retries: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 5,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(8),
        }
    }
}

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
    pub fn new(base_url: &str, token: Option<&str>) -> Result<Http, ClientError> {
        Http::with_options(base_url, token, Options::default())
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

    /// Sends, retrying what may be retried, and reads the whole reply.
    pub async fn send(self) -> Result<Reply, ClientError> {
        let stats = &self.http.shared.stats;
        let retries = self.http.shared.options.retries;
        let url = self.url();
        let headers = self.build_headers()?;
        let mut attempt = 0;
        loop {
            let resp = self.send_once(&url, headers.clone()).await;
            let retry_after;
            let failure = match resp {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if self.idempotent && matches!(status, 500 | 502 | 503 | 504) && attempt < retries {
                        retry_after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        ClientError::from_reply(status, b"")
                    } else {
                        let head = ReplyHead::of(&resp, self.http.pithos_quoting);
                        match read_body(resp, stats).await {
                            Ok(body) => {
                                let reply = Reply { status, headers: head.headers, body };
                                return self.check(reply);
                            }
                            Err(e) if self.idempotent && attempt < retries => {
                                retry_after = None;
                                e
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err((e, sent)) => {
                    if (self.idempotent || !sent) && attempt < retries {
                        retry_after = None;
                        e
                    } else {
                        return Err(e);
                    }
                }
            };
            let wait = self.backoff(attempt, retry_after);
            tracing::debug!(method = %self.method, status = failure.status, ?wait, "retrying: {}", failure.message);
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Sends once (connection failures retried as in `send`) and hands back the
    /// body as a stream, for downloads that write as they read.
    pub async fn send_streaming(self) -> Result<Streaming, ClientError> {
        let retries = self.http.shared.options.retries;
        let url = self.url();
        let headers = self.build_headers()?;
        let mut attempt = 0;
        loop {
            match self.send_once(&url, headers.clone()).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let head = ReplyHead::of(&resp, self.http.pithos_quoting);
                    if !self.is_ok(status) {
                        let body = read_body(resp, &self.http.shared.stats).await.unwrap_or_default();
                        return Err(ClientError::from_reply(status, &body));
                    }
                    return Ok(Streaming { status, headers: head.headers, resp, http: self.http.clone() });
                }
                Err((e, sent)) if (self.idempotent || !sent) && attempt < retries => {
                    self.http.shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                    attempt += 1;
                    tracing::debug!("retrying: {}", e.message);
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Sends once with a body streamed from `body`, `len` bytes long. A stream
    /// cannot be replayed, so this is never retried: the caller starts over
    /// with a new stream if it wants another attempt.
    pub async fn send_streamed<S>(self, len: u64, body: S) -> Result<Reply, ClientError>
    where
        S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let stats = &self.http.shared.stats;
        let url = self.url();
        let headers = self.build_headers()?;
        let rb = self
            .http
            .shared
            .client
            .request(self.method.clone(), &url)
            .headers(headers)
            .header("Content-Length", len)
            .body(reqwest::Body::wrap_stream(body));
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let resp = rb.send().await.map_err(|e| transport_error(&e, &self.method, &self.http.base))?;
        stats.bytes_up.fetch_add(len, Ordering::Relaxed);
        let status = resp.status().as_u16();
        let head = ReplyHead::of(&resp, self.http.pithos_quoting);
        let body = read_body(resp, stats).await?;
        self.check(Reply { status, headers: head.headers, body })
    }

    async fn send_once(&self, url: &str, headers: HeaderMap) -> Result<reqwest::Response, (ClientError, bool)> {
        let stats = &self.http.shared.stats;
        let mut rb = self.http.shared.client.request(self.method.clone(), url).headers(headers);
        match &self.body {
            Some(b) if !b.is_empty() => rb = rb.body(b.clone()),
            // An empty body goes out without a length unless told: Swift then answers 411.
            _ if matches!(self.method, Method::PUT | Method::POST) => rb = rb.header("Content-Length", "0"),
            _ => {}
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        match rb.send().await {
            Ok(r) => {
                stats.bytes_up.fetch_add(self.body.as_ref().map_or(0, |b| b.len() as u64), Ordering::Relaxed);
                Ok(r)
            }
            Err(e) => {
                let sent = !e.is_connect();
                Err((transport_error(&e, &self.method, &self.http.base), sent))
            }
        }
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

async fn read_body(mut resp: reqwest::Response, stats: &Stats) -> Result<Bytes, ClientError> {
    let mut buf = bytes::BytesMut::new();
    if let Some(n) = resp.content_length() {
        buf.reserve(n.min(64 << 20) as usize);
    }
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                stats.bytes_down.fetch_add(c.len() as u64, Ordering::Relaxed);
                buf.extend_from_slice(&c);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => return Err(ClientError::new(format!("The reply was cut short: {}", describe(&e)))),
        }
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

fn transport_error(e: &reqwest::Error, method: &Method, base: &str) -> ClientError {
    let host = reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0))))
        .unwrap_or_default();
    ClientError::new(format!("{method} to {host}: {}", describe(e)))
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
}

impl Streaming {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    /// The next piece of the body, or None at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        match self.resp.chunk().await {
            Ok(Some(c)) => {
                self.http.shared.stats.bytes_down.fetch_add(c.len() as u64, Ordering::Relaxed);
                Ok(Some(c))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(ClientError::new(format!("The reply was cut short: {}", describe(&e)))),
        }
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
    fn header_quoting_per_server_kind() {
        let pithos = Http::new("http://h", None).unwrap();
        assert_eq!(pithos.quote_header("α 100%").unwrap(), "%CE%B1 100%25");
        let swift = pithos.clone().plain_quoting();
        assert_eq!(swift.quote_header("plain").unwrap(), "plain");
        assert!(swift.quote_header("α").is_err());
    }
}
