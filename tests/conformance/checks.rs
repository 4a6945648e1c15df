//! The checks, each written once against a [`Backend`]. Every check names
//! the section of `docs/zookeeper-semantics.md` it covers.

use std::time::Duration;

use innkeeper::{
    Acl, AddWatchMode, Coordinator, CreateMode, CreateOptions, ErrorKind, EventType, Id,
    KeeperState, Op, OpResult, Perms, ReadOp, ReadResult, Watcher, WatcherType,
};

use crate::{next_node_event, Backend, EVENT_WAIT, QUIET_WAIT};

/// Lets a session see every write committed before the call. Sessions of
/// an ensemble may sit on different servers, and a server may lag behind
/// the leader: ZooKeeper orders each session's own operations, not reads
/// across sessions, unless the reader syncs first (`sync`, F.2).
#[track_caller]
fn catch_up(s: &dyn innkeeper::Coordinator) {
    s.sync("/").expect("sync");
}

#[track_caller]
fn assert_err<T: std::fmt::Debug>(result: innkeeper::Result<T>, kind: ErrorKind) {
    match result {
        Err(e) => assert_eq!(e.kind(), kind, "{e}"),
        Ok(v) => panic!("expected {kind:?}, got Ok({v:?})"),
    }
}

#[track_caller]
fn expect_event(events: &innkeeper::WatchReceiver, event_type: EventType, path: &str) {
    let event = events
        .wait(EVENT_WAIT)
        .unwrap_or_else(|| panic!("no {event_type:?} event for {path}"));
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (event_type, Some(path))
    );
}

#[track_caller]
fn expect_quiet(events: &innkeeper::WatchReceiver) {
    if let Some(event) = events.wait(QUIET_WAIT) {
        panic!("unexpected event {event:?}");
    }
}

/// A.1: paths are checked before a request is sent; the error is InvalidPath.
pub fn paths_are_validated_before_anything_else(b: &dyn Backend) {
    let s = b.session();
    for bad in ["", "a", "/a/", "//a", "/a/./b", "/a/../b", "/a\u{0}b"] {
        assert_err(
            s.create(bad, b"", CreateMode::Persistent),
            ErrorKind::InvalidPath,
        );
        assert_err(s.get_data(bad), ErrorKind::InvalidPath);
        assert_err(s.exists(bad), ErrorKind::InvalidPath);
        assert_err(s.delete(bad, -1), ErrorKind::InvalidPath);
    }
    // A sequential prefix may end with '/' (A.5).
    let root = b.root(&*s, "paths");
    let name = s
        .create(&format!("{root}/"), b"", CreateMode::PersistentSequential)
        .unwrap();
    assert_eq!(name, format!("{root}/0000000000"));
}

/// A.2: system nodes exist, cannot be deleted, `/zookeeper/config` is read-only.
pub fn system_nodes(b: &dyn Backend) {
    let s = b.session();
    assert!(s.exists("/").unwrap().is_some());
    assert!(s.exists("/zookeeper").unwrap().is_some());
    assert!(s.exists("/zookeeper/quota").unwrap().is_some());
    let children = s.get_children("/zookeeper").unwrap();
    assert!(children.contains(&"quota".to_string()), "{children:?}");
    assert!(children.contains(&"config".to_string()), "{children:?}");
    for system in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_err(s.delete(system, -1), ErrorKind::BadArguments);
    }
    assert_err(s.set_data("/zookeeper/config", b"x", -1), ErrorKind::NoAuth);
    let (acl, stat) = s.get_acl("/zookeeper/config").unwrap();
    assert_eq!(acl, Acl::read_unsafe());
    assert_eq!(stat.aversion, -1);
    // `create /` is NodeExists (A.4 step 10).
    assert_err(
        s.create("/", b"", CreateMode::Persistent),
        ErrorKind::NodeExists,
    );
}

/// A.4, F.2: create's checks in order.
pub fn create_checks_and_errors(b: &dyn Backend) {
    let s = b.session();
    let root = b.root(&*s, "create");
    let a = format!("{root}/a");
    assert_eq!(s.create(&a, b"x", CreateMode::Persistent).unwrap(), a);
    assert_err(
        s.create(&a, b"x", CreateMode::Persistent),
        ErrorKind::NodeExists,
    );
    assert_err(
        s.create(
            &format!("{root}/missing/child"),
            b"",
            CreateMode::Persistent,
        ),
        ErrorKind::NoNode,
    );
    let e = format!("{root}/e");
    s.create(&e, b"", CreateMode::Ephemeral).unwrap();
    assert_err(
        s.create(&format!("{e}/child"), b"", CreateMode::Persistent),
        ErrorKind::NoChildrenForEphemerals,
    );
    // InvalidACL comes before the parent lookup (A.4 step 5).
    assert_err(
        s.create_with(
            &format!("{root}/missing/child"),
            Some(b""),
            &CreateOptions::new(CreateMode::Persistent).acl(vec![]),
        ),
        ErrorKind::InvalidAcl,
    );
    // The returned Stat is the new node's (create2).
    let (path, stat) = s
        .create_with(
            &format!("{root}/s"),
            Some(b"abc"),
            &CreateOptions::new(CreateMode::Persistent),
        )
        .unwrap();
    assert_eq!(path, format!("{root}/s"));
    assert_eq!(stat, s.exists(&path).unwrap().unwrap());
    assert_eq!(stat.data_length, 3);
}

