//! Finding the time in a log line the way fail2ban's date detector does: a list of date
//! templates (strptime-like `%` patterns inside regexes, or the special EPOCH, LEPOCH and
//! TAI64N forms) is tried against the line; a template anchored at the line's start wins,
//! else the leftmost match. The matched text is cut out of the line before the fail
//! patterns see it, exactly as fail2ban does, so filters written for fail2ban match.
//!
//! A year-less time is put in the year of `now`, or the year before when that would land
//! more than a day in the future; a time without a zone is local time.

use std::{cell::RefCell, collections::BTreeMap};

use chrono::{Datelike as _, Local, NaiveDate, NaiveDateTime, TimeZone as _};
use regex_automata::{
    nfa::thompson::backtrack::BoundedBacktracker, util::captures::Captures, Anchored, Input,
};

use super::pyre::Re;

/// The formats tried when a filter names none (or says `{DEFAULT}`), most common first.
/// Written in the template language below: `%X` directives inside a regex.
const DEFAULT_FORMATS: &[&str] = &[
    // 2005-08-14 10:00:00, 2005/08/14T10:00:00.123+02:00
    r"%ExY[-/.]%m[-/.]%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    // Sun Aug 14 10:00:00 (syslog; year optional after)
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    // 14-08-2005 10:00:00, 14/08/05 10:00:00
    r"%d[-/]%m[-/](?:%ExY|%Exy) %k:%M:%S",
    // 14/Aug/2005:10:00:00 +0200 (web servers)
    r"%d[-/]%b[-/]%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `%` directives: the time is built from the named groups.
    Pattern,
    /// Unix seconds (`long`: milli- or microseconds allowed).
    Epoch {
        long: bool,
    },
    Tai64n,
    /// `{NONE}`: lines carry no time.
    None,
}

/// The last date a template read: a line whose match is the same text gets the same
/// result without capturing again (busy logs repeat a timestamp for many lines).
#[derive(Debug, Clone, Default)]
struct Memo {
    matched: String,
    /// The date group, relative to the match's start.
    group: (usize, usize),
    time: Option<f64>,
    now: f64,
}

#[derive(Debug, Clone)]
struct Template {
    re: Re,
    memo: std::cell::RefCell<Option<Memo>>,
    kind: Kind,
    /// Must start at the line's start (after at most two non-word characters).
    line_begin: bool,
    word_begin: bool,
    word_end: bool,
    /// The group holding the date (1 when the pattern has an unnamed group, else 0).
    group: usize,
    /// Reads the fields of a match already found (None for the special kinds).
    reader: Option<Reader>,
    /// One of the two commonest default formats, read by hand before the reader.
    shape: Option<Shape>,
    /// The date group follows `^(?:\W{0,2})?` (a `{^LN-BEG}` format).
    prefixed: bool,
}

/// The date fields fail2ban's templates name (`d_Y`, `d_b`, ...), as slots of [`Fields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `%s`: unix seconds.
    Epoch,
    Year,
    Year2,
    Month,
    MonthName,
    MonthFullName,
    Day,
    YearDay,
    Hour,
    Hour12,
    AmPm,
    Minute,
    Second,
    Fraction,
    Zone,
    ZoneName,
}

impl Field {
    const COUNT: usize = 16;

    /// The field a template's group fills; None for what no time needs (a weekday, a
    /// repeated directive's second group).
    fn of_group(name: &str) -> Option<Self> {
        Some(match name {
            "d_s" => Self::Epoch,
            "d_UY" => Self::Year,
            "d_y" => Self::Year2,
            "d_m" => Self::Month,
            "d_b" => Self::MonthName,
            "d_UB" => Self::MonthFullName,
            "d_d" => Self::Day,
            "d_j" => Self::YearDay,
            "d_UH" => Self::Hour,
            "d_UI" => Self::Hour12,
            "d_p" => Self::AmPm,
            "d_UM" => Self::Minute,
            "d_US" => Self::Second,
            "d_f" => Self::Fraction,
            "d_z" => Self::Zone,
            "d_UZ" => Self::ZoneName,
            _ => return None,
        })
    }
}

/// A template's fields read from a match already found: a bounded backtracker, run
/// without Unicode over the match's few bytes alone, anchored where the match starts. The
/// general engines cost more than the rest of the date: a capture search across the line,
/// or the chain's one DFA search per group, each deciding the group's alternatives by
/// scanning the rest of the date.
#[derive(Debug, Clone)]
struct Reader {
    engine: BoundedBacktracker,
    scratch: RefCell<(regex_automata::nfa::thompson::backtrack::Cache, Captures)>,
    /// (group index, field) for every group a time needs.
    fields: Vec<(usize, Field)>,
}

impl Reader {
    /// None where the pattern needs Unicode (the general engines read it then).
    fn new(pattern: &str) -> Option<Self> {
        if !pattern.is_ascii() || pattern.contains(r"\x{") {
            return None;
        }
        let engine = super::chain::ascii_backtracker(pattern)?;
        let fields = engine
            .get_nfa()
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
            .enumerate()
            .filter_map(|(i, n)| Some((i, Field::of_group(n?)?)))
            .collect();
        let scratch = RefCell::new((engine.create_cache(), engine.create_captures()));
        Some(Self {
            engine,
            scratch,
            fields,
        })
    }

    /// The fields and the span of group `group` of the leftmost-first match that starts
    /// at `start` and ends at `end` in `line`; None when the bytes there are not all ASCII
    /// (nor their neighbours, which boundaries look at) or the match is not found.
    fn read<'l>(
        &self,
        line: &'l str,
        start: usize,
        end: usize,
        group: usize,
    ) -> Option<(Fields<'l>, (usize, usize))> {
        let b = line.as_bytes();
        let near = b.get(start.saturating_sub(1)..b.len().min(end + 1))?;
        if !near.is_ascii() {
            return None;
        }
        let mut scratch = self.scratch.try_borrow_mut().ok()?;
        let (cache, caps) = &mut *scratch;
        let input = Input::new(b).range(start..end).anchored(Anchored::Yes);
        self.engine.try_captures(cache, input, caps).ok()?;
        let whole = caps.get_match()?;
        if whole.end() != end {
            return None;
        }
        let mut fields = Fields::default();
        for &(i, field) in &self.fields {
            if let Some(span) = caps.get_group(i) {
                fields.0[field as usize] = line.get(span.range());
            }
        }
        let span = caps
            .get_group(group)
            .map_or((start, end), |s| (s.start, s.end));
        Some((fields, span))
    }
}

/// The local time zone's answers, remembered: "now" in local time per second of now,
/// and the offsets of local days (see `LocalOffsets`).
#[derive(Debug, Clone, Default)]
struct Zone {
    now: Option<(i64, NaiveDateTime)>,
    offsets: crate::filter::date::LocalOffsets,
}

impl Zone {
    fn now_local(&mut self, now: f64) -> Option<NaiveDateTime> {
        let secs = now as i64;
        match self.now {
            Some((s, local)) if s == secs => Some(local),
            _ => {
                let local = Local.timestamp_opt(secs, 0).single()?.naive_local();
                self.now = Some((secs, local));
                Some(local)
            }
        }
    }

    /// Unix seconds of local time `dt` (the earlier when the clock went back).
    fn epoch_of(&mut self, dt: NaiveDateTime) -> Option<i64> {
        Some(dt.and_utc().timestamp() - i64::from(self.offsets.offset(&dt)?))
    }
}

/// A time found in a line: the byte span cut out of the line and the time (None when the
/// template matched an empty span, `{NONE}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub time: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct DateDetector {
    templates: Vec<Template>,
    /// Every template's pattern in one automaton: one pass tells whether any template can
    /// match a line. A line with no date (sshd's own log, a `-E` file) otherwise ran all
    /// the templates (about 30) one after another, most of the time such a line took.
    /// None where a template needs the backtracking engine.
    any: Option<std::sync::Arc<regex::RegexSet>>,
    /// The template that matched last: tried first, as most lines of a log share a form.
    last: Option<usize>,
    zone: Zone,
}

