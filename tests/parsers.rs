//! Property tests of every parser of the local cloud that reads client
//! input: for arbitrary input none panics, and whatever it refuses is a 4xx.
//! Pure parsers are called directly (many cases); those inline in handlers
//! (identity, Cyclades) are driven through HTTP (fewer cases), where the
//! property is that no answer is a 5xx and the server keeps answering.

mod common;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use common::{TestCloud, ALICE_TOKEN};
use pithosfs::blocks::{self, BlockHash, HashmapForm, HashmapJson};
use pithosfs::cloud::fault::Fault;
use pithosfs::cloud::pithos::data::{parse_ranges, MAX_RANGES};
use pithosfs::cloud::pithos::model::Sharing;
use pithosfs::cloud::pithos::object::{parse_content_range, parse_hashmap_body};
use pithosfs::cloud::pithos::{check_container_name, check_object_name, request_meta};
use pithosfs::cloud::wire::{Headers, Query};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

fn is_4xx(f: &Fault) -> bool {
    f.status.is_client_error()
}

/// Numbers where arithmetic goes wrong, and a few ordinary ones.
fn edge_number() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(9),
        Just(10),
        Just(4095),
        Just(4096),
        Just(i64::MAX as u64),
        Just(i64::MAX as u64 + 1),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>(),
        0u64..100,
    ]
}

/// A number as a client might write it: plain, too long, signed, spaced.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        edge_number().prop_map(|n| n.to_string()),
        edge_number().prop_map(|n| format!("{n}0")),
        edge_number().prop_map(|n| format!("-{n}")),
        edge_number().prop_map(|n| format!(" {n} ")),
        Just(String::new()),
        "[0-9a-z+.-]{0,25}",
    ]
}

fn range_header() -> impl Strategy<Value = String> {
    let spec = (proptest::option::of(number_text()), proptest::option::of(number_text()))
        .prop_map(|(a, b)| format!("{}-{}", a.unwrap_or_default(), b.unwrap_or_default()));
    prop_oneof![
        ".{0,80}",
        proptest::collection::vec(spec, 0..100).prop_map(|v| format!("bytes={}", v.join(","))),
        proptest::collection::vec((0u64..2000, 0u64..50), 0..200).prop_map(|v| format!(
            "bytes={}",
            v.iter().map(|(a, l)| format!("{a}-{}", a + l)).collect::<Vec<_>>().join(",")
        )),
    ]
}

fn content_range() -> impl Strategy<Value = String> {
    let part = prop_oneof![Just("*".to_string()), number_text()];
    prop_oneof![
        ".{0,60}",
        (number_text(), proptest::option::of(number_text()), part.clone())
            .prop_map(|(a, b, t)| format!("bytes {a}-{}/{t}", b.unwrap_or_default())),
        part.prop_map(|t| format!("bytes */{t}")),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        edge_number().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        number_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn hash_text() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|b| Value::from(hex::encode(b))),
        Just(Value::from(BlockHash::empty().to_hex())),
        "[0-9a-fA-Fg]{60,68}".prop_map(Value::from),
        json_value(),
    ]
}

/// A count as a body might hold it: a number, digits in a string, anything.
fn json_count() -> impl Strategy<Value = Value> {
    prop_oneof![edge_number().prop_map(Value::from), number_text().prop_map(Value::from), json_value()]
}

/// Hashmap bodies of either form (a reply's block size and algorithm are
/// there or not), and bodies that are no hashmap at all.
fn hashmap_body() -> impl Strategy<Value = Vec<u8>> {
    let algorithm = prop_oneof![Just(Value::from("sha256")), Just(Value::from("md5")), json_value()];
    let shaped = (
        json_count(),
        proptest::collection::vec(hash_text(), 0..8),
        proptest::option::of(json_count()),
        proptest::option::of(algorithm),
        proptest::option::of(json_value()),
    )
        .prop_map(|(bytes, hashes, block_size, block_hash, extra)| {
            let mut v = json!({"bytes": bytes, "hashes": hashes});
            for (key, value) in [("block_size", block_size), ("block_hash", block_hash), ("extra", extra)] {
                if let Some(value) = value {
                    v[key] = value;
                }
            }
            serde_json::to_vec(&v).unwrap()
        });
    prop_oneof![
        shaped,
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        proptest::collection::vec(any::<u8>(), 0..200)
    ]
}

fn sharing_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,60}",
        "[ ~;=,:*a-zA-Z0-9-]{0,60}",
        "(read|write|READ|delete)=[a-z0-9*:,~ ]{0,20}(;(read|write)=[a-z0-9*:, ]{0,20})?",
    ]
}

