//! One session's request pipeline: the order requests are answered in, and
//! the mapping of each request to an engine call and of its result to a
//! reply.
//!
//! Writes are handed to the engine as they arrive ([`Engine::submit`]), so a
//! client that pipelines writes gets them group-committed. Every other
//! request waits until no write of this connection is in flight (ZooKeeper's
//! CommitProcessor does the same): a read behind a pending write sees it, and
//! its reply follows the write's. A write behind a waiting read waits too,
//! so the read cannot see it. Replies are queued on the connection in
//! request order: a write's by the engine's committer, in queue order,
//! right after the write is applied; a read's while the read still holds
//! the state lock, so no notification of a later change can overtake it
//! (docs/zookeeper-semantics.md D.4).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::Shared;
use crate::error::{Error, ErrorKind};
use crate::event::WatcherType;
use crate::front::{self, Front, Read};
use crate::node::{CreateMode, Id};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::proto::{
    self, decode_request, decode_request_header, encode_reply, opcode, ClientInfo, CreateKind,
    CreateRequest, DecodeErrorKind, MultiOp, MultiResult, ReplyHeader, Request, Response,
};
use crate::sasl::DigestServer;

/// ZooKeeper's `SessionClosedRequireSaslAuth`: a request before the SASL
/// login a server with `sessionRequireClientSASLAuth` demands.
const SESSION_CLOSED_REQUIRE_SASL_AUTH: i32 = -124;

/// Requests a connection may have taken and not yet answered; past it the
/// loop stops reading that connection (ZooKeeper's default
/// `globalOutstandingLimit` is 1000 for the whole server).
const IN_FLIGHT_MAX: usize = 4096;

/// Bytes of requests waiting their turn before the loop stops reading.
const WAITING_BYTES_MAX: usize = 4 << 20;

/// What a request handler answers: a body, or an error code.
type Answer = std::result::Result<Response, i32>;

fn code(e: &Error) -> i32 {
    e.kind().code()
}

/// A write for the engine, with what its reply needs of the request.
enum WireWrite {
    Create(front::Create, CreateKind),
    Delete(front::Delete),
    SetData(front::SetData),
    SetAcl(front::SetAcl),
    Check(front::Check),
    /// Per op: the create kind (create vs create2 results), if a create.
    Multi(front::Multi, Vec<Option<CreateKind>>),
    Close,
}

/// A multi's results as its reply: create or create2 results per the op's
/// kind; a failed multi's results are all errors (0 for the rolled back).
fn multi_reply(results: Vec<OpResult>, kinds: &[Option<CreateKind>]) -> Response {
    Response::Multi(
        results
            .into_iter()
            .zip(kinds)
            .map(|(result, kind)| match result {
                OpResult::Create { path, stat } => match kind {
                    Some(CreateKind::Create) => MultiResult::Create { path },
                    _ => MultiResult::Create2 { path, stat },
                },
                OpResult::Delete => MultiResult::Delete,
                OpResult::SetData { stat } => MultiResult::SetData { stat },
                OpResult::Check => MultiResult::Check,
                OpResult::RolledBack => MultiResult::Error { err: 0 },
                OpResult::Error(kind) => MultiResult::Error { err: kind.code() },
            })
            .collect(),
    )
}

/// What a reply needs to know of its request.
#[derive(Clone, Copy)]
struct Tag {
    xid: i32,
    op: i32,
    started: Instant,
}

/// One request taken from the socket, waiting its turn.
struct Item {
    tag: Tag,
    len: usize,
    kind: Kind,
}

enum Kind {
    /// Handed to the engine's commit pipeline.
    Write(WireWrite),
    /// Answered here or by a read.
    Other(Request),
    /// Answered without the engine (a request that did not decode, or a
    /// write that cannot be expressed); `zxid` overrides the last zxid,
    /// `stop` closes the connection after the reply.
    Fixed {
        answer: Answer,
        zxid: Option<i64>,
        stop: bool,
    },
    /// Too short for a header: cannot be answered; close.
    Unanswerable,
}

