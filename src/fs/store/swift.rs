//! A plain OpenStack Swift under the filesystem (or any store that speaks
//! only the OpenStack object API): no hashmaps, so files are cut in 4 MiB
//! ranges. An open is a HEAD that pins the ETag; every read carries
//! `If-Match` with it; a new version is the whole object in one streamed PUT;
//! a rename copies then deletes; listings carry no user metadata, so they are
//! completed by a HEAD per object, once per ETag and size.

use super::{
    entry_of, meta_of_info, Block, BlockSource, Commit, Committed, Condition, Container, Entry, Geometry, NewVersion,
    ObjectMeta, Opened, Store, StoreError, StoreResult, Version,
};
use crate::blocks::{self, BlockHash};
use crate::clients::storage::{GetOptions, ListOptions, Listed, ObjectStorage, PutOptions, StorageClient};
use crate::fs::scope::Scope;
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use lru::LruCache;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Block size for plain storage, which has none of its own.
pub const PLAIN_BLOCK_SIZE: u64 = 4 << 20;

/// The largest object plain storage takes in one PUT (Swift's default
/// `max_file_size`, 5 GiB): the mount commits a plain file in one PUT.
pub const PLAIN_MAX_SIZE: u64 = 5 << 30;

/// HEADs of objects kept to complete listings: past it the least recently
/// listed are asked again.
const KNOWN_OBJECTS: usize = 65_536;

/// HEADs in flight at once while completing a listing.
const PARALLEL_HEADS: usize = 16;

/// Copies and deletes in flight at once while moving a folder.
const PARALLEL_MOVES: usize = 8;

/// The cache key of block `i` of a plain-storage object: the ETag (an MD5 of
/// the content on Swift) with the size and block geometry, so copies of one
/// object share cached blocks and a new version never meets an old block.
pub fn plain_key(etag: &str, size: u64, block_size: u64, i: usize) -> BlockHash {
    let mut h = Sha256::new();
    h.update(b"pithosfs-plain\0");
    h.update(etag.as_bytes());
    h.update([0]);
    h.update(size.to_le_bytes());
    h.update(block_size.to_le_bytes());
    h.update((i as u64).to_le_bytes());
    BlockHash(h.finalize().into())
}

/// The cache keys of every block of a plain-storage object.
pub fn plain_keys(etag: &str, size: u64, block_size: u64) -> Vec<BlockHash> {
    (0..blocks::block_count(size, block_size) as usize).map(|i| plain_key(etag, size, block_size, i)).collect()
}

/// A Swift account through its storage client.
pub struct SwiftStore {
    client: StorageClient,
    /// What a HEAD said of each object lately, by (container, name): a
    /// listing entry with the same ETag and size takes its metadata from here.
    known: Mutex<LruCache<(String, String), ObjectMeta>>,
}

impl SwiftStore {
    pub fn new(client: StorageClient) -> SwiftStore {
        let cap = NonZeroUsize::new(KNOWN_OBJECTS).unwrap_or(NonZeroUsize::MIN);
        SwiftStore { client, known: Mutex::new(LruCache::new(cap)) }
    }

    pub fn client(&self) -> &StorageClient {
        &self.client
    }

    fn at(&self, container: &str) -> StorageClient {
        self.client.with_container(container)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, LruCache<(String, String), ObjectMeta>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, container: &str, meta: &ObjectMeta) {
        self.known().put((container.to_string(), meta.name.clone()), meta.clone());
    }

    /// What was known of `from` now holds for `to` (a copy keeps content and metadata).
    fn carry(&self, from_container: &str, from: &str, to_container: &str, to: &str) {
        let mut known = self.known();
        if let Some(mut m) = known.pop(&(from_container.to_string(), from.to_string())) {
            m.name = to.to_string();
            known.put((to_container.to_string(), to.to_string()), m);
        }
    }

