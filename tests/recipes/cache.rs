//! Node cache and tree / children cache.

use std::collections::BTreeMap;
use std::sync::Arc;

use innkeeper::recipes::{CacheEvent, NodeCache, TreeCache};
use innkeeper::{Coordinator, CreateMode};
use proptest::prelude::*;

use crate::common::{TestSession, World, PROMPTLY};

fn truth(session: &TestSession, root: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        if let Ok((data, _)) = session.get_data(&p) {
            for c in session.get_children(&p).unwrap_or_default() {
                stack.push(innkeeper::path::join(&p, &c));
            }
            out.insert(p, data);
        }
    }
    out
}

// Checks the node cache through a node's life: missing, created, updated
// twice, deleted, created again; the cache converges after each step and
// its listener sees added / updated / removed in that order.
#[test]
fn node_cache_follows_one_node() {
    let world = World::new();
    let admin = world.session();
    let cache = NodeCache::new(world.session(), "/cfg/app").expect("cache");
    let (tx, rx) = crossbeam_channel::unbounded();
    cache.on_change(move |e| {
        let _ = tx.send(e.clone());
    });
    assert_eq!(cache.current(), None);
    admin.create_all("/cfg").expect("parent");
    admin
        .create("/cfg/app", b"v1", CreateMode::Persistent)
        .expect("create");
    assert!(cache.wait_for(PROMPTLY, |n| n.is_some_and(|n| n.data == b"v1")));
    admin.set_data("/cfg/app", b"v2", -1).expect("set");
    assert!(cache.wait_for(PROMPTLY, |n| n.is_some_and(|n| n.data == b"v2")));
    admin.delete("/cfg/app", -1).expect("delete");
    assert!(cache.wait_for(PROMPTLY, |n| n.is_none()));
    admin
        .create("/cfg/app", b"v3", CreateMode::Persistent)
        .expect("create");
    assert!(cache.wait_for(PROMPTLY, |n| n.is_some_and(|n| n.data == b"v3")));
    // Listeners run on the cache's thread, maybe just after `wait_for`
    // saw the state: wait for the four events.
    let kinds: Vec<&str> = (0..4)
        .map(|_| rx.recv_timeout(PROMPTLY).expect("event"))
        .map(|e| match e {
            CacheEvent::Added(_) => "added",
            CacheEvent::Updated(_) => "updated",
            CacheEvent::Removed(_) => "removed",
            CacheEvent::SessionLost => "lost",
        })
        .collect();
    assert_eq!(kinds, ["added", "updated", "removed", "added"]);
}

// Checks that a cache whose session expires says so and stops.
#[test]
fn cache_reports_session_loss() {
    let world = World::new();
    let session = world.session();
    let cache = TreeCache::new(session.clone(), "/lost").expect("cache");
    let (tx, rx) = crossbeam_channel::unbounded();
    cache.on_change(move |e| {
        let _ = tx.send(e.clone());
    });
    world.hang_until_expired(&session);
    assert_eq!(
        rx.recv_timeout(PROMPTLY).expect("event"),
        CacheEvent::SessionLost
    );
    assert!(cache.failure().is_some());
}

// Checks that a children cache covers exactly the children: not the
// parent, not the grandchildren.
#[test]
fn children_cache_covers_one_level() {
    let world = World::new();
    let admin = world.session();
    admin.create_all("/svc/a/deep").expect("tree");
    let cache = TreeCache::children(world.session(), "/svc").expect("cache");
    admin
        .create("/svc/b", b"B", CreateMode::Persistent)
        .expect("create");
    admin
        .create("/svc/a/deep/deeper", b"", CreateMode::Persistent)
        .expect("create");
    assert!(cache.wait_for(PROMPTLY, |n| n.len() == 2));
    let paths: Vec<String> = cache.entries().into_iter().map(|n| n.path).collect();
    assert_eq!(paths, ["/svc/a", "/svc/b"]);
}

#[derive(Debug, Clone)]
enum TreeOp {
    Create(usize, u8),
    Set(usize, u8),
    Delete(usize),
}

const PATHS: [&str; 5] = ["/t/a", "/t/b", "/t/a/x", "/t/a/y", "/t/b/z"];

fn tree_op() -> impl Strategy<Value = TreeOp> {
    prop_oneof![
        (0..PATHS.len(), any::<u8>()).prop_map(|(p, v)| TreeOp::Create(p, v)),
        (0..PATHS.len(), any::<u8>()).prop_map(|(p, v)| TreeOp::Set(p, v)),
        (0..PATHS.len()).prop_map(TreeOp::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::common::cases(48), ..ProptestConfig::default() })]

    // Checks the tree cache against the tree over random creates, sets and
    // deletes on a five-node space (failed ops included): the cache
    // converges to the tree, and replaying its event stream on the
    // initial snapshot gives the same final state (no event lost, none
    // out of order).
    #[test]
    fn tree_cache_converges_and_events_replay(ops in proptest::collection::vec(tree_op(), 1..40)) {
        let world = World::new();
        let admin = world.session();
        admin.create("/t", b"root", CreateMode::Persistent).expect("root");
        let cache = TreeCache::new(world.session(), "/t").expect("cache");
        let start: BTreeMap<String, Vec<u8>> =
            cache.entries().into_iter().map(|n| (n.path, n.data)).collect();
        let (tx, rx) = crossbeam_channel::unbounded();
        cache.on_change(move |e| {
        let _ = tx.send(e.clone());
    });
        for op in ops {
            let _ = match op {
                TreeOp::Create(p, v) => admin.create(PATHS[p], &[v], CreateMode::Persistent).map(|_| ()),
                TreeOp::Set(p, v) => admin.set_data(PATHS[p], &[v], -1).map(|_| ()),
                TreeOp::Delete(p) => admin.delete(PATHS[p], -1),
            };
        }
        let want = truth(&admin, "/t");
        let converged = cache.wait_for(PROMPTLY, |nodes| {
            nodes.iter().map(|n| (n.path.clone(), n.data.clone())).collect::<BTreeMap<_, _>>() == want
        });
        prop_assert!(converged, "cache {:?} vs tree {:?}", cache.entries(), want);
        // The listener may lag the map a little: replay until the stream
        // reaches the final state (or stops short, which fails).
        let mut replayed = start;
        while replayed != want {
            let Ok(event) = rx.recv_timeout(PROMPTLY) else { break };
            match event {
                CacheEvent::Added(n) | CacheEvent::Updated(n) => { replayed.insert(n.path, n.data); }
                CacheEvent::Removed(n) => { replayed.remove(&n.path); }
                CacheEvent::SessionLost => prop_assert!(false, "session lost"),
            }
        }
        prop_assert_eq!(replayed, want);
    }
}

// Checks that closing caches removes their watches: after the caches are
// dropped, changes fire no events to the session that ran them.
#[test]
fn dropped_cache_leaves_no_watch() {
    let world = World::new();
    let session: Arc<TestSession> = world.session();
    let probe = Arc::new(crate::common::Probe::new(session.clone()));
    drop(NodeCache::new(probe.clone(), "/w/n").expect("cache"));
    drop(TreeCache::new(probe.clone(), "/w").expect("cache"));
    let admin = world.session();
    admin.create_all("/w/n").expect("create");
    session.settle();
    let node_events: Vec<_> = session
        .events()
        .try_iter()
        .filter(|e| e.event_type != innkeeper::EventType::None)
        .collect();
    assert!(
        node_events.is_empty(),
        "no node event reaches the session: {node_events:?}"
    );
}
