//! Local mirrors of part of the tree, kept current by persistent watches:
//! one node ([`NodeCache`], for configuration), the children of a node, or
//! a whole subtree ([`TreeCache`]) — Curator's `NodeCache`,
//! `PathChildrenCache`, `TreeCache` / `CuratorCache`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::util;
use crate::event::{AddWatchMode, EventType, KeeperState, WatchReceiver, Watcher, WatcherType};
use crate::node::Stat;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Result};

/// One cached node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    /// Full path.
    pub path: String,
    /// Data (empty for ZooKeeper's null).
    pub data: Vec<u8>,
    /// Stat when read.
    pub stat: Stat,
}

/// A change the cache saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// A node appeared.
    Added(NodeData),
    /// A node's data (or Stat) changed: the new state.
    Updated(NodeData),
    /// A node went: its last known state.
    Removed(NodeData),
    /// The session ended; the cache stops updating.
    SessionLost,
}

type Listener = Arc<dyn Fn(&CacheEvent) + Send + Sync>;

struct Shared {
    entries: Mutex<BTreeMap<String, NodeData>>,
    changed: Condvar,
    listeners: Mutex<Vec<Listener>>,
    failure: Mutex<Option<Error>>,
}

/// Which nodes a mirror covers: the root and descendants `min..=max`
/// levels below it (0 is the root itself).
#[derive(Debug, Clone, Copy)]
struct Depths {
    min: usize,
    max: usize,
}

struct Mirror<C: Coordinator + ?Sized + 'static> {
    client: Arc<C>,
    root: String,
    depths: Depths,
    shared: Arc<Shared>,
}

