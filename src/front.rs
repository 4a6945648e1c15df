//! The one front door to the engine: a session's operations with typed
//! results. The in-process [`Session`](crate::Session) and the wire
//! server's request pipeline are both thin adapters over [`Front`]: they
//! check what is theirs (a closed handle, a frame that does not decode) and
//! map results to their own shapes; everything else happens here, once.
//!
//! Writes are [`Command`]s. Each names its engine write and reads the
//! engine's answer into its own output type (`create -> (String, Stat)`,
//! `multi -> Vec<OpResult>`, …), so an adapter never sees the engine's
//! untyped `Written`. Every command runs blocking ([`Front::write`]) or
//! with a typed completion ([`Front::submit`], what the wire server uses
//! so its event loop never waits for a flush). Reads run under the state
//! read lock through [`Read`], so a caller can queue its answer before any
//! later change is applied.
//!
//! This is also the one place where the public [`Op`] becomes the
//! engine's internal `WriteOp`.

use std::sync::Arc;

use crate::coordinator::ClientInfo;
use crate::engine::{Engine, Reader, SessionHooks, Write, Written};
use crate::error::{Error, ErrorKind, Result};
use crate::event::WatcherType;
use crate::node::{Acl, Id, Stat};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::prep::{digest_identity, WriteOp};
use crate::state::OpOutcome;
use crate::watch::Table;

/// A write a session can ask for, and how its result reads.
pub(crate) trait Command {
    /// What a successful write answers.
    type Output: Send + 'static;
    /// What reading the answer needs to keep of the request.
    type Context: Send + 'static;
    /// The engine write, and what [`Command::output`] will need.
    fn into_write(self) -> (Write, Self::Context);
    /// The typed answer, or `None` if the engine answered another kind of
    /// write (a bug: the caller turns it into `SystemError`).
    fn output(context: Self::Context, written: Written) -> Option<Self::Output>;
}

/// `create`: the actual path and the new node's Stat.
pub(crate) struct Create {
    pub(crate) path: String,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) options: CreateOptions,
}

/// `delete`.
pub(crate) struct Delete {
    pub(crate) path: String,
    pub(crate) version: i32,
}

/// `setData`: the node's new Stat.
pub(crate) struct SetData {
    pub(crate) path: String,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) version: i32,
}

/// `setACL`: the node's new Stat.
pub(crate) struct SetAcl {
    pub(crate) path: String,
    pub(crate) acl: Vec<Acl>,
    pub(crate) version: i32,
}

/// `check` (a version check on its own, as the wire allows).
pub(crate) struct Check {
    pub(crate) path: String,
    pub(crate) version: i32,
}

/// `multi`: one result per op; a failed multi answers ZooKeeper's failure
/// shape (E.3), not an error.
pub(crate) struct Multi(pub(crate) Vec<Op>);

/// `closeSession`.
pub(crate) struct Close;

impl Command for Create {
    type Output = (String, Stat);
    type Context = ();
    fn into_write(self) -> (Write, ()) {
        let op = Op::Create {
            path: self.path,
            data: self.data,
            options: self.options,
        };
        (Write::Op(op.into()), ())
    }
    fn output((): (), written: Written) -> Option<(String, Stat)> {
        match written {
            Written::Op(OpOutcome::Created(path, stat)) => Some((path, stat)),
            _ => None,
        }
    }
}

impl Command for Delete {
    type Output = ();
    type Context = ();
    fn into_write(self) -> (Write, ()) {
        (Write::Op(Op::delete(self.path, self.version).into()), ())
    }
    fn output((): (), written: Written) -> Option<()> {
        matches!(written, Written::Op(OpOutcome::Deleted)).then_some(())
    }
}

impl Command for SetData {
    type Output = Stat;
    type Context = ();
    fn into_write(self) -> (Write, ()) {
        let op = Op::SetData {
            path: self.path,
            data: self.data,
            version: self.version,
        };
        (Write::Op(op.into()), ())
    }
    fn output((): (), written: Written) -> Option<Stat> {
        match written {
            Written::Op(OpOutcome::DataSet(stat)) => Some(stat),
            _ => None,
        }
    }
}

