//! The one source of randomness: the operating system's (`getrandom`) for
//! what must not be guessed (session passwords, seeds), and [`Rng`], a small
//! seedable generator for choices that only need to be spread out (the
//! remote client's host order and backoff jitter, the recipes' picks) and
//! for the tests' reproducible runs.
//!
//! This file names nothing else of the crate, so the test crates include
//! it as it is (`#[path = "../../src/random.rs"] mod random;`) and every
//! seeded test draws from the same generator as the library.

use std::time::Duration;

/// Fills `buf` with random bytes from the OS, or says why it cannot (for
/// callers that would rather fail than use anything else: SASL nonces).
pub(crate) fn try_fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(buf)
}

/// Fills `buf` with random bytes from the OS. Should the OS source fail
/// (it does not on supported systems), falls back to std's randomly keyed
/// hasher, itself seeded from the OS, rather than panic.
pub(crate) fn fill(buf: &mut [u8]) {
    if try_fill(buf).is_ok() {
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

/// 64 random bits from the OS.
pub(crate) fn os_u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// SplitMix64's increment (2^64 divided by the golden ratio).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A small, fast, seedable generator (SplitMix64: every seed is good, the
/// same sequence on every platform). Not for secrets: use [`fill`].
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The generator for `seed`: the same seed gives the same sequence.
    pub(crate) fn seeded(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator seeded from the OS, so two processes (or two clients
    /// started together) draw different values.
    pub(crate) fn from_os() -> Rng {
        Rng::seeded(os_u64())
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`; `0` when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index into a slice of `len` items; `0` when `len` is 0.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        let bound = u64::try_from(len).unwrap_or(u64::MAX);
        usize::try_from(self.below(bound)).unwrap_or(0)
    }

    /// True with a chance of `percent` in 100 (never for 0, always from 100).
    #[allow(dead_code)] // the simulator's and the fault proxy's draws
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration in `[0, span)` (zero for a zero span), to the microsecond.
    pub(crate) fn duration_below(&mut self, span: Duration) -> Duration {
        let span_us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.below(span_us))
    }

    /// Puts `items` in a uniformly random order (Fisher–Yates).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for last in (1..items.len()).rev() {
            let pick = self.index(last + 1);
            items.swap(last, pick);
        }
    }
}

#[cfg(test)]
mod tests {
    // Paths, not imports: the test crates that include this file compile
    // this module too, some without running it.

    #[test]
    fn a_seed_gives_the_same_sequence_and_seeds_differ() {
        let draw = |seed| {
            let mut rng = super::Rng::seeded(seed);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        // SplitMix64's published first output for seed 0.
        assert_eq!(draw(0)[0], 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn bounded_draws_stay_in_range_and_cover_it() {
        let mut rng = super::Rng::seeded(7);
        let mut seen = [false; 6];
        for _ in 0..600 {
            let i = rng.index(6);
            assert!(i < 6);
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
        assert_eq!(rng.index(0), 0);
        assert_eq!(rng.below(0), 0);
        assert_eq!(
            rng.duration_below(std::time::Duration::ZERO),
            std::time::Duration::ZERO
        );
        let span = std::time::Duration::from_millis(3);
        assert!((0..100).all(|_| rng.duration_below(span) < span));
        assert!((0..100).all(|_| !rng.chance(0) && rng.chance(100)));
    }

    #[test]
    fn shuffle_permutes_and_reaches_every_order() {
        let mut rng = super::Rng::seeded(11);
        let mut orders = std::collections::HashSet::new();
        for _ in 0..400 {
            let mut items = [1, 2, 3];
            rng.shuffle(&mut items);
            let mut sorted = items;
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2, 3]);
            orders.insert(items);
        }
        assert_eq!(orders.len(), 6);
        let mut empty: [u8; 0] = [];
        rng.shuffle(&mut empty);
    }

    #[test]
    fn os_generators_differ() {
        assert_ne!(
            super::Rng::from_os().next_u64(),
            super::Rng::from_os().next_u64()
        );
        assert_ne!(super::password(), super::password());
    }
}
