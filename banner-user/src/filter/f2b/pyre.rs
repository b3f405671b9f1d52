//! fail2ban patterns (Python `re` syntax with fail2ban's tags) compiled for Rust.
//!
//! Tags first: `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `<DNS>`, `<CIDR>`, `<SUBNET>`,
//! `<F-ID/>`, `<F-PORT/>`, `<SKIPLINES>` become groups named as fail2ban names them (`ip4`,
//! `ip6`, `dns`, `cidr`, `fid`, `fport`), and `<F-NAME>...</F-NAME>` the group `name`.
//! Then Python syntax is rewritten where Rust's differs (`\Z`, `\<`, `{` as a literal, `[`
//! inside a class, `(?#...)`). The `regex` crate runs every pattern it accepts (no
//! backtracking, linear time); only patterns that need look-around, back-references or
//! conditionals go to `fancy-regex`, with a backtracking limit so one hostile line cannot
//! stall a source: a line that hits the limit counts as no match, and is counted.

use std::sync::atomic::{AtomicU64, Ordering};

/// Steps a backtracking pattern may take on one line before it gives up.
pub const BACKTRACK_LIMIT: usize = 200_000;

/// Lines on which a backtracking pattern gave up (process-wide; shown by test-filter).
pub static BACKTRACK_GAVE_UP: AtomicU64 = AtomicU64::new(0);

const IP4: &str = r"(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})";
const IP6: &str = r"(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:))";
const DNS: &str = r"(?P<dns>[\w\-.^_]*\w)";
const CIDR: &str = r"(?P<cidr>\d+)";

fn addr() -> String {
    format!(r"\[?(?:{IP4}|{IP6})\]?")
}

/// Expand fail2ban's tags. `usedns = "no"` leaves hostnames out of `<HOST>`.
pub fn expand_tags(pattern: &str, usedns: bool) -> String {
    let mut out = String::with_capacity(pattern.len() + 128);
    let mut open: Vec<String> = Vec::new();
    let mut skiplines = 0;
    let mut rest = pattern;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let tag_len = tail[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '/'))
            .map(|i| i + 1);
        let tag = match tag_len {
            Some(n) if tail.as_bytes().get(n) == Some(&b'>') && n > 1 => &tail[1..n],
            _ => {
                out.push('<');
                rest = &tail[1..];
                continue;
            }
        };
        let replaced: Option<String> = match tag {
            "HOST" if usedns => Some(format!("(?:{}|{DNS})", addr())),
            "HOST" | "ADDR" | "F-ADDR/" => Some(addr()),
            "IP4" | "F-IP4/" => Some(IP4.into()),
            "IP6" | "F-IP6/" => Some(IP6.into()),
            "DNS" | "F-DNS/" => Some(DNS.into()),
            "CIDR" | "F-CIDR/" => Some(CIDR.into()),
            "SUBNET" | "F-SUBNET/" => Some(format!(r"\[?(?:{IP4}|{IP6})(?:/{CIDR})?\]?")),
            "F-ID/" => Some(r"(?P<fid>\S+)".into()),
            "F-PORT/" => Some(r"(?P<fport>\w+)".into()),
            "SKIPLINES" => {
                skiplines += 1;
                Some(format!(r"\n(?P<skiplines{}>(?:(?:.*\n)*?))", skiplines - 1))
            }
            t => {
                let (close, name) = match t.strip_prefix('/') {
                    Some(n) => (true, n),
                    None => (false, t),
                };
                match name.strip_prefix("F-").filter(|n| is_field_name(n)) {
                    Some(field) if close => {
                        if open.iter().any(|o| o == field) {
                            open.retain(|o| o != field);
                            Some(")".into())
                        } else {
                            None
                        }
                    }
                    Some(field) => {
                        open.push(field.to_string());
                        Some(format!("(?P<{}>", group_name(field)))
                    }
                    None => None,
                }
            }
        };
        match replaced {
            Some(r) => out.push_str(&r),
            None => out.push_str(&tail[..tag.len() + 2]),
        }
        rest = &tail[tag.len() + 2..];
    }
    out.push_str(rest);
    out
}

fn is_field_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// fail2ban's group names: lower case, `id` -> `fid`, `port` -> `fport`.
fn group_name(field: &str) -> String {
    match field.to_ascii_lowercase().replace('-', "_").as_str() {
        "id" => "fid".into(),
        "port" => "fport".into(),
        other => other.into(),
    }
}

/// A Python pattern rewritten for Rust; `fancy` when it needs a backtracking engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub pattern: String,
    pub fancy: bool,
}

/// Rewrite Python `re` syntax where Rust's regex differs. Errors name the construct.
pub fn translate(py: &str) -> Result<Translated, String> {
    let chars: Vec<char> = py.chars().collect();
    let mut out = String::with_capacity(py.len() + 16);
    let mut fancy = false;
    let mut i = 0;
    // Inside a character class: the index where it started (to spot a leading `]`).
    let mut class: Option<usize> = None;
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err("the pattern ends with a lone `\\`".into());
            };
            i += 2;
            match n {
                'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'n' | 't' | 'r' | 'f' | 'v' => {
                    out.push('\\');
                    out.push(n);
                }
                'b' | 'B' | 'A' if class.is_none() => {
                    out.push('\\');
                    out.push(n);
                }
                'b' => out.push_str(r"\x08"),
                'Z' => out.push_str(r"\z"),
                'a' => out.push_str(r"\x07"),
                'x' => {
                    let hex: String = chars.iter().skip(i).take(2).collect();
                    if hex.len() != 2 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                        return Err(format!("`\\x{hex}` needs two hex digits"));
                    }
                    out.push_str(&format!("\\x{hex}"));
                    i += 2;
                }
                'u' | 'U' => {
                    let len = if n == 'u' { 4 } else { 8 };
                    let hex: String = chars.iter().skip(i).take(len).collect();
                    if hex.len() != len || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                        return Err(format!("`\\{n}{hex}` needs {len} hex digits"));
                    }
                    out.push_str(&format!("\\x{{{hex}}}"));
                    i += len;
                }
                '0' => out.push_str(r"\x00"),
                '1'..='9' if class.is_none() => {
                    fancy = true;
                    out.push('\\');
                    out.push(n);
                    while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
                        out.push(chars[i]);
                        i += 1;
                    }
                }
                n if n.is_ascii_alphanumeric() => {
                    return Err(format!("`\\{n}` is not an escape Python knows"));
                }
                n => push_literal(&mut out, n),
            }
            continue;
        }
        if let Some(start) = class {
            match c {
                ']' if i == start || (i == start + 1 && chars[start] == '^') => out.push_str(r"\]"),
                ']' => {
                    out.push(']');
                    class = None;
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if out.ends_with('-') => out.push_str(r"\-"),
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                    class = Some(i - 1);
                } else {
                    class = Some(i);
                }
            }
            '{' => match quantifier(&chars[i..]) {
                Some((q, len)) => {
                    out.push_str(&q);
                    i += len;
                }
                None => {
                    out.push_str(r"\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str(r"\}");
                i += 1;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i..].iter().take(5).collect();
                if rest.starts_with("(?#") {
                    // A comment: skip to its `)`.
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ')')
                        .ok_or("`(?#` comment is never closed")?;
                    i += close + 1;
                    continue;
                }
                if rest.starts_with("(?=")
                    || rest.starts_with("(?!")
                    || rest.starts_with("(?<=")
                    || rest.starts_with("(?<!")
                    || rest.starts_with("(?(")
                    || rest.starts_with("(?>")
                    || rest.starts_with("(?P=")
                {
                    fancy = true;
                }
                if rest.starts_with("(?(") {
                    // Python's `(?(name)yes|no)`; fancy-regex spells a named condition
                    // `(?(<name>)...)` (a bare word would be a look-ahead there).
                    let name: String = chars[i + 3..]
                        .iter()
                        .take_while(|c| c.is_alphanumeric() || **c == '_')
                        .collect();
                    if chars.get(i + 3 + name.len()) == Some(&')') && !name.is_empty() {
                        if name.chars().all(|c| c.is_ascii_digit()) {
                            out.push_str(&format!("(?({name})"));
                        } else {
                            out.push_str(&format!("(?(<{name}>)"));
                        }
                        i += 3 + name.len() + 1;
                        depth += 1;
                        continue;
                    }
                }
                if rest.starts_with("(?P<") || rest.starts_with("(?P=") || rest.starts_with("(?:") {
                    out.push('(');
                    i += 1;
                    depth += 1;
                    continue;
                }
                // Inline flags: Python's `a`, `L` and `u` have no Rust meaning here.
                let flags: String = chars[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic() || **c == '-')
                    .collect();
                if !flags.is_empty() {
                    let kept: String = flags
                        .chars()
                        .filter(|f| !matches!(f, 'a' | 'L' | 'u'))
                        .collect();
                    let after = chars.get(i + 2 + flags.len());
                    i += 2 + flags.len();
                    match after {
                        Some(')') => {
                            if !kept.is_empty() && kept != "-" {
                                out.push_str(&format!("(?{kept})"));
                            }
                            i += 1;
                        }
                        Some(':') => {
                            depth += 1;
                            if kept.is_empty() || kept == "-" {
                                out.push_str("(?:");
                            } else {
                                out.push_str(&format!("(?{kept}:"));
                            }
                            i += 1;
                        }
                        _ => return Err(format!("`(?{flags}` is not a group Python knows")),
                    }
                    continue;
                }
                out.push('(');
                i += 1;
                depth += 1;
            }
            '(' => {
                depth += 1;
                out.push('(');
                i += 1;
            }
            ')' => {
                if depth == 0 {
                    return Err("a `)` closes no group".into());
                }
                depth -= 1;
                out.push(')');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if class.is_some() {
        return Err("a `[` character class is never closed".into());
    }
    if depth > 0 {
        return Err("a `(` group is never closed".into());
    }
    Ok(Translated {
        pattern: out,
        fancy,
    })
}

