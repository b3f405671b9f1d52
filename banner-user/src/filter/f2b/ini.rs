//! fail2ban's configuration files, read the way fail2ban reads them: Python `configparser`
//! syntax (sections, `key = value` or `key: value`, indented continuation lines, `#`/`;`
//! comment lines, ` ;` inline comments, case-insensitive keys), `[INCLUDES] before/after`,
//! every `X.conf` followed by its `X.local`, and `%(name)s` interpolation including
//! fail2ban's `%(known/name)s`, `%(default/name)s` and `%(section/name)s` forms.
//!
//! Every value remembers the file and line it came from, so an error can point at it.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Where a value (or a mistake) is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<Path>,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct IniError {
    pub origin: Origin,
    pub message: String,
}

impl IniError {
    fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            origin: Origin {
                file: Arc::from(file),
                line,
            },
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub origin: Origin,
}

type Section = BTreeMap<String, Value>;

/// One file, parsed: sections in file order (`DEFAULT` among them).
#[derive(Clone, Debug, Default)]
pub struct IniFile {
    pub sections: Vec<(String, Section)>,
}

impl IniFile {
    pub fn parse(text: &str, file: &Path) -> Result<Self, IniError> {
        let file_arc: Arc<Path> = Arc::from(file);
        let mut out = IniFile::default();
        // (key, value lines, line number of the key, indent of the key line)
        let mut open: Option<(String, Vec<String>, usize, usize)> = None;
        let flush = |out: &mut IniFile, open: &mut Option<(String, Vec<String>, usize, usize)>| {
            if let Some((key, mut lines, line, _)) = open.take() {
                while lines.last().is_some_and(|l| l.is_empty()) {
                    lines.pop();
                }
                if let Some((_, section)) = out.sections.last_mut() {
                    section.insert(
                        key,
                        Value {
                            text: lines.join("\n"),
                            origin: Origin {
                                file: file_arc.clone(),
                                line,
                            },
                        },
                    );
                }
            }
        };
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            let value_part = strip_inline_comment(line);
            if value_part.trim().is_empty() {
                if let Some((_, lines, _, _)) = open.as_mut() {
                    lines.push(String::new());
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let Some((_, lines, _, key_indent)) = open.as_mut() {
                if indent > *key_indent {
                    lines.push(value_part.trim().to_string());
                    continue;
                }
            }
            flush(&mut out, &mut open);
            if let Some(name) = trimmed.strip_prefix('[') {
                let Some(name) = name.strip_suffix(']') else {
                    return Err(IniError::at(
                        file,
                        n,
                        format!("section header `{trimmed}` is not closed with `]`"),
                    ));
                };
                out.sections.push((name.trim().to_string(), Section::new()));
                continue;
            }
            let Some(cut) = value_part.find(['=', ':']) else {
                return Err(IniError::at(
                    file,
                    n,
                    format!("`{trimmed}` is neither `[section]` nor `key = value`"),
                ));
            };
            if out.sections.is_empty() {
                return Err(IniError::at(file, n, "a key before any [section] header"));
            }
            let key = value_part[..cut].trim().to_ascii_lowercase();
            if key.is_empty() {
                return Err(IniError::at(file, n, "a value without a key"));
            }
            let value = value_part[cut + 1..].trim().to_string();
            open = Some((key, vec![value], n, indent));
        }
        flush(&mut out, &mut open);
        Ok(out)
    }
}

/// Python's `inline_comment_prefixes = ";"`: a `;` after whitespace starts a comment.
fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b';' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// Several files merged in fail2ban's order, with the values each later file replaced kept
/// under `KNOWN/<section>` (what `%(known/x)s` in a `.local` refers to).
#[derive(Clone, Debug, Default)]
pub struct Merged {
    pub defaults: Section,
    pub sections: BTreeMap<String, Section>,
    pub files: Vec<PathBuf>,
}

/// Deepest `%(x)s` chain followed (Python's limit).
const MAX_DEPTH: usize = 10;

impl Merged {
    /// Read `path` with its includes and `.local` companions. A missing `.conf` include is an
    /// error; a missing `.local` is normal (fail2ban ships none) and skipped.
    pub fn read(path: &Path) -> Result<Self, IniError> {
        let mut merged = Merged::default();
        let mut chain = Vec::new();
        merged.read_with_includes(path, &mut chain, None, true)?;
        Ok(merged)
    }

