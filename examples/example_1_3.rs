//! Example 1.3 of kamaki's "Creating applications with kamaki API":
//! examples 1.1 and 1.2 with kamaki's error handling. A `ClientError` is
//! printed as
//!
//! ```text
//! Error: <message>
//! - error code: <status>
//! - <detail>
//! ```
//!
//! (the code line when there is a status, one line per detail), and the exit
//! code is then 1.
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
//!     SERVER_ID=1 CONTAINER=mycont cargo run --release --example example_1_3
//! ```

use pithosfs::clients::pithos::PithosClient;
use pithosfs::clients::storage::{ListOptions, Listed, ObjectStorage};
use pithosfs::clients::{server_os, AstakosClient, ClientError, CycladesClient};
use std::process::ExitCode;

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

/// kamaki's `except ClientError as e:` block.
fn print_error(e: &ClientError) {
    println!("Error: {e}");
    if e.status != 0 {
        println!("- error code: {}", e.status);
    }
    for detail in &e.details {
        println!("- {detail}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (astakos_base_url, server_id) = match (setting("ASTAKOS_URL"), setting("SERVER_ID")) {
        (Some(a), Some(s)) => (a, s),
        _ => {
            println!("Set ASTAKOS_URL and SERVER_ID");
            return ExitCode::from(2);
        }
    };
    let mycont = setting("CONTAINER").unwrap_or_else(|| "pithos".into());
    let token = match token() {
        Ok(t) => t,
        Err(e) => {
            print_error(&e);
            return ExitCode::FAILURE;
        }
    };

    // The account, as the note of example 1.1 gets it, and the service URLs.
    let setup = async {
        let astakos = AstakosClient::new(&astakos_base_url, &token)?;
        let account = astakos.term("uuid").await?;
        let cyclades_url = url("CYCLADES_URL", "compute", &astakos).await?;
        let pithos_url = url("PITHOS_URL", "object-store", &astakos).await?;
        Ok::<_, ClientError>((account, cyclades_url, pithos_url))
    };
    let (account, cyclades_url, pithos_url) = match setup.await {
        Ok(found) => found,
        Err(e) => {
            print_error(&e);
            return ExitCode::FAILURE;
        }
    };

    let my_cyclades_client = match CycladesClient::new(&cyclades_url, &token) {
        Ok(c) => c,
        Err(_) => {
            println!("Failed to initialize Cyclades client");
            return ExitCode::FAILURE;
        }
    };
    let my_pithos_client = match PithosClient::new(&pithos_url, &token, &account, &mycont) {
        Ok(c) => c,
        Err(_) => {
            println!("Failed to initialize Pithos+ client");
            return ExitCode::FAILURE;
        }
    };

    let result = async {
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
        Ok::<_, ClientError>(())
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e);
            ExitCode::FAILURE
        }
    }
}