impl Command for SetAcl {
    type Output = Stat;
    type Context = ();
    fn into_write(self) -> (Write, ()) {
        let op = WriteOp::SetAcl {
            path: self.path,
            acl: self.acl,
            version: self.version,
        };
        (Write::Op(op), ())
    }
    fn output((): (), written: Written) -> Option<Stat> {
        match written {
            Written::Op(OpOutcome::AclSet(stat)) => Some(stat),
            _ => None,
        }
    }
}

impl Command for Check {
    type Output = ();
    type Context = ();
    fn into_write(self) -> (Write, ()) {
        (Write::Op(Op::check(self.path, self.version).into()), ())
    }
    fn output((): (), written: Written) -> Option<()> {
        matches!(written, Written::Op(OpOutcome::Checked)).then_some(())
    }
}

impl Command for Multi {
    type Output = Vec<OpResult>;
    /// The number of ops, for the failure shape.
    type Context = usize;
    fn into_write(self) -> (Write, usize) {
        let n_ops = self.0.len();
        let ops = self.0.into_iter().map(WriteOp::from).collect();
        (Write::Multi(ops), n_ops)
    }
    fn output(n_ops: usize, written: Written) -> Option<Vec<OpResult>> {
        match written {
            Written::Multi(Ok(outcomes)) => outcomes.into_iter().map(op_result).collect(),
            Written::Multi(Err((idx, e))) => Some(OpResult::failed(n_ops, idx, e.kind())),
            _ => None,
        }
    }
}

impl Command for Close {
    type Output = ();
    type Context = ();
    fn into_write(self) -> (Write, ()) {
        (Write::CloseSession, ())
    }
    fn output((): (), written: Written) -> Option<()> {
        matches!(written, Written::Closed).then_some(())
    }
}

/// The public op as the engine takes it: the one conversion. Every op
/// `multi` accepts has a `WriteOp`, so nothing is refused here.
impl From<Op> for WriteOp {
    fn from(op: Op) -> WriteOp {
        match op {
            Op::Create {
                path,
                data,
                options,
            } => WriteOp::Create {
                path,
                data,
                ttl_ms: options.ttl_ms(),
                acl: options.acl,
                mode: options.mode,
            },
            Op::Delete { path, version } => WriteOp::Delete { path, version },
            Op::SetData {
                path,
                data,
                version,
            } => WriteOp::SetData {
                path,
                data,
                version,
            },
            Op::Check { path, version } => WriteOp::Check { path, version },
        }
    }
}

/// One applied op of a multi as its public result (`None` for an outcome
/// a multi op cannot have).
fn op_result(outcome: OpOutcome) -> Option<OpResult> {
    match outcome {
        OpOutcome::Created(path, stat) => Some(OpResult::Create { path, stat }),
        OpOutcome::Deleted => Some(OpResult::Delete),
        OpOutcome::DataSet(stat) => Some(OpResult::SetData { stat }),
        OpOutcome::Checked => Some(OpResult::Check),
        OpOutcome::AclSet(_) | OpOutcome::Session => None,
    }
}

fn mismatch() -> Error {
    Error::new(ErrorKind::SystemError).detail("the engine answered a different kind of write")
}

/// Opens a session through the commit pipeline without waiting (many
/// connects then share a flush): `done` gets its id and password once the
/// session is durable and applied, under the same rules as
/// [`Front::submit`]'s completions. `timeout_ms` is taken as negotiated.
pub(crate) fn open_session_submit(
    engine: &Engine,
    timeout_ms: i32,
    hooks: Arc<SessionHooks>,
    done: impl FnOnce(Result<(i64, [u8; 16])>) + Send + 'static,
) {
    engine.submit(
        0,
        Vec::new(),
        Write::OpenSession { timeout_ms },
        Some(hooks),
        Box::new(move |result, _| {
            done(result.and_then(|written| match written {
                Written::Session {
                    session_id,
                    password,
                } => Ok((session_id, password)),
                _ => Err(mismatch()),
            }));
        }),
    );
}

/// A session's door to the engine: its id and its hooks (identities and
/// event sink).
#[derive(Clone)]
pub(crate) struct Front {
    engine: Arc<Engine>,
    session_id: i64,
    hooks: Arc<SessionHooks>,
}

