//! Which cloud a command talks to, and with which token.
//!
//! The first of these that names a cloud wins:
//!
//! 1. flags: `--url` (the Astakos identity URL) and `--token-file`, or
//!    `--cloud NAME` (a cloud of the kamaki config file);
//! 2. the environment: `PITHOSFS_URL`, and `PITHOSFS_TOKEN` or
//!    `PITHOSFS_TOKEN_FILE`;
//! 3. the kamaki config file (`$KAMAKI_CONFIG`, else `~/.kamakirc`): its
//!    default cloud's `url` and `token`, so a kamaki user needs no new setup;
//! 4. the local cloud of `pithosfs serve` in the data directory
//!    (`$PITHOSFS_DATA`, else `~/.local/share/pithosfs`): the running server
//!    named by `<data>/url`, or else one started in this process, with the
//!    token in `<data>/token`.
//!
//! A URL given without a token takes the token the kamaki config file or the
//! local cloud keeps for that same URL; a token is never sent to a URL it was
//! not configured with. Tokens come from files or the environment, never from
//! the command line, and never show in output (`Debug` redacts them).

use crate::clients::http::{Options, Token};
use crate::clients::{AstakosClient, ClientError, Http};
use crate::cloud::{self, ServeConfig, IDENTITY_PATH};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ENV_URL: &str = "PITHOSFS_URL";
pub const ENV_TOKEN: &str = "PITHOSFS_TOKEN";
pub const ENV_TOKEN_FILE: &str = "PITHOSFS_TOKEN_FILE";
pub const ENV_DATA: &str = "PITHOSFS_DATA";
pub const ENV_KAMAKI_CONFIG: &str = "KAMAKI_CONFIG";
pub const ENV_SWIFT_KEY: &str = "PITHOSFS_SWIFT_KEY";

/// A configuration that cannot be used; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// What the command line says about the cloud.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub url: Option<String>,
    pub token_file: Option<PathBuf>,
    /// A cloud of the kamaki config file.
    pub cloud: Option<String>,
}

