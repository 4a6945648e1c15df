//! Arbitrary bytes into every `proto` decoder (`docs/zookeeper-semantics.md` H).
//!
//! No decoder may panic, and whatever decodes must come back unchanged from
//! encode-then-decode. The same property runs in `cargo test` over mutated
//! frames (`src/proto/tests.rs`, `mutated_frames_never_panic_and_round_trip`).
//!
//! Run with `cargo fuzz run proto_decode` (cargo-fuzz, nightly). On stable,
//! coverage-guided without sanitizers, from `fuzz/`:
//!
//! ```text
//! RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
//!   -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
//!   -Cllvm-args=-sanitizer-coverage-pc-table \
//!   -Cllvm-args=-sanitizer-coverage-trace-compares \
//!   -Cdebug-assertions -Coverflow-checks --cfg fuzzing" \
//!   cargo build --release --target x86_64-unknown-linux-gnu --bin proto_decode
//! target/x86_64-unknown-linux-gnu/release/proto_decode corpus/ -max_total_time=300
//! ```
//!
//! `--target` keeps the flags off build scripts. Leave `CARGO_TARGET_DIR` unset
//! (as above) so the instrumented build stays out of a shared target dir.

#![no_main]

use innkeeper::proto::{self, opcode, FrameSplitter};
use libfuzzer_sys::fuzz_target;

/// Reply layouts worth decoding every input as: each shape of body once.
const REPLY_OPCODES: [i32; 12] = [
    opcode::CREATE,
    opcode::CREATE2,
    opcode::PING,
    opcode::EXISTS,
    opcode::GET_DATA,
    opcode::GET_ACL,
    opcode::GET_CHILDREN2,
    opcode::MULTI,
    opcode::MULTI_READ,
    opcode::ADD_WATCH,
    opcode::GET_ALL_CHILDREN_NUMBER,
    opcode::WHO_AM_I,
];

/// The body of a frame that an encoder just produced.
fn body(frame: &[u8]) -> &[u8] {
    frame.get(4..).expect("encoders write a length prefix")
}

fuzz_target!(|data: &[u8]| {
    if let Ok((header, request)) = proto::decode_request(data) {
        let frame = proto::encode_request(header.xid, &request);
        assert_eq!(proto::decode_request(body(&frame)), Ok((header, request)));
    }
    for op in REPLY_OPCODES {
        if let Ok((header, response)) = proto::decode_reply(op, data) {
            let frame = proto::encode_reply(&header, response.as_ref());
            assert_eq!(proto::decode_reply(op, body(&frame)), Ok((header, response)));
        }
    }
    if let Ok((zxid, event)) = proto::decode_notification(data) {
        let frame = proto::encode_notification(zxid, &event);
        assert_eq!(proto::decode_notification(body(&frame)), Ok((zxid, event)));
    }
    if let Ok(request) = proto::decode_connect_request(data) {
        let frame = proto::encode_connect_request(&request);
        assert_eq!(proto::decode_connect_request(body(&frame)), Ok(request));
    }
    if let Ok(response) = proto::decode_connect_response(data) {
        let frame = proto::encode_connect_response(&response);
        assert_eq!(proto::decode_connect_response(body(&frame)), Ok(response));
    }
    let _ = proto::four_letter_word(data);

    // The splitter sees the input as a stream arriving in two pieces; a small
    // limit makes the length check fire often.
    let (first, second) = data.split_at(data.len() / 2);
    let mut splitter = FrameSplitter::with_max_len(256);
    splitter.push(first);
    while let Ok(Some(frame)) = splitter.next_frame() {
        assert!(frame.len() <= 256);
    }
    splitter.push(second);
    while let Ok(Some(frame)) = splitter.next_frame() {
        assert!(frame.len() <= 256);
    }
});
