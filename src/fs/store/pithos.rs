//! Pithos+ under the filesystem: a file opens by its hashmap, its blocks are
//! read by range pinned to that version and checked against their hashes, a
//! new version is a hashmap PUT (the store answers the blocks it lacks), a
//! folder moves in one request, and listings carry each object's metadata.

use super::{
    check_name, entry_of, meta_of_entry, meta_of_info, naming, put_options, Block, BlockSource, Commit, Committed,
    Container, Entry, Geometry, NewVersion, ObjectMeta, Opened, Sharing, Store, StoreError, StoreResult, Version,
};
use crate::blocks::{self, Algorithm, BlockHash};
use crate::clients::astakos::AstakosClient;
use crate::clients::pithos::PithosClient;
use crate::clients::storage::Listed;
use crate::clients::storage::{GetOptions, ListOptions, ObjectStorage, PutOptions};
use crate::fs::scope::Scope;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The largest Pithos object with blocks of `block_size`: one hashmap of at
/// most `MAX_BLOCKS_PER_OBJECT` hashes (the local cloud refuses more).
pub fn pithos_max_size(block_size: u64) -> u64 {
    block_size.saturating_mul(blocks::MAX_BLOCKS_PER_OBJECT)
}

/// A Pithos+ account through its client.
#[derive(Clone, Debug)]
pub struct PithosStore {
    client: PithosClient,
    /// The longest object name the server takes: the local cloud's until a
    /// server refuses a longer one (Synnefo takes 1,024), then that.
    name_limit: Arc<AtomicUsize>,
    /// The identity service, for users' names (sharing).
    names: Option<AstakosClient>,
    /// A past moment (seconds since the epoch) this store shows the account
    /// at: listings carry `until`, objects open at the version listed then.
    until: Option<i64>,
    /// One version (its id) every object opens at.
    version: Option<String>,
}

impl PithosStore {
    pub fn new(client: PithosClient) -> PithosStore {
        PithosStore {
            client,
            name_limit: Arc::new(AtomicUsize::new(super::MAX_OBJECT_NAME)),
            names: None,
            until: None,
            version: None,
        }
    }

    /// The same store, telling users' names from their UUIDs through `astakos`.
    pub fn with_names(self, astakos: AstakosClient) -> PithosStore {
        PithosStore { names: Some(astakos), ..self }
    }

    fn listing(&self) -> ListOptions {
        ListOptions { until: self.until, ..Default::default() }
    }

    /// The version of `name` this store shows (None: the current one): the
    /// one pinned, or the one listed at the moment (`NotFound` when the
    /// object did not exist then).
    async fn version_shown(&self, container: &str, name: &str) -> StoreResult<Option<ObjectMeta>> {
        if self.version.is_some() {
            return Ok(None);
        }
        let Some(until) = self.until else { return Ok(None) };
        // The object itself sorts first among the names it begins.
        let o =
            ListOptions { prefix: Some(name.to_string()), limit: Some(1), until: Some(until), ..Default::default() };
        let listed = self.at(container).list_objects(&o).await?;
        match listed.into_iter().next() {
            Some(Listed::Object(e)) if e.name == name => Ok(Some(meta_of_entry(e))),
            _ => Err(StoreError::NotFound),
        }
    }

    /// The version id reads of `name` are pinned to in this scope (None: the current one).
    async fn pinned(&self, container: &str, name: &str) -> StoreResult<Option<String>> {
        if let Some(v) = &self.version {
            return Ok(Some(v.clone()));
        }
        match self.version_shown(container, name).await? {
            Some(meta) => {
                meta.version.map(Some).ok_or_else(|| StoreError::Invalid("a listing without versions".into()))
            }
            None => Ok(None),
        }
    }

    /// A name the server takes, as far as is known, or `NameTooLong`.
    fn check_name(&self, container: &str, name: &str) -> StoreResult<()> {
        if name.len() > self.max_object_name() {
            return Err(StoreError::NameTooLong);
        }
        check_name(container, name)
    }

    pub fn client(&self) -> &PithosClient {
        &self.client
    }

    fn at(&self, container: &str) -> PithosClient {
        self.client.with_container(container)
    }
}

