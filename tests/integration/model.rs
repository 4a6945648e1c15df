//! Model-based property test: random sequences of ops from three sessions
//! run on the engine and on a small reference model (a `BTreeMap` of paths
//! with ZooKeeper's rules written out plainly). Every result, error code,
//! Stat field (zxids exactly: a fresh keeper numbers txns from 1) and watch
//! event must agree, and the engine's invariants must hold after each step.
//!
//! Ops include the nasty ones: multi, close, expiry (pause heartbeats and
//! advance the manual clock), sequential names, ephemerals, versions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use innkeeper::{
    Coordinator, CreateMode, ErrorKind, EventType, Keeper, KeeperState, ManualClock, Op, OpResult,
    Session, Stat,
};
use proptest::prelude::*;

const PATHS: [&str; 8] = [
    "/a",
    "/a/b",
    "/b",
    "/a/b/c",
    "/s-0000000000",
    "/a/s-0000000000",
    "/a/s-0000000001",
    "/b/e",
];
const PREFIXES: [&str; 3] = ["/s-", "/a/s-", "/b/e"];
const SLOTS: usize = 3;

#[derive(Debug, Clone)]
enum MOp {
    Create {
        slot: usize,
        target: usize,
        mode: u8,
        data: u8,
    },
    Delete {
        slot: usize,
        path: usize,
        version: i32,
    },
    Set {
        slot: usize,
        path: usize,
        version: i32,
        data: u8,
    },
    Exists {
        slot: usize,
        path: usize,
        watch: bool,
    },
    Get {
        slot: usize,
        path: usize,
        watch: bool,
    },
    Children {
        slot: usize,
        path: usize,
        watch: bool,
    },
    Multi {
        slot: usize,
        ops: Vec<(u8, usize, i32)>,
    },
    Close {
        slot: usize,
    },
    Expire {
        slot: usize,
    },
}

fn op_strategy() -> impl Strategy<Value = MOp> {
    let slot = 0..SLOTS;
    let path = 0..PATHS.len();
    let version = prop_oneof![Just(-1), Just(0), Just(1)];
    prop_oneof![
        4 => (slot.clone(), 0..PATHS.len() + PREFIXES.len(), 0..4u8, 0..3u8)
            .prop_map(|(slot, target, mode, data)| MOp::Create { slot, target, mode, data }),
        2 => (slot.clone(), path.clone(), version.clone())
            .prop_map(|(slot, path, version)| MOp::Delete { slot, path, version }),
        2 => (slot.clone(), path.clone(), version.clone(), 0..3u8)
            .prop_map(|(slot, path, version, data)| MOp::Set { slot, path, version, data }),
        2 => (slot.clone(), path.clone(), any::<bool>())
            .prop_map(|(slot, path, watch)| MOp::Exists { slot, path, watch }),
        1 => (slot.clone(), path.clone(), any::<bool>())
            .prop_map(|(slot, path, watch)| MOp::Get { slot, path, watch }),
        1 => (slot.clone(), path.clone(), any::<bool>())
            .prop_map(|(slot, path, watch)| MOp::Children { slot, path, watch }),
        2 => (slot.clone(), prop::collection::vec((0..4u8, path.clone(), version), 0..4))
            .prop_map(|(slot, ops)| MOp::Multi { slot, ops }),
        1 => slot.clone().prop_map(|slot| MOp::Close { slot }),
        1 => slot.prop_map(|slot| MOp::Expire { slot }),
    ]
}

fn data_of(d: u8) -> Vec<u8> {
    match d {
        0 => Vec::new(),
        1 => b"x".to_vec(),
        _ => b"longer value".to_vec(),
    }
}

fn mode_of(m: u8) -> CreateMode {
    match m {
        0 => CreateMode::Persistent,
        1 => CreateMode::Ephemeral,
        2 => CreateMode::PersistentSequential,
        _ => CreateMode::EphemeralSequential,
    }
}

