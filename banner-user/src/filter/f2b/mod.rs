//! fail2ban's filters, run as fail2ban runs them.
//!
//! `definition` reads a filter.d file (with `ini`), `pyre` compiles its patterns, `dates`
//! finds each line's time. [`Fail2banFilter`] then applies fail2ban's matching rules: the
//! time is cut out of the line, `prefregex` must match and hands its `<F-CONTENT>` on, the
//! failregexes are tried in order (first match wins), `ignoreregex` vetoes, up to `maxlines`
//! lines are matched together, and lines of one connection (`<F-MLFID>`) are merged: a
//! failure may only be known from a later line, `<F-NOFAIL>` marks a line that is no
//! failure by itself, `<F-MLFGAINED>` (a login that succeeded) cancels what the connection
//! did before, `<F-MLFFORGET>` ends the connection.

pub mod chain;
pub mod dates;
pub mod definition;
mod groups;
pub mod ini;
pub mod pyre;
mod recent;

use std::{borrow::Cow, sync::Mutex};

use definition::FilterDef;
pub use groups::Groups;
use groups::{Key, Name};
use ini::IniError;
use pyre::Re;

pub use crate::filter::Text;

/// Connections (`<F-MLFID>`) remembered at once, and for how long (seconds).
const MLFID_MAX: usize = 10_000;
const MLFID_TTL: f64 = 600.0;

/// The lazy DFA's cache for all failregexes together: it may grow (it only does for lines
/// that need it); with fail2ban's Unicode classes the default size makes it give up for
/// the slow engine on most lines.
const DFA_SIZE: usize = 32 << 20;

/// A line split around its time: the fail patterns see `before + after`.
#[derive(Clone, Debug, Default)]
struct Piece {
    before: String,
    after: String,
}

impl Piece {
    fn text(&self) -> String {
        let mut s = String::with_capacity(self.before.len() + self.after.len());
        s.push_str(&self.before);
        s.push_str(&self.after);
        s
    }
}

fn join(pieces: &[Piece]) -> String {
    match pieces {
        [one] if one.before.is_empty() => one.after.clone(),
        [one] => one.text(),
        many => many.iter().map(Piece::text).collect::<Vec<_>>().join("\n"),
    }
}

/// FNV-1a for text, one multiply for a number: connection ids are short (a pid, a port, a
/// syslog prefix) and the table is bounded, so a fast hash beats SipHash here.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
    /// A built-in's connection is a number (and the enum's tag another): mixed whole, not
    /// byte by byte. The multiply carries every bit upward, the shift brings the high
    /// ones back to the low bits the table indexes by.
    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// What fail2ban keeps of a failure while it is being assembled.
#[derive(Clone, Debug, Default)]
struct Fail {
    groups: Groups,
    /// Every user the connection tried.
    users: Users,
    /// Lines that make up the failure so far (fail2ban's `matches`, counted).
    matches: usize,
    /// Lines held back while the connection looked like no failure.
    nofail_matches: usize,
    pending: bool,
    seen: f64,
}

impl Fail {
    fn flag(&self, k: Key) -> bool {
        self.groups.get_shared(k).is_some_and(|v| !v.is_empty())
    }
    fn take_flag(&mut self, k: Key) -> bool {
        self.groups.remove(k).is_some_and(|v| !v.is_empty())
    }
    fn add_user(&mut self) {
        if let Some(u) = self.groups.get_shared(Key::User).filter(|u| !u.is_empty()) {
            self.users.add(u);
        }
    }
}

/// The users a connection tried, each once: nearly always one, kept inline (a list was an
/// allocation per connection, and one more per hit that copied it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Users {
    first: Option<Text>,
    more: Vec<Text>,
}

impl Users {
    /// In the order tried.
    pub fn iter(&self) -> impl Iterator<Item = &Text> {
        self.first.iter().chain(&self.more)
    }

    fn add(&mut self, u: &Text) {
        match &self.first {
            None => self.first = Some(u.clone()),
            Some(first) if first == u || self.more.contains(u) => {}
            Some(_) => self.more.push(u.clone()),
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }
}

/// Where a failure's address came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// `<HOST>`/`<ADDR>`/`<IP4>`/`<IP6>` matched an address.
    Ip,
    /// A hostname (banned only with usedns).
    Dns,
    /// A failure id that is no address (`<F-ID>`): reported, never banned.
    Id,
}

/// One failure found.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Index of the failregex that matched.
    pub regex: usize,
    /// What fail2ban reports as the failure's host (the address, or the `<F-ID>`).
    pub host: Text,
    pub kind: HostKind,
    /// The address when an `<F-ID>` names the failure otherwise.
    pub ip: Option<Text>,
    /// The line's time; None when it had none (see [`Hit::time`]).
    stamp: Option<Stamp>,
    /// Captured fields (`user`, ...), fail2ban's names; left empty for the daemon (see
    /// [`Fail2banFilter::process_for_ban`]).
    pub fields: Groups,
    /// The user the failure names (`<F-USER>`).
    pub user: Option<Text>,
    /// Every user the connection tried.
    pub users: Users,
    /// The log lines that make up the failure (fail2ban's `matches`).
    pub attempts: usize,
    /// A built-in's marker line (counts once per connection; see `filter::sshd`).
    pub marker: bool,
    /// The connection for built-ins: the writer's pid (tagged `1 << 32`), else the
    /// client's port (tagged `2 << 32`, for `sshd -E` files, which carry no pid).
    pub connection: Option<u64>,
    /// Hash of the text the failregex saw (the message without time and header): the same
    /// line read from a file and from journald hashes the same.
    pub content_hash: u64,
}

impl Hit {
    /// Unix seconds; None when the line had no time.
    pub fn time(&self) -> Option<f64> {
        self.stamp.map(Stamp::secs)
    }

    /// The line's time, where it is one since the epoch: a time the hand-written reader
    /// gave is handed on as it is, not through seconds as a float and back.
    pub fn at(&self) -> Option<std::time::SystemTime> {
        match self.stamp? {
            Stamp::At(t) => t.duration_since(std::time::UNIX_EPOCH).is_ok().then_some(t),
            // None for seconds before the epoch, not finite, or past what a time holds.
            Stamp::Secs(s) => {
                std::time::UNIX_EPOCH.checked_add(std::time::Duration::try_from_secs_f64(s).ok()?)
            }
        }
    }
}

#[derive(Debug)]
struct State {
    dates: Dates,
    /// For built-ins: the hand-written reader of the two common timestamps.
    native_dates: crate::filter::date::DateCache,
    buffer: Vec<Piece>,
    last_date: Option<f64>,
    /// Connections, the least recently remembered first to go when the table is full.
    connections: recent::Recent<ConnId, Fail, std::hash::BuildHasherDefault<Fnv>>,
    /// The group slots of `first_of`, reused from line to line.
    scratch: Option<pyre::FirstOfScratch>,
    /// The last arrival time and its unix seconds: a source hands a batch of lines the
    /// same arrival, and converting it costs as much as reading a line's header.
    arrival: Option<(std::time::SystemTime, f64)>,
    /// Whether this line's hit carries every captured field (see
    /// [`Fail2banFilter::process_for_ban`]).
    all_fields: bool,
}

