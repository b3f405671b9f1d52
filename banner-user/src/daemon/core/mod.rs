//! The synchronous core: the only owner of ban state. It takes failures from the sources and
//! commands from the control adapter, runs them through the jails and the ban manager, hands
//! what the manager did (its [`BanEvent`]s) to the subscribers and to the jails fed by bans
//! (recidive), and keeps time (expiry, purges, saving read positions).
//!
//! This file is the engine; `commands` holds what the control adapter may ask of it, `jails`
//! how a configuration becomes jails, `host` the checks of enforcement and the allowlist.

use std::{
    collections::BTreeMap,
    sync::{mpsc, Arc},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::oneshot;

mod commands;
mod crowdsec;
mod host;
mod jails;

pub use commands::{ManualBan, Refused};

use crate::{
    addr::IpPrefix,
    bans::{BanEvent, BanManager, BanRequest},
    config::{Config, JailConfig},
    duration::BanLength,
    filter::Failure,
    jail::{recidive_failure, Jail},
    model::{BlockType, JailId},
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
        /// When the source handed them over (its batch read and filtered): where the
        /// detection latency a ban is measured by starts.
        found_at: Instant,
    },
    /// Apply a new configuration; answers with a summary of what changed.
    Reload {
        config: Box<Config>,
        /// Sources each jail will run (for cross-source dedupe).
        sources: BTreeMap<String, usize>,
        reply: oneshot::Sender<String>,
    },
    /// rtnetlink said a link or an address changed: check enforcement now rather than at
    /// the next housekeeping round; with the host's addresses when the watcher found them
    /// changed (it reads them on its own thread: the core does no interface I/O).
    HostChanged {
        addresses: Option<Vec<crate::sys::IfAddr>>,
    },
    /// The CrowdSec link's news (an answer of LAPI's stream, or the link down).
    CrowdSec(crate::crowdsec::News),
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
    /// Failures, bans by hand and listed bans handled since freed memory was last given
    /// back to the system.
    churn: usize,
    /// Give freed memory back at the next housekeeping.
    give_back: bool,
    last_history_prune: Instant,
    /// When rtnetlink news was last acted on, and whether more came since.
    last_host_check: Instant,
    host_check_pending: bool,
    /// The ban stream's subscribers besides the jails fed by bans.
    log: EventLog,
    hosts_deny: HostsDenyList,
    /// The Found lines of the jails, capped under floods.
    found: crate::subscribers::found::FoundLog,
    /// The jails' `[actions.*]`, started once a jail names one.
    actions: Option<crate::subscribers::actions::Actions>,
    subscribers: Vec<Box<dyn Subscriber>>,
    /// Jail bans the backend failed to apply, retried every housekeeping round.
    retry: Vec<BanRequest>,
    /// The running configuration, to rebuild the allowlist when the host's addresses change.
    config: Config,
    /// The host's addresses as last read (None in unit tests, whose allowlist is made by
    /// hand): with the configuration, what the allowlist is.
    host_addresses: Option<Vec<crate::sys::IfAddr>>,
    /// The CrowdSec link, with `[crowdsec]`.
    crowdsec: Option<crowdsec::Link>,
    /// Queues the jails' bans for LAPI, with `[crowdsec] push = true`.
    crowdsec_push: Option<Box<dyn Subscriber>>,
    /// The syslog receiver's counters, for `status`.
    syslog_stats: Option<Arc<crate::source::syslog::SyslogStats>>,
    /// Seconds from failures handed over by a source to the ban they made in force (in the
    /// kernel and saved), for the metrics.
    detection: crate::metrics::Latency,
}

/// Most failed bans kept for retry (the oldest decisions matter most; later ones wait).
const MAX_RETRY: usize = 100_000;

/// How often the ban history is pruned (a walk over all of it).
const HISTORY_PRUNE: Duration = Duration::from_secs(600);

/// How often the core purges windows and saves read positions.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

