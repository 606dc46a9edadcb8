//! Hard links. An object store gives an object one name, so a file with
//! several names is several objects holding the same content: each name is
//! a server-side copy of the first (free on Pithos, which copies the
//! hashmap), and each carries the link group's id (`posix-link`) and how
//! many names the group has (`posix-nlink`). Other clients see ordinary
//! objects.
//!
//! The mount keeps a group consistent: one node (one inode number) for all
//! its names; a write through any name is committed at one and copied to
//! the others; chmod, chown and utimes are written to every name; link and
//! unlink write the new count to every name. The names of a group are known
//! from the links made here, or found again (after a remount) by one
//! search of the container for the group id (`Store::find_by_meta`).

use super::attr::{now, Attr, Kind, LINK_MAX, META_CTIME, META_LINK, META_NLINK};
use super::errno::{errno_of, During, Errno, FsResult, Op};
use super::filesystem::{lock, Fs, Loc};
use super::store::{ObjectMeta, Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// The names of one link group: (container, object name).
pub(super) type Members = BTreeSet<(String, String)>;

/// A new group id: 128 bits, hex (unique enough: the time, the process and
/// the first name, hashed).
fn new_group_id(first: &Loc) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}\0{}\0", now(), std::process::id()).as_bytes());
    h.update(first.container.as_bytes());
    h.update([0]);
    h.update(first.path.as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn key(loc: &Loc) -> (String, String) {
    (loc.container.clone(), loc.path.clone())
}

impl<S: Store> Fs<S> {
    /// link(2): `new_name` in `new_parent` becomes one more name of `ino`.
    /// Costs one server-side copy and one metadata update per name the
    /// group had.
    pub async fn link(self: &Arc<Self>, ino: u64, new_parent: u64, new_name: &str) -> FsResult<(u64, Attr)> {
        let to = self.writable_child(new_parent, new_name)?;
        if self.is_account_root(new_parent) {
            return Err(Errno::PERM);
        }
        if self.attr_of(ino)?.kind == Kind::Dir {
            return Err(Errno::PERM);
        }
        // A file written here and not committed yet: its names copy what is
        // on the server, so it goes there first.
        self.commit_open(ino).await?;
        let attr = self.attr_of(ino)?;
        let from = self.locate(ino)?;
        if from.container != to.container || from.scope != to.scope {
            return Err(Errno::XDEV); // a group lives in one container
        }
        let group = attr.link.clone().unwrap_or_else(|| new_group_id(&from));
        let mut members = self.members(&from, &attr, &group).await?;
        if members.len() >= LINK_MAX as usize {
            return Err(Errno(libc::EMLINK));
        }
        let mut new = attr.clone();
        new.link = Some(group.clone());
        new.nlink = members.len() as u32 + 1;
        new.ctime = now();
        let meta = new.to_meta();
        self.store_for(&from)?
            .copy(&from.container, &from.path, &to.container, &to.path, &meta)
            .await
            .during(Op::Create)?;
        members.insert(key(&to));
        self.write_count(&from, &group, &mut members, Some(&to), &new).await?;
        let mut t = self.inodes();
        t.set_group_number(&group, ino);
        if let Some(n) = t.get_mut(ino) {
            n.set_attr(&new);
            n.attr_at = Instant::now();
        }
        t.bind_alias(new_parent, new_name, ino);
        t.list(new_parent, new_name, ino, new.clone());
        t.remember(ino, 1);
        // A new entry: the folder's times move (in the mount, see SEMANTICS "Times").
        t.touch(new_parent, new.ctime, true);
        Ok((ino, new))
    }

    /// The name `loc` of a group was removed (unlink, or replaced by a
    /// rename): the other names learn the new count; a last name becomes an
    /// ordinary file again.
    pub(super) async fn unlinked(&self, ino: u64, attr: &Attr, loc: &Loc) -> FsResult<()> {
        let Some(group) = attr.link.clone() else { return Ok(()) };
        let mut members = self.members(loc, attr, &group).await?;
        members.remove(&key(loc));
        let mut new = attr.clone();
        new.nlink = members.len().max(1) as u32;
        new.ctime = now();
        if members.len() <= 1 {
            new.link = None;
        }
        self.write_count(loc, &group, &mut members, None, &new).await?;
        if let Some(n) = self.inodes().get_mut(ino) {
            if n.link() == Some(group.as_str()) {
                let mut a = n.attr();
                a.nlink = new.nlink;
                a.link = new.link.clone();
                a.ctime = new.ctime;
                n.set_attr(&a);
            }
        }
        Ok(())
    }

    /// A name of a group moved from `from` to `to`.
    pub(super) fn link_moved(&self, attr: &Attr, from: &Loc, to: &Loc) {
        let Some(group) = &attr.link else { return };
        if let Some(m) = lock(&self.links).get_mut(group) {
            m.remove(&key(from));
            m.insert(key(to));
        }
    }

    /// After a commit at `at`, the group's other names get the new content
    /// (server-side copies).
    pub(super) async fn spread_content(&self, attr: &Attr, at: &Loc) -> FsResult<()> {
        let Some(group) = &attr.link else { return Ok(()) };
        let members = self.members(at, attr, group).await?;
        let store = self.store_for(at)?;
        for (c, p) in members.iter().filter(|m| **m != key(at)) {
            match store.copy(&at.container, &at.path, c, p, &attr.to_meta()).await {
                Ok(()) => {}
                Err(e) => return Err(errno_of(Op::Commit, &e)),
            }
        }
        Ok(())
    }

    /// After chmod, chown or utimes through one name, the group's others.
    pub(super) async fn spread_meta(&self, attr: &Attr, at: &Loc, pairs: &[(String, String)]) -> FsResult<()> {
        let Some(group) = &attr.link else { return Ok(()) };
        let members = self.members(at, attr, group).await?;
        let store = self.store_for(at)?;
        for (c, p) in members.iter().filter(|m| **m != key(at)) {
            match store.set_meta(c, p, pairs).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(errno_of(Op::Setattr, &e)),
            }
        }
        Ok(())
    }

    /// Writes the group's count (and its id, or its removal) to every name
    /// but `made` (a copy that carries them already). A name gone meanwhile
    /// (removed by another client) leaves the group.
    async fn write_count(
        &self,
        at: &Loc,
        group: &str,
        members: &mut Members,
        made: Option<&Loc>,
        new: &Attr,
    ) -> FsResult<()> {
        let store = self.store_for(at)?;
        let pairs = vec![
            (META_LINK.to_string(), new.link.clone().unwrap_or_default()),
            (META_NLINK.to_string(), if new.link.is_some() { new.nlink.to_string() } else { String::new() }),
            (META_CTIME.to_string(), new.ctime.to_string()),
        ];
        let mut gone = Vec::new();
        for m in members.iter().filter(|m| made.map(key).as_ref() != Some(*m)) {
            match store.set_meta(&m.0, &m.1, &pairs).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => gone.push(m.clone()),
                Err(e) => return Err(errno_of(Op::Setattr, &e)),
            }
        }
        for g in gone {
            members.remove(&g);
        }
        let mut links = lock(&self.links);
        if new.link.is_some() {
            links.insert(group.to_string(), members.clone());
        } else {
            links.remove(group);
        }
        Ok(())
    }

    /// Every name of `group` (`at` among them): as known here, else found
    /// by one search of the container (after a remount).
    async fn members(&self, at: &Loc, attr: &Attr, group: &str) -> FsResult<Members> {
        if let Some(m) = lock(&self.links).get(group) {
            let mut m = m.clone();
            m.insert(key(at));
            return Ok(m);
        }
        let mut members = Members::new();
        members.insert(key(at));
        if attr.link.as_deref() == Some(group) {
            let like = ObjectMeta { bytes: attr.size, tag: attr.hash.clone(), ..Default::default() };
            let found =
                self.store_for(at)?.find_by_meta(&at.container, META_LINK, group, &like).await.during(Op::Lookup)?;
            members.extend(found.into_iter().map(|o| (at.container.clone(), o.name)));
        }
        lock(&self.links).insert(group.to_string(), members.clone());
        Ok(members)
    }

    /// Commits what open handles of `ino` hold.
    async fn commit_open(self: &Arc<Self>, ino: u64) -> FsResult<()> {
        for h in self.all_handles() {
            let mut f = h.lock().await;
            if f.ino() == ino {
                self.commit(&mut f).await?;
            }
        }
        Ok(())
    }
}
