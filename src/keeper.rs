//! [`Keeper`], the engine's public handle, and [`KeeperBuilder`]: options,
//! opening and recovering a store, backups, and making sessions.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::engine::{Config, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::local::Session;
use crate::node::Id;
use crate::prep::PrepConfig;
use crate::state::State;
use crate::store::disk::{snapshot_error, DiskStore};
use crate::store::{
    snapshot, Durability, StoreFaults, StoreOptions, StoreReport, CACHE_BYTES_DEFAULT,
    SNAPSHOT_EVERY_TXNS_DEFAULT,
};

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

    /// Memory the store's log may use as a page cache (default 4 MiB,
    /// [`CACHE_BYTES_DEFAULT`](crate::CACHE_BYTES_DEFAULT)). The tree itself is always fully in memory
    /// and reads never touch the log; the log is written at the tail and
    /// read back only on open, so a larger cache buys little.
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
        let state = State::new();
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
        let decoded = snapshot::decode(&bytes)
            .map_err(|e| snapshot_error(e, &backup.display().to_string()))?;
        let state = decoded.state;
        state.check_invariants().map_err(|problem| {
            Error::new(ErrorKind::Corrupted).detail(format!(
                "{}: inconsistent backup: {problem}",
                backup.display()
            ))
        })?;
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
        let (recovered, _) = crate::store::disk::read_only(dir.as_ref())?;
        let state = recovered.state;
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
            faults: self.store_faults.clone(),
        };
        let (store, recovered) = DiskStore::open(dir, options, seed)?;
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
        crate::store::disk::read_only(dir.as_ref()).map(|(_, report)| report)
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
        Session::resume(&self.engine, session_id, password, timeout_ms)
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
        Session::open(&self.engine, timeout_ms, identities)
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
