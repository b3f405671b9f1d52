//! A fail2ban filter file turned into what the engine runs: its `[Definition]` options after
//! fail2ban's two kinds of substitution. `%(x)s` is the INI reader's; `<x>` tags are resolved
//! afterwards against the jail's options (`mode`, `logtype`, ...), `[Init]` and any option
//! of `[Definition]`/`[DEFAULT]` or another section (`<lt_file/datepattern>`), recursively.
//! Tags nothing defines (`<HOST>`, `<F-USER>`) are left for the pattern compiler.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::ini::{IniError, Merged, Origin, Value};

/// The options a filter file may set.
const DEFINITION_KEYS: &[&str] = &[
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// More replacements of one tag than this means the definitions loop.
const MAX_TAG_REPLACE: usize = 25;

#[derive(Clone, Debug)]
pub struct FilterDef {
    pub name: String,
    pub path: PathBuf,
    pub prefregex: Option<Value>,
    pub failregex: Vec<Value>,
    pub ignoreregex: Vec<Value>,
    /// One date template per line (fail2ban allows several).
    pub datepattern: Option<Value>,
    pub maxlines: usize,
    /// Each line a journalctl match set (`FIELD=value` terms, `+` between alternatives).
    pub journalmatch: Vec<String>,
    pub usedns: Option<String>,
    /// The options the filter was read with (after `[Init]`): `mode`, `logtype`, ...
    pub options: BTreeMap<String, String>,
}

/// `name[key=value, key2="a, b"]` -> ("name", {key: value, ...}), as fail2ban-regex and
/// jail.conf write filter options.
pub fn split_options(spec: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let spec = spec.trim();
    let Some(open) = spec.find('[') else {
        return Ok((spec.to_string(), BTreeMap::new()));
    };
    let name = spec[..open].trim().to_string();
    let Some(body) = spec[open + 1..].strip_suffix(']') else {
        return Err(format!(
            "`{spec}`: options in [...] are not closed with `]`"
        ));
    };
    let mut options = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim().to_string();
        if key.is_empty() || key.contains(',') || key.contains(' ') {
            return Err(format!(
                "`{spec}`: expected key=value in the options, found `{key}`"
            ));
        }
        while chars.peek().is_some_and(|c| *c == ' ') {
            chars.next();
        }
        let value = match chars.peek() {
            Some(&q @ ('"' | '\'')) => {
                chars.next();
                let mut v = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '\\' && chars.peek() == Some(&q) {
                        v.push(q);
                        chars.next();
                    } else if c == q {
                        closed = true;
                        break;
                    } else {
                        v.push(c);
                    }
                }
                if !closed {
                    return Err(format!("`{spec}`: the value of `{key}` has no closing {q}"));
                }
                v
            }
            _ => {
                let v: String = chars.by_ref().take_while(|&c| c != ',').collect();
                v.trim().to_string()
            }
        };
        options.insert(key, value);
    }
    Ok((name, options))
}

/// Read a filter file with the jail's options (`mode`, `logtype`, ...).
pub fn load(path: &Path, options: &BTreeMap<String, String>) -> Result<FilterDef, IniError> {
    let merged = Merged::read(path)?;
    if !merged.has_section("Definition") {
        return Err(IniError {
            origin: Origin {
                file: path.into(),
                line: 0,
            },
            message: "no [Definition] section: is this a fail2ban filter?".into(),
        });
    }
    let vars = options.clone();
    // The jail's options, then [Init] (also kept as known/NAME), as fail2ban's
    // DefinitionInitConfigReader builds them.
    let mut init = options.clone();
    for key in merged.own_keys("Init") {
        if let Some(v) = merged.get("Init", &key, &BTreeMap::new())? {
            if !key.starts_with("known/") {
                init.insert(format!("known/{key}"), v.text.clone());
            }
            init.entry(key).or_insert(v.text);
        }
    }
    let mut combined: BTreeMap<String, Value> = BTreeMap::new();
    for key in DEFINITION_KEYS {
        // [Init] (and the jail's options) override [Definition].
        let from_init =
            options.get(*key).is_none() && merged.own_keys("Init").iter().any(|k| k == key);
        let v = if from_init {
            merged.get("Init", key, &BTreeMap::new())?
        } else {
            merged.get("Definition", key, &vars)?
        };
        if let Some(v) = v {
            combined.insert(key.to_string(), v);
        }
    }
    let resolve = |key: &str| -> Result<Option<Value>, IniError> {
        let Some(v) = combined.get(key) else {
            return Ok(None);
        };
        let text = substitute(key, &v.text, &init, &merged, &vars, &v.origin)?;
        Ok(Some(Value {
            text,
            origin: v.origin.clone(),
        }))
    };
    let lines = |v: Option<Value>| -> Vec<Value> {
        let Some(v) = v else { return Vec::new() };
        v.text
            .split('\n')
            .filter(|l| !l.trim().is_empty())
            .map(|l| Value {
                text: l.to_string(),
                origin: v.origin.clone(),
            })
            .collect()
    };
    let maxlines = match resolve("maxlines")? {
        None => 1,
        Some(v) if v.text.trim().is_empty() => 1,
        Some(v) => v
            .text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| IniError {
                origin: v.origin.clone(),
                message: format!(
                    "maxlines `{}` is not a number from 1 to 1000",
                    v.text.trim()
                ),
            })?,
    };
    let nonempty = |v: Option<Value>| v.filter(|v| !v.text.trim().is_empty());
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let mut opts_out = init.clone();
    opts_out.retain(|k, _| !k.starts_with("known/"));
    Ok(FilterDef {
        name,
        path: path.to_path_buf(),
        prefregex: nonempty(resolve("prefregex")?),
        failregex: lines(resolve("failregex")?),
        ignoreregex: lines(resolve("ignoreregex")?),
        datepattern: nonempty(resolve("datepattern")?),
        maxlines,
        journalmatch: lines(resolve("journalmatch")?)
            .into_iter()
            .map(|v| v.text.trim().to_string())
            .collect(),
        usedns: nonempty(resolve("usedns")?).map(|v| v.text.trim().to_string()),
        options: opts_out,
    })
}

