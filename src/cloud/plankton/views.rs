//! An image as Plankton shows it: JSON in listings, `x-image-meta-*`
//! headers in the replies to register, HEAD and update.

use crate::cloud::images::{Image, AVAILABLE};
use crate::cloud::wire::{plain_date, quote_path, Reply as Out};
use axum::http::StatusCode;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

/// Python's `quote` for header names: it keeps `_.-` (and `/`, which no
/// header name may hold, so it is escaped here).
const QUOTE_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-');

impl Image {
    /// The status image headers carry: Plankton maps anything unknown.
    fn header_status(&self) -> &'static str {
        match self.status.to_ascii_uppercase().as_str() {
            AVAILABLE => AVAILABLE,
            "UNAVAILABLE" => "SAVING",
            "ERROR" => "ERROR",
            "DELETED" => "DELETED",
            _ => "UNKNOWN",
        }
    }

    pub(super) fn summary_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "disk_format": self.disk_format,
            "container_format": self.container_format,
            "size": self.size,
        })
    }

    pub(super) fn detail_json(&self) -> Value {
        let mut d = Map::new();
        if let Value::Object(summary) = self.summary_json() {
            d.extend(summary);
        }
        d.insert("checksum".into(), self.checksum.clone().into());
        d.insert("location".into(), self.location.clone().into());
        d.insert("created_at".into(), plain_date(self.created).into());
        d.insert("updated_at".into(), plain_date(self.updated).into());
        d.insert("deleted_at".into(), "".into());
        d.insert("is_public".into(), self.is_public.into());
        d.insert("owner".into(), self.owner.clone().into());
        d.insert("properties".into(), json!(self.properties));
        d.insert("is_snapshot".into(), self.is_snapshot.into());
        d.insert("description".into(), self.description.clone().into());
        Value::Object(d)
    }

    /// The image as `x-image-meta-*` headers (register, HEAD and update replies).
    pub(super) fn headers(&self) -> Out {
        let python_bool = |b: bool| if b { "True" } else { "False" };
        let mut out = Out::new(StatusCode::OK);
        let fields: [(&str, String); 15] = [
            ("name", quote_path(&self.name)),
            ("disk-format", self.disk_format.clone()),
            ("container-format", self.container_format.clone()),
            ("size", self.size.to_string()),
            ("checksum", self.checksum.clone()),
            ("location", self.location.clone()),
            ("created-at", plain_date(self.created)),
            ("updated-at", plain_date(self.updated)),
            ("deleted-at", String::new()),
            ("status", self.header_status().to_string()),
            ("is-public", python_bool(self.is_public).to_string()),
            ("owner", self.owner.clone()),
            ("id", self.id.clone()),
            ("is-snapshot", python_bool(self.is_snapshot).to_string()),
            ("description", quote_path(&self.description)),
        ];
        for (name, value) in fields {
            out.add_header(&format!("x-image-meta-{name}"), value);
        }
        for (key, value) in &self.properties {
            let name = format!("x-image-meta-property-{}", key.replace('_', "-"));
            let name = utf8_percent_encode(&name, QUOTE_NAME).to_string();
            out.add_header(&name, quote_path(value));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_maps() {
        let mut i = Image { status: AVAILABLE.into(), ..Image::default() };
        assert_eq!(i.header_status(), AVAILABLE);
        i.status = "queued".into();
        assert_eq!(i.header_status(), "UNKNOWN");
    }
}
