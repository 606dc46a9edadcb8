//! What the kernel is told: errnos, file types and attributes, entries,
//! times, from `Fs`'s answers (for the adapter in `fuse.rs`).

use super::attr::{Attr, Kind, Time};
use super::errno::{Errno, FsResult};
use super::filesystem::Fs;
use super::store::Store;
use fuser::{FileAttr, FileType, Generation, INodeNo, ReplyEmpty, ReplyEntry, TimeOrNow};
use std::ffi::OsStr;
use std::time::SystemTime;

pub(super) fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

/// A time for the kernel, exact to the nanosecond (every `Time` is sane:
/// what servers say was bounded when it was read).
pub(super) fn time(t: Time) -> SystemTime {
    t.to_system()
}

pub(super) fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
    }
}

pub(super) fn file_attr<S: Store>(fs: &Fs<S>, ino: u64, a: &Attr) -> FileAttr {
    let default_mode = match a.kind {
        Kind::Dir => fs.opts.dir_mode,
        Kind::Symlink => 0o777,
        _ => fs.opts.file_mode,
    };
    let kind = file_type(a.kind);
    let mtime = time(a.mtime);
    let (uid, gid) = fs.opts.owners.shown(a);
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: time(a.shown_atime()),
        mtime,
        ctime: time(a.ctime),
        crtime: mtime,
        kind,
        perm: a.permissions(default_mode, fs.opts.suid),
        nlink: fs.nlink(ino, a),
        uid,
        gid,
        rdev: a.rdev,
        blksize: 4 << 20,
        flags: 0,
    }
}

/// Answers an entry the kernel will hold (counted by `Fs` until `forget`).
pub(super) fn entry<S: Store>(fs: &Fs<S>, reply: ReplyEntry, r: FsResult<(u64, Attr)>) {
    match r {
        Ok((ino, a)) => reply.entry(&fs.opts.attr_ttl, &file_attr(fs, ino, &a), Generation(0)),
        Err(e) => reply.error(errno(e)),
    }
}

/// Answers a call that returns nothing but its success.
pub(super) fn done(reply: ReplyEmpty, r: FsResult<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

pub(super) fn name_of(n: &OsStr) -> Result<String, fuser::Errno> {
    n.to_str().map(str::to_string).ok_or(fuser::Errno::EINVAL)
}

pub(super) fn to_epoch(t: TimeOrNow) -> Time {
    match t {
        TimeOrNow::Now => Time::now(),
        TimeOrNow::SpecificTime(st) => Time::from_system(st),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_reach_the_kernel_exactly() {
        let set = UNIX_EPOCH + Duration::new(1_900_000_000, 100_000_000);
        assert_eq!(time(to_epoch(TimeOrNow::SpecificTime(set))), set);
        // before the epoch: the epoch; past year 9999: the latest time shown
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(time(to_epoch(TimeOrNow::SpecificTime(before))), UNIX_EPOCH);
        let far = UNIX_EPOCH + Duration::from_secs(1 << 40);
        assert_eq!(time(to_epoch(TimeOrNow::SpecificTime(far))), Time::MAX.to_system());
    }
}
