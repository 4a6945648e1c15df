//! Barriers: a single barrier someone lifts, and a double barrier that
//! starts a computation when N participants have arrived and ends it when
//! all have left (Curator's `DistributedBarrier` and
//! `DistributedDoubleBarrier`).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::util::{self, Deadline, Dir, Waited};
use crate::event::{Watcher, WatcherType};
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Op, Result};

/// A barrier: while its node exists, [`Barrier::wait`] blocks.
///
/// [`Barrier::raise`] makes a persistent barrier (it stays until someone
/// lowers it); [`Barrier::raise_while_alive`] makes an ephemeral one that
/// also falls when the raiser's session ends, so a crashed coordinator
/// cannot hold everyone forever.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::Barrier;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let gate = Barrier::new(Arc::new(keeper.session()?), "/gates/deploy")?;
/// gate.raise()?;
/// assert!(!gate.wait_timeout(Duration::from_millis(10))?); // still up
/// gate.lower()?;
/// assert!(gate.wait_timeout(Duration::from_millis(10))?);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct Barrier<C: Coordinator + ?Sized> {
    client: Arc<C>,
    path: String,
}

impl<C: Coordinator + ?Sized> Barrier<C> {
    /// A barrier at `path`.
    pub fn new(client: Arc<C>, path: &str) -> Result<Barrier<C>> {
        Ok(Barrier {
            client,
            path: util::base_path(path)?,
        })
    }

    /// Raises the barrier until lowered; false if it was up already.
    pub fn raise(&self) -> Result<bool> {
        self.raise_as(CreateMode::Persistent)
    }

    /// Raises the barrier until lowered or until this session ends.
    pub fn raise_while_alive(&self) -> Result<bool> {
        self.raise_as(CreateMode::Ephemeral)
    }

