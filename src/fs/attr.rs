//! POSIX attributes kept in object metadata, and read back from listings.
//!
//! Mode, owner, group and the times travel as `X-Object-Meta-Posix-*`; symlinks are
//! objects of type `inode/symlink` holding their target. JSON listings of the
//! local cloud carry user metadata, so `ls -l` needs no request per file.
//!
//! Every number here comes from a server and is bounded before use: times
//! are clamped into a sane range, owners and modes that are not numbers (or
//! are the "no owner" value) are ignored, and setuid/setgid bits are shown
//! only to a mount that opted in (`--suid`).

use super::store::ObjectMeta;
pub use super::time::Time;
use crate::blocks::{MAX_BLOCKS_PER_OBJECT, MAX_BLOCK_SIZE};
use crate::clients::storage::is_directory_type;
use std::collections::BTreeMap;

pub const META_MODE: &str = "posix-mode";
pub const META_UID: &str = "posix-uid";
pub const META_GID: &str = "posix-gid";
pub const META_MTIME: &str = "posix-mtime";
/// The last change of the object's content or attributes (see SEMANTICS,
/// "Times"); absent on objects no mount wrote: their mtime.
pub const META_CTIME: &str = "posix-ctime";
/// An access time set explicitly (utimensat); absent: the mtime (reads do
/// not update it, as with `noatime`).
pub const META_ATIME: &str = "posix-atime";
/// The machine that recorded `posix-uid`/`-gid` (see `owners`).
pub const META_HOST: &str = "posix-host";
/// A device node's device number (`rdev`, decimal).
pub const META_RDEV: &str = "posix-rdev";
/// The hard-link group a name belongs to (see `links`), and how many names
/// the group had when this one was last written.
pub const META_LINK: &str = "posix-link";
pub const META_NLINK: &str = "posix-nlink";
pub const SYMLINK_TYPE: &str = "inode/symlink";
/// Special files, by their shared-mime-info names (as `inode/symlink`).
pub const FIFO_TYPE: &str = "inode/fifo";
pub const SOCKET_TYPE: &str = "inode/socket";
pub const CHAR_DEVICE_TYPE: &str = "inode/chardevice";
pub const BLOCK_DEVICE_TYPE: &str = "inode/blockdevice";

/// The most names a link group has (`EMLINK` past it): every write through
/// one name is copied to the others.
pub const LINK_MAX: u32 = 1000;

/// The longest symlink target (bytes): what the kernel's `readlink` takes
/// (`PATH_MAX` less its NUL).
pub const SYMLINK_MAX: usize = 4095;

/// The largest size a listing may report for an object the mount shows: the
/// most blocks of the largest block size. Anything larger is no object this
/// mount can read, whatever its block size.
pub const MAX_LISTED_SIZE: u64 = MAX_BLOCKS_PER_OBJECT * MAX_BLOCK_SIZE;

/// Setuid and setgid: shown only with `--suid`.
pub const SETID_BITS: u32 = 0o6000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Kind {
    /// The kind an object of `content_type` is.
    pub fn of_content_type(content_type: &str) -> Kind {
        match content_type.split(';').next().unwrap_or("").trim() {
            SYMLINK_TYPE => Kind::Symlink,
            FIFO_TYPE => Kind::Fifo,
            SOCKET_TYPE => Kind::Socket,
            CHAR_DEVICE_TYPE => Kind::CharDevice,
            BLOCK_DEVICE_TYPE => Kind::BlockDevice,
            _ if is_directory_type(content_type) => Kind::Dir,
            _ => Kind::File,
        }
    }

    /// The kind of a mknod(2) mode's file type (None: not a node mknod makes here).
    pub fn of_mode(mode: u32) -> Option<Kind> {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Some(Kind::File),
            libc::S_IFIFO => Some(Kind::Fifo),
            libc::S_IFSOCK => Some(Kind::Socket),
            libc::S_IFCHR => Some(Kind::CharDevice),
            libc::S_IFBLK => Some(Kind::BlockDevice),
            _ => None,
        }
    }

    /// The content type of a special file's object.
    pub fn special_type(self) -> Option<&'static str> {
        match self {
            Kind::Fifo => Some(FIFO_TYPE),
            Kind::Socket => Some(SOCKET_TYPE),
            Kind::CharDevice => Some(CHAR_DEVICE_TYPE),
            Kind::BlockDevice => Some(BLOCK_DEVICE_TYPE),
            Kind::File | Kind::Dir | Kind::Symlink => None,
        }
    }

    /// Whether the kernel opens it itself (FIFOs, sockets, devices): the
    /// object holds no data, only the node's attributes.
    pub fn is_special(self) -> bool {
        self.special_type().is_some()
    }
}

