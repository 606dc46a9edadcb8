//! User tags of a server: Synnefo's limits, and `/servers/{id}/tags[/tag]`.

use super::request::{attribute, invalid_field};
use super::store::{load, modify};
use super::{compute_url, ok, status_only};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::users::User;
use crate::cloud::wire::Reply as Out;
use crate::cloud::{json_request, Call, Cloud};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const MAX_TAGS: usize = 50;
const TAG_LENGTH: usize = 60;

fn check_tag(tag: &str) -> Result<(), Fault> {
    if tag.is_empty() {
        return Err(Fault::bad_request("Malformed Request. Tag cannot be empty"));
    }
    if tag.contains(['/', ',']) {
        return Err(Fault::bad_request("Tag cannot contain '/' or ','"));
    }
    if tag.chars().count() > TAG_LENGTH {
        return Err(Fault::bad_request("Malformed Request. Tag is too long"));
    }
    Ok(())
}

fn too_many_tags() -> Fault {
    Fault::bad_request(format!("Virtual Machines cannot have more than {MAX_TAGS} tags"))
}

/// A list of user tags from a request, checked and without duplicates.
pub(super) fn tag_list(v: &Value) -> Result<Vec<String>, Fault> {
    let items = v.as_array().ok_or_else(|| invalid_field("tags"))?;
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let tag = item.as_str().ok_or_else(|| Fault::bad_request("Malformed Request. Invalid tag."))?;
        check_tag(tag)?;
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(tags)
}

pub(super) async fn tags(cloud: &Cloud, user: &User, id: i64, method: Method, call: Call) -> Reply {
    match method {
        Method::GET => {
            let tags = load(cloud, user, id).await?.user_tags();
            let statuses = vec!["ACTIVE"; tags.len()];
            ok(json!({"tags": tags, "statuses": statuses}))
        }
        Method::PUT => {
            let req = json_request(&call.headers, call.body).await?;
            let tags = tag_list(attribute(&req, "tags")?)?;
            let (server, ()) = modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                s.set_user_tags(&tags);
                s.updated = now;
                Ok(())
            })
            .await?;
            // Tags apply at once here, where Synnefo would first say PENDADD.
            let tags = server.user_tags();
            let statuses = vec!["ACTIVE"; tags.len()];
            ok(json!({"tags": tags, "statuses": statuses}))
        }
        Method::DELETE => {
            let (_, removed) = modify(cloud, user, id, |s, now| {
                s.check_live()?;
                let removed = s.user_tags().len();
                s.set_user_tags(&[]);
                s.updated = now;
                Ok(removed)
            })
            .await?;
            status_only(if removed > 0 { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
        }
        _ => Err(Fault::not_allowed("GET, PUT, DELETE")),
    }
}

/// One tag: existence check (204/404, no body, as Synnefo), add, remove.
pub(super) async fn tag_item(cloud: &Cloud, user: &User, id: i64, tag: &str, method: Method, path: &str) -> Reply {
    match method {
        Method::GET => {
            let found = load(cloud, user, id).await?.user_tags().iter().any(|t| t == tag);
            if found {
                Ok(Out::new(StatusCode::NO_CONTENT).header("tag-status", "ACTIVE").empty())
            } else {
                status_only(StatusCode::NOT_FOUND)
            }
        }
        Method::PUT => {
            check_tag(tag)?;
            let wanted = tag.to_string();
            let (_, created) = modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                let mut tags = s.user_tags();
                if tags.contains(&wanted) {
                    return Ok(false);
                }
                if tags.len() + 1 > MAX_TAGS {
                    return Err(too_many_tags());
                }
                tags.push(wanted);
                s.set_user_tags(&tags);
                s.updated = now;
                Ok(true)
            })
            .await?;
            if created {
                let location = compute_url(cloud, &format!("/{}", path.trim_start_matches('/')));
                Ok(Out::new(StatusCode::CREATED).header("Location", location).empty())
            } else {
                status_only(StatusCode::NO_CONTENT)
            }
        }
        Method::DELETE => {
            let unwanted = tag.to_string();
            let (_, removed) = modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                let mut tags = s.user_tags();
                let before = tags.len();
                tags.retain(|t| *t != unwanted);
                let removed = tags.len() < before;
                if removed {
                    s.set_user_tags(&tags);
                    s.updated = now;
                }
                Ok(removed)
            })
            .await?;
            status_only(if removed { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
        }
        _ => Err(Fault::not_allowed("GET, PUT, DELETE")),
    }
}