/// The environment variables configuration reads (a snapshot, so tests can
/// make their own).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    /// The process environment's variables of the list above.
    pub fn current() -> Environment {
        let vars = [ENV_URL, ENV_TOKEN, ENV_TOKEN_FILE, ENV_DATA, ENV_KAMAKI_CONFIG, ENV_SWIFT_KEY]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Environment { vars }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Environment {
        Environment { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// A variable, when set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// The kamaki config file: `$KAMAKI_CONFIG`, else `~/.kamakirc`.
    pub fn kamaki_config_path(&self) -> Option<PathBuf> {
        match self.get(ENV_KAMAKI_CONFIG) {
            Some(p) => Some(PathBuf::from(p)),
            None => dirs::home_dir().map(|h| h.join(".kamakirc")),
        }
    }

    /// The local cloud's data directory: `$PITHOSFS_DATA`, else the user's
    /// data directory's `pithosfs`.
    pub fn data_dir(&self) -> PathBuf {
        match self.get(ENV_DATA) {
            Some(d) => PathBuf::from(d),
            None => dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("pithosfs"),
        }
    }
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--url`/`--token-file` (possibly completed from the environment).
    Flags,
    Environment,
    KamakiConfig {
        path: PathBuf,
        cloud: String,
    },
    /// A `pithosfs serve` that was already running.
    LocalCloud {
        data_dir: PathBuf,
    },
    /// The local cloud, started inside this process.
    EmbeddedCloud {
        data_dir: PathBuf,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flags => f.write_str("the command line"),
            Source::Environment => write!(f, "the environment ({ENV_URL})"),
            Source::KamakiConfig { path, cloud } => write!(f, "cloud {cloud:?} of {}", path.display()),
            Source::LocalCloud { data_dir } => write!(f, "the local cloud of {}", data_dir.display()),
            Source::EmbeddedCloud { data_dir } => write!(f, "the local cloud of {} (started here)", data_dir.display()),
        }
    }
}

/// A cloud to talk to: its Astakos identity URL and the token.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub identity_url: String,
    pub token: Token,
    pub source: Source,
}

impl CloudConfig {
    /// An Astakos client for this cloud; the other clients come from its catalog.
    pub fn astakos(&self) -> Result<AstakosClient, ClientError> {
        AstakosClient::new(&self.identity_url, self.token.expose())
    }
}

/// The kamaki config file, as far as clouds go.
#[derive(Debug, Clone, Default)]
pub struct KamakiConfig {
    pub path: PathBuf,
    /// (section, [(key, value)]) in file order; keys lower-cased.
    sections: Vec<(String, Vec<(String, String)>)>,
}

/// One `[cloud "NAME"]` section.
#[derive(Debug, Clone)]
pub struct KamakiCloud {
    pub name: String,
    pub url: Option<String>,
    pub token: Option<Token>,
}

impl KamakiConfig {
    /// Python-ConfigParser-like text: `[section]` headers, `key = value` or
    /// `key: value` lines, `#`/`;` comment lines; anything else is skipped.
    pub fn parse(path: &Path, text: &str) -> KamakiConfig {
        let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                sections.push((header.trim().to_string(), Vec::new()));
                continue;
            }
            let split = match (line.find('='), line.find(':')) {
                (Some(e), Some(c)) => Some(e.min(c)),
                (e, c) => e.or(c),
            };
            if let (Some(at), Some((_, entries))) = (split, sections.last_mut()) {
                let key = line[..at].trim().to_ascii_lowercase();
                entries.push((key, line[at + 1..].trim().to_string()));
            }
        }
        KamakiConfig { path: path.to_path_buf(), sections }
    }

    /// Reads the file; None when there is none.
    pub fn load(path: &Path) -> Result<Option<KamakiConfig>, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(KamakiConfig::parse(path, &text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => err(format!("Cannot read the kamaki config file {}: {e}", path.display())),
        }
    }

    /// The last value of `key` in `section`: as in ConfigParser, a repeated
    /// section or key overrides the earlier one.
    fn value(&self, section: &str, key: &str) -> Option<&str> {
        let found = self
            .sections
            .iter()
            .rev()
            .filter(|(n, _)| n == section)
            .find_map(|(_, entries)| entries.iter().rev().find(|(k, _)| k == key));
        found.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The names of the `[cloud "NAME"]` sections, in file order.
    pub fn clouds(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (section, _) in &self.sections {
            if let Some(name) = cloud_name(section) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// `[global] default_cloud`, else the only cloud, else `default`.
    pub fn default_cloud(&self) -> String {
        if let Some(name) = self.value("global", "default_cloud") {
            return name.to_string();
        }
        match self.clouds().as_slice() {
            [only] => only.clone(),
            _ => "default".to_string(),
        }
    }

    pub fn cloud(&self, name: &str) -> Option<KamakiCloud> {
        let section = self.sections.iter().map(|(s, _)| s).find(|s| cloud_name(s).as_deref() == Some(name))?;
        Some(KamakiCloud {
            name: name.to_string(),
            url: self.value(section, "url").map(str::to_string),
            token: self.value(section, "token").map(Token::new),
        })
    }
}

/// `cloud "NAME"` (or `cloud NAME`, or `cloud 'NAME'`) → NAME.
fn cloud_name(section: &str) -> Option<String> {
    let rest = section.strip_prefix("cloud")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim();
    let name = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(rest);
    (!name.is_empty()).then(|| name.to_string())
}

/// The identity URL as used: no trailing `/`; a bare `http://host:port` (a
/// local cloud's base URL) gets the local cloud's identity path.
pub fn identity_url(url: &str) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/');
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return err(format!("{url:?} is not a URL; give the Astakos identity URL (…/identity/v2.0)"));
    };
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return err(format!("{url:?} is not an http(s) URL"));
    }
    if parsed.path().trim_matches('/').is_empty() && parsed.query().is_none() {
        return Ok(format!("{url}{IDENTITY_PATH}"));
    }
    Ok(url.to_string())
}

/// A token from a file: its first line, trimmed. The error never quotes it.
pub fn read_token_file(path: &Path) -> Result<Token, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("Cannot read the token file {}: {e}", path.display())))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return err(format!("The token file {} is empty", path.display()));
    }
    Ok(Token::new(token))
}

/// A plain OpenStack object store (Swift, or anything that speaks its API),
/// reached without Astakos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageTarget {
    /// A storage URL (`http://host/v1/AUTH_test`); the token as for any cloud
    /// (`--token-file`, `PITHOSFS_TOKEN`, `PITHOSFS_TOKEN_FILE`).
    StorageUrl(String),
    /// Swift v1 (tempauth) authentication: the key from `key_file`, else `PITHOSFS_SWIFT_KEY`.
    SwiftAuth { url: String, user: String, key_file: Option<PathBuf> },
}

