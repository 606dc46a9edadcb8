//! Speed of the client library: hashmap upload and download of a file through
//! `PithosClient`, with the byte counters of the HTTP core. `scripts/bench-client`
//! runs it beside kamaki and curl against the same local cloud.
//!
//! ```text
//! PITHOSFS_URL=http://127.0.0.1:41235 PITHOSFS_TOKEN=... \
//!     target/release/examples/bench_client upload FILE NAME
//! ```
//! Prints `key=value` lines (MB = 10^6 bytes). The token is never printed.

use pithosfs::clients::astakos::AstakosClient;
use pithosfs::clients::pithos::{PithosClient, TransferOptions};
use pithosfs::clients::storage::PutOptions;
use std::time::Instant;

fn usage() -> ! {
    eprintln!("usage: bench_client upload FILE NAME | download NAME FILE   (env PITHOSFS_URL, PITHOSFS_TOKEN)");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        usage();
    }
    let (Ok(url), Ok(token)) = (std::env::var("PITHOSFS_URL"), std::env::var("PITHOSFS_TOKEN")) else { usage() };
    let result = run(&url, &token, &args).await;
    if let Err(e) = result {
        eprintln!("bench_client: {e}");
        std::process::exit(1);
    }
}

async fn run(url: &str, token: &str, args: &[String]) -> Result<(), pithosfs::clients::ClientError> {
    let account = AstakosClient::new(&format!("{url}/identity/v2.0"), token)?.term("uuid").await?;
    let parallel = std::env::var("BENCH_PARALLEL").ok().and_then(|p| p.parse().ok()).unwrap_or(8);
    let p =
        PithosClient::new(&format!("{url}/pithos/object-store/v1"), token, &account, "pithos")?.with_parallel(parallel);
    let started = Instant::now();
    let before = p.http().stats();
    let bytes = match args[0].as_str() {
        "upload" => {
            let size = std::fs::metadata(&args[1])?.len();
            p.upload_file(&args[2], std::path::Path::new(&args[1]), &PutOptions::default()).await?;
            size
        }
        "download" => {
            let hm = p.download_file(&args[1], std::path::Path::new(&args[2]), &TransferOptions::default()).await?;
            hm.bytes
        }
        _ => usage(),
    };
    let secs = started.elapsed().as_secs_f64();
    let d = p.http().stats() - before;
    println!("bytes={bytes}");
    println!("seconds={secs:.3}");
    println!("mbps={:.1}", bytes as f64 / secs / 1e6);
    println!("requests={}", d.requests);
    println!("bytes_up={}", d.bytes_up);
    println!("bytes_down={}", d.bytes_down);
    Ok(())
}
