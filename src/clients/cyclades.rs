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

/// Where Synnefo's images take the SSH keys a server is created with.
pub const AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";

/// The largest personality file Cyclades accepts (decoded bytes).
pub const MAX_PERSONALITY_BYTES: usize = 10240;

/// A personality entry (kamaki's `server create -p`) that installs
/// `public_keys` (one or more OpenSSH public key lines) as root's
/// `authorized_keys`, owned by root, mode 0600. Refuses what is not a public
/// key (a private key most of all: it would be handed to the cloud).
pub fn ssh_key_personality(public_keys: &str) -> Result<Value, ClientError> {
    use base64::Engine;
    let keys: Vec<&str> = public_keys.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if public_keys.contains("PRIVATE KEY") {
        return Err(ClientError::new("This is a private SSH key: give the public one (the .pub file)"));
    }
    if keys.is_empty() {
        return Err(ClientError::new(
            "No SSH public key found: expected lines such as \"ssh-ed25519 AAAA… user@host\"",
        ));
    }
    if let Some(bad) = keys.iter().find(|k| !is_public_key_line(k)) {
        let shown: String = bad.chars().take(40).collect();
        return Err(ClientError::new(format!("Not an SSH public key line: {shown:?}")));
    }
    let text = keys.join("\n") + "\n";
    if text.len() > MAX_PERSONALITY_BYTES {
        return Err(ClientError::new(format!(
            "The SSH keys take {} bytes; a personality file may hold at most {MAX_PERSONALITY_BYTES}",
            text.len()
        )));
    }
    Ok(json!({
        "path": AUTHORIZED_KEYS,
        "contents": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
        "owner": "root",
        "group": "root",
        "mode": 0o600,
    }))
}

/// An authorized_keys line: `[options] TYPE BASE64 [comment]`, where TYPE
/// is `ssh-…`, `ecdsa-…` or `sk-…`.
fn is_public_key_line(line: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.windows(2).any(|w| {
        let kind = w[0];
        let known = kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-");
        known && w[1].len() >= 16 && w[1].bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    })
}

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

    /// kamaki's `server wait`: with a `target`, polls until the server is in
    /// it; without, until it leaves the status it is in now. The server as
    /// last seen; a `ClientError` when `timeout` passes first.
    pub async fn wait_server(
        &self,
        server_id: impl Display,
        target: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let id = segment("server", server_id)?;
        match target {
            Some(status) => self.wait_server_until(&id, status, timeout).await,
            None => {
                let now = self.compute.get_server_details(&id).await?;
                let current = server_status(&now).unwrap_or("").to_string();
                self.wait_server_while(&id, &current, timeout).await
            }
        }
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
    fn ssh_keys_become_roots_authorized_keys() {
        use base64::Engine;
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5c2hvdWxkYmVsb25n alice@laptop\n";
        let p = ssh_key_personality(key).unwrap();
        assert_eq!(
            (p["path"].as_str(), p["mode"].as_u64(), p["owner"].as_str()),
            (Some(AUTHORIZED_KEYS), Some(384), Some("root"))
        );
        let decoded = base64::engine::general_purpose::STANDARD.decode(p["contents"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, key.as_bytes());
        let with_options = "from=\"10.0.0.1\" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ me";
        assert!(ssh_key_personality(with_options).is_ok());
        let private =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert!(ssh_key_personality(private).unwrap_err().message.contains("private"));
        assert!(ssh_key_personality("").is_err());
        assert!(ssh_key_personality("hello world").unwrap_err().message.contains("Not an SSH public key"));
        let many = format!("{}\n", key.trim()).repeat(200);
        assert!(ssh_key_personality(&many).unwrap_err().message.contains("at most"));
    }

    #[test]
    fn os_comes_from_metadata() {
        let s = json!({"name": "A Debian Server", "metadata": {"os": "Debian Base"}, "status": "ACTIVE"});
        assert_eq!(server_os(&s).as_deref(), Some("Debian Base"));
        assert_eq!(server_status(&s), Some("ACTIVE"));
        assert_eq!(server_os(&json!({"metadata": {}})), None);
    }
}
