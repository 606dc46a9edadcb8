//! Pithos+ of the local cloud over real HTTP: objects, hashmaps, listings,
//! ranges, conditionals, copy/move, partial updates, versions, sharing,
//! public links, quotas, names and malformed requests.

mod common;

use common::blocks::random_bytes;
use common::{quote, TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::blocks::{self, Algorithm, BlockHash};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const HEAD: Method = Method::HEAD;
const DELETE: Method = Method::DELETE;

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

async fn json_of(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn fault_name(v: &Value) -> String {
    v.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default()
}

/// Sends a request exactly as written (no URL normalisation) and returns the reply.
async fn raw_http(tc: &TestCloud, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = tc.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

async fn small_blocks() -> TestCloud {
    TestCloud::start_with(|c| c.block_size = 4096).await
}

async fn get_bytes(tc: &TestCloud, container: &str, name: &str) -> Vec<u8> {
    let r = tc.alice(GET, &tc.object_url(container, name)).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {name}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_catalog_and_user_catalogs() {
    let tc = TestCloud::start().await;
    // public mode: catalog only
    let r = tc.http.post(format!("{}/tokens", tc.identity())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    let catalog = v["access"]["serviceCatalog"].as_array().unwrap();
    let types: Vec<&str> = catalog.iter().map(|s| s["type"].as_str().unwrap()).collect();
    for t in ["identity", "account", "object-store", "compute", "image"] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let account = catalog.iter().find(|s| s["name"] == "astakos_account").unwrap();
    assert_eq!(account["endpoints"][0]["versionId"], "v1.0");
    assert!(account["endpoints"][0]["SNF:uiURL"].is_string());
    // authenticate
    let body = json!({"auth": {"token": {"id": ALICE_TOKEN}}});
    let r = tc.http.post(format!("{}/tokens", tc.identity())).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["access"]["user"]["id"], tc.alice);
    assert_eq!(v["access"]["user"]["name"], "alice@example.org");
    assert_eq!(v["access"]["token"]["tenant"]["id"], tc.alice);
    let pithos =
        v["access"]["serviceCatalog"].as_array().unwrap().iter().find(|s| s["type"] == "object-store").unwrap();
    assert_eq!(pithos["endpoints"][0]["publicURL"], tc.pithos());
    // wrong token, wrong tenant, malformed
    let bad = json!({"auth": {"token": {"id": "not-a-token"}}});
    let r = tc.http.post(format!("{}/tokens", tc.identity())).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(fault_name(&json_of(r).await), "unauthorized");
    let tenant = json!({"auth": {"token": {"id": ALICE_TOKEN}, "tenantName": tc.bob}});
    let r = tc.http.post(format!("{}/tokens", tc.identity())).json(&tenant).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = tc.http.post(format!("{}/tokens", tc.identity())).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fault_name(&json_of(r).await), "badRequest");
    // uuid <-> name
    let q = json!({"uuids": [tc.alice, "no-such-uuid"], "displaynames": ["bob@example.org", "nobody"]});
    let r = tc.alice(POST, &format!("{}/user_catalogs", tc.account_api())).json(&q).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["uuid_catalog"], json!({ tc.alice.clone(): "alice@example.org" }));
    assert_eq!(v["displayname_catalog"], json!({ "bob@example.org": tc.bob.clone() }));
    let r = tc
        .alice(POST, &format!("{}/user_catalogs", tc.account_api()))
        .json(&json!({"uuids": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = tc.http.post(format!("{}/user_catalogs", tc.account_api())).json(&q).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // quotas
    tc.put_object("pithos", "q.bin", &[7u8; 1000]).await;
    let r = tc.alice(GET, &format!("{}/quotas", tc.account_api())).send().await.unwrap();
    let v = json_of(r).await;
    assert_eq!(v[&tc.alice]["pithos.diskspace"]["usage"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_checked() {
    let tc = TestCloud::start().await;
    let url = format!("{}/{}", tc.pithos(), tc.alice);
    let r = tc.http.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = tc.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v = json_of(r).await;
    assert_eq!(v["unauthorized"]["code"], 401);
    let r = tc.http.get(&url).header("X-Auth-Token", "wrong-token").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // the token may also come as a query parameter
    let r = tc.http.head(format!("{url}?X-Auth-Token={ALICE_TOKEN}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // bob cannot read alice's account unless something is shared
    let r = tc.bob(GET, &url).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_put_get_head_and_merkle_etag() {
    let tc = small_blocks().await;
    let data = random_bytes(4096 * 3 + 100, 1);
    let r = tc.put_object("pithos", "docs/report.bin", &data).await;
    let expected = blocks::merkle(Algorithm::Sha256, &blocks::hashmap(Algorithm::Sha256, 4096, &data)).to_hex();
    assert_eq!(header(&r, "etag"), expected);
    let version: i64 = header(&r, "x-object-version").parse().unwrap();
    let r = tc.alice(HEAD, &tc.object_url("pithos", "docs/report.bin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), data.len().to_string());
    assert_eq!(header(&r, "x-object-hash"), expected);
    assert_eq!(header(&r, "x-object-version"), version.to_string());
    assert_eq!(header(&r, "x-object-modified-by"), tc.alice);
    assert_eq!(header(&r, "content-type"), "application/octet-stream");
    assert!(!header(&r, "x-object-uuid").is_empty());
    assert!(header(&r, "last-modified").ends_with("GMT"));
    assert_eq!(get_bytes(&tc, "pithos", "docs/report.bin").await, data);
    // the hashmap matches the client-side computation
    let r = tc
        .alice(GET, &format!("{}?hashmap&format=json", tc.object_url("pithos", "docs/report.bin")))
        .send()
        .await
        .unwrap();
    let v = json_of(r).await;
    assert_eq!(v["block_size"], 4096);
    assert_eq!(v["block_hash"], "sha256");
    assert_eq!(v["bytes"], data.len());
    let want: Vec<String> = blocks::hashmap(Algorithm::Sha256, 4096, &data).iter().map(|h| h.to_hex()).collect();
    assert_eq!(v["hashes"], json!(want));
    // an ETag (MD5) that does not match is refused with 422
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "md5.txt"))
        .header("Content-Type", "text/plain")
        .header("ETag", "00000000000000000000000000000000")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "md5.txt"))
        .header("Content-Type", "text/plain")
        .header("ETag", "5d41402abc4b2a76b9719d911017c592")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "etag"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    // missing object / container
    let r = tc.alice(GET, &tc.object_url("pithos", "nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["itemNotFound"]["message"], "Object does not exist");
    let r = tc.alice(GET, &tc.object_url("nocontainer", "x")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashmap_upload_answers_missing_blocks() {
    let tc = small_blocks().await;
    let data = random_bytes(4096 * 2 + 10, 2);
    let mut hashes = blocks::hashmap(Algorithm::Sha256, 4096, &data);
    // a repeated block is asked for once
    hashes.push(hashes[0]);
    let mut data3 = data.clone();
    data3.truncate(4096 * 3);
    let mut full = data[..4096 * 2].to_vec();
    full.extend_from_slice(&data[4096 * 2..]);
    full.resize(4096 * 3, 0);
    full.extend_from_slice(&data[..4096]);
    let body = json!({"bytes": full.len(), "hashes": hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>()});
    let url = format!("{}?hashmap=True&format=json", tc.object_url("pithos", "hm.bin"));
    let r = tc.alice(PUT, &url).header("Content-Type", "application/x-test").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let missing: Vec<String> = serde_json::from_value(json_of(r).await).unwrap();
    assert_eq!(missing, hashes[..3].iter().map(|h| h.to_hex()).collect::<Vec<_>>());
    // upload the blocks one per POST, as kamaki does
    let block_url = format!("{}/{}/pithos?update&format=json", tc.pithos(), tc.alice);
    for chunk in full.chunks(4096).take(3) {
        let r = tc
            .alice(POST, &block_url)
            .header("Content-Type", "application/octet-stream")
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let got: Vec<String> = serde_json::from_value(json_of(r).await).unwrap();
        assert_eq!(got, vec![blocks::hash_block(Algorithm::Sha256, chunk).to_hex()]);
    }
    let r = tc.alice(PUT, &url).header("Content-Type", "application/x-test").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "etag"), blocks::merkle(Algorithm::Sha256, &hashes).to_hex());
    assert_eq!(get_bytes(&tc, "pithos", "hm.bin").await, full);
    // block upload leaves container metadata alone although `update` is given
    let r = tc.alice(HEAD, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(header(&r, "x-container-object-count"), "1");
    // the empty object
    let empty_url = format!("{}?hashmap=True&format=json", tc.object_url("pithos", "empty"));
    let r = tc
        .alice(PUT, &empty_url)
        .header("Content-Type", "text/plain")
        .json(&json!({"bytes": 0, "hashes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = tc.alice(GET, &empty_url).send().await.unwrap();
    let v = json_of(r).await;
    assert_eq!(v["hashes"], json!([BlockHash::empty().to_hex()]));
    assert_eq!(v["bytes"], 0);
    assert!(get_bytes(&tc, "pithos", "empty").await.is_empty());
    // malformed hashmaps
    for bad in [
        json!({"bytes": 10}),
        json!({"bytes": 10, "hashes": ["zz"]}),
        json!({"bytes": 5000, "hashes": [BlockHash::empty().to_hex()]}),
        json!({"bytes": -1, "hashes": []}),
    ] {
        let r = tc.alice(PUT, &url).header("Content-Type", "text/plain").json(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = tc.alice(PUT, &url).header("Content-Type", "text/plain").body("{nope").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_multipart() {
    let tc = small_blocks().await;
    let data = random_bytes(10_000, 3);
    tc.put_object("pithos", "r.bin", &data).await;
    let url = tc.object_url("pithos", "r.bin");
    let r = tc.alice(GET, &url).header("Range", "bytes=4000-8999").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 4000-8999/10000");
    assert_eq!(r.bytes().await.unwrap(), &data[4000..9000]);
    let r = tc.alice(GET, &url).header("Range", "bytes=-100").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[9900..]);
    let r = tc.alice(GET, &url).header("Range", "bytes=9990-").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[9990..]);
    let r = tc.alice(GET, &url).header("Range", "bytes=10000-").send().await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "content-range"), "bytes */10000");
    let r = tc.alice(GET, &url).header("Range", "bytes=5-2").send().await.unwrap();
    assert_eq!(r.status(), 416);
    // malformed Range headers are ignored: whole object
    let r = tc.alice(GET, &url).header("Range", "bytes=a-b").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 10_000);
    // several ranges: multipart/byteranges
    let r = tc.alice(GET, &url).header("Range", "bytes=0-9,5000-5009").send().await.unwrap();
    assert_eq!(r.status(), 206);
    let ctype = header(&r, "content-type");
    let boundary = ctype.split("boundary=").nth(1).unwrap().to_string();
    let body = r.bytes().await.unwrap().to_vec();
    let mut expected = Vec::new();
    expected.extend_from_slice(
        format!("--{boundary}\r\nContent-Range: bytes 0-9/10000\r\nContent-Transfer-Encoding: binary\r\n\r\n")
            .as_bytes(),
    );
    expected.extend_from_slice(&data[0..10]);
    expected.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Range: bytes 5000-5009/10000\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        )
        .as_bytes(),
    );
    expected.extend_from_slice(&data[5000..5010]);
    expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    assert_eq!(body, expected);
    // If-Range with a stale ETag drops the range
    let r = tc.alice(GET, &url).header("Range", "bytes=0-9").header("If-Range", "deadbeef").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = header(&tc.alice(HEAD, &url).send().await.unwrap(), "etag");
    let r = tc.alice(GET, &url).header("Range", "bytes=0-9").header("If-Range", &etag).send().await.unwrap();
    assert_eq!(r.status(), 206);
    // any range of an empty object is unsatisfiable
    tc.put_object("pithos", "zero", b"").await;
    let r = tc.alice(GET, &tc.object_url("pithos", "zero")).header("Range", "bytes=0-0").send().await.unwrap();
    assert_eq!(r.status(), 416);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_requests() {
    let tc = TestCloud::start().await;
    tc.put_object("pithos", "c.txt", b"hello").await;
    let url = tc.object_url("pithos", "c.txt");
    let etag = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let r = tc.alice(GET, &url).header("If-None-Match", etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag"), etag);
    let r = tc.alice(GET, &url).header("If-None-Match", format!("\"{etag}\"")).send().await.unwrap();
    assert_eq!(r.status(), 304);
    let r = tc.alice(GET, &url).header("If-Match", "abc").send().await.unwrap();
    assert_eq!(r.status(), 412);
    let r = tc.alice(GET, &url).header("If-Match", etag).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = tc.alice(HEAD, &url).header("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT").send().await.unwrap();
    assert_eq!(r.status(), 304);
    let r = tc.alice(GET, &url).header("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT").send().await.unwrap();
    assert_eq!(r.status(), 412);
    // kamaki sends float epochs here: ignored, never 400
    let r = tc.alice(GET, &url).header("If-Modified-Since", "1484388123.42").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // If-None-Match: * on PUT means "create only"
    let r = tc
        .alice(PUT, &url)
        .header("Content-Type", "text/plain")
        .header("If-None-Match", "*")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = tc
        .alice(PUT, &url)
        .header("Content-Type", "text/plain")
        .header("If-Match", "abc")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = tc
        .alice(PUT, &url)
        .header("Content-Type", "text/plain")
        .header("If-Match", etag)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_bytes(&tc, "pithos", "c.txt").await, b"x");
    // container conditionals
    let curl = format!("{}/{}/pithos", tc.pithos(), tc.alice);
    let r = tc.alice(HEAD, &curl).header("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT").send().await.unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings() {
    let tc = TestCloud::start().await;
    for name in ["a.txt", "photos/2019/x.jpg", "photos/2019/y.jpg", "photos/cat.jpg", "photos.txt", "zeta/"] {
        tc.put_object("pithos", name, name.as_bytes()).await;
    }
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "photos"))
        .header("Content-Type", "application/directory")
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let base = format!("{}/{}/pithos", tc.pithos(), tc.alice);
    let (tc, base) = (&tc, &base);
    let text = |q: &str| {
        let url = format!("{base}?{q}");
        async move { tc.alice(GET, &url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(
        text("").await,
        "a.txt\nphotos\nphotos.txt\nphotos/2019/x.jpg\nphotos/2019/y.jpg\nphotos/cat.jpg\nzeta/\n"
    );
    assert_eq!(text("delimiter=/").await, "a.txt\nphotos\nphotos.txt\nphotos/\nzeta/\n");
    assert_eq!(text("prefix=photos/&delimiter=/").await, "photos/2019/\nphotos/cat.jpg\n");
    // Pithos appends the delimiter to a prefix that lacks it
    assert_eq!(text("prefix=photos&delimiter=/").await, "photos/2019/\nphotos/cat.jpg\n");
    assert_eq!(text("path=photos").await, "photos/cat.jpg\n");
    assert_eq!(text("prefix=photos/").await, "photos/2019/x.jpg\nphotos/2019/y.jpg\nphotos/cat.jpg\n");
    assert_eq!(text("marker=photos.txt&limit=2").await, "photos/2019/x.jpg\nphotos/2019/y.jpg\n");
    // a marker equal to a roll-up skips the whole folder
    assert_eq!(text("delimiter=/&marker=photos/").await, "zeta/\n");
    // JSON
    let r = tc.alice(GET, &format!("{base}?format=json&prefix=photos/&delimiter=/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v[0], json!({"subdir": "photos/2019/"}));
    assert_eq!(v[1]["name"], "photos/cat.jpg");
    assert_eq!(v[1]["bytes"], 14);
    assert_eq!(v[1]["content_type"], "application/octet-stream");
    assert!(v[1]["last_modified"].as_str().unwrap().ends_with("+00:00"));
    assert!(v[1]["x_object_version_timestamp"].as_str().unwrap().parse::<f64>().is_ok());
    assert_eq!(v[1]["x_object_hash"].as_str().unwrap().len(), 64);
    let r = tc.alice(GET, &format!("{base}?format=json&prefix=none/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!([]));
    let r = tc.alice(GET, &format!("{base}?prefix=none/")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // container listing of the account
    let r = tc.alice(GET, &format!("{}/{}?format=json", tc.pithos(), tc.alice)).send().await.unwrap();
    let v = json_of(r).await;
    assert_eq!(v[0]["name"], "pithos");
    assert_eq!(v[0]["count"], 7);
    assert_eq!(v[0]["x_container_policy"]["versioning"], "auto");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_past_ten_thousand() {
    let tc = TestCloud::start().await;
    tc.bulk_objects("pithos", "f/", 10_050).await;
    let base = format!("{}/{}/pithos?format=json", tc.pithos(), tc.alice);
    let r = tc.alice(GET, &base).send().await.unwrap();
    let first = json_of(r).await;
    assert_eq!(first.as_array().unwrap().len(), 10_000);
    let last = first[9999]["name"].as_str().unwrap().to_string();
    assert_eq!(last, "f/09999");
    let r = tc.alice(GET, &format!("{base}&marker={}", quote(&last))).send().await.unwrap();
    let second = json_of(r).await;
    let names: Vec<&str> = second.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 50);
    assert_eq!(names[0], "f/10000");
    assert_eq!(names[49], "f/10049");
    let r = tc.alice(HEAD, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(header(&r, "x-container-object-count"), "10050");
    // a delimiter listing of 10,050 children of one folder rolls them up
    let r = tc.alice(GET, &format!("{base}&delimiter=/")).send().await.unwrap();
    assert_eq!(json_of(r).await, json!([{"subdir": "f/"}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_meta_filters() {
    let tc = TestCloud::start().await;
    let url = tc.object_url("pithos", "m.txt");
    let r = tc
        .alice(PUT, &url)
        .header("Content-Type", "text/plain")
        .header("X-Object-Meta-my_key", "v1")
        .header("X-Object-Meta-Greek", "%CE%B1%CE%B2%25")
        .body("m")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = tc.alice(HEAD, &url).send().await.unwrap();
    assert_eq!(header(&r, "x-object-meta-my-key"), "v1");
    // values are percent-encoded on the way out, `%` included
    assert_eq!(header(&r, "x-object-meta-greek"), "%CE%B1%CE%B2%25");
    // POST ?update merges; an empty value deletes
    let r = tc
        .alice(POST, &format!("{url}?update"))
        .header("X-Object-Meta-Color", "blue")
        .header("X-Object-Meta-My-Key", "")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(!header(&r, "x-object-version").is_empty());
    let r = tc.alice(HEAD, &url).send().await.unwrap();
    assert_eq!(header(&r, "x-object-meta-color"), "blue");
    assert_eq!(header(&r, "x-object-meta-my-key"), "");
    // POST without update replaces everything
    let r = tc.alice(POST, &url).header("X-Object-Meta-Only", "this").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = tc.alice(HEAD, &url).send().await.unwrap();
    assert_eq!(header(&r, "x-object-meta-only"), "this");
    assert_eq!(header(&r, "x-object-meta-color"), "");
    tc.put_object("pithos", "plain.txt", b"p").await;
    let base = format!("{}/{}/pithos", tc.pithos(), tc.alice);
    let r = tc.alice(GET, &format!("{base}?meta=only")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "m.txt\n");
    let r = tc.alice(GET, &format!("{base}?meta=!only")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "plain.txt\n");
    let r = tc.alice(GET, &format!("{base}?meta=only=this")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "m.txt\n");
    let r = tc.alice(GET, &format!("{base}?format=json&meta=only")).send().await.unwrap();
    assert_eq!(json_of(r).await[0]["x_object_meta_only"], "this");
    let r = tc.alice(HEAD, &base).send().await.unwrap();
    assert_eq!(header(&r, "x-container-object-meta"), "Only");
    // too many or too long
    let r =
        tc.alice(POST, &format!("{url}?update")).header("X-Object-Meta-Long", "x".repeat(300)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // account metadata and groups
    let acct = format!("{}/{}", tc.pithos(), tc.alice);
    let r = tc
        .alice(POST, &format!("{acct}?update"))
        .header("X-Account-Meta-Color", "red")
        .header("X-Account-Group-Friends", format!("{}, {}", tc.bob, tc.bob))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = tc.alice(HEAD, &acct).send().await.unwrap();
    assert_eq!(header(&r, "x-account-meta-color"), "red");
    assert_eq!(header(&r, "x-account-group-friends"), tc.bob);
    assert_eq!(header(&r, "x-account-container-count"), "1");
    let r = tc
        .alice(POST, &format!("{acct}?update"))
        .header("X-Account-Group-Bad-Name", tc.bob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r =
        tc.alice(POST, &format!("{acct}?update")).header("X-Account-Group-Ghosts", "not-a-user").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // container metadata and policies
    let c = format!("{acct}/box");
    let r = tc
        .alice(PUT, &c)
        .header("X-Container-Policy-Versioning", "none")
        .header("X-Container-Meta-Kind", "tests")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = tc.alice(PUT, &c).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = tc.alice(HEAD, &c).send().await.unwrap();
    assert_eq!(header(&r, "x-container-policy-versioning"), "none");
    assert_eq!(header(&r, "x-container-meta-kind"), "tests");
    assert_eq!(header(&r, "x-container-block-hash"), "sha256");
    let r = tc
        .alice(POST, &format!("{c}?update"))
        .header("X-Container-Policy-Versioning", "sometimes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = tc.alice(POST, &format!("{c}?update")).header("X-Container-Policy-Quota", "-5").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_move_including_folders() {
    let tc = TestCloud::start().await;
    for n in ["src/a.txt", "src/sub/b.txt", "srcx.txt"] {
        tc.put_object("pithos", n, n.as_bytes()).await;
    }
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "src"))
        .header("Content-Type", "application/directory")
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let tc = &tc;
    let uuid_of = |name: &str| {
        let url = tc.object_url("pithos", name);
        async move { header(&tc.alice(HEAD, &url).send().await.unwrap(), "x-object-uuid") }
    };
    let a_uuid = uuid_of("src/a.txt").await;
    // copy: new UUID, same data, meta updated
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "copy.txt"))
        .header("X-Copy-From", "/pithos/src/a.txt")
        .header("Content-Length", "0")
        .header("X-Object-Meta-Copied", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(!header(&r, "x-object-version").is_empty());
    assert_eq!(get_bytes(tc, "pithos", "copy.txt").await, b"src/a.txt");
    assert_ne!(uuid_of("copy.txt").await, a_uuid);
    // move a whole folder in one request; UUIDs survive
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "dst"))
        .header("X-Move-From", "/pithos/src")
        .header("Content-Length", "0")
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let listing =
        tc.alice(GET, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap().text().await.unwrap();
    assert_eq!(listing, "copy.txt\ndst\ndst/a.txt\ndst/sub/b.txt\nsrcx.txt\n");
    assert_eq!(uuid_of("dst/a.txt").await, a_uuid);
    assert_eq!(get_bytes(tc, "pithos", "dst/sub/b.txt").await, b"src/sub/b.txt");
    // the COPY method with Destination, into another container
    let r = tc.alice(PUT, &format!("{}/{}/other", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = tc
        .alice(Method::from_bytes(b"COPY").unwrap(), &tc.object_url("pithos", "srcx.txt"))
        .header("Destination", "/other/y.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_bytes(tc, "other", "y.txt").await, b"srcx.txt");
    let r = tc
        .alice(Method::from_bytes(b"MOVE").unwrap(), &tc.object_url("pithos", "srcx.txt"))
        .header("Destination", "/other/z.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = tc.alice(HEAD, &tc.object_url("pithos", "srcx.txt")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // bad sources
    for bad in ["nocontainer", "/pithos", "/pithos/"] {
        let r = tc
            .alice(PUT, &tc.object_url("pithos", "x"))
            .header("X-Copy-From", bad)
            .header("Content-Length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "x"))
        .header("X-Copy-From", "/pithos/missing")
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = tc.alice(Method::from_bytes(b"COPY").unwrap(), &tc.object_url("other", "y.txt")).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_updates_append_truncate_and_source_object() {
    let tc = small_blocks().await;
    let data = random_bytes(10_000, 4);
    tc.put_object("pithos", "p.bin", &data).await;
    let url = tc.object_url("pithos", "p.bin");
    let mut want = data.clone();
    // overwrite a range across a block boundary
    let patch = vec![0xAB; 200];
    let r = tc
        .alice(POST, &format!("{url}?update"))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "bytes 4000-4199/*")
        .body(patch.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    want[4000..4200].copy_from_slice(&patch);
    assert_eq!(get_bytes(&tc, "pithos", "p.bin").await, want);
    let etag = blocks::merkle(Algorithm::Sha256, &blocks::hashmap(Algorithm::Sha256, 4096, &want)).to_hex();
    assert_eq!(header(&r, "etag"), etag);
    // append
    let tail = random_bytes(5000, 5);
    let r = tc
        .alice(POST, &format!("{url}?update"))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "bytes */*")
        .body(tail.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    want.extend_from_slice(&tail);
    assert_eq!(get_bytes(&tc, "pithos", "p.bin").await, want);
    // truncate as kamaki does: the object is its own source
    let r = tc
        .alice(POST, &format!("{url}?update"))
        .header("Content-Type", "application/octet-stream")
        .header("X-Source-Object", "/pithos/p.bin")
        .header("Content-Range", "bytes 0-4999/*")
        .header("X-Object-Bytes", "5000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    want.truncate(5000);
    assert_eq!(get_bytes(&tc, "pithos", "p.bin").await, want);
    // write from another object
    tc.put_object("pithos", "src.bin", b"0123456789").await;
    let r = tc
        .alice(POST, &format!("{url}?update"))
        .header("Content-Type", "application/octet-stream")
        .header("X-Source-Object", "/pithos/src.bin")
        .header("Content-Range", "bytes 10-14/*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    want[10..15].copy_from_slice(b"01234");
    assert_eq!(get_bytes(&tc, "pithos", "p.bin").await, want);
    // errors
    let (tc, url) = (&tc, &url);
    let post = |range: &'static str, body: &'static [u8]| {
        let u = format!("{url}?update");
        async move {
            tc.alice(POST, &u)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", range)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post("bytes 9000-9001/*", b"xy").await, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(post("bytes 5-4/*", b"xy").await, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(post("bytes 0-1/10", b"xy").await, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(post("bytes 0-9/*", b"xy").await, StatusCode::BAD_REQUEST);
    assert_eq!(post("lines 1-2", b"xy").await, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(get_bytes(tc, "pithos", "p.bin").await, want, "failed updates change nothing");
    // metadata-only POST on a missing object
    let r = tc.alice(POST, &tc.object_url("pithos", "ghost")).header("X-Object-Meta-A", "b").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_history_and_policy() {
    let tc = TestCloud::start().await;
    let r1 = tc.put_object("pithos", "v.txt", b"one").await;
    let v1 = header(&r1, "x-object-version");
    tc.put_object("pithos", "v.txt", b"two").await;
    let url = tc.object_url("pithos", "v.txt");
    let r = tc.alice(GET, &format!("{url}?version=list&format=json")).send().await.unwrap();
    let v = json_of(r).await;
    let list = v["versions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0][0].to_string(), v1);
    assert!(list[0][1].as_str().unwrap().parse::<f64>().is_ok());
    let r = tc.alice(GET, &format!("{url}?version={v1}")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "one");
    let r = tc.alice(GET, &format!("{url}?version=999999")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = tc.alice(GET, &format!("{url}?version=abc")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // copy from an old version
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "restored.txt"))
        .header("X-Copy-From", "/pithos/v.txt")
        .header("X-Source-Version", &v1)
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_bytes(&tc, "pithos", "restored.txt").await, b"one");
    // deleted objects vanish but keep their history
    let r = tc.alice(DELETE, &url).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(tc.alice(GET, &url).send().await.unwrap().status(), 404);
    let r = tc.alice(GET, &format!("{url}?version={v1}")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "one");
    assert_eq!(tc.alice(DELETE, &url).send().await.unwrap().status(), 404);
    // `until` lists the past
    let past = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string();
    let base = format!("{}/{}/pithos", tc.pithos(), tc.alice);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    tc.put_object("pithos", "later.txt", b"later").await;
    let r = tc.alice(GET, &format!("{base}?until={past}")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "restored.txt\n");
    let r = tc.alice(GET, &base).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "later.txt\nrestored.txt\n");
    // versioning none keeps no history
    let r = tc
        .alice(PUT, &format!("{}/{}/flat", tc.pithos(), tc.alice))
        .header("X-Container-Policy-Versioning", "none")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    tc.put_object("flat", "f", b"1").await;
    tc.put_object("flat", "f", b"2").await;
    let r = tc.alice(GET, &format!("{}?version=list&format=json", tc.object_url("flat", "f"))).send().await.unwrap();
    assert_eq!(json_of(r).await["versions"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_groups_and_inheritance() {
    let tc = TestCloud::start().await;
    tc.put_object("pithos", "private.txt", b"secret").await;
    tc.put_object("pithos", "shared.txt", b"for bob").await;
    let shared = tc.object_url("pithos", "shared.txt");
    assert_eq!(tc.bob(GET, &shared).send().await.unwrap().status(), 403);
    let r = tc
        .alice(POST, &format!("{shared}?update"))
        .header("X-Object-Sharing", format!("read={}", tc.bob))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = tc.alice(HEAD, &shared).send().await.unwrap();
    assert_eq!(header(&r, "x-object-sharing"), format!("read={}", tc.bob));
    let r = tc.bob(GET, &shared).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-object-allowed-to"), "read");
    assert_eq!(r.text().await.unwrap(), "for bob");
    assert_eq!(tc.bob(GET, &tc.object_url("pithos", "private.txt")).send().await.unwrap().status(), 403);
    let r = tc.bob(PUT, &shared).header("Content-Type", "text/plain").body("overwrite").send().await.unwrap();
    assert_eq!(r.status(), 403);
    // bob sees alice among the sharers, and only the shared object in her container
    let r = tc.bob(GET, &format!("{}/?format=json", tc.pithos())).send().await.unwrap();
    let v = json_of(r).await;
    assert_eq!(
        v.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect::<Vec<_>>(),
        vec![tc.alice.as_str()]
    );
    let r = tc.bob(GET, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "shared.txt\n");
    let r = tc.bob(GET, &format!("{}/{}", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "pithos\n");
    // only the owner may change sharing or delete
    let r = tc.bob(POST, &format!("{shared}?update")).header("X-Object-Sharing", "read=*").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(tc.bob(DELETE, &shared).send().await.unwrap().status(), 403);
    // write through a group, inherited from a folder
    let acct = format!("{}/{}", tc.pithos(), tc.alice);
    let r =
        tc.alice(POST, &format!("{acct}?update")).header("X-Account-Group-Team", tc.bob.clone()).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "team"))
        .header("Content-Type", "application/directory")
        .header("Content-Length", "0")
        .header("X-Object-Sharing", format!("write={}:team", tc.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inside = tc.object_url("pithos", "team/notes.txt");
    let r = tc.bob(PUT, &inside).header("Content-Type", "text/plain").body("bob wrote this").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = tc.alice(HEAD, &inside).send().await.unwrap();
    assert_eq!(header(&r, "x-object-modified-by"), tc.bob);
    let r = tc.bob(HEAD, &inside).send().await.unwrap();
    assert_eq!(header(&r, "x-object-allowed-to"), "write");
    assert_eq!(header(&r, "x-object-shared-by"), format!("{}/pithos/team", tc.alice));
    // removing the sharing takes access away
    let r = tc.alice(POST, &format!("{shared}?update")).header("X-Object-Sharing", "").send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(tc.bob(GET, &shared).send().await.unwrap().status(), 403);
    let r = tc
        .alice(POST, &format!("{shared}?update"))
        .header("X-Object-Sharing", "execute=everyone")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_links() {
    let tc = TestCloud::start().await;
    tc.put_object("pithos", "pub/page.html", b"<h1>hi</h1>").await;
    let url = tc.object_url("pithos", "pub/page.html");
    let r = tc.alice(POST, &format!("{url}?update")).header("X-Object-Public", "True").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = tc.alice(HEAD, &url).send().await.unwrap();
    let public = header(&r, "x-object-public");
    assert!(public.starts_with(&format!("{}/pithos/public/", tc.url)), "{public}");
    let r = tc.http.get(&public).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().keys().all(|k| !k.as_str().starts_with("x-object-")));
    assert_eq!(r.text().await.unwrap(), "<h1>hi</h1>");
    let r = tc.http.get(&public).header("Range", "bytes=4-5").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "hi");
    // bob does not see the public URL
    let r = tc
        .alice(POST, &format!("{url}?update"))
        .header("X-Object-Sharing", format!("read={}", tc.bob))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = tc.bob(HEAD, &url).send().await.unwrap();
    assert_eq!(header(&r, "x-object-public"), "");
    // listing flag
    let r = tc.alice(GET, &format!("{}/{}/pithos?public", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "pub/page.html\n");
    assert_eq!(tc.http.post(&public).send().await.unwrap().status(), 405);
    let r = tc.alice(POST, &format!("{url}?update")).header("X-Object-Public", "maybe").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = tc.alice(POST, &format!("{url}?update")).header("X-Object-Public", "False").send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(tc.http.get(&public).send().await.unwrap().status(), 404);
    let reply =
        raw_http(&tc, "GET /pithos/public/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_enforced() {
    let tc = TestCloud::start_with(|c| c.quota = 10_000).await;
    tc.put_object("pithos", "a", &[1u8; 6000]).await;
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "b"))
        .header("Content-Type", "x/y")
        .body(vec![2u8; 6000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(json_of(r).await["requestEntityTooLarge"]["message"].as_str().unwrap().starts_with("Quota error"));
    // replacing an object counts only the difference
    tc.put_object("pithos", "a", &[1u8; 9000]).await;
    // a copy counts too
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "c"))
        .header("X-Copy-From", "/pithos/a")
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // container quota policy
    let c = format!("{}/{}/small", tc.pithos(), tc.alice);
    assert_eq!(tc.alice(PUT, &c).header("X-Container-Policy-Quota", "100").send().await.unwrap().status(), 201);
    let r = tc
        .alice(PUT, &tc.object_url("small", "x"))
        .header("Content-Type", "x/y")
        .body(vec![0u8; 101])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // nothing was stored by refused writes
    let r = tc.alice(HEAD, &format!("{}/{}", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(header(&r, "x-account-bytes-used"), "9000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_unicode_slashes_and_limits() {
    let tc = TestCloud::start().await;
    for name in ["ελληνικά/αρχείο.txt", "with space & 100%.txt", "trailing/", "a//b"] {
        tc.put_object("pithos", name, name.as_bytes()).await;
        assert_eq!(get_bytes(&tc, "pithos", name).await, name.as_bytes(), "{name}");
    }
    // Dot segments sent as they are (HTTP clients would resolve them): the
    // server takes `../../escape` as a name, which lives only in the database.
    let path = format!("/pithos/object-store/v1/{}/pithos/../../escape", tc.alice);
    let put = format!("PUT {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
    assert!(raw_http(&tc, &put).await.starts_with("HTTP/1.1 201"));
    let get = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ALICE_TOKEN}\r\nConnection: close\r\n\r\n");
    let reply = raw_http(&tc, &get).await;
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("\r\n\r\nx"), "{reply}");
    assert!(!tc.dir.path().join("escape").exists());
    assert!(!tc.dir.path().join("data/escape").exists());
    // Object names: Synnefo's 1,024 bytes and more, up to 8,192 (PATH_MAX twice).
    let long = "n".repeat(8193);
    let r =
        tc.alice(PUT, &tc.object_url("pithos", &long)).header("Content-Type", "x/y").body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    tc.put_object("pithos", &"n".repeat(8192), b"ok").await;
    let r = tc.alice(PUT, &format!("{}/{}/{}", tc.pithos(), tc.alice, "c".repeat(257))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "nul\0byte"))
        .header("Content-Type", "x/y")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // JSON listings carry the exact names
    let r = tc
        .alice(GET, &format!("{}/{}/pithos?format=json&prefix={}", tc.pithos(), tc.alice, quote("ελληνικά/")))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await[0]["name"], "ελληνικά/αρχείο.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_4xx() {
    let tc = TestCloud::start().await;
    let url = tc.object_url("pithos", "x");
    // missing Content-Type (a faithful Pithos quirk: 411)
    let r = tc.alice(PUT, &url).body("x").send().await.unwrap();
    assert_eq!(r.status(), 411);
    assert_eq!(fault_name(&json_of(r).await), "lengthRequired");
    // wrong methods
    let r = tc.alice(Method::PATCH, &url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(header(&r, "allow").contains("GET"));
    let r = tc.alice(PUT, &format!("{}/{}", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // unknown endpoints
    let r = tc.alice(GET, &format!("{}/nothing/here", tc.url)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["badRequest"]["message"], "API endpoint not found");
    // raw non-ASCII header values
    let r = tc
        .alice(PUT, &url)
        .header("Content-Type", "text/plain")
        .header("X-Object-Meta-Raw", reqwest::header::HeaderValue::from_bytes(b"\xce\xb1").unwrap())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // a bad Content-Length is refused before anything is stored
    let r = tc
        .alice(PUT, &url)
        .header("Content-Type", "text/plain")
        .header("X-Copy-From", "/pithos/y")
        .send()
        .await
        .unwrap();
    assert!(r.status() == 411 || r.status() == 404, "{}", r.status());
    let r = tc.alice(DELETE, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 204, "an empty container can be deleted");
    let r = tc.alice(PUT, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    tc.put_object("pithos", "keep", b"k").await;
    let r = tc.alice(DELETE, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 409);
    // kamaki's `container delete -r`: empty it with a delimiter, then delete with a float until
    let r = tc.alice(DELETE, &format!("{}/{}/pithos?delimiter=/", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = tc.alice(DELETE, &format!("{}/{}/pithos?until=1484388123.42", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(tc.alice(HEAD, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap().status(), 404);
    let _ = BOB_TOKEN;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_delimiter_removes_a_folder() {
    let tc = TestCloud::start().await;
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "d"))
        .header("Content-Type", "application/directory")
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for n in ["d/1", "d/e/2", "dx"] {
        tc.put_object("pithos", n, b"x").await;
    }
    let r = tc.alice(DELETE, &format!("{}?delimiter=/", tc.object_url("pithos", "d"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = tc.alice(GET, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "dx\n");
    let r = tc.alice(DELETE, &format!("{}?delimiter=/", tc.object_url("pithos", "nothing"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers() {
    let tc = std::sync::Arc::new(small_blocks().await);
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let tc = tc.clone();
        tasks.push(tokio::spawn(async move {
            let data = random_bytes(20_000 + i as usize * 977, 100 + i);
            let name = format!("conc/{i}");
            tc.put_object("pithos", &name, &data).await;
            for _ in 0..3 {
                assert_eq!(get_bytes(&tc, "pithos", &name).await, data);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = tc.alice(HEAD, &format!("{}/{}/pithos", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(header(&r, "x-container-object-count"), "8");
}
