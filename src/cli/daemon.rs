//! The background mount: `pithosfs mount DIR` starts `pithosfs mount -f DIR`
//! detached, with a pipe on which the mount process says when the FUSE session
//! is up. Only then does the launcher say "mounted"; when the process ends
//! without saying it, the launcher shows what it logged and fails.
//!
//! The mount process writes everything (its logs, its panics) to a log of its
//! own, named after its mount point and its pid (`crate::cli::logging::daemon_log`).

use super::logging;
use super::mount::MountRequest;
use super::mountpoint;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the launcher waits for the mount (logging in, a first listing,
/// the mount call); past it, the mount process is stopped.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// Starts the mount process and waits until it is mounted (or failed).
pub fn launch(req: &MountRequest) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let dir = logging::log_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    prune_logs(&dir);
    // Earlier versions logged to the cache folder itself (`mount-<pid>.log`).
    if let Some(cache) = dir.parent() {
        prune_logs(cache);
    }
    let (read_end, write_end) = pipe()?;
    let fd = write_end.as_raw_fd();
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    args.extend(["--foreground".into(), "--ready-fd".into(), fd.to_string().into()]);
    let mut command = std::process::Command::new(exe);
    command
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        // Until it opens its log, the mount process's complaints reach the user.
        .stderr(std::process::Stdio::inherit())
        .process_group(0);
    // SAFETY: fcntl is async-signal-safe; it only lets the pipe's write end
    // (ours, open) survive the exec.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start the mount process: {e}"))?;
    // Only the mount process holds the write end now: its end is our EOF.
    drop(write_end);
    let log = req.log_file.clone().unwrap_or_else(|| logging::daemon_log(&req.mountpoint, child.id()));
    match wait_ready(read_end, READY_WITHIN) {
        Ready::Mounted(what) => {
            // What it said on the way up ("no cloud configured: serving the local cloud…", warnings).
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            for line in said.lines().filter(|l| !l.starts_with("pithosfs: mounted ")) {
                eprintln!("{line}");
            }
            eprintln!("pithosfs: mounted {what} at {}; log: {}", req.mountpoint.display(), log.display());
            Ok(())
        }
        Ready::Ended => {
            let status = wait_bounded(&mut child, Duration::from_secs(10));
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            let status = status.map(|s| s.to_string()).unwrap_or_else(|| "still running".into());
            Err(format!("the mount failed ({status}); its log ({}):\n{}", log.display(), said.trim_end()))
        }
        Ready::TimedOut => {
            let _ = child.kill();
            let _ = child.wait();
            if mountpoint::is_mounted(&req.mountpoint) {
                let _ = mountpoint::unmount(&req.mountpoint);
            }
            Err(format!(
                "no mount at {} after {} s: stopped the mount process; its log: {}",
                req.mountpoint.display(),
                READY_WITHIN.as_secs(),
                log.display()
            ))
        }
    }
}

/// What the mount process said on the readiness pipe.
enum Ready {
    /// "ready WHAT": mounted (WHAT names the store: `pithos`, `pithos:photos`, …).
    Mounted(String),
    /// The pipe closed unsaid: the process ended (or gave up) without mounting.
    Ended,
    TimedOut,
}

fn wait_ready(read_end: OwnedFd, within: Duration) -> Ready {
    let deadline = Instant::now() + within;
    let mut pipe = std::fs::File::from(read_end);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ready::TimedOut;
        }
        let mut poll = libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().min(1000) as libc::c_int;
        // SAFETY: one pollfd, ours, for the duration of the call.
        let n = unsafe { libc::poll(&mut poll, 1, ms) };
        if n > 0 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Ready::Ended;
        }
    }
    // The mount process writes its one line at once and closes the pipe.
    let mut said = String::new();
    let _ = pipe.by_ref().take(4096).read_to_string(&mut said);
    match said.lines().next().and_then(|l| l.strip_prefix("ready ")) {
        Some(what) => Ready::Mounted(what.to_string()),
        None => Ready::Ended,
    }
}

/// In the mount process: tells the launcher that the mount is up.
pub fn tell_ready(fd: i32, what: &str) {
    // Only a pipe, and not stdin/stdout/stderr: the number came on the command line.
    // SAFETY: fstat on any number is harmless; it fails for a closed one.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if fd < 3 || unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        tracing::warn!("--ready-fd {fd} is not a pipe: not telling anyone the mount is up");
        return;
    }
    // SAFETY: an open pipe the launcher handed to this process alone; owned from here on (closed on drop).
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    use std::io::Write;
    let _ = writeln!(pipe, "ready {what}");
}

/// In the mount process: sends stdout and stderr (logs, panics, messages) to `log`.
pub fn redirect_output(log: &Path) -> Result<(), String> {
    let file = logging::open_log(log)?;
    for target in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 onto the standard descriptors, with a file we hold open.
        if unsafe { libc::dup2(file.as_raw_fd(), target) } == -1 {
            return Err(format!("cannot write to {}: {}", log.display(), std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// A pipe, both ends close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors, which are then owned here.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(format!("cannot make a pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both were just opened and belong to no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn wait_bounded(child: &mut std::process::Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Daemon logs kept: those of mounts still running, and the newest of the
/// others up to this many (a mount that ended, cleanly or killed, leaves its
/// log for a while; they must not pile up in the cache dir for ever).
const KEPT_LOGS: usize = 8;

/// Removes the oldest logs of ended mounts, making room for one more.
fn prune_logs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut ended: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let pid = logging::daemon_log_pid(&e.file_name().into_string().ok()?)?;
            if process_runs(pid) {
                return None;
            }
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    ended.sort();
    let extra = ended.len().saturating_sub(KEPT_LOGS - 1);
    for (_, path) in ended.into_iter().take(extra) {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether process `pid` runs (exists and is not a zombie waiting to be reaped).
fn process_runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some(Some('Z' | 'X')) | None)
}
