//! A local cloud for integration tests: `pithosfs serve` in process, on port 0,
//! over a temporary data directory, with two users (alice and bob).
#![allow(dead_code)]

// Shared by both harnesses (a test may load both).
#[allow(clippy::duplicate_mod)]
#[path = "../backends/mod.rs"]
pub mod backends;
pub mod blocks;
pub mod faults;
pub mod fs_driver;

use pithosfs::cloud::{self, users::UserSpec, ServeConfig};
use std::sync::Arc;

pub const ALICE_TOKEN: &str = "alice-token-0123456789";
pub const BOB_TOKEN: &str = "bob-token-0123456789";

pub struct TestCloud {
    pub url: String,
    pub alice: String,
    pub bob: String,
    pub cloud: Arc<cloud::Cloud>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestCloud {
    pub async fn start() -> TestCloud {
        TestCloud::start_with(|_| {}).await
    }

    /// Starts with a config adjusted by `tune` (quota, block size…).
    pub async fn start_with(tune: impl FnOnce(&mut ServeConfig)) -> TestCloud {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServeConfig::new(dir.path().join("data"));
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.build_seconds = 0.5;
        // Tests count images and blocks: no system images unless one asks.
        config.system_images = false;
        config.users = vec![
            UserSpec { name: "alice@example.org".into(), token: Some(ALICE_TOKEN.into()) },
            UserSpec { name: "bob@example.org".into(), token: Some(BOB_TOKEN.into()) },
        ];
        backends::Backends::from_env().apply(&mut config);
        tune(&mut config);
        let running = cloud::bind(config).await.expect("bind local cloud");
        let url = running.url.clone();
        let cloud = running.cloud.clone();
        let alice = cloud.users.by_name("alice@example.org").expect("alice").uuid.clone();
        let bob = cloud.users.by_name("bob@example.org").expect("bob").uuid.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(running.run(async move {
            let _ = rx.await;
        }));
        TestCloud { url, alice, bob, cloud, http: reqwest::Client::new(), dir, stop: Some(tx) }
    }

    pub fn pithos(&self) -> String {
        format!("{}{}", self.url, cloud::PITHOS_PATH)
    }
    pub fn compute(&self) -> String {
        format!("{}{}", self.url, cloud::COMPUTE_PATH)
    }
    pub fn image(&self) -> String {
        format!("{}{}", self.url, cloud::IMAGE_PATH)
    }
    pub fn identity(&self) -> String {
        format!("{}{}", self.url, cloud::IDENTITY_PATH)
    }
    pub fn account_api(&self) -> String {
        format!("{}{}", self.url, cloud::ACCOUNT_PATH)
    }

    /// A request with alice's token.
    pub fn alice(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).header("X-Auth-Token", ALICE_TOKEN)
    }
    /// A request with bob's token.
    pub fn bob(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).header("X-Auth-Token", BOB_TOKEN)
    }

    /// URL of an object of alice's, path segments quoted.
    pub fn object_url(&self, container: &str, name: &str) -> String {
        format!("{}/{}/{}/{}", self.pithos(), self.alice, quote(container), quote(name))
    }

    /// Uploads `data` as alice's object with a plain PUT.
    pub async fn put_object(&self, container: &str, name: &str, data: &[u8]) -> reqwest::Response {
        let r = self
            .alice(reqwest::Method::PUT, &self.object_url(container, name))
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("PUT");
        assert_eq!(r.status(), 201, "PUT {container}/{name}");
        r
    }
}

impl TestCloud {
    /// Creates `n` empty objects named `{prefix}{i:05}` in one transaction of
    /// the store (setup only: what is under test goes through HTTP).
    pub async fn bulk_objects(&self, container: &str, prefix: &str, n: usize) {
        use pithosfs::cloud::pithos::model;
        let (alice, container, prefix) = (self.alice.clone(), container.to_string(), prefix.to_string());
        self.cloud
            .db
            .write(move |tx| {
                let c = model::container(tx, &alice, &container)?.expect("container");
                for i in 0..n {
                    let new = model::NewVersion {
                        uuid: format!("u{i}"),
                        bytes: 0,
                        hashmap: vec![],
                        content_type: "text/plain".into(),
                        checksum: String::new(),
                        meta: Default::default(),
                        modified_by: alice.clone(),
                    };
                    model::put_version(tx, &c, &format!("{prefix}{i:05}"), new, 0, 1.0e9)?;
                }
                Ok(())
            })
            .await
            .expect("bulk objects");
    }
}

impl Drop for TestCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Quotes a path for a URL; `.` and `..` segments too, so that no client
/// resolves them away.
pub fn quote(s: &str) -> String {
    s.split('/')
        .map(|seg| match seg {
            "." | ".." => seg.replace('.', "%2E"),
            _ => percent_encoding::utf8_percent_encode(seg, pithosfs::cloud::wire::PATH).to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}
