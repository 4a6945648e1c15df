//! The public, synchronous API: [`Keeper`], its builder, [`Session`] and the
//! [`Coordinator`] trait every backend implements.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use parking_lot::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::engine::{Config, Engine, EventSink, SessionHooks, Write, Written};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{
    AddWatchMode, ClientWatches, Delivery, Dispatch, EventType, KeeperState, Registration,
    WatchReceiver, WatchedEvent, Watcher, WatcherType,
};
use crate::node::{Acl, CreateMode, Id, Stat};
use crate::path;
use crate::prep::{digest_identity, PrepConfig, WriteOp};
use crate::state::{OpOutcome, State};
use crate::store::disk::{snapshot_error, DiskStore};
use crate::store::{
    snapshot, Durability, StoreFaults, StoreOptions, StoreReport, CACHE_BYTES_DEFAULT,
    SNAPSHOT_EVERY_TXNS_DEFAULT,
};
use crate::watch::Table;

/// A multi op: create, delete, set-data or check. Build with the
/// constructors ([`Op::create`], [`Op::delete`], [`Op::set_data`], [`Op::check`]).
pub type Op = WriteOp;

impl WriteOp {
    /// A create with the open ACL.
    pub fn create(path: impl Into<String>, data: &[u8], mode: CreateMode) -> Op {
        WriteOp::Create {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            mode,
            ttl_ms: 0,
        }
    }

