//! Randomness from the operating system (`getrandom`), for what must not
//! be guessed: session passwords.

/// Fills `buf` with random bytes from the OS. Should the OS source fail
/// (it does not on supported systems), falls back to std's randomly keyed
/// hasher, itself seeded from the OS, rather than panic.
pub(crate) fn fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    use std::hash::{BuildHasher, Hasher};
    for (n, chunk) in buf.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(n);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
    }
}

/// A fresh session password: 16 random bytes. It is stored with the
/// session (in its create txn), so a resumed or restored session keeps it,
/// and no password tells anything about another.
pub(crate) fn password() -> [u8; 16] {
    let mut out = [0u8; 16];
    fill(&mut out);
    out
}
