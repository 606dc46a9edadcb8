//! Plankton, the Synnefo image service (kamaki's `ImageClient`, a Glance v1
//! dialect): register Pithos objects as images, list, read and change their
//! metadata, share them with other users.
//!
//! Images are `serde_json::Value`. Where Plankton answers with
//! `x-image-meta-*` headers (register, HEAD, update) they become an object the
//! way kamaki builds it: header names without the prefix and with `_` for
//! `-`, values as text, and the `property-*` ones gathered in `properties`.

use super::astakos::{malformed, AstakosClient};
use super::compute::segment;
use super::error::ClientError;
use super::http::{quote_query, Http, Reply};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Display;

/// Image properties (`os`, `users`, `osfamily`, `root_partition`…).
pub type Properties = BTreeMap<String, String>;

/// Image fields to set at registration or in an update; None leaves a field
/// to the server. Plankton refuses `checksum` and `size` in updates.
#[derive(Debug, Clone, Default)]
pub struct ImageFields {
    pub name: Option<String>,
    /// `diskdump` (default), `extdump`, `ntfsdump`.
    pub disk_format: Option<String>,
    /// `bare` (default), `aki`, `ari`, `ami`, `ovf`.
    pub container_format: Option<String>,
    pub status: Option<String>,
    pub is_public: Option<bool>,
    pub owner: Option<String>,
    pub checksum: Option<String>,
    pub size: Option<u64>,
}

impl ImageFields {
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = Vec::new();
        let mut add = |name: &'static str, v: Option<String>| {
            if let Some(v) = v {
                h.push((name, v));
            }
        };
        add("X-Image-Meta-Name", self.name.clone());
        add("X-Image-Meta-Disk-Format", self.disk_format.clone());
        add("X-Image-Meta-Container-Format", self.container_format.clone());
        add("X-Image-Meta-Status", self.status.clone());
        add("X-Image-Meta-Is-Public", self.is_public.map(|p| if p { "true" } else { "false" }.to_string()));
        add("X-Image-Meta-Owner", self.owner.clone());
        add("X-Image-Meta-Checksum", self.checksum.clone());
        add("X-Image-Meta-Size", self.size.map(|s| s.to_string()));
        h
    }
}

/// A client of a Plankton endpoint (`…/image/v1.0`).
#[derive(Clone, Debug)]
pub struct ImageClient {
    http: Http,
}

/// The location of a Pithos object as Plankton wants it:
/// `pithos://<account>/<container>/<path>`, each part %-quoted.
pub fn pithos_location(account: &str, container: &str, path: &str) -> String {
    use super::http::quote_path;
    format!("pithos://{}/{}/{}", quote_path(account), quote_path(container), quote_path(path))
}

/// An image from the `x-image-meta-*` headers of a reply (kamaki's
/// `_format_image_headers`).
pub fn image_from_headers(headers: &[(String, String)]) -> Value {
    let mut image = Map::new();
    let mut properties = Map::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let Some(rest) = name.strip_prefix("x-image-meta-") else { continue };
        match rest.strip_prefix("property-") {
            Some(key) => properties.insert(key.replace('-', "_"), value.clone().into()),
            None => image.insert(rest.replace('-', "_"), value.clone().into()),
        };
    }
    image.insert("properties".into(), Value::Object(properties));
    Value::Object(image)
}

impl ImageClient {
    pub fn new(base_url: &str, token: &str) -> Result<ImageClient, ClientError> {
        Ok(ImageClient::from_http(Http::new(base_url, Some(token))?))
    }

    pub fn from_http(http: Http) -> ImageClient {
        ImageClient { http }
    }