/// A storage client for `target`, working in `container`.
pub async fn storage_client(
    target: &StorageTarget,
    flags: &Flags,
    env: &Environment,
    container: &str,
) -> Result<crate::clients::storage::StorageClient, ConfigError> {
    use crate::clients::storage::StorageClient;
    match target {
        StorageTarget::StorageUrl(url) => {
            let token = explicit_token(flags, env)?.ok_or_else(|| {
                ConfigError(format!(
                    "No token for {url}: give --token-file FILE, or set {ENV_TOKEN_FILE} or {ENV_TOKEN}"
                ))
            })?;
            StorageClient::from_storage_url(url, token.expose(), container).map_err(|e| ConfigError(e.message))
        }
        StorageTarget::SwiftAuth { url, user, key_file } => {
            let key = match key_file {
                Some(f) => read_token_file(f)?,
                None => env.get(ENV_SWIFT_KEY).map(|k| Token::new(k.trim())).ok_or_else(|| {
                    ConfigError(format!(
                        "No key for Swift user {user}: give --swift-key-file FILE or set {ENV_SWIFT_KEY}"
                    ))
                })?,
            };
            StorageClient::swift_v1_auth(url, user, key.expose(), container)
                .await
                .map_err(|e| ConfigError(format!("Swift authentication at {url} failed: {}", e.message)))
        }
    }
}

/// The token given explicitly (flag, then environment), if any.
fn explicit_token(flags: &Flags, env: &Environment) -> Result<Option<Token>, ConfigError> {
    if let Some(file) = &flags.token_file {
        return read_token_file(file).map(Some);
    }
    if let Some(t) = env.get(ENV_TOKEN) {
        return Ok(Some(Token::new(t.trim())));
    }
    if let Some(file) = env.get(ENV_TOKEN_FILE) {
        return read_token_file(Path::new(file)).map(Some);
    }
    Ok(None)
}

/// The base URL a local cloud's data directory says its server runs on.
fn local_url(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("url")).ok()?;
    let url = text.trim().trim_end_matches('/');
    (!url.is_empty()).then(|| url.to_string())
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// The token kept for `url` by the kamaki config file or the local cloud.
fn token_for_url(url: &str, env: &Environment) -> Result<Option<(Token, Source)>, ConfigError> {
    if let Some(path) = env.kamaki_config_path() {
        if let Some(kc) = KamakiConfig::load(&path)? {
            let mut names = kc.clouds();
            // The default cloud first, when several share the URL.
            let default = kc.default_cloud();
            names.sort_by_key(|n| *n != default);
            for name in names {
                if let Some(KamakiCloud { url: Some(u), token: Some(t), .. }) = kc.cloud(&name) {
                    if identity_url(&u).is_ok_and(|u| same_url(&u, url)) {
                        return Ok(Some((t, Source::KamakiConfig { path: path.clone(), cloud: name })));
                    }
                }
            }
        }
    }
    let data_dir = env.data_dir();
    if let Some(base) = local_url(&data_dir) {
        if same_url(&format!("{base}{IDENTITY_PATH}"), url) {
            if let Ok(token) = read_token_file(&data_dir.join("token")) {
                return Ok(Some((token, Source::LocalCloud { data_dir })));
            }
        }
    }
    Ok(None)
}

/// A cloud of the kamaki config file, which must have a URL and a token.
fn kamaki_cloud(kc: &KamakiConfig, name: &str) -> Result<CloudConfig, ConfigError> {
    let path = kc.path.display();
    let Some(cloud) = kc.cloud(name) else {
        let known = kc.clouds();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        return err(format!("No cloud {name:?} in {path} (clouds there: {known})"));
    };
    let Some(url) = cloud.url else { return err(format!("Cloud {name:?} in {path} has no url")) };
    let Some(token) = cloud.token else { return err(format!("Cloud {name:?} in {path} has no token")) };
    Ok(CloudConfig {
        identity_url: identity_url(&url)?,
        token,
        source: Source::KamakiConfig { path: kc.path.clone(), cloud: name.to_string() },
    })
}

