//! The fault matrix: every store operation of the write path and of the
//! read path, failed on purpose at each position, with each error that can
//! meet it, through `Fs` in process (the `Driver` of
//! `tests/common/fs_driver.rs`) over `FaultyStore`.
//!
//! One table (`rows()`) says, for each operation × position × error, what
//! the filesystem call must answer and what the server must then hold, on
//! Pithos (the local cloud) and on Swift (the real one, where the operation
//! exists). The runner plays every row on a fresh filesystem and its own
//! folder:
//!
//! 1. sets up the old state on the server (through the client library);
//! 2. does the operation through `Fs` with the fault placed on the k-th
//!    call of the store operation from that moment: *before* the call
//!    reaches the store (`Fault::Fail`), or *after* it did its work and its
//!    reply was lost (`Fault::FailAfter`), or a read *cut* short;
//! 3. checks the answer (ok, or the documented errno) and reads the server
//!    back through the client library, not through `Fs`: the object is its
//!    old version or its new one, whole, never a mix (a conflict copy only
//!    where the row says so), and whatever was acknowledged is there;
//! 4. heals the store and finishes: the commit's `close()` (release) again,
//!    or the same call again where nothing landed; then the server must hold
//!    the new state and `Fs` must show what the server holds.
//!
//! The test prints the matrix with what each row did (`--nocapture`), and
//! fails listing every row whose outcome differs from the table.

mod common;

use common::blocks::random_bytes;
use common::fs_driver::*;
use futures_util::StreamExt;
use pithosfs::clients::storage::{is_directory_type, ListOptions, ObjectInfo, ObjectStorage, PutOptions};
use pithosfs::fs::errno::Errno;
use pithosfs::fs::store::swift::PLAIN_BLOCK_SIZE;
use pithosfs::fs::store::{Fault, PithosStore, Store, StoreError, StoreOp, SwiftStore};
use std::fmt;
use std::time::Duration;

// ---------------------------------------------------------------------------
// the table
// ---------------------------------------------------------------------------

/// Which call of a paged or repeated operation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pos {
    First,
    Middle,
    Last,
}

/// What the filesystem does in a row, and so which store call fails.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    /// close() of an edit of a file of several blocks: its first commit
    /// attempt (Pithos: the hashmap PUT, answered with the blocks it lacks;
    /// Swift: the whole-object PUT).
    CommitEdit,
    /// … its k-th block upload (Pithos).
    Upload(u64),
    /// … its second hashmap PUT (Pithos).
    CommitAgain,
    /// close() of a new small file: one PUT with `If-None-Match: *`.
    CommitNew,
    Chmod,
    Utimes,
    Setxattr,
    MoveFile,
    MoveFolder,
    Unlink,
    Rmdir,
    Mkdir,
    Symlink,
    /// `ls -l` of a folder of three listing pages.
    ListPage(Pos),
    /// `getfattr -n user.pithos.hash`: a HEAD (Pithos).
    Stat,
    Open,
    /// A sequential read of a file of several blocks: its block reads.
    ReadBlock(Pos),
    /// A random read (Pithos: its whole block, checked against its hash;
    /// Swift: one ranged GET).
    ReadRandom,
    /// A random read with `unverified_range_reads`: one ranged GET.
    ReadRange,
    Readlink,
}

impl Act {
    fn is_commit(self) -> bool {
        matches!(self, Act::CommitEdit | Act::Upload(_) | Act::CommitAgain | Act::CommitNew)
    }

    fn is_read(self) -> bool {
        matches!(
            self,
            Act::ListPage(_)
                | Act::Stat
                | Act::Open
                | Act::ReadBlock(_)
                | Act::ReadRandom
                | Act::ReadRange
                | Act::Readlink
        )
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Act::CommitEdit => "commit: 1st PUT (Swift: the PUT)".to_string(),
            Act::Upload(k) => format!("commit: block upload {k}/3"),
            Act::CommitAgain => "commit: 2nd hashmap PUT".to_string(),
            Act::CommitNew => "commit: new file, one PUT".to_string(),
            Act::Chmod => "chmod (metadata POST)".to_string(),
            Act::Utimes => "utimes (metadata POST)".to_string(),
            Act::Setxattr => "setxattr (metadata POST)".to_string(),
            Act::MoveFile => "rename a file".to_string(),
            Act::MoveFolder => "rename a folder".to_string(),
            Act::Unlink => "unlink".to_string(),
            Act::Rmdir => "rmdir".to_string(),
            Act::Mkdir => "mkdir".to_string(),
            Act::Symlink => "symlink".to_string(),
            Act::ListPage(p) => format!("listing: {p:?} page").to_lowercase(),
            Act::Stat => "stat (HEAD)".to_string(),
            Act::Open => "open".to_string(),
            Act::ReadBlock(p) => format!("read: {p:?} block").to_lowercase(),
            Act::ReadRandom => "read: random".to_string(),
            Act::ReadRange => "read: a range, unverified".to_string(),
            Act::Readlink => "readlink".to_string(),
        };
        f.pad(&s)
    }
}

