//! The txn log on sled: the only file that names sled.
//!
//! Everything lives in sled's default tree, told apart by a one-byte key
//! prefix (see `README.md` beside this file):
//!
//! | key | value |
//! |---|---|
//! | `b'L'` ++ first zxid (u64 BE) ++ chunk index (u32 BE) ++ chunk count (u32 BE) | one chunk of a log entry: the `group` framing of one batch's txn records |
//! | `b"Mformat"` | one byte: the store format version |
//!
//! Each batch is one log entry (`group.rs`), keyed by its first zxid and
//! cut into chunks of at most [`LOG_CHUNK_BYTES`], all written in one sled
//! batch. Small values keep every sled page far below
//! sled's "blob" threshold, so sled never writes a value to a separate blob
//! file: sled 0.34.7 neither fsyncs blob files nor survives a failed blob
//! write (a full disk there leaks an IO-buffer writer and every later
//! flush waits forever).
//!
//! Every call into sled is wrapped in `catch_unwind`: sled 0.34.7 has been
//! seen to panic on damaged files (its issues 1387, 1527, 1533), and a
//! panic there is reported as `Corrupted`, never passed on to the caller.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::store::group;
use crate::store::snapshot::sync_dir;

/// Key prefix of log entries.
const LOG_PREFIX: u8 = b'L';
/// Key of the format-version byte.
const FORMAT_KEY: &[u8] = b"Mformat";
/// Bytes of a log key: prefix, zxid, chunk index, chunk count.
const LOG_KEY_BYTES: usize = 17;
/// The largest value stored under one log key.
pub(crate) const LOG_CHUNK_BYTES: usize = 2048;
/// sled's segment size, pinned (its default) because its blob threshold
/// derives from it: a page larger than a quarter segment becomes a blob.
const SLED_SEGMENT_BYTES: usize = 512 * 1024;
/// Items a sled 0.34.7 leaf holds before it splits (its `should_split`),
/// plus one being inserted.
const SLED_LEAF_ITEMS_MAX: usize = 17;
/// Bytes sled adds per item of a leaf, generously (key, lengths, header).
const SLED_ITEM_OVERHEAD_BYTES: usize = 64;
// A full leaf of chunks stays under half the blob threshold.
const _: () = assert!(
    SLED_LEAF_ITEMS_MAX * (LOG_CHUNK_BYTES + LOG_KEY_BYTES + SLED_ITEM_OVERHEAD_BYTES) * 2
        <= SLED_SEGMENT_BYTES / 4
);
/// Log chunks removed per sled batch when the log is truncated behind a
/// snapshot (each batch is atomic; a crash between batches leaves a log
/// that still starts below the snapshot, which recovery skips). sled
/// applies a batch under its exclusive write lock, so every batch stalls
/// the writers for its length: 10,000 keys held them ~90 ms, 256 ~2 ms.
const TRUNCATE_BATCH_KEYS: usize = 256;
/// How often and how long an open retries sled's file lock, which a
/// just-dropped handle of this process may hold for a moment while
/// sled's background threads wind down.
const OPEN_LOCK_RETRIES: u32 = 50;
const OPEN_LOCK_RETRY_WAIT: Duration = Duration::from_millis(20);

/// Name prefix and suffix of a snapshot sled is still writing. sled 0.34.7
/// writes `snap.<lsn>.generating`, fsyncs it and renames it, but when it
/// looks for its newest snapshot it skips only `.in___motion` files: after
/// a crash in between, it takes the partial file for the newest snapshot
/// and refuses to open. Such a file is removed before sled opens.
const SLED_SNAPSHOT_PREFIX: &str = "snap.";
const SLED_PARTIAL_SNAPSHOT_SUFFIX: &str = ".generating";

/// sled's own data file inside its directory; fsynced after every flush.
const SLED_DATA_FILE: &str = "db";
/// sled's directory of blob files (values too large for a segment). The
/// chunking above keeps it empty; any file found there is fsynced anyway.
const SLED_BLOB_DIR: &str = "blobs";

