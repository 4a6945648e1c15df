//! Requests, replies, notifications and the connect handshake as Rust
//! values, and the functions that turn them into frames and back
//! (`docs/zookeeper-semantics.md` H.4–H.7, D.7, E.3, E.4).

use super::codec::{DecodeError, Reader, Record, Writer};
use super::records::{
    opcode, xid, CheckVersionRequest, ClientInfo, ConnectRequest, ConnectResponse, CreateRequest,
    DeleteRequest, GetChildrenRequest, GetDataRequest, MultiHeader, ReplyHeader, RequestHeader,
    SetDataRequest, WatcherEvent,
};
use crate::node::{Acl, CreateMode, Stat};

/// Byte offset of the opcode within a request frame body.
const OPCODE_OFFSET: usize = 4;

/// A client request: one variant per opcode family of `docs/zookeeper-semantics.md` H.6.
///
/// Records that also appear inside a multi are named structs; the rest are
/// inline. `deleteContainer` (20) and `createSession` (−10) are not client
/// requests and decode as unknown opcodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1), create2 (15), createContainer (19) or createTTL (21), per [`CreateRequest::kind`].
    Create(CreateRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// exists (3).
    Exists {
        /// Path to test.
        path: String,
        /// Leave a data watch (also when the node is missing).
        watch: bool,
    },
    /// getData (4).
    GetData(GetDataRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl {
        /// Path whose ACL to read.
        path: String,
    },
    /// setACL (7).
    SetAcl {
        /// Path whose ACL to replace.
        path: String,
        /// The new ACL.
        acl: Vec<Acl>,
        /// Expected ACL version (aversion), or −1.
        version: i32,
    },
    /// getChildren (8).
    GetChildren(GetChildrenRequest),
    /// sync (9).
    Sync {
        /// Path to sync (echoed in the reply).
        path: String,
    },
    /// ping (11), sent with xid −2; no body.
    Ping,
    /// getChildren2 (12): same record as getChildren, reply adds the stat.
    GetChildren2(GetChildrenRequest),
    /// check (13) on its own; normally only used inside a multi.
    Check(CheckVersionRequest),
    /// multi (14): writes applied atomically.
    Multi(Vec<MultiOp>),
    /// reconfig (16). Null and empty server lists differ, so they stay `Option`.
    Reconfig {
        /// Servers to add (incremental mode).
        joining_servers: Option<String>,
        /// Servers to remove (incremental mode).
        leaving_servers: Option<String>,
        /// The complete new membership (non-incremental mode).
        new_members: Option<String>,
        /// Expected current config version, or −1.
        cur_config_id: i64,
    },
    /// checkWatches (17).
    CheckWatches {
        /// Path of the watch.
        path: String,
        /// WatcherType: Children 1, Data 2, Any 3.
        watcher_type: i32,
    },
    /// removeWatches (18).
    RemoveWatches {
        /// Path of the watch.
        path: String,
        /// WatcherType: Children 1, Data 2, Any 3.
        watcher_type: i32,
    },
    /// multiRead (22): reads answered one by one.
    MultiRead(Vec<ReadOp>),
    /// auth (100), sent with xid −4.
    Auth {
        /// Always 0.
        auth_type: i32,
        /// Scheme (`digest`, …).
        scheme: String,
        /// Credential bytes (for digest, `user:password`).
        auth: Vec<u8>,
    },
    /// setWatches (101), re-registering watches after a reconnect.
    SetWatches {
        /// The last zxid the client saw.
        relative_zxid: i64,
        /// Paths with data watches.
        data_watches: Vec<String>,
        /// Paths with exist watches (node was missing).
        exist_watches: Vec<String>,
        /// Paths with child watches.
        child_watches: Vec<String>,
    },
    /// setWatches2 (105): setWatches plus persistent watches.
    SetWatches2 {
        /// The last zxid the client saw.
        relative_zxid: i64,
        /// Paths with data watches.
        data_watches: Vec<String>,
        /// Paths with exist watches (node was missing).
        exist_watches: Vec<String>,
        /// Paths with child watches.
        child_watches: Vec<String>,
        /// Paths with persistent watches.
        persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        persistent_recursive_watches: Vec<String>,
    },
    /// sasl (102).
    Sasl {
        /// SASL token.
        token: Vec<u8>,
    },
    /// getEphemerals (103).
    GetEphemerals {
        /// String prefix to filter by; empty (or null) or `/` means all.
        prefix_path: String,
    },
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber {
        /// Path whose descendants to count.
        path: String,
    },
    /// addWatch (106).
    AddWatch {
        /// Path to watch.
        path: String,
        /// 0 persistent, 1 persistent recursive.
        mode: i32,
    },
    /// whoAmI (107); no body.
    WhoAmI,
    /// closeSession (−11); no body.
    CloseSession,
}

impl Request {
    /// The opcode this request is sent with.
    pub fn opcode(&self) -> i32 {
        match self {
            Request::Create(create) => create.kind.opcode(),
            Request::Delete(_) => opcode::DELETE,
            Request::Exists { .. } => opcode::EXISTS,
            Request::GetData(_) => opcode::GET_DATA,
            Request::SetData(_) => opcode::SET_DATA,
            Request::GetAcl { .. } => opcode::GET_ACL,
            Request::SetAcl { .. } => opcode::SET_ACL,
            Request::GetChildren(_) => opcode::GET_CHILDREN,
            Request::Sync { .. } => opcode::SYNC,
            Request::Ping => opcode::PING,
            Request::GetChildren2(_) => opcode::GET_CHILDREN2,
            Request::Check(_) => opcode::CHECK,
            Request::Multi(_) => opcode::MULTI,
            Request::Reconfig { .. } => opcode::RECONFIG,
            Request::CheckWatches { .. } => opcode::CHECK_WATCHES,
            Request::RemoveWatches { .. } => opcode::REMOVE_WATCHES,
            Request::MultiRead(_) => opcode::MULTI_READ,
            Request::Auth { .. } => opcode::AUTH,
            Request::SetWatches { .. } => opcode::SET_WATCHES,
            Request::SetWatches2 { .. } => opcode::SET_WATCHES2,
            Request::Sasl { .. } => opcode::SASL,
            Request::GetEphemerals { .. } => opcode::GET_EPHEMERALS,
            Request::GetAllChildrenNumber { .. } => opcode::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch { .. } => opcode::ADD_WATCH,
            Request::WhoAmI => opcode::WHO_AM_I,
            Request::CloseSession => opcode::CLOSE_SESSION,
        }
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            Request::Create(create) => create.write(w),
            Request::Delete(delete) => delete.write(w),
            Request::GetData(get) => get.write(w),
            Request::SetData(set) => set.write(w),
            Request::GetChildren(get) | Request::GetChildren2(get) => get.write(w),
            Request::Check(check) => check.write(w),
            Request::Exists { path, watch } => {
                w.write_string(path);
                w.write_bool(*watch);
            }
            Request::GetAcl { path }
            | Request::Sync { path }
            | Request::GetAllChildrenNumber { path }
            | Request::GetEphemerals { prefix_path: path } => w.write_string(path),
            Request::SetAcl { path, acl, version } => {
                w.write_string(path);
                w.write_vector(acl);
                w.write_i32(*version);
            }
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Multi(ops) => write_multi(w, ops),
            Request::MultiRead(ops) => write_multi(w, ops),
            Request::Reconfig {
                joining_servers,
                leaving_servers,
                new_members,
                cur_config_id,
            } => {
                w.write_ustring(joining_servers.as_deref());
                w.write_ustring(leaving_servers.as_deref());
                w.write_ustring(new_members.as_deref());
                w.write_i64(*cur_config_id);
            }
            Request::CheckWatches {
                path,
                watcher_type: mode,
            }
            | Request::RemoveWatches {
                path,
                watcher_type: mode,
            }
            | Request::AddWatch { path, mode } => {
                w.write_string(path);
                w.write_i32(*mode);
            }
            Request::Auth {
                auth_type,
                scheme,
                auth,
            } => {
                w.write_i32(*auth_type);
                w.write_string(scheme);
                w.write_bytes(auth);
            }
            Request::SetWatches {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
            } => {
                w.write_i64(*relative_zxid);
                w.write_vector(data_watches);
                w.write_vector(exist_watches);
                w.write_vector(child_watches);
            }
            Request::SetWatches2 {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
                persistent_watches,
                persistent_recursive_watches,
            } => {
                w.write_i64(*relative_zxid);
                w.write_vector(data_watches);
                w.write_vector(exist_watches);
                w.write_vector(child_watches);
                w.write_vector(persistent_watches);
                w.write_vector(persistent_recursive_watches);
            }
            Request::Sasl { token } => w.write_bytes(token),
        }
    }

    fn read_body(op: i32, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        if let Some(create) = CreateRequest::read(op, r)? {
            return Ok(Request::Create(create));
        }
        Ok(match op {
            opcode::DELETE => Request::Delete(r.read_record()?),
            opcode::EXISTS => Request::Exists {
                path: r.read_path()?,
                watch: r.read_bool()?,
            },
            opcode::GET_DATA => Request::GetData(r.read_record()?),
            opcode::SET_DATA => Request::SetData(r.read_record()?),
            opcode::GET_ACL => Request::GetAcl {
                path: r.read_path()?,
            },
            opcode::SET_ACL => Request::SetAcl {
                path: r.read_string()?,
                acl: r.read_vector()?,
                version: r.read_i32()?,
            },
            opcode::GET_CHILDREN => Request::GetChildren(r.read_record()?),
            opcode::SYNC => Request::Sync {
                path: r.read_string()?,
            },
            opcode::PING => Request::Ping,
            opcode::GET_CHILDREN2 => Request::GetChildren2(r.read_record()?),
            opcode::CHECK => Request::Check(r.read_record()?),
            opcode::MULTI => Request::Multi(read_multi(r)?),
            opcode::RECONFIG => Request::Reconfig {
                joining_servers: r.read_ustring()?,
                leaving_servers: r.read_ustring()?,
                new_members: r.read_ustring()?,
                cur_config_id: r.read_i64()?,
            },
            opcode::CHECK_WATCHES => Request::CheckWatches {
                path: r.read_string()?,
                watcher_type: r.read_i32()?,
            },
            opcode::REMOVE_WATCHES => Request::RemoveWatches {
                path: r.read_string()?,
                watcher_type: r.read_i32()?,
            },
            opcode::MULTI_READ => Request::MultiRead(read_multi(r)?),
            opcode::AUTH => Request::Auth {
                auth_type: r.read_i32()?,
                scheme: r.read_string()?,
                auth: r.read_bytes()?,
            },
            opcode::SET_WATCHES => Request::SetWatches {
                relative_zxid: r.read_i64()?,
                data_watches: r.read_vector()?,
                exist_watches: r.read_vector()?,
                child_watches: r.read_vector()?,
            },
            opcode::SET_WATCHES2 => Request::SetWatches2 {
                relative_zxid: r.read_i64()?,
                data_watches: r.read_vector()?,
                exist_watches: r.read_vector()?,
                child_watches: r.read_vector()?,
                persistent_watches: r.read_vector()?,
                persistent_recursive_watches: r.read_vector()?,
            },
            opcode::SASL => Request::Sasl {
                token: r.read_bytes()?,
            },
            opcode::GET_EPHEMERALS => Request::GetEphemerals {
                prefix_path: r.read_string()?,
            },
            opcode::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber {
                path: r.read_path()?,
            },
            opcode::ADD_WATCH => Request::AddWatch {
                path: r.read_string()?,
                mode: r.read_i32()?,
            },
            opcode::WHO_AM_I => Request::WhoAmI,
            opcode::CLOSE_SESSION => Request::CloseSession,
            _ => return Err(DecodeError::unknown_opcode(OPCODE_OFFSET, op)),
        })
    }
}