/// Where the fault meets the call, and what it is.
#[derive(Debug, Clone, PartialEq)]
enum At {
    /// The call fails without reaching the store.
    Before(StoreError),
    /// The store does the work; the answer is this error (a lost reply, or
    /// the retry's answer to work already done).
    After(StoreError),
    /// A read answers only its first n bytes.
    Cut(usize),
}

impl At {
    fn fault(&self) -> Fault {
        match self {
            At::Before(e) => Fault::Fail(e.clone()),
            At::After(e) => Fault::FailAfter(e.clone()),
            At::Cut(n) => Fault::Cut(*n),
        }
    }
}

fn error_name(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound => "NotFound",
        StoreError::Changed => "Changed",
        StoreError::NotEmpty => "NotEmpty",
        StoreError::Conflict(_) => "Conflict",
        StoreError::Quota => "Quota",
        StoreError::TooLarge => "TooLarge",
        StoreError::NameTooLong => "NameTooLong",
        StoreError::Denied => "Denied",
        StoreError::Unavailable(_) => "Unavailable",
        StoreError::Invalid(_) => "Invalid",
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            At::Before(e) => format!("before, {}", error_name(e)),
            At::After(e) => format!("after, {}", error_name(e)),
            At::Cut(n) => format!("cut at {n} bytes"),
        };
        f.pad(&s)
    }
}

/// What the server holds for the row's object(s).
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// As before the call (for a new name: nothing).
    Old,
    /// As the call asked, whole.
    New,
    /// The old version at the name, and one conflict copy holding ours.
    Conflict,
    /// Nothing to hold (a read).
    Same,
    /// Anything else: a mix, a stray copy, a missing object (described).
    Mix(String),
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Old => f.write_str("old"),
            State::New => f.write_str("new"),
            State::Conflict => f.write_str("old+copy"),
            State::Same => Ok(()),
            State::Mix(why) => write!(f, "MIX ({why})"),
        }
    }
}

/// What a call answered: ok, an errno, or data that is not the file's.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Ok,
    Errno(Errno),
    WrongData(String),
}

/// What a call answers and what the server then holds.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    answer: Answer,
    server: State,
}

fn errno_name(e: Errno) -> String {
    let names = [
        (Errno::IO, "EIO"),
        (Errno::NOENT, "ENOENT"),
        (Errno::DQUOT, "EDQUOT"),
        (Errno::ACCES, "EACCES"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NOTEMPTY, "ENOTEMPTY"),
        (Errno::NODATA, "ENODATA"),
        (Errno::INVAL, "EINVAL"),
    ];
    names.iter().find(|(n, _)| *n == e).map_or_else(|| format!("errno {}", e.0), |(_, s)| s.to_string())
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answer = match &self.answer {
            Answer::Ok => "ok".to_string(),
            Answer::Errno(e) => errno_name(*e),
            Answer::WrongData(what) => format!("WRONG DATA ({what})"),
        };
        let s = match self.server {
            State::Same => answer,
            ref s => format!("{answer}, {s}"),
        };
        f.pad(&s)
    }
}

fn ok(server: State) -> Outcome {
    Outcome { answer: Answer::Ok, server }
}

fn fails(e: Errno, server: State) -> Outcome {
    Outcome { answer: Answer::Errno(e), server }
}

/// A call's answer, with its data checked by `check` (None: right).
fn answer<T>(got: Result<T>, check: impl FnOnce(T) -> Option<String>) -> Answer {
    match got {
        Ok(t) => check(t).map_or(Answer::Ok, Answer::WrongData),
        Err(e) => Answer::Errno(e),
    }
}

struct Row {
    act: Act,
    at: At,
    pithos: Option<Outcome>,
    swift: Option<Outcome>,
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("injected".into())
}

