//! The local cloud of a data directory (`$PITHOSFS_DATA`, else
//! `~/.local/share/pithosfs`): a `pithosfs serve` that runs on it (its base
//! URL in `<data>/url`, the default user's token in `<data>/token`), or one
//! served from inside this process.
//!
//! Finding a running one creates nothing; only `start_local` (behind
//! `--local`, and `pithosfs mount` with nothing configured) creates the data
//! directory.

use super::{err, read_token_file, CloudConfig, ConfigError, Environment, Source, ENV_URL};
use crate::clients::http::{Options, Token};
use crate::clients::{AstakosClient, Http};
use crate::cloud::{self, ServeConfig, IDENTITY_PATH};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// A local cloud served from inside this process; it stops when dropped.
pub struct EmbeddedCloud {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl fmt::Debug for EmbeddedCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedCloud").field("url", &self.url).finish()
    }
}

impl EmbeddedCloud {
    /// Stops serving and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedCloud {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The base URL a local cloud's data directory says its server runs on.
pub(super) fn local_url(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("url")).ok()?;
    let url = text.trim().trim_end_matches('/');
    (!url.is_empty()).then(|| url.to_string())
}

/// Whether the local cloud at `identity` answers and takes `token`: Ok(true)
/// when it does, Ok(false) when nothing answers there, an error when a server
/// answers but refuses.
async fn answers(identity: &str, token: &Token) -> Result<bool, ConfigError> {
    // One quick attempt: a stale url file names a port nobody listens on.
    let options = Options {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(10),
        retries: 0,
        ..Options::default()
    };
    let http = Http::with_options(identity, Some(token.expose()), options).map_err(|e| ConfigError(e.message))?;
    match AstakosClient::from_http(http).authenticate().await {
        Ok(_) => Ok(true),
        Err(e) if e.status == 0 => Ok(false),
        Err(e) => err(format!("The local cloud at {identity} refused the token of its data directory: {}", e.message)),
    }
}

/// What the data directory says about a running local cloud.
pub(super) enum Running {
    /// A server answers at the URL of `<data>/url` and takes `<data>/token`.
    Yes(CloudConfig),
    /// `<data>/url` names a server that does not answer (a stale file).
    Gone(String),
    /// No `<data>/url` or no `<data>/token`: no local cloud was ever served here.
    Never,
}

/// The running local cloud of the data directory, if one answers. Reads
/// only: nothing is created.
pub(super) async fn running(env: &Environment) -> Result<Running, ConfigError> {
    let data_dir = env.data_dir();
    let token_file = data_dir.join("token");
    let (Some(base), true) = (local_url(&data_dir), token_file.exists()) else { return Ok(Running::Never) };
    let token = read_token_file(&token_file)?;
    let identity = format!("{base}{IDENTITY_PATH}");
    if !answers(&identity, &token).await? {
        return Ok(Running::Gone(base));
    }
    Ok(Running::Yes(CloudConfig::new(identity, token, Source::LocalCloud { data_dir })))
}

/// A resolved cloud, with the local cloud this process serves, if any.
#[derive(Debug)]
pub struct Resolved {
    pub config: CloudConfig,
    pub embedded: Option<EmbeddedCloud>,
}

/// The local cloud of the data directory: the running one, or else one
/// started in this process (creating the data directory and its default
/// user on first use). Must be called inside a Tokio runtime, which then
/// serves the embedded cloud until the returned `EmbeddedCloud` is dropped.
pub async fn start_local(env: &Environment) -> Result<Resolved, ConfigError> {
    if let Running::Yes(config) = running(env).await? {
        return Ok(Resolved { config, embedded: None });
    }
    let data_dir = env.data_dir();
    let token_file = data_dir.join("token");
    let mut serve = ServeConfig::new(data_dir.clone());
    serve.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let running = cloud::bind(serve).await.map_err(|e| {
        ConfigError(format!(
            "The local cloud in {} cannot start: {e} (or configure a cloud: --url, {ENV_URL}, ~/.kamakirc)",
            data_dir.display()
        ))
    })?;
    let url = running.url.clone();
    let token = read_token_file(&token_file).map_err(|_| {
        ConfigError(format!(
            "The local cloud in {} has no default user token ({}); give --token-file",
            data_dir.display(),
            token_file.display()
        ))
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(running.run(async move {
        let _ = stopped.await;
    }));
    let config = CloudConfig::new(format!("{url}{IDENTITY_PATH}"), token, Source::EmbeddedCloud { data_dir });
    Ok(Resolved { config, embedded: Some(EmbeddedCloud { url, stop: Some(stop), task: Some(task) }) })
}