    /// Read files in the order given (each with its includes, none with an automatic
    /// `.local`): fail2ban's jail.conf, jail.d/*.conf, jail.local, jail.d/*.local.
    /// Files that do not exist are skipped.
    pub fn read_in_order(paths: &[PathBuf]) -> Result<Self, IniError> {
        let mut merged = Merged::default();
        for p in paths.iter().filter(|p| p.exists()) {
            let mut chain = Vec::new();
            merged.read_with_includes(p, &mut chain, None, false)?;
        }
        Ok(merged)
    }

    /// Section names in the merged files (not `DEFAULT`, `INCLUDES` or the `KNOWN/` copies).
    pub fn section_names(&self) -> Vec<String> {
        self.sections
            .keys()
            .filter(|n| *n != "INCLUDES" && !n.starts_with("KNOWN/"))
            .cloned()
            .collect()
    }

    fn read_with_includes(
        &mut self,
        path: &Path,
        chain: &mut Vec<PathBuf>,
        named_at: Option<&Origin>,
        with_local: bool,
    ) -> Result<(), IniError> {
        let mut companions = vec![path.to_path_buf()];
        if with_local && path.extension().is_some_and(|e| e == "conf") {
            let local = path.with_extension("local");
            if local.exists() {
                companions.push(local);
            }
        }
        for file in companions {
            if chain.contains(&file) {
                let at = named_at.cloned().unwrap_or(Origin {
                    file: Arc::from(file.as_path()),
                    line: 0,
                });
                let cycle: Vec<String> = chain
                    .iter()
                    .chain(std::iter::once(&file))
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(IniError {
                    origin: at,
                    message: format!("circular include: {}", cycle.join(" -> ")),
                });
            }
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_local(&file) => continue,
                Err(e) => {
                    let message = format!("cannot read {}: {e}", file.display());
                    return Err(match named_at {
                        Some(at) => IniError {
                            origin: at.clone(),
                            message: format!("include {message}"),
                        },
                        None => IniError::at(&file, 0, message),
                    });
                }
            };
            let parsed = IniFile::parse(&text, &file)?;
            let includes = parsed
                .sections
                .iter()
                .find(|(n, _)| n == "INCLUDES")
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
            chain.push(file.clone());
            if let Some(before) = includes.get("before") {
                for name in before.text.lines().filter(|l| !l.trim().is_empty()) {
                    self.read_with_includes(
                        &dir.join(name.trim()),
                        chain,
                        Some(&before.origin),
                        true,
                    )?;
                }
            }
            self.merge(&parsed);
            self.files.push(file.clone());
            if let Some(after) = includes.get("after") {
                for name in after.text.lines().filter(|l| !l.trim().is_empty()) {
                    self.read_with_includes(
                        &dir.join(name.trim()),
                        chain,
                        Some(&after.origin),
                        true,
                    )?;
                }
            }
            chain.pop();
        }
        Ok(())
    }

