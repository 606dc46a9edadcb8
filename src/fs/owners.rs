//! Who owns a file in the mount, and what is recorded on the server.
//!
//! A uid is a number that means something only on the machine that gave it
//! out: uid 1000 on a laptop is nobody (or somebody else) on a server. With
//! the kernel enforcing modes (`default_permissions`), trusting a number
//! recorded elsewhere would lock the account's owner out of their own 0600
//! files, or hand them to whichever local user has that number. So:
//!
//! - Files of the mounting user (the account's owner here, `--uid`/`--gid`)
//!   carry no number at all: they show as whoever mounts the account, on any
//!   machine. So do objects that never had one (kamaki, the web UI).
//! - Files of another local user (only on an `--allow-other` mount) carry
//!   that user's uid/gid and a tag of this machine (`posix-host`: a hash of
//!   its machine id, not the id itself). The numbers are trusted where that
//!   tag matches: on this machine one local user stays out of another's
//!   0600 file. Anywhere else they show as the mounting user.
//! - `--owners all` trusts every recorded number (machines that share one
//!   uid space); `--owners mine` shows everything as the mounting user.

use super::attr::Attr;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Which recorded owners a mount believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Numbers recorded on this machine (the default).
    Local,
    /// Every recorded number, wherever it was recorded.
    All,
    /// None: every file shows as the mounting user.
    Mine,
}

/// The owner rule of one mount.
#[derive(Debug, Clone)]
pub struct Owners {
    /// The account's owner here: files without a trusted number show as theirs.
    pub uid: u32,
    pub gid: u32,
    pub policy: Policy,
    /// This machine's tag, recorded beside the numbers it records.
    pub host: String,
}

impl Owners {
    /// The process's own user and group as the account's owner.
    pub fn current(policy: Policy) -> Owners {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Owners { uid, gid, policy, host: this_machine().to_string() }
    }

    /// Whether the numbers recorded on `a` count here.
    fn trusts(&self, a: &Attr) -> bool {
        match self.policy {
            Policy::All => true,
            Policy::Mine => false,
            Policy::Local => a.host.as_deref() == Some(self.host.as_str()),
        }
    }

    /// The (uid, gid) a node shows.
    pub fn shown(&self, a: &Attr) -> (u32, u32) {
        if !self.trusts(a) {
            return (self.uid, self.gid);
        }
        (a.uid.unwrap_or(self.uid), a.gid.unwrap_or(self.gid))
    }

    /// Records `uid`/`gid` as the owner of `a`: the account owner's numbers
    /// are left out (so they follow the account to any machine), others are
    /// kept with this machine's tag.
    pub fn record(&self, a: &mut Attr, uid: u32, gid: u32) {
        a.uid = (uid != self.uid).then_some(uid);
        a.gid = (gid != self.gid).then_some(gid);
        a.host = (a.uid.is_some() || a.gid.is_some()).then(|| self.host.clone());
    }

    /// chown/chgrp: what the node shows, with the fields given replaced.
    /// (The kernel has already checked who may do it.)
    pub fn chown(&self, a: &mut Attr, uid: Option<u32>, gid: Option<u32>) {
        let (u, g) = self.shown(a);
        self.record(a, uid.unwrap_or(u), gid.unwrap_or(g));
    }
}

/// This machine's tag: a hash of its machine id (or, without one, of its
/// host name). Hashed so the id itself never leaves the machine.
pub fn this_machine() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let id = ["/etc/machine-id", "/var/lib/dbus/machine-id", "/proc/sys/kernel/hostname"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        machine_tag(&id)
    })
}

