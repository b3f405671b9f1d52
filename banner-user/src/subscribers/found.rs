//! `[sshd] Found 198.51.100.7 (2/3 in 10m)`: a line per failure counted, the way fail2ban logs
//! them, so a user can grep one address's story. Under a flood the lines are capped per jail
//! and a window, and the window ends in one summary line
//! (`[sshd] 12,345 failures from 2,001 addresses in the last 10s; 12,325 Found lines not shown`)
//! instead of a line a failure.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    time::{Duration, SystemTime},
};

use crate::duration::format_duration;

/// The window a jail's Found lines are capped in.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Found lines shown per jail and window; the rest are summed up.
pub const SHOWN_PER_WINDOW: u32 = 20;
/// Distinct addresses remembered per window for the summary (past this it says "at least").
const ADDRESSES_MAX: usize = 100_000;

#[derive(Debug)]
struct Window {
    started: SystemTime,
    failures: u64,
    shown: u32,
    addresses: HashSet<IpAddr>,
}

/// The Found lines of every jail; a synchronous, clock-driven part of the core.
#[derive(Debug, Default)]
pub struct FoundLog {
    jails: HashMap<String, Window>,
}

/// `12345` as `12,345`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl FoundLog {
    /// A failure of `addr` was counted by `jail`, the `count`th of `maxretry` within
    /// `findtime`. Returns the lines to log: a summary of the jail's window if it just ended,
    /// and the Found line unless this window has shown its share.
    #[allow(clippy::too_many_arguments)]
    pub fn found(
        &mut self,
        jail: &str,
        addr: IpAddr,
        count: u32,
        maxretry: u32,
        findtime: Duration,
        now: SystemTime,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let ended = self
            .jails
            .get(jail)
            .is_some_and(|w| now.duration_since(w.started).unwrap_or_default() >= WINDOW);
        if ended {
            if let Some(w) = self.jails.remove(jail) {
                lines.extend(summary(jail, &w));
            }
        }
        let w = self
            .jails
            .entry(jail.to_string())
            .or_insert_with(|| Window {
                started: now,
                failures: 0,
                shown: 0,
                addresses: HashSet::new(),
            });
        w.failures += 1;
        if w.addresses.len() < ADDRESSES_MAX {
            w.addresses.insert(addr);
        }
        if w.shown < SHOWN_PER_WINDOW {
            w.shown += 1;
            lines.push(format!(
                "[{jail}] Found {addr} ({count}/{maxretry} in {})",
                format_duration(findtime)
            ));
        }
        lines
    }

    /// Summaries of the windows that ended by `now` (called every housekeeping round, so a
    /// flood that stops is still summed up).
    pub fn flush(&mut self, now: SystemTime) -> Vec<String> {
        let ended: Vec<String> = self
            .jails
            .iter()
            .filter(|(_, w)| now.duration_since(w.started).unwrap_or_default() >= WINDOW)
            .map(|(j, _)| j.clone())
            .collect();
        let mut lines = Vec::new();
        for j in ended {
            if let Some(w) = self.jails.remove(&j) {
                lines.extend(summary(&j, &w));
            }
        }
        lines
    }
}

/// The window's summary, if it hid any line.
fn summary(jail: &str, w: &Window) -> Option<String> {
    let hidden = w.failures - u64::from(w.shown);
    if hidden == 0 {
        return None;
    }
    let at_least = if w.addresses.len() >= ADDRESSES_MAX {
        "at least "
    } else {
        ""
    };
    Some(format!(
        "[{jail}] {} failures from {at_least}{} addresses in the last {}s; {} Found lines not shown",
        grouped(w.failures),
        grouped(w.addresses.len() as u64),
        WINDOW.as_secs(),
        grouped(hidden)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn each_failure_gets_a_found_line_in_fail2bans_words() {
        let mut log = FoundLog::default();
        let lines = log.found(
            "sshd",
            "198.51.100.7".parse().unwrap(),
            2,
            3,
            Duration::from_secs(600),
            at(0),
        );
        assert_eq!(lines, ["[sshd] Found 198.51.100.7 (2/3 in 10m)"]);
        // Nothing was hidden: no summary.
        assert!(log.flush(at(60)).is_empty());
    }

    #[test]
    fn a_flood_is_capped_per_jail_and_summed_up_when_its_window_ends() {
        let mut log = FoundLog::default();
        let mut shown = 0;
        for i in 0..12_345u32 {
            let addr = IpAddr::from([198, 18, (i % 2001 / 256) as u8, (i % 2001 % 256) as u8]);
            shown += log
                .found("sshd", addr, 1, 3, Duration::from_secs(600), at(1))
                .len();
        }
        assert_eq!(shown, SHOWN_PER_WINDOW as usize);
        // Another jail has its own share.
        assert_eq!(
            log.found(
                "web",
                "198.18.0.1".parse().unwrap(),
                1,
                3,
                Duration::from_secs(60),
                at(2)
            )
            .len(),
            1
        );
        assert!(log.flush(at(5)).is_empty(), "the window has not ended");
        let lines = log.flush(at(11));
        assert_eq!(
            lines,
            ["[sshd] 12,345 failures from 2,001 addresses in the last 10s; 12,325 Found lines not shown"]
        );
        assert!(log.flush(at(30)).is_empty(), "said once");
        // A failure after the window starts a new one, with its own share.
        assert_eq!(
            log.found(
                "sshd",
                "198.18.0.9".parse().unwrap(),
                1,
                3,
                Duration::from_secs(600),
                at(40)
            )
            .len(),
            1
        );
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