/// The matrix: operation × position × error → outcome on Pithos, on Swift
/// (None: the store has no such call).
fn rows() -> Vec<Row> {
    use Act::*;
    use State::*;
    let eio = |s: State| fails(Errno::IO, s);
    let edquot = |s: State| fails(Errno::DQUOT, s);
    let enoent = |s: State| fails(Errno::NOENT, s);
    let both = |o: Outcome| (Some(o.clone()), Some(o));
    let pithos = |o: Outcome| (Some(o), None);
    let swift = |o: Outcome| (None, Some(o));
    let before = At::Before;
    let after = At::After;
    let mut rows = Vec::new();
    let mut add = |act: Act, at: At, (p, s): (Option<Outcome>, Option<Outcome>)| {
        rows.push(Row { act, at, pithos: p, swift: s });
    };
    // Write path: a commit, step by step.
    add(CommitEdit, before(unavailable()), both(eio(Old)));
    add(CommitEdit, before(StoreError::Quota), both(edquot(Old)));
    add(CommitEdit, before(StoreError::Changed), both(eio(Conflict)));
    // Pithos' first hashmap PUT only asks for blocks; Swift's PUT is the commit.
    // Swift's PUT landed: the commit sees it did (one HEAD) and succeeds.
    add(CommitEdit, after(unavailable()), (Some(eio(Old)), Some(ok(New))));
    for k in 1..=3 {
        add(Upload(k), before(unavailable()), pithos(eio(Old)));
        add(Upload(k), before(StoreError::Quota), pithos(edquot(Old)));
        add(Upload(k), after(unavailable()), pithos(eio(Old)));
    }
    add(CommitAgain, before(unavailable()), pithos(eio(Old)));
    add(CommitAgain, before(StoreError::Quota), pithos(edquot(Old)));
    add(CommitAgain, before(StoreError::Changed), pithos(eio(Conflict)));
    add(CommitAgain, after(unavailable()), pithos(ok(New)));
    // The client's retry of a PUT that landed is refused by its own version.
    add(CommitAgain, after(StoreError::Changed), pithos(ok(New)));
    add(CommitNew, before(unavailable()), both(eio(Old)));
    add(CommitNew, before(StoreError::Quota), both(edquot(Old)));
    add(CommitNew, after(unavailable()), both(ok(New)));
    // (Swift's streamed PUT is never sent twice: no retry meets its own work.)
    add(CommitNew, after(StoreError::Changed), pithos(ok(New)));
    // Metadata.
    for act in [Chmod, Utimes, Setxattr] {
        add(act, before(unavailable()), both(eio(Old)));
        add(act, before(StoreError::NotFound), both(enoent(Old)));
        add(act, after(unavailable()), both(eio(New)));
    }
    // The namespace.
    for act in [MoveFile, MoveFolder] {
        add(act, before(unavailable()), both(eio(Old)));
        add(act, before(StoreError::NotFound), both(enoent(Old)));
        add(act, after(unavailable()), both(eio(New)));
        // The retry of a move that landed finds no source.
        add(act, after(StoreError::NotFound), both(ok(New)));
    }
    for act in [Unlink, Rmdir] {
        add(act, before(unavailable()), both(eio(Old)));
        add(act, after(unavailable()), both(eio(New)));
        add(act, after(StoreError::NotFound), both(ok(New)));
    }
    for act in [Mkdir, Symlink] {
        add(act, before(unavailable()), both(eio(Old)));
        add(act, before(StoreError::Quota), both(edquot(Old)));
        add(act, after(unavailable()), both(eio(New)));
    }
    // Read path.
    for pos in [Pos::First, Pos::Middle, Pos::Last] {
        add(ListPage(pos), before(unavailable()), both(eio(Same)));
        add(ListPage(pos), after(unavailable()), both(eio(Same)));
    }
    add(Stat, before(unavailable()), pithos(eio(Same)));
    add(Stat, before(StoreError::NotFound), pithos(enoent(Same)));
    add(Open, before(unavailable()), both(eio(Same)));
    add(Open, after(unavailable()), both(eio(Same)));
    add(Open, before(StoreError::NotFound), both(enoent(Same)));
    add(Open, before(StoreError::Denied), both(fails(Errno::ACCES, Same)));
    for pos in [Pos::First, Pos::Middle, Pos::Last] {
        add(ReadBlock(pos), before(unavailable()), both(eio(Same)));
        add(ReadBlock(pos), after(unavailable()), both(eio(Same)));
        // A Swift read whose `If-Match` failed: the object changed under it.
        add(ReadBlock(pos), before(StoreError::Changed), both(eio(Same)));
        add(ReadBlock(pos), At::Cut(100), both(eio(Same)));
    }
    // A random read on Pithos fetches its whole block: a cut one is refused.
    add(ReadRandom, before(unavailable()), both(eio(Same)));
    add(ReadRandom, At::Cut(100), pithos(eio(Same)));
    add(ReadRandom, At::Cut(100), swift(ok(Same)));
    add(ReadRange, before(unavailable()), both(eio(Same)));
    add(ReadRange, before(StoreError::Changed), both(eio(Same)));
    // A short range is read again block by block.
    add(ReadRange, At::Cut(100), both(ok(Same)));
    add(Readlink, before(unavailable()), both(eio(Same)));
    add(Readlink, before(StoreError::NotFound), both(enoent(Same)));
    add(Readlink, At::Cut(3), both(eio(Same)));
    rows
}

