//! Sessions surviving the loss of a server, and the session rules of
//! reconnects (`docs/zookeeper-semantics.md` C.5, C.6, D.6, I.1).
//!
//! The failover test runs when `INNKEEPER_ZK_ENSEMBLE` names a 3-server
//! ensemble and `INNKEEPER_ZK_CTL` names a script with `server-stop N` and
//! `server-start N` commands (`.ci/zookeeper.sh`), N being the server's
//! position (1-based) in the connect string. The resume checks need only
//! `INNKEEPER_ZK`.

use std::process::Command;
use std::time::{Duration, Instant};

use innkeeper::{
    Acl, AddWatchMode, Coordinator, CreateMode, CreateOptions, ErrorKind, EventType, KeeperState,
    Perms, RemoteSession, Watcher,
};

use crate::{Backend, Remote, EVENT_WAIT};

fn ctl(script: &str, command: &str, n: usize) {
    ctl_args(script, &[command, &n.to_string()]);
}

fn ctl_args(script: &str, args: &[&str]) {
    let status = Command::new(script)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(status.success(), "{script} {args:?}: {status}");
}

/// Runs `op` until it does not fail with ConnectionLoss (for 30 s at most):
/// a session whose server is stopped, or loses its leader, sees in-flight
/// calls fail with ConnectionLoss and then reconnects (C.6).
#[track_caller]
fn retry<T>(mut op: impl FnMut() -> innkeeper::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) if e.kind() == ErrorKind::ConnectionLoss && Instant::now() < deadline => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// Waits for a state event on the session's default stream.
#[track_caller]
fn wait_state(session: &RemoteSession, state: KeeperState, wait: Duration) {
    let events = session.events();
    let deadline = Instant::now() + wait;
    loop {
        match events.recv_deadline(deadline) {
            Some(e) if e.event_type == EventType::None && e.state == state => return,
            Some(_) => {}
            None => panic!(
                "no {state:?} within {wait:?}; state is {:?}",
                session.state()
            ),
        }
    }
}

/// The ensemble and its control script, and a guard that keeps the tests
/// that stop servers from running at the same time (two servers down is no quorum).
fn ensemble() -> (String, String, std::sync::MutexGuard<'static, ()>) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (Ok(ensemble), Ok(script)) = (
        std::env::var("INNKEEPER_ZK_ENSEMBLE"),
        std::env::var("INNKEEPER_ZK_CTL"),
    ) else {
        panic!("INNKEEPER_ZK_ENSEMBLE and INNKEEPER_ZK_CTL must be set for the failover tests");
    };
    let guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The previous test may have left an election going on.
    ctl_args(&script, &["ensemble-wait"]);
    (ensemble, script, guard)
}

/// The 1-based position of the session's server in the connect string.
fn server_number(session: &RemoteSession, ensemble: &str) -> (String, usize) {
    let server = session.server().expect("connected");
    let n = ensemble
        .split(',')
        .position(|h| h == server)
        .expect("server in list")
        + 1;
    (server, n)
}

