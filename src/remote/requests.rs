//! The request path: a caller writes its request under the session lock
//! (xids in send order) and waits for the reply with a deadline, waiting
//! for a reconnect first when the connection is down.

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::event::KeeperState;
use crate::node::{Acl, CreateMode};
use crate::ops::Op;
use crate::path;
use crate::proto::{
    self, CheckVersionRequest, CreateKind, CreateRequest, DeleteRequest, MultiOp, Request,
    Response, SetDataRequest, MAX_FRAME_LEN,
};

use super::address::{to_client, to_server};
use super::{check_data, write_frame, Inner, Pending, RemoteSession, Shared, WatchOnReply};

impl RemoteSession {
    pub(super) fn server_path(&self, client_path: &str) -> String {
        to_server(self.inner.chroot.as_deref(), client_path)
    }

    pub(super) fn client_path(&self, server_path: &str) -> String {
        to_client(self.inner.chroot.as_deref(), server_path)
    }

    pub(super) fn call(&self, request: Request, watch: Option<WatchOnReply>) -> Result<Response> {
        let deadline = Instant::now() + self.inner.request_timeout();
        self.inner.call_until(request, watch, deadline)
    }

    /// A call whose errors name `client_path`.
    pub(super) fn call_at(
        &self,
        client_path: &str,
        request: Request,
        watch: Option<WatchOnReply>,
    ) -> Result<Response> {
        self.call(request, watch)
            .map_err(|e| e.or_path(client_path))
    }

    pub(super) fn create_request(
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

    pub(super) fn multi_op(&self, op: &Op) -> Result<MultiOp> {
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

impl Inner {
    pub(super) fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or_else(|| {
            let ms = self.shared.lock().negotiated_ms;
            Duration::from_millis(u64::try_from(ms).unwrap_or(0).max(1))
        })
    }

    /// Waits for a connection, sends the request, and waits for its reply.
    pub(super) fn call_until(
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

    pub(super) fn wait_connected(
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
}
