//! Access control of the local cloud (issue 8, section 1), over real HTTP
//! with two users: alice owns, bob is the grantee or the stranger. Each test
//! names the hole it closes; the README's "Access rules" states the rules.

mod common;

use common::blocks::{get_bytes, hashmap_of, hexes, post_blocks, put_hashmap, random_bytes};
use common::{quote, TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::blocks::{self, Algorithm};
use pithosfs::cloud::pithos::tree;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const HEAD: Method = Method::HEAD;
const DELETE: Method = Method::DELETE;

fn copy_method() -> Method {
    Method::from_bytes(b"COPY").unwrap()
}
fn move_method() -> Method {
    Method::from_bytes(b"MOVE").unwrap()
}

fn header(r: &Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

async fn json_of(r: Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// URL of one of bob's objects.
fn bob_url(tc: &TestCloud, container: &str, name: &str) -> String {
    format!("{}/{}/{}/{}", tc.pithos(), tc.bob, quote(container), quote(name))
}

fn alice_container(tc: &TestCloud, container: &str) -> String {
    format!("{}/{}/{}", tc.pithos(), tc.alice, quote(container))
}

/// Creates or replaces an object of alice's with a content type and headers.
async fn alice_put(tc: &TestCloud, name: &str, content_type: &str, body: &[u8], extra: &[(&str, String)]) {
    let mut req =
        tc.alice(PUT, &tc.object_url("pithos", name)).header("Content-Type", content_type).body(body.to_vec());
    for (k, v) in extra {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 201, "alice PUT {name}");
}

async fn alice_folder(tc: &TestCloud, name: &str, sharing: Option<String>) {
    let extra: Vec<(&str, String)> = sharing.into_iter().map(|s| ("X-Object-Sharing", s)).collect();
    alice_put(tc, name, "application/directory", b"", &extra).await;
}

async fn share(tc: &TestCloud, name: &str, sharing: String) {
    let r = tc
        .alice(POST, &format!("{}?update", tc.object_url("pithos", name)))
        .header("X-Object-Sharing", sharing)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "share {name}");
}

async fn bob_put(tc: &TestCloud, name: &str, content_type: &str, body: &[u8]) {
    let r = tc
        .bob(PUT, &bob_url(tc, "pithos", name))
        .header("Content-Type", content_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "bob PUT {name}");
}

async fn get_status(tc: &TestCloud, token_of_bob: bool, url: &str) -> StatusCode {
    let req = if token_of_bob { tc.bob(GET, url) } else { tc.alice(GET, url) };
    req.send().await.unwrap().status()
}

/// Names in a listing (text format), as bob or alice sees it.
async fn names(tc: &TestCloud, as_bob: bool, url: &str) -> Vec<String> {
    let req = if as_bob { tc.bob(GET, url) } else { tc.alice(GET, url) };
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "list {url}: {}", r.status());
    r.text().await.unwrap().lines().map(str::to_string).collect()
}

/// `PUT dst` with `X-Copy-From`/`X-Move-From` as bob, with an optional delimiter.
async fn bob_put_from(
    tc: &TestCloud,
    header_name: &str,
    dst_url: &str,
    src: &str,
    src_account: &str,
    delimiter: Option<&str>,
) -> StatusCode {
    let mut req = tc
        .bob(PUT, dst_url)
        .header(header_name, src)
        .header("X-Source-Account", src_account)
        .header("Content-Length", "0");
    if let Some(d) = delimiter {
        req = req.query(&[("delimiter", d)]);
    }
    req.send().await.unwrap().status()
}

/// Hole: a user shared one object `report` could copy `report/secret` and
/// `report-private` with `?delimiter=`. Every source is now checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_copy_checks_read_on_every_source() {
    let tc = TestCloud::start().await;
    alice_put(&tc, "report", "text/plain", b"the report", &[]).await;
    alice_put(&tc, "report/secret", "text/plain", b"secret under report", &[]).await;
    alice_put(&tc, "report-private", "text/plain", b"private next to report", &[]).await;
    share(&tc, "report", format!("read={}", tc.bob)).await;
    let alice = tc.alice.clone();
    let src = "/pithos/report";

    for (delimiter, leaked) in [("/", "got/secret"), ("-", "got-private")] {
        let dst = bob_url(&tc, "pithos", "got");
        let s = bob_put_from(&tc, "X-Copy-From", &dst, src, &alice, Some(delimiter)).await;
        assert_eq!(s, 403, "PUT X-Copy-From with delimiter {delimiter:?}");
        let r = tc
            .bob(copy_method(), &tc.object_url("pithos", "report"))
            .header("Destination", "/pithos/got")
            .query(&[("delimiter", delimiter)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "COPY with delimiter {delimiter:?}");
        // refused before anything changed: not even the shared object was copied
        assert_eq!(get_status(&tc, true, &bob_url(&tc, "pithos", "got")).await, 404);
        assert_eq!(get_status(&tc, true, &bob_url(&tc, "pithos", leaked)).await, 404);
    }
    // a grantee never moves: that needs the owner
    let dst = bob_url(&tc, "pithos", "moved");
    assert_eq!(bob_put_from(&tc, "X-Move-From", &dst, src, &alice, None).await, 403);
    assert_eq!(get_status(&tc, false, &tc.object_url("pithos", "report")).await, 200);

    // what was shared may be copied
    let dst = bob_url(&tc, "pithos", "mine");
    assert_eq!(bob_put_from(&tc, "X-Copy-From", &dst, src, &alice, None).await, 201);
    let r = tc.bob(GET, &dst).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "the report");

    // a shared folder is copied whole by its grantee, any delimiter
    alice_folder(&tc, "team", Some(format!("read={}", tc.bob))).await;
    alice_put(&tc, "team/a.txt", "text/plain", b"a", &[]).await;
    alice_put(&tc, "team/sub/b.txt", "text/plain", b"b", &[]).await;
    let dst = bob_url(&tc, "pithos", "team-copy");
    assert_eq!(bob_put_from(&tc, "X-Copy-From", &dst, "/pithos/team", &alice, Some("/")).await, 201);
    let listed = names(&tc, true, &format!("{}/{}/pithos?prefix=team-copy", tc.pithos(), tc.bob)).await;
    assert_eq!(listed, ["team-copy", "team-copy/a.txt", "team-copy/sub/b.txt"]);

    // but not when one object inside carries an entry that leaves bob out
    alice_put(&tc, "team/sub/closed.txt", "text/plain", b"closed", &[]).await;
    share(&tc, "team/sub/closed.txt", format!("read={}", tc.alice)).await;
    let dst = bob_url(&tc, "pithos", "team-again");
    assert_eq!(bob_put_from(&tc, "X-Copy-From", &dst, "/pithos/team", &alice, Some("/")).await, 403);
    assert_eq!(get_status(&tc, true, &bob_url(&tc, "pithos", "team-again/a.txt")).await, 404);
}

