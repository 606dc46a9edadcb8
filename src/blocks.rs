//! The Pithos+ block model, shared by the local cloud and the clients.
//!
//! An object is cut into fixed-size blocks; a block's hash is the digest of the
//! block with its trailing zero bytes removed (so a short last block and the same
//! block padded with zeros share one hash, and an all-zero block hashes like the
//! empty string). The ordered list of block hashes is the object's *hashmap*; its
//! Merkle top hash is the object's `X-Object-Hash` and default ETag. On the
//! wire a hashmap is JSON: [`HashmapJson`].

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

mod hashmap_json;

pub use hashmap_json::{hash_list_json, parse_hash_list, HashmapForm, HashmapJson, HashmapJsonError};

/// 4 MiB, the block size of every Synnefo deployment we know of.
pub const DEFAULT_BLOCK_SIZE: u64 = 4 * 1024 * 1024;

/// The most blocks one object may have: 1 TiB at 4 MiB blocks. The local
/// cloud takes at most this many hashes in one hashmap PUT, and the mount
/// refuses to grow a file past it (EFBIG), so no object needs more than a
/// 16 MiB hashmap in memory or on the wire.
pub const MAX_BLOCKS_PER_OBJECT: u64 = 262_144;

/// The longest hashmap JSON (either form) or list of hashes worth reading:
/// [`MAX_BLOCKS_PER_OBJECT`] quoted hashes with separators (kamaki writes
/// `", "`: 72 bytes a hash), and room for the rest.
pub const MAX_HASHMAP_JSON: u64 = MAX_BLOCKS_PER_OBJECT * 72 + (64 << 10);

/// The smallest block size a client takes from a server (4 KiB): smaller
/// blocks multiply hashes, requests and cache entries for the same data.
pub const MIN_BLOCK_SIZE: u64 = 4 << 10;

/// The largest block size a client takes from a server (64 MiB): a block is
/// held whole in memory while it is read, checked or written.
pub const MAX_BLOCK_SIZE: u64 = 64 << 20;

/// Whether a block size a server announced is one a client can work with.
pub fn check_block_size(block_size: u64) -> Result<(), String> {
    if (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        Ok(())
    } else {
        Err(format!("block size {block_size} is outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE} bytes"))
    }
}

/// The block hash algorithm, named as Pithos reports it in `X-Container-Block-Hash`.
///
/// Pithos names a hashlib algorithm there; sha256 is the only one deployments
/// use, so it is the only one we accept. Anything else is refused by name rather
/// than silently hashed differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha256" => Ok(Algorithm::Sha256),
            other => Err(format!("unsupported block hash algorithm {other:?}")),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A 32-byte block (or Merkle) digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockHash(pub [u8; 32]);

impl BlockHash {
    pub const LEN: usize = 32;

    /// The hash of the empty block (and of any all-zero block): sha256 of
    /// nothing, written out (the read path asks for it on every block).
    pub const fn empty() -> BlockHash {
        BlockHash([
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae,
            0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
        ])
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<BlockHash, String> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(format!("block hash must be 64 hex digits, got {} characters", s.len()));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| format!("block hash {s:?} is not hexadecimal"))?;
        Ok(BlockHash(out))
    }

    /// Parses a slice of exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<BlockHash> {
        <[u8; 32]>::try_from(b).ok().map(BlockHash)
    }
}

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({})", self.to_hex())
    }
}

/// Removes trailing zero bytes: what a block hash is computed over, and what the
/// local cloud keeps on disk.
pub fn strip_trailing_zeros(block: &[u8]) -> &[u8] {
    let end = block.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &block[..end]
}

/// Hash of one block, trailing zeros ignored.
pub fn hash_block(algorithm: Algorithm, block: &[u8]) -> BlockHash {
    match algorithm {
        Algorithm::Sha256 => BlockHash(Sha256::digest(strip_trailing_zeros(block)).into()),
    }
}

/// Number of blocks of an object of `size` bytes (0 for an empty object, whose
/// stored hashmap nevertheless holds the single empty-block hash).
pub fn block_count(size: u64, block_size: u64) -> u64 {
    size.div_ceil(block_size)
}

/// Cuts data into blocks of `block_size` bytes; the last may be shorter.
pub fn split(data: &[u8], block_size: u64) -> impl Iterator<Item = &[u8]> {
    data.chunks(block_size.max(1) as usize)
}

/// The hashmap of `data` as Pithos stores it: one hash per block, and the empty
/// hash alone for an empty object.
pub fn hashmap(algorithm: Algorithm, block_size: u64, data: &[u8]) -> Vec<BlockHash> {
    if data.is_empty() {
        return vec![BlockHash::empty()];
    }
    split(data, block_size).map(|b| hash_block(algorithm, b)).collect()
}

/// Merkle top hash over the raw digests: one hash is its own top; more are
/// padded with zero digests to a power of two and hashed pairwise.
pub fn merkle(algorithm: Algorithm, hashes: &[BlockHash]) -> BlockHash {
    match hashes.len() {
        0 => return BlockHash::empty(),
        1 => return hashes[0],
        _ => {}
    }
    let Algorithm::Sha256 = algorithm;
    let width = hashes.len().next_power_of_two();
    let mut level: Vec<[u8; 32]> = hashes.iter().map(|h| h.0).collect();
    level.resize(width, [0u8; 32]);
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let mut h = Sha256::new();
                h.update(pair[0]);
                h.update(pair[1]);
                h.finalize().into()
            })
            .collect();
    }
    BlockHash(level[0])
}

