//! The part of a client connection that other threads touch: its ordered
//! output queue, its figures for `cons`, and its role as the session's
//! [`EventSink`]. The event loop owns the socket; the engine's committer
//! (completions, notifications) and the ticker (expiry) only queue bytes or
//! mark the connection closed here, then wake the loop.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use crate::engine::EventSink;
use crate::event::{EventType, KeeperState};
use crate::proto::{encode_notification, WatcherEvent};

/// KeeperState SyncConnected, the state of every server notification (D.7).
const STATE_SYNC_CONNECTED: i32 = 3;

/// Connections whose output or state changed, for the event loop.
pub(crate) struct Wakeup {
    dirty: Mutex<Vec<u64>>,
    waker: mio::Waker,
}

impl Wakeup {
    pub(crate) fn new(waker: mio::Waker) -> Wakeup {
        Wakeup {
            dirty: Mutex::new(Vec::new()),
            waker,
        }
    }

    /// Wakes the loop for connection `id` (or, with 0, to look at the
    /// server's state). One wake per burst: the loop drains the whole list.
    pub(crate) fn schedule(&self, id: u64) {
        let mut dirty = self.dirty.lock();
        dirty.push(id);
        if dirty.len() == 1 {
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.dirty.lock())
    }
}

/// Queued output of a connection, in the order the client must see it.
#[derive(Default)]
pub(crate) struct Out {
    pub frames: VecDeque<Vec<u8>>,
    pub bytes: usize,
    /// The connection is dead: output is dropped and the loop closes it.
    pub closed: bool,
    /// Send what is queued, then close (after closeSession, −6, −115, …).
    pub close_when_flushed: bool,
    /// Why the connection was closed (for the log).
    pub close_reason: &'static str,
    /// Since when queued output has made no progress (None: queue empty).
    pub stalled_since: Option<Instant>,
    /// Already in the loop's dirty list.
    scheduled: bool,
}

/// Per-connection figures for `cons`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnInfo {
    pub received: u64,
    pub sent: u64,
    /// Requests taken and not yet answered.
    pub outstanding: u64,
    pub timeout_ms: i32,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub latency: super::Latency,
    pub last_latency_ms: u64,
}

/// A client connection as the rest of the server sees it.
pub(crate) struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    pub established_ms: i64,
    out: Mutex<Out>,
    wakeup: Arc<Wakeup>,
    session_id: AtomicI64,
    output_bytes_max: AtomicUsize,
    /// Writes handed to the engine and not yet answered.
    pub(crate) writes_in_flight: AtomicUsize,
    pub info: Mutex<ConnInfo>,
}

impl Conn {
    pub(crate) fn new(id: u64, peer: SocketAddr, wakeup: Arc<Wakeup>) -> Conn {
        Conn {
            id,
            peer,
            established_ms: super::wall_ms(),
            out: Mutex::new(Out::default()),
            wakeup,
            session_id: AtomicI64::new(0),
            output_bytes_max: AtomicUsize::new(usize::MAX),
            writes_in_flight: AtomicUsize::new(0),
            info: Mutex::new(ConnInfo::default()),
        }
    }

    /// The session this connection serves, once the handshake is done.
    pub(crate) fn session_id(&self) -> Option<i64> {
        match self.session_id.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    pub(crate) fn set_session(&self, session_id: i64, output_bytes_max: usize) {
        self.output_bytes_max
            .store(output_bytes_max, Ordering::Relaxed);
        self.session_id.store(session_id, Ordering::Release);
    }

    /// Frames and bytes waiting to be sent.
    pub(crate) fn queued(&self) -> (usize, usize) {
        let out = self.out.lock();
        (out.frames.len(), out.bytes)
    }

    /// Runs `f` on the output queue (the event loop's side).
    pub(crate) fn with_out<T>(&self, f: impl FnOnce(&mut Out) -> T) -> T {
        f(&mut self.out.lock())
    }

    /// Closes the connection, dropping queued output. Never blocks, so the
    /// engine may call it with its locks held; the loop closes the socket.
    pub(crate) fn kill(&self, reason: &'static str) {
        {
            let mut out = self.out.lock();
            if out.closed {
                return;
            }
            out.closed = true;
            out.close_reason = reason;
            out.frames = VecDeque::new();
            out.bytes = 0;
            if std::mem::replace(&mut out.scheduled, true) {
                return;
            }
        }
        self.wakeup.schedule(self.id);
    }

    /// Queues a reply. Replies are never refused for size: the loop stops
    /// reading requests while the queue is above the soft limit, so what
    /// replies can add is bounded by the requests already taken.
    pub(crate) fn push_reply(&self, frame: Vec<u8>) {
        self.push(frame, usize::MAX);
    }

    /// Send what is queued, then close.
    pub(crate) fn close_when_flushed(&self) {
        {
            let mut out = self.out.lock();
            out.close_when_flushed = true;
            if std::mem::replace(&mut out.scheduled, true) {
                return;
            }
        }
        self.wakeup.schedule(self.id);
    }

    /// Wakes the loop for this connection (a write finished, so requests
    /// waiting behind it may run).
    pub(crate) fn poke(&self) {
        {
            let mut out = self.out.lock();
            if std::mem::replace(&mut out.scheduled, true) {
                return;
            }
        }
        self.wakeup.schedule(self.id);
    }

    /// The loop took this connection from its dirty list.
    pub(crate) fn unschedule(&self) {
        self.out.lock().scheduled = false;
    }

    fn push(&self, frame: Vec<u8>, limit: usize) {
        {
            let mut out = self.out.lock();
            if out.closed {
                return;
            }
            if out.bytes.saturating_add(frame.len()) > limit {
                drop(out);
                self.kill("output queue full: the client does not read");
                return;
            }
            if out.stalled_since.is_none() {
                out.stalled_since = Some(Instant::now());
            }
            out.bytes += frame.len();
            out.frames.push_back(frame);
            if std::mem::replace(&mut out.scheduled, true) {
                return;
            }
        }
        self.wakeup.schedule(self.id);
    }
}

impl EventSink for Conn {
    fn notify(&self, event_type: EventType, path: &str) {
        let event = WatcherEvent {
            event_type: event_type.code(),
            state: STATE_SYNC_CONNECTED,
            path: path.to_string(),
        };
        // zxid −1 in notifications, as ZooKeeper 3.8 sends (D.7). A client
        // that lets notifications pile up past the hard limit is dropped.
        let limit = self.output_bytes_max.load(Ordering::Relaxed);
        self.push(encode_notification(-1, &event), limit);
    }

    fn ended(&self, state: KeeperState) {
        // Expiry closes the socket with no message (C.4). A close the
        // client asked for is answered by its reply, then the connection closes.
        if state == KeeperState::Expired {
            self.kill("session expired");
        }
    }
}

/// A session's sink as the engine holds it: the connection, if it is alive.
/// The engine keeps a session's sink until the session ends, which can be
/// long after the connection is gone; a weak reference lets a closed
/// connection's memory go at once.
pub(crate) struct WeakSink(pub Weak<Conn>);

impl EventSink for WeakSink {
    fn notify(&self, event_type: EventType, path: &str) {
        if let Some(conn) = self.0.upgrade() {
            conn.notify(event_type, path);
        }
    }

    fn ended(&self, state: KeeperState) {
        if let Some(conn) = self.0.upgrade() {
            conn.ended(state);
        }
    }
}
