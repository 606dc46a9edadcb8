//! Faults through a real mount: a fault-injecting proxy (`harness::faults`)
//! between a `pithosfs mount` and a real `pithosfs serve`, ordinary programs
//! (cp, tar, git, sqlite3) as the mount's users, and the server's content
//! read back over HTTP, not through the mount, to check that it matches what
//! the programs were told.
//!
//! - Under 5% injected faults of each kind, every workload finishes with
//!   data identical to its source, or reports an error to its program; the
//!   server then holds every file whose close returned 0, with its sha256,
//!   nothing else (no conflict copy), and nothing mixed. Retries absorb 5%
//!   (a failure that reaches a program needs six faults in a row on one
//!   request), so each workload must also have finished.
//! - A reply lost after the server did the work (a commit, a move, a delete,
//!   a folder marker, a metadata POST) is not an error to the program.
//! - `kill -9` of the mount during a large write and during a commit: every
//!   file is then its old or its new version, and the next mount starts
//!   cleanly (no stale lock, no spill files, bounded log files).
//! - `kill -9` of the server during writes, then a restart on the same data
//!   directory and port: `EIO` while it is down, and the same mount reads and
//!   writes again once it is back.
//!
//! The proxy prints its seed; `PITHOSFS_FAULT_SEED=N` repeats a run's choices.
//! Each workload prints its rows of the fault matrix (run with --nocapture).
//! A first test checks that the proxy does to a plain client what each kind
//! of fault says. Needs what tests/mount.rs needs (FUSE, git, sqlite3, perl)
//! and `flock` (util-linux).

mod harness;

use harness::faults::{seed_from_env, Counts, Fault, FaultProxy, Held, Stage};
use harness::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The client's deadlines, shrunk so that a stalled request costs about a
/// second instead of a minute (a stall outlasts `response_timeout`).
const LIMITS: &str = "response_timeout=0.5,first_backoff=0.05,max_backoff=0.5,retry_deadline=30";
/// 5% of requests.
const RATE: u64 = 50_000;
const STALL: Duration = Duration::from_millis(800);

// ---------------------------------------------------------------------------
// the world: a cloud, the proxy in front of it, mounts through the proxy
// ---------------------------------------------------------------------------

struct Faulty {
    env: Env,
    proxy: FaultProxy,
}

impl Faulty {
    fn new() -> Faulty {
        let env = Env::new();
        let proxy = FaultProxy::start(&env.cloud.url, seed_from_env());
        Faulty { env, proxy }
    }

    /// Mounts the account at `$M` through the proxy.
    fn mount(&mut self, args: &[&str]) {
        self.mount_at("mnt", args);
    }

    /// Mounts the account at `$R/<name>` through the proxy.
    fn mount_at(&mut self, name: &str, args: &[&str]) {
        let log = self.env.root.join(format!("{name}.{}.log", self.env.mounts.len()));
        let identity = self.proxy.identity();
        let envs = [("PITHOSFS_URL", identity.as_str()), ("PITHOSFS_TOKEN", TOKEN), ("PITHOSFS_HTTP_LIMITS", LIMITS)];
        self.env.mounts.push(Mount::start(&self.env.root.join(name), &log, args, &envs));
    }

    /// Runs `script` with faults of `kind` at 5%; its output and what the proxy did meanwhile.
    fn under(&self, workload: &str, kind: Fault, script: &str) -> (Output, Counts) {
        let before = self.proxy.counts();
        let started = std::time::Instant::now();
        self.proxy.inject(RATE, &[kind], STALL);
        let out = self.env.run(script);
        self.proxy.calm();
        eprintln!("{workload} under {}: {:.1} s", kind.name(), started.elapsed().as_secs_f64());
        (out, self.proxy.counts() - before)
    }

    fn journal_tail(&self) -> String {
        let j = self.proxy.journal();
        let from = j.len().saturating_sub(30);
        format!("seed {}; last faults injected:\n{}", self.proxy.seed, j[from..].join("\n"))
    }
}

/// One row of the fault matrix.
struct Row {
    workload: &'static str,
    fault: Fault,
    counts: Counts,
    outcome: String,
}

fn print_matrix(seed: u64, rows: &[Row]) {
    let mut s = format!("\nfault matrix (seed {seed}, 5% of requests):\n");
    s += "| workload | fault | injected / requests | outcome |\n|---|---|---|---|\n";
    for r in rows {
        s += &format!(
            "| {} | {} | {} / {} | {} |\n",
            r.workload,
            r.fault.name(),
            r.counts.of(r.fault),
            r.counts.exposed,
            r.outcome
        );
    }
    println!("{s}");
}

fn slug(f: Fault) -> String {
    f.name().replace(" + ", "-").replace(' ', "-").to_lowercase()
}

// ---------------------------------------------------------------------------
// what the server holds, over HTTP
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Obj {
    content_type: String,
    sha: String,
    body: Vec<u8>,
}

impl Obj {
    fn is_dir(&self) -> bool {
        self.content_type.starts_with("application/directory") || self.content_type.starts_with("application/folder")
    }
    fn is_symlink(&self) -> bool {
        self.content_type.starts_with("inode/symlink")
    }
}

/// Every object of `container` under `prefix` (names relative to it), read whole.
fn server_tree(cloud: &Cloud, container: &str, prefix: &str) -> BTreeMap<String, Obj> {
    let url = format!(
        "{}?format=json&prefix={}",
        cloud.container_url(container),
        percent_encoding::utf8_percent_encode(prefix, NAME_SET)
    );
    let r = http("GET", &url, &[], None);
    if r.status == 204 {
        return BTreeMap::new();
    }
    assert_eq!(r.status, 200, "list {container}/{prefix}");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut out = BTreeMap::new();
    for o in v.as_array().expect("a listing") {
        let name = o["name"].as_str().expect("name");
        let body = cloud.get(container, name);
        let rel = name.strip_prefix(prefix).unwrap_or(name).to_string();
        let content_type = o["content_type"].as_str().unwrap_or("").to_string();
        out.insert(rel, Obj { content_type, sha: sha256(&body), body });
    }
    out
}

/// A local tree: files (with sha256), symlinks (with targets) and folders, by relative path.
#[derive(Default, Debug)]
struct Tree {
    files: BTreeMap<String, String>,
    links: BTreeMap<String, String>,
    dirs: BTreeSet<String>,
}

