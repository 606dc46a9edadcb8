//! Pithos+ (kamaki's `PithosClient`): the OpenStack storage calls plus
//! hashmaps and block transfer, versions, sharing, public links, partial
//! updates, policies and quotas.

use super::error::ClientError;
use super::http::{BodyLimit, Http, Reply};
use super::storage::{put_headers, ObjectInfo, ObjectStorage, PutOptions, StorageClient, Written};
use crate::blocks::{self, Algorithm, BlockHash, HashmapForm, HashmapJson, HashmapJsonError};
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::Value;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Requests in flight at once for block transfers.
pub const DEFAULT_PARALLEL: usize = 8;

/// Largest hashmap reply taken (and 409 list of missing blocks).
pub const MAX_HASHMAP_REPLY: u64 = blocks::MAX_HASHMAP_JSON;

/// A Pithos+ account, working in one container.
#[derive(Clone, Debug)]
pub struct PithosClient {
    storage: StorageClient,
    parallel: usize,
}

/// An object's hashmap as the server gives it.
#[derive(Debug, Clone)]
pub struct Hashmap {
    pub block_size: u64,
    pub algorithm: Algorithm,
    pub bytes: u64,
    pub hashes: Vec<BlockHash>,
    /// The version the hashmap belongs to (pin reads to it).
    pub version: Option<String>,
    /// The object's headers, which come with the hashmap.
    pub info: ObjectInfo,
}

impl Hashmap {
    /// The byte range `[start, end)` of block `i`.
    pub fn block_range(&self, i: usize) -> (u64, u64) {
        let start = (i as u64).saturating_mul(self.block_size).min(self.bytes);
        (start, start.saturating_add(self.block_size).min(self.bytes))
    }
    /// Blocks that hold data (an empty object lists one hash but has none).
    pub fn data_blocks(&self) -> usize {
        blocks::block_count(self.bytes, self.block_size) as usize
    }
}

/// Where a transfer reads or writes, and how.
#[derive(Clone, Default)]
pub struct TransferOptions {
    /// Pithos version to read (downloads).
    pub version: Option<String>,
    /// Downloads: keep blocks the destination already holds.
    pub resume: bool,
    /// Told of the bytes hashed, sent and received as they go.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for TransferOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferOptions")
            .field("version", &self.version)
            .field("resume", &self.resume)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a transfer is doing while it reports progress: kamaki's upload
/// reports hashing (`hash_cb`) apart from sending (`upload_cb`); a download
/// that resumes hashes the local file before it receives (`download_cb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Hashing local data: the file to upload, or the blocks a resumed download may keep.
    Hashing,
    /// Sending the blocks the server lacks.
    Sending,
    /// Receiving the blocks the local file lacks.
    Receiving,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Hashing => "hashing",
            Stage::Sending => "sending",
            Stage::Receiving => "receiving",
        }
    }
}

/// Progress of a transfer, told from several tasks at once. A closure
/// `Fn(Stage, u64)` is one (it hears only the advances).
pub trait Progress: Send + Sync {
    /// `stage` begins, with `total` bytes to go through it (None: not known
    /// in advance, as when uploading from a reader).
    fn start(&self, _stage: Stage, _total: Option<u64>) {}
    /// `bytes` more went through `stage`.
    fn advance(&self, stage: Stage, bytes: u64);
}

impl<F: Fn(Stage, u64) + Send + Sync> Progress for F {
    fn advance(&self, stage: Stage, bytes: u64) {
        self(stage, bytes)
    }
}

/// What a transfer did: the object, and how much of it had to cross the
/// network. The rest was there already (the server had the blocks, or the
/// local file did), or was one block written at several places.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Size of the object.
    pub bytes: u64,
    /// Its data blocks (none for an empty object).
    pub blocks: usize,
    /// Blocks sent (uploads) or fetched (downloads), and their bytes.
    pub blocks_moved: usize,
    pub bytes_moved: u64,
    /// The Merkle top hash of the hashmap (Pithos's `X-Object-Hash`), hex.
    pub hash: String,
    pub version: Option<String>,
    /// The ETag the server answered (uploads): the hash, or an MD5 on a server that keeps them.
    pub etag: String,
}

impl Transferred {
    /// Blocks that did not cross the network.
    pub fn blocks_skipped(&self) -> usize {
        self.blocks.saturating_sub(self.blocks_moved)
    }
}

/// What the sending half of the hashmap protocol did.
struct Sent {
    written: Written,
    blocks: usize,
    bytes: u64,
}

impl PithosClient {
    /// As the seed: `PithosClient(base_url, token, account, container)`.
    pub fn new(base_url: &str, token: &str, account: &str, container: &str) -> Result<PithosClient, ClientError> {
        Ok(PithosClient::from_storage(StorageClient::new(base_url, token, account, container)?))
    }

