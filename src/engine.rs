//! The engine: one lock around the state, the write path, expiry and
//! reaping, and event delivery.
//!
//! Write path (every mutation): a caller submits a request with a
//! completion and does not wait ([`Engine::submit`]); `Engine::write` is the
//! blocking form. In the durable modes one committer thread per engine drains
//! the queue (group commit: everything queued while it flushed is the next
//! batch; a blocked `write` caller that finds no batch committing commits
//! the queue itself, saving a thread hand-off). The batch is taken under the
//! commit lock, so batches commit in queue order. Each request is prepped
//! against the applied state plus what is already prepared; the batch is
//! persisted as one atomic write with one flush; then, under the state write
//! lock, each txn is applied, its watches triggered, the notifications
//! handed to each session's sink and the request completed, in queue order
//! (so the completion of a request follows its own events, as ZooKeeper's
//! final processor does). So no reply, event or read exposes a write before
//! the store has it, and every session's events are queued before any later
//! reply it gets. In memory there is no flush to share: the caller commits
//! inline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::clock::{Clock, TimeListener};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{EventType, KeeperState};
use crate::liveness::Liveness;
use crate::node::{Acl, Id, Perms, Stat};
use crate::prep::{check_acl, Caller, PrepConfig, View, WriteOp};
use crate::session::{initial_session_id, password_matches};
use crate::state::{OpOutcome, State};
use crate::store::Store;
use crate::txn::{Txn, TxnOp};
use crate::watch::{self, Table, WatchMode, WatchTable};

/// Receives one session's notifications. Called with engine locks held:
/// implementations must not block and must not call back into the engine.
pub(crate) trait EventSink: Send + Sync {
    /// A server notification for this session.
    fn notify(&self, event_type: EventType, path: &str);
    /// The session ended: `Closed` by its owner or `Expired`.
    fn ended(&self, state: KeeperState);
}

/// A sink that drops everything (sessions restored from disk until a
/// client resumes them).
pub(crate) struct NullSink;

impl EventSink for NullSink {
    fn notify(&self, _event_type: EventType, _path: &str) {}
    fn ended(&self, _state: KeeperState) {}
}

/// Per-session runtime data the engine keeps beside the replicated state.
pub(crate) struct SessionHooks {
    /// Identities from auth (and `ip:` for wire clients).
    pub identities: RwLock<Vec<Id>>,
    /// Where notifications go.
    pub sink: RwLock<Arc<dyn EventSink>>,
    /// While set, heartbeats run (an in-process handle): the session has
    /// no deadline. Changed only through [`Engine::set_heartbeats`], which
    /// keeps the engine's [`Liveness`] in step.
    pub attached: AtomicBool,
}

impl SessionHooks {
    pub(crate) fn new(
        identities: Vec<Id>,
        sink: Arc<dyn EventSink>,
        attached: bool,
    ) -> SessionHooks {
        SessionHooks {
            identities: RwLock::new(identities),
            sink: RwLock::new(sink),
            attached: AtomicBool::new(attached),
        }
    }
}

/// Engine settings (filled in by `KeeperBuilder`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub tick_ms: i64,
    pub session_timeout_min_ms: i32,
    pub session_timeout_max_ms: i32,
    pub prep: PrepConfig,
    pub reap_interval_ms: i64,
    pub filter_events_by_acl: bool,
    pub super_digest: Option<String>,
}

/// One write request.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Op(WriteOp),
    Multi(Vec<WriteOp>),
    OpenSession { timeout_ms: i32 },
    SessionTimeout { timeout_ms: i32 },
    CloseSession,
    Reap(String),
}

/// What a write produced.
#[derive(Debug, Clone)]
pub(crate) enum Written {
    Op(OpOutcome),
    Multi(std::result::Result<Vec<OpOutcome>, (usize, Error)>),
    Session { session_id: i64, password: [u8; 16] },
    Closed,
    Skipped,
}

/// Told a submitted write's result, with the zxid of the last applied txn at
/// that moment (the write's own zxid when it made one). Runs on the
/// committing thread with the engine's state lock held, in queue order: it
/// must not block and must not call back into the engine.
pub(crate) type Completion = Box<dyn FnOnce(Result<Written>, i64) + Send>;

struct Queued {
    session_id: i64,
    identities: Vec<Id>,
    write: Write,
    hooks: Option<Arc<SessionHooks>>,
    done: Completion,
}

/// What prep decided for one queued write.
enum Planned {
    /// It made the txn at this index of the batch.
    Txn(usize),
    /// It is answered without a txn (an error, or nothing to do).
    Answered(Result<Written>),
}

/// The queue between submitters and the committer thread.
#[derive(Default)]
struct CommitQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    items: Vec<Queued>,
    stopped: bool,
}

#[derive(Default)]
struct Slot {
    result: Mutex<Option<Result<Written>>>,
    ready: Condvar,
}

/// The engine.
pub(crate) struct Engine {
    state: RwLock<State>,
    /// Deadlines, attachment and closing flags of the state's sessions;
    /// added and removed in step with the session txns applied. Lock
    /// order: `state`, then `hooks`, then `liveness`.
    liveness: RwLock<Liveness>,
    watches: Mutex<WatchTable>,
    hooks: RwLock<HashMap<i64, Arc<SessionHooks>>>,
    queue: Arc<CommitQueue>,
    /// Held while a batch commits; guards the next session id.
    commit: Mutex<i64>,
    /// Batches written to the store (each one atomic write, one flush).
    batches: AtomicU64,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    store: Option<Box<dyn Store>>,
    failed: Mutex<Option<Error>>,
    closed: AtomicBool,
    next_reap_ms: AtomicI64,
    ticks_running: AtomicBool,
    next_tick_ms: AtomicI64,
}

/// What a read returns along with its data: the Stat.
pub(crate) type DataAndStat = (Option<Vec<u8>>, Stat);

