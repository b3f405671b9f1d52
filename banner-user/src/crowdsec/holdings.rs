//! Which of LAPI's decisions banner holds, by id and by target, and what each answer of the
//! stream changes: a target is banned while at least one decision names it, for as long as
//! the longest of them, and lifted when the last is deleted. Pure: the core applies the
//! changes to the ban manager.

use std::{
    collections::{hash_map::Entry, HashMap},
    time::SystemTime,
};

use super::decisions::{Decision, Remedy, Stream};
use crate::addr::IpPrefix;

/// One held decision: its target's deadline and who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    target: IpPrefix,
    until: SystemTime,
    origin: String,
    remedy: Remedy,
}

/// A target to ban: until the latest of its decisions, in that decision's origin's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub target: IpPrefix,
    pub until: SystemTime,
    pub origin: String,
    pub remedy: Remedy,
}

/// What an answer changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub ban: Vec<Wanted>,
    /// Targets no decision names any longer.
    pub lift: Vec<IpPrefix>,
}

#[derive(Debug, Default)]
pub struct Holdings {
    by_id: HashMap<i64, Held>,
    /// The ids naming each target.
    by_target: HashMap<IpPrefix, Vec<i64>>,
}

impl Holdings {
    /// Decisions held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether any held decision names `target`.
    pub fn holds(&self, target: &IpPrefix) -> bool {
        self.by_target.contains_key(target)
    }

    /// Apply one answer as of `now`. A `startup` answer is LAPI's whole set: what it no
    /// longer names is lifted.
    pub fn apply(&mut self, stream: &Stream, startup: bool, now: SystemTime) -> Changes {
        let mut touched: Vec<IpPrefix> = Vec::new();
        let before: Vec<IpPrefix> = if startup {
            let targets = self.by_target.keys().copied().collect();
            self.by_id.clear();
            self.by_target.clear();
            targets
        } else {
            Vec::new()
        };
        for d in &stream.deleted {
            if let Some(held) = self.forget(d.id) {
                touched.push(held.target);
            }
        }
        for d in &stream.new {
            self.insert(d, now);
            touched.push(d.target);
        }
        touched.extend(before);
        touched.sort_unstable();
        touched.dedup();
        let mut changes = Changes::default();
        for target in touched {
            match self.wanted(&target) {
                Some(w) => changes.ban.push(w),
                None => changes.lift.push(target),
            }
        }
        changes
    }

    fn insert(&mut self, d: &Decision, now: SystemTime) {
        let held = Held {
            target: d.target,
            until: now + d.remaining,
            origin: d.origin.clone(),
            remedy: d.remedy,
        };
        if let Some(old) = self.by_id.insert(d.id, held) {
            // The same id again (a resent answer): it names its target once.
            if let Some(ids) = self.by_target.get_mut(&old.target) {
                ids.retain(|i| *i != d.id);
            }
        }
        self.by_target.entry(d.target).or_default().push(d.id);
    }

    /// The ban `target` needs now: the latest deadline among its decisions.
    pub fn wanted(&self, target: &IpPrefix) -> Option<Wanted> {
        self.by_target
            .get(target)?
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .max_by_key(|h| h.until)
            .map(|h| Wanted {
                target: h.target,
                until: h.until,
                origin: h.origin.clone(),
                remedy: h.remedy,
            })
    }

