//! Reading a compute request: attributes of its JSON body, and the query.

use crate::cloud::fault::Fault;
use crate::cloud::wire::{now, parse_iso_date, Query};
use serde_json::Value;

/// A required attribute of a request object (Synnefo's `get_attribute`).
pub(super) fn attribute<'a>(v: &'a Value, name: &str) -> Result<&'a Value, Fault> {
    match v.get(name) {
        None | Some(Value::Null) => Err(Fault::bad_request(format!("Malformed request. Missing attribute '{name}'."))),
        Some(found) => Ok(found),
    }
}

pub(super) fn invalid_field(name: &str) -> Fault {
    Fault::bad_request(format!("Malformed request. Invalid '{name}' field"))
}

pub(super) fn string_attribute<'a>(v: &'a Value, name: &str) -> Result<&'a str, Fault> {
    attribute(v, name)?.as_str().ok_or_else(|| invalid_field(name))
}

/// Metadata values are strings; numbers are taken as their text.
pub(super) fn meta_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A JSON value as Python would print it in an error message.
pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `changes-since`: None when absent; 400 when malformed or in the future.
pub(super) fn changes_since(query: &Query) -> Result<Option<f64>, Fault> {
    let Some(raw) = query.value("changes-since") else { return Ok(None) };
    let since = parse_iso_date(raw).ok_or_else(|| Fault::bad_request("Invalid changes-since parameter."))?;
    if since > now() {
        return Err(Fault::bad_request("changes-since value set in the future."));
    }
    Ok(Some(since))
}
