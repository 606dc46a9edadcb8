//! Two `pithosfs serve` nodes sharing one PostgreSQL (metadata) and one
//! Swift (blocks), on two ports (issue 14): what one writes the other
//! reads; conditional writes, quotas and version serials hold when the
//! two race; a node killed mid-upload leaves the other consistent; the
//! collector of one spares what the other relies on; a mount survives its
//! node's death behind a proxy that fails over.
//!
//! Run by `scripts/test` with the shared back ends (see tests/backends);
//! skipped when they are not given.

mod harness;

use harness::backends::Backends;
use harness::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

struct Pair {
    a: Cloud,
    b: Cloud,
    dir: tempfile::TempDir,
}

impl Pair {
    fn root(&self, node: &str) -> PathBuf {
        self.dir.path().join(node)
    }
}

/// Two nodes on the shared back ends (one schema, one container), with
/// `extra` arguments each; None (skipped) without shared back ends.
fn pair(extra: &[&str]) -> Option<Pair> {
    let shared = Backends::from_env();
    if !shared.shared() {
        println!("skipped: no shared back ends (PITHOSFS_TEST_META and PITHOSFS_TEST_BLOCKS; scripts/test sets them)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = shared.serve_args().into_iter().chain(extra.iter().map(|s| s.to_string())).collect();
    let mut nodes = ["a", "b"].iter().map(|n| {
        let root = dir.path().join(n);
        std::fs::create_dir_all(&root).unwrap();
        Cloud::start_serving(&root, "127.0.0.1:0", Serve { args: args.clone(), envs: vec![] })
    });
    let (a, b) = (nodes.next().unwrap(), nodes.next().unwrap());
    assert_eq!(a.account, b.account, "one user catalog");
    Some(Pair { a, b, dir })
}

/// The URL of `url`'s path on `node`.
fn on(node: &Cloud, url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, r)| &r[r.find('/').unwrap_or(r.len())..]);
    format!("{}{path}", node.url)
}

fn body_of(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn a_write_on_one_node_reads_on_the_other() {
    let Some(p) = pair(&[]) else { return };
    let bs = p.a.block_size("pithos") as usize;
    let data = random_bytes(2 * bs + 12_345, 1);
    p.a.put("pithos", "dir/big.bin", &data);
    assert_eq!(sha256(&p.b.get("pithos", "dir/big.bin")), sha256(&data), "B reads A's object");
    assert_eq!(p.b.objects("pithos"), ["dir/big.bin"]);
    let counts = http("HEAD", &p.b.container_url("pithos"), &[], None);
    assert_eq!(counts.header("x-container-object-count"), Some("1".to_string()));
    assert_eq!(counts.header("x-container-bytes-used"), Some(data.len().to_string()));
    // A move on B, seen on A; a delete on A, seen on B.
    let r = http(
        "PUT",
        &p.b.object_url("pithos", "moved.bin"),
        &[("X-Move-From", "/pithos/dir/big.bin"), ("Content-Length", "0")],
        None,
    );
    assert_eq!(r.status, 201, "{}", body_of(&r));
    assert_eq!(sha256(&p.a.get("pithos", "moved.bin")), sha256(&data));
    assert_eq!(p.a.head("pithos", "dir/big.bin").status, 404);
    p.a.delete("pithos", "moved.bin");
    assert_eq!(p.b.head("pithos", "moved.bin").status, 404);
    assert!(p.b.objects("pithos").is_empty());
}

/// Runs `a` and `b` at the same moment (as far as two threads can).
fn race<T: Send + 'static>(a: impl FnOnce() -> T + Send + 'static, b: impl FnOnce() -> T + Send + 'static) -> (T, T) {
    let start = Arc::new(Barrier::new(2));
    let s = start.clone();
    let ta = std::thread::spawn(move || {
        s.wait();
        a()
    });
    start.wait();
    let rb = b();
    (ta.join().unwrap(), rb)
}