#[test]
#[ignore = "needs INNKEEPER_ZK_ENSEMBLE and INNKEEPER_ZK_CTL; .ci/conformance.sh runs it"]
fn session_ephemerals_watches_and_lock_survive_the_loss_of_a_server() {
    let (ensemble, script, _one_at_a_time) = ensemble();
    let backend = Remote(ensemble.clone());
    let s = RemoteSession::builder(&ensemble)
        .session_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(30))
        .connect()
        .unwrap();
    let observer = Remote::connect(&ensemble);
    let session_id = s.session_id();
    let root = backend.root(&s, "failover");
    // A lock the simple way: the lowest ephemeral sequential child holds it.
    let lock = s
        .create(
            &format!("{root}/lock-"),
            b"",
            CreateMode::EphemeralSequential,
        )
        .unwrap();
    observer.sync("/").unwrap();
    assert_eq!(
        observer.get_children(&root).unwrap(),
        vec![&lock[root.len() + 1..]]
    );
    // A node only the session's credential can read (auth is re-sent, I.1).
    s.add_auth("digest", b"failover:pw").unwrap();
    let secret = format!("{root}/secret");
    let acl = vec![Acl::digest(Perms::ALL, "failover", "pw")];
    s.create_with(
        &secret,
        Some(b"s"),
        &CreateOptions::new(CreateMode::Persistent).acl(acl),
    )
    .unwrap();
    let (dw, data_events) = Watcher::channel();
    s.get_data_with(&root, Some(&dw)).unwrap();
    let (rw, recursive_events) = Watcher::channel();
    s.add_watch(&root, AddWatchMode::PersistentRecursive, &rw)
        .unwrap();
    let (ew, exist_events) = Watcher::channel();
    let later = format!("{root}/later");
    assert_eq!(s.exists_with(&later, Some(&ew)).unwrap(), None);
    // Drain SyncConnected from the default stream.
    while s.events().try_recv().is_some() {}

    let (server, n) = server_number(&s, &ensemble);
    let started = Instant::now();
    ctl(&script, "server-stop", n);
    wait_state(&s, KeeperState::Disconnected, Duration::from_secs(15));
    // The watcher hears it too (C.6).
    let state_event = data_events
        .wait(EVENT_WAIT)
        .expect("Disconnected to watchers");
    assert_eq!(state_event.state, KeeperState::Disconnected);
    // A call made while disconnected waits for the reconnect.
    let during = s.get_children(&root).unwrap();
    wait_state(&s, KeeperState::SyncConnected, Duration::from_secs(20));
    let failover = started.elapsed();
    eprintln!(
        "failover from {server} to {:?} took {failover:?}",
        s.server()
    );
    assert!(
        during.iter().any(|c| *c == lock[root.len() + 1..]),
        "{during:?}"
    );
    assert_ne!(s.server().as_deref(), Some(server.as_str()));
    assert_eq!(s.session_id(), session_id);
    assert_eq!(s.state(), KeeperState::SyncConnected);
    let state_event = data_events
        .wait(EVENT_WAIT)
        .expect("SyncConnected to watchers");
    assert_eq!(state_event.state, KeeperState::SyncConnected);

    // Ephemerals and the lock are still there and still ours.
    retry(|| observer.sync("/"));
    assert_eq!(
        retry(|| observer.exists(&lock)).map(|st| st.ephemeral_owner),
        Some(session_id)
    );
    assert_eq!(s.get_ephemerals(&root).unwrap(), vec![lock.clone()]);
    let mut children = retry(|| observer.get_children(&root));
    children.sort();
    assert_eq!(format!("{root}/{}", children[0]), lock, "the lock is held");

    // The credential came along.
    assert_eq!(s.get_data(&secret).unwrap().0, b"s");
    retry(|| match observer.get_data(&secret) {
        Err(e) if e.kind() == ErrorKind::NoAuth => Ok(()),
        other => other.map(|_| panic!("read without the credential")),
    });

    // Watches were re-registered with SetWatches (D.6).
    while recursive_events.try_recv().is_some() {}
    retry(|| observer.set_data(&root, b"after", -1));
    let event = data_events
        .wait(EVENT_WAIT)
        .expect("data watch after failover");
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeDataChanged, Some(root.as_str()))
    );
    let event = recursive_events.wait(EVENT_WAIT).expect("recursive watch");
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    while exist_events.try_recv().is_some() {}
    observer
        .create(&later, b"", CreateMode::Persistent)
        .unwrap();
    let event = exist_events
        .wait(EVENT_WAIT)
        .expect("exist watch after failover");
    assert_eq!(event.event_type, EventType::NodeCreated);

    ctl(&script, "server-start", n);
    // Closing releases the lock for everyone.
    s.close().unwrap();
    retry(|| observer.sync("/"));
    assert_eq!(retry(|| observer.exists(&lock)), None);
    let cleaner = Remote::connect(&ensemble);
    cleaner.add_auth("digest", b"failover:pw").unwrap();
    cleaner.delete_all(&root).unwrap();
}

/// C.3: a server that hangs with its socket open is noticed by the read
/// timeout (2/3 of the session timeout without hearing anything, pings
/// included); the session moves to another server and survives.
#[test]
#[ignore = "needs INNKEEPER_ZK_ENSEMBLE and INNKEEPER_ZK_CTL; .ci/conformance.sh runs it"]
fn a_hung_server_is_left_after_the_read_timeout() {
    let (ensemble, script, _one_at_a_time) = ensemble();
    let s = RemoteSession::builder(&ensemble)
        .session_timeout(Duration::from_secs(6))
        .request_timeout(Duration::from_secs(20))
        .connect()
        .unwrap();
    let observer = Remote::connect(&ensemble);
    let root = Remote(ensemble.clone()).root(&s, "hung");
    let e = s
        .create(&format!("{root}/e"), b"", CreateMode::Ephemeral)
        .unwrap();
    let (dw, data_events) = Watcher::channel();
    s.get_data_with(&root, Some(&dw)).unwrap();
    while s.events().try_recv().is_some() {}
    let (server, n) = server_number(&s, &ensemble);
    // A writer pinned to another server changes the watched node while the
    // session is stuck: the event reaches it after the reconnect, from the
    // SetWatches catch-up if the change came first (D.6).
    let elsewhere = ensemble.split(',').find(|h| *h != server).unwrap();
    let writer = RemoteSession::builder(elsewhere)
        .session_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(30))
        .connect()
        .unwrap();
    let read_timeout = s.timeout() * 2 / 3;
    let started = Instant::now();
    ctl(&script, "server-pause", n);
    let write = {
        let root = root.clone();
        // Freezing the leader costs the others an election; the writer may
        // lose its connection meanwhile, so it retries.
        std::thread::spawn(move || retry(|| writer.set_data(&root, b"while-hung", -1)))
    };
    wait_state(&s, KeeperState::Disconnected, Duration::from_secs(15));
    let noticed = started.elapsed();
    write.join().unwrap();
    ctl(&script, "server-resume", n);
    eprintln!(
        "hung {server} noticed after {noticed:?} (read timeout {read_timeout:?}); now on {:?}",
        s.server()
    );
    assert!(
        noticed >= read_timeout - Duration::from_millis(500),
        "{noticed:?}"
    );
    assert!(
        noticed < read_timeout + Duration::from_secs(3),
        "{noticed:?}"
    );
    wait_state(&s, KeeperState::SyncConnected, Duration::from_secs(20));
    let event = crate::next_node_event(&data_events, Duration::from_secs(10))
        .expect("the change made while the session was stuck");
    assert_eq!(
        (event.event_type, event.path.as_deref()),
        (EventType::NodeDataChanged, Some(root.as_str()))
    );
    retry(|| observer.sync("/"));
    assert_eq!(
        retry(|| observer.exists(&e)).map(|st| st.ephemeral_owner),
        Some(s.session_id())
    );
    s.close().unwrap();
    retry(|| observer.delete_all(&root));
}