proptest! {
    #![proptest_config(Config { cases: 2000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn ranges(header in range_header(), size in edge_number()) {
        match parse_ranges(&header, size) {
            Err(f) => prop_assert!(is_4xx(&f), "{f:?}"),
            Ok(None) => {}
            Ok(Some(ranges)) => {
                prop_assert!(!ranges.is_empty() && ranges.len() <= MAX_RANGES);
                for (a, b) in &ranges {
                    prop_assert!(a <= b && *b < size, "{a}-{b} of {size}");
                }
                let mut sorted = ranges.clone();
                sorted.sort_unstable();
                prop_assert!(sorted.windows(2).all(|w| w[1].0 > w[0].1), "overlaps left: {ranges:?}");
            }
        }
    }

    #[test]
    fn content_ranges(header in content_range(), size in edge_number()) {
        match parse_content_range(&header, size) {
            Err(f) => prop_assert!(is_4xx(&f), "{f:?}"),
            Ok((start, end, total)) => {
                if let (Some(a), Some(b)) = (start, end) {
                    prop_assert!(a <= b);
                }
                if start.is_none() {
                    prop_assert!(end.is_none() && total.is_none());
                }
            }
        }
    }

    /// The one hashmap type of the client and the server: whatever the
    /// body, in either form, no panic; what it takes is within the cap and
    /// reads back the same once written. The server's hashmap PUT takes
    /// exactly what it takes and the length rule allows, and refuses the rest
    /// with a 4xx.
    #[test]
    fn hashmap_bodies(body in hashmap_body(), block_size in prop_oneof![Just(1u64), Just(4096u64), Just(4u64 << 20)]) {
        for form in [HashmapForm::Reply, HashmapForm::Request] {
            if let Ok(hm) = HashmapJson::parse(form, &body) {
                prop_assert!(hm.hashes.len() as u64 <= blocks::MAX_BLOCKS_PER_OBJECT);
                prop_assert_eq!(hm.block.is_some(), form == HashmapForm::Reply);
                prop_assert_eq!(HashmapJson::parse(form, &hm.to_json()), Ok(hm.clone()));
            }
        }
        let taken = HashmapJson::parse(HashmapForm::Request, &body)
            .ok()
            .filter(|hm| blocks::check_hashmap_len(hm.bytes, hm.hashes.len(), block_size).is_ok())
            .map(|hm| (hm.bytes, hm.hashes.into_owned()));
        match parse_hashmap_body(&body, block_size) {
            Err(f) => {
                prop_assert!(is_4xx(&f), "{f:?}");
                prop_assert!(taken.is_none());
            }
            Ok(got) => prop_assert_eq!(Some(got), taken),
        }
    }

    #[test]
    fn sharing(text in sharing_text()) {
        match Sharing::parse(&text) {
            Err(f) => prop_assert!(is_4xx(&f), "{f:?}"),
            Ok(s) => prop_assert_eq!(Sharing::parse(&s.format()).ok(), Some(s.clone()), "{}", s.format()),
        }
    }

    #[test]
    fn names(name in prop_oneof![".{0,40}", "\\PC{250,260}", "\\PC{8180,8200}", Just("\0".to_string()), Just(String::new())]) {
        for (check, max) in [(check_container_name as fn(&str) -> Result<(), Fault>, 256), (check_object_name, 8192)] {
            match check(&name) {
                Err(f) => prop_assert!(is_4xx(&f)),
                Ok(()) => prop_assert!(!name.is_empty() && name.len() <= max && !name.contains('\0')),
            }
        }
    }

    #[test]
    fn query_strings(q in prop_oneof![".{0,80}", "((until|limit|version|x)=[-+0-9a-z%.]{0,25}&?){0,4}"]) {
        let query = Query::parse(Some(&q));
        if let Err(f) = pithosfs::cloud::check_query_numbers(&query) {
            prop_assert!(is_4xx(&f));
        }
        let _ = (query.int("until"), query.int("limit"), query.has("hashmap"), query.value("prefix"));
    }

    #[test]
    fn headers_and_meta(
        pairs in proptest::collection::vec(
            (
                prop_oneof!["x-object-meta-[a-z0-9_%-]{0,140}", "x-object-meta-%[0-9A-Fa-f]{2}[a-z]{0,3}", "[a-z-]{1,20}"],
                proptest::collection::vec(any::<u8>(), 0..300),
            ),
            0..100,
        )
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in &pairs {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
                map.append(n, v);
            }
        }
        match Headers::decode(&map) {
            Err(f) => prop_assert!(is_4xx(&f)),
            Ok(h) => {
                if let Err(f) = request_meta(&h, "Object") {
                    prop_assert!(is_4xx(&f), "{f:?}");
                }
                if let Some(s) = h.get("x-object-sharing") {
                    let _ = Sharing::parse(s);
                }
            }
        }
    }
}

