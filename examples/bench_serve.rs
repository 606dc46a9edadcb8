//! Speed of the local cloud (`pithosfs serve`), measured from outside over
//! HTTP: hashmap upload of new blocks, GET of a large object (whole and in
//! parallel ranges), and listing of a large container. `scripts/bench` starts a
//! server, runs these and compares them with plain static file servers.
//!
//! Every figure is printed as `key=value` on stdout (MB = 10^6 bytes); progress
//! and notes go to stderr. The token comes from `PITHOSFS_TOKEN` (or `--token`)
//! and is never printed.
//!
//! ```text
//! PITHOSFS_URL=http://127.0.0.1:41235 PITHOSFS_TOKEN=... \
//!     cargo run --release --example bench_serve -- upload --size-mib 1024 --name big
//! ```

use bytes::Bytes;
use clap::{Parser, Subcommand};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(msg.into().into())
}

const MIB: u64 = 1 << 20;
/// Block size of Synnefo's default deployment, used where no server is asked.
const DEFAULT_BLOCK: u64 = 4 * MIB;

#[derive(Parser)]
#[command(name = "bench_serve", about = "Measures the speed of a running `pithosfs serve`")]
struct Cli {
    /// Base URL printed by `pithosfs serve` (e.g. http://127.0.0.1:41235).
    #[arg(long, env = "PITHOSFS_URL")]
    url: Option<String>,
    /// Token of the user to act as (prefer the environment: arguments show in `ps`).
    #[arg(long, env = "PITHOSFS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Container to work in (created by `fill` if missing).
    #[arg(long, default_value = "pithos")]
    container: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hashmap upload of an object made of new random blocks; prints upload_mbps.
    Upload {
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Concurrent block POSTs.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        #[arg(long)]
        name: String,
    },
    /// GET of a whole object, streamed and discarded; prints get_mbps (median).
    Get {
        #[arg(long)]
        name: String,
        /// Also GET the object as concurrent block-sized ranges with this many
        /// requests in flight (0: skip); prints get_ranged_mbps.
        #[arg(long, default_value_t = 0)]
        parallel: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Creates many tiny objects with concurrent plain PUTs (setup for `list`).
    Fill {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value = "p/")]
        prefix: String,
        #[arg(long, default_value_t = 16)]
        parallel: usize,
    },
    /// GETs of the tiny objects `fill` made, each checked; prints read_gets_per_second.
    ReadSmall {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value = "p/")]
        prefix: String,
        #[arg(long, default_value_t = 16)]
        parallel: usize,
    },
    /// Times listings of the container (JSON and text); prints medians in ms.
    List {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Entries every listing must return.
        #[arg(long, default_value_t = 10_000)]
        expect: usize,
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
        /// Keep the JSON listing here (a static server can then serve the same bytes).
        #[arg(long)]
        save_json: Option<PathBuf>,
    },
    /// Peer without HTTP: the block store's own work (sha256, write, fsync,
    /// rename, directory fsync) on new random blocks in DIR; prints disk_peer_mbps.
    DiskPeer {
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        #[arg(long)]
        dir: PathBuf,
        /// `server`: as `pithosfs serve` does it (the block first assembled by
        /// a copy into a new buffer); `nocopy`: without that copy; `direct`:
        /// without it and written with O_DIRECT (no page-cache copy).
        #[arg(long, value_enum, default_value_t = PeerMode::Server)]
        mode: PeerMode,
        /// Then read the blocks back in 4 MiB reads, into zero-filled buffers (as
        /// the server does) and into uninitialised ones; prints both speeds.
        #[arg(long)]
        read: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PeerMode {
    Server,
    Nocopy,
    Direct,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_serve: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_serve: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Res<()> {
    if let Command::DiskPeer { size_mib, parallel, dir, mode, read } = &cli.command {
        return disk_peer(*size_mib * MIB, *parallel, dir, *mode, *read);
    }
    let api = Arc::new(Api::connect(&cli).await?);
    match cli.command {
        Command::Upload { size_mib, parallel, name } => upload(&api, size_mib * MIB, parallel, &name).await,
        Command::Get { name, parallel, runs } => get(&api, &name, parallel, runs).await,
        Command::Fill { count, prefix, parallel } => fill(&api, count, &prefix, parallel).await,
        Command::ReadSmall { count, prefix, parallel } => read_small(&api, count, &prefix, parallel).await,
        Command::List { runs, expect, limit, save_json } => list(&api, runs, expect, limit, save_json).await,
        Command::DiskPeer { .. } => unreachable!("handled above"),
    }
}

/// A client logged in to one account, on keep-alive connections.
struct Api {
    client: reqwest::Client,
    /// `{URL}/pithos/object-store/v1/{uuid}/{container}`
    container: String,
}

impl Api {
    async fn connect(cli: &Cli) -> Res<Api> {
        let Some(url) = cli.url.as_deref() else { return fail("no server URL: set PITHOSFS_URL or --url") };
        let Some(token) = cli.token.as_deref() else { return fail("no token: set PITHOSFS_TOKEN or --token") };
        let url = url.trim_end_matches('/');
        let mut auth = HeaderValue::from_str(token).map_err(|_| "the token is not a valid header value")?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("X-Auth-Token", auth);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(600))
            .build()?;
        let body = serde_json::json!({"auth": {"token": {"id": token}}}).to_string();
        let r = client
            .post(format!("{url}/identity/v2.0/tokens"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = r.status();
        if status != StatusCode::OK {
            return fail(format!("authentication answered {status}"));
        }
        let access: Value = serde_json::from_slice(&r.bytes().await?)?;
        let Some(uuid) = access.pointer("/access/user/id").and_then(Value::as_str) else {
            return fail("authentication reply has no access.user.id");
        };
        Ok(Api { client, container: format!("{url}/pithos/object-store/v1/{uuid}/{}", cli.container) })
    }

    fn object(&self, name: &str) -> String {
        format!("{}/{name}", self.container)
    }

    async fn block_size(&self) -> Res<u64> {
        let r = self.client.head(&self.container).send().await?;
        if r.status() != StatusCode::NO_CONTENT {
            return fail(format!("HEAD of the container answered {}", r.status()));
        }
        let size = r.headers().get("x-container-block-size").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        match size {
            Some(s) if s > 0 => Ok(s),
            _ => fail("the container reports no X-Container-Block-Size"),
        }
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn join(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(",")
}

/// Pithos block hash: sha256 of the block without its trailing zero bytes.
fn block_hash(block: &[u8]) -> [u8; 32] {
    let end = block.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    Sha256::digest(&block[..end]).into()
}

/// `size` bytes of fresh random data cut into blocks, with their hashes, made
/// on every core. No block ends in a zero byte.
fn random_blocks(size: u64, block_size: u64) -> Vec<(Bytes, [u8; 32])> {
    let count = size.div_ceil(block_size) as usize;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(count.max(1));
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<(Bytes, [u8; 32])>> = vec![None; count];
    let made: Vec<Vec<(usize, Bytes, [u8; 32])>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return mine;
                        }
                        let len = (size - i as u64 * block_size).min(block_size) as usize;
                        let mut buf = vec![0u8; len];
                        SmallRng::seed_from_u64(seed.wrapping_add(i as u64)).fill_bytes(&mut buf);
                        if let Some(last) = buf.last_mut() {
                            *last |= 1;
                        }
                        let hash = block_hash(&buf);
                        mine.push((i, Bytes::from(buf), hash));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("block generator panicked")).collect()
    });
    for (i, data, hash) in made.into_iter().flatten() {
        out[i] = Some((data, hash));
    }
    out.into_iter().map(|b| b.expect("every block was generated")).collect()
}

async fn upload(api: &Arc<Api>, size: u64, parallel: usize, name: &str) -> Res<()> {
    if size == 0 {
        return fail("--size-mib must be at least 1");
    }
    let bs = api.block_size().await?;
    let prep = Instant::now();
    let blocks = Arc::new(random_blocks(size, bs));
    let hashes: Vec<String> = blocks.iter().map(|(_, h)| hex::encode(h)).collect();
    let prep = prep.elapsed().as_secs_f64();
    eprintln!("upload: {} blocks of {bs} bytes generated and hashed in {prep:.2}s (not timed)", blocks.len());
    let hashmap = Bytes::from(serde_json::json!({"bytes": size, "hashes": hashes}).to_string());
    let url = format!("{}?hashmap=True&format=json", api.object(name));
    let put = || api.client.put(&url).header("Content-Type", "application/octet-stream").body(hashmap.clone()).send();

    let start = Instant::now();
    let r = put().await?;
    let missing: Vec<String> = match r.status() {
        StatusCode::CONFLICT => serde_json::from_slice(&r.bytes().await?)
            .map_err(|e| format!("the 409 reply is not a JSON list of hashes: {e}"))?,
        StatusCode::CREATED => return fail("the first hashmap PUT succeeded: the blocks were not new"),
        s => return fail(format!("hashmap PUT answered {s}: {}", String::from_utf8_lossy(&r.bytes().await?))),
    };
    let index: HashMap<&str, usize> = hashes.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
    let mut todo = Vec::with_capacity(missing.len());
    for h in &missing {
        match index.get(h.as_str()) {
            Some(&i) => todo.push(i),
            None => return fail(format!("the server asked for a block not in the hashmap: {h}")),
        }
    }
    if todo.len() != blocks.len() {
        eprintln!("upload: note: {} of {} blocks were missing (expected all)", todo.len(), blocks.len());
    }
    let todo = Arc::new(todo);
    let next = Arc::new(AtomicUsize::new(0));
    let post_url = Arc::new(format!("{}?update&format=json", api.container));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (api, blocks, todo, next, post_url) =
            (api.clone(), blocks.clone(), todo.clone(), next.clone(), post_url.clone());
        tasks.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = todo.get(k) else { return Ok::<(), Error>(()) };
                let (data, hash) = &blocks[i];
                let r = api
                    .client
                    .post(post_url.as_str())
                    .header("Content-Type", "application/octet-stream")
                    .body(data.clone())
                    .send()
                    .await?;
                let status = r.status();
                let body = r.bytes().await?;
                if status != StatusCode::ACCEPTED {
                    return fail(format!("block POST answered {status}: {}", String::from_utf8_lossy(&body)));
                }
                let got: Vec<String> = serde_json::from_slice(&body)
                    .map_err(|e| format!("block POST reply is not a JSON list of hashes: {e}"))?;
                if got.len() != 1 || got[0] != hex::encode(hash) {
                    return fail(format!("block POST returned hashes {got:?}, expected [{}]", hex::encode(hash)));
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let posted = start.elapsed();
    let r = put().await?;
    if r.status() != StatusCode::CREATED {
        let s = r.status();
        return fail(format!("final hashmap PUT answered {s}: {}", String::from_utf8_lossy(&r.bytes().await?)));
    }
    let took = start.elapsed();
    let sent: u64 = todo.iter().map(|&i| blocks[i].0.len() as u64).sum();
    println!(
        "upload_mbps={:.1} upload_seconds={:.3} upload_bytes={size} blocks_sent={} block_posts_mbps={:.1} parallel={parallel}",
        mbps(size, took),
        took.as_secs_f64(),
        todo.len(),
        mbps(sent, posted),
    );
    Ok(())
}

async fn get(api: &Arc<Api>, name: &str, parallel: usize, runs: usize) -> Res<()> {
    let url = api.object(name);
    let bs = api.block_size().await?;
    let mut size = None;
    let mut whole = Vec::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let mut r = api.client.get(&url).send().await?;
        if r.status() != StatusCode::OK {
            return fail(format!("GET {name} answered {}", r.status()));
        }
        let Some(expected) = r.content_length() else { return fail("GET reply has no Content-Length") };
        let mut n = 0u64;
        while let Some(chunk) = r.chunk().await? {
            n += chunk.len() as u64;
        }
        let took = start.elapsed();
        if n != expected {
            return fail(format!("GET {name} returned {n} bytes, Content-Length said {expected}"));
        }
        if size.is_some_and(|s| s != n) {
            return fail(format!("GET {name} returned {n} bytes, an earlier run {size:?}"));
        }
        size = Some(n);
        whole.push(mbps(n, took));
    }
    let size = size.unwrap_or(0);
    println!("get_mbps={:.1} get_runs_mbps={} get_bytes={size}", median(whole.clone()), join(&whole));
    if parallel == 0 || size == 0 {
        return Ok(());
    }
    let ranges: Arc<Vec<(u64, u64)>> =
        Arc::new((0..size.div_ceil(bs)).map(|i| (i * bs, ((i + 1) * bs).min(size) - 1)).collect());
    let mut ranged = Vec::new();
    for _ in 0..runs.max(1) {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..parallel {
            let (api, url, ranges, next) = (api.clone(), url.clone(), ranges.clone(), next.clone());
            tasks.spawn(async move {
                let mut total = 0u64;
                loop {
                    let Some(&(a, b)) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return Ok::<u64, Error>(total);
                    };
                    let mut r = api.client.get(&url).header("Range", format!("bytes={a}-{b}")).send().await?;
                    if r.status() != StatusCode::PARTIAL_CONTENT {
                        return fail(format!("ranged GET bytes={a}-{b} answered {}", r.status()));
                    }
                    let mut n = 0u64;
                    while let Some(chunk) = r.chunk().await? {
                        n += chunk.len() as u64;
                    }
                    if n != b - a + 1 {
                        return fail(format!("ranged GET bytes={a}-{b} returned {n} bytes"));
                    }
                    total += n;
                }
            });
        }
        let mut total = 0;
        while let Some(done) = tasks.join_next().await {
            total += done??;
        }
        let took = start.elapsed();
        if total != size {
            return fail(format!("ranged GETs returned {total} bytes in all, expected {size}"));
        }
        ranged.push(mbps(size, took));
    }
    println!(
        "get_ranged_mbps={:.1} get_ranged_runs_mbps={} parallel={parallel}",
        median(ranged.clone()),
        join(&ranged)
    );
    Ok(())
}

