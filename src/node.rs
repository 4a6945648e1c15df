//! Plain data at the API boundary: [`Stat`], [`CreateMode`], [`Acl`], [`Id`], [`Perms`].
//!
//! These types know nothing of sessions, storage or the wire.

use serde::{Deserialize, Serialize};

/// A node's metadata, field for field as ZooKeeper reports it
/// (`docs/zookeeper-semantics.md` B.1). `cversion` is the visible value:
/// child creates plus child deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last set-data (the create's until then).
    pub mzxid: i64,
    /// Milliseconds since the epoch at create.
    pub ctime: i64,
    /// Milliseconds since the epoch at the last set-data.
    pub mtime: i64,
    /// Number of set-data calls.
    pub version: i32,
    /// Number of child creates plus child deletes.
    pub cversion: i32,
    /// Number of set-ACL calls.
    pub aversion: i32,
    /// Owning session of an ephemeral node, else 0 (also 0 for container and TTL nodes).
    pub ephemeral_owner: i64,
    /// Length of the data (0 for none).
    pub data_length: i32,
    /// Current number of children.
    pub num_children: i32,
    /// zxid of the last child create or delete (the create's until then).
    pub pzxid: i64,
}

/// How a node is created (ZooKeeper's `CreateMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreateMode {
    /// Stays until deleted.
    Persistent,
    /// Deleted when its session ends; cannot have children.
    Ephemeral,
    /// Persistent, with a `%010d` suffix from the parent's child-create count.
    PersistentSequential,
    /// Ephemeral, with a sequence suffix.
    EphemeralSequential,
    /// Deleted by the reaper once it has had children and has none.
    Container,
    /// Deleted by the reaper when childless and unmodified for its TTL.
    PersistentWithTtl,
    /// Sequential, with a TTL.
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// ZooKeeper's flag value (0 ..= 6).
    pub fn flag(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }

    /// The mode for a ZooKeeper flag value, if it names one.
    pub fn from_flag(flag: i32) -> Option<CreateMode> {
        Some(match flag {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    /// True for the two session-owned modes.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// True for the modes that append a sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for the two TTL modes.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for containers.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
}

/// Permission bits of an ACL entry (ZooKeeper's `ZooDefs.Perms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// All five.
    pub const ALL: Perms = Perms(31);

    /// True when every bit of `other` is set here.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when some bit of `other` is set here.
    pub fn intersects(self, other: Perms) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

/// An identity: a scheme and an id (`world:anyone`, `digest:user:hash`, `ip:10.0.0.0/8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Id {
    /// `world`, `digest`, `ip`, `auth` or `super`.
    pub scheme: String,
    /// The id within the scheme.
    pub id: String,
}

impl Id {
    /// An identity from a scheme and an id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`.
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }
}

/// One ACL entry: permissions granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Acl {
    /// The permissions granted.
    pub perms: Perms,
    /// Who they are granted to.
    pub id: Id,
}

impl Acl {
    /// An ACL entry.
    pub fn new(perms: Perms, id: Id) -> Acl {
        Acl { perms, id }
    }

    /// ZooKeeper's `OPEN_ACL_UNSAFE`: everyone may do everything.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::anyone())]
    }

    /// ZooKeeper's `READ_ACL_UNSAFE`: everyone may read.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, Id::anyone())]
    }

    /// ZooKeeper's `CREATOR_ALL_ACL`: all permissions for the creator's
    /// authenticated identities (needs digest auth on the session).
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::new("auth", ""))]
    }

    /// A digest ACL entry for `user:password` (hashed as ZooKeeper does).
    pub fn digest(perms: Perms, user: &str, password: &str) -> Acl {
        Acl::new(perms, Id::new("digest", digest_id(user, password)))
    }
}

/// ZooKeeper's digest id for a user and password:
/// `user:BASE64(SHA1("user:password"))`.
pub fn digest_id(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let credential = format!("{user}:{password}");
    let hash = sha1_smol::Sha1::from(credential.as_bytes())
        .digest()
        .bytes();
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // Reference: docs/zookeeper-semantics.md G.3.
        assert_eq!(
            digest_id("user", "password"),
            "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="
        );
    }

    #[test]
    fn modes_round_trip_flags() {
        for flag in 0..7 {
            assert_eq!(CreateMode::from_flag(flag).unwrap().flag(), flag);
        }
        assert_eq!(CreateMode::from_flag(7), None);
        assert_eq!(CreateMode::from_flag(-1), None);
    }
}
