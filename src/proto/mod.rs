//! ZooKeeper's client wire protocol, as pure functions over bytes.
//!
//! References are to sections of `zookeeper-reference.md`.
//!
//! * `codec`: jute primitives (H.2) — [`Reader`], [`Writer`], the [`Record`]
//!   trait, and [`DecodeError`].
//! * `frame`: [`FrameSplitter`] for a socket reader (H.1) and
//!   [`four_letter_word`] detection (H.11).

mod codec;
mod frame;

pub use codec::{DecodeError, DecodeErrorKind, Reader, Record, Writer};
pub use frame::{four_letter_word, FrameError, FrameSplitter, FOUR_LETTER_WORDS, MAX_FRAME_LEN};