/// A.5, B.3: sequence numbers count every child create, not deletes.
pub fn sequential_names(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "seq");
    let n0 = s
        .create(&format!("{p}/n-"), b"", CreateMode::PersistentSequential)
        .unwrap();
    assert_eq!(n0, format!("{p}/n-0000000000"));
    s.delete(&n0, -1).unwrap();
    s.create(&format!("{p}/x"), b"", CreateMode::Persistent)
        .unwrap();
    let n2 = s
        .create(&format!("{p}/n-"), b"", CreateMode::EphemeralSequential)
        .unwrap();
    assert_eq!(n2, format!("{p}/n-0000000002"));
    // A failed create does not advance the counter.
    assert_err(
        s.create(&format!("{p}/x"), b"", CreateMode::Persistent),
        ErrorKind::NodeExists,
    );
    let n3 = s
        .create(&format!("{p}/n-"), b"", CreateMode::PersistentSequential)
        .unwrap();
    assert_eq!(n3, format!("{p}/n-0000000003"));
    let stat = s.exists(&p).unwrap().unwrap();
    // 4 creates + 1 delete; 3 children left.
    assert_eq!((stat.cversion, stat.num_children), (5, 3));
}

/// A.7: null data differs from empty data; dataLength is 0 for both.
pub fn null_and_empty_data(b: &dyn Backend) {
    let s = b.session();
    let root = b.root(&*s, "null");
    let null = format!("{root}/null");
    s.create_with(&null, None, &CreateOptions::new(CreateMode::Persistent))
        .unwrap();
    let (data, stat) = s.get_data_with(&null, None).unwrap();
    assert_eq!((data, stat.data_length), (None, 0));
    let empty = format!("{root}/empty");
    s.create(&empty, b"", CreateMode::Persistent).unwrap();
    let (data, stat) = s.get_data_with(&empty, None).unwrap();
    assert_eq!((data, stat.data_length), (Some(Vec::new()), 0));
    s.set_data_with(&empty, None, -1).unwrap();
    assert_eq!(s.get_data_with(&empty, None).unwrap().0, None);
}

/// A.7: data above jute.maxbuffer is refused and changes nothing. ZooKeeper
/// itself drops the connection on such a frame; both backends refuse it
/// before that, with DataTooLarge.
pub fn data_limit(b: &dyn Backend) {
    let s = b.session();
    let root = b.root(&*s, "limit");
    let big = vec![7u8; innkeeper::DATA_BYTES_MAX_DEFAULT + 1];
    let path = format!("{root}/big");
    assert_err(
        s.create(&path, &big, CreateMode::Persistent),
        ErrorKind::DataTooLarge,
    );
    assert_eq!(s.exists(&path).unwrap(), None);
    let data = vec![1u8; 512 * 1024];
    s.create(&path, &data, CreateMode::Persistent).unwrap();
    assert_eq!(s.get_data(&path).unwrap().0, data);
    assert_err(s.set_data(&path, &big, -1), ErrorKind::DataTooLarge);
}

/// B.1, B.2: which operation changes which Stat field.
pub fn stat_fields_per_operation(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "stat");
    let before = s.exists(&p).unwrap().unwrap();
    assert_eq!(
        (before.czxid, before.pzxid, before.mzxid),
        (before.czxid, before.czxid, before.czxid)
    );
    assert_eq!(before.ctime, before.mtime);
    let (child, created) = s
        .create_with(
            &format!("{p}/c"),
            Some(b"12345"),
            &CreateOptions::new(CreateMode::Persistent),
        )
        .unwrap();
    assert_eq!(created.czxid, created.mzxid);
    assert_eq!(created.czxid, created.pzxid);
    assert_eq!(created.ctime, created.mtime);
    assert_eq!(
        (
            created.version,
            created.cversion,
            created.aversion,
            created.ephemeral_owner,
            created.data_length,
            created.num_children
        ),
        (0, 0, 0, 0, 5, 0)
    );
    assert!(created.czxid > before.czxid);
    let parent = s.exists(&p).unwrap().unwrap();
    assert_eq!(parent.pzxid, created.czxid);
    assert_eq!((parent.cversion, parent.num_children), (1, 1));
    assert_eq!((parent.mzxid, parent.version), (before.mzxid, 0));

    let set = s.set_data(&child, b"12", 0).unwrap();
    assert_eq!((set.version, set.data_length), (1, 2));
    assert!(set.mzxid > created.mzxid);
    assert_eq!(set.czxid, created.czxid);
    assert_eq!(set.pzxid, created.pzxid);
    assert!(set.mtime >= created.mtime);
    // Identical bytes still bump the version.
    let again = s.set_data(&child, b"12", 1).unwrap();
    assert_eq!(again.version, 2);

    let acl = s.set_acl(&child, &Acl::open_unsafe(), 0).unwrap();
    assert_eq!(acl.aversion, 1);
    assert_eq!((acl.mzxid, acl.version), (again.mzxid, 2));
    assert_err(
        s.set_acl(&child, &Acl::open_unsafe(), 0),
        ErrorKind::BadVersion,
    );

    s.delete(&child, 2).unwrap();
    let parent = s.exists(&p).unwrap().unwrap();
    assert_eq!((parent.cversion, parent.num_children), (2, 0));
    assert!(parent.pzxid > acl.mzxid);

    let e = s.create_with(
        &format!("{p}/e"),
        Some(b""),
        &CreateOptions::new(CreateMode::Ephemeral),
    );
    assert_eq!(e.unwrap().1.ephemeral_owner, s.session_id());
}

/// F.2: delete and setData errors in check order.
pub fn delete_and_set_data_errors(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "errors");
    let a = format!("{p}/a");
    assert_err(s.delete(&a, -1), ErrorKind::NoNode);
    assert_err(s.set_data(&a, b"", -1), ErrorKind::NoNode);
    assert_err(s.get_data(&a), ErrorKind::NoNode);
    assert_err(s.get_children(&a), ErrorKind::NoNode);
    assert_err(s.get_acl(&a), ErrorKind::NoNode);
    assert_err(s.set_acl(&a, &Acl::open_unsafe(), -1), ErrorKind::NoNode);
    s.create(&a, b"", CreateMode::Persistent).unwrap();
    s.create(&format!("{a}/b"), b"", CreateMode::Persistent)
        .unwrap();
    assert_err(s.delete(&a, 5), ErrorKind::BadVersion);
    assert_err(s.delete(&a, 0), ErrorKind::NotEmpty);
    assert_err(s.set_data(&a, b"", 3), ErrorKind::BadVersion);
    s.delete_all(&a).unwrap();
    assert_eq!(s.exists(&a).unwrap(), None);
}