/// One write inside a multi (14) request (`docs/zookeeper-semantics.md` E.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create, create2, createContainer or createTTL. Its flags must name a
    /// `CreateMode`, or the whole multi fails to decode (docs/zookeeper-semantics.md A.3).
    Create(CreateRequest),
    /// delete.
    Delete(DeleteRequest),
    /// setData.
    SetData(SetDataRequest),
    /// check.
    Check(CheckVersionRequest),
}

/// One read inside a multiRead (22) request (`docs/zookeeper-semantics.md` E.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// getData (the watch flag is ignored by the server).
    GetData(GetDataRequest),
    /// getChildren (the watch flag is ignored by the server).
    GetChildren(GetChildrenRequest),
}

/// A reply body, by the opcode of the request it answers
/// (`docs/zookeeper-semantics.md` H.6). Error replies have no body at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, check, ping, auth, setWatches(2), checkWatches,
    /// removeWatches, closeSession.
    Empty,
    /// create (1): the actual path (with any sequence suffix).
    Create {
        /// Created path.
        path: String,
    },
    /// create2, createContainer, createTTL (15, 19, 21).
    Create2 {
        /// Created path.
        path: String,
        /// Stat of the new node.
        stat: Stat,
    },
    /// exists (3) when the node exists.
    Exists {
        /// Stat of the node.
        stat: Stat,
    },
    /// getData (4), and reconfig (16) with the new config as data.
    GetData {
        /// Node data; `None` (null) differs from empty.
        data: Option<Vec<u8>>,
        /// Stat of the node.
        stat: Stat,
    },
    /// setData (5).
    SetData {
        /// Stat after the write.
        stat: Stat,
    },
    /// getACL (6).
    GetAcl {
        /// The ACL.
        acl: Vec<Acl>,
        /// Stat of the node.
        stat: Stat,
    },
    /// setACL (7).
    SetAcl {
        /// Stat after the write.
        stat: Stat,
    },
    /// getChildren (8).
    GetChildren {
        /// Child names (not full paths), in no particular order.
        children: Vec<String>,
    },
    /// getChildren2 (12).
    GetChildren2 {
        /// Child names.
        children: Vec<String>,
        /// Stat of the parent.
        stat: Stat,
    },
    /// sync (9): the path, echoed.
    Sync {
        /// The synced path.
        path: String,
    },
    /// multi (14): one result per op (docs/zookeeper-semantics.md E.3).
    Multi(Vec<MultiResult>),
    /// multiRead (22): one result per op (docs/zookeeper-semantics.md E.4).
    MultiRead(Vec<ReadResult>),
    /// sasl (102).
    Sasl {
        /// SASL token.
        token: Vec<u8>,
    },
    /// getEphemerals (103).
    GetEphemerals {
        /// Full paths of the session's ephemerals.
        ephemerals: Vec<String>,
    },
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber {
        /// Number of all descendants.
        total_number: i32,
    },
    /// addWatch (106): encoded as `ErrorResponse{err = 0}` (4 bytes).
    AddWatch,
    /// whoAmI (107).
    WhoAmI {
        /// The connection's identities.
        client_info: Vec<ClientInfo>,
    },
}

