//! Node blocks: a snapshot's nodes, many to a frame, in a compact
//! encoding written and read by hand.
//!
//! A block is the payload of one snapshot frame:
//! `[FORMAT_VERSION, NODE_BLOCK_KIND]` (the two bytes bincode would give
//! `Record::NodeBlock`), then one or more nodes back to back, nothing
//! else. The writer fills a block up to [`BLOCK_BYTES`] of payload and
//! starts the next one with the node that would not fit; a node larger
//! than that gets a block of its own. Nodes come depth first from the
//! root, children in name order, and several fields are deltas from the
//! previous node, so blocks are read in file order.
//!
//! One node, every integer a LEB128 varint (`varint.rs`; "zvar" is
//! zigzag-mapped first):
//!
//! | field | encoding | value |
//! |---|---|---|
//! | rise | uvar | levels climbed: previous node's depth + 1 − depth (the root, first, is 0) |
//! | name | uvar length, bytes | the last path segment, UTF-8 (empty for the root) |
//! | acl | uvar (u32) | position of the node's ACL list among the `Acl` frames |
//! | czxid | uvar | snapshot zxid − czxid |
//! | mzxid | uvar | mzxid − czxid |
//! | pzxid | uvar | pzxid − czxid |
//! | ctime | zvar | ctime − previous node's ctime (0 before the first), mod 2^64 |
//! | mtime | zvar | mtime − ctime, mod 2^64 |
//! | version | uvar (u32) | the i32's bits |
//! | creates | uvar (u32) | the i32's bits |
//! | aversion | uvar (u32) | the i32's bits |
//! | owner | zvar | the stored owner (session id, container or TTL encoding) |
//! | data | uvar, bytes | 0: null; n + 1: n bytes follow |
//!
//! A node's parent is the last node before it one level up, so a rise
//! cannot point below a child of the previous node, and the reader needs
//! only the rise to rebuild the stack of ancestors. The zxid fields are
//! never negative for a valid state (0 <= czxid <= mzxid, pzxid <= the
//! snapshot's zxid); the reader treats any other value as damage. The
//! time deltas wrap, so every pair of `i64` times has an encoding.
//!
//! Reading borrows names and data from the block (no allocation per
//! node) and reports every problem with its offset; it checks the
//! encoding and the zxids, and leaves names and the tree's structure to
//! the caller.

use std::io;

use crate::store::codec::{FORMAT_VERSION, NODE_BLOCK_KIND};
use crate::store::varint::{self, Cursor, VarintError};
use crate::tree::Restored;

/// Payload bytes at which the writer starts a new block.
pub(crate) const BLOCK_BYTES: usize = 64 << 10;

/// The first bytes of every block.
pub(crate) const BLOCK_PREFIX: [u8; 2] = [FORMAT_VERSION, NODE_BLOCK_KIND];

/// One node of a block, borrowed from the tree (writing) or from the block
/// (reading).
#[derive(Debug, Clone)]
pub(crate) struct BlockNode<'a> {
    /// Number of path segments (0 for the root).
    pub depth: usize,
    /// The last path segment (empty for the root).
    pub name: &'a str,
    /// Position of the node's ACL list among the snapshot's `Acl` frames.
    pub acl: u32,
    /// Every other stored field.
    pub fields: Restored<'a>,
}

/// Encodes nodes into blocks. The block buffer is reused: nothing is
/// allocated per node.
pub(crate) struct BlockWriter {
    /// The snapshot's zxid (the base of `czxid`).
    zxid: i64,
    /// Where a block is cut.
    block_bytes: usize,
    /// The block being filled, [`BLOCK_PREFIX`] included.
    block: Vec<u8>,
    /// Depth of the previous node + 1 (0 before the root).
    levels: usize,
    /// ctime of the previous node.
    ctime: i64,
}

impl BlockWriter {
    /// A writer for a snapshot at `zxid`, cutting blocks at `block_bytes`
    /// of payload ([`BLOCK_BYTES`] outside tests).
    pub(crate) fn new(zxid: i64, block_bytes: usize) -> BlockWriter {
        let mut block = Vec::with_capacity(block_bytes.min(BLOCK_BYTES) + 256);
        block.extend_from_slice(&BLOCK_PREFIX);
        BlockWriter {
            zxid,
            block_bytes,
            block,
            levels: 0,
            ctime: 0,
        }
    }

