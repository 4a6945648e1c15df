//! The simulator's reference model: the tree as plain maps, ZooKeeper's
//! rules for the ops the simulator issues written out directly (in the
//! engine's check order), and the watch tables of each session.

use std::collections::{BTreeMap, BTreeSet};

use innkeeper::{CreateMode, ErrorKind, EventType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Persistent,
    Ephemeral,
    Container,
    Ttl(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MNode {
    pub data: Vec<u8>,
    pub version: i32,
    pub aversion: i32,
    /// Children ever created (the sequence source).
    pub creates: i32,
    pub owner: i64,
    pub kind: Kind,
    /// Digest ACL (all for the digest user, read for anyone) instead of open.
    pub restricted: bool,
    pub mtime: i64,
    /// Distinguishes a node from an earlier node of the same path.
    pub incarnation: u64,
    pub children: BTreeSet<String>,
}

/// A resolved write op.
#[derive(Debug, Clone)]
pub enum WOp {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
        restricted: bool,
        ttl_ms: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    Set {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    SetAcl {
        path: String,
        restricted: bool,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Deleted(String),
    Data(String),
}

/// One session's watches, as the server keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watches {
    pub data: BTreeSet<String>,
    pub child: BTreeSet<String>,
    pub persistent: BTreeSet<String>,
    pub recursive: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub nodes: BTreeMap<String, MNode>,
    next_incarnation: u64,
}

pub fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

pub fn name(p: &str) -> &str {
    &p[p.rfind('/').map_or(0, |i| i + 1)..]
}

pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Model {
    pub fn new() -> Model {
        let mut nodes = BTreeMap::new();
        let blank = |incarnation| MNode {
            data: Vec::new(),
            version: 0,
            aversion: 0,
            creates: 0,
            owner: 0,
            kind: Kind::Persistent,
            restricted: false,
            mtime: 0,
            incarnation,
            children: BTreeSet::new(),
        };
        let mut root = blank(0);
        root.children.insert("zookeeper".into());
        nodes.insert("/".to_string(), root);
        Model {
            nodes,
            next_incarnation: 1,
        }
    }

    /// User nodes (everything but `/` and the system subtree).
    pub fn user_paths(&self) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|p| *p != "/" && !p.starts_with("/zookeeper"))
            .cloned()
            .collect()
    }

    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.kind == Kind::Ephemeral && n.owner == session)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Applies one write for a session; on error nothing changes.
    /// Returns the changes in order and the created path, if any.
    pub fn write(
        &mut self,
        session: i64,
        auth: bool,
        op: &WOp,
        now: i64,
    ) -> Result<(Vec<Change>, Option<String>), ErrorKind> {
        let denied = |n: &MNode| n.restricted && !auth;
        match op {
            WOp::Create {
                path,
                data,
                mode,
                restricted,
                ttl_ms,
            } => {
                let parent_path = parent(path).to_string();
                let parent = self.nodes.get(&parent_path).ok_or(ErrorKind::NoNode)?;
                if denied(parent) {
                    return Err(ErrorKind::NoAuth);
                }
                let final_path = if mode.is_sequential() {
                    format!("{path}{:010}", parent.creates)
                } else {
                    path.clone()
                };
                if self.nodes.contains_key(&final_path) {
                    return Err(ErrorKind::NodeExists);
                }
                if parent.kind == Kind::Ephemeral {
                    return Err(ErrorKind::NoChildrenForEphemerals);
                }
                let kind = if mode.is_ephemeral() {
                    Kind::Ephemeral
                } else if mode.is_container() {
                    Kind::Container
                } else if mode.is_ttl() {
                    Kind::Ttl(*ttl_ms)
                } else {
                    Kind::Persistent
                };
                let incarnation = self.next_incarnation;
                self.next_incarnation += 1;
                let parent = self.nodes.get_mut(&parent_path).expect("checked");
                parent.creates += 1;
                parent.children.insert(name(&final_path).to_string());
                self.nodes.insert(
                    final_path.clone(),
                    MNode {
                        data: data.clone(),
                        version: 0,
                        aversion: 0,
                        creates: 0,
                        owner: if kind == Kind::Ephemeral { session } else { 0 },
                        kind,
                        restricted: *restricted,
                        mtime: now,
                        incarnation,
                        children: BTreeSet::new(),
                    },
                );
                Ok((vec![Change::Created(final_path.clone())], Some(final_path)))
            }
            WOp::Delete { path, version } => {
                let parent = self.nodes.get(parent(path)).ok_or(ErrorKind::NoNode)?;
                if denied(parent) {
                    return Err(ErrorKind::NoAuth);
                }
                let node = self.nodes.get(path).ok_or(ErrorKind::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(ErrorKind::BadVersion);
                }
                if !node.children.is_empty() {
                    return Err(ErrorKind::NotEmpty);
                }
                self.remove(path);
                Ok((vec![Change::Deleted(path.clone())], None))
            }
            WOp::Set {
                path,
                data,
                version,
            } => {
                let node = self.nodes.get_mut(path).ok_or(ErrorKind::NoNode)?;
                if denied(node) {
                    return Err(ErrorKind::NoAuth);
                }
                if *version != -1 && *version != node.version {
                    return Err(ErrorKind::BadVersion);
                }
                node.data = data.clone();
                node.version += 1;
                node.mtime = now;
                Ok((vec![Change::Data(path.clone())], None))
            }
            WOp::SetAcl {
                path,
                restricted,
                version,
            } => {
                let node = self.nodes.get_mut(path).ok_or(ErrorKind::NoNode)?;
                if denied(node) {
                    return Err(ErrorKind::NoAuth);
                }
                if *version != -1 && *version != node.aversion {
                    return Err(ErrorKind::BadVersion);
                }
                node.restricted = *restricted;
                node.aversion += 1;
                Ok((Vec::new(), None))
            }
            WOp::Check { path, version } => {
                let node = self.nodes.get(path).ok_or(ErrorKind::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(ErrorKind::BadVersion);
                }
                Ok((Vec::new(), None))
            }
        }
    }

    /// A multi: all ops or none; the first failure decides the error.
    pub fn multi(
        &mut self,
        session: i64,
        auth: bool,
        ops: &[WOp],
        now: i64,
    ) -> Result<(Vec<Change>, Vec<Option<String>>), ErrorKind> {
        let mut scratch = self.clone();
        let mut changes = Vec::new();
        let mut created = Vec::new();
        for op in ops {
            let (c, name) = scratch.write(session, auth, op, now)?;
            changes.extend(c);
            created.push(name);
        }
        *self = scratch;
        Ok((changes, created))
    }

    pub fn remove(&mut self, path: &str) {
        self.nodes.remove(path);
        if let Some(parent) = self.nodes.get_mut(parent(path)) {
            parent.children.remove(name(path));
        }
    }

    /// Whether the reaper may delete `path` at `now` (ZooKeeper's rules:
    /// an empty container that once had a child; an empty TTL node not
    /// modified for longer than its TTL).
    pub fn reapable(&self, path: &str, now: i64) -> bool {
        let Some(node) = self.nodes.get(path) else {
            return false;
        };
        if !node.children.is_empty() {
            return false;
        }
        match node.kind {
            Kind::Container => node.creates > 0,
            Kind::Ttl(ttl) => now - node.mtime > ttl,
            _ => false,
        }
    }
}

