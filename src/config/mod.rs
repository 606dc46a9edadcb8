//! Which cloud a command talks to, and with which token.
//!
//! The first of these that names a cloud wins:
//!
//! 1. flags: `--url` (the Astakos identity URL) and `--token-file`, or
//!    `--cloud NAME` (a cloud of the kamaki config file), or `--local`
//!    (the local cloud of the data directory, started for the command when
//!    none runs);
//! 2. the environment: `PITHOSFS_URL`, and `PITHOSFS_TOKEN` or
//!    `PITHOSFS_TOKEN_FILE`;
//! 3. the kamaki config file (`$KAMAKI_CONFIG`, else `~/.kamakirc`): its
//!    default cloud's `url` and `token` (and its per-service `<service>_url`
//!    overrides), so a kamaki user needs no new setup;
//! 4. a *running* local cloud (`pithosfs serve`) of the data directory
//!    (`$PITHOSFS_DATA`, else `~/.local/share/pithosfs`), named by
//!    `<data>/url`, with the token in `<data>/token`: the user started it,
//!    so it counts as configured.
//!
//! Nothing else: with none of these, the control commands say how to
//! configure a cloud and stop, creating nothing. Only `--local`, and
//! `pithosfs mount` (whose documented default is the local cloud), start a
//! local cloud in the process ([`resolve_or_start_local`]).
//!
//! A kamaki config file that names a cloud it does not have, or a cloud
//! without url or token, is an error naming the file and the section.
//!
//! A URL given without a token takes the token the kamaki config file or the
//! local cloud keeps for that same URL; a token is never sent to a URL it was
//! not configured with. Tokens come from files or the environment, never from
//! the command line, and never show in output (`Debug` redacts them).

mod kamakirc;
mod local;
mod storage;

pub use kamakirc::{KamakiCloud, KamakiConfig};
pub use local::{start_local, EmbeddedCloud, Resolved};
pub use storage::{storage_client, StorageTarget};

use crate::clients::http::Token;
use crate::clients::{AstakosClient, ClientError};
use crate::cloud::IDENTITY_PATH;
use local::{local_url, Running};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub const ENV_URL: &str = "PITHOSFS_URL";
pub const ENV_TOKEN: &str = "PITHOSFS_TOKEN";
pub const ENV_TOKEN_FILE: &str = "PITHOSFS_TOKEN_FILE";
pub const ENV_DATA: &str = "PITHOSFS_DATA";
pub const ENV_KAMAKI_CONFIG: &str = "KAMAKI_CONFIG";
/// kamaki's: the cloud to use when the config file names no default.
pub const ENV_KAMAKI_DEFAULT_CLOUD: &str = "KAMAKI_DEFAULT_CLOUD";
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
    /// `--local`: the local cloud of the data directory, started in this
    /// process when none runs.
    pub local: bool,
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
        let vars =
            [ENV_URL, ENV_TOKEN, ENV_TOKEN_FILE, ENV_DATA, ENV_KAMAKI_CONFIG, ENV_KAMAKI_DEFAULT_CLOUD, ENV_SWIFT_KEY]
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
    /// `--url` (the token from `--token-file` or the environment).
    Flags,
    /// `$PITHOSFS_URL` (the token from `--token-file` or the environment).
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

impl Source {
    /// The local cloud of a data directory, running or started here.
    pub fn is_local(&self) -> bool {
        matches!(self, Source::LocalCloud { .. } | Source::EmbeddedCloud { .. })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flags => f.write_str("the command line (--url)"),
            Source::Environment => write!(f, "the environment ({ENV_URL})"),
            Source::KamakiConfig { path, cloud } => write!(f, "[cloud \"{cloud}\"] of {}", path.display()),
            Source::LocalCloud { data_dir } => write!(f, "the local cloud of {}, running", data_dir.display()),
            Source::EmbeddedCloud { data_dir } => {
                write!(f, "the local cloud of {}, served by this command", data_dir.display())
            }
        }
    }
}

/// A cloud to talk to: its Astakos identity URL and the token.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub identity_url: String,
    pub token: Token,
    pub source: Source,
    /// Catalog service type (`compute`, `object-store`, `image`…) → URL used
    /// instead of the catalog's (a kamakirc cloud's `cyclades_url`…).
    pub endpoints: BTreeMap<String, String>,
    /// Settings of the source that pithosfs read but does not follow, said
    /// on stderr so that nobody believes they took effect.
    pub notes: Vec<String>,
}

