//! The inode table: numbers handed to the kernel, each bound to a (parent,
//! name) and its last known attributes, and each folder's listing.
//!
//! A node exists while the kernel holds it: every entry the kernel is given
//! (lookup, create, mkdir, symlink, readdirplus) counts one lookup, and FUSE's
//! `forget` gives them back. A node the kernel no longer holds goes, unless
//! it is still needed here: a file open or not committed yet, or a folder
//! whose children (even unlinked ones still open) name themselves through it.
//!
//! A listing keeps its entries by value (name, number, attributes), so a
//! large folder listed once does not keep a node per entry: a node is made
//! when the kernel looks an entry up, with the number the listing gave it.
//! Numbers are stable while the kernel holds a node or its folder's listing
//! names it, across renames (a rename re-parents the node, and a moved
//! folder's children follow since paths are computed by walking up).
//!
//! A hard-linked file (a link group, see `links`) is one node with several
//! names: its first name is the one its path is computed from, the others
//! are aliases bound in their folders to the same number. Unbinding the
//! first name promotes an alias. Every name of a group gets the group's
//! number, in listings as in lookups.

use super::attr::{Attr, Kind, Time};
use super::listed::ListedAttr;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

pub const ROOT: u64 = 1;

#[derive(Debug, Clone)]
pub struct Node {
    pub parent: u64,
    pub name: String,
    /// Its attributes, compactly (`attr()` gives them whole): a find over
    /// a million objects keeps a million nodes.
    attr: ListedAttr,
    /// When `attr` was learnt (for the attribute TTL).
    pub attr_at: Instant,
    /// A folder's entries as last listed (boxed: most nodes are files).
    pub listing: Option<Box<Listing>>,
    /// A symlink's target, once read.
    pub target: Option<Box<str>>,
    /// Open handles on this node.
    pub open: u32,
    /// Size of changes not committed yet (what stat must report meanwhile).
    pub pending: Option<u64>,
    /// Created here and not on the server yet (its first commit makes it).
    pub unsent: bool,
    /// Created here, and a commit of it may have landed (reply lost, the
    /// store not reachable to ask): a rename moves the name on the server too.
    pub maybe_sent: bool,
    /// No name leads to it any more (unlinked, or replaced by a rename)
    /// while a handle still holds it: nothing of it is written back.
    pub unlinked: bool,
    /// Times changed here and kept only here (mtime, ctime): a folder's,
    /// when entries are made or removed in it, and a file's ctime when it
    /// is renamed. What a server lists later does not take them back.
    /// Boxed: few nodes have them, and every node would pay 40 bytes.
    pub local_times: Option<Box<(Time, Time)>>,
    /// Entries the kernel was given, less those it forgot.
    lookups: u64,
    /// Children bound by name.
    children: Children,
    /// Nodes whose parent this is (bound, or unlinked and still open): they
    /// need it to know their path.
    dependents: u32,
    /// Other names of the same node (hard links): (folder, name). Boxed:
    /// few nodes have any.
    #[allow(clippy::box_collection)]
    aliases: Option<Box<Vec<(u64, String)>>>,
}

/// A folder's entries as last listed, by name (the servers' byte order).
/// Names are shared with the snapshots of open folders (`DirEntry`).
#[derive(Debug, Clone)]
pub struct Listing {
    pub at: Instant,
    pub entries: BTreeMap<Arc<str>, Listed>,
}

/// One entry of a listing: the number it goes by, and what was listed.
/// While a node is bound to the name, the node's attributes are the
/// entry's (`attr` is None: a listed folder the kernel holds whole keeps
/// each entry's attributes once, not twice); they come back to the entry
/// when the node goes.
#[derive(Debug, Clone)]
pub struct Listed {
    pub ino: u64,
    pub attr: Option<Box<ListedAttr>>,
}

impl Node {
    fn new(parent: u64, name: &str, attr: Attr, attr_at: Instant) -> Node {
        Node {
            parent,
            name: name.to_string(),
            attr: ListedAttr::new(&attr),
            attr_at,
            listing: None,
            target: None,
            open: 0,
            pending: None,
            unsent: false,
            maybe_sent: false,
            unlinked: false,
            local_times: None,
            lookups: 0,
            children: Children::default(),
            dependents: 0,
            aliases: None,
        }
    }

    /// Its attributes.
    pub fn attr(&self) -> Attr {
        self.attr.attr()
    }

