//! The hashmap as JSON: the one type with which the client and the local
//! cloud read and write it, in the two forms Pithos uses, and the list of
//! hashes a block upload and a 409 answer with.

use super::{Algorithm, BlockHash, MAX_BLOCKS_PER_OBJECT};
use std::borrow::Cow;
use std::fmt;

/// Which hashmap document a body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashmapForm {
    /// `{"block_size", "block_hash", "bytes", "hashes"}`: a `GET ?hashmap` reply.
    /// `block_hash` may be missing (then sha256).
    Reply,
    /// `{"bytes", "hashes"}`: the body of a hashmap PUT. Any other key, a
    /// block size too, is skipped unread, as Pithos does: the container's
    /// block size is the one that counts.
    Request,
}

/// An object's hashmap as Pithos writes it in JSON: the one type with which
/// the client and the local cloud read and write it, in either form.
///
/// Reading streams the hashes straight into 32-byte values (never a JSON
/// tree) and keeps at most [`MAX_BLOCKS_PER_OBJECT`] of them; `bytes` and
/// `block_size` are numbers or numeric strings. The rules that depend on the
/// reader ([`super::check_hashmap_len`], [`super::check_block_size`]) are its to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashmapJson<'a> {
    /// The block size and hash algorithm (`block_size`, `block_hash`): a
    /// reply's; a request has none.
    pub block: Option<(u64, Algorithm)>,
    pub bytes: u64,
    pub hashes: Cow<'a, [BlockHash]>,
}

/// Why a body is not a hashmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashmapJsonError {
    /// Not JSON, or cut short.
    Syntax(String),
    /// JSON, but not a hashmap of that form: a field missing, repeated or of
    /// the wrong kind, or a hash that is not 64 hex digits.
    Invalid(String),
    /// More hashes than an object may have: how many were listed.
    TooMany(u64),
}

impl fmt::Display for HashmapJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashmapJsonError::Syntax(e) | HashmapJsonError::Invalid(e) => f.write_str(e),
            HashmapJsonError::TooMany(n) => {
                write!(f, "more than {MAX_BLOCKS_PER_OBJECT} hashes ({n}), the most an object has")
            }
        }
    }
}

impl std::error::Error for HashmapJsonError {}

impl From<serde_json::Error> for HashmapJsonError {
    fn from(e: serde_json::Error) -> Self {
        if e.is_data() {
            HashmapJsonError::Invalid(e.to_string())
        } else {
            HashmapJsonError::Syntax(e.to_string())
        }
    }
}

