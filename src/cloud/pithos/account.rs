//! Account level: `HEAD|GET|POST {PITHOS}/{acct}`, and the top-level list of
//! accounts that share something with the caller.

use super::access::Resolver;
use super::model::{self, Account, Container};
use super::{apply_meta, check_modified, last_modified, put_meta, request_meta};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::sql::params;
use crate::cloud::wire::{http_date, iso_date, now, Reply as Out};
use crate::cloud::{Call, Cloud};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const LISTING_LIMIT: usize = 10000;

pub async fn handle(cloud: &Cloud, call: Call, account: &str) -> Reply {
    match call.method {
        Method::HEAD | Method::GET => read(cloud, call, account).await,
        Method::POST => update(cloud, call, account).await,
        _ => Err(Fault::not_allowed("HEAD, GET, POST")),
    }
}

struct AccountView {
    account: Account,
    containers: Vec<Container>,
    owner: bool,
}

fn account_headers(cloud: &Cloud, out: &mut Out, v: &AccountView, until: Option<i64>) {
    let modified = v.containers.iter().map(|c| c.modified).fold(v.account.modified, f64::max);
    last_modified(out, modified);
    if !v.owner {
        return;
    }
    out.add_header("X-Account-Container-Count", v.containers.len().to_string());
    out.add_header("X-Account-Bytes-Used", v.containers.iter().map(|c| c.bytes).sum::<u64>().to_string());
    let quota = if cloud.quota == 0 { crate::cloud::astakos::UNLIMITED } else { cloud.quota };
    out.add_header("X-Account-Policy-Quota", quota.to_string());
    if let Some(u) = until {
        out.add_header("X-Account-Until-Timestamp", http_date(u as f64));
    }
    put_meta(out, &v.account.meta);
    for (g, members) in &v.account.groups {
        out.add_quoted(&format!("X-Account-Group-{}", crate::cloud::wire::canonical_meta_key(g)), &members.join(","));
    }
}

async fn read(cloud: &Cloud, call: Call, account: &str) -> Reply {
    let user = call.user()?;
    let owner = user.uuid == account;
    let until = call.query.int("until");
    if until.is_some() && !owner {
        return Err(Fault::forbidden("Not allowed"));
    }
    let shared_only = call.query.has("shared");
    let public_only = call.query.has("public");
    if public_only && !owner {
        return Err(Fault::forbidden("Not allowed"));
    }
    let acct = account.to_string();
    let uuid = user.uuid.clone();
    let view = cloud
        .db
        .read(move |conn| {
            let account = model::account(conn, &acct)?;
            let mut containers = model::containers(conn, &acct)?;
            if !owner {
                let mut r = Resolver::new(conn, &uuid);
                let mut visible = Vec::new();
                for c in containers {
                    if r.container(&c)?.reads_anything() {
                        visible.push(c);
                    }
                }
                if visible.is_empty() {
                    return Err(Fault::forbidden("Not allowed"));
                }
                containers = visible;
            } else {
                if let Some(u) = until {
                    containers.retain(|c| c.created <= u as f64);
                }
                if shared_only {
                    let mut keep = Vec::new();
                    for c in containers {
                        if !model::container_sharing(conn, c.id)?.is_empty() {
                            keep.push(c);
                        }
                    }
                    containers = keep;
                }
                if public_only {
                    let mut keep = Vec::new();
                    for c in containers {
                        let n: i64 =
                            conn.query_row("SELECT COUNT(*) FROM public WHERE container = ?1", params![c.id], |r| {
                                r.get(0)
                            })?;
                        if n > 0 {
                            keep.push(c);
                        }
                    }
                    containers = keep;
                }
            }
            Ok(AccountView { account, containers, owner })
        })
        .await?;
    let modified = view.containers.iter().map(|c| c.modified).fold(view.account.modified, f64::max);
    check_modified(&call.headers, modified)?;
    let status = if call.is_head() { StatusCode::NO_CONTENT } else { StatusCode::OK };
    let mut out = Out::new(status);
    account_headers(cloud, &mut out, &view, until);
    if call.is_head() {
        return Ok(out.empty());
    }
    let marker = call.query.get("marker").unwrap_or("").to_string();
    let limit = call.query.int("limit").filter(|l| *l > 0).map_or(LISTING_LIMIT, |l| (l as usize).min(LISTING_LIMIT));
    let listed: Vec<&Container> =
        view.containers.iter().filter(|c| c.name.as_str() > marker.as_str()).take(limit).collect();
    if call.query.get("format") == Some("json") {
        let items: Vec<Value> = listed
            .iter()
            .map(|c| {
                let mut item = json!({"name": c.name, "last_modified": iso_date(c.modified)});
                // Sizes, counts and policies are the owner's business; kamaki's
                // listing of another account does without them.
                if view.owner {
                    item["count"] = c.count.into();
                    item["bytes"] = c.bytes.into();
                    item["x_container_policy"] =
                        json!({"quota": c.quota.to_string(), "versioning": c.versioning, "project": c.project});
                }
                if let Some(u) = until {
                    item["x_container_until_timestamp"] = iso_date(u as f64).into();
                }
                item
            })
            .collect();
        return Ok(out.json(&Value::Array(items)));
    }
    if listed.is_empty() {
        return Ok(Out::new(StatusCode::NO_CONTENT).empty());
    }
    Ok(out.text(listed.iter().map(|c| format!("{}\n", c.name)).collect()))
}

