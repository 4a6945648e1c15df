//! Distributed FIFO and priority queues with exactly-once takes (the
//! ZooKeeper queue recipe, hardened with claims).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::util::{self, Deadline, Dir, Waited};
use crate::event::{Watcher, WatcherType};
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Op, Result};

const ITEM_PREFIX: &str = "item-";
const PRIORITY_PREFIX: &str = "p";
/// Priorities are written with this many digits so names sort by them.
const PRIORITY_DIGITS: usize = 5;

/// The order of an item: (priority, sequence). FIFO items have priority 0.
fn order_key(name: &str) -> Option<(u32, u64)> {
    let sequence = util::sequence_of(name)?;
    if name.starts_with(ITEM_PREFIX) {
        return Some((0, sequence));
    }
    let digits = name.strip_prefix(PRIORITY_PREFIX)?.get(..PRIORITY_DIGITS)?;
    Some((digits.parse().ok()?, sequence))
}

/// The shared machinery of [`Queue`] and [`PriorityQueue`].
///
/// Layout: `<path>/items/<item>` holds the payloads (persistent
/// sequential), `<path>/claims/<item>` marks an item a consumer is taking
/// (ephemeral, owned by the consumer's session). Both directories are
/// containers.
struct Core<C: Coordinator + ?Sized> {
    client: Arc<C>,
    items: String,
    claims: String,
}

impl<C: Coordinator + ?Sized> Core<C> {
    fn new(client: Arc<C>, path: &str) -> Result<Core<C>> {
        let base = util::base_path(path)?;
        Ok(Core {
            client,
            items: path::join(&base, "items"),
            claims: path::join(&base, "claims"),
        })
    }

    fn put(&self, prefix: &str, data: &[u8]) -> Result<String> {
        let (created, _) = util::create_protected(
            &*self.client,
            &self.items,
            prefix,
            data,
            CreateMode::PersistentSequential,
            Dir::Container,
        )?;
        Ok(path::name(&created).to_string())
    }

    /// Item names in delivery order; `watcher` (if any) fires on a change.
    fn list(&self, dir: &str, watcher: Option<&Watcher>) -> Result<Vec<String>> {
        match self.client.get_children_with(dir, watcher) {
            Ok((names, _)) => Ok(names),
            Err(e) if e.kind() == ErrorKind::NoNode => {
                util::ensure_container(&*self.client, dir)?;
                Ok(self.client.get_children_with(dir, watcher)?.0)
            }
            Err(e) => Err(e),
        }
    }

    fn ordered_items(&self, watcher: Option<&Watcher>) -> Result<Vec<String>> {
        let mut keyed: Vec<((u32, u64), String)> = self
            .list(&self.items, watcher)?
            .into_iter()
            .filter_map(|n| order_key(&n).map(|k| (k, n)))
            .collect();
        keyed.sort();
        Ok(keyed.into_iter().map(|(_, n)| n).collect())
    }

    fn len(&self) -> Result<usize> {
        Ok(self.ordered_items(None)?.len())
    }

