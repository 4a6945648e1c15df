//! Request + state → [`TxnOp`] or a typed error. Mutates nothing shared.
//!
//! Validation follows ZooKeeper's check order (`docs/zookeeper-semantics.md` A.4
//! and F.2): the first failing check decides the error. Requests are checked
//! against a [`View`]: the applied tree plus an overlay of every change
//! already prepared but not yet applied (earlier ops of the same multi, or
//! earlier writes of the same group commit), as ZooKeeper's outstanding
//! change records do.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::liveness::Liveness;
use crate::node::{digest_id, Acl, CreateMode, Id, Perms};
use crate::path;
use crate::session::SessionTable;
use crate::tree::{NodeKind, Tree, TTL_MAX_MS};
use crate::txn::{CreateTxn, TxnOp};

/// Limits and switches prep enforces.
#[derive(Debug, Clone)]
pub(crate) struct PrepConfig {
    /// Largest data accepted, in bytes.
    pub data_bytes_max: usize,
    /// Whether TTL nodes may be created (ZooKeeper's extended types).
    pub extended_types: bool,
}

/// One write op of a request or a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteOp {
    /// Create a node.
    Create {
        /// Path (or prefix, for sequential modes).
        path: String,
        /// Data.
        data: Option<Vec<u8>>,
        /// ACL as the client sent it.
        acl: Vec<Acl>,
        /// Mode.
        mode: CreateMode,
        /// TTL in ms for the TTL modes (ignored otherwise).
        ttl_ms: i64,
    },
    /// Delete a node.
    Delete {
        /// Path.
        path: String,
        /// Expected version, −1 for any.
        version: i32,
    },
    /// Set a node's data.
    SetData {
        /// Path.
        path: String,
        /// New data.
        data: Option<Vec<u8>>,
        /// Expected version, −1 for any.
        version: i32,
    },
    /// Set a node's ACL.
    SetAcl {
        /// Path.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// Expected aversion, −1 for any.
        version: i32,
    },
    /// Check a node's version (multi only).
    Check {
        /// Path.
        path: String,
        /// Expected version, −1 for any.
        version: i32,
    },
}

/// Who asks: the session and its identities.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    /// The session.
    pub session_id: i64,
    /// Identities from auth (and `ip:` for wire clients).
    pub identities: &'a [Id],
}

/// What prep needs to know of a node.
#[derive(Debug, Clone)]
struct Meta {
    version: i32,
    aversion: i32,
    creates: i32,
    num_children: i32,
    owner: i64,
    acl: Arc<[Acl]>,
}

/// The applied state plus changes prepared but not yet applied.
#[derive(Debug, Clone)]
pub(crate) struct View<'a> {
    tree: &'a Tree,
    sessions: &'a SessionTable,
    liveness: &'a Liveness,
    nodes: HashMap<String, Option<Meta>>,
    ephemerals_added: HashMap<i64, BTreeSet<String>>,
    ephemerals_removed: HashSet<String>,
    closed: HashSet<i64>,
    opened: HashSet<i64>,
}