/// The store call a row's fault meets: (operation, which call from the
/// start of the act), given the number of listing pages and of blocks read,
/// and the store.
fn target(act: Act, blocks: u64, pithos: bool) -> (StoreOp, u64) {
    let pos = |p: Pos, n: u64| match p {
        Pos::First => 1,
        Pos::Middle => n.div_ceil(2),
        Pos::Last => n,
    };
    match act {
        Act::CommitEdit | Act::CommitNew => (StoreOp::Commit, 1),
        Act::Upload(k) => (StoreOp::UploadBlock, k),
        Act::CommitAgain => (StoreOp::Commit, 2),
        Act::Chmod | Act::Utimes | Act::Setxattr => (StoreOp::SetMeta, 1),
        Act::MoveFile => (StoreOp::Rename, 1),
        Act::MoveFolder => (StoreOp::RenameFolder, 1),
        Act::Unlink | Act::Rmdir => (StoreOp::Delete, 1),
        Act::Mkdir | Act::Symlink => (StoreOp::WriteObject, 1),
        Act::ListPage(p) => (StoreOp::ListPage, pos(p, LIST_PAGES)),
        Act::Stat => (StoreOp::Stat, 1),
        Act::Open => (StoreOp::Open, 1),
        Act::ReadBlock(p) => (StoreOp::ReadBlock, pos(p, blocks)),
        Act::ReadRandom => (if pithos { StoreOp::ReadBlock } else { StoreOp::ReadRange }, 1),
        Act::ReadRange => (StoreOp::ReadRange, 1),
        Act::Readlink => (StoreOp::ReadObject, 1),
    }
}

// ---------------------------------------------------------------------------
// a row, played
// ---------------------------------------------------------------------------

/// Entries per listing page here, and the folder listed: three pages.
const PAGE_SIZE: usize = 4;
const LISTED: usize = 10;
const LIST_PAGES: u64 = 3;

const TARGET: &str = "../some/target";
const MTIME: f64 = 1_000_000_000.5;

/// Rows played at once (each on its own filesystem and folder).
const PARALLEL_ROWS: usize = 4;

/// One store and its server: how to make a filesystem over it, and the
/// client that reads back what the server holds.
struct World<C, S> {
    name: &'static str,
    client: C,
    container: String,
    make: fn(C) -> S,
    /// The edited file: its size, and where the edit starts (it runs to the end).
    edit: (usize, usize),
    /// The file read block by block (`read.bin`), and its block count.
    read_len: usize,
    blocks: u64,
}

/// The names and contents of one row (in its own folder `rNN`).
struct Scene {
    dir: String,
    /// The file edited, chmod-ed, moved, unlinked.
    file: String,
    old: Vec<u8>,
    new: Vec<u8>,
    /// A small file's content (a new file, the file of metadata and namespace rows).
    small: Vec<u8>,
    /// What `read.bin` holds.
    read: Vec<u8>,
    /// An open handle the act works on (commits, reads), or the listed folder.
    fh: Option<u64>,
    folder: Option<u64>,
}

impl Scene {
    fn at(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }
}

