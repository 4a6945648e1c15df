//! Shared test fixtures: a `World` that hands out sessions (an in-process
//! keeper on a manual clock, or the server named by `INNKEEPER_ZK` through
//! `RemoteSession`, one fresh chroot per test), and `Probe`, a
//! `Coordinator` wrapper that counts what a recipe does and can inject a
//! session failure before a chosen call.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use innkeeper::Acl;
use innkeeper::{
    AddWatchMode, ClientInfo, Coordinator, CreateMode, CreateOptions, EventType, Keeper,
    KeeperState, ManualClock, Op, OpResult, ReadOp, ReadResult, RemoteSession, Result, Session,
    Stat, WatchReceiver, Watcher, WatcherType,
};

/// Session timeout the fixtures ask for.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The keeper's tick.
pub const TICK: Duration = Duration::from_millis(500);
/// How long a test waits for something that should happen promptly.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// A remote session of this test binary: `INNKEEPER_ZK`'s connect string.
fn remote_server() -> Option<String> {
    std::env::var("INNKEEPER_ZK").ok().filter(|s| !s.is_empty())
}

/// True when the tests run against the server named by `INNKEEPER_ZK`.
pub fn is_remote() -> bool {
    remote_server().is_some()
}

/// Proptest cases: `local` in process; fewer against a real server, where
/// every case connects several sessions and expiries take round trips.
pub fn cases(local: u32) -> u32 {
    if is_remote() {
        (local / 4).max(8)
    } else {
        local
    }
}

/// How long to wait for a remote session to notice its expiry, or for the
/// server's container reaper (`znode.container.checkIntervalMs` is 1 s in
/// `.ci/zookeeper.sh`; a parent container goes one pass after its child).
const REMOTE_WAIT: Duration = Duration::from_secs(10);

/// A participant's session: in process, or a `RemoteSession` to the
/// server of `INNKEEPER_ZK`.
pub enum TestSession {
    Local(Session),
    Remote {
        session: RemoteSession,
        /// The connect string without the chroot, to resume the session.
        server: String,
        /// The session's only way to the server.
        gate: Gate,
    },
}

impl TestSession {
    fn c(&self) -> &dyn Coordinator {
        match self {
            TestSession::Local(s) => s,
            TestSession::Remote { session, .. } => session,
        }
    }