/// C.4, D.2: a closed session's ephemerals are deleted, firing others' watches.
pub fn ephemerals_belong_to_their_session(b: &dyn Backend) {
    let owner = b.session();
    let watcher_session = b.session();
    assert_ne!(owner.session_id(), watcher_session.session_id());
    let p = b.root(&*owner, "ephemeral");
    let e = format!("{p}/e");
    owner.create(&e, b"", CreateMode::Ephemeral).unwrap();
    catch_up(&*watcher_session);
    let stat = watcher_session.exists(&e).unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id());
    let (w, events) = Watcher::channel();
    watcher_session.exists_with(&e, Some(&w)).unwrap();
    let (cw, child_events) = Watcher::channel();
    watcher_session.get_children_with(&p, Some(&cw)).unwrap();
    drop(owner);
    expect_event(&events, EventType::NodeDeleted, &e);
    expect_event(&child_events, EventType::NodeChildrenChanged, &p);
    assert_eq!(watcher_session.exists(&e).unwrap(), None);
    let parent = watcher_session.exists(&p).unwrap().unwrap();
    assert_eq!((parent.cversion, parent.num_children), (2, 0));
}

/// A.3: containers and TTL nodes report ephemeralOwner 0; bad TTLs are BadArguments.
pub fn container_and_ttl_creation(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "kinds");
    let (c, stat) = s
        .create_with(
            &format!("{p}/c"),
            Some(b""),
            &CreateOptions::new(CreateMode::Container),
        )
        .unwrap();
    assert_eq!(stat.ephemeral_owner, 0);
    s.create(&format!("{c}/child"), b"", CreateMode::Persistent)
        .unwrap();
    let (t, stat) = s
        .create_with(
            &format!("{p}/t"),
            Some(b""),
            &CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(3600)),
        )
        .unwrap();
    assert_eq!(stat.ephemeral_owner, 0);
    s.create(&format!("{t}/child"), b"", CreateMode::Persistent)
        .unwrap();
    let (ts, _) = s
        .create_with(
            &format!("{p}/ts-"),
            Some(b""),
            &CreateOptions::new(CreateMode::PersistentSequentialWithTtl)
                .ttl(Duration::from_secs(3600)),
        )
        .unwrap();
    assert_eq!(ts, format!("{p}/ts-0000000002"));
    assert_err(
        s.create_with(
            &format!("{p}/t0"),
            Some(b""),
            &CreateOptions::new(CreateMode::PersistentWithTtl),
        ),
        ErrorKind::BadArguments,
    );
}

/// D.1, D.2: exists on a missing node leaves a watch that sees the create.
pub fn exists_watch_on_missing_node(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "exists-watch");
    catch_up(&*other);
    let a = format!("{p}/a");
    let (w, events) = Watcher::channel();
    assert_eq!(s.exists_with(&a, Some(&w)).unwrap(), None);
    other.create(&a, b"", CreateMode::Persistent).unwrap();
    expect_event(&events, EventType::NodeCreated, &a);
    // getData on a missing node leaves no watch (D.1).
    let b_path = format!("{p}/b");
    assert_err(s.get_data_with(&b_path, Some(&w)), ErrorKind::NoNode);
    other.create(&b_path, b"", CreateMode::Persistent).unwrap();
    expect_quiet(&events);
}

/// D.2: data, delete and child events reach the right watches.
pub fn data_and_child_watches(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "watches");
    let a = format!("{p}/a");
    s.create(&a, b"", CreateMode::Persistent).unwrap();
    catch_up(&*other);
    let (dw, data_events) = Watcher::channel();
    let (cw, child_events) = Watcher::channel();
    s.get_data_with(&a, Some(&dw)).unwrap();
    s.get_children_with(&p, Some(&cw)).unwrap();
    other.set_data(&a, b"1", -1).unwrap();
    expect_event(&data_events, EventType::NodeDataChanged, &a);
    // setACL fires nothing.
    s.get_data_with(&a, Some(&dw)).unwrap();
    other.set_acl(&a, &Acl::open_unsafe(), -1).unwrap();
    expect_quiet(&data_events);
    other
        .create(&format!("{p}/b"), b"", CreateMode::Persistent)
        .unwrap();
    expect_event(&child_events, EventType::NodeChildrenChanged, &p);
    // A child watch on a deleted node sees NodeDeleted; the data watch too.
    let (aw, a_child_events) = Watcher::channel();
    s.get_children_with(&a, Some(&aw)).unwrap();
    other.delete(&a, -1).unwrap();
    expect_event(&data_events, EventType::NodeDeleted, &a);
    expect_event(&a_child_events, EventType::NodeDeleted, &a);
    // The default watcher's events go to events().
    let default = s.default_watcher();
    s.exists_with(&format!("{p}/d"), Some(&default)).unwrap();
    other
        .create(&format!("{p}/d"), b"", CreateMode::Persistent)
        .unwrap();
    let event = next_node_event(&s.events(), EVENT_WAIT).expect("a default-watcher event");
    assert_eq!(event.event_type, EventType::NodeCreated);
    assert_eq!(event.path, Some(format!("{p}/d")));
    assert_eq!(event.state, KeeperState::SyncConnected);
}

/// D.1, D.3: one-shot watches fire once; a watcher registered twice fires once.
pub fn one_shot_watches_fire_once_per_session(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "one-shot");
    let a = format!("{p}/a");
    s.create(&a, b"", CreateMode::Persistent).unwrap();
    catch_up(&*other);
    let (w, events) = Watcher::channel();
    s.get_data_with(&a, Some(&w)).unwrap();
    s.exists_with(&a, Some(&w)).unwrap();
    other.set_data(&a, b"1", -1).unwrap();
    expect_event(&events, EventType::NodeDataChanged, &a);
    expect_quiet(&events);
    other.set_data(&a, b"2", -1).unwrap();
    expect_quiet(&events);
    // Two watchers on one path: each hears the event once.
    let (w1, e1) = Watcher::channel();
    let (w2, e2) = Watcher::channel();
    s.get_data_with(&a, Some(&w1)).unwrap();
    s.get_data_with(&a, Some(&w2)).unwrap();
    other.set_data(&a, b"3", -1).unwrap();
    expect_event(&e1, EventType::NodeDataChanged, &a);
    expect_event(&e2, EventType::NodeDataChanged, &a);
    expect_quiet(&e1);
}

