//! A local cloud killed with SIGKILL in the middle of writes loses nothing it
//! acknowledged and never shows a half-written object after restart.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "durable-token-0123456789";

struct Server {
    child: Child,
    url: String,
}

fn start(data: &std::path::Path, users: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pithosfs"))
        .args(["serve", "--listen", "127.0.0.1:0", "--block-size", "65536", "--data"])
        .arg(data)
        .arg("--users-file")
        .arg(users)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pithosfs serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read URL");
    assert!(line.starts_with("http://"), "unexpected first line {line:?}");
    Server { child, url: line.trim().to_string() }
}

/// The `pithos` container's URL of the test user, through Astakos.
async fn container_url(http: &reqwest::Client, url: &str) -> String {
    let body = serde_json::json!({"auth": {"token": {"id": TOKEN}}});
    let auth: serde_json::Value =
        http.post(format!("{url}/identity/v2.0/tokens")).json(&body).send().await.unwrap().json().await.unwrap();
    let account = auth["access"]["user"]["id"].as_str().unwrap().to_string();
    format!("{url}/pithos/object-store/v1/{account}/pithos")
}

fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    InFlight,
    Acked,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("durable {TOKEN}\n")).unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    // name -> (sha256 of intended content, state)
    let writes: Arc<Mutex<HashMap<String, (String, State)>>> = Arc::default();
    let mut seed = 0u64;
    for round in 0..3 {
        let mut server = start(&data, &users);
        let base = container_url(&http, &server.url).await;
        // Everything acknowledged before this restart must read back intact;
        // writes cut by the kill are absent or whole, never partial.
        let snapshot: Vec<(String, (String, State))> =
            writes.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (name, (sha, state)) in snapshot {
            let r = http.get(format!("{base}/{name}")).header("X-Auth-Token", TOKEN).send().await.unwrap();
            match (r.status().as_u16(), state) {
                (200, _) => {
                    let got = hex::encode(Sha256::digest(r.bytes().await.unwrap()));
                    assert_eq!(got, sha, "round {round}: {name} came back different");
                    writes.lock().unwrap().insert(name, (sha, State::Acked));
                }
                (404, State::InFlight) => {
                    writes.lock().unwrap().remove(&name);
                }
                (status, state) => panic!("round {round}: {name} ({state:?}) answered {status}"),
            }
        }
        // Writers: plain PUTs of fresh names, some multi-block.
        let mut tasks = Vec::new();
        for w in 0..4 {
            let (http, base, writes) = (http.clone(), base.clone(), writes.clone());
            seed += 1000;
            let start_seed = seed;
            tasks.push(tokio::spawn(async move {
                for i in 0..10_000u64 {
                    let len = ((start_seed + i) * 7919 % 300_000) as usize;
                    let data = content(start_seed + i, len);
                    let name = format!("r{round}-w{w}-{i}");
                    let sha = hex::encode(Sha256::digest(&data));
                    writes.lock().unwrap().insert(name.clone(), (sha.clone(), State::InFlight));
                    let r = http
                        .put(format!("{base}/{name}"))
                        .header("X-Auth-Token", TOKEN)
                        .header("Content-Type", "application/octet-stream")
                        .body(data)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 201 => {
                            writes.lock().unwrap().insert(name, (sha, State::Acked));
                        }
                        _ => return, // the server is gone
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700 + 300 * round as u64)).await;
        server.child.kill().expect("SIGKILL");
        let _ = server.child.wait();
        for t in tasks {
            t.await.unwrap();
        }
        let acked = writes.lock().unwrap().values().filter(|(_, s)| *s == State::Acked).count();
        assert!(acked > 0, "round {round}: no write was acknowledged before the kill");
    }
    // A final restart checks the last round.
    let mut server = start(&data, &users);
    let base = container_url(&http, &server.url).await;
    let all: Vec<(String, (String, State))> =
        writes.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut live = 0;
    for (name, (sha, state)) in all {
        let r = http.get(format!("{base}/{name}")).header("X-Auth-Token", TOKEN).send().await.unwrap();
        match r.status().as_u16() {
            200 => {
                assert_eq!(hex::encode(Sha256::digest(r.bytes().await.unwrap())), sha, "{name}");
                live += 1;
            }
            404 => assert_eq!(state, State::InFlight, "{name} was acknowledged but is gone"),
            s => panic!("{name}: {s}"),
        }
    }
    // The listing agrees with what reads found.
    let listing = http.get(&base).header("X-Auth-Token", TOKEN).send().await.unwrap().text().await.unwrap();
    assert_eq!(listing.lines().count(), live);
    assert_eq!(
        std::fs::read_dir(data.join("blocks/tmp")).unwrap().count(),
        0,
        "interrupted block writes are cleaned up"
    );
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// Group commit: block uploads in flight together are made durable in one
/// batch, and each is acknowledged only once its own block is in place. A
/// SIGKILL right amid a stream of concurrent block POSTs: after restart,
/// every block the server acknowledged is in the block directory, hashing
/// to its name, and an object made of all of them reads back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_amid_concurrent_block_uploads_keeps_every_acknowledged_block() {
    const BLOCK: usize = 65536; // the block size `start` gives the server
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("durable {TOKEN}\n")).unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let mut server = start(&data, &users);
    let base = container_url(&http, &server.url).await;
    // (hash the server returned, the block's bytes), in acknowledgement order.
    type Acked = Vec<(String, Vec<u8>)>;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000u64 {
                let block = content(((w << 32) | i) << 1, BLOCK); // distinct seeds even after `| 1`
                let r = http
                    .post(format!("{base}?update&format=json"))
                    .header("X-Auth-Token", TOKEN)
                    .header("Content-Type", "application/octet-stream")
                    .body(block.clone())
                    .send()
                    .await;
                let Some(r) = r.ok().filter(|r| r.status() == 202) else { return };
                let Ok(hashes) = r.json::<Vec<String>>().await else { return };
                assert_eq!(hashes.len(), 1, "one block, one hash");
                acked.lock().unwrap().push((hashes[0].clone(), block));
            }
        }));
    }
    // Kill as soon as a good number is acknowledged: many more are in flight.
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= 64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 64, "only {} block uploads were acknowledged before the kill", acked.len());

    let mut server = start(&data, &users);
    let base = container_url(&http, &server.url).await;
    for (hash, block) in &acked {
        assert_eq!(*hash, hex::encode(Sha256::digest(block)), "the server named the block by its SHA-256");
        let path = data.join("blocks").join(&hash[..2]).join(hash);
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("acknowledged block {hash} is gone: {e}"));
        assert_eq!(hex::encode(Sha256::digest(&stored)), *hash, "block {hash} came back different");
    }
    // Through the API as well: a hashmap of all of them needs no upload.
    let hashes: Vec<&str> = acked.iter().map(|(h, _)| h.as_str()).collect();
    let size = acked.len() * BLOCK;
    let r = http
        .put(format!("{base}/all-acknowledged?hashmap=True&format=json"))
        .header("X-Auth-Token", TOKEN)
        .header("Content-Type", "application/octet-stream")
        .body(serde_json::json!({"bytes": size, "hashes": hashes}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "missing blocks: {}", r.text().await.unwrap());
    let got = http.get(format!("{base}/all-acknowledged")).header("X-Auth-Token", TOKEN).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let got = got.bytes().await.unwrap();
    let want: Vec<u8> = acked.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert!(got[..] == want[..], "the object of the acknowledged blocks reads back different");
    assert_eq!(std::fs::read_dir(data.join("blocks/tmp")).unwrap().count(), 0, "interrupted writes are cleaned up");
    server.child.kill().unwrap();
    let _ = server.child.wait();
}
