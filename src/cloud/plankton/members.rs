//! Who else may see an image: its members, and the images a member shares.

use crate::cloud::fault::{Fault, Reply};
use crate::cloud::images;
use crate::cloud::wire::Reply as Out;
use crate::cloud::{json_request, Call, Cloud};
use axum::http::StatusCode;
use serde_json::{json, Value};

pub(super) async fn list_members(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    let members = cloud
        .db
        .read(move |c| {
            images::visible_image(c, &user, &id)?;
            images::members(c, &id)
        })
        .await?;
    let list: Vec<Value> = members.iter().map(|m| json!({"member_id": m, "can_share": false})).collect();
    Ok(Out::new(StatusCode::OK).json(&json!({ "members": list })))
}

pub(super) async fn replace_members(cloud: &Cloud, user: &str, id: &str, call: Call) -> Reply {
    let body = json_request(&call.headers, call.body).await?;
    let memberships = match body.get("memberships") {
        None | Some(Value::Null) => {
            return Err(Fault::bad_request("Malformed request. Missing attribute 'memberships'."))
        }
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(Fault::bad_request("Malformed request. Invalid 'memberships' field")),
    };
    let mut new_members = Vec::with_capacity(memberships.len());
    for m in &memberships {
        let member = m
            .as_object()
            .ok_or_else(|| Fault::bad_request("Invalid 'memberships' field"))?
            .get("member_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Fault::bad_request("Malformed request. Missing attribute 'member_id'."))?;
        new_members.push(member.to_string());
    }
    let (user, id) = (user.to_string(), id.to_string());
    cloud
        .db
        .write(move |tx| {
            images::owned_image(tx, &user, &id)?;
            images::replace_members(tx, &id, &new_members)
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}

/// Adds or removes one member. The body is never read: kamaki announces a
/// Content-Length here and sends nothing.
pub(super) async fn change_member(cloud: &Cloud, user: &str, id: &str, member: &str, add: bool) -> Reply {
    let (user, id, member) = (user.to_string(), id.to_string(), member.to_string());
    cloud
        .db
        .write(move |tx| {
            images::owned_image(tx, &user, &id)?;
            if add {
                images::add_member(tx, &id, &member)
            } else {
                images::remove_member(tx, &id, &member)
            }
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}

/// Plankton's reading of this call: the private images of `member` that the
/// caller can see (kamaki: "images shared by member").
pub(super) async fn shared_images(cloud: &Cloud, user: &str, member: &str) -> Reply {
    let (user, member) = (user.to_string(), member.to_string());
    let images = cloud.db.read(move |c| images::visible_images(c, &user)).await?;
    let list: Vec<Value> = images
        .iter()
        .filter(|i| !i.is_public && i.owner == member)
        .map(|i| json!({"image_id": i.id, "can_share": false}))
        .collect();
    Ok(Out::new(StatusCode::OK).json(&json!({ "shared_images": list })))
}
