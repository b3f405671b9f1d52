//! The ban manager: the single owner of the active ban set. It refuses bans on the allowlist,
//! keeps bans within the backend's capacity, drives the backend, persists every change before
//! answering, and expires bans on its clock.

pub mod events;

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::SystemTime,
};

use crate::{
    addr::IpPrefix,
    backend::{Backend, BackendError, Counters, Enforced, Health, Hits, Slot},
    clock::{from_unix_secs, unix_secs, Clock},
    duration::BanLength,
    model::{Ban, BlockSpec, BlockType, JailId},
    scope::{self, Scope},
    state::{replay, BanRecord, Record, StateError, Store},
};

pub use events::{BanEvent, Cause, Lifted};

/// One allowlist entry and why it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoreEntry {
    pub net: IpPrefix,
    pub why: String,
}

/// Sources that are never banned: the configured ignoreip, loopback and the host's own
/// addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreList {
    entries: Vec<IgnoreEntry>,
}

impl IgnoreList {
    pub fn new(entries: Vec<IgnoreEntry>) -> Self {
        Self { entries }
    }

    pub fn push(&mut self, net: IpPrefix, why: impl Into<String>) {
        if !self.entries.iter().any(|e| e.net == net) {
            self.entries.push(IgnoreEntry {
                net,
                why: why.into(),
            });
        }
    }

    /// The entry that covers all of `target`, if any.
    pub fn covering(&self, target: &IpPrefix) -> Option<&IgnoreEntry> {
        self.entries.iter().find(|e| e.net.contains(target))
    }

    /// Entries that lie inside `target` (they stay allowed if `target` is banned).
    pub fn inside<'a>(
        &'a self,
        target: &'a IpPrefix,
    ) -> impl Iterator<Item = &'a IgnoreEntry> + 'a {
        self.entries
            .iter()
            .filter(move |e| target.contains(&e.net) && e.net != *target)
    }

    pub fn nets(&self) -> Vec<IpPrefix> {
        self.entries.iter().map(|e| e.net).collect()
    }

    pub fn entries(&self) -> &[IgnoreEntry] {
        &self.entries
    }
}

/// A request to ban, from a jail or from the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanRequest {
    pub target: IpPrefix,
    pub jail: JailId,
    pub blocktype: BlockType,
    pub length: BanLength,
    /// The ports it covers; None: the whole address.
    pub scope: Scope,
    /// What made the jail decide (empty for bans by hand).
    pub cause: Cause,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BanOutcome {
    /// Newly banned.
    New(Ban),
    /// Was banned; the ban now lasts longer or changed its block type.
    Extended(Ban),
    /// Was already banned at least as long.
    Unchanged(Ban),
}

