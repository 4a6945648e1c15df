//! Barrier and double barrier.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use innkeeper::recipes::{Barrier, DoubleBarrier};

use crate::common::{World, PROMPTLY};

// Checks the barrier: waiters parked on a raised barrier pass only once it
// is lowered; an ephemeral barrier falls by itself when its raiser's
// session expires (manual clock; remotely, expired), releasing a parked waiter.
#[test]
fn barrier_blocks_until_lowered_or_raiser_dies() {
    let world = World::new();
    let gate = Barrier::new(world.session(), "/gate").expect("barrier");
    assert!(gate.raise().expect("raise"));
    assert!(!gate.raise().expect("raise twice"));
    let probe = world.probe();
    let waiter = Barrier::new(probe.clone(), "/gate").expect("barrier");
    std::thread::scope(|scope| {
        let h = scope.spawn(|| waiter.wait_timeout(PROMPTLY));
        probe.wait_parked();
        assert!(gate.lower().expect("lower"));
        assert!(h.join().expect("thread").expect("wait"));
    });
    let raiser = world.session();
    let owned = Barrier::new(raiser.clone(), "/gate").expect("barrier");
    assert!(owned.raise_while_alive().expect("raise"));
    std::thread::scope(|scope| {
        let h = scope.spawn(|| waiter.wait_timeout(PROMPTLY));
        probe.wait_parked();
        world.hang_until_expired(&raiser);
        assert!(h.join().expect("thread").expect("wait"));
    });
    assert!(!world.exists("/gate"));
}

// Checks the double barrier's two properties over three rounds (one path
// per round) with four threads: nobody gets past `enter` before all four
// have arrived, and nobody gets past `leave` before all four have begun
// leaving. Every round leaves nothing behind.
#[test]
fn double_barrier_enters_together_and_leaves_together() {
    let world = World::new();
    const N: usize = 4;
    let arrived = Arc::new(AtomicUsize::new(0));
    let leaving = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for i in 0..N {
            let session = world.session();
            let (arrived, leaving) = (arrived.clone(), leaving.clone());
            scope.spawn(move || {
                for round in 1..=3 {
                    let b = DoubleBarrier::new(
                        session.clone(),
                        &format!("/round/{round}"),
                        N,
                        &format!("w{i}"),
                    )
                    .expect("barrier");
                    arrived.fetch_add(1, Ordering::SeqCst);
                    assert!(b.enter_timeout(PROMPTLY).expect("enter"));
                    assert!(arrived.load(Ordering::SeqCst) >= N * round, "entered early");
                    leaving.fetch_add(1, Ordering::SeqCst);
                    assert!(b.leave_timeout(PROMPTLY).expect("leave"));
                    assert!(leaving.load(Ordering::SeqCst) >= N * round, "left early");
                }
            });
        }
    });
    let left = world.nodes_below("/round");
    assert!(
        left.iter().all(|p| p.matches('/').count() == 2),
        "only round dirs: {left:?}"
    );
    for dir in &left {
        assert!(world.reaped(dir), "the round's container {dir} is reaped");
    }
}

// Checks the double barrier under failure: with one participant missing,
// `enter` times out and withdraws (nobody starts short-handed); a
// participant whose session expires inside the barrier does not block the
// others from leaving.
#[test]
fn double_barrier_under_failure() {
    let world = World::new();
    let a = DoubleBarrier::new(world.session(), "/df", 3, "a").expect("barrier");
    let b = DoubleBarrier::new(world.session(), "/df", 3, "b").expect("barrier");
    assert!(!a.enter_timeout(Duration::from_millis(20)).expect("enter"));
    assert!(
        world.nodes_below("/df").is_empty(),
        "a timed-out enter withdraws"
    );
    let doomed = world.session();
    let c = DoubleBarrier::new(doomed.clone(), "/df", 3, "c").expect("barrier");
    std::thread::scope(|scope| {
        let ha = scope.spawn(|| a.enter_timeout(PROMPTLY));
        let hb = scope.spawn(|| b.enter_timeout(PROMPTLY));
        assert!(c.enter_timeout(PROMPTLY).expect("enter"));
        assert!(ha.join().expect("a").expect("a enters"));
        assert!(hb.join().expect("b").expect("b enters"));
    });
    assert_eq!(b.participants().expect("list").len(), 3);
    world.hang_until_expired(&doomed);
    std::thread::scope(|scope| {
        let ha = scope.spawn(|| a.leave_timeout(PROMPTLY));
        assert!(b.leave_timeout(PROMPTLY).expect("leave"));
        assert!(ha.join().expect("a").expect("a leaves"));
    });
    assert!(world.nodes_below("/df").is_empty());
}
