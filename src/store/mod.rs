//! Persistence of applied txns. The engine calls [`Store::persist`] with a
//! batch of prepared txns before applying them; when it returns `Ok`, the
//! batch is as durable as the store's [`Durability`] promises.
//!
//! The on-disk format, its invariants and what it assumes of sled and the
//! media are described in `README.md` beside this file.
//!
//! - `codec`: the one encode/decode pair for every stored record;
//! - `sled`: the txn log (the only code that names sled);
//! - `snapshot`: snapshot (and backup) files;
//! - `blocks`: the nodes of a snapshot, many to a frame, encoded by hand
//!   with `varint`'s LEB128 integers;
//! - `disk`: the directory layout, recovery, the write path and its
//!   failure handling, background flush and snapshot threads.

use std::time::Duration;

use crate::error::Result;
use crate::state::State;
use crate::txn::Txn;

pub(crate) mod blocks;
pub(crate) mod codec;
pub(crate) mod disk;
pub(crate) mod group;
pub(crate) mod guard;
pub(crate) mod pending;
pub(crate) mod sled;
pub(crate) mod snapshot;
pub(crate) mod varint;

/// What [`Keeper::inspect_store`](crate::Keeper::inspect_store) found in a
/// store directory: counts, sizes, and every record it could not decode.
#[derive(Debug, Clone, Default)]
pub struct StoreReport {
    /// The zxid of the last txn on disk.
    pub last_zxid: i64,
    /// Nodes in the recovered tree (system nodes included).
    pub node_count: usize,
    /// Sessions in the recovered session table.
    pub session_count: usize,
    /// Bytes under the log directory.
    pub log_bytes: u64,
    /// Entries in the txn log, all decoded and checked.
    pub log_records: u64,
    /// zxid of the first log entry (0 if the log is empty).
    pub log_first_zxid: i64,
    /// zxid of the last log entry (0 if the log is empty).
    pub log_last_zxid: i64,
    /// Snapshot files, newest first.
    pub snapshots: Vec<SnapshotFile>,
    /// Each damaged record or file, one line each; empty when all is well.
    pub problems: Vec<String>,
}

/// One snapshot file of a store.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// Where it is.
    pub path: std::path::PathBuf,
    /// The zxid it holds.
    pub zxid: i64,
    /// Its size.
    pub bytes: u64,
    /// True when it decoded in full with every checksum right.
    pub ok: bool,
}

/// A place txns are written to before they become visible.
pub(crate) trait Store: Send + Sync {
    /// Writes the batch atomically (all txns or none) and, in the durable
    /// mode, makes it durable before returning. On `Err` the engine applies
    /// nothing, and the store makes sure the batch never shows up after a
    /// restart once it accepts its next batch (see `README.md`,
    /// "When a write fails").
    fn persist(&self, txns: &[Txn], state_before: &State) -> Result<()>;

    /// Makes everything persisted so far durable (the periodic mode's
    /// flush, on demand). `memory` is the applied state; a store that is
    /// recovering from a failed write needs it. Called under the engine's
    /// commit lock, like `persist`.
    fn flush(&self, memory: &State) -> Result<()>;

    /// Flushes, stops background work and releases the directory. Later
    /// calls fail with `Closed`. Called under the commit lock.
    fn close(&self, memory: &State) -> Result<()>;
}

/// When an acknowledged write reaches the disk.
///
/// Set with [`KeeperBuilder::durability`](crate::KeeperBuilder::durability);
/// it applies to keepers opened on a directory. An in-memory keeper
/// ([`KeeperBuilder::build`](crate::KeeperBuilder::build)) writes nothing.
///
/// ```
/// use std::time::Duration;
/// use innkeeper::{Durability, Keeper};
///
/// let dir = tempfile::tempdir()?;
/// let keeper = Keeper::builder()
///     .durability(Durability::Periodic(Duration::from_millis(50)))
///     .open(dir.path())?;
/// # keeper.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every write is on disk (flushed and fsynced) before anyone can see
    /// it: no reply, watch event or read exposes a write a crash could
    /// lose. Concurrent writes share one flush (group commit). The default.
    #[default]
    Durable,
    /// Writes are visible at once and flushed by a background thread at
    /// this interval (at least 1 ms), as ZooKeeper with `forceSync=no`:
    /// each batch is handed to the OS (one `write(2)`, no fsync) before
    /// anyone sees it, so a process crash or kill loses nothing
    /// acknowledged. Only power loss or an OS crash may lose the writes of
    /// the last interval (plus the flush time), never part of a write:
    /// what survives is a prefix of the writes in zxid order.
    Periodic(Duration),
}