impl<'a> View<'a> {
    /// A view of the applied state with nothing pending.
    pub(crate) fn new(
        tree: &'a Tree,
        sessions: &'a SessionTable,
        liveness: &'a Liveness,
    ) -> View<'a> {
        View {
            tree,
            sessions,
            liveness,
            nodes: HashMap::new(),
            ephemerals_added: HashMap::new(),
            ephemerals_removed: HashSet::new(),
            closed: HashSet::new(),
            opened: HashSet::new(),
        }
    }

    fn meta(&self, path: &str) -> Option<Meta> {
        if let Some(pending) = self.nodes.get(path) {
            return pending.clone();
        }
        self.tree.get(path).map(|n| Meta {
            version: n.version,
            aversion: n.aversion,
            creates: n.creates,
            num_children: i32::try_from(n.num_children()).unwrap_or(i32::MAX),
            owner: n.owner,
            acl: n.acl().clone(),
        })
    }

    /// True when the session may issue requests in this view.
    pub(crate) fn session_live(&self, session_id: i64) -> bool {
        !self.closed.contains(&session_id)
            && (self.opened.contains(&session_id)
                || (self.sessions.get(session_id).is_some()
                    && !self.liveness.is_closing(session_id)))
    }

    /// Notes a session opened by a txn prepared in this view.
    pub(crate) fn open_session(&mut self, session_id: i64) {
        self.opened.insert(session_id);
        self.closed.remove(&session_id);
    }

    fn record_create(&mut self, path: &str, meta: Meta) {
        let parent = path::parent(path);
        if let Some(mut p) = self.meta(parent) {
            p.creates = p.creates.wrapping_add(1);
            p.num_children += 1;
            self.nodes.insert(parent.to_string(), Some(p));
        }
        if let NodeKind::Ephemeral(session_id) = NodeKind::from_owner(meta.owner) {
            self.ephemerals_added
                .entry(session_id)
                .or_default()
                .insert(path.to_string());
        }
        self.nodes.insert(path.to_string(), Some(meta));
    }

    fn record_delete(&mut self, path: &str, owner: i64) {
        let parent = path::parent(path);
        if let Some(mut p) = self.meta(parent) {
            p.num_children -= 1;
            self.nodes.insert(parent.to_string(), Some(p));
        }
        if let NodeKind::Ephemeral(session_id) = NodeKind::from_owner(owner) {
            let added = self.ephemerals_added.get_mut(&session_id);
            if !added.is_some_and(|set| set.remove(path)) {
                self.ephemerals_removed.insert(path.to_string());
            }
        }
        self.nodes.insert(path.to_string(), None);
    }

    /// Prepares one write op and records its effect in the view.
    pub(crate) fn prep_op(
        &mut self,
        caller: Caller<'_>,
        config: &PrepConfig,
        op: &WriteOp,
    ) -> Result<TxnOp> {
        if !self.session_live(caller.session_id) {
            return Err(Error::new(ErrorKind::SessionExpired));
        }
        match op {
            WriteOp::Create {
                path,
                data,
                acl,
                mode,
                ttl_ms,
            } => self.prep_create(caller, config, path, data, acl, *mode, *ttl_ms),
            WriteOp::Delete { path, version } => self.prep_delete(caller, path, *version),
            WriteOp::SetData {
                path,
                data,
                version,
            } => {
                check_data(config, path, data)?;
                path::validate(path)?;
                let mut meta = self.existing(path)?;
                require(&meta.acl, Perms::WRITE, caller, path)?;
                check_version(meta.version, *version, path)?;
                meta.version = meta.version.wrapping_add(1);
                self.nodes.insert(path.clone(), Some(meta));
                Ok(TxnOp::SetData {
                    path: path.clone(),
                    data: data.clone(),
                })
            }
            WriteOp::SetAcl { path, acl, version } => {
                path::validate(path)?;
                let acl = fixup_acl(acl, caller).map_err(|e| e.or_path(path))?;
                let mut meta = self.existing(path)?;
                require(&meta.acl, Perms::ADMIN, caller, path)?;
                check_version(meta.aversion, *version, path)?;
                meta.aversion = meta.aversion.wrapping_add(1);
                meta.acl = Arc::from(acl.clone());
                self.nodes.insert(path.clone(), Some(meta));
                Ok(TxnOp::SetAcl {
                    path: path.clone(),
                    acl,
                })
            }
            WriteOp::Check { path, version } => {
                path::validate(path)?;
                let meta = self.existing(path)?;
                require(&meta.acl, Perms::READ, caller, path)?;
                check_version(meta.version, *version, path)?;
                Ok(TxnOp::Check { path: path.clone() })
            }
        }
    }

    fn existing(&self, path: &str) -> Result<Meta> {
        self.meta(path)
            .ok_or_else(|| Error::with_path(ErrorKind::NoNode, path))
    }

    #[allow(clippy::too_many_arguments)]
    fn prep_create(
        &mut self,
        caller: Caller<'_>,
        config: &PrepConfig,
        requested: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<TxnOp> {
        check_data(config, requested, data)?;
        if mode.is_ttl() {
            if !config.extended_types {
                return Err(Error::with_path(ErrorKind::Unimplemented, requested)
                    .detail("TTL nodes need extended types"));
            }
            if !(1..=TTL_MAX_MS).contains(&ttl_ms) {
                return Err(Error::with_path(ErrorKind::BadArguments, requested)
                    .detail(format!("ttl {ttl_ms} ms outside 1..={TTL_MAX_MS}")));
            }
        }
        if !requested.starts_with('/') || requested.contains('\0') {
            return Err(path::validate(requested)
                .err()
                .unwrap_or_else(|| Error::with_path(ErrorKind::InvalidPath, requested)));
        }
        let acl = fixup_acl(acl, caller).map_err(|e| e.or_path(requested))?;
        let parent_path = path::parent(requested);
        let parent = self
            .meta(parent_path)
            .ok_or_else(|| Error::with_path(ErrorKind::NoNode, requested))?;
        require(&parent.acl, Perms::CREATE, caller, requested)?;
        let final_path = if mode.is_sequential() {
            path::validate_sequential_prefix(requested)?;
            path::sequential_name(requested, parent.creates)
        } else {
            path::validate(requested)?;
            requested.to_string()
        };
        if self.meta(&final_path).is_some() {
            return Err(Error::with_path(ErrorKind::NodeExists, final_path));
        }
        if let NodeKind::Ephemeral(_) = NodeKind::from_owner(parent.owner) {
            return Err(Error::with_path(
                ErrorKind::NoChildrenForEphemerals,
                final_path,
            ));
        }
        let kind = match mode {
            CreateMode::Ephemeral | CreateMode::EphemeralSequential => {
                NodeKind::Ephemeral(caller.session_id)
            }
            CreateMode::Container => NodeKind::Container,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl => {
                NodeKind::Ttl(ttl_ms)
            }
            CreateMode::Persistent | CreateMode::PersistentSequential => NodeKind::Persistent,
        };
        let owner = kind.owner();
        self.record_create(
            &final_path,
            Meta {
                version: 0,
                aversion: 0,
                creates: 0,
                num_children: 0,
                owner,
                acl: Arc::from(acl.clone()),
            },
        );
        Ok(TxnOp::Create(CreateTxn {
            path: final_path,
            data: data.clone(),
            acl,
            owner,
        }))
    }

    fn prep_delete(&mut self, caller: Caller<'_>, path: &str, version: i32) -> Result<TxnOp> {
        if Tree::is_system(path) || !path.starts_with('/') || path.contains('\0') {
            return Err(Error::with_path(ErrorKind::BadArguments, path)
                .detail("system nodes and malformed paths cannot be deleted"));
        }
        let parent = self
            .meta(path::parent(path))
            .ok_or_else(|| Error::with_path(ErrorKind::NoNode, path))?;
        require(&parent.acl, Perms::DELETE, caller, path)?;
        let meta = self.existing(path)?;
        check_version(meta.version, version, path)?;
        if meta.num_children > 0 {
            return Err(Error::with_path(ErrorKind::NotEmpty, path));
        }
        self.record_delete(path, meta.owner);
        Ok(TxnOp::Delete {
            path: path.to_string(),
        })
    }

    /// Prepares a multi: every op in order against the effects of the ones
    /// before. On failure the view is rolled back and the error names the
    /// index of the failing op.
    pub(crate) fn prep_multi(
        &mut self,
        caller: Caller<'_>,
        config: &PrepConfig,
        ops: &[WriteOp],
    ) -> std::result::Result<TxnOp, (usize, Error)> {
        let saved = self.clone();
        let mut txns = Vec::with_capacity(ops.len());
        for (idx, op) in ops.iter().enumerate() {
            match self.prep_op(caller, config, op) {
                Ok(txn) => txns.push(txn),
                Err(e) => {
                    *self = saved;
                    return Err((idx, e));
                }
            }
        }
        Ok(TxnOp::Multi(txns))
    }

    /// Prepares the close of a session: its ephemerals (applied and pending)
    /// are deleted, and later requests of the session fail.
    pub(crate) fn prep_close(&mut self, session_id: i64) -> TxnOp {
        let mut ephemerals: BTreeSet<String> = self
            .tree
            .ephemerals_of(session_id)
            .filter(|p| !self.ephemerals_removed.contains(*p))
            .cloned()
            .collect();
        if let Some(added) = self.ephemerals_added.get(&session_id) {
            ephemerals.extend(added.iter().cloned());
        }
        let ephemerals: Vec<String> = ephemerals.into_iter().collect();
        for p in &ephemerals {
            if let Some(meta) = self.meta(p) {
                self.record_delete(p, meta.owner);
            }
        }
        self.closed.insert(session_id);
        self.opened.remove(&session_id);
        TxnOp::CloseSession {
            session_id,
            ephemerals,
        }
    }

    /// Prepares the reaper's delete of a container or TTL node; `None` when
    /// it is gone or has children again (ZooKeeper skips those).
    pub(crate) fn prep_reap(&mut self, path: &str) -> Option<TxnOp> {
        let meta = self.meta(path)?;
        if meta.num_children > 0 {
            return None;
        }
        self.record_delete(path, meta.owner);
        Some(TxnOp::Delete {
            path: path.to_string(),
        })
    }
}

