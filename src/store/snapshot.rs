//! Snapshot files: the whole state at one zxid, in one self-checking file.
//!
//! A snapshot is also the backup format: `Keeper::backup` writes one, and
//! restoring a backup places it in a new store's `snapshots/` directory.
//!
//! Layout: [`MAGIC`], then frames. A frame is the payload's length (u32,
//! big-endian), its CRC-32 (u32, big-endian), then the payload: one
//! `codec` record. The records come in this order: one `SnapshotHeader`,
//! the `Acl` lists, the `Node`s, the `Session`s, one `SnapshotEnd` whose
//! counts must match; nothing may follow it. Every deviation is reported,
//! never panicked on: the bytes come from disk.

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::path;
use crate::session::SessionTable;
use crate::state::State;
use crate::store::codec::{
    self, DecodeError, Record, SnapshotEnd, SnapshotHeader, SnapshotNode, SnapshotSession,
};
use crate::tree::{Frozen, NodeId, NodeKind, Restored, Tree, SYSTEM_PATHS};

/// The first bytes of every snapshot (and backup) file.
pub(crate) const MAGIC: [u8; 8] = *b"INNKSNAP";

/// Bytes of a frame's length and CRC.
const FRAME_HEADER_BYTES: usize = 8;

/// The largest frame a snapshot may hold (one node's record: its path,
/// ACL index and data). A node whose data exceeds this cannot be
/// snapshotted; the default data limit (1 MiB) is far below it.
pub(crate) const FRAME_BYTES_MAX: usize = 1 << 30;

/// Why a snapshot file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotError {
    /// The file does not start with [`MAGIC`].
    NotASnapshot,
    /// Written by a build with another format version.
    Version(u8),
    /// The bytes are damaged or incomplete: what and where.
    Damaged(String),
    /// The file could not be read (not a statement about its bytes).
    Io(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NotASnapshot => f.write_str("not an innkeeper snapshot"),
            SnapshotError::Version(v) => write!(
                f,
                "snapshot of format version {v}, this build reads {}",
                codec::FORMAT_VERSION
            ),
            SnapshotError::Damaged(why) => write!(f, "damaged snapshot: {why}"),
            SnapshotError::Io(why) => write!(f, "cannot read the snapshot: {why}"),
        }
    }
}

/// A decoded snapshot: the state and its header.
pub(crate) struct Decoded {
    /// The state at `header.zxid`.
    pub state: State,
    /// The header.
    pub header: SnapshotHeader,
}

/// Everything a snapshot holds, taken from a state in O(chunks +
/// sessions) (the nodes are an immutable copy-on-write view), so it can be
/// encoded and written off the write path while the state moves on.
pub(crate) struct Source {
    header: SnapshotHeader,
    nodes: Frozen,
    sessions: Vec<SnapshotSession>,
}

impl Source {
    /// Takes the view of `state`.
    pub(crate) fn of(state: &State, session_id_high: i64, taken_ms: i64) -> Source {
        let sessions = state
            .sessions
            .ids()
            .into_iter()
            .filter_map(|session_id| {
                let entry = state.sessions.get(session_id)?;
                Some(SnapshotSession {
                    session_id,
                    timeout_ms: entry.timeout_ms,
                    password: entry.password,
                })
            })
            .collect();
        Source {
            header: SnapshotHeader {
                zxid: state.last_zxid,
                session_id_high,
                taken_ms,
            },
            nodes: state.tree.freeze(),
            sessions,
        }
    }

    /// The zxid of the state.
    pub(crate) fn zxid(&self) -> i64 {
        self.header.zxid
    }