/// D.4: a session sees the event of its own write before that write's reply.
pub fn own_event_precedes_own_reply(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "order");
    let a = format!("{p}/a");
    s.create(&a, b"", CreateMode::Persistent).unwrap();
    for round in 0..20 {
        let (w, events) = Watcher::channel();
        s.get_data_with(&a, Some(&w)).unwrap();
        s.set_data(&a, format!("{round}").as_bytes(), -1).unwrap();
        let event = events.try_recv().expect("event delivered before the reply");
        assert_eq!(event.event_type, EventType::NodeDataChanged);
    }
}

/// D.2, D.3: persistent watches stay; recursive ones see descendants, never child events.
pub fn persistent_and_recursive_watches(b: &dyn Backend) {
    // One session per mode: in 3.8 one (path, session) has a single watch
    // mode on the server, so a later addWatch replaces the earlier (D.3).
    let s = b.session();
    let r = b.session();
    let other = b.session();
    let p = b.root(&*s, "persistent");
    catch_up(&*r);
    catch_up(&*other);
    let (pw, persistent) = Watcher::channel();
    let (rw, recursive) = Watcher::channel();
    s.add_watch(&p, AddWatchMode::Persistent, &pw).unwrap();
    r.add_watch(&p, AddWatchMode::PersistentRecursive, &rw)
        .unwrap();
    let a = format!("{p}/a");
    other.create(&a, b"", CreateMode::Persistent).unwrap();
    expect_event(&persistent, EventType::NodeChildrenChanged, &p);
    expect_event(&recursive, EventType::NodeCreated, &a);
    other.set_data(&a, b"1", -1).unwrap();
    expect_event(&recursive, EventType::NodeDataChanged, &a);
    other.set_data(&p, b"1", -1).unwrap();
    expect_event(&persistent, EventType::NodeDataChanged, &p);
    expect_event(&recursive, EventType::NodeDataChanged, &p);
    other
        .create(&format!("{a}/deep"), b"", CreateMode::Persistent)
        .unwrap();
    expect_event(&recursive, EventType::NodeCreated, &format!("{a}/deep"));
    expect_quiet(&persistent);
    // A watch on a path that does not exist yet is fine.
    let missing = format!("{p}/later/x");
    let (mw, missing_events) = Watcher::channel();
    s.add_watch(&missing, AddWatchMode::Persistent, &mw)
        .unwrap();
    s.remove_watches(&missing, WatcherType::Any, None).unwrap();
    expect_event(&missing_events, EventType::PersistentWatchRemoved, &missing);
    s.remove_watches(&p, WatcherType::Any, Some(&pw)).unwrap();
    expect_event(&persistent, EventType::PersistentWatchRemoved, &p);
    other.set_data(&p, b"2", -1).unwrap();
    expect_quiet(&persistent);
    expect_event(&recursive, EventType::NodeDataChanged, &p);
}

/// D.5: removeWatches / checkWatches and the client-generated removal events.
pub fn remove_and_check_watches(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "remove");
    let a = format!("{p}/a");
    s.create(&a, b"", CreateMode::Persistent).unwrap();
    catch_up(&*other);
    assert_err(
        s.remove_watches(&a, WatcherType::Any, None),
        ErrorKind::NoWatcher,
    );
    let (dw, data_events) = Watcher::channel();
    let (cw, child_events) = Watcher::channel();
    s.get_data_with(&a, Some(&dw)).unwrap();
    s.get_children_with(&a, Some(&cw)).unwrap();
    assert_err(
        s.remove_watches(&a, WatcherType::Children, Some(&dw)),
        ErrorKind::NoWatcher,
    );
    s.remove_watches(&a, WatcherType::Data, Some(&dw)).unwrap();
    expect_event(&data_events, EventType::DataWatchRemoved, &a);
    other.set_data(&a, b"1", -1).unwrap();
    expect_quiet(&data_events);
    s.remove_watches(&a, WatcherType::Children, None).unwrap();
    expect_event(&child_events, EventType::ChildWatchRemoved, &a);
    other
        .create(&format!("{a}/b"), b"", CreateMode::Persistent)
        .unwrap();
    expect_quiet(&child_events);
    assert_err(
        s.remove_watches(&a, WatcherType::Any, None),
        ErrorKind::NoWatcher,
    );
}

/// E.1, E.3: a successful multi applies every op with one zxid.
pub fn multi_success_shape(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "multi-ok");
    let results = s
        .multi(&[
            Op::create(format!("{p}/a"), b"1", CreateMode::Persistent),
            Op::create(format!("{p}/a/s-"), b"", CreateMode::PersistentSequential),
            Op::create(format!("{p}/a/s-"), b"", CreateMode::PersistentSequential),
            Op::set_data(format!("{p}/a"), b"2", 0),
            Op::check(format!("{p}/a"), 1),
            Op::delete(format!("{p}/a/s-0000000000"), -1),
        ])
        .unwrap();
    assert_eq!(results.len(), 6);
    // Apache ZooKeeper 3.8.0 answers a create2 inside a multi without its
    // Stat (result type 1; E.3 says 15), so only the path is compared here.
    let OpResult::Create { path, .. } = &results[0] else {
        panic!("{results:?}")
    };
    assert_eq!(path, &format!("{p}/a"));
    // Every op of a multi has the same zxid (E.1).
    let zxid = s.exists(&format!("{p}/a")).unwrap().unwrap().czxid;
    assert!(
        matches!(&results[1], OpResult::Create { path, .. } if path == &format!("{p}/a/s-0000000000"))
    );
    assert!(
        matches!(&results[2], OpResult::Create { path, .. } if path == &format!("{p}/a/s-0000000001"))
    );
    let OpResult::SetData { stat } = &results[3] else {
        panic!("{results:?}")
    };
    assert_eq!((stat.version, stat.mzxid), (1, zxid));
    assert_eq!(results[4], OpResult::Check);
    assert_eq!(results[5], OpResult::Delete);
    assert_eq!(
        s.get_children(&format!("{p}/a")).unwrap(),
        vec!["s-0000000001"]
    );
    // An empty multi is fine.
    assert_eq!(s.multi(&[]).unwrap(), vec![]);
}

