//! The Astakos client against the local cloud: authentication and its
//! catalog, user info and terms, uuid ↔ name catalogs, quotas, and faults.

mod common;

use common::{TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::clients::astakos::with_default_version;
use pithosfs::clients::{AstakosClient, CycladesClient, ImageClient};

fn alice(tc: &TestCloud) -> AstakosClient {
    AstakosClient::new(&tc.identity(), ALICE_TOKEN).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_gives_token_user_and_catalog() {
    let tc = TestCloud::start().await;
    let astakos = alice(&tc);
    let access = astakos.authenticate().await.unwrap();
    assert_eq!(access["access"]["token"]["id"], ALICE_TOKEN);
    assert_eq!(access["access"]["user"]["id"], tc.alice.as_str());
    assert_eq!(access["access"]["token"]["tenant"]["id"], tc.alice.as_str());
    let services = astakos.get_services().await.unwrap();
    for kind in ["identity", "account", "object-store", "compute", "image"] {
        assert!(services.iter().any(|s| s["type"] == kind), "no {kind} in the catalog");
    }
    // the reply is kept: later calls make no request
    let before = astakos.http().stats();
    astakos.user_info().await.unwrap();
    astakos.get_endpoint_url("compute").await.unwrap();
    assert_eq!((astakos.http().stats() - before).requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_public_and_per_service() {
    let tc = TestCloud::start().await;
    let astakos = alice(&tc);
    // the public catalog needs no token
    let anonymous = AstakosClient::new(&tc.identity(), "not-a-token").unwrap();
    let public = anonymous.get_endpoints().await.unwrap();
    let catalog = public["access"]["serviceCatalog"].as_array().unwrap();
    assert!(catalog.iter().any(|s| s["name"] == "astakos_account"));
    assert!(public["access"].get("user").is_none());
    assert_eq!(astakos.get_endpoint_url("compute").await.unwrap(), tc.compute());
    assert_eq!(astakos.get_endpoint_url("IMAGE").await.unwrap(), tc.image());
    assert_eq!(astakos.get_endpoint_url("object-store").await.unwrap(), tc.pithos());
    let ep = astakos.get_service_endpoints("identity", Some("v2.0")).await.unwrap();
    assert_eq!(ep["publicURL"], tc.identity().as_str());
    let err = astakos.get_service_endpoints("identity", Some("v3")).await.unwrap_err();
    assert!(err.message.contains("No endpoint"), "{}", err.message);
    assert!(astakos.get_endpoint_url("network").await.is_err());
    assert_eq!(with_default_version(&tc.compute(), "v2.0"), tc.compute());
    // clients made from the catalog work, on the same pool and counters
    let cyclades = CycladesClient::from_catalog(&astakos).await.unwrap();
    assert_eq!(cyclades.base_url(), tc.compute());
    let before = astakos.http().stats();
    assert_eq!(cyclades.list_flavors(false).await.unwrap().len(), 6);
    assert_eq!((astakos.http().stats() - before).requests, 1);
    let images = ImageClient::from_catalog(&astakos).await.unwrap();
    assert!(images.list_public(false, &Default::default(), None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_info_and_terms() {
    let tc = TestCloud::start().await;
    let astakos = alice(&tc);
    let info = astakos.user_info().await.unwrap();
    assert_eq!(info["id"], tc.alice.as_str());
    assert_eq!(info["name"], "alice@example.org");
    assert_eq!(info["default_project"], tc.alice.as_str());
    assert_eq!(astakos.term("uuid").await.unwrap(), tc.alice);
    assert_eq!(astakos.term("id").await.unwrap(), tc.alice);
    assert_eq!(astakos.term("name").await.unwrap(), "alice@example.org");
    assert_eq!(astakos.user_term("roles").await.unwrap().unwrap()[0]["name"], "default");
    assert!(astakos.user_term("shoe_size").await.unwrap().is_none());
    assert!(astakos.term("shoe_size").await.unwrap_err().message.contains("shoe_size"));
    // another token, another user
    let bob = AstakosClient::new(&tc.identity(), BOB_TOKEN).unwrap();
    assert_eq!(bob.term("uuid").await.unwrap(), tc.bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uuids_and_names_both_ways() {
    let tc = TestCloud::start().await;
    let astakos = alice(&tc);
    let names = astakos.get_usernames(&[&tc.alice, &tc.bob, "no-such-uuid"]).await.unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names[&tc.alice], "alice@example.org");
    assert_eq!(names[&tc.bob], "bob@example.org");
    assert_eq!(astakos.get_username(&tc.bob).await.unwrap(), "bob@example.org");
    let err = astakos.get_username("no-such-uuid").await.unwrap_err();
    assert_eq!(err.status, 404);
    let uuids = astakos.get_uuids(&["alice@example.org", "bob@example.org", "carol@example.org"]).await.unwrap();
    assert_eq!(uuids.len(), 2);
    assert_eq!(uuids["bob@example.org"], tc.bob);
    assert_eq!(astakos.get_uuid("alice@example.org").await.unwrap(), tc.alice);
    assert_eq!(astakos.get_uuid("carol@example.org").await.unwrap_err().status, 404);
    let (by_uuid, by_name) = astakos.post_user_catalogs(&[&tc.alice], &["bob@example.org"]).await.unwrap();
    assert_eq!((by_uuid[&tc.alice].as_str(), by_name["bob@example.org"].as_str()), ("alice@example.org", &*tc.bob));
    assert!(astakos.get_usernames(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_resources() {
    let tc = TestCloud::start_with(|c| c.quota = 1 << 30).await;
    tc.put_object("pithos", "q.bin", &[7u8; 1000]).await;
    let astakos = alice(&tc);
    let quotas = astakos.get_quotas().await.unwrap();
    let disk = &quotas[&tc.alice]["pithos.diskspace"];
    assert_eq!(disk["limit"], 1u64 << 30);
    assert_eq!(disk["usage"], 1000);
    let resources = astakos.get_resources().await.unwrap();
    assert_eq!(resources["pithos.diskspace"]["unit"], "bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_a_401_client_error() {
    let tc = TestCloud::start().await;
    let astakos = AstakosClient::new(&tc.identity(), "wrong-token-123").unwrap();
    let err = astakos.authenticate().await.unwrap_err();
    assert_eq!(err.status, 401);
    assert_eq!(err.message, "Unauthorized unauthorized (Invalid token)");
    assert!(!format!("{err:?}{astakos:?}").contains("wrong-token-123"), "the token leaked");
    // everything that needs the catalog fails the same way
    assert_eq!(astakos.user_info().await.unwrap_err().status, 401);
    assert_eq!(astakos.get_usernames(&[&tc.alice]).await.unwrap_err().status, 401);
    assert_eq!(CycladesClient::from_catalog(&astakos).await.unwrap_err().status, 401);
    // not a URL at all
    assert!(AstakosClient::new("localhost:5000", ALICE_TOKEN).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_replies_are_errors() {
    let garbage = common::faults::canned_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{not json",
    )
    .await;
    let astakos = AstakosClient::new(&format!("{garbage}/identity/v2.0"), ALICE_TOKEN).unwrap();
    let err = astakos.authenticate().await.unwrap_err();
    assert!(err.message.contains("malformed JSON"), "{}", err.message);
    // valid JSON without the promised shape
    let shaped = common::faults::canned_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"access\": 1}",
    )
    .await;
    let astakos = AstakosClient::new(&format!("{shaped}/identity/v2.0"), ALICE_TOKEN).unwrap();
    let err = astakos.user_info().await.unwrap_err();
    assert!(err.message.starts_with("Malformed reply"), "{}", err.message);
}
