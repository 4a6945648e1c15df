//! Watch events and watchers: the public types a session's events arrive
//! as ([`WatchedEvent`], [`EventType`], [`KeeperState`]), where they go
//! ([`Watcher`], [`WatchReceiver`]) and how watches are named
//! ([`WatcherType`], [`AddWatchMode`]).
//!
//! The client-side registry that decides which of a session's watchers an
//! event reaches is internal, in `event/registry.rs`.

mod registry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

pub(crate) use registry::{ClientWatches, Delivery, Dispatch, Registration};

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
        (
            Watcher(Arc::new(Target::Channel(tx))),
            WatchReceiver::new(rx),
        )
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

/// The receiving end of a session's events or of [`Watcher::channel`].
///
/// Cloning gives another handle on the same stream: each event is received
/// by one of the clones. Once every sender is gone (the watcher dropped and
/// its watches fired or removed, or the session dropped) and the stream is
/// empty, the receiving calls answer `None` at once.
#[derive(Debug, Clone)]
pub struct WatchReceiver(Receiver<WatchedEvent>);

impl WatchReceiver {
    pub(crate) fn new(rx: Receiver<WatchedEvent>) -> WatchReceiver {
        WatchReceiver(rx)
    }

    /// Blocks until an event arrives; `None` once no event can come.
    pub fn recv(&self) -> Option<WatchedEvent> {
        self.0.recv().ok()
    }

    /// Blocks until an event arrives or `timeout` passes.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<WatchedEvent> {
        self.0.recv_timeout(timeout).ok()
    }

    /// Blocks until an event arrives or the `deadline` passes.
    pub fn recv_deadline(&self, deadline: Instant) -> Option<WatchedEvent> {
        self.0.recv_deadline(deadline).ok()
    }

    /// Blocks until an event arrives or `timeout` passes (the same as
    /// [`recv_timeout`](WatchReceiver::recv_timeout)).
    pub fn wait(&self, timeout: Duration) -> Option<WatchedEvent> {
        self.recv_timeout(timeout)
    }

    /// An event if one is waiting.
    pub fn try_recv(&self) -> Option<WatchedEvent> {
        self.0.try_recv().ok()
    }

    /// Every event waiting now.
    pub fn drain(&self) -> Vec<WatchedEvent> {
        self.0.try_iter().collect()
    }

    /// Events as they arrive, blocking for each; ends once no event can come.
    pub fn iter(&self) -> impl Iterator<Item = WatchedEvent> + '_ {
        self.0.iter()
    }

    /// The events waiting now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = WatchedEvent> + '_ {
        self.0.try_iter()
    }

    /// True if no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many events are waiting.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The channel underneath, for the recipes' waits on several channels
    /// at once (`crossbeam_channel::Select`); not public, so no channel
    /// crate's type is part of the API.
    pub(crate) fn channel(&self) -> &Receiver<WatchedEvent> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn created(path: &str) -> WatchedEvent {
        WatchedEvent::node(EventType::NodeCreated, path)
    }

    #[test]
    fn a_watch_receiver_hands_out_each_event_once_in_order() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let events = WatchReceiver::new(rx);
        assert!(events.is_empty());
        assert_eq!(events.try_recv(), None);
        let short = Duration::from_millis(5);
        assert_eq!(events.recv_timeout(short), None);
        assert_eq!(events.recv_deadline(Instant::now() + short), None);
        for p in ["/a", "/b", "/c", "/d", "/e"] {
            tx.send(created(p)).unwrap();
        }
        assert_eq!(events.len(), 5);
        assert_eq!(events.recv(), Some(created("/a")));
        assert_eq!(events.recv_timeout(short), Some(created("/b")));
        // A clone shares the stream: what one takes, the other does not see.
        let other = events.clone();
        assert_eq!(other.try_recv(), Some(created("/c")));
        assert_eq!(events.try_iter().next(), Some(created("/d")));
        assert_eq!(events.drain(), vec![created("/e")]);
        assert!(other.is_empty());
    }

    #[test]
    fn a_watch_receiver_ends_once_no_event_can_come() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let events = WatchReceiver::new(rx);
        tx.send(created("/a")).unwrap();
        tx.send(WatchedEvent::state(KeeperState::Closed)).unwrap();
        drop(tx);
        // What was sent is still received; then the calls answer at once.
        let all: Vec<WatchedEvent> = events.iter().collect();
        assert_eq!(
            all,
            vec![created("/a"), WatchedEvent::state(KeeperState::Closed)]
        );
        assert_eq!(events.recv(), None);
        assert_eq!(events.recv_timeout(Duration::from_secs(60)), None);
        assert_eq!(events.wait(Duration::from_secs(60)), None);
    }
}
