//! `pithosfs serve` as a user runs it: the URL line, the default user and its
//! token file, `--user`, bad users files.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts, waits for the URL line, stops, and returns what was said on stderr.
fn start_and_stop(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("USER", "tester")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
    child.kill().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.wait().unwrap();
    err
}

fn running(args: &[&str]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    Serve { child, url: line.trim().to_string() }
}

async fn authenticate(url: &str, token: &str) -> reqwest::StatusCode {
    let body = serde_json::json!({"auth": {"token": {"id": token}}});
    reqwest::Client::new().post(format!("{url}/identity/v2.0/tokens")).json(&body).send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_user_token_is_made_once_and_kept_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let first = start_and_stop(&["--data", data_s]);
    let token = std::fs::read_to_string(data.join("token")).unwrap().trim().to_string();
    assert!(token.len() >= 32);
    assert!(first.contains("created user tester"), "{first}");
    assert!(first.contains(&token), "the first start tells the token");
    let mode = std::fs::metadata(data.join("token")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // a restart keeps the user and says nothing of tokens
    let second = start_and_stop(&["--data", data_s]);
    assert!(!second.contains(&token), "{second}");
    assert_eq!(std::fs::read_to_string(data.join("token")).unwrap().trim(), token);
    let s = running(&["--data", data_s]);
    assert_eq!(authenticate(&s.url, &token).await, 200);
    assert_eq!(authenticate(&s.url, "not-the-token").await, 401);
    // the database keeps only a digest of the token
    let db = std::fs::read(data.join("meta.sqlite")).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_users_and_users_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "dave dave-token-123456\n").unwrap();
    let s = running(&["--data", data_s, "--user", "carol", "--users-file", users.to_str().unwrap()]);
    let carol = std::fs::read_to_string(data.join("tokens/carol")).unwrap().trim().to_string();
    assert_eq!(authenticate(&s.url, &carol).await, 200);
    assert_eq!(authenticate(&s.url, "dave-token-123456").await, 200);
    assert!(!data.join("token").exists(), "no default user when users are named");
    // one server per data directory
    let out = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data_s])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another pithosfs serve"));
    drop(s);
    // a users file with a bad line is refused with its line number, not its token
    std::fs::write(&users, "erin\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data_s, "--users-file", users.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":1:"), "{err}");
    std::fs::write(&users, "frank secret\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data_s, "--users-file", users.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("secret"));
}

/// `--meta`: a password in the URL is refused before anything starts (a
/// command line shows in `ps`), and never repeated; an unreachable database
/// is a clear error that records nothing, so the same directory starts
/// later with a corrected URL.
#[test]
fn metadata_urls_are_checked_and_never_echo_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |url: &str| {
        Command::new(env!("CARGO_BIN_EXE_pithosfs"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(["--meta", url])
            .env("PITHOSFS_META_PASSWORD", "hunter2-env")
            .output()
            .unwrap()
    };
    let out = run("postgres://me:hunter2@127.0.0.1:1/db");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not in the URL") && !err.contains("hunter2"), "{err}");
    assert!(!data.exists(), "nothing made");
    let out = run("mysql://me@127.0.0.1/db");
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres://"));
    // Nothing listens on port 1: refused, with the reason, and no password shown.
    let out = run("postgres://me@127.0.0.1:1/db");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot be reached") && !err.contains("hunter2"), "{err}");
    assert!(!data.join("meta.backend").exists(), "a failed first start records no choice");
    // The same directory then starts on SQLite.
    let err = start_and_stop(&["--data", data.to_str().unwrap()]);
    assert!(!err.contains("hunter2"), "{err}");
    assert_eq!(std::fs::read_to_string(data.join("meta.backend")).unwrap().trim(), "sqlite");
}