    /// Writes the snapshot file's bytes to `out` (buffer it).
    ///
    /// Fails on a write error or when one record exceeds [`FRAME_BYTES_MAX`].
    pub(crate) fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
        let mut frame = Vec::with_capacity(256);
        out.write_all(&MAGIC)?;
        let mut put = |record: &Record<'_>, out: &mut dyn Write| -> std::io::Result<()> {
            frame.clear();
            push_frame(&mut frame, record).map_err(invalid)?;
            out.write_all(&frame)
        };
        put(&Record::SnapshotHeader(self.header), out)?;
        // Every ACL list of the table, once; nodes refer to them by position.
        for list in self.nodes.acl_lists() {
            put(&Record::Acl(Cow::Borrowed(&list[..])), out)?;
        }
        // Parents before children (depth first from the root, children in
        // name order), so a reader links each node into its parent as it
        // arrives.
        let mut n_nodes: u64 = 0;
        self.nodes.walk(|_, depth, name, node| {
            let record = SnapshotNode {
                name: Cow::Borrowed(name),
                depth: depth as u32,
                data: node.data().map(Cow::Borrowed),
                acl_idx: Frozen::acl_index(&node),
                czxid: node.czxid,
                mzxid: node.mzxid,
                pzxid: node.pzxid,
                ctime: node.ctime,
                mtime: node.mtime,
                version: node.version,
                creates: node.creates,
                aversion: node.aversion,
                owner: node.owner,
            };
            n_nodes += 1;
            put(&Record::Node(record), out)
        })?;
        if n_nodes != self.nodes.len() as u64 {
            return Err(invalid(format!(
                "{n_nodes} of {} nodes are reachable from the root",
                self.nodes.len()
            )));
        }
        for session in &self.sessions {
            put(&Record::Session(*session), out)?;
        }
        put(
            &Record::SnapshotEnd(SnapshotEnd {
                acls: self.nodes.acl_lists().len() as u64,
                nodes: n_nodes,
                sessions: self.sessions.len() as u64,
            }),
            out,
        )
    }
}

/// Encodes `state` into the bytes of a snapshot file.
///
/// Fails only when one record exceeds [`FRAME_BYTES_MAX`].
pub(crate) fn encode(
    state: &State,
    session_id_high: i64,
    taken_ms: i64,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64 + state.tree.len() * 64);
    Source::of(state, session_id_high, taken_ms)
        .write_to(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn push_frame(out: &mut Vec<u8>, record: &Record<'_>) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    codec::encode_into(record, out);
    let payload = &out[start + FRAME_HEADER_BYTES..];
    if payload.len() > FRAME_BYTES_MAX {
        return Err(format!(
            "a {} record of {} bytes exceeds the snapshot frame limit of {FRAME_BYTES_MAX}",
            record.kind_name(),
            payload.len()
        ));
    }
    let len = u32::try_from(payload.len()).map_err(|_| "frame length overflow")?;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Builds a snapshot file from arbitrary bytes, cutting them into frames
/// with valid lengths and checksums: each frame's payload length is the
/// next input byte, its payload the bytes after it. Only the fuzz hook
/// uses it, so fuzzing reaches the record sequence behind the CRCs.
pub(crate) fn frame_all(bytes: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let mut rest = bytes;
    while let Some((&len, tail)) = rest.split_first() {
        let (payload, tail) = tail.split_at(usize::from(len).min(tail.len()));
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
        out.extend_from_slice(payload);
        rest = tail;
    }
    out
}

/// Walks the frames of a snapshot body, read one frame at a time (a
/// snapshot file is never whole in memory while it is decoded).
struct Frames<R> {
    input: R,
    /// Offset of the next frame in the file.
    offset: u64,
    /// The current frame's payload, reused from frame to frame.
    payload: Vec<u8>,
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, SnapshotError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SnapshotError::Io(e.to_string())),
        }
    }
    Ok(filled)
}

impl<R: Read> Frames<R> {
    fn new(input: R, offset: u64) -> Frames<R> {
        Frames {
            input,
            offset,
            payload: Vec::new(),
        }
    }

