//! [`Coordinator`] for [`RemoteSession`]: each call as ZooKeeper's client
//! sends it, paths through the chroot, watches registered on the reply.

use std::time::Instant;

use crate::coordinator::{ClientInfo, Coordinator};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{AddWatchMode, KeeperState, WatchReceiver, Watcher, WatcherType};
use crate::node::{Acl, Stat};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::path;
use crate::proto::{
    self, xid, DeleteRequest, GetChildrenRequest, GetDataRequest, MultiResult, Request, Response,
    SetDataRequest,
};

use super::{
    check_data, kind_of, server_error, unexpected, write_frame, RemoteSession, WatchKind,
    WatchOnReply,
};

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
