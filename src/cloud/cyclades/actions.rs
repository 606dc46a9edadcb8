//! `POST /servers/{id}/action`: start, stop, reboot, resize, consoles,
//! firewall profiles, reassignment, rescue.

use super::console::{console, vnc_console};
use super::flavors::Flavor;
use super::request::{invalid_field, text_of};
use super::server::{Action, Server, ACTIVE, REBOOT, RESIZE, STOPPED};
use super::status_only;
use super::store::{load, modify};
use crate::cloud::fault::{Fault, Reply};
use crate::cloud::users::User;
use crate::cloud::{json_request, Call, Cloud};
use axum::http::StatusCode;
use serde_json::{Map, Value};

const FIREWALL_PROFILES: [&str; 3] = ["ENABLED", "DISABLED", "PROTECTED"];

/// `POST /servers/{id}/action`: a body with one key, the action.
pub(super) async fn action(cloud: &Cloud, user: &User, id: i64, call: Call) -> Reply {
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