/// The key of chunk `idx` of `count` of the entry for `zxid`.
fn log_key(zxid: i64, idx: u32, count: u32) -> Result<[u8; LOG_KEY_BYTES]> {
    let zxid = u64::try_from(zxid).map_err(|_| {
        Error::new(ErrorKind::SystemError).detail(format!("negative zxid {zxid} for the log"))
    })?;
    let mut key = [0u8; LOG_KEY_BYTES];
    key[0] = LOG_PREFIX;
    key[1..9].copy_from_slice(&zxid.to_be_bytes());
    key[9..13].copy_from_slice(&idx.to_be_bytes());
    key[13..17].copy_from_slice(&count.to_be_bytes());
    Ok(key)
}

/// The first key of `zxid`'s entry (and the end of the range before it).
fn entry_start(zxid: i64) -> Result<[u8; LOG_KEY_BYTES]> {
    log_key(zxid, 0, 0)
}

/// One parsed log key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkKey {
    zxid: i64,
    idx: u32,
    count: u32,
}

/// Parses a log key, or reports it `Corrupted`.
fn parse_key(key: &[u8]) -> Result<ChunkKey> {
    let malformed =
        || Error::new(ErrorKind::Corrupted).detail(format!("log key {key:02x?} is malformed"));
    if key.len() != LOG_KEY_BYTES || key[0] != LOG_PREFIX {
        return Err(malformed());
    }
    let word = |range: std::ops::Range<usize>| key.get(range).ok_or_else(malformed);
    let zxid = u64::from_be_bytes(word(1..9)?.try_into().map_err(|_| malformed())?);
    let idx = u32::from_be_bytes(word(9..13)?.try_into().map_err(|_| malformed())?);
    let count = u32::from_be_bytes(word(13..17)?.try_into().map_err(|_| malformed())?);
    let zxid = i64::try_from(zxid).map_err(|_| malformed())?;
    if count == 0 || idx >= count {
        return Err(malformed());
    }
    Ok(ChunkKey { zxid, idx, count })
}

/// Maps a sled error to ours, saying what was being done.
fn from_sled(e: ::sled::Error, doing: &str) -> Error {
    let kind = match &e {
        ::sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            ErrorKind::StoreLocked
        }
        ::sled::Error::Io(_) => ErrorKind::Io,
        ::sled::Error::Unsupported(_) => ErrorKind::IncompatibleStore,
        ::sled::Error::Corruption { .. }
        | ::sled::Error::ReportableBug(_)
        | ::sled::Error::CollectionNotFound(_) => ErrorKind::Corrupted,
    };
    let error = Error::new(kind).detail(format!("{doing}: {e}"));
    match e {
        ::sled::Error::Io(io) => error.caused_by(io),
        _ => error,
    }
}

/// Runs a sled call, turning a panic into a `Corrupted` error.
fn guarded<T>(doing: &str, f: impl FnOnce() -> std::result::Result<T, ::sled::Error>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(from_sled(e, doing)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(Error::new(ErrorKind::Corrupted)
                .detail(format!("{doing}: the storage engine panicked ({message})")))
        }
    }
}

fn io_error(e: std::io::Error, doing: &str, path: &Path) -> Error {
    let detail = format!("{doing} {}: {e}", path.display());
    Error::new(ErrorKind::Io).detail(detail).caused_by(e)
}

/// Removes snapshots sled did not finish writing (see
/// [`SLED_PARTIAL_SNAPSHOT_SUFFIX`]). Dropping one is the same as a crash
/// just before sled started it: the previous snapshot and the log are
/// still there.
fn remove_partial_snapshots(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| io_error(e, "listing", dir))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(e, "listing", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SLED_SNAPSHOT_PREFIX) && name.ends_with(SLED_PARTIAL_SNAPSHOT_SUFFIX) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| io_error(e, "removing", &path))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir).map_err(|e| io_error(e, "syncing", dir))?;
    }
    Ok(())
}