/// The version a write made.
fn written(new: &NewVersion, algorithm: Algorithm, etag: String, version: Option<String>) -> Version {
    Version {
        size: new.size,
        block_size: new.block_size,
        content_hash: Some(algorithm),
        pin: version.clone(),
        id: version,
        tag: Some(etag),
    }
}

/// The blocks' hashes of `new` and the Merkle hash over them (hex).
fn merkle_of(new: &NewVersion, blocks: &dyn BlockSource) -> Option<(Arc<Vec<BlockHash>>, String)> {
    let algorithm = new.content_hash?;
    // Hashing changed blocks is CPU work: off the runtime's reactor.
    let hashes = tokio::task::block_in_place(|| blocks.hashes(algorithm)).ok()?;
    let top = blocks::merkle(algorithm, &hashes).to_hex();
    Some((hashes, top))
}

impl Store for PithosStore {
    async fn geometry(&self, container: &str) -> StoreResult<Geometry> {
        let (block_size, algorithm) = self.at(container).block_info().await?;
        Ok(Geometry { block_size, content_hash: Some(algorithm), max_size: pithos_max_size(block_size) })
    }

    fn listing_cap(&self) -> usize {
        self.client.http().options().max_listing
    }

    fn max_object_name(&self) -> usize {
        self.name_limit.load(Ordering::Relaxed)
    }

    async fn list_containers(&self, marker: Option<&str>, limit: usize) -> StoreResult<Vec<Container>> {
        let o = ListOptions { marker: marker.map(str::to_string), limit: Some(limit), ..self.listing() };
        let listed = self.client.list_containers_with(&o).await?;
        Ok(listed.into_iter().map(|c| Container { name: c.name, modified: c.last_modified }).collect())
    }