impl<C, S> World<C, S>
where
    C: ObjectStorage + Clone,
    S: Store,
{
    fn driver(&self, act: Act) -> Driver<S> {
        Driver::new((self.make)(self.client.clone()), &self.container, |o| {
            o.unverified_range_reads = act == Act::ReadRange;
            // Every lookup and stat goes to the store, so that what `Fs`
            // shows after a fault is what the server holds now.
            o.attr_ttl = Duration::ZERO;
            o.dir_ttl = Duration::ZERO;
            o.listing_page = PAGE_SIZE;
        })
    }

    async fn put(&self, name: &str, data: &[u8], content_type: &str) {
        let o = PutOptions { content_type: Some(content_type.into()), ..Default::default() };
        self.client.put_object(name, data.to_vec().into(), &o).await.unwrap();
    }

    async fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.client.get_object(name, &Default::default()).await.ok().map(|(_, b)| b.to_vec())
    }

    async fn info(&self, name: &str) -> Option<ObjectInfo> {
        self.client.get_object_info(name).await.ok()
    }

    /// Every object name under `prefix`.
    async fn names(&self, prefix: &str) -> Vec<String> {
        let o = ListOptions { prefix: Some(prefix.to_string()), ..Default::default() };
        self.client.list_objects(&o).await.unwrap().into_iter().map(|l| l.name().to_string()).collect()
    }

    /// The objects the read rows share (reads change nothing).
    async fn prepare(&self) {
        self.put("read.bin", &random_bytes(self.read_len, 1), "application/octet-stream").await;
        self.put("list", b"", "application/directory").await;
        for i in 0..LISTED {
            self.put(&format!("list/f{i:02}"), b"x", "text/plain").await;
        }
        self.put("link", TARGET.as_bytes(), "inode/symlink").await;
    }

    /// Row `n`'s old state on the server, and the call up to the fault.
    async fn set_up(&self, d: &Driver<S>, n: usize, act: Act) -> Scene {
        let dir = format!("r{n:02}");
        self.put(&dir, b"", "application/directory").await;
        let (size, from) = self.edit;
        let old = random_bytes(size, 10 + n as u64);
        let mut new = old.clone();
        new[from..].copy_from_slice(&random_bytes(size - from, 1000 + n as u64));
        let small = random_bytes(1000, 2000 + n as u64);
        let mut s = Scene {
            file: format!("{dir}/f.bin"),
            dir,
            old,
            new,
            small,
            read: random_bytes(self.read_len, 1),
            fh: None,
            folder: None,
        };
        match act {
            Act::CommitEdit | Act::Upload(_) | Act::CommitAgain => {
                self.put(&s.file, &s.old, "application/octet-stream").await;
                let fh = d.open(&s.file, true).await.unwrap();
                d.write(fh, from as u64, &s.new[from..]).await.unwrap();
                s.fh = Some(fh);
            }
            Act::CommitNew => {
                let fh = d.create(&s.file).await.unwrap();
                d.write(fh, 0, &s.small).await.unwrap();
                s.fh = Some(fh);
            }
            Act::Chmod | Act::Utimes | Act::Setxattr | Act::MoveFile | Act::Unlink => {
                self.put(&s.file, &s.small, "application/octet-stream").await;
            }
            Act::MoveFolder => {
                self.put(&s.at("a"), b"", "application/directory").await;
                self.put(&s.at("a/x"), &s.small, "application/octet-stream").await;
                self.put(&s.at("a/y"), b"y", "application/octet-stream").await;
            }
            Act::Rmdir => self.put(&s.at("e"), b"", "application/directory").await,
            Act::ReadBlock(_) | Act::ReadRandom | Act::ReadRange => {
                s.fh = Some(d.open("read.bin", false).await.unwrap())
            }
            Act::ListPage(_) => s.folder = Some(d.lookup("list").await.unwrap()),
            Act::Mkdir | Act::Symlink | Act::Stat | Act::Open | Act::Readlink => {}
        }
        s
    }

    /// The row's call: with the fault placed, then again to finish (a
    /// commit's finish is the release that follows a failed close).
    async fn call(&self, d: &Driver<S>, s: &Scene, act: Act, finishing: bool) -> Answer {
        let fh = || s.fh.expect("an open handle");
        let done = |r: Result<()>| answer(r, |()| None);
        match act {
            _ if act.is_commit() && finishing => done(d.release(fh()).await),
            _ if act.is_commit() => done(d.flush(fh()).await),
            Act::Chmod => done(d.chmod(&s.file, 0o600).await),
            Act::Utimes => done(d.utimes(&s.file, MTIME).await),
            Act::Setxattr => done(d.setxattr(&s.file, "user.color", b"blue").await),
            Act::MoveFile => done(d.rename(&s.file, &s.at("g.bin")).await),
            Act::MoveFolder => done(d.rename(&s.at("a"), &s.at("b")).await),
            Act::Unlink => done(d.unlink(&s.file).await),
            Act::Rmdir => done(d.rmdir(&s.at("e")).await),
            Act::Mkdir => done(d.mkdir(&s.at("k")).await),
            Act::Symlink => done(d.symlink(&s.at("l"), TARGET).await),
            Act::ListPage(_) => answer(d.ls_at(s.folder.expect("the folder")).await, |names| {
                (names.len() != LISTED).then(|| format!("{} entries of {LISTED}", names.len()))
            }),
            Act::Stat => {
                let want = self.info("read.bin").await.and_then(|i| i.hash);
                answer(d.getxattr("read.bin", "user.pithos.hash").await, |hash| {
                    (String::from_utf8(hash).ok() != want).then(|| "another hash".into())
                })
            }
            Act::Open => match d.open("read.bin", false).await {
                Ok(fh) => done(d.release(fh).await),
                Err(e) => Answer::Errno(e),
            },
            Act::ReadBlock(_) => answer(d.fs.read(fh(), 0, self.read_len as u32).await, |got| {
                (got != s.read).then(|| format!("{} bytes, not the file's", got.len()))
            }),
            Act::ReadRandom | Act::ReadRange => {
                let (at, len) = (BS as u64 / 2 + 7, 1000);
                answer(d.fs.read(fh(), at, len as u32).await, |got| {
                    (got[..] != s.read[at as usize..][..len]).then(|| format!("{} bytes, not the file's", got.len()))
                })
            }
            Act::Readlink => answer(d.readlink("link").await, |t| (t != TARGET).then(|| format!("the target {t:?}"))),
            _ => unreachable!("{act}"),
        }
    }

    /// Plays row `n`: what the faulted call did, then what finishing did,
    /// each with what the server held then.
    async fn play(&self, n: usize, act: Act, at: &At) -> (Outcome, Outcome) {
        let d = self.driver(act);
        let s = self.set_up(&d, n, act).await;
        let (op, nth) = target(act, self.blocks, self.name == "Pithos");
        d.store().inject(op, nth, at.fault());
        let answer = self.call(&d, &s, act, false).await;
        let calls = d.store().calls(op);
        assert!(calls >= nth, "row {n} ({act}, {at}): the fault met no call ({calls} calls of {op:?})");
        let first = Outcome { answer, server: self.observe(act, &s).await };
        d.store().heal();
        // Where nothing landed, the same call again must work; where it
        // landed, `Fs` must now show it.
        let answer = if act.is_commit() || first.server == State::Old || act.is_read() {
            self.call(&d, &s, act, true).await
        } else {
            Answer::Ok
        };
        let mut then = Outcome { answer, server: self.observe(act, &s).await };
        if let Some(wrong) = self.view_differs(&d, act, &s, &then.server).await {
            then.server = State::Mix(format!("Fs shows {wrong}"));
        }
        if let Some(fh) = s.fh.filter(|_| act.is_read()) {
            let _ = d.release(fh).await;
        }
        (first, then)
    }

    /// What the server holds for a row's objects.
    async fn observe(&self, act: Act, s: &Scene) -> State {
        let copies: Vec<String> =
            self.names(&format!("{}/", s.dir)).await.into_iter().filter(|n| n.contains(".conflict-")).collect();
        let either = |is_old: bool, is_new: bool, what: String| match (is_old, is_new) {
            (true, false) => State::Old,
            (false, true) => State::New,
            _ => State::Mix(what),
        };
        if act.is_commit() {
            let (old, new) = if act == Act::CommitNew { (None, &s.small) } else { (Some(&s.old), &s.new) };
            let here = self.get(&s.file).await;
            let state = match &here {
                h if h.as_ref() == old => State::Old,
                Some(h) if h == new => State::New,
                None => State::Mix("the file is gone".into()),
                Some(h) => State::Mix(format!("{} bytes, neither old nor new", h.len())),
            };
            return match (state, copies.as_slice()) {
                (s, []) => s,
                (State::Old, [copy]) if self.get(copy).await.as_ref() == Some(new) => State::Conflict,
                (s, more) => State::Mix(format!("{s} and {} conflict copies", more.len())),
            };
        }
        if !copies.is_empty() {
            return State::Mix(format!("conflict copies {copies:?}"));
        }
        let meta = |key: &'static str| async move { self.info(&s.file).await.and_then(|i| i.meta.get(key).cloned()) };
        match act {
            Act::Chmod => {
                let m = meta("posix-mode").await;
                either(m.is_none(), m.as_deref() == Some("600"), format!("posix-mode {m:?}"))
            }
            Act::Utimes => {
                let t = meta("posix-mtime").await;
                let set = t.as_deref().and_then(|t| t.parse::<f64>().ok()) == Some(MTIME);
                either(t.is_none(), set, format!("posix-mtime {t:?}"))
            }
            Act::Setxattr => {
                let c = meta("color").await;
                either(c.is_none(), c.as_deref() == Some("blue"), format!("color {c:?}"))
            }
            Act::MoveFile => {
                let (f, g) = (self.get(&s.file).await, self.get(&s.at("g.bin")).await);
                let whole = |x: &Option<Vec<u8>>| x.as_ref() == Some(&s.small);
                let what = format!("at f.bin: {}, at g.bin: {}", f.is_some(), g.is_some());
                either(whole(&f) && g.is_none(), f.is_none() && whole(&g), what)
            }
            Act::MoveFolder => {
                let names = self.names(&format!("{}/", s.dir)).await;
                let under = |a: &str| {
                    let mut v: Vec<String> =
                        names.iter().filter_map(|n| n.strip_prefix(&s.at(a))).map(str::to_string).collect();
                    v.sort();
                    v
                };
                let (a, b) = (under("a"), under("b"));
                let whole = ["", "/x", "/y"].map(String::from).to_vec();
                let x = self.get(&s.at(if a.is_empty() { "b/x" } else { "a/x" })).await;
                if x.as_ref() != Some(&s.small) {
                    return State::Mix("x is not whole".into());
                }
                either(
                    a == whole && b.is_empty(),
                    a.is_empty() && b == whole,
                    format!("under a: {a:?}, under b: {b:?}"),
                )
            }
            Act::Unlink => {
                let f = self.get(&s.file).await;
                either(f.as_ref() == Some(&s.small), f.is_none(), "the file is not whole".into())
            }
            Act::Rmdir => {
                let e = self.info(&s.at("e")).await;
                either(e.is_some(), e.is_none(), String::new())
            }
            Act::Mkdir => {
                let k = self.info(&s.at("k")).await;
                let folder = k.as_ref().is_some_and(|k| is_directory_type(&k.content_type));
                either(k.is_none(), folder, format!("k: {:?}", k.map(|k| k.content_type)))
            }
            Act::Symlink => {
                let l = self.get(&s.at("l")).await;
                either(l.is_none(), l.as_deref() == Some(TARGET.as_bytes()), format!("target {l:?}"))
            }
            _ => State::Same,
        }
    }

    /// What `Fs` shows that the server does not hold (None: they agree).
    async fn view_differs(&self, d: &Driver<S>, act: Act, s: &Scene, state: &State) -> Option<String> {
        let new = *state == State::New;
        match act {
            _ if !matches!(state, State::Old | State::New | State::Conflict) => None,
            _ if act.is_commit() => {
                let shown = d.get(&s.file).await;
                (shown.as_ref().ok() != self.get(&s.file).await.as_ref()).then(|| "other content".into())
            }
            Act::Chmod => {
                let mode = d.mode(&s.file).await;
                (mode != Ok(new.then_some(0o600))).then(|| format!("mode {mode:?}"))
            }
            Act::Utimes => {
                let t = match d.lookup(&s.file).await {
                    Ok(ino) => d.fs.getattr(ino).await.map(|a| a.mtime.as_secs_f64()),
                    Err(e) => Err(e),
                };
                (new && t != Ok(MTIME)).then(|| format!("mtime {t:?}"))
            }
            Act::Setxattr => {
                let v = d.getxattr(&s.file, "user.color").await;
                let want = if new { Ok(b"blue".to_vec()) } else { Err(Errno::NODATA) };
                (v != want).then(|| format!("user.color {v:?}"))
            }
            Act::MoveFile => {
                let (f, g) = (d.lookup(&s.file).await.is_ok(), d.get(&s.at("g.bin")).await);
                (f || g.as_ref() != Ok(&s.small)).then(|| format!("f.bin: {f}, g.bin: {:?}", g.map(|g| g.len())))
            }
            Act::MoveFolder => {
                let (a, b) = (d.lookup(&s.at("a")).await.is_ok(), d.ls(&s.at("b")).await);
                (a || b != Ok(vec!["x".to_string(), "y".to_string()])).then(|| format!("a: {a}, b: {b:?}"))
            }
            Act::Unlink => d.lookup(&s.file).await.is_ok().then(|| "the file still".into()),
            Act::Rmdir => d.lookup(&s.at("e")).await.is_ok().then(|| "the folder still".into()),
            Act::Mkdir => d.ls(&s.at("k")).await.err().map(|e| format!("ls k: {e:?}")),
            Act::Symlink => {
                let t = d.readlink(&s.at("l")).await;
                (t.as_deref() != Ok(TARGET)).then(|| format!("readlink: {t:?}"))
            }
            _ => None,
        }
    }

    /// Plays every row this store has (None: not one of its calls).
    async fn run(&self, table: &[Row]) -> Vec<Option<(Outcome, Outcome)>> {
        self.prepare().await;
        let pithos = self.name == "Pithos";
        let mut played: Vec<(usize, Option<(Outcome, Outcome)>)> = futures_util::stream::iter(table.iter().enumerate())
            .map(|(n, row)| async move {
                let expected = if pithos { &row.pithos } else { &row.swift };
                (n, if expected.is_some() { Some(self.play(n, row.act, &row.at).await) } else { None })
            })
            .buffer_unordered(PARALLEL_ROWS)
            .collect()
            .await;
        played.sort_by_key(|(n, _)| *n);
        played.into_iter().map(|(_, p)| p).collect()
    }
}

