//! Who may do what with another account's objects: sharing entries (user
//! UUIDs, `owner:group`, `*`) on the object itself, or inherited from the
//! closest directory object above it. The rules are in the README ("Access
//! rules"); this module is the only place that applies them.

use super::model::{self, Container, Sharing};
use crate::cloud::fault::Fault;
use crate::cloud::sql::{params, Tx};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Perm {
    Read,
    Write,
    Owner,
}

/// A grant on an object, and the path that supplied it when inherited.
#[derive(Debug, Clone)]
pub struct Grant {
    pub perm: Perm,
    pub shared_by: Option<String>,
}

/// One sharing entry as one caller sees it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// What the entry grants the caller; `None` when it names others only.
    granted: Option<Perm>,
    /// Whether the object carrying it is (now) a directory object: only those
    /// pass their entry down to the names under them.
    directory: bool,
    /// Whether an object carries it at all (entries go with their object).
    live: bool,
}

/// The inheritance rule, once: the entry on `name` itself, else the entry of
/// the closest `/`-ancestor that is a directory object. The closest entry wins
/// even when it grants the caller nothing. Returns the permission and, when
/// inherited, the ancestor path.
fn inherit(
    name: &str,
    mut entry_at: impl FnMut(&str) -> Result<Option<Entry>, Fault>,
) -> Result<Option<(Perm, Option<&str>)>, Fault> {
    if let Some(e) = entry_at(name)? {
        return Ok(e.granted.map(|p| (p, None)));
    }
    let mut path = name;
    while let Some(i) = path.rfind('/') {
        path = &path[..i];
        if let Some(e) = entry_at(path)? {
            if e.directory {
                return Ok(e.granted.map(|p| (p, Some(path))));
            }
        }
    }
    Ok(None)
}

fn grant_of(c: &Container, found: Option<(Perm, Option<&str>)>) -> Option<Grant> {
    found.map(|(perm, from)| Grant { perm, shared_by: from.map(|p| format!("{}/{}/{}", c.account, c.name, p)) })
}

/// Resolves sharing entries for one caller, caching group look-ups.
pub struct Resolver<'a> {
    conn: &'a Tx<'a>,
    user: &'a str,
    groups: HashMap<String, BTreeMap<String, Vec<String>>>,
}

impl<'a> Resolver<'a> {
    pub fn new(conn: &'a Tx<'a>, user: &'a str) -> Resolver<'a> {
        Resolver { conn, user, groups: HashMap::new() }
    }

    fn entry_matches(&mut self, entry: &str) -> Result<bool, Fault> {
        if entry == "*" || entry == self.user {
            return Ok(true);
        }
        if let Some((owner, group)) = entry.split_once(':') {
            if !self.groups.contains_key(owner) {
                let account = model::account(self.conn, owner)?;
                self.groups.insert(owner.to_string(), account.groups);
            }
            return Ok(self
                .groups
                .get(owner)
                .and_then(|g| g.get(group))
                .is_some_and(|m| m.iter().any(|u| u == self.user)));
        }
        Ok(false)
    }

    /// What `sharing` grants the caller, if anything.
    pub fn granted(&mut self, sharing: &Sharing) -> Result<Option<Perm>, Fault> {
        for e in &sharing.write {
            if self.entry_matches(e)? {
                return Ok(Some(Perm::Write));
            }
        }
        for e in &sharing.read {
            if self.entry_matches(e)? {
                return Ok(Some(Perm::Read));
            }
        }
        Ok(None)
    }

    /// The caller's access to `name` in `c`, looking up only the entries on
    /// its path (for requests about one object).
    pub fn object(&mut self, c: &Container, name: &str) -> Result<Option<Grant>, Fault> {
        if c.account == self.user {
            return Ok(Some(Grant { perm: Perm::Owner, shared_by: None }));
        }
        let conn = self.conn;
        let found = inherit(name, |path| {
            let Some(s) = model::sharing(conn, c.id, path)? else { return Ok(None) };
            let current = model::current(conn, c.id, path)?;
            Ok(Some(Entry {
                granted: self.granted(&s)?,
                directory: current.as_ref().is_some_and(|v| v.is_directory()),
                live: current.is_some(),
            }))
        })?;
        Ok(grant_of(c, found))
    }

    /// Paths in `c` whose sharing grants the caller something: (path, perm).
    pub fn shared_paths(&mut self, c: &Container) -> Result<Vec<(String, Perm)>, Fault> {
        let mut out = Vec::new();
        for (path, s) in model::container_sharing(self.conn, c.id)? {
            if let Some(p) = self.granted(&s)? {
                out.push((path, p));
            }
        }
        Ok(out)
    }

    /// Every sharing entry of `c` as the caller sees it, loaded once, so that
    /// listings and tree operations resolve thousands of names in memory.
    pub fn container(&mut self, c: &Container) -> Result<ShareMap, Fault> {
        if c.account == self.user {
            return Ok(ShareMap { owner: true, entries: HashMap::new() });
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.name, s.readers, s.writers, v.content_type FROM sharing s
             LEFT JOIN current c ON c.container = s.container AND c.name = s.name
             LEFT JOIN versions v ON v.serial = c.serial
             WHERE s.container = ?1",
        )?;
        let rows = stmt.query_map(params![c.id], |r| {
            Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?, r.get::<Option<String>>(3)?))
        })?;
        let rows = rows.collect::<Result<Vec<_>, _>>()?;
        let mut entries = HashMap::with_capacity(rows.len());
        for (name, readers, writers, content_type) in rows {
            let sharing = Sharing { read: split_entries(&readers), write: split_entries(&writers) };
            let entry = Entry {
                granted: self.granted(&sharing)?,
                directory: content_type.as_deref().is_some_and(model::is_directory_type),
                live: content_type.is_some(),
            };
            entries.insert(name, entry);
        }
        Ok(ShareMap { owner: false, entries })
    }
}