    /// Ends the session as an expiry does; returns once this handle knows.
    /// Remotely, as ZooKeeper's own tests do: resume the session on a
    /// second handle and close it there; this handle then hears `Expired`
    /// when it reconnects. This handle reconnects at once when the server
    /// drops it for the second one, and would take the session back before
    /// the close gets through: its gate is shut meanwhile.
    pub fn expire(&self) -> Result<()> {
        match self {
            TestSession::Local(s) => s.expire(),
            TestSession::Remote {
                session,
                server,
                gate,
            } => {
                if session.state() == KeeperState::Expired {
                    return Ok(());
                }
                let (id, password) = (session.session_id(), session.password());
                gate.shut();
                let closed = RemoteSession::builder(server)
                    .resume(id, &password)
                    .session_timeout(SESSION_TIMEOUT)
                    .connect()
                    .and_then(|other| other.close());
                gate.open();
                closed?;
                // Bounded: the handle's reconnection, held at the gate, now
                // reaches the server and is told.
                let deadline = Instant::now() + REMOTE_WAIT;
                while session.state() != KeeperState::Expired {
                    assert!(
                        Instant::now() < deadline,
                        "session {id:#x} never heard it expired: {:?}",
                        session.state()
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(())
            }
        }
    }

    /// True once this handle knows its session expired.
    pub fn is_expired(&self) -> bool {
        match self {
            TestSession::Local(s) => s.is_expired(),
            TestSession::Remote { session, .. } => session.state() == KeeperState::Expired,
        }
    }

    /// Closes the session (its ephemerals go).
    pub fn close(&self) -> Result<()> {
        match self {
            TestSession::Local(s) => s.close(),
            TestSession::Remote { session, .. } => session.close(),
        }
    }

    /// One round trip. The server sends a session every notification that
    /// an earlier change triggered before its next reply, and the client
    /// delivers events before that reply: afterwards, every event caused by
    /// a change that already returned has been delivered. (In process,
    /// events are queued synchronously and this is only a read.)
    pub fn settle(&self) {
        let _ = self.c().exists("/");
    }
}

/// A keeper on a manual clock, or a fresh root on a real server.
pub enum Backend {
    InProcess {
        clock: ManualClock,
        keeper: Keeper,
    },
    Remote {
        server: String,
        /// This test's root: every session is chrooted there, so tests
        /// share one server without seeing each other.
        root: String,
        admin: Arc<TestSession>,
    },
}

/// Where a test's sessions come from: in process by default, or the
/// server named by `INNKEEPER_ZK` (ZooKeeper 3.8 or `innkeeper serve`).
pub struct World {
    pub backend: Backend,
}

impl World {
    pub fn new() -> World {
        match remote_server() {
            None => World::in_process(),
            Some(server) => World::remote(server),
        }
    }

    /// The in-process backend whatever `INNKEEPER_ZK` says, for tests that
    /// need the manual clock.
    pub fn in_process() -> World {
        let clock = ManualClock::new(1_700_000_000_000);
        let keeper = Keeper::builder()
            .clock(clock.clone())
            .tick(TICK)
            .session_timeout_range(Duration::from_secs(1), Duration::from_secs(60))
            .reap_interval(Duration::from_secs(1))
            .build()
            .expect("keeper");
        World {
            backend: Backend::InProcess { clock, keeper },
        }
    }

    fn remote(server: String) -> World {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let root = format!(
            "/recipes-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let top = connect(&server, "");
        top.create(&root, b"", CreateMode::Persistent)
            .expect("create the test's root");
        drop(top);
        let admin = Arc::new(connect(&server, &root));
        World {
            backend: Backend::Remote {
                server,
                root,
                admin,
            },
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote { .. })
    }

    pub fn session(&self) -> Arc<TestSession> {
        Arc::new(match &self.backend {
            Backend::InProcess { keeper, .. } => TestSession::Local(
                keeper
                    .session_with_timeout(SESSION_TIMEOUT)
                    .expect("session"),
            ),
            Backend::Remote { server, root, .. } => connect(server, root),
        })
    }

    pub fn probe(&self) -> Arc<Probe> {
        Arc::new(Probe::new(self.session()))
    }

    /// Expires `session` (in process: at once; remotely: see
    /// [`TestSession::expire`]).
    pub fn expire(&self, session: &TestSession) {
        session.expire().expect("expire");
        assert!(session.is_expired());
    }

    /// A hung process: heartbeats stop, and time passes until the session
    /// expires (expiry runs on this thread, inside `advance`). A real
    /// server cannot be made to skip time: there the session is expired
    /// (closed through a second handle), which is what the hang ends in.
    pub fn hang_until_expired(&self, session: &TestSession) {
        match (&self.backend, session) {
            (Backend::InProcess { clock, .. }, TestSession::Local(s)) => {
                s.pause_heartbeats();
                clock.advance_in_steps(SESSION_TIMEOUT + TICK * 4, TICK);
            }
            _ => session.expire().expect("expire"),
        }
        assert!(session.is_expired(), "the hung session should have expired");
    }

    /// Lets the container reaper run (in process). On a real server the
    /// reaper runs by itself: use [`World::reaped`] to wait for it.
    pub fn reap(&self) {
        if let Backend::InProcess { clock, .. } = &self.backend {
            clock.advance_in_steps(Duration::from_secs(3), TICK);
        }
    }

    /// True once `p` is gone: in process, after letting the reaper run;
    /// remotely, waiting (boundedly, on an exists watch) for the server's.
    pub fn reaped(&self, p: &str) -> bool {
        self.reap();
        let admin = self.admin();
        let deadline = Instant::now() + REMOTE_WAIT;
        loop {
            let (w, events) = Watcher::channel();
            if admin.exists_with(p, Some(&w)).expect("exists").is_none() {
                return true;
            }
            if !self.is_remote() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if events.wait(left).is_none() {
                return false;
            }
        }
    }

    /// A session for the test's own look-ups.
    fn admin(&self) -> Arc<TestSession> {
        match &self.backend {
            Backend::Remote { admin, .. } => admin.clone(),
            Backend::InProcess { .. } => self.session(),
        }
    }

    /// Every node below `root` (depth first), excluding `root`.
    pub fn nodes_below(&self, root: &str) -> Vec<String> {
        let s = self.admin();
        let mut out = Vec::new();
        fn walk(s: &TestSession, p: &str, out: &mut Vec<String>) {
            let Ok(children) = s.get_children(p) else {
                return;
            };
            for c in children {
                let child = innkeeper::path::join(p, &c);
                out.push(child.clone());
                walk(s, &child, out);
            }
        }
        walk(&s, root, &mut out);
        out
    }

    /// True when `p` exists.
    pub fn exists(&self, p: &str) -> bool {
        self.admin().exists(p).expect("exists").is_some()
    }

    /// The in-process keeper's invariants (nothing to check remotely).
    pub fn check(&self) {
        if let Backend::InProcess { keeper, .. } = &self.backend {
            keeper.check_invariants().expect("keeper invariants");
        }
    }
}

/// A remote session below `chroot` ("" for none), through its own gate to
/// the first server of `server`.
fn connect(server: &str, chroot: &str) -> TestSession {
    let first = server.split(',').next().unwrap_or(server);
    let gate = Gate::new(first);
    let via = format!("127.0.0.1:{}{chroot}", gate.port);
    let session = RemoteSession::builder(&via)
        .session_timeout(SESSION_TIMEOUT)
        .connect_timeout(Duration::from_secs(15))
        .connect()
        .unwrap_or_else(|e| panic!("connect to {server}{chroot} via {via}: {e}"));
    TestSession::Remote {
        session,
        server: server.to_string(),
        gate,
    }
}

/// A TCP relay between one remote session and the server that the test
/// can shut: shutting drops the relayed connections, and new ones wait
/// (accepted, not yet relayed) until it is opened again.
pub struct Gate {
    port: u16,
    state: Arc<GateState>,
}

struct GateState {
    upstream: String,
    stopped: AtomicBool,
    relays: parking_lot::Mutex<Relays>,
}

#[derive(Default)]
struct Relays {
    shut: bool,
    /// Both ends of every relayed connection.
    open: Vec<TcpStream>,
    /// Client connections accepted while shut.
    waiting: Vec<TcpStream>,
}

impl GateState {
    /// Relays `client` to the server (the caller holds `relays`).
    fn relay(&self, relays: &mut Relays, client: TcpStream) {
        let Ok(server) = TcpStream::connect(&self.upstream) else {
            return;
        };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        relays.open.retain(|s| s.peer_addr().is_ok());
        for (from, to) in [(&client, &server), (&server, &client)] {
            let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                continue;
            };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
            });
        }
        relays.open.push(client);
        relays.open.push(server);
    }
}