/// What finishing a row must give, after the call gave `first`: the
/// finishing call works, and the server holds the new state (or, after a
/// conflict, still the old one with our copy beside it).
fn finished(first: &Outcome) -> Outcome {
    ok(if first.server == State::Conflict { State::Conflict } else { State::New })
}

/// Prints the matrix (`--nocapture`) and fails on every row whose outcome
/// differs from the table.
fn report(store: &str, table: &[Row], played: &[Option<(Outcome, Outcome)>], pithos: bool) {
    let mut wrong = Vec::new();
    println!("\nThe fault matrix over {store}: operation × position → outcome (→ after healing and finishing)\n");
    println!("| {:<34} | {:<22} | {:<40} |", "store operation", "fault", "outcome");
    println!("|{:-<36}|{:-<24}|{:-<42}|", "", "", "");
    for (n, (row, got)) in table.iter().zip(played).enumerate() {
        let Some((first, then)) = got else { continue };
        let want = if pithos { row.pithos.as_ref() } else { row.swift.as_ref() };
        let want = want.expect("a row played has an expected outcome");
        let want_then = if row.act.is_read() { ok(State::Same) } else { finished(want) };
        let good = first == want && *then == want_then;
        let cell = format!("{first} → {then}{}", if good { "" } else { "  ✗" });
        println!("| {:<34} | {:<22} | {:<40} |", row.act.to_string(), row.at.to_string(), cell);
        if !good {
            wrong.push(format!("row {n}: {} {}: want {want} → {want_then}, got {first} → {then}", row.act, row.at));
        }
    }
    assert!(wrong.is_empty(), "{} rows of the {store} matrix differ:\n{}", wrong.len(), wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_over_pithos() {
    let tc = cloud().await;
    let world = World {
        name: "Pithos",
        client: alice(&tc),
        container: "pithos".to_string(),
        make: PithosStore::new,
        edit: (4 * BS, BS),
        read_len: 4 * BS + 1000,
        blocks: 5,
    };
    let table = rows();
    let played = world.run(&table).await;
    report("Pithos (the local cloud)", &table, &played, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_over_swift() {
    let Some(sw) = SwiftBox::new("matrix").await else { return };
    let world = World {
        name: "Swift",
        client: sw.client.clone(),
        container: sw.client.container().to_string(),
        make: SwiftStore::new,
        // One PUT carries the whole object: a small file shows every outcome.
        edit: (100_000, 0),
        read_len: 2 * PLAIN_BLOCK_SIZE as usize + 1000,
        blocks: 3,
    };
    let table = rows();
    let played = world.run(&table).await;
    sw.remove().await;
    report("Swift (a real OpenStack Swift)", &table, &played, false);
}
