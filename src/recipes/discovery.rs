//! Service registry and discovery (Curator's `ServiceDiscovery` and
//! `ServiceProvider`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use parking_lot::Mutex;

use super::cache::TreeCache;
use super::util;
use crate::node::CreateMode;
use crate::path;
use crate::random::Rng;
use crate::{Coordinator, Error, ErrorKind, Result};

/// One running instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// The service name (`orders`).
    pub name: String,
    /// This instance's id, unique within the service (`orders-1`).
    pub id: String,
    /// Where to reach it.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Anything else (version, zone, …).
    pub payload: Vec<u8>,
}

impl ServiceInstance {
    /// An instance without payload.
    pub fn new(name: &str, id: &str, address: &str, port: u16) -> ServiceInstance {
        ServiceInstance {
            name: name.to_string(),
            id: id.to_string(),
            address: address.to_string(),
            port,
            payload: Vec::new(),
        }
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> ServiceInstance {
        self.payload = payload.into();
        self
    }

    /// `address:port`.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// The node text: one `key=value` line each for address, port and
    /// payload (base64), readable with any ZooKeeper client.
    fn encode(&self) -> Vec<u8> {
        format!(
            "address={}\nport={}\npayload={}\n",
            self.address,
            self.port,
            base64::engine::general_purpose::STANDARD.encode(&self.payload)
        )
        .into_bytes()
    }

    fn decode(name: &str, id: &str, data: &[u8]) -> Result<ServiceInstance> {
        let bad = |what: &str| {
            Error::with_path(ErrorKind::DataInconsistency, format!("{name}/{id}"))
                .detail(format!("not a service instance: {what}"))
        };
        let text = std::str::from_utf8(data).map_err(|_| bad("not UTF-8"))?;
        let mut instance = ServiceInstance::new(name, id, "", 0);
        for line in text.lines() {
            match line.split_once('=') {
                Some(("address", v)) => instance.address = v.to_string(),
                Some(("port", v)) => instance.port = v.parse().map_err(|_| bad("port"))?,
                Some(("payload", v)) => {
                    instance.payload = base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .map_err(|_| bad("payload"))?
                }
                _ => {}
            }
        }
        Ok(instance)
    }
}

/// Registers service instances: each is an ephemeral node
/// `<base>/<service>/<id>`, so an instance whose process dies (session
/// ends) disappears from discovery by itself.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::{ServiceDiscovery, ServiceInstance, ServiceRegistry};
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let registry = ServiceRegistry::new(Arc::new(keeper.session()?), "/services")?;
/// let _orders_1 = registry.register(&ServiceInstance::new("orders", "o1", "10.0.0.7", 8080))?;
/// let discovery = ServiceDiscovery::new(Arc::new(keeper.session()?), "/services")?;
/// assert_eq!(discovery.instances("orders")?[0].endpoint(), "10.0.0.7:8080");
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct ServiceRegistry<C: Coordinator + ?Sized> {
    client: Arc<C>,
    base: String,
}

impl<C: Coordinator + ?Sized> ServiceRegistry<C> {
    /// A registry under `base`.
    pub fn new(client: Arc<C>, base: &str) -> Result<ServiceRegistry<C>> {
        Ok(ServiceRegistry {
            client,
            base: util::base_path(base)?,
        })
    }

    /// Registers `instance` until the returned registration is dropped or
    /// the session ends. `NodeExists` if the id is taken by a live instance.
    pub fn register(&self, instance: &ServiceInstance) -> Result<Registration<C>> {
        let dir = path::join(&self.base, &instance.name);
        let node = path::join(&dir, &instance.id);
        path::validate(&node)?;
        let data = instance.encode();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.client.create(&node, &data, CreateMode::Ephemeral) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::NoNode && attempts < 3 => {
                    util::ensure_dir(&*self.client, &dir, util::Dir::Container)?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Registration {
            client: self.client.clone(),
            node,
            instance: instance.clone(),
            done: false,
        })
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for ServiceRegistry<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRegistry")
            .field("base", &self.base)
            .finish()
    }
}

/// A registered instance; dropping it unregisters.
pub struct Registration<C: Coordinator + ?Sized> {
    client: Arc<C>,
    node: String,
    instance: ServiceInstance,
    done: bool,
}

impl<C: Coordinator + ?Sized> Registration<C> {
    /// The registered instance.
    pub fn instance(&self) -> &ServiceInstance {
        &self.instance
    }

    /// Re-publishes the instance with new details (same name and id).
    pub fn update(&mut self, address: &str, port: u16, payload: &[u8]) -> Result<()> {
        let mut next = self.instance.clone();
        next.address = address.to_string();
        next.port = port;
        next.payload = payload.to_vec();
        self.client
            .set_data(&self.node, &next.encode(), crate::ANY_VERSION)?;
        self.instance = next;
        Ok(())
    }

