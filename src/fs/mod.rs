//! `pithosfs mount`: a Pithos+ account (or one container) as a directory.
//!
//! - `core`: the filesystem's logic as async methods (names, attributes,
//!   reads through the block cache, writes committed by hashmap);
//! - `fuse`: the thin adapter from fuser's callbacks to `core`;
//! - `inode`, `attr`, `handle`, `cache`, `errno`, `names`, `owners`: its parts.
//!
//! Starting a mount (daemon, signals, allocator, login, the cache's disk
//! tier) is the command's business: `crate::cli::mount`.

pub mod attr;
pub mod cache;
pub mod core;
pub mod disk;
pub mod errno;
pub mod fuse;
pub mod handle;
pub mod inode;
pub mod names;
pub mod owners;