impl DateDetector {
    /// The same templates (shared, not compiled again) with nothing remembered.
    pub fn fresh(&self) -> Self {
        let mut d = self.clone();
        d.last = None;
        for t in &d.templates {
            t.memo.replace(None);
        }
        d
    }

    /// From a filter's `datepattern` (several templates, one per line), or the defaults.
    pub fn new(datepattern: Option<&str>) -> Result<Self, String> {
        let mut templates = Vec::new();
        match datepattern.map(str::trim).filter(|p| !p.is_empty()) {
            None => defaults(&mut templates, false)?,
            Some(spec) => {
                for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let upper = line.to_ascii_uppercase();
                    match upper.as_str() {
                        "{^LN-BEG}" => defaults(&mut templates, true)?,
                        "{DEFAULT}" => defaults(&mut templates, false)?,
                        "{NONE}" => templates.push(Template {
                            re: Re::python("^()", "{NONE}")?,
                            memo: Default::default(),
                            kind: Kind::None,
                            line_begin: true,
                            word_begin: false,
                            word_end: false,
                            group: 1,
                            reader: None,
                            shape: None,
                            prefixed: false,
                        }),
                        _ if line.contains("{DATE}") => {
                            for format in DEFAULT_FORMATS {
                                if matches!(*format, "EPOCH" | "TAI64N") {
                                    continue;
                                }
                                let inner = unbound(format);
                                templates.push(template(&line.replace("{DATE}", inner))?);
                            }
                        }
                        _ => templates.push(template(line)?),
                    }
                }
            }
        }
        let any = templates
            .iter()
            .all(|t| !t.re.is_backtracking())
            .then(|| regex::RegexSet::new(templates.iter().map(|t| &t.re.translated)).ok())
            .flatten()
            .map(std::sync::Arc::new);
        Ok(Self {
            templates,
            any,
            last: None,
            zone: Zone::default(),
        })
    }

    /// Find the time in `line`; `now` (unix seconds) completes year-less times.
    pub fn find(&mut self, line: &str, now: f64) -> Option<Found> {
        if let Some(i) = self.last {
            let t = &self.templates[i];
            if let Some(f) = search(t, line, now, &mut self.zone) {
                if t.line_begin || f.start == 0 {
                    return Some(f);
                }
            }
        }
        if self.any.as_ref().is_some_and(|any| !any.is_match(line)) {
            return None;
        }
        let mut best: Option<(usize, Found)> = None;
        for (i, t) in self.templates.iter().enumerate() {
            let Some(f) = search(t, line, now, &mut self.zone) else {
                continue;
            };
            if t.line_begin {
                best = Some((i, f));
                break;
            }
            if best.as_ref().is_none_or(|(_, b)| f.start < b.start) {
                best = Some((i, f));
            }
        }
        let (i, f) = best?;
        self.last = Some(i);
        Some(f)
    }
}

/// The default templates: each also as a variant anchored at the line's start, which is
/// tried first; with `line_begin_only`, only those.
fn defaults(out: &mut Vec<Template>, line_begin_only: bool) -> Result<(), String> {
    let mut anchored = Vec::new();
    let mut free = Vec::new();
    for format in DEFAULT_FORMATS {
        let t = template(format)?;
        if t.line_begin {
            anchored.push(t);
        } else {
            anchored.push(template(&format!("{{^LN-BEG}}{format}"))?);
            free.push(t);
        }
    }
    out.extend(anchored);
    if !line_begin_only {
        out.extend(free);
    }
    Ok(())
}

/// A format without its boundary markers, to put inside a `{DATE}` wrapper.
fn unbound(format: &str) -> &str {
    format
        .trim_start_matches("{UNB}")
        .trim_start_matches("{^LN-BEG}")
}

fn template(spec: &str) -> Result<Template, String> {
    let mut spec = spec.trim();
    let mut bounds = true;
    let mut line_begin_tag = false;
    if let Some(rest) = spec.strip_prefix("{UNB}") {
        spec = rest;
        bounds = false;
    }
    if let Some(rest) = spec.strip_prefix("{^LN-BEG}") {
        spec = rest;
        line_begin_tag = true;
    }
    let special = match spec.to_ascii_uppercase().as_str() {
        "EPOCH" | "^EPOCH" => Some(Kind::Epoch { long: false }),
        "LEPOCH" | "^LEPOCH" => Some(Kind::Epoch { long: true }),
        "TAI64N" | "^TAI64N" => Some(Kind::Tai64n),
        _ => None,
    };
    if let Some(kind) = special {
        let anchored = line_begin_tag || spec.starts_with('^');
        let body = match kind {
            Kind::Epoch { long: false } => r"(\d{10,11}(?:\.\d{3,6})?)\b",
            Kind::Epoch { long: true } => r"(\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?)\b",
            _ => r"(@[0-9a-fA-F]{24})",
        };
        let re = if anchored {
            format!(r"^(?:\W{{0,2}})?{body}")
        } else if kind == Kind::Tai64n {
            body.to_string()
        } else {
            // Unanchored epochs only where logs put them: at the start, in `[...]`, or
            // in an audit record (a bare 10-digit number elsewhere is too common).
            format!(r"(?:^\[?|\baudit\(){body}")
        };
        return Ok(Template {
            re: Re::python(&re, spec)?,
            memo: Default::default(),
            kind,
            line_begin: anchored,
            word_begin: false,
            word_end: false,
            group: 1,
            reader: None,
            shape: None,
            prefixed: false,
        });
    }
    let (regex, _) = directives_to_regex(spec)?;
    // `**` at either end: no word boundary on that side.
    let (regex, no_begin, no_end) = strip_boundary_markers(&regex);
    let starts_anchored = {
        let s = regex.trim_start_matches('(').trim_start_matches("?:");
        s.starts_with('^') || regex.starts_with("(?:^") || regex.starts_with("(^")
    };
    let word_begin = bounds && !no_begin && !starts_anchored && !line_begin_tag;
    let word_end = bounds
        && !no_end
        && !(regex.ends_with('$') || regex.ends_with(r"\b") || regex.ends_with(r"\s"));
    let has_group = has_unnamed_group(&regex);
    let body = if has_group {
        regex.clone()
    } else {
        // Keep a leading `^` outside the date group.
        match regex.strip_prefix('^') {
            Some(rest) => format!("^({rest})"),
            None => format!("({regex})"),
        }
    };
    let prefixed = line_begin_tag && !starts_anchored && bounds;
    let full = if prefixed {
        format!(r"^(?:\W{{0,2}})?{body}")
    } else {
        body
    };
    let line_begin = full.starts_with('^') || full.starts_with("(?:^") || full.starts_with("(^");
    let re = Re::python(&full, spec).map_err(|e| format!("datepattern `{spec}`: {e}"))?;
    Ok(Template {
        reader: if re.is_backtracking() {
            None
        } else {
            Reader::new(&re.translated)
        },
        re,
        memo: Default::default(),
        kind: Kind::Pattern,
        line_begin,
        word_begin,
        word_end,
        group: 1,
        shape: Shape::of(spec),
        prefixed,
    })
}

fn strip_boundary_markers(re: &str) -> (String, bool, bool) {
    let mut out = re.to_string();
    let lead = out.len() - out.trim_start_matches('(').len();
    let no_begin = out[lead..].starts_with("**");
    if no_begin {
        out.replace_range(lead..lead + 2, "");
    }
    let trail = out.len() - out.trim_end_matches(')').len();
    let cut = out.len() - trail;
    let no_end = out[..cut].ends_with("**") && !out[..cut].ends_with("\\**");
    if no_end {
        out.replace_range(cut - 2..cut, "");
    }
    (out, no_begin, no_end)
}

