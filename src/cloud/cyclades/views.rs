//! A server as the compute API shows it: a summary in plain listings, every
//! field in details.

use super::network::addresses;
use super::server::Server;
use super::{compute_url, image_links, links};
use crate::cloud::wire::iso_date;
use crate::cloud::Cloud;
use serde_json::{json, Map, Value};

impl Server {
    pub(super) fn summary_json(&self, cloud: &Cloud) -> Value {
        json!({"id": self.id, "name": self.name, "links": links(compute_url(cloud, &format!("/servers/{}", self.id)))})
    }

    pub(super) fn detail_json(&self, cloud: &Cloud, now: f64) -> Value {
        let attachments = self.attachments();
        let key_names = self.system("key");
        let mut d = Map::new();
        if let Value::Object(summary) = self.summary_json(cloud) {
            d.extend(summary);
        }
        let mut put = |k: &str, v: Value| {
            d.insert(k.to_string(), v);
        };
        put("user_id", self.owner.clone().into());
        put("tenant_id", self.project.clone().into());
        put("shared_to_project", false.into());
        put("status", self.status.clone().into());
        put("SNF:task_state", self.task_state().into());
        put("progress", self.progress(now, cloud.build_seconds).into());
        put("hostId", "".into());
        put("created", iso_date(self.created).into());
        put("updated", iso_date(self.updated).into());
        put(
            "flavor",
            json!({"id": self.flavor, "links": links(compute_url(cloud, &format!("/flavors/{}", self.flavor)))}),
        );
        put("image", json!({"id": self.image, "links": image_links(cloud, &self.image)}));
        put("suspended", false.into());
        put("metadata", json!(self.metadata));
        put("tags", json!(self.user_tags()));
        put("addresses", addresses(&attachments));
        put("attachments", Value::Array(attachments));
        put("volumes", json!([]));
        put("diagnostics", json!([]));
        put("security_groups", json!([{"name": "default"}]));
        put("key_name", key_names.first().cloned().into());
        put("SNF:key_names", json!(key_names));
        put("config_drive", "".into());
        put("accessIPv4", "".into());
        put("accessIPv6", "".into());
        put("SNF:fqdn", format!("snf-{}.vm.localhost", self.id).into());
        put("SNF:port_forwarding", json!({}));
        put("deleted", self.deleted.into());
        put("SNF:rescue", self.in_rescue().into());
        // Not in Synnefo's replies: the local cloud has no machine where the
        // files could be seen, so it shows them to the owner here.
        put("personality", Value::Array(self.personality()));
        Value::Object(d)
    }
}
