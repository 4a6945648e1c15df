//! The disk store: directory layout, opening and recovery, the write path
//! and what happens when it fails, and the background flush and snapshot
//! threads. `README.md` beside this file is the design note.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use fs2::FileExt;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, ErrorKind, Result};
use crate::path;
use crate::state::State;
use crate::store::codec::{self, Record, FORMAT_VERSION};
use crate::store::guard::{self, FileIds, HIGH_WATER_FILE};
use crate::store::pending::{self, PendingLog};
use crate::store::sled::Log;
use crate::store::snapshot::{
    self, sync_dir, write_atomically, write_atomically_with, SnapshotError, Step, TMP_SUFFIX,
};
use crate::store::{
    Durability, SnapshotCrash, SnapshotFile, Store, StoreOptions, StoreReport,
    PERIODIC_INTERVAL_MIN,
};
use crate::txn::{Txn, TxnOp};

/// The file whose presence makes a directory an innkeeper store.
const MARKER_FILE: &str = "innkeeper-store";
/// The first line of the marker.
const MARKER_MAGIC: &str = "innkeeper-store";
/// The file locked (`flock`) while a process has the store open.
const LOCK_FILE: &str = "lock";
/// sled's directory: the txn log.
const LOG_DIR: &str = "log";
/// Snapshot files.
const SNAPSHOT_DIR: &str = "snapshots";
/// Name prefix of a snapshot file; the zxid follows as 16 hex digits.
const SNAPSHOT_PREFIX: &str = "snap-";
/// Suffix given to snapshot files recovery found damaged (kept for a
/// post-mortem, never read again).
const DAMAGED_SUFFIX: &str = ".damaged";
/// Snapshots kept; the log is kept back to the oldest of them, so a
/// damaged newest snapshot still leaves a complete older one plus log.
const SNAPSHOTS_KEPT: usize = 2;
/// Log bytes written since the last snapshot that trigger a new one even
/// before `snapshot_every_txns` txns: this many, or the size of the last
/// snapshot if larger. So the log stays within about twice the larger of
/// this and the state's size, however big each txn (a create in a very
/// deep tree logs its whole path), and a snapshot costs at most about as
/// much as the log it retires.
const SNAPSHOT_EVERY_LOG_BYTES_MIN: u64 = 64 * 1024 * 1024;

/// The paths of a store directory.
#[derive(Debug, Clone)]
struct Layout {
    dir: PathBuf,
    marker: PathBuf,
    lock: PathBuf,
    log: PathBuf,
    snapshots: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            marker: dir.join(MARKER_FILE),
            lock: dir.join(LOCK_FILE),
            log: dir.join(LOG_DIR),
            snapshots: dir.join(SNAPSHOT_DIR),
        }
    }

    /// What must not be removed or replaced while the store is open.
    fn watched_files(&self) -> Vec<PathBuf> {
        vec![
            self.dir.clone(),
            self.marker.clone(),
            self.lock.clone(),
            self.log.clone(),
            self.log.join("db"),
            self.snapshots.clone(),
        ]
    }

    fn snapshot_path(&self, zxid: i64) -> PathBuf {
        self.snapshots
            .join(format!("{SNAPSHOT_PREFIX}{:016x}", zxid.max(0)))
    }
}

fn io_error(e: std::io::Error, doing: &str, path: &Path) -> Error {
    let detail = format!("{doing} {}: {e}", path.display());
    Error::new(ErrorKind::Io).detail(detail).caused_by(e)
}

fn corrupted(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Corrupted).detail(detail)
}

/// What a directory holds before we touch it.
#[derive(Debug, PartialEq, Eq)]
enum DirState {
    /// Nothing, or only what an interrupted creation leaves (no marker).
    Empty,
    /// A store (the marker is there).
    Store,
    /// Something else: the first foreign entry.
    Foreign(String),
}

fn inspect(dir: &Path) -> Result<DirState> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Empty),
        Err(e) => return Err(io_error(e, "listing", dir)),
    };
    let marker_tmp = format!("{MARKER_FILE}{TMP_SUFFIX}");
    let high_water_tmp = format!("{HIGH_WATER_FILE}{TMP_SUFFIX}");
    let mut foreign = None;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(e, "listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == MARKER_FILE {
            return Ok(DirState::Store);
        }
        let ours = [
            LOCK_FILE,
            LOG_DIR,
            SNAPSHOT_DIR,
            marker_tmp.as_str(),
            pending::PENDING_FILE,
            pending::PENDING_OLD_FILE,
            HIGH_WATER_FILE,
            high_water_tmp.as_str(),
        ]
        .contains(&name.as_str());
        if !ours && foreign.is_none() {
            foreign = Some(name);
        }
    }
    Ok(foreign.map_or(DirState::Empty, DirState::Foreign))
}

/// The text of the marker file.
fn marker_text() -> String {
    format!("{MARKER_MAGIC}\nformat {FORMAT_VERSION}\n")
}

/// Reads the marker and checks its format version.
fn check_marker(path: &Path) -> Result<()> {
    let bytes = fs::read(path).map_err(|e| io_error(e, "reading", path))?;
    let not_ours = || {
        Error::new(ErrorKind::IncompatibleStore).detail(format!(
            "{} is not an innkeeper store marker",
            path.display()
        ))
    };
    if !bytes.starts_with(MARKER_MAGIC.as_bytes()) {
        return Err(not_ours());
    }
    let damaged = || corrupted(format!("the store marker {} is damaged", path.display()));
    let text = std::str::from_utf8(&bytes).map_err(|_| damaged())?;
    let mut lines = text.lines();
    if lines.next() != Some(MARKER_MAGIC) {
        return Err(damaged());
    }
    let version: u32 = lines
        .next()
        .and_then(|line| line.strip_prefix("format "))
        .and_then(|v| v.parse().ok())
        .ok_or_else(damaged)?;
    if lines.next().is_some() {
        return Err(damaged());
    }
    check_version(version, &path.display().to_string())
}

