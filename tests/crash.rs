//! Crash test: a child process writes under load and is killed with
//! SIGKILL at a seeded random moment; the parent reopens the store and
//! checks that nothing acknowledged or observed was lost and nothing
//! half-done is there.
//!
//! How: this binary (`harness = false`) re-runs itself with
//! `INNKEEPER_CRASH_ROLE=child`. The child opens the store and runs
//! writer threads, each with its own session and subtree
//! `/cycle-<c>/w<t>`, doing creates of every kind, sets, deletes, multis
//! and failing multis, plus a reader thread reading every writer's
//! counter. Before each op a writer appends `Try` to a side log, after it
//! `Ack` with the result; the reader appends `Seen` for every counter
//! value it reads. Each line is fsynced before the thread goes on.
//!
//! The parent replays each writer's acknowledged ops on a model (a map of
//! paths, predicting sequential names from the child-create counter) and
//! requires the recovered subtree to equal the model with or without the
//! one op in flight (so no multi is half there), and every value a reader
//! saw must be there too. This holds in the periodic mode as well (every
//! fourth cycle): a process kill loses nothing acknowledged there either,
//! only power loss may cost the last interval. While the child runs, opening the store must fail with
//! `StoreLocked`. After the kill it checks `check_invariants`, that zxids and session ids only
//! grow across cycles, that sequential names never repeat, that restored
//! sessions resume with their ephemerals, and that nodes written by earlier
//! cycles are untouched. Then it cleans up, adds a history node and closes
//! the store for the next cycle.
//!
//! Every fifth cycle (from the third) the child also aborts itself at one
//! of the snapshot crash points (`SnapshotCrash`: mid-write, before and
//! after the rename, before and after the log truncation) if the kill has
//! not come first; recovery must then be as complete as after a kill.
//!
//! `cargo test --test crash` runs 50 cycles; `INNKEEPER_CRASH_CYCLES=5000
//! cargo test --release --test crash` runs a long one. `INNKEEPER_SEED`
//! replays a run (the seed is printed first).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use innkeeper::{
    Coordinator, CreateMode, CreateOptions, Durability, ErrorKind, Keeper, KeeperBuilder,
    ManualClock, Op, OpResult, Session, SnapshotCrash, Stat, StoreFaults,
};
use serde::{Deserialize, Serialize};

/// The library's own generator (`src/random.rs`), so seeded runs draw from
/// the same code as the library.
#[allow(dead_code)]
#[path = "../src/random.rs"]
mod random;

use random::Rng;

const ROLE_ENV: &str = "INNKEEPER_CRASH_ROLE";
const CYCLES_ENV: &str = "INNKEEPER_CRASH_CYCLES";
const SEED_ENV: &str = "INNKEEPER_SEED";
const CYCLES_DEFAULT: u64 = 50;
/// Writer threads (and sessions) per child.
const WRITERS: usize = 3;
/// Ops a writer does before it idles (the kill comes long before).
const OPS_PER_WRITER_MAX: u64 = 5_000;
/// Longest wait after the child opened the store before the kill.
const KILL_DELAY_MAX: Duration = Duration::from_millis(90);
/// Longest wait for the child to open the store.
const OPEN_WAIT_MAX: Duration = Duration::from_secs(20);
/// Snapshots come often, so kills land in them too.
const SNAPSHOT_EVERY_TXNS: u64 = 64;
/// Filler making some values span several log chunks.
const BIG_VALUE_BYTES: usize = 5_000;
const T0: i64 = 1_700_000_000_000;

fn main() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("child") {
        child::run();
    } else {
        parent::run();
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn base(cycle: u64, writer: usize) -> String {
    format!("/cycle-{cycle}/w{writer}")
}

/// A counter value: `<writer>:<op>;` then optional filler.
fn counter_value(writer: usize, k: i64, big: bool) -> Vec<u8> {
    let mut v = format!("{writer}:{k};").into_bytes();
    if big {
        v.resize(v.len() + BIG_VALUE_BYTES, b'x');
    }
    v
}

fn parse_counter(data: &[u8]) -> Option<(usize, i64)> {
    let text = std::str::from_utf8(data.split(|b| *b == b';').next()?).ok()?;
    let (w, k) = text.split_once(':')?;
    Some((w.parse().ok()?, k.parse().ok()?))
}

/// The snapshot crash point a cycle's child aborts at, if any.
fn crash_point(cycle: u64) -> Option<SnapshotCrash> {
    const POINTS: [SnapshotCrash; 5] = [
        SnapshotCrash::MidWrite,
        SnapshotCrash::BeforeRename,
        SnapshotCrash::AfterRename,
        SnapshotCrash::BeforeLogTruncation,
        SnapshotCrash::AfterLogTruncation,
    ];
    (cycle % 5 == 2).then(|| POINTS[(cycle / 5) as usize % POINTS.len()])
}

fn builder(durability: Durability) -> KeeperBuilder {
    Keeper::builder()
        .durability(durability)
        .snapshot_every_txns(SNAPSHOT_EVERY_TXNS)
        .cache_bytes(8 << 20)
}

// ---- the side log ----------------------------------------------------------

/// How a node is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Persistent,
    PersistentSeq,
    Ephemeral,
    EphemeralSeq,
    Container,
    Ttl,
}

