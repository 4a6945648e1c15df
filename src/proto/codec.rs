//! Jute primitives: the [`DecodeError`], a bounds-checked [`Reader`], a
//! [`Writer`], and the [`Record`] trait that ties a type to its encoding.
//!
//! Encoding rules (`docs/zookeeper-semantics.md` H.2): integers are big-endian,
//! a boolean is one byte (non-zero reads as true), buffers, strings and
//! vectors carry an `i32` length or count first, and `-1` means null.

use std::fmt;

use crate::node::{Acl, Id, Perms, Stat};

/// Bytes that could not be decoded: where, why, and which kind of failure.
///
/// Offsets count from the start of the slice handed to the decoder (for a
/// frame, the first byte after the 4-byte length prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    offset: usize,
    reason: &'static str,
    kind: DecodeErrorKind,
}

/// The two decode failures a server answers differently (`docs/zookeeper-semantics.md` H.9).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The bytes do not form the expected record: truncated, a bad length,
    /// invalid UTF-8, a multi op of the wrong kind. A server answers
    /// MarshallingError (−5) if the request header itself was readable.
    Malformed,
    /// The opcode (the value carried) is not one this protocol knows. A
    /// server answers Unimplemented (−6), then closes the connection.
    UnknownOpcode(i32),
}

impl DecodeError {
    pub(crate) fn malformed(offset: usize, reason: &'static str) -> DecodeError {
        DecodeError {
            offset,
            reason,
            kind: DecodeErrorKind::Malformed,
        }
    }

    pub(crate) fn unknown_opcode(offset: usize, opcode: i32) -> DecodeError {
        DecodeError {
            offset,
            reason: "unknown opcode",
            kind: DecodeErrorKind::UnknownOpcode(opcode),
        }
    }

    /// Byte offset of the item that failed to decode.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// A short description of what was wrong.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// True when the opcode was unknown (as opposed to a malformed record).
    pub fn is_unknown_opcode(&self) -> bool {
        matches!(self.kind, DecodeErrorKind::UnknownOpcode(_))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DecodeErrorKind::Malformed => write!(f, "{} at byte {}", self.reason, self.offset),
            DecodeErrorKind::UnknownOpcode(op) => {
                write!(f, "unknown opcode {op} at byte {}", self.offset)
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a byte slice that decodes jute values.
///
/// Every read checks the bytes remaining first; a length or count is
/// checked against them *before* anything is allocated, so a hostile
/// length costs nothing. No read panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    // Invariant: pos <= bytes.len().
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the first byte of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// Offset of the next byte to be read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Number of bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let taken = rest
            .get(..n)
            .ok_or(DecodeError::malformed(self.pos, "unexpected end of input"))?;
        self.pos += n;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.pos;
        let taken = self.take(N)?;
        <[u8; N]>::try_from(taken)
            .map_err(|_| DecodeError::malformed(at, "unexpected end of input"))
    }

    /// A big-endian `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_be_bytes)
    }