    /// The next record, `None` at the end of the input.
    fn next_record(&mut self) -> Result<Option<Record<'static>>, SnapshotError> {
        let at = self.offset;
        let damaged = |why: String| SnapshotError::Damaged(format!("frame at byte {at}: {why}"));
        let mut header = [0u8; FRAME_HEADER_BYTES];
        match read_full(&mut self.input, &mut header)? {
            0 => return Ok(None),
            FRAME_HEADER_BYTES => {}
            _ => return Err(damaged("truncated frame header".into())),
        }
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > FRAME_BYTES_MAX {
            return Err(damaged(format!(
                "length {len} exceeds the frame limit {FRAME_BYTES_MAX}"
            )));
        }
        // Read what is there, up to `len`: a damaged length near the limit
        // allocates only as much as the file holds.
        self.payload.clear();
        (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut self.payload)
            .map_err(|e| SnapshotError::Io(e.to_string()))?;
        if self.payload.len() < len {
            return Err(damaged(format!(
                "length {len} exceeds the {} bytes left",
                self.payload.len()
            )));
        }
        if crc32fast::hash(&self.payload) != crc {
            return Err(damaged("checksum mismatch".into()));
        }
        let record = codec::decode(&self.payload).map_err(|e| match e {
            DecodeError::Version(v) => SnapshotError::Version(v),
            other => damaged(other.to_string()),
        })?;
        self.offset = at + (FRAME_HEADER_BYTES + len) as u64;
        Ok(Some(record))
    }

    /// How many bytes follow (0 at the end); reads at most a few.
    fn bytes_left(&mut self) -> Result<usize, SnapshotError> {
        let mut probe = [0u8; 16];
        read_full(&mut self.input, &mut probe)
    }
}

/// Decodes the snapshot file at `path`, streamed through a buffer.
pub(crate) fn decode_file(path: &Path) -> Result<Decoded, SnapshotError> {
    let file = File::open(path).map_err(|e| SnapshotError::Io(e.to_string()))?;
    decode_from(std::io::BufReader::with_capacity(1 << 20, file))
}

/// Decodes a snapshot file's bytes into a state (built by
/// [`State::restore`] from the decoded tree and sessions).
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, SnapshotError> {
    decode_from(bytes)
}

