//! Cyclades compute (OpenStack Compute v2 with Synnefo extensions): servers,
//! flavors, and the compute view of Plankton images.
//!
//! What takes time on a real cloud (BUILD → ACTIVE, REBOOT → ACTIVE,
//! RESIZE → STOPPED) happens lazily: a row keeps the status it is heading to
//! (`next_status`) and when it gets there (`transition_at`), and every read
//! reports the server as of now, so no background task runs.
//!
//! Like Synnefo's VirtualMachineTag table, the `tags` column holds namespaced
//! tags: the user's under `cyclades:user:`, and server state that the API
//! reports elsewhere (network attachment, firewall profile, rescue mode, key
//! names) under `cyclades:system:`.

use super::fault::{Fault, Reply};
use super::images::{self, is_image_id, Image, Properties, AVAILABLE};
use super::users::User;
use super::wire::{iso_date, now, parse_iso_date, Query, Reply as Out};
use super::{json_request, Call, Cloud, COMPUTE_PATH, IMAGE_PATH};
use axum::http::{Method, StatusCode};
use rand::distr::{Alphanumeric, SampleString};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Servers a user may have at once (reported as the `cyclades.vm` quota).
pub const MAX_SERVERS: u64 = 100;

// Limits of Synnefo's default settings and database columns.
const MAX_METADATA: usize = 10;
const META_KEY_LENGTH: usize = 50;
const META_VALUE_LENGTH: usize = 500;
const MAX_TAGS: usize = 50;
const TAG_LENGTH: usize = 60;
const NAME_LENGTH: usize = 255;
const MAX_PERSONALITY: usize = 5;
const MAX_PERSONALITY_SIZE: usize = 10240;

/// The network every server joins unless its creation says otherwise.
const NETWORK: &str = "1";
const USER_TAG: &str = "cyclades:user:";
const SYSTEM_TAG: &str = "cyclades:system:";
const FIREWALL_PROFILES: [&str; 3] = ["ENABLED", "DISABLED", "PROTECTED"];

const BUILD: &str = "BUILD";
const ACTIVE: &str = "ACTIVE";
const STOPPED: &str = "STOPPED";
const REBOOT: &str = "REBOOT";
const RESIZE: &str = "RESIZE";
const DELETED: &str = "DELETED";

/// `{COMPUTE}/…` (COMPUTE = `/cyclades/compute/v2.0`).
pub async fn handle(cloud: &Cloud, call: Call) -> Reply {
    let user = call.user()?;
    let path = api_path(&call.path);
    // Four parts at most: a metadata key or tag (the last part) may hold `/`.
    let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.splitn(4, '/').collect() };
    match parts.as_slice() {
        [] => version(cloud, &call.method),
        ["servers", rest @ ..] => servers(cloud, &user, rest, call).await,
        ["flavors", rest @ ..] => flavors(cloud, &call.method, &call.query, rest),
        ["images", rest @ ..] => images(cloud, &user, rest, call).await,
        _ => Err(Fault::endpoint_not_found()),
    }
}

/// The path without slashes around it nor a `.json` suffix.
fn api_path(path: &str) -> String {
    let p = path.trim_matches('/');
    p.strip_suffix(".json").unwrap_or(p).trim_end_matches('/').to_string()
}

fn version(cloud: &Cloud, method: &Method) -> Reply {
    if method != Method::GET {
        return Err(Fault::not_allowed("GET"));
    }
    ok(json!({"version": {
        "id": "v2.0",
        "status": "CURRENT",
        "updated": "2011-01-21T11:33:21+00:00",
        "links": [{"rel": "self", "href": compute_url(cloud, "/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute.v2+json"}],
    }}))
}

fn ok(v: Value) -> Reply {
    Ok(Out::new(StatusCode::OK).json(&v))
}

fn status_only(status: StatusCode) -> Reply {
    Ok(Out::new(status).empty())
}

fn compute_url(cloud: &Cloud, rest: &str) -> String {
    format!("{}{}{}", cloud.base_url, COMPUTE_PATH, rest)
}

fn links(href: String) -> Value {
    json!([{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}])
}

fn image_links(cloud: &Cloud, id: &str) -> Value {
    let href = compute_url(cloud, &format!("/images/{id}"));
    json!([
        {"rel": "self", "href": href},
        {"rel": "bookmark", "href": href},
        {"rel": "alternate", "href": format!("{}{}/images/{}", cloud.base_url, IMAGE_PATH, id)},
    ])
}

fn over_limit(msg: impl Into<String>) -> Fault {
    Fault::new(StatusCode::PAYLOAD_TOO_LARGE, "overLimit", msg)
}

// ---------- request bodies ----------

/// A required attribute of a request object (Synnefo's `get_attribute`).
fn attribute<'a>(v: &'a Value, name: &str) -> Result<&'a Value, Fault> {
    match v.get(name) {
        None | Some(Value::Null) => Err(Fault::bad_request(format!("Malformed request. Missing attribute '{name}'."))),
        Some(found) => Ok(found),
    }
}

fn invalid_field(name: &str) -> Fault {
    Fault::bad_request(format!("Malformed request. Invalid '{name}' field"))
}

fn string_attribute<'a>(v: &'a Value, name: &str) -> Result<&'a str, Fault> {
    attribute(v, name)?.as_str().ok_or_else(|| invalid_field(name))
}

/// Metadata values are strings; numbers are taken as their text.
fn meta_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Server metadata from a request, checked against Synnefo's column sizes.
fn server_metadata(m: &Map<String, Value>) -> Result<BTreeMap<String, String>, Fault> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let v = meta_text(v).ok_or_else(|| Fault::bad_request("Malformed Request. Invalid metadata."))?;
        if k.chars().count() > META_KEY_LENGTH {
            return Err(Fault::bad_request("Malformed Request. Metadata key is too long"));
        }
        if v.chars().count() > META_VALUE_LENGTH {
            return Err(Fault::bad_request("Malformed Request. Metadata value is too long"));
        }
        out.insert(k.clone(), v);
    }
    Ok(out)
}

fn too_much_metadata() -> Fault {
    Fault::bad_request(format!("Virtual Machines cannot have more than {MAX_METADATA} metadata items"))
}

fn check_tag(tag: &str) -> Result<(), Fault> {
    if tag.is_empty() {
        return Err(Fault::bad_request("Malformed Request. Tag cannot be empty"));
    }
    if tag.contains(['/', ',']) {
        return Err(Fault::bad_request("Tag cannot contain '/' or ','"));
    }
    if tag.chars().count() > TAG_LENGTH {
        return Err(Fault::bad_request("Malformed Request. Tag is too long"));
    }
    Ok(())
}

fn too_many_tags() -> Fault {
    Fault::bad_request(format!("Virtual Machines cannot have more than {MAX_TAGS} tags"))
}

