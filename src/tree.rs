//! The in-memory namespace, kept compact.
//!
//! Nodes live in an arena of fixed-size chunks and are addressed by a `u32`
//! id. A node stores no path: its name is stored once, in its parent's
//! sorted child list (short names inline), and a lookup walks the path's
//! components from the root with one binary search per level. Small data
//! is stored inside the node, larger data in a shared allocation; ACL lists
//! are interned and a node holds their index.
//!
//! The chunks and the child lists are reference counted and copied on
//! write: [`Tree::freeze`] takes an immutable view of every node in
//! O(chunks), and the next write to a chunk the view shares copies that
//! chunk once. That is how a snapshot is encoded off the write path.
//!
//! The tree is mutated only through the txn apply in `state`, which calls
//! the primitives here. It reads no clock, touches no disk and calls no
//! user code.

use std::collections::{BTreeSet, HashMap};
use std::ops::Deref;
use std::sync::Arc;

use crate::node::{Acl, Id, Perms, Stat};
use crate::path;

/// The stored `ephemeralOwner` of a container (`docs/zookeeper-semantics.md` A.3).
pub(crate) const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of the stored `ephemeralOwner` of a TTL node.
const TTL_MARKER: u64 = 0xFF00_0000_0000_0000;
/// The largest TTL ZooKeeper accepts (2^40 − 1 ms).
pub(crate) const TTL_MAX_MS: i64 = 0xFF_FFFF_FFFF;

/// What a stored `ephemeralOwner` says about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
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
    pub(crate) fn from_owner(owner: i64) -> NodeKind {
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
    pub(crate) fn owner(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(session_id) => session_id,
            NodeKind::Container => CONTAINER_OWNER,
            NodeKind::Ttl(ttl_ms) => (TTL_MARKER | (ttl_ms & TTL_MAX_MS) as u64) as i64,
        }
    }
}

/// A node's index in the arena.
pub(crate) type NodeId = u32;
/// The root's id.
const ROOT: NodeId = 0;
/// Nodes per arena chunk (the unit a snapshot view shares and a write
/// copies).
const CHUNK_BITS: u32 = 10;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
/// Data up to this many bytes is stored inside the node.
const INLINE_DATA: usize = 22;
/// Names up to this many bytes are stored inside the parent's child list.
const INLINE_NAME: usize = 14;

/// A node's data.
#[derive(Debug, Clone)]
enum Data {
    /// ZooKeeper's null.
    Null,
    /// Short data, in place.
    Inline { len: u8, bytes: [u8; INLINE_DATA] },
    /// Longer data, shared (so copying a chunk copies no data).
    Shared(Arc<[u8]>),
}

impl Data {
    fn new(data: Option<&[u8]>) -> Data {
        match data {
            None => Data::Null,
            Some(d) if d.len() <= INLINE_DATA => {
                let mut bytes = [0; INLINE_DATA];
                bytes[..d.len()].copy_from_slice(d);
                Data::Inline {
                    len: d.len() as u8,
                    bytes,
                }
            }
            Some(d) => Data::Shared(Arc::from(d)),
        }
    }

    fn get(&self) -> Option<&[u8]> {
        match self {
            Data::Null => None,
            Data::Inline { len, bytes } => Some(&bytes[..usize::from(*len).min(INLINE_DATA)]),
            Data::Shared(d) => Some(d),
        }
    }
}

/// A child's name, as its parent stores it.
#[derive(Debug, Clone)]
enum Name {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Heap(Arc<String>),
}

impl Name {
    fn new(name: &str) -> Name {
        if name.len() <= INLINE_NAME {
            let mut bytes = [0; INLINE_NAME];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            Name::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            Name::Heap(Arc::new(name.to_string()))
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..usize::from(*len).min(INLINE_NAME)],
            Name::Heap(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Built from a `&str`, so always UTF-8.
            Name::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or(""),
            Name::Heap(s) => s,
        }
    }
}

/// A node's children: names in byte order, ids beside them.
#[derive(Debug, Clone, Default)]
struct Children {
    names: Vec<Name>,
    ids: Vec<NodeId>,
}

impl Children {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.names
            .binary_search_by(|n| n.as_bytes().cmp(name.as_bytes()))
    }
}

/// One node's stored fields. Read through [`Node`], which derefs to it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
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
    /// Stored ephemeral owner (see [`NodeKind`]).
    pub owner: i64,
    /// Set-data count.
    pub version: i32,
    /// Child-create count: ZooKeeper's stored cversion, the sequence source.
    pub creates: i32,
    /// Set-ACL count.
    pub aversion: i32,
    /// Index of the ACL list in the tree's table.
    acl: u32,
    data: Data,
    children: Option<Arc<Children>>,
}

