//! `pithosfs file list|info|mkdir|mv|cp|rm|versions|publish|unpublish|share|unshare`,
//! `pithosfs container list|create|delete` and `pithosfs quota`: the real
//! binary against a real `pithosfs serve` child with users alice and bob.
//! Every `--json` output is parsed and checked against what the server then
//! holds, read with plain HTTP.

mod harness;

use harness::hostile::{Action, Hostile};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const ALICE: &str = "alice-token-0123456789abcdef0123";
const BOB: &str = "bob-token-0123456789abcdef012345";
const BIN: &str = env!("CARGO_BIN_EXE_pithosfs");

/// A `pithosfs serve` child with alice and bob, in its own directory.
struct Cloud {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    alice: String,
    bob: String,
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
    /// Failed with exit code 1, saying `text` on stderr.
    fn fails_with(&self, text: &str) {
        assert_eq!(self.code, Some(1), "should fail:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stderr.contains(text), "stderr lacks {text:?}: {}", self.stderr);
    }
    /// Refused as a usage error (clap's exit code 2), saying `text`.
    fn refused_with(&self, text: &str) {
        assert_eq!(self.code, Some(2), "should be refused:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stderr.contains(text), "stderr lacks {text:?}: {}", self.stderr);
    }
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// One HTTP request (a small runtime per call: the tests are synchronous).
fn http(method: &str, url: &str, token: Option<&str>, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Resp {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut rb = reqwest::Client::new().request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(t) = token {
            rb = rb.header("X-Auth-Token", t);
        }
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

fn user_id(url: &str, token: &str) -> String {
    let body = format!(r#"{{"auth":{{"token":{{"id":"{token}"}}}}}}"#).into_bytes();
    let r =
        http("POST", &format!("{url}/identity/v2.0/tokens"), None, &[("Content-Type", "application/json")], Some(body));
    assert_eq!(r.status, 200);
    r.json()["access"]["user"]["id"].as_str().unwrap().to_string()
}

impl Cloud {
    fn start(args: &[&str]) -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, format!("alice {ALICE}\nbob {BOB}\n")).unwrap();
        std::fs::write(dir.path().join("alice.token"), format!("{ALICE}\n")).unwrap();
        std::fs::write(dir.path().join("bob.token"), format!("{BOB}\n")).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0", "--build-seconds", "0"])
            .arg("--users-file")
            .arg(&users)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "pithosfs serve said {line:?}");
        let (alice, bob) = (user_id(&url, ALICE), user_id(&url, BOB));
        Cloud { child, url, dir, alice, bob }
    }

    /// `pithosfs ARGS` as `who` ("alice" or "bob"), with an environment of its own.
    fn run_as(&self, who: &str, args: &[&str]) -> Run {
        let token_file: PathBuf = self.dir.path().join(format!("{who}.token"));
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("KAMAKI_CONFIG", self.dir.path().join("no-kamakirc"))
            .env("PITHOSFS_URL", format!("{}/identity/v2.0", self.url))
            .env("PITHOSFS_TOKEN_FILE", token_file)
            .output()
            .unwrap();
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for t in [ALICE, BOB] {
            assert!(!run.stdout.contains(t) && !run.stderr.contains(t), "a token was printed");
        }
        run
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_as("alice", args)
    }

    /// `pithosfs ARGS` as alice, through the identity service at `identity`.
    fn run_at(&self, identity: &str, args: &[&str]) -> Run {
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("KAMAKI_CONFIG", self.dir.path().join("no-kamakirc"))
            .env("PITHOSFS_URL", identity)
            .env("PITHOSFS_TOKEN_FILE", self.dir.path().join("alice.token"))
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// URL of alice's `container/name`.
    fn object(&self, container: &str, name: &str) -> String {
        format!("{}/pithos/object-store/v1/{}/{container}/{name}", self.url, self.alice)
    }

    fn put(&self, container: &str, name: &str, data: &[u8]) {
        let r = http(
            "PUT",
            &self.object(container, name),
            Some(ALICE),
            &[("Content-Type", "text/plain")],
            Some(data.to_vec()),
        );
        assert_eq!(r.status, 201, "PUT {container}/{name}");
    }

    fn get(&self, container: &str, name: &str) -> Resp {
        http("GET", &self.object(container, name), Some(ALICE), &[], None)
    }

    fn head(&self, container: &str, name: &str) -> Resp {
        http("HEAD", &self.object(container, name), Some(ALICE), &[], None)
    }

    fn container(&self, container: &str) -> Resp {
        http("HEAD", &format!("{}/pithos/object-store/v1/{}/{container}", self.url, self.alice), Some(ALICE), &[], None)
    }

    /// Every object name of a container, sorted.
    fn names(&self, container: &str) -> Vec<String> {
        let url = format!("{}/pithos/object-store/v1/{}/{container}?format=json", self.url, self.alice);
        let r = http("GET", &url, Some(ALICE), &[], None);
        if r.status == 204 {
            return Vec::new();
        }
        assert_eq!(r.status, 200);
        r.json().as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_string()).collect()
    }
}

fn names_of(listing: &Value) -> Vec<(String, String)> {
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["type"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn list_shows_files_and_folders_one_level_or_all() {
    let c = Cloud::start(&[]);
    c.put("pithos", "a.txt", b"hello");
    c.put("pithos", "docs/x.md", b"x");
    c.put("pithos", "docs/sub/y.md", b"yy");
    c.run(&["file", "mkdir", "/pithos/empty"]).ok();
    let top = c.run(&["file", "list", "/pithos", "--json"]).json();
    assert_eq!(names_of(&top), pairs(&[("a.txt", "file"), ("docs", "folder"), ("empty", "folder")]));
    let a = &top[0];
    assert_eq!(a["bytes"], 5);
    assert_eq!(a["content_type"], "text/plain");
    assert_eq!(a["hash"].as_str(), c.head("pithos", "a.txt").header("x-object-hash").as_deref());
    assert!(a["modified"].as_str().unwrap().ends_with('Z'), "{a}");
    let docs = c.run(&["file", "list", "/pithos/docs", "--json"]).json();
    assert_eq!(names_of(&docs), pairs(&[("docs/sub", "folder"), ("docs/x.md", "file")]));
    let all = c.run(&["file", "list", "-r", "/pithos/docs", "--json"]).json();
    assert_eq!(names_of(&all), pairs(&[("docs/sub/y.md", "file"), ("docs/x.md", "file")]));
    // an empty folder lists nothing; a file lists itself
    assert_eq!(c.run(&["file", "list", "/pithos/empty", "--json"]).json(), serde_json::json!([]));
    assert_eq!(names_of(&c.run(&["file", "list", "/pithos/a.txt", "--json"]).json()), pairs(&[("a.txt", "file")]));
    // the table for people
    let table = c.run(&["file", "list", "/pithos"]).ok().stdout.clone();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("SIZE") && lines[0].contains("MODIFIED"), "{table}");
    assert!(lines[1].starts_with("a.txt") && lines[1].contains("5 B") && lines[1].contains("text/plain"), "{table}");
    assert!(lines[2].starts_with("docs/") && lines[2].contains("folder"), "{table}");
    let long = c.run(&["file", "list", "-l", "/pithos/docs"]).ok().stdout.clone();
    assert!(long.contains(&c.head("pithos", "docs/x.md").header("x-object-hash").unwrap()), "{long}");
    // what is not there
    c.run(&["file", "list", "/pithos/nothing"]).fails_with("/pithos/nothing: no such file or folder");
    c.run(&["file", "list", "/nocontainer"]).fails_with("no container nocontainer");
    c.run(&["file", "list", "pithos/docs"]).fails_with("a remote path starts with /CONTAINER");
    c.run(&["file", "list", "/"]).fails_with("no container in the remote path");
}

#[test]
fn info_shows_metadata_hash_version_and_missing_objects_fail() {
    let c = Cloud::start(&[]);
    c.put("pithos", "a.txt", b"hello");
    let r = http(
        "POST",
        &(c.object("pithos", "a.txt") + "?update"),
        Some(ALICE),
        &[("X-Object-Meta-Topic", "greetings")],
        None,
    );
    assert_eq!(r.status, 202);
    let head = c.head("pithos", "a.txt");
    let info = c.run(&["file", "info", "/pithos/a.txt", "--json"]).json();
    assert_eq!(info["container"], "pithos");
    assert_eq!(info["path"], "a.txt");
    assert_eq!(info["type"], "file");
    assert_eq!(info["bytes"], 5);
    assert_eq!(info["hash"].as_str(), head.header("x-object-hash").as_deref());
    assert_eq!(info["uuid"].as_str(), head.header("x-object-uuid").as_deref());
    assert_eq!(info["version"].to_string(), head.header("x-object-version").unwrap());
    assert_eq!(info["meta"]["topic"], "greetings");
    assert_eq!(info["modified_by"]["name"], "alice");
    assert_eq!(info["modified_by"]["id"], c.alice.as_str());
    assert_eq!(info["sharing"], serde_json::json!({"read": [], "write": []}));
    assert_eq!(info["public_url"], Value::Null);
    let text = c.run(&["file", "info", "/pithos/a.txt"]).ok().stdout.clone();
    assert!(text.contains("meta.topic") && text.contains("greetings") && text.contains("5 B (5 bytes)"), "{text}");
    // an older version
    let first = info["version"].clone();
    c.put("pithos", "a.txt", b"hello again");
    let old = c.run(&["file", "info", "/pithos/a.txt", "--version", &first.to_string(), "--json"]).json();
    assert_eq!((old["bytes"].clone(), old["version"].clone()), (serde_json::json!(5), first));
    // missing: a clear message and exit code 1
    c.run(&["file", "info", "/pithos/missing.txt"]).fails_with("/pithos/missing.txt: no such file or folder");
    c.run(&["file", "info", "/nope/a.txt"]).fails_with("/nope/a.txt: no container nope");
    c.run(&["file", "info", "/pithos"]).fails_with("names a container, not a file");
    c.run(&["file", "info", "pithos/a.txt"]).fails_with("a remote path starts with /CONTAINER");
}

#[test]
fn mkdir_makes_a_folder_and_never_replaces_a_file() {
    let c = Cloud::start(&[]);
    let made = c.run(&["file", "mkdir", "/pithos/photos", "--json"]).json();
    assert_eq!(made["created"], true);
    assert_eq!(c.head("pithos", "photos").header("content-type").as_deref(), Some("application/directory"));
    assert_eq!(c.run(&["file", "mkdir", "/pithos/photos/", "--json"]).json()["created"], false);
    c.put("pithos", "notes", b"keep me");
    c.run(&["file", "mkdir", "/pithos/notes"]).fails_with("/pithos/notes exists and is a file");
    assert_eq!(c.get("pithos", "notes").body, b"keep me");
    c.run(&["file", "mkdir", "/nope/dir"]).fails_with("no container nope");
}

#[test]
fn mv_and_cp_work_on_the_server_and_across_containers() {
    let c = Cloud::start(&[]);
    c.run(&["container", "create", "backup"]).ok();
    c.put("pithos", "a.txt", b"alpha");
    // rename
    let moved = c.run(&["file", "mv", "/pithos/a.txt", "/pithos/b.txt", "--json"]).json();
    assert_eq!((moved["from"].as_str(), moved["to"].as_str()), (Some("/pithos/a.txt"), Some("/pithos/b.txt")));
    assert_eq!(c.head("pithos", "a.txt").status, 404);
    assert_eq!(c.get("pithos", "b.txt").body, b"alpha");
    assert_eq!(moved["version"].to_string(), c.head("pithos", "b.txt").header("x-object-version").unwrap());
    // copy into another container's folder, keeping the name
    c.run(&["file", "mkdir", "/backup/old"]).ok();
    let copied = c.run(&["file", "cp", "/pithos/b.txt", "/backup/old", "--json"]).json();
    assert_eq!(copied["to"], "/backup/old/b.txt");
    assert_eq!(c.get("backup", "old/b.txt").body, b"alpha");
    assert_eq!(c.get("pithos", "b.txt").body, b"alpha");
    // an existing destination is replaced only with -f
    c.put("pithos", "c.txt", b"gamma");
    c.run(&["file", "cp", "/pithos/c.txt", "/backup/old/b.txt"]).fails_with("/backup/old/b.txt exists: use -f");
    assert_eq!(c.get("backup", "old/b.txt").body, b"alpha");
    c.run(&["file", "cp", "-f", "/pithos/c.txt", "/backup/old/b.txt"]).ok();
    assert_eq!(c.get("backup", "old/b.txt").body, b"gamma");
    // a folder: cp needs -r, mv takes the whole tree
    c.put("pithos", "docs/x.md", b"x");
    c.put("pithos", "docs/sub/y.md", b"y");
    c.run(&["file", "mkdir", "/pithos/docs"]).ok();
    c.run(&["file", "cp", "/pithos/docs", "/backup/docs"]).fails_with("is a folder: use -r");
    c.run(&["file", "cp", "-r", "/pithos/docs", "/backup/"]).ok();
    assert_eq!(c.names("backup"), ["docs", "docs/sub/y.md", "docs/x.md", "old", "old/b.txt"]);
    c.run(&["file", "move", "/pithos/docs", "/pithos/archive"]).ok();
    assert_eq!(c.names("pithos"), ["archive", "archive/sub/y.md", "archive/x.md", "b.txt", "c.txt"]);
    assert_eq!(c.get("pithos", "archive/sub/y.md").body, b"y");
    // into an existing folder, keeping its name
    c.run(&["file", "mkdir", "/pithos/shelf"]).ok();
    assert_eq!(
        c.run(&["file", "mv", "/pithos/archive", "/pithos/shelf", "--json"]).json()["to"],
        "/pithos/shelf/archive"
    );
    assert_eq!(c.get("pithos", "shelf/archive/sub/y.md").body, b"y");
    c.run(&["file", "mv", "/pithos/shelf/archive", "/pithos/archive"]).ok();
    // a folder that is only a prefix (no folder object) moves too
    c.put("pithos", "loose/1", b"1");
    c.put("pithos", "loose/2", b"2");
    c.run(&["file", "mv", "/pithos/loose", "/backup/loose"]).ok();
    assert_eq!(c.get("backup", "loose/2").body, b"2");
    assert!(!c.names("pithos").iter().any(|n| n.starts_with("loose")));
    // what cannot be done
    c.run(&["file", "mv", "/pithos/archive", "/pithos/archive/inner"]).fails_with("onto or into itself");
    c.run(&["file", "mv", "/pithos/missing", "/pithos/x"]).fails_with("/pithos/missing: no such file or folder");
    c.run(&["file", "cp", "/pithos/b.txt", "/nope/b.txt"]).fails_with("no container nope");
}

#[test]
fn rm_removes_a_file_and_with_r_a_folder_tree() {
    let c = Cloud::start(&[]);
    c.put("pithos", "a.txt", b"a");
    c.put("pithos", "tree/x", b"x");
    c.put("pithos", "tree/deep/y", b"y");
    c.put("pithos", "treehouse", b"neighbour");
    c.run(&["file", "mkdir", "/pithos/tree"]).ok();
    let r = c.run(&["file", "rm", "/pithos/a.txt", "--json"]).json();
    assert_eq!(r["removed"], serde_json::json!(["a.txt"]));
    assert_eq!(c.head("pithos", "a.txt").status, 404);
    // a folder with something in it needs -r, and nothing is lost without it
    c.run(&["file", "rm", "/pithos/tree"]).fails_with("is a folder with 2 object(s) in it: use -r");
    assert_eq!(c.names("pithos"), ["tree", "tree/deep/y", "tree/x", "treehouse"]);
    let r = c.run(&["file", "rm", "-r", "/pithos/tree", "--json"]).json();
    assert_eq!(r["removed"], serde_json::json!(["tree", "tree/deep/y", "tree/x"]));
    assert_eq!(c.names("pithos"), ["treehouse"]);
    // a folder that is only a prefix
    c.put("pithos", "p/1", b"1");
    c.put("pithos", "p/2/3", b"3");
    c.run(&["file", "delete", "-r", "/pithos/p"]).ok();
    assert_eq!(c.names("pithos"), ["treehouse"]);
    c.run(&["file", "rm", "/pithos/a.txt"]).fails_with("/pithos/a.txt: no such file or folder");
}

#[test]
fn versions_lists_every_version_and_each_one_reads_back() {
    let c = Cloud::start(&[]);
    for text in ["one", "two", "three"] {
        c.put("pithos", "v.txt", text.as_bytes());
    }
    let listed = c.run(&["file", "versions", "/pithos/v.txt", "--json"]).json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    let server =
        http("GET", &(c.object("pithos", "v.txt") + "?version=list&format=json"), Some(ALICE), &[], None).json();
    let ids: Vec<String> = server["versions"].as_array().unwrap().iter().map(|p| p[0].to_string()).collect();
    assert_eq!(listed.iter().map(|v| v["version"].to_string()).collect::<Vec<_>>(), ids);
    for (v, text) in listed.iter().zip(["one", "two", "three"]) {
        assert!(v["timestamp"].as_f64().unwrap() > 1.6e9);
        assert!(v["modified"].as_str().unwrap().ends_with('Z'));
        let r =
            http("GET", &format!("{}?version={}", c.object("pithos", "v.txt"), v["version"]), Some(ALICE), &[], None);
        assert_eq!(r.body, text.as_bytes());
    }
    let table = c.run(&["file", "versions", "/pithos/v.txt"]).ok().stdout.clone();
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().nth(1).unwrap().contains(&ids[0]), "{table}");
    c.run(&["file", "versions", "/pithos/none.txt"]).fails_with("/pithos/none.txt: no such file or folder");
}

#[test]
fn publish_gives_a_url_anyone_can_read_until_unpublished() {
    let c = Cloud::start(&[]);
    c.put("pithos", "pub.txt", b"for everyone");
    let url = c.run(&["file", "publish", "/pithos/pub.txt"]).ok().stdout.trim().to_string();
    assert!(url.starts_with(&format!("{}/pithos/public/", c.url)), "{url}");
    let r = http("GET", &url, None, &[], None);
    assert_eq!((r.status, r.body.as_slice()), (200, b"for everyone".as_slice()));
    let info = c.run(&["file", "info", "/pithos/pub.txt", "--json"]).json();
    assert_eq!(info["public_url"].as_str(), Some(url.as_str()));
    // publishing again keeps the URL
    let again = c.run(&["file", "publish", "/pithos/pub.txt", "--json"]).json();
    assert_eq!(again["public_url"].as_str(), Some(url.as_str()));
    // a moved file's URL is withdrawn; publishing again gives a new one
    c.run(&["file", "mv", "/pithos/pub.txt", "/pithos/moved.txt"]).ok();
    assert_eq!(http("GET", &url, None, &[], None).status, 404);
    let url2 = c.run(&["file", "publish", "/pithos/moved.txt"]).ok().stdout.trim().to_string();
    assert_ne!(url2, url);
    assert_eq!(http("GET", &url2, None, &[], None).body, b"for everyone");
    c.run(&["file", "mv", "/pithos/moved.txt", "/pithos/pub.txt"]).ok();
    let url = c.run(&["file", "publish", "/pithos/pub.txt"]).ok().stdout.trim().to_string();
    c.run(&["file", "unpublish", "/pithos/pub.txt"]).ok();
    assert_eq!(http("GET", &url, None, &[], None).status, 404);
    assert_eq!(c.run(&["file", "info", "/pithos/pub.txt", "--json"]).json()["public_url"], Value::Null);
    c.run(&["file", "publish", "/pithos/none"]).fails_with("/pithos/none: no such file or folder");
}

#[test]
fn share_by_name_lets_bob_read_and_unshare_takes_it_back() {
    let c = Cloud::start(&[]);
    c.put("pithos", "s.txt", b"for bob");
    let url = c.object("pithos", "s.txt");
    assert_ne!(http("GET", &url, Some(BOB), &[], None).status, 200, "bob reads before sharing");
    let shared = c.run(&["file", "share", "/pithos/s.txt", "--read", "bob", "--json"]).json();
    assert_eq!(shared["sharing"]["read"], serde_json::json!([{"id": c.bob, "name": "bob"}]));
    assert_eq!(c.head("pithos", "s.txt").header("x-object-sharing"), Some(format!("read={}", c.bob)));
    let r = http("GET", &url, Some(BOB), &[], None);
    assert_eq!((r.status, r.body.as_slice()), (200, b"for bob".as_slice()));
    // bob finds it in alice's account (-A, by name)
    let seen = c.run_as("bob", &["file", "list", "-A", "alice", "/pithos", "--json"]).json();
    assert_eq!(names_of(&seen), pairs(&[("s.txt", "file")]));
    let seen = c.run_as("bob", &["file", "info", "--account", &c.alice, "/pithos/s.txt", "--json"]).json();
    assert_eq!(
        (seen["bytes"].clone(), seen["modified_by"]["name"].clone()),
        (serde_json::json!(7), serde_json::json!("alice"))
    );
    c.run_as("bob", &["file", "list", "-A", "nobody", "/pithos"]).fails_with("no user named nobody");
    // bob may not write yet; by UUID he may
    let put = |body: &[u8]| http("PUT", &url, Some(BOB), &[("Content-Type", "text/plain")], Some(body.to_vec())).status;
    assert_eq!(put(b"bob was here"), 403);
    c.run(&["file", "share", "/pithos/s.txt", "--write", &c.bob]).ok();
    assert_eq!(put(b"bob was here"), 201);
    // info names the users
    let info = c.run(&["file", "info", "/pithos/s.txt", "--json"]).json();
    assert_eq!(info["sharing"]["write"], serde_json::json!([{"id": c.bob, "name": "bob"}]));
    let text = c.run(&["file", "info", "/pithos/s.txt"]).ok().stdout.clone();
    assert!(text.contains(&format!("bob ({})", c.bob)), "{text}");
    // a user who does not exist: an error, and the sharing is as it was
    let before = c.head("pithos", "s.txt").header("x-object-sharing");
    c.run(&["file", "share", "/pithos/s.txt", "--read", "nobody,bob"]).fails_with("no user named nobody");
    assert_eq!(c.head("pithos", "s.txt").header("x-object-sharing"), before);
    // unshare
    let none = c.run(&["file", "unshare", "/pithos/s.txt", "bob", "--json"]).json();
    assert_eq!(none["sharing"], serde_json::json!({"read": [], "write": []}));
    assert_ne!(http("GET", &url, Some(BOB), &[], None).status, 200);
    // a move keeps what was shared, for the file and for a folder's tree
    c.run(&["file", "share", "/pithos/s.txt", "--read", "bob"]).ok();
    c.run(&["file", "mv", "/pithos/s.txt", "/pithos/moved.txt"]).ok();
    let r = http("GET", &c.object("pithos", "moved.txt"), Some(BOB), &[], None);
    assert_eq!((r.status, r.body.as_slice()), (200, b"bob was here".as_slice()));
    c.put("pithos", "dir/inner/f", b"f");
    c.run(&["file", "mkdir", "/pithos/dir"]).ok();
    c.run(&["file", "share", "/pithos/dir", "--read", "bob"]).ok();
    c.run(&["file", "share", "/pithos/dir/inner/f", "--write", "bob"]).ok();
    c.run(&["file", "mv", "/pithos/dir", "/pithos/dir2"]).ok();
    let f = c.run(&["file", "info", "/pithos/dir2/inner/f", "--json"]).json();
    assert_eq!(f["sharing"]["write"][0]["name"], "bob", "{f}");
    let d = c.run(&["file", "info", "/pithos/dir2", "--json"]).json();
    assert_eq!(d["sharing"]["read"][0]["name"], "bob", "{d}");
    c.run(&["file", "mv", "/pithos/moved.txt", "/pithos/s.txt"]).ok();
    c.run(&["file", "unshare", "/pithos/s.txt"]).ok();
    // a folder that is only a prefix: info calls it a folder; sharing it makes its
    // folder object, and what is under it is readable through it
    c.put("pithos", "album/pic", b"pic");
    assert_eq!(c.run(&["file", "info", "/pithos/album", "--json"]).json()["type"], "folder");
    assert_eq!(c.run(&["file", "unshare", "/pithos/album", "--json"]).json()["sharing"]["read"], serde_json::json!([]));
    assert_eq!(c.head("pithos", "album").status, 404, "unshare made nothing");
    assert_ne!(http("GET", &c.object("pithos", "album/pic"), Some(BOB), &[], None).status, 200);
    c.run(&["file", "share", "/pithos/album", "--read", "bob"]).ok();
    assert_eq!(c.head("pithos", "album").header("content-type").as_deref(), Some("application/directory"));
    assert_eq!(http("GET", &c.object("pithos", "album/pic"), Some(BOB), &[], None).body, b"pic");
    let pic = c.run_as("bob", &["file", "info", "-A", "alice", "/pithos/album/pic", "--json"]).json();
    assert_eq!(pic["shared_by"].as_str(), Some(format!("{}/pithos/album", c.alice).as_str()), "{pic}");
    c.run(&["file", "share", "/pithos/s.txt", "--read", "*"]).ok();
    assert_eq!(http("GET", &url, Some(BOB), &[], None).status, 200);
    c.run(&["file", "unshare", "/pithos/s.txt"]).ok();
    assert_eq!(c.head("pithos", "s.txt").header("x-object-sharing"), None);
    // bob cannot share alice's files (they are not in his account)
    c.run_as("bob", &["file", "share", "/pithos/s.txt", "--read", "alice"]).fails_with("/pithos/s.txt: no ");
    c.run(&["file", "share", "/pithos/s.txt"]).refused_with("--read");
}

#[test]
fn containers_are_created_with_policies_listed_and_deleted_only_when_asked() {
    let c = Cloud::start(&[]);
    let made = c.run(&["container", "create", "/photos", "--versioning", "none", "--quota", "1M", "--json"]).json();
    assert_eq!(made, serde_json::json!({"name": "photos", "versioning": "none", "quota": 1 << 20}));
    let head = c.container("photos");
    assert_eq!(head.status, 204);
    assert_eq!(head.header("x-container-policy-versioning").as_deref(), Some("none"));
    assert_eq!(head.header("x-container-policy-quota").as_deref(), Some("1048576"));
    c.run(&["container", "create", "photos"]).fails_with("container photos exists");
    c.run(&["container", "create", "a/b"]).fails_with("is not a container name");
    c.run(&["container", "create", "x", "--quota", "lots"]).refused_with("is not a size");
    c.put("photos", "cat.jpg", b"meow");
    let list = c.run(&["container", "list", "--json"]).json();
    let photos = list.as_array().unwrap().iter().find(|e| e["name"] == "photos").unwrap().clone();
    assert_eq!((photos["count"].clone(), photos["bytes"].clone()), (serde_json::json!(1), serde_json::json!(4)));
    assert_eq!(
        (photos["versioning"].clone(), photos["quota"].clone()),
        (serde_json::json!("none"), serde_json::json!(1 << 20))
    );
    let table = c.run(&["container", "list"]).ok().stdout.clone();
    assert!(table.lines().any(|l| l.starts_with("photos") && l.contains("1.0 MiB") && l.contains("none")), "{table}");
    // not empty: refused, nothing lost
    c.run(&["container", "delete", "photos"]).fails_with("container photos is not empty (1 object(s)): use -r");
    assert_eq!(c.get("photos", "cat.jpg").body, b"meow");
    let gone = c.run(&["container", "delete", "--force", "photos", "--json"]).json();
    assert_eq!(gone["deleted"], true);
    assert_eq!(c.container("photos").status, 404);
    c.run(&["container", "create", "empty"]).ok();
    c.run(&["container", "delete", "empty"]).ok();
    assert_eq!(c.container("empty").status, 404);
    c.run(&["container", "delete", "empty"]).fails_with("no container empty");
}

#[test]
fn quota_reports_the_limit_and_what_an_upload_uses() {
    let c = Cloud::start(&["--quota", "10485760"]);
    let before = c.run(&["quota", "--json"]).json();
    assert_eq!(before["quota"], 10485760);
    c.put("pithos", "blob", &vec![7u8; 300_000]);
    let after = c.run(&["quota", "--json"]).json();
    let used = |v: &Value| v["used"].as_u64().unwrap();
    assert_eq!(used(&after), used(&before) + 300_000);
    assert_eq!(after["available"].as_u64().unwrap(), 10485760 - used(&after));
    let text = c.run(&["quota"]).ok().stdout.clone();
    assert!(text.contains("10 MiB") && text.contains(&kib(used(&after))), "{text}");
}

/// What `quota` prints for a used size under 1 MiB.
fn kib(n: u64) -> String {
    format!("{:.0} KiB", n as f64 / 1024.0)
}

/// kamaki 0.16 from `scripts/setup-kamaki` (`PITHOSFS_KAMAKI_VENV`, default
/// `.cache/kamaki-venv`); required under CI, skipped elsewhere without it.
fn kamaki_bin() -> Option<PathBuf> {
    let venv = std::env::var_os("PITHOSFS_KAMAKI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/kamaki-venv"));
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

#[test]
fn kamaki_sees_what_the_file_commands_did_and_the_reverse() {
    let Some(kamaki) = kamaki_bin() else { return };
    let c = Cloud::start(&[]);
    let rc = c.dir.path().join("kamakirc");
    std::fs::write(&rc, "").unwrap();
    let k = |args: &[&str]| {
        let out = Command::new(&kamaki).arg("-c").arg(&rc).args(args).output().unwrap();
        assert!(out.status.success(), "kamaki {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    k(&["config", "set", "cloud.default.url", &format!("{}/identity/v2.0", c.url)]);
    k(&["config", "set", "cloud.default.token", ALICE]);
    k(&["config", "set", "default_cloud", "default"]);
    // pithosfs with nothing but kamaki's configuration
    let pithosfs = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("HOME", c.dir.path())
            .env("KAMAKI_CONFIG", &rc)
            .output()
            .unwrap();
        assert!(out.status.success(), "pithosfs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    c.put("pithos", "a.txt", b"alpha");
    // pithosfs shares and moves; kamaki sees it
    pithosfs(&["file", "share", "/pithos/a.txt", "--read", "bob"]);
    assert!(k(&["file", "info", "/pithos/a.txt", "--sharing"]).contains(&format!("read: {}", c.bob)));
    pithosfs(&["file", "mv", "/pithos/a.txt", "/pithos/renamed.txt"]);
    let listed = k(&["file", "list", "/pithos"]);
    assert!(listed.contains("renamed.txt") && !listed.contains("a.txt"), "{listed}");
    // kamaki publishes, makes a container and a folder; pithosfs sees them
    let url = k(&["file", "publish", "/pithos/renamed.txt"]).trim().to_string();
    let info: Value = serde_json::from_str(&pithosfs(&["file", "info", "/pithos/renamed.txt", "--json"])).unwrap();
    assert_eq!(info["public_url"].as_str(), Some(url.as_str()));
    assert_eq!(info["sharing"]["read"][0]["name"], "bob");
    k(&["container", "create", "kc"]);
    k(&["file", "mkdir", "/kc/dir"]);
    let containers: Value = serde_json::from_str(&pithosfs(&["container", "list", "--json"])).unwrap();
    assert!(containers.as_array().unwrap().iter().any(|e| e["name"] == "kc"), "{containers}");
    let kc: Value = serde_json::from_str(&pithosfs(&["file", "list", "/kc", "--json"])).unwrap();
    assert_eq!(names_of(&kc), pairs(&[("dir", "folder")]));
}

#[test]
fn a_server_that_ignores_the_prefix_gets_nothing_else_removed_or_moved() {
    let c = Cloud::start(&[]);
    c.put("pithos", "p/1", b"1");
    c.put("pithos", "p/2", b"2");
    c.put("pithos", "keep.txt", b"keep me");
    // The listing under p/ also names keep.txt, as a server that ignored `prefix` would.
    let proxy = Hostile::start(&c.url);
    let hits = proxy.rule(
        "listing ignores the prefix",
        |r| r.is_listing("pithos", Some("p/")),
        Action::Json(Box::new(|mut v, _| {
            if let Some(list) = v.as_array_mut() {
                list.insert(0, serde_json::json!({"name": "keep.txt", "bytes": 7, "content_type": "text/plain"}));
            }
            v
        })),
    );
    let moved = c.run_at(&proxy.identity(), &["file", "mv", "/pithos/p", "/pithos/q", "--json"]);
    moved.ok();
    assert!(hits.get() > 0, "the rule was not used");
    assert_eq!(c.names("pithos"), ["keep.txt", "q/1", "q/2"]);
    proxy.clear();
    c.put("pithos", "p/3", b"3");
    proxy.rule(
        "listing ignores the prefix",
        |r| r.is_listing("pithos", Some("p/")),
        Action::Json(Box::new(|mut v, _| {
            if let Some(list) = v.as_array_mut() {
                list.push(serde_json::json!({"name": "keep.txt", "bytes": 7, "content_type": "text/plain"}));
            }
            v
        })),
    );
    let removed = c.run_at(&proxy.identity(), &["file", "rm", "-r", "/pithos/p", "--json"]).json();
    assert_eq!(removed["removed"], serde_json::json!(["p/3"]));
    assert_eq!(c.get("pithos", "keep.txt").body, b"keep me");
}