impl Engine {
    pub(crate) fn new(
        state: State,
        clock: Arc<dyn Clock>,
        config: Config,
        store: Option<Box<dyn Store>>,
    ) -> Arc<Engine> {
        let now = clock.now_ms();
        let next_session_id = state
            .sessions
            .ids()
            .last()
            .map_or(initial_session_id(now), |max| {
                (max + 1).max(initial_session_id(now))
            });
        let mut hooks = HashMap::new();
        // Restored sessions start detached, with a fresh deadline from now:
        // their clients have this long to come back.
        let mut liveness = Liveness::new(config.tick_ms);
        for id in state.sessions.ids() {
            hooks.insert(
                id,
                Arc::new(SessionHooks::new(Vec::new(), Arc::new(NullSink), false)),
            );
            if let Some(entry) = state.sessions.get(id) {
                liveness.add(id, entry.timeout_ms, false, now);
            }
        }
        let engine = Arc::new(Engine {
            state: RwLock::new(state),
            liveness: RwLock::new(liveness),
            watches: Mutex::new(WatchTable::new()),
            hooks: RwLock::new(hooks),
            queue: Arc::new(CommitQueue::default()),
            commit: Mutex::new(next_session_id),
            batches: AtomicU64::new(0),
            next_reap_ms: AtomicI64::new(now.saturating_add(config.reap_interval_ms)),
            clock,
            config,
            store,
            failed: Mutex::new(None),
            closed: AtomicBool::new(false),
            ticks_running: AtomicBool::new(false),
            next_tick_ms: AtomicI64::new(0),
        });
        let listener: Arc<dyn TimeListener> = engine.clone();
        engine.clock.subscribe(Arc::downgrade(&listener));
        if !engine.clock.is_manual() {
            spawn_ticker(Arc::downgrade(&engine));
        }
        if engine.store.is_some() {
            let queue = engine.queue.clone();
            let weak = Arc::downgrade(&engine);
            let spawned = std::thread::Builder::new()
                .name("innkeeper-commit".into())
                .spawn(move || commit_loop(&queue, &weak));
            if let Err(e) = spawned {
                // Writes then fail with Closed instead of hanging.
                *engine.failed.lock() = Some(
                    Error::new(ErrorKind::Closed)
                        .detail(format!("cannot start the commit thread: {e}")),
                );
            }
        }
        engine
    }

