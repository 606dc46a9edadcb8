//! `pithosfs serve`: a local, Synnefo-compatible cloud (Astakos identity,
//! Pithos+ storage, Cyclades compute and Plankton images) on one host:port,
//! with SQLite for metadata and a content-addressed block directory.
//!
//! URL layout (all under the base URL the server prints):
//!
//! | path | service |
//! |---|---|
//! | `/identity/v2.0` (also `/astakos/identity/v2.0`) | Astakos identity (tokens) |
//! | `/astakos/account/v1.0` | Astakos account (user catalogs, quotas) |
//! | `/pithos/object-store/v1` | Pithos+ |
//! | `/pithos/public/<token>` | published objects, no token needed |
//! | `/cyclades/compute/v2.0` | Cyclades compute |
//! | `/cyclades/image/v1.0` | Plankton |

pub mod astakos;
pub mod blockstore;
pub mod bulk;
pub mod connection;
pub mod cyclades;
pub mod datadir;
pub mod db;
pub mod fault;
pub mod gc;
pub mod images;
pub mod ledger;
pub mod pg;
pub mod pithos;
pub mod plankton;
pub mod sql;
pub mod swift_blocks;
pub mod users;
pub mod wire;

use crate::blocks::{Algorithm, DEFAULT_BLOCK_SIZE};
use axum::body::Body;
use axum::http::{Method, Request, Response};
use blockstore::BlockStore;
use db::Db;
pub use db::MetaAt;
use fault::Fault;
use percent_encoding::percent_decode_str;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use users::{NewUsers, User, UserSpec, Users};
use wire::{Headers, Query};

pub const IDENTITY_PATH: &str = "/identity/v2.0";
pub const ACCOUNT_PATH: &str = "/astakos/account/v1.0";
pub const PITHOS_PATH: &str = "/pithos/object-store/v1";
pub const PUBLIC_PATH: &str = "/pithos/public";
pub const COMPUTE_PATH: &str = "/cyclades/compute/v2.0";
pub const IMAGE_PATH: &str = "/cyclades/image/v1.0";

/// How to run the local cloud.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The base URL clients should use, when it differs from `http://<listen>`.
    pub public_url: Option<String>,
    pub users: Vec<UserSpec>,
    /// Account quota in bytes (0: unlimited).
    pub quota: u64,
    pub block_size: u64,
    /// Seconds a new server spends in BUILD (and a rebooting one in REBOOT).
    pub build_seconds: f64,
    /// Timeouts and the connection cap.
    pub limits: connection::Limits,
    /// When unreferenced blocks are reclaimed.
    pub gc: gc::GcConfig,
    /// Most objects one tree copy, move or delete (`?delimiter=`) may touch.
    pub max_tree_objects: usize,
    /// Synnefo's MD5 mode (`PITHOS_UPDATE_MD5`): an object's `ETag` is the MD5
    /// of its content, not its Merkle hash (see [`pithos::EtagMode`]).
    pub md5_etags: bool,
    /// Registers the public system images ("Debian Base"…) on the first
    /// start of a data directory (see `plankton::register_system_images`).
    pub system_images: bool,
    /// Where blocks are kept.
    pub blocks: BlocksAt,
    /// Where the metadata is kept.
    pub meta: MetaAt,
}

/// Where the local cloud keeps its blocks.
#[derive(Debug, Clone, Default)]
pub enum BlocksAt {
    /// `<DATA>/blocks`, a directory of files.
    #[default]
    Dir,
    /// A Swift container (shared by several servers).
    Swift(swift_blocks::SwiftTarget),
}

/// The file of a data directory that says where its blocks are.
const BLOCKS_RECORD: &str = "blocks.backend";

impl BlocksAt {
    /// How a data directory records it (never the key): `dir`, or
    /// `swift AUTH_URL USER CONTAINER`.
    fn record(&self) -> String {
        match self {
            BlocksAt::Dir => "dir".into(),
            BlocksAt::Swift(t) => format!("swift {} {} {}", t.auth_url, t.user, t.container),
        }
    }
}

/// The file of a data directory that says where its metadata is.
const META_RECORD: &str = "meta.backend";

/// How a data directory records where its metadata is (never a password):
/// `sqlite`, or `postgres URL SCHEMA`.
fn meta_record(at: &MetaAt) -> String {
    match at {
        MetaAt::Sqlite => "sqlite".into(),
        MetaAt::Postgres(t) => format!("postgres {} {}", t.url, t.schema),
    }
}

