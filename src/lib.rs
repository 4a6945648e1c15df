//! innkeeper: an embeddable, in-process coordination engine that behaves like Apache ZooKeeper.

mod error;
mod node;

pub use error::{Error, ErrorKind, Result};
pub use node::{digest_id, Acl, CreateMode, Id, Perms, Stat};
