//! In-process engine benches. Each group puts innkeeper beside a baseline in
//! the same run, so the ratio is what to read, not the absolute time.
//!
//! Run: `cargo bench --bench engine` (quick settings: ~1 s per bench).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use innkeeper::{Coordinator, CreateMode, Keeper, ManualClock, Op, Watcher};
use parking_lot::RwLock;

const NODES: usize = 100_000;

fn keeper() -> Keeper {
    Keeper::builder()
        .clock(ManualClock::new(1_700_000_000_000))
        .build()
        .unwrap()
}

fn key(i: usize) -> String {
    format!("/n/{:06}", i)
}

fn get_data(c: &mut Criterion) {
    let keeper = keeper();
    let session = Arc::new(keeper.session().unwrap());
    session.create("/n", b"", CreateMode::Persistent).unwrap();
    let baseline: Arc<RwLock<HashMap<String, Vec<u8>>>> = Arc::new(RwLock::new(HashMap::new()));
    for i in 0..NODES {
        session
            .create(&key(i), b"sixteen-byte-val", CreateMode::Persistent)
            .unwrap();
        baseline
            .write()
            .insert(key(i), b"sixteen-byte-val".to_vec());
    }
    let keys: Arc<Vec<String>> = Arc::new((0..NODES).map(key).collect());
    let mut group = c.benchmark_group("get_data_100k");
    for threads in [1usize, 2] {
        let (s, k) = (session.clone(), keys.clone());
        group.bench_with_input(
            BenchmarkId::new("innkeeper", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, &k, |p| {
                        std::hint::black_box(s.get_data(p).unwrap());
                    })
                })
            },
        );
        let (m, k) = (baseline.clone(), keys.clone());
        group.bench_with_input(
            BenchmarkId::new("rwlock_hashmap", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, &k, |p| {
                        std::hint::black_box(m.read().get(p).cloned().unwrap());
                    })
                })
            },
        );
    }
    group.finish();
}

/// Each of `threads` threads does `iters` ops; returns the wall time, so
/// one "iteration" is one op on every thread at once.
fn run_threads(
    threads: usize,
    iters: u64,
    keys: &Arc<Vec<String>>,
    op: impl Fn(&str) + Sync,
) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let op = &op;
            scope.spawn(move || {
                let mut idx = t * 7919;
                for _ in 0..iters {
                    idx = (idx + 104_729) % keys.len();
                    op(&keys[idx]);
                }
            });
        }
    });
    start.elapsed()
}

fn writes(c: &mut Criterion) {
    let keeper = keeper();
    let session = keeper.session().unwrap();
    session.create("/w", b"", CreateMode::Persistent).unwrap();
    let mut group = c.benchmark_group("writes");
    let mut n = 0u64;
    group.bench_function("create", |b| {
        b.iter(|| {
            n += 1;
            session
                .create(&format!("/w/c{n}"), b"value", CreateMode::Persistent)
                .unwrap()
        })
    });
    session
        .create("/w/set", b"", CreateMode::Persistent)
        .unwrap();
    group.bench_function("set_data", |b| {
        b.iter(|| session.set_data("/w/set", b"value", -1).unwrap())
    });
    group.bench_function("create_then_delete", |b| {
        b.iter(|| {
            session
                .create("/w/tmp", b"", CreateMode::Persistent)
                .unwrap();
            session.delete("/w/tmp", -1).unwrap();
        })
    });
    let ops: Vec<Op> = (0..10)
        .map(|i| Op::create(format!("/w/m{i}"), b"v", CreateMode::Persistent))
        .collect();
    let deletes: Vec<Op> = (0..10)
        .map(|i| Op::delete(format!("/w/m{i}"), -1))
        .collect();
    group.bench_function("multi_10_creates_plus_multi_10_deletes", |b| {
        b.iter(|| {
            session.multi(&ops).unwrap();
            session.multi(&deletes).unwrap();
        })
    });
    group.finish();
}

fn watches(c: &mut Criterion) {
    let keeper = keeper();
    let writer = keeper.session().unwrap();
    let watcher_session = keeper.session().unwrap();
    writer
        .create("/watched", b"", CreateMode::Persistent)
        .unwrap();
    let (watcher, events) = Watcher::channel();
    c.bench_function("watch_fire_to_receive", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                watcher_session
                    .get_data_with("/watched", Some(&watcher))
                    .unwrap();
                let start = Instant::now();
                writer.set_data("/watched", b"x", -1).unwrap();
                events.wait(Duration::from_secs(1)).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
}

fn fresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("fresh_keeper_plus_session");
    group.bench_function("manual_clock", |b| {
        b.iter(|| {
            let keeper = keeper();
            let session = keeper.session().unwrap();
            std::hint::black_box(session.session_id())
        })
    });
    group.bench_function("system_clock", |b| {
        b.iter(|| {
            let keeper = Keeper::in_memory().unwrap();
            let session = keeper.session().unwrap();
            std::hint::black_box(session.session_id())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = get_data, writes, watches, fresh
}
criterion_main!(benches);
