//! Flavors: six built-in ones, public to every user.

use super::request::text_of;
use super::{compute_url, is_number, links, ok};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::wire::Query;
use crate::cloud::Cloud;
use axum::http::Method;
use serde_json::{json, Map, Value};

/// A built-in flavor; every user may use every one of them.
#[derive(Debug)]
pub(super) struct Flavor {
    pub(super) id: i64,
    pub(super) vcpus: u32,
    pub(super) ram: u32,
    pub(super) disk: u32,
}

/// Pairs share a disk size, so a server can be resized within a pair.
static FLAVORS: [Flavor; 6] = [
    Flavor { id: 1, vcpus: 1, ram: 1024, disk: 20 },
    Flavor { id: 2, vcpus: 1, ram: 2048, disk: 20 },
    Flavor { id: 3, vcpus: 2, ram: 2048, disk: 40 },
    Flavor { id: 4, vcpus: 2, ram: 4096, disk: 40 },
    Flavor { id: 5, vcpus: 4, ram: 4096, disk: 80 },
    Flavor { id: 6, vcpus: 4, ram: 8192, disk: 80 },
];

impl Flavor {
    pub(super) fn name(&self) -> String {
        format!("C{}R{}D{}drbd", self.vcpus, self.ram, self.disk)
    }

    pub(super) fn by_id(id: i64) -> Option<&'static Flavor> {
        FLAVORS.iter().find(|f| f.id == id)
    }

    /// A `flavorRef` (number or numeric string): 400 when malformed, 404 when unknown.
    pub(super) fn by_ref(v: &Value) -> Result<&'static Flavor, Fault> {
        let id = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(|| Fault::bad_request(format!("Invalid flavor ID '{}'", text_of(v))))?;
        Flavor::by_id(id).ok_or_else(|| Fault::not_found("Flavor not found."))
    }

    fn json(&self, cloud: &Cloud, detail: bool) -> Value {
        let mut d = Map::new();
        d.insert("id".into(), self.id.into());
        d.insert("name".into(), self.name().into());
        d.insert("links".into(), links(compute_url(cloud, &format!("/flavors/{}", self.id))));
        if detail {
            d.insert("ram".into(), self.ram.into());
            d.insert("disk".into(), self.disk.into());
            d.insert("vcpus".into(), self.vcpus.into());
            d.insert("os-flavor-access:is_public".into(), true.into());
            d.insert("SNF:disk_template".into(), "drbd".into());
            d.insert("SNF:volume_type".into(), 1.into());
            d.insert("SNF:allow_create".into(), true.into());
            // Public flavors carry no per-project grants.
            d.insert("SNF:flavor-access".into(), json!([]));
        }
        Value::Object(d)
    }
}

pub(super) fn flavors(cloud: &Cloud, method: &Method, query: &Query, rest: &[&str]) -> Reply {
    if method != Method::GET {
        return match rest {
            [] | ["detail"] => Err(Fault::not_allowed("GET")),
            [id] if is_number(id) => Err(Fault::not_allowed("GET")),
            _ => Err(Fault::endpoint_not_found()),
        };
    }
    match rest {
        [] => list_flavors(cloud, query, false),
        ["detail"] => list_flavors(cloud, query, true),
        [id] if is_number(id) => {
            let flavor = id.parse::<i64>().ok().and_then(Flavor::by_id);
            let flavor = flavor.ok_or_else(|| Fault::not_found("Flavor not found."))?;
            ok(json!({"flavor": flavor.json(cloud, true)}))
        }
        [_] => Err(Fault::bad_request("Invalid flavor ID")),
        _ => Err(Fault::endpoint_not_found()),
    }
}

fn list_flavors(cloud: &Cloud, query: &Query, detail: bool) -> Reply {
    // Every flavor is public and none is granted to a project in particular.
    let public_wanted = query.get("SNF:is_public").is_none_or(|v| v.eq_ignore_ascii_case("true"));
    let shown = public_wanted && query.get("SNF:flavor-access").is_none();
    let list: Vec<Value> = if shown { FLAVORS.iter().map(|f| f.json(cloud, detail)).collect() } else { Vec::new() };
    ok(json!({ "flavors": list }))
}
