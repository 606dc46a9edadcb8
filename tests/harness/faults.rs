//! A fault-injecting HTTP proxy for tests: it stands between a real mount and
//! a real local cloud, forwards every request, and spoils a share of them on
//! purpose: a request cut mid-body, a reply cut mid-body (after the server
//! did the work), a 503 with or without `Retry-After`, a stall, a TCP reset.
//!
//! Which request gets which fault is decided by a seed: of every 20 requests
//! (at 5%) the proxy sees while faults are on, the one `hash(seed, window)`
//! picks is spoiled, so a run that failed can be repeated
//! (`PITHOSFS_FAULT_SEED`; every proxy prints its seed). Counters say what
//! was injected, per kind.
//!
//! A test can also *hold* one request (before or after the server saw it)
//! until it says so: the moment to kill a process mid-commit.
//!
//! The identity service's replies are rewritten so that the service catalog
//! names the proxy: a client that starts at `FaultProxy::identity()` stays on it.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to a request it spoils.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Reads half of the request's body (none when it has none), then closes
    /// the connection: the server never sees the request.
    CutRequest,
    /// Forwards the request (the server does the work), then sends the
    /// reply's status, headers and half its body and closes the connection;
    /// a reply without a body is cut before its status line.
    CutReply,
    /// Answers 503 without `Retry-After` (the server never sees the request).
    Unavailable,
    /// Answers 503 with `Retry-After: 1` (the server never sees the request).
    RetryAfter,
    /// Reads the request and answers nothing for the stall time (longer than
    /// the client waits for a reply), then closes: a hung server.
    Stall,
    /// Forwards the request (the server does the work), then resets the
    /// connection (TCP RST) instead of replying.
    Reset,
}

impl Fault {
    pub const ALL: [Fault; 6] =
        [Fault::CutRequest, Fault::CutReply, Fault::Unavailable, Fault::RetryAfter, Fault::Stall, Fault::Reset];

    pub fn name(self) -> &'static str {
        match self {
            Fault::CutRequest => "cut request",
            Fault::CutReply => "cut reply",
            Fault::Unavailable => "503",
            Fault::RetryAfter => "503 + Retry-After",
            Fault::Stall => "stall",
            Fault::Reset => "reset",
        }
    }

    fn index(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// Which faults are injected and how often.
#[derive(Debug, Clone)]
struct Plan {
    /// Faulty requests per million.
    per_million: u64,
    kinds: Vec<Fault>,
    stall: Duration,
}

/// Counts of what the proxy saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests seen in all.
    pub requests: u64,
    /// Requests seen while faults were on.
    pub exposed: u64,
    /// Faults injected, per kind (in the order of `Fault::ALL`).
    pub injected: [u64; 6],
}

impl Counts {
    pub fn of(&self, f: Fault) -> u64 {
        self.injected[f.index()]
    }
    pub fn total(&self) -> u64 {
        self.injected.iter().sum()
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        let mut injected = [0; 6];
        for (i, n) in injected.iter_mut().enumerate() {
            *n = self.injected[i] - o.injected[i];
        }
        Counts { requests: self.requests - o.requests, exposed: self.exposed - o.exposed, injected }
    }
}

/// When a held request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before it goes to the server.
    BeforeServer,
    /// After the server answered, before the reply goes back.
    AfterServer,
}

type Matcher = Box<dyn Fn(&str, &str, &str) -> bool + Send + Sync>;

struct HoldRule {
    matches: Matcher,
    stage: Stage,
    gate: Arc<Gate>,
}

/// One held request: whether it came, and the word to let it go.
#[derive(Default)]
struct Gate {
    arrived: AtomicBool,
    released: tokio::sync::Notify,
    open: AtomicBool,
}

/// A request held by the proxy (see `FaultProxy::hold`).
#[derive(Clone)]
pub struct Held(Arc<Gate>);

impl Held {
    /// Whether the request came and is being held.
    pub fn arrived(&self) -> bool {
        self.0.arrived.load(Ordering::SeqCst)
    }
    /// Lets the held request go on (and any later one: the hold is spent).
    pub fn release(&self) {
        self.0.open.store(true, Ordering::SeqCst);
        self.0.released.notify_waiters();
    }
}

