//! Lost replies (what a remote backend sees as `ConnectionLoss`): the
//! operation happened but the recipe was not told. Recipes recover by
//! recognising their own nodes.

use std::time::Duration;

use innkeeper::recipes::{Lock, Queue};

use crate::common::World;

// Checks the protected create: the reply to the lock node's create is
// lost; the lock finds its node by the token in its name, holds the lock,
// and leaves no orphan node that would block the line.
#[test]
fn lost_create_reply_leaves_no_orphan() {
    let world = World::new();
    let probe = world.probe();
    let lock = Lock::new(probe.clone(), "/lossy/lock").expect("lock");
    probe.lose_reply_of_call(probe.calls() + 1); // the exists check, then the create
    let guard = lock
        .lock_timeout(Duration::from_secs(1))
        .expect("lock")
        .expect("held");
    assert_eq!(
        world.nodes_below("/lossy/lock").len(),
        1,
        "exactly our node"
    );
    drop(guard);
    assert!(world.nodes_below("/lossy/lock").is_empty());
    let other = Lock::new(world.session(), "/lossy/lock").expect("lock");
    assert!(
        other.try_lock().expect("try").is_some(),
        "nothing blocks the line"
    );
}

// Checks the take's completion multi: its reply is lost; the queue learns
// from its (now gone) claim that the multi happened, returns the item, and
// nobody gets it again.
#[test]
fn lost_take_reply_still_delivers_once() {
    let world = World::new();
    let producer = Queue::new(world.session(), "/lossy/q").expect("queue");
    producer.put(b"only-once").expect("put");
    let probe = world.probe();
    let q = Queue::new(probe.clone(), "/lossy/q").expect("queue");
    let claim = q
        .claim_timeout(Duration::from_secs(1))
        .expect("claim")
        .expect("item");
    probe.lose_reply_of_call(probe.calls());
    assert_eq!(claim.complete().expect("complete"), b"only-once");
    assert_eq!(probe.replies_lost(), 1);
    assert_eq!(producer.try_take().expect("take"), None);
}