/// An unnamed capturing `(` (not `(?`, not escaped) anywhere in a regex.
fn has_unnamed_group(re: &str) -> bool {
    let b = re.as_bytes();
    let mut escaped = false;
    let mut in_class = false;
    for (i, &c) in b.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            b'\\' => escaped = true,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class && b.get(i + 1) != Some(&b'?') => return true,
            _ => {}
        }
    }
    false
}

/// Replace `%X` directives by named groups (`d_Y`, `d_m`, ...); returns the regex and the
/// directives found.
fn directives_to_regex(spec: &str) -> Result<(String, Vec<char>), String> {
    let mut out = String::with_capacity(spec.len() * 3);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut found = Vec::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(c);
            if let Some(n) = chars.next() {
                out.push(n);
            }
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(mut d) = chars.next() else {
            return Err(format!("datepattern `{spec}` ends with a lone `%`"));
        };
        let mut ex = false;
        if d == 'E' && chars.peek() == Some(&'x') {
            chars.next();
            ex = true;
            d = chars
                .next()
                .ok_or_else(|| format!("datepattern `{spec}`: `%Ex` needs a directive"))?;
        }
        if d == '%' {
            out.push('%');
            continue;
        }
        let body: &str = match (d, ex) {
            ('Y', false) => r"\d{4}",
            ('Y', true) => r"(?:19|20)\d\d",
            ('y', _) => r"\d\d",
            ('m', false) => r"0?[1-9]|1[0-2]",
            ('m', true) => r"0[1-9]|1[0-2]",
            ('d' | 'e', false) => r"[1-2]\d|[0 ]?[1-9]|3[0-1]",
            ('d' | 'e', true) => r"[1-2]\d|0[1-9]|3[0-1]",
            ('H', false) => r"[0-1]?\d|2[0-3]",
            ('H', true) => r"[0-1]\d|2[0-3]",
            ('k', _) => r" ?(?:[0-1]?\d|2[0-3])",
            ('I', _) => r"1[0-2]|0[1-9]|[1-9]",
            ('l', _) => r" ?(?:1[0-2]|\d)",
            ('M', false) => r"[0-5]?\d",
            ('M', true) => r"[0-5]\d",
            ('S', false) => r"[0-5]?\d|6[0-1]",
            ('S', true) => r"[0-5]\d|6[0-1]",
            ('f', _) => r"\d{1,6}",
            ('p', _) => r"(?i:AM|PM)",
            ('b' | 'h', _) => {
                r"(?i:J(?:an(?:uary)?|u(?:ne?|ly?))|Feb(?:ruary)?|Ma(?:r(?:ch)?|y)|A(?:pr(?:il)?|ug(?:ust)?)|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
            }
            ('B', _) => {
                r"(?i:January|February|March|April|May|June|July|August|September|October|November|December)"
            }
            ('a', _) => r"(?i:Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un))",
            ('A', _) => r"(?i:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            ('z', _) => r"Z|UTC|GMT|[+-][01]\d(?::?\d{2})?",
            ('Z', _) => r"Z|[A-Z]{3,5}",
            ('j', _) => r"36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9]",
            ('s', _) => r"\d{1,11}",
            (other, _) => {
                return Err(format!(
                    "datepattern `{spec}`: `%{}{other}` is not a directive banner knows",
                    if ex { "Ex" } else { "" }
                ))
            }
        };
        let base = match d {
            'e' => 'd',
            'k' => 'H',
            'l' => 'I',
            'h' => 'b',
            o => o,
        };
        let n = seen.entry(base.to_string()).or_insert(0);
        *n += 1;
        // A repeated directive gets a numbered group; only the first is read.
        let name = if *n == 1 {
            format!("d_{}", group_char(base))
        } else {
            format!("d_{}{}", group_char(base), n)
        };
        out.push_str(&format!("(?P<{name}>{body})"));
        found.push(base);
    }
    Ok((out, found))
}

/// The two commonest default formats (syslog's and ISO 8601's), read by hand: the
/// template's DFA has found where the match ends, and in these formats every field is a
/// run of digits or letters between fixed separators, so each field's span is forced and
/// a plain left-to-right read finds what the backtracker would (at a tenth of its cost).
/// Anything unexpected gives None, and the reader decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`
    Syslog,
    /// `%ExY[-/.]%m[-/.]%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`
    Iso,
}

impl Shape {
    fn of(spec: &str) -> Option<Self> {
        if spec == DEFAULT_FORMATS[0] {
            Some(Self::Iso)
        } else if spec == DEFAULT_FORMATS[1] {
            Some(Self::Syslog)
        } else {
            None
        }
    }

    /// The fields and the date group's span of the match `ms..me` in `line`, read as the
    /// template's backtracker would (`prefixed`: up to two non-word characters precede
    /// the date). With `me` unknown (None), the match of the template anchored at the
    /// line's start (`ms` 0) is read without its DFA having found where it ends: every
    /// field is a whole run of digits or letters, so the read finds the end itself, and
    /// says so only where what follows could not extend the match (a zone or a year
    /// after it: None, and the DFA decides).
    fn read<'l>(
        self,
        line: &'l str,
        ms: usize,
        me: Option<usize>,
        prefixed: bool,
    ) -> Option<(Fields<'l>, (usize, usize))> {
        let b = line.as_bytes();
        let end = match me {
            // ASCII around the match too: the template's `\W` and boundaries look there.
            Some(me) if b.get(ms.saturating_sub(1)..b.len().min(me + 1))?.is_ascii() => me,
            Some(_) => return None,
            // What `\W` may skip, ASCII (a letter of another script is no `\W`).
            None if ms == 0 && b.get(..b.len().min(2))?.is_ascii() => b.len(),
            None => return None,
        };
        let mut c = Cursor { line, at: ms, end };
        if prefixed {
            for _ in 0..2 {
                if c.peek()
                    .is_some_and(|x| !(x.is_ascii_alphanumeric() || x == b'_'))
                {
                    c.at += 1;
                }
            }
        }
        let gs = c.at;
        let mut f = Fields::default();
        let mut set = |field: Field, text: &'l str| f.0[field as usize] = Some(text);
        match self {
            Self::Syslog => {
                let save = c.at;
                if !(is_weekday(c.letters()) && c.eat(b' ')) {
                    c.at = save;
                }
                let month = c.letters();
                if !is_month(month) {
                    return None;
                }
                set(Field::MonthName, month);
                c.expect(b' ')?;
                set(Field::Day, c.day()?);
                c.expect(b' ')?;
                let hs = c.at;
                c.eat(b' ');
                c.hour()?;
                set(Field::Hour, &line[hs..c.at]);
                c.expect(b':')?;
                set(Field::Minute, c.minute()?);
                c.expect(b':')?;
                set(Field::Second, c.last_second(me.is_none())?);
                if c.eat(b'.') {
                    set(Field::Fraction, c.digits(1, 6)?);
                }
                if me.is_none() {
                    if self.may_extend(b, c.at) {
                        return None;
                    }
                } else if c.eat(b' ') {
                    set(Field::Year, c.year()?);
                }
            }
            Self::Iso => {
                set(Field::Year, c.year()?);
                c.one_of(b"-/.")?;
                set(Field::Month, c.month()?);
                c.one_of(b"-/.")?;
                set(Field::Day, c.day()?);
                if !c.eat(b'T') {
                    c.expect(b' ')?;
                    c.eat(b' ');
                }
                set(Field::Hour, c.hour()?);
                c.expect(b':')?;
                set(Field::Minute, c.minute()?);
                c.expect(b':')?;
                set(Field::Second, c.last_second(me.is_none())?);
                if c.one_of(b".,").is_some() {
                    set(Field::Fraction, c.digits(1, 6)?);
                }
                if me.is_none() {
                    if self.may_extend(b, c.at) {
                        return None;
                    }
                } else if c.at < c.end {
                    // `\s`: vertical tab too (not `is_ascii_whitespace`).
                    while c.peek().is_some_and(|x| matches!(x, b'\t'..=b'\r' | b' ')) {
                        c.at += 1;
                    }
                    set(Field::Zone, c.zone()?);
                }
            }
        }
        match me {
            Some(me) => (c.at == me).then_some((f, (gs, me))),
            None => Some((f, (gs, c.at))),
        }
    }
}