impl Gate {
    fn new(upstream: &str) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a gate");
        let port = listener.local_addr().expect("gate address").port();
        let state = Arc::new(GateState {
            upstream: upstream.to_string(),
            stopped: AtomicBool::new(false),
            relays: parking_lot::Mutex::new(Relays::default()),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let mut relays = st.relays.lock();
                if relays.shut {
                    relays.waiting.push(client);
                } else {
                    st.relay(&mut relays, client);
                }
            }
        });
        Gate { port, state }
    }

    /// Drops the relayed connections; new ones wait.
    fn shut(&self) {
        let mut relays = self.state.relays.lock();
        relays.shut = true;
        for s in relays.open.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Relays the waiting connections and new ones again.
    fn open(&self) {
        let mut relays = self.state.relays.lock();
        relays.shut = false;
        for client in std::mem::take(&mut relays.waiting) {
            self.state.relay(&mut relays, client);
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // The session was closed before (fields drop in order): end the
        // relays and wake the accepting thread so that it ends too.
        self.state.stopped.store(true, Ordering::SeqCst);
        let relays = std::mem::take(&mut *self.state.relays.lock());
        for s in relays.open.iter().chain(&relays.waiting) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Coordinator for TestSession {
    fn session_id(&self) -> i64 {
        self.c().session_id()
    }
    fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Result<(String, Stat)> {
        self.c().create_with(path, data, options)
    }
    fn delete(&self, path: &str, version: i32) -> Result<()> {
        self.c().delete(path, version)
    }
    fn set_data_with(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        self.c().set_data_with(path, data, version)
    }
    fn exists_with(&self, path: &str, watcher: Option<&Watcher>) -> Result<Option<Stat>> {
        self.c().exists_with(path, watcher)
    }
    fn get_data_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        self.c().get_data_with(path, watcher)
    }
    fn get_children_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        self.c().get_children_with(path, watcher)
    }
    fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        self.c().get_acl(path)
    }
    fn set_acl(&self, path: &str, acl: &[Acl], aversion: i32) -> Result<Stat> {
        self.c().set_acl(path, acl, aversion)
    }
    fn multi_results(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        self.c().multi_results(ops)
    }
    fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        self.c().multi_read(ops)
    }
    fn get_all_children_number(&self, path: &str) -> Result<u64> {
        self.c().get_all_children_number(path)
    }
    fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        self.c().get_ephemerals(prefix)
    }
    fn sync(&self, path: &str) -> Result<()> {
        self.c().sync(path)
    }
    fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: &Watcher) -> Result<()> {
        self.c().add_watch(path, mode, watcher)
    }
    fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()> {
        self.c().remove_watches(path, kind, watcher)
    }
    fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.c().add_auth(scheme, auth)
    }
    fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        self.c().who_am_i()
    }
    fn events(&self) -> WatchReceiver {
        self.c().events()
    }
    fn default_watcher(&self) -> Watcher {
        self.c().default_watcher()
    }
    fn state(&self) -> KeeperState {
        self.c().state()
    }
}