/// A session's requests between the socket and the engine.
pub(crate) struct Pipeline {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    front: Front,
    waiting: VecDeque<Item>,
    waiting_bytes: usize,
    stopped: bool,
    /// A SASL DIGEST-MD5 exchange that sent its challenge.
    sasl: parking_lot::Mutex<Option<DigestServer>>,
}

impl Pipeline {
    pub(crate) fn new(shared: Arc<Shared>, conn: Arc<Conn>, front: Front) -> Pipeline {
        Pipeline {
            shared,
            conn,
            front,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            stopped: false,
            sasl: parking_lot::Mutex::new(None),
        }
    }

    /// True while the loop may take more requests from the socket.
    pub(crate) fn accepts_more(&self) -> bool {
        !self.stopped
            && self.waiting.len() + self.conn.writes_in_flight.load(Ordering::Acquire)
                < IN_FLIGHT_MAX
            && self.waiting_bytes < WAITING_BYTES_MAX
    }

    /// True once a request ended the session or the connection: nothing
    /// after it is answered.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Takes one request frame body.
    pub(crate) fn push(&mut self, body: &[u8]) {
        if self.stopped {
            return;
        }
        let stats = &self.shared.stats;
        stats.packets_received.fetch_add(1, Ordering::Relaxed);
        // Outstanding until `reply` (or `forget`, for one never answered).
        stats.outstanding.fetch_add(1, Ordering::Relaxed);
        {
            let mut info = self.conn.info.lock();
            info.received += 1;
            info.outstanding += 1;
        }
        let started = Instant::now();
        let item = match decode_request(body) {
            Ok((header, request)) => Item {
                tag: Tag {
                    xid: header.xid,
                    op: header.opcode,
                    started,
                },
                len: body.len(),
                kind: classify(request),
            },
            Err(e) => match decode_request_header(body) {
                // A frame too short for a header cannot be answered (H.9).
                Err(_) => Item {
                    tag: Tag {
                        xid: 0,
                        op: 0,
                        started,
                    },
                    len: body.len(),
                    kind: Kind::Unanswerable,
                },
                Ok(header) => Item {
                    tag: Tag {
                        xid: header.xid,
                        op: header.opcode,
                        started,
                    },
                    len: body.len(),
                    kind: match e.kind() {
                        // deleteContainer (20) is ZooKeeper's internal op: a
                        // client sending it gets BadArguments and keeps its
                        // connection, as from ZooKeeper 3.8.
                        DecodeErrorKind::UnknownOpcode(op) if op == opcode::DELETE_CONTAINER => {
                            Kind::Fixed {
                                answer: Err(ErrorKind::BadArguments.code()),
                                zxid: None,
                                stop: false,
                            }
                        }
                        DecodeErrorKind::UnknownOpcode(_) => Kind::Fixed {
                            answer: Err(ErrorKind::Unimplemented.code()),
                            zxid: Some(-1),
                            stop: true,
                        },
                        DecodeErrorKind::Malformed => Kind::Fixed {
                            answer: Err(ErrorKind::MarshallingError.code()),
                            zxid: None,
                            stop: false,
                        },
                    },
                },
            },
        };
        self.waiting_bytes += item.len;
        self.waiting.push_back(item);
    }

    /// Hands waiting requests to the engine or answers them, in order, as
    /// far as the ordering rules allow. True when it stopped only because
    /// the connection's output is above the soft limit.
    pub(crate) fn dispatch(&mut self) -> bool {
        while let Some(front) = self.waiting.front() {
            if self.stopped {
                forget(&self.shared, &self.conn, self.waiting.len());
                self.waiting.clear();
                self.waiting_bytes = 0;
                return false;
            }
            let is_write = matches!(front.kind, Kind::Write(..));
            if !is_write && self.conn.writes_in_flight.load(Ordering::Acquire) > 0 {
                return false;
            }
            // Back-pressure: a client that asks faster than it reads gets
            // no more answers queued until its output drains (the loop
            // calls again as it does).
            if self.conn.queued().1 > self.shared.config.output_bytes_soft_max {
                return true;
            }
            let Some(item) = self.waiting.pop_front() else {
                return false;
            };
            self.waiting_bytes -= item.len;
            self.run(item);
        }
        false
    }