/// What getattr reports for one node.
#[derive(Debug, Clone)]
pub struct Attr {
    pub kind: Kind,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: Time,
    /// The last change of content or attributes (seconds since the epoch).
    pub ctime: Time,
    /// An access time set explicitly; None: the mtime.
    pub atime: Option<Time>,
    /// A device node's device number (0 for anything else).
    pub rdev: u32,
    /// The hard-link group of the name, and how many names it has.
    pub link: Option<String>,
    pub nlink: u32,
    /// Permission bits; None: the mount's default.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The machine whose users `uid`/`gid` are (see `owners`).
    pub host: Option<String>,
    /// What names the content (Pithos Merkle hash, Swift ETag) and the
    /// Pithos version (None for implicit folders).
    pub hash: Option<String>,
    pub version: Option<String>,
    pub uuid: Option<String>,
    /// User metadata other than the POSIX keys (xattrs `user.*`), keys lower-case.
    pub meta: BTreeMap<String, String>,
    /// Whether an object backs it (a folder may be only a prefix).
    pub stored: bool,
}

impl Attr {
    pub fn dir(mtime: Time) -> Attr {
        Attr {
            kind: Kind::Dir,
            size: 0,
            mtime,
            ctime: mtime,
            atime: None,
            rdev: 0,
            link: None,
            nlink: 1,
            mode: None,
            uid: None,
            gid: None,
            host: None,
            hash: None,
            version: None,
            uuid: None,
            meta: BTreeMap::new(),
            stored: false,
        }
    }

    pub fn new_file(mtime: Time) -> Attr {
        Attr { kind: Kind::File, ..Attr::dir(mtime) }
    }

    fn from_parts(content_type: &str, size: u64, last_modified: Option<f64>, meta: &BTreeMap<String, String>) -> Attr {
        let kind = Kind::of_content_type(content_type);
        // (uid_t)-1 means "no owner" to the kernel: not an owner to show.
        let num = |k: &str| meta.get(k).and_then(|v| v.trim().parse::<u32>().ok()).filter(|n| *n != u32::MAX);
        let mode = meta.get(META_MODE).and_then(|v| u32::from_str_radix(v.trim(), 8).ok()).map(|m| m & 0o7777);
        let time = |k: &str| meta.get(k).and_then(|v| Time::parse(v));
        let mtime = time(META_MTIME).or_else(|| last_modified.and_then(Time::from_secs_f64)).unwrap_or(Time::EPOCH);
        // A link group id is a token of ours: hex, bounded.
        let link = meta
            .get(META_LINK)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string);
        let nlink = match &link {
            Some(_) => meta.get(META_NLINK).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(1).clamp(1, LINK_MAX),
            None => 1,
        };
        let rdev = match kind {
            Kind::CharDevice | Kind::BlockDevice => {
                meta.get(META_RDEV).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(0)
            }
            _ => 0,
        };
        let user: BTreeMap<String, String> =
            meta.iter().filter(|(k, _)| !k.starts_with("posix-")).map(|(k, v)| (k.clone(), v.clone())).collect();
        Attr {
            kind,
            size: if kind == Kind::Dir || kind.is_special() { 0 } else { size },
            mtime,
            ctime: time(META_CTIME).unwrap_or(mtime),
            atime: time(META_ATIME),
            rdev,
            link,
            nlink,
            mode,
            uid: num(META_UID),
            gid: num(META_GID),
            host: meta.get(META_HOST).map(|h| h.trim().to_string()),
            hash: None,
            version: None,
            uuid: None,
            meta: user,
            stored: true,
        }
    }

    /// What the store says of an object (a listing entry or a HEAD).
    pub fn from_object(o: &ObjectMeta) -> Attr {
        let mut a = Attr::from_parts(&o.content_type, o.bytes, o.modified, &o.meta);
        a.hash = o.tag.clone();
        a.version = o.version.clone();
        a.uuid = o.uuid.clone();
        a
    }

    /// The permission bits the kernel sees: the object's mode (else
    /// `default`), without setuid/setgid unless `allow_setid` (`--suid`).
    /// The bits stay on the server either way: only what is shown changes.
    pub fn permissions(&self, default: u32, allow_setid: bool) -> u16 {
        let mode = self.mode.unwrap_or(default) & 0o7777;
        (if allow_setid { mode } else { mode & !SETID_BITS }) as u16
    }

    /// The metadata to write with a new version of this object: the POSIX
    /// keys and the user's xattrs (a PUT replaces all metadata).
    pub fn to_meta(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(m) = self.mode {
            out.push((META_MODE.into(), format!("{m:o}")));
        }
        if let Some(u) = self.uid {
            out.push((META_UID.into(), u.to_string()));
        }
        if let Some(g) = self.gid {
            out.push((META_GID.into(), g.to_string()));
        }
        if let Some(h) = &self.host {
            out.push((META_HOST.into(), h.clone()));
        }
        out.push((META_MTIME.into(), self.mtime.to_string()));
        out.push((META_CTIME.into(), self.ctime.to_string()));
        if let Some(a) = self.atime {
            out.push((META_ATIME.into(), format!("{a:.9}")));
        }
        if self.rdev != 0 {
            out.push((META_RDEV.into(), self.rdev.to_string()));
        }
        if let Some(l) = &self.link {
            out.push((META_LINK.into(), l.clone()));
            out.push((META_NLINK.into(), self.nlink.to_string()));
        }
        out
    }

    /// The access time shown: the one set, else the mtime.
    pub fn shown_atime(&self) -> Time {
        self.atime.unwrap_or(self.mtime)
    }

    /// A change of the node's content or attributes now: ctime (and, for
    /// content, mtime) move to `at`.
    pub fn changed(&mut self, at: Time, content: bool) {
        if content {
            self.mtime = at;
        }
        self.ctime = at;
    }
}

