//! The one error type of the crate.
//!
//! Two families share it, and [`ErrorKind::is_fail_stop`] tells them apart:
//! *outcomes* a caller handles (`NoNode`, `BadVersion`, `NodeExists`, …, each
//! with ZooKeeper's numeric code from [`Error::code`]) and *fail-stop*
//! failures (I/O, a corrupted store, a closed keeper) after which the caller
//! should stop writing. `?` never turns one into the other: the kind is kept
//! as it is all the way up.

use std::fmt;
use std::sync::Arc;

/// What went wrong. One variant per ZooKeeper error code a server can
/// produce, plus the few failures of an embedded store.
///
/// The enum is `#[non_exhaustive]`: match the kinds you handle and keep a
/// `_` arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// ZooKeeper `SystemError` (−1).
    SystemError,
    /// A multi op after the failing one (−2); see `docs/zookeeper-semantics.md` E.3.
    RuntimeInconsistency,
    /// ZooKeeper `DataInconsistency` (−3).
    DataInconsistency,
    /// The connection to a server was lost (−4); only remote sessions see it.
    ConnectionLoss,
    /// A request or reply could not be decoded (−5).
    MarshallingError,
    /// The operation is not implemented, or a feature is off (−6).
    Unimplemented,
    /// A remote operation timed out (−7).
    OperationTimeout,
    /// Bad arguments (−8): a bad create mode, TTL, or an attempt to delete a system node.
    BadArguments,
    /// The path breaks ZooKeeper's path rules (reported with code −8).
    InvalidPath,
    /// The data is larger than the configured limit (reported with code −8).
    DataTooLarge,
    /// The session is not known to the keeper (−12).
    UnknownSession,
    /// The node (or, for a create, its parent) does not exist (−101).
    NoNode,
    /// The session lacks the permission the ACL asks for (−102).
    NoAuth,
    /// The expected version does not match (−103).
    BadVersion,
    /// Ephemeral nodes cannot have children (−108).
    NoChildrenForEphemerals,
    /// The node already exists (−110).
    NodeExists,
    /// The node has children (−111).
    NotEmpty,
    /// The session expired or was closed (−112).
    SessionExpired,
    /// ZooKeeper `InvalidCallback` (−113).
    InvalidCallback,
    /// The ACL list is empty or names an unknown scheme or identity (−114).
    InvalidAcl,
    /// Authentication failed, or the scheme is unknown (−115).
    AuthFailed,
    /// ZooKeeper `SessionMoved` (−118).
    SessionMoved,
    /// ZooKeeper `NotReadOnly` (−119).
    NotReadOnly,
    /// ZooKeeper `EphemeralOnLocalSession` (−120).
    EphemeralOnLocalSession,
    /// No watch matched a remove or check (−121).
    NoWatcher,
    /// ZooKeeper `RequestTimeout` (−122).
    RequestTimeout,
    /// Reconfiguration is disabled (−123).
    ReconfigDisabled,
    /// ZooKeeper `QuotaExceeded` (−125).
    QuotaExceeded,
    /// ZooKeeper `ThrottledOp` (−127).
    ThrottledOp,
    /// Fail-stop: the store could not be read or written.
    Io,
    /// Fail-stop: the store holds bytes that do not decode.
    Corrupted,
    /// Fail-stop: the directory holds a store of another format version or
    /// something that is not an innkeeper store.
    IncompatibleStore,
    /// Fail-stop: another process holds the store's lock.
    StoreLocked,
    /// The keeper was shut down, or a previous I/O failure stopped it.
    Closed,
}

impl ErrorKind {
    /// ZooKeeper's numeric code for this kind (`KeeperException.Code`).
    pub fn code(self) -> i32 {
        use ErrorKind::*;
        match self {
            SystemError => -1,
            RuntimeInconsistency => -2,
            DataInconsistency => -3,
            ConnectionLoss => -4,
            MarshallingError => -5,
            Unimplemented => -6,
            OperationTimeout => -7,
            BadArguments | InvalidPath | DataTooLarge => -8,
            UnknownSession => -12,
            NoNode => -101,
            NoAuth => -102,
            BadVersion => -103,
            NoChildrenForEphemerals => -108,
            NodeExists => -110,
            NotEmpty => -111,
            SessionExpired => -112,
            InvalidCallback => -113,
            InvalidAcl => -114,
            AuthFailed => -115,
            SessionMoved => -118,
            NotReadOnly => -119,
            EphemeralOnLocalSession => -120,
            NoWatcher => -121,
            RequestTimeout => -122,
            ReconfigDisabled => -123,
            QuotaExceeded => -125,
            ThrottledOp => -127,
            Io | Corrupted | IncompatibleStore | StoreLocked | Closed => -1,
        }
    }

