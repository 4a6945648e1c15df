//! Opcodes, special xids, and the jute records that requests, replies and
//! the handshake are built from (`docs/zookeeper-semantics.md` H.3–H.7).

use super::codec::{DecodeError, Reader, Record, Writer};
use crate::node::Acl;

/// Operation codes (`docs/zookeeper-semantics.md` H.6). The same numbers are the
/// `type` of a multi op's `MultiHeader`.
pub mod opcode {
    /// Watch notification (server to client only, xid −1).
    pub const NOTIFICATION: i32 = 0;
    /// `create`: reply carries the path.
    pub const CREATE: i32 = 1;
    /// `delete`.
    pub const DELETE: i32 = 2;
    /// `exists`.
    pub const EXISTS: i32 = 3;
    /// `getData`.
    pub const GET_DATA: i32 = 4;
    /// `setData`.
    pub const SET_DATA: i32 = 5;
    /// `getACL`.
    pub const GET_ACL: i32 = 6;
    /// `setACL`.
    pub const SET_ACL: i32 = 7;
    /// `getChildren`.
    pub const GET_CHILDREN: i32 = 8;
    /// `sync`.
    pub const SYNC: i32 = 9;
    /// `ping` (xid −2).
    pub const PING: i32 = 11;
    /// `getChildren2`: children plus the parent's stat.
    pub const GET_CHILDREN2: i32 = 12;
    /// `check` (a version check, meaningful inside multi).
    pub const CHECK: i32 = 13;
    /// `multi`: an atomic list of writes.
    pub const MULTI: i32 = 14;
    /// `create2`: reply carries the path and the stat.
    pub const CREATE2: i32 = 15;
    /// `reconfig`.
    pub const RECONFIG: i32 = 16;
    /// `checkWatches`.
    pub const CHECK_WATCHES: i32 = 17;
    /// `removeWatches`.
    pub const REMOVE_WATCHES: i32 = 18;
    /// `createContainer`.
    pub const CREATE_CONTAINER: i32 = 19;
    /// `deleteContainer` (server-internal; never sent by clients).
    pub const DELETE_CONTAINER: i32 = 20;
    /// `createTTL`.
    pub const CREATE_TTL: i32 = 21;
    /// `multiRead`: a non-atomic list of reads.
    pub const MULTI_READ: i32 = 22;
    /// `auth` (xid −4).
    pub const AUTH: i32 = 100;
    /// `setWatches`.
    pub const SET_WATCHES: i32 = 101;
    /// `sasl`.
    pub const SASL: i32 = 102;
    /// `getEphemerals`.
    pub const GET_EPHEMERALS: i32 = 103;
    /// `getAllChildrenNumber`.
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    /// `setWatches2`: setWatches plus persistent watches.
    pub const SET_WATCHES2: i32 = 105;
    /// `addWatch`.
    pub const ADD_WATCH: i32 = 106;
    /// `whoAmI`.
    pub const WHO_AM_I: i32 = 107;
    /// `createSession` (internal: the ConnectRequest, which has no header).
    pub const CREATE_SESSION: i32 = -10;
    /// `closeSession`.
    pub const CLOSE_SESSION: i32 = -11;
    /// The `MultiHeader` type of an error result and of the terminator.
    pub const ERROR: i32 = -1;
}

/// Special xids (`docs/zookeeper-semantics.md` H.5). Normal requests use xids > 0.
pub mod xid {
    /// A watch notification (server to client).
    pub const NOTIFICATION: i32 = -1;
    /// A ping and its reply.
    pub const PING: i32 = -2;
    /// An auth packet and its reply.
    pub const AUTH: i32 = -4;
    /// SetWatches as the C client sends it (the Java client uses a normal xid).
    pub const SET_WATCHES: i32 = -8;
}

/// The header of every request frame except the ConnectRequest (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHeader {
    /// The client's request id, echoed in the reply.
    pub xid: i32,
    /// What the request is ([`opcode`]).
    pub opcode: i32,
}

impl Record for RequestHeader {
    const MIN_LEN: usize = 8;

    fn read(r: &mut Reader<'_>) -> Result<RequestHeader, DecodeError> {
        Ok(RequestHeader {
            xid: r.read_i32()?,
            opcode: r.read_i32()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_i32(self.xid);
        w.write_i32(self.opcode);
    }
}

/// The header of every reply frame and notification (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyHeader {
    /// The request's xid, or a special xid ([`xid`]).
    pub xid: i32,
    /// The server's last applied zxid (`docs/zookeeper-semantics.md` H.8).
    pub zxid: i64,
    /// 0, or the error code; a reply with a non-zero code has no body.
    pub err: i32,
}

impl Record for ReplyHeader {
    const MIN_LEN: usize = 16;