impl CloudConfig {
    pub fn new(identity_url: String, token: Token, source: Source) -> CloudConfig {
        CloudConfig { identity_url, token, source, endpoints: BTreeMap::new(), notes: Vec::new() }
    }

    /// An Astakos client for this cloud; the other clients come from its
    /// catalog, with this configuration's endpoint overrides.
    pub fn astakos(&self) -> Result<AstakosClient, ClientError> {
        Ok(AstakosClient::new(&self.identity_url, self.token.expose())?.with_endpoints(self.endpoints.clone()))
    }

    /// The cloud's name: the kamakirc section's, `local` for the local cloud.
    pub fn name(&self) -> Option<&str> {
        match &self.source {
            Source::KamakiConfig { cloud, .. } => Some(cloud),
            Source::LocalCloud { .. } | Source::EmbeddedCloud { .. } => Some("local"),
            Source::Flags | Source::Environment => None,
        }
    }

    /// Which cloud, where it came from, and the endpoints it overrides, for
    /// `-v` (one line each; never the token).
    pub fn describe(&self) -> Vec<String> {
        let name = self.name().map(|n| format!(" {n:?}")).unwrap_or_default();
        let mut lines = vec![format!("cloud{name} at {} (from {})", self.identity_url, self.source)];
        lines.extend(
            self.endpoints.iter().map(|(kind, url)| format!("{kind} endpoint {url} (instead of the catalog's)")),
        );
        lines
    }
}

/// How the control commands say that no cloud is configured.
fn not_configured(env: &Environment, local: Running) -> ConfigError {
    let rc = match env.kamaki_config_path() {
        Some(p) if p.exists() => format!("{} (it has no [cloud \"NAME\"] section)", p.display()),
        Some(p) => format!("{} (there is none)", p.display()),
        None => "~/.kamakirc".into(),
    };
    let data = env.data_dir();
    let local = match local {
        Running::Gone(url) => format!(
            "\nThe local cloud of {} is not running (nothing answers at {url}): start it with `pithosfs serve`, or pass --local.",
            data.display()
        ),
        _ => String::new(),
    };
    ConfigError(format!(
        "No cloud is configured.{local}\n\
         Tell pithosfs which cloud to use, in one of these ways:\n  \
         --url IDENTITY_URL --token-file FILE    (the Astakos URL, …/identity/v2.0, and a file holding the token)\n  \
         {ENV_URL}=IDENTITY_URL and {ENV_TOKEN_FILE}=FILE (or {ENV_TOKEN}=TOKEN)\n  \
         a kamaki cloud in {rc}:\n      \
         kamaki config set cloud.NAME.url IDENTITY_URL\n      \
         kamaki config set cloud.NAME.token TOKEN\n      \
         kamaki config set default_cloud NAME\n\
         Or use the local cloud of {}:\n  \
         --local                  (uses it, starting it for this command if it is not running)\n  \
         pithosfs serve           (or scripts/run --serve: keeps it running; then every command finds it)",
        data.display()
    ))
}

/// The token kept for `url` by the kamaki config file (with that cloud's
/// endpoint overrides) or the local cloud.
fn config_for_url(url: &str, env: &Environment) -> Result<Option<CloudConfig>, ConfigError> {
    if let Some(path) = env.kamaki_config_path() {
        if let Some(kc) = KamakiConfig::load(&path)? {
            let mut names = kc.clouds();
            // The default cloud first, when several share the URL.
            let default = kc.default_cloud(env.get(ENV_KAMAKI_DEFAULT_CLOUD)).ok().flatten();
            names.sort_by_key(|n| Some(n) != default.as_ref());
            // Only the cloud of this URL is checked whole: a mistake in
            // another section does not stand in the way.
            for name in names {
                if let Some((u, true)) = kc.cloud_url(&name) {
                    if identity_url(u).is_ok_and(|u| same_url(&u, url)) {
                        return kamaki_cloud(&kc, &name, Chosen::UrlMatch).map(Some);
                    }
                }
            }
        }
    }
    let data_dir = env.data_dir();
    if let Some(base) = local_url(&data_dir) {
        if same_url(&format!("{base}{IDENTITY_PATH}"), url) {
            if let Ok(token) = read_token_file(&data_dir.join("token")) {
                return Ok(Some(CloudConfig::new(url.to_string(), token, Source::LocalCloud { data_dir })));
            }
        }
    }
    Ok(None)
}

/// Why a cloud of the kamaki config file is the one used (for messages).
#[derive(Clone, Copy)]
enum Chosen {
    Flag,
    /// `[global] default_cloud`, else (`from_env`) `$KAMAKI_DEFAULT_CLOUD`.
    DefaultCloud {
        from_env: bool,
    },
    UrlMatch,
}

