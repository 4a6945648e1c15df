//! A fair read-write lock (ZooKeeper's shared-lock recipe; Curator's
//! `InterProcessReadWriteLock`).

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::Mutex;

use super::lock::{entries, exclusive_turn, Contend, Turn};
use super::util::{self, Deadline};
use crate::{Coordinator, Error, ErrorKind, Result};

const READ_PREFIX: &str = "read-";
const WRITE_PREFIX: &str = "write-";
const FAMILY: &[&str] = &[READ_PREFIX, WRITE_PREFIX];

type TurnRule = fn(&[String], usize) -> Turn;

/// Readers go unless a writer queued before them; they wait for the
/// nearest such writer only.
fn read_turn(queue: &[String], idx: usize) -> Turn {
    match queue[..idx]
        .iter()
        .rev()
        .find(|n| n.starts_with(WRITE_PREFIX))
    {
        None => Turn::Go,
        Some(writer) => Turn::WaitFor(vec![writer.clone()]),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Read,
    Write,
}

#[derive(Debug)]
struct Held {
    /// `None` for a read taken while this thread holds the write lock.
    node: Option<String>,
    count: usize,
}

/// A distributed read-write lock: many readers or one writer, in arrival
/// order (a writer that queued blocks the readers behind it, so writers do
/// not starve).
///
/// Readers and writers queue as `read-`/`write-` ephemeral sequential
/// nodes. A writer waits for the node just before it; a reader waits only
/// for the nearest writer before it. Both sides are re-entrant per thread,
/// and a thread holding the write lock may also take the read lock
/// (downgrade); taking the write lock while holding only the read lock
/// fails with `BadArguments` rather than deadlock.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::RwLock;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let a = RwLock::new(Arc::new(keeper.session()?), "/locks/catalog")?;
/// let b = RwLock::new(Arc::new(keeper.session()?), "/locks/catalog")?;
/// let c = RwLock::new(Arc::new(keeper.session()?), "/locks/catalog")?;
///
/// let read_a = a.read()?;
/// let read_b = b.try_read()?;                 // readers share
/// assert!(read_b.is_some());
/// assert!(c.try_write()?.is_none());          // a writer must wait
/// drop((read_a, read_b));
/// assert!(c.try_write()?.is_some());
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct RwLock<C: Coordinator + ?Sized> {
    client: Arc<C>,
    dir: String,
    label: Vec<u8>,
    reads: Mutex<HashMap<ThreadId, Held>>,
    writes: Mutex<HashMap<ThreadId, Held>>,
}

impl<C: Coordinator + ?Sized> RwLock<C> {
    /// A read-write lock at `path` for the session `client`.
    pub fn new(client: Arc<C>, path: &str) -> Result<RwLock<C>> {
        Ok(RwLock {
            client,
            dir: util::base_path(path)?,
            label: Vec::new(),
            reads: Mutex::new(HashMap::new()),
            writes: Mutex::new(HashMap::new()),
        })
    }

    /// Stores `label` in this contender's nodes (see [`RwLock::holders`]).
    pub fn with_label(mut self, label: impl Into<Vec<u8>>) -> RwLock<C> {
        self.label = label.into();
        self
    }

    /// Blocks until this thread holds the read lock.
    pub fn read(&self) -> Result<RwLockGuard<'_, C>> {
        self.acquire(Side::Read, Deadline::never())?
            .ok_or_else(|| Error::new(ErrorKind::SystemError))
    }

    /// Takes the read lock if no writer holds or waits for it.
    pub fn try_read(&self) -> Result<Option<RwLockGuard<'_, C>>> {
        self.acquire(Side::Read, Deadline::after(Duration::ZERO))
    }

    /// Waits up to `timeout` for the read lock.
    pub fn read_timeout(&self, timeout: Duration) -> Result<Option<RwLockGuard<'_, C>>> {
        self.acquire(Side::Read, Deadline::after(timeout))
    }

    /// Blocks until this thread holds the write lock.
    pub fn write(&self) -> Result<RwLockGuard<'_, C>> {
        self.acquire(Side::Write, Deadline::never())?
            .ok_or_else(|| Error::new(ErrorKind::SystemError))
    }

    /// Takes the write lock if nobody holds or waits for the lock.
    pub fn try_write(&self) -> Result<Option<RwLockGuard<'_, C>>> {
        self.acquire(Side::Write, Deadline::after(Duration::ZERO))
    }

    /// Waits up to `timeout` for the write lock.
    pub fn write_timeout(&self, timeout: Duration) -> Result<Option<RwLockGuard<'_, C>>> {
        self.acquire(Side::Write, Deadline::after(timeout))
    }

    /// Labels of everyone holding or waiting, in queue order, each with
    /// `true` for a writer.
    pub fn holders(&self) -> Result<Vec<(bool, Vec<u8>)>> {
        Ok(entries(&*self.client, &self.dir, FAMILY)?
            .into_iter()
            .map(|(name, data)| (name.starts_with(WRITE_PREFIX), data))
            .collect())
    }

    fn table(&self, side: Side) -> &Mutex<HashMap<ThreadId, Held>> {
        match side {
            Side::Read => &self.reads,
            Side::Write => &self.writes,
        }
    }

    fn acquire(&self, side: Side, deadline: Deadline) -> Result<Option<RwLockGuard<'_, C>>> {
        let thread = std::thread::current().id();
        let guard = || RwLockGuard {
            lock: self,
            thread,
            side,
            released: false,
        };
        if let Some(h) = self.table(side).lock().get_mut(&thread) {
            h.count += 1;
            return Ok(Some(guard()));
        }
        let holds_write = self.writes.lock().contains_key(&thread);
        match side {
            Side::Read if holds_write => {
                self.reads.lock().insert(
                    thread,
                    Held {
                        node: None,
                        count: 1,
                    },
                );
                return Ok(Some(guard()));
            }
            Side::Write if self.reads.lock().contains_key(&thread) => {
                return Err(Error::with_path(ErrorKind::BadArguments, &self.dir)
                    .detail("cannot upgrade a read lock to a write lock"));
            }
            _ => {}
        }
        let (prefix, turn): (&str, TurnRule) = match side {
            Side::Read => (READ_PREFIX, read_turn),
            Side::Write => (WRITE_PREFIX, exclusive_turn),
        };
        let contend = Contend {
            client: &*self.client,
            dir: &self.dir,
            prefix,
            family: FAMILY,
            data: &self.label,
            dir_kind: util::Dir::Container,
        };
        let Some(acquired) = contend.run(turn, deadline, None)? else {
            return Ok(None);
        };
        self.table(side).lock().insert(
            thread,
            Held {
                node: Some(acquired.path),
                count: 1,
            },
        );
        Ok(Some(guard()))
    }

    fn release(&self, side: Side, thread: ThreadId) -> Result<()> {
        let node = {
            let mut table = self.table(side).lock();
            let Some(h) = table.get_mut(&thread) else {
                return Ok(());
            };
            h.count -= 1;
            if h.count > 0 {
                return Ok(());
            }
            table.remove(&thread).and_then(|h| h.node)
        };
        match node {
            Some(node) => util::delete_if_present(&*self.client, &node),
            None => Ok(()),
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for RwLock<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwLock").field("path", &self.dir).finish()
    }
}

/// A held read or write side of an [`RwLock`]; dropping it releases.
#[must_use = "the lock is released when the guard is dropped"]
pub struct RwLockGuard<'a, C: Coordinator + ?Sized> {
    lock: &'a RwLock<C>,
    thread: ThreadId,
    side: Side,
    released: bool,
}

impl<C: Coordinator + ?Sized> RwLockGuard<'_, C> {
    /// True for the write side.
    pub fn is_write(&self) -> bool {
        self.side == Side::Write
    }

    /// Releases now, reporting a failure to delete the node.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.lock.release(self.side, self.thread)
    }
}

impl<C: Coordinator + ?Sized> Drop for RwLockGuard<'_, C> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.lock.release(self.side, self.thread);
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for RwLockGuard<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwLockGuard")
            .field("lock", &self.lock.dir)
            .field("write", &self.is_write())
            .finish()
    }
}
