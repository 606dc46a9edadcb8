//! The Plankton image client against the local cloud: register, list with
//! filters and order, read and update metadata, members, unregister, faults.

mod common;

use common::{TestCloud, ALICE_TOKEN, BOB_TOKEN};
use pithosfs::clients::image::pithos_location;
use pithosfs::clients::{ImageClient, ImageFields, Properties};
use std::collections::BTreeMap;

fn props(pairs: &[(&str, &str)]) -> Properties {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn filters(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    props(pairs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_list_get_update_unregister() {
    let tc = TestCloud::start().await;
    tc.put_object("pithos", "debian base.diskdump", &[1u8; 3000]).await;
    tc.put_object("pithos", "tiny.extdump", &[2u8; 10]).await;
    let images = ImageClient::new(&tc.image(), ALICE_TOKEN).unwrap();

    let location = pithos_location(&tc.alice, "pithos", "debian base.diskdump");
    assert!(location.ends_with("/pithos/debian%20base.diskdump"), "{location}");
    let debian = images
        .register(
            "Debian Base ά",
            &location,
            &ImageFields::default(),
            &props(&[("os", "debian"), ("users", "root"), ("root_partition", "1")]),
        )
        .await
        .unwrap();
    let debian_id = debian["id"].as_str().unwrap().to_string();
    assert_eq!(debian["name"], "Debian Base ά");
    assert_eq!(debian["owner"], tc.alice.as_str());
    assert_eq!(debian["disk_format"], "diskdump");
    assert_eq!(debian["size"], "3000");
    assert_eq!(debian["properties"]["root_partition"], "1");
    assert_eq!(debian["properties"]["os"], "debian");

    let fields = ImageFields { disk_format: Some("extdump".into()), is_public: Some(true), ..ImageFields::default() };
    let tiny = images
        .register("tiny", &pithos_location(&tc.alice, "pithos", "tiny.extdump"), &fields, &props(&[]))
        .await
        .unwrap();
    let tiny_id = tiny["id"].as_str().unwrap().to_string();
    assert_eq!(tiny["is_public"], "True");

    // lists, brief and detailed, filtered and ordered
    let all = images.list_public(false, &filters(&[]), None).await.unwrap();
    assert_eq!(all.len(), 2);
    let detail = images.list_public(true, &filters(&[]), Some("name")).await.unwrap();
    let names: Vec<&str> = detail.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Debian Base ά", "tiny"]);
    assert_eq!(detail[0]["properties"]["users"], "root");
    let by_size = images.list_public(true, &filters(&[]), Some("-size")).await.unwrap();
    assert_eq!(by_size[0]["id"], debian_id.as_str());
    let small = images.list_public(false, &filters(&[("size_max", "100")]), None).await.unwrap();
    assert_eq!(small.len(), 1);
    assert_eq!(small[0]["id"], tiny_id.as_str());
    let extdump = images.list_public(false, &filters(&[("disk_format", "extdump")]), None).await.unwrap();
    assert_eq!(extdump.len(), 1);

    // metadata read back, then changed
    let meta = images.get_meta(&debian_id).await.unwrap();
    assert_eq!(meta["name"], "Debian Base ά");
    // the HTTP core decodes x-image-meta-* values, the location included
    assert_eq!(meta["location"], format!("pithos://{}/pithos/debian base.diskdump", tc.alice).as_str());
    assert_eq!(meta["properties"]["os"], "debian");
    let changed = images
        .update_image(
            &debian_id,
            &ImageFields { name: Some("Debian 12".into()), ..ImageFields::default() },
            &props(&[("os", "Debian Base"), ("description", "stable"), ("users", "")]),
        )
        .await
        .unwrap();
    assert_eq!(changed["name"], "Debian 12");
    assert_eq!(changed["properties"]["os"], "Debian Base");
    assert_eq!(changed["properties"]["description"], "stable");
    assert!(changed["properties"].get("users").is_none(), "an empty value removes a property");
    assert_eq!(images.get_meta(&debian_id).await.unwrap()["properties"], changed["properties"]);

    // bob sees only the public one; he may not change it
    let bob = ImageClient::new(&tc.image(), BOB_TOKEN).unwrap();
    let seen = bob.list_public(false, &filters(&[]), None).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["id"], tiny_id.as_str());
    assert_eq!(
        bob.update_image(&tiny_id, &ImageFields::default(), &props(&[("a", "b")])).await.unwrap_err().status,
        403
    );
    assert_eq!(bob.get_meta(&debian_id).await.unwrap_err().status, 404);

    images.unregister(&tiny_id).await.unwrap();
    assert_eq!(images.get_meta(&tiny_id).await.unwrap_err().status, 404);
    assert_eq!(images.unregister(&tiny_id).await.unwrap_err().status, 404);
    assert_eq!(images.list_public(false, &filters(&[]), None).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_an_image() {
    let tc = TestCloud::start().await;
    tc.put_object("pithos", "shared.diskdump", b"disk").await;
    let images = ImageClient::new(&tc.image(), ALICE_TOKEN).unwrap();
    let bob = ImageClient::new(&tc.image(), BOB_TOKEN).unwrap();
    let image = images
        .register("shared", &pithos_location(&tc.alice, "pithos", "shared.diskdump"), &Default::default(), &props(&[]))
        .await
        .unwrap();
    let id = image["id"].as_str().unwrap().to_string();
    assert!(images.list_members(&id).await.unwrap().is_empty());
    assert!(bob.list_public(false, &filters(&[]), None).await.unwrap().is_empty());

    images.add_member(&id, &tc.bob).await.unwrap();
    let members = images.list_members(&id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["member_id"], tc.bob.as_str());
    assert_eq!(bob.get_meta(&id).await.unwrap()["name"], "shared");
    assert_eq!(bob.list_public(false, &filters(&[]), None).await.unwrap().len(), 1);
    // Plankton's reading: alice's private images that bob may see
    let shared = bob.list_shared(&tc.alice).await.unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0]["image_id"], id.as_str());

    images.remove_member(&id, &tc.bob).await.unwrap();
    assert!(images.list_members(&id).await.unwrap().is_empty());
    assert_eq!(bob.get_meta(&id).await.unwrap_err().status, 404);

    images.set_members(&id, &[&tc.bob, "carol"]).await.unwrap();
    let mut ids: Vec<String> =
        images.list_members(&id).await.unwrap().iter().map(|m| m["member_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    let mut want = vec![tc.bob.clone(), "carol".to_string()];
    want.sort();
    assert_eq!(ids, want);
    images.set_members(&id, &[]).await.unwrap();
    assert!(images.list_members(&id).await.unwrap().is_empty());
    // only the owner manages members
    assert!(bob.add_member(&id, &tc.bob).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_faults() {
    let tc = TestCloud::start().await;
    let images = ImageClient::new(&tc.image(), ALICE_TOKEN).unwrap();
    let nothing = images
        .register("ghost", &pithos_location(&tc.alice, "pithos", "missing"), &Default::default(), &props(&[]))
        .await
        .unwrap_err();
    assert_eq!(nothing.status, 404);
    assert!(nothing.message.starts_with("Not Found itemNotFound ("), "{}", nothing.message);
    let bad = images.register("bad", "http://not/pithos", &Default::default(), &props(&[])).await.unwrap_err();
    assert_eq!(bad.status, 400);
    tc.put_object("pithos", "x.diskdump", b"x").await;
    let wrong_format = ImageFields { disk_format: Some("qcow9".into()), ..ImageFields::default() };
    let err = images
        .register("x", &pithos_location(&tc.alice, "pithos", "x.diskdump"), &wrong_format, &props(&[]))
        .await
        .unwrap_err();
    assert_eq!(err.status, 400);
    let wrong = ImageClient::new(&tc.image(), "wrong-token-789").unwrap();
    let err = wrong.list_public(false, &filters(&[]), None).await.unwrap_err();
    assert_eq!(err.status, 401);
    assert!(images.get_meta("a/b").await.is_err());
    assert!(images.list_public(false, &filters(&[("sort_key", "shoe")]), None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_list_shapes_are_read() {
    for body in [r#"[{"id": "a", "name": "A"}]"#, r#"{"images": [{"id": "a", "name": "A"}]}"#] {
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let url = common::faults::canned_server(Box::leak(reply.into_boxed_str())).await;
        let images = ImageClient::new(&format!("{url}/image/v1.0"), ALICE_TOKEN).unwrap();
        let list = images.list_public(false, &filters(&[]), None).await.unwrap();
        assert_eq!(list.len(), 1, "{body}");
        assert_eq!(list[0]["name"], "A");
    }
    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"images\": 3";
    let url = common::faults::canned_server(reply).await;
    let images = ImageClient::new(&format!("{url}/image/v1.0"), ALICE_TOKEN).unwrap();
    assert!(images.list_public(true, &filters(&[]), None).await.unwrap_err().message.contains("malformed JSON"));
}