    pub fn set_attr(&mut self, attr: &Attr) {
        self.attr = ListedAttr::new(attr);
    }

    pub fn kind(&self) -> Kind {
        self.attr.kind
    }

    /// The size last learnt or committed (`pending` holds one not committed).
    pub fn size(&self) -> u64 {
        self.attr.size
    }

    pub fn set_size(&mut self, size: u64) {
        self.attr.size = size;
    }

    /// The hard-link group it belongs to.
    pub fn link(&self) -> Option<&str> {
        self.attr.link()
    }

    /// Whether an object backs it (a folder may be only a prefix).
    pub fn stored(&self) -> bool {
        self.attr.stored()
    }

    /// Its content or attributes changed at `at`, here (see `Attr::changed`).
    pub fn changed(&mut self, at: Time, content: bool) {
        self.attr.changed(at, content);
    }

    /// Names this node has besides the one its path is computed from.
    pub fn aliases(&self) -> &[(u64, String)] {
        self.aliases.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Takes alias `i` away, if there is one.
    fn remove_alias(&mut self, i: usize) -> Option<(u64, String)> {
        let list = self.aliases.as_mut().filter(|l| i < l.len())?;
        let out = list.remove(i);
        if list.is_empty() {
            self.aliases = None;
        }
        Some(out)
    }

    /// Whether changes made here are not on the server yet.
    pub fn uncommitted(&self) -> bool {
        self.pending.is_some() || self.unsent
    }

    /// Children bound by name.
    pub fn children(&self) -> impl Iterator<Item = (&String, &u64)> {
        self.children.iter()
    }

    /// Takes what a listing says of this node, unless it knows better.
    /// (Kept as listed: a folder listed again hands its bound children
    /// their entries as they are, with no round trip through `Attr`.)
    fn learn(&mut self, mut attr: ListedAttr) {
        // Uncommitted changes here are newer than what a listing says.
        if self.pending.is_some() {
            return;
        }
        if self.attr.kind != attr.kind {
            self.listing = None;
            self.target = None;
        }
        // A known symlink target stays valid while the version is the same.
        if !self.attr.same_version(&attr) {
            self.target = None;
        }
        // Times changed here stay until the server's are later.
        if let Some(&(mtime, ctime)) = self.local_times.as_deref() {
            let (m, c) = attr.times();
            if m >= mtime && c >= ctime {
                self.local_times = None;
            } else {
                attr.set_times(m.max(mtime), c.max(ctime));
            }
        }
        self.attr = attr;
        self.attr_at = Instant::now();
    }

    /// Entries were made or removed here (`content`), or the node itself
    /// changed in a way the server does not record: its times move to
    /// `at`, kept here only.
    pub fn touch(&mut self, at: Time, content: bool) {
        self.attr.changed(at, content);
        self.local_times = Some(Box::new(self.attr.times()));
    }
}

/// A node's children bound by name: one pointer for a node that has none
/// (every file), where an empty map takes six words in every node.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, Default)]
struct Children(Option<Box<HashMap<String, u64>>>);

impl Children {
    fn get(&self, name: &str) -> Option<&u64> {
        self.0.as_ref()?.get(name)
    }

    fn insert(&mut self, name: String, ino: u64) {
        self.0.get_or_insert_default().insert(name, ino);
    }

    fn remove(&mut self, name: &str) -> Option<u64> {
        let map = self.0.as_mut()?;
        let out = map.remove(name);
        if map.is_empty() {
            self.0 = None;
        }
        out
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &u64)> {
        self.0.iter().flat_map(|m| m.iter())
    }
}

pub struct InodeTable {
    /// Boxed: the table's spare slots cost a pointer each, not a node.
    nodes: HashMap<u64, Box<Node>>,
    next: u64,
    /// The number of each link group seen (all its names go by it).
    groups: HashMap<String, u64>,
}

impl InodeTable {
    pub fn new(root: Attr) -> InodeTable {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Box::new(Node::new(ROOT, "", root, Instant::now())));
        InodeTable { nodes, next: ROOT + 1, groups: HashMap::new() }
    }

