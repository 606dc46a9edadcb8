//! Blocks in OpenStack Swift: one object per block, named by its hash (hex)
//! in a container of the service's own Swift account, written and read
//! through our storage client. Several `pithosfs serve` nodes can share it
//! (issue 14); Ceph's radosgw speaks the same API.
//!
//! The block store calls its backend from blocking threads; the requests
//! run on a small runtime of this backend's own, and a call waits for its
//! reply on a plain channel (never `block_on`, which would panic if a call
//! came from inside the server's runtime).
//!
//! A block is stored whole but without its trailing zeros (as the directory
//! keeps it); a read past what is stored reads zeros. A read from a block's
//! start is checked against the block's hash. A `put` asks first
//! whether the block is there (a HEAD), so a block already stored is never
//! sent again. A token that expires (tempauth's live a day) is renewed once
//! on a 401 and the call tried again.

use super::blockstore::{BlockBackend, BlockBuf};
use crate::blocks::{self, Algorithm, BlockHash};
use crate::clients::storage::{GetOptions, ListOptions, Listed, ObjectStorage, PutOptions, StorageClient};
use crate::clients::ClientError;
use bytes::Bytes;
use std::future::Future;
use std::io;
use std::sync::Mutex;

/// The default container of the blocks.
pub const DEFAULT_CONTAINER: &str = "pithosfs-blocks";

/// Blocks listed per request when the collector walks them.
const PAGE: usize = 10_000;

/// Where the blocks go: a Swift v1 (tempauth) endpoint, a user and its key,
/// and the container. The key is kept only here, never logged.
#[derive(Clone)]
pub struct SwiftTarget {
    pub auth_url: String,
    pub user: String,
    pub key: String,
    pub container: String,
}

impl std::fmt::Debug for SwiftTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "swift:{} (user {}, container {})", self.auth_url, self.user, self.container)
    }
}

pub struct SwiftBlocks {
    target: SwiftTarget,
    /// The hash that names blocks (checked on whole-block reads).
    algorithm: Algorithm,
    client: Mutex<StorageClient>,
    /// Shut down without waiting when the store goes (it may go inside the
    /// server's runtime, where a runtime cannot be dropped).
    runtime: Option<tokio::runtime::Runtime>,
}

fn io_error(e: ClientError) -> io::Error {
    io::Error::other(format!("Swift block store: {}", e.message))
}

impl SwiftBlocks {
    /// Logs in and makes the container if it is missing.
    pub fn open(target: SwiftTarget, algorithm: Algorithm) -> io::Result<SwiftBlocks> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("swift-blocks")
            .enable_all()
            .build()?;
        let t = target.clone();
        let client = wait(&runtime, async move {
            let c = StorageClient::swift_v1_auth(&t.auth_url, &t.user, &t.key, &t.container).await?;
            if let Err(e) = c.get_container_info().await {
                if e.status != 404 {
                    return Err(e);
                }
                c.create_container(&[]).await?;
            }
            Ok(c)
        })
        .map_err(io_error)?;
        Ok(SwiftBlocks { target, algorithm, client: Mutex::new(client), runtime: Some(runtime) })
    }

    fn client(&self) -> StorageClient {
        self.client.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `call` with the client; on a 401 logs in again once and retries.
    fn run<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        T: Send + 'static,
        F: Fn(StorageClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else { return Err(ClientError::new("the Swift block store is closed")) };
        match wait(rt, call(self.client())) {
            Err(e) if e.status == 401 => {
                let t = self.target.clone();
                let fresh =
                    wait(
                        rt,
                        async move { StorageClient::swift_v1_auth(&t.auth_url, &t.user, &t.key, &t.container).await },
                    )?;
                *self.client.lock().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
                wait(rt, call(fresh))
            }
            other => other,
        }
    }
}

/// Runs `fut` on `rt` and waits for it on a plain channel.
fn wait<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = Result<T, ClientError>> + Send + 'static,
) -> Result<T, ClientError> {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().unwrap_or_else(|_| Err(ClientError::new("the Swift block store's runtime stopped")))
}

impl Drop for SwiftBlocks {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl BlockBackend for SwiftBlocks {
    fn contains(&self, hash: &BlockHash) -> bool {
        let name = hash.to_hex();
        self.run(move |c| {
            let name = name.clone();
            async move { c.get_object_info(&name).await.map(|_| ()) }
        })
        .is_ok()
    }

