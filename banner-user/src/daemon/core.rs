//! The synchronous core: the only owner of ban state. It takes failures from the sources and
//! commands from the control adapter, runs them through the jails and the ban manager, hands
//! what the manager did (its [`BanEvent`]s) to the subscribers and to the jails fed by bans
//! (recidive), and keeps time (expiry, purges, saving read positions).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{mpsc, Arc},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::oneshot;

use crate::{
    addr::IpPrefix,
    backend::Counters,
    bans::{BanEvent, BanManager, BanOutcome, BanRequest, BanView, IgnoreList},
    config::{Config, JailConfig},
    duration::BanLength,
    filter::Failure,
    jail::{recidive_counts, recidive_failure, Jail, JailPolicy, JailStats, RECIDIVE},
    model::{Ban, BlockType, JailId},
    source::{positions::PositionBook, CounterRegistry, SourceCounters},
    subscribers::{hosts_deny::HostsDenyList, EventLog, Subscriber},
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

/// Where a jail's failures come from.
enum Feed {
    /// Log lines through a filter: the jail's configuration.
    Logs(Box<JailConfig>),
    /// The ban stream: every ban of another configured jail is one failure (recidive).
    Bans,
}

struct JailSlot {
    jail: Jail,
    feed: Feed,
    /// The sources' counters (None for a jail fed by bans).
    counters: Option<Arc<SourceCounters>>,
    ignored: u64,
}

/// Builds the allowlist: the configuration's and the host's own addresses as they are now.
pub type AllowlistSource = Box<dyn Fn(&Config) -> IgnoreList + Send>;

pub struct Core {
    manager: BanManager,
    jails: BTreeMap<String, JailSlot>,
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
    /// The ban stream's subscribers besides the jails fed by bans.
    log: EventLog,
    hosts_deny: HostsDenyList,
    subscribers: Vec<Box<dyn Subscriber>>,
    /// Jail bans the backend failed to apply, retried every housekeeping round.
    retry: Vec<BanRequest>,
    /// The running configuration, to rebuild the allowlist when the host's addresses change.
    config: Config,
    /// Re-reads the allowlist every housekeeping round (None in unit tests, whose allowlist
    /// is made by hand).
    allowlist: Option<AllowlistSource>,
}

/// Most failed bans kept for retry (the oldest decisions matter most; later ones wait).
const MAX_RETRY: usize = 100_000;

/// How often the ban history is pruned (a walk over all of it).
const HISTORY_PRUNE: Duration = Duration::from_secs(600);

/// How often the core purges windows and saves read positions.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

/// Rounds of ban events feeding bans (a ban, recidive's ban of it, ...): recidive never
/// counts its own bans, so two rounds end it; the bound keeps any future loop finite.
const MAX_EVENT_ROUNDS: usize = 4;

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
            bantime: config.bantime,
            blocktype: config.blocktype,
            keep_on_exit: config.keep_on_exit,
            book,
            registry,
            last_housekeeping: Instant::now(),
            last_history_prune: Instant::now(),
            last_host_check: Instant::now(),
            host_check_pending: false,
            log: EventLog,
            hosts_deny: HostsDenyList::new(&config.hosts_deny_path),
            subscribers: Vec::new(),
            retry: Vec::new(),
            config: config.clone(),
            allowlist: None,
        };
        core.apply_config(config, &BTreeMap::new());
        core
    }

    /// Hand every ban event from now on to `subscriber` as well (after the log and
    /// hosts.deny, in the order subscribed).
    pub fn subscribe(&mut self, subscriber: Box<dyn Subscriber>) {
        self.subscribers.push(subscriber);
    }

    /// Keep the allowlist current with the host's addresses (DHCP, SLAAC, a new VIP): `source`
    /// is asked every housekeeping round and on reload.
    pub fn watch_host_addresses(&mut self, source: AllowlistSource) {
        self.allowlist = Some(source);
    }

    /// Create, update or drop jails to match `config`; the failure windows of jails that stay
    /// are kept. Returns what changed.
    pub fn apply_config(&mut self, config: &Config, sources: &BTreeMap<String, usize>) -> String {
        let mut wanted: Vec<(String, JailPolicy, Feed, bool)> = config
            .jails
            .iter()
            .map(|jc| {
                let dedupe = sources.get(&jc.name).copied().unwrap_or(jc.source_count()) > 1;
                (
                    jc.name.clone(),
                    jc.policy,
                    Feed::Logs(Box::new(jc.clone())),
                    dedupe,
                )
            })
            .collect();
        if let Some(p) = config.recidive {
            wanted.push((RECIDIVE.to_string(), p, Feed::Bans, false));
        }
        let mut added = Vec::new();
        let mut kept = Vec::new();
        for (name, policy, feed, dedupe) in wanted {
            match self.jails.get_mut(&name) {
                Some(slot) => {
                    slot.jail.update(policy, dedupe);
                    slot.feed = feed;
                    kept.push(name);
                }
                None => {
                    let counters = matches!(feed, Feed::Logs(_)).then(|| self.registry.get(&name));
                    self.jails.insert(
                        name.clone(),
                        JailSlot {
                            jail: Jail::new(JailId::named(&name), policy, dedupe),
                            feed,
                            counters,
                            ignored: 0,
                        },
                    );
                    added.push(name);
                }
            }
        }
        let dropped: Vec<String> = self
            .jails
            .keys()
            .filter(|n| config.jail(n).is_none() && !(*n == RECIDIVE && config.recidive.is_some()))
            .cloned()
            .collect();
        for n in &dropped {
            self.jails.remove(n);
            self.book.remove_status_of_jail(n);
        }
        self.bantime = config.bantime;
        self.blocktype = config.blocktype;
        self.keep_on_exit = config.keep_on_exit;
        self.config = config.clone();
        if self.hosts_deny.path() != config.hosts_deny_path.as_path() {
            self.hosts_deny = HostsDenyList::new(&config.hosts_deny_path);
        }
        self.reset_hosts_deny();
        format!(
            "jails added: [{}], kept: [{}], dropped: [{}]; recidive {}",
            added.join(", "),
            kept.join(", "),
            dropped.join(", "),
            if config.recidive.is_some() {
                "on"
            } else {
                "off"
            }
        )
    }

    /// hosts.deny from scratch: the active bans of the jails that ask for it.
    fn reset_hosts_deny(&mut self) {
        let jails: BTreeSet<JailId> = self
            .jails
            .values()
            .filter(|s| matches!(&s.feed, Feed::Logs(c) if c.hosts_deny))
            .map(|s| s.jail.name.clone())
            .collect();
        let allow = self.manager.ignore_list().nets();
        self.hosts_deny.reset(jails, self.manager.active(), allow);
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
                    self.refresh_allowlist();
                    let _ = reply.send(summary);
                }
                Ok(Event::HostChanged) => self.on_host_changed(),
                Ok(Event::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            self.tick();
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

    /// Hand what the ban manager did to the subscribers and to the jails fed by bans; bans
    /// those jails decide go round again.
    fn publish(&mut self) {
        for _ in 0..MAX_EVENT_ROUNDS {
            let events = self.manager.take_events();
            if events.is_empty() {
                return;
            }
            self.log.on_events(&events);
            self.hosts_deny.on_events(&events);
            for s in &mut self.subscribers {
                s.on_events(&events);
            }
            for request in self.feed_ban_jails(&events) {
                self.apply_ban(request);
            }
        }
    }

    /// Each ban a configured jail made counts as one failure in the jails fed by bans.
    fn feed_ban_jails(&mut self, events: &[BanEvent]) -> Vec<BanRequest> {
        let now = self.manager.now();
        let mut decided = Vec::new();
        for e in events {
            let (BanEvent::Banned { ban, .. } | BanEvent::Extended { ban, .. }) = e else {
                continue;
            };
            if !recidive_counts(&ban.jail) {
                continue;
            }
            let line = Arc::from(e.describe());
            let Some(f) = recidive_failure(&ban.target, now, Some(line)) else {
                continue;
            };
            for slot in self.jails.values_mut() {
                if !matches!(slot.feed, Feed::Bans) || slot.jail.name == ban.jail {
                    continue;
                }
                let manager = &self.manager;
                if let Some(req) = slot
                    .jail
                    .on_failure(&f, now, |j, t| manager.previous_bans(j, t))
                {
                    decided.push(req);
                }
            }
        }
        decided
    }

    /// Expiry, and now and then purges and position saves.
    pub fn tick(&mut self) {
        if self.host_check_pending {
            self.on_host_changed();
        }
        self.manager.expire();
        if self.last_housekeeping.elapsed() >= HOUSEKEEPING {
            self.last_housekeeping = Instant::now();
            let now = self.manager.now();
            for slot in self.jails.values_mut() {
                slot.jail.purge(now);
            }
            if let Err(e) = self.book.save() {
                log::warn!("saving read positions: {e}");
            }
            self.check_host();
            for request in std::mem::take(&mut self.retry) {
                self.apply_ban(request);
            }
            if self.last_history_prune.elapsed() >= HISTORY_PRUNE {
                self.last_history_prune = Instant::now();
                let gone = self.manager.prune_history();
                if gone > 0 {
                    log::debug!("forgot {gone} bans older than a month");
                }
            }
        }
        self.publish();
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
        self.refresh_allowlist();
    }

    /// Rebuild the allowlist from the configuration and the host's addresses as they are now;
    /// apply it (lifting bans it now covers) if it changed.
    fn refresh_allowlist(&mut self) {
        let Some(source) = &self.allowlist else {
            return;
        };
        let fresh = source(&self.config);
        if &fresh == self.manager.ignore_list() {
            return;
        }
        for e in fresh.entries() {
            if self.manager.ignore_list().covering(&e.net).is_none() {
                log::info!("never banned from now on: {} ({})", e.net, e.why);
            }
        }
        if let Err(e) = self.manager.set_ignore(fresh) {
            log::warn!("updating the allowlist: {e}");
        }
        self.reset_hosts_deny();
        self.publish();
    }

    /// Count failures from a jail's sources; ban where a jail decides so.
    pub fn on_failures(&mut self, jail: &str, failures: &[Failure]) {
        let now = self.manager.now();
        for f in failures {
            let source = IpPrefix::host(f.addr);
            let Some(slot) = self.jails.get_mut(jail) else {
                return;
            };
            let Feed::Logs(cfg) = &slot.feed else {
                return;
            };
            // The allowlist is checked before counting: its addresses never accumulate.
            if self.manager.ignore_list().covering(&source).is_some()
                || cfg.ignoreip.iter().any(|n| n.contains(&source))
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
                .on_failure(f, now, |j, t| manager.previous_bans(j, t));
            if let Some(request) = decision {
                self.apply_ban(request);
            }
        }
        self.publish();
    }

    /// Ban as a jail decided; a backend failure keeps the decision for the next round.
    fn apply_ban(&mut self, request: BanRequest) {
        match self.manager.ban(request.clone()) {
            Ok(_) => {}
            Err(e @ crate::bans::BanError::Backend(_)) => {
                // The enforcement command failed (nft or ipset missing or busy): keep the
                // decision and try again at the next housekeeping round.
                log::warn!("[{}] {e}; will retry", request.jail);
                if self.retry.len() < MAX_RETRY {
                    self.retry.push(request);
                }
            }
            // Refusals are events; the log subscriber words them.
            Err(_) => {}
        }
    }

    fn jail_policy(&self, jail: &str) -> Option<JailPolicy> {
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
        let (jail, policy) = match cmd.jail {
            None => (JailId::Manual, None),
            Some(name) => match self.jail_policy(&name) {
                Some(p) => (JailId::named(&name), Some(p)),
                None => {
                    return Err(Refused::new(format!(
                        "no jail named `{name}` (see `banner status`)"
                    )))
                }
            },
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
                cause: Default::default(),
            });
        }
        let result = self.manager.ban_batch(&requests);
        self.publish();
        let outcomes = result.map_err(|e| Refused {
            message: e.error.to_string(),
            index: kept.get(e.index).copied().or(Some(e.index)),
        })?;
        Ok(ManualBans { outcomes, skipped })
    }

    /// Lift these bans (only those of `jail`, when given); the rest were not banned.
    pub fn unban_by_hand(
        &mut self,
        targets: &[IpPrefix],
        jail: Option<&str>,
    ) -> Result<Unbanned, Refused> {
        let mut done = Unbanned::default();
        let mut failed = None;
        for &p in targets {
            let of_jail = |b: &Ban| jail.is_none_or(|j| b.jail == j);
            if !self.manager.get(&p).is_some_and(of_jail) {
                done.not_banned.push(p);
                continue;
            }
            match self.manager.unban(&p) {
                Ok(Some(b)) => done.lifted.push(b),
                Ok(None) => done.not_banned.push(p),
                Err(e) => {
                    failed = Some(Refused::new(e.to_string()));
                    break;
                }
            }
        }
        self.publish();
        failed.map_or(Ok(done), Err)
    }

    /// Lift every ban (of `jail`, when given).
    pub fn unban_all(&mut self, jail: Option<&str>) -> Result<Vec<Ban>, Refused> {
        let result = match jail {
            None => self
                .manager
                .unban_all()
                .map_err(|e| Refused::new(e.to_string())),
            Some(jail) => {
                let picked: Vec<IpPrefix> = self
                    .manager
                    .active()
                    .filter(|b| b.jail == jail)
                    .map(|b| b.target)
                    .collect();
                let mut lifted = Vec::new();
                let mut failed = None;
                for t in picked {
                    match self.manager.unban(&t) {
                        Ok(Some(b)) => lifted.push(b),
                        Ok(None) => {}
                        Err(e) => {
                            failed = Some(Refused::new(e.to_string()));
                            break;
                        }
                    }
                }
                failed.map_or(Ok(lifted), Err)
            }
        };
        self.publish();
        result
    }

    /// Every jail's figures; the log sources' states.
    pub fn jails(&self) -> Vec<JailView<'_>> {
        self.jails
            .iter()
            .map(|(name, slot)| JailView {
                name,
                filter: match &slot.feed {
                    Feed::Logs(cfg) => &cfg.filter_name,
                    Feed::Bans => "bans of the other jails",
                },
                policy: slot.jail.policy,
                stats: slot.jail.stats(),
                tracked: slot.jail.tracked(),
                counters: slot.counters.as_deref(),
                ignored: slot.ignored,
            })
            .collect()
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
            line: Some(Arc::from(format!("Failed password for root from {addr}"))),
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

    /// Keeps every event it is given.
    #[derive(Clone, Default)]
    struct Recorder(Arc<std::sync::Mutex<Vec<BanEvent>>>);

    impl Subscriber for Recorder {
        fn on_event(&mut self, event: &BanEvent) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    #[test]
    fn subscribers_see_each_ban_with_its_cause_and_recidive_is_fed_by_them() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(1_800_000_000);
        let mut core = core_with(MemoryBackend::default(), &clock, dir.path());
        let seen = Recorder::default();
        core.subscribe(Box::new(seen.clone()));
        let target: IpPrefix = "198.18.0.9".parse().unwrap();
        for _ in 0..2 {
            let f = failure("198.18.0.9", &clock);
            core.on_failures("sshd", &[f.clone(), f.clone(), f]);
            core.unban_by_hand(&[target], None).unwrap();
            clock.advance(Duration::from_secs(60));
        }
        let events = seen.0.lock().unwrap().clone();
        let described: Vec<String> = events.iter().map(BanEvent::describe).collect();
        // sshd's first ban; lifted; sshd's second ban, which recidive (maxretry 2) counts
        // as its second and bans for a week on top; lifted.
        assert_eq!(events.len(), 5, "{described:#?}");
        let BanEvent::Banned { ban, cause } = &events[0] else {
            panic!("{described:#?}");
        };
        assert_eq!((ban.jail.as_str(), cause.failures), ("sshd", 3));
        assert_eq!(cause.lines.len(), 3);
        assert!(cause.lines[0].contains("198.18.0.9"), "{cause:?}");
        let BanEvent::Extended { ban, cause } = &events[3] else {
            panic!("{described:#?}");
        };
        assert_eq!((ban.jail.as_str(), cause.failures), (RECIDIVE, 2));
        // Recidive's evidence is the bans that made it.
        assert!(
            cause
                .lines
                .iter()
                .all(|l| l.starts_with("[sshd] Ban 198.18.0.9")),
            "{cause:?}"
        );
        assert!(matches!(&events[4], BanEvent::Unbanned { ban, .. } if ban.jail == RECIDIVE));
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
