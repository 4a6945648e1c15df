//! Behaviour users rely on, checked through the public API of an in-memory
//! keeper with a manual clock. Each test cites the section of docs/zookeeper-semantics.md it checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use innkeeper::{
    Acl, AddWatchMode, Coordinator, CreateMode, CreateOptions, ErrorKind, EventType, Keeper,
    KeeperState, ManualClock, Op, OpResult, Perms, Watcher, WatcherType,
};

const T0: i64 = 1_700_000_000_000;

/// The node events waiting on a session's own stream (the `SyncConnected`
/// state event every new session starts with is skipped).
fn node_events(s: &impl Coordinator) -> Vec<innkeeper::WatchedEvent> {
    s.events()
        .try_iter()
        .filter(|e| e.event_type != EventType::None)
        .collect()
}

fn keeper() -> (Keeper, ManualClock) {
    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(clock.clone())
        .tick(Duration::from_millis(100))
        .session_timeout_range(Duration::from_millis(200), Duration::from_secs(10))
        .reap_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    (keeper, clock)
}

#[test]
fn sequential_names_count_every_child_create() {
    // Reference: docs/zookeeper-semantics.md A.5 and B.3; the example.
    let (keeper, _) = keeper();
    let s = keeper.session().unwrap();
    s.create("/p", b"", CreateMode::Persistent).unwrap();
    assert_eq!(
        s.create("/p/s-", b"", CreateMode::PersistentSequential)
            .unwrap(),
        "/p/s-0000000000"
    );
    assert_eq!(
        s.create("/p/s-", b"", CreateMode::PersistentSequential)
            .unwrap(),
        "/p/s-0000000001"
    );
    s.create("/p/plain", b"", CreateMode::Persistent).unwrap();
    s.delete("/p/s-0000000000", -1).unwrap();
    assert_eq!(
        s.create("/p/s-", b"", CreateMode::PersistentSequential)
            .unwrap(),
        "/p/s-0000000003"
    );
    let stat = s.exists("/p").unwrap().unwrap();
    assert_eq!((stat.cversion, stat.num_children), (5, 3));
    assert_eq!(
        s.create("/p/", b"", CreateMode::PersistentSequential)
            .unwrap(),
        "/p/0000000004"
    );
}