/// A fault for the first request a test names.
struct Target {
    matches: Matcher,
    fault: Fault,
    hits: Arc<AtomicU64>,
}

struct State {
    upstream: String,
    me: String,
    client: reqwest::Client,
    seed: u64,
    plan: Mutex<Option<Plan>>,
    requests: AtomicU64,
    exposed: AtomicU64,
    /// Requests seen since the plan was set (windows count from its start).
    since_plan: AtomicU64,
    injected: [AtomicU64; 6],
    holds: Mutex<Vec<HoldRule>>,
    targets: Mutex<Vec<Target>>,
    /// One line per fault injected: `n kind METHOD path`.
    journal: Mutex<Vec<String>>,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    pub url: String,
    pub seed: u64,
    state: Arc<State>,
    rt: Option<tokio::runtime::Runtime>,
}

/// The seed of `PITHOSFS_FAULT_SEED`, else one from the clock.
pub fn seed_from_env() -> u64 {
    match std::env::var("PITHOSFS_FAULT_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("PITHOSFS_FAULT_SEED={s:?} is not a number")),
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            splitmix(now.as_nanos() as u64 ^ u64::from(std::process::id()))
        }
    }
}

/// A 64-bit mixer (splitmix64's finalizer): a seed and a number give a
/// well-spread value, the same on every run.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FaultProxy {
    /// A proxy in front of the server at `upstream` (its base URL), faults off.
    pub fn start(upstream: &str, seed: u64) -> FaultProxy {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        eprintln!("fault proxy at {url}: seed {seed} (PITHOSFS_FAULT_SEED={seed} repeats this run's choices)");
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            me: url.clone(),
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            seed,
            plan: Mutex::new(None),
            requests: AtomicU64::new(0),
            exposed: AtomicU64::new(0),
            since_plan: AtomicU64::new(0),
            injected: Default::default(),
            holds: Mutex::new(Vec::new()),
            targets: Mutex::new(Vec::new()),
            journal: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let _ = stream.set_nodelay(true);
                let fd = stream.as_raw_fd();
                let st = st.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(st.clone(), req, fd));
                    // A spoiled request ends its connection with an error: nothing to report.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { url, seed, state, rt: Some(rt) }
    }

    pub fn identity(&self) -> String {
        format!("{}{}", self.url, pithosfs::cloud::IDENTITY_PATH)
    }

    /// From now on, `per_million` requests in a million get one of `kinds`
    /// (picked by the seed); a stall lasts `stall`.
    pub fn inject(&self, per_million: u64, kinds: &[Fault], stall: Duration) {
        assert!(!kinds.is_empty() && per_million <= 1_000_000);
        let mut plan = self.state.plan.lock().unwrap();
        self.state.since_plan.store(0, Ordering::SeqCst);
        *plan = Some(Plan { per_million, kinds: kinds.to_vec(), stall });
    }

    /// No more faults: an honest proxy from now on.
    pub fn calm(&self) {
        *self.state.plan.lock().unwrap() = None;
    }

    pub fn counts(&self) -> Counts {
        let mut injected = [0; 6];
        for (i, n) in injected.iter_mut().enumerate() {
            *n = self.state.injected[i].load(Ordering::SeqCst);
        }
        Counts {
            requests: self.state.requests.load(Ordering::SeqCst),
            exposed: self.state.exposed.load(Ordering::SeqCst),
            injected,
        }
    }

    /// The faults injected so far, one line each (`n kind METHOD path`).
    pub fn journal(&self) -> Vec<String> {
        self.state.journal.lock().unwrap().clone()
    }

    /// Spoils the first request for which `matches(method, decoded path,
    /// query)` holds with `fault` (faults on or off); returns how many it
    /// spoiled (0 or 1).
    pub fn spoil(&self, matches: impl Fn(&str, &str, &str) -> bool + Send + Sync + 'static, fault: Fault) -> Hits {
        let hits = Arc::new(AtomicU64::new(0));
        self.state.targets.lock().unwrap().push(Target { matches: Box::new(matches), fault, hits: hits.clone() });
        Hits(hits)
    }

    /// Holds the first request for which `matches(method, decoded path,
    /// query)` holds, at `stage`, until the returned `Held` is released.
    pub fn hold(&self, matches: impl Fn(&str, &str, &str) -> bool + Send + Sync + 'static, stage: Stage) -> Held {
        let gate = Arc::new(Gate::default());
        self.state.holds.lock().unwrap().push(HoldRule { matches: Box::new(matches), stage, gate: gate.clone() });
        Held(gate)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Held requests go on, so that nothing waits on a proxy that is gone.
        for h in self.state.holds.lock().unwrap().iter() {
            Held(h.gate.clone()).release();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// How many requests a `spoil` rule spoiled.
#[derive(Clone)]
pub struct Hits(Arc<AtomicU64>);

impl Hits {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a connection was dropped on purpose.
#[derive(Debug)]
struct Spoiled(&'static str);

impl std::fmt::Display for Spoiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Spoiled {}

/// The fault (if any) for the next request, and a number for where to cut.
/// Requests seen since faults were turned on come in windows of a million
/// divided by the rate (20 at 5%): one request of each window, at a place
/// the seed picks, is spoiled. So the rate holds exactly even in a short
/// run, and the same seed spoils the same places.
fn choose(st: &State) -> (u64, Option<(Fault, u64)>) {
    let n = st.requests.fetch_add(1, Ordering::SeqCst);
    let (plan, k) = {
        let plan = st.plan.lock().unwrap();
        match plan.clone() {
            Some(p) => (p, st.since_plan.fetch_add(1, Ordering::SeqCst)),
            None => return (n, None),
        }
    };
    st.exposed.fetch_add(1, Ordering::SeqCst);
    if plan.per_million == 0 {
        return (n, None);
    }
    let window = (1_000_000 / plan.per_million).max(1);
    let x = splitmix(st.seed ^ splitmix(k / window));
    if k % window != x % window {
        return (n, None);
    }
    let kind = plan.kinds[((x >> 32) as usize) % plan.kinds.len()];
    (n, Some((kind, splitmix(x))))
}

/// The fault of the first unspent `spoil` rule this request matches.
fn targeted(st: &State, method: &str, path: &str, query: &str) -> Option<Fault> {
    let targets = st.targets.lock().unwrap();
    let t = targets.iter().find(|t| t.hits.load(Ordering::SeqCst) == 0 && (t.matches)(method, path, query))?;
    t.hits.fetch_add(1, Ordering::SeqCst);
    Some(t.fault)
}

/// Where a targeted fault cuts: a number from the path, the same every run.
fn n_cut(path: &str) -> u64 {
    splitmix(path.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))))
}

fn stall_time(st: &State) -> Duration {
    st.plan.lock().unwrap().as_ref().map_or(Duration::from_secs(2), |p| p.stall)
}

/// A held request's gate, if one waits for this request at `stage`.
fn gate_for(st: &State, method: &str, path: &str, query: &str, stage: Stage) -> Option<Arc<Gate>> {
    let holds = st.holds.lock().unwrap();
    holds
        .iter()
        .find(|h| {
            h.stage == stage
                && !h.gate.arrived.load(Ordering::SeqCst)
                && !h.gate.open.load(Ordering::SeqCst)
                && (h.matches)(method, path, query)
        })
        .map(|h| {
            h.gate.arrived.store(true, Ordering::SeqCst);
            h.gate.clone()
        })
}

async fn wait_open(gate: &Gate) {
    loop {
        let released = gate.released.notified();
        if gate.open.load(Ordering::SeqCst) {
            return;
        }
        // Checked again now and then: a release may come between the two lines above.
        let _ = tokio::time::timeout(Duration::from_millis(50), released).await;
    }
}

async fn handle(
    st: Arc<State>,
    req: Request<hyper::body::Incoming>,
    fd: std::os::fd::RawFd,
) -> Result<Response<Body>, Spoiled> {
    let (parts, body) = req.into_parts();
    let method = parts.method.to_string();
    let path = percent_encoding::percent_decode_str(parts.uri.path()).decode_utf8_lossy().into_owned();
    let query = parts.uri.query().unwrap_or("").to_string();
    let (n, fault) = match targeted(&st, &method, &path, &query) {
        Some(f) => (st.requests.fetch_add(1, Ordering::SeqCst), Some((f, n_cut(&path)))),
        None => choose(&st),
    };
    if let Some((kind, _)) = fault {
        st.injected[kind.index()].fetch_add(1, Ordering::SeqCst);
        st.journal.lock().unwrap().push(format!("{n} {} {method} {path}?{query}", kind.name()));
    }
    let mut body = Body::new(body).into_data_stream();
    let announced: u64 =
        parts.headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    if let Some((Fault::CutRequest, _)) = fault {
        // Half the body (at least its first piece, when it has one), then away.
        let mut read = 0u64;
        while read < announced / 2 {
            match body.next().await {
                Some(Ok(piece)) => read += piece.len() as u64,
                _ => break,
            }
        }
        return Err(Spoiled("request cut"));
    }
    let mut whole = bytes::BytesMut::new();
    while let Some(piece) = body.next().await {
        match piece {
            Ok(p) => whole.extend_from_slice(&p),
            Err(_) => return Err(Spoiled("the client went away")),
        }
    }
    match fault {
        Some((Fault::Unavailable, _)) => return Ok(made(503, None)),
        Some((Fault::RetryAfter, _)) => return Ok(made(503, Some("1"))),
        Some((Fault::Stall, _)) => {
            tokio::time::sleep(stall_time(&st)).await;
            return Err(Spoiled("stalled"));
        }
        _ => {}
    }
    if let Some(gate) = gate_for(&st, &method, &path, &query, Stage::BeforeServer) {
        wait_open(&gate).await;
    }
    let (status, headers, mut out) = match forward(&st, &parts, whole.freeze()).await {
        Ok(r) => r,
        Err(e) => return Ok(Response::builder().status(502).body(Body::from(format!("fault proxy: {e}"))).unwrap()),
    };
    if let Some(gate) = gate_for(&st, &method, &path, &query, Stage::AfterServer) {
        wait_open(&gate).await;
    }
    if path.starts_with(pithosfs::cloud::IDENTITY_PATH) {
        // The catalog names the proxy, so the client comes back here.
        out = Bytes::from(String::from_utf8_lossy(&out).replace(&st.upstream, &st.me));
    }
    match fault {
        Some((Fault::Reset, _)) => {
            // SO_LINGER with a zero timeout: closing sends RST, not FIN.
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: `fd` is this connection's socket, open while its
            // connection task (which runs this handler) lives; the option
            // is a plain struct of the size given.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
            return Err(Spoiled("reset"));
        }
        Some((Fault::CutReply, _)) if out.is_empty() || method == "HEAD" => {
            return Err(Spoiled("reply cut before its status"));
        }
        _ => {}
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let keep_length = method == "HEAD";
    for (k, v) in headers.iter() {
        let hop = matches!(k.as_str(), "transfer-encoding" | "connection");
        if !hop && (keep_length || k.as_str() != "content-length") {
            resp.headers_mut().append(k.clone(), v.clone());
        }
    }
    *resp.body_mut() = match fault {
        Some((Fault::CutReply, at)) => {
            // The whole length is announced; somewhere before its end the body stops.
            let len = out.len() as u64;
            let cut = if len > 1 { 1 + at % (len - 1) } else { 0 } as usize;
            resp.headers_mut().insert("content-length", HeaderValue::from(out.len()));
            let first = futures_util::stream::once(std::future::ready(Ok::<Bytes, std::io::Error>(out.slice(..cut))));
            // A pause, so that the status, headers and first part go out
            // before the connection is dropped.
            let cut_off = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "reply cut"))
            });
            Body::from_stream(first.chain(cut_off))
        }
        _ => Body::from(out),
    };
    Ok(resp)
}

fn made(status: u16, retry_after: Option<&str>) -> Response<Body> {
    let mut b = Response::builder().status(status).header("content-type", "text/plain");
    if let Some(s) = retry_after {
        b = b.header("retry-after", s);
    }
    b.body(Body::from("fault proxy: injected 503\n")).unwrap()
}

async fn forward(
    st: &State,
    parts: &axum::http::request::Parts,
    body: Bytes,
) -> Result<(u16, HeaderMap, Bytes), reqwest::Error> {
    let url = format!("{}{}", st.upstream, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut headers = parts.headers.clone();
    headers.remove("host");
    headers.remove("content-length");
    let r = st.client.request(parts.method.clone(), &url).headers(headers).body(body).send().await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await?;
    Ok((status, headers, body))
}
