//! What recipes rely on when a session ends (zookeeper-reference.md C.4,
//! C.6): an expired session's watchers are all told `Expired`, which is
//! how a recipe blocked on a watch learns that its session is gone.

use innkeeper::{Coordinator, CreateMode, EventType, KeeperState, Watcher};

use crate::common::World;

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
        let own: Vec<(EventType, KeeperState)> = own_events
            .drain()
            .into_iter()
            .map(|e| (e.event_type, e.state))
            .collect();
        assert_eq!(own, want, "{end}");
        if end == "expire" {
            let child: Vec<_> = own_child_events
                .drain()
                .into_iter()
                .map(|e| e.state)
                .collect();
            assert_eq!(child, [KeeperState::Expired], "every watcher hears Expired");
        }
        let seen = other_events.drain();
        assert_eq!(seen.len(), 1, "{end}");
        assert_eq!(seen[0].event_type, EventType::NodeDeleted, "{end}");
    }
}
