//! The event loop: one thread owns the listener and every client socket
//! (`mio`), so connections cost no threads. It accepts, reads and splits
//! frames, runs the handshake, hands request frames to each session's
//! [`Pipeline`], and writes each connection's output queue to its socket.
//! Other threads (the engine's committer queuing replies and notifications,
//! the ticker expiring a session, a resumed session closing its older
//! connection) never touch a socket: they queue on the [`Conn`] and wake
//! the loop through [`Wakeup`].
//!
//! Fairness: a connection is served a bounded number of bytes per turn and
//! goes to the back of the line if it has more, so a busy or slow client
//! never holds up the others.

use std::collections::HashMap;
use std::io::{self, Read, Write as _};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::conn::{Conn, WeakSink};
use super::pipeline::Pipeline;
use super::{words, Shared};
use crate::engine::{EventSink, SessionHooks};
use crate::error::ErrorKind;
use crate::front::{self, Front};
use crate::node::Id;
use crate::proto::{
    decode_connect_request, encode_connect_response, four_letter_word, ConnectResponse,
    FrameSplitter,
};
use crate::tls::{ServerTls, TlsServerStream};

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
/// The TLS port beside the plain one.
pub(crate) const SECURE_LISTENER: Token = Token(2);

/// Bytes read from a socket at a time (one buffer for the whole loop).
const READ_CHUNK: usize = 64 << 10;
/// Bytes read from one connection before the loop turns to the others.
const READ_TURN: usize = 256 << 10;
/// Output bytes gathered into one socket write.
const WRITE_GATHER: usize = 256 << 10;
/// A write buffer larger than this is given back once it is drained.
const WRITE_BUF_KEEP: usize = 16 << 10;
/// How long a closing connection may still send before it is closed.
const LINGER: Duration = Duration::from_millis(500);

/// A connection's byte stream: plain TCP, or TLS over it. Nothing above
/// this type sees the difference, except that TLS may hold encrypted bytes
/// the socket did not take yet ([`Transport::flush_pending`]).
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(TcpStream, Box<TlsServerStream>),
}

impl Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s, tls) => tls.read(s, buf),
        }
    }

    /// Takes bytes to send. TLS takes more only once its earlier output
    /// left, so a client that does not read is held back as on plain TCP.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s, tls) => {
                tls.flush(s)?;
                tls.write(s, buf)
            }
        }
    }

    /// Sends what TLS still holds; `WouldBlock` while the socket is full.
    fn flush_pending(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(s, tls) => tls.flush(s),
        }
    }

    fn shutdown_write(&mut self) {
        match self {
            Transport::Plain(s) => {
                let _ = s.shutdown(Shutdown::Write);
            }
            Transport::Tls(s, tls) => {
                tls.close();
                let _ = tls.flush(s);
                let _ = s.shutdown(Shutdown::Write);
            }
        }
    }

    fn source(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) | Transport::Tls(s, _) => s,
        }
    }

    /// The client certificate's subject, for the x509 identity.
    fn peer_subject(&self) -> Option<String> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(_, tls) => tls.peer_subject(),
        }
    }
}

enum Phase {
    /// Waiting for the ConnectRequest (or a four-letter word).
    Handshake {
        deadline: Instant,
    },
    /// A new session is being committed.
    Connecting {
        hooks: Arc<SessionHooks>,
    },
    Session(Pipeline),
    /// The last bytes are queued or sent; reads are discarded.
    Closing,
    /// Write side shut: give the client a moment to read, then close.
    Lingering {
        until: Instant,
    },
}

struct Sock {
    conn: Arc<Conn>,
    transport: Transport,
    splitter: FrameSplitter,
    /// The splitter once held a large frame: start a fresh one when drained.
    grown: bool,
    phase: Phase,
    wbuf: Vec<u8>,
    wpos: usize,
    /// The socket may hold unread bytes (mio is edge-triggered).
    readable: bool,
}

enum Outcome {
    Open,
    Close(&'static str),
}

pub(crate) struct EventLoop {
    shared: Arc<Shared>,
    poll: Poll,
    listener: TcpListener,
    /// The main listener speaks TLS (a secure-only server).
    listener_tls: Option<Arc<ServerTls>>,
    /// The TLS listener beside the plain one.
    secure: Option<(TcpListener, Arc<ServerTls>)>,
    socks: HashMap<u64, Sock>,
    scratch: Vec<u8>,
    again: Vec<u64>,
    next_sweep: Instant,
}

impl EventLoop {
    pub(crate) fn new(
        shared: Arc<Shared>,
        poll: Poll,
        mut listener: TcpListener,
        listener_tls: Option<Arc<ServerTls>>,
        mut secure: Option<(TcpListener, Arc<ServerTls>)>,
    ) -> io::Result<EventLoop> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some((secure_listener, _)) = &mut secure {
            poll.registry()
                .register(secure_listener, SECURE_LISTENER, Interest::READABLE)?;
        }
        Ok(EventLoop {
            shared,
            poll,
            listener,
            listener_tls,
            secure,
            socks: HashMap::new(),
            scratch: vec![0; READ_CHUNK],
            again: Vec::new(),
            next_sweep: Instant::now(),
        })
    }

