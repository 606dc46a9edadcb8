//! The storage and Pithos+ clients against the local cloud, and against
//! servers that misbehave.

mod common;

use bytes::Bytes;
use common::blocks::random_bytes;
use common::faults::{canned_server, CuttingProxy};
use common::{TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::clients::pithos::{PithosClient, TransferOptions};
use pithosfs::clients::storage::{GetOptions, ListOptions, Listed, ObjectStorage, PutOptions};
use pithosfs::clients::{ClientError, Http, Options};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn alice(tc: &TestCloud) -> PithosClient {
    PithosClient::new(&tc.pithos(), ALICE_TOKEN, &tc.alice, "pithos").unwrap()
}

async fn small_blocks() -> TestCloud {
    TestCloud::start_with(|c| c.block_size = 64 * 1024).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_download_by_hashmap_send_only_what_is_missing() {
    let tc = small_blocks().await;
    let p = alice(&tc);
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(64 * 1024 * 20 + 123, 1);
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let before = p.http().stats();
    let w = p.upload_file("dir/big.bin", &src, &PutOptions::default()).await.unwrap();
    let sent = p.http().stats() - before;
    assert!(sent.bytes_up >= data.len() as u64, "all blocks were new: {sent:?}");
    let hm = p.get_object_hashmap("dir/big.bin", None).await.unwrap();
    assert_eq!(hm.bytes, data.len() as u64);
    assert_eq!(hm.hashes.len(), 21);
    assert_eq!(w.etag, pithosfs::blocks::merkle(hm.algorithm, &hm.hashes).to_hex());
    // re-uploading the same file sends no block data, only the hashmap
    let before = p.http().stats();
    p.upload_file("dir/big.bin", &src, &PutOptions::default()).await.unwrap();
    let again = p.http().stats() - before;
    assert!(again.bytes_up < 4096, "unchanged upload sent {} bytes", again.bytes_up);
    // a copy under another name needs no blocks either
    p.upload_file("copy.bin", &src, &PutOptions::default()).await.unwrap();
    // download into a file
    let dst = dir.path().join("dst.bin");
    p.download_file("dir/big.bin", &dst, &TransferOptions::default()).await.unwrap();
    assert_eq!(sha(&std::fs::read(&dst).unwrap()), sha(&data));
    // resume: a file that already holds most blocks fetches only the rest
    let mut partial = data.clone();
    partial[64 * 1024 * 3 + 5] ^= 0xff;
    std::fs::write(&dst, &partial).unwrap();
    let before = p.http().stats();
    p.download_file("dir/big.bin", &dst, &TransferOptions { resume: true, ..Default::default() }).await.unwrap();
    let fetched = p.http().stats() - before;
    assert_eq!(sha(&std::fs::read(&dst).unwrap()), sha(&data));
    assert!(fetched.bytes_down < 2 * 64 * 1024 + 8192, "resume fetched {} bytes", fetched.bytes_down);
    // streamed download and upload from a reader
    let mut out = Vec::new();
    let n = p.download_to_writer("dir/big.bin", &mut out, &TransferOptions::default()).await.unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(sha(&out), sha(&data));
    p.upload_reader("from-reader", &data[..100_000], &PutOptions::default()).await.unwrap();
    let (_, got) = p.get_object("from-reader", &GetOptions::default()).await.unwrap();
    assert_eq!(&got[..], &data[..100_000]);
    // empty objects
    p.upload_from_bytes("empty", Bytes::new(), &PutOptions::default()).await.unwrap();
    let empty_dst = dir.path().join("empty");
    p.download_file("empty", &empty_dst, &TransferOptions::default()).await.unwrap();
    assert_eq!(std::fs::metadata(&empty_dst).unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_listings_metadata_and_folders() {
    let tc = TestCloud::start().await;
    let p = alice(&tc);
    let opts = PutOptions {
        content_type: Some("text/plain".into()),
        meta: vec![("Color".into(), "blue ά".into())],
        ..Default::default()
    };
    p.put_object("docs/a.txt", Bytes::from_static(b"hello"), &opts).await.unwrap();
    p.create_directory("docs").await.unwrap();
    p.put_object("docs/sub/b.txt", Bytes::from_static(b"b"), &PutOptions::default()).await.unwrap();
    let info = p.get_object_info("docs/a.txt").await.unwrap();
    assert_eq!(info.bytes, 5);
    assert_eq!(info.content_type, "text/plain");
    assert_eq!(info.meta.get("color").map(String::as_str), Some("blue ά"));
    assert!(info.last_modified.is_some());
    assert!(p.get_object_info("docs").await.unwrap().is_directory());
    // listings
    let all = p.list_objects(&ListOptions::default()).await.unwrap();
    let names: Vec<&str> = all.iter().map(|e| e.name()).collect();
    assert_eq!(names, vec!["docs", "docs/a.txt", "docs/sub/b.txt"]);
    let children = p
        .list_objects(&ListOptions { prefix: Some("docs/".into()), delimiter: Some("/".into()), ..Default::default() })
        .await
        .unwrap();
    assert!(
        matches!(&children[0], Listed::Object(o) if o.name == "docs/a.txt" && o.meta.get("color").map(String::as_str) == Some("blue ά"))
    );
    assert!(matches!(&children[1], Listed::Subdir(s) if s == "docs/sub/"));
    // metadata update and ranged, conditional reads
    p.set_object_meta("docs/a.txt", &[("Color", ""), ("Size", "small")]).await.unwrap();
    let info = p.get_object_info("docs/a.txt").await.unwrap();
    assert_eq!(info.meta.get("color"), None);
    assert_eq!(info.meta.get("size").map(String::as_str), Some("small"));
    let (_, part) =
        p.get_object("docs/a.txt", &GetOptions { range: Some((1, 3)), ..Default::default() }).await.unwrap();
    assert_eq!(&part[..], b"ell");
    let err = p
        .get_object("docs/a.txt", &GetOptions { if_none_match: Some(info.etag.clone()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.status, 304);
    // folder move in one request, then delete the tree
    p.move_tree("pithos", "docs", "moved").await.unwrap();
    let names: Vec<String> =
        p.list_objects(&ListOptions::default()).await.unwrap().iter().map(|e| e.name().to_string()).collect();
    assert_eq!(names, vec!["moved", "moved/a.txt", "moved/sub/b.txt"]);
    p.copy_object("pithos", "moved/a.txt", "copy.txt").await.unwrap();
    p.delete_tree("moved").await.unwrap();
    let names: Vec<String> =
        p.list_objects(&ListOptions::default()).await.unwrap().iter().map(|e| e.name().to_string()).collect();
    assert_eq!(names, vec!["copy.txt"]);
    // containers
    let other = p.with_container("photos");
    other.create_container_with(Some("none"), Some(1_000_000)).await.unwrap();
    assert_eq!(other.get_container_versioning().await.unwrap(), "none");
    assert_eq!(other.get_container_quota().await.unwrap(), 1_000_000);
    let containers: Vec<String> = p.list_containers().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(containers, vec!["photos", "pithos"]);
    other.delete_container().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_past_ten_thousand() {
    let tc = TestCloud::start().await;
    tc.bulk_objects("pithos", "n/", 10_007).await;
    let p = alice(&tc);
    let all = p.list_objects(&ListOptions::default()).await.unwrap();
    assert_eq!(all.len(), 10_007);
    assert_eq!(all[10_006].name(), "n/10006");
    let some = p
        .list_objects(&ListOptions { limit: Some(3), marker: Some("n/00009".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(some.iter().map(|e| e.name()).collect::<Vec<_>>(), vec!["n/00010", "n/00011", "n/00012"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_sharing_public_and_partial_updates() {
    let tc = TestCloud::start().await;
    let p = alice(&tc);
    p.put_object("v.txt", Bytes::from_static(b"one"), &PutOptions::default()).await.unwrap();
    p.put_object("v.txt", Bytes::from_static(b"two"), &PutOptions::default()).await.unwrap();
    let versions = p.get_object_versionlist("v.txt").await.unwrap();
    assert_eq!(versions.len(), 2);
    let (_, old) = p
        .get_object("v.txt", &GetOptions { version: Some(versions[0].0.clone()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(&old[..], b"one");
    // sharing
    p.set_object_sharing("v.txt", &[&tc.bob], &[]).await.unwrap();
    assert_eq!(p.get_object_sharing("v.txt").await.unwrap(), (vec![tc.bob.clone()], vec![]));
    let bob = PithosClient::new(&tc.pithos(), BOB_TOKEN, &tc.bob, "pithos").unwrap();
    assert_eq!(bob.get_sharing_accounts().await.unwrap(), vec![tc.alice.clone()]);
    let (_, seen) = bob.with_account(&tc.alice).get_object("v.txt", &GetOptions::default()).await.unwrap();
    assert_eq!(&seen[..], b"two");
    p.del_object_sharing("v.txt").await.unwrap();
    let err = bob.with_account(&tc.alice).get_object("v.txt", &GetOptions::default()).await.unwrap_err();
    assert_eq!(err.status, 403);
    // public links
    let url = p.publish_object("v.txt").await.unwrap();
    let public = reqwest::get(&url).await.unwrap();
    assert_eq!(public.text().await.unwrap(), "two");
    p.unpublish_object("v.txt").await.unwrap();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    // partial updates
    p.put_object("p.txt", Bytes::from_static(b"0123456789"), &PutOptions::default()).await.unwrap();
    p.overwrite_object("p.txt", 2, Bytes::from_static(b"ab")).await.unwrap();
    p.append_object("p.txt", Bytes::from_static(b"XYZ")).await.unwrap();
    let (_, got) = p.get_object("p.txt", &GetOptions::default()).await.unwrap();
    assert_eq!(&got[..], b"01ab456789XYZ");
    p.put_object("src.txt", Bytes::from_static(b"SOURCE"), &PutOptions::default()).await.unwrap();
    p.write_from_object("p.txt", 9, "pithos", "src.txt", 3, None).await.unwrap();
    let (_, got) = p.get_object("p.txt", &GetOptions::default()).await.unwrap();
    assert_eq!(&got[..], b"01ab45678SOUZ");
    p.truncate_object("p.txt", 4).await.unwrap();
    let (_, got) = p.get_object("p.txt", &GetOptions::default()).await.unwrap();
    assert_eq!(&got[..], b"01ab");
    let (quota, used) = p.get_account_quota().await.unwrap();
    assert!(quota > 0);
    assert_eq!(used, 3 + 4 + 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_become_client_errors() {
    let tc = TestCloud::start_with(|c| c.quota = 1000).await;
    // wrong token
    let wrong = PithosClient::new(&tc.pithos(), "not-a-token", &tc.alice, "pithos").unwrap();
    let err = wrong.get_account_info().await.unwrap_err();
    assert_eq!(err.status, 401);
    assert!(!err.message.contains("not-a-token"));
    let err = wrong.list_objects(&ListOptions::default()).await.unwrap_err();
    assert_eq!(err.message, "Unauthorized unauthorized (Invalid token)");
    // missing object and container, bad names
    let p = alice(&tc);
    let err = p.get_object_info("nothing").await.unwrap_err();
    assert_eq!(err.status, 404);
    let err = p.get_object("nothing", &GetOptions::default()).await.unwrap_err();
    assert_eq!(err.message, "Not Found itemNotFound (Object does not exist)");
    let err = p.with_container(&"c".repeat(300)).get_container_info().await.unwrap_err();
    assert_eq!(err.status, 400);
    let err = p.with_container("nope").list_objects(&ListOptions::default()).await.unwrap_err();
    assert_eq!(err.status, 404);
    // quota
    let err = p.upload_from_bytes("big", Bytes::from(vec![1u8; 2000]), &PutOptions::default()).await.unwrap_err();
    assert_eq!(err.status, 413);
    assert!(err.message.contains("Quota"), "{}", err.message);
    // a refused connection, quickly and clearly
    let http = Http::with_options(
        "http://127.0.0.1:9",
        Some(ALICE_TOKEN),
        Options { retries: 1, first_backoff: Duration::from_millis(10), ..Default::default() },
    )
    .unwrap();
    let dead = PithosClient::with_http(http, &tc.alice, "pithos").unwrap();
    let err = dead.get_account_info().await.unwrap_err();
    assert_eq!(err.status, 0);
    assert!(err.message.contains("127.0.0.1:9") && err.message.contains("cannot connect"), "{}", err.message);
    assert!(!format!("{err:?}").contains(ALICE_TOKEN));
    // bad arguments
    assert!(PithosClient::new("not a url", ALICE_TOKEN, "a", "c").is_err());
    assert!(PithosClient::new(&tc.pithos(), ALICE_TOKEN, "a/b", "c").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replies_are_errors_not_panics() {
    let garbage = canned_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{not json",
    )
    .await;
    let p = PithosClient::new(&format!("{garbage}/v1"), ALICE_TOKEN, "acct", "pithos").unwrap();
    let err = p.list_objects(&ListOptions::default()).await.unwrap_err();
    assert!(err.message.contains("malformed JSON"), "{}", err.message);
    let err = p.get_object_hashmap("x", None).await.unwrap_err();
    assert!(err.message.contains("malformed JSON"), "{}", err.message);
    let err = p.upload_from_bytes("x", Bytes::from_static(b"abc"), &PutOptions::default()).await.unwrap_err();
    assert!(!err.message.is_empty());
    // wrong shapes of valid JSON
    let shapes = canned_server("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{\"bytes\": \"x\"}").await;
    let p = PithosClient::new(&format!("{shapes}/v1"), ALICE_TOKEN, "acct", "pithos").unwrap();
    let err = p.get_object_hashmap("x", None).await.unwrap_err();
    assert!(err.message.contains("hashmap"), "{}", err.message);
    let err: ClientError = p.list_objects(&ListOptions::default()).await.unwrap_err();
    assert!(err.message.contains("not a JSON list"), "{}", err.message);
    // a header that lies about the body
    let short = canned_server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this").await;
    let http = Http::with_options(
        &format!("{short}/v1"),
        None,
        Options { retries: 1, first_backoff: Duration::from_millis(5), ..Default::default() },
    )
    .unwrap();
    let p = PithosClient::with_http(http, "acct", "pithos").unwrap();
    let err = p.get_object("x", &GetOptions::default()).await.unwrap_err();
    assert!(err.message.contains("cut short"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_and_leave_correct_objects() {
    let tc = small_blocks().await;
    let proxy = CuttingProxy::start(&tc.url, 2000).await;
    let http = Http::with_options(
        &format!("{}/pithos/object-store/v1", proxy.url),
        Some(ALICE_TOKEN),
        Options { first_backoff: Duration::from_millis(20), ..Default::default() },
    )
    .unwrap();
    let p = PithosClient::with_http(http, &tc.alice, "pithos").unwrap().with_parallel(4);
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(64 * 1024 * 6 + 77, 9);
    let src = dir.path().join("src");
    std::fs::write(&src, &data).unwrap();
    // the next connections die after 2,000 bytes of reply: mid-body for block reads
    p.upload_file("retried.bin", &src, &PutOptions::default()).await.unwrap();
    proxy.cuts.store(3, std::sync::atomic::Ordering::SeqCst);
    let dst = dir.path().join("dst");
    // fresh connections are needed for cuts to bite: a new client
    let http = Http::with_options(
        &format!("{}/pithos/object-store/v1", proxy.url),
        Some(ALICE_TOKEN),
        Options { first_backoff: Duration::from_millis(20), ..Default::default() },
    )
    .unwrap();
    let p = PithosClient::with_http(http, &tc.alice, "pithos").unwrap().with_parallel(4);
    p.download_file("retried.bin", &dst, &TransferOptions::default()).await.unwrap();
    assert_eq!(sha(&std::fs::read(&dst).unwrap()), sha(&data));
    assert!(proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the proxy cut nothing");
    assert!(p.http().stats().retries >= 1, "nothing was retried: {:?}", p.http().stats());
    // an upload whose block POSTs are cut is retried and the object is whole
    proxy.cuts.store(2, std::sync::atomic::Ordering::SeqCst);
    let http = Http::with_options(
        &format!("{}/pithos/object-store/v1", proxy.url),
        Some(ALICE_TOKEN),
        Options { first_backoff: Duration::from_millis(20), ..Default::default() },
    )
    .unwrap();
    let p = PithosClient::with_http(http, &tc.alice, "pithos").unwrap().with_parallel(2);
    let data2 = random_bytes(64 * 1024 * 5, 10);
    std::fs::write(&src, &data2).unwrap();
    p.upload_file("retried2.bin", &src, &PutOptions::default()).await.unwrap();
    let direct = alice(&tc);
    let (_, got) = direct.get_object("retried2.bin", &GetOptions::default()).await.unwrap();
    assert_eq!(sha(&got), sha(&data2));
}