impl Response {
    fn write(&self, w: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Create { path } | Response::Sync { path } => w.write_string(path),
            Response::Create2 { path, stat } => {
                w.write_string(path);
                w.write_record(stat);
            }
            Response::Exists { stat } | Response::SetData { stat } | Response::SetAcl { stat } => {
                w.write_record(stat);
            }
            Response::GetData { data, stat } => {
                w.write_buffer(data.as_deref());
                w.write_record(stat);
            }
            Response::GetAcl { acl, stat } => {
                w.write_vector(acl);
                w.write_record(stat);
            }
            Response::GetChildren { children }
            | Response::GetEphemerals {
                ephemerals: children,
            } => {
                w.write_vector(children);
            }
            Response::GetChildren2 { children, stat } => {
                w.write_vector(children);
                w.write_record(stat);
            }
            Response::Multi(results) => write_multi(w, results),
            Response::MultiRead(results) => write_multi(w, results),
            Response::Sasl { token } => w.write_bytes(token),
            Response::GetAllChildrenNumber { total_number } => w.write_i32(*total_number),
            Response::AddWatch => w.write_i32(0),
            Response::WhoAmI { client_info } => w.write_vector(client_info),
        }
    }

    fn read(op: i32, r: &mut Reader<'_>) -> Result<Response, DecodeError> {
        Ok(match op {
            opcode::CREATE => Response::Create {
                path: r.read_string()?,
            },
            opcode::CREATE2 | opcode::CREATE_CONTAINER | opcode::CREATE_TTL => Response::Create2 {
                path: r.read_string()?,
                stat: r.read_record()?,
            },
            opcode::DELETE
            | opcode::CHECK
            | opcode::PING
            | opcode::AUTH
            | opcode::SET_WATCHES
            | opcode::SET_WATCHES2
            | opcode::CHECK_WATCHES
            | opcode::REMOVE_WATCHES
            | opcode::CLOSE_SESSION => Response::Empty,
            opcode::EXISTS => Response::Exists {
                stat: r.read_record()?,
            },
            opcode::GET_DATA | opcode::RECONFIG => Response::GetData {
                data: r.read_buffer()?,
                stat: r.read_record()?,
            },
            opcode::SET_DATA => Response::SetData {
                stat: r.read_record()?,
            },
            opcode::GET_ACL => Response::GetAcl {
                acl: r.read_vector()?,
                stat: r.read_record()?,
            },
            opcode::SET_ACL => Response::SetAcl {
                stat: r.read_record()?,
            },
            opcode::GET_CHILDREN => Response::GetChildren {
                children: r.read_vector()?,
            },
            opcode::SYNC => Response::Sync {
                path: r.read_string()?,
            },
            opcode::GET_CHILDREN2 => Response::GetChildren2 {
                children: r.read_vector()?,
                stat: r.read_record()?,
            },
            opcode::MULTI => Response::Multi(read_multi(r)?),
            opcode::MULTI_READ => Response::MultiRead(read_multi(r)?),
            opcode::SASL => Response::Sasl {
                token: r.read_bytes()?,
            },
            opcode::GET_EPHEMERALS => Response::GetEphemerals {
                ephemerals: r.read_vector()?,
            },
            opcode::GET_ALL_CHILDREN_NUMBER => Response::GetAllChildrenNumber {
                total_number: r.read_i32()?,
            },
            opcode::ADD_WATCH => {
                r.read_i32()?;
                Response::AddWatch
            }
            opcode::WHO_AM_I => Response::WhoAmI {
                client_info: r.read_vector()?,
            },
            _ => return Err(DecodeError::unknown_opcode(r.position(), op)),
        })
    }
}

