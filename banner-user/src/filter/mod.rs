//! The filter stage: a log line in, a failure (address, time, kind) or nothing out.
//!
//! A line goes through three steps: its timestamp is read (or its arrival time used); its
//! prefix is checked (a syslog header must name one of the filter's programs; a `prefregex`
//! must match and yields the content); then the content is tried against the ignore and
//! fail patterns. All fail patterns are first run together in one pass (a `RegexSet`), so
//! the common case, a line that is no failure, costs one scan.

pub mod date;
pub mod pattern;
pub mod sshd;

use std::{
    hash::{Hash as _, Hasher as _},
    net::IpAddr,
    time::SystemTime,
};

use regex::{Regex, RegexSet};

use crate::addr::fold_mapped;
use date::{DateCache, DateMode};
pub use pattern::PatternError;

/// How a failure line counts toward maxretry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// One failed try: counts every time.
    Attempt,
    /// Says the session failed: counts once per session; the session's next attempt pairs
    /// with it rather than counting again.
    Marker,
}

/// What the source knows of a line besides its text.
#[derive(Clone, Copy, Debug)]
pub struct LineMeta {
    pub arrival: SystemTime,
    /// The time the source recorded (journald); None for plain files.
    pub time: Option<SystemTime>,
    /// The writer's pid, if the source knows it (journald's _PID).
    pub pid: Option<u32>,
}

impl LineMeta {
    pub fn arrived(at: SystemTime) -> Self {
        Self {
            arrival: at,
            time: None,
            pid: None,
        }
    }
}

/// One failure, as the jail counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub addr: IpAddr,
    pub time: SystemTime,
    /// The session the line belongs to (the writer's pid, else the client's port), to count
    /// markers once per session.
    pub session: Option<u64>,
    pub kind: FailureKind,
    pub user: Option<String>,
    /// Hash of the failure's content, to recognise the same line read from two sources.
    pub fingerprint: u64,
}

/// The verdict on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Examined {
    /// Not a failure.
    NoMatch,
    /// Written by a program this filter does not read.
    Foreign,
    /// Matched an ignoreregex.
    Ignored,
    Failure(Failure),
    /// Several failures from one line (a hostname that resolved to several addresses).
    Failures(Vec<Failure>),
    /// Matched, but what stands where the address should be is none (kept for status).
    BadHost(String),
}

/// The user-facing parts of a filter (from `[filters.NAME]` or a filter file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub datepattern: Option<String>,
    pub prefregex: Option<String>,
}

/// Which part of a filter a compile error is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterPart {
    Failregex(usize),
    Ignoreregex(usize),
    Prefregex,
    Datepattern,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    pub part: FilterPart,
    pub message: String,
}

#[derive(Clone, Debug)]
enum Prefix {
    /// Timestamped lines must carry a syslog header naming one of these programs; lines
    /// without a timestamp (journald messages, `sshd -E` files) are taken whole.
    Syslog(Vec<String>),
    /// A prefregex whose `<F-CONTENT>` group is what the fail patterns see.
    Regex(Regex),
    /// The fail patterns see the line after its timestamp.
    Plain,
}

#[derive(Clone, Debug)]
pub struct Filter {
    name: String,
    prefix: Prefix,
    fail_set: RegexSet,
    fails: Vec<(Regex, FailureKind)>,
    ignore: Option<RegexSet>,
    date: DateMode,
    usedns: bool,
}

/// Built-in filter names.
pub const BUILTIN: &[&str] = &["sshd"];

impl Filter {
    /// A built-in filter in the given mode (`normal` or `aggressive`).
    pub fn builtin(name: &str, mode: &str, usedns: bool) -> Result<Self, String> {
        let patterns = match (name, mode) {
            ("sshd", "normal") => sshd::normal(),
            ("sshd", "aggressive") => sshd::aggressive(),
            ("sshd", other) => {
                return Err(format!(
                    "sshd has no mode `{other}` (expected normal or aggressive)"
                ))
            }
            (other, _) => {
                return Err(format!(
                    "no filter named `{other}` (built-in: {}; or define [filters.{other}])",
                    BUILTIN.join(", ")
                ))
            }
        };
        let (fails, kinds): (Vec<String>, Vec<FailureKind>) = patterns.into_iter().unzip();
        let prefix = Prefix::Syslog(sshd::PROGRAMS.iter().map(|p| p.to_string()).collect());
        Self::build(name, prefix, &fails, kinds, &[], DateMode::Auto, usedns)
            .map_err(|e| format!("built-in filter {name}: {e}"))
    }

    /// A filter from user patterns (fail2ban syntax: `<HOST>`, `<F-USER>`, `<F-CONTENT>`).
    pub fn custom(name: &str, spec: &FilterSpec, usedns: bool) -> Result<Self, FilterError> {
        let date = DateMode::parse(spec.datepattern.as_deref()).map_err(|message| FilterError {
            part: FilterPart::Datepattern,
            message,
        })?;
        let prefix = match &spec.prefregex {
            Some(p) => {
                let re = pattern::compile(p, usedns, false).map_err(|e| FilterError {
                    part: FilterPart::Prefregex,
                    message: format!("prefregex {e}"),
                })?;
                if !re.capture_names().any(|n| n == Some("f_content")) {
                    return Err(FilterError {
                        part: FilterPart::Prefregex,
                        message: "prefregex needs <F-CONTENT>...</F-CONTENT> around what the failregex should see".into(),
                    });
                }
                Prefix::Regex(re)
            }
            None => Prefix::Plain,
        };
        if spec.failregex.is_empty() {
            return Err(FilterError {
                part: FilterPart::Failregex(0),
                message: "a filter needs at least one failregex".into(),
            });
        }
        let kinds = vec![FailureKind::Attempt; spec.failregex.len()];
        Self::build(
            name,
            prefix,
            &spec.failregex,
            kinds,
            &spec.ignoreregex,
            date,
            usedns,
        )
    }

