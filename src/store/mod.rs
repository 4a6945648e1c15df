//! Persistence of applied txns. The engine calls [`Store::persist`] with a
//! batch of prepared txns before applying them; when it returns `Ok`, the
//! batch is as durable as the store's mode promises.

use crate::error::Result;
use crate::state::State;
use crate::txn::Txn;

/// A place txns are written to before they become visible.
pub(crate) trait Store: Send + Sync {
    /// Writes the batch atomically (all txns or none) and, in the durable
    /// mode, makes it durable before returning. On `Err` nothing of the
    /// batch may become visible after a restart.
    fn persist(&self, txns: &[Txn], state_before: &State) -> Result<()>;

    /// Flushes whatever is buffered (a clean shutdown).
    fn flush(&self) -> Result<()>;
}