/// A list of user tags from a request, checked and without duplicates.
fn tag_list(v: &Value) -> Result<Vec<String>, Fault> {
    let items = v.as_array().ok_or_else(|| invalid_field("tags"))?;
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let tag = item.as_str().ok_or_else(|| Fault::bad_request("Malformed Request. Invalid tag."))?;
        check_tag(tag)?;
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(tags)
}

/// Decoded length of standard padded base64 (what Synnefo's BASE64_REGEXP
/// accepts), or None when `s` is not such base64.
fn base64_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    let data = &b[..b.len() - pad];
    let valid = pad <= 2 && data.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/');
    valid.then(|| b.len() / 4 * 3 - pad)
}

fn verify_personality(items: &[Value]) -> Result<(), Fault> {
    if items.len() > MAX_PERSONALITY {
        return Err(over_limit("Maximum number of personalities exceeded"));
    }
    let malformed = || Fault::bad_request("Malformed personality in request");
    for p in items {
        let p = p.as_object().ok_or_else(malformed)?;
        if p.keys().any(|k| !["contents", "group", "mode", "owner", "path"].contains(&k.as_str())) {
            return Err(malformed());
        }
        let contents = p.get("contents").and_then(Value::as_str).ok_or_else(malformed)?;
        if contents.len() > MAX_PERSONALITY_SIZE * 4 / 3 + 4 {
            return Err(over_limit("Maximum size of personality exceeded"));
        }
        if base64_len(contents).ok_or_else(malformed)? > MAX_PERSONALITY_SIZE {
            return Err(over_limit("Maximum size of personality exceeded"));
        }
        if p.get("mode").is_some_and(|m| !m.is_u64()) || p.get("path").is_some_and(|v| !v.is_string()) {
            return Err(malformed());
        }
    }
    Ok(())
}

/// Synnefo's rule: at least 10 characters with upper case, lower case and digits.
fn is_strong(password: &str) -> bool {
    password.chars().count() >= 10
        && password.chars().any(char::is_uppercase)
        && password.chars().any(char::is_lowercase)
        && password.chars().any(|c| c.is_ascii_digit())
}

fn random_password() -> String {
    let mut rng = rand::rng();
    for _ in 0..64 {
        let candidate = Alphanumeric.sample_string(&mut rng, 10);
        if is_strong(&candidate) {
            return candidate;
        }
    }
    format!("{}aA1", Alphanumeric.sample_string(&mut rng, 7))
}

/// `changes-since`: None when absent; 400 when malformed or in the future.
fn changes_since(query: &Query) -> Result<Option<f64>, Fault> {
    let Some(raw) = query.value("changes-since") else { return Ok(None) };
    let since = parse_iso_date(raw).ok_or_else(|| Fault::bad_request("Invalid changes-since parameter."))?;
    if since > now() {
        return Err(Fault::bad_request("changes-since value set in the future."));
    }
    Ok(Some(since))
}

// ---------- flavors ----------

/// A built-in flavor; every user may use every one of them.
#[derive(Debug)]
struct Flavor {
    id: i64,
    vcpus: u32,
    ram: u32,
    disk: u32,
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
    fn name(&self) -> String {
        format!("C{}R{}D{}drbd", self.vcpus, self.ram, self.disk)
    }

    fn by_id(id: i64) -> Option<&'static Flavor> {
        FLAVORS.iter().find(|f| f.id == id)
    }

    /// A `flavorRef` (number or numeric string): 400 when malformed, 404 when unknown.
    fn by_ref(v: &Value) -> Result<&'static Flavor, Fault> {
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

/// A JSON value as Python would print it in an error message.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flavors(cloud: &Cloud, method: &Method, query: &Query, rest: &[&str]) -> Reply {
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

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

// ---------- servers: storage ----------

#[derive(Debug, Clone)]
struct Server {
    id: i64,
    owner: String,
    name: String,
    flavor: i64,
    image: String,
    status: String,
    next_status: String,
    transition_at: f64,
    metadata: BTreeMap<String, String>,
    tags: Vec<String>,
    project: String,
    created: f64,
    updated: f64,
    deleted: bool,
}

const SERVER_COLUMNS: &str =
    "id, owner, name, flavor, image, status, next_status, transition_at, metadata, tags, project, created, updated, deleted";

fn server_from_row(r: &Row) -> rusqlite::Result<Server> {
    Ok(Server {
        id: r.get(0)?,
        owner: r.get(1)?,
        name: r.get(2)?,
        flavor: r.get(3)?,
        image: r.get(4)?,
        status: r.get(5)?,
        next_status: r.get(6)?,
        transition_at: r.get(7)?,
        metadata: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
        tags: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
        project: r.get(10)?,
        created: r.get(11)?,
        updated: r.get(12)?,
        deleted: r.get::<_, i64>(13)? != 0,
    })
}

fn to_json_text<T: serde::Serialize>(v: &T, empty: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| empty.to_string())
}

/// A server of `owner`; someone else's is as missing as one never made.
fn server_of(conn: &Connection, owner: &str, id: i64) -> Result<Server, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {SERVER_COLUMNS} FROM servers WHERE id = ?1 AND owner = ?2"))?;
    stmt.query_row(params![id, owner], server_from_row).optional()?.ok_or_else(|| Fault::not_found("Server not found."))
}

