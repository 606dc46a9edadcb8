//! pithosfs: Synnefo (Pithos+, Cyclades, Astakos, Plankton) from Linux and Rust.
//!
//! - [`blocks`]: the Pithos+ block model (block hash, hashmap, Merkle hash).
//! - [`clients`]: kamaki.clients in Rust (Astakos, Pithos+, Cyclades, Plankton).
//! - [`cloud`]: `pithosfs serve`, the embedded Synnefo-compatible local cloud.

pub mod blocks;
pub mod clients;
pub mod cloud;
