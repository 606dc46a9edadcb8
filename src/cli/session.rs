//! The FUSE session of a mount, mounted as type `fuse.pithosfs`.
//!
//! fuser (0.18) mounts as root with mount(2) itself, with the type fixed to
//! `fuse` (its `Subtype` option only reaches fusermount3, which non-root
//! mounts go through and which does make the type `fuse.SUBTYPE`). So as
//! root this module makes the mount(2) call with the type `fuse.pithosfs`
//! and hands the /dev/fuse descriptor to fuser; anyone else gets fuser's own
//! path (fusermount3), which names the type from the subtype.

use super::mount::MountRequest;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// The filesystem type in /proc/mounts: `fuse.` and the subtype.
pub const SUBTYPE: &str = "pithosfs";

/// A mounted session, ready to run.
pub struct Mounted<FS: fuser::Filesystem> {
    pub session: fuser::Session<FS>,
    /// Mounted here (not by fuser): nothing unmounts it if the session fails.
    pub own_mount: bool,
}

/// fuser's configuration for `req`.
pub fn config(req: &MountRequest, what: &str) -> fuser::Config {
    let mut options = vec![
        fuser::MountOption::FSName(what.to_string()),
        fuser::MountOption::Subtype(SUBTYPE.into()),
        // The kernel checks modes, owners and groups on every call, for
        // every user (with --allow-other too), as on a local filesystem.
        fuser::MountOption::DefaultPermissions,
    ];
    // fuser mounts nosuid unless told otherwise: say which, explicitly.
    options.push(if req.fs.suid { fuser::MountOption::Suid } else { fuser::MountOption::NoSuid });
    // A device node is an object anyone with the account's token can write:
    // it opens a device only when asked (--dev).
    options.push(if req.fs.dev { fuser::MountOption::Dev } else { fuser::MountOption::NoDev });
    if req.fs.read_only {
        options.push(fuser::MountOption::RO);
    }
    if req.noexec {
        options.push(fuser::MountOption::NoExec);
    }
    let mut config = fuser::Config::default();
    config.mount_options = options;
    config.n_threads = Some(4);
    config.clone_fd = true;
    if req.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config
}

/// Mounts `fs` at the request's mount point (the FUSE handshake done: the
/// mount answers once this returns).
pub fn mount<FS: fuser::Filesystem>(fs: FS, req: &MountRequest, what: &str) -> Result<Mounted<FS>, String> {
    let config = config(req, what);
    let failed = |e: std::io::Error| format!("cannot mount at {}: {e}", req.mountpoint.display());
    match mount_as_root(req, what) {
        Ok(Some(fd)) => {
            let acl = config.acl;
            let session = fuser::Session::from_fd(fs, fd, acl, config).map_err(|e| {
                detach(req);
                failed(e)
            })?;
            Ok(Mounted { session, own_mount: true })
        }
        Ok(None) => {
            let session = fuser::Session::new(fs, &req.mountpoint, &config).map_err(failed)?;
            Ok(Mounted { session, own_mount: false })
        }
        Err(e) => Err(failed(e)),
    }
}

/// Raises the kernel's read-ahead for this mount to the largest request the
/// FUSE handshake allows (`fuse::READ_AHEAD`, 1 MiB). The kernel starts every
/// FUSE mount at its default of 128 KiB, and a sequential reader (even with
/// 1 MiB `read` calls) then gets 128 KiB requests, each a round trip through
/// /dev/fuse: with 1 MiB there are 8 times fewer. Only root may write the setting;
/// anyone else keeps the kernel's default (said in the debug log).
pub fn raise_read_ahead(req: &MountRequest) {
    let kib = crate::fs::fuse::READ_AHEAD >> 10;
    let Some((major, minor)) = super::mountpoint::device(&req.mountpoint) else {
        tracing::debug!("read-ahead left at the kernel's default: the mount is not in /proc/self/mountinfo");
        return;
    };
    let path = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    match std::fs::write(&path, format!("{kib}\n")) {
        Ok(()) => tracing::debug!("read-ahead of the mount set to {kib} KiB ({path})"),
        Err(e) => tracing::debug!("read-ahead left at the kernel's default: cannot write {path}: {e}"),
    }
}

/// Lazily unmounts a mount of our own that its session could not serve.
pub fn detach(req: &MountRequest) {
    if let Ok(target) = CString::new(req.mountpoint.as_os_str().as_bytes()) {
        // SAFETY: a NUL-terminated path; umount2 touches nothing of ours.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// mount(2) of type `fuse.pithosfs`: the /dev/fuse descriptor, or None when
/// this process may not mount (not root: fusermount3's turn).
fn mount_as_root(req: &MountRequest, what: &str) -> std::io::Result<Option<OwnedFd>> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse")?;
    let root_mode = std::fs::metadata(&req.mountpoint)?.mode() & libc::S_IFMT;
    // SAFETY: getuid/getgid have no failure mode.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data =
        format!("fd={},rootmode={root_mode:o},user_id={uid},group_id={gid},default_permissions", dev.as_raw_fd());
    if req.allow_other {
        data.push_str(",allow_other");
    }
    let mut flags = 0;
    if !req.fs.suid {
        flags |= libc::MS_NOSUID;
    }
    if !req.fs.dev {
        flags |= libc::MS_NODEV;
    }
    if req.fs.read_only {
        flags |= libc::MS_RDONLY;
    }
    if req.noexec {
        flags |= libc::MS_NOEXEC;
    }
    let nul = |s: &[u8]| CString::new(s).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput));
    let source = nul(what.as_bytes())?;
    let target = nul(req.mountpoint.as_os_str().as_bytes())?;
    let fstype = nul(format!("fuse.{SUBTYPE}").as_bytes())?;
    let data = nul(data.as_bytes())?;
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data.as_ptr().cast::<libc::c_void>())
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        // Root without the right to mount (a container, a user namespace): fusermount3's turn.
        return if e.raw_os_error() == Some(libc::EPERM) { Ok(None) } else { Err(e) };
    }
    Ok(Some(OwnedFd::from(dev)))
}
