//! Deterministic simulation: one seed decides a whole run of many
//! in-process sessions on a durable keeper with a `ManualClock`, issuing
//! random ops (every node kind, multi, one-shot and persistent watches,
//! digest auth and ACLs), while time advances (expiry, reaping) and the
//! store crashes and reopens, fails writes (`StoreFaults`), has its log
//! truncated while closed and its files deleted while open.
//!
//! After every step it checks the engine's invariants, that the tree equals
//! the reference model (`model.rs`) node for node, that every session heard
//! exactly the watch events the model predicts before the step returned,
//! that sequential names never repeat, and across crashes that every
//! acknowledged write (and everything read) survived.
//!
//! `SIM_SEEDS=N` (default 200) seeds starting at `SIM_SEED` (default: a
//! random start, printed), `SIM_STEPS` steps per seed (default 150),
//! `SIM_SECONDS` a time limit (no new seed starts after it). A
//! failing seed prints a one-line repro and its history shrunk to the steps
//! that still fail. Store files go under `SIM_DIR` (default `/dev/shm` when
//! present: fsync there is free, which keeps the default run short).

mod model;
/// The library's own generator (`src/random.rs`), so seeded runs draw from
/// the same code as the library.
#[allow(dead_code)]
#[path = "../../src/random.rs"]
mod random;

use random::Rng;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use innkeeper::{
    Acl, AddWatchMode, Clock, Coordinator, CreateMode, CreateOptions, ErrorKind, EventType, Id,
    Keeper, ManualClock, Op, Perms, Session, StoreFaults, WatchReceiver, Watcher,
};
use model::{events_for, join, parent, Change, Kind, Model, WOp, Watches};

const SLOTS: usize = 5;
const TICK_MS: u64 = 100;
const REAP_MS: u64 = 300;
const NAMES: [&str; 5] = ["a", "b", "c", "x", "y"];
const USER: &str = "sim";
const PASSWORD: &str = "secret";

/// One step of a run. Targets are picks resolved against the model when
/// the step runs, so any subsequence of a history still runs (shrinking).
#[derive(Debug, Clone)]
enum Step {
    Open {
        slot: usize,
        persistent: bool,
        timeout: u8,
    },
    Create {
        slot: usize,
        parent: u32,
        name: u8,
        mode: u8,
        data: u8,
        restricted: bool,
        ttl: u8,
    },
    Delete {
        slot: usize,
        pick: u32,
        version: u8,
    },
    Set {
        slot: usize,
        pick: u32,
        version: u8,
        data: u8,
    },
    SetAcl {
        slot: usize,
        pick: u32,
        restricted: bool,
        version: u8,
    },
    Read {
        slot: usize,
        pick: u32,
        kind: u8,
        watch: bool,
    },
    AddWatch {
        slot: usize,
        pick: u32,
        recursive: bool,
    },
    Multi {
        slot: usize,
        ops: Vec<(u8, u32, u8, u8)>,
    },
    Auth {
        slot: usize,
        right: bool,
    },
    Close {
        slot: usize,
    },
    Pause {
        slot: usize,
    },
    Advance {
        ms: u32,
    },
    Crash {
        faults: u8,
        at: u8,
        recoveries: u8,
    },
    TruncateLog {
        keep: u32,
    },
    DeleteFiles,
}

fn generate(seed: u64, steps: usize) -> Vec<Step> {
    let mut r = Rng::seeded(seed);
    let mut out = Vec::with_capacity(steps);
    for slot in 0..SLOTS {
        out.push(Step::Open {
            slot,
            persistent: slot % 3 == 2,
            timeout: r.below(4) as u8,
        });
    }
    for _ in 0..steps {
        let slot = r.below(SLOTS as u64) as usize;
        let pick = r.next_u64() as u32;
        let version = r.below(3) as u8;
        let step = match r.below(100) {
            0..=21 => Step::Create {
                slot,
                parent: pick,
                name: r.below(7) as u8,
                mode: r.below(8) as u8,
                data: r.below(3) as u8,
                restricted: r.chance(15),
                ttl: r.below(4) as u8,
            },
            22..=31 => Step::Delete {
                slot,
                pick,
                version,
            },
            32..=41 => Step::Set {
                slot,
                pick,
                version,
                data: r.below(3) as u8,
            },
            42..=44 => Step::SetAcl {
                slot,
                pick,
                restricted: r.chance(50),
                version,
            },
            45..=59 => Step::Read {
                slot,
                pick,
                kind: r.below(3) as u8,
                watch: r.chance(60),
            },
            60..=63 => Step::AddWatch {
                slot,
                pick,
                recursive: r.chance(50),
            },
            64..=71 => Step::Multi {
                slot,
                ops: (0..r.below(4) + 1)
                    .map(|_| {
                        (
                            r.below(4) as u8,
                            r.next_u64() as u32,
                            r.below(3) as u8,
                            r.below(8) as u8,
                        )
                    })
                    .collect(),
            },
            72..=74 => Step::Auth {
                slot,
                right: r.chance(70),
            },
            75..=77 => Step::Close { slot },
            78..=80 => Step::Pause { slot },
            81..=83 => Step::Open {
                slot,
                persistent: r.chance(30),
                timeout: r.below(4) as u8,
            },
            84..=91 => Step::Advance {
                ms: if r.chance(15) {
                    6_000
                } else {
                    r.below(1_500) as u32 + 1
                },
            },
            92..=96 => Step::Crash {
                faults: if r.chance(50) {
                    r.below(3) as u8 + 1
                } else {
                    0
                },
                at: r.below(12) as u8 + 1,
                recoveries: r.below(3) as u8,
            },
            97..=98 => Step::TruncateLog {
                keep: [0, 100, 1_000, 4_096, 20_000][r.below(5) as usize],
            },
            _ => Step::DeleteFiles,
        };
        out.push(step);
    }
    out
}

