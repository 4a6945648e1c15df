//! Leader election: a latch you ask "am I the leader?", and a selector that
//! runs your leadership code and queues up again (Curator's `LeaderLatch`
//! and `LeaderSelector`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::lock::{entries, exclusive_turn, Contend};
use super::util::{self, Deadline, Dir, Waited};
use crate::event::{EventType, KeeperState, WatchedEvent, Watcher, WatcherType};
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Result};

const LATCH_PREFIX: &str = "latch-";
const SELECTOR_PREFIX: &str = "lead-";

type Listener = Arc<dyn Fn(bool) + Send + Sync>;

#[derive(Debug, Default)]
struct LatchState {
    node: Option<String>,
    token: i64,
    leader: bool,
    closed: bool,
    failure: Option<Error>,
}

struct LatchInner<C: Coordinator + ?Sized + 'static> {
    client: Arc<C>,
    dir: String,
    id: String,
    state: Mutex<LatchState>,
    changed: Condvar,
    /// Serializes re-evaluations (the caller's and the event thread's).
    checking: Mutex<()>,
    watcher: OnceLock<Watcher>,
    listeners: Mutex<Vec<Listener>>,
}

/// A leader latch: every participant queues an ephemeral sequential node;
/// the first one leads. The others watch only their predecessor, so a
/// leader's departure wakes just the next in line, which becomes leader.
///
/// Leadership ends when the latch is closed or dropped, or when its
/// session ends (the node goes with it, and the next participant takes
/// over). [`LeaderLatch::is_leader`] also checks the session's state, so
/// an expired leader stops claiming leadership at once. Re-evaluation runs
/// on the session's event thread; listeners run there too.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::LeaderLatch;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let a = LeaderLatch::start(Arc::new(keeper.session()?), "/election/db", "a")?;
/// let b = LeaderLatch::start(Arc::new(keeper.session()?), "/election/db", "b")?;
/// assert!(a.is_leader() && !b.is_leader());
/// a.close()?; // a steps down
/// assert!(b.wait_leadership(Duration::from_secs(5))?);
/// assert_eq!(b.leader()?.as_deref(), Some("b"));
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct LeaderLatch<C: Coordinator + ?Sized + 'static> {
    inner: Arc<LatchInner<C>>,
}

