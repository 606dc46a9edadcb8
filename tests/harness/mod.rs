//! The real-mount harness shared by the FUSE test crates: a `pithosfs serve`
//! child process is the cloud, `pithosfs mount -f` children are the
//! filesystems, and bash scripts with ordinary tools are their users.
//!
//! Every test has its own server and mount points in a temporary directory;
//! the guards unmount (`fusermount3 -u`, then `-uz`) and stop the processes
//! even when a test panics.
#![allow(dead_code)]

// Shared by both harnesses (a test may load both).
#[allow(clippy::duplicate_mod)]
#[path = "../backends/mod.rs"]
pub mod backends;
pub mod faults;
pub mod hostile;

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "mount-test-token-0123456789abcdef";
/// A second user of every local cloud the tests start (`friend`), for sharing.
pub const FRIEND: &str = "friend";
pub const FRIEND_TOKEN: &str = "mount-test-friend-token-0123456789ab";
pub const BIN: &str = env!("CARGO_BIN_EXE_pithosfs");
pub const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// the cloud: `pithosfs serve` as a child process
// ---------------------------------------------------------------------------

pub struct Cloud {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    pub account: String,
    /// More `serve` arguments and environment (kept for a restart).
    extra: Serve,
}

/// More arguments and environment for `pithosfs serve`.
#[derive(Clone, Default)]
pub struct Serve {
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

/// One HTTP request with the test user's token (a small runtime per call:
/// the tests themselves are synchronous).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Resp {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = reqwest::Client::new().request(method.clone(), url).header("X-Auth-Token", TOKEN);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap().to_vec();
        Resp { status, headers, body }
    })
}

pub const NAME_SET: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

impl Cloud {
    pub fn start(root: &Path) -> Cloud {
        Cloud::start_on(root, "127.0.0.1:0")
    }

    /// A server on `listen` (an address, or port 0 for any), its data in `$R/data`.
    pub fn start_on(root: &Path, listen: &str) -> Cloud {
        Cloud::start_serving(root, listen, Serve::default())
    }