/// The txn log: one sled database in its own directory.
pub(crate) struct Log {
    /// Always `Some` until the log is dropped.
    db: Option<::sled::Db>,
    dir: PathBuf,
    /// Our own handle on sled's data file, for `fdatasync`.
    data_file: File,
    /// Files of the blob directory already fsynced.
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl Log {
    fn db(&self) -> Result<&::sled::Db> {
        self.db
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Closed).detail("the log is closed"))
    }

    /// Opens (or creates) the log in `dir` with a page cache of `cache_bytes`.
    pub(crate) fn open(dir: &Path, cache_bytes: u64) -> Result<Log> {
        fs::create_dir_all(dir).map_err(|e| io_error(e, "creating", dir))?;
        remove_partial_snapshots(dir)?;
        let config = ::sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .segment_size(SLED_SEGMENT_BYTES)
            .mode(::sled::Mode::LowSpace);
        let mut attempt = 0;
        let db = loop {
            match guarded("opening the log", || config.open()) {
                Err(e) if e.kind() == ErrorKind::StoreLocked && attempt < OPEN_LOCK_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(OPEN_LOCK_RETRY_WAIT);
                }
                other => break other?,
            }
        };
        let data_path = dir.join(SLED_DATA_FILE);
        let data_file = OpenOptions::new()
            .read(true)
            .open(&data_path)
            .map_err(|e| io_error(e, "opening", &data_path))?;
        let log = Log {
            db: Some(db),
            dir: dir.to_path_buf(),
            data_file,
            synced_blobs: Mutex::new(HashSet::new()),
        };
        // Whatever sled created or recovered becomes durable before we rely on it.
        log.make_durable()?;
        sync_dir(dir).map_err(|e| io_error(e, "syncing", dir))?;
        Ok(log)
    }

    /// The stored format version, if one was written.
    pub(crate) fn format(&self) -> Result<Option<u8>> {
        let db = self.db()?;
        let value = guarded("reading the format key", || db.get(FORMAT_KEY))?;
        match value {
            None => Ok(None),
            Some(v) if v.len() == 1 => Ok(Some(v[0])),
            Some(v) => Err(Error::new(ErrorKind::Corrupted)
                .detail(format!("format key holds {} bytes, not 1", v.len()))),
        }
    }

    /// Stores the format version (a new store).
    pub(crate) fn set_format(&self, version: u8) -> Result<()> {
        let db = self.db()?;
        guarded("writing the format key", || {
            db.insert(FORMAT_KEY, &[version][..])
        })?;
        Ok(())
    }

    /// Appends txns (zxid, record bytes), zxids rising, as one log entry
    /// in one atomic sled batch: after a crash either all of them are
    /// found or none.
    pub(crate) fn append(&self, entries: &[(i64, Vec<u8>)]) -> Result<()> {
        let (first, last) = match (entries.first(), entries.last()) {
            (Some(f), Some(l)) => (f.0, l.0),
            _ => return Ok(()),
        };
        let mut batch = ::sled::Batch::default();
        insert_entry(&mut batch, first, &group::encode(entries)?)?;
        let db = self.db()?;
        guarded(&format!("writing zxids {first:#x}..={last:#x}"), || {
            db.apply_batch(batch)
        })
    }

    /// Makes every write so far durable: sled's flush, then what sled's
    /// flush leaves out on Linux (it ends with `sync_file_range`, which
    /// neither flushes the device cache nor the file size): `fdatasync` of
    /// the data file, and `fsync` of new blob files and their directory.
    pub(crate) fn make_durable(&self) -> Result<()> {
        let db = self.db()?;
        guarded("flushing the log", || db.flush())?;
        self.data_file
            .sync_data()
            .map_err(|e| io_error(e, "syncing", &self.dir.join(SLED_DATA_FILE)))?;
        self.sync_blobs()
    }

    fn sync_blobs(&self) -> Result<()> {
        let blob_dir = self.dir.join(SLED_BLOB_DIR);
        let entries = match fs::read_dir(&blob_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(e, "listing", &blob_dir)),
        };
        let mut synced = self.synced_blobs.lock();
        let mut present = HashSet::new();
        let mut changed = false;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(e, "listing", &blob_dir))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                let path = entry.path();
                match File::open(&path) {
                    Ok(file) => file.sync_all().map_err(|e| io_error(e, "syncing", &path))?,
                    // sled removed it meanwhile (a rewrite): nothing to sync.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error(e, "opening", &path)),
                }
                changed = true;
            }
            present.insert(name);
        }
        if changed || present.len() != synced.len() {
            sync_dir(&blob_dir).map_err(|e| io_error(e, "syncing", &blob_dir))?;
        }
        *synced = present;
        Ok(())
    }

    /// The zxids of the first and last txns in the log.
    pub(crate) fn bounds(&self) -> Result<Option<(i64, i64)>> {
        let db = self.db()?;
        let first = guarded("reading the first log entry", || {
            db.scan_prefix([LOG_PREFIX]).next().transpose()
        })?;
        let last = guarded("reading the last log entry", || {
            db.scan_prefix([LOG_PREFIX]).next_back().transpose()
        })?;
        let (Some((first, _)), Some((last, _))) = (first, last) else {
            return Ok(None);
        };
        let first = parse_key(&first)?.zxid;
        let last_entry = parse_key(&last)?.zxid;
        let mut last = None;
        self.for_each_entry(last_entry, Some(last_entry), |start, bytes| {
            last = group::decode(start, bytes)?.last().map(|(z, _)| *z);
            Ok(())
        })?;
        let last = last.ok_or_else(|| {
            Error::new(ErrorKind::Corrupted)
                .detail(format!("log entry {last_entry:#x} vanished while read"))
        })?;
        Ok(Some((first, last)))
    }

    /// The first zxid of the entry that holds `zxid`, if any entry starts
    /// at or below it.
    fn entry_holding(&self, zxid: i64) -> Result<Option<i64>> {
        let db = self.db()?;
        let below = match zxid.checked_add(1) {
            Some(next) => {
                let range = entry_start(0)?.to_vec()..entry_start(next)?.to_vec();
                guarded("reading the log", || {
                    db.range(range).next_back().transpose()
                })
            }
            None => guarded("reading the log", || {
                db.scan_prefix([LOG_PREFIX]).next_back().transpose()
            }),
        }?;
        below
            .map(|(key, _)| parse_key(&key).map(|k| k.zxid))
            .transpose()
    }

    /// Calls `f` with every txn above `zxid` (its entry's chunks put back
    /// together), in zxid order; stops at the first error `f` returns.
    pub(crate) fn for_each_above(
        &self,
        zxid: i64,
        mut f: impl FnMut(i64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let Some(start) = zxid.checked_add(1) else {
            return Ok(());
        };
        let start = start.max(0);
        let from = self.entry_holding(start)?.unwrap_or(start);
        self.for_each_entry(from, None, |first, bytes| {
            for (txn, record) in group::decode(first, bytes)? {
                if txn > zxid {
                    f(txn, record)?;
                }
            }
            Ok(())
        })
    }

    /// Calls `f` with (first zxid, bytes) of every entry from the one
    /// starting at `from` (through the one starting at `through`, if set).
    fn for_each_entry(
        &self,
        from: i64,
        through: Option<i64>,
        mut f: impl FnMut(i64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let db = self.db()?;
        let from = entry_start(from.max(0))?.to_vec();
        let to = match through.and_then(|t| t.checked_add(1)) {
            Some(end) => entry_start(end)?.to_vec(),
            None => vec![LOG_PREFIX + 1],
        };
        let mut iter = guarded("reading the log", || Ok(db.range(from..to)))?;
        let mut entry: Vec<u8> = Vec::new();
        let mut pending: Option<ChunkKey> = None;
        loop {
            let next = guarded("reading the log", || iter.next().transpose())?;
            let Some((key, value)) = next else {
                return match pending {
                    None => Ok(()),
                    Some(open) => Err(Error::new(ErrorKind::Corrupted).detail(format!(
                        "log entry {:#x} ends after chunk {} of {}",
                        open.zxid,
                        open.idx + 1,
                        open.count
                    ))),
                };
            };
            let chunk = parse_key(&key)?;
            let expected_idx = match pending {
                Some(open) if open.zxid == chunk.zxid && open.count == chunk.count => open.idx + 1,
                None => 0,
                Some(open) => {
                    return Err(Error::new(ErrorKind::Corrupted).detail(format!(
                        "log entry {:#x} has {} of {} chunks",
                        open.zxid,
                        open.idx + 1,
                        open.count
                    )))
                }
            };
            if chunk.idx != expected_idx {
                return Err(Error::new(ErrorKind::Corrupted).detail(format!(
                    "log entry {:#x} misses chunk {expected_idx}",
                    chunk.zxid
                )));
            }
            if chunk.idx == 0 {
                entry.clear();
            }
            entry.extend_from_slice(&value);
            if chunk.idx + 1 == chunk.count {
                pending = None;
                f(chunk.zxid, &entry)?;
            } else {
                pending = Some(chunk);
            }
        }
    }

    /// Keys in `[from, to)`, in order, at most `limit` of them.
    fn keys_between(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<::sled::IVec>> {
        let db = self.db()?;
        let mut iter = guarded("reading the log", || {
            Ok(db.range(from.to_vec()..to.to_vec()))
        })?;
        let mut keys = Vec::new();
        while keys.len() < limit {
            let next = guarded("reading the log", || iter.next().transpose())?;
            match next {
                Some((key, _)) => keys.push(key),
                None => break,
            }
        }
        Ok(keys)
    }

    /// The next keys truncation removes from `[from, to)`: about
    /// [`TRUNCATE_BATCH_KEYS`], extended to the last chunk of the entry the
    /// limit falls in.
    fn truncation_batch(&self, from: &[u8], to: &[u8]) -> Result<Vec<::sled::IVec>> {
        let mut keys = self.keys_between(from, to, TRUNCATE_BATCH_KEYS)?;
        if let Some(last) = keys.last() {
            let chunk = parse_key(last)?;
            let rest = chunk.count - 1 - chunk.idx;
            if rest > 0 {
                // The smallest key after `last`: `last` with a zero byte appended.
                let after = [&last[..], &[0]].concat();
                keys.extend(self.keys_between(&after, to, rest as usize)?);
            }
        }
        Ok(keys)
    }

    /// Removes every txn above `zxid` in one atomic batch (an entry that
    /// also holds txns at or below it is written again without the rest);
    /// returns how many chunks were removed.
    pub(crate) fn remove_above(&self, zxid: i64) -> Result<usize> {
        let Some(start) = zxid.checked_add(1) else {
            return Ok(0);
        };
        let start = start.max(0);
        let mut from = start;
        let mut shortened = None;
        if let Some(holder) = self.entry_holding(start)?.filter(|h| *h < start) {
            self.for_each_entry(holder, Some(holder), |first, bytes| {
                let txns = group::decode(first, bytes)?;
                let before = txns.len();
                let kept: Vec<(i64, Vec<u8>)> = txns
                    .into_iter()
                    .filter(|(txn, _)| *txn <= zxid)
                    .map(|(txn, record)| (txn, record.to_vec()))
                    .collect();
                if kept.len() < before {
                    shortened = Some(group::encode(&kept)?);
                }
                Ok(())
            })?;
            if shortened.is_some() {
                from = holder;
            }
        }
        let keys = self.keys_between(&entry_start(from)?, &[LOG_PREFIX + 1], usize::MAX)?;
        if keys.is_empty() {
            return Ok(0);
        }
        // A batch is a map from key to its last write: the shortened
        // entry's chunks overwrite the removals of the same keys.
        let mut batch = ::sled::Batch::default();
        for key in &keys {
            batch.remove(key.clone());
        }
        if let Some(bytes) = &shortened {
            insert_entry(&mut batch, from, bytes)?;
        }
        let db = self.db()?;
        guarded(&format!("removing log entries above {zxid:#x}"), || {
            db.apply_batch(batch)
        })?;
        Ok(keys.len())
    }

    /// Removes the entries before the one holding `zxid + 1` (or before
    /// the last entry), oldest first, in batches of about
    /// [`TRUNCATE_BATCH_KEYS`] chunks, each ending at an entry's last chunk
    /// so that a crash between batches leaves only whole entries (which
    /// `inspect` still reads). The entry kept may hold txns at or below
    /// `zxid`: recovery skips txns at or below its snapshot. Returns how
    /// many chunks were removed.
    pub(crate) fn remove_through(&self, zxid: i64) -> Result<usize> {
        let Some(end) = zxid.checked_add(1) else {
            return Ok(0);
        };
        let Some(keep_from) = self.entry_holding(end.max(0))? else {
            return Ok(0);
        };
        let (from, to) = (entry_start(0)?, entry_start(keep_from)?);
        let db = self.db()?;
        let mut removed = 0;
        loop {
            let keys = self.truncation_batch(&from, &to)?;
            if keys.is_empty() {
                return Ok(removed);
            }
            let mut batch = ::sled::Batch::default();
            for key in &keys {
                batch.remove(key.clone());
            }
            guarded(&format!("truncating the log through {zxid:#x}"), || {
                db.apply_batch(batch)
            })?;
            removed += keys.len();
        }
    }
}

/// Adds the chunks of the entry `bytes` starting at `first` to `batch`.
fn insert_entry(batch: &mut ::sled::Batch, first: i64, bytes: &[u8]) -> Result<()> {
    let count = bytes.len().div_ceil(LOG_CHUNK_BYTES).max(1);
    let count = u32::try_from(count).map_err(|_| {
        Error::new(ErrorKind::SystemError).detail(format!(
            "log entry {first:#x} of {} bytes is too large",
            bytes.len()
        ))
    })?;
    if bytes.is_empty() {
        batch.insert(&log_key(first, 0, 1)?[..], &[][..]);
    }
    for (idx, chunk) in (0..count).zip(bytes.chunks(LOG_CHUNK_BYTES)) {
        batch.insert(&log_key(first, idx, count)?[..], chunk);
    }
    Ok(())
}

impl Drop for Log {
    fn drop(&mut self) {
        // sled flushes when its last handle drops; that flush may meet the
        // same failure that got us here, and must not take the process down.
        if let Some(db) = self.db.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_zxid_then_chunk() {
        let order = [
            (0i64, 0u32, 1u32),
            (1, 0, 2),
            (1, 1, 2),
            (255, 0, 1),
            (256, 0, 1),
            (i64::MAX, 0, 1),
        ];
        let keys: Vec<_> = order
            .iter()
            .map(|(z, i, c)| log_key(*z, *i, *c).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (key, (zxid, idx, count)) in keys.iter().zip(order) {
            assert_eq!(parse_key(key).unwrap(), ChunkKey { zxid, idx, count });
        }
        assert!(log_key(-1, 0, 1).is_err());
        assert!(parse_key(b"Mformat").is_err());
        assert!(
            parse_key(&log_key(1, 2, 2).unwrap()).is_err(),
            "index past the count"
        );
        let mut negative = log_key(1, 0, 1).unwrap();
        negative[1] = 0x80;
        assert!(parse_key(&negative).is_err());
    }

    #[test]
    fn large_entries_are_chunked_and_put_back_together() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), 1 << 20).unwrap();
        let big: Vec<u8> = (0..LOG_CHUNK_BYTES * 3 + 5).map(|b| b as u8).collect();
        let entries = vec![
            (1, Vec::new()),
            (2, big.clone()),
            (3, vec![7; LOG_CHUNK_BYTES]),
        ];
        log.append(&entries).unwrap();
        let mut seen = Vec::new();
        log.for_each_above(0, |z, v| {
            seen.push((z, v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, entries);
        // No value went to a blob file.
        log.make_durable().unwrap();
        let blobs = fs::read_dir(dir.path().join(SLED_BLOB_DIR)).map_or(0, |d| d.count());
        assert_eq!(blobs, 0);
    }

    #[test]
    fn entries_survive_reopen_and_remove_by_range() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(log.format().unwrap(), None);
            log.set_format(1).unwrap();
            // Ten batches of three txns: entries start at 1, 4, ..., 28.
            for first in (1..=30).step_by(3) {
                let entries: Vec<(i64, Vec<u8>)> =
                    (first..first + 3).map(|z| (z, vec![z as u8])).collect();
                log.append(&entries).unwrap();
            }
            log.make_durable().unwrap();
        }
        let log = Log::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(log.format().unwrap(), Some(1));
        assert_eq!(log.bounds().unwrap(), Some((1, 30)));
        let above = |log: &Log, zxid| {
            let mut seen = Vec::new();
            log.for_each_above(zxid, |z, v| {
                assert_eq!(v, [z as u8]);
                seen.push(z);
                Ok(())
            })
            .unwrap();
            seen
        };
        // Reading from the middle of an entry skips its earlier txns.
        assert_eq!(above(&log, 26), vec![27, 28, 29, 30]);
        // 25 ends inside the entry 25..=27: it is written again as 25 alone.
        assert_eq!(log.remove_above(25).unwrap(), 2);
        assert_eq!(log.bounds().unwrap(), Some((1, 25)));
        assert_eq!(above(&log, 0), (1..=25).collect::<Vec<_>>());
        // Through 10: the entries 1, 4 and 7 go; 10..=12 holds 11 and stays.
        assert_eq!(log.remove_through(10).unwrap(), 3);
        assert_eq!(log.bounds().unwrap(), Some((10, 25)));
        assert_eq!(above(&log, 0), (10..=25).collect::<Vec<_>>());
        assert_eq!(above(&log, 10), (11..=25).collect::<Vec<_>>());
        // Through 12, the last txn of an entry: that entry goes too.
        assert_eq!(log.remove_through(12).unwrap(), 1);
        assert_eq!(log.bounds().unwrap(), Some((13, 25)));
        // Removing above an entry's end rewrites nothing.
        assert_eq!(log.remove_above(24).unwrap(), 1);
        assert_eq!(log.remove_above(24).unwrap(), 0);
        assert_eq!(above(&log, 0), (13..=24).collect::<Vec<_>>());
        assert_eq!(log.remove_above(0).unwrap(), 4);
        assert_eq!(log.bounds().unwrap(), None);
    }

    #[test]
    fn truncation_removes_whole_entries_of_many_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), 1 << 20).unwrap();
        // 100 entries of 3 chunks each: batches of 256 keys would end
        // inside an entry unless extended to its last chunk.
        let record = vec![9u8; LOG_CHUNK_BYTES * 2];
        for z in 1..=100 {
            log.append(&[(z, record.clone())]).unwrap();
        }
        let batch = log
            .truncation_batch(&entry_start(0).unwrap(), &[LOG_PREFIX + 1])
            .unwrap();
        assert_eq!(batch.len(), 258, "86 whole entries");
        let last = parse_key(batch.last().unwrap()).unwrap();
        assert_eq!((last.zxid, last.idx, last.count), (86, 2, 3));
        assert_eq!(log.remove_through(99).unwrap(), 99 * 3);
        assert_eq!(log.bounds().unwrap(), Some((100, 100)));
        let mut seen = Vec::new();
        log.for_each_above(i64::MIN, |z, v| {
            assert_eq!(v, &record[..]);
            seen.push(z);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![100]);
    }

    #[test]
    fn a_snapshot_sled_did_not_finish_does_not_block_the_open() {
        // Reproduces a crash inside sled's snapshot write, found by tests/crash.rs.
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), 1 << 20).unwrap();
            log.append(&[(1, vec![1])]).unwrap();
            log.make_durable().unwrap();
        }
        fs::write(dir.path().join("snap.FFFFFFFFFFFFFFFF.generating"), b"").unwrap();
        let log = Log::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(log.bounds().unwrap(), Some((1, 1)));
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _log = Log::open(dir.path(), 1 << 20).unwrap();
        // Bypass the retry loop: one attempt at sled's lock.
        let second = guarded("opening", || ::sled::Config::new().path(dir.path()).open());
        assert_eq!(second.err().map(|e| e.kind()), Some(ErrorKind::StoreLocked));
    }
}
