//! Damage the store must not hide: files removed or replaced under a
//! running keeper, and a store that comes back older than it once was.
//!
//! - [`FileIds`] remembers the device and inode of the store's directory
//!   and files when the store opens; before every batch the store checks
//!   they are still the same files, so a write never goes into an unlinked
//!   file (where it would be acknowledged and lost).
//! - The high-water file `durable-zxid` records a zxid known to be durable
//!   and the CRC of its txn record (written when the store opens and when
//!   it closes). Recovery that ends below it, or below the newest
//!   snapshot's zxid, lost acknowledged writes; recovery that replays
//!   another record at that zxid went back to before a failed batch's
//!   zxid was reused. Either way `open` refuses with `Corrupted` instead of
//!   serving an older state as if nothing happened.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::store::snapshot::write_atomically;

/// The high-water file's name, in the store directory.
pub(crate) const HIGH_WATER_FILE: &str = "durable-zxid";
/// Its first word.
const HIGH_WATER_MAGIC: &str = "innkeeper-durable-zxid";

/// Device and inode of each file that must stay the same while open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileIds {
    files: Vec<(PathBuf, Option<(u64, u64)>)>,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        fs::metadata(path).ok().map(|_| (0, 0))
    }
}

impl FileIds {
    /// Records the files now. A file missing now is recorded as missing
    /// (sled creates some lazily), and is not checked.
    pub(crate) fn capture(paths: &[PathBuf]) -> FileIds {
        FileIds {
            files: paths.iter().map(|p| (p.clone(), identity(p))).collect(),
        }
    }

    /// `Corrupted` if a recorded file is gone or is another file now.
    pub(crate) fn check(&self) -> Result<()> {
        for (path, recorded) in &self.files {
            let Some(recorded) = recorded else { continue };
            match identity(path) {
                Some(now) if now == *recorded => {}
                Some(_) => {
                    return Err(Error::new(ErrorKind::Corrupted).detail(format!(
                        "{} was replaced while the store was open; \
                         refusing writes (reopen the keeper)",
                        path.display()
                    )))
                }
                None => {
                    return Err(Error::new(ErrorKind::Corrupted).detail(format!(
                        "{} was removed while the store was open; \
                         refusing writes (reopen the keeper)",
                        path.display()
                    )))
                }
            }
        }
        Ok(())
    }
}

fn checksum(zxid: i64, txn_crc: u32) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&zxid.to_be_bytes());
    h.update(&txn_crc.to_be_bytes());
    h.finalize()
}

/// Reads the high-water mark; `None` if the file is absent (older stores)
/// or unreadable (a torn write of it is not a reason to refuse the store).
/// Returns the zxid and the CRC of its txn record (0: not known).
pub(crate) fn read_high_water(dir: &Path) -> Option<(i64, u32)> {
    let text = fs::read_to_string(dir.join(HIGH_WATER_FILE)).ok()?;
    let mut words = text.split_whitespace();
    if words.next()? != HIGH_WATER_MAGIC {
        return None;
    }
    let zxid: i64 = words.next()?.parse().ok()?;
    let txn_crc: u32 = words.next()?.parse().ok()?;
    let crc: u32 = words.next()?.parse().ok()?;
    (crc == checksum(zxid, txn_crc)).then_some((zxid, txn_crc))
}

/// Records that everything up to `zxid` is durable, `txn_crc` being the
/// CRC of the record of the txn at `zxid` (0: not known).
pub(crate) fn write_high_water(dir: &Path, zxid: i64, txn_crc: u32) -> Result<()> {
    let path = dir.join(HIGH_WATER_FILE);
    let text = format!(
        "{HIGH_WATER_MAGIC} {zxid} {txn_crc} {}\n",
        checksum(zxid, txn_crc)
    );
    write_atomically(&path, text.as_bytes())
        .map_err(|e| Error::new(ErrorKind::Io).detail(format!("writing {}: {e}", path.display())))
}

/// Recovery reached `recovered`; the store had made `high_water` (the
/// mark, or the newest snapshot's zxid) durable before. Anything less is
/// lost acknowledged writes.
pub(crate) fn check_not_older(
    dir: &Path,
    recovered: i64,
    high_water: i64,
    what: &str,
) -> Result<()> {
    if recovered >= high_water {
        return Ok(());
    }
    Err(Error::new(ErrorKind::Corrupted).detail(format!(
        "{}: recovery ends at zxid {recovered:#x} but {what} {high_water:#x} was durable: \
         acknowledged writes are missing (was the log truncated, replaced or restored \
         from an older copy?); refusing to serve an older state",
        dir.display()
    )))
}

/// The record replayed at the high-water zxid (`found`, `None` when the
/// snapshot covered it) must be the one recorded (`expected`, 0: unknown).
pub(crate) fn check_same_txn(
    dir: &Path,
    zxid: i64,
    expected: u32,
    found: Option<u32>,
) -> Result<()> {
    match found {
        Some(found) if expected != 0 && found != expected => Err(Error::new(ErrorKind::Corrupted)
            .detail(format!(
                "{}: the log holds another txn at zxid {zxid:#x} than the one acknowledged \
                 there: the log went back to before a failed write's zxid was reused \
                 (truncated or restored from an older copy); refusing to serve it",
                dir.display()
            ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_water_round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_high_water(dir.path()), None);
        write_high_water(dir.path(), 0x1234, 77).unwrap();
        assert_eq!(read_high_water(dir.path()), Some((0x1234, 77)));
        let path = dir.path().join(HIGH_WATER_FILE);
        let text = fs::read_to_string(&path).unwrap().replace("4660", "4661");
        fs::write(&path, text).unwrap();
        assert_eq!(
            read_high_water(dir.path()),
            None,
            "a bad checksum is ignored"
        );
    }

    #[test]
    fn replaced_and_removed_files_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"1").unwrap();
        fs::write(&b, b"2").unwrap();
        let ids = FileIds::capture(&[a.clone(), b.clone(), dir.path().join("later")]);
        ids.check().unwrap();
        fs::write(&a, b"rewritten in place is the same file").unwrap();
        ids.check().unwrap();
        let other = dir.path().join("other");
        fs::write(&other, b"3").unwrap();
        fs::rename(&other, &b).unwrap();
        assert_eq!(ids.check().unwrap_err().kind(), ErrorKind::Corrupted);
        let ids = FileIds::capture(std::slice::from_ref(&a));
        fs::remove_file(&a).unwrap();
        let e = ids.check().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert!(e.to_string().contains("removed"), "{e}");
    }

    #[test]
    fn another_txn_at_the_mark_is_refused() {
        let dir = Path::new("/s");
        check_same_txn(dir, 5, 42, Some(42)).unwrap();
        check_same_txn(dir, 5, 42, None).unwrap();
        check_same_txn(dir, 5, 0, Some(9)).unwrap();
        assert_eq!(
            check_same_txn(dir, 5, 42, Some(9)).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
    }

    #[test]
    fn an_older_recovery_is_refused() {
        let dir = Path::new("/s");
        check_not_older(dir, 10, 10, "zxid").unwrap();
        check_not_older(dir, 11, 10, "zxid").unwrap();
        assert_eq!(
            check_not_older(dir, 9, 10, "zxid").unwrap_err().kind(),
            ErrorKind::Corrupted
        );
    }
}