impl Entry {
    /// The node's kind.
    pub(crate) fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.owner)
    }

    /// Number of children.
    pub(crate) fn num_children(&self) -> usize {
        self.children.as_ref().map_or(0, |c| c.ids.len())
    }

    /// The data (`None` is ZooKeeper's null, distinct from empty).
    pub(crate) fn data(&self) -> Option<&[u8]> {
        self.data.get()
    }

    /// The Stat clients see (`docs/zookeeper-semantics.md` B.3 for cversion).
    pub(crate) fn stat(&self) -> Stat {
        let num_children = i32::try_from(self.num_children()).unwrap_or(i32::MAX);
        let data_length = self
            .data()
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

    fn blank(acl: u32) -> Entry {
        Entry {
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            owner: 0,
            version: 0,
            creates: 0,
            aversion: 0,
            acl,
            data: Data::Null,
            children: None,
        }
    }
}

/// The fields of a node as a snapshot restores them.
#[derive(Debug, Clone)]
pub(crate) struct Restored<'a> {
    /// The data.
    pub data: Option<&'a [u8]>,
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last set-data.
    pub mzxid: i64,
    /// zxid of the last child create or delete.
    pub pzxid: i64,
    /// Create time.
    pub ctime: i64,
    /// Last set-data time.
    pub mtime: i64,
    /// Set-data count.
    pub version: i32,
    /// Child-create count.
    pub creates: i32,
    /// Set-ACL count.
    pub aversion: i32,
    /// Stored owner.
    pub owner: i64,
}

/// A node, as reads see it: its fields (through `Deref`) plus its ACL and
/// children, which live in the tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'a> {
    entry: &'a Entry,
    nodes: &'a Nodes,
}

impl<'a> Deref for Node<'a> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.entry
    }
}

impl<'a> Node<'a> {
    /// The ACL list.
    pub(crate) fn acl(&self) -> &'a Arc<[Acl]> {
        self.nodes.acl(self.entry.acl)
    }

    /// The data, borrowed from the tree.
    pub(crate) fn data(&self) -> Option<&'a [u8]> {
        self.entry.data.get()
    }

    /// The children's names, sorted.
    pub(crate) fn children(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.entry
            .children
            .as_deref()
            .into_iter()
            .flat_map(|c| c.names.iter().map(Name::as_str))
    }

    /// The children's names, sorted, as owned strings.
    pub(crate) fn child_names(&self) -> Vec<String> {
        self.children().map(str::to_string).collect()
    }

    /// The fields a snapshot stores for this node.
    pub(crate) fn restored(&self) -> Restored<'a> {
        Restored {
            data: self.data(),
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            creates: self.creates,
            aversion: self.aversion,
            owner: self.owner,
        }
    }
}

/// One arena chunk.
type Chunk = Vec<Option<Entry>>;

/// The nodes and the ACL table: what a snapshot needs, shared cheaply.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nodes {
    chunks: Vec<Arc<Chunk>>,
    acls: Vec<Arc<[Acl]>>,
    len: usize,
}

/// An immutable view of the tree's nodes at one moment (see
/// [`Tree::freeze`]).
pub(crate) type Frozen = Nodes;

impl Nodes {
    fn entry(&self, id: NodeId) -> Option<&Entry> {
        self.chunks
            .get((id >> CHUNK_BITS) as usize)?
            .get(id as usize & (CHUNK_LEN - 1))?
            .as_ref()
    }

