//! The public request and result types of multi and multi-read, and the
//! options of a create: plain data, the same for every backend.
//!
//! [`Op`] holds exactly what ZooKeeper's `multi` accepts (create, delete,
//! set-data, check); set-ACL has no place in it, so a multi that would be
//! refused for it cannot be written.

use std::time::Duration;

use crate::error::ErrorKind;
use crate::node::{Acl, CreateMode, Stat};

/// How to create a node: mode, ACL and TTL.
///
/// ```
/// use std::time::Duration;
/// use innkeeper::{Acl, CreateMode, CreateOptions};
///
/// let options = CreateOptions::new(CreateMode::PersistentWithTtl)
///     .acl(Acl::open_unsafe())
///     .ttl(Duration::from_secs(60));
/// assert_eq!(options.ttl, Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// Node kind.
    pub mode: CreateMode,
    /// ACL (default: open).
    pub acl: Vec<Acl>,
    /// TTL for the TTL modes (required there, ignored otherwise).
    pub ttl: Option<Duration>,
}

impl CreateOptions {
    /// Options for `mode` with the open ACL.
    pub fn new(mode: CreateMode) -> CreateOptions {
        CreateOptions {
            mode,
            acl: Acl::open_unsafe(),
            ttl: None,
        }
    }

    /// Sets the ACL.
    pub fn acl(mut self, acl: Vec<Acl>) -> CreateOptions {
        self.acl = acl;
        self
    }

    /// Sets the TTL (for `PersistentWithTtl` and `PersistentSequentialWithTtl`).
    pub fn ttl(mut self, ttl: Duration) -> CreateOptions {
        self.ttl = Some(ttl);
        self
    }

    /// The TTL in milliseconds as the wire and the engine carry it: 0 when
    /// unset (which a TTL mode refuses), saturating when huge (which is
    /// refused as out of range).
    pub(crate) fn ttl_ms(&self) -> i64 {
        self.ttl
            .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
    }
}

/// One op of a [`multi`](crate::Coordinator::multi): create, delete,
/// set-data or check, each with ZooKeeper's version rule (`-1` matches any).
///
/// ```
/// use innkeeper::{Coordinator, CreateMode, Keeper, Op, OpResult};
///
/// let keeper = Keeper::in_memory()?;
/// let session = keeper.session()?;
/// session.create("/config", b"v1", CreateMode::Persistent)?;
/// let results = session.multi(&[
///     Op::check("/config", 0),
///     Op::set_data("/config", b"v2", 0),
///     Op::create("/config/lock", b"", CreateMode::Ephemeral),
/// ])?;
/// assert!(matches!(results[2], OpResult::Create { ref path, .. } if path == "/config/lock"));
/// # Ok::<(), innkeeper::Error>(())
/// ```
///
/// Set-ACL is not a multi op in ZooKeeper, so it has no variant:
///
/// ```compile_fail
/// let op = innkeeper::Op::SetAcl { path: "/a".into(), acl: vec![], version: -1 };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node (`path` is a prefix for the sequential modes).
    Create {
        /// Path, or prefix for the sequential modes.
        path: String,
        /// Data (`None` for ZooKeeper's null).
        data: Option<Vec<u8>>,
        /// Mode, ACL and TTL.
        options: CreateOptions,
    },
    /// Delete a node if its version matches.
    Delete {
        /// Path.
        path: String,
        /// Expected version, `-1` for any.
        version: i32,
    },
    /// Set (or null) a node's data if its version matches.
    SetData {
        /// Path.
        path: String,
        /// New data (`None` for ZooKeeper's null).
        data: Option<Vec<u8>>,
        /// Expected version, `-1` for any.
        version: i32,
    },
    /// Check a node's version (`-1` checks only that it exists).
    Check {
        /// Path.
        path: String,
        /// Expected version, `-1` for any.
        version: i32,
    },
}

