//! A plain OpenStack object store (Swift), reached without Astakos: what
//! `pithosfs mount --storage-url|--swift-auth` talks to.

use super::{
    explicit_token, read_token_file, ConfigError, Environment, Flags, ENV_SWIFT_KEY, ENV_TOKEN, ENV_TOKEN_FILE,
};
use crate::clients::http::Token;
use std::path::PathBuf;

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
