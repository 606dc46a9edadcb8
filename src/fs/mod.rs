//! `pithosfs mount`: a Pithos+ account (or one container, or a plain
//! Swift) as a directory.
//!
//! - `filesystem`: `Fs`, the filesystem's logic as plain async methods over
//!   a [`store::Store`], in one file per concern: `listing` (folders),
//!   `namespace` (names, lookups, forget), `read` (open, reads and
//!   prefetch), `write` (dirty blocks and spill), `commit` (new versions and
//!   conflicts), `metadata` (setattr, statfs), `xattr`;
//! - `store`: the seam under it: the `Store` trait, `PithosStore`,
//!   `SwiftStore` and `FaultyStore` (tests);
//! - `fuse`: the thin adapter from fuser's callbacks to `Fs`;
//! - its parts: `inode` (the inode table), `attr` (POSIX attributes in
//!   metadata), `handle` (open files), `dirty` (changed blocks and their
//!   spill file), `cache` and `disk` (the block cache and its disk tier),
//!   `errno` (store errors as errno, by operation), `names` (the one name
//!   rule), `owners` (who owns a file, what is recorded).
//!
//! Starting a mount (daemon, signals, allocator, login, the cache's disk
//! tier) is the command's business: `crate::cli::mount`.

pub mod attr;
pub mod cache;
mod commit;
mod copy;
pub mod dirty;
pub mod disk;
pub mod errno;
pub mod filesystem;
pub mod fuse;
mod fuse_reply;
pub mod handle;
pub mod inode;
mod links;
mod listed;
pub mod listing;
pub mod metadata;
pub mod names;
mod namespace;
pub mod owners;
mod read;
pub mod scope;
pub mod store;
pub mod time;
mod views;
mod write;
pub mod xattr;

pub use filesystem::{default_cache_dir, Fs, FsOptions};
pub use listing::DirEntry;