impl<'a> HashmapJson<'a> {
    /// A reply: what the server says an object's blocks are.
    pub fn reply(block_size: u64, algorithm: Algorithm, bytes: u64, hashes: &'a [BlockHash]) -> HashmapJson<'a> {
        HashmapJson { block: Some((block_size, algorithm)), bytes, hashes: Cow::Borrowed(hashes) }
    }

    /// A request: the object a client commits.
    pub fn request(bytes: u64, hashes: &'a [BlockHash]) -> HashmapJson<'a> {
        HashmapJson { block: None, bytes, hashes: Cow::Borrowed(hashes) }
    }

    /// The JSON, keys in the order Pithos writes them.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.hashes.len().saturating_mul(67).saturating_add(96));
        out.push(b'{');
        if let Some((block_size, algorithm)) = self.block {
            out.extend_from_slice(format!(r#""block_hash":"{algorithm}","block_size":{block_size},"#).as_bytes());
        }
        out.extend_from_slice(format!(r#""bytes":{},"hashes":"#, self.bytes).as_bytes());
        write_hash_list(&mut out, &self.hashes);
        out.push(b'}');
        out
    }
}

impl HashmapJson<'static> {
    /// Reads a hashmap of `form`.
    pub fn parse(form: HashmapForm, body: &[u8]) -> Result<HashmapJson<'static>, HashmapJsonError> {
        let fields = from_slice_with(body, json_grammar::Document(form))?;
        let missing = |name: &str| HashmapJsonError::Invalid(format!("missing field `{name}`"));
        let bytes = fields.bytes.ok_or_else(|| missing("bytes"))?;
        let list = fields.hashes.ok_or_else(|| missing("hashes"))?;
        let block = match form {
            HashmapForm::Reply => {
                Some((fields.block_size.ok_or_else(|| missing("block_size"))?, fields.block_hash.unwrap_or_default()))
            }
            HashmapForm::Request => None,
        };
        if list.listed > MAX_BLOCKS_PER_OBJECT {
            return Err(HashmapJsonError::TooMany(list.listed));
        }
        Ok(HashmapJson { block, bytes, hashes: Cow::Owned(list.hashes) })
    }
}

/// A JSON list of hashes, as a block upload and a 409 of a hashmap PUT
/// answer: read as a stream, at most [`MAX_BLOCKS_PER_OBJECT`] kept.
pub fn parse_hash_list(body: &[u8]) -> Result<Vec<BlockHash>, HashmapJsonError> {
    let list = from_slice_with(body, json_grammar::HashList)?;
    if list.listed > MAX_BLOCKS_PER_OBJECT {
        return Err(HashmapJsonError::TooMany(list.listed));
    }
    Ok(list.hashes)
}

/// The JSON list of `hashes`.
pub fn hash_list_json(hashes: &[BlockHash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hashes.len().saturating_mul(67).saturating_add(2));
    write_hash_list(&mut out, hashes);
    out
}

/// Hex digits need no JSON escaping, so the list is written as it is.
fn write_hash_list(out: &mut Vec<u8>, hashes: &[BlockHash]) {
    out.push(b'[');
    let mut hex = [0u8; 64];
    for (i, h) in hashes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        // Cannot fail: 64 bytes hold the hex of 32.
        if hex::encode_to_slice(h.0, &mut hex).is_ok() {
            out.extend_from_slice(&hex);
        }
        out.push(b'"');
    }
    out.push(b']');
}

/// One whole JSON document read with `seed`: nothing may follow it.
fn from_slice_with<'de, S: serde::de::DeserializeSeed<'de>>(
    body: &'de [u8],
    seed: S,
) -> Result<S::Value, HashmapJsonError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The grammar of hashmap documents, as serde visitors: numbers and hashes
/// are taken as they stream past.
mod json_grammar {
    use super::{Algorithm, BlockHash, HashmapForm, MAX_BLOCKS_PER_OBJECT};
    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;
    use std::fmt;

    /// The fields of a hashmap object, each as found (or not).
    #[derive(Default)]
    pub struct Fields {
        pub block_size: Option<u64>,
        pub block_hash: Option<Algorithm>,
        pub bytes: Option<u64>,
        pub hashes: Option<Hashes>,
    }

    /// The hashes up to the cap, and how many were listed in all.
    pub struct Hashes {
        pub hashes: Vec<BlockHash>,
        pub listed: u64,
    }

    fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
        if slot.is_some() {
            return Err(E::duplicate_field(name));
        }
        *slot = Some(value);
        Ok(())
    }

    pub struct Document(pub HashmapForm);

    impl<'de> DeserializeSeed<'de> for Document {
        type Value = Fields;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Document {
        type Value = Fields;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a hashmap object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
            let mut out = Fields::default();
            let reply = self.0 == HashmapForm::Reply;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match key.as_ref() {
                    "bytes" => once(&mut out.bytes, map.next_value_seed(Count("bytes"))?, "bytes")?,
                    "hashes" => once(&mut out.hashes, map.next_value_seed(HashList)?, "hashes")?,
                    "block_size" if reply => {
                        once(&mut out.block_size, map.next_value_seed(Count("block_size"))?, "block_size")?
                    }
                    "block_hash" if reply => {
                        once(&mut out.block_hash, map.next_value_seed(AlgorithmName)?, "block_hash")?
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }

    /// A count (`bytes`, `block_size`): a non-negative integer, or its digits
    /// as a string.
    struct Count(&'static str);

    impl<'de> DeserializeSeed<'de> for Count {
        type Value = u64;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl Visitor<'_> for Count {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{} as a non-negative integer", self.0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    /// `block_hash`: an algorithm's name; null counts as not given.
    struct AlgorithmName;

    impl<'de> DeserializeSeed<'de> for AlgorithmName {
        type Value = Algorithm;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Algorithm, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl Visitor<'_> for AlgorithmName {
        type Value = Algorithm;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a block hash algorithm")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Algorithm, E> {
            v.parse().map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Algorithm, E> {
            Ok(Algorithm::default())
        }
    }

    /// A list of hex hashes. Past the cap hashes are still checked, not
    /// kept: the reader refuses the whole, saying how many there were.
    pub struct HashList;

    impl<'de> DeserializeSeed<'de> for HashList {
        type Value = Hashes;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Hashes, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for HashList {
        type Value = Hashes;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of hashes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hashes, A::Error> {
            let cap = seq.size_hint().unwrap_or(0).min(MAX_BLOCKS_PER_OBJECT as usize);
            let mut out = Hashes { hashes: Vec::with_capacity(cap), listed: 0 };
            while let Some(h) = seq.next_element_seed(Hex)? {
                out.listed += 1;
                if out.listed <= MAX_BLOCKS_PER_OBJECT {
                    out.hashes.push(h);
                }
            }
            Ok(out)
        }
    }

    struct Hex;

    impl<'de> DeserializeSeed<'de> for Hex {
        type Value = BlockHash;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<BlockHash, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl Visitor<'_> for Hex {
        type Value = BlockHash;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a block hash of 64 hex digits")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<BlockHash, E> {
            BlockHash::from_hex(v).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::hash_block;
    use proptest::prelude::*;

    const A: Algorithm = Algorithm::Sha256;

    fn some_hashes(n: usize) -> Vec<BlockHash> {
        (0..n).map(|i| hash_block(A, &i.to_le_bytes())).collect()
    }

    fn invalid(r: Result<HashmapJson<'static>, HashmapJsonError>) -> String {
        match r {
            Err(HashmapJsonError::Invalid(e)) => e,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn hashmap_json_is_written_as_pithos_writes_it() {
        let hashes = some_hashes(2);
        let hex: Vec<String> = hashes.iter().map(|h| h.to_hex()).collect();
        // serde_json's own rendering of the same object (keys sorted, compact)
        let reply = serde_json::json!({"block_size": 4096, "block_hash": "sha256", "bytes": 5000, "hashes": hex});
        assert_eq!(HashmapJson::reply(4096, A, 5000, &hashes).to_json(), serde_json::to_vec(&reply).unwrap());
        let request = serde_json::json!({"bytes": 5000, "hashes": hex});
        assert_eq!(HashmapJson::request(5000, &hashes).to_json(), serde_json::to_vec(&request).unwrap());
        assert_eq!(HashmapJson::request(0, &[]).to_json(), br#"{"bytes":0,"hashes":[]}"#);
        assert_eq!(hash_list_json(&hashes), serde_json::to_vec(&hex).unwrap());
        assert_eq!(hash_list_json(&[]), b"[]");
    }

    #[test]
    fn hashmap_json_reads_both_forms() {
        let hashes = some_hashes(3);
        let reply = HashmapJson::reply(4096, A, 9000, &hashes);
        assert_eq!(HashmapJson::parse(HashmapForm::Reply, &reply.to_json()).unwrap(), reply);
        let request = HashmapJson::request(9000, &hashes);
        assert_eq!(HashmapJson::parse(HashmapForm::Request, &request.to_json()).unwrap(), request);
        // a request does not read a block size or algorithm, whatever it holds
        let body = br#"{"block_size": "huge", "block_hash": 7, "bytes": 0, "hashes": [], "x": [{}]}"#;
        assert_eq!(HashmapJson::parse(HashmapForm::Request, body).unwrap(), HashmapJson::request(0, &[]));
        // a reply without block_hash (or with null) is sha256
        let h = hashes[0].to_hex();
        for algo in ["", r#""block_hash": null,"#, r#""block_hash": "SHA256","#] {
            let body = format!(r#"{{{algo} "block_size": 4096, "bytes": 10, "hashes": ["{h}"]}}"#);
            let got = HashmapJson::parse(HashmapForm::Reply, body.as_bytes()).unwrap();
            assert_eq!(got.block, Some((4096, A)), "{body}");
        }
        // numbers, or their digits as strings
        let body = format!(r#"{{"block_size": " 4096", "bytes": "10", "hashes": ["{h}"]}}"#);
        let got = HashmapJson::parse(HashmapForm::Reply, body.as_bytes()).unwrap();
        assert_eq!((got.block, got.bytes), (Some((4096, A)), 10));
    }

    #[test]
    fn hashmap_json_refusals() {
        let h = some_hashes(1)[0].to_hex();
        let req = |body: &str| HashmapJson::parse(HashmapForm::Request, body.as_bytes());
        let reply = |body: &str| HashmapJson::parse(HashmapForm::Reply, body.as_bytes());
        for bytes in ["-1", "1e300", "18446744073709551616", r#""18446744073709551616""#, r#""x""#, "true", "null"] {
            let e = invalid(req(&format!(r#"{{"bytes": {bytes}, "hashes": []}}"#)));
            assert!(e.contains("bytes as a non-negative integer"), "{bytes}: {e}");
        }
        assert!(invalid(req(r#"{"hashes": []}"#)).contains("missing field `bytes`"));
        assert!(invalid(req(r#"{"bytes": 1}"#)).contains("missing field `hashes`"));
        assert!(invalid(reply(r#"{"bytes": 1, "hashes": []}"#)).contains("missing field `block_size`"));
        assert!(invalid(req(r#"{"bytes": 1, "hashes": {}}"#)).contains("a list of hashes"));
        assert!(invalid(req(r#"{"bytes": 1, "hashes": ["abc"]}"#)).contains("64 hex digits"));
        assert!(invalid(req(r#"{"bytes": 1, "hashes": [1]}"#)).contains("64 hex digits"));
        assert!(invalid(req(r#"{"bytes": 1, "bytes": 1, "hashes": []}"#)).contains("duplicate field `bytes`"));
        assert!(invalid(req(r#"[1, 2]"#)).contains("a hashmap object"));
        let md5 = format!(r#"{{"block_size": 4096, "block_hash": "md5", "bytes": 1, "hashes": ["{h}"]}}"#);
        assert!(invalid(reply(&md5)).contains("unsupported block hash algorithm"));
        for body in ["", "{", r#"{"bytes": 1, "hashes": []} x"#, "{not json"] {
            assert!(matches!(req(body), Err(HashmapJsonError::Syntax(_))), "{body:?}");
        }
        assert!(matches!(parse_hash_list(b"[\"abc\"]"), Err(HashmapJsonError::Invalid(_))));
        assert!(matches!(parse_hash_list(b"{}"), Err(HashmapJsonError::Invalid(_))));
        assert_eq!(parse_hash_list(&hash_list_json(&some_hashes(3))).unwrap(), some_hashes(3));
    }

    #[test]
    fn hashmap_json_keeps_at_most_the_blocks_of_an_object() {
        let one = format!("\"{}\"", BlockHash::empty().to_hex());
        let list = |n: usize| format!("[{}]", vec![one.as_str(); n].join(","));
        let at_cap = list(MAX_BLOCKS_PER_OBJECT as usize);
        assert_eq!(parse_hash_list(at_cap.as_bytes()).unwrap().len() as u64, MAX_BLOCKS_PER_OBJECT);
        let over = list(MAX_BLOCKS_PER_OBJECT as usize + 2);
        assert_eq!(parse_hash_list(over.as_bytes()), Err(HashmapJsonError::TooMany(MAX_BLOCKS_PER_OBJECT + 2)));
        let body = format!(r#"{{"bytes": 1, "hashes": {over}}}"#);
        let e = HashmapJson::parse(HashmapForm::Request, body.as_bytes()).unwrap_err();
        assert_eq!(e, HashmapJsonError::TooMany(MAX_BLOCKS_PER_OBJECT + 2));
        assert!(e.to_string().contains("more than 262144 hashes"), "{e}");
    }

    proptest! {
        #[test]
        fn hashmap_json_round_trips(n in 0usize..40, bytes in any::<u64>(), bs in any::<u64>(), reply in any::<bool>()) {
            let hashes = some_hashes(n);
            let (form, hm) = if reply {
                (HashmapForm::Reply, HashmapJson::reply(bs, A, bytes, &hashes))
            } else {
                (HashmapForm::Request, HashmapJson::request(bytes, &hashes))
            };
            prop_assert_eq!(HashmapJson::parse(form, &hm.to_json()), Ok(hm.clone()));
            prop_assert_eq!(parse_hash_list(&hash_list_json(&hashes)), Ok(hashes.clone()));
        }
    }
}