/// One result of a multi (14) reply (`docs/zookeeper-semantics.md` E.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Type 1: the answer to a plain create.
    Create {
        /// Created path.
        path: String,
    },
    /// Type 15: the answer to create2, createContainer and createTTL.
    Create2 {
        /// Created path.
        path: String,
        /// Stat of the new node.
        stat: Stat,
    },
    /// Type 2.
    Delete,
    /// Type 5.
    SetData {
        /// Stat after the write.
        stat: Stat,
    },
    /// Type 13.
    Check,
    /// Type −1 with `ErrorResponse{err}`. In a failed multi every result is
    /// one: 0 before the failing op, its code, then −2 (RuntimeInconsistency).
    Error {
        /// The error code (0 for a rolled-back op).
        err: i32,
    },
}

/// One result of a multiRead (22) reply (`docs/zookeeper-semantics.md` E.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Type 4.
    GetData {
        /// Node data; `None` (null) differs from empty.
        data: Option<Vec<u8>>,
        /// Stat of the node.
        stat: Stat,
    },
    /// Type 8.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// Type −1 with `ErrorResponse{err}`, for this op only.
    Error {
        /// The error code.
        err: i32,
    },
}

/// An element of a multi list: written behind a `MultiHeader`, the list
/// closed by the terminator (`docs/zookeeper-semantics.md` H.7).
trait MultiItem: Sized {
    /// The `MultiHeader` type and err of this item.
    fn header(&self) -> (i32, i32);
    /// The record after the header.
    fn write_body(&self, w: &mut Writer);
    /// Decodes the record after `header`; `None` when its type is not allowed in this list.
    fn read_body(header: MultiHeader, r: &mut Reader<'_>) -> Result<Option<Self>, DecodeError>;
}

fn write_multi<T: MultiItem>(w: &mut Writer, items: &[T]) {
    for item in items {
        let (op_type, err) = item.header();
        w.write_record(&MultiHeader {
            op_type,
            done: false,
            err,
        });
        item.write_body(w);
    }
    w.write_record(&MultiHeader::TERMINATOR);
}

/// Reads items until a header with `done` set; every header is 9 bytes, so
/// the loop is bounded by the input.
fn read_multi<T: MultiItem>(r: &mut Reader<'_>) -> Result<Vec<T>, DecodeError> {
    let mut items = Vec::new();
    loop {
        let at = r.position();
        let header: MultiHeader = r.read_record()?;
        if header.done {
            return Ok(items);
        }
        match T::read_body(header, r)? {
            Some(item) => items.push(item),
            None => {
                return Err(DecodeError::malformed(
                    at,
                    "operation type not allowed here",
                ))
            }
        }
    }
}

/// Request ops carry `err = -1` in their header.
impl MultiItem for MultiOp {
    fn header(&self) -> (i32, i32) {
        let op_type = match self {
            MultiOp::Create(create) => create.kind.opcode(),
            MultiOp::Delete(_) => opcode::DELETE,
            MultiOp::SetData(_) => opcode::SET_DATA,
            MultiOp::Check(_) => opcode::CHECK,
        };
        (op_type, -1)
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            MultiOp::Create(create) => create.write(w),
            MultiOp::Delete(delete) => delete.write(w),
            MultiOp::SetData(set) => set.write(w),
            MultiOp::Check(check) => check.write(w),
        }
    }