#[test]
fn concurrent_sequential_creates_are_unique_and_gapless() {
    let (keeper, _) = keeper();
    keeper
        .session()
        .unwrap()
        .create("/q", b"", CreateMode::Persistent)
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let keeper = keeper.clone();
            std::thread::spawn(move || {
                let s = keeper.session().unwrap();
                (0..100)
                    .map(|_| {
                        s.create("/q/n-", b"x", CreateMode::PersistentSequential)
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut names: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..800).map(|i| format!("/q/n-{i:010}")).collect();
    assert_eq!(names, expected);
    keeper.check_invariants().unwrap();
}

#[test]
fn stat_fields_follow_zookeeper() {
    // Reference: docs/zookeeper-semantics.md B.2.
    let (keeper, clock) = keeper();
    let s = keeper.session().unwrap();
    let (_, created) = s
        .create_with(
            "/a",
            Some(b"one"),
            &CreateOptions::new(CreateMode::Persistent),
        )
        .unwrap();
    assert_eq!(
        (created.czxid, created.mzxid, created.pzxid),
        (2, 2, 2),
        "session is zxid 1"
    );
    assert_eq!(
        (created.version, created.cversion, created.aversion),
        (0, 0, 0)
    );
    assert_eq!(
        (created.ctime, created.mtime, created.data_length),
        (T0, T0, 3)
    );
    clock.advance(Duration::from_millis(5));
    let set = s.set_data("/a", b"one", 0).unwrap();
    assert_eq!(
        (set.version, set.mzxid, set.mtime, set.ctime),
        (1, 3, T0 + 5, T0)
    );
    let acl = s.set_acl("/a", &Acl::open_unsafe(), 0).unwrap();
    assert_eq!(
        (acl.aversion, acl.mzxid, acl.version),
        (1, 3, 1),
        "setACL bumps only aversion"
    );
    s.create("/a/b", b"", CreateMode::Persistent).unwrap();
    let parent = s.exists("/a").unwrap().unwrap();
    assert_eq!(
        (
            parent.pzxid,
            parent.mzxid,
            parent.cversion,
            parent.num_children
        ),
        (5, 3, 1, 1)
    );
    s.delete("/a/b", -1).unwrap();
    let parent = s.exists("/a").unwrap().unwrap();
    assert_eq!(
        (parent.pzxid, parent.cversion, parent.num_children),
        (6, 2, 0)
    );
    let (data, _) = s.get_data_with("/a", None).unwrap();
    assert_eq!(data.as_deref(), Some(&b"one"[..]));
    s.create_with("/null", None, &CreateOptions::new(CreateMode::Persistent))
        .unwrap();
    assert_eq!(
        s.get_data_with("/null", None).unwrap().0,
        None,
        "null is not empty"
    );
}

#[test]
fn errors_are_typed_and_change_nothing() {
    // Reference: docs/zookeeper-semantics.md A.1, A.4, F.2.
    let (keeper, _) = keeper();
    let s = keeper.session().unwrap();
    let before = keeper.last_zxid();
    let cases: Vec<(innkeeper::Result<String>, ErrorKind)> = vec![
        (
            s.create("a", b"", CreateMode::Persistent),
            ErrorKind::InvalidPath,
        ),
        // Paths are checked before anything else, as the Java client does
        // (A.1); the server's own order (A.4) applies to wire clients.
        (
            s.create("/a/", b"", CreateMode::Persistent),
            ErrorKind::InvalidPath,
        ),
        (
            s.create("/zookeeper/", b"", CreateMode::Persistent),
            ErrorKind::InvalidPath,
        ),
        (
            s.create("/zookeeper/./b", b"", CreateMode::Persistent),
            ErrorKind::InvalidPath,
        ),
        (
            s.create("/zookeeper/..", b"", CreateMode::Persistent),
            ErrorKind::InvalidPath,
        ),
        (
            s.create("/\u{1F600}", b"", CreateMode::Persistent),
            ErrorKind::InvalidPath,
        ),
        (
            s.create("/x/y", b"", CreateMode::Persistent),
            ErrorKind::NoNode,
        ),
        (
            s.create("/", b"", CreateMode::Persistent),
            ErrorKind::NodeExists,
        ),
        (
            s.create("/big", &vec![0; 0x100000], CreateMode::Persistent),
            ErrorKind::DataTooLarge,
        ),
    ];
    for (result, kind) in cases {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
    }
    assert_eq!(
        s.delete("/zookeeper", -1).unwrap_err().kind(),
        ErrorKind::BadArguments
    );
    assert_eq!(s.delete("/nope", -1).unwrap_err().code(), -101);
    s.create("/v", b"", CreateMode::Persistent).unwrap();
    assert_eq!(
        s.set_data("/v", b"x", 3).unwrap_err().kind(),
        ErrorKind::BadVersion
    );
    assert_eq!(
        s.set_data("/zookeeper/config", b"x", -1)
            .unwrap_err()
            .kind(),
        ErrorKind::NoAuth,
        "config is read-only (A.2)"
    );
    assert_eq!(
        keeper.last_zxid(),
        before + 1,
        "only the one successful create"
    );
    assert_eq!(s.get_data("/v").unwrap().1.version, 0);
}

#[test]
fn ephemerals_have_no_children_and_die_with_their_session() {
    // Reference: docs/zookeeper-semantics.md A.3, C.4.
    let (keeper, _) = keeper();
    let owner = keeper.session().unwrap();
    let observer = keeper.session().unwrap();
    owner.create("/e", b"", CreateMode::Ephemeral).unwrap();
    let err = owner
        .create("/e/child", b"", CreateMode::Persistent)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoChildrenForEphemerals);
    let stat = observer
        .exists_with("/e", Some(&observer.default_watcher()))
        .unwrap()
        .unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id());
    assert_eq!(owner.get_ephemerals("/").unwrap(), vec!["/e".to_string()]);
    drop(owner);
    assert_eq!(observer.exists("/e").unwrap(), None);
    let event = node_events(&observer)
        .pop()
        .expect("NodeDeleted queued before drop returned");
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeDeleted, Some("/e"))
    );
}

