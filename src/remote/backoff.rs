//! How long the remote client waits between connection attempts.
//!
//! Two pauses, both randomized so that the clients of a restarted server
//! spread out instead of returning in one wave (the Java client sleeps a
//! random part of a second before every reconnect attempt; Curator's retry
//! policies randomize their exponential backoff the same way):
//!
//! * before each attempt to *re*connect a session that was connected, a
//!   uniform pause in `[0, min(1 s, timeout / 3))`, so a short session
//!   timeout still leaves time to get back;
//! * after a whole round of the server list failed, a pause that doubles
//!   with each round from 250 ms up to 1 s (the Java client's spin delay),
//!   drawn uniformly from its upper half.

use std::time::Duration;

/// Upper bound of the pause before a reconnect attempt.
const RECONNECT_PAUSE_MAX: Duration = Duration::from_millis(1000);

/// The pause after the first failed round; it doubles per round.
const ROUND_PAUSE_MIN: Duration = Duration::from_millis(250);

/// The pause after a failed round never grows past this.
const ROUND_PAUSE_MAX: Duration = Duration::from_millis(1000);

/// A small pseudo-random source (xorshift64*), seeded from the OS so that
/// two clients started together draw different pauses.
pub(super) struct Jitter {
    state: u64,
}

impl Jitter {
    pub(super) fn from_os() -> Jitter {
        let seed = getrandom::u64().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            u64::from(nanos) ^ (u64::from(std::process::id()) << 32)
        });
        Jitter::seeded(seed)
    }

    pub(super) fn seeded(seed: u64) -> Jitter {
        // Zero is xorshift's one fixed point.
        Jitter { state: seed | 1 }
    }

    pub(super) fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `random` scaled into `[0, span)`.
fn fraction_of(random: u64, span: Duration) -> Duration {
    let span_us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
    if span_us == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(random % span_us)
}

/// The pause before an attempt to reconnect a session whose negotiated
/// timeout is `negotiated_ms`.
pub(super) fn reconnect_pause(random: u64, negotiated_ms: i32) -> Duration {
    let third = Duration::from_millis(u64::try_from(negotiated_ms).unwrap_or(0) / 3);
    fraction_of(random, RECONNECT_PAUSE_MAX.min(third))
}

/// The pause after `rounds` (1 or more) whole rounds of the server list
/// failed in a row.
pub(super) fn round_pause(random: u64, rounds: usize) -> Duration {
    let doublings = u32::try_from(rounds.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(8);
    let ceiling = ROUND_PAUSE_MIN
        .saturating_mul(1 << doublings)
        .min(ROUND_PAUSE_MAX);
    ceiling / 2 + fraction_of(random, ceiling / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn reconnect_pauses_are_spread_below_a_second_and_a_third_of_the_timeout() {
        let mut jitter = Jitter::seeded(7);
        let pauses: Vec<Duration> = (0..2000)
            .map(|_| reconnect_pause(jitter.next(), 30_000))
            .collect();
        assert!(pauses.iter().all(|p| *p < RECONNECT_PAUSE_MAX));
        // Spread over the whole range, not clustered: every tenth of it is hit.
        let tenths: BTreeSet<u128> = pauses.iter().map(|p| p.as_millis() / 100).collect();
        assert_eq!(tenths.len(), 10, "{tenths:?}");
        // A 600 ms session gets back within its timeout.
        let short: Vec<Duration> = (0..500)
            .map(|_| reconnect_pause(jitter.next(), 600))
            .collect();
        assert!(short.iter().all(|p| *p < Duration::from_millis(200)));
        assert!(short.iter().any(|p| *p > Duration::from_millis(100)));
        assert_eq!(reconnect_pause(jitter.next(), 0), Duration::ZERO);
        assert_eq!(reconnect_pause(jitter.next(), -5), Duration::ZERO);
    }

    #[test]
    fn round_pauses_double_up_to_a_second_with_jitter() {
        let mut jitter = Jitter::seeded(11);
        for (rounds, low, high) in [
            (1, 125, 250),
            (2, 250, 500),
            (3, 500, 1000),
            (4, 500, 1000),
            (usize::MAX, 500, 1000),
        ] {
            let pauses: BTreeSet<u128> = (0..200)
                .map(|_| round_pause(jitter.next(), rounds).as_millis())
                .collect();
            assert!(
                pauses.iter().all(|ms| (low..high).contains(ms)),
                "round {rounds}: {pauses:?}"
            );
            assert!(
                pauses.len() > 20,
                "round {rounds} is not random: {pauses:?}"
            );
        }
    }

    #[test]
    fn two_clients_draw_different_pauses() {
        let mut a = Jitter::from_os();
        let mut b = Jitter::from_os();
        let draws_a: Vec<u64> = (0..4).map(|_| a.next()).collect();
        let draws_b: Vec<u64> = (0..4).map(|_| b.next()).collect();
        assert_ne!(draws_a, draws_b);
    }
}
