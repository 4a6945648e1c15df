//! The stage every scenario plays on: one in-process keeper on a manual
//! clock (so a "crash" takes no real time), sessions for named
//! participants, and narration stamped with the keeper's clock.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use innkeeper::{Clock, Keeper, ManualClock, Session};

/// How long a participant's session lives without heartbeats.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// The keeper's tick (expiry granularity).
pub const TICK: Duration = Duration::from_secs(1);
/// How long the narrator waits for something that should happen at once.
pub const SOON: Duration = Duration::from_secs(5);

pub struct Stage {
    pub clock: ManualClock,
    pub keeper: Keeper,
    start_ms: i64,
}

impl Stage {
    pub fn new() -> Stage {
        let start_ms = 1_700_000_000_000;
        let clock = ManualClock::new(start_ms);
        let keeper = Keeper::builder()
            .clock(clock.clone())
            .tick(TICK)
            .session_timeout_range(Duration::from_secs(2), Duration::from_secs(60))
            .reap_interval(Duration::from_secs(5))
            .build()
            .expect("an in-memory keeper always builds");
        Stage {
            clock,
            keeper,
            start_ms,
        }
    }

    /// A new session for a participant.
    pub fn join(&self, _who: &str) -> Arc<Session> {
        Arc::new(
            self.keeper
                .session_with_timeout(SESSION_TIMEOUT)
                .expect("a live keeper opens sessions"),
        )
    }

    pub fn title(&self, title: &str) {
        println!();
        println!("== {title} ==");
    }

    /// One line of narration: keeper time, who, what.
    pub fn say(&self, who: &str, what: impl Display) {
        let elapsed_ms = self.clock.now_ms() - self.start_ms;
        println!("[{:>5.1}s] {who:<10} {what}", elapsed_ms as f64 / 1000.0);
    }

    /// The participant's process hangs: its heartbeats stop and the keeper
    /// clock runs on until the session expires.
    pub fn crash(&self, who: &str, session: &Session) {
        self.say(who, "hangs (no more heartbeats)");
        session.pause_heartbeats();
        let mut waited = Duration::ZERO;
        while !session.is_expired() && waited < SESSION_TIMEOUT * 3 {
            self.clock.advance(TICK);
            waited += TICK;
        }
        self.say(
            "keeper",
            format!(
                "expired {who}'s session after {}s of silence",
                waited.as_secs()
            ),
        );
    }

    /// Lets keeper time pass (empty containers get reaped).
    pub fn pass(&self, time: Duration) {
        self.clock.advance_in_steps(time, TICK);
    }
}
