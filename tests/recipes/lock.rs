//! Exclusive lock, read-write lock and semaphore.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use innkeeper::recipes::{Lock, RwLock, Semaphore};
use innkeeper::{Coordinator, ErrorKind};
use proptest::prelude::*;

use crate::common::{self, Probe, TestSession, World, PROMPTLY};

// Checks mutual exclusion under real thread interleavings: 6 sessions on
// 6 threads each take the lock 25 times and, inside, raise a shared flag
// that must never already be raised; a count of entries must add up.
#[test]
fn lock_excludes_under_threads() {
    let world = World::new();
    let inside = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let lock = Lock::new(world.session(), "/app/lock").expect("lock");
            let (inside, entries) = (inside.clone(), entries.clone());
            scope.spawn(move || {
                for _ in 0..25 {
                    let guard = lock.lock().expect("lock");
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders");
                    entries.fetch_add(1, Ordering::SeqCst);
                    std::thread::yield_now();
                    inside.store(false, Ordering::SeqCst);
                    guard.release().expect("release");
                }
            });
        }
    });
    assert_eq!(entries.load(Ordering::SeqCst), 150);
    assert!(world.nodes_below("/app/lock").is_empty());
    world.check();
}

// Checks mutual exclusion among *live* holders while a chaos thread
// expires random participants' sessions: when a thread enters, every other
// thread inside must hold a session that the chaos thread already doomed
// (its lock was legitimately lost). Victims reconnect with a new session.
#[test]
fn lock_excludes_live_holders_while_sessions_expire() {
    let world = Arc::new(World::new());
    let mut rng = common::Rng::seeded(common::seed());
    const THREADS: usize = 4;
    // Per thread: the session id inside the critical section (0 = none).
    let inside: Arc<Vec<std::sync::atomic::AtomicI64>> =
        Arc::new((0..THREADS).map(|_| Default::default()).collect());
    let doomed = Arc::new(parking_lot::Mutex::new(
        std::collections::HashSet::<i64>::new(),
    ));
    let sessions: Arc<parking_lot::Mutex<Vec<Arc<TestSession>>>> =
        Arc::new(parking_lot::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let doomed_at_end = doomed.clone();
    let total = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for me in 0..THREADS {
            let (world, inside, doomed, sessions, done, total) = (
                world.clone(),
                inside.clone(),
                doomed.clone(),
                sessions.clone(),
                done.clone(),
                total.clone(),
            );
            scope.spawn(move || {
                let mut rounds = 0;
                // Until 60 rounds are done and the chaos thread struck 5
                // times (on a real server an expiry takes round trips,
                // during which the others keep taking the lock).
                let more = |rounds: usize| rounds < 60 || doomed.lock().len() < 5;
                while more(rounds) {
                    let session = world.session();
                    sessions.lock().push(session.clone());
                    let id = session.session_id();
                    let lock = Lock::new(session.clone(), "/chaos/lock").expect("lock");
                    while more(rounds) {
                        let Ok(guard) = lock.lock() else { break };
                        rounds += 1;
                        total.fetch_add(1, Ordering::SeqCst);
                        inside[me].store(id, Ordering::SeqCst);
                        {
                            let doomed = doomed.lock();
                            for (other, slot) in inside.iter().enumerate() {
                                let holder = slot.load(Ordering::SeqCst);
                                if other != me && holder != 0 {
                                    assert!(
                                        doomed.contains(&holder) || doomed.contains(&id),
                                        "two live holders: {holder:#x} and {id:#x}"
                                    );
                                }
                            }
                        }
                        std::thread::yield_now();
                        inside[me].store(0, Ordering::SeqCst);
                        if guard.release().is_err() {
                            break;
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // The chaos thread: expire a random live session every 12 rounds.
        scope.spawn(move || {
            let mut next = 12;
            while done.load(Ordering::SeqCst) < THREADS {
                if total.load(Ordering::SeqCst) < next {
                    std::thread::yield_now();
                    continue;
                }
                next += 12;
                let victim = {
                    let list = sessions.lock();
                    let live: Vec<_> = list.iter().filter(|s| !s.is_expired()).cloned().collect();
                    if live.is_empty() {
                        None
                    } else {
                        Some(live[rng.below(live.len() as u64) as usize].clone())
                    }
                };
                if let Some(victim) = victim {
                    doomed.lock().insert(victim.session_id());
                    let _ = victim.expire();
                }
            }
        });
    });
    assert!(
        doomed_at_end.lock().len() >= 5,
        "the chaos thread should have struck"
    );
    assert!(world.nodes_below("/chaos/lock").is_empty());
    world.check();
}

#[derive(Debug, Clone)]
enum LockOp {
    TryLock(usize),
    Release(usize),
    Expire(usize),
}

fn lock_op() -> impl Strategy<Value = LockOp> {
    prop_oneof![
        4 => (0..3usize).prop_map(LockOp::TryLock),
        3 => (0..3usize).prop_map(LockOp::Release),
        1 => (0..3usize).prop_map(LockOp::Expire),
    ]
}

fn leaked_lock(session: &Arc<TestSession>, i: usize) -> &'static Lock<TestSession> {
    // Guards borrow their lock; leaking the (small) lock lets the test
    // keep guards across session replacements.
    Box::leak(Box::new(
        Lock::new(session.clone(), "/p/lock")
            .expect("lock")
            .with_label(format!("p{i}")),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::common::cases(64), ..ProptestConfig::default() })]

    // Checks try_lock against a one-slot model over random sequences of
    // try-lock (re-entrant), release and session expiry by three
    // participants: try_lock succeeds exactly when the model says the lock
    // is free or already ours, the recorded holder label matches after
    // every step, and an expired holder frees the lock.
    #[test]
    fn try_lock_matches_model(ops in proptest::collection::vec(lock_op(), 1..40)) {
        let world = World::new();
        let mut sessions: Vec<Arc<TestSession>> = (0..3).map(|_| world.session()).collect();
        let mut locks: Vec<&'static Lock<TestSession>> =
            (0..3).map(|i| leaked_lock(&sessions[i], i)).collect();
        let mut guards: Vec<Vec<innkeeper::recipes::LockGuard<'static, TestSession>>> =
            (0..3).map(|_| Vec::new()).collect();
        let mut holder: Option<usize> = None;
        for op in ops {
            match op {
                LockOp::TryLock(i) => {
                    let expect = holder.is_none_or(|h| h == i);
                    let got = locks[i].try_lock().expect("try_lock");
                    prop_assert_eq!(got.is_some(), expect);
                    if let Some(g) = got {
                        guards[i].push(g);
                        holder = Some(i);
                    }
                }
                LockOp::Release(i) => {
                    if let Some(g) = guards[i].pop() {
                        g.release().expect("release");
                        if guards[i].is_empty() {
                            holder = None;
                        }
                    }
                }
                LockOp::Expire(i) => {
                    world.expire(&sessions[i]);
                    guards[i].clear();
                    sessions[i] = world.session();
                    locks[i] = leaked_lock(&sessions[i], i);
                    if holder == Some(i) {
                        holder = None;
                    }
                }
            }
            let seen = locks[0].holder().expect("holder");
            prop_assert_eq!(seen, holder.map(|h| format!("p{h}").into_bytes()));
        }
        guards.clear();
        prop_assert!(world.nodes_below("/p/lock").is_empty());
        world.check();
    }
}

// Checks the absence of a herd effect: one holder and eight waiters
// parked in `lock()`; each release must wake exactly one waiter (counted
// by the Probe's spy watcher, after a round trip that lets every event the
// release caused arrive), and the lock passes in arrival order.
#[test]
fn release_wakes_exactly_one_waiter() {
    let world = World::new();
    let holder = Lock::new(world.session(), "/herd/lock").expect("lock");
    let first = holder.lock().expect("lock");
    let (order_tx, order_rx) = crossbeam_channel::unbounded();
    let (go_tx, go_rx) = crossbeam_channel::unbounded::<()>();
    let probes: Vec<Arc<Probe>> = (0..8).map(|_| world.probe()).collect();
    std::thread::scope(|scope| {
        for (i, probe) in probes.iter().enumerate() {
            let lock = Lock::new(probe.clone(), "/herd/lock").expect("lock");
            let (order_tx, go_rx) = (order_tx.clone(), go_rx.clone());
            scope.spawn(move || {
                // Bounded waits, so a failed assertion cannot hang the scope.
                let guard = lock.lock_timeout(PROMPTLY).expect("lock").expect("in time");
                order_tx.send(i).expect("send");
                let _ = go_rx.recv_timeout(PROMPTLY);
                guard.release().expect("release");
            });
            // Park waiters one at a time so arrival order is known.
            probe.wait_parked();
        }
        for p in &probes {
            assert_eq!(p.wakeups(), 0);
        }
        first.release().expect("release");
        for expected in 0..8 {
            let got = order_rx.recv_timeout(PROMPTLY).expect("next holder");
            assert_eq!(got, expected, "the lock passes in arrival order");
            // The release returned before the next holder could see its
            // node gone, so all wake-ups it caused are counted now.
            let woken: usize = probes.iter().map(|p| p.wakeups()).sum();
            assert_eq!(woken, 1, "one release must wake exactly one waiter");
            go_tx.send(()).expect("go");
        }
    });
    assert!(world.nodes_below("/herd/lock").is_empty());
}

// Checks liveness when the holder's process hangs: its heartbeats stop,
// the manual clock passes the session timeout (expiry runs inside
// `advance`; remotely the session is expired), its ephemeral node goes,
// and the parked waiter takes the lock.
#[test]
fn hung_holder_loses_lock_to_waiter() {
    let world = World::new();
    let hung = world.session();
    let a = Lock::new(hung.clone(), "/live/lock").expect("lock");
    let guard = a.lock().expect("lock");
    let token_a = guard.fencing_token();
    let probe = world.probe();
    let b = Lock::new(probe.clone(), "/live/lock").expect("lock");
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let g = b.lock().expect("b takes over");
            g.fencing_token()
        });
        probe.wait_parked();
        world.hang_until_expired(&hung);
        let token_b = waiter.join().expect("waiter");
        assert!(token_b > token_a, "fencing tokens grow");
    });
    assert_eq!(
        guard.release().map_err(|e| e.kind()),
        Err(ErrorKind::SessionExpired)
    );
    assert!(world.nodes_below("/live/lock").is_empty());
}

