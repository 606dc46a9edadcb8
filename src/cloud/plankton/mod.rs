//! Plankton, the Synnefo image service (the Glance v1 API); the images
//! themselves are kept in the registry of [`super::images`].

mod filters;
mod members;
mod params;
mod system;
mod views;

pub use system::{register_system_images, SYSTEM_ACCOUNT};

use super::fault::{Fault, Reply};
use super::images::{self, is_image_id, pithos_url, Image, AVAILABLE};
use super::pithos::model;
use super::wire::{now, Query, Reply as Out};
use super::{Call, Cloud};
use axum::http::{HeaderMap, Method, StatusCode};
use filters::{ImageFilters, ImageOrder};
use members::{change_member, list_members, replace_members, shared_images};
use params::{split_location, ImageParams, REGISTER_FIELDS, UPDATE_FIELDS};
use serde_json::Value;

/// `{IMAGE}/…` (IMAGE = `/cyclades/image/v1.0`).
pub async fn handle(cloud: &Cloud, call: Call) -> Reply {
    let user = call.user()?;
    let path = call.path.trim_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').collect();
    let method = call.method.clone();
    match segments.as_slice() {
        ["images"] => match method {
            Method::GET => list(cloud, &user.uuid, &call.query, false).await,
            Method::POST => register(cloud, &user.uuid, &call.raw_headers).await,
            _ => Err(Fault::not_allowed("GET, POST")),
        },
        ["images", "detail"] => match method {
            Method::GET => list(cloud, &user.uuid, &call.query, true).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        ["images", id] if is_image_id(id) => match method {
            // Plankton never serves image data: clients download it from Pithos.
            Method::GET => Ok(Out::new(StatusCode::NOT_IMPLEMENTED).empty()),
            Method::HEAD => meta(cloud, &user.uuid, id).await,
            Method::PUT => update(cloud, &user.uuid, id, &call.raw_headers).await,
            Method::DELETE => delete(cloud, &user.uuid, id).await,
            _ => Err(Fault::not_allowed("GET, HEAD, PUT, DELETE")),
        },
        ["images", id, "members"] if is_image_id(id) => match method {
            Method::GET => list_members(cloud, &user.uuid, id).await,
            Method::PUT => replace_members(cloud, &user.uuid, id, call).await,
            _ => Err(Fault::not_allowed("GET, PUT")),
        },
        ["images", id, "members", member] if is_image_id(id) && is_member(member) => match method {
            Method::PUT => change_member(cloud, &user.uuid, id, member, true).await,
            Method::DELETE => change_member(cloud, &user.uuid, id, member, false).await,
            _ => Err(Fault::not_allowed("DELETE, PUT")),
        },
        ["shared-images", member] if is_member(member) => match method {
            Method::GET => shared_images(cloud, &user.uuid, member).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        _ => Err(Fault::endpoint_not_found()),
    }
}

/// Member names as Plankton's URLs match them (`[\w@._-]+`).
fn is_member(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_@.-".contains(c))
}

async fn list(cloud: &Cloud, user: &str, query: &Query, detail: bool) -> Reply {
    let filters = ImageFilters::from_query(query)?;
    let order = ImageOrder::from_query(query)?;
    let user = user.to_string();
    let mut images = cloud.db.read(move |c| images::visible_images(c, &user)).await?;
    images.retain(|i| filters.admit(i));
    order.sort(&mut images);
    let list: Vec<Value> = images.iter().map(|i| if detail { i.detail_json() } else { i.summary_json() }).collect();
    // A bare list, as Synnefo sent it until late 2017 and as every kamaki
    // release expects (Synnefo 0.21 wraps it in {"images": …}, which kamaki
    // cannot read).
    Ok(Out::new(StatusCode::OK).json(&Value::Array(list)))
}

async fn register(cloud: &Cloud, user: &str, headers: &HeaderMap) -> Reply {
    let params = ImageParams::from_headers(headers)?;
    params.only(&REGISTER_FIELDS, "Invalid parameters")?;
    let name = params.get("name").ok_or_else(|| Fault::bad_request("Image 'name' parameter is required"))?;
    if name.is_empty() {
        return Err(Fault::bad_request("Invalid image name"));
    }
    let location = params.get("location").ok_or_else(|| Fault::bad_request("'location' parameter is required"))?;
    let (account, container, object) = split_location(location)?;
    params.validate()?;
    let size = params
        .get("size")
        .map(|s| s.trim().parse::<u64>().map_err(|_| Fault::bad_request("Invalid 'size' field")))
        .transpose()?;
    if account != user {
        return Err(Fault::forbidden("Only the owner of an object may register it as an image"));
    }
    let user = user.to_string();
    let now = now();
    let image = cloud
        .db
        .write(move |tx| {
            let c = model::container(tx, &account, &container)?
                .ok_or_else(|| Fault::not_found("Container does not exist"))?;
            let v = model::current(tx, c.id, &object)?.ok_or_else(|| Fault::not_found("Object does not exist"))?;
            if size.is_some_and(|s| s != v.bytes) {
                return Err(Fault::bad_request("Invalid 'size' field"));
            }
            if params.get("checksum").is_some_and(|sum| sum != v.etag) {
                return Err(Fault::bad_request("Invalid checksum field"));
            }
            // Registering again keeps the properties (Plankton merges object
            // metadata) but resets sharing, as Plankton rewrites the object's
            // permissions.
            let mut properties = images::stored_properties(tx, &v.uuid)?.unwrap_or_default();
            params.merge_properties_into(&mut properties);
            let image = Image {
                id: v.uuid.clone(),
                owner: user.clone(),
                name: params.get("name").unwrap_or_default().to_string(),
                location: pithos_url(&c.account, &c.name, &v.name),
                size: v.bytes,
                checksum: v.etag.clone(),
                disk_format: params.get("disk_format").unwrap_or("diskdump").to_string(),
                container_format: params.get("container_format").unwrap_or("bare").to_string(),
                status: AVAILABLE.to_string(),
                is_public: params.is_public().unwrap_or(false),
                is_snapshot: false,
                description: String::new(),
                properties,
                created: now,
                updated: now,
            };
            images::save_image(tx, &image, c.id, &v.name)?;
            images::replace_members(tx, &image.id, &[])?;
            Ok(image)
        })
        .await?;
    Ok(image.headers().empty())
}

async fn meta(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    let image = cloud.db.read(move |c| images::visible_image(c, &user, &id)).await?;
    Ok(image.headers().empty())
}

async fn update(cloud: &Cloud, user: &str, id: &str, headers: &HeaderMap) -> Reply {
    let params = ImageParams::from_headers(headers)?;
    params.only(&UPDATE_FIELDS, "Invalid metadata")?;
    params.validate()?;
    let (user, id) = (user.to_string(), id.to_string());
    let now = now();
    let image = cloud
        .db
        .write(move |tx| {
            let mut image = images::owned_image(tx, &user, &id)?;
            if let Some(name) = params.get("name") {
                image.name = name.to_string();
            }
            if let Some(f) = params.get("disk_format") {
                image.disk_format = f.to_string();
            }
            if let Some(f) = params.get("container_format") {
                image.container_format = f.to_string();
            }
            if let Some(s) = params.get("status") {
                image.status = s.to_string();
            }
            if let Some(p) = params.is_public() {
                image.is_public = p;
            }
            params.merge_properties_into(&mut image.properties);
            image.updated = now;
            images::update_image(tx, &image)?;
            Ok(image)
        })
        .await?;
    Ok(image.headers().empty())
}

async fn delete(cloud: &Cloud, user: &str, id: &str) -> Reply {
    let (user, id) = (user.to_string(), id.to_string());
    cloud
        .db
        .write(move |tx| {
            images::owned_image(tx, &user, &id)?;
            images::unregister(tx, &id)
        })
        .await?;
    Ok(Out::new(StatusCode::NO_CONTENT).empty())
}