    fn identities(&self) -> Vec<Id> {
        self.front.identities()
    }

    fn reply(&self, tag: Tag, zxid: i64, answer: &Answer) {
        reply(&self.shared, &self.conn, tag, zxid, answer);
    }

    fn stop(&mut self) {
        self.stopped = true;
        self.conn.close_when_flushed();
    }

    fn run(&mut self, item: Item) {
        let touched = self.front.touch();
        let tag = item.tag;
        let request = match item.kind {
            Kind::Unanswerable => {
                forget(&self.shared, &self.conn, 1);
                self.stop();
                return;
            }
            Kind::Fixed { answer, zxid, stop } => {
                let zxid = zxid.unwrap_or_else(|| self.front.last_zxid());
                self.reply(tag, zxid, &answer);
                if stop {
                    self.stop();
                }
                return;
            }
            _ if !touched => {
                let zxid = self.front.last_zxid();
                self.reply(tag, zxid, &Err(ErrorKind::SessionExpired.code()));
                self.stop();
                return;
            }
            // sessionRequireClientSASLAuth: only auth and SASL before a SASL login.
            _ if self.shared.config.sasl_required
                && tag.op != opcode::AUTH
                && tag.op != opcode::SASL
                && !self.identities().iter().any(|id| id.scheme == "sasl") =>
            {
                self.shared.log(format_args!(
                    "connection {}: a request before the SASL login the server requires",
                    self.conn.id
                ));
                self.reply(tag, 0, &Err(SESSION_CLOSED_REQUIRE_SASL_AUTH));
                self.stop();
                return;
            }
            Kind::Write(write) => {
                self.submit(tag, write);
                return;
            }
            Kind::Other(request) => request,
        };
        let Some(request) = self.run_read(tag, request) else {
            return;
        };
        let (answer, stop) = self.run_other(tag, request);
        let zxid = match tag.op {
            opcode::AUTH | opcode::SASL => 0,
            _ => self.front.last_zxid(),
        };
        if let Some(answer) = answer {
            self.reply(tag, zxid, &answer);
        }
        if stop {
            self.stop();
        }
    }

    /// Hands a write to the engine; its reply is queued when it completes.
    fn submit(&mut self, tag: Tag, write: WireWrite) {
        let close = matches!(write, WireWrite::Close);
        if close {
            // Nothing after closeSession is answered.
            self.stopped = true;
        }
        let shared = self.shared.clone();
        let conn = self.conn.clone();
        let session_id = self.front.session_id();
        conn.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        let finish = move |answer: Answer, zxid: i64| {
            reply(&shared, &conn, tag, zxid, &answer);
            if close {
                if answer.is_ok() {
                    tracing::info!(target: "innkeeper::session", "session {session_id:#x} closed");
                }
                conn.close_when_flushed();
            }
            // After the reply is queued: a read waiting behind this write
            // may run once it sees the count drop.
            conn.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
            conn.poke();
        };
        let front = &self.front;
        match write {
            WireWrite::Create(create, kind) => front.submit(create, move |result, zxid| {
                let answer = result.map(|(path, stat)| match kind {
                    CreateKind::Create => Response::Create { path },
                    _ => Response::Create2 { path, stat },
                });
                finish(answer.map_err(|e| code(&e)), zxid);
            }),
            WireWrite::Delete(delete) => front.submit(delete, move |result, zxid| {
                finish(result.map(|()| Response::Empty).map_err(|e| code(&e)), zxid);
            }),
            WireWrite::SetData(set) => front.submit(set, move |result, zxid| {
                let answer = result.map(|stat| Response::SetData { stat });
                finish(answer.map_err(|e| code(&e)), zxid);
            }),
            WireWrite::SetAcl(set) => front.submit(set, move |result, zxid| {
                let answer = result.map(|stat| Response::SetAcl { stat });
                finish(answer.map_err(|e| code(&e)), zxid);
            }),
            WireWrite::Check(check) => front.submit(check, move |result, zxid| {
                finish(result.map(|()| Response::Empty).map_err(|e| code(&e)), zxid);
            }),
            WireWrite::Multi(multi, kinds) => front.submit(multi, move |result, zxid| {
                let answer = result.map(|results| multi_reply(results, &kinds));
                finish(answer.map_err(|e| code(&e)), zxid);
            }),
            WireWrite::Close => front.submit(front::Close, move |result, zxid| {
                finish(result.map(|()| Response::Empty).map_err(|e| code(&e)), zxid);
            }),
        }
    }