struct Slot {
    session: Session,
    id: i64,
    password: [u8; 16],
    timeout: Duration,
    /// Persistent-watch sessions set only persistent watches, the others
    /// only one-shot ones (the two kinds interact in ways the model skips).
    persistent: bool,
    auth: bool,
    paused_at: Option<i64>,
    watcher: Watcher,
    events: WatchReceiver,
    watches: Watches,
    expected: Vec<(EventType, String)>,
}

struct Sim {
    root: PathBuf,
    dir: PathBuf,
    clock: ManualClock,
    keeper: Option<Keeper>,
    faulty: bool,
    snapshot_every: u64,
    model: Model,
    /// The model as it would be if the one write that failed with `Io`
    /// (outcome unknown until the store recovers) reached the disk.
    alt: Option<Model>,
    slots: Vec<Option<Slot>>,
    observer: Option<Session>,
    seq_names: HashSet<(String, u64, String)>,
    zxid_seen: i64,
    trace: Vec<String>,
}

type Check = Result<(), String>;

fn fail<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

fn restricted_acl() -> Vec<Acl> {
    vec![
        Acl::digest(Perms::ALL, USER, PASSWORD),
        Acl::new(Perms::READ, Id::anyone()),
    ]
}

fn data_of(d: u8) -> Vec<u8> {
    match d {
        0 => Vec::new(),
        1 => b"v".to_vec(),
        _ => vec![d; 64],
    }
}

fn kind_of(e: &innkeeper::Error) -> ErrorKind {
    e.kind()
}

impl Sim {
    fn new(root: &Path, seed: u64) -> Result<Sim, String> {
        let dir = root.join("store");
        let mut sim = Sim {
            root: root.to_path_buf(),
            dir,
            clock: ManualClock::new(1_700_000_000_000),
            keeper: None,
            faulty: false,
            snapshot_every: 3 + seed % 40,
            model: Model::new(),
            alt: None,
            slots: (0..SLOTS).map(|_| None).collect(),
            observer: None,
            seq_names: HashSet::new(),
            zxid_seen: 0,
            trace: Vec::new(),
        };
        sim.open(StoreFaults::default())?;
        Ok(sim)
    }

    fn builder(&self, faults: StoreFaults) -> innkeeper::KeeperBuilder {
        Keeper::builder()
            .clock(self.clock.clone())
            .tick(Duration::from_millis(TICK_MS))
            .session_timeout_range(Duration::from_millis(200), Duration::from_millis(4_000))
            .reap_interval(Duration::from_millis(REAP_MS))
            .extended_types(true)
            .snapshot_every_txns(self.snapshot_every)
            .cache_bytes(1 << 20)
            .store_faults(faults)
    }

    fn keeper(&self) -> &Keeper {
        self.keeper.as_ref().expect("open")
    }

    fn observer(&self) -> &Session {
        self.observer.as_ref().expect("open")
    }

    /// Opens the keeper on the directory and checks what it recovered.
    fn open(&mut self, faults: StoreFaults) -> Check {
        // What is on disk depends on the faults of the incarnation that wrote it.
        let was_faulty = self.faulty;
        self.faulty = faults != StoreFaults::default();
        let keeper = self
            .builder(faults)
            .open(&self.dir)
            .map_err(|e| format!("reopen failed: {e}"))?;
        keeper
            .check_invariants()
            .map_err(|e| format!("after reopen: {e}"))?;
        if keeper.last_zxid() < self.zxid_seen {
            return fail(format!(
                "reopened at zxid {:#x}, but zxid {:#x} was seen before the crash",
                keeper.last_zxid(),
                self.zxid_seen
            ));
        }
        // An injected fault may hit the observer's own session.
        let mut observer = keeper.session();
        for _ in 0..5 {
            match &observer {
                Err(e) if e.kind() == ErrorKind::Io && self.faulty => observer = keeper.session(),
                _ => break,
            }
        }
        let observer = observer.map_err(|e| format!("observer: {e}"))?;
        self.keeper = Some(keeper);
        self.observer = Some(observer);
        // Everything acknowledged must be there; a write that failed with
        // `Io` before a crash may or may not be.
        let tree = self.engine_tree()?;
        if !self.same(&tree, &self.model) {
            match self.alt.take() {
                Some(alt) if self.same(&tree, &alt) => self.model = alt,
                _ => {
                    let expl = self.explain_removals(&tree, false)?;
                    if !was_faulty || !expl {
                        return fail(format!(
                            "after reopen the tree differs from every acknowledged state:\n{}",
                            self.diff(&tree)
                        ));
                    }
                }
            }
        }
        self.alt = None;
        // Resume every live session (server-side watches and auth are per
        // handle and do not survive).
        let keeper = self.keeper().clone();
        for slot in 0..SLOTS {
            let Some(old) = self.slots[slot].take() else {
                continue;
            };
            if !keeper.session_ids().contains(&old.id) {
                // Closed or expired by a write the crash did not keep.
                self.drop_session_nodes(old.id)?;
                continue;
            }
            let session = keeper
                .resume_session(old.id, &old.password, old.timeout)
                .map_err(|e| format!("resume {:#x}: {e}", old.id))?;
            let (watcher, events) = Watcher::channel();
            self.slots[slot] = Some(Slot {
                session,
                auth: false,
                paused_at: None,
                watcher,
                events,
                watches: Watches::default(),
                expected: Vec::new(),
                ..old
            });
        }
        Ok(())
    }

