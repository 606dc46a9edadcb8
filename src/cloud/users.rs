//! The local cloud's users: display name, UUID and token. Tokens are kept as
//! SHA-256 digests in the database; the plain token lives only in the files
//! handed to the user (mode 0600) and in the user's own configuration.

use super::db::Db;
use super::fault::Fault;
use crate::cloud::sql::{params, OptionalExt};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uuid: String,
    pub name: String,
}

/// A user asked for on the command line or in a users file. Without a token,
/// one is generated on first start and written to `<data>/tokens/<name>`.
#[derive(Debug, Clone)]
pub struct UserSpec {
    pub name: String,
    pub token: Option<String>,
}

/// Parses a users file: one user per line, `NAME TOKEN` or `NAME:TOKEN`
/// (`#` starts a comment). Tokens are never echoed in errors.
pub fn parse_users_file(path: &Path) -> Result<Vec<UserSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read users file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, token) = line
            .split_once(|c: char| c == ':' || c.is_whitespace())
            .map(|(n, t)| (n.trim(), t.trim()))
            .ok_or_else(|| format!("{}:{}: expected NAME TOKEN", path.display(), i + 1))?;
        validate_name(name).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        let at = format!("{}:{}", path.display(), i + 1);
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{at}: the token of {name} holds spaces or control characters"));
        }
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "{at}: the token of {name} is too short to be safe: tokens need at least {MIN_TOKEN_CHARS} characters"
            ));
        }
        out.push(UserSpec { name: name.to_string(), token: Some(token.to_string()) });
    }
    Ok(out)
}

/// Shortest token a users file may give (generated ones have 40 characters).
pub const MIN_TOKEN_CHARS: usize = 16;

/// A user name is also the name of its token file, `DIR/tokens/NAME`: it may
/// not leave that directory (no `/`, `\`, NUL, `.` or `..`) nor hide there.
pub fn validate_name(name: &str) -> Result<(), String> {
    let bad_char = |c: char| c.is_control() || c.is_whitespace() || matches!(c, ':' | '/' | '\\');
    if name.is_empty() || name.len() > 128 || name.starts_with('.') || name.chars().any(bad_char) {
        return Err(format!(
            "bad user name {name:?}: 1 to 128 characters, not starting with '.', without spaces, control \
             characters, ':', '/' or '\\'"
        ));
    }
    Ok(())
}

pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn new_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// Writes a secret file readable by its owner only (in a directory only its
/// owner may enter, when this creates it).
pub fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Everyone who may call the local cloud, looked up by token digest or UUID.
#[derive(Default)]
pub struct Users {
    by_token: HashMap<String, Arc<User>>,
    by_uuid: HashMap<String, Arc<User>>,
    by_name: HashMap<String, Arc<User>>,
}

/// What `ensure_users` created that the operator must be told about.
#[derive(Debug, Default)]
pub struct NewUsers {
    /// (name, token file, token) of users whose token was generated now.
    pub generated: Vec<(String, PathBuf, String)>,
}

impl Users {
    pub fn by_token(&self, token: &str) -> Option<Arc<User>> {
        self.by_token.get(&token_digest(token)).cloned()
    }
    pub fn by_uuid(&self, uuid: &str) -> Option<Arc<User>> {
        self.by_uuid.get(uuid).cloned()
    }
    pub fn by_name(&self, name: &str) -> Option<Arc<User>> {
        self.by_name.get(name).cloned()
    }
    pub fn all(&self) -> impl Iterator<Item = &Arc<User>> {
        self.by_uuid.values()
    }

    /// Creates or updates the users asked for (a default one if none exist at
    /// all), then loads everyone.
    pub fn ensure(db: &Db, data_dir: &Path, specs: &[UserSpec]) -> Result<(Users, NewUsers), Fault> {
        for spec in specs {
            validate_name(&spec.name).map_err(Fault::bad_request)?;
        }
        let mut news = NewUsers::default();
        let default_name = std::env::var("USER").ok().filter(|n| validate_name(n).is_ok()).unwrap_or("user".into());
        let (specs, data_dir) = (specs.to_vec(), data_dir.to_path_buf());
        news.generated = db.write_blocking(move |tx| {
            let mut generated = Vec::new();
            let count: i64 = tx.query_row("SELECT COUNT(*) FROM users", params![], |r| r.get(0))?;
            let mut wanted: Vec<(UserSpec, PathBuf)> =
                specs.iter().map(|s| (s.clone(), data_dir.join("tokens").join(&s.name))).collect();
            if specs.is_empty() && count == 0 {
                wanted.push((UserSpec { name: default_name.clone(), token: None }, data_dir.join("token")));
            }
            for (spec, token_file) in wanted {
                let existing: Option<(String, String)> = tx
                    .query_row("SELECT uuid, token_sha256 FROM users WHERE name = ?1", params![&spec.name], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                match (existing, spec.token) {
                    (Some((_, digest)), Some(token)) if digest != token_digest(&token) => {
                        tx.execute(
                            "UPDATE users SET token_sha256 = ?1 WHERE name = ?2",
                            params![token_digest(&token), &spec.name],
                        )?;
                    }
                    (Some(_), _) => {}
                    (None, token) => {
                        let token = match token {
                            Some(t) => t,
                            None => {
                                let t = new_token();
                                write_secret(&token_file, &t)?;
                                generated.push((spec.name.clone(), token_file.clone(), t.clone()));
                                t
                            }
                        };
                        tx.execute(
                            "INSERT INTO users (uuid, name, token_sha256, created) VALUES (?1, ?2, ?3, ?4)",
                            params![
                                uuid::Uuid::new_v4().to_string(),
                                &spec.name,
                                token_digest(&token),
                                super::wire::now()
                            ],
                        )?;
                    }
                }
            }
            Ok(generated)
        })?;
        let users = db.read_blocking(|conn| {
            let mut stmt = conn.prepare("SELECT uuid, name, token_sha256 FROM users")?;
            let rows =
                stmt.query_map(params![], |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)))?;
            let mut users = Users::default();
            for row in rows {
                let (uuid, name, digest) = row?;
                let u = Arc::new(User { uuid: uuid.clone(), name: name.clone() });
                users.by_token.insert(digest, u.clone());
                users.by_uuid.insert(uuid, u.clone());
                users.by_name.insert(name, u);
            }
            Ok(users)
        })?;
        Ok((users, news))
    }
}

/// The token of a user as the local cloud handed it out (`<data>/token` for the
/// default user, `<data>/tokens/<name>` for the others).
pub fn read_token_file(data_dir: &Path, name: Option<&str>) -> Option<String> {
    let path = match name {
        Some(n) => data_dir.join("tokens").join(n),
        None => data_dir.join("token"),
    };
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `Fault` is also what an unreadable token file becomes during start-up.
impl From<Fault> for std::io::Error {
    fn from(f: Fault) -> std::io::Error {
        std::io::Error::other(f.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_parses_and_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users");
        std::fs::write(&p, "# comment\nalice secret-token-alice\nbob:secret-token-bob-1\n\n").unwrap();
        let specs = parse_users_file(&p).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].name, "bob");
        std::fs::write(&p, "carol short-token\n").unwrap();
        let err = parse_users_file(&p).unwrap_err();
        assert!(err.contains("at least 16"), "{err}");
        assert!(!err.contains("short-token"));
    }
}
