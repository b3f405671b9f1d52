//! The filter stage: a log line in, a failure (address, time, kind) or nothing out.
//!
//! A line goes through three steps: its timestamp is read (or its arrival time used); its
//! prefix is checked (a syslog header must name one of the filter's programs; a `prefregex`
//! must match and yields the content); then the content is tried against the ignore and
//! fail patterns. All fail patterns are first run together in one pass (a `RegexSet`), so
//! the common case, a line that is no failure, costs one scan.

pub mod builtin;
pub mod date;
pub mod f2b;
pub mod mail;
pub mod nginx;
pub mod pattern;
pub mod services;
pub mod sshd;
pub mod text;

pub use text::Text;
pub mod web;

use std::{net::IpAddr, sync::Arc, time::SystemTime};

use regex::bytes::{Regex, RegexSet};

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

/// A line as read, and its text when it is valid UTF-8: checked once, by whoever reads
/// the line first (a source counts the lines that are not; the filter reads them lossily).
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    pub text: Option<&'a str>,
}

impl<'a, T: AsRef<[u8]> + ?Sized> From<&'a T> for Line<'a> {
    fn from(line: &'a T) -> Self {
        let bytes = line.as_ref();
        // Nearly every log line is ASCII, which is checked a word at a time; the full UTF-8
        // check reads byte by byte (a tenth of a short line's time went to it).
        let text = if bytes.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        };
        Line { bytes, text }
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
    /// The `<F-USER>` field, where the pattern captured one (custom filters; the built-in
    /// filters capture only what follows the address, for speed).
    pub user: Option<Text>,
    /// Hash of the failure's content, to recognise the same line read from two sources.
    pub fingerprint: u64,
    /// The log line, as evidence for the ban it may lead to; attached by the source (the
    /// filter alone never copies a line), cut to [`MAX_EVIDENCE_BYTES`].
    pub line: Option<Arc<str>>,
}

/// The most of a line kept as evidence.
pub const MAX_EVIDENCE_BYTES: usize = 1024;

/// Recognises the same line read from two sources (a file and journald): not a security
/// boundary, so the cheapest good hash (CRC-32 cost ~105 instructions more a failure line).
pub fn fingerprint(content: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x6261_6e6e_6572).build_hasher();
    h.write(content);
    h.finish()
}