impl<C: Coordinator + ?Sized + 'static> LeaderLatch<C> {
    /// Joins the election at `path` as participant `id` (stored in its node
    /// so everyone can see who leads).
    pub fn start(client: Arc<C>, path: &str, id: &str) -> Result<LeaderLatch<C>> {
        let dir = util::base_path(path)?;
        let inner = Arc::new(LatchInner {
            client,
            dir,
            id: id.to_string(),
            state: Mutex::new(LatchState::default()),
            changed: Condvar::new(),
            checking: Mutex::new(()),
            watcher: OnceLock::new(),
            listeners: Mutex::new(Vec::new()),
        });
        let weak: Weak<LatchInner<C>> = Arc::downgrade(&inner);
        let _ = inner.watcher.set(Watcher::callback(move |event| {
            if let Some(inner) = weak.upgrade() {
                inner.on_event(&event);
            }
        }));
        let (node, stat) = util::create_protected(
            &*inner.client,
            &inner.dir,
            LATCH_PREFIX,
            id.as_bytes(),
            CreateMode::EphemeralSequential,
            Dir::Container,
        )?;
        {
            let mut state = inner.state.lock();
            state.node = Some(node);
            state.token = stat.czxid;
        }
        let latch = LeaderLatch { inner };
        latch.inner.check()?;
        Ok(latch)
    }

    /// True while this participant leads and its session is connected.
    pub fn is_leader(&self) -> bool {
        self.inner.state.lock().leader && self.inner.client.state() == KeeperState::SyncConnected
    }

    /// Waits up to `timeout` to become leader. `Ok(false)` on timeout;
    /// an error if the latch was closed, its node was lost, or its session
    /// ended.
    pub fn wait_leadership(&self, timeout: Duration) -> Result<bool> {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = self.inner.state.lock();
        loop {
            if let Some(e) = &state.failure {
                return Err(e.clone());
            }
            if self.inner.client.state() != KeeperState::SyncConnected {
                return Err(Error::with_path(ErrorKind::SessionExpired, &self.inner.dir));
            }
            if state.closed {
                return Err(Error::with_path(ErrorKind::SessionExpired, &self.inner.dir)
                    .detail("the latch is closed"));
            }
            if state.leader {
                return Ok(true);
            }
            if self
                .inner
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return Ok(false);
            }
        }
    }

    /// The id of the current leader, `None` when nobody is in the election.
    pub fn leader(&self) -> Result<Option<String>> {
        Ok(self.participants()?.into_iter().next())
    }

    /// Participant ids in line order, leader first.
    pub fn participants(&self) -> Result<Vec<String>> {
        Ok(
            entries(&*self.inner.client, &self.inner.dir, &[LATCH_PREFIX])?
                .into_iter()
                .map(|(_, data)| String::from_utf8_lossy(&data).into_owned())
                .collect(),
        )
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// A number that grows with every participant that joins (the zxid
    /// that created this participant's node): a resource can reject
    /// commands from a leader older than the newest it has seen.
    pub fn fencing_token(&self) -> i64 {
        self.inner.state.lock().token
    }

    /// Calls `listener(true)` when this participant becomes leader and
    /// `listener(false)` when it stops being leader.
    pub fn on_change(&self, listener: impl Fn(bool) + Send + Sync + 'static) {
        self.inner.listeners.lock().push(Arc::new(listener));
    }

    /// Leaves the election, relinquishing leadership if this participant
    /// leads (the next in line takes over). Closing twice is fine.
    #[doc(alias = "relinquish")]
    pub fn close(&self) -> Result<()> {
        let node = {
            let mut state = self.inner.state.lock();
            state.closed = true;
            state.node.take()
        };
        self.inner.set_leader(false);
        self.inner.changed.notify_all();
        match node {
            Some(node) => match util::delete_if_present(&*self.inner.client, &node) {
                Err(e) if e.kind() == ErrorKind::SessionExpired => Ok(()),
                other => other,
            },
            None => Ok(()),
        }
    }
}

impl<C: Coordinator + ?Sized + 'static> Drop for LeaderLatch<C> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for LeaderLatch<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLatch")
            .field("path", &self.inner.dir)
            .field("id", &self.inner.id)
            .field("leader", &self.is_leader())
            .finish()
    }
}

impl<C: Coordinator + ?Sized + 'static> LatchInner<C> {
    fn on_event(&self, event: &WatchedEvent) {
        if event.event_type == EventType::None {
            if matches!(event.state, KeeperState::Expired | KeeperState::Closed) {
                self.state.lock().failure = Some(Error::new(ErrorKind::SessionExpired));
                self.set_leader(false);
                self.changed.notify_all();
            }
            return;
        }
        if let Err(e) = self.check() {
            self.state.lock().failure = Some(e);
            self.set_leader(false);
            self.changed.notify_all();
        }
    }

    /// Looks at the line and watches what can change our place in it: the
    /// predecessor, or (as leader) our own node, whose deletion or our
    /// session's end must end the leadership.
    fn check(&self) -> Result<()> {
        let _one_at_a_time = self.checking.lock();
        let Some(watcher) = self.watcher.get() else {
            return Err(Error::new(ErrorKind::SystemError));
        };
        loop {
            let node = match &*self.state.lock() {
                LatchState {
                    node: Some(n),
                    closed: false,
                    ..
                } => n.clone(),
                _ => return Ok(()),
            };
            let children = match self.client.get_children(&self.dir) {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::NoNode => Vec::new(),
                Err(e) => return Err(e),
            };
            let line = util::sorted_by_sequence(children, &[LATCH_PREFIX]);
            let Some(idx) = line.iter().position(|n| n == path::name(&node)) else {
                self.state.lock().node = None;
                return Err(util::lost_node(&node));
            };
            let watched = match idx {
                0 => node.clone(),
                _ => path::join(&self.dir, &line[idx - 1]),
            };
            if self.client.exists_with(&watched, Some(watcher))?.is_none() {
                util::forget_watch(&*self.client, &watched, WatcherType::Data, watcher);
                continue;
            }
            self.set_leader(idx == 0);
            self.changed.notify_all();
            return Ok(());
        }
    }

    fn set_leader(&self, leader: bool) {
        let changed = {
            let mut state = self.state.lock();
            let changed = state.leader != leader;
            state.leader = leader;
            changed
        };
        if changed {
            let listeners: Vec<Listener> = self.listeners.lock().clone();
            for listener in listeners {
                listener(leader);
            }
        }
    }
}