fn servers_of(conn: &Connection, owner: &str) -> Result<Vec<Server>, Fault> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {SERVER_COLUMNS} FROM servers WHERE owner = ?1 ORDER BY id"))?;
    let rows = stmt.query_map([owner], server_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn insert_server(conn: &Connection, s: &Server) -> Result<i64, Fault> {
    conn.execute(
        "INSERT INTO servers (owner, name, flavor, image, status, next_status, transition_at, metadata, tags,
                              project, created, updated, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            s.owner,
            s.name,
            s.flavor,
            s.image,
            s.status,
            s.next_status,
            s.transition_at,
            to_json_text(&s.metadata, "{}"),
            to_json_text(&s.tags, "[]"),
            s.project,
            s.created,
            s.updated,
            s.deleted
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

fn save_server(conn: &Connection, s: &Server) -> Result<(), Fault> {
    conn.execute(
        "UPDATE servers SET name = ?2, flavor = ?3, image = ?4, status = ?5, next_status = ?6, transition_at = ?7,
                            metadata = ?8, tags = ?9, project = ?10, updated = ?11, deleted = ?12
         WHERE id = ?1",
        params![
            s.id,
            s.name,
            s.flavor,
            s.image,
            s.status,
            s.next_status,
            s.transition_at,
            to_json_text(&s.metadata, "{}"),
            to_json_text(&s.tags, "[]"),
            s.project,
            s.updated,
            s.deleted
        ],
    )?;
    Ok(())
}

/// Wipes the server passwords an earlier version kept in the database in
/// clear: the freed bytes are zeroed (`secure_delete`) and the write-ahead
/// log, which still holds the old pages, is checkpointed and truncated. Runs
/// at start-up on a connection of its own, before anything else uses the file.
pub fn forget_stored_passwords(db_file: &std::path::Path) -> Result<(), Fault> {
    let conn = Connection::open(db_file)?;
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM servers WHERE admin_pass <> ''", [], |r| r.get(0))?;
    if stored > 0 {
        conn.execute_batch("PRAGMA secure_delete = ON; UPDATE servers SET admin_pass = '' WHERE admin_pass <> '';")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

// ---------- servers: state ----------

/// What a request asks a server to do, for the state checks of Synnefo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Stop,
    Reboot,
    Resize,
    Firewall,
    Reassign,
    Rescue,
    Unrescue,
    Destroy,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Start => "START",
            Action::Stop => "STOP",
            Action::Reboot => "REBOOT",
            Action::Resize => "RESIZE",
            Action::Firewall => "SET_FIREWALL_PROFILE",
            Action::Reassign => "REASSIGN",
            Action::Rescue => "RESCUE",
            Action::Unrescue => "UNRESCUE",
            Action::Destroy => "DESTROY",
        }
    }

    /// The status the server must be in, when the action cares.
    fn needs(self) -> Option<&'static str> {
        match self {
            Action::Start | Action::Resize | Action::Rescue | Action::Unrescue => Some(STOPPED),
            Action::Stop | Action::Reboot => Some(ACTIVE),
            _ => None,
        }
    }
}

impl Server {
    /// The server as of `now`: a transition whose time has come has happened.
    fn settled(mut self, now: f64) -> Server {
        if !self.next_status.is_empty() && now >= self.transition_at {
            self.status = std::mem::take(&mut self.next_status);
            self.updated = self.updated.max(self.transition_at);
        }
        self
    }

    /// The transitional status the server is in, if any.
    fn pending(&self) -> Option<&str> {
        (!self.next_status.is_empty()).then_some(self.status.as_str())
    }

    fn task_state(&self) -> &'static str {
        match self.pending() {
            Some(BUILD) => "BUILDING",
            Some(REBOOT) => "REBOOTING",
            Some(RESIZE) => "RESIZING",
            _ => "",
        }
    }

    fn progress(&self, now: f64, build_seconds: f64) -> u64 {
        if self.status != BUILD {
            return 100;
        }
        if build_seconds <= 0.0 {
            return 0;
        }
        let started = self.transition_at - build_seconds;
        ((now - started) / build_seconds * 100.0).clamp(0.0, 99.0) as u64
    }

    /// Enters `through` now and reaches `to` after `seconds`.
    fn transition(&mut self, now: f64, through: &str, to: &str, seconds: f64) {
        self.status = through.to_string();
        self.next_status = to.to_string();
        self.transition_at = now + seconds.max(0.0);
        self.updated = now;
    }

    fn set_status(&mut self, status: &str, now: f64) {
        self.status = status.to_string();
        self.next_status.clear();
        self.updated = now;
    }

    /// Synnefo's checks before an action (validate_server_action).
    fn check(&self, action: Action) -> Result<(), Fault> {
        if self.deleted {
            return Err(Fault::bad_request(format!("Server '{}' has been deleted.", self.id)));
        }
        if action == Action::Destroy {
            return Ok(());
        }
        if let Some(task) = self.pending() {
            if task == BUILD {
                return Err(Fault::build_in_progress(format!("Server '{}' is being built.", self.id)));
            }
            return Err(Fault::bad_request(format!(
                "Cannot perform '{}' action while there is a pending '{task}'.",
                action.name()
            )));
        }
        if action == Action::Reassign {
            return Ok(());
        }
        if action.needs().is_some_and(|s| s != self.status) {
            return Err(Fault::bad_request(format!(
                "Cannot perform '{}' action while server is in '{}' state.",
                action.name(),
                self.status
            )));
        }
        match action {
            Action::Rescue if self.in_rescue() => Err(Fault::bad_request(format!(
                "Cannot perform '{}' action while server is in rescue mode.",
                action.name()
            ))),
            Action::Unrescue if !self.in_rescue() => Err(Fault::bad_request(format!(
                "Cannot perform '{}' action while server is not in rescue mode.",
                action.name()
            ))),
            _ => Ok(()),
        }
    }

    /// Changes of name and metadata only need the server not to be deleted.
    fn check_live(&self) -> Result<(), Fault> {
        if self.deleted {
            return Err(Fault::bad_request("Server has been deleted."));
        }
        Ok(())
    }

    fn user_tags(&self) -> Vec<String> {
        self.tags.iter().filter_map(|t| t.strip_prefix(USER_TAG)).map(str::to_string).collect()
    }

    fn set_user_tags(&mut self, tags: &[String]) {
        self.tags.retain(|t| !t.starts_with(USER_TAG));
        self.tags.extend(tags.iter().map(|t| format!("{USER_TAG}{t}")));
    }

    /// Values of one kind of system tag (`cyclades:system:<kind>:<value>`).
    fn system(&self, kind: &str) -> Vec<String> {
        let prefix = format!("{SYSTEM_TAG}{kind}:");
        self.tags.iter().filter_map(|t| t.strip_prefix(prefix.as_str())).map(str::to_string).collect()
    }

    fn set_system(&mut self, kind: &str, values: &[String]) {
        let prefix = format!("{SYSTEM_TAG}{kind}:");
        self.tags.retain(|t| !t.starts_with(prefix.as_str()));
        self.tags.extend(values.iter().map(|v| format!("{prefix}{v}")));
    }

    fn in_rescue(&self) -> bool {
        !self.system("rescue").is_empty()
    }

    /// The server's one made-up port per network: its id is the server's.
    fn attachments(&self) -> Vec<Value> {
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

    fn summary_json(&self, cloud: &Cloud) -> Value {
        json!({"id": self.id, "name": self.name, "links": links(compute_url(cloud, &format!("/servers/{}", self.id)))})
    }

    fn detail_json(&self, cloud: &Cloud, now: f64) -> Value {
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
        Value::Object(d)
    }
}

/// `addresses`, keyed by network id, from the ports (IPv4 then IPv6 of each).
fn addresses(attachments: &[Value]) -> Value {
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

/// One of the caller's servers, as of now.
async fn load(cloud: &Cloud, user: &User, id: i64) -> Result<Server, Fault> {
    let owner = user.uuid.clone();
    let now = now();
    Ok(cloud.db.read(move |c| server_of(c, &owner, id)).await?.settled(now))
}

/// Applies `change` to one of the caller's servers in one transaction and
/// saves it, pending transition included, unless `change` fails.
async fn modify<T, F>(cloud: &Cloud, user: &User, id: i64, change: F) -> Result<(Server, T), Fault>
where
    T: Send + 'static,
    F: FnOnce(&mut Server, f64) -> Result<T, Fault> + Send + 'static,
{
    let owner = user.uuid.clone();
    let now = now();
    cloud
        .db
        .write(move |tx| {
            let mut server = server_of(tx, &owner, id)?.settled(now);
            let out = change(&mut server, now)?;
            save_server(tx, &server)?;
            Ok((server, out))
        })
        .await
}

// ---------- servers: routes ----------

async fn servers(cloud: &Cloud, user: &User, rest: &[&str], call: Call) -> Reply {
    let method = call.method.clone();
    match rest {
        [] => match method {
            Method::GET => list_servers(cloud, user, &call.query, false).await,
            Method::POST => create_server(cloud, user, call).await,
            _ => Err(Fault::not_allowed("GET, POST")),
        },
        ["detail"] => match method {
            Method::GET => list_servers(cloud, user, &call.query, true).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        [id, more @ ..] => {
            if !is_number(id) {
                return Err(Fault::endpoint_not_found());
            }
            let id = id.parse::<i64>().map_err(|_| Fault::not_found("Server not found."))?;
            server_item(cloud, user, id, more, call).await
        }
    }
}

async fn server_item(cloud: &Cloud, user: &User, id: i64, more: &[&str], call: Call) -> Reply {
    let method = call.method.clone();
    match (more, method) {
        ([], Method::GET) => {
            let s = load(cloud, user, id).await?;
            ok(json!({"server": s.detail_json(cloud, now())}))
        }
        ([], Method::PUT) => rename(cloud, user, id, call).await,
        ([], Method::DELETE) => {
            modify(cloud, user, id, |s, now| {
                s.check(Action::Destroy)?;
                s.deleted = true;
                s.set_status(DELETED, now);
                Ok(())
            })
            .await?;
            status_only(StatusCode::NO_CONTENT)
        }
        ([], _) => Err(Fault::not_allowed("GET, PUT, DELETE")),
        (["action"], Method::POST) => action(cloud, user, id, call).await,
        (["action"], _) => Err(Fault::not_allowed("POST")),
        (["metadata"], Method::GET) => ok(json!({"metadata": load(cloud, user, id).await?.metadata})),
        (["metadata"], Method::POST) => merge_metadata(cloud, user, id, call).await,
        (["metadata"], _) => Err(Fault::not_allowed("GET, POST")),
        (["metadata", key], Method::GET) => {
            let s = load(cloud, user, id).await?;
            let value = s.metadata.get(*key).ok_or_else(|| Fault::not_found("Metadata key not found."))?;
            ok(json!({"meta": {*key: value}}))
        }
        (["metadata", key], Method::PUT) => {
            let key = key.to_string();
            put_metadata_item(cloud, user, id, key, call).await
        }
        (["metadata", key], Method::DELETE) => {
            let key = key.to_string();
            modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                s.metadata.remove(&key).ok_or_else(|| Fault::not_found("Metadata key not found."))?;
                s.updated = now;
                Ok(())
            })
            .await?;
            status_only(StatusCode::NO_CONTENT)
        }
        (["metadata", _], _) => Err(Fault::not_allowed("GET, PUT, DELETE")),
        (["ips"], Method::GET) => {
            let s = load(cloud, user, id).await?;
            let attachments = s.attachments();
            ok(json!({"addresses": addresses(&attachments), "attachments": attachments}))
        }
        (["ips", network], Method::GET) => {
            let s = load(cloud, user, id).await?;
            if *network != NETWORK {
                return Err(Fault::not_found(format!("Network {network} not found")));
            }
            let ports: Vec<Value> =
                s.attachments().into_iter().filter(|p| p.get("network_id") == Some(&json!(network))).collect();
            ok(json!({"network": addresses(&ports)}))
        }
        (["ips"] | ["ips", _], _) => Err(Fault::not_allowed("GET")),
        (["stats"], Method::GET) => {
            let s = load(cloud, user, id).await?;
            let graph = |kind: &str| format!("{}/stats/v1.0/{kind}/snf-{}", cloud.base_url, s.id);
            ok(json!({"stats": {
                "serverRef": s.id, "refresh": 60,
                "cpuBar": graph("cpu-bar"), "cpuTimeSeries": graph("cpu-ts"),
                "netBar": graph("net-bar"), "netTimeSeries": graph("net-ts"),
            }}))
        }
        (["diagnostics"], Method::GET) => {
            load(cloud, user, id).await?;
            ok(json!([]))
        }
        (["stats"] | ["diagnostics"], _) => Err(Fault::not_allowed("GET")),
        // Synnefo keeps a new server's password in a cache for a while; the
        // local cloud keeps it nowhere, so it answers as Synnefo does once the
        // cache has let it go.
        (["password"], Method::GET) => {
            load(cloud, user, id).await?;
            Err(Fault::not_found("No password is kept for this server: it is given once, when the server is created"))
        }
        (["password"], Method::DELETE) => {
            load(cloud, user, id).await?;
            status_only(StatusCode::NO_CONTENT)
        }
        (["password"], _) => Err(Fault::not_allowed("GET, DELETE")),
        (["tags"], m) => tags(cloud, user, id, m, call).await,
        (["tags", tag], m) => {
            let tag = tag.to_string();
            tag_item(cloud, user, id, &tag, m, &call.path).await
        }
        _ => Err(Fault::endpoint_not_found()),
    }
}

async fn list_servers(cloud: &Cloud, user: &User, query: &Query, detail: bool) -> Reply {
    let since = changes_since(query)?;
    let owner = user.uuid.clone();
    let now = now();
    let all = cloud.db.read(move |c| servers_of(c, &owner)).await?;
    // With changes-since, deleted servers are news too.
    let shown: Vec<Server> = all
        .into_iter()
        .map(|s| s.settled(now))
        .filter(|s| match since {
            Some(t) => s.updated >= t,
            None => !s.deleted,
        })
        .collect();
    if since.is_some() && shown.is_empty() {
        return Err(Fault::not_modified());
    }
    let list: Vec<Value> =
        shown.iter().map(|s| if detail { s.detail_json(cloud, now) } else { s.summary_json(cloud) }).collect();
    ok(json!({ "servers": list }))
}

/// A `POST /servers` request, checked.
struct NewServer {
    name: String,
    image: String,
    flavor: &'static Flavor,
    metadata: BTreeMap<String, String>,
    tags: Vec<String>,
    networks: Vec<String>,
    key_names: Vec<String>,
    password: String,
    project: String,
}

impl NewServer {
    fn parse(req: &Value, user: &User) -> Result<NewServer, Fault> {
        let malformed = || Fault::bad_request("Malformed request");
        let server = req.get("server").filter(|s| s.is_object()).ok_or_else(malformed)?;
        let optional = |k: &str| server.get(k).filter(|v| !v.is_null());
        let name = server.get("name").and_then(Value::as_str).ok_or_else(malformed)?;
        let image = match server.get("imageRef") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(malformed()),
        };
        let flavor_ref = server.get("flavorRef").ok_or_else(malformed)?;
        let metadata = match optional("metadata") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(malformed()),
        };
        let personality = match optional("personality") {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(malformed()),
        };
        let key_names = match optional("SNF:key_names") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().map(|k| k.as_str().map(str::to_string).ok_or_else(malformed)).collect::<Result<_, _>>()?
            }
            Some(_) => return Err(malformed()),
        };
        let key_name = match optional("key_name") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(malformed()),
        };
        let project = match optional("project") {
            None => user.uuid.clone(),
            Some(Value::String(p)) => p.clone(),
            Some(_) => return Err(malformed()),
        };
        let password = match optional("adminPass") {
            None => None,
            Some(Value::String(p)) => Some(p.clone()).filter(|p| !p.is_empty()),
            Some(_) => return Err(malformed()),
        };
        let user_data = match optional("user_data") {
            None => String::new(),
            Some(Value::String(d)) => d.clone(),
            Some(_) => return Err(malformed()),
        };
        if optional("tags").is_some_and(|t| !t.is_array()) || optional("networks").is_some_and(|n| !n.is_array()) {
            return Err(malformed());
        }

        verify_personality(&personality)?;
        if base64_len(&user_data).is_none() {
            return Err(Fault::bad_request("Malformed user_data request"));
        }
        let flavor = Flavor::by_ref(flavor_ref)?;
        let password =
            match password {
                Some(p) if !is_strong(&p) => return Err(Fault::bad_request(
                    "Password not strong (must contain upper case, lower case, digits and be at least 10 characters!",
                )),
                Some(p) => p,
                None => random_password(),
            };
        let key_names = match key_name {
            Some(_) if !key_names.is_empty() => {
                return Err(Fault::bad_request("Only one of the SNF:key_names and key_name can be set"))
            }
            Some(k) => vec![k],
            None => {
                let mut names: Vec<String> = key_names;
                names.sort();
                names.dedup();
                names
            }
        };
        if name.chars().count() > NAME_LENGTH {
            return Err(Fault::bad_request("Server name is too long"));
        }
        if image.is_empty() {
            return Err(Fault::bad_request("You need to specify either an image or a block device mapping."));
        }
        if metadata.len() > MAX_METADATA {
            return Err(too_much_metadata());
        }
        let metadata = server_metadata(&metadata)?;
        let tags = optional("tags").map(tag_list).transpose()?.unwrap_or_default();
        let networks = networks(optional("networks"))?;
        Ok(NewServer { name: name.to_string(), image, flavor, metadata, tags, networks, key_names, password, project })
    }
}

