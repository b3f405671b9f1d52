//! The nouns shared by the pipeline's stages: block types, bans, ban requests.

use std::{fmt, str::FromStr, time::SystemTime};

use serde::{Deserialize, Serialize};

use crate::addr::IpPrefix;

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

/// Jail name given to bans made by hand through the CLI.
pub const MANUAL_JAIL: &str = "manual";

/// An active ban as the ban manager holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    pub target: IpPrefix,
    pub jail: String,
    pub blocktype: BlockType,
    pub banned_at: SystemTime,
    /// None: permanent.
    pub expires_at: Option<SystemTime>,
    /// How many times this target has been banned by this jail (1 for the first ban); drives
    /// `bantime_increment`.
    pub count: u32,
}

/// What enforcement needs to know of a ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    pub target: IpPrefix,
    pub blocktype: BlockType,
    pub expires_at: Option<SystemTime>,
}

impl From<&Ban> for BlockSpec {
    fn from(b: &Ban) -> Self {
        Self {
            target: b.target,
            blocktype: b.blocktype,
            expires_at: b.expires_at,
        }
    }
}