impl State {
    fn seconds_of(&mut self, t: std::time::SystemTime) -> f64 {
        match self.arrival {
            Some((at, secs)) if at == t => secs,
            _ => {
                let secs = crate::clock::unix_secs_f64(t);
                self.arrival = Some((t, secs));
                secs
            }
        }
    }
}

/// A line's time as its reader gave it: unix seconds from fail2ban's templates, or the
/// hand-written reader's `SystemTime`, converted only for a line that yields a hit (most
/// lines do not, and the conversion costs as much as reading the header).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stamp {
    Secs(f64),
    At(std::time::SystemTime),
}

impl Stamp {
    fn secs(self) -> f64 {
        match self {
            Stamp::Secs(s) => s,
            Stamp::At(t) => crate::clock::unix_secs_f64(t),
        }
    }
}

/// A connection: built-ins number theirs (the writer's pid tagged `1 << 32`, or sshd's
/// client port tagged `2 << 32`); fail2ban's files capture its text (`<F-MLFID>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ConnId {
    Tagged(u64),
    Text(Text),
}

/// How a built-in reads the line before its failregexes: which programs' syslog lines.
#[derive(Clone, Debug, Default)]
pub struct Header {
    /// Program names (a trailing `*`: any name starting so, e.g. `postfix*` for
    /// `postfix/smtpd` and `postfix-in/submission/smtpd`); empty: a log the program writes
    /// itself (a time, then the message).
    pub programs: Vec<String>,
    /// Accept `HOST PROG: ` without a pid (daemons that log so, e.g. dovecot); else a tag
    /// after a host must carry a pid, as sshd's own lines do.
    pub pid_optional: bool,
    /// Track connections by pid (or sshd's client port): a line naming nobody belongs to its
    /// connection's address, markers count once per connection.
    pub connections: bool,
    /// The service also writes its own log, without a syslog header (dovecot's `log_path`):
    /// a line whose header names no known program is read from after its time. The
    /// patterns are anchored at the service's own message prefix, so another program's
    /// syslog line (which starts with a host name) does not match.
    pub optional: bool,
    /// The line's time is its first `[...]` (web servers' access logs), not its start.
    pub bracketed_date: bool,
}

impl Header {
    fn knows(&self, program: &str) -> bool {
        self.programs.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => program.starts_with(prefix) && program.len() > prefix.len(),
            None => p == program,
        })
    }
}

/// What a built-in's reader of its message prefix found: the client's address (and
/// whether it is an IPv6 one) and where the message after the prefix starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixRead {
    pub addr: (usize, usize),
    pub v6: bool,
    pub end: usize,
}

/// A built-in's message prefix read by hand: the prefix pattern's own reading of the
/// line where it gives one, None where it leaves the line to the pattern. A lazy DFA
/// reads a byte in about 1.5 ns (each step waits for the one before); apache's header
/// is ~60 bytes of brackets a plain loop reads in a fraction of that.
pub type PrefixReader = fn(&str) -> Option<PrefixRead>;

/// A compiled fail2ban filter with its matching state (line buffer, connections).
#[derive(Debug)]
pub struct Fail2banFilter {
    pub name: String,
    prefregex: Option<Re>,
    /// The prefregex without its `(?P<content>.+)$` tail (see `Re::without_content_tail`),
    /// for lines matched one at a time.
    pref_head: Option<Re>,
    /// A built-in's reader of its message prefix by hand (see [`PrefixReader`]).
    read_prefix: Option<PrefixReader>,
    /// banner's built-ins read the syslog header by hand instead of a prefregex.
    header: Option<Header>,
    fails: Vec<Re>,
    /// Per failregex of a built-in: a marker line (empty for fail2ban's files).
    markers: Vec<bool>,
    /// Where the failregexes are not searched as one (`first_of`): which may match a line.
    fail_set: Option<FailSet>,
    /// Every failregex as one search, when they are all anchored at the start and lines
    /// are matched one at a time (then `fail_set` is not needed).
    first_of: Option<pyre::FirstOf>,
    /// Per failregex (with `first_of`): does every match of it only end its connection
    /// (see `ends_only`)?
    ends_only: Vec<bool>,
    ignores: Vec<Re>,
    maxlines: usize,
    pub journalmatch: Vec<String>,
    datepattern: Option<String>,
    state: Mutex<State>,
}

impl Clone for Fail2banFilter {
    /// A copy with the same patterns and fresh state.
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            prefregex: self.prefregex.clone(),
            pref_head: self.pref_head.clone(),
            read_prefix: self.read_prefix,
            header: self.header.clone(),
            fails: self.fails.clone(),
            markers: self.markers.clone(),
            fail_set: self.fail_set.clone(),
            first_of: self.first_of.clone(),
            ends_only: self.ends_only.clone(),
            ignores: self.ignores.clone(),
            maxlines: self.maxlines,
            journalmatch: self.journalmatch.clone(),
            datepattern: self.datepattern.clone(),
            // The date templates are shared (compiling them is most of a filter's cost);
            // everything remembered starts empty.
            state: Mutex::new(empty_state(match self.state.lock() {
                Ok(st) => st.dates.fresh(),
                Err(poisoned) => poisoned.into_inner().dates.fresh(),
            })),
        }
    }
}

fn fresh_state(datepattern: Option<&str>) -> Result<State, String> {
    Ok(empty_state(Dates::Built(dates::DateDetector::new(
        datepattern,
    )?)))
}

/// A filter's date templates, or the `datepattern` to build them from when a line first
/// needs them: a built-in reads nearly every line's time by hand, and fail2ban's default
/// templates are 5.5 MB of automata (half of an idle daemon's heap) that mostly never run.
#[derive(Debug)]
enum Dates {
    Built(dates::DateDetector),
    /// A pattern known to build (it was built once, and dropped).
    Later(Option<String>),
}

impl Dates {
    /// Built where the pattern was given, else for `datepattern`, which is checked now.
    fn later(datepattern: Option<&str>) -> Result<Self, String> {
        dates::DateDetector::new(datepattern)?;
        Ok(Dates::Later(datepattern.map(str::to_string)))
    }

    fn find(&mut self, line: &str, now: f64) -> Option<dates::Found> {
        if let Dates::Later(pattern) = self {
            // Built once already: it builds again (None only if that ever changed).
            *self = Dates::Built(dates::DateDetector::new(pattern.as_deref()).ok()?);
        }
        match self {
            Dates::Built(d) => d.find(line, now),
            Dates::Later(_) => None,
        }
    }

    /// The same templates (shared where built) with nothing remembered.
    fn fresh(&self) -> Self {
        match self {
            Dates::Built(d) => Dates::Built(d.fresh()),
            Dates::Later(p) => Dates::Later(p.clone()),
        }
    }
}