// ---------- through HTTP ----------

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Identity (`POST /tokens`): arbitrary bodies, and arbitrary values in the
/// shapes the handler looks into.
#[test]
fn identity_json_is_never_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tc = rt.block_on(TestCloud::start());
    let shaped = (json_value(), json_value(), json_value()).prop_map(|(id, user, tenant)| {
        json!({"auth": {"token": {"id": id}, "passwordCredentials": {"username": user, "password": id}, "tenantName": tenant}})
    });
    let body = prop_oneof![
        shaped.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        proptest::collection::vec(any::<u8>(), 0..100),
    ];
    runner(96)
        .run(&body, |body| {
            let status = rt.block_on(async {
                let r = tc.http.post(format!("{}/tokens", tc.identity())).body(body.clone()).send().await.unwrap();
                r.status().as_u16()
            });
            prop_assert!(status < 500, "{status} for {}", String::from_utf8_lossy(&body));
            Ok(())
        })
        .unwrap();
}

/// Cyclades: server creation and server actions with arbitrary JSON.
#[test]
fn cyclades_json_is_never_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tc = rt.block_on(TestCloud::start());
    let compute = tc.compute();
    let post = |url: String, body: Vec<u8>| {
        rt.block_on(async {
            let r = tc
                .alice(reqwest::Method::POST, &url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    };
    // a server for the actions (its image need not exist for this)
    let (status, text) = post(
        format!("{compute}/servers"),
        serde_json::to_vec(&json!({"server": {"name": "p", "imageRef": "none", "flavorRef": 1}})).unwrap(),
    );
    let id = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["server"]["id"].as_i64()).unwrap_or(1);
    assert!(status < 500, "{status} {text}");
    let server = (json_value(), json_value(), json_value(), json_value(), json_value(), json_value()).prop_map(
        |(name, image, flavor, metadata, personality, tags)| {
            json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "metadata": metadata,
                              "personality": personality, "tags": tags, "networks": []}})
        },
    );
    let create = prop_oneof![server, json_value()].prop_map(|v| serde_json::to_vec(&v).unwrap());
    runner(64)
        .run(&create, |body| {
            let (status, text) = post(format!("{compute}/servers"), body.clone());
            prop_assert!(status < 500, "{status} {text} for {}", String::from_utf8_lossy(&body));
            Ok(())
        })
        .unwrap();
    let action_name = prop_oneof![
        Just("reboot"),
        Just("start"),
        Just("shutdown"),
        Just("resize"),
        Just("console"),
        Just("changePassword"),
        Just("rename"),
        Just("x")
    ];
    let action = prop_oneof![(action_name, json_value()).prop_map(|(n, v)| json!({ n: v })), json_value(),]
        .prop_map(|v| serde_json::to_vec(&v).unwrap());
    runner(96)
        .run(&action, |body| {
            let (status, text) = post(format!("{compute}/servers/{id}/action"), body.clone());
            prop_assert!(status < 500, "{status} {text} for {}", String::from_utf8_lossy(&body));
            Ok(())
        })
        .unwrap();
}

/// Pithos headers and query strings as a client sends them: never a 5xx.
#[test]
fn pithos_headers_and_queries_are_never_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tc = rt.block_on(async {
        let tc = TestCloud::start_with(|c| c.block_size = 4096).await;
        tc.put_object("pithos", "o", &[5u8; 10_000]).await;
        tc
    });
    let obj = tc.object_url("pithos", "o");
    let header_value = prop_oneof![".{0,60}", number_text(), range_header(), content_range(), sharing_text()];
    let case = (0usize..6, header_value, "[-_.~a-zA-Z0-9=&%]{0,60}");
    runner(128)
        .run(&case, |(kind, value, query)| {
            let Ok(value) = HeaderValue::from_str(&value) else { return Ok(()) };
            let status = rt.block_on(async {
                let m = |m: &str| reqwest::Method::from_bytes(m.as_bytes()).unwrap();
                let (method, header) = match kind {
                    0 => (m("GET"), "Range"),
                    1 => (m("POST"), "Content-Range"),
                    2 => (m("POST"), "X-Object-Sharing"),
                    3 => (m("POST"), "X-Object-Meta-Color"),
                    4 => (m("POST"), "X-Object-Bytes"),
                    _ => (m("GET"), "If-Range"),
                };
                let mut r = tc.alice(method, &format!("{obj}?{query}")).header(header, value);
                if kind == 1 || kind == 4 {
                    r = r.header("Content-Type", "application/octet-stream").body(vec![1u8; 7]);
                }
                r.send().await.unwrap().status().as_u16()
            });
            prop_assert!(status < 500, "{status}");
            Ok(())
        })
        .unwrap();
    // still serving
    let r = rt.block_on(tc.http.get(&obj).header("X-Auth-Token", ALICE_TOKEN).send()).unwrap();
    assert_eq!(r.status(), 200);
}
