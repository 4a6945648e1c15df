//! The server-side watch table (`docs/zookeeper-semantics.md` D).
//!
//! Two tables, data and child, each holding at most one entry per
//! (path, session) with a mode, as ZooKeeper 3.8 does: a later registration
//! on the same (path, session) replaces the mode (so a one-shot read watch
//! turns a persistent one into one-shot; D.3). `trigger` consumes applied
//! changes and returns which sessions get which event; delivery is the
//! engine's job.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::change::Change;
use crate::path;

/// A watch entry's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WatchMode {
    /// Fires once.
    Standard,
    /// Stays after firing (`addWatch` mode 0).
    Persistent,
    /// Stays, and matches every descendant (`addWatch` mode 1).
    PersistentRecursive,
}

/// Event types the server sends (D.2); named as ZooKeeper names them.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum EventType {
    /// The node was created.
    NodeCreated,
    /// The node was deleted.
    NodeDeleted,
    /// The node's data was set.
    NodeDataChanged,
    /// A child was created or deleted.
    NodeChildrenChanged,
}

/// Which table a registration or removal addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    /// Set by getData and exists.
    Data,
    /// Set by getChildren.
    Child,
}

#[derive(Debug, Default, Clone)]
struct WatchMap {
    by_path: HashMap<String, BTreeMap<i64, WatchMode>>,
    recursive: usize,
}

impl WatchMap {
    fn add(&mut self, path: &str, session_id: i64, mode: WatchMode) {
        let entries = self.by_path.entry(path.to_string()).or_default();
        let old = entries.insert(session_id, mode);
        if old == Some(WatchMode::PersistentRecursive) {
            self.recursive -= 1;
        }
        if mode == WatchMode::PersistentRecursive {
            self.recursive += 1;
        }
    }

    fn remove(&mut self, path: &str, session_id: i64) -> bool {
        let Some(entries) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(mode) = entries.remove(&session_id) else {
            return false;
        };
        if mode == WatchMode::PersistentRecursive {
            self.recursive -= 1;
        }
        if entries.is_empty() {
            self.by_path.remove(path);
        }
        true
    }

    fn has(&self, path: &str, session_id: i64) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|e| e.contains_key(&session_id))
    }

    /// Sessions matching an event at `changed`, removing fired one-shot
    /// entries; sessions in `suppress` are skipped but still consumed.
    fn trigger(&mut self, changed: &str, event: EventType, out: &mut Vec<i64>) {
        let mut visit = |at: &str, is_ancestor: bool, map: &mut WatchMap| {
            let Some(entries) = map.by_path.get_mut(at) else {
                return;
            };
            entries.retain(|&session_id, &mut mode| match mode {
                WatchMode::PersistentRecursive => {
                    if event != EventType::NodeChildrenChanged {
                        out.push(session_id);
                    }
                    true
                }
                _ if is_ancestor => true,
                WatchMode::Persistent => {
                    out.push(session_id);
                    true
                }
                WatchMode::Standard => {
                    out.push(session_id);
                    false
                }
            });
            if entries.is_empty() {
                map.by_path.remove(at);
            }
        };
        visit(changed, false, self);
        if self.recursive > 0 {
            for ancestor in path::ancestors(changed) {
                visit(ancestor, true, self);
            }
        }
    }
}

/// Both tables, plus a per-session index for cleanup.
#[derive(Debug, Default, Clone)]
pub(crate) struct WatchTable {
    data: WatchMap,
    child: WatchMap,
    by_session: HashMap<i64, HashSet<(Table, String)>>,
}

/// One notification for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notification {
    /// Who receives it.
    pub session_id: i64,
    /// What happened.
    pub event: EventType,
    /// The node it happened to.
    pub path: String,
}

impl WatchTable {
    /// An empty table.
    pub(crate) fn new() -> WatchTable {
        WatchTable::default()
    }

    fn map(&mut self, table: Table) -> &mut WatchMap {
        match table {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        }
    }

