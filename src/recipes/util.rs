//! Helpers the recipes share: deadlines, waiting on a watch, sequence
//! suffixes, protected sequential creates.
//!
//! Everything here goes through [`Coordinator`] only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select};

use crate::event::{WatchReceiver, Watcher, WatcherType};
use crate::node::{CreateMode, Stat};
use crate::path;
use crate::{Coordinator, CreateOptions, Error, ErrorKind, Result};

/// Most attempts a compare-and-set loop makes before it gives up with the
/// last `BadVersion` (each failed attempt means another writer won, so the
/// system as a whole progresses; this bounds one caller's starvation).
pub(crate) const CAS_ATTEMPTS_MAX: usize = 10_000;

/// Digits of a ZooKeeper sequence suffix (`%010d`).
const SEQUENCE_DIGITS: usize = 10;

/// When a blocking call gives up: never, or at an instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: wait as long as it takes.
    pub(crate) fn never() -> Deadline {
        Deadline(None)
    }

    /// `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// True once the deadline has passed.
    pub(crate) fn passed(&self) -> bool {
        self.0.is_some_and(|at| Instant::now() >= at)
    }

    /// Time left, `None` for no deadline.
    fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// How a wait ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// The watch fired (a node event or a session state change).
    Event,
    /// The deadline passed.
    TimedOut,
    /// The cancel channel fired or was dropped.
    Cancelled,
}

/// Blocks until `events` delivers, `cancel` fires, or the deadline passes.
pub(crate) fn wait_for(
    events: &WatchReceiver,
    cancel: Option<&Receiver<()>>,
    deadline: Deadline,
) -> Waited {
    let mut select = Select::new();
    let event_idx = select.recv(events.channel());
    let cancel_idx = cancel.map(|c| select.recv(c));
    let ready = match deadline.remaining() {
        None => select.select(),
        Some(left) => match select.select_timeout(left) {
            Ok(op) => op,
            Err(_) => return Waited::TimedOut,
        },
    };
    let idx = ready.index();
    if idx == event_idx {
        // An error means the session forgot the watch (it ended); the
        // caller's next call reports that, so treat it as an event too.
        let _ = ready.recv(events.channel());
        Waited::Event
    } else if Some(idx) == cancel_idx {
        if let Some(c) = cancel {
            let _ = ready.recv(c);
        }
        Waited::Cancelled
    } else {
        Waited::TimedOut
    }
}

/// Removes a one-shot watch this recipe no longer waits on. Best effort:
/// the watch may have fired already, and a dead session has none.
pub(crate) fn forget_watch<C: Coordinator + ?Sized>(
    client: &C,
    path: &str,
    kind: WatcherType,
    watcher: &Watcher,
) {
    let _ = client.remove_watches(path, kind, Some(watcher));
}

/// The next watch event, or `None` once `stop` fires (or either channel
/// closes): the loop of every recipe thread that follows a watch.
pub(crate) fn next_event_or_stop(
    events: &WatchReceiver,
    stop: &Receiver<()>,
) -> Option<crate::WatchedEvent> {
    let mut select = Select::new();
    let event_idx = select.recv(events.channel());
    select.recv(stop);
    let ready = select.select();
    if ready.index() != event_idx {
        let _ = ready.recv(stop);
        return None;
    }
    ready.recv(events.channel()).ok()
}

/// The sequence number at the end of a node name, if it has one.
pub(crate) fn sequence_of(name: &str) -> Option<u64> {
    let start = name.len().checked_sub(SEQUENCE_DIGITS)?;
    let digits = name.get(start..)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// Names starting with one of `prefixes` and ending in a sequence suffix,
/// in sequence order.
pub(crate) fn sorted_by_sequence(children: Vec<String>, prefixes: &[&str]) -> Vec<String> {
    let mut keyed: Vec<(u64, String)> = children
        .into_iter()
        .filter(|c| prefixes.iter().any(|p| c.starts_with(p)))
        .filter_map(|c| sequence_of(&c).map(|s| (s, c)))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, c)| c).collect()
}

/// A token unique to this session and call, for protected names.
pub(crate) fn unique_token(session_id: i64) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{session_id:016x}{n:x}")
}

/// Validates a recipe's base path.
pub(crate) fn base_path(p: &str) -> Result<String> {
    path::validate(p)?;
    Ok(p.to_string())
}