fn check_version(version: u32, what: &str) -> Result<()> {
    let ours = u32::from(FORMAT_VERSION);
    if version == ours {
        return Ok(());
    }
    let detail = if version > ours {
        format!(
            "{what}: store format {version} is newer than this build reads ({ours}); \
             open it with a newer innkeeper"
        )
    } else {
        format!("{what}: store format {version} is older than this build reads ({ours})")
    };
    Err(Error::new(ErrorKind::IncompatibleStore).detail(detail))
}

/// Snapshot files present, newest first.
fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(e, "listing", dir)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(e, "listing", dir))?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(SNAPSHOT_PREFIX)) else {
            continue;
        };
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if let Some(zxid) = u64::from_str_radix(hex, 16)
            .ok()
            .and_then(|z| i64::try_from(z).ok())
        {
            found.push((zxid, entry.path()));
        }
    }
    found.sort_by_key(|(zxid, _)| std::cmp::Reverse(*zxid));
    Ok(found)
}

/// Deletes what interrupted atomic writes left behind.
fn remove_tmp_files(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(e, "listing", dir)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(e, "listing", dir))?;
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| io_error(e, "removing", &path))?;
        }
    }
    Ok(())
}

/// Checks the paths a txn names, so a damaged log entry is reported
/// rather than applied.
fn txn_paths_valid(op: &TxnOp) -> bool {
    let ok = |p: &str| path::check(p).is_ok();
    match op {
        TxnOp::CreateSession { .. } | TxnOp::SessionTimeout { .. } => true,
        TxnOp::CloseSession { ephemerals, .. } => ephemerals.iter().all(|p| ok(p)),
        TxnOp::Create(create) => ok(&create.path),
        TxnOp::Delete { path }
        | TxnOp::SetData { path, .. }
        | TxnOp::SetAcl { path, .. }
        | TxnOp::Check { path } => ok(path),
        TxnOp::Multi(ops) => ops.iter().all(txn_paths_valid),
    }
}

/// The highest session id a txn creates.
fn created_session(op: &TxnOp) -> Option<i64> {
    match op {
        TxnOp::CreateSession { session_id, .. } => Some(*session_id),
        _ => None,
    }
}

/// What opening a store found.
pub(crate) struct Recovered {
    /// The state after the last txn on disk; sessions have fresh deadlines.
    pub state: State,
    /// The largest session id ever handed out (closed ones included).
    pub session_id_high: i64,
    /// CRC of the record of the last txn replayed (0: none replayed).
    last_txn_crc: u32,
    /// CRC of the record replayed at the high-water zxid, if replayed.
    crc_at_mark: Option<u32>,
}

/// Mutable bookkeeping of the store.
#[derive(Debug, Default)]
struct Status {
    /// A write failed: the log must be reopened and cleaned before the next.
    broken: Option<Error>,
    closed: bool,
    /// Batches written so far (numbers the fault countdown).
    batches: u64,
    /// Recoveries still to fail (fault injection).
    failing_recoveries_left: u32,
    txns_since_snapshot: u64,
    log_bytes_since_snapshot: u64,
    snapshot_in_flight: bool,
    last_snapshot_zxid: i64,
    /// Size of the newest snapshot file.
    last_snapshot_bytes: u64,
    session_id_high: i64,
    /// Written to the log but not yet flushed (periodic mode).
    dirty: bool,
    /// zxid of the last txn persisted (the engine applied it).
    applied_zxid: i64,
    /// CRC of that txn's record (0: unknown), recorded in the high-water mark.
    applied_txn_crc: u32,
}

/// What the background threads share with the store.
struct Shared {
    layout: Layout,
    options: StoreOptions,
    log: RwLock<Option<Log>>,
    status: Mutex<Status>,
    stop: Mutex<bool>,
    wake: Condvar,
    /// The periodic mode's pending log (`pending.rs`): batches are in the
    /// OS before the engine applies them.
    pending: Mutex<Option<PendingLog>>,
    /// Held (with an exclusive `flock`) while the store is open; `close`
    /// drops it to release the directory.
    lock_file: Mutex<Option<File>>,
    /// The store's files as opened: checked before every write, so none
    /// goes into a file removed or replaced under us.
    files: FileIds,
}

/// A snapshot handed to the snapshot thread: a copy-on-write view of the
/// state, encoded and written there, off the write path.
type SnapshotJob = snapshot::Source;

/// How often and how long `open` retries a contended directory lock.
const LOCK_RETRIES: u32 = 50;
const LOCK_RETRY_WAIT: Duration = Duration::from_millis(20);

