//! The inode table: numbers handed to the kernel, each bound to a (parent,
//! name) and its last known attributes. A node keeps its number for the life
//! of the mount, across renames (a rename re-parents the node, and a moved
//! folder's children follow since paths are computed by walking up).

use super::attr::Attr;
use std::collections::HashMap;
use std::time::Instant;

pub const ROOT: u64 = 1;

#[derive(Debug, Clone)]
pub struct Node {
    pub parent: u64,
    pub name: String,
    pub attr: Attr,
    /// When `attr` was learnt (for the attribute TTL).
    pub attr_at: Instant,
    /// Children as last listed, and when (for the directory TTL).
    pub listing: Option<(Instant, Vec<u64>)>,
    /// A symlink's target, once read.
    pub target: Option<String>,
    /// Open handles on this node.
    pub open: u32,
    /// Size of changes not committed yet (what stat must report meanwhile).
    pub pending: Option<u64>,
    /// An mtime set (utimes) after the last write, for the commit to keep.
    pub touched: Option<f64>,
    /// Created here and not on the server yet (its first commit makes it).
    pub unsent: bool,
}

impl Node {
    fn new(parent: u64, name: &str, attr: Attr) -> Node {
        Node {
            parent,
            name: name.to_string(),
            attr,
            attr_at: Instant::now(),
            listing: None,
            target: None,
            open: 0,
            pending: None,
            touched: None,
            unsent: false,
        }
    }
}

pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    by_name: HashMap<(u64, String), u64>,
    next: u64,
}

impl InodeTable {
    pub fn new(root: Attr) -> InodeTable {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::new(ROOT, "", root));
        InodeTable { nodes, by_name: HashMap::new(), next: ROOT + 1 }
    }

    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    pub fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino)
    }

    pub fn child(&self, parent: u64, name: &str) -> Option<u64> {
        self.by_name.get(&(parent, name.to_string())).copied()
    }

    /// Binds `name` under `parent` with `attr`, keeping the number it had.
    pub fn upsert(&mut self, parent: u64, name: &str, attr: Attr) -> u64 {
        let key = (parent, name.to_string());
        if let Some(&ino) = self.by_name.get(&key) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                // Uncommitted changes here are newer than what a listing says.
                if n.pending.is_some() {
                    return ino;
                }
                if n.attr.kind != attr.kind {
                    n.listing = None;
                    n.target = None;
                }
                // A known symlink target stays valid while the version is the same.
                if n.attr.version != attr.version {
                    n.target = None;
                }
                n.attr = attr;
                n.attr_at = Instant::now();
            }
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(ino, Node::new(parent, name, attr));
        self.by_name.insert(key, ino);
        ino
    }

    /// Forgets the binding of `name` (the node itself stays for open handles).
    pub fn unbind(&mut self, parent: u64, name: &str) -> Option<u64> {
        let ino = self.by_name.remove(&(parent, name.to_string()))?;
        if let Some(p) = self.nodes.get_mut(&parent) {
            if let Some((_, kids)) = p.listing.as_mut() {
                kids.retain(|k| *k != ino);
            }
        }
        Some(ino)
    }

    /// Moves a node to a new (parent, name), replacing what was there.
    pub fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Option<u64> {
        let ino = self.unbind(parent, name)?;
        self.unbind(new_parent, new_name);
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.parent = new_parent;
            n.name = new_name.to_string();
        }
        self.by_name.insert((new_parent, new_name.to_string()), ino);
        if let Some(p) = self.nodes.get_mut(&new_parent) {
            if let Some((_, kids)) = p.listing.as_mut() {
                kids.push(ino);
            }
        }
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
        assert_eq!(t.unbind(d, "f"), Some(f));
        assert_eq!(t.child(d, "f"), None);
        assert!(t.get(f).is_some(), "an unbound node stays for open handles");
    }
}
