//! [`RemoteSession`]: the [`Coordinator`] API spoken to a ZooKeeper ensemble
//! (Apache ZooKeeper 3.8, or `innkeeper serve`) over the client wire protocol.
//!
//! One background thread per session reads the socket, answers nothing but
//! sends pings when the connection is idle, and reconnects when a server
//! dies; callers write their requests themselves under the session's lock
//! and wait for the reply with a deadline. The behaviour follows the Java
//! client (`docs/zookeeper-semantics.md` C.3, C.5, C.6, D.6, H.4, I.1):
//!
//! * a ping after `timeout / 3` without sending (at most every 10 s), and the
//!   connection is declared dead after `2/3 × timeout` without hearing anything;
//! * reconnects go round-robin through the shuffled server list, resuming the
//!   session with its id, password and last seen zxid; credentials from
//!   [`Coordinator::add_auth`] are re-sent, then watches are re-registered
//!   with SetWatches / SetWatches2 carrying the last seen zxid;
//! * a lost connection fails every request in flight with `ConnectionLoss`
//!   and tells every watcher `Disconnected`; a resumed one tells them
//!   `SyncConnected`; a server refusing the session tells them `Expired` and
//!   the handle is dead for good (requests fail with `SessionExpired`).
//!
//! The module speaks to the wire only through [`crate::proto`].
//!
//! This file holds the state every part shares (the handle, the session's
//! `Inner` and the connection state under its one lock) and small helpers;
//! each concern has its own file, and they depend on each other in one
//! direction only (`a → b`: `a` uses `b`):
//!
//! * `address.rs`: the connect string and the chroot mapping;
//! * `link.rs`: the socket, plain or TLS; `backoff.rs`: the reconnect pauses;
//! * `reader.rs`: the session thread's read loop, pings, replies matched to
//!   pending requests, notifications through the watch registry, and the
//!   end of a connection (→ `address`);
//! * `connection.rs`: the connect / handshake / SASL / re-registration and
//!   reconnect state machine (→ `reader`, `address`, `link`, `backoff`);
//! * `requests.rs`: a caller's request: sent under the lock, awaited with a
//!   deadline (→ `address`);
//! * `session.rs`: the handle's own calls and `close` (→ `requests`, `reader`);
//! * `builder.rs`: [`RemoteBuilder`] and `connect` (→ `connection`,
//!   `requests`, `session`, `address`);
//! * `coordinator.rs`: the [`crate::Coordinator`] implementation
//!   (→ `requests`, `reader`).

use std::collections::VecDeque;
use std::io::ErrorKind as IoErrorKind;
use std::net::TcpStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::event::{ClientWatches, Dispatch, KeeperState, Registration, Watcher};
use crate::proto::{xid, Response, MAX_FRAME_LEN};
use link::Link;

/// ZooKeeper's default client port, used when a host names none.
pub(crate) const DEFAULT_PORT: u16 = 2181;

/// The longest a connection may stay quiet before a ping, whatever the
/// timeout (the Java client's `MAX_SEND_PING_INTERVAL`).
const PING_INTERVAL_MAX: Duration = Duration::from_secs(10);

/// Largest reply frame accepted. Replies may be larger than requests
/// (a big `getChildren`), so the limit is a few times `jute.maxbuffer`.
const REPLY_FRAME_BYTES_MAX: usize = 4 * MAX_FRAME_LEN;

/// Path text per SetWatches request; longer lists are split (D.6).
const SET_WATCHES_BYTES_MAX: usize = 128 * 1024;

/// The least time [`RemoteBuilder::connect`] waits for a first session
/// when no connect timeout is given (the default is the session timeout):
/// a server clamps a tiny session timeout up, and establishing a session
/// takes a round trip or two. An explicit connect timeout is honoured as given.
pub(crate) const CONNECT_TIMEOUT_MIN_DEFAULT: Duration = Duration::from_secs(2);

/// The least time a handshake waits for its answer, whatever the requested
/// session timeout: creating a session on an ensemble is a quorum commit.
/// A request below it is below any server's minimum timeout (two ticks)
/// and is clamped up in the answer anyway.
const HANDSHAKE_WAIT_MIN: Duration = Duration::from_millis(500);

/// How long [`RemoteSession::close`] on a disconnected session waits for a
/// reconnect to send the close; past it, close fails with ConnectionLoss and
/// the server expires the session on its own.
const CLOSE_RECONNECT_MAX: Duration = Duration::from_millis(2500);

/// How long [`RemoteSession::close`] waits for the background thread to
/// finish. A thread still blocked in a name lookup or a TCP connect after
/// that is left to end on its own: it touches nothing once the session is closed.
const CLOSE_JOIN_MAX: Duration = Duration::from_secs(1);

/// xid of a SetWatches request (the C client's −8; the server echoes it).
const XID_SET_WATCHES: i32 = xid::SET_WATCHES;

/// A session on a ZooKeeper ensemble, with the same [`Coordinator`](crate::Coordinator) API as
/// an in-process [`crate::Session`].
///
/// The session survives the loss of a server: it reconnects to another
/// one of the connect string and keeps its id, ephemerals, credentials and
/// watches, as long as it gets back within the session timeout. Calls made
/// while it is disconnected wait for the reconnect up to the request
/// timeout. Dropping the handle closes the session.
///
/// ```no_run
/// use std::time::Duration;
/// use innkeeper::{Coordinator, CreateMode, RemoteSession};
///
/// let zk = RemoteSession::connect(
///     "127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183/app",
///     Duration::from_secs(10),
/// )?;
/// zk.create_all("/jobs")?;
/// let path = zk.create("/jobs/job-", b"payload", CreateMode::PersistentSequential)?;
/// assert!(path.starts_with("/jobs/job-"));
/// zk.close()?;
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct RemoteSession {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    hosts: Vec<(String, u16)>,
    tls: Option<RemoteTls>,
    sasl: Option<SaslLogin>,
    chroot: Option<String>,
    requested_ms: i32,
    /// `None`: the negotiated session timeout.
    request_timeout: Option<Duration>,
    shared: Mutex<Shared>,
    /// Signalled when `Shared::state` changes or the session is closing.
    changed: Condvar,
    watches: Mutex<ClientWatches>,
    default_watcher: Watcher,
    dispatch: Dispatch,
}