/// The store on a directory: a sled txn log plus snapshot files.
pub(crate) struct DiskStore {
    shared: Arc<Shared>,
    /// Batches acknowledged but not written (`unsafe_hold_back_batches`).
    held: Mutex<Vec<(i64, Vec<u8>)>>,
    snapshot_tx: Mutex<Option<Sender<SnapshotJob>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl DiskStore {
    /// Opens the store in `dir`, creating it if the directory is missing or
    /// empty, and recovers its state. With `seed` (a snapshot file's bytes),
    /// creates a new store holding that state instead; the directory must
    /// then hold no store. A seed that does not decode is refused before
    /// anything is created.
    pub(crate) fn open(
        dir: &Path,
        options: StoreOptions,
        seed: Option<&[u8]>,
    ) -> Result<(DiskStore, Recovered)> {
        let seed = match seed {
            Some(bytes) => {
                let decoded =
                    snapshot::decode(bytes).map_err(|e| snapshot_error(e, "the backup"))?;
                Some((bytes, decoded.header.zxid))
            }
            None => None,
        };
        let layout = Layout::new(dir);
        if let DirState::Foreign(name) = inspect(dir)? {
            return Err(Error::new(ErrorKind::IncompatibleStore).detail(format!(
                "{} holds {name:?} but no {MARKER_FILE} file: not an innkeeper store",
                dir.display()
            )));
        }
        let created = !dir.exists();
        fs::create_dir_all(dir).map_err(|e| io_error(e, "creating", dir))?;
        if created {
            if let Some(parent) = dir.parent() {
                sync_dir(parent).map_err(|e| io_error(e, "syncing", parent))?;
            }
        }
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&layout.lock)
            .map_err(|e| io_error(e, "opening", &layout.lock))?;
        // A keeper of this process dropped a moment ago (its last handle
        // released on another thread) may still hold the lock briefly, as
        // sled's own file lock is retried in `Log::open`.
        let mut attempt = 0;
        loop {
            match lock_file.try_lock_exclusive() {
                Ok(()) => break,
                Err(e) if e.kind() == fs2::lock_contended_error().kind() => {
                    if attempt < LOCK_RETRIES {
                        attempt += 1;
                        std::thread::sleep(LOCK_RETRY_WAIT);
                        continue;
                    }
                    return Err(Error::new(ErrorKind::StoreLocked).detail(format!(
                        "{} is open in another keeper (this or another process)",
                        dir.display()
                    )));
                }
                Err(e) => return Err(io_error(e, "locking", &layout.lock)),
            }
        }
        // Under the lock the directory cannot change under us.
        let log = match inspect(dir)? {
            DirState::Foreign(name) => {
                return Err(Error::new(ErrorKind::IncompatibleStore).detail(format!(
                    "{} holds {name:?}: not an innkeeper store",
                    dir.display()
                )))
            }
            DirState::Empty => create(&layout, &options, seed)?,
            DirState::Store if seed.is_some() => {
                return Err(Error::new(ErrorKind::BadArguments).detail(format!(
                    "{} already holds a store; restore into an empty directory",
                    dir.display()
                )))
            }
            DirState::Store => {
                check_marker(&layout.marker)?;
                let log = Log::open(&layout.log, options.cache_bytes)?;
                match log.format()? {
                    None => {
                        return Err(corrupted(format!(
                            "{} has a marker but its log holds no format key \
                             (was log/ replaced or damaged?)",
                            dir.display()
                        )))
                    }
                    Some(v) => check_version(u32::from(v), &layout.log.display().to_string())?,
                }
                replay_pending(&layout.dir, &log)?;
                log
            }
        };
        remove_tmp_files(&layout.snapshots)?;
        // Taken before recovery sets damaged snapshots aside: a snapshot
        // file with a final name was complete, so its zxid was durable.
        let newest_snapshot = list_snapshots(&layout.snapshots)?
            .first()
            .map_or(0, |(zxid, _)| *zxid);
        let mark = guard::read_high_water(dir);
        let (recovered, replayed, base_zxid) = recover(&layout, &log, mark.map(|m| m.0))?;
        let reached = recovered.state.last_zxid;
        guard::check_not_older(
            dir,
            reached,
            newest_snapshot,
            "the newest snapshot holds zxid",
        )?;
        let (high_water, mark_crc) = mark.unwrap_or((0, 0));
        guard::check_not_older(dir, reached, high_water, "the store recorded zxid")?;
        // The same zxid with other content: a failed batch's zxid was
        // reused, and the log went back to before the reuse.
        guard::check_same_txn(dir, high_water, mark_crc, recovered.crc_at_mark)?;
        if reached > high_water {
            guard::write_high_water(dir, reached, recovered.last_txn_crc)?;
        }
        let files = FileIds::capture(&layout.watched_files());
        let last_snapshot_bytes = list_snapshots(&layout.snapshots)?
            .first()
            .and_then(|(_, p)| fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let status = Status {
            last_snapshot_bytes,
            failing_recoveries_left: options.faults.failing_recoveries,
            txns_since_snapshot: replayed,
            last_snapshot_zxid: base_zxid,
            session_id_high: recovered.session_id_high,
            applied_zxid: recovered.state.last_zxid,
            applied_txn_crc: if recovered.crc_at_mark.is_none() && reached == high_water {
                mark_crc
            } else {
                recovered.last_txn_crc
            },
            ..Status::default()
        };
        let pending = match options.durability {
            Durability::Periodic(_) => Some(
                PendingLog::open(&layout.dir).map_err(|e| io_error(e, "opening", &layout.dir))?,
            ),
            Durability::Durable => None,
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(pending),
            layout,
            options,
            log: RwLock::new(Some(log)),
            status: Mutex::new(status),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            lock_file: Mutex::new(Some(lock_file)),
            files,
        });
        let store = DiskStore {
            shared: shared.clone(),
            held: Mutex::new(Vec::new()),
            snapshot_tx: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
        };
        store.start_threads()?;
        Ok((store, recovered))
    }

    fn start_threads(&self) -> Result<()> {
        let spawn_error = |e: std::io::Error| {
            Error::new(ErrorKind::Io).detail(format!("cannot start a store thread: {e}"))
        };
        let (tx, rx) = crossbeam_channel::bounded::<SnapshotJob>(1);
        let shared = self.shared.clone();
        let snapshotter = std::thread::Builder::new()
            .name("innkeeper-snapshot".into())
            .spawn(move || snapshot_loop(&shared, &rx))
            .map_err(spawn_error)?;
        *self.snapshot_tx.lock() = Some(tx);
        self.threads.lock().push(snapshotter);
        if let Durability::Periodic(every) = self.shared.options.durability {
            let shared = self.shared.clone();
            let flusher = std::thread::Builder::new()
                .name("innkeeper-flush".into())
                .spawn(move || flush_loop(&shared, every.max(PERIODIC_INTERVAL_MIN)))
                .map_err(spawn_error)?;
            self.threads.lock().push(flusher);
        }
        Ok(())
    }

