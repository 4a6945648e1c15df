//!
//! Both directions: a server decodes requests and encodes replies, a remote
//! client does the reverse with the same types. No I/O happens here; the
//! `server` and `remote` modules own the sockets.
//!
//! References are to sections of `docs/zookeeper-semantics.md`.
//!
//! # Layout
//!
//! * `codec`: jute primitives (H.2) — [`Reader`], [`Writer`], the [`Record`]
//!   trait, and [`DecodeError`].
//! * `records`: [`opcode`] and [`xid`] constants (H.5, H.6), the headers
//!   (H.3), the handshake records (H.4), [`WatcherEvent`] (D.7) and the
//!   request records shared by single ops and multi ops.
//! * `message`: [`Request`] and [`Response`] (H.6, multi framing H.7 with
//!   results E.3/E.4) and the frame-level functions:
//!   [`encode_request`] / [`decode_request`], [`encode_reply`] /
//!   [`decode_reply`], [`encode_notification`] / [`decode_notification`],
//!   and the four connect functions.
//! * `frame`: [`FrameSplitter`] for a socket reader (H.1) and
//!   [`four_letter_word`] detection (H.11).
//!
//! Encoders return a whole frame, length prefix included. Decoders take a
//! frame *body* (the bytes after the prefix), as [`FrameSplitter`] yields it.
//!
//! # Null, empty, and trailing bytes
//!
//! Readers accept a length of −1 (null) for every buffer, string and vector
//! (H.2; kazoo sends `""` as null). Where null and empty mean the same, the
//! value is a plain `String`, `Vec<u8>` or `Vec<T>` and null reads as empty;
//! writers then send empty, never null. Node data is `Option<Vec<u8>>`
//! because null data differs from empty data (J.14); reconfig's server lists
//! are `Option<String>` because null means "not given". Bytes after a
//! complete record are ignored, as ZooKeeper ignores them; the handshake's
//! trailing readOnly byte is read when present (H.4).
//!
//! # Untrusted input
//!
//! No decoder panics or allocates more than its input justifies: every
//! length and vector count is checked against the bytes remaining before
//! anything is allocated, lengths below −1 and invalid UTF-8 are errors, and
//! frame lengths are checked against [`MAX_FRAME_LEN`] before the body is
//! buffered. This is checked by unit tests (every truncation of valid
//! frames), a property test over mutated frames, and the cargo-fuzz target
//! `fuzz/fuzz_targets/proto_decode.rs`.
//!
//! [`DecodeError`]: crate::proto::DecodeError
//! [`FrameSplitter`]: crate::proto::FrameSplitter
//! [`MAX_FRAME_LEN`]: crate::proto::MAX_FRAME_LEN
//! [`Reader`]: crate::proto::Reader
//! [`Record`]: crate::proto::Record
//! [`Request`]: crate::proto::Request
//! [`Response`]: crate::proto::Response
//! [`WatcherEvent`]: crate::proto::WatcherEvent
//! [`Writer`]: crate::proto::Writer
//! [`decode_notification`]: crate::proto::decode_notification
//! [`decode_reply`]: crate::proto::decode_reply
//! [`decode_request`]: crate::proto::decode_request
//! [`encode_notification`]: crate::proto::encode_notification
//! [`encode_reply`]: crate::proto::encode_reply
//! [`encode_request`]: crate::proto::encode_request
//! [`four_letter_word`]: crate::proto::four_letter_word
//! [`opcode`]: crate::proto::opcode
//! [`xid`]: crate::proto::xid

mod codec;
mod frame;
mod message;
mod records;
#[cfg(test)]
mod tests;

pub use codec::{DecodeError, DecodeErrorKind, Reader, Record, Writer};
pub use frame::{four_letter_word, FrameError, FrameSplitter, FOUR_LETTER_WORDS, MAX_FRAME_LEN};
pub use message::{
    decode_connect_request, decode_connect_response, decode_notification, decode_reply,
    decode_reply_header, decode_request, decode_request_header, encode_connect_request,
    encode_connect_response, encode_notification, encode_reply, encode_request, MultiOp,
    MultiResult, ReadOp, ReadResult, Request, Response,
};
pub use records::{
    opcode, xid, CheckVersionRequest, ClientInfo, ConnectRequest, ConnectResponse, CreateKind,
    CreateRequest, DeleteRequest, GetChildrenRequest, GetDataRequest, ReplyHeader, RequestHeader,
    SetDataRequest, WatcherEvent,
};
