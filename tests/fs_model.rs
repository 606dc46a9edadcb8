//! The model-based property test: random sequences of file calls against
//! `Fs` (driven in process, `tests/common/fs_driver.rs`) over a
//! `FaultyStore` that fails calls at random, compared with an in-memory
//! model of what must be true.
//!
//! A case is a list of steps on a few names in two folders (`a`, `b`, `c`,
//! `d/a`, `d/b`): create (`O_CREAT|O_TRUNC`), open an existing file (read
//! only or read-write), write (offset, length, content), read, truncate (by
//! path, or through an open handle: grow and shrink), rename (over an
//! existing file too), unlink (also of an open file), stat, fsync, close,
//! reopen, drop_caches. A step may run under chaos: each store call it makes
//! fails with probability `P_FAULT` (Unavailable before or after the call
//! reaches the store, Quota on calls that write, a read cut short), from
//! the step's own seed.
//!
//! After every step the test checks:
//! - the call's answer: what the model says (a read returns what the model
//!   holds for that handle; a commit over a changed object is a conflict
//!   copy and `EIO`), or, only when a fault met one of the step's store
//!   calls, `EIO` (`EDQUOT` when a Quota fault met it);
//! - the server, read through the client library (not through `Fs`):
//!   exactly the names and contents the model holds, no other object but
//!   conflict copies, and a new conflict copy only where the model made one
//!   (or a fault may have), holding the content that was being committed.
//!   After a failed call the server holds its state before or after the
//!   call, never a mix, and the model adopts whichever it is.
//!
//! At the end, with faults off, every handle is closed, and every name the
//! model holds reads back its content through a fresh `Fs` (a remount) and
//! through the client library.
//!
//! Cases: `PITHOSFS_MODEL_CASES` (or proptest's `PROPTEST_CASES`); the seed
//! is printed and taken from `PITHOSFS_MODEL_SEED` (hex) to run a case
//! again. A failure prints the sequence proptest shrank it to.

mod common;

use common::blocks::random_bytes;
use common::fs_driver::*;
use common::TestCloud;
use pithosfs::blocks::{self, Algorithm};
use pithosfs::clients::storage::{is_directory_type, ListOptions, Listed, ObjectStorage, StorageClient};
use pithosfs::fs::errno::Errno;
use pithosfs::fs::store::{Fault, PithosStore, Store, StoreError, SwiftStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// the steps
// ---------------------------------------------------------------------------

/// The names a case works on: three in the root, two in the folder `d`.
const NAMES: [&str; 5] = ["a", "b", "c", "d/a", "d/b"];

/// The local cloud's block size here: files of a few blocks stay small.
const BLOCK: u32 = 4096;

/// Open handles at most (a create or open past them is skipped).
const MAX_HANDLES: usize = 4;

/// Steps in a case at most.
const MAX_STEPS: usize = 24;

/// Each store call of a step under chaos fails with this probability.
const P_FAULT: f64 = 0.3;

/// Cases by default (`PITHOSFS_MODEL_CASES` or `PROPTEST_CASES` override).
const CASES: u32 = 256;
const SWIFT_CASES: u32 = 16;

#[derive(Debug, Clone)]
enum Act {
    /// `open(name, O_CREAT|O_TRUNC|O_RDWR)`: a new handle.
    Create(usize),
    /// `open(name, write ? O_RDWR : O_RDONLY)` of an existing file.
    Open(usize, bool),
    /// `pwrite` through open handle `h` (an index among those open).
    Write {
        h: usize,
        offset: u32,
        len: u32,
        seed: u8,
    },
    /// `pread` through open handle `h`.
    Read {
        h: usize,
        offset: u32,
        len: u32,
    },
    /// `ftruncate` of open handle `h`.
    Ftruncate {
        h: usize,
        size: u32,
    },
    /// `truncate` by path.
    Truncate {
        name: usize,
        size: u32,
    },
    Rename(usize, usize),
    Unlink(usize),
    /// `stat`: the size (checked when no handle is open on the file).
    Stat(usize),
    Fsync(usize),
    Close(usize),
    /// close, then open the same path again read-write.
    Reopen(usize),
    /// `echo 2 > /proc/sys/vm/drop_caches`: the kernel forgets its entries.
    DropCaches,
}

#[derive(Debug, Clone)]
struct Step {
    act: Act,
    /// Chaos during this step, from this seed (None: no faults).
    faults: Option<u64>,
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Act::Create(n) => write!(f, "create {}", NAMES[*n]),
            Act::Open(n, w) => write!(f, "open {} {}", NAMES[*n], if *w { "rw" } else { "ro" }),
            Act::Write { h, offset, len, seed } => write!(f, "write #{h} at {offset}, {len} bytes (seed {seed})"),
            Act::Read { h, offset, len } => write!(f, "read #{h} at {offset}, {len} bytes"),
            Act::Ftruncate { h, size } => write!(f, "ftruncate #{h} to {size}"),
            Act::Truncate { name, size } => write!(f, "truncate {} to {size}", NAMES[*name]),
            Act::Rename(a, b) => write!(f, "rename {} {}", NAMES[*a], NAMES[*b]),
            Act::Unlink(n) => write!(f, "unlink {}", NAMES[*n]),
            Act::Stat(n) => write!(f, "stat {}", NAMES[*n]),
            Act::Fsync(h) => write!(f, "fsync #{h}"),
            Act::Close(h) => write!(f, "close #{h}"),
            Act::Reopen(h) => write!(f, "reopen #{h}"),
            Act::DropCaches => write!(f, "drop_caches"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.faults {
            Some(seed) => write!(f, "{} [faults, seed {seed}]", self.act),
            None => write!(f, "{}", self.act),
        }
    }
}

/// A case as proptest prints it: one step a line.
#[derive(Clone)]
struct Case(Vec<Step>);

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[")?;
        for (i, s) in self.0.iter().enumerate() {
            writeln!(f, "  {i:2}: {s}")?;
        }
        write!(f, "]")
    }
}

