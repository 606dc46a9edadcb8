//! Plankton, the Synnefo image service.

use super::fault::{Fault, Reply};
use super::{Call, Cloud};

pub async fn handle(_cloud: &Cloud, _call: Call) -> Reply {
    Err(Fault::not_implemented("images are not implemented yet"))
}