    fn merge(&mut self, file: &IniFile) {
        for (name, section) in &file.sections {
            if name == "DEFAULT" {
                self.defaults
                    .extend(section.iter().map(|(k, v)| (k.clone(), v.clone())));
                continue;
            }
            match self.sections.get_mut(name) {
                Some(existing) => {
                    let replaced: Section = existing
                        .iter()
                        .filter(|(k, _)| section.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    existing.extend(section.iter().map(|(k, v)| (k.clone(), v.clone())));
                    self.sections
                        .entry(format!("KNOWN/{name}"))
                        .or_default()
                        .extend(replaced);
                }
                None => {
                    self.sections.insert(name.clone(), section.clone());
                }
            }
        }
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    /// The keys a section defines itself (not those it inherits from `[DEFAULT]`).
    pub fn own_keys(&self, section: &str) -> Vec<String> {
        self.sections
            .get(section)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The uninterpolated value: `vars` first, then the section, then `[DEFAULT]` (Python's
    /// lookup chain).
    pub fn raw(&self, section: &str, key: &str, vars: &BTreeMap<String, String>) -> Option<Value> {
        if let Some(v) = vars.get(key) {
            return Some(Value {
                text: v.clone(),
                origin: Origin {
                    file: Arc::from(Path::new("<options>")),
                    line: 0,
                },
            });
        }
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.defaults.get(key))
            .cloned()
    }

    /// A value with `%(x)s` interpolated; None when the key is not there.
    pub fn get(
        &self,
        section: &str,
        key: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<Option<Value>, IniError> {
        let Some(raw) = self.raw(section, key, vars) else {
            return Ok(None);
        };
        let text = self.interpolate(&raw.text, section, vars, &raw.origin, 0)?;
        Ok(Some(Value {
            text,
            origin: raw.origin,
        }))
    }

    /// fail2ban's `get_ex`: a name may be `section/key`, `known/key` or `default/key`.
    pub fn get_ex(
        &self,
        section: &str,
        name: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<Option<Value>, IniError> {
        if let Some((sec, key)) = name.split_once('/') {
            let candidates: Vec<String> = match sec.to_ascii_lowercase().as_str() {
                "known" => vec![format!("KNOWN/{section}"), section.to_string()],
                "default" => vec!["DEFAULT".into()],
                _ => vec![sec.to_string()],
            };
            for candidate in candidates {
                let found = if candidate == "DEFAULT" {
                    self.defaults.get(key).cloned()
                } else {
                    self.sections
                        .get(&candidate)
                        .and_then(|s| s.get(key))
                        .cloned()
                };
                if let Some(raw) = found {
                    let text = self.interpolate(&raw.text, &candidate, vars, &raw.origin, 0)?;
                    return Ok(Some(Value {
                        text,
                        origin: raw.origin,
                    }));
                }
            }
        }
        self.get(section, name, vars)
    }

    fn interpolate(
        &self,
        text: &str,
        section: &str,
        vars: &BTreeMap<String, String>,
        origin: &Origin,
        depth: usize,
    ) -> Result<String, IniError> {
        if !text.contains('%') {
            return Ok(text.to_string());
        }
        if depth > MAX_DEPTH {
            return Err(IniError {
                origin: origin.clone(),
                message: format!("%(...)s references nest deeper than {MAX_DEPTH} (a loop?)"),
            });
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("%%") {
                out.push('%');
                rest = after;
                continue;
            }
            let Some(inner) = tail.strip_prefix("%(") else {
                return Err(IniError {
                    origin: origin.clone(),
                    message: format!(
                        "a lone `%` (write `%%` for a percent sign) near `{}`",
                        tail.chars().take(20).collect::<String>()
                    ),
                });
            };
            let Some(close) = inner.find(")s") else {
                return Err(IniError {
                    origin: origin.clone(),
                    message: format!(
                        "`%(` is never closed with `)s` near `{}`",
                        tail.chars().take(20).collect::<String>()
                    ),
                });
            };
            let name = inner[..close].to_ascii_lowercase();
            rest = &inner[close + 2..];
            let value = self
                .lookup_reference(section, &name, vars)
                .ok_or_else(|| IniError {
                    origin: origin.clone(),
                    message: format!("`%({name})s` names nothing defined"),
                })?;
            out.push_str(&self.interpolate(&value, section, vars, origin, depth + 1)?);
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup_reference(
        &self,
        section: &str,
        name: &str,
        vars: &BTreeMap<String, String>,
    ) -> Option<String> {
        if let Some((sec, key)) = name.split_once('/') {
            let found = match sec {
                "known" => self
                    .sections
                    .get(&format!("KNOWN/{section}"))
                    .and_then(|s| s.get(key))
                    .or_else(|| self.defaults.get(key)),
                "default" => self.defaults.get(key),
                other => self
                    .sections
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(other))
                    .and_then(|(_, s)| s.get(key))
                    .or_else(|| self.defaults.get(key)),
            };
            if let Some(v) = found {
                return Some(v.text.clone());
            }
        }
        self.raw(section, name, vars).map(|v| v.text)
    }
}

fn is_local(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "local")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn values_continue_on_indented_lines_and_comments_drop_out() {
        let f = IniFile::parse(
            "[Definition]\nfailregex = ^one <HOST>$\n            # a comment\n            ^two <HOST>$ ; inline\nKey: v;x\n\n[B]\nx=1\n",
            Path::new("t.conf"),
        )
        .unwrap();
        let def = &f.sections[0].1;
        assert_eq!(def["failregex"].text, "^one <HOST>$\n^two <HOST>$");
        assert_eq!(def["failregex"].origin.line, 2);
        // `;` right after text is no comment; keys are case-insensitive.
        assert_eq!(def["key"].text, "v;x");
        assert_eq!(f.sections[1].1["x"].text, "1");
    }

    #[test]
    fn malformed_lines_are_named_with_their_line() {
        let e = IniFile::parse("[A]\nx = 1\nnot a pair\n", Path::new("f.conf")).unwrap_err();
        assert_eq!(e.origin.line, 3);
        assert!(e.message.contains("not a pair"), "{e}");
        let e = IniFile::parse("[A\n", Path::new("f.conf")).unwrap_err();
        assert!(e.message.contains("not closed"), "{e}");
    }

    #[test]
    fn includes_locals_and_known_values_merge_in_fail2ban_order() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "common.conf",
            "[INCLUDES]\nafter = common.local\n[DEFAULT]\n_daemon = \\S*\nprefix = <_daemon>:\n",
        );
        let main = write(
            d.path(),
            "svc.conf",
            "[INCLUDES]\nbefore = common.conf\n[DEFAULT]\n_daemon = svc\n[Definition]\nfailregex = ^%(prefix)s bad <HOST>$\nmode = normal\n",
        );
        write(
            d.path(),
            "svc.local",
            "[Definition]\nfailregex = %(known/failregex)s\n            ^worse <HOST>$\n",
        );
        let m = Merged::read(&main).unwrap();
        let v = m
            .get("Definition", "failregex", &BTreeMap::new())
            .unwrap()
            .unwrap();
        assert_eq!(v.text, "^<_daemon>: bad <HOST>$\n^worse <HOST>$");
        assert!(v.origin.file.ends_with("svc.local"));
        // svc.conf's DEFAULT came after common.conf's.
        assert_eq!(
            m.get("Definition", "_daemon", &BTreeMap::new())
                .unwrap()
                .unwrap()
                .text,
            "svc"
        );
        // Options given by the jail win over the file.
        let vars = BTreeMap::from([("mode".to_string(), "aggressive".to_string())]);
        assert_eq!(
            m.get("Definition", "mode", &vars).unwrap().unwrap().text,
            "aggressive"
        );
        assert_eq!(
            m.get_ex("Definition", "default/_daemon", &BTreeMap::new())
                .unwrap()
                .unwrap()
                .text,
            "svc"
        );
    }

    #[test]
    fn a_missing_or_circular_include_is_an_error_at_its_line() {
        let d = tempfile::tempdir().unwrap();
        let a = write(d.path(), "a.conf", "[INCLUDES]\n\nbefore = gone.conf\n");
        let e = Merged::read(&a).unwrap_err();
        assert_eq!(e.origin.line, 3, "{e}");
        assert!(e.message.contains("gone.conf"), "{e}");
        write(d.path(), "b.conf", "[INCLUDES]\nbefore = c.conf\n");
        write(d.path(), "c.conf", "[INCLUDES]\nafter = b.conf\n");
        let e = Merged::read(&d.path().join("b.conf")).unwrap_err();
        assert!(e.message.contains("circular include"), "{e}");
        assert!(
            e.origin.file.ends_with("c.conf") && e.origin.line == 2,
            "{e}"
        );
        // A .local that is not there is normal.
        let ok = write(
            d.path(),
            "d.conf",
            "[INCLUDES]\nafter = d-extra.local\n[A]\nx = 1\n",
        );
        assert!(Merged::read(&ok).is_ok());
    }

    #[test]
    fn interpolation_mistakes_name_the_value() {
        let d = tempfile::tempdir().unwrap();
        let a = write(
            d.path(),
            "a.conf",
            "[A]\nx = %(nothing)s\ny = 100%\nz = %(z)s\n",
        );
        let m = Merged::read(&a).unwrap();
        let none = BTreeMap::new();
        let e = m.get("A", "x", &none).unwrap_err();
        assert_eq!(e.origin.line, 2);
        assert!(e.message.contains("nothing"), "{e}");
        assert!(m
            .get("A", "y", &none)
            .unwrap_err()
            .message
            .contains("lone `%`"));
        assert!(m
            .get("A", "z", &none)
            .unwrap_err()
            .message
            .contains("deeper"));
    }
}