    /// A create with every option.
    pub fn create_with(
        path: impl Into<String>,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Op {
        WriteOp::Create {
            path: path.into(),
            data: data.map(<[u8]>::to_vec),
            acl: options.acl.clone(),
            mode: options.mode,
            ttl_ms: options.ttl_ms(),
        }
    }

    /// A delete expecting `version` (−1 for any).
    pub fn delete(path: impl Into<String>, version: i32) -> Op {
        WriteOp::Delete {
            path: path.into(),
            version,
        }
    }

    /// A set-data expecting `version` (−1 for any).
    pub fn set_data(path: impl Into<String>, data: &[u8], version: i32) -> Op {
        WriteOp::SetData {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        }
    }

    /// A version check (−1 checks only existence).
    pub fn check(path: impl Into<String>, version: i32) -> Op {
        WriteOp::Check {
            path: path.into(),
            version,
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

/// A read op of a multi-read.
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

/// One identity of a session, as `whoAmI` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    /// `ip`, `digest`, …
    pub auth_scheme: String,
    /// The user (for digest, the name before the `:`).
    pub user: String,
}

/// How to create a node: mode, ACL and TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// Node kind.
    pub mode: CreateMode,
    /// ACL (default: open).
    pub acl: Vec<Acl>,
    /// TTL for the TTL modes.
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

    fn ttl_ms(&self) -> i64 {
        self.ttl
            .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The operations of a ZooKeeper session, whatever is behind it: an
/// in-process [`Session`], or a remote ZooKeeper ensemble. Recipes and user
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
    fn events(&self) -> Receiver<WatchedEvent>;

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

/// Turns a failed multi prep into ZooKeeper's per-op result shape.
pub(crate) fn failed_multi(n_ops: usize, failed_idx: usize, kind: ErrorKind) -> Vec<OpResult> {
    (0..n_ops)
        .map(|idx| match idx.cmp(&failed_idx) {
            std::cmp::Ordering::Less => OpResult::RolledBack,
            std::cmp::Ordering::Equal => OpResult::Error(kind),
            std::cmp::Ordering::Greater => OpResult::Error(ErrorKind::RuntimeInconsistency),
        })
        .collect()
}

pub(crate) fn outcome_to_result(outcome: OpOutcome) -> OpResult {
    match outcome {
        OpOutcome::Created(path, stat) => OpResult::Create { path, stat },
        OpOutcome::Deleted => OpResult::Delete,
        OpOutcome::DataSet(stat) | OpOutcome::AclSet(stat) => OpResult::SetData { stat },
        OpOutcome::Checked | OpOutcome::Session => OpResult::Check,
    }
}

// ---- the keeper --------------------------------------------------------

/// Builds a [`Keeper`]. Every option has a default that suits tests and
/// embedding; see each setter. Finish with [`build`](KeeperBuilder::build)
/// (in memory), [`open`](KeeperBuilder::open) (on a directory),
/// [`restore`](KeeperBuilder::restore) (a backup into a new directory) or
/// [`build_from_backup`](KeeperBuilder::build_from_backup) (a backup, in memory).
pub struct KeeperBuilder {
    clock: Option<Arc<dyn Clock>>,
    tick: Duration,
    session_timeout_min: Option<Duration>,
    session_timeout_max: Option<Duration>,
    data_bytes_max: usize,
    extended_types: bool,
    reap_interval: Duration,
    filter_events_by_acl: bool,
    super_digest: Option<String>,
    durability: Durability,
    cache_bytes: u64,
    snapshot_every_txns: u64,
    store_faults: StoreFaults,
}

impl Default for KeeperBuilder {
    fn default() -> KeeperBuilder {
        KeeperBuilder {
            clock: None,
            tick: Duration::from_millis(2000),
            session_timeout_min: None,
            session_timeout_max: None,
            data_bytes_max: crate::DATA_BYTES_MAX_DEFAULT,
            extended_types: true,
            reap_interval: Duration::from_secs(60),
            filter_events_by_acl: false,
            super_digest: None,
            durability: Durability::Durable,
            cache_bytes: CACHE_BYTES_DEFAULT,
            snapshot_every_txns: SNAPSHOT_EVERY_TXNS_DEFAULT,
            store_faults: StoreFaults::default(),
        }
    }
}

impl KeeperBuilder {
    /// The clock (default: the system clock). A [`crate::ManualClock`] makes
    /// time move only when the test says so.
    pub fn clock(mut self, clock: impl Clock) -> KeeperBuilder {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// ZooKeeper's tickTime (default 2 s): the expiry granularity, and the
    /// base of the default session timeout range (2 to 20 ticks).
    pub fn tick(mut self, tick: Duration) -> KeeperBuilder {
        self.tick = tick.max(Duration::from_millis(1));
        self
    }

    /// The range requested session timeouts are clamped into.
    pub fn session_timeout_range(mut self, min: Duration, max: Duration) -> KeeperBuilder {
        self.session_timeout_min = Some(min);
        self.session_timeout_max = Some(max.max(min));
        self
    }

    /// Largest node data accepted (default 1 MiB, like ZooKeeper's
    /// jute.maxbuffer); larger data fails with `DataTooLarge`.
    pub fn data_limit(mut self, bytes: usize) -> KeeperBuilder {
        self.data_bytes_max = bytes;
        self
    }

    /// Whether TTL nodes may be created (default true; ZooKeeper's
    /// `extendedTypesEnabled`, off by default in ZooKeeper itself).
    pub fn extended_types(mut self, enabled: bool) -> KeeperBuilder {
        self.extended_types = enabled;
        self
    }

    /// How often empty containers and expired TTL nodes are deleted
    /// (default 60 s, ZooKeeper's `znode.container.checkIntervalMs`).
    pub fn reap_interval(mut self, interval: Duration) -> KeeperBuilder {
        self.reap_interval = interval;
        self
    }

    /// Withholds watch events from sessions that may not READ the node
    /// (ZooKeeper 3.8.4 and later; 3.8.0 delivers them). Default off.
    pub fn filter_events_by_acl(mut self, enabled: bool) -> KeeperBuilder {
        self.filter_events_by_acl = enabled;
        self
    }

    /// A digest identity, `user:BASE64(SHA1(user:password))` as
    /// [`crate::digest_id`] makes it, whose holder bypasses every ACL once it
    /// authenticates with digest `user:password` (ZooKeeper's
    /// `zookeeper.DigestAuthenticationProvider.superDigest`). Default none.
    pub fn super_digest(mut self, digest: impl Into<String>) -> KeeperBuilder {
        self.super_digest = Some(digest.into());
        self
    }

    /// When an acknowledged write reaches the disk (default
    /// [`Durability::Durable`]: before anyone can see it). Only keepers
    /// opened on a directory use it; [`build`](KeeperBuilder::build) keeps
    /// everything in memory whatever this says.
    ///
    /// ```
    /// use std::time::Duration;
    /// use innkeeper::{Coordinator, CreateMode, Durability, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::builder()
    ///     .durability(Durability::Periodic(Duration::from_millis(100)))
    ///     .open(dir.path())?;
    /// keeper.session()?.create("/fast", b"", CreateMode::Persistent)?;
    /// keeper.flush()?; // durable now, without waiting for the timer
    /// # keeper.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durability(mut self, durability: Durability) -> KeeperBuilder {
        self.durability = durability;
        self
    }

    /// Memory the store's log may use as a page cache (default 64 MiB,
    /// [`CACHE_BYTES_DEFAULT`](crate::CACHE_BYTES_DEFAULT)). The tree itself is always fully in memory;
    /// this cache only speeds up the log.
    ///
    /// ```
    /// use innkeeper::Keeper;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::builder().cache_bytes(8 << 20).open(dir.path())?;
    /// # keeper.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache_bytes(mut self, bytes: u64) -> KeeperBuilder {
        self.cache_bytes = bytes;
        self
    }

    /// Txns between two snapshots of the whole state (default 100 000,
    /// [`SNAPSHOT_EVERY_TXNS_DEFAULT`](crate::SNAPSHOT_EVERY_TXNS_DEFAULT)).
    /// Recovery loads the newest
    /// snapshot and replays the log after it, so fewer txns between
    /// snapshots means a faster open but more snapshot work; a snapshot
    /// takes a copy-on-write view of the state (writes do not wait) and is
    /// encoded and written in the background. A snapshot is also taken
    /// once the log grew by 64 MiB or by the last snapshot's size,
    /// whichever is larger.
    ///
    /// ```
    /// use innkeeper::Keeper;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::builder().snapshot_every_txns(10_000).open(dir.path())?;
    /// # keeper.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot_every_txns(mut self, txns: u64) -> KeeperBuilder {
        self.snapshot_every_txns = txns.max(1);
        self
    }

    /// Injects store failures (tests of the failure handling only).
    #[doc(hidden)]
    pub fn store_faults(mut self, faults: StoreFaults) -> KeeperBuilder {
        self.store_faults = faults;
        self
    }

    fn config(&self) -> Config {
        let tick_ms = i64::try_from(self.tick.as_millis()).unwrap_or(i64::MAX);
        let to_ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        let min = self
            .session_timeout_min
            .map_or_else(|| to_ms(self.tick * 2), to_ms);
        let max = self
            .session_timeout_max
            .map_or_else(|| to_ms(self.tick * 20), to_ms);
        Config {
            tick_ms,
            session_timeout_min_ms: min,
            session_timeout_max_ms: max.max(min),
            prep: PrepConfig {
                data_bytes_max: self.data_bytes_max,
                extended_types: self.extended_types,
            },
            reap_interval_ms: i64::try_from(self.reap_interval.as_millis()).unwrap_or(i64::MAX),
            filter_events_by_acl: self.filter_events_by_acl,
            super_digest: self.super_digest.clone(),
        }
    }

    /// Builds an in-memory keeper.
    pub fn build(self) -> Result<Keeper> {
        let clock = self.clock_or_system();
        let config = self.config();
        let state = State::new(config.tick_ms);
        Ok(Keeper {
            engine: Engine::new(state, clock, config, None),
        })
    }

    fn clock_or_system(&self) -> Arc<dyn Clock> {
        self.clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock::new()))
    }

