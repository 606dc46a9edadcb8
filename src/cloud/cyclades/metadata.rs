//! Server metadata: Synnefo's limits, and `/servers/{id}/metadata[/key]`.

use super::request::{attribute, invalid_field, meta_text};
use super::store::{load, modify};
use super::{ok, status_only};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::users::User;
use crate::cloud::wire::Reply as Out;
use crate::cloud::{json_request, Call, Cloud};
use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

// Limits of Synnefo's default settings and database columns.
pub(super) const MAX_METADATA: usize = 10;
const META_KEY_LENGTH: usize = 50;
const META_VALUE_LENGTH: usize = 500;

/// Server metadata from a request, checked against Synnefo's column sizes.
pub(super) fn server_metadata(m: &Map<String, Value>) -> Result<BTreeMap<String, String>, Fault> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let v = meta_text(v).ok_or_else(|| Fault::bad_request("Malformed Request. Invalid metadata."))?;
        if k.chars().count() > META_KEY_LENGTH {
            return Err(Fault::bad_request("Malformed Request. Metadata key is too long"));
        }
        if v.chars().count() > META_VALUE_LENGTH {
            return Err(Fault::bad_request("Malformed Request. Metadata value is too long"));
        }
        out.insert(k.clone(), v);
    }
    Ok(out)
}

pub(super) fn too_much_metadata() -> Fault {
    Fault::bad_request(format!("Virtual Machines cannot have more than {MAX_METADATA} metadata items"))
}

/// `/servers/{id}/metadata`: all of it, or more of it.
pub(super) async fn metadata(cloud: &Cloud, user: &User, id: i64, method: Method, call: Call) -> Reply {
    match method {
        Method::GET => ok(json!({"metadata": load(cloud, user, id).await?.metadata})),
        Method::POST => merge_metadata(cloud, user, id, call).await,
        _ => Err(Fault::not_allowed("GET, POST")),
    }
}

/// `/servers/{id}/metadata/{key}`: one item.
pub(super) async fn metadata_item(
    cloud: &Cloud,
    user: &User,
    id: i64,
    key: String,
    method: Method,
    call: Call,
) -> Reply {
    match method {
        Method::GET => {
            let s = load(cloud, user, id).await?;
            let value = s.metadata.get(&key).ok_or_else(|| Fault::not_found("Metadata key not found."))?;
            ok(json!({"meta": {key: value}}))
        }
        Method::PUT => put_metadata_item(cloud, user, id, key, call).await,
        Method::DELETE => {
            modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                s.metadata.remove(&key).ok_or_else(|| Fault::not_found("Metadata key not found."))?;
                s.updated = now;
                Ok(())
            })
            .await?;
            status_only(StatusCode::NO_CONTENT)
        }
        _ => Err(Fault::not_allowed("GET, PUT, DELETE")),
    }
}

async fn merge_metadata(cloud: &Cloud, user: &User, id: i64, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let given = attribute(&req, "metadata")?.as_object().ok_or_else(|| invalid_field("metadata"))?;
    let given = server_metadata(given)?;
    let (server, ()) = modify(cloud, user, id, move |s, now| {
        s.check_live()?;
        let added = given.keys().filter(|k| !s.metadata.contains_key(*k)).count();
        if s.metadata.len() + added > MAX_METADATA {
            return Err(too_much_metadata());
        }
        s.metadata.extend(given);
        s.updated = now;
        Ok(())
    })
    .await?;
    Ok(Out::new(StatusCode::CREATED).json(&json!({"metadata": server.metadata})))
}

async fn put_metadata_item(cloud: &Cloud, user: &User, id: i64, key: String, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let malformed = || Fault::bad_request("Malformed request");
    let meta = req.get("meta").and_then(Value::as_object).filter(|m| m.len() == 1).ok_or_else(malformed)?;
    let value = meta.get(&key).ok_or_else(malformed)?;
    let entry = server_metadata(&Map::from_iter([(key.clone(), value.clone())]))?;
    let (_, value) = modify(cloud, user, id, move |s, now| {
        s.check_live()?;
        if s.metadata.keys().filter(|k| **k != key).count() >= MAX_METADATA {
            return Err(too_much_metadata());
        }
        let value = entry.get(&key).cloned().unwrap_or_default();
        s.metadata.insert(key.clone(), value.clone());
        s.updated = now;
        Ok(json!({ key: value }))
    })
    .await?;
    Ok(Out::new(StatusCode::CREATED).json(&json!({ "meta": value })))
}
