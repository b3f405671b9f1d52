//! Enforcement backends. Each one turns the ban manager's decisions into kernel state: XDP maps,
//! nftables sets, or ipsets. One is chosen at start; the manager is its only writer.

pub mod command;
pub mod iptables;
/// A backend in memory, for the core's and the manager's tests.
#[cfg(test)]
pub mod memory;
pub mod nftables;
pub mod none;
pub mod xdp;

use std::time::SystemTime;

use banner_common::counter;

use crate::{
    addr::IpPrefix,
    model::{BlockSpec, BlockType},
    scope::{PortRange, PortScope, Protocol, Scope},
};

/// A ban as the backend enforces it, with what it has seen of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enforced {
    pub target: IpPrefix,
    pub blocktype: BlockType,
    pub expires_at: Option<SystemTime>,
    pub hits: Hits,
    /// The ports it covers; None: the whole address.
    pub scope: Scope,
}

impl From<&BlockSpec> for Enforced {
    /// A ban as a backend that counts no packets holds it.
    fn from(b: &BlockSpec) -> Self {
        Self {
            target: b.target,
            blocktype: b.blocktype,
            expires_at: b.expires_at,
            scope: b.scope.clone(),
            hits: Hits::default(),
        }
    }
}

/// Port-scoped bans as netfilter lists them, one element per protocol and port (range),
/// gathered back into one ban each while a set's listing is read.
#[derive(Debug, Default)]
pub(crate) struct ScopedElements {
    /// Target -> its index in the listing, and its TCP and UDP ranges so far.
    seen: std::collections::HashMap<IpPrefix, (usize, Vec<PortRange>, Vec<PortRange>)>,
}

impl ScopedElements {
    /// One element of `target`'s ban; `next` is where the listing would put a new ban. None:
    /// the first element, to be listed now; Some(i): the ban is already listed at `i` (add
    /// this element's packets there).
    pub(crate) fn add(
        &mut self,
        target: IpPrefix,
        protocol: Protocol,
        range: PortRange,
        next: usize,
    ) -> Option<usize> {
        let (i, tcp, udp) = self
            .seen
            .entry(target)
            .or_insert_with(|| (next, Vec::new(), Vec::new()));
        match protocol {
            Protocol::Tcp => tcp.push(range),
            Protocol::Udp => udp.push(range),
        }
        (*i != next).then_some(*i)
    }

    /// Give each gathered ban in `listed` its ports.
    pub(crate) fn finish(self, listed: &mut [Enforced]) {
        for (i, tcp, udp) in self.seen.into_values() {
            if let Some(e) = listed.get_mut(i) {
                e.scope = PortScope::new(tcp, udp).ok().map(std::sync::Arc::new);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    pub dropped: u64,
    pub tarpitted: u64,
    pub last_seen: Option<SystemTime>,
}

impl Hits {
    pub fn total(&self) -> u64 {
        self.dropped + self.tarpitted
    }
}

/// Packet totals since the backend's state was created, by the index of banner-common's
/// counter list (`counter::NAMES`, the one list: a backend counts what it can of it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub [u64; counter::COUNT as usize]);

impl Counters {
    /// The counter at `index` (a `counter::` constant).
    pub fn get(&self, index: u32) -> u64 {
        self.0.get(index as usize).copied().unwrap_or(0)
    }

    pub fn add(&mut self, index: u32, n: u64) {
        if let Some(v) = self.0.get_mut(index as usize) {
            *v += n;
        }
    }

    /// (name, value) of every counter, in the list's order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        counter::NAMES.iter().copied().zip(self.0.iter().copied())
    }
}

/// How many bans of each kind the backend can hold; None where it has no fixed limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    pub exact_v4: Option<usize>,
    pub exact_v6: Option<usize>,
    pub prefix_v4: Option<usize>,
    pub prefix_v6: Option<usize>,
}

/// Which of the capacity buckets a target falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    ExactV4,
    ExactV6,
    PrefixV4,
    PrefixV6,
}

