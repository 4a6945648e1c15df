//! One client connection: the handshake, the request loop (reader thread),
//! the output queue and the writer thread.

use std::collections::VecDeque;
use std::io::{self, Read, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use super::{words, Shared};
use crate::api::{client_infos, failed_multi, OpResult};
use crate::engine::{Engine, EventSink, SessionHooks, Write, Written};
use crate::error::{Error, ErrorKind};
use crate::event::{EventType, KeeperState};
use crate::node::{CreateMode, Id};
use crate::prep::{digest_identity, WriteOp};
use crate::proto::{
    decode_connect_request, decode_request, decode_request_header, encode_connect_response,
    encode_notification, encode_reply, four_letter_word, opcode, ClientInfo, ConnectResponse,
    CreateKind, CreateRequest, DecodeErrorKind, FrameSplitter, MultiOp, MultiResult, ReadOp,
    ReadResult, ReplyHeader, Request, Response, WatcherEvent,
};
use crate::state::OpOutcome;
use crate::watch::Table;

/// Bytes read from the socket at a time. Small on purpose: a thousand idle
/// connections should not hold megabytes of buffers.
const READ_CHUNK: usize = 8 << 10;

/// KeeperState SyncConnected, the state of every server notification (D.7).
const STATE_SYNC_CONNECTED: i32 = 3;

/// Queued output of a connection.
#[derive(Default)]
struct Out {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The connection is dead: drop output, stop every thread.
    closed: bool,
    /// Send what is queued, then close (after closeSession, −6, −115, …).
    close_when_flushed: bool,
    /// Someone (the writer thread, or the reader writing a reply directly)
    /// is writing to the socket outside the lock.
    writing: bool,
    /// Why the connection was closed (for the log).
    close_reason: &'static str,
    /// A read that set a watch is between the engine and its reply:
    /// notifications wait in `held` so none overtakes that reply (D.4).
    holding: bool,
    held: Vec<Vec<u8>>,
}

/// Per-connection figures for `cons`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnInfo {
    pub received: u64,
    pub sent: u64,
    pub timeout_ms: i32,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub latency: super::Latency,
    pub last_latency_ms: u64,
}

/// A client connection, shared by its reader and writer threads and, as
/// the session's [`EventSink`], by the engine.
pub(crate) struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    pub established_ms: i64,
    stream: TcpStream,
    out: Mutex<Out>,
    /// Signals the writer (output queued, or closing).
    wake_writer: Condvar,
    /// Signals the reader (output drained below the soft limit, or closing).
    drained: Condvar,
    session_id: AtomicI64,
    output_bytes_max: AtomicI64,
    pub info: Mutex<ConnInfo>,
}

impl Conn {
    pub(crate) fn new(id: u64, peer: SocketAddr, stream: TcpStream) -> io::Result<Conn> {
        stream.set_nodelay(true)?;
        Ok(Conn {
            id,
            peer,
            established_ms: wall_ms(),
            stream,
            out: Mutex::new(Out::default()),
            wake_writer: Condvar::new(),
            drained: Condvar::new(),
            session_id: AtomicI64::new(0),
            output_bytes_max: AtomicI64::new(i64::MAX),
            info: Mutex::new(ConnInfo::default()),
        })
    }

