//! Committing: a changed file becomes the object's next version at `close`
//! (flush), `fsync` and release, conditionally on the version it was opened
//! at. The store says which blocks it lacks; only those are uploaded, then
//! the commit is tried again. A version changed by someone else meanwhile
//! is left alone: ours goes to a conflict copy and the call fails with EIO.

use super::attr::{now, Attr};
use super::dirty::DirtySnapshot;
use super::errno::{errno_of, During, Errno, FsResult, Op};
use super::filesystem::{lock, Fs};
use super::handle::{BlockRef, CopiedBlock, LostCommit, OpenFile};
use super::listing::shorten;
use super::store::{BlockSource, Commit, Committed, Condition, NewVersion, Store, StoreError, StoreResult, Version};
use crate::blocks::{self, Algorithm, BlockHash};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{stream, StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Block uploads in flight at once for one commit.
const PARALLEL_UPLOADS: usize = 8;

/// Rounds of "commit, upload what is missing" before giving up.
const COMMIT_ROUNDS: usize = 4;

impl<S: Store> Fs<S> {
    pub async fn flush(self: &Arc<Self>, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        let mut f = h.lock().await;
        self.commit(&mut f).await
    }

    pub async fn release(self: &Arc<Self>, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        let (result, ino) = {
            let mut f = h.lock().await;
            (self.commit(&mut f).await, f.ino())
        };
        self.remove_handle(fh);
        self.note_open(ino, -1);
        result
    }

    /// Commits every changed open file (unmount).
    pub async fn commit_all(self: &Arc<Self>) {
        for h in self.all_handles() {
            let mut f = h.lock().await;
            if let Err(e) = self.commit(&mut f).await {
                tracing::error!("commit at unmount failed: errno {}", e.0);
            }
        }
    }

    /// Commits a changed file, conditionally on the version it was opened at.
    /// A concurrent remote change keeps both: ours goes to a conflict copy
    /// and the call fails with EIO.
    pub(super) async fn commit(self: &Arc<Self>, f: &mut OpenFile) -> FsResult<()> {
        if !f.is_changed() {
            return Ok(());
        }
        if self.is_unlinked(f.ino()) {
            // Its name was removed (or another file renamed over it) while
            // open: what it holds lives on in this handle only, as on a
            // local disk, and is never written back under a name.
            f.set_aside();
            let mut t = self.inodes();
            if let Some(n) = t.get_mut(f.ino()) {
                n.set_size(f.size());
                n.pending = None;
                n.unsent = false;
            }
            return Ok(());
        }
        let loc = self.locate(f.ino())?;
        let store = self.store_for(&loc)?;
        // Its times are those of the last write, truncate or setattr (not
        // the commit's): what stat showed meanwhile.
        let attr = self.attr_of(f.ino())?;
        let mut new = NewVersion {
            size: f.size(),
            block_size: f.block_size(),
            content_hash: f.content_hash(),
            content_type: "application/octet-stream".into(),
            meta: attr.to_meta(),
            condition: self.condition(&store, &loc.container, &loc.path, f).await?,
        };
        let started = Instant::now();
        let snapshot = Arc::new(f.snapshot());
        if snapshot.has_spilled() {
            // A large write: its blocks went ahead early; let them land.
            self.early_uploads_settled().await;
        }
        let blocks: Arc<dyn BlockSource> = Arc::new(FileBlocks::new(self.clone(), f, snapshot.clone()));
        let (sent, unsent) = match self.send_version(&store, &loc.container, &loc.path, &new, &blocks).await {
            Ok(c) => (Ok(c), false),
            // A block the store lacked could not be sent: no request that
            // could have written the version got through, so nothing landed.
            Err(Failed::BeforeWrite(e)) => (Err(e), true),
            Err(Failed::Write(e)) => {
                (self.after_write_failed(&store, &loc.container, &loc.path, &new, &blocks, e).await, false)
            }
        };
        match sent {
            Ok(c) => {
                tracing::info!(
                    "committed {}/{}: {} bytes{} in {} ms",
                    loc.container,
                    shorten(&loc.path),
                    new.size,
                    c.version.id.as_deref().map(|v| format!(", version {v}")).unwrap_or_default(),
                    started.elapsed().as_millis()
                );
                self.keep_written(f, &snapshot, &c.keys);
                let Committed { version, keys } = c;
                self.note_committed(f.ino(), &version, attr.clone());
                f.committed(version, keys);
                // A linked file's other names get the new content.
                self.spread_content(&attr, &loc).await
            }
            Err(StoreError::Changed) => {
                let copy = format!("{}.conflict-{}", loc.path, now().secs());
                new.condition = Condition::Any;
                self.send_version(&store, &loc.container, &copy, &new, &blocks)
                    .await
                    .map_err(Failed::into_inner)
                    .during(Op::Commit)?;
                tracing::warn!(
                    "conflict: {} changed remotely while open here; this side was saved as {}",
                    shorten(&loc.path),
                    shorten(&copy)
                );
                f.set_aside();
                Err(Errno::IO)
            }
            Err(e) => {
                tracing::warn!("commit of {}/{} failed: {e}", loc.container, shorten(&loc.path));
                if matches!(e, StoreError::Unavailable(_)) && !unsent {
                    // Whether it landed is unknown: a new file may be there,
                    // and the next commit must know this version if it is.
                    let content_id = store.content_id(&new, blocks.clone()).await;
                    f.lost_commit(LostCommit { size: new.size, content_id });
                    let mut t = self.inodes();
                    if let Some(n) = t.get_mut(f.ino()).filter(|n| n.unsent) {
                        n.maybe_sent = true;
                    }
                }
                Err(errno_of(Op::Commit, &e))
            }
        }
    }

    /// What the next commit of `f` is conditional on: the version it was
    /// opened at (or no object, for a file created here), unless an earlier
    /// commit whose outcome was lost is what the name holds now (a HEAD
    /// tells): then that version, ours, is replaced. A name holding anything
    /// else, someone else's version, keeps its usual condition and so ends
    /// in a conflict copy.
    async fn condition(&self, store: &S, container: &str, name: &str, f: &OpenFile) -> FsResult<Condition> {
        let Some(lost) = f.lost() else {
            return Ok(f.condition());
        };
        let now = match store.stat(container, name).await {
            Ok(now) => now,
            Err(StoreError::NotFound) => return Ok(f.condition()),
            Err(e) => return Err(errno_of(Op::Commit, &e)),
        };
        Ok(match &lost.content_id {
            Some(id) if now.holds(lost.size, id) => now.tag.map_or(Condition::Any, Condition::Matches),
            Some(_) => f.condition(),
            // Its content cannot be told apart: the name may hold it.
            None => Condition::Any,
        })
    }

    /// A commit that failed at a request that may have written the version.
    async fn after_write_failed(
        &self,
        store: &S,
        container: &str,
        name: &str,
        new: &NewVersion,
        blocks: &Arc<dyn BlockSource>,
        e: StoreError,
    ) -> StoreResult<Committed> {
        match e {
            // A retried commit whose first attempt landed (its reply was lost)
            // is refused by its own version: not a conflict.
            StoreError::Changed => {
                let landed = self.landed(store, container, name, new, blocks).await;
                if landed.is_some() {
                    tracing::info!("{}: a retried commit found its first attempt landed", shorten(name));
                }
                landed.ok_or(StoreError::Changed)
            }
            // The outcome is unknown (the reply was lost after the store
            // wrote it, or the store gave up): if the object now is this
            // version, the commit happened. Answering EIO would leave a file
            // created here counted as never sent, so a rename would move only
            // its local name and leave the object behind.
            StoreError::Unavailable(m) => {
                let landed = self.landed(store, container, name, new, blocks).await;
                if landed.is_some() {
                    tracing::info!("{}: the commit's reply was lost, but the version is there", shorten(name));
                }
                landed.ok_or(StoreError::Unavailable(m))
            }
            other => Err(other),
        }
    }

    /// Writes `new` at `name`: commit, upload the blocks the store lacks,
    /// commit again.
    async fn send_version(
        &self,
        store: &S,
        container: &str,
        name: &str,
        new: &NewVersion,
        blocks: &Arc<dyn BlockSource>,
    ) -> Result<Committed, Failed> {
        for _ in 0..COMMIT_ROUNDS {
            let missing = match store.commit(container, name, new, blocks.clone()).await.map_err(Failed::Write)? {
                Commit::Done(c) => return Ok(c),
                Commit::Missing(m) => m,
            };
            tracing::debug!("{}: uploading {} blocks the store lacks", shorten(name), missing.len());
            stream::iter(missing)
                .map(|(i, want)| {
                    let read = blocks.block(i);
                    async move {
                        let got = store.upload_block(container, read.await?).await?;
                        if got != want {
                            return Err(StoreError::Invalid(format!(
                                "block {i} changed while uploading (the store computed {got}, expected {want})"
                            )));
                        }
                        Ok(())
                    }
                })
                .buffer_unordered(PARALLEL_UPLOADS)
                .try_collect::<Vec<()>>()
                .await
                .map_err(Failed::BeforeWrite)?;
        }
        Err(Failed::BeforeWrite(StoreError::Invalid(format!("the store kept asking for blocks of {name}"))))
    }

    /// The version `new` would be, when the object already is it: a commit
    /// whose reply was lost after the store wrote it, retried and refused by
    /// its own condition. One HEAD; the store tells its content apart.
    async fn landed(
        &self,
        store: &S,
        container: &str,
        name: &str,
        new: &NewVersion,
        blocks: &Arc<dyn BlockSource>,
    ) -> Option<Committed> {
        let now = store.stat(container, name).await.ok()?;
        store.landed(new, blocks.clone(), &now).await
    }

    /// What was just written is likely read next: the cache keeps it under
    /// the new version's keys. Where blocks are named by content only the
    /// blocks in memory are added (unchanged ones keep their names; spilled
    /// ones would only evict others); where they are named by version every
    /// block known here moves to the new version's name.
    fn keep_written(&self, f: &OpenFile, written: &DirtySnapshot, keys: &[BlockHash]) {
        if f.content_hash().is_some() {
            for (i, b) in written.in_memory() {
                if let Some(k) = keys.get(i) {
                    self.cache.insert(*k, b.clone());
                }
            }
            return;
        }
        for (i, key) in keys.iter().enumerate() {
            let kept = written.read(i).ok().flatten().or_else(|| f.key(i).and_then(|h| self.cache.get(h)));
            if let Some(b) = kept.filter(|b| b.len() == f.block_len(i)) {
                self.cache.insert(*key, b);
            }
        }
    }

    /// The node after a commit: the attributes it was written with.
    fn note_committed(&self, ino: u64, version: &Version, attr: Attr) {
        let mut t = self.inodes();
        if let Some(n) = t.get_mut(ino) {
            n.set_attr(&Attr {
                size: version.size,
                hash: version.tag.clone(),
                version: version.id.clone(),
                stored: true,
                ..attr
            });
            n.attr_at = Instant::now();
            n.pending = None;
            n.unsent = false;
            n.maybe_sent = false;
            n.local_times = None;
        }
        drop(t);
        if let Some(v) = &version.pin {
            lock(&self.opened_versions).insert(ino, v.clone());
        }
    }
}

/// The blocks of a file being committed: changed ones from the snapshot
/// taken for this commit, the others from the version it replaces.
struct FileBlocks<S: Store> {
    fs: Arc<Fs<S>>,
    ino: u64,
    dirty: Arc<DirtySnapshot>,
    /// Cache keys of the clean blocks, and where they are read from.
    keys: Vec<BlockHash>,
    base: Option<Arc<Version>>,
    /// Blocks copied from other files, read from there.
    copied: BTreeMap<usize, CopiedBlock>,
    size: u64,
    block_size: u64,
    hashes: Mutex<Option<Arc<Vec<BlockHash>>>>,
}

impl<S: Store> FileBlocks<S> {
    fn new(fs: Arc<Fs<S>>, f: &OpenFile, dirty: Arc<DirtySnapshot>) -> FileBlocks<S> {
        FileBlocks {
            fs,
            ino: f.ino(),
            dirty,
            keys: f.keys().to_vec(),
            base: f.version().cloned(),
            copied: f.copied().clone(),
            size: f.size(),
            block_size: f.block_size(),
            hashes: Mutex::new(None),
        }
    }

    fn block_ref(&self, i: usize) -> Option<BlockRef> {
        let start = i as u64 * self.block_size;
        let len = self.size.saturating_sub(start).min(self.block_size) as usize;
        let key = *self.keys.get(i)?;
        Some(match self.copied.get(&i) {
            Some(c) => BlockRef { i: c.i, key, len, version: Some(c.version.clone()), ino: Some(c.ino) },
            None => BlockRef { i, key, len, version: self.base.clone(), ino: None },
        })
    }
}

impl<S: Store> BlockSource for FileBlocks<S> {
    fn count(&self) -> usize {
        blocks::block_count(self.size, self.block_size) as usize
    }

    fn is_local(&self, i: usize) -> bool {
        self.dirty.contains(i)
    }

    /// Clean blocks keep their keys (their hashes, where blocks are named by
    /// content); changed ones are hashed on every core, spilled ones with
    /// the hash taken when they were spilled.
    fn hashes(&self, algorithm: Algorithm) -> std::io::Result<Arc<Vec<BlockHash>>> {
        let mut known = lock(&self.hashes);
        if let Some(h) = known.as_ref() {
            return Ok(h.clone());
        }
        let indices = self.dirty.indices();
        let hashed = hash_blocks(&self.dirty, &indices, algorithm)?;
        let mut hashes = self.keys.clone();
        hashes.resize(self.count(), BlockHash::empty());
        for (i, h) in hashed {
            if i < hashes.len() {
                hashes[i] = h;
            }
        }
        let hashes = Arc::new(hashes);
        *known = Some(hashes.clone());
        Ok(hashes)
    }

    fn block(&self, i: usize) -> BoxFuture<'static, std::io::Result<Bytes>> {
        let (fs, dirty, ino, clean) = (self.fs.clone(), self.dirty.clone(), self.ino, self.block_ref(i));
        Box::pin(async move {
            if let Some(b) = dirty.read(i)? {
                return Ok(b);
            }
            match clean {
                // A hole: a store that asks for the empty block gets it
                // (sparse files never keep zeros anywhere).
                Some(r) if r.key == BlockHash::empty() => Ok(Bytes::new()),
                Some(r) => fs.fetch_block(ino, r).await.map_err(std::io::Error::from),
                None => Ok(Bytes::new()),
            }
        })
    }
}

/// Hashes dirty blocks on every core: (index, hash) in index order.
fn hash_blocks(dirty: &DirtySnapshot, indices: &[usize], alg: Algorithm) -> std::io::Result<Vec<(usize, BlockHash)>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let per = indices.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = indices
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&i| match dirty.known_hash(i) {
                            Some(h) => Ok((i, h)),
                            None => Ok((i, blocks::hash_block(alg, &dirty.read(i)?.unwrap_or_default()))),
                        })
                        .collect::<std::io::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(indices.len());
        for p in parts {
            all.extend(p.join().map_err(|_| std::io::Error::other("a hashing thread failed"))??);
        }
        Ok(all)
    })
}

/// How `send_version` failed: at a request that writes the version (its
/// outcome may be unknown), or before any did (the blocks the store lacked
/// could not be sent: the version is certainly not there).
enum Failed {
    Write(StoreError),
    BeforeWrite(StoreError),
}

impl Failed {
    fn into_inner(self) -> StoreError {
        match self {
            Failed::Write(e) | Failed::BeforeWrite(e) => e,
        }
    }
}
