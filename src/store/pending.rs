//! The periodic mode's pending log: what a process kill must not lose.
//!
//! In the periodic mode sled keeps a batch in its own memory buffers until
//! the next flush, so a killed process lost it although the client had its
//! reply. ZooKeeper with `forceSync=no` loses nothing on a process kill: the
//! write is in the OS before the reply. So every batch is also appended to
//! `pending.log` with one `write(2)` and no fsync before the engine applies
//! it; only power loss can take it away.
//!
//! Frames: `len: u32 LE` (of what follows the checksum), `crc32: u32 LE` of
//! `zxid ++ record`, `zxid: i64 LE`, the record bytes exactly as the log
//! stores them. A torn or damaged frame ends the file.
//!
//! A flush first moves `pending.log` aside to `pending.log.old` (every
//! batch in it is already in sled's buffers), makes sled durable, then
//! deletes the old file. Opening a store appends to sled whatever the two
//! files hold above the log's last zxid, in order and without gaps, makes
//! it durable and removes them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file batches are appended to.
pub(crate) const PENDING_FILE: &str = "pending.log";
/// The file a flush in progress covers.
pub(crate) const PENDING_OLD_FILE: &str = "pending.log.old";

const HEADER_BYTES: usize = 8;

/// The open pending log.
pub(crate) struct PendingLog {
    dir: PathBuf,
    file: File,
    len: u64,
}

impl PendingLog {
    /// Opens (creating) `pending.log` in `dir` for appending.
    pub(crate) fn open(dir: &Path) -> io::Result<PendingLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(PENDING_FILE))?;
        let len = file.metadata()?.len();
        Ok(PendingLog {
            dir: dir.to_path_buf(),
            file,
            len,
        })
    }

    /// Appends one batch with one write; on failure cuts the file back so
    /// no part of the batch stays.
    pub(crate) fn append(&mut self, entries: &[(i64, Vec<u8>)]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(
            entries
                .iter()
                .map(|(_, v)| v.len() + HEADER_BYTES + 8)
                .sum(),
        );
        for (zxid, value) in entries {
            let body_len = u32::try_from(8 + value.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&zxid.to_le_bytes());
            crc.update(value);
            buf.extend_from_slice(&body_len.to_le_bytes());
            buf.extend_from_slice(&crc.finalize().to_le_bytes());
            buf.extend_from_slice(&zxid.to_le_bytes());
            buf.extend_from_slice(value);
        }
        match self.file.write_all(&buf) {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Before a flush: moves the current file aside as `pending.log.old`
    /// and starts a new one, unless an old file is still there (an earlier
    /// flush failed), in which case both stay until a flush succeeds.
    pub(crate) fn rotate(&mut self) -> io::Result<()> {
        let old = self.dir.join(PENDING_OLD_FILE);
        if old.exists() || self.len == 0 {
            return Ok(());
        }
        fs::rename(self.dir.join(PENDING_FILE), &old)?;
        *self = PendingLog::open(&self.dir)?;
        Ok(())
    }
}

/// After a flush that began after [`PendingLog::rotate`]: the old file's
/// batches are durable in the log.
pub(crate) fn retire_old(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(PENDING_OLD_FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Every whole entry of `pending.log.old`, then of `pending.log`, in file
/// order; each file ends at its first torn or damaged frame.
pub(crate) fn read(dir: &Path) -> io::Result<Vec<(i64, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in [PENDING_OLD_FILE, PENDING_FILE] {
        let bytes = match fs::read(dir.join(name)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut rest = &bytes[..];
        while rest.len() >= HEADER_BYTES + 8 {
            let body_len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            let Some(body) = rest.get(HEADER_BYTES..HEADER_BYTES.saturating_add(body_len)) else {
                break;
            };
            if body_len < 8 || crc32fast::hash(body) != crc {
                break;
            }
            let mut zxid = [0u8; 8];
            zxid.copy_from_slice(&body[..8]);
            out.push((i64::from_le_bytes(zxid), body[8..].to_vec()));
            rest = &rest[HEADER_BYTES + body_len..];
        }
    }
    Ok(out)
}

/// Removes both files (their entries are durable in the log).
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    retire_old(dir)?;
    match fs::remove_file(dir.join(PENDING_FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The entries of `pending` that continue a log whose last zxid is
/// `log_last`: those above it, in order, up to the first gap.
pub(crate) fn continuation(
    pending: Vec<(i64, Vec<u8>)>,
    log_last: Option<i64>,
) -> Vec<(i64, Vec<u8>)> {
    let mut next = log_last.map(|last| last + 1);
    let mut out = Vec::new();
    for (zxid, value) in pending {
        if log_last.is_some_and(|last| zxid <= last) {
            continue;
        }
        if next.is_some_and(|n| zxid != n) {
            break;
        }
        next = Some(zxid + 1);
        out.push((zxid, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_across_a_rotation_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PendingLog::open(dir.path()).unwrap();
        log.append(&[(1, b"a".to_vec()), (2, b"bb".to_vec())])
            .unwrap();
        log.rotate().unwrap();
        log.append(&[(3, b"ccc".to_vec())]).unwrap();
        // A torn frame at the end of the current file.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(PENDING_FILE))
            .unwrap();
        f.write_all(&[20, 0, 0, 0, 1, 2]).unwrap();
        let all = read(dir.path()).unwrap();
        let zxids: Vec<i64> = all.iter().map(|(z, _)| *z).collect();
        assert_eq!(zxids, vec![1, 2, 3]);
        assert_eq!(all[2].1, b"ccc");
        retire_old(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn only_a_gapless_continuation_of_the_log_is_replayed() {
        let entries = |zxids: &[i64]| -> Vec<(i64, Vec<u8>)> {
            zxids.iter().map(|z| (*z, Vec::new())).collect()
        };
        let zxids =
            |v: Vec<(i64, Vec<u8>)>| -> Vec<i64> { v.into_iter().map(|(z, _)| z).collect() };
        assert_eq!(
            zxids(continuation(entries(&[3, 4, 5, 6]), Some(4))),
            vec![5, 6]
        );
        assert_eq!(zxids(continuation(entries(&[5, 7]), Some(4))), vec![5]);
        assert_eq!(
            zxids(continuation(entries(&[6, 7]), Some(4))),
            Vec::<i64>::new()
        );
        assert_eq!(zxids(continuation(entries(&[2, 3]), None)), vec![2, 3]);
    }
}
