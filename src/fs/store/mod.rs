//! The seam under the filesystem: what `Fs` asks of an object store, in the
//! store's own terms (objects, versions, blocks), never HTTP. Each call
//! answers a [`StoreError`] that says what happened; the filesystem turns it
//! into an errno knowing which operation it was doing (`super::errno`).
//!
//! - [`PithosStore`]: Pithos+ (hashmaps, content-addressed block uploads,
//!   one-request folder moves, listings that carry metadata);
//! - [`SwiftStore`]: a plain OpenStack Swift (ETag pinning, ranged reads with
//!   `If-Match`, whole-object streamed writes, copy+delete renames, listings
//!   completed by HEAD);
//! - [`FaultyStore`]: wraps either (or any store) for tests: counts calls per
//!   operation and fails, cuts or delays the k-th one.
//!
//! Each method is one step a test may want to fail on its own: one listing
//! page, one block read, one commit attempt (a hashmap PUT), one block upload.
//! The loops over them (paging, uploading what a commit lacks) are the
//! filesystem's.

pub mod faulty;
pub mod pithos;
pub mod swift;

pub use faulty::{Fault, FaultyStore, StoreOp};
pub use pithos::PithosStore;
pub use swift::SwiftStore;

use super::scope::Scope;
use crate::blocks::{self, Algorithm, BlockHash};
use crate::clients::ClientError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What went wrong with a store call. The variants say what happened, so
/// the filesystem can answer the errno the operation calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No such object, folder or container.
    NotFound,
    /// The object is no longer the version the call was conditional on
    /// (`If-Match` or `If-None-Match: *` failed).
    Changed,
    /// A container or folder still holds objects.
    NotEmpty,
    /// The server refused the change as conflicting with what it holds
    /// (a 409 that is not about emptiness).
    Conflict(String),
    /// Over the account's or the container's quota.
    Quota,
    /// Larger than the store holds in one object.
    TooLarge,
    /// A name longer than the store takes (refused before any request).
    NameTooLong,
    /// The credentials do not allow it.
    Denied,
    /// The server could not be reached, failed, or answered too slowly,
    /// after the client's retries.
    Unavailable(String),
    /// A request the server refused as malformed, or a reply that breaks
    /// the rules (an impossible size, a short or corrupt block).
    Invalid(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Changed => f.write_str("changed since it was read (precondition failed)"),
            StoreError::NotEmpty => f.write_str("not empty"),
            StoreError::Conflict(m) => write!(f, "conflict: {m}"),
            StoreError::Quota => f.write_str("over quota"),
            StoreError::TooLarge => f.write_str("too large for the store"),
            StoreError::NameTooLong => f.write_str("name too long for the store"),
            StoreError::Denied => f.write_str("access denied"),
            StoreError::Unavailable(m) => write!(f, "unavailable: {m}"),
            StoreError::Invalid(m) => write!(f, "invalid: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<ClientError> for StoreError {
    /// The meaning of a client's failure, by HTTP status. A call whose
    /// statuses mean more (a 409 on deleting a container) maps them itself.
    fn from(e: ClientError) -> StoreError {
        match e.status {
            404 => StoreError::NotFound,
            401 | 403 => StoreError::Denied,
            412 => StoreError::Changed,
            409 => StoreError::Conflict(e.message),
            413 => StoreError::Quota,
            0 if e.is_reply_too_long() => StoreError::Invalid(e.message),
            0 | 500.. => StoreError::Unavailable(e.message),
            _ => StoreError::Invalid(e.message),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> StoreError {
        StoreError::Invalid(format!("local I/O: {e}"))
    }
}

/// Longest container name a store takes (bytes).
pub const MAX_CONTAINER_NAME: usize = 255;

/// Longest object name any store takes (bytes): the local cloud's.
pub const MAX_OBJECT_NAME: usize = super::names::MAX_OBJECT_NAME;

/// Longest object name Synnefo takes, and Swift in its default
/// configuration (bytes).
pub const SERVER_MAX_OBJECT_NAME: usize = 1024;

/// A name the store can hold, or `NameTooLong` before any request.
pub fn check_name(container: &str, name: &str) -> StoreResult<()> {
    if container.len() > MAX_CONTAINER_NAME || name.len() > MAX_OBJECT_NAME {
        return Err(StoreError::NameTooLong);
    }
    Ok(())
}

/// What a client's failure on a request that makes object `name` means: a
/// 400 for a name past `SERVER_MAX_OBJECT_NAME` is that server's limit on
/// names (`ENAMETOOLONG`, and `limit` learns it), not a request the mount
/// got wrong (`EIO`).
pub fn naming<'a>(name: &'a str, limit: &'a AtomicUsize) -> impl FnOnce(ClientError) -> StoreError + 'a {
    move |e| {
        if e.status == 400 && name.len() > SERVER_MAX_OBJECT_NAME {
            limit.fetch_min(SERVER_MAX_OBJECT_NAME, Ordering::Relaxed);
            StoreError::NameTooLong
        } else {
            e.into()
        }
    }
}

/// An object as the store describes it (a listing entry, or a HEAD).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectMeta {
    /// The object's full name in its container.
    pub name: String,
    pub bytes: u64,
    pub content_type: String,
    /// What names this content: the Merkle hash on Pithos, the ETag on Swift.
    pub tag: Option<String>,
    /// Pithos: the Merkle hash (`X-Object-Hash`), the version and the object's UUID.
    pub hash: Option<String>,
    pub version: Option<String>,
    pub uuid: Option<String>,
    /// Last-Modified, seconds since the epoch.
    pub modified: Option<f64>,
    /// User metadata, keys lower-case without the `X-Object-Meta-` prefix.
    pub meta: BTreeMap<String, String>,
    /// The public URL, when the object is published (Pithos).
    pub public: Option<String>,
    /// What another account's object allows this user (Pithos, in a
    /// HEAD). None: one's own, or not said.
    pub allowed_to: Option<Access>,
}

/// What a grant on another account's object allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    /// `X-Object-Allowed-To` (`read` or `write`).
    pub fn parse(s: &str) -> Option<Access> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            _ => None,
        }
    }
}