/// A filter's matching state with nothing remembered, around its date templates.
fn empty_state(dates: Dates) -> State {
    State {
        dates,
        native_dates: Default::default(),
        buffer: Vec::new(),
        last_date: None,
        connections: Default::default(),
        scratch: None,
        arrival: None,
        all_fields: true,
    }
}

impl Fail2banFilter {
    /// Compile a filter definition. Hostnames are captured unless the file says
    /// `usedns = no`; whether they are banned is the jail's `usedns`.
    pub fn compile(def: &FilterDef) -> Result<Self, IniError> {
        let dns = def.usedns.as_deref() != Some("no");
        let err = |v: &ini::Value, what: &str, e: String| IniError {
            origin: v.origin.clone(),
            message: format!("{what} `{}`: {e}", v.text),
        };
        let prefregex = match &def.prefregex {
            Some(v) => Some(Re::fail2ban(&v.text, dns).map_err(|e| err(v, "prefregex", e))?),
            None => None,
        };
        let mut fails = Vec::new();
        for v in &def.failregex {
            // With a line buffer, `^` and `$` mean the start and end of any line in it
            // (fail2ban compiles failregexes MULTILINE when maxlines > 1).
            let text = if def.maxlines > 1 {
                format!("(?m){}", v.text)
            } else {
                v.text.clone()
            };
            let re = Re::fail2ban(&text, dns).map_err(|e| err(v, "failregex", e))?;
            // The address may come from the prefregex (or, for a connection's lines, from
            // an earlier line of the same connection).
            let has_id = re
                .names
                .iter()
                .chain(prefregex.iter().flat_map(|p| p.names.iter()))
                .any(|(_, n)| {
                    matches!(
                        n,
                        Name::Known(Key::Ip4 | Key::Ip6 | Key::Dns | Key::Fid | Key::Mlfid)
                    )
                });
            if !has_id {
                return Err(err(
                    v,
                    "failregex",
                    "has no <HOST> (nor <ADDR>, <F-ID>): nothing in it says who failed".into(),
                ));
            }
            fails.push(re);
        }
        if fails.is_empty() {
            return Err(IniError {
                origin: ini::Origin {
                    file: def.path.as_path().into(),
                    line: 0,
                },
                message: "the filter has no failregex".into(),
            });
        }
        let mut ignores = Vec::new();
        for v in &def.ignoreregex {
            ignores.push(Re::fail2ban(&v.text, dns).map_err(|e| err(v, "ignoreregex", e))?);
        }
        let first_of = (def.maxlines <= 1)
            .then(|| pyre::FirstOf::new(&fails, DFA_SIZE))
            .flatten();
        let datepattern = def.datepattern.as_ref().map(|v| v.text.clone());
        let state = fresh_state(datepattern.as_deref()).map_err(|e| match &def.datepattern {
            Some(v) => err(v, "datepattern", e),
            None => IniError {
                origin: ini::Origin {
                    file: def.path.as_path().into(),
                    line: 0,
                },
                message: e,
            },
        })?;
        Ok(Self {
            name: def.name.clone(),
            pref_head: prefregex
                .as_ref()
                .filter(|_| def.maxlines <= 1)
                .and_then(Re::without_content_tail),
            read_prefix: None,
            prefregex,
            header: None,
            markers: Vec::new(),
            fail_set: first_of.is_none().then(|| fail_set(&fails)).flatten(),
            ends_only: ends_only(first_of.as_ref(), &fails),
            first_of,
            fails,
            ignores,
            maxlines: def.maxlines,
            journalmatch: def.journalmatch.clone(),
            datepattern,
            state: Mutex::new(state),
        })
    }

    /// One of banner's built-in filters: fail2ban's matching rules over patterns banner
    /// writes, with the syslog header and the common timestamps read by hand (fast), the
    /// sending program's pid as the connection id.
    pub fn builtin(
        name: &str,
        header: Header,
        prefix: Option<(&str, Option<PrefixReader>)>,
        failregex: &[(String, bool)],
        ignoreregex: &[String],
    ) -> Result<Self, String> {
        // The prefix as fail2ban's prefregex: its match is cut off, its first way taken.
        let prefregex = match prefix.map(|p| p.0) {
            Some(p) => Some(
                Re::fail2ban(&format!("{p}<F-CONTENT>.+</F-CONTENT>$"), true)
                    .map_err(|e| format!("message prefix: {e}"))?,
            ),
            None => None,
        };
        let mut fails = Vec::new();
        let markers = failregex.iter().map(|(_, m)| *m).collect();
        for (i, (f, _)) in failregex.iter().enumerate() {
            let re = Re::fail2ban(f, true).map_err(|e| format!("failregex {}: {e}", i + 1))?;
            if re.is_backtracking() {
                return Err(format!(
                    "failregex {} needs backtracking; built-ins must not",
                    i + 1
                ));
            }
            fails.push(re);
        }
        let ignores = ignoreregex
            .iter()
            .map(|g| Re::fail2ban(g, true))
            .collect::<Result<Vec<_>, _>>()?;
        let first_of = pyre::FirstOf::new(&fails, DFA_SIZE);
        Ok(Self {
            name: name.to_string(),
            pref_head: prefregex.as_ref().and_then(Re::without_content_tail),
            read_prefix: prefix.and_then(|p| p.1),
            prefregex,
            header: Some(header),
            markers,
            fail_set: first_of.is_none().then(|| fail_set(&fails)).flatten(),
            ends_only: ends_only(first_of.as_ref(), &fails),
            first_of,
            fails,
            ignores,
            maxlines: 1,
            journalmatch: Vec::new(),
            datepattern: None,
            state: Mutex::new(empty_state(Dates::later(Some("{^LN-BEG}"))?)),
        })
    }

    /// The failregexes as written (for `--verbose`).
    pub fn failregex_sources(&self) -> Vec<&str> {
        self.fails.iter().map(|r| r.source.as_str()).collect()
    }

    /// How many patterns need the backtracking engine.
    pub fn backtracking_patterns(&self) -> usize {
        self.fails
            .iter()
            .chain(&self.ignores)
            .chain(&self.prefregex)
            .filter(|r| r.is_backtracking())
            .count()
    }

    /// Judge one line. `given_time`: the time the source recorded (journald), so the line
    /// carries none; `now`: unix seconds, for year-less times and connection expiry.
    pub fn process(&self, line: &str, given_time: Option<f64>, now: f64) -> Vec<Hit> {
        let arrival = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(now.max(0.0));
        self.process_with_pid(line, given_time, None, arrival)
            .into_iter()
            .collect()
    }

    /// [`Self::process`] for a source that knows the writer's pid (journald), with the
    /// time the line arrived (`now` of `process`).
    pub fn process_with_pid(
        &self,
        line: &str,
        given_time: Option<f64>,
        pid: Option<u32>,
        arrival: std::time::SystemTime,
    ) -> Option<Hit> {
        self.judge(line, given_time, pid, arrival, true)
    }

