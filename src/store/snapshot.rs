//! Snapshot files: the whole state at one zxid, in one self-checking file.
//!
//! A snapshot is also the backup format: `Keeper::backup` writes one, and
//! restoring a backup places it in a new store's `snapshots/` directory.
//!
//! Layout: [`MAGIC`], then frames. A frame is the payload's length (u32,
//! big-endian), its CRC-32 (u32, big-endian), then the payload: one
//! `codec` record, or a block of nodes (`blocks.rs`: many nodes to a
//! frame, so the frame's 8 bytes and its CRC are paid per block). The
//! frames come in this order: one `SnapshotHeader`, the `Acl` lists, the
//! node blocks, the `Session`s, one `SnapshotEnd` whose counts must match;
//! nothing may follow it. Every deviation is reported, never panicked on:
//! the bytes come from disk.

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::path;
use crate::session::SessionTable;
use crate::state::State;
use crate::store::blocks::{BlockNode, BlockReader, BlockWriter, BLOCK_BYTES};
use crate::store::codec::{
    self, DecodeError, Record, SnapshotEnd, SnapshotHeader, SnapshotSession, FORMAT_VERSION,
    NODE_BLOCK_KIND,
};
use crate::tree::{Frozen, NodeId, Tree, SYSTEM_PATHS};

/// The first bytes of every snapshot (and backup) file.
pub(crate) const MAGIC: [u8; 8] = *b"INNKSNAP";

/// Bytes of a frame's length and CRC.
const FRAME_HEADER_BYTES: usize = 8;

/// The largest frame a snapshot may hold (a block with one node: its
/// name, fields and data). A node whose data exceeds this cannot be
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
    /// Fails on a write error or when one frame exceeds [`FRAME_BYTES_MAX`].
    pub(crate) fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.write_blocks_of(BLOCK_BYTES, out)
    }

    /// [`Source::write_to`] with blocks cut at `block_bytes`.
    fn write_blocks_of(&self, block_bytes: usize, out: &mut dyn Write) -> std::io::Result<()> {
        let mut record_bytes = Vec::with_capacity(256);
        out.write_all(&MAGIC)?;
        let mut put = |record: &Record<'_>, out: &mut dyn Write| -> std::io::Result<()> {
            record_bytes.clear();
            codec::encode_into(record, &mut record_bytes);
            write_frame(out, &record_bytes)
        };
        put(&Record::SnapshotHeader(self.header), out)?;
        // Every ACL list of the table, once; nodes refer to them by position.
        for list in self.nodes.acl_lists() {
            put(&Record::Acl(Cow::Borrowed(&list[..])), out)?;
        }
        // Parents before children (depth first from the root, children in
        // name order), so a reader links each node into its parent as it
        // arrives.
        let mut blocks = BlockWriter::new(self.header.zxid, block_bytes);
        let mut emit = |payload: &[u8]| write_frame(out, payload);
        let mut n_nodes: u64 = 0;
        self.nodes.walk(|_, depth, name, node| {
            n_nodes += 1;
            let node = BlockNode {
                depth,
                name,
                acl: Frozen::acl_index(&node),
                fields: node.restored(),
            };
            blocks.push(&node, &mut emit)
        })?;
        blocks.finish(&mut emit)?;
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

fn invalid(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
}

/// Writes one frame: the payload's length and CRC, then the payload.
fn write_frame(out: &mut dyn Write, payload: &[u8]) -> std::io::Result<()> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(invalid(format!(
            "a frame of {} bytes exceeds the snapshot frame limit of {FRAME_BYTES_MAX}",
            payload.len()
        )));
    }
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    let mut header = [0u8; FRAME_HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4..].copy_from_slice(&crc.to_be_bytes());
    out.write_all(&header)?;
    out.write_all(payload)
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

/// Cuts arbitrary bytes into frames with valid lengths and checksums:
/// each frame's payload length is the next input byte, its payload the
/// bytes after it.
fn frame_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some((&len, tail)) = rest.split_first() {
        let (payload, tail) = tail.split_at(usize::from(len).min(tail.len()));
        // Writing into memory fails only past the frame limit, which a
        // payload of at most 255 bytes is far below.
        let _ = write_frame(out, payload);
        rest = tail;
    }
}

