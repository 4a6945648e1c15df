//! The handle's own calls: identity, close, and the thread's end.

use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::event::KeeperState;
use crate::proto::Request;

use super::{fail_pending, RemoteSession, CLOSE_JOIN_MAX, CLOSE_RECONNECT_MAX};

impl RemoteSession {
    /// The session's password (to resume it with [`RemoteBuilder::resume`](super::RemoteBuilder::resume)).
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
                loop {
                    match self.inner.call_until(Request::CloseSession, None, deadline) {
                        Ok(_) => break Ok(()),
                        // Gone: it expired, or an earlier attempt of this
                        // close went through and only its reply was lost.
                        Err(e) if e.kind() == ErrorKind::SessionExpired => break Ok(()),
                        // The connection ended before the reply: whether
                        // the server closed the session is unknown, so
                        // reconnect and ask again (found by
                        // tests/linearizability: a connection dropped under
                        // an unanswered close was taken for success, and
                        // the session's ephemerals outlived the close).
                        Err(e)
                            if e.kind() == ErrorKind::ConnectionLoss
                                && Instant::now() < deadline =>
                        {
                            continue
                        }
                        Err(e) => break Err(e),
                    }
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
    pub(super) fn stop(&self) {
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