impl Kind {
    fn mode(self) -> CreateMode {
        match self {
            Kind::Persistent => CreateMode::Persistent,
            Kind::PersistentSeq => CreateMode::PersistentSequential,
            Kind::Ephemeral => CreateMode::Ephemeral,
            Kind::EphemeralSeq => CreateMode::EphemeralSequential,
            Kind::Container => CreateMode::Container,
            Kind::Ttl => CreateMode::PersistentWithTtl,
        }
    }

    fn sequential(self) -> bool {
        matches!(self, Kind::PersistentSeq | Kind::EphemeralSeq)
    }

    fn ephemeral(self) -> bool {
        matches!(self, Kind::Ephemeral | Kind::EphemeralSeq)
    }
}

/// One op of a writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum WorkOp {
    OpenSession,
    SetCounter {
        data: Vec<u8>,
    },
    Create {
        path: String,
        data: Option<Vec<u8>>,
        kind: Kind,
    },
    Delete {
        path: String,
    },
    /// Create `create`, set the counter, maybe delete `delete`: all or nothing.
    Multi {
        create: String,
        data: Vec<u8>,
        delete: Option<String>,
    },
    /// A create followed by a failing version check: never applied.
    FailingMulti {
        create: String,
    },
}

/// What an op returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum WorkResult {
    Session { id: i64, password: Vec<u8> },
    Created { path: String, zxid: i64 },
    Set { zxid: i64 },
    Deleted,
    Multi { zxid: i64 },
    Failed { kind: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Line {
    Opened {
        zxid: i64,
    },
    Try {
        w: usize,
        k: i64,
        op: WorkOp,
    },
    Ack {
        w: usize,
        k: i64,
        result: WorkResult,
    },
    Seen {
        w: usize,
        k: i64,
    },
    ReaderOpening,
    ReaderSession {
        id: i64,
    },
}

/// The side log: one JSON line per record, written and fsynced before the
/// writing thread goes on.
struct SideLog(Mutex<File>);

impl SideLog {
    fn create(path: &Path) -> SideLog {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("side log");
        SideLog(Mutex::new(file))
    }

    fn record(&self, line: &Line) {
        let mut bytes = serde_json::to_vec(line).expect("json");
        bytes.push(b'\n');
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&bytes).expect("side log write");
        file.sync_data().expect("side log fsync");
    }
}

/// Complete lines of a side log (a torn last line is dropped).
fn read_side_log(path: &Path) -> Vec<Line> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let Ok(line) = line else { break };
        match serde_json::from_slice(&line) {
            Ok(parsed) => lines.push(parsed),
            Err(_) => break,
        }
    }
    lines
}

// ---- the model -------------------------------------------------------------

/// A node as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelNode {
    data: Option<Vec<u8>>,
    version: i32,
    ephemeral: bool,
    creates: i32,
}

/// What the recovered tree shows of a node, compared with the model.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    data: Option<Vec<u8>>,
    version: i32,
    ephemeral: bool,
    cversion: i32,
    num_children: i32,
}

/// One writer's subtree, as its acknowledged ops make it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    base: String,
    nodes: BTreeMap<String, ModelNode>,
}

impl Model {
    /// The subtree the parent prepares before a cycle.
    fn new(base: &str, writer: usize) -> Model {
        let mut nodes = BTreeMap::new();
        let node = |data: Option<Vec<u8>>, creates| ModelNode {
            data,
            version: 0,
            ephemeral: false,
            creates,
        };
        nodes.insert(base.to_string(), node(Some(Vec::new()), 2));
        nodes.insert(format!("{base}/seq"), node(Some(Vec::new()), 0));
        nodes.insert(
            format!("{base}/counter"),
            node(Some(counter_value(writer, -1, false)), 0),
        );
        Model {
            base: base.to_string(),
            nodes,
        }
    }

