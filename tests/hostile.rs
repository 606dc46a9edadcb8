//! A hostile or broken server cannot take the mount down.
//!
//! `pithosfs mount` talks to a hostile proxy (`harness::hostile`) in front
//! of a real `pithosfs serve`: every request is forwarded, and only the
//! replies under test are rewritten (a hashmap with an absurd block size, an
//! endless body, a listing that never ends, names no directory can hold, a
//! server that drips a byte now and then). After each case the mount is
//! alive (a normal file, new on the server, still reads right), its peak
//! memory (VmHWM of the mount process) stayed under a bound, and the program
//! got a clean errno within a bounded time (`timeout 30`; a timeout fails
//! the test). Deadlines and limits are shrunk for the test through
//! `PITHOSFS_HTTP_LIMITS`. The last tests drive the client library against
//! the same server, for the control command's sake.

mod harness;

use bytes::Bytes;
use harness::hostile::*;
use harness::*;
use pithosfs::blocks::{self, Algorithm, BlockHash};
use pithosfs::clients::pithos::PithosClient;
use pithosfs::clients::storage::{GetOptions, ListOptions, ObjectStorage, PutOptions};
use pithosfs::clients::{ClientError, Http, Options};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shrunk for the tests: a reply's headers within 2 s, a window of 1 s for
/// the minimum pace, no new attempt after 3 s, JSON replies of at most
/// 2 MiB, folders of at most 25,000 entries.
const LIMITS: &str = "response_timeout=2,stall_window=1,retry_deadline=3,first_backoff=0.05,max_backoff=0.2,\
                      max_reply=2097152,max_listing=25000";

/// The most memory the mount may ever have held (VmHWM), in MiB: its block
/// cache is 16 MiB, the largest reply it takes (a full hashmap) 18 MiB, a
/// folder of 25,000 entries about 40 MiB.
const PEAK_MIB: u64 = 96;

struct World {
    env: Env,
    proxy: Hostile,
    alive_checks: usize,
}

impl World {
    fn new() -> World {
        let env = Env::new();
        let proxy = Hostile::start(&env.cloud.url);
        World { env, proxy, alive_checks: 0 }
    }

    /// Mounts the account at `$M` through the proxy (no kernel caching:
    /// every access reaches the mount).
    fn mount(&mut self, args: &[&str]) {
        let point = self.env.m();
        let log = self.env.root.join(format!("mnt.{}.log", self.env.mounts.len()));
        let mut all = vec!["--cache-size", "16", "--attr-ttl", "0", "--dir-ttl", "0"];
        all.extend_from_slice(args);
        let identity = self.proxy.identity();
        let envs = [("PITHOSFS_URL", identity.as_str()), ("PITHOSFS_TOKEN", TOKEN), ("PITHOSFS_HTTP_LIMITS", LIMITS)];
        self.env.mounts.push(Mount::start(&point, &log, &all, &envs));
    }

    fn log(&self) -> String {
        self.env.mounts.last().map(|m| m.log_text()).unwrap_or_default()
    }

    /// VmHWM of the mount process, in MiB.
    fn peak_mib(&self) -> u64 {
        let pid = self.env.mounts.last().and_then(|m| m.child.as_ref()).expect("a mount").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the mount process is gone");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM");
        kb / 1024
    }

    /// The script fails within `timeout 30` (not by it) and says `message`.
    fn fails_with(&self, script: &str, message: &str) {
        let err = self.env.sh_fails(script);
        assert!(err.contains(message), "{script}\nshould fail with {message:?}; it said:\n{err}\n{}", self.log());
    }

    /// After a hostile reply: the mount is alive and serves a file the
    /// server got just now, and its memory stayed bounded.
    fn assert_alive(&mut self, after: &str) {
        self.alive_checks += 1;
        let name = format!("alive-{}.txt", self.alive_checks);
        let text = format!("still here after {after}\n");
        self.env.cloud.put("pithos", &name, text.as_bytes());
        let out = self.env.run(&format!(r#"timeout 30 cat "$M/pithos/{name}""#));
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout) == text,
            "after {after} the mount does not serve a normal file: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let peak = self.peak_mib();
        assert!(peak < PEAK_MIB, "after {after} the mount's memory peaked at {peak} MiB (bound {PEAK_MIB} MiB)");
        eprintln!("after {after}: alive, peak memory {peak} MiB");
    }
}

fn put_with_meta(env: &Env, name: &str, data: &[u8], meta: &[(&str, &str)]) {
    let mut headers = vec![("Content-Type", "application/octet-stream")];
    headers.extend_from_slice(meta);
    let r = http("PUT", &env.cloud.object_url("pithos", name), &headers, Some(data.to_vec()));
    assert_eq!(r.status, 201, "PUT {name}: {}", String::from_utf8_lossy(&r.body));
}

// ---------------------------------------------------------------------------
// through a real mount: numbers
// ---------------------------------------------------------------------------

/// A hashmap with a 1 TiB block size (a sparse 1 TiB object: one block, all
/// zeros): refused (EIO, a clear log line), nothing allocated.
#[test]
fn hashmap_block_size_of_1_tib_is_refused() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "bs-huge.bin", &random_bytes(64 << 10, 1));
    let hits = w.proxy.rule(
        "1 TiB block size",
        |r| r.is_hashmap("pithos", "bs-huge.bin"),
        hashmap_rewrite(|m| {
            m.insert("block_size".into(), json!(1u64 << 40));
            m.insert("bytes".into(), json!(1u64 << 40));
            m.insert("hashes".into(), json!([BlockHash::empty().to_hex()]));
        }),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/bs-huge.bin" >/dev/null"#, "Input/output error");
    assert!(hits.get() >= 1, "the 1 TiB hashmap was not served");
    assert!(w.log().contains("bs-huge.bin: Bad hashmap: its block size 1099511627776 is outside"), "{}", w.log());
    w.assert_alive("a 1 TiB block size");
}