/// E.1, E.3: a failed multi changes nothing and reports per-op results.
pub fn multi_failure_shape(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "multi-fail");
    catch_up(&*other);
    let (w, events) = Watcher::channel();
    other.get_children_with(&p, Some(&w)).unwrap();
    let ops = [
        Op::create(format!("{p}/a"), b"", CreateMode::Persistent),
        Op::set_data(format!("{p}/a"), b"x", 0),
        Op::check(format!("{p}/a"), 7),
        Op::delete(format!("{p}/a"), -1),
    ];
    let results = s.multi_results(&ops).unwrap();
    assert_eq!(
        results,
        vec![
            OpResult::RolledBack,
            OpResult::RolledBack,
            OpResult::Error(ErrorKind::BadVersion),
            OpResult::Error(ErrorKind::RuntimeInconsistency),
        ]
    );
    let err = s.multi(&ops).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadVersion);
    assert_eq!(s.exists(&format!("{p}/a")).unwrap(), None);
    expect_quiet(&events);
    // The sequence counter did not move either.
    let first = s
        .create(&format!("{p}/s-"), b"", CreateMode::PersistentSequential)
        .unwrap();
    assert_eq!(first, format!("{p}/s-0000000000"));
}

/// E.4: multiRead answers each op on its own and sets no watches.
pub fn multi_read_per_op_errors(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "multi-read");
    s.create(&format!("{p}/a"), b"data", CreateMode::Persistent)
        .unwrap();
    let results = s
        .multi_read(&[
            ReadOp::GetData(format!("{p}/a")),
            ReadOp::GetData(format!("{p}/missing")),
            ReadOp::GetChildren(p.clone()),
            ReadOp::GetChildren(format!("{p}/missing")),
        ])
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(
        matches!(&results[0], ReadResult::Data(Some(d), stat) if d == b"data" && stat.data_length == 4)
    );
    assert_eq!(results[1], ReadResult::Error(ErrorKind::NoNode));
    assert_eq!(results[2], ReadResult::Children(vec!["a".to_string()]));
    assert_eq!(results[3], ReadResult::Error(ErrorKind::NoNode));
}

/// G.1–G.4: digest ACLs, the `auth` scheme, NoAuth per op, getACL.
pub fn acls_and_digest_auth(b: &dyn Backend) {
    let owner = b.session();
    let stranger = b.session();
    let p = b.root(&*owner, "acl");
    owner.add_auth("digest", b"alice:secret").unwrap();
    let locked = format!("{p}/locked");
    let digest = Acl::digest(Perms::ALL, "alice", "secret");
    owner
        .create_with(
            &locked,
            Some(b"x"),
            &CreateOptions::new(CreateMode::Persistent).acl(vec![digest.clone()]),
        )
        .unwrap();
    catch_up(&*stranger);
    assert_err(stranger.get_data(&locked), ErrorKind::NoAuth);
    assert_err(stranger.set_data(&locked, b"y", -1), ErrorKind::NoAuth);
    assert_err(
        stranger.create(&format!("{locked}/c"), b"", CreateMode::Persistent),
        ErrorKind::NoAuth,
    );
    assert_err(
        stranger.set_acl(&locked, &Acl::open_unsafe(), -1),
        ErrorKind::NoAuth,
    );
    // `exists` needs no permission in ZooKeeper 3.8: the Stat comes back
    // (and a watch is set) even on a node the caller may not READ.
    let stat = stranger
        .exists(&locked)
        .unwrap()
        .expect("exists answers the Stat");
    assert_eq!(stat.data_length, 1);
    assert_eq!(owner.get_data(&locked).unwrap().0, b"x");
    let (acl, _) = owner.get_acl(&locked).unwrap();
    assert_eq!(acl, vec![digest.clone()]);
    // The `auth` scheme expands to the caller's authenticated identities (G.3).
    let creator = format!("{p}/creator");
    owner
        .create_with(
            &creator,
            Some(b""),
            &CreateOptions::new(CreateMode::Persistent).acl(Acl::creator_all()),
        )
        .unwrap();
    assert_eq!(owner.get_acl(&creator).unwrap().0, vec![digest]);
    // A second session with the same credential gets in.
    stranger.add_auth("digest", b"alice:secret").unwrap();
    assert_eq!(stranger.get_data(&locked).unwrap().0, b"x");
    // Deleting needs DELETE on the parent, which is open.
    stranger.delete(&locked, -1).unwrap();
}

/// G.4: ACL fix-up errors.
pub fn acl_fixup_errors(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "acl-fixup");
    let options = |acl: Vec<Acl>| CreateOptions::new(CreateMode::Persistent).acl(acl);
    let a = format!("{p}/a");
    assert_err(
        s.create_with(&a, Some(b""), &options(vec![])),
        ErrorKind::InvalidAcl,
    );
    assert_err(
        s.create_with(&a, Some(b""), &options(Acl::creator_all())),
        ErrorKind::InvalidAcl,
    );
    let bad_world = Acl::new(Perms::ALL, Id::new("world", "someone"));
    assert_err(
        s.create_with(&a, Some(b""), &options(vec![bad_world])),
        ErrorKind::InvalidAcl,
    );
    let unknown = Acl::new(Perms::ALL, Id::new("nosuchscheme", "x"));
    assert_err(
        s.create_with(&a, Some(b""), &options(vec![unknown])),
        ErrorKind::InvalidAcl,
    );
    s.create(&a, b"", CreateMode::Persistent).unwrap();
    assert_err(s.set_acl(&a, &[], -1), ErrorKind::InvalidAcl);
    // Duplicates are dropped (G.4).
    let read = Acl::new(Perms::READ, Id::anyone());
    s.set_acl(&a, &[read.clone(), read.clone()], -1).unwrap();
    assert_eq!(s.get_acl(&a).unwrap().0, vec![read]);
}