    /// Opens the keeper stored in `dir`, creating the directory and an
    /// empty store if it is missing or empty, with the configured
    /// [`durability`](KeeperBuilder::durability).
    ///
    /// Everything the store had promised comes back: every node with its
    /// data, ACL and Stat, the zxid (never reused), and the sessions with
    /// their ephemerals. Restored sessions get a fresh timeout from now and
    /// expire after it unless resumed with [`Keeper::resume_session`].
    ///
    /// # Errors
    ///
    /// - `StoreLocked`: another keeper (in this or another process) has the
    ///   directory open;
    /// - `IncompatibleStore`: the directory holds something that is not an
    ///   innkeeper store, or a store of another format version;
    /// - `Corrupted`: the store's files are damaged so that no consistent
    ///   state can be recovered (the storage engine panicking on a damaged
    ///   file is caught and reported this way too);
    /// - `Io`: the directory cannot be read or written.
    ///
    /// ```
    /// use innkeeper::{Coordinator, CreateMode, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::builder().open(dir.path())?;
    /// keeper.session()?.create("/kept", b"v", CreateMode::Persistent)?;
    /// keeper.shutdown()?;
    ///
    /// let keeper = Keeper::builder().open(dir.path())?;
    /// assert_eq!(keeper.session()?.get_data("/kept")?.0, b"v");
    /// # keeper.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Keeper> {
        self.open_store(dir.as_ref(), None)
    }

    /// Creates a new store in `dir` holding the state of a backup written
    /// by [`Keeper::backup`], and opens it. `dir` must be missing or empty.
    ///
    /// # Errors
    ///
    /// Those of [`open`](KeeperBuilder::open); `BadArguments` if `dir`
    /// already holds a store; `IncompatibleStore` or `Corrupted` if the
    /// backup is not one or is damaged (nothing is created then).
    ///
    /// ```
    /// use innkeeper::{Coordinator, CreateMode, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::in_memory()?;
    /// keeper.session()?.create("/a", b"1", CreateMode::Persistent)?;
    /// keeper.backup(dir.path().join("backup"))?;
    ///
    /// let restored = Keeper::builder().restore(dir.path().join("backup"), dir.path().join("store"))?;
    /// assert_eq!(restored.session()?.get_data("/a")?.0, b"1");
    /// # restored.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restore(self, backup: impl AsRef<Path>, dir: impl AsRef<Path>) -> Result<Keeper> {
        let bytes = read_backup(backup.as_ref())?;
        self.open_store(dir.as_ref(), Some(&bytes))
    }

    /// Builds an in-memory keeper holding the state of a backup written by
    /// [`Keeper::backup`].
    ///
    /// # Errors
    ///
    /// `Io` if the file cannot be read; `IncompatibleStore` if it is not a
    /// backup (or one of another format version); `Corrupted` if it is damaged.
    ///
    /// ```
    /// use innkeeper::{Coordinator, CreateMode, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::in_memory()?;
    /// keeper.session()?.create("/a", b"1", CreateMode::Persistent)?;
    /// let zxid = keeper.backup(dir.path().join("backup"))?;
    ///
    /// let copy = Keeper::builder().build_from_backup(dir.path().join("backup"))?;
    /// assert_eq!(copy.last_zxid(), zxid);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_from_backup(self, backup: impl AsRef<Path>) -> Result<Keeper> {
        let backup = backup.as_ref();
        let bytes = read_backup(backup)?;
        let clock = self.clock_or_system();
        let config = self.config();
        let now_ms = clock.now_ms();
        let decoded = snapshot::decode(&bytes, config.tick_ms, now_ms)
            .map_err(|e| snapshot_error(e, &backup.display().to_string()))?;
        let mut state = decoded.state;
        state.check_invariants().map_err(|problem| {
            Error::new(ErrorKind::Corrupted).detail(format!(
                "{}: inconsistent backup: {problem}",
                backup.display()
            ))
        })?;
        state.sessions.refresh_all(now_ms);
        let engine = Engine::new(state, clock, config, None);
        engine.reserve_session_ids_through(decoded.header.session_id_high);
        Ok(Keeper { engine })
    }

    /// Builds an in-memory keeper holding the state stored in `dir`, without
    /// changing the directory (damaged snapshots are skipped, not set
    /// aside). Writes to the copy stay in memory. Used for offline reads of
    /// a data directory.
    ///
    /// # Errors
    ///
    /// `StoreLocked` when a keeper (a running server) has the directory
    /// open; `BadArguments` when it holds no store; otherwise those of
    /// [`open`](KeeperBuilder::open).
    ///
    /// ```
    /// use innkeeper::{Coordinator, CreateMode, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::open(dir.path())?;
    /// keeper.session()?.create("/a", b"1", CreateMode::Persistent)?;
    /// assert!(Keeper::builder().open_read_only(dir.path()).is_err(), "held by the keeper");
    /// keeper.shutdown()?;
    /// drop(keeper);
    /// let copy = Keeper::builder().open_read_only(dir.path())?;
    /// assert_eq!(copy.session()?.get_data("/a")?.0, b"1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(self, dir: impl AsRef<Path>) -> Result<Keeper> {
        let clock = self.clock_or_system();
        let config = self.config();
        let now_ms = clock.now_ms();
        let (recovered, _) = crate::store::disk::read_only(dir.as_ref(), config.tick_ms, now_ms)?;
        let mut state = recovered.state;
        state.sessions.refresh_all(now_ms);
        let engine = Engine::new(state, clock, config, None);
        engine.reserve_session_ids_through(recovered.session_id_high);
        Ok(Keeper { engine })
    }

    fn open_store(self, dir: &Path, seed: Option<&[u8]>) -> Result<Keeper> {
        let clock = self.clock_or_system();
        let config = self.config();
        let options = StoreOptions {
            durability: self.durability,
            cache_bytes: self.cache_bytes,
            snapshot_every_txns: self.snapshot_every_txns,
            tick_ms: config.tick_ms,
            faults: self.store_faults.clone(),
        };
        let now_ms = clock.now_ms();
        let (store, recovered) = DiskStore::open(dir, options, now_ms, seed)?;
        let engine = Engine::new(recovered.state, clock, config, Some(Box::new(store)));
        engine.reserve_session_ids_through(recovered.session_id_high);
        Ok(Keeper { engine })
    }
}