/// A line as evidence text: lossy UTF-8 (its text as the source checked it), cut at
/// [`MAX_EVIDENCE_BYTES`] on a character boundary.
pub fn evidence(line: Line) -> Arc<str> {
    let text = match line.text {
        Some(t) => std::borrow::Cow::Borrowed(t),
        None => String::from_utf8_lossy(line.bytes),
    };
    let mut end = text.len().min(MAX_EVIDENCE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Arc::from(&text[..end])
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
    /// A prefregex whose `<F-CONTENT>` group is what the fail patterns see.
    Regex(Regex),
    /// The fail patterns see the line after its timestamp.
    Plain,
}

/// One fail pattern of a `[filters.NAME]` table.
#[derive(Clone, Debug)]
struct FailPattern {
    /// As written (tags unexpanded), for people.
    source: String,
    full: Regex,
    kind: FailureKind,
}

#[derive(Clone, Debug)]
pub struct Filter {
    name: String,
    usedns: bool,
    engine: Engine,
}

#[derive(Clone, Debug)]
enum Engine {
    /// banner's own: built-in filters and `[filters.NAME]` tables.
    Native(Native),
    /// A fail2ban filter.d file, run with fail2ban's rules.
    Fail2ban(Box<f2b::Fail2banFilter>),
}

#[derive(Clone, Debug)]
struct Native {
    prefix: Prefix,
    fail_set: RegexSet,
    fails: Vec<FailPattern>,
    ignore: Option<RegexSet>,
    date: DateMode,
}

/// Where fail2ban's filters live, unless the configuration says otherwise.
pub const FAIL2BAN_FILTER_DIR: &str = "/etc/fail2ban/filter.d";

impl Filter {
    /// A built-in filter in the given mode (`normal` names each filter's default).
    pub fn builtin(name: &str, mode: &str, usedns: bool) -> Result<Self, String> {
        let Some(b) = builtin::find(name) else {
            return Err(format!(
                "no filter named `{name}` (built-in: {}; or define [filters.{name}])",
                builtin::names().collect::<Vec<_>>().join(", ")
            ));
        };
        let Some(mode) = b.mode(mode) else {
            return Err(format!(
                "{name} has no mode `{mode}` (expected {})",
                b.modes.join(", ")
            ));
        };
        let header = f2b::Header {
            programs: b.programs.iter().map(|p| p.to_string()).collect(),
            pid_optional: b.pid_optional,
            connections: b.connections,
            optional: b.optional_header,
            bracketed_date: b.access_log,
        };
        let ignores = (b.ignores)(mode);
        let engine = f2b::Fail2banFilter::builtin(
            name,
            header,
            b.message_prefix.map(|p| (p, b.read_prefix)),
            &(b.patterns)(mode),
            &ignores,
        )
        .map_err(|e| format!("built-in filter {name}: {e}"))?;
        Ok(Self {
            name: name.to_string(),
            usedns,
            engine: Engine::Fail2ban(Box::new(engine)),
        })
    }

    /// The fail2ban engine behind a built-in or filter.d filter (for corpus tests).
    pub fn fail2ban_engine(&self) -> Option<&f2b::Fail2banFilter> {
        match &self.engine {
            Engine::Fail2ban(f) => Some(f),
            Engine::Native(_) => None,
        }
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
            compiled.push(FailPattern {
                source: f.strip_prefix("(?-u)").unwrap_or(f).to_string(),
                full: re,
                kind,
            });
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
            usedns,
            engine: Engine::Native(Native {
                prefix,
                fail_set,
                fails: compiled,
                ignore,
                date,
            }),
        })
    }

    /// A fail2ban filter file read as fail2ban reads it, with the jail's options
    /// (`mode`, `logtype`, ...). `usedns`: whether hostnames it captures are resolved and
    /// banned (banner's rule; the file's own `usedns = no` keeps them from matching).
    pub fn fail2ban_file(
        path: &std::path::Path,
        options: &std::collections::BTreeMap<String, String>,
        usedns: bool,
    ) -> Result<Self, f2b::ini::IniError> {
        let def = f2b::definition::load(path, options)?;
        let compiled = f2b::Fail2banFilter::compile(&def)?;
        Ok(Self {
            name: def.name,
            usedns,
            engine: Engine::Fail2ban(Box::new(compiled)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// journalctl matches the filter asks for (fail2ban's `journalmatch`), one alternative
    /// per entry.
    pub fn journalmatch(&self) -> Vec<String> {
        match &self.engine {
            Engine::Native(_) => Vec::new(),
            Engine::Fail2ban(f) => f
                .journalmatch
                .iter()
                .flat_map(|l| l.split(" + "))
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }

    /// The fail patterns as written, in order (for `test-filter --verbose`).
    pub fn patterns(&self) -> Vec<String> {
        match &self.engine {
            Engine::Native(n) => n.fails.iter().map(|f| f.source.clone()).collect(),
            Engine::Fail2ban(f) => f
                .failregex_sources()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// Judge one line (its raw bytes: a line that is not valid UTF-8 is judged too).
    pub fn examine<'a>(
        &self,
        line: impl Into<Line<'a>>,
        meta: &LineMeta,
        cache: &mut DateCache,
    ) -> Examined {
        self.explain(line, meta, cache).0
    }

    /// [`Filter::examine`], and the index of the fail pattern that matched.
    pub fn explain<'a>(
        &self,
        line: impl Into<Line<'a>>,
        meta: &LineMeta,
        cache: &mut DateCache,
    ) -> (Examined, Option<usize>) {
        let line = line.into();
        match &self.engine {
            Engine::Native(n) => self.examine_native(n, line.bytes, meta, cache),
            Engine::Fail2ban(f) => self.examine_fail2ban(f, line, meta),
        }
    }

    fn examine_fail2ban(
        &self,
        f: &f2b::Fail2banFilter,
        line: Line,
        meta: &LineMeta,
    ) -> (Examined, Option<usize>) {
        // Valid UTF-8 (nearly every line) is read in place.
        let text = match line.text {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => String::from_utf8_lossy(line.bytes),
        };
        let given = meta.time.map(crate::clock::unix_secs_f64);
        let hit = f.process_for_ban(&text, given, meta.pid, meta.arrival);
        let Some(hit) = hit else {
            return (Examined::NoMatch, None);
        };
        let time = hit.at().unwrap_or(meta.arrival);
        let host = match (&hit.kind, &hit.ip) {
            (f2b::HostKind::Id, Some(ip)) => ip,
            (f2b::HostKind::Id, None) => {
                return (Examined::BadHost(hit.host.to_string()), Some(hit.regex))
            }
            _ => &hit.host,
        };
        let user = hit.user.as_ref().map(|u| match plain_name(u.as_bytes()) {
            true => u.clone(),
            false => loggable_user(u.as_bytes()),
        });
        let fingerprint = hit.content_hash;
        let session = hit.connection;
        let kind = if hit.marker {
            FailureKind::Marker
        } else {
            FailureKind::Attempt
        };
        let found = Unresolved {
            time,
            session,
            kind,
            user,
            fingerprint,
        };
        (self.resolve(host, found), Some(hit.regex))
    }

    fn examine_native(
        &self,
        n: &Native,
        line: &[u8],
        meta: &LineMeta,
        cache: &mut DateCache,
    ) -> (Examined, Option<usize>) {
        let (time, rest) = match meta.time {
            Some(t) => (t, line),
            None => match date::parse_leading(line, &n.date, meta.arrival, cache) {
                Some((t, rest)) => (t, rest),
                None => (meta.arrival, line),
            },
        };
        let pid = meta.pid;
        let content = match &n.prefix {
            Prefix::Plain => rest,
            Prefix::Regex(re) => match re.captures(rest).and_then(|c| c.name("f_content")) {
                Some(m) => m.as_bytes(),
                None => return (Examined::NoMatch, None),
            },
        };
        if n.ignore.as_ref().is_some_and(|set| set.is_match(content)) {
            return (Examined::Ignored, None);
        }
        let Some(index) = n.fail_set.matches(content).iter().next() else {
            return (Examined::NoMatch, None);
        };
        let fp = &n.fails[index];
        let kind = &fp.kind;
        let Some(caps) = fp.full.captures(content) else {
            return (Examined::NoMatch, None);
        };
        let text = |m: regex::bytes::Match<'_>| String::from_utf8_lossy(m.as_bytes()).into_owned();
        let host_text = caps.name(pattern::HOST_GROUP).map(text).unwrap_or_default();
        let host = host_text.as_str();
        let user = caps.name("f_user").map(|m| loggable_user(m.as_bytes()));
        let port: Option<u64> = caps
            .name("f_port")
            .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
            .and_then(|p| p.parse().ok());
        // Tagged so a pid and a port with the same number never meet.
        let session = pid
            .map(|p| (1u64 << 32) | u64::from(p))
            .or(port.map(|p| (2u64 << 32) | p));
        let fingerprint = fingerprint(content);
        let found = Unresolved {
            time,
            session,
            kind: *kind,
            user,
            fingerprint,
        };
        (self.resolve(host, found), Some(index))
    }

    /// The failure(s) for what stands where the address should be: an address, or with
    /// usedns a hostname resolved (bounded in time), else nothing to ban.
    fn resolve(&self, host: &str, found: Unresolved) -> Examined {
        match crate::addr::parse_logged(host) {
            Some(addr) => Examined::Failure(found.at(addr)),
            None if self.usedns && !host.is_empty() && !host.contains(':') => {
                let owned = host.to_string();
                let lookup = move || {
                    use std::net::ToSocketAddrs as _;
                    (owned.as_str(), 0u16)
                        .to_socket_addrs()
                        .map(|a| a.map(|s| s.ip()).collect::<Vec<IpAddr>>())
                };
                match resolve_bounded(lookup, DNS_TIMEOUT) {
                    Ok(addrs) => {
                        let mut all: Vec<Failure> =
                            addrs.into_iter().map(|a| found.clone().at(a)).collect();
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
            None => Examined::BadHost(host.to_string()),
        }
    }
}

/// A failure found in a line, before what stands where its address should be is made
/// an address (one, or with usedns each a hostname resolves to).
#[derive(Clone)]
struct Unresolved {
    time: SystemTime,
    session: Option<u64>,
    kind: FailureKind,
    user: Option<Text>,
    fingerprint: u64,
}

impl Unresolved {
    fn at(self, addr: IpAddr) -> Failure {
        Failure {
            addr: fold_mapped(addr),
            time: self.time,
            session: self.session,
            kind: self.kind,
            user: self.user,
            fingerprint: self.fingerprint,
            line: None,
        }
    }
}

/// `HOST IDENT[PID]: MESSAGE` -> MESSAGE with the pid, as journald hands them over.
pub fn journal_entry(raw: &[u8], now: SystemTime) -> (Vec<u8>, LineMeta) {
    let mut meta = LineMeta::arrived(now);
    meta.time = Some(now);
    let text = String::from_utf8_lossy(raw);
    let parsed = text.split_once(' ').and_then(|(_host, rest)| {
        let (tag, message) = rest.split_once(": ")?;
        if tag.contains(' ') {
            return None;
        }
        let pid = tag
            .split_once('[')
            .and_then(|(_, p)| p.strip_suffix(']'))
            .and_then(|p| p.parse().ok());
        Some((message.to_string(), pid))
    });
    match parsed {
        Some((message, pid)) => {
            meta.pid = pid;
            (message.into_bytes(), meta)
        }
        None => (raw.to_vec(), meta),
    }
}

/// Longest user name kept from a log line, in characters.
pub const MAX_USER_CHARS: usize = 64;

/// Nearly every name: short, printable ASCII, logged as it is.
fn plain_name(raw: &[u8]) -> bool {
    raw.len() <= MAX_USER_CHARS && raw.iter().all(|b| (b' '..=b'~').contains(b))
}

/// A user name as it may appear in banner's own log: client-chosen text, so capped (a 64 KiB
/// name became one log line) and escaped (no control characters, no line breaks, no terminal
/// escapes reach the log).
pub fn loggable_user(raw: &[u8]) -> Text {
    if plain_name(raw) {
        // Printable ASCII is UTF-8 as it is: nothing to replace.
        if let Ok(name) = std::str::from_utf8(raw) {
            return Text::from(name);
        }
    }
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(MAX_USER_CHARS + 8);
    for (i, c) in text.chars().enumerate() {
        if i == MAX_USER_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Text::from(out)
}

/// Longest a hostname lookup (usedns) may take: a slow resolver must not hold a source up.
const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Lookups still running (past their timeout too) before new ones are refused outright.
const DNS_MAX_IN_FLIGHT: usize = 8;
static DNS_IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Run a blocking lookup on a thread of its own and wait at most `timeout` for it. A lookup
/// that does not answer in time is abandoned (its thread ends when the resolver gives up);
/// at most [`DNS_MAX_IN_FLIGHT`] run at once, so a dead resolver cannot pile threads up.
fn resolve_bounded<F>(lookup: F, timeout: std::time::Duration) -> std::io::Result<Vec<IpAddr>>
where
    F: FnOnce() -> std::io::Result<Vec<IpAddr>> + Send + 'static,
{
    use std::sync::atomic::Ordering;
    if DNS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= DNS_MAX_IN_FLIGHT {
        DNS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        return Err(std::io::Error::other(
            "too many hostname lookups outstanding",
        ));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("banner-dns".into())
        .spawn(move || {
            let _ = tx.send(lookup());
            DNS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        DNS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        return Err(e);
    }
    rx.recv_timeout(timeout)
        .unwrap_or_else(|_| Err(std::io::Error::other("hostname lookup timed out")))
}

#[cfg(test)]
mod tests;