/// The networks a new server joins: the default one unless a list is given
/// (`[]` means none). Only the default network exists here.
fn networks(requested: Option<&Value>) -> Result<Vec<String>, Fault> {
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

async fn create_server(cloud: &Cloud, user: &User, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let mut new = NewServer::parse(&req, user)?;
    let password = std::mem::take(&mut new.password);
    let now = now();
    let build_seconds = cloud.build_seconds;
    let owner = user.uuid.clone();
    let server = cloud
        .db
        .write(move |tx| {
            images::visible_image(tx, &owner, &new.image)?;
            let live: i64 =
                tx.query_row("SELECT COUNT(*) FROM servers WHERE owner = ?1 AND deleted = 0", [&owner], |r| r.get(0))?;
            if live.max(0) as u64 >= MAX_SERVERS {
                return Err(over_limit("Resource Limit Exceeded for your account."));
            }
            let mut server = Server {
                id: 0,
                owner: owner.clone(),
                name: new.name,
                flavor: new.flavor.id,
                image: new.image,
                status: String::new(),
                next_status: String::new(),
                transition_at: 0.0,
                metadata: new.metadata,
                tags: Vec::new(),
                project: new.project,
                created: now,
                updated: now,
                deleted: false,
            };
            server.transition(now, BUILD, ACTIVE, build_seconds);
            server.set_user_tags(&new.tags);
            server.set_system("network", &new.networks);
            server.set_system("key", &new.key_names);
            server.id = insert_server(tx, &server)?;
            Ok(server)
        })
        .await?;
    let mut detail = server.detail_json(cloud, now);
    detail["status"] = BUILD.into();
    // Said once, here, and kept nowhere.
    detail["adminPass"] = password.into();
    Ok(Out::new(StatusCode::ACCEPTED).json(&json!({ "server": detail })))
}

async fn rename(cloud: &Cloud, user: &User, id: i64, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let server = attribute(&req, "server")?;
    if !server.is_object() {
        return Err(invalid_field("server"));
    }
    let name = string_attribute(server, "name")?.to_string();
    modify(cloud, user, id, move |s, now| {
        s.check_live()?;
        if name.chars().count() > NAME_LENGTH {
            return Err(Fault::bad_request("Server name is too long"));
        }
        s.name = name;
        s.updated = now;
        Ok(())
    })
    .await?;
    status_only(StatusCode::NO_CONTENT)
}

async fn merge_metadata(cloud: &Cloud, user: &User, id: i64, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let given = attribute(&req, "metadata")?.as_object().ok_or_else(|| invalid_field("metadata"))?;
    let given = server_metadata(given)?;
    let (server, ()) = modify(cloud, user, id, move |s, now| {
        s.check_live()?;
        let added = given.keys().filter(|k| !s.metadata.contains_key(*k)).count();
        if s.metadata.len() + added > MAX_METADATA {
            return Err(too_much_metadata());
        }
        s.metadata.extend(given);
        s.updated = now;
        Ok(())
    })
    .await?;
    Ok(Out::new(StatusCode::CREATED).json(&json!({"metadata": server.metadata})))
}

async fn put_metadata_item(cloud: &Cloud, user: &User, id: i64, key: String, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let malformed = || Fault::bad_request("Malformed request");
    let meta = req.get("meta").and_then(Value::as_object).filter(|m| m.len() == 1).ok_or_else(malformed)?;
    let value = meta.get(&key).ok_or_else(malformed)?;
    let entry = server_metadata(&Map::from_iter([(key.clone(), value.clone())]))?;
    let (_, value) = modify(cloud, user, id, move |s, now| {
        s.check_live()?;
        if s.metadata.keys().filter(|k| **k != key).count() >= MAX_METADATA {
            return Err(too_much_metadata());
        }
        let value = entry.get(&key).cloned().unwrap_or_default();
        s.metadata.insert(key.clone(), value.clone());
        s.updated = now;
        Ok(json!({ key: value }))
    })
    .await?;
    Ok(Out::new(StatusCode::CREATED).json(&json!({ "meta": value })))
}

async fn tags(cloud: &Cloud, user: &User, id: i64, method: Method, call: Call) -> Reply {
    match method {
        Method::GET => {
            let tags = load(cloud, user, id).await?.user_tags();
            let statuses = vec!["ACTIVE"; tags.len()];
            ok(json!({"tags": tags, "statuses": statuses}))
        }
        Method::PUT => {
            let req = json_request(&call.headers, call.body).await?;
            let tags = tag_list(attribute(&req, "tags")?)?;
            let (server, ()) = modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                s.set_user_tags(&tags);
                s.updated = now;
                Ok(())
            })
            .await?;
            // Tags apply at once here, where Synnefo would first say PENDADD.
            let tags = server.user_tags();
            let statuses = vec!["ACTIVE"; tags.len()];
            ok(json!({"tags": tags, "statuses": statuses}))
        }
        Method::DELETE => {
            let (_, removed) = modify(cloud, user, id, |s, now| {
                s.check_live()?;
                let removed = s.user_tags().len();
                s.set_user_tags(&[]);
                s.updated = now;
                Ok(removed)
            })
            .await?;
            status_only(if removed > 0 { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
        }
        _ => Err(Fault::not_allowed("GET, PUT, DELETE")),
    }
}

/// One tag: existence check (204/404, no body, as Synnefo), add, remove.
async fn tag_item(cloud: &Cloud, user: &User, id: i64, tag: &str, method: Method, path: &str) -> Reply {
    match method {
        Method::GET => {
            let found = load(cloud, user, id).await?.user_tags().iter().any(|t| t == tag);
            if found {
                Ok(Out::new(StatusCode::NO_CONTENT).header("tag-status", "ACTIVE").empty())
            } else {
                status_only(StatusCode::NOT_FOUND)
            }
        }
        Method::PUT => {
            check_tag(tag)?;
            let wanted = tag.to_string();
            let (_, created) = modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                let mut tags = s.user_tags();
                if tags.contains(&wanted) {
                    return Ok(false);
                }
                if tags.len() + 1 > MAX_TAGS {
                    return Err(too_many_tags());
                }
                tags.push(wanted);
                s.set_user_tags(&tags);
                s.updated = now;
                Ok(true)
            })
            .await?;
            if created {
                let location = compute_url(cloud, &format!("/{}", path.trim_start_matches('/')));
                Ok(Out::new(StatusCode::CREATED).header("Location", location).empty())
            } else {
                status_only(StatusCode::NO_CONTENT)
            }
        }
        Method::DELETE => {
            let unwanted = tag.to_string();
            let (_, removed) = modify(cloud, user, id, move |s, now| {
                s.check_live()?;
                let mut tags = s.user_tags();
                let before = tags.len();
                tags.retain(|t| *t != unwanted);
                let removed = tags.len() < before;
                if removed {
                    s.set_user_tags(&tags);
                    s.updated = now;
                }
                Ok(removed)
            })
            .await?;
            status_only(if removed { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
        }
        _ => Err(Fault::not_allowed("GET, PUT, DELETE")),
    }
}

// ---------- server actions ----------

/// `POST /servers/{id}/action`: a body with one key, the action.
async fn action(cloud: &Cloud, user: &User, id: i64, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let Some((name, args)) = req.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return Err(Fault::bad_request("Malformed request"));
    };
    let args = match args {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        _ => return Err(invalid_field(name)),
    };
    let arg = |k: &str| args.get(k).filter(|v| !v.is_null());
    let accepted = || status_only(StatusCode::ACCEPTED);
    match name.as_str() {
        "start" | "os-start" => {
            change_state(cloud, user, id, Action::Start, |s, now| s.set_status(ACTIVE, now)).await?;
            accepted()
        }
        "shutdown" | "os-stop" => {
            change_state(cloud, user, id, Action::Stop, |s, now| s.set_status(STOPPED, now)).await?;
            accepted()
        }
        "reboot" => {
            let kind = arg("type").map(text_of).unwrap_or_else(|| "SOFT".into());
            if kind != "SOFT" && kind != "HARD" {
                return Err(Fault::bad_request("Invalid 'type' attribute."));
            }
            let seconds = cloud.build_seconds;
            change_state(cloud, user, id, Action::Reboot, move |s, now| s.transition(now, REBOOT, ACTIVE, seconds))
                .await?;
            accepted()
        }
        "resize" => {
            let flavor =
                Flavor::by_ref(arg("flavorRef").ok_or_else(|| Fault::bad_request("Missing 'flavorRef' attribute."))?)?;
            resize(cloud, user, id, flavor).await?;
            accepted()
        }
        "console" => console(cloud, user, id, arg("type")).await,
        "os-getVNCConsole" => vnc_console(cloud, user, id, arg("type")).await,
        "os-getSPICEConsole" => Err(Fault::not_implemented("Spice console not implemented")),
        "os-getRDPConsole" => Err(Fault::not_implemented("RDP console not implemented")),
        "firewallProfile" => {
            let profile = arg("profile").ok_or_else(|| Fault::bad_request("Missing 'profile' attribute"))?;
            let nic = arg("nic").ok_or_else(|| Fault::bad_request("Missing 'nic' attribute"))?;
            set_firewall(cloud, user, id, text_of(profile), text_of(nic)).await?;
            accepted()
        }
        "reassign" => {
            if arg("shared_to_project").is_some_and(|v| v.as_bool() != Some(false)) {
                return Err(Fault::forbidden("Sharing resource to the members of the project is not permitted"));
            }
            let project = arg("project").ok_or_else(|| Fault::bad_request("Missing 'project' attribute."))?;
            let project = project.as_str().ok_or_else(|| invalid_field("project"))?.to_string();
            change_state(cloud, user, id, Action::Reassign, move |s, now| {
                s.project = project;
                s.updated = now;
            })
            .await?;
            status_only(StatusCode::OK)
        }
        "rescue" => {
            change_state(cloud, user, id, Action::Rescue, |s, now| {
                s.set_system("rescue", &["on".to_string()]);
                s.updated = now;
            })
            .await?;
            accepted()
        }
        "unrescue" => {
            change_state(cloud, user, id, Action::Unrescue, |s, now| {
                s.set_system("rescue", &[]);
                s.updated = now;
            })
            .await?;
            accepted()
        }
        "suspend" => Err(Fault::forbidden("User is not allowed to suspend his server")),
        "addFloatingIp" | "removeFloatingIp" => {
            let address = arg("address").ok_or_else(|| Fault::bad_request("Missing 'address' attribute"))?;
            load(cloud, user, id).await?.check_live()?;
            Err(Fault::not_found(format!("Floating IP '{}' does not exist", text_of(address))))
        }
        other => Err(Fault::bad_request(format!("Action {other} not supported"))),
    }
}