#[test]
#[ignore = "needs INNKEEPER_ZK=HOST:PORT; .ci/conformance.sh runs it"]
fn resuming_with_a_wrong_password_is_expired() {
    let backend = crate::remote_or_fail();
    let s = Remote::connect(&backend.0);
    let err = RemoteSession::builder(&backend.0)
        .session_timeout(Duration::from_secs(10))
        .resume(s.session_id(), &[0u8; 16])
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionExpired);
    // ZooKeeper closes the session's other connection before it checks the
    // password (C.1 step 6); the owner reconnects and keeps its session.
    // A request in flight when that happens fails with ConnectionLoss, as
    // in the Java client; a retry goes through once the session is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.exists("/") {
            Ok(stat) => break assert!(stat.is_some()),
            Err(e) if e.kind() == ErrorKind::ConnectionLoss && Instant::now() < deadline => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(s.state(), KeeperState::SyncConnected);
}

#[test]
#[ignore = "needs INNKEEPER_ZK=HOST:PORT; .ci/conformance.sh runs it"]
fn closed_remote_sessions_refuse_work_and_resume_fails() {
    let backend = crate::remote_or_fail();
    let s = Remote::connect(&backend.0);
    let (id, password) = (s.session_id(), s.password());
    s.close().unwrap();
    assert_eq!(s.state(), KeeperState::Closed);
    assert_eq!(s.exists("/").unwrap_err().kind(), ErrorKind::SessionExpired);
    let err = RemoteSession::builder(&backend.0)
        .resume(id, &password)
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionExpired);
    let closed_event = s.events().try_iter().last().expect("a Closed event");
    assert_eq!(closed_event.state, KeeperState::Closed);
}

/// C.1: the server clamps the requested timeout into its range
/// (2 to 20 ticks; `.ci/zookeeper.sh` runs with a 1 s tick).
#[test]
#[ignore = "needs INNKEEPER_ZK=HOST:PORT; .ci/conformance.sh runs it"]
fn timeouts_are_negotiated() {
    let backend = crate::remote_or_fail();
    let short = RemoteSession::connect(&backend.0, Duration::from_millis(10)).unwrap();
    let long = RemoteSession::connect(&backend.0, Duration::from_secs(3600)).unwrap();
    assert!(
        short.timeout() > Duration::from_millis(10),
        "{:?}",
        short.timeout()
    );
    assert!(
        long.timeout() < Duration::from_secs(3600),
        "{:?}",
        long.timeout()
    );
    assert!(short.timeout() < long.timeout());
}

/// C.5, C.6: a session closed through another handle is reported Expired
/// to the first one when it reconnects, and its calls fail with SessionExpired.
#[test]
#[ignore = "needs INNKEEPER_ZK=HOST:PORT; .ci/conformance.sh runs it"]
fn a_session_closed_elsewhere_is_reported_expired() {
    let backend = crate::remote_or_fail();
    let s = Remote::connect(&backend.0);
    let (w, watch_events) = Watcher::channel();
    s.exists_with("/conformance-never-created", Some(&w))
        .unwrap();
    let (id, password) = (s.session_id(), s.password());
    // Resuming the session elsewhere closes this handle's connection; closing
    // it there ends the session. The two handles may take the connection
    // from each other a few times before the close gets through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.state() != KeeperState::Expired {
        assert!(Instant::now() < deadline, "never expired: {:?}", s.state());
        if let Ok(other) = RemoteSession::builder(&backend.0)
            .resume(id, &password)
            .connect()
        {
            let _ = other.close();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.exists("/").unwrap_err().kind(), ErrorKind::SessionExpired);
    let states: Vec<_> = watch_events.drain().into_iter().map(|e| e.state).collect();
    assert_eq!(states.last(), Some(&KeeperState::Expired), "{states:?}");
}
