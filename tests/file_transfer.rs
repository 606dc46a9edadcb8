//! `pithosfs file upload|download|cat`: the real binary against a real
//! `pithosfs serve` child (64 KiB blocks, so a few MiB make many blocks),
//! its `--json` parsed; a download killed mid-way through a proxy that holds
//! one request; and the library's progress callbacks against the in-process
//! local cloud.

mod common;
mod harness;

use harness::faults::{Fault, FaultProxy, Stage as Hold};
use harness::{random_bytes, sha256, BIN, TOKEN};
use pithosfs::clients::pithos::{PithosClient, Progress, Stage, TransferOptions};
use pithosfs::clients::storage::PutOptions;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BLOCK: usize = 64 * 1024;

/// `pithosfs serve` with small blocks, and a scratch home for the client.
struct Cloud {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cloud {
    fn start() -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users"), format!("tester {TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--block-size", &BLOCK.to_string()])
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--users-file")
            .arg(dir.path().join("users"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
        Cloud { child, url: line.trim().to_string(), dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn identity(&self) -> String {
        format!("{}{}", self.url, pithosfs::cloud::IDENTITY_PATH)
    }

    /// `pithosfs ARGS` against this cloud (or the identity URL given), in
    /// the scratch home; stderr is a pipe, never a terminal.
    fn command(&self, identity: &str, args: &[&str]) -> Command {
        self.program(BIN, identity, args)
    }

    /// `program ARGS` with the environment of `command`.
    fn program(&self, program: &str, identity: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("KAMAKI_CONFIG", self.path("no-kamakirc"))
            .env("PITHOSFS_DATA", self.path("client-data"))
            .env("PITHOSFS_URL", identity)
            .env("PITHOSFS_TOKEN_FILE", self.path("token"))
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.command(&self.identity(), args).output().unwrap();
        for text in [&out.stdout, &out.stderr] {
            assert!(!String::from_utf8_lossy(text).contains(TOKEN), "the token was printed");
        }
        out
    }

    /// Runs, expects success and no progress output (stderr is not a terminal).
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} failed: {err}");
        assert!(!err.contains('\r') && !err.contains('\u{1b}') && !err.contains("ETA"), "a bar on a pipe: {err:?}");
        out.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ok(&args);
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
    }

    /// Fails with a message that says `what`; returns stderr.
    fn fails(&self, args: &[&str], what: &str) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {err}");
        assert!(err.contains(what), "{args:?}: expected {what:?} in {err:?}");
        err
    }

    fn write(&self, name: &str, data: &[u8]) -> String {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p.display().to_string()
    }

    /// Block files in the server's store.
    fn stored_blocks(&self) -> usize {
        fn count(p: &Path) -> usize {
            std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| if e.path().is_dir() { count(&e.path()) } else { 1 }).sum())
                .unwrap_or(0)
        }
        count(&self.path("data").join("blocks"))
    }