/// A cloud of the kamaki config file, which must have a URL and a token.
fn kamaki_cloud(kc: &KamakiConfig, name: &str, chosen: Chosen) -> Result<CloudConfig, ConfigError> {
    let path = kc.path.display();
    let Some(cloud) = kc.cloud(name)? else {
        let by = match chosen {
            Chosen::Flag => format!("--cloud {name}"),
            Chosen::DefaultCloud { from_env: false } => format!("default_cloud = {name} in [global]"),
            Chosen::DefaultCloud { from_env: true } => format!("{ENV_KAMAKI_DEFAULT_CLOUD}={name}"),
            Chosen::UrlMatch => name.to_string(),
        };
        return err(format!(
            "No cloud {name:?} in {path}: {by} names a section [cloud \"{name}\"] that is not there (clouds there: {})",
            kc.clouds_text()
        ));
    };
    let missing: Vec<&str> =
        [("url", cloud.url.is_none()), ("token", cloud.token.is_none())].iter().filter(|m| m.1).map(|m| m.0).collect();
    let (Some(url), Some(token)) = (cloud.url, cloud.token) else {
        return err(format!(
            "Cloud {name:?} in {path} has no {}: set it with `kamaki config set cloud.{name}.{} …`",
            missing.join(" and no "),
            missing[0]
        ));
    };
    let mut config = CloudConfig::new(
        identity_url(&url).map_err(|e| ConfigError(format!("url of [cloud \"{name}\"] in {path}: {e}")))?,
        token,
        Source::KamakiConfig { path: kc.path.clone(), cloud: name.to_string() },
    );
    config.endpoints = cloud.endpoints;
    config.notes = cloud
        .unfollowed
        .iter()
        .map(|k| {
            format!("{k} of [cloud \"{name}\"] in {path} is not used: pithosfs uses the cloud's url, token and catalog")
        })
        .collect();
    Ok(config)
}