#[test]
fn hung_sessions_expire_on_the_manual_clock() {
    // Reference: docs/zookeeper-semantics.md C.3, C.4.
    let (keeper, clock) = keeper();
    let alive = keeper
        .session_with_timeout(Duration::from_millis(500))
        .unwrap();
    let hung = keeper
        .session_with_timeout(Duration::from_millis(500))
        .unwrap();
    assert_eq!(hung.timeout(), Duration::from_millis(500));
    hung.create("/lock", b"", CreateMode::Ephemeral).unwrap();
    alive
        .exists_with("/lock", Some(&alive.default_watcher()))
        .unwrap();
    hung.pause_heartbeats();
    clock.advance(Duration::from_millis(400));
    assert!(!hung.is_expired(), "not before the timeout");
    clock.advance(Duration::from_millis(300));
    assert!(hung.is_expired());
    assert_eq!(hung.state(), KeeperState::Expired);
    assert_eq!(
        hung.exists("/").unwrap_err().kind(),
        ErrorKind::SessionExpired
    );
    assert_eq!(alive.exists("/lock").unwrap(), None);
    assert_eq!(node_events(&alive)[0].event_type, EventType::NodeDeleted);
    assert_eq!(
        alive.state(),
        KeeperState::SyncConnected,
        "heartbeating sessions live on"
    );
    clock.advance(Duration::from_secs(60));
    assert!(alive.exists("/").is_ok());
}

#[test]
fn expire_on_demand_fires_watches_and_reports_expired() {
    let (keeper, _) = keeper();
    let a = keeper.session().unwrap();
    let b = keeper.session().unwrap();
    a.create("/a", b"", CreateMode::Ephemeral).unwrap();
    b.get_children_with("/", Some(&b.default_watcher()))
        .unwrap();
    keeper.expire_session(a.session_id()).unwrap();
    assert!(a.is_expired());
    let events = node_events(&b);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::NodeChildrenChanged);
    let own: Vec<_> = a.events().try_iter().collect();
    assert_eq!(own.last().map(|e| e.state), Some(KeeperState::Expired));
    assert_eq!(
        a.create("/x", b"", CreateMode::Persistent)
            .unwrap_err()
            .kind(),
        ErrorKind::SessionExpired
    );
}

#[test]
fn containers_and_ttl_nodes_are_reaped_on_ticks() {
    // Reference: docs/zookeeper-semantics.md A.6.
    let (keeper, clock) = keeper();
    let s = keeper.session().unwrap();
    s.create("/c", b"", CreateMode::Container).unwrap();
    s.create("/never-used", b"", CreateMode::Container).unwrap();
    s.create("/c/child", b"", CreateMode::Persistent).unwrap();
    let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_millis(1000));
    s.create_with("/t", Some(b""), &ttl).unwrap();
    assert_eq!(s.exists("/t").unwrap().unwrap().ephemeral_owner, 0);
    clock.advance(Duration::from_millis(200));
    assert!(s.exists("/c").unwrap().is_some(), "has a child");
    s.delete("/c/child", -1).unwrap();
    clock.advance(Duration::from_millis(200));
    assert!(
        s.exists("/c").unwrap().is_none(),
        "emptied container reaped"
    );
    assert!(
        s.exists("/never-used").unwrap().is_some(),
        "never-used container kept"
    );
    clock.advance(Duration::from_millis(500));
    s.set_data("/t", b"touch", -1).unwrap();
    clock.advance(Duration::from_millis(800));
    assert!(
        s.exists("/t").unwrap().is_some(),
        "set-data restarted the TTL"
    );
    clock.advance(Duration::from_millis(500));
    assert!(s.exists("/t").unwrap().is_none());
    keeper.check_invariants().unwrap();
}

