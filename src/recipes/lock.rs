//! A fair, re-entrant exclusive lock, and the queue-of-contenders core the
//! read-write lock and the leader selector share.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::util::{self, Deadline, Waited};
use crate::event::{Watcher, WatcherType};
use crate::node::{CreateMode, Stat};
use crate::path;
use crate::{Coordinator, Result};

/// What a contender should do given the queue in sequence order.
pub(crate) enum Turn {
    /// It holds the lock.
    Go,
    /// It must wait until one of these earlier nodes changes or goes.
    WaitFor(Vec<String>),
}

/// One contender's place in a queue of ephemeral-sequential nodes under
/// `dir`, and how to decide whose turn it is.
pub(crate) struct Contend<'a, C: Coordinator + ?Sized> {
    pub client: &'a C,
    pub dir: &'a str,
    /// The name prefix of this contender's node (`lock-`, `read-`, …).
    pub prefix: &'a str,
    /// Every prefix that takes part in the queue.
    pub family: &'a [&'a str],
    pub data: &'a [u8],
    /// How the directory is made when missing.
    pub dir_kind: util::Dir,
}

/// A node that holds the lock: its path and its create Stat.
#[derive(Debug, Clone)]
pub(crate) struct Acquired {
    pub path: String,
    pub stat: Stat,
}

impl<C: Coordinator + ?Sized> Contend<'_, C> {
    /// Joins the queue and waits for `decide` to say go, the deadline, or
    /// a cancel. On a timeout or cancel our node is removed and `None`
    /// returned; on an error it is removed (if the session still can) and
    /// the error returned.
    ///
    /// Each waiter watches exactly the node `decide` names, so one release
    /// wakes only the contender(s) that node was blocking.
    pub(crate) fn run(
        &self,
        decide: impl Fn(&[String], usize) -> Turn,
        deadline: Deadline,
        cancel: Option<&Receiver<()>>,
    ) -> Result<Option<Acquired>> {
        let (mine, stat) = util::create_protected(
            self.client,
            self.dir,
            self.prefix,
            self.data,
            CreateMode::EphemeralSequential,
            self.dir_kind,
        )?;
        match self.wait_turn(&mine, decide, deadline, cancel) {
            Ok(true) => Ok(Some(Acquired { path: mine, stat })),
            Ok(false) => {
                util::delete_if_present(self.client, &mine)?;
                Ok(None)
            }
            Err(e) => {
                let _ = util::delete_if_present(self.client, &mine);
                Err(e)
            }
        }
    }

    fn wait_turn(
        &self,
        mine: &str,
        decide: impl Fn(&[String], usize) -> Turn,
        deadline: Deadline,
        cancel: Option<&Receiver<()>>,
    ) -> Result<bool> {
        let my_name = path::name(mine);
        loop {
            let queue = util::sorted_by_sequence(self.client.get_children(self.dir)?, self.family);
            let Some(idx) = queue.iter().position(|n| n == my_name) else {
                return Err(util::lost_node(mine));
            };
            let blockers: Vec<String> = match decide(&queue, idx) {
                Turn::Go => return Ok(true),
                Turn::WaitFor(names) => names.iter().map(|n| path::join(self.dir, n)).collect(),
            };
            if deadline.passed() {
                return Ok(false);
            }
            let (watcher, events) = Watcher::channel();
            let forget = |set: &[String]| {
                for b in set {
                    util::forget_watch(self.client, b, WatcherType::Data, &watcher);
                }
            };
            let mut watched = Vec::with_capacity(blockers.len());
            let mut all_there = true;
            for blocker in &blockers {
                watched.push(blocker.clone());
                if self.client.exists_with(blocker, Some(&watcher))?.is_none() {
                    all_there = false;
                    break;
                }
            }
            if !all_there {
                // A blocker went between the listing and the watch: look
                // again. Its exist watch would wait for a re-create that a
                // sequential name never sees; drop the watches.
                forget(&watched);
                continue;
            }
            match util::wait_for(&events, cancel, deadline) {
                Waited::Event => forget(&watched),
                Waited::TimedOut | Waited::Cancelled => {
                    forget(&watched);
                    return Ok(false);
                }
            }
        }
    }
}

/// The exclusive rule: the first node holds the lock; everyone else waits
/// for the node just before it.
pub(crate) fn exclusive_turn(queue: &[String], idx: usize) -> Turn {
    match idx.checked_sub(1).and_then(|p| queue.get(p)) {
        None => Turn::Go,
        Some(prev) => Turn::WaitFor(vec![prev.clone()]),
    }
}

const LOCK_PREFIX: &str = "lock-";

#[derive(Debug)]
struct Held {
    node: String,
    token: i64,
    count: usize,
}

/// A distributed, fair, re-entrant mutual-exclusion lock (ZooKeeper's lock
/// recipe; Curator's `InterProcessMutex`).
///
/// Each contender creates an ephemeral sequential node under the lock path;
/// the lowest sequence holds the lock, and every other contender watches
/// only the node just before its own (no herd effect: a release wakes one
/// waiter). The lock is re-entrant per thread of one `Lock` value, and a
/// [`LockGuard`] releases it when dropped. If the holder's session ends its
/// node goes with it and the next contender takes over.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::Lock;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let alice = Lock::new(Arc::new(keeper.session()?), "/locks/printer")?;
/// let bob = Lock::new(Arc::new(keeper.session()?), "/locks/printer")?;
///
/// let guard = alice.lock()?;
/// assert!(bob.try_lock()?.is_none()); // held by alice
/// drop(guard);
/// assert!(bob.try_lock()?.is_some());
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct Lock<C: Coordinator + ?Sized> {
    client: Arc<C>,
    dir: String,
    label: Vec<u8>,
    held: Mutex<HashMap<ThreadId, Held>>,
}

