//! A mount point as the system sees it: free, mounted, or left dead by a
//! pithosfs that ended without unmounting; and `pithosfs unmount`, with its
//! failures said in plain words.
//!
//! Nothing here looks inside a mount (no `stat` of the mount point itself,
//! no `canonicalize` through it): a dead FUSE mount answers every such call
//! ENOTCONN, and a live one would be asked for attributes it need not give.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What is at a mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A directory, nothing mounted on it.
    Free,
    /// Mounted: its filesystem type (`fuse.pithosfs`, …) and source.
    Mounted { fstype: String, source: String },
    /// A FUSE mount whose process ended without unmounting ("Transport endpoint is not connected").
    Dead,
}

/// The state of `path`, or why it cannot be a mount point.
pub fn state(path: &Path) -> Result<State, String> {
    let mounted = entry(path);
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return Ok(State::Dead),
        // Another user's mount refuses even root a stat (without allow_other):
        // the mount table still says what is there.
        Err(_) if mounted.is_some() => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{}: no such directory", path.display()))
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(m) if !m.is_dir() => return Err(format!("{} is not a directory", path.display())),
        Ok(_) => {}
    }
    Ok(match mounted {
        // The kernel answers a stat from its cache for as long as the attributes
        // are trusted (--attr-ttl), dead connection or not; statfs always asks.
        Some(e) if e.fstype.starts_with("fuse") && statfs_errno(path) == Some(libc::ENOTCONN) => State::Dead,
        Some(e) => State::Mounted { fstype: e.fstype, source: e.source },
        None => State::Free,
    })
}

/// The errno of statfs(2) on `path`, if it fails.
fn statfs_errno(path: &Path) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a NUL-terminated path and a zeroed statfs buffer, both ours for the call.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut buf) } == 0 {
        return None;
    }
    std::io::Error::last_os_error().raw_os_error()
}

/// Whether `path` is a mount point now (live or dead).
pub fn is_mounted(path: &Path) -> bool {
    entry(path).is_some()
}

/// The message for a dead mount point, naming the command that clears it.
pub fn dead_message(path: &Path) -> String {
    format!(
        "{p}: not connected (a pithosfs that ended without unmounting): run `pithosfs unmount {p}`",
        p = path.display()
    )
}

/// One line of /proc/self/mounts.
#[derive(Debug, Clone)]
struct Entry {
    source: String,
    fstype: String,
}

/// The mount table's line for `path` (the last one: the mount on top).
fn entry(path: &Path) -> Option<Entry> {
    let want = table_path(path)?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().rev().find_map(|l| {
        let mut fields = l.split(' ');
        let source = unescape(fields.next()?);
        let point = unescape(fields.next()?);
        let fstype = unescape(fields.next()?);
        (Path::new(&point) == want).then_some(Entry { source, fstype })
    })
}

