//! The replicated state (tree, sessions, last zxid) and the one function
//! that applies a [`Txn`] to it.
//!
//! Applying is deterministic: the same txns in the same order give the same
//! state, which is what lets the store replay them after a crash.

use std::sync::Arc;

use crate::change::Change;
use crate::node::{Acl, Stat};
use crate::session::SessionTable;
use crate::tree::Tree;
use crate::txn::{Txn, TxnOp};

/// Everything a txn can change.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// The namespace.
    pub tree: Tree,
    /// The sessions.
    pub sessions: SessionTable,
    /// zxid of the last applied txn.
    pub last_zxid: i64,
}

/// What one applied op produced, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpOutcome {
    /// A node was created at this path.
    Created(String, Stat),
    /// A node was deleted.
    Deleted,
    /// Data was set; the new Stat.
    DataSet(Stat),
    /// An ACL was set; the new Stat.
    AclSet(Stat),
    /// A check passed.
    Checked,
    /// A session was created or closed.
    Session,
}

/// The result of applying one txn.
#[derive(Debug, Clone, Default)]
pub(crate) struct Applied {
    /// Per-op outcomes (one for a single op, one per op of a multi).
    pub outcomes: Vec<OpOutcome>,
    /// Node changes in apply order, for the watch table.
    pub changes: Vec<Change>,
    /// ACLs of the nodes deleted, so watch delivery can still check READ.
    pub deleted_acls: Vec<(String, Arc<[Acl]>)>,
}

impl State {
    /// A fresh state: system nodes only, no sessions, zxid 0.
    pub(crate) fn new() -> State {
        State {
            tree: Tree::new(),
            sessions: SessionTable::new(),
            last_zxid: 0,
        }
    }

    /// A state rebuilt from a snapshot: the tree, sessions and zxid it
    /// recorded. This is construction, not mutation: after it (and after
    /// [`State::new`]) only [`State::apply`] changes a state.
    pub(crate) fn restore(tree: Tree, sessions: SessionTable, last_zxid: i64) -> State {
        State {
            tree,
            sessions,
            last_zxid,
        }
    }

    /// Applies a txn. A txn that was prepared against this state always
    /// applies in full; an op whose precondition does not hold (which only a
    /// bug or a damaged log can cause) is skipped and reported as an error
    /// string, never a panic.
    pub(crate) fn apply(&mut self, txn: &Txn) -> Result<Applied, String> {
        if txn.zxid <= self.last_zxid {
            return Err(format!(
                "zxid {:#x} not after {:#x}",
                txn.zxid, self.last_zxid
            ));
        }
        self.last_zxid = txn.zxid;
        let mut applied = Applied::default();
        let mut problem = None;
        self.apply_op(txn, &txn.op, &mut applied, &mut problem);
        match problem {
            None => Ok(applied),
            Some(p) => Err(p),
        }
    }

    fn apply_op(
        &mut self,
        txn: &Txn,
        op: &TxnOp,
        applied: &mut Applied,
        problem: &mut Option<String>,
    ) {
        let zxid = txn.zxid;
        match op {
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                password,
            } => {
                self.sessions.add(*session_id, *timeout_ms, *password);
                applied.outcomes.push(OpOutcome::Session);
            }
            TxnOp::CloseSession {
                session_id,
                ephemerals,
            } => {
                for p in ephemerals {
                    if let Some(acl) = self.tree.remove(p, zxid) {
                        applied.deleted_acls.push((p.clone(), acl));
                        applied.changes.push(Change::Deleted(p.clone()));
                    } else {
                        problem.get_or_insert_with(|| format!("close: ephemeral {p} missing"));
                    }
                }
                self.sessions.remove(*session_id);
                applied.outcomes.push(OpOutcome::Session);
            }
            TxnOp::Create(create) => {
                let created = self.tree.create(
                    &create.path,
                    create.data.as_deref(),
                    &create.acl,
                    create.owner,
                    zxid,
                    txn.time_ms,
                );
                if let Some(stat) = created {
                    applied.changes.push(Change::Created(create.path.clone()));
                    applied
                        .outcomes
                        .push(OpOutcome::Created(create.path.clone(), stat));
                } else {
                    problem.get_or_insert_with(|| format!("create {} failed", create.path));
                }
            }
            TxnOp::Delete { path } => {
                if let Some(acl) = self.tree.remove(path, zxid) {
                    applied.deleted_acls.push((path.clone(), acl));
                    applied.changes.push(Change::Deleted(path.clone()));
                    applied.outcomes.push(OpOutcome::Deleted);
                } else {
                    problem.get_or_insert_with(|| format!("delete {path} failed"));
                }
            }
            TxnOp::SetData { path, data } => {
                match self.tree.set_data(path, data.as_deref(), zxid, txn.time_ms) {
                    Some(stat) => {
                        applied.changes.push(Change::DataChanged(path.clone()));
                        applied.outcomes.push(OpOutcome::DataSet(stat));
                    }
                    None => {
                        problem.get_or_insert_with(|| format!("set-data {path}: no node"));
                    }
                }
            }
            TxnOp::SetAcl { path, acl } => match self.tree.set_acl(path, acl) {
                Some(stat) => applied.outcomes.push(OpOutcome::AclSet(stat)),
                None => {
                    problem.get_or_insert_with(|| format!("set-acl {path}: no node"));
                }
            },
            TxnOp::Check { .. } => applied.outcomes.push(OpOutcome::Checked),
            TxnOp::SessionTimeout {
                session_id,
                timeout_ms,
            } => {
                if self.sessions.set_timeout(*session_id, *timeout_ms) {
                    applied.outcomes.push(OpOutcome::Session);
                } else {
                    problem.get_or_insert_with(|| {
                        format!("session-timeout: no session {session_id:#x}")
                    });
                }
            }
            TxnOp::Multi(ops) => {
                for op in ops {
                    self.apply_op(txn, op, applied, problem);
                }
            }
        }
    }

    /// Checks the tree's invariants and that every ephemeral's owner is a
    /// known session.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        self.tree.check_invariants(self.last_zxid)?;
        for owner in self.tree.ephemeral_owners() {
            if self.sessions.get(owner).is_none() {
                return Err(format!("ephemerals owned by unknown session {owner:#x}"));
            }
        }
        Ok(())
    }
}