impl BanOutcome {
    pub fn ban(&self) -> &Ban {
        match self {
            Self::New(b) | Self::Extended(b) | Self::Unchanged(b) => b,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BanError {
    #[error("{target} is not banned: it is in the allowlist ({why}: {net})")]
    Ignored {
        target: IpPrefix,
        net: IpPrefix,
        why: String,
    },
    #[error("{target} was not banned: the {map} map is full ({capacity} bans)")]
    Full {
        target: IpPrefix,
        map: &'static str,
        capacity: usize,
    },
    #[error("the enforcement backend failed: {0}")]
    Backend(#[from] BackendError),
    #[error("saving the ban state failed, nothing was changed: {0}")]
    State(#[from] StateError),
}

/// A failure inside a batch: which request (0-based) and why. Nothing of the batch applied.
#[derive(Debug, thiserror::Error)]
#[error("entry {index}: {error}")]
pub struct BatchError {
    pub index: usize,
    pub error: BanError,
}

/// Counts of what the manager refused or did, for `banner stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ManagerStats {
    pub bans_total: u64,
    pub unbans_total: u64,
    pub expired_total: u64,
    pub refused_allowlisted: u64,
    pub refused_full: u64,
    pub backend_errors: u64,
    /// Times enforcement was found lost (firewall reload, interface re-created) and restored.
    pub enforcement_restored: u64,
}

/// A ban with its enforcement figures, for `banner list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanView {
    pub ban: Ban,
    pub hits: Hits,
}

/// What `restore` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub restored: usize,
    pub expired_while_down: usize,
    /// Found in the kernel but not in the saved state (a crash between the two writes).
    pub adopted: usize,
    /// Found in the kernel with no saved ban and already past its deadline.
    pub stale_removed: usize,
}

pub struct BanManager {
    backend: Box<dyn Backend>,
    store: Store,
    clock: Arc<dyn Clock>,
    active: HashMap<IpPrefix, Ban>,
    deadlines: BTreeSet<(SystemTime, IpPrefix)>,
    used: HashMap<Slot, usize>,
    ignore: IgnoreList,
    history: HashMap<(JailId, IpPrefix), (u32, u64)>,
    stats: ManagerStats,
    /// After a failed removal of expired bans: when to try again, and the current pause.
    expiry_retry: Option<(SystemTime, std::time::Duration)>,
    /// What the last enforcement check said, to log changes only.
    health: Health,
    /// What happened since the owner last took them ([`Self::take_events`]).
    events: Vec<BanEvent>,
    /// The active bans that cover only some ports: few, and looked at whenever a whole prefix
    /// is banned (see [`Self::widen_inside`]).
    scoped: BTreeSet<IpPrefix>,
    /// Active bans by the jail that made them, kept as bans come and go, so `status` and a
    /// metrics scrape do not walk a million bans to count them.
    by_jail: HashMap<JailId, usize>,
}

/// How long a lifted ban is remembered (for bantime_increment and `ban #n` in the log): a
/// month, well past recidive's day and the increment's usual maxtime of a week. Older history
/// is pruned, so it cannot grow without bound.
pub const HISTORY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// First pause after a failed expiry sweep; it doubles up to [`EXPIRY_RETRY_MAX`].
const EXPIRY_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
const EXPIRY_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl BanManager {
    pub fn new(
        backend: Box<dyn Backend>,
        store: Store,
        clock: Arc<dyn Clock>,
        ignore: IgnoreList,
    ) -> Self {
        Self {
            backend,
            store,
            clock,
            active: HashMap::new(),
            deadlines: BTreeSet::new(),
            used: HashMap::new(),
            ignore,
            history: HashMap::new(),
            stats: ManagerStats::default(),
            expiry_retry: None,
            health: Health::Intact,
            events: Vec::new(),
            scoped: BTreeSet::new(),
            by_jail: HashMap::new(),
        }
    }

    /// Make sure the backend still enforces (fail2ban's actioncheck): after a firewall reload
    /// or an interface that came back, put back what was lost. Logs when the state changes.
    pub fn check_enforcement(&mut self) -> Result<Health, BanError> {
        let health = self.backend.check()?;
        match &health {
            Health::Rebuilt(why) => {
                log::warn!(
                    "enforcement was lost ({why}); restoring {} bans and the allowlist",
                    self.active.len()
                );
                self.backend.set_allowlist(&self.ignore.nets())?;
                let specs: Vec<BlockSpec> = self.active.values().map(BlockSpec::from).collect();
                self.backend.block(&specs)?;
                self.stats.enforcement_restored += 1;
            }
            Health::Repaired(what) => {
                log::warn!("enforcement repaired: {what}");
                self.stats.enforcement_restored += 1;
            }
            Health::NotEnforced(why) if self.health != health => {
                log::error!("NOT ENFORCED: {why}; will keep trying");
            }
            Health::Intact if matches!(self.health, Health::NotEnforced(_)) => {
                log::info!("enforcement is back everywhere");
            }
            _ => {}
        }
        self.health = health.clone();
        Ok(health)
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    fn refused(&mut self, req: &BanRequest, error: &BanError) {
        self.events.push(BanEvent::Refused {
            target: req.target,
            jail: req.jail.clone(),
            why: error.to_string(),
        });
    }

    /// The events since the last call, in the order they happened.
    pub fn take_events(&mut self) -> Vec<BanEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn backend_name(&self) -> String {
        self.backend.describe()
    }

    /// False in a dry run: the bans are what banner would do.
    pub fn enforces(&self) -> bool {
        self.backend.enforces()
    }

    /// Load the saved state, reconcile it with what the backend already enforces (it may have
    /// outlived a previous controller), and push the allowlist.
    pub fn restore(&mut self, records: &[Record]) -> Result<RestoreReport, BanError> {
        let now = self.clock.now();
        let saved = replay(records);
        self.history = saved
            .history
            .into_iter()
            .map(|((jail, target), v)| ((JailId::named(&jail), target), v))
            .collect();
        let mut report = RestoreReport::default();
        let mut to_block = Vec::new();
        for rec in saved.active.into_values() {
            let ban = ban_from_record(&rec);
            if ban.expires_at.is_some_and(|t| t <= now) {
                report.expired_while_down += 1;
                continue;
            }
            if self.ignore.covering(&ban.target).is_some() {
                // The allowlist grew while we were down; it wins.
                continue;
            }
            to_block.push(BlockSpec::from(&ban));
            self.insert_active(ban);
            report.restored += 1;
        }
        let mut stale = Vec::new();
        for Enforced {
            target,
            blocktype,
            expires_at,
            scope,
            ..
        } in self.backend.list()?
        {
            if self.active.contains_key(&target) {
                continue;
            }
            if expires_at.is_some_and(|t| t <= now) || self.ignore.covering(&target).is_some() {
                stale.push(target);
                report.stale_removed += 1;
                continue;
            }
            let ban = Ban {
                target,
                jail: JailId::Restored,
                blocktype,
                banned_at: now,
                expires_at,
                count: 1,
                scope,
            };
            self.store.append(&[Record::Ban(record_from_ban(&ban))])?;
            self.insert_active(ban);
            report.adopted += 1;
        }
        self.backend.set_allowlist(&self.ignore.nets())?;
        self.backend.unblock(&stale)?;
        self.backend.block(&to_block)?;
        self.compact_if_needed();
        Ok(report)
    }

    /// How many more new targets the backend takes in `slot` (None: no limit).
    pub fn room(&self, slot: Slot) -> Option<usize> {
        let cap = self.backend.capacity().of(slot)?;
        Some(cap.saturating_sub(self.used.get(&slot).copied().unwrap_or(0)))
    }

    /// A capacity bucket's map, its bans and its capacity (None: the backend has no limit).
    pub fn fill(&self, slot: Slot) -> Option<(&'static str, usize, usize)> {
        let cap = self.backend.capacity().of(slot)?;
        let used = self.used.get(&slot).copied().unwrap_or(0);
        Some((self.backend.container(slot), used, cap))
    }

    /// How often `jail` has banned `target` before (0 if never).
    pub fn previous_bans(&self, jail: &JailId, target: &IpPrefix) -> u32 {
        self.history
            .get(&(jail.clone(), *target))
            .map_or(0, |(n, _)| *n)
    }

    pub fn ignore_list(&self) -> &IgnoreList {
        &self.ignore
    }

    /// Replace the allowlist (on reload). Active bans it now covers are lifted.
    pub fn set_ignore(&mut self, ignore: IgnoreList) -> Result<Vec<Ban>, BanError> {
        self.backend.set_allowlist(&ignore.nets())?;
        self.ignore = ignore;
        let covered: Vec<IpPrefix> = self
            .active
            .keys()
            .filter(|t| self.ignore.covering(t).is_some())
            .copied()
            .collect();
        let mut lifted = Vec::new();
        for t in covered {
            if let Some(b) = self.lift(&t, Lifted::Allowlisted)? {
                lifted.push(b);
            }
        }
        Ok(lifted)
    }

    pub fn ban(&mut self, request: BanRequest) -> Result<BanOutcome, BanError> {
        self.ban_batch(std::slice::from_ref(&request))
            .map(|mut v| v.remove(0))
            .map_err(|e| e.error)
    }

    /// Apply several bans as one: all are checked first, then enforced and saved together
    /// (one fsync). If any is refused, none is applied.
    pub fn ban_batch(&mut self, requests: &[BanRequest]) -> Result<Vec<BanOutcome>, BatchError> {
        let now = self.clock.now();
        let capacity = self.backend.capacity();
        let mut extra: HashMap<Slot, usize> = HashMap::new();
        let mut planned: HashMap<IpPrefix, usize> = HashMap::new();
        let mut outcomes = Vec::with_capacity(requests.len());
        for (index, req) in requests.iter().enumerate() {
            let fail = |error| BatchError { index, error };
            if let Some(entry) = self.ignore.covering(&req.target) {
                self.stats.refused_allowlisted += 1;
                let error = BanError::Ignored {
                    target: req.target,
                    net: entry.net,
                    why: entry.why.clone(),
                };
                self.refused(req, &error);
                return Err(fail(error));
            }
            let expires_at = match req.length {
                BanLength::Permanent => None,
                BanLength::For(d) => Some(now + d),
            };
            // A later request in the same batch for the same target builds on the earlier one.
            let current = match planned.get(&req.target) {
                Some(&i) => Some(outcomes_ban(&outcomes, i).clone()),
                None => self.active.get(&req.target).cloned(),
            };
            let count = self.previous_bans(&req.jail, &req.target) + 1;
            let outcome = match current {
                None => {
                    let slot = Slot::of(&req.target);
                    let used = self.used.get(&slot).copied().unwrap_or(0);
                    let more = extra.entry(slot).or_insert(0);
                    if let Some(cap) = capacity.of(slot) {
                        if used + *more >= cap {
                            self.stats.refused_full += 1;
                            let error = BanError::Full {
                                target: req.target,
                                map: self.backend.container(slot),
                                capacity: cap,
                            };
                            self.refused(req, &error);
                            return Err(fail(error));
                        }
                    }
                    *more += 1;
                    BanOutcome::New(Ban {
                        target: req.target,
                        jail: req.jail.clone(),
                        blocktype: req.blocktype,
                        banned_at: now,
                        expires_at,
                        count,
                        scope: self.narrowest(&req.target, &req.scope, &planned, &outcomes),
                    })
                }
                Some(old) => {
                    let longer = match (old.expires_at, expires_at) {
                        (None, _) => false,
                        (Some(_), None) => true,
                        (Some(a), Some(b)) => b > a,
                    };
                    // Two jails' ports add up; a ban of the whole address takes them all.
                    let scope = self.narrowest(
                        &req.target,
                        &scope::union(&old.scope, &req.scope),
                        &planned,
                        &outcomes,
                    );
                    if longer || old.blocktype != req.blocktype || scope != old.scope {
                        BanOutcome::Extended(Ban {
                            target: req.target,
                            jail: req.jail.clone(),
                            blocktype: req.blocktype,
                            banned_at: now,
                            expires_at: if longer { expires_at } else { old.expires_at },
                            count,
                            scope,
                        })
                    } else {
                        BanOutcome::Unchanged(old)
                    }
                }
            };
            planned.insert(req.target, outcomes.len());
            outcomes.push(outcome);
        }

        // Only the final state of each target goes to the backend and the log; with the
        // request that made it, for the event's cause.
        let finals: Vec<(&Ban, &Cause)> = planned
            .values()
            .map(|&i| (outcomes_ban(&outcomes, i), &requests[i].cause))
            .filter(|(b, _)| self.active.get(&b.target) != Some(b))
            .collect();
        let specs: Vec<BlockSpec> = finals.iter().map(|(b, _)| BlockSpec::from(*b)).collect();
        let records: Vec<Record> = finals
            .iter()
            .map(|(b, _)| Record::Ban(record_from_ban(b)))
            .collect();
        let finals: Vec<(Ban, Cause)> = finals
            .into_iter()
            .map(|(b, c)| (b.clone(), c.clone()))
            .collect();
        // Prefixes banned whole by this batch, whose scoped bans inside must follow.
        let wholes: Vec<IpPrefix> = finals
            .iter()
            .filter(|(b, _)| b.scope.is_none() && !b.target.is_host())
            .map(|(b, _)| b.target)
            .collect();
        let whole = |error| BatchError { index: 0, error };
        // A ban into a flushed firewall would print "banned" and enforce nothing.
        if !specs.is_empty() {
            self.check_enforcement().map_err(whole)?;
        }
        if let Err(e) = self.backend.block(&specs) {
            self.stats.backend_errors += 1;
            // Leave nothing half-applied in the backend: put back what was there before.
            let new_targets: Vec<IpPrefix> = specs
                .iter()
                .filter(|s| !self.active.contains_key(&s.target))
                .map(|s| s.target)
                .collect();
            let old: Vec<BlockSpec> = specs
                .iter()
                .filter_map(|s| self.active.get(&s.target).map(BlockSpec::from))
                .collect();
            let _ = self.backend.unblock(&new_targets);
            let _ = self.backend.block(&old);
            return Err(whole(match e {
                BackendError::Full {
                    map,
                    capacity,
                    target,
                } => {
                    self.stats.refused_full += 1;
                    BanError::Full {
                        target,
                        map,
                        capacity,
                    }
                }
                other => BanError::Backend(other),
            }));
        }
        if let Err(e) = self.store.append(&records) {
            let new_targets: Vec<IpPrefix> = specs
                .iter()
                .filter(|s| !self.active.contains_key(&s.target))
                .map(|s| s.target)
                .collect();
            let _ = self.backend.unblock(&new_targets);
            return Err(whole(BanError::State(e)));
        }
        for (ban, cause) in finals {
            self.history.insert(
                (ban.jail.clone(), ban.target),
                (ban.count, unix_secs(ban.banned_at)),
            );
            let event = if self.active.contains_key(&ban.target) {
                BanEvent::Extended {
                    ban: ban.clone(),
                    cause,
                }
            } else {
                BanEvent::Banned {
                    ban: ban.clone(),
                    cause,
                }
            };
            self.insert_active(ban);
            self.events.push(event);
            self.stats.bans_total += 1;
        }
        self.widen_inside(&wholes);
        self.compact_if_needed();
        Ok(outcomes)
    }

    /// `scope` for a ban of `target`, or the whole address when a ban of a wider prefix already
    /// takes it whole (active, or planned earlier in the batch). The kernel program enforces
    /// the longest match only, so a port-scoped ban inside a banned prefix would otherwise
    /// open the prefix's other ports to that address.
    fn narrowest(
        &self,
        target: &IpPrefix,
        scope: &Scope,
        planned: &HashMap<IpPrefix, usize>,
        outcomes: &[BanOutcome],
    ) -> Scope {
        scope.as_ref()?;
        let whole = |wider: &IpPrefix| match planned.get(wider) {
            Some(&i) => outcomes_ban(outcomes, i).scope.is_none(),
            None => self.active.get(wider).is_some_and(|b| b.scope.is_none()),
        };
        let covered = (0..target.prefix_len())
            .map(|len| IpPrefix::containing(target.addr(), len))
            .any(|wider| whole(&wider));
        if covered {
            None
        } else {
            scope.clone()
        }
    }

    /// After whole-address bans of the prefixes `wholes`: port-scoped bans inside them take
    /// the whole address too (see [`Self::narrowest`]), until they end. Best effort: a failure
    /// is logged, and the next ban or restart tries again.
    fn widen_inside(&mut self, wholes: &[IpPrefix]) {
        if wholes.is_empty() || self.scoped.is_empty() {
            return;
        }
        let widened: Vec<Ban> = self
            .scoped
            .iter()
            .filter(|t| wholes.iter().any(|w| w != *t && w.contains(t)))
            .filter_map(|t| self.active.get(t))
            .map(|b| Ban {
                scope: None,
                ..b.clone()
            })
            .collect();
        if widened.is_empty() {
            return;
        }
        let specs: Vec<BlockSpec> = widened.iter().map(BlockSpec::from).collect();
        let records: Vec<Record> = widened
            .iter()
            .map(|b| Record::Ban(record_from_ban(b)))
            .collect();
        if let Err(e) = self.backend.block(&specs) {
            self.stats.backend_errors += 1;
            log::warn!("widening {} port-scoped bans failed: {e}", specs.len());
            return;
        }
        if let Err(e) = self.store.append(&records) {
            log::warn!("saving {} widened bans failed: {e}", records.len());
        }
        for ban in widened {
            self.events.push(BanEvent::Extended {
                ban: ban.clone(),
                cause: Cause::default(),
            });
            self.insert_active(ban);
        }
    }

    /// Lift a ban. Returns the ban that was lifted, or None if the target was not banned.
    pub fn unban(&mut self, target: &IpPrefix) -> Result<Option<Ban>, BanError> {
        self.lift(target, Lifted::ByHand)
    }

    fn lift(&mut self, target: &IpPrefix, why: Lifted) -> Result<Option<Ban>, BanError> {
        Ok(self.lift_batch(std::slice::from_ref(target), why)?.pop())
    }

    /// Lift several bans at once (one backend call, one write of the state); targets not
    /// banned are passed over. Returns the bans lifted.
    pub fn lift_batch(&mut self, targets: &[IpPrefix], why: Lifted) -> Result<Vec<Ban>, BanError> {
        let mut targets: Vec<IpPrefix> = targets
            .iter()
            .filter(|t| self.active.contains_key(t))
            .copied()
            .collect();
        targets.sort_unstable();
        targets.dedup();
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        self.backend.unblock(&targets)?;
        let at = unix_secs(self.clock.now());
        let records: Vec<Record> = targets
            .iter()
            .map(|t| Record::Unban { target: *t, at })
            .collect();
        self.store.append(&records)?;
        self.stats.unbans_total += targets.len() as u64;
        let lifted: Vec<Ban> = targets
            .iter()
            .filter_map(|t| self.remove_active(t))
            .collect();
        self.events
            .extend(lifted.iter().map(|ban| BanEvent::Unbanned {
                ban: ban.clone(),
                why,
            }));
        Ok(lifted)
    }

    /// Lift every ban.
    pub fn unban_all(&mut self) -> Result<Vec<Ban>, BanError> {
        let targets: Vec<IpPrefix> = self.active.keys().copied().collect();
        self.lift_batch(&targets, Lifted::ByHand)
    }

    /// Lift every ban whose deadline has passed. The kernel program already ignores them; this
    /// frees their map entries.
    pub fn expire(&mut self) -> Vec<Ban> {
        let now = self.clock.now();
        if self.expiry_retry.is_some_and(|(at, _)| now < at) {
            return Vec::new();
        }
        let due: Vec<IpPrefix> = self
            .deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, target)| *target)
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        if let Err(e) = self.backend.unblock(&due) {
            // Enforcement ignores expired entries anyway (XDP checks deadlines, netfilter
            // expires them itself), so there is no hurry: back off, doubling the pause, and
            // say so once per pause rather than on every loop of the core.
            self.stats.backend_errors += 1;
            let pause = self
                .expiry_retry
                .map_or(EXPIRY_RETRY_FIRST, |(_, p)| (p * 2).min(EXPIRY_RETRY_MAX));
            self.expiry_retry = Some((now + pause, pause));
            log::warn!(
                "removing {} expired bans failed (retrying in {}s): {e}",
                due.len(),
                pause.as_secs()
            );
            return Vec::new();
        }
        self.expiry_retry = None;
        self.stats.expired_total += due.len() as u64;
        let expired: Vec<Ban> = due.iter().filter_map(|t| self.remove_active(t)).collect();
        self.events.extend(
            expired
                .iter()
                .map(|ban| BanEvent::Expired { ban: ban.clone() }),
        );
        self.compact_if_needed();
        expired
    }

    /// Forget the history of bans older than [`HISTORY_MAX_AGE`] that are no longer active.
    /// Returns how many entries went.
    pub fn prune_history(&mut self) -> usize {
        let cutoff = unix_secs(self.clock.now()).saturating_sub(HISTORY_MAX_AGE.as_secs());
        let before = self.history.len();
        let active = &self.active;
        self.history
            .retain(|(_, target), (_, at)| *at >= cutoff || active.contains_key(target));
        before - self.history.len()
    }

    /// When the next ban expires (or, after a failed sweep, when to retry it).
    pub fn next_deadline(&self) -> Option<SystemTime> {
        let next = self.deadlines.iter().next().map(|(t, _)| *t)?;
        Some(match self.expiry_retry {
            Some((retry, _)) => next.max(retry),
            None => next,
        })
    }

    pub fn get(&self, target: &IpPrefix) -> Option<&Ban> {
        self.active.get(target)
    }

    /// How many active bans `jail` made.
    pub fn active_of(&self, jail: &JailId) -> usize {
        self.by_jail.get(jail).copied().unwrap_or(0)
    }

    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    pub fn active(&self) -> impl Iterator<Item = &Ban> {
        self.active.values()
    }

    pub fn stats(&self) -> ManagerStats {
        self.stats
    }

    /// Every active ban with its hit counters, most recent first.
    pub fn list(&mut self) -> Result<Vec<BanView>, BanError> {
        // The core waits for this: only the bans that stopped a packet are looked up (most
        // of a million never see one), and the sort moves references, not bans. Joining a
        // million counters through a hash map, then by sorting both sides, took the core
        // 2.5 s, then 1 s, before the list's first line.
        let hits: HashMap<IpPrefix, Hits> = self.backend.hits()?.into_iter().collect();
        // Newest first, then by target; targets are unique, so an unstable sort gives the
        // one order.
        let mut bans: Vec<_> = self
            .active
            .values()
            .map(|b| ((std::cmp::Reverse(b.banned_at), b.target.sort_key()), b))
            .collect();
        bans.sort_unstable_by_key(|(key, _)| *key);
        Ok(bans
            .into_iter()
            .map(|(_, b)| BanView {
                ban: b.clone(),
                hits: hits.get(&b.target).copied().unwrap_or_default(),
            })
            .collect())
    }

    pub fn counters(&mut self) -> Result<Counters, BanError> {
        Ok(self.backend.counters()?)
    }

    /// Stop: with `keep`, bans stay in the kernel (each still expires by its deadline).
    pub fn shutdown(&mut self, keep: bool) -> Result<(), BanError> {
        self.backend.shutdown(keep)?;
        Ok(())
    }

    fn insert_active(&mut self, ban: Ban) {
        *self.by_jail.entry(ban.jail.clone()).or_insert(0) += 1;
        if let Some(old) = self.active.get(&ban.target) {
            if let Some(n) = self.by_jail.get_mut(&old.jail) {
                *n = n.saturating_sub(1);
            }
            if let Some(t) = old.expires_at {
                self.deadlines.remove(&(t, old.target));
            }
        } else {
            *self.used.entry(Slot::of(&ban.target)).or_insert(0) += 1;
        }
        if let Some(t) = ban.expires_at {
            self.deadlines.insert((t, ban.target));
        }
        if ban.scope.is_some() {
            self.scoped.insert(ban.target);
        } else {
            self.scoped.remove(&ban.target);
        }
        self.active.insert(ban.target, ban);
    }

    fn remove_active(&mut self, target: &IpPrefix) -> Option<Ban> {
        let ban = self.active.remove(target)?;
        self.scoped.remove(target);
        if let Some(n) = self.by_jail.get_mut(&ban.jail) {
            *n = n.saturating_sub(1);
        }
        if let Some(t) = ban.expires_at {
            self.deadlines.remove(&(t, ban.target));
        }
        if let Some(n) = self.used.get_mut(&Slot::of(target)) {
            *n = n.saturating_sub(1);
        }
        Some(ban)
    }

    /// Rewrite the log when it has grown well past the state it describes. Failure here loses
    /// nothing (the old log stays valid), so it is only logged.
    fn compact_if_needed(&mut self) {
        let live = self.active.len() + self.history.len();
        if !self.store.wants_compaction(live) {
            return;
        }
        let mut records: Vec<Record> = Vec::with_capacity(live);
        for ((jail, target), (count, at)) in &self.history {
            match self.active.get(target) {
                Some(b) if &b.jail == jail => {}
                // History only: an already-lifted ban, kept so the increment remembers it.
                _ => {
                    records.push(Record::Ban(BanRecord {
                        target: *target,
                        jail: jail.to_string(),
                        blocktype: BlockType::Drop,
                        banned_at: *at,
                        expires_at: Some(*at),
                        count: *count,
                        ports: None,
                    }));
                    records.push(Record::Unban {
                        target: *target,
                        at: *at,
                    });
                }
            }
        }
        // Active bans last, so replay ends with them in force.
        records.extend(
            self.active
                .values()
                .map(|b| Record::Ban(record_from_ban(b))),
        );
        if let Err(e) = self.store.rewrite(&records) {
            log::warn!("compacting the ban log failed (the old one stays valid): {e}");
        }
    }
}

fn outcomes_ban(outcomes: &[BanOutcome], i: usize) -> &Ban {
    outcomes[i].ban()
}

fn ban_from_record(r: &BanRecord) -> Ban {
    Ban {
        target: r.target,
        jail: JailId::named(&r.jail),
        blocktype: r.blocktype,
        banned_at: from_unix_secs(r.banned_at),
        expires_at: r.expires_at.map(from_unix_secs),
        count: r.count,
        scope: r.ports.clone().map(Arc::new),
    }
}

fn record_from_ban(b: &Ban) -> BanRecord {
    BanRecord {
        target: b.target,
        jail: b.jail.to_string(),
        blocktype: b.blocktype,
        banned_at: unix_secs(b.banned_at),
        expires_at: b.expires_at.map(unix_secs),
        count: b.count,
        ports: b.scope.as_deref().cloned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{backend::memory::MemoryBackend, backend::Capacity, clock::ManualClock};

    /// A manager over a shared memory backend we can inspect.
    struct Fixture {
        dir: tempfile::TempDir,
        clock: ManualClock,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
                clock: ManualClock::at(1_000_000),
            }
        }

        fn manager(&self, backend: MemoryBackend) -> BanManager {
            let (store, records, _) = Store::open(self.dir.path()).unwrap();
            let mut ignore = IgnoreList::default();
            ignore.push("127.0.0.0/8".parse().unwrap(), "loopback");
            ignore.push("198.18.100.0/24".parse().unwrap(), "ignoreip");
            let mut m = BanManager::new(
                Box::new(backend),
                store,
                Arc::new(self.clock.clone()),
                ignore,
            );
            m.restore(&records).unwrap();
            m
        }
    }