    fn parent(path: &str) -> &str {
        &path[..path.rfind('/').unwrap_or(0)]
    }

    /// The name a create gets (sequential names from the parent's counter).
    fn name_for(&self, path: &str, kind: Kind) -> String {
        if kind.sequential() {
            let creates = self.nodes.get(Self::parent(path)).map_or(0, |n| n.creates);
            format!("{path}{creates:010}")
        } else {
            path.to_string()
        }
    }

    fn create(&mut self, path: &str, data: Option<Vec<u8>>, kind: Kind) -> String {
        let name = self.name_for(path, kind);
        if let Some(parent) = self.nodes.get_mut(Self::parent(&name)) {
            parent.creates += 1;
        }
        self.nodes.insert(
            name.clone(),
            ModelNode {
                data,
                version: 0,
                ephemeral: kind.ephemeral(),
                creates: 0,
            },
        );
        name
    }

    fn set_counter(&mut self, data: &[u8]) {
        let counter = format!("{}/counter", self.base);
        if let Some(node) = self.nodes.get_mut(&counter) {
            node.data = Some(data.to_vec());
            node.version += 1;
        }
    }

    /// Applies a successful op.
    fn apply(&mut self, op: &WorkOp) {
        match op {
            WorkOp::OpenSession | WorkOp::FailingMulti { .. } => {}
            WorkOp::SetCounter { data } => self.set_counter(data),
            WorkOp::Create { path, data, kind } => {
                self.create(path, data.clone(), *kind);
            }
            WorkOp::Delete { path } => {
                self.nodes.remove(path);
            }
            WorkOp::Multi {
                create,
                data,
                delete,
            } => {
                self.create(create, Some(data.clone()), Kind::Persistent);
                self.set_counter(data);
                if let Some(p) = delete {
                    self.nodes.remove(p);
                }
            }
        }
    }

    /// Nodes a writer may delete: everything it created (all leaves).
    fn deletable(&self) -> Vec<String> {
        let fixed = [
            self.base.clone(),
            format!("{}/seq", self.base),
            format!("{}/counter", self.base),
        ];
        self.nodes
            .keys()
            .filter(|p| !fixed.contains(p))
            .cloned()
            .collect()
    }

    fn ephemerals(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.ephemeral)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// What the tree should show.
    fn view(&self) -> BTreeMap<String, Seen> {
        self.nodes
            .iter()
            .map(|(p, n)| {
                let prefix = format!("{p}/");
                let num_children = self
                    .nodes
                    .keys()
                    .filter(|c| c.starts_with(&prefix) && !c[prefix.len()..].contains('/'))
                    .count() as i32;
                let seen = Seen {
                    data: n.data.clone(),
                    version: n.version,
                    ephemeral: n.ephemeral,
                    cversion: n.creates * 2 - num_children,
                    num_children,
                };
                (p.clone(), seen)
            })
            .collect()
    }
}

/// Reads a subtree through the public API.
fn observe(session: &Session, root: &str) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        let Ok((data, stat)) = session.get_data_with(&p, None) else {
            continue;
        };
        for child in session.get_children(&p).unwrap_or_default() {
            stack.push(format!("{p}/{child}"));
        }
        out.insert(
            p,
            Seen {
                data,
                version: stat.version,
                ephemeral: stat.ephemeral_owner != 0,
                cversion: stat.cversion,
                num_children: stat.num_children,
            },
        );
    }
    out
}

// ---- the child -------------------------------------------------------------

mod child {
    use super::*;

