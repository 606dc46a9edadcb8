//! Cyclades compute of the local cloud over real HTTP: flavors, servers and
//! their lazy state machine, metadata, actions, tags, isolation and faults.

mod common;

use common::{quote, TestCloud};
use pithosfs::cloud::wire::{iso_date, now};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::time::Duration;

const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const DELETE: Method = Method::DELETE;

async fn json_of(r: Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn fault_name(v: &Value) -> String {
    v.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default()
}

/// Asserts a Synnefo fault: status, single fault key with the same code.
async fn expect_fault(r: Response, status: u16, name: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    let v = json_of(r).await;
    assert_eq!(fault_name(&v), name, "fault {v}");
    assert_eq!(v[name]["code"], status, "fault code {v}");
    v
}

fn with_json(b: RequestBuilder, v: &Value) -> RequestBuilder {
    b.header("Content-Type", "application/json").body(serde_json::to_vec(v).unwrap())
}

fn changed_since(url: &str, date: &str) -> String {
    format!("{url}?changes-since={}", quote(date))
}

fn url(tc: &TestCloud, path: &str) -> String {
    format!("{}{}", tc.compute(), path)
}

/// Uploads an object of alice's and registers it as an image with os/users.
async fn alice_image(tc: &TestCloud, name: &str) -> String {
    tc.put_object("pithos", name, b"not really a disk").await;
    let r = tc
        .alice(POST, &format!("{}/images/", tc.image()))
        .header("X-Image-Meta-Name", name)
        .header("X-Image-Meta-Location", format!("pithos://{}/pithos/{}", tc.alice, name))
        .header("X-Image-Meta-Property-OS", "debian")
        .header("X-Image-Meta-Property-Users", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "register {name}");
    r.headers()["x-image-meta-id"].to_str().unwrap().to_string()
}

async fn create(tc: &TestCloud, body: Value) -> Response {
    with_json(tc.alice(POST, &url(tc, "/servers")), &body).send().await.unwrap()
}

/// Creates a server of alice's from `image` and returns the 202 body's server.
async fn create_server(tc: &TestCloud, name: &str, image: &str) -> Value {
    let r = create(
        tc,
        json!({"server": {"name": name, "imageRef": image, "flavorRef": 1,
                          "metadata": {"os": "debian", "users": "root"}}}),
    )
    .await;
    assert_eq!(r.status(), 202);
    json_of(r).await["server"].clone()
}

async fn server(tc: &TestCloud, id: &Value) -> Value {
    let r = tc.alice(GET, &url(tc, &format!("/servers/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    json_of(r).await["server"].clone()
}

/// Polls until the server reports `status` (transitions take build_seconds = 0.5).
async fn wait_for(tc: &TestCloud, id: &Value, status: &str) -> Value {
    for _ in 0..200 {
        let s = server(tc, id).await;
        if s["status"] == status {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server {id} never reached {status}");
}

async fn act(tc: &TestCloud, id: &Value, body: Value) -> Response {
    with_json(tc.alice(POST, &url(tc, &format!("/servers/{id}/action"))), &body).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flavors_list_detail_and_errors() {
    let tc = TestCloud::start().await;
    let v = json_of(tc.alice(GET, &url(&tc, "/flavors")).send().await.unwrap()).await;
    let flavors = v["flavors"].as_array().unwrap();
    assert_eq!(flavors.len(), 6);
    assert_eq!(flavors[0]["id"], 1);
    assert_eq!(flavors[0]["name"], "C1R1024D20drbd");
    assert_eq!(flavors[0]["links"][0]["href"], url(&tc, "/flavors/1"));
    assert!(flavors[0].get("ram").is_none(), "no details in the plain list");

    let r = tc.alice(GET, &url(&tc, "/flavors/detail.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let detail = json_of(r).await;
    let third = &detail["flavors"][2];
    assert_eq!(
        (third["vcpus"].clone(), third["ram"].clone(), third["disk"].clone()),
        (json!(2), json!(2048), json!(40))
    );
    assert_eq!(third["SNF:disk_template"], "drbd");
    assert_eq!(third["os-flavor-access:is_public"], true);

    let one = json_of(tc.alice(GET, &url(&tc, "/flavors/4")).send().await.unwrap()).await;
    assert_eq!(one["flavor"]["name"], "C2R4096D40drbd");
    assert_eq!(one["flavor"]["ram"], 4096);

    expect_fault(tc.alice(GET, &url(&tc, "/flavors/99")).send().await.unwrap(), 404, "itemNotFound").await;
    expect_fault(tc.alice(GET, &url(&tc, "/flavors/large")).send().await.unwrap(), 400, "badRequest").await;
    let r = tc.alice(POST, &url(&tc, "/flavors")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET");
    expect_fault(r, 405, "notAllowed").await;
    let hidden = json_of(tc.alice(GET, &url(&tc, "/flavors?SNF:is_public=false")).send().await.unwrap()).await;
    assert_eq!(hidden["flavors"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_synnefo_shaped() {
    let tc = TestCloud::start().await;
    let r = tc.http.get(url(&tc, "/servers")).send().await.unwrap();
    expect_fault(r, 401, "unauthorized").await;
    let r = tc.http.get(url(&tc, "/servers")).header("X-Auth-Token", "nope").send().await.unwrap();
    let v = expect_fault(r, 401, "unauthorized").await;
    assert_eq!(v["unauthorized"]["message"], "Invalid token");

    let v = expect_fault(tc.alice(GET, &url(&tc, "/nothing/here")).send().await.unwrap(), 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "API endpoint not found");
    expect_fault(tc.alice(GET, &url(&tc, "/servers/abc")).send().await.unwrap(), 400, "badRequest").await;
    let r = tc.alice(DELETE, &url(&tc, "/servers")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET, POST");
    expect_fault(r, 405, "notAllowed").await;

    let body = serde_json::to_vec(&json!({"server": {"name": "x", "imageRef": "i", "flavorRef": 1}})).unwrap();
    let r = tc.alice(POST, &url(&tc, "/servers")).body(body.clone()).send().await.unwrap();
    let v = expect_fault(r, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Missing Content-Type header field");
    let r = tc.alice(POST, &url(&tc, "/servers")).header("Content-Type", "text/plain").body(body).send().await.unwrap();
    let v = expect_fault(r, 400, "badRequest").await;
    assert!(v["badRequest"]["message"].as_str().unwrap().contains("Unsupported Content-type"));

    let r = tc
        .alice(POST, &url(&tc, "/servers"))
        .header("Content-Type", "application/json")
        .body("{\"server\": {")
        .send()
        .await
        .unwrap();
    let v = expect_fault(r, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Could not decode request body as JSON");

    let v = expect_fault(create(&tc, json!({"server": {"name": "x", "flavorRef": 1}})).await, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Malformed request");
    expect_fault(create(&tc, json!({"nothing": {}})).await, 400, "badRequest").await;
    expect_fault(tc.alice(GET, &url(&tc, "/servers/12345")).send().await.unwrap(), 404, "itemNotFound").await;

    let root = json_of(tc.alice(GET, &format!("{}/", tc.compute())).send().await.unwrap()).await;
    assert_eq!(root["version"]["id"], "v2.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_lifecycle() {
    let tc = TestCloud::start().await;
    let image = alice_image(&tc, "debian.diskdump").await;

    // kamaki first reads the image to copy os/users into the server metadata.
    let img = json_of(tc.alice(GET, &url(&tc, &format!("/images/{image}"))).send().await.unwrap()).await;
    assert_eq!(img["image"]["metadata"], json!({"os": "debian", "users": "root"}));

    let created = create_server(&tc, "web1", &image).await;
    let id = created["id"].clone();
    assert!(id.is_u64(), "numeric id: {id}");
    assert_eq!(created["status"], "BUILD");
    assert_eq!(created["name"], "web1");
    assert_eq!(created["user_id"], tc.alice.as_str());
    assert_eq!(created["tenant_id"], tc.alice.as_str());
    assert_eq!(created["flavor"]["id"], 1);
    assert_eq!(created["image"]["id"], image.as_str());
    assert_eq!(created["image"]["links"][2]["href"], format!("{}/images/{image}", tc.image()));
    assert_eq!(created["metadata"], json!({"os": "debian", "users": "root"}));
    assert_eq!(created["SNF:task_state"], "BUILDING");
    assert_eq!(created["deleted"], false);
    let pass = created["adminPass"].as_str().unwrap();
    assert!(pass.len() >= 10);
    let port = &created["attachments"][0];
    assert_eq!(port["network_id"], "1");
    assert!(port["id"].is_u64());
    let ip = port["ipv4"].as_str().unwrap();
    assert!(ip.starts_with("10.0."), "{ip}");
    assert_eq!(created["addresses"]["1"][0], json!({"version": 4, "addr": ip, "OS-EXT-IPS:type": "fixed"}));
    // The password is said once, at creation, and kept nowhere: the password
    // call answers as Synnefo's does once its cache has let it go.
    let password_url = url(&tc, &format!("/servers/{id}/password"));
    expect_fault(tc.alice(GET, &password_url).send().await.unwrap(), 404, "itemNotFound").await;
    assert_eq!(tc.alice(DELETE, &password_url).send().await.unwrap().status(), 204);
    expect_fault(tc.bob(GET, &password_url).send().await.unwrap(), 404, "itemNotFound").await;

    let active = wait_for(&tc, &id, "ACTIVE").await;
    assert_eq!(active["progress"], 100);
    assert_eq!(active["SNF:task_state"], "");

    let list = json_of(tc.alice(GET, &url(&tc, "/servers")).send().await.unwrap()).await;
    assert_eq!(list["servers"], json!([{"id": id, "name": "web1", "links": created["links"]}]));
    let detail = json_of(tc.alice(GET, &url(&tc, "/servers/detail")).send().await.unwrap()).await;
    assert_eq!(detail["servers"][0]["status"], "ACTIVE");
    assert_eq!(detail["servers"][0]["addresses"]["1"][0]["addr"], ip);

    // rename
    let r = with_json(tc.alice(PUT, &url(&tc, &format!("/servers/{id}"))), &json!({"server": {"name": "web2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(server(&tc, &id).await["name"], "web2");

    // actions
    assert_eq!(act(&tc, &id, json!({"shutdown": {}})).await.status(), 202);
    assert_eq!(server(&tc, &id).await["status"], "STOPPED");
    let v = expect_fault(act(&tc, &id, json!({"shutdown": {}})).await, 400, "badRequest").await;
    assert!(v["badRequest"]["message"].as_str().unwrap().contains("STOPPED"));
    expect_fault(act(&tc, &id, json!({"console": {"type": "vnc"}})).await, 400, "badRequest").await;
    assert_eq!(act(&tc, &id, json!({"start": {}})).await.status(), 202);
    assert_eq!(server(&tc, &id).await["status"], "ACTIVE");
    assert_eq!(act(&tc, &id, json!({"os-stop": null})).await.status(), 202);
    assert_eq!(act(&tc, &id, json!({"os-start": null})).await.status(), 202);

    assert_eq!(act(&tc, &id, json!({"reboot": {"type": "HARD"}})).await.status(), 202);
    let rebooting = server(&tc, &id).await;
    if rebooting["status"] != "ACTIVE" {
        assert_eq!(rebooting["status"], "REBOOT");
        assert_eq!(rebooting["SNF:task_state"], "REBOOTING");
        let v = expect_fault(act(&tc, &id, json!({"shutdown": {}})).await, 400, "badRequest").await;
        assert!(v["badRequest"]["message"].as_str().unwrap().contains("pending"));
    }
    wait_for(&tc, &id, "ACTIVE").await;
    expect_fault(act(&tc, &id, json!({"reboot": {"type": "GENTLE"}})).await, 400, "badRequest").await;

    let r = act(&tc, &id, json!({"console": {"type": "vnc"}})).await;
    assert_eq!(r.status(), 200);
    let console = json_of(r).await["console"].clone();
    assert_eq!(console["type"], "vnc");
    assert_eq!(console["host"], "127.0.0.1");
    assert!(console["port"].is_u64());
    assert!(!console["password"].as_str().unwrap().is_empty());
    expect_fault(act(&tc, &id, json!({"console": {"type": "spice"}})).await, 400, "badRequest").await;

    let v = expect_fault(act(&tc, &id, json!({"fly": {}})).await, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Action fly not supported");
    expect_fault(act(&tc, &id, json!({"start": {}, "shutdown": {}})).await, 400, "badRequest").await;

    let nic = port["id"].clone();
    assert_eq!(act(&tc, &id, json!({"firewallProfile": {"profile": "ENABLED", "nic": nic}})).await.status(), 202);
    assert_eq!(server(&tc, &id).await["attachments"][0]["firewallProfile"], "ENABLED");
    expect_fault(act(&tc, &id, json!({"firewallProfile": {"profile": "OPEN", "nic": nic}})).await, 400, "badRequest")
        .await;
    expect_fault(
        act(&tc, &id, json!({"firewallProfile": {"profile": "ENABLED", "nic": 999999}})).await,
        404,
        "itemNotFound",
    )
    .await;

    let r = act(&tc, &id, json!({"reassign": {"project": tc.alice}})).await;
    assert_eq!(r.status(), 200);

    // resize needs a stopped server and the same disk size
    expect_fault(act(&tc, &id, json!({"resize": {"flavorRef": 2}})).await, 400, "badRequest").await;
    assert_eq!(act(&tc, &id, json!({"shutdown": {}})).await.status(), 202);
    expect_fault(act(&tc, &id, json!({"resize": {"flavorRef": 3}})).await, 400, "badRequest").await;
    expect_fault(act(&tc, &id, json!({"resize": {"flavorRef": 77}})).await, 404, "itemNotFound").await;
    assert_eq!(act(&tc, &id, json!({"resize": {"flavorRef": 2}})).await.status(), 202);
    let resized = wait_for(&tc, &id, "STOPPED").await;
    assert_eq!(resized["flavor"]["id"], 2);

    assert_eq!(act(&tc, &id, json!({"rescue": {}})).await.status(), 202);
    assert_eq!(server(&tc, &id).await["SNF:rescue"], true);
    expect_fault(act(&tc, &id, json!({"rescue": {}})).await, 400, "badRequest").await;
    assert_eq!(act(&tc, &id, json!({"unrescue": {}})).await.status(), 202);
    assert_eq!(server(&tc, &id).await["SNF:rescue"], false);

    // delete: still readable, gone from plain lists, listed with changes-since
    let before_delete = iso_date(now() - 1.0);
    let r = tc.alice(DELETE, &url(&tc, &format!("/servers/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let gone = server(&tc, &id).await;
    assert_eq!(gone["status"], "DELETED");
    assert_eq!(gone["deleted"], true);
    assert_eq!(gone["attachments"], json!([]));
    let list = json_of(tc.alice(GET, &url(&tc, "/servers")).send().await.unwrap()).await;
    assert_eq!(list["servers"], json!([]));
    let r = tc.alice(GET, &changed_since(&url(&tc, "/servers/detail"), &before_delete)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["servers"][0]["status"], "DELETED");
    let v = expect_fault(act(&tc, &id, json!({"start": {}})).await, 400, "badRequest").await;
    assert!(v["badRequest"]["message"].as_str().unwrap().contains("deleted"));
    expect_fault(tc.alice(DELETE, &url(&tc, &format!("/servers/{id}"))).send().await.unwrap(), 400, "badRequest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_metadata_crud() {
    let tc = TestCloud::start().await;
    let image = alice_image(&tc, "meta.img").await;
    let id = create_server(&tc, "m", &image).await["id"].clone();
    let meta_url = url(&tc, &format!("/servers/{id}/metadata"));

    let v = json_of(tc.alice(GET, &meta_url).send().await.unwrap()).await;
    assert_eq!(v, json!({"metadata": {"os": "debian", "users": "root"}}));

    let r = with_json(tc.alice(POST, &meta_url), &json!({"metadata": {"role": "web", "os": "ubuntu"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(json_of(r).await, json!({"metadata": {"os": "ubuntu", "users": "root", "role": "web"}}));

    let r = with_json(tc.alice(PUT, &format!("{meta_url}/tier")), &json!({"meta": {"tier": "front"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(json_of(r).await, json!({"meta": {"tier": "front"}}));
    let v = json_of(tc.alice(GET, &format!("{meta_url}/tier")).send().await.unwrap()).await;
    assert_eq!(v, json!({"meta": {"tier": "front"}}));
    let r =
        with_json(tc.alice(PUT, &format!("{meta_url}/tier")), &json!({"meta": {"other": "x"}})).send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;

    let r = tc.alice(DELETE, &format!("{meta_url}/role")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    expect_fault(tc.alice(GET, &format!("{meta_url}/role")).send().await.unwrap(), 404, "itemNotFound").await;
    expect_fault(tc.alice(DELETE, &format!("{meta_url}/role")).send().await.unwrap(), 404, "itemNotFound").await;
    let v = json_of(tc.alice(GET, &meta_url).send().await.unwrap()).await;
    assert_eq!(v, json!({"metadata": {"os": "ubuntu", "users": "root", "tier": "front"}}));

    // at most 10 items
    let many: serde_json::Map<String, Value> = (0..8).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = with_json(tc.alice(POST, &meta_url), &json!({ "metadata": many })).send().await.unwrap();
    let v = expect_fault(r, 400, "badRequest").await;
    assert!(v["badRequest"]["message"].as_str().unwrap().contains("metadata items"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_ips_stats_and_diagnostics() {
    let tc = TestCloud::start().await;
    let image = alice_image(&tc, "tags.img").await;
    let r =
        create(&tc, json!({"server": {"name": "t", "imageRef": image, "flavorRef": "3", "tags": ["web", "eu"]}})).await;
    assert_eq!(r.status(), 202);
    let created = json_of(r).await["server"].clone();
    let id = created["id"].clone();
    assert_eq!(created["tags"], json!(["web", "eu"]));
    assert_eq!(created["flavor"]["id"], 3);
    let tags_url = url(&tc, &format!("/servers/{id}/tags"));

    let v = json_of(tc.alice(GET, &tags_url).send().await.unwrap()).await;
    assert_eq!(v, json!({"tags": ["web", "eu"], "statuses": ["ACTIVE", "ACTIVE"]}));
    let r = tc.alice(GET, &format!("{tags_url}/web")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["tag-status"], "ACTIVE");
    assert_eq!(tc.alice(GET, &format!("{tags_url}/db")).send().await.unwrap().status(), 404);
    assert_eq!(tc.alice(PUT, &format!("{tags_url}/db")).send().await.unwrap().status(), 201);
    assert_eq!(tc.alice(PUT, &format!("{tags_url}/db")).send().await.unwrap().status(), 204);
    expect_fault(tc.alice(PUT, &format!("{tags_url}/a,b")).send().await.unwrap(), 400, "badRequest").await;
    assert_eq!(tc.alice(DELETE, &format!("{tags_url}/eu")).send().await.unwrap().status(), 204);
    assert_eq!(tc.alice(DELETE, &format!("{tags_url}/eu")).send().await.unwrap().status(), 404);
    let r = with_json(tc.alice(PUT, &tags_url), &json!({"tags": ["a", "b"]})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["tags"], json!(["a", "b"]));
    assert_eq!(server(&tc, &id).await["tags"], json!(["a", "b"]));
    assert_eq!(tc.alice(DELETE, &tags_url).send().await.unwrap().status(), 204);
    assert_eq!(tc.alice(DELETE, &tags_url).send().await.unwrap().status(), 404);

    let ips = json_of(tc.alice(GET, &url(&tc, &format!("/servers/{id}/ips"))).send().await.unwrap()).await;
    assert_eq!(ips["attachments"][0]["network_id"], "1");
    assert_eq!(ips["addresses"]["1"][0]["version"], 4);
    let net = json_of(tc.alice(GET, &url(&tc, &format!("/servers/{id}/ips/1"))).send().await.unwrap()).await;
    assert_eq!(net["network"], ips["addresses"]);
    expect_fault(tc.alice(GET, &url(&tc, &format!("/servers/{id}/ips/42"))).send().await.unwrap(), 404, "itemNotFound")
        .await;

    let stats = json_of(tc.alice(GET, &url(&tc, &format!("/servers/{id}/stats"))).send().await.unwrap()).await;
    assert_eq!(stats["stats"]["serverRef"], id);
    let diag = json_of(tc.alice(GET, &url(&tc, &format!("/servers/{id}/diagnostics"))).send().await.unwrap()).await;
    assert_eq!(diag, json!([]));

    // a server without networks has no addresses
    let r = create(&tc, json!({"server": {"name": "n", "imageRef": image, "flavorRef": 1, "networks": []}})).await;
    let bare = json_of(r).await["server"].clone();
    assert_eq!(bare["attachments"], json!([]));
    assert_eq!(bare["addresses"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_validation() {
    let tc = TestCloud::start().await;
    let image = alice_image(&tc, "valid.img").await;
    let base = |extra: Value| {
        let mut s = json!({"name": "v", "imageRef": image, "flavorRef": 1});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        json!({ "server": s })
    };
    expect_fault(create(&tc, base(json!({"flavorRef": 42}))).await, 404, "itemNotFound").await;
    expect_fault(create(&tc, base(json!({"flavorRef": "big"}))).await, 400, "badRequest").await;
    expect_fault(create(&tc, base(json!({"imageRef": "no-such-image"}))).await, 404, "itemNotFound").await;
    expect_fault(create(&tc, base(json!({"adminPass": "weak"}))).await, 400, "badRequest").await;
    expect_fault(create(&tc, base(json!({"tags": ["a/b"]}))).await, 400, "badRequest").await;
    expect_fault(create(&tc, base(json!({"metadata": ["not", "a", "map"]}))).await, 400, "badRequest").await;
    expect_fault(create(&tc, base(json!({"networks": [{"uuid": "9"}]}))).await, 404, "itemNotFound").await;
    expect_fault(create(&tc, base(json!({"key_name": "k", "SNF:key_names": ["k2"]}))).await, 400, "badRequest").await;
    let bad_file = json!({"personality": [{"path": "/etc/motd", "contents": "not base64!"}]});
    expect_fault(create(&tc, base(bad_file)).await, 400, "badRequest").await;
    let big = "QUFB".repeat(4000);
    let too_big = json!({"personality": [{"path": "/etc/motd", "contents": big}]});
    expect_fault(create(&tc, base(too_big)).await, 413, "overLimit").await;

    let good = json!({"adminPass": "Str0ngPassw0rd", "key_name": "mykey", "project": tc.alice,
                      "personality": [{"path": "/etc/motd", "contents": "aGVsbG8K", "mode": 420}]});
    let r = create(&tc, base(good)).await;
    assert_eq!(r.status(), 202);
    let s = json_of(r).await["server"].clone();
    assert_eq!(s["adminPass"], "Str0ngPassw0rd");
    assert_eq!(s["key_name"], "mykey");
    assert_eq!(s["SNF:key_names"], json!(["mykey"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_private() {
    let tc = TestCloud::start().await;
    let image = alice_image(&tc, "private.img").await;
    let id = create_server(&tc, "mine", &image).await["id"].clone();
    let server_url = url(&tc, &format!("/servers/{id}"));

    expect_fault(tc.bob(GET, &server_url).send().await.unwrap(), 404, "itemNotFound").await;
    expect_fault(tc.bob(DELETE, &server_url).send().await.unwrap(), 404, "itemNotFound").await;
    let r = with_json(tc.bob(POST, &format!("{server_url}/action")), &json!({"shutdown": {}})).send().await.unwrap();
    expect_fault(r, 404, "itemNotFound").await;
    let list = json_of(tc.bob(GET, &url(&tc, "/servers/detail")).send().await.unwrap()).await;
    assert_eq!(list["servers"], json!([]));

    // bob cannot boot alice's private image
    let r = with_json(
        tc.bob(POST, &url(&tc, "/servers")),
        &json!({"server": {"name": "b", "imageRef": image, "flavorRef": 1}}),
    )
    .send()
    .await
    .unwrap();
    expect_fault(r, 404, "itemNotFound").await;
    assert_eq!(server(&tc, &id).await["name"], "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_servers_refuse_actions() {
    let tc = TestCloud::start_with(|c| c.build_seconds = 60.0).await;
    let image = alice_image(&tc, "slow.img").await;
    let id = create_server(&tc, "slow", &image).await["id"].clone();
    let s = server(&tc, &id).await;
    assert_eq!(s["status"], "BUILD");
    assert!(s["progress"].as_u64().unwrap() < 100);
    expect_fault(act(&tc, &id, json!({"shutdown": {}})).await, 409, "buildInProgress").await;
    expect_fault(act(&tc, &id, json!({"reboot": {"type": "SOFT"}})).await, 409, "buildInProgress").await;
    // nothing changed since a moment ago: 304 without a body
    let since = iso_date(now());
    let r = tc.alice(GET, &changed_since(&url(&tc, "/servers"), &since)).send().await.unwrap();
    assert_eq!(r.status(), 304);
    let r = tc.alice(GET, &changed_since(&url(&tc, "/servers"), "yesterday-ish")).send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    let future = iso_date(now() + 3600.0);
    let r = tc.alice(GET, &changed_since(&url(&tc, "/servers"), &future)).send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    // destroying is always allowed
    assert_eq!(tc.alice(DELETE, &url(&tc, &format!("/servers/{id}"))).send().await.unwrap().status(), 204);
    assert_eq!(server(&tc, &id).await["status"], "DELETED");
}