    fn stop_threads(&self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        drop(self.snapshot_tx.lock().take());
        for handle in self.threads.lock().drain(..) {
            let _ = handle.join();
        }
    }

    /// Marks the store broken after a failed write and returns the error
    /// the caller sees.
    fn fail(&self, e: Error, txns: &[Txn]) -> Error {
        let (first, last) = (
            txns.first().map_or(0, |t| t.zxid),
            txns.last().map_or(0, |t| t.zxid),
        );
        let kind = match e.kind() {
            ErrorKind::Corrupted | ErrorKind::IncompatibleStore | ErrorKind::Closed => e.kind(),
            _ => ErrorKind::Io,
        };
        let e = Error::new(kind)
            .detail(format!(
                "writing zxids {first:#x}..={last:#x} failed, nothing was applied \
                 (writes resume once the store recovers): {}",
                e.detail_message().unwrap_or("")
            ))
            .cause_of(&e);
        tracing::error!(target: "innkeeper::store", dir = %self.shared.layout.dir.display(), "storage failure: {e}");
        self.shared.status.lock().broken = Some(e.clone());
        e
    }

    /// Writes one batch to the log as one atomic sled batch and, in the
    /// durable mode, makes it durable (with the injected faults, if any).
    fn write_batch(&self, entries: &[(i64, Vec<u8>)], batch_no: u64) -> Result<()> {
        let faults = &self.shared.options.faults;
        if faults.fail_before_write == Some(batch_no) {
            return Err(Error::new(ErrorKind::Io).detail("injected fault before the write"));
        }
        let slot = self.shared.log.read();
        let log = slot
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Io).detail("the log is not open"))?;
        log.append(entries)?;
        if faults.fail_after_write == Some(batch_no) {
            return Err(Error::new(ErrorKind::Io).detail("injected fault after the write"));
        }
        match self.shared.options.durability {
            Durability::Durable => log.make_durable(),
            Durability::Periodic(_) => {
                // In the OS before anyone sees it: a process kill loses
                // nothing acknowledged, only power loss may.
                if let Some(pending) = self.shared.pending.lock().as_mut() {
                    pending
                        .append(entries)
                        .map_err(|e| io_error(e, "appending to", &self.shared.layout.dir))?;
                }
                self.shared.status.lock().dirty = true;
                Ok(())
            }
        }
    }

    /// Brings the disk back in line with memory after a failed write:
    /// reopens the log, removes every entry above the last applied zxid
    /// (the failed batch, if any of it reached the log), and, if the log
    /// lost acknowledged writes (the periodic mode's unflushed tail),
    /// writes a snapshot of `memory`. Only then may a new batch be written.
    /// Without `memory` (dropping the store) it does all but the snapshot,
    /// taking the last zxid persisted for the last applied one.
    fn recover_log(&self, memory: Option<&State>) -> Result<()> {
        let shared = &self.shared;
        // Reopening a removed log would create an empty one.
        shared.files.check()?;
        let mut slot = shared.log.write();
        // Drop the failed handle first: it holds sled's file lock.
        drop(slot.take());
        let applied_zxid = {
            let mut status = shared.status.lock();
            if status.failing_recoveries_left > 0 {
                status.failing_recoveries_left -= 1;
                return Err(Error::new(ErrorKind::Io).detail("injected fault: recovery fails"));
            }
            memory.map_or(status.applied_zxid, |m| m.last_zxid)
        };
        let log = Log::open(&shared.layout.log, shared.options.cache_bytes)?;
        log.remove_above(applied_zxid)?;
        let log_tip = log.bounds()?.map_or(0, |(_, last)| last);
        let snapshot_tip = list_snapshots(&shared.layout.snapshots)?
            .first()
            .map_or(0, |(zxid, _)| *zxid);
        if let Some(memory) = memory {
            if log_tip.max(snapshot_tip) < memory.last_zxid {
                let high = shared.status.lock().session_id_high;
                write_snapshot(&shared.layout, memory, high)?;
            }
        }
        log.make_durable()?;
        *slot = Some(log);
        let mut status = shared.status.lock();
        status.broken = None;
        status.dirty = false;
        Ok(())
    }

    /// Starts a snapshot of `state` if one is due and none is running.
    fn maybe_snapshot(&self, state: &State, time_ms: i64) {
        let high = {
            let mut status = self.shared.status.lock();
            let due = status.txns_since_snapshot >= self.shared.options.snapshot_every_txns
                || status.log_bytes_since_snapshot
                    >= SNAPSHOT_EVERY_LOG_BYTES_MIN.max(status.last_snapshot_bytes);
            if !due || status.snapshot_in_flight || state.last_zxid <= status.last_snapshot_zxid {
                return;
            }
            status.snapshot_in_flight = true;
            status.txns_since_snapshot = 0;
            status.log_bytes_since_snapshot = 0;
            status.session_id_high
        };
        // O(chunks + sessions): the nodes are shared copy-on-write; the
        // snapshot thread encodes them while writes go on.
        let job = snapshot::Source::of(state, high, time_ms);
        let sent = self
            .snapshot_tx
            .lock()
            .as_ref()
            .is_some_and(|tx| tx.try_send(job).is_ok());
        if !sent {
            self.shared.status.lock().snapshot_in_flight = false;
        }
    }
}

