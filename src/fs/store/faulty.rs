//! A store that fails on purpose, for tests: it wraps any store, counts the
//! calls of each operation, and does what it was told to the k-th call of
//! one: fail it with a chosen error (before the call reaches the store, or
//! after it did its work, as when a reply is lost), cut the bytes it reads,
//! or delay it.
//!
//! ```text
//! let store = FaultyStore::new(PithosStore::new(client));
//! store.inject(StoreOp::UploadBlock, 2, Fault::Fail(StoreError::Quota));
//! let fs = Arc::new(Fs::new(store, opts, cache));
//! // … the second block upload fails with Quota …
//! assert_eq!(fs.store().calls(StoreOp::ListPage), 1);
//! ```

use super::{
    Block, BlockSource, Commit, Committed, Container, Entry, Geometry, NewVersion, ObjectMeta, Opened, Sharing, Store,
    StoreError, StoreResult, Version,
};
use crate::blocks::BlockHash;
use crate::fs::scope::Scope;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The operations of a [`Store`], one per method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreOp {
    Geometry,
    ListContainers,
    ListPage,
    HoldsAnything,
    Stat,
    Open,
    ReadBlock,
    ReadRange,
    ReadObject,
    Commit,
    UploadBlock,
    WriteObject,
    SetMeta,
    Delete,
    Rename,
    Copy,
    FindByMeta,
    RenameFolder,
    CreateContainer,
    DeleteContainer,
    Quota,
}

impl StoreOp {
    pub const ALL: [StoreOp; 21] = [
        StoreOp::Geometry,
        StoreOp::ListContainers,
        StoreOp::ListPage,
        StoreOp::HoldsAnything,
        StoreOp::Stat,
        StoreOp::Open,
        StoreOp::ReadBlock,
        StoreOp::ReadRange,
        StoreOp::ReadObject,
        StoreOp::Commit,
        StoreOp::UploadBlock,
        StoreOp::WriteObject,
        StoreOp::SetMeta,
        StoreOp::Delete,
        StoreOp::Rename,
        StoreOp::Copy,
        StoreOp::FindByMeta,
        StoreOp::RenameFolder,
        StoreOp::CreateContainer,
        StoreOp::DeleteContainer,
        StoreOp::Quota,
    ];
}

/// What happens to the chosen call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Fails without reaching the store.
    Fail(StoreError),
    /// Reaches the store, which does its work; then fails (a lost reply).
    FailAfter(StoreError),
    /// A read answers only its first `n` bytes (other calls: no effect).
    Cut(usize),
    /// Waits this long before reaching the store.
    Delay(Duration),
}

#[derive(Default)]
struct Plan {
    calls: HashMap<StoreOp, u64>,
    /// (operation, call number from 1) → what happens to it.
    faults: HashMap<(StoreOp, u64), Fault>,
    /// From this call number on, every call of the operation fails.
    down: HashMap<StoreOp, (u64, StoreError)>,
    /// Random faults: each call fails with this probability.
    chaos: Option<(StdRng, f64)>,
    /// Every fault that met a call, in order.
    met: Vec<(StoreOp, Fault)>,
}

impl StoreOp {
    /// Whether the call writes something (a quota can refuse it).
    fn takes_room(self) -> bool {
        matches!(self, StoreOp::Commit | StoreOp::UploadBlock | StoreOp::WriteObject)
    }

    /// Whether the call answers bytes (a reply can be cut).
    fn reads_bytes(self) -> bool {
        matches!(self, StoreOp::ReadBlock | StoreOp::ReadRange | StoreOp::ReadObject)
    }
}

/// A random fault for a call of `op`: Unavailable before or after the call
/// reaches the store, Quota for calls that write, a cut reply for reads.
fn random_fault(rng: &mut StdRng, op: StoreOp) -> Fault {
    let unavailable = || StoreError::Unavailable("injected at random".into());
    let mut kinds = 2;
    if op.takes_room() {
        kinds += 1;
    }
    if op.reads_bytes() {
        kinds += 1;
    }
    match rng.random_range(0..kinds) {
        0 => Fault::Fail(unavailable()),
        1 => Fault::FailAfter(unavailable()),
        2 if op.takes_room() => Fault::Fail(StoreError::Quota),
        _ => Fault::Cut(rng.random_range(0..4096)),
    }
}