    /// Every target a decision names.
    pub fn targets(&self) -> impl Iterator<Item = &IpPrefix> + '_ {
        self.by_target.keys()
    }

    /// Forget decisions whose deadline passed (LAPI sends them as deleted too, but a link
    /// that is down would keep them forever).
    pub fn expire(&mut self, now: SystemTime) {
        let gone: Vec<i64> = self
            .by_id
            .iter()
            .filter(|(_, h)| h.until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.forget(id);
        }
    }

    /// Drop decision `id`, and its target with its last decision.
    fn forget(&mut self, id: i64) -> Option<Held> {
        let held = self.by_id.remove(&id)?;
        if let Entry::Occupied(mut ids) = self.by_target.entry(held.target) {
            ids.get_mut().retain(|i| *i != id);
            if ids.get().is_empty() {
                ids.remove();
            }
        }
        Some(held)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn d(id: i64, target: &str, secs: u64, origin: &str) -> Decision {
        Decision {
            id,
            origin: origin.into(),
            scenario: String::new(),
            target: target.parse().unwrap(),
            remedy: Remedy::Ban,
            remaining: Duration::from_secs(secs),
        }
    }

    fn stream(new: Vec<Decision>, deleted: Vec<Decision>) -> Stream {
        Stream {
            new,
            deleted,
            refused: Vec::new(),
        }
    }

    const T0: Duration = Duration::from_secs(1_800_000_000);

    #[test]
    fn a_target_is_held_while_any_decision_names_it_for_the_longest() {
        let now = SystemTime::UNIX_EPOCH + T0;
        let mut h = Holdings::default();
        let c = h.apply(
            &stream(
                vec![
                    d(1, "198.18.0.7", 3600, "cscli"),
                    d(2, "198.18.0.7", 7200, "CAPI"),
                    d(3, "198.18.5.0/24", 60, "cscli"),
                ],
                vec![],
            ),
            true,
            now,
        );
        assert_eq!(c.lift, []);
        assert_eq!(c.ban.len(), 2);
        let seven = c
            .ban
            .iter()
            .find(|w| w.target.to_string() == "198.18.0.7")
            .unwrap();
        assert_eq!(
            (seven.until, seven.origin.as_str()),
            (now + Duration::from_secs(7200), "CAPI")
        );

        // Deleting the longer decision shortens to the other; deleting both lifts.
        let c = h.apply(
            &stream(vec![], vec![d(2, "198.18.0.7", 0, "CAPI")]),
            false,
            now,
        );
        assert_eq!(c.ban[0].until, now + Duration::from_secs(3600));
        assert_eq!(c.ban[0].origin, "cscli");
        let c = h.apply(
            &stream(vec![], vec![d(1, "198.18.0.7", 0, "cscli")]),
            false,
            now,
        );
        assert_eq!(c.lift, ["198.18.0.7".parse::<IpPrefix>().unwrap()]);
        assert!(c.ban.is_empty());
        // A deletion of something never held changes nothing.
        let c = h.apply(
            &stream(vec![], vec![d(99, "198.18.0.99", 0, "cscli")]),
            false,
            now,
        );
        assert_eq!(c, Changes::default());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn a_startup_answer_replaces_the_set_and_lifts_what_it_no_longer_names() {
        let now = SystemTime::UNIX_EPOCH + T0;
        let mut h = Holdings::default();
        h.apply(
            &stream(
                vec![
                    d(1, "198.18.0.1", 60, "cscli"),
                    d(2, "198.18.0.2", 60, "cscli"),
                ],
                vec![],
            ),
            true,
            now,
        );
        // After a reconnect LAPI's whole set is 2 (renewed) and 3: 1 went while we were away.
        let c = h.apply(
            &stream(
                vec![
                    d(2, "198.18.0.2", 600, "cscli"),
                    d(3, "198.18.0.3", 60, "cscli"),
                ],
                vec![],
            ),
            true,
            now,
        );
        assert_eq!(c.lift, ["198.18.0.1".parse::<IpPrefix>().unwrap()]);
        let targets: Vec<String> = c.ban.iter().map(|w| w.target.to_string()).collect();
        assert_eq!(targets, ["198.18.0.2", "198.18.0.3"]);
        assert_eq!(c.ban[0].until, now + Duration::from_secs(600));
        assert!(!h.holds(&"198.18.0.1".parse().unwrap()));
    }

    #[test]
    fn decisions_past_their_deadline_are_forgotten() {
        let now = SystemTime::UNIX_EPOCH + T0;
        let mut h = Holdings::default();
        h.apply(
            &stream(
                vec![
                    d(1, "198.18.0.1", 60, "cscli"),
                    d(2, "198.18.0.2", 600, "cscli"),
                ],
                vec![],
            ),
            true,
            now,
        );
        h.expire(now + Duration::from_secs(61));
        assert_eq!(h.len(), 1);
        assert!(!h.holds(&"198.18.0.1".parse().unwrap()));
        assert!(h.holds(&"198.18.0.2".parse().unwrap()));
    }
}