    fn read(r: &mut Reader<'_>) -> Result<ReplyHeader, DecodeError> {
        Ok(ReplyHeader {
            xid: r.read_i32()?,
            zxid: r.read_i64()?,
            err: r.read_i32()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_i32(self.xid);
        w.write_i64(self.zxid);
        w.write_i32(self.err);
    }
}

/// `MultiHeader{type, done, err}`: precedes each op and result of a multi.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MultiHeader {
    pub(crate) op_type: i32,
    pub(crate) done: bool,
    pub(crate) err: i32,
}

impl MultiHeader {
    /// The end-of-list marker, `ffffffff 01 ffffffff` (`docs/zookeeper-semantics.md` H.7).
    pub(crate) const TERMINATOR: MultiHeader = MultiHeader {
        op_type: opcode::ERROR,
        done: true,
        err: -1,
    };
}

impl Record for MultiHeader {
    const MIN_LEN: usize = 9;

    fn read(r: &mut Reader<'_>) -> Result<MultiHeader, DecodeError> {
        Ok(MultiHeader {
            op_type: r.read_i32()?,
            done: r.read_bool()?,
            err: r.read_i32()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_i32(self.op_type);
        w.write_bool(self.done);
        w.write_i32(self.err);
    }
}

/// The first message of a connection (no header; `docs/zookeeper-semantics.md` H.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0; ignored by the server.
    pub protocol_version: i32,
    /// The highest zxid the client has seen.
    pub last_zxid_seen: i64,
    /// Requested session timeout.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// Session password (16 bytes; zeros for a new session). Null reads as empty.
    pub passwd: Vec<u8>,
    /// The trailing readOnly byte, when the client sent it (Java and kazoo always do).
    pub read_only: Option<bool>,
}

/// The server's answer to a [`ConnectRequest`] (no header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout; ≤ 0 means the session expired.
    pub timeout_ms: i32,
    /// The session id (0 when expired).
    pub session_id: i64,
    /// Session password (16 bytes). Null reads as empty.
    pub passwd: Vec<u8>,
    /// The trailing readOnly byte; a server sends it only if the request carried one.
    pub read_only: Option<bool>,
}

/// `WatcherEvent{type, state, path}`: the body of a notification
/// (`docs/zookeeper-semantics.md` D.2, D.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    /// NodeCreated 1, NodeDeleted 2, NodeDataChanged 3, NodeChildrenChanged 4.
    pub event_type: i32,
    /// Keeper state; 3 (SyncConnected) for every server notification.
    pub state: i32,
    /// Full server path of the node that changed. Null reads as empty.
    pub path: String,
}

impl Record for WatcherEvent {
    const MIN_LEN: usize = 12;

    fn read(r: &mut Reader<'_>) -> Result<WatcherEvent, DecodeError> {
        Ok(WatcherEvent {
            event_type: r.read_i32()?,
            state: r.read_i32()?,
            path: r.read_string()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_i32(self.event_type);
        w.write_i32(self.state);
        w.write_string(&self.path);
    }
}

/// `ClientInfo{authScheme, user}`: one identity in a whoAmI reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The scheme (`ip`, `digest`, `super`, …).
    pub auth_scheme: String,
    /// The identity within the scheme.
    pub user: String,
}

impl Record for ClientInfo {
    const MIN_LEN: usize = 8;

