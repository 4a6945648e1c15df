//! The reader: on the session's thread, reads the socket, matches replies
//! to pending requests, routes notifications through the client-side watch
//! registry, and ends a connection (lost, expired, auth failed).

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::event::{Delivery, EventType, KeeperState, WatchedEvent};
use crate::proto::{self, xid, FrameSplitter, Request, Response};

use super::address::to_client;
use super::link::Link;
use super::{
    fail_pending, read_timeout, server_error, write_frame, End, Inner, PING_INTERVAL_MAX,
    XID_SET_WATCHES,
};

impl Inner {
    pub(super) fn deliver(&self, deliveries: Vec<Delivery>) {
        self.dispatch.deliver(deliveries);
    }

    /// A state event to every watcher and the default one (C.6: the Java
    /// client's `ZKWatchManager` does the same for `EventType.None`).
    pub(super) fn broadcast(&self, state: KeeperState, forget: bool) {
        let event = WatchedEvent::state(state);
        let mut deliveries = self.watches.lock().all(&event, forget);
        if !deliveries.iter().any(|d| matches!(d, Delivery::Default(_))) {
            deliveries.push(Delivery::Default(event));
        }
        self.deliver(deliveries);
    }

    // ---- the background thread ----

    /// Reads frames until the connection ends; pings when idle.
    pub(super) fn serve(&self, stream: &Link, mut splitter: FrameSplitter) -> End {
        let negotiated_ms = self.shared.lock().negotiated_ms;
        let read_timeout = read_timeout(negotiated_ms);
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
                    // After the closeSession's reply the server hangs up:
                    // the end of this session. Without the reply the close's
                    // outcome is unknown (a dropped connection looks the
                    // same as a server that closed before its reply got
                    // out): a lost connection, so the close is asked again
                    // after the reconnect, which also tells a closed session
                    // (expired) from a live one.
                    let close_unanswered = shared
                        .pending
                        .iter()
                        .any(|p| p.opcode == proto::opcode::CLOSE_SESSION);
                    if shared.closing || (shared.close_sent && !close_unanswered) {
                        return End::Closing;
                    }
                    return End::Lost(e.to_string());
                }
            }
        }
    }

    /// Handles one frame from the server; `Some` ends the connection.
    pub(super) fn on_frame(&self, body: &[u8]) -> Option<End> {
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
    pub(super) fn lost(&self, reason: &str) {
        let was_connected = {
            let mut shared = self.shared.lock();
            if let Some(w) = shared.writer.take() {
                w.shutdown();
            }
            shared.server = None;
            // An unanswered close is failed below; `close` asks again.
            shared.close_sent = false;
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

    pub(super) fn end_for_good(&self, state: KeeperState, kind: ErrorKind) {
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

    pub(super) fn expire(&self) {
        self.end_for_good(KeeperState::Expired, ErrorKind::SessionExpired);
    }

    pub(super) fn auth_failed(&self) {
        self.end_for_good(KeeperState::AuthFailed, ErrorKind::AuthFailed);
    }
}
