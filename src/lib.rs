//! innkeeper: an embeddable, in-process coordination engine that behaves like Apache ZooKeeper.

mod api;
mod clock;
mod engine;
mod error;
mod event;
mod node;
pub mod path;
mod prep;
mod session;
mod state;
mod store;
mod tree;
mod txn;
mod watch;

pub use api::{
    wait_event, ClientInfo, Coordinator, CreateOptions, Keeper, KeeperBuilder, Op, OpResult,
    ReadOp, ReadResult, Session,
};
pub use clock::{Clock, ManualClock, SystemClock, TimeListener};
pub use error::{Error, ErrorKind, Result};
pub use event::{
    AddWatchMode, EventType, KeeperState, WatchReceiver, WatchedEvent, Watcher, WatcherType,
};
pub use node::{digest_id, Acl, CreateMode, Id, Perms, Stat};
#[doc(hidden)]
pub use store::{fuzz_decode, StoreFaults};
pub use store::{Durability, CACHE_BYTES_DEFAULT, SNAPSHOT_EVERY_TXNS_DEFAULT};

/// Default largest node data: 1 MiB, ZooKeeper's `jute.maxbuffer` (0xFFFFF).
pub const DATA_BYTES_MAX_DEFAULT: usize = 0xFFFFF;

/// "Any version" for delete, set-data, set-ACL and check.
pub const ANY_VERSION: i32 = -1;