    /// Nodes held now.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino).map(|n| &**n)
    }

    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino).map(|n| &mut **n)
    }

    pub fn child(&self, parent: u64, name: &str) -> Option<u64> {
        self.nodes.get(&parent)?.children.get(name).copied()
    }

    /// A number never given before.
    pub fn allocate(&mut self) -> u64 {
        let ino = self.next;
        self.next += 1;
        ino
    }

    /// The number `name` under `parent` goes by in a new listing: its
    /// node's, else the previous listing's, else a new one.
    /// (`link`: its hard-link group).
    pub fn number_for(&mut self, parent: u64, name: &str, link: Option<&str>, previous: Option<&Listing>) -> u64 {
        if let Some(ino) = self.child(parent, name) {
            return ino;
        }
        if let Some(ino) = link.and_then(|g| self.groups.get(g)) {
            return *ino;
        }
        let ino = previous.and_then(|l| l.entries.get(name)).map(|e| e.ino).unwrap_or_else(|| self.allocate());
        if let Some(g) = link {
            self.groups.insert(g.to_string(), ino);
        }
        ino
    }

    /// Link group `group` goes by `ino`.
    pub fn set_group_number(&mut self, group: &str, ino: u64) {
        self.groups.insert(group.to_string(), ino);
    }

    /// Binds `name` (not bound yet) under `parent` to a new node, numbered
    /// `ino` when that number is free.
    fn bind_new(&mut self, parent: u64, name: &str, ino: Option<u64>, attr: Attr, learnt: Instant) -> u64 {
        // Another name of a linked node already held: this name is an alias.
        let group = attr.link.as_ref().and_then(|g| self.groups.get(g).copied());
        if let Some(existing) = group.filter(|i| self.nodes.contains_key(i)) {
            self.bind_alias(parent, name, existing);
            return existing;
        }
        let ino = match group.or(ino).filter(|i| *i != ROOT && !self.nodes.contains_key(i)) {
            Some(i) => i,
            None => self.allocate(),
        };
        if let Some(g) = &attr.link {
            self.groups.insert(g.clone(), ino);
        }
        self.nodes.insert(ino, Box::new(Node::new(parent, name, attr, learnt)));
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name.to_string(), ino);
            p.dependents += 1;
        }
        self.lend_to_node(parent, name, ino);
        ino
    }

    /// `name` in `parent` is bound to node `ino`: its listing entry's
    /// attributes are the node's from now on.
    fn lend_to_node(&mut self, parent: u64, name: &str, ino: u64) {
        let entry = self.nodes.get_mut(&parent).and_then(|p| p.listing.as_mut()).and_then(|l| l.entries.get_mut(name));
        if let Some(e) = entry.filter(|e| e.ino == ino) {
            e.attr = None;
        }
    }

    /// `name` in `parent` is no longer bound to node `ino` (about to go, or
    /// unbound): its listing entry takes the node's attributes back.
    fn take_from_node(&mut self, parent: u64, name: &str, ino: u64) {
        let Some(attr) = self.nodes.get(&ino).map(|n| n.attr.clone()) else { return };
        let entry = self.nodes.get_mut(&parent).and_then(|p| p.listing.as_mut()).and_then(|l| l.entries.get_mut(name));
        if let Some(e) = entry.filter(|e| e.ino == ino && e.attr.is_none()) {
            e.attr = Some(Box::new(attr));
        }
    }

    /// Binds one more name to `ino` (a hard link), replacing what the name
    /// was bound to.
    pub fn bind_alias(&mut self, parent: u64, name: &str, ino: u64) {
        if self.child(parent, name) == Some(ino) {
            return;
        }
        if let Some(old) = self.unbind_name(parent, name) {
            self.release(old);
        }
        let Some(n) = self.nodes.get_mut(&ino) else { return };
        n.aliases.get_or_insert_default().push((parent, name.to_string()));
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name.to_string(), ino);
            p.dependents += 1;
        }
        self.lend_to_node(parent, name, ino);
    }

    /// Every name of `ino` bound now: (folder, name), its path's name first.
    pub fn names_of(&self, ino: u64) -> Vec<(u64, String)> {
        let Some(n) = self.nodes.get(&ino) else { return Vec::new() };
        let mut out = Vec::new();
        if self.child(n.parent, &n.name) == Some(ino) {
            out.push((n.parent, n.name.clone()));
        }
        out.extend(n.aliases().iter().cloned());
        out
    }

    /// The node a listing entry names (made now, with the number and
    /// attributes given, if the name has none).
    pub fn bind_listed(&mut self, parent: u64, name: &str, ino: u64, attr: &Attr, learnt: Instant) -> u64 {
        match self.child(parent, name) {
            Some(existing) => existing,
            None => self.bind_new(parent, name, Some(ino), attr.clone(), learnt),
        }
    }

    /// The node of `name` if `parent`'s listing has it (made now if it has none).
    pub fn bind_from_listing(&mut self, parent: u64, name: &str) -> Option<u64> {
        let listing = self.nodes.get(&parent)?.listing.as_ref()?;
        let entry = listing.entries.get(name)?;
        if let Some(existing) = self.child(parent, name) {
            return Some(existing);
        }
        let (ino, attr, at) = (entry.ino, entry.attr.as_ref()?.attr(), listing.at);
        Some(self.bind_new(parent, name, Some(ino), attr, at))
    }

    /// Binds `name` under `parent` with `attr` (a name made here), keeping
    /// the number it had and its uncommitted changes.
    pub fn upsert(&mut self, parent: u64, name: &str, attr: Attr) -> u64 {
        if let Some(ino) = self.child(parent, name) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.learn(ListedAttr::new(&attr));
            }
            return ino;
        }
        self.bind_new(parent, name, None, attr, Instant::now())
    }

    /// A listing's news about a bound child.
    pub fn learn(&mut self, ino: u64, attr: ListedAttr) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.learn(attr);
        }
    }

    /// Attributes the mount just wrote to the server: they are the node's
    /// now, times kept only here included (they were written with them).
    pub fn learn_own(&mut self, ino: u64, attr: Attr) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.attr = ListedAttr::new(&attr);
            n.attr_at = Instant::now();
            n.local_times = None;
        }
    }

    /// See `Node::touch`.
    pub fn touch(&mut self, ino: u64, at: Time, content: bool) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.touch(at, content);
        }
    }

    /// Counts `n` more entries of `ino` given to the kernel.
    pub fn remember(&mut self, ino: u64, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_add(n);
        }
    }

    /// The kernel gave back `n` entries of `ino`: the node goes if nothing
    /// else holds it. Returns how many nodes went.
    pub fn forget(&mut self, ino: u64, n: u64) -> usize {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
        }
        self.release(ino)
    }

    /// Removes `ino` if nothing holds it any more (the kernel, an open
    /// handle, uncommitted changes, a child that names itself through it),
    /// then its parent on the same terms. Returns how many nodes went.
    pub fn release(&mut self, ino: u64) -> usize {
        let mut gone = 0;
        let mut cur = ino;
        while cur != ROOT {
            let Some(n) = self.nodes.get(&cur) else { break };
            if n.lookups > 0 || n.open > 0 || n.uncommitted() || n.dependents > 0 {
                break;
            }
            let (parent, name) = (n.parent, n.name.clone());
            let aliases = n.aliases().to_vec();
            self.take_from_node(parent, &name, cur);
            for (ap, an) in &aliases {
                self.take_from_node(*ap, an, cur);
            }
            self.nodes.remove(&cur);
            gone += 1;
            for (ap, an) in aliases {
                if let Some(p) = self.nodes.get_mut(&ap) {
                    if p.children.get(&an) == Some(&cur) {
                        p.children.remove(&an);
                    }
                    p.dependents = p.dependents.saturating_sub(1);
                }
                if ap != parent {
                    gone += self.release(ap);
                }
            }
            let Some(p) = self.nodes.get_mut(&parent) else { break };
            if p.children.get(&name) == Some(&cur) {
                p.children.remove(&name);
            }
            p.dependents = p.dependents.saturating_sub(1);
            cur = parent;
        }
        gone
    }

    /// Forgets the binding of `name` and its listing entry (the node itself
    /// stays while the kernel or an open handle holds it).
    /// A linked node keeps its other names: unbinding the name its path is
    /// computed from promotes another.
    pub fn unbind(&mut self, parent: u64, name: &str) -> Option<u64> {
        let p = self.nodes.get_mut(&parent)?;
        if let Some(l) = p.listing.as_mut() {
            l.entries.remove(name);
        }
        self.unbind_name(parent, name)
    }

    /// Unbinds `name` from its node, its listing entry kept.
    fn unbind_name(&mut self, parent: u64, name: &str) -> Option<u64> {
        let ino = self.child(parent, name)?;
        self.take_from_node(parent, name, ino);
        self.nodes.get_mut(&parent)?.children.remove(name)?;
        let n = self.nodes.get_mut(&ino)?;
        let promoted = if let Some(i) = n.aliases().iter().position(|(ap, an)| *ap == parent && an == name) {
            n.remove_alias(i).is_some()
        } else if n.parent == parent && n.name == name {
            match n.remove_alias(0) {
                Some((ap, an)) => {
                    n.parent = ap;
                    n.name = an;
                    true
                }
                None => false,
            }
        } else {
            false
        };
        // The folder no longer names the node: it no longer depends on it
        // (a name with no other stays, for an open file's path, until release).
        if promoted {
            if let Some(p) = self.nodes.get_mut(&parent) {
                p.dependents = p.dependents.saturating_sub(1);
            }
        }
        Some(ino)
    }

    /// `name` is gone (unlinked): its node, if still held (an open handle)
    /// and named no more, is no file any more.
    pub fn unlink(&mut self, parent: u64, name: &str) -> Option<u64> {
        let ino = self.unbind(parent, name)?;
        self.mark_if_nameless(ino);
        Some(ino)
    }

    /// A node whose last name went (a linked one keeps its others) is no
    /// file any more: never written back, and fstat says nlink 0.
    fn mark_if_nameless(&mut self, ino: u64) {
        if self.names_of(ino).is_empty() {
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.unlinked = true;
                n.attr.set_nlink(0);
            }
        }
    }

    /// Adds (or updates) `name` in `parent`'s listing, if it has one.
    pub fn list(&mut self, parent: u64, name: &str, ino: u64, attr: Attr) {
        if let Some(l) = self.nodes.get_mut(&parent).and_then(|p| p.listing.as_mut()) {
            l.entries.insert(name.into(), Listed { ino, attr: Some(Box::new(ListedAttr::new(&attr))) });
        }
        if self.child(parent, name) == Some(ino) {
            self.lend_to_node(parent, name, ino);
        }
    }

    /// Moves a node to a new (parent, name), replacing what was there.
    pub fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Option<u64> {
        let ino = self.unbind(parent, name)?;
        let replaced = self.unbind(new_parent, new_name).filter(|r| *r != ino);
        if let Some(r) = replaced {
            self.mark_if_nameless(r);
        }
        // A linked node whose path still goes by another name gains an alias.
        let named = self.nodes.get(&ino).is_some_and(|n| self.child(n.parent, &n.name) == Some(ino));
        if named {
            self.bind_alias(new_parent, new_name, ino);
            let attr = self.nodes.get(&ino)?.attr();
            self.list(new_parent, new_name, ino, attr);
            if let Some(r) = replaced {
                self.release(r);
            }
            self.release(parent);
            return Some(ino);
        }
        let old_parent = self.nodes.get(&ino)?.parent;
        if let Some(p) = self.nodes.get_mut(&old_parent) {
            p.dependents = p.dependents.saturating_sub(1);
        }
        let attr = self.nodes.get_mut(&ino).map(|n| {
            n.parent = new_parent;
            n.name = new_name.to_string();
            n.attr()
        })?;
        if let Some(p) = self.nodes.get_mut(&new_parent) {
            p.children.insert(new_name.to_string(), ino);
            p.dependents += 1;
        }
        self.list(new_parent, new_name, ino, attr);
        if let Some(r) = replaced {
            self.release(r);
        }
        self.release(parent);
        Some(ino)
    }

    /// The name of `ino`'s ancestor just under the root (its own, for a
    /// child of the root; None for the root): no allocation, so hot paths
    /// can tell the tree a node is in.
    pub fn top_name(&self, ino: u64) -> Option<&str> {
        let mut cur = self.nodes.get(&ino)?;
        for _ in 0..4096 {
            if cur.parent == ROOT {
                return Some(&cur.name);
            }
            cur = self.nodes.get(&cur.parent)?;
        }
        None // a cycle would be a bug; never loop forever
    }

    /// Names from the root down to `ino` (empty for the root).
    pub fn components(&self, ino: u64) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut cur = ino;
        let mut guard = 0;
        while cur != ROOT {
            let n = self.nodes.get(&cur)?;
            out.push(n.name.clone());
            cur = n.parent;
            guard += 1;
            if guard > 4096 {
                return None; // a cycle would be a bug; never loop forever
            }
        }
        out.reverse();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_across_renames() {
        let mut t = InodeTable::new(Attr::dir(Time::EPOCH));
        let d = t.upsert(ROOT, "dir", Attr::dir(Time::EPOCH));
        let f = t.upsert(d, "f", Attr::new_file(Time::EPOCH));
        assert_eq!(t.upsert(d, "f", Attr::new_file(Time::new(1, 0))), f);
        assert_eq!(t.components(f).unwrap(), vec!["dir", "f"]);
        let d2 = t.upsert(ROOT, "other", Attr::dir(Time::EPOCH));
        assert_eq!(t.rename(ROOT, "dir", d2, "moved"), Some(d));
        assert_eq!(t.components(f).unwrap(), vec!["other", "moved", "f"]);
        assert_eq!(t.child(d2, "moved"), Some(d));
        assert_eq!(t.child(ROOT, "dir"), None);
        t.remember(f, 1);
        assert_eq!(t.unbind(d, "f"), Some(f));
        assert_eq!(t.child(d, "f"), None);
        assert!(t.get(f).is_some(), "an unbound node stays while the kernel holds it");
    }

    #[test]
    fn a_linked_node_has_several_names_and_one_number() {
        let mut t = InodeTable::new(Attr::dir(Time::EPOCH));
        let a = t.upsert(ROOT, "a", Attr::dir(Time::EPOCH));
        let b = t.upsert(ROOT, "b", Attr::dir(Time::EPOCH));
        t.remember(a, 1);
        t.remember(b, 1);
        let mut linked = Attr::new_file(Time::EPOCH);
        linked.link = Some("ab12".into());
        let f = t.upsert(a, "f", linked.clone());
        t.remember(f, 1);
        t.set_group_number("ab12", f);
        // A listing of another folder naming the group gives the same number,
        // and binding it makes an alias, not a node.
        assert_eq!(t.number_for(b, "g", linked.link.as_deref(), None), f);
        assert_eq!(t.bind_listed(b, "g", f, &linked, Instant::now()), f);
        assert_eq!((t.len(), t.child(b, "g")), (4, Some(f)));
        assert_eq!(t.names_of(f), vec![(a, "f".to_string()), (b, "g".to_string())]);
        // Renaming the alias keeps the path's name; unbinding that promotes the alias.
        assert_eq!(t.rename(b, "g", b, "h"), Some(f));
        assert_eq!(t.components(f).unwrap(), vec!["a", "f"]);
        assert_eq!(t.unbind(a, "f"), Some(f));
        assert_eq!(t.components(f).unwrap(), vec!["b", "h"]);
        assert_eq!(t.names_of(f), vec![(b, "h".to_string())]);
        // Once forgotten, the node goes with its names (its folders stay: the kernel holds them).
        assert_eq!(t.forget(f, 1), 1);
        assert_eq!(t.child(b, "h"), None);
    }

    #[test]
    fn nodes_go_when_the_kernel_forgets_them_and_nothing_else_holds_them() {
        let mut t = InodeTable::new(Attr::dir(Time::EPOCH));
        let d = t.upsert(ROOT, "d", Attr::dir(Time::EPOCH));
        t.remember(d, 1);
        let a = t.upsert(d, "a", Attr::new_file(Time::EPOCH));
        let b = t.upsert(d, "b", Attr::new_file(Time::EPOCH));
        t.remember(a, 2);
        t.remember(b, 1);
        t.get_mut(b).unwrap().open = 1;
        assert_eq!(t.len(), 4);
        assert_eq!(t.forget(a, 1), 0, "one lookup left");
        assert_eq!(t.forget(a, 1), 1);
        assert_eq!(t.forget(d, 1), 0, "b still names itself through d");
        assert_eq!(t.forget(b, 1), 0, "b is open");
        t.get_mut(b).unwrap().open = 0;
        t.get_mut(b).unwrap().pending = Some(3);
        assert_eq!(t.release(b), 0, "b has changes not committed");
        t.get_mut(b).unwrap().pending = None;
        assert_eq!(t.release(b), 2, "b, then d, which nothing holds any more");
        assert_eq!((t.len(), t.child(ROOT, "d")), (1, None));
        // A listing entry keeps its number for the node made at the next lookup.
        let file = Attr::new_file(Time::EPOCH);
        assert_eq!(t.bind_listed(ROOT, "x", 77, &file, Instant::now()), 77);
        assert_eq!(t.forget(77, 0), 1, "never given to the kernel: nothing holds it");
        assert_eq!(t.bind_listed(ROOT, "x", 77, &file, Instant::now()), 77, "the same number again");
    }
}