/// Any store, with counted calls and faults placed on purpose.
pub struct FaultyStore<S> {
    inner: S,
    /// Shared by the store's scoped views: one count and plan for them all.
    plan: Arc<Mutex<Plan>>,
}

impl<S: Store> FaultyStore<S> {
    pub fn new(inner: S) -> FaultyStore<S> {
        FaultyStore { inner, plan: Arc::new(Mutex::new(Plan::default())) }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `fault` happens to the `nth` call of `op` from now (1: the next one).
    pub fn inject(&self, op: StoreOp, nth: u64, fault: Fault) -> &Self {
        let mut plan = self.plan();
        let at = plan.calls.get(&op).copied().unwrap_or(0) + nth.max(1);
        plan.faults.insert((op, at), fault);
        self
    }

    /// Every call of `op` from the `nth` one on fails with `error` (a store
    /// that stays down), until [`FaultyStore::heal`].
    pub fn fail_from(&self, op: StoreOp, nth: u64, error: StoreError) -> &Self {
        let mut plan = self.plan();
        let at = plan.calls.get(&op).copied().unwrap_or(0) + nth.max(1);
        plan.down.insert(op, (at, error));
        self
    }

    /// Removes every fault not yet met (and stops chaos).
    pub fn heal(&self) {
        let mut plan = self.plan();
        plan.faults.clear();
        plan.down.clear();
        plan.chaos = None;
    }

    /// From now on each call fails with `probability`, drawn from a
    /// generator seeded with `seed`, with a fault the call can meet (see
    /// `random_fault`); faults placed on purpose come first. Until
    /// [`FaultyStore::calm`] or [`FaultyStore::heal`].
    pub fn chaos(&self, seed: u64, probability: f64) {
        self.plan().chaos = Some((StdRng::seed_from_u64(seed), probability));
    }

    /// Stops chaos (faults placed on purpose stay).
    pub fn calm(&self) {
        self.plan().chaos = None;
    }

    /// Every fault that met a call so far, in order.
    pub fn met(&self) -> Vec<(StoreOp, Fault)> {
        self.plan().met.clone()
    }

    /// Calls of `op` so far.
    pub fn calls(&self, op: StoreOp) -> u64 {
        self.plan().calls.get(&op).copied().unwrap_or(0)
    }

    /// Calls of every operation so far (those made at least once).
    pub fn counts(&self) -> Vec<(StoreOp, u64)> {
        let plan = self.plan();
        let mut all: Vec<(StoreOp, u64)> = plan.calls.iter().map(|(op, n)| (*op, *n)).collect();
        all.sort();
        all
    }

    /// Calls of every operation since `before` (a [`FaultyStore::counts`]).
    pub fn since(&self, before: &[(StoreOp, u64)]) -> Vec<(StoreOp, u64)> {
        self.counts()
            .into_iter()
            .map(|(op, n)| (op, n - before.iter().find(|(o, _)| *o == op).map_or(0, |(_, b)| *b)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Counts the call and says what happens to it.
    fn arrive(&self, op: StoreOp) -> Option<Fault> {
        let mut plan = self.plan();
        let n = plan.calls.entry(op).or_insert(0);
        *n += 1;
        let n = *n;
        let fault = match plan.down.get(&op) {
            Some((from, e)) if n >= *from => Some(Fault::Fail(e.clone())),
            _ => plan.faults.remove(&(op, n)),
        };
        let fault = fault.or_else(|| {
            let (rng, p) = plan.chaos.as_mut()?;
            let p = *p;
            rng.random_bool(p.clamp(0.0, 1.0)).then(|| random_fault(rng, op))
        });
        if let Some(f) = &fault {
            plan.met.push((op, f.clone()));
        }
        fault
    }

    /// Runs `call` under the fault planned for it.
    async fn run<T>(&self, op: StoreOp, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        self.run_cut(op, call, |t, _| t).await
    }

    /// Runs `call` under its fault; `cut` applies `Fault::Cut` to what it answers.
    async fn run_cut<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = StoreResult<T>>,
        cut: impl FnOnce(T, usize) -> T,
    ) -> StoreResult<T> {
        match self.arrive(op) {
            None => call.await,
            Some(Fault::Cut(n)) => call.await.map(|t| cut(t, n)),
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::FailAfter(e)) => {
                let _ = call.await;
                Err(e)
            }
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                call.await
            }
        }
    }
}

fn cut_bytes(b: Bytes, n: usize) -> Bytes {
    b.slice(..n.min(b.len()))
}

impl<S: Store> Store for FaultyStore<S> {
    async fn geometry(&self, container: &str) -> StoreResult<Geometry> {
        self.run(StoreOp::Geometry, self.inner.geometry(container)).await
    }