    fn raise_as(&self, mode: CreateMode) -> Result<bool> {
        let parent = path::parent(&self.path);
        if parent != "/" {
            util::ensure_container(&*self.client, parent)?;
        }
        match self.client.create(&self.path, b"", mode) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NodeExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lowers the barrier; false if it was not up.
    pub fn lower(&self) -> Result<bool> {
        match self.client.delete(&self.path, crate::ANY_VERSION) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// True while the barrier is up.
    pub fn is_raised(&self) -> Result<bool> {
        Ok(self.client.exists(&self.path)?.is_some())
    }

    /// Blocks until the barrier is down.
    pub fn wait(&self) -> Result<()> {
        self.wait_by(Deadline::never()).map(|_| ())
    }

    /// Waits up to `timeout` for the barrier to be down; true if it is.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_by(Deadline::after(timeout))
    }

    fn wait_by(&self, deadline: Deadline) -> Result<bool> {
        loop {
            let (watcher, events) = Watcher::channel();
            if self
                .client
                .exists_with(&self.path, Some(&watcher))?
                .is_none()
            {
                util::forget_watch(&*self.client, &self.path, WatcherType::Data, &watcher);
                return Ok(true);
            }
            if let Waited::TimedOut = util::wait_for(&events, None, deadline) {
                util::forget_watch(&*self.client, &self.path, WatcherType::Data, &watcher);
                return Ok(false);
            }
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for Barrier<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier").field("path", &self.path).finish()
    }
}

const MEMBER_PREFIX: &str = "n-";
const READY: &str = "ready";

/// A double barrier: [`DoubleBarrier::enter`] returns once `size`
/// participants have entered; [`DoubleBarrier::leave`] returns once every
/// participant has left (ZooKeeper's double-barrier recipe).
///
/// Each participant is an ephemeral sequential node; the one that
/// completes the count creates a `ready` node everyone is watching. On
/// leaving, the lowest participant waits for the highest and the others
/// delete themselves and wait for the lowest, which leaves last and removes
/// `ready` in the same multi, so the barrier can be used again. A
/// participant whose session ends inside the barrier simply counts as
/// having left.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::DoubleBarrier;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let solo = DoubleBarrier::new(Arc::new(keeper.session()?), "/rounds/r1", 1, "me")?;
/// solo.enter()?; // one of one has arrived
/// solo.leave()?;
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct DoubleBarrier<C: Coordinator + ?Sized> {
    client: Arc<C>,
    dir: String,
    ready: String,
    size: usize,
    id: String,
    node: Mutex<Option<String>>,
}

impl<C: Coordinator + ?Sized> DoubleBarrier<C> {
    /// A double barrier at `path` for `size` participants; `id` is stored
    /// in this participant's node.
    pub fn new(client: Arc<C>, path: &str, size: usize, id: &str) -> Result<DoubleBarrier<C>> {
        let dir = util::base_path(path)?;
        if size == 0 {
            return Err(Error::with_path(ErrorKind::BadArguments, &dir)
                .detail("a double barrier needs at least one participant"));
        }
        Ok(DoubleBarrier {
            ready: path::join(&dir, READY),
            client,
            dir,
            size,
            id: id.to_string(),
            node: Mutex::new(None),
        })
    }

    /// Enters and blocks until `size` participants have entered.
    pub fn enter(&self) -> Result<()> {
        self.enter_by(Deadline::never()).map(|_| ())
    }

    /// Enters and waits up to `timeout` for the others; on timeout this
    /// participant withdraws and `false` is returned.
    pub fn enter_timeout(&self, timeout: Duration) -> Result<bool> {
        self.enter_by(Deadline::after(timeout))
    }

    /// Leaves and blocks until every participant has left.
    pub fn leave(&self) -> Result<()> {
        self.leave_by(Deadline::never()).map(|_| ())
    }

    /// Leaves and waits up to `timeout` for the others; `false` on timeout
    /// (call again to keep waiting).
    pub fn leave_timeout(&self, timeout: Duration) -> Result<bool> {
        self.leave_by(Deadline::after(timeout))
    }

    /// Ids of the participants inside, in arrival order.
    pub fn participants(&self) -> Result<Vec<String>> {
        Ok(
            super::lock::entries(&*self.client, &self.dir, &[MEMBER_PREFIX])?
                .into_iter()
                .map(|(_, d)| String::from_utf8_lossy(&d).into_owned())
                .collect(),
        )
    }

    fn members(&self) -> Result<Vec<String>> {
        match self.client.get_children(&self.dir) {
            Ok(c) => Ok(util::sorted_by_sequence(c, &[MEMBER_PREFIX])),
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn enter_by(&self, deadline: Deadline) -> Result<bool> {
        if self.node.lock().is_some() {
            return Err(
                Error::with_path(ErrorKind::BadArguments, &self.dir).detail("already entered")
            );
        }
        let (watcher, events) = Watcher::channel();
        let ready_now = self
            .client
            .exists_with(&self.ready, Some(&watcher))?
            .is_some();
        let (mine, _) = util::create_protected(
            &*self.client,
            &self.dir,
            MEMBER_PREFIX,
            self.id.as_bytes(),
            CreateMode::EphemeralSequential,
            Dir::Container,
        )?;
        *self.node.lock() = Some(mine.clone());
        let withdraw = |result: Result<bool>| {
            util::forget_watch(&*self.client, &self.ready, WatcherType::Data, &watcher);
            if !matches!(result, Ok(true)) {
                self.node.lock().take();
                let _ = util::delete_if_present(&*self.client, &mine);
            }
            result
        };
        if ready_now {
            return withdraw(Ok(true));
        }
        loop {
            if self.members()?.len() >= self.size {
                return match self.client.create(&self.ready, b"", CreateMode::Persistent) {
                    Err(e) if e.kind() != ErrorKind::NodeExists => withdraw(Err(e)),
                    _ => withdraw(Ok(true)),
                };
            }
            match util::wait_for(&events, None, deadline) {
                Waited::TimedOut | Waited::Cancelled => return withdraw(Ok(false)),
                Waited::Event => {}
            }
            match self.client.exists_with(&self.ready, Some(&watcher)) {
                Ok(Some(_)) => return withdraw(Ok(true)),
                Ok(None) => {}
                Err(e) => return withdraw(Err(e)),
            }
        }
    }

    fn leave_by(&self, deadline: Deadline) -> Result<bool> {
        let mine = self.node.lock().clone();
        let my_name = mine.as_deref().map(path::name).unwrap_or("");
        loop {
            let members = self.members()?;
            let present = members.iter().any(|m| m == my_name);
            let watched = match members.as_slice() {
                [] => break,
                [only] if only == my_name => {
                    self.leave_last(only)?;
                    break;
                }
                [lowest, .., highest] if present && lowest == my_name => highest.clone(),
                [lowest, ..] => {
                    if present {
                        util::delete_if_present(&*self.client, &path::join(&self.dir, my_name))?;
                    }
                    lowest.clone()
                }
            };
            let watched = path::join(&self.dir, &watched);
            let (watcher, events) = Watcher::channel();
            if self.client.exists_with(&watched, Some(&watcher))?.is_none() {
                util::forget_watch(&*self.client, &watched, WatcherType::Data, &watcher);
                continue;
            }
            if let Waited::TimedOut = util::wait_for(&events, None, deadline) {
                util::forget_watch(&*self.client, &watched, WatcherType::Data, &watcher);
                return Ok(false);
            }
        }
        self.node.lock().take();
        Ok(true)
    }

    /// The last one out removes itself and `ready` together, so a new
    /// round cannot see a stale `ready`.
    fn leave_last(&self, name: &str) -> Result<()> {
        let mine = path::join(&self.dir, name);
        let ops = [
            Op::delete(mine.clone(), crate::ANY_VERSION),
            Op::delete(self.ready.clone(), crate::ANY_VERSION),
        ];
        match self.client.multi(&ops) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NoNode => {
                util::delete_if_present(&*self.client, &mine)
            }
            Err(e) => Err(e),
        }
    }
}

impl<C: Coordinator + ?Sized> Drop for DoubleBarrier<C> {
    fn drop(&mut self) {
        if let Some(node) = self.node.lock().take() {
            let _ = util::delete_if_present(&*self.client, &node);
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for DoubleBarrier<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoubleBarrier")
            .field("path", &self.dir)
            .field("size", &self.size)
            .field("id", &self.id)
            .finish()
    }
}
