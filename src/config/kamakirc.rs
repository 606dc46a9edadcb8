//! The kamaki config file (`$KAMAKI_CONFIG`, else `~/.kamakirc`), as far as
//! clouds go.
//!
//! kamaki writes it with Python's ConfigParser: a `[global]` section (with
//! `default_cloud`) and one `[cloud "NAME"]` section per cloud, holding `url`
//! (the Astakos identity URL), `token`, and optionally per-service settings
//! `<service>_url|_token|_type|_version`, where the service is kamaki's name
//! for it (`pithos`, `cyclades`, `plankton`, `astakos`, `network`,
//! `volume`). The file is read with the `configparser` crate; this module
//! adds kamaki's meaning.

use super::{err, ConfigError};
use crate::clients::http::Token;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which catalog service type a `<key>_url` of a cloud section replaces:
/// kamaki's service names first, then the catalog's own type names (so
/// `compute_url` works as well as kamaki's `cyclades_url`).
const URL_KEYS: [(&str, &str); 11] = [
    ("pithos", "object-store"),
    ("cyclades", "compute"),
    ("plankton", "image"),
    ("network", "network"),
    ("volume", "volume"),
    ("object-store", "object-store"),
    ("object_store", "object-store"),
    ("compute", "compute"),
    ("image", "image"),
    ("account", "account"),
    ("blockstorage", "volume"),
];

/// kamaki's per-service settings that pithosfs does not follow (each would
/// send requests elsewhere, or with another token, than the user expects
/// from reading the file): said out loud instead of silently dropped.
const UNFOLLOWED: [&str; 4] = ["_token", "_type", "_version", "astakos_url"];

/// The kamaki config file, parsed.
#[derive(Debug, Clone, Default)]
pub struct KamakiConfig {
    pub path: PathBuf,
    /// section → key (lower-cased, as ConfigParser does) → value.
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

/// One `[cloud "NAME"]` section.
#[derive(Debug, Clone)]
pub struct KamakiCloud {
    pub name: String,
    pub url: Option<String>,
    /// The first of the whitespace-separated tokens (kamaki accepts several
    /// and authenticates with the first).
    pub token: Option<Token>,
    /// Catalog service type (`compute`, `object-store`…) → URL to use
    /// instead of the catalog's (from `cyclades_url`, `pithos_url`…).
    pub endpoints: BTreeMap<String, String>,
    /// Keys of the section that pithosfs does not follow (`pithos_token`…).
    pub unfollowed: Vec<String>,
}

impl KamakiConfig {
    /// ConfigParser text. Section names keep their case, keys are
    /// lower-cased; `#` and `;` start comment lines, and `;` after
    /// whitespace starts a comment inside a value (Python 2's ConfigParser,
    /// which kamaki 0.16 uses).
    pub fn parse(path: &Path, text: &str) -> Result<KamakiConfig, ConfigError> {
        let mut ini = configparser::ini::Ini::new_cs();
        // Whole values: a token or URL may hold `#` or `;`.
        let mut defaults = ini.defaults();
        defaults.enable_inline_comments = false;
        ini.load_defaults(defaults);
        let map = ini
            .read(text.to_string())
            .map_err(|e| ConfigError(format!("Cannot read the kamaki config file {}: {e}", path.display())))?;
        let sections = map
            .into_iter()
            .map(|(section, entries)| {
                let entries = entries
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), strip_inline_comment(v.as_deref().unwrap_or(""))))
                    .collect();
                (section, entries)
            })
            .collect();
        Ok(KamakiConfig { path: path.to_path_buf(), sections })
    }

    /// Reads the file; None when there is none.
    pub fn load(path: &Path) -> Result<Option<KamakiConfig>, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => KamakiConfig::parse(path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => err(format!("Cannot read the kamaki config file {}: {e}", path.display())),
        }
    }

    fn value(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The names of the `[cloud "NAME"]` sections, sorted.
    pub fn clouds(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sections.keys().filter_map(|s| cloud_name(s)).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The clouds, for messages: `a, b` or `none`.
    pub fn clouds_text(&self) -> String {
        let names = self.clouds();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// The cloud to use when none is named, as kamaki picks it:
    /// `[global] default_cloud`, else `$KAMAKI_DEFAULT_CLOUD` (given as
    /// `env_default`), else the only cloud. None when the file has no cloud;
    /// an error when it has several and none is the default.
    pub fn default_cloud(&self, env_default: Option<&str>) -> Result<Option<String>, ConfigError> {
        if let Some(name) = self.global_default().or(env_default) {
            return Ok(Some(name.to_string()));
        }
        match self.clouds().as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(only.clone())),
            _ => err(format!(
                "{} has several clouds ({}) and none is the default: set `default_cloud = NAME` in its [global] \
                 section (kamaki config set default_cloud NAME) or pass --cloud NAME",
                self.path.display(),
                self.clouds_text()
            )),
        }
    }

    /// The `url` and whether there is a `token` of cloud `name`, unchecked.
    pub fn cloud_url(&self, name: &str) -> Option<(&str, bool)> {
        let (section, _) = self.sections.iter().find(|(s, _)| cloud_name(s).as_deref() == Some(name))?;
        Some((self.value(section, "url")?, self.value(section, "token").is_some()))
    }

    /// `[global] default_cloud`, when set.
    pub fn global_default(&self) -> Option<&str> {
        self.value("global", "default_cloud")
    }

    /// The section of cloud `name`, if there is one.
    pub fn cloud(&self, name: &str) -> Result<Option<KamakiCloud>, ConfigError> {
        let Some((_, entries)) = self.sections.iter().find(|(s, _)| cloud_name(s).as_deref() == Some(name)) else {
            return Ok(None);
        };
        let non_empty = |k: &str| entries.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let mut endpoints = BTreeMap::new();
        for (service, kind) in URL_KEYS {
            let key = format!("{service}_url");
            let Some(url) = non_empty(&key) else { continue };
            let url = endpoint_url(url)
                .map_err(|why| ConfigError(format!("{key} of [cloud \"{name}\"] in {}: {why}", self.path.display())))?;
            if let Some(other) = endpoints.insert(kind.to_string(), url.clone()) {
                if other != url {
                    return err(format!(
                        "[cloud \"{name}\"] in {} gives two different URLs for the {kind} service ({key} and another \
                         key naming the same service)",
                        self.path.display()
                    ));
                }
            }
        }
        let unfollowed = entries
            .iter()
            .filter(|(k, v)| !v.is_empty() && UNFOLLOWED.iter().any(|u| k.ends_with(u)))
            .map(|(k, _)| k.clone())
            .collect();
        Ok(Some(KamakiCloud {
            name: name.to_string(),
            url: non_empty("url").map(str::to_string),
            token: non_empty("token").and_then(|t| t.split_whitespace().next()).map(Token::new),
            endpoints,
            unfollowed,
        }))
    }
}

