//! The JSON dump format (`innkeeper dump`, `innkeeper load`, `serve --load`)
//! and the two walks that write and read it, both over `Coordinator` so they
//! work against any ZooKeeper server, an offline data directory or an
//! in-process keeper.
//!
//! The format, version 1:
//!
//! ```json
//! { "format": "innkeeper-dump", "version": 1, "root": "/app",
//!   "nodes": [ { "path": "/app", "data": "aGVsbG8=", "kind": "persistent",
//!                "acl": [ { "perms": "cdrwa", "scheme": "world", "id": "anyone" } ],
//!                "stat": { "czxid": 2, … } } ] }
//! ```
//!
//! * `nodes` are in pre-order (a parent before its children, siblings
//!   sorted), so a load can create them in file order;
//! * `data` is base64 (standard alphabet, padded): any bytes survive;
//! * `kind` is `persistent`, `ephemeral` (with `ephemeral_owner`, hex),
//!   `container` or `ttl` (with `ttl_ms`). Over the wire ZooKeeper reports
//!   containers and TTL nodes as plain persistent ones, so only dumps of a
//!   data directory (or of an in-process keeper) can name those two kinds;
//! * `stat` is for reference: a load cannot recreate zxids or times;
//! * ZooKeeper's own `/zookeeper` subtree is never dumped.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use innkeeper::{
    Acl, Coordinator, CreateMode, CreateOptions, Error, ErrorKind, Id, Perms, ReadOp, ReadResult,
    Stat,
};
use serde::{Deserialize, Serialize};

/// The value of `format`.
pub const FORMAT: &str = "innkeeper-dump";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// A whole dump file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dump {
    pub format: String,
    pub version: u32,
    /// The path the dump was taken at.
    pub root: String,
    pub nodes: Vec<DumpNode>,
}

/// One node of a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpNode {
    pub path: String,
    /// The data, base64.
    pub data: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<i64>,
    /// The owning session of an ephemeral, as hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_owner: Option<String>,
    pub acl: Vec<DumpAcl>,
    /// For reference only; a load does not restore it.
    pub stat: Stat,
}

/// A node kind, as far as the source can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Persistent,
    Ephemeral,
    Container,
    Ttl,
}

/// One ACL entry; `perms` in zkCli's letters (`cdrwa`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpAcl {
    pub perms: String,
    pub scheme: String,
    pub id: String,
}

impl DumpAcl {
    fn from_acl(acl: &Acl) -> DumpAcl {
        DumpAcl {
            perms: perms_letters(acl.perms),
            scheme: acl.id.scheme.clone(),
            id: acl.id.id.clone(),
        }
    }

    fn to_acl(&self) -> Result<Acl, Error> {
        let mut perms = 0;
        for c in self.perms.chars() {
            perms |= match c {
                'r' => Perms::READ.0,
                'w' => Perms::WRITE.0,
                'c' => Perms::CREATE.0,
                'd' => Perms::DELETE.0,
                'a' => Perms::ADMIN.0,
                _ => {
                    return Err(Error::new(ErrorKind::BadArguments)
                        .detail(format!("bad ACL permissions {:?}", self.perms)))
                }
            };
        }
        Ok(Acl::new(
            Perms(perms),
            Id::new(self.scheme.clone(), self.id.clone()),
        ))
    }
}

