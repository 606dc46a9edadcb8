//! The storage client against a real OpenStack Swift: `scripts/swift start`
//! runs a one-node Swift with tempauth and prints its auth URL, which these
//! tests read from `PITHOSFS_SWIFT_AUTH`. Without it they are skipped, except
//! under CI, where they fail.

mod swift_env;

use bytes::Bytes;
use md5::{Digest, Md5};
use pithosfs::clients::storage::{GetOptions, ListOptions, Listed, ObjectStorage, PutOptions, StorageClient};
use pithosfs::clients::ClientError;
use std::future::Future;

const USER: &str = "test:tester";
const KEY: &str = "testing";

use swift_env::auth_url;

/// A container name of this test and this run (`<prefix>` or `<prefix>-more`).
fn unique(test: &str) -> String {
    swift_env::unique(&format!("pithosfs-{test}"))
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn names(listed: &[Listed]) -> Vec<String> {
    listed
        .iter()
        .map(|l| match l {
            Listed::Object(o) => o.name.clone(),
            Listed::Subdir(s) => format!("{s}*"),
        })
        .collect()
}

fn put_meta(ct: &str, meta: &[(&str, &str)]) -> PutOptions {
    PutOptions {
        content_type: Some(ct.to_string()),
        meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

fn status<T: std::fmt::Debug>(r: Result<T, ClientError>) -> u16 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.status,
    }
}

/// Deletes every container whose name starts with `prefix`, objects first.
async fn cleanup(c: &StorageClient, prefix: &str) {
    let Ok(all) = c.list_containers().await else { return };
    for entry in all.iter().filter(|e| e.name.starts_with(prefix)) {
        let cc = c.with_container(&entry.name);
        for _ in 0..5 {
            if let Ok(objects) = cc.list_objects(&ListOptions::default()).await {
                for o in objects {
                    let _ = cc.delete_object(o.name()).await;
                }
            }
            match cc.delete_container().await {
                Err(e) if e.status == 409 => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                _ => break,
            }
        }
    }
}

/// Runs `body` with a client on a fresh container (created), then removes the
/// test's containers whether the body passed or panicked.
async fn in_fresh_container<F, Fut>(test: &str, body: F)
where
    F: FnOnce(StorageClient) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = auth_url() else { return };
    let name = unique(test);
    let c = StorageClient::swift_v1_auth(&url, USER, KEY, &name).await.expect("v1 auth against Swift");
    c.create_container(&[]).await.expect("create the test container");
    let outcome = tokio::spawn(body(c.clone())).await;
    cleanup(&c, &name).await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("the test task failed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_accounts_and_storage_urls() {
    let Some(url) = auth_url() else { return };
    let name = unique("auth");

    // Wrong key, unknown user: 401 from the auth call itself.
    assert_eq!(status(StorageClient::swift_v1_auth(&url, USER, "wrong", &name).await), 401);
    assert_eq!(status(StorageClient::swift_v1_auth(&url, "test:nobody", KEY, &name).await), 401);

    let c = StorageClient::swift_v1_auth(&url, USER, KEY, &name).await.unwrap();
    assert_eq!(c.account(), "AUTH_test");
    assert_eq!(c.container(), name);
    assert!(!c.http().speaks_pithos());
    let info = c.get_account_info().await.unwrap();
    assert!(info.header("x-account-container-count").is_some(), "{:?}", info.headers);

    // A manual v1 auth, then a client from the storage URL and token.
    let reply =
        reqwest::Client::new().get(&url).header("X-Auth-User", USER).header("X-Auth-Key", KEY).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let storage_url = reply.headers()["x-storage-url"].to_str().unwrap().to_string();
    let token = reply.headers()["x-auth-token"].to_str().unwrap().to_string();
    assert!(storage_url.ends_with("/v1/AUTH_test"), "{storage_url}");
    let m = StorageClient::from_storage_url(&format!("{storage_url}/"), &token, &name).unwrap();
    assert_eq!(m.account(), "AUTH_test");
    m.create_container(&[("Origin", "manual")]).await.unwrap();
    // Creating it again is no error (202).
    m.create_container(&[]).await.unwrap();
    m.put_object("hello.txt", Bytes::from_static(b"hello"), &PutOptions::default()).await.unwrap();
    // The other client (its own token) sees what this one wrote.
    let (info, body) = c.get_object("hello.txt", &GetOptions::default()).await.unwrap();
    assert_eq!((&body[..], info.etag.as_str()), (&b"hello"[..], md5_hex(b"hello").as_str()));
    let listed = m.list_containers().await.unwrap();
    let mine = listed.iter().find(|e| e.name == name).expect("the new container is listed");
    assert!(mine.last_modified.is_some(), "{mine:?}");

    // A bad token: 401 on every call.
    let bad = StorageClient::from_storage_url(&storage_url, "AUTH_tk_not_a_token", &name).unwrap();
    assert_eq!(status(bad.get_account_info().await), 401);
    assert_eq!(status(bad.get_object("hello.txt", &GetOptions::default()).await), 401);
    assert!(StorageClient::from_storage_url("not a url", &token, &name).is_err());

    cleanup(&c, &name).await;
    assert!(!m.list_containers().await.unwrap().iter().any(|e| e.name == name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_metadata_and_reads() {
    in_fresh_container("objects", |c| async move {
        // Container metadata at creation, and its counters.
        c.create_container(&[("Purpose", "tests")]).await.unwrap();
        let info = c.get_container_info().await.unwrap();
        assert_eq!(info.meta("container").get("purpose").map(String::as_str), Some("tests"));
        assert_eq!(info.header("x-container-object-count"), Some("0"));

        let data = pattern(100_000, 1);
        let opts = put_meta("text/plain; charset=utf-8", &[("Color", "blue"), ("Two-Words", "hello world")]);
        let w = c.put_object("doc.txt", Bytes::from(data.clone()), &opts).await.unwrap();
        assert_eq!(w.etag, md5_hex(&data));
        assert_eq!(w.version, None);

        let i = c.get_object_info("doc.txt").await.unwrap();
        assert_eq!(i.bytes, data.len() as u64);
        assert_eq!(i.etag, md5_hex(&data));
        assert_eq!(i.content_type, "text/plain; charset=utf-8");
        assert_eq!(i.meta.get("color").map(String::as_str), Some("blue"));
        assert_eq!(i.meta.get("two-words").map(String::as_str), Some("hello world"));
        assert_eq!(i.meta.len(), 2, "{:?}", i.meta);
        assert!((i.hash.clone(), i.uuid.clone(), i.version.clone()) == (None, None, None));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let lm = i.last_modified.expect("Last-Modified parses");
        assert!((lm - now).abs() < 300.0, "last modified {lm}, now {now}");

        // Whole, ranged, ranged past the end.
        let (gi, body) = c.get_object("doc.txt", &GetOptions::default()).await.unwrap();
        assert_eq!(&body[..], &data[..]);
        assert_eq!((gi.bytes, gi.etag.as_str()), (data.len() as u64, i.etag.as_str()));
        assert_eq!(gi.meta, i.meta);
        let (ri, part) =
            c.get_object("doc.txt", &GetOptions { range: Some((10, 4095)), ..Default::default() }).await.unwrap();
        assert_eq!(&part[..], &data[10..4096]);
        assert_eq!(ri.bytes, data.len() as u64, "the total size comes from Content-Range");
        let (_, tail) = c
            .get_object("doc.txt", &GetOptions { range: Some((99_990, 200_000)), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(&tail[..], &data[99_990..]);
        let beyond = GetOptions { range: Some((200_000, 200_010)), ..Default::default() };
        assert_eq!(status(c.get_object("doc.txt", &beyond).await), 416);

        // Conditional reads.
        let etag = i.etag.clone();
        let none_match = GetOptions { if_none_match: Some(etag.clone()), ..Default::default() };
        assert_eq!(status(c.get_object("doc.txt", &none_match).await), 304);
        let quoted = GetOptions { if_none_match: Some(format!("\"{etag}\"")), ..Default::default() };
        assert_eq!(status(c.get_object("doc.txt", &quoted).await), 304);
        let other = GetOptions { if_none_match: Some(md5_hex(b"other")), ..Default::default() };
        assert_eq!(c.get_object("doc.txt", &other).await.unwrap().1.len(), data.len());
        let wrong_match = GetOptions { if_match: Some(md5_hex(b"other")), ..Default::default() };
        assert_eq!(status(c.get_object("doc.txt", &wrong_match).await), 412);
        let right_match = GetOptions { if_match: Some(etag.clone()), range: Some((0, 0)), ..Default::default() };
        assert_eq!(&c.get_object("doc.txt", &right_match).await.unwrap().1[..], &data[..1]);
        let since = GetOptions {
            if_modified_since: Some(httpdate::fmt_http_date(
                std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
            )),
            ..Default::default()
        };
        assert_eq!(status(c.get_object("doc.txt", &since).await), 304);
        let unmodified =
            GetOptions { if_unmodified_since: Some("Mon, 01 Jan 2001 00:00:00 GMT".into()), ..Default::default() };
        assert_eq!(status(c.get_object("doc.txt", &unmodified).await), 412);

        // Create-only writes.
        let once = PutOptions { if_not_exists: true, ..Default::default() };
        assert_eq!(status(c.put_object("doc.txt", Bytes::from_static(b"x"), &once).await), 412);
        c.put_object("new.txt", Bytes::from_static(b"x"), &once).await.unwrap();

        // Streaming download of a larger object into memory.
        let big = pattern(3 << 20, 2);
        c.put_object("big.bin", Bytes::from(big.clone()), &PutOptions::default()).await.unwrap();
        let mut sink: Vec<u8> = Vec::new();
        assert_eq!(c.download_to("big.bin", &mut sink).await.unwrap(), big.len() as u64);
        assert!(sink == big, "the streamed bytes differ");
        let bi = c.get_object_info("big.bin").await.unwrap();
        assert_eq!(
            (bi.bytes, bi.etag.as_str(), bi.content_type.as_str()),
            (big.len() as u64, md5_hex(&big).as_str(), "application/octet-stream")
        );

        // Names that need quoting: UTF-8, spaces, %, ?, #, +.
        let odd = "dir/ά b%20c?d#e+f.txt";
        c.put_object(odd, Bytes::from_static(b"odd"), &PutOptions::default()).await.unwrap();
        assert_eq!(&c.get_object(odd, &GetOptions::default()).await.unwrap().1[..], b"odd");
        let listed = c.list_objects(&ListOptions { prefix: Some("dir/ά".into()), ..Default::default() }).await.unwrap();
        assert_eq!(names(&listed), vec![odd.to_string()]);

        // Non-ASCII metadata is refused before sending (current behaviour of
        // `Http::quote_header` for Swift; Swift itself would store raw UTF-8
        // header values, as python-swiftclient sends them).
        let greek = put_meta("text/plain", &[("name", "άλφα")]);
        let err = c.put_object("greek", Bytes::from_static(b"a"), &greek).await.unwrap_err();
        assert_eq!(err.status, 0, "{err:?}");

        // What is missing: 404 everywhere.
        assert!(c.get_object_info("missing").await.unwrap_err().is_not_found());
        assert_eq!(status(c.get_object("missing", &GetOptions::default()).await), 404);
        let mut sink: Vec<u8> = Vec::new();
        assert_eq!(status(c.download_to("missing", &mut sink).await), 404);
        assert_eq!(status(c.delete_object("missing").await), 404);
        assert_eq!(status(c.set_object_meta("missing", &[("a", "1")]).await), 404);
        let gone = c.with_container("pithosfs-no-such-container");
        assert_eq!(status(gone.get_container_info().await), 404);
        assert_eq!(status(gone.put_object("x", Bytes::from_static(b"x"), &PutOptions::default()).await), 404);
        assert_eq!(status(gone.list_objects(&ListOptions::default()).await), 404);

        let info = c.get_container_info().await.unwrap();
        let count: u64 = info.header("x-container-object-count").unwrap().parse().unwrap();
        assert_eq!(count, 4, "{:?}", info.headers);
        let used: u64 = info.header("x-container-bytes-used").unwrap().parse().unwrap();
        assert_eq!(used, (data.len() + big.len() + 1 + 3) as u64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_updates_merge() {
    in_fresh_container("meta", |c| async move {
        let opts = put_meta("image/png", &[("Keep", "1"), ("Change", "old")]);
        c.put_object("o", Bytes::from_static(b"data"), &opts).await.unwrap();

        // Swift's POST replaces all metadata; the client merges.
        c.set_object_meta("o", &[("Change", "new"), ("Added", "yes")]).await.unwrap();
        let i = c.get_object_info("o").await.unwrap();
        let meta: Vec<(&str, &str)> = i.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(meta, vec![("added", "yes"), ("change", "new"), ("keep", "1")]);
        assert_eq!(i.content_type, "image/png", "a POST keeps the content type");
        assert_eq!((i.bytes, i.etag.as_str()), (4, md5_hex(b"data").as_str()));

        // An empty value deletes the key, the rest survive.
        c.set_object_meta("o", &[("change", "")]).await.unwrap();
        let i = c.get_object_info("o").await.unwrap();
        let meta: Vec<(&str, &str)> = i.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(meta, vec![("added", "yes"), ("keep", "1")]);
        assert_eq!(&c.get_object("o", &GetOptions::default()).await.unwrap().1[..], b"data");

        // Container metadata: Swift merges by itself; empty deletes.
        c.set_container_meta(&[("A", "1")]).await.unwrap();
        c.set_container_meta(&[("B", "2")]).await.unwrap();
        let m = c.get_container_info().await.unwrap().meta("container");
        assert_eq!((m.get("a").map(String::as_str), m.get("b").map(String::as_str)), (Some("1"), Some("2")));
        c.set_container_meta(&[("A", "")]).await.unwrap();
        let m = c.get_container_info().await.unwrap().meta("container");
        assert_eq!((m.get("a"), m.get("b").map(String::as_str)), (None, Some("2")));

        // Account metadata (shared by every test: a key of this run only).
        let key = format!("pithosfs-{}", std::process::id());
        c.set_account_meta(&[(&key, "on")]).await.unwrap();
        let m = c.get_account_info().await.unwrap().meta("account");
        assert_eq!(m.get(&key).map(String::as_str), Some("on"));
        c.set_account_meta(&[(&key, "")]).await.unwrap();
        assert!(!c.get_account_info().await.unwrap().meta("account").contains_key(&key));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_prefix_delimiter_marker_and_pages() {
    in_fresh_container("list", |c| async move {
        let all = ["a/1", "a/2", "a/b/3", "c", "d/4", "e", "f/"];
        for (i, n) in all.iter().enumerate() {
            let opts = put_meta("text/plain", &[("n", &i.to_string())]);
            c.put_object(n, Bytes::from(n.repeat(i + 1)), &opts).await.unwrap();
        }
        let everything = c.list_objects(&ListOptions::default()).await.unwrap();
        assert_eq!(names(&everything), all.to_vec());
        for (i, l) in everything.iter().enumerate() {
            let Listed::Object(o) = l else { panic!("{l:?} is not an object") };
            let body = all[i].repeat(i + 1);
            assert_eq!(
                (o.bytes, o.md5.as_str(), o.content_type.as_str()),
                (body.len() as u64, md5_hex(body.as_bytes()).as_str(), "text/plain")
            );
            assert!(o.last_modified.is_some(), "{o:?}");
            assert_eq!((o.hash.clone(), o.version), (None, None));
        }

        let list = |prefix: Option<&str>, delimiter: Option<&str>, marker: Option<&str>, limit: Option<usize>| {
            let c = c.clone();
            let o = ListOptions {
                prefix: prefix.map(str::to_string),
                delimiter: delimiter.map(str::to_string),
                marker: marker.map(str::to_string),
                limit,
                ..Default::default()
            };
            async move { names(&c.list_objects(&o).await.unwrap()) }
        };
        assert_eq!(list(Some("a/"), None, None, None).await, ["a/1", "a/2", "a/b/3"]);
        assert_eq!(list(None, Some("/"), None, None).await, ["a/*", "c", "d/*", "e", "f/*"]);
        assert_eq!(list(Some("a/"), Some("/"), None, None).await, ["a/1", "a/2", "a/b/*"]);
        assert_eq!(list(Some("d/"), Some("/"), None, None).await, ["d/4"]);
        assert_eq!(list(Some("zz"), None, None, None).await, Vec::<String>::new());
        assert_eq!(list(None, None, Some("a/2"), None).await, ["a/b/3", "c", "d/4", "e", "f/"]);
        assert_eq!(list(None, None, None, Some(2)).await, ["a/1", "a/2"]);
        assert_eq!(list(None, None, Some("c"), Some(2)).await, ["d/4", "e"]);
        assert_eq!(list(Some("a/"), None, Some("a/1"), Some(1)).await, ["a/2"]);

        // Paging by hand with small pages gives the whole listing, with and
        // without a delimiter (a subdir as the marker is not repeated).
        for (delimiter, want) in [(None, names(&everything)), (Some("/"), list(None, Some("/"), None, None).await)] {
            for page in 1..=3 {
                let mut got: Vec<String> = Vec::new();
                let mut marker: Option<String> = None;
                loop {
                    let o = ListOptions {
                        delimiter: delimiter.map(str::to_string),
                        marker: marker.clone(),
                        limit: Some(page),
                        ..Default::default()
                    };
                    let part = c.list_objects(&o).await.unwrap();
                    assert!(part.len() <= page);
                    let Some(last) = part.last() else { break };
                    marker = Some(last.name().to_string());
                    got.extend(names(&part));
                }
                assert_eq!(got, want, "pages of {page}, delimiter {delimiter:?}");
            }
        }

        // A listing of an empty container.
        let empty = c.with_container(&format!("{}-empty", c.container()));
        empty.create_container(&[]).await.unwrap();
        assert!(empty.list_objects(&ListOptions::default()).await.unwrap().is_empty());
        assert!(empty.list_objects(&ListOptions { limit: Some(5), ..Default::default() }).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_move_delete_and_containers() {
    in_fresh_container("copy", |c| async move {
        let data = pattern(50_000, 3);
        let opts = put_meta("application/x-test", &[("Origin", "src")]);
        c.put_object("src", Bytes::from(data.clone()), &opts).await.unwrap();

        // Copy within the container keeps data, type and metadata.
        let w = c.copy_object(c.container(), "src", "copy").await.unwrap();
        assert_eq!(w.etag, md5_hex(&data));
        let (i, body) = c.get_object("copy", &GetOptions::default()).await.unwrap();
        assert_eq!(&body[..], &data[..]);
        assert_eq!(i.content_type, "application/x-test");
        assert_eq!(i.meta.get("origin").map(String::as_str), Some("src"));

        // Copy into another container, names that need quoting included.
        let other = c.with_container(&format!("{}-other", c.container()));
        other.create_container(&[]).await.unwrap();
        other.copy_object(c.container(), "src", "x/ά b.bin").await.unwrap();
        assert_eq!(&other.get_object("x/ά b.bin", &GetOptions::default()).await.unwrap().1[..], &data[..]);
        assert_eq!(status(other.copy_object(c.container(), "missing", "y").await), 404);

        // Move (copy + delete on Swift), within and across containers.
        let w = c.move_object(c.container(), "copy", "moved").await.unwrap();
        assert_eq!(w.etag, md5_hex(&data));
        assert!(c.get_object_info("copy").await.unwrap_err().is_not_found());
        assert_eq!(c.get_object_info("moved").await.unwrap().meta.get("origin").map(String::as_str), Some("src"));
        other.move_object(c.container(), "moved", "moved here").await.unwrap();
        assert!(c.get_object_info("moved").await.unwrap_err().is_not_found());
        assert_eq!(&other.get_object("moved here", &GetOptions::default()).await.unwrap().1[..], &data[..]);
        assert_eq!(status(c.move_object(c.container(), "missing", "z").await), 404);
        assert!(c.get_object_info("z").await.unwrap_err().is_not_found());

        // Delete.
        c.delete_object("src").await.unwrap();
        assert!(c.get_object_info("src").await.unwrap_err().is_not_found());
        assert_eq!(status(c.delete_object("src").await), 404);

        // A container with objects cannot go: 409; once emptied it can.
        let names_of = |l: Vec<pithosfs::clients::storage::ContainerEntry>| -> Vec<String> {
            l.into_iter().map(|e| e.name).collect()
        };
        let containers = names_of(c.list_containers().await.unwrap());
        assert!(containers.contains(&other.container().to_string()), "{containers:?}");
        // (The account listing's counts lag: Swift's container-updater,
        // which scripts/swift does not run, sends them.)
        assert_eq!(status(other.delete_container().await), 409);
        other.delete_object("x/ά b.bin").await.unwrap();
        other.delete_object("moved here").await.unwrap();
        other.delete_container().await.unwrap();
        assert_eq!(status(other.get_container_info().await), 404);
        assert_eq!(status(other.delete_container().await), 404);
        assert!(!names_of(c.list_containers().await.unwrap()).contains(&other.container().to_string()));
        // The test's own container is empty now and goes too.
        c.delete_container().await.unwrap();
        assert_eq!(status(c.get_container_info().await), 404);
    })
    .await;
}

// Empty bodies must carry `Content-Length: 0`, or Swift answers 411.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_objects_and_folder_markers() {
    in_fresh_container("empty", |c| async move {
        let e = c.put_object("empty", Bytes::new(), &PutOptions::default()).await.unwrap();
        assert_eq!(e.etag, md5_hex(b""));
        let i = c.get_object_info("empty").await.unwrap();
        assert_eq!((i.bytes, i.etag.as_str()), (0, md5_hex(b"").as_str()));
        let mut sink: Vec<u8> = Vec::new();
        assert_eq!(c.download_to("empty", &mut sink).await.unwrap(), 0);
        assert_eq!(c.get_object("empty", &GetOptions::default()).await.unwrap().1.len(), 0);

        c.create_directory("folder").await.unwrap();
        assert!(c.get_object_info("folder").await.unwrap().is_directory());
        let listed = c.list_objects(&ListOptions::default()).await.unwrap();
        assert_eq!(names(&listed), ["empty", "folder"]);
        let Listed::Object(folder) = &listed[1] else { panic!("{listed:?}") };
        assert!(folder.is_directory(), "{folder:?}");
        assert_eq!(folder.bytes, 0);

        // An empty body over an existing object truncates it.
        c.put_object("full", Bytes::from_static(b"content"), &PutOptions::default()).await.unwrap();
        c.put_object("full", Bytes::new(), &PutOptions::default()).await.unwrap();
        assert_eq!(c.get_object_info("full").await.unwrap().bytes, 0);
    })
    .await;
}

// Swift's copy middleware URL-decodes X-Copy-From: sources are sent quoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_move_sources_that_need_quoting() {
    in_fresh_container("quoting", |c| async move {
        for (i, src) in ["p%41", "dir/ά b.txt", "sp ace+plus?q#h"].iter().enumerate() {
            let body = Bytes::from(format!("body of {src}"));
            c.put_object(src, body.clone(), &PutOptions::default()).await.unwrap();
            let dst = format!("copy-{i}");
            let copied = c.copy_object(c.container(), src, &dst).await;
            assert!(copied.is_ok(), "copy from {src:?}: {copied:?}");
            assert_eq!(c.get_object(&dst, &GetOptions::default()).await.unwrap().1, body);
            let moved_to = format!("moved-{i}");
            let moved = c.move_object(c.container(), src, &moved_to).await;
            assert!(moved.is_ok(), "move from {src:?}: {moved:?}");
            assert_eq!(c.get_object(&moved_to, &GetOptions::default()).await.unwrap().1, body);
            assert!(c.get_object_info(src).await.unwrap_err().is_not_found());
        }
    })
    .await;
}
