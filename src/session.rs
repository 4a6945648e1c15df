//! The session table: ids, passwords, timeouts and expiry deadlines.
//!
//! Deadlines sit in buckets on multiples of the tick, as ZooKeeper's
//! `ExpiryQueue` does (`docs/zookeeper-semantics.md` C.3): a session expires
//! between `timeout` and `timeout + tick` after it was last touched. Time is
//! always passed in; nothing here reads a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// The password a reconnect must present.
    pub password: [u8; 16],
    /// When it expires unless touched (a multiple of the tick).
    pub deadline_ms: i64,
    /// Closing: a close or expiry is under way; requests are refused.
    pub closing: bool,
}

/// All sessions of a keeper.
#[derive(Debug, Clone)]
pub struct SessionTable {
    sessions: HashMap<i64, SessionEntry>,
    buckets: BTreeMap<i64, BTreeSet<i64>>,
    tick_ms: i64,
}

impl SessionTable {
    /// An empty table with the given tick (at least 1 ms).
    pub fn new(tick_ms: i64) -> SessionTable {
        SessionTable {
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

    /// Adds a session (a create-session txn being applied, or recovery).
    pub fn add(&mut self, session_id: i64, timeout_ms: i32, password: [u8; 16], now_ms: i64) {
        self.remove(session_id);
        let deadline_ms = self.deadline(now_ms, timeout_ms);
        self.sessions.insert(
            session_id,
            SessionEntry {
                timeout_ms,
                password,
                deadline_ms,
                closing: false,
            },
        );
        self.buckets
            .entry(deadline_ms)
            .or_default()
            .insert(session_id);
    }

    /// Removes a session (its close txn is applied).
    pub fn remove(&mut self, session_id: i64) -> Option<SessionEntry> {
        let entry = self.sessions.remove(&session_id)?;
        self.unbucket(session_id, entry.deadline_ms);
        Some(entry)
    }

    fn unbucket(&mut self, session_id: i64, deadline_ms: i64) {
        if let Some(bucket) = self.buckets.get_mut(&deadline_ms) {
            bucket.remove(&session_id);
            if bucket.is_empty() {
                self.buckets.remove(&deadline_ms);
            }
        }
    }

    /// The session, if it exists (closing or not).
    pub fn get(&self, session_id: i64) -> Option<&SessionEntry> {
        self.sessions.get(&session_id)
    }

    /// True when the session exists and is not closing.
    pub fn is_live(&self, session_id: i64) -> bool {
        self.sessions.get(&session_id).is_some_and(|s| !s.closing)
    }

    /// Pushes a live session's deadline to `now + timeout` (rounded up).
    /// Returns false for unknown or closing sessions.
    pub fn touch(&mut self, session_id: i64, now_ms: i64) -> bool {
        let Some(entry) = self.sessions.get(&session_id) else {
            return false;
        };
        if entry.closing {
            return false;
        }
        let (old, timeout_ms) = (entry.deadline_ms, entry.timeout_ms);
        let new = self.deadline(now_ms, timeout_ms);
        if new == old {
            return true;
        }
        self.unbucket(session_id, old);
        self.buckets.entry(new).or_default().insert(session_id);
        if let Some(entry) = self.sessions.get_mut(&session_id) {
            entry.deadline_ms = new;
        }
        true
    }

    /// Whether [`SessionTable::touch`] at `now_ms` would move the session's
    /// deadline; `None` for unknown or closing sessions. Deadlines move at
    /// most once per tick, so most touches only need to look.
    pub fn touch_would_move(&self, session_id: i64, now_ms: i64) -> Option<bool> {
        let entry = self.sessions.get(&session_id)?;
        if entry.closing {
            return None;
        }
        Some(self.deadline(now_ms, entry.timeout_ms) != entry.deadline_ms)
    }

    /// Changes a session's timeout (a reconnect negotiated a new one).
    pub fn set_timeout(&mut self, session_id: i64, timeout_ms: i32, now_ms: i64) {
        if let Some(entry) = self.sessions.get_mut(&session_id) {
            entry.timeout_ms = timeout_ms;
        }
        self.touch(session_id, now_ms);
    }

    /// Marks a session closing; returns false if it was unknown or already closing.
    pub fn mark_closing(&mut self, session_id: i64) -> bool {
        match self.sessions.get_mut(&session_id) {
            Some(entry) if !entry.closing => {
                entry.closing = true;
                true
            }
            _ => false,
        }
    }

    /// Undoes [`SessionTable::mark_closing`] when the close could not be
    /// committed; the deadline is unchanged, so an expired session is due again.
    pub fn clear_closing(&mut self, session_id: i64) {
        if let Some(entry) = self.sessions.get_mut(&session_id) {
            entry.closing = false;
        }
    }

    /// Live sessions whose deadline is at or before `now_ms`, in id order
    /// within each bucket and bucket order overall.
    pub fn expired(&self, now_ms: i64) -> Vec<i64> {
        self.buckets
            .range(..=now_ms)
            .flat_map(|(_, ids)| ids.iter().copied())
            .filter(|id| self.is_live(*id))
            .collect()
    }

    /// Number of sessions (closing ones included).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Every session id, sorted.
    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Gives every session a fresh deadline from `now_ms` (after recovery).
    pub fn refresh_all(&mut self, now_ms: i64) {
        for id in self.ids() {
            if let Some(entry) = self.sessions.get_mut(&id) {
                entry.closing = false;
            }
            self.touch(id, now_ms);
        }
    }
}

/// Whether `given` is the session's password, compared in constant time
/// (the time taken tells nothing about how many bytes matched).
pub fn password_matches(stored: &[u8; 16], given: &[u8]) -> bool {
    if given.len() != stored.len() {
        return false;
    }
    let diff = stored
        .iter()
        .zip(given)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// The first session id of a keeper started at `now_ms`, ZooKeeper-style:
/// server id 0 in the top byte, 40 bits of the clock, 16 bits of counter.
pub fn initial_session_id(now_ms: i64) -> i64 {
    let id = ((now_ms as u64) << 24) >> 8;
    (id as i64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_lands_on_the_tick_after_the_timeout() {
        // Reference: docs/zookeeper-semantics.md C.3.
        let mut table = SessionTable::new(100);
        table.add(1, 1000, [0; 16], 50);
        assert_eq!(table.get(1).unwrap().deadline_ms, 1100);
        assert!(table.expired(1099).is_empty());
        assert_eq!(table.expired(1100), vec![1]);
        table.touch(1, 1000);
        assert!(table.expired(1100).is_empty());
        assert_eq!(table.expired(2100), vec![1]);
        table.mark_closing(1);
        assert!(
            table.expired(5000).is_empty(),
            "closing sessions are not expired twice"
        );
        assert!(!table.touch(1, 5000));
    }

    #[test]
    fn touch_would_move_only_across_tick_boundaries() {
        let mut table = SessionTable::new(100);
        table.add(1, 1000, [0; 16], 50);
        assert_eq!(table.touch_would_move(1, 99), Some(false), "same bucket");
        assert_eq!(table.touch_would_move(1, 100), Some(true));
        assert_eq!(table.touch_would_move(2, 100), None, "unknown");
        table.mark_closing(1);
        assert_eq!(table.touch_would_move(1, 100), None, "closing");
    }

    #[test]
    fn passwords_match_only_exactly() {
        let stored = [7u8; 16];
        assert!(password_matches(&stored, &[7u8; 16]));
        let mut other = [7u8; 16];
        other[15] = 8;
        assert!(!password_matches(&stored, &other));
        assert!(!password_matches(&stored, &[7u8; 15]));
        assert!(!password_matches(&stored, &[]));
    }

    #[test]
    fn initial_ids_avoid_reserved_values() {
        let id = initial_session_id(1_700_000_000_000);
        assert!(id > 0);
        assert_eq!((id as u64) >> 56, 0);
        assert_eq!(id & 0xFFFF, 0);
    }
}