#[test]
fn failed_multi_changes_nothing_and_is_shaped_like_zookeeper() {
    // Reference: docs/zookeeper-semantics.md E.1, E.3.
    let (keeper, _) = keeper();
    let s = keeper.session().unwrap();
    let before = keeper.last_zxid();
    let ops = [
        Op::create("/m", b"", CreateMode::Persistent),
        Op::set_data("/m", b"x", 5),
        Op::delete("/m", -1),
    ];
    let results = s.multi_results(&ops).unwrap();
    assert_eq!(
        results,
        vec![
            OpResult::RolledBack,
            OpResult::Error(ErrorKind::BadVersion),
            OpResult::Error(ErrorKind::RuntimeInconsistency)
        ]
    );
    assert_eq!(s.multi(&ops).unwrap_err().kind(), ErrorKind::BadVersion);
    assert!(s.exists("/m").unwrap().is_none());
    assert_eq!(keeper.last_zxid(), before);
    let ok = s
        .multi(&[
            Op::create("/m", b"", CreateMode::Persistent),
            Op::create("/m/s-", b"", CreateMode::PersistentSequential),
            Op::set_data("/m", b"x", 0),
            Op::check("/m", 1),
        ])
        .unwrap();
    match (&ok[0], &ok[1], &ok[2]) {
        (
            OpResult::Create { stat: a, .. },
            OpResult::Create { path, stat: b },
            OpResult::SetData { stat },
        ) => {
            assert_eq!(path, "/m/s-0000000000");
            assert_eq!(a.czxid, b.czxid, "one zxid for the whole multi");
            assert_eq!(stat.version, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ok[3], OpResult::Check);
}

#[test]
fn watch_events_precede_the_next_reply_and_come_in_zxid_order() {
    // Reference: docs/zookeeper-semantics.md D.4.
    let (keeper, _) = keeper();
    let writer = keeper.session().unwrap();
    let reader = keeper.session().unwrap();
    writer.create("/w", b"0", CreateMode::Persistent).unwrap();
    let w = reader.default_watcher();
    reader.get_data_with("/w", Some(&w)).unwrap();
    reader.get_children_with("/w", Some(&w)).unwrap();
    reader.exists_with("/w/new", Some(&w)).unwrap();
    writer
        .create("/w/new", b"", CreateMode::Persistent)
        .unwrap();
    writer.set_data("/w", b"1", -1).unwrap();
    let (data, _) = reader.get_data("/w").unwrap();
    assert_eq!(data, b"1");
    let events: Vec<_> = node_events(&reader)
        .into_iter()
        .map(|e| (e.event_type, e.path.unwrap()))
        .collect();
    assert_eq!(
        events,
        vec![
            (EventType::NodeCreated, "/w/new".to_string()),
            (EventType::NodeChildrenChanged, "/w".to_string()),
            (EventType::NodeDataChanged, "/w".to_string()),
        ]
    );
    writer.set_data("/w", b"2", -1).unwrap();
    assert!(
        node_events(&reader).is_empty(),
        "one-shot watches fire once"
    );
}

#[test]
fn persistent_and_recursive_watches() {
    // Reference: docs/zookeeper-semantics.md D.2.
    let (keeper, _) = keeper();
    let s = keeper.session().unwrap();
    let (w, events) = Watcher::channel();
    s.add_watch("/app", AddWatchMode::PersistentRecursive, &w)
        .unwrap();
    s.create("/app", b"", CreateMode::Persistent).unwrap();
    s.create("/app/a", b"", CreateMode::Persistent).unwrap();
    s.set_data("/app/a", b"x", -1).unwrap();
    s.delete("/app/a", -1).unwrap();
    let got: Vec<_> = events
        .drain()
        .into_iter()
        .map(|e| (e.event_type, e.path.unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/app".into()),
            (EventType::NodeCreated, "/app/a".into()),
            (EventType::NodeDataChanged, "/app/a".into()),
            (EventType::NodeDeleted, "/app/a".into()),
        ]
    );
    s.remove_watches("/app", WatcherType::Any, None).unwrap();
    assert_eq!(
        events.try_recv().unwrap().event_type,
        EventType::PersistentWatchRemoved
    );
    s.create("/app/b", b"", CreateMode::Persistent).unwrap();
    assert!(events.try_recv().is_none());
    assert_eq!(
        s.remove_watches("/app", WatcherType::Any, None)
            .unwrap_err()
            .kind(),
        ErrorKind::NoWatcher
    );
}

#[test]
fn callbacks_run_off_the_engine_lock_and_may_call_back() {
    let (keeper, _) = keeper();
    let s = Arc::new(keeper.session().unwrap());
    s.create("/cb", b"", CreateMode::Persistent).unwrap();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = s.clone();
    let counter = calls.clone();
    let w = Watcher::callback(move |event| {
        counter.fetch_add(1, Ordering::SeqCst);
        // Re-enter the keeper from the callback: read, and write.
        let (data, _) = inner.get_data(event.path.as_deref().unwrap()).unwrap();
        inner
            .create("/cb/seen-", &data, CreateMode::PersistentSequential)
            .unwrap();
        done_tx.send(data).unwrap();
    });
    s.get_data_with("/cb", Some(&w)).unwrap();
    s.set_data("/cb", b"hello", -1).unwrap();
    let data = done_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("callback ran");
    assert_eq!(data, b"hello");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_session_expires_at_its_tick_rounded_deadline() {
    // Reference: docs/zookeeper-semantics.md C.3. ZooKeeper's deadline is the
    // last touch plus the timeout, rounded up to the next multiple of the
    // tick; it expires exactly then, not a tick later.
    let clock = ManualClock::new(T0 + 500);
    let keeper = Keeper::builder()
        .clock(clock.clone())
        .tick(Duration::from_secs(2))
        .session_timeout_range(Duration::from_secs(4), Duration::from_secs(40))
        .build()
        .unwrap();
    let s = keeper.session_with_timeout(Duration::from_secs(4)).unwrap();
    s.pause_heartbeats();
    // Touched at T0 + 500: due at T0 + 4500, rounded up to T0 + 6000.
    clock.advance(Duration::from_millis(5_499));
    assert!(!s.is_expired(), "not before the deadline");
    clock.advance(Duration::from_millis(1));
    assert!(s.is_expired(), "at the deadline");
}

#[test]
fn a_paused_session_expires_a_timeout_after_the_pause_and_a_resumed_one_never() {
    // An attached handle keeps no deadline: however long it heartbeats, a
    // pause starts the timeout from the pause (rounded up to the tick).
    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(clock.clone())
        .tick(Duration::from_secs(2))
        .session_timeout_range(Duration::from_secs(4), Duration::from_secs(40))
        .build()
        .unwrap();
    let s = keeper.session_with_timeout(Duration::from_secs(4)).unwrap();
    let steady = keeper.session_with_timeout(Duration::from_secs(4)).unwrap();
    clock.advance(Duration::from_secs(3600));
    assert!(!s.is_expired() && !steady.is_expired());
    clock.advance(Duration::from_millis(500));
    // Paused at T0 + 3600.5 s: due at +4 s, rounded up to T0 + 3606 s.
    s.pause_heartbeats();
    clock.advance(Duration::from_millis(5_499));
    assert!(!s.is_expired(), "not before the deadline");
    s.resume_heartbeats();
    clock.advance(Duration::from_secs(60));
    assert!(!s.is_expired(), "resumed: no deadline again");
    s.pause_heartbeats();
    clock.advance(Duration::from_secs(6));
    assert!(s.is_expired(), "paused again: due a timeout later");
    assert!(!steady.is_expired(), "the other handle heartbeats on");
}

#[test]
fn exists_needs_no_read_permission() {
    // ZooKeeper 3.8 checks no ACL on `exists`: the Stat comes back and the
    // watch is set on a node the caller may not READ.
    let (keeper, _) = keeper();
    let alice = keeper.session().unwrap();
    let bob = keeper.session().unwrap();
    alice.add_auth("digest", b"alice:secret").unwrap();
    alice
        .create_with(
            "/private",
            Some(b"xyz"),
            &CreateOptions::new(CreateMode::Persistent).acl(vec![Acl::digest(
                Perms::ALL,
                "alice",
                "secret",
            )]),
        )
        .unwrap();
    assert_eq!(
        bob.get_data("/private").unwrap_err().kind(),
        ErrorKind::NoAuth
    );
    let stat = bob
        .exists_with("/private", Some(&bob.default_watcher()))
        .unwrap()
        .expect("the Stat of an unreadable node");
    assert_eq!(stat.data_length, 3);
    alice.set_data("/private", b"new", -1).unwrap();
    let events = node_events(&bob);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, EventType::NodeDataChanged);
}

#[test]
fn acls_are_enforced_per_op() {
    // Reference: docs/zookeeper-semantics.md G.
    let (keeper, _) = keeper();
    let alice = keeper.session().unwrap();
    let bob = keeper.session().unwrap();
    alice.add_auth("digest", b"alice:secret").unwrap();
    let acl = vec![
        Acl::digest(Perms::ALL, "alice", "secret"),
        Acl::new(Perms::READ, innkeeper::Id::anyone()),
    ];
    alice
        .create_with(
            "/private",
            Some(b"x"),
            &CreateOptions::new(CreateMode::Persistent).acl(acl),
        )
        .unwrap();
    assert!(bob.get_data("/private").is_ok());
    assert_eq!(
        bob.set_data("/private", b"y", -1).unwrap_err().kind(),
        ErrorKind::NoAuth
    );
    assert_eq!(
        bob.create("/private/c", b"", CreateMode::Persistent)
            .unwrap_err()
            .kind(),
        ErrorKind::NoAuth
    );
    let (masked, _) = bob.get_acl("/private").unwrap();
    assert_eq!(masked[0].id.id, "alice:x", "digest masked without ADMIN");
    alice.set_data("/private", b"y", -1).unwrap();
    let who: Vec<_> = alice
        .who_am_i()
        .unwrap()
        .into_iter()
        .map(|c| c.user)
        .collect();
    assert_eq!(who, vec!["alice".to_string()]);
    let creator = CreateOptions::new(CreateMode::Persistent).acl(Acl::creator_all());
    assert_eq!(
        bob.create_with("/mine", None, &creator).unwrap_err().kind(),
        ErrorKind::InvalidAcl,
        "auth scheme needs an authenticated identity"
    );
    assert_eq!(
        bob.add_auth("kerberos", b"x").unwrap_err().kind(),
        ErrorKind::AuthFailed
    );
}

#[test]
fn reads_of_system_nodes_match_zookeeper() {
    // Reference: docs/zookeeper-semantics.md A.2.
    let (keeper, _) = keeper();
    let s = keeper.session().unwrap();
    assert_eq!(s.get_children("/").unwrap(), vec!["zookeeper".to_string()]);
    assert_eq!(s.exists("/").unwrap().unwrap().cversion, -1);
    assert_eq!(s.get_all_children_number("/").unwrap(), 3);
    let (data, _) = s.get_data_with("/zookeeper/config", None).unwrap();
    assert_eq!(data, Some(Vec::new()));
    assert_eq!(keeper.node_count(), 4);
}

#[test]
fn closed_sessions_refuse_work_and_timeouts_are_negotiated() {
    let (keeper, _) = keeper();
    let s = keeper
        .session_with_timeout(Duration::from_secs(3600))
        .unwrap();
    assert_eq!(s.timeout(), Duration::from_secs(10), "clamped to the max");
    let short = keeper
        .session_with_timeout(Duration::from_millis(1))
        .unwrap();
    assert_eq!(
        short.timeout(),
        Duration::from_millis(200),
        "clamped to the min"
    );
    s.close().unwrap();
    s.close().unwrap();
    assert_eq!(s.state(), KeeperState::Closed);
    assert_eq!(
        s.get_data("/").unwrap_err().kind(),
        ErrorKind::SessionExpired
    );
    assert_eq!(keeper.session_count(), 1);
}

#[test]
fn event_filtering_by_read_permission_is_a_choice() {
    // Reference: docs/zookeeper-semantics.md D.3 (ZOOKEEPER-4799, 3.8.4). The
    // recorded 3.8.0 traces deliver such events, so filtering is opt-in.
    for filter in [false, true] {
        let keeper = Keeper::builder()
            .clock(ManualClock::new(T0))
            .filter_events_by_acl(filter)
            .build()
            .unwrap();
        let owner = keeper.session().unwrap();
        let other = keeper.session().unwrap();
        owner.add_auth("digest", b"o:pw").unwrap();
        let acl = vec![Acl::digest(Perms::ALL, "o", "pw")];
        owner
            .create_with(
                "/secret",
                Some(b""),
                &CreateOptions::new(CreateMode::Persistent).acl(acl),
            )
            .unwrap();
        let (w, events) = Watcher::channel();
        other
            .add_watch("/secret", AddWatchMode::Persistent, &w)
            .unwrap();
        owner.set_data("/secret", b"x", -1).unwrap();
        owner.delete("/secret", -1).unwrap();
        let n = events.drain().len();
        assert_eq!(n, if filter { 0 } else { 2 }, "filter {filter}");
    }
}

#[test]
fn a_stale_handle_does_not_close_a_resumed_session() {
    // Reference: docs/zookeeper-semantics.md C.5: a resume takes the session over;
    // the older handle no longer speaks for it.
    let (keeper, _) = keeper();
    let old = keeper.session().unwrap();
    old.create("/mine", b"", CreateMode::Ephemeral).unwrap();
    let new = keeper
        .resume_session(old.session_id(), &old.password(), Duration::from_secs(5))
        .unwrap();
    drop(old);
    assert!(
        new.exists("/mine").unwrap().is_some(),
        "the ephemeral lives on"
    );
    new.close().unwrap();
    assert_eq!(keeper.session_count(), 0);
}

/// The password scheme innkeeper used before (splitmix64 of a per-keeper
/// secret and the session id), kept here to prove the attack below works.
fn old_password(session_id: i64, secret: u64) -> [u8; 16] {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut state = secret ^ (session_id as u64).wrapping_mul(GOLDEN);
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(GOLDEN);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes());
    }
    out
}