    fn read(r: &mut Reader<'_>) -> Result<ClientInfo, DecodeError> {
        Ok(ClientInfo {
            auth_scheme: r.read_string()?,
            user: r.read_string()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(&self.auth_scheme);
        w.write_string(&self.user);
    }
}

/// Which of the four create opcodes a [`CreateRequest`] travels as. The
/// reply differs: only plain `create` answers with the path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateKind {
    /// `create` (1).
    Create,
    /// `create2` (15).
    Create2,
    /// `createContainer` (19).
    Container,
    /// `createTTL` (21), whose record carries the TTL.
    Ttl {
        /// Time to live in milliseconds.
        ttl: i64,
    },
}

impl CreateKind {
    /// The opcode this kind is sent as.
    pub fn opcode(self) -> i32 {
        match self {
            CreateKind::Create => opcode::CREATE,
            CreateKind::Create2 => opcode::CREATE2,
            CreateKind::Container => opcode::CREATE_CONTAINER,
            CreateKind::Ttl { .. } => opcode::CREATE_TTL,
        }
    }
}

/// `CreateRequest{path, data, acl, flags}`, or `CreateTTLRequest` with a
/// trailing `ttl` when the kind is [`CreateKind::Ttl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// The opcode, and the TTL for `createTTL`.
    pub kind: CreateKind,
    /// Path to create (the prefix, for sequential modes).
    pub path: String,
    /// Node data; `None` (null) differs from empty.
    pub data: Option<Vec<u8>>,
    /// ACL of the new node.
    pub acl: Vec<Acl>,
    /// `CreateMode` flag value; not validated here except inside a multi.
    pub flags: i32,
}

impl CreateRequest {
    /// Decodes the record that follows a header of the given create opcode;
    /// `None` if `op` is not a create opcode.
    pub(crate) fn read(op: i32, r: &mut Reader<'_>) -> Result<Option<CreateRequest>, DecodeError> {
        if !matches!(
            op,
            opcode::CREATE | opcode::CREATE2 | opcode::CREATE_CONTAINER | opcode::CREATE_TTL
        ) {
            return Ok(None);
        }
        let path = r.read_path()?;
        let data = r.read_buffer()?;
        let acl = r.read_vector()?;
        let flags = r.read_i32()?;
        let kind = match op {
            opcode::CREATE => CreateKind::Create,
            opcode::CREATE2 => CreateKind::Create2,
            opcode::CREATE_CONTAINER => CreateKind::Container,
            _ => CreateKind::Ttl { ttl: r.read_i64()? },
        };
        Ok(Some(CreateRequest {
            kind,
            path,
            data,
            acl,
            flags,
        }))
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.write_string(&self.path);
        w.write_buffer(self.data.as_deref());
        w.write_vector(&self.acl);
        w.write_i32(self.flags);
        if let CreateKind::Ttl { ttl } = self.kind {
            w.write_i64(ttl);
        }
    }
}

/// `DeleteRequest{path, version}`; version −1 matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// Path to delete.
    pub path: String,
    /// Expected data version, or −1.
    pub version: i32,
}

impl Record for DeleteRequest {
    const MIN_LEN: usize = 8;

    fn read(r: &mut Reader<'_>) -> Result<DeleteRequest, DecodeError> {
        Ok(DeleteRequest {
            path: r.read_path()?,
            version: r.read_i32()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(&self.path);
        w.write_i32(self.version);
    }
}

/// `SetDataRequest{path, data, version}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDataRequest {
    /// Path to write.
    pub path: String,
    /// New data; `None` (null) differs from empty.
    pub data: Option<Vec<u8>>,
    /// Expected data version, or −1.
    pub version: i32,
}

impl Record for SetDataRequest {
    const MIN_LEN: usize = 12;

    fn read(r: &mut Reader<'_>) -> Result<SetDataRequest, DecodeError> {
        Ok(SetDataRequest {
            path: r.read_string()?,
            data: r.read_buffer()?,
            version: r.read_i32()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(&self.path);
        w.write_buffer(self.data.as_deref());
        w.write_i32(self.version);
    }
}

/// `CheckVersionRequest{path, version}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckVersionRequest {
    /// Path to check.
    pub path: String,
    /// Expected data version, or −1 (existence only).
    pub version: i32,
}

impl Record for CheckVersionRequest {
    const MIN_LEN: usize = 8;

    fn read(r: &mut Reader<'_>) -> Result<CheckVersionRequest, DecodeError> {
        Ok(CheckVersionRequest {
            path: r.read_string()?,
            version: r.read_i32()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(&self.path);
        w.write_i32(self.version);
    }
}

/// `GetDataRequest{path, watch}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetDataRequest {
    /// Path to read.
    pub path: String,
    /// Leave a data watch (ignored inside multiRead).
    pub watch: bool,
}

impl Record for GetDataRequest {
    const MIN_LEN: usize = 5;

    fn read(r: &mut Reader<'_>) -> Result<GetDataRequest, DecodeError> {
        Ok(GetDataRequest {
            path: r.read_path()?,
            watch: r.read_bool()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(&self.path);
        w.write_bool(self.watch);
    }
}

/// `GetChildrenRequest{path, watch}`; `GetChildren2Request` has the same layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetChildrenRequest {
    /// Path whose children to list.
    pub path: String,
    /// Leave a child watch (ignored inside multiRead).
    pub watch: bool,
}

impl Record for GetChildrenRequest {
    const MIN_LEN: usize = 5;

    fn read(r: &mut Reader<'_>) -> Result<GetChildrenRequest, DecodeError> {
        Ok(GetChildrenRequest {
            path: r.read_path()?,
            watch: r.read_bool()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(&self.path);
        w.write_bool(self.watch);
    }
}