/// Steps 1 to 3 (flags, environment, kamaki config file): no network, no
/// local cloud. None when none of them names a cloud.
pub fn resolve_configured(flags: &Flags, env: &Environment) -> Result<Option<CloudConfig>, ConfigError> {
    if let Some(name) = &flags.cloud {
        if flags.url.is_some() || flags.token_file.is_some() {
            return err("--cloud cannot be combined with --url or --token-file");
        }
        let Some(path) = env.kamaki_config_path() else { return err("No home directory to find ~/.kamakirc in") };
        let Some(kc) = KamakiConfig::load(&path)? else {
            return err(format!("--cloud {name}: there is no kamaki config file {}", path.display()));
        };
        return kamaki_cloud(&kc, name).map(Some);
    }
    let (url, source) = match (&flags.url, env.get(ENV_URL)) {
        (Some(u), _) => (Some(identity_url(u)?), Source::Flags),
        (None, Some(u)) => (Some(identity_url(u)?), Source::Environment),
        (None, None) => (None, Source::Environment),
    };
    let token = explicit_token(flags, env)?;
    let source = if flags.token_file.is_some() { Source::Flags } else { source };
    match (url, token) {
        (Some(identity_url), Some(token)) => return Ok(Some(CloudConfig { identity_url, token, source })),
        (Some(url), None) => {
            return match token_for_url(&url, env)? {
                Some((token, found)) => Ok(Some(CloudConfig { identity_url: url, token, source: found })),
                None => {
                    err(format!("No token for {url}: give --token-file FILE, or set {ENV_TOKEN_FILE} or {ENV_TOKEN}"))
                }
            };
        }
        (None, Some(_)) => {
            // Sending it to whatever cloud comes next could leak it to a
            // server it was never meant for.
            return err(format!("A token was given but no URL: give --url URL or set {ENV_URL}"));
        }
        (None, None) => {}
    }
    let Some(path) = env.kamaki_config_path() else { return Ok(None) };
    let Some(kc) = KamakiConfig::load(&path)? else { return Ok(None) };
    let name = kc.default_cloud();
    if kc.cloud(&name).is_none() {
        return Ok(None);
    }
    kamaki_cloud(&kc, &name).map(Some)
}

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

/// A resolved cloud, with the local cloud this process serves, if any.
#[derive(Debug)]
pub struct Resolved {
    pub config: CloudConfig,
    pub embedded: Option<EmbeddedCloud>,
}

