//! What travels on the wire: query flags, header text encoding, dates and the
//! response builder shared by every API of the local cloud.

use super::fault::Fault;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Characters Pithos leaves unescaped in header values it sends back (besides
/// alphanumerics and `_.-~`, as Python's `quote` does).
const HEADER_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/')
    .remove(b'=')
    .remove(b',')
    .remove(b':')
    .remove(b'@')
    .remove(b';')
    .remove(b' ')
    .remove(b'"');

/// Path segments as clients quote them (`/` kept).
pub const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');

pub fn quote_header_value(v: &str) -> String {
    utf8_percent_encode(v, HEADER_VALUE).to_string()
}

pub fn quote_path(v: &str) -> String {
    utf8_percent_encode(v, PATH).to_string()
}

/// Query parameters, decoded once. Pithos flags (`update`, `hashmap`, `shared`…)
/// count by presence: kamaki sends them bare, as `None` or as `True`.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        Query { pairs }
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
    /// A non-empty value, or None.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
    /// `until`-style integer timestamps: anything that is not an integer is
    /// treated as absent, as the real server does (kamaki sends floats).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.value(name).and_then(|v| v.trim().parse::<i64>().ok())
    }
}

/// Request headers after Pithos's decoding rule: a header whose name or value
/// holds `%` is percent-decoded (both parts); raw non-ASCII is refused.
#[derive(Debug, Default, Clone)]
pub struct Headers {
    items: Vec<(String, String)>,
}

impl Headers {
    pub fn decode(map: &HeaderMap) -> Result<Headers, Fault> {
        let mut items = Vec::with_capacity(map.len());
        for (name, value) in map {
            let raw = value
                .to_str()
                .map_err(|_| Fault::bad_request(format!("Header {} holds non-ASCII bytes: percent-encode it", name)))?;
            let name = name.as_str();
            if name.contains('%') || raw.contains('%') {
                let n = percent_decode_str(name)
                    .decode_utf8()
                    .map_err(|_| Fault::bad_request(format!("Header name {name} is not UTF-8 once decoded")))?;
                let v = percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| Fault::bad_request(format!("Header {name} is not UTF-8 once decoded")))?;
                items.push((n.to_ascii_lowercase(), v.into_owned()));
            } else {
                items.push((name.to_string(), raw.to_string()));
            }
        }
        Ok(Headers { items })
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// Headers whose (lower-case) name starts with `prefix`, with the prefix cut off.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let prefix = prefix.to_ascii_lowercase();
        self.items.iter().filter_map(move |(k, v)| k.strip_prefix(prefix.as_str()).map(|rest| (rest, v.as_str())))
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// `my_key` / `MY-KEY` → `My-Key`: Pithos meta keys are case- and `_`/`-`-insensitive.
pub fn canonical_meta_key(key: &str) -> String {
    key.replace('_', "-")
        .split('-')
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_uppercase().chain(cs.flat_map(|c| c.to_lowercase())).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn system_time(epoch: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(epoch.max(0.0))
}

/// RFC 1123, seconds precision (`Sat, 14 Jan 2017 10:02:03 GMT`).
pub fn http_date(epoch: f64) -> String {
    httpdate::fmt_http_date(system_time(epoch.floor()))
}

/// RFC 1123 / RFC 850 / asctime, or None (unparseable dates are ignored, never 400).
pub fn parse_http_date(s: &str) -> Option<f64> {
    httpdate::parse_http_date(s.trim()).ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs_f64())
}

/// ISO 8601 with microseconds and `+00:00`. Microseconds always: rclone's
/// Swift backend reads `…:05.123456+00:00` but refuses `…:05+00:00` (it
/// failed a whole listing on one object whose time fell on a whole second),
/// and Swift itself always writes six digits. Formatted by hand: listings
/// call this for every entry.
pub fn iso_date(epoch: f64) -> String {
    use chrono::{Datelike, Timelike};
    let micros = (epoch * 1e6).round() as i64;
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    format!("{base}.{frac:06}+00:00")
}

/// Plankton's `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn plain_date(epoch: f64) -> String {
    let dt = chrono::DateTime::from_timestamp(epoch.floor() as i64, 0).unwrap_or_default();
    dt.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Parses an ISO 8601 date (as in `changes-since`).
pub fn parse_iso_date(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros() as f64 / 1e6);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()?;
    Some(naive.and_utc().timestamp_micros() as f64 / 1e6)
}