/// Where the metadata of data directory `dir` is, as recorded at its first
/// start (`sqlite` when nothing is recorded: directories made before the choice).
pub fn recorded_meta(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(META_RECORD)).map(|s| s.trim().to_string()).unwrap_or_else(|_| "sqlite".into())
}

/// Refuses a start whose metadata is not where the data directory's first
/// start put it (its blocks and tokens belong to that metadata). True for a
/// data directory that records nothing yet: [`record_meta`] once it opened.
fn check_meta_record(dir: &Path, at: &MetaAt) -> std::io::Result<bool> {
    let want = meta_record(at);
    if !dir.join(META_RECORD).exists() && !dir.join("meta.sqlite").exists() && !dir.join(BLOCKS_RECORD).exists() {
        return Ok(true);
    }
    let had = recorded_meta(dir);
    if had != want {
        return Err(std::io::Error::other(format!(
            "the metadata of {} is at `{had}`, not `{want}`: start it with the same --meta",
            dir.display()
        )));
    }
    Ok(false)
}

fn record_meta(dir: &Path, at: &MetaAt) -> std::io::Result<()> {
    std::fs::write(dir.join(META_RECORD), format!("{}\n", meta_record(at)))
}

/// Opens the metadata database `at` names (SQLite: `<DATA>/meta.sqlite`).
fn open_meta(data_dir: &Path, at: &MetaAt) -> std::io::Result<Db> {
    match at {
        MetaAt::Sqlite => {
            let meta = data_dir.join("meta.sqlite");
            // Created here 0600: SQLite gives its -wal and -shm files the database's mode.
            drop(datadir::private_file(&meta)?);
            let db = Db::open(&meta).map_err(std::io::Error::other)?;
            cyclades::forget_stored_passwords(&meta).map_err(std::io::Error::from)?;
            Ok(db)
        }
        MetaAt::Postgres(t) => Db::connect(t).map_err(|e| {
            std::io::Error::other(format!("cannot open the metadata database at {}: {}", t.url, e.message))
        }),
    }
}

/// Where the blocks of data directory `dir` are, as recorded at its first
/// start (`dir` when nothing is recorded: directories made before the choice).
pub fn recorded_blocks(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(BLOCKS_RECORD)).map(|s| s.trim().to_string()).unwrap_or_else(|_| "dir".into())
}

/// The block store of data directory `dir`, where `at` says. The choice is
/// recorded at the first start; a later start with another is refused:
/// the metadata would name blocks that are elsewhere.
fn open_blocks(dir: &Path, fresh: bool, at: &BlocksAt, block_size: u64) -> std::io::Result<BlockStore> {
    let want = at.record();
    if fresh {
        std::fs::write(dir.join(BLOCKS_RECORD), format!("{want}\n"))?;
    } else {
        let had = recorded_blocks(dir);
        if had != want {
            return Err(std::io::Error::other(format!(
                "the blocks of {} are at `{had}`, not `{want}`: start it with the same --blocks",
                dir.display()
            )));
        }
    }
    match at {
        BlocksAt::Dir => BlockStore::open(&dir.join("blocks"), block_size, Algorithm::Sha256),
        BlocksAt::Swift(t) => Ok(BlockStore::with_backend(
            swift_blocks::boxed(t.clone(), Algorithm::Sha256)?,
            block_size,
            Algorithm::Sha256,
        )),
    }
}

impl ServeConfig {
    pub fn new(data_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            users: Vec::new(),
            quota: 0,
            block_size: DEFAULT_BLOCK_SIZE,
            build_seconds: 2.0,
            limits: connection::Limits::default(),
            gc: gc::GcConfig::default(),
            max_tree_objects: pithos::tree::MAX_TREE_OBJECTS,
            md5_etags: false,
            system_images: true,
            blocks: BlocksAt::Dir,
            meta: MetaAt::Sqlite,
        }
    }
}

/// Everything the handlers share.
pub struct Cloud {
    pub db: Db,
    pub blocks: Arc<BlockStore>,
    pub users: Users,
    pub base_url: String,
    pub quota: u64,
    pub build_seconds: f64,
    pub max_tree_objects: usize,
    /// What an object's `ETag` is.
    pub etags: pithos::EtagMode,
    /// Held for the life of the server: one `serve` per data directory.
    _lock: std::fs::File,
}