pub fn now() -> Time {
    Time::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_meta_round_trips() {
        let mut meta = BTreeMap::new();
        meta.insert(META_MODE.to_string(), "100755".to_string());
        meta.insert(META_UID.to_string(), "1000".to_string());
        meta.insert(META_MTIME.to_string(), "1600000000.5".to_string());
        meta.insert("color".to_string(), "blue".to_string());
        let a = Attr::from_parts("text/plain", 12, Some(1.0), &meta);
        let t = |s: &str| Time::parse(s).unwrap();
        assert_eq!(
            (a.kind, a.mode, a.uid, a.gid, a.mtime),
            (Kind::File, Some(0o755), Some(1000), None, t("1600000000.5"))
        );
        assert_eq!(a.meta.len(), 1);
        // no ctime or atime recorded: both read as the mtime
        assert_eq!((a.ctime, a.shown_atime()), (t("1600000000.5"), t("1600000000.5")));
        let back: BTreeMap<String, String> = a.to_meta().into_iter().collect();
        assert_eq!(back.get(META_MODE).map(String::as_str), Some("755"));
        assert_eq!(back.get("color").map(String::as_str), Some("blue"));
        assert_eq!(back.get(META_CTIME).map(String::as_str), Some("1600000000.500000000"));
        assert!(!back.contains_key(META_ATIME), "an atime is written only once set");
        meta.insert(META_CTIME.to_string(), "1700000000".to_string());
        meta.insert(META_ATIME.to_string(), "1500000000".to_string());
        let b = Attr::from_parts("text/plain", 12, Some(1.0), &meta);
        assert_eq!((b.mtime, b.ctime, b.shown_atime()), (t("1600000000.5"), t("1700000000"), t("1500000000")));
        // nanoseconds survive the round trip exactly
        meta.insert(META_MTIME.to_string(), "1900000000.100000000".to_string());
        let c = Attr::from_parts("text/plain", 12, Some(1.0), &meta);
        let back: BTreeMap<String, String> = c.to_meta().into_iter().collect();
        assert_eq!(back.get(META_MTIME).map(String::as_str), Some("1900000000.100000000"));
        assert_eq!(Attr::from_parts("application/directory", 0, None, &BTreeMap::new()).kind, Kind::Dir);
        assert_eq!(Attr::from_parts(SYMLINK_TYPE, 5, None, &BTreeMap::new()).kind, Kind::Symlink);
        // garbage in metadata is ignored, not trusted
        meta.insert(META_MODE.to_string(), "rwx".to_string());
        assert_eq!(Attr::from_parts("x/y", 0, None, &meta).mode, None);
    }

    #[test]
    fn numbers_from_a_server_are_bounded() {
        let with = |k: &str, v: &str| {
            let mut meta = BTreeMap::new();
            meta.insert(k.to_string(), v.to_string());
            Attr::from_parts("text/plain", 1, Some(1000.0), &meta)
        };
        // times: clamped, never a panic; not numbers fall back to Last-Modified
        assert_eq!(with(META_MTIME, "1e300").mtime, Time::MAX);
        assert_eq!(with(META_MTIME, "-5").mtime, Time::EPOCH);
        for not_a_time in ["NaN", "inf", "-inf", "x", ""] {
            assert_eq!(with(META_MTIME, not_a_time).mtime, Time::new(1000, 0), "{not_a_time}");
        }
        assert_eq!(Attr::from_parts("text/plain", 1, Some(f64::NAN), &BTreeMap::new()).mtime, Time::EPOCH);
        assert_eq!(Attr::from_parts("text/plain", 1, Some(1e300), &BTreeMap::new()).mtime, Time::MAX);
        // owners: the "no owner" value and overflows are not owners
        assert_eq!(with(META_UID, "4294967295").uid, None);
        assert_eq!(with(META_UID, "4294967296").uid, None);
        assert_eq!(with(META_GID, "-1").gid, None);
        assert_eq!(with(META_GID, "65534").gid, Some(65534));
        // modes: octal within 0o7777, overflows ignored
        assert_eq!(with(META_MODE, "77777777777777").mode, None);
        assert_eq!(with(META_MODE, "104755").mode, Some(0o4755));
        // setuid/setgid show only with --suid; the sticky bit always
        let a = with(META_MODE, "6755");
        assert_eq!((a.permissions(0o644, false), a.permissions(0o644, true)), (0o755, 0o6755));
        assert_eq!(with(META_MODE, "1777").permissions(0o644, false), 0o1777);
        assert_eq!(Attr::new_file(Time::EPOCH).permissions(0o4644, false), 0o644);
    }
}
