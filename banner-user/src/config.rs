//! Configuration: TOML parsed into raw serde structs (every key known, every value spanned),
//! then resolved into validated settings. Every error names `file:line:column` and what is
//! wrong there; nothing starts on a config with an error.

use std::{
    collections::BTreeMap,
    fmt,
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::Deserialize;
use toml::Spanned;

use crate::{
    addr::IpPrefix,
    duration::{parse_duration, BanLength},
    filter::{Filter, FilterPart, FilterSpec},
    jail::{Increment, JailPolicy, RECIDIVE},
    model::BlockType,
};

/// The configuration banner runs on when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");
/// Where the daemon looks for a configuration file by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/banner/banner.toml";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Source text and its name, to turn byte spans into line:column.
struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        ConfigError {
            file: self.name.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.error(Some(value.span()), message)
    }
}

// ---------------------------------------------------------------------------------------------
// Raw: exactly what the file says.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    banner: RawBanner,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    jails: BTreeMap<String, Spanned<RawJail>>,
    #[serde(default)]
    filters: BTreeMap<String, Spanned<RawFilter>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBanner {
    interfaces: Option<Vec<Spanned<String>>>,
    backend: Option<Spanned<String>>,
    socket: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    bpffs_dir: Option<Spanned<String>>,
    keep_on_exit: Option<bool>,
    hosts_deny_path: Option<Spanned<String>>,
    max_exact_bans: Option<Spanned<i64>>,
    max_prefix_bans: Option<Spanned<i64>>,
}

/// A duration written as a string ("10m") or as seconds (600).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Text(String),
    Seconds(i64),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    bantime: Option<Spanned<RawDuration>>,
    findtime: Option<Spanned<RawDuration>>,
    maxretry: Option<Spanned<i64>>,
    blocktype: Option<Spanned<String>>,
    ignoreip: Option<Vec<Spanned<String>>>,
    ignoreself: Option<bool>,
    ignore_attached_subnets: Option<bool>,
    bantime_increment: Option<RawIncrement>,
    max_tracked: Option<Spanned<i64>>,
    usedns: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncrement {
    enabled: Option<bool>,
    factor: Option<Spanned<f64>>,
    maxtime: Option<Spanned<RawDuration>>,
}

/// A string or a list of strings (`logpath = "/var/log/auth.log"` or `[...]`).
#[derive(Debug)]
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJail {
    enabled: Option<bool>,
    filter: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    logpath: Option<Spanned<OneOrMany>>,
    journalmatch: Option<Spanned<OneOrMany>>,
    bantime: Option<Spanned<RawDuration>>,
    findtime: Option<Spanned<RawDuration>>,
    maxretry: Option<Spanned<i64>>,
    blocktype: Option<Spanned<String>>,
    ignoreip: Option<Vec<Spanned<String>>>,
    bantime_increment: Option<RawIncrement>,
    max_tracked: Option<Spanned<i64>>,
    usedns: Option<Spanned<String>>,
    hosts_deny: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    #[serde(default)]
    failregex: Vec<Spanned<String>>,
    #[serde(default)]
    ignoreregex: Vec<Spanned<String>>,
    datepattern: Option<Spanned<String>>,
    prefregex: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------------------------
// Resolved: what the daemon runs on.

/// Which enforcement to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// XDP native, then XDP generic (then netfilter, where available).
    Auto,
    /// XDP, native with generic fallback per interface.
    Xdp,
    /// XDP in generic (skb) mode only.
    XdpGeneric,
    /// An nftables table of our own.
    Nftables,
    /// iptables rules matching ipsets.
    Iptables,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "xdp" => Ok(Self::Xdp),
            "xdp-generic" => Ok(Self::XdpGeneric),
            "nftables" => Ok(Self::Nftables),
            "iptables" => Ok(Self::Iptables),
            other => Err(format!(
                "unknown backend `{other}` (expected auto, xdp, xdp-generic, nftables or iptables)"
            )),
        }
    }
}

/// One jail, resolved: its compiled filter, its sources and its numbers.
#[derive(Clone, Debug)]
pub struct JailConfig {
    pub name: String,
    /// The filter's name as configured (e.g. `sshd[mode=aggressive]`).
    pub filter_name: String,
    pub filter: Arc<Filter>,
    pub logpaths: Vec<String>,
    pub journalmatch: Vec<String>,
    pub policy: JailPolicy,
    /// Addresses this jail never counts (besides the global allowlist).
    pub ignoreip: Vec<IpPrefix>,
    /// Also list this jail's bans in hosts.deny (TCP Wrappers).
    pub hosts_deny: bool,
}

