//! The [`Coordinator`] trait: the operations of a ZooKeeper session,
//! whatever is behind it. Recipes and user code written against it run on
//! an in-process [`Session`](crate::Session) or a
//! [`RemoteSession`](crate::RemoteSession) alike. It depends only on
//! public types.

use crate::error::{Error, ErrorKind, Result};
use crate::event::{AddWatchMode, KeeperState, WatchReceiver, Watcher, WatcherType};
use crate::node::{Acl, CreateMode, Stat};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::path;

/// One identity of a session, as `whoAmI` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    /// `ip`, `digest`, …
    pub auth_scheme: String,
    /// The user (for digest, the name before the `:`).
    pub user: String,
}

/// The operations of a ZooKeeper session, whatever is behind it: an
/// in-process [`Session`](crate::Session), or a remote ZooKeeper ensemble. Recipes and user
/// code written against this trait run on either.
///
/// Versions are ZooKeeper's: `-1` means "any version".
pub trait Coordinator: Send + Sync {
    /// The session id.
    fn session_id(&self) -> i64;

    /// Creates a node with data (or null data), a mode, an ACL and a TTL;
    /// returns the actual path and the new node's Stat.
    fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Result<(String, Stat)>;

    /// Deletes a node if its version matches.
    fn delete(&self, path: &str, version: i32) -> Result<()>;

    /// Sets (or nulls) a node's data if its version matches.
    fn set_data_with(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat>;

    /// The Stat of a node, or `None`; with a watcher, watches for its
    /// creation, deletion or data change either way.
    fn exists_with(&self, path: &str, watcher: Option<&Watcher>) -> Result<Option<Stat>>;

    /// Data (`None` for ZooKeeper's null) and Stat, optionally watching.
    fn get_data_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)>;

    /// Child names (sorted) and the node's Stat, optionally watching.
    fn get_children_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Vec<String>, Stat)>;

    /// The ACL and Stat of a node.
    fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)>;

    /// Replaces a node's ACL if its aversion matches.
    fn set_acl(&self, path: &str, acl: &[Acl], aversion: i32) -> Result<Stat>;

    /// Runs ops atomically. `Ok` carries one result per op; when an op
    /// fails nothing changes and every result says so (E.3).
    fn multi_results(&self, ops: &[Op]) -> Result<Vec<OpResult>>;

    /// Reads several nodes (not atomic; per-op errors).
    fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>>;

    /// Number of descendants of a node.
    fn get_all_children_number(&self, path: &str) -> Result<u64>;

    /// This session's ephemerals whose path starts with `prefix` (`/` for all).
    fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>>;

    /// Waits until this session sees every write committed before the call.
    fn sync(&self, path: &str) -> Result<()>;

    /// Adds a persistent (or persistent-recursive) watch.
    fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: &Watcher) -> Result<()>;

    /// Removes watches at `path`: all of the kind when `watcher` is `None`,
    /// else only that watcher's.
    fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()>;

    /// Adds an identity (`digest`, `user:password`).
    fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()>;

    /// The session's identities, in the order ZooKeeper 3.8 lists them
    /// (the iteration order of its `ConcurrentHashMap`-backed set, which
    /// depends on the identities and the order they were added).
    fn who_am_i(&self) -> Result<Vec<ClientInfo>>;

    /// The session's own event stream (events for the default watcher and
    /// state changes).
    fn events(&self) -> WatchReceiver;

    /// The watcher whose events go to [`Coordinator::events`].
    fn default_watcher(&self) -> Watcher;

    /// The session's state.
    fn state(&self) -> KeeperState;

    /// Creates a node with the open ACL.
    fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        self.create_with(path, Some(data), &CreateOptions::new(mode))
            .map(|(p, _)| p)
    }

    /// Sets a node's data if its version matches.
    fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat> {
        self.set_data_with(path, Some(data), version)
    }

    /// The Stat of a node, or `None`.
    fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.exists_with(path, None)
    }

    /// Data (empty for null) and Stat.
    fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.get_data_with(path, None)
            .map(|(d, s)| (d.unwrap_or_default(), s))
    }

    /// Child names, sorted.
    fn get_children(&self, path: &str) -> Result<Vec<String>> {
        self.get_children_with(path, None).map(|(c, _)| c)
    }

    /// Runs ops atomically; on failure returns the failing op's error
    /// (with its index in the detail) and changes nothing.
    fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let results = self.multi_results(ops)?;
        for (idx, r) in results.iter().enumerate() {
            if let OpResult::Error(kind) = r {
                let p = ops.get(idx).map(Op::path).unwrap_or("");
                return Err(Error::with_path(*kind, p).detail(format!("multi op {idx} failed")));
            }
        }
        Ok(results)
    }

    /// Creates `path` and any missing ancestors (persistent, open ACL);
    /// an existing node is fine.
    fn create_all(&self, path: &str) -> Result<()> {
        path::validate(path)?;
        let mut prefix = String::new();
        for segment in path.split('/').skip(1) {
            prefix.push('/');
            prefix.push_str(segment);
            match self.create(&prefix, b"", CreateMode::Persistent) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NodeExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes `path` and everything below it (ZooKeeper's `deleteall`).
    fn delete_all(&self, path: &str) -> Result<()> {
        let children = match self.get_children(path) {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NoNode => return Ok(()),
            Err(e) => return Err(e),
        };
        for child in children {
            self.delete_all(&path::join(path, &child))?;
        }
        match self.delete(path, -1) {
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(()),
            other => other,
        }
    }
}
