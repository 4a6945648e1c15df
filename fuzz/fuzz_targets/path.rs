//! Arbitrary strings into the path validator (`docs/zookeeper-semantics.md` A.1).
//!
//! The validator may never panic, and must agree with the plain UTF-16
//! reference implementation on every input; the same property runs in
//! `cargo test` (`path::tests::check_agrees_with_the_reference`).

#![no_main]

use innkeeper::path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ok = path::check(&text).is_ok();
    assert_eq!(ok, path::reference_valid(&text), "{text:?}");
    if ok {
        let _ = path::parent(&text);
        let _ = path::name(&text);
        assert!(path::validate_sequential_prefix(&text).is_ok());
    }
});