    fn read_body(header: MultiHeader, r: &mut Reader<'_>) -> Result<Option<MultiOp>, DecodeError> {
        let at = r.position();
        if let Some(create) = CreateRequest::read(header.op_type, r)? {
            if CreateMode::from_flag(create.flags).is_none() {
                return Err(DecodeError::malformed(at, "invalid create flags in multi"));
            }
            return Ok(Some(MultiOp::Create(create)));
        }
        Ok(match header.op_type {
            opcode::DELETE => Some(MultiOp::Delete(r.read_record()?)),
            opcode::SET_DATA => Some(MultiOp::SetData(r.read_record()?)),
            opcode::CHECK => Some(MultiOp::Check(r.read_record()?)),
            _ => None,
        })
    }
}

impl MultiItem for ReadOp {
    fn header(&self) -> (i32, i32) {
        match self {
            ReadOp::GetData(_) => (opcode::GET_DATA, -1),
            ReadOp::GetChildren(_) => (opcode::GET_CHILDREN, -1),
        }
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            ReadOp::GetData(get) => get.write(w),
            ReadOp::GetChildren(get) => get.write(w),
        }
    }

    fn read_body(header: MultiHeader, r: &mut Reader<'_>) -> Result<Option<ReadOp>, DecodeError> {
        Ok(match header.op_type {
            opcode::GET_DATA => Some(ReadOp::GetData(r.read_record()?)),
            opcode::GET_CHILDREN => Some(ReadOp::GetChildren(r.read_record()?)),
            _ => None,
        })
    }
}

