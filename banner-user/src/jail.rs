//! The jail stage: failures in, ban decisions out.
//!
//! A jail counts failures per address over a sliding window (`findtime`); the `maxretry`-th
//! failure inside the window decides a ban, whose length grows with the address's history
//! when `bantime_increment` is on. Markers count once per sshd session (see
//! `filter::sshd`). The same line read from two sources (journald and auth.log) counts once.
//! Memory is bounded: past `max_tracked` addresses, the least recently failing is forgotten.
//!
//! Everything here is synchronous and driven by the caller's clock.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{
    addr::IpPrefix,
    bans::{BanRequest, Cause},
    clock::unix_secs,
    duration::BanLength,
    filter::{Failure, FailureKind},
    model::{BlockType, JailId},
    scope::Scope,
};

mod window;

pub use window::FailureWindow;
use window::SessionSays;

/// How bans grow for repeat offenders: bantime x factor^(n-1), capped at maxtime, where n
/// counts this jail's bans of the address (this one included).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Increment {
    pub enabled: bool,
    pub factor: f64,
    pub maxtime: Duration,
}

impl Default for Increment {
    fn default() -> Self {
        Self {
            enabled: false,
            factor: 2.0,
            maxtime: Duration::from_secs(7 * 86_400),
        }
    }
}

/// A jail's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct JailPolicy {
    pub bantime: BanLength,
    pub findtime: Duration,
    pub maxretry: u32,
    pub blocktype: BlockType,
    pub increment: Increment,
    pub max_tracked: usize,
    /// IPv6 sources are counted and banned per prefix of this length (128: per address).
    pub ipv6_prefix: u8,
    /// The ports its bans cover (`ports`, `protocol`); None: the whole address.
    pub scope: Scope,
    /// The `[actions.NAME]` its bans and unbans run.
    pub actions: Vec<String>,
}

/// The prefix IPv6 failures are counted by unless configured: an attacker's host owns a
/// whole /64 and rotating through it must not reset its count.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

impl JailPolicy {
    /// What a failure from `addr` counts against, and what a ban of it covers: the address
    /// itself for IPv4, its `ipv6_prefix` network for IPv6.
    pub fn target_of(&self, addr: IpAddr) -> IpPrefix {
        match addr {
            IpAddr::V6(_) if self.ipv6_prefix < 128 => IpPrefix::containing(addr, self.ipv6_prefix),
            _ => IpPrefix::host(addr),
        }
    }

    /// The length of the ban after `previous` earlier bans of the same address.
    pub fn ban_length(&self, previous: u32) -> BanLength {
        let BanLength::For(base) = self.bantime else {
            return BanLength::Permanent;
        };
        if !self.increment.enabled || previous == 0 {
            return BanLength::For(base);
        }
        let exponent = previous.min(64) as i32;
        let secs = base.as_secs_f64() * self.increment.factor.powi(exponent);
        // Capped at maxtime, but never below the plain bantime.
        let capped = secs.min(self.increment.maxtime.max(base).as_secs_f64());
        BanLength::For(Duration::from_secs(capped as u64))
    }
}

/// The session word: bit 31 "this session counted a failure", bit 30 "a marker counted and
/// the next attempt pairs with it", bits 0..30 the session id (0 = none).
const SESSION_COUNTED: u32 = 1 << 31;
const SESSION_CREDIT: u32 = 1 << 30;
const SESSION_ID: u32 = (1 << 30) - 1;

/// Does failure `f` count, given its address's session word `current` (0: none)? A
/// session counts once for its markers, and an attempt after a marker pairs with it.
fn session_says(f: &Failure, current: u32) -> SessionSays {
    let Some(session) = f.session else {
        return SessionSays::Count(None);
    };
    let id = session_id(session);
    let (counted, credit) = if current & SESSION_ID == id {
        (
            current & SESSION_COUNTED != 0,
            current & SESSION_CREDIT != 0,
        )
    } else {
        (false, false)
    };
    let (counts, counted, credit) = match f.kind {
        FailureKind::Marker if counted => (false, counted, credit),
        FailureKind::Marker => (true, true, true),
        FailureKind::Attempt if credit => (false, counted, false),
        FailureKind::Attempt => (true, true, false),
    };
    let word =
        id | if counted { SESSION_COUNTED } else { 0 } | if credit { SESSION_CREDIT } else { 0 };
    if counts {
        SessionSays::Count(Some(word))
    } else {
        SessionSays::Fold(word)
    }
}

