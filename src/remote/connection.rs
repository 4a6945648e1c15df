//! The connection state machine on the session's thread: connect to the
//! next host, handshake (new or resumed session), SASL login, re-sent
//! credentials and watches, then serve until the connection ends, and
//! reconnect with jittered backoff.

use std::io::ErrorKind as IoErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::event::KeeperState;
use crate::proto::{self, xid, ConnectRequest, FrameSplitter, Request, Response};
use crate::random::Rng;
use crate::sasl::DigestClient;

use super::address::to_server;
use super::backoff;
use super::link::Link;
use super::{
    fail_pending, read_timeout, server_error, write_frame, End, Inner, SaslLogin,
    HANDSHAKE_WAIT_MIN, REPLY_FRAME_BYTES_MAX, SET_WATCHES_BYTES_MAX, XID_SET_WATCHES,
};

impl Inner {
    pub(super) fn run(self: Arc<Self>) {
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
    pub(super) fn pause(&self, pause: Duration) -> bool {
        let deadline = Instant::now() + pause;
        let mut shared = self.shared.lock();
        while !shared.closing {
            if self.changed.wait_until(&mut shared, deadline).timed_out() {
                break;
            }
        }
        shared.closing
    }

    /// Connects to `host` and performs the handshake, then queues the auth
    /// packets and SetWatches before any user request can go out (I.1).
    pub(super) fn establish(
        &self,
        host: &(String, u16),
    ) -> std::result::Result<(Link, FrameSplitter), End> {
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
        // Two thirds of a tiny requested timeout (which the server clamps
        // up, but only in its answer) is too short for an ensemble to
        // commit a new session: the handshake gets at least a floor.
        let read_timeout = read_timeout(negotiated_ms).max(HANDSHAKE_WAIT_MIN);
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
    pub(super) fn handshake(
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
        let _ = stream.set_write_timeout(super::read_timeout(response.timeout_ms));
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
    pub(super) fn sasl_login(
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
    pub(super) fn sasl_round(
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
}

/// An I/O error as the cause of a failed connection: refused and timed out
/// in plain words, others as the system says them.
pub(super) fn io_cause(e: &std::io::Error) -> String {
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
pub(super) fn set_watches_requests(relative_zxid: i64, lists: [Vec<String>; 5]) -> Vec<Request> {
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
