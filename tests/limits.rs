//! Limits and fair use of the local cloud, through real HTTP (and raw TCP
//! where a client must misbehave): the hashmap upload protocol still works
//! (who may list which block is in tests/security.rs), quotas hold while
//! data streams in, unreferenced blocks are collected, connections
//! cannot be held, bodies and ranges are bounded, and numbers from clients
//! never wrap.

mod common;

use common::blocks::{get_bytes, hexes, json_of, post_blocks, put_hashmap, random_bytes};
use common::{TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::blocks::{self, Algorithm, BlockHash, MAX_BLOCKS_PER_OBJECT};
use pithosfs::cloud::gc::GcReport;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const DELETE: Method = Method::DELETE;
const BS: usize = 4096;

/// A cloud with 4 KiB blocks whose background collector stays out of the
/// way (tests collect on demand) and takes unreferenced blocks at once.
async fn cloud(tune: impl FnOnce(&mut pithosfs::cloud::ServeConfig)) -> TestCloud {
    TestCloud::start_with(|c| {
        c.block_size = BS as u64;
        c.gc.interval = Duration::from_secs(3600);
        c.gc.delay = Duration::ZERO;
        tune(c);
    })
    .await
}

fn hashmap_of(data: &[u8]) -> Vec<BlockHash> {
    common::blocks::hashmap_of(data, BS as u64)
}

fn data_dir(tc: &TestCloud) -> std::path::PathBuf {
    tc.dir.path().join("data")
}

/// `pithosfs serve gc --data DIR --json`: the running server collects now.
async fn gc_now(tc: &TestCloud) -> GcReport {
    let dir = data_dir(tc);
    tokio::task::spawn_blocking(move || run_gc(&dir)).await.unwrap()
}

fn run_gc(dir: &std::path::Path) -> GcReport {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["serve", "gc", "--json", "--data"])
        .arg(dir)
        .output()
        .expect("run pithosfs serve gc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "serve gc failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not a report ({e}): {stdout}"))
}

/// Blocks in the block directory.
async fn stored_blocks(tc: &TestCloud) -> u64 {
    let blocks = tc.cloud.blocks.clone();
    tokio::task::spawn_blocking(move || blocks.usage().unwrap().0).await.unwrap()
}

fn url(tc: &TestCloud, account: &str, container: &str, name: &str) -> String {
    format!("{}/{account}/{container}/{}", tc.pithos(), common::quote(name))
}

/// A body sent chunked (no Content-Length), so the server cannot refuse it
/// by its announced size.
fn chunked(data: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

async fn header_of(tc: &TestCloud, token: &str, url: &str, name: &str) -> String {
    let r = tc.http.head(url).header("X-Auth-Token", token).send().await.unwrap();
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

// ---------- 1. the hashmap upload protocol ----------

/// The client library's upload (kamaki's protocol: hashmap, 409, block
/// POSTs, hashmap again) works for a user whose data another user already
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hashmap_upload_protocol_still_works() {
    use pithosfs::clients::pithos::PithosClient;
    use pithosfs::clients::storage::PutOptions;
    let tc = cloud(|_| {}).await;
    let data = bytes::Bytes::from(random_bytes(5 * BS + 3, 4));
    tc.put_object("pithos", "original", &data).await;
    let bob = PithosClient::new(&tc.pithos(), BOB_TOKEN, &tc.bob, "pithos").unwrap();
    bob.upload_from_bytes("mine", data.clone(), &PutOptions::default()).await.unwrap();
    assert_eq!(get_bytes(&tc, BOB_TOKEN, &url(&tc, &tc.bob, "pithos", "mine")).await, (200, data.to_vec()));
    // and again, now from his own blocks: nothing to send
    bob.upload_from_bytes("mine-too", data.clone(), &PutOptions::default()).await.unwrap();
    assert_eq!(get_bytes(&tc, BOB_TOKEN, &url(&tc, &tc.bob, "pithos", "mine-too")).await, (200, data.to_vec()));
}

// ---------- 2. quota while data streams in ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_stops_a_chunked_put_and_keeps_nothing() {
    let tc = cloud(|c| c.quota = 64 << 10).await;
    let account = format!("{}/{}", tc.pithos(), tc.alice);
    tc.put_object("pithos", "small", &random_bytes(10_000, 5)).await;
    let before = stored_blocks(&tc).await;
    // account quota: 54 KiB left, 256 KiB sent without a length
    let r = tc
        .alice(PUT, &url(&tc, &tc.alice, "pithos", "big"))
        .header("Content-Type", "application/octet-stream")
        .body(chunked(random_bytes(256 << 10, 6)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(json_of(r).await["requestEntityTooLarge"]["message"].as_str().unwrap().contains("quota"));
    // it stopped storing at the quota (54 KiB: 14 blocks), not after all 64 blocks
    let stored = stored_blocks(&tc).await - before;
    assert!(stored <= 15, "{stored} blocks stored past the quota");
    assert_eq!(header_of(&tc, ALICE_TOKEN, &account, "x-account-bytes-used").await, "10000");
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &url(&tc, &tc.alice, "pithos", "big")).await.0, 404);
    let report = gc_now(&tc).await;
    assert!(report.removed > 0, "{report:?}");
    assert_eq!(stored_blocks(&tc).await, before, "what the refused upload stored is gone");

    // container quota (X-Container-Policy-Quota), same story
    let r =
        tc.alice(PUT, &format!("{account}/capped")).header("X-Container-Policy-Quota", "20000").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = tc
        .alice(PUT, &url(&tc, &tc.alice, "capped", "big"))
        .header("Content-Type", "application/octet-stream")
        .body(chunked(random_bytes(400_000, 7)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let stored = stored_blocks(&tc).await - before;
    assert!(stored <= 6, "{stored} blocks stored past the container quota");
    assert_eq!(header_of(&tc, ALICE_TOKEN, &format!("{account}/capped"), "x-container-bytes-used").await, "0");
    // The refused request's blocks are the collector's once the request has
    // ended on the server, which (blocks in Swift: its last writes still
    // landing) may be a moment after the client has the 413.
    let mut passes = Vec::new();
    while stored_blocks(&tc).await != before && passes.len() < 20 {
        passes.push(gc_now(&tc).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored_blocks(&tc).await, before, "{passes:?}");
    // what fits still goes in, chunked too
    let fits = random_bytes(20_000, 8);
    let r = tc
        .alice(PUT, &url(&tc, &tc.alice, "capped", "fits"))
        .header("Content-Type", "application/octet-stream")
        .body(chunked(fits.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &url(&tc, &tc.alice, "capped", "fits")).await, (200, fits));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_stops_a_chunked_append() {
    let tc = cloud(|c| c.quota = 64 << 10).await;
    let obj = url(&tc, &tc.alice, "pithos", "log");
    let start = random_bytes(5000, 9);
    tc.put_object("pithos", "log", &start).await;
    let before = stored_blocks(&tc).await;
    let r = tc
        .alice(POST, &obj)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "bytes */*")
        .body(chunked(random_bytes(200 << 10, 10)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let stored = stored_blocks(&tc).await - before;
    assert!(stored <= 16, "{stored} blocks stored past the quota");
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &obj).await, (200, start.clone()), "the object is as it was");
    gc_now(&tc).await;
    assert_eq!(stored_blocks(&tc).await, before);
    // an append that fits goes in
    let more = random_bytes(3000, 11);
    let r = tc
        .alice(POST, &obj)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "bytes */*")
        .body(chunked(more.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &obj).await.1, [start, more].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_stops_block_uploads() {
    let tc = cloud(|c| c.quota = 5 * BS as u64).await;
    let block_url = format!("{}/{}/pithos?update&format=json", tc.pithos(), tc.alice);
    let post = |body: reqwest::Body| {
        tc.alice(POST, &block_url).header("Content-Type", "application/octet-stream").body(body).send()
    };
    // one POST of 10 blocks, chunked: stops at the quota
    let r = post(chunked(random_bytes(10 * BS, 12))).await.unwrap();
    assert_eq!(r.status(), 413);
    assert!(stored_blocks(&tc).await <= 6, "stored past the quota");
    gc_now(&tc).await;
    assert_eq!(stored_blocks(&tc).await, 0, "nothing of the refused upload is kept");
    // blocks waiting for their hashmap count against the quota: 5 go in, the 6th does not
    let data = random_bytes(6 * BS, 13);
    for (i, block) in data.chunks(BS).enumerate() {
        let r = post(chunked(block.to_vec())).await.unwrap();
        assert_eq!(r.status(), if i < 5 { 202 } else { 413 }, "block {i}");
    }
    gc_now(&tc).await;
    assert_eq!(stored_blocks(&tc).await, 5);
    // the five make an object; the quota is then used by it, not twice
    let obj = url(&tc, &tc.alice, "pithos", "five");
    assert_eq!(put_hashmap(&tc, ALICE_TOKEN, &obj, 5 * BS, &hashmap_of(&data[..5 * BS])).await.0, 201);
    let account = format!("{}/{}", tc.pithos(), tc.alice);
    assert_eq!(header_of(&tc, ALICE_TOKEN, &account, "x-account-bytes-used").await, (5 * BS).to_string());
    assert_eq!(post(chunked(data[5 * BS..].to_vec())).await.unwrap().status(), 413);
    let r = tc.alice(DELETE, &obj).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = tc.alice(DELETE, &format!("{obj}?until={}", i32::MAX)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(post(chunked(data[5 * BS..].to_vec())).await.unwrap().status(), 202);
}

// ---------- 3. garbage collection ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_objects_give_their_blocks_back() {
    let tc = cloud(|_| {}).await;
    let account = format!("{}/{}", tc.pithos(), tc.alice);
    let a = random_bytes(4 * BS, 20);
    let mut b = random_bytes(3 * BS, 21);
    b[..BS].copy_from_slice(&a[..BS]); // one block shared with `a`
    tc.put_object("pithos", "a", &a).await;
    tc.put_object("pithos", "b", &b).await;
    tc.put_object("pithos", "a", &random_bytes(2 * BS, 22)).await; // a second version of `a`
    assert_eq!(stored_blocks(&tc).await, 4 + 2 + 2);
    assert_eq!(gc_now(&tc).await.removed, 0, "everything is referenced");

    // delete `a` with all its versions: its blocks go, but not the one `b` shares
    let a_url = url(&tc, &tc.alice, "pithos", "a");
    assert_eq!(tc.alice(DELETE, &a_url).send().await.unwrap().status(), 204);
    assert_eq!(gc_now(&tc).await.removed, 0, "history still refers to them");
    let r = tc.alice(DELETE, &format!("{a_url}?until={}", i32::MAX)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(gc_now(&tc).await.removed, 5);
    assert_eq!(stored_blocks(&tc).await, 3);
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &url(&tc, &tc.alice, "pithos", "b")).await, (200, b));

    // versioning none: a replaced version gives its blocks back at once
    let r = tc.alice(PUT, &format!("{account}/flat")).header("X-Container-Policy-Versioning", "none").send();
    assert_eq!(r.await.unwrap().status(), 201);
    let flat = |n: &str| url(&tc, &tc.alice, "flat", n);
    for seed in [23, 24] {
        let r = tc.alice(PUT, &flat("f")).header("Content-Type", "x/y").body(random_bytes(2 * BS, seed)).send();
        assert_eq!(r.await.unwrap().status(), 201);
    }
    assert_eq!(gc_now(&tc).await.removed, 2);
    // deleting the container (emptied, with a purged history) gives back the rest
    assert_eq!(tc.alice(DELETE, &flat("f")).send().await.unwrap().status(), 204);
    assert_eq!(tc.alice(DELETE, &format!("{account}/flat")).send().await.unwrap().status(), 204);
    assert_eq!(gc_now(&tc).await.removed, 2);
    // and a whole container with history, purged then deleted
    let r = tc.alice(PUT, &format!("{account}/tmp")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = tc.alice(PUT, &url(&tc, &tc.alice, "tmp", "x")).header("Content-Type", "x/y").body(random_bytes(BS, 25));
    assert_eq!(r.send().await.unwrap().status(), 201);
    assert_eq!(tc.alice(DELETE, &url(&tc, &tc.alice, "tmp", "x")).send().await.unwrap().status(), 204);
    let r = tc.alice(DELETE, &format!("{account}/tmp?until={}", i32::MAX)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(tc.alice(DELETE, &format!("{account}/tmp")).send().await.unwrap().status(), 204);
    assert_eq!(gc_now(&tc).await.removed, 1);
    assert_eq!(stored_blocks(&tc).await, 3, "the block directory is back to what `b` needs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_collector_reclaims_on_its_own() {
    let tc = cloud(|c| c.gc.interval = Duration::from_millis(200)).await;
    let r = tc.alice(PUT, &format!("{}/{}/flat", tc.pithos(), tc.alice));
    assert_eq!(r.header("X-Container-Policy-Versioning", "none").send().await.unwrap().status(), 201);
    let obj = url(&tc, &tc.alice, "flat", "x");
    let r = tc.alice(PUT, &obj).header("Content-Type", "x/y").body(random_bytes(3 * BS, 30)).send();
    assert_eq!(r.await.unwrap().status(), 201);
    assert_eq!(stored_blocks(&tc).await, 3);
    // past the first pass (the one that sweeps the block directory): what
    // follows is found through the references alone
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tc.alice(DELETE, &obj).send().await.unwrap().status(), 204);
    let mut left = 3;
    for _ in 0..150 {
        left = stored_blocks(&tc).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the background pass took the blocks back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_in_flight_survives_collection() {
    let tc = cloud(|_| {}).await;
    let data = random_bytes(4 * BS + 1, 31);
    let obj = url(&tc, &tc.alice, "pithos", "later");
    let hm = hashmap_of(&data);
    assert_eq!(put_hashmap(&tc, ALICE_TOKEN, &obj, data.len(), &hm).await.1.len(), 5);
    post_blocks(&tc, ALICE_TOKEN, &tc.alice, "pithos", &data).await;
    // the hashmap PUT has not arrived yet: a collection keeps the blocks
    let report = gc_now(&tc).await;
    assert_eq!((report.removed, stored_blocks(&tc).await), (0, 5), "{report:?}");
    assert_eq!(put_hashmap(&tc, ALICE_TOKEN, &obj, data.len(), &hm).await, (201, vec![]));
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &obj).await, (200, data));
}

/// Past its grace period an upload is collected, and the hashmap PUT that
/// comes too late is told to upload again: never an object with holes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_past_its_grace_is_collected_and_asked_for_again() {
    let tc = cloud(|c| c.gc.upload_grace = Duration::ZERO).await;
    let data = random_bytes(2 * BS, 32);
    let obj = url(&tc, &tc.alice, "pithos", "late");
    post_blocks(&tc, ALICE_TOKEN, &tc.alice, "pithos", &data).await;
    let report = gc_now(&tc).await;
    assert_eq!((report.expired_uploads, report.removed), (2, 2));
    let hm = hashmap_of(&data);
    assert_eq!(put_hashmap(&tc, ALICE_TOKEN, &obj, data.len(), &hm).await, (409, hexes(&hm)));
    post_blocks(&tc, ALICE_TOKEN, &tc.alice, "pithos", &data).await;
    assert_eq!(put_hashmap(&tc, ALICE_TOKEN, &obj, data.len(), &hm).await.0, 201);
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &obj).await, (200, data));
}

/// Collections running all the time while uploads and hashmap PUTs go on:
/// every object committed reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_races_no_commit() {
    let tc = cloud(|c| {
        c.gc.interval = Duration::from_millis(100);
        c.gc.upload_grace = Duration::ZERO;
    })
    .await;
    let mut committed = 0;
    for i in 0..20u64 {
        let data = random_bytes(2 * BS, 100 + i);
        let obj = url(&tc, &tc.alice, "pithos", &format!("race{i}"));
        let hm = hashmap_of(&data);
        for _ in 0..10 {
            post_blocks(&tc, ALICE_TOKEN, &tc.alice, "pithos", &data).await;
            let (status, _) = put_hashmap(&tc, ALICE_TOKEN, &obj, data.len(), &hm).await;
            assert!(status == 201 || status == 409, "{status}");
            if status == 201 {
                committed += 1;
                break;
            }
        }
        assert_eq!(get_bytes(&tc, ALICE_TOKEN, &obj).await, (200, data));
    }
    assert_eq!(committed, 20);
    gc_now(&tc).await;
    assert_eq!(stored_blocks(&tc).await, 40);
}

/// A data directory of the first release: reference counts are backfilled
/// when it is opened, `serve gc` collects it directly when no server runs,
/// and keeps every referenced block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_data_directory_is_migrated_and_collected_offline() {
    use pithosfs::cloud::{self, users::UserSpec, ServeConfig};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = || {
        let mut c = ServeConfig::new(data.clone());
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.block_size = BS as u64;
        c.users = vec![UserSpec { name: "alice@example.org".into(), token: Some(ALICE_TOKEN.into()) }];
        c.system_images = false; // the collector's counts are of alice's blocks only
        c
    };
    let kept = random_bytes(3 * BS, 40);
    // a server stores an object, then stops
    let running = cloud::bind(config()).await.unwrap();
    let (base, alice) = (running.url.clone(), running.cloud.users.by_name("alice@example.org").unwrap().uuid.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(running.run(async move {
        let _ = stopped.await;
    }));
    let obj = format!("{base}{}/{alice}/pithos/kept", cloud::PITHOS_PATH);
    let http = reqwest::Client::new();
    let r = http.put(&obj).header("X-Auth-Token", ALICE_TOKEN).header("Content-Type", "x/y").body(kept.clone());
    assert_eq!(r.send().await.unwrap().status(), 201);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    released(&data).await;
    // make it look like the first release: no block tables, schema version 0,
    // and a block nothing refers to (an object deleted back then)
    {
        let conn = rusqlite::Connection::open(data.join("meta.sqlite")).unwrap();
        conn.execute_batch("DROP TABLE block_refs; DROP TABLE uploads; DROP TABLE gc_queue; PRAGMA user_version = 0;")
            .unwrap();
    }
    let orphan = blocks::hash_block(Algorithm::Sha256, b"deleted long ago");
    let hex = orphan.to_hex();
    std::fs::write(data.join("blocks").join(&hex[..2]).join(&hex), b"deleted long ago").unwrap();
    let dir2 = data.clone();
    let report = tokio::task::spawn_blocking(move || run_gc(&dir2)).await.unwrap();
    assert_eq!((report.removed, report.swept), (1, 4), "{report:?}");
    released(&data).await;
    // a new server reads everything back
    let running = cloud::bind(config()).await.unwrap();
    let base = running.url.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(running.run(async move {
        let _ = stopped.await;
    }));
    let obj = format!("{base}{}/{alice}/pithos/kept", cloud::PITHOS_PATH);
    let r = http.get(&obj).header("X-Auth-Token", ALICE_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), kept);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Waits until no server holds `data` (its last handles go a moment after
/// `run` returns).
async fn released(data: &std::path::Path) {
    for _ in 0..100 {
        let f = std::fs::File::create(data.join("lock")).unwrap();
        if f.try_lock().is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the data directory stayed locked");
}

// ---------- 4. HTTP hardening ----------

fn host(tc: &TestCloud) -> String {
    tc.url.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (or resets); false if it did not within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (false, got),
            Ok(Ok(0)) | Ok(Err(_)) => return (true, got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_dropped() {
    let tc = cloud(|c| {
        c.limits.header_timeout = Duration::from_secs(1);
        c.limits.idle_timeout = Duration::from_secs(1);
    })
    .await;
    // headers dribbled a byte at a time: dropped although bytes keep coming
    let mut s = TcpStream::connect(host(&tc)).await.unwrap();
    s.write_all(b"GET /identity/v2.0 HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut dropped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if s.write_all(b"a").await.is_err() || closed_within(&mut s, Duration::from_millis(1)).await.0 {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "a client dribbling its headers for 20 s was kept");

    // a connection that never sends anything
    let mut s = TcpStream::connect(host(&tc)).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(20)).await.0, "an idle connection was kept");

    // a keep-alive connection left idle after a request
    let mut s = TcpStream::connect(host(&tc)).await.unwrap();
    s.write_all(b"POST /identity/v2.0/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await.unwrap();
    let (closed, reply) = closed_within(&mut s, Duration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&reply));
    assert!(closed, "an idle keep-alive connection was kept");

    // a body that stops coming: the request fails and nothing is stored
    let mut s = TcpStream::connect(host(&tc)).await.unwrap();
    let head = format!(
        "PUT /pithos/object-store/v1/{}/pithos/stalled HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\n\
         Content-Type: x/y\r\nContent-Length: 100000\r\n\r\n",
        tc.alice
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[7u8; 5000]).await.unwrap();
    let (closed, reply) = closed_within(&mut s, Duration::from_secs(20)).await;
    assert!(closed, "a stalled body held its connection");
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&reply));
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &url(&tc, &tc.alice, "pithos", "stalled")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped() {
    let tc = TestCloud::start_with(|c| c.limits.idle_timeout = Duration::from_secs(1)).await;
    let size = 32usize << 20;
    tc.put_object("pithos", "big", &random_bytes(size, 50)).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(host(&tc).parse().unwrap()).await.unwrap();
    let req = format!(
        "GET /pithos/object-store/v1/{}/pithos/big HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\n\r\n",
        tc.alice
    );
    s.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await; // not reading
    let (closed, got) = closed_within(&mut s, Duration::from_secs(30)).await;
    assert!(closed, "the connection was kept");
    assert!(got.len() < size, "the whole object arrived ({} bytes): nothing was dropped", got.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped() {
    let tc = TestCloud::start_with(|c| c.limits.max_connections = 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(host(&tc)).await.unwrap());
    }
    // the fifth is told to come back, and closed
    let mut fifth = TcpStream::connect(host(&tc)).await.unwrap();
    let (closed, reply) = closed_within(&mut fifth, Duration::from_secs(20)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(closed && reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("Retry-After"), "{reply}");
    // one goes away: a new client is served again
    drop(held.pop());
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut served = false;
    for _ in 0..100 {
        if let Ok(r) = fresh.post(format!("{}/tokens", tc.identity())).send().await {
            if r.status() == StatusCode::OK {
                served = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "no connection slot came back");
    // the held ones still work
    let mut s = held.pop().unwrap();
    s.write_all(b"POST /identity/v2.0/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, reply) = closed_within(&mut s, Duration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));
}

/// Sends a request head (and no body) on a new connection; returns the status line.
async fn status_of_head(tc: &TestCloud, head: &str) -> String {
    let mut s = TcpStream::connect(host(tc)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed without an answer");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_by_kind() {
    let tc = cloud(|_| {}).await;
    let path = format!("/pithos/object-store/v1/{}/pithos", tc.alice);
    // announced sizes past the limit are refused before any byte of the body
    let plain = format!(
        "PUT {path}/huge HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\nContent-Type: x/y\r\nContent-Length: {}\r\n\r\n",
        (5u64 << 30) + 1
    );
    assert_eq!(status_of_head(&tc, &plain).await, "HTTP/1.1 413 Payload Too Large");
    let hashmap = format!(
        "PUT {path}/huge?hashmap HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\nContent-Type: x/y\r\nContent-Length: 20000000\r\n\r\n"
    );
    assert_eq!(status_of_head(&tc, &hashmap).await, "HTTP/1.1 413 Payload Too Large");
    let identity = "POST /identity/v2.0/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n";
    assert_eq!(status_of_head(&tc, identity).await, "HTTP/1.1 413 Payload Too Large");
    let compute = format!(
        "POST /cyclades/compute/v2.0/servers HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1048577\r\n\r\n"
    );
    assert_eq!(status_of_head(&tc, &compute).await, "HTTP/1.1 413 Payload Too Large");

    // a block upload of more than 16 blocks, chunked
    let r = tc
        .alice(POST, &format!("{}/{}/pithos?update", tc.pithos(), tc.alice))
        .header("Content-Type", "application/octet-stream")
        .body(chunked(random_bytes(17 * BS, 60)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // a hashmap of one hash more than MAX_BLOCKS_PER_OBJECT, streamed past
    let one = blocks::hash_block(Algorithm::Sha256, b"x").to_hex();
    let n = MAX_BLOCKS_PER_OBJECT as usize + 1;
    let mut body = String::with_capacity(n * 68 + 64);
    body.push_str(&format!("{{\"bytes\": {}, \"hashes\": [", n * BS));
    for i in 0..n {
        if i > 0 {
            body.push_str(", ");
        }
        body.push('"');
        body.push_str(&one);
        body.push('"');
    }
    body.push_str("]}");
    let r = tc
        .alice(PUT, &format!("{}?hashmap&format=json", url(&tc, &tc.alice, "pithos", "many")))
        .header("Content-Type", "x/y")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(json_of(r).await["requestEntityTooLarge"]["message"].as_str().unwrap().contains("262144"));
}

/// A manifest object gathers a bounded number of parts: a GET of one naming
/// more than `MAX_MANIFEST_PARTS` objects is refused, not laid out in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_gather_a_bounded_number_of_parts() {
    use pithosfs::cloud::pithos::object::MAX_MANIFEST_PARTS;
    let tc = cloud(|_| {}).await;
    tc.bulk_objects("pithos", "parts/", MAX_MANIFEST_PARTS - 1).await;
    tc.put_object("pithos", "parts/zz-last", b"the end").await;
    let manifest = |name: &'static str, prefix: &'static str| {
        tc.alice(Method::PUT, &tc.object_url("pithos", name))
            .header("Content-Type", "text/plain")
            .header("X-Object-Manifest", prefix)
            .body("")
            .send()
    };
    assert_eq!(manifest("whole", "pithos/parts/").await.unwrap().status(), 201);
    let (status, body) = get_bytes(&tc, ALICE_TOKEN, &tc.object_url("pithos", "whole")).await;
    assert_eq!((status, body.as_slice()), (200, &b"the end"[..]), "exactly at the cap it reads");
    tc.put_object("pithos", "parts/zz-one-more", b"!").await;
    let r = tc.alice(Method::GET, &tc.object_url("pithos", "whole")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("more than"), "a clear refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_are_merged_and_capped() {
    let tc = cloud(|_| {}).await;
    let data = random_bytes(1000, 70);
    tc.put_object("pithos", "r", &data).await;
    let obj = url(&tc, &tc.alice, "pithos", "r");
    let ranges = |n: usize| (0..n).map(|i| format!("{}-{}", i * 3, i * 3)).collect::<Vec<_>>().join(",");
    let r = tc.alice(GET, &obj).header("Range", format!("bytes={}", ranges(65))).send().await.unwrap();
    assert_eq!(r.status(), 416);
    let r = tc.alice(GET, &obj).header("Range", format!("bytes={}", ranges(64))).send().await.unwrap();
    assert_eq!(r.status(), 206);
    let body = r.bytes().await.unwrap();
    assert_eq!(body.windows(15).filter(|w| w == b"Content-Range: ").count(), 64);
    // 500 overlapping ranges are one
    let overlapping = (0..500).map(|i| format!("{}-{}", i, i + 10)).collect::<Vec<_>>().join(",");
    let r = tc.alice(GET, &obj).header("Range", format!("bytes={overlapping}")).send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 0-509/1000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), data[..510].to_vec());
}

// ---------- 5. checked arithmetic ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_at_the_edges_are_4xx_never_a_wrap() {
    let tc = cloud(|_| {}).await;
    let account = format!("{}/{}", tc.pithos(), tc.alice);
    let data = random_bytes(10, 80);
    tc.put_object("pithos", "n", &data).await;
    let obj = url(&tc, &tc.alice, "pithos", "n");
    let status = |r: reqwest::Response| r.status().as_u16();
    let post = |range: &str, body: &'static [u8]| {
        tc.alice(POST, &obj)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", range.to_string())
            .body(body)
            .send()
    };
    for (range, want) in [
        ("bytes 0-18446744073709551615/*", 413),
        ("bytes 5-18446744073709551615/*", 400), // disagrees with Content-Length 5
        ("bytes 18446744073709551615-/*", 416),
        ("bytes 9223372036854775808-9223372036854775809/*", 416),
        ("bytes 0-4/18446744073709551615", 416),
        ("bytes 0-18446744073709551616/*", 416),
        ("bytes -1-4/*", 416),
        ("bytes */18446744073709551615", 416),
    ] {
        assert_eq!(status(post(range, b"hello").await.unwrap()), want, "{range}");
    }
    // writes announced past the largest object (sent raw: no client would);
    // u64::MAX itself is refused by hyper (431), the largest it passes on by us
    for len in [u64::MAX, u64::MAX - 2] {
        let want = if len == u64::MAX { "HTTP/1.1 431" } else { "HTTP/1.1 413" };
        let append = format!(
            "POST /pithos/object-store/v1/{}/pithos/n HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\n\
             Content-Type: application/octet-stream\r\nContent-Range: bytes 3-/*\r\nContent-Length: {len}\r\n\r\n",
            tc.alice
        );
        let put = format!(
            "PUT /pithos/object-store/v1/{}/pithos/m HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\n\
             Content-Type: x/y\r\nContent-Length: {len}\r\n\r\n",
            tc.alice
        );
        for head in [append, put] {
            let got = status_of_head(&tc, &head).await;
            assert!(got.starts_with(want), "Content-Length {len}: {got}");
        }
    }
    // X-Object-Bytes
    for (v, want) in [("-1", 400), ("18446744073709551616", 400), ("1e3", 400), ("18446744073709551615", 204)] {
        let r = tc
            .alice(POST, &obj)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", "bytes */*")
            .header("X-Object-Bytes", v)
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), want, "X-Object-Bytes: {v}");
    }
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &obj).await, (200, data.clone()), "no edge changed the object");
    // `bytes` of a hashmap
    let h = vec![blocks::hash_block(Algorithm::Sha256, &data).to_hex()];
    for bytes in [json!(u64::MAX), json!("18446744073709551616"), json!(-1), json!(1e300), json!(i64::MAX as u64 + 1)] {
        let r = tc
            .alice(PUT, &format!("{obj}?hashmap&format=json"))
            .header("Content-Type", "x/y")
            .json(&json!({"bytes": bytes, "hashes": h}))
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 400, "bytes: {bytes}");
    }
    // Range
    let r = tc.alice(GET, &obj).header("Range", "bytes=-18446744073709551615").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.bytes().await.unwrap().to_vec()), (206, data.clone()));
    let r = tc.alice(GET, &obj).header("Range", "bytes=18446744073709551615-").send().await.unwrap();
    assert_eq!(status(r), 416);
    let r = tc.alice(GET, &obj).header("Range", "bytes=9223372036854775807-18446744073709551615").send().await.unwrap();
    assert_eq!(status(r), 416);
    // `until` and `limit`: out of range is 400, and a purge never becomes a delete
    for q in ["until=9223372036854775808", "until=-9223372036854775809", "until=99999999999999999999999"] {
        let r = tc.alice(DELETE, &format!("{obj}?{q}")).send().await.unwrap();
        assert_eq!(status(r), 400, "{q}");
    }
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &obj).await.0, 200, "the object is still there");
    for q in ["limit=9223372036854775808", "limit=-9223372036854775809"] {
        assert_eq!(status(tc.alice(GET, &format!("{account}/pithos?{q}")).send().await.unwrap()), 400, "{q}");
    }
    let r = tc.alice(GET, &format!("{account}/pithos?limit=9223372036854775807&format=json")).send().await.unwrap();
    assert_eq!(status(r), 200);
    assert_eq!(status(tc.alice(GET, &format!("{obj}?version=9223372036854775808")).send().await.unwrap()), 400);
    // quota policies
    for q in ["9223372036854775808", "18446744073709551615", "18446744073709551616", "-1", "1.5"] {
        let r =
            tc.alice(POST, &format!("{account}/pithos")).header("X-Container-Policy-Quota", q).send().await.unwrap();
        assert_eq!(status(r), 400, "quota {q}");
    }
    let max = i64::MAX.to_string();
    let r = tc.alice(POST, &format!("{account}/pithos")).header("X-Container-Policy-Quota", &max).send().await.unwrap();
    assert_eq!(status(r), 202);
    assert_eq!(header_of(&tc, ALICE_TOKEN, &format!("{account}/pithos"), "x-container-policy-quota").await, max);
    // and writes still go in under that quota (no overflow in the check)
    let r = tc.alice(PUT, &url(&tc, &tc.alice, "pithos", "q")).header("Content-Type", "x/y").body("x").send();
    assert_eq!(status(r.await.unwrap()), 201);
}
