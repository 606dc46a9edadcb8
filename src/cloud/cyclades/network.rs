//! The one made-up network every server may join: one port per server, an
//! address and a MAC address that only depend on the server's id.

use super::request::{invalid_field, text_of};
use super::server::Server;
use crate::cloud::fault::Fault;
use serde_json::{json, Map, Value};

/// The network every server joins unless its creation says otherwise.
pub(super) const NETWORK: &str = "1";

impl Server {
    /// The server's one made-up port per network: its id is the server's.
    pub(super) fn attachments(&self) -> Vec<Value> {
        if self.deleted {
            return Vec::new();
        }
        let firewall = self.system("firewall").into_iter().next();
        self.system("network")
            .into_iter()
            .map(|network| {
                let mut port = Map::new();
                port.insert("id".into(), self.id.into());
                port.insert("network_id".into(), network.into());
                port.insert("mac_address".into(), self.mac().into());
                if let Some(profile) = &firewall {
                    port.insert("firewallProfile".into(), profile.clone().into());
                }
                port.insert("ipv4".into(), self.ipv4().into());
                port.insert("ipv6".into(), "".into());
                port.insert("OS-EXT-IPS:type".into(), "fixed".into());
                Value::Object(port)
            })
            .collect()
    }

    /// A private address that only depends on the id (10.0.0.2 for server 0).
    fn ipv4(&self) -> String {
        let n = self.id.max(0);
        format!("10.0.{}.{}", (n / 250) % 256, n % 250 + 2)
    }

    fn mac(&self) -> String {
        let n = self.id.max(0);
        format!("aa:00:00:{:02x}:{:02x}:{:02x}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
    }
}

/// `addresses`, keyed by network id, from the ports (IPv4 then IPv6 of each).
pub(super) fn addresses(attachments: &[Value]) -> Value {
    let mut out = Map::new();
    for port in attachments {
        let text = |k: &str| port.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let kind = text("OS-EXT-IPS:type");
        let mut list = Vec::new();
        for (version, key) in [(4, "ipv4"), (6, "ipv6")] {
            let addr = text(key);
            if !addr.is_empty() {
                list.push(json!({"version": version, "addr": addr, "OS-EXT-IPS:type": kind}));
            }
        }
        out.insert(text("network_id"), Value::Array(list));
    }
    Value::Object(out)
}

/// The networks a new server joins: the default one unless a list is given
/// (`[]` means none). Only the default network exists here.
pub(super) fn networks(requested: Option<&Value>) -> Result<Vec<String>, Fault> {
    let Some(requested) = requested else { return Ok(vec![NETWORK.to_string()]) };
    let items = requested.as_array().ok_or_else(|| invalid_field("networks"))?;
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = item.as_object().ok_or_else(|| invalid_field("networks"))?;
        if let Some(port) = item.get("port").filter(|p| !p.is_null()) {
            return Err(Fault::not_found(format!("Port {} not found", text_of(port))));
        }
        let network = item
            .get("uuid")
            .filter(|n| !n.is_null())
            .map(text_of)
            .ok_or_else(|| Fault::bad_request("Network 'uuid' or 'port' attribute is required."))?;
        if network != NETWORK {
            return Err(Fault::not_found(format!("Network {network} not found")));
        }
        if !out.contains(&network) {
            out.push(network);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::cyclades::server::ACTIVE;
    use std::collections::BTreeMap;

    #[test]
    fn system_tags_stay_out_of_user_tags() {
        let mut s = Server {
            id: 300,
            owner: String::new(),
            name: String::new(),
            flavor: 1,
            image: String::new(),
            status: ACTIVE.into(),
            next_status: String::new(),
            transition_at: 0.0,
            metadata: BTreeMap::new(),
            tags: Vec::new(),
            project: String::new(),
            created: 0.0,
            updated: 0.0,
            deleted: false,
        };
        s.set_system("network", &[NETWORK.to_string()]);
        s.set_user_tags(&["web".to_string()]);
        s.set_system("firewall", &["ENABLED".to_string()]);
        assert_eq!(s.user_tags(), vec!["web"]);
        let ports = s.attachments();
        assert_eq!(ports[0]["firewallProfile"], "ENABLED");
        assert_eq!(ports[0]["ipv4"], "10.0.1.52");
        assert_eq!(addresses(&ports)["1"][0]["addr"], "10.0.1.52");
    }
}