    /// [`Self::process_with_pid`] for the daemon, which reads of the captured fields only
    /// the user: the hit's `fields` are left empty (copying them all cost a failure line
    /// ~200 instructions).
    pub fn process_for_ban(
        &self,
        line: &str,
        given_time: Option<f64>,
        pid: Option<u32>,
        arrival: std::time::SystemTime,
    ) -> Option<Hit> {
        self.judge(line, given_time, pid, arrival, false)
    }

    fn judge(
        &self,
        line: &str,
        given_time: Option<f64>,
        pid: Option<u32>,
        arrival: std::time::SystemTime,
        all_fields: bool,
    ) -> Option<Hit> {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        st.all_fields = all_fields;
        let now = st.seconds_of(arrival);
        if let Some(header) = &self.header {
            return self.process_builtin(&mut st, header, line, given_time, pid, (arrival, now));
        }
        let (before, after, date) = match given_time {
            Some(t) => ("", line, Some(t)),
            None => match st.dates.find(line, now) {
                Some(found) => {
                    let date = match found.time {
                        Some(t) => {
                            st.last_date = Some(t);
                            Some(t)
                        }
                        None => st.last_date.filter(|t| *t > now - 60.0).or(Some(now)),
                    };
                    (&line[..found.start], &line[found.end..], date)
                }
                None => ("", line, st.last_date.filter(|t| *t > now - 60.0)),
            },
        };
        self.find(
            &mut st,
            before,
            after,
            date.map(Stamp::Secs),
            now,
            Groups::default(),
            None,
        )
    }

