//! The in-memory namespace.
//!
//! Nodes live in one hash map keyed by full path; each node keeps its
//! children's names sorted. The tree is mutated only through the txn apply
//! in `state`, which calls the primitives here. It reads no clock, touches no
//! disk and calls no user code.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::node::{Acl, Id, Perms, Stat};
use crate::path;

/// The stored `ephemeralOwner` of a container (`zookeeper-reference.md` A.3).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of the stored `ephemeralOwner` of a TTL node.
const TTL_MARKER: u64 = 0xFF00_0000_0000_0000;
/// The largest TTL ZooKeeper accepts (2^40 − 1 ms).
pub const TTL_MAX_MS: i64 = 0xFF_FFFF_FFFF;

/// What a stored `ephemeralOwner` says about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A plain persistent node.
    Persistent,
    /// Owned by a session.
    Ephemeral(i64),
    /// A container.
    Container,
    /// A persistent node with a TTL in ms.
    Ttl(i64),
}

impl NodeKind {
    /// Decodes a stored owner.
    pub fn from_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if (owner as u64) & 0xFF00_0000_0000_0000 == TTL_MARKER {
            NodeKind::Ttl(owner & TTL_MAX_MS)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }

    /// Encodes the owner stored for this kind.
    pub fn owner(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(session_id) => session_id,
            NodeKind::Container => CONTAINER_OWNER,
            NodeKind::Ttl(ttl_ms) => (TTL_MARKER | (ttl_ms & TTL_MAX_MS) as u64) as i64,
        }
    }
}

/// One node.
#[derive(Debug, Clone)]
pub struct Node {
    /// The data (`None` is ZooKeeper's null, distinct from empty).
    pub data: Option<Vec<u8>>,
    /// The ACL, shared between nodes with equal lists.
    pub acl: Arc<[Acl]>,
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last set-data.
    pub mzxid: i64,
    /// zxid of the last child create or delete.
    pub pzxid: i64,
    /// Create time, ms.
    pub ctime: i64,
    /// Last set-data time, ms.
    pub mtime: i64,
    /// Set-data count.
    pub version: i32,
    /// Child-create count: ZooKeeper's stored cversion, the sequence source.
    pub creates: i32,
    /// Set-ACL count.
    pub aversion: i32,
    /// Stored ephemeral owner (see [`NodeKind`]).
    pub owner: i64,
    /// Names of the children, sorted.
    pub children: BTreeSet<String>,
}

impl Node {
    /// The node's kind.
    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.owner)
    }

    /// The Stat clients see (`zookeeper-reference.md` B.3 for cversion).
    pub fn stat(&self) -> Stat {
        let num_children = i32::try_from(self.children.len()).unwrap_or(i32::MAX);
        let data_length = self
            .data
            .as_ref()
            .map_or(0, |d| i32::try_from(d.len()).unwrap_or(i32::MAX));
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.creates.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: match self.kind() {
                NodeKind::Ephemeral(session_id) => session_id,
                _ => 0,
            },
            data_length,
            num_children,
            pzxid: self.pzxid,
        }
    }
}

/// The namespace plus its indexes.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: HashMap<String, Node>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    acls: HashMap<Vec<Acl>, Arc<[Acl]>>,
    /// The most children a node ever had at once, kept only for nodes that
    /// have fewer now: ZooKeeper's child sets never shrink, and the order
    /// it lists children in depends on their size (`javaorder`). Not in
    /// snapshots: a tree loaded from one starts from the current counts,
    /// as ZooKeeper's sets rebuilt from its snapshot do.
    child_high_water: HashMap<String, usize>,
}

/// The system nodes every tree starts with (`zookeeper-reference.md` A.2).
pub const SYSTEM_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

impl Default for Tree {
    fn default() -> Tree {
        Tree::new()
    }
}

impl Tree {
    /// A fresh tree holding only the system nodes, all stats zero.
    pub fn new() -> Tree {
        let mut tree = Tree {
            nodes: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            acls: HashMap::new(),
            child_high_water: HashMap::new(),
        };
        let open = tree.intern_acl(Acl::open_unsafe());
        let read = tree.intern_acl(vec![Acl::new(Perms::READ, Id::anyone())]);
        for p in SYSTEM_PATHS {
            let acl = if p == "/zookeeper/config" {
                read.clone()
            } else {
                open.clone()
            };
            let mut node = Tree::blank_node(acl);
            node.data = Some(Vec::new());
            if p == "/zookeeper/config" {
                node.aversion = -1;
            }
            tree.nodes.insert(p.to_string(), node);
        }
        for p in &SYSTEM_PATHS[1..] {
            let parent = path::parent(p);
            let name = path::name(p).to_string();
            if let Some(parent) = tree.nodes.get_mut(parent) {
                parent.children.insert(name);
            }
        }
        tree
    }