#[derive(Debug, Clone)]
struct MNode {
    data: Vec<u8>,
    version: i32,
    creates: i32,
    owner: i64,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    children: BTreeSet<String>,
}

impl MNode {
    fn new(data: Vec<u8>, owner: i64, zxid: i64) -> MNode {
        MNode {
            data,
            version: 0,
            creates: 0,
            owner,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            children: BTreeSet::new(),
        }
    }

    fn stat(&self) -> (i32, i32, i64, i32, i32, i64, i64, i64) {
        let n = self.children.len() as i32;
        (
            self.version,
            self.creates * 2 - n,
            self.owner,
            self.data.len() as i32,
            n,
            self.czxid,
            self.mzxid,
            self.pzxid,
        )
    }
}

fn sut_stat(s: &Stat) -> (i32, i32, i64, i32, i32, i64, i64, i64) {
    (
        s.version,
        s.cversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children,
        s.czxid,
        s.mzxid,
        s.pzxid,
    )
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => "/",
    }
}

fn name(p: &str) -> &str {
    &p[p.rfind('/').map_or(0, |i| i + 1)..]
}

#[derive(Debug, Clone)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    zxid: i64,
    data_watches: BTreeSet<(String, usize)>,
    child_watches: BTreeSet<(String, usize)>,
    events: Vec<Vec<(EventType, String)>>,
}

type Outcome = Result<String, ErrorKind>;

impl Model {
    fn new() -> Model {
        let mut nodes = BTreeMap::new();
        let mut root = MNode::new(Vec::new(), 0, 0);
        root.children.insert("zookeeper".into());
        nodes.insert("/".to_string(), root);
        Model {
            nodes,
            zxid: 0,
            data_watches: BTreeSet::new(),
            child_watches: BTreeSet::new(),
            events: vec![Vec::new(); SLOTS],
        }
    }

