//! Integration tests of the recipes. Each module checks one recipe's safety
//! property under many interleavings, its liveness when a participant's
//! session expires, and that it leaves no nodes behind.
//!
//! They run on an in-process keeper with a manual clock, or, when
//! `INNKEEPER_ZK` names a server (Apache ZooKeeper 3.8 or `innkeeper
//! serve`), on it through `RemoteSession`, each test in its own chroot
//! (`common::World`). What differs remotely:
//!
//! * a "hung" participant (`World::hang_until_expired`) cannot be made to
//!   miss heartbeats while time skips: its session is expired instead, by
//!   resuming it on a second handle and closing it there;
//! * the container reaper runs on the server's schedule: cleanup checks
//!   wait for it (`World::reaped`), boundedly;
//! * what needs the manual clock is in-process only: the keeper's
//!   invariant checks (`World::check`) and the naming test's check that
//!   allocated names survive reaping (`World::reap` does nothing remotely);
//! * proptests run fewer cases (`common::cases`);
//! * "no other event" checks first make a round trip on the session
//!   (`TestSession::settle`), so events already caused have arrived.

mod barrier;
mod cache;
mod common;
mod counter;
mod election;
mod lock;
mod lossy;
mod membership;
mod queue;
mod session_end;
mod step;
mod tasks;

/// The library's own generator (`src/random.rs`), so seeded runs draw from
/// the same code as the library.
#[allow(dead_code)]
#[path = "../../src/random.rs"]
mod random;
