//! Session liveness: who is attached, who has a deadline, who is closing.
//!
//! This is the volatile half of a session. The persisted half (id, timeout,
//! password) lives in [`crate::session::SessionTable`] inside `State` and is
//! changed only by `State::apply`; nothing here is persisted, and after a
//! restart every session starts detached with a fresh deadline.
//!
//! Deadlines sit in buckets on multiples of the tick, as ZooKeeper's
//! `ExpiryQueue` does (`docs/zookeeper-semantics.md` C.3): a detached session
//! expires between `timeout` and `timeout + tick` after it was last touched.
//! An *attached* session (an in-process handle whose heartbeats run) has no
//! deadline at all: it is kept out of the buckets, so a tick costs what is
//! due, not what is open. Detaching gives it a fresh `now + timeout`
//! deadline. Time is always passed in; nothing here reads a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The liveness of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Live {
    /// Negotiated timeout (mirrors the persisted one).
    pub timeout_ms: i32,
    /// When it expires unless touched (a multiple of the tick); `None`
    /// while attached.
    pub deadline_ms: Option<i64>,
    /// Closing: a close or expiry is under way; requests are refused.
    pub closing: bool,
}

/// The liveness of all sessions of a keeper.
#[derive(Debug, Clone)]
pub(crate) struct Liveness {
    sessions: HashMap<i64, Live>,
    buckets: BTreeMap<i64, BTreeSet<i64>>,
    tick_ms: i64,
}

impl Liveness {
    /// No sessions, with the given tick (at least 1 ms).
    pub(crate) fn new(tick_ms: i64) -> Liveness {
        Liveness {
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            tick_ms: tick_ms.max(1),
        }
    }

    /// Rounds `now + timeout` up to the next tick boundary.
    fn deadline(&self, now_ms: i64, timeout_ms: i32) -> i64 {
        let due = now_ms.saturating_add(i64::from(timeout_ms));
        (due / self.tick_ms + 1).saturating_mul(self.tick_ms)
    }

    /// Starts tracking a session: attached (no deadline) or detached with a
    /// deadline of `now + timeout`. Replaces what was tracked for it.
    pub(crate) fn add(&mut self, session_id: i64, timeout_ms: i32, attached: bool, now_ms: i64) {
        self.remove(session_id);
        let deadline_ms = (!attached).then(|| self.deadline(now_ms, timeout_ms));
        if let Some(d) = deadline_ms {
            self.buckets.entry(d).or_default().insert(session_id);
        }
        self.sessions.insert(
            session_id,
            Live {
                timeout_ms,
                deadline_ms,
                closing: false,
            },
        );
    }

    /// Stops tracking a session (it is closed).
    pub(crate) fn remove(&mut self, session_id: i64) -> Option<Live> {
        let live = self.sessions.remove(&session_id)?;
        if let Some(d) = live.deadline_ms {
            self.unbucket(session_id, d);
        }
        Some(live)
    }

    fn unbucket(&mut self, session_id: i64, deadline_ms: i64) {
        if let Some(bucket) = self.buckets.get_mut(&deadline_ms) {
            bucket.remove(&session_id);
            if bucket.is_empty() {
                self.buckets.remove(&deadline_ms);
            }
        }
    }

    fn set_deadline(&mut self, session_id: i64, deadline_ms: Option<i64>) {
        let Some(live) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let old = std::mem::replace(&mut live.deadline_ms, deadline_ms);
        if old == deadline_ms {
            return;
        }
        if let Some(d) = old {
            self.unbucket(session_id, d);
        }
        if let Some(d) = deadline_ms {
            self.buckets.entry(d).or_default().insert(session_id);
        }
    }

    /// The session's liveness, if it is tracked.
    #[cfg(test)]
    pub(crate) fn get(&self, session_id: i64) -> Option<&Live> {
        self.sessions.get(&session_id)
    }

    /// True when the session is tracked and not closing.
    pub(crate) fn is_live(&self, session_id: i64) -> bool {
        self.sessions.get(&session_id).is_some_and(|s| !s.closing)
    }

    /// True when the session is tracked and closing.
    pub(crate) fn is_closing(&self, session_id: i64) -> bool {
        self.sessions.get(&session_id).is_some_and(|s| s.closing)
    }

    /// Heartbeats now run for the session: it loses its deadline.
    /// Returns false for unknown or closing sessions.
    pub(crate) fn attach(&mut self, session_id: i64) -> bool {
        if !self.is_live(session_id) {
            return false;
        }
        self.set_deadline(session_id, None);
        true
    }

    /// Heartbeats stopped: the session expires `timeout` after `now_ms`
    /// (rounded up to the tick) unless touched. Returns false for unknown
    /// or closing sessions.
    pub(crate) fn detach(&mut self, session_id: i64, now_ms: i64) -> bool {
        let Some(live) = self.sessions.get(&session_id) else {
            return false;
        };
        if live.closing {
            return false;
        }
        let deadline = self.deadline(now_ms, live.timeout_ms);
        self.set_deadline(session_id, Some(deadline));
        true
    }

    /// Pushes a detached session's deadline to `now + timeout` (rounded
    /// up); an attached one has none to push. Returns false for unknown or
    /// closing sessions.
    pub(crate) fn touch(&mut self, session_id: i64, now_ms: i64) -> bool {
        match self.touch_would_move(session_id, now_ms) {
            None => false,
            Some(false) => true,
            Some(true) => self.detach(session_id, now_ms),
        }
    }

