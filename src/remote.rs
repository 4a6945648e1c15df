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

use std::collections::VecDeque;
use std::io::ErrorKind as IoErrorKind;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use crate::coordinator::{ClientInfo, Coordinator};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{
    AddWatchMode, ClientWatches, Delivery, Dispatch, EventType, KeeperState, Registration,
    WatchReceiver, WatchedEvent, Watcher, WatcherType,
};
use crate::node::{Acl, CreateMode, Stat};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::path;
use crate::proto::{
    self, xid, CheckVersionRequest, ConnectRequest, CreateKind, CreateRequest, DeleteRequest,
    FrameSplitter, GetChildrenRequest, GetDataRequest, MultiOp, MultiResult, Request, Response,
    SetDataRequest, MAX_FRAME_LEN,
};
use crate::random::Rng;
use crate::sasl::DigestClient;
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

// ---- connect string and chroot ------------------------------------------------

/// A parsed connect string: `host[:port],host[:port]…[/chroot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectString {
    /// `(host, port)` pairs in the order given.
    pub(crate) hosts: Vec<(String, u16)>,
    /// The chroot, or `None` for `/` or none given.
    pub(crate) chroot: Option<String>,
}

impl ConnectString {
    /// Parses a connect string like the Java client's `ConnectStringParser`:
    /// the chroot starts at the first `/`, hosts are separated by commas,
    /// a missing port is 2181, IPv6 addresses go in brackets.
    pub(crate) fn parse(text: &str) -> Result<ConnectString> {
        let bad = |why: String| Error::new(ErrorKind::BadArguments).detail(why);
        let (hosts_text, chroot) = match text.find('/') {
            Some(idx) => (&text[..idx], Some(&text[idx..])),
            None => (text, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                path::validate(c).map_err(|e| {
                    bad(format!(
                        "invalid chroot {c:?}: {}",
                        e.detail_message().unwrap_or("")
                    ))
                })?;
                Some(c.to_string())
            }
        };
        let mut hosts = Vec::new();
        for part in hosts_text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (host, port) = if let Some(rest) = part.strip_prefix('[') {
                let Some((host, after)) = rest.split_once(']') else {
                    return Err(bad(format!("unclosed '[' in host {part:?}")));
                };
                match after {
                    "" => (host, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return Err(bad(format!("junk after ']' in host {part:?}"))),
                    },
                }
            } else {
                match part.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (part, None),
                }
            };
            if host.is_empty() {
                return Err(bad(format!("empty host name in {part:?}")));
            }
            let port = match port {
                None => DEFAULT_PORT,
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| bad(format!("invalid port in host {part:?}")))?,
            };
            hosts.push((host.to_string(), port));
        }
        if hosts.is_empty() {
            return Err(bad(format!("no host in connect string {text:?}")));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

/// The server path for a client path: the chroot prepended (`/` is the chroot itself).
fn to_server(chroot: Option<&str>, client_path: &str) -> String {
    match chroot {
        None => client_path.to_string(),
        Some(root) if client_path == "/" => root.to_string(),
        Some(root) => format!("{root}{client_path}"),
    }
}

/// The client path for a server path: the chroot stripped. A path outside
/// the chroot (which a server should never send) is returned unchanged, as
/// the Java client does.
fn to_client(chroot: Option<&str>, server_path: &str) -> String {
    match chroot {
        None => server_path.to_string(),
        Some(root) => match server_path.strip_prefix(root) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => server_path.to_string(),
        },
    }
}

// ---- builder ------------------------------------------------------------------------

/// Options for a [`RemoteSession`]; start with [`RemoteSession::builder`].
#[derive(Debug, Clone)]
pub struct RemoteBuilder {
    connect_string: String,
    session_timeout: Duration,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    auth: Vec<(String, Vec<u8>)>,
    resume: Option<(i64, Vec<u8>)>,
    tls: Option<TlsOptions>,
    sasl: Option<SaslLogin>,
}

/// TLS options of a [`RemoteBuilder`]: files, read when connecting.
#[derive(Debug, Clone, Default)]
struct TlsOptions {
    ca_file: PathBuf,
    client_identity: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
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

impl RemoteBuilder {
    /// The session timeout to ask for (default 30 s, as zkCli asks). The
    /// server clamps it into its range (2 to 20 ticks by default).
    pub fn session_timeout(mut self, timeout: Duration) -> RemoteBuilder {
        self.session_timeout = timeout;
        self
    }

