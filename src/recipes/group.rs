//! Group membership: a party of live members, each an ephemeral node with
//! a payload (Curator's `GroupMember`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::util;
use crate::node::CreateMode;
use crate::path;
use crate::{Coordinator, Error, ErrorKind, Result};

/// Membership of one participant in a group. The member is listed while
/// this value lives and its session is alive: leaving, dropping it, or the
/// session ending removes it.
///
/// To follow the group as it changes, use
/// [`TreeCache::children`](super::TreeCache::children) on the group path.
///
/// ```
/// use std::sync::Arc;
/// use innkeeper::recipes::GroupMember;
/// use innkeeper::Keeper;
///
/// let keeper = Keeper::in_memory()?;
/// let ann = GroupMember::join(Arc::new(keeper.session()?), "/party", "ann", b"hello")?;
/// let bob = GroupMember::join(Arc::new(keeper.session()?), "/party", "bob", b"hi")?;
/// assert_eq!(ann.members()?.keys().collect::<Vec<_>>(), ["ann", "bob"]);
/// bob.leave()?;
/// assert_eq!(ann.members()?.len(), 1);
/// # Ok::<(), innkeeper::Error>(())
/// ```
pub struct GroupMember<C: Coordinator + ?Sized> {
    client: Arc<C>,
    group: String,
    id: String,
    node: String,
    left: bool,
}

impl<C: Coordinator + ?Sized> GroupMember<C> {
    /// Joins `group` as `id` with `data`. Fails with `NodeExists` if a
    /// live member already uses `id`.
    pub fn join(client: Arc<C>, group: &str, id: &str, data: &[u8]) -> Result<GroupMember<C>> {
        let group = util::base_path(group)?;
        let node = path::join(&group, id);
        path::validate(&node)?;
        if path::parent(&node) != group {
            return Err(Error::with_path(ErrorKind::BadArguments, &node)
                .detail("a member id is one path segment"));
        }
        util::ensure_dir(&*client, &group, util::Dir::Container)?;
        match client.create(&node, data, CreateMode::Ephemeral) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NoNode => {
                util::ensure_dir(&*client, &group, util::Dir::Container)?;
                client.create(&node, data, CreateMode::Ephemeral)?;
            }
            Err(e) => return Err(e),
        }
        Ok(GroupMember {
            client,
            group,
            id: id.to_string(),
            node,
            left: false,
        })
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Replaces this member's payload.
    pub fn update(&self, data: &[u8]) -> Result<()> {
        self.client
            .set_data(&self.node, data, crate::ANY_VERSION)
            .map(|_| ())
    }

    /// Every live member: id → payload.
    pub fn members(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        members_of(&*self.client, &self.group)
    }

    /// Leaves the group.
    pub fn leave(mut self) -> Result<()> {
        self.left = true;
        util::delete_if_present(&*self.client, &self.node)
    }
}

/// The members of `group` (id → payload), as seen by any session.
pub fn members_of<C: Coordinator + ?Sized>(
    client: &C,
    group: &str,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let names = match client.get_children(group) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::NoNode => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut out = BTreeMap::new();
    for name in names {
        match client.get_data(&path::join(group, &name)) {
            Ok((data, _)) => {
                out.insert(name, data);
            }
            Err(e) if e.kind() == ErrorKind::NoNode => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

impl<C: Coordinator + ?Sized> Drop for GroupMember<C> {
    fn drop(&mut self) {
        if !self.left {
            let _ = util::delete_if_present(&*self.client, &self.node);
        }
    }
}

impl<C: Coordinator + ?Sized> std::fmt::Debug for GroupMember<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("group", &self.group)
            .field("id", &self.id)
            .finish()
    }
}
