//! A ZooKeeper-wire-compatible TCP server over a [`Keeper`], so zkCli,
//! Curator, kazoo and other ZooKeeper clients can use innkeeper as a local
//! stand-in for an ensemble.
//!
//! The server holds no op semantics: every request goes to the engine. It
//! owns sockets, the handshake, framing limits, per-connection ordering and
//! the four-letter words (`docs/zookeeper-semantics.md` C, H).
//!
//! # Threads
//!
//! A fixed set, whatever the number of connections: one event-loop thread
//! (`mio`) owns the listener and every socket, and the engine's committer
//! thread makes writes durable. The server is split by concern: `net` (the
//! event loop: sockets, framing, output), `pipeline` (one session's request
//! order and its mapping onto the engine), `conn` (a connection's output
//! queue and session sink, shared with the engine's threads) and `words`
//! (four-letter words, on top).
//!
//! # Ordering
//!
//! A client may pipeline: writes go to the engine's commit pipeline as they
//! arrive and are group-committed; other requests wait until the
//! connection's earlier writes are answered. Replies leave in request
//! order, and a notification never overtakes the reply of a request the
//! server answered before the change (docs/zookeeper-semantics.md D.4).
//!
//! # Limits
//!
//! * frames above [`ServerConfig::frame_len_max`] close the connection (H.1);
//! * a connection that sends no complete ConnectRequest within
//!   [`ServerConfig::handshake_timeout`] is closed;
//! * the server stops reading a connection's requests while its output
//!   queue holds more than [`ServerConfig::output_bytes_soft_max`], or
//!   while it has thousands of requests in flight (back-pressure), and a
//!   connection whose socket accepts nothing for
//!   [`ServerConfig::write_stall_timeout`], or whose queue passes
//!   [`ServerConfig::output_bytes_max`] through notifications alone, is
//!   closed;
//! * at most [`ServerConfig::connections_per_ip_max`] connections per peer
//!   address (0 = unlimited), refused at accept.

mod admin;
mod conn;
mod net;
mod pipeline;
#[cfg(test)]
mod tests;
mod words;

pub use admin::HttpEndpoint;
/// The four-letter words a server knows (what `4lw.commands.whitelist` may name).
pub use words::FOUR_LETTER_WORDS;

/// A time as Java's `Date.toString()` prints it in UTC (zkCli's Stat format).
#[doc(hidden)]
pub use words::java_date;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::keeper::Keeper;
use conn::{Conn, Wakeup};

/// Which four-letter words a server answers (ZooKeeper's
/// `4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWords {
    /// Every word (`*`).
    All,
    /// Only these; others get "… is not executed because it is not in the whitelist."
    Only(Vec<String>),
}

impl FourLetterWords {
    /// Parses a comma-separated list; `*` allows all.
    pub fn parse(list: &str) -> FourLetterWords {
        let words: Vec<String> = list
            .split(',')
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect();
        if words.iter().any(|w| w == "*") {
            FourLetterWords::All
        } else {
            FourLetterWords::Only(words)
        }
    }

    fn allows(&self, word: &str) -> bool {
        match self {
            FourLetterWords::All => true,
            FourLetterWords::Only(words) => words.iter().any(|w| w == word),
        }
    }
}

/// Server settings. [`ServerConfig::default`] matches ZooKeeper's defaults
/// where it has one.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:2181`; port 0 picks one).
    pub bind: SocketAddr,
    /// Largest request frame body (default 0xFFFFF, `jute.maxbuffer`).
    pub frame_len_max: usize,
    /// Connections allowed per peer address, 0 = unlimited (default 60,
    /// `maxClientCnxns`).
    pub connections_per_ip_max: usize,
    /// Four-letter words answered (default: `srvr` only, like ZooKeeper).
    pub four_letter_words: FourLetterWords,
    /// A connection must complete its ConnectRequest within this (default
    /// 10 s, `zookeeper.nio.sessionlessCnxnTimeout`).
    pub handshake_timeout: Duration,
    /// Above this many queued output bytes the server neither reads nor
    /// answers more of the connection's requests until the client reads
    /// (default 1 MiB).
    pub output_bytes_soft_max: usize,
    /// A connection whose queued output passes this through notifications
    /// (which are never held back) is closed (default 16 MiB).
    pub output_bytes_max: usize,
    /// A connection whose socket accepts no bytes for this long is closed
    /// (default 30 s).
    pub write_stall_timeout: Duration,
    /// Unused: connection lines are debug-level `tracing` events now
    /// (`innkeeper serve --verbose` shows them). Kept so configs still build.
    pub verbose: bool,
    /// Shown by `conf`/`envi` (the data directory, if any).
    pub data_dir: Option<PathBuf>,
    /// Requests slower than this are logged at warn level (default: none).
    pub slow_request: Option<Duration>,
    /// A TLS port beside the plain one (ZooKeeper's `secureClientPort`).
    pub secure: Option<SecurePort>,
    /// Serve only the TLS port (ZooKeeper: `secureClientPort` without `clientPort`);
    /// `bind` is then not opened.
    pub secure_only: bool,
    /// SASL DIGEST-MD5 users and passwords (the JAAS `Server` section). Empty: the
    /// SASL request answers Unimplemented, as a ZooKeeper with no SASL login configured fails it.
    pub sasl_users: SaslUsers,
    /// Sessions must log in with SASL before any other request (ZooKeeper's
    /// `zookeeper.sessionRequireClientSASLAuth`); others are answered
    /// `SessionClosedRequireSaslAuth` (−124) and closed.
    pub sasl_required: bool,
}