fn act() -> impl Strategy<Value = Act> {
    let name = 0..NAMES.len();
    let h = 0..MAX_HANDLES;
    let offset = prop_oneof![0..64u32, 0..3 * BLOCK, BLOCK - 40..BLOCK + 40];
    let len = prop_oneof![1..64u32, 1..2 * BLOCK];
    let size = prop_oneof![Just(0u32), 0..3 * BLOCK, BLOCK - 40..BLOCK + 40];
    prop_oneof![
        4 => name.clone().prop_map(Act::Create),
        3 => (name.clone(), any::<bool>()).prop_map(|(n, w)| Act::Open(n, w)),
        5 => (h.clone(), offset.clone(), len.clone(), any::<u8>())
            .prop_map(|(h, offset, len, seed)| Act::Write { h, offset, len, seed }),
        3 => (h.clone(), offset, len).prop_map(|(h, offset, len)| Act::Read { h, offset, len }),
        1 => (h.clone(), size.clone()).prop_map(|(h, size)| Act::Ftruncate { h, size }),
        1 => (name.clone(), size).prop_map(|(name, size)| Act::Truncate { name, size }),
        2 => (name.clone(), name.clone()).prop_filter("two names", |(a, b)| a != b).prop_map(|(a, b)| Act::Rename(a, b)),
        1 => name.clone().prop_map(Act::Unlink),
        1 => name.prop_map(Act::Stat),
        2 => h.clone().prop_map(Act::Fsync),
        3 => h.clone().prop_map(Act::Close),
        1 => h.prop_map(Act::Reopen),
        1 => Just(Act::DropCaches),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let step = (act(), prop::option::weighted(0.35, any::<u64>())).prop_map(|(act, faults)| Step { act, faults });
    prop::collection::vec(step, 1..MAX_STEPS).prop_map(Case)
}

// ---------------------------------------------------------------------------
// the model
// ---------------------------------------------------------------------------

/// A file as the filesystem knows it (a node): where it commits, whether a
/// name still leads to it, and what is not on the server yet.
#[derive(Debug, Clone)]
struct Node {
    path: String,
    /// Still named (not unlinked, not replaced by a rename).
    bound: bool,
    /// Created here, never committed.
    unsent: bool,
    /// Written or truncated through a handle since the last commit.
    pending: bool,
    open: u32,
}

/// An open handle: the content it shows, and the version it commits over.
#[derive(Debug, Clone)]
struct Handle {
    /// The handle's number in the case's output (#0, #1… in open order).
    id: usize,
    fh: u64,
    ino: u64,
    node: usize,
    /// The content it was opened at or last committed (None: a new file).
    base: Option<Vec<u8>>,
    /// The base is a commit whose reply was lost but which landed: the
    /// filesystem finds it again by a HEAD, by hash and size (a version of
    /// the same Pithos hash and another size is someone else's).
    base_lost: bool,
    content: Vec<u8>,
    /// Changes to commit; None: unknown (a conflict copy whose reply was lost).
    changed: Option<bool>,
    writable: bool,
}

type Objects = BTreeMap<String, Vec<u8>>;

#[derive(Default)]
struct Model {
    /// What the server holds at each name (folders and conflict copies aside).
    server: Objects,
    nodes: Vec<Node>,
    /// Node of each name, while something local is known of it.
    bound: BTreeMap<String, usize>,
    /// Open handles, in open order.
    handles: Vec<Handle>,
    opened: usize,
}

impl Model {
    /// Whether `path` shows in its folder: on the server, or a file open
    /// here with content the server does not have yet.
    fn visible(&self, path: &str) -> bool {
        self.server.contains_key(path)
            || self.bound.get(path).is_some_and(|&n| {
                let n = &self.nodes[n];
                n.open > 0 && (n.unsent || n.pending)
            })
    }

    /// The node `path` is bound to, made if none is.
    fn node_at(&mut self, path: &str) -> usize {
        if let Some(&n) = self.bound.get(path) {
            return n;
        }
        self.nodes.push(Node { path: path.to_string(), bound: true, unsent: false, pending: false, open: 0 });
        let n = self.nodes.len() - 1;
        self.bound.insert(path.to_string(), n);
        n
    }

    /// Unbinds `path` (unlink, or the target of a rename).
    fn unbind(&mut self, path: &str) {
        if let Some(n) = self.bound.remove(path) {
            self.nodes[n].bound = false;
        }
    }

    fn pending_new(&self, node: usize) -> bool {
        let n = &self.nodes[node];
        n.open > 0 && n.unsent
    }

    fn handle(&self, h: usize) -> Option<usize> {
        (!self.handles.is_empty()).then(|| h % self.handles.len())
    }
}

// ---------------------------------------------------------------------------
// a world: a store, its server, and a fresh container per case
// ---------------------------------------------------------------------------

/// Where cases run: how to make a fresh container, a client on it and a
/// store over that client.
trait World: Sync {
    type Client: ObjectStorage + Clone + Send + Sync + 'static;
    type Store: Store + 'static;
    fn name(&self) -> &'static str;
    /// A fresh container for case `n`: a client on it, and its name.
    fn container(&self, n: u64) -> impl Future<Output = (Self::Client, String)> + Send;
    fn store(&self, client: Self::Client) -> Self::Store;
    /// What the store's commit condition compares of a version: on
    /// Pithos its Merkle hash (blind to trailing zeros in a block), on Swift
    /// its MD5 (the content, in effect).
    fn tag(&self, content: &[u8]) -> Vec<u8>;
    /// Removes a case's container (where the server outlives the test).
    fn remove(&self, client: &Self::Client) -> impl Future<Output = ()> + Send;
}

struct Local {
    tc: TestCloud,
}

impl World for Local {
    type Client = pithosfs::clients::pithos::PithosClient;
    type Store = PithosStore;
    fn name(&self) -> &'static str {
        "Pithos (the local cloud)"
    }
    async fn container(&self, n: u64) -> (Self::Client, String) {
        let name = format!("model{n}");
        let c = alice_at(&self.tc, &name);
        c.create_container(&[]).await.unwrap();
        (c, name)
    }
    fn store(&self, client: Self::Client) -> PithosStore {
        PithosStore::new(client)
    }
    fn tag(&self, content: &[u8]) -> Vec<u8> {
        let hashes = blocks::hashmap(Algorithm::Sha256, BLOCK as u64, content);
        blocks::merkle(Algorithm::Sha256, &hashes).0.to_vec()
    }
    async fn remove(&self, _: &Self::Client) {}
}

struct Swift {
    auth: String,
    run: String,
}