impl JailConfig {
    pub fn source_count(&self) -> usize {
        self.logpaths.len() + usize::from(!self.journalmatch.is_empty())
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Where this configuration came from, for messages.
    pub origin: String,
    /// Interfaces to attach to; empty means "the default route's".
    pub interfaces: Vec<String>,
    pub backend: BackendChoice,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub bpffs_dir: PathBuf,
    pub keep_on_exit: bool,
    /// Where jails with `hosts_deny = true` write their bans.
    pub hosts_deny_path: PathBuf,
    pub max_exact_bans: u32,
    pub max_prefix_bans: u32,
    pub bantime: Duration,
    pub findtime: Duration,
    pub maxretry: u32,
    pub blocktype: BlockType,
    pub ignoreip: Vec<IpPrefix>,
    pub ignoreself: bool,
    pub ignore_attached_subnets: bool,
    pub increment: Increment,
    pub max_tracked: usize,
    pub usedns: bool,
    /// Enabled log jails, by name.
    pub jails: Vec<JailConfig>,
    /// The recidive jail's numbers, if enabled.
    pub recidive: Option<JailPolicy>,
}

impl Config {
    /// The embedded default configuration.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::parse(EMBEDDED_DEFAULT, "<embedded default>")
    }

    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &name)
    }

    /// Parse and validate configuration text. Keys absent from `text` take the embedded
    /// defaults.
    pub fn parse(text: &str, name: &str) -> Result<Self, ConfigError> {
        let src = Source { name, text };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| src.error(e.span(), e.message().trim().to_string()))?;
        let mut cfg = Self::builtin(name);
        resolve_banner(&src, raw.banner, &mut cfg)?;
        resolve_defaults(&src, raw.defaults, &mut cfg)?;
        resolve_jails(&src, raw.jails, &raw.filters, &mut cfg)?;
        Ok(cfg)
    }

    /// The values every key falls back to (the same as the embedded default file).
    fn builtin(origin: &str) -> Self {
        Self {
            origin: origin.to_string(),
            interfaces: Vec::new(),
            backend: BackendChoice::Auto,
            socket: PathBuf::from("/run/banner/banner.sock"),
            state_dir: PathBuf::from("/var/lib/banner"),
            bpffs_dir: PathBuf::from("/sys/fs/bpf/banner"),
            keep_on_exit: false,
            hosts_deny_path: PathBuf::from("/etc/hosts.deny"),
            max_exact_bans: banner_common::DEFAULT_MAX_EXACT_BANS,
            max_prefix_bans: banner_common::DEFAULT_MAX_PREFIX_BANS,
            bantime: Duration::from_secs(3_600),
            findtime: Duration::from_secs(600),
            maxretry: 3,
            blocktype: BlockType::Tarpit,
            ignoreip: Vec::new(),
            ignoreself: true,
            ignore_attached_subnets: true,
            increment: Increment::default(),
            max_tracked: 1_000_000,
            usedns: false,
            jails: Vec::new(),
            recidive: None,
        }
    }

    /// The numbers a jail gets where it says nothing itself.
    pub fn default_policy(&self) -> JailPolicy {
        JailPolicy {
            bantime: BanLength::For(self.bantime),
            findtime: self.findtime,
            maxretry: self.maxretry,
            blocktype: self.blocktype,
            increment: self.increment,
            max_tracked: self.max_tracked,
        }
    }

    pub fn jail(&self, name: &str) -> Option<&JailConfig> {
        self.jails.iter().find(|j| j.name == name)
    }
}

