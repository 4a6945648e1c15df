//! Leader latch and leader selector.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use innkeeper::recipes::{LeaderLatch, LeaderSelector};
use innkeeper::ErrorKind;
use proptest::prelude::*;

use crate::common::{Probe, TestSession, World, PROMPTLY};

// Checks hand-over by expiry: five participants; the leader's process
// hangs and the manual clock expires it (remotely: it is expired); exactly the next in line becomes
// leader (the others stay followers), woken alone (no herd), four times
// over. Closing the last leaves no node.
#[test]
fn latch_fails_over_in_line_order_without_herd() {
    let world = World::new();
    let sessions: Vec<Arc<TestSession>> = (0..5).map(|_| world.session()).collect();
    let probes: Vec<Arc<Probe>> = sessions
        .iter()
        .map(|s| Arc::new(Probe::new(s.clone())))
        .collect();
    let latches: Vec<LeaderLatch<Probe>> = probes
        .iter()
        .enumerate()
        .map(|(i, p)| LeaderLatch::start(p.clone(), "/elect", &format!("p{i}")).expect("latch"))
        .collect();
    assert!(latches[0].is_leader());
    for l in &latches[1..] {
        assert!(!l.is_leader());
    }
    for p in &probes {
        p.wakeups();
    }
    for leader in 0..4 {
        world.hang_until_expired(&sessions[leader]);
        assert!(
            !latches[leader].is_leader(),
            "an expired leader stops leading"
        );
        let next = leader + 1;
        assert!(latches[next].wait_leadership(PROMPTLY).expect("wait"));
        let woken: usize = probes[next + 1..].iter().map(|p| p.wakeups()).sum();
        assert_eq!(woken, 0, "only the next in line is woken");
        for (i, l) in latches.iter().enumerate() {
            assert_eq!(l.is_leader(), i == next, "participant {i}");
        }
        assert_eq!(
            latches[next].leader().expect("leader").as_deref(),
            Some(&*format!("p{next}"))
        );
        assert_eq!(
            latches[leader]
                .wait_leadership(Duration::ZERO)
                .map_err(|e| e.kind()),
            Err(ErrorKind::SessionExpired)
        );
    }
    latches[4].close().expect("close");
    assert!(
        world.reaped("/elect"),
        "nothing left, the container is reaped"
    );
}

#[derive(Debug, Clone)]
enum ElectOp {
    Join(usize),
    Close(usize),
    Expire(usize),
}

fn elect_op() -> impl Strategy<Value = ElectOp> {
    prop_oneof![
        3 => (0..4usize).prop_map(ElectOp::Join),
        2 => (0..4usize).prop_map(ElectOp::Close),
        2 => (0..4usize).prop_map(ElectOp::Expire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::common::cases(48), ..ProptestConfig::default() })]

    // Checks the latch against a model over random joins, closes and
    // session expiries of four participants: after each step the model's
    // leader (the earliest live joiner) gains leadership promptly, and no
    // other participant claims it, ever.
    #[test]
    fn latch_has_one_leader_the_earliest_live_joiner(ops in proptest::collection::vec(elect_op(), 1..30)) {
        let world = World::new();
        let mut sessions: Vec<Arc<TestSession>> = (0..4).map(|_| world.session()).collect();
        let mut latches: Vec<Option<LeaderLatch<TestSession>>> = (0..4).map(|_| None).collect();
        // Join order of the participants in the election.
        let mut line: Vec<usize> = Vec::new();
        for op in ops {
            match op {
                ElectOp::Join(i) => {
                    if latches[i].is_none() {
                        latches[i] = Some(LeaderLatch::start(sessions[i].clone(), "/pe", &format!("p{i}")).expect("join"));
                        line.push(i);
                    }
                }
                ElectOp::Close(i) => {
                    if let Some(l) = latches[i].take() {
                        l.close().expect("close");
                        line.retain(|&x| x != i);
                    }
                }
                ElectOp::Expire(i) => {
                    world.expire(&sessions[i]);
                    sessions[i] = world.session();
                    if let Some(l) = latches[i].take() {
                        prop_assert!(!l.is_leader());
                    }
                    line.retain(|&x| x != i);
                }
            }
            if let Some(&leader) = line.first() {
                let latch = latches[leader].as_ref().expect("latch");
                prop_assert!(latch.wait_leadership(PROMPTLY).expect("wait"));
            }
            for (i, l) in latches.iter().enumerate() {
                if let Some(l) = l {
                    prop_assert_eq!(l.is_leader(), line.first() == Some(&i));
                }
            }
        }
        latches.clear();
        prop_assert!(world.nodes_below("/pe").is_empty());
    }
}

// Checks the selector's rotation: three selectors that requeue each lead
// in turn, never two terms at once, until closed; then nothing is left.
#[test]
fn selector_rotates_one_term_at_a_time() {
    let world = World::new();
    let inside = Arc::new(AtomicUsize::new(0));
    let terms = Arc::new(AtomicUsize::new(0));
    let selectors: Vec<LeaderSelector> = (0..3)
        .map(|i| {
            let (inside, terms) = (inside.clone(), terms.clone());
            LeaderSelector::builder(world.session(), "/sel")
                .id(&format!("s{i}"))
                .start(move |_term| {
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two leaders");
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    terms.fetch_add(1, Ordering::SeqCst);
                })
                .expect("selector")
        })
        .collect();
    let deadline = std::time::Instant::now() + PROMPTLY;
    while selectors.iter().any(|s| s.terms() < 3) {
        assert!(std::time::Instant::now() < deadline, "every selector leads");
        std::thread::yield_now();
    }
    for s in &selectors {
        s.close().expect("close");
        assert!(s.failure().is_none());
    }
    assert!(world.nodes_below("/sel").is_empty());
}

// Checks selector failover on expiry: the leader's closure waits on
// `wait_lost`; when its session is expired (by the manual clock, or
// remotely through a second handle), the
// closure learns the term is over and the other selector's closure runs.
#[test]
fn selector_hands_over_when_leader_session_expires() {
    let world = World::new();
    let (led_tx, led_rx) = crossbeam_channel::unbounded();
    let (lost_tx, lost_rx) = crossbeam_channel::unbounded();
    let make = |name: &'static str, session: Arc<TestSession>| {
        let (led_tx, lost_tx) = (led_tx.clone(), lost_tx.clone());
        LeaderSelector::builder(session, "/sel2")
            .id(name)
            .start(move |term| {
                led_tx.send(term.id().to_string()).expect("send");
                while !term.wait_lost(PROMPTLY) {}
                lost_tx.send(term.id().to_string()).expect("send");
            })
            .expect("selector")
    };
    let first_session = world.session();
    let first = make("first", first_session.clone());
    assert_eq!(led_rx.recv_timeout(PROMPTLY).expect("leader"), "first");
    let second = make("second", world.session());
    world.hang_until_expired(&first_session);
    assert_eq!(lost_rx.recv_timeout(PROMPTLY).expect("lost"), "first");
    assert_eq!(led_rx.recv_timeout(PROMPTLY).expect("leader"), "second");
    first.close().expect("close");
    assert_eq!(
        first.failure().map(|e| e.kind()),
        Some(ErrorKind::SessionExpired)
    );
    second.close().expect("close");
    assert_eq!(lost_rx.recv_timeout(PROMPTLY).expect("lost"), "second");
    assert!(world.nodes_below("/sel2").is_empty());
}