fn machine_tag(id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"pithosfs posix-host\0");
    h.update(id.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// What `access(2)` asks, by the POSIX rule the kernel applies with
/// `default_permissions`: `mask` is a set of `R_OK`/`W_OK`/`X_OK` (none:
/// existence). Root may read and write anything and execute what has an x
/// bit (or is a folder).
pub fn permits(mode: u32, owner: (u32, u32), is_dir: bool, uid: u32, groups: &[u32], mask: i32) -> bool {
    let want = (mask & (libc::R_OK | libc::W_OK | libc::X_OK)) as u32;
    if uid == 0 {
        return want & libc::X_OK as u32 == 0 || is_dir || mode & 0o111 != 0;
    }
    let bits = if uid == owner.0 {
        (mode >> 6) & 7
    } else if groups.contains(&owner.1) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    bits & want == want
}

/// The groups of process `pid` (its primary group included), from /proc.
pub fn groups_of(pid: u32, gid: u32) -> Vec<u32> {
    let mut out = vec![gid];
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        if let Some(line) = status.lines().find_map(|l| l.strip_prefix("Groups:")) {
            out.extend(line.split_whitespace().filter_map(|g| g.parse::<u32>().ok()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::time::Time;

    fn owners(policy: Policy) -> Owners {
        Owners { uid: 1001, gid: 1001, policy, host: machine_tag("here") }
    }

    #[test]
    fn the_account_owner_is_recorded_as_nobody_in_particular() {
        let o = owners(Policy::Local);
        let mut a = Attr::new_file(Time::EPOCH);
        o.record(&mut a, 1001, 1001);
        assert_eq!((a.uid, a.gid, a.host.as_deref()), (None, None, None));
        // On another machine, mounted by uid 1000: theirs.
        let there = Owners { uid: 1000, gid: 100, policy: Policy::Local, host: machine_tag("there") };
        assert_eq!(there.shown(&a), (1000, 100));
    }

    #[test]
    fn other_local_users_are_kept_here_and_mapped_elsewhere() {
        let o = owners(Policy::Local);
        let mut a = Attr::new_file(Time::EPOCH);
        o.record(&mut a, 2000, 1001);
        assert_eq!((a.uid, a.gid), (Some(2000), None));
        assert_eq!(a.host.as_deref(), Some(o.host.as_str()));
        assert_eq!(o.shown(&a), (2000, 1001));
        let there = Owners { uid: 1000, gid: 100, policy: Policy::Local, host: machine_tag("there") };
        assert_eq!(there.shown(&a), (1000, 100), "a number recorded elsewhere locks nobody out");
        assert_eq!(Owners { policy: Policy::All, ..there.clone() }.shown(&a), (2000, 100));
        assert_eq!(Owners { policy: Policy::Mine, ..o.clone() }.shown(&a), (1001, 1001));
        // Numbers without a tag (kamaki, older mounts, other tools) are foreign.
        let mut bare = Attr::new_file(Time::EPOCH);
        bare.uid = Some(1000);
        bare.gid = Some(1000);
        assert_eq!(o.shown(&bare), (1001, 1001));
    }

    #[test]
    fn chown_starts_from_what_is_shown() {
        let o = owners(Policy::Local);
        let mut a = Attr::new_file(Time::EPOCH);
        a.uid = Some(7);
        a.gid = Some(8);
        a.host = Some(machine_tag("there"));
        o.chown(&mut a, None, Some(50));
        assert_eq!((a.uid, a.gid, a.host.as_deref()), (None, Some(50), Some(o.host.as_str())));
        o.chown(&mut a, Some(1001), Some(1001));
        assert_eq!((a.uid, a.gid, a.host.as_deref()), (None, None, None));
    }

    #[test]
    fn access_follows_the_mode_bits() {
        let (r, w, x) = (libc::R_OK, libc::W_OK, libc::X_OK);
        let own = (1000, 100);
        assert!(permits(0o600, own, false, 1000, &[100], r | w));
        assert!(!permits(0o600, own, false, 1001, &[100], r));
        assert!(permits(0o640, own, false, 1001, &[5, 100], r));
        assert!(!permits(0o640, own, false, 1001, &[5, 100], w));
        assert!(permits(0o604, own, false, 1001, &[5], r));
        assert!(!permits(0o604, own, false, 1001, &[5], x));
        assert!(permits(0o000, own, false, 1001, &[5], libc::F_OK));
        assert!(permits(0o000, own, false, 0, &[0], r | w));
        assert!(!permits(0o644, own, false, 0, &[0], x));
        assert!(permits(0o700, own, true, 0, &[0], x));
        // The owner's bits apply to the owner even when others have more.
        assert!(!permits(0o077, own, false, 1000, &[100], r));
    }

    #[test]
    fn machine_tags_are_stable_and_opaque() {
        assert_eq!(machine_tag("a"), machine_tag("a"));
        assert_ne!(machine_tag("a"), machine_tag("b"));
        assert_eq!(machine_tag("a").len(), 16);
        assert!(!this_machine().is_empty());
    }
}
