//! The one codec for everything innkeeper writes to disk.
//!
//! Every stored value (a log entry in sled, a frame of a snapshot file) is
//! `[FORMAT_VERSION] ++ bincode(Record)`: one leading format-version byte,
//! then bincode 1.3 with its default options (varint integers, little
//! endian, trailing bytes rejected). Keys are never bincode: they are
//! explicit big-endian bytes built in `store::sled`. The one exception is
//! a snapshot's node block (`blocks.rs`): `[FORMAT_VERSION,
//! NODE_BLOCK_KIND]`, then nodes encoded by hand.
//!
//! Decoding takes bytes from disk, so it treats them as untrusted: it never
//! panics, never allocates more than the input could describe, and reports
//! what it could not read as a [`DecodeError`].

use std::borrow::Cow;
use std::fmt;

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::node::Acl;
use crate::txn::Txn;

/// The store format this build reads and writes. See `README.md` beside
/// this file for the history; bump it for any change of the bytes.
pub(crate) const FORMAT_VERSION: u8 = 3;

/// The byte after the version that marks a snapshot's node block: the
/// bincode of [`Record::NodeBlock`]'s variant index, so no bincode record
/// can be taken for a block.
pub(crate) const NODE_BLOCK_KIND: u8 = 3;

/// One stored record. The variant order is part of the format: append new
/// variants at the end and bump [`FORMAT_VERSION`] if old readers must
/// refuse them.
///
/// Fields are `Cow` so a snapshot can be encoded straight from the live
/// tree without copying it; decoding always yields owned values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Record<'a> {
    /// A txn of the log: the value stored under its zxid.
    Txn(Cow<'a, Txn>),
    /// The first frame of a snapshot.
    SnapshotHeader(SnapshotHeader),
    /// One distinct ACL list of a snapshot; nodes refer to it by position.
    Acl(Cow<'a, [Acl]>),
    /// Marks a snapshot frame that holds nodes (`blocks.rs`): its bytes
    /// are this variant's (`[FORMAT_VERSION, NODE_BLOCK_KIND]`) followed by
    /// nodes encoded by hand, never by bincode.
    NodeBlock,
    /// One session of a snapshot.
    Session(SnapshotSession),
    /// The last frame of a snapshot: what the reader must have seen.
    SnapshotEnd(SnapshotEnd),
}

/// What a snapshot holds, written before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    /// The state is the one after applying every txn up to this zxid.
    pub zxid: i64,
    /// The largest session id ever handed out before this zxid (closed
    /// sessions included), so ids are never reused after a restart.
    pub session_id_high: i64,
    /// When the snapshot was taken, ms since the epoch (information only).
    pub taken_ms: i64,
}

/// A session as a snapshot stores it (its deadline is not stored: a
/// restored session gets a fresh one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotSession {
    /// The id.
    pub session_id: i64,
    /// The negotiated timeout.
    pub timeout_ms: i32,
    /// The password a resume must present.
    pub password: [u8; 16],
}

/// Counts the reader checks, so a truncated or spliced snapshot is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotEnd {
    /// Number of `Acl` frames.
    pub acls: u64,
    /// Number of nodes.
    pub nodes: u64,
    /// Number of `Session` frames.
    pub sessions: u64,
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// No bytes at all.
    Empty,
    /// The leading byte names a format this build does not read.
    Version(u8),
    /// The body is not a valid record.
    Malformed(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty record"),
            DecodeError::Version(v) => write!(
                f,
                "record of format version {v}, this build reads {FORMAT_VERSION}"
            ),
            DecodeError::Malformed(why) => write!(f, "malformed record: {why}"),
        }
    }
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// Encodes a record: the format-version byte, then its bincode.
pub(crate) fn encode(record: &Record<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(record, &mut out);
    out
}

/// Appends the encoding of [`encode`] to `out` (saves an allocation per
/// record when a snapshot frames a million of them).
pub(crate) fn encode_into(record: &Record<'_>, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    // Writing into a Vec cannot fail, and every field type serializes.
    if let Err(e) = options().serialize_into(&mut *out, record) {
        unreachable!("encoding a record into memory failed: {e}");
    }
}

/// Decodes bytes written by [`encode`]; any other bytes give an error.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record<'static>, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::Version(version));
    }
    // The limit is the input itself: a length prefix can never make the
    // decoder reserve more than the bytes could hold.
    let limit = u64::try_from(body.len()).unwrap_or(u64::MAX);
    options()
        .with_limit(limit)
        .deserialize::<Record<'static>>(body)
        .map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Decodes a log value and checks it is a txn.