    /// The session this connection serves, once the handshake is done.
    pub(crate) fn session_id(&self) -> Option<i64> {
        match self.session_id.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// Frames and bytes waiting to be sent.
    pub(crate) fn queued(&self) -> (usize, usize) {
        let out = self.out.lock();
        (out.frames.len(), out.bytes)
    }

    /// Closes the connection now, dropping queued output. Never blocks, so
    /// the engine may call it with its locks held.
    pub(crate) fn kill(&self, reason: &'static str) {
        {
            let mut out = self.out.lock();
            if out.closed {
                return;
            }
            out.closed = true;
            out.close_reason = reason;
            out.frames.clear();
            out.bytes = 0;
        }
        self.wake_writer.notify_all();
        self.drained.notify_all();
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn is_closed(&self) -> bool {
        self.out.lock().closed
    }

    /// Queues a frame without waiting (notifications). A connection whose
    /// queue passes the hard limit is closed: its client does not read.
    fn push_now(&self, frame: Vec<u8>) {
        let limit =
            usize::try_from(self.output_bytes_max.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
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
            if out.holding {
                // Counted when released: the reply being queued must not
                // wait for room these frames take.
                out.held.push(frame);
                return;
            }
            out.bytes += frame.len();
            out.frames.push_back(frame);
        }
        self.wake_writer.notify_one();
    }

    /// Holds back notifications: called under the engine's state lock by a
    /// read that registers a watch, so that a change applied after the read
    /// cannot be announced before the read's reply. Without it a client
    /// could hear NodeDeleted, drop it (no watcher yet), then learn from
    /// the reply that the node exists, and wait for ever.
    fn hold(&self) {
        self.out.lock().holding = true;
    }

    /// Releases held notifications behind the reply just queued.
    fn release(&self) {
        let mut out = self.out.lock();
        if !out.holding {
            return;
        }
        out.holding = false;
        let held = std::mem::take(&mut out.held);
        let any = !held.is_empty();
        out.bytes += held.iter().map(Vec::len).sum::<usize>();
        out.frames.extend(held);
        drop(out);
        if any {
            self.wake_writer.notify_one();
        }
    }

    /// Sends a reply, first waiting while the queue is above `soft_max`
    /// (back-pressure on a client that pipelines faster than it reads).
    /// When nothing is queued and the writer is idle the reader writes the
    /// frame itself, saving a thread hand-off per reply; order is kept
    /// because anything queued earlier forces the queue. Returns true when
    /// the frame went out directly.
    fn push_reply(&self, frame: Vec<u8>, soft_max: usize, direct: bool) -> bool {
        {
            let mut out = self.out.lock();
            while !out.closed && out.bytes > soft_max {
                self.wake_writer.notify_one();
                self.drained.wait(&mut out);
            }
            if out.closed {
                return false;
            }
            if !direct || !out.frames.is_empty() || out.writing {
                out.bytes += frame.len();
                out.frames.push_back(frame);
                drop(out);
                self.wake_writer.notify_one();
                return false;
            }
            out.writing = true;
        }
        let written = (&self.stream).write_all(&frame);
        let wake = {
            let mut out = self.out.lock();
            out.writing = false;
            !out.frames.is_empty() || out.close_when_flushed
        };
        if written.is_err() {
            self.kill("writing to the client failed or stalled");
            return false;
        }
        if wake {
            self.wake_writer.notify_one();
        }
        true
    }

    fn close_when_flushed(&self) {
        self.out.lock().close_when_flushed = true;
        self.wake_writer.notify_one();
    }
}

impl EventSink for Conn {
    fn notify(&self, event_type: EventType, path: &str) {
        let event = WatcherEvent {
            event_type: event_type.code(),
            state: STATE_SYNC_CONNECTED,
            path: path.to_string(),
        };
        // zxid −1 in notifications, as ZooKeeper 3.8 sends (D.7).
        self.push_now(encode_notification(-1, &event));
    }

    fn ended(&self, state: KeeperState) {
        // Expiry closes the socket with no message (C.4). A close the
        // client asked for is answered by the reader, which then closes.
        if state == KeeperState::Expired {
            self.kill("session expired");
        }
    }
}

/// A session's sink as the engine holds it: the connection, if it is alive.
struct WeakSink(Weak<Conn>);

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

/// Runs a connection until it closes: handshake, then requests.
pub(crate) fn serve(shared: &Arc<Shared>, conn: &Arc<Conn>) {
    let Ok(mut stream) = conn.stream.try_clone() else {
        return;
    };
    let mut splitter = FrameSplitter::with_max_len(shared.config.frame_len_max);
    let mut chunk = vec![0u8; READ_CHUNK];
    shared.log(format_args!("connection {} from {}", conn.id, conn.peer));

    let Some(first) = read_handshake(shared, conn, &mut stream, &mut splitter, &mut chunk) else {
        shared.log(format_args!(
            "connection {} closed before a session",
            conn.id
        ));
        return;
    };
    let Ok(request) = decode_connect_request(&first) else {
        shared.warn(format_args!(
            "connection {}: malformed ConnectRequest",
            conn.id
        ));
        return;
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
        return;
    }
    conn.output_bytes_max.store(
        i64::try_from(shared.config.output_bytes_max).unwrap_or(i64::MAX),
        Ordering::Relaxed,
    );
    // A client that accepts no bytes for this long is dropped (the reader's
    // direct writes and the writer share the socket and this timeout).
    if stream
        .set_write_timeout(Some(shared.config.write_stall_timeout))
        .is_err()
    {
        return;
    }
    let writer = {
        let conn = conn.clone();
        let shared = shared.clone();
        let Ok(stream) = stream.try_clone() else {
            return;
        };
        match std::thread::Builder::new()
            .name("innkeeper-write".into())
            .stack_size(128 << 10)
            .spawn(move || write_loop(&shared, &conn, stream))
        {
            Ok(handle) => handle,
            Err(_) => return,
        }
    };

    let identities = vec![Id::new("ip", conn.peer.ip().to_string())];
    // The engine keeps a session's sink until the session ends, which can
    // be long after this connection is gone: it holds only a weak
    // reference, so a closed connection's socket is released at once.
    let sink: Arc<dyn EventSink> = Arc::new(WeakSink(Arc::downgrade(conn)));
    let hooks = Arc::new(SessionHooks::new(identities, sink, false));
    let read_only = request.read_only.map(|_| false);
    let session = if request.session_id == 0 {
        engine
            .open_session(request.timeout_ms, hooks.clone())
            .map(|(id, password)| {
                (
                    id,
                    password.to_vec(),
                    engine.negotiate_timeout(request.timeout_ms),
                )
            })
    } else {
        engine
            .resume_session(
                request.session_id,
                &request.passwd,
                request.timeout_ms,
                hooks.clone(),
            )
            .map(|timeout| (request.session_id, request.passwd.clone(), timeout))
    };
    match session {
        Ok((session_id, passwd, timeout_ms)) => {
            conn.session_id.store(session_id, Ordering::Release);
            conn.info.lock().timeout_ms = timeout_ms;
            shared.claim_session(session_id, conn);
            conn.push_reply(
                encode_connect_response(&ConnectResponse {
                    protocol_version: 0,
                    timeout_ms,
                    session_id,
                    passwd,
                    read_only,
                }),
                usize::MAX,
                true,
            );
            shared.log(format_args!(
                "connection {}: session {session_id:#x} ({}), timeout {timeout_ms} ms",
                conn.id,
                if request.session_id == 0 {
                    "new"
                } else {
                    "resumed"
                }
            ));
            let _ = stream.set_read_timeout(None);
            request_loop(
                shared,
                conn,
                &hooks,
                session_id,
                &mut stream,
                &mut splitter,
                &mut chunk,
            );
        }
        Err(e) if e.kind() != ErrorKind::SessionExpired => {
            // The keeper could not write the session (a full disk, a
            // closing keeper): no answer, just close, so the client retries
            // instead of reading timeout 0 as "session expired".
            eprintln!(
                "innkeeper: connection {}: no session could be opened or resumed, closing: {e}",
                conn.id
            );
        }
        Err(_) => {
            // Unknown, expired or wrong password: "expired", then close (C.5).
            shared.log(format_args!(
                "connection {}: session {:#x} cannot be resumed",
                conn.id, request.session_id
            ));
            conn.push_now(encode_connect_response(&ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                passwd: vec![0; 16],
                read_only,
            }));
            conn.close_when_flushed();
        }
    }
    if !conn.out.lock().close_when_flushed {
        conn.kill("client closed or sent a frame that ends the connection");
    }
    let _ = writer.join();
    shared.log(format_args!(
        "connection {} closed: {}",
        conn.id,
        conn.out.lock().close_reason
    ));
}

/// Reads until the first frame is complete, answering a four-letter word
/// instead if the connection starts with one. `None`: closed.
fn read_handshake(
    shared: &Shared,
    conn: &Conn,
    stream: &mut TcpStream,
    splitter: &mut FrameSplitter,
    chunk: &mut [u8],
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + shared.config.handshake_timeout;
    loop {
        if let Some(word) = four_letter_word(splitter.pending()) {
            shared
                .stats
                .packets_received
                .fetch_add(1, Ordering::Relaxed);
            conn.info.lock().received += 1;
            let text = words::answer(shared, word);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(text.as_bytes());
            let _ = stream.shutdown(Shutdown::Write);
            return None;
        }
        match splitter.next_frame() {
            Ok(Some(frame)) => return Some(frame),
            Ok(None) => {}
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline || conn.is_closed() {
            shared.log(format_args!(
                "connection {}: no ConnectRequest in time",
                conn.id
            ));
            return None;
        }
        if stream.set_read_timeout(Some(deadline - now)).is_err() {
            return None;
        }
        match stream.read(chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => splitter.push(chunk.get(..n)?),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn request_loop(
    shared: &Shared,
    conn: &Conn,
    hooks: &SessionHooks,
    session_id: i64,
    stream: &mut TcpStream,
    splitter: &mut FrameSplitter,
    chunk: &mut [u8],
) {
    let ctx = Ctx {
        shared,
        conn,
        hooks,
        session_id,
        engine: &shared.keeper.engine,
    };
    // After a large frame, start from a fresh splitter once it is drained,
    // so an idle connection does not keep a megabyte buffer.
    let mut grown = false;
    loop {
        if grown && splitter.pending().is_empty() {
            *splitter = FrameSplitter::with_max_len(shared.config.frame_len_max);
            grown = false;
        }
        loop {
            match splitter.next_frame() {
                Ok(Some(body)) => {
                    grown |= body.len() > READ_CHUNK;
                    let more = has_complete_frame(splitter.pending());
                    if ctx.handle(&body, more) == Flow::Stop {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.warn(format_args!("connection {}: {e}; closing", conn.id));
                    return;
                }
            }
        }
        match stream.read(chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => match chunk.get(..n) {
                Some(bytes) => splitter.push(bytes),
                None => return,
            },
        }
    }
}

fn write_loop(shared: &Shared, conn: &Conn, mut stream: TcpStream) {
    let soft_max = shared.config.output_bytes_soft_max;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let mut n_frames = 0u64;
        {
            let mut out = conn.out.lock();
            loop {
                if out.closed {
                    return;
                }
                if !out.writing {
                    if !out.frames.is_empty() {
                        break;
                    }
                    if out.close_when_flushed {
                        drop(out);
                        linger_and_close(conn, &mut stream);
                        return;
                    }
                }
                conn.wake_writer.wait(&mut out);
            }
            out.writing = true;
            buf.clear();
            while let Some(frame) = out.frames.pop_front() {
                out.bytes -= frame.len();
                if buf.is_empty() {
                    buf = frame;
                } else {
                    buf.extend_from_slice(&frame);
                }
                n_frames += 1;
                if buf.len() >= 256 << 10 {
                    break;
                }
            }
        }
        let written = stream.write_all(&buf);
        {
            let mut out = conn.out.lock();
            out.writing = false;
            if out.bytes <= soft_max {
                conn.drained.notify_all();
            }
        }
        if let Err(e) = written {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                shared.warn(format_args!("connection {}: client does not read", conn.id));
            }
            conn.kill("writing to the client failed or stalled");
            return;
        }
        shared
            .stats
            .packets_sent
            .fetch_add(n_frames, Ordering::Relaxed);
        conn.info.lock().sent += n_frames;
    }
}

/// After the last reply of a connection the server closes: half-close, give
/// the client a moment to read, then close.
fn linger_and_close(conn: &Conn, stream: &mut TcpStream) {
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    let linger_until = Instant::now() + Duration::from_millis(500);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 256];
    while Instant::now() < linger_until {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    conn.kill("closed after the last reply");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// What a request handler answers: a body, or an error code.
type Answer = Result<Response, i32>;

struct Ctx<'a> {
    shared: &'a Shared,
    conn: &'a Conn,
    hooks: &'a SessionHooks,
    session_id: i64,
    engine: &'a Engine,
}

fn code(e: &Error) -> i32 {
    e.kind().code()
}

impl Ctx<'_> {
    fn reply(&self, xid: i32, zxid: i64, answer: &Answer, more: bool) {
        let (err, body) = match answer {
            Ok(r) => (0, Some(r)),
            Err(c) => (*c, None),
        };
        let frame = encode_reply(&ReplyHeader { xid, zxid, err }, body);
        let direct = self
            .conn
            .push_reply(frame, self.shared.config.output_bytes_soft_max, !more);
        self.conn.release();
        if direct {
            self.shared
                .stats
                .packets_sent
                .fetch_add(1, Ordering::Relaxed);
            self.conn.info.lock().sent += 1;
        }
    }

    /// Handles one request frame body. `more`: another request is already
    /// buffered (pipelining), so the reply is queued for the writer to
    /// batch rather than written on its own.
    fn handle(&self, body: &[u8], more: bool) -> Flow {
        let started = Instant::now();
        self.shared
            .stats
            .packets_received
            .fetch_add(1, Ordering::Relaxed);
        self.conn.info.lock().received += 1;
        let (header, request) = match decode_request(body) {
            Ok(decoded) => decoded,
            Err(e) => {
                // A frame too short for a header cannot be answered (H.9).
                let Ok(header) = decode_request_header(body) else {
                    return Flow::Stop;
                };
                self.engine.touch(self.session_id);
                return match e.kind() {
                    // deleteContainer (20) is ZooKeeper's internal op: a
                    // client sending it gets BadArguments and keeps its
                    // connection, as from ZooKeeper 3.8.
                    DecodeErrorKind::UnknownOpcode(op) if op == opcode::DELETE_CONTAINER => {
                        let zxid = self.engine.last_zxid();
                        self.reply(header.xid, zxid, &Err(ErrorKind::BadArguments.code()), more);
                        Flow::Continue
                    }
                    DecodeErrorKind::UnknownOpcode(_) => {
                        self.reply(header.xid, -1, &Err(ErrorKind::Unimplemented.code()), false);
                        self.conn.close_when_flushed();
                        Flow::Stop
                    }
                    DecodeErrorKind::Malformed => {
                        let zxid = self.engine.last_zxid();
                        self.reply(
                            header.xid,
                            zxid,
                            &Err(ErrorKind::MarshallingError.code()),
                            more,
                        );
                        Flow::Continue
                    }
                };
            }
        };
        if !self.engine.touch(self.session_id) {
            self.reply(
                header.xid,
                self.engine.last_zxid(),
                &Err(ErrorKind::SessionExpired.code()),
                false,
            );
            self.conn.close_when_flushed();
            return Flow::Stop;
        }
        let op = header.opcode;
        let (answer, flow) = self.execute(request);
        let zxid = match op {
            opcode::AUTH => 0,
            _ => self.engine.last_zxid(),
        };
        self.reply(header.xid, zxid, &answer, more && flow == Flow::Continue);
        let elapsed = started.elapsed();
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        if op != opcode::PING {
            self.shared.record_request(op_name(op), elapsed);
        }
        {
            let mut info = self.conn.info.lock();
            info.last_op = op_name(op);
            info.last_cxid = header.xid;
            info.last_zxid = zxid;
            info.last_response_ms = wall_ms();
            info.last_latency_ms = elapsed_ms;
            info.latency.record(elapsed_ms);
        }
        if flow == Flow::Stop {
            self.conn.close_when_flushed();
        }
        flow
    }

    fn identities(&self) -> Vec<Id> {
        self.hooks.identities.read().clone()
    }

    fn write(&self, write: Write) -> Result<Written, i32> {
        self.engine
            .write(self.session_id, self.identities(), write, None)
            .map_err(|e| code(&e))
    }

    fn op(&self, op: WriteOp) -> Result<OpOutcome, i32> {
        match self.write(Write::Op(op))? {
            Written::Op(outcome) => Ok(outcome),
            _ => Err(ErrorKind::SystemError.code()),
        }
    }

    fn execute(&self, request: Request) -> (Answer, Flow) {
        let sid = self.session_id;
        let engine = self.engine;
        let answer = match request {
            Request::Ping => Ok(Response::Empty),
            Request::Create(create) => self.create(create),
            Request::Delete(d) => self
                .op(WriteOp::Delete {
                    path: d.path,
                    version: d.version,
                })
                .map(|_| Response::Empty),
            Request::SetData(s) => match self.op(WriteOp::SetData {
                path: s.path,
                data: s.data,
                version: s.version,
            }) {
                Ok(OpOutcome::DataSet(stat)) => Ok(Response::SetData { stat }),
                Ok(_) => Err(ErrorKind::SystemError.code()),
                Err(c) => Err(c),
            },
            Request::SetAcl { path, acl, version } => {
                match self.op(WriteOp::SetAcl { path, acl, version }) {
                    Ok(OpOutcome::AclSet(stat)) => Ok(Response::SetAcl { stat }),
                    Ok(_) => Err(ErrorKind::SystemError.code()),
                    Err(c) => Err(c),
                }
            }
            Request::Check(c) => self
                .op(WriteOp::Check {
                    path: c.path,
                    version: c.version,
                })
                .map(|_| Response::Empty),
            Request::Exists { path, watch } => {
                let register = |_: bool| self.conn.hold();
                let hook: Option<&dyn Fn(bool)> = if watch { Some(&register) } else { None };
                match engine.exists(sid, &self.identities(), &path, hook) {
                    Ok(Some(stat)) => Ok(Response::Exists { stat }),
                    Ok(None) => Err(ErrorKind::NoNode.code()),
                    Err(e) => Err(code(&e)),
                }
            }
            Request::GetData(g) => {
                let register = |_: bool| self.conn.hold();
                let hook: Option<&dyn Fn(bool)> = if g.watch { Some(&register) } else { None };
                engine
                    .get_data(sid, &self.identities(), &g.path, hook)
                    .map(|(data, stat)| Response::GetData { data, stat })
                    .map_err(|e| code(&e))
            }
            Request::GetChildren(g) => self
                .children(&g.path, g.watch)
                .map(|(children, _)| Response::GetChildren { children }),
            Request::GetChildren2(g) => self
                .children(&g.path, g.watch)
                .map(|(children, stat)| Response::GetChildren2 { children, stat }),
            Request::GetAcl { path } => engine
                .get_acl(sid, &self.identities(), &path)
                .map(|(acl, stat)| Response::GetAcl { acl, stat })
                .map_err(|e| code(&e)),
            Request::Sync { path } => engine
                .sync(sid)
                .map(|()| Response::Sync { path })
                .map_err(|e| code(&e)),
            Request::Multi(ops) => self.multi(ops),
            Request::MultiRead(ops) => self.multi_read(ops),
            Request::Reconfig { .. } => Err(ErrorKind::ReconfigDisabled.code()),
            Request::CheckWatches { path, watcher_type } => {
                self.remove_watches(&path, watcher_type, false)
            }
            Request::RemoveWatches { path, watcher_type } => {
                self.remove_watches(&path, watcher_type, true)
            }
            Request::Auth { scheme, auth, .. } => {
                return match self.auth(&scheme, &auth) {
                    Ok(()) => (Ok(Response::Empty), Flow::Continue),
                    // Unknown scheme: −115, then close (G.3).
                    Err(c) => (Err(c), Flow::Stop),
                };
            }
            Request::SetWatches {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
            } => engine
                .set_watches(
                    sid,
                    relative_zxid,
                    &data_watches,
                    &exist_watches,
                    &child_watches,
                    &[],
                    &[],
                )
                .map(|()| Response::Empty)
                .map_err(|e| code(&e)),
            Request::SetWatches2 {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
                persistent_watches,
                persistent_recursive_watches,
            } => engine
                .set_watches(
                    sid,
                    relative_zxid,
                    &data_watches,
                    &exist_watches,
                    &child_watches,
                    &persistent_watches,
                    &persistent_recursive_watches,
                )
                .map(|()| Response::Empty)
                .map_err(|e| code(&e)),
            // No SASL provider is configured: say so without dropping the client.
            Request::Sasl { .. } => Err(ErrorKind::Unimplemented.code()),
            Request::GetEphemerals { prefix_path } => engine
                .get_ephemerals(sid, &prefix_path)
                .map(|ephemerals| Response::GetEphemerals { ephemerals })
                .map_err(|e| code(&e)),
            Request::GetAllChildrenNumber { path } => engine
                .get_all_children_number(sid, &self.identities(), &path)
                .map(|n| Response::GetAllChildrenNumber {
                    total_number: i32::try_from(n).unwrap_or(i32::MAX),
                })
                .map_err(|e| code(&e)),
            Request::AddWatch { path, mode } => match mode {
                0 | 1 => engine
                    .add_watch(sid, &path, mode == 1, &|| {})
                    .map(|()| Response::AddWatch)
                    .map_err(|e| code(&e)),
                _ => Err(ErrorKind::BadArguments.code()),
            },
            Request::WhoAmI => Ok(Response::WhoAmI {
                client_info: client_infos(&self.identities())
                    .into_iter()
                    .map(|c| ClientInfo {
                        auth_scheme: c.auth_scheme,
                        user: c.user,
                    })
                    .collect(),
            }),
            Request::CloseSession => {
                let answer = engine
                    .close_session(sid)
                    .map(|()| Response::Empty)
                    .map_err(|e| code(&e));
                return (answer, Flow::Stop);
            }
        };
        (answer, Flow::Continue)
    }

    fn children(&self, path: &str, watch: bool) -> Result<(Vec<String>, crate::Stat), i32> {
        let register = |_: bool| self.conn.hold();
        let hook: Option<&dyn Fn(bool)> = if watch { Some(&register) } else { None };
        self.engine
            .get_children_wire(self.session_id, &self.identities(), path, hook)
            .map_err(|e| code(&e))
    }

    fn create(&self, create: CreateRequest) -> Answer {
        let kind = create.kind;
        let op = create_op(create)?;
        match self.op(op)? {
            OpOutcome::Created(path, stat) => Ok(match kind {
                CreateKind::Create => Response::Create { path },
                _ => Response::Create2 { path, stat },
            }),
            _ => Err(ErrorKind::SystemError.code()),
        }
    }

    fn multi(&self, ops: Vec<MultiOp>) -> Answer {
        let n_ops = ops.len();
        let mut kinds = Vec::with_capacity(n_ops);
        let mut write_ops = Vec::with_capacity(n_ops);
        for (idx, op) in ops.into_iter().enumerate() {
            let converted = match op {
                MultiOp::Create(create) => {
                    kinds.push(Some(create.kind));
                    create_op(create)
                }
                MultiOp::Delete(d) => {
                    kinds.push(None);
                    Ok(WriteOp::Delete {
                        path: d.path,
                        version: d.version,
                    })
                }
                MultiOp::SetData(s) => {
                    kinds.push(None);
                    Ok(WriteOp::SetData {
                        path: s.path,
                        data: s.data,
                        version: s.version,
                    })
                }
                MultiOp::Check(c) => {
                    kinds.push(None);
                    Ok(WriteOp::Check {
                        path: c.path,
                        version: c.version,
                    })
                }
            };
            match converted {
                Ok(op) => write_ops.push(op),
                Err(c) => {
                    let kind = ErrorKind::from_code(c).unwrap_or(ErrorKind::BadArguments);
                    let failed = failed_multi(n_ops, idx, kind);
                    return Ok(Response::Multi(
                        failed.into_iter().map(multi_error).collect(),
                    ));
                }
            }
        }
        let results = match self.write(Write::Multi(write_ops))? {
            Written::Multi(Ok(outcomes)) => outcomes
                .into_iter()
                .zip(kinds)
                .map(|(outcome, kind)| match outcome {
                    OpOutcome::Created(path, stat) => match kind {
                        Some(CreateKind::Create) => MultiResult::Create { path },
                        _ => MultiResult::Create2 { path, stat },
                    },
                    OpOutcome::Deleted => MultiResult::Delete,
                    OpOutcome::DataSet(stat) | OpOutcome::AclSet(stat) => {
                        MultiResult::SetData { stat }
                    }
                    OpOutcome::Checked | OpOutcome::Session => MultiResult::Check,
                })
                .collect(),
            Written::Multi(Err((idx, e))) => failed_multi(n_ops, idx, e.kind())
                .into_iter()
                .map(multi_error)
                .collect(),
            _ => return Err(ErrorKind::SystemError.code()),
        };
        Ok(Response::Multi(results))
    }

    fn multi_read(&self, ops: Vec<ReadOp>) -> Answer {
        let ids = self.identities();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            // The watch flag inside a multiRead is ignored (D.1).
            results.push(match op {
                ReadOp::GetData(g) => {
                    match self.engine.get_data(self.session_id, &ids, &g.path, None) {
                        Ok((data, stat)) => ReadResult::GetData { data, stat },
                        Err(e) if e.kind() == ErrorKind::SessionExpired => return Err(code(&e)),
                        Err(e) => ReadResult::Error { err: code(&e) },
                    }
                }
                ReadOp::GetChildren(g) => {
                    match self
                        .engine
                        .get_children_wire(self.session_id, &ids, &g.path, None)
                    {
                        Ok((children, _)) => ReadResult::GetChildren { children },
                        Err(e) if e.kind() == ErrorKind::SessionExpired => return Err(code(&e)),
                        Err(e) => ReadResult::Error { err: code(&e) },
                    }
                }
            });
        }
        Ok(Response::MultiRead(results))
    }

    fn remove_watches(&self, path: &str, watcher_type: i32, remove: bool) -> Answer {
        let tables: &[Table] = match watcher_type {
            1 => &[Table::Child],
            2 => &[Table::Data],
            3 => &[Table::Child, Table::Data],
            _ => return Err(ErrorKind::BadArguments.code()),
        };
        self.engine
            .remove_watches(self.session_id, path, tables, remove, &|| {})
            .map(|()| Response::Empty)
            .map_err(|e| code(&e))
    }

    fn auth(&self, scheme: &str, auth: &[u8]) -> Result<(), i32> {
        let identity = match scheme {
            "digest" => digest_identity(&String::from_utf8_lossy(auth)),
            // The ip provider authenticates the peer address the connection
            // already carries.
            "ip" => return Ok(()),
            _ => return Err(ErrorKind::AuthFailed.code()),
        };
        let is_super = self
            .engine
            .config
            .super_digest
            .as_deref()
            .is_some_and(|d| d == identity.id);
        let mut ids = self.hooks.identities.write();
        if is_super && !ids.iter().any(|i| i.scheme == "super") {
            ids.push(Id::new("super", ""));
        }
        if !ids.contains(&identity) {
            ids.push(identity);
        }
        Ok(())
    }
}

fn multi_error(result: OpResult) -> MultiResult {
    match result {
        OpResult::Error(kind) => MultiResult::Error { err: kind.code() },
        _ => MultiResult::Error { err: 0 },
    }
}

/// The engine op for a create request. The opcode, not the flag, makes a
/// container; flag 4 on create/create2 stores a plain persistent node, and
/// TTL rules follow reference A.3.
fn create_op(create: CreateRequest) -> Result<WriteOp, i32> {
    let mode = CreateMode::from_flag(create.flags).ok_or(ErrorKind::BadArguments.code())?;
    let (mode, ttl_ms) = match create.kind {
        CreateKind::Create | CreateKind::Create2 => match mode {
            CreateMode::Container => (CreateMode::Persistent, 0),
            m if m.is_ttl() => (m, -1),
            m => (m, 0),
        },
        CreateKind::Container if mode.is_ttl() => (mode, -1),
        CreateKind::Container => (CreateMode::Container, 0),
        CreateKind::Ttl { ttl } if mode.is_ttl() => (mode, ttl),
        CreateKind::Ttl { ttl } if ttl >= 0 => return Err(ErrorKind::BadArguments.code()),
        CreateKind::Ttl { .. } => (mode, 0),
    };
    Ok(WriteOp::Create {
        path: create.path,
        data: create.data,
        acl: create.acl,
        mode,
        ttl_ms,
    })
}

/// True when `pending` starts with a whole frame (length prefix and body).
fn has_complete_frame(pending: &[u8]) -> bool {
    pending
        .first_chunk::<4>()
        .and_then(|p| usize::try_from(i32::from_be_bytes(*p)).ok())
        .is_some_and(|len| pending.len() - 4 >= len)
}

/// ZooKeeper's four-character names of ops, as `cons` shows them.
fn op_name(op: i32) -> &'static str {
    match op {
        opcode::CREATE => "CREA",
        opcode::DELETE => "DELE",
        opcode::EXISTS => "EXIS",
        opcode::GET_DATA => "GETD",
        opcode::SET_DATA => "SETD",
        opcode::GET_ACL => "GETA",
        opcode::SET_ACL => "SETA",
        opcode::GET_CHILDREN => "GETC",
        opcode::SYNC => "SYNC",
        opcode::PING => "PING",
        opcode::GET_CHILDREN2 => "GETC",
        opcode::CHECK => "CHEC",
        opcode::MULTI => "MULT",
        opcode::CREATE2 => "CREA",
        opcode::RECONFIG => "RECO",
        opcode::CHECK_WATCHES => "CHKW",
        opcode::REMOVE_WATCHES => "REMW",
        opcode::CREATE_CONTAINER => "CREA",
        opcode::CREATE_TTL => "CREA",
        opcode::MULTI_READ => "MLTR",
        opcode::AUTH => "AUTH",
        opcode::SET_WATCHES | opcode::SET_WATCHES2 => "SETW",
        opcode::SASL => "SASL",
        opcode::GET_EPHEMERALS => "GETE",
        opcode::GET_ALL_CHILDREN_NUMBER => "GETN",
        opcode::ADD_WATCH => "ADDW",
        opcode::WHO_AM_I => "HOMI",
        opcode::CLOSE_SESSION => "CLOS",
        _ => "NA",
    }
}

/// Milliseconds since the epoch (for `cons`/`dump` only; sessions use the engine's clock).
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