impl Shape {
    /// The commonest spellings of the shape at the very start of `line`, read straight
    /// to numbers: `2005-08-14 10:00:00` and `Aug 14 10:00:00` (a day of one digit too,
    /// and a fraction), nothing before them and every other field two digits wide. The
    /// end of the template's match and the date's numbers; None for any other spelling,
    /// and wherever what follows could extend the match (then [`Self::read`] reads it).
    /// Each field is checked against its directive as [`Cursor`] checks it.
    fn read_common(self, line: &str) -> Option<(usize, Numbers)> {
        let b = line.as_bytes();
        let two = |i: usize| -> Option<i64> {
            match (b.get(i), b.get(i + 1)) {
                (Some(x @ b'0'..=b'9'), Some(y @ b'0'..=b'9')) => {
                    Some(i64::from(x - b'0') * 10 + i64::from(y - b'0'))
                }
                _ => None,
            }
        };
        let at_is = |i: usize, set: &[u8]| b.get(i).is_some_and(|x| set.contains(x));
        // `%d`: `[1-2]\d|[0 ]?[1-9]|3[0-1]`, two bytes wide.
        let day = |i: usize| match (b.get(i), two(i)) {
            (Some(b' '), _) => match b.get(i + 1) {
                Some(d @ b'1'..=b'9') => Some(i64::from(d - b'0')),
                _ => None,
            },
            (_, Some(d)) if (1..=31).contains(&d) => Some(d),
            _ => None,
        };
        // `%H:%M:%S` at `i` (`[0-1]?\d|2[0-3]`, `[0-5]?\d`, and the seconds as the regex
        // takes them last: two digits where the first is 0-5).
        let clock = |i: usize| -> Option<(i64, i64, i64)> {
            let (h, m, s) = (two(i)?, two(i + 3)?, two(i + 6)?);
            let ok = h <= 23 && m <= 59 && s <= 59 && at_is(i + 2, b":") && at_is(i + 5, b":");
            ok.then_some((h, m, s))
        };
        // The date up to the time, and where the time (`HH:MM:SS`, eight bytes) starts.
        let (year, month, day, time, fraction) = match self {
            Self::Iso => {
                let year = two(0)? * 100 + two(2)?;
                let month = two(5)?;
                let ok = (1900..=2099).contains(&year)
                    && at_is(4, b"-/.")
                    && at_is(7, b"-/.")
                    && (1..=12).contains(&month)
                    && at_is(10, b"T ");
                (
                    Some(year),
                    month,
                    day(8).filter(|_| ok)?,
                    11,
                    b".,".as_slice(),
                )
            }
            Self::Syslog => {
                let month = month_of(line.get(..3)?).filter(|_| at_is(3, b" "))?;
                let day = day(4).filter(|_| at_is(6, b" "))?;
                (None, month, day, 7, b".".as_slice())
            }
        };
        let (hour, minute, second) = clock(time)?;
        let numbers = Numbers {
            year,
            month: Some(month),
            day: Some(day),
            hour,
            minute,
            second,
            offset: None,
        };
        let mut at = time + 8;
        if at_is(at, fraction) {
            let digits = b
                .get(at + 1..)?
                .iter()
                .take_while(|x| x.is_ascii_digit())
                .count();
            if !(1..=6).contains(&digits) {
                return None;
            }
            at += 1 + digits;
        }
        (!self.may_extend(b, at)).then_some((at, numbers))
    }

    /// Might what follows a date read up to `at` (its optional parts after the time
    /// included) be taken into the template's match? Then only the template's DFA can say
    /// where the match ends.
    fn may_extend(self, b: &[u8], at: usize) -> bool {
        let rest = b.get(at..).unwrap_or_default();
        match self {
            // `(?:\s*%z)?`: spaces and a zone; only a byte no zone begins with, after any
            // spaces (`\s`, the vertical tab too), ends the match for certain.
            Self::Iso => rest
                .iter()
                .find(|x| !matches!(x, b'\t'..=b'\r' | b' '))
                .is_some_and(|x| !x.is_ascii() || b"ZUG+-".contains(x)),
            // `(?: %ExY)?`: a space and a year.
            Self::Syslog => {
                rest.first() == Some(&b' ') && rest.get(1).is_none_or(|x| !x.is_ascii_alphabetic())
            }
        }
    }
}

/// A read position inside a match (never past its end).
struct Cursor<'l> {
    line: &'l str,
    at: usize,
    end: usize,
}

impl<'l> Cursor<'l> {
    fn peek(&self) -> Option<u8> {
        (self.at < self.end).then(|| self.line.as_bytes()[self.at])
    }

    fn eat(&mut self, byte: u8) -> bool {
        let here = self.peek() == Some(byte);
        self.at += usize::from(here);
        here
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn one_of(&mut self, set: &[u8]) -> Option<u8> {
        let x = self.peek().filter(|x| set.contains(x))?;
        self.at += 1;
        Some(x)
    }

    fn run(&mut self, keep: impl Fn(u8) -> bool) -> &'l str {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        &self.line[start..self.at]
    }

    fn letters(&mut self) -> &'l str {
        self.run(|x| x.is_ascii_alphabetic())
    }

    /// A run of `min..=max` digits (the whole run: the next byte is no digit).
    fn digits(&mut self, min: usize, max: usize) -> Option<&'l str> {
        let d = self.run(|x| x.is_ascii_digit());
        (min..=max).contains(&d.len()).then_some(d)
    }

    /// `%ExY`: `(?:19|20)\d\d`.
    fn year(&mut self) -> Option<&'l str> {
        let y = self.digits(4, 4)?;
        (y.starts_with("19") || y.starts_with("20")).then_some(y)
    }

    /// `%m`: `0?[1-9]|1[0-2]`.
    fn month(&mut self) -> Option<&'l str> {
        let m = self.digits(1, 2)?;
        let ok = match m.as_bytes() {
            [d] | [b'0', d] => (b'1'..=b'9').contains(d),
            [b'1', d] => (b'0'..=b'2').contains(d),
            _ => false,
        };
        ok.then_some(m)
    }

    /// `%d`: `[1-2]\d|[0 ]?[1-9]|3[0-1]`.
    fn day(&mut self) -> Option<&'l str> {
        let start = self.at;
        if self.eat(b' ') {
            let d = self.digits(1, 1)?;
            return (d != "0").then(|| &self.line[start..self.at]);
        }
        let d = self.digits(1, 2)?;
        let ok = match d.as_bytes() {
            [x] => (b'1'..=b'9').contains(x),
            [b'0', x] => (b'1'..=b'9').contains(x),
            [b'1' | b'2', _] => true,
            [b'3', x] => (b'0'..=b'1').contains(x),
            _ => false,
        };
        ok.then_some(d)
    }

    /// `%H`: `[0-1]?\d|2[0-3]`.
    fn hour(&mut self) -> Option<&'l str> {
        let h = self.digits(1, 2)?;
        let ok = match h.as_bytes() {
            [_] | [b'0' | b'1', _] => true,
            [b'2', x] => (b'0'..=b'3').contains(x),
            _ => false,
        };
        ok.then_some(h)
    }

    /// `%M`: `[0-5]?\d`.
    fn minute(&mut self) -> Option<&'l str> {
        let m = self.digits(1, 2)?;
        (m.len() == 1 || m.as_bytes()[0] <= b'5').then_some(m)
    }

    /// `%S`: `[0-5]?\d|6[0-1]`.
    fn second(&mut self) -> Option<&'l str> {
        let s = self.digits(1, 2)?;
        let ok = match s.as_bytes() {
            [_] => true,
            [x, _] if *x <= b'5' => true,
            [b'6', x] => (b'0'..=b'1').contains(x),
            _ => false,
        };
        ok.then_some(s)
    }

    /// `%S` where all that follows in the template is optional and the match's end is
    /// not known (`open`): the regex takes its first way that matches, `[0-5]?\d`, as
    /// long as it can (two digits where the first is 0-5, else one: `61` is read `6`,
    /// and the boundary after it then fails). Else as [`Self::second`].
    fn last_second(&mut self, open: bool) -> Option<&'l str> {
        if !open {
            return self.second();
        }
        let b = self.line.as_bytes();
        let n = match (b.get(self.at), b.get(self.at + 1)) {
            (Some(b'0'..=b'5'), Some(x)) if x.is_ascii_digit() => 2,
            (Some(x), _) if x.is_ascii_digit() => 1,
            _ => return None,
        };
        let s = self.line.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }

    /// `%z`: `Z|UTC|GMT|[+-][01]\d(?::?\d{2})?`.
    fn zone(&mut self) -> Option<&'l str> {
        let start = self.at;
        let rest = &self.line[start..self.end];
        for name in ["Z", "UTC", "GMT"] {
            if rest.starts_with(name) {
                self.at += name.len();
                return Some(name);
            }
        }
        self.one_of(b"+-")?;
        let hh = self.line.as_bytes().get(self.at..self.at + 2)?;
        if self.at + 2 > self.end || !matches!(hh, [b'0' | b'1', x] if x.is_ascii_digit()) {
            return None;
        }
        self.at += 2;
        let save = self.at;
        self.eat(b':');
        let mm = self.line.as_bytes().get(self.at..self.at + 2);
        if self.at + 2 <= self.end && mm.is_some_and(|m| m.iter().all(u8::is_ascii_digit)) {
            self.at += 2;
        } else {
            self.at = save;
        }
        Some(&self.line[start..self.at])
    }
}

