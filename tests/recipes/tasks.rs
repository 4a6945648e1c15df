//! Task coordinator.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use innkeeper::recipes::{TaskBoard, TaskEvent, TreeCache, Worker};
use innkeeper::Coordinator;
use parking_lot::Mutex;

use crate::common::{self, TestSession, World, PROMPTLY};

type Events = Receiver<(String, TaskEvent)>;

/// A worker and the session it runs on.
type Slot = (Arc<TestSession>, Worker<TestSession>);

fn worker(
    world: &World,
    id: &str,
    session: Arc<TestSession>,
    log: &crossbeam_channel::Sender<(String, TaskEvent)>,
) -> Worker<TestSession> {
    let (log, name) = (log.clone(), id.to_string());
    let _ = world;
    Worker::start(session, "/jobs", id, move |e| {
        let _ = log.send((name.clone(), e.clone()));
    })
    .expect("worker")
}

/// Waits until every task is owned by a live worker and the load is even
/// (max − min ≤ 1 over `workers`); returns task → worker.
fn settled(
    board: &TaskBoard<TestSession>,
    cache: &TreeCache<TestSession>,
    workers: &[&str],
) -> BTreeMap<String, String> {
    let deadline = std::time::Instant::now() + PROMPTLY;
    loop {
        let view = board.assignments().expect("assignments");
        let mut load: BTreeMap<&str, usize> = workers.iter().map(|w| (*w, 0)).collect();
        let mut all_owned = true;
        for owner in view.values() {
            match owner.as_deref().and_then(|o| load.get_mut(o)) {
                Some(n) => *n += 1,
                None => all_owned = false,
            }
        }
        let (min, max) = (
            load.values().min().copied().unwrap_or(0),
            load.values().max().copied().unwrap_or(0),
        );
        if all_owned && max - min <= 1 {
            return view
                .into_iter()
                .map(|(t, w)| (t, w.unwrap_or_default()))
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: {view:?}"
        );
        // Wake on the next change of any task node (no sleeping).
        let before: Vec<_> = cache.entries();
        cache.wait_for(std::time::Duration::from_millis(50), |now| {
            now != before.as_slice()
        });
    }
}

// Checks the whole story: six tasks spread 2/2/2 over three workers;
// worker w2's session expires and the survivors take over exactly its
// tasks (events name w2 as the previous owner), ending 3/3; w2 comes back
// with a new session and gets its share again (2/2/2); every worker's own
// view agrees with the keeper and no two views overlap.
#[test]
fn tasks_fail_over_and_rebalance() {
    let world = World::new();
    let board = TaskBoard::new(world.session(), "/jobs").expect("board");
    for i in 0..6 {
        board
            .submit(&format!("task-{i}"), format!("payload {i}").as_bytes())
            .expect("submit");
    }
    let cache = TreeCache::new(world.session(), "/jobs").expect("cache");
    let (log, events): (_, Events) = crossbeam_channel::unbounded();
    let w1 = worker(&world, "w1", world.session(), &log);
    let w2_session = world.session();
    let w2 = worker(&world, "w2", w2_session.clone(), &log);
    let w3 = worker(&world, "w3", world.session(), &log);
    let first = settled(&board, &cache, &["w1", "w2", "w3"]);
    let of_w2: BTreeSet<String> = first
        .iter()
        .filter(|(_, w)| *w == "w2")
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(of_w2.len(), 2);
    events.try_iter().count();

    world.hang_until_expired(&w2_session);
    let second = settled(&board, &cache, &["w1", "w3"]);
    assert!(second.values().all(|w| w == "w1" || w == "w3"));
    let mut taken_over = BTreeSet::new();
    let mut stopped = false;
    let deadline = std::time::Instant::now() + PROMPTLY;
    while (taken_over.len() < 2 || !stopped) && std::time::Instant::now() < deadline {
        match events.recv_timeout(PROMPTLY) {
            Ok((
                _,
                TaskEvent::Claimed {
                    task,
                    from: Some(from),
                    ..
                },
            )) => {
                assert_eq!(from, "w2");
                taken_over.insert(task);
            }
            Ok((who, TaskEvent::Stopped(_))) => {
                assert_eq!(who, "w2");
                stopped = true;
            }
            _ => {}
        }
    }
    assert_eq!(
        taken_over, of_w2,
        "the survivors took over exactly w2's tasks"
    );
    assert!(
        w2.owned().is_empty(),
        "a dead worker believes it owns nothing"
    );
    drop(w2);

    let w2 = worker(&world, "w2", world.session(), &log);
    let third = settled(&board, &cache, &["w1", "w2", "w3"]);
    for w in [&w1, &w2, &w3] {
        let mine: BTreeSet<String> = third
            .iter()
            .filter(|(_, o)| *o == w.id())
            .map(|(t, _)| t.clone())
            .collect();
        // The worker's own view catches up with the keeper's promptly.
        let deadline = std::time::Instant::now() + PROMPTLY;
        while w.owned() != mine {
            assert!(
                std::time::Instant::now() < deadline,
                "{} sees {:?}, keeper says {mine:?}",
                w.id(),
                w.owned()
            );
            std::thread::yield_now();
        }
    }
    assert!(w1
        .complete(w1.owned().iter().next().expect("a task"))
        .expect("complete"));
    assert!(!w1.complete("task-that-is-not-mine").expect("complete"));
    drop((w1, w2, w3));
    let left = board.assignments().expect("assignments");
    assert_eq!(left.len(), 5);
    assert!(
        left.values().all(Option::is_none),
        "stopped workers hand their tasks back"
    );
}

