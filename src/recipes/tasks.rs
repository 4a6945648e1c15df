//! A task coordinator: tasks are shared out among live workers; a dead
//! worker's tasks are taken over by the survivors; a newcomer or returning
//! worker takes its share.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::util;
use crate::event::{AddWatchMode, EventType, KeeperState, WatchReceiver, Watcher, WatcherType};
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Result};

const TASKS: &str = "tasks";
const WORKERS: &str = "workers";

/// A task node's data: the owner on the first line (empty when
/// unassigned), the payload after it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TaskRecord {
    owner: String,
    payload: Vec<u8>,
    version: i32,
}

fn encode(owner: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(owner.len() + 1 + payload.len());
    out.extend_from_slice(owner.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

fn decode(data: &[u8], version: i32) -> TaskRecord {
    let (owner, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(idx) => (&data[..idx], &data[idx + 1..]),
        None => (&data[..0], data),
    };
    TaskRecord {
        owner: String::from_utf8_lossy(owner).into_owned(),
        payload: payload.to_vec(),
        version,
    }
}

/// An owner tag: `worker-id@session-id`. The session part makes a worker
/// that comes back with a new session a different owner, so it must win
/// its old tasks back like anyone else.
fn owner_tag(worker_id: &str, session_id: i64) -> String {
    format!("{worker_id}@{session_id:x}")
}

fn worker_of(owner: &str) -> &str {
    owner.split('@').next().unwrap_or(owner)
}

fn read_tasks<C: Coordinator + ?Sized>(
    client: &C,
    dir: &str,
) -> Result<BTreeMap<String, TaskRecord>> {
    let names = match client.get_children(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::NoNode => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut out = BTreeMap::new();
    for name in names {
        match client.get_data(&path::join(dir, &name)) {
            Ok((data, stat)) => {
                out.insert(name, decode(&data, stat.version));
            }
            Err(e) if e.kind() == ErrorKind::NoNode => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Owner tags of the live workers (from their ephemeral nodes' owners).
fn live_workers<C: Coordinator + ?Sized>(client: &C, dir: &str) -> Result<BTreeSet<String>> {
    let names = match client.get_children(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::NoNode => return Ok(BTreeSet::new()),
        Err(e) => return Err(e),
    };
    let mut out = BTreeSet::new();
    for name in names {
        if let Some(stat) = client.exists(&path::join(dir, &name))? {
            out.insert(owner_tag(&name, stat.ephemeral_owner));
        }
    }
    Ok(out)
}

/// This worker's share of `n_tasks` among the `live` owner tags: every
/// worker gets the floor of the average, and the first `n_tasks % live`
/// workers in tag order one more, so the shares add up to `n_tasks` and
/// every worker computes the same split from the same view.
fn fair_share(n_tasks: usize, live: &BTreeSet<String>, me: &str) -> usize {
    let n_workers = live.len().max(1);
    let rank = live.iter().position(|w| w == me).unwrap_or(n_workers);
    n_tasks / n_workers + usize::from(rank < n_tasks % n_workers)
}

/// Submits and inspects tasks under `<root>/tasks`.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::TaskBoard;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let board = TaskBoard::new(Arc::new(keeper.session()?), "/jobs")?;
/// board.submit("resize-42", b"photo 42")?;
/// assert_eq!(board.assignments()?.get("resize-42"), Some(&None)); // nobody yet
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct TaskBoard<C: Coordinator + ?Sized> {
    client: Arc<C>,
    tasks: String,
}

impl<C: Coordinator + ?Sized> TaskBoard<C> {
    /// A board under `root`.
    pub fn new(client: Arc<C>, root: &str) -> Result<TaskBoard<C>> {
        let root = util::base_path(root)?;
        let tasks = path::join(&root, TASKS);
        client.create_all(&tasks)?;
        client.create_all(&path::join(&root, WORKERS))?;
        Ok(TaskBoard { client, tasks })
    }

    /// Adds an unassigned task `name` with `payload`. `NodeExists` if a
    /// task of that name exists.
    pub fn submit(&self, name: &str, payload: &[u8]) -> Result<()> {
        let node = path::join(&self.tasks, name);
        if path::parent(&node) != self.tasks {
            return Err(Error::with_path(ErrorKind::BadArguments, &node)
                .detail("a task name is one path segment"));
        }
        self.client
            .create(&node, &encode("", payload), CreateMode::Persistent)
            .map(|_| ())
    }

    /// Every task and the id of the worker that owns it (`None` when
    /// unassigned, or owned by a worker whose session has ended).
    pub fn assignments(&self) -> Result<BTreeMap<String, Option<String>>> {
        let tasks = read_tasks(&*self.client, &self.tasks)?;
        let live = live_workers(
            &*self.client,
            &path::join(path::parent(&self.tasks), WORKERS),
        )?;
        Ok(tasks
            .into_iter()
            .map(|(name, t)| {
                let owner = live
                    .contains(&t.owner)
                    .then(|| worker_of(&t.owner).to_string());
                (name, owner)
            })
            .collect())
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for TaskBoard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskBoard")
            .field("tasks", &self.tasks)
            .finish()
    }
}

/// What a [`Worker`] did, reported to its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// The worker won `task`. `from` names the previous owner when it took
    /// the task over from a worker that died.
    Claimed {
        /// The task's name.
        task: String,
        /// Its payload.
        payload: Vec<u8>,
        /// The dead worker it was taken from, if any.
        from: Option<String>,
    },
    /// The worker gave `task` up so a less loaded worker can take it.
    Released {
        /// The task's name.
        task: String,
    },
    /// `task` was completed or deleted.
    Gone {
        /// The task's name.
        task: String,
    },
    /// The worker stopped: its session ended (`SessionExpired`) or an
    /// error it cannot recover from.
    Stopped(Option<Error>),
}

type Listener = Arc<dyn Fn(&TaskEvent) + Send + Sync>;

struct WorkerCore<C: Coordinator + ?Sized + 'static> {
    client: Arc<C>,
    tasks: String,
    workers: String,
    id: String,
    me: String,
    owned: Mutex<BTreeSet<String>>,
    listener: Listener,
}

impl<C: Coordinator + ?Sized + 'static> WorkerCore<C> {
    fn emit(&self, event: TaskEvent) {
        (self.listener)(&event);
    }

    /// Makes one pass: forget tasks no longer ours, give back what exceeds
    /// our share, claim orphans up to our share.
    ///
    /// Tasks are read before workers: an owner tag in a task was written
    /// after its worker registered, so if that worker is missing from a
    /// later listing, its session has ended for good and its tasks are
    /// fair game. A claim is a set-data at the version we read, so of all
    /// workers racing for a task exactly one wins.
    fn reconcile(&self) -> Result<()> {
        let tasks = read_tasks(&*self.client, &self.tasks)?;
        let mut live = live_workers(&*self.client, &self.workers)?;
        live.insert(self.me.clone());
        let ours: BTreeSet<String> = tasks
            .iter()
            .filter(|(_, t)| t.owner == self.me)
            .map(|(n, _)| n.clone())
            .collect();
        let gone: Vec<String> = {
            let mut owned = self.owned.lock();
            let gone = owned.difference(&ours).cloned().collect();
            *owned = ours.clone();
            gone
        };
        for task in gone {
            self.emit(TaskEvent::Gone { task });
        }
        let share = fair_share(tasks.len(), &live, &self.me);
        let mut mine = ours.len();
        for task in ours.iter().rev() {
            if mine <= share {
                break;
            }
            let Some(record) = tasks.get(task) else {
                continue;
            };
            // Stop believing first, then write: belief never exceeds what
            // the keeper records.
            self.owned.lock().remove(task);
            match self.write_owner(task, "", record) {
                Ok(true) => {
                    mine -= 1;
                    self.emit(TaskEvent::Released { task: task.clone() });
                }
                Ok(false) => mine -= 1,
                Err(e) => return Err(e),
            }
        }
        for (task, record) in &tasks {
            if mine >= share {
                break;
            }
            let orphan = record.owner.is_empty() || !live.contains(&record.owner);
            if !orphan || record.owner == self.me {
                continue;
            }
            if self.write_owner(task, &self.me, record)? {
                mine += 1;
                self.owned.lock().insert(task.clone());
                let from = (!record.owner.is_empty()).then(|| worker_of(&record.owner).to_string());
                self.emit(TaskEvent::Claimed {
                    task: task.clone(),
                    payload: record.payload.clone(),
                    from,
                });
            }
        }
        Ok(())
    }

    /// Writes `owner` into `task` if it is still at the version read;
    /// false if someone else changed it first (or it is gone).
    fn write_owner(&self, task: &str, owner: &str, record: &TaskRecord) -> Result<bool> {
        let node = path::join(&self.tasks, task);
        match self
            .client
            .set_data(&node, &encode(owner, &record.payload), record.version)
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), ErrorKind::BadVersion | ErrorKind::NoNode) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn run(&self, events: &WatchReceiver, stop: &crossbeam_channel::Receiver<()>) {
        let mut pending = true;
        loop {
            if pending {
                // Coalesce a burst of events into one pass.
                while events.try_recv().is_some() {}
                if let Err(e) = self.reconcile() {
                    if e.kind() == ErrorKind::SessionExpired || e.kind().is_fail_stop() {
                        self.owned.lock().clear();
                        self.emit(TaskEvent::Stopped(Some(e)));
                        return;
                    }
                }
            }
            let Some(event) = util::next_event_or_stop(events, stop) else {
                return;
            };
            if event.event_type == EventType::None
                && matches!(event.state, KeeperState::Expired | KeeperState::Closed)
            {
                self.owned.lock().clear();
                self.emit(TaskEvent::Stopped(Some(Error::new(
                    ErrorKind::SessionExpired,
                ))));
                return;
            }
            pending = true;
        }
    }
}

/// A worker: registers as live under `<root>/workers`, and keeps its fair
/// share of `<root>/tasks` (the average over live workers, rounded so the
/// shares add up).
///
/// Every worker watches the tasks (persistent recursive watch) and the
/// worker list. On any change it re-reads both and: forgets tasks now
/// owned by someone else or deleted; releases tasks above its share; and
/// claims unassigned tasks and tasks whose owner's session is gone, each
/// by a set-data at the version it read (exactly one claimant wins). So a
/// dead worker's tasks move to the survivors, and a new or returning
/// worker gets its share as the others release theirs.
///
/// A task is owned by at most one live worker: the owner is one field of
/// the task node; a worker writes itself in only over an empty or dead
/// owner (a session never comes back from the dead), and believes it owns
/// a task only after its write succeeded and until it releases it, which
/// it stops believing before writing.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use innkeeper::recipes::{TaskBoard, TaskEvent, Worker};
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let board = TaskBoard::new(Arc::new(keeper.session()?), "/jobs")?;
/// board.submit("t1", b"work")?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let worker = Worker::start(Arc::new(keeper.session()?), "/jobs", "w1", move |event| {
///     let _ = tx.send(event.clone());
/// })?;
/// let event = rx.recv_timeout(Duration::from_secs(5)).expect("a claim");
/// assert!(matches!(event, TaskEvent::Claimed { ref task, .. } if task == "t1"));
/// assert!(worker.complete("t1")?);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct Worker<C: Coordinator + ?Sized + 'static> {
    core: Arc<WorkerCore<C>>,
    node: String,
    watcher: Watcher,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl<C: Coordinator + ?Sized + 'static> Worker<C> {
    /// Registers worker `id` under `root` and starts claiming tasks;
    /// `listener` hears what it does (on the worker's thread). Fails with
    /// `NodeExists` if a live worker already uses `id`.
    pub fn start(
        client: Arc<C>,
        root: &str,
        id: &str,
        listener: impl Fn(&TaskEvent) + Send + Sync + 'static,
    ) -> Result<Worker<C>> {
        let root = util::base_path(root)?;
        let tasks = path::join(&root, TASKS);
        let workers = path::join(&root, WORKERS);
        client.create_all(&tasks)?;
        client.create_all(&workers)?;
        let node = path::join(&workers, id);
        if path::parent(&node) != workers {
            return Err(Error::with_path(ErrorKind::BadArguments, &node)
                .detail("a worker id is one path segment"));
        }
        let (watcher, events) = Watcher::channel();
        client.add_watch(&tasks, AddWatchMode::PersistentRecursive, &watcher)?;
        client.add_watch(&workers, AddWatchMode::Persistent, &watcher)?;
        if let Err(e) = client.create(&node, b"", CreateMode::Ephemeral) {
            let _ = client.remove_watches(&tasks, WatcherType::Any, Some(&watcher));
            let _ = client.remove_watches(&workers, WatcherType::Any, Some(&watcher));
            return Err(e);
        }
        let core = Arc::new(WorkerCore {
            me: owner_tag(id, client.session_id()),
            client,
            tasks,
            workers,
            id: id.to_string(),
            owned: Mutex::new(BTreeSet::new()),
            listener: Arc::new(listener),
        });
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let thread_core = core.clone();
        let thread = std::thread::Builder::new()
            .name(format!("innkeeper-worker {id}"))
            .spawn(move || thread_core.run(&events, &stop_rx))
            .map_err(|e| Error::new(ErrorKind::SystemError).detail(e.to_string()))?;
        Ok(Worker {
            core,
            node,
            watcher,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.core.id
    }

    /// The tasks this worker owns now.
    pub fn owned(&self) -> BTreeSet<String> {
        self.core.owned.lock().clone()
    }

    /// Completes `task`: deletes it if this worker still owns it (at the
    /// version it owns it at); false if it does not.
    pub fn complete(&self, task: &str) -> Result<bool> {
        let node = path::join(&self.core.tasks, task);
        let (data, stat) = match self.core.client.get_data(&node) {
            Ok(found) => found,
            Err(e) if e.kind() == ErrorKind::NoNode => return Ok(false),
            Err(e) => return Err(e),
        };
        if decode(&data, stat.version).owner != self.core.me {
            return Ok(false);
        }
        self.core.owned.lock().remove(task);
        match self.core.client.delete(&node, stat.version) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.kind(), ErrorKind::BadVersion | ErrorKind::NoNode) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stops gracefully: hands every owned task back (unassigned, for the
    /// others to claim) and deregisters.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = util::join_unless_current(t);
        }
        let client = &*self.core.client;
        let _ = client.remove_watches(&self.core.tasks, WatcherType::Any, Some(&self.watcher));
        let _ = client.remove_watches(&self.core.workers, WatcherType::Any, Some(&self.watcher));
        if client.state() != KeeperState::SyncConnected {
            return Ok(());
        }
        let owned: Vec<String> = std::mem::take(&mut *self.core.owned.lock())
            .into_iter()
            .collect();
        let tasks = read_tasks(client, &self.core.tasks)?;
        for task in owned {
            if let Some(record) = tasks.get(&task).filter(|r| r.owner == self.core.me) {
                self.core.write_owner(&task, "", record)?;
            }
        }
        util::delete_if_present(client, &self.node)
    }
}

impl<C: Coordinator + ?Sized + 'static> Drop for Worker<C> {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl<C: Coordinator + ?Sized + 'static> std::fmt::Debug for Worker<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.core.id)
            .field("owned", &self.owned())
            .finish()
    }
}