    fn process_builtin(
        &self,
        st: &mut State,
        header: &Header,
        line: &str,
        given_time: Option<f64>,
        pid: Option<u32>,
        (arrival, now): (std::time::SystemTime, f64),
    ) -> Option<Hit> {
        // RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
        let (line_5424, is_5424) = match strip_5424_pri(line) {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let (date, rest, stamped) = match given_time {
            Some(t) => (Some(Stamp::Secs(t)), line, false),
            None if is_5424 => {
                match crate::filter::date::parse_leading(
                    line_5424,
                    &crate::filter::date::DateMode::Auto,
                    arrival,
                    &mut st.native_dates,
                ) {
                    Some((t, rest)) => (Some(Stamp::At(t)), suffix(line_5424, rest), true),
                    None => return None,
                }
            }
            // An access log's line, `ADDR - USER [TIME] "REQUEST" ...`, read whole. Its
            // shape is told first: the readers of a leading date (fail2ban's templates
            // last) looked for one at every line, at more cost than the line's patterns.
            None if header.bracketed_date
                && let Some(t) = access_time(line) =>
            {
                return self.judge_content(st, header, line, Some(Stamp::At(t)), None, now);
            }
            None => {
                // logfmt (grafana and other Go services) starts with the time's key.
                let line = if header.programs.is_empty() {
                    strip_logfmt_time_key(line)
                } else {
                    line
                };
                match crate::filter::date::parse_leading(
                    line,
                    &crate::filter::date::DateMode::Auto,
                    arrival,
                    &mut st.native_dates,
                ) {
                    Some((t, rest)) => (Some(Stamp::At(t)), suffix(line, rest), true),
                    // A service's own spelling (apache's `[Sun Jul 28 21:27:56 2013]`,
                    // MySQL's `130324 17:56:13`), read by hand where it is a common one.
                    None if let Some((t, rest)) = crate::filter::date::parse_service(
                        line.strip_prefix('[').unwrap_or(line).as_bytes(),
                        &mut st.native_dates,
                    ) =>
                    {
                        (Some(Stamp::At(t)), suffix(line, rest).trim_start(), true)
                    }
                    // Other forms: fail2ban's templates, anchored at the line's start.
                    None => match st.dates.find(line, now) {
                        Some(f) if f.start <= 2 => {
                            (f.time.map(Stamp::Secs), line[f.end..].trim_start(), true)
                        }
                        // An access log: `ADDR - USER [TIME] "REQUEST" ...`, read whole.
                        _ if header.bracketed_date => {
                            let time = line.find('[').and_then(|i| {
                                let inside = &line[i + 1..];
                                if let Some((t, _)) =
                                    crate::filter::date::parse_clf(inside.as_bytes())
                                {
                                    return Some(Stamp::At(t));
                                }
                                let f = st.dates.find(inside, now)?;
                                (f.start == 0).then_some(f.time).flatten().map(Stamp::Secs)
                            });
                            return self.judge_content(st, header, line, time, None, now);
                        }
                        _ => (None, line, false),
                    },
                }
            }
        };
        let (content, pid) = if stamped && header.programs.is_empty() {
            (rest.trim_start(), None)
        } else if stamped {
            let found = if is_5424 {
                header_5424(rest, header)
            } else {
                syslog_header(rest, header)
            };
            match found {
                Some(h) => h,
                None if header.optional => (rest.trim_start(), None),
                None => return None,
            }
        } else {
            (rest, pid)
        };
        self.judge_content(st, header, content, date, pid, now)
    }

    /// A built-in's message (after time and header) through its failregexes.
    fn judge_content(
        &self,
        st: &mut State,
        header: &Header,
        content: &str,
        date: Option<Stamp>,
        pid: Option<u32>,
        now: f64,
    ) -> Option<Hit> {
        let content = strip_message_noise(content);
        // One line at a time and no prefregex: a line no failregex can match changes no
        // state, so it is done with before anything is built for it (the one search of
        // `first_of` is that test itself).
        if let Some(set) = &self.fail_set {
            if !set.set.is_match(content) {
                return None;
            }
        }
        // The connection: the writer's pid, else (files sshd writes itself) the client's port.
        // A program's own log without a syslog header has no connections.
        let conn = match pid {
            _ if !header.connections => None,
            Some(p) => Some(ConnId::Tagged((1 << 32) | u64::from(p))),
            None if header.programs.is_empty() => None,
            None => client_port(content).map(|port| ConnId::Tagged((2 << 32) | u64::from(port))),
        };
        self.find(st, "", content, date, now, Groups::default(), conn)
    }

    /// The prefregex's groups on `b` and where its content lies (None: the line does not
    /// match it).
    fn prefix_groups(&self, p: &Re, b: &str) -> Option<(Groups, Option<(usize, usize)>)> {
        // The header alone when that says where content starts; else the whole line.
        let head = self
            .pref_head
            .as_ref()
            .and_then(|h| Some(h).zip(head_match(h, b)))
            .filter(|(_, m)| m.end < b.len());
        let (re, m) = match head {
            Some(found) => found,
            None => (p, p.search(b)?),
        };
        // The content is no group: the failregexes see it, nothing reports it. From the
        // header alone, it is the rest of the line (never empty).
        let whole = std::ptr::eq(re, p);
        let mut content = None;
        let groups = re
            .names
            .iter()
            .filter_map(|(i, name)| {
                let (s, e) = m.groups.get(*i).copied().flatten()?;
                if whole && *name == Name::Known(Key::Content) {
                    content = Some((s, e)).filter(|_| e > s);
                    return None;
                }
                Some((name.clone(), Text::from(&b[s..e])))
            })
            .collect();
        if !whole {
            content = Some((m.end, b.len()));
        }
        re.recycle(m);
        Some((groups, content))
    }

    /// fail2ban's matching rules on one line's text (`before` and `after` its time):
    /// prefregex, the first failregex that matches, ignoreregex, the connection's merge.
    /// `conn`: the connection a built-in knows from the header (a `<F-MLFID>` group wins).
    #[allow(clippy::too_many_arguments)]
    fn find(
        &self,
        st: &mut State,
        before: &str,
        after: &str,
        date: Option<Stamp>,
        now: f64,
        mut pre: Groups,
        conn: Option<ConnId>,
    ) -> Option<Hit> {
        // The lines the failregexes see: the buffer (maxlines > 1), else this line alone
        // (borrowed, not copied).
        let (original, mut buf): (Vec<Piece>, Option<Cow<str>>) = if self.maxlines > 1 {
            st.buffer.push(Piece {
                before: before.to_string(),
                after: after.to_string(),
            });
            let n = st.buffer.len();
            if n > self.maxlines {
                st.buffer.drain(..n - self.maxlines);
            }
            let original = st.buffer.clone();
            let text = join(&original);
            (original, Some(Cow::Owned(text)))
        } else {
            st.buffer.clear();
            let text = if before.is_empty() {
                Cow::Borrowed(after)
            } else {
                Cow::Owned(format!("{before}{after}"))
            };
            (Vec::new(), Some(text))
        };
        // Checked up front only when there are few ignoreregexes (fail2ban's rule).
        if !self.ignores.is_empty() && self.ignores.len() + 2 < self.fails.len() {
            let b = buf.as_deref().unwrap_or_default();
            if self.ignores.iter().any(|g| g.is_match(b)) {
                return None;
            }
        }
        if let Some(p) = &self.prefregex {
            let b = buf.as_deref().unwrap_or_default();
            let content = match self.read_prefix.and_then(|read| read(b)) {
                Some(read) => {
                    let key = if read.v6 { Key::Ip6 } else { Key::Ip4 };
                    pre = Groups::default();
                    pre.push_new(Name::Known(key), Text::from(&b[read.addr.0..read.addr.1]));
                    Some((read.end, b.len()))
                }
                None => {
                    let (groups, content) = self.prefix_groups(p, b)?;
                    pre = groups;
                    content
                }
            };
            if let Some((s, e)) = content {
                match buf {
                    // One line at a time, read in place: the content is a part of it.
                    Some(Cow::Borrowed(line)) if self.maxlines == 1 => {
                        buf = Some(Cow::Borrowed(&line[s..e]));
                    }
                    _ => {
                        let after = b[s..e].to_string();
                        st.buffer = vec![Piece {
                            after,
                            ..Piece::default()
                        }];
                        buf = None;
                    }
                }
            }
        }
        let b = buf.unwrap_or_else(|| Cow::Owned(join(&st.buffer)));
        // The connection as known before the failregex (its own `<F-MLFID>` would win).
        let conn = match pre.get_shared(Key::Mlfid) {
            Some(text) => Some(ConnId::Text(text.clone())),
            None => conn,
        };
        // The first failregex in order that matches.
        let found = match &self.first_of {
            Some(first) => {
                let scratch = st.scratch.get_or_insert_with(|| first.scratch());
                // A line that can only end a connection nobody knows changes nothing, so
                // its groups are not worth finding (where finding them is not the search).
                let ends_nothing = |index: usize| {
                    self.ends_only.get(index).copied().unwrap_or(false)
                        && conn
                            .as_ref()
                            .is_some_and(|c| !st.connections.contains_key(c))
                };
                match first.alone(&self.fails, &b, scratch) {
                    Some(found) => found.filter(|(index, _)| !ends_nothing(*index)),
                    None => {
                        let (index, end) = first.which(&b, scratch)?;
                        if ends_nothing(index) {
                            return None;
                        }
                        first.groups_of(&self.fails, index, end, &b, scratch)
                    }
                }
            }
            None => {
                // Patterns refused by their literals are passed over; where few are left,
                // they are searched in order without the set's pass over all of them.
                let open = self.fail_set.as_ref().and_then(|s| s.open(&b, &self.fails));
                let few = open.is_some_and(|o| o.count_ones() <= FEW_OPEN);
                let candidates = match few {
                    true => None,
                    false => self.fail_set.as_ref().map(|s| s.set.matches(&b)),
                };
                self.fails
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| open.is_none_or(|o| o >> i & 1 == 1))
                    .filter(|(i, _)| candidates.as_ref().is_none_or(|c| c.matched(*i)))
                    .find_map(|(i, re)| {
                        match candidates {
                            Some(_) => re.search_matching(&b),
                            None => re.search(&b),
                        }
                        .map(|m| (i, m))
                    })
            }
        };
        let (index, m) = found?;
        let re = &self.fails[index];
        // One line at a time: the match is that line (nothing to split or copy).
        let (matched, unmatched) = if self.maxlines > 1 {
            split_match(&b, &m, &original, re)
        } else {
            (Vec::new(), Vec::new())
        };
        if !self.ignores.is_empty() {
            let vetoed = if self.maxlines > 1 {
                let text = join(&matched);
                self.ignores.iter().any(|g| g.is_match(&text))
            } else {
                self.ignores.iter().any(|g| g.is_match(&b))
            };
            if vetoed {
                if self.maxlines > 1 {
                    st.buffer = unmatched;
                }
                return None;
            }
        }
        st.buffer = unmatched;
        // A pattern names each group once: with nothing from a prefregex, no name needs
        // looking for.
        let fresh = pre.is_empty();
        let mut groups = pre;
        for (i, name) in &re.names {
            if let Some((s, e)) = m.groups.get(*i).copied().flatten() {
                let text = Text::from(&b[s..e]);
                if fresh {
                    groups.push_new(name.clone(), text);
                } else {
                    groups.insert(name.clone(), text);
                }
            }
        }
        match (&self.first_of, st.scratch.as_mut()) {
            (Some(first), Some(scratch)) => first.give_back(index, m.groups, scratch),
            _ => re.recycle(m),
        }
        fold_compound_names(&mut groups);
        let matched_lines = if self.maxlines > 1 { matched.len() } else { 1 };
        // The line's own failure, here until it is merged or remembered.
        let mut alone = Fail {
            groups,
            seen: now,
            ..Fail::default()
        };
        let conn = match alone.groups.get_shared(Key::Mlfid) {
            Some(text) => Some(ConnId::Text(text.clone())),
            None => conn,
        };
        // The failure merged with its connection: remembered (and changed where it is),
        // or here, to be remembered after or not (`remember_alone` knows which).
        let merged = match &conn {
            Some(id) => merge(st, id, &mut alone, matched_lines, now),
            None => {
                alone.matches += matched_lines;
                Merged::Alone { remember: false }
            }
        };
        let fail = match merged {
            Merged::Kept => st.connections.newest_mut()?,
            Merged::Alone { .. } => &mut alone,
        };
        if fail.flag(Key::Nofail) {
            remember_alone(st, conn.as_ref(), merged, alone, now);
            return None;
        }
        let fid = fail.groups.get_shared(Key::Fid).cloned();
        let ip = host_of(&fail.groups).map(|(v, kind)| (v.clone(), kind));
        let (host, kind, ip_text) = match (ip, fid) {
            (Some((ip, kind)), None) => (ip, kind, None),
            (Some((ip, kind)), Some(fid)) if fid == ip => (ip, kind, None),
            (Some((ip, kind)), Some(fid)) => (fid, HostKind::Id, Some((ip, kind))),
            (None, Some(fid)) => (fid, HostKind::Id, None),
            (None, None) => {
                // A connection's line that names nobody yet: wait for the rest.
                fail.pending = true;
                remember_alone(st, conn.as_ref(), merged, alone, now);
                return None;
            }
        };
        if fail.flag(Key::Nofail) {
            return None;
        }
        let hit = Hit {
            regex: index,
            host,
            kind,
            ip: ip_text.map(|(ip, _)| ip),
            stamp: date,
            fields: match st.all_fields {
                true => fail.groups.filtered(|k| !is_internal(k)),
                false => Groups::default(),
            },
            user: fail.groups.user().cloned(),
            attempts: fail.matches,
            users: fail.users.clone(),
            marker: self.markers.get(index).copied().unwrap_or(false),
            content_hash: crate::filter::fingerprint(b.as_bytes()),
            connection: match (&self.header, &conn) {
                (Some(_), Some(ConnId::Tagged(n))) => Some(*n),
                _ => None,
            },
        };
        remember_alone(st, conn.as_ref(), merged, alone, now);
        Some(hit)
    }
}

