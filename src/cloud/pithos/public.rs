//! Published objects: `GET|HEAD {PUBLIC}/<token>`, readable without a token.
//! Replies carry only the data headers, none of the `X-Object-*` ones.

use super::data::Layout;
use super::model;
use super::object::data_reply;
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::wire::Reply as Out;
use crate::cloud::{Call, Cloud};
use axum::http::{Method, StatusCode};
use std::sync::Arc;

pub async fn handle(cloud: Arc<Cloud>, call: Call) -> Reply {
    if call.method != Method::GET && call.method != Method::HEAD {
        return Err(Fault::not_allowed("GET, HEAD"));
    }
    let token = call.path.trim_matches('/').to_string();
    if token.is_empty() || token.len() > 64 || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Fault::not_found("Object does not exist"));
    }
    let (version, hashmap) = cloud
        .db
        .read(move |conn| {
            let (cid, name) =
                model::resolve_public(conn, &token)?.ok_or_else(|| Fault::not_found("Object does not exist"))?;
            let v = model::current(conn, cid, &name)?.ok_or_else(|| Fault::not_found("Object does not exist"))?;
            let h = model::hashmap(conn, v.serial)?;
            Ok((v, h))
        })
        .await?;
    super::check_object_preconditions(&call.headers, Some(&version), true, cloud.etags)?;
    let mut out = Out::new(StatusCode::OK);
    out.add_header("ETag", cloud.etags.of(&version));
    out.add_quoted("Content-Type", &version.content_type);
    super::last_modified(&mut out, version.mtime);
    if let Some(e) = version.meta.get("Content-Encoding") {
        out.add_quoted("Content-Encoding", e);
    }
    let layout = Layout::of_object(&hashmap, version.bytes, cloud.blocks.block_size);
    data_reply(&cloud, &call, out, &version, version.mtime, layout)
}