/// Whether the local cloud at `identity` answers and takes `token`: Ok(true)
/// when it does, Ok(false) when nothing answers there, an error when a server
/// answers but refuses.
async fn local_cloud_answers(identity: &str, token: &Token) -> Result<bool, ConfigError> {
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

/// Step 4: the local cloud in the data directory, running or started here.
/// Must be called inside a Tokio runtime, which then serves the embedded
/// cloud until the returned `EmbeddedCloud` is dropped.
pub async fn local_cloud(env: &Environment) -> Result<Resolved, ConfigError> {
    let data_dir = env.data_dir();
    let token_file = data_dir.join("token");
    if let (Some(base), true) = (local_url(&data_dir), token_file.exists()) {
        let token = read_token_file(&token_file)?;
        let identity = format!("{base}{IDENTITY_PATH}");
        if local_cloud_answers(&identity, &token).await? {
            let config = CloudConfig { identity_url: identity, token, source: Source::LocalCloud { data_dir } };
            return Ok(Resolved { config, embedded: None });
        }
    }
    let mut serve = ServeConfig::new(data_dir.clone());
    serve.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let running = cloud::bind(serve).await.map_err(|e| {
        ConfigError(format!(
            "No cloud configured (--url, {ENV_URL}, ~/.kamakirc) and the local cloud in {} cannot start: {e}",
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
    let config = CloudConfig {
        identity_url: format!("{url}{IDENTITY_PATH}"),
        token,
        source: Source::EmbeddedCloud { data_dir },
    };
    Ok(Resolved { config, embedded: Some(EmbeddedCloud { url, stop: Some(stop), task: Some(task) }) })
}

/// The whole resolution (steps 1 to 4).
pub async fn resolve(flags: &Flags, env: &Environment) -> Result<Resolved, ConfigError> {
    match resolve_configured(flags, env)? {
        Some(config) => Ok(Resolved { config, embedded: None }),
        None => local_cloud(env).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RC: &str = r#"
# kamaki config
[global]
default_cloud = okeanos
colors = off

[cloud "default"]
url = http://127.0.0.1:8080/identity/v2.0
token = local-token

  [cloud "okeanos"]
  url: https://accounts.okeanos.grnet.gr/identity/v2.0
  ; comment
  token = okeanos-token
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn kamakirc_parses() {
        let kc = KamakiConfig::parse(Path::new("rc"), RC);
        assert_eq!(kc.clouds(), vec!["default", "okeanos"]);
        assert_eq!(kc.default_cloud(), "okeanos");
        let c = kc.cloud("okeanos").unwrap();
        assert_eq!(c.url.as_deref(), Some("https://accounts.okeanos.grnet.gr/identity/v2.0"));
        assert_eq!(c.token.unwrap().expose(), "okeanos-token");
        assert!(kc.cloud("nope").is_none());
        let single = KamakiConfig::parse(Path::new("rc"), "[cloud 'x']\nurl=http://a/identity/v2.0\n");
        assert_eq!(single.default_cloud(), "x");
        assert_eq!(KamakiConfig::parse(Path::new("rc"), "").default_cloud(), "default");
        assert_eq!(cloud_name("cloudy \"x\""), None);
    }

    #[test]
    fn urls() {
        assert_eq!(identity_url("http://127.0.0.1:9/").unwrap(), "http://127.0.0.1:9/identity/v2.0");
        assert_eq!(identity_url("https://a/identity/v2.0/").unwrap(), "https://a/identity/v2.0");
        assert!(identity_url("ftp://a").is_err());
        assert!(identity_url("nonsense").is_err());
    }

    #[test]
    fn order_of_sources() {
        let dir = tempfile::tempdir().unwrap();
        let rc = write(dir.path(), "rc", RC);
        let tok = write(dir.path(), "tok", "file-token\n");
        let data = dir.path().join("data");
        let base = |extra: &[(&str, String)]| {
            let mut pairs = vec![
                (ENV_KAMAKI_CONFIG.to_string(), rc.display().to_string()),
                (ENV_DATA.to_string(), data.display().to_string()),
            ];
            pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            Environment::from_pairs(pairs)
        };
        // The kamaki config file's default cloud.
        let c = resolve_configured(&Flags::default(), &base(&[])).unwrap().unwrap();
        assert_eq!(c.token.expose(), "okeanos-token");
        assert!(matches!(c.source, Source::KamakiConfig { ref cloud, .. } if cloud == "okeanos"));
        // The environment wins over it.
        let env = base(&[(ENV_URL, "http://e/identity/v2.0".into()), (ENV_TOKEN, "env-token".into())]);
        let c = resolve_configured(&Flags::default(), &env).unwrap().unwrap();
        assert_eq!(
            (c.identity_url.as_str(), c.token.expose(), &c.source),
            ("http://e/identity/v2.0", "env-token", &Source::Environment)
        );
        // Flags win over the environment.
        let flags = Flags { url: Some("http://f/identity/v2.0".into()), token_file: Some(tok.clone()), cloud: None };
        let c = resolve_configured(&flags, &env).unwrap().unwrap();
        assert_eq!(
            (c.identity_url.as_str(), c.token.expose(), &c.source),
            ("http://f/identity/v2.0", "file-token", &Source::Flags)
        );
        // --cloud picks a cloud of the file.
        let flags = Flags { cloud: Some("default".into()), ..Flags::default() };
        assert_eq!(resolve_configured(&flags, &env).unwrap().unwrap().token.expose(), "local-token");
        let flags = Flags { cloud: Some("missing".into()), ..Flags::default() };
        assert!(resolve_configured(&flags, &env).unwrap_err().0.contains("default, okeanos"));
        // A URL alone takes the token kept for that URL, and only that.
        let flags = Flags { url: Some("http://127.0.0.1:8080/".into()), ..Flags::default() };
        assert_eq!(resolve_configured(&flags, &base(&[])).unwrap().unwrap().token.expose(), "local-token");
        let flags = Flags { url: Some("http://elsewhere/identity/v2.0".into()), ..Flags::default() };
        assert!(resolve_configured(&flags, &base(&[])).unwrap_err().0.contains("No token"));
        // A token alone goes nowhere.
        let env = base(&[(ENV_TOKEN_FILE, tok.display().to_string())]);
        assert!(resolve_configured(&Flags::default(), &env).unwrap_err().0.contains("no URL"));
        // Nothing configured: on to the local cloud.
        let env = Environment::from_pairs([(ENV_KAMAKI_CONFIG, dir.path().join("none").display().to_string())]);
        assert!(resolve_configured(&Flags::default(), &env).unwrap().is_none());
    }

    #[test]
    fn tokens_stay_secret() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty", "\n");
        assert!(read_token_file(&empty).unwrap_err().0.contains("empty"));
        let c = CloudConfig {
            identity_url: "http://x/identity/v2.0".into(),
            token: Token::new("very-secret"),
            source: Source::Flags,
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