/// Fault injection for tests of the write path's failure handling: fail
/// the Nth batch written to the log, and keep failing recoveries for a
/// while, as a full disk would. Not part of the stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreFaults {
    /// Fail the batch with this 1-based number before anything is written.
    pub fail_before_write: Option<u64>,
    /// Fail the batch with this 1-based number after its records are in
    /// the log but before they are durable (so the log holds a batch the
    /// engine never applies).
    pub fail_after_write: Option<u64>,
    /// After a failure, fail this many attempts to recover before one succeeds.
    pub failing_recoveries: u32,
    /// Abort the process (as a crash would) at this point of the first
    /// background snapshot that reaches it: the crash test's snapshot
    /// crash points.
    pub crash_in_snapshot: Option<SnapshotCrash>,
    /// A deliberately broken mode, to show the tests catch it: acknowledge
    /// batches before they are written, writing them only every this many
    /// batches (and at a clean close), so a crash loses acknowledged
    /// writes. 0 (the default) is the correct store.
    pub unsafe_hold_back_batches: u32,
}

/// Where [`StoreFaults::crash_in_snapshot`] aborts the process. Not part of
/// the stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotCrash {
    /// Part of the temporary file written.
    MidWrite,
    /// The temporary file complete and synced, not yet renamed.
    BeforeRename,
    /// Renamed to its final name, the directory not yet synced.
    AfterRename,
    /// Older snapshots removed, the log not yet truncated.
    BeforeLogTruncation,
    /// The log truncated up to the older kept snapshot.
    AfterLogTruncation,
}

/// Everything the disk store needs from the builder.
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    pub durability: Durability,
    pub cache_bytes: u64,
    pub snapshot_every_txns: u64,
    pub faults: StoreFaults,
}

/// Default page cache of the log: sled's own default is 1 GiB, too much
/// for an embedded library. The log is append-and-truncate (reads are
/// served from the tree, the log is read only on open), so 4 MiB loads a
/// million nodes as fast as 64 MiB did and keeps ~35 MiB less resident.
pub const CACHE_BYTES_DEFAULT: u64 = 4 * 1024 * 1024;

/// The shortest interval of [`Durability::Periodic`].
pub(crate) const PERIODIC_INTERVAL_MIN: Duration = Duration::from_millis(1);

/// Default number of txns between snapshots.
pub const SNAPSHOT_EVERY_TXNS_DEFAULT: u64 = 100_000;

/// Feeds `bytes` to every decoder of stored data and checks they answer
/// `Ok` or `Err`, never panic: the record decoder (and that a decoded
/// record re-encodes to itself), the txn decoder, the log entry decoder
/// (the first 8 bytes as the entry's zxid) and the txns in the entries it
/// accepts, and the snapshot reader,
/// both on the raw bytes and on frames with valid checksums cut from them
/// (so the fuzzer gets past the CRCs to the frame sequence), alone and
/// after a valid header, and as the body of a node block after a valid
/// header (so it reaches the node decoder and the tree it builds). Returns
/// whether any decoder accepted the input. The fuzz target `store_decode`
/// and a unit test call it. Not part of the stable API.
///
/// # Panics
///
/// Only if a decoded record does not survive re-encoding: a bug.
#[doc(hidden)]
pub fn fuzz_decode(bytes: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(record) = codec::decode(bytes) {
        let again = codec::decode(&codec::encode(&record));
        assert_eq!(
            again.as_ref(),
            Ok(&record),
            "a record must survive re-encoding"
        );
        accepted = true;
    }
    accepted |= codec::decode_txn(bytes).is_ok();
    if let Some((key, entry)) = bytes.split_first_chunk::<8>() {
        if let Ok(txns) = group::decode(i64::from_be_bytes(*key), entry) {
            accepted = true;
            for (_, record) in txns {
                accepted |= codec::decode_txn(record).is_ok();
            }
        }
    }
    accepted |= snapshot::decode(bytes).is_ok();
    accepted |= snapshot::decode(&snapshot::frame_all(bytes)).is_ok();
    for file in snapshot::fuzz_files(bytes) {
        accepted |= snapshot::decode(&file).is_ok();
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_hook_survives_random_input() {
        // The fuzz target's property in plain `cargo test`, seeded.
        let mut state = 0x1234_5678_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let len = (next() % 200) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && !bytes.is_empty() {
                bytes[0] = codec::FORMAT_VERSION;
            }
            fuzz_decode(&bytes);
        }
    }
}
