//! Astakos: tokens with the service catalog, user catalogs (uuid ↔ name),
//! quotas and resources.

use super::fault::{Fault, Reply};
use super::wire::{iso_date, now, Reply as Out};
use super::{Call, Cloud, ACCOUNT_PATH, COMPUTE_PATH, IDENTITY_PATH, IMAGE_PATH, PITHOS_PATH, PUBLIC_PATH};
use crate::cloud::sql::params;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// What an unlimited quota is reported as (1 PiB): Astakos has no "unlimited".
pub const UNLIMITED: u64 = 1 << 50;

fn endpoint(cloud: &Cloud, name: &str, kind: &str, version: &str, path: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "endpoints_links": [],
        "endpoints": [{
            "versionId": version,
            "region": "default",
            "publicURL": format!("{}{}", cloud.base_url, path),
            "SNF:uiURL": format!("{}/ui", cloud.base_url),
        }],
    })
}

pub fn service_catalog(cloud: &Cloud) -> Value {
    json!([
        endpoint(cloud, "astakos_identity", "identity", "v2.0", IDENTITY_PATH),
        endpoint(cloud, "astakos_account", "account", "v1.0", ACCOUNT_PATH),
        endpoint(cloud, "pithos_object-store", "object-store", "v1", PITHOS_PATH),
        endpoint(cloud, "pithos_public", "public", "", PUBLIC_PATH),
        endpoint(cloud, "cyclades_compute", "compute", "v2.0", COMPUTE_PATH),
        endpoint(cloud, "cyclades_plankton", "image", "v1.0", IMAGE_PATH),
    ])
}

/// `{IDENTITY}/tokens`.
pub async fn identity(cloud: &Cloud, call: Call) -> Reply {
    let path = call.path.trim_end_matches('/');
    if path != "/tokens" {
        if path.starts_with("/tokens/") {
            return Err(Fault::not_found("Token not found"));
        }
        return Err(Fault::endpoint_not_found());
    }
    if call.method != Method::POST {
        return Err(Fault::not_allowed("POST"));
    }
    let header_token = call.headers.get("x-auth-token").map(str::to_string);
    let body = super::read_body(call.body, 1 << 20).await?;
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Out::new(StatusCode::OK).json(&json!({"access": {"serviceCatalog": service_catalog(cloud)}})));
    }
    let req: Value =
        serde_json::from_slice(&body).map_err(|e| Fault::bad_request(format!("Invalid JSON data: {e}")))?;
    let auth = req.get("auth").filter(|a| a.is_object()).ok_or_else(|| Fault::bad_request("Missing auth"))?;
    let (token, username) = if let Some(id) = auth.pointer("/token/id") {
        (id.as_str().map(str::to_string), None)
    } else if let Some(pc) = auth.get("passwordCredentials") {
        (pc.get("password").and_then(Value::as_str).map(str::to_string), pc.get("username").and_then(Value::as_str))
    } else {
        (header_token, None)
    };
    let token = token.ok_or_else(|| Fault::bad_request("Malformed request: no token given"))?;
    let user = cloud.users.by_token(&token).ok_or_else(|| Fault::unauthorized("Invalid token"))?;
    if username.is_some_and(|u| u != user.uuid) {
        return Err(Fault::unauthorized("Invalid credentials"));
    }
    if let Some(t) = auth.get("tenantName").and_then(Value::as_str) {
        if t != user.uuid {
            return Err(Fault::bad_request("Not conforming tenantName"));
        }
    }
    let expires = iso_date(now() + 30.0 * 86400.0);
    Ok(Out::new(StatusCode::OK).json(&json!({"access": {
        "token": {"id": token, "expires": expires, "tenant": {"id": user.uuid, "name": user.name}},
        "user": {"id": user.uuid, "name": user.name, "roles": [{"id": "1", "name": "default"}],
                 "roles_links": [], "projects": [user.uuid]},
        "serviceCatalog": service_catalog(cloud),
    }})))
}

/// `{ACCOUNT}/…`: user catalogs, quotas, resources.
pub async fn account(cloud: &Cloud, call: Call) -> Reply {
    let path = call.path.trim_end_matches('/').to_string();
    let user = call.user()?;
    match (path.as_str(), &call.method) {
        ("/user_catalogs" | "/service/user_catalogs", &Method::POST) => {
            let req = super::read_json(call.body, 4 << 20).await?;
            if !req.is_object() {
                return Err(Fault::bad_request("Request body is not a JSON object"));
            }
            let list = |key: &str| -> Result<Option<Vec<String>>, Fault> {
                match req.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| Fault::bad_request(format!("{key} must be a list of strings")))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Some),
                    Some(_) => Err(Fault::bad_request(format!("{key} must be a list"))),
                }
            };
            // Only what was asked, also on the service path: Synnefo lists
            // everyone there for service tokens, and the local cloud has none.
            let uuids = list("uuids")?.unwrap_or_default();
            let names = list("displaynames")?.unwrap_or_default();
            let mut uuid_catalog = serde_json::Map::new();
            let mut name_catalog = serde_json::Map::new();
            for u in uuids {
                if let Some(found) = cloud.users.by_uuid(&u) {
                    uuid_catalog.insert(u, found.name.clone().into());
                }
            }
            for n in names {
                if let Some(found) = cloud.users.by_name(&n) {
                    name_catalog.insert(n, found.uuid.clone().into());
                }
            }
            Ok(Out::new(StatusCode::OK)
                .json(&json!({"uuid_catalog": uuid_catalog, "displayname_catalog": name_catalog})))
        }
        ("/quotas", &Method::GET) => {
            let uuid = user.uuid.clone();
            let (bytes, servers) = cloud
                .db
                .read(move |c| {
                    let bytes: i64 = c.query_row(
                        "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM containers WHERE account = ?1",
                        params![&uuid],
                        |r| r.get(0),
                    )?;
                    Ok((bytes, super::cyclades::live_servers(c, &uuid)?))
                })
                .await?;
            let limit = if cloud.quota == 0 { UNLIMITED } else { cloud.quota };
            let q = |limit: u64, usage: u64| {
                json!({"limit": limit, "usage": usage, "pending": 0,
                       "project_limit": limit, "project_usage": usage, "project_pending": 0})
            };
            Ok(Out::new(StatusCode::OK).json(&json!({ user.uuid.clone(): {
                "pithos.diskspace": q(limit, bytes.max(0) as u64),
                "cyclades.vm": q(super::cyclades::MAX_SERVERS, servers),
            }})))
        }
        ("/resources", &Method::GET) => Ok(Out::new(StatusCode::OK).json(&json!({
            "pithos.diskspace": {"unit": "bytes", "description": "Pithos+ storage space",
                                 "service": "pithos_object-store", "allow_in_projects": true},
            "cyclades.vm": {"unit": null, "description": "Number of virtual machines",
                            "service": "cyclades_compute", "allow_in_projects": true},
        }))),
        ("/user_catalogs" | "/service/user_catalogs", _) => Err(Fault::not_allowed("POST")),
        ("/quotas" | "/resources", _) => Err(Fault::not_allowed("GET")),
        _ => Err(Fault::endpoint_not_found()),
    }
}