/// Builds a snapshot file from arbitrary bytes cut into frames (see
/// [`frame_bytes`]). Only the fuzz hook uses it, so fuzzing reaches the
/// frame sequence behind the CRCs.
pub(crate) fn frame_all(bytes: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    frame_bytes(&mut out, bytes);
    out
}

/// The zxid of [`fuzz_files`]' header.
const FUZZ_ZXID: i64 = 1000;

/// Snapshot files for the fuzz hook that start right (magic, a header,
/// one ACL list), so arbitrary bytes reach the node-block decoder and the
/// tree it builds: the bytes cut into frames, and the bytes as the body of
/// one node block.
pub(crate) fn fuzz_files(bytes: &[u8]) -> [Vec<u8>; 2] {
    let mut start = MAGIC.to_vec();
    let header = Record::SnapshotHeader(SnapshotHeader {
        zxid: FUZZ_ZXID,
        session_id_high: 0,
        taken_ms: 0,
    });
    let acl = Record::Acl(Cow::Owned(crate::node::Acl::open_unsafe()));
    for record in [header, acl] {
        let _ = write_frame(&mut start, &codec::encode(&record));
    }
    let mut framed = start.clone();
    frame_bytes(&mut framed, bytes);
    let mut block = crate::store::blocks::BLOCK_PREFIX.to_vec();
    block.extend_from_slice(bytes);
    let _ = write_frame(&mut start, &block);
    [framed, start]
}

