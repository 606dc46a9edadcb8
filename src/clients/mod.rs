//! kamaki.clients in Rust: one HTTP core, one error type, one module per
//! service. kamaki's inheritance (Pithos extends Storage, Cyclades extends
//! Compute) becomes composition: a `PithosClient` holds a `StorageClient` and
//! offers both sets of calls, a `CycladesClient` holds a `ComputeClient`.

pub mod astakos;
pub mod compute;
pub mod cyclades;
pub mod error;
pub mod http;
pub mod image;
pub mod pithos;
pub mod storage;

pub use astakos::AstakosClient;
pub use compute::{ComputeClient, Metadata, NewServer};
pub use cyclades::{server_os, ssh_key_personality, CycladesClient};
pub use error::ClientError;
pub use http::{Http, Options, StatsSnapshot};
pub use image::{ImageClient, ImageFields, Properties};