impl World for Swift {
    type Client = StorageClient;
    type Store = SwiftStore;
    fn name(&self) -> &'static str {
        "Swift (a real OpenStack Swift)"
    }
    async fn container(&self, n: u64) -> (StorageClient, String) {
        let name = format!("pithosfs-model-{}-{n}", self.run);
        let client = StorageClient::swift_v1_auth(&self.auth, "test:tester", "testing", &name).await.unwrap();
        client.create_container(&[]).await.unwrap();
        (client, name)
    }
    fn store(&self, client: StorageClient) -> SwiftStore {
        SwiftStore::new(client)
    }
    fn tag(&self, content: &[u8]) -> Vec<u8> {
        content.to_vec()
    }
    async fn remove(&self, client: &StorageClient) {
        SwiftBox { client: client.clone() }.remove().await
    }
}

/// A filesystem over `client`'s container whose every lookup and stat asks
/// the store (TTLs of zero), so that what it shows is the server now.
fn driver<W: World>(world: &W, client: &W::Client, container: &str) -> Driver<W::Store> {
    Driver::new(world.store(client.clone()), container, |o| {
        o.attr_ttl = Duration::ZERO;
        o.dir_ttl = Duration::ZERO;
    })
}

/// What the server holds: files by name, and conflict copies by name.
async fn server<C: ObjectStorage>(client: &C) -> std::result::Result<(Objects, Objects), String> {
    let listed = client.list_objects(&ListOptions::default()).await.map_err(|e| format!("listing: {e}"))?;
    let (mut files, mut copies) = (Objects::new(), Objects::new());
    for l in listed {
        let Listed::Object(o) = l else { continue };
        if is_directory_type(&o.content_type) {
            continue;
        }
        let (_, data) =
            client.get_object(&o.name, &Default::default()).await.map_err(|e| format!("GET {}: {e}", o.name))?;
        if o.name.contains(".conflict-") {
            copies.insert(o.name, data.to_vec());
        } else {
            files.insert(o.name, data.to_vec());
        }
    }
    Ok((files, copies))
}

/// The conflict copy of `path`: `path.conflict-<time>`.
fn is_copy_of(copy: &str, path: &str) -> bool {
    copy.strip_prefix(path).is_some_and(|rest| rest.starts_with(".conflict-"))
}

fn show(o: &Option<Vec<u8>>) -> String {
    match o {
        None => "nothing".into(),
        Some(v) => format!("{} bytes {:02x?}…", v.len(), &v[..v.len().min(6)]),
    }
}

// ---------------------------------------------------------------------------
// a case, played
// ---------------------------------------------------------------------------

/// What the step may have done, beside the model's prediction: commits of
/// these contents may have left conflict copies of these paths.
#[derive(Default)]
struct Allowance {
    copies: Vec<(String, Vec<u8>)>,
    /// A copy that must be there after the step (a conflict without fault).
    must_copy: Option<(String, Vec<u8>)>,
}

struct Play<'a, W: World> {
    world: &'a W,
    client: W::Client,
    container: String,
    d: Driver<W::Store>,
    m: Model,
    copies: Objects,
    /// Each step as played, for the report of a failing case.
    trace: Vec<String>,
    /// Mixed into every content written (the case's number).
    salt: u64,
    stats: std::cell::Cell<Stats>,
}

type Check = std::result::Result<(), String>;

/// What a run did, for its report.
#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    steps: u64,
    /// Steps a fault met (at least one store call failed or was cut).
    faulted: u64,
    faults: u64,
    /// Calls that answered an errno only a fault allows.
    excused: u64,
    /// Conflict copies the model foresaw (without a fault).
    conflicts: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.steps += o.steps;
        self.faulted += o.faulted;
        self.faults += o.faults;
        self.excused += o.excused;
        self.conflicts += o.conflicts;
    }
}

impl<'a, W: World> Play<'a, W> {
    /// The answer a call gave, against the one the model expects: equal, or
    /// (only when a fault met the step) the errno the fault allows.
    fn allowed(&self, got: &Result<()>, want: &Result<()>, faulted: bool, quota: bool) -> Check {
        if got == want {
            return Ok(());
        }
        match got {
            Err(e) if faulted && (*e == Errno::IO || (quota && *e == Errno::DQUOT)) => {
                self.stats.set(Stats { excused: self.stats.get().excused + 1, ..self.stats.get() });
                Ok(())
            }
            _ => Err(format!("answered {got:?}, the model says {want:?}{}", if faulted { " (or EIO)" } else { "" })),
        }
    }

    /// Opens `path` through the driver: (ino, fh).
    async fn open_path(&self, path: &str, write: bool, truncate: bool) -> Result<(u64, u64)> {
        let ino = self.d.lookup(path).await?;
        Ok((ino, self.d.fs.open(ino, write, truncate).await?.0))
    }

    /// The model's open of a visible `path`: the new handle, or the errno.
    fn model_open(&mut self, path: &str, write: bool, truncate: bool) -> std::result::Result<Handle, Errno> {
        let node = self.m.node_at(path);
        let (base, content, changed) = match self.m.server.get(path) {
            Some(c) => (Some(c.clone()), c.clone(), false),
            // Created by another handle, not committed: empty, unchanged.
            None if self.m.pending_new(node) => (None, Vec::new(), false),
            None => return Err(Errno::NOENT),
        };
        let mut h = Handle {
            id: 0,
            fh: 0,
            ino: 0,
            node,
            base,
            base_lost: false,
            content,
            changed: Some(changed),
            writable: write,
        };
        if truncate && write && !h.content.is_empty() {
            h.content.clear();
            h.changed = Some(true);
        }
        if h.base.is_some() {
            // Opened from the server: whatever was made here is there now.
            self.m.nodes[node].unsent = false;
        }
        Ok(h)
    }

    fn add_handle(&mut self, mut h: Handle, ino: u64, fh: u64) {
        h.id = self.m.opened;
        self.m.opened += 1;
        h.ino = ino;
        h.fh = fh;
        let n = &mut self.m.nodes[h.node];
        n.open += 1;
        if h.changed == Some(true) {
            n.pending = true;
        }
        self.m.handles.push(h);
    }

