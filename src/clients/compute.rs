//! OpenStack Compute v2 (kamaki's `ComputeClient`): servers, their actions and
//! metadata, flavors, and the compute view of images.
//!
//! Servers, flavors and images are `serde_json::Value` as the API sends them
//! (kamaki returns the dicts); metadata is a [`Metadata`] map.

use super::astakos::{malformed, AstakosClient};
use super::error::ClientError;
use super::http::{Http, Reply};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Display;

/// Server or image metadata: key → value, both text.
pub type Metadata = BTreeMap<String, String>;

/// What `create_server` sends. `flavor_id` is sent as a JSON number when it
/// is one (Cyclades flavor ids are integers), as text otherwise.
#[derive(Debug, Clone, Default)]
pub struct NewServer {
    pub name: String,
    pub flavor_id: String,
    pub image_id: String,
    pub metadata: Metadata,
    /// Files to inject: `{"path", "contents" (base64), "owner", "group", "mode"}`.
    pub personality: Vec<Value>,
    /// None: the cloud's default network; `Some(vec![])`: no network at all.
    pub networks: Option<Vec<Value>>,
    /// Synnefo only: names of the user's public keys to inject.
    pub key_names: Vec<String>,
    /// Base64 user data for cloud-init.
    pub user_data: Option<String>,
    /// Synnefo only: the project whose quota pays for the server.
    pub project_id: Option<String>,
    /// Synnefo only: user tags.
    pub tags: Vec<String>,
}

impl NewServer {
    pub fn new(name: impl Into<String>, flavor_id: impl Display, image_id: impl Into<String>) -> NewServer {
        NewServer {
            name: name.into(),
            flavor_id: flavor_id.to_string(),
            image_id: image_id.into(),
            ..NewServer::default()
        }
    }

    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> NewServer {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The `{"server": …}` request body; `synnefo` adds Cyclades' extensions.
    pub(crate) fn body(&self, synnefo: bool) -> Value {
        let mut s = Map::new();
        s.insert("name".into(), self.name.clone().into());
        let flavor = match self.flavor_id.trim().parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(self.flavor_id.clone()),
        };
        s.insert("flavorRef".into(), flavor);
        s.insert("imageRef".into(), self.image_id.clone().into());
        if !self.metadata.is_empty() {
            s.insert("metadata".into(), json!(self.metadata));
        }
        if !self.personality.is_empty() {
            s.insert("personality".into(), Value::Array(self.personality.clone()));
        }
        if let Some(networks) = &self.networks {
            s.insert("networks".into(), Value::Array(networks.clone()));
        }
        if let Some(data) = &self.user_data {
            s.insert("user_data".into(), data.clone().into());
        }
        if synnefo {
            if !self.key_names.is_empty() {
                s.insert("SNF:key_names".into(), json!(self.key_names));
            }
            if let Some(p) = &self.project_id {
                s.insert("project".into(), p.clone().into());
            }
            if !self.tags.is_empty() {
                s.insert("tags".into(), json!(self.tags));
            }
        }
        json!({ "server": s })
    }
}

/// A client of an OpenStack compute endpoint (`…/compute/v2.0`).
#[derive(Clone, Debug)]
pub struct ComputeClient {
    http: Http,
}

/// One path segment made of an id given by the caller: it must not be empty
/// nor hold a `/`, which would address another resource.
pub(crate) fn segment(kind: &str, id: impl Display) -> Result<String, ClientError> {
    let id = id.to_string();
    if id.is_empty() || id.contains('/') {
        return Err(ClientError::new(format!("Invalid {kind} id {id:?}")));
    }
    Ok(id)
}

/// A metadata key as the last part of a path: it may hold `/` (the server
/// takes the rest of the path), but must not be empty.
fn meta_key(key: &str) -> Result<&str, ClientError> {
    if key.is_empty() {
        return Err(ClientError::new("Metadata keys cannot be empty"));
    }
    Ok(key)
}

/// `reply[key]`, which the protocol says is there.
pub(crate) fn field(reply: &Reply, key: &str) -> Result<Value, ClientError> {
    let mut v = reply.json()?;
    match v.get_mut(key) {
        Some(found) => Ok(found.take()),
        None => Err(malformed(&format!("the reply has no {key:?}"), &v)),
    }
}

/// `reply[key]` as a list.
pub(crate) fn list_field(reply: &Reply, key: &str) -> Result<Vec<Value>, ClientError> {
    match field(reply, key)? {
        Value::Array(items) => Ok(items),
        other => Err(malformed(&format!("{key:?} is not a list"), &other)),
    }
}

/// A `{key: value}` JSON object as [`Metadata`]; numbers and booleans are
/// taken as their text.
pub fn metadata_of(v: &Value) -> Result<Metadata, ClientError> {
    let Value::Object(map) = v else { return Err(malformed("metadata is not an object", v)) };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
            _ => Err(malformed(&format!("the value of metadata key {k:?} is not text"), v)),
        })
        .collect()
}

