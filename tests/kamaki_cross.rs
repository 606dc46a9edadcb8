//! Cross-checks with the official client: what the Rust client uploads,
//! kamaki downloads to the same bytes, and the reverse; a server kamaki
//! creates shows in `pithosfs server info`.
//!
//! kamaki comes from `scripts/setup-kamaki` (its venv path in `PITHOSFS_KAMAKI_VENV`,
//! default `.cache/kamaki-venv`). Without it the tests fail under CI and are
//! skipped elsewhere.

mod common;

use common::{TestCloud, ALICE_TOKEN};
use pithosfs::clients::pithos::{PithosClient, TransferOptions};
use pithosfs::clients::storage::PutOptions;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kamaki_bin() -> Option<PathBuf> {
    let venv = std::env::var_os("PITHOSFS_KAMAKI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/kamaki-venv"));
    let bin = venv.join("bin/kamaki");
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var_os("CI").is_some() {
        panic!("kamaki is not installed at {} (run scripts/setup-kamaki)", bin.display());
    }
    eprintln!("skipped: kamaki not found at {} (run scripts/setup-kamaki)", bin.display());
    None
}

#[derive(Clone)]
struct Kamaki {
    bin: PathBuf,
    config: PathBuf,
}

impl Kamaki {
    fn new(bin: PathBuf, tc: &TestCloud, dir: &Path) -> Kamaki {
        let config = dir.join("kamakirc");
        std::fs::write(&config, "").unwrap();
        let k = Kamaki { bin, config };
        k.run(&["config", "set", "cloud.default.url", &tc.identity()]);
        k.run(&["config", "set", "cloud.default.token", ALICE_TOKEN]);
        k.run(&["config", "set", "default_cloud", "default"]);
        k
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin).arg("-c").arg(&self.config).args(args).output().expect("run kamaki");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "kamaki {args:?} failed:\n{text}");
        text
    }
}

fn sha_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn random_file(p: &Path, n: usize, seed: u64) {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(p, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_kamaki_exchange_files() {
    let Some(bin) = kamaki_bin() else { return };
    let tc = TestCloud::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kamaki = Kamaki::new(bin, &tc, dir.path());
    let p = PithosClient::new(&tc.pithos(), ALICE_TOKEN, &tc.alice, "pithos").unwrap();
    // Rust up, kamaki down (9 MiB + a bit: three 4 MiB blocks)
    let src = dir.path().join("from-rust.bin");
    random_file(&src, 9 * 1024 * 1024 + 4321, 7);
    p.upload_file("cross/from-rust.bin", &src, &PutOptions::default()).await.unwrap();
    let down = dir.path().join("kamaki-got.bin");
    let k = kamaki.clone();
    let down_s = down.to_str().unwrap().to_string();
    tokio::task::spawn_blocking(move || k.run(&["file", "download", "/pithos/cross/from-rust.bin", &down_s]))
        .await
        .unwrap();
    assert_eq!(sha_file(&down), sha_file(&src));
    // kamaki up, Rust down
    let src2 = dir.path().join("from-kamaki.bin");
    random_file(&src2, 5 * 1024 * 1024 + 17, 8);
    let k = kamaki.clone();
    let src2_s = src2.to_str().unwrap().to_string();
    tokio::task::spawn_blocking(move || k.run(&["file", "upload", &src2_s, "/pithos/cross/from-kamaki.bin"]))
        .await
        .unwrap();
    let down2 = dir.path().join("rust-got.bin");
    p.download_file("cross/from-kamaki.bin", &down2, &TransferOptions::default()).await.unwrap();
    assert_eq!(sha_file(&down2), sha_file(&src2));
    // both see the same Merkle hash
    let info = p.get_object_hashmap("cross/from-kamaki.bin", None).await.unwrap();
    let k = kamaki.clone();
    let text =
        tokio::task::spawn_blocking(move || k.run(&["file", "info", "/pithos/cross/from-kamaki.bin"])).await.unwrap();
    assert!(text.contains(&pithosfs::blocks::merkle(info.algorithm, &info.hashes).to_hex()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_kamaki_creates_shows_in_pithosfs_server_info() {
    let Some(bin) = kamaki_bin() else { return };
    let tc = TestCloud::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kamaki = Kamaki::new(bin, &tc, dir.path());
    // an image to boot from, registered through kamaki too
    let img = dir.path().join("debian.diskdump");
    random_file(&img, 1024 * 1024, 3);
    let (k, img_s) = (kamaki.clone(), img.to_str().unwrap().to_string());
    let registered = tokio::task::spawn_blocking(move || {
        k.run(&["container", "create", "images"]);
        k.run(&["file", "upload", &img_s, "/images/debian.diskdump"]);
        k.run(&[
            "image",
            "register",
            "--name",
            "Debian Base",
            "--location",
            "/images/debian.diskdump",
            "-p",
            "os=Debian Base",
            "-p",
            "users=root",
            "-f",
        ])
    })
    .await
    .unwrap();
    let image_id = top_level(&registered, "id").unwrap_or_else(|| panic!("no image id in:\n{registered}"));
    let k = kamaki.clone();
    let created = tokio::task::spawn_blocking(move || {
        k.run(&["server", "create", "--name", "A Debian Server", "--flavor-id", "1", "--image-id", &image_id])
    })
    .await
    .unwrap();
    let server_id = top_level(&created, "id").unwrap_or_else(|| panic!("no server id in:\n{created}"));
    // pithosfs finds the cloud through the same kamaki config file
    let out = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["server", "info", &server_id, "--json"])
        .env("KAMAKI_CONFIG", &kamaki.config)
        .env_remove("PITHOSFS_URL")
        .env_remove("PITHOSFS_TOKEN")
        .env_remove("PITHOSFS_TOKEN_FILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["name"], "A Debian Server");
    assert_eq!(v["id"].to_string(), server_id);
    assert_eq!(v["metadata"]["os"], "Debian Base");
    assert!(!stdout.contains(ALICE_TOKEN));
}

/// A top-level `key: value` line of kamaki's output (nested ones are indented).
fn top_level(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(&format!("{key}:")).map(|v| v.trim().to_string()))
}