    /// Batches written to the store so far (each one atomic write and, in
    /// the durable mode, one flush).
    pub(crate) fn store_batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Clamps a requested timeout into the configured range.
    pub(crate) fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        requested_ms.clamp(
            self.config.session_timeout_min_ms,
            self.config.session_timeout_max_ms,
        )
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed));
        }
        if let Some(e) = self.failed.lock().as_ref() {
            return Err(Error::new(ErrorKind::Closed)
                .detail(format!(
                    "an earlier store failure stopped writes ({e}); close and reopen the keeper"
                ))
                .cause_of(e));
        }
        Ok(())
    }

    // ---- the write path -------------------------------------------------

    /// Submits a write and waits for its result.
    pub(crate) fn write(
        &self,
        session_id: i64,
        identities: Vec<Id>,
        write: Write,
        hooks: Option<Arc<SessionHooks>>,
    ) -> Result<Written> {
        let slot = Arc::new(Slot::default());
        let filled = slot.clone();
        let done: Completion = Box::new(move |result, _| finish(&filled, result));
        if self.store.is_none() {
            self.submit(session_id, identities, write, hooks, done);
        } else if let Err(e) = self.check_open() {
            return Err(e);
        } else {
            let queued = Queued {
                session_id,
                identities,
                write,
                hooks,
                done,
            };
            {
                let mut queue = self.queue.state.lock();
                if queue.stopped {
                    return Err(Error::new(ErrorKind::Closed));
                }
                queue.items.push(queued);
            }
            // A blocked caller has nothing better to do: if no batch is
            // committing, it commits the queue itself (its own write
            // included), saving the hand-off to the committer thread.
            // Otherwise the committer takes it with the next batch.
            match self.commit.try_lock() {
                Some(mut next_session_id) => {
                    let batch = std::mem::take(&mut self.queue.state.lock().items);
                    if !batch.is_empty() {
                        self.commit_batch(batch, &mut next_session_id);
                    }
                }
                None => {
                    self.queue.ready.notify_one();
                }
            }
        }
        let mut result = slot.result.lock();
        while result.is_none() {
            slot.ready.wait_for(&mut result, Duration::from_millis(100));
        }
        result
            .take()
            .unwrap_or_else(|| Err(Error::new(ErrorKind::SystemError)))
    }

    /// Submits a write without waiting: `done` is called once with its
    /// result after the write is durable and applied (or has failed), in
    /// submission order. In memory the write commits inline, so `done` has
    /// run when this returns; the durable modes hand it to the committer.
    pub(crate) fn submit(
        &self,
        session_id: i64,
        identities: Vec<Id>,
        write: Write,
        hooks: Option<Arc<SessionHooks>>,
        done: Completion,
    ) {
        if let Err(e) = self.check_open() {
            done(Err(e), self.last_zxid());
            return;
        }
        let queued = Queued {
            session_id,
            identities,
            write,
            hooks,
            done,
        };
        if self.store.is_none() {
            // In memory there is nothing to share a flush with: commit inline.
            let mut next_session_id = self.commit.lock();
            self.commit_batch(vec![queued], &mut next_session_id);
            return;
        }
        let mut queue = self.queue.state.lock();
        if queue.stopped {
            drop(queue);
            (queued.done)(Err(Error::new(ErrorKind::Closed)), self.last_zxid());
            return;
        }
        queue.items.push(queued);
        if queue.items.len() == 1 {
            self.queue.ready.notify_one();
        }
    }

    fn commit_batch(&self, batch: Vec<Queued>, next_session_id: &mut i64) {
        if self.closed.load(Ordering::Acquire) {
            let zxid = self.last_zxid();
            for q in batch {
                (q.done)(Err(Error::new(ErrorKind::Closed)), zxid);
            }
            return;
        }
        let now = self.clock.now_ms();
        let mut txns: Vec<Txn> = Vec::new();
        let mut plan: Vec<Planned> = Vec::with_capacity(batch.len());
        let state_guard = self.state.read();
        // New sessions' hooks, registered once prep is done (the hooks
        // lock comes before the liveness lock prep holds).
        let mut opened: Vec<(i64, Arc<SessionHooks>)> = Vec::new();
        {
            let state = &*state_guard;
            let liveness = self.liveness.read();
            let mut view = View::new(&state.tree, &state.sessions, &liveness);
            let mut zxid = state.last_zxid;
            for q in &batch {
                let caller = Caller {
                    session_id: q.session_id,
                    identities: &q.identities,
                };
                let prepared = match &q.write {
                    Write::Op(op) => view
                        .prep_op(caller, &self.config.prep, op)
                        .map_err(|e| Planned::Answered(Err(e))),
                    Write::Multi(ops) => {
                        if !view.session_live(q.session_id) {
                            Err(Planned::Answered(Err(Error::new(
                                ErrorKind::SessionExpired,
                            ))))
                        } else if ops.iter().any(|op| matches!(op, WriteOp::SetAcl { .. })) {
                            Err(Planned::Answered(Err(Error::new(ErrorKind::BadArguments)
                                .detail("set-acl cannot be part of a multi"))))
                        } else {
                            view.prep_multi(caller, &self.config.prep, ops)
                                .map_err(|failure| {
                                    Planned::Answered(Ok(Written::Multi(Err(failure))))
                                })
                        }
                    }
                    Write::OpenSession { timeout_ms } => {
                        let session_id = *next_session_id;
                        *next_session_id += 1;
                        view.open_session(session_id);
                        if let Some(hooks) = &q.hooks {
                            opened.push((session_id, hooks.clone()));
                        }
                        Ok(TxnOp::CreateSession {
                            session_id,
                            timeout_ms: *timeout_ms,
                            password: crate::random::password(),
                        })
                    }
                    Write::SessionTimeout { timeout_ms } => {
                        if view.session_live(q.session_id) {
                            Ok(TxnOp::SessionTimeout {
                                session_id: q.session_id,
                                timeout_ms: *timeout_ms,
                            })
                        } else {
                            Err(Planned::Answered(Err(Error::new(
                                ErrorKind::SessionExpired,
                            ))))
                        }
                    }
                    Write::CloseSession => {
                        if view.session_live(q.session_id)
                            || state.sessions.get(q.session_id).is_some()
                        {
                            Ok(view.prep_close(q.session_id))
                        } else {
                            Err(Planned::Answered(Ok(Written::Closed)))
                        }
                    }
                    Write::Reap(p) => view
                        .prep_reap(p)
                        .ok_or(Planned::Answered(Ok(Written::Skipped))),
                };
                plan.push(match prepared {
                    Ok(op) => {
                        zxid += 1;
                        txns.push(Txn {
                            zxid,
                            time_ms: now,
                            op,
                        });
                        Planned::Txn(txns.len() - 1)
                    }
                    Err(answered) => answered,
                });
            }
        }
        if !opened.is_empty() {
            self.hooks.write().extend(opened);
        }
        if !txns.is_empty() {
            if let Some(store) = &self.store {
                self.batches.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = store.persist(&txns, &state_guard) {
                    let zxid = state_guard.last_zxid;
                    drop(state_guard);
                    if e.kind().is_fail_stop() && e.kind() != ErrorKind::Io {
                        *self.failed.lock() = Some(e.clone());
                    }
                    self.forget_unapplied_sessions(&txns);
                    for (q, planned) in batch.into_iter().zip(plan) {
                        let result = match planned {
                            Planned::Txn(_) => Err(e.clone()),
                            Planned::Answered(r) => r,
                        };
                        (q.done)(result, zxid);
                    }
                    return;
                }
            }
        }
        drop(state_guard);
        // Apply in queue order and complete each request right after its
        // own txn, as ZooKeeper's final processor does: a session's reply
        // follows the events of every change before it and precedes those
        // of every change after it.
        let mut state = self.state.write();
        let mut watches = self.watches.lock();
        for (q, planned) in batch.into_iter().zip(plan) {
            let result = match planned {
                Planned::Txn(idx) => match txns.get(idx) {
                    Some(txn) => self.apply_one(&mut state, &mut watches, txn),
                    None => Err(Error::new(ErrorKind::SystemError)),
                },
                Planned::Answered(r) => r,
            };
            (q.done)(result, state.last_zxid);
        }
    }

    fn forget_unapplied_sessions(&self, txns: &[Txn]) {
        let mut hooks = self.hooks.write();
        for txn in txns {
            if let TxnOp::CreateSession { session_id, .. } = txn.op {
                hooks.remove(&session_id);
            }
        }
    }

    /// Applies one persisted txn, triggers watches and delivers events.
    fn apply_one(&self, state: &mut State, watches: &mut WatchTable, txn: &Txn) -> Result<Written> {
        let applied = match state.apply(txn) {
            Ok(applied) => applied,
            Err(problem) => {
                let e = Error::new(ErrorKind::DataInconsistency).detail(problem);
                *self.failed.lock() = Some(e.clone());
                return Err(e);
            }
        };
        let hooks = self.hooks.read();
        match &txn.op {
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                ..
            } => {
                let attached = hooks
                    .get(session_id)
                    .is_some_and(|h| h.attached.load(Ordering::Acquire));
                self.liveness
                    .write()
                    .add(*session_id, *timeout_ms, attached, txn.time_ms);
            }
            TxnOp::CloseSession { session_id, .. } => {
                self.liveness.write().remove(*session_id);
            }
            TxnOp::SessionTimeout {
                session_id,
                timeout_ms,
            } => {
                self.liveness
                    .write()
                    .set_timeout(*session_id, *timeout_ms, txn.time_ms);
            }
            _ => {}
        }
        for change in &applied.changes {
            for n in watches.trigger(change) {
                let Some(target) = hooks.get(&n.session_id) else {
                    continue;
                };
                if self.config.filter_events_by_acl {
                    // ZooKeeper 3.8.4+ (ZOOKEEPER-4799): an event reaches a
                    // session only if it may READ the node the event names.
                    let acl = state
                        .tree
                        .get(&n.path)
                        .map(|node| node.acl().clone())
                        .or_else(|| {
                            applied
                                .deleted_acls
                                .iter()
                                .find(|(p, _)| *p == n.path)
                                .map(|(_, a)| a.clone())
                        });
                    if let Some(acl) = acl {
                        if !check_acl(&acl, Perms::READ, &target.identities.read()) {
                            continue;
                        }
                    }
                }
                target.sink.read().notify(server_event(n.event), &n.path);
            }
        }
        drop(hooks);
        Ok(match &txn.op {
            TxnOp::CreateSession {
                session_id,
                password,
                ..
            } => Written::Session {
                session_id: *session_id,
                password: *password,
            },
            TxnOp::CloseSession { session_id, .. } => {
                watches.remove_session(*session_id);
                self.hooks.write().remove(session_id);
                Written::Closed
            }
            TxnOp::Multi(_) => Written::Multi(Ok(applied.outcomes)),
            _ => match applied.outcomes.into_iter().next() {
                Some(outcome) => Written::Op(outcome),
                None => return Err(Error::new(ErrorKind::SystemError)),
            },
        })
    }

    // ---- sessions -------------------------------------------------------

    /// Opens a session; returns its id and password.
    pub(crate) fn open_session(
        &self,
        timeout_ms: i32,
        hooks: Arc<SessionHooks>,
    ) -> Result<(i64, [u8; 16])> {
        let timeout_ms = self.negotiate_timeout(timeout_ms);
        match self.write(
            0,
            Vec::new(),
            Write::OpenSession { timeout_ms },
            Some(hooks),
        )? {
            Written::Session {
                session_id,
                password,
            } => {
                tracing::info!(target: "innkeeper::session", "session {session_id:#x} opened (timeout {timeout_ms} ms)");
                Ok((session_id, password))
            }
            _ => Err(Error::new(ErrorKind::SystemError)),
        }
    }

    /// Attaches new hooks to an existing session after checking its
    /// password (a reconnect). Returns the negotiated timeout.
    pub(crate) fn resume_session(
        &self,
        session_id: i64,
        password: &[u8],
        timeout_ms: i32,
        hooks: Arc<SessionHooks>,
    ) -> Result<i32> {
        self.check_open()?;
        let timeout_ms = self.negotiate_timeout(timeout_ms);
        let live = |state: &State| {
            state
                .sessions
                .get(session_id)
                .filter(|s| {
                    self.liveness.read().is_live(session_id)
                        && password_matches(&s.password, password)
                })
                .map(|s| s.timeout_ms)
        };
        let current = live(&self.state.read()).ok_or(Error::new(ErrorKind::SessionExpired))?;
        if current != timeout_ms {
            // A new timeout is part of the session's state: one txn, so it
            // is persisted and applied like every other change.
            self.write(
                session_id,
                Vec::new(),
                Write::SessionTimeout { timeout_ms },
                None,
            )?;
        }
        let state = self.state.write();
        if live(&state).is_none() {
            return Err(Error::new(ErrorKind::SessionExpired));
        }
        self.take_over(session_id, hooks);
        drop(state);
        Ok(timeout_ms)
    }

    /// Hands a resumed session to `hooks`: its server-side watches are
    /// dropped (the client re-registers them with SetWatches), it is attached
    /// or given a fresh deadline, and `hooks` replace the older connection's.
    /// The caller holds the state write lock (lock order: state, watch table,
    /// hooks, liveness).
    fn take_over(&self, session_id: i64, hooks: Arc<SessionHooks>) {
        let now = self.clock.now_ms();
        self.watches.lock().remove_session(session_id);
        let mut all_hooks = self.hooks.write();
        let mut liveness = self.liveness.write();
        if hooks.attached.load(Ordering::Acquire) {
            liveness.attach(session_id);
        } else {
            liveness.detach(session_id, now);
        }
        all_hooks.insert(session_id, hooks);
    }

    /// [`Engine::resume_session`] for a caller that must not block on a
    /// flush (the wire server's event loop). The session is checked and
    /// `hooks` attached at once; a changed timeout is then committed
    /// through the write pipeline, and `done` gets the negotiated timeout
    /// once that txn is durable and applied (or its failure). With the
    /// timeout unchanged there is nothing to write and `done` runs before
    /// this returns. `done` runs under the same rules as a [`Completion`].
    pub(crate) fn resume_session_submit(
        &self,
        session_id: i64,
        password: &[u8],
        timeout_ms: i32,
        hooks: Arc<SessionHooks>,
        done: Box<dyn FnOnce(Result<i32>) + Send>,
    ) {
        if let Err(e) = self.check_open() {
            return done(Err(e));
        }
        let timeout_ms = self.negotiate_timeout(timeout_ms);
        let current = {
            let state = self.state.write();
            let current = state
                .sessions
                .get(session_id)
                .filter(|s| {
                    self.liveness.read().is_live(session_id)
                        && password_matches(&s.password, password)
                })
                .map(|s| s.timeout_ms);
            if current.is_some() {
                self.take_over(session_id, hooks);
            }
            drop(state);
            current
        };
        match current {
            None => done(Err(Error::new(ErrorKind::SessionExpired))),
            Some(current) if current == timeout_ms => done(Ok(timeout_ms)),
            // A new timeout is part of the session's state: one txn, so it
            // is persisted and applied like every other change.
            Some(_) => self.submit(
                session_id,
                Vec::new(),
                Write::SessionTimeout { timeout_ms },
                None,
                Box::new(move |result, _| done(result.map(|_| timeout_ms))),
            ),
        }
    }

    /// Starts or stops an in-process handle's heartbeats. While they run
    /// the session has no deadline; stopping them gives it `now + timeout`.
    /// Hooks that are no longer the session's current ones only note the
    /// flag (another handle or connection owns the session's liveness).
    pub(crate) fn set_heartbeats(&self, session_id: i64, hooks: &Arc<SessionHooks>, on: bool) {
        let all_hooks = self.hooks.read();
        hooks.attached.store(on, Ordering::Release);
        if !all_hooks
            .get(&session_id)
            .is_some_and(|h| Arc::ptr_eq(h, hooks))
        {
            return;
        }
        let now = self.clock.now_ms();
        let mut liveness = self.liveness.write();
        if on {
            liveness.attach(session_id);
        } else {
            liveness.detach(session_id, now);
        }
    }

    /// True when `hooks` are the session's current hooks (no other handle
    /// or connection resumed it since).
    pub(crate) fn is_attached_to(&self, session_id: i64, hooks: &Arc<SessionHooks>) -> bool {
        self.hooks
            .read()
            .get(&session_id)
            .is_some_and(|h| Arc::ptr_eq(h, hooks))
    }

    /// Closes a session by its owner's request.
    pub(crate) fn close_session(&self, session_id: i64) -> Result<()> {
        let hooks = self.hooks.read().get(&session_id).cloned();
        self.write(session_id, Vec::new(), Write::CloseSession, None)?;
        tracing::info!(target: "innkeeper::session", "session {session_id:#x} closed");
        if let Some(h) = hooks {
            h.sink.read().ended(KeeperState::Closed);
        }
        Ok(())
    }

    /// Expires a session now, as if its timeout had passed: its ephemerals
    /// go, other sessions' watches fire, and it sees `Expired`.
    pub(crate) fn expire_session(&self, session_id: i64) -> Result<()> {
        let marked = self.liveness.write().mark_closing(session_id);
        if !marked {
            return Err(Error::new(ErrorKind::SessionExpired));
        }
        let hooks = self.hooks.read().get(&session_id).cloned();
        // An expiring session's client is gone (that is why it expires): it
        // hears nothing of its own ephemerals' deletion, only `Expired`, on
        // every watcher (docs/zookeeper-semantics.md C.4, C.6). A client that
        // closes is still connected and does hear them, so only here.
        let sink = hooks
            .as_ref()
            .map(|h| std::mem::replace(&mut *h.sink.write(), Arc::new(NullSink)));
        let closed = self.write(session_id, Vec::new(), Write::CloseSession, None);
        if closed.as_ref().is_err_and(|e| e.kind().is_fail_stop()) {
            // The store failed the close txn: nothing was applied, so the
            // session is live again and the next tick retries its expiry
            // (left closing, it would never expire nor lose its ephemerals).
            self.liveness.write().clear_closing(session_id);
        }
        if let (Some(h), Some(sink)) = (&hooks, sink) {
            if closed.is_err() {
                *h.sink.write() = sink;
            } else {
                sink.ended(KeeperState::Expired);
            }
        }
        match &closed {
            Ok(_) => {
                tracing::info!(target: "innkeeper::session", "session {session_id:#x} expired")
            }
            Err(e) => {
                tracing::error!(target: "innkeeper::session", "expiring session {session_id:#x} failed: {e}")
            }
        }
        closed.map(|_| ())
    }

    /// Touches a session (a ping or any request from a wire client).
    pub(crate) fn touch(&self, session_id: i64) -> bool {
        let now = self.clock.now_ms();
        // A wire server touches on every packet; the write lock is needed
        // only when the deadline moves to another tick bucket.
        match self.liveness.read().touch_would_move(session_id, now) {
            None => return false,
            Some(false) => return true,
            Some(true) => {}
        }
        self.liveness.write().touch(session_id, now)
    }

    /// Runs expiry and reaping for `now_ms`. Called by the ticker thread or
    /// by a manual clock's `advance`.
    pub(crate) fn tick(&self, now_ms: i64) {
        if self.closed.load(Ordering::Acquire) || self.ticks_running.swap(true, Ordering::AcqRel) {
            return;
        }
        // Only due buckets are looked at: attached sessions have no
        // deadline, so a tick with nothing due costs next to nothing
        // however many sessions are open.
        let expired = self.liveness.read().expired(now_ms);
        for session_id in expired {
            let _ = self.expire_session(session_id);
        }
        if now_ms >= self.next_reap_ms.load(Ordering::Acquire) {
            self.next_reap_ms.store(
                now_ms.saturating_add(self.config.reap_interval_ms),
                Ordering::Release,
            );
            let due = self.state.read().tree.reapable(now_ms);
            for p in due {
                let _ = self.write(0, Vec::new(), Write::Reap(p), None);
            }
        }
        self.ticks_running.store(false, Ordering::Release);
    }

    /// Stops the engine: no further writes; flushes and closes the store,
    /// releasing its directory.
    pub(crate) fn shutdown(&self) -> Result<()> {
        let _commit = self.commit.lock();
        self.closed.store(true, Ordering::Release);
        self.queue.stop();
        match &self.store {
            Some(store) => store.close(&self.state.read()),
            None => Ok(()),
        }
    }

    /// Makes every applied write durable now (the periodic mode flushes on
    /// its own timer; the durable mode already is). Holds the commit lock
    /// so the store sees the applied state and no batch in flight.
    pub(crate) fn flush_store(&self) -> Result<()> {
        self.check_open()?;
        let _commit = self.commit.lock();
        match &self.store {
            Some(store) => store.flush(&self.state.read()),
            None => Ok(()),
        }
    }

    /// Holds the commit lock, so no batch commits until the guard drops
    /// (tests: a write held in flight).
    #[cfg(test)]
    pub(crate) fn hold_commits(&self) -> parking_lot::MutexGuard<'_, i64> {
        self.commit.lock()
    }

    /// Makes sure new sessions get ids above `session_id` (the highest id
    /// a recovered store ever handed out, closed sessions included).
    pub(crate) fn reserve_session_ids_through(&self, session_id: i64) {
        let mut next_session_id = self.commit.lock();
        *next_session_id = (*next_session_id).max(session_id.saturating_add(1));
    }

    /// The id the next session will get.
    pub(crate) fn next_session_id(&self) -> i64 {
        *self.commit.lock()
    }

    // ---- reads ----------------------------------------------------------

    fn read_state(&self, session_id: i64) -> Result<parking_lot::RwLockReadGuard<'_, State>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed));
        }
        let state = self.state.read();
        if !self.liveness.read().is_live(session_id) {
            return Err(Error::new(ErrorKind::SessionExpired));
        }
        Ok(state)
    }

    /// Holds the state read lock for a live session's reads. While a
    /// `Reader` lives no write is applied, so whatever the caller queues
    /// before dropping it (a wire reply) precedes every notification of a
    /// later change.
    pub(crate) fn reader(&self, session_id: i64) -> Result<Reader<'_>> {
        Ok(Reader {
            engine: self,
            state: self.read_state(session_id)?,
            session_id,
        })
    }

    /// Registers a one-shot watch (server side, then client side through
    /// `register`) while the caller still holds the state read lock.
    fn watch_standard(
        &self,
        table: Table,
        p: &str,
        session_id: i64,
        register: Option<&dyn Fn(bool)>,
        exists: bool,
    ) {
        if let Some(register) = register {
            self.watches
                .lock()
                .add(table, p, session_id, WatchMode::Standard);
            register(exists);
        }
    }

    /// `sync`: nothing to wait for in one process; checks the session.
    pub(crate) fn sync(&self, session_id: i64) -> Result<()> {
        self.read_state(session_id).map(|_| ())
    }

    /// `addWatch`.
    pub(crate) fn add_watch(
        &self,
        session_id: i64,
        p: &str,
        recursive: bool,
        register: &dyn Fn(),
    ) -> Result<()> {
        let _state = self.read_state(session_id)?;
        self.watches.lock().add_persistent(p, session_id, recursive);
        register();
        Ok(())
    }

    /// `removeWatches` (remove = true) or `checkWatches` (remove = false)
    /// on the server tables; `tables` lists the tables addressed.
    pub(crate) fn remove_watches(
        &self,
        session_id: i64,
        p: &str,
        tables: &[Table],
        remove: bool,
        on_success: &dyn Fn(),
    ) -> Result<()> {
        let _state = self.read_state(session_id)?;
        let mut watches = self.watches.lock();
        let mut found = false;
        for table in tables {
            found |= if remove {
                watches.remove(*table, p, session_id)
            } else {
                watches.has(*table, p, session_id)
            };
        }
        if !found {
            return Err(Error::with_path(ErrorKind::NoWatcher, p));
        }
        on_success();
        Ok(())
    }

    /// SetWatches catch-up after a reconnect (`docs/zookeeper-semantics.md` D.6):
    /// registers what is unchanged and notifies what changed since `relative_zxid`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_watches(
        &self,
        session_id: i64,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        recursive: &[String],
    ) -> Result<()> {
        let state = self.read_state(session_id)?;
        let mut watches = self.watches.lock();
        let sink = self
            .hooks
            .read()
            .get(&session_id)
            .map(|h| h.sink.read().clone());
        let notify = |event, p: &str| {
            if let Some(sink) = &sink {
                sink.notify(event, p);
            }
        };
        for p in data {
            match state.tree.get(p) {
                None => notify(EventType::NodeDeleted, p),
                Some(n) if n.mzxid > relative_zxid => notify(EventType::NodeDataChanged, p),
                Some(_) => watches.add(Table::Data, p, session_id, WatchMode::Standard),
            }
        }
        for p in exist {
            match state.tree.get(p) {
                Some(_) => notify(EventType::NodeCreated, p),
                None => watches.add(Table::Data, p, session_id, WatchMode::Standard),
            }
        }
        for p in child {
            match state.tree.get(p) {
                None => notify(EventType::NodeDeleted, p),
                Some(n) if n.pzxid > relative_zxid => notify(EventType::NodeChildrenChanged, p),
                Some(_) => watches.add(Table::Child, p, session_id, WatchMode::Standard),
            }
        }
        for p in persistent {
            watches.add_persistent(p, session_id, false);
        }
        for p in recursive {
            watches.add_persistent(p, session_id, true);
        }
        Ok(())
    }

    // ---- introspection --------------------------------------------------

    /// zxid of the last applied txn.
    pub(crate) fn last_zxid(&self) -> i64 {
        self.state.read().last_zxid
    }

    /// Runs `f` on the applied state (tests, four-letter words, snapshots).
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read())
    }

    /// Runs `f` on the sessions' liveness (admin dumps, tests).
    pub(crate) fn with_liveness<T>(&self, f: impl FnOnce(&Liveness) -> T) -> T {
        f(&self.liveness.read())
    }

    /// Number of server-side watch entries (both tables).
    pub(crate) fn watch_count(&self) -> usize {
        self.watches.lock().len()
    }

    /// Sessions watching each path in the data table (getData, exists and
    /// persistent watches), sorted by path and id: what ZooKeeper's
    /// `wchs`/`wchc`/`wchp` report.
    pub(crate) fn data_watches_by_path(&self) -> std::collections::BTreeMap<String, Vec<i64>> {
        self.watches.lock().table_by_path(Table::Data)
    }

    /// Checks the state's invariants.
    pub(crate) fn check_invariants(&self) -> std::result::Result<(), String> {
        self.state.read().check_invariants()
    }
}