/// Squeeze a filter's session (tag + pid or port) into 30 bits, never 0.
fn session_id(session: u64) -> u32 {
    let tag = ((session >> 32) as u32 & 1) << 29;
    let id = (session as u32) & ((1 << 29) - 1);
    (tag | id).max(1)
}

/// What a jail has seen, for `banner status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct JailStats {
    /// Failures counted toward maxretry.
    pub failures: u64,
    /// Failure lines older than findtime when read (e.g. an old log read at first start).
    pub too_old: u64,
    /// Failure lines folded into one already counted (same session, or same line from two
    /// sources).
    pub folded: u64,
    pub bans: u64,
    /// Addresses forgotten because max_tracked was reached.
    pub evicted: u64,
}

pub struct Jail {
    pub name: JailId,
    pub policy: JailPolicy,
    window: FailureWindow,
    /// (fingerprint, address) -> time, for lines seen through two sources.
    recent: HashMap<(u64, IpAddr), u32>,
    /// `recent` is swept of old entries when it grows past this; the bar then doubles over
    /// what is left, so a burst of distinct failures costs O(1) each, amortised.
    recent_limit: usize,
    /// Sweeps of `recent` (for tests of the cost).
    recent_sweeps: u64,
    dedupe: bool,
    stats: JailStats,
    /// The last lines of the addresses with failures, for the cause of their ban: at most
    /// maxretry (and [`Cause::MAX_LINES`]) each, for at most [`EVIDENCE_ADDRESSES`]
    /// addresses; past that a ban carries its count without lines (a flood of distinct
    /// addresses must not cost a line each).
    evidence: HashMap<IpAddr, VecDeque<Arc<str>>>,
    /// The count the last failure reached, if it was counted (for the Found log line).
    last_count: Option<u32>,
}

/// Size of `recent` below which it is never swept between housekeeping rounds.
const RECENT_MIN_LIMIT: usize = 4096;

/// Addresses whose lines a jail keeps for evidence at once.
pub const EVIDENCE_ADDRESSES: usize = 4096;

impl Jail {
    /// `dedupe`: the jail reads more than one source, so the same line may arrive twice.
    pub fn new(name: JailId, policy: JailPolicy, dedupe: bool) -> Self {
        Self {
            name,
            policy,
            window: FailureWindow::default(),
            recent: HashMap::new(),
            recent_limit: RECENT_MIN_LIMIT,
            recent_sweeps: 0,
            dedupe,
            stats: JailStats::default(),
            evidence: HashMap::new(),
            last_count: None,
        }
    }

    /// The count the last failure given to [`Self::on_failure`] reached, if it was counted
    /// (not too old, not seen twice); taken once.
    pub fn take_last_count(&mut self) -> Option<u32> {
        self.last_count.take()
    }

    /// Keep the counting state, take new numbers (on reload).
    pub fn update(&mut self, policy: JailPolicy, dedupe: bool) {
        self.policy = policy;
        self.dedupe = dedupe;
    }

    pub fn stats(&self) -> JailStats {
        JailStats {
            evicted: self.window.evicted,
            ..self.stats
        }
    }

    pub fn tracked(&self) -> usize {
        self.window.len()
    }

    pub fn window(&self) -> &FailureWindow {
        &self.window
    }

    /// Count one failure; decide. `previous_bans` tells how often a jail (this one) banned
    /// the address before (for the increment).
    pub fn on_failure(
        &mut self,
        failure: &Failure,
        now: SystemTime,
        previous_bans: impl FnOnce(&JailId, &IpPrefix) -> u32,
    ) -> Option<BanRequest> {
        let now_s = unix_secs(now) as u32;
        // A line from the future (clock skew) counts as now.
        let t = (unix_secs(failure.time) as u32).min(now_s);
        let findtime = self.policy.findtime.as_secs().min(u64::from(u32::MAX)) as u32;
        if t <= now_s.saturating_sub(findtime) {
            self.stats.too_old += 1;
            return None;
        }
        if self.dedupe && self.seen_from_another_source(failure, t) {
            self.stats.folded += 1;
            return None;
        }
        // Counted per target: an IPv6 /64 is one attacker, whichever address it uses.
        let target = self.policy.target_of(failure.addr);
        let key = target.addr();
        let Some(count) = self.window.record(
            |current| session_says(failure, current),
            key,
            t,
            findtime,
            self.policy.maxretry,
            self.policy.max_tracked,
        ) else {
            self.stats.folded += 1;
            return None;
        };
        self.stats.failures += 1;
        self.last_count = Some(count);
        if let Some(line) = &failure.line {
            self.keep_evidence(key, line);
        }
        if count < self.policy.maxretry {
            return None;
        }
        // Banned: its failures are spent; after the ban it starts from zero.
        self.window.forget(key);
        let lines = self.evidence.remove(&key).unwrap_or_default();
        self.stats.bans += 1;
        let previous = previous_bans(&self.name, &target);
        Some(BanRequest {
            target,
            jail: self.name.clone(),
            blocktype: self.policy.blocktype,
            length: self.policy.ban_length(previous),
            scope: self.policy.scope.clone(),
            cause: Cause {
                failures: count,
                lines: lines.into(),
                user: failure.user.as_deref().map(Arc::from),
            },
        })
    }

