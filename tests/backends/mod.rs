//! Which back ends the local clouds of the tests run on. By default the
//! embedded ones (SQLite in the data directory, blocks in a directory);
//! `scripts/test` runs the server suites, the kamaki check and mount tests
//! a second time on the shared ones (issue 14), with
//!
//! - `PITHOSFS_TEST_META=postgres://USER@HOST:PORT/DB` (password in
//!   `PITHOSFS_META_PASSWORD`, which `serve` reads too): each cloud gets a
//!   schema of its own;
//! - `PITHOSFS_TEST_BLOCKS=swift:AUTH_URL` (user and key in
//!   `PITHOSFS_BLOCKS_SWIFT_USER` and `PITHOSFS_BLOCKS_SWIFT_KEY`): each
//!   cloud gets a container of its own (its garbage collector must not see
//!   another cloud's blocks).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// The shared back ends of one local cloud.
#[derive(Clone, Debug, Default)]
pub struct Backends {
    /// The PostgreSQL URL and this cloud's schema.
    pub meta: Option<(String, String)>,
    /// The Swift auth URL and this cloud's container.
    pub blocks: Option<(String, String)>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A name for one cloud of this run: lower case, digits and `_`.
fn fresh_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 100_000_000;
    format!("{prefix}_{}_{}_{ms}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Backends {
    /// Fresh back ends for a new cloud, as the environment asks.
    pub fn from_env() -> Backends {
        Backends {
            meta: env("PITHOSFS_TEST_META").map(|url| (url, fresh_name("t"))),
            blocks: env("PITHOSFS_TEST_BLOCKS")
                .map(|b| (b.strip_prefix("swift:").unwrap_or(&b).to_string(), fresh_name("blocks"))),
        }
    }

    /// The embedded back ends only.
    pub fn embedded(&self) -> bool {
        self.meta.is_none() && self.blocks.is_none()
    }

    /// Both shared ones: what many nodes need.
    pub fn shared(&self) -> bool {
        self.meta.is_some() && self.blocks.is_some()
    }

    /// Arguments of `pithosfs serve` for them.
    pub fn serve_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some((url, schema)) = &self.meta {
            args.extend(["--meta".into(), url.clone(), "--meta-schema".into(), schema.clone()]);
        }
        if let Some((auth, container)) = &self.blocks {
            args.extend([
                "--blocks".into(),
                format!("swift:{auth}"),
                "--blocks-swift-container".into(),
                container.clone(),
            ]);
        }
        args
    }

    /// The same, for a cloud started in the test's own process.
    pub fn apply(&self, config: &mut pithosfs::cloud::ServeConfig) {
        use pithosfs::cloud::{pg::PgTarget, swift_blocks::SwiftTarget, BlocksAt, MetaAt};
        if let Some((url, schema)) = &self.meta {
            let target = PgTarget::new(url, env("PITHOSFS_META_PASSWORD"), schema).expect("PITHOSFS_TEST_META");
            config.meta = MetaAt::Postgres(target);
        }
        if let Some((auth, container)) = &self.blocks {
            config.blocks = BlocksAt::Swift(SwiftTarget {
                auth_url: auth.clone(),
                user: env("PITHOSFS_BLOCKS_SWIFT_USER").unwrap_or_else(|| "test:tester".into()),
                key: env("PITHOSFS_BLOCKS_SWIFT_KEY").unwrap_or_else(|| "testing".into()),
                container: container.clone(),
            });
        }
    }
}