    /// Whether [`Liveness::touch`] at `now_ms` would move the session's
    /// deadline; `None` for unknown or closing sessions. Deadlines move at
    /// most once per tick, so most touches only need to look.
    pub(crate) fn touch_would_move(&self, session_id: i64, now_ms: i64) -> Option<bool> {
        let live = self.sessions.get(&session_id)?;
        if live.closing {
            return None;
        }
        Some(
            live.deadline_ms
                .is_some_and(|d| d != self.deadline(now_ms, live.timeout_ms)),
        )
    }

    /// Changes a session's timeout (its timeout txn was applied); a
    /// detached session's deadline restarts from `now_ms`.
    pub(crate) fn set_timeout(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) {
        let Some(live) = self.sessions.get_mut(&session_id) else {
            return;
        };
        live.timeout_ms = timeout_ms;
        if live.deadline_ms.is_some() && !live.closing {
            self.detach(session_id, now_ms);
        }
    }

    /// Marks a session closing; returns false if it was unknown or already
    /// closing.
    pub(crate) fn mark_closing(&mut self, session_id: i64) -> bool {
        match self.sessions.get_mut(&session_id) {
            Some(live) if !live.closing => {
                live.closing = true;
                true
            }
            _ => false,
        }
    }

    /// Undoes [`Liveness::mark_closing`] when the close could not be
    /// committed; the deadline is unchanged, so an expired session is due
    /// again at the next tick.
    pub(crate) fn clear_closing(&mut self, session_id: i64) {
        if let Some(live) = self.sessions.get_mut(&session_id) {
            live.closing = false;
        }
    }

    /// Live sessions whose deadline is at or before `now_ms`, in id order
    /// within each bucket and bucket order overall. Costs the due buckets
    /// only: attached sessions and later deadlines are never looked at.
    pub(crate) fn expired(&self, now_ms: i64) -> Vec<i64> {
        self.buckets
            .range(..=now_ms)
            .flat_map(|(_, ids)| ids.iter().copied())
            .filter(|id| self.is_live(*id))
            .collect()
    }

    /// Sessions with a deadline, by deadline (for the admin dumps).
    pub(crate) fn buckets(&self) -> impl Iterator<Item = (i64, &BTreeSet<i64>)> {
        self.buckets.iter().map(|(d, ids)| (*d, ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_lands_on_the_tick_after_the_timeout() {
        // Reference: docs/zookeeper-semantics.md C.3.
        let mut live = Liveness::new(100);
        live.add(1, 1000, false, 50);
        assert_eq!(live.get(1).unwrap().deadline_ms, Some(1100));
        assert!(live.expired(1099).is_empty());
        assert_eq!(live.expired(1100), vec![1]);
        live.touch(1, 1000);
        assert!(live.expired(1100).is_empty());
        assert_eq!(live.expired(2100), vec![1]);
        live.mark_closing(1);
        assert!(
            live.expired(5000).is_empty(),
            "closing sessions are not expired twice"
        );
        assert!(!live.touch(1, 5000));
        live.clear_closing(1);
        assert_eq!(
            live.expired(5000),
            vec![1],
            "due again after a failed close"
        );
    }

    #[test]
    fn attached_sessions_have_no_deadline_until_detached() {
        let mut live = Liveness::new(100);
        live.add(1, 1000, true, 0);
        live.add(2, 1000, false, 0);
        assert_eq!(live.expired(1_000_000), vec![2], "attached never due");
        assert_eq!(live.buckets().count(), 1);
        assert!(live.touch(1, 500), "a touch of an attached session is fine");
        assert_eq!(live.get(1).unwrap().deadline_ms, None);
        assert!(live.detach(1, 2050));
        assert_eq!(live.get(1).unwrap().deadline_ms, Some(3100));
        assert!(live.expired(3099).iter().all(|id| *id != 1));
        assert!(live.expired(3100).contains(&1));
        assert!(live.attach(1));
        assert!(!live.expired(1_000_000).contains(&1));
        live.remove(2);
        assert_eq!(live.buckets().count(), 0, "empty buckets go");
        live.mark_closing(1);
        assert!(!live.attach(1) && !live.detach(1, 0), "closing: no change");
    }

    #[test]
    fn touch_would_move_only_across_tick_boundaries() {
        let mut live = Liveness::new(100);
        live.add(1, 1000, false, 50);
        assert_eq!(live.touch_would_move(1, 99), Some(false), "same bucket");
        assert_eq!(live.touch_would_move(1, 100), Some(true));
        assert_eq!(live.touch_would_move(2, 100), None, "unknown");
        live.mark_closing(1);
        assert_eq!(live.touch_would_move(1, 100), None, "closing");
    }

    #[test]
    fn a_new_timeout_restarts_a_detached_deadline_only() {
        let mut live = Liveness::new(100);
        live.add(1, 1000, false, 0);
        live.add(2, 1000, true, 0);
        live.set_timeout(1, 5000, 200);
        live.set_timeout(2, 5000, 200);
        assert_eq!(live.get(1).unwrap().deadline_ms, Some(5300));
        assert_eq!(live.get(2).unwrap().deadline_ms, None);
        assert_eq!(live.get(2).unwrap().timeout_ms, 5000);
    }
}