    fn keep_evidence(&mut self, key: IpAddr, line: &Arc<str>) {
        let keep = (self.policy.maxretry as usize).clamp(1, Cause::MAX_LINES);
        let room = self.evidence.len() < EVIDENCE_ADDRESSES;
        match self.evidence.get_mut(&key) {
            Some(lines) => {
                if lines.len() >= keep {
                    lines.pop_front();
                }
                lines.push_back(line.clone());
            }
            None if room => {
                let mut lines = VecDeque::with_capacity(keep);
                lines.push_back(line.clone());
                self.evidence.insert(key, lines);
            }
            None => {}
        }
    }

    fn seen_from_another_source(&mut self, f: &Failure, t: u32) -> bool {
        let key = (f.fingerprint, f.addr);
        match self.recent.get(&key) {
            // Sources round times differently (journald has µs, RFC 3164 has seconds).
            Some(&seen) if seen.abs_diff(t) <= 1 => true,
            _ => {
                self.recent.insert(key, t);
                if self.recent.len() > self.recent_limit {
                    // Sweeping on every insert past a fixed size made a burst of distinct
                    // failures O(n) each (issue 9, item 16).
                    self.recent.retain(|_, &mut s| s + 10 >= t);
                    self.recent_limit = (self.recent.len() * 2).max(RECENT_MIN_LIMIT);
                    self.recent_sweeps += 1;
                }
                false
            }
        }
    }
    /// Forget what left the window (call now and then).
    pub fn purge(&mut self, now: SystemTime) -> usize {
        let now_s = unix_secs(now) as u32;
        let findtime = self.policy.findtime.as_secs().min(u64::from(u32::MAX)) as u32;
        self.recent.retain(|_, &mut s| s + 10 >= now_s);
        self.recent_limit = (self.recent.len() * 2).max(RECENT_MIN_LIMIT);
        let gone = self.window.purge(now_s, findtime);
        let window = &self.window;
        self.evidence.retain(|key, _| window.contains(*key));
        gone
    }
}

pub const RECIDIVE: &str = "recidive";