/// Checks the Pithos consistency rule between a size and a hashmap length.
pub fn check_hashmap_len(size: u64, hashes: usize, block_size: u64) -> Result<(), String> {
    if size == 0 {
        if hashes <= 1 {
            return Ok(());
        }
        return Err(format!("an empty object has at most one hash, got {hashes}"));
    }
    let want = block_count(size, block_size);
    if hashes as u64 != want {
        return Err(format!("{size} bytes need {want} block hashes, got {hashes}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Algorithm = Algorithm::Sha256;

    fn hx(h: BlockHash) -> String {
        h.to_hex()
    }

    #[test]
    fn the_empty_hash_is_sha256_of_nothing() {
        assert_eq!(BlockHash::empty(), BlockHash(Sha256::digest(b"").into()));
        assert_eq!(hash_block(A, &[0; 4096]), BlockHash::empty());
    }

    #[test]
    fn empty_object() {
        let hm = hashmap(A, DEFAULT_BLOCK_SIZE, b"");
        assert_eq!(hm.len(), 1);
        let e = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(hx(hm[0]), e);
        assert_eq!(hx(merkle(A, &hm)), e);
        assert_eq!(hx(merkle(A, &[])), e);
    }

    #[test]
    fn hello() {
        let hm = hashmap(A, DEFAULT_BLOCK_SIZE, b"hello");
        let h = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(hm.iter().map(|h| h.to_hex()).collect::<Vec<_>>(), vec![h]);
        assert_eq!(hx(merkle(A, &hm)), h);
    }

    #[test]
    fn toy_block_size_example() {
        let hm = hashmap(A, 4, b"abcdefghij");
        let hexes: Vec<String> = hm.iter().map(|h| h.to_hex()).collect();
        assert_eq!(
            hexes,
            vec![
                "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589",
                "e5e088a0b66163a0a26a5e053d2a4496dc16ab6e0e3dd1adf2d16aa84a078c9d",
                "c9df9c3f2963b19b9b95f58c4d33b053fa9f8586dd6ee04126e52a868f882108",
            ]
        );
        assert_eq!(hx(merkle(A, &hm)), "18374008371944fcd365918bfd1187d4edcaaad1ce8dc23e746347129b1f22d1");
        assert_eq!(hx(merkle(A, &hm[..2])), "7d5473712172f9ec1494baa03da3d8734d12d385d1ca6340856771c3d93382e6");
    }

    #[test]
    fn real_block_size_two_blocks() {
        let mut data = vec![b'x'; DEFAULT_BLOCK_SIZE as usize];
        data.extend_from_slice(b"hello");
        let hm = hashmap(A, DEFAULT_BLOCK_SIZE, &data);
        assert_eq!(hx(hm[0]), "baa7a6d36ffa957552df230235c2d51d735f28d49c58a5f3438a3a973a25a37d");
        assert_eq!(hx(hm[1]), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(hx(merkle(A, &hm)), "781f43c5ceede7e826a159a2728d72b68cd70e3688ec59cbeebf89719c13ccbd");
    }

    #[test]
    fn trailing_zeros_ignored() {
        assert_eq!(hx(hash_block(A, b"ab\0\0")), "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603");
        assert_eq!(hash_block(A, &[0u8; 4096]), BlockHash::empty());
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = hash_block(A, b"abc");
        assert_eq!(BlockHash::from_hex(&h.to_hex().to_uppercase()).unwrap(), h);
        assert!(BlockHash::from_hex("abc").is_err());
        assert!(BlockHash::from_hex(&"g".repeat(64)).is_err());
        assert!("md5".parse::<Algorithm>().is_err());
        assert_eq!("SHA256".parse::<Algorithm>().unwrap(), Algorithm::Sha256);
    }

    #[test]
    fn hashmap_length_rule() {
        assert!(check_hashmap_len(0, 0, 4).is_ok());
        assert!(check_hashmap_len(0, 1, 4).is_ok());
        assert!(check_hashmap_len(0, 2, 4).is_err());
        assert!(check_hashmap_len(8, 2, 4).is_ok());
        assert!(check_hashmap_len(9, 2, 4).is_err());
        assert!(check_hashmap_len(9, 3, 4).is_ok());
    }

    proptest! {
        #[test]
        fn blocks_reassemble(data in proptest::collection::vec(any::<u8>(), 0..200), bs in 1u64..17) {
            let parts: Vec<&[u8]> = split(&data, bs).collect();
            prop_assert_eq!(parts.len() as u64, block_count(data.len() as u64, bs));
            prop_assert!(parts.iter().rev().skip(1).all(|p| p.len() as u64 == bs));
            prop_assert_eq!(parts.concat(), data.clone());
            let hm = hashmap(A, bs, &data);
            prop_assert!(check_hashmap_len(data.len() as u64, hm.len(), bs).is_ok());
        }

        #[test]
        fn zero_padding_keeps_the_hash(data in proptest::collection::vec(any::<u8>(), 0..64), pad in 0usize..64) {
            let mut padded = data.clone();
            padded.resize(data.len() + pad, 0);
            prop_assert_eq!(hash_block(A, &data), hash_block(A, &padded));
        }

        #[test]
        fn merkle_of_one_is_itself(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let h = hash_block(A, &data);
            prop_assert_eq!(merkle(A, &[h]), h);
        }

        #[test]
        fn merkle_sees_every_block(n in 2usize..20, which in 0usize..20, seed in any::<u64>()) {
            let which = which % n;
            let hashes: Vec<BlockHash> = (0..n).map(|i| hash_block(A, &(seed ^ i as u64).to_le_bytes())).collect();
            let mut changed = hashes.clone();
            changed[which] = hash_block(A, b"different");
            prop_assert_ne!(merkle(A, &hashes), merkle(A, &changed));
            // padding to a power of two must not equal an explicit zero leaf list of another length
            prop_assert_ne!(merkle(A, &hashes), merkle(A, &hashes[..n - 1]));
        }
    }
}
