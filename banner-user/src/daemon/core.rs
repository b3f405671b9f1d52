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
    bans::{BanManager, BanOutcome, BanRequest},
    clock::rfc3339,
    config::{Config, JailConfig},
    control::{BanInfo, BanResult, JailStatus, Request, Response, Stats},
    duration::{format_duration, BanLength},
    filter::Failure,
    jail::{recidive_counts, recidive_failure, Jail, JailPolicy, RECIDIVE},
    model::{BlockType, MANUAL_JAIL},
    source::{positions::PositionBook, CounterRegistry, SourceCounters},
};

/// What the async edges send the core.
pub enum Event {
    Control {
        request: Request,
        reply: oneshot::Sender<Response>,
    },
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
                Ok(Event::Control { request, reply }) => {
                    let response = self.handle(request);
                    let _ = reply.send(response);
                }
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

    /// Answer a control request.
    pub fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::Ping {} => Response::Pong,
            Request::Ban {
                targets,
                duration,
                blocktype,
                jail,
                skip_allowlisted,
            } => self.ban(targets, duration, blocktype, jail, skip_allowlisted),
            Request::Unban { targets, all, jail } => self.unban(targets, all, jail),
            Request::List {} => match self.manager.list() {
                Ok(views) => Response::List {
                    bans: views.iter().map(BanInfo::from).collect(),
                },
                Err(e) => Response::error(e.to_string()),
            },
            Request::Stats {} => match self.manager.counters() {
                Ok(c) => Response::Stats {
                    stats: Stats::new(
                        self.manager.backend_name(),
                        c,
                        self.manager.stats(),
                        self.manager.active_count(),
                    ),
                },
                Err(e) => Response::error(e.to_string()),
            },
            Request::Status { jail } => self.status(jail.as_deref()),
            // Reload is the supervisor's (it restarts the sources); it never reaches here.
            Request::Reload {} => Response::error("reload is handled by the daemon's supervisor"),
        }
    }

    fn jail_policy(&self, jail: &str) -> Option<JailPolicy> {
        if jail == RECIDIVE {
            return self.recidive.as_ref().map(|r| r.policy);
        }
        self.jails.get(jail).map(|s| s.jail.policy)
    }

    fn ban(
        &mut self,
        targets: Vec<String>,
        duration: Option<String>,
        blocktype: Option<BlockType>,
        jail: Option<String>,
        skip_allowlisted: bool,
    ) -> Response {
        let jail = jail.unwrap_or_else(|| MANUAL_JAIL.to_string());
        let policy = if jail == MANUAL_JAIL {
            None
        } else {
            match self.jail_policy(&jail) {
                Some(p) => Some(p),
                None => {
                    return Response::error(format!("no jail named `{jail}` (see `banner status`)"))
                }
            }
        };
        let length = match duration.as_deref() {
            None => policy.map_or(self.bantime, |p| p.bantime),
            Some(d) => match BanLength::parse(d) {
                Ok(l) => l,
                Err(e) => return Response::error(e.to_string()),
            },
        };
        let blocktype = blocktype.unwrap_or(policy.map_or(self.blocktype, |p| p.blocktype));
        let mut requests = Vec::with_capacity(targets.len());
        let mut skipped = Vec::new();
        // Indices into `targets` of what went into the batch (some may be skipped).
        let mut kept = Vec::with_capacity(targets.len());
        for (index, t) in targets.iter().enumerate() {
            let allowed = |target: &IpPrefix| {
                self.manager
                    .ignore_list()
                    .covering(target)
                    .filter(|_| skip_allowlisted)
                    .map(|e| format!("{target} is in the allowlist ({}: {})", e.why, e.net))
            };
            let target = match t.parse::<IpPrefix>() {
                Ok(target) => target,
                Err(e) => {
                    return Response::Error {
                        message: e.to_string(),
                        index: Some(index),
                    }
                }
            };
            if let Some(why) = allowed(&target) {
                skipped.push((index, why));
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
        let outcomes = match self.manager.ban_batch(&requests) {
            Ok(o) => o,
            Err(e) => {
                return Response::Error {
                    message: e.error.to_string(),
                    index: kept.get(e.index).copied().or(Some(e.index)),
                }
            }
        };
        let mut results = Vec::with_capacity(outcomes.len());
        for o in &outcomes {
            let b = o.ban();
            let outcome = match o {
                BanOutcome::New(_) => "banned",
                BanOutcome::Extended(_) => "extended",
                BanOutcome::Unchanged(_) => "unchanged",
            };
            if outcomes.len() <= 20 && outcome != "unchanged" {
                log::info!(
                    "[{}] {outcome} {} ({}, {length}, by hand)",
                    b.jail,
                    b.target,
                    b.blocktype
                );
            }
            let notes = self
                .manager
                .ignore_list()
                .inside(&b.target)
                .map(|e| format!("{} ({}) inside stays allowed", e.net, e.why))
                .collect();
            results.push(BanResult {
                ip: b.target.to_string(),
                outcome: outcome.into(),
                expires_at: b.expires_at.map(rfc3339),
                notes,
            });
        }
        if outcomes.len() > 20 {
            log::info!(
                "[{jail}] banned {} targets by hand ({length})",
                outcomes.len()
            );
        }
        let counted: Vec<IpPrefix> = outcomes
            .iter()
            .filter(|o| !matches!(o, BanOutcome::Unchanged(_)))
            .map(|o| o.ban().target)
            .collect();
        for t in counted {
            self.count_for_recidive(&jail, &t);
        }
        Response::Banned { results, skipped }
    }

    fn unban(&mut self, targets: Vec<String>, all: bool, jail: Option<String>) -> Response {
        let of_jail = |b: &crate::model::Ban| jail.as_ref().is_none_or(|j| &b.jail == j);
        if all {
            let picked: Vec<IpPrefix> = self
                .manager
                .active()
                .filter(|b| of_jail(b))
                .map(|b| b.target)
                .collect();
            if jail.is_none() {
                return match self.manager.unban_all() {
                    Ok(lifted) => {
                        log::info!("unbanned all ({} bans)", lifted.len());
                        Response::Unbanned {
                            targets: lifted.iter().map(|b| b.target.to_string()).collect(),
                            not_banned: Vec::new(),
                            still_covered: Vec::new(),
                        }
                    }
                    Err(e) => Response::error(e.to_string()),
                };
            }
            let mut done = Vec::new();
            for t in picked {
                match self.manager.unban(&t) {
                    Ok(Some(b)) => done.push(b.target.to_string()),
                    Ok(None) => {}
                    Err(e) => return Response::error(e.to_string()),
                }
            }
            log::info!(
                "unbanned all of jail {} ({} bans)",
                jail.unwrap_or_default(),
                done.len()
            );
            return Response::Unbanned {
                targets: done,
                not_banned: Vec::new(),
                still_covered: Vec::new(),
            };
        }
        let mut parsed = Vec::with_capacity(targets.len());
        for (index, t) in targets.iter().enumerate() {
            match t.parse::<IpPrefix>() {
                Ok(p) => parsed.push(p),
                Err(e) => {
                    return Response::Error {
                        message: e.to_string(),
                        index: Some(index),
                    }
                }
            }
        }
        let mut done = Vec::new();
        let mut not_banned = Vec::new();
        for p in parsed {
            if !self.manager.get(&p).is_some_and(&of_jail) {
                not_banned.push(p.to_string());
                continue;
            }
            match self.manager.unban(&p) {
                Ok(Some(b)) => {
                    log::info!("[{}] unban {} (by hand)", b.jail, b.target);
                    done.push(p.to_string());
                }
                Ok(None) => not_banned.push(p.to_string()),
                Err(e) => return Response::error(e.to_string()),
            }
        }
        // An address inside a banned prefix stays blocked: name the prefix rather than let
        // "was not banned" suggest the address now passes.
        let still_covered = not_banned
            .iter()
            .filter_map(|t| {
                let p: IpPrefix = t.parse().ok()?;
                self.manager
                    .active()
                    .filter(|b| b.target != p && b.target.contains(&p))
                    .min_by_key(|b| std::cmp::Reverse(b.target.prefix_len()))
                    .map(|b| (t.clone(), b.target.to_string()))
            })
            .collect();
        Response::Unbanned {
            targets: done,
            not_banned,
            still_covered,
        }
    }

    fn status(&self, only: Option<&str>) -> Response {
        let mut banned: BTreeMap<&str, u64> = BTreeMap::new();
        for b in self.manager.active() {
            *banned.entry(b.jail.as_str()).or_insert(0) += 1;
        }
        let sources = self.book.statuses();
        let mut out = Vec::new();
        for (name, slot) in &self.jails {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let c = &slot.counters;
            let st = slot.jail.stats();
            out.push(JailStatus {
                name: name.clone(),
                filter: slot.cfg.filter_name.clone(),
                bantime: slot.jail.policy.bantime.to_string(),
                findtime: format_duration(slot.jail.policy.findtime),
                maxretry: slot.jail.policy.maxretry,
                blocktype: slot.jail.policy.blocktype,
                lines: SourceCounters::get(&c.lines),
                failure_lines: SourceCounters::get(&c.failure_lines),
                failures: st.failures,
                bans: st.bans,
                banned: banned.get(name.as_str()).copied().unwrap_or(0),
                tracked: slot.jail.tracked() as u64,
                evicted: st.evicted,
                too_old: st.too_old,
                folded: st.folded,
                ignored: slot.ignored + SourceCounters::get(&c.ignored),
                bad_host: SourceCounters::get(&c.bad_host),
                truncated_lines: SourceCounters::get(&c.truncated),
                invalid_utf8_lines: SourceCounters::get(&c.invalid_utf8),
                source_errors: SourceCounters::get(&c.errors),
                sources: sources
                    .iter()
                    .filter(|s| &s.jail == name)
                    .cloned()
                    .collect(),
            });
        }
        if let Some(r) = &self.recidive {
            if only.is_none_or(|o| o == RECIDIVE) {
                let st = r.stats();
                out.push(JailStatus {
                    name: RECIDIVE.into(),
                    filter: "bans of the other jails".into(),
                    bantime: r.policy.bantime.to_string(),
                    findtime: format_duration(r.policy.findtime),
                    maxretry: r.policy.maxretry,
                    blocktype: r.policy.blocktype,
                    lines: 0,
                    failure_lines: st.failures,
                    failures: st.failures,
                    bans: st.bans,
                    banned: banned.get(RECIDIVE).copied().unwrap_or(0),
                    tracked: r.tracked() as u64,
                    evicted: st.evicted,
                    too_old: st.too_old,
                    folded: 0,
                    ignored: 0,
                    bad_host: 0,
                    truncated_lines: 0,
                    invalid_utf8_lines: 0,
                    source_errors: 0,
                    sources: Vec::new(),
                });
            }
        }
        if let Some(o) = only {
            if out.is_empty() {
                return Response::error(format!("no jail named `{o}`"));
            }
        }
        Response::Status {
            jails: out,
            enforcement: self.manager.backend_name(),
        }
    }
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