/// Decodes a snapshot read from `input`, frame by frame, into a state
/// (built by [`State::restore`] from the decoded tree and sessions).
fn decode_from(mut input: impl Read) -> Result<Decoded, SnapshotError> {
    let mut magic = [0u8; MAGIC.len()];
    if read_full(&mut input, &mut magic)? < MAGIC.len() || magic != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let mut frames = Frames::new(input, MAGIC.len() as u64);
    let damaged = |why: &str| SnapshotError::Damaged(why.to_string());
    let header = match frames.next_record()? {
        Some(Record::SnapshotHeader(header)) => header,
        Some(other) => {
            return Err(SnapshotError::Damaged(format!(
                "starts with a {} record, not a header",
                other.kind_name()
            )))
        }
        None => return Err(damaged("no header")),
    };
    if header.zxid < 0 {
        return Err(SnapshotError::Damaged(format!(
            "negative zxid {}",
            header.zxid
        )));
    }
    let mut tree = Tree::empty();
    let mut sessions = SessionTable::new();
    // Tree ACL index of each `Acl` record, by position.
    let mut acls: Vec<u32> = Vec::new();
    // The ids and path lengths of the current node's ancestors, by depth.
    let mut stack: Vec<(NodeId, usize)> = Vec::new();
    let mut path_buf = String::from("/");
    let mut name_buf = String::new();
    let (mut n_nodes, mut n_sessions) = (0u64, 0u64);
    loop {
        let record = frames
            .next_record()?
            .ok_or_else(|| damaged("no end record (truncated file)"))?;
        match record {
            Record::Acl(list) => {
                if n_nodes > 0 || n_sessions > 0 {
                    return Err(damaged("acl record after nodes"));
                }
                acls.push(tree.intern_acl(&list));
            }
            Record::Node(node) => {
                if n_sessions > 0 {
                    return Err(damaged("node record after sessions"));
                }
                let acl = usize::try_from(node.acl_idx)
                    .ok()
                    .and_then(|idx| acls.get(idx))
                    .copied()
                    .ok_or_else(|| {
                        SnapshotError::Damaged(format!(
                            "node {n_nodes} names acl {} of {}",
                            node.acl_idx,
                            acls.len()
                        ))
                    })?;
                let fields = Restored {
                    data: node.data.as_deref(),
                    czxid: node.czxid,
                    mzxid: node.mzxid,
                    pzxid: node.pzxid,
                    ctime: node.ctime,
                    mtime: node.mtime,
                    version: node.version,
                    creates: node.creates,
                    aversion: node.aversion,
                    owner: node.owner,
                };
                let depth = usize::try_from(node.depth).unwrap_or(usize::MAX);
                if depth == 0 {
                    if !node.name.is_empty() {
                        return Err(damaged("a root with a name"));
                    }
                    let id = tree
                        .restore_root(acl, &fields)
                        .map_err(SnapshotError::Damaged)?;
                    stack.push((id, 1));
                } else {
                    if depth > stack.len() {
                        return Err(SnapshotError::Damaged(format!(
                            "node {n_nodes} at depth {depth} below a node at depth {}",
                            stack.len().saturating_sub(1)
                        )));
                    }
                    name_buf.clear();
                    name_buf.push('/');
                    name_buf.push_str(&node.name);
                    if let Err(e) = path::validate(&name_buf) {
                        return Err(SnapshotError::Damaged(format!("node name {e}")));
                    }
                    stack.truncate(depth);
                    let (parent, parent_len) = stack[depth - 1];
                    path_buf.truncate(parent_len);
                    if parent_len > 1 {
                        path_buf.push('/');
                    }
                    path_buf.push_str(&node.name);
                    let id = tree
                        .restore_child(parent, &node.name, &path_buf, acl, &fields)
                        .map_err(SnapshotError::Damaged)?;
                    stack.push((id, path_buf.len()));
                }
                n_nodes += 1;
            }
            Record::Session(session) => {
                if sessions.get(session.session_id).is_some() {
                    return Err(SnapshotError::Damaged(format!(
                        "session {:#x} twice",
                        session.session_id
                    )));
                }
                sessions.add(session.session_id, session.timeout_ms, session.password);
                n_sessions += 1;
            }
            Record::SnapshotEnd(end) => {
                let seen = SnapshotEnd {
                    acls: acls.len() as u64,
                    nodes: n_nodes,
                    sessions: n_sessions,
                };
                if end != seen {
                    return Err(SnapshotError::Damaged(format!(
                        "end record counts {end:?}, file holds {seen:?}"
                    )));
                }
                let left = frames.bytes_left()?;
                if left > 0 {
                    return Err(SnapshotError::Damaged(format!(
                        "{left}{} bytes after the end record",
                        if left == 16 { " or more" } else { "" }
                    )));
                }
                break;
            }
            other => {
                return Err(SnapshotError::Damaged(format!(
                    "unexpected {} record",
                    other.kind_name()
                )))
            }
        }
    }
    let state = State::restore(tree, sessions, header.zxid);
    if SYSTEM_PATHS.iter().any(|p| state.tree.get(p).is_none()) {
        return Err(damaged("a system node is missing"));
    }
    check_loaded(&state)?;
    Ok(Decoded { state, header })
}

