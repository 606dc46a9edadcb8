//! Published objects: `GET|HEAD {PUBLIC}/<token>`, no token needed.
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::{Call, Cloud};
use std::sync::Arc;

pub async fn handle(_cloud: Arc<Cloud>, _call: Call) -> Reply {
    Err(Fault::not_implemented("public"))
}