    /// The kind a ZooKeeper error code stands for; `None` for 0 and unknown codes.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        use ErrorKind::*;
        Some(match code {
            -1 => SystemError,
            -2 => RuntimeInconsistency,
            -3 => DataInconsistency,
            -4 => ConnectionLoss,
            -5 => MarshallingError,
            -6 => Unimplemented,
            -7 => OperationTimeout,
            -8 => BadArguments,
            -12 => UnknownSession,
            -101 => NoNode,
            -102 => NoAuth,
            -103 => BadVersion,
            -108 => NoChildrenForEphemerals,
            -110 => NodeExists,
            -111 => NotEmpty,
            -112 => SessionExpired,
            -113 => InvalidCallback,
            -114 => InvalidAcl,
            -115 => AuthFailed,
            -118 => SessionMoved,
            -119 => NotReadOnly,
            -120 => EphemeralOnLocalSession,
            -121 => NoWatcher,
            -122 => RequestTimeout,
            -123 => ReconfigDisabled,
            -125 => QuotaExceeded,
            -127 => ThrottledOp,
            _ => return None,
        })
    }

    /// ZooKeeper's upper-case name of the code (`NONODE`, `BADVERSION`, …).
    pub fn zk_name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            SystemError | Io | Corrupted | IncompatibleStore | StoreLocked | Closed => {
                "SYSTEMERROR"
            }
            RuntimeInconsistency => "RUNTIMEINCONSISTENCY",
            DataInconsistency => "DATAINCONSISTENCY",
            ConnectionLoss => "CONNECTIONLOSS",
            MarshallingError => "MARSHALLINGERROR",
            Unimplemented => "UNIMPLEMENTED",
            OperationTimeout => "OPERATIONTIMEOUT",
            BadArguments | InvalidPath | DataTooLarge => "BADARGUMENTS",
            UnknownSession => "UNKNOWNSESSION",
            NoNode => "NONODE",
            NoAuth => "NOAUTH",
            BadVersion => "BADVERSION",
            NoChildrenForEphemerals => "NOCHILDRENFOREPHEMERALS",
            NodeExists => "NODEEXISTS",
            NotEmpty => "NOTEMPTY",
            SessionExpired => "SESSIONEXPIRED",
            InvalidCallback => "INVALIDCALLBACK",
            InvalidAcl => "INVALIDACL",
            AuthFailed => "AUTHFAILED",
            SessionMoved => "SESSIONMOVED",
            NotReadOnly => "NOTREADONLY",
            EphemeralOnLocalSession => "EPHEMERALONLOCALSESSION",
            NoWatcher => "NOWATCHER",
            RequestTimeout => "REQUESTTIMEOUT",
            ReconfigDisabled => "RECONFIGDISABLED",
            QuotaExceeded => "QUOTAEXCEEDED",
            ThrottledOp => "THROTTLEDOP",
        }
    }

    /// True for failures after which the keeper refuses further writes
    /// (I/O, corruption, an incompatible or locked store, a closed keeper).
    pub fn is_fail_stop(self) -> bool {
        matches!(
            self,
            ErrorKind::Io
                | ErrorKind::Corrupted
                | ErrorKind::IncompatibleStore
                | ErrorKind::StoreLocked
                | ErrorKind::Closed
        )
    }

    fn describe(self) -> &'static str {
        use ErrorKind::*;
        match self {
            SystemError => "system error",
            RuntimeInconsistency => "rolled back: an earlier op of the multi failed",
            DataInconsistency => "data inconsistency",
            ConnectionLoss => "connection lost",
            MarshallingError => "malformed request or reply",
            Unimplemented => "unimplemented",
            OperationTimeout => "operation timed out",
            BadArguments => "bad arguments",
            InvalidPath => "invalid path",
            DataTooLarge => "data too large",
            UnknownSession => "unknown session",
            NoNode => "no node",
            NoAuth => "not authorized",
            BadVersion => "bad version",
            NoChildrenForEphemerals => "ephemeral nodes cannot have children",
            NodeExists => "node exists",
            NotEmpty => "node has children",
            SessionExpired => "session expired",
            InvalidCallback => "invalid callback",
            InvalidAcl => "invalid acl",
            AuthFailed => "authentication failed",
            SessionMoved => "session moved",
            NotReadOnly => "not read-only",
            EphemeralOnLocalSession => "ephemeral on local session",
            NoWatcher => "no watcher",
            RequestTimeout => "request timed out",
            ReconfigDisabled => "reconfiguration disabled",
            QuotaExceeded => "quota exceeded",
            ThrottledOp => "operation throttled",
            Io => "i/o error",
            Corrupted => "store corrupted",
            IncompatibleStore => "incompatible store",
            StoreLocked => "store locked by another process",
            Closed => "keeper closed",
        }
    }
}