/// Version timestamps in JSON: the epoch as a decimal string.
pub fn epoch_string(epoch: f64) -> String {
    let s = format!("{epoch:.6}");
    let s = s.trim_end_matches('0');
    if let Some(stripped) = s.strip_suffix('.') {
        format!("{stripped}.0")
    } else {
        s.to_string()
    }
}

/// Builds responses; values of `X-Account-*`, `X-Container-*`, `X-Object-*` and
/// `Content-*` headers are percent-encoded as Pithos does (kamaki decodes them).
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
}

impl Reply {
    pub fn new(status: StatusCode) -> Reply {
        Reply { status, headers: HeaderMap::new() }
    }

    pub fn status(mut self, status: StatusCode) -> Reply {
        self.status = status;
        self
    }

    /// A header whose value (and, for user metadata, name) Pithos quotes.
    pub fn quoted(mut self, name: &str, value: &str) -> Reply {
        self.add_quoted(name, value);
        self
    }

    pub fn add_quoted(&mut self, name: &str, value: &str) {
        let lower = name.to_ascii_lowercase();
        let encode = ["x-account-", "x-container-", "x-object-", "content-"].iter().any(|p| lower.starts_with(p));
        let (name, value) =
            if encode { (quote_path(name), quote_header_value(value)) } else { (name.to_string(), value.to_string()) };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            self.headers.append(n, v);
        }
    }

    /// A header sent as is (ASCII the server made itself).
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Reply {
        self.add_header(name, value);
        self
    }

    pub fn add_header(&mut self, name: &str, value: impl AsRef<str>) {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value.as_ref())) {
            self.headers.insert(n, v);
        }
    }

    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    pub fn body(self, body: Body) -> Response<Body> {
        let mut r = Response::new(body);
        *r.status_mut() = self.status;
        *r.headers_mut() = self.headers;
        r
    }

    pub fn empty(self) -> Response<Body> {
        self.body(Body::empty())
    }

    pub fn json(self, v: &serde_json::Value) -> Response<Body> {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        self.header(header::CONTENT_TYPE.as_str(), "application/json; charset=UTF-8").body(Body::from(bytes))
    }

    pub fn json_bytes(self, bytes: Vec<u8>) -> Response<Body> {
        self.header(header::CONTENT_TYPE.as_str(), "application/json; charset=UTF-8").body(Body::from(bytes))
    }

    pub fn text(self, s: String) -> Response<Body> {
        self.header(header::CONTENT_TYPE.as_str(), "text/plain; charset=UTF-8").body(Body::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_keys_are_canonical() {
        assert_eq!(canonical_meta_key("my_key"), "My-Key");
        assert_eq!(canonical_meta_key("COLOR"), "Color");
        assert_eq!(canonical_meta_key("a-b_c"), "A-B-C");
        assert_eq!(canonical_meta_key("ελλάδα"), "Ελλάδα");
    }

    #[test]
    fn header_values_quote_like_pithos() {
        assert_eq!(quote_header_value("read=a,b; write=c"), "read=a,b; write=c");
        assert_eq!(quote_header_value("100%"), "100%25");
        assert_eq!(quote_header_value("ά"), "%CE%AC");
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(1484388123.9), "Sat, 14 Jan 2017 10:02:03 GMT");
        assert_eq!(parse_http_date("Sat, 14 Jan 2017 10:02:03 GMT"), Some(1484388123.0));
        assert_eq!(parse_http_date("1484388123.42"), None);
        assert_eq!(iso_date(1484388123.0), "2017-01-14T10:02:03.000000+00:00");
        assert_eq!(iso_date(1484388123.123456), "2017-01-14T10:02:03.123456+00:00");
        assert_eq!(plain_date(1484388123.5), "2017-01-14 10:02:03");
        assert_eq!(epoch_string(1_484_388_123.123_456), "1484388123.123456");
        assert_eq!(epoch_string(1484388123.0), "1484388123.0");
        assert_eq!(parse_iso_date("2017-01-14T10:02:03+00:00"), Some(1484388123.0));
        assert_eq!(parse_iso_date("2017-01-14T10:02:03.5"), Some(1484388123.5));
    }

    #[test]
    fn query_flags_by_presence() {
        let q = Query::parse(Some("update&shared=None&hashmap=True&until=1.5&limit=3&prefix=a%2Fb"));
        assert!(q.has("update") && q.has("shared") && q.has("hashmap"));
        assert_eq!(q.int("until"), None);
        assert_eq!(q.int("limit"), Some(3));
        assert_eq!(q.get("prefix"), Some("a/b"));
    }
}
