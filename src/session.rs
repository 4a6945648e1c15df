//! The session table: ids, timeouts and passwords, the persisted half of a
//! session. It changes only through `State::apply` (create, timeout, close
//! txns) and snapshot decoding. Deadlines, attachment and the closing flag
//! are volatile and live beside the state, in [`crate::liveness`].

use std::collections::HashMap;

/// One open session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionEntry {
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// The password a reconnect must present.
    pub password: [u8; 16],
}

/// All sessions of a keeper.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionTable {
    sessions: HashMap<i64, SessionEntry>,
}

impl SessionTable {
    /// An empty table.
    pub(crate) fn new() -> SessionTable {
        SessionTable::default()
    }

    /// Adds a session (a create-session txn being applied, or a snapshot
    /// being decoded); replaces one with the same id.
    pub(crate) fn add(&mut self, session_id: i64, timeout_ms: i32, password: [u8; 16]) {
        self.sessions.insert(
            session_id,
            SessionEntry {
                timeout_ms,
                password,
            },
        );
    }

    /// Removes a session (its close txn is applied).
    pub(crate) fn remove(&mut self, session_id: i64) -> Option<SessionEntry> {
        self.sessions.remove(&session_id)
    }

    /// The session, if it exists.
    pub(crate) fn get(&self, session_id: i64) -> Option<&SessionEntry> {
        self.sessions.get(&session_id)
    }

    /// Changes a session's timeout (its timeout txn is applied); false for
    /// an unknown session.
    pub(crate) fn set_timeout(&mut self, session_id: i64, timeout_ms: i32) -> bool {
        match self.sessions.get_mut(&session_id) {
            Some(entry) => {
                entry.timeout_ms = timeout_ms;
                true
            }
            None => false,
        }
    }

    /// Number of sessions.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Every session id, sorted.
    pub(crate) fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

/// Whether `given` is the session's password, compared in constant time
/// (the time taken tells nothing about how many bytes matched).
pub(crate) fn password_matches(stored: &[u8; 16], given: &[u8]) -> bool {
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
pub(crate) fn initial_session_id(now_ms: i64) -> i64 {
    let id = ((now_ms as u64) << 24) >> 8;
    (id as i64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

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