    /// Runs until the server stops; then closes every connection.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let sweep_every = sweep_interval(&self.shared);
        loop {
            if self.shared.stopping.load(Ordering::Acquire) {
                break;
            }
            let now = Instant::now();
            let timeout = if self.again.is_empty() {
                self.next_sweep.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.shared.warn(format_args!("poll failed: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(false),
                    SECURE_LISTENER => self.accept(true),
                    WAKER => {
                        for id in self.shared.wakeup.take() {
                            if let Some(sock) = self.socks.get(&id) {
                                sock.conn.unschedule();
                                self.service(id);
                            }
                        }
                    }
                    Token(t) => {
                        let id = t as u64;
                        if let Some(sock) = self.socks.get_mut(&id) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                sock.readable = true;
                            }
                            self.service(id);
                        }
                    }
                }
            }
            for id in std::mem::take(&mut self.again) {
                self.service(id);
            }
            if Instant::now() >= self.next_sweep {
                self.sweep();
                self.next_sweep = Instant::now() + sweep_every;
            }
        }
        let ids: Vec<u64> = self.socks.keys().copied().collect();
        for id in ids {
            self.close(id, "server shutting down");
        }
    }

    fn accept(&mut self, secure_port: bool) {
        loop {
            let (listener, tls) = match (&self.secure, secure_port) {
                (Some((listener, tls)), true) => (listener, Some(tls)),
                (None, true) => return,
                (_, false) => (&self.listener, self.listener_tls.as_ref()),
            };
            let tls = match tls.map(|t| t.accept()) {
                None => None,
                Some(Ok(stream)) => Some(stream),
                Some(Err(e)) => {
                    self.shared.log(format_args!("TLS: {e}"));
                    return;
                }
            };
            let accepted = listener.accept();
            let (mut stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and the like: leave the rest queued in the
                    // kernel; the listener stays readable, so the sweep's
                    // turn of the loop comes back here.
                    self.shared.warn(format_args!("accept failed: {e}"));
                    self.next_sweep = Instant::now();
                    return;
                }
            };
            let limit = self.shared.config.connections_per_ip_max;
            {
                let mut per_ip = self.shared.per_ip.lock();
                let n = per_ip.entry(peer.ip()).or_insert(0);
                if limit != 0 && *n >= limit {
                    self.shared.log(format_args!(
                        "refused {peer}: {n} connections from this address (limit {limit})"
                    ));
                    continue;
                }
                *n += 1;
            }
            let id = self.shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            let registered = usize::try_from(id).ok().and_then(|t| {
                self.poll
                    .registry()
                    .register(
                        &mut stream,
                        Token(t),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .ok()
            });
            if registered.is_none() {
                self.shared.undo_count(peer.ip());
                continue;
            }
            let conn = Arc::new(Conn::new(id, peer, self.shared.wakeup.clone()));
            self.shared.conns.lock().insert(id, conn.clone());
            self.shared.log(format_args!("connection {id} from {peer}"));
            self.socks.insert(
                id,
                Sock {
                    conn,
                    transport: match tls {
                        Some(tls) => Transport::Tls(stream, Box::new(tls)),
                        None => Transport::Plain(stream),
                    },
                    splitter: FrameSplitter::with_max_len(self.shared.config.frame_len_max),
                    grown: false,
                    phase: Phase::Handshake {
                        deadline: Instant::now() + self.shared.config.handshake_timeout,
                    },
                    wbuf: Vec::new(),
                    wpos: 0,
                    readable: true,
                },
            );
            self.service(id);
        }
    }

    /// Serves one connection for a turn: requests, output, more input.
    fn service(&mut self, id: u64) {
        let Some(sock) = self.socks.get_mut(&id) else {
            return;
        };
        match serve(&self.shared, sock, &mut self.scratch) {
            Outcome::Open => {
                if sock.readable && can_read(&self.shared, sock) {
                    self.again.push(id);
                }
            }
            Outcome::Close(reason) => self.close(id, reason),
        }
    }

    fn close(&mut self, id: u64, reason: &'static str) {
        let Some(mut sock) = self.socks.remove(&id) else {
            return;
        };
        let _ = self.poll.registry().deregister(sock.transport.source());
        sock.conn.kill(reason);
        let reason = sock.conn.with_out(|out| out.close_reason);
        self.shared.release(&sock.conn);
        self.shared
            .log(format_args!("connection {id} closed: {reason}"));
        // Dropping the socket closes it; the connection's buffers go with
        // it (the engine holds the session's sink only weakly).
    }

    /// Deadlines: handshakes, lingering closes, clients that do not read.
    fn sweep(&mut self) {
        let now = Instant::now();
        let stall = self.shared.config.write_stall_timeout;
        let mut expired = Vec::new();
        for (id, sock) in &self.socks {
            match sock.phase {
                Phase::Handshake { deadline } if now >= deadline => {
                    self.shared
                        .log(format_args!("connection {id}: no ConnectRequest in time"));
                    expired.push((*id, "no ConnectRequest in time"));
                    continue;
                }
                Phase::Lingering { until } if now >= until => {
                    expired.push((*id, "closed after the last reply"));
                    continue;
                }
                _ => {}
            }
            let stalled = sock
                .conn
                .with_out(|out| out.stalled_since)
                .is_some_and(|since| now.duration_since(since) >= stall);
            if stalled {
                self.shared
                    .warn(format_args!("connection {id}: client does not read"));
                sock.conn.kill("writing to the client failed or stalled");
                expired.push((*id, "writing to the client failed or stalled"));
            }
        }
        for (id, reason) in expired {
            self.close(id, reason);
        }
        // A listener refused by EMFILE stays readable without a new edge.
        self.accept(false);
        self.accept(true);
    }
}