impl Front {
    pub(crate) fn new(engine: Arc<Engine>, session_id: i64, hooks: Arc<SessionHooks>) -> Front {
        Front {
            engine,
            session_id,
            hooks,
        }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub(crate) fn session_id(&self) -> i64 {
        self.session_id
    }

    pub(crate) fn hooks(&self) -> &Arc<SessionHooks> {
        &self.hooks
    }

    /// The session's identities now.
    pub(crate) fn identities(&self) -> Vec<Id> {
        self.hooks.identities.read().clone()
    }

    /// zxid of the last applied txn.
    pub(crate) fn last_zxid(&self) -> i64 {
        self.engine.last_zxid()
    }

    /// Touches the session (any request of a wire client); false if it is
    /// no longer live.
    pub(crate) fn touch(&self) -> bool {
        self.engine.touch(self.session_id)
    }

    /// Starts or stops this handle's heartbeats ([`Engine::set_heartbeats`]).
    pub(crate) fn set_heartbeats(&self, on: bool) {
        self.engine.set_heartbeats(self.session_id, &self.hooks, on);
    }

    // ---- writes ---------------------------------------------------------

    /// Runs a write and waits until it is durable and applied.
    pub(crate) fn write<C: Command>(&self, command: C) -> Result<C::Output> {
        let (write, context) = command.into_write();
        let written = self
            .engine
            .write(self.session_id, self.identities(), write, None)?;
        C::output(context, written).ok_or_else(mismatch)
    }

    /// Hands a write to the engine without waiting: `done` gets its typed
    /// result and the last zxid after it, once it is durable and applied
    /// (or failed), in submission order. `done` runs with engine locks
    /// held: it must not block or call back into the engine.
    pub(crate) fn submit<C: Command>(
        &self,
        command: C,
        done: impl FnOnce(Result<C::Output>, i64) + Send + 'static,
    ) {
        let (write, context) = command.into_write();
        self.engine.submit(
            self.session_id,
            self.identities(),
            write,
            None,
            Box::new(move |result, zxid| {
                done(
                    result.and_then(|w| C::output(context, w).ok_or_else(mismatch)),
                    zxid,
                );
            }),
        );
    }

    // ---- reads ----------------------------------------------------------

    /// Holds the state read lock for this session's reads (see [`Read`]).
    pub(crate) fn read(&self) -> Result<Read<'_>> {
        Ok(Read {
            reader: self.engine.reader(self.session_id)?,
            identities: self.identities(),
        })
    }

    /// `sync`: nothing to wait for in one process; checks the session.
    pub(crate) fn sync(&self) -> Result<()> {
        self.engine.sync(self.session_id)
    }

    // ---- watches --------------------------------------------------------

    /// `addWatch`; `register` runs under the engine's locks once the server
    /// side holds the watch.
    pub(crate) fn add_watch(&self, path: &str, recursive: bool, register: &dyn Fn()) -> Result<()> {
        self.engine
            .add_watch(self.session_id, path, recursive, register)
    }