    fn fire(
        &mut self,
        table_data: bool,
        path: &str,
        event: EventType,
        skip: &BTreeSet<usize>,
    ) -> BTreeSet<usize> {
        let table = if table_data {
            &mut self.data_watches
        } else {
            &mut self.child_watches
        };
        let hit: BTreeSet<usize> = table
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, s)| *s)
            .collect();
        table.retain(|(p, _)| p != path);
        for s in &hit {
            if !skip.contains(s) {
                self.events[*s].push((event, path.to_string()));
            }
        }
        hit
    }

    fn create(
        &mut self,
        requested: &str,
        data: Vec<u8>,
        mode: CreateMode,
        owner: i64,
        zxid: i64,
    ) -> Outcome {
        let par = parent(requested).to_string();
        let parent_node = self.nodes.get(&par).ok_or(ErrorKind::NoNode)?;
        let path = if mode == CreateMode::PersistentSequential
            || mode == CreateMode::EphemeralSequential
        {
            format!("{requested}{:010}", parent_node.creates)
        } else {
            requested.to_string()
        };
        if self.nodes.contains_key(&path) {
            return Err(ErrorKind::NodeExists);
        }
        if parent_node.owner != 0 {
            return Err(ErrorKind::NoChildrenForEphemerals);
        }
        let owner = if mode == CreateMode::Ephemeral || mode == CreateMode::EphemeralSequential {
            owner
        } else {
            0
        };
        let p = self.nodes.get_mut(&par).unwrap();
        p.creates += 1;
        p.pzxid = zxid;
        p.children.insert(name(&path).to_string());
        self.nodes
            .insert(path.clone(), MNode::new(data, owner, zxid));
        self.fire(true, &path, EventType::NodeCreated, &BTreeSet::new());
        self.fire(
            false,
            &par,
            EventType::NodeChildrenChanged,
            &BTreeSet::new(),
        );
        Ok(path)
    }

    fn delete(&mut self, path: &str, version: i32, zxid: i64) -> Outcome {
        let par = parent(path).to_string();
        if !self.nodes.contains_key(&par) {
            return Err(ErrorKind::NoNode);
        }
        let node = self.nodes.get(path).ok_or(ErrorKind::NoNode)?;
        if version != -1 && version != node.version {
            return Err(ErrorKind::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ErrorKind::NotEmpty);
        }
        self.nodes.remove(path);
        let p = self.nodes.get_mut(&par).unwrap();
        p.children.remove(name(path));
        p.pzxid = zxid;
        let first = self.fire(true, path, EventType::NodeDeleted, &BTreeSet::new());
        self.fire(false, path, EventType::NodeDeleted, &first);
        self.fire(
            false,
            &par,
            EventType::NodeChildrenChanged,
            &BTreeSet::new(),
        );
        Ok(String::new())
    }

    fn set(&mut self, path: &str, data: Vec<u8>, version: i32, zxid: i64) -> Outcome {
        let node = self.nodes.get_mut(path).ok_or(ErrorKind::NoNode)?;
        if version != -1 && version != node.version {
            return Err(ErrorKind::BadVersion);
        }
        node.version += 1;
        node.mzxid = zxid;
        node.data = data;
        self.fire(true, path, EventType::NodeDataChanged, &BTreeSet::new());
        Ok(String::new())
    }

    fn check(&self, path: &str, version: i32) -> Outcome {
        let node = self.nodes.get(path).ok_or(ErrorKind::NoNode)?;
        if version != -1 && version != node.version {
            return Err(ErrorKind::BadVersion);
        }
        Ok(String::new())
    }

    /// A close or expiry: one txn deleting the session's ephemerals. A
    /// closing session still hears its own watches fire (the 3.8.0 traces
    /// show it); an expired one hears only `Expired` (C.4, C.6).
    fn end_session(&mut self, slot: usize, session_id: i64, expired: bool) {
        if expired {
            self.data_watches.retain(|(_, s)| *s != slot);
            self.child_watches.retain(|(_, s)| *s != slot);
        }
        self.zxid += 1;
        let zxid = self.zxid;
        let mine: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.owner == session_id)
            .map(|(p, _)| p.clone())
            .collect();
        for p in mine {
            self.delete(&p, -1, zxid).unwrap();
        }
        self.data_watches.retain(|(_, s)| *s != slot);
        self.child_watches.retain(|(_, s)| *s != slot);
    }
}

struct Harness {
    keeper: Keeper,
    clock: ManualClock,
    sessions: Vec<Session>,
    model: Model,
}

impl Harness {
    fn new() -> Harness {
        let clock = ManualClock::new(1_700_000_000_000);
        let keeper = Keeper::builder()
            .clock(clock.clone())
            .tick(Duration::from_millis(10))
            .session_timeout_range(Duration::from_millis(100), Duration::from_millis(100))
            .build()
            .unwrap();
        let mut h = Harness {
            keeper,
            clock,
            sessions: Vec::new(),
            model: Model::new(),
        };
        for _ in 0..SLOTS {
            let s = h.keeper.session().unwrap();
            h.model.zxid += 1;
            h.sessions.push(s);
        }
        h
    }

    fn reopen(&mut self, slot: usize) {
        self.sessions[slot] = self.keeper.session().unwrap();
        self.model.zxid += 1;
    }