/// `…  ; comment` → `…`: Python 2's ConfigParser drops a `;` comment that
/// follows whitespace in a value.
fn strip_inline_comment(v: &str) -> String {
    let cut = v.char_indices().find(|&(i, c)| c == ';' && v[..i].ends_with(char::is_whitespace)).map(|(i, _)| i);
    cut.map_or(v, |i| &v[..i]).trim().to_string()
}

/// A service URL of the file, checked: http(s), no trailing `/`.
fn endpoint_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(url.to_string()),
        Ok(_) => Err(format!("{url:?} is not an http(s) URL")),
        Err(e) => Err(format!("{url:?} is not a URL ({e})")),
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
  URL: https://accounts.okeanos.grnet.gr/identity/v2.0
  ; comment
  token = okeanos-token second-token
  cyclades_url = https://cyclades.okeanos.grnet.gr/compute/v2.0/   ; kamaki's own
  pithos_url = https://pithos.okeanos.grnet.gr/object-store/v1#frag;x
  pithos_token = other
  pithos_container = mine

[cloud "Mixed Case"]
url = http://m/identity/v2.0
token = m
"#;

    fn parse(text: &str) -> KamakiConfig {
        KamakiConfig::parse(Path::new("rc"), text).unwrap()
    }

    #[test]
    fn kamakirc_parses() {
        let kc = parse(RC);
        assert_eq!(kc.clouds(), vec!["Mixed Case", "default", "okeanos"]);
        assert_eq!(kc.default_cloud(None).unwrap().as_deref(), Some("okeanos"));
        let c = kc.cloud("okeanos").unwrap().unwrap();
        assert_eq!(c.url.as_deref(), Some("https://accounts.okeanos.grnet.gr/identity/v2.0"));
        assert_eq!(c.token.unwrap().expose(), "okeanos-token");
        assert_eq!(c.endpoints["compute"], "https://cyclades.okeanos.grnet.gr/compute/v2.0");
        assert_eq!(c.endpoints["object-store"], "https://pithos.okeanos.grnet.gr/object-store/v1#frag;x");
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.unfollowed, vec!["pithos_token"]);
        assert!(kc.cloud("nope").unwrap().is_none());
        assert!(kc.cloud("mixed case").unwrap().is_none());
        assert_eq!(kc.cloud("Mixed Case").unwrap().unwrap().token.unwrap().expose(), "m");
        assert_eq!(cloud_name("cloudy \"x\""), None);
    }

    #[test]
    fn the_default_cloud_is_chosen_as_kamaki_does() {
        let single = parse("[cloud 'x']\nurl=http://a/identity/v2.0\n");
        assert_eq!(single.default_cloud(None).unwrap().as_deref(), Some("x"));
        assert_eq!(parse("").default_cloud(None).unwrap(), None);
        assert_eq!(parse("").default_cloud(Some("env")).unwrap().as_deref(), Some("env"));
        let two = parse("[cloud \"a\"]\nurl=u\n[cloud \"b\"]\nurl=u\n");
        let e = two.default_cloud(None).unwrap_err().0;
        assert!(e.contains("several clouds (a, b)") && e.contains("default_cloud"), "{e}");
        assert_eq!(two.default_cloud(Some("b")).unwrap().as_deref(), Some("b"));
    }

    #[test]
    fn bad_service_urls_are_refused() {
        let e = parse("[cloud \"a\"]\ncompute_url = ftp://x\n").cloud("a").unwrap_err().0;
        assert!(e.contains("compute_url of [cloud \"a\"] in rc") && e.contains("not an http(s) URL"), "{e}");
        let e = parse("[cloud \"a\"]\ncompute_url = http://x\ncyclades_url = http://y\n").cloud("a").unwrap_err().0;
        assert!(e.contains("two different URLs for the compute service"), "{e}");
        let same = parse("[cloud \"a\"]\ncompute_url = http://x/\ncyclades_url = http://x\n");
        assert_eq!(same.cloud("a").unwrap().unwrap().endpoints["compute"], "http://x");
    }

    #[test]
    fn broken_files_are_errors_naming_the_file() {
        let e = KamakiConfig::parse(Path::new("/home/u/.kamakirc"), "[global\n").unwrap_err().0;
        assert!(e.contains("/home/u/.kamakirc"), "{e}");
    }

    #[test]
    fn inline_comments_as_python_2() {
        assert_eq!(strip_inline_comment("abc ; x"), "abc");
        assert_eq!(strip_inline_comment("a;b"), "a;b");
        assert_eq!(strip_inline_comment("a#b # c"), "a#b # c");
    }
}