/// Hole: a user with write access to one object could overwrite the owner's
/// private objects that share its prefix. Every destination is now checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_copy_checks_write_on_every_destination() {
    let tc = TestCloud::start().await;
    alice_put(&tc, "drop", "text/plain", b"drop box", &[]).await;
    alice_put(&tc, "drop/private.txt", "text/plain", b"alice's own", &[]).await;
    alice_put(&tc, "drop-notes", "text/plain", b"alice's notes", &[]).await;
    share(&tc, "drop", format!("write={}", tc.bob)).await;
    bob_put(&tc, "mine", "text/plain", b"bob's").await;
    bob_put(&tc, "mine/private.txt", "text/plain", b"overwritten by bob").await;
    bob_put(&tc, "mine-notes", "text/plain", b"overwritten by bob").await;
    let bob = tc.bob.clone();

    for (delimiter, victim) in [("/", "drop/private.txt"), ("-", "drop-notes")] {
        let dst = tc.object_url("pithos", "drop");
        let s = bob_put_from(&tc, "X-Copy-From", &dst, "/pithos/mine", &bob, Some(delimiter)).await;
        assert_eq!(s, 403, "PUT X-Copy-From, delimiter {delimiter:?}");
        let r = tc
            .bob(copy_method(), &bob_url(&tc, "pithos", "mine"))
            .header("Destination", "/pithos/drop")
            .header("Destination-Account", tc.alice.clone())
            .query(&[("delimiter", delimiter)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "COPY, delimiter {delimiter:?}");
        let r = tc
            .bob(move_method(), &bob_url(&tc, "pithos", "mine"))
            .header("Destination", "/pithos/drop")
            .header("Destination-Account", tc.alice.clone())
            .query(&[("delimiter", delimiter)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "MOVE, delimiter {delimiter:?}");
        let r = tc.alice(GET, &tc.object_url("pithos", victim)).send().await.unwrap();
        assert!(r.text().await.unwrap().starts_with("alice's"), "{victim} untouched");
        let r = tc.alice(GET, &tc.object_url("pithos", "drop")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "drop box", "refused before anything changed");
        assert_eq!(get_status(&tc, true, &bob_url(&tc, "pithos", "mine")).await, 200, "move undone");
    }
    // the one shared object may be written by copy
    let dst = tc.object_url("pithos", "drop");
    assert_eq!(bob_put_from(&tc, "X-Copy-From", &dst, "/pithos/mine", &bob, None).await, 201);
    assert_eq!(tc.alice(GET, &dst).send().await.unwrap().text().await.unwrap(), "bob's");

    // a folder bob may write into takes a whole tree, by copy and by move
    alice_folder(&tc, "inbox", Some(format!("write={}", tc.bob))).await;
    let dst = tc.object_url("pithos", "inbox/from-bob");
    assert_eq!(bob_put_from(&tc, "X-Copy-From", &dst, "/pithos/mine", &bob, Some("/")).await, 201);
    let r = tc
        .bob(move_method(), &bob_url(&tc, "pithos", "mine"))
        .header("Destination", "/pithos/inbox/moved")
        .header("Destination-Account", tc.alice.clone())
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let listed = names(&tc, false, &format!("{}?prefix=inbox/", alice_container(&tc, "pithos"))).await;
    assert_eq!(listed, ["inbox/from-bob", "inbox/from-bob/private.txt", "inbox/moved", "inbox/moved/private.txt"]);
    let r = tc.alice(HEAD, &tc.object_url("pithos", "inbox/moved/private.txt")).send().await.unwrap();
    assert_eq!(header(&r, "x-object-modified-by"), tc.bob);
    assert_eq!(get_status(&tc, true, &bob_url(&tc, "pithos", "mine/private.txt")).await, 404, "moved away");
    // a folder is not moved into itself
    let r = tc
        .alice(move_method(), &tc.object_url("pithos", "inbox"))
        .header("Destination", "/pithos/inbox/deeper")
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Sharing and publishing stay the owner's; a grantee's header that changes
/// nothing passes (kamaki's `copy_object` always sends `X-Object-Public: False`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_shares_or_publishes() {
    let tc = TestCloud::start().await;
    alice_folder(&tc, "inbox", Some(format!("write={}", tc.bob))).await;
    bob_put(&tc, "mine", "text/plain", b"bob's").await;
    let copy_in = |dst: &str, header_name: &'static str, value: String| {
        let req = tc
            .bob(PUT, &tc.object_url("pithos", dst))
            .header("X-Copy-From", "/pithos/mine")
            .header("X-Source-Account", tc.bob.clone())
            .header("Content-Length", "0")
            .header(header_name, value);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(copy_in("inbox/a", "X-Object-Public", "False".into()).await, 201);
    assert_eq!(copy_in("inbox/b", "X-Object-Public", "True".into()).await, 403);
    assert_eq!(copy_in("inbox/c", "X-Object-Sharing", format!("read={}", tc.bob)).await, 403);
    assert_eq!(get_status(&tc, false, &tc.object_url("pithos", "inbox/b")).await, 404, "refused whole");
    let r = tc
        .bob(PUT, &tc.object_url("pithos", "inbox/d"))
        .header("Content-Type", "text/plain")
        .header("X-Object-Public", "false")
        .body("d")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = tc
        .bob(POST, &format!("{}?update", tc.object_url("pithos", "inbox/d")))
        .header("X-Object-Public", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = tc.alice(HEAD, &tc.object_url("pithos", "inbox/d")).send().await.unwrap();
    assert_eq!(header(&r, "x-object-public"), "", "not published");
}

/// A tree copy, move or delete has a cap on its objects, refused before
/// anything changes with a 400 that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_operations_are_capped() {
    let tc = TestCloud::start_with(|c| c.max_tree_objects = 50).await;
    alice_folder(&tc, "big", None).await;
    tc.bulk_objects("pithos", "big/", 50).await; // 51 objects with the folder
    alice_folder(&tc, "fits", None).await;
    tc.bulk_objects("pithos", "fits/", 49).await; // 50 objects
    let count = |tc: &TestCloud| {
        let url = alice_container(tc, "pithos");
        let req = tc.alice(HEAD, &url);
        async move { header(&req.send().await.unwrap(), "x-container-object-count") }
    };
    let before = count(&tc).await;
    assert_eq!(before, "101");
    let too_many = |r: Response| async move {
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains("at most 50 objects"), "{text}");
    };
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "big-copy"))
        .header("X-Copy-From", "/pithos/big")
        .header("Content-Length", "0")
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    too_many(r).await;
    let r = tc
        .alice(move_method(), &tc.object_url("pithos", "big"))
        .header("Destination", "/pithos/big-moved")
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    too_many(r).await;
    let r = tc.alice(DELETE, &tc.object_url("pithos", "big")).query(&[("delimiter", "/")]).send().await.unwrap();
    too_many(r).await;
    let r = tc.alice(DELETE, &alice_container(&tc, "pithos")).query(&[("delimiter", "/")]).send().await.unwrap();
    too_many(r).await;
    assert_eq!(count(&tc).await, before, "nothing changed");
    // at the cap it works
    let r = tc
        .alice(copy_method(), &tc.object_url("pithos", "fits"))
        .header("Destination", "/pithos/fits-copy")
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(count(&tc).await, "151");
    let r = tc.alice(DELETE, &tc.object_url("pithos", "fits")).query(&[("delimiter", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(count(&tc).await, "101");
}

/// Long tree operations run in batches of `tree::BATCH` objects per
/// transaction; a tree of several batches comes out whole and right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_operations_in_batches_keep_results_right() {
    let tc = TestCloud::start().await;
    let n = 2 * tree::BATCH + 7;
    alice_put(&tc, "many", "application/directory", b"", &[("X-Object-Meta-Kind", "tree".into())]).await;
    tc.bulk_objects("pithos", "many/", n).await;
    // real data at the start, across the first batch boundary, and at the end
    let data_names = ["many/00000", &format!("many/{:05}", tree::BATCH), &format!("many/{:05}", n - 1)];
    for name in data_names {
        alice_put(&tc, name, "text/plain", name.as_bytes(), &[]).await;
    }
    let listing = |tc: &TestCloud, prefix: &str| {
        let url = format!("{}?prefix={}&format=json", alice_container(tc, "pithos"), quote(prefix));
        let req = tc.alice(GET, &url);
        async move { json_of(req.send().await.unwrap()).await.as_array().unwrap().clone() }
    };
    let original = listing(&tc, "many").await;
    assert_eq!(original.len(), n + 1);

    // copy: every object, same bytes and hashes, new UUIDs
    let r = tc
        .alice(PUT, &tc.object_url("pithos", "copy"))
        .header("X-Copy-From", "/pithos/many")
        .header("Content-Length", "0")
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let copied = listing(&tc, "copy").await;
    assert_eq!(copied.len(), n + 1);
    for (a, b) in original.iter().zip(&copied) {
        let a_name = a["name"].as_str().unwrap();
        assert_eq!(b["name"].as_str().unwrap(), format!("copy{}", &a_name["many".len()..]));
        assert_eq!(a["x_object_hash"], b["x_object_hash"]);
        assert_eq!(a["bytes"], b["bytes"]);
        assert_eq!(a["content_type"], b["content_type"]);
        assert_ne!(a["x_object_uuid"], b["x_object_uuid"]);
    }
    assert_eq!(copied[0]["x_object_meta_kind"], "tree");
    // move: sources gone, UUIDs kept
    let r = tc
        .alice(move_method(), &tc.object_url("pithos", "copy"))
        .header("Destination", "/pithos/moved")
        .query(&[("delimiter", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(listing(&tc, "copy").await.is_empty());
    let moved = listing(&tc, "moved").await;
    assert_eq!(moved.len(), n + 1);
    for (c, m) in copied.iter().zip(&moved) {
        assert_eq!(c["x_object_uuid"], m["x_object_uuid"]);
        assert_eq!(c["x_object_hash"], m["x_object_hash"]);
    }
    for name in data_names {
        let moved_name = format!("moved{}", &name["many".len()..]);
        let r = tc.alice(GET, &tc.object_url("pithos", &moved_name)).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), name);
    }
    // delete of a folder, then of the whole container
    let r = tc.alice(DELETE, &tc.object_url("pithos", "moved")).query(&[("delimiter", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(listing(&tc, "moved").await.is_empty());
    let r = tc.alice(DELETE, &alice_container(&tc, "pithos")).query(&[("delimiter", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = tc.alice(HEAD, &alice_container(&tc, "pithos")).send().await.unwrap();
    assert_eq!(header(&r, "x-container-object-count"), "0");
    assert_eq!(header(&r, "x-container-bytes-used"), "0");
}

/// Hole: a writer set `Content-Type: application/directory` on a shared file
/// and so gained read and write on everything under it. Only the owner
/// changes an object's type to or from a directory type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_grant_cannot_change_an_objects_type() {
    let tc = TestCloud::start().await;
    alice_put(&tc, "report", "text/plain", b"shared", &[]).await;
    alice_put(&tc, "report/secret", "text/plain", b"secret", &[]).await;
    share(&tc, "report", format!("write={}", tc.bob)).await;
    let report = tc.object_url("pithos", "report");
    let secret = tc.object_url("pithos", "report/secret");
    for folder_type in ["application/directory", "application/folder", "application/directory; charset=utf-8"] {
        let r = tc.bob(PUT, &report).header("Content-Type", folder_type).body("").send().await.unwrap();
        assert_eq!(r.status(), 403, "{folder_type}");
        assert_eq!(get_status(&tc, true, &secret).await, 403);
    }
    // nor by copying a folder of his own over it
    bob_put(&tc, "myfolder", "application/directory", b"").await;
    let s = bob_put_from(&tc, "X-Copy-From", &report, "/pithos/myfolder", &tc.bob.clone(), None).await;
    assert_eq!(s, 403);
    let r = tc
        .bob(copy_method(), &bob_url(&tc, "pithos", "myfolder"))
        .header("Destination", "/pithos/report")
        .header("Destination-Account", tc.alice.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = tc
        .bob(copy_method(), &bob_url(&tc, "pithos", "myfolder"))
        .header("Destination", "/pithos/report")
        .header("Destination-Account", tc.alice.clone())
        .header("Content-Type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "a copy that keeps the type is a write like any other");
    assert_eq!(get_status(&tc, true, &secret).await, 403);
    // writing the file stays allowed
    let r = tc.bob(PUT, &report).header("Content-Type", "text/markdown").body("bob's text").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = tc.alice(HEAD, &report).send().await.unwrap();
    assert_eq!(header(&r, "content-type"), "text/markdown");

    // a shared folder stays a folder in a grantee's hands, and grows
    alice_folder(&tc, "team", Some(format!("write={}", tc.bob))).await;
    let team = tc.object_url("pithos", "team");
    let r = tc.bob(PUT, &team).header("Content-Type", "text/plain").body("").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = tc.bob(PUT, &team).header("Content-Type", "application/folder").body("").send().await.unwrap();
    assert_eq!(r.status(), 201, "one directory type for another");
    let sub = tc.object_url("pithos", "team/sub");
    let r = tc.bob(PUT, &sub).header("Content-Type", "application/directory").body("").send().await.unwrap();
    assert_eq!(r.status(), 201, "a new folder inside a writable one");
    let r = tc.bob(PUT, &format!("{sub}/x")).header("Content-Type", "text/plain").body("x").send().await.unwrap();
    assert_eq!(r.status(), 201);
    // the owner may change any type
    let r = tc.alice(PUT, &report).header("Content-Type", "application/directory").body("").send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_status(&tc, true, &secret).await, 200, "the owner's choice to share what is under it");
}

/// Hole: a grantee's listing showed unshared siblings with sizes, metadata and
/// hashes. A listing now applies the GET rule to each entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_only_what_the_caller_may_read() {
    let tc = TestCloud::start().await;
    alice_put(&tc, "report", "text/plain", b"shared", &[("X-Object-Meta-Shown", "1".into())]).await;
    alice_put(&tc, "report/secret", "text/plain", b"secret", &[("X-Object-Meta-Hidden", "1".into())]).await;
    alice_put(&tc, "report-private", "text/plain", b"private", &[("X-Object-Meta-Hidden2", "1".into())]).await;
    alice_folder(&tc, "docs", None).await;
    alice_put(&tc, "docs/a", "text/plain", b"a", &[("X-Object-Meta-Also-Shown", "1".into())]).await;
    alice_put(&tc, "docs/closed", "text/plain", b"closed", &[("X-Object-Meta-Hidden3", "1".into())]).await;
    alice_put(&tc, "notes", "text/plain", b"notes", &[]).await;
    let url = alice_container(&tc, "pithos");
    // nothing shared: 403 for the listing, the container and the account
    assert_eq!(get_status(&tc, true, &url).await, 403);
    share(&tc, "report", format!("read={}", tc.bob)).await;
    share(&tc, "docs", format!("read={}", tc.bob)).await;
    share(&tc, "docs/closed", format!("read={}", tc.alice)).await; // closest entry wins: not bob

    assert_eq!(names(&tc, true, &url).await, ["docs", "docs/a", "report"]);
    let v = json_of(tc.bob(GET, &format!("{url}?format=json")).send().await.unwrap()).await;
    let listed: Vec<&str> = v.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(listed, ["docs", "docs/a", "report"]);
    assert!(v.as_array().unwrap().iter().all(|o| o["x_object_allowed_to"] == "read"), "{v}");
    assert_eq!(names(&tc, true, &format!("{url}?delimiter=/")).await, ["docs", "docs/", "report"]);
    assert_eq!(names(&tc, true, &format!("{url}?path=docs")).await, ["docs/a"]);
    assert_eq!(names(&tc, true, &format!("{url}?prefix=report")).await, ["report"]);
    assert_eq!(names(&tc, true, &format!("{url}?meta=hidden")).await, Vec::<String>::new());
    // the owner still sees everything
    assert_eq!(names(&tc, false, &url).await.len(), 7);

    // HEAD of the container: meta keys of readable objects only, no figures
    let r = tc.bob(HEAD, &url).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "x-container-object-meta"), "Also-Shown,Shown");
    assert_eq!(header(&r, "x-container-object-count"), "");
    assert_eq!(header(&r, "x-container-bytes-used"), "");
    let r = tc.alice(HEAD, &url).send().await.unwrap();
    assert_eq!(header(&r, "x-container-object-meta"), "Also-Shown,Hidden,Hidden2,Hidden3,Shown");

    // the account: containers bob may read something in, without sizes or counts
    let r = tc.alice(PUT, &alice_container(&tc, "hidden")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = tc
        .alice(PUT, &format!("{}/x", alice_container(&tc, "hidden")))
        .header("Content-Type", "text/plain")
        .header("X-Object-Sharing", format!("read={}", tc.alice))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let account = format!("{}/{}", tc.pithos(), tc.alice);
    let v = json_of(tc.bob(GET, &format!("{account}?format=json")).send().await.unwrap()).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let pithos = &v[0];
    assert_eq!(pithos["name"], "pithos");
    for key in ["count", "bytes", "x_container_policy"] {
        assert!(pithos.get(key).is_none(), "{key} shown to a grantee: {v}");
    }
    let v = json_of(tc.alice(GET, &format!("{account}?format=json")).send().await.unwrap()).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["count"], 7);
    let r = tc.bob(HEAD, &account).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for h in ["x-account-container-count", "x-account-bytes-used", "x-account-policy-quota"] {
        assert_eq!(header(&r, h), "", "{h}");
    }
    assert_eq!(get_status(&tc, true, &alice_container(&tc, "hidden")).await, 403);
}

/// The per-entry rule at listing scale: a grantee pages through a shared
/// folder of 10,000 objects next to 5,000 unshared ones and sees exactly the
/// shared ones, 10,000 to a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grantee_listings_of_ten_thousand_entries() {
    let tc = TestCloud::start().await;
    tc.bulk_objects("pithos", "closed/", 5000).await;
    alice_folder(&tc, "open", Some(format!("read={}", tc.bob))).await;
    tc.bulk_objects("pithos", "open/", 10_000).await;
    tc.bulk_objects("pithos", "zz-closed/", 5000).await;
    let url = alice_container(&tc, "pithos");
    let first = names(&tc, true, &url).await;
    assert_eq!(first.len(), 10_000);
    assert_eq!(first[0], "open");
    assert_eq!(first[9_999], "open/09998");
    let rest = names(&tc, true, &format!("{url}?marker={}", quote(&first[9_999]))).await;
    assert_eq!(rest, ["open/09999"]);
    let v = json_of(tc.bob(GET, &format!("{url}?format=json&prefix=open/&limit=10000")).send().await.unwrap()).await;
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 10_000);
    assert!(entries.iter().all(|e| e["name"].as_str().unwrap().starts_with("open/")));
}

/// The list of accounts sharing with the caller and the containers shown follow
/// the same rule: an entry that names others only shows nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_accounts_follow_the_same_rule() {
    let tc = TestCloud::start().await;
    alice_put(&tc, "mine", "text/plain", b"x", &[("X-Object-Sharing", format!("read={}", tc.alice))]).await;
    let top = format!("{}/?format=json", tc.pithos());
    let v = json_of(tc.bob(GET, &top).send().await.unwrap()).await;
    assert_eq!(v, json!([]), "an entry that names others only");
    assert_eq!(get_status(&tc, true, &format!("{}/{}", tc.pithos(), tc.alice)).await, 403);
    // through a group bob belongs to
    let r = tc
        .alice(POST, &format!("{}/{}?update", tc.pithos(), tc.alice))
        .header("X-Account-Group-Friends", tc.bob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    share(&tc, "mine", format!("read={}:friends", tc.alice)).await;
    let v = json_of(tc.bob(GET, &top).send().await.unwrap()).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], tc.alice);
    assert_eq!(names(&tc, true, &alice_container(&tc, "pithos")).await, ["mine"]);
}

/// Probing: another account's missing container answers as one with nothing
/// shared (403), not 404; a missing object in a shared container is 404 only
/// where the caller could read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn others_containers_cannot_be_probed() {
    let tc = TestCloud::start().await;
    let r = tc.alice(PUT, &alice_container(&tc, "exists")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    for c in ["exists", "no-such-container"] {
        assert_eq!(get_status(&tc, true, &alice_container(&tc, c)).await, 403, "{c}");
        let r = tc.bob(HEAD, &alice_container(&tc, c)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{c}");
        let obj = format!("{}/x", alice_container(&tc, c));
        assert_eq!(get_status(&tc, true, &obj).await, 403, "{c}/x");
        let dst = bob_url(&tc, "pithos", "x");
        let src = format!("/{c}/x");
        assert_eq!(bob_put_from(&tc, "X-Copy-From", &dst, &src, &tc.alice.clone(), None).await, 403, "copy {c}/x");
    }
    assert_eq!(get_status(&tc, false, &alice_container(&tc, "no-such-container")).await, 404, "the owner is told");
}

/// A grant covers the history of the object it is on, not the versions of
/// earlier objects that had its name (deleted before the folder was shared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grantees_see_the_history_of_the_object_only() {
    let tc = TestCloud::start().await;
    alice_put(&tc, "folder/plan.txt", "text/plain", b"the old secret plan", &[]).await;
    let old =
        header(&tc.alice(HEAD, &tc.object_url("pithos", "folder/plan.txt")).send().await.unwrap(), "x-object-version");
    let r = tc.alice(DELETE, &tc.object_url("pithos", "folder/plan.txt")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    alice_put(&tc, "folder/plan.txt", "text/plain", b"plan v1", &[]).await;
    alice_put(&tc, "folder/plan.txt", "text/plain", b"plan v2", &[]).await;
    alice_folder(&tc, "folder", Some(format!("read={}", tc.bob))).await;
    let url = tc.object_url("pithos", "folder/plan.txt");
    let v = json_of(tc.alice(GET, &format!("{url}?version=list&format=json")).send().await.unwrap()).await;
    assert_eq!(v["versions"].as_array().unwrap().len(), 3, "the owner sees every version of the name");
    let v = json_of(tc.bob(GET, &format!("{url}?version=list&format=json")).send().await.unwrap()).await;
    let versions = v["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{v}");
    assert!(versions.iter().all(|p| p[0] != old.parse::<i64>().unwrap()));
    let r = tc.bob(GET, &format!("{url}?version={old}")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let first = versions[0][0].to_string();
    let r = tc.bob(GET, &format!("{url}?version={first}")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "plan v1");
    // nor through a copy with X-Source-Version
    let dst = bob_url(&tc, "pithos", "stolen");
    let r = tc
        .bob(PUT, &dst)
        .header("X-Copy-From", "/pithos/folder/plan.txt")
        .header("X-Source-Account", tc.alice.clone())
        .header("X-Source-Version", old.clone())
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // nor as the source of a partial update (an append from X-Source-Object)
    let mine = bob_url(&tc, "pithos", "mine");
    let r = tc.bob(PUT, &mine).header("Content-Type", "text/plain").body("mine:").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let append = |version: String| {
        tc.bob(POST, &mine)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", "bytes */*")
            .header("X-Source-Object", "/pithos/folder/plan.txt")
            .header("X-Source-Account", tc.alice.clone())
            .header("X-Source-Version", version)
            .header("Content-Length", "0")
            .send()
    };
    assert_eq!(append(old.clone()).await.unwrap().status(), 404);
    assert_eq!(append(first.clone()).await.unwrap().status(), 204, "a version of the object itself is fine");
    let r = tc.bob(GET, &mine).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "mine:plan v1");
    let r = tc.alice(GET, &format!("{url}?version={old}")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "the old secret plan", "the owner still reads it");
}

/// A manifest a grantee writes into a shared folder cannot name the owner's
/// private objects for itself: each part is read with the reader's rights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_read_parts_with_the_readers_rights() {
    let tc = TestCloud::start().await;
    alice_put(&tc, "private/part1", "text/plain", b"private ", &[]).await;
    alice_put(&tc, "private/part2", "text/plain", b"data", &[]).await;
    alice_folder(&tc, "inbox", Some(format!("write={}", tc.bob))).await;
    let manifest = tc.object_url("pithos", "inbox/m");
    let r = tc
        .bob(PUT, &manifest)
        .header("Content-Type", "text/plain")
        .header("X-Object-Manifest", "pithos/private/")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(get_status(&tc, true, &manifest).await, 403);
    let r = tc.alice(GET, &manifest).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "private data");
}

/// The user catalog answers for the UUIDs and names asked, never with the
/// whole list (the `/service/` path included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_catalogs_answer_only_what_is_asked() {
    let tc = TestCloud::start().await;
    for path in ["user_catalogs", "service/user_catalogs"] {
        let url = format!("{}/{path}", tc.account_api());
        for body in [json!({}), json!({"uuids": null, "displaynames": null}), json!({"uuids": []})] {
            let v = json_of(tc.bob(POST, &url).json(&body).send().await.unwrap()).await;
            assert_eq!(v, json!({"uuid_catalog": {}, "displayname_catalog": {}}), "{path} {body}");
        }
        let asked = json!({"uuids": [tc.alice, "nobody"], "displaynames": ["bob@example.org"]});
        let v = json_of(tc.bob(POST, &url).json(&asked).send().await.unwrap()).await;
        assert_eq!(
            v,
            json!({"uuid_catalog": {tc.alice.clone(): "alice@example.org"},
                   "displayname_catalog": {"bob@example.org": tc.bob.clone()}})
        );
    }
}

/// Server passwords are returned once at creation and kept nowhere; one an
/// earlier version stored is wiped when the data directory is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_passwords_are_said_once_and_not_kept() {
    use pithosfs::cloud::{self, users::UserSpec, ServeConfig};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |data: std::path::PathBuf| async move {
        let mut config = ServeConfig::new(data);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.users = vec![UserSpec { name: "alice@example.org".into(), token: Some(ALICE_TOKEN.into()) }];
        let running = cloud::bind(config).await.unwrap();
        let (url, cloud) = (running.url.clone(), running.cloud.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(running.run(async move {
            let _ = stopped.await;
        }));
        (url, cloud, stop, task)
    };
    let (url, cloud, stop, task) = start(data.clone()).await;
    let http = reqwest::Client::new();
    let alice = cloud.users.by_name("alice@example.org").unwrap().uuid.clone();
    let pithos = format!("{url}{}", cloud::PITHOS_PATH);
    let r = http
        .put(format!("{pithos}/{alice}/pithos/disk"))
        .header("X-Auth-Token", ALICE_TOKEN)
        .header("Content-Type", "application/octet-stream")
        .body("not really a disk")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{url}{}/images/", cloud::IMAGE_PATH))
        .header("X-Auth-Token", ALICE_TOKEN)
        .header("X-Image-Meta-Name", "disk")
        .header("X-Image-Meta-Location", format!("pithos://{alice}/pithos/disk"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let image = header(&r, "x-image-meta-id");
    let compute = format!("{url}{}", cloud::COMPUTE_PATH);
    let body = json!({"server": {"name": "web", "imageRef": image, "flavorRef": 1,
                                 "adminPass": "Str0ngPassw0rdXYZ"}});
    let r =
        http.post(format!("{compute}/servers")).header("X-Auth-Token", ALICE_TOKEN).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let created = json_of(r).await;
    assert_eq!(created["server"]["adminPass"], "Str0ngPassw0rdXYZ", "said once, at creation");
    let id = created["server"]["id"].as_i64().unwrap();
    let password_url = format!("{compute}/servers/{id}/password");
    let r = http.get(&password_url).header("X-Auth-Token", ALICE_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(format!("{compute}/servers/{id}")).header("X-Auth-Token", ALICE_TOKEN).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("Str0ngPassw0rdXYZ"));
    let on_disk = |data: &std::path::Path, secret: &str| {
        ["meta.sqlite", "meta.sqlite-wal"].iter().any(|f| {
            std::fs::read(data.join(f)).is_ok_and(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
        })
    };
    assert!(!on_disk(&data, "Str0ngPassw0rdXYZ"), "the password is in the database");

    // An earlier version kept passwords in clear: one is wiped at the next start.
    cloud
        .db
        .write(move |tx| {
            tx.execute(
                "UPDATE servers SET admin_pass = 'OldClearPassw0rd' WHERE id = ?1",
                pithosfs::cloud::sql::params![id],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    drop((http, cloud));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    assert!(on_disk(&data, "OldClearPassw0rd"), "the setup stored one");
    let (url, cloud, stop, task) = start(data.clone()).await;
    let r = reqwest::Client::new()
        .get(format!("{url}{}/servers/{id}/password", cloud::COMPUTE_PATH))
        .header("X-Auth-Token", ALICE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(cloud);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    assert!(!on_disk(&data, "OldClearPassw0rd"), "wiped from the pages, not only unlinked");
}

/// The data directory is 0700 and every file in it 0600, whatever the umask
/// `pithosfs serve` was started with; an existing open one is closed up.
#[test]
fn data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let users = dir.path().join("users");
    std::fs::write(&users, format!("alice {ALICE_TOKEN}\nbob {BOB_TOKEN}\n")).unwrap();
    let check = |data: &std::path::Path| {
        let mut open = Vec::new();
        let mut files = 0;
        let mut stack = vec![data.to_path_buf()];
        while let Some(d) = stack.pop() {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            if mode != 0o700 {
                open.push(format!("{} {mode:o}", d.display()));
            }
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    files += 1;
                    let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                    if mode != 0o600 {
                        open.push(format!("{} {mode:o}", e.path().display()));
                    }
                }
            }
        }
        assert!(files >= 5, "looked at {files} files only");
        assert!(open.is_empty(), "{} not private, among them: {:?}", open.len(), &open[..open.len().min(8)]);
    };
    let run = |extra: &[&str]| {
        let serve = Serve::start(&data, &users, extra);
        let url = format!("{}{}", serve.url, pithosfs::cloud::PITHOS_PATH);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let http = reqwest::Client::new();
            let body = json!({"auth": {"token": {"id": ALICE_TOKEN}}});
            let r = http.post(format!("{}/identity/v2.0/tokens", serve.url)).json(&body).send().await.unwrap();
            let alice = json_of(r).await["access"]["user"]["id"].as_str().unwrap().to_string();
            let r = http
                .put(format!("{url}/{alice}/pithos/photo-{}", extra.len()))
                .header("X-Auth-Token", ALICE_TOKEN)
                .header("Content-Type", "application/octet-stream")
                .body(vec![7u8; 100_000])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        });
        drop(serve);
    };
    run(&["--user", "carol"]);
    check(&data);
    // as an earlier version left it: open to everyone
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    run(&[]);
    check(&data);
}

/// A `pithosfs serve` child started with umask 022, stopped on drop.
struct Serve {
    child: std::process::Child,
    url: String,
}

impl Serve {
    fn start(data: &std::path::Path, users: &std::path::Path, extra: &[&str]) -> Serve {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pithosfs"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--users-file")
            .arg(users)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        // SAFETY: umask is async-signal-safe and touches nothing but the mask.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("http://"), "{line:?}");
        Serve { child, url: line.trim().to_string() }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `serve` says to a bad users file or user name: the line, the rule,
/// never the token; and no name makes a path outside `DIR/tokens`.
#[test]
fn users_files_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let users = dir.path().join("users");
    // Refused means: exits, unsuccessfully, within a few seconds.
    let serve = |args: &[&str]| {
        use std::io::Read;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pithosfs"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(status.is_some_and(|s| !s.success()), "accepted {args:?}");
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        err
    };
    std::fs::write(&users, "carol carols-token-15\n").unwrap();
    let err = serve(&["--users-file", users.to_str().unwrap()]);
    assert!(err.contains(":1:") && err.contains("at least 16"), "{err}");
    assert!(!err.contains("carols-token-15"), "the token is echoed: {err}");
    let err = serve(&["--user", "tab\tname"]);
    assert!(err.contains("bad user name"), "{err}");
    for name in ["../evil", "..", ".", "a/b", ".hidden", "back\\slash"] {
        let err = serve(&["--user", name]);
        assert!(err.contains("bad user name"), "{name}: {err}");
        std::fs::write(&users, format!("{name} a-long-enough-token-0123\n")).unwrap();
        let err = serve(&["--users-file", users.to_str().unwrap()]);
        assert!(err.contains("bad user name"), "{name} in a file: {err}");
        assert!(!err.contains("a-long-enough-token-0123"), "{err}");
    }
    std::fs::write(&users, b"nul\0name a-long-enough-token-0123\n").unwrap();
    let err = serve(&["--users-file", users.to_str().unwrap()]);
    assert!(err.contains("bad user name"), "{err}");
    assert!(!dir.path().join("evil").exists() && !data.join("evil").exists());
    assert!(!data.join("tokens").exists(), "nothing written for refused users");
    // a good one, for contrast
    std::fs::write(&users, "carol carols-token-0123456\n").unwrap();
    let serve = Serve::start(&data, &users, &[]);
    assert!(serve.url.starts_with("http://127.0.0.1:"));
    let seen: BTreeSet<String> =
        std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(seen.contains("meta.sqlite"), "{seen:?}");
}

/// Block size of the block-level tests: small blocks, many of them.
const BS: usize = 4096;

fn object_at(tc: &TestCloud, account: &str, container: &str, name: &str) -> String {
    format!("{}/{account}/{container}/{}", tc.pithos(), quote(name))
}

// ---------- block hashes are not keys ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_hashes_are_not_keys() {
    let tc = TestCloud::start_with(|c| c.block_size = BS as u64).await;
    let secret = random_bytes(3 * BS + 100, 1);
    let alice_url = object_at(&tc, &tc.alice, "pithos", "secret.bin");
    tc.put_object("pithos", "secret.bin", &secret).await;
    let hashes = hashmap_of(&secret, BS as u64);

    // bob lists alice's hashes: answered exactly as blocks the server lacks
    let bob_url = object_at(&tc, &tc.bob, "pithos", "stolen.bin");
    let (status, missing) = put_hashmap(&tc, BOB_TOKEN, &bob_url, secret.len(), &hashes).await;
    assert_eq!(status, 409);
    assert_eq!(missing, hexes(&hashes));
    let unknown = blocks::hash_block(Algorithm::Sha256, b"no one has this");
    let mixed = [hashes[0], unknown];
    let (status, missing) = put_hashmap(&tc, BOB_TOKEN, &bob_url, 2 * BS, &mixed).await;
    assert_eq!((status, missing), (409, hexes(&mixed)), "no difference between a stored and an unknown block");
    assert_eq!(get_bytes(&tc, BOB_TOKEN, &bob_url).await.0, 404);

    // once bob proves he has the bytes, the same hashmap goes in
    post_blocks(&tc, BOB_TOKEN, &tc.bob, "pithos", &secret).await;
    assert_eq!(put_hashmap(&tc, BOB_TOKEN, &bob_url, secret.len(), &hashes).await.0, 201);
    assert_eq!(get_bytes(&tc, BOB_TOKEN, &bob_url).await, (200, secret.clone()));
    // and it does not open alice's object to him
    assert_eq!(get_bytes(&tc, BOB_TOKEN, &alice_url).await.0, 403);

    // alice reuses her own blocks without uploading, in any of her containers
    let r = tc.alice(PUT, &format!("{}/{}/other", tc.pithos(), tc.alice)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let again = object_at(&tc, &tc.alice, "other", "again.bin");
    assert_eq!(put_hashmap(&tc, ALICE_TOKEN, &again, secret.len(), &hashes).await, (201, vec![]));
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &again).await, (200, secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_may_list_blocks_of_what_is_shared_with_it() {
    let tc = TestCloud::start_with(|c| c.block_size = BS as u64).await;
    let shared = random_bytes(2 * BS + 7, 2);
    let private = random_bytes(2 * BS, 3);
    tc.put_object("pithos", "docs/shared.bin", &shared).await;
    tc.put_object("pithos", "docs/private.bin", &private).await;
    let shared_url = object_at(&tc, &tc.alice, "pithos", "docs/shared.bin");
    let r = tc.alice(POST, &shared_url).header("X-Object-Sharing", format!("read={}", tc.bob)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    // bob copies the shared file by hashmap: no data moves
    let copy = object_at(&tc, &tc.bob, "pithos", "copy.bin");
    assert_eq!(put_hashmap(&tc, BOB_TOKEN, &copy, shared.len(), &hashmap_of(&shared, BS as u64)).await, (201, vec![]));
    assert_eq!(get_bytes(&tc, BOB_TOKEN, &copy).await, (200, shared.clone()));
    // the unshared sibling's blocks are not his
    let hm = hashmap_of(&private, BS as u64);
    let (status, missing) = put_hashmap(&tc, BOB_TOKEN, &copy, private.len(), &hm).await;
    assert_eq!((status, missing), (409, hexes(&hm)));

    // a writer rewrites the shared object keeping all but one block, as the mount commits an edit
    let r = tc.alice(POST, &shared_url).header("X-Object-Sharing", format!("write={}", tc.bob)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let mut edited = shared.clone();
    edited[BS + 1] ^= 0xff;
    let hm = hashmap_of(&edited, BS as u64);
    let (status, missing) = put_hashmap(&tc, BOB_TOKEN, &shared_url, edited.len(), &hm).await;
    assert_eq!((status, missing), (409, vec![hm[1].to_hex()]), "only the changed block is asked for");
    post_blocks(&tc, BOB_TOKEN, &tc.alice, "pithos", &edited[BS..2 * BS]).await;
    assert_eq!(put_hashmap(&tc, BOB_TOKEN, &shared_url, edited.len(), &hm).await.0, 201);
    assert_eq!(get_bytes(&tc, ALICE_TOKEN, &shared_url).await, (200, edited));
}