fn split_entries(s: &str) -> Vec<String> {
    s.split(',').filter(|e| !e.is_empty()).map(str::to_string).collect()
}

/// One container's sharing entries as one caller sees them (see
/// [`Resolver::container`]).
pub struct ShareMap {
    owner: bool,
    entries: HashMap<String, Entry>,
}

impl ShareMap {
    /// The caller's access to `name`: the same answer as [`Resolver::object`].
    pub fn grant(&self, c: &Container, name: &str) -> Option<Grant> {
        if self.owner {
            return Some(Grant { perm: Perm::Owner, shared_by: None });
        }
        let found = inherit(name, |path| Ok(self.entries.get(path).copied())).ok().flatten();
        grant_of(c, found)
    }

    /// Whether the caller may read at least one object of the container: an
    /// entry that grants them something sits on a live object (that object is
    /// readable, and every readable object gets its grant from such an entry).
    pub fn reads_anything(&self) -> bool {
        self.owner || self.entries.values().any(|e| e.live && e.granted.is_some())
    }
}

/// Only the owner turns an object into a directory object or back: a
/// directory passes its sharing down to every name under it, so a grantee who
/// could change the type of a shared file would extend their own grant.
pub fn check_type_change(perm: Perm, current: Option<&model::Version>, new_type: &str) -> Result<(), Fault> {
    if perm == Perm::Owner {
        return Ok(());
    }
    if let Some(v) = current {
        if v.is_directory() != model::is_directory_type(new_type) {
            return Err(Fault::forbidden(
                "Only the owner may turn an object into a directory or a directory into an object",
            ));
        }
    }
    Ok(())
}

/// The grant, if it is at least `at_least`; else 403.
pub fn require(grant: Option<Grant>, at_least: Perm) -> Result<Grant, Fault> {
    match grant {
        Some(g) if g.perm >= at_least => Ok(g),
        _ => Err(Fault::forbidden("Not allowed")),
    }
}

/// A grant on an object covers that object's versions (the ones with its
/// UUID), not those of earlier objects that had its name: a grantee of a
/// folder must not read what the owner deleted before sharing it.
pub fn check_history(perm: Perm, current: Option<&model::Version>, version: &model::Version) -> Result<(), Fault> {
    if perm == Perm::Owner || current.is_some_and(|c| c.uuid == version.uuid) {
        return Ok(());
    }
    Err(Fault::not_found("Version does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        super::super::new_container("alice", "c", 0.0)
    }

    fn entry(granted: Option<Perm>, directory: bool) -> Entry {
        Entry { granted, directory, live: true }
    }

    #[test]
    fn closest_entry_wins_and_only_directories_pass_theirs_down() {
        let c = container();
        let entries = HashMap::from([
            ("docs".to_string(), entry(Some(Perm::Read), true)),
            ("docs/closed".to_string(), entry(None, false)),
            ("docs/sub".to_string(), entry(None, true)),
            ("report".to_string(), entry(Some(Perm::Write), false)),
        ]);
        let map = ShareMap { owner: false, entries };
        let perm = |name: &str| map.grant(&c, name).map(|g| g.perm);
        assert_eq!(perm("docs"), Some(Perm::Read));
        assert_eq!(perm("docs/a"), Some(Perm::Read));
        assert_eq!(perm("docs/"), Some(Perm::Read));
        assert_eq!(perm("docs//a"), Some(Perm::Read));
        assert_eq!(map.grant(&c, "docs/a/b").and_then(|g| g.shared_by), Some("alice/c/docs".to_string()));
        assert_eq!(perm("docs/closed"), None, "its own entry leaves the caller out");
        assert_eq!(perm("docs/closed/x"), Some(Perm::Read), "a file's entry is not inherited");
        assert_eq!(perm("docs/sub/x"), None, "the closest directory's entry wins");
        assert_eq!(perm("report"), Some(Perm::Write));
        for other in ["report/x", "report-x", "reports", "doc", "docsx/a", ""] {
            assert_eq!(perm(other), None, "{other}");
        }
        assert!(map.reads_anything());
        let owner = ShareMap { owner: true, entries: HashMap::new() };
        assert_eq!(owner.grant(&c, "anything").map(|g| g.perm), Some(Perm::Owner));
    }

    #[test]
    fn type_changes_are_the_owners() {
        let v = |ct: &str| model::Version {
            serial: 1,
            container: 1,
            name: "x".into(),
            uuid: "u".into(),
            bytes: 0,
            etag: String::new(),
            content_type: ct.into(),
            checksum: String::new(),
            mtime: 0.0,
            modified_by: String::new(),
            meta: model::Meta::new(),
            deleted: false,
        };
        let file = v("text/plain");
        let dir = v("application/directory");
        assert!(check_type_change(Perm::Write, Some(&file), "application/folder").is_err());
        assert!(check_type_change(Perm::Write, Some(&dir), "text/plain").is_err());
        assert!(check_type_change(Perm::Write, Some(&dir), "application/folder; x=y").is_ok());
        assert!(check_type_change(Perm::Write, Some(&file), "text/markdown").is_ok());
        assert!(check_type_change(Perm::Write, None, "application/directory").is_ok());
        assert!(check_type_change(Perm::Owner, Some(&file), "application/directory").is_ok());
    }
}