/// G.3: whoAmI lists the identities; an unknown scheme is refused.
pub fn who_am_i_and_auth_failure(b: &dyn Backend) {
    let s = b.session();
    let before = s.who_am_i().unwrap();
    s.add_auth("digest", b"bob:pw").unwrap();
    let after = s.who_am_i().unwrap();
    let digest: Vec<_> = after.iter().filter(|c| c.auth_scheme == "digest").collect();
    assert_eq!(digest.len(), 1);
    assert_eq!(digest[0].user, "bob");
    if b.is_in_process() {
        // By design: an in-process session has no connection, so no `ip:`
        // identity (a wire connection has one, G.3). `Keeper::session_with`
        // gives a session initial identities where a test needs them.
        assert!(before.is_empty(), "{before:?}");
    } else {
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!(before[0].auth_scheme, "ip");
    }
    let failed = s.add_auth("nosuchscheme", b"x");
    assert_eq!(failed.unwrap_err().kind(), ErrorKind::AuthFailed);
    assert_eq!(s.state(), KeeperState::AuthFailed);
    assert_err(s.exists("/"), ErrorKind::AuthFailed);
}

/// A.2, F.2: getAllChildrenNumber, getEphemerals and sync.
pub fn counts_ephemerals_and_sync(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "counts");
    catch_up(&*other);
    s.create(&format!("{p}/a"), b"", CreateMode::Persistent)
        .unwrap();
    s.create(&format!("{p}/a/b"), b"", CreateMode::Ephemeral)
        .unwrap();
    s.create(&format!("{p}/c"), b"", CreateMode::Ephemeral)
        .unwrap();
    other
        .create(&format!("{p}/d"), b"", CreateMode::Ephemeral)
        .unwrap();
    catch_up(&*s);
    assert_eq!(s.get_all_children_number(&p).unwrap(), 4);
    assert_eq!(s.get_all_children_number(&format!("{p}/c")).unwrap(), 0);
    assert_err(
        s.get_all_children_number(&format!("{p}/missing")),
        ErrorKind::NoNode,
    );
    let mut mine = s.get_ephemerals(&p).unwrap();
    mine.sort();
    assert_eq!(mine, vec![format!("{p}/a/b"), format!("{p}/c")]);
    assert_eq!(other.get_ephemerals(&p).unwrap(), vec![format!("{p}/d")]);
    assert_err(
        other.get_ephemerals(&format!("{p}/")),
        ErrorKind::InvalidPath,
    );
    // The prefix is a string prefix, not a path prefix.
    assert_eq!(
        s.get_ephemerals(&format!("{p}/a")).unwrap(),
        vec![format!("{p}/a/b")]
    );
    s.sync(&p).unwrap();
    other.set_data(&p, b"after", -1).unwrap();
    s.sync(&p).unwrap();
    assert_eq!(s.get_data(&p).unwrap().0, b"after");
}

/// I.1 (chroot): paths are relative to the chroot in requests, replies and
/// events; getEphemerals is neither prefixed nor stripped, as in the Java client.
pub fn chroot_is_invisible(b: &dyn Backend) {
    let s = b.session();
    let root = b.root(&*s, "chroot");
    let Some(c) = b.session_in(&root) else {
        return;
    };
    catch_up(&*c);
    assert_eq!(c.create("/a", b"x", CreateMode::Persistent).unwrap(), "/a");
    catch_up(&*s);
    assert_eq!(s.get_data(&format!("{root}/a")).unwrap().0, b"x");
    assert_eq!(c.get_children("/").unwrap(), vec!["a"]);
    let (w, events) = Watcher::channel();
    c.get_children_with("/a", Some(&w)).unwrap();
    s.create(&format!("{root}/a/b"), b"", CreateMode::Persistent)
        .unwrap();
    expect_event(&events, EventType::NodeChildrenChanged, "/a");
    let results = c
        .multi(&[Op::create("/m-", b"", CreateMode::EphemeralSequential)])
        .unwrap();
    assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/m-0000000001"));
    assert_eq!(
        c.get_ephemerals("/").unwrap(),
        vec![format!("{root}/m-0000000001")]
    );
    c.delete_all("/a").unwrap();
    catch_up(&*s);
    assert_eq!(s.get_children(&root).unwrap(), vec!["m-0000000001"]);
}

/// G.4: without ADMIN, getACL masks digest ids to `user:x`; with it, not.
pub fn get_acl_masks_digests_without_admin(b: &dyn Backend) {
    let owner = b.session();
    let reader = b.session();
    let p = b.root(&*owner, "acl-mask");
    owner.add_auth("digest", b"carol:pw").unwrap();
    let digest = Acl::digest(Perms::ALL, "carol", "pw");
    let world_read = Acl::new(Perms::READ, Id::anyone());
    let node = format!("{p}/n");
    owner
        .create_with(
            &node,
            Some(b""),
            &CreateOptions::new(CreateMode::Persistent)
                .acl(vec![digest.clone(), world_read.clone()]),
        )
        .unwrap();
    assert_eq!(
        owner.get_acl(&node).unwrap().0,
        vec![digest.clone(), world_read.clone()]
    );
    catch_up(&*reader);
    let seen = reader.get_acl(&node).unwrap().0;
    let masked = Acl::new(Perms::ALL, Id::new("digest", "carol:x"));
    assert_eq!(seen, vec![masked, world_read]);
}