    /// Answers a read while holding the state lock, so its reply is queued
    /// before any notification of a later change. Gives back a request
    /// that is not a read.
    fn run_read(&self, tag: Tag, request: Request) -> Option<Request> {
        let watching: &dyn Fn(bool) = &|_| {};
        let hook = |watch: bool| watch.then_some(watching);
        match request {
            Request::Exists { path, watch } => {
                self.read(tag, |read| match read.exists(&path, hook(watch)) {
                    Ok(Some(stat)) => Ok(Response::Exists { stat }),
                    Ok(None) => Err(ErrorKind::NoNode.code()),
                    Err(e) => Err(code(&e)),
                })
            }
            Request::GetData(g) => self.read(tag, |read| {
                read.get_data(&g.path, hook(g.watch))
                    .map(|(data, stat)| Response::GetData { data, stat })
                    .map_err(|e| code(&e))
            }),
            Request::GetChildren(g) => self.read(tag, |read| {
                read.get_children_wire(&g.path, hook(g.watch))
                    .map(|(children, _)| Response::GetChildren { children })
                    .map_err(|e| code(&e))
            }),
            Request::GetChildren2(g) => self.read(tag, |read| {
                read.get_children_wire(&g.path, hook(g.watch))
                    .map(|(children, stat)| Response::GetChildren2 { children, stat })
                    .map_err(|e| code(&e))
            }),
            Request::GetAcl { path } => self.read(tag, |read| {
                read.get_acl(&path)
                    .map(|(acl, stat)| Response::GetAcl { acl, stat })
                    .map_err(|e| code(&e))
            }),
            Request::GetAllChildrenNumber { path } => self.read(tag, |read| {
                read.get_all_children_number(&path)
                    .map(|n| Response::GetAllChildrenNumber {
                        total_number: i32::try_from(n).unwrap_or(i32::MAX),
                    })
                    .map_err(|e| code(&e))
            }),
            Request::GetEphemerals { prefix_path } => self.read(tag, |read| {
                Ok(Response::GetEphemerals {
                    ephemerals: read.get_ephemerals(&prefix_path),
                })
            }),
            Request::MultiRead(ops) => self.read(tag, |read| Ok(multi_read(read, &ops))),
            other => return Some(other),
        }
        None
    }