fn read_backup(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::new(ErrorKind::Io).detail(format!("reading the backup {}: {e}", path.display()))
    })
}

/// A coordination engine: a namespace of nodes, sessions and watches.
/// Cloning gives another handle to the same keeper.
///
/// ```
/// use innkeeper::{Coordinator, CreateMode, Keeper};
///
/// let keeper = Keeper::in_memory()?;
/// let session = keeper.session()?;
/// session.create("/config", b"v1", CreateMode::Persistent)?;
/// let (data, stat) = session.get_data("/config")?;
/// assert_eq!((data.as_slice(), stat.version), (&b"v1"[..], 0));
/// # Ok::<(), innkeeper::Error>(())
/// ```
#[derive(Clone)]
pub struct Keeper {
    pub(crate) engine: Arc<Engine>,
}

impl Keeper {
    /// An in-memory keeper with default settings and the system clock.
    pub fn in_memory() -> Result<Keeper> {
        KeeperBuilder::default().build()
    }

    /// A builder for every option.
    pub fn builder() -> KeeperBuilder {
        KeeperBuilder::default()
    }

    /// Opens the durable keeper stored in `dir` with default settings (see
    /// [`KeeperBuilder::open`] for what comes back and the errors).
    ///
    /// ```
    /// use innkeeper::{Coordinator, CreateMode, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::open(dir.path())?;
    /// keeper.session()?.create("/a", b"", CreateMode::Persistent)?;
    /// # keeper.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Keeper> {
        KeeperBuilder::default().open(dir)
    }

    /// Creates a store in `dir` from a backup and opens it with default
    /// settings (see [`KeeperBuilder::restore`] for the errors and an example).
    pub fn restore(backup: impl AsRef<Path>, dir: impl AsRef<Path>) -> Result<Keeper> {
        KeeperBuilder::default().restore(backup, dir)
    }

    /// Reads the store in `dir` without changing it and checks every
    /// record: node and session counts, last zxid, log and snapshot sizes,
    /// and each snapshot or log entry that does not decode.
    ///
    /// # Errors
    ///
    /// Those of [`KeeperBuilder::open_read_only`]; a store whose state
    /// cannot be recovered at all fails with `Corrupted`.
    pub fn inspect_store(dir: impl AsRef<Path>) -> Result<StoreReport> {
        let now_ms = SystemClock::new().now_ms();
        let tick_ms = KeeperBuilder::default().config().tick_ms;
        crate::store::disk::read_only(dir.as_ref(), tick_ms, now_ms).map(|(_, report)| report)
    }

    /// The ephemeral owner stored for the node at `path` as ZooKeeper's
    /// server keeps it, which also tells the node's kind (clients see 0 for
    /// the last two): a session id for an ephemeral, `0` for a plain
    /// persistent node, `0x8000000000000000` for a container, and
    /// `0xFF00000000000000 | ttl_ms` for a TTL node. `None` if there is no
    /// such node.
    pub fn stored_ephemeral_owner(&self, path: &str) -> Option<i64> {
        self.engine
            .with_state(|state| state.tree.get(path).map(|node| node.owner))
    }

    /// Writes a consistent snapshot of the whole keeper (nodes, sessions,
    /// zxid) to the file `path`, replacing it atomically, and returns the
    /// zxid it holds. Writes wait while the state is encoded; reads go on.
    /// Works for in-memory keepers too. Restore with [`Keeper::restore`] or
    /// [`KeeperBuilder::build_from_backup`].
    ///
    /// # Errors
    ///
    /// `Io` if the file cannot be written (the old file, if any, is left
    /// as it was). A keeper after [`shutdown`](Keeper::shutdown) can still
    /// be backed up.
    ///
    /// ```
    /// use innkeeper::{Coordinator, CreateMode, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::in_memory()?;
    /// keeper.session()?.create("/a", b"", CreateMode::Persistent)?;
    /// let zxid = keeper.backup(dir.path().join("keeper.backup"))?;
    /// assert_eq!(zxid, keeper.last_zxid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup(&self, path: impl AsRef<Path>) -> Result<i64> {
        let path = path.as_ref();
        let next_session_id = self.engine.next_session_id();
        let now_ms = self.engine.clock.now_ms();
        let (zxid, encoded) = self.engine.with_state(|state| {
            let high = state
                .sessions
                .ids()
                .last()
                .map_or(next_session_id - 1, |max| (*max).max(next_session_id - 1));
            (state.last_zxid, snapshot::encode(state, high, now_ms))
        });
        let bytes = encoded
            .map_err(|why| Error::new(ErrorKind::Io).detail(format!("cannot back up: {why}")))?;
        snapshot::write_atomically(path, &bytes).map_err(|e| {
            Error::new(ErrorKind::Io).detail(format!("writing the backup {}: {e}", path.display()))
        })?;
        Ok(zxid)
    }

    /// Makes every write applied so far durable now. Only the periodic
    /// mode needs it (the durable mode is durable at every reply; in memory
    /// there is nothing to flush). After a failed write it also retries the
    /// store's recovery.
    ///
    /// # Errors
    ///
    /// `Io` if the flush fails; `Closed` after [`shutdown`](Keeper::shutdown).
    pub fn flush(&self) -> Result<()> {
        self.engine.flush_store()
    }

    /// Resumes a session after a restart (or from another handle), as a
    /// ZooKeeper client reconnects: the id and password of a live session
    /// give a new handle to it, with its ephemerals, and a timeout
    /// negotiated from `timeout`. Sessions restored from disk expire after
    /// their timeout unless resumed.
    ///
    /// The resumed handle starts with no watches and no auth identities
    /// (add them again, as a reconnecting ZooKeeper client does); a previous
    /// handle to the same session stops receiving events.
    ///
    /// # Errors
    ///
    /// `SessionExpired` if the session is unknown, expired or closed, or the
    /// password does not match; `Closed` after [`shutdown`](Keeper::shutdown).
    ///
    /// ```
    /// use std::time::Duration;
    /// use innkeeper::{Coordinator, CreateMode, Keeper};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keeper = Keeper::open(dir.path())?;
    /// let session = keeper.session()?;
    /// session.create("/me", b"", CreateMode::Ephemeral)?;
    /// let (id, password) = (session.session_id(), session.password());
    /// keeper.shutdown()?; // as if the process stopped
    /// drop(session);
    ///
    /// let keeper = Keeper::open(dir.path())?;
    /// let session = keeper.resume_session(id, &password, Duration::from_secs(10))?;
    /// assert_eq!(session.get_ephemerals("/")?, vec!["/me".to_string()]);
    /// # keeper.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume_session(
        &self,
        session_id: i64,
        password: &[u8],
        timeout: Duration,
    ) -> Result<Session> {
        let password: [u8; 16] = password
            .try_into()
            .map_err(|_| Error::new(ErrorKind::SessionExpired).detail("wrong password"))?;
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let rt = Arc::new(SessionRt::new());
        let sink: Arc<dyn EventSink> = rt.clone();
        let hooks = Arc::new(SessionHooks::new(Vec::new(), sink, true));
        let timeout_ms =
            self.engine
                .resume_session(session_id, &password, timeout_ms, hooks.clone())?;
        Ok(Session {
            engine: self.engine.clone(),
            id: session_id,
            password,
            timeout_ms,
            hooks,
            rt,
            closed: AtomicBool::new(false),
        })
    }

    /// The ids of all sessions, sorted (after a restart: the restored ones,
    /// which expire unless resumed).
    pub fn session_ids(&self) -> Vec<i64> {
        self.engine.with_state(|s| s.sessions.ids())
    }

    /// Opens a session with the default timeout (the largest allowed).
    pub fn session(&self) -> Result<Session> {
        let timeout = Duration::from_millis(self.engine.config.session_timeout_max_ms as u64);
        self.session_with_timeout(timeout)
    }

    /// Opens a session asking for `timeout` (clamped into the configured range).
    pub fn session_with_timeout(&self, timeout: Duration) -> Result<Session> {
        self.session_with(timeout, Vec::new())
    }

    /// Opens a session with initial identities (as a wire server gives each
    /// connection `ip:<address>`).
    pub fn session_with(&self, timeout: Duration, identities: Vec<Id>) -> Result<Session> {
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let rt = Arc::new(SessionRt::new());
        let sink: Arc<dyn EventSink> = rt.clone();
        let hooks = Arc::new(SessionHooks::new(identities, sink, true));
        let (id, password) = self.engine.open_session(timeout_ms, hooks.clone())?;
        // As ZooKeeper's clients do, the default watcher hears the session
        // is established before anything else.
        rt.deliver(vec![Delivery::Default(WatchedEvent::state(
            KeeperState::SyncConnected,
        ))]);
        Ok(Session {
            engine: self.engine.clone(),
            id,
            password,
            timeout_ms: self.engine.negotiate_timeout(timeout_ms),
            hooks,
            rt,
            closed: AtomicBool::new(false),
        })
    }

    /// Expires a session now, as if its heartbeats had stopped and its
    /// timeout passed: its ephemerals go, watches fire, it sees `Expired`.
    pub fn expire_session(&self, session_id: i64) -> Result<()> {
        self.engine.expire_session(session_id)
    }

    /// zxid of the last applied change.
    pub fn last_zxid(&self) -> i64 {
        self.engine.last_zxid()
    }

    /// Number of nodes (the four system nodes included).
    pub fn node_count(&self) -> usize {
        self.engine.with_state(|s| s.tree.len())
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.engine.with_state(|s| s.sessions.len())
    }

    /// Checks the invariants between nodes, counters and sessions; returns
    /// a description of the first violation.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        self.engine.check_invariants()
    }

    /// Runs expiry and reaping as if the clock ticked now (the manual clock
    /// does this by itself when advanced).
    pub fn tick(&self) {
        self.engine.tick(self.engine.clock.now_ms());
    }

    /// Stops the keeper: later operations fail with `Closed`. A keeper on
    /// a directory flushes its store and releases the directory, so it can
    /// be opened again (sessions stay in the store, as after a crash).
    pub fn shutdown(&self) -> Result<()> {
        self.engine.shutdown()
    }
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeper")
            .field("last_zxid", &self.last_zxid())
            .finish()
    }
}

