//! innkeeper is an embeddable coordination engine that behaves like Apache
//! ZooKeeper: a hierarchical namespace of nodes owned by sessions with
//! timeouts, observed through watches and changed atomically by single ops
//! and multi-op transactions, behind a synchronous Rust API.
//!
//! ```
//! use std::time::Duration;
//! use innkeeper::{Coordinator, CreateMode, EventType, Keeper, ManualClock, Watcher};
//!
//! // A keeper whose time moves only when the test says so.
//! let clock = ManualClock::new(1_700_000_000_000);
//! let keeper = Keeper::builder().clock(clock.clone()).build()?;
//!
//! let worker = keeper.session_with_timeout(Duration::from_secs(10))?;
//! worker.create("/workers", b"", CreateMode::Persistent)?;
//! let me = worker.create("/workers/w-", b"10.0.0.7:8080", CreateMode::EphemeralSequential)?;
//! assert_eq!(me, "/workers/w-0000000000");
//!
//! // Another participant watches the worker's node.
//! let monitor = keeper.session()?;
//! let (watcher, events) = Watcher::channel();
//! monitor.exists_with(&me, Some(&watcher))?;
//!
//! // The worker hangs: its heartbeats stop, time passes, its session expires.
//! worker.pause_heartbeats();
//! clock.advance(Duration::from_secs(30));
//! assert!(worker.is_expired());
//! let event = events.try_recv().expect("delivered before advance returned");
//! assert_eq!(event.event_type, EventType::NodeDeleted);
//! # Ok::<(), innkeeper::Error>(())
//! ```
//!
//! # Overview
//! - [`Keeper`] is the engine; [`Keeper::in_memory`] makes one in microseconds,
//!   [`Keeper::builder`] sets the clock, tick, session timeouts and limits.
//! - [`Session`] is an in-process session; it implements [`Coordinator`],
//!   the trait that carries every ZooKeeper operation, so code written
//!   against it runs unchanged on other backends.
//! - Watches: one-shot ones set by reads (`exists_with`, `get_data_with`,
//!   `get_children_with`), persistent ones by [`Coordinator::add_watch`];
//!   events go to a [`Watcher`] (a channel, a callback, or the session's own
//!   [`Coordinator::events`] stream).
//! - [`RemoteSession`] implements [`Coordinator`] over ZooKeeper's wire
//!   protocol, for an Apache ZooKeeper 3.8 ensemble (or `innkeeper serve`):
//!   the same code runs against an embedded keeper in tests and a real
//!   ensemble in production. It reconnects across servers and keeps its
//!   session, credentials and watches, like ZooKeeper's Java client.
//! - [`ManualClock`] makes time deterministic: advancing it expires sessions
//!   and reaps containers and TTL nodes on the calling thread.
//! - [`server::Server`] serves a keeper to ZooKeeper clients over TCP (zkCli,
//!   Curator, kazoo, …); `innkeeper serve` is the command-line front.
//!
//! # Compatibility
//! Node Stat fields, sequential naming, error codes ([`Error::code`]), watch
//! rules and session behaviour follow Apache ZooKeeper 3.8. The test suite
//! replays operation traces recorded from ZooKeeper 3.8.0 and checks every
//! result, Stat and event.
//!
//! # Untrusted input and panics
//! Paths, data, versions and ACLs from callers are validated and answered with
//! a typed [`Error`]; a failed request changes nothing. The library does not
//! panic on any input: this is checked by property tests and fuzz targets
//! (`fuzz/`), which cannot prove the absence of bugs. The wire server answers
//! undecodable requests with ZooKeeper's error codes or closes the
//! connection, and is tested with truncated, oversized and random frames.

#![warn(unreachable_pub)]
mod change;
mod clock;
mod coordinator;
mod engine;
mod error;
mod event;
mod front;
mod javaorder;
mod keeper;
mod liveness;
mod local;
mod metrics;
mod node;
mod ops;
pub mod path;
mod prep;
mod random;
pub mod recipes;
mod remote;
pub mod sasl;
mod session;
mod state;
mod store;
mod tree;
mod txn;
mod watch;

/// ZooKeeper's client wire protocol: jute records and framing, as pure functions over bytes.
pub mod proto;

pub mod server;
mod tls;

pub use clock::{Clock, ManualClock, SystemClock, TimeListener};
pub use coordinator::{ClientInfo, Coordinator};
pub use error::{Error, ErrorKind, Result};
pub use event::{
    AddWatchMode, EventType, KeeperState, WatchReceiver, WatchedEvent, Watcher, WatcherType,
};
pub use keeper::{Keeper, KeeperBuilder};
pub use local::Session;
pub use node::{digest_id, Acl, CreateMode, Id, Perms, Stat};
pub use ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
pub use remote::{RemoteBuilder, RemoteSession};
#[doc(hidden)]
pub use store::{fuzz_decode, SnapshotCrash, StoreFaults};
pub use store::{
    Durability, SnapshotFile, StoreReport, CACHE_BYTES_DEFAULT, SNAPSHOT_EVERY_TXNS_DEFAULT,
};
pub use tls::{ClientAuth, ServerTls, TlsFiles};

/// Default largest node data: 1 MiB, ZooKeeper's `jute.maxbuffer` (0xFFFFF).
pub const DATA_BYTES_MAX_DEFAULT: usize = 0xFFFFF;

/// "Any version" for delete, set-data, set-ACL and check.
pub const ANY_VERSION: i32 = -1;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