/// One entry of a folder's listing.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Object(ObjectMeta),
    /// Names under a common prefix, as listed (`a/b/`).
    Folder(String),
}

impl ObjectMeta {
    /// Whether this object holds the content `content_id` names, of `size`
    /// bytes: Pithos shows it as the hash (which ignores trailing zeros, so
    /// the size tells those apart), Swift as the ETag.
    pub fn holds(&self, size: u64, content_id: &str) -> bool {
        let shown = self.hash.as_deref().or(self.tag.as_deref());
        self.bytes == size && shown.is_some_and(|h| h.eq_ignore_ascii_case(content_id))
    }
}

impl Entry {
    /// The name the listing orders by (and pages after).
    pub fn name(&self) -> &str {
        match self {
            Entry::Object(o) => &o.name,
            Entry::Folder(f) => f,
        }
    }
}

/// A container as the account's listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub name: String,
    pub modified: Option<f64>,
}

/// Who an object is shared with, as the store keeps it: user UUIDs,
/// `uuid:group` names and `*` (everyone with an account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing {
    pub read: Vec<String>,
    pub write: Vec<String>,
}

impl Sharing {
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }
}

/// How a container cuts files into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub block_size: u64,
    /// Blocks are named by this hash of their content (Pithos): a block can
    /// be sent before the version that lists it, and a block read for one
    /// file serves every file that holds it. None: blocks exist only as byte
    /// ranges of one version (Swift), named by that version.
    pub content_hash: Option<Algorithm>,
    /// The largest object (`EFBIG` past it).
    pub max_size: u64,
}

/// A version of an object, as opened or as just written: what reads of it
/// are pinned to and what the next commit is conditional on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub size: u64,
    pub block_size: u64,
    /// See [`Geometry::content_hash`]: blocks read are checked against it.
    pub content_hash: Option<Algorithm>,
    /// What reads carry to stay on this version (a Pithos version id, a
    /// Swift ETag); also what tells two versions apart.
    pub pin: Option<String>,
    /// The store's number for this version, where it numbers them (Pithos).
    pub id: Option<String>,
    /// What a commit over this version is conditional on (`If-Match`).
    pub tag: Option<String>,
}

impl Version {
    /// Blocks that hold data.
    pub fn block_count(&self) -> usize {
        blocks::block_count(self.size, self.block_size) as usize
    }

    /// Bytes of block `i` in this version (0 past its end).
    pub fn block_len(&self, i: usize) -> usize {
        let start = (i as u64).saturating_mul(self.block_size);
        self.size.saturating_sub(start).min(self.block_size) as usize
    }