fn resolve_banner(src: &Source, raw: RawBanner, cfg: &mut Config) -> Result<(), ConfigError> {
    if let Some(ifaces) = raw.interfaces {
        cfg.interfaces = Vec::new();
        for i in ifaces {
            let name = i.get_ref();
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                return Err(src.at(&i, format!("`{name}` is not a valid interface name")));
            }
            cfg.interfaces.push(name.clone());
        }
    }
    if let Some(b) = raw.backend {
        cfg.backend = b.get_ref().parse().map_err(|e: String| src.at(&b, e))?;
    }
    let path = |v: &Spanned<String>| -> Result<PathBuf, ConfigError> {
        let p = PathBuf::from(v.get_ref());
        if !p.is_absolute() {
            return Err(src.at(v, format!("`{}` must be an absolute path", v.get_ref())));
        }
        Ok(p)
    };
    if let Some(s) = &raw.socket {
        cfg.socket = path(s)?;
    }
    if let Some(s) = &raw.state_dir {
        cfg.state_dir = path(s)?;
    }
    if let Some(s) = &raw.bpffs_dir {
        cfg.bpffs_dir = path(s)?;
    }
    if let Some(s) = &raw.hosts_deny_path {
        cfg.hosts_deny_path = path(s)?;
    }
    if let Some(k) = raw.keep_on_exit {
        cfg.keep_on_exit = k;
    }
    let count = |v: &Spanned<i64>, what: &str| -> Result<u32, ConfigError> {
        u32::try_from(*v.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| src.at(v, format!("{what} must be between 1 and {}", u32::MAX)))
    };
    if let Some(v) = &raw.max_exact_bans {
        cfg.max_exact_bans = count(v, "max_exact_bans")?;
    }
    if let Some(v) = &raw.max_prefix_bans {
        cfg.max_prefix_bans = count(v, "max_prefix_bans")?;
    }
    Ok(())
}

fn duration(src: &Source, v: &Spanned<RawDuration>, key: &str) -> Result<Duration, ConfigError> {
    match v.get_ref() {
        RawDuration::Text(t) => parse_duration(t).map_err(|e| src.at(v, format!("{key}: {e}"))),
        RawDuration::Seconds(n) if *n > 0 => Ok(Duration::from_secs(*n as u64)),
        RawDuration::Seconds(n) => {
            Err(src.at(v, format!("{key}: {n} is not a positive number of seconds")))
        }
    }
}

fn resolve_defaults(src: &Source, raw: RawDefaults, cfg: &mut Config) -> Result<(), ConfigError> {
    if let Some(v) = &raw.bantime {
        cfg.bantime = duration(src, v, "bantime")?;
    }
    if let Some(v) = &raw.findtime {
        cfg.findtime = duration(src, v, "findtime")?;
    }
    if let Some(v) = &raw.maxretry {
        cfg.maxretry = u32::try_from(*v.get_ref())
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| src.at(v, "maxretry must be between 1 and 1000"))?;
    }
    if let Some(v) = &raw.blocktype {
        cfg.blocktype = v.get_ref().parse().map_err(|e| src.at(v, format!("{e}")))?;
    }
    if let Some(list) = &raw.ignoreip {
        cfg.ignoreip = Vec::new();
        for entry in list {
            let net: IpPrefix = entry
                .get_ref()
                .parse()
                .map_err(|e| src.at(entry, format!("ignoreip: {e}")))?;
            cfg.ignoreip.push(net);
        }
    }
    if let Some(v) = raw.ignoreself {
        cfg.ignoreself = v;
    }
    if let Some(v) = raw.ignore_attached_subnets {
        cfg.ignore_attached_subnets = v;
    }
    if let Some(inc) = &raw.bantime_increment {
        cfg.increment = increment(src, inc, cfg.increment)?;
    }
    if let Some(v) = &raw.max_tracked {
        cfg.max_tracked = max_tracked(src, v)?;
    }
    if let Some(v) = &raw.usedns {
        cfg.usedns = usedns(src, v)?;
    }
    Ok(())
}

fn increment(src: &Source, raw: &RawIncrement, base: Increment) -> Result<Increment, ConfigError> {
    let mut inc = base;
    if let Some(e) = raw.enabled {
        inc.enabled = e;
    }
    if let Some(f) = &raw.factor {
        let v = *f.get_ref();
        if !(1.0..=100.0).contains(&v) {
            return Err(src.at(f, "bantime_increment.factor must be between 1 and 100"));
        }
        inc.factor = v;
    }
    if let Some(m) = &raw.maxtime {
        inc.maxtime = duration(src, m, "bantime_increment.maxtime")?;
    }
    Ok(inc)
}

fn max_tracked(src: &Source, v: &Spanned<i64>) -> Result<usize, ConfigError> {
    usize::try_from(*v.get_ref())
        .ok()
        .filter(|n| (1..=100_000_000).contains(n))
        .ok_or_else(|| src.at(v, "max_tracked must be between 1 and 100000000"))
}