// Checks the safety property under churn: five workers on twelve tasks
// while a seeded schedule kills (expires) and restarts workers twenty
// times; a checker thread keeps comparing the workers' own views: no task
// may be believed owned by two workers whose sessions are live. After
// each kill the board must settle with every task owned and load even.
#[test]
fn no_task_has_two_live_owners_under_churn() {
    let world = World::new();
    let board = TaskBoard::new(world.session(), "/jobs").expect("board");
    for i in 0..12 {
        board.submit(&format!("t{i:02}"), b"").expect("submit");
    }
    let cache = TreeCache::new(world.session(), "/jobs").expect("cache");
    let (log, _events): (_, Events) = crossbeam_channel::unbounded();
    let ids = ["a", "b", "c", "d", "e"];
    let slots: Arc<Mutex<Vec<Slot>>> = Arc::new(Mutex::new(
        ids.iter()
            .map(|id| {
                let s = world.session();
                (s.clone(), worker(&world, id, s, &log))
            })
            .collect(),
    ));
    let doomed = Arc::new(Mutex::new(HashSet::<i64>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut rng = common::Rng::seeded(common::seed());
    std::thread::scope(|scope| {
        let (slots_c, doomed_c, stop_c) = (slots.clone(), doomed.clone(), stop.clone());
        scope.spawn(move || {
            while !stop_c.load(std::sync::atomic::Ordering::SeqCst) {
                let slots = slots_c.lock();
                let doomed = doomed_c.lock();
                let mut seen: BTreeMap<String, &str> = BTreeMap::new();
                for (session, w) in slots.iter() {
                    if doomed.contains(&session.session_id()) {
                        continue;
                    }
                    for t in w.owned() {
                        if let Some(other) = seen.insert(t.clone(), w.id()) {
                            panic!("task {t} owned by live workers {other} and {}", w.id());
                        }
                    }
                }
                drop((slots, doomed));
                std::thread::yield_now();
            }
        });
        // Stop the checker even if an assertion below fails.
        struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _stop_checker = StopOnDrop(stop.clone());
        for _ in 0..20 {
            let victim = rng.below(ids.len() as u64) as usize;
            let session = slots.lock()[victim].0.clone();
            doomed.lock().insert(session.session_id());
            world.expire(&session);
            let fresh = world.session();
            let w = worker(&world, ids[victim], fresh.clone(), &log);
            let old = std::mem::replace(&mut slots.lock()[victim], (fresh, w));
            drop(old);
            settled(&board, &cache, &ids);
        }
    });
    world.check();
}