/// Checks `action` against the server's state, then applies `effect`.
async fn change_state<F>(cloud: &Cloud, user: &User, id: i64, action: Action, effect: F) -> Result<(), Fault>
where
    F: FnOnce(&mut Server, f64) + Send + 'static,
{
    modify(cloud, user, id, move |s, now| {
        s.check(action)?;
        effect(s, now);
        Ok(())
    })
    .await
    .map(|_| ())
}

async fn resize(cloud: &Cloud, user: &User, id: i64, flavor: &'static Flavor) -> Result<(), Fault> {
    let seconds = cloud.build_seconds;
    modify(cloud, user, id, move |s, now| {
        s.check(Action::Resize)?;
        let old = Flavor::by_id(s.flavor);
        if s.flavor == flavor.id {
            return Err(Fault::bad_request(format!("Server '{}' flavor is already '{}'.", s.id, flavor.name())));
        }
        if old.is_some_and(|o| o.disk != flavor.disk) {
            return Err(Fault::bad_request("Cannot change instance's disk size."));
        }
        s.flavor = flavor.id;
        s.transition(now, RESIZE, STOPPED, seconds);
        Ok(())
    })
    .await
    .map(|_| ())
}

async fn set_firewall(cloud: &Cloud, user: &User, id: i64, profile: String, nic: String) -> Result<(), Fault> {
    let nic_id = nic.trim().parse::<i64>().map_err(|_| Fault::bad_request(format!("Invalid NIC ID '{nic}'")))?;
    modify(cloud, user, id, move |s, now| {
        s.check(Action::Firewall)?;
        if nic_id != s.id || s.attachments().is_empty() {
            return Err(Fault::not_found(format!("NIC '{nic_id}' not found")));
        }
        if !FIREWALL_PROFILES.contains(&profile.as_str()) {
            return Err(Fault::bad_request("Unsupported firewall profile"));
        }
        s.set_system("firewall", &[profile]);
        s.updated = now;
        Ok(())
    })
    .await
    .map(|_| ())
}

