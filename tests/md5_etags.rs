//! `pithosfs serve --md5-etags`: Synnefo's MD5 mode (`PITHOS_UPDATE_MD5`).
//! An object's `ETag` is the MD5 of its content, computed when a version is
//! written, so that Swift clients can check their uploads. Over real HTTP
//! against the in-process local cloud (every way a version is made, the
//! preconditions, the `ETag` request header, the default mode unchanged),
//! then the real `rclone` and `swift` (python-swiftclient) against a real
//! `pithosfs serve --md5-etags` child, and against one without the flag,
//! where both fail.

mod common;
mod harness;

use common::blocks::{hashmap_of, hexes, post_blocks, random_bytes};
use common::{TestCloud, ALICE_TOKEN};
use md5::Digest;
use pithosfs::blocks::{self, Algorithm};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Small blocks: multi-block objects stay small.
const BS: u64 = 64 * 1024;

async fn md5_cloud() -> TestCloud {
    TestCloud::start_with(|c| {
        c.md5_etags = true;
        c.block_size = BS;
    })
    .await
}

async fn default_cloud() -> TestCloud {
    TestCloud::start_with(|c| c.block_size = BS).await
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

fn merkle_hex(data: &[u8]) -> String {
    blocks::merkle(Algorithm::Sha256, &hashmap_of(data, BS)).to_hex()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

async fn put(tc: &TestCloud, name: &str, data: &[u8], extra: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = tc
        .alice(Method::PUT, &tc.object_url("pithos", name))
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec());
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

/// A PUT whose body goes out with `Transfer-Encoding: chunked` (a stream of
/// unknown length, in pieces that do not line up with blocks).
async fn put_chunked(tc: &TestCloud, name: &str, data: &[u8]) -> reqwest::Response {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(10_007).map(|c| Ok(c.to_vec())).collect();
    tc.alice(Method::PUT, &tc.object_url("pithos", name))
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(pieces)))
        .send()
        .await
        .unwrap()
}

