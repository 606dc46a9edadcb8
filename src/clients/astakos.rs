//! Astakos, the Synnefo identity service: authentication with the service
//! catalog, user info, uuid ↔ display name catalogs and quotas.
//!
//! Like kamaki's `CachedAstakosClient`, the reply of the token call is kept:
//! the catalog and the user's info are read from it without asking again.
//! Resource representations (the token reply, endpoints, user info, quotas)
//! are `serde_json::Value`, as kamaki returns dicts; name → value catalogs are
//! `BTreeMap<String, String>`.
//!
//! A client may carry endpoint overrides (service type → URL, as a kamakirc
//! cloud's `cyclades_url`/`pithos_url`… give them): `get_endpoint_url`, and
//! so every client made `from_catalog` of it, takes the override instead of
//! the catalog's URL.

use super::error::ClientError;
use super::http::Http;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A client of one Astakos identity endpoint (`…/identity/v2.0`) for one token.
#[derive(Clone, Debug)]
pub struct AstakosClient {
    http: Http,
    /// The last authentication reply (`{"access": …}`), shared by clones.
    access: Arc<Mutex<Option<Arc<Value>>>>,
    /// Lower-cased service type → URL used instead of the catalog's.
    endpoints: Arc<BTreeMap<String, String>>,
}

impl AstakosClient {
    /// `AstakosClient(astakos_base_url, token)`: no request is made yet.
    pub fn new(identity_url: &str, token: &str) -> Result<AstakosClient, ClientError> {
        Ok(AstakosClient::from_http(Http::new(identity_url, Some(token))?))
    }

    /// A client over an existing HTTP core (its pool, counters and token).
    pub fn from_http(http: Http) -> AstakosClient {
        AstakosClient { http, access: Arc::new(Mutex::new(None)), endpoints: Arc::default() }
    }

    /// The same client, with these endpoints (service type → URL) used
    /// instead of the catalog's. The token goes to them as to the catalog's.
    pub fn with_endpoints(self, endpoints: BTreeMap<String, String>) -> AstakosClient {
        let endpoints = endpoints.into_iter().map(|(kind, url)| (kind.to_ascii_lowercase(), url)).collect();
        AstakosClient { endpoints: Arc::new(endpoints), ..self }
    }

    /// The endpoint overrides (lower-cased service type → URL).
    pub fn endpoint_overrides(&self) -> &BTreeMap<String, String> {
        &self.endpoints
    }

    /// The HTTP core, for clients of the catalog's other services to share.
    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn identity_url(&self) -> &str {
        self.http.base_url()
    }

    fn cached(&self) -> Option<Arc<Value>> {
        // A poisoned lock only means another thread panicked mid-assignment of
        // an Option; the value is still whole.
        self.access.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `POST {IDENTITY}/tokens` with the token: the whole reply
    /// (`{"access": {"token", "user", "serviceCatalog"}}`), which is kept for
    /// later calls.
    pub async fn authenticate(&self) -> Result<Arc<Value>, ClientError> {
        let token = self.http.token().ok_or_else(|| ClientError::new("No token to authenticate with"))?;
        let body = json!({"auth": {"token": {"id": token.expose()}}});
        let reply = self.http.request(Method::POST, "tokens").json(&body).ok(&[200]).send().await?;
        let access = reply.json()?;
        if !access.get("access").is_some_and(Value::is_object) {
            return Err(malformed("the token reply has no \"access\" object", &access));
        }
        let access = Arc::new(access);
        *self.access.lock().unwrap_or_else(|e| e.into_inner()) = Some(access.clone());
        Ok(access)
    }

    /// The kept authentication reply, authenticating first if there is none.
    pub async fn access(&self) -> Result<Arc<Value>, ClientError> {
        match self.cached() {
            Some(a) => Ok(a),
            None => self.authenticate().await,
        }
    }

    /// `POST {IDENTITY}/tokens` without credentials: the public service
    /// catalog (`{"access": {"serviceCatalog": […]}}`).
    pub async fn get_endpoints(&self) -> Result<Value, ClientError> {
        self.http.request(Method::POST, "tokens").anonymous().ok(&[200]).send().await?.json()
    }

    /// The service catalog of the authenticated user.
    pub async fn get_services(&self) -> Result<Vec<Value>, ClientError> {
        let access = self.access().await?;
        match access.pointer("/access/serviceCatalog") {
            Some(Value::Array(services)) => Ok(services.clone()),
            _ => Err(malformed("the token reply has no service catalog", &access)),
        }
    }

    /// The one endpoint of the service of `service_type` (case-insensitive),
    /// with `versionId` equal to `version` when given. Like kamaki, exactly
    /// one endpoint must match. This is the catalog's entry: the overrides
    /// (`with_endpoints`) apply to `get_endpoint_url`.
    pub async fn get_service_endpoints(&self, service_type: &str, version: Option<&str>) -> Result<Value, ClientError> {
        let services = self.get_services().await?;
        find_endpoint(&services, service_type, version)
    }

    /// The `publicURL` of the service of `service_type` (`compute`,
    /// `object-store`, `image`, `account`, `identity`…), or the override
    /// this client carries for it (then without asking Astakos).
    pub async fn get_endpoint_url(&self, service_type: &str) -> Result<String, ClientError> {
        if let Some(url) = self.endpoints.get(&service_type.to_ascii_lowercase()) {
            return Ok(url.clone());
        }
        let endpoint = self.get_service_endpoints(service_type, None).await?;
        endpoint
            .get("publicURL")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| malformed(&format!("the {service_type} endpoint has no publicURL"), &endpoint))
    }

