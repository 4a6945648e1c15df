//! FIFO and priority queues.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use innkeeper::recipes::{PriorityQueue, Queue};
use innkeeper::ErrorKind;
use parking_lot::Mutex;

use crate::common::{self, Probe, TestSession, World, PROMPTLY};

// Checks FIFO and priority order with one consumer, and that drained
// queues leave nothing behind once the reaper has run.
#[test]
fn queues_deliver_in_order() {
    let world = World::new();
    let q = Queue::new(world.session(), "/q/fifo").expect("queue");
    for i in 0..5 {
        q.put(format!("job-{i}").as_bytes()).expect("put");
    }
    assert_eq!(q.len().expect("len"), 5);
    for i in 0..5 {
        assert_eq!(q.take().expect("take"), format!("job-{i}").into_bytes());
    }
    assert_eq!(q.try_take().expect("try"), None);
    assert_eq!(
        q.take_timeout(Duration::from_millis(10)).expect("take"),
        None
    );
    let p = PriorityQueue::new(world.session(), "/q/prio").expect("queue");
    for (data, prio) in [
        ("low-1", 9),
        ("high-1", 1),
        ("low-2", 9),
        ("high-2", 1),
        ("mid", 5),
    ] {
        p.put(data.as_bytes(), prio).expect("put");
    }
    let order: Vec<String> = (0..5)
        .map(|_| String::from_utf8(p.take().expect("take")).expect("utf8"))
        .collect();
    assert_eq!(order, ["high-1", "high-2", "mid", "low-1", "low-2"]);
    assert_eq!(
        p.put(b"x", 100_000).map_err(|e| e.kind()),
        Err(ErrorKind::BadArguments)
    );
    assert!(world.reaped("/q"), "{:?}", world.nodes_below("/q"));
}

// Checks exactly-once delivery under concurrency and consumer death: two
// producers put 60 items each; four consumer threads take() while a chaos
// schedule expires a consumer's session every ninth take (the consumer
// reconnects). Every item must be received exactly once.
#[test]
fn every_item_taken_exactly_once_despite_dying_consumers() {
    let world = Arc::new(World::new());
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut rng = common::Rng::seeded(common::seed());
    let kill_every: Vec<u64> = (0..4).map(|_| 5 + rng.below(8)).collect();
    std::thread::scope(|scope| {
        for p in 0..2 {
            let q = Queue::new(world.session(), "/q/load").expect("queue");
            scope.spawn(move || {
                for i in 0..60 {
                    q.put(format!("p{p}-{i}").as_bytes()).expect("put");
                }
            });
        }
        for (c, kill_every) in kill_every.into_iter().enumerate() {
            let (world, received) = (world.clone(), received.clone());
            scope.spawn(move || {
                let mut takes = 0;
                let mut session = world.session();
                let mut q = Queue::new(session.clone(), "/q/load").expect("queue");
                loop {
                    takes += 1;
                    if takes % kill_every == 0 {
                        let _ = session.expire();
                    }
                    match q.take_timeout(Duration::from_millis(50)) {
                        Ok(Some(item)) => {
                            received.lock().push(String::from_utf8(item).expect("utf8"))
                        }
                        Ok(None) => {
                            if received.lock().len() >= 120 {
                                return;
                            }
                        }
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::SessionExpired, "consumer {c}");
                            session = world.session();
                            q = Queue::new(session.clone(), "/q/load").expect("queue");
                        }
                    }
                }
            });
        }
    });
    let got = received.lock().clone();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an item was delivered twice");
    assert_eq!(got.len(), 120, "an item was lost");
    world.check();
}

// Checks "none lost, none twice" at every point of a take: for each call
// index k of the take protocol, a consumer's session is expired just
// before call k; a second consumer then drains the queue. The item must be
// delivered exactly once overall, whichever side got it.
#[test]
fn consumer_death_at_every_step_of_a_take() {
    // How many calls one take makes, measured on a clean run.
    let calls_per_take = {
        let world = World::new();
        let probe = world.probe();
        let q = Queue::new(probe.clone(), "/q/step").expect("queue");
        Queue::new(world.session(), "/q/step")
            .expect("queue")
            .put(b"x")
            .expect("put");
        let before = probe.calls();
        q.take().expect("take");
        probe.calls() - before
    };
    assert!(calls_per_take >= 3);
    for k in 0..calls_per_take {
        let world = World::new();
        let producer = Queue::new(world.session(), "/q/step").expect("queue");
        producer.put(b"precious").expect("put");
        let victim: Arc<TestSession> = world.session();
        let probe = Arc::new(Probe::new(victim.clone()));
        let q = Queue::new(probe.clone(), "/q/step").expect("queue");
        let start = probe.calls();
        let doomed = victim.clone();
        probe.before_call(start + k, move || {
            let _ = doomed.expire();
        });
        let first = q.take_timeout(Duration::ZERO);
        let first = match first {
            Ok(got) => got,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::SessionExpired, "step {k}");
                None
            }
        };
        let rescuer = Queue::new(world.session(), "/q/step").expect("queue");
        let second = rescuer.take_timeout(Duration::ZERO).expect("drain");
        let delivered: Vec<Vec<u8>> = first.into_iter().chain(second).collect();
        assert_eq!(
            delivered,
            vec![b"precious".to_vec()],
            "death before call {k}"
        );
        world.check();
    }
}

// Checks at-least-once processing with claims: a consumer claims an item
// and dies before completing; the item goes back and a second consumer,
// parked waiting, claims it; the dead consumer's completion fails.
#[test]
fn claim_of_dead_consumer_is_redelivered() {
    let world = World::new();
    let producer = Queue::new(world.session(), "/q/claims").expect("queue");
    producer.put(b"task").expect("put");
    let dying = world.session();
    let a = Queue::new(dying.clone(), "/q/claims").expect("queue");
    let claim = a.claim_timeout(PROMPTLY).expect("claim").expect("item");
    assert_eq!(claim.data(), b"task");
    let probe = world.probe();
    let b = Queue::new(probe.clone(), "/q/claims").expect("queue");
    std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let c = b
                .claim_timeout(PROMPTLY)
                .expect("claim")
                .expect("redelivered");
            c.complete().expect("complete")
        });
        probe.wait_parked();
        world.hang_until_expired(&dying);
        assert_eq!(h.join().expect("thread"), b"task");
    });
    assert_eq!(
        claim.complete().map_err(|e| e.kind()),
        Err(ErrorKind::SessionExpired)
    );
    assert!(producer.is_empty().expect("empty"));
}