/// At most this many failregexes left open by their literals (see [`FailSet::open`]) are
/// searched one by one without the set's pass first.
const FEW_OPEN: u32 = 4;

/// Every failregex (relaxed where it backtracks) in one set: the failregexes that can
/// match a line are found in one pass, and only those run.
#[derive(Debug, Clone)]
struct FailSet {
    set: regex::RegexSet,
    /// By a line's first byte, the failregexes (as bits) that may match a line starting
    /// with it (see [`Re::first_bytes`]); None with more than 64 failregexes.
    by_first: Option<std::sync::Arc<[u64; 256]>>,
}

impl FailSet {
    /// The failregexes (as bits) that may match `text`: those its first byte allows and
    /// whose literals it holds (see [`Re::refuses`]). Sshd's filter.d file starts 23
    /// failregexes with their own literals, so a line is left with one or two, searched
    /// without the set's pass over all of them. None where that is not known: on text
    /// that is not all ASCII (under `(?i)` a `k` also matches the Kelvin sign, whose first
    /// byte is no `k`), or empty.
    fn open(&self, text: &str, fails: &[Re]) -> Option<u64> {
        let by_first = self.by_first.as_ref()?;
        let first = *text.as_bytes().first()?;
        if !text.is_ascii() {
            return None;
        }
        let open = by_first[usize::from(first)];
        Some(
            fails
                .iter()
                .enumerate()
                .filter(|(i, re)| open >> i & 1 == 1 && !re.refuses(text))
                .fold(0, |open, (i, _)| open | 1 << i),
        )
    }
}

/// The failregexes' set, with what each line's first byte leaves open (with at most 64).
fn fail_set(fails: &[Re]) -> Option<FailSet> {
    let set = regex::RegexSetBuilder::new(fails.iter().map(|r| pyre::relaxed(&r.translated)))
        .dfa_size_limit(DFA_SIZE)
        .build()
        .ok()?;
    let by_first = (fails.len() <= 64).then(|| {
        let mut by_first = [0u64; 256];
        for (i, re) in fails.iter().enumerate() {
            let firsts = re.first_bytes();
            for (b, open) in (0..=u8::MAX).zip(by_first.iter_mut()) {
                let may = firsts.is_none_or(|set| chain::has_byte(&set, b));
                *open |= u64::from(may) << i;
            }
        }
        std::sync::Arc::new(by_first)
    });
    Some(FailSet { set, by_first })
}

/// Per failregex: does every match of it mark the line no failure and forget the
/// connection (fail2ban's NOFAIL or MLFGAINED with MLFFORGET: sshd's "Accepted ...",
/// "Received disconnect ...: 11:"), the connection coming from elsewhere (no `<F-MLFID>`
/// of its own)? Such a line on a connection nobody knows changes nothing.
fn ends_only(first_of: Option<&pyre::FirstOf>, fails: &[Re]) -> Vec<bool> {
    let Some(first) = first_of else {
        return Vec::new();
    };
    fails
        .iter()
        .enumerate()
        .map(|(i, re)| {
            first.always_fills(i, "mlfforget")
                && (first.always_fills(i, "nofail") || first.always_fills(i, "mlfgained"))
                && !re.names.iter().any(|(_, n)| *n == Name::Known(Key::Mlfid))
        })
        .collect()
}

/// The number after the first ` port ` in a message: the client's port in sshd's lines.
fn client_port(content: &str) -> Option<u16> {
    let at = content.find(" port ")?;
    let digits: &str = &content[at + 6..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// `rest` (a tail of `line`'s bytes) as text, without validating it again (a tail that
/// starts inside a character is no text: empty, as `from_utf8` would have found).
fn suffix<'a>(line: &'a str, rest: &[u8]) -> &'a str {
    line.get(line.len().saturating_sub(rest.len())..)
        .unwrap_or_default()
}

/// `t=`, `ts=` or `time=` before a logfmt line's time -> the time and the rest.
/// The time of an access log's line: three fields without spaces or brackets (the
/// client's address, the identity, the user), then the common log format's bracketed
/// time. Any other line is None and is read as before: a date at its start (a syslog
/// header, fail2ban's templates) comes first there.
fn access_time(line: &str) -> Option<std::time::SystemTime> {
    let b = line.as_bytes();
    let mut fields = 0;
    let mut field_start = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b' ' if i > field_start && fields < 3 => {
                fields += 1;
                field_start = i + 1;
            }
            b'[' if fields == 3 && i == field_start => {
                return crate::filter::date::parse_clf(&b[i + 1..]).map(|(t, _)| t);
            }
            b' ' | b'[' => return None,
            _ => {}
        }
    }
    None
}

fn strip_logfmt_time_key(line: &str) -> &str {
    ["t=", "ts=", "time="]
        .iter()
        .find_map(|k| line.strip_prefix(k))
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(line)
}

/// `<PRI>VERSION ` at the start of an RFC 5424 line -> the rest.
fn strip_5424_pri(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('<')?;
    let close = rest.find('>')?;
    if close == 0 || close > 3 || !rest[..close].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &rest[close + 1..];
    let space = rest.find(' ')?;
    if space == 0 || !rest[..space].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(&rest[space + 1..])
}