fn check_data(config: &PrepConfig, path: &str, data: &Option<Vec<u8>>) -> Result<()> {
    let len = data.as_ref().map_or(0, Vec::len);
    if len > config.data_bytes_max {
        return Err(Error::with_path(ErrorKind::DataTooLarge, path)
            .detail(format!("{len} bytes, limit {}", config.data_bytes_max)));
    }
    Ok(())
}

fn check_version(current: i32, expected: i32, path: &str) -> Result<()> {
    if expected != -1 && expected != current {
        return Err(Error::with_path(ErrorKind::BadVersion, path)
            .detail(format!("expected {expected}, is {current}")));
    }
    Ok(())
}

fn require(acl: &[Acl], perm: Perms, caller: Caller<'_>, path: &str) -> Result<()> {
    if check_acl(acl, perm, caller.identities) {
        Ok(())
    } else {
        Err(Error::with_path(ErrorKind::NoAuth, path))
    }
}

/// ZooKeeper's ACL check (`docs/zookeeper-semantics.md` G.2): true when some
/// entry granting a bit of `perm` matches one of the identities.
pub(crate) fn check_acl(acl: &[Acl], perm: Perms, identities: &[Id]) -> bool {
    if acl.is_empty() || identities.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter()
        .filter(|entry| entry.perms.intersects(perm))
        .any(|entry| {
            let id = &entry.id;
            if id.scheme == "world" && id.id == "anyone" {
                return true;
            }
            identities.iter().any(|who| {
                who.scheme == id.scheme
                    && match id.scheme.as_str() {
                        "ip" => ip_matches(&id.id, &who.id),
                        _ => who.id == id.id,
                    }
            })
        })
}