impl Cloud {
    pub fn pithos_url(&self) -> String {
        format!("{}{}", self.base_url, PITHOS_PATH)
    }
    pub fn public_url(&self, token: &str) -> String {
        format!("{}{}/{}", self.base_url, PUBLIC_PATH, token)
    }
}

/// One incoming request, decoded once: path relative to its API's root,
/// query, headers (Pithos-decoded) and the caller, if a valid token came.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: Query,
    pub headers: Headers,
    pub raw_headers: axum::http::HeaderMap,
    pub body: Body,
    pub user: Option<Arc<User>>,
    token_given: bool,
}

impl Call {
    pub fn user(&self) -> Result<Arc<User>, Fault> {
        match (&self.user, self.token_given) {
            (Some(u), _) => Ok(u.clone()),
            (None, true) => Err(Fault::unauthorized("Invalid token")),
            (None, false) => Err(Fault::unauthorized("No authentication token")),
        }
    }
    pub fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }
}

/// A started local cloud.
pub struct Running {
    pub url: String,
    pub local_addr: SocketAddr,
    pub new_users: NewUsers,
    pub cloud: Arc<Cloud>,
    listener: tokio::net::TcpListener,
    limits: connection::Limits,
    gc: gc::GcConfig,
    data_dir: PathBuf,
}

/// Opens the data directory and binds the socket; `run` then serves.
pub async fn bind(config: ServeConfig) -> std::io::Result<Running> {
    let data_dir = datadir::open(&config.data_dir)?;
    let lock = datadir::private_file(&data_dir.join("lock"))?;
    if lock.try_lock().is_err() {
        return Err(std::io::Error::other(format!("{} is in use by another pithosfs serve", data_dir.display())));
    }
    // Blocking work (files, and PostgreSQL's client, which must not run on
    // an async worker) on a blocking thread.
    let (db, blocks, users, new_users) = {
        let (data_dir, config) = (data_dir.clone(), config.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let fresh = !data_dir.join(BLOCKS_RECORD).exists() && !data_dir.join("meta.sqlite").exists();
            let first = check_meta_record(&data_dir, &config.meta)?;
            let db = open_meta(&data_dir, &config.meta)?;
            if first {
                record_meta(&data_dir, &config.meta)?;
            }
            let blocks = Arc::new(open_blocks(&data_dir, fresh, &config.blocks, config.block_size)?);
            if blocks.shared() {
                blocks.set_ledger(Arc::new(ledger::DbLedger::new(db.clone())));
            }
            let (mut users, new_users) = Users::ensure(&db, &data_dir, &config.users)?;
            if config.system_images && plankton::register_system_images(&db, &blocks)? {
                // The system account that owns them is in the user catalog now.
                users = Users::ensure(&db, &data_dir, &[])?.0;
            }
            Ok((db, blocks, users, new_users))
        })
        .await
        .map_err(std::io::Error::other)??
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let url =
        config.public_url.clone().unwrap_or_else(|| format!("http://{local_addr}")).trim_end_matches('/').to_string();
    let cloud = Arc::new(Cloud {
        db,
        blocks,
        users,
        base_url: url.clone(),
        quota: config.quota,
        build_seconds: config.build_seconds,
        max_tree_objects: config.max_tree_objects.max(1),
        etags: if config.md5_etags { pithos::EtagMode::Md5 } else { pithos::EtagMode::Merkle },
        _lock: lock,
    });
    pithos::ensure_default_containers(&cloud).await.map_err(std::io::Error::from)?;
    // Lets other pithosfs commands on this machine find the running server.
    users::write_secret(&data_dir.join("url"), &url)?;
    Ok(Running { url, local_addr, new_users, cloud, listener, limits: config.limits, gc: config.gc, data_dir })
}

impl Running {
    /// Serves until `shutdown` resolves, collecting garbage in the
    /// background and answering `pithosfs serve gc` on `DIR/gc.sock`.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let collector = gc::Collector::new(self.cloud.db.clone(), self.cloud.blocks.clone(), self.gc.clone());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let socket = gc::bind_socket(&self.data_dir)?;
        let tasks = [
            tokio::spawn(collector.clone().background(stopped.clone())),
            tokio::spawn(collector.control(socket, stopped)),
        ];
        let cloud = self.cloud.clone();
        let handle = move |req: Request<Body>| dispatch(cloud.clone(), req);
        let served = connection::serve(self.listener, self.limits, handle, shutdown).await;
        let _ = stop.send(true);
        for t in tasks {
            let _ = t.await;
        }
        let _ = std::fs::remove_file(gc::socket_path(&self.data_dir));
        served
    }
}

