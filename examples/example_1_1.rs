//! Example 1.1 of kamaki's "Creating applications with kamaki API":
//! instantiate Cyclades and Pithos+ clients, the Pithos+ account being the
//! user's UUID from Astakos (`astakos.term('uuid')`). It prints nothing, as
//! the original does.
//!
//! Environment:
//! - `ASTAKOS_URL`: the Astakos identity URL (`…/identity/v2.0`), required;
//! - `PITHOSFS_TOKEN`, or `PITHOSFS_TOKEN_FILE` (a file holding it): the token;
//! - `CYCLADES_URL`, `PITHOS_URL`: the compute and object-store URLs
//!   (default: the Astakos catalog's);
//! - `CONTAINER`: the Pithos+ container (default `pithos`).
//!
//! ```text
//! ASTAKOS_URL=http://127.0.0.1:8080/identity/v2.0 PITHOSFS_TOKEN_FILE=~/.local/share/pithosfs/token \
//!     cargo run --release --example example_1_1
//! ```

use pithosfs::clients::pithos::PithosClient;
use pithosfs::clients::{AstakosClient, ClientError, CycladesClient};

fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn token() -> Result<String, ClientError> {
    if let Some(t) = setting("PITHOSFS_TOKEN") {
        return Ok(t.trim().to_string());
    }
    let file = setting("PITHOSFS_TOKEN_FILE")
        .ok_or_else(|| ClientError::new("Set PITHOSFS_TOKEN or PITHOSFS_TOKEN_FILE to the token"))?;
    pithosfs::config::read_token_file(file.as_ref()).map(|t| t.expose().to_string()).map_err(|e| ClientError::new(e.0))
}

/// A service URL from the environment, else from the Astakos catalog.
async fn url(var: &str, service_type: &str, astakos: &AstakosClient) -> Result<String, ClientError> {
    match setting(var) {
        Some(u) => Ok(u),
        None => astakos.get_endpoint_url(service_type).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let astakos_base_url = setting("ASTAKOS_URL").ok_or_else(|| ClientError::new("Set ASTAKOS_URL"))?;
    let token = token()?;
    let container = setting("CONTAINER").unwrap_or_else(|| "pithos".into());

    let astakos = AstakosClient::new(&astakos_base_url, &token)?;
    let account = astakos.term("uuid").await?;

    let cyclades_url = url("CYCLADES_URL", "compute", &astakos).await?;
    let pithos_url = url("PITHOS_URL", "object-store", &astakos).await?;
    let _my_cyclades_client = CycladesClient::new(&cyclades_url, &token)?;
    let _my_pithos_client = PithosClient::new(&pithos_url, &token, &account, &container)?;
    Ok(())
}
