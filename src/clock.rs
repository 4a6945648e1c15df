//! Time, the only thing the engine reads from outside.
//!
//! [`SystemClock`] is the single place that reads the real clock;
//! [`ManualClock`] moves only when a test says so, and runs the keepers'
//! expiry and reaping on the calling thread when it does.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Something that wants to hear when a manual clock moves (a keeper).
pub trait TimeListener: Send + Sync {
    /// Time moved to `now_ms`: expire and reap what is due.
    fn time_advanced(&self, now_ms: i64);
}

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now, in ms since the epoch.
    fn now_ms(&self) -> i64;

    /// True when time only moves by explicit calls (no expiry thread is
    /// needed; the clock drives expiry itself).
    fn is_manual(&self) -> bool {
        false
    }

    /// Registers a listener to run when a manual clock advances.
    fn subscribe(&self, _listener: Weak<dyn TimeListener>) {}
}

/// The real clock. Guards against the wall clock going backwards: it never
/// reports a time before one it already reported.
#[derive(Debug, Default)]
pub struct SystemClock {
    last_ms: AtomicI64,
}

impl SystemClock {
    /// A system clock.
    pub fn new() -> SystemClock {
        SystemClock::default()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let prev = self.last_ms.fetch_max(now, Ordering::AcqRel);
        now.max(prev)
    }
}

/// A clock that moves only when told to. Cloning shares the same time.
///
/// ```
/// use std::time::Duration;
/// use innkeeper::{Keeper, ManualClock};
///
/// let clock = ManualClock::new(1_700_000_000_000);
/// let keeper = Keeper::builder().clock(clock.clone()).build()?;
/// let session = keeper.session_with_timeout(Duration::from_secs(10))?;
/// session.pause_heartbeats();
/// clock.advance(Duration::from_secs(30)); // expiry runs here, on this thread
/// assert!(session.is_expired());
/// # Ok::<(), innkeeper::Error>(())
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    now_ms: AtomicI64,
    listeners: Mutex<Vec<Weak<dyn TimeListener>>>,
}

impl ManualClock {
    /// A manual clock starting at `start_ms` since the epoch.
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock {
            inner: Arc::new(ManualInner {
                now_ms: AtomicI64::new(start_ms),
                listeners: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Moves time forward by `by` and runs every subscribed keeper's expiry
    /// and reaping on this thread before returning.
    pub fn advance(&self, by: Duration) {
        let by_ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = self
            .inner
            .now_ms
            .fetch_add(by_ms, Ordering::AcqRel)
            .saturating_add(by_ms);
        let listeners: Vec<Arc<dyn TimeListener>> = {
            let mut list = self.inner.listeners.lock();
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        for listener in listeners {
            listener.time_advanced(now);
        }
    }

    /// Moves time forward in steps of `step` until `by` has passed, so
    /// every tick boundary on the way is visited.
    pub fn advance_in_steps(&self, by: Duration, step: Duration) {
        let mut left = by;
        while !left.is_zero() {
            let this = left.min(step.max(Duration::from_millis(1)));
            self.advance(this);
            left -= this;
        }
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.inner.now_ms.load(Ordering::Acquire)
    }

    fn is_manual(&self) -> bool {
        true
    }

    fn subscribe(&self, listener: Weak<dyn TimeListener>) {
        self.inner.listeners.lock().push(listener);
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("now_ms", &self.now_ms())
            .finish()
    }
}