// Checks re-entrance: the holding thread may lock again without a second
// node, stays holder until its last guard goes, and another thread of the
// same `Lock` value still has to wait.
#[test]
fn lock_is_reentrant_per_thread() {
    let world = World::new();
    let session = world.session();
    let lock = Lock::new(session.clone(), "/re/lock").expect("lock");
    let outer = lock.lock().expect("lock");
    let inner = lock.try_lock().expect("try").expect("re-entrant");
    assert_eq!(world.nodes_below("/re/lock").len(), 1);
    assert_eq!(inner.fencing_token(), outer.fencing_token());
    std::thread::scope(|scope| {
        let other = scope.spawn(|| lock.try_lock().expect("try").is_some());
        assert!(!other.join().expect("thread"), "another thread must wait");
    });
    drop(inner);
    assert!(lock.is_held_by_current_thread());
    drop(outer);
    assert!(!lock.is_held_by_current_thread());
    assert!(world.nodes_below("/re/lock").is_empty());
}

// Checks that a timed-out wait leaves no node and no watch behind, and
// that the lock's container directory (and its container parent) is
// reaped once unused.
#[test]
fn timed_out_waiter_cleans_up_and_dir_is_reaped() {
    let world = World::new();
    let a = Lock::new(world.session(), "/t/lock").expect("lock");
    let b = Lock::new(world.session(), "/t/lock").expect("lock");
    let guard = a.lock().expect("lock");
    let got = b.lock_timeout(Duration::from_millis(20)).expect("wait");
    assert!(got.is_none());
    assert_eq!(world.nodes_below("/t/lock").len(), 1);
    drop(guard);
    assert!(world.nodes_below("/t/lock").is_empty());
    assert!(world.reaped("/t/lock"), "the empty container is reaped");
    assert!(world.reaped("/t"), "and so is its container parent");
    // The lock works again after its directory was reaped.
    assert!(b.try_lock().expect("try").is_some());
}