fn local_tree(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, t: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                t.links.insert(rel, std::fs::read_link(&p).unwrap().to_string_lossy().into_owned());
            } else if meta.is_dir() {
                t.dirs.insert(rel);
                walk(root, &p, t);
            } else {
                t.files.insert(rel, sha256_file(&p));
            }
        }
    }
    let mut t = Tree::default();
    walk(root, root, &mut t);
    t
}

/// Whether the program's error output names `dest/rel` or a folder above it.
fn reported(stderr: &str, dest: &str, rel: &str) -> bool {
    let mut path = rel.to_string();
    loop {
        if stderr.contains(&format!("{dest}/{path}")) {
            return true;
        }
        match path.rfind('/') {
            Some(at) => path.truncate(at),
            None => return false,
        }
    }
}

/// Checks a copy of `src` that a program made into `container/prefix`: every
/// file the program did not report is there with its sha256; a reported one
/// is there whole or not at all; nothing else is there. Returns the problems.
fn check_copy(cloud: &Cloud, prefix: &str, src: &Tree, ok: bool, stderr: &str, dest: &str) -> Vec<String> {
    let held = server_tree(cloud, "pithos", prefix);
    let mut problems = Vec::new();
    for (rel, sha) in &src.files {
        match held.get(rel) {
            Some(o) if o.sha == *sha && !o.is_dir() && !o.is_symlink() => {}
            Some(o) => problems.push(format!("{rel}: the server holds {} ({}), not the source", o.sha, o.content_type)),
            None if !ok && reported(stderr, dest, rel) => {}
            None => problems.push(format!("{rel}: missing, and the program was not told")),
        }
    }
    for (rel, target) in &src.links {
        match held.get(rel) {
            Some(o) if o.is_symlink() && o.body == target.as_bytes() => {}
            Some(o) => problems.push(format!("{rel}: a symlink to {target}, held as {:?}", o.content_type)),
            None if !ok && reported(stderr, dest, rel) => {}
            None => problems.push(format!("{rel}: symlink missing, and the program was not told")),
        }
    }
    for rel in &src.dirs {
        // A folder is a marker, or implicit in the names under it.
        let there = held.get(rel).is_some_and(Obj::is_dir) || held.keys().any(|k| k.starts_with(&format!("{rel}/")));
        let excused = !ok && reported(stderr, dest, rel);
        if !there && !excused {
            problems.push(format!("{rel}/: folder missing"));
        }
    }
    for (rel, o) in &held {
        let known =
            src.files.contains_key(rel) || src.links.contains_key(rel) || (o.is_dir() && src.dirs.contains(rel));
        if !known {
            problems.push(format!(
                "{rel}: on the server ({}, {} bytes) but in no source",
                o.content_type,
                o.body.len()
            ));
        }
    }
    problems
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The outcome column: "ok" or the program's failure in short.
fn outcome(out: &Output, what: &str) -> String {
    if out.status.success() {
        format!("ok: {what}")
    } else {
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or("").chars().take(80).collect::<String>();
        format!("error reported ({}): {first}", out.status)
    }
}

// ---------------------------------------------------------------------------
// workloads under 5% faults
// ---------------------------------------------------------------------------

/// A small tree: 40 small files in nested folders (some empty), a 3-block
/// file, a file of exactly one 4 MiB block, a name with a space, an empty folder.
fn small_tree(root: &Path, seed: u64) {
    for d in 0..4 {
        for k in 0..10 {
            let i = (d * 10 + k) as u64;
            let size = if k % 5 == 0 { 0 } else { (random_bytes(2, seed + i)[0] as usize) * 53 + k };
            write_file(&root.join(format!("d{d}/s{}/f{k}.dat", k % 2)), &random_bytes(size, seed * 1000 + i));
        }
    }
    write_file(&root.join("big/nine.bin"), &random_bytes(9 * MIB + 3, seed + 101));
    write_file(&root.join("big/four.bin"), &random_bytes(4 * MIB, seed + 102));
    write_file(&root.join("with space.txt"), format!("seed {seed}\n").as_bytes());
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
}

/// `cp -r` of a tree into the mount under each kind of fault, and out of
/// it again through a second mount (whose cache holds none of it: listings,
/// hashmaps and blocks come from the server under the same faults).
#[test]
fn cp_r_under_faults() {
    let mut w = Faulty::new();
    w.mount(&[]);
    w.mount_at("rd", &[]);
    let mut rows = Vec::new();
    for (round, kind) in Fault::ALL.into_iter().enumerate() {
        let src = w.env.l().join(format!("cp-src-{round}"));
        small_tree(&src, 300 + round as u64);
        let tree = local_tree(&src);
        let name = format!("cp-{}", slug(kind));
        let dest = w.env.m().join("pithos").join(&name);
        let (out, counts) = w.under("cp -r", kind, &format!(r#"cp -r "{}" "{}""#, src.display(), dest.display()));
        let stderr = text(&out.stderr);
        let problems = check_copy_at(&w.env.cloud, &name, &tree, &out, &dest);
        assert!(
            problems.is_empty(),
            "cp -r under {kind:?}:\n{}\n{stderr}\n{}\n{}",
            problems.join("\n"),
            w.journal_tail(),
            w.env.logs()
        );
        assert!(counts.of(kind) > 0, "no {kind:?} injected in {} requests", counts.exposed);
        if out.status.success() {
            // The mount shows it too, with faults off.
            w.env.sh(&format!(r#"diff -r "{}" "{}""#, src.display(), dest.display()));
        }
        rows.push(Row {
            workload: "cp -r in",
            fault: kind,
            counts,
            outcome: outcome(&out, &format!("{} files match", tree.files.len())),
        });

        // The second mount learns of the new folder when its cached listing
        // of the container (1 s) runs out; wait for that with faults off, so
        // the copy out starts from a name it can see, as a user would.
        w.env.sh(&format!(
            r#"for i in $(seq 50); do [ -d "$R/rd/pithos/{name}" ] && exit 0; sleep 0.1; done; echo "{name} never appeared in the second mount" >&2; exit 1"#
        ));
        let back = w.env.l().join(format!("cp-back-{round}"));
        let read = format!(r#"cp -r "$R/rd/pithos/{name}" "{}""#, back.display());
        let (out, counts) = w.under("cp -r out", kind, &read);
        assert!(counts.of(kind) > 0, "no {kind:?} injected in {} requests", counts.exposed);
        // What cp did not report is the source's, byte for byte.
        let got = local_tree(&back);
        let stderr = text(&out.stderr);
        for (rel, sha) in &tree.files {
            let excused = !out.status.success() && reported(&stderr, &name, rel);
            assert!(
                got.files.get(rel) == Some(sha) || excused,
                "cp -r out under {kind:?}: {rel} is not the source's\n{stderr}\n{}\n{}",
                w.journal_tail(),
                w.env.logs()
            );
        }
        assert_eq!(got.dirs, tree.dirs, "cp -r out under {kind:?}: folders");
        rows.push(Row {
            workload: "cp -r out",
            fault: kind,
            counts,
            outcome: outcome(&out, &format!("{} files read back match", got.files.len())),
        });
    }
    print_matrix(w.proxy.seed, &rows);
    assert_all_finished(&rows);
    w.env.unmount();
}

fn check_copy_at(cloud: &Cloud, name: &str, tree: &Tree, out: &Output, dest: &Path) -> Vec<String> {
    check_copy(cloud, &format!("{name}/"), tree, out.status.success(), &text(&out.stderr), &dest.to_string_lossy())
}

/// Retries make a failure that reaches a program vanishingly rare at 5%
/// (six faults in a row on one request): each workload must have finished.
fn assert_all_finished(rows: &[Row]) {
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.outcome.starts_with("ok"))
        .map(|r| format!("{} under {}: {}", r.workload, r.fault.name(), r.outcome))
        .collect();
    assert!(failed.is_empty(), "workloads failed under faults that retries absorb:\n{}", failed.join("\n"));
}

/// Names, types, modes and mtimes (whole seconds) of a tree, as `find` sees them.
fn tree_meta(env: &Env, dir: &Path) -> String {
    env.sh(&format!(r#"cd "{}"; find . -printf '%P %y %m %TY-%Tm-%Td %TH:%TM:%.2TS\n' | sort"#, dir.display()))
}

/// `tar x` of an archive into the mount under each kind of fault: contents,
/// symlinks, modes and mtimes.
#[test]
fn tar_x_under_faults() {
    let mut w = Faulty::new();
    w.mount(&[]);
    let mut rows = Vec::new();
    for (round, kind) in Fault::ALL.into_iter().enumerate() {
        let src = w.env.l().join(format!("tar-src-{round}")).join("src");
        small_tree(&src, 600 + round as u64);
        w.env.sh(&format!(
            r#"cd "{}"; chmod 750 d0; chmod 600 d1/s1/f1.dat; chmod 755 "with space.txt"; ln -s d0/s0/f2.dat link
               find . -exec touch -h -d '2020-05-06 07:08:09 UTC' {{}} +; touch -d '2021-01-01 00:00:00 UTC' d2/s1/f3.dat
               tar cf ../in.tar -C .. src"#,
            src.display()
        ));
        let tree = local_tree(&src);
        let name = format!("tar-{}", slug(kind));
        let dest = w.env.m().join("pithos").join(&name);
        std::fs::create_dir(&dest).unwrap();
        let (out, counts) =
            w.under("tar x", kind, &format!(r#"tar xf "{}/../in.tar" -C "{}""#, src.display(), dest.display()));
        let problems = check_copy_at(&w.env.cloud, &format!("{name}/src"), &tree, &out, &dest.join("src"));
        assert!(
            problems.is_empty(),
            "tar x under {kind:?}:\n{}\n{}\n{}\n{}",
            problems.join("\n"),
            text(&out.stderr),
            w.journal_tail(),
            w.env.logs()
        );
        assert!(counts.of(kind) > 0, "no {kind:?} injected in {} requests", counts.exposed);
        if out.status.success() {
            w.env.sh(&format!(r#"diff -r "{}" "{}/src""#, src.display(), dest.display()));
            assert_eq!(tree_meta(&w.env, &dest.join("src")), tree_meta(&w.env, &src), "modes or mtimes under {kind:?}");
        }
        let what = format!("{} files, {} folders, modes and mtimes match", tree.files.len(), tree.dirs.len());
        rows.push(Row { workload: "tar x", fault: kind, counts, outcome: outcome(&out, &what) });
    }
    print_matrix(w.proxy.seed, &rows);
    assert_all_finished(&rows);
    w.env.unmount();
}

/// Copies what the server holds under `container/prefix` into `dir` (files,
/// symlinks, folder markers): a program's view of it without the mount.
fn download(cloud: &Cloud, prefix: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (rel, o) in server_tree(cloud, "pithos", prefix) {
        let p = dir.join(&rel);
        if o.is_dir() {
            std::fs::create_dir_all(&p).unwrap();
        } else if o.is_symlink() {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(text(&o.body), &p).unwrap();
        } else {
            write_file(&p, &o.body);
        }
    }
}

const GIT: &str = "git -c user.name=Tester -c user.email=tester@example.org -c init.defaultBranch=main";

/// `git add` and `git commit` (with a `git mv`) in a repository in the
/// mount under each kind of fault; the repository the server then holds,
/// taken out over HTTP, is whole (`git fsck`), has every commit git
/// reported, and checks out to the source.
#[test]
fn git_commit_under_faults() {
    require("git", "git");
    let mut w = Faulty::new();
    w.mount(&[]);
    let work = w.env.l().join("git-src");
    write_file(&work.join("README"), b"hello\n");
    w.env.sh(&format!(
        r#"cd "$M/pithos"; {GIT} init -q repo; cp "{}/README" repo/; cd repo; {GIT} add -A; {GIT} commit -q -m start"#,
        work.display()
    ));
    let mut subjects = vec!["start".to_string()];
    let mut rows = Vec::new();
    for (round, kind) in Fault::ALL.into_iter().enumerate() {
        // This round's change, made in the local source first.
        for k in 0..6 {
            let size = 200 + 997 * k + 31 * round;
            write_file(
                &work.join(format!("src/r{round}/f{k}.txt")),
                &random_bytes(size, 900 + (round * 10 + k) as u64),
            );
        }
        write_file(&work.join("big.bin"), &random_bytes(5 * MIB + round, 950 + round as u64));
        std::fs::OpenOptions::new()
            .append(true)
            .open(work.join("README"))
            .unwrap()
            .write_all(format!("round {round}\n").as_bytes())
            .unwrap();
        let moved = if round > 0 {
            std::fs::create_dir_all(work.join("moved")).unwrap();
            std::fs::rename(
                work.join(format!("src/r{}/f0.txt", round - 1)),
                work.join(format!("moved/r{}.txt", round - 1)),
            )
            .unwrap();
            format!("mkdir -p moved; {GIT} mv src/r{p}/f0.txt moved/r{p}.txt;", p = round - 1)
        } else {
            String::new()
        };
        let subject = format!("round {round}: {}", kind.name());
        let script = format!(
            r#"cd "$M/pithos/repo"; {moved}
               mkdir -p src; cp -r "{w}/src/r{round}" src/; cp "{w}/big.bin" "{w}/README" .
               {GIT} add -A; {GIT} commit -q -m "{subject}""#,
            w = work.display()
        );
        let (out, counts) = w.under("git commit", kind, &script);
        assert!(counts.of(kind) > 0, "no {kind:?} injected in {} requests", counts.exposed);
        // Retries absorb 5% of faults (see assert_all_finished); a failure
        // here would leave the next rounds nothing sound to build on.
        assert!(
            out.status.success(),
            "git under {kind:?} failed ({}):\n{}\n{}\n{}",
            out.status,
            text(&out.stderr),
            w.journal_tail(),
            w.env.logs()
        );
        subjects.insert(0, subject);
        // The repository the server holds, as a program elsewhere would get it.
        let copy = w.env.l().join(format!("git-check-{round}"));
        download(&w.env.cloud, "repo/", &copy);
        let check = w.env.run(&format!(
            r#"cd "{c}"; git fsck --full --no-progress --no-dangling; git log --format=%s; test -z "$(git status --porcelain)"; diff -r -x .git "{w}" .; "#,
            c = copy.display(),
            w = work.display()
        ));
        let said = text(&check.stdout);
        assert!(
            check.status.success() && said == subjects.join("\n") + "\n",
            "git under {kind:?}: the repository on the server is not what git was told\n\
             check ({}): {said}\n{}\n{}\n{}",
            check.status,
            text(&check.stderr),
            w.journal_tail(),
            w.env.logs()
        );
        rows.push(Row {
            workload: "git commit",
            fault: kind,
            counts,
            outcome: outcome(&out, "fsck, log and checkout match"),
        });
    }
    print_matrix(w.proxy.seed, &rows);
    assert_all_finished(&rows);
    w.env.unmount();
}

// ---------------------------------------------------------------------------
// one request spoiled on purpose: a reply lost after the server did the work
// ---------------------------------------------------------------------------

/// Whether a request is `method` on object `name` of container `pithos`.
fn on_object(method: &str, name: &str) -> impl Fn(&str, &str, &str) -> bool + Send + Sync + 'static {
    let (method, tail) = (method.to_string(), format!("/pithos/{name}"));
    move |m, p, _| m == method && p.ends_with(&tail)
}

/// The server did what was asked but its reply was lost (cut, or the
/// connection reset): the client's retry then meets its own work done (a
/// version already there, a source already moved, an object already
/// deleted). The program must see success, and the server hold exactly that.
#[test]
fn a_lost_reply_is_not_an_error() {
    let mut w = Faulty::new();
    let old = random_bytes(9 * MIB + 5, 71);
    w.env.cloud.put("pithos", "lost/big.bin", &old);
    w.mount(&[]);
    let (proxy, cloud) = (&w.proxy, &w.env.cloud);

    // A new file: its one PUT (If-None-Match: *) landed, the reply was cut.
    let spoiled = proxy.spoil(on_object("PUT", "lost/new.txt"), Fault::CutReply);
    w.env.sh(r#"printf 'new\n' > "$M/pithos/lost/new.txt""#);
    assert_eq!(spoiled.get(), 1);
    assert_eq!(cloud.get("pithos", "lost/new.txt"), b"new\n");

    // An edit of a 3-block file: the second hashmap PUT (If-Match) landed, the connection was reset.
    let n = Arc::new(AtomicU64::new(0));
    let second = {
        let n = n.clone();
        move |m: &str, p: &str, q: &str| {
            m == "PUT"
                && p.ends_with("/pithos/lost/big.bin")
                && q.contains("hashmap")
                && n.fetch_add(1, Ordering::SeqCst) == 1
        }
    };
    let spoiled = proxy.spoil(second, Fault::Reset);
    let patch = random_bytes(4096, 72);
    write_file(&w.env.l().join("patch"), &patch);
    w.env.sh(r#"dd if="$L/patch" of="$M/pithos/lost/big.bin" bs=4096 seek=1500 conv=notrunc status=none"#);
    assert_eq!(spoiled.get(), 1, "the second hashmap PUT was not seen");
    let mut new = old.clone();
    new[1500 * 4096..1501 * 4096].copy_from_slice(&patch);
    assert_eq!(sha256(&cloud.get("pithos", "lost/big.bin")), sha256(&new));

    // A rename: the move landed, the reply was cut.
    let spoiled = proxy.spoil(on_object("PUT", "lost/renamed.txt"), Fault::CutReply);
    w.env.sh(r#"mv "$M/pithos/lost/new.txt" "$M/pithos/lost/renamed.txt""#);
    assert_eq!(spoiled.get(), 1);
    assert_eq!(cloud.get("pithos", "lost/renamed.txt"), b"new\n");

    // A folder and a mode: the marker's PUT and the metadata POST landed, the connections were reset.
    let marker = proxy.spoil(on_object("PUT", "lost/dir"), Fault::Reset);
    let meta = proxy.spoil(on_object("POST", "lost/renamed.txt"), Fault::Reset);
    w.env.sh(r#"mkdir "$M/pithos/lost/dir"; chmod 600 "$M/pithos/lost/renamed.txt""#);
    assert_eq!((marker.get(), meta.get()), (1, 1));

    // An unlink: the delete landed, the reply was cut.
    let spoiled = proxy.spoil(on_object("DELETE", "lost/renamed.txt"), Fault::CutReply);
    w.env.sh(r#"rm "$M/pithos/lost/renamed.txt""#);
    assert_eq!(spoiled.get(), 1);

    // A folder rename: the one request that moves it all landed, the reply was cut.
    w.env.sh(r#"mkdir -p "$M/pithos/lost/tree/sub"; echo one > "$M/pithos/lost/tree/sub/one.txt""#);
    let spoiled = proxy.spoil(on_object("PUT", "lost/moved-tree"), Fault::CutReply);
    w.env.sh(r#"mv "$M/pithos/lost/tree" "$M/pithos/lost/moved-tree"; test "$(cat "$M/pithos/lost/moved-tree/sub/one.txt")" = one"#);
    assert_eq!(spoiled.get(), 1);

    let held = server_tree(cloud, "pithos", "lost/");
    let names: Vec<&str> = held.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["big.bin", "dir", "moved-tree", "moved-tree/sub", "moved-tree/sub/one.txt"],
        "no conflict copies, nothing left behind"
    );
    assert!(held["dir"].is_dir());
    w.env.sh(r#"test "$(stat -c %a "$M/pithos/lost/dir")" = 755; test ! -e "$M/pithos/lost/renamed.txt""#);
    w.env.unmount();
}

/// Transactions of an SQLite database in the mount (each its own `sqlite3`
/// run: journal, writes, fsyncs, the journal's deletion) under each kind of
/// fault; the database the server then holds, taken out over HTTP, is
/// whole and holds exactly the transactions sqlite3 reported committed.
#[test]
fn sqlite_under_faults() {
    require("sqlite3", "sqlite3");
    let mut w = Faulty::new();
    w.mount(&[]);
    w.env.sh(r#"sqlite3 "$M/pithos/db.sqlite" 'create table t(id integer primary key, tag text not null, v text not null);'"#);
    let mut committed: BTreeMap<String, u32> = BTreeMap::new();
    let mut rows = Vec::new();
    for (round, kind) in Fault::ALL.into_iter().enumerate() {
        let script = format!(
            r#"for i in $(seq 1 15); do
                 if sqlite3 "$M/pithos/db.sqlite" "begin;
                      with recursive c(x) as (select 1 union all select x + 1 from c where x < 200)
                      insert into t(tag, v) select 'r{round}-' || $i, hex(randomblob(40)) from c;
                      update t set v = hex(randomblob(40)) where id % 7 = $i;
                      commit;"
                 then echo "ok r{round}-$i"; else echo "failed r{round}-$i"; fi
               done"#
        );
        let (out, counts) = w.under("sqlite3", kind, &script);
        assert!(out.status.success(), "the loop itself failed: {}", text(&out.stderr));
        assert!(counts.of(kind) > 0, "no {kind:?} injected in {} requests", counts.exposed);
        let said = text(&out.stdout);
        let mut failed = Vec::new();
        for line in said.lines() {
            match line.split_once(' ') {
                Some(("ok", tag)) => {
                    committed.insert(tag.to_string(), 200);
                }
                Some(("failed", tag)) => failed.push(tag.to_string()),
                _ => panic!("unexpected output {line:?}"),
            }
        }
        // The database the server holds (with its hot journal, if one is left).
        let copy = w.env.l().join(format!("sqlite-check-{round}"));
        std::fs::create_dir_all(&copy).unwrap();
        let held = server_tree(&w.env.cloud, "pithos", "db.sqlite");
        for (rel, o) in &held {
            write_file(&copy.join(format!("db.sqlite{rel}")), &o.body);
        }
        let query = "pragma integrity_check; select tag, count(*) from t group by tag order by tag;";
        let got = w.env.sh(&format!(r#"sqlite3 "{}/db.sqlite" "{query}""#, copy.display()));
        let mut lines = got.lines();
        assert_eq!(lines.next(), Some("ok"), "integrity of the database on the server under {kind:?}:\n{got}");
        let on_server: BTreeMap<String, u32> = lines
            .map(|l| {
                let (tag, n) = l.split_once('|').expect("tag|count");
                (tag.to_string(), n.parse().unwrap())
            })
            .collect();
        // A transaction reported failed may have landed (its commit went
        // through, a later step failed); then it is there whole.
        for tag in &failed {
            if let Some(n) = on_server.get(tag) {
                assert_eq!(*n, 200, "{tag}: a transaction half there");
                committed.insert(tag.clone(), 200);
            }
        }
        assert_eq!(
            on_server,
            committed,
            "under {kind:?} the server's database is not what sqlite3 was told\n{said}\n{}\n{}",
            w.journal_tail(),
            w.env.logs()
        );
        if failed.is_empty() {
            let names: Vec<&String> = held.keys().collect();
            assert_eq!(names, [""], "a journal left behind after committed transactions");
        }
        // The mount, faults off, agrees.
        assert_eq!(w.env.sh(&format!(r#"sqlite3 "$M/pithos/db.sqlite" "{query}""#)), got);
        let what = format!("{} transactions of 200 rows match", committed.len());
        let outcome = if failed.is_empty() {
            format!("ok: {what}")
        } else {
            format!("error reported for {}: {what}", failed.join(", "))
        };
        rows.push(Row { workload: "sqlite3", fault: kind, counts, outcome });
    }
    print_matrix(w.proxy.seed, &rows);
    assert_all_finished(&rows);
    w.env.unmount();
}

// ---------------------------------------------------------------------------
// kill -9 of the mount
// ---------------------------------------------------------------------------

/// `pithosfs mount` without `-f`, as users run it: a daemon that logs to
/// `$HOME/.cache/pithosfs`. The guard unmounts and kills it if a test fails.
struct Daemon {
    pid: u32,
    point: PathBuf,
}

impl Daemon {
    fn start(env: &Env, identity: &str, args: &[&str]) -> Daemon {
        let point = env.m();
        std::fs::create_dir_all(&point).unwrap();
        let out = Command::new(BIN)
            .arg("mount")
            .arg(&point)
            .args(args)
            .env("PITHOSFS_URL", identity)
            .env("PITHOSFS_TOKEN", TOKEN)
            .env("PITHOSFS_HTTP_LIMITS", LIMITS)
            .env("HOME", env.root.join("home"))
            .env_remove("XDG_CACHE_HOME")
            .env_remove("PITHOSFS_TOKEN_FILE")
            .env_remove("KAMAKI_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "pithosfs mount {args:?} failed:\n{}", text(&out.stderr));
        assert!(is_mounted(&point));
        let pid = daemon_of(&point).expect("the mount's daemon");
        Daemon { pid, point }
    }

    fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
    }

    fn kill_9(&self) {
        // SAFETY: kill(2) on the id of the daemon this test started.
        assert_eq!(unsafe { libc::kill(self.pid as i32, libc::SIGKILL) }, 0, "kill -9 {}", self.pid);
        wait_until("the killed mount to die", Duration::from_secs(10), || !self.alive());
    }

    /// `pithosfs unmount`; the daemon (if alive) ends.
    fn unmount(&self) {
        let out = Command::new(BIN).arg("unmount").arg(&self.point).output().unwrap();
        assert!(out.status.success(), "pithosfs unmount: {}", text(&out.stderr));
        assert!(!is_mounted(&self.point));
        wait_until("the mount's daemon to end", Duration::from_secs(30), || !self.alive());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if is_mounted(&self.point) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.point).stderr(Stdio::null()).status();
        }
        if self.alive() {
            // SAFETY: as in kill_9.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
    }
}

/// The id of the `pithosfs mount … --foreground` process serving `point`.
fn daemon_of(point: &Path) -> Option<u32> {
    let point = point.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).find(|pid| {
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"pithosfs"))
            && args.contains(&b"mount".as_slice())
            && args.contains(&point.as_bytes())
            && args.contains(&b"--foreground".as_slice())
    })
}

/// Files (not folders) under `dir`, recursively, by path.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// What a mount that died left: the cache dir holds only the disk tier's
/// blocks (64 hex digits) and its lock, no spill or temporary file; at most
/// `logs` daemon logs.
fn check_leftovers(env: &Env, cache: &Path, logs: usize) {
    let stray: Vec<PathBuf> = files_under(cache)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let block = p.parent() == Some(&cache.join("blocks")) && name.len() == 64;
            !(block || name == ".lock")
        })
        .collect();
    assert!(stray.is_empty(), "left in the cache dir: {stray:?}");
    // The disk tier's lock (a flock) went with the process that held it.
    let lock = cache.join("blocks/.lock");
    if lock.exists() {
        let free = Command::new("flock").arg("-n").arg(&lock).arg("true").status().expect("flock (util-linux)");
        assert!(free.success(), "{} is still locked", lock.display());
    }
    let log_dir = env.root.join("home/.cache/pithosfs");
    let found = files_under(&log_dir);
    assert!(found.len() <= logs, "{} files in {} (at most {logs} logs): {found:?}", found.len(), log_dir.display());
}

/// `kill -9` of the mount while a program writes a file larger than the
/// dirty-block bound (it spills): the server keeps the old version, the
/// writer is told, and the next mount on the same cache dir starts cleanly.
#[test]
fn kill_9_of_the_mount_during_a_large_write() {
    let env = Env::new();
    let old = random_bytes(6 * MIB + 1, 81);
    env.cloud.put("pithos", "big.bin", &old);
    env.sh(r#"head -c 96M /dev/urandom > "$L/new.bin""#);
    let cache = env.root.join("cache");
    let cache_arg = cache.to_string_lossy().into_owned();
    let args = ["--cache-dir", cache_arg.as_str()];
    let identity = env.cloud.identity();
    let daemon = Daemon::start(&env, &identity, &args);
    // A writer that holds the file open, past the 64 MiB bound, until told.
    let mut writer = Command::new("perl")
        .arg("-e")
        .arg(
            r#"open(my $o, ">", $ARGV[0]) or die "$!"; open(my $i, "<", $ARGV[1]) or die "$!";
               while (my $n = sysread($i, my $b, 1 << 20)) { syswrite($o, $b) == $n or die "write: $!" }
               print "written\n"; STDOUT->flush(); <STDIN>; close($o) or die "close: $!";"#,
        )
        .arg(env.m().join("pithos/big.bin"))
        .arg(env.l().join("new.bin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("perl");
    let mut said = String::new();
    BufReader::new(writer.stdout.take().unwrap()).read_line(&mut said).unwrap();
    assert_eq!(said, "written\n");
    let spill = cache.join("spill");
    let open: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    assert!(open.iter().any(|t| t.starts_with(&spill)), "no spill file open: {open:?}");
    let lock = cache.join("blocks/.lock");
    let free = Command::new("flock").arg("-n").arg(&lock).arg("true").status().expect("flock (util-linux)");
    assert!(!free.success(), "the running mount does not hold {}", lock.display());

    daemon.kill_9();
    let err = env.sh_fails(r#"ls "$M/pithos""#);
    let dead = ["Transport endpoint is not connected", "Software caused connection abort"];
    assert!(dead.iter().any(|d| err.contains(d)), "ls of a dead mount said: {err}");
    drop(writer.stdin.take());
    let out = writer.wait_with_output().unwrap();
    assert!(!out.status.success(), "the writer's close succeeded on a dead mount");
    assert!(text(&out.stderr).contains("close:"), "the writer failed elsewhere: {}", text(&out.stderr));
    eprintln!("the writer was told: {}", text(&out.stderr).trim());
    daemon.unmount();
    assert_eq!(sha256(&env.cloud.get("pithos", "big.bin")), sha256(&old), "not the old version");
    check_leftovers(&env, &cache, 1);

    // The next mount, on the same cache dir: the lock is free, the file is the old one, writes work.
    let daemon = Daemon::start(&env, &identity, &args);
    assert_eq!(env.sh(r#"sha256sum < "$M/pithos/big.bin" | cut -c1-64"#).trim(), sha256(&old));
    env.sh(r#"cp "$L/new.bin" "$M/pithos/big.bin""#);
    assert_eq!(sha256(&env.cloud.get("pithos", "big.bin")), sha256_file(&env.l().join("new.bin")));
    daemon.unmount();
    check_leftovers(&env, &cache, 2);
}

/// `kill -9` of the mount in the middle of a commit, at two places the
/// proxy holds: before the server has the new version (a block upload) and
/// after it has it (the reply to the last hashmap PUT). The program is told
/// its close failed either way; the server holds the old version in the
/// first case and the new one in the second, never a mix; every next mount
/// starts cleanly on the same cache dir.
#[test]
fn kill_9_of_the_mount_during_a_commit() {
    let env = Env::new();
    let proxy = FaultProxy::start(&env.cloud.url, seed_from_env());
    let cache = env.root.join("cache");
    let cache_arg = cache.to_string_lossy().into_owned();
    let args = ["--cache-dir", cache_arg.as_str()];
    let (old_a, old_b) = (random_bytes(9 * MIB + 11, 91), random_bytes(9 * MIB + 12, 92));
    env.cloud.put("pithos", "a.bin", &old_a);
    env.cloud.put("pithos", "b.bin", &old_b);
    let (new_a, new_b) = (random_bytes(9 * MIB + 13, 93), random_bytes(9 * MIB + 14, 94));
    write_file(&env.l().join("a.bin"), &new_a);
    write_file(&env.l().join("b.bin"), &new_b);

    // While the blocks go up: the server never gets the new hashmap.
    let upload =
        proxy.hold(|m, p, q| m == "POST" && p.ends_with("/pithos") && q.contains("update"), Stage::BeforeServer);
    let daemon = Daemon::start(&env, &proxy.identity(), &args);
    commit_killed(&env, &daemon, &upload, "a.bin");
    assert_eq!(sha256(&env.cloud.get("pithos", "a.bin")), sha256(&old_a), "a.bin is not its old version");
    check_leftovers(&env, &cache, 1);

    // Once the server has the new version, before its reply comes back.
    let n = Arc::new(AtomicU64::new(0));
    let second = {
        let n = n.clone();
        move |m: &str, p: &str, q: &str| {
            m == "PUT" && p.ends_with("/pithos/b.bin") && q.contains("hashmap") && n.fetch_add(1, Ordering::SeqCst) == 1
        }
    };
    let last_put = proxy.hold(second, Stage::AfterServer);
    let daemon = Daemon::start(&env, &proxy.identity(), &args);
    commit_killed(&env, &daemon, &last_put, "b.bin");
    assert_eq!(sha256(&env.cloud.get("pithos", "b.bin")), sha256(&new_b), "b.bin is not its new version");
    check_leftovers(&env, &cache, 2);

    // A third mount sees both as the server has them, and commits as usual.
    let daemon = Daemon::start(&env, &proxy.identity(), &args);
    assert_eq!(env.sh(r#"sha256sum < "$M/pithos/a.bin" | cut -c1-64"#).trim(), sha256(&old_a));
    assert_eq!(env.sh(r#"sha256sum < "$M/pithos/b.bin" | cut -c1-64"#).trim(), sha256(&new_b));
    env.sh(r#"cp "$L/a.bin" "$M/pithos/a.bin""#);
    assert_eq!(sha256(&env.cloud.get("pithos", "a.bin")), sha256(&new_a));
    daemon.unmount();
    check_leftovers(&env, &cache, 3);
    let names = env.cloud.objects("pithos");
    assert_eq!(names, ["a.bin", "b.bin"], "no conflict copies or other leftovers on the server");
}

/// `cp $L/name $M/pithos/name` until `held` holds its commit; then kill -9
/// of the mount, the held request let go, and `pithosfs unmount`. The copy
/// must have failed.
fn commit_killed(env: &Env, daemon: &Daemon, held: &Held, name: &str) {
    let cp = env
        .command(&format!(r#"cp "$L/{name}" "$M/pithos/{name}""#))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the commit to reach the held request", Duration::from_secs(30), || held.arrived());
    daemon.kill_9();
    held.release();
    let out = cp.wait_with_output().unwrap();
    assert!(!out.status.success(), "cp of {name} succeeded though the mount died in its commit");
    eprintln!("cp was told: {}", text(&out.stderr).trim());
    daemon.unmount();
}

// ---------------------------------------------------------------------------
// kill -9 of the server, and its restart
// ---------------------------------------------------------------------------

/// Deadlines for a server that is gone: a refused connection fails at once,
/// and no call retries for more than 4 s.
const DOWN_LIMITS: &str = "connect_timeout=1,response_timeout=2,retry_deadline=4,first_backoff=0.1,max_backoff=0.5";

/// `kill -9` of the server while a program writes file after file through
/// the mount, then a restart on the same data directory and port. While it
/// is down, calls fail with EIO (not a hang: `timeout` would say 124); once
/// it is back, the same mount (no remount) reads and writes again; every
/// file the writer was told it wrote is on the server with its sha256, and
/// the others are there whole or not at all.
#[test]
fn kill_9_of_the_server_then_a_restart() {
    let mut env = Env::new();
    let unseen = random_bytes(300_000, 101);
    env.cloud.put("pithos", "unseen.bin", &unseen);
    let identity = env.cloud.identity();
    let log = env.root.join("mnt.log");
    let envs = [("PITHOSFS_URL", identity.as_str()), ("PITHOSFS_TOKEN", TOKEN), ("PITHOSFS_HTTP_LIMITS", DOWN_LIMITS)];
    env.mounts.push(Mount::start(&env.m(), &log, &[], &envs));
    let mount_pid = env.mounts[0].pid();
    env.sh(r#"mkdir "$M/pithos/w" "$L/w""#);

    // File after file, each checked by the writer's own cp (close included).
    let mut writer = env
        .command(
            r#"for i in $(seq 1 100000); do
                 test -e "$L/stop" && break
                 if [ $((i % 4)) = 0 ]; then n=5000000; else n=$((20000 + i)); fi
                 head -c $n /dev/urandom > "$L/w/$i"
                 if cp "$L/w/$i" "$M/pithos/w/$i" 2>/dev/null; then echo "ok $i"; else echo "failed $i"; fi
               done"#,
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let said = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let (said, out) = (said.clone(), writer.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                said.lock().unwrap().push(line);
            }
        })
    };
    let count = |what: &str| said.lock().unwrap().iter().filter(|l| l.starts_with(what)).count();
    wait_until("the writer's first files", Duration::from_secs(60), || count("ok") >= 6);

    env.cloud.kill();
    let ok_before = count("ok");
    // While it is down: EIO, not a hang.
    env.fails_with(r#"timeout -k 2 30 cat "$M/pithos/unseen.bin" > /dev/null"#, "Input/output error");
    env.fails_with(r#"timeout -k 2 30 ls "$M/pithos/never-listed""#, "Input/output error");
    env.fails_with(r#"timeout -k 2 30 sh -c 'echo down > "$M/pithos/down.txt"'"#, "Input/output error");
    wait_until("the writer to be told of a failure", Duration::from_secs(60), || count("failed") >= 2);

    env.cloud.restart(&env.root);
    // The same mount, once the server is back.
    wait_until("the writer's files to go in again", Duration::from_secs(60), || {
        let lines = said.lock().unwrap().clone();
        let last_failed = lines.iter().rposition(|l| l.starts_with("failed"));
        last_failed.is_some_and(|at| lines[at..].iter().filter(|l| l.starts_with("ok")).count() >= 3)
    });
    std::fs::write(env.l().join("stop"), b"").unwrap();
    assert!(writer.wait().unwrap().success());
    reader.join().unwrap();
    assert_eq!(env.sh(r#"sha256sum < "$M/pithos/unseen.bin" | cut -c1-64"#).trim(), sha256(&unseen));
    env.sh(r#"echo back > "$M/pithos/back.txt"; test "$(cat "$M/pithos/back.txt")" = back"#);
    assert_eq!(env.cloud.get("pithos", "back.txt"), b"back\n");
    assert_eq!(env.mounts[0].pid(), mount_pid, "the mount was restarted");
    assert!(env.mounts[0].child.as_mut().unwrap().try_wait().unwrap().is_none(), "the mount process ended");

    // What the writer was told, against what the server holds.
    let held = server_tree(&env.cloud, "pithos", "w/");
    let lines = said.lock().unwrap().clone();
    for line in &lines {
        let (verdict, i) = line.split_once(' ').expect("verdict and number");
        let local = sha256_file(&env.l().join("w").join(i));
        match (verdict, held.get(i)) {
            (_, Some(o)) => assert_eq!(o.sha, local, "w/{i} ({verdict}) is on the server, but not whole"),
            ("failed", None) => {}
            (_, None) => panic!("w/{i}: the writer was told it was written, and it is not on the server"),
        }
    }
    let failed = count("failed");
    println!(
        "server killed after {ok_before} files; {} files written in all, {failed} failed while it was down, \
         {} of those on the server whole",
        lines.len(),
        lines.iter().filter(|l| l.starts_with("failed") && held.contains_key(l.split(' ').nth(1).unwrap())).count()
    );
    env.unmount();
}

/// Every background mount logs to a file of its own in `~/.cache/pithosfs/log`;
/// mounts that ended (cleanly or killed) leave theirs, and those must not
/// pile up: the newest few are kept, and the log of a mount still running.
#[test]
fn daemon_logs_do_not_pile_up() {
    let env = Env::new();
    let identity = env.cloud.identity();
    let log_dir = env.root.join("home/.cache/pithosfs/log");
    // `mount-<mount point>-<pid>.log`
    let log_of =
        |pid: u32| files_under(&log_dir).into_iter().find(|p| p.to_string_lossy().ends_with(&format!("-{pid}.log")));
    let first = Daemon::start(&env, &identity, &[]);
    assert!(
        log_of(first.pid).is_some(),
        "no log named after the daemon: {:?}",
        files_under(&env.root.join("home/.cache"))
    );
    // Another mount point, which the first mount keeps running beside.
    let (second, _other) = {
        let other = env.root.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let out = Command::new(BIN)
            .arg("mount")
            .arg(&other)
            .env("PITHOSFS_URL", &identity)
            .env("PITHOSFS_TOKEN", TOKEN)
            .env("HOME", env.root.join("home"))
            .env_remove("XDG_CACHE_HOME")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        (Daemon { pid: daemon_of(&other).expect("daemon"), point: other.clone() }, other)
    };
    first.unmount();
    for _ in 0..10 {
        let d = Daemon::start(&env, &identity, &[]);
        d.kill_9();
        d.unmount();
    }
    let logs = files_under(&env.root.join("home/.cache/pithosfs"));
    // At most 8 of ended mounts, and the running one's.
    assert!(logs.len() <= 9, "{} logs after 12 mounts: {logs:?}", logs.len());
    assert!(log_of(second.pid).is_some(), "the log of the running mount is gone: {logs:?}");
    second.unmount();
}

// ---------------------------------------------------------------------------
// the proxy itself
// ---------------------------------------------------------------------------

/// What a plain client (no retries) sees of one request through the proxy:
/// an error before the status, or the status, Retry-After and the body (or
/// the error that cut it).
type Seen = Result<(u16, Option<String>, Result<Vec<u8>, String>), String>;

fn one_request(method: &str, url: &str, body: Vec<u8>) -> Seen {
    one_request_within(method, url, body, Duration::from_secs(20))
}

fn one_request_within(method: &str, url: &str, body: Vec<u8>, within: Duration) -> Seen {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let call = client
            .request(method, url)
            .header("X-Auth-Token", TOKEN)
            .header("Content-Type", "application/octet-stream")
            .body(body);
        let r = tokio::time::timeout(within, call.send())
            .await
            .map_err(|_| format!("no reply within {within:?}"))?
            .map_err(|e| format!("{e:?}"))?;
        let status = r.status().as_u16();
        let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = r.bytes().await.map(|b| b.to_vec()).map_err(|e| format!("{e:?}"));
        Ok((status, retry_after, body))
    })
}

/// Each kind of fault does to a plain client what it says, and the server
/// sees the request exactly when it should.
#[test]
fn the_proxy_injects_what_it_says() {
    let env = Env::new();
    let proxy = FaultProxy::start(&env.cloud.url, seed_from_env());
    let data = random_bytes(200_000, 111);
    env.cloud.put("pithos", "there.bin", &data);
    let through = |name: &str| env.cloud.object_url("pithos", name).replace(&env.cloud.url, &proxy.url);
    let exists = |name: &str| env.cloud.head("pithos", name).status == 200;
    proxy.inject(1_000_000, &[Fault::CutRequest], STALL);
    let put = one_request("PUT", &through("cut-request.bin"), data.clone());
    assert!(put.is_err(), "{put:?}");
    assert!(!exists("cut-request.bin"), "a cut request reached the server");

    proxy.inject(1_000_000, &[Fault::CutReply], STALL);
    match one_request("GET", &through("there.bin"), Vec::new()) {
        Ok((200, _, Err(cut))) => assert!(cut.contains("body") || cut.contains("Body"), "{cut}"),
        other => panic!("a GET whose reply is cut mid-body: {:?}", other.map(|(s, r, b)| (s, r, b.map(|b| b.len())))),
    }
    let put = one_request("PUT", &through("cut-reply.bin"), data.clone());
    assert!(put.is_err(), "{put:?}");
    assert!(exists("cut-reply.bin"), "the request of a cut reply did not reach the server");

    for (kind, retry_after) in [(Fault::Unavailable, None), (Fault::RetryAfter, Some("1".to_string()))] {
        proxy.inject(1_000_000, &[kind], STALL);
        let name = format!("{}.bin", slug(kind));
        match one_request("PUT", &through(&name), data.clone()) {
            Ok((503, ra, _)) => assert_eq!(ra, retry_after, "{kind:?}"),
            other => panic!("{kind:?}: {other:?}"),
        }
        assert!(!exists(&name), "{kind:?} reached the server");
    }

    proxy.inject(1_000_000, &[Fault::Stall], Duration::from_secs(6));
    let get = one_request_within("GET", &through("there.bin"), Vec::new(), Duration::from_secs(2));
    assert_eq!(get.err().as_deref(), Some("no reply within 2s"));

    proxy.inject(1_000_000, &[Fault::Reset], STALL);
    let put = one_request("PUT", &through("reset.bin"), data.clone());
    let err = put.expect_err("a reset");
    assert!(err.contains("reset") || err.contains("Reset"), "not a reset: {err}");
    assert!(exists("reset.bin"), "the request of a reset reply did not reach the server");

    // 5%: exactly one request in twenty, at places the seed picks.
    proxy.inject(RATE, &[Fault::Unavailable], STALL);
    let before = proxy.counts();
    let statuses: Vec<u16> =
        (0..100).map(|_| one_request("HEAD", &through("there.bin"), Vec::new()).map_or(0, |r| r.0)).collect();
    proxy.calm();
    let counts = proxy.counts() - before;
    assert_eq!((counts.exposed, counts.of(Fault::Unavailable)), (100, 5));
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 95);
    let journal = proxy.journal();
    assert_eq!(journal.len(), counts.total() as usize + 7, "{journal:?}");
}