/// A live session's view of the applied state, holding the state read lock
/// (see [`Engine::reader`]).
pub(crate) struct Reader<'e> {
    engine: &'e Engine,
    state: parking_lot::RwLockReadGuard<'e, State>,
    session_id: i64,
}

impl Reader<'_> {
    /// zxid of the last applied txn, as this reader sees the state.
    pub(crate) fn last_zxid(&self) -> i64 {
        self.state.last_zxid
    }

    /// `exists`: the Stat, or `None`; a watch is set either way (D.1).
    /// Needs no permission, as in ZooKeeper 3.8.
    pub(crate) fn exists(
        &self,
        _identities: &[Id],
        p: &str,
        watch: Option<&dyn Fn(bool)>,
    ) -> Result<Option<Stat>> {
        if p.contains('\0') {
            return Err(Error::with_path(ErrorKind::BadArguments, p).detail("NUL in path"));
        }
        // No ACL check: ZooKeeper 3.8 answers `exists` (and sets its watch)
        // on a node the caller may not READ.
        let found = self.state.tree.get(read_target(p)).map(|node| node.stat());
        self.engine
            .watch_standard(Table::Data, p, self.session_id, watch, found.is_some());
        Ok(found)
    }

    /// `getData`.
    pub(crate) fn get_data(
        &self,
        identities: &[Id],
        p: &str,
        watch: Option<&dyn Fn(bool)>,
    ) -> Result<DataAndStat> {
        let node = readable(&self.state, p, identities)?;
        self.engine
            .watch_standard(Table::Data, p, self.session_id, watch, true);
        Ok((node.data().map(<[u8]>::to_vec), node.stat()))
    }

    /// `getChildren2`: names (sorted) and the parent's Stat.
    pub(crate) fn get_children(
        &self,
        identities: &[Id],
        p: &str,
        watch: Option<&dyn Fn(bool)>,
    ) -> Result<(Vec<String>, Stat)> {
        let node = readable(&self.state, p, identities)?;
        self.engine
            .watch_standard(Table::Child, p, self.session_id, watch, true);
        Ok((node.child_names(), node.stat()))
    }

    /// `getChildren2` as ZooKeeper 3.8 answers it on the wire: the names in
    /// the iteration order of its child `HashSet` (`javaorder`), from each
    /// child's create zxid and the most children the node ever had.
    pub(crate) fn get_children_wire(
        &self,
        identities: &[Id],
        p: &str,
        watch: Option<&dyn Fn(bool)>,
    ) -> Result<(Vec<String>, Stat)> {
        let state = &self.state;
        let node = readable(state, p, identities)?;
        self.engine
            .watch_standard(Table::Child, p, self.session_id, watch, true);
        let children = node
            .children()
            .map(|name| {
                let added = state
                    .tree
                    .get(&crate::path::join(read_target(p), name))
                    .map_or(0, |child| child.czxid);
                (name.to_string(), added)
            })
            .collect();
        let most = state.tree.child_high_water(read_target(p), &node);
        Ok((
            crate::javaorder::children_order(children, most),
            node.stat(),
        ))
    }

    /// `getACL`: needs READ or ADMIN; digest ids are masked without ADMIN.
    pub(crate) fn get_acl(&self, identities: &[Id], p: &str) -> Result<(Vec<Acl>, Stat)> {
        let node = self
            .state
            .tree
            .get(read_target(p))
            .ok_or_else(|| Error::with_path(ErrorKind::NoNode, p))?;
        if !check_acl(node.acl(), Perms::READ | Perms::ADMIN, identities) {
            return Err(Error::with_path(ErrorKind::NoAuth, p));
        }
        let admin = check_acl(node.acl(), Perms::ADMIN, identities);
        let acl = node
            .acl()
            .iter()
            .map(|entry| {
                if !admin && entry.id.scheme == "digest" {
                    let user = entry.id.id.split(':').next().unwrap_or("");
                    Acl::new(entry.perms, Id::new("digest", format!("{user}:x")))
                } else {
                    entry.clone()
                }
            })
            .collect();
        Ok((acl, node.stat()))
    }

    /// `getAllChildrenNumber`.
    pub(crate) fn get_all_children_number(&self, identities: &[Id], p: &str) -> Result<u64> {
        readable(&self.state, p, identities)?;
        Ok(self.state.tree.count_descendants(read_target(p)))
    }

    /// `getEphemerals`: the caller's own, filtered by string prefix.
    pub(crate) fn get_ephemerals(&self, prefix: &str) -> Vec<String> {
        let all = prefix.is_empty() || prefix == "/";
        self.state
            .tree
            .ephemerals_of(self.session_id)
            .filter(|p| all || p.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl TimeListener for Engine {
    fn time_advanced(&self, now_ms: i64) {
        self.tick(now_ms);
    }
}

/// The node a read names: ZooKeeper's data tree also holds the root under
/// `""` (its internal name), so a read of `""` answers the root. A watch
/// such a read sets stays on `""`, where no event ever fires, as there.
fn read_target(p: &str) -> &str {
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// The node at `p` if the identities may READ it (NoNode before NoAuth, F.2).
fn readable<'s>(state: &'s State, p: &str, identities: &[Id]) -> Result<crate::tree::Node<'s>> {
    let node = state
        .tree
        .get(read_target(p))
        .ok_or_else(|| Error::with_path(ErrorKind::NoNode, p))?;
    if !check_acl(node.acl(), Perms::READ, identities) {
        return Err(Error::with_path(ErrorKind::NoAuth, p));
    }
    Ok(node)
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.queue.stop();
    }
}