// ---- the in-process session ------------------------------------------------

/// Client-side state of an in-process session: its watch registry, its
/// event stream, the callback thread, and its state.
pub(crate) struct SessionRt {
    watches: Mutex<ClientWatches>,
    default_watcher: Watcher,
    dispatch: Dispatch,
    state: RwLock<KeeperState>,
}

impl SessionRt {
    pub(crate) fn new() -> SessionRt {
        SessionRt {
            watches: Mutex::new(ClientWatches::default()),
            default_watcher: Watcher::default_target(),
            dispatch: Dispatch::new("innkeeper-events"),
            state: RwLock::new(KeeperState::SyncConnected),
        }
    }

    pub(crate) fn deliver(&self, deliveries: Vec<Delivery>) {
        self.dispatch.deliver(deliveries);
    }

    pub(crate) fn register(&self, kind: Registration, path: &str, watcher: &Watcher) {
        self.watches.lock().register(kind, path, watcher);
    }
}

impl EventSink for SessionRt {
    fn notify(&self, event_type: EventType, path: &str) {
        let deliveries = self.watches.lock().materialize(event_type, path);
        self.deliver(deliveries);
    }

    fn ended(&self, state: KeeperState) {
        *self.state.write() = state;
        let event = WatchedEvent::state(state);
        let mut deliveries = self.watches.lock().all(&event, true);
        if !deliveries.iter().any(|d| matches!(d, Delivery::Default(_))) {
            deliveries.push(Delivery::Default(event));
        }
        self.deliver(deliveries);
    }
}

