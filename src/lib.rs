//! innkeeper: an embeddable, in-process coordination engine that behaves like Apache ZooKeeper.

mod error;
mod node;
/// ZooKeeper's client wire protocol: jute records and framing, as pure functions over bytes.
pub mod proto;

pub use error::{Error, ErrorKind, Result};
pub use node::{digest_id, Acl, CreateMode, Id, Perms, Stat};