/// The checks of `State::check_invariants` that decoding does not already
/// guarantee (children links are built from the paths, parents checked as
/// nodes arrive), in one pass without allocating: counters and zxids
/// agree, and every ephemeral's owner is a session of the snapshot.
fn check_loaded(state: &State) -> Result<(), SnapshotError> {
    state.tree.freeze().walk(|p, _, _, node| {
        let zxid_max = node.czxid.max(node.mzxid).max(node.pzxid);
        if zxid_max > state.last_zxid || node.mzxid < node.czxid || node.pzxid < node.czxid {
            return Err(SnapshotError::Damaged(format!(
                "node {p:?} has zxids out of order (snapshot zxid {:#x})",
                state.last_zxid
            )));
        }
        if !Tree::is_system(p) && i64::from(node.creates) < node.num_children() as i64 {
            return Err(SnapshotError::Damaged(format!(
                "node {p:?} has fewer creates than children"
            )));
        }
        if let NodeKind::Ephemeral(owner) = node.kind() {
            if state.sessions.get(owner).is_none() {
                return Err(SnapshotError::Damaged(format!(
                    "ephemeral {p:?} of unknown session {owner:#x}"
                )));
            }
        }
        Ok(())
    })
}

/// Writes `bytes` to `path` so that a crash leaves either the old file (or
/// none) or the complete new one: a temporary file, fsync, rename, fsync of
/// the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |out| out.write_all(bytes))
}

/// [`write_atomically`] with the bytes produced by `fill` into a buffered
/// writer (a snapshot streamed from its source, never whole in memory).
pub(crate) fn write_atomically_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_atomically_staged(path, fill, |_| {})
}

/// A step of [`write_atomically_staged`], for crash injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The temporary file is complete and synced.
    Synced,
    /// It has its final name; the directory is not synced yet.
    Renamed,
}

