//! Recipes: what people build on ZooKeeper, built on [`crate::Coordinator`].

mod lock;
mod rwlock;
mod semaphore;
mod util;

pub use lock::{Lock, LockGuard};
pub use rwlock::{RwLock, RwLockGuard};
pub use semaphore::{Lease, Semaphore};
