//! The clock conversion: the kernel program compares deadlines against CLOCK_BOOTTIME, the
//! controller thinks in wall-clock time.

use std::time::{Duration, SystemTime};

use banner_common::BanEntry;

use crate::{
    addr::IpPrefix,
    backend::{Enforced, Hits},
    model::BlockType,
    scope::Scope,
    sys,
};

/// Wall clock and boot clock read together, to convert deadlines between them. The kernel
/// program compares against CLOCK_BOOTTIME, which keeps counting through suspend and never
/// jumps with the wall clock.
pub(super) struct Now {
    wall: SystemTime,
    boot_ns: u64,
}

impl Now {
    pub(super) fn read() -> Self {
        Self {
            wall: SystemTime::now(),
            boot_ns: sys::boottime_ns(),
        }
    }

    pub(super) fn boot_deadline(&self, at: SystemTime) -> u64 {
        let ahead = at.duration_since(self.wall).unwrap_or(Duration::ZERO);
        // Never 0: that value means "permanent".
        self.boot_ns
            .saturating_add(ahead.as_nanos().min(u128::from(u64::MAX)) as u64)
            .max(1)
    }

    pub(super) fn wall_at(&self, boot_ns: u64) -> SystemTime {
        if boot_ns >= self.boot_ns {
            self.wall + Duration::from_nanos(boot_ns - self.boot_ns)
        } else {
            self.wall - Duration::from_nanos(self.boot_ns - boot_ns)
        }
    }

    pub(super) fn enforced(&self, target: IpPrefix, e: &BanEntry, scope: Scope) -> Enforced {
        Enforced {
            target,
            blocktype: match banner_common::BlockType::from_u32(e.blocktype) {
                Some(banner_common::BlockType::Tarpit) => BlockType::Tarpit,
                _ => BlockType::Drop,
            },
            expires_at: (e.expires_ns != 0).then(|| self.wall_at(e.expires_ns)),
            scope,
            hits: self.hits(e),
        }
    }

    pub(super) fn hits(&self, e: &BanEntry) -> Hits {
        Hits {
            dropped: e.dropped,
            tarpitted: e.tarpitted,
            last_seen: (e.last_seen_ns != 0).then(|| self.wall_at(e.last_seen_ns)),
        }
    }
}