impl CommitQueue {
    /// Stops the committer thread once the queue is empty; later submits
    /// fail with `Closed`.
    fn stop(&self) {
        self.state.lock().stopped = true;
        self.ready.notify_all();
    }
}

/// The committer: waits for queued writes and commits everything queued as
/// one batch. It holds the engine only while committing, so dropping the
/// last keeper handle ends it.
fn commit_loop(queue: &CommitQueue, engine: &Weak<Engine>) {
    loop {
        {
            let mut state = queue.state.lock();
            while state.items.is_empty() && !state.stopped {
                queue.ready.wait(&mut state);
            }
            if state.items.is_empty() {
                return;
            }
        }
        let Some(engine) = engine.upgrade() else {
            for q in std::mem::take(&mut queue.state.lock().items) {
                (q.done)(Err(Error::new(ErrorKind::Closed)), 0);
            }
            return;
        };
        // The batch is taken under the commit lock, so batches commit in
        // queue order whether this thread or a blocked writer commits them.
        let mut next_session_id = engine.commit.lock();
        let batch = std::mem::take(&mut queue.state.lock().items);
        if !batch.is_empty() {
            engine.commit_batch(batch, &mut next_session_id);
        }
    }
}

fn finish(slot: &Slot, result: Result<Written>) {
    *slot.result.lock() = Some(result);
    slot.ready.notify_all();
}

