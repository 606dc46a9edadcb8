//! The compute and Cyclades clients against the local cloud: flavors, the
//! compute view of images, a server's whole life (create from an image whose
//! OS is copied, wait, details, actions, metadata, delete), and faults.

mod common;

use common::{TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::clients::cyclades::server_status;
use pithosfs::clients::image::pithos_location;
use pithosfs::clients::{server_os, ComputeClient, CycladesClient, ImageClient, Metadata, NewServer, Properties};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn alice(tc: &TestCloud) -> CycladesClient {
    CycladesClient::new(&tc.compute(), ALICE_TOKEN).unwrap()
}

/// Uploads an object of alice's and registers it with `os` and `users`.
async fn debian_image(tc: &TestCloud, name: &str) -> String {
    tc.put_object("pithos", name, b"not really a disk image").await;
    let images = ImageClient::new(&tc.image(), ALICE_TOKEN).unwrap();
    let properties: Properties =
        [("os", "Debian Base"), ("users", "root"), ("osfamily", "linux")].map(|(k, v)| (k.into(), v.into())).into();
    let image = images
        .register(name, &pithos_location(&tc.alice, "pithos", name), &Default::default(), &properties)
        .await
        .unwrap();
    image["id"].as_str().unwrap().to_string()
}

fn id_of(server: &Value) -> u64 {
    server["id"].as_u64().unwrap_or_else(|| panic!("no numeric id in {server}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flavors() {
    let tc = TestCloud::start().await;
    let c = alice(&tc);
    let brief = c.list_flavors(false).await.unwrap();
    assert_eq!(brief.len(), 6);
    assert!(brief.iter().all(|f| f["name"].is_string() && f.get("ram").is_none()));
    let detail = c.list_flavors(true).await.unwrap();
    assert!(detail.iter().all(|f| f["ram"].is_u64() && f["vcpus"].is_u64() && f["disk"].is_u64()));
    let f = c.get_flavor_details(3).await.unwrap();
    assert_eq!((f["vcpus"].as_u64(), f["ram"].as_u64(), f["disk"].as_u64()), (Some(2), Some(2048), Some(40)));
    assert_eq!(c.get_flavor_details("3").await.unwrap()["id"], 3);
    assert_eq!(c.get_flavor_details(99).await.unwrap_err().status, 404);
    assert!(c.get_flavor_details("3/x").await.unwrap_err().message.contains("Invalid flavor id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_in_the_compute_view() {
    let tc = TestCloud::start().await;
    let id = debian_image(&tc, "debian.diskdump").await;
    let compute = ComputeClient::new(&tc.compute(), ALICE_TOKEN).unwrap();
    let list = compute.list_images(false).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    let detail = compute.list_images(true).await.unwrap();
    assert_eq!(detail[0]["status"], "ACTIVE");
    let image = compute.get_image_details(&id).await.unwrap();
    assert_eq!(image["metadata"]["os"], "Debian Base");
    let meta = compute.get_image_metadata(&id, None).await.unwrap();
    assert_eq!(meta["users"], "root");
    assert_eq!(compute.get_image_metadata(&id, Some("os")).await.unwrap().len(), 1);
    assert_eq!(compute.get_image_details("no-such-image").await.unwrap_err().status, 404);
    compute.delete_image(&id).await.unwrap();
    assert!(compute.list_images(false).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_from_create_to_delete() {
    let tc = TestCloud::start().await;
    let image = debian_image(&tc, "debian.diskdump").await;
    let c = alice(&tc);

    // created from the image, its os/users copied as kamaki does
    let created = c.create_server(&NewServer::new("A Debian Server", 1, &image)).await.unwrap();
    let id = id_of(&created);
    assert_eq!(server_status(&created), Some("BUILD"));
    assert!(created["adminPass"].as_str().is_some_and(|p| p.len() >= 10));
    assert_eq!(created["metadata"]["os"], "Debian Base");
    assert_eq!(created["metadata"]["users"], "root");
    // what the caller sets wins over the image
    let custom = c.create_server(&NewServer::new("custom", 1, &image).meta("os", "Devuan")).await.unwrap();
    assert_eq!(server_os(&custom).as_deref(), Some("Devuan"));
    assert_eq!(custom["metadata"]["users"], "root");

    let active = c.wait_server_until(id, "ACTIVE", WAIT).await.unwrap();
    assert_eq!(server_status(&active), Some("ACTIVE"));
    let info = c.get_server_info(id).await.unwrap();
    assert_eq!(info["name"], "A Debian Server");
    assert_eq!(server_os(&info).as_deref(), Some("Debian Base"));
    assert_eq!(info["flavor"]["id"], 1);
    assert_eq!(info["image"]["id"], image.as_str());

    let brief = c.list_servers(false).await.unwrap();
    assert!(brief.iter().any(|s| s["id"] == id && s["name"] == "A Debian Server"));
    let detail = c.list_servers(true).await.unwrap();
    assert_eq!(detail.len(), 2);
    assert!(detail.iter().all(|s| s["status"].is_string()));

    c.update_server_name(id, "renamed").await.unwrap();
    assert_eq!(c.get_server_details(id).await.unwrap()["name"], "renamed");

    // metadata
    let meta = c.get_server_metadata(id, None).await.unwrap();
    assert_eq!(meta.get("os").map(String::as_str), Some("Debian Base"));
    let set = c.create_server_metadata(id, "color", "blue").await.unwrap();
    assert_eq!(set, Metadata::from([("color".to_string(), "blue".to_string())]));
    let merged = c.update_server_metadata(id, &Metadata::from([("size".to_string(), "L".to_string())])).await.unwrap();
    assert_eq!(merged.keys().collect::<Vec<_>>(), vec!["color", "os", "size", "users"]);
    assert_eq!(c.get_server_metadata(id, Some("size")).await.unwrap()["size"], "L");
    c.delete_server_metadata(id, "size").await.unwrap();
    assert_eq!(c.get_server_metadata(id, Some("size")).await.unwrap_err().status, 404);
    assert_eq!(c.delete_server_metadata(id, "size").await.unwrap_err().status, 404);

    // Synnefo's actions, then OpenStack's
    c.shutdown_server(id).await.unwrap();
    c.wait_server_until(id, "STOPPED", WAIT).await.unwrap();
    c.start_server(id).await.unwrap();
    c.wait_server_until(id, "ACTIVE", WAIT).await.unwrap();
    c.compute().shutdown_server(id).await.unwrap();
    c.wait_server_until(id, "STOPPED", WAIT).await.unwrap();
    c.compute().start_server(id).await.unwrap();
    c.wait_server_while(id, "STOPPED", WAIT).await.unwrap();
    c.wait_server_until(id, "ACTIVE", WAIT).await.unwrap();
    c.reboot_server(id, true).await.unwrap();
    c.wait_server_until(id, "ACTIVE", WAIT).await.unwrap();
    c.reboot_server(id, false).await.unwrap();
    c.wait_server_until(id, "ACTIVE", WAIT).await.unwrap();
    // starting a running server is refused
    assert_eq!(c.start_server(id).await.unwrap_err().status, 400);

    let console = c.get_server_console(id, "vnc").await.unwrap();
    assert_eq!(console["type"], "vnc");
    assert!(console["port"].is_u64() && console["password"].is_string() && console["host"].is_string());
    let stats = c.get_server_stats(id).await.unwrap();
    assert_eq!(stats["serverRef"], id);
    assert!(c.get_server_diagnostics(id).await.unwrap().is_empty());
    let nics = c.get_server_nics(id).await.unwrap();
    assert!(nics["addresses"].is_object(), "{nics}");

    c.delete_server(id).await.unwrap();
    let gone = c.wait_server_until(id, "DELETED", WAIT).await.unwrap();
    assert_eq!(gone["deleted"], true);
    assert!(!c.list_servers(false).await.unwrap().iter().any(|s| s["id"] == id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_is_bounded() {
    let tc = TestCloud::start_with(|c| c.build_seconds = 60.0).await;
    let image = debian_image(&tc, "slow.diskdump").await;
    let c = alice(&tc);
    let id = id_of(&c.create_server(&NewServer::new("slow", 2, &image)).await.unwrap());
    let started = std::time::Instant::now();
    let err = c.wait_server_until(id, "ACTIVE", Duration::from_millis(500)).await.unwrap_err();
    assert!(err.message.contains("Timed out") && err.message.contains("BUILD"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(5));
    // an action on a building server is a conflict
    assert_eq!(c.shutdown_server(id).await.unwrap_err().status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_become_client_errors() {
    let tc = TestCloud::start().await;
    let image = debian_image(&tc, "debian.diskdump").await;
    let c = alice(&tc);
    // a missing server
    let err = c.get_server_details(424242).await.unwrap_err();
    assert_eq!(err.status, 404);
    assert!(err.message.starts_with("Not Found itemNotFound ("), "{}", err.message);
    assert_eq!(c.delete_server(424242).await.unwrap_err().status, 404);
    // someone else's server is missing too
    let id = id_of(&c.create_server(&NewServer::new("mine", 1, &image)).await.unwrap());
    let bob = CycladesClient::new(&tc.compute(), BOB_TOKEN).unwrap();
    assert_eq!(bob.get_server_details(id).await.unwrap_err().status, 404);
    // creating from an image bob cannot see
    assert_eq!(bob.create_server(&NewServer::new("x", 1, &image)).await.unwrap_err().status, 404);
    // an unknown flavor
    assert_eq!(c.create_server(&NewServer::new("x", 99, &image)).await.unwrap_err().status, 404);
    // a wrong token
    let wrong = CycladesClient::new(&tc.compute(), "wrong-token-456").unwrap();
    let err = wrong.list_servers(false).await.unwrap_err();
    assert_eq!(err.status, 401);
    assert_eq!(err.message, "Unauthorized unauthorized (Invalid token)");
    assert!(!format!("{err:?}{wrong:?}").contains("wrong-token-456"));
    // bad ids and keys never leave the client
    assert!(c.get_server_metadata(id, Some("")).await.is_err());
    assert!(c.delete_server_metadata(id, "").await.is_err());
    assert!(c.get_server_details("1/action").await.is_err());
    assert!(c.get_server_details("").await.is_err());
}

/// A server that answers every request with `body` as JSON.
async fn answering(body: &str) -> String {
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    common::faults::canned_server(Box::leak(reply.into_boxed_str())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replies_are_errors_not_panics() {
    let garbage = answering("{\"servers\": ").await;
    let c = CycladesClient::new(&format!("{garbage}/compute/v2.0"), ALICE_TOKEN).unwrap();
    let err = c.list_servers(true).await.unwrap_err();
    assert!(err.message.contains("malformed JSON"), "{}", err.message);
    assert_eq!(err.status, 200);
    assert!(c.get_server_details(1).await.unwrap_err().message.contains("malformed JSON"));
    // JSON of the wrong shape
    let shaped = answering(r#"{"servers": {"not": "list"}, "metadata": {"k": ["v"]}}"#).await;
    let c = CycladesClient::new(&format!("{shaped}/compute/v2.0"), ALICE_TOKEN).unwrap();
    let err = c.list_servers(false).await.unwrap_err();
    assert_eq!(err.message, "Malformed reply: \"servers\" is not a list");
    let err = c.get_server_details(1).await.unwrap_err();
    assert_eq!(err.message, "Malformed reply: the reply has no \"server\"");
    let err = c.get_server_metadata(1, None).await.unwrap_err();
    assert!(err.message.contains("metadata key \"k\" is not text"), "{}", err.message);
    // nobody there at all: status 0, no panic
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let http = pithosfs::clients::Http::with_options(
        &format!("http://{closed}/compute/v2.0"),
        Some(ALICE_TOKEN),
        pithosfs::clients::Options { retries: 0, ..Default::default() },
    )
    .unwrap();
    let err = CycladesClient::from_http(http).list_servers(false).await.unwrap_err();
    assert_eq!(err.status, 0);
}