/// Splits `path` after `root`: `Some(rest)` when `path` is `root` or below it.
fn under<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

async fn dispatch(cloud: Arc<Cloud>, req: Request<Body>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let resp = match route(cloud, req).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    };
    // The query is never logged: it may carry X-Auth-Token.
    tracing::debug!(%method, path = %raw_path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64);
    resp
}

async fn route(cloud: Arc<Cloud>, req: Request<Body>) -> Result<Response<Body>, Fault> {
    let (parts, body) = req.into_parts();
    let path = percent_decode_str(parts.uri.path())
        .decode_utf8()
        .map_err(|_| Fault::bad_request("The request path is not UTF-8 once decoded"))?
        .into_owned();
    let query = Query::parse(parts.uri.query());
    check_query_numbers(&query)?;
    let headers = Headers::decode(&parts.headers)?;
    let token = query.value("X-Auth-Token").or_else(|| headers.get("x-auth-token")).map(str::to_string);
    let user = token.as_deref().and_then(|t| cloud.users.by_token(t));
    let mut call = Call {
        method: parts.method,
        path: String::new(),
        query,
        headers,
        raw_headers: parts.headers,
        body,
        user,
        token_given: token.is_some(),
    };
    let rest = |root: &str| under(&path, root).map(str::to_string);
    if let Some(r) = rest(IDENTITY_PATH).or_else(|| rest("/astakos/identity/v2.0")) {
        call.path = r;
        return astakos::identity(&cloud, call).await;
    }
    if let Some(r) = rest(ACCOUNT_PATH) {
        call.path = r;
        return astakos::account(&cloud, call).await;
    }
    if let Some(r) = rest(PITHOS_PATH) {
        call.path = r;
        return pithos::handle(cloud, call).await;
    }
    if let Some(r) = rest(PUBLIC_PATH) {
        call.path = r;
        return pithos::public::handle(cloud, call).await;
    }
    if let Some(r) = rest(COMPUTE_PATH) {
        call.path = r;
        return cyclades::handle(&cloud, call).await;
    }
    if let Some(r) = rest(IMAGE_PATH) {
        call.path = r;
        return plankton::handle(&cloud, call).await;
    }
    Err(Fault::endpoint_not_found())
}

/// Integer query parameters (`until`, `limit`) that do not fit 64 bits are
/// 400, not silently ignored: a purge (`DELETE ?until=`) must never turn
/// into a delete because its number overflowed. Other non-integers stay
/// ignored, as in Synnefo (kamaki sends float timestamps).
pub fn check_query_numbers(query: &Query) -> Result<(), Fault> {
    for name in ["until", "limit"] {
        let Some(v) = query.value(name) else { continue };
        let v = v.trim();
        let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && v.parse::<i64>().is_err() {
            return Err(Fault::bad_request(format!("The {name} parameter is out of range")));
        }
    }
    Ok(())
}

/// Reads a whole (small) request body, refusing more than `limit` bytes
/// with 413: at once when its Content-Length says so, else as soon as it
/// passes the limit.
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, Fault> {
    use futures_util::StreamExt;
    use http_body::Body as _;
    let too_large = || Fault::too_large(format!("The request body is larger than {limit} bytes"));
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Fault::bad_request(format!("Could not read the request body: {e}")))?;
        if buf.len().saturating_add(chunk.len()) > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A JSON request body of the Synnefo APIs (Cyclades, Plankton): they insist
/// on a JSON Content-Type and take at most 1 MiB.
pub async fn json_request(headers: &Headers, body: Body) -> Result<serde_json::Value, Fault> {
    let content_type =
        headers.get("content-type").ok_or_else(|| Fault::bad_request("Missing Content-Type header field"))?;
    if !content_type.trim_start().to_ascii_lowercase().starts_with("application/json") {
        return Err(Fault::bad_request(format!("Unsupported Content-type: '{content_type}'")));
    }
    let bytes = read_body(body, 1 << 20).await?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| Fault::bad_request("Could not decode request as UTF-8 string"))?;
    serde_json::from_str(text).map_err(|_| Fault::bad_request("Could not decode request body as JSON"))
}

/// Parses a JSON request body.
pub async fn read_json(body: Body, limit: usize) -> Result<serde_json::Value, Fault> {
    let bytes = read_body(body, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| Fault::bad_request(format!("Invalid JSON in the request body: {e}")))
}