async fn update(cloud: &Cloud, call: Call, account: &str) -> Reply {
    let user = call.user()?;
    if user.uuid != account {
        return Err(Fault::forbidden("Not allowed"));
    }
    let update = call.query.has("update");
    let supplied = request_meta(&call.headers, "Account")?;
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, members) in call.headers.with_prefix("x-account-group-") {
        let name = name.to_lowercase();
        if name.is_empty() || name.contains('-') || name.contains('_') {
            return Err(Fault::bad_request(format!("Bad group name {name:?}: no '-' or '_' allowed")));
        }
        let mut list: Vec<String> = Vec::new();
        for m in members.split(',').map(|m| m.replace(' ', "")).filter(|m| !m.is_empty()) {
            if cloud.users.by_uuid(&m).is_none() {
                return Err(Fault::bad_request(format!("Unknown user {m} in group {name}")));
            }
            if !list.contains(&m) {
                list.push(m);
            }
        }
        if list.len() > 32 {
            return Err(Fault::bad_request("Too many members in a group (at most 32)"));
        }
        groups.push((name, list));
    }
    let acct = account.to_string();
    cloud
        .db
        .write(move |tx| {
            let mut a = model::account(tx, &acct)?;
            a.meta = apply_meta(&a.meta, supplied, update, |_| false)?;
            if !groups.is_empty() {
                let mut g: BTreeMap<String, Vec<String>> = if update { a.groups.clone() } else { BTreeMap::new() };
                for (name, members) in groups {
                    if members.is_empty() {
                        g.remove(&name);
                    } else {
                        g.insert(name, members);
                    }
                }
                if g.len() > 32 {
                    return Err(Fault::bad_request("Too many groups (at most 32)"));
                }
                a.groups = g;
            }
            model::save_account(tx, &a, now())
        })
        .await?;
    Ok(Out::new(StatusCode::ACCEPTED).empty())
}

/// `GET {PITHOS}/`: accounts that share something with the caller.
pub async fn sharing_accounts(cloud: &Cloud, call: Call) -> Reply {
    let user = call.user()?;
    let uuid = user.uuid.clone();
    let accounts = cloud
        .db
        .read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT c.id FROM sharing s JOIN containers c ON c.id = s.container WHERE c.account <> ?1",
            )?;
            let ids = stmt.query_map(params![&uuid], |r| r.get::<i64>(0))?.collect::<Result<Vec<_>, _>>()?;
            let mut r = Resolver::new(conn, &uuid);
            let mut found: BTreeMap<String, f64> = BTreeMap::new();
            for id in ids {
                if let Some(c) = model::container_by_id(conn, id)? {
                    if r.container(&c)?.reads_anything() {
                        let e = found.entry(c.account.clone()).or_insert(c.modified);
                        *e = e.max(c.modified);
                    }
                }
            }
            Ok(found)
        })
        .await?;
    let marker = call.query.get("marker").unwrap_or("").to_string();
    let limit = call.query.int("limit").filter(|l| *l > 0).map_or(LISTING_LIMIT, |l| (l as usize).min(LISTING_LIMIT));
    let listed: Vec<(&String, &f64)> =
        accounts.iter().filter(|(a, _)| a.as_str() > marker.as_str()).take(limit).collect();
    if call.query.get("format") == Some("json") {
        let items: Vec<Value> =
            listed.iter().map(|(a, m)| json!({"name": a, "last_modified": iso_date(**m)})).collect();
        return Ok(Out::new(StatusCode::OK).json(&Value::Array(items)));
    }
    if listed.is_empty() {
        return Ok(Out::new(StatusCode::NO_CONTENT).empty());
    }
    Ok(Out::new(StatusCode::OK).text(listed.iter().map(|(a, _)| format!("{a}\n")).collect()))
}