/// The TLS port of a [`ServerConfig`].
#[derive(Debug, Clone)]
pub struct SecurePort {
    /// Address to listen on (port 0 picks one).
    pub bind: SocketAddr,
    /// Certificates and client authentication; reload them with [`crate::ServerTls::reload`].
    pub tls: Arc<crate::ServerTls>,
}

/// SASL DIGEST-MD5 users: name → password. Its `Debug` shows names only.
#[derive(Clone, Default)]
pub struct SaslUsers(pub Arc<HashMap<String, String>>);

impl SaslUsers {
    /// The users of a JAAS file's `Server` section (its `DigestLoginModule`'s
    /// `user_NAME="password"` options). Fails with `BadArguments` for a
    /// malformed file or one without such users.
    pub fn from_jaas(text: &str) -> crate::Result<SaslUsers> {
        let file = crate::sasl::JaasFile::parse(text)?;
        let users: HashMap<String, String> = file.digest_users("Server").into_iter().collect();
        if users.is_empty() {
            return Err(crate::Error::new(crate::ErrorKind::BadArguments).detail(
                "the JAAS file has no Server section with DigestLoginModule user_NAME=\"password\" options",
            ));
        }
        Ok(SaslUsers(Arc::new(users)))
    }
}

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("SaslUsers").field(&names).finish()
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 2181)),
            frame_len_max: crate::proto::MAX_FRAME_LEN,
            connections_per_ip_max: 60,
            four_letter_words: FourLetterWords::Only(vec!["srvr".to_string()]),
            handshake_timeout: Duration::from_secs(10),
            output_bytes_soft_max: 1 << 20,
            output_bytes_max: 16 << 20,
            write_stall_timeout: Duration::from_secs(30),
            verbose: false,
            data_dir: None,
            slow_request: None,
            secure: None,
            secure_only: false,
            sasl_users: SaslUsers::default(),
            sasl_required: false,
        }
    }
}

/// Server-wide counters for `srvr`, `stat`, `mntr`.
#[derive(Default)]
pub(crate) struct Stats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub latency: Mutex<Latency>,
    /// Per-op latency histograms for `/metrics`.
    pub requests: crate::metrics::RequestMetrics,
    /// Requests logged as slow.
    pub slow_requests: AtomicU64,
    /// Requests taken from sockets and not yet answered (ZooKeeper's
    /// `outstanding_requests`).
    pub outstanding: AtomicU64,
}

/// Request latency in ms, as ZooKeeper reports it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latency {
    pub min_ms: u64,
    pub max_ms: u64,
    pub total_ms: u64,
    pub count: u64,
}

impl Latency {
    pub(crate) fn record(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 {
            ms
        } else {
            self.min_ms.min(ms)
        };
        self.max_ms = self.max_ms.max(ms);
        self.total_ms = self.total_ms.saturating_add(ms);
        self.count += 1;
    }

    /// The average as ZooKeeper reports it: rounded to 4 decimals.
    pub(crate) fn avg_ms_rounded(&self) -> f64 {
        (self.avg_ms() * 10_000.0).round() / 10_000.0
    }