    /// Runs `answer` under the state read lock and queues its reply before
    /// the lock goes (see the module docs).
    fn read(&self, tag: Tag, answer: impl FnOnce(&Read<'_>) -> Answer) {
        match self.front.read() {
            Ok(read) => {
                let answer = answer(&read);
                self.reply(tag, read.last_zxid(), &answer);
                drop(read);
            }
            Err(e) => {
                let zxid = self.front.last_zxid();
                self.reply(tag, zxid, &Err(code(&e)));
            }
        }
    }

    /// Everything that is neither a write nor a read of the tree. Returns
    /// the answer (None: already queued) and whether to close after it.
    fn run_other(&self, tag: Tag, request: Request) -> (Option<Answer>, bool) {
        let front = &self.front;
        let answer = match request {
            Request::Ping => Ok(Response::Empty),
            Request::Sync { path } => front
                .sync()
                .map(|()| Response::Sync { path })
                .map_err(|e| code(&e)),
            Request::Reconfig { .. } => Err(ErrorKind::ReconfigDisabled.code()),
            Request::CheckWatches { path, watcher_type } => {
                self.remove_watches(&path, watcher_type, false)
            }
            Request::RemoveWatches { path, watcher_type } => {
                self.remove_watches(&path, watcher_type, true)
            }
            Request::Auth { scheme, auth, .. } => {
                return match self.auth(&scheme, &auth) {
                    Ok(()) => (Some(Ok(Response::Empty)), false),
                    // Unknown scheme: −115, then close (G.3).
                    Err(c) => (Some(Err(c)), true),
                };
            }
            Request::SetWatches {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
            } => front
                .set_watches(
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
            } => front
                .set_watches(
                    relative_zxid,
                    &data_watches,
                    &exist_watches,
                    &child_watches,
                    &persistent_watches,
                    &persistent_recursive_watches,
                )
                .map(|()| Response::Empty)
                .map_err(|e| code(&e)),
            Request::Sasl { token } => return self.sasl(&token),
            Request::AddWatch { path, mode } => match mode {
                0 | 1 => {
                    // The reply is queued while the engine still holds the
                    // state lock: a client registers its watcher when the
                    // reply comes, so no event of the new watch may come first.
                    let zxid = front.last_zxid();
                    let reply_now = || self.reply(tag, zxid, &Ok(Response::AddWatch));
                    return match front.add_watch(&path, mode == 1, &reply_now) {
                        Ok(()) => (None, false),
                        Err(e) => (Some(Err(code(&e))), false),
                    };
                }
                _ => Err(ErrorKind::BadArguments.code()),
            },
            Request::WhoAmI => Ok(Response::WhoAmI {
                client_info: front
                    .who_am_i()
                    .into_iter()
                    .map(|c| ClientInfo {
                        auth_scheme: c.auth_scheme,
                        user: c.user,
                    })
                    .collect(),
            }),
            _ => Err(ErrorKind::SystemError.code()),
        };
        (Some(answer), false)
    }

    fn remove_watches(&self, path: &str, watcher_type: i32, remove: bool) -> Answer {
        let Some(kind) = WatcherType::from_code(watcher_type) else {
            return Err(ErrorKind::BadArguments.code());
        };
        self.front
            .remove_watches(path, kind, remove, &|| {})
            .map(|()| Response::Empty)
            .map_err(|e| code(&e))
    }

    /// One SASL DIGEST-MD5 token, as ZooKeeper's server takes it: the
    /// client's empty first token gets the challenge, its response gets
    /// `rspauth` and the session the identity `sasl:USER`. A failed login
    /// is answered AuthFailed and the connection closed (the session lives
    /// on until it expires). No user configured: Unimplemented, connection kept.
    fn sasl(&self, token: &[u8]) -> (Option<Answer>, bool) {
        let users = &self.shared.config.sasl_users.0;
        if users.is_empty() {
            return (Some(Err(ErrorKind::Unimplemented.code())), false);
        }
        let mut step = self.sasl.lock();
        let outcome = match step.take() {
            None if token.is_empty() => match crate::sasl::random_nonce() {
                Ok(nonce) => {
                    let mut server = DigestServer::new(nonce);
                    let challenge = server.challenge();
                    *step = Some(server);
                    return (Some(Ok(Response::Sasl { token: challenge })), false);
                }
                Err(e) => Err(e),
            },
            None => Err(Error::new(ErrorKind::AuthFailed)
                .detail("a DIGEST-MD5 response without a challenge (a replay?)")),
            Some(mut server) => server
                .check(token, |user| users.get(user).cloned())
                .map(|rspauth| (rspauth, server.authorized_id().map(str::to_string))),
        };
        match outcome {
            Ok((rspauth, Some(user))) => {
                self.front.add_identity(Id::new("sasl", user));
                (Some(Ok(Response::Sasl { token: rspauth })), false)
            }
            Ok((_, None)) | Err(_) => {
                // The detail names the user at most, never a password.
                let why = outcome
                    .err()
                    .and_then(|e| e.detail_message().map(str::to_string))
                    .unwrap_or_default();
                self.shared.log(format_args!(
                    "connection {}: SASL DIGEST-MD5 login failed: {why}",
                    self.conn.id
                ));
                (Some(Err(ErrorKind::AuthFailed.code())), true)
            }
        }
    }

    fn auth(&self, scheme: &str, auth: &[u8]) -> std::result::Result<(), i32> {
        match scheme {
            "digest" => {
                self.front.add_digest(auth);
                Ok(())
            }
            // The ip provider authenticates the peer address the connection
            // already carries.
            "ip" => Ok(()),
            _ => Err(ErrorKind::AuthFailed.code()),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Requests of a closed connection that never got their turn.
        forget(&self.shared, &self.conn, self.waiting.len());
    }
}

/// Counts `n` taken requests as no longer outstanding.
fn forget(shared: &Shared, conn: &Conn, n: usize) {
    if n == 0 {
        return;
    }
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    let _ = shared
        .stats
        .outstanding
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
            Some(o.saturating_sub(n))
        });
    let mut info = conn.info.lock();
    info.outstanding = info.outstanding.saturating_sub(n);
}

