//! One conformance suite for every backend of [`Coordinator`].
//!
//! Each check is written once against `&dyn Backend` and cites the section
//! of `docs/zookeeper-semantics.md` it checks. The `conformance!` macro turns a
//! check into one test per backend:
//!
//! * `in_process`: a fresh `Keeper::in_memory()`; always runs.
//! * `served`: [`innkeeper::RemoteSession`] over the wire to an
//!   `innkeeper serve` started in this process on a loopback port; always runs.
//! * `remote`: [`innkeeper::RemoteSession`] against the server(s) named by
//!   `INNKEEPER_ZK` (a connect string: Apache ZooKeeper 3.8, or a running
//!   `innkeeper serve`); ignored unless asked for (`-- --include-ignored`),
//!   so a run without a server reports them as ignored, not passed, and
//!   fails if they are asked for without `INNKEEPER_ZK`.
//!
//! ZooKeeper is the reference: where the in-process engine differs today,
//! the check asserts ZooKeeper's behaviour for the remote backend and the
//! engine's current behaviour behind `b.is_in_process()` with a `FIXME`
//! that names the disagreement.
//!
//! Checks share one server, so each works below its own fresh root node.
//! `failover.rs` holds the ensemble tests (`INNKEEPER_ZK_ENSEMBLE`).

mod checks;
mod failover;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use innkeeper::{
    Coordinator, CreateMode, EventType, Keeper, RemoteSession, WatchReceiver, WatchedEvent,
};

/// How long a check waits for an event that must come.
pub const EVENT_WAIT: Duration = Duration::from_secs(5);
/// How long a check waits to be sure an event does not come.
pub const QUIET_WAIT: Duration = Duration::from_millis(300);

/// Something that hands out sessions on one shared namespace.
pub trait Backend {
    /// A new session.
    fn session(&self) -> Box<dyn Coordinator>;

    /// A new session whose paths are relative to `chroot`, if the backend
    /// supports chroots (only connect strings do).
    fn session_in(&self, chroot: &str) -> Option<Box<dyn Coordinator>>;

    /// True for the in-process engine, where known disagreements are asserted as they are today.
    fn is_in_process(&self) -> bool;

    /// A fresh, empty persistent node for one check, created by `session`.
    fn root(&self, session: &dyn Coordinator, check: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = format!(
            "/conformance-{check}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        session
            .create(&path, b"", CreateMode::Persistent)
            .expect("create the check's root");
        path
    }
}

/// The in-process engine.
pub struct InProcess(Keeper);

impl Backend for InProcess {
    fn session(&self) -> Box<dyn Coordinator> {
        Box::new(self.0.session().expect("in-process session"))
    }

    fn session_in(&self, _chroot: &str) -> Option<Box<dyn Coordinator>> {
        None
    }

    fn is_in_process(&self) -> bool {
        true
    }
}

/// A server or ensemble reached through [`RemoteSession`].
pub struct Remote(pub String);

impl Remote {
    /// A session with the suite's timeouts.
    pub fn connect(connect_string: &str) -> RemoteSession {
        RemoteSession::builder(connect_string)
            .session_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(15))
            .connect()
            .unwrap_or_else(|e| panic!("connect to {connect_string}: {e}"))
    }
}

impl Backend for Remote {
    fn session(&self) -> Box<dyn Coordinator> {
        Box::new(Remote::connect(&self.0))
    }

    fn session_in(&self, chroot: &str) -> Option<Box<dyn Coordinator>> {
        Some(Box::new(Remote::connect(&format!("{}{chroot}", self.0))))
    }

    fn is_in_process(&self) -> bool {
        false
    }
}

pub fn in_process() -> InProcess {
    InProcess(Keeper::in_memory().expect("in-memory keeper"))
}

/// `innkeeper serve` in this process (one server shared by every check, with
/// the settings `.ci/conformance.sh` gives the ZooKeeper servers), reached
/// over the wire through [`RemoteSession`].
pub fn served() -> Remote {
    use innkeeper::server::{FourLetterWords, Server, ServerConfig};
    static SERVER: std::sync::OnceLock<(Keeper, Server)> = std::sync::OnceLock::new();
    let (_, server) = SERVER.get_or_init(|| {
        let keeper = Keeper::builder()
            .tick(Duration::from_millis(1000))
            .extended_types(true)
            .reap_interval(Duration::from_millis(1000))
            .build()
            .expect("keeper for the served backend");
        let config = ServerConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            connections_per_ip_max: 0,
            four_letter_words: FourLetterWords::All,
            ..ServerConfig::default()
        };
        let server = Server::start(keeper.clone(), config).expect("start innkeeper serve");
        (keeper, server)
    });
    Remote(server.local_addr().to_string())
}

/// The remote backend named by `INNKEEPER_ZK`, if any.
pub fn remote() -> Option<Remote> {
    std::env::var("INNKEEPER_ZK")
        .ok()
        .filter(|s| !s.is_empty())
        .map(Remote)
}

/// The remote backend of an ignored test someone asked to run: without
/// `INNKEEPER_ZK` it fails rather than pass having checked nothing.
pub fn remote_or_fail() -> Remote {
    remote().expect("INNKEEPER_ZK must name a server (HOST:PORT) for the remote tests")
}

/// The next node event on a stream, skipping state events (a remote
/// session reports `SyncConnected` on its default stream first, C.6).
pub fn next_node_event(events: &WatchReceiver, wait: Duration) -> Option<WatchedEvent> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let event = events.recv_deadline(deadline)?;
        if event.event_type != EventType::None {
            return Some(event);
        }
    }
}

/// One test per backend for a check `fn name(b: &dyn Backend)` in `checks`.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn in_process() {
                    $crate::checks::$name(&$crate::in_process());
                }

                #[test]
                fn served() {
                    $crate::checks::$name(&$crate::served());
                }

                #[test]
                #[ignore = "needs INNKEEPER_ZK=HOST:PORT (ZooKeeper or innkeeper serve); .ci/conformance.sh runs it"]
                fn remote() {
                    $crate::checks::$name(&$crate::remote_or_fail());
                }
            }
        )*
    };
}

conformance!(
    paths_are_validated_before_anything_else,
    system_nodes,
    create_checks_and_errors,
    sequential_names,
    null_and_empty_data,
    data_limit,
    stat_fields_per_operation,
    delete_and_set_data_errors,
    ephemerals_belong_to_their_session,
    container_and_ttl_creation,
    exists_watch_on_missing_node,
    data_and_child_watches,
    one_shot_watches_fire_once_per_session,
    own_event_precedes_own_reply,
    persistent_and_recursive_watches,
    remove_and_check_watches,
    multi_success_shape,
    multi_failure_shape,
    multi_read_per_op_errors,
    acls_and_digest_auth,
    acl_fixup_errors,
    who_am_i_and_auth_failure,
    counts_ephemerals_and_sync,
    chroot_is_invisible,
    get_acl_masks_digests_without_admin,
    closing_tells_watchers,
    get_children_stat_is_the_parents,
    nodes_may_be_created_under_zookeeper,
    ttl_bounds,
    multi_check_ops,
    event_order_within_a_session,
    a_read_watch_downgrades_a_persistent_one,
    concurrent_calls_share_one_session,
    callbacks_may_call_the_session,
    multi_read_checks_acls_per_op,
    exist_watches_are_data_watches_for_removal,
    a_new_session_reports_sync_connected,
    a_read_watch_hears_a_racing_delete,
);