/// Creates `dir`, and any missing ancestor, as a container (Curator's
/// `creatingParentContainersIfNeeded`). The keeper deletes an empty
/// container once it has had children, so a recipe that leaves nothing
/// behind leaves no directories either. Existing nodes are kept as they
/// are.
pub(crate) fn ensure_container<C: Coordinator + ?Sized>(client: &C, dir: &str) -> Result<()> {
    if client.exists(dir)?.is_some() {
        return Ok(());
    }
    let options = CreateOptions::new(CreateMode::Container);
    let mut prefix = String::new();
    for segment in dir.split('/').skip(1) {
        prefix.push('/');
        prefix.push_str(segment);
        match client.create_with(&prefix, Some(b""), &options) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NodeExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How a recipe's directory is made when missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// A container: reaped once empty.
    Container,
    /// A persistent node: stays.
    Persistent,
}

/// Creates `dir` (and its ancestors) of the given kind.
pub(crate) fn ensure_dir<C: Coordinator + ?Sized>(client: &C, dir: &str, kind: Dir) -> Result<()> {
    match kind {
        Dir::Container => ensure_container(client, dir),
        Dir::Persistent => client.create_all(dir),
    }
}

/// Creates `dir/prefix<token>-<seq>` and returns its path and Stat.
///
/// A missing `dir` is created (a container may have been reaped). If the reply is lost (`ConnectionLoss`,
/// only on a remote backend) the create may have happened anyway: the
/// token in the name lets us find our node instead of leaving an orphan
/// that would hold a place in the queue forever (Curator's "protected"
/// mode).
pub(crate) fn create_protected<C: Coordinator + ?Sized>(
    client: &C,
    dir: &str,
    prefix: &str,
    data: &[u8],
    mode: CreateMode,
    dir_kind: Dir,
) -> Result<(String, Stat)> {
    let token = unique_token(client.session_id());
    let wanted = path::join(dir, &format!("{prefix}{token}-"));
    let options = CreateOptions::new(mode);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.create_with(&wanted, Some(data), &options) {
            Ok(created) => return Ok(created),
            Err(e) if e.kind() == ErrorKind::NoNode && attempts < 3 => {
                ensure_dir(client, dir, dir_kind)?
            }
            Err(e) if e.kind() == ErrorKind::ConnectionLoss && attempts < 3 => {
                if let Some(found) = find_by_token(client, dir, &token)? {
                    return Ok(found);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn find_by_token<C: Coordinator + ?Sized>(
    client: &C,
    dir: &str,
    token: &str,
) -> Result<Option<(String, Stat)>> {
    for child in client.get_children(dir)? {
        if child.contains(token) {
            let p = path::join(dir, &child);
            if let Some(stat) = client.exists(&p)? {
                return Ok(Some((p, stat)));
            }
        }
    }
    Ok(None)
}

/// Deletes a node; a missing node is fine.
pub(crate) fn delete_if_present<C: Coordinator + ?Sized>(client: &C, p: &str) -> Result<()> {
    match client.delete(p, crate::ANY_VERSION) {
        Err(e) if e.kind() != ErrorKind::NoNode => Err(e),
        _ => Ok(()),
    }
}

/// Creates a persistent node; an existing one is fine. Missing parents are
/// created.
pub(crate) fn ensure_node<C: Coordinator + ?Sized>(client: &C, p: &str) -> Result<()> {
    client.create_all(p)
}

/// The error a recipe reports when its own node vanished under it (deleted
/// by someone else, or its session ended).
pub(crate) fn lost_node(p: &str) -> Error {
    Error::with_path(ErrorKind::NoNode, p).detail("the recipe's own node disappeared")
}

/// Joins a recipe's background thread, unless called from that very
/// thread (a listener or leadership closure closing its own recipe), where
/// joining would wait forever; the thread then ends by itself.
pub(crate) fn join_unless_current(handle: std::thread::JoinHandle<()>) -> std::thread::Result<()> {
    if handle.thread().id() == std::thread::current().id() {
        return Ok(());
    }
    handle.join()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_suffixes_parse_and_sort() {
        assert_eq!(sequence_of("lock-abc-0000000042"), Some(42));
        assert_eq!(sequence_of("lock-abc-00000x0042"), None);
        assert_eq!(sequence_of("short"), None);
        let sorted = sorted_by_sequence(
            vec![
                "write-b-0000000003".into(),
                "read-a-0000000001".into(),
                "other".into(),
                "read-c-0000000002".into(),
            ],
            &["read-", "write-"],
        );
        assert_eq!(
            sorted,
            [
                "read-a-0000000001",
                "read-c-0000000002",
                "write-b-0000000003"
            ]
        );
    }
}
