//! A counting semaphore with N leases (Curator's `InterProcessSemaphoreV2`,
//! done here as a fair queue).

use std::sync::Arc;
use std::time::Duration;

use super::lock::{labels, Contend, Turn};
use super::util::{self, Deadline};
use crate::{Coordinator, Error, ErrorKind, Result};

const LEASE_PREFIX: &str = "lease-";

/// The first `leases` nodes hold a lease. The first waiter watches every
/// holder (any release admits it); later waiters watch the node just
/// before them, which changes when it is admitted (it marks its node) or
/// goes. A release therefore wakes at most two contenders: the one it
/// admits and the one that becomes first in line.
fn lease_turn(leases: usize) -> impl Fn(&[String], usize) -> Turn {
    move |queue, idx| {
        if idx < leases {
            Turn::Go
        } else if idx == leases {
            Turn::WaitFor(queue[..leases].to_vec())
        } else {
            Turn::WaitFor(vec![queue[idx - 1].clone()])
        }
    }
}

/// A distributed counting semaphore: at most `leases` holders at once,
/// admitted in arrival order.
///
/// Every participant must agree on the number of leases: the first one
/// records it in the semaphore's node, and a participant asking for a
/// different number gets `BadArguments`. A [`Lease`] returns itself when
/// dropped, and a holder whose session ends loses its lease to the next in
/// line.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::Semaphore;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let pool = Semaphore::new(Arc::new(keeper.session()?), "/pools/db", 2)?;
/// let first = pool.acquire()?;
/// let second = pool.acquire()?;
/// assert!(pool.try_acquire()?.is_none()); // both leases are out
/// drop(first);
/// assert!(pool.try_acquire()?.is_some());
/// # drop(second);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct Semaphore<C: Coordinator + ?Sized> {
    client: Arc<C>,
    dir: String,
    leases: usize,
    label: Vec<u8>,
}

impl<C: Coordinator + ?Sized> Semaphore<C> {
    /// A semaphore at `path` with `leases` leases (at least one).
    ///
    /// Fails with `BadArguments` if `leases` is zero or differs from the
    /// number recorded by the participants before.
    pub fn new(client: Arc<C>, path: &str, leases: usize) -> Result<Semaphore<C>> {
        let dir = util::base_path(path)?;
        if leases == 0 {
            return Err(Error::with_path(ErrorKind::BadArguments, &dir)
                .detail("a semaphore needs at least one lease"));
        }
        record_leases(&*client, &dir, leases)?;
        Ok(Semaphore {
            client,
            dir,
            leases,
            label: Vec::new(),
        })
    }

    /// Stores `label` in this participant's node (see [`Semaphore::holders`]).
    pub fn with_label(mut self, label: impl Into<Vec<u8>>) -> Semaphore<C> {
        self.label = label.into();
        self
    }

    /// The number of leases.
    pub fn leases(&self) -> usize {
        self.leases
    }

    /// Blocks until a lease is ours.
    pub fn acquire(&self) -> Result<Lease<'_, C>> {
        self.acquire_by(Deadline::never())?
            .ok_or_else(|| Error::new(ErrorKind::SystemError))
    }

    /// Takes a lease if one is free and nobody waits before us.
    pub fn try_acquire(&self) -> Result<Option<Lease<'_, C>>> {
        self.acquire_by(Deadline::after(Duration::ZERO))
    }

    /// Waits up to `timeout` for a lease.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<Lease<'_, C>>> {
        self.acquire_by(Deadline::after(timeout))
    }

    /// Labels of the current holders, then of the waiters, in order.
    pub fn holders(&self) -> Result<Vec<Vec<u8>>> {
        labels(&*self.client, &self.dir, &[LEASE_PREFIX])
    }

    fn acquire_by(&self, deadline: Deadline) -> Result<Option<Lease<'_, C>>> {
        let contend = Contend {
            client: &*self.client,
            dir: &self.dir,
            prefix: LEASE_PREFIX,
            family: &[LEASE_PREFIX],
            data: &self.label,
            dir_kind: util::Dir::Persistent,
        };
        let Some(acquired) = contend.run(lease_turn(self.leases), deadline, None)? else {
            return Ok(None);
        };
        // Mark the node admitted: the waiter behind us watches it.
        if let Err(e) = self
            .client
            .set_data(&acquired.path, &self.label, crate::ANY_VERSION)
        {
            let _ = util::delete_if_present(&*self.client, &acquired.path);
            return Err(e);
        }
        Ok(Some(Lease {
            semaphore: self,
            node: acquired.path,
            released: false,
        }))
    }
}

fn record_leases<C: Coordinator + ?Sized>(client: &C, dir: &str, leases: usize) -> Result<()> {
    let wanted = leases.to_string();
    for _ in 0..util::CAS_ATTEMPTS_MAX {
        util::ensure_node(client, dir)?;
        let (data, stat) = match client.get_data(dir) {
            Ok(found) => found,
            Err(e) if e.kind() == ErrorKind::NoNode => continue,
            Err(e) => return Err(e),
        };
        if data.is_empty() {
            match client.set_data(dir, wanted.as_bytes(), stat.version) {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.kind(), ErrorKind::BadVersion | ErrorKind::NoNode) => continue,
                Err(e) => return Err(e),
            }
        }
        if data == wanted.as_bytes() {
            return Ok(());
        }
        return Err(
            Error::with_path(ErrorKind::BadArguments, dir).detail(format!(
                "the semaphore has {} leases, not {leases}",
                String::from_utf8_lossy(&data)
            )),
        );
    }
    Err(Error::with_path(ErrorKind::BadVersion, dir))
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for Semaphore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("path", &self.dir)
            .field("leases", &self.leases)
            .finish()
    }
}

/// One lease of a [`Semaphore`]; dropping it returns the lease.
#[must_use = "the lease is returned when dropped"]
pub struct Lease<'a, C: Coordinator + ?Sized> {
    semaphore: &'a Semaphore<C>,
    node: String,
    released: bool,
}

impl<C: Coordinator + ?Sized> Lease<'_, C> {
    /// Returns the lease now, reporting a failure to delete its node.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        util::delete_if_present(&*self.semaphore.client, &self.node)
    }

    /// The lease's node.
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl<C: Coordinator + ?Sized> Drop for Lease<'_, C> {
    fn drop(&mut self) {
        if !self.released {
            let _ = util::delete_if_present(&*self.semaphore.client, &self.node);
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for Lease<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("node", &self.node).finish()
    }
}