    fn build(
        name: &str,
        prefix: Prefix,
        fails: &[String],
        kinds: Vec<FailureKind>,
        ignores: &[String],
        date: DateMode,
        usedns: bool,
    ) -> Result<Self, FilterError> {
        let mut expanded = Vec::with_capacity(fails.len());
        let mut compiled = Vec::with_capacity(fails.len());
        for (i, (f, kind)) in fails.iter().zip(kinds).enumerate() {
            let err = |e: PatternError| FilterError {
                part: FilterPart::Failregex(i),
                message: format!("failregex {e}"),
            };
            let x = pattern::expand(f, usedns, true).map_err(err)?;
            let re = Regex::new(&x).map_err(|e| err(PatternError::Regex(e.to_string())))?;
            expanded.push(x);
            compiled.push((re, kind));
        }
        let fail_set = RegexSet::new(&expanded).map_err(|e| FilterError {
            part: FilterPart::Failregex(0),
            message: format!("failregexes do not compile together: {e}"),
        })?;
        let mut ignore_expanded = Vec::with_capacity(ignores.len());
        for (i, g) in ignores.iter().enumerate() {
            let err = |e: PatternError| FilterError {
                part: FilterPart::Ignoreregex(i),
                message: format!("ignoreregex {e}"),
            };
            let x = pattern::expand(g, usedns, false).map_err(err)?;
            Regex::new(&x).map_err(|e| err(PatternError::Regex(e.to_string())))?;
            ignore_expanded.push(x);
        }
        let ignore = if ignore_expanded.is_empty() {
            None
        } else {
            Some(RegexSet::new(&ignore_expanded).map_err(|e| FilterError {
                part: FilterPart::Ignoreregex(0),
                message: e.to_string(),
            })?)
        };
        Ok(Self {
            name: name.to_string(),
            prefix,
            fail_set,
            fails: compiled,
            ignore,
            date,
            usedns,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Judge one line.
    pub fn examine(&self, line: &str, meta: &LineMeta, cache: &mut DateCache) -> Examined {
        let (time, rest, stamped) = match meta.time {
            Some(t) => (t, line, false),
            None => match date::parse_leading(line, &self.date, meta.arrival, cache) {
                Some((t, rest)) => (t, rest, true),
                None => (meta.arrival, line, false),
            },
        };
        let mut pid = meta.pid;
        let content = match &self.prefix {
            Prefix::Plain => rest,
            Prefix::Regex(re) => match re.captures(rest).and_then(|c| c.name("f_content")) {
                Some(m) => m.as_str(),
                None => return Examined::NoMatch,
            },
            Prefix::Syslog(programs) if stamped => match syslog_header(rest) {
                Some((program, header_pid, content)) if programs.iter().any(|p| p == program) => {
                    pid = pid.or(header_pid);
                    content
                }
                _ => return Examined::Foreign,
            },
            Prefix::Syslog(_) => rest,
        };
        if self
            .ignore
            .as_ref()
            .is_some_and(|set| set.is_match(content))
        {
            return Examined::Ignored;
        }
        let Some(index) = self.fail_set.matches(content).iter().next() else {
            return Examined::NoMatch;
        };
        let (re, kind) = &self.fails[index];
        let Some(caps) = re.captures(content) else {
            return Examined::NoMatch;
        };
        let host = caps.name(pattern::HOST_GROUP).map_or("", |m| m.as_str());
        let user = caps.name("f_user").map(|m| m.as_str().to_string());
        let port: Option<u64> = caps.name("f_port").and_then(|m| m.as_str().parse().ok());
        // Tagged so a pid and a port with the same number never meet.
        let session = pid
            .map(|p| (1u64 << 32) | u64::from(p))
            .or(port.map(|p| (2u64 << 32) | p));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        content.hash(&mut hasher);
        let fingerprint = hasher.finish();
        let failure = |addr: IpAddr| Failure {
            addr: fold_mapped(addr),
            time,
            session,
            kind: *kind,
            user: user.clone(),
            fingerprint,
        };
        match host.parse::<IpAddr>() {
            Ok(addr) => Examined::Failure(failure(addr)),
            Err(_) if self.usedns && !host.is_empty() && !host.contains(':') => {
                use std::net::ToSocketAddrs as _;
                match (host, 0u16).to_socket_addrs() {
                    Ok(addrs) => {
                        let mut all: Vec<Failure> = addrs.map(|a| failure(a.ip())).collect();
                        all.dedup_by(|a, b| a.addr == b.addr);
                        if all.is_empty() {
                            Examined::BadHost(host.to_string())
                        } else {
                            Examined::Failures(all)
                        }
                    }
                    Err(_) => Examined::BadHost(host.to_string()),
                }
            }
            Err(_) => Examined::BadHost(host.to_string()),
        }
    }
}

/// `host program[pid]: content` -> (program, pid, content).
fn syslog_header(rest: &str) -> Option<(&str, Option<u32>, &str)> {
    let (_host, after) = rest.split_once(' ')?;
    let colon = after.find(": ")?;
    let tag = &after[..colon];
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let content = &after[colon + 2..];
    match tag.split_once('[') {
        Some((program, pid)) => {
            let pid = pid.strip_suffix(']')?.parse().ok();
            Some((program, pid, content))
        }
        None => Some((tag, None, content)),
    }
}

#[cfg(test)]
mod tests;