/// What a [`LeaderSelector`]'s leadership code is given: who it is, a
/// fencing token, and ways to learn that leadership is over.
pub struct Leadership<'a, C: Coordinator + ?Sized> {
    client: &'a C,
    node: String,
    token: i64,
    id: &'a str,
    stop: &'a Receiver<()>,
}

impl<C: Coordinator + ?Sized> Leadership<'_, C> {
    /// This participant's id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// Grows with every term (the zxid that created the leader's node).
    pub fn fencing_token(&self) -> i64 {
        self.token
    }

    /// True while the leadership holds: the session is connected, the
    /// leader's node exists, and the selector is not closing.
    pub fn is_valid(&self) -> bool {
        self.client.state() == KeeperState::SyncConnected
            && !stopping(self.stop)
            && matches!(self.client.exists(&self.node), Ok(Some(_)))
    }

    /// Waits up to `timeout` for the leadership to end (session lost, node
    /// deleted, or the selector closing); true if it ended.
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        let (watcher, events) = Watcher::channel();
        match self.client.exists_with(&self.node, Some(&watcher)) {
            Ok(Some(_)) => {}
            _ => return true,
        }
        let lost = match util::wait_for(&events, Some(self.stop), Deadline::after(timeout)) {
            Waited::Event | Waited::Cancelled => true,
            Waited::TimedOut => false,
        };
        util::forget_watch(self.client, &self.node, WatcherType::Data, &watcher);
        lost || !self.is_valid()
    }
}

fn stopping(stop: &Receiver<()>) -> bool {
    matches!(
        stop.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected) | Ok(())
    )
}

#[derive(Debug, Default)]
struct SelectorShared {
    leading: AtomicBool,
    terms: AtomicU64,
    failure: Mutex<Option<Error>>,
}

/// Runs leadership code when this participant is elected, then gives
/// leadership up and (by default) queues again: a rotating leader.
///
/// Built on the lock's queue: one ephemeral sequential node per
/// participant, each watching its predecessor. The leadership closure runs
/// on the selector's own thread; it should return when
/// [`Leadership::wait_lost`] or [`Leadership::is_valid`] says the term is
/// over (session expired, or [`LeaderSelector::close`] called). If the
/// session ends, the next participant is elected and this selector stops.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::LeaderSelector;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let selector = LeaderSelector::builder(Arc::new(keeper.session()?), "/election/jobs")
///     .id("scheduler-1")
///     .requeue(false)
///     .start(move |term| {
///         tx.send(term.id().to_string()).ok();
///     })?;
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5)).ok().as_deref(), Some("scheduler-1"));
/// selector.close()?;
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct LeaderSelector {
    stop: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<SelectorShared>,
    id: String,
}

/// Settings for a [`LeaderSelector`].
pub struct LeaderSelectorBuilder<C: Coordinator + ?Sized + 'static> {
    client: Arc<C>,
    path: String,
    id: String,
    requeue: bool,
}