#[test]
fn racing_conditional_writes_have_one_winner() {
    let Some(p) = pair(&[]) else { return };
    for round in 0..15 {
        let name = format!("race-{round}");
        let (ua, ub) = (p.a.object_url("pithos", &name), on(&p.b, &p.a.object_url("pithos", &name)));
        let (ra, rb) = race(
            move || {
                http("PUT", &ua, &[("If-None-Match", "*"), ("Content-Type", "text/plain")], Some(b"from A".to_vec()))
                    .status
            },
            move || {
                http("PUT", &ub, &[("If-None-Match", "*"), ("Content-Type", "text/plain")], Some(b"from B".to_vec()))
                    .status
            },
        );
        let mut got = [ra, rb];
        got.sort();
        assert_eq!(got, [201, 412], "round {round}: exactly one create wins");
        let winner: &[u8] = if ra == 201 { b"from A" } else { b"from B" };
        assert_eq!(p.a.get("pithos", &name), winner);
        assert_eq!(p.b.get("pithos", &name), winner);

        // Both replace it on the condition that it is still what they read.
        let etag = p.a.head("pithos", &name).header("etag").expect("etag").to_string();
        let (ua, ub) = (p.a.object_url("pithos", &name), on(&p.b, &p.a.object_url("pithos", &name)));
        let (ea, eb) = (etag.clone(), etag);
        let (ra, rb) = race(
            move || {
                http("PUT", &ua, &[("If-Match", &ea), ("Content-Type", "text/plain")], Some(b"A again".to_vec())).status
            },
            move || {
                http("PUT", &ub, &[("If-Match", &eb), ("Content-Type", "text/plain")], Some(b"B again".to_vec())).status
            },
        );
        let mut got = [ra, rb];
        got.sort();
        assert_eq!(got, [201, 412], "round {round}: exactly one replacement wins");
        let winner: &[u8] = if ra == 201 { b"A again" } else { b"B again" };
        assert_eq!(p.b.get("pithos", &name), winner);
    }
}

#[test]
fn a_quota_race_never_overshoots_and_version_serials_stay_monotone() {
    const QUOTA: usize = 1_000_000;
    const SIZE: usize = 90_000;
    let Some(p) = pair(&["--quota", &QUOTA.to_string()]) else { return };
    // 24 uploads of 90 kB, half through each node, all at once: 11 fit.
    let start = Arc::new(Barrier::new(24));
    let workers: Vec<_> = (0..24)
        .map(|i| {
            let node = if i % 2 == 0 { &p.a } else { &p.b };
            let url = on(node, &p.a.object_url("pithos", &format!("q/{i}")));
            let start = start.clone();
            std::thread::spawn(move || {
                let data = random_bytes(SIZE, 100 + i);
                start.wait();
                http("PUT", &url, &[("Content-Type", "application/octet-stream")], Some(data)).status
            })
        })
        .collect();
    let statuses: Vec<u16> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let stored = statuses.iter().filter(|s| **s == 201).count();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 413), "{statuses:?}");
    assert_eq!(stored, QUOTA / SIZE, "as many as fit, no more: {statuses:?}");
    for node in [&p.a, &p.b] {
        let used = http("HEAD", &node.account_url(), &[], None);
        assert_eq!(used.header("x-account-bytes-used"), Some((stored * SIZE).to_string()));
    }
    assert_eq!(p.b.objects("pithos").len(), stored);

    // Versions written through both nodes at once: their serials grow with
    // their commit times, none repeats, and each write is one version.
    let start = Arc::new(Barrier::new(12));
    let writers: Vec<_> = (0..12)
        .map(|i| {
            let node = if i % 2 == 0 { &p.a } else { &p.b };
            let url = on(node, &p.a.object_url("pithos", "v"));
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                http(
                    "PUT",
                    &url,
                    &[("Content-Type", "application/octet-stream")],
                    Some(format!("version {i}").into_bytes()),
                )
                .status
            })
        })
        .collect();
    let written = writers.into_iter().map(|w| w.join().unwrap()).filter(|s| *s == 201).count();
    assert_eq!(written, 12);
    let r = http("GET", &format!("{}?version=list&format=json", p.b.object_url("pithos", "v")), &[], None);
    assert_eq!(r.status, 200, "{}", body_of(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let versions: Vec<(i64, f64)> = v["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|e| {
            let time = e[1].as_str().and_then(|t| t.parse::<f64>().ok()).expect("time (epoch seconds, as text)");
            (e[0].as_i64().expect("serial"), time)
        })
        .collect();
    assert_eq!(versions.len(), 12, "{versions:?}");
    for w in versions.windows(2) {
        assert!(w[0].0 < w[1].0 && w[0].1 <= w[1].1, "serials and times in step: {versions:?}");
    }
    // The live version is the last serial's.
    let last = versions.last().unwrap().0;
    let head = p.a.head("pithos", "v");
    assert_eq!(head.header("x-object-version"), Some(last.to_string()));
}