/// True when `addr` lies in `pattern` (`a.b.c.d` or `a.b.c.d/bits`, IPv4 or IPv6).
fn ip_matches(pattern: &str, addr: &str) -> bool {
    let Some((net, bits)) = parse_cidr(pattern) else {
        return false;
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
        (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
        _ => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    let mut remaining = bits;
    for (x, y) in a.iter().zip(b) {
        if remaining == 0 {
            return true;
        }
        let take = remaining.min(8);
        let mask = (0xFFu16 << (8 - take)) as u8;
        if x & mask != y & mask {
            return false;
        }
        remaining -= take;
    }
    true
}

fn parse_cidr(pattern: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (pattern, None),
    };
    let addr = addr.parse::<IpAddr>().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

/// ZooKeeper's ACL fix-up (`docs/zookeeper-semantics.md` G.4): drop duplicates,
/// expand `auth`, reject empty lists and invalid ids.
pub(crate) fn fixup_acl(acl: &[Acl], caller: Caller<'_>) -> Result<Vec<Acl>> {
    if acl.is_empty() {
        return Err(Error::new(ErrorKind::InvalidAcl).detail("empty ACL"));
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let push = |entry: Acl, out: &mut Vec<Acl>| {
        if !out.contains(&entry) {
            out.push(entry);
        }
    };
    for entry in acl {
        let id = &entry.id;
        match id.scheme.as_str() {
            "world" if id.id == "anyone" => push(entry.clone(), &mut out),
            "auth" => {
                let mut any = false;
                for who in caller.identities {
                    if who.scheme != "ip" && who.scheme != "world" && who.scheme != "super" {
                        push(Acl::new(entry.perms, who.clone()), &mut out);
                        any = true;
                    }
                }
                if !any {
                    return Err(Error::new(ErrorKind::InvalidAcl)
                        .detail("auth scheme needs an authenticated identity"));
                }
            }
            "digest" if id.id.split(':').count() == 2 => push(entry.clone(), &mut out),
            "ip" if parse_cidr(&id.id).is_some() => push(entry.clone(), &mut out),
            // The SASL and X.509 providers accept any non-empty name (a
            // principal, a certificate subject), as ZooKeeper's do when configured.
            "sasl" | "x509" if !id.id.is_empty() => push(entry.clone(), &mut out),
            _ => {
                return Err(Error::new(ErrorKind::InvalidAcl)
                    .detail(format!("invalid id {}:{}", id.scheme, id.id)))
            }
        }
    }
    Ok(out)
}

/// The identity a digest auth of `user:password` adds (never fails).
pub(crate) fn digest_identity(credential: &str) -> Id {
    let (user, password) = credential.split_once(':').unwrap_or((credential, ""));
    Id::new("digest", digest_id(user, password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    fn config() -> PrepConfig {
        PrepConfig {
            data_bytes_max: 16,
            extended_types: true,
        }
    }

    fn create(path: &str, mode: CreateMode) -> WriteOp {
        WriteOp::Create {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            mode,
            ttl_ms: 0,
        }
    }

    fn state_with_session() -> State {
        let mut state = State::new();
        state.sessions.add(7, 10_000, [0; 16]);
        state
    }

    const CALLER: Caller<'static> = Caller {
        session_id: 7,
        identities: &[],
    };

    fn kind(r: Result<TxnOp>) -> ErrorKind {
        r.unwrap_err().kind()
    }

    #[test]
    fn create_check_order() {
        // Reference: docs/zookeeper-semantics.md A.4 and J.17.
        let state = state_with_session();
        let live = Liveness::new(1000);
        let mut view = View::new(&state.tree, &state.sessions, &live);
        let bad_acl = WriteOp::Create {
            path: "/missing/x".into(),
            data: None,
            acl: vec![],
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        };
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &bad_acl)),
            ErrorKind::InvalidAcl
        );
        let op = create("/missing/x", CreateMode::Persistent);
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &op)),
            ErrorKind::NoNode
        );
        let op = create("/", CreateMode::Persistent);
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &op)),
            ErrorKind::NodeExists
        );
        let ttl = create("/t", CreateMode::PersistentWithTtl);
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &ttl)),
            ErrorKind::BadArguments
        );
        let off = PrepConfig {
            extended_types: false,
            ..config()
        };
        assert_eq!(
            kind(view.prep_op(CALLER, &off, &ttl)),
            ErrorKind::Unimplemented
        );
    }

    #[test]
    fn multi_sees_earlier_ops_and_rolls_back() {
        // Reference: docs/zookeeper-semantics.md E.1.
        let state = state_with_session();
        let live = Liveness::new(1000);
        let mut view = View::new(&state.tree, &state.sessions, &live);
        let ops = vec![
            create("/a", CreateMode::Persistent),
            create("/a/s-", CreateMode::PersistentSequential),
            create("/a/s-", CreateMode::PersistentSequential),
        ];
        let TxnOp::Multi(txns) = view.prep_multi(CALLER, &config(), &ops).unwrap() else {
            panic!("not a multi")
        };
        let paths: Vec<_> = txns
            .iter()
            .map(|t| match t {
                TxnOp::Create(c) => c.path.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(paths, ["/a", "/a/s-0000000000", "/a/s-0000000001"]);

        let live = Liveness::new(1000);
        let mut view = View::new(&state.tree, &state.sessions, &live);
        let ops = vec![
            create("/b", CreateMode::Persistent),
            create("/b", CreateMode::Persistent),
        ];
        let (idx, err) = view.prep_multi(CALLER, &config(), &ops).unwrap_err();
        assert_eq!((idx, err.kind()), (1, ErrorKind::NodeExists));
        let again = view.prep_op(CALLER, &config(), &create("/b", CreateMode::Persistent));
        assert!(again.is_ok(), "the failed multi left nothing behind");
    }

    #[test]
    fn ephemerals_cannot_have_children_and_close_lists_pending_ones() {
        let state = state_with_session();
        let live = Liveness::new(1000);
        let mut view = View::new(&state.tree, &state.sessions, &live);
        view.prep_op(CALLER, &config(), &create("/e", CreateMode::Ephemeral))
            .unwrap();
        let child = create("/e/x", CreateMode::Persistent);
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &child)),
            ErrorKind::NoChildrenForEphemerals
        );
        assert_eq!(
            view.prep_close(7),
            TxnOp::CloseSession {
                session_id: 7,
                ephemerals: vec!["/e".into()]
            }
        );
        let after = create("/f", CreateMode::Persistent);
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &after)),
            ErrorKind::SessionExpired
        );
    }

    #[test]
    fn delete_checks_version_before_children() {
        // Reference: docs/zookeeper-semantics.md F.2 and J.17.
        let state = state_with_session();
        let live = Liveness::new(1000);
        let mut view = View::new(&state.tree, &state.sessions, &live);
        view.prep_op(CALLER, &config(), &create("/a", CreateMode::Persistent))
            .unwrap();
        view.prep_op(CALLER, &config(), &create("/a/b", CreateMode::Persistent))
            .unwrap();
        let del = |version| WriteOp::Delete {
            path: "/a".into(),
            version,
        };
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &del(5))),
            ErrorKind::BadVersion
        );
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &del(0))),
            ErrorKind::NotEmpty
        );
        let sys = WriteOp::Delete {
            path: "/zookeeper".into(),
            version: -1,
        };
        assert_eq!(
            kind(view.prep_op(CALLER, &config(), &sys)),
            ErrorKind::BadArguments
        );
    }

    #[test]
    fn acl_checks_and_fixup() {
        let alice = digest_identity("alice:secret");
        let acl = vec![Acl::new(Perms::READ, alice.clone())];
        assert!(check_acl(&acl, Perms::READ, std::slice::from_ref(&alice)));
        assert!(!check_acl(&acl, Perms::WRITE, std::slice::from_ref(&alice)));
        assert!(!check_acl(&acl, Perms::READ, &[]));
        let net = vec![Acl::new(Perms::ALL, Id::new("ip", "10.1.0.0/16"))];
        assert!(check_acl(&net, Perms::READ, &[Id::new("ip", "10.1.2.3")]));
        assert!(!check_acl(&net, Perms::READ, &[Id::new("ip", "10.2.2.3")]));

        let ids = [Id::new("ip", "127.0.0.1"), alice.clone()];
        let caller = Caller {
            session_id: 1,
            identities: &ids,
        };
        let fixed = fixup_acl(&Acl::creator_all(), caller).unwrap();
        assert_eq!(fixed, vec![Acl::new(Perms::ALL, alice)]);
        let nobody = Caller {
            session_id: 1,
            identities: &ids[..1],
        };
        assert_eq!(
            fixup_acl(&Acl::creator_all(), nobody).unwrap_err().kind(),
            ErrorKind::InvalidAcl
        );
        let bad = vec![Acl::new(Perms::ALL, Id::new("world", "someone"))];
        assert_eq!(
            fixup_acl(&bad, caller).unwrap_err().kind(),
            ErrorKind::InvalidAcl
        );
        // sasl and x509 ids name a principal or a certificate subject.
        let secured = vec![
            Acl::new(Perms::READ, Id::new("sasl", "bob")),
            Acl::new(Perms::ALL, Id::new("x509", "CN=client1,O=innkeeper")),
        ];
        assert_eq!(fixup_acl(&secured, caller).unwrap(), secured);
        for scheme in ["sasl", "x509"] {
            let empty = vec![Acl::new(Perms::ALL, Id::new(scheme, ""))];
            assert_eq!(
                fixup_acl(&empty, caller).unwrap_err().kind(),
                ErrorKind::InvalidAcl
            );
        }
        // An authenticated sasl identity is what `auth` expands to.
        let bob = Id::new("sasl", "bob");
        let with_sasl = [Id::new("ip", "127.0.0.1"), bob.clone()];
        let caller = Caller {
            session_id: 1,
            identities: &with_sasl,
        };
        assert_eq!(
            fixup_acl(&Acl::creator_all(), caller).unwrap(),
            vec![Acl::new(Perms::ALL, bob.clone())]
        );
        assert!(check_acl(&secured, Perms::READ, &[bob]));
        assert!(!check_acl(
            &secured,
            Perms::WRITE,
            &[Id::new("sasl", "bob")]
        ));
        assert!(!check_acl(&secured, Perms::READ, &[Id::new("sasl", "eve")]));
    }
}
