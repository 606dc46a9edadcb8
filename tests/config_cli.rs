//! Honest configuration, through the real `pithosfs` binary with a scratch
//! home and nothing else in its environment: no cloud configured is an error
//! that says what to do and creates nothing; a kamakirc that names what it
//! lacks is an error naming the file and the section; a kamakirc cloud's
//! per-service URLs (`cyclades_url`, `plankton_url`) are where the commands
//! go; `-v` says which cloud and user, never the token.

mod common;
mod harness;

use common::{TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::clients::image::pithos_location;
use pithosfs::clients::{CycladesClient, ImageClient, NewServer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pithosfs");

/// Every control command group, each in a form that parses.
const COMMANDS: [&[&str]; 7] = [
    &["server", "list"],
    &["user", "info"],
    &["flavor", "list"],
    &["image", "list"],
    &["file", "list", "/pithos"],
    &["container", "list"],
    &["quota"],
];

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// A scratch HOME, the only thing the command's environment has (with PATH).
struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().unwrap())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// What the home holds, sorted (recursively, relative paths).
    fn contents(&self) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(root).unwrap().display().to_string());
                if p.is_dir() {
                    walk(root, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.0.path(), self.0.path(), &mut out);
        out.sort();
        out
    }
    async fn run(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let cmd = self.command(args, env);
        tokio::task::spawn_blocking(move || cmd.output_checked()).await.unwrap()
    }
    fn command(&self, args: &[&str], env: &[(&str, String)]) -> Checked {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear().env("HOME", self.0.path()).env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Checked(cmd)
    }
}

/// A command whose output is checked for tokens.
struct Checked(Command);