    /// The ephemerals of a session that is gone must be gone too.
    fn drop_session_nodes(&mut self, id: i64) -> Check {
        for p in self.model.ephemerals_of(id) {
            if self
                .observer()
                .exists(&p)
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return fail(format!(
                    "ephemeral {p} of gone session {id:#x} still exists"
                ));
            }
            self.model.remove(&p);
        }
        Ok(())
    }

    fn crash(&mut self, faults: StoreFaults) -> Check {
        if let Some(keeper) = self.keeper.take() {
            // Shut down first so dropping the handles closes nothing.
            let _ = keeper.shutdown();
        }
        self.observer = None;
        let old: Vec<Option<Slot>> = self.slots.drain(..).collect();
        self.slots = old
            .into_iter()
            .map(|s| {
                s.map(|mut s| {
                    s.watches = Watches::default();
                    s.expected.clear();
                    s
                })
            })
            .collect();
        self.open(faults)
    }

    /// The engine's user tree: path -> (data, version, aversion, owner, children).
    fn engine_tree(&self) -> Result<EngineTree, String> {
        let mut out = BTreeMap::new();
        let mut stack = vec!["/".to_string()];
        let obs = self.observer();
        while let Some(p) = stack.pop() {
            let (data, stat) = obs.get_data(&p).map_err(|e| format!("get_data {p}: {e}"))?;
            let mut children = obs
                .get_children(&p)
                .map_err(|e| format!("children {p}: {e}"))?;
            children.sort();
            if stat.num_children as usize != children.len() {
                return fail(format!(
                    "{p}: num_children {} but {} children",
                    stat.num_children,
                    children.len()
                ));
            }
            for c in &children {
                let cp = join(&p, c);
                if cp != "/zookeeper" {
                    stack.push(cp);
                }
            }
            out.insert(
                p,
                (
                    data,
                    stat.version,
                    stat.aversion,
                    stat.ephemeral_owner,
                    children,
                ),
            );
        }
        Ok(out)
    }

    fn same(&self, tree: &EngineTree, model: &Model) -> bool {
        model_tree(model) == *tree
    }

    fn diff(&self, tree: &EngineTree) -> String {
        let m = model_tree(&self.model);
        let mut lines = Vec::new();
        for (p, v) in &m {
            match tree.get(p) {
                None => lines.push(format!("  missing {p} (model {v:?})")),
                Some(e) if e != v => lines.push(format!("  {p}: engine {e:?} model {v:?}")),
                _ => {}
            }
        }
        for p in tree.keys() {
            if !m.contains_key(p) {
                lines.push(format!("  extra {p}"));
            }
        }
        lines.join("\n")
    }

    /// Nodes the engine removed by itself (expiry, reaping) must be ones
    /// the rules allow; applies them to the model and queues their events.
    /// Returns whether the trees agree after that.
    fn explain_removals(&mut self, tree: &EngineTree, events: bool) -> Result<bool, String> {
        let now = self.clock.now_ms();
        let live: BTreeSet<i64> = self.keeper().session_ids().into_iter().collect();
        let mut gone: Vec<String> = self
            .model
            .nodes
            .keys()
            .filter(|p| !tree.contains_key(*p) && *p != "/" && !p.starts_with("/zookeeper"))
            .cloned()
            .collect();
        // Deepest first, so a container emptied by a removal may go too.
        gone.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
        let mut changes = Vec::new();
        for p in gone {
            let node = self.model.nodes[&p].clone();
            let allowed = match node.kind {
                Kind::Ephemeral => !live.contains(&node.owner),
                Kind::Container | Kind::Ttl(_) => self.model.reapable(&p, now),
                Kind::Persistent => false,
            };
            if !allowed {
                return fail(format!("{p} ({:?}) vanished without a reason", node.kind));
            }
            self.model.remove(&p);
            changes.push(Change::Deleted(p));
        }
        if events {
            self.queue_events(&changes);
        }
        Ok(model_tree(&self.model) == *tree)
    }

    fn queue_events(&mut self, changes: &[Change]) {
        for s in self.slots.iter_mut().flatten() {
            let evs = events_for(&mut s.watches, changes);
            s.expected.extend(evs);
        }
    }

    /// After every step: invariants, tree == model, events as predicted.
    fn check(&mut self) -> Check {
        self.keeper().check_invariants()?;
        let tree = self.engine_tree()?;
        if !self.same(&tree, &self.model) {
            return fail(format!(
                "tree differs from the model:\n{}",
                self.diff(&tree)
            ));
        }
        self.zxid_seen = self.zxid_seen.max(self.keeper().last_zxid());
        for (i, s) in self.slots.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            let mut got: Vec<(EventType, String)> = s
                .events
                .drain()
                .into_iter()
                .filter_map(|e| e.path.map(|p| (e.event_type, p)))
                .collect();
            let mut want = std::mem::take(&mut s.expected);
            got.sort_by(|a, b| (a.0 as i32, &a.1).cmp(&(b.0 as i32, &b.1)));
            want.sort_by(|a, b| (a.0 as i32, &a.1).cmp(&(b.0 as i32, &b.1)));
            if got != want {
                return fail(format!(
                    "slot {i} ({:#x}) events: got {got:?}, want {want:?}",
                    s.id
                ));
            }
        }
        Ok(())
    }

    /// Resolves a pick to an existing user node, or a likely-absent path.
    fn pick_path(&self, pick: u32) -> String {
        let paths = self.model.user_paths();
        if paths.is_empty() || pick % 5 == 0 {
            let name = NAMES[(pick / 5) as usize % NAMES.len()];
            return if pick % 2 == 0 {
                format!("/{name}")
            } else {
                format!("/a/{name}")
            };
        }
        paths[(pick / 5) as usize % paths.len()].clone()
    }

    fn version_of(&self, path: &str, v: u8, acl: bool) -> i32 {
        let cur = self
            .model
            .nodes
            .get(path)
            .map_or(0, |n| if acl { n.aversion } else { n.version });
        match v {
            0 => -1,
            1 => cur,
            _ => cur + 1,
        }
    }

    fn create_op(
        &self,
        parent_pick: u32,
        name: u8,
        mode: u8,
        data: u8,
        restricted: bool,
        ttl: u8,
    ) -> WOp {
        let mut parents = vec!["/".to_string()];
        parents.extend(self.model.user_paths());
        let par = if parent_pick % 7 == 0 {
            "/nope".to_string()
        } else {
            parents[(parent_pick / 7) as usize % parents.len()].clone()
        };
        let mode = match mode {
            0 | 1 => CreateMode::Persistent,
            2 => CreateMode::Ephemeral,
            3 => CreateMode::PersistentSequential,
            4 => CreateMode::EphemeralSequential,
            5 => CreateMode::Container,
            6 => CreateMode::PersistentWithTtl,
            _ => CreateMode::PersistentSequentialWithTtl,
        };
        let name = if mode.is_sequential() {
            "s-"
        } else {
            NAMES[name as usize % NAMES.len()]
        };
        WOp::Create {
            path: join(&par, name),
            data: data_of(data),
            mode,
            restricted,
            ttl_ms: [50, 400, 1_000, 3_000][ttl as usize % 4],
        }
    }

    fn multi_op(&self, (kind, pick, version, data): (u8, u32, u8, u8)) -> WOp {
        match kind {
            0 => self.create_op(pick, data, data % 8, data % 3, false, data % 4),
            1 => {
                let path = self.pick_path(pick);
                WOp::Delete {
                    version: self.version_of(&path, version, false),
                    path,
                }
            }
            2 => {
                let path = self.pick_path(pick);
                WOp::Set {
                    version: self.version_of(&path, version, false),
                    path,
                    data: data_of(data),
                }
            }
            _ => {
                let path = self.pick_path(pick);
                WOp::Check {
                    version: self.version_of(&path, version, false),
                    path,
                }
            }
        }
    }

    fn to_engine_op(op: &WOp) -> Op {
        match op {
            WOp::Create {
                path,
                data,
                mode,
                restricted,
                ttl_ms,
            } => {
                let mut opts = CreateOptions::new(*mode);
                if *restricted {
                    opts = opts.acl(restricted_acl());
                }
                if mode.is_ttl() {
                    opts = opts.ttl(Duration::from_millis(*ttl_ms as u64));
                }
                Op::create_with(path.clone(), Some(data.as_slice()), &opts)
            }
            WOp::Delete { path, version } => Op::delete(path.clone(), *version),
            WOp::Set {
                path,
                data,
                version,
            } => Op::set_data(path.clone(), data, *version),
            WOp::Check { path, version } => Op::check(path.clone(), *version),
            WOp::SetAcl { .. } => unreachable!("not generated inside a multi"),
        }
    }

    /// Runs one write on the engine and the model and compares outcomes.
    fn write(&mut self, slot: usize, ops: Vec<WOp>, multi: bool) -> Check {
        let Some(s) = self.slots[slot].as_ref() else {
            return Ok(());
        };
        let (sid, auth) = (s.id, s.auth);
        let now = self.clock.now_ms();
        let mut predicted = self.model.clone();
        let want = if multi {
            predicted.multi(sid, auth, &ops, now)
        } else {
            predicted
                .write(sid, auth, &ops[0], now)
                .map(|(c, n)| (c, vec![n]))
        };
        let session = &self.slots[slot].as_ref().expect("checked").session;
        let got: Result<Vec<Option<String>>, ErrorKind> = if multi {
            let eops: Vec<Op> = ops.iter().map(Self::to_engine_op).collect();
            session.multi(&eops).map_err(|e| kind_of(&e)).map(|rs| {
                rs.into_iter()
                    .map(|r| match r {
                        innkeeper::OpResult::Create { path, .. } => Some(path),
                        _ => None,
                    })
                    .collect()
            })
        } else {
            match &ops[0] {
                WOp::Create {
                    path,
                    data,
                    mode,
                    restricted,
                    ttl_ms,
                } => {
                    let mut opts = CreateOptions::new(*mode);
                    if *restricted {
                        opts = opts.acl(restricted_acl());
                    }
                    if mode.is_ttl() {
                        opts = opts.ttl(Duration::from_millis(*ttl_ms as u64));
                    }
                    session
                        .create_with(path, Some(data.as_slice()), &opts)
                        .map(|(p, _)| vec![Some(p)])
                        .map_err(|e| kind_of(&e))
                }
                WOp::Delete { path, version } => session
                    .delete(path, *version)
                    .map(|()| vec![None])
                    .map_err(|e| kind_of(&e)),
                WOp::Set {
                    path,
                    data,
                    version,
                } => session
                    .set_data(path, data, *version)
                    .map(|st| {
                        self.zxid_seen = self.zxid_seen.max(st.mzxid);
                        vec![None]
                    })
                    .map_err(|e| kind_of(&e)),
                WOp::SetAcl {
                    path,
                    restricted,
                    version,
                } => {
                    let acl = if *restricted {
                        restricted_acl()
                    } else {
                        Acl::open_unsafe()
                    };
                    session
                        .set_acl(path, &acl, *version)
                        .map(|_| vec![None])
                        .map_err(|e| kind_of(&e))
                }
                WOp::Check { .. } => unreachable!(),
            }
        };
        match (got, want) {
            (Err(ErrorKind::Io), Ok(_)) if self.faulty => {
                // Not applied; unknown on disk until the store recovers.
                if self.alt.is_none() {
                    self.alt = Some(predicted);
                }
                Ok(())
            }
            (Err(ErrorKind::Io), Err(_)) if self.faulty => Ok(()),
            (Ok(names), Ok((changes, want_names))) => {
                let created: Vec<&String> = names.iter().flatten().collect();
                let want_created: Vec<&String> = want_names.iter().flatten().collect();
                if created != want_created {
                    return fail(format!("created {created:?}, model says {want_created:?}"));
                }
                for p in &created {
                    if model::name(p).starts_with("s-") {
                        let par = parent(p).to_string();
                        let inc = predicted.nodes[&par].incarnation;
                        if !self.seq_names.insert((par, inc, p.to_string())) {
                            return fail(format!("sequential name {p} handed out twice"));
                        }
                    }
                }
                self.model = predicted;
                self.alt = None;
                self.queue_events(&changes);
                Ok(())
            }
            (Err(g), Err(w)) if g == w => {
                // A failed op commits nothing, but a preceding recovery
                // may have settled the unknown write: keep `alt` as is.
                Ok(())
            }
            (g, w) => fail(format!(
                "outcome {:?}, model says {:?}",
                g,
                w.map(|(_, n)| n)
            )),
        }
    }

    fn step(&mut self, step: &Step) -> Check {
        match step.clone() {
            Step::Open {
                slot,
                persistent,
                timeout,
            } => {
                if self.slots[slot].is_some() {
                    return Ok(());
                }
                let timeout = Duration::from_millis([300, 800, 2_000, 4_000][timeout as usize % 4]);
                match self.keeper().session_with_timeout(timeout) {
                    Ok(session) => {
                        let (watcher, events) = Watcher::channel();
                        self.slots[slot] = Some(Slot {
                            id: session.session_id(),
                            password: session.password(),
                            timeout,
                            session,
                            persistent,
                            auth: false,
                            paused_at: None,
                            watcher,
                            events,
                            watches: Watches::default(),
                            expected: Vec::new(),
                        });
                        self.alt = None;
                        Ok(())
                    }
                    Err(e) if e.kind() == ErrorKind::Io && self.faulty => Ok(()),
                    Err(e) => fail(format!("open session: {e}")),
                }
            }
            Step::Create {
                slot,
                parent,
                name,
                mode,
                data,
                restricted,
                ttl,
            } => {
                let op = self.create_op(parent, name, mode, data, restricted, ttl);
                self.write(slot, vec![op], false)
            }
            Step::Delete {
                slot,
                pick,
                version,
            } => {
                let path = self.pick_path(pick);
                let version = self.version_of(&path, version, false);
                self.write(slot, vec![WOp::Delete { path, version }], false)
            }
            Step::Set {
                slot,
                pick,
                version,
                data,
            } => {
                let path = self.pick_path(pick);
                let version = self.version_of(&path, version, false);
                self.write(
                    slot,
                    vec![WOp::Set {
                        path,
                        data: data_of(data),
                        version,
                    }],
                    false,
                )
            }
            Step::SetAcl {
                slot,
                pick,
                restricted,
                version,
            } => {
                let path = self.pick_path(pick);
                let version = self.version_of(&path, version, true);
                self.write(
                    slot,
                    vec![WOp::SetAcl {
                        path,
                        restricted,
                        version,
                    }],
                    false,
                )
            }
            Step::Multi { slot, ops } => {
                let ops: Vec<WOp> = ops.into_iter().map(|o| self.multi_op(o)).collect();
                self.write(slot, ops, true)
            }
            Step::Read {
                slot,
                pick,
                kind,
                watch,
            } => self.read(slot, pick, kind, watch),
            Step::AddWatch {
                slot,
                pick,
                recursive,
            } => {
                let path = self.pick_path(pick);
                let Some(s) = self.slots[slot].as_mut() else {
                    return Ok(());
                };
                if !s.persistent
                    || s.watches.persistent.contains(&path)
                    || s.watches.recursive.contains(&path)
                {
                    return Ok(());
                }
                let mode = if recursive {
                    AddWatchMode::PersistentRecursive
                } else {
                    AddWatchMode::Persistent
                };
                s.session
                    .add_watch(&path, mode, &s.watcher)
                    .map_err(|e| format!("add_watch: {e}"))?;
                if recursive {
                    s.watches.recursive.insert(path);
                } else {
                    s.watches.persistent.insert(path);
                }
                Ok(())
            }
            Step::Auth { slot, right } => {
                let Some(s) = self.slots[slot].as_mut() else {
                    return Ok(());
                };
                let cred = if right {
                    format!("{USER}:{PASSWORD}")
                } else {
                    format!("{USER}:wrong")
                };
                s.session
                    .add_auth("digest", cred.as_bytes())
                    .map_err(|e| format!("add_auth: {e}"))?;
                s.auth |= right;
                Ok(())
            }
            Step::Close { slot } => {
                let Some(s) = self.slots[slot].take() else {
                    return Ok(());
                };
                match s.session.close() {
                    Ok(()) => {
                        let gone = self.model.ephemerals_of(s.id);
                        let changes: Vec<Change> =
                            gone.iter().map(|p| Change::Deleted(p.clone())).collect();
                        for p in &gone {
                            self.model.remove(p);
                        }
                        self.alt = None;
                        self.queue_events(&changes);
                        Ok(())
                    }
                    // The close did not commit: the session lives on
                    // server side and will expire (its handle is gone).
                    // Its batch may still come back after a crash.
                    Err(e) if e.kind() == ErrorKind::Io && self.faulty => {
                        if self.alt.is_none() {
                            let mut alt = self.model.clone();
                            for p in alt.ephemerals_of(s.id) {
                                alt.remove(&p);
                            }
                            self.alt = Some(alt);
                        }
                        Ok(())
                    }
                    Err(e) => fail(format!("close: {e}")),
                }
            }
            Step::Pause { slot } => {
                let now = self.clock.now_ms();
                if let Some(s) = self.slots[slot].as_mut() {
                    if s.paused_at.is_none() {
                        s.session.pause_heartbeats();
                        s.paused_at = Some(now);
                    }
                }
                Ok(())
            }
            Step::Advance { ms } => self.advance(ms),
            Step::Crash {
                faults,
                at,
                recoveries,
            } => {
                let mut f = StoreFaults::default();
                match faults {
                    1 => f.fail_before_write = Some(u64::from(at)),
                    2 => f.fail_after_write = Some(u64::from(at)),
                    3 => {
                        f.fail_after_write = Some(u64::from(at));
                        f.failing_recoveries = u32::from(recoveries);
                    }
                    _ => {}
                }
                self.crash(f)
            }
            Step::TruncateLog { keep } => self.truncate_log(keep),
            Step::DeleteFiles => self.delete_files(),
        }
    }

    fn read(&mut self, slot: usize, pick: u32, kind: u8, watch: bool) -> Check {
        let path = self.pick_path(pick);
        let Some(s) = self.slots[slot].as_mut() else {
            return Ok(());
        };
        let watch = watch && !s.persistent;
        let w = watch.then_some(&s.watcher);
        let node = self.model.nodes.get(&path);
        match kind {
            0 => {
                let got = s
                    .session
                    .exists_with(&path, w)
                    .map_err(|e| format!("exists {path}: {e}"))?;
                if got.map(|st| st.version) != node.map(|n| n.version) {
                    return fail(format!(
                        "exists {path}: {got:?}, model {:?}",
                        node.map(|n| n.version)
                    ));
                }
                if watch {
                    s.watches.data.insert(path);
                }
            }
            1 => match (s.session.get_data_with(&path, w), node) {
                (Ok((data, st)), Some(n))
                    if data.as_deref().unwrap_or_default() == n.data.as_slice()
                        && st.version == n.version =>
                {
                    self.zxid_seen = self.zxid_seen.max(st.mzxid);
                    if watch {
                        s.watches.data.insert(path);
                    }
                }
                (Err(e), None) if e.kind() == ErrorKind::NoNode => {}
                (got, _) => return fail(format!("get_data {path}: {got:?}, model {node:?}")),
            },
            _ => match (s.session.get_children_with(&path, w), node) {
                (Ok((mut c, _)), Some(n)) => {
                    c.sort();
                    let want: Vec<String> = n.children.iter().cloned().collect();
                    if c != want {
                        return fail(format!("children {path}: {c:?}, model {want:?}"));
                    }
                    if watch {
                        s.watches.child.insert(path);
                    }
                }
                (Err(e), None) if e.kind() == ErrorKind::NoNode => {}
                (got, _) => return fail(format!("children {path}: {got:?}, model {node:?}")),
            },
        }
        Ok(())
    }

    fn advance(&mut self, ms: u32) -> Check {
        let before = self.clock.now_ms();
        self.clock.advance_in_steps(
            Duration::from_millis(u64::from(ms)),
            Duration::from_millis(TICK_MS),
        );
        let now = self.clock.now_ms();
        // Sessions: attached ones never expire; paused ones must, in time.
        let mut gone = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            match (s.session.is_expired(), s.paused_at) {
                (true, None) => {
                    return fail(format!("slot {i} ({:#x}) expired while heartbeating", s.id))
                }
                (true, Some(_)) => gone.push(i),
                (false, Some(at)) => {
                    let due = at + s.timeout.as_millis() as i64 + 2 * TICK_MS as i64;
                    if now > due && !self.faulty {
                        return fail(format!(
                            "slot {i} ({:#x}) paused at {} not expired by {}",
                            s.id,
                            at - before,
                            now - before
                        ));
                    }
                }
                (false, None) => {}
            }
        }
        for i in gone {
            // Its own watches die with it.
            self.slots[i] = None;
        }
        let tree = self.engine_tree()?;
        if !self.explain_removals(&tree, true)? {
            return fail(format!("after advancing {ms} ms:\n{}", self.diff(&tree)));
        }
        if !self.faulty && ms >= 6_000 {
            // Everything due long ago must have been reaped.
            for p in self.model.user_paths() {
                let n = &self.model.nodes[&p];
                let late = match n.kind {
                    Kind::Ttl(ttl) => {
                        n.children.is_empty() && now - n.mtime > ttl + 2 * REAP_MS as i64 + 1_000
                    }
                    _ => false,
                };
                if late {
                    return fail(format!("{p} ({:?}) should have been reaped", n.kind));
                }
            }
        }
        Ok(())
    }

    /// Truncates the closed store's log; opening it must then either
    /// refuse with a typed error or give back every acknowledged write.
    fn truncate_log(&mut self, keep: u32) -> Check {
        let backup = self.root.join("backup");
        // Only a clean shutdown records how far the store got; after an
        // unclean one, losing its last writes to a truncation is not
        // detectable (the store then only promises a consistent state).
        let clean = self.keeper().shutdown().is_ok();
        self.release();
        copy_dir(&self.dir, &backup).map_err(|e| format!("backup: {e}"))?;
        let db = self.dir.join("log").join("db");
        if let Ok(meta) = std::fs::metadata(&db) {
            let len = meta.len().min(u64::from(keep));
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&db)
                .map_err(|e| e.to_string())?;
            f.set_len(len).map_err(|e| e.to_string())?;
        }
        match self.builder(StoreFaults::default()).open(&self.dir) {
            Err(e) => {
                if !matches!(
                    e.kind(),
                    ErrorKind::Corrupted | ErrorKind::IncompatibleStore
                ) {
                    return fail(format!("truncated log: untyped refusal {e}"));
                }
            }
            Ok(keeper) => {
                let observer = keeper.session().map_err(|e| e.to_string())?;
                self.keeper = Some(keeper);
                self.observer = Some(observer);
                let tree = self.engine_tree()?;
                let ok = self.same(&tree, &self.model)
                    || self.alt.as_ref().is_some_and(|a| self.same(&tree, a));
                let _ = self.keeper().shutdown();
                self.observer = None;
                self.keeper = None;
                if !ok && clean {
                    return fail(format!(
                        "a log truncated to {keep} bytes opened without error but lost writes:\n{}",
                        self.diff(&tree)
                    ));
                }
            }
        }
        std::fs::remove_dir_all(&self.dir).map_err(|e| e.to_string())?;
        std::fs::rename(&backup, &self.dir).map_err(|e| e.to_string())?;
        self.reopen_after_release()
    }

    /// Deletes the store's files under a running keeper: the next write
    /// must fail with a typed error, never be acknowledged.
    fn delete_files(&mut self) -> Check {
        let backup = self.root.join("backup");
        let _ = self.keeper().shutdown();
        self.release();
        copy_dir(&self.dir, &backup).map_err(|e| format!("backup: {e}"))?;
        self.reopen_after_release()?;
        let _ = std::fs::remove_dir_all(&self.dir);
        let got = self
            .observer()
            .create("/deleted-under-me", b"", CreateMode::Persistent);
        if let Ok(p) = got {
            return fail(format!("created {p} after the store's files were deleted"));
        }
        let _ = self.keeper().shutdown();
        self.release();
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::rename(&backup, &self.dir).map_err(|e| e.to_string())?;
        self.reopen_after_release()
    }

    /// Drops every handle of a shut-down keeper.
    fn release(&mut self) {
        self.observer = None;
        self.keeper = None;
        for s in self.slots.iter_mut().flatten() {
            s.watches = Watches::default();
            s.expected.clear();
        }
    }

    fn reopen_after_release(&mut self) -> Check {
        // Handles of the old keeper are stale: resume them on the new one.
        let faults = StoreFaults::default();
        self.open(faults)
    }
}