impl Slot {
    pub fn of(target: &IpPrefix) -> Self {
        match (target.is_v4(), target.is_host()) {
            (true, true) => Self::ExactV4,
            (false, true) => Self::ExactV6,
            (true, false) => Self::PrefixV4,
            (false, false) => Self::PrefixV6,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ExactV4 => "IPv4 address",
            Self::ExactV6 => "IPv6 address",
            Self::PrefixV4 => "IPv4 prefix",
            Self::PrefixV6 => "IPv6 prefix",
        }
    }
}

impl Capacity {
    pub fn of(&self, slot: Slot) -> Option<usize> {
        match slot {
            Slot::ExactV4 => self.exact_v4,
            Slot::ExactV6 => self.exact_v6,
            Slot::PrefixV4 => self.prefix_v4,
            Slot::PrefixV6 => self.prefix_v6,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the {map} map is full ({capacity} entries): {target} was not banned")]
    Full {
        map: &'static str,
        capacity: usize,
        target: IpPrefix,
    },
    /// A kernel map (or set) refused a read or write.
    #[error("{op} {target} in map {map}: {source}")]
    Map {
        op: &'static str,
        map: &'static str,
        target: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Setup(String),
    /// Another banner owns this backend's kernel objects: never a reason to try another one.
    #[error("{0}")]
    Busy(String),
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// What a backend found when asked whether its enforcement is still in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Intact,
    /// Its kernel objects were gone (a firewall reload flushed them) and are re-created,
    /// empty: the manager must put every ban and the allowlist back.
    Rebuilt(String),
    /// Repaired in place, nothing lost (an interface came back: the program re-attached).
    Repaired(String),
    /// Enforcement is off somewhere and cannot be restored now (an interface is gone).
    NotEnforced(String),
}

/// The one interface the ban manager drives.
pub trait Backend: Send {
    /// What is enforcing, for logs and `banner stats` (e.g. "xdp native on eth0").
    fn describe(&self) -> String;
    fn capacity(&self) -> Capacity;
    /// False for the observe-only backend: bans are what banner would do.
    fn enforces(&self) -> bool {
        true
    }
    /// What holds a bucket's bans, for messages ("the bans_v4 map is full").
    fn container(&self, slot: Slot) -> &'static str {
        slot.as_str()
    }
    /// Add or update bans. Existing entries keep their hit counters.
    fn block(&mut self, bans: &[BlockSpec]) -> Result<(), BackendError>;
    /// Remove bans; targets that are not enforced are ignored.
    fn unblock(&mut self, targets: &[IpPrefix]) -> Result<(), BackendError>;
    /// Replace the allowlist: these sources pass whatever bans say.
    fn set_allowlist(&mut self, nets: &[IpPrefix]) -> Result<(), BackendError>;
    /// Everything currently enforced, to reconcile with the saved state at start.
    fn list(&mut self) -> Result<Vec<Enforced>, BackendError>;
    /// The bans that stopped a packet, with their counts (`banner list` joins them to the
    /// bans; most of a million never see one).
    fn hits(&mut self) -> Result<Vec<(IpPrefix, Hits)>, BackendError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|e| e.hits != Hits::default())
            .map(|e| (e.target, e.hits))
            .collect())
    }
    fn counters(&mut self) -> Result<Counters, BackendError>;
    /// Stop enforcing. With `keep`, leave every ban in place (each still expires by itself).
    fn shutdown(&mut self, keep: bool) -> Result<(), BackendError>;
    /// Is enforcement still in place (fail2ban's actioncheck)? Called before each batch and
    /// every housekeeping round; repairs what it can. Must be cheap when all is well.
    fn check(&mut self) -> Result<Health, BackendError> {
        Ok(Health::Intact)
    }
}

/// The allowlist without entries that others contain (netfilter interval sets refuse
/// overlapping elements), sorted.
pub fn collapse(nets: &[IpPrefix]) -> Vec<IpPrefix> {
    let mut sorted: Vec<IpPrefix> = nets.to_vec();
    sorted.sort_by_key(|n| (n.is_v4(), n.prefix_len()));
    let mut out: Vec<IpPrefix> = Vec::new();
    for n in sorted {
        if !out.iter().any(|o| o.contains(&n)) {
            out.push(n);
        }
    }
    out.sort();
    out
}
