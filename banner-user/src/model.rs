//! The nouns shared by the pipeline's stages: block types, bans, ban requests.

use std::{fmt, str::FromStr, sync::Arc, time::SystemTime};

use serde::{Deserialize, Serialize};

use crate::{addr::IpPrefix, scope::Scope};

/// How a banned source is treated (user-space side of [`banner_common::BlockType`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockType {
    Drop,
    #[default]
    Tarpit,
}

impl BlockType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Tarpit => "tarpit",
        }
    }
}

impl From<BlockType> for banner_common::BlockType {
    fn from(b: BlockType) -> Self {
        match b {
            BlockType::Drop => Self::Drop,
            BlockType::Tarpit => Self::Tarpit,
        }
    }
}

impl fmt::Display for BlockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a block type (expected `drop` or `tarpit`)")]
pub struct BlockTypeError(pub String);

impl FromStr for BlockType {
    type Err = BlockTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "drop" => Ok(Self::Drop),
            "tarpit" => Ok(Self::Tarpit),
            _ => Err(BlockTypeError(s.to_string())),
        }
    }
}

/// Who made a ban: a jail of the configuration, someone at the CLI, the kernel (a ban found
/// enforced at start with no saved record), or a CrowdSec decision. Only configured jails are
/// named by the user; the other origins' names are reserved (and a jail's name holds no `:`),
/// so a jail can never pass for one of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JailId {
    /// A configured jail, by name.
    Jail(Arc<str>),
    /// `banner ban` without `--jail`.
    Manual,
    /// Found in the kernel's maps at start with no saved record, and adopted.
    Restored,
    /// A decision of CrowdSec's Local API, by its full name: `crowdsec:` and the decision's
    /// origin (`crowdsec:cscli`, `crowdsec:CAPI`, `crowdsec:crowdsec`).
    CrowdSec(Arc<str>),
}

impl JailId {
    /// Names no configured jail may take.
    pub const RESERVED: [&'static str; 3] = ["manual", "restored", "crowdsec"];

    /// What the names of CrowdSec's decisions begin with.
    pub const CROWDSEC: &'static str = "crowdsec:";

    /// The origin a name stands for (a reserved name is its origin, any other a jail).
    pub fn named(name: &str) -> Self {
        match name {
            "manual" => Self::Manual,
            "restored" => Self::Restored,
            crowdsec if crowdsec.starts_with(Self::CROWDSEC) => Self::CrowdSec(Arc::from(name)),
            other => Self::Jail(Arc::from(other)),
        }
    }

    /// A CrowdSec decision of `origin` (`cscli`, `CAPI`, ...).
    pub fn crowdsec(origin: &str) -> Self {
        Self::CrowdSec(Arc::from(format!("{}{origin}", Self::CROWDSEC)))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Jail(name) | Self::CrowdSec(name) => name,
            Self::Manual => "manual",
            Self::Restored => "restored",
        }
    }

    /// A decision that came from CrowdSec (never pushed back to it).
    pub fn is_crowdsec(&self) -> bool {
        matches!(self, Self::CrowdSec(_))
    }

    /// A configured jail (not a person or the kernel).
    pub fn is_jail(&self) -> bool {
        matches!(self, Self::Jail(_))
    }
}

impl From<&str> for JailId {
    fn from(name: &str) -> Self {
        Self::named(name)
    }
}

impl fmt::Display for JailId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for JailId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for JailId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An active ban as the ban manager holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    pub target: IpPrefix,
    pub jail: JailId,
    pub blocktype: BlockType,
    pub banned_at: SystemTime,
    /// None: permanent.
    pub expires_at: Option<SystemTime>,
    /// How many times this target has been banned by this jail (1 for the first ban); drives
    /// `bantime_increment`.
    pub count: u32,
    /// The ports it covers; None: the whole address.
    pub scope: Scope,
}

/// What enforcement needs to know of a ban.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    pub target: IpPrefix,
    pub blocktype: BlockType,
    pub expires_at: Option<SystemTime>,
    /// None: every port of the target.
    pub scope: Scope,
}

impl From<&Ban> for BlockSpec {
    fn from(b: &Ban) -> Self {
        Self {
            target: b.target,
            blocktype: b.blocktype,
            expires_at: b.expires_at,
            scope: b.scope.clone(),
        }
    }
}
