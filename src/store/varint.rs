//! LEB128 variable-length integers, written and read by hand for the
//! snapshot's node blocks (`blocks.rs`).
//!
//! An unsigned value is written seven bits at a time, least significant
//! group first; every byte but the last has its high bit (0x80) set. So
//! 0..=127 take one byte, 128..=16383 two, and a `u64` at most ten (the
//! tenth holds the top bit only). A signed value is first mapped by
//! zigzag (0, -1, 1, -2, … → 0, 1, 2, 3, …) so small magnitudes of either
//! sign stay short.
//!
//! Reading is strict, because the bytes come from disk: a value must end
//! before the input does, must fit its type, and must be minimal (no
//! trailing `0x80 0x00` padding), so every value has exactly one encoding.
//! A [`Cursor`] reads varints and borrowed byte runs out of a slice,
//! never allocating and never panicking.

use std::fmt;

/// Most bytes a `u64` takes.
pub(crate) const U64_BYTES_MAX: usize = 10;

/// Appends `v` as an unsigned varint.
pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-mapped, as an unsigned varint.
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
}

/// Zigzag: 0, -1, 1, -2, … → 0, 1, 2, 3, …
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Why a cursor could not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The input ended inside a value (or before a byte run's end).
    Truncated,
    /// The value does not fit its type.
    Overflow,
    /// A longer encoding than the value needs.
    NotMinimal,
}

impl fmt::Display for VarintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarintError::Truncated => "truncated",
            VarintError::Overflow => "varint overflows its type",
            VarintError::NotMinimal => "varint not minimally encoded",
        })
    }
}