    /// A big-endian `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_be_bytes)
    }

    /// A `boolean`: one byte, non-zero is true.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        self.array::<1>().map(|[b]| b != 0)
    }

    /// A length or count: `None` for −1, an error below −1.
    fn read_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let at = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        usize::try_from(len)
            .map(Some)
            .map_err(|_| DecodeError::malformed(at, "negative length"))
    }

    /// Bytes whose length prefix was just read at `at`.
    fn read_counted(&mut self, at: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::malformed(
                at,
                "length exceeds the remaining input",
            ));
        }
        self.take(len)
    }

    /// A `buffer`: `None` when null (−1), which is not the same as empty.
    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let at = self.pos;
        match self.read_len()? {
            None => Ok(None),
            Some(len) => self.read_counted(at, len).map(|b| Some(b.to_vec())),
        }
    }

    /// A `buffer` where null carries no meaning: null reads as empty.
    pub fn read_bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        self.read_buffer().map(Option::unwrap_or_default)
    }

    /// A `ustring`: `None` when null (−1); invalid UTF-8 is an error.
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        let at = self.pos;
        let Some(len) = self.read_len()? else {
            return Ok(None);
        };
        let bytes = self.read_counted(at, len)?;
        // As Java's `new String(bytes, UTF_8)`: invalid sequences become
        // U+FFFD, so a path holding them names no node (reads answer
        // NoNode) and is refused by path validation (writes answer
        // BadArguments), as ZooKeeper 3.8 answers.
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// A request's path, where ZooKeeper 3.8 answers a null one with
    /// MarshallingError (and keeps the connection): null is malformed.
    pub fn read_path(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        self.read_ustring()?
            .ok_or_else(|| DecodeError::malformed(at, "null path"))
    }

    /// A `ustring` where null carries no meaning (kazoo sends `""` as null):
    /// null reads as empty.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        self.read_ustring().map(Option::unwrap_or_default)
    }

    /// A `vector<T>`; null reads as empty (no record distinguishes them).
    ///
    /// The count is checked against `T::MIN_LEN` times the count before the
    /// vector is allocated.
    pub fn read_vector<T: Record>(&mut self) -> Result<Vec<T>, DecodeError> {
        let at = self.pos;
        let Some(count) = self.read_len()? else {
            return Ok(Vec::new());
        };
        let fits = count
            .checked_mul(T::MIN_LEN.max(1))
            .is_some_and(|needed| needed <= self.remaining());
        if !fits {
            return Err(DecodeError::malformed(
                at,
                "vector count exceeds the remaining input",
            ));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::read(self)?);
        }
        Ok(items)
    }

    /// A nested record.
    pub fn read_record<T: Record>(&mut self) -> Result<T, DecodeError> {
        T::read(self)
    }
}

/// Builds jute bytes, optionally as a frame with the 4-byte length prefix.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    bytes: Vec<u8>,
    framed: bool,
}

impl Writer {
    /// A writer for bare record bytes.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// A writer that reserves the frame length prefix, filled in by
    /// [`Writer::finish`] (`docs/zookeeper-semantics.md` H.1).
    pub fn framed() -> Writer {
        Writer {
            bytes: vec![0; 4],
            framed: true,
        }
    }

    /// The bytes written, with the length prefix set if the writer is framed.
    ///
    /// # Panics
    /// If a framed body is longer than `i32::MAX` bytes.
    pub fn finish(mut self) -> Vec<u8> {
        if self.framed {
            let body_len = self.bytes.len().saturating_sub(4);
            let prefix = i32::try_from(body_len).expect("frame body longer than i32::MAX");
            if let Some(slot) = self.bytes.get_mut(..4) {
                slot.copy_from_slice(&prefix.to_be_bytes());
            }
        }
        self.bytes
    }

    /// A big-endian `int`.
    pub fn write_i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    /// A big-endian `long`.
    pub fn write_i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    /// A `boolean` as 0 or 1.
    pub fn write_bool(&mut self, value: bool) {
        self.bytes.push(u8::from(value));
    }

    fn write_len(&mut self, len: usize) {
        let len = i32::try_from(len).expect("jute length longer than i32::MAX");
        self.write_i32(len);
    }

    /// A `buffer`; `None` is written as null (−1).
    ///
    /// # Panics
    /// If the buffer is longer than `i32::MAX` bytes.
    pub fn write_buffer(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.write_i32(-1),
            Some(bytes) => self.write_bytes(bytes),
        }
    }

    /// A non-null `buffer`.
    ///
    /// # Panics
    /// If the buffer is longer than `i32::MAX` bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_len(bytes.len());
        self.bytes.extend_from_slice(bytes);
    }

    /// A `ustring`; `None` is written as null (−1).
    ///
    /// # Panics
    /// If the string is longer than `i32::MAX` bytes.
    pub fn write_ustring(&mut self, value: Option<&str>) {
        self.write_buffer(value.map(str::as_bytes));
    }

    /// A non-null `ustring` (an empty string is written with length 0).
    ///
    /// # Panics
    /// If the string is longer than `i32::MAX` bytes.
    pub fn write_string(&mut self, value: &str) {
        self.write_bytes(value.as_bytes());
    }

    /// A `vector<T>` (never null).
    ///
    /// # Panics
    /// If there are more than `i32::MAX` items.
    pub fn write_vector<T: Record>(&mut self, items: &[T]) {
        self.write_len(items.len());
        for item in items {
            item.write(self);
        }
    }

    /// A nested record.
    pub fn write_record<T: Record>(&mut self, record: &T) {
        record.write(self);
    }
}

