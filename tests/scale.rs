//! Very large folders through a real mount. The objects are made by
//! `pithosfs serve bulk-load` (straight into the stopped server's store, as a
//! PUT would make them: seconds instead of minutes of PUTs); everything under
//! test then goes through the server and the mount.

mod harness;

use harness::*;
use std::process::Command;

/// `pithosfs serve bulk-load` into the test's server (stopped for it, then
/// started again on the same data and address); its stdout.
fn bulk_load(env: &mut Env, args: &[&str]) -> String {
    env.cloud.kill();
    let out = Command::new(BIN)
        .args(["serve", "bulk-load", "--data"])
        .arg(&env.cloud.data)
        .args(["--user", "tester"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "bulk-load {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    env.cloud.restart(&env.root);
    String::from_utf8(out.stdout).unwrap()
}

fn json(r: &Resp) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    serde_json::from_slice(&r.body).unwrap()
}

/// Bulk-loaded objects are the server's like any PUT's: listed by folder,
/// counted in the container, read back, deleted, and their shared block
/// survives garbage collection. A server running on the data directory
/// makes the loader refuse.
#[test]
fn bulk_loaded_objects_are_served_like_put_ones() {
    let mut env = Env::new();
    let refused = Command::new(BIN)
        .args(["serve", "bulk-load", "--data"])
        .arg(&env.cloud.data)
        .args(["--user", "tester", "--container", "big", "--count", "3"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("in use"), "{refused:?}");

    let said = bulk_load(
        &mut env,
        &["--container", "big", "--prefix", "p", "--count", "1200", "--fanout", "500", "--size", "100"],
    );
    assert_eq!(said.trim().split(" in ").take(2).collect::<Vec<_>>(), ["loaded 1200 objects", "3 folders"]);
    let url = env.cloud.container_url("big");
    let folders = json(&http("GET", &format!("{url}?format=json&prefix=p/&delimiter=/"), &[], None));
    let folders: Vec<&str> = folders.as_array().unwrap().iter().filter_map(|e| e["subdir"].as_str()).collect();
    assert_eq!(folders, ["p/d0000/", "p/d0001/", "p/d0002/"]);
    let last = json(&http("GET", &format!("{url}?format=json&prefix=p/d0002/"), &[], None));
    let last = last.as_array().unwrap();
    assert_eq!(last.len(), 200);
    assert_eq!((last[0]["name"].as_str(), last[0]["bytes"].as_u64()), (Some("p/d0002/f000000"), Some(100)));
    let head = http("HEAD", &url, &[], None);
    assert_eq!(head.header("x-container-object-count").as_deref(), Some("1200"));
    assert_eq!(head.header("x-container-bytes-used").as_deref(), Some("120000"));

    let content: Vec<u8> = b"pithosfs bulk-load\n".iter().copied().cycle().take(100).collect();
    assert_eq!(env.cloud.get("big", "p/d0001/f000123"), content);
    let gc = Command::new(BIN).args(["serve", "gc", "--data"]).arg(&env.cloud.data).output().unwrap();
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert_eq!(env.cloud.get("big", "p/d0000/f000499"), content, "the shared block survives a collection");
    env.cloud.delete("big", "p/d0000/f000000");
    let head = http("HEAD", &url, &[], None);
    assert_eq!(head.header("x-container-object-count").as_deref(), Some("1199"));
    assert_eq!(env.cloud.get("big", "p/d0002/f000199"), content);
}

/// A folder of 50,000 objects lists exactly through the mount (`ls`, `ls -l`,
/// `find`), and the mount stays small: well under 1 KiB per entry held.
#[test]
fn a_folder_of_50000_objects_lists_exactly_in_bounded_memory() {
    const N: usize = 50_000;
    let mut env = Env::new();
    bulk_load(&mut env, &["--container", "pithos", "--prefix", "wide", "--count", "50000", "--fanout", "50000"]);
    env.mount(&[]);
    let expected: String = (0..N).map(|i| format!("f{i:06}\n")).collect();
    assert_eq!(env.sh(r#"ls "$M/pithos/wide/d0000""#), expected);
    let before = env.mounts[0].status_kib("VmRSS");
    assert_eq!(env.sh(r#"ls -l "$M/pithos/wide/d0000" | grep -c '^-.* 1024 '"#).trim(), N.to_string());
    assert_eq!(env.sh(r#"find "$M/pithos/wide" -type f | wc -l"#).trim(), N.to_string());
    let after = env.mounts[0].status_kib("VmRSS");
    let peak = env.mounts[0].status_kib("VmHWM");
    println!("mount RSS: {before} KiB after ls, {after} KiB after ls -l and find (peak {peak} KiB) for {N} entries");
    // Measured: ~74 MiB (debug build; before issue 12 the same listing held ~2.7 KiB an
    // entry, ~150 MiB); the bound leaves room for another machine's allocator.
    assert!(after < 128 * 1024, "the mount holds {after} KiB after listing {N} entries (bound: 128 MiB)");
    assert_eq!(env.sh(r#"stat -c %s "$M/pithos/wide/d0000/f042424""#), "1024\n");
}

/// A folder of more objects than the local cloud once moved at once
/// (100,000) renames through the mount in one request.
#[test]
fn renaming_a_folder_of_100001_objects() {
    let mut env = Env::new();
    bulk_load(&mut env, &["--container", "pithos", "--prefix", "tree", "--count", "100001", "--size", "10"]);
    env.mount(&[]);
    env.sh(r#"mv "$M/pithos/tree" "$M/pithos/moved""#);
    assert_eq!(env.sh(r#"ls "$M/pithos/moved/d0100""#), "f000000\n");
    assert_eq!(env.sh(r#"ls "$M/pithos" | grep -c tree || true"#).trim(), "0");
    let url = env.cloud.container_url("pithos");
    let left = http("GET", &format!("{url}?format=json&prefix=tree/&limit=1"), &[], None);
    assert!(left.status == 204 || json(&left).as_array().is_some_and(|a| a.is_empty()), "objects left under tree/");
    let head = http("HEAD", &url, &[], None);
    assert_eq!(head.header("x-container-object-count").as_deref(), Some("100001"));
    assert_eq!(env.cloud.get("pithos", "moved/d0042/f000123"), b"pithosfs b".to_vec());
}