/// Runs the old scheme backwards: the secret that gives `password` to
/// `session_id`.
fn old_secret_from(session_id: i64, password: &[u8; 16]) -> u64 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let unshift = |x: u64, s: u32| (0..64 / s + 1).fold(x, |y, _| x ^ (y >> s));
    let inverse = |c: u64| {
        (0..6).fold(c, |inv, _| {
            inv.wrapping_mul(2u64.wrapping_sub(c.wrapping_mul(inv)))
        })
    };
    let mut z = u64::from_be_bytes(password[..8].try_into().unwrap());
    z = unshift(z, 31).wrapping_mul(inverse(0x94D0_49BB_1331_11EB));
    z = unshift(z, 27).wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9));
    z = unshift(z, 30);
    z.wrapping_sub(GOLDEN) ^ (session_id as u64).wrapping_mul(GOLDEN)
}

#[test]
fn session_passwords_tell_nothing_about_each_other() {
    // Issue 13: one client's id and password must not reveal any other
    // session's password. The attack that broke the old scheme works on it:
    assert_eq!(old_secret_from(77, &old_password(77, 0xC0FFEE)), 0xC0FFEE);
    let (keeper, _) = keeper();
    let sessions: Vec<_> = (0..200).map(|_| keeper.session().unwrap()).collect();
    let pairs: Vec<(i64, [u8; 16])> = sessions
        .iter()
        .map(|s| (s.session_id(), s.password()))
        .collect();
    let distinct: std::collections::HashSet<[u8; 16]> = pairs.iter().map(|(_, p)| *p).collect();
    assert_eq!(distinct.len(), pairs.len(), "no password repeats");
    // Knowing any one pair predicts no other password by the old attack,
    for (id, password) in &pairs {
        let secret = old_secret_from(*id, password);
        for (other_id, other_password) in &pairs {
            if other_id != id {
                assert_ne!(&old_password(*other_id, secret), other_password);
            }
        }
    }
    // nor by a fixed difference between consecutive sessions' passwords.
    let deltas: std::collections::HashSet<[u8; 16]> = pairs
        .windows(2)
        .map(|w| std::array::from_fn(|i| w[0].1[i] ^ w[1].1[i]))
        .collect();
    assert_eq!(deltas.len(), pairs.len() - 1);
    // A wrong password, even one byte off, resumes nothing.
    let (id, mut wrong) = pairs[0];
    wrong[15] ^= 1;
    assert_eq!(
        keeper
            .resume_session(id, &wrong, Duration::from_secs(1))
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::SessionExpired)
    );
}

