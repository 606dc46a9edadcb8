//! Synnefo fault bodies: `{"<faultName>": {"code", "message", "details"}}`.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};

/// An error answer of the local cloud. Every handler returns one of these rather
/// than panicking; the status decides what clients do, the message tells a human.
#[derive(Debug, Clone)]
pub struct Fault {
    pub status: StatusCode,
    pub name: &'static str,
    pub message: String,
    pub details: String,
    /// Extra headers some faults carry (`Allow` on 405, `Content-Range` on 416).
    pub headers: Vec<(&'static str, String)>,
}

impl Fault {
    pub fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Fault {
        Fault { status, name, message: message.into(), details: String::new(), headers: Vec::new() }
    }
    pub fn with_details(mut self, details: impl Into<String>) -> Fault {
        self.details = details.into();
        self
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Fault {
        self.headers.push((name, value.into()));
        self
    }
    pub fn not_modified() -> Fault {
        Fault::new(StatusCode::NOT_MODIFIED, "notModified", "")
    }
    pub fn bad_request(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, "badRequest", msg)
    }
    pub fn unauthorized(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
    }
    pub fn forbidden(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::FORBIDDEN, "forbidden", msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::NOT_FOUND, "itemNotFound", msg)
    }
    pub fn not_allowed(allow: &str) -> Fault {
        Fault::new(StatusCode::METHOD_NOT_ALLOWED, "notAllowed", "Method not allowed").with_header("Allow", allow)
    }
    pub fn conflict(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::CONFLICT, "conflict", msg)
    }
    pub fn build_in_progress(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::CONFLICT, "buildInProgress", msg)
    }
    pub fn length_required(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::LENGTH_REQUIRED, "lengthRequired", msg)
    }
    pub fn precondition_failed(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::PRECONDITION_FAILED, "preconditionFailed", msg)
    }
    pub fn quota(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::PAYLOAD_TOO_LARGE, "requestEntityTooLarge", format!("Quota error: {}", msg.into()))
    }
    pub fn too_large(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::PAYLOAD_TOO_LARGE, "requestEntityTooLarge", msg)
    }
    pub fn bad_media_type(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "badMediaType", msg)
    }
    pub fn range_not_satisfiable(size: u64) -> Fault {
        Fault::new(StatusCode::RANGE_NOT_SATISFIABLE, "rangeNotSatisfiable", "Requested range not satisfiable")
            .with_header("Content-Range", format!("bytes */{size}"))
    }
    pub fn unprocessable(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessableEntity", msg)
    }
    pub fn internal(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::INTERNAL_SERVER_ERROR, "internalServerError", msg)
    }
    pub fn not_implemented(msg: impl Into<String>) -> Fault {
        Fault::new(StatusCode::NOT_IMPLEMENTED, "notImplemented", msg)
    }
    pub fn endpoint_not_found() -> Fault {
        Fault::bad_request("API endpoint not found")
    }

    pub fn into_response(self) -> Response<Body> {
        let body = if self.status == StatusCode::NOT_MODIFIED {
            Vec::new()
        } else {
            let mut inner = serde_json::Map::new();
            inner.insert("code".into(), self.status.as_u16().into());
            inner.insert("message".into(), self.message.clone().into());
            inner.insert("details".into(), self.details.clone().into());
            let mut outer = serde_json::Map::new();
            outer.insert(self.name.into(), serde_json::Value::Object(inner));
            serde_json::to_vec(&outer).unwrap_or_default()
        };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = self.status;
        if self.status != StatusCode::NOT_MODIFIED {
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

impl From<crate::cloud::sql::Error> for Fault {
    fn from(e: crate::cloud::sql::Error) -> Fault {
        tracing::error!("database error: {e}");
        Fault::internal("database error")
    }
}

impl From<rusqlite::Error> for Fault {
    fn from(e: rusqlite::Error) -> Fault {
        crate::cloud::sql::Error::from(e).into()
    }
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Fault {
        tracing::error!("storage error: {e}");
        Fault::internal("storage error")
    }
}

pub type Reply = Result<Response<Body>, Fault>;
