//! What reacts to bans, fed by the ban manager's event stream ([`BanEvent`]): the log lines
//! users read and hosts.deny here; the jails fed by bans (recidive) in the core, which may
//! ban again. Actions, metrics and the CrowdSec link join the same way.

pub mod actions;
pub mod found;
pub mod hosts_deny;

use crate::bans::BanEvent;

/// One consumer of the ban stream. Called on the core's thread, in order, after each step
/// that changed bans: it must not block for long (hand slow work to a thread of its own).
pub trait Subscriber: Send {
    fn on_event(&mut self, event: &BanEvent);

    /// Several events at once (a bulk ban); one by one unless told otherwise.
    fn on_events(&mut self, events: &[BanEvent]) {
        for e in events {
            self.on_event(e);
        }
    }
}

/// The daemon's log of bans: one line per event in fail2ban's words, or a summary for a
/// bulk change, so a million-address ban list does not write a million lines.
#[derive(Debug, Default)]
pub struct EventLog {
    /// A dry run: every line says it was not enforced.
    pub dry_run: bool,
}

impl EventLog {
    /// What begins every line of a dry run.
    pub fn prefix(&self) -> &'static str {
        if self.dry_run {
            "(dry run, not enforced) "
        } else {
            ""
        }
    }

    fn line(&self, event: &BanEvent) -> String {
        format!("{}{}", self.prefix(), event.describe())
    }
}

/// Above this many events at once, the log sums them up.
const SUMMARY_ABOVE: usize = 20;

impl Subscriber for EventLog {
    fn on_event(&mut self, event: &BanEvent) {
        // The jail and the address go along as fields (JAIL=, IP= in the journal, keys of
        // --log-format json).
        let jail = event.jail().as_str();
        let ip = match event {
            BanEvent::Refused { target, .. } => target.to_string(),
            other => other
                .ban()
                .map(|b| b.target.to_string())
                .unwrap_or_default(),
        };
        match event {
            BanEvent::Refused { .. } => log::warn!(jail = jail, ip = ip; "{}", self.line(event)),
            _ => log::info!(jail = jail, ip = ip; "{}", self.line(event)),
        }
    }

    fn on_events(&mut self, events: &[BanEvent]) {
        if events.len() <= SUMMARY_ABOVE {
            events.iter().for_each(|e| self.on_event(e));
            return;
        }
        let count = |f: fn(&BanEvent) -> bool| events.iter().filter(|e| f(e)).count();
        log::info!(
            "{}{} ban events: {} banned, {} extended, {} unbanned, {} expired, {} refused",
            self.prefix(),
            events.len(),
            count(|e| matches!(e, BanEvent::Banned { .. })),
            count(|e| matches!(e, BanEvent::Extended { .. })),
            count(|e| matches!(e, BanEvent::Unbanned { .. })),
            count(|e| matches!(e, BanEvent::Expired { .. })),
            count(|e| matches!(e, BanEvent::Refused { .. })),
        );
    }
}
