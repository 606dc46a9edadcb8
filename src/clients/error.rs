//! `ClientError`: the one error of every client, as in kamaki.

use std::fmt;

/// Every failure of a client: a server fault, a bad argument, a refused
/// connection, a timeout, a malformed reply. `status` is the HTTP status (0
/// when there was none), `details` extra lines worth showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub message: String,
    pub status: u16,
    pub details: Vec<String>,
}

impl ClientError {
    pub fn new(message: impl Into<String>) -> ClientError {
        ClientError { message: message.into(), status: 0, details: Vec::new() }
    }

    pub fn with_status(message: impl Into<String>, status: u16) -> ClientError {
        ClientError { message: message.into(), status, details: Vec::new() }
    }

    pub fn detail(mut self, d: impl Into<String>) -> ClientError {
        self.details.push(d.into());
        self
    }

    /// Builds the error of a failed HTTP call the way kamaki does: the reason
    /// phrase and the body; a Synnefo fault body (`{"itemNotFound": {"code",
    /// "message", "details"}}`) becomes `<reason> <faultName> (<message>)` with
    /// the fault's code as status.
    pub fn from_reply(status: u16, body: &[u8]) -> ClientError {
        let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let mut err = ClientError::with_status(
            if text.is_empty() { reason.to_string() } else { format!("{reason} {text}") },
            status,
        );
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
            if let Some((name, fault)) = map.iter().next() {
                let msg = fault.get("message").and_then(|m| m.as_str()).unwrap_or("");
                err.message = format!("{reason} {name} ({msg})");
                if let Some(code) = fault.get("code").and_then(|c| c.as_u64()).filter(|c| (100..600).contains(c)) {
                    err.status = code as u16;
                }
                match fault.get("details") {
                    Some(serde_json::Value::String(d)) if !d.is_empty() => err.details.push(d.clone()),
                    Some(serde_json::Value::Array(ds)) => {
                        err.details.extend(ds.iter().map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string)))
                    }
                    _ => {}
                }
            }
        }
        err
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }

    /// Whether the reply was longer than its call takes (trying again would not help).
    pub fn is_reply_too_long(&self) -> bool {
        self.status == 0 && self.message.contains(super::http::REPLY_TOO_LONG)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> ClientError {
        ClientError::new(format!("I/O error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_bodies_read_like_kamaki() {
        let e = ClientError::from_reply(
            404,
            br#"{"itemNotFound": {"code": 404, "message": "Object does not exist", "details": ""}}"#,
        );
        assert_eq!(e.message, "Not Found itemNotFound (Object does not exist)");
        assert_eq!(e.status, 404);
        assert!(e.details.is_empty());
        assert_eq!(e.to_string(), "Not Found itemNotFound (Object does not exist)");
        let e = ClientError::from_reply(413, br#"{"overLimit": {"code": 413, "message": "Quota", "details": "more"}}"#);
        assert_eq!(e.details, vec!["more"]);
        let e = ClientError::from_reply(502, b"<html>bad gateway</html>");
        assert_eq!(e.message, "Bad Gateway <html>bad gateway</html>");
        let e = ClientError::from_reply(500, b"");
        assert_eq!(e.message, "Internal Server Error");
        let e = ClientError::from_reply(400, br#"{"badRequest": {"code": "x"}}"#);
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "Bad Request badRequest ()");
    }
}