impl Op {
    /// A create with the open ACL.
    pub fn create(path: impl Into<String>, data: &[u8], mode: CreateMode) -> Op {
        Op::Create {
            path: path.into(),
            data: Some(data.to_vec()),
            options: CreateOptions::new(mode),
        }
    }

    /// A create with every option.
    pub fn create_with(
        path: impl Into<String>,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Op {
        Op::Create {
            path: path.into(),
            data: data.map(<[u8]>::to_vec),
            options: options.clone(),
        }
    }

    /// A delete expecting `version` (`-1` for any).
    pub fn delete(path: impl Into<String>, version: i32) -> Op {
        Op::Delete {
            path: path.into(),
            version,
        }
    }

    /// A set-data expecting `version` (`-1` for any).
    pub fn set_data(path: impl Into<String>, data: &[u8], version: i32) -> Op {
        Op::SetData {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        }
    }

    /// A version check (`-1` checks only existence).
    pub fn check(path: impl Into<String>, version: i32) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }

    /// The path the op names.
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }
}

/// The result of one op of a multi (`docs/zookeeper-semantics.md` E.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A create succeeded: the actual path and the new node's Stat.
    Create {
        /// The created path (with its sequence suffix).
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// A delete succeeded.
    Delete,
    /// A set-data succeeded: the new Stat.
    SetData {
        /// The node's Stat after the op.
        stat: Stat,
    },
    /// A check passed.
    Check,
    /// The multi failed elsewhere; this op would have succeeded (code 0).
    RolledBack,
    /// This op failed, or follows the failed op (`RuntimeInconsistency`).
    Error(ErrorKind),
}

impl OpResult {
    /// ZooKeeper's per-op results of a multi whose op `failed_idx` failed
    /// with `kind`: rolled back before it, its error, then
    /// `RuntimeInconsistency` (E.3).
    pub(crate) fn failed(n_ops: usize, failed_idx: usize, kind: ErrorKind) -> Vec<OpResult> {
        (0..n_ops)
            .map(|idx| match idx.cmp(&failed_idx) {
                std::cmp::Ordering::Less => OpResult::RolledBack,
                std::cmp::Ordering::Equal => OpResult::Error(kind),
                std::cmp::Ordering::Greater => OpResult::Error(ErrorKind::RuntimeInconsistency),
            })
            .collect()
    }
}

/// A read op of a [`multi_read`](crate::Coordinator::multi_read).
///
/// ```
/// use innkeeper::{Coordinator, ErrorKind, Keeper, ReadOp, ReadResult};
///
/// let keeper = Keeper::in_memory()?;
/// let session = keeper.session()?;
/// let results = session.multi_read(&[
///     ReadOp::GetChildren("/".into()),
///     ReadOp::GetData("/missing".into()),
/// ])?;
/// assert_eq!(results[1], ReadResult::Error(ErrorKind::NoNode));
/// # Ok::<(), innkeeper::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// getData.
    GetData(String),
    /// getChildren.
    GetChildren(String),
}

/// The result of one read op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data(Option<Vec<u8>>, Stat),
    /// Child names.
    Children(Vec<String>),
    /// The op failed.
    Error(ErrorKind),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_multi_has_zookeepers_shape() {
        assert_eq!(
            OpResult::failed(3, 1, ErrorKind::NoNode),
            vec![
                OpResult::RolledBack,
                OpResult::Error(ErrorKind::NoNode),
                OpResult::Error(ErrorKind::RuntimeInconsistency),
            ]
        );
    }

    #[test]
    fn ttl_in_milliseconds_saturates_and_defaults_to_zero() {
        let options = CreateOptions::new(CreateMode::PersistentWithTtl);
        assert_eq!(options.ttl_ms(), 0);
        assert_eq!(options.clone().ttl(Duration::from_secs(2)).ttl_ms(), 2000);
        assert_eq!(options.ttl(Duration::MAX).ttl_ms(), i64::MAX);
    }
}