    pub fn run() {
        let store = PathBuf::from(std::env::var("INNKEEPER_CRASH_STORE").expect("store"));
        let side = PathBuf::from(std::env::var("INNKEEPER_CRASH_SIDE").expect("side"));
        let cycle = env_u64("INNKEEPER_CRASH_CYCLE").expect("cycle");
        let seed = env_u64("INNKEEPER_CRASH_SEED").expect("seed");
        let periodic = std::env::var("INNKEEPER_CRASH_MODE").as_deref() == Ok("periodic");
        let durability = if periodic {
            // Half the periodic cycles flush often (kills land in flushes),
            // half never flush before the kill (all rests on the OS).
            Durability::Periodic(Duration::from_millis(if cycle % 8 == 3 {
                5
            } else {
                1_000
            }))
        } else {
            Durability::Durable
        };
        let log = Arc::new(SideLog::create(&side));
        let keeper = builder(durability)
            .store_faults(StoreFaults {
                crash_in_snapshot: crash_point(cycle),
                ..StoreFaults::default()
            })
            .open(&store)
            .expect("child open");
        log.record(&Line::Opened {
            zxid: keeper.last_zxid(),
        });
        let mut threads = Vec::new();
        for writer in 0..WRITERS {
            let (keeper, log) = (keeper.clone(), log.clone());
            let rng = Rng::seeded(seed ^ (writer as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            threads.push(std::thread::spawn(move || {
                write_loop(&keeper, &log, cycle, writer, rng)
            }));
        }
        {
            let (keeper, log) = (keeper.clone(), log.clone());
            let rng = Rng::seeded(seed ^ 0x5EE);
            threads.push(std::thread::spawn(move || {
                read_loop(&keeper, &log, cycle, rng)
            }));
        }
        for t in threads {
            let _ = t.join();
        }
        // Idle until killed; never close (a crash is the point).
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn write_loop(keeper: &Keeper, log: &SideLog, cycle: u64, writer: usize, mut rng: Rng) {
        let base = base(cycle, writer);
        log.record(&Line::Try {
            w: writer,
            k: -1,
            op: WorkOp::OpenSession,
        });
        let session = keeper.session().expect("child session");
        log.record(&Line::Ack {
            w: writer,
            k: -1,
            result: WorkResult::Session {
                id: session.session_id(),
                password: session.password().to_vec(),
            },
        });
        let mut model = Model::new(&base, writer);
        for k in 0..OPS_PER_WRITER_MAX as i64 {
            let op = choose(&model, &base, writer, k, &mut rng);
            log.record(&Line::Try {
                w: writer,
                k,
                op: op.clone(),
            });
            let result = execute(&session, &base, &op);
            if !matches!(result, WorkResult::Failed { .. }) {
                if let (WorkOp::Create { path, kind, .. }, WorkResult::Created { path: got, .. }) =
                    (&op, &result)
                {
                    assert_eq!(&model.name_for(path, *kind), got, "model name");
                }
                model.apply(&op);
            }
            log.record(&Line::Ack {
                w: writer,
                k,
                result,
            });
        }
        std::mem::forget(session); // never close: the kill is the end
    }

    fn choose(model: &Model, base: &str, writer: usize, k: i64, rng: &mut Rng) -> WorkOp {
        let big = rng.below(4) == 0;
        let data = counter_value(writer, k, big);
        let deletable = model.deletable();
        let pick = rng.below(100);
        match pick {
            0..=19 => WorkOp::SetCounter { data },
            20..=69 => {
                let (path, kind) = match pick {
                    20..=29 => (format!("{base}/seq/s-"), Kind::PersistentSeq),
                    30..=37 => (format!("{base}/seq/e-"), Kind::EphemeralSeq),
                    38..=45 => (format!("{base}/eph-{k}"), Kind::Ephemeral),
                    46..=50 => (format!("{base}/box-{k}"), Kind::Container),
                    51..=55 => (format!("{base}/ttl-{k}"), Kind::Ttl),
                    _ => (format!("{base}/p-{k}"), Kind::Persistent),
                };
                // Null data one time in four, kept apart from empty.
                let data = match rng.below(4) {
                    0 => None,
                    1 => Some(Vec::new()),
                    _ => Some(data),
                };
                WorkOp::Create { path, data, kind }
            }
            70..=84 if !deletable.is_empty() => WorkOp::Delete {
                path: deletable[rng.below(deletable.len() as u64) as usize].clone(),
            },
            70..=94 => WorkOp::Multi {
                create: format!("{base}/m-{k}"),
                data,
                delete: (!deletable.is_empty() && rng.below(2) == 0)
                    .then(|| deletable[rng.below(deletable.len() as u64) as usize].clone()),
            },
            _ => WorkOp::FailingMulti {
                create: format!("{base}/never-{k}"),
            },
        }
    }

    fn failed(e: innkeeper::Error) -> WorkResult {
        WorkResult::Failed {
            kind: format!("{:?}", e.kind()),
        }
    }

    fn execute(session: &Session, base: &str, op: &WorkOp) -> WorkResult {
        let counter = format!("{base}/counter");
        match op {
            WorkOp::OpenSession => unreachable!("sessions open before the ops"),
            WorkOp::SetCounter { data } => match session.set_data(&counter, data, -1) {
                Ok(stat) => WorkResult::Set { zxid: stat.mzxid },
                Err(e) => failed(e),
            },
            WorkOp::Create { path, data, kind } => {
                let mut options = CreateOptions::new(kind.mode());
                if *kind == Kind::Ttl {
                    options = options.ttl(Duration::from_secs(3600));
                }
                match session.create_with(path, data.as_deref(), &options) {
                    Ok((path, stat)) => WorkResult::Created {
                        path,
                        zxid: stat.czxid,
                    },
                    Err(e) => failed(e),
                }
            }
            WorkOp::Delete { path } => match session.delete(path, -1) {
                Ok(()) => WorkResult::Deleted,
                Err(e) => failed(e),
            },
            WorkOp::Multi {
                create,
                data,
                delete,
            } => {
                let mut ops = vec![
                    Op::create(create.clone(), data, CreateMode::Persistent),
                    Op::set_data(counter, data, -1),
                ];
                if let Some(p) = delete {
                    ops.push(Op::delete(p.clone(), -1));
                }
                match session.multi(&ops) {
                    Ok(results) => match results.first() {
                        Some(OpResult::Create { stat, .. }) => {
                            WorkResult::Multi { zxid: stat.czxid }
                        }
                        _ => WorkResult::Multi { zxid: 0 },
                    },
                    Err(e) => failed(e),
                }
            }
            WorkOp::FailingMulti { create } => {
                let ops = [
                    Op::create(create.clone(), b"", CreateMode::Persistent),
                    Op::check(counter, 1 << 30),
                ];
                match session.multi(&ops) {
                    Ok(_) => WorkResult::Multi { zxid: 0 },
                    Err(e) => failed(e),
                }
            }
        }
    }

    fn read_loop(keeper: &Keeper, log: &SideLog, cycle: u64, mut rng: Rng) {
        log.record(&Line::ReaderOpening);
        let Ok(session) = keeper.session() else {
            return;
        };
        log.record(&Line::ReaderSession {
            id: session.session_id(),
        });
        let mut last = [i64::MIN; WRITERS];
        loop {
            let writer = rng.below(WRITERS as u64) as usize;
            let counter = format!("{}/counter", base(cycle, writer));
            if let Ok((data, _)) = session.get_data(&counter) {
                if let Some((w, k)) = parse_counter(&data) {
                    if w == writer && k > last[writer] {
                        last[writer] = k;
                        log.record(&Line::Seen { w: writer, k });
                    }
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

// ---- the parent ------------------------------------------------------------

mod parent {
    use super::*;

    /// What survives from cycle to cycle.
    struct History {
        /// `/history/c<n>` nodes with the data and Stat they were created with.
        nodes: Vec<(String, Vec<u8>, Stat)>,
        /// The last sequential name under `/history-seq`.
        last_seq: Option<String>,
        /// zxid after the parent's cleanup of the previous cycle.
        zxid: i64,
        /// Largest session id seen so far.
        session_id_high: i64,
    }

    pub fn run() {
        let seed = env_u64(SEED_ENV).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let cycles = env_u64(CYCLES_ENV).unwrap_or(CYCLES_DEFAULT);
        println!("crash test: {cycles} cycles, seed {seed} ({SEED_ENV}={seed} replays it)");
        let started = Instant::now();
        let mut rng = Rng::seeded(seed);
        // Kept on failure for a post-mortem; removed after a pass.
        let work = tempfile::tempdir().expect("tempdir").keep();
        let store = work.join("store");
        let clock = ManualClock::new(T0);
        let mut history = History {
            nodes: Vec::new(),
            last_seq: None,
            zxid: 0,
            session_id_high: 0,
        };
        {
            let keeper = open(&store, &clock);
            let s = keeper.session().expect("session");
            s.create("/history", b"", CreateMode::Persistent).unwrap();
            s.create("/history-seq", b"", CreateMode::Persistent)
                .unwrap();
            prepare_cycle(&s, 0);
            s.close().unwrap();
            history.zxid = keeper.last_zxid();
            keeper.shutdown().unwrap();
        }
        let (mut killed_before_open, mut acked_total) = (0u64, 0u64);
        let mut aborted_in_snapshot = 0u64;
        for cycle in 0..cycles {
            let cycle_seed = rng.next_u64();
            let periodic = cycle % 4 == 3;
            let side = work.join(format!("side-{cycle}.log"));
            let stderr = work.join(format!("child-{cycle}.stderr"));
            let mut child = spawn(&store, &side, &stderr, cycle, cycle_seed, periodic);
            let early = rng.below(8) == 0;
            if early {
                killed_before_open += 1;
                std::thread::sleep(Duration::from_millis(rng.below(30)));
            } else {
                wait_for_open(&mut child, &side, &stderr, cycle, seed);
                // Another process holds the store: opening it must fail
                // (unless the child may have aborted itself by now).
                match builder(Durability::Durable).open(&store) {
                    Err(e) if e.kind() == ErrorKind::StoreLocked => {}
                    Ok(keeper) if crash_point(cycle).is_some() => {
                        let _ = keeper.shutdown();
                    }
                    other => fail(
                        cycle,
                        seed,
                        &stderr,
                        &format!("opening a store the child holds gave {other:?}"),
                    ),
                }
                std::thread::sleep(Duration::from_micros(
                    rng.below(KILL_DELAY_MAX.as_micros() as u64),
                ));
            }
            if let Ok(Some(status)) = child.try_wait() {
                if crash_point(cycle).is_some() && !status.success() {
                    aborted_in_snapshot += 1;
                } else {
                    fail(
                        cycle,
                        seed,
                        &stderr,
                        &format!("the child exited by itself: {status}"),
                    );
                }
            }
            child.kill().expect("kill");
            let _ = child.wait();
            let lines = read_side_log(&side);
            acked_total += lines
                .iter()
                .filter(|l| matches!(l, Line::Ack { .. }))
                .count() as u64;
            verify(&store, &clock, cycle, &lines, &mut history)
                .unwrap_or_else(|problem| fail(cycle, seed, &stderr, &problem));
            let _ = std::fs::remove_file(&side);
            let _ = std::fs::remove_file(&stderr);
        }
        println!(
            "crash test: {cycles} cycles passed in {:.1?} ({acked_total} acknowledged ops, \
             {killed_before_open} kills before the child had opened the store, \
             {aborted_in_snapshot} aborts at a snapshot crash point), seed {seed}",
            started.elapsed()
        );
        let _ = std::fs::remove_dir_all(&work);
    }

    fn fail(cycle: u64, seed: u64, stderr: &Path, problem: &str) -> ! {
        let child_err = std::fs::read_to_string(stderr).unwrap_or_default();
        eprintln!("child stderr:\n{child_err}");
        let work = stderr.parent().unwrap_or(stderr);
        panic!(
            "crash test cycle {cycle} failed ({SEED_ENV}={seed} replays it; store and side log \
             kept in {}): {problem}",
            work.display()
        );
    }

    fn open(store: &Path, clock: &ManualClock) -> Keeper {
        builder(Durability::Durable)
            .clock(clock.clone())
            .open(store)
            .unwrap_or_else(|e| panic!("reopening {}: {e}", store.display()))
    }

    fn spawn(
        store: &Path,
        side: &Path,
        stderr: &Path,
        cycle: u64,
        seed: u64,
        periodic: bool,
    ) -> Child {
        Command::new(std::env::current_exe().expect("current exe"))
            .env(ROLE_ENV, "child")
            .env("INNKEEPER_CRASH_STORE", store)
            .env("INNKEEPER_CRASH_SIDE", side)
            .env("INNKEEPER_CRASH_CYCLE", cycle.to_string())
            .env("INNKEEPER_CRASH_SEED", seed.to_string())
            .env(
                "INNKEEPER_CRASH_MODE",
                if periodic { "periodic" } else { "durable" },
            )
            .stdout(Stdio::null())
            .stderr(File::create(stderr).expect("stderr file"))
            .spawn()
            .expect("spawn child")
    }

    fn wait_for_open(child: &mut Child, side: &Path, stderr: &Path, cycle: u64, seed: u64) {
        let deadline = Instant::now() + OPEN_WAIT_MAX;
        loop {
            if read_side_log(side)
                .iter()
                .any(|l| matches!(l, Line::Opened { .. }))
            {
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                fail(
                    cycle,
                    seed,
                    stderr,
                    &format!("the child died while opening: {status}"),
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                fail(
                    cycle,
                    seed,
                    stderr,
                    "the child did not open the store in time",
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn prepare_cycle(s: &Session, cycle: u64) {
        s.create(&format!("/cycle-{cycle}"), b"", CreateMode::Persistent)
            .unwrap();
        for writer in 0..WRITERS {
            let b = base(cycle, writer);
            s.create(&b, b"", CreateMode::Persistent).unwrap();
            s.create(&format!("{b}/seq"), b"", CreateMode::Persistent)
                .unwrap();
            s.create(
                &format!("{b}/counter"),
                &counter_value(writer, -1, false),
                CreateMode::Persistent,
            )
            .unwrap();
        }
    }

    /// One writer's side-log story.
    #[derive(Default)]
    struct Story {
        acked: Vec<(WorkOp, WorkResult)>,
        in_flight: Option<WorkOp>,
        session: Option<(i64, Vec<u8>)>,
        opening: bool,
        seen_max: Option<i64>,
        acked_zxid_max: i64,
    }

    /// The reader's session: opening (maybe in flight), and its id once acknowledged.
    #[derive(Default)]
    struct ReaderStory {
        opening: bool,
        session: Option<i64>,
    }

    fn stories(lines: &[Line]) -> Result<(Vec<Story>, ReaderStory), String> {
        let mut stories: Vec<Story> = (0..WRITERS).map(|_| Story::default()).collect();
        let mut reader = ReaderStory::default();
        for line in lines {
            match line {
                Line::Opened { .. } => {}
                Line::ReaderOpening => reader.opening = true,
                Line::ReaderSession { id } => {
                    reader.opening = false;
                    reader.session = Some(*id);
                }
                Line::Try { w, op, .. } => {
                    let story = &mut stories[*w];
                    if *op == WorkOp::OpenSession {
                        story.opening = true;
                    } else {
                        story.in_flight = Some(op.clone());
                    }
                }
                Line::Ack { w, result, .. } => {
                    let story = &mut stories[*w];
                    match result {
                        WorkResult::Session { id, password } => {
                            story.opening = false;
                            story.session = Some((*id, password.clone()));
                        }
                        _ => {
                            let op = story
                                .in_flight
                                .take()
                                .ok_or(format!("writer {w}: ack without a try"))?;
                            let zxid = match result {
                                WorkResult::Created { zxid, .. }
                                | WorkResult::Set { zxid }
                                | WorkResult::Multi { zxid } => *zxid,
                                _ => 0,
                            };
                            story.acked_zxid_max = story.acked_zxid_max.max(zxid);
                            story.acked.push((op, result.clone()));
                        }
                    }
                }
                Line::Seen { w, k } => {
                    let story = &mut stories[*w];
                    story.seen_max = Some(story.seen_max.map_or(*k, |m| m.max(*k)));
                }
            }
        }
        Ok((stories, reader))
    }

    /// The k (op index) of the last counter value in a model.
    fn counter_k(model: &Model) -> i64 {
        model
            .nodes
            .get(&format!("{}/counter", model.base))
            .and_then(|n| n.data.as_deref())
            .and_then(parse_counter)
            .map_or(-1, |(_, k)| k)
    }

    fn verify(
        store: &Path,
        clock: &ManualClock,
        cycle: u64,
        lines: &[Line],
        history: &mut History,
    ) -> Result<(), String> {
        let keeper = builder(Durability::Durable)
            .clock(clock.clone())
            .open(store)
            .map_err(|e| format!("reopen failed: {e}"))?;
        keeper
            .check_invariants()
            .map_err(|p| format!("invariants: {p}"))?;
        let recovered_zxid = keeper.last_zxid();
        if recovered_zxid < history.zxid {
            return Err(format!(
                "zxid went back: {recovered_zxid:#x} < {:#x}",
                history.zxid
            ));
        }
        let (stories, reader_story) = stories(lines)?;
        let restored: BTreeSet<i64> = keeper.session_ids().into_iter().collect();
        let reader = keeper.session().map_err(|e| e.to_string())?;
        if reader.session_id() <= history.session_id_high {
            return Err(format!(
                "session id {:#x} reused (high {:#x})",
                reader.session_id(),
                history.session_id_high
            ));
        }
        // Nodes of earlier cycles are untouched.
        for (p, data, stat) in &history.nodes {
            let (got, got_stat) = reader
                .get_data(p)
                .map_err(|e| format!("history node {p}: {e}"))?;
            if (&got, &got_stat) != (data, stat) {
                return Err(format!("history node {p} changed"));
            }
        }
        let mut explained_sessions: BTreeSet<i64> = reader_story.session.into_iter().collect();
        let mut unexplained_allowed = usize::from(reader_story.opening);
        for (writer, story) in stories.iter().enumerate() {
            let b = base(cycle, writer);
            let actual = observe(&reader, &b);
            let mut model = Model::new(&b, writer);
            for (op, result) in &story.acked {
                if !matches!(result, WorkResult::Failed { .. }) {
                    model.apply(op);
                }
            }
            let mut with_in_flight = model.clone();
            if let Some(op) = &story.in_flight {
                with_in_flight.apply(op);
            }
            let (done, applied) = if actual == model.view() {
                (true, &model)
            } else if story.in_flight.is_some() && actual == with_in_flight.view() {
                (true, &with_in_flight)
            } else {
                (false, &model)
            };
            // Both modes: a process kill loses nothing acknowledged (the
            // periodic mode has every batch in the OS before the reply).
            if !done {
                return Err(format!(
                    "writer {writer}: the tree is neither the acknowledged state nor \
                     that plus the op in flight {:?}\nactual {actual:#?}\nexpected {:#?}",
                    story.in_flight,
                    model.view()
                ));
            }
            if let Some(seen) = story.seen_max {
                if seen > counter_k(applied) {
                    return Err(format!(
                        "writer {writer}: a reader saw the counter of op {seen}, \
                         the store has op {}",
                        counter_k(applied)
                    ));
                }
            }
            if recovered_zxid < story.acked_zxid_max {
                return Err(format!(
                    "writer {writer}: acknowledged zxid {:#x} above the recovered {:#x}",
                    story.acked_zxid_max, recovered_zxid
                ));
            }
            // The session and its ephemerals.
            if story.opening {
                unexplained_allowed += 1;
            }
            if let Some((id, password)) = &story.session {
                explained_sessions.insert(*id);
                if !restored.contains(id) {
                    return Err(format!("writer {writer}: session {id:#x} lost"));
                }
                history.session_id_high = history.session_id_high.max(*id);
                let session = keeper
                    .resume_session(*id, password, Duration::from_secs(10))
                    .map_err(|e| format!("writer {writer}: resume: {e}"))?;
                let ephemerals: BTreeSet<String> = session
                    .get_ephemerals("/")
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect();
                let on_disk: BTreeSet<String> = actual
                    .iter()
                    .filter(|(_, s)| s.ephemeral)
                    .map(|(p, _)| p.clone())
                    .collect();
                if ephemerals != on_disk {
                    return Err(format!(
                        "writer {writer}: the session owns {ephemerals:?}, the tree shows {on_disk:?}"
                    ));
                }
                if ephemerals != applied.ephemerals() {
                    return Err(format!("writer {writer}: ephemerals {ephemerals:?}"));
                }
                session.close().map_err(|e| e.to_string())?;
            }
        }
        let unexplained: Vec<i64> = restored
            .iter()
            .filter(|id| !explained_sessions.contains(id))
            .copied()
            .collect();
        if unexplained.len() > unexplained_allowed {
            return Err(format!("unknown sessions restored: {unexplained:x?}"));
        }
        for id in unexplained
            .into_iter()
            .chain(reader_story.session.filter(|id| restored.contains(id)))
        {
            history.session_id_high = history.session_id_high.max(id);
            keeper.expire_session(id).map_err(|e| e.to_string())?;
        }
        history.session_id_high = history.session_id_high.max(reader.session_id());

        // Clean up, leave a trace of this cycle, prepare the next.
        reader
            .delete_all(&format!("/cycle-{cycle}"))
            .map_err(|e| e.to_string())?;
        let p = format!("/history/c{cycle}");
        let data = format!("cycle {cycle} recovered zxid {recovered_zxid:#x}").into_bytes();
        let (_, stat) = reader
            .create_with(&p, Some(&data), &CreateOptions::new(CreateMode::Persistent))
            .map_err(|e| e.to_string())?;
        history.nodes.push((p, data, stat));
        let seq = reader
            .create("/history-seq/s-", b"", CreateMode::PersistentSequential)
            .map_err(|e| e.to_string())?;
        if history.last_seq.as_ref().is_some_and(|last| *last >= seq) {
            return Err(format!("sequential name {seq} repeats or goes back"));
        }
        history.last_seq = Some(seq);
        prepare_cycle(&reader, cycle + 1);
        reader.close().map_err(|e| e.to_string())?;
        history.zxid = keeper.last_zxid();
        keeper
            .check_invariants()
            .map_err(|p| format!("after cleanup: {p}"))?;
        keeper.shutdown().map_err(|e| e.to_string())?;
        Ok(())
    }
}