/// The syslog header after the timestamp: `HOST PROG[PID]: `, or without the host
/// `PROG[PID]: `, `[PROG]: `, `[PROG] ` (BSD and macOS forms) -> (pid, message).
///
/// With a host, the tag must carry a pid, as the daemons' own lines do: `logger -t sshd`
/// (which any local user may run) writes none unless asked, and rsyslog always writes the
/// host, so the host-less forms are not what a local user's logger produces.
fn syslog_header<'a>(rest: &'a str, header: &Header) -> Option<(&'a str, Option<u32>)> {
    let known = |p: &str| header.knows(p);
    let (first, after) = split_at_byte(rest, b' ').unwrap_or((rest, ""));
    // No host: the first token is the tag.
    if let Some(tag) = first.strip_suffix(':') {
        if let Some((prog, pid)) = split_tag(tag) {
            if known(prog) {
                return Some((after, pid));
            }
        }
    }
    if let Some(prog) = first.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        if known(prog) {
            return Some((after, None));
        }
    }
    // HOST TAG: message, the tag with a pid. A tag holds no space: the first space ends
    // it, after its colon.
    let (tag, message) = split_at_byte(after, b' ')?;
    let tag = tag.strip_suffix(':')?;
    match split_tag(tag) {
        Some((prog, Some(pid))) if known(prog) => Some((message, Some(pid))),
        Some((prog, None)) if header.pid_optional && known(prog) => Some((message, None)),
        _ => None,
    }
}

/// `s` around the first `byte` (ASCII, so both sides stay text). Header fields are a few
/// bytes long: a plain loop beats the general substring searchers here.
fn split_at_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == byte)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// `prog[123]` -> ("prog", Some(123)); `[prog]` -> ("prog", None); `prog` -> ("prog", None).
fn split_tag(tag: &str) -> Option<(&str, Option<u32>)> {
    if let Some(inner) = tag.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return Some((inner, None));
    }
    match split_at_byte(tag, b'[') {
        Some((prog, pid)) => Some((prog, Some(pid_of(pid.strip_suffix(']')?)?))),
        None => Some((tag, None)),
    }
}

/// A pid's digits: a few, read directly (the general parse cost as much as the rest of the
/// header); anything else as `u32`'s parse reads it.
fn pid_of(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    if (1..=9).contains(&b.len()) && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')));
    }
    text.parse().ok()
}

/// RFC 5424 after the timestamp: `HOST APP PROCID MSGID SD MSG` -> (pid, message).
fn header_5424<'a>(rest: &'a str, header: &Header) -> Option<(&'a str, Option<u32>)> {
    let mut fields = rest.splitn(5, ' ');
    let _host = fields.next()?;
    let app = fields.next()?;
    let procid = fields.next()?;
    let _msgid = fields.next()?;
    let sd_and_msg = fields.next()?;
    if !header.knows(app) {
        return None;
    }
    let pid = procid.parse().ok();
    // Structured data: `-`, or `[...]` elements (quoted values may hold brackets).
    let message = if let Some(m) = sd_and_msg.strip_prefix("- ") {
        m
    } else {
        let b = sd_and_msg.as_bytes();
        let mut i = 0;
        while b.get(i) == Some(&b'[') {
            let mut quoted = false;
            i += 1;
            while i < b.len() {
                match b[i] {
                    b'\\' if quoted => i += 1,
                    b'"' => quoted = !quoted,
                    b']' if !quoted => break,
                    _ => {}
                }
                i += 1;
            }
            i += 1;
        }
        sd_and_msg.get(i..)?.strip_prefix(' ')?
    };
    Some((message, pid))
}

/// What some systems put before the message itself: Solaris' `[ID 800047 auth.info] `, a
/// kernel-style `kernel: [  970.699397] ` stamp.
fn strip_message_noise(content: &str) -> &str {
    let mut c = content;
    if let Some(rest) = c.strip_prefix("[ID ") {
        if let Some(close) = rest.find("] ") {
            let inner = &rest[..close];
            let mut parts = inner.split(' ');
            if parts
                .next()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                && parts.next().is_some_and(|f| f.contains('.'))
                && parts.next().is_none()
            {
                c = &rest[close + 2..];
            }
        }
    }
    if let Some(rest) = c.strip_prefix("kernel:") {
        let rest = rest.trim_start_matches(' ');
        if let Some(inner) = rest.strip_prefix('[') {
            if let Some(close) = inner.find(']') {
                let stamp = inner[..close].trim();
                if stamp.split_once('.').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && a.bytes().all(|x| x.is_ascii_digit())
                        && b.bytes().all(|x| x.is_ascii_digit())
                }) {
                    let after = &inner[close + 1..];
                    c = after
                        .strip_prefix(':')
                        .unwrap_or(after)
                        .trim_start_matches(' ');
                }
            }
        }
    }
    c
}

/// Groups that steer matching and are not the failure's data.
fn is_internal(name: &Name) -> bool {
    match name {
        Name::Known(k) => matches!(
            k,
            Key::Mlfid | Key::Nofail | Key::Mlfgained | Key::Mlfforget | Key::Content
        ),
        Name::Other(n) => n.starts_with("skiplines"),
    }
}

/// fail2ban's compound group names: `alt_user_2` fills `user` when that is empty;
/// `tuple_id` and `tuple_id_2` join into `id` (comma-separated here).
fn fold_compound_names(groups: &mut Groups) {
    fn other_compound(k: &Name) -> bool {
        matches!(k, Name::Other(n) if n.starts_with("alt_") || n.starts_with("tuple_"))
    }
    fn compound(k: &Name) -> bool {
        *k == Name::Known(Key::AltUser) || other_compound(k)
    }
    if !groups.entries().any(|(k, _)| other_compound(k)) {
        // The one compound name the built-ins use (pam-generic, proftpd, grafana), known
        // by its key: the general way below reads every name's text (~50 ns a line).
        if let Some(alt) = groups.get_shared(Key::AltUser).filter(|v| !v.is_empty()) {
            if groups.user().is_none_or(|u| u.is_empty()) {
                let alt = alt.clone();
                groups.insert(Name::Known(Key::User), alt);
            }
        }
        return;
    }
    // Kept inline (a few at most): a list of them was an allocation on every line of
    // the filters that name an `alt_user` (pam-generic, proftpd, grafana).
    let found = groups.filtered(compound);
    for (k, v) in found.entries() {
        let v = v.clone();
        let k = k.as_str();
        let (alt, rest) = match k.strip_prefix("alt_") {
            Some(r) => (true, r),
            None => (false, &k["tuple_".len()..]),
        };
        let base = match rest.rsplit_once('_') {
            Some((b, n)) if n.chars().all(|c| c.is_ascii_digit()) => b,
            _ => rest,
        };
        let base = match base {
            "id" => "fid",
            "port" => "fport",
            b => b,
        };
        if alt {
            if groups.get(base).is_none_or(|cur| cur.is_empty()) && !v.is_empty() {
                groups.insert(Name::new(base), v);
            }
        } else {
            let joined = match groups.get(base) {
                Some(cur) => Text::from(format!("{cur},{v}")),
                None => v,
            };
            groups.insert(Name::new(base), joined);
        }
    }
}