/// A server whose console may be opened (running, not deleted).
async fn console_server(cloud: &Cloud, user: &User, id: i64) -> Result<Server, Fault> {
    let s = load(cloud, user, id).await?;
    s.check_live()?;
    if s.status != ACTIVE {
        return Err(Fault::bad_request("Server not in ACTIVE state."));
    }
    Ok(s)
}

/// Where a console would be: the cloud's host, a port per server, a fresh password.
fn console_endpoint(cloud: &Cloud, s: &Server) -> (String, i64, String) {
    let rest = cloud.base_url.split_once("://").map_or(cloud.base_url.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.find(']') {
        Some(end) => &authority[..=end],
        None => authority.split(':').next().unwrap_or(authority),
    };
    (host.to_string(), 5900 + s.id.rem_euclid(10000), random_password())
}

async fn console(cloud: &Cloud, user: &User, id: i64, kind: Option<&Value>) -> Reply {
    let kind = kind.map(text_of).ok_or_else(|| Fault::bad_request("No console 'type' specified."))?;
    let supported = ["vnc", "vnc-ws", "vnc-wss"];
    if !supported.contains(&kind.as_str()) {
        return Err(Fault::bad_request(format!("Supported types: {}", supported.join(", "))));
    }
    let s = console_server(cloud, user, id).await?;
    let (host, port, password) = console_endpoint(cloud, &s);
    ok(json!({"console": {"type": kind, "host": host, "port": port, "password": password}}))
}

/// The OpenStack console call: a URL instead of host and port.
async fn vnc_console(cloud: &Cloud, user: &User, id: i64, kind: Option<&Value>) -> Reply {
    let kind = kind.map(text_of).ok_or_else(|| Fault::bad_request("No console 'type' specified."))?;
    if kind != "novnc" && kind != "xvpvnc" {
        return Err(Fault::bad_request("Supported types: novnc, xvpvnc"));
    }
    let s = console_server(cloud, user, id).await?;
    let (host, port, password) = console_endpoint(cloud, &s);
    let url = if kind == "novnc" {
        format!("{}/ui/machines/console?host={host}&port={port}&password={password}", cloud.base_url)
    } else {
        format!("{host}:{port}?password={password}")
    };
    ok(json!({"console": {"type": kind, "url": url}}))
}

// ---------- images (compute view) ----------

/// The status the compute API shows for an image.
fn compute_status(image: &Image) -> &'static str {
    match image.status.to_ascii_uppercase().as_str() {
        AVAILABLE => "ACTIVE",
        "UNAVAILABLE" => "SAVING",
        "ERROR" => "ERROR",
        "DELETED" => "DELETED",
        _ => "UNKNOWN",
    }
}

