//! Store benches: write throughput of a keeper on a directory in the
//! durable mode with 1, 4 and 16 writer threads (the 16/1 ratio is what
//! group commit buys), the periodic mode and an in-memory keeper beside it,
//! and the time to reopen (recover) stores of 10 000 and 100 000 nodes.
//!
//! Run: `cargo bench --bench store` (short warm-up and measurement: a few
//! minutes in all). Stores live in the system temp dir; set `TMPDIR` to
//! measure another disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use innkeeper::{Coordinator, CreateMode, Durability, Keeper, KeeperBuilder, Op, Session};

/// Writes per writer thread and measured iteration.
const WRITES_PER_WRITER: u64 = 16;
const WRITER_COUNTS: [usize; 3] = [1, 4, 16];
const RECOVERY_NODES: [usize; 2] = [10_000, 100_000];
const VALUE: &[u8] = b"a thirty-two byte value........!";

fn builder(durability: Durability) -> KeeperBuilder {
    Keeper::builder().durability(durability)
}

/// A keeper (on a temp dir unless in memory) with one session per writer
/// and a parent node per writer.
struct Rig {
    keeper: Keeper,
    sessions: Vec<Arc<Session>>,
    next: AtomicU64,
    _dir: Option<tempfile::TempDir>,
}

impl Rig {
    fn new(durability: Option<Durability>, writers: usize) -> Rig {
        let (keeper, dir) = match durability {
            Some(d) => {
                let dir = tempfile::tempdir().unwrap();
                (builder(d).open(dir.path()).unwrap(), Some(dir))
            }
            None => (Keeper::in_memory().unwrap(), None),
        };
        let sessions: Vec<Arc<Session>> = (0..writers)
            .map(|_| Arc::new(keeper.session().unwrap()))
            .collect();
        for (w, s) in sessions.iter().enumerate() {
            s.create(&format!("/w{w}"), b"", CreateMode::Persistent)
                .unwrap();
            s.create(&format!("/w{w}/counter"), b"", CreateMode::Persistent)
                .unwrap();
        }
        Rig {
            keeper,
            sessions,
            next: AtomicU64::new(0),
            _dir: dir,
        }
    }

    /// Runs [`WRITES_PER_WRITER`] writes on every writer at once; returns
    /// the wall time.
    fn run(&self, set: bool) -> Duration {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for (w, session) in self.sessions.iter().enumerate() {
                let next = &self.next;
                scope.spawn(move || {
                    for _ in 0..WRITES_PER_WRITER {
                        if set {
                            session
                                .set_data(&format!("/w{w}/counter"), VALUE, -1)
                                .unwrap();
                        } else {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            session
                                .create(&format!("/w{w}/n{i}"), VALUE, CreateMode::Persistent)
                                .unwrap();
                        }
                    }
                });
            }
        });
        started.elapsed()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.keeper.shutdown();
    }
}

fn writes(c: &mut Criterion, name: &str, durability: Option<Durability>, set: bool) {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    for writers in WRITER_COUNTS {
        let rig = Rig::new(durability, writers);
        group.throughput(Throughput::Elements(WRITES_PER_WRITER * writers as u64));
        group.bench_with_input(BenchmarkId::from_parameter(writers), &writers, |b, _| {
            b.iter_custom(|iters| (0..iters).map(|_| rig.run(set)).sum::<Duration>())
        });
    }
    group.finish();
}

fn durable_create(c: &mut Criterion) {
    writes(c, "durable_create", Some(Durability::Durable), false);
}

fn durable_set(c: &mut Criterion) {
    writes(c, "durable_set", Some(Durability::Durable), true);
}

fn periodic_create(c: &mut Criterion) {
    let every = Durability::Periodic(Duration::from_millis(100));
    writes(c, "periodic_100ms_create", Some(every), false);
}

fn in_memory_create(c: &mut Criterion) {
    writes(c, "in_memory_create", None, false);
}

/// Builds a store of `nodes` nodes quickly (multis in the periodic mode).
fn build_store(nodes: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let keeper = builder(Durability::Periodic(Duration::from_millis(50)))
        .open(dir.path())
        .unwrap();
    let s = keeper.session().unwrap();
    s.create("/r", b"", CreateMode::Persistent).unwrap();
    let per_dir = 1000;
    for d in 0..nodes.div_ceil(per_dir) {
        let parent = format!("/r/d{d}");
        s.create(&parent, b"", CreateMode::Persistent).unwrap();
        let ops: Vec<Op> = (0..per_dir.min(nodes - d * per_dir))
            .map(|i| Op::create(format!("{parent}/n{i}"), VALUE, CreateMode::Persistent))
            .collect();
        s.multi(&ops).unwrap();
    }
    s.close().unwrap();
    keeper.shutdown().unwrap();
    dir
}

fn recovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("recovery");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    for nodes in RECOVERY_NODES {
        let dir = build_store(nodes);
        group.throughput(Throughput::Elements(nodes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(nodes), &nodes, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let keeper = Keeper::open(dir.path()).unwrap();
                    total += started.elapsed();
                    assert!(keeper.node_count() > nodes);
                    keeper.shutdown().unwrap();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    durable_create,
    durable_set,
    periodic_create,
    in_memory_create,
    recovery
);
criterion_main!(benches);