async fn fill(api: &Arc<Api>, count: usize, prefix: &str, parallel: usize) -> Res<()> {
    let r = api.client.put(&api.container).send().await?;
    if !matches!(r.status(), StatusCode::CREATED | StatusCode::ACCEPTED) {
        return fail(format!("PUT of the container answered {}", r.status()));
    }
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let width = count.saturating_sub(1).to_string().len();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (api, next, prefix) = (api.clone(), next.clone(), prefix.to_string());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), Error>(());
                }
                let r = api
                    .client
                    .put(api.object(&format!("{prefix}{i:0width$}")))
                    .header("Content-Type", "text/plain")
                    .body(Bytes::from_static(SMALL_BODY))
                    .send()
                    .await?;
                if r.status() != StatusCode::CREATED {
                    return fail(format!("PUT of object {i} answered {}", r.status()));
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let took = start.elapsed();
    println!(
        "fill_objects={count} fill_seconds={:.2} fill_puts_per_second={:.0}",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// The body `fill` gives every object.
const SMALL_BODY: &[u8] = b"a small object\n";

async fn read_small(api: &Arc<Api>, count: usize, prefix: &str, parallel: usize) -> Res<()> {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let width = count.saturating_sub(1).to_string().len();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (api, next, prefix) = (api.clone(), next.clone(), prefix.to_string());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), Error>(());
                }
                let r = api.client.get(api.object(&format!("{prefix}{i:0width$}"))).send().await?;
                let status = r.status();
                let body = r.bytes().await?;
                if status != StatusCode::OK || body.as_ref() != SMALL_BODY {
                    return fail(format!("GET of object {i} answered {status} with {} bytes", body.len()));
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let took = start.elapsed();
    println!(
        "read_objects={count} read_seconds={:.2} read_gets_per_second={:.0}",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// One listing: (milliseconds until the whole body is in, body).
async fn timed_listing(api: &Api, query: &str) -> Res<(f64, Bytes)> {
    let start = Instant::now();
    let r = api.client.get(format!("{}?{query}", api.container)).send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if status != StatusCode::OK {
        return fail(format!("listing ?{query} answered {status}"));
    }
    Ok((ms, body))
}

async fn list(api: &Arc<Api>, runs: usize, expect: usize, limit: usize, save_json: Option<PathBuf>) -> Res<()> {
    let json_q = format!("format=json&limit={limit}");
    let text_q = format!("limit={limit}");
    // Warm-up: first use of the connection and of the server's statements.
    timed_listing(api, &json_q).await?;
    timed_listing(api, &text_q).await?;
    let (mut json_ms, mut text_ms) = (Vec::new(), Vec::new());
    let (mut json_bytes, mut text_bytes) = (0, 0);
    for _ in 0..runs.max(1) {
        let (ms, body) = timed_listing(api, &json_q).await?;
        let entries: Vec<Value> =
            serde_json::from_slice(&body).map_err(|e| format!("JSON listing does not parse as a list: {e}"))?;
        if entries.len() != expect {
            return fail(format!("JSON listing has {} entries, expected {expect}", entries.len()));
        }
        json_ms.push(ms);
        json_bytes = body.len();
        if let Some(path) = &save_json {
            std::fs::File::create(path)
                .and_then(|mut f| f.write_all(&body))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let (ms, body) = timed_listing(api, &text_q).await?;
        let lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        if lines != expect {
            return fail(format!("text listing has {lines} names, expected {expect}"));
        }
        text_ms.push(ms);
        text_bytes = body.len();
    }
    println!(
        "list_json_ms={:.1} list_json_runs_ms={} list_json_bytes={json_bytes} \
         list_text_ms={:.1} list_text_runs_ms={} list_text_bytes={text_bytes} list_entries={expect}",
        median(json_ms.clone()),
        join(&json_ms),
        median(text_ms.clone()),
        join(&text_ms),
    );
    Ok(())
}

/// What the block store does per block, without HTTP: hash, write to a
/// temporary file, fsync, rename into place, fsync the directory.
fn disk_peer(size: u64, parallel: usize, dir: &Path, mode: PeerMode, read: bool) -> Res<()> {
    use std::fs::{self, File};
    if size == 0 {
        return fail("--size-mib must be at least 1");
    }
    let blocks = random_blocks(size, DEFAULT_BLOCK);
    let tmp = dir.join("tmp");
    fs::create_dir_all(&tmp)?;
    for i in 0..=255u8 {
        fs::create_dir_all(dir.join(format!("{i:02x}")))?;
    }
    // Single-core hashing speed, for reference.
    let t = Instant::now();
    let mut hashed = 0u64;
    for (b, _) in blocks.iter().take(64) {
        std::hint::black_box(block_hash(b));
        hashed += b.len() as u64;
    }
    let sha_mbps = mbps(hashed, t.elapsed());

    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..parallel.max(1))
            .map(|w| {
                let (blocks, next, tmp) = (&blocks, &next, &tmp);
                s.spawn(move || -> std::io::Result<()> {
                    // O_DIRECT needs a page-aligned source: one reused buffer.
                    let mut aligned = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((data, _)) = blocks.get(i) else { return Ok(()) };
                        let copy;
                        let data: &[u8] = if mode == PeerMode::Server {
                            // ingest() gathers the body into a fresh BytesMut.
                            let mut b = Vec::with_capacity(data.len());
                            b.extend_from_slice(data);
                            copy = b;
                            &copy
                        } else {
                            data
                        };
                        let hash = block_hash(data);
                        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                        let hex = hex::encode(hash);
                        let t = tmp.join(format!("{w}-{i}"));
                        let f = if mode == PeerMode::Direct {
                            direct_write(&t, &data[..end], &mut aligned)?
                        } else {
                            let mut f = File::create(&t)?;
                            f.write_all(&data[..end])?;
                            f
                        };
                        f.sync_all()?;
                        drop(f);
                        let sub = dir.join(&hex[..2]);
                        fs::rename(&t, sub.join(&hex))?;
                        File::open(&sub)?.sync_all()?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| "a disk peer thread panicked")??;
        }
        Ok::<(), Error>(())
    })?;
    let took = start.elapsed();
    let mode_name = match mode {
        PeerMode::Server => "server",
        PeerMode::Nocopy => "nocopy",
        PeerMode::Direct => "direct",
    };
    println!(
        "disk_peer_mbps={:.1} disk_peer_seconds={:.3} sha256_1core_mbps={sha_mbps:.1} parallel={parallel} mode={mode_name}",
        mbps(size, took),
        took.as_secs_f64()
    );
    if read {
        read_peer(dir, &blocks)?;
    }
    Ok(())
}

/// Writes `data` to a new file with O_DIRECT from a page-aligned copy padded to
/// whole pages, then cuts the file back to `data.len()`.
#[cfg(target_os = "linux")]
fn direct_write(path: &Path, data: &[u8], aligned: &mut Vec<u8>) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    /// O_DIRECT on x86-64 and aarch64 Linux.
    const O_DIRECT: i32 = if cfg!(target_arch = "aarch64") { 0o200000 } else { 0o40000 };
    const PAGE: usize = 4096;
    let padded = data.len().div_ceil(PAGE) * PAGE;
    if aligned.len() < padded + PAGE {
        aligned.resize(padded + PAGE, 0);
    }
    let off = aligned.as_ptr().align_offset(PAGE);
    let buf = &mut aligned[off..off + padded];
    buf[..data.len()].copy_from_slice(data);
    buf[data.len()..].fill(0);
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(O_DIRECT).open(path)?;
    f.write_all(buf)?;
    f.set_len(data.len() as u64)?;
    Ok(f)
}

#[cfg(not(target_os = "linux"))]
fn direct_write(_: &Path, _: &[u8], _: &mut Vec<u8>) -> std::io::Result<std::fs::File> {
    Err(std::io::Error::other("--mode direct needs Linux"))
}

/// Reads every stored block twice from the page cache (after a checked warm-up pass):
/// into a zero-filled buffer with pread, as `BlockStore::read_range` does, and
/// into an uninitialised one with `read_to_end`.
fn read_peer(dir: &Path, blocks: &[(Bytes, [u8; 32])]) -> Res<()> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let path = |h: &[u8; 32]| {
        let hex = hex::encode(h);
        dir.join(&hex[..2]).join(hex)
    };
    let size: u64 = blocks.iter().map(|(b, _)| b.len() as u64).sum();
    let mut zeroed = Vec::new();
    let mut uninit = Vec::new();
    // The server keeps a few chunks in flight (channel of 3 + the one being sent).
    let mut in_flight = std::collections::VecDeque::new();
    for pass in 0..3 {
        for zero_fill in [true, false] {
            let start = Instant::now();
            for (data, hash) in blocks {
                let f = std::fs::File::open(path(hash))?;
                let len = data.len();
                let buf = if zero_fill {
                    let mut buf = vec![0u8; len];
                    let mut done = 0;
                    while done < len {
                        let n = f.read_at(&mut buf[done..], done as u64)?;
                        if n == 0 {
                            break;
                        }
                        done += n;
                    }
                    buf
                } else {
                    let mut buf = Vec::with_capacity(len);
                    f.take(len as u64).read_to_end(&mut buf)?;
                    buf.resize(len, 0);
                    buf
                };
                if pass == 0 && buf[..] != data[..] {
                    return fail(format!("block {} read back differently", hex::encode(hash)));
                }
                in_flight.push_back(Bytes::from(buf));
                if in_flight.len() > 4 {
                    in_flight.pop_front();
                }
            }
            if pass > 0 {
                if zero_fill { &mut zeroed } else { &mut uninit }.push(mbps(size, start.elapsed()));
            }
        }
    }
    println!("read_zeroed_mbps={:.1} read_uninit_mbps={:.1} (page cache, 4 MiB reads)", median(zeroed), median(uninit));
    Ok(())
}