/// Results carry `err = 0`, except error results, whose header repeats the
/// code; on reading, the code is taken from the `ErrorResponse`.
impl MultiItem for MultiResult {
    fn header(&self) -> (i32, i32) {
        match self {
            MultiResult::Create { .. } => (opcode::CREATE, 0),
            MultiResult::Create2 { .. } => (opcode::CREATE2, 0),
            MultiResult::Delete => (opcode::DELETE, 0),
            MultiResult::SetData { .. } => (opcode::SET_DATA, 0),
            MultiResult::Check => (opcode::CHECK, 0),
            MultiResult::Error { err } => (opcode::ERROR, *err),
        }
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            MultiResult::Create { path } => w.write_string(path),
            MultiResult::Create2 { path, stat } => {
                w.write_string(path);
                w.write_record(stat);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData { stat } => w.write_record(stat),
            MultiResult::Error { err } => w.write_i32(*err),
        }
    }

    fn read_body(
        header: MultiHeader,
        r: &mut Reader<'_>,
    ) -> Result<Option<MultiResult>, DecodeError> {
        Ok(Some(match header.op_type {
            opcode::CREATE => MultiResult::Create {
                path: r.read_string()?,
            },
            opcode::CREATE2 => MultiResult::Create2 {
                path: r.read_string()?,
                stat: r.read_record()?,
            },
            opcode::DELETE => MultiResult::Delete,
            opcode::SET_DATA => MultiResult::SetData {
                stat: r.read_record()?,
            },
            opcode::CHECK => MultiResult::Check,
            opcode::ERROR => MultiResult::Error { err: r.read_i32()? },
            _ => return Ok(None),
        }))
    }
}