    /// The server's view of an object (HEAD, with the test user's token).
    fn head(&self, container: &str, name: &str) -> reqwest::header::HeaderMap {
        let account = {
            let r = harness::http(
                "POST",
                &format!("{}/tokens", self.identity()),
                &[("Content-Type", "application/json")],
                Some(format!(r#"{{"auth":{{"token":{{"id":"{TOKEN}"}}}}}}"#).into_bytes()),
            );
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["access"]["user"]["id"].as_str().unwrap().to_string()
        };
        let url = format!("{}{}/{account}/{container}/{name}", self.url, pithosfs::cloud::PITHOS_PATH);
        let r = harness::http("HEAD", &url, &[], None);
        assert_eq!(r.status, 200, "HEAD {name}");
        r.headers
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

fn file_sha(p: impl AsRef<Path>) -> String {
    sha256(&std::fs::read(p).unwrap())
}

#[test]
fn upload_and_download_a_multi_block_file() {
    let c = Cloud::start();
    let data = random_bytes(3 * 1024 * 1024 + 123, 11);
    let blocks = data.len().div_ceil(BLOCK) as u64;
    let src = c.write("big.bin", &data);
    let before = c.stored_blocks();
    let up = c.json(&["file", "upload", &src, "/pithos/dir/big.bin"]);
    assert_eq!(up["name"], "/pithos/dir/big.bin");
    assert_eq!(num(&up, "bytes"), data.len() as u64);
    assert_eq!(num(&up, "blocks"), blocks);
    assert_eq!(num(&up, "blocks_sent"), blocks, "every block was new: {up}");
    assert_eq!(num(&up, "bytes_sent"), data.len() as u64);
    assert_eq!(num(&up, "blocks_skipped"), 0);
    assert!(up["seconds"].as_f64().is_some());
    assert_eq!(c.stored_blocks() - before, blocks as usize);
    // the hash is the server's
    let head = c.head("pithos", "dir/big.bin");
    assert_eq!(head.get("x-object-hash").unwrap().to_str().unwrap(), up["hash"].as_str().unwrap());
    // an unchanged file sends nothing, and the server stores nothing new
    let stored = c.stored_blocks();
    let again = c.json(&["file", "upload", &src, "/pithos/dir/big.bin"]);
    assert_eq!(num(&again, "blocks_sent"), 0, "{again}");
    assert_eq!(num(&again, "bytes_sent"), 0);
    assert_eq!(num(&again, "blocks_skipped"), blocks);
    assert_eq!(again["hash"], up["hash"]);
    assert_eq!(c.stored_blocks(), stored);
    // down again, equal; into a folder it keeps its name
    let dst = c.path("got.bin");
    let down = c.json(&["file", "download", "/pithos/dir/big.bin", dst.to_str().unwrap()]);
    assert_eq!(file_sha(&dst), sha256(&data));
    assert_eq!(num(&down, "blocks_fetched"), blocks, "{down}");
    assert_eq!(num(&down, "bytes_fetched"), data.len() as u64);
    assert_eq!(down["hash"], up["hash"]);
    std::fs::create_dir(c.path("into")).unwrap();
    let text = String::from_utf8(c.ok(&["file", "download", "/pithos/dir/big.bin", "into"])).unwrap();
    assert!(text.starts_with("downloaded /pithos/dir/big.bin -> into/big.bin"), "{text}");
    assert_eq!(file_sha(c.path("into/big.bin")), sha256(&data));
    // a PATH ending in / or naming a folder gets the file inside it, like cp
    let small = c.write("small.txt", b"hello\n");
    c.ok(&["file", "upload", &small, "/pithos/dir/"]);
    c.ok(&["file", "upload", &small, "/pithos"]);
    let text = String::from_utf8(c.ok(&["file", "cat", "/pithos/dir/small.txt"])).unwrap();
    assert_eq!(text, "hello\n");
    assert_eq!(c.ok(&["file", "cat", "/pithos/small.txt"]), b"hello\n");
    // a plain-text summary without --json
    let text = String::from_utf8(c.ok(&["file", "upload", &src, "/pithos/copy.bin"])).unwrap();
    assert!(text.contains(&format!("in {blocks} blocks, 0 sent, {blocks} already there")), "{text}");
}

#[test]
fn download_resumes_a_partial_file() {
    let c = Cloud::start();
    let data = random_bytes(40 * BLOCK + 777, 12);
    let src = c.write("src.bin", &data);
    c.ok(&["file", "upload", &src, "/pithos/big.bin"]);
    // a download cut after 25 blocks: the file holds them, and no more
    let dst = c.write("dst.bin", &data[..25 * BLOCK + 100]);
    let down = c.json(&["file", "download", "/pithos/big.bin", &dst]);
    assert_eq!(file_sha(&dst), sha256(&data));
    assert_eq!(num(&down, "blocks"), 41);
    assert_eq!(num(&down, "blocks_fetched"), 16, "only the rest: {down}");
    assert_eq!(num(&down, "blocks_skipped"), 25);
    // a whole file with one bad block: that block only
    let mut spoiled = data.clone();
    spoiled[7 * BLOCK + 3] ^= 0x55;
    std::fs::write(&dst, &spoiled).unwrap();
    let down = c.json(&["file", "download", "/pithos/big.bin", &dst]);
    assert_eq!(num(&down, "blocks_fetched"), 1, "{down}");
    assert_eq!(file_sha(&dst), sha256(&data));
    // a longer local file is cut to the object's size
    let mut longer = data.clone();
    longer.extend_from_slice(&[9; 5000]);
    std::fs::write(&dst, &longer).unwrap();
    let down = c.json(&["file", "download", "/pithos/big.bin", &dst]);
    assert_eq!(file_sha(&dst), sha256(&data));
    assert_eq!(num(&down, "blocks_fetched"), 0, "cut to size, every block was right: {down}");
}

#[test]
fn a_download_killed_mid_way_resumes_where_it_stopped() {
    let c = Cloud::start();
    let data = random_bytes(60 * BLOCK + 5, 13);
    let src = c.write("src.bin", &data);
    c.ok(&["file", "upload", &src, "/pithos/big.bin"]);
    // the proxy holds the 20th block GET: the download cannot finish, the
    // blocks before it are on disk; then the process is killed
    let proxy = FaultProxy::start(&c.url, 1);
    let gets = Arc::new(AtomicUsize::new(0));
    let g = gets.clone();
    let held = proxy.hold(
        move |method, path, query| {
            method == "GET" && path.ends_with("/big.bin") && !query.contains("hashmap") && {
                g.fetch_add(1, Ordering::SeqCst) == 19
            }
        },
        Hold::BeforeServer,
    );
    let dst = c.path("dst.bin");
    let mut child = c
        .command(&proxy.identity(), &["file", "download", "/pithos/big.bin", dst.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !held.arrived() {
        assert!(Instant::now() < deadline, "the 20th block request never came");
        assert!(child.try_wait().unwrap().is_none(), "the download ended while a block was held");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(held);
    // a cut never leaves a file that looks whole: the blocks wait in a part file
    assert!(!dst.exists(), "a cut download left {}", dst.display());
    let part = c.path("dst.bin.pithosfs-part");
    assert_ne!(file_sha(&part), sha256(&data), "the cut download is not complete");
    // run again (straight to the server): only what is missing is fetched
    let down = c.json(&["file", "download", "/pithos/big.bin", dst.to_str().unwrap()]);
    assert_eq!(file_sha(&dst), sha256(&data));
    let fetched = num(&down, "blocks_fetched");
    eprintln!("after the kill, the download fetched {fetched} of 61 blocks");
    // 8 block requests run at once: when the 20th was sent, 12 had been written
    assert!((1..=61 - 12).contains(&fetched), "fetched {fetched} of 61: {down}");
    assert_eq!(num(&down, "blocks_skipped"), 61 - fetched);
    assert!(!part.exists(), "the part file became the file");
}

#[test]
fn an_upload_killed_mid_way_sends_only_the_rest_when_run_again() {
    let c = Cloud::start();
    let data = random_bytes(60 * BLOCK + 9, 21);
    let src = c.write("src.bin", &data);
    // the proxy holds the 30th block POST; the process is killed there
    let proxy = FaultProxy::start(&c.url, 2);
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    let held = proxy.hold(
        move |method, path, query| {
            method == "POST" && path.ends_with("/pithos") && query.contains("update") && {
                p.fetch_add(1, Ordering::SeqCst) == 29
            }
        },
        Hold::BeforeServer,
    );
    let mut child = c
        .command(&proxy.identity(), &["file", "upload", &src, "/pithos/big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !held.arrived() {
        assert!(Instant::now() < deadline, "the 30th block upload never came");
        assert!(child.try_wait().unwrap().is_none(), "the upload ended while a block was held");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // no object yet; run again: the blocks the server got are not sent again
    let out = c.run(&["file", "cat", "/pithos/big.bin"]);
    assert!(!out.status.success(), "a killed upload made the object");
    let up = c.json(&["file", "upload", &src, "/pithos/big.bin"]);
    let sent = num(&up, "blocks_sent");
    eprintln!("after the kill, the upload sent {sent} of 61 blocks");
    // 8 block requests run at once: when the 30th was sent, 22 had been stored
    assert!((1..=61 - 22).contains(&sent), "sent {sent} of 61: {up}");
    assert_eq!(sha256(&c.ok(&["file", "cat", "/pithos/big.bin"])), sha256(&data));
}

#[test]
fn versions_cat_and_folder_trees() {
    let c = Cloud::start();
    let v1 = random_bytes(3 * BLOCK + 10, 14);
    let v2 = random_bytes(2 * BLOCK + 20, 15);
    let first = c.json(&["file", "upload", &c.write("v1.bin", &v1), "/pithos/doc.bin"]);
    c.ok(&["file", "upload", &c.write("v2.bin", &v2), "/pithos/doc.bin"]);
    let version = first["version"].as_str().unwrap().to_string();
    // cat: the newest, or the version asked for
    assert_eq!(sha256(&c.ok(&["file", "cat", "/pithos/doc.bin"])), sha256(&v2));
    assert_eq!(sha256(&c.ok(&["file", "cat", "/pithos/doc.bin", "--version", &version])), sha256(&v1));
    // download --version N
    let old = c.path("old.bin");
    let down = c.json(&["file", "download", "/pithos/doc.bin", old.to_str().unwrap(), "--version", &version]);
    assert_eq!(file_sha(&old), sha256(&v1));
    assert_eq!(down["version"], first["version"]);
    assert_eq!(down["hash"], first["hash"]);
    // a folder tree with -r: folder objects as kamaki makes them, an empty folder too
    let a = random_bytes(BLOCK * 2 + 1, 16);
    c.write("tree/a.bin", &a);
    c.write("tree/sub/b.txt", b"bee\n");
    c.write("tree/sub/deeper/c.txt", b"sea\n");
    std::fs::create_dir_all(c.path("tree/empty")).unwrap();
    let up = c.json(&["file", "upload", "-r", c.path("tree").to_str().unwrap(), "/pithos/backup"]);
    assert_eq!(up["name"], "/pithos/backup");
    assert_eq!(up["files"].as_array().unwrap().len(), 3, "{up}");
    let folders: Vec<&str> = up["folders"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(folders, ["/pithos/backup", "/pithos/backup/empty", "/pithos/backup/sub", "/pithos/backup/sub/deeper"]);
    for f in ["backup", "backup/empty", "backup/sub", "backup/sub/deeper"] {
        let h = c.head("pithos", f);
        assert_eq!(h.get("content-type").unwrap(), "application/directory", "{f}");
    }
    assert_eq!(c.ok(&["file", "cat", "/pithos/backup/sub/deeper/c.txt"]), b"sea\n");
    // again: the same tree updated (as kamaki's -r), nothing sent, nothing new
    let objects = |c: &Cloud| {
        let l = c.ok(&["file", "download", "-r", "/pithos/backup", c.path("probe").to_str().unwrap(), "--json"]);
        std::fs::remove_dir_all(c.path("probe")).unwrap();
        serde_json::from_slice::<Value>(&l).unwrap()["files"].as_array().unwrap().len()
    };
    let up = c.json(&["file", "upload", "-r", c.path("tree").to_str().unwrap(), "/pithos/backup/"]);
    assert_eq!(up["name"], "/pithos/backup");
    assert_eq!(num(&up, "blocks_sent"), 0, "{up}");
    assert_eq!(objects(&c), 3);
    // and down again: the same tree, the empty folder included
    let r = c.path("restored");
    let rs = r.to_str().unwrap();
    let down = c.json(&["file", "download", "-r", "/pithos/backup", rs]);
    assert_eq!(down["files"].as_array().unwrap().len(), 3, "{down}");
    assert_eq!(num(&down, "blocks_fetched"), 5, "{down}");
    assert_eq!(file_sha(r.join("a.bin")), sha256(&a));
    assert_eq!(std::fs::read(r.join("sub/b.txt")).unwrap(), b"bee\n");
    assert_eq!(std::fs::read(r.join("sub/deeper/c.txt")).unwrap(), b"sea\n");
    // a tree download cut short, run again: only what is missing is fetched
    std::fs::remove_file(r.join("sub/b.txt")).unwrap();
    std::fs::write(r.join("a.bin"), &a[..BLOCK + 10]).unwrap();
    let down = c.json(&["file", "download", "-r", "/pithos/backup", rs]);
    assert_eq!(num(&down, "blocks_fetched"), 3, "b.txt and a.bin's last two blocks: {down}");
    assert_eq!(num(&down, "blocks_skipped"), 2);
    assert_eq!(file_sha(r.join("a.bin")), sha256(&a));
    assert_eq!(std::fs::read(r.join("sub/b.txt")).unwrap(), b"bee\n");
    // without LOCAL, a folder of the remote folder's name
    c.ok(&["file", "download", "-r", "/pithos/backup"]);
    assert_eq!(std::fs::read(c.path("backup/sub/deeper/c.txt")).unwrap(), b"sea\n");
    assert!(r.join("empty").is_dir());
}

/// Runs `pithosfs ARGS` on a terminal (`script` gives it a pty); what the terminal showed.
fn on_terminal(c: &Cloud, args: &[&str]) -> String {
    let line = std::iter::once(BIN).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    // A terminal that moves the cursor: indicatif draws nothing when TERM is unset or dumb.
    let out = c.program("script", &c.identity(), &["-qec", &line, "/dev/null"]).env("TERM", "xterm").output();
    // `script` is util-linux's (Debian's bsdutils, always installed).
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("script: {e}"),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{line}: {text}");
    text
}

#[test]
fn a_bar_on_a_terminal_and_none_with_no_progress() {
    let c = Cloud::start();
    let data = random_bytes(2 * 1024 * 1024, 18);
    let src = c.write("src.bin", &data);
    let dst = c.path("dst.bin").display().to_string();
    let shown = on_terminal(&c, &["file", "upload", &src, "/pithos/a.bin"]);
    assert!(shown.contains("ETA") && shown.contains("/pithos/a.bin ("), "no bar: {shown:?}");
    assert!(shown.contains("uploaded "), "{shown:?}");
    let shown = on_terminal(&c, &["file", "download", "/pithos/a.bin", &dst]);
    assert!(shown.contains("(receiving)") && shown.contains("ETA"), "no bar: {shown:?}");
    assert_eq!(file_sha(&dst), sha256(&data));
    std::fs::remove_file(&dst).unwrap();
    for args in
        [["file", "upload", "-N", &src, "/pithos/b.bin"], ["file", "download", "--no-progress", "/pithos/b.bin", &dst]]
    {
        let shown = on_terminal(&c, &args);
        assert!(!shown.contains("ETA") && !shown.contains('\u{1b}'), "{args:?} drew a bar: {shown:?}");
        assert!(shown.contains("loaded "), "{shown:?}");
    }
    assert_eq!(file_sha(&dst), sha256(&data));
}

#[test]
fn errors_are_clear_and_leave_nothing_behind() {
    let c = Cloud::start();
    c.fails(&["file", "upload", c.path("missing.bin").to_str().unwrap(), "/pithos/x"], "missing.bin");
    let dst = c.path("nothing.bin");
    let err = c.fails(&["file", "download", "/pithos/no-such-object", dst.to_str().unwrap()], "no such object");
    assert!(err.contains("/pithos/no-such-object"), "{err}");
    assert!(!dst.exists(), "a failed download left a file");
    c.fails(&["file", "cat", "/pithos/no-such-object"], "no such object");
    c.fails(&["file", "download", "-r", "/pithos/no-such-folder", dst.to_str().unwrap()], "no such folder");
    assert!(!dst.exists());
    std::fs::create_dir_all(c.path("folder")).unwrap();
    c.fails(&["file", "upload", c.path("folder").to_str().unwrap(), "/pithos/f"], "with -r");
    c.ok(&["file", "upload", "-r", c.path("folder").to_str().unwrap(), "/pithos/f"]);
    c.fails(&["file", "download", "/pithos/f", dst.to_str().unwrap()], "with -r");
    assert!(!dst.exists());
    c.fails(&["file", "upload", &c.write("x", b"x"), "/"], "/CONTAINER/PATH");
    c.fails(&["file", "upload", &c.write("y", b"y"), "/no-such-container/y"], "/no-such-container: no such container");
}

#[test]
fn a_download_that_fetched_nothing_leaves_no_file() {
    let c = Cloud::start();
    let data = random_bytes(BLOCK / 2, 22);
    c.ok(&["file", "upload", &c.write("one.bin", &data), "/pithos/one.bin"]);
    let proxy = FaultProxy::start(&c.url, 3);
    let block_get = |method: &str, path: &str, query: &str| {
        method == "GET" && path.ends_with("/one.bin") && !query.contains("hashmap")
    };
    let failing = |args: &[&str]| {
        // No retries: the one block's GET fails, and with it the download.
        let hits = proxy.spoil(block_get, Fault::Unavailable);
        let out = c.command(&proxy.identity(), args).env("PITHOSFS_HTTP_LIMITS", "retries=0").output().unwrap();
        assert_eq!(hits.get(), 1);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("503"), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // a new file that got nothing is removed
    let dst = c.path("new.bin");
    failing(&["file", "download", "/pithos/one.bin", dst.to_str().unwrap()]);
    assert!(!dst.exists(), "a download that fetched nothing left a file");
    assert!(!c.path("new.bin.pithosfs-part").exists(), "a download that fetched nothing left a part file");
    // a file that was there before stays (it may hold blocks for the next run)
    let kept = c.write("kept.bin", b"what was here");
    failing(&["file", "download", "/pithos/one.bin", &kept]);
    assert!(Path::new(&kept).exists());
    c.ok(&["file", "download", "/pithos/one.bin", &kept]);
    assert_eq!(file_sha(&kept), sha256(&data));
}

// ---------------------------------------------------------------------------
// the library: progress callbacks
// ---------------------------------------------------------------------------

/// What a transfer told: each stage's announced total and the sum of its advances.
#[derive(Default)]
struct Recorder {
    totals: Mutex<HashMap<Stage, Option<u64>>>,
    sums: Mutex<HashMap<Stage, u64>>,
}

impl Progress for Recorder {
    fn start(&self, stage: Stage, total: Option<u64>) {
        self.totals.lock().unwrap().insert(stage, total);
        self.sums.lock().unwrap().insert(stage, 0);
    }
    fn advance(&self, stage: Stage, bytes: u64) {
        *self.sums.lock().unwrap().entry(stage).or_default() += bytes;
    }
}

impl Recorder {
    fn total(&self, stage: Stage) -> Option<Option<u64>> {
        self.totals.lock().unwrap().get(&stage).copied()
    }
    fn sum(&self, stage: Stage) -> u64 {
        self.sums.lock().unwrap().get(&stage).copied().unwrap_or(0)
    }
}

fn with(progress: Arc<dyn Progress>) -> TransferOptions {
    TransferOptions { progress: Some(progress), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_callbacks_reach_the_file_size() {
    let tc = common::TestCloud::start_with(|c| c.block_size = BLOCK as u64).await;
    let p = PithosClient::new(&tc.pithos(), common::ALICE_TOKEN, &tc.alice, "pithos").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(20 * BLOCK + 321, 17);
    let size = data.len() as u64;
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    // upload: hashing, then sending, both the whole file
    let r = Arc::new(Recorder::default());
    let t = p.upload_file_with("big.bin", &src, &PutOptions::default(), &with(r.clone())).await.unwrap();
    assert_eq!((t.bytes, t.blocks, t.blocks_moved, t.bytes_moved), (size, 21, 21, size));
    assert_eq!(r.total(Stage::Hashing), Some(Some(size)));
    assert_eq!(r.sum(Stage::Hashing), size);
    assert_eq!(r.total(Stage::Sending), Some(Some(size)));
    assert_eq!(r.sum(Stage::Sending), size);
    // again: hashed, nothing sent
    let r = Arc::new(Recorder::default());
    let t = p.upload_file_with("big.bin", &src, &PutOptions::default(), &with(r.clone())).await.unwrap();
    assert_eq!((t.blocks_moved, t.blocks_skipped()), (0, 21));
    assert_eq!(r.sum(Stage::Hashing), size);
    assert_eq!(r.sum(Stage::Sending), 0);
    // download into a new file: received, the whole file
    let dst = dir.path().join("dst.bin");
    let r = Arc::new(Recorder::default());
    let t = p.download_file_with("big.bin", &dst, &with(r.clone())).await.unwrap();
    assert_eq!((t.blocks_moved, t.bytes_moved), (21, size));
    assert_eq!(r.total(Stage::Receiving), Some(Some(size)));
    assert_eq!(r.sum(Stage::Receiving), size);
    assert_eq!(r.total(Stage::Hashing), None, "a new file has nothing to keep");
    // resume over a complete file: all hashed, nothing received
    let r = Arc::new(Recorder::default());
    let o = TransferOptions { resume: true, ..with(r.clone()) };
    let t = p.download_file_with("big.bin", &dst, &o).await.unwrap();
    assert_eq!(t.blocks_moved, 0);
    assert_eq!(r.sum(Stage::Hashing), size);
    assert_eq!(r.total(Stage::Receiving), Some(Some(0)));
    assert_eq!(sha256(&std::fs::read(&dst).unwrap()), sha256(&data));
    // streams: to a writer, from a reader (total unknown); a closure is a Progress
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    let counter: Arc<dyn Progress> = Arc::new(move |_: Stage, n: u64| {
        g.fetch_add(n as usize, Ordering::SeqCst);
    });
    let mut out = Vec::new();
    p.download_to_writer("big.bin", &mut out, &with(counter.clone())).await.unwrap();
    assert_eq!(got.load(Ordering::SeqCst) as u64, size);
    assert_eq!(sha256(&out), sha256(&data));
    let r = Arc::new(Recorder::default());
    let t = p.upload_reader_with("streamed", &data[..], &PutOptions::default(), &with(r.clone())).await.unwrap();
    assert_eq!(t.bytes, size);
    assert_eq!(r.total(Stage::Sending), Some(None));
    assert_eq!(r.sum(Stage::Sending), size);
    // the old calls still work, and say nothing
    p.upload_file("plain.bin", &src, &PutOptions::default()).await.unwrap();
    p.download_file("plain.bin", &dst, &TransferOptions::default()).await.unwrap();
    assert_eq!(sha256(&std::fs::read(&dst).unwrap()), sha256(&data));
}

// ---------------------------------------------------------------------------
// kamaki: trees go both ways
// ---------------------------------------------------------------------------

/// kamaki from `scripts/setup-kamaki` (`PITHOSFS_KAMAKI_VENV`, default
/// `.cache/kamaki-venv`), set up for this cloud; None (skipped) outside CI without it.
fn kamaki(c: &Cloud) -> Option<impl Fn(&[&str]) -> String + '_> {
    let venv = std::env::var_os("PITHOSFS_KAMAKI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/kamaki-venv"));
    let bin = venv.join("bin/kamaki");
    if !bin.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kamaki is not installed at {} (scripts/setup-kamaki)",
            bin.display()
        );
        eprintln!("skipped: kamaki not found at {} (run scripts/setup-kamaki)", bin.display());
        return None;
    }
    let config = c.path("kamakirc");
    std::fs::write(&config, "").unwrap();
    let run = move |args: &[&str]| {
        let out = Command::new(&bin).arg("-c").arg(&config).args(args).current_dir(c.dir.path()).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "kamaki {args:?} failed:\n{text}");
        text
    };
    run(&["config", "set", "cloud.default.url", &c.identity()]);
    run(&["config", "set", "cloud.default.token", TOKEN]);
    run(&["config", "set", "default_cloud", "default"]);
    Some(run)
}

#[test]
fn trees_go_both_ways_with_kamaki() {
    let c = Cloud::start();
    let Some(kamaki) = kamaki(&c) else { return };
    let big = random_bytes(5 * BLOCK + 17, 19);
    c.write("ours/big.bin", &big);
    c.write("ours/sub/small.txt", b"small\n");
    std::fs::create_dir_all(c.path("ours/empty")).unwrap();
    // pithosfs up, kamaki down: the same files, the same folders
    c.ok(&["file", "upload", "-r", c.path("ours").to_str().unwrap(), "/pithos/ours"]);
    kamaki(&["file", "download", "-r", "/pithos/ours", "kamaki-got"]);
    assert_eq!(file_sha(c.path("kamaki-got/big.bin")), sha256(&big));
    assert_eq!(std::fs::read(c.path("kamaki-got/sub/small.txt")).unwrap(), b"small\n");
    assert!(c.path("kamaki-got/empty").is_dir(), "kamaki sees the empty folder object");
    // kamaki up, pithosfs down
    let theirs = random_bytes(3 * BLOCK + 5, 20);
    c.write("theirs/t.bin", &theirs);
    c.write("theirs/deep/er/t.txt", b"kamaki\n");
    kamaki(&["file", "upload", "-r", "theirs", "/pithos/theirs"]);
    let down = c.json(&["file", "download", "-r", "/pithos/theirs", c.path("we-got").to_str().unwrap()]);
    assert_eq!(down["files"].as_array().unwrap().len(), 2, "{down}");
    assert_eq!(file_sha(c.path("we-got/t.bin")), sha256(&theirs));
    assert_eq!(std::fs::read(c.path("we-got/deep/er/t.txt")).unwrap(), b"kamaki\n");
    // and kamaki's hash of what we uploaded is the one we printed
    let up = c.json(&["file", "upload", &c.write("h.bin", &big), "/pithos/h.bin"]);
    let info = kamaki(&["file", "info", "/pithos/h.bin"]);
    assert!(info.contains(up["hash"].as_str().unwrap()), "{info}");
}
