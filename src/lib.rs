//! pithosfs: Synnefo (Pithos+, Cyclades, Astakos, Plankton) from Linux and Rust.
//!
//! - [`blocks`]: the Pithos+ block model (block hash, hashmap, Merkle hash).
//! - [`clients`]: kamaki.clients in Rust (Astakos, Pithos+, Cyclades, Plankton).
//! - [`cloud`]: `pithosfs serve`, the embedded Synnefo-compatible local cloud.
//! - [`config`]: which cloud and token a command uses (flags, environment, ~/.kamakirc, local cloud).
//! - [`cli`]: the control command (`pithosfs server|user|flavor|image …`).

pub mod blocks;
pub mod cli;
pub mod clients;
pub mod cloud;
pub mod config;
pub mod fs;
