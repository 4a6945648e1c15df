//! Recipes: what people build on ZooKeeper, built on [`crate::Coordinator`].

mod barrier;
mod cache;
mod counter;
mod election;
mod lock;
mod queue;
mod rwlock;
mod semaphore;
mod util;

pub use barrier::{Barrier, DoubleBarrier};
pub use cache::{CacheEvent, NodeCache, NodeData, TreeCache};
pub use counter::{AtomicCounter, SharedValue, Versioned};
pub use election::{LeaderLatch, LeaderSelector, LeaderSelectorBuilder, Leadership};
pub use lock::{Lock, LockGuard};
pub use queue::{Claim, PriorityQueue, Queue};
pub use rwlock::{RwLock, RwLockGuard};
pub use semaphore::{Lease, Semaphore};