/// Permission bits as zkCli prints them: `cdrwa` order.
pub fn perms_letters(perms: Perms) -> String {
    [
        (Perms::CREATE, 'c'),
        (Perms::DELETE, 'd'),
        (Perms::READ, 'r'),
        (Perms::WRITE, 'w'),
        (Perms::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(p, _)| perms.contains(*p))
    .map(|(_, c)| *c)
    .collect()
}

/// ZooKeeper's own subtree, never dumped nor loaded.
pub fn is_system(path: &str) -> bool {
    path == "/zookeeper" || path.starts_with("/zookeeper/")
}

/// `parent` + `/` + `name`, without doubling the root's slash.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style = if len.is_some() {
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} nodes ({per_sec})")
    } else {
        ProgressStyle::with_template("{spinner} {msg} {pos} nodes ({per_sec})")
    };
    if let Ok(style) = style {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Every path of the subtree at `root` (the root included), in pre-order
/// with sorted siblings, `/zookeeper` left out unless `system`. `each` sees
/// each path as it is found.
pub fn walk(
    c: &dyn Coordinator,
    root: &str,
    system: bool,
    mut each: impl FnMut(&str, &[String]) -> Result<(), Error>,
) -> Result<(), Error> {
    // An explicit stack: deep trees must not overflow ours.
    let mut stack = vec![root.to_string()];
    while let Some(path) = stack.pop() {
        let mut children = match c.get_children(&path) {
            Ok(children) => children,
            // Deleted while we walked: skip it, as a concurrent delete would.
            Err(e) if e.kind() == ErrorKind::NoNode && path != root => continue,
            Err(e) => return Err(e),
        };
        children.sort();
        if !system {
            children.retain(|name| !is_system(&join(&path, name)));
        }
        each(&path, &children)?;
        for name in children.iter().rev() {
            stack.push(join(&path, name));
        }
    }
    Ok(())
}

/// Reads the subtree at `root` into a dump. `owner_of` tells the stored
/// ephemeral owner where the source knows it (an offline directory), which
/// names containers and TTL nodes.
pub fn take(
    c: &dyn Coordinator,
    root: &str,
    owner_of: &dyn Fn(&str) -> Option<i64>,
) -> Result<Dump, Error> {
    let total = c.get_all_children_number(root).ok().map(|n| n + 1);
    let bar = progress(total, "dumping");
    let mut nodes = Vec::new();
    // One multiRead (children and data) and one getACL per node.
    let mut stack = vec![root.to_string()];
    while let Some(path) = stack.pop() {
        let read = c.multi_read(&[
            ReadOp::GetChildren(path.clone()),
            ReadOp::GetData(path.clone()),
        ])?;
        let (mut children, data, stat) = match read.as_slice() {
            [ReadResult::Children(children), ReadResult::Data(data, stat)] => {
                (children.clone(), data.clone().unwrap_or_default(), *stat)
            }
            [ReadResult::Error(kind), ..] | [_, ReadResult::Error(kind)] => {
                // Deleted while we walked: skip it, as a concurrent delete would.
                if *kind == ErrorKind::NoNode && path != root {
                    continue;
                }
                return Err(Error::with_path(*kind, path));
            }
            _ => {
                return Err(Error::with_path(ErrorKind::MarshallingError, path)
                    .detail("unexpected multiRead reply"))
            }
        };
        children.sort();
        children.retain(|name| !is_system(&join(&path, name)));
        for name in children.iter().rev() {
            stack.push(join(&path, name));
        }
        if path == "/" {
            continue;
        }
        let acl = match c.get_acl(&path) {
            Ok((acl, _)) => acl,
            Err(e) if e.kind() == ErrorKind::NoNode => continue,
            Err(e) => return Err(e),
        };
        let owner = owner_of(&path).unwrap_or(stat.ephemeral_owner);
        let (kind, ttl_ms, ephemeral_owner) = kind_of(owner);
        nodes.push(DumpNode {
            path,
            data: base64::engine::general_purpose::STANDARD.encode(&data),
            kind,
            ttl_ms,
            ephemeral_owner,
            acl: acl.iter().map(DumpAcl::from_acl).collect(),
            stat,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Dump {
        format: FORMAT.to_string(),
        version: VERSION,
        root: root.to_string(),
        nodes,
    })
}

/// Decodes ZooKeeper's stored ephemeral owner (`EphemeralType`).
fn kind_of(owner: i64) -> (Kind, Option<i64>, Option<String>) {
    const CONTAINER: i64 = i64::MIN;
    const TTL_MARKER: u64 = 0xFF00_0000_0000_0000;
    const TTL_MASK: i64 = 0xFF_FFFF_FFFF;
    if owner == 0 {
        (Kind::Persistent, None, None)
    } else if owner == CONTAINER {
        (Kind::Container, None, None)
    } else if (owner as u64) & 0xFF00_0000_0000_0000 == TTL_MARKER {
        (Kind::Ttl, Some(owner & TTL_MASK), None)
    } else {
        (Kind::Ephemeral, None, Some(format!("{owner:#x}")))
    }
}

/// Parses and checks a dump file's text.
pub fn parse(text: &str, source: &str) -> Result<Dump, Error> {
    let dump: Dump = serde_json::from_str(text).map_err(|e| {
        Error::new(ErrorKind::BadArguments).detail(format!("{source}: not a dump: {e}"))
    })?;
    if dump.format != FORMAT || dump.version != VERSION {
        return Err(Error::new(ErrorKind::BadArguments).detail(format!(
            "{source}: format {:?} version {} (this build reads {FORMAT:?} version {VERSION})",
            dump.format, dump.version
        )));
    }
    Ok(dump)
}

/// What a load did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub created: usize,
    pub existing: usize,
    pub ephemerals: usize,
}

/// Recreates the dump's nodes, the dump's root moved to `at` (default: where
/// it was). Ephemeral nodes are skipped: their sessions do not exist here.
/// With `skip_existing` a node that exists already is left as it is;
/// otherwise it is a `NodeExists` error. Nodes are created with the open ACL
/// and get their own ACL once the whole tree exists, so a restrictive ACL on
/// a parent does not stop its children from being created.
pub fn load(
    c: &dyn Coordinator,
    dump: &Dump,
    at: Option<&str>,
    skip_existing: bool,
) -> Result<Loaded, Error> {
    let bar = progress(Some(dump.nodes.len() as u64), "loading");
    let mut loaded = Loaded::default();
    let mut acls: Vec<(String, Vec<Acl>)> = Vec::new();
    let open = Acl::open_unsafe();
    for node in &dump.nodes {
        bar.inc(1);
        let target = rebase(&node.path, &dump.root, at)?;
        if target == "/" || is_system(&target) {
            continue;
        }
        if node.kind == Kind::Ephemeral {
            loaded.ephemerals += 1;
            continue;
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(&node.data)
            .map_err(|e| {
                Error::with_path(ErrorKind::BadArguments, node.path.clone())
                    .detail(format!("data is not base64: {e}"))
            })?;
        let options = match node.kind {
            Kind::Container => CreateOptions::new(CreateMode::Container),
            Kind::Ttl => CreateOptions::new(CreateMode::PersistentWithTtl).ttl(
                Duration::from_millis(u64::try_from(node.ttl_ms.unwrap_or(0)).unwrap_or(0)),
            ),
            Kind::Persistent | Kind::Ephemeral => CreateOptions::new(CreateMode::Persistent),
        };
        if loaded.created == 0 && loaded.existing == 0 {
            if let Some((parent, _)) = target.rsplit_once('/') {
                if !parent.is_empty() {
                    c.create_all(parent)?;
                }
            }
        }
        match c.create_with(&target, Some(&data), &options) {
            Ok(_) => {
                loaded.created += 1;
                let acl = node
                    .acl
                    .iter()
                    .map(DumpAcl::to_acl)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Error::with_path(e.kind(), target.clone()))?;
                if acl != open {
                    acls.push((target, acl));
                }
            }
            Err(e) if e.kind() == ErrorKind::NodeExists && skip_existing => loaded.existing += 1,
            Err(e) => return Err(with_path(e, &target)),
        }
    }
    // Deepest first, so no ACL is set on a node before its children exist.
    for (path, acl) in acls.iter().rev() {
        c.set_acl(path, acl, -1).map_err(|e| with_path(e, path))?;
    }
    bar.finish_and_clear();
    Ok(loaded)
}

/// `path` (under `root`) moved under `at`.
fn rebase(path: &str, root: &str, at: Option<&str>) -> Result<String, Error> {
    let Some(at) = at else {
        return Ok(path.to_string());
    };
    let rest = if root == "/" {
        Some(path)
    } else if path == root {
        Some("")
    } else {
        path.strip_prefix(root).filter(|r| r.starts_with('/'))
    };
    let Some(rest) = rest else {
        return Err(Error::with_path(ErrorKind::BadArguments, path.to_string())
            .detail(format!("not under the dump's root {root}")));
    };
    Ok(match (at, rest) {
        (at, "") => at.to_string(),
        ("/", rest) => rest.to_string(),
        (at, rest) => format!("{at}{rest}"),
    })
}

/// The error, naming `path` when it names none.
pub fn with_path(e: Error, path: &str) -> Error {
    if e.path().is_some() {
        return e;
    }
    let mut out = Error::with_path(e.kind(), path.to_string());
    if let Some(detail) = e.detail_message() {
        out = out.detail(detail.to_string());
    }
    out
}

/// Every descendant of `root`, sorted (`ls -R`); ZooKeeper's own
/// `/zookeeper` subtree only if `system`.
pub fn descendants(c: &dyn Coordinator, root: &str, system: bool) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut queue = VecDeque::from([root.to_string()]);
    while let Some(path) = queue.pop_front() {
        let children = match c.get_children(&path) {
            Ok(children) => children,
            Err(e) if e.kind() == ErrorKind::NoNode && path != root => continue,
            Err(e) => return Err(e),
        };
        for name in children {
            let child = join(&path, &name);
            if !system && is_system(&child) {
                continue;
            }
            out.push(child.clone());
            queue.push_back(child);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_moves_the_root() {
        assert_eq!(rebase("/a/b", "/a", Some("/x")).unwrap(), "/x/b");
        assert_eq!(rebase("/a", "/a", Some("/x")).unwrap(), "/x");
        assert_eq!(rebase("/a/b", "/", Some("/x")).unwrap(), "/x/a/b");
        assert_eq!(rebase("/a/b", "/a", Some("/")).unwrap(), "/b");
        assert_eq!(rebase("/a/b", "/a", None).unwrap(), "/a/b");
        assert!(rebase("/ab", "/a", Some("/x")).is_err());
    }

    #[test]
    fn kinds_decode_zookeepers_owner_encoding() {
        assert_eq!(kind_of(0).0, Kind::Persistent);
        assert_eq!(kind_of(i64::MIN).0, Kind::Container);
        assert_eq!(
            kind_of(0xFF00_0000_0000_03E8_u64 as i64),
            (Kind::Ttl, Some(1000), None)
        );
        assert_eq!(kind_of(0x1234).2.as_deref(), Some("0x1234"));
        assert_eq!(perms_letters(Perms::ALL), "cdrwa");
        assert_eq!(perms_letters(Perms::READ), "r");
    }
}