    /// A server on `listen` with `extra` arguments and environment.
    pub fn start_serving(root: &Path, listen: &str, mut extra: Serve) -> Cloud {
        // The shared back ends when the run asks for them (see backends),
        // unless the test chose its own; kept in `extra` for restarts.
        let shared = backends::Backends::from_env();
        for (flag, args) in [("--meta", shared.meta.is_some()), ("--blocks", shared.blocks.is_some())] {
            if args && !extra.args.iter().any(|a| a == flag) {
                let mine: Vec<String> = shared.serve_args();
                let at = mine.iter().position(|a| a == flag).expect("flag");
                extra.args.extend(mine[at..at + 4].iter().cloned());
            }
        }
        let data = root.join("data");
        let users = root.join("users");
        std::fs::write(&users, format!("tester {TOKEN}\n{FRIEND} {FRIEND_TOKEN}\n")).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(root.join("serve.log")).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data")
            .arg(&data)
            .args(["--listen", listen, "--build-seconds", "0"])
            .arg("--users-file")
            .arg(&users)
            .args(&extra.args)
            .envs(extra.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start pithosfs serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        // Whatever else it says on stdout is drained, never left to fill a pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let mut cloud = Cloud { child, url: line.trim().to_string(), data, account: String::new(), extra };
        assert!(
            cloud.url.starts_with("http://127.0.0.1:"),
            "pithosfs serve said {line:?}; its log:\n{}",
            std::fs::read_to_string(root.join("serve.log")).unwrap_or_default()
        );
        let auth = http(
            "POST",
            &format!("{}/identity/v2.0/tokens", cloud.url),
            &[("Content-Type", "application/json")],
            Some(format!(r#"{{"auth":{{"token":{{"id":"{TOKEN}"}}}}}}"#).into_bytes()),
        );
        assert_eq!(auth.status, 200, "{}", String::from_utf8_lossy(&auth.body));
        let v: serde_json::Value = serde_json::from_slice(&auth.body).unwrap();
        cloud.account = v["access"]["user"]["id"].as_str().expect("user id").to_string();
        cloud
    }

    /// Kills the server (SIGKILL: no clean shutdown) and waits for it to end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data directory and address
    /// (after `kill`): the clients that knew it find it where it was.
    pub fn restart(&mut self, root: &Path) {
        let listen = self.url.trim_start_matches("http://").to_string();
        let again = Cloud::start_serving(root, &listen, self.extra.clone());
        assert_eq!(again.url, self.url, "the server came back elsewhere");
        let old = std::mem::replace(self, again);
        // The old child was reaped by `kill`; its guard has nothing left to stop.
        drop(old);
    }

    pub fn identity(&self) -> String {
        format!("{}/identity/v2.0", self.url)
    }

    pub fn account_url(&self) -> String {
        format!("{}{}/{}", self.url, pithosfs::cloud::PITHOS_PATH, self.account)
    }

    pub fn container_url(&self, container: &str) -> String {
        format!("{}/{}", self.account_url(), percent_encoding::utf8_percent_encode(container, NAME_SET))
    }

    pub fn object_url(&self, container: &str, name: &str) -> String {
        format!("{}/{}", self.container_url(container), percent_encoding::utf8_percent_encode(name, NAME_SET))
    }

    pub fn put(&self, container: &str, name: &str, data: &[u8]) {
        let r = http(
            "PUT",
            &self.object_url(container, name),
            &[("Content-Type", "application/octet-stream")],
            Some(data.to_vec()),
        );
        assert_eq!(r.status, 201, "PUT {container}/{name}: {}", String::from_utf8_lossy(&r.body));
    }

    pub fn get(&self, container: &str, name: &str) -> Vec<u8> {
        let r = http("GET", &self.object_url(container, name), &[], None);
        assert_eq!(r.status, 200, "GET {container}/{name}");
        r.body
    }

    pub fn head(&self, container: &str, name: &str) -> Resp {
        http("HEAD", &self.object_url(container, name), &[], None)
    }

    pub fn delete(&self, container: &str, name: &str) {
        let r = http("DELETE", &self.object_url(container, name), &[], None);
        assert_eq!(r.status, 204, "DELETE {container}/{name}");
    }

    pub fn create_container(&self, container: &str) {
        let r = http("PUT", &self.container_url(container), &[], None);
        assert!(r.status == 201 || r.status == 202, "PUT container {container}: {}", r.status);
    }

    /// Names of the account's containers.
    pub fn containers(&self) -> Vec<String> {
        let r = http("GET", &format!("{}?format=json", self.account_url()), &[], None);
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
    }

    /// Names of the objects of a container, whole (no delimiter).
    pub fn objects(&self, container: &str) -> Vec<String> {
        let r = http("GET", &format!("{}?format=json", self.container_url(container)), &[], None);
        if r.status == 204 {
            return Vec::new();
        }
        assert_eq!(r.status, 200, "list {container}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_string()).collect()
    }

    pub fn block_size(&self, container: &str) -> u64 {
        let r = http("HEAD", &self.container_url(container), &[], None);
        r.header("x-container-block-size").expect("block size").parse().unwrap()
    }

    /// Whether the server keeps its blocks in its data directory (not in a
    /// shared Swift): tests that look at block files need it.
    pub fn blocks_in_dir(&self) -> bool {
        !self.extra.args.iter().any(|a| a == "--blocks")
    }

    /// The server's metadata database, opened beside it (setup only: what is
    /// under test goes through HTTP).
    pub fn db(&self) -> pithosfs::cloud::db::Db {
        let arg = |flag: &str| self.extra.args.iter().position(|a| a == flag).map(|i| self.extra.args[i + 1].clone());
        match arg("--meta") {
            Some(url) => {
                let password = std::env::var("PITHOSFS_META_PASSWORD").ok();
                let schema = arg("--meta-schema").unwrap_or_else(|| "pithosfs".into());
                let target = pithosfs::cloud::pg::PgTarget::new(&url, password, &schema).expect("--meta");
                pithosfs::cloud::db::Db::connect(&target).expect("connect to the server's database")
            }
            None => pithosfs::cloud::db::Db::open(&self.data.join("meta.sqlite")).expect("open the server's database"),
        }
    }

    /// Bytes of the server's block store (`du -sb <data>/blocks`).
    pub fn block_store_bytes(&self) -> u64 {
        let out = Command::new("du").arg("-sb").arg(self.data.join("blocks")).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// the mount: `pithosfs mount -f` as a child process
// ---------------------------------------------------------------------------

pub fn is_mounted(point: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let want = point.to_string_lossy().replace(' ', "\\040");
    mounts.lines().any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
}

pub fn wait_child(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Mount {
    pub child: Option<Child>,
    pub point: PathBuf,
    pub log: PathBuf,
}

impl Mount {
    /// `pithosfs mount -f` with `args`, and `envs` set for it.
    pub fn start(point: &Path, log: &Path, args: &[&str], envs: &[(&str, &str)]) -> Mount {
        Mount::start_as(None, point, log, args, envs)
    }

    /// The same, run as `user` (its own mount through the setuid fusermount3).
    pub fn start_as(user: Option<&User>, point: &Path, log: &Path, args: &[&str], envs: &[(&str, &str)]) -> Mount {
        std::fs::create_dir_all(point).unwrap();
        let log_file = std::fs::File::create(log).unwrap();
        let mut command = match user {
            Some(u) => {
                let mut c = u.setpriv();
                c.arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .arg("mount")
            .arg(point)
            .arg("-f")
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("PITHOSFS_TOKEN_FILE")
            .env_remove("KAMAKI_CONFIG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start pithosfs mount");
        let mut m = Mount { child: Some(child), point: point.to_path_buf(), log: log.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(point) {
            if let Ok(Some(st)) = m.child.as_mut().unwrap().try_wait() {
                m.child = None;
                panic!("pithosfs mount {args:?} ended ({st}) before mounting:\n{}", m.log_text());
            }
            assert!(Instant::now() < deadline, "no mount at {} after 30 s:\n{}", point.display(), m.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The mount process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("mount process").id()
    }

    /// A `/proc/PID/status` figure of the mount process, in KiB
    /// (`VmRSS`: resident now; `VmHWM`: the peak since start or `reset_peak_rss`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("mount process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    /// The peak resident memory since the last reset, in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        self.status_kib("VmHWM") / 1024
    }

    /// Starts a new peak (`VmHWM`) measurement from what is resident now.
    pub fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("reset VmHWM (needs root)");
    }

    /// Unmounts with `pithosfs unmount` and waits for the mount process to
    /// end cleanly (after it committed everything).
    pub fn unmount(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = Command::new(BIN).arg("unmount").arg(&self.point).output().unwrap();
            if out.status.success() {
                break;
            }
            // Busy for a moment after the last user left: retry, bounded.
            assert!(
                Instant::now() < deadline,
                "pithosfs unmount {} failed: {}",
                self.point.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!is_mounted(&self.point), "still mounted after pithosfs unmount");
        let child = self.child.as_mut().expect("mount process");
        let status = wait_child(child, Duration::from_secs(30));
        assert!(status.is_some(), "the mount process did not end within 30 s of unmount:\n{}", self.log_text());
        self.child = None;
        assert!(status.unwrap().success(), "the mount process failed ({status:?}):\n{}", self.log_text());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        for args in [["-u"], ["-uz"]] {
            if !is_mounted(&self.point) {
                break;
            }
            let _ = Command::new("fusermount3").args(args).arg(&self.point).stderr(Stdio::null()).status();
        }
        if wait_child(&mut child, Duration::from_secs(10)).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(&self.point) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.point).stderr(Stdio::null()).status();
        }
    }
}

// ---------------------------------------------------------------------------
// one test's world: a temporary directory with the cloud, mounts, scratch
// ---------------------------------------------------------------------------

pub struct Env {
    // Fields drop in order: mounts first, then the cloud, then the directory.
    pub mounts: Vec<Mount>,
    pub cloud: Cloud,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env::serving(Serve::default())
    }

    /// An environment whose local cloud runs with `extra` arguments.
    pub fn serving(extra: Serve) -> Env {
        assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: these tests need FUSE");
        require("fusermount3", "fuse3");
        let dir = tempfile::Builder::new().prefix("pithosfs-mount-test").tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("local")).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        let cloud = Cloud::start_serving(&root, "127.0.0.1:0", extra);
        Env { mounts: Vec::new(), cloud, root, _dir: dir }
    }

    /// The main mount point (`$M` in scripts).
    pub fn m(&self) -> PathBuf {
        self.root.join("mnt")
    }

    /// Local scratch space (`$L` in scripts).
    pub fn l(&self) -> PathBuf {
        self.root.join("local")
    }

    /// Mounts the account at `$M`.
    pub fn mount(&mut self, args: &[&str]) {
        self.mount_at("mnt", args);
    }

    /// Mounts at `$R/<name>`.
    pub fn mount_at(&mut self, name: &str, args: &[&str]) {
        self.mount_with_token(name, TOKEN, args);
    }

    /// Mounts the account of the user with `token` at `$R/<name>`.
    pub fn mount_with_token(&mut self, name: &str, token: &str, args: &[&str]) {
        let point = self.root.join(name);
        let log = self.root.join(format!("{name}.{}.log", self.mounts.len()));
        let identity = self.cloud.identity();
        self.mounts.push(Mount::start(&point, &log, args, &[("PITHOSFS_URL", &identity), ("PITHOSFS_TOKEN", token)]));
    }

    /// `user` mounts the account at `$R/<name>` (a mount point it owns, and a
    /// home of its own for the mount's cache and spill files).
    pub fn mount_as(&mut self, user: &User, name: &str, args: &[&str]) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata("/dev/fuse").map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o666, "/dev/fuse is {mode:o}: users cannot mount (scripts/setup makes it 0666)");
        self.open_to_users();
        let point = self.root.join(name);
        let home = self.root.join(format!("home-{}", user.uid));
        for dir in [&point, &home] {
            std::fs::create_dir_all(dir).unwrap();
            std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).unwrap();
        }
        let log = self.root.join(format!("{name}.{}.log", self.mounts.len()));
        let identity = self.cloud.identity();
        let home = home.to_string_lossy().into_owned();
        let envs = [("PITHOSFS_URL", identity.as_str()), ("PITHOSFS_TOKEN", TOKEN), ("HOME", home.as_str())];
        self.mounts.push(Mount::start_as(Some(user), &point, &log, args, &envs));
    }

    /// The mount at `$R/<name>`.
    pub fn mount_named(&self, name: &str) -> &Mount {
        let point = self.root.join(name);
        self.mounts.iter().find(|m| m.point == point).expect("mounted")
    }

    /// Lets other users reach `$R` (to traverse, not to list) and `$L`.
    pub fn open_to_users(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(self.l(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    }

    /// Unmounts `$M`, checking that it went cleanly.
    pub fn unmount(&mut self) {
        self.unmount_at("mnt");
    }

    pub fn unmount_at(&mut self, name: &str) {
        let point = self.root.join(name);
        let i = self.mounts.iter().position(|m| m.point == point).expect("mounted");
        let mut m = self.mounts.remove(i);
        m.unmount();
    }

    pub fn remount(&mut self, args: &[&str]) {
        self.unmount();
        self.mount(args);
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for m in &self.mounts {
            let text = m.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            s += &format!("--- {} (last lines) ---\n", m.log.display());
            for l in tail.iter().rev() {
                s += l;
                s += "\n";
            }
        }
        s
    }

    /// A bash script with `$M` (the mount), `$L` (scratch) and `$R` (the
    /// test's root); a hung filesystem is cut off by `timeout`.
    pub fn command(&self, script: &str) -> Command {
        self.command_as(None, script)
    }

    /// The same, run as `user` when one is given.
    pub fn command_as(&self, user: Option<&User>, script: &str) -> Command {
        let mut c = match user {
            Some(u) => {
                let mut c = u.setpriv();
                c.arg("timeout");
                c
            }
            None => Command::new("timeout"),
        };
        c.args(["-k", "5", "120", "bash", "-c", &format!("set -euo pipefail; umask 022; {script}")])
            .current_dir(&self.root)
            .env("M", self.m())
            .env("L", self.l())
            .env("R", &self.root)
            .env("HOME", self.root.join("home"))
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, script: &str) -> Output {
        self.command(script).output().unwrap()
    }

    /// Runs a script that must succeed; its stdout.
    pub fn sh(&self, script: &str) -> String {
        let out = self.run(script);
        assert!(
            out.status.success(),
            "script failed ({}):\n{script}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a script that must fail (not by timeout); its stderr.
    pub fn sh_fails(&self, script: &str) -> String {
        let out = self.run(script);
        assert!(
            !out.status.success(),
            "script should have failed:\n{script}\n--- stdout ---\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_ne!(out.status.code(), Some(124), "script timed out:\n{script}\n{}", self.logs());
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Asserts that the script fails saying `message`.
    pub fn fails_with(&self, script: &str, message: &str) {
        let err = self.sh_fails(script);
        assert!(err.contains(message), "{script}\nshould fail with {message:?}; it said:\n{err}");
    }

    /// Runs a script as `user` that must succeed; its stdout.
    pub fn sh_as(&self, user: &User, script: &str) -> String {
        let out = self.command_as(Some(user), script).output().unwrap();
        assert!(
            out.status.success(),
            "script as uid {} failed ({}):\n{script}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            user.uid,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts that a script run as `user` fails (not by timeout) saying `message`.
    pub fn fails_as(&self, user: &User, script: &str, message: &str) {
        let out = self.command_as(Some(user), script).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "as uid {}, this should have failed:\n{script}\n--- stdout ---\n{}",
            user.uid,
            String::from_utf8_lossy(&out.stdout)
        );
        assert_ne!(out.status.code(), Some(124), "script as uid {} timed out:\n{script}\n{}", user.uid, self.logs());
        assert!(err.contains(message), "as uid {}: {script}\nshould fail with {message:?}; it said:\n{err}", user.uid);
    }
}

// ---------------------------------------------------------------------------
// local users: the tests act as root and as unprivileged users
// ---------------------------------------------------------------------------

/// A local user to run scripts and mounts as (through `setpriv`).
#[derive(Debug, Clone)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// The unprivileged system user the tests act as (made by `scripts/setup --tests`).
pub const TEST_USER: &str = "pithosfs-test";

impl User {
    /// `pithosfs-test`, looked up in the user database.
    pub fn unprivileged() -> User {
        // SAFETY: getuid cannot fail.
        assert_eq!(unsafe { libc::getuid() }, 0, "acting as other users needs root: run these tests as root");
        require("setpriv", "util-linux");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, TEST_USER]).output().expect("run id");
            assert!(
                out.status.success(),
                "no user {TEST_USER}: run scripts/setup --tests (it adds the system user the permission tests act as)"
            );
            String::from_utf8_lossy(&out.stdout).trim().parse().expect("a number from id")
        };
        User { uid: id("-u"), gid: id("-g"), groups: Vec::new() }
    }

    /// A user known only by number (no entry in /etc/passwd): the kernel
    /// and the mount need no more.
    pub fn numbered(uid: u32) -> User {
        User { uid, gid: uid, groups: Vec::new() }
    }

    /// The same user, also a member of `gid`.
    pub fn in_group(mut self, gid: u32) -> User {
        self.groups.push(gid);
        self
    }

    /// `setpriv` with this user's ids, ready for the program to run.
    fn setpriv(&self) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid)).arg(format!("--regid={}", self.gid));
        if self.groups.is_empty() {
            c.arg("--clear-groups");
        } else {
            let list: Vec<String> = self.groups.iter().map(u32::to_string).collect();
            c.arg(format!("--groups={}", list.join(",")));
        }
        c.arg("--");
        c
    }
}

pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(found, "`{tool}` is missing: install the Debian package `{package}` (apt-get install -y {package})");
}

pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256_file(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

pub fn write_file(p: &Path, data: &[u8]) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, data).unwrap();
}

/// Polls `f` every 20 ms until it holds, for at most `within`.
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tree of 300 small files in nested folders (one in seven empty), three
/// multi-block files, names with spaces and non-ASCII letters, an empty folder.
pub fn make_tree(root: &Path, seed: u64) -> usize {
    let mut n = 0;
    for d in 0..5 {
        for s in 0..3 {
            for k in 0..20 {
                let i = (d * 60 + s * 20 + k) as u64;
                let size = if k % 7 == 0 { 0 } else { (random_bytes(8, seed + i)[0] as usize) * 61 + k };
                write_file(&root.join(format!("d{d}/s{s}/f{k:02}.dat")), &random_bytes(size, seed * 1000 + i));
                n += 1;
            }
        }
    }
    write_file(&root.join("big/five.bin"), &random_bytes(5 * MIB + 7, seed + 1));
    write_file(&root.join("big/four.bin"), &random_bytes(4 * MIB, seed + 2));
    write_file(&root.join("d4/s2/nine.bin"), &random_bytes(9 * MIB + 4321, seed + 3));
    write_file(&root.join("with space.txt"), b"a name with a space\n");
    write_file(&root.join("\u{fc}n\u{ef}code-\u{540d}\u{524d}.txt"), "ünïcode\n".as_bytes());
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    n + 5
}
