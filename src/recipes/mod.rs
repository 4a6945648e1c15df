//! Recipes: what people build on ZooKeeper, written against the
//! [`Coordinator`](crate::Coordinator) trait only.
//!
//! Every recipe takes an `Arc<C>` where `C: Coordinator` (an in-process
//! [`Session`](crate::Session), `dyn Coordinator`, or a remote backend), so
//! it runs unchanged on a real ZooKeeper ensemble. None of them touches
//! engine internals; each is the well-known ZooKeeper recipe (or Curator's
//! version of it), with its guarantees stated below.
//!
//! ```
//! use std::sync::Arc;
//! use innkeeper::recipes::{LeaderLatch, Lock};
//! use innkeeper::Keeper;
//!
//! let keeper = Keeper::in_memory()?;
//! let session = Arc::new(keeper.session()?);
//! let lock = Lock::new(session.clone(), "/app/lock")?;
//! let latch = LeaderLatch::start(session, "/app/leader", "node-1")?;
//! let _guard = lock.lock()?;
//! assert!(latch.is_leader());
//! # Ok::<(), innkeeper::Error>(())
//! ```
//!
//! # Common ground
//!
//! - **Sessions are the failure detector.** A participant's claim (lock
//!   node, lease, latch node, membership, queue claim, worker entry) is an
//!   ephemeral node: when its process hangs or dies, the session expires,
//!   the node is deleted, and watchers hear of it. Liveness after a crash
//!   therefore takes one session timeout.
//! - **A claim can outlive its holder's belief only across expiry.** A
//!   holder whose session expired while it was paused may still think it
//!   holds the lock; [`LockGuard::fencing_token`] and
//!   [`LeaderLatch::fencing_token`] (the zxid that created the claim; it
//!   only grows) let the guarded resource refuse stale holders.
//! - **Sequential nodes give a total order** that every participant reads
//!   the same way, which is what makes locks fair and the step barrier's
//!   decision unanimous.
//! - **Versioned writes are compare-and-set.** Exactly one of several
//!   writers that read the same version wins.
//! - **No herd effect where it matters**: a lock waiter watches only the
//!   node just before it, so a release wakes one waiter.
//! - **Nothing left behind**: recipe directories are containers where
//!   possible (reaped by the keeper once empty); claims are ephemeral.
//! - Blocking calls come in three forms: blocking (`lock`), non-blocking
//!   (`try_lock`) and bounded (`lock_timeout`). A session that ends while
//!   a call waits makes it return `SessionExpired`.
//!
//! # The recipes, and why they are right
//!
//! | recipe | safety | liveness |
//! |---|---|---|
//! | [`Lock`] | only the lowest sequential node holds it; sequence numbers are unique and a node leaves only by release or expiry | each waiter watches its predecessor; when the predecessor goes (release, timeout, expiry) the waiter re-checks, so the line always moves |
//! | [`RwLock`] | a writer holds only as the lowest node; a reader only with no writer before it | a reader waits for the nearest earlier writer, a writer for its predecessor; both re-check when that node goes |
//! | [`Semaphore`] | only the first N nodes hold leases, and a node's index only decreases | the first waiter watches all N holders; later waiters watch their predecessor, which marks its node when admitted |
//! | [`LeaderLatch`] / [`LeaderSelector`] | the leader is the lowest node; an expired leader's node is gone and `is_leader` checks the session | the next in line watches the leader's node and takes over when it goes |
//! | [`Barrier`] | waiters pass only once the node is gone | deleting the node (or the raiser's session ending, for an ephemeral barrier) wakes every waiter |
//! | [`DoubleBarrier`] | `enter` returns once N nodes existed (the `ready` node is created only then); `leave` returns once all nodes are gone | a dead participant's node vanishes, so it cannot block the others' leave |
//! | [`Queue`] / [`PriorityQueue`] | an item is removed only by a multi that also deletes the consumer's ephemeral claim: never delivered twice | until that multi commits the item stays; a dead consumer's claim vanishes and the item is claimable again: never lost |
//! | [`AtomicCounter`] / [`SharedValue`] | set-data at the version read: no lost update | one of the racing writers wins each round |
//! | [`NodeCache`] / [`TreeCache`] | each event is applied by re-reading the node, on one thread, in event order: the mirror converges to the tree | a persistent watch never needs re-arming, so no change is missed between events |
//! | [`GroupMember`], [`ServiceRegistry`] | an entry is an ephemeral node: listed only while its session lives | a dead member or instance drops out after one session timeout |
//! | [`NameService`] | a binding is one node; sequential allocation never repeats a number (the parent is persistent) | followers use a node cache |
//! | [`Worker`] (task coordinator) | a task's owner is one field; a worker writes itself in only over an empty or dead owner (sessions never come back), by compare-and-set | every worker watches tasks and workers and reconciles toward its fair share, so a dead worker's tasks are claimed and a newcomer gets its share |
//! | [`StepBarrier`] | the start point is the first log entry after which all are ready; the log only grows in sequence order, so everyone finds the same point | entries are persistent: a participant that dies after `ready` still counts |
//!
//! Each recipe's type documents its own protocol in more detail.

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