    fn listing_cap(&self) -> usize {
        self.inner.listing_cap()
    }

    fn max_object_name(&self) -> usize {
        self.inner.max_object_name()
    }

    async fn list_containers(&self, marker: Option<&str>, limit: usize) -> StoreResult<Vec<Container>> {
        self.run(StoreOp::ListContainers, self.inner.list_containers(marker, limit)).await
    }

    async fn list_page(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        self.run(StoreOp::ListPage, self.inner.list_page(container, prefix, marker, limit)).await
    }

    async fn holds_anything(&self, container: &str, prefix: &str) -> StoreResult<bool> {
        self.run(StoreOp::HoldsAnything, self.inner.holds_anything(container, prefix)).await
    }

    async fn stat(&self, container: &str, name: &str) -> StoreResult<ObjectMeta> {
        self.run(StoreOp::Stat, self.inner.stat(container, name)).await
    }

    async fn open(&self, container: &str, name: &str) -> StoreResult<Opened> {
        self.run(StoreOp::Open, self.inner.open(container, name)).await
    }

    async fn read_block(
        &self,
        container: &str,
        name: &str,
        version: &Version,
        i: usize,
        key: BlockHash,
    ) -> StoreResult<Block> {
        // A cut block keeps what the store said of the whole one: the
        // reader must notice by itself that bytes are missing.
        let call = self.inner.read_block(container, name, version, i, key);
        self.run_cut(StoreOp::ReadBlock, call, |b, n| Block { data: cut_bytes(b.data, n), checked: b.checked }).await
    }

    async fn read_range(
        &self,
        container: &str,
        name: &str,
        version: &Version,
        start: u64,
        end: u64,
    ) -> StoreResult<Bytes> {
        self.run_cut(StoreOp::ReadRange, self.inner.read_range(container, name, version, start, end), cut_bytes).await
    }

    async fn read_object(&self, container: &str, name: &str, max: u64) -> StoreResult<Bytes> {
        self.run_cut(StoreOp::ReadObject, self.inner.read_object(container, name, max), cut_bytes).await
    }

    async fn commit(
        &self,
        container: &str,
        name: &str,
        new: &NewVersion,
        blocks: Arc<dyn BlockSource>,
    ) -> StoreResult<Commit> {
        self.run(StoreOp::Commit, self.inner.commit(container, name, new, blocks)).await
    }

    /// Computed here, not a call to the store: no fault meets it (the
    /// blocks it reads are calls of their own).
    async fn content_id(&self, new: &NewVersion, blocks: Arc<dyn BlockSource>) -> Option<String> {
        self.inner.content_id(new, blocks).await
    }

    /// Computed here, not a call to the store: no fault meets it (the
    /// blocks it reads and the HEAD before it are calls of their own).
    async fn landed(&self, new: &NewVersion, blocks: Arc<dyn BlockSource>, now: &ObjectMeta) -> Option<Committed> {
        self.inner.landed(new, blocks, now).await
    }