/// The recidive jail: its "failures" are other jails' bans of an address; `line` says which
/// ban (its log line, the evidence of recidive's own ban).
pub fn recidive_failure(
    target: &IpPrefix,
    at: SystemTime,
    line: Option<Arc<str>>,
) -> Option<Failure> {
    // Hosts, and IPv6 prefixes (jails ban those per /64); IPv4 ranges only come by hand.
    (target.is_host() || !target.is_v4()).then(|| Failure {
        addr: target.addr(),
        time: at,
        session: None,
        kind: FailureKind::Attempt,
        user: None,
        fingerprint: 0,
        line,
    })
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::clock::{Clock as _, ManualClock};

    fn policy() -> JailPolicy {
        JailPolicy {
            bantime: BanLength::For(Duration::from_secs(3600)),
            findtime: Duration::from_secs(600),
            maxretry: 3,
            blocktype: BlockType::Tarpit,
            increment: Increment::default(),
            max_tracked: 1000,
            ipv6_prefix: 64,
            scope: None,
            actions: Vec::new(),
        }
    }

    fn fail(addr: &str, clock: &ManualClock) -> Failure {
        Failure {
            addr: addr.parse().unwrap(),
            time: clock.now(),
            session: None,
            kind: FailureKind::Attempt,
            user: None,
            fingerprint: 0,
            line: None,
        }
    }

    const T0: u64 = 1_800_000_000;

    #[test]
    fn a_ban_carries_its_last_lines_and_the_evidence_kept_is_bounded() {
        let clock = ManualClock::at(T0);
        let p = JailPolicy {
            max_tracked: 100_000,
            ..policy()
        };
        let mut jail = Jail::new("sshd".into(), p, false);
        let line = |addr: &str, n: usize| Failure {
            line: Some(Arc::from(format!("failure {n} from {addr}"))),
            user: Some(format!("user{n}").into()),
            ..fail(addr, &clock)
        };
        // Many addresses with one failure each: lines are kept for a bounded number.
        for i in 0..(EVIDENCE_ADDRESSES as u32 + 100) {
            let addr = std::net::Ipv4Addr::from(0xc612_0000 + 0x100 + i).to_string();
            assert!(jail
                .on_failure(&line(&addr, 0), clock.now(), |_, _| 0)
                .is_none());
        }
        assert_eq!(jail.evidence.len(), EVIDENCE_ADDRESSES);
        // An address seen before the bound was reached bans with its maxretry (3) lines.
        let first = "198.18.1.0";
        jail.on_failure(&line(first, 1), clock.now(), |_, _| 0);
        let ban = jail
            .on_failure(&line(first, 2), clock.now(), |_, _| 0)
            .expect("third failure bans");
        assert_eq!(ban.cause.failures, 3);
        let lines: Vec<&str> = ban.cause.lines.iter().map(|l| &**l).collect();
        assert_eq!(
            lines,
            [
                "failure 0 from 198.18.1.0",
                "failure 1 from 198.18.1.0",
                "failure 2 from 198.18.1.0"
            ]
        );
        assert_eq!(ban.cause.user.as_deref(), Some("user2"));
        // Its evidence went with the ban; what is left goes with the window.
        assert_eq!(jail.evidence.len(), EVIDENCE_ADDRESSES - 1);
        clock.advance(Duration::from_secs(3600));
        jail.purge(clock.now());
        assert!(jail.evidence.is_empty());
    }

    #[test]
    fn the_maxretry_th_failure_inside_findtime_bans() {
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), false);
        assert!(jail
            .on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0)
            .is_none());
        clock.advance(Duration::from_secs(299));
        assert!(jail
            .on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0)
            .is_none());
        clock.advance(Duration::from_secs(300));
        let ban = jail
            .on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0)
            .unwrap();
        assert_eq!(ban.target.to_string(), "198.18.0.1");
        assert_eq!(ban.length, BanLength::For(Duration::from_secs(3600)));
        assert_eq!(ban.blocktype, BlockType::Tarpit);
        assert_eq!(jail.stats().bans, 1);
        // The ban spent its failures.
        assert_eq!(jail.window().failures_of(&"198.18.0.1".parse().unwrap()), 0);
    }

    #[test]
    fn failures_exactly_findtime_apart_do_not_add_up() {
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), false);
        jail.on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0);
        clock.advance(Duration::from_secs(300));
        jail.on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0);
        // The first failure is exactly findtime old now: out of the window.
        clock.advance(Duration::from_secs(300));
        assert!(jail
            .on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0)
            .is_none());
        // One second earlier it would have been inside.
        let clock2 = ManualClock::at(T0);
        let mut jail2 = Jail::new("sshd".into(), policy(), false);
        jail2.on_failure(&fail("198.18.0.1", &clock2), clock2.now(), |_, _| 0);
        clock2.advance(Duration::from_secs(300));
        jail2.on_failure(&fail("198.18.0.1", &clock2), clock2.now(), |_, _| 0);
        clock2.advance(Duration::from_secs(299));
        assert!(jail2
            .on_failure(&fail("198.18.0.1", &clock2), clock2.now(), |_, _| 0)
            .is_some());
    }

    #[test]
    fn addresses_are_counted_apart() {
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), false);
        for a in [
            "198.18.0.1",
            "198.18.0.2",
            "2001:db8::1",
            "198.18.0.1",
            "2001:db8::1",
        ] {
            assert!(
                jail.on_failure(&fail(a, &clock), clock.now(), |_, _| 0)
                    .is_none(),
                "{a}"
            );
        }
        assert!(jail
            .on_failure(&fail("2001:db8::1", &clock), clock.now(), |_, _| 0)
            .is_some());
    }

    #[test]
    fn lines_older_than_findtime_do_not_count() {
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), false);
        let mut old = fail("198.18.0.1", &clock);
        old.time = UNIX_EPOCH + Duration::from_secs(T0 - 601);
        for _ in 0..5 {
            assert!(jail.on_failure(&old, clock.now(), |_, _| 0).is_none());
        }
        assert_eq!(jail.stats().too_old, 5);
        assert_eq!(jail.tracked(), 0);
    }

    #[test]
    fn bantime_grows_by_factor_up_to_maxtime() {
        let mut p = policy();
        p.increment = Increment {
            enabled: true,
            factor: 2.0,
            maxtime: Duration::from_secs(5 * 3600),
        };
        let hours = |n| match p.ban_length(n) {
            BanLength::For(d) => d.as_secs() / 3600,
            BanLength::Permanent => u64::MAX,
        };
        assert_eq!(
            [hours(0), hours(1), hours(2), hours(3), hours(10)],
            [1, 2, 4, 5, 5]
        );
        // Without increment, every ban is bantime.
        assert_eq!(
            policy().ban_length(7),
            BanLength::For(Duration::from_secs(3600))
        );
        // The jail asks for the history of the banned address.
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), p, false);
        let mut asked = None;
        for _ in 0..3 {
            if let Some(b) = jail.on_failure(&fail("198.18.0.1", &clock), clock.now(), |j, t| {
                assert_eq!(*j, "sshd");
                asked = Some(*t);
                2
            }) {
                assert_eq!(b.length, BanLength::For(Duration::from_secs(4 * 3600)));
            }
        }
        assert_eq!(asked.map(|t| t.to_string()), Some("198.18.0.1".into()));
    }

    #[test]
    fn markers_count_once_per_session_and_pair_with_the_next_attempt() {
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), false);
        let with = |kind, pid| Failure {
            kind,
            session: Some(pid),
            ..fail("198.18.0.1", &clock)
        };
        // Session 100: Invalid user (marker) + Failed password (pairs) + Connection closed (marker, already counted).
        jail.on_failure(&with(FailureKind::Marker, 100), clock.now(), |_, _| 0);
        jail.on_failure(&with(FailureKind::Attempt, 100), clock.now(), |_, _| 0);
        jail.on_failure(&with(FailureKind::Marker, 100), clock.now(), |_, _| 0);
        assert_eq!(jail.stats().failures, 1);
        assert_eq!(jail.stats().folded, 2);
        // A second password in the same session counts.
        jail.on_failure(&with(FailureKind::Attempt, 100), clock.now(), |_, _| 0);
        assert_eq!(jail.stats().failures, 2);
        // A new session (pid 101) counts its first marker: third failure, ban.
        assert!(jail
            .on_failure(&with(FailureKind::Marker, 101), clock.now(), |_, _| 0)
            .is_some());
    }

    #[test]
    fn the_same_line_from_two_sources_counts_once() {
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), true);
        let mut f = fail("198.18.0.1", &clock);
        f.fingerprint = 42;
        jail.on_failure(&f, clock.now(), |_, _| 0);
        jail.on_failure(&f, clock.now(), |_, _| 0);
        assert_eq!(jail.stats().failures, 1);
        f.fingerprint = 43;
        jail.on_failure(&f, clock.now(), |_, _| 0);
        assert_eq!(jail.stats().failures, 2);
    }

    #[test]
    fn tracking_is_bounded_and_the_least_recent_goes_first() {
        let clock = ManualClock::at(T0);
        let mut p = policy();
        p.max_tracked = 3;
        let mut jail = Jail::new("sshd".into(), p, false);
        for a in ["198.18.0.1", "198.18.0.2", "198.18.0.3"] {
            jail.on_failure(&fail(a, &clock), clock.now(), |_, _| 0);
        }
        // .1 fails again: now .2 is the least recent.
        jail.on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0);
        jail.on_failure(&fail("198.18.0.4", &clock), clock.now(), |_, _| 0);
        assert_eq!(jail.tracked(), 3);
        assert_eq!(jail.stats().evicted, 1);
        let w = jail.window();
        assert_eq!(w.failures_of(&"198.18.0.2".parse().unwrap()), 0);
        assert_eq!(w.failures_of(&"198.18.0.1".parse().unwrap()), 2);
        for i in 0..1000 {
            jail.on_failure(
                &fail(&format!("198.19.{}.{}", i / 250, i % 250), &clock),
                clock.now(),
                |_, _| 0,
            );
        }
        assert_eq!(jail.tracked(), 3);
        assert_eq!(jail.window().slots_held(), 3);
    }

    #[test]
    fn purge_forgets_what_left_the_window() {
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), false);
        jail.on_failure(&fail("198.18.0.1", &clock), clock.now(), |_, _| 0);
        clock.advance(Duration::from_secs(300));
        jail.on_failure(&fail("198.18.0.2", &clock), clock.now(), |_, _| 0);
        clock.advance(Duration::from_secs(301));
        assert_eq!(jail.purge(clock.now()), 1);
        assert_eq!(jail.tracked(), 1);
    }

    #[test]
    fn recidive_bans_after_maxretry_bans_inside_its_findtime() {
        let clock = ManualClock::at(T0);
        let mut recidive = Jail::new(
            RECIDIVE.into(),
            JailPolicy {
                bantime: BanLength::For(Duration::from_secs(7 * 86_400)),
                findtime: Duration::from_secs(86_400),
                maxretry: 5,
                ..policy()
            },
            false,
        );
        let target: IpPrefix = "198.18.0.1".parse().unwrap();
        for i in 0..5 {
            clock.advance(Duration::from_secs(3601));
            let f = recidive_failure(&target, clock.now(), None).unwrap();
            let d = recidive.on_failure(&f, clock.now(), |_, _| 0);
            assert_eq!(d.is_some(), i == 4, "ban {i}");
        }
        assert!(recidive_failure(&"198.18.0.0/24".parse().unwrap(), clock.now(), None).is_none());
    }

    #[test]
    fn an_attacker_rotating_through_its_ipv6_64_is_counted_and_banned_as_one() {
        // Issue 9, item 15: counted per /128, a /64 never reached maxretry.
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new("sshd".into(), policy(), false);
        assert!(jail
            .on_failure(&fail("2001:db8:1::1", &clock), clock.now(), |_, _| 0)
            .is_none());
        assert!(jail
            .on_failure(&fail("2001:db8:1::2", &clock), clock.now(), |_, _| 0)
            .is_none());
        // Another /64 counts apart.
        assert!(jail
            .on_failure(&fail("2001:db8:2::1", &clock), clock.now(), |_, _| 0)
            .is_none());
        let ban = jail
            .on_failure(&fail("2001:db8:1::ffff:3", &clock), clock.now(), |_, _| 0)
            .expect("the /64's third failure bans");
        assert_eq!(ban.target.to_string(), "2001:db8:1::/64");
        // IPv4 stays per address; ipv6_prefix = 128 counts per address again.
        assert_eq!(
            policy()
                .target_of("198.18.0.1".parse().unwrap())
                .to_string(),
            "198.18.0.1"
        );
        let exact = JailPolicy {
            ipv6_prefix: 128,
            scope: None,
            actions: Vec::new(),
            ..policy()
        };
        let mut jail = Jail::new("sshd".into(), exact, false);
        for last in 1..=5 {
            let a = format!("2001:db8:1::{last}");
            assert!(jail
                .on_failure(&fail(&a, &clock), clock.now(), |_, _| 0)
                .is_none());
        }
    }

    #[test]
    fn a_burst_of_distinct_failures_through_two_sources_costs_constant_work_each() {
        // Issue 9, item 16: past 4096 remembered lines every new one swept the whole map.
        let clock = ManualClock::at(T0);
        let mut jail = Jail::new(
            "sshd".into(),
            JailPolicy {
                max_tracked: 100_000,
                ..policy()
            },
            true,
        );
        let n = 40_000u32;
        for i in 0..n {
            let mut f = fail(
                &std::net::Ipv4Addr::from(0xc612_0000 + i).to_string(),
                &clock,
            );
            f.fingerprint = u64::from(i);
            jail.on_failure(&f, clock.now(), |_, _| 0);
        }
        assert_eq!(jail.stats().failures, u64::from(n));
        // The bar doubles after each sweep: log2(40000 / 4096) + 1 sweeps, not 36000.
        assert!(jail.recent_sweeps <= 5, "{} sweeps", jail.recent_sweeps);
        // And the same line through the second source is still folded.
        let mut again = fail("198.18.0.7", &clock);
        again.fingerprint = 7;
        assert!(jail.on_failure(&again, clock.now(), |_, _| 0).is_none());
        assert_eq!(jail.stats().folded, 1);
    }
}
