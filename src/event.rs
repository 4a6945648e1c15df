//! Watch events, watchers, and the client-side watch registry.
//!
//! The server side (`watch`) decides *which session* hears of a change; the
//! registry here decides *which of that session's watchers* it reaches, the
//! way ZooKeeper's Java client does (its `ZKWatchManager`): one-shot
//! watchers are forgotten when they fire, persistent ones stay, and removing
//! watches tells each removed watcher so with a `*WatchRemoved` event.
//! Both the in-process session and the remote client use it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

/// What happened (ZooKeeper's `Watcher.Event.EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A session state change, not a node event.
    None,
    /// The watched node was created.
    NodeCreated,
    /// The watched node was deleted.
    NodeDeleted,
    /// The watched node's data was set.
    NodeDataChanged,
    /// A child of the watched node was created or deleted.
    NodeChildrenChanged,
    /// A data or exist watch was removed.
    DataWatchRemoved,
    /// A child watch was removed.
    ChildWatchRemoved,
    /// A persistent or persistent-recursive watch was removed.
    PersistentWatchRemoved,
}

impl EventType {
    /// ZooKeeper's number for the type.
    pub fn code(self) -> i32 {
        match self {
            EventType::None => -1,
            EventType::NodeCreated => 1,
            EventType::NodeDeleted => 2,
            EventType::NodeDataChanged => 3,
            EventType::NodeChildrenChanged => 4,
            EventType::DataWatchRemoved => 5,
            EventType::ChildWatchRemoved => 6,
            EventType::PersistentWatchRemoved => 7,
        }
    }

    /// The type for a ZooKeeper number.
    pub fn from_code(code: i32) -> Option<EventType> {
        Some(match code {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            5 => EventType::DataWatchRemoved,
            6 => EventType::ChildWatchRemoved,
            7 => EventType::PersistentWatchRemoved,
            _ => return None,
        })
    }

    /// The name ZooKeeper gives the type (`NodeCreated`, …).
    pub fn name(self) -> &'static str {
        match self {
            EventType::None => "None",
            EventType::NodeCreated => "NodeCreated",
            EventType::NodeDeleted => "NodeDeleted",
            EventType::NodeDataChanged => "NodeDataChanged",
            EventType::NodeChildrenChanged => "NodeChildrenChanged",
            EventType::DataWatchRemoved => "DataWatchRemoved",
            EventType::ChildWatchRemoved => "ChildWatchRemoved",
            EventType::PersistentWatchRemoved => "PersistentWatchRemoved",
        }
    }
}

/// A session's state (ZooKeeper's `Watcher.Event.KeeperState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeeperState {
    /// The connection is lost; a remote session tries to reconnect.
    Disconnected,
    /// Connected and usable.
    SyncConnected,
    /// Authentication failed; the session is unusable.
    AuthFailed,
    /// Connected to a read-only server.
    ConnectedReadOnly,
    /// The session expired; the handle is dead.
    Expired,
    /// The session was closed by its owner.
    Closed,
}

impl KeeperState {
    /// ZooKeeper's number for the state.
    pub fn code(self) -> i32 {
        match self {
            KeeperState::Disconnected => 0,
            KeeperState::SyncConnected => 3,
            KeeperState::AuthFailed => 4,
            KeeperState::ConnectedReadOnly => 5,
            KeeperState::Expired => -112,
            KeeperState::Closed => 7,
        }
    }
}

/// One event delivered to a watcher.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The session's state when it happened.
    pub state: KeeperState,
    /// The node it concerns (`None` for state changes).
    pub path: Option<String>,
}

impl WatchedEvent {
    /// A node event in the connected state.
    pub fn node(event_type: EventType, path: impl Into<String>) -> WatchedEvent {
        WatchedEvent {
            event_type,
            state: KeeperState::SyncConnected,
            path: Some(path.into()),
        }
    }

    /// A state change.
    pub fn state(state: KeeperState) -> WatchedEvent {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: None,
        }
    }
}

type Callback = dyn Fn(WatchedEvent) + Send + Sync;

enum Target {
    Default,
    Channel(Sender<WatchedEvent>),
    Callback(Box<Callback>),
}

/// Where a watch's events go: the session's own event stream, a channel
/// you wait on, or a callback. Cloning gives the same watcher (a path
/// watched twice by one watcher fires it once).
#[derive(Clone)]
pub struct Watcher(Arc<Target>);