/// A true hashmap of 1-byte blocks (the hash of each byte): refused, rather
/// than a request and a cache entry per byte.
#[test]
fn hashmap_block_size_of_1_is_refused() {
    let mut w = World::new();
    let data = random_bytes(64 << 10, 1);
    w.env.cloud.put("pithos", "bs-one.bin", &data);
    let per_byte: Vec<String> = data.iter().map(|b| blocks::hash_block(Algorithm::Sha256, &[*b]).to_hex()).collect();
    let hits = w.proxy.rule(
        "1-byte blocks",
        |r| r.is_hashmap("pithos", "bs-one.bin"),
        hashmap_rewrite(move |m| {
            m.insert("block_size".into(), json!(1));
            m.insert("hashes".into(), json!(per_byte));
        }),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/bs-one.bin" >/dev/null"#, "Input/output error");
    assert!(hits.get() >= 1);
    assert!(w.log().contains("its block size 1 is outside"), "{}", w.log());
    w.assert_alive("a block size of 1");
}

/// A hashmap whose size disagrees with its hashes (1 PiB in one hash): refused.
#[test]
fn hashmap_size_must_agree_with_its_hashes() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "bytes-lie.bin", &random_bytes(64 << 10, 1));
    let hits = w.proxy.rule(
        "1 PiB in one hash",
        |r| r.is_hashmap("pithos", "bytes-lie.bin"),
        hashmap_rewrite(|m| {
            m.insert("bytes".into(), json!(1u64 << 50));
        }),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/bytes-lie.bin" >/dev/null"#, "Input/output error");
    assert!(hits.get() >= 1);
    assert!(w.log().contains("1125899906842624 bytes need 268435456 block hashes, got 1"), "{}", w.log());
    w.assert_alive("a hashmap whose size disagrees with its hashes");
}