    pub fn from_storage(storage: StorageClient) -> PithosClient {
        PithosClient { storage, parallel: DEFAULT_PARALLEL }
    }

    pub fn with_http(http: Http, account: &str, container: &str) -> Result<PithosClient, ClientError> {
        Ok(PithosClient::from_storage(StorageClient::with_http(http, account, container)?))
    }

    /// The same client working in another container.
    pub fn with_container(&self, container: &str) -> PithosClient {
        PithosClient { storage: self.storage.with_container(container), parallel: self.parallel }
    }

    /// The same client reading another account (what it shares with us).
    pub fn with_account(&self, account: &str) -> PithosClient {
        PithosClient { storage: self.storage.with_account(account), parallel: self.parallel }
    }

    /// How many block requests run at once.
    pub fn with_parallel(mut self, n: usize) -> PithosClient {
        self.parallel = n.max(1);
        self
    }

    pub fn http(&self) -> &Http {
        self.storage.http()
    }

    fn container_path(&self) -> String {
        format!("{}/{}", self.storage.account(), self.storage.container())
    }

    // ---------- container policies and block parameters ----------

    /// Block size and hash algorithm of the container.
    pub async fn block_info(&self) -> Result<(u64, Algorithm), ClientError> {
        let info = self.get_container_info().await?;
        let size = info
            .header("x-container-block-size")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ClientError::new("The container reports no valid X-Container-Block-Size"))?;
        blocks::check_block_size(size)
            .map_err(|e| ClientError::new(format!("Container {} cannot be used: its {e}", self.storage.container())))?;
        let alg =
            info.header("x-container-block-hash").unwrap_or("sha256").parse::<Algorithm>().map_err(ClientError::new)?;
        Ok((size, alg))
    }

    /// Creates the container with policies (`versioning`: auto|none; `quota` in bytes).
    pub async fn create_container_with(&self, versioning: Option<&str>, quota: Option<u64>) -> Result<(), ClientError> {
        self.http()
            .request(Method::PUT, &self.container_path())
            .header_opt("X-Container-Policy-Versioning", versioning)
            .header_opt("X-Container-Policy-Quota", quota.map(|q| q.to_string()))
            .ok(&[201, 202])
            .send()
            .await
            .map(|_| ())
    }

    async fn set_container_policy(&self, name: &str, value: &str) -> Result<(), ClientError> {
        self.http()
            .request(Method::POST, &self.container_path())
            .flag("update")
            .header(&format!("X-Container-Policy-{name}"), value)
            .ok(&[202])
            .idempotent(true)
            .send()
            .await
            .map(|_| ())
    }

    pub async fn set_container_versioning(&self, versioning: &str) -> Result<(), ClientError> {
        self.set_container_policy("Versioning", versioning).await
    }

    pub async fn set_container_quota(&self, bytes: u64) -> Result<(), ClientError> {
        self.set_container_policy("Quota", &bytes.to_string()).await
    }

    pub async fn get_container_versioning(&self) -> Result<String, ClientError> {
        Ok(self.get_container_info().await?.header("x-container-policy-versioning").unwrap_or("").to_string())
    }

    pub async fn get_container_quota(&self) -> Result<u64, ClientError> {
        let info = self.get_container_info().await?;
        Ok(info.header("x-container-policy-quota").and_then(|q| q.parse().ok()).unwrap_or(0))
    }

    /// Deletes every object of the container (`DELETE ?delimiter=/`).
    pub async fn empty_container(&self) -> Result<(), ClientError> {
        self.http()
            .request(Method::DELETE, &self.container_path())
            .query("delimiter", "/")
            .ok(&[204])
            .send()
            .await
            .map(|_| ())
    }

    /// (quota, bytes used) of the account; quota 0 when the server reports none.
    pub async fn get_account_quota(&self) -> Result<(u64, u64), ClientError> {
        let info = self.get_account_info().await?;
        let n = |k: &str| info.header(k).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        Ok((n("x-account-policy-quota"), n("x-account-bytes-used")))
    }

    // ---------- hashmaps and blocks ----------

    /// The hashmap of an object (or of one of its versions).
    pub async fn get_object_hashmap(&self, name: &str, version: Option<&str>) -> Result<Hashmap, ClientError> {
        let r = self
            .http()
            .request(Method::GET, &self.object_path(name))
            .query("hashmap", "True")
            .query("format", "json")
            .query_opt("version", version)
            .ok(&[200])
            .limit(BodyLimit::Max(MAX_HASHMAP_REPLY))
            .send()
            .await?;
        parse_hashmap(&r).map_err(|e| ClientError { message: format!("{name}: {}", e.message), ..e })
    }

    /// Uploads one block (container POST); returns the hash the server computed.
    pub async fn upload_block(&self, data: Bytes) -> Result<BlockHash, ClientError> {
        let r = self
            .http()
            .request(Method::POST, &self.container_path())
            .flag("update")
            .query("format", "json")
            .header("Content-Type", "application/octet-stream")
            .body(data)
            .ok(&[202])
            // Content-addressed: sending it again changes nothing.
            .idempotent(true)
            .send()
            .await?;
        let hashes = blocks::parse_hash_list(&r.body).map_err(|e| {
            ClientError::with_status(format!("The block upload reply is not a list of hashes: {e}"), r.status)
        })?;
        hashes.first().copied().ok_or_else(|| ClientError::new("The block upload reply lists no hash"))
    }

    /// Creates an object from a hashmap: `Ok(Ok(written))`, or `Ok(Err(missing))`
    /// with the blocks the server lacks (send them, then try again).
    pub async fn put_hashmap(
        &self,
        name: &str,
        bytes: u64,
        hashes: &[BlockHash],
        o: &PutOptions,
    ) -> Result<Result<Written, Vec<BlockHash>>, ClientError> {
        let call = self
            .http()
            .request(Method::PUT, &self.object_path(name))
            .query("format", "json")
            .query("hashmap", "True")
            .body(HashmapJson::request(bytes, hashes).to_json())
            .ok(&[201, 409])
            .limit(BodyLimit::Max(MAX_HASHMAP_REPLY));
        let r = put_headers(self.http(), call, o)?.send().await?;
        if r.status == 409 {
            let missing = blocks::parse_hash_list(&r.body)
                .map_err(|e| ClientError::with_status(format!("The 409 reply is not a list of hashes: {e}"), 409))?;
            return Ok(Err(missing));
        }
        Ok(Ok(Written {
            etag: r.header("etag").unwrap_or("").to_string(),
            version: r.header("x-object-version").map(str::to_string),
        }))
    }

    /// The hashmap protocol: PUT the hashmap, upload only what the server
    /// lacks (`read_block` supplies block `i`), PUT again.
    pub async fn commit_hashmap<F, Fut>(
        &self,
        name: &str,
        bytes: u64,
        hashes: &[BlockHash],
        o: &PutOptions,
        read_block: F,
    ) -> Result<Written, ClientError>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, ClientError>>,
    {
        Ok(self.send_missing(name, bytes, hashes, o, read_block, |_| 0, None).await?.written)
    }

    /// `commit_hashmap`, telling `progress` of the bytes sent (`block_len`
    /// gives the size of block `i`, for the totals) and counting them.
    #[allow(clippy::too_many_arguments)]
    async fn send_missing<F, Fut>(
        &self,
        name: &str,
        bytes: u64,
        hashes: &[BlockHash],
        o: &PutOptions,
        read_block: F,
        block_len: impl Fn(usize) -> u64,
        progress: Option<&dyn Progress>,
    ) -> Result<Sent, ClientError>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, ClientError>>,
    {
        let mut sent = Sent { written: Written::default(), blocks: 0, bytes: 0 };
        let sent_bytes = std::sync::atomic::AtomicU64::new(0);
        for _round in 0..4 {
            let missing = match self.put_hashmap(name, bytes, hashes, o).await? {
                Ok(w) => {
                    sent.written = w;
                    sent.bytes = sent_bytes.into_inner();
                    return Ok(sent);
                }
                Err(m) => m,
            };
            let index: std::collections::HashMap<BlockHash, usize> =
                hashes.iter().enumerate().rev().map(|(i, h)| (*h, i)).collect();
            let jobs = missing
                .into_iter()
                .map(|h| {
                    index.get(&h).copied().ok_or_else(|| {
                        ClientError::new(format!("The server asks for block {h}, which is not in the hashmap"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(p) = progress {
                p.start(Stage::Sending, Some(jobs.iter().map(|&i| block_len(i)).sum()));
            }
            sent.blocks += jobs.len();
            let sent_bytes = &sent_bytes;
            stream::iter(jobs)
                .map(|i| {
                    let want = hashes[i];
                    let read = read_block(i);
                    async move {
                        let data = read.await?;
                        let len = data.len() as u64;
                        let got = self.upload_block(data).await?;
                        if got != want {
                            return Err(ClientError::new(format!(
                                "Block {i} changed while uploading (server hash {got}, expected {want})"
                            )));
                        }
                        sent_bytes.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                        if let Some(p) = progress {
                            p.advance(Stage::Sending, len);
                        }
                        Ok(())
                    }
                })
                .buffer_unordered(self.parallel)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Err(ClientError::new(format!("The server kept asking for blocks of {name}")))
    }

    /// Uploads a file by hashmap: blocks hashed in parallel, only the blocks
    /// the server lacks sent, several at once. An unchanged file sends no data.
    pub async fn upload_file(&self, name: &str, path: &Path, o: &PutOptions) -> Result<Written, ClientError> {
        let t = self.upload_file_with(name, path, o, &TransferOptions::default()).await?;
        Ok(Written { etag: t.etag, version: t.version })
    }

    /// `upload_file`, telling `t.progress` of the hashing and the sending,
    /// and saying how many blocks were sent.
    pub async fn upload_file_with(
        &self,
        name: &str,
        path: &Path,
        o: &PutOptions,
        t: &TransferOptions,
    ) -> Result<Transferred, ClientError> {
        let progress = t.progress.as_deref();
        let file =
            Arc::new(File::open(path).map_err(|e| ClientError::new(format!("Cannot open {}: {e}", path.display())))?);
        let size = file.metadata()?.len();
        let (bs, alg) = self.block_info().await?;
        let count = usize::try_from(blocks::block_count(size, bs))
            .map_err(|_| ClientError::new(format!("{} is too large", path.display())))?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        if let Some(p) = progress {
            p.start(Stage::Hashing, Some(size));
        }
        let hashes: Vec<BlockHash> = stream::iter(0..count)
            .map(|i| {
                let file = file.clone();
                tokio::task::spawn_blocking(move || -> Result<(BlockHash, u64), ClientError> {
                    let block = read_block_at(&file, i, bs, size)?;
                    Ok((blocks::hash_block(alg, &block), block.len() as u64))
                })
            })
            .buffered(workers * 2)
            .map(|r| {
                let (hash, len) = r.map_err(|e| ClientError::new(format!("Hashing failed: {e}")))??;
                if let Some(p) = progress {
                    p.advance(Stage::Hashing, len);
                }
                Ok::<_, ClientError>(hash)
            })
            .try_collect()
            .await?;
        let reader = |i: usize| {
            let file = file.clone();
            async move {
                tokio::task::spawn_blocking(move || read_block_at(&file, i, bs, size).map(Bytes::from))
                    .await
                    .map_err(|e| ClientError::new(format!("Reading failed: {e}")))?
            }
        };
        let block_len = |i: usize| size.saturating_sub(i as u64 * bs).min(bs);
        let sent = self.send_missing(name, size, &hashes, o, reader, block_len, progress).await?;
        Ok(Transferred {
            bytes: size,
            blocks: count,
            blocks_moved: sent.blocks,
            bytes_moved: sent.bytes,
            hash: blocks::merkle(alg, &hashes).to_hex(),
            version: sent.written.version,
            etag: sent.written.etag,
        })
    }

    /// Uploads bytes from memory by hashmap.
    pub async fn upload_from_bytes(&self, name: &str, data: Bytes, o: &PutOptions) -> Result<Written, ClientError> {
        let (bs, alg) = self.block_info().await?;
        let hashes: Vec<BlockHash> = data.chunks(bs as usize).map(|b| blocks::hash_block(alg, b)).collect();
        let size = data.len() as u64;
        let reader = |i: usize| {
            let start = i * bs as usize;
            let block = data.slice(start..(start + bs as usize).min(data.len()));
            async move { Ok(block) }
        };
        self.commit_hashmap(name, size, &hashes, o, reader).await
    }

    /// Uploads from a reader of unknown length: each block is sent as it is
    /// read (several in flight), then the hashmap is committed.
    pub async fn upload_reader<R: tokio::io::AsyncRead + Unpin>(
        &self,
        name: &str,
        reader: R,
        o: &PutOptions,
    ) -> Result<Written, ClientError> {
        let t = self.upload_reader_with(name, reader, o, &TransferOptions::default()).await?;
        Ok(Written { etag: t.etag, version: t.version })
    }

    /// `upload_reader`, telling `t.progress` of the bytes sent (the total is
    /// not known in advance).
    pub async fn upload_reader_with<R: tokio::io::AsyncRead + Unpin>(
        &self,
        name: &str,
        mut reader: R,
        o: &PutOptions,
        t: &TransferOptions,
    ) -> Result<Transferred, ClientError> {
        use tokio::io::AsyncReadExt;
        let progress = t.progress.as_deref();
        let (bs, alg) = self.block_info().await?;
        if let Some(p) = progress {
            p.start(Stage::Sending, None);
        }
        let mut hashes = Vec::new();
        let mut size = 0u64;
        let mut inflight = futures_util::stream::FuturesOrdered::new();
        let sent = |r: Result<u64, ClientError>| -> Result<(), ClientError> {
            let len = r?;
            if let Some(p) = progress {
                p.advance(Stage::Sending, len);
            }
            Ok(())
        };
        loop {
            let mut buf = vec![0u8; bs as usize];
            let mut filled = 0;
            while filled < buf.len() {
                let n = reader.read(&mut buf[filled..]).await?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            size += filled as u64;
            let data = Bytes::from(buf);
            hashes.push(blocks::hash_block(alg, &data));
            let this = self.clone();
            inflight.push_back(async move { this.upload_block(data).await.map(|_| filled as u64) });
            while inflight.len() >= self.parallel {
                if let Some(r) = inflight.next().await {
                    sent(r)?;
                }
            }
            if filled < bs as usize {
                break;
            }
        }
        while let Some(r) = inflight.next().await {
            sent(r)?;
        }
        match self.put_hashmap(name, size, &hashes, o).await? {
            Ok(w) => Ok(Transferred {
                bytes: size,
                blocks: hashes.len(),
                blocks_moved: hashes.len(),
                bytes_moved: size,
                hash: blocks::merkle(alg, &hashes).to_hex(),
                version: w.version,
                etag: w.etag,
            }),
            Err(missing) => {
                Err(ClientError::new(format!("{} uploaded blocks went missing on the server", missing.len())))
            }
        }
    }

    /// Downloads by hashmap into a file: distinct blocks fetched with parallel
    /// ranged GETs pinned to one version, each checked against its hash. With
    /// `resume`, blocks the file already holds are kept.
    pub async fn download_file(&self, name: &str, path: &Path, o: &TransferOptions) -> Result<Hashmap, ClientError> {
        Ok(self.download_into(name, path, o).await?.0)
    }

    /// `download_file`, saying how many blocks were fetched and kept.
    pub async fn download_file_with(
        &self,
        name: &str,
        path: &Path,
        o: &TransferOptions,
    ) -> Result<Transferred, ClientError> {
        Ok(self.download_into(name, path, o).await?.1)
    }

    async fn download_into(
        &self,
        name: &str,
        path: &Path,
        o: &TransferOptions,
    ) -> Result<(Hashmap, Transferred), ClientError> {
        let progress = o.progress.as_deref();
        let hm = self.get_object_hashmap(name, o.version.as_deref()).await?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!o.resume)
            .open(path)
            .map_err(|e| ClientError::new(format!("Cannot open {}: {e}", path.display())))?;
        let existing = file.metadata()?.len();
        file.set_len(hm.bytes)?;
        let file = Arc::new(file);
        // Where each distinct block goes.
        let mut places: std::collections::HashMap<BlockHash, Vec<usize>> = std::collections::HashMap::new();
        for (i, h) in hm.hashes.iter().take(hm.data_blocks()).enumerate() {
            places.entry(*h).or_default().push(i);
        }
        let mut jobs: Vec<(BlockHash, Vec<usize>)> = places.into_iter().collect();
        jobs.sort_by_key(|(_, at)| at[0]);
        let hm = Arc::new(hm);
        let len_at = |at: &[usize]| -> u64 {
            at.iter()
                .map(|&i| hm.block_range(i))
                .filter(|&(_, end)| end <= existing)
                .map(|(start, end)| end - start)
                .sum()
        };
        if o.resume && existing > 0 {
            // Blocks the file holds already are kept: hashed first, so that
            // what is left to receive is known before it starts.
            if let Some(p) = progress {
                p.start(Stage::Hashing, Some(jobs.iter().map(|(_, at)| len_at(at)).sum()));
            }
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            let kept: Vec<bool> = stream::iter(jobs.iter().cloned())
                .map(|(hash, at)| {
                    let (file, hm) = (file.clone(), hm.clone());
                    let checked = len_at(&at);
                    async move {
                        let have =
                            tokio::task::spawn_blocking(move || local_blocks_match(&file, &hm, &at, hash, existing))
                                .await
                                .unwrap_or(false);
                        if let Some(p) = progress {
                            p.advance(Stage::Hashing, checked);
                        }
                        have
                    }
                })
                .buffered(workers * 2)
                .collect()
                .await;
            jobs = jobs.into_iter().zip(kept).filter(|(_, kept)| !kept).map(|(job, _)| job).collect();
        }
        let fetched_blocks = jobs.len();
        if let Some(p) = progress {
            let total = jobs
                .iter()
                .map(|(_, at)| {
                    let (start, end) = hm.block_range(at[0]);
                    end - start
                })
                .sum();
            p.start(Stage::Receiving, Some(total));
        }
        let last = hm.data_blocks().saturating_sub(1);
        let fetched_bytes: Vec<u64> = stream::iter(jobs)
            .map(|(hash, at)| {
                let (file, hm) = (file.clone(), hm.clone());
                async move {
                    let data = self.fetch_block(name, &hm, at[0]).await?;
                    let len = data.len() as u64;
                    let name = name.to_string();
                    // Hashing and writing are CPU and disk work: off the runtime's threads.
                    tokio::task::spawn_blocking(move || -> Result<(), ClientError> {
                        if at[0] != last && blocks::hash_block(hm.algorithm, &data) != hash {
                            return Err(ClientError::new(format!("Block {} of {name} does not match its hash", at[0])));
                        }
                        for i in at {
                            let (start, end) = hm.block_range(i);
                            let len = (end - start) as usize;
                            file.write_all_at(&data[..len.min(data.len())], start)?;
                        }
                        Ok(())
                    })
                    .await
                    .map_err(|e| ClientError::new(format!("Writing failed: {e}")))??;
                    if let Some(p) = progress {
                        p.advance(Stage::Receiving, len);
                    }
                    Ok::<u64, ClientError>(len)
                }
            })
            .buffer_unordered(self.parallel)
            .try_collect()
            .await?;
        // Like cp, no fsync: the data are in the page cache and the file is complete.
        let hm = Arc::try_unwrap(hm).map_err(|_| ClientError::new("internal: hashmap still shared"))?;
        let report = Transferred {
            bytes: hm.bytes,
            blocks: hm.data_blocks(),
            blocks_moved: fetched_blocks,
            bytes_moved: fetched_bytes.iter().sum(),
            hash: blocks::merkle(hm.algorithm, &hm.hashes).to_hex(),
            version: hm.version.clone(),
            etag: hm.info.etag.clone(),
        };
        Ok((hm, report))
    }

    /// Reads block `i` of an object through a ranged GET pinned to the hashmap's version.
    pub async fn fetch_block(&self, name: &str, hm: &Hashmap, i: usize) -> Result<Bytes, ClientError> {
        let (start, end) = hm.block_range(i);
        if end <= start {
            return Ok(Bytes::new());
        }
        self.get_range(name, start, end - 1, hm.version.as_deref()).await
    }

    /// Bytes `start..=end` of an object (or of one version).
    pub async fn get_range(
        &self,
        name: &str,
        start: u64,
        end: u64,
        version: Option<&str>,
    ) -> Result<Bytes, ClientError> {
        let want = end
            .checked_sub(start)
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| ClientError::new(format!("Bad range {start}-{end}")))?;
        // A 206 longer than asked is refused; a server that ignored the range
        // (200) gives the whole object, of which only this part is read.
        let r = self
            .http()
            .request(Method::GET, &self.object_path(name))
            .query_opt("version", version)
            .header("Range", format!("bytes={start}-{end}"))
            .ok(&[200, 206])
            .limit(BodyLimit::Range { start, len: want })
            .send()
            .await?;
        if r.body.len() as u64 != want {
            return Err(ClientError::new(format!("Asked {want} bytes of {name}, got {}", r.body.len())));
        }
        Ok(r.body)
    }

    /// Downloads by hashmap into a writer, in order, several blocks in flight.
    pub async fn download_to_writer<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        name: &str,
        out: &mut W,
        o: &TransferOptions,
    ) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt;
        let hm = self.get_object_hashmap(name, o.version.as_deref()).await?;
        let progress = o.progress.as_deref();
        if let Some(p) = progress {
            p.start(Stage::Receiving, Some(hm.bytes));
        }
        let mut blocks =
            stream::iter(0..hm.data_blocks()).map(|i| self.fetch_block(name, &hm, i)).buffered(self.parallel);
        let mut n = 0u64;
        while let Some(b) = blocks.next().await {
            let b = b?;
            out.write_all(&b).await?;
            n += b.len() as u64;
            if let Some(p) = progress {
                p.advance(Stage::Receiving, b.len() as u64);
            }
        }
        out.flush().await?;
        Ok(n)
    }

    // ---------- versions ----------

    /// (version id, timestamp) of every version, oldest first.
    pub async fn get_object_versionlist(&self, name: &str) -> Result<Vec<(String, f64)>, ClientError> {
        let r = self
            .http()
            .request(Method::GET, &self.object_path(name))
            .query("format", "json")
            .query("version", "list")
            .ok(&[200])
            .send()
            .await?;
        let v = r.json()?;
        let list = v
            .get("versions")
            .and_then(Value::as_array)
            .ok_or_else(|| ClientError::new("No version list in the reply"))?;
        list.iter()
            .map(|pair| {
                let id = pair.get(0).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string));
                let ts = pair.get(1).and_then(|x| x.as_f64().or_else(|| x.as_str().and_then(|s| s.parse().ok())));
                match (id, ts) {
                    (Some(id), Some(ts)) => Ok((id, ts)),
                    _ => Err(ClientError::new("A version list entry is not [id, timestamp]")),
                }
            })
            .collect()
    }

    // ---------- sharing and public links ----------

    /// Sets who may read and write (user UUIDs, `owner:group`, `*`); both empty removes all.
    pub async fn set_object_sharing(&self, name: &str, read: &[&str], write: &[&str]) -> Result<(), ClientError> {
        let mut parts = Vec::new();
        if !read.is_empty() {
            parts.push(format!("read={}", read.join(",")));
        }
        if !write.is_empty() {
            parts.push(format!("write={}", write.join(",")));
        }
        self.post_object_headers(name, &[("X-Object-Sharing", &parts.join(";"))]).await
    }

    pub async fn del_object_sharing(&self, name: &str) -> Result<(), ClientError> {
        self.set_object_sharing(name, &[], &[]).await
    }

    /// (read, write) lists of an object.
    pub async fn get_object_sharing(&self, name: &str) -> Result<(Vec<String>, Vec<String>), ClientError> {
        let info = self.get_object_info(name).await?;
        let mut read = Vec::new();
        let mut write = Vec::new();
        for part in info.info.header("x-object-sharing").unwrap_or("").split(';') {
            let part = part.trim();
            let list =
                |s: &str| s.split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect::<Vec<_>>();
            if let Some(r) = part.strip_prefix("read=") {
                read = list(r);
            } else if let Some(w) = part.strip_prefix("write=") {
                write = list(w);
            }
        }
        Ok((read, write))
    }

    /// Accounts that share something with us.
    pub async fn get_sharing_accounts(&self) -> Result<Vec<String>, ClientError> {
        let r = self.http().request(Method::GET, "").query("format", "json").ok(&[200, 204]).send().await?;
        if r.status == 204 || r.body.is_empty() {
            return Ok(Vec::new());
        }
        let v = r.json()?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(|e| e.get("name").and_then(Value::as_str).map(str::to_string)).collect())
            .unwrap_or_default())
    }

    /// Publishes an object; returns its public URL.
    pub async fn publish_object(&self, name: &str) -> Result<String, ClientError> {
        self.post_object_headers(name, &[("X-Object-Public", "True")]).await?;
        let info = self.get_object_info(name).await?;
        info.info
            .header("x-object-public")
            .map(str::to_string)
            .ok_or_else(|| ClientError::new("The server did not report a public URL"))
    }

    pub async fn unpublish_object(&self, name: &str) -> Result<(), ClientError> {
        self.post_object_headers(name, &[("X-Object-Public", "False")]).await
    }

    async fn post_object_headers(&self, name: &str, headers: &[(&str, &str)]) -> Result<(), ClientError> {
        let mut call = self
            .http()
            .request(Method::POST, &self.object_path(name))
            .flag("update")
            .query("format", "json")
            .ok(&[202, 204])
            .idempotent(true);
        for (k, v) in headers {
            call = call.header(k, self.http().quote_header(v)?);
        }
        call.send().await.map(|_| ())
    }

    // ---------- partial updates ----------

    async fn post_data(
        &self,
        name: &str,
        range: &str,
        data: Bytes,
        extra: &[(&str, String)],
    ) -> Result<Written, ClientError> {
        let mut call = self
            .http()
            .request(Method::POST, &self.object_path(name))
            .flag("update")
            .query("format", "json")
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", range)
            .body(data)
            .ok(&[202, 204]);
        for (k, v) in extra {
            call = call.header(k, v.clone());
        }
        let r = call.send().await?;
        Ok(Written {
            etag: r.header("etag").unwrap_or("").to_string(),
            version: r.header("x-object-version").map(str::to_string),
        })
    }

    /// Overwrites bytes at `offset` (may extend the object at its end).
    pub async fn overwrite_object(&self, name: &str, offset: u64, data: Bytes) -> Result<Written, ClientError> {
        if data.is_empty() {
            return Err(ClientError::new("Nothing to write"));
        }
        let end = offset + data.len() as u64 - 1;
        self.post_data(name, &format!("bytes {offset}-{end}/*"), data, &[]).await
    }

    pub async fn append_object(&self, name: &str, data: Bytes) -> Result<Written, ClientError> {
        self.post_data(name, "bytes */*", data, &[]).await
    }

    /// Writes the first `length` bytes of another object (`src_container/src`,
    /// optionally one version of it) at `offset` of this one, server-side.
    pub async fn write_from_object(
        &self,
        name: &str,
        offset: u64,
        src_container: &str,
        src: &str,
        length: u64,
        version: Option<&str>,
    ) -> Result<Written, ClientError> {
        if length == 0 {
            return Err(ClientError::new("Nothing to write"));
        }
        let source = self.http().quote_header(&format!("/{src_container}/{src}"))?;
        let mut extra = vec![("X-Source-Object", source)];
        if let Some(v) = version {
            extra.push(("X-Source-Version", v.to_string()));
        }
        let range = format!("bytes {offset}-{}/*", offset + length - 1);
        self.post_data(name, &range, Bytes::new(), &extra).await
    }

    /// Cuts the object to `size` bytes (smaller than its size).
    pub async fn truncate_object(&self, name: &str, size: u64) -> Result<Written, ClientError> {
        let source = self.http().quote_header(&format!("/{}/{}", self.storage.container(), name))?;
        let range = if size == 0 { "bytes 0-0/*".to_string() } else { format!("bytes 0-{}/*", size - 1) };
        // The object is its own source (a range cannot be empty, so size 0
        // rewrites its first byte), then X-Object-Bytes cuts it.
        let extra = [("X-Source-Object", source), ("X-Object-Bytes", size.to_string())];
        self.post_data(name, &range, Bytes::new(), &extra).await
    }

    // ---------- folders ----------

    /// Copies an object and, with `folder`, everything under `src/` too.
    pub async fn copy_tree(&self, src_container: &str, src: &str, dst: &str) -> Result<Written, ClientError> {
        self.transfer_tree("X-Copy-From", src_container, src, dst).await
    }

    /// Moves an object and everything under `src/` in one request.
    pub async fn move_tree(&self, src_container: &str, src: &str, dst: &str) -> Result<Written, ClientError> {
        self.transfer_tree("X-Move-From", src_container, src, dst).await
    }

    async fn transfer_tree(
        &self,
        how: &str,
        src_container: &str,
        src: &str,
        dst: &str,
    ) -> Result<Written, ClientError> {
        let r = self
            .http()
            .request(Method::PUT, &self.object_path(dst))
            .query("delimiter", "/")
            .header(how, self.http().quote_header(&format!("/{src_container}/{src}"))?)
            .ok(&[201])
            .send()
            .await?;
        Ok(Written {
            etag: r.header("etag").unwrap_or("").to_string(),
            version: r.header("x-object-version").map(str::to_string),
        })
    }

    /// Deletes an object and everything under `name/`.
    pub async fn delete_tree(&self, name: &str) -> Result<(), ClientError> {
        self.http()
            .request(Method::DELETE, &self.object_path(name))
            .query("delimiter", "/")
            .ok(&[204])
            .send()
            .await
            .map(|_| ())
    }
}