    /// The image endpoint of the Astakos catalog, on Astakos' pool and token.
    pub async fn from_catalog(astakos: &AstakosClient) -> Result<ImageClient, ClientError> {
        Ok(ImageClient::from_http(astakos.service_http("image", "v1.0").await?))
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Headers for `fields` and `properties`, text %-quoted as Plankton reads it.
    fn meta_headers(
        &self,
        fields: &ImageFields,
        properties: &Properties,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let mut out = Vec::new();
        for (name, value) in fields.headers() {
            out.push((name.to_string(), self.http.quote_header(&value)?));
        }
        for (key, value) in properties {
            if key.is_empty() {
                return Err(ClientError::new("Image property names cannot be empty"));
            }
            out.push((format!("X-Image-Meta-Property-{}", quote_query(key)), self.http.quote_header(value)?));
        }
        Ok(out)
    }

    fn with_headers<'a>(&'a self, method: Method, path: &str, headers: Vec<(String, String)>) -> super::http::Call<'a> {
        headers.into_iter().fold(self.http.request(method, path), |call, (k, v)| call.header(&k, v))
    }

    /// `POST /images/`: registers the Pithos object at `location`
    /// (`pithos://<account>/<container>/<path>`) as an image named `name`.
    /// The registered image (see [`image_from_headers`]).
    pub async fn register(
        &self,
        name: &str,
        location: &str,
        fields: &ImageFields,
        properties: &Properties,
    ) -> Result<Value, ClientError> {
        let fields = ImageFields { name: Some(name.to_string()), ..fields.clone() };
        let mut headers = self.meta_headers(&fields, properties)?;
        headers.push(("X-Image-Meta-Location".into(), location.to_string()));
        let reply = self.with_headers(Method::POST, "images/", headers).ok(&[200]).send().await?;
        Ok(image_from_headers(&reply.headers))
    }

    /// `GET /images/[detail]`: the images the user may see. `filters` are
    /// Glance's (`name`, `disk_format`, `container_format`, `status`,
    /// `size_min`, `size_max`); `order` a sort key, `-` first for descending.
    pub async fn list_public(
        &self,
        detail: bool,
        filters: &BTreeMap<String, String>,
        order: Option<&str>,
    ) -> Result<Vec<Value>, ClientError> {
        let path = if detail { "images/detail" } else { "images/" };
        let mut call = self.http.request(Method::GET, path);
        for (k, v) in filters {
            call = call.query(k, v);
        }
        if let Some(order) = order.filter(|o| !o.is_empty()) {
            let (dir, key) = match order.strip_prefix('-') {
                Some(key) => ("desc", key),
                None => ("asc", order.strip_prefix('+').unwrap_or(order)),
            };
            call = call.query("sort_key", key).query("sort_dir", dir);
        }
        image_list(&call.ok(&[200]).send().await?)
    }

    /// `HEAD /images/{id}`: the image (see [`image_from_headers`]).
    pub async fn get_meta(&self, image_id: impl Display) -> Result<Value, ClientError> {
        let id = segment("image", image_id)?;
        let reply = self.http.request(Method::HEAD, &format!("images/{id}")).ok(&[200]).send().await?;
        Ok(image_from_headers(&reply.headers))
    }

    /// `PUT /images/{id}`: changes fields; `properties` are merged into the
    /// image's (an empty value removes one). The image as changed.
    pub async fn update_image(
        &self,
        image_id: impl Display,
        fields: &ImageFields,
        properties: &Properties,
    ) -> Result<Value, ClientError> {
        let id = segment("image", image_id)?;
        let headers = self.meta_headers(fields, properties)?;
        let reply = self.with_headers(Method::PUT, &format!("images/{id}"), headers).ok(&[200]).send().await?;
        Ok(image_from_headers(&reply.headers))
    }

    /// `DELETE /images/{id}`: forgets the image; the Pithos object stays.
    pub async fn unregister(&self, image_id: impl Display) -> Result<(), ClientError> {
        let id = segment("image", image_id)?;
        self.http.request(Method::DELETE, &format!("images/{id}")).ok(&[204]).send().await?;
        Ok(())
    }

    /// `GET /images/{id}/members`: `[{"member_id", "can_share"}…]`.
    pub async fn list_members(&self, image_id: impl Display) -> Result<Vec<Value>, ClientError> {
        let id = segment("image", image_id)?;
        let reply = self.http.request(Method::GET, &format!("images/{id}/members")).ok(&[200]).send().await?;
        let mut v = reply.json()?;
        match v.get_mut("members").map(Value::take) {
            Some(Value::Array(members)) => Ok(members),
            _ => Err(malformed("the reply has no \"members\" list", &v)),
        }
    }

    /// `PUT /images/{id}/members/{member}`: shares the image with a user.
    pub async fn add_member(&self, image_id: impl Display, member: &str) -> Result<(), ClientError> {
        let (id, member) = (segment("image", image_id)?, segment("member", member)?);
        self.http.request(Method::PUT, &format!("images/{id}/members/{member}")).ok(&[204]).send().await?;
        Ok(())
    }

    /// `DELETE /images/{id}/members/{member}`.
    pub async fn remove_member(&self, image_id: impl Display, member: &str) -> Result<(), ClientError> {
        let (id, member) = (segment("image", image_id)?, segment("member", member)?);
        self.http.request(Method::DELETE, &format!("images/{id}/members/{member}")).ok(&[204]).send().await?;
        Ok(())
    }

    /// `PUT /images/{id}/members`: exactly these users share the image.
    pub async fn set_members(&self, image_id: impl Display, members: &[&str]) -> Result<(), ClientError> {
        let id = segment("image", image_id)?;
        let memberships: Vec<Value> = members.iter().map(|m| json!({ "member_id": m })).collect();
        let body = json!({ "memberships": memberships });
        self.http.request(Method::PUT, &format!("images/{id}/members")).json(&body).ok(&[204]).send().await?;
        Ok(())
    }

    /// `GET /shared-images/{member}`: images shared with `member`.
    pub async fn list_shared(&self, member: &str) -> Result<Vec<Value>, ClientError> {
        let member = segment("member", member)?;
        let reply = self.http.request(Method::GET, &format!("shared-images/{member}")).ok(&[200]).send().await?;
        let mut v = reply.json()?;
        match v.get_mut("shared_images").map(Value::take) {
            Some(Value::Array(images)) => Ok(images),
            _ => Err(malformed("the reply has no \"shared_images\" list", &v)),
        }
    }
}