impl<C: Coordinator + ?Sized> Lock<C> {
    /// A lock at `path` (created on first use) for the session `client`.
    ///
    /// Fails with `InvalidPath` for a bad path.
    pub fn new(client: Arc<C>, path: &str) -> Result<Lock<C>> {
        Ok(Lock {
            client,
            dir: util::base_path(path)?,
            label: Vec::new(),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Stores `label` in this contender's node, so [`Lock::holder`] can say
    /// who holds the lock.
    pub fn with_label(mut self, label: impl Into<Vec<u8>>) -> Lock<C> {
        self.label = label.into();
        self
    }

    /// Blocks until this thread holds the lock.
    ///
    /// Fails with `SessionExpired` if the session ends while waiting.
    pub fn lock(&self) -> Result<LockGuard<'_, C>> {
        match self.acquire(Deadline::never())? {
            Some(guard) => Ok(guard),
            None => Err(crate::Error::new(crate::ErrorKind::SystemError)
                .detail("lock wait without deadline returned early")),
        }
    }

    /// Takes the lock if it is free (or already held by this thread).
    pub fn try_lock(&self) -> Result<Option<LockGuard<'_, C>>> {
        self.acquire(Deadline::after(Duration::ZERO))
    }

    /// Waits up to `timeout` for the lock; `None` if it did not come.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_, C>>> {
        self.acquire(Deadline::after(timeout))
    }

    /// True when the calling thread holds this lock.
    pub fn is_held_by_current_thread(&self) -> bool {
        self.held.lock().contains_key(&std::thread::current().id())
    }

    /// The label of the current holder, `None` when the lock is free.
    pub fn holder(&self) -> Result<Option<Vec<u8>>> {
        first_label(&*self.client, &self.dir, &[LOCK_PREFIX])
    }

    /// Labels of every contender, holder first.
    pub fn contenders(&self) -> Result<Vec<Vec<u8>>> {
        labels(&*self.client, &self.dir, &[LOCK_PREFIX])
    }

    fn acquire(&self, deadline: Deadline) -> Result<Option<LockGuard<'_, C>>> {
        let thread = std::thread::current().id();
        if let Some(held) = self.held.lock().get_mut(&thread) {
            held.count += 1;
            return Ok(Some(LockGuard {
                lock: self,
                thread,
                released: false,
            }));
        }
        let contend = Contend {
            client: &*self.client,
            dir: &self.dir,
            prefix: LOCK_PREFIX,
            family: &[LOCK_PREFIX],
            data: &self.label,
            dir_kind: util::Dir::Container,
        };
        let Some(acquired) = contend.run(exclusive_turn, deadline, None)? else {
            return Ok(None);
        };
        self.held.lock().insert(
            thread,
            Held {
                node: acquired.path,
                token: acquired.stat.czxid,
                count: 1,
            },
        );
        Ok(Some(LockGuard {
            lock: self,
            thread,
            released: false,
        }))
    }

    fn release(&self, thread: ThreadId) -> Result<()> {
        let node = {
            let mut held = self.held.lock();
            let Some(h) = held.get_mut(&thread) else {
                return Ok(());
            };
            h.count -= 1;
            if h.count > 0 {
                return Ok(());
            }
            held.remove(&thread).map(|h| h.node)
        };
        match node {
            Some(node) => util::delete_if_present(&*self.client, &node),
            None => Ok(()),
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for Lock<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("path", &self.dir).finish()
    }
}

/// Proof that a thread holds a [`Lock`]; dropping it releases one level
/// of re-entrance (and the lock at the last).
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a, C: Coordinator + ?Sized> {
    lock: &'a Lock<C>,
    thread: ThreadId,
    released: bool,
}

impl<C: Coordinator + ?Sized> LockGuard<'_, C> {
    /// Releases now and reports a failure to delete the lock node (a dead
    /// session's node is gone already, which is fine).
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.lock.release(self.thread)
    }

    /// A number that grows with every acquisition of this lock (the zxid
    /// that created the holder's node). Pass it to the resource you guard
    /// and have it refuse smaller ones: a holder whose session expired
    /// while it was paused cannot then overwrite its successor's work.
    pub fn fencing_token(&self) -> i64 {
        self.lock
            .held
            .lock()
            .get(&self.thread)
            .map_or(0, |h| h.token)
    }
}

impl<C: Coordinator + ?Sized> Drop for LockGuard<'_, C> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.lock.release(self.thread);
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for LockGuard<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", &self.lock.dir)
            .finish()
    }
}

/// Labels (node data) of the contenders in queue order.
pub(crate) fn labels<C: Coordinator + ?Sized>(
    client: &C,
    dir: &str,
    family: &[&str],
) -> Result<Vec<Vec<u8>>> {
    Ok(entries(client, dir, family)?
        .into_iter()
        .map(|(_, data)| data)
        .collect())
}

/// Names and data of the contenders in queue order (a node that goes
/// while we read is left out).
pub(crate) fn entries<C: Coordinator + ?Sized>(
    client: &C,
    dir: &str,
    family: &[&str],
) -> Result<Vec<(String, Vec<u8>)>> {
    let children = match client.get_children(dir) {
        Ok(c) => c,
        Err(e) if e.kind() == crate::ErrorKind::NoNode => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in util::sorted_by_sequence(children, family) {
        match client.get_data(&path::join(dir, &name)) {
            Ok((data, _)) => out.push((name, data)),
            Err(e) if e.kind() == crate::ErrorKind::NoNode => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn first_label<C: Coordinator + ?Sized>(
    client: &C,
    dir: &str,
    family: &[&str],
) -> Result<Option<Vec<u8>>> {
    Ok(labels(client, dir, family)?.into_iter().next())
}
