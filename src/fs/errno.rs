//! Errors of the filesystem layer are errno values; this is where a store's
//! errors become them, knowing the operation (the table is in SEMANTICS.md).

use super::store::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const NOENT: Errno = Errno(libc::ENOENT);
    pub const IO: Errno = Errno(libc::EIO);
    pub const ACCES: Errno = Errno(libc::EACCES);
    pub const PERM: Errno = Errno(libc::EPERM);
    pub const EXIST: Errno = Errno(libc::EEXIST);
    pub const NOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const ISDIR: Errno = Errno(libc::EISDIR);
    pub const INVAL: Errno = Errno(libc::EINVAL);
    pub const NOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    pub const NOSPC: Errno = Errno(libc::ENOSPC);
    pub const DQUOT: Errno = Errno(libc::EDQUOT);
    pub const NAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    pub const ROFS: Errno = Errno(libc::EROFS);
    pub const NODATA: Errno = Errno(libc::ENODATA);
    pub const RANGE: Errno = Errno(libc::ERANGE);
    pub const NOSYS: Errno = Errno(libc::ENOSYS);
    pub const BADF: Errno = Errno(libc::EBADF);
    pub const XDEV: Errno = Errno(libc::EXDEV);
    pub const NOTSUP: Errno = Errno(libc::EOPNOTSUPP);
    pub const FBIG: Errno = Errno(libc::EFBIG);
}

/// What the filesystem was doing when a store call failed: the same
/// failure means different things to different calls (a folder that holds
/// objects is `ENOTEMPTY` to rmdir; a conflict is `EIO` to anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lookup,
    Getattr,
    Listing,
    Open,
    Read,
    Write,
    Commit,
    Create,
    Mkdir,
    Unlink,
    Rmdir,
    Rename,
    Symlink,
    Readlink,
    Setattr,
    Xattr,
    Statfs,
}

/// The errno for a store's failure during `op` (the table in SEMANTICS.md).
pub fn errno_of(op: Op, e: &StoreError) -> Errno {
    let errno = match e {
        StoreError::NotFound => Errno::NOENT,
        StoreError::Denied => Errno::ACCES,
        StoreError::NotEmpty => Errno::NOTEMPTY,
        // A folder or container the server will not delete holds something.
        StoreError::Conflict(_) if op == Op::Rmdir => Errno::NOTEMPTY,
        StoreError::Quota => Errno::DQUOT,
        StoreError::TooLarge if matches!(op, Op::Write | Op::Commit | Op::Create | Op::Setattr) => Errno::FBIG,
        StoreError::NameTooLong => Errno::NAMETOOLONG,
        // A commit meets `Changed` itself (a conflict copy, then EIO); a read
        // of a version that changed under it cannot go on.
        StoreError::Changed
        | StoreError::Conflict(_)
        | StoreError::TooLarge
        | StoreError::Unavailable(_)
        | StoreError::Invalid(_) => Errno::IO,
    };
    if errno == Errno::IO {
        tracing::warn!("{op:?}: {e}");
    }
    errno
}

/// `result.during(Op::Rmdir)?`: a store's answer as the filesystem's.
pub trait During<T> {
    fn during(self, op: Op) -> FsResult<T>;
}

impl<T> During<T> for StoreResult<T> {
    fn during(self, op: Op) -> FsResult<T> {
        self.map_err(|e| errno_of(op, &e))
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

pub type FsResult<T> = Result<T, Errno>;

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_decides_what_a_failure_means() {
        let conflict = StoreError::Conflict("409".into());
        assert_eq!(errno_of(Op::Rmdir, &conflict), Errno::NOTEMPTY);
        assert_eq!(errno_of(Op::Create, &conflict), Errno::IO);
        assert_eq!(errno_of(Op::Mkdir, &conflict), Errno::IO);
        assert_eq!(errno_of(Op::Rmdir, &StoreError::NotEmpty), Errno::NOTEMPTY);
        assert_eq!(errno_of(Op::Commit, &StoreError::TooLarge), Errno::FBIG);
        assert_eq!(errno_of(Op::Read, &StoreError::TooLarge), Errno::IO);
        assert_eq!(errno_of(Op::Commit, &StoreError::Quota), Errno::DQUOT);
        assert_eq!(errno_of(Op::Create, &StoreError::NameTooLong), Errno::NAMETOOLONG);
        assert_eq!(errno_of(Op::Read, &StoreError::Changed), Errno::IO);
        assert_eq!(errno_of(Op::Lookup, &StoreError::NotFound), Errno::NOENT);
        assert_eq!(errno_of(Op::Open, &StoreError::Denied), Errno::ACCES);
        assert_eq!(errno_of(Op::Listing, &StoreError::Unavailable("down".into())), Errno::IO);
    }
}