type Hook = Box<dyn Fn() + Send + Sync>;

/// A `Coordinator` that forwards to a session and
/// - counts calls,
/// - adds its own channel watcher wherever the recipe sets a watch, so a
///   test can count how many times this participant was woken,
/// - reports each watch the recipe sets on a channel (so a test knows a
///   waiter is parked without sleeping),
/// - runs a hook (e.g. expire the session) before call number N.
pub struct Probe {
    pub inner: Arc<TestSession>,
    calls: AtomicUsize,
    fail_at: AtomicUsize,
    lose_reply_at: AtomicUsize,
    lost: AtomicUsize,
    hook: parking_lot::Mutex<Option<Hook>>,
    spy: Watcher,
    spied: WatchReceiver,
    parked_tx: Sender<String>,
    parked_rx: Receiver<String>,
}

impl Probe {
    pub fn new(inner: Arc<TestSession>) -> Probe {
        let (spy, spied) = Watcher::channel();
        let (parked_tx, parked_rx) = crossbeam_channel::unbounded();
        Probe {
            inner,
            calls: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(usize::MAX),
            lose_reply_at: AtomicUsize::new(usize::MAX),
            lost: AtomicUsize::new(0),
            hook: parking_lot::Mutex::new(None),
            spy,
            spied,
            parked_tx,
            parked_rx,
        }
    }

    /// Calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Runs `hook` just before call number `n` (0-based) is forwarded.
    pub fn before_call(&self, n: usize, hook: impl Fn() + Send + Sync + 'static) {
        *self.hook.lock() = Some(Box::new(hook));
        self.fail_at.store(n, Ordering::SeqCst);
    }

    /// Makes call number `n` (a create or a multi) happen but report
    /// `ConnectionLoss`, as a remote client sees when the reply is lost.
    pub fn lose_reply_of_call(&self, n: usize) {
        self.lose_reply_at.store(n, Ordering::SeqCst);
    }

