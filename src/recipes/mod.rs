//! Recipes: what people build on ZooKeeper, built on [`crate::Coordinator`].

mod barrier;
mod cache;
mod counter;
mod discovery;
mod election;
mod group;
mod lock;
mod naming;
mod queue;
mod rwlock;
mod semaphore;
mod step;
mod tasks;
mod util;

pub use barrier::{Barrier, DoubleBarrier};
pub use cache::{CacheEvent, NodeCache, NodeData, TreeCache};
pub use counter::{AtomicCounter, SharedValue, Versioned};
pub use discovery::{
    PickStrategy, Registration, ServiceDiscovery, ServiceInstance, ServiceProvider, ServiceRegistry,
};
pub use election::{LeaderLatch, LeaderSelector, LeaderSelectorBuilder, Leadership};
pub use group::{members_of, GroupMember};
pub use lock::{Lock, LockGuard};
pub use naming::{BoundName, NameService};
pub use queue::{Claim, PriorityQueue, Queue};
pub use rwlock::{RwLock, RwLockGuard};
pub use semaphore::{Lease, Semaphore};
pub use step::{StepBarrier, StepStart, READY};
pub use tasks::{TaskBoard, TaskEvent, Worker};