impl LeaderSelector {
    /// Settings for a selector at `path`.
    pub fn builder<C: Coordinator + ?Sized + 'static>(
        client: Arc<C>,
        path: &str,
    ) -> LeaderSelectorBuilder<C> {
        LeaderSelectorBuilder {
            client,
            path: path.to_string(),
            id: String::new(),
            requeue: true,
        }
    }

    /// True while the leadership closure runs.
    pub fn is_leader(&self) -> bool {
        self.shared.leading.load(Ordering::Acquire)
    }

    /// How many terms this participant has led.
    pub fn terms(&self) -> u64 {
        self.shared.terms.load(Ordering::Acquire)
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Why the selector stopped on its own (e.g. `SessionExpired`).
    pub fn failure(&self) -> Option<Error> {
        self.shared.failure.lock().clone()
    }

    /// Stops: interrupts a wait for leadership, tells a running closure
    /// (through [`Leadership::wait_lost`]) to finish, and waits for it.
    pub fn close(&self) -> Result<()> {
        drop(self.stop.lock().take());
        if let Some(handle) = self.thread.lock().take() {
            if util::join_unless_current(handle).is_err() {
                return Err(
                    Error::new(ErrorKind::SystemError).detail("the leadership closure panicked")
                );
            }
        }
        Ok(())
    }
}

impl Drop for LeaderSelector {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl std::fmt::Debug for LeaderSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderSelector")
            .field("id", &self.id)
            .field("leader", &self.is_leader())
            .finish()
    }
}

impl<C: Coordinator + ?Sized + 'static> LeaderSelectorBuilder<C> {
    /// The participant id stored in its node.
    pub fn id(mut self, id: &str) -> Self {
        self.id = id.to_string();
        self
    }

    /// Whether to queue again after each term (default true).
    pub fn requeue(mut self, requeue: bool) -> Self {
        self.requeue = requeue;
        self
    }

    /// Starts the selector thread; `lead` runs once per term.
    pub fn start(
        self,
        mut lead: impl FnMut(&Leadership<'_, C>) + Send + 'static,
    ) -> Result<LeaderSelector> {
        let dir = util::base_path(&self.path)?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let shared = Arc::new(SelectorShared::default());
        let thread_shared = shared.clone();
        let LeaderSelectorBuilder {
            client,
            id,
            requeue,
            ..
        } = self;
        let thread_id = id.clone();
        let handle = std::thread::Builder::new()
            .name(format!("leader-selector-{id}"))
            .spawn(move || {
                let contend = Contend {
                    client: &*client,
                    dir: &dir,
                    prefix: SELECTOR_PREFIX,
                    family: &[SELECTOR_PREFIX],
                    data: thread_id.as_bytes(),
                    dir_kind: Dir::Container,
                };
                loop {
                    match contend.run(exclusive_turn, Deadline::never(), Some(&stop_rx)) {
                        Ok(Some(acquired)) => {
                            thread_shared.terms.fetch_add(1, Ordering::AcqRel);
                            thread_shared.leading.store(true, Ordering::Release);
                            lead(&Leadership {
                                client: &*client,
                                node: acquired.path.clone(),
                                token: acquired.stat.czxid,
                                id: &thread_id,
                                stop: &stop_rx,
                            });
                            thread_shared.leading.store(false, Ordering::Release);
                            if let Err(e) = util::delete_if_present(&*client, &acquired.path) {
                                *thread_shared.failure.lock() = Some(e);
                                return;
                            }
                            if !requeue || stopping(&stop_rx) {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(e) => {
                            *thread_shared.failure.lock() = Some(e);
                            return;
                        }
                    }
                }
            })
            .map_err(|e| Error::new(ErrorKind::SystemError).detail(e.to_string()))?;
        Ok(LeaderSelector {
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(handle)),
            shared,
            id,
        })
    }
}