    /// The byte range `[start, end)` of block `i`.
    pub fn block_range(&self, i: usize) -> (u64, u64) {
        let start = (i as u64).saturating_mul(self.block_size).min(self.size);
        (start, start + self.block_len(i) as u64)
    }
}

/// An object opened for reading: its version, the cache keys of its blocks
/// (block hashes on Pithos, keys derived from the ETag on Swift) and what
/// the store says about it.
#[derive(Debug, Clone)]
pub struct Opened {
    pub meta: ObjectMeta,
    pub version: Version,
    pub keys: Vec<BlockHash>,
    pub max_size: u64,
}

/// A block read from a version.
#[derive(Debug, Clone)]
pub struct Block {
    pub data: Bytes,
    /// Whether the content is known to be what its key names (checked
    /// against its hash, or pinned by the version): only such blocks may
    /// be cached under the key.
    pub checked: bool,
}

/// What a new version must find on the server to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Written whatever is there (a conflict copy).
    Any,
    /// Only if no object has the name (`If-None-Match: *`).
    Absent,
    /// Only over this version (`If-Match`).
    Matches(String),
}

/// A new version to commit: its size and metadata; its blocks come from a
/// [`BlockSource`].
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub size: u64,
    pub block_size: u64,
    /// The container's block hash, when blocks are named by content.
    pub content_hash: Option<Algorithm>,
    pub content_type: String,
    /// The object's metadata, all of it (a commit replaces it).
    pub meta: Vec<(String, String)>,
    pub condition: Condition,
}

impl NewVersion {
    pub fn block_count(&self) -> usize {
        blocks::block_count(self.size, self.block_size) as usize
    }

    /// Bytes of block `i`.
    pub fn block_len(&self, i: usize) -> usize {
        let start = (i as u64).saturating_mul(self.block_size);
        self.size.saturating_sub(start).min(self.block_size) as usize
    }
}

/// The blocks of a new version, as the filesystem holds them (changed
/// blocks in memory or spilled, the rest from the version it replaces).
pub trait BlockSource: Send + Sync {
    fn count(&self) -> usize;
    /// Whether block `i` is held here, changed (not fetched from the store).
    fn is_local(&self, i: usize) -> bool;
    /// The content hash of every block; computed once. CPU work: call it
    /// off the runtime's reactor (`block_in_place`).
    fn hashes(&self, algorithm: Algorithm) -> std::io::Result<Arc<Vec<BlockHash>>>;
    /// Block `i` of the new version. Trailing zeros may be left out (a
    /// hole is empty): a block's hash does not count them, and a store that
    /// needs every byte pads to [`NewVersion::block_len`].
    fn block(&self, i: usize) -> BoxFuture<'static, std::io::Result<Bytes>>;
}

/// What a commit attempt did.
#[derive(Debug, Clone)]
pub enum Commit {
    /// Written: the new version and the cache keys of its blocks.
    Done(Committed),
    /// Nothing written: the store lacks these blocks (index, hash). Upload
    /// them ([`Store::upload_block`]) and commit again.
    Missing(Vec<(usize, BlockHash)>),
}

#[derive(Debug, Clone)]
pub struct Committed {
    pub version: Version,
    pub keys: Vec<BlockHash>,
}