type EngineTree = BTreeMap<String, (Vec<u8>, i32, i32, i64, Vec<String>)>;

fn model_tree(m: &Model) -> EngineTree {
    m.nodes
        .iter()
        .filter(|(p, _)| !p.starts_with("/zookeeper"))
        .map(|(p, n)| {
            (
                p.clone(),
                (
                    n.data.clone(),
                    n.version,
                    n.aversion,
                    n.owner,
                    n.children.iter().cloned().collect(),
                ),
            )
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIM_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Runs a history; returns the index of the failing step and why.
fn run(seed: u64, steps: &[Step]) -> Result<(), (usize, String)> {
    let tmp = tempfile::Builder::new()
        .prefix("innkeeper-sim-")
        .tempdir_in(scratch_root())
        .map_err(|e| (0, format!("tempdir: {e}")))?;
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), (usize, String)> {
        let mut sim = Sim::new(tmp.path(), seed).map_err(|e| (0, e))?;
        for (i, step) in steps.iter().enumerate() {
            sim.trace.push(format!("{step:?}"));
            sim.step(step)
                .and_then(|()| sim.check())
                .map_err(|e| (i, e))?;
        }
        if let Some(k) = sim.keeper.take() {
            match k.shutdown() {
                Err(e) if !(sim.faulty && e.kind() == ErrorKind::Io) => {
                    return Err((steps.len(), format!("shutdown: {e}")));
                }
                _ => {}
            }
        }
        Ok(())
    }));
    match outcome {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err((usize::MAX, format!("panic: {msg}")))
        }
    }
}

