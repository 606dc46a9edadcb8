//! `POST /servers`: the request checked as Synnefo checks it (personality,
//! user data, password, key names, metadata, tags, networks), then the new
//! server, in BUILD, with its password said once and kept nowhere. The
//! personality (files such as `/root/.ssh/authorized_keys`) is recorded with
//! the server, since there is no machine to write it into.

use super::flavors::Flavor;
use super::metadata::{server_metadata, too_much_metadata, MAX_METADATA};
use super::network::networks;
use super::password::{is_strong, random_password};
use super::server::{Server, ACTIVE, BUILD, NAME_LENGTH};
use super::store::{insert_server, live_servers};
use super::tags::tag_list;
use super::{over_limit, MAX_SERVERS};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::images as registry;
use crate::cloud::users::User;
use crate::cloud::wire::{now, Reply as Out};
use crate::cloud::{json_request, Call, Cloud};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const MAX_PERSONALITY: usize = 5;
const MAX_PERSONALITY_SIZE: usize = 10240;

/// A `POST /servers` request, checked.
struct NewServer {
    name: String,
    image: String,
    flavor: &'static Flavor,
    metadata: BTreeMap<String, String>,
    tags: Vec<String>,
    networks: Vec<String>,
    key_names: Vec<String>,
    /// The files to inject, as sent (checked): the local cloud records them
    /// where a real one hands them to the image's deployment.
    personality: Vec<Value>,
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
        Ok(NewServer {
            name: name.to_string(),
            image,
            flavor,
            metadata,
            tags,
            networks,
            key_names,
            personality,
            password,
            project,
        })
    }
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

pub(super) async fn create_server(cloud: &Cloud, user: &User, call: Call) -> Reply {
    let req = json_request(&call.headers, call.body).await?;
    let mut new = NewServer::parse(&req, user)?;
    let password = std::mem::take(&mut new.password);
    let now = now();
    let build_seconds = cloud.build_seconds;
    let owner = user.uuid.clone();
    let server = cloud
        .db
        .write(move |tx| {
            registry::visible_image(tx, &owner, &new.image)?;
            if live_servers(tx, &owner)? >= MAX_SERVERS {
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
            server.set_personality(&new.personality);
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
}
