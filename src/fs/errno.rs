//! Errors of the filesystem layer are errno values; this is where client
//! errors become them (the table is in SEMANTICS.md).

use crate::clients::ClientError;

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

impl From<ClientError> for Errno {
    fn from(e: ClientError) -> Errno {
        let errno = match e.status {
            404 => Errno::NOENT,
            401 | 403 => Errno::ACCES,
            409 => Errno::NOTEMPTY,
            413 => Errno::DQUOT,
            400 if e.message.contains("names are") => Errno::NAMETOOLONG,
            412 => Errno::IO,
            _ => Errno::IO,
        };
        if errno == Errno::IO {
            tracing::warn!(status = e.status, "{}", e.message);
        }
        errno
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