/// The operations the filesystem needs of an object store. Every future is
/// `Send`: the filesystem runs them on a multi-threaded runtime.
pub trait Store: Send + Sync + 'static {
    /// How `container` cuts files into blocks.
    fn geometry(&self, container: &str) -> impl Future<Output = StoreResult<Geometry>> + Send;

    /// The most entries one folder shows (the client's listing cap).
    fn listing_cap(&self) -> usize;

    /// The longest object name the store takes (bytes), as far as it knows
    /// now: a longer one is `ENAMETOOLONG` before any request.
    fn max_object_name(&self) -> usize {
        MAX_OBJECT_NAME
    }

    /// One page of the account's containers, after `marker`.
    fn list_containers(
        &self,
        marker: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Container>>> + Send;

    /// One page of the folder `prefix` (empty, or ending in `/`) of
    /// `container`, after `marker`: objects with their metadata, and the
    /// folders under it rolled up at `/`.
    fn list_page(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Entry>>> + Send;

    /// Whether any object's name starts with `prefix` (one short listing).
    fn holds_anything(&self, container: &str, prefix: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The object as it is now (HEAD).
    fn stat(&self, container: &str, name: &str) -> impl Future<Output = StoreResult<ObjectMeta>> + Send;

    /// Opens the current version for reading: pins it.
    fn open(&self, container: &str, name: &str) -> impl Future<Output = StoreResult<Opened>> + Send;

    /// Block `i` of `version`, whose cache key is `key`.
    fn read_block(
        &self,
        container: &str,
        name: &str,
        version: &Version,
        i: usize,
        key: BlockHash,
    ) -> impl Future<Output = StoreResult<Block>> + Send;

    /// Bytes `start..end` of `version`.
    fn read_range(
        &self,
        container: &str,
        name: &str,
        version: &Version,
        start: u64,
        end: u64,
    ) -> impl Future<Output = StoreResult<Bytes>> + Send;

    /// A small object whole (a symlink's target): longer than `max` is an error.
    fn read_object(&self, container: &str, name: &str, max: u64) -> impl Future<Output = StoreResult<Bytes>> + Send;

    /// One attempt to write `new` as the object's next version.
    fn commit(
        &self,
        container: &str,
        name: &str,
        new: &NewVersion,
        blocks: Arc<dyn BlockSource>,
    ) -> impl Future<Output = StoreResult<Commit>> + Send;

    /// The name this store gives the content of `new` (the Merkle hash on
    /// Pithos, the MD5 ETag on Swift), as a later `stat` shows it: kept when
    /// a commit's outcome is lost, to tell later whether it landed (see
    /// `ObjectMeta::holds`). None when it cannot be told.
    fn content_id(&self, new: &NewVersion, blocks: Arc<dyn BlockSource>)
        -> impl Future<Output = Option<String>> + Send;

    /// The version `now` describes (what a HEAD says the object is now),
    /// when it holds exactly the content of `new`: a commit the store took
    /// although its reply was lost, refused when tried again by its own
    /// condition. Told from `new`'s blocks and the store's name for a
    /// content (no request beyond reading blocks `blocks` does not hold);
    /// None when it is other content, or cannot be told.
    fn landed(
        &self,
        new: &NewVersion,
        blocks: Arc<dyn BlockSource>,
        now: &ObjectMeta,
    ) -> impl Future<Output = Option<Committed>> + Send;

    /// Sends one block to `container` ahead of the version that lists it;
    /// answers the hash the store computed.
    fn upload_block(&self, container: &str, data: Bytes) -> impl Future<Output = StoreResult<BlockHash>> + Send;

    /// Writes a small object whole, unconditionally (a folder marker, a symlink).
    fn write_object(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        meta: &[(String, String)],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The object's versions, oldest first: (version id, seconds since the
    /// epoch). `None` where the store keeps no versions (plain Swift).
    fn versions(
        &self,
        container: &str,
        name: &str,
    ) -> impl Future<Output = Option<StoreResult<Vec<(String, f64)>>>> + Send;

    /// Publishes the object (a public link anyone may fetch without a
    /// token) or withdraws its link. `None` where the store has no public
    /// links (plain Swift).
    fn set_public(
        &self,
        container: &str,
        name: &str,
        public: bool,
    ) -> impl Future<Output = Option<StoreResult<()>>> + Send;

    /// The same store seen through `scope`: the account at a past moment,
    /// one version by its id, or another account as far as it shares with
    /// this user. None where the store has no such view (plain Swift keeps
    /// no history and no sharing) and for the mount's folders of views.
    fn scoped(&self, scope: &Scope) -> Option<Self>
    where
        Self: Sized;

    /// The accounts (UUIDs) that share objects with this user. None where
    /// the store has no sharing.
    fn sharers(&self) -> impl Future<Output = Option<StoreResult<Vec<String>>>> + Send {
        async { None }
    }

    /// Display names of the users with these UUIDs (those the identity
    /// service knows).
    fn user_names(&self, uuids: &[String]) -> impl Future<Output = StoreResult<BTreeMap<String, String>>> + Send {
        let _ = uuids;
        async { Ok(BTreeMap::new()) }
    }

    /// UUIDs of the users with these display names (those it knows).
    fn user_uuids(&self, names: &[String]) -> impl Future<Output = StoreResult<BTreeMap<String, String>>> + Send {
        let _ = names;
        async { Ok(BTreeMap::new()) }
    }

    /// Who the object is shared with. None where the store has no sharing.
    fn sharing(&self, container: &str, name: &str) -> impl Future<Output = Option<StoreResult<Sharing>>> + Send {
        let _ = (container, name);
        async { None }
    }

    /// Shares the object (a folder marker: everything under it) as
    /// `sharing` says; an empty one withdraws it. None where the store has
    /// no sharing.
    fn set_sharing(
        &self,
        container: &str,
        name: &str,
        sharing: &Sharing,
    ) -> impl Future<Output = Option<StoreResult<()>>> + Send {
        let _ = (container, name, sharing);
        async { None }
    }

    /// Merges metadata into the object's (an empty value deletes a key).
    fn set_meta(
        &self,
        container: &str,
        name: &str,
        pairs: &[(String, String)],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn delete(&self, container: &str, name: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Moves one object.
    fn rename(
        &self,
        from_container: &str,
        from: &str,
        to_container: &str,
        to: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A server-side copy of one object (no data moves on Pithos: the
    /// hashmap is copied), its metadata merged with `meta`.
    fn copy(
        &self,
        from_container: &str,
        from: &str,
        to_container: &str,
        to: &str,
        meta: &[(String, String)],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Every object of `container` whose metadata `key` is `value`, anywhere
    /// in it. `like` is one of them: the others hold the same content (a
    /// store that cannot search metadata looks only at objects with its tag
    /// and size).
    fn find_by_meta(
        &self,
        container: &str,
        key: &str,
        value: &str,
        like: &ObjectMeta,
    ) -> impl Future<Output = StoreResult<Vec<ObjectMeta>>> + Send;

    /// Moves a folder: its marker (if any) and every object under `from/`.
    fn rename_folder(
        &self,
        from_container: &str,
        from: &str,
        to_container: &str,
        to: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn create_container(&self, name: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes an empty container (`NotEmpty` otherwise).
    fn delete_container(&self, name: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// (quota, bytes used) of the account; quota 0 when there is none.
    fn quota(&self) -> impl Future<Output = StoreResult<(u64, u64)>> + Send;
}

/// What a HEAD says of an object.
pub fn meta_of_info(name: &str, i: &crate::clients::storage::ObjectInfo) -> ObjectMeta {
    ObjectMeta {
        name: name.to_string(),
        bytes: i.bytes,
        content_type: i.content_type.clone(),
        tag: i.hash.clone().or_else(|| (!i.etag.is_empty()).then(|| i.etag.clone())),
        hash: i.hash.clone(),
        version: i.version.clone(),
        uuid: i.uuid.clone(),
        modified: i.last_modified,
        meta: i.meta.clone(),
        public: i.info.header("x-object-public").map(str::to_string),
        allowed_to: i.info.header("x-object-allowed-to").and_then(Access::parse),
    }
}

/// What a JSON listing says of an object (the raw JSON is dropped here).
pub fn meta_of_entry(e: crate::clients::storage::ObjectEntry) -> ObjectMeta {
    ObjectMeta {
        tag: e.hash.clone().or_else(|| (!e.md5.is_empty()).then_some(e.md5)),
        hash: e.hash,
        version: e.version.map(|v| v.to_string()),
        uuid: e.uuid,
        modified: e.last_modified,
        meta: e.meta,
        public: None,
        allowed_to: None,
        bytes: e.bytes,
        content_type: e.content_type,
        name: e.name,
    }
}

/// A listing entry of the client as the store's.
pub fn entry_of(l: crate::clients::storage::Listed) -> Entry {
    match l {
        crate::clients::storage::Listed::Object(o) => Entry::Object(meta_of_entry(o)),
        crate::clients::storage::Listed::Subdir(s) => Entry::Folder(s),
    }
}

/// The request options of a new version.
pub fn put_options(new: &NewVersion) -> crate::clients::storage::PutOptions {
    let mut o = crate::clients::storage::PutOptions {
        content_type: Some(new.content_type.clone()),
        meta: new.meta.clone(),
        ..Default::default()
    };
    match &new.condition {
        Condition::Any => {}
        Condition::Absent => o.if_not_exists = true,
        Condition::Matches(tag) => o.if_match = Some(tag.clone()),
    }
    o
}