fn is_weekday(w: &str) -> bool {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .any(|d| w.eq_ignore_ascii_case(d))
}

/// `%b`: a month's first three letters, or its whole name (not `Sept`).
fn is_month(m: &str) -> bool {
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    (m.len() == 3 && MONTHS.iter().any(|x| m.eq_ignore_ascii_case(x)))
        || FULL.iter().any(|x| m.eq_ignore_ascii_case(x))
}

/// Group names are case-sensitive but must differ for `%M`/`%m`, `%Y`/`%y` and so on.
fn group_char(c: char) -> String {
    if c.is_ascii_uppercase() {
        format!("U{c}")
    } else {
        c.to_string()
    }
}

fn search(t: &Template, line: &str, now: f64, zone: &mut Zone) -> Option<Found> {
    let mut from = 0;
    // A match that fails a word boundary is retried a little further on (bounded).
    // A date at the line's start in a shape read by hand: the read alone finds where the
    // match ends (the DFA's search cost as much as the rest of the date), and its common
    // spellings are read straight to numbers.
    if let (Some(shape), true) = (t.shape, t.prefixed) {
        if let Some((me, numbers)) = shape.read_common(line) {
            if !ends_on_boundary(t, line, me) {
                return None;
            }
            let time = time_of(numbers, false, now, zone)?;
            return Some(Found {
                start: 0,
                end: me,
                time: Some(time),
            });
        }
    }
    for _ in 0..8 {
        let hay = line.get(from..)?;
        let quick = match t.shape {
            Some(shape) if t.prefixed && from == 0 => shape.read(line, 0, None, true),
            _ => None,
        };
        let (ms, me) = match &quick {
            Some((_, (_, me))) => (0, *me),
            None => {
                let (ms, me) = t.re.find(hay)?;
                (ms + from, me + from)
            }
        };
        let before_ok = !t.word_begin || ms == 0 || {
            let prev = line[..ms].chars().next_back();
            let first = line[ms..].chars().next();
            !(prev.is_some_and(is_word) && first.is_some_and(is_word))
        };
        if before_ok && ends_on_boundary(t, line, me) {
            // Same template, same matched text, (nearly) the same now: same result.
            if let Some(memo) = t.memo.borrow().as_ref() {
                if memo.matched == line[ms..me] && (memo.now - now).abs() <= 1.0 {
                    return Some(Found {
                        start: ms + memo.group.0,
                        end: ms + memo.group.1,
                        time: memo.time,
                    });
                }
            }
            let (fields, (gs, ge)) = quick
                .or_else(|| t.shape?.read(line, ms, Some(me), t.prefixed))
                .or_else(|| t.reader.as_ref()?.read(line, ms, me, t.group))
                .or_else(|| read_generally(t, line, from, ms))?;
            let text = &line[gs..ge];
            let time = match t.kind {
                // An empty date: the line has none (the caller uses the last one, or now).
                _ if text.is_empty() => None,
                Kind::None => None,
                Kind::Epoch { .. } => epoch(text),
                Kind::Tai64n => tai64n(text),
                Kind::Pattern => Some(build_time(&fields, now, zone)?),
            };
            let mut memo = t.memo.borrow_mut();
            let memo = memo.get_or_insert_with(Memo::default);
            memo.matched.clear();
            memo.matched.push_str(&line[ms..me]);
            memo.group = (gs - ms, ge - ms);
            memo.time = time;
            memo.now = now;
            return Some(Found {
                start: gs,
                end: ge,
                time,
            });
        }
        if t.line_begin {
            return None;
        }
        from = ms + line[ms..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// Does a match of `t` that ends at `me` end where the template wants (at a word's end,
/// unless it says otherwise)?
fn ends_on_boundary(t: &Template, line: &str, me: usize) -> bool {
    !t.word_end || me == line.len() || {
        let last = line[..me].chars().next_back();
        let next = line[me..].chars().next();
        !(last.is_some_and(is_word) && next.is_some_and(is_word))
    }
}

/// A template's fields and date span by its own engines (a capture search from `ms`, the
/// match's start, in the line from `from`): for what the [`Reader`] cannot read.
fn read_generally<'l>(
    t: &Template,
    line: &'l str,
    from: usize,
    ms: usize,
) -> Option<(Fields<'l>, (usize, usize))> {
    let hay = line.get(from..)?;
    let m = t.re.search_at(hay, ms - from)?;
    let (gs, ge) = m
        .groups
        .get(t.group)
        .copied()
        .flatten()
        .unwrap_or((m.start, m.end));
    let mut fields = Fields::default();
    for (i, name) in &t.re.names {
        if let (Some(f), Some(Some((s, e)))) = (Field::of_group(name.as_str()), m.groups.get(*i)) {
            fields.0[f as usize] = hay.get(*s..*e);
        }
    }
    Some((fields, (gs + from, ge + from)))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn epoch(text: &str) -> Option<f64> {
    let text = text.trim_start_matches(['[', '(']);
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits: f64 = int.parse().ok()?;
    // 13 or more digits: milliseconds or microseconds (LEPOCH).
    let secs = match int.len() {
        0..=11 => digits,
        12..=14 => digits / 1e3,
        _ => digits / 1e6,
    };
    let frac: f64 = if frac.is_empty() {
        0.0
    } else {
        format!("0.{frac}").parse().ok()?
    };
    Some(secs + if int.len() <= 11 { frac } else { 0.0 })
}

fn tai64n(text: &str) -> Option<f64> {
    crate::filter::date::tai64n_seconds(text.as_bytes()).map(|secs| secs as f64)
}

/// A date's fields, by [`Field`].
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields<'a>([Option<&'a str>; Field::COUNT]);

impl<'a> Fields<'a> {
    fn get(&self, f: Field) -> Option<&'a str> {
        self.0[f as usize]
    }
}

