//! Atomic counter and shared value.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use innkeeper::recipes::{AtomicCounter, SharedValue};
use innkeeper::ErrorKind;

use crate::common::{self, World, PROMPTLY};

// Checks that no update is lost: six threads add random deltas while a
// schedule expires their sessions now and then; the counter must equal
// the sum of the adds that returned Ok (an Err means the add did not
// happen).
#[test]
fn counter_loses_no_update_under_contention_and_expiry() {
    let world = Arc::new(World::new());
    let acknowledged = Arc::new(AtomicI64::new(0));
    let seed = common::seed();
    std::thread::scope(|scope| {
        for t in 0..6u64 {
            let (world, acknowledged) = (world.clone(), acknowledged.clone());
            scope.spawn(move || {
                let mut rng = common::Rng::seeded(seed + t);
                let mut session = world.session();
                let mut counter = AtomicCounter::new(session.clone(), "/n/c").expect("counter");
                for round in 0..60 {
                    if round % 17 == 16 {
                        let _ = session.expire();
                    }
                    let delta = rng.below(10) as i64 - 3;
                    match counter.add(delta) {
                        Ok(_) => {
                            acknowledged.fetch_add(delta, Ordering::SeqCst);
                        }
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::SessionExpired);
                            session = world.session();
                            counter = AtomicCounter::new(session.clone(), "/n/c").expect("counter");
                        }
                    }
                }
            });
        }
    });
    let counter = AtomicCounter::new(world.session(), "/n/c").expect("counter");
    assert_eq!(
        counter.get().expect("get"),
        acknowledged.load(Ordering::SeqCst)
    );
    assert!(counter
        .compare_and_set(counter.get().expect("get"), 7)
        .expect("cas"));
    assert!(!counter.compare_and_set(8, 9).expect("cas"));
    assert_eq!(counter.decrement().expect("dec"), 6);
}

// Checks compare-and-set between two writers reading the same version:
// exactly one wins; a waiter parked in wait_change sees the winner's value.
#[test]
fn shared_value_cas_has_one_winner_and_wakes_waiters() {
    let world = World::new();
    let a = SharedValue::new(world.session(), "/n/v", b"v0").expect("value");
    let b = SharedValue::new(world.session(), "/n/v", b"ignored").expect("value");
    assert_eq!(
        b.get().expect("get").data,
        b"v0",
        "an existing value is kept"
    );
    let seen = a.get().expect("get");
    let probe = world.probe();
    let watcher = SharedValue::new(probe.clone(), "/n/v", b"").expect("value");
    std::thread::scope(|scope| {
        let h = scope.spawn(|| watcher.wait_change(seen.version, PROMPTLY));
        probe.wait_parked();
        let wins = [
            a.compare_and_set(seen.version, b"from-a")
                .expect("cas")
                .is_some(),
            b.compare_and_set(seen.version, b"from-b")
                .expect("cas")
                .is_some(),
        ];
        assert_eq!(wins, [true, false]);
        let changed = h.join().expect("thread").expect("wait").expect("changed");
        assert_eq!(changed.data, b"from-a");
    });
    let appended = b.update(|old| [old, b"+b"].concat()).expect("update");
    assert_eq!(appended.data, b"from-a+b");
    assert_eq!(
        a.wait_change(appended.version, Duration::from_millis(10))
            .expect("wait"),
        None
    );
}
