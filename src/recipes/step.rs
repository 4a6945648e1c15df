//! A step barrier for a fixed set of participants: each posts its status
//! (`A:ready`), everyone watches, and a step starts only when every
//! participant is ready — with conflicting updates settled by sequence
//! order, so every observer agrees on when the step started.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::util::{self, Deadline, Waited};
use crate::event::{Watcher, WatcherType};
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Result};

const ENTRY_PREFIX: &str = "s-";
/// The status that counts as ready.
pub const READY: &str = "ready";

/// When a step started and what everyone had said by then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepStart {
    /// The step.
    pub step: u64,
    /// Sequence number of the status entry that completed the set of
    /// ready participants: the same for every observer.
    pub at: u64,
    /// Each participant's status at that point (all `ready`).
    pub statuses: BTreeMap<String, String>,
}

/// Reads a step's log in sequence order and finds the first point at
/// which every participant's latest status is `ready`.
///
/// The log only grows, and a new entry always gets a higher sequence
/// number than every entry before it, so once such a point exists in what
/// one observer read, every later read contains the same prefix and finds
/// the same point. Entries after it cannot undo the start.
fn decide(
    participants: &[String],
    log: &[(u64, String, String)],
) -> Option<(u64, BTreeMap<String, String>)> {
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for (seq, who, status) in log {
        if !participants.contains(who) {
            continue;
        }
        latest.insert(who.clone(), status.clone());
        if participants
            .iter()
            .all(|p| latest.get(p).is_some_and(|s| s == READY))
        {
            return Some((*seq, latest));
        }
    }
    None
}

/// A barrier for steps of a multi-party job: participants named up front
/// post statuses per step; [`StepBarrier::wait_start`] returns when all
/// are ready.
///
/// Each status is a persistent sequential node `<path>/step-<n>/s-<seq>`
/// holding `participant:status`. Status entries are never edited, only
/// appended, so a participant that changes its mind (`ready`, then
/// `not-ready`) simply posts again and the later entry wins; the step
/// starts at the first entry after which every participant's latest
/// status is `ready`, and all observers compute the same point.
///
/// Entries are persistent, so a participant that dies after posting
/// `ready` still counts; one that dies before posting blocks the step
/// (safety first): the others time out, and a replacement with the same
/// name can post for it. When step n starts, the log of step n−1 is
/// deleted, so post for step n only after seeing step n−1 start.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::StepBarrier;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let crew = ["A", "B"];
/// let a = StepBarrier::new(Arc::new(keeper.session()?), "/deploy", "A", &crew)?;
/// let b = StepBarrier::new(Arc::new(keeper.session()?), "/deploy", "B", &crew)?;
/// a.ready(1)?;
/// assert!(b.wait_start(1, Duration::from_millis(10))?.is_none()); // B is not ready
/// b.ready(1)?;
/// let start = a.wait_start(1, Duration::from_secs(5))?.expect("started");
/// assert_eq!(start.statuses.len(), 2);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct StepBarrier<C: Coordinator + ?Sized> {
    client: Arc<C>,
    dir: String,
    me: String,
    participants: Vec<String>,
}

impl<C: Coordinator + ?Sized> StepBarrier<C> {
    /// A barrier at `path` where `me` is one of `participants`.
    pub fn new(
        client: Arc<C>,
        path: &str,
        me: &str,
        participants: &[&str],
    ) -> Result<StepBarrier<C>> {
        let dir = util::base_path(path)?;
        let participants: Vec<String> = participants.iter().map(|p| p.to_string()).collect();
        if !participants.iter().any(|p| p == me) || participants.iter().any(|p| p.contains(':')) {
            return Err(Error::with_path(ErrorKind::BadArguments, &dir)
                .detail("`me` must be one of the participants, and names may not contain ':'"));
        }
        Ok(StepBarrier {
            client,
            dir,
            me: me.to_string(),
            participants,
        })
    }

    fn step_dir(&self, step: u64) -> String {
        path::join(&self.dir, &format!("step-{step:010}"))
    }