pub(crate) fn decode_txn(bytes: &[u8]) -> Result<Txn, DecodeError> {
    match decode(bytes)? {
        Record::Txn(txn) => Ok(txn.into_owned()),
        other => Err(DecodeError::Malformed(format!(
            "expected a txn, found {}",
            other.kind_name()
        ))),
    }
}

impl Record<'_> {
    /// A short name for messages.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Record::Txn(_) => "txn",
            Record::SnapshotHeader(_) => "snapshot header",
            Record::Acl(_) => "acl",
            Record::NodeBlock => "node block",
            Record::Session(_) => "session",
            Record::SnapshotEnd(_) => "snapshot end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Id, Perms};
    use crate::random::Rng;
    use crate::txn::{CreateTxn, TxnOp};

    fn sample_records() -> Vec<Record<'static>> {
        let acl = vec![Acl::new(Perms::ALL, Id::anyone())];
        let create = TxnOp::Create(CreateTxn {
            path: "/a/b-0000000001".into(),
            data: Some(b"value".to_vec()),
            acl: acl.clone(),
            owner: 0x0100_0000_0000_0001,
        });
        vec![
            Record::Txn(Cow::Owned(Txn {
                zxid: 7,
                time_ms: 1_700_000_000_000,
                op: TxnOp::Multi(vec![
                    create,
                    TxnOp::SetData {
                        path: "/a".into(),
                        data: None,
                    },
                    TxnOp::Delete { path: "/c".into() },
                    TxnOp::Check { path: "/a".into() },
                ]),
            })),
            Record::Txn(Cow::Owned(Txn {
                zxid: i64::MAX,
                time_ms: -1,
                op: TxnOp::CloseSession {
                    session_id: -5,
                    ephemerals: vec!["/e".into(), "/f".into()],
                },
            })),
            Record::SnapshotHeader(SnapshotHeader {
                zxid: 99,
                session_id_high: 12,
                taken_ms: 5,
            }),
            Record::Acl(Cow::Owned(acl)),
            Record::NodeBlock,
            Record::Session(SnapshotSession {
                session_id: 3,
                timeout_ms: 4000,
                password: [9; 16],
            }),
            Record::SnapshotEnd(SnapshotEnd {
                acls: 1,
                nodes: 1,
                sessions: 1,
            }),
        ]
    }

    #[test]
    fn records_round_trip() {
        for record in sample_records() {
            let bytes = encode(&record);
            assert_eq!(bytes[0], FORMAT_VERSION);
            assert_eq!(decode(&bytes).as_ref(), Ok(&record), "{record:?}");
        }
    }

    #[test]
    fn the_node_block_marker_is_its_variant() {
        assert_eq!(
            encode(&Record::NodeBlock),
            [FORMAT_VERSION, NODE_BLOCK_KIND]
        );
    }

    #[test]
    fn other_versions_and_garbage_are_errors() {
        let mut bytes = encode(&sample_records()[0]);
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        bytes[0] = FORMAT_VERSION + 1;
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::Version(FORMAT_VERSION + 1))
        );
        bytes[0] = FORMAT_VERSION;
        bytes.push(0);
        assert!(
            matches!(decode(&bytes), Err(DecodeError::Malformed(_))),
            "trailing byte"
        );
        let header = encode(&sample_records()[2]);
        assert!(decode_txn(&header).is_err(), "a header is not a txn");
    }

    /// The decoder sees bytes from disk: thousands of random and mutated
    /// records must give `Ok` or `Err`, never a panic or a huge allocation
    /// (the same property `fuzz/fuzz_targets/store_decode.rs` explores).
    #[test]
    fn decoding_random_and_mutated_bytes_never_panics() {
        let seed = 0x5EED_0001;
        let mut rng = Rng::seeded(seed);
        let valid: Vec<Vec<u8>> = sample_records().iter().map(encode).collect();
        let mut decoded_ok = 0;
        for round in 0..6000 {
            let mut bytes = if round % 3 == 0 {
                let len = rng.below(64) as usize;
                (0..len).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
            } else {
                valid[rng.below(valid.len() as u64) as usize].clone()
            };
            if !bytes.is_empty() {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(bytes.len() as u64) as usize;
                    match rng.below(4) {
                        0 => bytes[at] = rng.next_u64() as u8,
                        1 => bytes[at] ^= 1 << rng.below(8),
                        2 => bytes.truncate(at),
                        _ => bytes.insert(at, 0xFF),
                    }
                    if bytes.is_empty() {
                        break;
                    }
                }
            }
            if decode(&bytes).is_ok() {
                decoded_ok += 1;
            }
            let _ = decode_txn(&bytes);
        }
        // Some mutations (a changed data byte) still decode; that is fine.
        assert!(decoded_ok < 6000, "seed {seed:#x}");
    }
}
