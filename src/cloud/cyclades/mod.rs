//! Cyclades compute (OpenStack Compute v2 with Synnefo extensions): servers,
//! flavors, and the compute view of Plankton images.

mod actions;
mod console;
mod create;
mod flavors;
mod images;
mod metadata;
mod network;
mod password;
mod request;
mod server;
mod servers;
mod store;
mod tags;
mod views;

pub use store::{forget_stored_passwords, live_servers};

use super::fault::{Fault, Reply};
use super::wire::Reply as Out;
use super::{Call, Cloud, COMPUTE_PATH, IMAGE_PATH};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// Servers a user may have at once (reported as the `cyclades.vm` quota).
pub const MAX_SERVERS: u64 = 100;

/// `{COMPUTE}/…` (COMPUTE = `/cyclades/compute/v2.0`).
pub async fn handle(cloud: &Cloud, call: Call) -> Reply {
    let user = call.user()?;
    let path = api_path(&call.path);
    // Four parts at most: a metadata key or tag (the last part) may hold `/`.
    let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.splitn(4, '/').collect() };
    match parts.as_slice() {
        [] => version(cloud, &call.method),
        ["servers", rest @ ..] => servers::servers(cloud, &user, rest, call).await,
        ["flavors", rest @ ..] => flavors::flavors(cloud, &call.method, &call.query, rest),
        ["images", rest @ ..] => images::images(cloud, &user, rest, call).await,
        _ => Err(Fault::endpoint_not_found()),
    }
}

/// The path without slashes around it nor a `.json` suffix.
fn api_path(path: &str) -> String {
    let p = path.trim_matches('/');
    p.strip_suffix(".json").unwrap_or(p).trim_end_matches('/').to_string()
}

fn version(cloud: &Cloud, method: &Method) -> Reply {
    if method != Method::GET {
        return Err(Fault::not_allowed("GET"));
    }
    ok(json!({"version": {
        "id": "v2.0",
        "status": "CURRENT",
        "updated": "2011-01-21T11:33:21+00:00",
        "links": [{"rel": "self", "href": compute_url(cloud, "/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute.v2+json"}],
    }}))
}

fn ok(v: Value) -> Reply {
    Ok(Out::new(StatusCode::OK).json(&v))
}

fn status_only(status: StatusCode) -> Reply {
    Ok(Out::new(status).empty())
}

fn compute_url(cloud: &Cloud, rest: &str) -> String {
    format!("{}{}{}", cloud.base_url, COMPUTE_PATH, rest)
}

fn links(href: String) -> Value {
    json!([{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}])
}

fn image_links(cloud: &Cloud, id: &str) -> Value {
    let href = compute_url(cloud, &format!("/images/{id}"));
    json!([
        {"rel": "self", "href": href},
        {"rel": "bookmark", "href": href},
        {"rel": "alternate", "href": format!("{}{}/images/{}", cloud.base_url, IMAGE_PATH, id)},
    ])
}

fn over_limit(msg: impl Into<String>) -> Fault {
    Fault::new(StatusCode::PAYLOAD_TOO_LARGE, "overLimit", msg)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_suffixes() {
        assert_eq!(api_path("/servers/detail.json"), "servers/detail");
        assert_eq!(api_path("/servers/"), "servers");
        assert_eq!(api_path(""), "");
        assert_eq!(api_path("/flavors.json"), "flavors");
    }
}
