//! A shared value with versioned compare-and-set, and an atomic counter on
//! top of it (Curator's `SharedValue` and `DistributedAtomicLong`).

use std::sync::Arc;
use std::time::Duration;

use super::util::{self, Deadline, Waited};
use crate::event::{Watcher, WatcherType};
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Result};

/// A value and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The bytes.
    pub data: Vec<u8>,
    /// The node version they were read or written at.
    pub version: i32,
}

/// One value everyone shares, changed by compare-and-set on the node's
/// version: a write based on a stale read fails instead of overwriting
/// someone else's.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::SharedValue;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let mode = SharedValue::new(Arc::new(keeper.session()?), "/config/mode", b"normal")?;
/// let seen = mode.get()?;
/// assert!(mode.compare_and_set(seen.version, b"maintenance")?.is_some());
/// assert!(mode.compare_and_set(seen.version, b"stale")?.is_none()); // lost the race
/// assert_eq!(mode.get()?.data, b"maintenance");
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct SharedValue<C: Coordinator + ?Sized> {
    client: Arc<C>,
    path: String,
}

impl<C: Coordinator + ?Sized> SharedValue<C> {
    /// The value at `path`, created with `initial` if it does not exist.
    pub fn new(client: Arc<C>, path: &str, initial: &[u8]) -> Result<SharedValue<C>> {
        let path = util::base_path(path)?;
        let parent = path::parent(&path);
        if parent != "/" {
            client.create_all(parent)?;
        }
        match client.create(&path, initial, CreateMode::Persistent) {
            Err(e) if e.kind() != ErrorKind::NodeExists => return Err(e),
            _ => {}
        }
        Ok(SharedValue { client, path })
    }

    /// The current value and its version.
    pub fn get(&self) -> Result<Versioned> {
        let (data, stat) = self.client.get_data(&self.path)?;
        Ok(Versioned {
            data,
            version: stat.version,
        })
    }

    /// Sets the value whatever it was.
    pub fn set(&self, data: &[u8]) -> Result<Versioned> {
        let stat = self.client.set_data(&self.path, data, crate::ANY_VERSION)?;
        Ok(Versioned {
            data: data.to_vec(),
            version: stat.version,
        })
    }

    /// Sets the value if it is still at `expected_version`; `None` if
    /// someone changed it since.
    pub fn compare_and_set(&self, expected_version: i32, data: &[u8]) -> Result<Option<Versioned>> {
        match self.client.set_data(&self.path, data, expected_version) {
            Ok(stat) => Ok(Some(Versioned {
                data: data.to_vec(),
                version: stat.version,
            })),
            Err(e) if e.kind() == ErrorKind::BadVersion => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Applies `change` to the current value until a compare-and-set
    /// succeeds (`change` may run several times); returns what was written.
    pub fn update(&self, mut change: impl FnMut(&[u8]) -> Vec<u8>) -> Result<Versioned> {
        for _ in 0..util::CAS_ATTEMPTS_MAX {
            let current = self.get()?;
            let next = change(&current.data);
            if let Some(written) = self.compare_and_set(current.version, &next)? {
                return Ok(written);
            }
        }
        Err(Error::with_path(ErrorKind::BadVersion, &self.path)
            .detail("too many concurrent writers; gave up"))
    }

    /// Waits up to `timeout` for a version newer than `seen_version`.
    pub fn wait_change(&self, seen_version: i32, timeout: Duration) -> Result<Option<Versioned>> {
        let deadline = Deadline::after(timeout);
        loop {
            let (watcher, events) = Watcher::channel();
            let (data, stat) = self.client.get_data_with(&self.path, Some(&watcher))?;
            if stat.version != seen_version {
                util::forget_watch(&*self.client, &self.path, WatcherType::Data, &watcher);
                return Ok(Some(Versioned {
                    data: data.unwrap_or_default(),
                    version: stat.version,
                }));
            }
            if let Waited::TimedOut = util::wait_for(&events, None, deadline) {
                util::forget_watch(&*self.client, &self.path, WatcherType::Data, &watcher);
                return Ok(None);
            }
        }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for SharedValue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedValue")
            .field("path", &self.path)
            .finish()
    }
}

/// A 64-bit counter everyone can add to atomically (stored as 8 bytes,
/// big-endian, as Curator's `DistributedAtomicLong` does).
///
/// Each change is a compare-and-set on the node's version, so concurrent
/// adds never lose an update: one wins per version and the others retry.
/// An `Err` from an in-process session means the add did not happen.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::AtomicCounter;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let hits = AtomicCounter::new(Arc::new(keeper.session()?), "/stats/hits")?;
/// hits.increment()?;
/// assert_eq!(hits.add(10)?, 11);
/// assert!(!hits.compare_and_set(5, 0)?);
/// assert_eq!(hits.get()?, 11);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct AtomicCounter<C: Coordinator + ?Sized> {
    value: SharedValue<C>,
}

fn decode(path: &str, data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    let bytes: [u8; 8] = data.try_into().map_err(|_| {
        Error::with_path(ErrorKind::DataInconsistency, path)
            .detail(format!("a counter holds 8 bytes, not {}", data.len()))
    })?;
    Ok(i64::from_be_bytes(bytes))
}

impl<C: Coordinator + ?Sized> AtomicCounter<C> {
    /// The counter at `path`, created at 0 if missing.
    pub fn new(client: Arc<C>, path: &str) -> Result<AtomicCounter<C>> {
        Ok(AtomicCounter {
            value: SharedValue::new(client, path, &0i64.to_be_bytes())?,
        })
    }

    /// The current value.
    pub fn get(&self) -> Result<i64> {
        decode(self.value.path(), &self.value.get()?.data)
    }

    /// Adds `delta` (wrapping) and returns the new value.
    pub fn add(&self, delta: i64) -> Result<i64> {
        for _ in 0..util::CAS_ATTEMPTS_MAX {
            let current = self.value.get()?;
            let next = decode(self.value.path(), &current.data)?.wrapping_add(delta);
            if self
                .value
                .compare_and_set(current.version, &next.to_be_bytes())?
                .is_some()
            {
                return Ok(next);
            }
        }
        Err(Error::with_path(ErrorKind::BadVersion, self.value.path())
            .detail("too many concurrent writers; gave up"))
    }

    /// Adds one; returns the new value.
    pub fn increment(&self) -> Result<i64> {
        self.add(1)
    }

    /// Subtracts one; returns the new value.
    pub fn decrement(&self) -> Result<i64> {
        self.add(-1)
    }

    /// Sets `new` if the value is `expected`; true if it did.
    pub fn compare_and_set(&self, expected: i64, new: i64) -> Result<bool> {
        let current = self.value.get()?;
        if decode(self.value.path(), &current.data)? != expected {
            return Ok(false);
        }
        Ok(self
            .value
            .compare_and_set(current.version, &new.to_be_bytes())?
            .is_some())
    }

    /// Sets the value.
    pub fn set(&self, value: i64) -> Result<()> {
        self.value.set(&value.to_be_bytes()).map(|_| ())
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for AtomicCounter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicCounter")
            .field("path", &self.value.path())
            .finish()
    }
}
