//! `[filters.NAME]` and filter files: a jail's filter, compiled.

use super::*;

pub(super) fn spec_of(f: &RawFilter) -> FilterSpec {
    FilterSpec {
        failregex: f.failregex.iter().map(|r| r.get_ref().clone()).collect(),
        ignoreregex: f.ignoreregex.iter().map(|r| r.get_ref().clone()).collect(),
        datepattern: f.datepattern.as_ref().map(|d| d.get_ref().clone()),
        prefregex: f.prefregex.as_ref().map(|d| d.get_ref().clone()),
    }
}

pub(super) fn compile_filter(
    src: &Source,
    name: &str,
    f: &RawFilter,
    whole: Range<usize>,
    usedns: bool,
) -> Result<Filter, ConfigError> {
    Filter::custom(name, &spec_of(f), usedns).map_err(|e| {
        let span = match e.part {
            FilterPart::Failregex(i) => f.failregex.get(i).map(|r| r.span()),
            FilterPart::Ignoreregex(i) => f.ignoreregex.get(i).map(|r| r.span()),
            FilterPart::Prefregex => f.prefregex.as_ref().map(|r| r.span()),
            FilterPart::Datepattern => f.datepattern.as_ref().map(|r| r.span()),
        };
        src.error(
            Some(span.unwrap_or(whole)),
            format!("filter {name}: {}", e.message),
        )
    })
}

/// A jail's filter as the text names it.
pub(super) enum FilterPlan {
    /// Compiled from the configuration (a `[filters.NAME]` table, a built-in).
    Ready { filter: Filter, shown: String },
    /// A filter file, read with the other files.
    File(NamedFilter),
}

/// A filter named by a jail's `filter = `, with what reading it needs.
pub(super) struct NamedFilter {
    pub(super) name: String,
    pub(super) options: BTreeMap<String, String>,
    pub(super) use_dns: bool,
    /// The jail reads journald (fail2ban's filters are told `logtype = journal`).
    pub(super) journal: bool,
    /// The jail's `filter` key, for mistakes.
    pub(super) at: Where,
    /// The name `status` shows (with its options).
    pub(super) shown: String,
}

impl FilterPlan {
    /// A built-in needs nothing from the disk: compiled now; anything else is a file.
    pub(super) fn named(f: NamedFilter, jail: &str) -> Result<Self, ConfigError> {
        if crate::filter::builtin::find(&f.name).is_some() {
            let (shown, filter) = f.read(jail, Path::new(""))?;
            Ok(Self::Ready { filter, shown })
        } else {
            Ok(Self::File(f))
        }
    }

    /// The filter and the name `status` shows; None with the mistake recorded.
    pub(super) fn load(
        self,
        jail: &str,
        filter_dir: &Path,
        mistakes: &mut Vec<ConfigError>,
    ) -> Option<(String, Filter)> {
        match self {
            Self::Ready { filter, shown } => Some((shown, filter)),
            Self::File(f) => f.read(jail, filter_dir).map_err(|e| mistakes.push(e)).ok(),
        }
    }
}

impl NamedFilter {
    fn read(&self, jail: &str, filter_dir: &Path) -> Result<(String, Filter), ConfigError> {
        let filter = load_filter(
            &self.name,
            &self.options,
            filter_dir,
            self.use_dns,
            self.journal,
        )
        .map_err(|e| match e {
            FilterLoadError::Fail2ban(e) if e.origin.line > 0 => ConfigError {
                file: e.origin.file.display().to_string(),
                line: e.origin.line,
                column: 0,
                message: format!("filter of jail {jail}: {}", e.message),
            },
            FilterLoadError::Toml(e) if e.line > 0 => e,
            other => self.at.error(other.to_string()),
        })?;
        Ok((self.shown.clone(), filter))
    }
}

/// Why a filter named in a jail (or given to `test-filter`) could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FilterLoadError {
    #[error("{0}")]
    Builtin(String),
    #[error("{0}")]
    Fail2ban(crate::filter::f2b::ini::IniError),
    #[error("{0}")]
    Toml(ConfigError),
}

/// A filter by name, as a jail's `filter = ` names it: a built-in (`sshd`, with `mode`), a
/// fail2ban filter file (a path, or NAME.conf in `filter_dir`) read with `options`, or a
/// banner TOML filter file (a path ending in `.toml`). `journal`: the jail reads journald,
/// which fail2ban filters are told as `logtype = journal` unless the options say otherwise.
pub fn load_filter(
    name: &str,
    options: &BTreeMap<String, String>,
    filter_dir: &Path,
    usedns: bool,
    journal: bool,
) -> Result<Filter, FilterLoadError> {
    if crate::filter::builtin::find(name).is_some() {
        if let Some(k) = options.keys().find(|k| *k != "mode") {
            return Err(FilterLoadError::Builtin(format!(
                "the built-in filter {name} takes only `mode`, not `{k}`"
            )));
        }
        let mode = options.get("mode").map_or("normal", String::as_str);
        return Filter::builtin(name, mode, usedns).map_err(FilterLoadError::Builtin);
    }
    let path = if name.contains('/') {
        PathBuf::from(name)
    } else {
        filter_dir.join(format!("{name}.conf"))
    };
    if path.extension().is_some_and(|e| e == "toml") {
        if !options.is_empty() {
            return Err(FilterLoadError::Builtin(format!(
                "a banner filter file takes no [options]: {name}"
            )));
        }
        return load_filter_file(&path.display().to_string(), usedns)
            .map_err(FilterLoadError::Toml);
    }
    if !path.exists() {
        return Err(FilterLoadError::Builtin(if name.contains('/') {
            format!("filter file {} does not exist", path.display())
        } else {
            format!(
                "no filter named `{name}`: not built in ({}), no [filters.{name}], and no {}",
                crate::filter::builtin::names()
                    .collect::<Vec<_>>()
                    .join(", "),
                path.display()
            )
        }));
    }
    let mut options = options.clone();
    options
        .entry("logtype".into())
        .or_insert_with(|| if journal { "journal" } else { "file" }.into());
    Filter::fail2ban_file(&path, &options, usedns).map_err(FilterLoadError::Fail2ban)
}

pub(super) fn load_filter_file(path: &str, usedns: bool) -> Result<Filter, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_string(),
        line: 0,
        column: 0,
        message: format!("filter file {path} cannot be read: {e}"),
    })?;
    let src = Source {
        name: path,
        text: &text,
    };
    let raw: RawFilter =
        toml::from_str(&text).map_err(|e| src.error(e.span(), e.message().trim().to_string()))?;
    let name = Path::new(path)
        .file_stem()
        .map_or_else(|| path.to_string(), |s| s.to_string_lossy().into_owned());
    compile_filter(&src, &name, &raw, 0..0, usedns)
}