    /// Registers (or re-moded) an entry.
    pub(crate) fn add(&mut self, table: Table, path: &str, session_id: i64, mode: WatchMode) {
        self.map(table).add(path, session_id, mode);
        self.by_session
            .entry(session_id)
            .or_default()
            .insert((table, path.to_string()));
    }

    /// `addWatch`: 3.8 puts the entry in both tables.
    pub(crate) fn add_persistent(&mut self, path: &str, session_id: i64, recursive: bool) {
        let mode = if recursive {
            WatchMode::PersistentRecursive
        } else {
            WatchMode::Persistent
        };
        self.add(Table::Data, path, session_id, mode);
        self.add(Table::Child, path, session_id, mode);
    }

    /// Removes this session's entry at exactly `path` in `table`.
    pub(crate) fn remove(&mut self, table: Table, path: &str, session_id: i64) -> bool {
        let removed = self.map(table).remove(path, session_id);
        if removed {
            if let Some(set) = self.by_session.get_mut(&session_id) {
                set.remove(&(table, path.to_string()));
            }
        }
        removed
    }

    /// True when the session has an entry at `path` in `table`.
    pub(crate) fn has(&self, table: Table, path: &str, session_id: i64) -> bool {
        match table {
            Table::Data => self.data.has(path, session_id),
            Table::Child => self.child.has(path, session_id),
        }
    }

    /// Drops every entry of a session (it closed or expired).
    pub(crate) fn remove_session(&mut self, session_id: i64) {
        if let Some(entries) = self.by_session.remove(&session_id) {
            for (table, p) in entries {
                self.map(table).remove(&p, session_id);
            }
        }
    }

    fn record_fired(&mut self, table: Table, path: &str, sessions: &[i64]) {
        for session_id in sessions {
            if !self.map(table).has(path, *session_id) {
                if let Some(set) = self.by_session.get_mut(session_id) {
                    set.remove(&(table, path.to_string()));
                }
            }
        }
    }

    fn fire(&mut self, table: Table, at: &str, event: EventType, skip: &[i64]) -> Vec<i64> {
        let mut hit = Vec::new();
        self.map(table).trigger(at, event, &mut hit);
        hit.sort_unstable();
        hit.dedup();
        self.record_fired(table, at, &hit);
        hit.retain(|s| !skip.contains(s));
        hit
    }

    /// Notifications for one applied change, in ZooKeeper's order (D.2):
    /// create → NodeCreated at the node, NodeChildrenChanged at the parent;
    /// delete → NodeDeleted (data then child table, one per session), then
    /// the parent's NodeChildrenChanged; set-data → NodeDataChanged.
    pub(crate) fn trigger(&mut self, change: &Change) -> Vec<Notification> {
        let mut out = Vec::new();
        let push = |sessions: Vec<i64>, event, path: &str, out: &mut Vec<Notification>| {
            for session_id in sessions {
                out.push(Notification {
                    session_id,
                    event,
                    path: path.to_string(),
                });
            }
        };
        match change {
            Change::Created(p) => {
                let hit = self.fire(Table::Data, p, EventType::NodeCreated, &[]);
                push(hit, EventType::NodeCreated, p, &mut out);
                let parent = path::parent(p);
                let hit = self.fire(Table::Child, parent, EventType::NodeChildrenChanged, &[]);
                push(hit, EventType::NodeChildrenChanged, parent, &mut out);
            }
            Change::Deleted(p) => {
                let first = self.fire(Table::Data, p, EventType::NodeDeleted, &[]);
                let second = self.fire(Table::Child, p, EventType::NodeDeleted, &first);
                push(first, EventType::NodeDeleted, p, &mut out);
                push(second, EventType::NodeDeleted, p, &mut out);
                let parent = path::parent(p);
                let hit = self.fire(Table::Child, parent, EventType::NodeChildrenChanged, &[]);
                push(hit, EventType::NodeChildrenChanged, parent, &mut out);
            }
            Change::DataChanged(p) => {
                let hit = self.fire(Table::Data, p, EventType::NodeDataChanged, &[]);
                push(hit, EventType::NodeDataChanged, p, &mut out);
            }
        }
        out
    }

