//! The in-process [`Session`]: a thin adapter of the [`Coordinator`] trait
//! over the typed session layer ([`crate::front`]), plus its client side
//! (the watch registry and the event stream, `SessionRt`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::coordinator::{ClientInfo, Coordinator};
use crate::engine::{Engine, EventSink, SessionHooks};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{
    AddWatchMode, ClientWatches, Delivery, Dispatch, EventType, KeeperState, Registration,
    WatchReceiver, WatchedEvent, Watcher, WatcherType,
};
use crate::front::{self, Front};
use crate::node::{Acl, Id, Stat};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::path;

/// Client-side state of an in-process session: its watch registry, its
/// event stream, the callback thread, and its state.
pub(crate) struct SessionRt {
    watches: Mutex<ClientWatches>,
    default_watcher: Watcher,
    dispatch: Dispatch,
    state: RwLock<KeeperState>,
}

impl SessionRt {
    pub(crate) fn new() -> SessionRt {
        SessionRt {
            watches: Mutex::new(ClientWatches::default()),
            default_watcher: Watcher::default_target(),
            dispatch: Dispatch::new("innkeeper-events"),
            state: RwLock::new(KeeperState::SyncConnected),
        }
    }

    pub(crate) fn deliver(&self, deliveries: Vec<Delivery>) {
        self.dispatch.deliver(deliveries);
    }

    pub(crate) fn register(&self, kind: Registration, path: &str, watcher: &Watcher) {
        self.watches.lock().register(kind, path, watcher);
    }
}

impl EventSink for SessionRt {
    fn notify(&self, event_type: EventType, path: &str) {
        let deliveries = self.watches.lock().materialize(event_type, path);
        self.deliver(deliveries);
    }

    fn ended(&self, state: KeeperState) {
        *self.state.write() = state;
        let event = WatchedEvent::state(state);
        let mut deliveries = self.watches.lock().all(&event, true);
        if !deliveries.iter().any(|d| matches!(d, Delivery::Default(_))) {
            deliveries.push(Delivery::Default(event));
        }
        self.deliver(deliveries);
    }
}

/// A session on an in-process keeper. It heartbeats while it lives (unless
/// paused) and closes on drop, deleting its ephemerals.
pub struct Session {
    front: Front,
    password: [u8; 16],
    timeout_ms: i32,
    rt: Arc<SessionRt>,
    closed: AtomicBool,
}

impl Session {
    /// Opens a new session on `engine` (the timeout is clamped into the
    /// configured range).
    pub(crate) fn open(
        engine: &Arc<Engine>,
        timeout_ms: i32,
        identities: Vec<Id>,
    ) -> Result<Session> {
        let rt = Arc::new(SessionRt::new());
        let sink: Arc<dyn EventSink> = rt.clone();
        let hooks = Arc::new(SessionHooks::new(identities, sink, true));
        let (id, password) = engine.open_session(timeout_ms, hooks.clone())?;
        // As ZooKeeper's clients do, the default watcher hears the session
        // is established before anything else.
        rt.deliver(vec![Delivery::Default(WatchedEvent::state(
            KeeperState::SyncConnected,
        ))]);
        Ok(Session {
            front: Front::new(engine.clone(), id, hooks),
            password,
            timeout_ms: engine.negotiate_timeout(timeout_ms),
            rt,
            closed: AtomicBool::new(false),
        })
    }

    /// A new handle to the live session `session_id` (see
    /// [`Keeper::resume_session`](crate::Keeper::resume_session)).
    pub(crate) fn resume(
        engine: &Arc<Engine>,
        session_id: i64,
        password: [u8; 16],
        timeout_ms: i32,
    ) -> Result<Session> {
        let rt = Arc::new(SessionRt::new());
        let sink: Arc<dyn EventSink> = rt.clone();
        let hooks = Arc::new(SessionHooks::new(Vec::new(), sink, true));
        let timeout_ms = engine.resume_session(session_id, &password, timeout_ms, hooks.clone())?;
        Ok(Session {
            front: Front::new(engine.clone(), session_id, hooks),
            password,
            timeout_ms,
            rt,
            closed: AtomicBool::new(false),
        })
    }

