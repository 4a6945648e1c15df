//! A naming service: stable names bound to addresses that change, and
//! unique name allocation (the "name service" use of ZooKeeper).

use std::sync::Arc;
use std::time::Duration;

use super::cache::NodeCache;
use super::util;
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Result};

/// Where [`NameService::allocate`] draws sequence numbers.
const UNIQUE_DIR: &str = ".unique";

/// Binds names to addresses under a base path: `<base>/<name>` holds the
/// address. Clients resolve a name once, or [`NameService::follow`] it to
/// see each rebinding as it happens.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::NameService;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let names = NameService::new(Arc::new(keeper.session()?), "/names")?;
/// names.bind("db-primary", "10.0.0.5:5432")?;
/// names.bind("db-primary", "10.0.0.6:5432")?; // failover: same name, new address
/// assert_eq!(names.resolve("db-primary")?.as_deref(), Some("10.0.0.6:5432"));
/// let unique = names.allocate("worker-")?;
/// assert!(unique.starts_with("worker-"));
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct NameService<C: Coordinator + ?Sized + 'static> {
    client: Arc<C>,
    base: String,
}

impl<C: Coordinator + ?Sized + 'static> NameService<C> {
    /// A naming service under `base`.
    pub fn new(client: Arc<C>, base: &str) -> Result<NameService<C>> {
        Ok(NameService {
            client,
            base: util::base_path(base)?,
        })
    }

    fn node(&self, name: &str) -> Result<String> {
        let node = path::join(&self.base, name);
        path::validate(&node)?;
        if path::parent(&node) != self.base {
            return Err(Error::with_path(ErrorKind::BadArguments, &node)
                .detail("a name is one path segment"));
        }
        Ok(node)
    }

    /// Binds `name` to `address` (creating or replacing the binding).
    pub fn bind(&self, name: &str, address: &str) -> Result<()> {
        let node = self.node(name)?;
        for _ in 0..util::CAS_ATTEMPTS_MAX {
            match self
                .client
                .set_data(&node, address.as_bytes(), crate::ANY_VERSION)
            {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() != ErrorKind::NoNode => return Err(e),
                Err(_) => {}
            }
            self.client.create_all(&self.base)?;
            match self
                .client
                .create(&node, address.as_bytes(), CreateMode::Persistent)
            {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NodeExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::with_path(ErrorKind::BadVersion, &node))
    }

    /// Removes a binding; false if there was none.
    pub fn unbind(&self, name: &str) -> Result<bool> {
        match self.client.delete(&self.node(name)?, crate::ANY_VERSION) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The address `name` is bound to now.
    pub fn resolve(&self, name: &str) -> Result<Option<String>> {
        match self.client.get_data(&self.node(name)?) {
            Ok((data, _)) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every bound name.
    pub fn names(&self) -> Result<Vec<String>> {
        match self.client.get_children(&self.base) {
            Ok(n) => Ok(n.into_iter().filter(|n| n != UNIQUE_DIR).collect()),
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// A name no one else will ever be given: `prefix` followed by a
    /// sequence number from the keeper (a persistent sequential node under
    /// `<base>/.unique`, removed again right away).
    pub fn allocate(&self, prefix: &str) -> Result<String> {
        let dir = path::join(&self.base, UNIQUE_DIR);
        let (created, _) = util::create_protected(
            &*self.client,
            &dir,
            prefix,
            b"",
            CreateMode::PersistentSequential,
            // Persistent, not a container: the parent's sequence counter
            // must never restart, and a reaped container's would.
            util::Dir::Persistent,
        )?;
        util::delete_if_present(&*self.client, &created)?;
        let sequence = util::sequence_of(&created)
            .ok_or_else(|| Error::with_path(ErrorKind::SystemError, &created))?;
        Ok(format!("{prefix}{sequence:010}"))
    }

    /// Follows `name`: a live view of its address.
    pub fn follow(&self, name: &str) -> Result<BoundName<C>> {
        Ok(BoundName {
            cache: NodeCache::new(self.client.clone(), &self.node(name)?)?,
        })
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for NameService<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameService")
            .field("base", &self.base)
            .finish()
    }
}

/// A followed name: its current address, updated as it is rebound.
pub struct BoundName<C: Coordinator + ?Sized + 'static> {
    cache: NodeCache<C>,
}

impl<C: Coordinator + ?Sized + 'static> BoundName<C> {
    /// The address now, `None` while unbound.
    pub fn address(&self) -> Option<String> {
        self.cache
            .current()
            .map(|n| String::from_utf8_lossy(&n.data).into_owned())
    }

    /// Calls `listener` with the new address (or `None`) at each change.
    pub fn on_change(&self, listener: impl Fn(Option<String>) + Send + Sync + 'static) {
        self.cache.on_change(move |event| {
            use super::cache::CacheEvent;
            match event {
                CacheEvent::Added(n) | CacheEvent::Updated(n) => {
                    listener(Some(String::from_utf8_lossy(&n.data).into_owned()))
                }
                CacheEvent::Removed(_) | CacheEvent::SessionLost => listener(None),
            }
        });
    }

    /// Waits up to `timeout` until the address satisfies `done`.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(Option<&str>) -> bool) -> bool {
        self.cache.wait_for(timeout, |n| {
            let address = n.map(|n| String::from_utf8_lossy(&n.data).into_owned());
            done(address.as_deref())
        })
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for BoundName<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundName")
            .field("address", &self.address())
            .finish()
    }
}