    /// Replies lost so far.
    pub fn replies_lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }

    /// Node events this participant received since the last call, from
    /// changes that already returned (see [`TestSession::settle`]).
    pub fn wakeups(&self) -> usize {
        self.inner.settle();
        self.spied
            .drain()
            .into_iter()
            .filter(|e| e.event_type != EventType::None)
            .count()
    }

    /// Waits until the recipe has set a watch; returns its path.
    pub fn wait_parked(&self) -> String {
        self.parked_rx
            .recv_timeout(PROMPTLY)
            .expect("the participant should park on a watch")
    }

    /// Counts a call; true when its reply must be lost.
    fn count(&self) -> bool {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n == self.fail_at.load(Ordering::SeqCst) {
            if let Some(hook) = self.hook.lock().take() {
                hook();
            }
        }
        n == self.lose_reply_at.load(Ordering::SeqCst)
    }

    fn parked(&self, p: &str) {
        let _ = self.parked_tx.send(p.to_string());
    }
}

impl Coordinator for Probe {
    fn session_id(&self) -> i64 {
        self.inner.session_id()
    }
    fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Result<(String, Stat)> {
        let lose = self.count();
        let r = self.inner.create_with(path, data, options);
        if lose {
            self.lost.fetch_add(1, Ordering::SeqCst);
            return Err(innkeeper::Error::new(innkeeper::ErrorKind::ConnectionLoss));
        }
        r
    }
    fn delete(&self, path: &str, version: i32) -> Result<()> {
        self.count();
        self.inner.delete(path, version)
    }
    fn set_data_with(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        self.count();
        self.inner.set_data_with(path, data, version)
    }
    fn exists_with(&self, path: &str, watcher: Option<&Watcher>) -> Result<Option<Stat>> {
        self.count();
        if watcher.is_some() {
            let _ = self.inner.exists_with(path, Some(&self.spy));
        }
        let r = self.inner.exists_with(path, watcher);
        if watcher.is_some() {
            self.parked(path);
        }
        r
    }
    fn get_data_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        self.count();
        if watcher.is_some() {
            let _ = self.inner.get_data_with(path, Some(&self.spy));
        }
        let r = self.inner.get_data_with(path, watcher);
        if watcher.is_some() {
            self.parked(path);
        }
        r
    }
    fn get_children_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        self.count();
        if watcher.is_some() {
            let _ = self.inner.get_children_with(path, Some(&self.spy));
        }
        let r = self.inner.get_children_with(path, watcher);
        if watcher.is_some() {
            self.parked(path);
        }
        r
    }
    fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        self.count();
        self.inner.get_acl(path)
    }
    fn set_acl(&self, path: &str, acl: &[Acl], aversion: i32) -> Result<Stat> {
        self.count();
        self.inner.set_acl(path, acl, aversion)
    }
    fn multi_results(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let lose = self.count();
        let r = self.inner.multi_results(ops);
        if lose {
            self.lost.fetch_add(1, Ordering::SeqCst);
            return Err(innkeeper::Error::new(innkeeper::ErrorKind::ConnectionLoss));
        }
        r
    }
    fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        self.count();
        self.inner.multi_read(ops)
    }
    fn get_all_children_number(&self, path: &str) -> Result<u64> {
        self.count();
        self.inner.get_all_children_number(path)
    }
    fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        self.count();
        self.inner.get_ephemerals(prefix)
    }
    fn sync(&self, path: &str) -> Result<()> {
        self.count();
        self.inner.sync(path)
    }
    fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: &Watcher) -> Result<()> {
        self.count();
        let r = self.inner.add_watch(path, mode, watcher);
        self.parked(path);
        r
    }
    fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()> {
        self.inner.remove_watches(path, kind, watcher)
    }
    fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.inner.add_auth(scheme, auth)
    }
    fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        self.inner.who_am_i()
    }
    fn events(&self) -> WatchReceiver {
        self.inner.events()
    }
    fn default_watcher(&self) -> Watcher {
        self.inner.default_watcher()
    }
    fn state(&self) -> KeeperState {
        self.inner.state()
    }
}

/// A seed from `RECIPES_SEED` or a fixed default, printed so a failure can
/// be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("RECIPES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0001);
    eprintln!("RECIPES_SEED={seed}");
    seed
}

/// The stress tests' random source: the library's generator.
pub(crate) use crate::random::Rng;