fn image_json(cloud: &Cloud, image: &Image, detail: bool) -> Value {
    let mut d = Map::new();
    d.insert("id".into(), image.id.clone().into());
    d.insert("name".into(), image.name.clone().into());
    d.insert("links".into(), image_links(cloud, &image.id));
    if detail {
        let status = compute_status(image);
        // Plankton dates have seconds only; so do the compute ones made from them.
        d.insert("updated".into(), iso_date(image.updated.floor()).into());
        d.insert("created".into(), iso_date(image.created.floor()).into());
        d.insert("status".into(), status.into());
        d.insert("progress".into(), (if status == "ACTIVE" { 100 } else { 0 }).into());
        d.insert("user_id".into(), image.owner.clone().into());
        d.insert("tenant_id".into(), image.owner.clone().into());
        d.insert("public".into(), image.is_public.into());
        d.insert("metadata".into(), json!(image.properties));
        d.insert("is_snapshot".into(), image.is_snapshot.into());
    }
    Value::Object(d)
}

async fn images(cloud: &Cloud, user: &User, rest: &[&str], call: Call) -> Reply {
    let method = call.method.clone();
    match rest {
        [] => match method {
            Method::GET => list_images(cloud, user, &call.query, false).await,
            Method::POST => Err(Fault::not_implemented("Not supported.")),
            _ => Err(Fault::not_allowed("GET, POST")),
        },
        ["detail"] => match method {
            Method::GET => list_images(cloud, user, &call.query, true).await,
            _ => Err(Fault::not_allowed("GET")),
        },
        [id, more @ ..] if is_image_id(id) => {
            let id = id.to_string();
            match (more, method) {
                ([], Method::GET) => {
                    let image = visible_image(cloud, user, &id).await?;
                    ok(json!({"image": image_json(cloud, &image, true)}))
                }
                ([], Method::DELETE) => {
                    let owner = user.uuid.clone();
                    cloud
                        .db
                        .write(move |tx| {
                            images::owned_image(tx, &owner, &id)?;
                            images::unregister(tx, &id)
                        })
                        .await?;
                    status_only(StatusCode::NO_CONTENT)
                }
                ([], _) => Err(Fault::not_allowed("GET, DELETE")),
                (["metadata"], Method::GET) => {
                    ok(json!({"metadata": visible_image(cloud, user, &id).await?.properties}))
                }
                (["metadata"], Method::POST) => {
                    let req = json_request(&call.headers, call.body).await?;
                    let given = req
                        .get("metadata")
                        .and_then(Value::as_object)
                        .ok_or_else(|| Fault::bad_request("Malformed request."))?;
                    let given = image_properties(given)?;
                    let merged = change_properties(cloud, user, id, move |p| p.extend(given)).await?;
                    Ok(Out::new(StatusCode::CREATED).json(&json!({ "metadata": merged })))
                }
                (["metadata"], _) => Err(Fault::not_allowed("GET, POST")),
                (["metadata", key], Method::GET) => {
                    let image = visible_image(cloud, user, &id).await?;
                    let value =
                        image.properties.get(*key).ok_or_else(|| Fault::not_found("Metadata key not found."))?;
                    ok(json!({"meta": {*key: value}}))
                }
                (["metadata", key], Method::PUT) => {
                    let key = key.to_string();
                    let req = json_request(&call.headers, call.body).await?;
                    let malformed = || Fault::bad_request("Malformed request.");
                    let meta =
                        req.get("meta").and_then(Value::as_object).filter(|m| m.len() == 1).ok_or_else(malformed)?;
                    let value = meta_text(meta.get(&key).ok_or_else(malformed)?).ok_or_else(malformed)?;
                    let (k, v) = (key.clone(), value.clone());
                    change_properties(cloud, user, id, move |p| {
                        p.insert(k, v);
                    })
                    .await?;
                    Ok(Out::new(StatusCode::CREATED).json(&json!({"meta": { key: value }})))
                }
                (["metadata", key], Method::DELETE) => {
                    // Plankton drops the key whether or not it was there.
                    let key = key.to_string();
                    change_properties(cloud, user, id, move |p| {
                        p.remove(&key);
                    })
                    .await?;
                    status_only(StatusCode::NO_CONTENT)
                }
                (["metadata", _], _) => Err(Fault::not_allowed("GET, PUT, DELETE")),
                _ => Err(Fault::endpoint_not_found()),
            }
        }
        _ => Err(Fault::endpoint_not_found()),
    }
}