impl MultiItem for ReadResult {
    fn header(&self) -> (i32, i32) {
        match self {
            ReadResult::GetData { .. } => (opcode::GET_DATA, 0),
            ReadResult::GetChildren { .. } => (opcode::GET_CHILDREN, 0),
            ReadResult::Error { err } => (opcode::ERROR, *err),
        }
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            ReadResult::GetData { data, stat } => {
                w.write_buffer(data.as_deref());
                w.write_record(stat);
            }
            ReadResult::GetChildren { children } => w.write_vector(children),
            ReadResult::Error { err } => w.write_i32(*err),
        }
    }

    fn read_body(
        header: MultiHeader,
        r: &mut Reader<'_>,
    ) -> Result<Option<ReadResult>, DecodeError> {
        Ok(Some(match header.op_type {
            opcode::GET_DATA => ReadResult::GetData {
                data: r.read_buffer()?,
                stat: r.read_record()?,
            },
            opcode::GET_CHILDREN => ReadResult::GetChildren {
                children: r.read_vector()?,
            },
            opcode::ERROR => ReadResult::Error { err: r.read_i32()? },
            _ => return Ok(None),
        }))
    }
}

/// A complete request frame: length prefix, `RequestHeader{xid, opcode}`, record.
///
/// The caller picks the xid; pings use [`xid::PING`] and auth packets [`xid::AUTH`].
pub fn encode_request(xid: i32, request: &Request) -> Vec<u8> {
    let mut w = Writer::framed();
    w.write_record(&RequestHeader {
        xid,
        opcode: request.opcode(),
    });
    request.write_body(&mut w);
    w.finish()
}

/// Just the header of a request frame body (the bytes after the length
/// prefix), e.g. to answer a request that [`decode_request`] rejected with
/// its xid. Fails only if the body is shorter than 8 bytes (a server then
/// closes the connection, docs/zookeeper-semantics.md H.9).
pub fn decode_request_header(frame_body: &[u8]) -> Result<RequestHeader, DecodeError> {
    Reader::new(frame_body).read_record()
}

/// A request frame body (the bytes after the length prefix).
///
/// Unknown opcodes fail with [`DecodeErrorKind::UnknownOpcode`], anything else
/// with [`DecodeErrorKind::Malformed`]. Bytes after the record are ignored,
/// as ZooKeeper does.
///
/// [`DecodeErrorKind::UnknownOpcode`]: super::DecodeErrorKind::UnknownOpcode
/// [`DecodeErrorKind::Malformed`]: super::DecodeErrorKind::Malformed
pub fn decode_request(frame_body: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
    let mut r = Reader::new(frame_body);
    let header: RequestHeader = r.read_record()?;
    let request = Request::read_body(header.opcode, &mut r)?;
    Ok((header, request))
}

/// A complete reply frame. The body is written only when `header.err` is 0:
/// an error reply is the bare 16-byte header (docs/zookeeper-semantics.md F.1).
pub fn encode_reply(header: &ReplyHeader, response: Option<&Response>) -> Vec<u8> {
    let mut w = Writer::framed();
    w.write_record(header);
    if let (0, Some(response)) = (header.err, response) {
        response.write(&mut w);
    }
    w.finish()
}