fn server_event(event: watch::EventType) -> EventType {
    match event {
        watch::EventType::NodeCreated => EventType::NodeCreated,
        watch::EventType::NodeDeleted => EventType::NodeDeleted,
        watch::EventType::NodeDataChanged => EventType::NodeDataChanged,
        watch::EventType::NodeChildrenChanged => EventType::NodeChildrenChanged,
    }
}

/// The first multiple of `tick_ms` after `now_ms`. Session deadlines sit on
/// these boundaries (`SessionTable`), so ticking on them expires a session
/// at its deadline, as ZooKeeper's session tracker does, instead of up to a
/// tick later.
fn next_tick_boundary(now_ms: i64, tick_ms: i64) -> i64 {
    let tick_ms = tick_ms.max(1);
    (now_ms.div_euclid(tick_ms) + 1).saturating_mul(tick_ms)
}

/// Engines driven by the system clock; one process-wide thread ticks them
/// all, so making a keeper costs no thread spawn.
static TICKED: std::sync::OnceLock<Mutex<Vec<Weak<Engine>>>> = std::sync::OnceLock::new();

fn spawn_ticker(engine: Weak<Engine>) {
    let mut first = false;
    let list = TICKED.get_or_init(|| {
        first = true;
        Mutex::new(Vec::new())
    });
    list.lock().push(engine);
    if !first {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("innkeeper-ticker".into())
        .spawn(move || loop {
            let engines: Vec<Arc<Engine>> = {
                let mut list = list.lock();
                list.retain(|w| {
                    w.upgrade()
                        .is_some_and(|e| !e.closed.load(Ordering::Acquire))
                });
                list.iter().filter_map(Weak::upgrade).collect()
            };
            let mut sleep_ms: i64 = 1000;
            for engine in &engines {
                let now = engine.clock.now_ms();
                if now >= engine.next_tick_ms.load(Ordering::Acquire) {
                    engine.next_tick_ms.store(
                        next_tick_boundary(now, engine.config.tick_ms),
                        Ordering::Release,
                    );
                    engine.tick(now);
                }
                let now = engine.clock.now_ms();
                let due = engine.next_tick_ms.load(Ordering::Acquire);
                sleep_ms = sleep_ms.min(due.saturating_sub(now));
            }
            let sleep_ms = sleep_ms.clamp(1, 1000);
            drop(engines);
            std::thread::sleep(Duration::from_millis(sleep_ms as u64));
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the expiry thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::CreateMode;
    use crate::{Coordinator, Keeper};

    fn create(path: &str) -> Write {
        Write::Op(WriteOp::Create {
            path: path.to_string(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        })
    }

    /// (submission index, result ok, zxid given to the completion)
    type Done = Arc<Mutex<Vec<(usize, bool, i64)>>>;

    fn submit_all(engine: &Engine, session_id: i64, writes: Vec<Write>, done: &Done) {
        for (i, write) in writes.into_iter().enumerate() {
            let done = done.clone();
            engine.submit(
                session_id,
                Vec::new(),
                write,
                None,
                Box::new(move |result, zxid| done.lock().push((i, result.is_ok(), zxid))),
            );
        }
    }

    #[test]
    fn durable_submits_complete_in_order_and_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = Keeper::open(dir.path()).unwrap();
        let session = keeper.session().unwrap();
        let engine = &keeper.engine;
        let n = 300;
        // Every third write fails (the node exists): failures keep their
        // place in the order and take no zxid.
        let writes = (0..n)
            .map(|i| create(&format!("/n{}", i - i % 3)))
            .collect();
        let before = engine.store_batches();
        let first_zxid = engine.last_zxid();
        let done: Done = Arc::default();
        submit_all(engine, session.session_id(), writes, &done);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while done.lock().len() < n {
            assert!(std::time::Instant::now() < deadline, "completions missing");
            std::thread::yield_now();
        }
        let done = done.lock().clone();
        let order: Vec<usize> = done.iter().map(|(i, ..)| *i).collect();
        assert_eq!(
            order,
            (0..n).collect::<Vec<_>>(),
            "completed in submission order"
        );
        let mut last = first_zxid;
        for (i, ok, zxid) in &done {
            assert_eq!(*ok, i % 3 == 0, "write {i}");
            if *ok {
                assert_eq!(*zxid, last + 1, "each successful write is the next zxid");
            } else {
                assert_eq!(*zxid, last, "a failed write takes no zxid");
            }
            last = *zxid;
        }
        let batches = engine.store_batches() - before;
        assert!(
            batches < n as u64 / 3,
            "{n} submits, {batches} store batches"
        );
    }

    #[test]
    fn in_memory_submit_completes_before_it_returns() {
        let keeper = Keeper::in_memory().unwrap();
        let session = keeper.session().unwrap();
        let done: Done = Arc::default();
        submit_all(
            &keeper.engine,
            session.session_id(),
            vec![create("/a")],
            &done,
        );
        assert_eq!(done.lock().len(), 1);
    }

    #[test]
    fn submits_after_shutdown_fail_with_closed() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = Keeper::open(dir.path()).unwrap();
        let session = keeper.session().unwrap();
        let sid = session.session_id();
        keeper.shutdown().unwrap();
        let failed = Arc::new(Mutex::new(None));
        let slot = failed.clone();
        keeper.engine.submit(
            sid,
            Vec::new(),
            create("/late"),
            None,
            Box::new(move |result, _| *slot.lock() = Some(result.err().map(|e| e.kind()))),
        );
        assert_eq!(*failed.lock(), Some(Some(ErrorKind::Closed)));
    }
}
