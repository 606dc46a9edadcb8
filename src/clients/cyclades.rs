//! Cyclades, Synnefo's compute service (kamaki's `CycladesComputeClient`):
//! a [`ComputeClient`] plus Synnefo's actions and conventions.
//!
//! kamaki's inheritance becomes composition: `compute()` gives every OpenStack
//! call, and the calls an application uses most are forwarded here. Where
//! Synnefo differs (start/shutdown actions, creating from an image's OS
//! metadata) the method here is the one to use.

use super::astakos::{malformed, AstakosClient};
use super::compute::{field, segment, ComputeClient, Metadata, NewServer};
use super::error::ClientError;
use super::http::Http;
use serde_json::{json, Value};
use std::fmt::Display;
use std::time::{Duration, Instant};

/// Image metadata kamaki copies into a new server's metadata.
const COPIED_IMAGE_METADATA: [&str; 2] = ["os", "users"];

/// A client of a Cyclades compute endpoint (`…/compute/v2.0`).
#[derive(Clone, Debug)]
pub struct CycladesClient {
    compute: ComputeClient,
}

/// The OS of a server (its `metadata.os`), as the seed prints it.
pub fn server_os(server: &Value) -> Option<String> {
    server.pointer("/metadata/os").and_then(Value::as_str).map(str::to_string)
}

/// The status of a server (`ACTIVE`, `BUILD`, `STOPPED`…).
pub fn server_status(server: &Value) -> Option<&str> {
    server.get("status").and_then(Value::as_str)
}

impl CycladesClient {
    /// `CycladesClient(base_url, token)`: no request is made yet.
    pub fn new(base_url: &str, token: &str) -> Result<CycladesClient, ClientError> {
        Ok(CycladesClient { compute: ComputeClient::new(base_url, token)? })
    }

    pub fn from_http(http: Http) -> CycladesClient {
        CycladesClient { compute: ComputeClient::from_http(http) }
    }

    /// The compute endpoint of the Astakos catalog, on Astakos' pool and token.
    pub async fn from_catalog(astakos: &AstakosClient) -> Result<CycladesClient, ClientError> {
        Ok(CycladesClient { compute: ComputeClient::from_catalog(astakos).await? })
    }

    /// The plain OpenStack calls (flavors, images, metadata…).
    pub fn compute(&self) -> &ComputeClient {
        &self.compute
    }

    pub fn base_url(&self) -> &str {
        self.compute.base_url()
    }

    // ---------- Synnefo's own ----------

    /// Creates a server. Like kamaki, the image's `os` and `users` metadata
    /// are copied into the server's unless `server.metadata` sets them.
    pub async fn create_server(&self, server: &NewServer) -> Result<Value, ClientError> {
        let image = self.compute.get_image_details(&server.image_id).await?;
        let mut server = server.clone();
        if let Some(Value::Object(meta)) = image.get("metadata") {
            for key in COPIED_IMAGE_METADATA {
                if let Some(Value::String(v)) = meta.get(key) {
                    server.metadata.entry(key.to_string()).or_insert_with(|| v.clone());
                }
            }
        }
        self.compute.post_server(&server.body(true)).await
    }

    /// Synnefo's `start` action.
    pub async fn start_server(&self, server_id: impl Display) -> Result<(), ClientError> {
        self.compute.server_action(server_id, &json!({"start": {}}), &[202]).await?;
        Ok(())
    }

    /// Synnefo's `shutdown` action.
    pub async fn shutdown_server(&self, server_id: impl Display) -> Result<(), ClientError> {
        self.compute.server_action(server_id, &json!({"shutdown": {}}), &[202]).await?;
        Ok(())
    }

    /// A console of a running server: `{"type", "host", "port", "password"}`.
    /// `console_type` is `vnc`, `vnc-ws` or `vnc-wss`.
    pub async fn get_server_console(&self, server_id: impl Display, console_type: &str) -> Result<Value, ClientError> {
        let reply = self.compute.server_action(server_id, &json!({"console": {"type": console_type}}), &[200]).await?;
        field(&reply, "console")
    }

    /// `GET /servers/{id}/stats`: URLs of the CPU and network graphs.
    pub async fn get_server_stats(&self, server_id: impl Display) -> Result<Value, ClientError> {
        let id = segment("server", server_id)?;
        let reply =
            self.compute.http().request(reqwest::Method::GET, &format!("servers/{id}/stats")).ok(&[200]).send().await?;
        field(&reply, "stats")
    }