    /// Number of entries in both tables.
    pub(crate) fn len(&self) -> usize {
        self.by_session.values().map(HashSet::len).sum()
    }

    /// True when there are no watches.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions watching each path in one table, sorted by path and id
    /// (ZooKeeper's `wchs`/`wchc`/`wchp` report the data table).
    pub(crate) fn table_by_path(&self, table: Table) -> BTreeMap<String, Vec<i64>> {
        let map = match table {
            Table::Data => &self.data,
            Table::Child => &self.child,
        };
        map.by_path
            .iter()
            .map(|(p, entries)| (p.clone(), entries.keys().copied().collect()))
            .collect()
    }

    /// Sessions that hold any watch, sorted.
    #[cfg(test)]
    pub(crate) fn sessions(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .by_session
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(table: &mut WatchTable, change: Change) -> Vec<(i64, EventType, String)> {
        table
            .trigger(&change)
            .into_iter()
            .map(|n| (n.session_id, n.event, n.path))
            .collect()
    }

    #[test]
    fn one_shot_watches_fire_once() {
        // Reference: docs/zookeeper-semantics.md D.2, D.3.
        let mut t = WatchTable::new();
        t.add(Table::Data, "/a", 1, WatchMode::Standard);
        assert_eq!(
            events(&mut t, Change::DataChanged("/a".into())),
            vec![(1, EventType::NodeDataChanged, "/a".into())]
        );
        assert!(events(&mut t, Change::DataChanged("/a".into())).is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn delete_sends_one_event_per_session() {
        let mut t = WatchTable::new();
        t.add(Table::Data, "/a", 1, WatchMode::Standard);
        t.add(Table::Child, "/a", 1, WatchMode::Standard);
        t.add(Table::Child, "/a", 2, WatchMode::Standard);
        t.add(Table::Child, "/", 3, WatchMode::Standard);
        assert_eq!(
            events(&mut t, Change::Deleted("/a".into())),
            vec![
                (1, EventType::NodeDeleted, "/a".into()),
                (2, EventType::NodeDeleted, "/a".into()),
                (3, EventType::NodeChildrenChanged, "/".into()),
            ]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn recursive_watches_skip_children_changed() {
        let mut t = WatchTable::new();
        t.add_persistent("/a", 1, true);
        assert_eq!(
            events(&mut t, Change::Created("/a/b/c".into())),
            vec![(1, EventType::NodeCreated, "/a/b/c".into())]
        );
        assert_eq!(
            events(&mut t, Change::Created("/a".into())),
            vec![(1, EventType::NodeCreated, "/a".into())]
        );
        assert_eq!(t.len(), 2, "persistent entries stay");
    }

    #[test]
    fn persistent_watch_sees_children_changed() {
        let mut t = WatchTable::new();
        t.add_persistent("/a", 1, false);
        assert_eq!(
            events(&mut t, Change::Created("/a/b".into())),
            vec![(1, EventType::NodeChildrenChanged, "/a".into())]
        );
        assert!(events(&mut t, Change::Created("/a/b/c".into())).is_empty());
    }

    #[test]
    fn a_read_watch_downgrades_a_persistent_one() {
        // Reference: docs/zookeeper-semantics.md D.3, the 3.8 quirk.
        let mut t = WatchTable::new();
        t.add_persistent("/a", 1, false);
        t.add(Table::Data, "/a", 1, WatchMode::Standard);
        assert_eq!(events(&mut t, Change::DataChanged("/a".into())).len(), 1);
        assert!(events(&mut t, Change::DataChanged("/a".into())).is_empty());
        assert!(t.has(Table::Child, "/a", 1));
    }

    #[test]
    fn remove_session_clears_everything() {
        let mut t = WatchTable::new();
        t.add_persistent("/a", 1, true);
        t.add(Table::Data, "/b", 1, WatchMode::Standard);
        t.add(Table::Data, "/b", 2, WatchMode::Standard);
        t.remove_session(1);
        assert_eq!(t.sessions(), vec![2]);
        assert!(events(&mut t, Change::Created("/a/x".into())).is_empty());
    }
}
