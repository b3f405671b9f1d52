//! The core's jails from the configuration: created, updated or dropped on reload, with their
//! failure windows kept; and the hosts.deny subscriber's view of which jails want it.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    config::Config,
    jail::{Jail, JailPolicy, RECIDIVE},
    model::JailId,
    subscribers::hosts_deny::HostsDenyList,
};

use super::{Core, Feed, JailSlot};

impl Core {
    /// Create, update or drop jails to match `config`; the failure windows of jails that stay
    /// are kept. Returns what changed.
    pub fn apply_config(&mut self, config: &Config, sources: &BTreeMap<String, usize>) -> String {
        self.configure_actions(config);
        let mut wanted: Vec<(String, JailPolicy, Feed, bool)> = config
            .jails
            .iter()
            .map(|jc| {
                let dedupe = sources.get(&jc.name).copied().unwrap_or(jc.source_count()) > 1;
                (
                    jc.name.clone(),
                    jc.policy.clone(),
                    Feed::Logs(Box::new(jc.clone())),
                    dedupe,
                )
            })
            .collect();
        if let Some(p) = config.recidive.clone() {
            wanted.push((RECIDIVE.to_string(), p, Feed::Bans, false));
        }
        let names: BTreeSet<String> = wanted.iter().map(|w| w.0.clone()).collect();
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
            .filter(|n| !names.contains(*n))
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
        self.configure_crowdsec(config.crowdsec.as_ref().filter(|c| c.pull));
        self.publish();
        format!(
            "jails added: [{}], kept: [{}], dropped: [{}]; recidive {}; crowdsec {}",
            added.join(", "),
            kept.join(", "),
            dropped.join(", "),
            if config.recidive.is_some() {
                "on"
            } else {
                "off"
            },
            match &config.crowdsec {
                Some(c) => format!(
                    "{}{}{}",
                    c.lapi_url,
                    if c.pull { " pull" } else { "" },
                    if c.push { " push" } else { "" }
                ),
                None => "off".to_string(),
            }
        )
    }

    /// hosts.deny from scratch: the active bans of the jails that ask for it.
    pub(super) fn reset_hosts_deny(&mut self) {
        if !self.manager.enforces() {
            return;
        }
        let jails: BTreeSet<JailId> = self
            .jails
            .values()
            .filter(|s| matches!(&s.feed, Feed::Logs(c) if c.hosts_deny))
            .map(|s| s.jail.name.clone())
            .collect();
        let allow = self.manager.ignore_list().nets();
        self.hosts_deny.reset(jails, self.manager.active(), allow);
    }

    /// Which jails run which `[actions.*]`; the workers start with the first jail naming one.
    fn configure_actions(&mut self, config: &Config) {
        let mut by_jail = BTreeMap::new();
        let policies = config
            .jails
            .iter()
            .map(|j| (j.name.as_str(), &j.policy))
            .chain(config.recidive.as_ref().map(|p| (RECIDIVE, p)));
        for (name, policy) in policies {
            let actions: Vec<_> = policy
                .actions
                .iter()
                .filter_map(|a| config.actions.get(a).cloned())
                .collect();
            if !actions.is_empty() {
                by_jail.insert(name.to_string(), actions);
            }
        }
        if by_jail.is_empty() && self.actions.is_none() {
            return;
        }
        if self.actions.is_none() {
            match crate::subscribers::actions::Actions::start() {
                Ok(a) => self.actions = Some(a),
                Err(e) => {
                    log::error!("actions cannot run (starting their threads: {e})");
                    return;
                }
            }
        }
        if let Some(a) = self.actions.as_mut() {
            a.configure(by_jail);
        }
    }
}
