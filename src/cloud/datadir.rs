//! The data directory holds tokens, metadata and every user's blocks: it is
//! private to the account that runs the server (0700, files 0600), however it
//! was made, and stays so.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Makes files this process creates private from now on (`pithosfs serve`
/// calls it first thing; a library user keeps their own umask, and the modes
/// fixed by [`open`] still hold for what exists).
pub fn private_umask() {
    // SAFETY: umask only sets the process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (0700) or opens it, and makes it private: the directory and
/// what lies directly in it always, everything beneath it too the first time
/// it is found open to others (a data directory of an earlier version).
/// Returns its canonical path.
pub fn open(dir: &Path) -> io::Result<PathBuf> {
    std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    let dir = dir.canonicalize()?;
    let was_open = std::fs::metadata(&dir)?.permissions().mode() & 0o077 != 0;
    set_mode(&dir, DIR_MODE)?;
    if was_open {
        make_private(&dir, usize::MAX)?;
    } else {
        // Cheap, and catches a token file or database copied in by hand.
        make_private(&dir, 2)?;
    }
    Ok(dir)
}

/// Opens (creating, 0600) a file of the data directory for writing.
pub fn private_file(path: &Path) -> io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(FILE_MODE).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Gives every directory under `dir` (down to `depth` levels) mode 0700 and
/// every file 0600. Symbolic links are left alone, never followed.
fn make_private(dir: &Path, depth: usize) -> io::Result<()> {
    if depth == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            set_mode(&path, DIR_MODE)?;
            make_private(&path, depth - 1)?;
        } else if kind.is_file() {
            let mode = entry.metadata()?.permissions().mode() & 0o777;
            if mode != FILE_MODE {
                set_mode(&path, FILE_MODE)?;
            }
        }
    }
    Ok(())
}
