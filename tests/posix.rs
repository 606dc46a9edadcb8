//! POSIX conformance through a real mount (issue 10): what pjdfstest checks,
//! in tests CI can run (pjdfstest itself is fetched and built outside the
//! repository: `scripts/pjdfstest`). Each section is one part of the issue.
//!
//! Needs root, /dev/fuse, fuse3, util-linux's setpriv, rsync, python3 and the
//! system user `pithosfs-test` (all from `scripts/setup --tests`).

mod harness;

use harness::hostile::{Action, Hostile, Made};
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

// ---- names, times and errors ----

/// `stat` fields of `path` (a `stat -c` format) from a script in `$M/pithos`.
fn stat(env: &Env, format: &str, path: &str) -> String {
    env.sh(&format!(r#"cd "$M/pithos"; stat -c '{format}' {path}"#)).trim().to_string()
}

/// A path of PATH_MAX - 1 bytes (4,095, as pjdfstest's `dirgen_max` makes:
/// components of 127 bytes) works below a folder, whose object name is then
/// past 4,096 bytes; one byte more is ENAMETOOLONG.
#[test]
fn paths_of_path_max_work_below_a_folder() {
    let mut env = Env::new();
    env.mount(&["--allow-other"]);
    let comp = "c".repeat(127);
    let mut path = String::new();
    while path.len() < 4095 {
        path.push_str(&comp);
        path.push('/');
    }
    path.truncate(4094);
    path.push('x');
    assert_eq!(path.len(), 4095);
    let dir = path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap();
    env.sh(&format!(
        r#"cd "$M/pithos"; mkdir base; cd base; mkdir -p {dir}; echo deep > {path}; chmod 642 {path}
           test "$(stat -c %a {path})" = 642; test "$(cat {path})" = deep"#
    ));
    assert_eq!(env.cloud.get("pithos", &format!("base/{path}")), b"deep\n");
    env.fails_with(&format!(r#"cd "$M/pithos/base"; stat {path}x"#), "File name too long");
    env.sh(&format!(r#"cd "$M/pithos/base"; rm {path}; test ! -e {path}"#));
}

/// On a server that keeps Synnefo's limit of 1,024 bytes for an object name
/// (here a proxy answering 400 as Synnefo does), a longer one is
/// ENAMETOOLONG for every call that would make it, never EIO; 1,024 works.
#[test]
fn a_server_s_1024_byte_name_limit_is_enametoolong() {
    let mut env = Env::new();
    let proxy = Hostile::start(&env.cloud.url);
    let refused = proxy.rule(
        "Synnefo's object-name limit",
        |r| matches!(r.method.as_str(), "PUT" | "COPY" | "MOVE") && r.object().is_some_and(|(_, n)| n.len() > 1024),
        Action::Answer(Box::new(|_| Made { status: 400, headers: Vec::new(), body: b"Invalid name".to_vec() })),
    );
    let point = env.m();
    let log = env.root.join("mnt.synnefo.log");
    let identity = proxy.identity();
    env.mounts.push(Mount::start(&point, &log, &[], &[("PITHOSFS_URL", &identity), ("PITHOSFS_TOKEN", TOKEN)]));
    // Four folders of 200 bytes and their slashes: 804 bytes; 220 more
    // make 1,024 (taken), 221 make 1,025 (refused).
    let seg = "d".repeat(200);
    let deep = format!("{seg}/{seg}/{seg}/{seg}");
    let (fits, over) = ("f".repeat(220), "g".repeat(221));
    env.sh(&format!(r#"cd "$M/pithos"; mkdir -p {deep}; echo fits > {deep}/{fits}; echo ok > ok; mkdir okdir"#));
    assert_eq!(env.cloud.get("pithos", &format!("{deep}/{fits}")), b"fits\n");
    // The first refusal comes from the server (mkdir writes its marker at
    // once); the mount then knows the limit and refuses before any request
    // (a new file is otherwise sent only at its close).
    for script in [
        format!("mkdir {deep}/{over}"),
        format!(": > {deep}/{over}"),
        format!("ln -s ok {deep}/{over}"),
        format!("mv ok {deep}/{over}"),
        format!("mv okdir {deep}/{over}"),
    ] {
        env.fails_with(&format!(r#"cd "$M/pithos"; {script}"#), "File name too long");
    }
    assert!(refused.get() >= 1, "the server refused one");
    assert_eq!(env.sh(r#"cd "$M/pithos"; cat ok; ls okdir | wc -l"#), "ok\n0\n");
    env.unmount();
}

/// Making, removing and renaming entries moves the folder's mtime and ctime
/// (both folders of a rename); the times outlive the listing's TTL.
#[test]
fn a_folder_s_times_follow_its_entries() {
    let mut env = Env::new();
    env.mount(&[]);
    env.sh(r#"cd "$M/pithos"; mkdir d e; touch -d '2001-01-01 00:00:00 UTC' d e"#);
    let old = "978307200";
    let steps = [
        ("touch d/f", "d"),
        ("mkdir d/sub", "d"),
        ("ln -s f d/link", "d"),
        ("mkfifo d/fifo", "d"),
        ("mknod d/null c 1 3", "d"),
        ("ln d/f d/hard", "d"),
        ("rm d/hard d/fifo d/null", "d"),
        ("mv d/f e/f", "e"),
        ("rm d/link", "d"),
        ("rmdir d/sub", "d"),
    ];
    for (step, folder) in steps {
        env.sh(&format!(r#"cd "$M/pithos"; touch -d '2001-01-01 00:00:00 UTC' d e; {step}"#));
        let (m, c): (f64, f64) = {
            let s = stat(&env, "%.9Y %.9Z", folder);
            let (m, c) = s.split_once(' ').unwrap();
            (m.parse().unwrap(), c.parse().unwrap())
        };
        assert!(m > 1.5e9 && c >= m, "{step}: {folder}'s mtime {m}, ctime {c}");
    }
    // A rename moves both folders.
    env.sh(r#"cd "$M/pithos"; touch -d '2001-01-01 00:00:00 UTC' d e; mv e/f d/f"#);
    assert_ne!(stat(&env, "%Y", "d"), old);
    assert_ne!(stat(&env, "%Y", "e"), old);
    // Past the listing's TTL (1 s), listed again: still moved.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_ne!(stat(&env, "%Y", "e"), old);
}

/// chmod, chown, xattrs, a rename and a write move a file's ctime; a write
/// its mtime too. utimensat sets atime and mtime apart, leaves out what is
/// UTIME_OMIT, and they are on the server after a remount.
#[test]
fn ctime_atime_and_utimensat() {
    let mut env = Env::new();
    env.mount(&[]);
    env.sh(r#"cd "$M/pithos"; echo x > f; touch -d '2001-01-01 00:00:00 UTC' f"#);
    let (m, c) = (|| stat(&env, "%Y", "f"), || stat(&env, "%.9Z", "f").parse::<f64>().unwrap());
    assert_eq!(m(), "978307200");
    let mut last = c();
    for change in ["chmod 600 f", "chown 1:1 f", "setfattr -n user.a -v b f", "mv f g; mv g f", "truncate -s 1 f"] {
        std::thread::sleep(std::time::Duration::from_millis(20));
        env.sh(&format!(r#"cd "$M/pithos"; {change}"#));
        let now = c();
        assert!(now > last, "{change}: ctime {last} -> {now}");
        last = now;
        if change.starts_with("truncate") {
            assert_ne!(m(), "978307200", "a truncate moves the mtime");
        } else {
            assert_eq!(m(), "978307200", "{change} leaves the mtime");
        }
    }
    // atime and mtime apart; -a leaves the mtime (UTIME_OMIT), -m the atime.
    env.sh(r#"cd "$M/pithos"; touch -a -d '2002-02-02 00:00:00 UTC' f; touch -m -d '2003-03-03 00:00:00 UTC' f"#);
    assert_eq!(stat(&env, "%X %Y", "f"), "1012608000 1046649600");
    env.remount(&[]);
    assert_eq!(stat(&env, "%X %Y", "f"), "1012608000 1046649600");
    assert!(stat(&env, "%.9Z", "f").parse::<f64>().unwrap() >= last, "the ctime is on the server");
}

/// UTIME_NOW needs ownership or write access; explicit times need
/// ownership (or root): as the unprivileged user.
#[test]
fn utimensat_permissions() {
    let b = User::unprivileged();
    let mut env = Env::new();
    env.open_to_users();
    env.mount(&["--allow-other"]);
    env.sh(r#"cd "$M/pithos"; echo x > writable; chmod 666 writable; echo x > readonly; chmod 644 readonly
              touch -d '2001-01-01 00:00:00 UTC' writable readonly"#);
    env.sh_as(&b, r#"touch "$M/pithos/writable""#);
    assert_ne!(stat(&env, "%Y", "writable"), "978307200", "UTIME_NOW with write access");
    env.fails_as(&b, r#"touch -d '2005-01-01' "$M/pithos/writable""#, "Operation not permitted");
    env.fails_as(&b, r#"touch "$M/pithos/readonly""#, "Permission denied");
    assert_eq!(stat(&env, "%Y", "readonly"), "978307200");
    env.sh(&format!(r#"chown {} "$M/pithos/readonly""#, b.uid));
    env.sh_as(&b, r#"touch -d '2005-01-01 00:00:00 UTC' "$M/pithos/readonly""#);
    assert_eq!(stat(&env, "%Y", "readonly"), "1104537600", "the owner sets explicit times");
}

/// A folder's link count is 2 and one per subfolder.
#[test]
fn a_folder_s_nlink_counts_its_subfolders() {
    let mut env = Env::new();
    env.mount(&[]);
    env.sh(r#"cd "$M/pithos"; mkdir a"#);
    assert_eq!(stat(&env, "%h", "a"), "2");
    env.sh(r#"cd "$M/pithos"; mkdir a/b a/c a/d; touch a/f"#);
    assert_eq!(stat(&env, "%h", "a"), "5");
    env.sh(r#"cd "$M/pithos"; rmdir a/b; mv a/c ."#);
    assert_eq!(stat(&env, "%h", "a"), "3");
    // A new mount counts once it has listed the folder (and the kernel's
    // attribute cache, 1 s, has let the count from before the listing go).
    env.remount(&[]);
    env.sh(r#"ls "$M/pithos/a" >/dev/null; sleep 1.2"#);
    assert_eq!(stat(&env, "%h", "a"), "3");
}

/// A file removed while open stays readable and writable through its
/// descriptor with a link count of 0, and its close writes nothing back:
/// the name stays free and the folder can go.
#[test]
fn a_file_removed_while_open_is_not_written_back() {
    let mut env = Env::new();
    env.mount(&[]);
    let out = env.sh(r#"cd "$M/pithos"; mkdir d; echo old > d/f
           exec 3<>d/f; rm d/f; echo 'Hello, World!' >&3
           stat -L -c %h /dev/fd/3; exec 3>&-
           test ! -e d/f; rmdir d && echo gone"#);
    assert!(out.starts_with("0\n") && out.ends_with("gone\n"), "{out}");
    assert!(!env.cloud.objects("pithos").iter().any(|o| o.starts_with("d/")), "{:?}", env.cloud.objects("pithos"));
}

/// Times set to the nanosecond read back exactly (pjdfstest's utimensat/08):
/// by `stat`, after the listing's TTL, on the server and after a remount.
#[test]
fn times_round_trip_to_the_nanosecond() {
    let mut env = Env::new();
    env.mount(&[]);
    env.sh(r#"cd "$M/pithos"; echo x > f; mkdir d
        touch -m -d '2030-01-02 03:04:05.123456789 UTC' f d
        touch -a -d '2001-02-03 04:05:06.987654321 UTC' f"#);
    let want = "1893553445.123456789 981173106.987654321";
    assert_eq!(stat(&env, "%.9Y %.9X", "f"), want);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(stat(&env, "%.9Y %.9X", "f"), want, "listed again");
    assert_eq!(stat(&env, "%.9Y", "d"), "1893553445.123456789");
    let meta = env.cloud.head("pithos", "f");
    assert_eq!(meta.header("x-object-meta-posix-mtime").as_deref(), Some("1893553445.123456789"));
    env.remount(&[]);
    assert_eq!(stat(&env, "%.9Y %.9X", "f"), want, "after a remount");
    assert_eq!(stat(&env, "%.9Y", "d"), "1893553445.123456789");
}