/// [`write_atomically_with`], calling `at` after each [`Step`].
pub(crate) fn write_atomically_staged(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    at: impl Fn(Step),
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, SyncEvery { file, unsynced: 0 });
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?.file;
        file.sync_all()?;
        at(Step::Synced);
        fs::rename(&tmp, path)?;
        at(Step::Renamed);
        sync_dir(dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Bytes a big file write may leave unsynced: beyond them the writer
/// syncs, so a snapshot reaches the disk in steps instead of one burst at
/// its final fsync that the log's fsyncs would queue behind.
const UNSYNCED_BYTES_MAX: usize = 8 << 20;

/// A file that syncs its data every [`UNSYNCED_BYTES_MAX`] bytes.
struct SyncEvery {
    file: File,
    unsynced: usize,
}

impl Write for SyncEvery {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n;
        if self.unsynced >= UNSYNCED_BYTES_MAX {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The suffix of files [`write_atomically`] has not finished; recovery
/// deletes them.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Makes a directory's entries (creates, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Acl, Id, Perms};
    use crate::txn::{CreateTxn, Txn, TxnOp};

    fn sample_state() -> State {
        let mut state = State::new();
        let txns = [
            TxnOp::CreateSession {
                session_id: 0x77,
                timeout_ms: 4000,
                password: [3; 16],
            },
            TxnOp::Create(CreateTxn {
                path: "/a".into(),
                data: None,
                acl: Acl::open_unsafe(),
                owner: 0,
            }),
            TxnOp::Create(CreateTxn {
                path: "/a/e".into(),
                data: Some(Vec::new()),
                acl: vec![Acl::new(Perms::READ, Id::anyone())],
                owner: 0x77,
            }),
            TxnOp::Create(CreateTxn {
                path: "/c".into(),
                data: Some(b"x".to_vec()),
                acl: Acl::open_unsafe(),
                owner: crate::tree::CONTAINER_OWNER,
            }),
            TxnOp::SetData {
                path: "/a".into(),
                data: Some(b"v2".to_vec()),
            },
        ];
        for (idx, op) in txns.into_iter().enumerate() {
            let txn = Txn {
                zxid: idx as i64 + 1,
                time_ms: 1000 + idx as i64,
                op,
            };
            state.apply(&txn).unwrap();
        }
        state
    }

    fn assert_same(a: &State, b: &State) {
        assert_eq!(a.last_zxid, b.last_zxid);
        assert_eq!(a.tree.len(), b.tree.len());
        a.tree.for_each(|p, node| {
            let other = b.tree.get(p).unwrap_or_else(|| panic!("{p} missing"));
            assert_eq!(node.stat(), other.stat(), "{p}");
            assert_eq!(node.data(), other.data(), "{p}");
            assert_eq!(node.acl(), other.acl(), "{p}");
            assert_eq!((node.creates, node.owner), (other.creates, other.owner));
            assert_eq!(node.child_names(), other.child_names(), "{p}");
        });
        assert_eq!(a.sessions.ids(), b.sessions.ids());
        for id in a.sessions.ids() {
            let (x, y) = (a.sessions.get(id).unwrap(), b.sessions.get(id).unwrap());
            assert_eq!((x.timeout_ms, x.password), (y.timeout_ms, y.password));
        }
    }

    #[test]
    fn a_snapshot_round_trips_every_field() {
        let state = sample_state();
        let bytes = encode(&state, 0x78, 5).unwrap();
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.header.session_id_high, 0x78);
        assert_same(&state, &decoded.state);
        decoded.state.check_invariants().unwrap();
        assert_eq!(
            decoded.state.tree.get("/a").unwrap().data(),
            Some(&b"v2"[..])
        );
        assert_eq!(
            decoded.state.tree.get("/a/e").unwrap().data(),
            Some(&[][..])
        );
    }

    #[test]
    fn a_deep_tree_is_linear_on_disk_and_round_trips() {
        // A node record holds its name and depth, never its path: 5 000
        // levels (paths up to 10 kB) must not cost 5 000 paths.
        const DEPTH: i64 = 5_000;
        let mut state = State::new();
        let mut p = String::new();
        for zxid in 1..=DEPTH {
            p.push_str("/d");
            let txn = Txn {
                zxid,
                time_ms: 1,
                op: TxnOp::Create(CreateTxn {
                    path: p.clone(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    owner: 0,
                }),
            };
            state.apply(&txn).unwrap();
        }
        let bytes = encode(&state, 0, 0).unwrap();
        assert!(
            bytes.len() < 64 * DEPTH as usize,
            "{} bytes for {DEPTH} nodes",
            bytes.len()
        );
        let decoded = decode(&bytes).unwrap();
        assert_same(&state, &decoded.state);
        assert!(decoded.state.tree.get(&p).is_some());
        decoded.state.check_invariants().unwrap();
    }

    #[test]
    fn siblings_out_of_order_or_depth_jumps_are_damage() {
        let state = sample_state();
        let bytes = encode(&state, 0, 0).unwrap();
        let mut frames = Frames::new(&bytes[MAGIC.len()..], MAGIC.len() as u64);
        let mut records = Vec::new();
        while let Some(record) = frames.next_record().unwrap() {
            records.push(record);
        }
        let reframe = |records: &[Record<'_>]| {
            let mut out = MAGIC.to_vec();
            for r in records {
                push_frame(&mut out, r).unwrap();
            }
            out
        };
        assert!(decode(&reframe(&records)).is_ok());
        let nodes: Vec<usize> = (0..records.len())
            .filter(|&i| matches!(records[i], Record::Node(_)))
            .collect();
        // Swap two siblings ("a" and "c" under the root).
        let (a, c) = (
            nodes
                .iter()
                .copied()
                .find(|&i| matches!(&records[i], Record::Node(n) if n.name == "a"))
                .unwrap(),
            nodes
                .iter()
                .copied()
                .find(|&i| matches!(&records[i], Record::Node(n) if n.name == "c"))
                .unwrap(),
        );
        let mut swapped = records.clone();
        swapped.swap(a, c);
        assert!(decode(&reframe(&swapped)).is_err());
        // A node two levels below its predecessor.
        let mut jumped = records.clone();
        if let Record::Node(n) = &mut jumped[c] {
            n.depth = 4;
        }
        assert!(decode(&reframe(&jumped)).is_err());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let bytes = encode(&sample_state(), 0, 0).unwrap();
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(decode(&damaged).is_err(), "flip at {at}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        assert_eq!(
            decode(b"not a snapshot").err(),
            Some(SnapshotError::NotASnapshot)
        );
    }
}
