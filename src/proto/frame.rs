//! Splitting a byte stream into frames, and spotting four-letter words
//! (`docs/zookeeper-semantics.md` H.1, H.11).

use std::fmt;

/// Largest frame body accepted by default: `jute.maxbuffer`, 1 048 575 bytes.
pub const MAX_FRAME_LEN: usize = 0xF_FFFF;

/// A frame whose length prefix is negative or above the limit. The
/// connection cannot be resynchronised: a server closes it without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError {
    declared_len: i32,
    max_len: usize,
}

impl FrameError {
    /// The length the prefix declared.
    pub fn declared_len(&self) -> i32 {
        self.declared_len
    }

    /// The limit it broke.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame length {} is outside 0..={}",
            self.declared_len, self.max_len
        )
    }
}

impl std::error::Error for FrameError {}

/// Collects bytes as they arrive from a socket and pops complete frame
/// bodies (without their length prefix).
///
/// A length prefix is checked against the limit before any room is made
/// for the body; memory held is what was pushed and not yet popped.
#[derive(Debug, Clone)]
pub struct FrameSplitter {
    buffer: Vec<u8>,
    // Start of the unconsumed bytes in `buffer`; compacted on the next push.
    start: usize,
    max_len: usize,
}

impl Default for FrameSplitter {
    fn default() -> FrameSplitter {
        FrameSplitter::new()
    }
}

impl FrameSplitter {
    /// A splitter with the default limit, [`MAX_FRAME_LEN`].
    pub fn new() -> FrameSplitter {
        FrameSplitter::with_max_len(MAX_FRAME_LEN)
    }

    /// A splitter that rejects frame bodies longer than `max_len` bytes.
    pub fn with_max_len(max_len: usize) -> FrameSplitter {
        FrameSplitter {
            buffer: Vec::new(),
            start: 0,
            max_len,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The bytes pushed and not yet popped as frames (e.g. to test the first
    /// four bytes of a fresh connection with [`four_letter_word`]).
    pub fn pending(&self) -> &[u8] {
        self.buffer.get(self.start..).unwrap_or_default()
    }

    /// Pops the next complete frame body: `Ok(None)` until one has fully
    /// arrived, an error if the length prefix is out of range. After an
    /// error the splitter keeps returning it; drop the connection.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let pending = self.pending();
        let Some(prefix) = pending.first_chunk::<4>() else {
            return Ok(None);
        };
        let declared_len = i32::from_be_bytes(*prefix);
        let body_len = usize::try_from(declared_len)
            .ok()
            .filter(|&len| len <= self.max_len)
            .ok_or(FrameError {
                declared_len,
                max_len: self.max_len,
            })?;
        let Some(body) = pending.get(4..).and_then(|rest| rest.get(..body_len)) else {
            return Ok(None);
        };
        let body = body.to_vec();
        self.start += 4 + body_len;
        Ok(Some(body))
    }
}

/// The four-letter words a server recognises (docs/zookeeper-semantics.md H.11).
pub const FOUR_LETTER_WORDS: [&str; 18] = [
    "ruok", "srvr", "stat", "mntr", "cons", "envi", "conf", "wchs", "wchc", "wchp", "dump", "isro",
    "crst", "srst", "dirs", "gtmk", "stmk", "hash",
];

/// The four-letter word that the first bytes of a fresh connection spell,
/// if any. Only meaningful before a ConnectRequest: every word read as a
/// length exceeds [`MAX_FRAME_LEN`], so it cannot be a valid frame. `None`
/// with fewer than four bytes.
pub fn four_letter_word(first_bytes: &[u8]) -> Option<&'static str> {
    let head = first_bytes.get(..4)?;
    FOUR_LETTER_WORDS
        .into_iter()
        .find(|word| word.as_bytes() == head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let len = i32::try_from(body.len()).unwrap();
        [&len.to_be_bytes()[..], body].concat()
    }

    #[test]
    fn frames_split_across_and_within_pushes() {
        let stream = [frame(b"abc"), frame(b""), frame(&[7; 300])].concat();
        // Feed one byte at a time, then everything at once.
        let mut split = FrameSplitter::new();
        let mut frames = Vec::new();
        for byte in &stream {
            split.push(std::slice::from_ref(byte));
            while let Some(body) = split.next_frame().unwrap() {
                frames.push(body);
            }
        }
        assert_eq!(frames, [b"abc".to_vec(), Vec::new(), vec![7; 300]]);
        assert!(split.pending().is_empty());

        let mut split = FrameSplitter::new();
        split.push(&stream);
        split.push(&[0, 0]);
        assert_eq!(split.next_frame(), Ok(Some(b"abc".to_vec())));
        assert_eq!(split.next_frame(), Ok(Some(Vec::new())));
        assert_eq!(split.next_frame(), Ok(Some(vec![7; 300])));
        assert_eq!(split.next_frame(), Ok(None));
        assert_eq!(split.pending(), [0, 0]);
    }

    #[test]
    fn lengths_out_of_range_are_rejected_before_the_body_arrives() {
        // Reference: docs/zookeeper-semantics.md H.1 (len < 0 or > jute.maxbuffer → close).
        let mut split = FrameSplitter::new();
        split.push(&0x0010_0000i32.to_be_bytes());
        let err = split.next_frame().unwrap_err();
        assert_eq!(
            (err.declared_len(), err.max_len()),
            (0x10_0000, MAX_FRAME_LEN)
        );
        assert_eq!(
            err.to_string(),
            "frame length 1048576 is outside 0..=1048575"
        );
        assert_eq!(split.next_frame(), Err(err), "the error is sticky");

        let mut split = FrameSplitter::new();
        split.push(&(-1i32).to_be_bytes());
        assert!(split.next_frame().is_err());

        let mut split = FrameSplitter::new();
        split.push(&0x000F_FFFFi32.to_be_bytes());
        assert_eq!(
            split.next_frame(),
            Ok(None),
            "the maximum itself is allowed"
        );

        let mut split = FrameSplitter::with_max_len(2);
        split.push(&frame(b"abc"));
        assert_eq!(split.next_frame().unwrap_err().declared_len(), 3);
    }

    #[test]
    fn four_letter_words_are_recognised() {
        // Reference: docs/zookeeper-semantics.md H.11.
        assert_eq!(four_letter_word(b"ruok"), Some("ruok"));
        assert_eq!(four_letter_word(b"srvr\n"), Some("srvr"));
        assert_eq!(four_letter_word(b"RUOK"), None);
        assert_eq!(four_letter_word(b"ruo"), None);
        assert_eq!(four_letter_word(&frame(&[0; 45])), None);
        for word in FOUR_LETTER_WORDS {
            assert_eq!(four_letter_word(word.as_bytes()), Some(word));
            let as_len = i32::from_be_bytes(word.as_bytes().try_into().unwrap());
            assert!(
                usize::try_from(as_len).unwrap() > MAX_FRAME_LEN,
                "{word} is a valid length"
            );
        }
        assert_eq!(0x72756f6b, i32::from_be_bytes(*b"ruok"));
    }
}
