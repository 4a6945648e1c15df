//! What an applied txn changed, node by node: `state` produces the list,
//! `watch` turns it into notifications. A module of its own so neither of
//! the two depends on the other.

/// One node change, in apply order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A node was created.
    Created(String),
    /// A node was deleted.
    Deleted(String),
    /// A node's data was set.
    DataChanged(String),
}