impl<C: Coordinator + ?Sized + 'static> Mirror<C> {
    fn depth_of(&self, p: &str) -> Option<usize> {
        if p == self.root {
            return Some(0);
        }
        if !path::is_within(p, &self.root) {
            return None;
        }
        let below = if self.root == "/" {
            p
        } else {
            &p[self.root.len()..]
        };
        Some(below.matches('/').count())
    }

    fn covers(&self, p: &str) -> bool {
        self.depth_of(p)
            .is_some_and(|d| d >= self.depths.min && d <= self.depths.max)
    }

    /// Reads everything covered, as it is now.
    fn load(&self) -> Result<BTreeMap<String, NodeData>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(self.root.clone(), 0usize)];
        while let Some((p, depth)) = stack.pop() {
            let (data, stat) = match self.client.get_data(&p) {
                Ok(found) => found,
                Err(e) if e.kind() == ErrorKind::NoNode => continue,
                Err(e) => return Err(e),
            };
            if depth >= self.depths.min {
                out.insert(
                    p.clone(),
                    NodeData {
                        path: p.clone(),
                        data,
                        stat,
                    },
                );
            }
            if depth < self.depths.max && stat.num_children > 0 {
                match self.client.get_children(&p) {
                    Ok(children) => {
                        for c in children {
                            stack.push((path::join(&p, &c), depth + 1));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NoNode => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// Re-reads one node and records what changed.
    fn refresh(&self, p: &str) -> Result<Option<CacheEvent>> {
        if !self.covers(p) {
            return Ok(None);
        }
        let now = match self.client.get_data(p) {
            Ok((data, stat)) => Some(NodeData {
                path: p.to_string(),
                data,
                stat,
            }),
            Err(e) if e.kind() == ErrorKind::NoNode => None,
            Err(e) => return Err(e),
        };
        let mut entries = self.shared.entries.lock();
        let event = match (entries.get(p), now) {
            (None, None) => None,
            (Some(_), None) => entries.remove(p).map(CacheEvent::Removed),
            (None, Some(n)) => {
                entries.insert(p.to_string(), n.clone());
                Some(CacheEvent::Added(n))
            }
            (Some(old), Some(n)) if old.stat == n.stat => None,
            (Some(_), Some(n)) => {
                entries.insert(p.to_string(), n.clone());
                Some(CacheEvent::Updated(n))
            }
        };
        Ok(event)
    }

    /// Reloads everything and reports the differences (after a reconnect,
    /// when events may have been missed).
    fn resync(&self) -> Result<Vec<CacheEvent>> {
        let fresh = self.load()?;
        let mut entries = self.shared.entries.lock();
        let mut events = Vec::new();
        for (p, old) in entries.iter() {
            match fresh.get(p) {
                None => events.push(CacheEvent::Removed(old.clone())),
                Some(n) if n.stat != old.stat => events.push(CacheEvent::Updated(n.clone())),
                Some(_) => {}
            }
        }
        for (p, n) in &fresh {
            if !entries.contains_key(p) {
                events.push(CacheEvent::Added(n.clone()));
            }
        }
        *entries = fresh;
        Ok(events)
    }

    fn publish(&self, events: &[CacheEvent]) {
        if events.is_empty() {
            return;
        }
        self.shared.changed.notify_all();
        let listeners: Vec<Listener> = self.shared.listeners.lock().clone();
        for event in events {
            for listener in &listeners {
                listener(event);
            }
        }
    }

    /// The worker: applies events in order until stopped or the session
    /// ends.
    fn run(&self, events: &WatchReceiver, stop: &Receiver<()>) {
        loop {
            let Some(event) = util::next_event_or_stop(events, stop) else {
                return;
            };
            let result = match (event.event_type, event.path.as_deref()) {
                (EventType::None, _) => match event.state {
                    KeeperState::Expired | KeeperState::Closed | KeeperState::AuthFailed => {
                        *self.shared.failure.lock() = Some(Error::new(ErrorKind::SessionExpired));
                        self.publish(&[CacheEvent::SessionLost]);
                        return;
                    }
                    KeeperState::SyncConnected => self.resync(),
                    _ => Ok(Vec::new()),
                },
                (EventType::NodeChildrenChanged, _) | (_, None) => Ok(Vec::new()),
                (_, Some(p)) => self.refresh(p).map(|e| e.into_iter().collect()),
            };
            match result {
                Ok(events) => self.publish(&events),
                Err(e) if e.kind() == ErrorKind::SessionExpired => {
                    *self.shared.failure.lock() = Some(e);
                    self.publish(&[CacheEvent::SessionLost]);
                    return;
                }
                Err(e) => *self.shared.failure.lock() = Some(e),
            }
        }
    }
}

/// The running part of a cache: its worker thread and watch.
struct Running<C: Coordinator + ?Sized + 'static> {
    client: Arc<C>,
    root: String,
    watcher: Watcher,
    shared: Arc<Shared>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl<C: Coordinator + ?Sized + 'static> Running<C> {
    fn start(client: Arc<C>, root: &str, depths: Depths, mode: AddWatchMode) -> Result<Self> {
        let root = util::base_path(root)?;
        let shared = Arc::new(Shared {
            entries: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
            listeners: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
        });
        let (watcher, events) = Watcher::channel();
        // Watch first, then read: a change after the read is an event we
        // will apply; one before it is in what we read. Applying an event
        // re-reads the node, so doing it twice is harmless.
        client.add_watch(&root, mode, &watcher)?;
        let mirror = Mirror {
            client: client.clone(),
            root: root.clone(),
            depths,
            shared: shared.clone(),
        };
        match mirror.load() {
            Ok(loaded) => *shared.entries.lock() = loaded,
            Err(e) => {
                let _ = client.remove_watches(&root, WatcherType::Any, Some(&watcher));
                return Err(e);
            }
        }
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name(format!("innkeeper-cache {root}"))
            .spawn(move || mirror.run(&events, &stop_rx))
            .map_err(|e| Error::new(ErrorKind::SystemError).detail(e.to_string()))?;
        Ok(Running {
            client,
            root,
            watcher,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&BTreeMap<String, NodeData>) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut entries = self.shared.entries.lock();
        loop {
            if done(&entries) {
                return true;
            }
            if self
                .shared
                .changed
                .wait_until(&mut entries, deadline)
                .timed_out()
            {
                return done(&entries);
            }
        }
    }

    fn close(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = util::join_unless_current(t);
        }
        let _ = self
            .client
            .remove_watches(&self.root, WatcherType::Any, Some(&self.watcher));
    }
}

/// The latest data of one node, kept current by a persistent watch, with
/// change listeners: the classic way to follow a configuration value.
///
/// Listeners and updates run on the cache's own thread, in the order of
/// the changes. A change is applied by re-reading the node, so rapid
/// successive writes may be seen as one update with the latest value.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::NodeCache;
/// use innkeeper::{Coordinator, CreateMode, Keeper};
///
/// let keeper = Keeper::in_memory()?;
/// let admin = keeper.session()?;
/// admin.create("/config", b"", CreateMode::Persistent)?;
/// admin.create("/config/limits", b"max=10", CreateMode::Persistent)?;
/// let limits = NodeCache::new(Arc::new(keeper.session()?), "/config/limits")?;
/// assert_eq!(limits.current().map(|n| n.data), Some(b"max=10".to_vec()));
/// admin.set_data("/config/limits", b"max=20", -1)?;
/// assert!(limits.wait_for(Duration::from_secs(5), |n| n.is_some_and(|n| n.data == b"max=20")));
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct NodeCache<C: Coordinator + ?Sized + 'static> {
    running: Running<C>,
}

impl<C: Coordinator + ?Sized + 'static> NodeCache<C> {
    /// Starts following `path` (which need not exist yet).
    pub fn new(client: Arc<C>, path: &str) -> Result<NodeCache<C>> {
        Ok(NodeCache {
            running: Running::start(
                client,
                path,
                Depths { min: 0, max: 0 },
                AddWatchMode::Persistent,
            )?,
        })
    }

    /// The node as last seen, `None` while it does not exist.
    pub fn current(&self) -> Option<NodeData> {
        self.running.shared.entries.lock().values().next().cloned()
    }

    /// Calls `listener` for every change, on the cache's thread.
    pub fn on_change(&self, listener: impl Fn(&CacheEvent) + Send + Sync + 'static) {
        self.running
            .shared
            .listeners
            .lock()
            .push(Arc::new(listener));
    }

    /// Waits up to `timeout` until `done` holds for the cached node.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(Option<&NodeData>) -> bool) -> bool {
        self.running
            .wait_for(timeout, |entries| done(entries.values().next()))
    }

    /// Why the cache stopped updating, if it did.
    pub fn failure(&self) -> Option<Error> {
        self.running.shared.failure.lock().clone()
    }
}