/// Just the header of a reply frame body, to route it: xid −1 is a
/// notification ([`decode_notification`]), anything else a reply
/// ([`decode_reply`]).
pub fn decode_reply_header(frame_body: &[u8]) -> Result<ReplyHeader, DecodeError> {
    Reader::new(frame_body).read_record()
}

/// A reply frame body, given the opcode of the request it answers (the
/// client remembers it by xid). The body is read only when the header's
/// err is 0, otherwise `None` is returned; bytes after it are ignored.
pub fn decode_reply(
    request_opcode: i32,
    frame_body: &[u8],
) -> Result<(ReplyHeader, Option<Response>), DecodeError> {
    let mut r = Reader::new(frame_body);
    let header: ReplyHeader = r.read_record()?;
    if header.err != 0 {
        return Ok((header, None));
    }
    let response = Response::read(request_opcode, &mut r)?;
    Ok((header, Some(response)))
}

/// A complete notification frame: `ReplyHeader{-1, zxid, 0}` + the event
/// (docs/zookeeper-semantics.md D.7; `zxid` is −1 in ZooKeeper 3.8).
pub fn encode_notification(zxid: i64, event: &WatcherEvent) -> Vec<u8> {
    let mut w = Writer::framed();
    w.write_record(&ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid,
        err: 0,
    });
    w.write_record(event);
    w.finish()
}

/// A notification frame body: the header's zxid and the event. Fails if the
/// xid is not −1.
pub fn decode_notification(frame_body: &[u8]) -> Result<(i64, WatcherEvent), DecodeError> {
    let mut r = Reader::new(frame_body);
    let header: ReplyHeader = r.read_record()?;
    if header.xid != xid::NOTIFICATION {
        return Err(DecodeError::malformed(0, "notification xid is not -1"));
    }
    Ok((header.zxid, r.read_record()?))
}

/// The optional trailing readOnly byte of the handshake (docs/zookeeper-semantics.md H.4).
fn read_trailing_bool(r: &mut Reader<'_>) -> Result<Option<bool>, DecodeError> {
    if r.remaining() == 0 {
        return Ok(None);
    }
    r.read_bool().map(Some)
}

/// A complete ConnectRequest frame (no header); the readOnly byte is
/// appended only when `read_only` is `Some`.
pub fn encode_connect_request(request: &ConnectRequest) -> Vec<u8> {
    let mut w = Writer::framed();
    w.write_i32(request.protocol_version);
    w.write_i64(request.last_zxid_seen);
    w.write_i32(request.timeout_ms);
    w.write_i64(request.session_id);
    w.write_bytes(&request.passwd);
    if let Some(read_only) = request.read_only {
        w.write_bool(read_only);
    }
    w.finish()
}

/// A ConnectRequest frame body; the readOnly byte is read if present.
pub fn decode_connect_request(frame_body: &[u8]) -> Result<ConnectRequest, DecodeError> {
    let mut r = Reader::new(frame_body);
    Ok(ConnectRequest {
        protocol_version: r.read_i32()?,
        last_zxid_seen: r.read_i64()?,
        timeout_ms: r.read_i32()?,
        session_id: r.read_i64()?,
        passwd: r.read_bytes()?,
        read_only: read_trailing_bool(&mut r)?,
    })
}

/// A complete ConnectResponse frame (no header); the readOnly byte is
/// appended only when `read_only` is `Some`.
pub fn encode_connect_response(response: &ConnectResponse) -> Vec<u8> {
    let mut w = Writer::framed();
    w.write_i32(response.protocol_version);
    w.write_i32(response.timeout_ms);
    w.write_i64(response.session_id);
    w.write_bytes(&response.passwd);
    if let Some(read_only) = response.read_only {
        w.write_bool(read_only);
    }
    w.finish()
}

/// A ConnectResponse frame body; the readOnly byte is read if present.
pub fn decode_connect_response(frame_body: &[u8]) -> Result<ConnectResponse, DecodeError> {
    let mut r = Reader::new(frame_body);
    Ok(ConnectResponse {
        protocol_version: r.read_i32()?,
        timeout_ms: r.read_i32()?,
        session_id: r.read_i64()?,
        passwd: r.read_bytes()?,
        read_only: read_trailing_bool(&mut r)?,
    })
}