    fn put(&self, hash: BlockHash, buf: &mut BlockBuf) -> io::Result<bool> {
        let name = hash.to_hex();
        let data = Bytes::copy_from_slice(blocks::strip_trailing_zeros(buf.data()));
        self.run(move |c| {
            let (name, data) = (name.clone(), data.clone());
            async move {
                match c.get_object_info(&name).await {
                    Ok(_) => return Ok(false),
                    Err(e) if e.status == 404 => {}
                    Err(e) => return Err(e),
                }
                let o = PutOptions { content_type: Some("application/octet-stream".into()), ..Default::default() };
                c.put_object(&name, data, &o).await?;
                Ok(true)
            }
        })
        .map_err(io_error)
    }

    /// A read from a block's start fetches the whole stored block and checks
    /// it against its hash (Swift is another system: what it returns is
    /// checked before anyone is served it); a read from inside a block
    /// fetches just its range, which no hash can check.
    fn read_range(&self, hash: &BlockHash, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let name = hash.to_hex();
        let range = (offset > 0).then(|| (offset, offset.saturating_add(len as u64).saturating_sub(1)));
        let got = self.run(move |c| {
            let name = name.clone();
            async move {
                let o = GetOptions { range, ..Default::default() };
                match c.get_object(&name, &o).await {
                    Ok((_, data)) => Ok(Some(data)),
                    // Past what is stored: trailing zeros.
                    Err(e) if e.status == 416 => Ok(None),
                    Err(e) => Err(e),
                }
            }
        });
        let mut out = match got {
            Ok(Some(data)) => data.to_vec(),
            Ok(None) => Vec::new(),
            Err(e) if e.status == 404 => {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("block {hash} is missing from Swift")))
            }
            Err(e) => return Err(io_error(e)),
        };
        if range.is_none() && blocks::hash_block(self.algorithm, &out) != *hash {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("block {hash} as Swift returned it does not match its hash"),
            ));
        }
        out.truncate(len);
        out.resize(len, 0);
        Ok(out)
    }

    fn delete(&self, hash: &BlockHash) -> io::Result<u64> {
        let name = hash.to_hex();
        self.run(move |c| {
            let name = name.clone();
            async move {
                let size = match c.get_object_info(&name).await {
                    Ok(i) => i.bytes,
                    Err(e) if e.status == 404 => return Ok(0),
                    Err(e) => return Err(e),
                };
                match c.delete_object(&name).await {
                    Ok(()) => Ok(size),
                    Err(e) if e.status == 404 => Ok(0),
                    Err(e) => Err(e),
                }
            }
        })
        .map_err(io_error)
    }

    fn stored(&self, prefix: u8) -> io::Result<Vec<(BlockHash, f64)>> {
        let prefix = format!("{prefix:02x}");
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let o = ListOptions {
                prefix: Some(prefix.clone()),
                marker: marker.clone(),
                limit: Some(PAGE),
                ..Default::default()
            };
            let page = self
                .run(move |c| {
                    let o = o.clone();
                    async move { c.list_objects(&o).await }
                })
                .map_err(io_error)?;
            let n = page.len();
            let last = page.last().map(|l| l.name().to_string());
            for l in page {
                if let Listed::Object(e) = l {
                    // Names that are not block hashes are not ours: skipped.
                    if let Ok(h) = BlockHash::from_hex(&e.name) {
                        out.push((h, e.last_modified.unwrap_or(0.0)));
                    }
                }
            }
            if n < PAGE || last.is_none() || last <= marker {
                return Ok(out);
            }
            marker = last;
        }
    }

    fn usage(&self) -> io::Result<(u64, u64)> {
        let info = self.run(|c| async move { c.get_container_info().await }).map_err(io_error)?;
        let num = |k: &str| info.header(k).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        Ok((num("x-container-object-count"), num("x-container-bytes-used")))
    }

    fn shared(&self) -> bool {
        true
    }
}

/// How a `SwiftBlocks` is shared: the block store holds it boxed.
pub fn boxed(target: SwiftTarget, algorithm: Algorithm) -> io::Result<Box<dyn BlockBackend>> {
    Ok(Box::new(SwiftBlocks::open(target, algorithm)?))
}