    /// Unregisters now.
    pub fn unregister(mut self) -> Result<()> {
        self.done = true;
        util::delete_if_present(&*self.client, &self.node)
    }
}

impl<C: Coordinator + ?Sized> Drop for Registration<C> {
    fn drop(&mut self) {
        if !self.done {
            let _ = util::delete_if_present(&*self.client, &self.node);
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for Registration<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("node", &self.node)
            .finish()
    }
}

/// Finds service instances: one-off lookups, or a [`ServiceProvider`]
/// that keeps a live view and picks instances for you.
pub struct ServiceDiscovery<C: Coordinator + ?Sized + 'static> {
    client: Arc<C>,
    base: String,
}

impl<C: Coordinator + ?Sized + 'static> ServiceDiscovery<C> {
    /// Discovery under `base`.
    pub fn new(client: Arc<C>, base: &str) -> Result<ServiceDiscovery<C>> {
        Ok(ServiceDiscovery {
            client,
            base: util::base_path(base)?,
        })
    }

    /// Names of services with a directory (possibly no live instance).
    pub fn names(&self) -> Result<Vec<String>> {
        match self.client.get_children(&self.base) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::NoNode => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The live instances of `name`, by id.
    pub fn instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        let dir = path::join(&self.base, name);
        let mut out = Vec::new();
        for (id, data) in super::group::members_of(&*self.client, &dir)? {
            out.push(ServiceInstance::decode(name, &id, &data)?);
        }
        Ok(out)
    }

    /// A live, watched view of `name` that picks instances by `strategy`.
    pub fn provider(&self, name: &str, strategy: PickStrategy) -> Result<ServiceProvider<C>> {
        Ok(ServiceProvider {
            name: name.to_string(),
            cache: TreeCache::children(self.client.clone(), &path::join(&self.base, name))?,
            strategy,
            next: AtomicUsize::new(0),
            rng: Mutex::new(Rng::from_os()),
        })
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for ServiceDiscovery<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDiscovery")
            .field("base", &self.base)
            .finish()
    }
}

/// How a [`ServiceProvider`] picks an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickStrategy {
    /// Each live instance in turn (by id).
    RoundRobin,
    /// Uniformly at random.
    Random,
}

/// A live view of one service's instances (a children cache) that picks
/// one per call.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::{PickStrategy, ServiceDiscovery, ServiceInstance, ServiceRegistry};
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let registry = ServiceRegistry::new(Arc::new(keeper.session()?), "/services")?;
/// let _a = registry.register(&ServiceInstance::new("api", "a", "10.0.0.1", 80))?;
/// let _b = registry.register(&ServiceInstance::new("api", "b", "10.0.0.2", 80))?;
/// let discovery = ServiceDiscovery::new(Arc::new(keeper.session()?), "/services")?;
/// let api = discovery.provider("api", PickStrategy::RoundRobin)?;
/// let picks: Vec<String> = (0..3).filter_map(|_| api.instance()).map(|i| i.id).collect();
/// assert_eq!(picks, ["a", "b", "a"]);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct ServiceProvider<C: Coordinator + ?Sized + 'static> {
    name: String,
    cache: TreeCache<C>,
    strategy: PickStrategy,
    next: AtomicUsize,
    rng: Mutex<Rng>,
}

impl<C: Coordinator + ?Sized + 'static> ServiceProvider<C> {
    /// Every live instance, by id (undecodable nodes are skipped).
    pub fn all(&self) -> Vec<ServiceInstance> {
        self.cache
            .entries()
            .into_iter()
            .filter_map(|n| ServiceInstance::decode(&self.name, path::name(&n.path), &n.data).ok())
            .collect()
    }

    /// One live instance, `None` when there is none.
    pub fn instance(&self) -> Option<ServiceInstance> {
        let mut all = self.all();
        if all.is_empty() {
            return None;
        }
        let idx = match self.strategy {
            PickStrategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % all.len(),
            PickStrategy::Random => self.rng.lock().index(all.len()),
        };
        Some(all.swap_remove(idx))
    }

    /// Calls `listener` when the set of instances changes (on the cache's
    /// thread) with the instances now live.
    pub fn on_change(&self, listener: impl Fn(&[ServiceInstance]) + Send + Sync + 'static) {
        let name = self.name.clone();
        self.cache.on_change_entries(move |_, nodes| {
            let instances: Vec<ServiceInstance> = nodes
                .iter()
                .filter_map(|n| ServiceInstance::decode(&name, path::name(&n.path), &n.data).ok())
                .collect();
            listener(&instances);
        });
    }

    /// Waits up to `timeout` until `done` holds for the live instances.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[ServiceInstance]) -> bool) -> bool {
        let name = self.name.clone();
        self.cache.wait_for(timeout, |nodes| {
            let instances: Vec<ServiceInstance> = nodes
                .iter()
                .filter_map(|n| ServiceInstance::decode(&name, path::name(&n.path), &n.data).ok())
                .collect();
            done(&instances)
        })
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for ServiceProvider<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .finish()
    }
}