fn usedns(src: &Source, v: &Spanned<String>) -> Result<bool, ConfigError> {
    match v.get_ref().as_str() {
        "no" | "false" => Ok(false),
        "yes" | "true" => Ok(true),
        other => Err(src.at(v, format!("usedns must be `yes` or `no`, not `{other}`"))),
    }
}

/// A ban length: a duration, or `permanent`.
fn ban_length(src: &Source, v: &Spanned<RawDuration>, key: &str) -> Result<BanLength, ConfigError> {
    match v.get_ref() {
        RawDuration::Text(t) if t.trim() == "permanent" => Ok(BanLength::Permanent),
        _ => duration(src, v, key).map(BanLength::For),
    }
}

fn resolve_jails(
    src: &Source,
    raw: BTreeMap<String, Spanned<RawJail>>,
    filters: &BTreeMap<String, Spanned<RawFilter>>,
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    for (name, spanned) in &raw {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(src.at(
                spanned,
                format!("jail name `{name}` may hold only letters, digits, - and _"),
            ));
        }
        if name == crate::model::MANUAL_JAIL {
            return Err(src.at(spanned, "`manual` is reserved for bans made by hand"));
        }
        let j = spanned.get_ref();
        let mut policy = cfg.default_policy();
        if name == RECIDIVE {
            // fail2ban's recidive numbers, unless the jail says otherwise.
            policy.bantime = BanLength::For(Duration::from_secs(7 * 86_400));
            policy.findtime = Duration::from_secs(86_400);
            policy.maxretry = 5;
        }
        if let Some(v) = &j.bantime {
            policy.bantime = ban_length(src, v, "bantime")?;
        }
        if let Some(v) = &j.findtime {
            policy.findtime = duration(src, v, "findtime")?;
        }
        if let Some(v) = &j.maxretry {
            policy.maxretry = maxretry(src, v)?;
        }
        if let Some(v) = &j.blocktype {
            policy.blocktype = v.get_ref().parse().map_err(|e| src.at(v, format!("{e}")))?;
        }
        if let Some(inc) = &j.bantime_increment {
            policy.increment = increment(src, inc, policy.increment)?;
        }
        if let Some(v) = &j.max_tracked {
            policy.max_tracked = max_tracked(src, v)?;
        }
        let use_dns = match &j.usedns {
            Some(v) => usedns(src, v)?,
            None => cfg.usedns,
        };
        let enabled = j.enabled.unwrap_or(true);
        if name == RECIDIVE {
            for (set, what) in [
                (j.filter.is_some(), "filter"),
                (j.logpath.is_some(), "logpath"),
                (j.journalmatch.is_some(), "journalmatch"),
            ] {
                if set {
                    return Err(src.at(
                        spanned,
                        format!("the recidive jail counts other jails' bans; it takes no {what}"),
                    ));
                }
            }
            cfg.recidive = enabled.then_some(policy);
            continue;
        }
        let mut ignoreip = Vec::new();
        for entry in j.ignoreip.iter().flatten() {
            ignoreip.push(
                entry
                    .get_ref()
                    .parse()
                    .map_err(|e| src.at(entry, format!("ignoreip: {e}")))?,
            );
        }
        let logpaths = j
            .logpath
            .as_ref()
            .map(|l| l.get_ref().0.clone())
            .unwrap_or_default();
        if let Some(l) = &j.logpath {
            for p in &l.get_ref().0 {
                check_logpath(p).map_err(|e| src.at(l, e))?;
            }
        }
        let journalmatch = j
            .journalmatch
            .as_ref()
            .map(|l| l.get_ref().0.clone())
            .unwrap_or_default();
        if let Some(m) = &j.journalmatch {
            for entry in &m.get_ref().0 {
                for term in entry.split_whitespace() {
                    let ok = term.split_once('=').is_some_and(|(f, _)| {
                        !f.is_empty()
                            && f.bytes()
                                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    });
                    if !ok {
                        return Err(src.at(
                            m,
                            format!("journalmatch `{term}` is not FIELD=value (FIELD in capitals)"),
                        ));
                    }
                }
            }
        }
        if logpaths.is_empty() && journalmatch.is_empty() {
            return Err(src.at(
                spanned,
                format!("jail {name} reads nothing: give it a logpath or a journalmatch"),
            ));
        }
        let filter_text = j
            .filter
            .as_ref()
            .map_or(name.as_str(), |f| f.get_ref().as_str());
        let (filter_name, inline_mode) = match filter_text.split_once('[') {
            Some((n, rest)) => {
                let mode = rest
                    .strip_suffix(']')
                    .and_then(|r| r.strip_prefix("mode="))
                    .ok_or_else(|| {
                        let at = j.filter.as_ref().map_or(spanned.span(), |f| f.span());
                        src.error(
                            Some(at),
                            format!("`{filter_text}`: write options as name[mode=...]"),
                        )
                    })?;
                (n.to_string(), Some(mode.to_string()))
            }
            None => (filter_text.to_string(), None),
        };
        let mode = j
            .mode
            .as_ref()
            .map(|m| m.get_ref().clone())
            .or(inline_mode)
            .unwrap_or_else(|| "normal".into());
        let filter = if let Some(raw_filter) = filters.get(&filter_name) {
            compile_filter(
                src,
                &filter_name,
                raw_filter.get_ref(),
                raw_filter.span(),
                use_dns,
            )?
        } else if filter_name.contains('/') {
            load_filter_file(&filter_name, use_dns).map_err(|e| match &j.filter {
                Some(f) if e.line == 0 => src.at(f, e.message),
                _ => e,
            })?
        } else {
            let at = j
                .filter
                .as_ref()
                .map(|f| f.span())
                .or_else(|| j.mode.as_ref().map(|m| m.span()))
                .unwrap_or(spanned.span());
            Filter::builtin(&filter_name, &mode, use_dns).map_err(|e| src.error(Some(at), e))?
        };
        if enabled {
            cfg.jails.push(JailConfig {
                name: name.clone(),
                filter_name: if mode == "normal" {
                    filter_name
                } else {
                    format!("{filter_name}[mode={mode}]")
                },
                filter: Arc::new(filter),
                logpaths,
                journalmatch,
                policy,
                ignoreip,
                hosts_deny: j.hosts_deny.unwrap_or(false),
            });
        }
    }
    Ok(())
}