impl Watcher {
    /// A watcher and the receiver its events arrive on.
    ///
    /// ```
    /// use std::time::Duration;
    /// use innkeeper::{Coordinator, CreateMode, EventType, Keeper, Watcher};
    ///
    /// let keeper = Keeper::in_memory()?;
    /// let session = keeper.session()?;
    /// let (watcher, events) = Watcher::channel();
    /// assert_eq!(session.exists_with("/job", Some(&watcher))?, None);
    /// session.create("/job", b"", CreateMode::Persistent)?;
    /// let event = events.wait(Duration::from_secs(1)).expect("an event");
    /// assert_eq!(event.event_type, EventType::NodeCreated);
    /// # Ok::<(), innkeeper::Error>(())
    /// ```
    pub fn channel() -> (Watcher, WatchReceiver) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Watcher(Arc::new(Target::Channel(tx))), WatchReceiver(rx))
    }

    /// A watcher that calls `f` for each event, on the session's event
    /// thread (never under an engine lock; `f` may call the keeper).
    pub fn callback(f: impl Fn(WatchedEvent) + Send + Sync + 'static) -> Watcher {
        Watcher(Arc::new(Target::Callback(Box::new(f))))
    }

    pub(crate) fn default_target() -> Watcher {
        Watcher(Arc::new(Target::Default))
    }

    fn same(&self, other: &Watcher) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.0 {
            Target::Default => "session",
            Target::Channel(_) => "channel",
            Target::Callback(_) => "callback",
        };
        write!(f, "Watcher({kind}@{:p})", Arc::as_ptr(&self.0))
    }
}

/// The receiving end of [`Watcher::channel`].
#[derive(Debug, Clone)]
pub struct WatchReceiver(Receiver<WatchedEvent>);

impl WatchReceiver {
    /// Blocks until an event arrives or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> Option<WatchedEvent> {
        self.0.recv_timeout(timeout).ok()
    }

    /// An event if one is waiting.
    pub fn try_recv(&self) -> Option<WatchedEvent> {
        self.0.try_recv().ok()
    }

    /// Every event waiting now.
    pub fn drain(&self) -> Vec<WatchedEvent> {
        self.0.try_iter().collect()
    }

    /// The underlying channel, for `select!`.
    pub fn receiver(&self) -> &Receiver<WatchedEvent> {
        &self.0
    }
}

/// Which watches a removal addresses (ZooKeeper's `WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    /// Child watches.
    Children,
    /// Data and exist watches.
    Data,
    /// All of them, persistent ones included.
    Any,
}

impl WatcherType {
    /// ZooKeeper's number (1, 2, 3).
    pub fn code(self) -> i32 {
        match self {
            WatcherType::Children => 1,
            WatcherType::Data => 2,
            WatcherType::Any => 3,
        }
    }

    /// The type for a ZooKeeper number.
    pub fn from_code(code: i32) -> Option<WatcherType> {
        match code {
            1 => Some(WatcherType::Children),
            2 => Some(WatcherType::Data),
            3 => Some(WatcherType::Any),
            _ => None,
        }
    }
}

/// `addWatch` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddWatchMode {
    /// Data and child events of one node, until removed.
    Persistent,
    /// Data events of a node and all its descendants, until removed.
    PersistentRecursive,
}

/// Which client-side map a registration lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Registration {
    Data,
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

/// Where an event must go: the session's stream or a user watcher.
pub(crate) enum Delivery {
    Default(WatchedEvent),
    Channel(Sender<WatchedEvent>, WatchedEvent),
    Callback(Watcher, WatchedEvent),
}

impl Delivery {
    fn new(watcher: &Watcher, event: WatchedEvent) -> Delivery {
        match &*watcher.0 {
            Target::Default => Delivery::Default(event),
            Target::Channel(tx) => Delivery::Channel(tx.clone(), event),
            Target::Callback(_) => Delivery::Callback(watcher.clone(), event),
        }
    }

    /// Runs a callback delivery; other kinds are sent by the caller.
    pub(crate) fn run_callback(watcher: &Watcher, event: WatchedEvent) {
        if let Target::Callback(f) = &*watcher.0 {
            f(event);
        }
    }
}

