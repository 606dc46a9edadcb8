//! The local cloud with its blocks in a real OpenStack Swift (`--blocks
//! swift:AUTH_URL`, issue 14): objects round-trip byte for byte (trailing
//! zeros, ranges), a block is stored once however often it is sent, the
//! hashmap protocol asks for what Swift lacks, garbage collection deletes
//! from Swift, and a data directory keeps the backend it was made with.
//! Swift from `scripts/swift start` (`PITHOSFS_SWIFT_AUTH`), as tests/swift.rs.

mod common;
mod swift_env;

use common::blocks::{get_bytes, hashmap_of, put_hashmap, random_bytes};
use common::TestCloud;
use pithosfs::clients::storage::{ListOptions, ObjectStorage, StorageClient};
use pithosfs::cloud::swift_blocks::SwiftTarget;
use pithosfs::cloud::BlocksAt;
use std::time::Duration;

const USER: &str = "test:tester";
const KEY: &str = "testing";
const BS: usize = 4096;

use swift_env::auth_url;

/// A container of this test and run.
fn unique(test: &str) -> String {
    swift_env::unique(&format!("pithosfs-blocks-{test}"))
}

fn target(auth: &str, container: &str) -> SwiftTarget {
    SwiftTarget { auth_url: auth.to_string(), user: USER.into(), key: KEY.into(), container: container.to_string() }
}

/// The blocks in the Swift container (their names).
async fn in_swift(auth: &str, container: &str) -> Vec<String> {
    let c = StorageClient::swift_v1_auth(auth, USER, KEY, container).await.expect("Swift auth");
    let listed = c.list_objects(&ListOptions::default()).await.expect("Swift listing");
    listed.iter().map(|l| l.name().to_string()).collect()
}

/// A cloud with 4 KiB blocks in Swift container `container`; its collector
/// waits to be asked, and takes unreferenced blocks at once.
async fn cloud(auth: &str, container: &str) -> TestCloud {
    let t = target(auth, container);
    TestCloud::start_with(move |c| {
        c.block_size = BS as u64;
        c.gc.interval = Duration::from_secs(3600);
        c.gc.delay = Duration::ZERO;
        c.gc.upload_grace = Duration::ZERO;
        c.blocks = BlocksAt::Swift(t);
    })
    .await
}

fn run_gc(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["serve", "gc", "--json", "--data"])
        .arg(dir)
        .output()
        .expect("run pithosfs serve gc");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "serve gc failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_through_swift_blocks_stored_once() {
    let Some(auth) = auth_url() else { return };
    let container = unique("roundtrip");
    let tc = cloud(&auth, &container).await;
    // Three and a half blocks, the last two ending in zeros (not stored).
    let mut data = random_bytes(3 * BS + BS / 2, 5);
    data[2 * BS + 100..3 * BS].fill(0);
    data[3 * BS + 10..].fill(0);
    tc.put_object("pithos", "a.bin", &data).await;
    let url = tc.object_url("pithos", "a.bin");
    assert_eq!(get_bytes(&tc, common::ALICE_TOKEN, &url).await, (200, data.clone()));
    for (from, to) in [
        (BS as u64 - 5, BS as u64 + 5),
        (2 * BS as u64 + 200, 2 * BS as u64 + 300),
        (3 * BS as u64 + 20, 3 * BS as u64 + 40),
    ] {
        let r =
            tc.alice(reqwest::Method::GET, &url).header("Range", format!("bytes={from}-{to}")).send().await.unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap().to_vec(), &data[from as usize..=to as usize], "range {from}-{to}");
    }
    let stored = in_swift(&auth, &container).await;
    assert_eq!(stored.len(), 4, "one Swift object per block: {stored:?}");
    // The same content again, and as a hashmap: nothing new in Swift.
    tc.put_object("pithos", "b.bin", &data).await;
    let copy = tc.object_url("pithos", "c.bin");
    assert_eq!(put_hashmap(&tc, common::ALICE_TOKEN, &copy, data.len(), &hashmap_of(&data, BS as u64)).await.0, 201);
    assert_eq!(in_swift(&auth, &container).await.len(), 4);
    // A hashmap with a block Swift lacks is asked for it.
    let other = random_bytes(BS, 9);
    let (status, missing) =
        put_hashmap(&tc, common::ALICE_TOKEN, &tc.object_url("pithos", "d.bin"), BS, &hashmap_of(&other, BS as u64))
            .await;
    assert_eq!((status, missing.len()), (409, 1));

    // Collected from Swift once no object (nor its history) refers to the blocks.
    for name in ["a.bin", "b.bin", "c.bin"] {
        let obj = tc.object_url("pithos", name);
        let r = tc.alice(reqwest::Method::DELETE, &obj).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let r = tc.alice(reqwest::Method::DELETE, &format!("{obj}?until={}", i32::MAX)).send().await.unwrap();
        assert!(r.status().is_success(), "purge {name}: {}", r.status());
    }
    let dir = tc.dir.path().join("data");
    let report = tokio::task::spawn_blocking(move || run_gc(&dir)).await.unwrap();
    let left = in_swift(&auth, &container).await;
    assert!(left.is_empty(), "blocks left in Swift after gc: {left:?}; report {report}");
}

/// The data directory records where its blocks are: started again with the
/// block directory instead, the server refuses, naming both.
#[test]
fn a_data_directory_keeps_its_block_backend() {
    let Some(auth) = auth_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let container = unique("record");
    let serve = |blocks: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pithosfs"));
        c.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .args(["--blocks", blocks, "--blocks-swift-user", USER, "--blocks-swift-container", &container])
            .env("PITHOSFS_BLOCKS_SWIFT_KEY", KEY)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let mut first = serve(&format!("swift:{auth}")).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(first.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("http://127.0.0.1:"), "the server said {line:?}");
    let _ = first.kill();
    let _ = first.wait();
    let second = serve("dir").output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "started with another backend");
    assert!(err.contains("swift") && err.contains("dir"), "{err}");
    assert!(!err.contains(KEY), "the key was printed: {err}");
}

/// A block Swift returns changed (another system's fault, or tampering) is
/// never served as the object's content: the read fails instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_changed_in_swift_is_not_served() {
    let Some(auth) = auth_url() else { return };
    let container = unique("changed");
    let tc = cloud(&auth, &container).await;
    let data = random_bytes(2 * BS, 11);
    tc.put_object("pithos", "x.bin", &data).await;
    let first = hashmap_of(&data, BS as u64)[0].to_hex();
    let swift = StorageClient::swift_v1_auth(&auth, USER, KEY, &container).await.expect("Swift auth");
    let forged = random_bytes(BS, 12);
    swift.put_object(&first, forged.clone().into(), &Default::default()).await.expect("overwrite the block in Swift");
    let r = tc.alice(reqwest::Method::GET, &tc.object_url("pithos", "x.bin")).send().await.unwrap();
    // A cut reply (an error here) is what a client must see; a body, if
    // any came, holds neither the object nor the forged block.
    if let Ok(body) = r.bytes().await {
        assert_ne!(body.to_vec(), data, "served although Swift changed a block");
        assert!(!body.starts_with(&forged), "the forged block was served");
    }
}
