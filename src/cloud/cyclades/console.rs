//! Consoles: where one would be (the cloud's host, a port per server) and a
//! fresh password; nothing listens there.

use super::ok;
use super::password::random_password;
use super::request::text_of;
use super::server::{Server, ACTIVE};
use super::store::load;
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::users::User;
use crate::cloud::Cloud;
use serde_json::{json, Value};

/// A server whose console may be opened (running, not deleted).
async fn console_server(cloud: &Cloud, user: &User, id: i64) -> Result<Server, Fault> {
    let s = load(cloud, user, id).await?;
    s.check_live()?;
    if s.status != ACTIVE {
        return Err(Fault::bad_request("Server not in ACTIVE state."));
    }
    Ok(s)
}

/// Where a console would be: the cloud's host, a port per server, a fresh password.
fn console_endpoint(cloud: &Cloud, s: &Server) -> (String, i64, String) {
    let rest = cloud.base_url.split_once("://").map_or(cloud.base_url.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.find(']') {
        Some(end) => &authority[..=end],
        None => authority.split(':').next().unwrap_or(authority),
    };
    (host.to_string(), 5900 + s.id.rem_euclid(10000), random_password())
}

pub(super) async fn console(cloud: &Cloud, user: &User, id: i64, kind: Option<&Value>) -> Reply {
    let kind = kind.map(text_of).ok_or_else(|| Fault::bad_request("No console 'type' specified."))?;
    let supported = ["vnc", "vnc-ws", "vnc-wss"];
    if !supported.contains(&kind.as_str()) {
        return Err(Fault::bad_request(format!("Supported types: {}", supported.join(", "))));
    }
    let s = console_server(cloud, user, id).await?;
    let (host, port, password) = console_endpoint(cloud, &s);
    ok(json!({"console": {"type": kind, "host": host, "port": port, "password": password}}))
}

/// The OpenStack console call: a URL instead of host and port.
pub(super) async fn vnc_console(cloud: &Cloud, user: &User, id: i64, kind: Option<&Value>) -> Reply {
    let kind = kind.map(text_of).ok_or_else(|| Fault::bad_request("No console 'type' specified."))?;
    if kind != "novnc" && kind != "xvpvnc" {
        return Err(Fault::bad_request("Supported types: novnc, xvpvnc"));
    }
    let s = console_server(cloud, user, id).await?;
    let (host, port, password) = console_endpoint(cloud, &s);
    let url = if kind == "novnc" {
        format!("{}/ui/machines/console?host={host}&port={port}&password={password}", cloud.base_url)
    } else {
        format!("{host}:{port}?password={password}")
    };
    ok(json!({"console": {"type": kind, "url": url}}))
}