/// Remember a connection's failure that is not remembered yet and is to be (a merged one is
/// where it belongs already).
fn remember_alone(st: &mut State, id: Option<&ConnId>, merged: Merged, mut fail: Fail, now: f64) {
    let (Some(id), Merged::Alone { remember: true }) = (id, merged) else {
        return;
    };
    fail.seen = now;
    // `merge` found no connection of this id (or forgot the one it found). The oldest go
    // while the table is full, or once expired.
    st.connections
        .insert_absent(id.clone(), fail, |len, oldest| {
            len >= MLFID_MAX || now - oldest.seen >= MLFID_TTL
        });
}

/// The prefregex's header's match in `line`: its span alone where it has no named group
/// (dovecot's and postfix's: finding groups that are not there cost a chain's walk, half
/// of the header's search).
fn head_match(head: &Re, line: &str) -> Option<pyre::Match> {
    if !head.names.is_empty() {
        return head.search(line);
    }
    let (start, end) = head.find(line)?;
    Some(pyre::Match {
        start,
        end,
        groups: Vec::new(),
    })
}

/// The address (or name) a failure's groups hold, and which it is: the first of ip4, ip6 and
/// dns, the order a ban reads them in.
fn host_of(groups: &Groups) -> Option<(&Text, HostKind)> {
    [
        (Key::Ip4, HostKind::Ip),
        (Key::Ip6, HostKind::Ip),
        (Key::Dns, HostKind::Dns),
    ]
    .into_iter()
    .find_map(|(k, kind)| groups.get_shared(k).map(|v| (v, kind)))
}

/// Where a connection's failure is once its new line is merged in.
#[derive(Clone, Copy)]
enum Merged {
    /// Remembered: the newest entry of the filter's connections.
    Kept,
    /// Not remembered (yet): the line's own failure, where the caller keeps it (a failure
    /// is a few hundred bytes; handed through and back it was copied each way), and
    /// whether to remember it.
    Alone { remember: bool },
}

/// Merge a connection's new line into what is known of it (fail2ban's rules for NOFAIL,
/// MLFGAINED and MLFFORGET). A known connection is merged where it is remembered.
/// `fail`: the line's failure; what stays alone is left there.
fn merge(st: &mut State, id: &ConnId, fail: &mut Fail, matched: usize, now: f64) -> Merged {
    const NOFAIL: u8 = 1;
    const FORGET: u8 = 2;
    const WAS_NOFAIL: u8 = 4;
    const GAINED: u8 = 8;
    let mut flags = 0u8;
    if fail.flag(Key::Mlfgained) {
        flags |= GAINED | NOFAIL;
        if !fail.flag(Key::Nofail) {
            let v = fail.groups.get_shared(Key::Mlfgained).cloned();
            fail.groups
                .insert(Name::Known(Key::Nofail), v.unwrap_or_default());
        }
    } else if fail.flag(Key::Nofail) {
        flags |= NOFAIL;
    }
    if fail.take_flag(Key::Mlfforget) {
        flags |= FORGET;
    }
    // A line naming another address than the connection's is another connection: two
    // clients that share a source port in sshd's own log (the port is all that ties its
    // lines together there), or a forged line. Merged, the new line's failure would be
    // charged to the address of the first. Such a connection, or an expired one, is
    // forgotten.
    let known = match st.connections.refresh(id) {
        Some(f)
            if now - f.seen < MLFID_TTL
                && match (host_of(&f.groups), host_of(&fail.groups)) {
                    (Some((was, _)), Some((is, _))) => was == is,
                    _ => true,
                } =>
        {
            Some(f)
        }
        Some(_) => {
            st.connections.forget_key(id);
            None
        }
        None => None,
    };
    let mut users_counted = true;
    let merged = if let Some(known) = known {
        if let Some(u) = fail.groups.get_shared(Key::User).filter(|u| !u.is_empty()) {
            known.users.add(u);
        }
        if known.take_flag(Key::Nofail) {
            flags |= WAS_NOFAIL;
        }
        if known.take_flag(Key::Mlfgained) {
            flags |= WAS_NOFAIL;
        }
        if flags & GAINED != 0 {
            known.pending = false;
        }
        if flags & WAS_NOFAIL == 0 && !known.pending {
            // What it had was reported already.
            known.matches = 0;
        }
        known.groups.extend(std::mem::take(&mut fail.groups));
        known.seen = now;
        if flags & FORGET == 0 {
            Merged::Kept
        } else {
            match st.connections.remove(id) {
                Some(f) => *fail = f,
                None => {
                    *fail = Fail::default();
                    return Merged::Alone { remember: false };
                }
            }
            Merged::Alone { remember: false }
        }
    } else if flags & FORGET == 0 {
        fail.add_user();
        Merged::Alone { remember: true }
    } else {
        users_counted = false;
        Merged::Alone { remember: false }
    };
    let fail = match merged {
        Merged::Kept => match st.connections.newest_mut() {
            Some(f) => f,
            None => return merged,
        },
        Merged::Alone { .. } => fail,
    };
    let many_users = users_counted && fail.users.len() > 1;
    if std::mem::take(&mut fail.pending) || many_users {
        // Failures were pending, or several users were tried: no success cancels that.
        fail.groups.remove(Key::Nofail);
        fail.groups.remove(Key::Mlfgained);
        flags &= !(GAINED | NOFAIL);
    }
    if flags & NOFAIL == 0 {
        let mut m = std::mem::take(&mut fail.nofail_matches) + fail.matches;
        if flags & GAINED == 0 {
            m += matched;
        }
        fail.matches = m;
    } else if flags & (NOFAIL | FORGET) == NOFAIL {
        fail.nofail_matches += matched;
    }
    merged
}

/// The buffer lines a match covers, and the rest (which stay buffered for later lines).
fn split_match(
    buf: &str,
    m: &pyre::Match,
    original: &[Piece],
    re: &Re,
) -> (Vec<Piece>, Vec<Piece>) {
    if original.len() <= 1 {
        return (original.to_vec(), Vec::new());
    }
    let first = buf[..m.start].matches('\n').count();
    let end_line_end = buf[m.end.saturating_sub(1).min(buf.len())..]
        .find('\n')
        .map_or(buf.len(), |i| i + m.end.saturating_sub(1));
    let last = buf[..end_line_end].matches('\n').count() + 1;
    let last = last.min(original.len());
    let first = first.min(last);
    let mut matched: Vec<Piece> = original[first..last].to_vec();
    let mut unmatched: Vec<Piece> = original[..first].to_vec();
    // Lines a <SKIPLINES> passed over go back to the buffer.
    for (i, name) in &re.names {
        if !name.as_str().starts_with("skiplines") {
            continue;
        }
        let Some((s, e)) = m.groups.get(*i).copied().flatten() else {
            continue;
        };
        for skipped in buf[s..e].split('\n').filter(|l| !l.is_empty()) {
            if let Some(pos) = matched.iter().position(|p| p.text() == skipped) {
                unmatched.push(matched.remove(pos));
            }
        }
    }
    unmatched.extend_from_slice(&original[last..]);
    (matched, unmatched)
}

#[cfg(test)]
mod tests;
