//! Configuration: TOML parsed into raw serde structs (every key known, every value spanned),
//! then resolved into validated settings. Every error names `file:line:column` and what is
//! wrong there; nothing starts on a config with an error.

use std::{
    fmt,
    ops::Range,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use toml::Spanned;

use crate::{addr::IpPrefix, duration::parse_duration, model::BlockType};

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
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "xdp" => Ok(Self::Xdp),
            "xdp-generic" => Ok(Self::XdpGeneric),
            other => Err(format!(
                "unknown backend `{other}` (expected auto, xdp or xdp-generic)"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
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
    pub max_exact_bans: u32,
    pub max_prefix_bans: u32,
    pub bantime: Duration,
    pub findtime: Duration,
    pub maxretry: u32,
    pub blocktype: BlockType,
    pub ignoreip: Vec<IpPrefix>,
    pub ignoreself: bool,
    pub ignore_attached_subnets: bool,
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
            max_exact_bans: banner_common::DEFAULT_MAX_EXACT_BANS,
            max_prefix_bans: banner_common::DEFAULT_MAX_PREFIX_BANS,
            bantime: Duration::from_secs(3_600),
            findtime: Duration::from_secs(600),
            maxretry: 3,
            blocktype: BlockType::Tarpit,
            ignoreip: Vec::new(),
            ignoreself: true,
            ignore_attached_subnets: true,
        }
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
    Ok(())
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
    fn a_missing_file_is_named() {
        let e = Config::load(Path::new("/nonexistent/banner.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/banner.toml:0:0: cannot read"),
            "{e}"
        );
    }
}