    /// Commits handle `i` through `call` (flush or release) and checks it
    /// against the model; updates the model from what happened.
    async fn commit(&mut self, i: usize, faulted: bool, quota: bool, call: Result<()>, allow: &mut Allowance) -> Check {
        let h = self.m.handles[i].clone();
        let node = self.m.nodes[h.node].clone();
        let cur = self.m.server.get(&node.path).cloned();
        let h_changed = h.changed;
        if h_changed == Some(false) || (!node.bound && h_changed.is_some()) {
            // Nothing to commit; or a file unlinked (or replaced) while open,
            // whose content goes with its last close, as POSIX says.
            self.allowed(&call, &Ok(()), faulted, quota)?;
            if !node.bound {
                self.m.handles[i].changed = Some(false);
            }
            return Ok(());
        }
        // The store's condition: the object is still the version opened
        // (as its tag tells), or already what is committed (a lost reply).
        let tag = |c: &Option<Vec<u8>>| c.as_ref().map(|c| self.world.tag(c));
        let same_size = |c: &Option<Vec<u8>>| c.as_ref().map(Vec::len) == h.base.as_ref().map(Vec::len);
        let lands =
            (tag(&cur) == tag(&h.base) && (!h.base_lost || same_size(&cur))) || cur.as_ref() == Some(&h.content);
        if h_changed.is_none() {
            // Either nothing to commit (Ok), or a conflict again (EIO, a copy).
            allow.copies.push((node.path.clone(), h.content.clone()));
            if call.is_ok() {
                self.m.handles[i].changed = Some(false);
                return Ok(());
            }
            self.allowed(&call, &Err(Errno::IO), faulted, quota)?;
            return self.after_failed_commit(i, &node.path, &cur, &h, true).await;
        }
        if lands {
            match &call {
                Ok(()) => {
                    self.landed(i);
                    Ok(())
                }
                Err(_) => {
                    self.allowed(&call, &Ok(()), faulted, quota)?;
                    // A conflict copy may have been made if the check of
                    // what landed met a fault.
                    allow.copies.push((node.path.clone(), h.content.clone()));
                    self.after_failed_commit(i, &node.path, &cur, &h, false).await
                }
            }
        } else {
            // Someone (this mount, through another handle or name) changed
            // the object since this handle opened it: a conflict copy, EIO.
            self.allowed(&call, &Err(Errno::IO), faulted, quota)?;
            allow.copies.push((node.path.clone(), h.content.clone()));
            if !faulted {
                allow.must_copy = Some((node.path.clone(), h.content.clone()));
                self.m.handles[i].changed = Some(false);
                return Ok(());
            }
            // With a fault, the copy may or may not have been made.
            self.m.handles[i].changed = None;
            Ok(())
        }
    }

    /// The commit of handle `i` went through.
    fn landed(&mut self, i: usize) {
        let h = &mut self.m.handles[i];
        h.base = Some(h.content.clone());
        h.base_lost = false;
        h.changed = Some(false);
        let (node, content) = (h.node, h.content.clone());
        let n = &mut self.m.nodes[node];
        n.unsent = false;
        n.pending = false;
        self.m.server.insert(n.path.clone(), content);
    }

    /// A commit failed after a fault: the server holds the old content at
    /// `path` or the new one, whole; the model adopts which.
    async fn after_failed_commit(
        &mut self,
        i: usize,
        path: &str,
        cur: &Option<Vec<u8>>,
        h: &Handle,
        conflict: bool,
    ) -> Check {
        let (now, _) = server(&self.client).await?;
        let there = now.get(path).cloned();
        if there == *cur {
            if conflict {
                self.m.handles[i].changed = None;
            }
            return Ok(());
        }
        if there.as_ref() == Some(&h.content) && !conflict {
            // It landed; the handle does not know (its next commit finds it,
            // by a HEAD, and replaces it).
            self.m.server.insert(path.to_string(), h.content.clone());
            self.m.handles[i].base = Some(h.content.clone());
            self.m.handles[i].base_lost = true;
            return Ok(());
        }
        Err(format!(
            "after a failed commit {path} holds {}: neither the old ({}) nor the new ({})",
            show(&there),
            show(cur),
            show(&Some(h.content.clone()))
        ))
    }

    fn close_model(&mut self, i: usize) {
        let h = self.m.handles.remove(i);
        let n = &mut self.m.nodes[h.node];
        n.open -= 1;
        if n.open == 0 {
            // What was not committed went with the last handle.
            n.unsent = false;
            n.pending = false;
        }
        if n.open == 0 && n.bound {
            // Nothing local is known of it any more.
            let path = n.path.clone();
            if self.m.bound.get(&path) == Some(&h.node) {
                self.m.bound.remove(&path);
            }
        }
    }