    /// Claims the first unclaimed item, waiting until the deadline.
    fn claim(&self, deadline: Deadline) -> Result<Option<Claim<'_, C>>> {
        loop {
            let (watcher, events) = Watcher::channel();
            let items = self.ordered_items(Some(&watcher))?;
            let mut watched = vec![(self.items.clone(), WatcherType::Children)];
            if !items.is_empty() {
                // Everything listed may be claimed: a claim that vanishes
                // (its consumer died) must wake us too.
                let claimed: HashSet<String> = self
                    .list(&self.claims, Some(&watcher))?
                    .into_iter()
                    .collect();
                watched.push((self.claims.clone(), WatcherType::Children));
                for name in items.iter().filter(|n| !claimed.contains(*n)) {
                    if let Some(claim) = self.try_claim(name)? {
                        for (p, kind) in &watched {
                            util::forget_watch(&*self.client, p, *kind, &watcher);
                        }
                        return Ok(Some(claim));
                    }
                }
            }
            let waited = if deadline.passed() {
                Waited::TimedOut
            } else {
                util::wait_for(&events, None, deadline)
            };
            if let Waited::TimedOut | Waited::Cancelled = waited {
                for (p, kind) in &watched {
                    util::forget_watch(&*self.client, p, *kind, &watcher);
                }
                return Ok(None);
            }
        }
    }

    /// Claims `name` if it still exists and nobody has: one multi checks
    /// the item and creates our ephemeral claim.
    fn try_claim(&self, name: &str) -> Result<Option<Claim<'_, C>>> {
        let item = path::join(&self.items, name);
        let claim = path::join(&self.claims, name);
        let ops = [
            Op::check(item.clone(), crate::ANY_VERSION),
            Op::create(claim.clone(), b"", CreateMode::Ephemeral),
        ];
        match self.client.multi(&ops) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NodeExists | ErrorKind::NoNode) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
        match self.client.get_data(&item) {
            Ok((data, _)) => Ok(Some(Claim {
                core: self,
                item,
                claim,
                data,
                done: false,
            })),
            Err(e) => {
                let _ = util::delete_if_present(&*self.client, &claim);
                if e.kind() == ErrorKind::NoNode {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn take(&self, deadline: Deadline) -> Result<Option<Vec<u8>>> {
        match self.claim(deadline)? {
            Some(claim) => claim.complete().map(Some),
            None => Ok(None),
        }
    }
}

/// An item a consumer is working on. Nobody else can take it while the
/// claim lives. [`Claim::complete`] removes it from the queue for good;
/// dropping the claim (or the consumer's session ending) puts it back.
#[must_use = "an unfinished claim returns the item to the queue when dropped"]
pub struct Claim<'a, C: Coordinator + ?Sized> {
    core: &'a Core<C>,
    item: String,
    claim: String,
    data: Vec<u8>,
    done: bool,
}

impl<C: Coordinator + ?Sized> Claim<'_, C> {
    /// The item's payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The item's node name.
    pub fn name(&self) -> &str {
        path::name(&self.item)
    }

    /// Removes the item and the claim in one multi and returns the
    /// payload. Fails with `SessionExpired` if our session died first, in
    /// which case the item is back in the queue for someone else.
    pub fn complete(mut self) -> Result<Vec<u8>> {
        self.done = true;
        let ops = [
            Op::delete(self.claim.clone(), crate::ANY_VERSION),
            Op::delete(self.item.clone(), crate::ANY_VERSION),
        ];
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.core.client.multi(&ops) {
                Ok(_) => return Ok(std::mem::take(&mut self.data)),
                // A lost reply (remote backends only): our ephemeral claim
                // tells whether the multi happened.
                Err(e) if e.kind() == ErrorKind::ConnectionLoss && attempts < 3 => {
                    if self.core.client.exists(&self.claim)?.is_none() {
                        return Ok(std::mem::take(&mut self.data));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Gives the item back to the queue.
    pub fn abandon(mut self) -> Result<()> {
        self.done = true;
        util::delete_if_present(&*self.core.client, &self.claim)
    }
}

impl<C: Coordinator + ?Sized> Drop for Claim<'_, C> {
    fn drop(&mut self) {
        if !self.done {
            let _ = util::delete_if_present(&*self.core.client, &self.claim);
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for Claim<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("item", &self.item).finish()
    }
}

/// A distributed FIFO queue.
///
/// Producers add persistent sequential nodes; consumers take the lowest.
/// A take first *claims* the item (a multi that checks the item exists
/// and creates an ephemeral claim node, which fails if another consumer
/// has claimed it), then removes item and claim in one multi. So:
///
/// - no item is delivered twice: only the claim holder can complete it,
///   and completing deletes it atomically with the claim;
/// - none is lost: until that multi commits the item stays in the queue,
///   and if the consumer dies its claim vanishes with its session and the
///   item is available again.
///
/// [`Queue::claim_timeout`] exposes the two steps for at-least-once processing:
/// process, then [`Claim::complete`]; a crash before completing means the
/// item is redelivered.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::Queue;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let jobs = Queue::new(Arc::new(keeper.session()?), "/queues/jobs")?;
/// jobs.put(b"first")?;
/// jobs.put(b"second")?;
/// assert_eq!(jobs.take()?, b"first");
/// let claim = jobs.claim_timeout(Duration::from_secs(1))?.expect("an item");
/// assert_eq!(claim.data(), b"second");
/// claim.complete()?;
/// assert_eq!(jobs.try_take()?, None);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct Queue<C: Coordinator + ?Sized> {
    core: Core<C>,
}

impl<C: Coordinator + ?Sized> Queue<C> {
    /// A queue at `path` (created on first use).
    pub fn new(client: Arc<C>, path: &str) -> Result<Queue<C>> {
        Ok(Queue {
            core: Core::new(client, path)?,
        })
    }

    /// Appends an item; returns its node name.
    pub fn put(&self, data: &[u8]) -> Result<String> {
        self.core.put(ITEM_PREFIX, data)
    }

    /// Blocks until an item is available and takes it.
    pub fn take(&self) -> Result<Vec<u8>> {
        self.core
            .take(Deadline::never())?
            .ok_or_else(|| Error::new(ErrorKind::SystemError))
    }

    /// Takes an item if one is available now.
    pub fn try_take(&self) -> Result<Option<Vec<u8>>> {
        self.core.take(Deadline::after(Duration::ZERO))
    }

    /// Waits up to `timeout` for an item and takes it.
    pub fn take_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.core.take(Deadline::after(timeout))
    }

    /// Waits up to `timeout` for an item and claims it (see [`Claim`]).
    pub fn claim_timeout(&self, timeout: Duration) -> Result<Option<Claim<'_, C>>> {
        self.core.claim(Deadline::after(timeout))
    }

    /// Items waiting (claimed ones included).
    pub fn len(&self) -> Result<usize> {
        self.core.len()
    }

    /// True when no item waits.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for Queue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("items", &self.core.items)
            .finish()
    }
}

