//! Shared test fixtures: a keeper on a manual clock, and `Probe`, a
//! `Coordinator` wrapper that counts what a recipe does and can inject a
//! session failure before a chosen call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use innkeeper::Acl;
use innkeeper::{
    AddWatchMode, ClientInfo, Coordinator, CreateOptions, EventType, Keeper, KeeperState,
    ManualClock, Op, OpResult, ReadOp, ReadResult, Result, Session, Stat, WatchReceiver,
    WatchedEvent, Watcher, WatcherType,
};

/// Session timeout the fixtures ask for.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The keeper's tick.
pub const TICK: Duration = Duration::from_millis(500);
/// How long a test waits for something that should happen promptly.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// A keeper on a manual clock.
pub struct World {
    pub clock: ManualClock,
    pub keeper: Keeper,
}

impl World {
    pub fn new() -> World {
        let clock = ManualClock::new(1_700_000_000_000);
        let keeper = Keeper::builder()
            .clock(clock.clone())
            .tick(TICK)
            .session_timeout_range(Duration::from_secs(1), Duration::from_secs(60))
            .reap_interval(Duration::from_secs(1))
            .build()
            .expect("keeper");
        World { clock, keeper }
    }

    pub fn session(&self) -> Arc<Session> {
        Arc::new(
            self.keeper
                .session_with_timeout(SESSION_TIMEOUT)
                .expect("session"),
        )
    }

    pub fn probe(&self) -> Arc<Probe> {
        Arc::new(Probe::new(self.session()))
    }

    /// A hung process: heartbeats stop, and time passes until the session
    /// expires (expiry runs on this thread, inside `advance`).
    pub fn hang_until_expired(&self, session: &Session) {
        session.pause_heartbeats();
        self.clock
            .advance_in_steps(SESSION_TIMEOUT + TICK * 4, TICK);
        assert!(session.is_expired(), "the hung session should have expired");
    }

    /// Lets the container reaper run.
    pub fn reap(&self) {
        self.clock.advance_in_steps(Duration::from_secs(3), TICK);
    }

    /// Every node below `root` (depth first), excluding `root`.
    pub fn nodes_below(&self, root: &str) -> Vec<String> {
        let s = self.session();
        let mut out = Vec::new();
        fn walk(s: &Session, p: &str, out: &mut Vec<String>) {
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
        self.session().exists(p).expect("exists").is_some()
    }

    pub fn check(&self) {
        self.keeper.check_invariants().expect("keeper invariants");
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
    pub inner: Arc<Session>,
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
    pub fn new(inner: Arc<Session>) -> Probe {
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

    /// Node events this participant received since the last call.
    pub fn wakeups(&self) -> usize {
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
    fn events(&self) -> Receiver<WatchedEvent> {
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

/// A tiny deterministic random source for the stress tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