    /// `removeWatches` (`remove`) or `checkWatches` on the server tables of
    /// `kind`; `on_success` runs under the engine's locks when one was found.
    pub(crate) fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        remove: bool,
        on_success: &dyn Fn(),
    ) -> Result<()> {
        let tables: &[Table] = match kind {
            WatcherType::Children => &[Table::Child],
            WatcherType::Data => &[Table::Data],
            WatcherType::Any => &[Table::Child, Table::Data],
        };
        self.engine
            .remove_watches(self.session_id, path, tables, remove, on_success)
    }

    /// SetWatches after a reconnect (D.6).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_watches(
        &self,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        recursive: &[String],
    ) -> Result<()> {
        self.engine.set_watches(
            self.session_id,
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            recursive,
        )
    }

    // ---- identities -----------------------------------------------------

    /// `addAuth` with the digest scheme (`user:password`); the super digest
    /// also makes the session `super` (G.1).
    pub(crate) fn add_digest(&self, credential: &[u8]) {
        let id = digest_identity(&String::from_utf8_lossy(credential));
        let is_super = self.engine.config.super_digest.as_deref() == Some(id.id.as_str());
        let mut ids = self.hooks.identities.write();
        if is_super && !ids.iter().any(|i| i.scheme == "super") {
            ids.push(Id::new("super", ""));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// Adds an identity another layer authenticated (`sasl:USER`).
    pub(crate) fn add_identity(&self, id: Id) {
        let mut ids = self.hooks.identities.write();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// `whoAmI`.
    pub(crate) fn who_am_i(&self) -> Vec<ClientInfo> {
        client_infos(&self.hooks.identities.read())
    }
}

/// A live session's reads, holding the state read lock: while it lives no
/// write is applied, so an answer queued before dropping it precedes every
/// notification of a later change.
pub(crate) struct Read<'f> {
    reader: Reader<'f>,
    identities: Vec<Id>,
}

/// A read's way to register its client-side watch while the server side is
/// registered (the argument: whether the node exists).
pub(crate) type Register<'a> = Option<&'a dyn Fn(bool)>;

impl Read<'_> {
    /// zxid of the last applied txn, as this read sees the state.
    pub(crate) fn last_zxid(&self) -> i64 {
        self.reader.last_zxid()
    }

    /// `exists` (no permission needed, as in ZooKeeper 3.8).
    pub(crate) fn exists(&self, path: &str, watch: Register<'_>) -> Result<Option<Stat>> {
        self.reader.exists(&self.identities, path, watch)
    }

    /// `getData`.
    pub(crate) fn get_data(
        &self,
        path: &str,
        watch: Register<'_>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        self.reader.get_data(&self.identities, path, watch)
    }

    /// `getChildren2` with the names sorted (the in-process order).
    pub(crate) fn get_children(
        &self,
        path: &str,
        watch: Register<'_>,
    ) -> Result<(Vec<String>, Stat)> {
        self.reader.get_children(&self.identities, path, watch)
    }

    /// `getChildren2` with the names in ZooKeeper 3.8's wire order.
    pub(crate) fn get_children_wire(
        &self,
        path: &str,
        watch: Register<'_>,
    ) -> Result<(Vec<String>, Stat)> {
        self.reader.get_children_wire(&self.identities, path, watch)
    }

    /// `getACL`.
    pub(crate) fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        self.reader.get_acl(&self.identities, path)
    }

    /// `getAllChildrenNumber`.
    pub(crate) fn get_all_children_number(&self, path: &str) -> Result<u64> {
        self.reader.get_all_children_number(&self.identities, path)
    }

    /// `getEphemerals`: the session's own, by string prefix.
    pub(crate) fn get_ephemerals(&self, prefix: &str) -> Vec<String> {
        self.reader.get_ephemerals(prefix)
    }

    /// `multiRead`: each op on the same state, its error in its own result
    /// (no watches, D.1). `wire` lists children in ZooKeeper's wire order.
    pub(crate) fn multi_read(&self, ops: &[ReadOp], wire: bool) -> Vec<ReadResult> {
        ops.iter()
            .map(|op| match op {
                ReadOp::GetData(p) => match self.get_data(p, None) {
                    Ok((data, stat)) => ReadResult::Data(data, stat),
                    Err(e) => ReadResult::Error(e.kind()),
                },
                ReadOp::GetChildren(p) => {
                    let children = if wire {
                        self.get_children_wire(p, None)
                    } else {
                        self.get_children(p, None)
                    };
                    match children {
                        Ok((names, _)) => ReadResult::Children(names),
                        Err(e) => ReadResult::Error(e.kind()),
                    }
                }
            })
            .collect()
    }
}

