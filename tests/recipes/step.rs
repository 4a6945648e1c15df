//! Step barrier for named participants.

use std::sync::Arc;
use std::time::Duration;

use innkeeper::recipes::StepBarrier;
use proptest::prelude::*;

use crate::common::{TestSession, World, PROMPTLY};

const CREW: [&str; 3] = ["A", "B", "C"];

fn barrier(world: &World, session: Arc<TestSession>, me: &str) -> StepBarrier<TestSession> {
    let _ = world;
    StepBarrier::new(session, "/job", me, &CREW).expect("barrier")
}

// Checks the happy path with threads: each participant waits for step 1
// and posts ready; nobody starts before the last ready, all three see the
// same start point; step 2 runs the same way and deletes step 1's log;
// destroy leaves nothing.
#[test]
fn step_starts_when_all_ready_and_everyone_agrees() {
    let world = World::new();
    let barriers: Vec<StepBarrier<TestSession>> = CREW
        .iter()
        .map(|me| barrier(&world, world.session(), me))
        .collect();
    for step in 1..=2u64 {
        let starts: Vec<u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = barriers
                .iter()
                .map(|b| {
                    scope.spawn(move || {
                        let posted = b.ready(step).expect("post");
                        let start = b
                            .wait_start(step, PROMPTLY)
                            .expect("wait")
                            .expect("started");
                        assert!(start.at >= posted, "started before my ready");
                        start.at
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(
            starts.windows(2).all(|w| w[0] == w[1]),
            "everyone agrees: {starts:?}"
        );
    }
    assert_eq!(
        world.nodes_below("/job").len(),
        1 + 3,
        "only step 2's log is left"
    );
    barriers[0].destroy().expect("destroy");
    assert!(!world.exists("/job"));
}

// Checks failure handling: a participant that dies after posting ready
// still counts; one that never posts blocks the step (the others time
// out), until a replacement with its name posts for it.
#[test]
fn dead_participants_and_replacements() {
    let world = World::new();
    let a = barrier(&world, world.session(), "A");
    let doomed = world.session();
    let b = barrier(&world, doomed.clone(), "B");
    b.ready(1).expect("post");
    world.hang_until_expired(&doomed);
    a.ready(1).expect("post");
    assert!(
        a.wait_start(1, Duration::from_millis(20))
            .expect("wait")
            .is_none(),
        "C never came"
    );
    let c = barrier(&world, world.session(), "C");
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| a.wait_start(1, PROMPTLY));
        c.ready(1).expect("post");
        let start = waiting
            .join()
            .expect("thread")
            .expect("wait")
            .expect("started");
        assert_eq!(start.statuses.keys().cloned().collect::<Vec<_>>(), CREW);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::common::cases(64), ..ProptestConfig::default() })]

    // Checks agreement under conflicting updates: a random sequence of
    // statuses (ready / not-ready / unknown names) is posted; after every
    // post, every participant's view is read. Once any observer sees the
    // step started, every later observation reports the same start point,
    // and the point is the first where all three were ready by the model.
    #[test]
    fn start_point_is_stable_and_matches_the_model(
        posts in proptest::collection::vec((0..4usize, prop::bool::weighted(0.6)), 1..25)
    ) {
        let world = World::new();
        let posters: Vec<StepBarrier<TestSession>> = (0..3).map(|i| barrier(&world, world.session(), CREW[i])).collect();
        let intruder = StepBarrier::new(world.session(), "/job", "X", &["X"]).expect("barrier");
        let mut model: [Option<bool>; 3] = [None; 3];
        let mut model_start: Option<u64> = None;
        let mut seen_start: Option<u64> = None;
        for (who, ready) in posts {
            let status = if ready { "ready" } else { "not-ready" };
            let seq = if who == 3 { intruder.post(1, status) } else { posters[who].post(1, status) }.expect("post");
            if who < 3 && model_start.is_none() {
                model[who] = Some(ready);
                if model.iter().all(|s| *s == Some(true)) {
                    model_start = Some(seq);
                }
            }
            for p in &posters {
                let observed = p.started(1).expect("read").map(|s| s.at);
                prop_assert_eq!(observed, model_start);
                if let Some(s) = seen_start {
                    prop_assert_eq!(observed, Some(s), "the start point moved");
                }
                seen_start = observed.or(seen_start);
            }
        }
    }
}
