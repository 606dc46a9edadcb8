//! Examples 1.1 + 1.2 of kamaki's "Creating applications with kamaki API":
//! with the clients of example 1.1, print a server's name and OS, then the
//! objects of a container with their sizes:
//!
//! ```text
//! Server Name: A Debian Server (with OS Debian Base)
//!  lala.txt of 34 bytes
//!  test.txt of 1232 bytes
//!  testDir/ of 0 bytes
//! ```
//!
//! Environment:
//! - `ASTAKOS_URL`: the Astakos identity URL (`…/identity/v2.0`), required;
//! - `PITHOSFS_TOKEN`, or `PITHOSFS_TOKEN_FILE` (a file holding it): the token;
//! - `SERVER_ID`: the server to describe, required;
//! - `CYCLADES_URL`, `PITHOS_URL`: the compute and object-store URLs
//!   (default: the Astakos catalog's);
//! - `CONTAINER`: the Pithos+ container to list (default `pithos`).
//!
//! ```text
//! ASTAKOS_URL=http://127.0.0.1:8080/identity/v2.0 PITHOSFS_TOKEN_FILE=~/.local/share/pithosfs/token \
//!     SERVER_ID=1 CONTAINER=mycont cargo run --release --example example_1_2
//! ```

use pithosfs::clients::pithos::PithosClient;
use pithosfs::clients::storage::{ListOptions, Listed, ObjectStorage};
use pithosfs::clients::{server_os, AstakosClient, ClientError, CycladesClient};

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
    let server_id = setting("SERVER_ID").ok_or_else(|| ClientError::new("Set SERVER_ID"))?;
    let mycont = setting("CONTAINER").unwrap_or_else(|| "pithos".into());

    // Example 1.1
    let astakos = AstakosClient::new(&astakos_base_url, &token)?;
    let account = astakos.term("uuid").await?;
    let cyclades_url = url("CYCLADES_URL", "compute", &astakos).await?;
    let pithos_url = url("PITHOS_URL", "object-store", &astakos).await?;
    let my_cyclades_client = CycladesClient::new(&cyclades_url, &token)?;
    let my_pithos_client = PithosClient::new(&pithos_url, &token, &account, &mycont)?;

    // Example 1.2
    let srv = my_cyclades_client.get_server_info(&server_id).await?;
    let name = srv["name"].as_str().unwrap_or_default();
    // Python prints a missing OS as None.
    println!("Server Name: {name} (with OS {})", server_os(&srv).unwrap_or_else(|| "None".into()));
    let obj_list = my_pithos_client.list_objects(&ListOptions::default()).await?;
    for obj in obj_list {
        match obj {
            Listed::Object(o) => println!(" {} of {} bytes", o.name, o.bytes),
            Listed::Subdir(name) => println!(" {name} of 0 bytes"),
        }
    }
    Ok(())
}
