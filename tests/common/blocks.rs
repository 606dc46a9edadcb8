//! Block-level requests for HTTP tests: the hashmap PUT and the block POST
//! as kamaki sends them, and the data to feed them.

use super::TestCloud;
use pithosfs::blocks::{self, Algorithm, BlockHash};
use serde_json::{json, Value};

/// `n` bytes of reproducible noise (a xorshift stream seeded by `seed`).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn hexes(hashes: &[BlockHash]) -> Vec<String> {
    hashes.iter().map(|h| h.to_hex()).collect()
}

/// The hashmap of `data` in blocks of `block_size`.
pub fn hashmap_of(data: &[u8], block_size: u64) -> Vec<BlockHash> {
    blocks::hashmap(Algorithm::Sha256, block_size, data)
}

/// A reply's body as JSON, or a panic that shows it.
pub async fn json_of(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A hashmap PUT: the status and, on 409, the blocks asked for.
pub async fn put_hashmap(
    tc: &TestCloud,
    token: &str,
    url: &str,
    size: usize,
    hashes: &[BlockHash],
) -> (u16, Vec<String>) {
    let body = json!({"bytes": size, "hashes": hexes(hashes)});
    let r = tc
        .http
        .put(format!("{url}?hashmap=True&format=json"))
        .header("X-Auth-Token", token)
        .header("Content-Type", "application/octet-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let missing = if status == 409 { serde_json::from_value(json_of(r).await).unwrap() } else { Vec::new() };
    (status, missing)
}

/// Uploads `data` block by block (the server's block size) into
/// `account/container`, as kamaki does.
pub async fn post_blocks(tc: &TestCloud, token: &str, account: &str, container: &str, data: &[u8]) {
    for block in data.chunks(tc.cloud.blocks.block_size as usize) {
        let r = tc
            .http
            .post(format!("{}/{account}/{container}?update&format=json", tc.pithos()))
            .header("X-Auth-Token", token)
            .header("Content-Type", "application/octet-stream")
            .body(block.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "block upload");
    }
}

/// A GET with `token`: the status and the body.
pub async fn get_bytes(tc: &TestCloud, token: &str, url: &str) -> (u16, Vec<u8>) {
    let r = tc.http.get(url).header("X-Auth-Token", token).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}
