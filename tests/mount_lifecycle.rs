//! The life of a mount as a user and systemd see it: `pithosfs mount` says
//! "mounted" only once the mount answers (and fails saying why otherwise),
//! tells systemd it is ready, logs to a file of its own without terminal
//! colours, takes fstab's `-o` options (and refuses a misspelled one), shows
//! as `fuse.pithosfs`, recognises the dead mount point a killed mount leaves,
//! and `pithosfs unmount` explains what stops it. Also the shell completions
//! and the manual page generated from the command's definition.
//!
//! Real processes throughout: a `pithosfs serve` child is the cloud, the
//! `pithosfs` binary mounts through FUSE (as root, like the other mount tests).

mod harness;

use harness::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

// ---- mount lifecycle ----

/// `pithosfs ARGS` with the test cloud's URL and token, and `$R/home` as
/// HOME (where a background mount keeps its log).
fn pithosfs(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("PITHOSFS_URL", env.cloud.identity())
        .env("PITHOSFS_TOKEN", TOKEN)
        .env("HOME", env.root.join("home"))
        .env_remove("XDG_CACHE_HOME")
        .env_remove("PITHOSFS_TOKEN_FILE")
        .env_remove("KAMAKI_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("PITHOSFS_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("run pithosfs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The /proc/mounts line of `point`.
fn mount_line(point: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let want = point.to_string_lossy().replace(' ', "\\040");
    mounts.lines().find(|l| l.split_whitespace().nth(1) == Some(want.as_str())).map(str::to_string)
}

/// Unmounts a background mount (not a child of the test) even when a test fails.
struct Unmounted(PathBuf);

impl Drop for Unmounted {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).stderr(Stdio::null()).status();
        }
    }
}

/// The log path a background mount printed ("…; log: PATH").
fn printed_log(said: &str) -> PathBuf {
    let line = said.lines().find(|l| l.contains("log: ")).unwrap_or_else(|| panic!("no log path in {said:?}"));
    PathBuf::from(line.rsplit("log: ").next().unwrap().trim())
}

#[test]
fn a_failed_mount_never_says_mounted() {
    let env = Env::new();
    let point = env.root.join("mnt");
    std::fs::create_dir_all(&point).unwrap();
    // background, refused by the cloud: the launcher waits for the mount process and shows its error
    let mut c = pithosfs(&env, &["mount"]);
    c.arg(&point).env("PITHOSFS_TOKEN", "not-the-token-0123456789abcdef");
    let out = run(c);
    let said = stderr(&out);
    assert!(!out.status.success(), "a refused login mounted: {said}");
    assert!(!said.contains("mounted"), "said mounted: {said}");
    assert!(said.contains("cannot authenticate"), "the mount process's reason is shown: {said}");
    assert!(!is_mounted(&point));
    // foreground, an unreachable cloud (nothing listens on port 1)
    let mut c = pithosfs(&env, &["mount", "-f"]);
    c.arg(&point).env("PITHOSFS_URL", "http://127.0.0.1:1/identity/v2.0");
    let out = run(c);
    let said = stderr(&out);
    assert!(!out.status.success() && !said.contains("mounted"), "{said}");
    // not a directory
    let file = env.root.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let mut c = pithosfs(&env, &["mount"]);
    c.arg(&file);
    let out = run(c);
    assert!(!out.status.success(), "mounted on a file");
    assert!(stderr(&out).contains("is not a directory") && !stderr(&out).contains("mounted"), "{}", stderr(&out));
}

