//! Small public helpers around the event stream. The public API itself
//! lives in `coordinator` (the trait), `ops` (multi's types), `keeper`
//! (the keeper and its builder) and `local` (the in-process session).

use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::event::{WatchReceiver, WatchedEvent};

/// Waits for the next event on a receiver (a helper for tests and recipes).
pub fn wait_event(events: &Receiver<WatchedEvent>, timeout: Duration) -> Option<WatchedEvent> {
    events.recv_timeout(timeout).ok()
}

impl From<WatchReceiver> for Receiver<WatchedEvent> {
    fn from(r: WatchReceiver) -> Receiver<WatchedEvent> {
        r.receiver().clone()
    }
}
