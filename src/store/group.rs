//! One log entry: the records of the txns a batch wrote, framed together.
//!
//! A batch (one group commit) is stored as a single log entry, keyed by
//! its first zxid, so sled sees one key per batch instead of one per txn
//! (a sled insert or remove costs microseconds; a pipelined load writes
//! batches of up to a hundred txns). The entry's bytes are, per txn in
//! zxid order:
//!
//! | field | bytes |
//! |---|---|
//! | zxid | u64, big-endian |
//! | record length | u32, big-endian |
//! | the txn's `codec` record | that many |
//!
//! Decoding checks what the key promises: the first zxid is the key's,
//! zxids rise strictly, nothing trails the last record.

use crate::error::{Error, ErrorKind, Result};

/// Bytes framing each record: zxid and length.
const FRAME_BYTES: usize = 12;

/// Encodes `entries` (zxid, record), which must be non-empty with zxids
/// rising strictly.
pub(crate) fn encode(entries: &[(i64, Vec<u8>)]) -> Result<Vec<u8>> {
    let total = entries
        .iter()
        .map(|(_, record)| FRAME_BYTES + record.len())
        .sum();
    let mut out = Vec::with_capacity(total);
    let mut previous: Option<i64> = None;
    for (zxid, record) in entries {
        let refuse =
            |why: String| Error::new(ErrorKind::SystemError).detail(format!("log entry: {why}"));
        if previous.is_some_and(|p| p >= *zxid) {
            return Err(refuse(format!("zxid {zxid:#x} does not rise")));
        }
        let unsigned = u64::try_from(*zxid).map_err(|_| refuse(format!("negative zxid {zxid}")))?;
        let len = u32::try_from(record.len()).map_err(|_| {
            refuse(format!(
                "txn {zxid:#x} of {} bytes is too large",
                record.len()
            ))
        })?;
        out.extend_from_slice(&unsigned.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(record);
        previous = Some(*zxid);
    }
    if previous.is_none() {
        return Err(Error::new(ErrorKind::SystemError).detail("log entry: no txns"));
    }
    Ok(out)
}

/// Decodes the entry stored under `first`, or reports it `Corrupted`.
pub(crate) fn decode(first: i64, bytes: &[u8]) -> Result<Vec<(i64, &[u8])>> {
    let damaged =
        |why: &str| Error::new(ErrorKind::Corrupted).detail(format!("log entry {first:#x}: {why}"));
    let mut records = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (frame, after) = rest
            .split_at_checked(FRAME_BYTES)
            .ok_or_else(|| damaged("a record frame is cut short"))?;
        let (zxid, len) = frame.split_at(8);
        let zxid = u64::from_be_bytes(zxid.try_into().map_err(|_| damaged("bad frame"))?);
        let zxid = i64::try_from(zxid).map_err(|_| damaged("a zxid is negative"))?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| damaged("bad frame"))?);
        let len = usize::try_from(len).map_err(|_| damaged("a record is too large"))?;
        let (record, after) = after
            .split_at_checked(len)
            .ok_or_else(|| damaged("a record is cut short"))?;
        match records.last() {
            None if zxid != first => return Err(damaged("the first record is not the key's")),
            Some(&(previous, _)) if zxid <= previous => return Err(damaged("zxids do not rise")),
            _ => {}
        }
        records.push((zxid, record));
        rest = after;
    }
    if records.is_empty() {
        return Err(damaged("it holds no record"));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_written() {
        let entries = vec![(7, b"a".to_vec()), (8, Vec::new()), (10, vec![3; 300])];
        let bytes = encode(&entries).unwrap();
        let back: Vec<(i64, Vec<u8>)> = decode(7, &bytes)
            .unwrap()
            .into_iter()
            .map(|(z, r)| (z, r.to_vec()))
            .collect();
        assert_eq!(back, entries);
    }

    #[test]
    fn encoding_refuses_what_the_log_could_not_order() {
        assert!(encode(&[]).is_err());
        assert!(encode(&[(2, vec![]), (2, vec![])]).is_err());
        assert!(encode(&[(3, vec![]), (2, vec![])]).is_err());
        assert!(encode(&[(-1, vec![])]).is_err());
    }

    #[test]
    fn damage_is_reported_not_followed() {
        let bytes = encode(&[(5, b"xy".to_vec()), (6, b"z".to_vec())]).unwrap();
        let corrupted = |first: i64, b: &[u8]| {
            assert_eq!(decode(first, b).unwrap_err().kind(), ErrorKind::Corrupted);
        };
        corrupted(4, &bytes); // another key
        corrupted(5, &[]);
        for cut in 1..bytes.len() {
            if cut != FRAME_BYTES + 2 {
                corrupted(5, &bytes[..cut]);
            }
        }
        let mut backwards = bytes.clone();
        backwards[FRAME_BYTES + 2 + 7] = 5; // the second zxid becomes 5
        corrupted(5, &backwards);
        let mut long = bytes.clone();
        long[11] = 200; // the first length runs past the end
        corrupted(5, &long);
        assert_eq!(decode(5, &bytes[..FRAME_BYTES + 2]).unwrap().len(), 1);
    }
}