    /// Adds `node`, handing each completed block's payload to `emit`.
    /// Fails (and adds nothing) when the node is not the child of an
    /// earlier node or its zxids are out of order; passes `emit`'s error
    /// on.
    pub(crate) fn push(
        &mut self,
        node: &BlockNode<'_>,
        emit: &mut impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let start = self.block.len();
        self.encode(node)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        if self.block.len() > self.block_bytes && start > BLOCK_PREFIX.len() {
            // The node does not fit: what came before it is a block, and
            // the node starts the next.
            emit(&self.block[..start])?;
            self.block.drain(BLOCK_PREFIX.len()..start);
        }
        Ok(())
    }

    /// Hands the last block (if it holds a node) to `emit`.
    pub(crate) fn finish(
        &mut self,
        emit: &mut impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.block.len() > BLOCK_PREFIX.len() {
            emit(&self.block)?;
            self.block.truncate(BLOCK_PREFIX.len());
        }
        Ok(())
    }

    fn encode(&mut self, node: &BlockNode<'_>) -> Result<(), String> {
        let f = &node.fields;
        let rise = self
            .levels
            .checked_sub(node.depth)
            .ok_or_else(|| format!("node {:?} at depth {} has no parent", node.name, node.depth))?;
        let out_of_order = || {
            format!(
                "node {:?} has zxids out of order (czxid {:#x}, mzxid {:#x}, pzxid {:#x}, snapshot {:#x})",
                node.name, f.czxid, f.mzxid, f.pzxid, self.zxid
            )
        };
        if f.czxid < 0 || f.czxid > self.zxid {
            return Err(out_of_order());
        }
        let steps = [f.mzxid, f.pzxid].map(|z| {
            if z < f.czxid || z > self.zxid {
                None
            } else {
                Some(z.abs_diff(f.czxid))
            }
        });
        let [Some(mzxid_step), Some(pzxid_step)] = steps else {
            return Err(out_of_order());
        };
        let out = &mut self.block;
        varint::put_u64(out, rise as u64);
        varint::put_u64(out, node.name.len() as u64);
        out.extend_from_slice(node.name.as_bytes());
        varint::put_u64(out, u64::from(node.acl));
        varint::put_u64(out, self.zxid.abs_diff(f.czxid));
        varint::put_u64(out, mzxid_step);
        varint::put_u64(out, pzxid_step);
        varint::put_i64(out, f.ctime.wrapping_sub(self.ctime));
        varint::put_i64(out, f.mtime.wrapping_sub(f.ctime));
        for v in [f.version, f.creates, f.aversion] {
            varint::put_u64(out, u64::from(v as u32));
        }
        varint::put_i64(out, f.owner);
        match f.data {
            None => varint::put_u64(out, 0),
            Some(data) => {
                varint::put_u64(out, data.len() as u64 + 1);
                out.extend_from_slice(data);
            }
        }
        self.levels = node.depth + 1;
        self.ctime = f.ctime;
        Ok(())
    }
}

/// Why a block did not decode: what, and the offset in the block payload
/// (prefix included) of the node it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockError {
    /// Offset of the node in the payload.
    pub at: usize,
    /// What is wrong.
    pub why: String,
}

/// Decodes blocks, in file order (fields are deltas from the previous
/// node, across blocks).
pub(crate) struct BlockReader {
    zxid: i64,
    levels: usize,
    ctime: i64,
}

impl BlockReader {
    /// A reader for a snapshot at `zxid` (not negative).
    pub(crate) fn new(zxid: i64) -> BlockReader {
        BlockReader {
            zxid,
            levels: 0,
            ctime: 0,
        }
    }