#[test]
fn multi_takes_every_op_kind_and_a_ttl_as_a_duration() {
    // Reference: docs/zookeeper-semantics.md E.1, E.3, A.3. `Op` holds only
    // what multi accepts; its TTL is the same `Duration` `CreateOptions` takes.
    let (keeper, _clock) = keeper();
    let s = keeper.session().unwrap();
    s.create("/m", b"", CreateMode::Persistent).unwrap();
    let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_millis(1500));
    let results = s
        .multi(&[
            Op::create_with("/m/t", Some(b"x"), &ttl),
            Op::set_data("/m/t", b"y", 0),
            Op::check("/m/t", 1),
            Op::create("/m/gone", b"", CreateMode::Persistent),
            Op::delete("/m/gone", 0),
        ])
        .unwrap();
    let shape: Vec<&str> = results
        .iter()
        .map(|r| match r {
            OpResult::Create { .. } => "create",
            OpResult::SetData { .. } => "set",
            OpResult::Check => "check",
            OpResult::Delete => "delete",
            OpResult::RolledBack | OpResult::Error(_) => "failed",
        })
        .collect();
    assert_eq!(shape, ["create", "set", "check", "create", "delete"]);
    // ZooKeeper's server-side owner of a TTL node: 0xFF.. | ttl in ms.
    assert_eq!(
        keeper.stored_ephemeral_owner("/m/t"),
        Some(i64::from_be_bytes([0xFF, 0, 0, 0, 0, 0, 0, 0]) | 1500)
    );
    // A TTL mode without a TTL is refused, and the whole multi with it.
    let no_ttl = CreateOptions::new(CreateMode::PersistentWithTtl);
    let results = s
        .multi_results(&[
            Op::create("/m/a", b"", CreateMode::Persistent),
            Op::create_with("/m/b", None, &no_ttl),
        ])
        .unwrap();
    assert_eq!(
        results,
        [
            OpResult::RolledBack,
            OpResult::Error(ErrorKind::BadArguments)
        ]
    );
    assert!(s.exists("/m/a").unwrap().is_none());
}