/// Steps 1 to 3 (flags, environment, kamaki config file): no network, no
/// local cloud. None when none of them names a cloud.
pub fn resolve_configured(flags: &Flags, env: &Environment) -> Result<Option<CloudConfig>, ConfigError> {
    if flags.local && (flags.url.is_some() || flags.token_file.is_some() || flags.cloud.is_some()) {
        return err("--local cannot be combined with --url, --token-file or --cloud");
    }
    if let Some(name) = &flags.cloud {
        if flags.url.is_some() || flags.token_file.is_some() {
            return err("--cloud cannot be combined with --url or --token-file");
        }
        let Some(path) = env.kamaki_config_path() else { return err("No home directory to find ~/.kamakirc in") };
        let Some(kc) = KamakiConfig::load(&path)? else {
            return err(format!("--cloud {name}: there is no kamaki config file {}", path.display()));
        };
        return kamaki_cloud(&kc, name, Chosen::Flag).map(Some);
    }
    let (url, source) = match (&flags.url, env.get(ENV_URL)) {
        (Some(u), _) => (Some(identity_url(u)?), Source::Flags),
        (None, Some(u)) => (Some(identity_url(u)?), Source::Environment),
        (None, None) => (None, Source::Environment),
    };
    let token = explicit_token(flags, env)?;
    match (url, token) {
        (Some(identity_url), Some(token)) => return Ok(Some(CloudConfig::new(identity_url, token, source))),
        (Some(url), None) => {
            return match config_for_url(&url, env)? {
                Some(config) => Ok(Some(config)),
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
    if flags.local {
        return Ok(None);
    }
    let Some(path) = env.kamaki_config_path() else { return Ok(None) };
    let Some(kc) = KamakiConfig::load(&path)? else { return Ok(None) };
    match kc.default_cloud(env.get(ENV_KAMAKI_DEFAULT_CLOUD))? {
        Some(name) => {
            let chosen = Chosen::DefaultCloud { from_env: kc.global_default().is_none() };
            kamaki_cloud(&kc, &name, chosen).map(Some)
        }
        None => Ok(None),
    }
}

/// The cloud of a control command: steps 1 to 4. With nothing configured,
/// an error that says how to configure a cloud; nothing is created. With
/// `--local`, the local cloud, started in this process when none runs
/// (inside a Tokio runtime, which then serves it until the returned
/// `EmbeddedCloud` is dropped).
pub async fn resolve(flags: &Flags, env: &Environment) -> Result<Resolved, ConfigError> {
    resolve_with(flags, env, false).await
}

/// The same, but with nothing configured the local cloud is used, started
/// in this process when none runs: `pithosfs mount`'s documented default.
pub async fn resolve_or_start_local(flags: &Flags, env: &Environment) -> Result<Resolved, ConfigError> {
    resolve_with(flags, env, true).await
}

async fn resolve_with(flags: &Flags, env: &Environment, start: bool) -> Result<Resolved, ConfigError> {
    if let Some(config) = resolve_configured(flags, env)? {
        return Ok(Resolved { config, embedded: None });
    }
    if flags.local || start {
        return start_local(env).await;
    }
    match local::running(env).await? {
        Running::Yes(config) => Ok(Resolved { config, embedded: None }),
        other => Err(not_configured(env, other)),
    }
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

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RC: &str = r#"
[global]
default_cloud = okeanos

[cloud "default"]
url = http://127.0.0.1:8080/identity/v2.0
token = local-token

[cloud "okeanos"]
url = https://accounts.okeanos.grnet.gr/identity/v2.0
token = okeanos-token
cyclades_url = https://cyclades.okeanos.grnet.gr/compute/v2.0
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
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
        // The kamaki config file's default cloud, with its endpoint override.
        let c = resolve_configured(&Flags::default(), &base(&[])).unwrap().unwrap();
        assert_eq!(c.token.expose(), "okeanos-token");
        assert!(matches!(c.source, Source::KamakiConfig { ref cloud, .. } if cloud == "okeanos"));
        assert_eq!(c.endpoints["compute"], "https://cyclades.okeanos.grnet.gr/compute/v2.0");
        // The environment wins over it.
        let env = base(&[(ENV_URL, "http://e/identity/v2.0".into()), (ENV_TOKEN, "env-token".into())]);
        let c = resolve_configured(&Flags::default(), &env).unwrap().unwrap();
        assert_eq!(
            (c.identity_url.as_str(), c.token.expose(), &c.source),
            ("http://e/identity/v2.0", "env-token", &Source::Environment)
        );
        assert!(c.endpoints.is_empty());
        // Flags win over the environment.
        let flags =
            Flags { url: Some("http://f/identity/v2.0".into()), token_file: Some(tok.clone()), ..Flags::default() };
        let c = resolve_configured(&flags, &env).unwrap().unwrap();
        assert_eq!(
            (c.identity_url.as_str(), c.token.expose(), &c.source),
            ("http://f/identity/v2.0", "file-token", &Source::Flags)
        );
        // --cloud picks a cloud of the file.
        let flags = Flags { cloud: Some("default".into()), ..Flags::default() };
        assert_eq!(resolve_configured(&flags, &env).unwrap().unwrap().token.expose(), "local-token");
        let flags = Flags { cloud: Some("missing".into()), ..Flags::default() };
        let e = resolve_configured(&flags, &env).unwrap_err().0;
        assert!(e.contains("[cloud \"missing\"]") && e.contains("default, okeanos"), "{e}");
        // A URL alone takes the token kept for that URL, and only that.
        let flags = Flags { url: Some("http://127.0.0.1:8080/".into()), ..Flags::default() };
        assert_eq!(resolve_configured(&flags, &base(&[])).unwrap().unwrap().token.expose(), "local-token");
        let flags = Flags { url: Some("http://elsewhere/identity/v2.0".into()), ..Flags::default() };
        assert!(resolve_configured(&flags, &base(&[])).unwrap_err().0.contains("No token"));
        // A token alone goes nowhere.
        let env = base(&[(ENV_TOKEN_FILE, tok.display().to_string())]);
        assert!(resolve_configured(&Flags::default(), &env).unwrap_err().0.contains("no URL"));
        // --local goes with nothing else.
        let flags = Flags { local: true, cloud: Some("default".into()), ..Flags::default() };
        assert!(resolve_configured(&flags, &base(&[])).unwrap_err().0.contains("--local cannot"));
        assert!(resolve_configured(&Flags { local: true, ..Flags::default() }, &base(&[])).unwrap().is_none());
        // Nothing configured.
        let env = Environment::from_pairs([(ENV_KAMAKI_CONFIG, dir.path().join("none").display().to_string())]);
        assert!(resolve_configured(&Flags::default(), &env).unwrap().is_none());
    }

    #[test]
    fn a_kamakirc_that_names_what_it_lacks_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let env = |rc: &Path| Environment::from_pairs([(ENV_KAMAKI_CONFIG, rc.display().to_string())]);
        let rc =
            write(dir.path(), "rc", "[global]\ndefault_cloud = prod\n[cloud \"test\"]\nurl = http://t\ntoken = t\n");
        let e = resolve_configured(&Flags::default(), &env(&rc)).unwrap_err().0;
        assert!(e.contains("\"prod\"") && e.contains(&rc.display().to_string()) && e.contains("test"), "{e}");
        let rc = write(dir.path(), "rc2", "[cloud \"a\"]\ntoken = t\n");
        let e = resolve_configured(&Flags::default(), &env(&rc)).unwrap_err().0;
        assert!(e.contains("Cloud \"a\"") && e.contains("has no url") && !e.contains("token"), "{e}");
        let rc = write(dir.path(), "rc3", "[cloud \"a\"]\nurl = http://x\n");
        let e = resolve_configured(&Flags::default(), &env(&rc)).unwrap_err().0;
        assert!(e.contains("has no token"), "{e}");
        let rc = write(dir.path(), "rc4", "[cloud \"a\"]\n");
        let e = resolve_configured(&Flags::default(), &env(&rc)).unwrap_err().0;
        assert!(e.contains("has no url and no token"), "{e}");
        // kamaki's environment variable names the default when the file does not
        let rc =
            write(dir.path(), "rc5", "[cloud \"a\"]\nurl=http://a\ntoken=ta\n[cloud \"b\"]\nurl=http://b\ntoken=tb\n");
        assert!(resolve_configured(&Flags::default(), &env(&rc)).unwrap_err().0.contains("none is the default"));
        let with = Environment::from_pairs([
            (ENV_KAMAKI_CONFIG, rc.display().to_string()),
            (ENV_KAMAKI_DEFAULT_CLOUD, "b".into()),
        ]);
        assert_eq!(resolve_configured(&Flags::default(), &with).unwrap().unwrap().token.expose(), "tb");
    }

    #[tokio::test]
    async fn nothing_configured_is_an_error_that_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let env = Environment::from_pairs([
            (ENV_KAMAKI_CONFIG, dir.path().join("none").display().to_string()),
            (ENV_DATA, data.display().to_string()),
        ]);
        let e = resolve(&Flags::default(), &env).await.unwrap_err().0;
        for hint in ["--url", ENV_URL, "kamaki config set", "--local", "pithosfs serve"] {
            assert!(e.contains(hint), "{hint} not in {e}");
        }
        assert!(!data.exists());
        // a stale url file: said so
        std::fs::create_dir(&data).unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        write(&data, "url", &format!("http://{closed}\n"));
        write(&data, "token", "t\n");
        let e = resolve(&Flags::default(), &env).await.unwrap_err().0;
        assert!(e.contains("is not running") && e.contains(&closed.to_string()), "{e}");
        // a kamakirc without clouds configures nothing, and that is said too
        let rc = write(dir.path(), "rc", "[global]\ncolors = off\n");
        let env = Environment::from_pairs([
            (ENV_KAMAKI_CONFIG, rc.display().to_string()),
            (ENV_DATA, dir.path().join("other").display().to_string()),
        ]);
        let e = resolve(&Flags::default(), &env).await.unwrap_err().0;
        assert!(e.contains("No cloud is configured") && e.contains("it has no [cloud"), "{e}");
    }

    #[test]
    fn a_url_takes_its_clouds_token_whatever_the_other_sections_hold() {
        let dir = tempfile::tempdir().unwrap();
        let rc = write(
            dir.path(),
            "rc",
            "[cloud \"broken\"]\nurl = http://b/identity/v2.0\ntoken = b\npithos_url = nonsense\n\
             [cloud \"fine\"]\nurl = http://f/identity/v2.0\ntoken = f\n",
        );
        let env = Environment::from_pairs([(ENV_KAMAKI_CONFIG, rc.display().to_string())]);
        let flags = Flags { url: Some("http://f/identity/v2.0".into()), ..Flags::default() };
        assert_eq!(resolve_configured(&flags, &env).unwrap().unwrap().token.expose(), "f");
        let flags = Flags { url: Some("http://b/identity/v2.0".into()), ..Flags::default() };
        assert!(resolve_configured(&flags, &env).unwrap_err().0.contains("pithos_url of [cloud \"broken\"]"));
    }

    #[test]
    fn tokens_stay_secret() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty", "\n");
        assert!(read_token_file(&empty).unwrap_err().0.contains("empty"));
        let c = CloudConfig::new("http://x/identity/v2.0".into(), Token::new("very-secret"), Source::Flags);
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(!c.describe().join("\n").contains("very-secret"));
    }
}