    fn node(&self, id: NodeId) -> Option<Node<'_>> {
        Some(Node {
            entry: self.entry(id)?,
            nodes: self,
        })
    }

    fn acl(&self, idx: u32) -> &Arc<[Acl]> {
        // Indexes come from `intern_acl`; the table never shrinks.
        &self.acls[idx as usize]
    }

    /// The ACL lists, in table order (nodes refer to them by position).
    pub(crate) fn acl_lists(&self) -> &[Arc<[Acl]>] {
        &self.acls
    }

    /// A node's ACL position in [`Nodes::acl_lists`].
    pub(crate) fn acl_index(node: &Node<'_>) -> u32 {
        node.entry.acl
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn lookup(&self, p: &str) -> Option<NodeId> {
        if p == "/" {
            return self.entry(ROOT).map(|_| ROOT);
        }
        let rest = p.strip_prefix('/')?;
        let mut id = ROOT;
        for name in rest.split('/') {
            let children = self.entry(id)?.children.as_deref()?;
            let idx = children.find(name).ok()?;
            id = children.ids[idx];
        }
        Some(id)
    }

    /// The node at `path`.
    pub(crate) fn get(&self, p: &str) -> Option<Node<'_>> {
        self.node(self.lookup(p)?)
    }

    /// Calls `f(path, depth, name, node)` for every node, parents before
    /// children and children in name order (depth first from the root,
    /// whose depth is 0 and name empty). No recursion, one path buffer.
    pub(crate) fn walk<E>(
        &self,
        mut f: impl FnMut(&str, usize, &str, Node<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(root) = self.node(ROOT) else {
            return Ok(());
        };
        f("/", 0, "", root)?;
        let mut path = String::from("/");
        // (parent, next child index, parent's path length)
        let mut stack: Vec<(NodeId, usize, usize)> = vec![(ROOT, 0, 1)];
        while let Some(top) = stack.last_mut() {
            let (parent, idx, parent_len) = *top;
            let children = self.entry(parent).and_then(|e| e.children.as_deref());
            let Some((name, &child)) =
                children.and_then(|c| Some((c.names.get(idx)?, c.ids.get(idx)?)))
            else {
                stack.pop();
                continue;
            };
            top.1 += 1;
            path.truncate(parent_len);
            if parent_len > 1 {
                path.push('/');
            }
            let name = name.as_str();
            path.push_str(name);
            let Some(node) = self.node(child) else {
                continue;
            };
            let depth = stack.len();
            f(&path, depth, name, node)?;
            if node.num_children() > 0 {
                stack.push((child, 0, path.len()));
            }
        }
        Ok(())
    }
}

/// The namespace plus its indexes.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    nodes: Nodes,
    /// Ids of vacant slots.
    free: Vec<NodeId>,
    acl_ids: HashMap<Arc<[Acl]>, u32>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    /// Containers the reaper should delete: they had children and have none.
    containers_due: BTreeSet<String>,
    /// Childless TTL nodes by the time they expire (mtime + ttl).
    ttl_queue: BTreeSet<(i64, String)>,
    /// Number of containers and TTL nodes (for the invariant check).
    special: usize,
    /// The most children a node ever had at once, kept only for nodes that
    /// have fewer now: ZooKeeper's child sets never shrink, and the order
    /// it lists children in depends on their size (`javaorder`). Not in
    /// snapshots: a tree loaded from one starts from the current counts,
    /// as ZooKeeper's sets rebuilt from its snapshot do.
    child_high_water: HashMap<String, usize>,
}

/// The system nodes every tree starts with (`docs/zookeeper-semantics.md` A.2).
pub(crate) const SYSTEM_PATHS: [&str; 4] =
    ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

impl Default for Tree {
    fn default() -> Tree {
        Tree::new()
    }
}

impl Tree {
    /// A tree without a single node, not even the root (the snapshot
    /// decoder fills it).
    pub(crate) fn empty() -> Tree {
        Tree {
            nodes: Nodes::default(),
            free: Vec::new(),
            acl_ids: HashMap::new(),
            ephemerals: HashMap::new(),
            containers_due: BTreeSet::new(),
            ttl_queue: BTreeSet::new(),
            special: 0,
            child_high_water: HashMap::new(),
        }
    }

    /// A fresh tree holding only the system nodes, all stats zero.
    pub(crate) fn new() -> Tree {
        let mut tree = Tree::empty();
        let open = tree.intern_acl(&Acl::open_unsafe());
        let read = tree.intern_acl(&[Acl::new(Perms::READ, Id::anyone())]);
        let mut ids = Vec::new();
        for p in SYSTEM_PATHS {
            let acl = if p == "/zookeeper/config" { read } else { open };
            let mut entry = Entry::blank(acl);
            entry.data = Data::new(Some(&[]));
            if p == "/zookeeper/config" {
                entry.aversion = -1;
            }
            ids.push(tree.alloc(entry));
        }
        // Linked by hand: the system nodes' parents count no creates.
        let (zk, quota, config) = (ids[1], ids[2], ids[3]);
        tree.link(ROOT, "zookeeper", zk);
        tree.link(zk, "config", config);
        tree.link(zk, "quota", quota);
        tree
    }

    /// The most children the node at `path` ever had at once (since it was
    /// created, or since the tree was loaded from a snapshot).
    pub(crate) fn child_high_water(&self, path: &str, node: &Node<'_>) -> usize {
        self.child_high_water
            .get(path)
            .copied()
            .unwrap_or(0)
            .max(node.num_children())
    }

    /// True for the four nodes no client may delete.
    pub(crate) fn is_system(path: &str) -> bool {
        SYSTEM_PATHS.contains(&path)
    }