/// Creates a new store in `layout.dir` (empty or left by an interrupted
/// creation), seeded with a decoded snapshot (its bytes and zxid) if given. The marker is written last:
/// a directory without it holds nothing anyone was promised.
fn create(layout: &Layout, options: &StoreOptions, seed: Option<(&[u8], i64)>) -> Result<Log> {
    for dir in [&layout.log, &layout.snapshots] {
        match fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e, "removing", dir)),
        }
    }
    fs::create_dir_all(&layout.snapshots)
        .map_err(|e| io_error(e, "creating", &layout.snapshots))?;
    let log = Log::open(&layout.log, options.cache_bytes)?;
    log.set_format(FORMAT_VERSION)?;
    log.make_durable()?;
    if let Some((bytes, zxid)) = seed {
        let path = layout.snapshot_path(zxid);
        write_atomically(&path, bytes).map_err(|e| io_error(e, "writing", &path))?;
    }
    sync_dir(&layout.snapshots).map_err(|e| io_error(e, "syncing", &layout.snapshots))?;
    write_atomically(&layout.marker, marker_text().as_bytes())
        .map_err(|e| io_error(e, "writing", &layout.marker))?;
    Ok(log)
}

/// Turns a snapshot problem into an error naming `what` was read.
pub(crate) fn snapshot_error(e: SnapshotError, what: &str) -> Error {
    let kind = match e {
        SnapshotError::NotASnapshot | SnapshotError::Version(_) => ErrorKind::IncompatibleStore,
        SnapshotError::Damaged(_) => ErrorKind::Corrupted,
        SnapshotError::Io(_) => ErrorKind::Io,
    };
    Error::new(kind).detail(format!("{what}: {e}"))
}

/// Writes a snapshot of `state` into the store's snapshot directory.
fn write_snapshot(layout: &Layout, state: &State, session_id_high: i64) -> Result<()> {
    let source = snapshot::Source::of(state, session_id_high, 0);
    let path = layout.snapshot_path(state.last_zxid);
    write_atomically_with(&path, |out| source.write_to(out))
        .map_err(|e| io_error(e, "writing", &path))
}

/// Loads the newest usable snapshot and replays the log after it.
/// Returns the state, how many txns were replayed, and the base zxid.
/// `mark_zxid` is the high-water zxid, whose record's CRC is noted.
fn recover(layout: &Layout, log: &Log, mark_zxid: Option<i64>) -> Result<(Recovered, u64, i64)> {
    recover_with(layout, log, true, mark_zxid)
}

/// [`recover`], optionally leaving damaged snapshots where they are (a
/// read-only look changes nothing in the directory).
fn recover_with(
    layout: &Layout,
    log: &Log,
    set_aside_damaged: bool,
    mark_zxid: Option<i64>,
) -> Result<(Recovered, u64, i64)> {
    let snapshots = list_snapshots(&layout.snapshots)?;
    let bounds = log.bounds()?;
    let mut problems: Vec<String> = Vec::new();
    let mut damaged: Vec<PathBuf> = Vec::new();
    let mut base = None;
    for (zxid, path) in &snapshots {
        if let Some((first, _)) = bounds {
            if first > zxid.saturating_add(1) {
                problems.push(format!(
                    "the log starts at zxid {first:#x}, after snapshot {zxid:#x}"
                ));
                break;
            }
        }
        // Streamed: the file is never whole in memory.
        let loaded =
            snapshot::decode_file(path).map_err(|e| snapshot_error(e, &path.display().to_string()));
        match loaded {
            Ok(decoded) if decoded.header.zxid == *zxid => {
                base = Some((decoded.state, decoded.header.session_id_high));
                break;
            }
            Ok(decoded) => {
                problems.push(format!(
                    "{} holds zxid {:#x}",
                    path.display(),
                    decoded.header.zxid
                ));
                damaged.push(path.clone());
            }
            Err(e) if e.kind() == ErrorKind::IncompatibleStore => return Err(e),
            Err(e) => {
                problems.push(e.to_string());
                damaged.push(path.clone());
            }
        }
    }
    let (state, session_id_high) = match base {
        Some(base) => base,
        None => {
            // The empty state is a valid base only if the log starts at the
            // very first zxid, or if there never was anything at all.
            let complete_log = bounds.is_some_and(|(first, _)| first <= 1);
            let fresh = bounds.is_none() && snapshots.is_empty();
            if !complete_log && !fresh {
                let why = if problems.is_empty() {
                    "no snapshot and the log does not start at zxid 1".to_string()
                } else {
                    problems.join("; ")
                };
                return Err(corrupted(format!(
                    "{}: no usable snapshot: {why}",
                    layout.dir.display()
                )));
            }
            (State::new(), 0)
        }
    };
    let base_zxid = state.last_zxid;
    let mut state = state;
    let mut high = session_id_high;
    let mut expected = base_zxid.saturating_add(1);
    let mut replayed = 0u64;
    let mut last_txn_crc = 0u32;
    let mut crc_at_mark = None;
    log.for_each_above(base_zxid, |zxid, bytes| {
        last_txn_crc = crc32fast::hash(bytes);
        if Some(zxid) == mark_zxid {
            crc_at_mark = Some(last_txn_crc);
        }
        if zxid != expected {
            return Err(corrupted(format!(
                "the log jumps from zxid {:#x} to {zxid:#x}",
                expected - 1
            )));
        }
        let txn =
            codec::decode_txn(bytes).map_err(|e| corrupted(format!("log entry {zxid:#x}: {e}")))?;
        if txn.zxid != zxid || !txn_paths_valid(&txn.op) {
            return Err(corrupted(format!(
                "log entry {zxid:#x} holds a damaged txn (zxid {:#x})",
                txn.zxid
            )));
        }
        if let Some(id) = created_session(&txn.op) {
            high = high.max(id);
        }
        state
            .apply(&txn)
            .map_err(|problem| corrupted(format!("replaying zxid {zxid:#x}: {problem}")))?;
        expected += 1;
        replayed += 1;
        Ok(())
    })?;
    // The snapshot decoder checked the loaded state and `State::apply`
    // keeps it consistent, so release builds skip the full O(n) check
    // (seconds at a million nodes); debug builds (the tests) still run it.
    if cfg!(debug_assertions) {
        state.check_invariants().map_err(|problem| {
            corrupted(format!(
                "{}: the recovered state is inconsistent: {problem}",
                layout.dir.display()
            ))
        })?;
    }
    if let Some(max_id) = state.sessions.ids().last() {
        high = high.max(*max_id);
    }
    // Recovery succeeded without them: set damaged snapshots aside so the
    // retention of the two newest counts only good ones. Say so loudly: the
    // state is complete (the log covered it), but the disk lost a file.
    if !damaged.is_empty() && set_aside_damaged {
        eprintln!(
            "innkeeper: WARNING: {}: recovered from an older snapshot plus the log; \
             damaged snapshot(s) set aside as *{DAMAGED_SUFFIX}: {}",
            layout.dir.display(),
            problems.join("; ")
        );
    }
    for path in damaged.into_iter().filter(|_| set_aside_damaged) {
        let mut aside = path.clone().into_os_string();
        aside.push(DAMAGED_SUFFIX);
        fs::rename(&path, &aside).map_err(|e| io_error(e, "renaming", &path))?;
    }
    Ok((
        Recovered {
            state,
            session_id_high: high,
            last_txn_crc,
            crc_at_mark,
        },
        replayed,
        base_zxid,
    ))
}