    async fn upload_block(&self, container: &str, data: Bytes) -> StoreResult<BlockHash> {
        self.run(StoreOp::UploadBlock, self.inner.upload_block(container, data)).await
    }

    async fn write_object(
        &self,
        container: &str,
        name: &str,
        data: Bytes,
        content_type: &str,
        meta: &[(String, String)],
    ) -> StoreResult<()> {
        self.run(StoreOp::WriteObject, self.inner.write_object(container, name, data, content_type, meta)).await
    }

    async fn versions(&self, container: &str, name: &str) -> Option<StoreResult<Vec<(String, f64)>>> {
        let inner = self.inner.versions(container, name).await?;
        Some(self.run(StoreOp::Stat, async { inner }).await)
    }

    async fn set_public(&self, container: &str, name: &str, public: bool) -> Option<StoreResult<()>> {
        let inner = self.inner.set_public(container, name, public).await?;
        Some(self.run(StoreOp::SetMeta, async { inner }).await)
    }

    fn scoped(&self, scope: &Scope) -> Option<Self> {
        Some(FaultyStore { inner: self.inner.scoped(scope)?, plan: self.plan.clone() })
    }

    async fn sharers(&self) -> Option<StoreResult<Vec<String>>> {
        let inner = self.inner.sharers().await?;
        Some(self.run(StoreOp::ListContainers, async { inner }).await)
    }

    async fn user_names(&self, uuids: &[String]) -> StoreResult<std::collections::BTreeMap<String, String>> {
        self.inner.user_names(uuids).await
    }

    async fn user_uuids(&self, names: &[String]) -> StoreResult<std::collections::BTreeMap<String, String>> {
        self.inner.user_uuids(names).await
    }

    async fn sharing(&self, container: &str, name: &str) -> Option<StoreResult<Sharing>> {
        let inner = self.inner.sharing(container, name).await?;
        Some(self.run(StoreOp::Stat, async { inner }).await)
    }

    async fn set_sharing(&self, container: &str, name: &str, sharing: &Sharing) -> Option<StoreResult<()>> {
        let inner = self.inner.set_sharing(container, name, sharing).await?;
        Some(self.run(StoreOp::SetMeta, async { inner }).await)
    }

    async fn set_meta(&self, container: &str, name: &str, pairs: &[(String, String)]) -> StoreResult<()> {
        self.run(StoreOp::SetMeta, self.inner.set_meta(container, name, pairs)).await
    }

    async fn delete(&self, container: &str, name: &str) -> StoreResult<()> {
        self.run(StoreOp::Delete, self.inner.delete(container, name)).await
    }

    async fn rename(&self, from_container: &str, from: &str, to_container: &str, to: &str) -> StoreResult<()> {
        self.run(StoreOp::Rename, self.inner.rename(from_container, from, to_container, to)).await
    }

    async fn copy(
        &self,
        from_container: &str,
        from: &str,
        to_container: &str,
        to: &str,
        meta: &[(String, String)],
    ) -> StoreResult<()> {
        self.run(StoreOp::Copy, self.inner.copy(from_container, from, to_container, to, meta)).await
    }

    async fn find_by_meta(
        &self,
        container: &str,
        key: &str,
        value: &str,
        like: &ObjectMeta,
    ) -> StoreResult<Vec<ObjectMeta>> {
        self.run(StoreOp::FindByMeta, self.inner.find_by_meta(container, key, value, like)).await
    }

    async fn rename_folder(&self, from_container: &str, from: &str, to_container: &str, to: &str) -> StoreResult<()> {
        self.run(StoreOp::RenameFolder, self.inner.rename_folder(from_container, from, to_container, to)).await
    }

    async fn create_container(&self, name: &str) -> StoreResult<()> {
        self.run(StoreOp::CreateContainer, self.inner.create_container(name)).await
    }

    async fn delete_container(&self, name: &str) -> StoreResult<()> {
        self.run(StoreOp::DeleteContainer, self.inner.delete_container(name)).await
    }