    fn req(target: &str, secs: u64) -> BanRequest {
        BanRequest {
            target: target.parse().unwrap(),
            jail: "sshd".into(),
            cause: Cause::default(),
            blocktype: BlockType::Drop,
            length: BanLength::For(Duration::from_secs(secs)),
            scope: None,
        }
    }

    fn scoped(target: &str, secs: u64, ports: &str) -> BanRequest {
        BanRequest {
            scope: Some(Arc::new(ports.parse().unwrap())),
            ..req(target, secs)
        }
    }

    fn scope_of(m: &BanManager, target: &str) -> String {
        scope::describe(&m.get(&target.parse().unwrap()).unwrap().scope)
    }

    #[test]
    fn port_scopes_add_up_and_the_whole_address_wins() {
        let f = Fixture::new();
        let backend = MemoryBackend::default();
        let mut m = f.manager(backend.clone());
        assert!(matches!(
            m.ban(scoped("198.18.0.7", 600, "tcp:22")).unwrap(),
            BanOutcome::New(_)
        ));
        assert_eq!(scope_of(&m, "198.18.0.7"), "tcp:22");
        // Another jail's ports, no longer: the ban now covers both, until the later end.
        let out = m.ban(scoped("198.18.0.7", 300, "tcp:80,443")).unwrap();
        assert!(matches!(out, BanOutcome::Extended(_)), "{out:?}");
        assert_eq!(scope_of(&m, "198.18.0.7"), "tcp:22,80,443");
        assert_eq!(
            out.ban().expires_at,
            Some(f.clock.now() + Duration::from_secs(600))
        );
        // The same ports again change nothing.
        assert!(matches!(
            m.ban(scoped("198.18.0.7", 60, "tcp:22")).unwrap(),
            BanOutcome::Unchanged(_)
        ));
        // A ban of the whole address (recidive, by hand) takes every port; a later scoped
        // ban does not narrow it again.
        m.ban(req("198.18.0.7", 60)).unwrap();
        assert_eq!(scope_of(&m, "198.18.0.7"), "all ports");
        m.ban(scoped("198.18.0.7", 6000, "tcp:22")).unwrap();
        assert_eq!(scope_of(&m, "198.18.0.7"), "all ports");
        // The backend was told each time.
        let kernel = backend.state();
        let spec = kernel.bans.get(&"198.18.0.7".parse().unwrap()).unwrap();
        assert_eq!(spec.scope, None);
    }