    /// Plays one step: the call through `Fs`, under chaos if the step says
    /// so, then the checks.
    async fn step(&mut self, step: &Step) -> Check {
        let store = self.d.store();
        let met = store.met().len();
        let before_server = self.m.server.clone();
        let what = self.describe(&step.act);
        if let Some(seed) = step.faults {
            store.chaos(seed, P_FAULT);
        }
        let mut allow = Allowance::default();
        let result = self.act(&step.act, met, &mut allow).await;
        let (faulted, _) = self.faults_since(met);
        let all = self.d.store().met();
        let faults: Vec<String> = all[met.min(all.len())..].iter().map(|(op, f)| format!("{op:?} {f:?}")).collect();
        let result = match result {
            Ok(()) => self.check_server(&before_server, faulted, &allow).await,
            e => e,
        };
        let mut stats = self.stats.get();
        stats.steps += 1;
        stats.faulted += faulted as u64;
        stats.faults += faults.len() as u64;
        stats.conflicts += (allow.must_copy.is_some() && result.is_ok()) as u64;
        self.stats.set(stats);
        let faults = if faults.is_empty() { String::new() } else { format!(" [faults met: {}]", faults.join(", ")) };
        let outcome = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("FAILS: {e}"),
        };
        self.trace.push(format!("{what}{faults} → {outcome}"));
        result
    }

    /// A step as played: the handle it picked (its number and path).
    fn describe(&self, act: &Act) -> String {
        let pick = |h: usize| match self.m.handle(h) {
            Some(i) => {
                let hm = &self.m.handles[i];
                let n = &self.m.nodes[hm.node];
                let rw = if hm.writable { "rw" } else { "ro" };
                format!("#{} ({} {rw}{})", hm.id, n.path, if n.bound { "" } else { ", unlinked" })
            }
            None => "(no handle open: skipped)".to_string(),
        };
        match act {
            Act::Write { h, offset, len, .. } => format!("write {} at {offset}, {len} bytes", pick(*h)),
            Act::Read { h, offset, len } => format!("read {} at {offset}, {len} bytes", pick(*h)),
            Act::Ftruncate { h, size } => format!("ftruncate {} to {size}", pick(*h)),
            Act::Fsync(h) => format!("fsync {}", pick(*h)),
            Act::Close(h) => format!("close {}", pick(*h)),
            Act::Reopen(h) => format!("reopen {}", pick(*h)),
            Act::Create(_) | Act::Open(..) if self.m.handles.len() >= MAX_HANDLES => format!("{act} (skipped)"),
            Act::Create(_) | Act::Open(..) => format!("{act} → #{}", self.m.opened),
            _ => act.to_string(),
        }
    }

    /// Ends the call's chaos: whether a fault met a store call since `met`
    /// faults, and whether a Quota one did.
    fn faults_since(&self, met: usize) -> (bool, bool) {
        self.d.store().calm();
        let all = self.d.store().met();
        let new = &all[met.min(all.len())..];
        let quota = new.iter().any(|(_, f)| matches!(f, Fault::Fail(StoreError::Quota)));
        (!new.is_empty(), quota)
    }

    async fn act(&mut self, act: &Act, met: usize, allow: &mut Allowance) -> Check {
        match act.clone() {
            Act::Create(n) | Act::Open(n, _) => {
                if self.m.handles.len() >= MAX_HANDLES {
                    return Ok(());
                }
                let path = NAMES[n];
                let (write, truncate) = match act {
                    Act::Open(_, w) => (*w, false),
                    _ => (true, true),
                };
                let exists = self.m.visible(path);
                let got = if exists || !truncate {
                    self.open_path(path, write, truncate).await
                } else {
                    match self.d.lookup(path).await {
                        Ok(_) => Err(Errno::EXIST), // the model says it is not there
                        Err(Errno::NOENT) => match self.d.parent_of(path).await {
                            Ok((parent, name)) => {
                                self.d.fs.create(parent, &name, 0o644, 0, 0).await.map(|(ino, fh, _)| (ino, fh))
                            }
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    }
                };
                let (faulted, quota) = self.faults_since(met);
                let want = if !exists {
                    if truncate {
                        let node = self.m.node_at(path);
                        Ok(Handle {
                            id: 0,
                            fh: 0,
                            ino: 0,
                            node,
                            base: None,
                            base_lost: false,
                            content: Vec::new(),
                            changed: Some(true),
                            writable: true,
                        })
                    } else {
                        Err(Errno::NOENT)
                    }
                } else {
                    self.model_open(path, write, truncate)
                };
                match (got, want) {
                    (Ok((ino, fh)), Ok(h)) => {
                        if !exists {
                            self.m.nodes[h.node].unsent = true;
                        }
                        self.add_handle(h, ino, fh);
                        Ok(())
                    }
                    (got, want) => {
                        let (got, want) = (got.map(drop), want.map(drop));
                        if let Ok(()) = got {
                            return Err(format!("{act}: opened, the model says {want:?}"));
                        }
                        self.allowed(&got, &want, faulted, quota)
                    }
                }
            }
            Act::Write { h, offset, len, seed } => {
                let Some(i) = self.m.handle(h) else { return Ok(()) };
                // Each case writes its own bytes: blocks a case before it
                // left on the server (blocks are shared by the account)
                // would spare uploads, and so change which call a fault meets.
                let data = random_bytes(len as usize, self.salt.wrapping_add(seed as u64 + 1));
                let fh = self.m.handles[i].fh;
                let got = self.d.fs.write(fh, offset as u64, &data).await;
                let (faulted, quota) = self.faults_since(met);
                let hm = &mut self.m.handles[i];
                if !hm.writable {
                    return self.allowed(&got.map(drop), &Err(Errno::BADF), false, false);
                }
                let before = hm.content.clone();
                let end = offset as usize + data.len();
                if hm.content.len() < end {
                    hm.content.resize(end, 0);
                }
                hm.content[offset as usize..end].copy_from_slice(&data);
                let after = hm.content.clone();
                match got {
                    Ok(n) if n as usize == data.len() => {
                        hm.changed = Some(true);
                        let node = hm.node;
                        self.m.nodes[node].pending = true;
                        Ok(())
                    }
                    Ok(n) => Err(format!("a short write: {n} of {} bytes", data.len())),
                    Err(e) => {
                        self.allowed(&Err(e), &Ok(()), faulted, quota)?;
                        // A failed write may have changed some of its blocks:
                        // each block is as before or as written.
                        self.adopt_partial_write(i, &before, &after).await
                    }
                }
            }
            Act::Read { h, offset, len } => {
                let Some(i) = self.m.handle(h) else { return Ok(()) };
                let hm = &self.m.handles[i];
                let got = self.d.fs.read(hm.fh, offset as u64, len).await;
                let (faulted, quota) = self.faults_since(met);
                let c = &hm.content;
                let want = &c[(offset as usize).min(c.len())..(offset as usize + len as usize).min(c.len())];
                match got {
                    Ok(data) if data[..] == *want => Ok(()),
                    Ok(data) => Err(format!(
                        "read #{} at {offset} gave {} bytes, not the {} the model holds{}",
                        hm.id,
                        data.len(),
                        want.len(),
                        first_difference(&data, want)
                    )),
                    Err(e) => self.allowed(&Err(e), &Ok(()), faulted, quota),
                }
            }
            Act::Ftruncate { h, size } => {
                let Some(i) = self.m.handle(h) else { return Ok(()) };
                if !self.m.handles[i].writable {
                    return Ok(()); // the kernel refuses it (EINVAL)
                }
                let (ino, fh) = (self.m.handles[i].ino, self.m.handles[i].fh);
                let got = self
                    .d
                    .fs
                    .setattr(
                        ino,
                        None,
                        None,
                        None,
                        Some(size as u64),
                        pithosfs::fs::metadata::Times::default(),
                        Some(fh),
                    )
                    .await;
                let (faulted, quota) = self.faults_since(met);
                match got {
                    Ok(_) => {
                        let hm = &mut self.m.handles[i];
                        if hm.content.len() != size as usize {
                            hm.content.resize(size as usize, 0);
                            hm.changed = Some(true);
                        }
                        let node = hm.node;
                        self.m.nodes[node].pending = true;
                        Ok(())
                    }
                    Err(e) => self.allowed(&Err(e), &Ok(()), faulted, quota),
                }
            }
            Act::Truncate { name, size } => {
                let path = NAMES[name];
                let exists = self.m.visible(path);
                let got = match self.d.lookup(path).await {
                    Ok(ino) => self
                        .d
                        .fs
                        .setattr(
                            ino,
                            None,
                            None,
                            None,
                            Some(size as u64),
                            pithosfs::fs::metadata::Times::default(),
                            None,
                        )
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                };
                let (faulted, quota) = self.faults_since(met);
                if !exists {
                    return self.allowed(&got, &Err(Errno::NOENT), faulted, quota);
                }
                // A handle of its own: opened, cut, committed, closed.
                let mut h = match self.model_open(path, true, false) {
                    Ok(h) => h,
                    Err(e) => return self.allowed(&got, &Err(e), faulted, quota),
                };
                if got.is_err() && self.m.server == server(&self.client).await?.0 {
                    // Failed before its commit changed anything (or the commit
                    // failed and nothing landed).
                    return self.allowed(&got, &Ok(()), faulted, quota);
                }
                if h.content.len() != size as usize {
                    h.content.resize(size as usize, 0);
                    h.changed = Some(true);
                }
                self.add_handle(h, 0, 0);
                let i = self.m.handles.len() - 1;
                self.m.handles[i].id = usize::MAX;
                self.m.opened -= 1;
                let r = self.commit(i, faulted, quota, got, allow).await;
                self.close_model(i);
                r
            }
            Act::Rename(a, b) => {
                let (from, to) = (NAMES[a], NAMES[b]);
                let got = self.d.rename(from, to).await;
                let (faulted, quota) = self.faults_since(met);
                if !self.m.visible(from) {
                    return self.allowed(&got, &Err(Errno::NOENT), faulted, quota);
                }
                let mut after = self.m.server.clone();
                if let Some(c) = after.remove(from) {
                    after.insert(to.to_string(), c);
                } else {
                    // A new file not committed yet: its commit writes at the
                    // new name, and the file it replaces goes.
                    after.remove(to);
                }
                match got {
                    Ok(()) => {
                        self.m.server = after;
                        self.m.unbind(to);
                        if let Some(n) = self.m.bound.remove(from) {
                            self.m.nodes[n].path = to.to_string();
                            self.m.bound.insert(to.to_string(), n);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        self.allowed(&Err(e), &Ok(()), faulted, quota)?;
                        self.adopt(&[after]).await
                    }
                }
            }
            Act::Unlink(n) => {
                let path = NAMES[n];
                let got = self.d.unlink(path).await;
                let (faulted, quota) = self.faults_since(met);
                if !self.m.visible(path) {
                    return self.allowed(&got, &Err(Errno::NOENT), faulted, quota);
                }
                let mut after = self.m.server.clone();
                after.remove(path);
                match got {
                    Ok(()) => {
                        self.m.server = after;
                        self.m.unbind(path);
                        Ok(())
                    }
                    Err(e) => {
                        self.allowed(&Err(e), &Ok(()), faulted, quota)?;
                        self.adopt(&[after]).await
                    }
                }
            }
            Act::Stat(n) => {
                let path = NAMES[n];
                let got = match self.d.lookup(path).await {
                    Ok(ino) => self.d.fs.getattr(ino).await.map(|a| a.size),
                    Err(e) => Err(e),
                };
                let (faulted, quota) = self.faults_since(met);
                if !self.m.visible(path) {
                    return self.allowed(&got.map(drop), &Err(Errno::NOENT), faulted, quota);
                }
                let open_here = self.m.bound.get(path).is_some_and(|&n| self.m.nodes[n].open > 0);
                match (got, self.m.server.get(path)) {
                    (Ok(size), Some(c)) if !open_here && size != c.len() as u64 => {
                        Err(format!("stat {path}: size {size}, the server holds {} bytes", c.len()))
                    }
                    (Ok(_), _) => Ok(()),
                    (Err(e), _) => self.allowed(&Err(e), &Ok(()), faulted, quota),
                }
            }
            Act::Fsync(h) | Act::Close(h) | Act::Reopen(h) => {
                let Some(i) = self.m.handle(h) else { return Ok(()) };
                let fh = self.m.handles[i].fh;
                let close = !matches!(act, Act::Fsync(_));
                let got = if close { self.d.release(fh).await } else { self.d.flush(fh).await };
                let (faulted, quota) = self.faults_since(met);
                let path = self.m.nodes[self.m.handles[i].node].path.clone();
                let r = self.commit(i, faulted, quota, got, allow).await;
                if close {
                    self.close_model(i);
                }
                r?;
                if let Act::Reopen(_) = act {
                    // Opened again by the path it has now, without faults.
                    let n = NAMES.iter().position(|p| *p == path).unwrap_or(0);
                    let met = self.d.store().met().len();
                    return Box::pin(self.act(&Act::Open(n, true), met, allow)).await;
                }
                Ok(())
            }
            Act::DropCaches => {
                self.d.drop_caches();
                Ok(())
            }
        }
    }

    /// After a failed write through handle `i`: reads the handle back
    /// (faults off) and takes it if each block is as `before` or `after`.
    async fn adopt_partial_write(&mut self, i: usize, before: &[u8], after: &[u8]) -> Check {
        let fh = self.m.handles[i].fh;
        let now = self.d.fs.read(fh, 0, (after.len() + BLOCK as usize) as u32).await;
        let now = now.map_err(|e| format!("reading the handle back after a failed write: {e:?}"))?;
        if now.len() != before.len() && now.len() != after.len() {
            let (n, b, a) = (now.len(), before.len(), after.len());
            return Err(format!("after a failed write the size is {n}: neither {b} nor {a}"));
        }
        let mut old = before.to_vec();
        old.resize(now.len().max(old.len()), 0);
        let bs = BLOCK as usize;
        for (k, chunk) in now.chunks(bs).enumerate() {
            let range = k * bs..(k * bs + chunk.len());
            if old.get(range.clone()) != Some(chunk) && after.get(range) != Some(chunk) {
                return Err(format!("after a failed write, block {k} is neither as before nor as written"));
            }
        }
        let hm = &mut self.m.handles[i];
        if now != hm.content || now.len() != before.len() {
            hm.changed = Some(true);
            let node = hm.node;
            self.m.nodes[node].pending = true;
        }
        hm.content = now.to_vec();
        Ok(())
    }

    /// After a failed call: the server holds what it held before, or one of
    /// `afters`, whole; the model takes it.
    async fn adopt(&mut self, afters: &[Objects]) -> Check {
        let (now, _) = server(&self.client).await?;
        if now == self.m.server || afters.contains(&now) {
            self.m.server = now;
            return Ok(());
        }
        Err(format!(
            "after a failed call the server holds {:?}: neither before {:?} nor after {:?}",
            now.keys().collect::<Vec<_>>(),
            self.m.server.keys().collect::<Vec<_>>(),
            afters.iter().map(|a| a.keys().collect::<Vec<_>>()).collect::<Vec<_>>()
        ))
    }

    /// The server against the model: the same files, whole; conflict copies
    /// only where allowed.
    async fn check_server(&mut self, before: &Objects, faulted: bool, allow: &Allowance) -> Check {
        let _ = before;
        let (files, copies) = server(&self.client).await?;
        if files != self.m.server {
            let names: BTreeSet<&String> = files.keys().chain(self.m.server.keys()).collect();
            let diff: Vec<String> = names
                .into_iter()
                .filter(|n| files.get(*n) != self.m.server.get(*n))
                .map(|n| {
                    format!(
                        "{n}: the server holds {}, the model {}",
                        show(&files.get(n).cloned()),
                        show(&self.m.server.get(n).cloned())
                    )
                })
                .collect();
            return Err(format!(
                "the server differs from the model{}: {}",
                if faulted { " (after a fault)" } else { "" },
                diff.join("; ")
            ));
        }
        for (name, content) in &copies {
            if self.copies.get(name) == Some(content) {
                continue;
            }
            let ok = allow.copies.iter().any(|(p, c)| is_copy_of(name, p) && c == content);
            if !ok {
                return Err(format!("an unexpected conflict copy {name} ({} bytes)", content.len()));
            }
        }
        if let Some((path, content)) = &allow.must_copy {
            if !copies.iter().any(|(n, c)| is_copy_of(n, path) && c == content) {
                return Err(format!("no conflict copy of {path} holding what was committed"));
            }
        }
        self.copies = copies;
        Ok(())
    }

    /// The end: faults off, every handle closed (as the model says), then a
    /// fresh filesystem over the same container reads every file back.
    async fn finish(&mut self) -> Check {
        self.d.store().heal();
        while !self.m.handles.is_empty() {
            let fh = self.m.handles[0].fh;
            let got = self.d.release(fh).await;
            let mut allow = Allowance::default();
            self.commit(0, false, false, got, &mut allow).await.map_err(|e| format!("the final close: {e}"))?;
            self.close_model(0);
            self.check_server(&Objects::new(), false, &allow).await.map_err(|e| format!("the final close: {e}"))?;
        }
        let fresh = driver(self.world, &self.client, &self.container);
        let mut listed = Vec::new();
        for dir in ["", "d"] {
            for name in fresh.ls(dir).await.map_err(|e| format!("ls {dir:?} after a remount: {e:?}"))? {
                let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
                if path != "d" && !path.contains(".conflict-") {
                    listed.push(path);
                }
            }
        }
        listed.sort();
        let want: Vec<String> = self.m.server.keys().cloned().collect();
        if listed != want {
            return Err(format!("after a remount the names are {listed:?}, the model's {want:?}"));
        }
        for (path, content) in &self.m.server {
            let got = fresh.get(path).await.map_err(|e| format!("cat {path} after a remount: {e:?}"))?;
            if got != *content {
                return Err(format!("after a remount {path} reads {} bytes, not its {}", got.len(), content.len()));
            }
        }
        Ok(())
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(at) => format!(" (first difference at byte {at})"),
        None => String::new(),
    }
}

/// Plays a case on a fresh container; adds what it did to `stats`.
async fn play<W: World>(world: &W, n: u64, case: &Case, stats: &std::sync::Mutex<Stats>) -> Check {
    let (client, container) = world.container(n).await;
    let dir = pithosfs::clients::storage::PutOptions {
        content_type: Some("application/directory".into()),
        ..Default::default()
    };
    client.put_object("d", Vec::new().into(), &dir).await.map_err(|e| format!("mkdir d: {e}"))?;
    let d = driver(world, &client, &container);
    let mut p = Play {
        world,
        client,
        container,
        d,
        m: Model::default(),
        copies: Objects::new(),
        trace: Vec::new(),
        salt: n << 8,
        stats: Default::default(),
    };
    let mut played = Ok(());
    for (i, step) in case.0.iter().enumerate() {
        if let Err(e) = p.step(step).await {
            played = Err(format!("step {i} ({step}): {e}"));
            break;
        }
    }
    if played.is_ok() {
        played = p.finish().await.map_err(|e| format!("at the end: {e}"));
    }
    world.remove(&p.client).await;
    *stats.lock().unwrap() += p.stats.get();
    played.map_err(|e| format!("{e}\nas played:\n  {}", p.trace.join("\n  ")))
}

// ---------------------------------------------------------------------------
// the runner
// ---------------------------------------------------------------------------

fn cases(default: u32) -> u32 {
    ["PITHOSFS_MODEL_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .unwrap_or(default)
}

/// The run's seed: `PITHOSFS_MODEL_SEED` (32 bytes in hex), else a fresh one.
fn seed() -> [u8; 32] {
    if let Ok(hex) = std::env::var("PITHOSFS_MODEL_SEED") {
        let bytes = hex::decode(hex.trim()).expect("PITHOSFS_MODEL_SEED: 64 hex digits");
        return bytes.try_into().expect("PITHOSFS_MODEL_SEED: 64 hex digits");
    }
    let mut s = [0u8; 32];
    rand::fill(&mut s);
    s
}

/// Runs the property over `world`: proptest draws cases, shrinks a failing
/// one to a minimal sequence, and the test fails printing it.
fn run<W: World>(rt: &tokio::runtime::Runtime, world: &W, default_cases: u32) {
    let seed = seed();
    let cases = cases(default_cases);
    println!("{}: {cases} cases, seed {} (PITHOSFS_MODEL_SEED to run it again)", world.name(), hex::encode(seed));
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 4096, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let started = Instant::now();
    let counter = std::sync::atomic::AtomicU64::new(0);
    let stats = std::sync::Mutex::new(Stats::default());
    let result = runner.run(&case(), |case| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = rt.block_on(play(world, n, &case, &stats));
        if std::env::var_os("PITHOSFS_MODEL_DEBUG").is_some() {
            println!("case {n}: {case:?}: {r:?}");
        }
        r.map_err(TestCaseError::fail)
    });
    let played = counter.load(std::sync::atomic::Ordering::Relaxed);
    let st = stats.lock().unwrap();
    println!("{}: {played} cases played (shrinking included) in {:.1?}", world.name(), started.elapsed());
    println!(
        "{}: {} steps; {} met {} faults; {} calls answered an errno a fault allows; {} conflict copies foreseen",
        world.name(),
        st.steps,
        st.faulted,
        st.faults,
        st.excused,
        st.conflicts
    );
    drop(st);
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, case)) => {
            panic!("{}: the minimal failing case (seed {}):\n{case:?}\n{why}", world.name(), hex::encode(seed))
        }
        Err(e) => panic!("{}: {e}", world.name()),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn the_filesystem_matches_its_model_under_random_faults_over_pithos() {
    let rt = runtime();
    let tc = rt.block_on(TestCloud::start_with(|c| c.block_size = BLOCK as u64));
    run(&rt, &Local { tc }, CASES);
}

