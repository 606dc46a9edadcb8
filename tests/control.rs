//! The control command (`pithosfs server|user|flavor|image …`) and the seed's
//! examples, run as programs against a local cloud: configuration from the
//! environment, from a kamakirc, from flags and from the local cloud's data
//! directory; tables and `--json`; failures; and no token ever printed.

mod common;

use common::{TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::clients::image::pithos_location;
use pithosfs::clients::{CycladesClient, ImageClient, NewServer, Properties};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Every token any of these tests uses: none may ever be printed.
const TOKENS: [&str; 3] = [ALICE_TOKEN, BOB_TOKEN, "wrong-token-0000"];

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
    fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

fn check_no_token(out: &Output) {
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        for t in TOKENS {
            assert!(!text.contains(t), "a token was printed: {text}");
        }
    }
}

/// A scratch home: no kamakirc, an empty data directory, unless told otherwise.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// The command, with an environment of this home only.
    fn command(&self, program: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PITHOSFS_DATA", self.path("data"))
            .env("KAMAKI_CONFIG", self.path("no-kamakirc"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
    /// Runs `pithosfs ARGS` (off the async workers, which serve the cloud).
    async fn run(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        self.run_program(Path::new(env!("CARGO_BIN_EXE_pithosfs")), args, env).await
    }
    async fn run_program(&self, program: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
        let mut cmd = self.command(program, args, env);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        check_no_token(&out);
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn env_for(tc: &TestCloud, token_file: &Path) -> Vec<(&'static str, String)> {
    vec![("PITHOSFS_URL", tc.identity()), ("PITHOSFS_TOKEN_FILE", token_file.display().to_string())]
}

/// A server of alice's named `name`, from an image whose OS is `os`, ACTIVE.
async fn active_server(tc: &TestCloud, name: &str, os: &str) -> u64 {
    let object = format!("{name}.diskdump");
    tc.put_object("pithos", &object, b"disk").await;
    let images = ImageClient::new(&tc.image(), ALICE_TOKEN).unwrap();
    let properties: Properties = [("os".to_string(), os.to_string()), ("users".to_string(), "root".to_string())].into();
    let image = images
        .register(name, &pithos_location(&tc.alice, "pithos", &object), &Default::default(), &properties)
        .await
        .unwrap();
    let cyclades = CycladesClient::new(&tc.compute(), ALICE_TOKEN).unwrap();
    let image_id = image["id"].as_str().unwrap();
    let server = cyclades.create_server(&NewServer::new(name, 1, image_id)).await.unwrap();
    let id = server["id"].as_u64().unwrap();
    cyclades.wait_server_until(id, "ACTIVE", Duration::from_secs(20)).await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_json_with_environment_configuration() {
    let tc = TestCloud::start().await;
    let id = active_server(&tc, "A Debian Server", "Debian Base").await;
    let home = Home::new();
    let env = env_for(&tc, &home.write("alice.token", &format!("{ALICE_TOKEN}\n")));

    let list = home.run(&["server", "list"], &env).await;
    let lines: Vec<&str> = list.ok().stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", list.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, vec!["ID", "NAME", "STATUS", "FLAVOR", "OS"]);
    // columns line up: each header starts where its column does
    let status_at = lines[0].find("STATUS").unwrap();
    assert_eq!(&lines[1][status_at..status_at + 6], "ACTIVE", "{}", list.stdout);
    assert!(lines[1].contains("A Debian Server") && lines[1].ends_with("Debian Base"), "{}", lines[1]);

    let servers = home.run(&["server", "list", "--json"], &env).await.json();
    assert_eq!(servers.as_array().unwrap().len(), 1);
    assert_eq!(servers[0]["id"], id);
    assert_eq!(servers[0]["metadata"]["os"], "Debian Base");

    // the server created through the library, in `server info`
    let info = home.run(&["server", "info", &id.to_string()], &env).await;
    let field = |key: &str| -> String {
        let line = info.stdout.lines().find(|l| l.split_whitespace().next() == Some(key));
        line.unwrap_or_else(|| panic!("no {key} in {}", info.stdout))[key.len()..].trim().to_string()
    };
    info.ok();
    assert_eq!(field("name"), "A Debian Server");
    assert_eq!(field("status"), "ACTIVE");
    assert_eq!(field("metadata.os"), "Debian Base");
    assert_eq!(field("id"), id.to_string());
    assert!(!info.stdout.contains("links"), "links are left out: {}", info.stdout);
    // --json before the subcommand works too
    let server = home.run(&["server", "--json", "info", &id.to_string()], &env).await.json();
    assert_eq!(server["name"], "A Debian Server");
    assert_eq!(server["status"], "ACTIVE");

    let user = home.run(&["user", "info", "--json"], &env).await.json();
    assert_eq!(user["id"], tc.alice.as_str());
    assert_eq!(user["name"], "alice@example.org");
    let user_table = home.run(&["user", "info"], &env).await;
    assert!(user_table.ok().stdout.lines().any(|l| l.starts_with("id ") && l.ends_with(&tc.alice)));

    let names = home.run(&["user", "uuid2name", &tc.bob, &tc.alice], &env).await;
    let rows: Vec<Vec<&str>> = names.ok().stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows,
        vec![vec!["UUID", "NAME"], vec![&tc.bob, "bob@example.org"], vec![&tc.alice, "alice@example.org"]]
    );
    let uuids = home.run(&["user", "name2uuid", "bob@example.org", "--json"], &env).await.json();
    assert_eq!(uuids, serde_json::json!({"bob@example.org": tc.bob}));

    let flavors = home.run(&["flavor", "list"], &env).await;
    assert_eq!(flavors.ok().stdout.lines().count(), 7);
    assert!(flavors.stdout.lines().next().unwrap().starts_with("ID  NAME"));
    let flavors = home.run(&["flavor", "list", "--json"], &env).await.json();
    assert_eq!(flavors.as_array().unwrap().len(), 6);
    let images = home.run(&["image", "list", "--json"], &env).await.json();
    assert_eq!(images[0]["properties"]["os"], "Debian Base");
    let images = home.run(&["image", "list"], &env).await;
    assert!(images.ok().stdout.contains("A Debian Server"));

    // the token itself in the environment does as well as a file
    let env = vec![("PITHOSFS_URL", tc.identity()), ("PITHOSFS_TOKEN", ALICE_TOKEN.to_string())];
    assert_eq!(home.run(&["user", "info", "--json"], &env).await.json()["id"], tc.alice.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamakirc_environment_and_flags_in_that_order_of_precedence() {
    let tc = TestCloud::start().await;
    let home = Home::new();
    let rc = home.write(
        "kamakirc",
        &format!(
            "# written by kamaki\n[global]\ndefault_cloud = alice\ncolors = off\n\n\
             [cloud \"alice\"]\nurl = {identity}\ntoken = {ALICE_TOKEN}\n\n\
             [cloud \"bob\"]\n  url: {identity}\n  ; bob's\n  token = {BOB_TOKEN}\n",
            identity = tc.identity()
        ),
    );
    let kamaki = vec![("KAMAKI_CONFIG", rc.display().to_string())];
    let who = |r: Run| r.json()["id"].as_str().unwrap().to_string();

    assert_eq!(who(home.run(&["user", "info", "--json"], &kamaki).await), tc.alice);
    assert_eq!(who(home.run(&["user", "info", "--json", "--cloud", "bob"], &kamaki).await), tc.bob);
    let missing = home.run(&["user", "info", "--cloud", "carol"], &kamaki).await;
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("No cloud \"carol\"") && missing.stderr.contains("alice, bob"),
        "{}",
        missing.stderr
    );

    // ~/.kamakirc when KAMAKI_CONFIG is not set
    std::fs::copy(&rc, home.path(".kamakirc")).unwrap();
    let mut cmd = home.command(Path::new(env!("CARGO_BIN_EXE_pithosfs")), &["user", "info", "--json"], &[]);
    cmd.env_remove("KAMAKI_CONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    check_no_token(&out);
    let user: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(user["id"], tc.alice.as_str());

    // the environment wins over the kamakirc
    let bob_file = home.write("bob.token", BOB_TOKEN);
    let mut env = kamaki.clone();
    env.extend(env_for(&tc, &bob_file));
    assert_eq!(who(home.run(&["user", "info", "--json"], &env).await), tc.bob);
    // and flags over the environment
    let alice_file = home.write("alice.token", ALICE_TOKEN);
    let args = ["user", "info", "--json", "--url", &tc.identity(), "--token-file", alice_file.to_str().unwrap()];
    assert_eq!(who(home.run(&args, &env).await), tc.alice);
    // a URL alone takes the kamakirc token kept for it
    let args = ["user", "info", "--json", "--url", &tc.url];
    assert_eq!(who(home.run(&args, &kamaki).await), tc.alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_non_zero_with_status_and_message() {
    let tc = TestCloud::start().await;
    let home = Home::new();
    let env = env_for(&tc, &home.write("alice.token", ALICE_TOKEN));

    let missing = home.run(&["server", "info", "999999"], &env).await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stdout.is_empty());
    let lines: Vec<&str> = missing.stderr.lines().collect();
    assert!(lines[0].starts_with("pithosfs: Not Found itemNotFound ("), "{}", missing.stderr);
    assert!(lines.contains(&"- error code: 404"), "{}", missing.stderr);
    assert_eq!(home.run(&["server", "info", "999999", "--json"], &env).await.code, Some(1));

    let wrong = env_for(&tc, &home.write("wrong.token", "wrong-token-0000"));
    let denied = home.run(&["server", "list"], &wrong).await;
    assert_eq!(denied.code, Some(1));
    assert!(denied.stderr.contains("Unauthorized unauthorized (Invalid token)"), "{}", denied.stderr);
    assert!(denied.stderr.contains("- error code: 401"), "{}", denied.stderr);

    let unknown = home.run(&["user", "uuid2name", &tc.alice, "no-such-uuid"], &env).await;
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.stdout.contains("alice@example.org"));
    assert!(unknown.stderr.contains("no user with UUID no-such-uuid"), "{}", unknown.stderr);

    // configuration mistakes
    let no_token = home.run(&["user", "info", "--url", "http://127.0.0.1:1/identity/v2.0"], &[]).await;
    assert_eq!(no_token.code, Some(1));
    assert!(no_token.stderr.contains("No token for"), "{}", no_token.stderr);
    let token_only = vec![("PITHOSFS_TOKEN", ALICE_TOKEN.to_string())];
    let r = home.run(&["user", "info"], &token_only).await;
    assert!(r.code == Some(1) && r.stderr.contains("no URL"), "{}", r.stderr);
    let r = home.run(&["user", "info", "--token-file", "/nonexistent/token", "--url", &tc.identity()], &[]).await;
    assert!(r.code == Some(1) && r.stderr.contains("Cannot read the token file"), "{}", r.stderr);
    // nobody listening: a connection error, status 0
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let env = vec![("PITHOSFS_URL", format!("http://{closed}/identity/v2.0")), ("PITHOSFS_TOKEN", ALICE_TOKEN.into())];
    let r = home.run(&["user", "info"], &env).await;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.starts_with("pithosfs: ") && !r.stderr.contains("error code"), "{}", r.stderr);
    // usage errors are clap's
    assert_eq!(home.run(&["user", "uuid2name"], &[]).await.code, Some(2));
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_cloud_running_or_started_in_process() {
    let home = Home::new();
    let data = home.path("data");
    // a `pithosfs serve` of this data directory, found through <data>/url
    let mut child = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()])
        .env("USER", "tester")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let serve = Serve(child);
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_string()
    })
    .await
    .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
    let user = home.run(&["user", "info", "--json"], &[]).await.json();
    assert_eq!(user["name"], "tester");
    let names = home.run(&["user", "uuid2name", user["id"].as_str().unwrap()], &[]).await;
    assert!(names.ok().stdout.contains("tester"));
    // a URL alone takes the local cloud's token
    assert_eq!(home.run(&["user", "info", "--json", "--url", &url], &[]).await.json()["name"], "tester");

    // once it is gone, the command refuses, unless told --local: then it
    // serves the same data itself
    drop(serve);
    let gone = home.run(&["user", "info", "--json"], &[]).await;
    assert!(gone.code == Some(1) && gone.stderr.contains("not running"), "{}", gone.stderr);
    let user2 = home.run(&["user", "info", "--json", "--local"], &[]).await.json();
    assert_eq!(user2["id"], user["id"]);
    assert_eq!(home.run(&["server", "list", "--json", "--local"], &[]).await.json(), serde_json::json!([]));

    // and a data directory never used before gets its default user
    let fresh = vec![("PITHOSFS_DATA", home.path("fresh").display().to_string())];
    let user3 = home.run(&["user", "info", "--json", "--local"], &fresh).await.json();
    assert!(user3["id"].is_string());
    assert_ne!(user3["id"], user["id"]);
    assert!(home.path("fresh/token").exists());
}

/// A built example, or None (with a note) when `cargo build --all-targets`
/// has not built it.
fn example(name: &str) -> Option<PathBuf> {
    let beside_bin = Path::new(env!("CARGO_BIN_EXE_pithosfs")).parent().map(|d| d.join("examples").join(name));
    let in_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/examples").join(name);
    let found = beside_bin.filter(|p| p.exists()).or_else(|| in_target.exists().then_some(in_target));
    if found.is_none() {
        eprintln!("SKIPPED: example {name} is not built; run `cargo build --release --all-targets` first");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_examples_print_what_kamaki_prints() {
    let (Some(ex1), Some(ex2), Some(ex3)) = (example("example_1_1"), example("example_1_2"), example("example_1_3"))
    else {
        return;
    };
    let tc = TestCloud::start().await;
    let id = active_server(&tc, "A Debian Server", "Debian Base").await;
    let r = tc.alice(reqwest::Method::PUT, &format!("{}/{}/mycont", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    tc.put_object("mycont", "lala.txt", &[b'a'; 34]).await;
    tc.put_object("mycont", "test.txt", &[b't'; 1232]).await;
    tc.put_object("mycont", "testDir/", b"").await;

    let home = Home::new();
    let token_file = home.write("token", ALICE_TOKEN);
    let env = |server: &str| {
        vec![
            ("ASTAKOS_URL", tc.identity()),
            ("PITHOSFS_TOKEN_FILE", token_file.display().to_string()),
            ("SERVER_ID", server.to_string()),
            ("CONTAINER", "mycont".to_string()),
        ]
    };
    let wanted = "Server Name: A Debian Server (with OS Debian Base)\n lala.txt of 34 bytes\n \
                  test.txt of 1232 bytes\n testDir/ of 0 bytes\n";

    let r = home.run_program(&ex1, &[], &env(&id.to_string())).await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), ""), "{}", r.stderr);
    let r = home.run_program(&ex2, &[], &env(&id.to_string())).await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), wanted), "{}", r.stderr);
    // the service URLs may also be given
    let mut explicit = env(&id.to_string());
    explicit.push(("CYCLADES_URL", tc.compute()));
    explicit.push(("PITHOS_URL", tc.pithos()));
    let r = home.run_program(&ex3, &[], &explicit).await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), wanted), "{}", r.stderr);

    // example 1.3's error handling
    let r = home.run_program(&ex3, &[], &env("999999")).await;
    assert_eq!(r.code, Some(1));
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("Error: Not Found itemNotFound ("), "{}", r.stdout);
    assert_eq!(lines[1], "- error code: 404");
    let mut missing_container = env(&id.to_string());
    missing_container[3].1 = "nosuch".into();
    let r = home.run_program(&ex3, &[], &missing_container).await;
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.starts_with("Server Name: A Debian Server (with OS Debian Base)\nError: "), "{}", r.stdout);
    assert!(r.stdout.contains("- error code: 404"), "{}", r.stdout);
    let wrong = home.write("wrong", "wrong-token-0000");
    let mut denied = env(&id.to_string());
    denied[1].1 = wrong.display().to_string();
    let r = home.run_program(&ex3, &[], &denied).await;
    assert_eq!(
        r.stdout.lines().take(2).collect::<Vec<_>>(),
        vec!["Error: Unauthorized unauthorized (Invalid token)", "- error code: 401"]
    );
    let mut bad_url = env(&id.to_string());
    bad_url.push(("CYCLADES_URL", "not a url".into()));
    let r = home.run_program(&ex3, &[], &bad_url).await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(1), "Failed to initialize Cyclades client\n"));
}
