//! The synchronous core: the only owner of ban state. It takes failures from the sources and
//! requests from the control socket, runs them through the jails and the ban manager, and
//! keeps time (expiry, purges, saving read positions).

use std::{
    collections::BTreeMap,
    sync::{mpsc, Arc},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::oneshot;

use crate::{
    addr::IpPrefix,
    backend::hosts_deny::HostsDeny,
    backend::Counters,
    bans::{BanManager, BanOutcome, BanRequest, BanView},
    config::{Config, JailConfig},
    duration::BanLength,
    filter::Failure,
    jail::{recidive_counts, recidive_failure, Jail, JailPolicy, JailStats, RECIDIVE},
    model::{Ban, BlockType, MANUAL_JAIL},
    source::{positions::PositionBook, CounterRegistry, SourceCounters},
};

/// What the async edges send the core.
pub enum Event {
    /// Run this on the core (the control adapter's commands and reports).
    Call(Box<dyn FnOnce(&mut Core) + Send>),
    Failures {
        jail: String,
        failures: Vec<Failure>,
    },
    /// Apply a new configuration; answers with a summary of what changed.
    Reload {
        config: Box<Config>,
        /// Sources each jail will run (for cross-source dedupe).
        sources: BTreeMap<String, usize>,
        reply: oneshot::Sender<String>,
    },
    /// rtnetlink said a link or an address changed: check enforcement and the allowlist now
    /// rather than at the next housekeeping round.
    HostChanged,
    Shutdown,
}

struct JailSlot {
    jail: Jail,
    cfg: JailConfig,
    counters: Arc<SourceCounters>,
    ignored: u64,
}

pub struct Core {
    manager: BanManager,
    jails: BTreeMap<String, JailSlot>,
    recidive: Option<Jail>,
    /// Defaults for manual bans.
    bantime: BanLength,
    blocktype: BlockType,
    keep_on_exit: bool,
    book: PositionBook,
    registry: CounterRegistry,
    last_housekeeping: Instant,
    last_history_prune: Instant,
    /// When rtnetlink news was last acted on, and whether more came since.
    last_host_check: Instant,
    host_check_pending: bool,
    /// hosts.deny for jails that ask for it.
    hosts_deny: HostsDeny,
    /// Jail bans the backend failed to apply, retried every housekeeping round.
    retry: Vec<(BanRequest, Option<String>)>,
    /// The running configuration, to rebuild the allowlist when the host's addresses change.
    config: Config,
    /// Re-read the host's addresses every housekeeping round (off in unit tests, whose
    /// allowlist is made by hand).
    watch_addresses: bool,
}

/// Most failed bans kept for retry (the oldest decisions matter most; later ones wait).
const MAX_RETRY: usize = 100_000;

/// How often the ban history is pruned (a walk over all of it).
const HISTORY_PRUNE: Duration = Duration::from_secs(600);

/// How often the core purges windows and saves read positions.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

impl Core {
    pub fn new(
        manager: BanManager,
        config: &Config,
        book: PositionBook,
        registry: CounterRegistry,
    ) -> Self {
        let mut core = Self {
            manager,
            jails: BTreeMap::new(),
            recidive: None,
            bantime: config.bantime,
            blocktype: config.blocktype,
            keep_on_exit: config.keep_on_exit,
            book,
            registry,
            last_housekeeping: Instant::now(),
            last_history_prune: Instant::now(),
            last_host_check: Instant::now(),
            host_check_pending: false,
            hosts_deny: HostsDeny::new(&config.hosts_deny_path),
            retry: Vec::new(),
            config: config.clone(),
            watch_addresses: false,
        };
        core.apply_config(config, &BTreeMap::new());
        core
    }

    /// Keep the allowlist current with the host's addresses (DHCP, SLAAC, a new VIP): checked
    /// every housekeeping round.
    pub fn watch_host_addresses(&mut self) {
        self.watch_addresses = true;
    }

    /// Create, update or drop jails to match `config`; the failure windows of jails that stay
    /// are kept. Returns what changed.
    pub fn apply_config(&mut self, config: &Config, sources: &BTreeMap<String, usize>) -> String {
        let mut added = Vec::new();
        let mut kept = Vec::new();
        for jc in &config.jails {
            let dedupe = sources.get(&jc.name).copied().unwrap_or(jc.source_count()) > 1;
            match self.jails.get_mut(&jc.name) {
                Some(slot) => {
                    slot.jail.update(jc.policy, dedupe);
                    slot.cfg = jc.clone();
                    kept.push(jc.name.clone());
                }
                None => {
                    self.jails.insert(
                        jc.name.clone(),
                        JailSlot {
                            jail: Jail::new(jc.name.clone(), jc.policy, dedupe),
                            cfg: jc.clone(),
                            counters: self.registry.get(&jc.name),
                            ignored: 0,
                        },
                    );
                    added.push(jc.name.clone());
                }
            }
        }
        let dropped: Vec<String> = self
            .jails
            .keys()
            .filter(|n| config.jail(n).is_none())
            .cloned()
            .collect();
        for n in &dropped {
            self.jails.remove(n);
            self.book.remove_status_of_jail(n);
        }
        match (config.recidive, self.recidive.as_mut()) {
            (Some(p), Some(r)) => r.update(p, false),
            (Some(p), None) => self.recidive = Some(Jail::new(RECIDIVE, p, false)),
            (None, _) => self.recidive = None,
        }
        self.bantime = config.bantime;
        self.blocktype = config.blocktype;
        self.keep_on_exit = config.keep_on_exit;
        self.config = config.clone();
        if self.hosts_deny.path() != config.hosts_deny_path.as_path() {
            self.hosts_deny = HostsDeny::new(&config.hosts_deny_path);
        }
        format!(
            "jails added: [{}], kept: [{}], dropped: [{}]; recidive {}",
            added.join(", "),
            kept.join(", "),
            dropped.join(", "),
            if self.recidive.is_some() { "on" } else { "off" }
        )
    }

    /// Serve events until shutdown.
    pub fn run(mut self, rx: mpsc::Receiver<Event>) -> Result<(), crate::bans::BanError> {
        loop {
            let wait = self
                .manager
                .next_deadline()
                .map(|t| {
                    t.duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO)
                })
                .unwrap_or(HOUSEKEEPING)
                .clamp(Duration::from_millis(5), HOUSEKEEPING);
            match rx.recv_timeout(wait) {
                Ok(Event::Call(call)) => call(&mut self),
                Ok(Event::Failures { jail, failures }) => self.on_failures(&jail, &failures),
                Ok(Event::Reload {
                    config,
                    sources,
                    reply,
                }) => {
                    let summary = self.apply_config(&config, &sources);
                    match self
                        .manager
                        .set_ignore(crate::daemon::build_ignore_list(&config))
                    {
                        Ok(lifted) => {
                            for b in lifted {
                                log::info!(
                                    "[{}] unban {} (now in the allowlist)",
                                    b.jail,
                                    b.target
                                );
                            }
                        }
                        Err(e) => log::warn!("updating the allowlist: {e}"),
                    }
                    let _ = reply.send(summary);
                }
                Ok(Event::HostChanged) => self.on_host_changed(),
                Ok(Event::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            self.tick();
            self.sync_hosts_deny();
        }
        if let Err(e) = self.book.save() {
            log::warn!("saving read positions: {e}");
        }
        self.manager.shutdown(self.keep_on_exit)?;
        if self.keep_on_exit {
            log::info!(
                "stopped; {} bans stay enforced in the kernel",
                self.manager.active_count()
            );
        } else {
            log::info!("stopped; kernel bans removed (they are kept in the state dir)");
        }
        Ok(())
    }

    /// Keep hosts.deny's banner block equal to the active bans of jails with `hosts_deny`.
    fn sync_hosts_deny(&mut self) {
        let jails: Vec<&str> = self
            .jails
            .values()
            .filter(|s| s.cfg.hosts_deny)
            .map(|s| s.cfg.name.as_str())
            .collect();
        let targets: Vec<IpPrefix> = self
            .manager
            .active()
            .filter(|b| jails.contains(&b.jail.as_str()))
            .map(|b| b.target)
            .collect();
        // Never touch hosts.deny unless a jail asked for it (once one did, keep it clean).
        if jails.is_empty() && self.hosts_deny.untouched() {
            return;
        }
        let allow = self.manager.ignore_list().nets();
        if let Err(e) = self.hosts_deny.sync(targets, &allow) {
            log::warn!("writing {}: {e}", self.hosts_deny.path().display());
        }
    }

    /// Expiry, and now and then purges and position saves.
    pub fn tick(&mut self) {
        if self.host_check_pending {
            self.on_host_changed();
        }
        for ban in self.manager.expire() {
            log::info!("[{}] unban {} (expired)", ban.jail, ban.target);
        }
        if self.last_housekeeping.elapsed() >= HOUSEKEEPING {
            self.last_housekeeping = Instant::now();
            let now = self.manager.now();
            for slot in self.jails.values_mut() {
                slot.jail.purge(now);
            }
            if let Some(r) = self.recidive.as_mut() {
                r.purge(now);
            }
            if let Err(e) = self.book.save() {
                log::warn!("saving read positions: {e}");
            }
            self.check_host();
            for (request, user) in std::mem::take(&mut self.retry) {
                self.apply_ban(request, user.as_deref());
            }
            if self.last_history_prune.elapsed() >= HISTORY_PRUNE {
                self.last_history_prune = Instant::now();
                let gone = self.manager.prune_history();
                if gone > 0 {
                    log::debug!("forgot {gone} bans older than a month");
                }
            }
        }
    }

    /// An interface or address changed: re-check at once (at most every 200 ms: a VPN
    /// restart sends a burst of messages).
    fn on_host_changed(&mut self) {
        if self.last_host_check.elapsed() < Duration::from_millis(200) {
            self.host_check_pending = true;
            return;
        }
        self.host_check_pending = false;
        self.last_host_check = Instant::now();
        self.check_host();
    }

    /// Is enforcement still in place, and is the allowlist still the host's?
    fn check_host(&mut self) {
        if let Err(e) = self.manager.check_enforcement() {
            log::warn!("checking enforcement: {e}");
        }
        if self.watch_addresses {
            self.refresh_allowlist();
        }
    }

    /// Rebuild the allowlist from the configuration and the host's addresses as they are now;
    /// apply it (lifting bans it now covers) if it changed.
    fn refresh_allowlist(&mut self) {
        let fresh = crate::daemon::build_ignore_list(&self.config);
        if &fresh == self.manager.ignore_list() {
            return;
        }
        for e in fresh.entries() {
            if self.manager.ignore_list().covering(&e.net).is_none() {
                log::info!("never banned from now on: {} ({})", e.net, e.why);
            }
        }
        match self.manager.set_ignore(fresh) {
            Ok(lifted) => {
                for b in lifted {
                    log::info!("[{}] unban {} (now in the allowlist)", b.jail, b.target);
                }
            }
            Err(e) => log::warn!("updating the allowlist: {e}"),
        }
    }

    /// Count failures from a jail's sources; ban where a jail decides so.
    pub fn on_failures(&mut self, jail: &str, failures: &[Failure]) {
        let now = self.manager.now();
        for f in failures {
            let source = IpPrefix::host(f.addr);
            let Some(slot) = self.jails.get_mut(jail) else {
                return;
            };
            // The allowlist is checked before counting: its addresses never accumulate.
            if self.manager.ignore_list().covering(&source).is_some()
                || slot.cfg.ignoreip.iter().any(|n| n.contains(&source))
            {
                slot.ignored += 1;
                continue;
            }
            let target = slot.jail.policy.target_of(f.addr);
            if self.manager.get(&target).is_some() {
                // Already banned (old lines read at start, or lines still in flight).
                continue;
            }
            let manager = &self.manager;
            let decision = slot
                .jail
                .on_failure(f, now, |t| manager.previous_bans(jail, t));
            if let Some(request) = decision {
                self.apply_ban(request, f.user.as_deref());
            }
        }
    }

    fn apply_ban(&mut self, request: BanRequest, user: Option<&str>) {
        let jail = request.jail.clone();
        let target = request.target;
        match self.manager.ban(request.clone()) {
            Ok(outcome) => {
                let ban = outcome.ban();
                let verb = match outcome {
                    BanOutcome::New(_) => "ban",
                    BanOutcome::Extended(_) => "extend ban of",
                    BanOutcome::Unchanged(_) => return,
                };
                log::info!(
                    "[{jail}] {verb} {target} ({}, {}, ban #{}{})",
                    ban.blocktype,
                    request.length,
                    ban.count,
                    user.map(|u| format!(", last user `{u}`"))
                        .unwrap_or_default()
                );
                self.count_for_recidive(&jail, &target);
            }
            Err(e @ crate::bans::BanError::Backend(_)) => {
                // The enforcement command failed (nft or ipset missing or busy): keep the
                // decision and try again at the next housekeeping round.
                log::warn!("[{jail}] {e}; will retry");
                if self.retry.len() < MAX_RETRY {
                    self.retry.push((request, user.map(str::to_string)));
                }
            }
            Err(e) => log::warn!("[{jail}] {e}"),
        }
    }

    /// Feed a ban to the recidive jail; ban for longer when it decides so.
    fn count_for_recidive(&mut self, jail: &str, target: &IpPrefix) {
        if !recidive_counts(jail) {
            return;
        }
        let now = self.manager.now();
        let Some(r) = self.recidive.as_mut() else {
            return;
        };
        let Some(f) = recidive_failure(target, now) else {
            return;
        };
        let manager = &self.manager;
        if let Some(req) = r.on_failure(&f, now, |t| manager.previous_bans(RECIDIVE, t)) {
            self.apply_ban(req, None);
        }
    }

    fn jail_policy(&self, jail: &str) -> Option<JailPolicy> {
        if jail == RECIDIVE {
            return self.recidive.as_ref().map(|r| r.policy);
        }
        self.jails.get(jail).map(|s| s.jail.policy)
    }

    /// The ban manager, for reading (what is banned, the allowlist, counters).
    pub fn manager(&self) -> &BanManager {
        &self.manager
    }

    /// The backend's packet counters (a map read, hence `&mut`).
    pub fn counters(&mut self) -> Result<Counters, crate::bans::BanError> {
        self.manager.counters()
    }

    /// Every active ban with its packet figures.
    pub fn list(&mut self) -> Result<Vec<BanView>, crate::bans::BanError> {
        self.manager.list()
    }

    /// Ban a batch by hand (or in a jail's name): all or nothing, except allowlisted
    /// targets when `skip_allowlisted` (left out, with why).
    pub fn ban_by_hand(&mut self, cmd: ManualBan) -> Result<ManualBans, Refused> {
        let jail = cmd.jail.unwrap_or_else(|| MANUAL_JAIL.to_string());
        let policy = if jail == MANUAL_JAIL {
            None
        } else {
            Some(self.jail_policy(&jail).ok_or_else(|| {
                Refused::new(format!("no jail named `{jail}` (see `banner status`)"))
            })?)
        };
        let length = cmd
            .length
            .unwrap_or_else(|| policy.map_or(self.bantime, |p| p.bantime));
        let blocktype = cmd
            .blocktype
            .unwrap_or(policy.map_or(self.blocktype, |p| p.blocktype));
        let mut requests = Vec::with_capacity(cmd.targets.len());
        let mut skipped = Vec::new();
        // Indices into the batch of what went to the manager (some may be skipped).
        let mut kept = Vec::with_capacity(cmd.targets.len());
        for (index, target) in cmd.targets.into_iter().enumerate() {
            let allowed = self
                .manager
                .ignore_list()
                .covering(&target)
                .filter(|_| cmd.skip_allowlisted);
            if let Some(e) = allowed {
                skipped.push((
                    index,
                    format!("{target} is in the allowlist ({}: {})", e.why, e.net),
                ));
                continue;
            }
            kept.push(index);
            requests.push(BanRequest {
                target,
                jail: jail.clone(),
                blocktype,
                length,
            });
        }
        let outcomes = self.manager.ban_batch(&requests).map_err(|e| Refused {
            message: e.error.to_string(),
            index: kept.get(e.index).copied().or(Some(e.index)),
        })?;
        let changed: Vec<&BanOutcome> = outcomes
            .iter()
            .filter(|o| !matches!(o, BanOutcome::Unchanged(_)))
            .collect();
        if outcomes.len() <= 20 {
            for o in &changed {
                let b = o.ban();
                let verb = match o {
                    BanOutcome::Extended(_) => "extended",
                    _ => "banned",
                };
                log::info!(
                    "[{}] {verb} {} ({}, {length}, by hand)",
                    b.jail,
                    b.target,
                    b.blocktype
                );
            }
        } else {
            log::info!(
                "[{jail}] banned {} targets by hand ({length})",
                outcomes.len()
            );
        }
        let counted: Vec<IpPrefix> = changed.iter().map(|o| o.ban().target).collect();
        for t in counted {
            self.count_for_recidive(&jail, &t);
        }
        Ok(ManualBans { outcomes, skipped })
    }

    /// Lift these bans (only those of `jail`, when given); the rest were not banned.
    pub fn unban_by_hand(
        &mut self,
        targets: &[IpPrefix],
        jail: Option<&str>,
    ) -> Result<Unbanned, Refused> {
        let mut done = Unbanned::default();
        for &p in targets {
            let of_jail = |b: &Ban| jail.is_none_or(|j| b.jail == j);
            if !self.manager.get(&p).is_some_and(of_jail) {
                done.not_banned.push(p);
                continue;
            }
            match self.manager.unban(&p) {
                Ok(Some(b)) => {
                    log::info!("[{}] unban {} (by hand)", b.jail, b.target);
                    done.lifted.push(b);
                }
                Ok(None) => done.not_banned.push(p),
                Err(e) => return Err(Refused::new(e.to_string())),
            }
        }
        Ok(done)
    }

    /// Lift every ban (of `jail`, when given).
    pub fn unban_all(&mut self, jail: Option<&str>) -> Result<Vec<Ban>, Refused> {
        let Some(jail) = jail else {
            let lifted = self
                .manager
                .unban_all()
                .map_err(|e| Refused::new(e.to_string()))?;
            log::info!("unbanned all ({} bans)", lifted.len());
            return Ok(lifted);
        };
        let picked: Vec<IpPrefix> = self
            .manager
            .active()
            .filter(|b| b.jail == jail)
            .map(|b| b.target)
            .collect();
        let mut lifted = Vec::new();
        for t in picked {
            match self.manager.unban(&t) {
                Ok(Some(b)) => lifted.push(b),
                Ok(None) => {}
                Err(e) => return Err(Refused::new(e.to_string())),
            }
        }
        log::info!("unbanned all of jail {jail} ({} bans)", lifted.len());
        Ok(lifted)
    }

    /// Every jail's figures, recidive last; the log sources' states.
    pub fn jails(&self) -> Vec<JailView<'_>> {
        let mut out: Vec<JailView<'_>> = self
            .jails
            .iter()
            .map(|(name, slot)| JailView {
                name,
                filter: &slot.cfg.filter_name,
                policy: slot.jail.policy,
                stats: slot.jail.stats(),
                tracked: slot.jail.tracked(),
                counters: Some(&slot.counters),
                ignored: slot.ignored,
            })
            .collect();
        if let Some(r) = &self.recidive {
            out.push(JailView {
                name: RECIDIVE,
                filter: "bans of the other jails",
                policy: r.policy,
                stats: r.stats(),
                tracked: r.tracked(),
                counters: None,
                ignored: 0,
            });
        }
        out
    }

    /// The state of every log source.
    pub fn sources(&self) -> Vec<crate::source::positions::SourceStatus> {
        self.book.statuses()
    }
}

/// A ban batch asked for by hand.
#[derive(Debug, Default)]
pub struct ManualBan {
    pub targets: Vec<IpPrefix>,
    /// None: the jail's bantime (the configured one for manual bans).
    pub length: Option<BanLength>,
    pub blocktype: Option<BlockType>,
    /// None: the manual jail.
    pub jail: Option<String>,
    pub skip_allowlisted: bool,
}

/// What a manual batch did.
#[derive(Debug)]
pub struct ManualBans {
    pub outcomes: Vec<BanOutcome>,
    /// (index in the batch, why) of targets left out.
    pub skipped: Vec<(usize, String)>,
}

#[derive(Debug, Default)]
pub struct Unbanned {
    pub lifted: Vec<Ban>,
    pub not_banned: Vec<IpPrefix>,
}

/// A command the core refused, and which entry of a batch caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub message: String,
    pub index: Option<usize>,
}