fn maxretry(src: &Source, v: &Spanned<i64>) -> Result<u32, ConfigError> {
    u32::try_from(*v.get_ref())
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| src.at(v, "maxretry must be between 1 and 1000"))
}

/// A log path may be missing (it is watched for) but must be readable if it exists.
fn check_logpath(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("logpath `{p}` must be absolute"));
    }
    for path in crate::source::file::expand(p) {
        if path.exists() {
            if path.is_dir() {
                return Err(format!("logpath {} is a directory", path.display()));
            }
            std::fs::File::open(&path)
                .map_err(|e| format!("logpath {} cannot be read: {e}", path.display()))?;
        }
    }
    Ok(())
}

fn compile_filter(
    src: &Source,
    name: &str,
    f: &RawFilter,
    whole: Range<usize>,
    usedns: bool,
) -> Result<Filter, ConfigError> {
    let spec = FilterSpec {
        failregex: f.failregex.iter().map(|r| r.get_ref().clone()).collect(),
        ignoreregex: f.ignoreregex.iter().map(|r| r.get_ref().clone()).collect(),
        datepattern: f.datepattern.as_ref().map(|d| d.get_ref().clone()),
        prefregex: f.prefregex.as_ref().map(|d| d.get_ref().clone()),
    };
    Filter::custom(name, &spec, usedns).map_err(|e| {
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

/// A filter in a file of its own: the keys of a `[filters.NAME]` table at top level.
fn load_filter_file(path: &str, usedns: bool) -> Result<Filter, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        Config::parse(text, "t.toml").unwrap_err()
    }

    #[test]
    fn the_embedded_default_has_the_seed_numbers() {
        let c = Config::embedded().unwrap();
        assert_eq!(c.bantime, Duration::from_secs(3_600));
        assert_eq!(c.findtime, Duration::from_secs(600));
        assert_eq!(c.maxretry, 3);
        assert_eq!(c.blocktype, BlockType::Tarpit);
        assert!(c.ignoreself);
        assert!(c.ignore_attached_subnets);
        assert_eq!(c.backend, BackendChoice::Auto);
        assert!(
            c.interfaces.is_empty(),
            "default: the default route's interfaces"
        );
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        let c = Config::parse("", "t.toml").unwrap();
        let d = Config::embedded().unwrap();
        assert_eq!(c.bantime, d.bantime);
        assert_eq!(c.socket, d.socket);
    }

    #[test]
    fn values_are_read() {
        let c = Config::parse(
            r#"
[banner]
interfaces = ["veth0", "eth1"]
backend = "xdp-generic"
socket = "/tmp/b.sock"
keep_on_exit = true
max_exact_bans = 10

[defaults]
bantime = 90
findtime = "1h30m"
maxretry = 5
blocktype = "drop"
ignoreip = ["198.18.0.0/15", "2001:db8::1"]
ignore_attached_subnets = false
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.interfaces, vec!["veth0", "eth1"]);
        assert_eq!(c.backend, BackendChoice::XdpGeneric);
        assert_eq!(c.socket, PathBuf::from("/tmp/b.sock"));
        assert!(c.keep_on_exit);
        assert_eq!(c.max_exact_bans, 10);
        assert_eq!(c.bantime, Duration::from_secs(90));
        assert_eq!(c.findtime, Duration::from_secs(5_400));
        assert_eq!(c.maxretry, 5);
        assert_eq!(c.blocktype, BlockType::Drop);
        assert_eq!(c.ignoreip.len(), 2);
        assert!(!c.ignore_attached_subnets);
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = err("[defaults]\nbantime = \"-5m\"\n");
        assert_eq!((e.line, e.column), (2, 11), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.toml:2:11: bantime: negative duration"),
            "{e}"
        );

        let e = err("[defaults]\nignoreip = [\"198.18.0.0/15\", \"not-an-ip\"]\n");
        assert_eq!((e.line, e.column), (2, 30), "{e}");
        assert!(
            e.message.contains("`not-an-ip` is not an IP address"),
            "{e}"
        );

        let e = err("[banner]\nbackend = \"carrier-pigeon\"\n");
        assert_eq!(e.line, 2);
        assert!(
            e.message.contains("unknown backend `carrier-pigeon`"),
            "{e}"
        );

        let e = err("[defaults]\nmaxretry = 0\n");
        assert!(
            e.message.contains("maxretry must be between 1 and 1000"),
            "{e}"
        );

        let e = err("[banner]\nsocket = \"relative.sock\"\n");
        assert!(e.message.contains("absolute path"), "{e}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let e = err("[defaults]\nbantme = \"1h\"\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("unknown field `bantme`"), "{e}");

        let e = err("[banner]\nkeep_on_exit = \"yes\"\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("bool"), "{e}");

        let e = err("[nonsense]\n");
        assert!(e.message.contains("unknown field `nonsense`"), "{e}");

        let e = err("[defaults\n");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn the_embedded_default_has_the_sshd_and_recidive_jails() {
        let c = Config::embedded().unwrap();
        let sshd = c.jail("sshd").expect("sshd jail");
        assert_eq!(sshd.logpaths, vec!["/var/log/auth.log"]);
        assert_eq!(
            sshd.journalmatch,
            vec!["_SYSTEMD_UNIT=ssh.service", "_SYSTEMD_UNIT=sshd.service"]
        );
        assert_eq!(sshd.policy.maxretry, 3);
        assert_eq!(sshd.policy.findtime, Duration::from_secs(600));
        assert_eq!(
            sshd.policy.bantime,
            BanLength::For(Duration::from_secs(3600))
        );
        assert_eq!(sshd.policy.blocktype, BlockType::Tarpit);
        let r = c.recidive.expect("recidive on");
        assert_eq!(r.bantime, BanLength::For(Duration::from_secs(7 * 86_400)));
        assert_eq!(r.findtime, Duration::from_secs(86_400));
        assert_eq!(r.maxretry, 5);
        assert_eq!(c.max_tracked, 1_000_000);
        assert!(!c.usedns);
    }

    #[test]
    fn jails_inherit_defaults_and_override_them() {
        let c = Config::parse(
            r#"
[defaults]
maxretry = 4
bantime_increment = { enabled = true, factor = 3.0, maxtime = "2d" }

[jails.sshd]
logpath = "/tmp/definitely-not-there/auth.log"
mode = "aggressive"
bantime = "permanent"

[jails.web]
filter = "web-login"
journalmatch = "_SYSTEMD_UNIT=web.service"
maxretry = 10
findtime = "1h"

[jails.off]
enabled = false
filter = "sshd"
logpath = "/tmp/x.log"

[filters.web-login]
failregex = ['^login failed for \S+ from <HOST>$']
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.jails.len(), 2, "disabled jails are left out");
        let sshd = c.jail("sshd").unwrap();
        assert_eq!(sshd.policy.maxretry, 4);
        assert_eq!(sshd.policy.bantime, BanLength::Permanent);
        assert!(sshd.policy.increment.enabled);
        assert_eq!(sshd.policy.increment.factor, 3.0);
        assert_eq!(sshd.filter_name, "sshd[mode=aggressive]");
        let web = c.jail("web").unwrap();
        assert_eq!(web.policy.maxretry, 10);
        assert_eq!(web.policy.findtime, Duration::from_secs(3600));
        assert_eq!(web.journalmatch, vec!["_SYSTEMD_UNIT=web.service"]);
        assert!(c.recidive.is_none(), "recidive only when configured");
        // A recidive jail that names no numbers gets recidive's (1w, 1d, 5), not [defaults].
        let r = Config::parse("[jails.recidive]\n", "t.toml")
            .unwrap()
            .recidive
            .unwrap();
        assert_eq!(
            (r.bantime, r.findtime, r.maxretry),
            (
                BanLength::For(Duration::from_secs(604_800)),
                Duration::from_secs(86_400),
                5
            )
        );
    }

    #[test]
    fn filter_mistakes_point_at_the_pattern() {
        let e = err("[jails.app]\nlogpath = \"/tmp/x.log\"\n[filters.app]\nfailregex = [\n  '^ok <HOST>$',\n  '^no address here$',\n]\n");
        assert_eq!((e.line, e.column), (6, 3), "{e}");
        assert!(e.message.contains("no <HOST>"), "{e}");
        let e = err(
            "[jails.app]\nlogpath = \"/tmp/x.log\"\n[filters.app]\nfailregex = ['^(<HOST>$']\n",
        );
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("does not compile"), "{e}");
        let e = err("[jails.app]\nlogpath = \"/tmp/x.log\"\nfilter = \"nosuchfilter\"\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("no filter named `nosuchfilter`"), "{e}");
        let e = err("[jails.sshd]\nlogpath = \"/tmp/x.log\"\nmode = \"paranoid\"\n");
        assert!(e.message.contains("no mode `paranoid`"), "{e}");
    }

    #[test]
    fn jails_must_read_something_readable() {
        let e = err("[jails.sshd]\nfilter = \"sshd\"\n");
        assert!(e.message.contains("reads nothing"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = err(&format!(
            "[jails.sshd]\nlogpath = \"{}\"\n",
            dir.path().display()
        ));
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("is a directory"), "{e}");
        let e = err("[jails.sshd]\nlogpath = \"relative.log\"\n");
        assert!(e.message.contains("must be absolute"), "{e}");
        let e = err("[jails.sshd]\njournalmatch = [\"unit=ssh\"]\n");
        assert!(e.message.contains("FIELD=value"), "{e}");
        let e = err("[jails.recidive]\nlogpath = \"/tmp/x.log\"\n");
        assert!(e.message.contains("takes no logpath"), "{e}");
        let e = err("[jails.sshd]\nlogpath = \"/tmp/x.log\"\nlogpth = 1\n");
        assert!(e.message.contains("unknown field `logpth`"), "{e}");
    }

    #[test]
    fn a_filter_can_live_in_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.toml");
        std::fs::write(&f, "failregex = ['^denied <HOST>$']\n").unwrap();
        let c = Config::parse(
            &format!(
                "[jails.app]\nlogpath = \"/tmp/x.log\"\nfilter = \"{}\"\n",
                f.display()
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.jails.len(), 1);
        std::fs::write(&f, "failregex = ['^denied$']\n").unwrap();
        let e = Config::parse(
            &format!(
                "[jails.app]\nlogpath = \"/tmp/x.log\"\nfilter = \"{}\"\n",
                f.display()
            ),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.file,
            f.display().to_string(),
            "the error names the filter file"
        );
        assert_eq!(e.line, 1);
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = Config::load(Path::new("/nonexistent/banner.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/banner.toml:0:0: cannot read"),
            "{e}"
        );
    }
}