    fn step(&mut self, op: &MOp) {
        match op {
            MOp::Create {
                slot,
                target,
                mode,
                data,
            } => {
                let mut mode = mode_of(*mode);
                let requested = if *target < PATHS.len() {
                    if mode == CreateMode::PersistentSequential {
                        mode = CreateMode::Persistent;
                    } else if mode == CreateMode::EphemeralSequential {
                        mode = CreateMode::Ephemeral;
                    }
                    PATHS[*target]
                } else {
                    PREFIXES[*target - PATHS.len()]
                };
                let s = &self.sessions[*slot];
                let got = s
                    .create(requested, &data_of(*data), mode)
                    .map_err(|e| e.kind());
                let mut model = self.model.clone();
                let want = model.create(
                    requested,
                    data_of(*data),
                    mode,
                    s.session_id(),
                    model.zxid + 1,
                );
                if want.is_ok() {
                    model.zxid += 1;
                    self.model = model;
                }
                assert_eq!(got, want, "create {requested} {mode:?}");
            }
            MOp::Delete {
                slot,
                path,
                version,
            } => {
                let got = self.sessions[*slot]
                    .delete(PATHS[*path], *version)
                    .map(|_| String::new())
                    .map_err(|e| e.kind());
                let mut model = self.model.clone();
                let want = model.delete(PATHS[*path], *version, model.zxid + 1);
                if want.is_ok() {
                    model.zxid += 1;
                    self.model = model;
                }
                assert_eq!(got, want, "delete {}", PATHS[*path]);
            }
            MOp::Set {
                slot,
                path,
                version,
                data,
            } => {
                let got = self.sessions[*slot]
                    .set_data(PATHS[*path], &data_of(*data), *version)
                    .map(|s| sut_stat(&s))
                    .map_err(|e| e.kind());
                let mut model = self.model.clone();
                let want = model
                    .set(PATHS[*path], data_of(*data), *version, model.zxid + 1)
                    .map(|_| model.nodes[PATHS[*path]].stat());
                if want.is_ok() {
                    model.zxid += 1;
                    self.model = model;
                }
                assert_eq!(got, want, "set {}", PATHS[*path]);
            }
            MOp::Exists { slot, path, watch } => {
                let s = &self.sessions[*slot];
                let w = s.default_watcher();
                let got = s
                    .exists_with(PATHS[*path], watch.then_some(&w))
                    .unwrap()
                    .map(|st| sut_stat(&st));
                let want = self.model.nodes.get(PATHS[*path]).map(MNode::stat);
                if *watch {
                    self.model
                        .data_watches
                        .insert((PATHS[*path].to_string(), *slot));
                }
                assert_eq!(got, want, "exists {}", PATHS[*path]);
            }
            MOp::Get { slot, path, watch } => {
                let s = &self.sessions[*slot];
                let w = s.default_watcher();
                let got = s
                    .get_data_with(PATHS[*path], watch.then_some(&w))
                    .map(|(d, st)| (d.unwrap_or_default(), sut_stat(&st)))
                    .map_err(|e| e.kind());
                let want = self
                    .model
                    .nodes
                    .get(PATHS[*path])
                    .map(|n| (n.data.clone(), n.stat()))
                    .ok_or(ErrorKind::NoNode);
                if *watch && want.is_ok() {
                    self.model
                        .data_watches
                        .insert((PATHS[*path].to_string(), *slot));
                }
                assert_eq!(got, want, "get {}", PATHS[*path]);
            }
            MOp::Children { slot, path, watch } => {
                let s = &self.sessions[*slot];
                let w = s.default_watcher();
                let got = s
                    .get_children_with(PATHS[*path], watch.then_some(&w))
                    .map(|(c, st)| (c, sut_stat(&st)))
                    .map_err(|e| e.kind());
                let want = self
                    .model
                    .nodes
                    .get(PATHS[*path])
                    .map(|n| (n.children.iter().cloned().collect::<Vec<_>>(), n.stat()))
                    .ok_or(ErrorKind::NoNode);
                if *watch && want.is_ok() {
                    self.model
                        .child_watches
                        .insert((PATHS[*path].to_string(), *slot));
                }
                assert_eq!(got, want, "children {}", PATHS[*path]);
            }
            MOp::Multi { slot, ops } => self.multi(*slot, ops),
            MOp::Close { slot } => {
                let id = self.sessions[*slot].session_id();
                self.sessions[*slot].close().unwrap();
                self.model.end_session(*slot, id, false);
                self.drain_own(*slot, KeeperState::Closed);
                self.reopen(*slot);
            }
            MOp::Expire { slot } => {
                let id = self.sessions[*slot].session_id();
                self.sessions[*slot].pause_heartbeats();
                self.clock.advance(Duration::from_millis(150));
                assert!(self.sessions[*slot].is_expired());
                self.model.end_session(*slot, id, true);
                self.drain_own(*slot, KeeperState::Expired);
                self.reopen(*slot);
            }
        }
        self.compare_events();
        self.keeper.check_invariants().unwrap();
        assert_eq!(self.keeper.last_zxid(), self.model.zxid, "zxid count");
    }