/// A version list a server makes up (thousands of entries, times out of
/// any range, then entries that are no pairs): `user.pithos.versions` stays
/// within what one xattr holds, keeping the newest; times are clamped; a
/// malformed list is `EIO`, never a panic.
#[test]
fn a_hostile_version_list_is_bounded_or_refused() {
    require("getfattr", "attr");
    let mut w = World::new();
    w.env.cloud.put("pithos", "v.txt", b"v");
    let is_list = |r: &Req| r.is_object("pithos", "v.txt") && r.query("version") == Some("list");
    let many = w.proxy.rule(
        "5,000 versions, absurd times",
        is_list,
        Action::Json(Box::new(|_, _| {
            let times = [json!(-5.0), json!(1e300), json!("1700000000.5"), json!(f64::MAX)];
            let list: Vec<Value> = (0..5000).map(|i| json!([i.to_string(), times[i % 4]])).collect();
            json!({ "versions": list })
        })),
    );
    w.mount(&[]);
    let listed = w.env.sh(r#"getfattr --only-values -n user.pithos.versions "$M/pithos/v.txt""#);
    assert!(many.get() >= 1);
    assert!(listed.len() <= 65536 && listed.lines().count() > 1000, "{} bytes", listed.len());
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.last().map(|l| l.split(' ').next()), Some(Some("4999")), "the newest is kept");
    for l in &lines {
        let time = l.split(' ').nth(1).unwrap_or("");
        assert!(time.starts_with("1970-") || time.starts_with("2023-") || time.starts_with("9999-"), "{l}");
    }
    w.proxy.clear();
    w.proxy.rule("no pairs", is_list, Action::Json(Box::new(|_, _| json!({ "versions": [["7"], 5, {"x": 1}] }))));
    w.fails_with(r#"getfattr -n user.pithos.versions "$M/pithos/v.txt""#, "Input/output error");
    w.assert_alive("a version list of no pairs");
}

/// A listed size no object can have hides that entry; its neighbour lists and reads.
#[test]
fn listed_size_past_the_limit_hides_that_entry() {
    let mut w = World::new();
    let data = random_bytes(64 << 10, 1);
    w.env.cloud.put("pithos", "sizes/huge.bin", &data);
    w.env.cloud.put("pithos", "sizes/fine.bin", &data);
    let hits = w.proxy.rule(
        "a size of 2^64-1 in a listing",
        |r| r.is_listing("pithos", Some("sizes/")),
        Action::Json(Box::new(|mut v, _| {
            for e in v.as_array_mut().unwrap() {
                if e["name"] == "sizes/huge.bin" {
                    e["bytes"] = json!(u64::MAX);
                }
            }
            v
        })),
    );
    w.mount(&[]);
    assert_eq!(w.env.sh(r#"ls "$M/pithos/sizes""#), "fine.bin\n");
    assert!(hits.get() >= 1);
    assert_eq!(w.env.sh(r#"sha256sum < "$M/pithos/sizes/fine.bin" | cut -c1-64"#).trim(), sha256(&data));
    assert!(w.log().contains("sizes: not showing \"huge.bin\""), "{}", w.log());
    w.assert_alive("a listed size of 2^64-1");
}

/// Times of 1e300, -1e300, NaN and inf in the server's metadata: clamped
/// into 1970..9999, or Last-Modified when they are no number; never a panic.
#[test]
fn server_times_are_clamped_never_a_panic() {
    let mut w = World::new();
    for (name, mtime) in [("t-far", "1e300"), ("t-before", "-1e300"), ("t-nan", "NaN"), ("t-inf", "inf")] {
        put_with_meta(&w.env, name, b"t", &[("X-Object-Meta-Posix-Mtime", mtime)]);
    }
    w.mount(&[]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mtime = |f: &str| -> i64 { w.env.sh(&format!(r#"stat -c %Y "$M/pithos/{f}""#)).trim().parse().unwrap() };
    assert_eq!(mtime("t-far"), 253_402_300_799);
    assert_eq!(mtime("t-before"), 0);
    for f in ["t-nan", "t-inf"] {
        assert!((mtime(f) - now).abs() < 300, "{f}: {} (now {now})", mtime(f));
    }
    assert_eq!(w.env.sh(r#"cat "$M/pithos/t-far""#), "t");
    w.assert_alive("times of 1e300, -1e300, NaN and inf");
}

/// Owners that are the "no owner" value or overflow, modes that are no
/// octal number: ignored (the mounting user's, the default mode).
#[test]
fn server_owners_and_modes_that_are_no_numbers_are_ignored() {
    let mut w = World::new();
    put_with_meta(
        &w.env,
        "owners",
        b"o",
        &[
            ("X-Object-Meta-Posix-Uid", "4294967295"),
            ("X-Object-Meta-Posix-Gid", "99999999999"),
            ("X-Object-Meta-Posix-Mode", "77777777777777777"),
        ],
    );
    w.mount(&[]);
    let (uid, gid) = (w.env.sh("id -u"), w.env.sh("id -g"));
    assert_eq!(w.env.sh(r#"stat -c '%u %g %a' "$M/pithos/owners""#), format!("{} {} 644\n", uid.trim(), gid.trim()));
    w.assert_alive("owners of 2^32-1");
}

/// A container whose block size no client can use: nothing is created in it (EIO).
#[test]
fn container_block_size_out_of_range_refuses_new_files() {
    let mut w = World::new();
    let hits = w.proxy.rule(
        "container block size of 1 TiB",
        |r| r.method == "HEAD" && r.object().is_none() && r.path.ends_with("/pithos"),
        Action::Headers(Box::new(|h| {
            h.insert("x-container-block-size", "1099511627776".parse().unwrap());
        })),
    );
    w.mount(&[]);
    w.fails_with(r#"echo new > "$M/pithos/new.txt""#, "Input/output error");
    assert!(hits.get() >= 1);
    assert!(
        w.log().contains("Container pithos cannot be used: its block size 1099511627776 is outside"),
        "{}",
        w.log()
    );
    assert!(!w.env.cloud.objects("pithos").contains(&"new.txt".to_string()));
    w.assert_alive("a container block size of 1 TiB");
    // Once the server behaves, files are created there again.
    w.proxy.clear();
    w.env.sh(r#"echo new > "$M/pithos/new.txt""#);
    assert_eq!(w.env.cloud.get("pithos", "new.txt"), b"new\n");
}

// ---------------------------------------------------------------------------
// through a real mount: reply sizes
// ---------------------------------------------------------------------------

/// An endless body to a block GET is cut at the block's length.
#[test]
fn endless_block_body_is_cut() {
    let mut w = World::new();
    let data = random_bytes(100_000, 2);
    w.env.cloud.put("pithos", "block.bin", &data);
    let hits = w.proxy.rule(
        "endless block",
        |r| r.is_data_read("pithos", "block.bin") && r.header("range").is_some(),
        endless(206, "application/octet-stream", b"", b"z"),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/block.bin" >/dev/null"#, "Input/output error");
    assert!(hits.get() >= 1);
    assert!(w.log().contains("the reply is longer than 100000 bytes"), "{}", w.log());
    w.assert_alive("an endless block");
    w.proxy.clear();
    assert_eq!(w.env.sh(r#"sha256sum < "$M/pithos/block.bin" | cut -c1-64"#).trim(), sha256(&data));
}

/// A block whose bytes do not match its hash (one byte changed on the way)
/// is refused when a sequential reader of the mount fetches it (as a
/// prefetched block, for 1 MiB requests): it is neither served nor cached.
/// The reader gets an error or, if the kernel then falls back to reading
/// single pages (ranged reads the proxy leaves alone), the true bytes;
/// never the changed ones.
#[test]
fn block_that_does_not_match_its_hash_is_refused() {
    let mut w = World::new();
    let bs = w.env.cloud.block_size("pithos") as usize;
    let data = random_bytes(2 * bs + 5000, 7);
    w.env.cloud.put("pithos", "tampered.bin", &data);
    let range = format!("bytes={}-{}", bs, 2 * bs - 1);
    let (want, total) = (range.clone(), data.len());
    let bad = {
        let mut b = data[bs..2 * bs].to_vec();
        b[bs / 2] ^= 0x40;
        b
    };
    let hits = w.proxy.rule(
        "tampered block 1",
        move |r| r.is_data_read("pithos", "tampered.bin") && r.header("range") == Some(want.as_str()),
        Action::Answer(Box::new(move |_| Made {
            status: 206,
            headers: vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                ("Content-Range".into(), format!("bytes {}-{}/{total}", bad.len(), 2 * bad.len() - 1)),
            ],
            body: bad.clone(),
        })),
    );
    w.mount(&[]);
    let out = w.env.run(
        r#"set -o pipefail; timeout 60 dd if="$M/pithos/tampered.bin" bs=1M status=none | sha256sum | cut -c1-64"#,
    );
    let (said, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        assert_eq!(said.trim(), sha256(&data), "the changed block was served");
    } else {
        assert!(err.contains("Input/output error"), "the read failed otherwise: {err}\n{}", w.log());
    }
    assert!(hits.get() >= 1, "the tampered block was never asked for");
    assert!(w.log().contains("does not match its hash"), "{}", w.log());
    w.assert_alive("a tampered block");
    w.proxy.clear();
    assert_eq!(w.env.sh(r#"sha256sum < "$M/pithos/tampered.bin" | cut -c1-64"#).trim(), sha256(&data));
}

/// A random reader (4 KiB `pread`s with `POSIX_FADV_RANDOM`) of a file
/// whose every byte comes back from the server changed: no read returns
/// changed bytes. Each fetches its whole block, which fails its hash, so
/// each fails with EIO. With `--unverified-range-reads` the same reads
/// fetch just their 4 KiB, which no hash can check, and get what the server
/// sent: the trade that option names.
#[test]
fn random_reads_are_checked_against_block_hashes() {
    let mut w = World::new();
    let bs = w.env.cloud.block_size("pithos") as usize;
    let data = random_bytes(3 * bs, 11);
    w.env.cloud.put("pithos", "random.bin", &data);
    // One byte changed in every 4 KiB page, whatever range is asked for.
    let mut bad = data.clone();
    for page in bad.chunks_mut(4096) {
        page[100] ^= 0x01;
    }
    let total = data.len();
    let small = Arc::new(AtomicU64::new(0));
    let hits = w.proxy.rule(
        "every byte changed",
        |r| r.is_data_read("pithos", "random.bin"),
        Action::Answer(Box::new({
            let (small, bad) = (small.clone(), bad.clone());
            move |r| {
                let (a, b) = r
                    .header("range")
                    .and_then(|v| v.strip_prefix("bytes="))
                    .and_then(|v| v.split_once('-'))
                    .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?.min(total - 1))))
                    .unwrap_or((0, total - 1));
                if b + 1 - a <= 4096 {
                    small.fetch_add(1, Ordering::SeqCst);
                }
                Made {
                    status: 206,
                    headers: vec![
                        ("Content-Type".into(), "application/octet-stream".into()),
                        ("Content-Range".into(), format!("bytes {a}-{b}/{total}")),
                    ],
                    body: bad[a..=b].to_vec(),
                }
            }
        })),
    );
    let read = |w: &World| -> Vec<(usize, Option<Vec<u8>>)> {
        let out = w.env.sh(r#"timeout 60 python3 - "$M/pithos/random.bin" <<'EOF'
import errno, os, random, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
pages = os.fstat(fd).st_size // 4096
for off in random.Random(5).sample(range(1, pages), 12):
    try:
        print(off * 4096, os.pread(fd, 4096, off * 4096).hex())
    except OSError as e:
        print(off * 4096, "EIO" if e.errno == errno.EIO else e)
EOF"#);
        out.lines()
            .map(|l| {
                let (off, got) = l.split_once(' ').expect("offset and answer");
                let off: usize = off.parse().expect("an offset");
                (off, (got != "EIO").then(|| hex::decode(got).unwrap_or_else(|_| panic!("not EIO nor bytes: {got}"))))
            })
            .collect()
    };
    w.mount(&[]);
    let answers = read(&w);
    assert_eq!(answers.len(), 12);
    for (off, got) in &answers {
        assert!(got.is_none(), "the read at {off} returned bytes, not EIO: changed ones? {}", w.log());
    }
    assert!(hits.get() >= 1, "the changed data was never asked for");
    assert_eq!(small.load(Ordering::SeqCst), 0, "a read fetched a range no hash can check");
    assert!(w.log().contains("does not match its hash"), "{}", w.log());
    w.assert_alive("random reads of changed blocks");

    w.env.unmount();
    w.mount(&["--unverified-range-reads"]);
    for (off, got) in read(&w) {
        assert_eq!(got.as_deref(), Some(&bad[off..off + 4096]), "the read at {off} did not take the server's bytes");
    }
    assert!(small.load(Ordering::SeqCst) >= 12, "the reads did not fetch just their ranges");
    w.proxy.clear();
    // Remounted: the kernel may keep pages the unchecked reads filled.
    w.env.unmount();
    w.mount(&[]);
    assert_eq!(w.env.sh(r#"sha256sum < "$M/pithos/random.bin" | cut -c1-64"#).trim(), sha256(&data));
}

/// Synnefo's truncation (a data POST with `X-Object-Bytes`, as kamaki's
/// `truncate_object` sends it) keeps the old hash on the cut last block.
/// With history (versioning on, the default) the mount checks the cut block
/// against the older block that hash names and serves it; without history
/// nothing can check it, and it is refused, not served unchecked.
#[test]
fn a_block_cut_by_truncation_is_checked_through_history() {
    let mut w = World::new();
    let bs = w.env.cloud.block_size("pithos") as usize;
    let data = random_bytes(2 * bs + 3000, 13);
    let cut = bs + 1000;
    let truncate = |container: &str| {
        w.env.cloud.put(container, "cut.bin", &data);
        let r = http(
            "POST",
            &format!("{}?update", w.env.cloud.object_url(container, "cut.bin")),
            &[
                ("Content-Type", "application/octet-stream"),
                ("X-Source-Object", &format!("/{container}/cut.bin")),
                ("Content-Range", &format!("bytes 0-{}/*", cut - 1)),
                ("X-Object-Bytes", &cut.to_string()),
            ],
            None,
        );
        assert_eq!(r.status, 204, "truncate: {}", String::from_utf8_lossy(&r.body));
    };
    truncate("pithos");
    let r = http("PUT", &w.env.cloud.container_url("flat"), &[("X-Container-Policy-Versioning", "none")], None);
    assert_eq!(r.status, 201);
    truncate("flat");
    w.mount(&[]);
    let got = w.env.sh(r#"timeout 60 sha256sum < "$M/pithos/cut.bin" | cut -c1-64"#);
    assert_eq!(got.trim(), sha256(&data[..cut]), "{}", w.log());
    w.fails_with(r#"timeout 60 cat "$M/flat/cut.bin" >/dev/null"#, "Input/output error");
    assert!(w.log().contains("block 1 of cut.bin does not match its hash"), "{}", w.log());
    w.assert_alive("a block cut by truncation");
}

/// An endless hashmap is cut at the largest hashmap an object can have.
#[test]
fn endless_hashmap_is_cut() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "hashmap.bin", &random_bytes(100_000, 3));
    let hits = w.proxy.rule(
        "endless hashmap",
        |r| r.is_hashmap("pithos", "hashmap.bin"),
        endless(200, "application/json", br#"{"block_size": 4194304, "bytes": 1, "hashes": [""#, b"0"),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/hashmap.bin" >/dev/null"#, "Input/output error");
    assert!(hits.get() >= 1);
    assert!(w.log().contains("the reply is longer than 18939904 bytes"), "{}", w.log());
    w.assert_alive("an endless hashmap");
}

/// An endless symlink target is cut at what readlink can return (4095 bytes).
#[test]
fn endless_symlink_target_is_cut() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "target.txt", b"the target\n");
    let r = http(
        "PUT",
        &w.env.cloud.object_url("pithos", "link"),
        &[("Content-Type", "inode/symlink")],
        Some(b"target.txt".to_vec()),
    );
    assert_eq!(r.status, 201);
    let hits = w.proxy.rule(
        "endless symlink",
        |r| r.is_data_read("pithos", "link"),
        endless(200, "inode/symlink", b"", b"../"),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/link""#, "Input/output error");
    assert!(hits.get() >= 1);
    assert!(w.log().contains("the reply is longer than 4095 bytes"), "{}", w.log());
    w.assert_alive("an endless symlink target");
    w.proxy.clear();
    assert_eq!(w.env.sh(r#"readlink "$M/pithos/link"; cat "$M/pithos/link""#), "target.txt\nthe target\n");
}

/// An endless listing page is cut at the JSON limit (2 MiB here), after
/// smaller pages were tried.
#[test]
fn endless_listing_page_is_cut() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "endless/real.txt", b"real\n");
    let hits = w.proxy.rule(
        "endless listing page",
        |r| r.is_listing("pithos", Some("endless/")),
        endless(200, "application/json", b"[", br#"{"name": "endless/x", "bytes": 1},"#),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 ls "$M/pithos/endless""#, "Input/output error");
    assert!(hits.get() >= 5, "pages of 10,000, 2,500, 625, 156 and 100 entries: {}", hits.get());
    assert!(w.log().contains("the reply is longer than 2097152 bytes"), "{}", w.log());
    w.assert_alive("an endless listing page");
    w.proxy.clear();
    assert_eq!(w.env.sh(r#"ls "$M/pithos/endless""#), "real.txt\n");
}

// ---------------------------------------------------------------------------
// through a real mount: listings and names
// ---------------------------------------------------------------------------

/// A listing that never ends stops at the cap (25,000 entries here), with a log line.
#[test]
fn never_ending_listing_stops_at_the_cap() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "forever/real.txt", b"real\n");
    let hits = w.proxy.rule("never ends", |r| r.is_listing("pithos", Some("forever/")), endless_listing("forever/"));
    w.mount(&[]);
    assert_eq!(w.env.sh(r#"timeout 30 ls "$M/pithos/forever" | wc -l"#).trim(), "25000");
    assert!(hits.get() >= 3, "pages of 10,000, 10,000 and 5,000: {}", hits.get());
    assert!(w.log().contains("pithos/forever: the server lists 25000 entries or more"), "{}", w.log());
    w.assert_alive("a listing that never ends");
}

/// A listing that repeats its marker fails (EIO) instead of looping or stopping silently.
#[test]
fn repeated_marker_fails_the_listing() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "loop/real.txt", b"real\n");
    let hits = w.proxy.rule("same page", |r| r.is_listing("pithos", Some("loop/")), looping_listing("loop/"));
    w.mount(&[]);
    w.fails_with(r#"timeout 30 ls "$M/pithos/loop""#, "Input/output error");
    assert!(hits.get() >= 2);
    assert!(w.log().contains("The object listing does not move forward"), "{}", w.log());
    w.assert_alive("a listing that repeats its marker");
}

/// A listing that goes backwards fails (EIO) instead of looping for ever.
#[test]
fn backwards_marker_fails_the_listing() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "back/real.txt", b"real\n");
    let hits = w.proxy.rule("backwards", |r| r.is_listing("pithos", Some("back/")), backwards_listing("back/"));
    w.mount(&[]);
    w.fails_with(r#"timeout 30 ls "$M/pithos/back""#, "Input/output error");
    assert!(hits.get() >= 2);
    assert!(
        w.log().contains("does not move forward: after \"back/m00009999\" it gave \"back/a00009999\""),
        "{}",
        w.log()
    );
    w.assert_alive("a listing that goes backwards");
}

/// A 10 KB object name, a 256-byte one, empty, dotted, slashed and NUL
/// names, names outside the folder: each hides only itself.
#[test]
fn bad_object_names_hide_only_themselves() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "names/good1.txt", b"one\n");
    w.env.cloud.put("pithos", "names/good2.txt", b"two\n");
    let hits = w.proxy.rule(
        "bad object names",
        |r| r.is_listing("pithos", Some("names/")),
        Action::Json(Box::new(|v, _| {
            let mut all = v.as_array().unwrap().clone();
            for bad in [
                format!("names/{}", "x".repeat(10_240)),
                format!("names/{}", "y".repeat(256)),
                "names/".to_string(),
                "names/.".to_string(),
                "names/..".to_string(),
                "names/a\u{0}b".to_string(),
                "names/sub/deep".to_string(),
                "elsewhere/thing".to_string(),
            ] {
                all.push(json!({"name": bad, "bytes": 1, "content_type": "text/plain"}));
            }
            all.push(json!({"subdir": "names/dir//"}));
            all.push(json!({"subdir": "other/"}));
            Value::Array(all)
        })),
    );
    w.mount(&[]);
    assert_eq!(w.env.sh(r#"ls "$M/pithos/names""#), "good1.txt\ngood2.txt\n");
    assert_eq!(w.env.sh(r#"cat "$M/pithos/names/good1.txt" "$M/pithos/names/good2.txt""#), "one\ntwo\n");
    assert!(hits.get() >= 1);
    let log = w.log();
    assert!(log.contains("pithos/names: not showing"), "{log}");
    assert!(log.contains("the object name is past 8192 bytes"), "{log}");
    assert!(log.contains("the name is past 255 bytes"), "{log}");
    assert!(log.contains("no file can have that name"), "{log}");
    assert!(log.contains("it is outside the folder listed"), "{log}");
    assert!(log.contains("2 more entries of the listing not shown"), "{log}");
    w.assert_alive("bad object names");
}

/// Empty, slashed, dotted, NUL and 10 KB container names: each hides only itself.
#[test]
fn bad_container_names_hide_only_themselves() {
    let mut w = World::new();
    let hits = w.proxy.rule(
        "bad container names",
        |r| r.is_account_listing(),
        Action::Json(Box::new(|v, _| {
            let mut all = v.as_array().unwrap().clone();
            for bad in [String::new(), "a/b".into(), "c".repeat(10_240), "..".into(), "d\u{0}e".into()] {
                all.push(json!({"name": bad, "count": 0, "bytes": 0}));
            }
            Value::Array(all)
        })),
    );
    w.mount(&[]);
    let mut real = w.env.cloud.containers();
    real.sort();
    assert_eq!(w.env.sh(r#"ls "$M""#), real.iter().map(|c| format!("{c}\n")).collect::<String>());
    assert!(hits.get() >= 1);
    assert!(w.log().contains("the account: not showing"), "{}", w.log());
    w.assert_alive("bad container names");
}

// ---------------------------------------------------------------------------
// through a real mount: deadlines
// ---------------------------------------------------------------------------

/// A block that comes a byte every 300 ms fails the read within the
/// deadlines (the minimum pace, retries included).
#[test]
fn dripping_block_fails_in_bounded_time() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "drip.bin", &random_bytes(100_000, 4));
    let hits = w.proxy.rule(
        "a byte every 300 ms",
        |r| r.is_data_read("pithos", "drip.bin") && r.header("range").is_some(),
        drip(206, 100_000, Duration::from_millis(300)),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/drip.bin" >/dev/null"#, "Input/output error");
    assert!(hits.get() >= 2, "the slow block was not retried: {}", hits.get());
    assert!(w.log().contains("the reply comes too slowly"), "{}", w.log());
    w.assert_alive("a dripping block");
}

/// A server that takes the request and never answers fails the open within the deadlines.
#[test]
fn silent_server_fails_in_bounded_time() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "quiet.bin", &random_bytes(1000, 5));
    let hits = w.proxy.rule("never answers", |r| r.is_hashmap("pithos", "quiet.bin"), Action::Silent);
    w.mount(&[]);
    w.fails_with(r#"timeout 30 cat "$M/pithos/quiet.bin" >/dev/null"#, "Input/output error");
    assert!(hits.get() >= 2);
    assert!(w.log().contains("no reply within 2 s"), "{}", w.log());
    w.assert_alive("a server that never answers");
}

/// A listing that comes a byte at a time fails within the deadlines.
#[test]
fn dripping_listing_fails_in_bounded_time() {
    let mut w = World::new();
    w.env.cloud.put("pithos", "slow/real.txt", b"real\n");
    let hits = w.proxy.rule(
        "a listing a byte at a time",
        |r| r.is_listing("pithos", Some("slow/")),
        drip(200, 1000, Duration::from_millis(300)),
    );
    w.mount(&[]);
    w.fails_with(r#"timeout 30 ls "$M/pithos/slow""#, "Input/output error");
    assert!(hits.get() >= 2);
    w.assert_alive("a dripping listing");
}

// ---------------------------------------------------------------------------
// through a real mount: setuid
// ---------------------------------------------------------------------------

/// Setuid/setgid bits in the server's metadata do not show (so `cp -a` as
/// root makes no setuid copy) and the mount is nosuid,nodev; `--suid` shows
/// them and drops nosuid. The bits stay on the server either way.
#[test]
fn setuid_bits_are_masked_unless_suid() {
    let mut w = World::new();
    put_with_meta(&w.env, "suid.bin", b"#!/bin/sh\n", &[("X-Object-Meta-Posix-Mode", "104755")]);
    put_with_meta(&w.env, "sgid.bin", b"#!/bin/sh\n", &[("X-Object-Meta-Posix-Mode", "2750")]);
    put_with_meta(&w.env, "sticky", b"", &[("X-Object-Meta-Posix-Mode", "1777")]);
    w.mount(&[]);
    assert_eq!(
        w.env.sh(r#"cd "$M/pithos"; stat -c '%n %a' suid.bin sgid.bin sticky"#),
        "suid.bin 755\nsgid.bin 750\nsticky 1777\n"
    );
    w.env.sh(r#"cp -a "$M/pithos/suid.bin" "$M/pithos/sgid.bin" "$L/""#);
    assert_eq!(w.env.sh(r#"cd "$L"; stat -c '%n %a' suid.bin sgid.bin"#), "suid.bin 755\nsgid.bin 750\n");
    let options = |w: &World| -> Vec<String> {
        let point = w.env.m().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let line = mounts.lines().find(|l| l.split_whitespace().nth(1) == Some(point.as_str())).expect("mounted");
        line.split_whitespace().nth(3).unwrap().split(',').map(str::to_string).collect()
    };
    let o = options(&w);
    assert!(o.contains(&"nosuid".into()) && o.contains(&"nodev".into()), "{o:?}");
    assert_eq!(w.env.cloud.head("pithos", "suid.bin").header("x-object-meta-posix-mode").as_deref(), Some("104755"));

    w.env.unmount();
    w.mount(&["--suid"]);
    assert_eq!(
        w.env.sh(r#"cd "$M/pithos"; stat -c '%n %a' suid.bin sgid.bin sticky"#),
        "suid.bin 4755\nsgid.bin 2750\nsticky 1777\n"
    );
    let o = options(&w);
    assert!(!o.contains(&"nosuid".into()) && o.contains(&"nodev".into()), "{o:?}");
}

// ---------------------------------------------------------------------------
// the client library against the same server
// ---------------------------------------------------------------------------

fn shrunk() -> Options {
    let mut o = Options::default();
    o.apply(LIMITS).unwrap();
    o
}

fn client(w: &World, o: Options) -> PithosClient {
    let http = Http::with_options(&w.proxy.pithos(), Some(TOKEN), o).unwrap();
    PithosClient::with_http(http, &w.env.cloud.account, "pithos").unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The call returns (an error) within 30 s.
async fn within<T>(what: &str, f: impl std::future::Future<Output = Result<T, ClientError>>) -> ClientError {
    match tokio::time::timeout(Duration::from_secs(30), f).await {
        Ok(Ok(_)) => panic!("{what}: should have failed"),
        Ok(Err(e)) => e,
        Err(_) => panic!("{what}: no answer within 30 s"),
    }
}

/// Numbers and bodies, for every caller of the library (the control command too).
#[test]
fn client_library_bounds_numbers_and_bodies() {
    let w = World::new();
    let data = random_bytes(20_000, 6);
    for name in ["bs.bin", "many.bin", "endless.bin", "ranged.bin", "drip.bin", "quiet.bin"] {
        w.env.cloud.put("pithos", name, &data);
    }
    w.proxy.rule(
        "4 KiB - 1 blocks",
        |r| r.is_hashmap("pithos", "bs.bin"),
        hashmap_rewrite(|m| {
            m.insert("block_size".into(), json!(4095));
        }),
    );
    w.proxy.rule(
        "more hashes than an object has",
        |r| r.is_hashmap("pithos", "many.bin"),
        hashmap_rewrite(|m| {
            let first = m["hashes"][0].clone();
            m.insert("hashes".into(), Value::Array(vec![first; 262_145]));
            m.insert("bytes".into(), json!(262_145u64 * 4096));
            m.insert("block_size".into(), json!(4096));
        }),
    );
    w.proxy.rule("endless", |r| r.is_data_read("pithos", "endless.bin"), endless(206, "text/plain", b"", b"e"));
    w.proxy.rule(
        "ignores Range",
        |r| r.is_data_read("pithos", "ranged.bin"),
        Action::DropRequestHeaders(vec!["range"]),
    );
    w.proxy.rule("drips", |r| r.is_data_read("pithos", "drip.bin"), drip(206, 1000, Duration::from_millis(300)));
    w.proxy.rule("silent", |r| r.is_object("pithos", "quiet.bin"), Action::Silent);
    let c = client(&w, shrunk());
    runtime().block_on(async {
        let e = c.get_object_hashmap("bs.bin", None).await.unwrap_err();
        assert!(e.message.contains("bs.bin: Bad hashmap: its block size 4095 is outside 4096..=67108864"), "{e}");
        let e = c.get_object_hashmap("many.bin", None).await.unwrap_err();
        assert!(e.message.contains("more than 262144 hashes"), "{e}");
        let hm = c.get_object_hashmap("ranged.bin", None).await.unwrap();
        assert_eq!(hm.bytes, 20_000);

        let e = within("endless range", c.get_range("endless.bin", 0, 999, None)).await;
        assert!(e.message.contains("the reply is longer than 1000 bytes"), "{e}");
        // Whole objects: at most `max_object` (1 GiB by default; 5,000 bytes here).
        let small = client(&w, Options { max_object: 5000, ..shrunk() });
        let e = within("endless object", small.get_object("endless.bin", &GetOptions::default())).await;
        assert!(e.message.contains("the reply is longer than 5000 bytes"), "{e}");
        let e = small.get_object("ranged.bin", &GetOptions::default()).await.unwrap_err();
        assert!(e.message.contains("the reply is longer than 5000 bytes"), "{e}");
        let o = GetOptions { max_bytes: Some(100), ..Default::default() };
        let e = c.get_object("ranged.bin", &o).await.unwrap_err();
        assert!(e.message.contains("the reply is longer than 100 bytes"), "{e}");
        // A HEAD announces the object's length, but has no body: no limit applies.
        let tiny = client(&w, Options { max_reply: 100, ..shrunk() });
        assert_eq!(tiny.get_object_info("ranged.bin").await.unwrap().bytes, 20_000);

        // A server that ignores Range: only the part asked for is kept.
        assert_eq!(c.get_range("ranged.bin", 1000, 1999, None).await.unwrap(), data[1000..2000]);
        let (_, got) = c
            .get_object("ranged.bin", &GetOptions { range: Some((19_990, 19_999)), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(got, data[19_990..]);

        let e = within("drip", c.get_range("drip.bin", 0, 999, None)).await;
        assert!(e.message.contains("the reply comes too slowly"), "{e}");
        let e = within("silent", c.get_object_info("quiet.bin")).await;
        assert!(e.message.contains("no reply within 2 s"), "{e}");
        assert!(c.http().stats().retries >= 2, "{:?}", c.http().stats());
    });
}

/// Listings: a cap, and a marker that must move forward.
#[test]
fn client_library_listings_end() {
    let w = World::new();
    w.proxy.rule("never ends", |r| r.is_listing("pithos", Some("forever/")), endless_listing("forever/"));
    w.proxy.rule("same page", |r| r.is_listing("pithos", Some("loop/")), looping_listing("loop/"));
    w.proxy.rule("backwards", |r| r.is_listing("pithos", Some("back/")), backwards_listing("back/"));
    w.proxy.rule("endless containers", |r| r.is_account_listing(), endless_listing("c"));
    let c = client(&w, shrunk());
    let prefix = |p: &str, limit: Option<usize>| ListOptions { prefix: Some(p.into()), limit, ..Default::default() };
    runtime().block_on(async {
        let e = c.list_objects(&prefix("forever/", None)).await.unwrap_err();
        assert!(e.message.contains("more than 25000 entries"), "{e}");
        assert_eq!(c.list_objects(&prefix("forever/", Some(12_345))).await.unwrap().len(), 12_345);
        let e = c.list_objects(&prefix("loop/", None)).await.unwrap_err();
        assert!(e.message.contains("does not move forward"), "{e}");
        let e = c.list_objects(&prefix("back/", None)).await.unwrap_err();
        assert!(e.message.contains("does not move forward"), "{e}");
        let e = c.list_containers().await.unwrap_err();
        assert!(e.message.contains("The container listing has more than 25000 entries"), "{e}");
        let some = ListOptions { limit: Some(3), ..Default::default() };
        assert_eq!(c.list_containers_with(&some).await.unwrap().len(), 3);
    });
}

/// A slow but steady link passes the minimum pace, up and down, however
/// long the transfer; the same link fails a higher minimum.
#[test]
fn client_library_slow_steady_links_pass() {
    let w = World::new();
    let data = Bytes::from(random_bytes(1 << 20, 8));
    w.env.cloud.put("pithos", "steady.bin", &data);
    let down = w.proxy.rule("256 KiB/s down", |r| r.is_data_read("pithos", "steady.bin"), Action::SlowReply(256 << 10));
    let up = w.proxy.rule(
        "256 KiB/s up",
        |r| r.method == "PUT" && r.is_object("pithos", "up.bin"),
        Action::SlowRead(256 << 10),
    );
    // About 4 s each way, checked every second against 64 KiB/s.
    let pace = |min_rate| Options { min_rate, retries: 0, response_timeout: Duration::from_secs(10), ..shrunk() };
    let c = client(&w, pace(64 << 10));
    runtime().block_on(async {
        assert_eq!(c.get_range("steady.bin", 0, (1 << 20) - 1, None).await.unwrap(), data);
        c.put_object("up.bin", data.clone(), &PutOptions::default()).await.unwrap();
        let e = client(&w, pace(512 << 10)).get_range("steady.bin", 0, (1 << 20) - 1, None).await.unwrap_err();
        assert!(e.message.contains("the reply comes too slowly"), "{e}");
    });
    assert_eq!(sha256(&w.env.cloud.get("pithos", "up.bin")), sha256(&data));
    assert_eq!((down.get(), up.get()), (2, 1));
}

/// A server that does not read what is sent: the upload fails at the
/// minimum pace instead of hanging (a block POST, a PUT, a streamed PUT).
#[test]
fn client_library_uploads_to_a_deaf_server_fail() {
    let w = World::new();
    let deaf = w.proxy.rule("reads nothing", |r| r.is_object("pithos", "deaf.bin"), Action::Deaf);
    let c = client(&w, Options { retries: 0, ..shrunk() });
    let big = Bytes::from(random_bytes(64 << 20, 7));
    runtime().block_on(async {
        let e = within("PUT", c.put_object("deaf.bin", big.clone(), &PutOptions::default())).await;
        assert!(e.message.contains("sending too slowly"), "{e}");
        let pieces = futures_util::stream::iter(
            (0..64).map(move |i| Ok::<Bytes, std::io::Error>(big.slice(i << 20..(i + 1) << 20))),
        );
        let e =
            within("streamed PUT", c.put_object_streamed("deaf.bin", 64 << 20, pieces, &PutOptions::default())).await;
        assert!(e.message.contains("sending too slowly"), "{e}");
    });
    assert_eq!(deaf.get(), 2);
}

/// A hostile list of accounts sharing with the user: names no file can
/// have (`..`, a slash, empty, past 255 bytes) are not shown, thousands are
/// bounded, and an owner the server then refuses is `EACCES`; the mount
/// lives on.
#[test]
fn a_hostile_list_of_sharers_shows_only_what_can_be_names() {
    let mut w = World::new();
    let sharers = |r: &Req| {
        r.method == "GET" && r.path.trim_end_matches('/') == pithosfs::cloud::PITHOS_PATH && r.query("format").is_some()
    };
    let long = "x".repeat(300);
    let hits = w.proxy.rule(
        "sharers that are no names",
        sharers,
        Action::Answer(Box::new(move |_| {
            let mut list: Vec<Value> = ["..", ".", "a/b", "", long.as_str(), "ok-owner", "ok-owner"]
                .iter()
                .map(|n| json!({ "name": n }))
                .collect();
            list.extend([json!({ "name": 5 }), json!("bare"), json!(null)]);
            list.extend((0..3000).map(|i| json!({ "name": format!("many-{i:04}") })));
            Made {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: serde_json::to_vec(&Value::Array(list)).unwrap_or_default(),
            }
        })),
    );
    w.mount(&[]);
    let shown = w.env.sh(r#"ls "$M/.shared""#);
    assert!(hits.get() >= 1);
    let names: Vec<&str> = shown.lines().collect();
    assert!(names.contains(&"ok-owner"), "{shown}");
    assert!(names.iter().all(|n| *n == "ok-owner" || n.starts_with("many-")), "{shown}");
    assert_eq!(names.len(), 3001, "each owner once");
    let err = w.env.sh_fails(r#"timeout 30 ls "$M/.shared/ok-owner""#);
    assert!(err.contains("Permission denied") || err.contains("No such file"), "{err}");
    w.assert_alive("a hostile list of sharers");
}
