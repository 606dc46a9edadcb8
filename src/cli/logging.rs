//! Where logs go and how much of them: `-v` (info), `-vv` (debug), `RUST_LOG`
//! (or its older name `PITHOSFS_LOG`) for a filter of one's own, `--log-file`.
//! Colours only on a terminal: a log file or the journal gets plain text.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// How much to log when neither `-v` nor `RUST_LOG` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// Warnings and errors only (the control commands).
    Warnings,
    /// pithosfs's own info lines too (commits, conflicts): a mount's log is
    /// the record of what it did.
    Record,
}

/// The filter: `RUST_LOG` (or `PITHOSFS_LOG`) when set, else from `-v`.
pub fn filter(verbose: u8, quiet: Quiet) -> tracing_subscriber::EnvFilter {
    for var in ["RUST_LOG", "PITHOSFS_LOG"] {
        if let Ok(f) = tracing_subscriber::EnvFilter::try_from_env(var) {
            return f;
        }
    }
    // fuser logs every kernel request at debug: pithosfs's own lines stay readable at -vv.
    let directives = match (verbose, quiet) {
        (0, Quiet::Warnings) => "warn",
        (0, Quiet::Record) | (1, _) => "warn,pithosfs=info",
        (2, _) => "info,pithosfs=debug",
        _ => "debug",
    };
    tracing_subscriber::EnvFilter::new(directives)
}

/// Starts logging to `file` (appended to, mode 0600: logs name files) or to
/// stderr. Colours only when the log goes to a terminal.
pub fn init(verbose: u8, quiet: Quiet, file: Option<&Path>) -> Result<(), String> {
    let builder = tracing_subscriber::fmt().with_env_filter(filter(verbose, quiet));
    match file {
        Some(path) => {
            let f = open_log(path)?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).try_init()
        }
        None => builder.with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).try_init(),
    }
    .map_err(|e| format!("cannot start logging: {e}"))
}

/// Opens (creating it, and its folder) a log file for appending, mode 0600.
pub fn open_log(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))
}

/// Where background mounts keep their logs: the user's own cache folder (not
/// a world-readable /tmp, since logs name files).
pub fn log_dir() -> PathBuf {
    crate::fs::default_cache_dir().join("log")
}

/// The log of the background mount process `pid` at `mountpoint`:
/// `mount-<mount point as a slug>-<pid>.log`, found by where it is mounted and
/// told apart from the logs of earlier mounts there by its process.
pub fn daemon_log(mountpoint: &Path, pid: u32) -> PathBuf {
    log_dir().join(format!("mount-{}-{pid}.log", slug(mountpoint)))
}

/// The pid a daemon log is named after.
pub fn daemon_log_pid(name: &str) -> Option<u32> {
    name.strip_prefix("mount-")?.strip_suffix(".log")?.rsplit('-').next()?.parse().ok()
}

/// A mount point as a file name: `/mnt/my photos` → `mnt-my-photos` (bounded).
fn slug(mountpoint: &Path) -> String {
    let text = std::path::absolute(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    let mut s = String::new();
    for c in text.to_string_lossy().chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '-' };
        if !(c == '-' && (s.is_empty() || s.ends_with('-'))) {
            s.push(c);
        }
    }
    let s: String = s.trim_end_matches('-').chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
    if s.is_empty() {
        "root".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_logs_are_named_after_the_mount_point_and_the_process() {
        let log = daemon_log(Path::new("/mnt/my photos/"), 4242);
        let name = log.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "mount-mnt-my-photos-4242.log");
        assert_eq!(daemon_log_pid(name), Some(4242));
        assert_eq!(daemon_log_pid("mount-99.log"), Some(99));
        assert_eq!(daemon_log_pid("notes.txt"), None);
        assert_eq!(slug(Path::new("/")), "root");
        assert!(slug(Path::new(&"/x".repeat(100))).len() <= 60);
    }
}