    /// Calls `f` with each node of `payload` (a whole block, prefix
    /// included), in order; stops at the first error, the decoder's or
    /// `f`'s.
    pub(crate) fn read<'a>(
        &mut self,
        payload: &'a [u8],
        mut f: impl FnMut(BlockNode<'a>) -> Result<(), String>,
    ) -> Result<(), BlockError> {
        let body = match payload.strip_prefix(&BLOCK_PREFIX[..]) {
            Some(body) if !body.is_empty() => body,
            Some(_) => {
                return Err(BlockError {
                    at: 0,
                    why: "a node block without nodes".into(),
                })
            }
            None => {
                return Err(BlockError {
                    at: 0,
                    why: "not a node block".into(),
                })
            }
        };
        let mut cursor = Cursor::new(body);
        while !cursor.is_empty() {
            let at = BLOCK_PREFIX.len() + cursor.pos();
            let node = self
                .node(&mut cursor)
                .and_then(|node| {
                    let next = (node.depth + 1, node.fields.ctime);
                    f(node)?;
                    Ok(next)
                })
                .map_err(|why| BlockError { at, why })?;
            (self.levels, self.ctime) = node;
        }
        Ok(())
    }

    /// Decodes the node at the cursor.
    fn node<'a>(&self, cursor: &mut Cursor<'a>) -> Result<BlockNode<'a>, String> {
        let field = |name: &'static str| move |e: VarintError| format!("{name}: {e}");
        let rise = cursor.u64().map_err(field("rise"))?;
        let depth = usize::try_from(rise)
            .ok()
            .and_then(|rise| self.levels.checked_sub(rise))
            .ok_or_else(|| format!("climbs {rise} levels from depth {}", self.levels as i64 - 1))?;
        let name_len = cursor.u64().map_err(field("name length"))?;
        let name = cursor.take(name_len).map_err(field("name"))?;
        let name = std::str::from_utf8(name).map_err(|e| format!("name: {e}"))?;
        let acl = cursor.u32().map_err(field("acl"))?;
        let czxid_back = cursor.u64().map_err(field("czxid"))?;
        let czxid = i64::try_from(czxid_back)
            .ok()
            .and_then(|back| self.zxid.checked_sub(back))
            .filter(|&z| z >= 0)
            .ok_or_else(|| format!("czxid {czxid_back} below the snapshot's {}", self.zxid))?;
        let mut above_czxid = |what: &'static str| {
            let step = cursor.u64().map_err(field(what))?;
            i64::try_from(step)
                .ok()
                .and_then(|step| czxid.checked_add(step))
                .filter(|&z| z <= self.zxid)
                .ok_or_else(|| {
                    format!(
                        "{what} {step} above czxid {czxid:#x} passes the snapshot's {:#x}",
                        self.zxid
                    )
                })
        };
        let mzxid = above_czxid("mzxid")?;
        let pzxid = above_czxid("pzxid")?;
        let ctime = self
            .ctime
            .wrapping_add(cursor.i64().map_err(field("ctime"))?);
        let mtime = ctime.wrapping_add(cursor.i64().map_err(field("mtime"))?);
        let version = cursor.u32().map_err(field("version"))? as i32;
        let creates = cursor.u32().map_err(field("creates"))? as i32;
        let aversion = cursor.u32().map_err(field("aversion"))? as i32;
        let owner = cursor.i64().map_err(field("owner"))?;
        let data = match cursor.u64().map_err(field("data length"))? {
            0 => None,
            tag => Some(cursor.take(tag - 1).map_err(field("data"))?),
        };
        Ok(BlockNode {
            depth,
            name,
            acl,
            fields: Restored {
                data,
                czxid,
                mzxid,
                pzxid,
                ctime,
                mtime,
                version,
                creates,
                aversion,
                owner,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(czxid: i64, data: Option<&[u8]>) -> Restored<'_> {
        Restored {
            data,
            czxid,
            mzxid: czxid,
            pzxid: czxid,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_000,
            version: 0,
            creates: 0,
            aversion: 0,
            owner: 0,
        }
    }

    /// A node under ACL 0 with `fields(czxid, data)`.
    fn node<'a>(depth: usize, name: &'a str, czxid: i64, data: Option<&'a [u8]>) -> BlockNode<'a> {
        BlockNode {
            depth,
            name,
            acl: 0,
            fields: fields(czxid, data),
        }
    }

    /// Encodes `nodes` into blocks of `block_bytes`; returns the payloads.
    fn write(zxid: i64, block_bytes: usize, nodes: &[BlockNode<'_>]) -> Vec<Vec<u8>> {
        let mut writer = BlockWriter::new(zxid, block_bytes);
        let mut blocks = Vec::new();
        let mut emit = |b: &[u8]| {
            blocks.push(b.to_vec());
            Ok::<(), io::Error>(())
        };
        for node in nodes {
            writer.push(node, &mut emit).unwrap();
        }
        writer.finish(&mut emit).unwrap();
        blocks
    }

    /// Decodes the payloads into (depth, name, acl, fields) tuples.
    fn read(zxid: i64, blocks: &[Vec<u8>]) -> Result<Vec<String>, BlockError> {
        let mut reader = BlockReader::new(zxid);
        let mut out = Vec::new();
        for block in blocks {
            reader.read(block, |n| {
                out.push(format!("{} {} {} {:?}", n.depth, n.name, n.acl, n.fields));
                Ok(())
            })?;
        }
        Ok(out)
    }

    fn shown(nodes: &[BlockNode<'_>]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| format!("{} {} {} {:?}", n.depth, n.name, n.acl, n.fields))
            .collect()
    }

    #[test]
    fn null_and_empty_data_stay_apart() {
        let nodes = [node(0, "", 0, None), node(1, "a", 0, Some(b""))];
        let blocks = write(0, BLOCK_BYTES, &nodes);
        assert_eq!(blocks.len(), 1);
        let decoded = read(0, &blocks).unwrap();
        assert!(decoded[0].contains("data: None"), "{}", decoded[0]);
        assert!(decoded[1].contains("data: Some([])"), "{}", decoded[1]);
    }

    #[test]
    fn a_small_node_costs_a_few_bytes() {
        // A 16-byte value under a 4-letter name, created a while ago.
        let value = [7u8; 16];
        let nodes = [node(0, "", 0, None), node(1, "n123", 9_000, Some(&value))];
        let one = write(10_000, BLOCK_BYTES, &nodes[..1])[0].len();
        let two = write(10_000, BLOCK_BYTES, &nodes)[0].len();
        // 16 data + 4 name + 2 lengths + 2 for czxid + 1 per other field.
        assert!(two - one <= 34, "{} bytes", two - one);
    }

    #[test]
    fn extremes_round_trip() {
        let z = i64::MAX;
        let mut nodes = vec![BlockNode {
            depth: 0,
            name: "",
            acl: 0,
            fields: Restored {
                ctime: i64::MIN,
                mtime: i64::MAX,
                ..fields(0, None)
            },
        }];
        let cases: [(i64, i64, i64, i64, i64, i64); 6] = [
            // (czxid, mzxid, pzxid, ctime, mtime, owner)
            (0, 0, 0, i64::MAX, i64::MIN, i64::MIN),
            (z, z, z, 0, -1, -1),
            (0, z, z, -5, i64::MAX, i64::MAX),
            (
                1,
                2,
                3,
                1_700_000_000_000,
                1_600_000_000_000,
                0xFF << 56 | 5_000,
            ),
            (
                5,
                5,
                z,
                1_699_999_999_999,
                1_699_999_999_999,
                0x0100_0000_0000_0001,
            ),
            (0, 0, 0, 0, 0, 0),
        ];
        for (i, (czxid, mzxid, pzxid, ctime, mtime, owner)) in cases.into_iter().enumerate() {
            nodes.push(BlockNode {
                depth: 1 + i % 2,
                name: ["a", "b", "c", "d", "e", "f"][i],
                acl: [0, u32::MAX][i % 2],
                fields: Restored {
                    data: Some(b"x"),
                    czxid,
                    mzxid,
                    pzxid,
                    ctime,
                    mtime,
                    version: [i32::MIN, -1, i32::MAX][i % 3],
                    creates: [0, i32::MAX, -1][i % 3],
                    aversion: [-1, 0, i32::MIN][i % 3],
                    owner,
                },
            });
        }
        let blocks = write(z, BLOCK_BYTES, &nodes);
        assert_eq!(read(z, &blocks).unwrap(), shown(&nodes));
    }

    #[test]
    fn blocks_are_cut_where_the_next_node_does_not_fit() {
        let big = vec![1u8; 500];
        let mut nodes = vec![node(0, "", 0, None)];
        let names: Vec<String> = (0..40).map(|i| format!("n{i:02}")).collect();
        for (i, name) in names.iter().enumerate() {
            let data = if i % 7 == 3 { &big[..] } else { &big[..i] };
            nodes.push(node(1, name, 0, Some(data)));
        }
        let whole = write(0, usize::MAX, &nodes);
        assert_eq!(whole.len(), 1);
        // With blocks of no bytes, every node is a block of its own.
        let sizes: Vec<usize> = write(0, 0, &nodes).iter().map(|b| b.len() - 2).collect();
        assert_eq!(sizes.len(), nodes.len());
        for block_bytes in [0, 1, 2, 3, 10, 40, 64, 100, 333, 600, 1000, 4000] {
            let blocks = write(0, block_bytes, &nodes);
            assert_eq!(read(0, &blocks).unwrap(), shown(&nodes), "{block_bytes}");
            // Same bytes, only cut differently.
            let body: Vec<u8> = blocks.iter().flat_map(|b| b[2..].to_vec()).collect();
            assert_eq!(body, whole[0][2..], "{block_bytes}");
            // Cut greedily: a node starts a new block when it would take a
            // block with nodes in it past the size.
            let mut expected = vec![2usize];
            for &size in &sizes {
                let last = expected.last_mut().unwrap();
                if *last > 2 && *last + size > block_bytes {
                    expected.push(2 + size);
                } else {
                    *last += size;
                }
            }
            let lens: Vec<usize> = blocks.iter().map(Vec::len).collect();
            assert_eq!(lens, expected, "{block_bytes}");
        }
    }

    #[test]
    fn an_exactly_full_block_is_not_split() {
        let nodes = [node(0, "", 0, None), node(1, "a", 0, Some(b"abc"))];
        let exact = write(0, usize::MAX, &nodes)[0].len();
        assert_eq!(write(0, exact, &nodes).len(), 1);
        assert_eq!(write(0, exact - 1, &nodes).len(), 2);
    }

    #[test]
    fn bad_depths_and_zxids_are_errors() {
        let root = node(0, "", 0, None);
        // The writer refuses what the reader would.
        let mut writer = BlockWriter::new(10, BLOCK_BYTES);
        let mut emit = |_: &[u8]| Ok::<(), io::Error>(());
        let deep = BlockNode {
            depth: 1,
            ..root.clone()
        };
        assert!(writer.push(&deep, &mut emit).is_err());
        for (c, m, p) in [
            (-1, 0, 0),
            (11, 11, 11),
            (5, 4, 5),
            (5, 5, 4),
            (5, 11, 5),
            (5, 5, 11),
        ] {
            let node = BlockNode {
                fields: Restored {
                    czxid: c,
                    mzxid: m,
                    pzxid: p,
                    ..fields(0, None)
                },
                ..root.clone()
            };
            assert!(writer.push(&node, &mut emit).is_err(), "{c} {m} {p}");
        }
        // Hand-made bodies the reader must refuse.
        let body = |fields: &[u64]| {
            let mut out = BLOCK_PREFIX.to_vec();
            for &f in fields {
                varint::put_u64(&mut out, f);
            }
            out
        };
        // rise, name length, acl, czxid, mzxid, pzxid, ctime, mtime,
        // version, creates, aversion, owner, data
        let good = [0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(BlockReader::new(10).read(&body(&good), |_| Ok(())).is_ok());
        let bad: [(usize, u64); 5] = [(0, 1), (3, 11), (3, u64::MAX), (4, 11), (5, u64::MAX)];
        for (at, value) in bad {
            let mut fields = good;
            fields[at] = value;
            let err = BlockReader::new(10).read(&body(&fields), |_| Ok(()));
            assert!(err.is_err(), "field {at} = {value}");
        }
        assert!(BlockReader::new(10)
            .read(&BLOCK_PREFIX, |_| Ok(()))
            .is_err());
        assert!(BlockReader::new(10).read(&[], |_| Ok(())).is_err());
        // Trailing garbage after a node.
        let mut long = body(&good);
        long.push(0x80);
        assert!(BlockReader::new(10).read(&long, |_| Ok(())).is_err());
        // The callback's error stops the read, with the node's offset.
        let err = BlockReader::new(10).read(&body(&good), |_| Err("no".into()));
        assert_eq!(
            err,
            Err(BlockError {
                at: 2,
                why: "no".into()
            })
        );
    }
}