/// A pattern for the `regex` crate that matches at least everything `pattern` (already
/// translated) matches: look-arounds dropped, conditionals made alternations, atomic groups
/// plain, back-references any text. Used to skip, in one pass over a line, every
/// backtracking pattern that cannot match it.
pub fn relaxed(pattern: &str) -> String {
    let c: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    // Per open group: (is a conditional, saw a top-level `|`).
    let mut groups: Vec<(bool, bool)> = Vec::new();
    let mut i = 0;
    let starts = |i: usize, t: &str| c[i..].iter().take(t.len()).copied().eq(t.chars());
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' {
            match c.get(i + 1) {
                Some(d) if d.is_ascii_digit() && *d != '0' => {
                    out.push_str("(?s:.*?)");
                    i += 2;
                    while c.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
                // Word boundaries dropped: Unicode ones keep the set off its fast engine.
                Some('b' | 'B') => i += 2,
                Some(&d) => {
                    out.push('\\');
                    out.push(d);
                    i += 2;
                }
                None => i += 1,
            }
            continue;
        }
        match ch {
            // A lone `\` ending the class is dropped, as outside one.
            '[' => i = copy_class(&c, i, &mut out).unwrap_or(c.len()),
            '(' if starts(i, "(?=")
                || starts(i, "(?!")
                || starts(i, "(?<=")
                || starts(i, "(?<!") =>
            {
                i = skip_group(&c, i);
            }
            '(' if starts(i, "(?(") => {
                // Skip the condition `(?(name)` / `(?(<name>)`.
                let close = c[i + 3..]
                    .iter()
                    .position(|&x| x == ')')
                    .map_or(c.len(), |p| i + 3 + p);
                out.push_str("(?:");
                groups.push((true, false));
                i = close + 1;
            }
            '(' if starts(i, "(?>") => {
                out.push_str("(?:");
                groups.push((false, false));
                i += 3;
            }
            '(' if starts(i, "(?P=") => {
                let close = c[i..]
                    .iter()
                    .position(|&x| x == ')')
                    .map_or(c.len(), |p| i + p);
                out.push_str("(?s:.*?)");
                i = close + 1;
            }
            '(' => {
                groups.push((false, false));
                out.push('(');
                i += 1;
            }
            '|' => {
                if let Some(g) = groups.last_mut() {
                    g.1 = true;
                }
                out.push('|');
                i += 1;
            }
            ')' => {
                if let Some((true, false)) = groups.pop() {
                    // `(?(c)yes)`: yes, or nothing.
                    out.push('|');
                }
                out.push(')');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

/// A backtracking pattern (already translated) in the `regex` crate's syntax, its
/// look-aheads and conditionals written as groups with reserved names for [`Chain`] to
/// walk: `(?!X)` as `(?P<__mark_negK>X)`, `(?=X)` as `(?P<__mark_posK>X)`, and
/// `(?(name)Y|N)` as `(?P<__mark_ifK_name>(?P<__mark_yesK>Y)|(?P<__mark_noK>N))`. None
/// for what a chain cannot walk (look-behind, atomic groups, back-references) and for a
/// pattern that names a group `__mark_` itself.
pub fn marked(pattern: &str) -> Option<String> {
    const MARK: &str = "__mark_";
    if pattern.contains(MARK) {
        return None;
    }
    let c: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 64);
    // Per open group: the conditional's number, when it is one, and whether its `|`
    // (between yes and no) was seen.
    let mut groups: Vec<Option<(usize, bool)>> = Vec::new();
    let mut marks = 0usize;
    let mut i = 0;
    let starts = |i: usize, t: &str| c[i..].iter().take(t.len()).copied().eq(t.chars());
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' {
            let d = *c.get(i + 1)?;
            if d.is_ascii_digit() && d != '0' {
                return None;
            }
            out.push('\\');
            out.push(d);
            i += 2;
            continue;
        }
        match ch {
            '[' => i = copy_class(&c, i, &mut out)?,
            '(' if starts(i, "(?<=")
                || starts(i, "(?<!")
                || starts(i, "(?>")
                || starts(i, "(?P=") =>
            {
                return None;
            }
            '(' if starts(i, "(?=") || starts(i, "(?!") => {
                let kind = if c[i + 2] == '=' { "pos" } else { "neg" };
                out.push_str(&format!("(?P<{MARK}{kind}{marks}>"));
                marks += 1;
                groups.push(None);
                i += 3;
            }
            '(' if starts(i, "(?(") => {
                // `(?(<name>)` or `(?(N)`.
                let close = c[i + 3..].iter().position(|&x| x == ')')? + i + 3;
                let name: String = c[i + 3..close]
                    .iter()
                    .filter(|x| !matches!(x, '<' | '>'))
                    .collect();
                if name.is_empty() || !name.chars().all(|x| x.is_ascii_alphanumeric() || x == '_') {
                    return None;
                }
                out.push_str(&format!("(?P<{MARK}if{marks}_{name}>(?P<{MARK}yes{marks}>"));
                groups.push(Some((marks, false)));
                marks += 1;
                i = close + 1;
            }
            '(' => {
                groups.push(None);
                out.push('(');
                i += 1;
            }
            '|' => {
                match groups.last_mut() {
                    Some(Some((k, seen))) if !*seen => {
                        *seen = true;
                        out.push_str(&format!(")|(?P<{MARK}no{k}>"));
                    }
                    _ => out.push('|'),
                }
                i += 1;
            }
            ')' => {
                match groups.pop()? {
                    Some((k, false)) => out.push_str(&format!(")|(?P<{MARK}no{k}>))")),
                    Some((_, true)) => out.push_str("))"),
                    None => out.push(')'),
                }
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Copy the character class opening at `at` as it is (escapes inside it included: `\b`,
/// `\1` and `\]` mean something else there); the index past its `]`, or the end when it is
/// never closed. None when a lone `\` ends the text (it is not copied).
fn copy_class(c: &[char], at: usize, out: &mut String) -> Option<usize> {
    out.push('[');
    let mut i = at + 1;
    if c.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` right after `[` or `[^` is literal.
    if c.get(i) == Some(&']') {
        out.push(']');
        i += 1;
    }
    while let Some(&ch) = c.get(i) {
        if ch == '\\' {
            let escaped = *c.get(i + 1)?;
            out.push(ch);
            out.push(escaped);
            i += 2;
            continue;
        }
        out.push(ch);
        i += 1;
        if ch == ']' {
            return Some(i);
        }
    }
    Some(i)
}

/// The index just past the group opening at `at`.
fn skip_group(c: &[char], at: usize) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    let mut in_class = false;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    c.len()
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// `{n}`, `{n,}`, `{n,m}`, `{,m}` (with an optional lazy `?` after) -> Rust's form and its
/// length; anything else is a literal brace in Python.
fn quantifier(s: &[char]) -> Option<(String, usize)> {
    let close = s.iter().position(|&c| c == '}')?;
    let body: String = s[1..close].iter().collect();
    let (lo, hi) = match body.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (body.as_str(), None),
    };
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if !digits(lo)
        || hi.is_some_and(|h| !digits(h))
        || (lo.is_empty() && hi.is_none_or(str::is_empty))
    {
        return None;
    }
    let lo = if lo.is_empty() { "0" } else { lo };
    let q = match hi {
        None => format!("{{{lo}}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((q, close + 1))
}

/// A compiled pattern and the names of its groups.
#[derive(Debug, Clone)]
pub struct Re {
    engine: Engine,
    /// (group index, name) for every named group.
    pub names: Vec<(usize, super::groups::Name)>,
    pub source: String,
    /// The pattern in Rust syntax, as compiled.
    pub translated: String,
    /// The literal every match holds (see [`Re::is_match`]).
    needs: Needs,
}

/// The literal every match of a pattern holds, found when first asked; shared by the
/// filter's copies.
#[derive(Debug, Clone, Default)]
struct Needs(std::sync::Arc<std::sync::OnceLock<Option<memchr::memmem::Finder<'static>>>>);

#[derive(Debug, Clone)]
enum Engine {
    /// The `regex` crate, and its twin without Unicode for all-ASCII text (see
    /// [`ascii_twin`]).
    Fast(Lazy, Twin),
    /// The backtracking engine, and a chain that walks the pattern's look-aheads and
    /// conditionals itself on ASCII text (built when first needed).
    Fancy(Box<fancy_regex::Regex>, Walked),
}

/// A backtracking pattern's [`Chain`] (see [`marked`]), where it can have one.
#[derive(Debug, Clone, Default)]
struct Walked(std::sync::OnceLock<Option<std::sync::Arc<WalkedChain>>>);

#[derive(Debug)]
struct WalkedChain {
    chain: Chain,
    /// Per group of the marked pattern, its index in the pattern itself (None for marks).
    real: Vec<Option<usize>>,
    /// Groups of the pattern itself, the whole match included.
    groups: usize,
    caches: CachePool,
}

impl WalkedChain {
    /// None unless the pattern is anchored at the text's start, means the same without
    /// Unicode on ASCII text, and has only what a chain walks.
    fn new(translated: &str, groups: usize) -> Option<Self> {
        if !ascii_safe(translated) {
            return None;
        }
        let mut pattern = marked(translated)?;
        let hir = ascii_hir(&pattern)?;
        if !anchored_at_start(&hir) {
            return None;
        }
        let mut names = vec![None; hir.properties().explicit_captures_len() + 1];
        capture_names(&hir, &mut names);
        let mut real = vec![None; names.len()];
        real[0] = Some(0);
        let mut by_number = vec![0];
        for (i, name) in names.iter().enumerate().skip(1) {
            if !name.as_deref().is_some_and(|n| n.starts_with("__mark_")) {
                real[i] = Some(by_number.len());
                by_number.push(i);
            }
        }
        if by_number.len() != groups {
            return None;
        }
        // A conditional names its group; the chain reads it by index.
        for name in names.iter().flatten() {
            let Some(rest) = name.strip_prefix("__mark_if") else {
                continue;
            };
            let (_, target) = rest.split_once('_')?;
            let index = match target.parse::<usize>() {
                Ok(n) => *by_number.get(n)?,
                Err(_) => names.iter().position(|n| n.as_deref() == Some(target))?,
            };
            let resolved = name.replacen(&format!("_{target}"), &format!("_g{index}"), 1);
            pattern = pattern.replacen(&format!("<{name}>"), &format!("<{resolved}>"), 1);
        }
        Some(Self {
            chain: Chain::new(&pattern)?,
            real,
            groups,
            caches: CachePool::default(),
        })
    }

    /// The match at the start of ASCII `text`: `Err` when the chain cannot tell.
    fn search(&self, text: &[u8]) -> Result<Option<Match>, CannotTell> {
        let found = self
            .caches
            .with(&self.chain, |cache| self.chain.search(text, 0, cache));
        let Some(slots) = found? else {
            return Ok(None);
        };
        let mut groups = vec![None; self.groups];
        for (i, slot) in slots.iter().enumerate() {
            if let Some(r) = self.real.get(i).copied().flatten() {
                groups[r] = *slot;
            }
        }
        self.caches.give_back(slots);
        let (start, end) = groups[0].ok_or(CannotTell)?;
        Ok(Some(Match { start, end, groups }))
    }
}

/// The names of `hir`'s groups by index.
fn capture_names(hir: &regex_syntax::hir::Hir, out: &mut [Option<String>]) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => {
            if let Some(slot) = out.get_mut(c.index as usize) {
                *slot = c.name.as_deref().map(str::to_string);
            }
            capture_names(&c.sub, out);
        }
        HirKind::Concat(v) | HirKind::Alternation(v) => {
            v.iter().for_each(|h| capture_names(h, out));
        }
        HirKind::Repetition(r) => capture_names(&r.sub, out),
        _ => {}
    }
}

/// The ASCII twin of a pattern, compiled when first needed (a failregex searched through
/// [`FirstOf`] never needs its own); shared by a filter's copies.
#[derive(Debug, Clone, Default)]
struct Twin(std::sync::OnceLock<Option<std::sync::Arc<Ascii>>>);

/// A pattern's `regex` engine, built when first needed (see [`Re::regex`]); shared by the
/// filter's copies.
#[derive(Debug, Clone, Default)]
struct Lazy(std::sync::Arc<std::sync::OnceLock<Option<regex::Regex>>>);

/// A pattern's engines for all-ASCII text: the twin finds the match, its [`Chain`] the
/// groups (the twin's own capture engine where the chain cannot tell).
#[derive(Debug)]
struct Ascii {
    re: regex::bytes::Regex,
    chain: Option<Chain>,
    caches: CachePool,
    /// Where every match starts at the text's start (`^`, not the multi-line kind) with
    /// one of a few literals: those. A text that starts with one is searched by the chain
    /// alone, without the twin's pass to find the match first; a chain asked about a text
    /// that leads nowhere may walk long before it says so, which the literals spare it.
    lead: Option<Vec<Vec<u8>>>,
    /// Whether every match starts at the text's start (`^`): where a text is known to
    /// hold a match, the chain finds it alone (see [`Re::search_matching`]).
    anchored: bool,
}

impl Ascii {
    fn new(pattern: &str) -> Option<Self> {
        let re = ascii_twin(pattern)?;
        // Parsed once for both: the chain and the literals it is led by.
        let hir = ascii_hir(pattern);
        Some(Self {
            re,
            chain: hir.as_ref().and_then(Chain::of),
            caches: CachePool::default(),
            lead: hir.as_ref().and_then(anchored_lead),
            anchored: hir.as_ref().is_some_and(anchored_at_start),
        })
    }

    /// Whether `text` cannot hold a match: it does not start with a literal every match
    /// starts with, or lacks one every match holds.
    fn refuses(&self, text: &[u8]) -> bool {
        self.lead
            .as_ref()
            .is_some_and(|lead| !lead.iter().any(|l| text.starts_with(l)))
            || self.chain.as_ref().is_some_and(|c| c.lacks_needed(text))
    }

    /// `matches`: the text is known to hold a match (a set of the patterns said so).
    fn search_at(&self, text: &[u8], start: usize, matches: bool) -> Option<Match> {
        let led = start == 0
            && match &self.lead {
                Some(lead) => lead.iter().any(|l| text.starts_with(l)),
                None => self.anchored,
            };
        // Led by its literal, or known to match: the chain alone; else where it has lately
        // found most matches alone.
        let alone =
            |cache: &mut ChainCache| matches || self.lead.is_some() || cache.worth_searching();
        if let (true, Some(chain)) = (led, &self.chain) {
            let found = self.caches.with(chain, |cache| {
                if !alone(cache) {
                    return Err(CannotTell);
                }
                let found = chain.search(text, 0, cache);
                if !matches && self.lead.is_none() {
                    cache.searched(matches!(found, Ok(Some(_))));
                }
                found
            });
            match found {
                Ok(Some(groups)) => {
                    let (start, end) = groups.first().copied().flatten()?;
                    return Some(Match { start, end, groups });
                }
                Ok(None) => return None,
                // Where the chain cannot tell, the twin's engines do, as below.
                Err(CannotTell) => {}
            }
        }
        let m = self.re.find_at(text, start)?;
        if let Some(chain) = &self.chain {
            let groups = self
                .caches
                .with(chain, |cache| chain.groups(text, m.start(), m.end(), cache));
            if let Some(groups) = groups {
                return Some(Match {
                    start: m.start(),
                    end: m.end(),
                    groups,
                });
            }
        }
        self.re.captures_at(text, start).map(|c| bytes_match(&c))
    }
}

/// Can `pattern` be run without Unicode on all-ASCII text, meaning the same? On ASCII
/// text every class, `.` and boundary means what its Unicode form means; what could differ
/// is a non-ASCII character in the pattern that folds to an ASCII one under `(?i)` (the
/// Kelvin sign and `k`): patterns that name any non-ASCII character are left alone.
fn ascii_safe(pattern: &str) -> bool {
    pattern.is_ascii() && !pattern.contains(r"\x{")
}

/// The pattern without Unicode, for all-ASCII text: its automata are a fraction of the
/// size (no UTF-8 branches for `\S`, `\w`, `.`), which the capture engines pay for per
/// byte. None where the pattern needs Unicode.
fn ascii_twin(pattern: &str) -> Option<regex::bytes::Regex> {
    if !ascii_safe(pattern) {
        return None;
    }
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .ok()
}

/// Does every match of `hir` start at the text's start (`^`, not the multi-line kind)?
fn anchored_at_start(hir: &regex_syntax::hir::Hir) -> bool {
    hir.properties()
        .look_set_prefix()
        .contains(regex_syntax::hir::Look::Start)
}

/// The literals every match of `hir` starts with, where it is anchored at the text's
/// start and they are few and not empty (see [`Ascii`]); None otherwise.
fn anchored_lead(hir: &regex_syntax::hir::Hir) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::Extractor;
    if !anchored_at_start(hir) {
        return None;
    }
    let seq = Extractor::new().extract(hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.len() > 32 || lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

fn str_match(c: &regex::Captures<'_>) -> Match {
    let whole = c.get(0).map_or((0, 0), |m| (m.start(), m.end()));
    Match {
        start: whole.0,
        end: whole.1,
        groups: c.iter().map(|g| g.map(|m| (m.start(), m.end()))).collect(),
    }
}

fn bytes_match(c: &regex::bytes::Captures<'_>) -> Match {
    let whole = c.get(0).map_or((0, 0), |m| (m.start(), m.end()));
    Match {
        start: whole.0,
        end: whole.1,
        groups: c.iter().map(|g| g.map(|m| (m.start(), m.end()))).collect(),
    }
}

/// (group index, name) of every named group, from an engine's list of group names.
fn group_names<'a>(
    names: impl Iterator<Item = Option<&'a str>>,
) -> Vec<(usize, super::groups::Name)> {
    names
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (i, super::groups::Name::new(n))))
        .collect()
}

/// One match: its span and the span of every group (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub groups: Vec<Option<(usize, usize)>>,
}

impl Re {
    /// Compile a fail2ban pattern (tags and Python syntax).
    pub fn fail2ban(pattern: &str, usedns: bool) -> Result<Self, String> {
        Self::python(&expand_tags(pattern, usedns), pattern)
    }

    /// Compile Python syntax; `source` is what errors and `--verbose` show.
    pub fn python(py: &str, source: &str) -> Result<Self, String> {
        let t = translate(py)?;
        let first_error = match regex::Regex::new(&t.pattern) {
            Ok(re) => return Ok(Self::fast(re, source.to_string(), t.pattern)),
            Err(e) => crate::filter::pattern::first_line(&e.to_string()),
        };
        if !t.fancy {
            return Err(first_error);
        }
        let re = fancy_regex::RegexBuilder::new(&t.pattern)
            .backtrack_limit(BACKTRACK_LIMIT)
            .build()
            .map_err(|e| crate::filter::pattern::first_line(&e.to_string()))?;
        let names = group_names(re.capture_names());
        Ok(Self {
            engine: Engine::Fancy(Box::new(re), Walked::default()),
            names,
            source: source.to_string(),
            translated: t.pattern,
            needs: Needs::default(),
        })
    }

    /// For a prefregex ending in `(?P<content>.+)$` (fail2ban's own form): the pattern
    /// without that tail. Its leftmost-first match, when it leaves at least one character,
    /// is where the whole pattern's match puts `content` (the tail matches any non-empty
    /// rest of a line), with the same groups before it; so the groups are found on the
    /// header alone instead of across the whole line. None when the tail is not that, or
    /// not at the top level.
    pub fn without_content_tail(&self) -> Option<Re> {
        use regex_syntax::hir::{HirKind, Look};
        const TAIL: &str = "(?P<content>.+)$";
        if self.is_backtracking() {
            return None;
        }
        let head = self.translated.strip_suffix(TAIL)?;
        let hir = regex_syntax::Parser::new().parse(&self.translated).ok()?;
        let HirKind::Concat(parts) = hir.kind() else {
            return None;
        };
        let [.., content, end] = parts.as_slice() else {
            return None;
        };
        let is_end = matches!(end.kind(), HirKind::Look(Look::End | Look::EndLF));
        let is_content = match content.kind() {
            HirKind::Capture(c) => {
                c.name.as_deref() == Some("content")
                    && matches!(c.sub.kind(), HirKind::Repetition(r) if r.min == 1 && r.max.is_none() && r.greedy)
            }
            _ => false,
        };
        if !(is_end && is_content) {
            return None;
        }
        let re = regex::Regex::new(head).ok()?;
        Some(Self::fast(re, self.source.clone(), head.to_string()))
    }

    /// A pattern the `regex` crate compiled (`translated`, in Rust syntax).
    fn fast(re: regex::Regex, source: String, translated: String) -> Self {
        Self {
            names: group_names(re.capture_names()),
            engine: Engine::Fast(Lazy::default(), Twin::default()),
            source,
            translated,
            needs: Needs::default(),
        }
    }

    /// The `regex` crate's engine, built at first use: checked when the pattern was read,
    /// then dropped, since most patterns of a filter with a [`FirstOf`] never need their own
    /// (23 of them were 5 MB of sshd's idle memory).
    fn regex<'a>(&'a self, lazy: &'a Lazy) -> Option<&'a regex::Regex> {
        // It compiled when the pattern was read, with the same limits: None never happens
        // (and would match nothing).
        lazy.0
            .get_or_init(|| regex::Regex::new(&self.translated).ok())
            .as_ref()
    }

    pub fn is_backtracking(&self) -> bool {
        matches!(self.engine, Engine::Fancy(..))
    }

    /// The ASCII engines, when they may run on `text`.
    fn twin(&self, text: &str) -> Option<&Ascii> {
        match &self.engine {
            Engine::Fast(_, twin) if text.is_ascii() => self.built_twin(twin),
            _ => None,
        }
    }

    /// The ASCII engines, built at their first use (None where the pattern has none).
    fn built_twin<'a>(&'a self, twin: &'a Twin) -> Option<&'a Ascii> {
        twin.0
            .get_or_init(|| Ascii::new(&self.translated).map(std::sync::Arc::new))
            .as_deref()
    }

    /// A backtracking pattern's chain, built at its first use (None where it has none).
    fn walked<'a>(
        &'a self,
        re: &fancy_regex::Regex,
        walked: &'a Walked,
    ) -> Option<&'a WalkedChain> {
        walked
            .0
            .get_or_init(|| {
                WalkedChain::new(&self.translated, re.captures_len()).map(std::sync::Arc::new)
            })
            .as_deref()
    }

    /// Whether `text` cannot hold a match, told by a literal every match holds or starts
    /// with (where the pattern has a chain or a twin): no search needed.
    /// `text` must be all ASCII (the caller checks it once for every pattern).
    pub fn refuses(&self, text: &str) -> bool {
        match &self.engine {
            Engine::Fast(_, twin) => self
                .built_twin(twin)
                .is_some_and(|a| a.refuses(text.as_bytes())),
            Engine::Fancy(re, walked) => self
                .walked(re, walked)
                .is_some_and(|w| w.chain.refuses_at(text.as_bytes(), 0)),
        }
    }

    /// The bytes a match may start with, where every match starts at the text's start
    /// with one of a few literals (`^[aA]uthentication`, `^Failed`): a line that starts
    /// with another byte is no match. None otherwise.
    pub fn first_bytes(&self) -> Option<[u64; 4]> {
        if !ascii_safe(&self.translated) {
            return None;
        }
        let firsts: Vec<u8> = match &self.engine {
            Engine::Fast(..) => anchored_lead(&ascii_hir(&self.translated)?)?
                .iter()
                .filter_map(|l| l.first().copied())
                .collect(),
            // Marked look-aheads read as groups to the literal extractor: the chain's
            // own reading of the start, which stops at a mark.
            Engine::Fancy(..) => {
                let hir = ascii_hir(&marked(&self.translated)?)?;
                if !anchored_at_start(&hir) {
                    return None;
                }
                vec![*super::chain::leading_literal(&hir)?.first()?]
            }
        };
        let mut set = [0u64; 4];
        for b in firsts {
            super::chain::add_byte(&mut set, b);
        }
        Some(set)
    }

    /// The leftmost match; a backtracking pattern that gives up counts as no match.
    pub fn search(&self, text: &str) -> Option<Match> {
        self.search_where(text, false)
    }

    /// [`Self::search`] on a text a set of the patterns found a match of this one in: an
    /// anchored pattern is searched by its chain alone, without the twin's pass to find
    /// the match first (fail2ban's postfix.conf: 4% more lines a second). On other texts
    /// only while such searches lately found most matches (see
    /// [`ChainCache::worth_searching`]).
    pub fn search_matching(&self, text: &str) -> Option<Match> {
        self.search_where(text, true)
    }

    fn search_where(&self, text: &str, matches: bool) -> Option<Match> {
        if let Some(a) = self.twin(text) {
            return a.search_at(text.as_bytes(), 0, matches);
        }
        match &self.engine {
            Engine::Fast(lazy, _) => self.regex(lazy)?.captures(text).map(|c| str_match(&c)),
            Engine::Fancy(re, walked) => {
                if text.is_ascii() {
                    let chain = self.walked(re, walked);
                    if let Some(Ok(found)) = chain.map(|c| c.search(text.as_bytes())) {
                        return found;
                    }
                }
                self.fancy(re.captures(text))
            }
        }
    }

    /// A backtracking search's result; one that gives up counts as no match, and is counted.
    fn fancy(
        &self,
        found: fancy_regex::Result<Option<fancy_regex::Captures<'_>>>,
    ) -> Option<Match> {
        match found {
            Ok(Some(c)) => {
                let whole = c.get(0).map_or((0, 0), |m| (m.start(), m.end()));
                Some(Match {
                    start: whole.0,
                    end: whole.1,
                    groups: (0..c.len())
                        .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                        .collect(),
                })
            }
            Ok(None) => None,
            Err(e) => {
                let n = BACKTRACK_GAVE_UP.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    log::warn!(
                        "pattern `{}` gave up on a line ({e}); {} line(s) so far counted as no match",
                        self.source,
                        n + 1
                    );
                }
                None
            }
        }
    }

    /// [`Self::search`] for a match starting at `start` or later (what comes before still
    /// counts for look-behind and boundaries).
    pub fn search_at(&self, text: &str, start: usize) -> Option<Match> {
        if let Some(a) = self.twin(text) {
            return a.search_at(text.as_bytes(), start, false);
        }
        match &self.engine {
            Engine::Fast(lazy, _) => self
                .regex(lazy)?
                .captures_at(text, start)
                .map(|c| str_match(&c)),
            Engine::Fancy(re, _) => self.fancy(re.captures_from_pos(text, start)),
        }
    }

    /// A match's groups once read: the chain that found them fills them at its next
    /// search instead of allocating its own (a prefregex's header is searched on every
    /// line; its malloc, growth and free cost ~450 instructions a line).
    pub fn recycle(&self, m: Match) {
        if m.groups.capacity() == 0 {
            return;
        }
        // A walked chain keeps its own slots (its matches are copies, numbered as the
        // pattern numbers its groups): only the twin's chain hands out the spans it fills.
        let pool = match &self.engine {
            Engine::Fast(_, twin) => twin.0.get().and_then(Option::as_deref).map(|a| &a.caches),
            Engine::Fancy(..) => None,
        };
        if let Some(pool) = pool {
            pool.give_back(m.groups);
        }
    }

    /// The leftmost match's span only (no groups: the fast engines' job; on ASCII text the
    /// twin's, whose automaton has no UTF-8 branches).
    pub fn find(&self, text: &str) -> Option<(usize, usize)> {
        if let Some(a) = self.twin(text) {
            return a.re.find(text.as_bytes()).map(|m| (m.start(), m.end()));
        }
        match &self.engine {
            Engine::Fast(lazy, _) => self.regex(lazy)?.find(text).map(|m| (m.start(), m.end())),
            Engine::Fancy(..) => self.search(text).map(|m| (m.start, m.end)),
        }
    }

    pub fn is_match(&self, text: &str) -> bool {
        // A text without the literal every match holds is refused by one memmem: an
        // ignoreregex is asked of every line, and the regex crate's search of a line it
        // refuses at once cost ~450 instructions (apache-auth's mod_evasive one).
        let needs = self
            .needs
            .0
            .get_or_init(|| super::chain::needed_finder(&ascii_hir(&self.translated)?));
        if needs
            .as_ref()
            .is_some_and(|n| n.find(text.as_bytes()).is_none())
        {
            return false;
        }
        match &self.engine {
            Engine::Fast(lazy, _) => self.regex(lazy).is_some_and(|r| r.is_match(text)),
            Engine::Fancy(..) => self.search(text).is_some(),
        }
    }

    /// The named groups that took part in a match, with their text.
    pub fn named<'t>(
        &'t self,
        m: &'t Match,
        text: &'t str,
    ) -> impl Iterator<Item = (&'t str, &'t str)> + 't {
        self.names.iter().filter_map(move |(i, n)| {
            m.groups
                .get(*i)
                .copied()
                .flatten()
                .map(|(s, e)| (n.as_str(), &text[s..e]))
        })
    }
}

/// At most this many patterns are searched one by one by their chains (see
/// [`FirstOf::alone`]); more cost more than the DFA's one pass does. A chain whose
/// pattern needs a literal the line lacks is not searched (one memmem): exim's eight
/// messages each name their own, so a line costs the one chain of its message.
const ALONE_PATTERNS: usize = 8;

/// The most searches a line, in halves, while which the chains go alone. The DFA's pass
/// over several patterns costs more time than its instructions say: its table, a row a
/// state, holds every shape of line the patterns know, and a line's pass reads a new part
/// of it at nearly every byte (cachegrind, dovecot's corpus-shaped log: 54% of all L1 data
/// misses, about 100 a line). Dovecot's four patterns take three searches a line: alone,
/// 11% more instructions than the DFA way but 11% (built-in) and 23% (fail2ban's file)
/// more lines a second; postfix's 1.6 searches and nginx's one are as fast either way.
/// Lines only a fourth pattern matches, or none of four, give way to the DFA.
const ALONE_SEARCHES: u32 = 7;

/// Patterns that are all anchored at the text's start, searched as one: every match then
/// starts at 0, so the leftmost-first match is the first pattern in order that matches
/// (fail2ban's rule for failregexes). One DFA pass over all of them finds which pattern
/// and where its match ends; only then are that pattern's groups resolved, on the match
/// alone: by the pattern's [`Chain`] on ASCII text, else (or where the chain cannot tell)
/// by a backtracker (a set pass, then one full search per candidate, cost three times as
/// much).
#[derive(Debug, Clone)]
pub struct FirstOf {
    /// Every pattern in one search, built when a line that is not all ASCII first comes
    /// (with Unicode classes its automaton was 2.8 MB of sshd's idle memory).
    all: std::sync::OnceLock<Option<regex_automata::meta::Regex>>,
    texts: Vec<String>,
    dfa_size: usize,
    /// The same without Unicode, for all-ASCII text (nearly every line), where every class
    /// means what its Unicode form means; None where a pattern needs Unicode. A lazy DFA
    /// alone, not the `meta` engine: half a search is all it is asked, and `meta` also
    /// kept a reverse automaton for whole searches (half of this one's memory) and spent
    /// a dispatch on every line.
    ascii: Option<regex_automata::hybrid::dfa::DFA>,
    /// Per pattern, the backtracker that resolves its groups when the chain cannot (the
    /// NFA of one pattern is small, so the backtracker's visited set stays small).
    groups: Vec<std::sync::OnceLock<Option<BoundedBacktracker>>>,
    /// The same, built without Unicode classes, for text that is all ASCII (nearly every
    /// log line): there every class and boundary means what its Unicode form means, and
    /// the NFA is several times smaller (`\S`, `\w`, `.` need no UTF-8 branches), which
    /// is what the backtracker pays for per byte. None where the pattern needs Unicode.
    /// Built when first needed: the chain resolves nearly every match, and sshd's 23 were
    /// 160 kB of an idle daemon's heap.
    ascii_groups: Vec<std::sync::OnceLock<Option<BoundedBacktracker>>>,
    /// Before either, on ASCII text: the pattern cut into pieces each found by a DFA
    /// (see [`Chain`]), built when the pattern first matches.
    chains: Vec<std::sync::OnceLock<Option<Chain>>>,
    /// Per pattern, the named groups every match of it fills with at least one character.
    always: Vec<Vec<String>>,
}

use super::chain::{
    ascii_backtracker, ascii_dfa, ascii_hir, CachePool, CannotTell, Chain, ChainCache, Spans, Tally,
};
use regex_automata::nfa::thompson::backtrack::BoundedBacktracker;

/// The named groups `hir` fills in every match, with at least one character: those on its
/// spine (concatenations, repetitions of at least one), not inside an alternative or an
/// optional part.
fn filled_groups(hir: &regex_syntax::hir::Hir, out: &mut Vec<String>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => {
            if let Some(name) = &c.name {
                if hir.properties().minimum_len().is_some_and(|n| n > 0) {
                    out.push(name.to_string());
                }
            }
            filled_groups(&c.sub, out);
        }
        HirKind::Concat(parts) => parts.iter().for_each(|p| filled_groups(p, out)),
        HirKind::Repetition(r) if r.min > 0 => filled_groups(&r.sub, out),
        _ => {}
    }
}

/// What [`FirstOf`] reuses from line to line (the backtrackers' memory and group slots).
#[derive(Debug, Clone)]
pub struct FirstOfScratch {
    all: Option<regex_automata::meta::Cache>,
    ascii: Option<regex_automata::hybrid::dfa::Cache>,
    groups: Vec<
        Option<(
            regex_automata::nfa::thompson::backtrack::Cache,
            regex_automata::util::captures::Captures,
        )>,
    >,
    chains: Vec<Option<ChainCache>>,
    /// How many chains [`FirstOf::alone`] searched a line, lately: a pattern that does
    /// not match costs its chain's search, so the chains go alone while they take at most
    /// three and a half searches a line (see [`ALONE_SEARCHES`]).
    alone: Tally,
}

impl FirstOf {
    /// None unless every pattern is on the fast engine and always anchored at the start
    /// (`^` outside multi-line mode), so that order decides and not position.
    pub fn new(patterns: &[Re], dfa_size: usize) -> Option<Self> {
        if patterns.is_empty() || patterns.iter().any(Re::is_backtracking) {
            return None;
        }
        let texts: Vec<&str> = patterns.iter().map(|p| p.translated.as_str()).collect();
        let hirs = texts
            .iter()
            .map(|t| regex_syntax::Parser::new().parse(t).ok())
            .collect::<Option<Vec<_>>>()?;
        // Every match of every pattern starts with `^` (not the multi-line kind).
        if !hirs.iter().all(anchored_at_start) {
            return None;
        }
        // Checked now, built when a line that is not all ASCII first needs it.
        FirstOf::build_all(&texts, dfa_size)?;
        let ascii = match texts.iter().all(|t| ascii_safe(t)) {
            true => FirstOf::build_ascii(&texts, dfa_size),
            false => None,
        };
        // The Unicode engines are built when a line first needs one (few lines do).
        let groups = texts.iter().map(|_| std::sync::OnceLock::new()).collect();
        let ascii_groups = texts.iter().map(|_| std::sync::OnceLock::new()).collect();
        let always = hirs
            .iter()
            .map(|hir| {
                let mut names = Vec::new();
                filled_groups(hir, &mut names);
                names
            })
            .collect();
        let chains = texts.iter().map(|_| std::sync::OnceLock::new()).collect();
        Some(Self {
            all: Default::default(),
            texts: texts.iter().map(|t| t.to_string()).collect(),
            dfa_size,
            ascii,
            groups,
            ascii_groups,
            chains,
            always,
        })
    }

    /// Does every match of pattern `index` fill the group `name` (non-empty)?
    pub fn always_fills(&self, index: usize, name: &str) -> bool {
        self.always
            .get(index)
            .is_some_and(|names| names.iter().any(|n| n == name))
    }

    /// Every pattern in one search, with Unicode classes.
    fn build_all(texts: &[&str], dfa_size: usize) -> Option<regex_automata::meta::Regex> {
        regex_automata::meta::Regex::builder()
            .configure(regex_automata::meta::Config::new().hybrid_cache_capacity(dfa_size))
            .build_many(texts)
            .ok()
    }

    /// Every pattern in one lazy DFA without Unicode classes (the chain's syntax),
    /// leftmost-first (the first pattern in order wins), searched anchored.
    fn build_ascii(texts: &[&str], dfa_size: usize) -> Option<regex_automata::hybrid::dfa::DFA> {
        let hirs = texts
            .iter()
            .map(|t| ascii_hir(t))
            .collect::<Option<Vec<_>>>()?;
        ascii_dfa(&hirs, dfa_size)
    }

    pub fn scratch(&self) -> FirstOfScratch {
        FirstOfScratch {
            all: None,
            ascii: self.ascii.as_ref().map(|a| a.create_cache()),
            groups: vec![None; 2 * self.groups.len()],
            chains: vec![None; self.groups.len()],
            alone: Tally::default(),
        }
    }

    /// The first pattern that matches `text`, and its match (groups numbered as in that
    /// pattern alone). `patterns`: the ones this was built from (the fallback for a line
    /// too long for the backtracker's memory). The filter calls the two steps itself
    /// (it may stop between them); tests use both at once.
    #[cfg(test)]
    pub fn search(
        &self,
        patterns: &[Re],
        text: &str,
        scratch: &mut FirstOfScratch,
    ) -> Option<(usize, Match)> {
        let (index, end) = self.which(text, scratch)?;
        self.groups_of(patterns, index, end, text, scratch)
    }

    /// The first pattern that matches ASCII `text`, and its match, by the patterns' chains
    /// alone, tried in order: a chain's own pieces say whether its pattern matches, so the
    /// pass of the DFA that [`Self::which`] makes first would read the line twice (nginx's
    /// basic-auth failures: ~2,100 of ~7,100 instructions a line). `None` where that is not
    /// asked (more than [`ALONE_PATTERNS`], or lines lately took more than 3.5 searches:
    /// the scratch counts them; text that is not all ASCII; no chain) or a chain cannot tell:
    /// then [`Self::which`] and [`Self::groups_of`] answer.
    pub fn alone(
        &self,
        patterns: &[Re],
        text: &str,
        scratch: &mut FirstOfScratch,
    ) -> Option<Option<(usize, Match)>> {
        let several = self.texts.len() > 1;
        if self.texts.len() > ALONE_PATTERNS
            || (several
                && !scratch
                    .alone
                    .worth_while(|lines, chains| 2 * chains <= ALONE_SEARCHES * lines))
            || !text.is_ascii()
        {
            return None;
        }
        let mut searched = 0;
        let found = self.in_order(patterns, text, &mut scratch.chains, &mut searched);
        if several {
            // A line the chains could not settle costs the DFA's pass as well.
            let dfa = if found.is_none() { 2 } else { 0 };
            scratch.alone.add(searched + dfa);
        }
        found
    }

    /// The first pattern that matches `text`, and where its match ends (one DFA pass).
    pub fn which(&self, text: &str, scratch: &mut FirstOfScratch) -> Option<(usize, usize)> {
        let input = regex_automata::Input::new(text);
        let found = match (&self.ascii, &mut scratch.ascii) {
            // Half a search: the end and the pattern are all a caller needs (the groups
            // come from the start), and a pattern not anchored at the start would make a
            // whole search scan back for where its match began.
            (Some(ascii), Some(cache)) if text.is_ascii() => {
                let anchored = input.clone().anchored(regex_automata::Anchored::Yes);
                match ascii.try_search_fwd(cache, &anchored) {
                    Ok(found) => found?,
                    // Only when its memory runs out line after line (then the engine
                    // below, which falls back by itself, answers).
                    Err(_) => self.search_all(&input, scratch)?,
                }
            }
            _ => self.search_all(&input, scratch)?,
        };
        Some((found.pattern().as_usize(), found.offset()))
    }

    /// [`Self::which`] by the engine with Unicode classes (built at its first use).
    fn search_all(
        &self,
        input: &regex_automata::Input<'_>,
        scratch: &mut FirstOfScratch,
    ) -> Option<regex_automata::HalfMatch> {
        let all = self
            .all
            .get_or_init(|| {
                let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
                FirstOf::build_all(&texts, self.dfa_size)
            })
            .as_ref()?;
        let cache = scratch.all.get_or_insert_with(|| all.create_cache());
        all.search_half_with(cache, input)
    }

    /// The groups of pattern `index`, found by [`Self::which`] to match `text` up to `end`.
    pub fn groups_of(
        &self,
        patterns: &[Re],
        index: usize,
        end: usize,
        text: &str,
        scratch: &mut FirstOfScratch,
    ) -> Option<(usize, Match)> {
        let ascii = text.as_bytes().get(..end)?.is_ascii();
        if ascii {
            if let Some(groups) = self.chain_groups(patterns, index, end, text, scratch) {
                return Some((
                    index,
                    Match {
                        start: 0,
                        end,
                        groups,
                    },
                ));
            }
        }
        let ascii_bt = || {
            self.ascii_groups
                .get(index)?
                .get_or_init(|| {
                    let text = self.texts.get(index)?;
                    ascii_safe(text).then(|| ascii_backtracker(text)).flatten()
                })
                .as_ref()
        };
        let (bt, slot) = match ascii.then(ascii_bt).flatten() {
            Some(bt) => (bt, 2 * index + 1),
            _ => {
                let unicode = self
                    .groups
                    .get(index)?
                    .get_or_init(|| BoundedBacktracker::new(&patterns.get(index)?.translated).ok());
                (unicode.as_ref()?, 2 * index)
            }
        };
        if end > bt.max_haystack_len() {
            return patterns.get(index)?.search(text).map(|m| (index, m));
        }
        let (cache, caps) = scratch
            .groups
            .get_mut(slot)?
            .get_or_insert_with(|| (bt.create_cache(), bt.create_captures()));
        let input = regex_automata::Input::new(text)
            .span(0..end)
            .anchored(regex_automata::Anchored::Yes);
        bt.try_search(cache, &input, caps).ok()?;
        let whole = caps.get_match()?;
        let groups = (0..caps.group_len())
            .map(|i| caps.get_group(i).map(|s| (s.start, s.end)))
            .collect();
        Some((
            index,
            Match {
                start: whole.start(),
                end: whole.end(),
                groups,
            },
        ))
    }

    /// [`Self::alone`]'s search: each pattern's chain in turn until one matches; `searched`
    /// counts the chains asked. None where a pattern has no chain or its chain cannot tell.
    fn in_order(
        &self,
        patterns: &[Re],
        text: &str,
        caches: &mut [Option<ChainCache>],
        searched: &mut u32,
    ) -> Option<Option<(usize, Match)>> {
        for index in 0..self.texts.len() {
            let chain = self.chain(patterns, index)?;
            let cache = caches.get_mut(index)?.get_or_insert_with(|| chain.cache());
            if !chain.may_match(text.as_bytes(), 0, cache) {
                continue;
            }
            *searched += 1;
            if let Some(groups) = chain.search(text.as_bytes(), 0, cache).ok()? {
                let (start, end) = groups.first().copied().flatten()?;
                return Some(Some((index, Match { start, end, groups })));
            }
        }
        Some(None)
    }

    /// Spans of pattern `index`'s match, once read, for its chain's next search.
    pub fn give_back(&self, index: usize, spans: Spans, scratch: &mut FirstOfScratch) {
        if let Some(Some(cache)) = scratch.chains.get_mut(index) {
            cache.give_back(spans);
        }
    }

    /// Pattern `index`'s chain, built at its first use; None where it has none.
    fn chain(&self, patterns: &[Re], index: usize) -> Option<&Chain> {
        self.chains
            .get(index)?
            .get_or_init(|| {
                let t = &patterns.get(index)?.translated;
                ascii_safe(t).then(|| Chain::new(t)).flatten()
            })
            .as_ref()
    }

    /// Pattern `index`'s groups on ASCII `text` by its chain; None where it has none or
    /// the chain cannot tell.
    fn chain_groups(
        &self,
        patterns: &[Re],
        index: usize,
        end: usize,
        text: &str,
        scratch: &mut FirstOfScratch,
    ) -> Option<Spans> {
        let chain = self.chain(patterns, index)?;
        let cache = scratch
            .chains
            .get_mut(index)?
            .get_or_insert_with(|| chain.cache());
        chain.groups(text.as_bytes(), 0, end, cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text without the literal every match holds is refused before any engine runs,
    /// and every answer is the regex crate's, on ASCII and other text alike.
    #[test]
    fn is_match_refuses_by_the_needed_literal_as_the_engine_would() {
        let patterns = [
            r"^(?:\]\s*)?\[evasive\d*:\S+\]",
            r"foo.*bar\d",
            r"(?i)needle here",
            r"üx+y",
            r"^x",
        ];
        let texts = [
            "] [evasive20:error] [pid 1] x",
            "[evasive:error] x",
            "] [error] [client 198.18.0.1] x",
            "a foo and a bar1",
            "foo bar",
            "a NEEDLE Here",
            "needle here",
            "üxxy",
            "uxxy",
            "xüy",
            "",
        ];
        for p in patterns {
            let re = Re::python(p, p).unwrap();
            let engine = regex::Regex::new(&re.translated).unwrap();
            for t in texts {
                assert_eq!(re.is_match(t), engine.is_match(t), "{p} on {t:?}");
            }
        }
        let evasive = Re::python(patterns[0], patterns[0]).unwrap();
        evasive.is_match("");
        assert!(evasive.needs.0.get().is_some_and(Option::is_some));
    }

    impl Ascii {
        /// What the twin's capture engine finds from the text's start: the answer a
        /// chain's search must give.
        fn captured(&self, line: &str) -> Option<Match> {
            self.re
                .captures_at(line.as_bytes(), 0)
                .map(|c| bytes_match(&c))
        }
    }

    /// A pattern anchored at the start is searched by its chain alone (no pass of the
    /// twin's DFA first): on lines that match, nearly match and do not, in every shape a
    /// failregex meets, it finds what the twin's own capture engine finds, and says "no
    /// match" exactly where that does.
    #[test]
    fn an_anchored_chain_alone_finds_what_the_capture_engine_finds() {
        let patterns = [
            r"^(?:(?:error|fatal): (?:PAM: )?)?Failed (?:password|publickey) for (?:invalid user )?<F-USER>\S+</F-USER> from <HOST>(?: port \d+)?(?: ssh\d*)?$",
            r"^(?:(?:error|fatal): (?:PAM: )?)?[iI](?:llegal|nvalid) user <F-USER>.*?</F-USER> from <HOST>(?: port \d+)?\s*$",
            r#"^\s*\[error\] \d+#\d+: \*\d+ user "(?:[^"]+|.*?)":? (?:password mismatch|was not found in "[^\"]*"), client: <HOST>, server: \S*"#,
            r"^(?P<a>a+)(?P<b>a*?)b(?:c|cd)?$",
        ];
        let heads = ["", "error: ", "fatal: PAM: ", "warning: ", " "];
        let bodies = [
            "Failed password for root from 198.18.0.7 port 22 ssh2",
            "Failed publickey for invalid user bob from 2001:db8::7 port 22",
            "Failed password for x from 198.18.0.9 from 198.18.0.8",
            "Failed password for root from host.example port 22 ssh2: RSA x",
            "Failed password for root from 198.18.0.7 port x",
            "Invalid user admin from 198.18.0.3 port 4",
            "invalid user a b c from 198.18.0.4  ",
            "Illegal user from 198.18.0.4",
            r#"[error] 12#0: *3 user "joe": password mismatch, client: 198.18.1.1, server: x"#,
            r#"[error] 12#0: *3 user "jo e" was not found in "/a", client: 2001:db8::1, server: "#,
            r#"[error] 12#0: *3 user "": password mismatch, client: 198.18.1.1, server: x"#,
            "aaab",
            "aabcd",
            "ab",
            "b",
            "aaabce",
        ];
        let mut compared = 0;
        let mut matched = 0;
        for p in patterns {
            let re = Re::fail2ban(p, true).unwrap();
            let twin = Ascii::new(&re.translated).unwrap();
            assert!(twin.lead.is_some() && twin.chain.is_some(), "{p}");
            for head in heads {
                for body in bodies {
                    let line = format!("{head}{body}");
                    let want = twin.captured(&line);
                    let got = twin.search_at(line.as_bytes(), 0, false);
                    assert_eq!(got, want, "{p} on `{line}`");
                    compared += 1;
                    matched += usize::from(got.is_some());
                }
            }
        }
        assert!(
            compared == 320 && matched >= 20,
            "{matched} of {compared} matched"
        );
    }

    /// An anchored pattern led by no literal is searched by its chain alone where the
    /// text is known to match, and where such searches lately found most matches: either
    /// way it finds what the capture engine finds. Lines that match and lines that do not
    /// come in runs, so the chain goes alone, gives up going alone, and goes again.
    #[test]
    fn an_anchored_chain_without_a_lead_finds_what_the_capture_engine_finds() {
        let patterns = [
            r"^\S+ (?:error: )?Failed \S+ for <F-USER>\S+</F-USER> from <HOST>(?: port \d+)?\s*$",
            r"^(?:\w+: )?(?:[iI]nvalid|[iI]llegal) user <F-USER>.*?</F-USER> from <HOST>\s*$",
        ];
        let matching = [
            "sshd Failed password for root from 198.18.0.7 port 22",
            "x error: Failed publickey for bob from 2001:db8::7",
            "auth: invalid user a b from 198.18.0.4  ",
            "Illegal user x from 198.18.0.5",
        ];
        let other = [
            "sshd Failed password for root from nowhere",
            "Accepted password for root from 198.18.0.7 port 22",
            "auth: invalid user from",
            " Failed password for root from 198.18.0.7",
        ];
        let mut compared = 0;
        let mut matched = 0;
        for p in patterns {
            let re = Re::fail2ban(p, true).unwrap();
            let twin = Ascii::new(&re.translated).unwrap();
            assert!(
                twin.lead.is_none() && twin.anchored && twin.chain.is_some(),
                "{p}"
            );
            for round in 0..40 {
                let lines = if round % 3 == 0 { &other } else { &matching };
                for line in lines.iter().cycle().take(24) {
                    let want = twin.captured(line);
                    for known in [false, want.is_some()] {
                        let got = twin.search_at(line.as_bytes(), 0, known);
                        assert_eq!(got, want, "{p} on `{line}`");
                        compared += 1;
                        matched += usize::from(got.is_some());
                    }
                }
            }
        }
        assert!(matched * 4 >= compared, "{matched} of {compared} matched");
    }

    /// A filter's only pattern is searched by its chain alone, without the DFA's pass
    /// first: on lines that match, nearly match and do not, it finds what the capture
    /// engine finds and says "no match" where that does; a line that is not all ASCII is
    /// left to the DFA's pass.
    #[test]
    fn a_filters_only_pattern_is_searched_by_its_chain_alone() {
        let (auth, _) = crate::filter::nginx::http_auth("auth").remove(0);
        let re = Re::fail2ban(&auth, true).unwrap();
        let first = FirstOf::new(std::slice::from_ref(&re), 1 << 20).unwrap();
        let mut scratch = first.scratch();
        let tail = r#", server: www.example, request: "GET / HTTP/1.1", host: "www.example""#;
        let lines = [
            format!(r#"[error] 12#0: *3 user "joe": password mismatch, client: 198.18.1.1{tail}"#),
            format!(
                r#" [error] 2#0: *66 user "x" was not found in "/a/.htpasswd", client: 2001:db8::5{tail}"#
            ),
            format!(
                r#"[error] 1#0: *1 user "a", client: 198.18.0.9": password mismatch, client: 198.18.1.2{tail}"#
            ),
            format!(r#"[error] 1#0: *1 user "": password mismatch, client: host.example{tail}"#),
            format!(
                r#"[error] 1#0: *1 user "joe": password mismatch, client: 198.18.1.1{tail} x y"#
            ),
            format!(r#"[error] 1#0: *1 open() "/x" failed, client: 198.18.1.1{tail}"#),
            r#"[error] 1#0: *1 user "joe": password mismatch, client: 198.18.1.1"#.to_string(),
            String::new(),
        ];
        let twin = Ascii::new(&re.translated).unwrap();
        let (mut settled, mut matched) = (0, 0);
        for line in &lines {
            let want = twin.captured(line);
            let got = first.alone(std::slice::from_ref(&re), line, &mut scratch);
            if let Some(got) = got {
                matched += usize::from(want.is_some());
                assert_eq!(got, want.map(|m| (0, m)), "`{line}`");
                settled += 1;
            }
        }
        assert!(
            settled == lines.len() && matched == 4,
            "{settled} settled, {matched} matched"
        );
        // Not all ASCII: the chain cannot read it, the DFA's pass must.
        let wide = lines[0].replace("joe", "jöe");
        assert!(first
            .alone(std::slice::from_ref(&re), &wide, &mut scratch)
            .is_none());
        assert!(first
            .search(std::slice::from_ref(&re), &wide, &mut scratch)
            .is_some());
    }

    /// A few patterns are searched one by one, in order: the first that matches wins, as
    /// in the DFA's pass. While lines take more than 3.5 searches on average, the DFA's
    /// pass is cheaper and the chains give way to it (one line in 64 still tries them);
    /// more than eight patterns always go to the DFA.
    #[test]
    fn a_few_patterns_are_searched_in_order_while_that_is_cheaper() {
        let (auth, _) = crate::filter::nginx::http_auth("auth").remove(0);
        let pats = [
            Re::fail2ban(&auth, true).unwrap(),
            Re::fail2ban(r"^\s*\[error\] .*client: <HOST>", true).unwrap(),
            Re::fail2ban(r"^\s*\[warn\] .*client: <HOST>", true).unwrap(),
            Re::fail2ban(r"^\s*\[crit\] .*client: <HOST>", true).unwrap(),
        ];
        let first = FirstOf::new(&pats, 1 << 20).unwrap();
        let mut scratch = first.scratch();
        let tail = r#", server: www.example, request: "GET / HTTP/1.1", host: "www.example""#;
        let both =
            format!(r#"[error] 1#0: *1 user "joe": password mismatch, client: 198.18.1.1{tail}"#);
        let second = format!(r#"[error] 1#0: *1 open() "/x" failed, client: 198.18.1.2{tail}"#);
        let third = format!(r#"[warn] 1#0: *1 open() "/x" failed, client: 198.18.1.3{tail}"#);
        let fourth = format!(r#"[crit] 1#0: *1 open() "/x" failed, client: 198.18.1.4{tail}"#);
        let index = |found: Option<Option<(usize, Match)>>| found.map(|f| f.map(|(i, _)| i));
        // Each answers as the DFA's pass and the capture engine do.
        for (line, want) in [
            (&both, Some(0)),
            (&second, Some(1)),
            (&third, Some(2)),
            (&fourth, Some(3)),
        ] {
            let alone = first.alone(&pats, line, &mut scratch);
            assert_eq!(index(alone.clone()), Some(want), "`{line}`");
            assert_eq!(
                alone.flatten(),
                first.search(&pats, line, &mut scratch),
                "`{line}`"
            );
        }
        assert_eq!(
            index(first.alone(&pats, "[info] x", &mut scratch)),
            Some(None)
        );
        // Lines only the last pattern matches take four searches each: the chains give
        // way to the DFA, and try again one line in 64.
        let mut alone = 0;
        for _ in 0..200 {
            alone += usize::from(first.alone(&pats, &fourth, &mut scratch).is_some());
        }
        assert!(
            (10..=24).contains(&alone),
            "{alone} of 200 lines searched alone"
        );
        // Lines the third matches take three searches, the first's one: the chains
        // keep going alone.
        for line in [&third, &both] {
            let mut fresh = first.scratch();
            for _ in 0..200 {
                assert!(first.alone(&pats, line, &mut fresh).is_some(), "`{line}`");
            }
        }
        let nine: Vec<Re> = (0..9)
            .map(|i| Re::fail2ban(&format!(r"^\[p{i}\] <HOST>"), true).unwrap())
            .collect();
        let many = FirstOf::new(&nine, 1 << 20).unwrap();
        let mut scratch = many.scratch();
        assert!(many.alone(&nine, "[p0] 198.18.0.1", &mut scratch).is_none());
        assert!(many
            .search(&nine, "[p0] 198.18.0.1", &mut scratch)
            .is_some());
    }

    /// A chain whose pattern needs a literal the line lacks is not searched: exim-spam's
    /// five messages each name their own, so each line is searched by the one chain of
    /// its message (the DFA's pass over all five read the whole line first, and then
    /// that chain), and a line of none of them by no chain at all. What is found is what
    /// the DFA's pass and the groups' search find.
    #[test]
    fn patterns_whose_literal_a_line_lacks_are_not_searched() {
        let pats: Vec<Re> = crate::filter::mail::exim_spam("normal")
            .into_iter()
            .map(|(p, _)| Re::fail2ban(&p, true).unwrap())
            .collect();
        assert_eq!(pats.len(), 5);
        let first = FirstOf::new(&pats, 1 << 20).unwrap();
        let host = "H=mail.example (helo) [198.18.0.9]:25 I=[198.18.0.1]:25";
        let scanned = "(scanned in 6/6 secs | Message-Id: 1@x.example). From <s@x.example>";
        let lines = [
            format!("1Ai79e-0000Dq-8i F=s@x.example {host} P=smtp rejected by local_scan(): Rejected"),
            format!("[2249] {host} F=s@x.example rejected RCPT t@x.example: found in dnsbl zen"),
            format!("1Unmew-0000ea-SE {host} F=s@x.example rejected after DATA: This message contains a virus (Junk.1)."),
            format!("1VxPit-000MMd-U4 SA: Action: flagged as Spam but accepted: score=8.2 required=5.0 {scanned} (host=h.example [198.18.0.7]) for trap@example.com"),
            format!("1VxHRO-000NiI-Ly SA: Action: silently tossed message: score=31.0 required=5.0 trigger=30.0 {scanned} (host=[198.18.0.8]) for a@x.example"),
        ];
        let mut scratch = first.scratch();
        for (want, line) in lines.iter().enumerate() {
            let mut searched = 0;
            let alone = first.in_order(&pats, line, &mut scratch.chains, &mut searched);
            let found = first.search(&pats, line, &mut scratch);
            assert_eq!(found.as_ref().map(|(i, _)| *i), Some(want), "`{line}`");
            assert_eq!(alone, Some(found), "`{line}`");
            assert_eq!(searched, 1, "`{line}`");
        }
        // Nearly a message, but not one: searched where the literal is, refused.
        for (line, chains) in [
            (format!("1Ai79e-0000Dq-8i {host} connection lost"), 0),
            (
                format!("[2249] {host} F=s@x.example rejected RCPT t@x.example: relay denied"),
                1,
            ),
        ] {
            let mut searched = 0;
            let alone = first.in_order(&pats, &line, &mut scratch.chains, &mut searched);
            assert_eq!(alone, Some(None), "`{line}`");
            assert_eq!(first.search(&pats, &line, &mut scratch), None, "`{line}`");
            assert_eq!(searched, chains, "`{line}`");
        }
    }

    fn caps(re: &Re, text: &str) -> Vec<(String, String)> {
        let m = re.search(text).expect("matches");
        re.named(&m, text)
            .map(|(n, v)| (n.into(), v.into()))
            .collect()
    }

    #[test]
    fn host_tags_become_fail2bans_groups() {
        let re = Re::fail2ban(r"^from <HOST> user <F-USER>\S+</F-USER>$", true).unwrap();
        assert_eq!(
            caps(&re, "from 192.0.2.1 user root"),
            [
                ("ip4".into(), "192.0.2.1".into()),
                ("user".into(), "root".into())
            ]
        );
        assert_eq!(
            caps(&re, "from [2001:db8::1] user x")[0],
            ("ip6".into(), "2001:db8::1".into())
        );
        assert_eq!(
            caps(&re, "from ::ffff:192.0.2.7 user x")[0],
            ("ip4".into(), "192.0.2.7".into())
        );
        assert_eq!(
            caps(&re, "from mail.example.com user x")[0],
            ("dns".into(), "mail.example.com".into())
        );
        let no_dns = Re::fail2ban(r"^from <HOST>$", false).unwrap();
        assert!(no_dns.search("from mail.example.com").is_none());
        let id = Re::fail2ban(r"^session <F-ID/> port <F-PORT/>$", false).unwrap();
        assert_eq!(
            caps(&id, "session abc port 22"),
            [("fid".into(), "abc".into()), ("fport".into(), "22".into())]
        );
    }

    #[test]
    fn python_syntax_is_rewritten() {
        let t = |p: &str| translate(p).unwrap().pattern;
        assert_eq!(t(r"a\Z"), r"a\z");
        assert_eq!(t(r"\<b\>"), "<b>");
        assert_eq!(t(r"{DATE} x{2} y{,3} z{1,}"), r"\{DATE\} x{2} y{0,3} z{1,}");
        assert_eq!(t(r"[[]a]"), r"[\[]a]");
        assert_eq!(t(r"[]x]"), r"[\]x]");
        assert_eq!(t(r"[a&&b]"), r"[a\&\&b]");
        assert_eq!(t(r"a(?#note)b"), "ab");
        assert_eq!(t(r"(?:(?i)ab)"), "(?:(?i)ab)");
        assert_eq!(t(r"(?iu)x"), "(?i)x");
        assert!(!translate(r"(?P<a>x)").unwrap().fancy);
        for fancy in [
            r"a(?=b)",
            r"(?<!x)y",
            r"(?P<a>x)(?P=a)",
            r"(x)\1",
            r"(?P<c>a)?(?(c)b|c)",
        ] {
            assert!(translate(fancy).unwrap().fancy, "{fancy}");
        }
        assert_eq!(t(r"(?P<c>a)?(?(c)b|c)"), r"(?P<c>a)?(?(<c>)b|c)");
        let cond = Re::python(r"^(?P<c>a)?(?(c)b|c)$", "").unwrap();
        assert!(cond.is_match("ab") && cond.is_match("c") && !cond.is_match("ac"));
        assert!(translate(r"\q").unwrap_err().contains(r"\q"));
        assert!(translate("(a").is_err());
        assert!(translate("a)").is_err());
        assert!(translate("[a").is_err());
    }

    #[test]
    fn look_around_runs_on_the_backtracking_engine_only() {
        let plain = Re::python(r"^a (?P<x>\d+)$", "").unwrap();
        assert!(!plain.is_backtracking());
        let look = Re::python(r"^user (?:(?! from ).)*? from (?P<x>\d+)$", "").unwrap();
        assert!(look.is_backtracking());
        let m = look.search("user a b from 7").unwrap();
        assert_eq!(look.named(&m, "user a b from 7").next(), Some(("x", "7")));
        // A broken pattern without fancy constructs reports Rust's reason.
        assert!(Re::python("a{2,1}", "").is_err());
    }

    #[test]
    fn look_aheads_and_conditionals_are_written_as_marked_groups() {
        assert_eq!(
            marked(r"^a(?!b\)c)(?=d)").as_deref(),
            Some(r"^a(?P<__mark_neg0>b\)c)(?P<__mark_pos1>d)")
        );
        assert_eq!(
            marked(r"^(?P<x>a)?(?(<x>)b|c)(?(1)d)").as_deref(),
            Some(concat!(
                r"^(?P<x>a)?(?P<__mark_if0_x>(?P<__mark_yes0>b)|(?P<__mark_no0>c))",
                r"(?P<__mark_if1_1>(?P<__mark_yes1>d)|(?P<__mark_no1>))"
            ))
        );
        // A `|` inside a branch's own group is not the conditional's.
        assert_eq!(
            marked(r"(?(<x>)(?:a|b)|c)").as_deref(),
            Some(r"(?P<__mark_if0_x>(?P<__mark_yes0>(?:a|b))|(?P<__mark_no0>c))")
        );
        for walked_by_none in [
            r"(?<=a)b",
            r"(?<!a)b",
            r"(?>a)",
            r"(a)\1",
            r"(?P<x>a)(?P=x)",
        ] {
            assert_eq!(marked(walked_by_none), None, "{walked_by_none}");
        }
        assert_eq!(marked(r"(?P<__mark_neg0>a)"), None);
    }

    /// Python's own `re` (what fail2ban runs) on each text: the groups' spans of the match
    /// at the start, or None. One interpreter for all texts.
    fn python_spans(pattern: &str, texts: &[String]) -> Vec<Option<Spans>> {
        use std::io::Write as _;
        let script = r#"
import json, re, sys
p = re.compile(sys.stdin.readline().rstrip("\n"))
out = []
for line in sys.stdin.read().split("\n")[:-1]:
    m = p.match(line)
    out.append(None if m is None else [None if m.span(i) == (-1, -1) else list(m.span(i)) for i in range(p.groups + 1)])
print(json.dumps(out))
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (cargo xtask setup installs it)");
        let mut input = format!("{pattern}\n");
        for t in texts {
            input.push_str(t);
            input.push('\n');
        }
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python3 failed on {pattern}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Where the chain walks a pattern's look-aheads and conditionals itself, it finds what
    /// Python finds (fancy-regex does not always: it can report a group from a branch it
    /// left); on every text up to 6 bytes over a small alphabet, it never hands one back.
    #[test]
    fn walked_look_aheads_and_conditionals_agree_with_python() {
        let patterns = [
            // sshd.conf's shapes: an optional prefix remembered, a lazy run that may not
            // cross ` x`, the tail chosen by which group took part.
            r"^a (?P<inv>b )?(?P<user>(?P<cu>\S+)|(?(inv)(?:(?! x).)*?|[^:]+)) x(?P<h>[ab]+)(?(cu): |(?:(?:(?! x).)*)$)",
            r"^(?:\b(?!ab)\S+|a) (?P<u>\S*)",
            r"^(?:(?:\w+ (?!x\b)){0,2}\w+) x",
            r"^(?P<a>a)?(?(a)b|bb)(?P<r>.*)$",
            r"^(?P<a>a)?(?(1)b)(?=b|$)(?P<r>[ab]*)",
            r"^(?:(?!ab)[ab ])+(?P<r>.*)",
        ];
        let texts = super::super::chain::every_text(b"ab x:", 6);
        for p in patterns {
            let re = Re::python(p, p).unwrap();
            let Engine::Fancy(fancy, _) = &re.engine else {
                panic!("{p} is not a backtracking pattern");
            };
            let walked = WalkedChain::new(&re.translated, fancy.captures_len())
                .unwrap_or_else(|| panic!("no chain for {p}"));
            let want = python_spans(p, &texts);
            let mut matched = 0;
            for (text, want) in texts.iter().zip(want) {
                let got = walked
                    .search(text.as_bytes())
                    .unwrap_or_else(|_| panic!("{p} handed {text:?} back"));
                assert_eq!(got.map(|m| m.groups), want, "{p} on {text:?}");
                matched += usize::from(want.is_some());
            }
            assert!(matched > 0, "{p} matched nothing");
        }
    }

    /// The walk recurses once a step: its budget bounds the depth, so any line fits in a
    /// stack half the size of a thread's default.
    #[test]
    fn a_long_line_is_walked_within_a_small_stack() {
        let re = Re::python(
            r"^a (?P<u>(?:(?! from ).)*) from (?P<h>\S+)(?:(?:(?! x).)*)$",
            "",
        )
        .unwrap();
        for len in [100, 1_000, 10_000, 100_000] {
            let line = format!("a {} from 198.18.0.1 {}", "u".repeat(len), "y".repeat(len));
            let re = re.clone();
            let found = std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || re.search(&line).map(|m| m.groups[2]))
                .unwrap()
                .join()
                .expect("no stack overflow");
            // Past the walk's budget the backtracker runs, and gives up on the longest
            // (counted as no match, as before the chain).
            if len <= 1_000 {
                assert_eq!(found, Some(Some((len + 8, len + 18))), "{len}");
            }
        }
    }

    /// sshd.conf's failregex for failed passwords, tags expanded as fail2ban does, and its
    /// walked chain.
    fn sshds_failed_pattern() -> (String, WalkedChain) {
        let failed = expand_tags(
            r"^Failed (?:password|publickey) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: (?:port \d+|on \S+|\(\S+\)))?(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
            true,
        );
        let re = Re::python(&failed, "sshd").unwrap();
        let Engine::Fancy(fancy, _) = &re.engine else {
            panic!("not a backtracking pattern");
        };
        let walked = WalkedChain::new(&re.translated, fancy.captures_len()).expect("a chain");
        (failed, walked)
    }

    /// sshd.conf's failregex for failed passwords, tags expanded as fail2ban does: walked,
    /// and what Python finds, a user name holding ` from` included.
    #[test]
    fn sshds_failed_password_pattern_is_walked() {
        let (failed, walked) = sshds_failed_pattern();
        let lines: Vec<String> = [
            "Failed password for root from 198.18.0.1 port 22 ssh2",
            "Failed password for invalid user admin from 198.18.0.2 port 22 ssh2",
            "Failed password for invalid user a from b from 198.18.0.3 port 22 ssh2",
            "Failed password for invalid user from 198.18.0.4 port 22 ssh2",
            "Failed publickey for root from 2001:db8::5 port 22 ssh2: RSA SHA256:x",
            "Failed password for invalid user x from 198.18.0.6 port 22 ssh2 from 198.18.0.7",
            "Failed password for root from 198.18.0.8 port 22 ssh2 and more",
        ]
        .map(String::from)
        .to_vec();
        let want = python_spans(&failed, &lines);
        for (line, want) in lines.iter().zip(want) {
            let got = walked.search(line.as_bytes()).expect("walked");
            assert_eq!(got.map(|m| m.groups), want, "{line}");
        }
    }

    /// A branch that decides a conditional further on is refused by its DFA, the
    /// conditional resolved, before it is walked: in sshd.conf's `Failed` pattern, a user
    /// read as `\S+` requires `: ` after the address, and a line without it is no longer
    /// walked through every way of the address and port first. Same answers (the Python
    /// tests above), far fewer steps.
    #[test]
    fn a_branch_deciding_a_conditional_is_refused_before_its_walk() {
        let (failed, walked) = sshds_failed_pattern();
        // `(?P<cond_inv>invalid user )?` and the user's `\S+` branch decide conditionals.
        let chain = format!("{:?}", walked.chain);
        assert_eq!(chain.matches("ask: First").count(), 2);
        let lines = [
            "Failed password for root from 198.18.0.1 port 22 ssh2",
            "Failed password for a from 198.18.0.2 port 2 ssh2 from 198.18.0.3 port 3 ssh2",
            "Failed password for root from 2001:db8::1 port 22",
        ];
        let want = python_spans(&failed, &lines.map(String::from));
        for (line, want) in lines.iter().zip(want) {
            let got = walked.search(line.as_bytes()).expect("walked");
            assert!(want.is_some(), "{line}");
            assert_eq!(got.map(|m| m.groups), want, "{line}");
            let mut cache = walked.chain.cache();
            assert!(walked.chain.search(line.as_bytes(), 0, &mut cache).is_ok());
            // Walking the `\S+` branch's every way first took 150 steps and more.
            assert!(cache.walked <= 60, "{line}: {} steps", cache.walked);
        }
    }

    #[test]
    fn relaxed_patterns_match_at_least_what_the_pattern_matches() {
        let cases = [
            (
                r"^Failed (?P<c>invalid )?(?(c)x|y) from (?P<h>\d+)(?! bad)$",
                &["Failed invalid x from 1", "Failed y from 2"][..],
            ),
            (r"^(?P<a>\w+) again (?P=a)$", &["ab again ab"][..]),
            (r"^(x)?a(?<=a)(?(1)b)c$", &["ac", "xabc"][..]),
            (r"^[(?!]x(?>y|z)$", &["(xy", "!xz"][..]),
        ];
        for (p, lines) in cases {
            let t = translate(p).unwrap();
            let strict = Re::python(p, p).unwrap();
            let loose =
                regex::Regex::new(&relaxed(&t.pattern)).unwrap_or_else(|e| panic!("{p}: {e}"));
            for l in lines {
                assert!(strict.is_match(l), "{p} on {l}");
                assert!(loose.is_match(l), "relaxed {p} on {l}");
            }
        }
        // Relaxing keeps what is not backtracking as it was.
        assert_eq!(relaxed(r"^a[(?=]b\(c$"), r"^a[(?=]b\(c$");
    }

    #[test]
    fn a_runaway_pattern_gives_up_and_counts() {
        let re = Re::python(r"^(?:(a+)+)+(?=b)$", "runaway").unwrap();
        let line = "a".repeat(40) + "c";
        let before = BACKTRACK_GAVE_UP.load(Ordering::Relaxed);
        assert!(re.search(&line).is_none());
        assert!(BACKTRACK_GAVE_UP.load(Ordering::Relaxed) > before);
    }

    #[test]
    fn ascii_text_runs_on_the_ascii_twin_with_the_same_meaning() {
        let re = Re::python(r"^(?P<u>\S+) (?P<w>\w+)\b", "").unwrap();
        assert!(re.twin("root admin").is_some() && re.twin("r\u{f6}t x").is_none());
        for (line, u, w) in [
            ("root admin!", "root", "admin"),
            (
                "r\u{f6}\u{f6}t \u{e9}t\u{e9}!",
                "r\u{f6}\u{f6}t",
                "\u{e9}t\u{e9}",
            ),
        ] {
            let m = re.search(line).unwrap();
            assert_eq!(re.named(&m, line).collect::<Vec<_>>(), [("u", u), ("w", w)]);
            let at = re.search_at(line, 0).unwrap();
            assert_eq!((at.start, at.end), (m.start, m.end));
        }
        // A non-ASCII character that folds to an ASCII one (the Kelvin sign, `k`) keeps
        // the pattern on Unicode.
        let kelvin = Re::python(r"(?i)^\u212a$", "").unwrap();
        assert!(kelvin.twin("k").is_none());
        assert!(kelvin.search("k").is_some());
    }

    #[test]
    fn a_prefregex_content_tail_is_cut_where_the_whole_pattern_cuts_it() {
        let full = Re::python(r"^(?P<mlfid>\S+ )?(?:sshd\[\d+\]: )?(?P<content>.+)$", "").unwrap();
        let head = full.without_content_tail().expect("fail2ban's form");
        for line in [
            "gw sshd[12]: Failed password",
            "sshd[12]: x",
            "gw ",
            "nospace",
            "a b c d",
        ] {
            let whole = full.search(line).unwrap();
            let content = full.named(&whole, line).find(|(n, _)| *n == "content");
            let h = head.search(line).unwrap();
            if h.end < line.len() {
                assert_eq!(content, Some(("content", &line[h.end..])), "{line}");
                let before: Vec<_> = full
                    .named(&whole, line)
                    .filter(|(n, _)| *n != "content")
                    .collect();
                assert_eq!(head.named(&h, line).collect::<Vec<_>>(), before, "{line}");
            }
        }
        // Only fail2ban's form at the top level.
        for other in [
            r"^a(?P<content>.+)$|b(?P<content2>.+)$",
            r"^a(?P<content>.*)$",
            r"^a(?P<content>.+)",
            r"^a(?P<content>.+?)$",
        ] {
            let re = Re::python(other, "").unwrap();
            assert!(re.without_content_tail().is_none(), "{other}");
        }
    }

    #[test]
    fn anchored_patterns_are_searched_as_one_and_the_first_in_order_wins() {
        let pats: Vec<Re> = [r"^a(?P<x>\d)$", r"^(?P<y>\w)(?P<z>\d)$", r"^b"]
            .iter()
            .map(|p| Re::python(p, p).unwrap())
            .collect();
        let first = FirstOf::new(&pats, 1 << 20).expect("all anchored");
        let mut scratch = first.scratch();
        // Both the first and second match "a1": the first in order wins, its groups
        // numbered as in that pattern alone.
        let (i, m) = first.search(&pats, "a1", &mut scratch).unwrap();
        assert_eq!(i, 0);
        assert_eq!(pats[0].named(&m, "a1").collect::<Vec<_>>(), [("x", "1")]);
        let (i, m) = first.search(&pats, "c2", &mut scratch).unwrap();
        assert_eq!(i, 1);
        assert_eq!(
            pats[1].named(&m, "c2").collect::<Vec<_>>(),
            [("y", "c"), ("z", "2")]
        );
        assert_eq!(
            first.search(&pats, "bx", &mut scratch).map(|(i, _)| i),
            Some(2)
        );
        assert!(first.search(&pats, "xb", &mut scratch).is_none());
        // All-ASCII text goes to the ASCII engine, other text to the Unicode one: the same
        // groups where both apply, and Unicode classes where only they do.
        let words = [Re::python(r"^(?P<u>\S+) (?P<w>\w+)\s*$", "").unwrap()];
        let one = FirstOf::new(&words, 1 << 20).unwrap();
        let mut scratch = one.scratch();
        for (line, u, w) in [
            ("root admin ", "root", "admin"),
            (
                "r\u{f6}\u{f6}t \u{e9}t\u{e9}\u{2003}",
                "r\u{f6}\u{f6}t",
                "\u{e9}t\u{e9}",
            ),
        ] {
            let (_, m) = one.search(&words, line, &mut scratch).unwrap();
            let got: Vec<_> = words[0].named(&m, line).collect();
            assert_eq!(got, [("u", u), ("w", w)], "{line}");
            // The Unicode search is built only once a line needs it.
            assert_eq!(one.all.get().is_some(), !line.is_ascii(), "{line}");
        }
        // A line too long for the backtracker's memory is resolved by the pattern alone.
        let long = format!("z{}", "7".repeat(1 << 20));
        let words = [Re::python(r"^(?P<w>\w+)$", "").unwrap()];
        let one = FirstOf::new(&words, 1 << 20).unwrap();
        let (i, m) = one.search(&words, &long, &mut one.scratch()).unwrap();
        assert_eq!(
            (i, words[0].named(&m, &long).next()),
            (0, Some(("w", &long[..])))
        );
        // One unanchored pattern (or one in multi-line mode) and position would decide.
        for other in [r"b$", r"(?m)^b", r"^a|b"] {
            let mut more = pats.clone();
            more.push(Re::python(other, other).unwrap());
            assert!(FirstOf::new(&more, 1 << 20).is_none(), "{other}");
        }
        // Which groups every match fills: not an optional one, nor one inside an
        // alternative, nor one that may be empty.
        let flags = [Re::python(
            r"^(?P<always>x(?P<inner>y))(?P<maybe>z)?(?:(?P<either>a)|b)(?P<empty>c*)(?P<twice>d){2}$",
            "",
        )
        .unwrap()];
        let f = FirstOf::new(&flags, 1 << 20).unwrap();
        for (name, filled) in [
            ("always", true),
            ("inner", true),
            ("twice", true),
            ("maybe", false),
            ("either", false),
            ("empty", false),
            ("absent", false),
        ] {
            assert_eq!(f.always_fills(0, name), filled, "{name}");
        }
        let look = Re::python(r"^a(?=b)", "").unwrap();
        assert!(FirstOf::new(&[look], 1 << 20).is_none());
    }
}