/// The device (major, minor) of the mount on top at `path`, from
/// /proc/self/mountinfo: a FUSE mount's backing device info in
/// /sys/class/bdi is named after it.
pub fn device(path: &Path) -> Option<(u32, u32)> {
    let want = table_path(path)?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().rev().find_map(|l| {
        // id parent major:minor root mount-point ...
        let mut fields = l.split(' ').skip(2);
        let dev = fields.next()?;
        let point = unescape(fields.nth(1)?);
        if Path::new(&point) != want {
            return None;
        }
        let (major, minor) = dev.split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

/// `path` as the mount table spells it: absolute, symlinks resolved, without
/// resolving the last component through the mount (the parent is resolved
/// and the name joined to it).
fn table_path(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) if name != ".." => Some(parent.canonicalize().ok()?.join(name)),
        _ => absolute.canonicalize().ok(),
    }
}

/// Undoes the kernel's octal escapes in /proc/mounts (`\040` for a space, …).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts the pithosfs at `path`. A live mount is unmounted as usual (every
/// file was committed when it was closed, so nothing is left to send once this
/// returns); a dead one is detached (lazy unmount: nothing is behind it).
pub fn unmount(path: &Path) -> Result<(), String> {
    let p = path.display();
    let dead = match state(path)? {
        State::Free => return Err(format!("{p}: not mounted")),
        State::Mounted { fstype, source } if !fstype.starts_with("fuse") => {
            return Err(format!("{p} is not a pithosfs mount (it is {source}, {fstype})"))
        }
        State::Mounted { .. } => false,
        State::Dead => true,
    };
    let mut args = vec!["-u"];
    if dead {
        args.push("-z");
    }
    let out = match std::process::Command::new("fusermount3").args(&args).arg(path).output() {
        Ok(out) => out,
        // Without fusermount3 (root only): umount(8), lazily for a dead mount.
        Err(_) => std::process::Command::new("umount")
            .args(if dead { &["-l"][..] } else { &[][..] })
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run fusermount3 or umount: {e}"))?,
    };
    if !out.status.success() {
        return Err(explain_failure(path, &String::from_utf8_lossy(&out.stderr)));
    }
    // fusermount3 returns when the kernel let go; the table follows at once,
    // but wait a little, bounded, for the callers that mount again right away.
    for _ in 0..200 {
        if !is_mounted(path) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}

/// fusermount3's complaint, in plain words.
fn explain_failure(path: &Path, said: &str) -> String {
    let p = path.display();
    let lower = said.to_lowercase();
    if lower.contains("busy") {
        let holders = holders(path);
        if holders.is_empty() {
            return format!("{p}: in use: close the files open in it and `cd` out of it, then unmount again");
        }
        let list: Vec<String> = holders.iter().map(|(pid, name)| format!("{name} (pid {pid})")).collect();
        return format!(
            "{p}: in use by {}: close the files open in it and `cd` out of it, then unmount again",
            list.join(", ")
        );
    }
    // fusermount3 looks for the caller's own mounts: another user's is "not found".
    let not_found = lower.contains("not found in") || lower.contains("not mounted");
    let others = not_found && is_mounted(path);
    if not_found && !others {
        return format!("{p}: not mounted");
    }
    if others || lower.contains("permission denied") || lower.contains("not permitted") {
        return format!("{p}: permission denied: only the user who mounted it (or root) can unmount it");
    }
    format!("{p}: cannot unmount: {}", said.trim())
}

/// Processes whose working directory, root or an open file is under `path`
/// (from /proc: links are read, nothing under the mount is touched).
fn holders(path: &Path) -> Vec<(u32, String)> {
    let Some(point) = table_path(path) else { return Vec::new() };
    let under = |link: PathBuf| link == point || link.starts_with(&point);
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let dir = p.path();
        let mut holds = ["cwd", "root"].iter().any(|l| std::fs::read_link(dir.join(l)).is_ok_and(under));
        if !holds {
            if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
                holds = fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(under));
            }
        }
        if holds && pid != std::process::id() {
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim().to_string();
            found.push((pid, name));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_the_mount_table() {
        assert_eq!(unescape(r"/mnt/my\040files"), "/mnt/my files");
        assert_eq!(unescape(r"/a\134b\011c"), "/a\\b\tc");
        assert_eq!(unescape(r"/plain\9"), r"/plain\9");
    }

    #[test]
    fn a_plain_directory_is_free_and_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(state(dir.path()).unwrap(), State::Free);
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(state(&file).unwrap_err().contains("not a directory"));
        assert!(state(&dir.path().join("none")).unwrap_err().contains("no such directory"));
        assert!(unmount(dir.path()).unwrap_err().contains("not mounted"));
    }

    #[test]
    fn the_root_is_mounted() {
        assert!(is_mounted(Path::new("/")));
    }

    #[test]
    fn a_mount_has_the_device_stat_reports() {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata("/proc").unwrap().dev();
        assert_eq!(device(Path::new("/proc")), Some((libc::major(dev), libc::minor(dev))));
        assert_eq!(device(Path::new("/proc/self")), None); // not a mount point
    }
}
