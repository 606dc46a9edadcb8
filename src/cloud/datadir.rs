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
    if let Err(e) = set_mode(&dir, DIR_MODE) {
        // Only fatal if it leaves the directory open (a file system without
        // modes that still answers 0700 is fine).
        if std::fs::metadata(&dir)?.permissions().mode() & 0o077 != 0 {
            return Err(io::Error::new(e.kind(), format!("cannot make {} private (mode 0700): {e}", dir.display())));
        }
    }
    // Beneath a private directory a file left open is out of reach: fixing it
    // is worth a warning when it fails, not a refusal to start.
    make_private(&dir, if was_open { usize::MAX } else { 2 });
    Ok(dir)
}

/// Opens (creating, 0600) a file of the data directory for writing.
pub fn private_file(path: &Path) -> io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(FILE_MODE).open(path)?;
    if f.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
        if let Err(e) = f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE)) {
            tracing::warn!("cannot make {} private (mode 600): {e}", path.display());
        }
    }
    Ok(f)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Gives every directory under `dir` (down to `depth` levels; the top one
/// and its entries with depth 2) mode 0700 and every file 0600. Symbolic
/// links are left alone, never followed.
fn make_private(dir: &Path, depth: usize) {
    if depth == 0 {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return tracing::warn!("cannot list {} to make it private: {e}", dir.display()),
    };
    for entry in entries.flatten() {
        let (Ok(kind), path) = (entry.file_type(), entry.path()) else { continue };
        let wanted = if kind.is_dir() {
            DIR_MODE
        } else if kind.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        let mode = entry.metadata().map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        if mode != wanted {
            if let Err(e) = set_mode(&path, wanted) {
                tracing::warn!("cannot make {} private (mode {wanted:o}): {e}", path.display());
            }
        }
        if kind.is_dir() {
            make_private(&path, depth - 1);
        }
    }
}
