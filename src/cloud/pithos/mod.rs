//! Pithos+ object storage.

pub mod model;
pub mod public;

use super::fault::{Fault, Reply};
use super::{Call, Cloud};
use std::sync::Arc;

pub async fn handle(_cloud: Arc<Cloud>, _call: Call) -> Reply {
    Err(Fault::not_implemented("pithos"))
}

/// Every user gets the `pithos` container kamaki expects.
pub async fn ensure_default_containers(_cloud: &Cloud) -> Result<(), Fault> {
    Ok(())
}