#[test]
fn the_filesystem_matches_its_model_under_random_faults_over_swift() {
    let Some(auth) = swift_auth() else { return };
    let rt = runtime();
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let world = Swift { auth, run: format!("{}-{ms}", std::process::id()) };
    run(&rt, &world, SWIFT_CASES);
}

/// The minimal sequences the property shrank its failures to (one per bug
/// fixed), played on every run, plus an unlinked file read through its
/// descriptor.
#[test]
fn the_sequences_that_failed_once_pass() {
    use Act::*;
    let calm = |act: Act| Step { act, faults: None };
    let wild = |act: Act, seed: u64| Step { act, faults: Some(seed) };
    let w = |h: usize, offset: u32, len: u32, seed: u8| Write { h, offset, len, seed };
    let (a, b, c, db) = (0, 1, 2, 4);
    let cases: Vec<(&str, Vec<Step>)> = vec![
        ("an unlinked open file came back at its close", vec![calm(Create(db)), calm(Unlink(db))]),
        (
            "a failed close left its size for stat",
            vec![
                calm(Create(b)),
                calm(Fsync(0)),
                calm(w(0, 0, 4097, 0)),
                wild(Close(0), 10254913560063795924),
                calm(Stat(b)),
            ],
        ),
        ("a reader of a new file could write it", vec![calm(Create(a)), calm(Open(a, false)), calm(w(1, 0, 1, 0))]),
        (
            "a new file renamed over another left it on the server",
            vec![calm(Create(a)), calm(Fsync(0)), calm(Create(c)), calm(Rename(a, db)), calm(Rename(c, db))],
        ),
        (
            "a rename whose target lookup failed went on",
            vec![
                calm(Create(c)),
                calm(Create(a)),
                calm(Reopen(0)),
                calm(Create(a)),
                calm(Create(a)),
                wild(Rename(a, c), 9671906714481356175),
            ],
        ),
        (
            "a new file whose commit reply was lost (and could not be checked) stayed at its old name on rename",
            vec![calm(Create(c)), wild(Fsync(0), 10529274790589713608), calm(Rename(c, a))],
        ),
        (
            "a new file whose commit reply was lost conflicted with itself at the next commit",
            vec![calm(Create(a)), wild(Fsync(0), 13437629228732171089), calm(w(0, 0, 1, 0))],
        ),
        (
            "a new file whose block upload failed was then written over whatever its name held",
            vec![
                calm(Create(a)),
                calm(Create(a)),
                calm(Close(0)),
                calm(Create(a)),
                calm(Create(c)),
                calm(Close(0)),
                calm(Close(0)),
                calm(w(0, 4037, 60, 0)),
                wild(Fsync(0), 11362263350385308620),
                calm(Truncate { name: c, size: 1 }),
            ],
        ),
        (
            "a new file whose commit was lost, then written by another handle, replaced that version at its close",
            vec![
                calm(Create(c)),
                calm(Create(c)),
                wild(Fsync(2), 12448653606329012188),
                calm(Create(a)),
                calm(Ftruncate { h: 1, size: 1 }),
                calm(Close(1)),
            ],
        ),
        (
            "a new file whose lost commit landed, then truncated by path, kept both versions at its close",
            vec![
                calm(Create(db)),
                calm(Create(c)),
                wild(Fsync(1), 6626519791065442151),
                calm(Truncate { name: c, size: 1 }),
            ],
        ),
        (
            "an unlinked file reads and writes through its descriptor",
            vec![
                calm(Create(a)),
                calm(w(0, 0, 3 * BLOCK + 5, 1)),
                calm(Close(0)),
                calm(Open(a, true)),
                calm(Unlink(a)),
                calm(Read { h: 0, offset: 0, len: 3 * BLOCK + 5 }),
                calm(w(0, 10, 10, 2)),
                calm(Read { h: 0, offset: 0, len: 100 }),
                calm(Close(0)),
            ],
        ),
    ];
    let rt = runtime();
    let world = Local { tc: rt.block_on(TestCloud::start_with(|c| c.block_size = BLOCK as u64)) };
    let stats = std::sync::Mutex::new(Stats::default());
    let mut failed = Vec::new();
    for (n, (what, steps)) in cases.into_iter().enumerate() {
        let faults_before = stats.lock().unwrap().faulted;
        let wanted_fault = steps.iter().any(|s| s.faults.is_some());
        if let Err(e) = rt.block_on(play(&world, n as u64, &Case(steps), &stats)) {
            failed.push(format!("{what}: {e}"));
        }
        if wanted_fault && stats.lock().unwrap().faulted == faults_before {
            failed.push(format!("{what}: no fault met its step any more (pick another seed)"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