impl Store for DiskStore {
    fn persist(&self, txns: &[Txn], state_before: &State) -> Result<()> {
        let batch_no = {
            let mut status = self.shared.status.lock();
            if status.closed {
                return Err(Error::new(ErrorKind::Closed));
            }
            if let Err(e) = self.shared.files.check() {
                drop(status);
                return Err(self.fail(e, txns));
            }
            if status.broken.is_some() {
                drop(status);
                self.recover_log(Some(state_before))
                    .map_err(|e| self.fail(e, txns))?;
                status = self.shared.status.lock();
            }
            status.batches += 1;
            status.batches
        };
        let entries: Vec<(i64, Vec<u8>)> = txns
            .iter()
            .map(|txn| (txn.zxid, codec::encode(&Record::Txn(Cow::Borrowed(txn)))))
            .collect();
        let started = std::time::Instant::now();
        let hold_back = u64::from(self.shared.options.faults.unsafe_hold_back_batches);
        let written = if hold_back > 0 {
            let mut held = self.held.lock();
            held.extend(entries.iter().cloned());
            if batch_no % hold_back == 0 {
                let all = std::mem::take(&mut *held);
                self.write_batch(&all, batch_no)
            } else {
                Ok(())
            }
        } else {
            self.write_batch(&entries, batch_no)
        };
        crate::metrics::STORE.record_batch(txns.len(), started.elapsed());
        if let Err(e) = written {
            let e = self.fail(e, txns);
            // Recover at once if the disk lets us: the failed batch is then
            // gone for good, even if the process dies before its next write.
            let _ = self.recover_log(Some(state_before));
            return Err(e);
        }
        {
            let mut status = self.shared.status.lock();
            for txn in txns {
                if let Some(id) = created_session(&txn.op) {
                    status.session_id_high = status.session_id_high.max(id);
                }
            }
            status.applied_zxid = txns.last().map_or(status.applied_zxid, |t| t.zxid);
            if let Some((_, bytes)) = entries.last() {
                status.applied_txn_crc = crc32fast::hash(bytes);
            }
            status.txns_since_snapshot += txns.len() as u64;
            status.log_bytes_since_snapshot +=
                entries.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        }
        let time_ms = txns.first().map_or(0, |t| t.time_ms);
        self.maybe_snapshot(state_before, time_ms);
        Ok(())
    }

    fn flush(&self, memory: &State) -> Result<()> {
        let broken = {
            let status = self.shared.status.lock();
            if status.closed {
                return Err(Error::new(ErrorKind::Closed));
            }
            status.broken.is_some()
        };
        self.shared.files.check()?;
        if broken {
            return self.recover_log(Some(memory));
        }
        let slot = self.shared.log.read();
        match slot.as_ref() {
            Some(log) => {
                self.shared.status.lock().dirty = false;
                durable_with_pending(&self.shared, log).inspect_err(|e| {
                    self.shared.status.lock().broken = Some(e.clone());
                })
            }
            None => Err(Error::new(ErrorKind::Io).detail("no log")),
        }
    }

    fn close(&self, memory: &State) -> Result<()> {
        if self.shared.status.lock().closed {
            return Ok(());
        }
        self.stop_threads();
        let held = std::mem::take(&mut *self.held.lock());
        if !held.is_empty() {
            self.write_batch(&held, 0)?;
        }
        let flushed = self.flush(memory);
        if flushed.is_ok() && self.shared.files.check().is_ok() {
            let (zxid, crc) = {
                let status = self.shared.status.lock();
                (status.applied_zxid, status.applied_txn_crc)
            };
            let _ = guard::write_high_water(&self.shared.layout.dir, zxid, crc);
        }
        self.shared.status.lock().closed = true;
        drop(self.shared.log.write().take());
        drop(self.shared.lock_file.lock().take());
        flushed
    }
}