/// Delivers a session's events: the session's own stream, watcher channels,
/// and callbacks on an event thread started on first use (so a callback may
/// call the session back without deadlock, and never runs under a lock of
/// the engine or of a connection).
pub(crate) struct Dispatch {
    events_tx: Sender<WatchedEvent>,
    events_rx: Receiver<WatchedEvent>,
    callbacks: parking_lot::Mutex<Option<Sender<(Watcher, WatchedEvent)>>>,
    thread_name: &'static str,
}

impl Dispatch {
    pub(crate) fn new(thread_name: &'static str) -> Dispatch {
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        Dispatch {
            events_tx,
            events_rx,
            callbacks: parking_lot::Mutex::new(None),
            thread_name,
        }
    }

    /// The session's own stream.
    pub(crate) fn events(&self) -> Receiver<WatchedEvent> {
        self.events_rx.clone()
    }

    /// Sends each delivery where it goes; never blocks on a watcher.
    pub(crate) fn deliver(&self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            match d {
                Delivery::Default(event) => {
                    let _ = self.events_tx.send(event);
                }
                Delivery::Channel(tx, event) => {
                    let _ = tx.send(event);
                }
                Delivery::Callback(watcher, event) => self.run_later(watcher, event),
            }
        }
    }

    fn run_later(&self, watcher: Watcher, event: WatchedEvent) {
        let mut slot = self.callbacks.lock();
        if slot.is_none() {
            let (tx, rx) = crossbeam_channel::unbounded::<(Watcher, WatchedEvent)>();
            let spawned = std::thread::Builder::new()
                .name(self.thread_name.into())
                .spawn(move || {
                    for (watcher, event) in rx {
                        Delivery::run_callback(&watcher, event);
                    }
                });
            if spawned.is_err() {
                return;
            }
            *slot = Some(tx);
        }
        if let Some(tx) = slot.as_ref() {
            let _ = tx.send((watcher, event));
        }
    }
}

/// The client-side registry of one session.
#[derive(Default)]
pub(crate) struct ClientWatches {
    data: HashMap<String, Vec<Watcher>>,
    exist: HashMap<String, Vec<Watcher>>,
    child: HashMap<String, Vec<Watcher>>,
    persistent: HashMap<String, Vec<Watcher>>,
    recursive: HashMap<String, Vec<Watcher>>,
}

fn add_to(map: &mut HashMap<String, Vec<Watcher>>, path: &str, watcher: &Watcher) {
    let list = map.entry(path.to_string()).or_default();
    if !list.iter().any(|w| w.same(watcher)) {
        list.push(watcher.clone());
    }
}

fn take_into(map: &mut HashMap<String, Vec<Watcher>>, path: &str, out: &mut Vec<Watcher>) {
    if let Some(list) = map.remove(path) {
        for w in list {
            push_unique(out, &w);
        }
    }
}

fn push_unique(out: &mut Vec<Watcher>, watcher: &Watcher) {
    if !out.iter().any(|w| w.same(watcher)) {
        out.push(watcher.clone());
    }
}

fn contains(map: &HashMap<String, Vec<Watcher>>, path: &str, watcher: Option<&Watcher>) -> bool {
    map.get(path).is_some_and(|list| match watcher {
        None => !list.is_empty(),
        Some(w) => list.iter().any(|x| x.same(w)),
    })
}

fn remove_from(
    map: &mut HashMap<String, Vec<Watcher>>,
    path: &str,
    watcher: Option<&Watcher>,
    out: &mut Vec<Watcher>,
) -> bool {
    match watcher {
        None => match map.remove(path) {
            Some(list) => {
                for w in &list {
                    push_unique(out, w);
                }
                true
            }
            None => false,
        },
        Some(w) => {
            let Some(list) = map.get_mut(path) else {
                return false;
            };
            let before = list.len();
            list.retain(|x| !x.same(w));
            let removed = list.len() != before;
            if list.is_empty() {
                map.remove(path);
            }
            if removed {
                push_unique(out, w);
            }
            removed
        }
    }
}

impl ClientWatches {
    pub(crate) fn register(&mut self, kind: Registration, path: &str, watcher: &Watcher) {
        let map = match kind {
            Registration::Data => &mut self.data,
            Registration::Exist => &mut self.exist,
            Registration::Child => &mut self.child,
            Registration::Persistent => &mut self.persistent,
            Registration::PersistentRecursive => &mut self.recursive,
        };
        add_to(map, path, watcher);
    }

