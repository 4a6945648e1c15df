//! The client-side watch registry of one session, as ZooKeeper's Java
//! client keeps it (its `ZKWatchManager`).
//!
//! The server side (`watch`) decides *which session* hears of a change; the
//! registry here decides *which of that session's watchers* it reaches:
//! one-shot watchers are forgotten when they fire, persistent ones stay,
//! and removing watches tells each removed watcher so with a
//! `*WatchRemoved` event. Both the in-process session and the remote client
//! use it; [`Dispatch`] then sends each delivery where it goes.

use std::collections::HashMap;

use crossbeam_channel::{Receiver, Sender};

use super::{EventType, Target, WatchReceiver, WatchedEvent, Watcher, WatcherType};

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
    pub(crate) fn events(&self) -> WatchReceiver {
        WatchReceiver::new(self.events_rx.clone())
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