/// C.6: a closed session tells its default stream and every watcher `Closed`.
pub fn closing_tells_watchers(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "closing");
    let events = s.events();
    let (w, watch_events) = Watcher::channel();
    s.exists_with(&format!("{p}/x"), Some(&w)).unwrap();
    drop(s);
    let last = events.try_iter().last().expect("a state event");
    assert_eq!(
        (last.event_type, last.state),
        (EventType::None, KeeperState::Closed)
    );
    let event = watch_events.try_recv().expect("Closed to the watcher");
    assert_eq!(event.state, KeeperState::Closed);
}

/// B.2, H.6: getChildren2's Stat is the parent's, as exists reports it.
pub fn get_children_stat_is_the_parents(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "children-stat");
    for name in ["b", "a", "c"] {
        s.create(&format!("{p}/{name}"), b"", CreateMode::Persistent)
            .unwrap();
    }
    let (children, stat) = s.get_children_with(&p, None).unwrap();
    assert_eq!(children, vec!["a", "b", "c"]);
    assert_eq!(stat, s.exists(&p).unwrap().unwrap());
    assert_eq!((stat.num_children, stat.cversion), (3, 3));
}

/// A.2: nothing stops a client from creating nodes under `/zookeeper`.
pub fn nodes_may_be_created_under_zookeeper(b: &dyn Backend) {
    let s = b.session();
    let path = s
        .create(
            "/zookeeper/conformance-",
            b"",
            CreateMode::EphemeralSequential,
        )
        .unwrap();
    assert!(path.starts_with("/zookeeper/conformance-"), "{path}");
    s.delete(&path, -1).unwrap();
}

/// A.3: TTL arguments: a TTL mode needs 1 ..= 2^40-1 ms.
pub fn ttl_bounds(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "ttl-bounds");
    let ttl =
        |ms: u64| CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_millis(ms));
    assert_err(
        s.create_with(&format!("{p}/zero"), Some(b""), &ttl(0)),
        ErrorKind::BadArguments,
    );
    assert_err(
        s.create_with(&format!("{p}/huge"), Some(b""), &ttl(1 << 40)),
        ErrorKind::BadArguments,
    );
    s.create_with(&format!("{p}/max"), Some(b""), &ttl((1 << 40) - 1))
        .unwrap();
    s.create_with(&format!("{p}/one"), Some(b""), &ttl(1))
        .unwrap();
}

/// E.2, E.3: check ops in a multi: NoNode for a missing node, −1 for any version.
pub fn multi_check_ops(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "multi-check");
    let results = s
        .multi_results(&[
            Op::check(p.clone(), -1),
            Op::check(format!("{p}/missing"), -1),
        ])
        .unwrap();
    assert_eq!(
        results,
        vec![OpResult::RolledBack, OpResult::Error(ErrorKind::NoNode)]
    );
    assert_eq!(
        s.multi(&[Op::check(p.clone(), 0)]).unwrap(),
        vec![OpResult::Check]
    );
    // A multi of one failing op fails with that op's error.
    let err = s
        .multi(&[Op::delete(format!("{p}/missing"), -1)])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoNode);
    // A multi may create a node and a child under it, then delete both.
    let results = s
        .multi(&[
            Op::create(format!("{p}/a"), b"", CreateMode::Persistent),
            Op::create(format!("{p}/a/b"), b"", CreateMode::Ephemeral),
            Op::delete(format!("{p}/a/b"), -1),
            Op::delete(format!("{p}/a"), -1),
        ])
        .unwrap();
    assert_eq!(results.len(), 4);
    let stat = s.exists(&p).unwrap().unwrap();
    assert_eq!((stat.num_children, stat.cversion), (0, 2));
}

/// D.2: one session's events come in the order of the table: a create's
/// NodeCreated before its parent's NodeChildrenChanged, a delete's
/// NodeDeleted before it, and a multi's ops in op order.
pub fn event_order_within_a_session(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "event-order");
    catch_up(&*other);
    let a = format!("{p}/a");
    let (w, events) = Watcher::channel();
    s.exists_with(&a, Some(&w)).unwrap();
    s.get_children_with(&p, Some(&w)).unwrap();
    other.create(&a, b"", CreateMode::Persistent).unwrap();
    expect_event(&events, EventType::NodeCreated, &a);
    expect_event(&events, EventType::NodeChildrenChanged, &p);
    s.exists_with(&a, Some(&w)).unwrap();
    s.get_children_with(&p, Some(&w)).unwrap();
    other.delete(&a, -1).unwrap();
    expect_event(&events, EventType::NodeDeleted, &a);
    expect_event(&events, EventType::NodeChildrenChanged, &p);
    let x = format!("{p}/x");
    let y = format!("{p}/y");
    s.exists_with(&y, Some(&w)).unwrap();
    s.exists_with(&x, Some(&w)).unwrap();
    other
        .multi(&[
            Op::create(y.clone(), b"", CreateMode::Persistent),
            Op::create(x.clone(), b"", CreateMode::Persistent),
        ])
        .unwrap();
    expect_event(&events, EventType::NodeCreated, &y);
    expect_event(&events, EventType::NodeCreated, &x);
    expect_quiet(&events);
}

/// D.3 (3.8 quirk): one (path, session) has one mode on the server, so a
/// one-shot read watch on a path with a persistent watch turns it into a
/// one-shot watch: after the next event the persistent watcher hears no more.
pub fn a_read_watch_downgrades_a_persistent_one(b: &dyn Backend) {
    let s = b.session();
    let other = b.session();
    let p = b.root(&*s, "downgrade");
    catch_up(&*other);
    let (pw, persistent) = Watcher::channel();
    let (rw, one_shot) = Watcher::channel();
    s.add_watch(&p, AddWatchMode::Persistent, &pw).unwrap();
    s.get_data_with(&p, Some(&rw)).unwrap();
    other.set_data(&p, b"1", -1).unwrap();
    expect_event(&persistent, EventType::NodeDataChanged, &p);
    expect_event(&one_shot, EventType::NodeDataChanged, &p);
    other.set_data(&p, b"2", -1).unwrap();
    expect_quiet(&persistent);
    // Children events still come: only the data table's entry was downgraded.
    other
        .create(&format!("{p}/c"), b"", CreateMode::Persistent)
        .unwrap();
    expect_event(&persistent, EventType::NodeChildrenChanged, &p);
}