// Checks the read-write lock under threads: readers may overlap each
// other but never a writer, and a writer is alone.
#[test]
fn rwlock_readers_share_writers_exclude() {
    let world = World::new();
    let readers = Arc::new(AtomicUsize::new(0));
    let writers = Arc::new(AtomicUsize::new(0));
    let max_readers = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for t in 0..6 {
            let lock = RwLock::new(world.session(), "/rw").expect("rwlock");
            let (readers, writers, max_readers) =
                (readers.clone(), writers.clone(), max_readers.clone());
            scope.spawn(move || {
                for round in 0..20 {
                    if (t + round) % 3 == 0 {
                        let _w = lock.write().expect("write");
                        assert_eq!(writers.fetch_add(1, Ordering::SeqCst), 0, "two writers");
                        assert_eq!(readers.load(Ordering::SeqCst), 0, "reader during write");
                        std::thread::yield_now();
                        writers.fetch_sub(1, Ordering::SeqCst);
                    } else {
                        let _r = lock.read().expect("read");
                        let now = readers.fetch_add(1, Ordering::SeqCst) + 1;
                        max_readers.fetch_max(now, Ordering::SeqCst);
                        assert_eq!(writers.load(Ordering::SeqCst), 0, "write during read");
                        std::thread::yield_now();
                        readers.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert!(world.nodes_below("/rw").is_empty());
    world.check();
}

// Checks the read-write lock's rules one step at a time: a queued writer
// blocks later readers (no writer starvation), a writer may downgrade to
// read, an upgrade is refused, and a writer whose session expires lets
// the readers behind it in.
#[test]
fn rwlock_order_downgrade_and_expiry() {
    let world = World::new();
    let a = RwLock::new(world.session(), "/rw2").expect("rwlock");
    let w_session = world.session();
    let w = RwLock::new(w_session.clone(), "/rw2").expect("rwlock");
    let c = RwLock::new(world.session(), "/rw2").expect("rwlock");
    let read_a = a.read().expect("read");
    std::thread::scope(|scope| {
        let probe = world.probe();
        let writer = RwLock::new(probe.clone(), "/rw2").expect("rwlock");
        let handle = scope.spawn(move || {
            let g = writer.write().expect("write");
            let r = writer.read().expect("downgrade while writing");
            assert!(!r.is_write());
            drop(r);
            drop(g);
            let r = writer.read().expect("read");
            let upgrade = writer.write().map(|_| ()).map_err(|e| e.kind());
            assert_eq!(upgrade, Err(ErrorKind::BadArguments));
            drop(r);
        });
        probe.wait_parked();
        assert!(
            c.try_read().expect("try").is_none(),
            "a queued writer blocks readers"
        );
        drop(read_a);
        handle.join().expect("writer");
    });
    let held = w.write().expect("write");
    let probe = world.probe();
    let reader = RwLock::new(probe.clone(), "/rw2").expect("rwlock");
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| reader.read().map(|_| ()));
        probe.wait_parked();
        world.hang_until_expired(&w_session);
        handle.join().expect("reader").expect("reader gets in");
    });
    drop(held);
    assert!(world.nodes_below("/rw2").is_empty());
}

// Checks the semaphore's bound under threads: with 3 leases and 8
// contenders never more than 3 are inside, and all 3 are used.
#[test]
fn semaphore_bounds_holders() {
    let world = World::new();
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let sem = Semaphore::new(world.session(), "/sem", 3).expect("semaphore");
            let (inside, peak) = (inside.clone(), peak.clone());
            scope.spawn(move || {
                for _ in 0..15 {
                    let lease = sem.acquire().expect("acquire");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 3, "{now} holders of 3 leases");
                    peak.fetch_max(now, Ordering::SeqCst);
                    for _ in 0..20 {
                        std::thread::yield_now();
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    lease.release().expect("release");
                }
            });
        }
    });
    assert!(peak.load(Ordering::SeqCst) >= 2);
    assert!(world.nodes_below("/sem").is_empty());
}