    /// The node at `path`.
    pub(crate) fn get(&self, path: &str) -> Option<Node<'_>> {
        self.nodes.get(path)
    }

    /// Number of nodes, system nodes included.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len
    }

    /// True when the tree has no node (only a tree being decoded).
    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.len == 0
    }

    /// Calls `f(path, node)` for every node, parents first.
    #[cfg(test)]
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, Node<'_>)) {
        let _ = self.nodes.walk(|p, _, _, node| {
            f(p, node);
            Ok::<(), ()>(())
        });
    }

    /// An immutable view of every node and the ACL table, in O(chunks):
    /// the tree copies a shared chunk the first time it writes to it.
    pub(crate) fn freeze(&self) -> Frozen {
        self.nodes.clone()
    }

    /// Index of an equal ACL list, adding it if new.
    pub(crate) fn intern_acl(&mut self, acl: &[Acl]) -> u32 {
        if let Some(&idx) = self.acl_ids.get(acl) {
            return idx;
        }
        let idx = self.nodes.acls.len() as u32;
        let shared: Arc<[Acl]> = Arc::from(acl);
        self.nodes.acls.push(shared.clone());
        self.acl_ids.insert(shared, idx);
        idx
    }

    /// The ephemerals of a session, sorted.
    pub(crate) fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session_id).into_iter().flatten()
    }

    /// Sessions that own at least one ephemeral.
    pub(crate) fn ephemeral_owners(&self) -> impl Iterator<Item = i64> + '_ {
        self.ephemerals.keys().copied()
    }

    /// Number of ephemeral nodes.
    pub(crate) fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Number of descendants of `path` (not counting itself).
    pub(crate) fn count_descendants(&self, path: &str) -> u64 {
        let Some(id) = self.nodes.lookup(path) else {
            return 0;
        };
        let mut count = 0u64;
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if let Some(children) = self.nodes.entry(id).and_then(|e| e.children.as_deref()) {
                count += children.ids.len() as u64;
                stack.extend(
                    children
                        .ids
                        .iter()
                        .filter(|c| self.nodes.entry(**c).is_some_and(|e| e.num_children() > 0)),
                );
            }
        }
        count
    }

    /// Sum of data lengths and path lengths, as ZooKeeper approximates it.
    pub(crate) fn approximate_data_size(&self) -> u64 {
        let mut total = 0u64;
        let _ = self.nodes.walk(|p, _, _, node| {
            total += (p.len() + node.data().map_or(0, <[u8]>::len)) as u64;
            Ok::<(), ()>(())
        });
        total
    }

    /// Containers and TTL nodes the reaper should delete at `now_ms`
    /// (`docs/zookeeper-semantics.md` A.6), sorted. Costs O(due), whatever the
    /// number of containers and TTL nodes.
    pub(crate) fn reapable(&self, now_ms: i64) -> Vec<String> {
        let mut due: Vec<String> = self.containers_due.iter().cloned().collect();
        for (deadline, p) in &self.ttl_queue {
            if *deadline >= now_ms {
                break;
            }
            if let Some(node) = self.get(p) {
                if let NodeKind::Ttl(ttl_ms) = node.kind() {
                    if node.num_children() == 0 && now_ms.saturating_sub(node.mtime) > ttl_ms {
                        due.push(p.clone());
                    }
                }
            }
        }
        due.sort();
        due.dedup();
        due
    }

    fn ttl_deadline(entry: &Entry) -> Option<i64> {
        match entry.kind() {
            NodeKind::Ttl(ttl_ms) => Some(entry.mtime.saturating_add(ttl_ms)),
            _ => None,
        }
    }

    // ---- arena ----------------------------------------------------------

    fn alloc(&mut self, entry: Entry) -> NodeId {
        self.nodes.len += 1;
        if let Some(id) = self.free.pop() {
            if let Some(slot) = self.slot_mut(id) {
                *slot = Some(entry);
                return id;
            }
        }
        let last_full = self
            .nodes
            .chunks
            .last()
            .is_none_or(|c| c.len() == CHUNK_LEN);
        if last_full {
            self.nodes
                .chunks
                .push(Arc::new(Vec::with_capacity(CHUNK_LEN)));
        }
        let chunk_idx = self.nodes.chunks.len() - 1;
        let chunk = Arc::make_mut(&mut self.nodes.chunks[chunk_idx]);
        let id = ((chunk_idx << CHUNK_BITS) + chunk.len()) as NodeId;
        chunk.push(Some(entry));
        id
    }

    fn slot_mut(&mut self, id: NodeId) -> Option<&mut Option<Entry>> {
        let chunk = self.nodes.chunks.get_mut((id >> CHUNK_BITS) as usize)?;
        Arc::make_mut(chunk).get_mut(id as usize & (CHUNK_LEN - 1))
    }

    fn entry_mut(&mut self, id: NodeId) -> Option<&mut Entry> {
        self.slot_mut(id)?.as_mut()
    }

    fn release(&mut self, id: NodeId) -> Option<Entry> {
        let entry = self.slot_mut(id)?.take()?;
        self.nodes.len -= 1;
        self.free.push(id);
        Some(entry)
    }

    /// Adds `child` under `parent` as `name` at its sorted position.
    fn link(&mut self, parent: NodeId, name: &str, child: NodeId) -> bool {
        let Some(entry) = self.entry_mut(parent) else {
            return false;
        };
        let children = Arc::make_mut(entry.children.get_or_insert_with(Default::default));
        match children.find(name) {
            Ok(_) => false,
            Err(at) => {
                children.names.insert(at, Name::new(name));
                children.ids.insert(at, child);
                true
            }
        }
    }

    /// The parent's id and the node's id (if it exists) of a path other
    /// than the root.
    fn locate(&self, p: &str) -> Option<(NodeId, Option<NodeId>)> {
        if p == "/" {
            return None;
        }
        let parent = self.nodes.lookup(path::parent(p))?;
        let children = self.nodes.entry(parent)?.children.as_deref();
        let child = children.and_then(|c| c.find(path::name(p)).ok().map(|i| c.ids[i]));
        Some((parent, child))
    }

    // ---- indexes --------------------------------------------------------

    fn index(&mut self, p: &str, entry: &Entry) {
        match entry.kind() {
            NodeKind::Ephemeral(session_id) => {
                self.ephemerals
                    .entry(session_id)
                    .or_default()
                    .insert(p.to_string());
            }
            NodeKind::Container => {
                self.special += 1;
                if entry.creates > 0 && entry.num_children() == 0 {
                    self.containers_due.insert(p.to_string());
                }
            }
            NodeKind::Ttl(_) => {
                self.special += 1;
                if entry.num_children() == 0 {
                    if let Some(deadline) = Tree::ttl_deadline(entry) {
                        self.ttl_queue.insert((deadline, p.to_string()));
                    }
                }
            }
            NodeKind::Persistent => {}
        }
    }

    fn unindex(&mut self, p: &str, entry: &Entry) {
        match entry.kind() {
            NodeKind::Ephemeral(session_id) => {
                if let Some(set) = self.ephemerals.get_mut(&session_id) {
                    set.remove(p);
                    if set.is_empty() {
                        self.ephemerals.remove(&session_id);
                    }
                }
            }
            NodeKind::Container => {
                self.special -= 1;
                self.containers_due.remove(p);
            }
            NodeKind::Ttl(_) => {
                self.special -= 1;
                if let Some(deadline) = Tree::ttl_deadline(entry) {
                    self.ttl_queue.remove(&(deadline, p.to_string()));
                }
            }
            NodeKind::Persistent => {}
        }
    }

    /// A parent's child count changed: re-file it in the reaper's indexes.
    fn reindex_parent(&mut self, parent: NodeId, parent_path: &str) {
        let Some(entry) = self.nodes.entry(parent) else {
            return;
        };
        match entry.kind() {
            NodeKind::Container => {
                if entry.creates > 0 && entry.num_children() == 0 {
                    self.containers_due.insert(parent_path.to_string());
                } else {
                    self.containers_due.remove(parent_path);
                }
            }
            NodeKind::Ttl(_) => {
                if let Some(deadline) = Tree::ttl_deadline(entry) {
                    let key = (deadline, parent_path.to_string());
                    if entry.num_children() == 0 {
                        self.ttl_queue.insert(key);
                    } else {
                        self.ttl_queue.remove(&key);
                    }
                }
            }
            _ => {}
        }
    }

    // ---- mutations (called by `State::apply`) ---------------------------

    /// Creates a node under an existing parent; returns its Stat, or
    /// `None` (changing nothing) if the parent is missing or the node
    /// exists.
    pub(crate) fn create(
        &mut self,
        p: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        owner: i64,
        zxid: i64,
        time_ms: i64,
    ) -> Option<Stat> {
        let (parent, None) = self.locate(p)? else {
            return None;
        };
        let acl = self.intern_acl(acl);
        let mut entry = Entry::blank(acl);
        entry.data = Data::new(data);
        entry.owner = owner;
        entry.czxid = zxid;
        entry.mzxid = zxid;
        entry.pzxid = zxid;
        entry.ctime = time_ms;
        entry.mtime = time_ms;
        let stat = entry.stat();
        self.index(p, &entry);
        let id = self.alloc(entry);
        self.link(parent, path::name(p), id);
        let parent_path = path::parent(p);
        if let Some(parent_entry) = self.entry_mut(parent) {
            parent_entry.creates = parent_entry.creates.wrapping_add(1);
            parent_entry.pzxid = zxid;
            let now = parent_entry.num_children();
            if self
                .child_high_water
                .get(parent_path)
                .is_some_and(|&most| now >= most)
            {
                self.child_high_water.remove(parent_path);
            }
        }
        self.reindex_parent(parent, path::parent(p));
        Some(stat)
    }

    /// Removes a childless node. Returns its ACL, or `None` (changing
    /// nothing) if it is missing, has children, or is the root.
    pub(crate) fn remove(&mut self, p: &str, zxid: i64) -> Option<Arc<[Acl]>> {
        let (parent, Some(id)) = self.locate(p)? else {
            return None;
        };
        if self.nodes.entry(id)?.num_children() > 0 {
            return None;
        }
        let entry = self.release(id)?;
        self.child_high_water.remove(p);
        let name = path::name(p);
        let parent_path = path::parent(p);
        let before = self.nodes.entry(parent).map_or(0, Entry::num_children);
        let most = self.child_high_water.get(parent_path).copied();
        self.child_high_water
            .insert(parent_path.to_string(), most.unwrap_or(0).max(before));
        if let Some(parent_entry) = self.entry_mut(parent) {
            if let Some(children) = parent_entry.children.as_mut() {
                let children = Arc::make_mut(children);
                if let Ok(at) = children.find(name) {
                    children.names.remove(at);
                    children.ids.remove(at);
                }
                if children.ids.is_empty() {
                    parent_entry.children = None;
                }
            }
            parent_entry.pzxid = zxid;
        }
        self.unindex(p, &entry);
        self.reindex_parent(parent, path::parent(p));
        Some(self.nodes.acl(entry.acl).clone())
    }

    /// Sets a node's data; returns the new Stat, `None` if it is missing.
    pub(crate) fn set_data(
        &mut self,
        p: &str,
        data: Option<&[u8]>,
        zxid: i64,
        time_ms: i64,
    ) -> Option<Stat> {
        let id = self.nodes.lookup(p)?;
        let old_deadline = self.nodes.entry(id).and_then(Tree::ttl_deadline);
        let entry = self.entry_mut(id)?;
        entry.data = Data::new(data);
        entry.version = entry.version.wrapping_add(1);
        entry.mzxid = zxid;
        entry.mtime = time_ms;
        let stat = entry.stat();
        let new_deadline = Tree::ttl_deadline(entry);
        let childless = entry.num_children() == 0;
        if let (Some(old), Some(new)) = (old_deadline, new_deadline) {
            if childless && old != new {
                self.ttl_queue.remove(&(old, p.to_string()));
                self.ttl_queue.insert((new, p.to_string()));
            }
        }
        Some(stat)
    }

    /// Sets a node's ACL; returns the new Stat, `None` if it is missing.
    pub(crate) fn set_acl(&mut self, p: &str, acl: &[Acl]) -> Option<Stat> {
        let id = self.nodes.lookup(p)?;
        let acl = self.intern_acl(acl);
        let entry = self.entry_mut(id)?;
        entry.acl = acl;
        entry.aversion = entry.aversion.wrapping_add(1);
        Some(entry.stat())
    }

    // ---- snapshot restore -----------------------------------------------

    /// Restores the root (the first node a snapshot holds).
    pub(crate) fn restore_root(
        &mut self,
        acl: u32,
        fields: &Restored<'_>,
    ) -> Result<NodeId, String> {
        if !self.is_empty() {
            return Err("a second root".into());
        }
        if fields.owner != 0 {
            return Err("the root is not a plain persistent node".into());
        }
        Ok(self.alloc(Tree::restored(acl, fields)))
    }

    /// Restores a node under `parent` (restored before it), as the last of
    /// its children so far: names must come in increasing order. `p` is
    /// the node's full path (for the indexes).
    pub(crate) fn restore_child(
        &mut self,
        parent: NodeId,
        name: &str,
        p: &str,
        acl: u32,
        fields: &Restored<'_>,
    ) -> Result<NodeId, String> {
        if acl as usize >= self.nodes.acls.len() {
            return Err(format!("node {p:?} names an unknown acl"));
        }
        let parent_entry = self
            .nodes
            .entry(parent)
            .ok_or_else(|| format!("node {p:?} has no parent"))?;
        if let NodeKind::Ephemeral(_) = parent_entry.kind() {
            return Err(format!("node {p:?} is the child of an ephemeral"));
        }
        if let Some(last) = parent_entry
            .children
            .as_deref()
            .and_then(|c| c.names.last())
        {
            if last.as_bytes() >= name.as_bytes() {
                return Err(format!("node {p:?} twice or out of order"));
            }
        }
        let entry = Tree::restored(acl, fields);
        self.index(p, &entry);
        let id = self.alloc(entry);
        if let Some(parent_entry) = self.entry_mut(parent) {
            let children =
                Arc::make_mut(parent_entry.children.get_or_insert_with(Default::default));
            children.names.push(Name::new(name));
            children.ids.push(id);
        }
        self.reindex_parent(parent, path::parent(p));
        Ok(id)
    }

    fn restored(acl: u32, f: &Restored<'_>) -> Entry {
        Entry {
            czxid: f.czxid,
            mzxid: f.mzxid,
            pzxid: f.pzxid,
            ctime: f.ctime,
            mtime: f.mtime,
            owner: f.owner,
            version: f.version,
            creates: f.creates,
            aversion: f.aversion,
            acl,
            data: Data::new(f.data),
            children: None,
        }
    }

    // ---- checks ---------------------------------------------------------

    /// Checks the invariants that tie the indexes and counters together;
    /// returns the first violation found.
    pub(crate) fn check_invariants(&self, last_zxid: i64) -> Result<(), String> {
        for (p, most) in &self.child_high_water {
            match self.get(p) {
                Some(node) if node.num_children() < *most => {}
                _ => return Err(format!("{p}: stale child high-water {most}")),
            }
        }
        let mut count = 0usize;
        let (mut ephemerals, mut special, mut due, mut queued) = (0usize, 0usize, 0usize, 0usize);
        self.nodes.walk(|p, _, _, node| {
            count += 1;
            if let Some(children) = node.children.as_deref() {
                if children.names.len() != children.ids.len() {
                    return Err(format!("{p}: child names and ids differ in number"));
                }
                if children.ids.is_empty() {
                    return Err(format!("{p}: an empty child list is kept"));
                }
                if children
                    .names
                    .windows(2)
                    .any(|w| w[0].as_bytes() >= w[1].as_bytes())
                {
                    return Err(format!("{p}: children out of order"));
                }
                if let NodeKind::Ephemeral(_) = node.kind() {
                    return Err(format!("{p}: an ephemeral has children"));
                }
            }
            if node.mzxid > last_zxid || node.pzxid > last_zxid || node.czxid > last_zxid {
                return Err(format!("{p}: zxid ahead of the last zxid {last_zxid}"));
            }
            if node.mzxid < node.czxid || node.pzxid < node.czxid {
                return Err(format!("{p}: mzxid or pzxid before czxid"));
            }
            if !Tree::is_system(p) && i64::from(node.creates) < node.num_children() as i64 {
                return Err(format!("{p}: fewer creates than children"));
            }
            let childless = node.num_children() == 0;
            let indexed = match node.kind() {
                NodeKind::Ephemeral(s) => {
                    ephemerals += 1;
                    self.ephemerals.get(&s).is_some_and(|e| e.contains(p))
                }
                NodeKind::Container => {
                    special += 1;
                    let is_due = node.creates > 0 && childless;
                    due += usize::from(is_due);
                    self.containers_due.contains(p) == is_due
                }
                NodeKind::Ttl(_) => {
                    special += 1;
                    queued += usize::from(childless);
                    let key = Tree::ttl_deadline(&node).map(|d| (d, p.to_string()));
                    key.is_some_and(|k| self.ttl_queue.contains(&k) == childless)
                }
                NodeKind::Persistent => true,
            };
            if !indexed {
                return Err(format!("{p}: wrong in its kind's index"));
            }
            Ok(())
        })?;
        if count != self.len() {
            return Err(format!("{count} nodes reachable, {} counted", self.len()));
        }
        let counted = self
            .nodes
            .chunks
            .iter()
            .flat_map(|c| c.iter())
            .flatten()
            .count();
        if counted != self.len()
            || counted + self.free.len() != self.nodes.chunks.iter().map(|c| c.len()).sum::<usize>()
        {
            return Err(format!(
                "{counted} nodes stored, {} counted, {} free slots",
                self.len(),
                self.free.len()
            ));
        }
        if ephemerals != self.ephemeral_count()
            || special != self.special
            || due != self.containers_due.len()
            || queued != self.ttl_queue.len()
        {
            return Err(format!(
                "indexes hold {} ephemerals, {} special, {} due containers, {} queued TTLs; \
                 the tree {ephemerals}, {special}, {due}, {queued}",
                self.ephemeral_count(),
                self.special,
                self.containers_due.len(),
                self.ttl_queue.len()
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
        // Reference: docs/zookeeper-semantics.md A.2 and B.3.
        let tree = Tree::new();
        assert_eq!(tree.len(), 4);
        assert_eq!(tree.get("/").unwrap().stat().cversion, -1);
        assert_eq!(tree.get("/zookeeper").unwrap().stat().cversion, -2);
        assert_eq!(tree.get("/zookeeper/config").unwrap().stat().aversion, -1);
        assert_eq!(
            tree.get("/zookeeper").unwrap().child_names(),
            vec!["config", "quota"]
        );
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
        let open = Acl::open_unsafe();
        assert!(tree.create("/a", None, &open, 0, 2, 10).is_some());
        assert!(tree.create("/a/e", None, &open, 7, 3, 10).is_some());
        assert!(
            tree.create("/a/e", None, &open, 7, 3, 10).is_none(),
            "exists"
        );
        assert!(
            tree.create("/b/c", None, &open, 0, 3, 10).is_none(),
            "no parent"
        );
        assert!(tree.remove("/a", 4).is_none(), "has children");
        assert!(tree.remove("/a/e", 4).is_some());
        let a = tree.get("/a").unwrap().stat();
        assert_eq!((a.cversion, a.num_children, a.pzxid), (2, 0, 4));
        assert_eq!(tree.ephemerals_of(7).count(), 0);
        tree.check_invariants(4).unwrap();
    }

    #[test]
    fn names_and_data_of_every_length_round_trip() {
        let mut tree = Tree::new();
        let open = Acl::open_unsafe();
        for len in [1usize, 13, 14, 15, 40] {
            let name = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let p = format!("/{name}");
            let data = vec![7u8; len];
            assert!(tree.create(&p, Some(&data), &open, 0, 2, 1).is_some());
            let node = tree.get(&p).unwrap();
            assert_eq!(node.data(), Some(&data[..]), "{p}");
            assert_eq!(node.stat().data_length as usize, len);
        }
        let names = tree.get("/").unwrap().child_names();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        tree.check_invariants(2).unwrap();
    }

    #[test]
    fn a_frozen_view_keeps_its_moment() {
        let mut tree = Tree::new();
        let open = Acl::open_unsafe();
        for i in 0..3000 {
            tree.create(&format!("/n{i}"), Some(b"v1"), &open, 0, 2, 1);
        }
        let frozen = tree.freeze();
        tree.set_data("/n5", Some(b"v2"), 3, 2);
        tree.remove("/n2999", 4);
        tree.create("/late", None, &open, 0, 5, 2);
        assert_eq!(frozen.get("/n5").unwrap().data(), Some(&b"v1"[..]));
        assert!(frozen.get("/n2999").is_some());
        assert!(frozen.get("/late").is_none());
        assert_eq!(frozen.len(), 3004);
        assert_eq!(tree.get("/n5").unwrap().data(), Some(&b"v2"[..]));
        tree.check_invariants(5).unwrap();
    }

    #[test]
    fn reaping_indexes_follow_children_and_mtime() {
        let mut tree = Tree::new();
        let open = Acl::open_unsafe();
        tree.create("/c", None, &open, CONTAINER_OWNER, 2, 0);
        assert!(tree.reapable(100).is_empty(), "never had children");
        tree.create("/c/x", None, &open, 0, 3, 0);
        tree.remove("/c/x", 4);
        let ttl = NodeKind::Ttl(50).owner();
        tree.create("/t", None, &open, ttl, 5, 0);
        assert_eq!(tree.reapable(50), vec!["/c"]);
        assert_eq!(tree.reapable(51), vec!["/c", "/t"]);
        tree.set_data("/t", None, 6, 40);
        assert_eq!(tree.reapable(51), vec!["/c"]);
        tree.create("/t/k", None, &open, 0, 7, 40);
        assert_eq!(tree.reapable(1000), vec!["/c"]);
        tree.check_invariants(7).unwrap();
    }

    #[test]
    fn a_deep_path_costs_no_path_per_node() {
        let mut tree = Tree::new();
        let open = Acl::open_unsafe();
        let mut p = String::new();
        for i in 0..2000 {
            p.push_str("/d");
            assert!(tree.create(&p, None, &open, 0, i + 2, 0).is_some());
        }
        assert_eq!(tree.count_descendants("/"), 2003);
        assert!(tree.get(&p).is_some());
        tree.check_invariants(2001).unwrap();
    }

    #[test]
    fn nodes_stay_small() {
        // Budget of the compact tree: see benches/tree_memory.rs.
        assert!(std::mem::size_of::<Option<Entry>>() <= 96);
        assert_eq!(std::mem::size_of::<Name>(), 16);
    }
}