/// Many threads share one session; each call gets its own reply (H.5: the
/// replies come in request order and are matched by xid).
pub fn concurrent_calls_share_one_session(b: &dyn Backend) {
    let s: std::sync::Arc<dyn innkeeper::Coordinator> = std::sync::Arc::from(b.session());
    let p = b.root(&*s, "concurrent");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = std::sync::Arc::clone(&s);
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let path = format!("{p}/t{t}-{i}");
                    let data = format!("{t}:{i}");
                    assert_eq!(
                        s.create(&path, data.as_bytes(), CreateMode::Persistent)
                            .unwrap(),
                        path
                    );
                    assert_eq!(s.get_data(&path).unwrap().0, data.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.get_children(&p).unwrap().len(), 400);
    assert_eq!(s.get_all_children_number(&p).unwrap(), 400);
}

/// A callback watcher runs off the session's I/O path and may call the
/// session it watches (the Java client's event thread does the same).
pub fn callbacks_may_call_the_session(b: &dyn Backend) {
    let s: std::sync::Arc<dyn innkeeper::Coordinator> = std::sync::Arc::from(b.session());
    let other = b.session();
    let p = b.root(&*s, "callback");
    catch_up(&*other);
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let weak = std::sync::Arc::downgrade(&s);
    let callback = Watcher::callback(move |event| {
        if event.event_type != EventType::NodeDataChanged {
            return;
        }
        if let (Some(s), Some(path)) = (weak.upgrade(), event.path) {
            let _ = done_tx.send(s.get_data(&path).map(|(d, _)| d));
        }
    });
    s.get_data_with(&p, Some(&callback)).unwrap();
    other.set_data(&p, b"from-callback", -1).unwrap();
    let read = done.recv_timeout(EVENT_WAIT).expect("the callback ran");
    assert_eq!(read.unwrap(), b"from-callback");
}

/// E.4, G.1: a multiRead op without READ fails alone with NoAuth.
pub fn multi_read_checks_acls_per_op(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "multi-read-acl");
    let locked = format!("{p}/locked");
    s.create_with(
        &locked,
        Some(b"x"),
        &CreateOptions::new(CreateMode::Persistent).acl(vec![Acl::new(Perms::WRITE, Id::anyone())]),
    )
    .unwrap();
    let results = s
        .multi_read(&[
            ReadOp::GetData(locked.clone()),
            ReadOp::GetChildren(locked.clone()),
            ReadOp::GetChildren(p.clone()),
        ])
        .unwrap();
    assert_eq!(
        results,
        vec![
            ReadResult::Error(ErrorKind::NoAuth),
            ReadResult::Error(ErrorKind::NoAuth),
            ReadResult::Children(vec!["locked".into()]),
        ]
    );
}

/// D.1, D.5: an exists watch on a missing node is removable as a data watch.
pub fn exist_watches_are_data_watches_for_removal(b: &dyn Backend) {
    let s = b.session();
    let p = b.root(&*s, "exist-remove");
    let x = format!("{p}/x");
    let (w, events) = Watcher::channel();
    assert_eq!(s.exists_with(&x, Some(&w)).unwrap(), None);
    assert_err(
        s.remove_watches(&x, WatcherType::Children, None),
        ErrorKind::NoWatcher,
    );
    s.remove_watches(&x, WatcherType::Data, None).unwrap();
    expect_event(&events, EventType::DataWatchRemoved, &x);
    s.create(&x, b"", CreateMode::Persistent).unwrap();
    expect_quiet(&events);
}

/// C.6, I.1: a new session's default watcher hears `SyncConnected` first
/// (zkCli prints `WatchedEvent state:SyncConnected type:None path:null`).
pub fn a_new_session_reports_sync_connected(b: &dyn Backend) {
    let s = b.session();
    let first = s.events().try_recv();
    let first = first.expect("SyncConnected on connect");
    assert_eq!(
        (first.event_type, first.state, first.path),
        (EventType::None, KeeperState::SyncConnected, None)
    );
    assert_eq!(s.state(), KeeperState::SyncConnected);
}

/// D.4: a watch set by a read hears a change that races with the read. The
/// read's reply and the notification of a later delete must arrive in that
/// order, or a client drops the event (no watcher registered yet) and then
/// learns from the reply that the node exists: a lock waiter would wait for
/// ever. Run many times, with the delete on another session and thread; the
/// race is narrow, so this check is probabilistic (it found the bug in
/// `innkeeper serve` only through the lock recipe's stress test).
pub fn a_read_watch_hears_a_racing_delete(b: &dyn Backend) {
    let reader = b.session();
    let root = b.root(&*reader, "race");
    let writer: std::sync::Arc<dyn Coordinator> = std::sync::Arc::from(b.session());
    for round in 0..500 {
        let node = format!("{root}/n{round}");
        writer.create(&node, b"", CreateMode::Persistent).unwrap();
        let (watcher, events) = Watcher::channel();
        let deleter = {
            let (writer, node) = (writer.clone(), node.clone());
            std::thread::spawn(move || writer.delete(&node, -1).unwrap())
        };
        let seen = reader.exists_with(&node, Some(&watcher)).unwrap();
        deleter.join().unwrap();
        if seen.is_some() {
            let event = events.wait(EVENT_WAIT).unwrap_or_else(|| {
                panic!("round {round}: the read saw the node but its deletion was never heard")
            });
            assert_eq!(event.event_type, EventType::NodeDeleted);
        }
    }
}