/// One frame's payload, as the decoder sees it.
enum Frame<'a> {
    /// A bincode record.
    Record(Record<'static>),
    /// A node block, borrowed from the frame reader.
    Nodes(&'a [u8]),
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

    /// The next frame, `None` at the end of the input.
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SnapshotError> {
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
        self.offset = at + (FRAME_HEADER_BYTES + len) as u64;
        if let [FORMAT_VERSION, NODE_BLOCK_KIND, ..] = self.payload[..] {
            return Ok(Some(Frame::Nodes(&self.payload)));
        }
        let record = codec::decode(&self.payload).map_err(|e| match e {
            DecodeError::Version(v) => SnapshotError::Version(v),
            other => damaged(other.to_string()),
        })?;
        Ok(Some(Frame::Record(record)))
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

/// An ancestor of the node being decoded.
struct Open {
    id: NodeId,
    /// Length of its path (a prefix of the decoder's path buffer).
    path_len: usize,
    /// Its child-create count, and its children restored so far.
    creates: i32,
    children: u64,
    /// A system node (exempt from the creates check).
    system: bool,
}

/// The tree being rebuilt from node blocks: the nodes' parents come from
/// the depths, every name is checked.
struct TreeBuilder {
    tree: Tree,
    /// Tree ACL index of each `Acl` record, by position.
    acls: Vec<u32>,
    /// The ancestors of the next node, root first.
    stack: Vec<Open>,
    /// The path of the last node.
    path: String,
    /// `/` and the name being checked.
    name_buf: String,
    nodes: u64,
}

impl TreeBuilder {
    fn new() -> TreeBuilder {
        TreeBuilder {
            tree: Tree::empty(),
            acls: Vec::new(),
            stack: Vec::new(),
            path: String::from("/"),
            name_buf: String::new(),
            nodes: 0,
        }
    }

    /// Adds one decoded node.
    fn add(&mut self, node: BlockNode<'_>) -> Result<(), String> {
        let acl = usize::try_from(node.acl)
            .ok()
            .and_then(|idx| self.acls.get(idx))
            .copied()
            .ok_or_else(|| format!("names acl {} of {}", node.acl, self.acls.len()))?;
        let depth = node.depth;
        let id = if depth == 0 {
            if !node.name.is_empty() {
                return Err("a root with a name".into());
            }
            let id = self.tree.restore_root(acl, &node.fields)?;
            self.close(0)?;
            self.path.truncate(1);
            id
        } else {
            let name = node.name;
            if name.is_empty() || name.contains('/') {
                return Err(format!("node name {name:?}"));
            }
            self.name_buf.clear();
            self.name_buf.push('/');
            self.name_buf.push_str(name);
            if let Err(e) = path::validate(&self.name_buf) {
                return Err(format!("node name {e}"));
            }
            self.close(depth)?;
            let parent = self
                .stack
                .get_mut(depth - 1)
                .ok_or_else(|| format!("depth {depth} below no parent"))?;
            parent.children += 1;
            let (parent, parent_len) = (parent.id, parent.path_len);
            self.path.truncate(parent_len);
            if parent_len > 1 {
                self.path.push('/');
            }
            self.path.push_str(name);
            self.tree
                .restore_child(parent, name, &self.path, acl, &node.fields)?
        };
        self.stack.push(Open {
            id,
            path_len: self.path.len(),
            creates: node.fields.creates,
            children: 0,
            system: depth <= 2 && Tree::is_system(&self.path),
        });
        self.nodes += 1;
        Ok(())
    }

    /// Closes the ancestors at `depth` and below (their children are all
    /// restored): a node has at least as many child creates as children
    /// (system nodes aside), or sequence numbers would repeat.
    fn close(&mut self, depth: usize) -> Result<(), String> {
        while self.stack.len() > depth {
            let Some(open) = self.stack.pop() else { break };
            if !open.system && i64::from(open.creates) < open.children as i64 {
                // The closed nodes are the last node and its ancestors:
                // their paths are prefixes of the path buffer.
                let p = self.path.get(..open.path_len).unwrap_or_default();
                return Err(format!("node {p:?} has fewer creates than children"));
            }
        }
        Ok(())
    }
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
    let header = match frames.next_frame()? {
        Some(Frame::Record(Record::SnapshotHeader(header))) => header,
        Some(Frame::Record(other)) => {
            return Err(SnapshotError::Damaged(format!(
                "starts with a {} record, not a header",
                other.kind_name()
            )))
        }
        Some(Frame::Nodes(_)) => return Err(damaged("starts with nodes, not a header")),
        None => return Err(damaged("no header")),
    };
    if header.zxid < 0 {
        return Err(SnapshotError::Damaged(format!(
            "negative zxid {}",
            header.zxid
        )));
    }
    let mut builder = TreeBuilder::new();
    let mut blocks = BlockReader::new(header.zxid);
    let mut sessions = SessionTable::new();
    let mut n_sessions = 0u64;
    loop {
        let at = frames.offset;
        let frame = frames
            .next_frame()?
            .ok_or_else(|| damaged("no end record (truncated file)"))?;
        let record = match frame {
            Frame::Nodes(payload) => {
                if n_sessions > 0 {
                    return Err(damaged("node block after sessions"));
                }
                blocks
                    .read(payload, |node| builder.add(node))
                    .map_err(|e| {
                        SnapshotError::Damaged(format!(
                            "node {} at byte {}: {}",
                            builder.nodes,
                            at + (FRAME_HEADER_BYTES + e.at) as u64,
                            e.why
                        ))
                    })?;
                continue;
            }
            Frame::Record(record) => record,
        };
        match record {
            Record::Acl(list) => {
                if builder.nodes > 0 || n_sessions > 0 {
                    return Err(damaged("acl record after nodes"));
                }
                let idx = builder.tree.intern_acl(&list);
                builder.acls.push(idx);
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
                builder.close(0).map_err(SnapshotError::Damaged)?;
                let seen = SnapshotEnd {
                    acls: builder.acls.len() as u64,
                    nodes: builder.nodes,
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
    // The checks of `State::check_invariants` the tree builder and the
    // block reader do not make: every ephemeral's owner is a session of
    // the snapshot (the tree indexes ephemerals by owner).
    for owner in builder.tree.ephemeral_owners() {
        if sessions.get(owner).is_none() {
            let p = builder.tree.ephemerals_of(owner).next();
            return Err(SnapshotError::Damaged(format!(
                "ephemeral {p:?} of unknown session {owner:#x}"
            )));
        }
    }
    let state = State::restore(builder.tree, sessions, header.zxid);
    if SYSTEM_PATHS.iter().any(|p| state.tree.get(p).is_none()) {
        return Err(damaged("a system node is missing"));
    }
    Ok(Decoded { state, header })
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
    use crate::tree::Restored;
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

    /// A node of a snapshot, owned, for tests that rewrite the node list.
    #[derive(Clone)]
    struct Part {
        depth: usize,
        name: String,
        acl: u32,
        data: Option<Vec<u8>>,
        fields: Restored<'static>,
    }

    fn parts(state: &State) -> Vec<Part> {
        let mut out = Vec::new();
        let _ = state.tree.freeze().walk(|_, depth, name, node| {
            out.push(Part {
                depth,
                name: name.to_string(),
                acl: Frozen::acl_index(&node),
                data: node.data().map(<[u8]>::to_vec),
                fields: Restored {
                    data: None,
                    ..node.restored()
                },
            });
            Ok::<(), ()>(())
        });
        out
    }

    /// The snapshot file of `state` with its nodes replaced by `nodes`.
    fn file_with(state: &State, nodes: &[Part]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let put = |out: &mut Vec<u8>, record: Record<'_>| {
            write_frame(out, &codec::encode(&record)).unwrap();
        };
        let zxid = state.last_zxid;
        put(
            &mut out,
            Record::SnapshotHeader(SnapshotHeader {
                zxid,
                session_id_high: 0,
                taken_ms: 0,
            }),
        );
        let frozen = state.tree.freeze();
        for list in frozen.acl_lists() {
            put(&mut out, Record::Acl(Cow::Borrowed(&list[..])));
        }
        let mut blocks = BlockWriter::new(zxid, BLOCK_BYTES);
        let mut payloads = Vec::new();
        let mut emit = |payload: &[u8]| {
            payloads.push(payload.to_vec());
            Ok(())
        };
        for part in nodes {
            let node = BlockNode {
                depth: part.depth,
                name: &part.name,
                acl: part.acl,
                fields: Restored {
                    data: part.data.as_deref(),
                    ..part.fields.clone()
                },
            };
            blocks.push(&node, &mut emit).unwrap();
        }
        blocks.finish(&mut emit).unwrap();
        for payload in payloads {
            write_frame(&mut out, &payload).unwrap();
        }
        let ids = state.sessions.ids();
        for &session_id in &ids {
            let entry = state.sessions.get(session_id).unwrap();
            put(
                &mut out,
                Record::Session(SnapshotSession {
                    session_id,
                    timeout_ms: entry.timeout_ms,
                    password: entry.password,
                }),
            );
        }
        put(
            &mut out,
            Record::SnapshotEnd(SnapshotEnd {
                acls: frozen.acl_lists().len() as u64,
                nodes: nodes.len() as u64,
                sessions: ids.len() as u64,
            }),
        );
        out
    }

    /// (payload length, is a node block) of every frame of a file.
    fn frames_of(bytes: &[u8]) -> Vec<(usize, bool)> {
        let mut frames = Frames::new(&bytes[MAGIC.len()..], MAGIC.len() as u64);
        let mut out = Vec::new();
        loop {
            let at = frames.offset;
            let Some(frame) = frames.next_frame().unwrap() else {
                break;
            };
            let is_block = matches!(frame, Frame::Nodes(_));
            let len = (frames.offset - at) as usize - FRAME_HEADER_BYTES;
            out.push((len, is_block));
        }
        out
    }

    fn encode_blocks_of(state: &State, block_bytes: usize) -> Vec<u8> {
        let mut out = Vec::new();
        Source::of(state, 0, 0)
            .write_blocks_of(block_bytes, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn siblings_out_of_order_or_depth_jumps_are_damage() {
        let state = sample_state();
        let nodes = parts(&state);
        assert!(decode(&file_with(&state, &nodes)).is_ok());
        // Swap two siblings ("a" and "c" under the root).
        let a = nodes.iter().position(|n| n.name == "a").unwrap();
        let c = nodes.iter().position(|n| n.name == "c").unwrap();
        let mut swapped = nodes.clone();
        swapped.swap(a, c);
        assert!(decode(&file_with(&state, &swapped)).is_err());
        // The same name twice.
        let mut twice = nodes.clone();
        twice[c].name = "a".into();
        assert!(decode(&file_with(&state, &twice)).is_err());
        // A second root, a root with a name, a name with a slash or none.
        let mut rooted = nodes.clone();
        rooted[c].depth = 0;
        rooted[c].name.clear();
        assert!(decode(&file_with(&state, &rooted)).is_err());
        for name in ["", "x/y", ".", "..", "a\u{0}"] {
            let mut renamed = nodes.clone();
            renamed[c].name = name.into();
            assert!(decode(&file_with(&state, &renamed)).is_err(), "{name:?}");
        }
        let mut named = nodes.clone();
        named[0].name = "r".into();
        assert!(decode(&file_with(&state, &named)).is_err());
        // A child of an ephemeral ("e" under "a" is one).
        let e = nodes.iter().position(|n| n.name == "e").unwrap();
        let mut under = nodes.clone();
        let mut child = nodes[e].clone();
        child.depth += 1;
        child.fields.owner = 0;
        under.insert(e + 1, child);
        assert!(decode(&file_with(&state, &under)).is_err());
        // An unknown ACL.
        let mut acl = nodes.clone();
        acl[c].acl = 99;
        assert!(decode(&file_with(&state, &acl)).is_err());
        // Fewer child creates than children ("a" has one child, the last
        // node has none).
        let a = nodes.iter().position(|n| n.name == "a").unwrap();
        let mut creates = nodes.clone();
        creates[a].fields.creates = 0;
        let err = decode(&file_with(&state, &creates)).err().unwrap();
        assert!(
            err.to_string().contains("\"/a\" has fewer creates"),
            "{err}"
        );
        // The same found at the end of the nodes.
        let mut at_end = nodes.clone();
        let mut zz = nodes[a].clone();
        zz.name = "zz".into();
        zz.fields.creates = 0;
        let mut leaf = nodes[c].clone();
        leaf.depth = 2;
        at_end.extend([zz, leaf]);
        let err = decode(&file_with(&state, &at_end)).err().unwrap();
        assert!(
            err.to_string().contains("\"/zz\" has fewer creates"),
            "{err}"
        );
        // An ephemeral of a session the snapshot does not hold.
        let mut orphan = nodes.clone();
        orphan[e].fields.owner = 0x99;
        let err = decode(&file_with(&state, &orphan)).err().unwrap();
        assert!(err.to_string().contains("unknown session 0x99"), "{err}");
    }

    #[test]
    fn blocks_cut_anywhere_round_trip() {
        let state = sample_state();
        let whole = frames_of(&encode_blocks_of(&state, usize::MAX));
        let blocks: Vec<usize> = whole.iter().filter(|f| f.1).map(|f| f.0).collect();
        assert_eq!(blocks.len(), 1, "{whole:?}");
        let exact = blocks[0];
        for block_bytes in 0..=exact + 1 {
            let bytes = encode_blocks_of(&state, block_bytes);
            let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{block_bytes}: {e}"));
            assert_same(&state, &decoded.state);
            let frames = frames_of(&bytes);
            let n_blocks = frames.iter().filter(|f| f.1).count();
            // An exactly full block is one block; one byte less is two.
            if block_bytes >= exact {
                assert_eq!(n_blocks, 1, "{block_bytes}");
            } else if block_bytes == exact - 1 {
                assert_eq!(n_blocks, 2, "{block_bytes}");
            }
            if block_bytes == 0 {
                assert_eq!(n_blocks, state.tree.len());
            }
        }
    }

    #[test]
    fn a_node_larger_than_a_block_gets_a_block_of_its_own() {
        let mut state = sample_state();
        let big = vec![0xAB; BLOCK_BYTES * 2];
        for (i, name) in ["/b", "/big", "/bz"].into_iter().enumerate() {
            let data = if name == "/big" {
                big.clone()
            } else {
                vec![1; 10]
            };
            let txn = Txn {
                zxid: state.last_zxid + 1,
                time_ms: 2000 + i as i64,
                op: TxnOp::Create(CreateTxn {
                    path: name.into(),
                    data: Some(data),
                    acl: Acl::open_unsafe(),
                    owner: 0,
                }),
            };
            state.apply(&txn).unwrap();
        }
        let bytes = encode(&state, 0, 0).unwrap();
        let blocks: Vec<usize> = frames_of(&bytes)
            .into_iter()
            .filter(|f| f.1)
            .map(|f| f.0)
            .collect();
        assert_eq!(blocks.len(), 3, "{blocks:?}");
        assert!(blocks[1] > big.len() && blocks[1] < big.len() + 64);
        assert!(blocks[0] < 200 && blocks[2] < 200, "{blocks:?}");
        let decoded = decode(&bytes).unwrap();
        assert_same(&state, &decoded.state);
        decoded.state.check_invariants().unwrap();
    }

    #[test]
    fn a_tree_of_system_nodes_only_is_one_small_block() {
        let state = State::new();
        let bytes = encode(&state, 0, 0).unwrap();
        let frames = frames_of(&bytes);
        let blocks: Vec<usize> = frames.iter().filter(|f| f.1).map(|f| f.0).collect();
        assert_eq!(blocks.len(), 1, "{frames:?}");
        assert!(blocks[0] < 4 * 32, "{blocks:?}");
        let decoded = decode(&bytes).unwrap();
        assert_same(&state, &decoded.state);
        decoded.state.check_invariants().unwrap();
    }

    #[test]
    fn fields_at_their_extremes_round_trip() {
        // Large zxids, times going backwards, mtime before ctime, owners
        // of every kind (negative for containers and TTL nodes).
        let mut state = State::new();
        let base = i64::MAX - 100;
        let ttl_owner = crate::tree::NodeKind::Ttl(crate::tree::TTL_MAX_MS).owner();
        let ops = [
            (
                i64::MAX,
                TxnOp::CreateSession {
                    session_id: i64::MAX,
                    timeout_ms: i32::MAX,
                    password: [0xFF; 16],
                },
            ),
            (i64::MIN, create("/a", Some(b""), 0)),
            (-1, create("/a/c", None, crate::tree::CONTAINER_OWNER)),
            (1_700_000_000_000, create("/a/c/x", Some(b"1"), 0)),
            (0, create("/t", Some(b"t"), ttl_owner)),
            (i64::MAX, create("/e", None, i64::MAX)),
            (1, create("/z", Some(&[0; 300]), 0)),
            (
                i64::MIN,
                TxnOp::SetData {
                    path: "/z".into(),
                    data: None,
                },
            ),
        ];
        for (i, (time_ms, op)) in ops.into_iter().enumerate() {
            let txn = Txn {
                zxid: base + i as i64,
                time_ms,
                op,
            };
            state.apply(&txn).unwrap();
        }
        let z = state.tree.get("/z").unwrap();
        assert!(z.mtime < z.ctime);
        for block_bytes in [0, 40, BLOCK_BYTES] {
            let decoded = decode(&encode_blocks_of(&state, block_bytes)).unwrap();
            assert_same(&state, &decoded.state);
            decoded.state.check_invariants().unwrap();
        }
    }

    fn create(path: &str, data: Option<&[u8]>, owner: i64) -> TxnOp {
        TxnOp::Create(CreateTxn {
            path: path.into(),
            data: data.map(<[u8]>::to_vec),
            acl: Acl::open_unsafe(),
            owner,
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn random_trees_round_trip(
            steps in proptest::collection::vec(
                (0usize..64, 0u8..4, proptest::option::of(proptest::collection::vec(0u8..=255, 0..40)), -3i64..3, 0u8..5),
                0..120,
            ),
            block_bytes in proptest::sample::select(vec![0usize, 17, 200, 4096, BLOCK_BYTES]),
        ) {
            let mut state = State::new();
            let mut paths = vec![String::from("/")];
            let session = 0x0100_0000_0000_0001;
            let mut zxid = 1;
            state.apply(&Txn {
                zxid,
                time_ms: 0,
                op: TxnOp::CreateSession { session_id: session, timeout_ms: 4000, password: [1; 16] },
            }).unwrap();
            let mut time = 1_700_000_000_000i64;
            for (parent, name, data, dt, kind) in steps {
                zxid += 1;
                time += dt * 1000;
                let parent = &paths[parent % paths.len()];
                let p = crate::path::join(parent, &format!("n{name}"));
                let owner = match kind {
                    0 => session,
                    1 => crate::tree::CONTAINER_OWNER,
                    2 => crate::tree::NodeKind::Ttl(5000).owner(),
                    _ => 0,
                };
                let exists = state.tree.get(&p).is_some();
                let op = if exists {
                    TxnOp::SetData { path: p.clone(), data }
                } else {
                    create(&p, data.as_deref(), owner)
                };
                if state.apply(&Txn { zxid, time_ms: time, op }).is_ok() {
                    // Ephemerals get no children.
                    if !exists && owner != session {
                        paths.push(p);
                    }
                } else {
                    zxid -= 1;
                }
            }
            let decoded = decode(&encode_blocks_of(&state, block_bytes)).unwrap();
            assert_same(&state, &decoded.state);
            decoded.state.check_invariants().unwrap();
        }
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