/// Delta debugging: drop chunks of steps while the run still fails.
/// A candidate counts only if it fails the same way (same message start).
fn shrink(seed: u64, mut steps: Vec<Step>, why: &str) -> Vec<Step> {
    let class = |m: &str| {
        m.chars()
            .take_while(|c| !c.is_ascii_digit())
            .take(40)
            .collect::<String>()
    };
    let want = class(why);
    if let Err((i, _)) = run(seed, &steps) {
        if i < steps.len() {
            steps.truncate(i + 1);
        }
    }
    let mut chunk = steps.len() / 2;
    let mut budget = 400;
    while chunk >= 1 && budget > 0 {
        let mut start = 0;
        let mut progressed = false;
        while start < steps.len() && budget > 0 {
            budget -= 1;
            let mut candidate = steps.clone();
            let end = (start + chunk).min(candidate.len());
            candidate.drain(start..end);
            if run(seed, &candidate).is_err_and(|(_, m)| class(&m) == want) {
                steps = candidate;
                progressed = true;
            } else {
                start += chunk;
            }
        }
        if !progressed {
            chunk /= 2;
        }
    }
    steps
}

/// Seeds that once failed, run first in every run (with the default step
/// count): each found a bug, fixed since.
/// - 1102, 1148, 1189: an expiry whose close the store failed left the
///   session closing forever (also `store::an_expiry_the_store_failed_…`);
/// - 5005574: a log cut back to a failed batch's txn at a zxid later
///   reused opened without error (the high-water mark now holds the CRC
///   of the txn at its zxid);
/// - 5000790: the simulator's own model of a failed close (kept: it
///   exercises a close whose batch comes back after a crash).
const REGRESSION_SEEDS: [u64; 5] = [1102, 1148, 1189, 5005574, 5000790];

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn main() {
    // `cargo test` passes harness flags; a filter that names something
    // else (another test's name) skips the simulation.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.iter().any(|a| !"simulation".contains(a.as_str())) {
        println!("sim: filtered out");
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        println!("simulation: test");
        return;
    }
    let seeds = env_u64("SIM_SEEDS").unwrap_or(200);
    let steps = env_u64("SIM_STEPS").unwrap_or(150) as usize;
    let start = env_u64("SIM_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t % 1_000_000_000
    });
    println!("sim: {seeds} seeds from SIM_SEED={start}, {steps} steps each");
    let began = Instant::now();
    let (mut passed, mut failed) = (0u64, 0u64);
    let budget = env_u64("SIM_SECONDS").map(Duration::from_secs);
    let pinned: Vec<u64> = if std::env::var_os("SIM_SEED").is_some() {
        Vec::new()
    } else {
        REGRESSION_SEEDS.to_vec()
    };
    for seed in pinned.into_iter().chain(start..start + seeds) {
        if budget.is_some_and(|b| began.elapsed() > b) {
            println!(
                "sim: SIM_SECONDS reached, stopping after {} seeds",
                passed + failed
            );
            break;
        }
        let history = generate(seed, steps);
        if let Err((i, why)) = run(seed, &history) {
            failed += 1;
            println!("sim: seed {seed} FAILED at step {i}: {why}");
            println!(
                "  repro: SIM_SEED={seed} SIM_SEEDS=1 SIM_STEPS={steps} cargo test --test sim"
            );
            if failed > 3 {
                // Keep counting; shrinking every failure would take long.
                continue;
            }
            let small = shrink(seed, history, &why);
            println!("  shrunk history ({} steps):", small.len());
            for s in &small {
                println!("    {s:?}");
            }
            if let Err((_, why)) = run(seed, &small) {
                println!("  shrunk failure: {why}");
            }
        } else {
            passed += 1;
        }
    }
    println!(
        "sim: {passed} passed, {failed} failed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