/// A list of images: a bare JSON array (Synnefo until 0.20, what kamaki reads)
/// or `{"images": […]}` (Synnefo 0.21).
fn image_list(reply: &Reply) -> Result<Vec<Value>, ClientError> {
    match reply.json()? {
        Value::Array(images) => Ok(images),
        Value::Object(mut map) => match map.remove("images") {
            Some(Value::Array(images)) => Ok(images),
            _ => Err(malformed("the reply is neither a list of images nor {\"images\": […]}", &Value::Object(map))),
        },
        other => Err(malformed("the reply is not a list of images", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_from_headers_like_kamaki() {
        let h: Vec<(String, String)> = [
            ("x-image-meta-id", "abc"),
            ("x-image-meta-name", "Debian Base"),
            ("x-image-meta-disk-format", "diskdump"),
            ("x-image-meta-property-root-partition", "1"),
            ("x-image-meta-property-os", "debian"),
            ("content-length", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let image = image_from_headers(&h);
        assert_eq!(
            image,
            json!({"id": "abc", "name": "Debian Base", "disk_format": "diskdump",
                   "properties": {"root_partition": "1", "os": "debian"}})
        );
    }

    #[test]
    fn fields_become_headers() {
        let f = ImageFields { is_public: Some(true), size: Some(3), ..ImageFields::default() };
        assert_eq!(
            f.headers(),
            vec![("X-Image-Meta-Is-Public", "true".to_string()), ("X-Image-Meta-Size", "3".to_string())]
        );
    }
}