    /// Posts `status` for `step`; returns the entry's sequence number.
    pub fn post(&self, step: u64, status: &str) -> Result<u64> {
        let data = format!("{}:{status}", self.me);
        let (created, _) = util::create_protected(
            &*self.client,
            &self.step_dir(step),
            ENTRY_PREFIX,
            data.as_bytes(),
            CreateMode::PersistentSequential,
            util::Dir::Persistent,
        )?;
        util::sequence_of(&created).ok_or_else(|| Error::with_path(ErrorKind::SystemError, created))
    }

    /// Posts `ready` for `step`.
    pub fn ready(&self, step: u64) -> Result<u64> {
        self.post(step, READY)
    }

    /// The log of `step`: (sequence, participant, status), in order.
    fn log(&self, step: u64, watcher: Option<&Watcher>) -> Result<Vec<(u64, String, String)>> {
        let dir = self.step_dir(step);
        let names = match self.client.get_children_with(&dir, watcher) {
            Ok((n, _)) => n,
            Err(e) if e.kind() == ErrorKind::NoNode => {
                // Not created yet: watch for its creation instead.
                if let Some(w) = watcher {
                    if self.client.exists_with(&dir, Some(w))?.is_some() {
                        return self.log(step, watcher);
                    }
                }
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for name in util::sorted_by_sequence(names, &[ENTRY_PREFIX]) {
            let (data, _) = match self.client.get_data(&path::join(&dir, &name)) {
                Ok(found) => found,
                Err(e) if e.kind() == ErrorKind::NoNode => continue,
                Err(e) => return Err(e),
            };
            let text = String::from_utf8_lossy(&data);
            if let (Some(seq), Some((who, status))) =
                (util::sequence_of(&name), text.split_once(':'))
            {
                out.push((seq, who.to_string(), status.to_string()));
            }
        }
        Ok(out)
    }

    /// Each participant's latest status for `step` (whether or not it has
    /// started).
    pub fn statuses(&self, step: u64) -> Result<BTreeMap<String, String>> {
        let mut latest = BTreeMap::new();
        for (_, who, status) in self.log(step, None)? {
            if self.participants.contains(&who) {
                latest.insert(who, status);
            }
        }
        Ok(latest)
    }

    /// Whether `step` has started, without waiting.
    pub fn started(&self, step: u64) -> Result<Option<StepStart>> {
        Ok(
            decide(&self.participants, &self.log(step, None)?).map(|(at, statuses)| StepStart {
                step,
                at,
                statuses,
            }),
        )
    }

    /// Waits up to `timeout` for `step` to start. When it has, the log of
    /// the step before is removed.
    pub fn wait_start(&self, step: u64, timeout: Duration) -> Result<Option<StepStart>> {
        let deadline = Deadline::after(timeout);
        let dir = self.step_dir(step);
        loop {
            let (watcher, events) = Watcher::channel();
            let log = self.log(step, Some(&watcher))?;
            if let Some((at, statuses)) = decide(&self.participants, &log) {
                util::forget_watch(&*self.client, &dir, WatcherType::Any, &watcher);
                if let Some(previous) = step.checked_sub(1) {
                    self.client.delete_all(&self.step_dir(previous))?;
                }
                return Ok(Some(StepStart { step, at, statuses }));
            }
            if let Waited::TimedOut = util::wait_for(&events, None, deadline) {
                util::forget_watch(&*self.client, &dir, WatcherType::Any, &watcher);
                return Ok(None);
            }
        }
    }

    /// Removes the barrier and every step's log (when the job is over).
    pub fn destroy(&self) -> Result<()> {
        self.client.delete_all(&self.dir)
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for StepBarrier<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepBarrier")
            .field("path", &self.dir)
            .field("me", &self.me)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::decide;

    fn entry(seq: u64, who: &str, status: &str) -> (u64, String, String) {
        (seq, who.to_string(), status.to_string())
    }

    #[test]
    fn later_entries_win_until_the_start() {
        let who = vec!["A".to_string(), "B".to_string()];
        let log = vec![
            entry(1, "A", "ready"),
            entry(2, "B", "ready"),
            entry(3, "A", "not-ready"),
        ];
        assert_eq!(decide(&who, &log).map(|(at, _)| at), Some(2));
        let log = vec![
            entry(1, "A", "ready"),
            entry(2, "A", "not-ready"),
            entry(3, "B", "ready"),
            entry(4, "X", "ready"),
        ];
        assert_eq!(decide(&who, &log), None);
    }
}