fn build_time(f: &Fields<'_>, now: f64, zone: &mut Zone) -> Option<f64> {
    let num = |k: Field| f.get(k).and_then(number);
    if let Some(s) = num(Field::Epoch) {
        return Some(s as f64);
    }
    let now_local = zone.now_local(now)?;
    let year = num(Field::Year)
        .or_else(|| num(Field::Year2).map(|y| if y <= 2000 { y + 2000 } else { y }));
    let mut month = num(Field::Month).or_else(|| {
        f.get(Field::MonthName)
            .or(f.get(Field::MonthFullName))
            .and_then(month_of)
    });
    let mut day = num(Field::Day);
    if let Some(j) = num(Field::YearDay) {
        let y = year.unwrap_or(i64::from(now_local.year()));
        let date = NaiveDate::from_yo_opt(y as i32, j as u32)?;
        month = Some(i64::from(date.month()));
        day = Some(i64::from(date.day()));
    }
    let assume_today = month.is_none() && day.is_none();
    let mut hour = num(Field::Hour).unwrap_or(0);
    if let Some(i) = num(Field::Hour12) {
        let pm = f
            .get(Field::AmPm)
            .is_some_and(|p| p.eq_ignore_ascii_case("pm"));
        hour = i % 12 + if pm { 12 } else { 0 };
    }
    let minute = num(Field::Minute).unwrap_or(0);
    let second = num(Field::Second).unwrap_or(0);
    let offset = f
        .get(Field::Zone)
        .and_then(zone_minutes)
        .or_else(|| f.get(Field::ZoneName).and_then(zone_minutes));
    let numbers = Numbers {
        year,
        month,
        day,
        hour,
        minute,
        second,
        offset,
    };
    time_of(numbers, assume_today, now, zone)
}

/// A date's numbers, as a template's fields give them (a year left out is None).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Numbers {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: i64,
    minute: i64,
    second: i64,
    /// Minutes east of UTC, where the date says.
    offset: Option<i64>,
}

/// The unix time of a date's numbers: a year left out is this year's (last year's where
/// that would be more than a day ahead of `now`), a day left out today's (yesterday's
/// where that is ahead); the time is local unless the date gives its offset.
fn time_of(n: Numbers, assume_today: bool, now: f64, zone: &mut Zone) -> Option<f64> {
    let now_local = zone.now_local(now)?;
    let assume_year = n.year.is_none();
    let y = n.year.unwrap_or(i64::from(now_local.year()));
    let month = n.month.unwrap_or(i64::from(now_local.month()));
    let day = n.day.unwrap_or(i64::from(now_local.day()));
    let (hour, minute, second, offset) = (n.hour, n.minute, n.second.min(59), n.offset);
    // Whole seconds, as fail2ban reads them (its tests compare exactly): a fraction
    // (`%f`) is matched but not kept.
    let naive = |y: i64| -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(y as i32, month as u32, day as u32)?.and_hms_opt(
            hour as u32,
            minute as u32,
            second as u32,
        )
    };
    let mut to_epoch = |dt: NaiveDateTime| -> Option<f64> {
        let secs = match offset {
            Some(off) => dt.and_utc().timestamp() - off * 60,
            None => zone.epoch_of(dt)?,
        };
        Some(secs as f64)
    };
    let mut t = to_epoch(naive(y)?)?;
    if assume_today && t > now {
        t -= 86_400.0;
    }
    if assume_year && t > now + 86_400.0 {
        t = to_epoch(naive(y - 1)?)?;
    }
    Some(t)
}

