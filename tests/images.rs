//! Plankton of the local cloud over real HTTP: registering Pithos objects as
//! images, listings with filters, image headers, updates, members and sharing,
//! and the compute view of the same images.

mod common;

use common::{quote, TestCloud};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const HEAD: Method = Method::HEAD;
const DELETE: Method = Method::DELETE;

async fn json_of(r: Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn fault_name(v: &Value) -> String {
    v.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default()
}

async fn expect_fault(r: Response, status: u16, name: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    let v = json_of(r).await;
    assert_eq!(fault_name(&v), name, "fault {v}");
    assert_eq!(v[name]["code"], status, "fault code {v}");
    v
}

fn header(r: &Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn with_json(b: RequestBuilder, v: &Value) -> RequestBuilder {
    b.header("Content-Type", "application/json").body(serde_json::to_vec(v).unwrap())
}

fn images(tc: &TestCloud) -> String {
    format!("{}/images/", tc.image())
}

fn image_url(tc: &TestCloud, id: &str) -> String {
    format!("{}/images/{id}", tc.image())
}

fn compute_image_url(tc: &TestCloud, id: &str) -> String {
    format!("{}/images/{id}", tc.compute())
}

fn location(tc: &TestCloud, object: &str) -> String {
    format!("pithos://{}/pithos/{}", tc.alice, quote(object))
}

/// A register request of alice's for `object` in her `pithos` container.
fn register(tc: &TestCloud, name: &str, object: &str) -> RequestBuilder {
    tc.alice(POST, &images(tc))
        .header("X-Image-Meta-Name", quote(name))
        .header("X-Image-Meta-Location", location(tc, object))
}

/// Uploads and registers an image with the os/users properties; returns its id.
async fn debian(tc: &TestCloud, name: &str, object: &str, data: &[u8]) -> String {
    tc.put_object("pithos", object, data).await;
    let r = register(tc, name, object)
        .header("X-Image-Meta-Property-OS", "debian")
        .header("X-Image-Meta-Property-Users", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "register {object}");
    header(&r, "x-image-meta-id")
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

async fn list(tc: &TestCloud, query: &str) -> Response {
    tc.alice(GET, &format!("{}{query}", images(tc))).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_read_back() {
    let tc = TestCloud::start().await;
    let data = b"a small disk image".repeat(100);
    let put = tc.put_object("pithos", "images/debian base.diskdump", &data).await;
    let etag = header(&put, "etag");
    let head = tc.alice(HEAD, &tc.object_url("pithos", "images/debian base.diskdump")).send().await.unwrap();
    let uuid = header(&head, "x-object-uuid");
    assert!(!uuid.is_empty());

    let r = register(&tc, "Debian Base", "images/debian base.diskdump")
        .header("X-Image-Meta-Disk-Format", "diskdump")
        .header("X-Image-Meta-Container-Format", "bare")
        .header("X-Image-Meta-Checksum", &etag)
        .header("X-Image-Meta-Size", data.len().to_string())
        .header("X-Image-Meta-Property-OS", "debian")
        .header("X-Image-Meta-Property-Users", "root user")
        .header("X-Image-Meta-Property-Root-Partition", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-image-meta-id"), uuid);
    assert_eq!(header(&r, "x-image-meta-name"), "Debian%20Base");
    assert_eq!(header(&r, "x-image-meta-checksum"), etag);
    assert_eq!(header(&r, "x-image-meta-size"), data.len().to_string());
    assert_eq!(header(&r, "x-image-meta-location"), location(&tc, "images/debian base.diskdump"));
    assert!(header(&r, "x-image-meta-location").ends_with("/pithos/images/debian%20base.diskdump"));
    assert_eq!(header(&r, "x-image-meta-owner"), tc.alice);
    assert_eq!(header(&r, "x-image-meta-status"), "AVAILABLE");
    assert_eq!(header(&r, "x-image-meta-is-public"), "False");
    assert_eq!(header(&r, "x-image-meta-disk-format"), "diskdump");
    assert_eq!(header(&r, "x-image-meta-property-root-partition"), "1");
    assert_eq!(header(&r, "x-image-meta-property-users"), "root%20user");
    assert!(r.headers().contains_key("x-image-meta-deleted-at"));
    let created = header(&r, "x-image-meta-created-at");
    assert_eq!(created.len(), 19, "YYYY-MM-DD HH:MM:SS: {created}");

    // the plain list has six fields per image
    let r = list(&tc, "").await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(
        v,
        json!([{"id": uuid, "name": "Debian Base", "status": "AVAILABLE", "disk_format": "diskdump",
                "container_format": "bare", "size": data.len()}])
    );
    // the same without the trailing slash
    let v2 = json_of(tc.alice(GET, &format!("{}/images", tc.image())).send().await.unwrap()).await;
    assert_eq!(v2, v);

    let detail = json_of(tc.alice(GET, &format!("{}/images/detail", tc.image())).send().await.unwrap()).await;
    let d = &detail[0];
    assert_eq!(d["properties"], json!({"os": "debian", "users": "root user", "root_partition": "1"}));
    assert_eq!(d["is_public"], false);
    assert_eq!(d["owner"], tc.alice.as_str());
    assert_eq!(d["checksum"], etag.as_str());
    assert_eq!(d["location"], location(&tc, "images/debian base.diskdump"));
    assert_eq!(d["created_at"], created.as_str());
    assert_eq!(d["deleted_at"], "");
    assert_eq!(d["is_snapshot"], false);

    // HEAD gives the same headers
    let r = tc.alice(HEAD, &image_url(&tc, &uuid)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-image-meta-name"), "Debian%20Base");
    assert_eq!(header(&r, "x-image-meta-property-os"), "debian");

    // image data comes from Pithos, not from Plankton
    let r = tc.alice(GET, &image_url(&tc, &uuid)).send().await.unwrap();
    assert_eq!(r.status(), 501);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_order() {
    let tc = TestCloud::start().await;
    let small = debian(&tc, "alpha", "alpha.img", &[1u8; 100]).await;
    tc.put_object("pithos", "beta.img", &[2u8; 300]).await;
    let r = register(&tc, "beta", "beta.img").header("X-Image-Meta-Disk-Format", "extdump").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let big = header(&r, "x-image-meta-id");

    assert_eq!(ids(&json_of(list(&tc, "?sort_key=name&sort_dir=asc").await).await), vec![small.clone(), big.clone()]);
    assert_eq!(ids(&json_of(list(&tc, "?sort_key=size&sort_dir=desc").await).await), vec![big.clone(), small.clone()]);
    // newest first by default
    assert_eq!(ids(&json_of(list(&tc, "").await).await), vec![big.clone(), small.clone()]);
    assert_eq!(ids(&json_of(list(&tc, "?name=alpha").await).await), vec![small.clone()]);
    assert_eq!(ids(&json_of(list(&tc, "?disk_format=extdump").await).await), vec![big.clone()]);
    assert_eq!(ids(&json_of(list(&tc, "?size_min=200").await).await), vec![big.clone()]);
    assert_eq!(ids(&json_of(list(&tc, "?size_max=200").await).await), vec![small.clone()]);
    assert_eq!(ids(&json_of(list(&tc, "?status=AVAILABLE&container_format=bare").await).await).len(), 2);
    assert!(ids(&json_of(list(&tc, "?container_format=ovf").await).await).is_empty());

    let v = expect_fault(list(&tc, "?sort_key=colour").await, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Invalid 'sort_key'");
    expect_fault(list(&tc, "?sort_dir=sideways").await, 400, "badRequest").await;
    expect_fault(list(&tc, "?size_min=lots").await, 400, "badRequest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_reregister_and_unregister() {
    let tc = TestCloud::start().await;
    let id = debian(&tc, "Old name", "disk.img", b"data").await;

    let r = tc
        .alice(PUT, &image_url(&tc, &id))
        .header("X-Image-Meta-Name", "New%20name")
        .header("X-Image-Meta-Property-Users", "user")
        .header("X-Image-Meta-Property-Kernel", "6.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-image-meta-name"), "New%20name");
    assert_eq!(header(&r, "x-image-meta-property-os"), "debian", "properties merge");
    assert_eq!(header(&r, "x-image-meta-property-users"), "user");
    assert_eq!(header(&r, "x-image-meta-property-kernel"), "6.1");

    let r = tc.alice(PUT, &image_url(&tc, &id)).header("X-Image-Meta-Size", "4").send().await.unwrap();
    let v = expect_fault(r, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Invalid metadata");
    let r = tc.alice(PUT, &image_url(&tc, &id)).header("X-Image-Meta-Disk-Format", "vmdk").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;

    // registering the same object again updates the same image
    let r = register(&tc, "Renamed", "disk.img").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-image-meta-id"), id);
    assert_eq!(header(&r, "x-image-meta-name"), "Renamed");
    assert_eq!(header(&r, "x-image-meta-property-kernel"), "6.1");
    assert_eq!(ids(&json_of(list(&tc, "").await).await), vec![id.clone()]);

    let r = tc.alice(DELETE, &image_url(&tc, &id)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(ids(&json_of(list(&tc, "").await).await).is_empty());
    assert_eq!(tc.alice(HEAD, &image_url(&tc, &id)).send().await.unwrap().status(), 404);
    expect_fault(tc.alice(DELETE, &image_url(&tc, &id)).send().await.unwrap(), 404, "itemNotFound").await;
    // the object stays in Pithos
    let r = tc.alice(HEAD, &tc.object_url("pithos", "disk.img")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_errors() {
    let tc = TestCloud::start().await;
    tc.put_object("pithos", "there.img", b"0123456789").await;

    expect_fault(register(&tc, "x", "missing.img").send().await.unwrap(), 404, "itemNotFound").await;
    let r = tc
        .alice(POST, &images(&tc))
        .header("X-Image-Meta-Name", "x")
        .header("X-Image-Meta-Location", "http://elsewhere/x")
        .send()
        .await
        .unwrap();
    expect_fault(r, 400, "badRequest").await;
    let r =
        tc.alice(POST, &images(&tc)).header("X-Image-Meta-Location", location(&tc, "there.img")).send().await.unwrap();
    let v = expect_fault(r, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Image 'name' parameter is required");
    let r = tc.alice(POST, &images(&tc)).header("X-Image-Meta-Name", "x").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    let r = register(&tc, "x", "there.img").header("X-Image-Meta-Checksum", "00ff").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    let r = register(&tc, "x", "there.img").header("X-Image-Meta-Size", "11").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    let r = register(&tc, "x", "there.img").header("X-Image-Meta-Container-Format", "zip").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    let r = register(&tc, "x", "there.img").header("X-Image-Meta-Id", "mine").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    let r = register(&tc, "x", "there.img").header("X-Image-Meta-Status", "AVAILABLE").send().await.unwrap();
    let v = expect_fault(r, 400, "badRequest").await;
    assert_eq!(v["badRequest"]["message"], "Invalid parameters");

    // only the owner of an object may register it
    let r = tc
        .bob(POST, &images(&tc))
        .header("X-Image-Meta-Name", "stolen")
        .header("X-Image-Meta-Location", location(&tc, "there.img"))
        .send()
        .await
        .unwrap();
    expect_fault(r, 403, "forbidden").await;

    let r = tc.http.get(images(&tc)).send().await.unwrap();
    expect_fault(r, 401, "unauthorized").await;
    expect_fault(tc.alice(GET, &format!("{}/elsewhere", tc.image())).send().await.unwrap(), 400, "badRequest").await;
    let r = tc.alice(DELETE, &images(&tc)).send().await.unwrap();
    expect_fault(r, 405, "notAllowed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_visibility() {
    let tc = TestCloud::start().await;
    let id = debian(&tc, "private", "private.img", b"secret disk").await;
    let members = format!("{}/members", image_url(&tc, &id));
    let bob_list = || async { json_of(tc.bob(GET, &images(&tc)).send().await.unwrap()).await };

    assert!(ids(&bob_list().await).is_empty());
    assert_eq!(tc.bob(HEAD, &image_url(&tc, &id)).send().await.unwrap().status(), 404);
    expect_fault(tc.bob(GET, &compute_image_url(&tc, &id)).send().await.unwrap(), 404, "itemNotFound").await;

    // share with bob
    let r = tc.alice(PUT, &format!("{members}/{}", tc.bob)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(ids(&bob_list().await), vec![id.clone()]);
    let v = json_of(tc.bob(GET, &members).send().await.unwrap()).await;
    assert_eq!(v, json!({"members": [{"member_id": tc.bob, "can_share": false}]}));
    let shared =
        json_of(tc.bob(GET, &format!("{}/shared-images/{}", tc.image(), tc.alice)).send().await.unwrap()).await;
    assert_eq!(shared, json!({"shared_images": [{"image_id": id, "can_share": false}]}));
    // a member may use the image but not change it
    let r = tc.bob(PUT, &image_url(&tc, &id)).header("X-Image-Meta-Name", "mine").send().await.unwrap();
    expect_fault(r, 403, "forbidden").await;
    expect_fault(tc.bob(DELETE, &image_url(&tc, &id)).send().await.unwrap(), 403, "forbidden").await;
    let r = tc.bob(PUT, &format!("{members}/{}", tc.bob)).send().await.unwrap();
    expect_fault(r, 403, "forbidden").await;
    let v = json_of(tc.bob(GET, &compute_image_url(&tc, &id)).send().await.unwrap()).await;
    assert_eq!(v["image"]["metadata"]["os"], "debian");

    // unshare
    assert_eq!(tc.alice(DELETE, &format!("{members}/{}", tc.bob)).send().await.unwrap().status(), 204);
    assert!(ids(&bob_list().await).is_empty());

    // replace the member list
    let r =
        with_json(tc.alice(PUT, &members), &json!({"memberships": [{"member_id": tc.bob}, {"member_id": "carol"}]}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 204);
    let v = json_of(tc.alice(GET, &members).send().await.unwrap()).await;
    assert_eq!(v["members"].as_array().unwrap().len(), 2);
    let r = tc.alice(PUT, &members).body("{}").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;
    let r = with_json(tc.alice(PUT, &members), &json!({"memberships": []})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(ids(&bob_list().await).is_empty());

    // public images are visible to all
    let r = tc.alice(PUT, &image_url(&tc, &id)).header("X-Image-Meta-Is-Public", "true").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-image-meta-is-public"), "True");
    assert_eq!(ids(&bob_list().await), vec![id.clone()]);
    let v = json_of(tc.bob(GET, &compute_image_url(&tc, &id)).send().await.unwrap()).await;
    assert_eq!(v["image"]["public"], true);
    let shared =
        json_of(tc.bob(GET, &format!("{}/shared-images/{}", tc.image(), tc.alice)).send().await.unwrap()).await;
    assert_eq!(shared["shared_images"], json!([]), "public images are not 'shared'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_view_of_images() {
    let tc = TestCloud::start().await;
    let id = debian(&tc, "Debian", "compute.img", b"disk").await;
    let url = compute_image_url(&tc, &id);

    let v = json_of(tc.alice(GET, &url).send().await.unwrap()).await;
    let image = &v["image"];
    assert_eq!(image["id"], id.as_str());
    assert_eq!(image["name"], "Debian");
    assert_eq!(image["status"], "ACTIVE");
    assert_eq!(image["progress"], 100);
    assert_eq!(image["user_id"], tc.alice.as_str());
    assert_eq!(image["public"], false);
    assert_eq!(image["metadata"], json!({"os": "debian", "users": "root"}));
    assert!(image["created"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(image["links"][2]["rel"], "alternate");

    let list = json_of(tc.alice(GET, &format!("{}/images", tc.compute())).send().await.unwrap()).await;
    assert_eq!(list["images"][0]["id"], id.as_str());
    assert_eq!(list["images"][0]["name"], "Debian");
    assert!(list["images"][0].get("metadata").is_none());
    let detail = json_of(tc.alice(GET, &format!("{}/images/detail", tc.compute())).send().await.unwrap()).await;
    assert_eq!(detail["images"][0]["metadata"]["users"], "root");

    // metadata = Plankton properties
    let meta = format!("{url}/metadata");
    let r = with_json(tc.alice(POST, &meta), &json!({"metadata": {"osfamily": "linux"}})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(json_of(r).await, json!({"metadata": {"os": "debian", "users": "root", "osfamily": "linux"}}));
    let r =
        with_json(tc.alice(PUT, &format!("{meta}/users")), &json!({"meta": {"users": "admin"}})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(json_of(r).await, json!({"meta": {"users": "admin"}}));
    let v = json_of(tc.alice(GET, &format!("{meta}/users")).send().await.unwrap()).await;
    assert_eq!(v, json!({"meta": {"users": "admin"}}));
    assert_eq!(tc.alice(DELETE, &format!("{meta}/osfamily")).send().await.unwrap().status(), 204);
    expect_fault(tc.alice(GET, &format!("{meta}/osfamily")).send().await.unwrap(), 404, "itemNotFound").await;
    let r = tc.alice(HEAD, &image_url(&tc, &id)).send().await.unwrap();
    assert_eq!(header(&r, "x-image-meta-property-users"), "admin");
    assert!(!r.headers().contains_key("x-image-meta-property-osfamily"));
    let r = with_json(tc.bob(POST, &meta), &json!({"metadata": {"x": "y"}})).send().await.unwrap();
    expect_fault(r, 404, "itemNotFound").await;
    let r = tc.alice(POST, &meta).body("{\"metadata\": {}}").send().await.unwrap();
    expect_fault(r, 400, "badRequest").await;

    // changes-since
    let later = pithosfs::cloud::wire::iso_date(pithosfs::cloud::wire::now());
    let r =
        tc.alice(GET, &format!("{}/images/detail?changes-since={}", tc.compute(), quote(&later))).send().await.unwrap();
    assert_eq!(r.status(), 304);

    // deleting through compute unregisters the image
    assert_eq!(tc.alice(DELETE, &url).send().await.unwrap().status(), 204);
    expect_fault(tc.alice(GET, &url).send().await.unwrap(), 404, "itemNotFound").await;
    assert_eq!(tc.alice(HEAD, &tc.object_url("pithos", "compute.img")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_follow_their_objects() {
    let tc = TestCloud::start().await;
    let id = debian(&tc, "Moving", "before.img", b"first").await;

    // an overwrite keeps the object's UUID: the image reports the new data
    let put = tc.put_object("pithos", "before.img", b"second version").await;
    let r = tc.alice(HEAD, &image_url(&tc, &id)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-image-meta-size"), "14");
    assert_eq!(header(&r, "x-image-meta-checksum"), header(&put, "etag"));

    // deleting the object takes the image with it
    let r = tc.alice(DELETE, &tc.object_url("pithos", "before.img")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(tc.alice(HEAD, &image_url(&tc, &id)).send().await.unwrap().status(), 404);
    assert!(ids(&json_of(list(&tc, "").await).await).is_empty());
}