/// Queues a reply on the connection and records its figures.
fn reply(shared: &Shared, conn: &Conn, tag: Tag, zxid: i64, answer: &Answer) {
    forget(shared, conn, 1);
    let (err, body) = match answer {
        Ok(r) => (0, Some(r)),
        Err(c) => (*c, None),
    };
    let xid = tag.xid;
    let mut frame = encode_reply(&ReplyHeader { xid, zxid, err }, body);
    if tag.op == opcode::SASL && err != 0 {
        // ZooKeeper answers a failed SASL step with a null token after the
        // header, and the Java client reads that token whatever the error:
        // without it the client sees a short frame and reconnects to retry
        // forever, instead of reporting AuthFailed.
        frame.extend_from_slice(&(-1i32).to_be_bytes());
        let body_len = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
        frame[..4].copy_from_slice(&body_len.to_be_bytes());
    }
    conn.push_reply(frame);
    let elapsed = tag.started.elapsed();
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    if tag.op != opcode::PING {
        shared.record_request(op_name(tag.op), elapsed);
    }
    let mut info = conn.info.lock();
    info.last_op = op_name(tag.op);
    info.last_cxid = xid;
    info.last_zxid = zxid;
    info.last_response_ms = super::wall_ms();
    info.last_latency_ms = elapsed_ms;
    info.latency.record(elapsed_ms);
}

/// Sorts a decoded request into a write for the engine's pipeline or
/// anything else.
fn classify(request: Request) -> Kind {
    let write = match request {
        Request::Create(create) => {
            let kind = create.kind;
            match create_command(create) {
                Ok(create) => WireWrite::Create(create, kind),
                Err(e) => {
                    return Kind::Fixed {
                        answer: Err(e.code()),
                        zxid: None,
                        stop: false,
                    }
                }
            }
        }
        Request::Delete(d) => WireWrite::Delete(front::Delete {
            path: d.path,
            version: d.version,
        }),
        Request::SetData(s) => WireWrite::SetData(front::SetData {
            path: s.path,
            data: s.data,
            version: s.version,
        }),
        Request::SetAcl { path, acl, version } => {
            WireWrite::SetAcl(front::SetAcl { path, acl, version })
        }
        Request::Check(c) => WireWrite::Check(front::Check {
            path: c.path,
            version: c.version,
        }),
        Request::Multi(ops) => return multi(ops),
        Request::CloseSession => WireWrite::Close,
        other => return Kind::Other(other),
    };
    Kind::Write(write)
}