impl Drop for DiskStore {
    /// A keeper dropped without `shutdown`: the same as `close` except that
    /// without the applied state, a log that lost acknowledged periodic
    /// writes cannot be repaired by a snapshot (the next open recovers
    /// what the log and snapshots hold).
    fn drop(&mut self) {
        self.stop_threads();
        if self.shared.status.lock().closed {
            return;
        }
        let broken = self.shared.status.lock().broken.is_some();
        if broken {
            let _ = self.recover_log(None);
        }
        if let Some(log) = self.shared.log.write().take() {
            let durable =
                log.make_durable().is_ok() && !broken && self.shared.files.check().is_ok();
            if durable {
                let (zxid, crc) = {
                    let status = self.shared.status.lock();
                    (status.applied_zxid, status.applied_txn_crc)
                };
                let _ = guard::write_high_water(&self.shared.layout.dir, zxid, crc);
            }
        }
    }
}

/// The periodic mode's flusher: every `every`, makes the log durable if
/// anything was written.
fn flush_loop(shared: &Shared, every: Duration) {
    loop {
        {
            let mut stop = shared.stop.lock();
            if !*stop {
                shared.wake.wait_for(&mut stop, every);
            }
            if *stop {
                return;
            }
        }
        {
            let mut status = shared.status.lock();
            if !status.dirty || status.broken.is_some() {
                continue;
            }
            status.dirty = false;
        }
        let slot = shared.log.read();
        if let Some(log) = slot.as_ref() {
            if let Err(e) = durable_with_pending(shared, log) {
                tracing::error!(target: "innkeeper::store", "storage failure: periodic flush: {e}");
                shared.status.lock().broken = Some(e);
            }
        }
    }
}

/// Makes the log durable and then drops the part of the pending log that
/// the flush covered (moved aside before it, so every batch in it was in
/// sled's buffers when the flush began).
fn durable_with_pending(shared: &Shared, log: &Log) -> Result<()> {
    let dir = &shared.layout.dir;
    if let Some(pending) = shared.pending.lock().as_mut() {
        pending
            .rotate()
            .map_err(|e| io_error(e, "rotating the pending log in", dir))?;
    }
    log.make_durable()?;
    if shared.pending.lock().is_some() {
        pending::retire_old(dir).map_err(|e| io_error(e, "removing the pending log in", dir))?;
    }
    Ok(())
}

/// Opening a store: appends to the log what the periodic mode's pending
/// log holds beyond it (batches a killed process had acknowledged), makes
/// it durable and removes the pending files.
fn replay_pending(dir: &Path, log: &Log) -> Result<()> {
    let entries = pending::read(dir).map_err(|e| io_error(e, "reading the pending log in", dir))?;
    if entries.is_empty() {
        return pending::remove(dir).map_err(|e| io_error(e, "removing the pending log in", dir));
    }
    let last = log.bounds()?.map(|(_, last)| last);
    let missing = pending::continuation(entries, last);
    if !missing.is_empty() {
        log.append(&missing)?;
    }
    log.make_durable()?;
    pending::remove(dir).map_err(|e| io_error(e, "removing the pending log in", dir))
}

/// Writes the snapshots `persist` hands over, then retires old snapshots
/// and the log entries only they needed.
fn snapshot_loop(shared: &Shared, jobs: &Receiver<SnapshotJob>) {
    for job in jobs {
        let started = std::time::Instant::now();
        let taken = take_snapshot(shared, &job);
        match &taken {
            Ok(phases) => {
                crate::metrics::STORE.record_snapshot(started.elapsed());
                tracing::info!(
                    target: "innkeeper::store",
                    "snapshot at zxid {:#x} written ({} bytes, {} ms: file {} ms, \
                     dropping {} log chunks {} ms)",
                    job.zxid(),
                    phases.bytes,
                    started.elapsed().as_millis(),
                    phases.file.as_millis(),
                    phases.chunks_removed,
                    phases.truncation.as_millis()
                );
            }
            Err(e) => tracing::error!(
                target: "innkeeper::store",
                "snapshot at zxid {:#x} failed (will retry): {e}",
                job.zxid()
            ),
        }
        let mut status = shared.status.lock();
        status.snapshot_in_flight = false;
        if taken.is_err() {
            // The log still holds everything; try again at the next batch.
            status.txns_since_snapshot = shared.options.snapshot_every_txns;
        }
    }
}

/// What one snapshot took, for the log line.
struct SnapshotPhases {
    bytes: u64,
    /// Making the log durable, encoding and writing the file.
    file: Duration,
    chunks_removed: usize,
    truncation: Duration,
}