    /// An HTTP core for the catalog's service of `service_type`, sharing this
    /// client's pool and token; `default_version` is appended to the URL when
    /// it names none (`/v2.0` for compute…), as kamaki's clients do.
    pub async fn service_http(&self, service_type: &str, default_version: &str) -> Result<Http, ClientError> {
        let url = self.get_endpoint_url(service_type).await?;
        self.http.at(&with_default_version(&url, default_version))
    }

    /// `access.user` of the token reply, plus `default_project` (the token's
    /// tenant), as kamaki 0.17 returns it.
    pub async fn user_info(&self) -> Result<Value, ClientError> {
        let access = self.access().await?;
        let mut user = match access.pointer("/access/user") {
            Some(u @ Value::Object(_)) => u.clone(),
            _ => return Err(malformed("the token reply has no user", &access)),
        };
        if let (Some(project), Value::Object(map)) = (access.pointer("/access/token/tenant/id"), &mut user) {
            map.entry("default_project").or_insert_with(|| project.clone());
        }
        Ok(user)
    }

    /// One attribute of the user's info (`id`, `name`, `roles`…); `uuid` is
    /// taken as `id`. None when the user has no such attribute.
    pub async fn user_term(&self, key: &str) -> Result<Option<Value>, ClientError> {
        let key = if key == "uuid" { "id" } else { key };
        Ok(self.user_info().await?.get(key).cloned())
    }

    /// The seed's `astakos.term('uuid')`: an attribute of the user as text
    /// (non-string values as JSON); an error when the user has none.
    pub async fn term(&self, key: &str) -> Result<String, ClientError> {
        match self.user_term(key).await? {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Null) | None => Err(ClientError::new(format!("The user has no {key:?} attribute"))),
            Some(other) => Ok(other.to_string()),
        }
    }

    /// The account API (`…/account/v1.0`) of the catalog, on the same pool.
    async fn account_http(&self) -> Result<Http, ClientError> {
        let url = self.get_endpoint_url("account").await?;
        self.http.at(&url)
    }

    /// `POST {ACCOUNT}/user_catalogs`: (uuid → name, name → uuid) for what is
    /// known; unknown entries are left out.
    pub async fn post_user_catalogs(
        &self,
        uuids: &[&str],
        names: &[&str],
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>), ClientError> {
        let http = self.account_http().await?;
        let body = json!({"uuids": uuids, "displaynames": names});
        let reply = http.request(Method::POST, "user_catalogs").json(&body).idempotent(true).ok(&[200]).send().await?;
        let v = reply.json()?;
        Ok((string_map(&v, "uuid_catalog")?, string_map(&v, "displayname_catalog")?))
    }

    /// Display names of the users with these UUIDs (unknown ones left out).
    pub async fn get_usernames(&self, uuids: &[&str]) -> Result<BTreeMap<String, String>, ClientError> {
        Ok(self.post_user_catalogs(uuids, &[]).await?.0)
    }

    /// The display name of one user; a 404 `ClientError` when unknown.
    pub async fn get_username(&self, uuid: &str) -> Result<String, ClientError> {
        self.get_usernames(&[uuid])
            .await?
            .remove(uuid)
            .ok_or_else(|| ClientError::with_status(format!("No user with UUID {uuid}"), 404))
    }

    /// UUIDs of the users with these display names (unknown ones left out).
    pub async fn get_uuids(&self, names: &[&str]) -> Result<BTreeMap<String, String>, ClientError> {
        Ok(self.post_user_catalogs(&[], names).await?.1)
    }

    /// The UUID of one user; a 404 `ClientError` when unknown.
    pub async fn get_uuid(&self, name: &str) -> Result<String, ClientError> {
        self.get_uuids(&[name])
            .await?
            .remove(name)
            .ok_or_else(|| ClientError::with_status(format!("No user named {name:?}"), 404))
    }

    /// `GET {ACCOUNT}/quotas`: per project, per resource, limit and usage.
    pub async fn get_quotas(&self) -> Result<Value, ClientError> {
        self.account_http().await?.request(Method::GET, "quotas").ok(&[200]).send().await?.json()
    }

    /// `GET {ACCOUNT}/resources`: the resources quotas are kept for.
    pub async fn get_resources(&self) -> Result<Value, ClientError> {
        self.account_http().await?.request(Method::GET, "resources").ok(&[200]).send().await?.json()
    }
}