fn multi(ops: Vec<MultiOp>) -> Kind {
    let n_ops = ops.len();
    let mut kinds = Vec::with_capacity(n_ops);
    let mut converted = Vec::with_capacity(n_ops);
    for (idx, op) in ops.into_iter().enumerate() {
        let op = match op {
            MultiOp::Create(create) => {
                kinds.push(Some(create.kind));
                create_command(create).map(|c| Op::Create {
                    path: c.path,
                    data: c.data,
                    options: c.options,
                })
            }
            MultiOp::Delete(d) => {
                kinds.push(None);
                Ok(Op::delete(d.path, d.version))
            }
            MultiOp::SetData(s) => {
                kinds.push(None);
                Ok(Op::SetData {
                    path: s.path,
                    data: s.data,
                    version: s.version,
                })
            }
            MultiOp::Check(c) => {
                kinds.push(None);
                Ok(Op::check(c.path, c.version))
            }
        };
        match op {
            Ok(op) => converted.push(op),
            Err(kind) => {
                kinds.resize(n_ops, None);
                return Kind::Fixed {
                    answer: Ok(multi_reply(OpResult::failed(n_ops, idx, kind), &kinds)),
                    zxid: None,
                    stop: false,
                };
            }
        }
    }
    Kind::Write(WireWrite::Multi(front::Multi(converted), kinds))
}

fn multi_read(read: &Read<'_>, ops: &[proto::ReadOp]) -> Response {
    // The watch flag inside a multiRead is ignored (D.1).
    let ops: Vec<ReadOp> = ops
        .iter()
        .map(|op| match op {
            proto::ReadOp::GetData(g) => ReadOp::GetData(g.path.clone()),
            proto::ReadOp::GetChildren(g) => ReadOp::GetChildren(g.path.clone()),
        })
        .collect();
    let results = read
        .multi_read(&ops, true)
        .into_iter()
        .map(|result| match result {
            ReadResult::Data(data, stat) => proto::ReadResult::GetData { data, stat },
            ReadResult::Children(children) => proto::ReadResult::GetChildren { children },
            ReadResult::Error(kind) => proto::ReadResult::Error { err: kind.code() },
        })
        .collect();
    Response::MultiRead(results)
}

/// The command for a create request. The opcode, not the flag, makes a
/// container; flag 4 on create/create2 stores a plain persistent node, and
/// TTL rules follow docs/zookeeper-semantics.md A.3: a TTL mode without
/// a TTL (create, create2, createContainer) or with one out of range is
/// refused by the engine, as the TTL then reads 0.
fn create_command(create: CreateRequest) -> std::result::Result<front::Create, ErrorKind> {
    let mode = CreateMode::from_flag(create.flags).ok_or(ErrorKind::BadArguments)?;
    let (mode, ttl) = match create.kind {
        CreateKind::Create | CreateKind::Create2 => match mode {
            CreateMode::Container => (CreateMode::Persistent, None),
            m => (m, None),
        },
        CreateKind::Container if mode.is_ttl() => (mode, None),
        CreateKind::Container => (CreateMode::Container, None),
        CreateKind::Ttl { ttl } if mode.is_ttl() => {
            (mode, u64::try_from(ttl).ok().map(Duration::from_millis))
        }
        CreateKind::Ttl { ttl } if ttl >= 0 => return Err(ErrorKind::BadArguments),
        CreateKind::Ttl { .. } => (mode, None),
    };
    let mut options = CreateOptions::new(mode).acl(create.acl);
    options.ttl = ttl;
    Ok(front::Create {
        path: create.path,
        data: create.data,
        options,
    })
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
