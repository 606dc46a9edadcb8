//! Server lifecycle and the local cloud's system images, as a newcomer meets
//! them: a fresh `pithosfs serve` child (no image registered by anyone), and
//! the real `pithosfs` binary run against it — `server create|wait|shutdown|
//! start|reboot|delete`, `flavor info`, `image info`, their `--json`, their
//! errors — and the seed's examples, unchanged, on that fresh cloud.

use base64::Engine;
use pithosfs::clients::pithos::PithosClient;
use pithosfs::clients::storage::PutOptions;
use pithosfs::clients::AstakosClient;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

// ---- server lifecycle ----

/// A fresh local cloud: `pithosfs serve` on a new data directory, its default
/// user `tester` (token in `DATA/token`), and a scratch home for commands.
struct Cloud {
    child: Child,
    url: String,
    home: tempfile::TempDir,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &Run {
        assert_eq!(self.code, Some(0), "failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
    fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
    /// Failed with exit code 1 and said `wanted` on stderr.
    fn failed_saying(&self, wanted: &str) -> &Run {
        assert_eq!(self.code, Some(1), "should fail:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stderr.contains(wanted), "wanted {wanted:?} in stderr: {}", self.stderr);
        self
    }
}

impl Cloud {
    fn start() -> Cloud {
        Cloud::start_in(tempfile::tempdir().unwrap())
    }

    /// Stops the server and starts a new one on the same data directory.
    fn restart(mut self) -> Cloud {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let home = std::mem::replace(&mut self.home, tempfile::tempdir().unwrap());
        drop(self);
        Cloud::start_in(home)
    }

    fn start_in(home: tempfile::TempDir) -> Cloud {
        let data = home.path().join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
            .args(["serve", "--listen", "127.0.0.1:0", "--build-seconds", "0.5", "--data"])
            .arg(&data)
            .env("USER", "tester")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
        Cloud { child, url, home }
    }

    fn identity(&self) -> String {
        format!("{}/identity/v2.0", self.url)
    }

    fn token_file(&self) -> PathBuf {
        self.home.path().join("data/token")
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.token_file()).unwrap().trim().to_string()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.home.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs `program ARGS` with only this cloud in its environment.
    fn run_program(&self, program: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("KAMAKI_CONFIG", self.home.path().join("no-kamakirc"))
            .env("PITHOSFS_DATA", self.home.path().join("unused"))
            .env("PITHOSFS_URL", self.identity())
            .env("PITHOSFS_TOKEN_FILE", self.token_file());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let token = self.token();
        assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token), "the token was printed");
        run
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_program(Path::new(env!("CARGO_BIN_EXE_pithosfs")), args, &[])
    }

    /// The id of the public system image named `name`, as `image list` shows it.
    fn system_image(&self, name: &str) -> String {
        let images = self.run(&["image", "list", "--json"]).json();
        let found = images.as_array().unwrap().iter().find(|i| i["name"] == name);
        found.unwrap_or_else(|| panic!("no image {name:?} on a fresh local cloud: {images:#}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `server create --wait --json`: the new server, ACTIVE, with its password.
    fn active_server(&self, name: &str) -> Value {
        let image = self.system_image("Debian Base");
        let server = self
            .run(&["server", "create", "--name", name, "--flavor", "1", "--image", &image, "--wait", "--json"])
            .json();
        assert_eq!(server["status"], "ACTIVE", "{server:#}");
        server
    }
}

/// The value of `key` in `key  value` output.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with("  ")).map(str::trim))
}

#[test]
fn create_wait_shutdown_start_reboot_delete() {
    let cloud = Cloud::start();
    let image = cloud.system_image("Debian Base");

    // Human output: the password once, said to be shown only now; then ACTIVE.
    let created = cloud.run(&["server", "create", "--name", "web", "--flavor", "1", "--image", &image, "--wait"]);
    created.ok();
    let id = field(&created.stdout, "id").expect("an id line").to_string();
    let password = field(&created.stdout, "password").expect("a password line").to_string();
    assert!(password.len() >= 8, "{}", created.stdout);
    assert_eq!(created.stdout.matches(&password).count(), 1, "{}", created.stdout);
    assert!(created.stdout.contains("shown only now"), "{}", created.stdout);
    assert_eq!(field(&created.stdout, "status"), Some("BUILD"));
    assert_eq!(field(&created.stdout, "os"), Some("Debian Base"));
    assert_eq!(created.stdout.lines().last(), Some(format!("server {id} is ACTIVE").as_str()));

    // The cloud keeps it nowhere: not in the server's details.
    let info = cloud.run(&["server", "info", &id, "--json"]);
    assert!(!info.stdout.contains(&password));
    let info = info.json();
    assert_eq!((info["status"].as_str(), info["name"].as_str()), (Some("ACTIVE"), Some("web")));
    assert_eq!(info["metadata"]["os"], "Debian Base");
    assert_eq!(info["image"]["id"], image.as_str());

    // `--json`: one document with the password and the final status.
    let other = cloud.active_server("db");
    assert!(other["adminPass"].as_str().is_some_and(|p| p.len() >= 8), "{other:#}");

    let r = cloud.run(&["server", "shutdown", &id, "--wait"]);
    assert_eq!(r.ok().stdout, format!("server {id} is STOPPED\n"));
    assert_eq!(cloud.run(&["server", "info", &id, "--json"]).json()["status"], "STOPPED");
    // a stopped server cannot be shut down again: the cloud's reason is shown
    let r = cloud.run(&["server", "shutdown", &id]);
    assert!(!r.failed_saying("in 'STOPPED' state").stderr.contains("no server"), "{}", r.stderr);

    let r = cloud.run(&["server", "start", &id, "-w", "--json"]).json();
    assert_eq!(r["status"], "ACTIVE");

    // A reboot without --wait says what it asked for; `server wait` sees it through.
    let r = cloud.run(&["server", "reboot", &id]);
    assert_eq!(r.ok().stdout, format!("server {id}: reboot requested (now REBOOT)\n"));
    let r = cloud.run(&["server", "wait", &id, "--status", "active", "--timeout", "30s"]);
    assert_eq!(r.ok().stdout, format!("server {id} is ACTIVE\n"));
    let r = cloud.run(&["server", "reboot", &id, "--hard", "--wait", "--json"]).json();
    assert_eq!(r["status"], "ACTIVE");
    // kamaki's spellings: --type HARD, -w, --while
    let r = cloud.run(&["server", "reboot", &id, "--type", "hard"]);
    assert_eq!(r.ok().stdout, format!("server {id}: hard reboot requested (now REBOOT)\n"));
    let r = cloud.run(&["server", "wait", &id, "--while", "REBOOT"]);
    assert_eq!(r.ok().stdout, format!("server {id} is ACTIVE\n"));
    assert_eq!(cloud.run(&["server", "reboot", &id, "--type", "warm"]).code, Some(2));

    // Delete: gone from the list; Synnefo (and kamaki) still show it as DELETED.
    let r = cloud.run(&["server", "delete", &id, "--wait"]);
    assert_eq!(r.ok().stdout, format!("server {id} is DELETED\n"));
    let list = cloud.run(&["server", "list", "--json"]).json();
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|s| s["id"].to_string()).collect();
    assert_eq!(ids, vec![other["id"].to_string()]);
    assert_eq!(cloud.run(&["server", "info", &id, "--json"]).json()["status"], "DELETED");
    let r = cloud.run(&["server", "start", &id]);
    assert!(!r.failed_saying("has been deleted").stderr.contains("no server"), "{}", r.stderr);

    // A server that never was: 404, and how to find the right id.
    let r = cloud.run(&["server", "info", "424242"]);
    r.failed_saying("- error code: 404").failed_saying("no server \"424242\" in this account");
    assert!(r.stdout.is_empty());
    cloud.run(&["server", "delete", "424242", "--wait"]).failed_saying("no server \"424242\"");
}

#[test]
fn waiting_times_out_with_a_clear_error() {
    let cloud = Cloud::start();
    let server = cloud.active_server("patient");
    let id = server["id"].to_string();
    let r = cloud.run(&["server", "wait", &id, "--status", "STOPPED", "--timeout", "1s"]);
    r.failed_saying(&format!("waiting for server {id} to become STOPPED; it is ACTIVE"));
    assert!(r.stderr.starts_with("pithosfs: Timed out after 1."), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // without --status: waits while the status is the current one
    let r = cloud.run(&["server", "wait", &id, "--timeout", "500ms"]);
    r.failed_saying(&format!("waiting for server {id} to leave ACTIVE"));
    // already there: done at once
    assert_eq!(
        cloud.run(&["server", "wait", &id, "--status", "ACTIVE"]).ok().stdout,
        format!("server {id} is ACTIVE\n")
    );
    // a create whose wait times out has still printed the password
    let image = cloud.system_image("Debian Base");
    let create =
        ["server", "create", "--name", "hasty", "--flavor", "1", "--image", &image, "--wait", "--timeout", "1ms"];
    let r = cloud.run(&create);
    r.failed_saying("to leave BUILD");
    assert!(field(&r.stdout, "password").is_some_and(|p| p.len() >= 8), "{}", r.stdout);
    let mut json = create.to_vec();
    json.push("--json");
    let r = cloud.run(&json);
    r.failed_saying("to leave BUILD");
    let created: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert!(created["adminPass"].as_str().is_some_and(|p| p.len() >= 8), "{created:#}");
    assert_eq!(created["status"], "BUILD");
    // durations are checked before anything is sent
    let r = cloud.run(&["server", "wait", &id, "--timeout", "soon"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("5m"), "{}", r.stderr);
}

#[test]
fn flavor_and_image_info_of_the_system_images() {
    let cloud = Cloud::start();
    let flavor = cloud.run(&["flavor", "info", "1", "--json"]).json();
    assert_eq!(flavor["id"], 1);
    assert!(flavor["vcpus"].as_u64().is_some() && flavor["ram"].as_u64().is_some(), "{flavor:#}");
    let table = cloud.run(&["flavor", "info", "1"]);
    assert_eq!(field(&table.ok().stdout, "ram"), Some(flavor["ram"].to_string().as_str()));

    let me = cloud.run(&["user", "info", "--json"]).json()["id"].as_str().unwrap().to_string();
    let id = cloud.system_image("Debian Base");
    let image = cloud.run(&["image", "info", &id, "--json"]).json();
    assert_eq!(image["name"], "Debian Base");
    assert_eq!(image["is_public"], true);
    assert_eq!(image["status"], "AVAILABLE");
    for key in ["os", "users", "osfamily", "root_partition", "description"] {
        assert!(image["properties"][key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {image:#}");
    }
    assert_eq!(image["properties"]["os"], "Debian Base");
    assert_eq!(image["properties"]["users"], "root");
    // a real object of a system account: its size, its Merkle hash, its place
    let owner = image["owner"].as_str().unwrap();
    assert_ne!(owner, me);
    assert!(image["size"].as_u64().is_some_and(|s| s > 0), "{image:#}");
    let checksum = image["checksum"].as_str().unwrap();
    assert!(checksum.len() == 64 && checksum.bytes().all(|b| b.is_ascii_hexdigit()), "{checksum}");
    assert_eq!(image["location"], format!("pithos://{owner}/images/debian_base.diskdump"));
    let names = cloud.run(&["user", "uuid2name", owner]);
    assert!(names.ok().stdout.contains("system-images"), "{}", names.stdout);
    let table = cloud.run(&["image", "info", &id]);
    assert_eq!(field(&table.ok().stdout, "properties.osfamily"), Some("linux"));
    // the others, oldest first as kamaki lists them
    let names: Vec<String> = cloud
        .run(&["image", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["Debian Base", "Debian Desktop", "Ubuntu Server"]);

    // registered on the first start only: the same images after a restart
    let before = cloud.run(&["image", "list", "--json"]).json();
    let cloud = cloud.restart();
    assert_eq!(cloud.run(&["image", "list", "--json"]).json(), before);

    // unknown ids: the cloud's answer, and how to find the right one
    cloud.run(&["flavor", "info", "999"]).failed_saying("no flavor \"999\" in this cloud");
    cloud.run(&["flavor", "info", "abc"]).failed_saying("no flavor \"abc\"");
    cloud.run(&["image", "info", "no-such-image"]).failed_saying("no image \"no-such-image\" in this cloud");
    cloud
        .run(&["server", "create", "--name", "x", "--flavor", "999", "--image", &id])
        .failed_saying("no flavor \"999\"");
    cloud
        .run(&["server", "create", "--name", "x", "--flavor", "1", "--image", "no-such-image"])
        .failed_saying("no image \"no-such-image\"");
    assert_eq!(cloud.run(&["server", "list", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn an_ssh_key_is_handed_to_the_server_as_roots_authorized_keys() {
    let cloud = Cloud::start();
    let image = cloud.system_image("Debian Base");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJm0bZ2c3RrZXlmb3J0aGVsb2NhbGNsb3Vk tester@laptop\n";
    let key_file = cloud.write("id_ed25519.pub", key);
    let key_arg = key_file.to_str().unwrap();
    let created = cloud.run(&[
        "server",
        "create",
        "--name",
        "keyed",
        "--flavor",
        "2",
        "--image",
        &image,
        "--ssh-key",
        key_arg,
        "--json",
    ]);
    let id = created.json()["id"].to_string();
    let server = cloud.run(&["server", "info", &id, "--json"]).json();
    let files = server["personality"].as_array().unwrap_or_else(|| panic!("{server:#}"));
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["path"], "/root/.ssh/authorized_keys");
    assert_eq!((files[0]["owner"].as_str(), files[0]["mode"].as_u64()), (Some("root"), Some(0o600)));
    let contents = base64::engine::general_purpose::STANDARD.decode(files[0]["contents"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(contents).unwrap(), key);

    // a private key is refused before anything is sent; so is a missing file
    let private =
        cloud.write("id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
    let args = ["server", "create", "--name", "x", "--flavor", "1", "--image", &image, "--ssh-key"];
    let mut with = args.to_vec();
    with.push(private.to_str().unwrap());
    cloud.run(&with).failed_saying("private SSH key");
    with.pop();
    with.push("/nonexistent/key.pub");
    cloud.run(&with).failed_saying("Cannot read the SSH key file /nonexistent/key.pub");
    assert_eq!(cloud.run(&["server", "list", "--json"]).json().as_array().unwrap().len(), 1);
}

/// A built example, or None when the build left it out (a filtered
/// `cargo test`); CI builds every target first, so there it must exist.
fn example(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_BIN_EXE_pithosfs")).parent().map(|d| d.join("examples").join(name));
    let found = dir.filter(|p| p.exists());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "example {name} is not built");
        eprintln!("SKIPPED: example {name} is not built; run `cargo build --examples` first");
    }
    found
}

/// The seed's examples 1.2 and 1.3, unchanged, on a fresh local cloud: the
/// Debian server comes from the system image, with no image registered first.
#[test]
fn the_seed_examples_run_unchanged_on_a_fresh_local_cloud() {
    let (Some(ex2), Some(ex3)) = (example("example_1_2"), example("example_1_3")) else { return };
    let cloud = Cloud::start();
    let image = cloud.system_image("Debian Base");
    let server = cloud.run(&[
        "server",
        "create",
        "--name",
        "A Debian Server",
        "--flavor",
        "1",
        "--image",
        &image,
        "--wait",
        "--json",
    ]);
    let id = server.json()["id"].to_string();

    // mycont as the seed lists it
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let token = cloud.token();
        let astakos = AstakosClient::new(&cloud.identity(), &token).unwrap();
        let account = astakos.term("uuid").await.unwrap();
        let pithos_url = astakos.get_endpoint_url("object-store").await.unwrap();
        let mycont = PithosClient::new(&pithos_url, &token, &account, "mycont").unwrap();
        mycont.create_container_with(None, None).await.unwrap();
        let put = PutOptions::default();
        mycont.upload_from_bytes("lala.txt", vec![b'a'; 34].into(), &put).await.unwrap();
        mycont.upload_from_bytes("test.txt", vec![b't'; 1232].into(), &put).await.unwrap();
        mycont.upload_from_bytes("testDir/", Vec::new().into(), &put).await.unwrap();
    });

    let env = vec![("ASTAKOS_URL", cloud.identity()), ("SERVER_ID", id), ("CONTAINER", "mycont".to_string())];
    let wanted = "Server Name: A Debian Server (with OS Debian Base)\n lala.txt of 34 bytes\n \
                  test.txt of 1232 bytes\n testDir/ of 0 bytes\n";
    for example in [ex2, ex3] {
        let r = cloud.run_program(&example, &[], &env);
        assert_eq!((r.code, r.stdout.as_str()), (Some(0), wanted), "{}: {}", example.display(), r.stderr);
    }
}
