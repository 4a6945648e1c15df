//! Recipe benchmarks: lock hand-over rate under contention, and leader
//! failover time (keeper ticks and wall time from expiry to new leader).
//!
//! `cargo bench --bench recipes`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use innkeeper::recipes::{LeaderLatch, Lock};
use innkeeper::{Coordinator, Keeper, ManualClock, Session};

const TICK: Duration = Duration::from_millis(500);
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

fn keeper() -> (ManualClock, Keeper) {
    let clock = ManualClock::new(1_700_000_000_000);
    let keeper = Keeper::builder()
        .clock(clock.clone())
        .tick(TICK)
        .session_timeout_range(Duration::from_secs(1), Duration::from_secs(60))
        .build()
        .expect("keeper");
    (clock, keeper)
}

fn session(keeper: &Keeper) -> Arc<Session> {
    Arc::new(
        keeper
            .session_with_timeout(SESSION_TIMEOUT)
            .expect("session"),
    )
}

/// Acquire + release cycles per second with `contenders` threads, each
/// with its own session, taking turns on one lock.
fn lock_handover(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock acquire+release");
    group.throughput(Throughput::Elements(1));
    for contenders in [1usize, 4, 16] {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{contenders} contenders")),
            &contenders,
            |b, &contenders| {
                let (_clock, keeper) = keeper();
                let locks: Vec<Arc<Lock<Session>>> = (0..contenders)
                    .map(|_| Arc::new(Lock::new(session(&keeper), "/bench/lock").expect("lock")))
                    .collect();
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(contenders as u64);
                    let start_line = Arc::new(Barrier::new(contenders + 1));
                    let threads: Vec<_> = locks
                        .iter()
                        .map(|lock| {
                            let (lock, start_line) = (lock.clone(), start_line.clone());
                            std::thread::spawn(move || {
                                start_line.wait();
                                for _ in 0..per_thread {
                                    let guard = lock.lock().expect("lock");
                                    guard.release().expect("release");
                                }
                            })
                        })
                        .collect();
                    start_line.wait();
                    let start = Instant::now();
                    for t in threads {
                        t.join().expect("contender");
                    }
                    // Report time per cycle actually run.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_thread * contenders as u64) as f64)
                });
            },
        );
    }
    group.finish();
}

/// Wall time from the leader's session expiring to the follower knowing it
/// leads (the keeper deletes the leader's node, the follower's watch fires
/// on its event thread, it re-reads and takes over).
fn election_failover(c: &mut Criterion) {
    let (ticks, keeper_time) = failover_ticks();
    println!(
        "election failover, hung leader: {ticks} ticks of {} ms = {} ms of keeper time \
         (session timeout {} ms)",
        TICK.as_millis(),
        keeper_time.as_millis(),
        SESSION_TIMEOUT.as_millis()
    );
    let mut group = c.benchmark_group("election failover");
    group.bench_function("expiry to new leader (wall)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_clock, keeper) = keeper();
                let leader_session = session(&keeper);
                let leader =
                    LeaderLatch::start(leader_session.clone(), "/bench/elect", "a").expect("latch");
                let follower =
                    LeaderLatch::start(session(&keeper), "/bench/elect", "b").expect("latch");
                assert!(leader.is_leader());
                let start = Instant::now();
                keeper
                    .expire_session(leader_session.session_id())
                    .expect("expire");
                assert!(follower
                    .wait_leadership(Duration::from_secs(5))
                    .expect("wait"));
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

/// Keeper ticks from the leader hanging (heartbeats stop) until the
/// follower leads, advancing the manual clock one tick at a time.
fn failover_ticks() -> (u32, Duration) {
    let (clock, keeper) = keeper();
    let leader_session = session(&keeper);
    let _leader = LeaderLatch::start(leader_session.clone(), "/bench/elect", "a").expect("latch");
    let follower = LeaderLatch::start(session(&keeper), "/bench/elect", "b").expect("latch");
    leader_session.pause_heartbeats();
    let mut ticks = 0;
    while !follower
        .wait_leadership(Duration::from_millis(1))
        .unwrap_or(false)
    {
        clock.advance(TICK);
        ticks += 1;
        assert!(ticks < 1000, "the follower never took over");
    }
    (ticks, TICK * ticks)
}

criterion_group! {
    name = recipes;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = lock_handover, election_failover
}
criterion_main!(recipes);
