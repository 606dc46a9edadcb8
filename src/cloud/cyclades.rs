//! Cyclades compute (OpenStack Compute v2 with Synnefo extensions).

use super::fault::{Fault, Reply};
use super::{Call, Cloud};

/// Servers a user may have at once (reported as the `cyclades.vm` quota).
pub const MAX_SERVERS: u64 = 100;

pub async fn handle(_cloud: &Cloud, _call: Call) -> Reply {
    Err(Fault::not_implemented("compute is not implemented yet"))
}