impl ComputeClient {
    pub fn new(base_url: &str, token: &str) -> Result<ComputeClient, ClientError> {
        Ok(ComputeClient::from_http(Http::new(base_url, Some(token))?))
    }

    pub fn from_http(http: Http) -> ComputeClient {
        ComputeClient { http }
    }

    /// The compute endpoint of the Astakos catalog, on Astakos' pool and token.
    pub async fn from_catalog(astakos: &AstakosClient) -> Result<ComputeClient, ClientError> {
        Ok(ComputeClient::from_http(astakos.service_http("compute", "v2.0").await?))
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn base_url(&self) -> &str {
        self.http.base_url()
    }

    // ---------- servers ----------

    /// `GET /servers[/detail]`: ids, names and links, or (detail) everything.
    pub async fn list_servers(&self, detail: bool) -> Result<Vec<Value>, ClientError> {
        let path = if detail { "servers/detail" } else { "servers" };
        list_field(&self.http.request(Method::GET, path).ok(&[200]).send().await?, "servers")
    }

    /// `GET /servers/{id}`: the server as the API describes it.
    pub async fn get_server_details(&self, server_id: impl Display) -> Result<Value, ClientError> {
        let id = segment("server", server_id)?;
        field(&self.http.request(Method::GET, &format!("servers/{id}")).ok(&[200]).send().await?, "server")
    }

    /// `POST /servers` (OpenStack fields only); the new server, with its
    /// `adminPass`.
    pub async fn create_server(&self, server: &NewServer) -> Result<Value, ClientError> {
        self.post_server(&server.body(false)).await
    }

    pub(crate) async fn post_server(&self, body: &Value) -> Result<Value, ClientError> {
        field(&self.http.request(Method::POST, "servers").json(body).ok(&[202]).send().await?, "server")
    }

    /// `PUT /servers/{id}` with a new name.
    pub async fn update_server_name(&self, server_id: impl Display, new_name: &str) -> Result<(), ClientError> {
        let id = segment("server", server_id)?;
        let body = json!({"server": {"name": new_name}});
        self.http.request(Method::PUT, &format!("servers/{id}")).json(&body).ok(&[204]).send().await?;
        Ok(())
    }

    /// `DELETE /servers/{id}`.
    pub async fn delete_server(&self, server_id: impl Display) -> Result<(), ClientError> {
        let id = segment("server", server_id)?;
        self.http.request(Method::DELETE, &format!("servers/{id}")).ok(&[204]).send().await?;
        Ok(())
    }

    /// `POST /servers/{id}/action` with a one-key body; the reply when its
    /// status is one of `ok`.
    pub async fn server_action(
        &self,
        server_id: impl Display,
        action: &Value,
        ok: &[u16],
    ) -> Result<Reply, ClientError> {
        let id = segment("server", server_id)?;
        self.http.request(Method::POST, &format!("servers/{id}/action")).json(action).ok(ok).send().await
    }

    /// A `SOFT` reboot, or a `HARD` one.
    pub async fn reboot_server(&self, server_id: impl Display, hard: bool) -> Result<(), ClientError> {
        let kind = if hard { "HARD" } else { "SOFT" };
        self.server_action(server_id, &json!({"reboot": {"type": kind}}), &[202]).await?;
        Ok(())
    }

    /// OpenStack's `os-start`.
    pub async fn start_server(&self, server_id: impl Display) -> Result<(), ClientError> {
        self.server_action(server_id, &json!({"os-start": null}), &[202]).await?;
        Ok(())
    }

    /// OpenStack's `os-stop`.
    pub async fn shutdown_server(&self, server_id: impl Display) -> Result<(), ClientError> {
        self.server_action(server_id, &json!({"os-stop": null}), &[202]).await?;
        Ok(())
    }

    // ---------- server metadata ----------

    /// `GET /servers/{id}/metadata[/{key}]`: all of it, or the one key.
    pub async fn get_server_metadata(
        &self,
        server_id: impl Display,
        key: Option<&str>,
    ) -> Result<Metadata, ClientError> {
        let id = segment("server", server_id)?;
        self.get_metadata(&format!("servers/{id}/metadata"), key).await
    }

    async fn get_metadata(&self, path: &str, key: Option<&str>) -> Result<Metadata, ClientError> {
        let reply = match key {
            Some(k) => self.http.request(Method::GET, &format!("{path}/{}", meta_key(k)?)).ok(&[200]).send().await?,
            None => self.http.request(Method::GET, path).ok(&[200]).send().await?,
        };
        metadata_of(&field(&reply, if key.is_some() { "meta" } else { "metadata" })?)
    }

    /// `PUT /servers/{id}/metadata/{key}`: sets one key; what the server kept.
    pub async fn create_server_metadata(
        &self,
        server_id: impl Display,
        key: &str,
        value: &str,
    ) -> Result<Metadata, ClientError> {
        let id = segment("server", server_id)?;
        let key = meta_key(key)?;
        let mut meta = Map::new();
        meta.insert(key.to_string(), value.into());
        let body = json!({ "meta": meta });
        let reply = self
            .http
            .request(Method::PUT, &format!("servers/{id}/metadata/{key}"))
            .json(&body)
            .ok(&[201])
            .send()
            .await?;
        metadata_of(&field(&reply, "meta")?)
    }

    /// `POST /servers/{id}/metadata`: merges `metadata`; the whole result.
    pub async fn update_server_metadata(
        &self,
        server_id: impl Display,
        metadata: &Metadata,
    ) -> Result<Metadata, ClientError> {
        let id = segment("server", server_id)?;
        let body = json!({ "metadata": metadata });
        let reply = self
            .http
            .request(Method::POST, &format!("servers/{id}/metadata"))
            .json(&body)
            .idempotent(true)
            .ok(&[201])
            .send()
            .await?;
        metadata_of(&field(&reply, "metadata")?)
    }

    /// `DELETE /servers/{id}/metadata/{key}`.
    pub async fn delete_server_metadata(&self, server_id: impl Display, key: &str) -> Result<(), ClientError> {
        let (id, key) = (segment("server", server_id)?, meta_key(key)?);
        self.http.request(Method::DELETE, &format!("servers/{id}/metadata/{key}")).ok(&[204]).send().await?;
        Ok(())
    }

    /// `GET /servers/{id}/ips`: `{"addresses": {network: […]}, …}`.
    pub async fn get_server_nics(&self, server_id: impl Display) -> Result<Value, ClientError> {
        let id = segment("server", server_id)?;
        self.http.request(Method::GET, &format!("servers/{id}/ips")).ok(&[200]).send().await?.json()
    }

    // ---------- flavors ----------

    /// `GET /flavors[/detail]`.
    pub async fn list_flavors(&self, detail: bool) -> Result<Vec<Value>, ClientError> {
        let path = if detail { "flavors/detail" } else { "flavors" };
        list_field(&self.http.request(Method::GET, path).ok(&[200]).send().await?, "flavors")
    }

    /// `GET /flavors/{id}`: vcpus, ram (MiB), disk (GiB)…
    pub async fn get_flavor_details(&self, flavor_id: impl Display) -> Result<Value, ClientError> {
        let id = segment("flavor", flavor_id)?;
        field(&self.http.request(Method::GET, &format!("flavors/{id}")).ok(&[200]).send().await?, "flavor")
    }

    // ---------- images ----------

    /// `GET /images[/detail]`.
    pub async fn list_images(&self, detail: bool) -> Result<Vec<Value>, ClientError> {
        let path = if detail { "images/detail" } else { "images" };
        list_field(&self.http.request(Method::GET, path).ok(&[200]).send().await?, "images")
    }

    /// `GET /images/{id}`: with `metadata` (the image's properties: os, users…).
    pub async fn get_image_details(&self, image_id: impl Display) -> Result<Value, ClientError> {
        let id = segment("image", image_id)?;
        field(&self.http.request(Method::GET, &format!("images/{id}")).ok(&[200]).send().await?, "image")
    }

    /// `GET /images/{id}/metadata[/{key}]`.
    pub async fn get_image_metadata(&self, image_id: impl Display, key: Option<&str>) -> Result<Metadata, ClientError> {
        let id = segment("image", image_id)?;
        self.get_metadata(&format!("images/{id}/metadata"), key).await
    }

    /// `DELETE /images/{id}`: unregisters the image (its object stays).
    pub async fn delete_image(&self, image_id: impl Display) -> Result<(), ClientError> {
        let id = segment("image", image_id)?;
        self.http.request(Method::DELETE, &format!("images/{id}")).ok(&[204]).send().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies() {
        let s = NewServer::new("web", 3, "img").meta("os", "debian");
        let b = s.body(false);
        assert_eq!(
            b,
            json!({"server": {"name": "web", "flavorRef": 3, "imageRef": "img", "metadata": {"os": "debian"}}})
        );
        let mut s = NewServer::new("web", "m1.tiny", "img");
        s.tags = vec!["t".into()];
        s.networks = Some(vec![]);
        assert_eq!(s.body(false)["server"]["flavorRef"], "m1.tiny");
        assert!(s.body(false)["server"].get("tags").is_none());
        assert_eq!(s.body(true)["server"]["tags"], json!(["t"]));
        assert_eq!(s.body(true)["server"]["networks"], json!([]));
    }

    #[test]
    fn ids_stay_one_segment() {
        assert_eq!(segment("server", 42).unwrap(), "42");
        assert!(segment("server", "").is_err());
        assert!(segment("server", "1/action").is_err());
    }

    #[test]
    fn metadata_is_text() {
        assert_eq!(metadata_of(&json!({"a": "b", "n": 1, "t": true})).unwrap()["n"], "1");
        assert!(metadata_of(&json!({"a": {}})).is_err());
        assert!(metadata_of(&json!([])).is_err());
    }
}