/// Reads varints and byte runs from a slice, front to back.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
    /// Length of the whole input (for [`Cursor::pos`]).
    len: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor {
            rest: bytes,
            len: bytes.len(),
        }
    }

    /// Offset of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.len - self.rest.len()
    }

    /// True when every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// An unsigned varint.
    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, VarintError> {
        // The common case: one byte.
        match self.rest.split_first() {
            Some((&b, tail)) if b < 0x80 => {
                self.rest = tail;
                Ok(u64::from(b))
            }
            _ => self.u64_long(),
        }
    }

    /// [`Cursor::u64`] past its one-byte case.
    fn u64_long(&mut self) -> Result<u64, VarintError> {
        let mut value = 0u64;
        for (i, &b) in self.rest.iter().enumerate().take(U64_BYTES_MAX) {
            if i == U64_BYTES_MAX - 1 && b > 1 {
                return Err(VarintError::Overflow);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if b == 0 && i > 0 {
                    // A last byte of zero adds nothing.
                    return Err(VarintError::NotMinimal);
                }
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        if self.rest.len() < U64_BYTES_MAX {
            Err(VarintError::Truncated)
        } else {
            Err(VarintError::Overflow)
        }
    }

    /// An unsigned varint that must fit a `u32`.
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, VarintError> {
        let before = self.rest;
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| {
            self.rest = before;
            VarintError::Overflow
        })
    }

    /// A zigzag varint.
    #[inline]
    pub(crate) fn i64(&mut self) -> Result<i64, VarintError> {
        self.u64().map(unzigzag)
    }

    /// The next `len` bytes, borrowed.
    #[inline]
    pub(crate) fn take(&mut self, len: u64) -> Result<&'a [u8], VarintError> {
        let len = usize::try_from(len).map_err(|_| VarintError::Truncated)?;
        if len > self.rest.len() {
            return Err(VarintError::Truncated);
        }
        let (run, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_u64(&mut out, v);
        out
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encoded(0), [0]);
        assert_eq!(encoded(1), [1]);
        assert_eq!(encoded(127), [0x7f]);
        assert_eq!(encoded(128), [0x80, 1]);
        assert_eq!(encoded(300), [0xac, 0x02]);
        assert_eq!(encoded(16_383), [0xff, 0x7f]);
        assert_eq!(encoded(16_384), [0x80, 0x80, 1]);
        let max = encoded(u64::MAX);
        assert_eq!(max.len(), U64_BYTES_MAX);
        assert_eq!(max[9], 1);
        assert!(max[..9].iter().all(|&b| b == 0xff));
    }

    #[test]
    fn zigzag_maps_small_magnitudes_to_small_values() {
        let pairs = [(0i64, 0u64), (-1, 1), (1, 2), (-2, 3), (2, 4)];
        for (s, u) in pairs {
            assert_eq!(zigzag(s), u);
            assert_eq!(unzigzag(u), s);
        }
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        assert_eq!(unzigzag(u64::MAX), i64::MIN);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let read = |bytes: &[u8]| Cursor::new(bytes).u64();
        assert_eq!(read(&[]), Err(VarintError::Truncated));
        assert_eq!(read(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read(&[0xff; 9]), Err(VarintError::Truncated));
        // Eleven bytes, or a tenth byte with more than the top bit.
        assert_eq!(read(&[0xff; 11]), Err(VarintError::Overflow));
        let mut ten = vec![0xff; 9];
        ten.push(2);
        assert_eq!(read(&ten), Err(VarintError::Overflow));
        ten[9] = 1;
        assert_eq!(read(&ten), Ok(u64::MAX));
        // Padding: zero groups at the end.
        assert_eq!(read(&[0x80, 0]), Err(VarintError::NotMinimal));
        assert_eq!(read(&[0x81, 0x80, 0]), Err(VarintError::NotMinimal));
        // u32 overflow leaves the cursor where it was.
        let big = encoded(1 << 32);
        let mut cursor = Cursor::new(&big);
        assert_eq!(cursor.u32(), Err(VarintError::Overflow));
        assert_eq!(cursor.pos(), 0);
        assert_eq!(
            Cursor::new(&encoded(u64::from(u32::MAX))).u32(),
            Ok(u32::MAX)
        );
    }

    #[test]
    fn take_borrows_and_checks_the_length() {
        let bytes = [3u8, b'a', b'b', b'c', 9];
        let mut cursor = Cursor::new(&bytes);
        let len = cursor.u64().unwrap();
        assert_eq!(cursor.take(len).unwrap(), b"abc");
        assert_eq!(cursor.pos(), 4);
        assert_eq!(cursor.take(2), Err(VarintError::Truncated));
        assert_eq!(cursor.take(u64::MAX), Err(VarintError::Truncated));
        assert_eq!(cursor.u64(), Ok(9));
        assert!(cursor.is_empty());
        assert_eq!(cursor.take(0).unwrap(), b"");
    }

    proptest! {
        #[test]
        fn unsigned_round_trips_minimally(v in any::<u64>()) {
            let bytes = encoded(v);
            let bits = 64 - v.leading_zeros() as usize;
            prop_assert_eq!(bytes.len(), bits.max(1).div_ceil(7));
            let mut cursor = Cursor::new(&bytes);
            prop_assert_eq!(cursor.u64(), Ok(v));
            prop_assert!(cursor.is_empty());
        }

        #[test]
        fn signed_round_trips(v in any::<i64>()) {
            let mut bytes = Vec::new();
            put_i64(&mut bytes, v);
            let mut cursor = Cursor::new(&bytes);
            prop_assert_eq!(cursor.i64(), Ok(v));
            prop_assert!(cursor.is_empty());
        }

        #[test]
        fn sequences_round_trip(values in proptest::collection::vec(any::<i64>(), 0..50)) {
            let mut bytes = Vec::new();
            for &v in &values {
                put_i64(&mut bytes, v);
                put_u64(&mut bytes, v as u64);
            }
            let mut cursor = Cursor::new(&bytes);
            for &v in &values {
                prop_assert_eq!(cursor.i64(), Ok(v));
                prop_assert_eq!(cursor.u64(), Ok(v as u64));
            }
            prop_assert!(cursor.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let mut cursor = Cursor::new(&bytes);
            while let Ok(v) = cursor.u64() {
                // Whatever decodes re-encodes to the same bytes.
                let end = cursor.pos();
                let again = encoded(v);
                prop_assert_eq!(&bytes[end - again.len()..end], &again[..]);
            }
        }
    }
}