    pub(crate) fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

/// What the event loop, the connections and the engine's callbacks share.
pub(crate) struct Shared {
    pub keeper: Keeper,
    pub config: ServerConfig,
    pub local_addr: SocketAddr,
    pub secure_addr: Option<SocketAddr>,
    pub started: Instant,
    pub stopping: AtomicBool,
    pub stats: Stats,
    next_conn_id: AtomicU64,
    wakeup: Arc<Wakeup>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    by_session: Mutex<HashMap<i64, Weak<Conn>>>,
}

impl Shared {
    /// Live connections, by id.
    pub(crate) fn connections(&self) -> Vec<Arc<Conn>> {
        let mut all: Vec<Arc<Conn>> = self.conns.lock().values().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Makes `conn` the connection of `session_id`, closing the one that
    /// held it before (a client resumed its session elsewhere, C.1.6).
    pub(crate) fn claim_session(&self, session_id: i64, conn: &Arc<Conn>) {
        let previous = self
            .by_session
            .lock()
            .insert(session_id, Arc::downgrade(conn));
        if let Some(old) = previous.and_then(|w| w.upgrade()) {
            if old.id != conn.id {
                old.kill("session resumed on another connection");
            }
        }
    }

    fn release(&self, conn: &Conn) {
        self.conns.lock().remove(&conn.id);
        if let Some(session_id) = conn.session_id() {
            let mut by_session = self.by_session.lock();
            let held = by_session
                .get(&session_id)
                .and_then(Weak::upgrade)
                .is_some_and(|c| c.id == conn.id);
            if held {
                by_session.remove(&session_id);
            }
        }
        self.undo_count(conn.peer.ip());
    }

    fn undo_count(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Connection-level events (opened, closed, refused): debug
    /// level, which `innkeeper serve --verbose` shows.
    fn log(&self, line: std::fmt::Arguments<'_>) {
        tracing::debug!(target: "innkeeper::server", "{line}");
    }

    /// Connection errors (a malformed handshake or frame, a client that
    /// does not read): warn level, shown by default.
    fn warn(&self, line: std::fmt::Arguments<'_>) {
        tracing::warn!(target: "innkeeper::server", "{line}");
    }

    /// Accounts one answered request (not pings): the min/avg/max latency
    /// of `srvr`/`mntr`, the per-op histogram of `/metrics`, and a warning
    /// when it was slower than [`ServerConfig::slow_request`].
    pub(crate) fn record_request(&self, op: &'static str, elapsed: Duration) {
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.stats.latency.lock().record(elapsed_ms);
        self.stats.requests.record(op, elapsed);
        if self.config.slow_request.is_some_and(|slow| elapsed > slow) {
            self.stats.slow_requests.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "innkeeper::server", "slow request: {op} took {elapsed_ms} ms");
        }
    }
}

/// A running server. Dropping it (or [`Server::shutdown`]) stops accepting
/// and closes every connection; the keeper and its sessions stay.
pub struct Server {
    shared: Arc<Shared>,
    event_loop: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `config.bind` (and the TLS port, if any) and starts serving
    /// `keeper`. The ports are open only once the server can answer on them.
    pub fn start(keeper: Keeper, config: ServerConfig) -> io::Result<Server> {
        let (listener, listener_tls, secure) = if config.secure_only {
            let Some(port) = &config.secure else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "secure_only without a secure port",
                ));
            };
            let listener = mio::net::TcpListener::bind(port.bind)?;
            (listener, Some(port.tls.clone()), None)
        } else {
            let listener = mio::net::TcpListener::bind(config.bind)?;
            let secure = match &config.secure {
                Some(port) => Some((mio::net::TcpListener::bind(port.bind)?, port.tls.clone())),
                None => None,
            };
            (listener, None, secure)
        };
        let local_addr = listener.local_addr()?;
        let secure_addr = match (&listener_tls, &secure) {
            (Some(_), _) => Some(local_addr),
            (None, Some((l, _))) => Some(l.local_addr()?),
            (None, None) => None,
        };
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), net::WAKER)?;
        let shared = Arc::new(Shared {
            keeper,
            config,
            local_addr,
            secure_addr,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            stats: Stats::default(),
            // 0, 1 and 2 are the listener's, the waker's and the TLS listener's tokens.
            next_conn_id: AtomicU64::new(3),
            wakeup: Arc::new(Wakeup::new(waker)),
            conns: Mutex::new(HashMap::new()),
            per_ip: Mutex::new(HashMap::new()),
            by_session: Mutex::new(HashMap::new()),
        });
        let event_loop = net::EventLoop::new(shared.clone(), poll, listener, listener_tls, secure)?;
        let handle = std::thread::Builder::new()
            .name("innkeeper-server".into())
            .spawn(move || event_loop.run())?;
        Ok(Server {
            shared,
            event_loop: Some(handle),
        })
    }

    /// The address the server listens on (with the real port when 0 was
    /// asked); with `secure_only`, the TLS port.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Serves ZooKeeper's AdminServer on `addr`: `GET /commands/NAME`
    /// answers JSON with ZooKeeper 3.8's command names and keys. Stops when
    /// the returned endpoint is dropped.
    pub fn serve_admin(&self, addr: SocketAddr) -> io::Result<HttpEndpoint> {
        admin::start(self.shared.clone(), addr, admin::Kind::Admin)
    }

    /// Serves Prometheus metrics on `addr`: `GET /metrics` in the text
    /// format, with mntr's names plus per-op latency histograms, commit
    /// batch sizes and flush latency. Stops when the endpoint is dropped.
    pub fn serve_metrics(&self, addr: SocketAddr) -> io::Result<HttpEndpoint> {
        admin::start(self.shared.clone(), addr, admin::Kind::Metrics)
    }

    /// The address of the TLS port, if there is one.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.shared.secure_addr
    }

    /// Number of open client connections.
    pub fn connection_count(&self) -> usize {
        self.shared.conns.lock().len()
    }

    /// Write batches the keeper has committed to its store so far (each one
    /// atomic write and, in the durable mode, one flush). For tests and
    /// benchmarks of group commit.
    #[doc(hidden)]
    pub fn store_batches(&self) -> u64 {
        self.shared.keeper.engine.store_batches()
    }

    /// Stops accepting, closes every connection and waits for the event
    /// loop. Sessions stay in the keeper (they expire, or a client resumes
    /// them on a later server over the same keeper).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.wakeup.schedule(0);
        if let Some(handle) = self.event_loop.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.shared.local_addr)
            .finish()
    }
}

/// Milliseconds since the epoch (for `cons`/`dump` only; sessions use the engine's clock).
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
