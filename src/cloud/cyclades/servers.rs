//! `/servers` and `/servers/{id}`: list, create, show, rename, delete, and
//! the small read-only resources of a server (ips, stats, password).

use super::actions::action;
use super::create::create_server;
use super::network::{addresses, NETWORK};
use super::request::{attribute, changes_since, invalid_field, string_attribute};
use super::server::{Action, Server, DELETED, NAME_LENGTH};
use super::store::{load, modify, servers_of};
use super::{is_number, metadata, ok, status_only, tags};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::users::User;
use crate::cloud::wire::{now, Query};
use crate::cloud::{json_request, Call, Cloud};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// `/servers[/…]`.
pub(super) async fn servers(cloud: &Cloud, user: &User, rest: &[&str], call: Call) -> Reply {
    let method = call.method.clone();
    match rest {
        [] => match method {
            Method::GET => list_servers(cloud, user, &call.query, false).await,
            Method::POST => create_server(cloud, user, call).await,
            _ => Err(Fault::not_allowed("GET, POST")),
        },
        ["detail"] => match method {
            Method::GET => list_servers(cloud, user, &call.query, true).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        [id, more @ ..] => {
            if !is_number(id) {
                return Err(Fault::endpoint_not_found());
            }
            let id = id.parse::<i64>().map_err(|_| Fault::not_found("Server not found."))?;
            server_item(cloud, user, id, more, call).await
        }
    }
}

async fn server_item(cloud: &Cloud, user: &User, id: i64, more: &[&str], call: Call) -> Reply {
    let method = call.method.clone();
    match (more, method) {
        ([], Method::GET) => {
            let s = load(cloud, user, id).await?;
            ok(json!({"server": s.detail_json(cloud, now())}))
        }
        ([], Method::PUT) => rename(cloud, user, id, call).await,
        ([], Method::DELETE) => {
            modify(cloud, user, id, |s, now| {
                s.check(Action::Destroy)?;
                s.deleted = true;
                s.set_status(DELETED, now);
                Ok(())
            })
            .await?;
            status_only(StatusCode::NO_CONTENT)
        }
        ([], _) => Err(Fault::not_allowed("GET, PUT, DELETE")),
        (["action"], Method::POST) => action(cloud, user, id, call).await,
        (["action"], _) => Err(Fault::not_allowed("POST")),
        (["metadata"], m) => metadata::metadata(cloud, user, id, m, call).await,
        (["metadata", key], m) => {
            let key = key.to_string();
            metadata::metadata_item(cloud, user, id, key, m, call).await
        }
        (["ips"], Method::GET) => {
            let s = load(cloud, user, id).await?;
            let attachments = s.attachments();
            ok(json!({"addresses": addresses(&attachments), "attachments": attachments}))
        }
        (["ips", network], Method::GET) => {
            let s = load(cloud, user, id).await?;
            if *network != NETWORK {
                return Err(Fault::not_found(format!("Network {network} not found")));
            }
            let ports: Vec<Value> =
                s.attachments().into_iter().filter(|p| p.get("network_id") == Some(&json!(network))).collect();
            ok(json!({"network": addresses(&ports)}))
        }
        (["ips"] | ["ips", _], _) => Err(Fault::not_allowed("GET")),
        (["stats"], Method::GET) => {
            let s = load(cloud, user, id).await?;
            let graph = |kind: &str| format!("{}/stats/v1.0/{kind}/snf-{}", cloud.base_url, s.id);
            ok(json!({"stats": {
                "serverRef": s.id, "refresh": 60,
                "cpuBar": graph("cpu-bar"), "cpuTimeSeries": graph("cpu-ts"),
                "netBar": graph("net-bar"), "netTimeSeries": graph("net-ts"),
            }}))
        }
        (["diagnostics"], Method::GET) => {
            load(cloud, user, id).await?;
            ok(json!([]))
        }
        (["stats"] | ["diagnostics"], _) => Err(Fault::not_allowed("GET")),
        // Synnefo keeps a new server's password in a cache for a while; the
        // local cloud keeps it nowhere, so it answers as Synnefo does once the
        // cache has let it go.
        (["password"], Method::GET) => {
            load(cloud, user, id).await?;
            Err(Fault::not_found("No password is kept for this server: it is given once, when the server is created"))
        }
        (["password"], Method::DELETE) => {
            load(cloud, user, id).await?;
            status_only(StatusCode::NO_CONTENT)
        }
        (["password"], _) => Err(Fault::not_allowed("GET, DELETE")),
        (["tags"], m) => tags::tags(cloud, user, id, m, call).await,
        (["tags", tag], m) => {
            let tag = tag.to_string();
            tags::tag_item(cloud, user, id, &tag, m, &call.path).await
        }
        _ => Err(Fault::endpoint_not_found()),
    }
}

async fn list_servers(cloud: &Cloud, user: &User, query: &Query, detail: bool) -> Reply {
    let since = changes_since(query)?;
    let owner = user.uuid.clone();
    let now = now();
    let all = cloud.db.read(move |c| servers_of(c, &owner)).await?;
    // With changes-since, deleted servers are news too.
    let shown: Vec<Server> = all
        .into_iter()
        .map(|s| s.settled(now))
        .filter(|s| match since {
            Some(t) => s.updated >= t,
            None => !s.deleted,
        })
        .collect();
    if since.is_some() && shown.is_empty() {
        return Err(Fault::not_modified());
    }
    let list: Vec<Value> =
        shown.iter().map(|s| if detail { s.detail_json(cloud, now) } else { s.summary_json(cloud) }).collect();
    ok(json!({ "servers": list }))
}

async fn rename(cloud: &Cloud, user: &User, id: i64, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let server = attribute(&req, "server")?;
    if !server.is_object() {
        return Err(invalid_field("server"));
    }
    let name = string_attribute(server, "name")?.to_string();
    modify(cloud, user, id, move |s, now| {
        s.check_live()?;
        if name.chars().count() > NAME_LENGTH {
            return Err(Fault::bad_request("Server name is too long"));
        }
        s.name = name;
        s.updated = now;
        Ok(())
    })
    .await?;
    status_only(StatusCode::NO_CONTENT)
}