    fn blank_node(acl: Arc<[Acl]>) -> Node {
        Node {
            data: None,
            acl,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            creates: 0,
            aversion: 0,
            owner: 0,
            children: BTreeSet::new(),
        }
    }

    /// The most children the node at `path` ever had at once (since it was
    /// created, or since the tree was loaded from a snapshot).
    pub fn child_high_water(&self, path: &str, node: &Node) -> usize {
        self.child_high_water
            .get(path)
            .copied()
            .unwrap_or(0)
            .max(node.children.len())
    }

    /// True for the four nodes no client may delete.
    pub fn is_system(path: &str) -> bool {
        SYSTEM_PATHS.contains(&path)
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Number of nodes, system nodes included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// All nodes, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Shares one allocation between equal ACL lists.
    pub fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<[Acl]> {
        if let Some(shared) = self.acls.get(&acl) {
            return shared.clone();
        }
        let shared: Arc<[Acl]> = Arc::from(acl.clone());
        self.acls.insert(acl, shared.clone());
        shared
    }

    /// The ephemerals of a session, sorted.
    pub fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session_id).into_iter().flatten()
    }

    /// Sessions that own at least one ephemeral.
    pub fn ephemeral_owners(&self) -> impl Iterator<Item = i64> + '_ {
        self.ephemerals.keys().copied()
    }

    /// Number of ephemeral nodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Number of descendants of `path` (not counting itself).
    pub fn count_descendants(&self, path: &str) -> u64 {
        let mut count = 0u64;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(&p) {
                for child in &node.children {
                    count += 1;
                    stack.push(path::join(&p, child));
                }
            }
        }
        count
    }

    /// Sum of data lengths and path lengths, as ZooKeeper approximates it.
    pub fn approximate_data_size(&self) -> u64 {
        self.nodes
            .iter()
            .map(|(p, n)| (p.len() + n.data.as_ref().map_or(0, Vec::len)) as u64)
            .sum()
    }

    /// Containers and TTL nodes the reaper should delete at `now_ms`
    /// (`zookeeper-reference.md` A.6), sorted.
    pub fn reapable(&self, now_ms: i64) -> Vec<String> {
        let mut due = Vec::new();
        for p in &self.containers {
            if let Some(node) = self.nodes.get(p) {
                if node.children.is_empty() && node.creates > 0 {
                    due.push(p.clone());
                }
            }
        }
        for p in &self.ttls {
            if let Some(node) = self.nodes.get(p) {
                if let NodeKind::Ttl(ttl_ms) = node.kind() {
                    if node.children.is_empty() && now_ms.saturating_sub(node.mtime) > ttl_ms {
                        due.push(p.clone());
                    }
                }
            }
        }
        due.sort();
        due
    }

    /// Inserts a node under an existing parent. Returns false (and changes
    /// nothing) if the parent is missing or the node exists.
    pub fn insert(&mut self, path: &str, node: Node, zxid: i64) -> bool {
        if self.nodes.contains_key(path) || path == "/" {
            return false;
        }
        let parent_path = path::parent(path);
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return false;
        };
        parent.children.insert(path::name(path).to_string());
        if self
            .child_high_water
            .get(parent_path)
            .is_some_and(|&most| parent.children.len() >= most)
        {
            self.child_high_water.remove(parent_path);
        }
        parent.creates = parent.creates.wrapping_add(1);
        parent.pzxid = zxid;
        match node.kind() {
            NodeKind::Ephemeral(session_id) => {
                self.ephemerals
                    .entry(session_id)
                    .or_default()
                    .insert(path.to_string());
            }
            NodeKind::Container => {
                self.containers.insert(path.to_string());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.to_string());
            }
            NodeKind::Persistent => {}
        }
        self.nodes.insert(path.to_string(), node);
        true
    }

    /// Inserts a node as it was stored, without touching its parent's
    /// counters (recovery of a snapshot, which links each node into its
    /// parent's children itself, parents first).
    pub fn restore(&mut self, path: String, node: Node) {
        match node.kind() {
            NodeKind::Ephemeral(session_id) => {
                self.ephemerals
                    .entry(session_id)
                    .or_default()
                    .insert(path.clone());
            }
            NodeKind::Container => {
                self.containers.insert(path.clone());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
            NodeKind::Persistent => {}
        }
        self.nodes.insert(path, node);
    }

    /// Removes a childless node. Returns it, or `None` (changing nothing)
    /// if it is missing, has children, or is the root.
    pub fn remove(&mut self, path: &str, zxid: i64) -> Option<Node> {
        if path == "/" || self.nodes.get(path).is_none_or(|n| !n.children.is_empty()) {
            return None;
        }
        let node = self.nodes.remove(path)?;
        self.child_high_water.remove(path);
        let parent_path = path::parent(path);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            let before = parent.children.len();
            parent.children.remove(path::name(path));
            parent.pzxid = zxid;
            let most = self.child_high_water.get(parent_path).copied();
            self.child_high_water
                .insert(parent_path.to_string(), most.unwrap_or(0).max(before));
        }
        match node.kind() {
            NodeKind::Ephemeral(session_id) => {
                if let Some(set) = self.ephemerals.get_mut(&session_id) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&session_id);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Persistent => {}
        }
        Some(node)
    }

    /// Mutable access for set-data and set-ACL.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        self.nodes.get_mut(path)
    }

    /// A new node as a create makes it.
    pub fn new_node(
        &mut self,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        owner: i64,
        zxid: i64,
        time_ms: i64,
    ) -> Node {
        let acl = self.intern_acl(acl);
        let mut node = Tree::blank_node(acl);
        node.data = data;
        node.owner = owner;
        node.czxid = zxid;
        node.mzxid = zxid;
        node.pzxid = zxid;
        node.ctime = time_ms;
        node.mtime = time_ms;
        node
    }

    /// Checks the invariants that tie the indexes and counters together;
    /// returns the first violation found.
    pub fn check_invariants(&self, last_zxid: i64) -> Result<(), String> {
        for (p, most) in &self.child_high_water {
            match self.nodes.get(p) {
                Some(node) if node.children.len() < *most => {}
                _ => return Err(format!("{p}: stale child high-water {most}")),
            }
        }
        for (p, node) in &self.nodes {
            if p != "/" {
                let parent = self
                    .nodes
                    .get(path::parent(p))
                    .ok_or_else(|| format!("{p}: parent missing"))?;
                if !parent.children.contains(path::name(p)) {
                    return Err(format!("{p}: not listed by its parent"));
                }
                if let NodeKind::Ephemeral(_) = parent.kind() {
                    return Err(format!("{p}: child of an ephemeral"));
                }
            }
            for child in &node.children {
                if !self.nodes.contains_key(&path::join(p, child)) {
                    return Err(format!("{p}: lists missing child {child}"));
                }
            }
            if node.mzxid > last_zxid || node.pzxid > last_zxid || node.czxid > last_zxid {
                return Err(format!("{p}: zxid ahead of the last zxid {last_zxid}"));
            }
            if node.mzxid < node.czxid || node.pzxid < node.czxid {
                return Err(format!("{p}: mzxid or pzxid before czxid"));
            }
            if !Tree::is_system(p) && i64::from(node.creates) < node.children.len() as i64 {
                return Err(format!("{p}: fewer creates than children"));
            }
            let indexed = match node.kind() {
                NodeKind::Ephemeral(s) => self.ephemerals.get(&s).is_some_and(|e| e.contains(p)),
                NodeKind::Container => self.containers.contains(p),
                NodeKind::Ttl(_) => self.ttls.contains(p),
                NodeKind::Persistent => true,
            };
            if !indexed {
                return Err(format!("{p}: missing from its kind's index"));
            }
        }
        let indexed = self.ephemeral_count() + self.containers.len() + self.ttls.len();
        let actual = self
            .nodes
            .values()
            .filter(|n| n.kind() != NodeKind::Persistent)
            .count();
        if indexed != actual {
            return Err(format!(
                "index holds {indexed} special nodes, tree {actual}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tree_matches_zookeeper() {
        // Reference: zookeeper-reference.md A.2 and B.3.
        let tree = Tree::new();
        assert_eq!(tree.len(), 4);
        assert_eq!(tree.get("/").unwrap().stat().cversion, -1);
        assert_eq!(tree.get("/zookeeper").unwrap().stat().cversion, -2);
        assert_eq!(tree.get("/zookeeper/config").unwrap().stat().aversion, -1);
        assert_eq!(tree.count_descendants("/"), 3);
        tree.check_invariants(0).unwrap();
    }

    #[test]
    fn owner_encoding_round_trips() {
        for kind in [
            NodeKind::Persistent,
            NodeKind::Ephemeral(0x0100_0000_0000_0001),
            NodeKind::Container,
            NodeKind::Ttl(1),
            NodeKind::Ttl(TTL_MAX_MS),
        ] {
            assert_eq!(NodeKind::from_owner(kind.owner()), kind);
        }
    }

    #[test]
    fn insert_and_remove_keep_counters() {
        let mut tree = Tree::new();
        let node = tree.new_node(None, Acl::open_unsafe(), 0, 2, 10);
        assert!(tree.insert("/a", node, 2));
        let node = tree.new_node(None, Acl::open_unsafe(), 7, 3, 10);
        assert!(tree.insert("/a/e", node, 3));
        assert!(tree.remove("/a", 4).is_none(), "has children");
        assert!(tree.remove("/a/e", 4).is_some());
        let a = tree.get("/a").unwrap().stat();
        assert_eq!((a.cversion, a.num_children, a.pzxid), (2, 0, 4));
        assert_eq!(tree.ephemerals_of(7).count(), 0);
        tree.check_invariants(4).unwrap();
    }
}