impl<C: Coordinator + ?Sized + 'static> Drop for NodeCache<C> {
    fn drop(&mut self) {
        self.running.close();
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for NodeCache<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCache")
            .field("path", &self.running.root)
            .finish()
    }
}

/// A mirror of a subtree (or just the children of a node) with added /
/// updated / removed events, kept current by one persistent recursive
/// watch.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::TreeCache;
/// use innkeeper::{Coordinator, CreateMode, Keeper};
///
/// let keeper = Keeper::in_memory()?;
/// let admin = keeper.session()?;
/// admin.create("/hosts", b"", CreateMode::Persistent)?;
/// let hosts = TreeCache::children(Arc::new(keeper.session()?), "/hosts")?;
/// admin.create("/hosts/web-1", b"10.0.0.1", CreateMode::Ephemeral)?;
/// assert!(hosts.wait_for(Duration::from_secs(5), |nodes| nodes.len() == 1));
/// assert_eq!(hosts.get("/hosts/web-1").map(|n| n.data), Some(b"10.0.0.1".to_vec()));
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct TreeCache<C: Coordinator + ?Sized + 'static> {
    running: Running<C>,
}

impl<C: Coordinator + ?Sized + 'static> TreeCache<C> {
    /// Mirrors `root` and everything below it.
    pub fn new(client: Arc<C>, root: &str) -> Result<TreeCache<C>> {
        Self::with_depths(client, root, 0, usize::MAX)
    }

    /// Mirrors the children of `parent` (not `parent` itself, nor deeper
    /// nodes): a children cache.
    pub fn children(client: Arc<C>, parent: &str) -> Result<TreeCache<C>> {
        Self::with_depths(client, parent, 1, 1)
    }

    /// Mirrors `root`'s descendants from `min_depth` to `max_depth` levels
    /// below it (0 is `root` itself).
    pub fn with_depths(
        client: Arc<C>,
        root: &str,
        min_depth: usize,
        max_depth: usize,
    ) -> Result<TreeCache<C>> {
        Ok(TreeCache {
            running: Running::start(
                client,
                root,
                Depths {
                    min: min_depth,
                    max: max_depth.max(min_depth),
                },
                AddWatchMode::PersistentRecursive,
            )?,
        })
    }

    /// One cached node.
    pub fn get(&self, path: &str) -> Option<NodeData> {
        self.running.shared.entries.lock().get(path).cloned()
    }

    /// Every cached node, by path.
    pub fn entries(&self) -> Vec<NodeData> {
        self.running
            .shared
            .entries
            .lock()
            .values()
            .cloned()
            .collect()
    }

    /// Calls `listener` for every change, on the cache's thread.
    pub fn on_change(&self, listener: impl Fn(&CacheEvent) + Send + Sync + 'static) {
        self.running
            .shared
            .listeners
            .lock()
            .push(Arc::new(listener));
    }

    /// Like [`TreeCache::on_change`], also passing every cached node.
    pub(crate) fn on_change_entries(
        &self,
        listener: impl Fn(&CacheEvent, &[NodeData]) + Send + Sync + 'static,
    ) {
        // Weak: the listener lives inside what it points to.
        let shared = Arc::downgrade(&self.running.shared);
        self.on_change(move |event| {
            if let Some(shared) = shared.upgrade() {
                let nodes: Vec<NodeData> = shared.entries.lock().values().cloned().collect();
                listener(event, &nodes);
            }
        });
    }

    /// Waits up to `timeout` until `done` holds for the cached nodes.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[NodeData]) -> bool) -> bool {
        self.running.wait_for(timeout, |entries| {
            let nodes: Vec<NodeData> = entries.values().cloned().collect();
            done(&nodes)
        })
    }

    /// Why the cache stopped updating, if it did.
    pub fn failure(&self) -> Option<Error> {
        self.running.shared.failure.lock().clone()
    }
}

impl<C: Coordinator + ?Sized + 'static> Drop for TreeCache<C> {
    fn drop(&mut self) {
        self.running.close();
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for TreeCache<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCache")
            .field("root", &self.running.root)
            .finish()
    }
}