    fn multi(&mut self, slot: usize, ops: &[(u8, usize, i32)]) {
        let s = &self.sessions[slot];
        let sut_ops: Vec<Op> = ops
            .iter()
            .map(|(kind, path, version)| match kind {
                0 => Op::create(PATHS[*path], b"m", CreateMode::Persistent),
                1 => Op::delete(PATHS[*path], *version),
                2 => Op::set_data(PATHS[*path], b"m", *version),
                _ => Op::check(PATHS[*path], *version),
            })
            .collect();
        let got = s.multi_results(&sut_ops).unwrap();
        let mut model = self.model.clone();
        let zxid = model.zxid + 1;
        let mut want: Vec<Option<()>> = Vec::new();
        let mut failed = None;
        for (idx, (kind, path, version)) in ops.iter().enumerate() {
            let p = PATHS[*path];
            let r = match kind {
                0 => model.create(p, b"m".to_vec(), CreateMode::Persistent, 0, zxid),
                1 => model.delete(p, *version, zxid),
                2 => model.set(p, b"m".to_vec(), *version, zxid),
                _ => model.check(p, *version),
            };
            match r {
                Ok(_) => want.push(None),
                Err(e) => {
                    failed = Some((idx, e));
                    break;
                }
            }
        }
        match failed {
            Some((idx, e)) => {
                let expect: Vec<OpResult> = (0..ops.len())
                    .map(|i| match i.cmp(&idx) {
                        std::cmp::Ordering::Less => OpResult::RolledBack,
                        std::cmp::Ordering::Equal => OpResult::Error(e),
                        std::cmp::Ordering::Greater => {
                            OpResult::Error(ErrorKind::RuntimeInconsistency)
                        }
                    })
                    .collect();
                assert_eq!(got, expect, "failed multi");
            }
            None => {
                assert!(
                    got.iter()
                        .all(|r| !matches!(r, OpResult::Error(_) | OpResult::RolledBack)),
                    "{got:?}"
                );
                assert_eq!(got.len(), ops.len());
                model.zxid = zxid;
                self.model = model;
            }
        }
    }

    fn drain_own(&mut self, slot: usize, state: KeeperState) {
        let own: Vec<_> = self.sessions[slot].events().try_iter().collect();
        assert_eq!(own.last().map(|e| e.state), Some(state));
        let node_events: Vec<_> = own
            .iter()
            .filter(|e| e.state == KeeperState::SyncConnected && e.path.is_some())
            .map(|e| (e.event_type, e.path.clone().unwrap()))
            .collect();
        let want = std::mem::take(&mut self.model.events[slot]);
        assert_eq!(node_events, want, "events of the ending session");
    }

    fn compare_events(&mut self) {
        for slot in 0..SLOTS {
            let got: Vec<_> = self.sessions[slot]
                .events()
                .try_iter()
                .filter(|e| e.state == KeeperState::SyncConnected && e.path.is_some())
                .map(|e| (e.event_type, e.path.unwrap()))
                .collect();
            let want = std::mem::take(&mut self.model.events[slot]);
            assert_eq!(got, want, "events of slot {slot}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let mut h = Harness::new();
        for op in &ops {
            h.step(op);
        }
    }
}
