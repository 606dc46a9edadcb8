//! POSIX conformance through a real mount (issue 10): what pjdfstest checks,
//! in tests CI can run (pjdfstest itself is fetched and built outside the
//! repository: `scripts/pjdfstest`). Each section is one part of the issue.
//!
//! Needs root, /dev/fuse, fuse3, util-linux's setpriv, rsync, python3 and the
//! system user `pithosfs-test` (all from `scripts/setup --tests`).

mod harness;

use harness::*;

// ---- special files and hard links ----

/// `stat` of each path: "type major:minor mode links".
fn kinds(env: &Env, paths: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
    let out = env.sh(&format!("stat -c '%F %t:%T %a %h' {}", quoted.join(" ")));
    out.lines().map(str::to_string).collect()
}

/// FIFOs, sockets and device nodes are made with mknod/mkfifo/bind, stored
/// as objects of their own types, shown with their type, mode and rdev
/// (across a remount), and behave as the kernel's: a FIFO carries data
/// between two processes; a device node opens its device only on a `--dev`
/// mount.
#[test]
fn fifos_sockets_and_device_nodes() {
    let mut env = Env::new();
    env.mount(&["--allow-other"]);
    env.sh(r#"cd "$M/pithos"
        mkfifo -m 640 p
        mknod -m 600 null c 1 3
        mknod -m 660 loop b 7 0
        python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("s")'
        (echo through the fifo > p &)
        test "$(timeout 10 cat p)" = "through the fifo""#);
    let want =
        ["fifo 0:0 640 1", "character special file 1:3 600 1", "block special file 7:0 660 1", "socket 0:0 755 1"];
    let paths = ["$M/pithos/p", "$M/pithos/null", "$M/pithos/loop", "$M/pithos/s"];
    assert_eq!(kinds(&env, &paths), want);
    for (name, ty) in
        [("p", "inode/fifo"), ("null", "inode/chardevice"), ("loop", "inode/blockdevice"), ("s", "inode/socket")]
    {
        let head = env.cloud.head("pithos", name);
        assert_eq!(head.header("content-type").as_deref(), Some(ty), "{name}");
        assert_eq!(head.header("content-length").as_deref(), Some("0"), "{name}: no data");
    }
    assert_eq!(env.cloud.head("pithos", "null").header("x-object-meta-posix-rdev").as_deref(), Some("259"));
    // nodev unless asked: the device node exists but opens nothing.
    env.fails_with(r#"cat "$M/pithos/null""#, "Permission denied");
    env.remount(&["--allow-other", "--dev"]);
    assert_eq!(kinds(&env, &paths), want, "kept on the server, listed again");
    env.sh(r#"echo gone > "$M/pithos/null"; test -z "$(cat "$M/pithos/null")""#);
    // The other calls on special files: chmod, chown, rename, unlink.
    env.sh(r#"cd "$M/pithos"
        chmod 604 p; chown 12:34 p; mv p q
        test "$(stat -c '%F %a %u:%g' q)" = "fifo 604 12:34"
        rm q null loop s
        test -z "$(ls)""#);
}

/// The kernel's rules for making special files hold for other users: an
/// unprivileged user makes FIFOs where it may write, owns them, and may not
/// make device nodes.
#[test]
fn special_files_as_an_unprivileged_user() {
    let b = User::unprivileged();
    let mut env = Env::new();
    env.open_to_users();
    env.mount(&["--allow-other"]);
    env.sh(r#"mkdir -m 1777 "$M/pithos/shared"; mkdir -m 755 "$M/pithos/closed""#);
    env.sh_as(&b, r#"mkfifo "$M/pithos/shared/p"; test "$(stat -c '%F %u' "$M/pithos/shared/p")" = "fifo $(id -u)""#);
    env.fails_as(&b, r#"mkfifo "$M/pithos/closed/p""#, "Permission denied");
    env.fails_as(&b, r#"mknod "$M/pithos/shared/c" c 1 3"#, "Operation not permitted");
    assert_eq!(env.sh(r#"ls "$M/pithos/shared""#).trim(), "p");
}

/// Hard links: one inode for all names, `nlink` counted, a write or chmod
/// through one name seen through the others, unlink of one name, rename
/// over a link, and the group found again after a remount. On the server
/// each name is an ordinary object with the whole content.
#[test]
fn hard_links_are_one_file_with_several_names() {
    let mut env = Env::new();
    env.mount(&["--allow-other"]);
    env.sh(r#"cd "$M/pithos"
        mkdir a b
        echo one > a/f
        ln a/f b/g
        ln b/g a/h
        test "$(stat -c '%i %h' a/f)" = "$(stat -c '%i %h' b/g)"
        test "$(stat -c '%h' a/h)" = 3
        echo two >> b/g
        test "$(cat a/f)" = "$(printf 'one\ntwo')"
        chmod 600 a/h
        test "$(stat -c '%a' a/f)" = 600"#);
    assert_eq!(env.cloud.get("pithos", "a/h"), b"one\ntwo\n", "each name holds the content");
    assert_eq!(env.cloud.head("pithos", "b/g").header("x-object-meta-posix-nlink").as_deref(), Some("3"));
    env.remount(&["--allow-other"]);
    env.sh(r#"cd "$M/pithos"
        test "$(stat -c '%i %h %a' a/f)" = "$(stat -c '%i %h %a' b/g)"
        test "$(stat -c '%h' b/g)" = 3
        rm a/f
        test "$(stat -c '%h' b/g)" = 2
        echo other > x
        mv x a/h
        test "$(stat -c '%h' b/g)" = 1
        test "$(cat a/h)" = other
        test "$(cat b/g)" = "$(printf 'one\ntwo')""#);
    assert!(env.cloud.head("pithos", "b/g").header("x-object-meta-posix-link").is_none(), "an ordinary file again");
}

/// `cp -al` and `rsync -H` keep hard links through the mount; an
/// unprivileged user links its own files where it may write, not elsewhere.
#[test]
fn cp_al_and_rsync_h_keep_hard_links() {
    let b = User::unprivileged();
    let mut env = Env::new();
    env.open_to_users();
    env.mount(&["--allow-other"]);
    env.sh(r#"mkdir -p "$L/src"; echo data > "$L/src/one"; ln "$L/src/one" "$L/src/two"
        rsync -aH "$L/src/" "$M/pithos/copy/"
        test "$(stat -c '%i %h' "$M/pithos/copy/one")" = "$(stat -c '%i %h' "$M/pithos/copy/two")"
        test "$(stat -c '%h' "$M/pithos/copy/one")" = 2
        cp -al "$M/pithos/copy" "$M/pithos/tree"
        test "$(stat -c '%h' "$M/pithos/copy/one")" = 4
        test "$(stat -c '%i' "$M/pithos/tree/two")" = "$(stat -c '%i' "$M/pithos/copy/one")"
        rsync -aH "$M/pithos/copy/" "$L/back/"
        test "$(stat -c '%h' "$L/back/one")" = 2
        mkdir -m 1777 "$M/pithos/shared"; mkdir -m 755 "$M/pithos/closed""#);
    env.sh_as(&b, r#"cd "$M/pithos/shared"; echo mine > f; ln f g; test "$(stat -c '%h %U' g)" = "2 $(id -un)""#);
    env.fails_as(&b, r#"ln "$M/pithos/shared/f" "$M/pithos/closed/f""#, "Permission denied");
}
