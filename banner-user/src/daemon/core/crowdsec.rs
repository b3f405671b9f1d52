//! The core's side of the CrowdSec link: each answer of LAPI's stream becomes bans and lifts
//! through the ban manager, in one batch each, so the first sync of N decisions is one
//! backend call and one write of the state.

use std::{collections::HashSet, time::SystemTime};

use super::Core;
use crate::{
    addr::IpPrefix,
    backend::Slot,
    bans::{BanError, BanEvent, BanRequest, Cause, Lifted},
    crowdsec::{
        holdings::{Holdings, Wanted},
        CrowdSecConfig, LinkStatus, News,
    },
    duration::BanLength,
    model::JailId,
};

/// The link's state in the core.
pub(super) struct Link {
    pub(super) cfg: CrowdSecConfig,
    pub(super) holdings: Holdings,
    pub(super) status: LinkStatus,
    /// Targets lifted by hand (`banner unban`) while LAPI still holds them: not banned
    /// again until LAPI sends them anew.
    released: HashSet<IpPrefix>,
}

impl Link {
    pub(super) fn new(cfg: CrowdSecConfig) -> Self {
        let status = LinkStatus::new(&cfg.lapi_url);
        Self {
            cfg,
            holdings: Holdings::default(),
            status,
            released: HashSet::new(),
        }
    }
}

impl Link {
    /// The ban a held target needs as of `now`, in its decision's origin's name; None once
    /// its last decision has ended.
    fn request(&self, w: &Wanted, now: SystemTime) -> Option<BanRequest> {
        let left = w.until.duration_since(now).ok()?;
        Some(BanRequest {
            target: w.target,
            jail: JailId::crowdsec(&w.origin),
            blocktype: self.cfg.blocktype(w.remedy),
            length: BanLength::For(left),
            // LAPI's decisions name addresses and ranges, never ports.
            scope: None,
            cause: Cause::default(),
        })
    }
}

/// A deadline this close to the one enforced is the same decision counted again.
const DEADLINE_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// Refusals logged one by one per answer; the rest are counted.
const LOGGED_REFUSALS: usize = 5;

impl Core {
    /// The link's state for `status` (None without `[crowdsec]`).
    pub fn crowdsec_status(&self) -> Option<LinkStatus> {
        self.crowdsec.as_ref().map(|l| {
            let mut s = l.status.clone();
            s.decisions = l.holdings.len() as u64;
            s
        })
    }

    /// Take what the link thread says.
    pub fn on_crowdsec(&mut self, news: News) {
        let now = self.manager.now();
        let Some(link) = self.crowdsec.as_mut() else {
            return;
        };
        let (stream, startup) = match news {
            News::Down { why } => {
                if link.status.state != "down" || link.status.why.as_deref() != Some(&why) {
                    log::warn!(
                        "CrowdSec: {why}; enforcing the {} decisions held, retrying",
                        link.holdings.len()
                    );
                }
                link.status.state = "down".into();
                link.status.why = Some(why);
                return;
            }
            News::Pulled { stream, startup } => (stream, startup),
        };
        if link.status.state == "down" {
            log::info!("CrowdSec: LAPI at {} answers again", link.cfg.lapi_url);
        }
        link.status.pulled(now);
        link.status.refused += stream.refused.len() as u64;
        for r in stream.refused.iter().take(LOGGED_REFUSALS) {
            log::warn!(
                "CrowdSec: decision {} for `{}` refused: {}",
                r.id.map_or_else(|| "?".to_string(), |i| i.to_string()),
                r.value,
                r.why
            );
        }
        if stream.refused.len() > LOGGED_REFUSALS {
            log::warn!(
                "CrowdSec: {} more decisions refused in this answer",
                stream.refused.len() - LOGGED_REFUSALS
            );
        }
        let changes = link.holdings.apply(&stream, startup, now);
        if startup {
            link.released.clear();
        }
        for d in &stream.new {
            link.released.remove(&d.target);
        }
        let mut requests = Vec::with_capacity(changes.ban.len());
        for w in &changes.ban {
            let Some(request) = link.request(w, now) else {
                continue;
            };
            match self.manager.get(&w.target) {
                // A jail's or a person's ban stays as they made it (its block type, its
                // deadline); the decision is enforced again if that ban ends first.
                Some(b) if !b.jail.is_crowdsec() => continue,
                // Already enforced: LAPI's durations, counted at each answer, move by
                // fractions of a second; rewriting every ban for that would be noise.
                Some(b)
                    if b.blocktype == request.blocktype
                        && b.expires_at.is_some_and(|e| e + DEADLINE_SLACK >= w.until) =>
                {
                    continue
                }
                _ => {}
            }
            // The allowlist wins; say so once per target rather than fail the batch.
            if self.manager.ignore_list().covering(&w.target).is_some() {
                link.status.allowlisted += 1;
                log::info!(
                    "CrowdSec: {} is in the allowlist; its decision ({}) is not enforced",
                    w.target,
                    w.origin
                );
                continue;
            }
            requests.push(request);
        }
        // What LAPI no longer names, and after a whole set, the CrowdSec bans it lacks (kept
        // from before a restart): lifted, unless a jail or a person banned them since.
        let mut lift = changes.lift;
        if startup {
            lift.extend(
                self.manager
                    .active()
                    .filter(|b| b.jail.is_crowdsec() && !link.holdings.holds(&b.target))
                    .map(|b| b.target),
            );
        }
        lift.retain(|t| self.manager.get(t).is_some_and(|b| b.jail.is_crowdsec()));
        if !lift.is_empty() {
            if let Err(e) = self.manager.lift_batch(&lift, Lifted::CrowdSec) {
                log::warn!("CrowdSec: lifting {} bans failed: {e}", lift.len());
            }
        }
        self.ban_crowdsec(requests);
        self.publish();
    }