/// An error: a kind, the path it concerns (if any), a detail message and,
/// for errors of the disk, the cause (`std::error::Error::source`), so a
/// caller can tell a full disk from a permission error
/// ([`Error::io_error_kind`]). Errors compare by kind, path and detail.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    path: Option<String>,
    detail: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        (self.kind, &self.path, &self.detail) == (other.kind, &other.path, &other.detail)
    }
}

impl Eq for Error {}

impl Error {
    /// An error of `kind` with no path and no detail.
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            path: None,
            detail: None,
            source: None,
        }
    }

    /// An error of `kind` about `path`.
    pub fn with_path(kind: ErrorKind, path: impl Into<String>) -> Error {
        Error {
            kind,
            path: Some(path.into()),
            source: None,
            detail: None,
        }
    }

    /// The same error with a detail message added.
    pub fn detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }

    /// The same error, caused by `cause`.
    pub(crate) fn caused_by(
        mut self,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.source = Some(Arc::new(cause));
        self
    }

    /// The same error with `other`'s cause (a wrapped error keeps it).
    pub(crate) fn cause_of(mut self, other: &Error) -> Error {
        if self.source.is_none() {
            self.source = other.source.clone();
        }
        self
    }

    /// The operating system's error kind behind this error, when an I/O
    /// error caused it (`StorageFull` for a full disk, `PermissionDenied`,
    /// …).
    pub fn io_error_kind(&self) -> Option<std::io::ErrorKind> {
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return Some(io.kind());
            }
            cause = e.source();
        }
        None
    }

    /// The same error, naming `path` if it named none.
    pub(crate) fn or_path(mut self, path: &str) -> Error {
        if self.path.is_none() {
            self.path = Some(path.to_string());
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// ZooKeeper's numeric error code (`-101` for `NoNode`, …).
    pub fn code(&self) -> i32 {
        self.kind.code()
    }

    /// The path the error is about, when there is one.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// A detail message, when there is one.
    pub fn detail_message(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(path) = &self.path {
            write!(f, " for {path:?}")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?} {}: {})", self.kind, self.kind.code(), self)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            -1, -2, -3, -4, -5, -6, -7, -8, -12, -101, -102, -103, -108, -110, -111, -112,
        ] {
            let kind = ErrorKind::from_code(code).unwrap();
            assert_eq!(kind.code(), code);
        }
        for code in [
            -113, -114, -115, -118, -119, -120, -121, -122, -123, -125, -127,
        ] {
            assert_eq!(ErrorKind::from_code(code).unwrap().code(), code);
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(-126), None);
    }

    #[test]
    fn display_names_path_and_detail() {
        let e = Error::with_path(ErrorKind::NoNode, "/a").detail("parent missing");
        assert_eq!(e.to_string(), "no node for \"/a\": parent missing");
        assert_eq!(e.code(), -101);
        assert!(!e.kind().is_fail_stop());
        assert!(ErrorKind::Io.is_fail_stop());
    }
}