impl Checked {
    fn output_checked(mut self) -> Run {
        let out = self.0.output().unwrap();
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for t in [ALICE_TOKEN, BOB_TOKEN] {
            assert!(
                !run.stdout.contains(t) && !run.stderr.contains(t),
                "a token was printed:\n{}{}",
                run.stdout,
                run.stderr
            );
        }
        run
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cloud_configured_says_how_and_creates_nothing() {
    let home = Home::new();
    for args in COMMANDS {
        let r = home.run(args, &[]).await;
        assert_eq!(r.code, Some(1), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        for hint in ["No cloud is configured", "--url", "--token-file", "PITHOSFS_URL", "PITHOSFS_TOKEN"] {
            assert!(r.stderr.contains(hint), "{args:?}: {hint:?} not in\n{}", r.stderr);
        }
        for hint in ["kamaki config set cloud.NAME.url", "--local", "pithosfs serve", "scripts/run"] {
            assert!(r.stderr.contains(hint), "{args:?}: {hint:?} not in\n{}", r.stderr);
        }
        assert!(r.stderr.contains(&home.path(".kamakirc").display().to_string()), "{}", r.stderr);
        assert!(home.contents().is_empty(), "{args:?} created {:?}", home.contents());
    }
    // the same with -v and --json: nothing is printed as if it had worked
    let r = home.run(&["server", "list", "--json", "-v"], &[]).await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(1), ""));
    assert!(home.contents().is_empty(), "{:?}", home.contents());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamakirc_mistakes_name_the_file_and_the_section() {
    let home = Home::new();
    let rc = home.write(
        ".kamakirc",
        "[global]\ndefault_cloud = prod\n\n[cloud \"test\"]\nurl = http://127.0.0.1:9/identity/v2.0\ntoken = t\n\n\
         [cloud \"half\"]\nurl = http://127.0.0.1:9/identity/v2.0\n",
    );
    let rc_text = rc.display().to_string();
    for args in COMMANDS {
        let r = home.run(args, &[]).await;
        assert_eq!(r.code, Some(1), "{args:?}");
        assert!(
            r.stderr.contains("No cloud \"prod\"")
                && r.stderr.contains("default_cloud = prod in [global]")
                && r.stderr.contains("[cloud \"prod\"]")
                && r.stderr.contains(&rc_text)
                && r.stderr.contains("half, test"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = home.run(&["user", "info", "--cloud", "nope"], &[]).await;
    assert!(r.code == Some(1) && r.stderr.contains("No cloud \"nope\"") && r.stderr.contains(&rc_text), "{}", r.stderr);
    let r = home.run(&["user", "info", "--cloud", "half"], &[]).await;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("Cloud \"half\"") && r.stderr.contains("has no token"), "{}", r.stderr);
    assert!(r.stderr.contains(&rc_text), "{}", r.stderr);
    // several clouds and no default, as kamaki says
    home.write(".kamakirc", "[cloud \"a\"]\nurl = http://x\ntoken = t\n[cloud \"b\"]\nurl = http://y\ntoken = t\n");
    let r = home.run(&["server", "list"], &[]).await;
    assert!(r.code == Some(1) && r.stderr.contains("none is the default") && r.stderr.contains("a, b"), "{}", r.stderr);
    assert_eq!(home.contents(), vec![".kamakirc"]);
}

/// An image of alice's on `tc` named `name` (its disk a small object).
async fn image_on(tc: &TestCloud, name: &str) -> String {
    let object = format!("{name}.diskdump");
    tc.put_object("pithos", &object, b"disk").await;
    let images = ImageClient::new(&tc.image(), ALICE_TOKEN).unwrap();
    let location = pithos_location(&tc.alice, "pithos", &object);
    let image = images.register(name, &location, &Default::default(), &Default::default()).await.unwrap();
    image["id"].as_str().unwrap().to_string()
}

fn names(list: &Value) -> Vec<String> {
    let items = list.as_array().unwrap_or_else(|| panic!("not a list: {list}"));
    items.iter().map(|i| i["name"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_service_urls_of_a_kamakirc_cloud_replace_the_catalogs() {
    // Two clouds where alice has the same token: the kamakirc authenticates
    // at the first and sends compute and image requests to the second.
    let first = TestCloud::start().await;
    let second = TestCloud::start().await;
    let image = image_on(&second, "only-on-the-second").await;
    let cyclades = CycladesClient::new(&second.compute(), ALICE_TOKEN).unwrap();
    cyclades.create_server(&NewServer::new("server-on-the-second", 1, &image)).await.unwrap();

    let home = Home::new();
    let plain = format!("[cloud \"c\"]\nurl = {}\ntoken = {ALICE_TOKEN}\n", first.identity());
    home.write(".kamakirc", &plain);
    let servers = names(&home.run(&["server", "list", "--json"], &[]).await.json());
    assert!(!servers.contains(&"server-on-the-second".to_string()), "{servers:?}");
    let images = names(&home.run(&["image", "list", "--json"], &[]).await.json());
    assert!(!images.contains(&"only-on-the-second".to_string()), "{images:?}");

    // kamaki's names for the services
    home.write(
        ".kamakirc",
        &format!("{plain}cyclades_url = {}\nplankton_url = {}/\n", second.compute(), second.image()),
    );
    let servers = names(&home.run(&["server", "list", "--json"], &[]).await.json());
    assert_eq!(servers, vec!["server-on-the-second"]);
    let images = names(&home.run(&["image", "list", "--json"], &[]).await.json());
    assert!(images.contains(&"only-on-the-second".to_string()), "{images:?}");
    // -v says so
    let r = home.run(&["flavor", "list", "-v"], &[]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("compute endpoint {}", second.compute())), "{}", r.stderr);

    // the catalog's type names work as well; a setting pithosfs does not follow is said
    home.write(".kamakirc", &format!("{plain}compute_url = {}\ncyclades_token = other\n", second.compute()));
    let r = home.run(&["server", "list", "--json"], &[]).await;
    assert_eq!(names(&r.json()), vec!["server-on-the-second"]);
    assert!(
        r.stderr.contains("note: cyclades_token of [cloud \"c\"]") && r.stderr.contains("not used"),
        "{}",
        r.stderr
    );

    // a bad one is an error naming the key
    home.write(".kamakirc", &format!("{plain}pithos_url = ftp://nowhere\n"));
    let r = home.run(&["server", "list"], &[]).await;
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("pithos_url of [cloud \"c\"]") && r.stderr.contains("not an http(s) URL"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_says_which_cloud_and_user_and_never_the_token() {
    let tc = TestCloud::start().await;
    let home = Home::new();
    let token_file = home.write("alice.token", ALICE_TOKEN);
    let env = vec![("PITHOSFS_URL", tc.identity()), ("PITHOSFS_TOKEN_FILE", token_file.display().to_string())];

    let quiet = home.run(&["flavor", "list"], &env).await;
    assert_eq!(quiet.code, Some(0), "{}", quiet.stderr);
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);

    let r = home.run(&["flavor", "list", "-v"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("pithosfs: cloud at {} (from the environment (PITHOSFS_URL))", tc.identity())));
    assert!(r.stderr.contains(&format!("pithosfs: user alice@example.org (uuid {})", tc.alice)), "{}", r.stderr);
    assert_eq!(r.stdout, quiet.stdout);

    let rc = home.write(".kamakirc", &format!("[cloud \"work\"]\nurl = {}\ntoken = {BOB_TOKEN}\n", tc.identity()));
    let r = home.run(&["user", "info", "-v"], &[]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let cloud_line =
        format!("pithosfs: cloud \"work\" at {} (from [cloud \"work\"] of {})", tc.identity(), rc.display());
    assert!(r.stderr.contains(&cloud_line), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("pithosfs: user bob@example.org (uuid {})", tc.bob)), "{}", r.stderr);

    // --local, with a running local cloud of the data directory
    let data = home.path("data");
    let local = vec![("PITHOSFS_DATA", data.display().to_string())];
    let r = home.run(&["user", "info", "-v", "--local"], &local).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let line = format!("(from the local cloud of {}, served by this command)", data.display());
    assert!(
        r.stderr.contains("pithosfs: cloud \"local\" at http://127.0.0.1:") && r.stderr.contains(&line),
        "{}",
        r.stderr
    );
    let local_token = std::fs::read_to_string(data.join("token")).unwrap();
    assert!(!r.stderr.contains(local_token.trim()) && !r.stdout.contains(local_token.trim()));
}

#[test]
fn mount_with_nothing_configured_uses_the_local_cloud_and_says_so() {
    let home = Home::new();
    let data = home.path("data");
    let envs = [("HOME", home.0.path().display().to_string()), ("PITHOSFS_DATA", data.display().to_string())];
    let borrowed: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let point = home.path("mnt");
    let mut mount = harness::Mount::start(&point, &home.path("mount.log"), &[], &borrowed);
    let said = format!(
        "pithosfs: no cloud configured: using the local cloud of {}, served by this command at http://127.0.0.1:",
        data.display()
    );
    assert!(mount.log_text().contains(&said), "{}", mount.log_text());
    std::fs::write(point.join("pithos/hello.txt"), "hello").unwrap();
    // while it runs, the control commands find its local cloud (a running one counts)
    let r = home.command(&["user", "info", "--json", "-v"], &envs[1..]).output_checked();
    let user: Value = r.json();
    assert!(user["id"].is_string(), "{user}");
    assert!(r.stderr.contains(&format!("(from the local cloud of {}, running)", data.display())), "{}", r.stderr);
    mount.unmount();
    // and once it is gone, they refuse again rather than start one
    let r = home.command(&["user", "info"], &envs[1..]).output_checked();
    assert!(r.code == Some(1) && r.stderr.contains("is not running"), "{}", r.stderr);
}

#[test]
fn the_mount_takes_a_kamakirc_clouds_pithos_url() {
    let home = Home::new();
    let cloud = harness::Cloud::start(&home.path(""));
    // An honest proxy in front of the same cloud: only the override leads there.
    let proxy = harness::faults::FaultProxy::start(&cloud.url, 1);
    home.write(
        ".kamakirc",
        &format!(
            "[global]\ndefault_cloud = c\n[cloud \"c\"]\nurl = {}\ntoken = {}\npithos_url = {}{}\n",
            cloud.identity(),
            harness::TOKEN,
            proxy.url,
            pithosfs::cloud::PITHOS_PATH
        ),
    );
    let envs = [("HOME", home.0.path().display().to_string())];
    let point = home.path("mnt");
    let mut mount = harness::Mount::start(&point, &home.path("mount.log"), &[], &[("HOME", envs[0].1.as_str())]);
    assert!(!mount.log_text().contains("local cloud"), "{}", mount.log_text());
    std::fs::write(point.join("pithos/through-the-proxy.txt"), "hello").unwrap();
    mount.unmount();
    assert_eq!(cloud.get("pithos", "through-the-proxy.txt"), b"hello");
    assert!(proxy.counts().requests >= 2, "the mount did not use pithos_url: {:?}", proxy.counts().requests);
}

/// kamaki, from `scripts/setup-kamaki` (`PITHOSFS_KAMAKI_VENV`, default
/// `.cache/kamaki-venv`): required under CI, skipped elsewhere without it.
fn kamaki_bin() -> Option<PathBuf> {
    let venv = std::env::var_os("PITHOSFS_KAMAKI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/kamaki-venv"));
    let bin = venv.join("bin/kamaki");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "kamaki is not installed at {} (run scripts/setup-kamaki)",
        bin.display()
    );
    eprintln!("skipped: kamaki not found at {} (run scripts/setup-kamaki)", bin.display());
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kamakirc_written_by_kamaki_is_read_as_kamaki_reads_it() {
    let Some(kamaki) = kamaki_bin() else { return };
    let first = TestCloud::start().await;
    let second = TestCloud::start().await;
    let image = image_on(&second, "only-on-the-second").await;
    let cyclades = CycladesClient::new(&second.compute(), ALICE_TOKEN).unwrap();
    cyclades.create_server(&NewServer::new("server-on-the-second", 1, &image)).await.unwrap();

    let home = Home::new();
    let rc = home.path(".kamakirc");
    // kamaki accepts several tokens in one value and uses the first
    let token = format!("{ALICE_TOKEN} {BOB_TOKEN}");
    let settings = [
        ("cloud.work.url", first.identity()),
        ("cloud.work.token", token),
        ("cloud.work.cyclades_url", second.compute()),
        ("cloud.other.url", "http://127.0.0.1:9/identity/v2.0".to_string()),
        ("cloud.other.token", "x".to_string()),
        ("default_cloud", "work".to_string()),
    ];
    for (key, value) in settings {
        let mut cmd = Command::new(&kamaki);
        cmd.args(["config", "set", key, &value]).env("KAMAKI_CONFIG", &rc).env("HOME", home.0.path());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        assert!(out.status.success(), "kamaki config set {key}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let user = home.run(&["user", "info", "--json"], &[]).await.json();
    assert_eq!(user["id"], first.alice.as_str());
    let servers = names(&home.run(&["server", "list", "--json"], &[]).await.json());
    assert_eq!(servers, vec!["server-on-the-second"]);
    let r = home.run(&["user", "info", "--cloud", "other", "-v"], &[]).await;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("pithosfs: cloud \"other\" at http://127.0.0.1:9/identity/v2.0"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_measured_in_terminal_columns_and_cleaned() {
    let tc = TestCloud::start().await;
    let image = image_on(&tc, "disk").await;
    let cyclades = CycladesClient::new(&tc.compute(), ALICE_TOKEN).unwrap();
    let names = ["伺服器-東京", "cafe\u{301}", "invoice\u{202E}fdp.exe", "red\u{1b}[31m", "👍"];
    for name in names {
        cyclades.create_server(&NewServer::new(name, 1, &image)).await.unwrap();
    }
    let home = Home::new();
    let token_file = home.write("alice.token", ALICE_TOKEN);
    let env = vec![("PITHOSFS_URL", tc.identity()), ("PITHOSFS_TOKEN_FILE", token_file.display().to_string())];
    let r = home.run(&["server", "list"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stdout.contains('\u{202E}') && !r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert!(r.stdout.contains("invoice?fdp.exe") && r.stdout.contains("red?[31m"), "{}", r.stdout);
    // the STATUS column starts at one terminal column on every line
    let columns: Vec<usize> = r
        .stdout
        .lines()
        .map(|l| {
            let at = l.find("STATUS").or_else(|| l.find("BUILD")).or_else(|| l.find("ACTIVE")).unwrap();
            unicode_width::UnicodeWidthStr::width(&l[..at])
        })
        .collect();
    assert_eq!(columns.len(), names.len() + 1, "{}", r.stdout);
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{columns:?}\n{}", r.stdout);
    // --json keeps the names as they are, for scripts
    let json = home.run(&["server", "list", "--json"], &env).await.json();
    let got: Vec<String> = json.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    for name in names {
        assert!(got.contains(&name.to_string()), "{name:?} not in {got:?}");
    }
}
