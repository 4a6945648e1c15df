//! What recipes rely on when a session ends (docs/zookeeper-semantics.md C.4,
//! C.6): an expired session's watchers are all told `Expired`, which is
//! how a recipe blocked on a watch learns that its session is gone.

use innkeeper::{Coordinator, CreateMode, EventType, KeeperState, WatchReceiver, Watcher};

use crate::common::{World, PROMPTLY};

/// The events a watcher got once its first one came (bounded), leaving out
/// `Disconnected`: a remote session hears that when the test's expiry
/// (see `TestSession::expire`) drops its connection before it hears
/// `Expired`, as a ZooKeeper client would.
fn heard(events: &WatchReceiver) -> Vec<(EventType, KeeperState)> {
    events
        .wait(PROMPTLY)
        .into_iter()
        .chain(events.drain())
        .map(|e| (e.event_type, e.state))
        .filter(|e| *e != (EventType::None, KeeperState::Disconnected))
        .collect()
}

// Checks expiry: a session watching its own ephemeral is not sent
// NodeDeleted for it when it expires (its client is gone; its watches end
// with it); its watcher gets `Expired` instead, while another session
// watching the same node gets NodeDeleted. A client that closes is still
// connected and, as ZooKeeper 3.8's traces show, does hear of its own
// ephemerals (the one-shot watch fires there, before `Closed`).
#[test]
fn expiring_session_gets_expired_not_its_own_deletes() {
    let world = World::new();
    for (end, want) in [
        ("expire", vec![(EventType::None, KeeperState::Expired)]),
        (
            "close",
            vec![(EventType::NodeDeleted, KeeperState::SyncConnected)],
        ),
    ] {
        let owner = world.session();
        let node = format!("/{end}");
        owner
            .create(&node, b"", CreateMode::Ephemeral)
            .expect("create");
        let (own_watcher, own_events) = Watcher::channel();
        owner.exists_with(&node, Some(&own_watcher)).expect("watch");
        let (own_child_watcher, own_child_events) = Watcher::channel();
        owner
            .get_children_with("/", Some(&own_child_watcher))
            .expect("watch");
        let other = world.session();
        let (other_watcher, other_events) = Watcher::channel();
        other
            .exists_with(&node, Some(&other_watcher))
            .expect("watch");
        match end {
            "expire" => owner.expire().expect("expire"),
            _ => owner.close().expect("close"),
        }
        assert_eq!(heard(&own_events), want, "{end}");
        if end == "expire" {
            assert_eq!(
                heard(&own_child_events),
                [(EventType::None, KeeperState::Expired)],
                "every watcher hears Expired"
            );
        }
        other.settle();
        let seen = heard(&other_events);
        assert_eq!(seen.len(), 1, "{end}");
        assert_eq!(seen[0].0, EventType::NodeDeleted, "{end}");
    }
}