    async fn quota(&self) -> StoreResult<(u64, u64)> {
        self.run(StoreOp::Quota, self.inner.quota()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of nothing: every call answers NotFound, so only the faults show.
    struct Nothing;

    impl Store for Nothing {
        async fn geometry(&self, _: &str) -> StoreResult<Geometry> {
            Ok(Geometry { block_size: 4096, content_hash: None, max_size: 1 << 20 })
        }
        fn listing_cap(&self) -> usize {
            10
        }
        async fn list_containers(&self, _: Option<&str>, _: usize) -> StoreResult<Vec<Container>> {
            Ok(Vec::new())
        }
        async fn list_page(&self, _: &str, _: &str, _: Option<&str>, _: usize) -> StoreResult<Vec<Entry>> {
            Ok(Vec::new())
        }
        async fn holds_anything(&self, _: &str, _: &str) -> StoreResult<bool> {
            Ok(false)
        }
        async fn stat(&self, _: &str, _: &str) -> StoreResult<ObjectMeta> {
            Err(StoreError::NotFound)
        }
        async fn open(&self, _: &str, _: &str) -> StoreResult<Opened> {
            Err(StoreError::NotFound)
        }
        async fn read_block(&self, _: &str, _: &str, _: &Version, _: usize, _: BlockHash) -> StoreResult<Block> {
            Ok(Block { data: Bytes::from_static(b"0123456789"), checked: true })
        }
        async fn read_range(&self, _: &str, _: &str, _: &Version, _: u64, _: u64) -> StoreResult<Bytes> {
            Ok(Bytes::from_static(b"0123456789"))
        }
        async fn read_object(&self, _: &str, _: &str, _: u64) -> StoreResult<Bytes> {
            Err(StoreError::NotFound)
        }
        async fn commit(&self, _: &str, _: &str, _: &NewVersion, _: Arc<dyn BlockSource>) -> StoreResult<Commit> {
            Err(StoreError::NotFound)
        }
        async fn content_id(&self, _: &NewVersion, _: Arc<dyn BlockSource>) -> Option<String> {
            None
        }
        async fn landed(&self, _: &NewVersion, _: Arc<dyn BlockSource>, _: &ObjectMeta) -> Option<Committed> {
            None
        }
        async fn upload_block(&self, _: &str, _: Bytes) -> StoreResult<BlockHash> {
            Ok(BlockHash::empty())
        }
        async fn write_object(&self, _: &str, _: &str, _: Bytes, _: &str, _: &[(String, String)]) -> StoreResult<()> {
            Ok(())
        }
        async fn set_meta(&self, _: &str, _: &str, _: &[(String, String)]) -> StoreResult<()> {
            Ok(())
        }
        async fn set_public(&self, _: &str, _: &str, _: bool) -> Option<StoreResult<()>> {
            None
        }
        async fn versions(&self, _: &str, _: &str) -> Option<StoreResult<Vec<(String, f64)>>> {
            None
        }
        fn scoped(&self, _: &Scope) -> Option<Self> {
            None
        }
        async fn delete(&self, _: &str, _: &str) -> StoreResult<()> {
            Ok(())
        }
        async fn rename(&self, _: &str, _: &str, _: &str, _: &str) -> StoreResult<()> {
            Ok(())
        }
        async fn copy(&self, _: &str, _: &str, _: &str, _: &str, _: &[(String, String)]) -> StoreResult<()> {
            Ok(())
        }
        async fn find_by_meta(&self, _: &str, _: &str, _: &str, _: &ObjectMeta) -> StoreResult<Vec<ObjectMeta>> {
            Ok(Vec::new())
        }
        async fn rename_folder(&self, _: &str, _: &str, _: &str, _: &str) -> StoreResult<()> {
            Ok(())
        }
        async fn create_container(&self, _: &str) -> StoreResult<()> {
            Ok(())
        }
        async fn delete_container(&self, _: &str) -> StoreResult<()> {
            Ok(())
        }
        async fn quota(&self) -> StoreResult<(u64, u64)> {
            Ok((0, 0))
        }
    }

    #[tokio::test]
    async fn faults_meet_the_call_they_name_and_calls_are_counted() {
        let s = FaultyStore::new(Nothing);
        s.inject(StoreOp::UploadBlock, 2, Fault::Fail(StoreError::Quota));
        assert_eq!(s.upload_block("c", Bytes::new()).await, Ok(BlockHash::empty()));
        assert_eq!(s.upload_block("c", Bytes::new()).await, Err(StoreError::Quota));
        assert_eq!(s.upload_block("c", Bytes::new()).await, Ok(BlockHash::empty()), "only the second");
        assert_eq!(s.calls(StoreOp::UploadBlock), 3);
        // Counted from now: the next read is cut.
        let v = Version { size: 10, block_size: 10, content_hash: None, pin: None, id: None, tag: None };
        s.inject(StoreOp::ReadRange, 1, Fault::Cut(4));
        assert_eq!(s.read_range("c", "o", &v, 0, 10).await.unwrap().as_ref(), b"0123");
        assert_eq!(s.read_range("c", "o", &v, 0, 10).await.unwrap().len(), 10);
        s.inject(StoreOp::ReadBlock, 1, Fault::Cut(3));
        assert_eq!(s.read_block("c", "o", &v, 0, BlockHash::empty()).await.unwrap().data.as_ref(), b"012");
        s.fail_from(StoreOp::Delete, 2, StoreError::Unavailable("down".into()));
        assert!(s.delete("c", "o").await.is_ok());
        assert!(s.delete("c", "o").await.is_err());
        assert!(s.delete("c", "o").await.is_err(), "stays down");
        s.heal();
        assert!(s.delete("c", "o").await.is_ok());
        let before = s.counts();
        s.stat("c", "o").await.unwrap_err();
        assert_eq!(s.since(&before), vec![(StoreOp::Stat, 1)]);
    }

    #[tokio::test]
    async fn chaos_fails_calls_at_random_from_its_seed_and_logs_them() {
        let v = Version { size: 10, block_size: 10, content_hash: None, pin: None, id: None, tag: None };
        // What 200 calls meet, for a seed and a probability.
        async fn run(seed: u64, p: f64, v: &Version) -> Vec<(StoreOp, Fault)> {
            let s = FaultyStore::new(Nothing);
            s.chaos(seed, p);
            for i in 0..100 {
                let _ = s.upload_block("c", Bytes::new()).await;
                let _ = s.read_range("c", "o", v, 0, 10).await;
                if i == 49 {
                    s.calm();
                    assert!(s.delete("c", "o").await.is_ok(), "calm: no more faults");
                    s.chaos(seed + 1, p);
                }
            }
            s.met()
        }
        assert!(run(1, 0.0, &v).await.is_empty());
        assert_eq!(run(1, 1.0, &v).await.len(), 200, "every call");
        let some = run(7, 0.3, &v).await;
        assert_eq!(some, run(7, 0.3, &v).await, "the same seed, the same faults");
        assert!((30..=90).contains(&some.len()), "about 30% of 200: {}", some.len());
        // Each kind a call can meet, and only those: Quota for uploads, cuts for reads.
        let kinds = |op: StoreOp| {
            let mut k: Vec<&str> = some
                .iter()
                .filter(|(o, _)| *o == op)
                .map(|(_, f)| match f {
                    Fault::Fail(StoreError::Quota) => "quota",
                    Fault::Fail(_) => "before",
                    Fault::FailAfter(_) => "after",
                    Fault::Cut(_) => "cut",
                    Fault::Delay(_) => "delay",
                })
                .collect();
            k.sort();
            k.dedup();
            k
        };
        assert_eq!(kinds(StoreOp::UploadBlock), ["after", "before", "quota"]);
        assert_eq!(kinds(StoreOp::ReadRange), ["after", "before", "cut"]);
    }
}