    /// How long [`RemoteBuilder::connect`] tries to reach a server before
    /// failing with `ConnectionLoss` (default: the session timeout, and at
    /// least 2 s). The time given here is honoured as it is, however short.
    pub fn connect_timeout(mut self, timeout: Duration) -> RemoteBuilder {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The longest any call waits, for a connection and then for its reply
    /// (default: the session timeout the server granted). A call that gets no reply in time
    /// fails with `OperationTimeout`; one that finds no connection in time
    /// fails with `ConnectionLoss`.
    pub fn request_timeout(mut self, timeout: Duration) -> RemoteBuilder {
        self.request_timeout = Some(timeout);
        self
    }

    /// A credential sent right after the handshake, before anything else
    /// (like `addauth` before the first request).
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> RemoteBuilder {
        self.auth.push((scheme.to_string(), auth.to_vec()));
        self
    }

    /// Speaks TLS to the servers (ZooKeeper's `secureClientPort`), trusting
    /// the CA certificates of the PEM file `ca_file`. The server's
    /// certificate must name the host of the connect string (as an IP
    /// address or DNS name), as the Java client checks it by default; see
    /// [`RemoteBuilder::tls_server_name`] for another name. TLS 1.2 and 1.3.
    ///
    /// [`RemoteBuilder::connect`] fails with `BadArguments` when the file
    /// cannot be read; a handshake that fails (an untrusted server) counts
    /// as an unreachable server, and its cause is in the error.
    pub fn tls(mut self, ca_file: impl Into<PathBuf>) -> RemoteBuilder {
        self.tls.get_or_insert_with(TlsOptions::default).ca_file = ca_file.into();
        self
    }

    /// A client certificate (PEM chain) and its private key (PEM), for a
    /// server that asks for one (`ssl.clientAuth` want or need). The server
    /// then knows the session as `x509:` the certificate's subject.
    /// Only meaningful with [`RemoteBuilder::tls`].
    pub fn tls_client_cert(
        mut self,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> RemoteBuilder {
        self.tls
            .get_or_insert_with(TlsOptions::default)
            .client_identity = Some((cert_file.into(), key_file.into()));
        self
    }

    /// The name the server certificates must carry, instead of each host
    /// of the connect string.
    pub fn tls_server_name(mut self, name: &str) -> RemoteBuilder {
        self.tls.get_or_insert_with(TlsOptions::default).server_name = Some(name.to_string());
        self
    }

    /// Logs in with SASL DIGEST-MD5 as `user` after every handshake, as the
    /// Java client does with a JAAS `Client` section; the session is then
    /// `sasl:USER` in ACLs. The login is repeated after every reconnect.
    /// A refused login ends the session handle with `AuthFailed`.
    /// Kerberos (GSSAPI) is not supported.
    pub fn sasl_digest(mut self, user: &str, password: &str) -> RemoteBuilder {
        self.sasl = Some(SaslLogin {
            user: user.to_string(),
            password: password.to_string(),
        });
        self
    }

    /// Resumes an existing session instead of creating one (the id and
    /// password of [`RemoteSession::session_id`] and
    /// [`RemoteSession::password`]). A session the ensemble no longer
    /// knows fails with `SessionExpired`.
    pub fn resume(mut self, session_id: i64, password: &[u8]) -> RemoteBuilder {
        self.resume = Some((session_id, password.to_vec()));
        self
    }

    /// Connects to one server of the list and establishes the session.
    ///
    /// Fails with `BadArguments` for a malformed connect string,
    /// `ConnectionLoss` when no server answered within the connect
    /// timeout (its detail names the last cause: `connection refused`,
    /// `cannot resolve`, `timed out`, or another I/O error), `SessionExpired`
    /// when resuming a dead session, and `AuthFailed` when a credential was refused.
    pub fn connect(self) -> Result<RemoteSession> {
        let parsed = ConnectString::parse(&self.connect_string)?;
        let mut hosts = parsed.hosts;
        // Spread the clients over the ensemble, as the Java client's
        // `StaticHostProvider` does.
        Rng::from_os().shuffle(&mut hosts);
        let requested_ms = i32::try_from(self.session_timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        let connect_timeout = self
            .connect_timeout
            .unwrap_or(self.session_timeout.max(CONNECT_TIMEOUT_MIN_DEFAULT));
        let (session_id, password) = self.resume.unwrap_or((0, vec![0; 16]));
        let tls = match &self.tls {
            None => None,
            Some(options) => {
                if options.ca_file.as_os_str().is_empty() {
                    return Err(Error::new(ErrorKind::BadArguments)
                        .detail("TLS options without a CA file (RemoteBuilder::tls)"));
                }
                let identity = options
                    .client_identity
                    .as_ref()
                    .map(|(cert, key)| (cert.as_path(), key.as_path()));
                Some(RemoteTls {
                    config: crate::tls::client_config(&options.ca_file, identity)?,
                    server_name: options.server_name.clone(),
                })
            }
        };
        let inner = Arc::new(Inner {
            hosts,
            tls,
            sasl: self.sasl.clone(),
            chroot: parsed.chroot,
            requested_ms,
            request_timeout: self.request_timeout,
            shared: Mutex::new(Shared {
                state: KeeperState::Disconnected,
                close_sent: false,
                writer: None,
                server: None,
                pending: VecDeque::new(),
                auth_waiters: VecDeque::new(),
                next_xid: 1,
                session_id,
                password,
                negotiated_ms: requested_ms,
                last_zxid: 0,
                last_sent: Instant::now(),
                auth: self.auth,
                closing: false,
                connecting: None,
                last_failure: None,
                thread_done: false,
            }),
            changed: Condvar::new(),
            watches: Mutex::new(ClientWatches::default()),
            default_watcher: Watcher::default_target(),
            dispatch: Dispatch::new("innkeeper-remote-events"),
        });
        let thread_inner = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("innkeeper-remote".into())
            .spawn(move || {
                let inner = Arc::clone(&thread_inner);
                thread_inner.run();
                inner.shared.lock().thread_done = true;
                inner.changed.notify_all();
            })
            .map_err(|e| Error::new(ErrorKind::SystemError).detail(format!("spawn: {e}")))?;
        let session = RemoteSession {
            inner,
            thread: Mutex::new(Some(thread)),
        };
        let deadline = Instant::now() + connect_timeout;
        let mut shared = session.inner.shared.lock();
        loop {
            match shared.state {
                KeeperState::SyncConnected | KeeperState::ConnectedReadOnly => break,
                KeeperState::Expired => {
                    drop(shared);
                    session.stop();
                    return Err(Error::new(ErrorKind::SessionExpired)
                        .detail("the ensemble no longer knows the session"));
                }
                KeeperState::AuthFailed => {
                    let cause = shared.last_failure.clone();
                    drop(shared);
                    session.stop();
                    let error = Error::new(ErrorKind::AuthFailed);
                    return Err(match cause {
                        Some(cause) => error.detail(cause),
                        None => error,
                    });
                }
                _ => {}
            }
            if session
                .inner
                .changed
                .wait_until(&mut shared, deadline)
                .timed_out()
            {
                let cause = shared
                    .last_failure
                    .clone()
                    .unwrap_or_else(|| "timed out: no server answered yet".to_string());
                drop(shared);
                session.stop();
                return Err(Error::new(ErrorKind::ConnectionLoss).detail(format!(
                    "no server of {:?} established a session within {connect_timeout:?} \
                     (the connect timeout); last attempt: {cause}",
                    self.connect_string
                )));
            }
        }
        drop(shared);
        Ok(session)
    }
}

// ---- the session ----------------------------------------------------------------------

/// A session on a ZooKeeper ensemble, with the same [`Coordinator`] API as
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

impl RemoteSession {
    /// Connects with a session timeout and the default options; see
    /// [`RemoteSession::builder`] for the others.
    pub fn connect(connect_string: &str, session_timeout: Duration) -> Result<RemoteSession> {
        RemoteSession::builder(connect_string)
            .session_timeout(session_timeout)
            .connect()
    }

    /// A builder for a session on the ensemble of `connect_string`
    /// (`host[:port],…[/chroot]`; the port defaults to 2181).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use innkeeper::{Coordinator, RemoteSession};
    ///
    /// let zk = RemoteSession::builder("zk1:2181,zk2:2181,zk3:2181/service")
    ///     .session_timeout(Duration::from_secs(10))
    ///     .request_timeout(Duration::from_secs(5))
    ///     .auth("digest", b"app:secret")
    ///     .connect()?;
    /// println!("session {:#x} on {:?}", zk.session_id(), zk.server());
    /// # Ok::<(), innkeeper::Error>(())
    /// ```
    pub fn builder(connect_string: &str) -> RemoteBuilder {
        RemoteBuilder {
            connect_string: connect_string.to_string(),
            session_timeout: Duration::from_secs(30),
            connect_timeout: None,
            request_timeout: None,
            auth: Vec::new(),
            resume: None,
            tls: None,
            sasl: None,
        }
    }

    /// The session's password (to resume it with [`RemoteBuilder::resume`]).
    pub fn password(&self) -> Vec<u8> {
        self.inner.shared.lock().password.clone()
    }

    /// The timeout the server granted.
    pub fn timeout(&self) -> Duration {
        let ms = self.inner.shared.lock().negotiated_ms;
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// The `host:port` of the server the session is connected to now.
    pub fn server(&self) -> Option<String> {
        self.inner.shared.lock().server.clone()
    }

    /// The highest zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.inner.shared.lock().last_zxid
    }

    /// Closes the session: the ensemble deletes its ephemerals. Closing
    /// twice, or after expiry, is fine. While disconnected it waits for
    /// the reconnect up to 2.5 s (or the request timeout, if shorter); past
    /// that it fails with ConnectionLoss and the server expires the session.
    /// Fails only when the close request got no answer (the session then
    /// expires on its own).
    pub fn close(&self) -> Result<()> {
        let state = self.inner.shared.lock().state;
        let result = match state {
            // Disconnected too: returning Ok without telling the server
            // would leave the session and its ephemerals (locks, leader
            // nodes) alive until it expires, while the caller believes
            // them gone (found by tests/linearizability).
            KeeperState::SyncConnected
            | KeeperState::ConnectedReadOnly
            | KeeperState::Disconnected => {
                // While disconnected, wait for the reconnect only briefly, so
                // close stays prompt when no server answers (issue 15).
                let wait = if state == KeeperState::Disconnected {
                    self.inner.request_timeout().min(CLOSE_RECONNECT_MAX)
                } else {
                    self.inner.request_timeout()
                };
                let deadline = Instant::now() + wait;
                match self.inner.call_until(Request::CloseSession, None, deadline) {
                    Ok(_) => Ok(()),
                    // It expired while disconnected: nothing to close.
                    Err(e)
                        if state == KeeperState::Disconnected
                            && e.kind() == ErrorKind::SessionExpired =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Ok(()),
        };
        let ended = {
            let mut shared = self.inner.shared.lock();
            let was_open = !matches!(
                shared.state,
                KeeperState::Closed | KeeperState::Expired | KeeperState::AuthFailed
            );
            if was_open {
                shared.state = KeeperState::Closed;
            }
            was_open
        };
        self.stop();
        if ended {
            self.inner.broadcast(KeeperState::Closed, true);
        }
        result
    }

    /// Stops the background thread and fails what is still pending.
    /// Returns within [`CLOSE_JOIN_MAX`]: a thread blocked in a name lookup
    /// or a TCP connect is left to notice the close when that call returns.
    fn stop(&self) {
        {
            let mut shared = self.inner.shared.lock();
            shared.closing = true;
            if let Some(w) = shared.writer.take() {
                w.shutdown();
            }
            if let Some(c) = shared.connecting.take() {
                let _ = c.shutdown(Shutdown::Both);
            }
            fail_pending(&mut shared, || {
                Error::new(ErrorKind::SessionExpired).detail("the session was closed (stopped)")
            });
            self.inner.changed.notify_all();
        }
        let Some(thread) = self.thread.lock().take() else {
            return;
        };
        let deadline = Instant::now() + CLOSE_JOIN_MAX;
        let done = {
            let mut shared = self.inner.shared.lock();
            while !shared.thread_done {
                if self
                    .inner
                    .changed
                    .wait_until(&mut shared, deadline)
                    .timed_out()
                {
                    break;
                }
            }
            shared.thread_done
        };
        if done {
            let _ = thread.join();
        }
    }

    fn server_path(&self, client_path: &str) -> String {
        to_server(self.inner.chroot.as_deref(), client_path)
    }

    fn client_path(&self, server_path: &str) -> String {
        to_client(self.inner.chroot.as_deref(), server_path)
    }

    fn call(&self, request: Request, watch: Option<WatchOnReply>) -> Result<Response> {
        let deadline = Instant::now() + self.inner.request_timeout();
        self.inner.call_until(request, watch, deadline)
    }

    /// A call whose errors name `client_path`.
    fn call_at(
        &self,
        client_path: &str,
        request: Request,
        watch: Option<WatchOnReply>,
    ) -> Result<Response> {
        self.call(request, watch)
            .map_err(|e| e.or_path(client_path))
    }

    fn create_request(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<CreateRequest> {
        if mode.is_sequential() {
            path::validate_sequential_prefix(path)?;
        } else {
            path::validate(path)?;
        }
        check_data(path, data)?;
        let kind = if mode.is_container() {
            CreateKind::Container
        } else if mode.is_ttl() {
            CreateKind::Ttl { ttl: ttl_ms }
        } else {
            CreateKind::Create2
        };
        Ok(CreateRequest {
            kind,
            path: self.server_path(path),
            data: data.map(<[u8]>::to_vec),
            acl: acl.to_vec(),
            flags: mode.flag(),
        })
    }

    fn multi_op(&self, op: &Op) -> Result<MultiOp> {
        Ok(match op {
            Op::Create {
                path,
                data,
                options,
            } => MultiOp::Create(self.create_request(
                path,
                data.as_deref(),
                &options.acl,
                options.mode,
                options.ttl_ms(),
            )?),
            Op::Delete { path, version } => {
                path::validate(path)?;
                MultiOp::Delete(DeleteRequest {
                    path: self.server_path(path),
                    version: *version,
                })
            }
            Op::SetData {
                path,
                data,
                version,
            } => {
                path::validate(path)?;
                check_data(path, data.as_deref())?;
                MultiOp::SetData(SetDataRequest {
                    path: self.server_path(path),
                    data: data.clone(),
                    version: *version,
                })
            }
            Op::Check { path, version } => {
                path::validate(path)?;
                MultiOp::Check(CheckVersionRequest {
                    path: self.server_path(path),
                    version: *version,
                })
            }
        })
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

impl Inner {
    fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or_else(|| {
            let ms = self.shared.lock().negotiated_ms;
            Duration::from_millis(u64::try_from(ms).unwrap_or(0).max(1))
        })
    }

    /// Waits for a connection, sends the request, and waits for its reply.
    fn call_until(
        &self,
        request: Request,
        watch: Option<WatchOnReply>,
        deadline: Instant,
    ) -> Result<Response> {
        let rx = {
            let mut shared = self.shared.lock();
            self.wait_connected(&mut shared, deadline)?;
            let xid = shared.next_xid;
            shared.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
            let frame = proto::encode_request(xid, &request);
            if frame.len() - 4 > MAX_FRAME_LEN {
                return Err(Error::new(ErrorKind::DataTooLarge).detail(format!(
                    "a request of {} bytes exceeds ZooKeeper's jute.maxbuffer",
                    frame.len() - 4
                )));
            }
            let (tx, rx) = crossbeam_channel::bounded(1);
            if matches!(request, Request::CloseSession) {
                shared.close_sent = true;
            }
            shared.pending.push_back(Pending {
                xid,
                opcode: request.opcode(),
                reply: tx,
                watch,
            });
            if let Err(e) = write_frame(&mut shared, &frame) {
                shared.pending.pop_back();
                return Err(Error::new(ErrorKind::ConnectionLoss).detail(format!("send: {e}")));
            }
            rx
        };
        match rx.recv_deadline(deadline) {
            Ok(answer) => answer,
            Err(_) => Err(Error::new(ErrorKind::OperationTimeout)
                .detail(format!("no reply within {:?}", self.request_timeout()))),
        }
    }

    fn wait_connected(
        &self,
        shared: &mut parking_lot::MutexGuard<'_, Shared>,
        deadline: Instant,
    ) -> Result<()> {
        loop {
            match shared.state {
                KeeperState::SyncConnected | KeeperState::ConnectedReadOnly => return Ok(()),
                KeeperState::Expired => return Err(Error::new(ErrorKind::SessionExpired)),
                KeeperState::Closed => {
                    return Err(
                        Error::new(ErrorKind::SessionExpired).detail("the session was closed")
                    )
                }
                KeeperState::AuthFailed => {
                    return Err(Error::new(ErrorKind::AuthFailed)
                        .detail("a credential was refused; the session is unusable"))
                }
                KeeperState::Disconnected => {
                    if self.changed.wait_until(shared, deadline).timed_out() {
                        return Err(Error::new(ErrorKind::ConnectionLoss)
                            .detail("no connection to any server of the ensemble"));
                    }
                }
            }
        }
    }

    // ---- event delivery ----

    fn deliver(&self, deliveries: Vec<Delivery>) {
        self.dispatch.deliver(deliveries);
    }

    /// A state event to every watcher and the default one (C.6: the Java
    /// client's `ZKWatchManager` does the same for `EventType.None`).
    fn broadcast(&self, state: KeeperState, forget: bool) {
        let event = WatchedEvent::state(state);
        let mut deliveries = self.watches.lock().all(&event, forget);
        if !deliveries.iter().any(|d| matches!(d, Delivery::Default(_))) {
            deliveries.push(Delivery::Default(event));
        }
        self.deliver(deliveries);
    }

    // ---- the background thread ----

    fn run(self: Arc<Self>) {
        let mut host_idx = 0usize;
        let mut failures_in_row = 0usize;
        let mut jitter = Rng::from_os();
        let mut connected_before = false;
        loop {
            if connected_before {
                // As the Java client: a random pause before every attempt
                // to reconnect, so that the clients of a restarted server
                // do not all come back at once.
                let negotiated_ms = self.shared.lock().negotiated_ms;
                if self.pause(backoff::reconnect_pause(&mut jitter, negotiated_ms)) {
                    return;
                }
            } else if self.shared.lock().closing {
                return;
            }
            let host = &self.hosts[host_idx % self.hosts.len()];
            host_idx = host_idx.wrapping_add(1);
            match self.establish(host) {
                Ok((stream, splitter)) => {
                    failures_in_row = 0;
                    connected_before = true;
                    match self.serve(&stream, splitter) {
                        End::Lost(reason) => self.lost(&reason),
                        End::Closing => {
                            let mut shared = self.shared.lock();
                            // The server ends the connection once it closed the
                            // session, and its reply may not get out first
                            // (ZooKeeper closes the socket right after queueing
                            // it): the closeSession itself succeeded.
                            for pending in std::mem::take(&mut shared.pending) {
                                let answer = if pending.opcode == proto::opcode::CLOSE_SESSION {
                                    Ok(Response::Empty)
                                } else {
                                    Err(Error::new(ErrorKind::SessionExpired)
                                        .detail("the session was closed"))
                                };
                                let _ = pending.reply.send(answer);
                            }
                            fail_pending(&mut shared, || {
                                Error::new(ErrorKind::SessionExpired)
                                    .detail("the session was closed")
                            });
                            return;
                        }
                        End::Expired => return self.expire(),
                        End::AuthFailed => return self.auth_failed(),
                    }
                }
                Err(End::Expired) => return self.expire(),
                Err(End::AuthFailed) => return self.auth_failed(),
                Err(End::Closing) => return,
                Err(End::Lost(reason)) => {
                    self.shared.lock().last_failure = Some(reason);
                    failures_in_row += 1;
                    if failures_in_row % self.hosts.len() == 0 {
                        let rounds = failures_in_row / self.hosts.len();
                        if self.pause(backoff::round_pause(&mut jitter, rounds)) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Waits `pause` unless the session closes first; `true` when it did.
    fn pause(&self, pause: Duration) -> bool {
        let deadline = Instant::now() + pause;
        let mut shared = self.shared.lock();
        while !shared.closing {
            if self.changed.wait_until(&mut shared, deadline).timed_out() {
                break;
            }
        }
        shared.closing
    }

    fn read_timeout(negotiated_ms: i32) -> Duration {
        let ms = u64::try_from(negotiated_ms).unwrap_or(1).max(3);
        Duration::from_millis(ms * 2 / 3)
    }

    /// Connects to `host` and performs the handshake, then queues the auth
    /// packets and SetWatches before any user request can go out (I.1).
    fn establish(&self, host: &(String, u16)) -> std::result::Result<(Link, FrameSplitter), End> {
        let lost = |what: &str, e: &dyn std::fmt::Display| {
            End::Lost(format!("{what} {}:{}: {e}", host.0, host.1))
        };
        let lost_io = |what: &str, e: &std::io::Error| lost(what, &io_cause(e));
        let negotiated_ms = {
            let shared = self.shared.lock();
            if shared.closing {
                return Err(End::Closing);
            }
            shared.negotiated_ms
        };
        let n_hosts = u32::try_from(self.hosts.len()).unwrap_or(1).max(1);
        let connect_timeout = (Duration::from_millis(u64::try_from(negotiated_ms).unwrap_or(1000))
            / n_hosts)
            .max(Duration::from_millis(100));
        let read_timeout = Inner::read_timeout(negotiated_ms);
        let addrs: Vec<_> = (host.0.as_str(), host.1)
            .to_socket_addrs()
            .map_err(|e| lost("cannot resolve", &e))?
            .collect();
        let mut stream = None;
        let mut last_error = String::from("cannot resolve: the name has no address");
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = io_cause(&e),
            }
        }
        let stream = stream.ok_or_else(|| lost("connect to", &last_error))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_write_timeout(Some(read_timeout))
            .map_err(|e| lost_io("configure", &e))?;
        {
            let mut shared = self.shared.lock();
            if shared.closing {
                return Err(End::Closing);
            }
            shared.connecting = stream.try_clone().ok();
        }
        let link = match &self.tls {
            None => Ok(Link::plain(stream)),
            Some(tls) => Link::tls(
                stream,
                Arc::clone(&tls.config),
                tls.server_name.as_deref().unwrap_or(&host.0),
                Instant::now() + read_timeout,
            )
            .map_err(|e| lost("TLS handshake with", &io_cause(&e))),
        };
        let result = link.and_then(|link| self.handshake(host, link, read_timeout));
        self.shared.lock().connecting = None;
        result
    }

    /// Sends the ConnectRequest on a fresh connection and installs the
    /// session the server answers with.
    fn handshake(
        &self,
        host: &(String, u16),
        stream: Link,
        read_timeout: Duration,
    ) -> std::result::Result<(Link, FrameSplitter), End> {
        let lost = |what: &str, e: &dyn std::fmt::Display| {
            End::Lost(format!("{what} {}:{}: {e}", host.0, host.1))
        };
        let lost_io = |what: &str, e: &std::io::Error| lost(what, &io_cause(e));
        let (session_id, password, last_zxid) = {
            let shared = self.shared.lock();
            (shared.session_id, shared.password.clone(), shared.last_zxid)
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout_ms: self.requested_ms,
            session_id,
            passwd: password,
            read_only: Some(false),
        };
        stream
            .write_all(&proto::encode_connect_request(&request))
            .map_err(|e| lost_io("handshake with", &e))?;
        let mut splitter = FrameSplitter::with_max_len(REPLY_FRAME_BYTES_MAX);
        let deadline = Instant::now() + read_timeout;
        let body = loop {
            match splitter.next_frame() {
                Ok(Some(body)) => break body,
                Ok(None) => {}
                Err(e) => return Err(lost("handshake with", &e)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(lost("handshake with", &"timed out waiting for an answer"));
            }
            stream
                .read_some(&mut splitter, deadline - now)
                .map_err(|e| lost_io("handshake with", &e))?;
        };
        let response =
            proto::decode_connect_response(&body).map_err(|e| lost("handshake with", &e))?;
        if response.timeout_ms <= 0 {
            return Err(End::Expired);
        }
        if let Some(login) = &self.sasl {
            self.sasl_login(&stream, &mut splitter, login, deadline)
                .map_err(|end| match end {
                    End::Lost(why) => lost("SASL with", &why),
                    other => other,
                })?;
        }
        let mut shared = self.shared.lock();
        if shared.closing {
            stream.shutdown();
            return Err(End::Closing);
        }
        shared.session_id = response.session_id;
        shared.password = response.passwd;
        shared.negotiated_ms = response.timeout_ms;
        shared.writer = Some(stream.try_clone().map_err(|e| lost_io("configure", &e))?);
        let _ = stream.set_write_timeout(Inner::read_timeout(response.timeout_ms));
        let mut frames = Vec::new();
        for (scheme, auth) in &shared.auth {
            frames.push(proto::encode_request(
                xid::AUTH,
                &Request::Auth {
                    auth_type: 0,
                    scheme: scheme.clone(),
                    auth: auth.clone(),
                },
            ));
        }
        let n_auth = frames.len();
        let [data, exist, child, persistent, recursive] = self.watches.lock().paths();
        let chroot = self.chroot.as_deref();
        let to_server_all = |paths: Vec<String>| {
            paths
                .iter()
                .map(|p| to_server(chroot, p))
                .collect::<Vec<_>>()
        };
        for request in set_watches_requests(
            shared.last_zxid,
            [
                to_server_all(data),
                to_server_all(exist),
                to_server_all(child),
                to_server_all(persistent),
                to_server_all(recursive),
            ],
        ) {
            frames.push(proto::encode_request(XID_SET_WATCHES, &request));
        }
        for frame in &frames {
            if let Err(e) = write_frame(&mut shared, frame) {
                shared.writer = None;
                return Err(lost("prime", &e));
            }
        }
        shared.auth_waiters.extend((0..n_auth).map(|_| None));
        shared.state = if response.read_only == Some(true) {
            KeeperState::ConnectedReadOnly
        } else {
            KeeperState::SyncConnected
        };
        shared.server = Some(format!("{}:{}", host.0, host.1));
        // Watchers hear of the connection before any caller can use it, so a
        // caller that waited for it finds the event already there. Nothing
        // here blocks: channels are unbounded and callbacks run elsewhere.
        self.broadcast(shared.state, false);
        self.changed.notify_all();
        Ok((stream, splitter))
    }

    /// Logs in with SASL DIGEST-MD5 on a connection whose session was just
    /// established, before anything else is sent (the Java client holds its
    /// requests back the same way until SASL completes).
    fn sasl_login(
        &self,
        stream: &Link,
        splitter: &mut FrameSplitter,
        login: &SaslLogin,
        deadline: Instant,
    ) -> std::result::Result<(), End> {
        let mut client = DigestClient::new(&login.user, &login.password);
        let challenge = self.sasl_round(stream, splitter, login, Vec::new(), deadline)?;
        let cnonce = crate::sasl::random_nonce().map_err(|e| End::Lost(e.to_string()))?;
        let refused = |e: Error| {
            self.shared.lock().last_failure = Some(format!(
                "SASL DIGEST-MD5 login as {:?}: {}",
                login.user,
                e.detail_message().unwrap_or("refused")
            ));
            End::AuthFailed
        };
        let response = client.respond(&challenge, &cnonce).map_err(refused)?;
        let rspauth = self.sasl_round(stream, splitter, login, response, deadline)?;
        client.verify(&rspauth).map_err(refused)?;
        Ok(())
    }

    /// Sends one SASL token and returns the server's answer.
    fn sasl_round(
        &self,
        stream: &Link,
        splitter: &mut FrameSplitter,
        login: &SaslLogin,
        token: Vec<u8>,
        deadline: Instant,
    ) -> std::result::Result<Vec<u8>, End> {
        let xid = {
            let mut shared = self.shared.lock();
            let xid = shared.next_xid;
            shared.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
            xid
        };
        stream
            .write_all(&proto::encode_request(xid, &Request::Sasl { token }))
            .map_err(|e| End::Lost(io_cause(&e)))?;
        loop {
            while let Some(body) = splitter
                .next_frame()
                .map_err(|e| End::Lost(e.to_string()))?
            {
                let header =
                    proto::decode_reply_header(&body).map_err(|e| End::Lost(e.to_string()))?;
                if header.xid == xid::NOTIFICATION || header.xid == xid::PING {
                    continue;
                }
                if header.xid != xid {
                    return Err(End::Lost(format!(
                        "a reply to xid {} during SASL",
                        header.xid
                    )));
                }
                if header.err != 0 {
                    self.shared.lock().last_failure = Some(format!(
                        "the server refused the SASL DIGEST-MD5 login as {:?} ({})",
                        login.user,
                        server_error(header.err)
                    ));
                    return Err(End::AuthFailed);
                }
                return match proto::decode_reply(proto::opcode::SASL, &body) {
                    Ok((_, Some(Response::Sasl { token }))) => Ok(token),
                    Ok((_, other)) => Err(End::Lost(format!("an unexpected SASL reply {other:?}"))),
                    Err(e) => Err(End::Lost(format!("an undecodable SASL reply: {e}"))),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Lost("timed out waiting for a SASL answer".to_string()));
            }
            stream
                .read_some(splitter, left)
                .map_err(|e| End::Lost(io_cause(&e)))?;
        }
    }

    /// Reads frames until the connection ends; pings when idle.
    fn serve(&self, stream: &Link, mut splitter: FrameSplitter) -> End {
        let negotiated_ms = self.shared.lock().negotiated_ms;
        let read_timeout = Inner::read_timeout(negotiated_ms);
        let ping_interval = (read_timeout / 2).min(PING_INTERVAL_MAX);
        let mut last_heard = Instant::now();
        loop {
            loop {
                match splitter.next_frame() {
                    Ok(Some(body)) => {
                        if let Some(end) = self.on_frame(&body) {
                            return end;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return End::Lost(format!("bad frame: {e}")),
                }
            }
            let now = Instant::now();
            if now.duration_since(last_heard) >= read_timeout {
                return End::Lost(format!("nothing heard for {read_timeout:?}"));
            }
            let next_ping = {
                let mut shared = self.shared.lock();
                if shared.closing {
                    return End::Closing;
                }
                if now.duration_since(shared.last_sent) >= ping_interval {
                    let ping = proto::encode_request(xid::PING, &Request::Ping);
                    if let Err(e) = write_frame(&mut shared, &ping) {
                        return End::Lost(format!("ping: {e}"));
                    }
                }
                shared.last_sent + ping_interval
            };
            let wake = next_ping.min(last_heard + read_timeout);
            let wait = wake
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            match stream.read_some(&mut splitter, wait) {
                Ok(true) => last_heard = Instant::now(),
                Ok(false) => {}
                Err(e) => {
                    let shared = self.shared.lock();
                    if shared.closing || shared.close_sent {
                        return End::Closing;
                    }
                    return End::Lost(e.to_string());
                }
            }
        }
    }

    /// Handles one frame from the server; `Some` ends the connection.
    fn on_frame(&self, body: &[u8]) -> Option<End> {
        let header = match proto::decode_reply_header(body) {
            Ok(h) => h,
            Err(e) => return Some(End::Lost(format!("bad reply header: {e}"))),
        };
        match header.xid {
            xid::NOTIFICATION => {
                let (_, event) = match proto::decode_notification(body) {
                    Ok(n) => n,
                    Err(e) => return Some(End::Lost(format!("bad notification: {e}"))),
                };
                // Types outside 1..4 are client-generated; a server never sends them.
                if let Some(
                    event_type @ (EventType::NodeCreated
                    | EventType::NodeDeleted
                    | EventType::NodeDataChanged
                    | EventType::NodeChildrenChanged),
                ) = EventType::from_code(event.event_type)
                {
                    let client_path = to_client(self.chroot.as_deref(), &event.path);
                    let deliveries = self.watches.lock().materialize(event_type, &client_path);
                    self.deliver(deliveries);
                }
                None
            }
            xid::PING => None,
            xid::AUTH => {
                let waiter = self.shared.lock().auth_waiters.pop_front().flatten();
                if let Some(waiter) = waiter {
                    let _ = waiter.send(header.err);
                }
                (header.err != 0).then_some(End::AuthFailed)
            }
            XID_SET_WATCHES => None,
            reply_xid => {
                let pending = {
                    let mut shared = self.shared.lock();
                    match shared.pending.front() {
                        Some(p) if p.xid == reply_xid => {}
                        Some(p) => {
                            return Some(End::Lost(format!(
                                "xid out of order: expected {}, got {reply_xid}",
                                p.xid
                            )))
                        }
                        None => {
                            return Some(End::Lost(format!("reply to unknown xid {reply_xid}")))
                        }
                    }
                    if header.zxid > 0 {
                        shared.last_zxid = header.zxid;
                    }
                    shared.pending.pop_front()?
                };
                let answer = if header.err != 0 {
                    Err(server_error(header.err))
                } else {
                    match proto::decode_reply(pending.opcode, body) {
                        Ok((_, Some(response))) => Ok(response),
                        Ok((_, None)) => Ok(Response::Empty),
                        Err(e) => Err(Error::new(ErrorKind::MarshallingError)
                            .detail(format!("undecodable reply: {e}"))),
                    }
                };
                if let Some(watch) = &pending.watch {
                    if let Some(kind) = watch.kind.registration(&answer) {
                        self.watches
                            .lock()
                            .register(kind, &watch.client_path, &watch.watcher);
                    }
                }
                let _ = pending.reply.send(answer);
                None
            }
        }
    }

    /// The connection is gone: fail what is in flight and tell the watchers.
    fn lost(&self, reason: &str) {
        let was_connected = {
            let mut shared = self.shared.lock();
            if let Some(w) = shared.writer.take() {
                w.shutdown();
            }
            shared.server = None;
            let was = matches!(
                shared.state,
                KeeperState::SyncConnected | KeeperState::ConnectedReadOnly
            );
            if was {
                shared.state = KeeperState::Disconnected;
            }
            fail_pending(&mut shared, || {
                Error::new(ErrorKind::ConnectionLoss).detail(format!("connection lost: {reason}"))
            });
            self.changed.notify_all();
            was
        };
        if was_connected {
            self.broadcast(KeeperState::Disconnected, false);
        }
    }

    fn end_for_good(&self, state: KeeperState, kind: ErrorKind) {
        {
            let mut shared = self.shared.lock();
            if let Some(w) = shared.writer.take() {
                w.shutdown();
            }
            shared.server = None;
            shared.state = state;
            fail_pending(&mut shared, || Error::new(kind));
            self.changed.notify_all();
        }
        self.broadcast(state, true);
    }

    fn expire(&self) {
        self.end_for_good(KeeperState::Expired, ErrorKind::SessionExpired);
    }

    fn auth_failed(&self) {
        self.end_for_good(KeeperState::AuthFailed, ErrorKind::AuthFailed);
    }
}

/// An I/O error as the cause of a failed connection: refused and timed out
/// in plain words, others as the system says them.
fn io_cause(e: &std::io::Error) -> String {
    match e.kind() {
        IoErrorKind::ConnectionRefused => "connection refused".to_string(),
        IoErrorKind::TimedOut | IoErrorKind::WouldBlock => "timed out".to_string(),
        _ => e.to_string(),
    }
}

/// SetWatches requests re-registering `lists` (data, exist, child,
/// persistent, recursive; server paths), split so each carries at most
/// [`SET_WATCHES_BYTES_MAX`] of path text. SetWatches2 only when a
/// persistent watch exists, as the Java client does (D.6).
fn set_watches_requests(relative_zxid: i64, lists: [Vec<String>; 5]) -> Vec<Request> {
    let with_persistent = !lists[3].is_empty() || !lists[4].is_empty();
    let mut requests = Vec::new();
    let mut batch: [Vec<String>; 5] = Default::default();
    let mut batch_bytes = 0usize;
    let flush = |batch: &mut [Vec<String>; 5], requests: &mut Vec<Request>| {
        if batch.iter().all(Vec::is_empty) {
            return;
        }
        let [data, exist, child, persistent, recursive] = std::mem::take(batch);
        requests.push(if with_persistent {
            Request::SetWatches2 {
                relative_zxid,
                data_watches: data,
                exist_watches: exist,
                child_watches: child,
                persistent_watches: persistent,
                persistent_recursive_watches: recursive,
            }
        } else {
            Request::SetWatches {
                relative_zxid,
                data_watches: data,
                exist_watches: exist,
                child_watches: child,
            }
        });
    };
    for (list_idx, list) in lists.into_iter().enumerate() {
        for path in list {
            if batch_bytes + path.len() > SET_WATCHES_BYTES_MAX {
                flush(&mut batch, &mut requests);
                batch_bytes = 0;
            }
            batch_bytes += path.len();
            batch[list_idx].push(path);
        }
    }
    flush(&mut batch, &mut requests);
    requests
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl std::fmt::Debug for RemoteSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = self.inner.shared.lock();
        write!(
            f,
            "RemoteSession({:#x}, {:?}, {:?})",
            shared.session_id, shared.state, shared.server
        )
    }
}

impl Coordinator for RemoteSession {
    fn session_id(&self) -> i64 {
        self.inner.shared.lock().session_id
    }

    fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Result<(String, Stat)> {
        let request =
            self.create_request(path, data, &options.acl, options.mode, options.ttl_ms())?;
        match self.call_at(path, Request::Create(request), None)? {
            Response::Create2 { path, stat } => Ok((self.client_path(&path), stat)),
            Response::Create { path } => Ok((self.client_path(&path), Stat::default())),
            other => Err(unexpected(&other)),
        }
    }

    fn delete(&self, path: &str, version: i32) -> Result<()> {
        path::validate(path)?;
        let request = Request::Delete(DeleteRequest {
            path: self.server_path(path),
            version,
        });
        self.call_at(path, request, None).map(|_| ())
    }

    fn set_data_with(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        path::validate(path)?;
        check_data(path, data)?;
        let request = Request::SetData(SetDataRequest {
            path: self.server_path(path),
            data: data.map(<[u8]>::to_vec),
            version,
        });
        match self.call_at(path, request, None)? {
            Response::SetData { stat } => Ok(stat),
            other => Err(unexpected(&other)),
        }
    }

    fn exists_with(&self, path: &str, watcher: Option<&Watcher>) -> Result<Option<Stat>> {
        path::validate(path)?;
        let request = Request::Exists {
            path: self.server_path(path),
            watch: watcher.is_some(),
        };
        let watch = watcher.map(|w| WatchOnReply {
            watcher: w.clone(),
            client_path: path.to_string(),
            kind: WatchKind::Exists,
        });
        match self.call_at(path, request, watch) {
            Ok(Response::Exists { stat }) => Ok(Some(stat)),
            Ok(other) => Err(unexpected(&other)),
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get_data_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        path::validate(path)?;
        let request = Request::GetData(GetDataRequest {
            path: self.server_path(path),
            watch: watcher.is_some(),
        });
        let watch = watcher.map(|w| WatchOnReply {
            watcher: w.clone(),
            client_path: path.to_string(),
            kind: WatchKind::Data,
        });
        match self.call_at(path, request, watch)? {
            Response::GetData { data, stat } => Ok((data, stat)),
            other => Err(unexpected(&other)),
        }
    }

    fn get_children_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        path::validate(path)?;
        let request = Request::GetChildren2(GetChildrenRequest {
            path: self.server_path(path),
            watch: watcher.is_some(),
        });
        let watch = watcher.map(|w| WatchOnReply {
            watcher: w.clone(),
            client_path: path.to_string(),
            kind: WatchKind::Child,
        });
        match self.call_at(path, request, watch)? {
            Response::GetChildren2 { mut children, stat } => {
                children.sort_unstable();
                Ok((children, stat))
            }
            other => Err(unexpected(&other)),
        }
    }

    fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        path::validate(path)?;
        let request = Request::GetAcl {
            path: self.server_path(path),
        };
        match self.call_at(path, request, None)? {
            Response::GetAcl { acl, stat } => Ok((acl, stat)),
            other => Err(unexpected(&other)),
        }
    }

    fn set_acl(&self, path: &str, acl: &[Acl], aversion: i32) -> Result<Stat> {
        path::validate(path)?;
        let request = Request::SetAcl {
            path: self.server_path(path),
            acl: acl.to_vec(),
            version: aversion,
        };
        match self.call_at(path, request, None)? {
            Response::SetAcl { stat } => Ok(stat),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates travel as create2 (or createContainer / createTTL), but
    /// Apache ZooKeeper 3.8.0 answers a create2 inside a multi with the path
    /// only (result type 1, where `docs/zookeeper-semantics.md` E.3 says 15), so
    /// the Stat of an [`OpResult::Create`] for a persistent, ephemeral or
    /// sequential node is then all zeros; container and TTL creates come
    /// with their Stat.
    fn multi_results(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        // The Java client answers an empty multi locally (E.1).
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let wire_ops = ops
            .iter()
            .map(|op| self.multi_op(op))
            .collect::<Result<Vec<_>>>()?;
        let results = match self.call(Request::Multi(wire_ops), None)? {
            Response::Multi(results) => results,
            other => return Err(unexpected(&other)),
        };
        Ok(results
            .into_iter()
            .map(|r| match r {
                MultiResult::Create { path } => OpResult::Create {
                    path: self.client_path(&path),
                    stat: Stat::default(),
                },
                MultiResult::Create2 { path, stat } => OpResult::Create {
                    path: self.client_path(&path),
                    stat,
                },
                MultiResult::Delete => OpResult::Delete,
                MultiResult::SetData { stat } => OpResult::SetData { stat },
                MultiResult::Check => OpResult::Check,
                MultiResult::Error { err: 0 } => OpResult::RolledBack,
                MultiResult::Error { err } => OpResult::Error(kind_of(err)),
            })
            .collect())
    }

    fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut wire_ops = Vec::with_capacity(ops.len());
        for op in ops {
            wire_ops.push(match op {
                ReadOp::GetData(p) => {
                    path::validate(p)?;
                    proto::ReadOp::GetData(GetDataRequest {
                        path: self.server_path(p),
                        watch: false,
                    })
                }
                ReadOp::GetChildren(p) => {
                    path::validate(p)?;
                    proto::ReadOp::GetChildren(GetChildrenRequest {
                        path: self.server_path(p),
                        watch: false,
                    })
                }
            });
        }
        let results = match self.call(Request::MultiRead(wire_ops), None)? {
            Response::MultiRead(results) => results,
            other => return Err(unexpected(&other)),
        };
        Ok(results
            .into_iter()
            .map(|r| match r {
                proto::ReadResult::GetData { data, stat } => ReadResult::Data(data, stat),
                proto::ReadResult::GetChildren { mut children } => {
                    children.sort_unstable();
                    ReadResult::Children(children)
                }
                proto::ReadResult::Error { err } => ReadResult::Error(kind_of(err)),
            })
            .collect())
    }

    fn get_all_children_number(&self, path: &str) -> Result<u64> {
        path::validate(path)?;
        let request = Request::GetAllChildrenNumber {
            path: self.server_path(path),
        };
        match self.call_at(path, request, None)? {
            Response::GetAllChildrenNumber { total_number } => {
                Ok(u64::try_from(total_number).unwrap_or(0))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Like the Java client, the prefix is sent as given and the paths come
    /// back as the server names them: the chroot is neither added nor removed.
    fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        path::validate(prefix)?;
        let request = Request::GetEphemerals {
            prefix_path: prefix.to_string(),
        };
        match self.call_at(prefix, request, None)? {
            Response::GetEphemerals { mut ephemerals } => {
                ephemerals.sort();
                Ok(ephemerals)
            }
            other => Err(unexpected(&other)),
        }
    }

    fn sync(&self, path: &str) -> Result<()> {
        path::validate(path)?;
        let request = Request::Sync {
            path: self.server_path(path),
        };
        self.call_at(path, request, None).map(|_| ())
    }

    fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: &Watcher) -> Result<()> {
        path::validate(path)?;
        let (wire_mode, kind) = match mode {
            AddWatchMode::Persistent => (0, WatchKind::Persistent),
            AddWatchMode::PersistentRecursive => (1, WatchKind::PersistentRecursive),
        };
        let request = Request::AddWatch {
            path: self.server_path(path),
            mode: wire_mode,
        };
        let watch = WatchOnReply {
            watcher: watcher.clone(),
            client_path: path.to_string(),
            kind,
        };
        self.call_at(path, request, Some(watch)).map(|_| ())
    }

    /// As the Java client: removing one watcher asks the server only whether
    /// a watch of that kind is there (checkWatches, 17) and leaves it in
    /// place; removing all of a kind removes it on the server
    /// (removeWatches, 18). Either way the local watchers are then removed
    /// and told so with a `*WatchRemoved` event (D.5).
    fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()> {
        path::validate(path)?;
        if !self.inner.watches.lock().contains(path, kind, watcher) {
            return Err(Error::with_path(ErrorKind::NoWatcher, path));
        }
        let server_path = self.server_path(path);
        let request = match watcher {
            Some(_) => Request::CheckWatches {
                path: server_path,
                watcher_type: kind.code(),
            },
            None => Request::RemoveWatches {
                path: server_path,
                watcher_type: kind.code(),
            },
        };
        self.call_at(path, request, None)?;
        let removed = self.inner.watches.lock().remove(path, kind, watcher);
        match removed {
            Some(deliveries) => {
                self.inner.deliver(deliveries);
                Ok(())
            }
            None => Err(Error::with_path(ErrorKind::NoWatcher, path)),
        }
    }

    /// Sends the credential and waits for the server's answer. It is kept
    /// and re-sent after every reconnect. A refused credential (an unknown
    /// scheme) fails with `AuthFailed` and, as with ZooKeeper's own clients,
    /// leaves the session unusable (state `AuthFailed`).
    fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let deadline = Instant::now() + self.inner.request_timeout();
        let rx = {
            let mut shared = self.inner.shared.lock();
            self.inner.wait_connected(&mut shared, deadline)?;
            shared.auth.push((scheme.to_string(), auth.to_vec()));
            let frame = proto::encode_request(
                xid::AUTH,
                &Request::Auth {
                    auth_type: 0,
                    scheme: scheme.to_string(),
                    auth: auth.to_vec(),
                },
            );
            let (tx, rx) = crossbeam_channel::bounded(1);
            shared.auth_waiters.push_back(Some(tx));
            if let Err(e) = write_frame(&mut shared, &frame) {
                shared.auth_waiters.pop_back();
                return Err(Error::new(ErrorKind::ConnectionLoss).detail(format!("send: {e}")));
            }
            rx
        };
        match rx.recv_deadline(deadline) {
            Ok(0) => Ok(()),
            // The connection dropped first: the credential is kept and goes
            // out again right after the reconnect handshake.
            Ok(code) if code == ErrorKind::ConnectionLoss.code() => Ok(()),
            Ok(code) if code == ErrorKind::AuthFailed.code() => {
                Err(Error::new(ErrorKind::AuthFailed)
                    .detail(format!("the server refused scheme {scheme:?}")))
            }
            Ok(code) => Err(server_error(code)),
            Err(_) => Err(Error::new(ErrorKind::OperationTimeout).detail(format!(
                "no auth reply within {:?}",
                self.inner.request_timeout()
            ))),
        }
    }

    fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        match self.call(Request::WhoAmI, None)? {
            Response::WhoAmI { client_info } => Ok(client_info
                .into_iter()
                .map(|c| ClientInfo {
                    auth_scheme: c.auth_scheme,
                    user: c.user,
                })
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    fn events(&self) -> WatchReceiver {
        self.inner.dispatch.events()
    }

    fn default_watcher(&self) -> Watcher {
        self.inner.default_watcher.clone()
    }

    fn state(&self) -> KeeperState {
        self.inner.shared.lock().state
    }
}

mod backoff;
mod link;
#[cfg(test)]
mod tests;
