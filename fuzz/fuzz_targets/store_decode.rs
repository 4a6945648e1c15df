//! Store decoding: every decoder of bytes read from disk (log records,
//! txns, snapshot and backup files) answers `Ok` or `Err` for any input,
//! never panics, and a decoded record re-encodes to itself.
//!
//! `cargo +nightly fuzz run store_decode -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = innkeeper::fuzz_decode(bytes);
});
