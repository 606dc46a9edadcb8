//! The `X-Image-Meta-*` headers of a request, as Plankton reads them: raw
//! rather than through `Call::headers`, because Plankton percent-decodes
//! exactly the name, the location and the properties, once.

use crate::cloud::fault::Fault;
use crate::cloud::images::{self, Properties};
use axum::http::HeaderMap;
use percent_encoding::percent_decode_str;
use std::collections::BTreeMap;

const DISK_FORMATS: [&str; 3] = ["diskdump", "extdump", "ntfsdump"];
const CONTAINER_FORMATS: [&str; 5] = ["aki", "ari", "ami", "bare", "ovf"];

/// `X-Image-Meta-*` names Plankton reads; any other one is ignored.
const KNOWN_FIELDS: [&str; 16] = [
    "name",
    "disk_format",
    "container_format",
    "size",
    "checksum",
    "location",
    "created_at",
    "updated_at",
    "deleted_at",
    "status",
    "is_public",
    "owner",
    "id",
    "is_snapshot",
    "description",
    "store",
];
pub(super) const REGISTER_FIELDS: [&str; 10] =
    ["name", "id", "store", "disk_format", "container_format", "size", "checksum", "is_public", "owner", "location"];
pub(super) const UPDATE_FIELDS: [&str; 6] = ["name", "disk_format", "container_format", "is_public", "owner", "status"];

/// The `X-Image-Meta-*` headers of a request, as Plankton reads them.
#[derive(Debug, Default)]
pub(super) struct ImageParams {
    fields: BTreeMap<String, String>,
    /// Properties to set; an empty value removes the property, as in Pithos.
    properties: Properties,
}

/// Header names lower-cased with punctuation turned into `_`.
fn normalize(key: &str) -> String {
    key.chars().flat_map(|c| if c.is_ascii_punctuation() { vec!['_'] } else { c.to_lowercase().collect() }).collect()
}

impl ImageParams {
    pub(super) fn from_headers(headers: &HeaderMap) -> Result<ImageParams, Fault> {
        let mut params = ImageParams::default();
        for (name, value) in headers {
            let name = name.as_str().to_ascii_lowercase();
            let Some(rest) = name.strip_prefix("x-image-meta-") else { continue };
            let value = value
                .to_str()
                .map_err(|_| Fault::bad_request(format!("Header {name} holds non-ASCII bytes: percent-encode it")))?;
            if let Some(key) = rest.strip_prefix("property-") {
                let key = normalize(&unquote(key)?);
                if key.is_empty() {
                    return Err(Fault::bad_request("Image property names cannot be empty"));
                }
                params.properties.insert(key, unquote(value)?);
            } else {
                let key = normalize(rest);
                if KNOWN_FIELDS.contains(&key.as_str()) {
                    let value = if key == "name" { unquote(value)? } else { value.to_string() };
                    params.fields.insert(key, value);
                }
            }
        }
        Ok(params)
    }

    pub(super) fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub(super) fn is_public(&self) -> Option<bool> {
        self.get("is_public").map(|v| v.eq_ignore_ascii_case("true"))
    }

    pub(super) fn only(&self, allowed: &[&str], message: &str) -> Result<(), Fault> {
        if self.fields.keys().all(|k| allowed.contains(&k.as_str())) {
            Ok(())
        } else {
            Err(Fault::bad_request(message))
        }
    }

    pub(super) fn validate(&self) -> Result<(), Fault> {
        if self.fields.contains_key("id") {
            return Err(Fault::bad_request("Setting the image ID is not supported"));
        }
        if let Some(store) = self.get("store") {
            if store != "pithos" {
                return Err(Fault::bad_request(format!("Invalid store type '{store}'")));
            }
        }
        if let Some(f) = self.get("disk_format") {
            if !DISK_FORMATS.contains(&f) {
                return Err(Fault::bad_request(format!("Invalid disk format '{f}'")));
            }
        }
        if let Some(f) = self.get("container_format") {
            if !CONTAINER_FORMATS.contains(&f) {
                return Err(Fault::bad_request(format!("Invalid container format '{f}'")));
            }
        }
        if let Some(name) = self.get("name") {
            images::check_meta_value(name)?;
        }
        for (k, v) in &self.properties {
            images::check_property(k, v)?;
        }
        Ok(())
    }

    pub(super) fn merge_properties_into(&self, target: &mut Properties) {
        for (k, v) in &self.properties {
            if v.is_empty() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

fn unquote(s: &str) -> Result<String, Fault> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Fault::bad_request("Could not decode request as UTF-8 string"))
}

/// A location's (account, container, object), unquoted.
pub(super) fn split_location(location: &str) -> Result<(String, String, String), Fault> {
    let invalid = || Fault::bad_request(format!("Invalid location '{location}'"));
    let rest = location.strip_prefix("pithos://").ok_or_else(invalid)?;
    let mut parts = rest.splitn(3, '/');
    let (Some(account), Some(container), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let (account, container, name) = (unquote(account)?, unquote(container)?, unquote(name)?);
    if account.is_empty() || container.is_empty() || name.is_empty() {
        return Err(invalid());
    }
    Ok((account, container, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split() {
        let (a, c, o) = split_location("pithos://acct/images/dir/my%20disk.img").unwrap();
        assert_eq!((a.as_str(), c.as_str(), o.as_str()), ("acct", "images", "dir/my disk.img"));
        assert!(split_location("http://acct/c/o").is_err());
        assert!(split_location("pithos://acct/c").is_err());
        assert!(split_location("pithos://acct/c/").is_err());
    }

    #[test]
    fn header_names_normalize_like_plankton() {
        assert_eq!(normalize("Root-Partition"), "root_partition");
        assert_eq!(normalize("OS.Family"), "os_family");
        assert_eq!(normalize("Ελλάδα"), "ελλάδα");
    }
}