impl ObjectStorage for PithosClient {
    fn storage(&self) -> &StorageClient {
        &self.storage
    }
}

/// Parses a hashmap reply and checks its numbers before anyone uses them:
/// a block size a client can hold, at most `MAX_BLOCKS_PER_OBJECT` hashes,
/// and exactly as many as its size needs.
fn parse_hashmap(r: &Reply) -> Result<Hashmap, ClientError> {
    let v = HashmapJson::parse(HashmapForm::Reply, &r.body).map_err(|e| {
        let what = match e {
            HashmapJsonError::Syntax(_) => "The server answered malformed JSON",
            HashmapJsonError::Invalid(_) | HashmapJsonError::TooMany(_) => "Bad hashmap",
        };
        ClientError::with_status(format!("{what}: {e}"), r.status)
    })?;
    let Some((block_size, algorithm)) = v.block else {
        return Err(ClientError::new("Bad hashmap: no block size")); // a reply always has one
    };
    blocks::check_block_size(block_size).map_err(|e| ClientError::new(format!("Bad hashmap: its {e}")))?;
    blocks::check_hashmap_len(v.bytes, v.hashes.len(), block_size)
        .map_err(|e| ClientError::new(format!("Bad hashmap: {e}")))?;
    let mut info = ObjectInfo::from_headers(r.headers.clone());
    info.bytes = v.bytes; // Content-Length is the JSON's here
    let version = r.header("x-object-version").map(str::to_string);
    Ok(Hashmap { block_size, algorithm, bytes: v.bytes, hashes: v.hashes.into_owned(), version, info })
}

fn read_block_at(file: &File, i: usize, bs: u64, size: u64) -> Result<Vec<u8>, ClientError> {
    let start = i as u64 * bs;
    let len = (size - start).min(bs) as usize;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, start)?;
    Ok(buf)
}

/// Whether the local file already holds `hash` at every place it belongs.
fn local_blocks_match(file: &File, hm: &Hashmap, at: &[usize], hash: BlockHash, existing: u64) -> bool {
    at.iter().all(|&i| {
        let (start, end) = hm.block_range(i);
        if end > existing {
            return false;
        }
        let mut buf = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut buf, start).is_ok() && blocks::hash_block(hm.algorithm, &buf) == hash
    })
}