/// Work (failures, bans by hand, bans listed) before housekeeping gives freed memory back to
/// the system. A flood's batches are freed by the core in the arenas of the sources' threads,
/// where the allocator keeps them: without this, a million failures read left 50 MB resident
/// that nothing held, and a million bans by hand 900 MB.
const GIVE_BACK_AFTER: usize = 10_000;

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
            churn: 0,
            give_back: false,
            last_history_prune: Instant::now(),
            last_host_check: Instant::now(),
            host_check_pending: false,
            log: EventLog::default(),
            hosts_deny: HostsDenyList::new(&config.hosts_deny_path),
            found: Default::default(),
            actions: None,
            subscribers: Vec::new(),
            retry: Vec::new(),
            config: config.clone(),
            host_addresses: None,
            crowdsec: None,
            crowdsec_push: None,
            syslog_stats: None,
            detection: crate::metrics::Latency::default(),
        };
        core.log.dry_run = !core.manager.enforces();
        core.apply_config(config, &BTreeMap::new());
        core
    }

    /// The detection latency of the bans made from logs so far.
    pub fn detection(&self) -> &crate::metrics::Latency {
        &self.detection
    }

    /// Where `status` reads the syslog receiver's counters.
    pub fn set_syslog_stats(&mut self, stats: Arc<crate::source::syslog::SyslogStats>) {
        self.syslog_stats = Some(stats);
    }

    /// The syslog receiver for `status` (None without `[syslog]`).
    pub fn syslog_status(&self) -> Option<crate::source::syslog::SyslogStatus> {
        self.config.syslog.as_ref()?;
        self.syslog_stats.as_ref().map(|s| s.status())
    }

    /// Push the jails' bans to CrowdSec through `pusher` from now on (None: stop pushing).
    pub fn set_crowdsec_push(&mut self, pusher: Option<Box<dyn Subscriber>>) {
        if pusher.is_some() && !self.manager.enforces() {
            // Pushed, a would-be ban would be enforced by the rest of the fleet.
            log::warn!("dry run: the jails' bans are not pushed to CrowdSec");
            self.crowdsec_push = None;
            return;
        }
        self.crowdsec_push = pusher;
    }

    /// Hand every ban event from now on to `subscriber` as well (after the log and
    /// hosts.deny, in the order subscribed).
    pub fn subscribe(&mut self, subscriber: Box<dyn Subscriber>) {
        self.subscribers.push(subscriber);
    }

    /// Keep the allowlist current with the host's addresses (DHCP, SLAAC, a new VIP):
    /// `addresses` as they are now; [`Event::HostChanged`] brings them as they change, and
    /// the allowlist is rebuilt from them and the configuration then and on reload.
    pub fn know_host_addresses(&mut self, addresses: Vec<crate::sys::IfAddr>) {
        self.host_addresses = Some(addresses);
        self.refresh_allowlist();
    }

    /// Act on one event; false when it says to stop.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Call(call) => call(self),
            Event::Failures {
                jail,
                failures,
                found_at,
            } => self.on_failures(&jail, &failures, found_at),
            Event::Reload {
                config,
                sources,
                reply,
            } => {
                let summary = self.apply_config(&config, &sources);
                self.refresh_allowlist();
                let _ = reply.send(summary);
            }
            Event::HostChanged { addresses } => {
                if let Some(addresses) = addresses {
                    self.know_host_addresses(addresses);
                }
                self.on_host_changed();
            }
            Event::CrowdSec(news) => self.on_crowdsec(news),
            Event::Shutdown => return false,
        }
        true
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
                Ok(event) => {
                    if !self.handle(event) {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
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
            // A dry run writes no hosts.deny, runs no action and pushes nothing to CrowdSec:
            // all act on the world.
            if self.manager.enforces() {
                self.hosts_deny.on_events(&events);
                if let Some(a) = self.actions.as_mut() {
                    a.on_events(&events);
                }
            }
            self.note_crowdsec_events(&events);
            if let Some(p) = self.crowdsec_push.as_mut() {
                p.on_events(&events);
            }
            for s in &mut self.subscribers {
                s.on_events(&events);
            }
            for request in self.feed_ban_jails(&events) {
                self.apply_ban(request);
            }
        }
    }

    /// Whether a ban by `jail` is an offence the jails fed by bans count: a jail made it (not
    /// a person, not the kernel), and not one fed by bans (recidive counting itself).
    pub(super) fn feeds_ban_jails(&self, jail: &JailId) -> bool {
        jail.is_jail()
            && !self
                .jails
                .get(jail.as_str())
                .is_some_and(|s| matches!(s.feed, Feed::Bans))
    }

    /// Each ban a jail reading logs made counts as one failure in the jails fed by bans.
    fn feed_ban_jails(&mut self, events: &[BanEvent]) -> Vec<BanRequest> {
        if !self.jails.values().any(|s| matches!(s.feed, Feed::Bans)) {
            return Vec::new();
        }
        let now = self.manager.now();
        let mut decided = Vec::new();
        for e in events {
            let (BanEvent::Banned { ban, .. } | BanEvent::Extended { ban, .. }) = e else {
                continue;
            };
            if !self.feeds_ban_jails(&ban.jail) {
                continue;
            }
            let line = Arc::from(e.describe());
            let Some(f) = recidive_failure(&ban.target, now, Some(line)) else {
                continue;
            };
            for slot in self.jails.values_mut() {
                if !matches!(slot.feed, Feed::Bans) {
                    continue;
                }
                let manager = &self.manager;
                let decision = slot
                    .jail
                    .on_failure(&f, now, |j, t| manager.previous_bans(j, t));
                if let Some(count) = slot.jail.take_last_count() {
                    let p = &slot.jail.policy;
                    let name = slot.jail.name.to_string();
                    for line in self
                        .found
                        .found(&name, f.addr, count, p.maxretry, p.findtime, now)
                    {
                        log::info!(jail = name.as_str(), ip = f.addr.to_string(); "{}{line}", self.log.prefix());
                    }
                }
                if let Some(req) = decision {
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
            for line in self.found.flush(self.manager.now()) {
                log::info!("{}{line}", self.log.prefix());
            }
            let now = self.manager.now();
            for slot in self.jails.values_mut() {
                slot.jail.purge(now);
            }
            self.reassert_crowdsec(now);
            if let Err(e) = self.book.save() {
                log::warn!("saving read positions: {e}");
            }
            self.check_host();
            // One round late: what a big command leaves is freed after the core answered it
            // (the request by its connection, its events by publish), so a trim right away
            // found little and the next round then had no churn to trim for.
            if std::mem::take(&mut self.give_back) {
                crate::sys::give_back_memory();
            }
            if self.churn >= GIVE_BACK_AFTER {
                self.churn = 0;
                self.give_back = true;
            }
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

    /// Count failures from a jail's sources; ban where a jail decides so. `found_at`: when the
    /// source handed them over, where the detection latency of a ban they make starts.
    pub fn on_failures(&mut self, jail: &str, failures: &[Failure], found_at: Instant) {
        let now = self.manager.now();
        self.churn = self.churn.saturating_add(failures.len());
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
            if let Some(count) = slot.jail.take_last_count() {
                let policy = &slot.jail.policy;
                for line in
                    self.found
                        .found(jail, f.addr, count, policy.maxretry, policy.findtime, now)
                {
                    log::info!("{}{line}", self.log.prefix());
                }
            }
            if let Some(request) = decision {
                if self.apply_ban(request) {
                    self.detection.observe(found_at.elapsed());
                }
            }
        }
        self.publish();
    }

    /// Ban as a jail decided; a backend failure keeps the decision for the next round. True
    /// when the ban is new and in force.
    fn apply_ban(&mut self, request: BanRequest) -> bool {
        match self.manager.ban(request.clone()) {
            Ok(outcome) => return matches!(outcome, crate::bans::BanOutcome::New(_)),
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
        false
    }
}

#[cfg(test)]
mod tests;
