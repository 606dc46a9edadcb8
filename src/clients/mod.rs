//! kamaki.clients in Rust: one HTTP core, one error type, one module per
//! service. kamaki's inheritance (Pithos extends Storage, Cyclades extends
//! Compute) becomes composition: a `PithosClient` holds a `StorageClient` and
//! offers both sets of calls, a `CycladesClient` holds a `ComputeClient`.

pub mod error;
pub mod http;
pub mod pithos;
pub mod storage;

pub use error::ClientError;
pub use http::{Http, Options, StatsSnapshot};