/// The events one session hears for `changes` (in order), updating its
/// watch tables as the server does.
pub fn events_for(w: &mut Watches, changes: &[Change]) -> Vec<(EventType, String)> {
    let mut out = Vec::new();
    let recursive_hit = |w: &Watches, p: &str| {
        w.recursive.iter().any(|r| {
            r == p
                || r == "/"
                || (p.starts_with(r.as_str()) && p.as_bytes().get(r.len()) == Some(&b'/'))
        })
    };
    for change in changes {
        match change {
            Change::Created(p) => {
                let one_shot = w.data.remove(p);
                if one_shot || w.persistent.contains(p) || recursive_hit(w, p) {
                    out.push((EventType::NodeCreated, p.clone()));
                }
                let par = parent(p).to_string();
                if w.child.remove(&par) || w.persistent.contains(&par) {
                    out.push((EventType::NodeChildrenChanged, par));
                }
            }
            Change::Deleted(p) => {
                let d = w.data.remove(p);
                let c = w.child.remove(p);
                if d || c || w.persistent.contains(p) || recursive_hit(w, p) {
                    out.push((EventType::NodeDeleted, p.clone()));
                }
                let par = parent(p).to_string();
                if w.child.remove(&par) || w.persistent.contains(&par) {
                    out.push((EventType::NodeChildrenChanged, par));
                }
            }
            Change::Data(p) => {
                let one_shot = w.data.remove(p);
                if one_shot || w.persistent.contains(p) || recursive_hit(w, p) {
                    out.push((EventType::NodeDataChanged, p.clone()));
                }
            }
        }
    }
    out
}