    /// `GET /servers/{id}/diagnostics`: a list of events.
    pub async fn get_server_diagnostics(&self, server_id: impl Display) -> Result<Vec<Value>, ClientError> {
        let id = segment("server", server_id)?;
        let reply = self
            .compute
            .http()
            .request(reqwest::Method::GET, &format!("servers/{id}/diagnostics"))
            .ok(&[200])
            .send()
            .await?;
        match reply.json()? {
            Value::Array(items) => Ok(items),
            other => Err(malformed("the diagnostics are not a list", &other)),
        }
    }

    /// The seed's `get_server_info`: the server's details. Its name is
    /// `server["name"]`, its OS [`server_os`].
    pub async fn get_server_info(&self, server_id: impl Display) -> Result<Value, ClientError> {
        self.compute.get_server_details(server_id).await
    }

    /// Polls the server (every second at most) until its status is `status`;
    /// the server as last seen. A `ClientError` when `timeout` passes first.
    pub async fn wait_server_until(
        &self,
        server_id: impl Display,
        status: &str,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        self.wait(server_id, timeout, |s| s == status, &format!("to become {status}")).await
    }

    /// Polls the server until its status is no longer `status` (e.g. `BUILD`).
    pub async fn wait_server_while(
        &self,
        server_id: impl Display,
        status: &str,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        self.wait(server_id, timeout, |s| s != status, &format!("to leave {status}")).await
    }

    async fn wait(
        &self,
        server_id: impl Display,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
        what: &str,
    ) -> Result<Value, ClientError> {
        let id = segment("server", server_id)?;
        let start = Instant::now();
        // Short first waits: a local cloud settles in well under a second.
        let mut interval = Duration::from_millis(100);
        loop {
            let server = self.compute.get_server_details(&id).await?;
            let status = server_status(&server).unwrap_or("");
            if done(status) {
                return Ok(server);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(ClientError::new(format!(
                    "Timed out after {:.1}s waiting for server {id} {what}; it is {status}",
                    waited.as_secs_f64()
                )));
            }
            tokio::time::sleep(interval.min(timeout - waited)).await;
            interval = (interval * 2).min(Duration::from_secs(1));
        }
    }

    // ---------- forwarded to the compute client ----------

    pub async fn list_servers(&self, detail: bool) -> Result<Vec<Value>, ClientError> {
        self.compute.list_servers(detail).await
    }

    pub async fn get_server_details(&self, server_id: impl Display) -> Result<Value, ClientError> {
        self.compute.get_server_details(server_id).await
    }

    pub async fn update_server_name(&self, server_id: impl Display, new_name: &str) -> Result<(), ClientError> {
        self.compute.update_server_name(server_id, new_name).await
    }

    pub async fn delete_server(&self, server_id: impl Display) -> Result<(), ClientError> {
        self.compute.delete_server(server_id).await
    }

    pub async fn reboot_server(&self, server_id: impl Display, hard: bool) -> Result<(), ClientError> {
        self.compute.reboot_server(server_id, hard).await
    }

    pub async fn get_server_metadata(
        &self,
        server_id: impl Display,
        key: Option<&str>,
    ) -> Result<Metadata, ClientError> {
        self.compute.get_server_metadata(server_id, key).await
    }

    pub async fn create_server_metadata(
        &self,
        server_id: impl Display,
        key: &str,
        value: &str,
    ) -> Result<Metadata, ClientError> {
        self.compute.create_server_metadata(server_id, key, value).await
    }

    pub async fn update_server_metadata(
        &self,
        server_id: impl Display,
        metadata: &Metadata,
    ) -> Result<Metadata, ClientError> {
        self.compute.update_server_metadata(server_id, metadata).await
    }

    pub async fn delete_server_metadata(&self, server_id: impl Display, key: &str) -> Result<(), ClientError> {
        self.compute.delete_server_metadata(server_id, key).await
    }

    pub async fn get_server_nics(&self, server_id: impl Display) -> Result<Value, ClientError> {
        self.compute.get_server_nics(server_id).await
    }

    pub async fn list_flavors(&self, detail: bool) -> Result<Vec<Value>, ClientError> {
        self.compute.list_flavors(detail).await
    }

    pub async fn get_flavor_details(&self, flavor_id: impl Display) -> Result<Value, ClientError> {
        self.compute.get_flavor_details(flavor_id).await
    }

    pub async fn list_images(&self, detail: bool) -> Result<Vec<Value>, ClientError> {
        self.compute.list_images(detail).await
    }

    pub async fn get_image_details(&self, image_id: impl Display) -> Result<Value, ClientError> {
        self.compute.get_image_details(image_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_comes_from_metadata() {
        let s = json!({"name": "A Debian Server", "metadata": {"os": "Debian Base"}, "status": "ACTIVE"});
        assert_eq!(server_os(&s).as_deref(), Some("Debian Base"));
        assert_eq!(server_status(&s), Some("ACTIVE"));
        assert_eq!(server_os(&json!({"metadata": {}})), None);
    }
}