    /// Ban in one batch. A map that fills up refuses the batch: the decisions for that map
    /// not yet enforced are left out (counted, one log line) and the rest go again as one
    /// batch. A backend error leaves them all to the next re-assertion round (two seconds),
    /// since the decisions are still held.
    fn ban_crowdsec(&mut self, mut requests: Vec<BanRequest>) {
        // What the maps cannot take is left out first, so the rest go in one batch.
        let mut room: std::collections::HashMap<Slot, Option<usize>> = Default::default();
        let mut left_out = 0usize;
        requests.retain(|r| {
            if self.manager.get(&r.target).is_some() {
                return true;
            }
            let slot = Slot::of(&r.target);
            match room.entry(slot).or_insert_with(|| self.manager.room(slot)) {
                Some(0) => {
                    left_out += 1;
                    false
                }
                Some(n) => {
                    *n -= 1;
                    true
                }
                None => true,
            }
        });
        if left_out > 0 {
            log::warn!("CrowdSec: {left_out} decisions not enforced: a ban map is full (max_exact_bans, max_prefix_bans)");
        }
        // Each round leaves out at least one request; four maps bound the rounds anyway.
        for _ in 0..8 {
            if requests.is_empty() {
                return;
            }
            let error = match self.manager.ban_batch(&requests) {
                Ok(_) => return,
                Err(e) => e,
            };
            let BanError::Full {
                target,
                map,
                capacity,
            } = &error.error
            else {
                log::warn!(
                    "CrowdSec: {} decisions not enforced now ({}); trying again in a moment",
                    requests.len(),
                    error.error
                );
                return;
            };
            let slot = Slot::of(target);
            let before = requests.len();
            requests
                .retain(|r| Slot::of(&r.target) != slot || self.manager.get(&r.target).is_some());
            log::warn!(
                "CrowdSec: {} decisions not enforced: the {map} map is full ({capacity} bans)",
                before - requests.len()
            );
        }
    }

    /// Forget decisions past their deadline (their bans expire on their own), and enforce
    /// again what LAPI still holds but no ban covers: a jail's shorter ban of the same
    /// target ended, or a ban was refused while a map was full.
    pub(super) fn reassert_crowdsec(&mut self, now: SystemTime) {
        let Some(link) = self.crowdsec.as_mut() else {
            return;
        };
        link.holdings.expire(now);
        let mut requests = Vec::new();
        // Most rounds find every target enforced: only the rest are looked at further.
        let missing: Vec<IpPrefix> = link
            .holdings
            .targets()
            .filter(|t| self.manager.get(t).is_none() && !link.released.contains(t))
            .copied()
            .collect();
        for w in missing.iter().filter_map(|t| link.holdings.wanted(t)) {
            if self.manager.ignore_list().covering(&w.target).is_some() {
                continue;
            }
            requests.extend(link.request(&w, now));
        }
        self.ban_crowdsec(requests);
    }

    /// Note CrowdSec bans lifted by hand, so they are not enforced again behind the
    /// person's back.
    pub(super) fn note_crowdsec_events(&mut self, events: &[BanEvent]) {
        let Some(link) = self.crowdsec.as_mut() else {
            return;
        };
        for e in events {
            if let BanEvent::Unbanned {
                ban,
                why: Lifted::ByHand,
            } = e
            {
                if ban.jail.is_crowdsec() {
                    link.released.insert(ban.target);
                }
            }
        }
    }

    /// A new `[crowdsec]` (or none): keep what is held when the link stays; without one,
    /// the bans it made are lifted (nothing backs them any more).
    pub(super) fn configure_crowdsec(&mut self, cfg: Option<&CrowdSecConfig>) {
        match (cfg, self.crowdsec.as_mut()) {
            (Some(cfg), Some(link)) => {
                if link.cfg.lapi_url != cfg.lapi_url {
                    link.status = LinkStatus::new(&cfg.lapi_url);
                }
                link.cfg = cfg.clone();
            }
            (Some(cfg), None) => self.crowdsec = Some(Link::new(cfg.clone())),
            (None, _) => {
                self.crowdsec = None;
                let made: Vec<_> = self
                    .manager
                    .active()
                    .filter(|b| b.jail.is_crowdsec())
                    .map(|b| b.target)
                    .collect();
                if !made.is_empty() {
                    if let Err(e) = self.manager.lift_batch(&made, Lifted::CrowdSec) {
                        log::warn!("CrowdSec: lifting its {} bans failed: {e}", made.len());
                    }
                }
            }
        }
    }
}
