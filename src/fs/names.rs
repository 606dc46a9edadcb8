//! One rule for names in the mount, whichever side they come from: a name a
//! program asks for (lookup, create, mkdir, rename, unlink, symlink) and a
//! name a server lists (a container or an object's last path component) are
//! checked by the same function. A user's bad name is an errno; a listed bad
//! name hides that one entry and nothing else.

use super::errno::{Errno, FsResult};

/// Longest name of one path component, in bytes (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Longest object name the mount asks any server for, in bytes (a folder
/// path and its file name joined by `/`, without the container): the local
/// cloud's limit, twice `PATH_MAX`, so that a path of `PATH_MAX` works
/// below any folder short of 4 KiB. Synnefo (and Swift by default) take
/// 1,024: there a longer name is refused by the server, and that refusal
/// reads as `ENAMETOOLONG` too (`store::naming`).
pub const MAX_OBJECT_NAME: usize = 8192;

/// Whether `name` can be one component of a POSIX path: not empty, not `.`
/// or `..`, no `/` or NUL, at most `NAME_MAX` bytes.
pub fn check_component(name: &str) -> FsResult<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::NAMETOOLONG);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Errno::INVAL);
    }
    Ok(())
}

/// Whether an object name (the path inside its container) fits any server.
pub fn check_object_name(path: &str) -> FsResult<()> {
    check_object_name_within(path, MAX_OBJECT_NAME)
}

/// Whether an object name fits a server that takes at most `max` bytes.
pub fn check_object_name_within(path: &str, max: usize) -> FsResult<()> {
    if path.len() > max.min(MAX_OBJECT_NAME) {
        return Err(Errno::NAMETOOLONG);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        assert_eq!(check_component("a b.txt"), Ok(()));
        assert_eq!(check_component(&"x".repeat(255)), Ok(()));
        assert_eq!(check_component(&"x".repeat(256)), Err(Errno::NAMETOOLONG));
        // bytes, not characters: 128 two-byte letters are 256 bytes
        assert_eq!(check_component(&"é".repeat(128)), Err(Errno::NAMETOOLONG));
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert_eq!(check_component(bad), Err(Errno::INVAL), "{bad:?}");
        }
        assert_eq!(check_object_name(&"d/".repeat(4096)), Ok(()));
        assert_eq!(check_object_name(&"d/".repeat(4097)), Err(Errno::NAMETOOLONG));
    }
}