impl Refused {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            index: None,
        }
    }
}

/// One jail as the core knows it, for reports.
pub struct JailView<'a> {
    pub name: &'a str,
    pub filter: &'a str,
    pub policy: JailPolicy,
    pub stats: JailStats,
    pub tracked: usize,
    /// The sources' counters (None: the jail reads no log).
    pub counters: Option<&'a SourceCounters>,
    /// Failures from allowlisted addresses, counted by the core.
    pub ignored: u64,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        backend::memory::MemoryBackend, bans::IgnoreList, clock::ManualClock, filter::FailureKind,
        state::Store,
    };

    fn core_with(backend: MemoryBackend, clock: &ManualClock, dir: &std::path::Path) -> Core {
        let (store, _, _) = Store::open(dir).unwrap();
        let mut ignore = IgnoreList::default();
        ignore.push("198.18.100.0/24".parse().unwrap(), "ignoreip");
        let manager = BanManager::new(Box::new(backend), store, Arc::new(clock.clone()), ignore);
        let config = Config::parse(
            "[jails.sshd]\nlogpath = \"/tmp/banner-core-test.log\"\njournalmatch = []\n[jails.recidive]\nmaxretry = 2\n",
            "t.toml",
        )
        .unwrap();
        Core::new(
            manager,
            &config,
            PositionBook::in_memory(),
            CounterRegistry::default(),
        )
    }

    fn failure(addr: &str, clock: &ManualClock) -> Failure {
        Failure {
            addr: addr.parse().unwrap(),
            time: crate::clock::Clock::now(clock),
            session: None,
            kind: FailureKind::Attempt,
            user: None,
            fingerprint: 0,
        }
    }

    #[test]
    fn allowlisted_failures_are_never_counted() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(1_800_000_000);
        let backend = MemoryBackend::default();
        let mut core = core_with(backend.clone(), &clock, dir.path());
        let f = failure("198.18.100.5", &clock);
        core.on_failures("sshd", &[f.clone(), f.clone(), f.clone(), f]);
        assert!(backend.state().bans.is_empty());
        assert_eq!(core.jails["sshd"].ignored, 4);
        assert_eq!(core.jails["sshd"].jail.stats().failures, 0);
    }

    #[test]
    fn a_ban_the_backend_refused_is_retried_until_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(1_800_000_000);
        let backend = MemoryBackend::default();
        let mut core = core_with(backend.clone(), &clock, dir.path());
        backend.state().fail_next_block = true;
        let f = failure("198.18.0.9", &clock);
        core.on_failures("sshd", &[f.clone(), f.clone(), f]);
        assert!(backend.state().bans.is_empty(), "the first attempt failed");
        assert_eq!(core.retry.len(), 1);
        core.last_housekeeping = Instant::now() - HOUSEKEEPING;
        core.tick();
        assert!(core.retry.is_empty());
        assert!(backend
            .state()
            .bans
            .contains_key(&"198.18.0.9".parse().unwrap()));
    }

    #[test]
    fn repeat_offenders_earn_the_recidive_ban() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(1_800_000_000);
        let backend = MemoryBackend::default();
        let mut core = core_with(backend.clone(), &clock, dir.path());
        let target: IpPrefix = "198.18.0.9".parse().unwrap();
        for round in 0..2 {
            let f = failure("198.18.0.9", &clock);
            core.on_failures("sshd", &[f.clone(), f.clone(), f]);
            let ban = core.manager.get(&target).cloned().expect("banned");
            if round == 0 {
                assert_eq!(ban.jail, "sshd");
                core.manager.unban(&target).unwrap();
                clock.advance(Duration::from_secs(60));
            } else {
                // The second sshd ban within recidive's day is recidive's second count.
                assert_eq!(ban.jail, RECIDIVE, "{ban:?}");
                let week = crate::clock::Clock::now(&clock) + Duration::from_secs(7 * 86_400);
                assert_eq!(ban.expires_at, Some(week));
            }
        }
    }
}
