//! The core's typed commands, which the control adapter calls: bans and unbans by hand, and
//! the views reports are made of. What they change goes out as ban events like any other.

use crate::{
    addr::IpPrefix,
    backend::Counters,
    bans::{BanManager, BanOutcome, BanRequest, BanView},
    duration::BanLength,
    jail::{JailPolicy, JailStats},
    model::{Ban, BlockType, JailId},
    source::SourceCounters,
};

use super::{Core, Feed};

impl Core {
    pub(super) fn jail_policy(&self, jail: &str) -> Option<JailPolicy> {
        self.jails.get(jail).map(|s| s.jail.policy.clone())
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
        let views = self.manager.list()?;
        // Its copies (and their encoding) are freed soon: give the memory back after.
        self.churn = self.churn.saturating_add(views.len());
        Ok(views)
    }

    /// Ban a batch by hand (or in a jail's name): all or nothing, except allowlisted
    /// targets when `skip_allowlisted` (left out, with why).
    pub fn ban_by_hand(&mut self, cmd: ManualBan) -> Result<ManualBans, Refused> {
        // A big batch's request, plan and events are freed once it is done.
        self.churn = self.churn.saturating_add(cmd.targets.len());
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
            .unwrap_or_else(|| policy.as_ref().map_or(self.bantime, |p| p.bantime));
        let blocktype = cmd
            .blocktype
            .unwrap_or(policy.as_ref().map_or(self.blocktype, |p| p.blocktype));
        // A ban in a jail's name covers that jail's ports.
        let scope = policy.and_then(|p| p.scope);
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
                scope: scope.clone(),
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
        let Some(jail) = jail else {
            let result = self
                .manager
                .unban_all()
                .map_err(|e| Refused::new(e.to_string()));
            self.publish();
            return result;
        };
        let picked: Vec<IpPrefix> = self
            .manager
            .active()
            .filter(|b| b.jail == jail)
            .map(|b| b.target)
            .collect();
        self.unban_by_hand(&picked, Some(jail))
            .map(|done| done.lifted)
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
                policy: slot.jail.policy.clone(),
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