/// A distributed priority queue: lower priority numbers are taken first,
/// equal priorities in arrival order. Takes work as in [`Queue`].
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::PriorityQueue;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let alerts = PriorityQueue::new(Arc::new(keeper.session()?), "/queues/alerts")?;
/// alerts.put(b"disk 80%", 5)?;
/// alerts.put(b"disk full", 0)?;
/// assert_eq!(alerts.take()?, b"disk full");
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct PriorityQueue<C: Coordinator + ?Sized> {
    core: Core<C>,
}

impl<C: Coordinator + ?Sized> PriorityQueue<C> {
    /// Largest priority number (the lowest priority).
    pub const PRIORITY_MAX: u32 = 99_999;

    /// A priority queue at `path`.
    pub fn new(client: Arc<C>, path: &str) -> Result<PriorityQueue<C>> {
        Ok(PriorityQueue {
            core: Core::new(client, path)?,
        })
    }

    /// Adds an item with `priority` (0 first, at most
    /// [`PriorityQueue::PRIORITY_MAX`]); returns its node name.
    pub fn put(&self, data: &[u8], priority: u32) -> Result<String> {
        if priority > Self::PRIORITY_MAX {
            return Err(Error::new(ErrorKind::BadArguments).detail(format!(
                "priority {priority} is above {}",
                Self::PRIORITY_MAX
            )));
        }
        let prefix = format!(
            "{PRIORITY_PREFIX}{priority:0width$}-",
            width = PRIORITY_DIGITS
        );
        self.core.put(&prefix, data)
    }

    /// Blocks until an item is available and takes the most urgent.
    pub fn take(&self) -> Result<Vec<u8>> {
        self.core
            .take(Deadline::never())?
            .ok_or_else(|| Error::new(ErrorKind::SystemError))
    }

    /// Takes the most urgent item if one is available now.
    pub fn try_take(&self) -> Result<Option<Vec<u8>>> {
        self.core.take(Deadline::after(Duration::ZERO))
    }

    /// Waits up to `timeout` for an item and takes the most urgent.
    pub fn take_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.core.take(Deadline::after(timeout))
    }

    /// Waits up to `timeout` for an item and claims the most urgent.
    pub fn claim_timeout(&self, timeout: Duration) -> Result<Option<Claim<'_, C>>> {
        self.core.claim(Deadline::after(timeout))
    }

    /// Items waiting (claimed ones included).
    pub fn len(&self) -> Result<usize> {
        self.core.len()
    }

    /// True when no item waits.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for PriorityQueue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriorityQueue")
            .field("items", &self.core.items)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::order_key;

    #[test]
    fn order_keys() {
        assert_eq!(order_key("item-abc-0000000007"), Some((0, 7)));
        assert_eq!(order_key("p00003-abc-0000000001"), Some((3, 1)));
        assert_eq!(order_key("junk"), None);
    }
}
