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

use crate::random::Rng;

/// Upper bound of the pause before a reconnect attempt.
const RECONNECT_PAUSE_MAX: Duration = Duration::from_millis(1000);

/// The pause after the first failed round; it doubles per round.
const ROUND_PAUSE_MIN: Duration = Duration::from_millis(250);

/// The pause after a failed round never grows past this.
const ROUND_PAUSE_MAX: Duration = Duration::from_millis(1000);

/// The pause before an attempt to reconnect a session whose negotiated
/// timeout is `negotiated_ms`.
pub(super) fn reconnect_pause(rng: &mut Rng, negotiated_ms: i32) -> Duration {
    let third = Duration::from_millis(u64::try_from(negotiated_ms).unwrap_or(0) / 3);
    rng.duration_below(RECONNECT_PAUSE_MAX.min(third))
}

/// The pause after `rounds` (1 or more) whole rounds of the server list
/// failed in a row.
pub(super) fn round_pause(rng: &mut Rng, rounds: usize) -> Duration {
    let doublings = u32::try_from(rounds.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(8);
    let ceiling = ROUND_PAUSE_MIN
        .saturating_mul(1 << doublings)
        .min(ROUND_PAUSE_MAX);
    ceiling / 2 + rng.duration_below(ceiling / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn reconnect_pauses_are_spread_below_a_second_and_a_third_of_the_timeout() {
        let mut jitter = Rng::seeded(7);
        let pauses: Vec<Duration> = (0..2000)
            .map(|_| reconnect_pause(&mut jitter, 30_000))
            .collect();
        assert!(pauses.iter().all(|p| *p < RECONNECT_PAUSE_MAX));
        // Spread over the whole range, not clustered: every tenth of it is hit.
        let tenths: BTreeSet<u128> = pauses.iter().map(|p| p.as_millis() / 100).collect();
        assert_eq!(tenths.len(), 10, "{tenths:?}");
        // A 600 ms session gets back within its timeout.
        let short: Vec<Duration> = (0..500)
            .map(|_| reconnect_pause(&mut jitter, 600))
            .collect();
        assert!(short.iter().all(|p| *p < Duration::from_millis(200)));
        assert!(short.iter().any(|p| *p > Duration::from_millis(100)));
        assert_eq!(reconnect_pause(&mut jitter, 0), Duration::ZERO);
        assert_eq!(reconnect_pause(&mut jitter, -5), Duration::ZERO);
    }

    #[test]
    fn round_pauses_double_up_to_a_second_with_jitter() {
        let mut jitter = Rng::seeded(11);
        for (rounds, low, high) in [
            (1, 125, 250),
            (2, 250, 500),
            (3, 500, 1000),
            (4, 500, 1000),
            (usize::MAX, 500, 1000),
        ] {
            let pauses: BTreeSet<u128> = (0..200)
                .map(|_| round_pause(&mut jitter, rounds).as_millis())
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
}