/// A directive's digits (`%k` and `%d` may lead with a space): at most 18, so no overflow.
fn number(text: &str) -> Option<i64> {
    let digits = text.trim_start_matches(' ').as_bytes();
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.iter().try_fold(0i64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// The month (1-12) a name starts with, in any case. Matched as one word of three
/// bytes: twelve case-blind compares cost ~200 instructions on every syslog line.
fn month_of(name: &str) -> Option<i64> {
    let head = name.as_bytes().get(..3)?;
    let word = u32::from_le_bytes([head[0], head[1], head[2], 0]) | 0x0020_2020;
    MONTH_WORDS
        .iter()
        .position(|&m| m == word)
        .map(|i| i as i64 + 1)
}

/// [`MONTHS`] as [`month_of`] reads them: three lower-case bytes in one word.
const MONTH_WORDS: [u32; 12] = {
    let mut words = [0; 12];
    let mut i = 0;
    while i < 12 {
        let m = MONTHS[i].as_bytes();
        words[i] = u32::from_le_bytes([m[0], m[1], m[2], 0]);
        i += 1;
    }
    words
};

/// `+0200`, `-05:30`, `Z`, `UTC` -> minutes east of UTC.
fn zone_minutes(z: &str) -> Option<i64> {
    // The abbreviations logs commonly carry (an unknown one leaves the time local).
    let named = match z {
        "Z" | "UTC" | "GMT" | "UT" | "WET" => Some(0),
        "BST" | "CET" | "WEST" | "MET" => Some(60),
        "CEST" | "EET" | "MEST" => Some(120),
        "EEST" | "MSK" => Some(180),
        "IST" => Some(330),
        "JST" | "KST" => Some(540),
        "AEST" => Some(600),
        "AEDT" => Some(660),
        "NZST" => Some(720),
        "NZDT" => Some(780),
        "AST" | "EDT" => Some(-240),
        "EST" | "CDT" => Some(-300),
        "CST" | "MDT" => Some(-360),
        "MST" | "PDT" => Some(-420),
        "PST" | "AKDT" => Some(-480),
        "AKST" => Some(-540),
        "HST" => Some(-600),
        _ => None,
    };
    if named.is_some() {
        return named;
    }
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    Some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A month is its first three letters in any case, as the case-blind compare read it;
    /// a byte one bit away from a letter (`@` beside `` ` ``, `[` beside `{`) is none.
    #[test]
    fn month_names_are_read_in_any_case() {
        for (i, m) in MONTHS.iter().enumerate() {
            let want = Some(i as i64 + 1);
            let title = format!("{}{}", m[..1].to_uppercase(), &m[1..]);
            for name in [
                m.to_string(),
                m.to_uppercase(),
                title.clone(),
                format!("{title}ember"),
            ] {
                assert_eq!(month_of(&name), want, "{name}");
            }
        }
        for name in ["Ja", "", "Jaz", "J@n", "{an", "[an", "Juh", "ept"] {
            assert_eq!(month_of(name), None, "{name}");
        }
        for b in 0..=255u8 {
            let name = [b, b'a', b'n'];
            let want = (b == b'j' || b == b'J').then_some(1);
            assert_eq!(month_of(&String::from_utf8_lossy(&name)), want, "{b}");
        }
    }

    /// 2005-08-14 10:00:00 UTC, fail2ban's test "now".
    const NOW: f64 = 1_124_013_600.0;

    fn utc(s: &str) -> f64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp() as f64
    }

    fn local(s: &str) -> f64 {
        let dt = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        Local
            .from_local_datetime(&dt)
            .earliest()
            .unwrap()
            .timestamp() as f64
    }

    #[test]
    fn the_default_templates_find_common_forms() {
        let mut d = DateDetector::new(None).unwrap();
        let line = "Aug 14 11:59:59 host sshd[1]: x";
        let f = d.find(line, NOW).unwrap();
        assert_eq!(&line[f.start..f.end], "Aug 14 11:59:59");
        assert_eq!(f.time, Some(local("2005-08-14 11:59:59")));
        // In the future by more than a day: last year.
        let f = d.find("Dec 31 23:00:00 host x", NOW).unwrap();
        assert_eq!(f.time, Some(local("2004-12-31 23:00:00")));
        let line = "192.0.2.1 - - [14/Aug/2005:10:00:00 +0200] \"GET / HTTP/1.1\"";
        let f = d.find(line, NOW).unwrap();
        assert_eq!(&line[f.start..f.end], "14/Aug/2005:10:00:00 +0200");
        assert_eq!(f.time, Some(utc("2005-08-14 08:00:00")));
        let f = d.find("2005-08-14T10:00:00.5Z rest", NOW).unwrap();
        assert_eq!(f.time, Some(utc("2005-08-14 10:00:00")));
        let f = d.find("1124013600.000 rest", NOW).unwrap();
        assert_eq!(f.time, Some(NOW));
        assert!(d.find("no time here at all", NOW).is_none());
    }

    #[test]
    fn filter_datepatterns_read_like_fail2ban() {
        let mut d = DateDetector::new(Some(r"^L %d/%m/%Y - %H:%M:%S")).unwrap();
        let f = d.find("L 01/02/2005 - 03:04:05: x", NOW).unwrap();
        assert_eq!(f.time, Some(local("2005-02-01 03:04:05")));
        let mut d = DateDetector::new(Some(r"^[^\[]*\[({DATE})")).unwrap();
        let line = "host [14/Aug/2005:09:00:00 +0000] x";
        let f = d.find(line, NOW).unwrap();
        assert_eq!(&line[f.start..f.end], "14/Aug/2005:09:00:00 +0000");
        assert_eq!(f.time, Some(utc("2005-08-14 09:00:00")));
        let mut d = DateDetector::new(Some("{^LN-BEG}")).unwrap();
        assert!(d.find("text then Aug 14 11:59:59", NOW).is_none());
        let mut d = DateDetector::new(Some("{^LN-BEG}TAI64N")).unwrap();
        assert!(d.find("@4000000042ff3d4a00000000 x", NOW).is_some());
        assert!(DateDetector::new(Some("%Q")).unwrap_err().contains("%Q"));
    }

    /// The month and weekday names (written as a tree of shared prefixes, so the
    /// backtracker tries a few first letters instead of every name) are read in full,
    /// abbreviated and in any case, and nothing else is.
    #[test]
    fn every_month_and_weekday_name_is_read() {
        const FULL: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let mut d = DateDetector::new(Some("{^LN-BEG}%a %b %d %H:%M:%S")).unwrap();
        for (i, full) in FULL.iter().enumerate() {
            let expected = local(&format!("2005-{:02}-03 10:00:00", i + 1));
            for name in [
                full,
                &full[..3],
                &full.to_uppercase(),
                &full[..3].to_lowercase(),
            ] {
                for day in ["Mon", "tue", "WED", "Thu", "Fri", "sat", "Sun"] {
                    let line = format!("{day} {name} 03 10:00:00 x");
                    let f = d.find(&line, local("2005-12-31 12:00:00"));
                    assert_eq!(f.and_then(|f| f.time), Some(expected), "{line}");
                }
            }
        }
        for line in [
            "Mon Jux 03 10:00:00 x",
            "Mon Ju 03 10:00:00 x",
            "Mox Jan 03 10:00:00 x",
        ] {
            assert!(d.find(line, NOW).is_none(), "{line}");
        }
    }

    #[test]
    fn one_pass_rules_out_a_dateless_line_and_misses_no_date() {
        let mut d = DateDetector::new(None).unwrap();
        assert!(d.any.is_some(), "the default templates share one automaton");
        let line = "Aug 14 11:59:59 host sshd[1]: x";
        assert!(d.find(line, NOW).is_some());
        // The last template misses; the one pass says no template can match.
        assert_eq!(
            d.find("Accepted publickey for deploy from 198.18.0.1", NOW),
            None
        );
        // Another form after a miss: found as by trying every template.
        let line = "x 2005-08-14 11:59:59 y";
        let f = d.find(line, NOW).unwrap();
        assert_eq!(&line[f.start..f.end], "2005-08-14 11:59:59");
        // A template only the backtracking engine runs: no shared pass, same answers.
        let mut fancy = DateDetector::new(Some(r"^(?=\d)%Y-%m-%d %H:%M:%S")).unwrap();
        assert!(fancy.any.is_none());
        assert!(fancy.find("2005-08-14 11:59:59 x", NOW).is_some());
        assert_eq!(fancy.find("no date here", NOW), None);
    }

    #[test]
    fn word_boundaries_keep_dates_out_of_numbers() {
        let mut d = DateDetector::new(Some("%H:%M:%S")).unwrap();
        assert!(d.find("id123:45:56x", NOW).is_none());
        assert!(d.find("at 12:45:56 x", NOW).is_some());
    }

    /// Lines in the forms the default templates read, and a few they must refuse or read
    /// around (non-ASCII beside the date, digits run together).
    const SAMPLES: &[&str] = &[
        "Aug 14 11:59:59 host sshd[1]: x",
        "Sun Aug 14 11:59:59 2005 host x",
        "Aug  4 01:02:03.123456 host x",
        "2005-08-14 10:00:00 x",
        "2005/08/14T10:00:00.123+02:00 x",
        "2005.08.14 10:00:00,5 -0500 x",
        "14-08-2005 10:00:00 x",
        "14/08/05 10:00:00 x",
        "192.0.2.1 - - [14/Aug/2005:10:00:00 +0200] \"GET /\"",
        "14/Aug/2005 10:00:00.123 x",
        "08/14/2005:10:00:00 x",
        "08-14-2005 10:00:00.5 x",
        "10:00:00 only a time",
        "<08/14/05@10:00:00> x",
        "050814 10:00:00 x",
        "Aug 14, 2005 10:00:00 PM x",
        "Aug-14-05 10:00:00 x",
        "20050814T100000.5Z x",
        "20050814 100000 x",
        "CEST Sun Aug 14 10:00:00 x",
        "+0200 Aug 14 10:00:00 x",
        "«Aug 14 11:59:59» quoted",
        "héllo Aug 14 11:59:59 x",
        "1112005 101010 run together",
    ];

    #[test]
    fn the_reader_reads_what_the_capture_engines_read() {
        let detectors = [
            DateDetector::new(None).unwrap(),
            DateDetector::new(Some("%d%m%Y %H%M%S\n^%j %Y %H:%M\n%b %d %I:%M:%S %p %Z")).unwrap(),
        ];
        let mut compared = 0;
        for d in &detectors {
            for t in d.templates.iter().filter(|t| t.kind == Kind::Pattern) {
                let reader = t.reader.as_ref().expect("every % template has a reader");
                for line in SAMPLES {
                    let Some((ms, me)) = t.re.find(line) else {
                        continue;
                    };
                    let theirs = read_generally(t, line, 0, ms);
                    assert!(theirs.is_some(), "{} on {line}", t.re.source);
                    match reader.read(line, ms, me, t.group) {
                        Some(ours) => {
                            assert_eq!(Some(ours), theirs, "{} on {line}", t.re.source);
                            compared += 1;
                        }
                        // Only non-ASCII at or beside the date is left to the others.
                        None => assert!(!line.is_ascii(), "{} on {line}", t.re.source),
                    }
                }
            }
        }
        assert!(compared > 40, "only {compared} comparisons");
        // Read around non-ASCII text, the time is the same.
        let mut d = DateDetector::new(None).unwrap();
        let f = d.find("«Aug 14 11:59:59» quoted", NOW).unwrap();
        assert_eq!(f.time, Some(local("2005-08-14 11:59:59")));
    }

    /// The zone's memory answers what the time zone database answers through the days the
    /// clocks change (whole hours, half an hour at Lord Howe, half-hour offsets in
    /// Newfoundland). The zone is the process's, so each runs in a child with `TZ` set.
    #[test]
    fn remembered_offsets_agree_with_the_zone_database_across_clock_changes() {
        for tz in ["Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns"] {
            assert!(
                std::path::Path::new("/usr/share/zoneinfo")
                    .join(tz)
                    .exists(),
                "{tz} is missing: tzdata is not installed (`cargo xtask setup` installs it)"
            );
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "filter::f2b::dates::tests::the_zone_agrees_in_this_process",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env("TZ", tz)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "TZ={tz}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    #[ignore = "run by remembered_offsets_agree_with_the_zone_database_across_clock_changes"]
    fn the_zone_agrees_in_this_process() {
        let mut zone = Zone::default();
        let start = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 7)
            .unwrap();
        let mut changes = 0;
        let mut last = None;
        // Every ten minutes of a year, each followed by a time half a year away (days
        // sharing a slot of the memory, and both sides of a change, in turn).
        for step in 0..366 * 24 * 6 {
            let dt = start + chrono::Duration::minutes(10 * step);
            for t in [dt, dt - chrono::Duration::days(183)] {
                let expected = Local
                    .from_local_datetime(&t)
                    .earliest()
                    .map(|l| l.timestamp());
                assert_eq!(zone.epoch_of(t), expected, "{t}");
            }
            if let Some(e) = Local.from_local_datetime(&dt).earliest() {
                let offset = dt.and_utc().timestamp() - e.timestamp();
                changes += usize::from(last.is_some_and(|l| l != offset));
                last = Some(offset);
            }
        }
        if std::env::var_os("TZ").is_some() {
            assert!(
                changes >= 2,
                "the clocks never changed in {:?}",
                std::env::var("TZ")
            );
        }
    }

    /// The hand readers of the syslog and ISO formats find what the template's own reader
    /// (the backtracker) finds: the same date span and time for thousands of dates in
    /// every spelling the formats allow (weekday or not, names in any case and length,
    /// padded days and hours, fractions, years, zones, `T` or spaces) and for near misses
    /// (hour 24, second 62, `Sept`, seven fraction digits), at the line's start and inside
    /// it, before zones and years that extend the match or text that does not. And the
    /// hand reader is what reads them (it does not leave every date to the backtracker),
    /// and at the line's start without the DFA's search, for many of them; the common
    /// spellings there straight to numbers.
    #[test]
    fn the_hand_readers_find_what_the_backtracker_finds() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut pick = |options: &[&'static str]| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            options[(seed % options.len() as u64) as usize]
        };
        let day = [
            "1", "5", "05", " 5", "12", "29", "30", "31", "32", "00", " 0",
        ];
        let hour = ["0", "7", "00", "09", "19", "23", "24", "29"];
        let minute = ["0", "5", "05", "59", "60", "7"];
        let second = ["0", "7", "07", "59", "60", "61", "62"];
        let fraction = ["", "", ".1", ".123456", ".1234567", ",5"];
        let mut cases: Vec<(usize, String)> = Vec::new();
        for _ in 0..6000 {
            let syslog = format!(
                "{}{} {} {}{}:{}:{}{}{}",
                pick(&["", "", "Mon ", "sun ", "FRI ", "Xyz "]),
                pick(&[
                    "Jan", "june", "JULY", "Sep", "Sept", "December", "Mar", "May", "mAY", "Janu"
                ]),
                pick(&day),
                pick(&["", "", " "]),
                pick(&hour),
                pick(&minute),
                pick(&second),
                pick(&fraction),
                pick(&["", "", " 2004", " 1999", " 2104", " 20"]),
            );
            let iso = format!(
                "{}{}{}{}{}{}{}:{}:{}{}{}",
                pick(&["2005", "1999", "2105", "205"]),
                pick(&["-", "/", ".", "_"]),
                pick(&["1", "01", "9", "10", "12", "13", "00"]),
                pick(&["-", "/", "."]),
                pick(&day),
                pick(&["T", " ", "  ", "   ", "t"]),
                pick(&hour),
                pick(&minute),
                pick(&second),
                pick(&fraction),
                pick(&[
                    "", "", "Z", " UTC", "+02:00", " -0130", "+01", "  GMT", "+2", "+0200x",
                    "\x0bZ", "\u{a0}Z", " Unknown", "\t-01", " G", "é", " [error]", "x", "1",
                ]),
            );
            for (i, date) in [(1, syslog), (0, iso)] {
                let around = pick(&[
                    "", "[", "((", "<", "x ", "host ", "é", "\u{a0}", "(((", "-é",
                ]);
                let after = pick(&[
                    "",
                    " sshd[7]: fail",
                    "] x",
                    ": y",
                    " 2005 x",
                    " 20",
                    " 1",
                    " ",
                    "é",
                    "  x",
                ]);
                cases.push((i, format!("{around}{date}{after}")));
            }
        }
        // And at the line's start, the common spellings and their near misses: each field
        // two digits wide, in range or just out of it.
        for _ in 0..3000 {
            let (frac, tail) = (
                pick(&["", "", ".1", ".123456", ".1234567", ",5", ".", ","]),
                pick(&[
                    "",
                    " x",
                    " [error] 1#0",
                    "Z",
                    " UTC",
                    "  +02:00",
                    "\x0bZ",
                    "\u{a0}Z",
                    "x",
                    "1",
                    "é",
                    " Unknown",
                    ":",
                    "\t-0100",
                    " gw",
                    " 2005",
                    " 2005 x",
                    " 20",
                ]),
            );
            let clock = format!(
                "{}:{}:{}",
                pick(&["00", "09", "19", "20", "23", "24", "29"]),
                pick(&["00", "05", "59", "60", "99"]),
                pick(&["00", "07", "59", "60", "61", "69", "99"]),
            );
            let iso = format!(
                "{}{}{}{}{}{}{clock}{frac}{tail}",
                pick(&["2005", "1999", "2099", "2100", "1899"]),
                pick(&["-", "/", "."]),
                pick(&["01", "09", "10", "12", "13", "00"]),
                pick(&["-", "/", "."]),
                pick(&["01", "09", "10", "29", "30", "31", "32", "00", " 5", " 0"]),
                pick(&["T", " ", " ", "  "]),
            );
            let syslog = format!(
                "{} {} {clock}{frac}{tail}",
                pick(&["Jan", "jan", "SEP", "Sep", "Sept", "Xyz", "May", "Ju", "Dec"]),
                pick(&["01", "05", " 5", "10", "31", "32", "00", " 0", "5"]),
            );
            cases.push((0, iso));
            cases.push((1, syslog));
        }
        let (mut by_hand, mut matched, mut unsearched, mut common) = (0, 0, 0, 0);
        for (i, spec) in DEFAULT_FORMATS.iter().take(2).enumerate() {
            for spec in [spec.to_string(), format!("{{^LN-BEG}}{spec}")] {
                let fast = template(&spec).unwrap();
                assert!(fast.shape.is_some(), "{spec}");
                let slow = Template {
                    shape: None,
                    ..fast.clone()
                };
                for (_, line) in cases.iter().filter(|(k, _)| *k == i) {
                    let mut zone = Zone::default();
                    let got = search(&fast, line, NOW, &mut zone);
                    let want = search(&slow, line, NOW, &mut Zone::default());
                    assert_eq!(got, want, "{spec} on `{line}`");
                    let Some(shape) = fast.shape else { continue };
                    if let Some((ms, me)) = fast.re.find(line).filter(|_| line.is_ascii()) {
                        matched += 1;
                        if shape.read(line, ms, Some(me), fast.prefixed).is_some() {
                            by_hand += 1;
                        }
                    }
                    if fast.prefixed && shape.read(line, 0, None, true).is_some() {
                        unsearched += 1;
                    }
                    if fast.prefixed && shape.read_common(line).is_some() {
                        common += 1;
                    }
                }
            }
        }
        assert!(matched > 2000, "only {matched} dates matched");
        assert_eq!(by_hand, matched, "dates left to the backtracker");
        // Dates at the line's start are read without the DFA's search, most of them.
        assert!(
            unsearched > matched / 8,
            "{unsearched} of {matched} read unsearched"
        );
        // And the common spellings straight to numbers.
        assert!(
            common > matched / 40,
            "{common} of {matched} read as common"
        );
    }
}
