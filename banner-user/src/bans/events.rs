//! What the ban manager did, as a stream of events. Everything that reacts to bans
//! subscribes to it instead of being called from the places that ban: the log lines users
//! read, hosts.deny, jails fed by bans (recidive), and later actions, metrics and the
//! CrowdSec link.

use std::sync::Arc;

use crate::{
    addr::IpPrefix,
    duration::BanLength,
    model::{Ban, JailId},
};

/// What made a jail ban: the failures it counted and the log lines they came from (the last
/// few, bounded: see [`Cause::MAX_LINES`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cause {
    /// Failures inside findtime when the jail decided.
    pub failures: u32,
    /// The log lines of those failures, oldest first (at most [`Cause::MAX_LINES`]).
    pub lines: Vec<Arc<str>>,
    /// The user name of the last failure, where the filter found one.
    pub user: Option<Arc<str>>,
}

impl Cause {
    /// Lines kept per ban: enough to show an attack's shape, bounded so a jail with a large
    /// maxretry cannot make every event heavy.
    pub const MAX_LINES: usize = 10;
}

/// Why a ban ended before its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifted {
    /// `banner unban`.
    ByHand,
    /// The allowlist grew to cover it (reload, or the host gained the address).
    Allowlisted,
    /// CrowdSec's Local API no longer holds a decision for it (deleted, or `[crowdsec]`
    /// taken out of the configuration).
    CrowdSec,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BanEvent {
    /// A target newly banned.
    Banned { ban: Ban, cause: Cause },
    /// A ban made longer, or given another block type.
    Extended { ban: Ban, cause: Cause },
    /// A ban lifted before its deadline.
    Unbanned { ban: Ban, why: Lifted },
    /// A ban whose deadline passed.
    Expired { ban: Ban },
    /// A ban not made: the target is allowlisted, or the backend's map is full.
    Refused {
        target: IpPrefix,
        jail: JailId,
        why: String,
    },
}

impl BanEvent {
    /// The ban the event is about (none for a refusal).
    pub fn ban(&self) -> Option<&Ban> {
        match self {
            Self::Banned { ban, .. }
            | Self::Extended { ban, .. }
            | Self::Unbanned { ban, .. }
            | Self::Expired { ban } => Some(ban),
            Self::Refused { .. } => None,
        }
    }

    pub fn jail(&self) -> &JailId {
        match self {
            Self::Banned { ban, .. }
            | Self::Extended { ban, .. }
            | Self::Unbanned { ban, .. }
            | Self::Expired { ban } => &ban.jail,
            Self::Refused { jail, .. } => jail,
        }
    }

    /// Whether the target is banned after this event.
    pub fn holds(&self) -> bool {
        matches!(self, Self::Banned { .. } | Self::Extended { .. })
    }

    /// The line the daemon logs for it, in fail2ban's words (`[sshd] Ban 198.51.100.7`).
    pub fn describe(&self) -> String {
        // `for 1h` or `permanently`, after the address as fail2ban's `Ban ADDR` lines read.
        let length = |b: &Ban| match b.expires_at {
            None => "permanently".to_string(),
            Some(t) => format!(
                "for {}",
                BanLength::For(t.duration_since(b.banned_at).unwrap_or_default())
            ),
        };
        let why = |b: &Ban, cause: &Cause| {
            let mut parts = vec![b.blocktype.to_string()];
            if let Some(ports) = &b.scope {
                parts.push(format!("ports {ports}"));
            }
            match &b.jail {
                JailId::Manual => parts.push("by hand".into()),
                JailId::Restored => parts.push("adopted from the kernel".into()),
                JailId::CrowdSec(_) => parts.push("CrowdSec decision".into()),
                JailId::Jail(_) => {
                    parts.push(format!("ban #{}", b.count));
                    if cause.failures > 0 {
                        parts.push(format!("{} failures", cause.failures));
                    }
                    if let Some(u) = &cause.user {
                        parts.push(format!("last user `{u}`"));
                    }
                }
            }
            parts.join(", ")
        };
        match self {
            Self::Banned { ban, cause } => format!(
                "[{}] Ban {} {} ({})",
                ban.jail,
                ban.target,
                length(ban),
                why(ban, cause)
            ),
            Self::Extended { ban, cause } => format!(
                "[{}] Extend ban of {} {} ({})",
                ban.jail,
                ban.target,
                length(ban),
                why(ban, cause)
            ),
            Self::Unbanned { ban, why } => format!(
                "[{}] Unban {} ({})",
                ban.jail,
                ban.target,
                match why {
                    Lifted::ByHand => "by hand",
                    Lifted::Allowlisted => "now in the allowlist",
                    Lifted::CrowdSec => "no longer decided by CrowdSec",
                }
            ),
            Self::Expired { ban } => format!("[{}] Unban {} (expired)", ban.jail, ban.target),
            Self::Refused { target, jail, why } => {
                format!("[{jail}] Refused to ban {target}: {why}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::BlockType;

    fn ban(jail: JailId, secs: Option<u64>) -> Ban {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        Ban {
            target: "198.18.0.7".parse().unwrap(),
            jail,
            blocktype: BlockType::Tarpit,
            banned_at: at,
            expires_at: secs.map(|s| at + Duration::from_secs(s)),
            count: 2,
            scope: None,
        }
    }

    #[test]
    fn log_lines_say_who_what_and_why() {
        let cause = Cause {
            failures: 3,
            user: Some("root".into()),
            ..Cause::default()
        };
        let e = BanEvent::Banned {
            ban: ban("sshd".into(), Some(3600)),
            cause,
        };
        assert_eq!(
            e.describe(),
            "[sshd] Ban 198.18.0.7 for 1h (tarpit, ban #2, 3 failures, last user `root`)"
        );
        let e = BanEvent::Extended {
            ban: ban(JailId::Manual, None),
            cause: Cause::default(),
        };
        assert_eq!(
            e.describe(),
            "[manual] Extend ban of 198.18.0.7 permanently (tarpit, by hand)"
        );
        let e = BanEvent::Expired {
            ban: ban("recidive".into(), Some(60)),
        };
        assert_eq!(e.describe(), "[recidive] Unban 198.18.0.7 (expired)");
        assert!(!e.holds() && e.jail() == &JailId::from("recidive"));
    }
}