async fn visible_image(cloud: &Cloud, user: &User, id: &str) -> Result<Image, Fault> {
    let (owner, id) = (user.uuid.clone(), id.to_string());
    cloud.db.read(move |c| images::visible_image(c, &owner, &id)).await
}

fn image_properties(m: &Map<String, Value>) -> Result<Properties, Fault> {
    m.iter()
        .map(|(k, v)| meta_text(v).map(|v| (k.clone(), v)).ok_or_else(|| Fault::bad_request("Malformed request.")))
        .collect()
}

/// Changes the properties of one of the caller's images; returns them all.
async fn change_properties<F>(cloud: &Cloud, user: &User, id: String, change: F) -> Result<Properties, Fault>
where
    F: FnOnce(&mut Properties) + Send + 'static,
{
    let owner = user.uuid.clone();
    let now = now();
    cloud
        .db
        .write(move |tx| {
            let mut properties = images::owned_image(tx, &owner, &id)?.properties;
            change(&mut properties);
            images::set_properties(tx, &id, &properties, now)?;
            Ok(properties)
        })
        .await
}

async fn list_images(cloud: &Cloud, user: &User, query: &Query, detail: bool) -> Reply {
    let since = changes_since(query)?;
    let owner = user.uuid.clone();
    let mut images = cloud.db.read(move |c| images::visible_images(c, &owner)).await?;
    if let Some(t) = since {
        images.retain(|i| i.updated.floor() >= t);
        if images.is_empty() {
            return Err(Fault::not_modified());
        }
    }
    images.sort_by(|a, b| a.id.cmp(&b.id));
    let list: Vec<Value> = images.iter().map(|i| image_json(cloud, i, detail)).collect();
    ok(json!({ "images": list }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len(""), Some(0));
        assert_eq!(base64_len("aGk="), Some(2));
        assert_eq!(base64_len("aGVsbG8h"), Some(6));
        assert_eq!(base64_len("aGk"), None);
        assert_eq!(base64_len("a=k="), None);
        assert_eq!(base64_len("a==="), None);
    }

    #[test]
    fn passwords() {
        assert!(is_strong("Abcdefgh12"));
        assert!(!is_strong("abcdefgh12"));
        assert!(!is_strong("Abc12"));
        for _ in 0..20 {
            assert!(is_strong(&random_password()));
        }
    }

    #[test]
    fn image_statuses_as_compute_shows_them() {
        let mut i = Image {
            id: String::new(),
            owner: String::new(),
            name: String::new(),
            location: String::new(),
            size: 0,
            checksum: String::new(),
            disk_format: String::new(),
            container_format: String::new(),
            status: AVAILABLE.into(),
            is_public: false,
            is_snapshot: false,
            description: String::new(),
            properties: Properties::new(),
            created: 0.0,
            updated: 0.0,
        };
        assert_eq!(compute_status(&i), "ACTIVE");
        i.status = "queued".into();
        assert_eq!(compute_status(&i), "UNKNOWN");
    }

    #[test]
    fn paths_lose_suffixes() {
        assert_eq!(api_path("/servers/detail.json"), "servers/detail");
        assert_eq!(api_path("/servers/"), "servers");
        assert_eq!(api_path(""), "");
        assert_eq!(api_path("/flavors.json"), "flavors");
    }

    #[test]
    fn transitions_settle_lazily() {
        let mut s = Server {
            id: 7,
            owner: "u".into(),
            name: "n".into(),
            flavor: 1,
            image: "i".into(),
            status: String::new(),
            next_status: String::new(),
            transition_at: 0.0,
            metadata: BTreeMap::new(),
            tags: Vec::new(),
            project: "u".into(),
            created: 100.0,
            updated: 100.0,
            deleted: false,
        };
        s.transition(100.0, BUILD, ACTIVE, 2.0);
        assert!(s.check(Action::Stop).is_err_and(|f| f.status == StatusCode::CONFLICT));
        let early = s.clone().settled(101.0);
        assert_eq!((early.status.as_str(), early.progress(101.0, 2.0)), (BUILD, 50));
        let late = s.settled(102.0);
        assert_eq!((late.status.as_str(), late.updated, late.task_state()), (ACTIVE, 102.0, ""));
        assert!(late.check(Action::Start).is_err_and(|f| f.status == StatusCode::BAD_REQUEST));
        assert!(late.check(Action::Stop).is_ok());
    }

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