    /// The metadata of listed objects, from what is known or by HEAD (once
    /// per ETag and size: an unchanged object keeps what was read before).
    async fn complete(&self, container: &str, entries: &mut [Entry]) -> StoreResult<()> {
        let mut need = Vec::new();
        {
            let mut known = self.known();
            for (i, e) in entries.iter_mut().enumerate() {
                let Entry::Object(o) = e else { continue };
                match known.get(&(container.to_string(), o.name.clone())) {
                    Some(k) if k.tag == o.tag && k.bytes == o.bytes => *o = k.clone(),
                    _ => need.push((i, o.name.clone())),
                }
            }
        }
        let sc = self.at(container);
        let heads: Vec<_> = stream::iter(need)
            .map(|(i, name)| {
                let sc = sc.clone();
                async move { (i, sc.get_object_info(&name).await.map(|info| meta_of_info(&name, &info))) }
            })
            .buffer_unordered(PARALLEL_HEADS)
            .collect()
            .await;
        for (i, head) in heads {
            match head {
                Ok(meta) => {
                    self.remember(container, &meta);
                    entries[i] = Entry::Object(meta);
                }
                Err(e) if e.status == 404 => {} // gone since the listing: as listed
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Every object name under the folder `from` (and its marker, if any).
    async fn folder_objects(&self, container: &str, from: &str) -> StoreResult<Vec<String>> {
        let sc = self.at(container);
        let under = sc.list_objects(&ListOptions { prefix: Some(format!("{from}/")), ..Default::default() }).await?;
        let mut names: Vec<String> = under
            .into_iter()
            .filter_map(|l| match l {
                Listed::Object(o) => Some(o.name),
                Listed::Subdir(_) => None,
            })
            .collect();
        match sc.get_object_info(from).await {
            Ok(_) => names.push(from.to_string()),
            Err(e) if e.status == 404 => {}
            Err(e) => return Err(e.into()),
        }
        // Only names under the folder move (a server answering others is ignored).
        names.retain(|n| n.starts_with(from));
        Ok(names)
    }
}

/// A version of `size` bytes whose ETag is `etag`.
fn pinned(etag: &str, size: u64) -> Version {
    let etag = (!etag.is_empty()).then(|| etag.to_string());
    Version { size, block_size: PLAIN_BLOCK_SIZE, content_hash: None, pin: etag.clone(), id: None, tag: etag }
}

impl Store for SwiftStore {
    async fn geometry(&self, _container: &str) -> StoreResult<Geometry> {
        Ok(Geometry { block_size: PLAIN_BLOCK_SIZE, content_hash: None, max_size: PLAIN_MAX_SIZE })
    }

    fn listing_cap(&self) -> usize {
        self.client.http().options().max_listing
    }

    fn max_object_name(&self) -> usize {
        super::SERVER_MAX_OBJECT_NAME
    }

    async fn list_containers(&self, marker: Option<&str>, limit: usize) -> StoreResult<Vec<Container>> {
        let o = ListOptions { marker: marker.map(str::to_string), limit: Some(limit), ..Default::default() };
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
        let o = ListOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
            delimiter: Some("/".into()),
            marker: marker.map(str::to_string),
            limit: Some(limit),
            ..Default::default()
        };
        let mut entries: Vec<Entry> = self.at(container).list_objects(&o).await?.into_iter().map(entry_of).collect();
        self.complete(container, &mut entries).await?;
        Ok(entries)
    }

    async fn holds_anything(&self, container: &str, prefix: &str) -> StoreResult<bool> {
        let o = ListOptions { prefix: Some(prefix.to_string()), limit: Some(1), ..Default::default() };
        Ok(!self.at(container).list_objects(&o).await?.is_empty())
    }

    async fn stat(&self, container: &str, name: &str) -> StoreResult<ObjectMeta> {
        let meta = meta_of_info(name, &self.at(container).get_object_info(name).await?);
        self.remember(container, &meta);
        Ok(meta)
    }

    /// A HEAD pins the ETag every ranged read checks.
    async fn open(&self, container: &str, name: &str) -> StoreResult<Opened> {
        let info = self.at(container).get_object_info(name).await?;
        // Its blocks are ranges with a key each: a size the server made up
        // must not make millions of them.
        let most = blocks::MAX_BLOCKS_PER_OBJECT * PLAIN_BLOCK_SIZE;
        if info.bytes > most {
            return Err(StoreError::Invalid(format!(
                "{name}: the server reports {} bytes, more than the {most} this mount reads of one object",
                info.bytes
            )));
        }
        let meta = meta_of_info(name, &info);
        self.remember(container, &meta);
        let keys = plain_keys(&info.etag, info.bytes, PLAIN_BLOCK_SIZE);
        Ok(Opened { meta, version: pinned(&info.etag, info.bytes), keys, max_size: PLAIN_MAX_SIZE })
    }

    /// The block's byte range of the version, with `If-Match` on its ETag: a
    /// changed object fails the read rather than mixing versions.
    async fn read_block(
        &self,
        container: &str,
        name: &str,
        version: &Version,
        i: usize,
        _key: BlockHash,
    ) -> StoreResult<Block> {
        let (start, end) = version.block_range(i);
        if end <= start {
            return Ok(Block { data: Bytes::new(), checked: true });
        }
        let data = self.read_range(container, name, version, start, end).await?;
        if data.len() as u64 != end - start {
            return Err(StoreError::Invalid(format!("{name}: asked bytes {start}-{}, got {}", end - 1, data.len())));
        }
        Ok(Block { data, checked: true })
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
        let o = GetOptions { range: Some((start, end - 1)), if_match: version.pin.clone(), ..Default::default() };
        Ok(self.at(container).get_object(name, &o).await?.1)
    }

    async fn read_object(&self, container: &str, name: &str, max: u64) -> StoreResult<Bytes> {
        let o = GetOptions { max_bytes: Some(max), ..Default::default() };
        Ok(self.at(container).get_object(name, &o).await?.1)
    }

    /// The whole object in one streamed PUT, assembled block by block. Swift
    /// has no conditional PUT on an ETag, so a HEAD just before checks the
    /// version (a narrow race remains; SEMANTICS.md says so).
    async fn commit(
        &self,
        container: &str,
        name: &str,
        new: &NewVersion,
        blocks: Arc<dyn BlockSource>,
    ) -> StoreResult<Commit> {
        check_swift_name(container, name)?;
        if new.size > PLAIN_MAX_SIZE {
            return Err(StoreError::TooLarge);
        }
        let sc = self.at(container);
        let mut o =
            PutOptions { content_type: Some(new.content_type.clone()), meta: new.meta.clone(), ..Default::default() };
        match &new.condition {
            Condition::Any => {}
            Condition::Absent => o.if_not_exists = true,
            Condition::Matches(expected) => {
                let changed = match sc.get_object_info(name).await {
                    Ok(info) => info.etag != *expected,
                    Err(e) if e.status == 404 => true,
                    Err(e) => return Err(e.into()),
                };
                if changed {
                    return Err(StoreError::Changed);
                }
            }
        }
        let lens: Vec<usize> = (0..new.block_count()).map(|i| new.block_len(i)).collect();
        let body = stream::iter(lens.into_iter().enumerate()).then(move |(i, len)| {
            let read = blocks.block(i);
            async move {
                let block = read.await?;
                if block.len() >= len {
                    // A cut block keeps its first bytes (no copy).
                    return Ok(block.slice(..len));
                }
                // Holes and grown ends read as zeros.
                let mut padded = block.to_vec();
                padded.resize(len, 0);
                Ok::<Bytes, std::io::Error>(Bytes::from(padded))
            }
        });
        let w = sc.put_object_streamed(name, new.size, body, &o).await?;
        // What a HEAD would say now: the next listing needs none.
        let meta = ObjectMeta {
            name: name.to_string(),
            bytes: new.size,
            content_type: new.content_type.clone(),
            tag: (!w.etag.is_empty()).then(|| w.etag.clone()),
            modified: Some(crate::fs::time::Time::now().as_secs_f64()),
            meta: new.meta.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect(),
            ..Default::default()
        };
        self.remember(container, &meta);
        let keys = plain_keys(&w.etag, new.size, new.block_size);
        Ok(Commit::Done(Committed { version: pinned(&w.etag, new.size), keys }))
    }

    /// Swift's ETag of an object written whole is the MD5 of its content:
    /// the new version is read through (changed blocks from memory or the
    /// spill file, the others from the cache or, pinned to the version they
    /// come from, the store) and hashed.
    async fn content_id(&self, new: &NewVersion, blocks: Arc<dyn BlockSource>) -> Option<String> {
        let mut sum = Md5::new();
        for i in 0..new.block_count() {
            let block = blocks.block(i).await.ok()?;
            let len = new.block_len(i);
            let held = block.len().min(len);
            // CPU work over up to a block: off the runtime's reactor.
            tokio::task::block_in_place(|| {
                sum.update(&block[..held]);
                // Holes and grown ends are zeros, as the commit sends them.
                let zeros = [0u8; 4096];
                let mut left = len - held;
                while left > 0 {
                    let n = left.min(zeros.len());
                    sum.update(&zeros[..n]);
                    left -= n;
                }
            });
        }
        Some(hex::encode(sum.finalize()))
    }

    async fn landed(&self, new: &NewVersion, blocks: Arc<dyn BlockSource>, now: &ObjectMeta) -> Option<Committed> {
        let etag = now.tag.clone()?;
        if now.bytes != new.size || !self.content_id(new, blocks).await?.eq_ignore_ascii_case(&etag) {
            return None;
        }
        Some(Committed { version: pinned(&etag, new.size), keys: plain_keys(&etag, new.size, new.block_size) })
    }

    /// Swift keeps no blocks apart from objects; commits never ask for any.
    async fn upload_block(&self, _container: &str, _data: Bytes) -> StoreResult<BlockHash> {
        Err(StoreError::Invalid("plain storage takes no block uploads".into()))
    }

    async fn write_object(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        meta: &[(String, String)],
    ) -> StoreResult<()> {
        check_swift_name(container, name)?;
        let o = PutOptions { content_type: Some(content_type.to_string()), meta: meta.to_vec(), ..Default::default() };
        self.at(container).put_object(name, data, &o).await?;
        Ok(())
    }

    /// Swift's POST replaces all metadata: the client merges with a HEAD first.
    /// Swift keeps no versions the mount can read.
    async fn versions(&self, _container: &str, _name: &str) -> Option<StoreResult<Vec<(String, f64)>>> {
        None
    }

    /// Swift keeps no history and no sharing: the present is its one view.
    fn scoped(&self, _scope: &Scope) -> Option<SwiftStore> {
        None
    }

    /// Swift has no public links of single objects.
    async fn set_public(&self, _container: &str, _name: &str, _public: bool) -> Option<StoreResult<()>> {
        None
    }

    async fn set_meta(&self, container: &str, name: &str, pairs: &[(String, String)]) -> StoreResult<()> {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.at(container).set_object_meta(name, &refs).await?;
        // The content (and so the ETag) is unchanged: what is known stays,
        // with the new metadata.
        if let Some(m) = self.known().get_mut(&(container.to_string(), name.to_string())) {
            for (k, v) in pairs {
                if v.is_empty() {
                    m.meta.remove(&k.to_lowercase());
                } else {
                    m.meta.insert(k.to_lowercase(), v.clone());
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, container: &str, name: &str) -> StoreResult<()> {
        self.known().pop(&(container.to_string(), name.to_string()));
        Ok(self.at(container).delete_object(name).await?)
    }

    /// A server-side copy, then the delete.
    async fn rename(&self, from_container: &str, from: &str, to_container: &str, to: &str) -> StoreResult<()> {
        check_swift_name(to_container, to)?;
        self.at(to_container).move_object(from_container, from, to).await?;
        self.carry(from_container, from, to_container, to);
        Ok(())
    }

    /// `X-Copy-From` (Swift copies the data); the request's metadata is
    /// merged with the source's, as on Pithos.
    async fn copy(
        &self,
        from_container: &str,
        from: &str,
        to_container: &str,
        to: &str,
        meta: &[(String, String)],
    ) -> StoreResult<()> {
        check_swift_name(to_container, to)?;
        self.at(to_container).copy_object_with(from_container, from, to, meta).await?;
        self.known().pop(&(to_container.to_string(), to.to_string()));
        Ok(())
    }

    /// Swift cannot search metadata: the whole container is listed, and
    /// only objects of `like`'s ETag and size (the same content) are asked
    /// for their metadata.
    async fn find_by_meta(
        &self,
        container: &str,
        key: &str,
        value: &str,
        like: &ObjectMeta,
    ) -> StoreResult<Vec<ObjectMeta>> {
        let sc = self.at(container);
        let listed = sc.list_objects(&ListOptions::default()).await?;
        let mut entries: Vec<Entry> = listed
            .into_iter()
            .map(entry_of)
            .filter(|e| match e {
                Entry::Object(o) => o.bytes == like.bytes && o.tag.is_some() && o.tag == like.tag,
                Entry::Folder(_) => false,
            })
            .collect();
        self.complete(container, &mut entries).await?;
        let found = entries.into_iter().filter_map(|e| match e {
            Entry::Object(m) if m.meta.get(key).map(|v| v.trim()) == Some(value) => Some(m),
            _ => None,
        });
        Ok(found.collect())
    }

    /// Swift has no folder move: every object under the folder (and its
    /// marker) is copied, then the originals deleted. Not atomic: a failure
    /// midway leaves both names partly filled, never a lost object.
    async fn rename_folder(&self, from_container: &str, from: &str, to_container: &str, to: &str) -> StoreResult<()> {
        check_swift_name(to_container, to)?;
        let names = self.folder_objects(from_container, from).await?;
        let jobs: Vec<(String, String)> =
            names.iter().filter_map(|n| n.strip_prefix(from).map(|rest| (n.clone(), format!("{to}{rest}")))).collect();
        for (_, t) in &jobs {
            check_swift_name(to_container, t)?;
        }
        let (src, dst) = (self.at(from_container), self.at(to_container));
        stream::iter(jobs.clone())
            .map(|(n, t)| {
                let dst = dst.clone();
                async move { dst.copy_object(from_container, &n, &t).await }
            })
            .buffer_unordered(PARALLEL_MOVES)
            .try_collect::<Vec<_>>()
            .await?;
        stream::iter(names)
            .map(|n| {
                let src = src.clone();
                async move {
                    match src.delete_object(&n).await {
                        Err(e) if e.status != 404 => Err(e),
                        _ => Ok(()),
                    }
                }
            })
            .buffer_unordered(PARALLEL_MOVES)
            .try_collect::<Vec<_>>()
            .await?;
        for (n, t) in &jobs {
            self.carry(from_container, n, to_container, t);
        }
        Ok(())
    }

    async fn create_container(&self, name: &str) -> StoreResult<()> {
        check_swift_name(name, "")?;
        Ok(self.at(name).create_container(&[]).await?)
    }

    async fn delete_container(&self, name: &str) -> StoreResult<()> {
        match self.at(name).delete_container().await {
            Ok(()) => Ok(()),
            Err(e) if e.status == 409 => Err(StoreError::NotEmpty),
            Err(e) => Err(e.into()),
        }
    }

    /// Swift reports no quota (statfs shows 1 PiB), only the bytes used.
    async fn quota(&self) -> StoreResult<(u64, u64)> {
        let info = self.client.get_account_info().await?;
        let used = info.header("x-account-bytes-used").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        Ok((0, used))
    }
}

/// A name Swift takes in its default configuration (object names of at most
/// `SERVER_MAX_OBJECT_NAME` bytes), or `NameTooLong` before any request.
fn check_swift_name(container: &str, name: &str) -> StoreResult<()> {
    if name.len() > super::SERVER_MAX_OBJECT_NAME {
        return Err(StoreError::NameTooLong);
    }
    super::check_name(container, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_differ_by_version_and_block() {
        assert_ne!(plain_key("a", 10, 4, 0), plain_key("a", 10, 4, 1));
        assert_ne!(plain_key("a", 10, 4, 0), plain_key("b", 10, 4, 0));
        assert_eq!(plain_keys("a", 10, 4).len(), 3);
    }
}