fn sweep_interval(shared: &Shared) -> Duration {
    let shortest = shared
        .config
        .write_stall_timeout
        .min(shared.config.handshake_timeout);
    (shortest / 4).clamp(Duration::from_millis(10), Duration::from_millis(500))
}

fn can_read(shared: &Shared, sock: &Sock) -> bool {
    match &sock.phase {
        Phase::Handshake { .. } | Phase::Closing | Phase::Lingering { .. } => true,
        Phase::Connecting { .. } => false,
        Phase::Session(pipeline) => {
            pipeline.accepts_more() && sock.conn.queued().1 <= shared.config.output_bytes_soft_max
        }
    }
}

/// One turn of a connection.
fn serve(shared: &Arc<Shared>, sock: &mut Sock, scratch: &mut [u8]) -> Outcome {
    let mut budget = READ_TURN;
    loop {
        if sock.conn.with_out(|out| out.closed) {
            return Outcome::Close("closed");
        }
        let held_back = match take_frames(shared, sock) {
            Ok(held_back) => held_back,
            Err(reason) => {
                sock.conn.kill(reason);
                return Outcome::Close(reason);
            }
        };
        if let Err(e) = flush(shared, sock) {
            shared.warn(format_args!(
                "connection {}: write failed: {e}",
                sock.conn.id
            ));
            sock.conn.kill("writing to the client failed or stalled");
            return Outcome::Close("writing to the client failed or stalled");
        }
        if held_back && sock.conn.queued().1 <= shared.config.output_bytes_soft_max {
            // Requests waited for room that the flush just made.
            continue;
        }
        let drained = sock.wpos == sock.wbuf.len() && sock.conn.queued().0 == 0;
        let closing = sock.conn.with_out(|out| out.close_when_flushed);
        if closing && drained && !matches!(sock.phase, Phase::Lingering { .. }) {
            sock.transport.shutdown_write();
            sock.phase = Phase::Lingering {
                until: Instant::now() + LINGER,
            };
        } else if closing && !matches!(sock.phase, Phase::Lingering { .. }) {
            sock.phase = Phase::Closing;
        }
        if !sock.readable || budget == 0 || !can_read(shared, sock) {
            return Outcome::Open;
        }
        let want = scratch.len().min(budget);
        let Some(buf) = scratch.get_mut(..want) else {
            return Outcome::Open;
        };
        match sock.transport.read(buf) {
            Ok(0) => {
                return match sock.phase {
                    Phase::Lingering { .. } => Outcome::Close("closed after the last reply"),
                    Phase::Handshake { .. } => Outcome::Close("closed before a session"),
                    _ => Outcome::Close("client closed or sent a frame that ends the connection"),
                };
            }
            Ok(n) => {
                budget = budget.saturating_sub(n);
                match sock.phase {
                    Phase::Closing | Phase::Lingering { .. } => {}
                    _ => {
                        if let Some(bytes) = buf.get(..n) {
                            sock.splitter.push(bytes);
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock.readable = false;
                return Outcome::Open;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Close("reading from the client failed"),
        }
    }
}

/// Moves complete frames from the splitter into the handshake or the
/// session pipeline, and lets the pipeline dispatch. True when requests are
/// held back until the output drains.
fn take_frames(shared: &Arc<Shared>, sock: &mut Sock) -> Result<bool, &'static str> {
    if let Phase::Handshake { .. } = sock.phase {
        if let Some(word) = four_letter_word(sock.splitter.pending()) {
            shared
                .stats
                .packets_received
                .fetch_add(1, Ordering::Relaxed);
            sock.conn.info.lock().received += 1;
            let text = words::answer(shared, word);
            sock.conn.push_reply(text.into_bytes());
            sock.conn.close_when_flushed();
            sock.phase = Phase::Closing;
            return Ok(false);
        }
        match sock.splitter.next_frame() {
            Ok(Some(first)) => handshake(shared, sock, &first)?,
            Ok(None) => return Ok(false),
            Err(_) => return Err("frame too large"),
        }
    }
    if let Phase::Connecting { hooks } = &sock.phase {
        let Some(session_id) = sock.conn.session_id() else {
            return Ok(false);
        };
        shared.claim_session(session_id, &sock.conn);
        let front = Front::new(shared.keeper.engine.clone(), session_id, hooks.clone());
        sock.phase = Phase::Session(Pipeline::new(shared.clone(), sock.conn.clone(), front));
    }
    if let Phase::Session(pipeline) = &mut sock.phase {
        if sock.grown && sock.splitter.pending().is_empty() {
            sock.splitter = FrameSplitter::with_max_len(shared.config.frame_len_max);
            sock.grown = false;
        }
        while pipeline.accepts_more() {
            match sock.splitter.next_frame() {
                Ok(Some(body)) => {
                    sock.grown |= body.len() > READ_CHUNK;
                    pipeline.push(&body);
                }
                Ok(None) => break,
                Err(e) => {
                    shared.warn(format_args!("connection {}: {e}; closing", sock.conn.id));
                    return Err("frame too large");
                }
            }
        }
        let held_back = pipeline.dispatch();
        if pipeline.stopped() {
            sock.phase = Phase::Closing;
        }
        return Ok(held_back);
    }
    Ok(false)
}

/// The ConnectRequest: a new session goes through the engine's commit
/// pipeline (so many connects share a flush); a resumed one is checked at
/// once.
fn handshake(shared: &Arc<Shared>, sock: &mut Sock, first: &[u8]) -> Result<(), &'static str> {
    let conn = &sock.conn;
    let Ok(request) = decode_connect_request(first) else {
        shared.warn(format_args!(
            "connection {}: malformed ConnectRequest",
            conn.id
        ));
        return Err("malformed ConnectRequest");
    };
    let engine = &shared.keeper.engine;
    if request.last_zxid_seen > engine.last_zxid() {
        // The client saw a newer state than ours: no reply (C.1.3).
        shared.log(format_args!(
            "connection {}: client zxid {:#x} is ahead of ours {:#x}",
            conn.id,
            request.last_zxid_seen,
            engine.last_zxid()
        ));
        return Err("client is ahead of the server");
    }
    let mut identities = vec![Id::new("ip", conn.peer.ip().to_string())];
    // A client certificate the TLS port verified (X509AuthenticationProvider).
    if let Some(subject) = sock.transport.peer_subject() {
        identities.push(Id::new("x509", subject));
    }
    let sink: Arc<dyn EventSink> = Arc::new(WeakSink(Arc::downgrade(conn)));
    let hooks = Arc::new(SessionHooks::new(identities, sink, false));
    let read_only = request.read_only.map(|_| false);
    let output_max = shared.config.output_bytes_max;
    let refuse = move |conn: &Conn| {
        // Unknown, expired or wrong password: "expired", then close (C.5).
        conn.push_reply(encode_connect_response(&ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: vec![0; 16],
            read_only,
        }));
        conn.close_when_flushed();
    };
    if request.session_id == 0 {
        let timeout_ms = engine.negotiate_timeout(request.timeout_ms);
        let done_conn = conn.clone();
        front::open_session_submit(engine, timeout_ms, hooks.clone(), move |result| {
            let conn = done_conn;
            match result {
                Ok((session_id, password)) => {
                    conn.info.lock().timeout_ms = timeout_ms;
                    conn.push_reply(encode_connect_response(&ConnectResponse {
                        protocol_version: 0,
                        timeout_ms,
                        session_id,
                        passwd: password.to_vec(),
                        read_only,
                    }));
                    conn.set_session(session_id, output_max);
                    tracing::info!(
                        target: "innkeeper::session",
                        "session {session_id:#x} opened (timeout {timeout_ms} ms)"
                    );
                    tracing::debug!(
                        target: "innkeeper::server",
                        "connection {}: session {session_id:#x} (new), timeout {timeout_ms} ms",
                        conn.id
                    );
                }
                Err(e) if e.kind() != ErrorKind::SessionExpired => {
                    // The keeper could not write the session (a full
                    // disk, a closing keeper): no answer, just close, so
                    // the client retries instead of reading timeout 0 as
                    // "session expired".
                    tracing::error!(
                        target: "innkeeper::server",
                        "connection {}: no session could be opened, closing: {e}",
                        conn.id
                    );
                    conn.kill("no session could be opened");
                }
                other => {
                    tracing::debug!(
                        target: "innkeeper::server",
                        "connection {}: cannot open a session: {:?}",
                        conn.id,
                        other.err()
                    );
                    refuse(&conn);
                }
            }
            conn.poke();
        });
        sock.phase = Phase::Connecting { hooks };
        return Ok(());
    }
    // A changed timeout is a txn: submitted, so the loop never waits for
    // its flush. The connection reads nothing more until the answer is
    // queued (`Phase::Connecting`), so the reply order is kept.
    let session_id = request.session_id;
    let passwd = request.passwd.clone();
    let done_conn = conn.clone();
    let done_shared = shared.clone();
    engine.resume_session_submit(
        session_id,
        &request.passwd,
        request.timeout_ms,
        hooks.clone(),
        Box::new(move |result| {
            let conn = done_conn;
            match result {
                Ok(timeout_ms) => {
                    conn.info.lock().timeout_ms = timeout_ms;
                    conn.push_reply(encode_connect_response(&ConnectResponse {
                        protocol_version: 0,
                        timeout_ms,
                        session_id,
                        passwd,
                        read_only,
                    }));
                    conn.set_session(session_id, output_max);
                    done_shared.log(format_args!(
                        "connection {}: session {session_id:#x} (resumed), timeout {timeout_ms} ms",
                        conn.id
                    ));
                }
                Err(e) if e.kind() != ErrorKind::SessionExpired => {
                    // As for a new session: the keeper could not write;
                    // close without an answer so the client retries.
                    tracing::error!(
                        target: "innkeeper::server",
                        "connection {}: no session could be resumed, closing: {e}",
                        conn.id
                    );
                    conn.kill("no session could be resumed");
                }
                Err(_) => {
                    // Unknown, expired or wrong password: "expired", then
                    // close (C.5).
                    done_shared.log(format_args!(
                        "connection {}: session {session_id:#x} cannot be resumed",
                        conn.id
                    ));
                    refuse(&conn);
                }
            }
            conn.poke();
        }),
    );
    sock.phase = Phase::Connecting { hooks };
    Ok(())
}

/// Writes queued output until the socket would block.
fn flush(shared: &Shared, sock: &mut Sock) -> io::Result<()> {
    match sock.transport.flush_pending() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    loop {
        if sock.wpos == sock.wbuf.len() {
            sock.wbuf.clear();
            sock.wpos = 0;
            let wbuf = &mut sock.wbuf;
            let moved = sock.conn.with_out(|out| {
                let mut n = 0u64;
                while wbuf.len() < WRITE_GATHER {
                    let Some(frame) = out.frames.pop_front() else {
                        break;
                    };
                    out.bytes -= frame.len();
                    if wbuf.is_empty() && wbuf.capacity() < frame.len() {
                        *wbuf = frame;
                    } else {
                        wbuf.extend_from_slice(&frame);
                    }
                    n += 1;
                }
                if n == 0 {
                    out.stalled_since = None;
                    if out.frames.capacity() > 64 {
                        out.frames.shrink_to(64);
                    }
                }
                n
            });
            if moved == 0 {
                if sock.wbuf.capacity() > WRITE_BUF_KEEP {
                    sock.wbuf = Vec::new();
                }
                return Ok(());
            }
            shared
                .stats
                .packets_sent
                .fetch_add(moved, Ordering::Relaxed);
            sock.conn.info.lock().sent += moved;
        }
        let Some(pending) = sock.wbuf.get(sock.wpos..) else {
            return Ok(());
        };
        match sock.transport.write(pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                sock.wpos += n;
                sock.conn
                    .with_out(|out| out.stalled_since = Some(Instant::now()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