/// Starts a chunked PUT of `url` on a raw connection: the caller sends the
/// body with [`send_chunk`] and ends it with [`finish`].
fn start_chunked_put(url: &str) -> TcpStream {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {TOKEN}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    s
}

fn send_chunk(s: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    write!(s, "{:x}\r\n", data.len())?;
    s.write_all(data)?;
    s.write_all(b"\r\n")
}

/// Ends the body and reads the status.
fn finish(mut s: TcpStream) -> u16 {
    s.write_all(b"0\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {text:?}"))
}

/// `pithosfs serve gc` on a node's data directory: its server collects now.
fn collect_on(root: &Path) -> serde_json::Value {
    let out = std::process::Command::new(BIN)
        .args(["serve", "gc", "--json", "--data"])
        .arg(root.join("data"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "serve gc: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap()
}

/// Polls `probe` for up to 5 s (a lease or a block write lands on the server
/// a moment after the client sent it).
fn eventually(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !probe() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killing_a_node_mid_upload_leaves_the_other_consistent() {
    let Some(mut p) = pair(&[]) else { return };
    let bs = p.a.block_size("pithos") as usize;
    let old = random_bytes(bs + 100, 7);
    p.b.put("pithos", "doc.bin", &old);
    let used =
        |c: &Cloud| http("HEAD", &c.account_url(), &[], None).header("x-account-bytes-used").unwrap().to_string();
    let before = used(&p.b);
    // A new version through A, killed after two blocks went in.
    let mut up = start_chunked_put(&p.a.object_url("pithos", "doc.bin"));
    let new = random_bytes(4 * bs, 8);
    send_chunk(&mut up, &new[..2 * bs]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.a.kill();
    let _ = send_chunk(&mut up, &new[2 * bs..]);
    drop(up);
    // B still serves the old version, whole, and nothing else changed.
    assert_eq!(sha256(&p.b.get("pithos", "doc.bin")), sha256(&old));
    assert_eq!(used(&p.b), before);
    assert_eq!(p.b.objects("pithos"), ["doc.bin"]);
    let versions = http("GET", &format!("{}?version=list&format=json", p.b.object_url("pithos", "doc.bin")), &[], None);
    let v: serde_json::Value = serde_json::from_slice(&versions.body).unwrap();
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(1), "no half-made version");
    // B goes on writing and collecting; A comes back and sees B's work.
    p.b.put("pithos", "doc.bin", &new);
    let report = collect_on(&p.root("b"));
    assert!(report.is_object(), "{report}");
    let root_a = p.root("a");
    p.a.restart(&root_a);
    assert_eq!(sha256(&p.a.get("pithos", "doc.bin")), sha256(&new));
}

#[test]
fn collection_on_one_node_spares_what_the_other_relies_on() {
    let Some(p) = pair(&["--gc-delay", "0"]) else { return };
    let bs = p.a.block_size("pithos") as usize;

    // Pending: blocks A took for a hashmap that has not come yet.
    let data = random_bytes(2 * bs + 10, 21);
    let r = http(
        "POST",
        &format!("{}?update", p.a.container_url("pithos")),
        &[("Content-Type", "application/octet-stream")],
        Some(data.clone()),
    );
    assert_eq!(r.status, 202, "block upload: {}", body_of(&r));
    let hashes: Vec<String> = serde_json::from_slice(&r.body).expect("a JSON list of hashes");
    assert_eq!(hashes.len(), 3, "{hashes:?}");
    collect_on(&p.root("b"));
    let hashmap = serde_json::json!({ "bytes": data.len(), "hashes": hashes }).to_string();
    let r = http(
        "PUT",
        &format!("{}?hashmap&format=json", p.a.object_url("pithos", "pending.bin")),
        &[("Content-Type", "application/octet-stream")],
        Some(hashmap.into_bytes()),
    );
    assert_eq!(r.status, 201, "the hashmap after B collected: {}", body_of(&r));
    assert_eq!(sha256(&p.b.get("pithos", "pending.bin")), sha256(&data));

    // Deduplicated: A receives content whose first block an object holds;
    // meanwhile that object is deleted on B and B collects at once. A's
    // upload relies on the stored block (it did not store it again): B
    // must keep it.
    // (In a container that keeps no history: a delete frees the blocks.)
    let r = http("PUT", &p.a.container_url("once"), &[("X-Container-Policy-Versioning", "none")], None);
    assert_eq!(r.status, 201);
    let content = random_bytes(3 * bs, 22);
    p.a.put("once", "x.bin", &content);
    let mut up = start_chunked_put(&p.a.object_url("once", "y.bin"));
    send_chunk(&mut up, &content[..bs]).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    p.b.delete("once", "x.bin");
    let mut kept = 0;
    eventually("B's collector keeps the block A relies on", || {
        let report = collect_on(&p.root("b"));
        kept += report["pinned"].as_u64().unwrap_or(0);
        kept > 0
    });
    send_chunk(&mut up, &content[bs..]).unwrap();
    assert_eq!(finish(up), 201);
    assert_eq!(sha256(&p.b.get("once", "y.bin")), sha256(&content), "every block of y is there");
    // Once A's upload committed, y holds the blocks; x's last block went.
    let report = collect_on(&p.root("b"));
    assert_eq!(report["pinned"].as_u64(), Some(0), "{report}");
    assert_eq!(sha256(&p.a.get("once", "y.bin")), sha256(&content));
}

/// A TCP proxy that sends each new connection to the first of `upstreams`
/// that accepts it: a load balancer's failover, in a few lines.
fn failover_proxy(upstreams: Vec<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Some(server) = upstreams.iter().find_map(|u| TcpStream::connect(u).ok()) else { continue };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c, mut s) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c, &mut s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

#[test]
fn a_mount_keeps_working_when_its_node_dies() {
    // The proxy first: both nodes announce it in their service catalogs.
    let listener_a = TcpListener::bind("127.0.0.1:0").unwrap();
    let listener_b = TcpListener::bind("127.0.0.1:0").unwrap();
    let (addr_a, addr_b) = (listener_a.local_addr().unwrap().to_string(), listener_b.local_addr().unwrap().to_string());
    drop((listener_a, listener_b));
    let proxy = failover_proxy(vec![addr_a.clone(), addr_b.clone()]);
    let public = format!("http://{proxy}");
    let shared = Backends::from_env();
    if !shared.shared() {
        println!("skipped: no shared back ends");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> =
        shared.serve_args().into_iter().chain(["--public-url".to_string(), public.clone()]).collect();
    let start = |node: &str, listen: &str| {
        let root = dir.path().join(node);
        std::fs::create_dir_all(&root).unwrap();
        Cloud::start_serving(&root, listen, Serve { args: args.clone(), envs: vec![] })
    };
    // `start_serving` checks the URL it prints: the public one here.
    let mut a = start("a", &addr_a);
    let b = start("b", &addr_b);
    assert_eq!(a.url, public);
    let point = dir.path().join("mnt");
    let mount = Mount::start(
        &point,
        &dir.path().join("mount.log"),
        &[],
        &[("PITHOSFS_URL", &format!("{public}/identity/v2.0")), ("PITHOSFS_TOKEN", TOKEN)],
    );
    let before = random_bytes(3 * 1024 * 1024 + 5, 31);
    std::fs::write(point.join("pithos/before.bin"), &before).unwrap();
    a.kill();
    // Everything now reaches B: reads of what A wrote, new writes, listings.
    assert_eq!(sha256(&std::fs::read(point.join("pithos/before.bin")).unwrap()), sha256(&before));
    let after = random_bytes(2 * 1024 * 1024 + 7, 32);
    std::fs::write(point.join("pithos/after.bin"), &after).unwrap();
    std::fs::create_dir(point.join("pithos/dir")).unwrap();
    std::fs::rename(point.join("pithos/after.bin"), point.join("pithos/dir/after.bin")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(point.join("pithos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["before.bin", "dir"]);
    // Straight from B (not through the proxy): the writes are there.
    let direct = |name: &str| {
        let url = b.object_url("pithos", name).replacen(&public, &format!("http://{addr_b}"), 1);
        http("GET", &url, &[], None)
    };
    assert_eq!(sha256(&direct("dir/after.bin").body), sha256(&after));
    assert_eq!(sha256(&direct("before.bin").body), sha256(&before));
    drop(mount);
}