fn take_snapshot(shared: &Shared, job: &SnapshotJob) -> Result<SnapshotPhases> {
    let started = std::time::Instant::now();
    // The log up to the snapshot must be durable before the snapshot lets
    // older log entries go (it is already, except in the periodic mode).
    {
        let slot = shared.log.read();
        let log = slot.as_ref().ok_or_else(|| Error::new(ErrorKind::Io))?;
        log.make_durable()?;
    }
    let crash = shared.options.faults.crash_in_snapshot;
    let crash_at = |point: SnapshotCrash| {
        if crash == Some(point) {
            std::process::abort();
        }
    };
    let path = shared.layout.snapshot_path(job.zxid());
    snapshot::write_atomically_staged(
        &path,
        |out| {
            if crash == Some(SnapshotCrash::MidWrite) {
                job.write_to(&mut AbortAfter { out, left: 512 })
            } else {
                job.write_to(out)
            }
        },
        |step| match step {
            Step::Synced => crash_at(SnapshotCrash::BeforeRename),
            Step::Renamed => crash_at(SnapshotCrash::AfterRename),
        },
    )
    .map_err(|e| io_error(e, "writing", &path))?;
    let written = fs::metadata(&path).map_or(0, |m| m.len());
    let file = started.elapsed();
    {
        let mut status = shared.status.lock();
        status.last_snapshot_zxid = job.zxid();
        status.last_snapshot_bytes = written;
    }
    let snapshots = list_snapshots(&shared.layout.snapshots)?;
    for (_, old) in snapshots.iter().skip(SNAPSHOTS_KEPT) {
        fs::remove_file(old).map_err(|e| io_error(e, "removing", old))?;
    }
    sync_dir(&shared.layout.snapshots)
        .map_err(|e| io_error(e, "syncing", &shared.layout.snapshots))?;
    crash_at(SnapshotCrash::BeforeLogTruncation);
    let truncating = std::time::Instant::now();
    let mut chunks_removed = 0;
    if snapshots.len() >= SNAPSHOTS_KEPT {
        if let Some((oldest_kept, _)) = snapshots.get(SNAPSHOTS_KEPT - 1) {
            let slot = shared.log.read();
            if let Some(log) = slot.as_ref() {
                chunks_removed = log.remove_through(*oldest_kept)?;
            }
        }
    }
    crash_at(SnapshotCrash::AfterLogTruncation);
    Ok(SnapshotPhases {
        bytes: written,
        file,
        chunks_removed,
        truncation: truncating.elapsed(),
    })
}

/// Loads the state of the store in `dir` without writing to it, and checks
/// every record it holds: every snapshot file is decoded in full (CRC
/// frames) and every log entry is decoded, not only those recovery replays.
/// Fails with `StoreLocked` when a keeper (a running server) has the
/// directory open, `BadArguments` when it holds no store.
pub(crate) fn read_only(dir: &Path) -> Result<(Recovered, StoreReport)> {
    let layout = Layout::new(dir);
    match inspect(dir)? {
        DirState::Store => {}
        DirState::Empty => {
            return Err(Error::new(ErrorKind::BadArguments)
                .detail(format!("{} holds no innkeeper store", dir.display())))
        }
        DirState::Foreign(name) => {
            return Err(Error::new(ErrorKind::IncompatibleStore).detail(format!(
                "{} holds {name:?} but no {MARKER_FILE} file: not an innkeeper store",
                dir.display()
            )))
        }
    }
    check_marker(&layout.marker)?;
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&layout.lock)
        .map_err(|e| io_error(e, "opening", &layout.lock))?;
    match lock_file.try_lock_exclusive() {
        Ok(()) => {}
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => {
            return Err(Error::new(ErrorKind::StoreLocked).detail(format!(
                "{} is held by a running server (or another keeper): stop it, \
                 or ask the server instead of reading its directory",
                dir.display()
            )))
        }
        Err(e) => return Err(io_error(e, "locking", &layout.lock)),
    }
    // A small cache: this is one pass over the log.
    let log = Log::open(&layout.log, 16 << 20)?;
    match log.format()? {
        None => {
            return Err(corrupted(format!(
                "{} has a marker but its log holds no format key",
                dir.display()
            )))
        }
        Some(v) => check_version(u32::from(v), &layout.log.display().to_string())?,
    }
    let (recovered, _, _) = recover_with(&layout, &log, false, None)?;
    recovered.state.check_invariants().map_err(|problem| {
        corrupted(format!(
            "{}: the recovered state is inconsistent: {problem}",
            dir.display()
        ))
    })?;
    let mut report = StoreReport {
        last_zxid: recovered.state.last_zxid,
        node_count: recovered.state.tree.len(),
        session_count: recovered.state.sessions.len(),
        log_bytes: dir_bytes(&layout.log),
        ..StoreReport::default()
    };
    if let Some((first, last)) = log.bounds()? {
        report.log_first_zxid = first;
        report.log_last_zxid = last;
    }
    log.for_each_above(i64::MIN, |zxid, bytes| {
        match codec::decode_txn(bytes) {
            Ok(txn) if txn.zxid == zxid && txn_paths_valid(&txn.op) => report.log_records += 1,
            Ok(txn) => report.problems.push(format!(
                "log entry {zxid:#x} holds a damaged txn (zxid {:#x})",
                txn.zxid
            )),
            Err(e) => report.problems.push(format!("log entry {zxid:#x}: {e}")),
        }
        Ok(())
    })?;
    for (zxid, path) in list_snapshots(&layout.snapshots)? {
        let bytes = fs::read(&path).map_err(|e| io_error(e, "reading", &path))?;
        let ok = match snapshot::decode(&bytes) {
            Ok(decoded) if decoded.header.zxid == zxid => true,
            Ok(decoded) => {
                report.problems.push(format!(
                    "{} holds zxid {:#x}",
                    path.display(),
                    decoded.header.zxid
                ));
                false
            }
            Err(e) => {
                report
                    .problems
                    .push(snapshot_error(e, &path.display().to_string()).to_string());
                false
            }
        };
        report.snapshots.push(SnapshotFile {
            path,
            zxid,
            bytes: bytes.len() as u64,
            ok,
        });
    }
    drop(log);
    drop(lock_file);
    Ok((recovered, report))
}

/// Total size of the files under `dir` (0 if it cannot be read).
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(std::result::Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A writer that passes `left` bytes on, then flushes them and aborts the
/// process: a crash in the middle of a snapshot file (fault injection).
struct AbortAfter<'a> {
    out: &'a mut dyn Write,
    left: usize,
}

impl Write for AbortAfter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() >= self.left {
            self.out.write_all(&buf[..self.left])?;
            self.out.flush()?;
            std::process::abort();
        }
        self.left -= buf.len();
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