/// A value with a fixed jute encoding that can appear inside other records
/// and vectors.
pub trait Record: Sized {
    /// The fewest bytes one encoded value takes (at least 1). Bounds vector
    /// counts before allocating.
    const MIN_LEN: usize;

    /// Decodes one value.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes the value.
    fn write(&self, w: &mut Writer);
}

/// A non-null `ustring` element, as in `vector<ustring>`; null reads as empty.
impl Record for String {
    const MIN_LEN: usize = 4;

    fn read(r: &mut Reader<'_>) -> Result<String, DecodeError> {
        r.read_string()
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(self);
    }
}

/// `Stat`: the eleven fields of `docs/zookeeper-semantics.md` B.1, 68 bytes.
impl Record for Stat {
    const MIN_LEN: usize = 68;

    fn read(r: &mut Reader<'_>) -> Result<Stat, DecodeError> {
        Ok(Stat {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            data_length: r.read_i32()?,
            num_children: r.read_i32()?,
            pzxid: r.read_i64()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_i64(self.czxid);
        w.write_i64(self.mzxid);
        w.write_i64(self.ctime);
        w.write_i64(self.mtime);
        w.write_i32(self.version);
        w.write_i32(self.cversion);
        w.write_i32(self.aversion);
        w.write_i64(self.ephemeral_owner);
        w.write_i32(self.data_length);
        w.write_i32(self.num_children);
        w.write_i64(self.pzxid);
    }
}

/// `Id{scheme, id}`; null strings read as empty.
impl Record for Id {
    const MIN_LEN: usize = 8;

    fn read(r: &mut Reader<'_>) -> Result<Id, DecodeError> {
        Ok(Id {
            scheme: r.read_string()?,
            id: r.read_string()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_string(&self.scheme);
        w.write_string(&self.id);
    }
}

/// `ACL{perms, id}`.
impl Record for Acl {
    const MIN_LEN: usize = 4 + Id::MIN_LEN;

    fn read(r: &mut Reader<'_>) -> Result<Acl, DecodeError> {
        Ok(Acl {
            perms: Perms(r.read_i32()?),
            id: r.read_record()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.write_i32(self.perms.0);
        w.write_record(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(w: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut writer = Writer::new();
        w(&mut writer);
        writer.finish()
    }

    #[test]
    fn integers_are_big_endian() {
        // Reference: docs/zookeeper-semantics.md H.2.
        let b = bytes(|w| {
            w.write_i32(0x0102_0304);
            w.write_i64(-2);
            w.write_bool(true);
        });
        assert_eq!(
            b,
            [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1]
        );
        let mut r = Reader::new(&b);
        assert_eq!(r.read_i32(), Ok(0x0102_0304));
        assert_eq!(r.read_i64(), Ok(-2));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn any_nonzero_byte_is_true() {
        assert_eq!(Reader::new(&[7]).read_bool(), Ok(true));
        assert_eq!(Reader::new(&[0]).read_bool(), Ok(false));
    }

    #[test]
    fn null_and_empty_buffers_differ() {
        // Reference: docs/zookeeper-semantics.md H.2, J.14.
        let null = bytes(|w| w.write_buffer(None));
        let empty = bytes(|w| w.write_buffer(Some(b"")));
        assert_eq!(null, [0xff; 4]);
        assert_eq!(empty, [0; 4]);
        assert_eq!(Reader::new(&null).read_buffer(), Ok(None));
        assert_eq!(Reader::new(&empty).read_buffer(), Ok(Some(Vec::new())));
        assert_eq!(Reader::new(&null).read_bytes(), Ok(Vec::new()));
    }

    #[test]
    fn null_strings_and_vectors_read_as_empty() {
        // Reference: docs/zookeeper-semantics.md H.2 (kazoo encodes every empty string as −1).
        let null = [0xff; 4];
        assert_eq!(Reader::new(&null).read_ustring(), Ok(None));
        assert_eq!(Reader::new(&null).read_string(), Ok(String::new()));
        assert_eq!(Reader::new(&null).read_vector::<Acl>(), Ok(Vec::new()));
        let acl = Acl::new(Perms::READ, Id::new("auth", ""));
        let kazoo = [
            &[0, 0, 0, 1][..],
            &[0, 0, 0, 1, 0, 0, 0, 4],
            b"auth",
            &[0xff; 4],
        ]
        .concat();
        assert_eq!(Reader::new(&kazoo).read_vector::<Acl>(), Ok(vec![acl]));
    }

    #[test]
    fn lengths_below_minus_one_are_rejected() {
        let b = (-2i32).to_be_bytes();
        let err = Reader::new(&b).read_buffer().unwrap_err();
        assert_eq!((err.offset(), err.reason()), (0, "negative length"));
        assert!(Reader::new(&b).read_ustring().is_err());
        assert!(Reader::new(&b).read_vector::<String>().is_err());
    }

    #[test]
    fn huge_lengths_fail_before_allocating() {
        // A count of 1e9 with 10 bytes left must fail on the count check, not
        // in an allocation (a billion-element reserve would abort the test).
        let mut b = 1_000_000_000i32.to_be_bytes().to_vec();
        b.extend_from_slice(&[0; 10]);
        let err = Reader::new(&b).read_vector::<Stat>().unwrap_err();
        assert_eq!(err.reason(), "vector count exceeds the remaining input");
        let err = Reader::new(&b).read_vector::<String>().unwrap_err();
        assert_eq!(err.reason(), "vector count exceeds the remaining input");
        let err = Reader::new(&b).read_buffer().unwrap_err();
        assert_eq!(err.reason(), "length exceeds the remaining input");
        let b = i32::MAX.to_be_bytes();
        assert!(Reader::new(&b).read_ustring().is_err());
        assert!(Reader::new(&b).read_vector::<Acl>().is_err());
    }

    #[test]
    fn invalid_utf8_reads_as_java_reads_it_and_a_null_path_is_malformed() {
        let b = [0, 0, 0, 0, 0, 0, 0, 2, 0xc3, 0x28];
        let mut r = Reader::new(&b);
        assert_eq!(r.read_i32(), Ok(0));
        assert_eq!(r.read_ustring(), Ok(Some("\u{FFFD}(".to_string())));
        let null = [0xff, 0xff, 0xff, 0xff];
        let err = Reader::new(&null).read_path().unwrap_err();
        assert_eq!((err.offset(), err.reason()), (0, "null path"));
        assert_eq!(Reader::new(&null).read_string(), Ok(String::new()));
    }

    #[test]
    fn truncation_reports_the_offset() {
        let err = Reader::new(&[0, 0, 0, 5, b'a']).read_string().unwrap_err();
        assert_eq!(err.offset(), 0);
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6]);
        assert!(r.read_i32().is_ok());
        let err = r.read_i32().unwrap_err();
        assert_eq!((err.offset(), err.reason()), (4, "unexpected end of input"));
        assert_eq!(r.position(), 4, "a failed read consumes nothing");
    }

    #[test]
    fn stat_is_68_bytes_in_field_order() {
        // Reference: docs/zookeeper-semantics.md B.1.
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let b = bytes(|w| w.write_record(&stat));
        assert_eq!(b.len(), 68);
        assert_eq!(b.get(32..36), Some(&[0, 0, 0, 5][..]));
        assert_eq!(b.get(60..68), Some(&11i64.to_be_bytes()[..]));
        assert_eq!(Reader::new(&b).read_record::<Stat>(), Ok(stat));
    }

    #[test]
    fn framed_writer_fills_in_the_length() {
        let mut w = Writer::framed();
        w.write_string("ab");
        assert_eq!(w.finish(), [0, 0, 0, 6, 0, 0, 0, 2, b'a', b'b']);
    }
}