/// A session on an in-process keeper. It heartbeats while it lives (unless
/// paused) and closes on drop, deleting its ephemerals.
pub struct Session {
    engine: Arc<Engine>,
    id: i64,
    password: [u8; 16],
    timeout_ms: i32,
    hooks: Arc<SessionHooks>,
    rt: Arc<SessionRt>,
    closed: AtomicBool,
}

impl Session {
    /// The session's password (for resuming it, e.g. over the wire).
    pub fn password(&self) -> [u8; 16] {
        self.password
    }

    /// The negotiated timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.timeout_ms).unwrap_or(0))
    }

    /// Stops heartbeats, as if the process hung: the session expires once
    /// its timeout passes.
    pub fn pause_heartbeats(&self) {
        self.hooks.attached.store(false, Ordering::Release);
    }

    /// Restarts heartbeats (the session is touched at the next tick).
    pub fn resume_heartbeats(&self) {
        self.hooks.attached.store(true, Ordering::Release);
        self.engine.touch(self.id);
    }

    /// True once the session expired.
    pub fn is_expired(&self) -> bool {
        *self.rt.state.read() == KeeperState::Expired
    }

    /// Closes the session: its ephemerals are deleted (firing others'
    /// watches) and it sees `Closed`. Closing twice is fine.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if *self.rt.state.read() != KeeperState::SyncConnected {
            return Ok(());
        }
        if !self.engine.is_attached_to(self.id, &self.hooks) {
            // Another handle resumed the session (`Keeper::resume_session`):
            // it owns the session now, as a newer connection does in
            // ZooKeeper, and this stale handle must not close it.
            return Ok(());
        }
        self.engine.close_session(self.id)
    }

    /// Expires this session now (fault injection; see [`Keeper::expire_session`]).
    pub fn expire(&self) -> Result<()> {
        self.engine.expire_session(self.id)
    }

    fn identities(&self) -> Vec<Id> {
        self.hooks.identities.read().clone()
    }

    fn check_usable(&self) -> Result<()> {
        match *self.rt.state.read() {
            KeeperState::SyncConnected => Ok(()),
            KeeperState::Closed => {
                Err(Error::new(ErrorKind::SessionExpired).detail("the session was closed"))
            }
            KeeperState::AuthFailed => Err(Error::new(ErrorKind::AuthFailed)
                .detail("an earlier authentication failed; the handle is dead")),
            _ => Err(Error::new(ErrorKind::SessionExpired)),
        }
    }

    fn write(&self, write: Write) -> Result<Written> {
        self.check_usable()?;
        self.engine.write(self.id, self.identities(), write, None)
    }

    fn op(&self, op: WriteOp) -> Result<OpOutcome> {
        let path = op.path().to_string();
        match self.write(Write::Op(op)) {
            Ok(Written::Op(outcome)) => Ok(outcome),
            Ok(_) => Err(Error::new(ErrorKind::SystemError)),
            Err(e) => Err(e.or_path(&path)),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({:#x}, {:?})", self.id, *self.rt.state.read())
    }
}

impl Coordinator for Session {
    fn session_id(&self) -> i64 {
        self.id
    }

    fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        options: &CreateOptions,
    ) -> Result<(String, Stat)> {
        // Checked first, as the Java client does (A.1); a sequential prefix
        // may end with '/'.
        if options.mode.is_sequential() {
            path::validate_sequential_prefix(path)?;
        } else {
            path::validate(path)?;
        }
        match self.op(Op::create_with(path, data, options))? {
            OpOutcome::Created(p, stat) => Ok((p, stat)),
            _ => Err(Error::new(ErrorKind::SystemError)),
        }
    }

    fn delete(&self, path: &str, version: i32) -> Result<()> {
        path::validate(path)?;
        self.op(Op::delete(path, version)).map(|_| ())
    }

    fn set_data_with(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        path::validate(path)?;
        let op = WriteOp::SetData {
            path: path.to_string(),
            data: data.map(<[u8]>::to_vec),
            version,
        };
        match self.op(op)? {
            OpOutcome::DataSet(stat) => Ok(stat),
            _ => Err(Error::new(ErrorKind::SystemError)),
        }
    }

    fn exists_with(&self, path: &str, watcher: Option<&Watcher>) -> Result<Option<Stat>> {
        path::validate(path)?;
        self.check_usable()?;
        let ids = self.identities();
        let register = |exists: bool| {
            if let Some(w) = watcher {
                let kind = if exists {
                    Registration::Data
                } else {
                    Registration::Exist
                };
                self.rt.register(kind, path, w);
            }
        };
        let hook: Option<&dyn Fn(bool)> = if watcher.is_some() {
            Some(&register)
        } else {
            None
        };
        self.engine
            .exists(self.id, &ids, path, hook)
            .map_err(|e| e.or_path(path))
    }

    fn get_data_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        path::validate(path)?;
        self.check_usable()?;
        let ids = self.identities();
        let register = |_: bool| {
            if let Some(w) = watcher {
                self.rt.register(Registration::Data, path, w);
            }
        };
        let hook: Option<&dyn Fn(bool)> = if watcher.is_some() {
            Some(&register)
        } else {
            None
        };
        self.engine
            .get_data(self.id, &ids, path, hook)
            .map_err(|e| e.or_path(path))
    }

    fn get_children_with(
        &self,
        path: &str,
        watcher: Option<&Watcher>,
    ) -> Result<(Vec<String>, Stat)> {
        path::validate(path)?;
        self.check_usable()?;
        let ids = self.identities();
        let register = |_: bool| {
            if let Some(w) = watcher {
                self.rt.register(Registration::Child, path, w);
            }
        };
        let hook: Option<&dyn Fn(bool)> = if watcher.is_some() {
            Some(&register)
        } else {
            None
        };
        self.engine
            .get_children(self.id, &ids, path, hook)
            .map_err(|e| e.or_path(path))
    }

    fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        path::validate(path)?;
        self.check_usable()?;
        let ids = self.identities();
        self.engine
            .get_acl(self.id, &ids, path)
            .map_err(|e| e.or_path(path))
    }

    fn set_acl(&self, path: &str, acl: &[Acl], aversion: i32) -> Result<Stat> {
        path::validate(path)?;
        let op = WriteOp::SetAcl {
            path: path.to_string(),
            acl: acl.to_vec(),
            version: aversion,
        };
        match self.op(op)? {
            OpOutcome::AclSet(stat) => Ok(stat),
            _ => Err(Error::new(ErrorKind::SystemError)),
        }
    }

    fn multi_results(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        match self.write(Write::Multi(ops.to_vec()))? {
            Written::Multi(Ok(outcomes)) => {
                Ok(outcomes.into_iter().map(outcome_to_result).collect())
            }
            Written::Multi(Err((idx, e))) => Ok(failed_multi(ops.len(), idx, e.kind())),
            _ => Err(Error::new(ErrorKind::SystemError)),
        }
    }

    fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        self.check_usable()?;
        let ids = self.identities();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match op {
                ReadOp::GetData(p) => match self.engine.get_data(self.id, &ids, p, None) {
                    Ok((d, s)) => ReadResult::Data(d, s),
                    Err(e) if e.kind() == ErrorKind::SessionExpired => return Err(e),
                    Err(e) => ReadResult::Error(e.kind()),
                },
                ReadOp::GetChildren(p) => match self.engine.get_children(self.id, &ids, p, None) {
                    Ok((c, _)) => ReadResult::Children(c),
                    Err(e) if e.kind() == ErrorKind::SessionExpired => return Err(e),
                    Err(e) => ReadResult::Error(e.kind()),
                },
            });
        }
        Ok(out)
    }

    fn get_all_children_number(&self, path: &str) -> Result<u64> {
        path::validate(path)?;
        self.check_usable()?;
        let ids = self.identities();
        self.engine
            .get_all_children_number(self.id, &ids, path)
            .map_err(|e| e.or_path(path))
    }

    fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        path::validate(prefix)?;
        self.check_usable()?;
        self.engine.get_ephemerals(self.id, prefix)
    }

    fn sync(&self, path: &str) -> Result<()> {
        path::validate(path)?;
        self.check_usable()?;
        self.engine.sync(self.id)
    }

    fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: &Watcher) -> Result<()> {
        path::validate(path)?;
        self.check_usable()?;
        let recursive = mode == AddWatchMode::PersistentRecursive;
        let kind = if recursive {
            Registration::PersistentRecursive
        } else {
            Registration::Persistent
        };
        self.engine.add_watch(self.id, path, recursive, &|| {
            self.rt.register(kind, path, watcher)
        })
    }

    fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        watcher: Option<&Watcher>,
    ) -> Result<()> {
        path::validate(path)?;
        self.check_usable()?;
        if !self.rt.watches.lock().contains(path, kind, watcher) {
            return Err(Error::with_path(ErrorKind::NoWatcher, path));
        }
        let tables: &[Table] = match kind {
            WatcherType::Children => &[Table::Child],
            WatcherType::Data => &[Table::Data],
            WatcherType::Any => &[Table::Child, Table::Data],
        };
        let removed = Mutex::new(None);
        self.engine
            .remove_watches(self.id, path, tables, watcher.is_none(), &|| {
                *removed.lock() = Some(self.rt.watches.lock().remove(path, kind, watcher));
            })?;
        match removed.into_inner().flatten() {
            Some(deliveries) => {
                self.rt.deliver(deliveries);
                Ok(())
            }
            None => Err(Error::with_path(ErrorKind::NoWatcher, path)),
        }
    }

    fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.check_usable()?;
        if scheme != "digest" {
            // ZooKeeper closes the connection and the client handle is dead
            // (C.6); the session itself lives on until it expires.
            self.hooks.attached.store(false, Ordering::Release);
            *self.rt.state.write() = KeeperState::AuthFailed;
            let event = WatchedEvent::state(KeeperState::AuthFailed);
            let mut deliveries = self.rt.watches.lock().all(&event, false);
            if !deliveries.iter().any(|d| matches!(d, Delivery::Default(_))) {
                deliveries.push(Delivery::Default(event));
            }
            self.rt.deliver(deliveries);
            return Err(
                Error::new(ErrorKind::AuthFailed).detail(format!("unknown scheme {scheme:?}"))
            );
        }
        let credential = String::from_utf8_lossy(auth);
        let id = digest_identity(&credential);
        let is_super = self.engine.config.super_digest.as_deref() == Some(id.id.as_str());
        let mut ids = self.hooks.identities.write();
        if is_super && !ids.iter().any(|i| i.scheme == "super") {
            ids.push(Id::new("super", ""));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
        Ok(())
    }

    fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        self.check_usable()?;
        Ok(client_infos(&self.hooks.identities.read()))
    }

    fn events(&self) -> Receiver<WatchedEvent> {
        self.rt.dispatch.events()
    }

    fn default_watcher(&self) -> Watcher {
        self.rt.default_watcher.clone()
    }

    fn state(&self) -> KeeperState {
        *self.rt.state.read()
    }
}

/// `whoAmI` entries for a list of identities (digest shows the user only).
/// `ids` are in the order they were added; the answer is in the order
/// ZooKeeper 3.8 iterates its `ConcurrentHashMap`-backed `authInfo` set.
pub(crate) fn client_infos(ids: &[Id]) -> Vec<ClientInfo> {
    let hashes: Vec<i32> = ids
        .iter()
        .map(|id| crate::javaorder::id_hash(&id.scheme, &id.id))
        .collect();
    crate::javaorder::concurrent_set_order(&hashes)
        .into_iter()
        .map(|i| &ids[i])
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: if id.scheme == "digest" {
                id.id.split(':').next().unwrap_or("").to_string()
            } else {
                id.id.clone()
            },
        })
        .collect()
}

/// Waits for the next event on a receiver (a helper for tests and recipes).
pub fn wait_event(events: &Receiver<WatchedEvent>, timeout: Duration) -> Option<WatchedEvent> {
    events.recv_timeout(timeout).ok()
}

impl From<WatchReceiver> for Receiver<WatchedEvent> {
    fn from(r: WatchReceiver) -> Receiver<WatchedEvent> {
        r.receiver().clone()
    }
}