async fn head(tc: &TestCloud, name: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = tc.alice(Method::HEAD, &tc.object_url("pithos", name));
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

/// The listing entry of `name` in alice's `pithos` container.
async fn listed(tc: &TestCloud, name: &str) -> Value {
    let url = format!("{}/{}/pithos?format=json&prefix={}", tc.pithos(), tc.alice, common::quote(name));
    let r = tc.alice(Method::GET, &url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list: Vec<Value> = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    list.into_iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("{name} is not listed"))
}

/// ETag of the PUT reply, of HEAD and of GET, and the listing's `hash` and
/// `x_object_hash`, all as expected for `data`.
async fn assert_md5_everywhere(tc: &TestCloud, name: &str, data: &[u8], put_etag: &str) {
    let (md5, merkle) = (md5_hex(data), merkle_hex(data));
    assert_eq!(put_etag, md5, "{name}: ETag of the PUT");
    let h = head(tc, name, &[]).await;
    assert_eq!(h.status(), 200);
    assert_eq!(header(&h, "etag"), md5, "{name}: ETag of HEAD");
    assert_eq!(header(&h, "x-object-hash"), merkle, "{name}: X-Object-Hash stays the Merkle hash");
    let g = tc.alice(Method::GET, &tc.object_url("pithos", name)).send().await.unwrap();
    assert_eq!(header(&g, "etag"), md5, "{name}: ETag of GET");
    assert_eq!(g.bytes().await.unwrap().as_ref(), data, "{name}: content");
    let e = listed(tc, name).await;
    assert_eq!(e["hash"], md5.as_str(), "{name}: listing hash is the MD5");
    assert_eq!(e["x_object_hash"], merkle.as_str(), "{name}: listing x_object_hash is the Merkle hash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_chunked_puts_answer_the_md5() {
    let tc = md5_cloud().await;
    for (name, data) in [
        ("empty", Vec::new()),
        ("small.txt", b"hello".to_vec()),
        ("multi.bin", random_bytes(3 * BS as usize + 123, 1)),
        ("exact.bin", random_bytes(2 * BS as usize, 2)),
    ] {
        let r = put(&tc, name, &data, &[]).await;
        assert_eq!(r.status(), 201, "{name}");
        assert_md5_everywhere(&tc, name, &data, &header(&r, "etag")).await;
    }
    let data = random_bytes(5 * BS as usize + 7, 3);
    let r = put_chunked(&tc, "chunked.bin", &data).await;
    assert_eq!(r.status(), 201);
    assert_md5_everywhere(&tc, "chunked.bin", &data, &header(&r, "etag")).await;
    // the worked example of the protocol reference
    assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_moves_and_metadata_updates_keep_the_md5() {
    let tc = md5_cloud().await;
    let data = random_bytes(2 * BS as usize + 5, 4);
    let md5 = md5_hex(&data);
    assert_eq!(header(&put(&tc, "src.bin", &data, &[]).await, "etag"), md5);
    // PUT with X-Copy-From
    let r = put(&tc, "copy.bin", b"", &[("X-Copy-From", "/pithos/src.bin")]).await;
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "etag"), md5);
    assert_eq!(header(&head(&tc, "copy.bin", &[]).await, "etag"), md5);
    // COPY with Swift's Destination form (no leading slash), as rclone sends it
    let r = tc
        .alice(Method::from_bytes(b"COPY").unwrap(), &tc.object_url("pithos", "src.bin"))
        .header("Destination", "pithos/swift-copy.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&head(&tc, "swift-copy.bin", &[]).await, "etag"), md5);
    // MOVE with the Pithos form
    let r = tc
        .alice(Method::from_bytes(b"MOVE").unwrap(), &tc.object_url("pithos", "copy.bin"))
        .header("Destination", "/pithos/moved.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(head(&tc, "copy.bin", &[]).await.status(), 404);
    assert_md5_everywhere(&tc, "moved.bin", &data, &md5).await;
    // a metadata update makes a new version with the same content
    let r = tc
        .alice(Method::POST, &format!("{}?update", tc.object_url("pithos", "moved.bin")))
        .header("X-Object-Meta-Colour", "blue")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let h = head(&tc, "moved.bin", &[]).await;
    assert_eq!(header(&h, "x-object-meta-colour"), "blue");
    assert_eq!(header(&h, "etag"), md5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashmap_puts_and_ranged_updates_get_the_md5_of_their_content() {
    let tc = md5_cloud().await;
    // a hashmap PUT: the server reads the blocks back, as Synnefo does
    let data = random_bytes(3 * BS as usize + 99, 5);
    let hashes = hashmap_of(&data, BS);
    post_blocks(&tc, ALICE_TOKEN, &tc.alice, "pithos", &data).await;
    let r = tc
        .alice(Method::PUT, &format!("{}?hashmap=True&format=json", tc.object_url("pithos", "hm.bin")))
        .header("Content-Type", "application/octet-stream")
        .json(&json!({"bytes": data.len(), "hashes": hexes(&hashes)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_md5_everywhere(&tc, "hm.bin", &data, &header(&r, "etag")).await;
    // kamaki's hashmap PUT of an empty file
    let r = tc
        .alice(Method::PUT, &format!("{}?hashmap=True&format=json", tc.object_url("pithos", "hm-empty")))
        .header("Content-Type", "application/octet-stream")
        .json(&json!({"bytes": 0, "hashes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "etag"), md5_hex(b""));

    // appends, overwrites and truncations (POST with Content-Range)
    let mut want = data.clone();
    let tail = random_bytes(BS as usize + 10, 6);
    let post = |range: String, body: Vec<u8>, extra: Option<(&'static str, String)>| {
        let mut rb = tc
            .alice(Method::POST, &format!("{}?update", tc.object_url("pithos", "hm.bin")))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", range)
            .body(body);
        if let Some((k, v)) = extra {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    let r = post("bytes */*".into(), tail.clone(), None).await.unwrap();
    assert_eq!(r.status(), 204);
    want.extend_from_slice(&tail);
    assert_md5_everywhere(&tc, "hm.bin", &want, &header(&r, "etag")).await;
    let patch = b"patched across a block boundary".to_vec();
    let at = BS as usize - 5;
    let r = post(format!("bytes {at}-{}/*", at + patch.len() - 1), patch.clone(), None).await.unwrap();
    assert_eq!(r.status(), 204);
    want[at..at + patch.len()].copy_from_slice(&patch);
    assert_md5_everywhere(&tc, "hm.bin", &want, &header(&r, "etag")).await;
    // truncation to a whole number of blocks (where Synnefo's own sum slips)
    let cut = 2 * BS as usize;
    let r = tc
        .alice(Method::POST, &format!("{}?update", tc.object_url("pithos", "hm.bin")))
        .header("Content-Type", "application/octet-stream")
        .header("X-Source-Object", "/pithos/hm.bin")
        .header("Content-Range", format!("bytes 0-{}/*", cut - 1))
        .header("X-Object-Bytes", cut.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    want.truncate(cut);
    assert_eq!(header(&r, "etag"), md5_hex(&want));
    let g = tc.alice(Method::GET, &tc.object_url("pithos", "hm.bin")).send().await.unwrap();
    assert_eq!(header(&g, "etag"), md5_hex(&want));
    assert_eq!(g.bytes().await.unwrap().as_ref(), &want[..]);
}

/// `If-Match`, `If-None-Match` and `If-Range` take the MD5, and the Merkle
/// hash too (`X-Object-Hash`, which Pithos clients such as the mount
/// condition their writes on); anything else fails them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_compare_with_the_md5_and_the_merkle_hash() {
    let tc = md5_cloud().await;
    let data = b"conditional content".to_vec();
    put(&tc, "c.txt", &data, &[]).await;
    let (md5, merkle, other) = (md5_hex(&data), merkle_hex(&data), md5_hex(b"other"));
    assert_eq!(head(&tc, "c.txt", &[("If-Match", &md5)]).await.status(), 200);
    assert_eq!(head(&tc, "c.txt", &[("If-Match", &format!("\"{md5}\""))]).await.status(), 200);
    assert_eq!(head(&tc, "c.txt", &[("If-Match", &merkle)]).await.status(), 200);
    assert_eq!(head(&tc, "c.txt", &[("If-Match", &other)]).await.status(), 412);
    for tag in [&md5, &merkle] {
        let r = head(&tc, "c.txt", &[("If-None-Match", tag)]).await;
        assert_eq!(r.status(), 304);
        assert_eq!(header(&r, "etag"), md5);
    }
    assert_eq!(head(&tc, "c.txt", &[("If-None-Match", &other)]).await.status(), 200);
    // conditional overwrites
    assert_eq!(put(&tc, "c.txt", b"new", &[("If-Match", &other)]).await.status(), 412);
    let r = put(&tc, "c.txt", b"new", &[("If-Match", &md5)]).await;
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "etag"), md5_hex(b"new"));
    let r = put(&tc, "c.txt", b"newer", &[("If-Match", &merkle_hex(b"new"))]).await;
    assert_eq!(r.status(), 201);
    // If-Range with the MD5 keeps the range, with another tag it does not
    let range = |tag: String| {
        tc.alice(Method::GET, &tc.object_url("pithos", "c.txt"))
            .header("Range", "bytes=0-1")
            .header("If-Range", tag)
            .send()
    };
    assert_eq!(range(md5_hex(b"newer")).await.unwrap().status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(range(md5_hex(b"new")).await.unwrap().status(), StatusCode::OK);
}

/// The `ETag` request header on a plain PUT is the MD5 the client expects:
/// checked in both modes (Synnefo does), 422 and no new version when wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_etag_request_header_is_422_and_stores_nothing() {
    for tc in [md5_cloud().await, default_cloud().await] {
        let data = random_bytes(2 * BS as usize + 1, 7);
        let wrong = md5_hex(b"something else");
        let r = put(&tc, "checked.bin", &data, &[("ETag", &wrong)]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(head(&tc, "checked.bin", &[]).await.status(), 404, "nothing stored");
        // over an existing object: the old version stays
        put(&tc, "kept.txt", b"old", &[]).await;
        let before = header(&head(&tc, "kept.txt", &[]).await, "x-object-version");
        assert_eq!(put(&tc, "kept.txt", &data, &[("ETag", &wrong)]).await.status(), 422);
        let h = head(&tc, "kept.txt", &[]).await;
        assert_eq!(header(&h, "x-object-version"), before);
        assert_eq!(header(&h, "content-length"), "3");
        // the right MD5 (quoted, upper case) passes and is stored either way
        let right = format!("\"{}\"", md5_hex(&data).to_uppercase());
        assert_eq!(put(&tc, "checked.bin", &data, &[("ETag", &right)]).await.status(), 201);
        assert_eq!(listed(&tc, "checked.bin").await["hash"], md5_hex(&data).as_str());
    }
}

/// Without `--md5-etags` nothing changes: the Merkle hash is the ETag, no MD5
/// is kept unless asked for, Swift's Destination form is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_mode_is_unchanged() {
    let tc = default_cloud().await;
    let data = random_bytes(3 * BS as usize, 8);
    let merkle = merkle_hex(&data);
    let r = put(&tc, "d.bin", &data, &[]).await;
    assert_eq!(header(&r, "etag"), merkle);
    let h = head(&tc, "d.bin", &[]).await;
    assert_eq!(header(&h, "etag"), merkle);
    assert_eq!(header(&h, "x-object-hash"), merkle);
    assert_eq!(head(&tc, "d.bin", &[("If-Match", &merkle)]).await.status(), 200);
    assert_eq!(head(&tc, "d.bin", &[("If-Match", &md5_hex(&data))]).await.status(), 412);
    let e = listed(&tc, "d.bin").await;
    assert_eq!(e["hash"], "");
    assert_eq!(e["x_object_hash"], merkle.as_str());
    let r = tc
        .alice(Method::from_bytes(b"COPY").unwrap(), &tc.object_url("pithos", "d.bin"))
        .header("Destination", "pithos/swift-copy.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = tc.alice(Method::PUT, &tc.object_url("pithos", "no-type")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 411, "Content-Type stays required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_answers_the_md5_of_its_parts_md5s() {
    let tc = md5_cloud().await;
    let (a, b) = (random_bytes(BS as usize + 3, 9), random_bytes(10, 10));
    put(&tc, "parts/1", &a, &[]).await;
    put(&tc, "parts/2", &b, &[]).await;
    put(&tc, "whole", b"", &[("X-Object-Manifest", "pithos/parts/")]).await;
    let g = tc.alice(Method::GET, &tc.object_url("pithos", "whole")).send().await.unwrap();
    let want = md5_hex(format!("{}{}", md5_hex(&a), md5_hex(&b)).as_bytes());
    assert_eq!(header(&g, "etag"), want);
    let body = g.bytes().await.unwrap();
    assert_eq!(body.len(), a.len() + b.len());
}

// ---------------------------------------------------------------------------
// real Swift clients against a real `pithosfs serve [--md5-etags]`
// ---------------------------------------------------------------------------

mod clients {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Output, Stdio};

    pub const TOKEN: &str = "md5-etags-test-token-0123456789";

    /// A `pithosfs serve` child with a 64 KiB block size, stopped on drop.
    pub struct Serve {
        child: Child,
        pub url: String,
        pub storage_url: String,
    }

    impl Drop for Serve {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Serve {
        pub fn start(root: &Path, extra: &[&str]) -> Serve {
            std::fs::create_dir_all(root).unwrap();
            let users = root.join("users");
            std::fs::write(&users, format!("tester {TOKEN}\n")).unwrap();
            let log = std::fs::File::create(root.join("serve.log")).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
                .arg("serve")
                .arg("--data")
                .arg(root.join("data"))
                .args(["--listen", "127.0.0.1:0", "--block-size", "65536", "--users-file"])
                .arg(&users)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .expect("start pithosfs serve");
            let mut line = String::new();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            out.read_line(&mut line).unwrap();
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            let url = line.trim().to_string();
            assert!(url.starts_with("http://127.0.0.1:"), "pithosfs serve said {line:?}");
            let auth = login(&url);
            let uuid = auth["access"]["user"]["id"].as_str().expect("user id").to_string();
            let storage_url = format!("{url}{}/{uuid}", pithosfs::cloud::PITHOS_PATH);
            Serve { child, url, storage_url }
        }
    }

    /// The token's user (`POST /identity/v2.0/tokens`), on a runtime of its
    /// own: the client tests are synchronous.
    fn login(url: &str) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let body = format!(r#"{{"auth":{{"token":{{"id":"{TOKEN}"}}}}}}"#);
            let r = reqwest::Client::new()
                .post(format!("{url}/identity/v2.0/tokens"))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            serde_json::from_str(&r.text().await.unwrap()).unwrap()
        })
    }

    /// Whether `tool` runs here. Absent: skipped with a message, except under
    /// CI, where `scripts/setup --tests` installs it and absence fails.
    pub fn present(tool: &str, package: &str) -> bool {
        if Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return true;
        }
        let ci = std::env::var("CI").unwrap_or_default();
        assert!(
            matches!(ci.as_str(), "" | "0" | "false"),
            "{tool} is missing: CI must run this test (scripts/setup --tests installs {package})"
        );
        println!("skipped: {tool} is not installed (apt-get install {package}, or scripts/setup --tests)");
        false
    }

    /// rclone with its Swift backend on `serve`, configured by environment
    /// variables only (no config file); the token never goes on its command line.
    pub fn rclone(serve: &Serve, args: &[&str]) -> Output {
        Command::new("rclone")
            .args(args)
            .args(["--retries", "1", "--low-level-retries", "1", "--contimeout", "10s", "--timeout", "60s"])
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_LOCAL_TYPE", "swift")
            .env("RCLONE_CONFIG_LOCAL_STORAGE_URL", &serve.storage_url)
            .env("RCLONE_CONFIG_LOCAL_AUTH_TOKEN", TOKEN)
            .output()
            .expect("run rclone")
    }

    /// python-swiftclient's `swift`, pre-authenticated (storage URL and token
    /// from the environment), run in `dir`.
    pub fn swift(serve: &Serve, dir: &Path, args: &[&str]) -> Output {
        Command::new("swift")
            .args(args)
            .current_dir(dir)
            .env("OS_STORAGE_URL", &serve.storage_url)
            .env("OS_AUTH_TOKEN", TOKEN)
            .env_remove("ST_AUTH")
            .env_remove("OS_AUTH_URL")
            .output()
            .expect("run swift")
    }

    pub fn text(o: &Output) -> String {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    }

    /// A folder of small, empty and multi-block (64 KiB blocks) files.
    pub fn folder(root: &Path) -> PathBuf {
        let src = root.join("src");
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::write(src.join("hello.txt"), b"hello\n").unwrap();
        std::fs::write(src.join("empty"), b"").unwrap();
        std::fs::write(src.join("sub/multi.bin"), super::random_bytes(5 * 65536 + 1234, 11)).unwrap();
        std::fs::write(src.join("sub/exact.bin"), super::random_bytes(2 * 65536, 12)).unwrap();
        std::fs::write(src.join("sub/deeper/notes.md"), "# notes\n".repeat(100)).unwrap();
        src
    }

    /// Every file under `dir`, relative, sorted.
    pub fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().to_path_buf());
                }
            }
        }
        out.sort();
        out
    }

    pub fn same_trees(a: &Path, b: &Path) {
        let (fa, fb) = (files(a), files(b));
        assert_eq!(fa, fb, "the same files");
        for f in fa {
            assert_eq!(std::fs::read(a.join(&f)).unwrap(), std::fs::read(b.join(&f)).unwrap(), "{}", f.display());
        }
    }
}

/// rclone (Swift backend) copies a folder into the local cloud started with
/// `--md5-etags`, `rclone check` finds no difference, a download compares
/// equal and a server-side rename works; the same copy into a cloud without
/// the flag fails (rclone reads the Merkle ETag as a corrupted upload).
#[test]
fn rclone_writes_through_md5_etags_and_not_without() {
    if !clients::present("rclone", "rclone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = clients::folder(dir.path());

    let serve = clients::Serve::start(&dir.path().join("md5"), &["--md5-etags"]);
    let o = clients::rclone(&serve, &["copy", src.to_str().unwrap(), "local:pithos/backup"]);
    assert!(o.status.success(), "rclone copy failed:\n{}", clients::text(&o));
    let o = clients::rclone(&serve, &["check", src.to_str().unwrap(), "local:pithos/backup"]);
    assert!(o.status.success(), "rclone check failed:\n{}", clients::text(&o));
    let out = clients::text(&o);
    assert!(out.contains("0 differences found"), "{out}");
    // it compared MD5s: the listing's `hash` is what rclone reads
    let o = clients::rclone(&serve, &["md5sum", "local:pithos/backup/sub/multi.bin"]);
    let want = md5_hex(&std::fs::read(src.join("sub/multi.bin")).unwrap());
    assert!(clients::text(&o).starts_with(&want), "{}", clients::text(&o));
    // a rename is COPY (with Swift's Destination form) and DELETE
    let o = clients::rclone(&serve, &["moveto", "local:pithos/backup/hello.txt", "local:pithos/backup/renamed.txt"]);
    assert!(o.status.success(), "rclone moveto failed:\n{}", clients::text(&o));
    std::fs::rename(src.join("hello.txt"), src.join("renamed.txt")).unwrap();
    let back = dir.path().join("back");
    let o = clients::rclone(&serve, &["copy", "local:pithos/backup", back.to_str().unwrap()]);
    assert!(o.status.success(), "rclone download failed:\n{}", clients::text(&o));
    clients::same_trees(&src, &back);
    drop(serve);

    let plain = clients::Serve::start(&dir.path().join("plain"), &[]);
    let o = clients::rclone(&plain, &["copy", src.to_str().unwrap(), "local:pithos/backup"]);
    assert!(!o.status.success(), "rclone copy passed without --md5-etags:\n{}", clients::text(&o));
    assert!(clients::text(&o).contains("Object Corrupted"), "{}", clients::text(&o));
}

/// python-swiftclient's `swift upload` checks each upload's ETag against the
/// MD5 it computed, and `swift download` each download's: both pass with
/// `--md5-etags` (no Content-Type needed), and the upload fails without it.
#[test]
fn swiftclient_uploads_and_downloads_through_md5_etags() {
    if !clients::present("swift", "python3-swiftclient") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = clients::folder(dir.path());

    let serve = clients::Serve::start(&dir.path().join("md5"), &["--md5-etags"]);
    let o = clients::swift(&serve, &src, &["upload", "pithos", "hello.txt", "empty", "sub"]);
    assert!(o.status.success(), "swift upload failed:\n{}", clients::text(&o));
    let back = dir.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    let o = clients::swift(&serve, &back, &["download", "pithos"]);
    assert!(o.status.success(), "swift download failed:\n{}", clients::text(&o));
    assert!(!clients::text(&o).to_lowercase().contains("md5"), "{}", clients::text(&o));
    clients::same_trees(&src, &back);
    drop(serve);

    let plain = clients::Serve::start(&dir.path().join("plain"), &[]);
    let o = clients::swift(&plain, &src, &["upload", "pithos", "hello.txt", "--header", "Content-Type: text/plain"]);
    assert!(!o.status.success(), "swift upload passed without --md5-etags:\n{}", clients::text(&o));
    assert!(clients::text(&o).contains("md5 mismatch"), "{}", clients::text(&o));
}

/// The pithosfs mount against `serve --md5-etags`: it conditions its commits
/// on the Merkle hash it read (`If-Match`), which MD5 mode takes too, so
/// appends, in-place edits of a multi-block file (a hashmap PUT, whose MD5
/// the server reads back) and renames work, with the MD5 of the new content
/// as ETag and no conflict copies.
#[test]
fn the_mount_writes_through_md5_etags() {
    assert!(std::path::Path::new("/dev/fuse").exists(), "/dev/fuse is missing: this test needs FUSE");
    let dir = tempfile::tempdir().unwrap();
    let serve = clients::Serve::start(&dir.path().join("md5"), &["--md5-etags"]);
    let point = dir.path().join("mnt");
    let identity = format!("{}{}", serve.url, pithosfs::cloud::IDENTITY_PATH);
    let mut mount = harness::Mount::start(
        &point,
        &dir.path().join("mount.log"),
        &[],
        &[("PITHOSFS_URL", &identity), ("PITHOSFS_TOKEN", clients::TOKEN)],
    );
    let c = point.join("pithos");
    std::fs::write(c.join("notes.txt"), b"one\n").unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(c.join("notes.txt")).unwrap();
        f.write_all(b"two\n").unwrap();
    }
    let mut big = random_bytes(5 * BS as usize + 77, 13);
    std::fs::write(c.join("big.bin"), &big).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(c.join("big.bin")).unwrap();
        f.write_all_at(b"EDITED", 2 * BS + 10).unwrap();
    }
    big[2 * BS as usize + 10..2 * BS as usize + 16].copy_from_slice(b"EDITED");
    std::fs::rename(c.join("big.bin"), c.join("moved.bin")).unwrap();
    mount.unmount();
    assert!(!mount.log_text().contains("changed remotely"), "{}", mount.log_text());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        for (name, want) in [("notes.txt", b"one\ntwo\n".to_vec()), ("moved.bin", big.clone())] {
            let r = http
                .get(format!("{}/pithos/{name}", serve.storage_url))
                .header("X-Auth-Token", clients::TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{name}");
            assert_eq!(header(&r, "etag"), md5_hex(&want), "{name}: ETag");
            assert_eq!(r.bytes().await.unwrap().as_ref(), &want[..], "{name}: content");
        }
        let r = http
            .get(format!("{}/pithos?format=json", serve.storage_url))
            .header("X-Auth-Token", clients::TOKEN)
            .send()
            .await
            .unwrap();
        let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&r.text().await.unwrap())
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(names, ["moved.bin", "notes.txt"], "no conflict copies, the rename done");
    });
}

/// A data directory written without the flag serves with it (the MD5 lives
/// in the `checksum` column every database has): objects stored with no
/// MD5 answer an empty ETag, as in Synnefo, and still download; one stored
/// with an `ETag` request header has its MD5; a new write gets one.
#[test]
fn a_data_directory_written_without_the_flag_serves_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cloud");
    let (plain, checked) = (b"written in the default mode".to_vec(), b"sent with its MD5".to_vec());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = reqwest::Client::new();
    let put = |serve: &clients::Serve, name: &str, data: &[u8], etag: Option<String>| {
        let mut rb = http
            .put(format!("{}/pithos/{name}", serve.storage_url))
            .header("X-Auth-Token", clients::TOKEN)
            .header("Content-Type", "text/plain")
            .body(data.to_vec());
        if let Some(e) = etag {
            rb = rb.header("ETag", e);
        }
        rb.send()
    };
    let get = |serve: &clients::Serve, name: &str| {
        http.get(format!("{}/pithos/{name}", serve.storage_url)).header("X-Auth-Token", clients::TOKEN).send()
    };
    {
        let serve = clients::Serve::start(&root, &[]);
        rt.block_on(async {
            assert_eq!(put(&serve, "plain.txt", &plain, None).await.unwrap().status(), 201);
            assert_eq!(put(&serve, "checked.txt", &checked, Some(md5_hex(&checked))).await.unwrap().status(), 201);
        });
    }
    let serve = clients::Serve::start(&root, &["--md5-etags"]);
    rt.block_on(async {
        let r = get(&serve, "plain.txt").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "etag"), "", "no MD5 was computed for it");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &plain[..]);
        assert_eq!(header(&get(&serve, "checked.txt").await.unwrap(), "etag"), md5_hex(&checked));
        let r = put(&serve, "plain.txt", &plain, None).await.unwrap();
        assert_eq!(header(&r, "etag"), md5_hex(&plain), "written again, it has one");
    });
}