#[test]
fn a_background_mount_says_mounted_with_its_log_which_records_commits_in_plain_text() {
    let env = Env::new();
    let point = env.root.join("bg");
    std::fs::create_dir_all(&point).unwrap();
    let _guard = Unmounted(point.clone());
    let mut c = pithosfs(&env, &["mount"]);
    c.arg(&point);
    let out = run(c);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("mounted pithos at {}", point.display())), "{said}");
    // mounted when it says so, as type fuse.pithosfs
    let line = mount_line(&point).expect("mounted once `mount` returned");
    assert_eq!(line.split_whitespace().nth(2), Some("fuse.pithosfs"), "{line}");
    // the log is the daemon's own: in the user's cache folder, named after the mount point and the daemon's pid
    let log = printed_log(&said);
    assert!(log.starts_with(env.root.join("home/.cache/pithosfs/log")), "{}", log.display());
    let name = log.file_name().unwrap().to_string_lossy().into_owned();
    let pid: u32 = name.trim_end_matches(".log").rsplit('-').next().unwrap().parse().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the log names the running mount process");
    assert!(String::from_utf8_lossy(&cmdline).contains("--foreground"), "pid {pid} is not the mount process");
    assert!(name.contains("-bg-"), "named after the mount point: {name}");

    std::fs::write(point.join("pithos/hello.txt"), b"hello\n").unwrap();
    assert_eq!(env.cloud.get("pithos", "hello.txt"), b"hello\n");
    let out = run(pithosfs(&env, &["unmount", point.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!is_mounted(&point));
    // the process ends after unmounting; its log says what it did, without terminal escapes or warnings
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\x1b'), "ANSI escapes in the log:\n{text:?}");
    assert!(text.contains("INFO pithosfs::fs::commit: committed pithos/hello.txt: 6 bytes"), "{text}");
    assert!(!text.contains("WARN") && !text.contains("ERROR"), "a clean unmount logged a warning:\n{text}");
    assert!(text.contains("unmounted pithos"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600, "logs name files: 0600");
}

#[test]
fn fstab_options_are_parsed_by_the_binary_and_a_misspelled_one_is_refused() {
    let mut env = Env::new();
    env.mount(&["-o", "cache_size=1G,attr_ttl=5m,dir_ttl=30s,ro,noexec,_netdev,noauto,x-systemd.automount"]);
    let line = mount_line(&env.m()).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], "fuse.pithosfs", "{line}");
    for option in ["ro", "noexec", "nosuid", "nodev"] {
        assert!(fields[3].split(',').any(|o| o == option), "-o {option}: {line}");
    }
    let e = env.sh_fails(r#"echo x > "$M/pithos/new.txt""#);
    assert!(e.contains("Read-only file system"), "{e}");
    env.unmount();

    let point = env.m();
    for (opts, says) in [
        ("cache_sise=1G", "unknown mount option \"cache_sise=1G\""),
        ("cache_size=lots", "is not a size"),
        ("attr_ttl=5 parsecs", "is not a duration"),
    ] {
        let mut c = pithosfs(&env, &["mount", "-o", opts]);
        c.arg(&point);
        let out = run(c);
        assert!(!out.status.success(), "-o {opts} was taken");
        assert!(stderr(&out).contains(says), "-o {opts}: {}", stderr(&out));
        assert!(!is_mounted(&point));
    }
    // the same through mount(8)'s helper, which hands the options over as they are
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mount.fuse.pithosfs");
    let run_helper = |opts: &str| {
        let mut c = Command::new("sh");
        c.arg(&helper)
            .args(["pithos", point.to_str().unwrap(), "-o", opts])
            .env("PITHOSFS", BIN)
            .env("PITHOSFS_URL", env.cloud.identity())
            .env("PITHOSFS_TOKEN", TOKEN)
            .env("HOME", env.root.join("home"))
            .env_remove("XDG_CACHE_HOME");
        c.output().unwrap()
    };
    let out = run_helper("rw,cache_sise=1G");
    assert!(!out.status.success() && stderr(&out).contains("unknown mount option"), "{}", stderr(&out));
    let _guard = Unmounted(point.clone());
    let out = run_helper("defaults,_netdev,cache_size=256M,attr_ttl=2s");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(mount_line(&point).is_some_and(|l| l.contains(" fuse.pithosfs ")));
    let out = run(pithosfs(&env, &["unmount", point.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_killed_mount_leaves_a_dead_mount_point_that_mount_names_and_unmount_clears() {
    let mut env = Env::new();
    // A long attribute TTL: the kernel still answers a stat of the root from its cache.
    env.mount(&["--attr-ttl", "5m"]);
    let point = env.m();
    assert!(std::fs::metadata(&point).unwrap().is_dir());
    let mut m = env.mounts.pop().unwrap();
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let e = std::fs::read_dir(&point).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");

    let mut c = pithosfs(&env, &["mount"]);
    c.arg(&point);
    let out = run(c);
    let said = stderr(&out);
    assert!(!out.status.success());
    assert!(said.contains("not connected (a pithosfs that ended without unmounting): run `pithosfs unmount"), "{said}");
    let out = run(pithosfs(&env, &["unmount", point.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!is_mounted(&point), "still mounted after pithosfs unmount");
    assert!(std::fs::metadata(&point).unwrap().is_dir());
    // and it mounts again
    env.mount(&[]);
    env.sh(r#"ls "$M/pithos""#);
    env.unmount();
}

#[test]
fn unmount_says_in_plain_words_what_stops_it() {
    let mut env = Env::new();
    let free = env.root.join("free");
    std::fs::create_dir_all(&free).unwrap();
    let out = run(pithosfs(&env, &["unmount", free.to_str().unwrap()]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not mounted"), "{}", stderr(&out));
    let out = run(pithosfs(&env, &["unmount", "/proc"]));
    assert!(stderr(&out).contains("not a pithosfs mount"), "{}", stderr(&out));

    env.mount(&[]);
    let mut sleeper =
        Command::new("sleep").arg("300").current_dir(env.m().join("pithos")).stdin(Stdio::null()).spawn().unwrap();
    let out = run(pithosfs(&env, &["unmount", env.m().to_str().unwrap()]));
    let said = stderr(&out);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(!out.status.success(), "unmounted under a process working in it");
    assert!(said.contains(&format!("in use by sleep (pid {})", sleeper.id())), "{said}");
    assert!(said.contains("`cd` out"), "{said}");
    env.unmount();
}

#[test]
fn systemd_is_told_when_the_mount_is_ready() {
    let env = Env::new();
    let socket_path = env.root.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let point = env.m();
    std::fs::create_dir_all(&point).unwrap();
    let log = std::fs::File::create(env.root.join("notify-mount.log")).unwrap();
    let mut c = pithosfs(&env, &["mount", "-f"]);
    c.arg(&point).env("NOTIFY_SOCKET", &socket_path).stdout(log.try_clone().unwrap()).stderr(log);
    let mut child = c.spawn().unwrap();
    let _guard = Unmounted(point.clone());
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within 60 s");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "READY=1");
    // ready means mounted: the mount answers at once
    assert!(is_mounted(&point));
    assert!(std::fs::metadata(point.join("pithos")).unwrap().is_dir());
    let out = run(pithosfs(&env, &["unmount", point.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let n = socket.recv(&mut buf).expect("STOPPING=1 at unmount");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "STOPPING=1");
    let status = wait_child(&mut child, Duration::from_secs(30)).expect("the mount process ends");
    assert!(status.success());
}

#[test]
fn verbosity_and_rust_log_choose_what_is_logged() {
    let mut env = Env::new();
    // -vv: pithosfs's own debug lines (fuser's per-request ones stay out)
    env.mount(&["-vv"]);
    env.sh(r#"head -c 100000 /dev/urandom > "$M/pithos/blob""#);
    env.unmount();
    let text = std::fs::read_to_string(env.root.join("mnt.0.log")).unwrap();
    assert!(text.contains("DEBUG pithosfs::clients::http: PUT "), "no pithosfs debug lines at -vv:\n{text}");
    assert!(!text.contains("DEBUG fuser"), "fuser's request lines drown pithosfs's at -vv");
    assert!(!text.contains('\x1b'), "ANSI escapes in a log that is not a terminal");
    // RUST_LOG wins over -v: only warnings
    let log = env.root.join("quiet.log");
    let m = Mount::start(
        &env.m(),
        &log,
        &["-vv"],
        &[("PITHOSFS_URL", &env.cloud.identity()), ("PITHOSFS_TOKEN", TOKEN), ("RUST_LOG", "warn")],
    );
    env.mounts.push(m);
    env.sh(r#"echo quiet > "$M/pithos/q.txt""#);
    env.unmount();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("mounted") && !text.contains("INFO") && !text.contains("DEBUG"), "{text}");
    // --log-file: the logs go there, the messages to stderr
    let file = env.root.join("chosen.log");
    let file_arg = file.to_string_lossy().into_owned();
    env.mount(&["--log-file", &file_arg]);
    env.sh(r#"echo there > "$M/pithos/t.txt""#);
    env.unmount();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("committed pithos/t.txt"), "{text}");
    assert!(!text.contains('\x1b'));
}

/// A mount's log (at its default level) records a retried request, a
/// conflict and the failed commit it causes, with no token in it.
#[test]
fn a_mounts_log_records_retries_and_conflicts() {
    use std::io::{Seek, SeekFrom, Write};
    let mut env = Env::new();
    env.cloud.put("pithos", "seen.txt", b"seen\n");
    env.cloud.put("pithos", "c.txt", b"original\n");
    let proxy = harness::faults::FaultProxy::start(&env.cloud.url, 1);
    let log = env.root.join("proxied.log");
    let identity = proxy.identity();
    let limits = "first_backoff=0.05,max_backoff=0.2";
    let envs = [("PITHOSFS_URL", identity.as_str()), ("PITHOSFS_TOKEN", TOKEN), ("PITHOSFS_HTTP_LIMITS", limits)];
    env.mounts.push(Mount::start(&env.m(), &log, &[], &envs));
    // The first read of seen.txt is answered 503; the client tries again.
    let hits =
        proxy.spoil(|m, p, _| m == "GET" && p.ends_with("/pithos/seen.txt"), harness::faults::Fault::Unavailable);
    assert_eq!(env.sh(r#"cat "$M/pithos/seen.txt""#), "seen\n");
    assert_eq!(hits.get(), 1, "the fault was not injected");
    // c.txt changes remotely while open here.
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(env.m().join("pithos/c.txt")).unwrap();
    env.cloud.put("pithos", "c.txt", b"remote change\n");
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b"LOCAL").unwrap();
    assert!(f.sync_all().is_err(), "a commit over a remote change must fail");
    drop(f);
    env.unmount();
    let text = std::fs::read_to_string(&log).unwrap();
    let line = |has: &str| text.lines().find(|l| l.contains(has)).map(str::to_string);
    let retry = line("retrying").unwrap_or_else(|| panic!("no retry logged:\n{text}"));
    assert!(retry.contains(" INFO pithosfs::clients::http: GET ") && retry.contains("seen.txt"), "{retry}");
    let conflict = line("conflict:").unwrap_or_else(|| panic!("no conflict logged:\n{text}"));
    assert!(conflict.contains(" WARN ") && conflict.contains("c.txt changed remotely"), "{conflict}");
    assert!(conflict.contains("saved as c.txt.conflict-"), "{conflict}");
    assert!(!text.contains(TOKEN), "the token is in the log");
}

#[test]
fn shell_completions_and_the_manual_page_come_from_the_command() {
    let out = Command::new(BIN).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let bash = String::from_utf8(out.stdout).unwrap();
    assert!(bash.contains("complete -F") && bash.contains("mount") && bash.contains("file"), "{bash}");
    assert!(bash.contains("--cache-size"), "mount's options are completed");
    for shell in ["zsh", "fish"] {
        let out = Command::new(BIN).args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("unmount"), "{shell}");
    }
    for page in [None, Some("mount")] {
        let out = Command::new(BIN).arg("manpage").args(page).output().unwrap();
        assert!(out.status.success());
        let roff = String::from_utf8(out.stdout).unwrap();
        let title = page.map(|p| format!("pithosfs-{p}")).unwrap_or("pithosfs".into());
        assert!(roff.contains(&format!(".TH {title} 1")), "{roff}");
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS"] {
            assert!(roff.contains(section), "{title}: no {section}");
        }
        // rendered by man(1) when it is here (scripts/setup installs man-db for CI)
        if Command::new("man").arg("--version").output().is_err() {
            assert!(std::env::var_os("CI").is_none(), "man is missing in CI (scripts/setup installs man-db)");
            continue;
        }
        let mut man = Command::new("man")
            .args(["-l", "-"])
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "100")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        man.stdin.take().unwrap().write_all(roff.as_bytes()).unwrap();
        let shown = man.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.status.success(), "man -l - failed: {}", String::from_utf8_lossy(&shown.stderr));
        assert!(shown.stderr.is_empty(), "man warned: {}", String::from_utf8_lossy(&shown.stderr));
        assert!(text.contains("SYNOPSIS") && text.contains("OPTIONS"), "{text}");
        if page == Some("mount") {
            assert!(text.contains("--cache-size") && text.contains("512M"), "{text}");
        }
    }
}

/// `pithosfs ARGS` run as `user` (through setpriv), HOME `home`.
fn pithosfs_as(env: &Env, user: &User, home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([format!("--reuid={}", user.uid), format!("--regid={}", user.gid), "--clear-groups".into()])
        .args(["--", BIN])
        .args(args)
        .env("PITHOSFS_URL", env.cloud.identity())
        .env("PITHOSFS_TOKEN", TOKEN)
        .env("HOME", home)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("PITHOSFS_TOKEN_FILE")
        .env_remove("KAMAKI_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    c
}

#[test]
fn a_users_mount_goes_through_fusermount3_says_mounted_only_when_it_is_and_shows_as_fuse_pithosfs() {
    let mut env = Env::new();
    env.open_to_users();
    // A user with a name: fusermount3 looks it up.
    let user = User::unprivileged();
    let point = env.root.join("user-mnt");
    let home = env.root.join("user-home");
    for dir in [&point, &home] {
        std::fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).unwrap();
    }
    let _guard = Unmounted(point.clone());
    let p = point.to_str().unwrap();
    // Root's mount is not this user's to unmount.
    env.mount(&[]);
    let out = pithosfs_as(&env, &user, &home, &["unmount", env.m().to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success() && is_mounted(&env.m()), "a user unmounted root's mount");
    assert!(stderr(&out).contains("permission denied: only the user who mounted it"), "{}", stderr(&out));
    env.unmount();
    // The login succeeds, then fusermount3 refuses allow_other (not allowed in
    // /etc/fuse.conf): the mount call itself fails, after everything before it worked.
    let fuse_conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if !fuse_conf.lines().any(|l| l.trim() == "user_allow_other") {
        for args in [&["mount", "-f", p, "--allow-other"][..], &["mount", p, "--allow-other"][..]] {
            let out = pithosfs_as(&env, &user, &home, args).output().unwrap();
            let said = stderr(&out);
            assert!(!out.status.success(), "{args:?} mounted: {said}");
            assert!(!said.contains("mounted"), "{args:?} said mounted: {said}");
            assert!(said.contains("allow_other"), "{args:?}: fusermount3's reason is shown: {said}");
            assert!(!is_mounted(&point));
        }
    }
    let out = pithosfs_as(&env, &user, &home, &["mount", p]).output().unwrap();
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    let line = mount_line(&point).expect("mounted once `mount` returned");
    assert_eq!(line.split_whitespace().nth(2), Some("fuse.pithosfs"), "{line}");
    let out = pithosfs_as(&env, &user, &home, &["unmount", p]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!is_mounted(&point));
    let log = printed_log(&said);
    let pid: u32 = log.to_string_lossy().trim_end_matches(".log").rsplit('-').next().unwrap().parse().unwrap();
    wait_until("the mount process ends", Duration::from_secs(30), || !Path::new(&format!("/proc/{pid}")).exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("WARN") && !text.contains("ERROR"), "a clean unmount logged a warning:\n{text}");
}
