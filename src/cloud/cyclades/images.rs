//! `/images`: the compute view of the images of the registry that Plankton
//! keeps ([`crate::cloud::images`]).

use super::request::{changes_since, meta_text};
use super::{image_links, ok, status_only};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::images::{self as registry, is_image_id, Image, Properties, AVAILABLE};
use crate::cloud::users::User;
use crate::cloud::wire::{iso_date, now, Query, Reply as Out};
use crate::cloud::{json_request, Call, Cloud};
use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// The status the compute API shows for an image.
fn compute_status(image: &Image) -> &'static str {
    match image.status.to_ascii_uppercase().as_str() {
        AVAILABLE => "ACTIVE",
        "UNAVAILABLE" => "SAVING",
        "ERROR" => "ERROR",
        "DELETED" => "DELETED",
        _ => "UNKNOWN",
    }
}

fn image_json(cloud: &Cloud, image: &Image, detail: bool) -> Value {
    let mut d = Map::new();
    d.insert("id".into(), image.id.clone().into());
    d.insert("name".into(), image.name.clone().into());
    d.insert("links".into(), image_links(cloud, &image.id));
    if detail {
        let status = compute_status(image);
        // Plankton dates have seconds only; so do the compute ones made from them.
        d.insert("updated".into(), iso_date(image.updated.floor()).into());
        d.insert("created".into(), iso_date(image.created.floor()).into());
        d.insert("status".into(), status.into());
        d.insert("progress".into(), (if status == "ACTIVE" { 100 } else { 0 }).into());
        d.insert("user_id".into(), image.owner.clone().into());
        d.insert("tenant_id".into(), image.owner.clone().into());
        d.insert("public".into(), image.is_public.into());
        d.insert("metadata".into(), json!(image.properties));
        d.insert("is_snapshot".into(), image.is_snapshot.into());
    }
    Value::Object(d)
}

pub(super) async fn images(cloud: &Cloud, user: &User, rest: &[&str], call: Call) -> Reply {
    let method = call.method.clone();
    match rest {
        [] => match method {
            Method::GET => list_images(cloud, user, &call.query, false).await,
            Method::POST => Err(Fault::not_implemented("Not supported.")),
            _ => Err(Fault::not_allowed("GET, POST")),
        },
        ["detail"] => match method {
            Method::GET => list_images(cloud, user, &call.query, true).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        [id, more @ ..] if is_image_id(id) => {
            let id = id.to_string();
            match (more, method) {
                ([], Method::GET) => {
                    let image = visible_image(cloud, user, &id).await?;
                    ok(json!({"image": image_json(cloud, &image, true)}))
                }
                ([], Method::DELETE) => {
                    let owner = user.uuid.clone();
                    cloud
                        .db
                        .write(move |tx| {
                            registry::owned_image(tx, &owner, &id)?;
                            registry::unregister(tx, &id)
                        })
                        .await?;
                    status_only(StatusCode::NO_CONTENT)
                }
                ([], _) => Err(Fault::not_allowed("GET, DELETE")),
                (["metadata"], Method::GET) => {
                    ok(json!({"metadata": visible_image(cloud, user, &id).await?.properties}))
                }
                (["metadata"], Method::POST) => {
                    let req = json_request(&call.headers, call.body).await?;
                    let given = req
                        .get("metadata")
                        .and_then(Value::as_object)
                        .ok_or_else(|| Fault::bad_request("Malformed request."))?;
                    let given = image_properties(given)?;
                    let merged = change_properties(cloud, user, id, move |p| p.extend(given)).await?;
                    Ok(Out::new(StatusCode::CREATED).json(&json!({ "metadata": merged })))
                }
                (["metadata"], _) => Err(Fault::not_allowed("GET, POST")),
                (["metadata", key], Method::GET) => {
                    let image = visible_image(cloud, user, &id).await?;
                    let value =
                        image.properties.get(*key).ok_or_else(|| Fault::not_found("Metadata key not found."))?;
                    ok(json!({"meta": {*key: value}}))
                }
                (["metadata", key], Method::PUT) => {
                    let key = key.to_string();
                    let req = json_request(&call.headers, call.body).await?;
                    let malformed = || Fault::bad_request("Malformed request.");
                    let meta =
                        req.get("meta").and_then(Value::as_object).filter(|m| m.len() == 1).ok_or_else(malformed)?;
                    let value = meta_text(meta.get(&key).ok_or_else(malformed)?).ok_or_else(malformed)?;
                    let (k, v) = (key.clone(), value.clone());
                    change_properties(cloud, user, id, move |p| {
                        p.insert(k, v);
                    })
                    .await?;
                    Ok(Out::new(StatusCode::CREATED).json(&json!({"meta": { key: value }})))
                }
                (["metadata", key], Method::DELETE) => {
                    // Plankton drops the key whether or not it was there.
                    let key = key.to_string();
                    change_properties(cloud, user, id, move |p| {
                        p.remove(&key);
                    })
                    .await?;
                    status_only(StatusCode::NO_CONTENT)
                }
                (["metadata", _], _) => Err(Fault::not_allowed("GET, PUT, DELETE")),
                _ => Err(Fault::endpoint_not_found()),
            }
        }
        _ => Err(Fault::endpoint_not_found()),
    }
}

async fn visible_image(cloud: &Cloud, user: &User, id: &str) -> Result<Image, Fault> {
    let (owner, id) = (user.uuid.clone(), id.to_string());
    cloud.db.read(move |c| registry::visible_image(c, &owner, &id)).await
}

fn image_properties(m: &Map<String, Value>) -> Result<Properties, Fault> {
    m.iter()
        .map(|(k, v)| meta_text(v).map(|v| (k.clone(), v)).ok_or_else(|| Fault::bad_request("Malformed request.")))
        .collect()
}

/// Changes the properties of one of the caller's images; returns them all.
async fn change_properties<F>(cloud: &Cloud, user: &User, id: String, change: F) -> Result<Properties, Fault>
where
    F: FnOnce(&mut Properties) + Send + 'static,
{
    let owner = user.uuid.clone();
    let now = now();
    cloud
        .db
        .write(move |tx| {
            let mut properties = registry::owned_image(tx, &owner, &id)?.properties;
            change(&mut properties);
            registry::set_properties(tx, &id, &properties, now)?;
            Ok(properties)
        })
        .await
}

async fn list_images(cloud: &Cloud, user: &User, query: &Query, detail: bool) -> Reply {
    let since = changes_since(query)?;
    let owner = user.uuid.clone();
    let mut images = cloud.db.read(move |c| registry::visible_images(c, &owner)).await?;
    if let Some(t) = since {
        images.retain(|i| i.updated.floor() >= t);
        if images.is_empty() {
            return Err(Fault::not_modified());
        }
    }
    images.sort_by(|a, b| a.id.cmp(&b.id));
    let list: Vec<Value> = images.iter().map(|i| image_json(cloud, i, detail)).collect();
    ok(json!({ "images": list }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_statuses_as_compute_shows_them() {
        let mut i = Image { status: AVAILABLE.into(), ..Image::default() };
        assert_eq!(compute_status(&i), "ACTIVE");
        i.status = "queued".into();
        assert_eq!(compute_status(&i), "UNKNOWN");
    }
}
