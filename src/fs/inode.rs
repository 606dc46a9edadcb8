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

use super::attr::Attr;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

pub const ROOT: u64 = 1;

#[derive(Debug, Clone)]
pub struct Node {
    pub parent: u64,
    pub name: String,
    pub attr: Attr,
    /// When `attr` was learnt (for the attribute TTL).
    pub attr_at: Instant,
    /// A folder's entries as last listed.
    pub listing: Option<Listing>,
    /// A symlink's target, once read.
    pub target: Option<String>,
    /// Open handles on this node.
    pub open: u32,
    /// Size of changes not committed yet (what stat must report meanwhile).
    pub pending: Option<u64>,
    /// Created here and not on the server yet (its first commit makes it).
    pub unsent: bool,
    /// Times changed here and kept only here (mtime, ctime): a folder's,
    /// when entries are made or removed in it, and a file's ctime when it
    /// is renamed. What a server lists later does not take them back.
    pub local_times: Option<(f64, f64)>,
    /// Entries the kernel was given, less those it forgot.
    lookups: u64,
    /// Children bound by name.
    children: HashMap<String, u64>,
    /// Nodes whose parent this is (bound, or unlinked and still open): they
    /// need it to know their path.
    dependents: u32,
}

/// A folder's entries as last listed, by name (the servers' byte order).
#[derive(Debug, Clone)]
pub struct Listing {
    pub at: Instant,
    pub entries: BTreeMap<String, Listed>,
}

/// One entry of a listing: the number it goes by, and what was listed.
#[derive(Debug, Clone)]
pub struct Listed {
    pub ino: u64,
    pub attr: Attr,
}

impl Node {
    fn new(parent: u64, name: &str, attr: Attr, attr_at: Instant) -> Node {
        Node {
            parent,
            name: name.to_string(),
            attr,
            attr_at,
            listing: None,
            target: None,
            open: 0,
            pending: None,
            unsent: false,
            local_times: None,
            lookups: 0,
            children: HashMap::new(),
            dependents: 0,
        }
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
    fn learn(&mut self, attr: Attr) {
        // Uncommitted changes here are newer than what a listing says.
        if self.pending.is_some() {
            return;
        }
        if self.attr.kind != attr.kind {
            self.listing = None;
            self.target = None;
        }
        // A known symlink target stays valid while the version is the same.
        if self.attr.version != attr.version {
            self.target = None;
        }
        let mut attr = attr;
        // Times changed here stay until the server's are later.
        if let Some((mtime, ctime)) = self.local_times {
            if attr.mtime >= mtime && attr.ctime >= ctime {
                self.local_times = None;
            } else {
                attr.mtime = attr.mtime.max(mtime);
                attr.ctime = attr.ctime.max(ctime);
            }
        }
        self.attr = attr;
        self.attr_at = Instant::now();
    }

    /// Entries were made or removed here (`content`), or the node itself
    /// changed in a way the server does not record: its times move to
    /// `at`, kept here only.
    pub fn touch(&mut self, at: f64, content: bool) {
        self.attr.changed(at, content);
        self.local_times = Some((self.attr.mtime, self.attr.ctime));
    }
}

pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    next: u64,
}