    #[test]
    fn a_scoped_ban_inside_a_banned_prefix_takes_the_whole_address() {
        // The kernel enforces the longest match: a scoped /32 inside a banned /24 would open
        // the /24's other ports to that address.
        let f = Fixture::new();
        let backend = MemoryBackend::default();
        let mut m = f.manager(backend.clone());
        m.ban(scoped("198.18.5.9", 600, "tcp:22")).unwrap();
        m.ban(scoped("198.18.6.9", 600, "tcp:22")).unwrap();
        m.ban(req("198.18.5.0/24", 60)).unwrap();
        assert_eq!(scope_of(&m, "198.18.5.9"), "all ports", "widened");
        assert_eq!(scope_of(&m, "198.18.6.9"), "tcp:22", "outside: untouched");
        assert_eq!(
            backend.state().bans[&"198.18.5.9".parse().unwrap()].scope,
            None
        );
        // And the other order: the prefix first.
        m.ban(scoped("198.18.5.10", 600, "tcp:22")).unwrap();
        assert_eq!(scope_of(&m, "198.18.5.10"), "all ports");
        // In one batch, either order.
        let out = m
            .ban_batch(&[
                scoped("198.18.7.1", 600, "tcp:22"),
                req("198.18.7.0/24", 60),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(scope_of(&m, "198.18.7.1"), "all ports");
        let events = m.take_events();
        assert!(events
            .iter()
            .any(|e| matches!(e, BanEvent::Extended { ban, .. } if ban.target == "198.18.5.9".parse().unwrap())));
    }

    #[test]
    fn active_bans_are_counted_by_jail_as_they_come_and_go() {
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        let sshd = JailId::from("sshd");
        let web = JailId::from("web");
        m.ban(req("198.18.0.1", 600)).unwrap();
        m.ban(req("198.18.0.2", 600)).unwrap();
        m.ban(BanRequest {
            jail: web.clone(),
            ..req("198.18.0.3", 600)
        })
        .unwrap();
        assert_eq!((m.active_of(&sshd), m.active_of(&web)), (2, 1));
        // Taken over by another jail (a longer ban): counted there now.
        m.ban(BanRequest {
            jail: web.clone(),
            ..req("198.18.0.1", 6000)
        })
        .unwrap();
        assert_eq!((m.active_of(&sshd), m.active_of(&web)), (1, 2));
        m.unban(&"198.18.0.3".parse().unwrap()).unwrap();
        f.clock.advance(Duration::from_secs(700));
        m.expire();
        assert_eq!((m.active_of(&sshd), m.active_of(&web)), (0, 1));
        assert_eq!(m.active_of(&JailId::Manual), 0);
    }

    #[test]
    fn scopes_survive_a_restart() {
        let f = Fixture::new();
        {
            let mut m = f.manager(MemoryBackend::default());
            m.ban(scoped("198.18.0.7", 600, "tcp:22,1000-2000 udp:53"))
                .unwrap();
            m.ban(req("198.18.0.8", 600)).unwrap();
        }
        let backend = MemoryBackend::default();
        let m = f.manager(backend.clone());
        assert_eq!(scope_of(&m, "198.18.0.7"), "tcp:22,1000-2000 udp:53");
        assert_eq!(scope_of(&m, "198.18.0.8"), "all ports");
        assert!(backend.state().bans[&"198.18.0.7".parse().unwrap()]
            .scope
            .is_some());
    }

    #[test]
    fn every_change_is_an_event_in_order() {
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        let kinds = |m: &mut BanManager| -> Vec<String> {
            m.take_events()
                .iter()
                .map(|e| {
                    let kind = match e {
                        BanEvent::Banned { .. } => "banned",
                        BanEvent::Extended { .. } => "extended",
                        BanEvent::Unbanned {
                            why: Lifted::ByHand,
                            ..
                        } => "unbanned by hand",
                        BanEvent::Unbanned { .. } => "unbanned: allowlisted",
                        BanEvent::Expired { .. } => "expired",
                        BanEvent::Refused { .. } => "refused",
                    };
                    format!(
                        "{kind} {} by {}",
                        e.ban().map_or("-".into(), |b| b.target.to_string()),
                        e.jail()
                    )
                })
                .collect()
        };
        let mut first = req("198.18.0.1", 60);
        first.cause.failures = 3;
        m.ban(first).unwrap();
        let events = m.take_events();
        assert!(
            matches!(&events[..], [BanEvent::Banned { cause, .. }] if cause.failures == 3),
            "{events:?}"
        );
        // Longer: extended; the same again: nothing happened, so no event.
        m.ban(req("198.18.0.1", 600)).unwrap();
        m.ban(req("198.18.0.1", 600)).unwrap();
        assert_eq!(kinds(&mut m), ["extended 198.18.0.1 by sshd"]);
        assert!(m.ban(req("198.18.100.7", 60)).is_err());
        assert_eq!(kinds(&mut m), ["refused - by sshd"]);
        m.ban(req("198.18.0.2", 60)).unwrap();
        m.unban(&"198.18.0.1".parse().unwrap()).unwrap();
        f.clock.advance(Duration::from_secs(61));
        m.expire();
        assert_eq!(
            kinds(&mut m),
            [
                "banned 198.18.0.2 by sshd",
                "unbanned by hand 198.18.0.1 by sshd",
                "expired 198.18.0.2 by sshd"
            ]
        );
        m.ban(req("198.18.0.3", 60)).unwrap();
        let mut wider = m.ignore_list().clone();
        wider.push("198.18.0.0/24".parse().unwrap(), "ignoreip");
        m.set_ignore(wider).unwrap();
        assert_eq!(
            kinds(&mut m),
            [
                "banned 198.18.0.3 by sshd",
                "unbanned: allowlisted 198.18.0.3 by sshd"
            ]
        );
        // A batch that fails as a whole changes nothing, and says so only for its refusal.
        let batch = [req("198.18.1.1", 60), req("198.18.0.9", 60)];
        assert!(m.ban_batch(&batch).is_err());
        assert_eq!(kinds(&mut m), ["refused - by sshd"]);
        assert!(m.get(&"198.18.1.1".parse().unwrap()).is_none());
    }

    #[test]
    fn list_gives_each_ban_its_own_counts_most_recent_first() {
        use crate::backend::Hits;
        let f = Fixture::new();
        let backend = MemoryBackend::default();
        let mut m = f.manager(backend.clone());
        // Bans a second apart; the backend sorts its own way (by target).
        for t in ["198.18.0.9", "2001:db8::1", "198.18.0.1", "198.18.0.5"] {
            m.ban(req(t, 600)).unwrap();
            f.clock.advance(Duration::from_secs(1));
        }
        let hits = |n| Hits {
            dropped: n,
            tarpitted: 1,
            last_seen: None,
        };
        {
            let mut s = backend.state();
            s.hits.insert("198.18.0.1".parse().unwrap(), hits(7));
            s.hits.insert("2001:db8::1".parse().unwrap(), hits(3));
            // A target the kernel counts that is no ban (left over): not listed.
            let stray: IpPrefix = "198.18.0.2".parse().unwrap();
            s.hits.insert(stray, hits(99));
            let spec = s.bans.values().next().unwrap().clone();
            s.bans.insert(
                stray,
                BlockSpec {
                    target: stray,
                    ..spec
                },
            );
        }
        let listed: Vec<(String, u64)> = m
            .list()
            .unwrap()
            .iter()
            .map(|v| (v.ban.target.to_string(), v.hits.total()))
            .collect();
        assert_eq!(
            listed,
            [
                ("198.18.0.5".to_string(), 0),
                ("198.18.0.1".to_string(), 8),
                ("2001:db8::1".to_string(), 4),
                ("198.18.0.9".to_string(), 0),
            ]
        );
    }

    #[test]
    fn a_ban_is_enforced_listed_and_expires_on_the_clock() {
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        let outcome = m.ban(req("198.18.0.1", 60)).unwrap();
        assert!(matches!(outcome, BanOutcome::New(_)));
        assert_eq!(m.list().unwrap().len(), 1);
        f.clock.advance(Duration::from_secs(59));
        assert!(m.expire().is_empty());
        f.clock.advance(Duration::from_secs(1));
        let expired = m.expire();
        assert_eq!(expired.len(), 1);
        assert_eq!(m.active_count(), 0);
        assert_eq!(m.stats().expired_total, 1);
    }

    #[test]
    fn allowlisted_targets_are_refused_and_nothing_changes() {
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        let err = m.ban(req("127.0.0.1", 60)).unwrap_err();
        assert!(
            err.to_string()
                .contains("allowlist (loopback: 127.0.0.0/8)"),
            "{err}"
        );
        let err = m.ban(req("198.18.100.0/25", 60)).unwrap_err();
        assert!(matches!(err, BanError::Ignored { .. }));
        assert_eq!(m.active_count(), 0);
        assert_eq!(m.stats().refused_allowlisted, 2);
        // A wider prefix that merely contains an allowlisted net is allowed: the kernel
        // allowlist keeps the inner net passing.
        assert!(m.ban(req("198.18.0.0/16", 60)).is_ok());
        let wide: IpPrefix = "198.18.0.0/16".parse().unwrap();
        let inside: Vec<_> = m.ignore_list().inside(&wide).collect();
        assert_eq!(inside.len(), 1);
    }

    #[test]
    fn rebanning_only_extends() {
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        m.ban(req("198.18.0.1", 600)).unwrap();
        assert!(matches!(
            m.ban(req("198.18.0.1", 60)).unwrap(),
            BanOutcome::Unchanged(_)
        ));
        let extended = m.ban(req("198.18.0.1", 6000)).unwrap();
        assert!(matches!(extended, BanOutcome::Extended(_)));
        assert_eq!(
            extended.ban().expires_at,
            Some(f.clock.now() + Duration::from_secs(6000))
        );
        // The old deadline no longer lifts it.
        f.clock.advance(Duration::from_secs(601));
        assert!(m.expire().is_empty());
        assert_eq!(m.active_count(), 1);
    }

    #[test]
    fn a_full_map_refuses_the_new_ban_and_keeps_the_others() {
        let f = Fixture::new();
        let backend = MemoryBackend::with_capacity(Capacity {
            exact_v4: Some(2),
            ..Capacity::default()
        });
        let mut m = f.manager(backend);
        m.ban(req("198.18.0.1", 60)).unwrap();
        m.ban(req("198.18.0.2", 60)).unwrap();
        let err = m.ban(req("198.18.0.3", 60)).unwrap_err();
        assert_eq!(
            err.to_string(),
            // The backend names its container (XDP: bans_v4); the memory one by the bucket.
            "198.18.0.3 was not banned: the IPv4 address map is full (2 bans)"
        );
        assert_eq!(m.active_count(), 2);
        assert_eq!(m.stats().refused_full, 1);
        // Updating an existing ban still works when full; IPv6 has its own map.
        assert!(m.ban(req("198.18.0.1", 600)).is_ok());
        assert!(m.ban(req("2001:db8::1", 600)).is_ok());
        // Freeing a slot makes room again.
        m.unban(&"198.18.0.2".parse().unwrap()).unwrap();
        assert!(m.ban(req("198.18.0.3", 60)).is_ok());
    }

    #[test]
    fn a_batch_with_one_bad_entry_applies_nothing() {
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        let err = m
            .ban_batch(&[
                req("198.18.0.1", 60),
                req("127.0.0.5", 60),
                req("198.18.0.2", 60),
            ])
            .unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(m.active_count(), 0);
        let ok = m
            .ban_batch(&[req("198.18.0.1", 60), req("198.18.0.2", 60)])
            .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(m.active_count(), 2);
    }

    #[test]
    fn a_backend_failure_changes_nothing() {
        let f = Fixture::new();
        let backend = MemoryBackend::default();
        let mut m = f.manager(backend.clone());
        m.ban(req("198.18.0.1", 60)).unwrap();
        backend.state().fail_next_block = true;
        let err = m.ban(req("198.18.0.2", 60)).unwrap_err();
        assert!(matches!(err, BanError::Backend(_)), "{err}");
        assert_eq!(m.active_count(), 1);
        assert_eq!(backend.state().bans.len(), 1);
        assert_eq!(m.stats().backend_errors, 1);
        // Nothing of the failed ban reached the log either.
        drop(m);
        let m = f.manager(MemoryBackend::default());
        assert_eq!(m.active_count(), 1);
    }

    #[test]
    fn bans_survive_a_restart_and_expired_ones_do_not() {
        let f = Fixture::new();
        {
            let mut m = f.manager(MemoryBackend::default());
            m.ban(req("198.18.0.1", 60)).unwrap();
            m.ban(req("198.18.0.2", 6000)).unwrap();
            m.ban(BanRequest {
                length: BanLength::Permanent,
                ..req("2001:db8::/64", 0)
            })
            .unwrap();
            m.unban(&"198.18.0.2".parse().unwrap()).unwrap();
        }
        f.clock.advance(Duration::from_secs(120));
        let m = f.manager(MemoryBackend::default());
        assert_eq!(m.active_count(), 1);
        let ban = m.get(&"2001:db8::/64".parse().unwrap()).unwrap();
        assert_eq!(ban.expires_at, None);
        assert_eq!(
            m.previous_bans(&JailId::named("sshd"), &"198.18.0.1".parse().unwrap()),
            1
        );
    }

    #[test]
    fn restore_adopts_kernel_bans_missing_from_the_log_and_drops_stale_ones() {
        let f = Fixture::new();
        let backend = MemoryBackend::default();
        let now = f.clock.now();
        for (t, exp) in [
            ("198.18.0.7", Some(now + Duration::from_secs(60))),
            ("198.18.0.8", Some(now - Duration::from_secs(1))),
        ] {
            let target: IpPrefix = t.parse().unwrap();
            backend.state().bans.insert(
                target,
                BlockSpec {
                    target,
                    blocktype: BlockType::Tarpit,
                    expires_at: exp,
                    scope: None,
                },
            );
        }
        let m = f.manager(backend);
        assert_eq!(m.active_count(), 1);
        assert_eq!(
            m.get(&"198.18.0.7".parse().unwrap()).unwrap().jail,
            "restored"
        );
    }

    #[test]
    fn ban_counts_grow_per_jail_for_the_increment() {
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        let t: IpPrefix = "198.18.0.1".parse().unwrap();
        assert_eq!(m.previous_bans(&JailId::named("sshd"), &t), 0);
        m.ban(req("198.18.0.1", 60)).unwrap();
        f.clock.advance(Duration::from_secs(61));
        m.expire();
        m.ban(req("198.18.0.1", 60)).unwrap();
        assert_eq!(m.get(&t).unwrap().count, 2);
        assert_eq!(m.previous_bans(&JailId::named("sshd"), &t), 2);
        assert_eq!(m.previous_bans(&JailId::named("other"), &t), 0);
    }

    #[test]
    fn compaction_keeps_state_and_history() {
        let f = Fixture::new();
        {
            let mut m = f.manager(MemoryBackend::default());
            for round in 0..3 {
                for i in 0..400u32 {
                    let t = format!("198.18.{}.{}", i / 256, i % 256);
                    m.ban(req(&t, 10)).unwrap();
                }
                f.clock.advance(Duration::from_secs(11));
                m.expire();
                let _ = round;
            }
            m.ban(req("198.19.0.1", 6000)).unwrap();
        }
        let (store, _, _) = Store::open(f.dir.path()).unwrap();
        assert!(
            store.len() < 1201,
            "log was never compacted: {}",
            store.len()
        );
        drop(store);
        let m = f.manager(MemoryBackend::default());
        assert_eq!(m.active_count(), 1);
        assert_eq!(
            m.previous_bans(&JailId::named("sshd"), &"198.18.1.10".parse().unwrap()),
            3
        );
    }

    #[test]
    fn a_ban_that_cannot_be_lifted_is_retried_with_a_growing_pause() {
        // Issue 9, item 11: retried every 5 ms with a WARN each time.
        let f = Fixture::new();
        let backend = MemoryBackend::default();
        let mut m = f.manager(backend.clone());
        m.ban(req("198.18.0.1", 10)).unwrap();
        f.clock.advance(Duration::from_secs(11));
        backend.state().fail_unblock = true;
        let calls = |b: &MemoryBackend| b.state().unblock_calls;
        let before = calls(&backend);
        assert!(m.expire().is_empty());
        assert_eq!(calls(&backend), before + 1);
        // The core would loop at once on a past deadline; now it is told to wait.
        let now = crate::clock::Clock::now(&f.clock);
        assert_eq!(m.next_deadline(), Some(now + Duration::from_secs(1)));
        for _ in 0..100 {
            assert!(m.expire().is_empty());
        }
        assert_eq!(
            calls(&backend),
            before + 1,
            "no retry before the pause ends"
        );
        f.clock.advance(Duration::from_secs(1));
        assert!(m.expire().is_empty());
        let now = crate::clock::Clock::now(&f.clock);
        assert_eq!(
            m.next_deadline(),
            Some(now + Duration::from_secs(2)),
            "doubled"
        );
        backend.state().fail_unblock = false;
        f.clock.advance(Duration::from_secs(2));
        assert_eq!(m.expire().len(), 1);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn old_ban_history_is_pruned_but_active_bans_keep_theirs() {
        // Issue 9, item 18: ban history was never pruned.
        let f = Fixture::new();
        let mut m = f.manager(MemoryBackend::default());
        m.ban(req("198.18.0.1", 60)).unwrap();
        m.ban(req("198.18.0.2", 100 * 86_400)).unwrap();
        m.unban(&"198.18.0.1".parse().unwrap()).unwrap();
        let t1: IpPrefix = "198.18.0.1".parse().unwrap();
        let t2: IpPrefix = "198.18.0.2".parse().unwrap();
        assert_eq!(m.previous_bans(&JailId::named("sshd"), &t1), 1);
        f.clock.advance(Duration::from_secs(29 * 86_400));
        assert_eq!(m.prune_history(), 0, "a month is kept");
        f.clock.advance(Duration::from_secs(2 * 86_400));
        assert_eq!(m.prune_history(), 1);
        assert_eq!(m.previous_bans(&JailId::named("sshd"), &t1), 0);
        assert_eq!(
            m.previous_bans(&JailId::named("sshd"), &t2),
            1,
            "still banned: kept"
        );
    }

    #[test]
    fn bans_lost_to_a_firewall_reload_are_put_back() {
        // Issue 9, item 6: `nft flush ruleset` lifted every ban, silently.
        let f = Fixture::new();
        let backend = MemoryBackend::default();
        let mut m = f.manager(backend.clone());
        m.ban(req("198.18.0.1", 600)).unwrap();
        m.ban(req("198.18.0.2", 600)).unwrap();
        backend.state().lost = true;
        assert!(matches!(m.check_enforcement().unwrap(), Health::Rebuilt(_)));
        let s = backend.state();
        assert_eq!(s.bans.len(), 2, "both bans back");
        assert!(s.allowlist.contains(&"127.0.0.0/8".parse().unwrap()));
        drop(s);
        assert_eq!(m.stats().enforcement_restored, 1);
        // A new ban checks first: a reload since the last round is repaired before it.
        backend.state().lost = true;
        m.ban(req("198.18.0.3", 600)).unwrap();
        assert_eq!(backend.state().bans.len(), 3);
    }
}