/// Replace `<tag>`s in `value` until none that something defines is left.
fn substitute(
    key: &str,
    value: &str,
    init: &BTreeMap<String, String>,
    merged: &Merged,
    vars: &BTreeMap<String, String>,
    origin: &Origin,
) -> Result<String, IniError> {
    let mut value = value.to_string();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    // Passes from the start until one replaces nothing: a replacement can complete a tag
    // that began before it (`<lt_<logtype>/pre>`).
    loop {
        let before = value.clone();
        let mut from = 0;
        while let Some((start, tag)) = next_tag(&value, from) {
            let tag = tag.to_string();
            let repl = match init.get(&tag) {
                Some(v) => Some(v.clone()),
                None if DEFINITION_KEYS.contains(&tag.as_str()) && tag != key => {
                    merged.get("Definition", &tag, vars)?.map(|v| v.text)
                }
                // Option names are case-insensitive, section names are not.
                None => {
                    let name = match tag.split_once('/') {
                        Some((sec, opt)) => format!("{sec}/{}", opt.to_ascii_lowercase()),
                        None => tag.to_ascii_lowercase(),
                    };
                    merged.get_ex("Definition", &name, vars)?.map(|v| v.text)
                }
            };
            let Some(repl) = repl else {
                from = start + tag.len() + 2;
                continue;
            };
            let n = counts.entry(tag.clone()).or_insert(0);
            *n += 1;
            if tag == key || *n > MAX_TAG_REPLACE {
                return Err(IniError {
                    origin: origin.clone(),
                    message: format!("`<{tag}>` in {key} refers to itself (the definitions loop)"),
                });
            }
            value = value.replace(&format!("<{tag}>"), &repl);
            from = start;
        }
        if value == before {
            return Ok(value);
        }
    }
}

/// The next `<name>` (no spaces or angle brackets inside) at or after `from`.
fn next_tag(s: &str, from: usize) -> Option<(usize, &str)> {
    let mut at = from;
    while let Some(open) = s[at..].find('<').map(|i| i + at) {
        let rest = &s[open + 1..];
        let end = rest.find(['>', '<', ' ']);
        match end {
            Some(e) if e > 0 && rest.as_bytes()[e] == b'>' => return Some((open, &rest[..e])),
            _ => at = open + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_in_brackets_split_like_fail2ban() {
        let (n, o) =
            split_options(r#"sshd[mode=aggressive, logtype="journal", x='a, b']"#).unwrap();
        assert_eq!(n, "sshd");
        assert_eq!(o["mode"], "aggressive");
        assert_eq!(o["logtype"], "journal");
        assert_eq!(o["x"], "a, b");
        assert_eq!(split_options("plain").unwrap().1.len(), 0);
        assert!(split_options("x[mode=a").is_err());
        assert!(split_options("x[mode='a]").is_err());
    }

    #[test]
    fn tags_resolve_through_options_sections_and_modes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("common.conf"),
            "[DEFAULT]\nlogtype = file\n__prefix = <lt_<logtype>/pre>\n[lt_file]\npre = F:\n[lt_journal]\npre = J:\n",
        )
        .unwrap();
        let p = d.path().join("x.conf");
        std::fs::write(
            &p,
            "[INCLUDES]\nbefore = common.conf\n[Definition]\nfailregex = ^<__prefix> <mode-re> <HOST>$\n            ^<block> <F-USER>.+</F-USER> <HOST>$\nmode-re = <mdre-<mode>>\nmdre-normal = n\nmdre-aggressive = a\nmaxlines = 2\njournalmatch = _SYSTEMD_UNIT=x.service\n[Init]\nmode = normal\nblock = blk\n",
        )
        .unwrap();
        let def = load(&p, &BTreeMap::new()).unwrap();
        let texts: Vec<&str> = def.failregex.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(texts, ["^F: n <HOST>$", "^blk <F-USER>.+</F-USER> <HOST>$"]);
        assert_eq!(def.maxlines, 2);
        assert_eq!(def.journalmatch, ["_SYSTEMD_UNIT=x.service"]);
        let opts = BTreeMap::from([
            ("mode".to_string(), "aggressive".to_string()),
            ("logtype".to_string(), "journal".to_string()),
        ]);
        let def = load(&p, &opts).unwrap();
        assert_eq!(def.failregex[0].text, "^J: a <HOST>$");
    }

    #[test]
    fn a_tag_that_loops_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.conf");
        std::fs::write(
            &p,
            "[Definition]\nfailregex = <a> <HOST>\na = <b>\nb = <a>\n",
        )
        .unwrap();
        let e = load(&p, &BTreeMap::new()).unwrap_err();
        assert!(e.message.contains("loop"), "{e}");
        assert_eq!(e.origin.line, 2);
    }
}