impl InodeTable {
    pub fn new(root: Attr) -> InodeTable {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::new(ROOT, "", root, Instant::now()));
        InodeTable { nodes, next: ROOT + 1 }
    }

    /// Nodes held now.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino)
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
    pub fn number_for(&mut self, parent: u64, name: &str, previous: Option<&Listing>) -> u64 {
        if let Some(ino) = self.child(parent, name) {
            return ino;
        }
        previous.and_then(|l| l.entries.get(name)).map(|e| e.ino).unwrap_or_else(|| self.allocate())
    }

    /// Binds `name` (not bound yet) under `parent` to a new node, numbered
    /// `ino` when that number is free.
    fn bind_new(&mut self, parent: u64, name: &str, ino: Option<u64>, attr: Attr, learnt: Instant) -> u64 {
        let ino = match ino.filter(|i| *i != ROOT && !self.nodes.contains_key(i)) {
            Some(i) => i,
            None => self.allocate(),
        };
        self.nodes.insert(ino, Node::new(parent, name, attr, learnt));
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name.to_string(), ino);
            p.dependents += 1;
        }
        ino
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
        let (ino, attr, at) = (entry.ino, entry.attr.clone(), listing.at);
        Some(self.bind_new(parent, name, Some(ino), attr, at))
    }

    /// Binds `name` under `parent` with `attr` (a name made here), keeping
    /// the number it had and its uncommitted changes.
    pub fn upsert(&mut self, parent: u64, name: &str, attr: Attr) -> u64 {
        if let Some(ino) = self.child(parent, name) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.learn(attr);
            }
            return ino;
        }
        self.bind_new(parent, name, None, attr, Instant::now())
    }

    /// A listing's news about a bound child.
    pub fn learn(&mut self, ino: u64, attr: Attr) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.learn(attr);
        }
    }

    /// Attributes the mount just wrote to the server: they are the node's
    /// now, times kept only here included (they were written with them).
    pub fn learn_own(&mut self, ino: u64, attr: Attr) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.attr = attr;
            n.attr_at = Instant::now();
            n.local_times = None;
        }
    }

    /// See `Node::touch`.
    pub fn touch(&mut self, ino: u64, at: f64, content: bool) {
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
            self.nodes.remove(&cur);
            gone += 1;
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
    pub fn unbind(&mut self, parent: u64, name: &str) -> Option<u64> {
        let p = self.nodes.get_mut(&parent)?;
        if let Some(l) = p.listing.as_mut() {
            l.entries.remove(name);
        }
        let ino = p.children.remove(name)?;
        Some(ino)
    }

    /// Adds (or updates) `name` in `parent`'s listing, if it has one.
    pub fn list(&mut self, parent: u64, name: &str, ino: u64, attr: Attr) {
        if let Some(l) = self.nodes.get_mut(&parent).and_then(|p| p.listing.as_mut()) {
            l.entries.insert(name.to_string(), Listed { ino, attr });
        }
    }

    /// Moves a node to a new (parent, name), replacing what was there.
    pub fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Option<u64> {
        let ino = self.unbind(parent, name)?;
        let replaced = self.unbind(new_parent, new_name);
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.dependents = p.dependents.saturating_sub(1);
        }
        let attr = self.nodes.get_mut(&ino).map(|n| {
            n.parent = new_parent;
            n.name = new_name.to_string();
            n.attr.clone()
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
        let mut t = InodeTable::new(Attr::dir(0.0));
        let d = t.upsert(ROOT, "dir", Attr::dir(0.0));
        let f = t.upsert(d, "f", Attr::new_file(0.0));
        assert_eq!(t.upsert(d, "f", Attr::new_file(1.0)), f);
        assert_eq!(t.components(f).unwrap(), vec!["dir", "f"]);
        let d2 = t.upsert(ROOT, "other", Attr::dir(0.0));
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
    fn nodes_go_when_the_kernel_forgets_them_and_nothing_else_holds_them() {
        let mut t = InodeTable::new(Attr::dir(0.0));
        let d = t.upsert(ROOT, "d", Attr::dir(0.0));
        t.remember(d, 1);
        let a = t.upsert(d, "a", Attr::new_file(0.0));
        let b = t.upsert(d, "b", Attr::new_file(0.0));
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
        let file = Attr::new_file(0.0);
        assert_eq!(t.bind_listed(ROOT, "x", 77, &file, Instant::now()), 77);
        assert_eq!(t.forget(77, 0), 1, "never given to the kernel: nothing holds it");
        assert_eq!(t.bind_listed(ROOT, "x", 77, &file, Instant::now()), 77, "the same number again");
    }
}