/// `whoAmI` entries for a list of identities (digest shows the user only).
/// `ids` are in the order they were added; the answer is in the order
/// ZooKeeper 3.8 iterates its `ConcurrentHashMap`-backed `authInfo` set.
fn client_infos(ids: &[Id]) -> Vec<ClientInfo> {
    let hashes: Vec<i32> = ids
        .iter()
        .map(|id| crate::javaorder::id_hash(&id.scheme, &id.id))
        .collect();
    crate::javaorder::concurrent_set_order(&hashes)
        .into_iter()
        .filter_map(|i| ids.get(i))
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: if id.scheme == "digest" {
                id.id.split(':').next().unwrap_or("").to_string()
            } else {
                id.id.clone()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::node::CreateMode;

    /// Every op `multi` accepts converts, field for field; there is no
    /// `Op` for set-ACL, so the conversion refuses nothing (E.1).
    #[test]
    fn every_op_converts_to_the_engines_op() {
        let acl = vec![Acl::new(
            crate::node::Perms::ALL,
            Id::new("world", "anyone"),
        )];
        let options = CreateOptions::new(CreateMode::PersistentSequentialWithTtl)
            .acl(acl.clone())
            .ttl(Duration::from_millis(1500));
        let cases = [
            (
                Op::create_with("/a/s-", None, &options),
                WriteOp::Create {
                    path: "/a/s-".into(),
                    data: None,
                    acl,
                    mode: CreateMode::PersistentSequentialWithTtl,
                    ttl_ms: 1500,
                },
            ),
            (
                Op::create("/b", b"x", CreateMode::Ephemeral),
                WriteOp::Create {
                    path: "/b".into(),
                    data: Some(b"x".to_vec()),
                    acl: Acl::open_unsafe(),
                    mode: CreateMode::Ephemeral,
                    ttl_ms: 0,
                },
            ),
            (
                Op::delete("/c", 3),
                WriteOp::Delete {
                    path: "/c".into(),
                    version: 3,
                },
            ),
            (
                Op::set_data("/d", b"y", -1),
                WriteOp::SetData {
                    path: "/d".into(),
                    data: Some(b"y".to_vec()),
                    version: -1,
                },
            ),
            (
                Op::check("/e", 7),
                WriteOp::Check {
                    path: "/e".into(),
                    version: 7,
                },
            ),
        ];
        for (op, expected) in cases {
            assert_eq!(format!("{:?}", WriteOp::from(op)), format!("{expected:?}"));
        }
    }

    /// The blocking and the submitted forms answer the same typed results;
    /// a submitted write's completion gets the zxid it made.
    #[test]
    fn write_and_submit_answer_typed_results() {
        use crate::engine::NullSink;
        use crate::{Coordinator, Keeper};
        let keeper = Keeper::in_memory().unwrap();
        let session = keeper.session().unwrap();
        let hooks = Arc::new(SessionHooks::new(Vec::new(), Arc::new(NullSink), false));
        let front = Front::new(keeper.engine.clone(), session.session_id(), hooks);

        let (path, created) = front
            .write(Create {
                path: "/a".into(),
                data: Some(b"1".to_vec()),
                options: CreateOptions::new(CreateMode::Persistent),
            })
            .unwrap();
        assert_eq!((path.as_str(), created.version), ("/a", 0));

        let answers = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = answers.clone();
        front.submit(
            SetData {
                path: "/a".into(),
                data: Some(b"2".to_vec()),
                version: 0,
            },
            move |result, zxid| {
                seen.lock()
                    .push((result.map(|s| (s.version, s.mzxid)), zxid))
            },
        );
        let set = answers
            .lock()
            .pop()
            .expect("in memory, done before submit returns");
        assert_eq!(set.0.unwrap(), (1, set.1));

        let results = Arc::new(parking_lot::Mutex::new(None));
        let seen = results.clone();
        front.submit(
            Multi(vec![Op::check("/a", 1), Op::delete("/a", 1)]),
            move |result, _| *seen.lock() = Some(result.unwrap()),
        );
        assert_eq!(
            results.lock().take(),
            Some(vec![OpResult::Check, OpResult::Delete])
        );
        assert_eq!(
            front.write(Multi(vec![Op::delete("/a", -1)])).unwrap(),
            vec![OpResult::Error(ErrorKind::NoNode)]
        );
        let missing = front.write(Delete {
            path: "/a".into(),
            version: -1,
        });
        assert_eq!(missing.unwrap_err().kind(), ErrorKind::NoNode);
    }

    #[test]
    fn multi_results_keep_their_shape() {
        let stat = Stat::default();
        let applied = Written::Multi(Ok(vec![
            OpOutcome::Created("/a".into(), stat),
            OpOutcome::Deleted,
            OpOutcome::DataSet(stat),
            OpOutcome::Checked,
        ]));
        assert_eq!(
            Multi::output(4, applied),
            Some(vec![
                OpResult::Create {
                    path: "/a".into(),
                    stat
                },
                OpResult::Delete,
                OpResult::SetData { stat },
                OpResult::Check,
            ])
        );
        let failed = Written::Multi(Err((0, Error::new(ErrorKind::NodeExists))));
        assert_eq!(
            Multi::output(2, failed),
            Some(vec![
                OpResult::Error(ErrorKind::NodeExists),
                OpResult::Error(ErrorKind::RuntimeInconsistency),
            ])
        );
        assert_eq!(Multi::output(1, Written::Closed), None);
    }
}