    /// The session's password (for resuming it, e.g. over the wire).
    pub fn password(&self) -> [u8; 16] {
        self.password
    }

    /// The negotiated timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.timeout_ms).unwrap_or(0))
    }

    /// Stops heartbeats, as if the process hung: the session expires once
    /// its timeout passes.
    pub fn pause_heartbeats(&self) {
        self.front.set_heartbeats(false);
    }

    /// Restarts heartbeats (the session is touched at the next tick).
    pub fn resume_heartbeats(&self) {
        self.front.set_heartbeats(true);
    }

    /// True once the session expired.
    pub fn is_expired(&self) -> bool {
        *self.rt.state.read() == KeeperState::Expired
    }

    /// Closes the session: its ephemerals are deleted (firing others'
    /// watches) and it sees `Closed`. Closing twice is fine.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if *self.rt.state.read() != KeeperState::SyncConnected {
            return Ok(());
        }
        let engine = self.front.engine();
        if !engine.is_attached_to(self.front.session_id(), self.front.hooks()) {
            // Another handle resumed the session (`Keeper::resume_session`):
            // it owns the session now, as a newer connection does in
            // ZooKeeper, and this stale handle must not close it.
            return Ok(());
        }
        engine.close_session(self.front.session_id())
    }

    /// Expires this session now (fault injection; see [`Keeper::expire_session`](crate::Keeper::expire_session)).
    pub fn expire(&self) -> Result<()> {
        self.front.engine().expire_session(self.front.session_id())
    }

    fn check_usable(&self) -> Result<()> {
        match *self.rt.state.read() {
            KeeperState::SyncConnected => Ok(()),
            KeeperState::Closed => {
                Err(Error::new(ErrorKind::SessionExpired).detail("the session was closed"))
            }
            KeeperState::AuthFailed => Err(Error::new(ErrorKind::AuthFailed)
                .detail("an earlier authentication failed; the handle is dead")),
            _ => Err(Error::new(ErrorKind::SessionExpired)),
        }
    }

    /// Runs a write on a usable handle; errors name `path` if they name none.
    fn write<C: front::Command>(&self, path: &str, command: C) -> Result<C::Output> {
        self.check_usable()?;
        self.front.write(command).map_err(|e| e.or_path(path))
    }

    /// Runs a read on a usable handle under the state read lock.
    fn read<T>(&self, path: &str, f: impl FnOnce(&front::Read<'_>) -> Result<T>) -> Result<T> {
        self.check_usable()?;
        let read = self.front.read().map_err(|e| e.or_path(path))?;
        f(&read).map_err(|e| e.or_path(path))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Session({:#x}, {:?})",
            self.front.session_id(),
            *self.rt.state.read()
        )
    }
}

impl Coordinator for Session {
    fn session_id(&self) -> i64 {
        self.front.session_id()
    }

    fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Result<(String, Stat)> {
        // Checked first, as the Java client does (A.1); a sequential prefix
        // may end with '/'.
        if options.mode.is_sequential() {
            path::validate_sequential_prefix(path)?;
        } else {
            path::validate(path)?;
        }
        let create = front::Create {
            path: path.to_string(),
            data: data.map(<[u8]>::to_vec),
            options: options.clone(),
        };
        self.write(path, create)
    }

    fn delete(&self, path: &str, version: i32) -> Result<()> {
        path::validate(path)?;
        let delete = front::Delete {
            path: path.to_string(),
            version,
        };
        self.write(path, delete)
    }

    fn set_data_with(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        path::validate(path)?;
        let set = front::SetData {
            path: path.to_string(),
            data: data.map(<[u8]>::to_vec),
            version,
        };
        self.write(path, set)
    }

    fn exists_with(&self, path: &str, watcher: Option<&Watcher>) -> Result<Option<Stat>> {
        path::validate(path)?;
        let register = |exists: bool| {
            if let Some(w) = watcher {
                let kind = if exists {
                    Registration::Data
                } else {
                    Registration::Exist
                };
                self.rt.register(kind, path, w);
            }
        };
        let hook: front::Register<'_> = if watcher.is_some() {
            Some(&register)
        } else {
            None
        };
        self.read(path, |read| read.exists(path, hook))
    }

    fn get_data_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        path::validate(path)?;
        let register = |_: bool| {
            if let Some(w) = watcher {
                self.rt.register(Registration::Data, path, w);
            }
        };
        let hook: front::Register<'_> = if watcher.is_some() {
            Some(&register)
        } else {
            None
        };
        self.read(path, |read| read.get_data(path, hook))
    }

    fn get_children_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        path::validate(path)?;
        let register = |_: bool| {
            if let Some(w) = watcher {
                self.rt.register(Registration::Child, path, w);
            }
        };
        let hook: front::Register<'_> = if watcher.is_some() {
            Some(&register)
        } else {
            None
        };
        self.read(path, |read| read.get_children(path, hook))
    }

    fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        path::validate(path)?;
        self.read(path, |read| read.get_acl(path))
    }

    fn set_acl(&self, path: &str, acl: &[Acl], aversion: i32) -> Result<Stat> {
        path::validate(path)?;
        let set = front::SetAcl {
            path: path.to_string(),
            acl: acl.to_vec(),
            version: aversion,
        };
        self.write(path, set)
    }

    fn multi_results(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        self.check_usable()?;
        self.front.write(front::Multi(ops.to_vec()))
    }

    fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        self.check_usable()?;
        Ok(self.front.read()?.multi_read(ops, false))
    }

    fn get_all_children_number(&self, path: &str) -> Result<u64> {
        path::validate(path)?;
        self.read(path, |read| read.get_all_children_number(path))
    }

    fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        path::validate(prefix)?;
        self.read(prefix, |read| Ok(read.get_ephemerals(prefix)))
    }

    fn sync(&self, path: &str) -> Result<()> {
        path::validate(path)?;
        self.check_usable()?;
        self.front.sync()
    }

    fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: &Watcher) -> Result<()> {
        path::validate(path)?;
        self.check_usable()?;
        let recursive = mode == AddWatchMode::PersistentRecursive;
        let kind = if recursive {
            Registration::PersistentRecursive
        } else {
            Registration::Persistent
        };
        self.front
            .add_watch(path, recursive, &|| self.rt.register(kind, path, watcher))
    }

    fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()> {
        path::validate(path)?;
        self.check_usable()?;
        if !self.rt.watches.lock().contains(path, kind, watcher) {
            return Err(Error::with_path(ErrorKind::NoWatcher, path));
        }
        let removed = Mutex::new(None);
        self.front
            .remove_watches(path, kind, watcher.is_none(), &|| {
                *removed.lock() = Some(self.rt.watches.lock().remove(path, kind, watcher));
            })?;
        match removed.into_inner().flatten() {
            Some(deliveries) => {
                self.rt.deliver(deliveries);
                Ok(())
            }
            None => Err(Error::with_path(ErrorKind::NoWatcher, path)),
        }
    }

    fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.check_usable()?;
        if scheme != "digest" {
            // ZooKeeper closes the connection and the client handle is dead
            // (C.6); the session itself lives on until it expires.
            self.front.set_heartbeats(false);
            *self.rt.state.write() = KeeperState::AuthFailed;
            let event = WatchedEvent::state(KeeperState::AuthFailed);
            let mut deliveries = self.rt.watches.lock().all(&event, false);
            if !deliveries.iter().any(|d| matches!(d, Delivery::Default(_))) {
                deliveries.push(Delivery::Default(event));
            }
            self.rt.deliver(deliveries);
            return Err(
                Error::new(ErrorKind::AuthFailed).detail(format!("unknown scheme {scheme:?}"))
            );
        }
        self.front.add_digest(auth);
        Ok(())
    }

    fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        self.check_usable()?;
        Ok(self.front.who_am_i())
    }

    fn events(&self) -> WatchReceiver {
        self.rt.dispatch.events()
    }

    fn default_watcher(&self) -> Watcher {
        self.rt.default_watcher.clone()
    }

    fn state(&self) -> KeeperState {
        *self.rt.state.read()
    }
}
