//! Who may do what with another account's objects: sharing entries (user
//! UUIDs, `owner:group`, `*`), inherited from the closest directory object.

use super::model::{self, Container, Sharing};
use crate::cloud::fault::Fault;
use rusqlite::Connection;
use std::collections::HashMap;

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

/// Resolves sharing entries for one caller, caching group look-ups.
pub struct Resolver<'a> {
    conn: &'a Connection,
    user: &'a str,
    groups: HashMap<String, std::collections::BTreeMap<String, Vec<String>>>,
}

impl<'a> Resolver<'a> {
    pub fn new(conn: &'a Connection, user: &'a str) -> Resolver<'a> {
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

    /// The caller's access to `name` in `c`: owner, or the closest sharing entry
    /// on the object itself or on an ancestor directory object.
    pub fn object(&mut self, c: &Container, name: &str) -> Result<Option<Grant>, Fault> {
        if c.account == self.user {
            return Ok(Some(Grant { perm: Perm::Owner, shared_by: None }));
        }
        let mut path = name;
        let mut first = true;
        loop {
            if let Some(s) = model::sharing(self.conn, c.id, path)? {
                let is_dir = first || model::current(self.conn, c.id, path)?.is_some_and(|v| v.is_directory());
                if is_dir {
                    let shared_by = (!first).then(|| format!("{}/{}/{}", c.account, c.name, path));
                    return Ok(self.granted(&s)?.map(|perm| Grant { perm, shared_by }));
                }
            }
            first = false;
            match path.rfind('/') {
                Some(i) => path = &path[..i],
                None => return Ok(None),
            }
        }
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
}

/// Whether `name` is visible through one of `paths` (itself, or under a shared
/// directory).
pub fn visible_through(paths: &[(String, Perm)], name: &str) -> bool {
    paths.iter().any(|(p, _)| {
        name == p || (name.len() > p.len() && name.starts_with(p.as_str()) && name.as_bytes()[p.len()] == b'/')
    })
}
