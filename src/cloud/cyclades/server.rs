//! A server and its life: what takes time on a real cloud (BUILD → ACTIVE,
//! REBOOT → ACTIVE, RESIZE → STOPPED) happens lazily: a server keeps the
//! status it is heading to (`next_status`) and when it gets there
//! (`transition_at`), and every read reports it as of now, so no background
//! task runs. Before an action, Synnefo's checks of the server's state.
//!
//! Like Synnefo's VirtualMachineTag table, `tags` holds namespaced tags: the
//! user's under `cyclades:user:`, and server state that the API reports
//! elsewhere (network attachment, firewall profile, rescue mode, key names,
//! personality files) under `cyclades:system:`.

use crate::cloud::fault::Fault;
use std::collections::BTreeMap;

/// The longest server name.
pub(super) const NAME_LENGTH: usize = 255;

pub(super) const BUILD: &str = "BUILD";
pub(super) const ACTIVE: &str = "ACTIVE";
pub(super) const STOPPED: &str = "STOPPED";
pub(super) const REBOOT: &str = "REBOOT";
pub(super) const RESIZE: &str = "RESIZE";
pub(super) const DELETED: &str = "DELETED";

const USER_TAG: &str = "cyclades:user:";
const SYSTEM_TAG: &str = "cyclades:system:";

#[derive(Debug, Clone)]
pub(super) struct Server {
    pub(super) id: i64,
    pub(super) owner: String,
    pub(super) name: String,
    pub(super) flavor: i64,
    pub(super) image: String,
    pub(super) status: String,
    pub(super) next_status: String,
    pub(super) transition_at: f64,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) tags: Vec<String>,
    pub(super) project: String,
    pub(super) created: f64,
    pub(super) updated: f64,
    pub(super) deleted: bool,
}

/// What a request asks a server to do, for the state checks of Synnefo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
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
    pub(super) fn settled(mut self, now: f64) -> Server {
        if !self.next_status.is_empty() && now >= self.transition_at {
            self.status = std::mem::take(&mut self.next_status);
            self.updated = self.updated.max(self.transition_at);
        }
        self
    }

    /// The transitional status the server is in, if any.
    pub(super) fn pending(&self) -> Option<&str> {
        (!self.next_status.is_empty()).then_some(self.status.as_str())
    }

    pub(super) fn task_state(&self) -> &'static str {
        match self.pending() {
            Some(BUILD) => "BUILDING",
            Some(REBOOT) => "REBOOTING",
            Some(RESIZE) => "RESIZING",
            _ => "",
        }
    }

    pub(super) fn progress(&self, now: f64, build_seconds: f64) -> u64 {
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
    pub(super) fn transition(&mut self, now: f64, through: &str, to: &str, seconds: f64) {
        self.status = through.to_string();
        self.next_status = to.to_string();
        self.transition_at = now + seconds.max(0.0);
        self.updated = now;
    }

    pub(super) fn set_status(&mut self, status: &str, now: f64) {
        self.status = status.to_string();
        self.next_status.clear();
        self.updated = now;
    }

    /// Synnefo's checks before an action (validate_server_action).
    pub(super) fn check(&self, action: Action) -> Result<(), Fault> {
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
    pub(super) fn check_live(&self) -> Result<(), Fault> {
        if self.deleted {
            return Err(Fault::bad_request("Server has been deleted."));
        }
        Ok(())
    }

    // Tags: the user's, and the system's.

    pub(super) fn user_tags(&self) -> Vec<String> {
        self.tags.iter().filter_map(|t| t.strip_prefix(USER_TAG)).map(str::to_string).collect()
    }

    pub(super) fn set_user_tags(&mut self, tags: &[String]) {
        self.tags.retain(|t| !t.starts_with(USER_TAG));
        self.tags.extend(tags.iter().map(|t| format!("{USER_TAG}{t}")));
    }

    /// Values of one kind of system tag (`cyclades:system:<kind>:<value>`).
    pub(super) fn system(&self, kind: &str) -> Vec<String> {
        let prefix = format!("{SYSTEM_TAG}{kind}:");
        self.tags.iter().filter_map(|t| t.strip_prefix(prefix.as_str())).map(str::to_string).collect()
    }

    pub(super) fn set_system(&mut self, kind: &str, values: &[String]) {
        let prefix = format!("{SYSTEM_TAG}{kind}:");
        self.tags.retain(|t| !t.starts_with(prefix.as_str()));
        self.tags.extend(values.iter().map(|v| format!("{prefix}{v}")));
    }

    /// Records the personality files (each a system tag of compact JSON).
    pub(super) fn set_personality(&mut self, files: &[serde_json::Value]) {
        let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        self.set_system("personality", &files);
    }

    /// The personality files the server was created with.
    pub(super) fn personality(&self) -> Vec<serde_json::Value> {
        self.system("personality").iter().filter_map(|f| serde_json::from_str(f).ok()).collect()
    }

    pub(super) fn in_rescue(&self) -> bool {
        !self.system("rescue").is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

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
}