    async fn list_page(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        // One version by id is reached by name only: its folders list nothing.
        if self.version.is_some() {
            return Ok(Vec::new());
        }
        let o = ListOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
            delimiter: Some("/".into()),
            marker: marker.map(str::to_string),
            limit: Some(limit),
            ..self.listing()
        };
        Ok(self.at(container).list_objects(&o).await?.into_iter().map(entry_of).collect())
    }

    async fn holds_anything(&self, container: &str, prefix: &str) -> StoreResult<bool> {
        let o = ListOptions { prefix: Some(prefix.to_string()), limit: Some(1), ..self.listing() };
        Ok(!self.at(container).list_objects(&o).await?.is_empty())
    }

    async fn stat(&self, container: &str, name: &str) -> StoreResult<ObjectMeta> {
        if let Some(meta) = self.version_shown(container, name).await? {
            return Ok(meta);
        }
        let info = self.at(container).get_object_info_at(name, self.version.as_deref()).await?;
        Ok(meta_of_info(name, &info))
    }

    /// One request: the hashmap, with the object's headers (two at a past
    /// moment: the listing that says which version it was, then that one).
    async fn open(&self, container: &str, name: &str) -> StoreResult<Opened> {
        let pinned = self.pinned(container, name).await?;
        let hm = self.at(container).get_object_hashmap(name, pinned.as_deref()).await?;
        let meta = ObjectMeta { bytes: hm.bytes, ..meta_of_info(name, &hm.info) };
        let version = Version {
            size: hm.bytes,
            block_size: hm.block_size,
            content_hash: Some(hm.algorithm),
            pin: hm.version.clone(),
            id: hm.version.clone(),
            tag: hm.info.hash.clone().or_else(|| (!hm.info.etag.is_empty()).then(|| hm.info.etag.clone())),
        };
        let keys = hm.hashes.iter().take(hm.data_blocks()).copied().collect();
        Ok(Opened { meta, version, keys, max_size: pithos_max_size(hm.block_size) })
    }

    async fn read_block(
        &self,
        container: &str,
        name: &str,
        version: &Version,
        i: usize,
        key: BlockHash,
    ) -> StoreResult<Block> {
        let (start, end) = version.block_range(i);
        if end <= start {
            return Ok(Block { data: Bytes::new(), checked: true });
        }
        let pc = self.at(container);
        let data = match pc.get_range(name, start, end - 1, version.pin.as_deref()).await {
            Ok(d) => d,
            // Renamed since it was opened (its versions stayed with the old
            // name): the content is what matters, and the hash checks it.
            Err(e) if e.status == 404 => pc.get_range(name, start, end - 1, None).await?,
            Err(e) => return Err(e.into()),
        };
        let Some(algorithm) = version.content_hash else { return Ok(Block { data, checked: false }) };
        let checked = tokio::task::spawn_blocking({
            let data = data.clone();
            move || blocks::hash_block(algorithm, &data) == key
        })
        .await
        .map_err(|_| StoreError::Invalid("a hashing task failed".into()))?;
        if checked {
            return Ok(Block { data, checked });
        }
        // Pithos keeps the old hash of a block cut by a truncating POST: a
        // partial last block may carry the hash of the longer block it was
        // cut from. It is served (never cached under that hash) only when
        // history shows that block, checked, beginning with these bytes.
        let partial_last = i + 1 == version.block_count() && (data.len() as u64) < version.block_size;
        if partial_last && cut_from_checked(&pc, name, version, i, key, algorithm, &data).await {
            tracing::debug!("the last block of {name} was cut from an older version's block {i}: served, checked");
            return Ok(Block { data, checked: false });
        }
        Err(StoreError::Invalid(format!("block {i} of {name} does not match its hash")))
    }

    async fn read_range(
        &self,
        container: &str,
        name: &str,
        version: &Version,
        start: u64,
        end: u64,
    ) -> StoreResult<Bytes> {
        if end <= start {
            return Ok(Bytes::new());
        }
        Ok(self.at(container).get_range(name, start, end - 1, version.pin.as_deref()).await?)
    }

    async fn read_object(&self, container: &str, name: &str, max: u64) -> StoreResult<Bytes> {
        let version = self.pinned(container, name).await?;
        let o = GetOptions { max_bytes: Some(max), version, ..Default::default() };
        Ok(self.at(container).get_object(name, &o).await?.1)
    }

    /// A file of one block, all of it here, goes in one PUT (instead of
    /// hashmap, 409, upload, hashmap); anything else is a hashmap PUT.
    async fn commit(
        &self,
        container: &str,
        name: &str,
        new: &NewVersion,
        blocks: Arc<dyn BlockSource>,
    ) -> StoreResult<Commit> {
        self.check_name(container, name)?;
        let algorithm = new.content_hash.unwrap_or_default();
        let pc = self.at(container);
        let opts = put_options(new);
        let count = blocks.count();
        if count <= 1 && (count == 0 || blocks.is_local(0)) {
            let size = usize::try_from(new.size).map_err(|_| StoreError::TooLarge)?;
            let mut data = if count == 0 { Vec::new() } else { blocks.block(0).await?.to_vec() };
            data.resize(size, 0);
            let keys = if count == 0 { Vec::new() } else { vec![blocks::hash_block(algorithm, &data)] };
            let w = pc.put_object(name, Bytes::from(data), &opts).await.map_err(naming(name, &self.name_limit))?;
            return Ok(Commit::Done(Committed { version: written(new, algorithm, w.etag, w.version), keys }));
        }
        if count as u64 > blocks::MAX_BLOCKS_PER_OBJECT {
            return Err(StoreError::TooLarge);
        }
        // Hashing is CPU work (and spilled blocks are read back): off the
        // runtime's reactor.
        let hashes = tokio::task::block_in_place(|| blocks.hashes(algorithm))?;
        match pc.put_hashmap(name, new.size, &hashes, &opts).await.map_err(naming(name, &self.name_limit))? {
            Ok(w) => {
                let version = written(new, algorithm, w.etag, w.version);
                Ok(Commit::Done(Committed { version, keys: hashes.to_vec() }))
            }
            Err(missing) => {
                let index: std::collections::HashMap<BlockHash, usize> =
                    hashes.iter().enumerate().rev().map(|(i, h)| (*h, i)).collect();
                let wanted = missing
                    .into_iter()
                    .map(|h| {
                        index.get(&h).map(|i| (*i, h)).ok_or_else(|| {
                            StoreError::Invalid(format!("the server asks for block {h}, which is not in the hashmap"))
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(Commit::Missing(wanted))
            }
        }
    }

    /// Pithos names a version by the Merkle hash of its blocks' hashes.
    async fn content_id(&self, new: &NewVersion, blocks: Arc<dyn BlockSource>) -> Option<String> {
        Some(merkle_of(new, &*blocks)?.1)
    }

    async fn landed(&self, new: &NewVersion, blocks: Arc<dyn BlockSource>, now: &ObjectMeta) -> Option<Committed> {
        let (hashes, top) = merkle_of(new, &*blocks)?;
        if now.bytes != new.size || now.hash.as_deref() != Some(top.as_str()) {
            return None;
        }
        let version = Version {
            size: new.size,
            block_size: new.block_size,
            content_hash: new.content_hash,
            pin: now.version.clone(),
            id: now.version.clone(),
            tag: now.tag.clone().or(Some(top)),
        };
        Some(Committed { version, keys: hashes.to_vec() })
    }

    async fn upload_block(&self, container: &str, data: Bytes) -> StoreResult<BlockHash> {
        Ok(self.at(container).upload_block(data).await?)
    }

    async fn write_object(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        meta: &[(String, String)],
    ) -> StoreResult<()> {
        self.check_name(container, name)?;
        let o = PutOptions { content_type: Some(content_type.to_string()), meta: meta.to_vec(), ..Default::default() };
        self.at(container).put_object(name, data, &o).await.map_err(naming(name, &self.name_limit))?;
        Ok(())
    }

    async fn versions(&self, container: &str, name: &str) -> Option<StoreResult<Vec<(String, f64)>>> {
        Some(self.at(container).get_object_versionlist(name).await.map_err(StoreError::from))
    }

    async fn set_public(&self, container: &str, name: &str, public: bool) -> Option<StoreResult<()>> {
        let c = self.at(container);
        let done = if public { c.publish_object(name).await.map(drop) } else { c.unpublish_object(name).await };
        Some(done.map_err(StoreError::from))
    }

    fn scoped(&self, scope: &Scope) -> Option<PithosStore> {
        let now = PithosStore { until: None, version: None, ..self.clone() };
        match scope {
            Scope::Now => Some(now),
            Scope::AsOf(t) => Some(PithosStore { until: Some(*t), ..now }),
            Scope::Version(id) => Some(PithosStore { version: Some(id.clone()), ..now }),
            Scope::Shared(owner) => Some(PithosStore { client: self.client.with_account(owner), ..now }),
            Scope::Snapshots | Scope::Sharers => None,
        }
    }

    async fn sharers(&self) -> Option<StoreResult<Vec<String>>> {
        Some(self.client.get_sharing_accounts().await.map_err(StoreError::from))
    }

    async fn user_names(&self, uuids: &[String]) -> StoreResult<BTreeMap<String, String>> {
        let Some(a) = &self.names else { return Ok(BTreeMap::new()) };
        let refs: Vec<&str> = uuids.iter().map(String::as_str).collect();
        Ok(a.get_usernames(&refs).await?)
    }

    async fn user_uuids(&self, names: &[String]) -> StoreResult<BTreeMap<String, String>> {
        let Some(a) = &self.names else { return Ok(BTreeMap::new()) };
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(a.get_uuids(&refs).await?)
    }

    async fn sharing(&self, container: &str, name: &str) -> Option<StoreResult<Sharing>> {
        let got = self.at(container).get_object_sharing(name).await;
        Some(got.map(|(read, write)| Sharing { read, write }).map_err(StoreError::from))
    }

    async fn set_sharing(&self, container: &str, name: &str, sharing: &Sharing) -> Option<StoreResult<()>> {
        let c = self.at(container);
        let done = if sharing.is_empty() {
            c.del_object_sharing(name).await
        } else {
            let read: Vec<&str> = sharing.read.iter().map(String::as_str).collect();
            let write: Vec<&str> = sharing.write.iter().map(String::as_str).collect();
            c.set_object_sharing(name, &read, &write).await
        };
        Some(done.map_err(StoreError::from))
    }

    async fn set_meta(&self, container: &str, name: &str, pairs: &[(String, String)]) -> StoreResult<()> {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(self.at(container).set_object_meta(name, &refs).await?)
    }

    async fn delete(&self, container: &str, name: &str) -> StoreResult<()> {
        Ok(self.at(container).delete_object(name).await?)
    }

    /// `X-Move-From`: one request.
    async fn rename(&self, from_container: &str, from: &str, to_container: &str, to: &str) -> StoreResult<()> {
        self.check_name(to_container, to)?;
        self.at(to_container).move_object(from_container, from, to).await.map_err(naming(to, &self.name_limit))?;
        Ok(())
    }

    /// `X-Copy-From` with the metadata to merge: the server copies the
    /// hashmap, no block moves.
    async fn copy(
        &self,
        from_container: &str,
        from: &str,
        to_container: &str,
        to: &str,
        meta: &[(String, String)],
    ) -> StoreResult<()> {
        self.check_name(to_container, to)?;
        self.at(to_container).copy_object_with(from_container, from, to, meta).await?;
        Ok(())
    }

    /// One listing of the container with Pithos's metadata filter (`meta=key=value`).
    async fn find_by_meta(
        &self,
        container: &str,
        key: &str,
        value: &str,
        _like: &ObjectMeta,
    ) -> StoreResult<Vec<ObjectMeta>> {
        let o = ListOptions { meta: Some(format!("{key}={value}")), ..Default::default() };
        let listed = self.at(container).list_objects(&o).await?;
        let found = listed.into_iter().filter_map(|l| match entry_of(l) {
            Entry::Object(m) if m.meta.get(key).map(|v| v.trim()) == Some(value) => Some(m),
            _ => None,
        });
        Ok(found.collect())
    }

    /// `X-Move-From` with `delimiter=/`: the folder and everything under it,
    /// in one request. A server that moves at most so many objects at once
    /// (the local cloud: `max_tree_objects`) refuses a larger tree whole:
    /// `TooLarge`, nothing moved.
    async fn rename_folder(&self, from_container: &str, from: &str, to_container: &str, to: &str) -> StoreResult<()> {
        self.check_name(to_container, to)?;
        match self.at(to_container).move_tree(from_container, from, to).await {
            Ok(_) => Ok(()),
            Err(e) if e.status == 400 && e.message.contains("Too many objects") => Err(StoreError::TooLarge),
            Err(e) => Err(naming(to, &self.name_limit)(e)),
        }
    }

    async fn create_container(&self, name: &str) -> StoreResult<()> {
        check_name(name, "")?;
        Ok(self.at(name).create_container(&[]).await?)
    }

    async fn delete_container(&self, name: &str) -> StoreResult<()> {
        match self.at(name).delete_container().await {
            Ok(()) => Ok(()),
            // Pithos and Swift answer 409 to a container that holds objects.
            Err(e) if e.status == 409 => Err(StoreError::NotEmpty),
            Err(e) => Err(e.into()),
        }
    }

    async fn quota(&self) -> StoreResult<(u64, u64)> {
        Ok(self.client.get_account_quota().await?)
    }
}

/// The most older versions a failing last block is looked for in.
const CUT_SEARCH_VERSIONS: usize = 8;

/// Whether `data`, the partial last block `i` of `version` whose hash is
/// not `key`, is the start of block `i` of an older version whose hash is
/// `key`: Synnefo's truncation leaves that hash on the cut block. The older
/// block is read (pinned to its version) and checked against `key`, so the
/// bytes served are checked after all; no history (versioning off, or too
/// many versions since) means they are not, and are refused.
async fn cut_from_checked(
    pc: &PithosClient,
    name: &str,
    version: &Version,
    i: usize,
    key: BlockHash,
    algorithm: Algorithm,
    data: &Bytes,
) -> bool {
    let Ok(versions) = pc.get_object_versionlist(name).await else { return false };
    let older = versions.iter().rev().map(|(id, _)| id).filter(|id| Some(id.as_str()) != version.pin.as_deref());
    for id in older.take(CUT_SEARCH_VERSIONS) {
        let Ok(hm) = pc.get_object_hashmap(name, Some(id)).await else { continue };
        let (start, end) = hm.block_range(i);
        if hm.hashes.get(i) != Some(&key) || end.saturating_sub(start) <= data.len() as u64 {
            continue;
        }
        let Ok(old) = pc.fetch_block(name, &hm, i).await else { continue };
        let old_checked = tokio::task::spawn_blocking({
            let old = old.clone();
            move || blocks::hash_block(algorithm, &old) == key
        });
        if old_checked.await.unwrap_or(false) {
            return old.starts_with(data);
        }
    }
    false
}