// Checks the semaphore's wake-ups and liveness: with 2 leases held and 4
// waiters parked, a release wakes at most two participants (the one
// admitted and the next in line), and a holder whose session expires
// hands its lease on.
#[test]
fn semaphore_release_wakes_few_and_expiry_frees_lease() {
    let world = World::new();
    let s1 = world.session();
    let h1 = Semaphore::new(s1.clone(), "/sem2", 2).expect("semaphore");
    let h2 = Semaphore::new(world.session(), "/sem2", 2).expect("semaphore");
    let l1 = h1.acquire().expect("lease");
    let l2 = h2.acquire().expect("lease");
    let probes: Vec<Arc<Probe>> = (0..4).map(|_| world.probe()).collect();
    let (got_tx, got_rx) = crossbeam_channel::unbounded();
    let (go_tx, go_rx) = crossbeam_channel::unbounded::<()>();
    std::thread::scope(|scope| {
        for (i, probe) in probes.iter().enumerate() {
            let sem = Semaphore::new(probe.clone(), "/sem2", 2).expect("semaphore");
            let (got_tx, go_rx) = (got_tx.clone(), go_rx.clone());
            scope.spawn(move || {
                let lease = sem.acquire().expect("acquire");
                got_tx.send(i).expect("send");
                go_rx.recv().expect("go");
                drop(lease);
            });
            probe.wait_parked();
        }
        drop(l2);
        assert_eq!(got_rx.recv_timeout(PROMPTLY).expect("admitted"), 0);
        // The admitted waiter marks its node, which wakes the next one.
        probes[1].wait_parked();
        let woken: usize = probes.iter().map(|p| p.wakeups()).sum();
        assert!(woken <= 2, "a release woke {woken} participants");
        world.hang_until_expired(&s1);
        assert_eq!(got_rx.recv_timeout(PROMPTLY).expect("admitted"), 1);
        for _ in 0..4 {
            go_tx.send(()).expect("go");
        }
        for _ in 2..4 {
            got_rx.recv_timeout(PROMPTLY).expect("admitted");
            go_tx.send(()).expect("go");
        }
    });
    drop(l1);
    assert!(world.nodes_below("/sem2").is_empty());
    assert_eq!(
        Semaphore::new(world.session(), "/sem2", 5)
            .map(|_| ())
            .map_err(|e| e.kind()),
        Err(ErrorKind::BadArguments),
        "participants must agree on the number of leases"
    );
}