/// The one endpoint of `service_type` (and `version`) in a service catalog.
pub fn find_endpoint(services: &[Value], service_type: &str, version: Option<&str>) -> Result<Value, ClientError> {
    let of_type = services
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(service_type)));
    let endpoints: Vec<&Value> = of_type
        .flat_map(|s| s.get("endpoints").and_then(Value::as_array).into_iter().flatten())
        .filter(|e| version.is_none_or(|v| e.get("versionId").and_then(Value::as_str) == Some(v)))
        .collect();
    let which = match version {
        Some(v) => format!("{service_type} (version {v})"),
        None => service_type.to_string(),
    };
    match endpoints.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ClientError::new(format!("No endpoint of service type {which} in the catalog"))),
        many => Err(ClientError::new(format!("{} endpoints of service type {which} in the catalog", many.len()))),
    }
}

/// `url` with `version` (`v2.0`) appended unless it already ends in a
/// version (`/v<digits>[.<digits>]`), as kamaki's clients do.
pub fn with_default_version(url: &str, version: &str) -> String {
    let url = url.trim_end_matches('/');
    let last = url.rsplit('/').next().unwrap_or("");
    let is_version = last.strip_prefix('v').is_some_and(|rest| {
        let mut parts = rest.splitn(2, '.');
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        parts.next().is_some_and(digits) && parts.next().is_none_or(digits)
    });
    if is_version || version.is_empty() {
        url.to_string()
    } else {
        format!("{url}/{}", version.trim_start_matches('/'))
    }
}

/// A `{name: text}` object of a reply; numbers are taken as their text.
fn string_map(v: &Value, key: &str) -> Result<BTreeMap<String, String>, ClientError> {
    let Some(Value::Object(map)) = v.get(key) else {
        return Err(malformed(&format!("the reply has no {key:?} object"), v));
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            _ => Err(malformed(&format!("{key:?} holds a value that is not text"), v)),
        })
        .collect()
}

/// A reply that parsed as JSON but lacks what the protocol promises.
pub(crate) fn malformed(what: &str, v: &Value) -> ClientError {
    let mut text = v.to_string();
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    ClientError::new(format!("Malformed reply: {what}")).detail(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_appended_only_when_missing() {
        assert_eq!(with_default_version("http://h/compute/v2.0", "v2.0"), "http://h/compute/v2.0");
        assert_eq!(with_default_version("http://h/compute/", "v2.0"), "http://h/compute/v2.0");
        assert_eq!(with_default_version("http://h/pithos/object-store/v1", "v1"), "http://h/pithos/object-store/v1");
        assert_eq!(with_default_version("http://h/image/v1.0/", "v1.0"), "http://h/image/v1.0");
        assert_eq!(with_default_version("http://h/vx", "v1"), "http://h/vx/v1");
        assert_eq!(with_default_version("http://h/v1.", "v1"), "http://h/v1./v1");
    }

    #[test]
    fn endpoints_must_be_unique() {
        let catalog = vec![
            json!({"type": "compute", "endpoints": [{"versionId": "v2.0", "publicURL": "http://c"}]}),
            json!({"type": "image", "endpoints": [{"versionId": "v1.0", "publicURL": "http://i1"},
                                                  {"versionId": "v1.1", "publicURL": "http://i2"}]}),
        ];
        assert_eq!(find_endpoint(&catalog, "COMPUTE", None).unwrap()["publicURL"], "http://c");
        assert!(find_endpoint(&catalog, "image", None).is_err());
        assert_eq!(find_endpoint(&catalog, "image", Some("v1.1")).unwrap()["publicURL"], "http://i2");
        assert!(find_endpoint(&catalog, "network", None).unwrap_err().message.contains("No endpoint"));
    }

    #[tokio::test]
    async fn overrides_answer_without_asking_the_catalog() {
        // Nothing listens at this identity URL: only the override can answer.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let astakos = AstakosClient::new(&format!("http://{closed}/identity/v2.0"), "t")
            .unwrap()
            .with_endpoints([("Compute".to_string(), "http://c/compute/v2.0".to_string())].into());
        assert_eq!(astakos.get_endpoint_url("COMPUTE").await.unwrap(), "http://c/compute/v2.0");
        let http = astakos.service_http("compute", "v2.0").await.unwrap();
        assert_eq!(http.base_url(), "http://c/compute/v2.0");
        assert_eq!(astakos.clone().endpoint_overrides().len(), 1);
        assert!(astakos.get_endpoint_url("image").await.is_err());
    }

    #[test]
    fn catalogs_take_text_only() {
        let v = json!({"uuid_catalog": {"u": "alice", "n": 3}});
        assert_eq!(string_map(&v, "uuid_catalog").unwrap()["n"], "3");
        assert!(string_map(&v, "displayname_catalog").is_err());
        assert!(string_map(&json!({"uuid_catalog": {"u": [1]}}), "uuid_catalog").is_err());
    }
}