struct RemoteTls {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

/// Connection state, guarded by one lock: a caller holds it while it writes
/// its request and queues its pending entry, so requests go out in xid order.
/// Lock order: `shared` before `watches`.
struct Shared {
    state: KeeperState,
    /// A closeSession went out: the server closes the socket after its
    /// reply, and the thread must then stop rather than reconnect.
    close_sent: bool,
    writer: Option<Link>,
    server: Option<String>,
    /// Requests sent and not answered, in xid order.
    pending: VecDeque<Pending>,
    /// Auth packets sent and not answered; `None` for the ones sent while priming.
    auth_waiters: VecDeque<Option<Sender<i32>>>,
    next_xid: i32,
    session_id: i64,
    password: Vec<u8>,
    negotiated_ms: i32,
    last_zxid: i64,
    last_sent: Instant,
    auth: Vec<(String, Vec<u8>)>,
    closing: bool,
    /// The socket of a connection being established, so that closing
    /// the session can cut its handshake short.
    connecting: Option<TcpStream>,
    /// Why the last connection attempt failed, for the error of `connect`.
    last_failure: Option<String>,
    /// The background thread has returned.
    thread_done: bool,
}

type Answer = Result<Response>;

struct Pending {
    xid: i32,
    opcode: i32,
    reply: Sender<Answer>,
    watch: Option<WatchOnReply>,
}

/// A watch to register once the reply says the server registered it (D.1).
struct WatchOnReply {
    watcher: Watcher,
    client_path: String,
    kind: WatchKind,
}

#[derive(Clone, Copy)]
enum WatchKind {
    /// exists: a data watch if the node exists, an exist watch on NoNode.
    Exists,
    Data,
    Child,
    Persistent,
    PersistentRecursive,
}

impl WatchKind {
    fn registration(self, answer: &Answer) -> Option<Registration> {
        match (self, answer) {
            (WatchKind::Exists, Ok(_)) | (WatchKind::Data, Ok(_)) => Some(Registration::Data),
            (WatchKind::Exists, Err(e)) if e.kind() == ErrorKind::NoNode => {
                Some(Registration::Exist)
            }
            (WatchKind::Child, Ok(_)) => Some(Registration::Child),
            (WatchKind::Persistent, Ok(_)) => Some(Registration::Persistent),
            (WatchKind::PersistentRecursive, Ok(_)) => Some(Registration::PersistentRecursive),
            _ => None,
        }
    }
}

/// Why a connection ended.
enum End {
    Lost(String),
    Expired,
    AuthFailed,
    Closing,
}

/// A SASL DIGEST-MD5 login: user and password.
#[derive(Clone)]
struct SaslLogin {
    user: String,
    password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslLogin({:?}, <password>)", self.user)
    }
}

fn check_data(path: &str, data: Option<&[u8]>) -> Result<()> {
    let len = data.map_or(0, <[u8]>::len);
    if len > crate::DATA_BYTES_MAX_DEFAULT {
        return Err(
            Error::with_path(ErrorKind::DataTooLarge, path).detail(format!(
                "{len} bytes of data exceed ZooKeeper's jute.maxbuffer ({} bytes)",
                crate::DATA_BYTES_MAX_DEFAULT
            )),
        );
    }
    Ok(())
}

fn unexpected(response: &Response) -> Error {
    Error::new(ErrorKind::MarshallingError).detail(format!("unexpected reply {response:?}"))
}

fn kind_of(code: i32) -> ErrorKind {
    ErrorKind::from_code(code).unwrap_or(ErrorKind::SystemError)
}

fn server_error(code: i32) -> Error {
    let error = Error::new(kind_of(code));
    if ErrorKind::from_code(code).is_none() {
        error.detail(format!("server error code {code}"))
    } else {
        error
    }
}

fn fail_pending(shared: &mut Shared, error: impl Fn() -> Error) {
    for pending in shared.pending.drain(..) {
        let _ = pending.reply.send(Err(error()));
    }
    let code = error().code();
    for waiter in shared.auth_waiters.drain(..).flatten() {
        let _ = waiter.send(code);
    }
}

/// How long a connection may stay silent before it is declared dead:
/// two thirds of the negotiated session timeout (C.5).
fn read_timeout(negotiated_ms: i32) -> Duration {
    let ms = u64::try_from(negotiated_ms).unwrap_or(1).max(3);
    Duration::from_millis(ms * 2 / 3)
}

/// Writes one frame on the current connection, or explains why not.
fn write_frame(shared: &mut Shared, frame: &[u8]) -> std::io::Result<()> {
    let Some(writer) = shared.writer.as_ref() else {
        return Err(std::io::Error::new(
            IoErrorKind::NotConnected,
            "not connected",
        ));
    };
    let result = writer.write_all(frame);
    if result.is_ok() {
        shared.last_sent = Instant::now();
    } else {
        // Wake the reader: it notices the dead socket and reconnects.
        writer.shutdown();
    }
    result
}

mod address;
mod backoff;
mod builder;
mod connection;
mod coordinator;
mod link;
mod reader;
mod requests;
mod session;
#[cfg(test)]
mod tests;

pub use builder::RemoteBuilder;