    /// The watchers a server event reaches; one-shot ones are forgotten.
    pub(crate) fn materialize(&mut self, event_type: EventType, path: &str) -> Vec<Delivery> {
        let mut hit = Vec::new();
        match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                take_into(&mut self.data, path, &mut hit);
                take_into(&mut self.exist, path, &mut hit);
            }
            EventType::NodeChildrenChanged => take_into(&mut self.child, path, &mut hit),
            EventType::NodeDeleted => {
                take_into(&mut self.data, path, &mut hit);
                take_into(&mut self.exist, path, &mut hit);
                take_into(&mut self.child, path, &mut hit);
            }
            _ => {}
        }
        if let Some(list) = self.persistent.get(path) {
            for w in list {
                push_unique(&mut hit, w);
            }
        }
        if event_type != EventType::NodeChildrenChanged {
            let mut at = Some(path);
            while let Some(p) = at {
                if let Some(list) = self.recursive.get(p) {
                    for w in list {
                        push_unique(&mut hit, w);
                    }
                }
                at = (p != "/").then(|| crate::path::parent(p));
            }
        }
        hit.iter()
            .map(|w| Delivery::new(w, WatchedEvent::node(event_type, path)))
            .collect()
    }

    /// True when a removal of `kind` at `path` would find a watcher.
    pub(crate) fn contains(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> bool {
        let persistent =
            contains(&self.persistent, path, watcher) || contains(&self.recursive, path, watcher);
        match kind {
            WatcherType::Children => contains(&self.child, path, watcher) || persistent,
            WatcherType::Data => {
                contains(&self.data, path, watcher)
                    || contains(&self.exist, path, watcher)
                    || persistent
            }
            WatcherType::Any => {
                contains(&self.child, path, watcher)
                    || contains(&self.data, path, watcher)
                    || contains(&self.exist, path, watcher)
                    || persistent
            }
        }
    }

    /// Removes watchers after the server agreed; returns the removal events
    /// to deliver, or `None` when nothing was removed locally.
    pub(crate) fn remove(
        &mut self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Option<Vec<Delivery>> {
        let mut child = Vec::new();
        let mut data = Vec::new();
        let mut persistent = Vec::new();
        let mut removed = false;
        if matches!(kind, WatcherType::Children | WatcherType::Any) {
            removed |= remove_from(&mut self.child, path, watcher, &mut child);
        }
        if matches!(kind, WatcherType::Data | WatcherType::Any) {
            removed |= remove_from(&mut self.data, path, watcher, &mut data);
            removed |= remove_from(&mut self.exist, path, watcher, &mut data);
        }
        if kind == WatcherType::Any {
            removed |= remove_from(&mut self.persistent, path, watcher, &mut persistent);
            removed |= remove_from(&mut self.recursive, path, watcher, &mut persistent);
        }
        if !removed {
            return None;
        }
        let mut out = Vec::new();
        for (list, event_type) in [
            (child, EventType::ChildWatchRemoved),
            (data, EventType::DataWatchRemoved),
            (persistent, EventType::PersistentWatchRemoved),
        ] {
            for w in list {
                out.push(Delivery::new(&w, WatchedEvent::node(event_type, path)));
            }
        }
        Some(out)
    }

    /// Every distinct watcher, for a state event; one-shot maps are cleared
    /// when `forget` is set (expiry, close).
    pub(crate) fn all(&mut self, event: &WatchedEvent, forget: bool) -> Vec<Delivery> {
        let mut hit = Vec::new();
        for map in [
            &self.data,
            &self.exist,
            &self.child,
            &self.persistent,
            &self.recursive,
        ] {
            for list in map.values() {
                for w in list {
                    push_unique(&mut hit, w);
                }
            }
        }
        if forget {
            *self = ClientWatches::default();
        }
        hit.iter()
            .map(|w| Delivery::new(w, event.clone()))
            .collect()
    }

    /// Paths per map, for re-registering watches after a reconnect:
    /// (data, exist, child, persistent, persistent recursive).
    pub(crate) fn paths(&self) -> [Vec<String>; 5] {
        let keys = |m: &HashMap<String, Vec<Watcher>>| {
            let mut v: Vec<String> = m.keys().cloned().collect();
            v.sort();
            v
        };
        [
            keys(&self.data),
            keys(&self.exist),
            keys(&self.child),
            keys(&self.persistent),
            keys(&self.recursive),
        ]
    }
}
