//! What no other object-store mount shows: the account at any past moment
//! (`.snapshots/<moment>`), one version by id (`.snapshots/v<ID>`), and
//! other accounts' shared objects (`.shared/<owner>`), set from the shell
//! with `setfattr -n user.pithos.sharing`. Real mounts of the local cloud,
//! two users.

mod harness;

use harness::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Waits past the next whole second and answers it: every version written
/// before the call is older than the moment answered, every version written
/// after it newer (Pithos takes `until` in whole seconds).
fn moment_between() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let next = now.as_secs() + 1;
    std::thread::sleep(Duration::from_secs(next) - now + Duration::from_millis(150));
    next
}

fn iso(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Three versions of a file across time, a file deleted and a folder
/// renamed since: each moment shows the tree exactly as it was (by ISO
/// 8601 and by Unix time), one version opens by its id, nothing under
/// `.snapshots` can be written, a walk of the mount does not enter it, and
/// restoring is an ordinary `cp` out of it.
#[test]
fn snapshots_show_the_account_as_it_was() {
    require("getfattr", "attr");
    let mut env = Env::new();
    env.mount(&[]);
    env.sh(r#"cd "$M/pithos" && printf one > doc.txt && printf bye > gone.txt && mkdir dir && printf A > dir/a.txt
           printf 'deep' > keep.txt"#);
    let t1 = moment_between();
    env.sh(r#"cd "$M/pithos" && printf two > doc.txt && rm gone.txt && mv dir dir2"#);
    let t2 = moment_between();
    env.sh(r#"printf three > "$M/pithos/doc.txt""#);

    let at1 = format!("$M/.snapshots/{}/pithos", iso(t1));
    let at2 = format!("$M/.snapshots/{t2}/pithos");
    assert_eq!(env.sh(&format!(r#"cat "{at1}/doc.txt""#)), "one");
    assert_eq!(env.sh(&format!(r#"cat "{at1}/gone.txt""#)), "bye", "a file since deleted");
    assert_eq!(env.sh(&format!(r#"cat "{at1}/dir/a.txt""#)), "A", "a folder since renamed");
    assert_eq!(env.sh(&format!(r#"ls "{at1}""#)), "dir\ndoc.txt\ngone.txt\nkeep.txt\n");
    assert_eq!(env.sh(&format!(r#"cat "{at2}/doc.txt""#)), "two");
    assert_eq!(env.sh(&format!(r#"ls "{at2}""#)), "dir2\ndoc.txt\nkeep.txt\n");
    assert_eq!(env.sh(&format!(r#"cat "{at2}/dir2/a.txt""#)), "A");
    env.fails_with(&format!(r#"cat "{at2}/gone.txt""#), "No such file");
    assert_eq!(env.sh(r#"cat "$M/pithos/doc.txt""#), "three");
    // A moment before the container existed, and names that are no moment.
    env.fails_with(r#"ls "$M/.snapshots/1000000000/pithos""#, "No such file");
    env.fails_with(r#"ls "$M/.snapshots/yesterday""#, "No such file");

    // Read-only, whatever the call.
    for write in [
        format!(r#"printf x > "{at1}/doc.txt""#),
        format!(r#"printf x > "{at1}/new.txt""#),
        format!(r#"rm "{at1}/doc.txt""#),
        format!(r#"mkdir "{at1}/sub""#),
        format!(r#"mv "{at1}/doc.txt" "{at1}/doc2.txt""#),
        format!(r#"touch -d 2001-01-01 "{at1}/doc.txt""#),
        format!(r#"chmod 600 "{at1}/doc.txt""#),
        format!(r#"setfattr -n user.color -v red "{at1}/doc.txt""#),
        r#"mkdir "$M/.snapshots/x""#.to_string(),
        r#"rmdir "$M/.snapshots""#.to_string(),
    ] {
        env.fails_with(&write, "Read-only file system");
    }
    assert_eq!(env.cloud.objects("pithos"), ["dir2", "dir2/a.txt", "doc.txt", "keep.txt"].map(String::from));

    // Hidden from the root's listing (and so from find, du, rsync), reachable by name.
    let found = env.sh(r#"find "$M" | sed "s|^$M||""#);
    assert!(!found.contains(".snapshots"), "find walked into history:\n{found}");
    assert!(!env.sh(r#"ls -a "$M""#).contains(".snapshots"));
    // Its entries are the moments in use.
    assert_eq!(env.sh(r#"ls "$M/.snapshots""#), format!("1000000000\n{t2}\n{}\n", iso(t1)));

    // One version by its id, from the file's history.
    let versions = env.sh(r#"getfattr --only-values -n user.pithos.versions "$M/pithos/doc.txt""#);
    let ids: Vec<&str> = versions.lines().filter_map(|l| l.split(' ').next()).collect();
    // A shell's redirect closes a duplicate of the file first (an empty
    // commit), so each write leaves an empty version before its own.
    let contents: Vec<String> =
        ids.iter().map(|id| env.sh(&format!(r#"cat "$M/.snapshots/v{id}/pithos/doc.txt""#))).collect();
    let written: Vec<&str> = contents.iter().map(String::as_str).filter(|c| !c.is_empty()).collect();
    assert_eq!(written, ["one", "two", "three"], "versions {versions}");
    env.fails_with(&format!(r#"cat "$M/.snapshots/v{}/pithos/keep.txt""#, ids[0]), "No such file");
    env.fails_with(&format!(r#"printf x > "$M/.snapshots/v{}/pithos/doc.txt""#, ids[0]), "Read-only file system");

    // Restoring is a copy out of the past.
    env.sh(&format!(r#"cp "{at1}/gone.txt" "$M/pithos/gone.txt" && cp -r "{at1}/dir" "$M/pithos/dir""#));
    assert_eq!(env.cloud.get("pithos", "gone.txt"), b"bye");
    assert_eq!(env.cloud.get("pithos", "dir/a.txt"), b"A");
}

/// A user shares a folder (read) and a file (write) by name from the
/// shell; the other user's mount shows them under `.shared/<owner>`, reads
/// them, writes only where the grant allows, and sees nothing else.
#[test]
fn sharing_from_the_shell_reaches_the_other_users_mount() {
    require("getfattr", "attr");
    let mut env = Env::new();
    env.mount(&[]);
    env.sh(r#"cd "$M/pithos" && mkdir team && printf plan > team/plan.txt && printf solo > solo.txt
           printf open > open.txt"#);
    env.sh(&format!(r#"setfattr -n user.pithos.sharing -v 'read={FRIEND}' "$M/pithos/team""#));
    env.sh(&format!(r#"setfattr -n user.pithos.sharing -v 'write={FRIEND}' "$M/pithos/open.txt""#));
    let shown = env.sh(r#"getfattr --only-values -n user.pithos.sharing "$M/pithos/team""#);
    assert_eq!(shown, format!("read={FRIEND}"), "shown by name");
    env.fails_with(r#"setfattr -n user.pithos.sharing -v 'read=nobody-here' "$M/pithos/solo.txt""#, "Invalid argument");
    env.fails_with(r#"setfattr -n user.pithos.sharing -v 'delete=friend' "$M/pithos/solo.txt""#, "Invalid argument");
    env.fails_with(r#"getfattr -n user.pithos.sharing "$M/pithos/solo.txt""#, "No such attribute");

    env.mount_with_token("friend", FRIEND_TOKEN, &[]);
    let f = "$R/friend/.shared";
    assert_eq!(env.sh(&format!(r#"ls "{f}""#)), "tester\n");
    assert_eq!(env.sh(&format!(r#"ls "{f}/tester/pithos""#)), "open.txt\nteam\n", "only what is shared");
    assert_eq!(env.sh(&format!(r#"cat "{f}/tester/pithos/team/plan.txt""#)), "plan");
    env.sh_fails(&format!(r#"cat "{f}/tester/pithos/solo.txt""#));
    // Read-only grant: refused, the owner's file unchanged.
    env.fails_with(&format!(r#"printf x > "{f}/tester/pithos/team/plan.txt""#), "Permission denied");
    env.fails_with(&format!(r#"printf x > "{f}/tester/pithos/team/new.txt""#), "Permission denied");
    assert_eq!(env.cloud.get("pithos", "team/plan.txt"), b"plan");
    // Write grant: the change lands in the owner's account.
    env.sh(&format!(r#"printf edited > "{f}/tester/pithos/open.txt""#));
    assert_eq!(env.cloud.get("pithos", "open.txt"), b"edited");
    assert_eq!(env.sh(r#"cat "$M/pithos/open.txt""#), "edited");
    // A file of several blocks: they go into the owner's container first.
    let big = random_bytes(2 * env.cloud.block_size("pithos") as usize + 5, 7);
    std::fs::write(env.root.join("big.bin"), &big).unwrap();
    env.sh(&format!(r#"cp "$R/big.bin" "{f}/tester/pithos/open.txt""#));
    assert_eq!(sha256(&env.cloud.get("pithos", "open.txt")), sha256(&big));
    // Not in the friend's walk of their own mount.
    assert!(!env.sh(r#"find "$R/friend""#).contains("shared"));

    // Withdrawn: the friend sees nothing any more.
    env.sh(
        r#"setfattr -x user.pithos.sharing "$M/pithos/team" && setfattr -x user.pithos.sharing "$M/pithos/open.txt""#,
    );
    env.fails_with(r#"getfattr -n user.pithos.sharing "$M/pithos/team""#, "No such attribute");
    std::thread::sleep(Duration::from_millis(1100)); // the friend's listing of `.shared` expires
    assert_eq!(env.sh(&format!(r#"ls "{f}""#)), "");
    env.sh_fails(&format!(r#"cat "{f}/tester/pithos/team/plan.txt""#));
}
