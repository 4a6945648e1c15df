//! The transaction record: the one shape every mutation takes.
//!
//! `prep` turns a request into a [`Txn`], `state::State::apply` applies it,
//! and the store persists exactly this record. It holds no logic: every
//! value apply needs (zxid, wall time, the sequential name, the ephemeral
//! owner, the list of ephemerals a close deletes) is decided before.

use serde::{Deserialize, Serialize};

use crate::node::Acl;

/// One validated change, stamped with its zxid and wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Txn {
    /// The transaction id; strictly increasing, never reused.
    pub zxid: i64,
    /// Milliseconds since the epoch when the txn was prepared.
    pub time_ms: i64,
    /// What changes.
    pub op: TxnOp,
}

/// The change itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TxnOp {
    /// A session is opened.
    CreateSession {
        /// The new session's id.
        session_id: i64,
        /// Negotiated timeout.
        timeout_ms: i32,
        /// The session's password.
        password: [u8; 16],
    },
    /// A session ends (closed or expired): its ephemerals go, in this order.
    CloseSession {
        /// The session that ends.
        session_id: i64,
        /// Its ephemeral nodes, deleted with this txn's zxid.
        ephemerals: Vec<String>,
    },
    /// A node is created.
    Create(CreateTxn),
    /// A node is deleted (by a client, the reaper, or nothing else).
    Delete {
        /// The node.
        path: String,
    },
    /// A node's data is replaced.
    SetData {
        /// The node.
        path: String,
        /// The new data.
        data: Option<Vec<u8>>,
    },
    /// A node's ACL is replaced.
    SetAcl {
        /// The node.
        path: String,
        /// The new ACL (already fixed up).
        acl: Vec<Acl>,
    },
    /// A version check inside a multi; changes nothing.
    Check {
        /// The node.
        path: String,
    },
    /// Several ops applied atomically under one zxid.
    Multi(Vec<TxnOp>),
    /// A live session's timeout changes (a reconnect negotiated another).
    /// Appended last: the variant order is part of the stored format.
    SessionTimeout {
        /// The session.
        session_id: i64,
        /// The new negotiated timeout.
        timeout_ms: i32,
    },
}

/// A create, with every decision already made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CreateTxn {
    /// The final path (sequence suffix included).
    pub path: String,
    /// The data.
    pub data: Option<Vec<u8>>,
    /// The ACL (already fixed up).
    pub acl: Vec<Acl>,
    /// The stored ephemeral owner: a session id, 0, the container marker,
    /// or the TTL encoding (see `tree::NodeKind`).
    pub owner: i64,
}
