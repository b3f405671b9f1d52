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

/// Every mistake found in a configuration, in file order. Printed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The first mistake (there is always one).
    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}

/// Collects mistakes so that one run reports all of them.
#[derive(Default)]
struct Mistakes(Vec<ConfigError>);

impl Mistakes {
    /// The value, or None with the error recorded.
    fn check<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
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
    ipv6_prefix: Option<Spanned<i64>>,
    filter_dir: Option<Spanned<String>>,
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
    // Every key optional: a jail in the file layers over the embedded default's jail of the
    // same name, key by key (the way jail.local layers over jail.conf).
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
    prefer_journal: Option<bool>,
}

impl RawJail {
    /// This jail's keys, and `base`'s where this one says nothing.
    fn over(self, base: RawJail) -> RawJail {
        RawJail {
            enabled: self.enabled.or(base.enabled),
            filter: self.filter.or(base.filter),
            mode: self.mode.or(base.mode),
            logpath: self.logpath.or(base.logpath),
            journalmatch: self.journalmatch.or(base.journalmatch),
            bantime: self.bantime.or(base.bantime),
            findtime: self.findtime.or(base.findtime),
            maxretry: self.maxretry.or(base.maxretry),
            blocktype: self.blocktype.or(base.blocktype),
            ignoreip: self.ignoreip.or(base.ignoreip),
            bantime_increment: self.bantime_increment.or(base.bantime_increment),
            max_tracked: self.max_tracked.or(base.max_tracked),
            usedns: self.usedns.or(base.usedns),
            hosts_deny: self.hosts_deny.or(base.hosts_deny),
            prefer_journal: self.prefer_journal.or(base.prefer_journal),
        }
    }
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

impl BackendChoice {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Xdp => "xdp",
            Self::XdpGeneric => "xdp-generic",
            Self::Nftables => "nftables",
            Self::Iptables => "iptables",
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
    /// With both a journalmatch and log files: read only the journal when it holds the
    /// jail's entries. Its `_SYSTEMD_UNIT` is set by journald, while any local user can put
    /// a line in a syslog file with `logger`.
    pub prefer_journal: bool,
    /// The `[filters.NAME]` table this jail's filter was compiled from, if it came from one
    /// (for `check-config --dump`).
    pub inline_filter: Option<FilterSpec>,
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
    pub bantime: BanLength,
    pub findtime: Duration,
    pub maxretry: u32,
    pub blocktype: BlockType,
    pub ignoreip: Vec<IpPrefix>,
    /// Things worth saying that do not stop banner (a log file that does not exist yet).
    pub warnings: Vec<String>,
    pub ignoreself: bool,
    pub ignore_attached_subnets: bool,
    /// IPv6 failures are counted, and banned, per prefix of this length: an attacker owns a
    /// whole /64 and rotating through it must not reset the count.
    pub ipv6_prefix: u8,
    pub increment: Increment,
    pub max_tracked: usize,
    pub usedns: bool,
    /// Where `filter = "NAME"` looks for NAME.conf when NAME is not built in (fail2ban's
    /// filter.d).
    pub filter_dir: PathBuf,
    /// Enabled log jails, by name.
    pub jails: Vec<JailConfig>,
    /// The recidive jail's numbers, if enabled.
    pub recidive: Option<JailPolicy>,
}

impl Config {
    /// Sources never banned on a host with `addrs`: ignoreip, loopback, the host's own addresses and (with
    /// `ignore_attached_subnets`) the subnets of the interfaces banner does *not* guard: the inside
    /// of a gateway, the LAN of fail2ban's ignoreip. A guarded interface's subnet is the WAN side
    /// (a provider's /24, a CGNAT range): its neighbours are as untrusted as anyone, so it is
    /// never ignored unless `ignoreip` names it.
    pub fn allowlist(&self, addrs: &[crate::sys::IfAddr]) -> crate::bans::IgnoreList {
        let mut list = crate::bans::IgnoreList::default();
        for net in &self.ignoreip {
            list.push(*net, "ignoreip");
        }
        for lo in ["127.0.0.0/8", "::1"] {
            if let Ok(net) = lo.parse::<IpPrefix>() {
                list.push(net, "loopback");
            }
        }
        // The host's own addresses are always protected: banning them would cut the host off.
        for a in addrs {
            if a.addr.is_loopback() {
                continue;
            }
            list.push(
                IpPrefix::host(a.addr),
                format!("own address on {}", a.iface),
            );
        }
        if self.ignore_attached_subnets {
            for a in addrs {
                let guarded = self.interfaces.contains(&a.iface);
                // Link-local neighbours (fe80::/64) are anyone on the wire: never ignored wholesale.
                let link_local =
                    matches!(a.addr, std::net::IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80);
                if guarded || a.addr.is_loopback() || link_local {
                    continue;
                }
                if let Some(subnet) = a.subnet.filter(|s| !s.is_host()) {
                    list.push(subnet, format!("subnet of {} (not guarded)", a.iface));
                }
            }
        }
        list
    }

    /// The embedded default configuration.
    pub fn embedded() -> Result<Self, ConfigErrors> {
        Self::parse(EMBEDDED_DEFAULT, "<embedded default>")
    }

    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &name)
    }

    /// Only `[banner] socket` of a configuration file, for the CLI: no jail is resolved and
    /// no filter compiled. None when the file cannot be read, is not TOML or names no
    /// absolute socket path (the CLI then uses the default, and says where it looked).
    pub fn socket_of(path: &Path) -> Option<PathBuf> {
        let text = std::fs::read_to_string(path).ok()?;
        let value: toml::Table = toml::from_str(&text).ok()?;
        let socket = PathBuf::from(value.get("banner")?.get("socket")?.as_str()?);
        socket.is_absolute().then_some(socket)
    }

    /// Parse and validate configuration text, layered over the embedded default: keys and
    /// jails the text does not mention keep the default's values (a file holding only
    /// `[defaults] ignoreip = [...]` still runs the sshd and recidive jails); `enabled = false`
    /// turns a jail off. Every mistake is reported, not only the first.
    pub fn parse(text: &str, name: &str) -> Result<Self, ConfigErrors> {
        let src = Source { name, text };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| src.error(e.span(), e.message().trim().to_string()))?;
        let base_src = Source {
            name: "<embedded default>",
            text: EMBEDDED_DEFAULT,
        };
        let base: RawConfig = toml::from_str(EMBEDDED_DEFAULT)
            .map_err(|e| base_src.error(e.span(), e.message().trim().to_string()))?;
        let mut cfg = Self::builtin(name);
        let mut m = Mistakes::default();
        resolve_banner(&base_src, base.banner, &mut cfg, &mut m);
        resolve_banner(&src, raw.banner, &mut cfg, &mut m);
        resolve_defaults(&base_src, base.defaults, &mut cfg, &mut m);
        resolve_defaults(&src, raw.defaults, &mut cfg, &mut m);
        let mut jails: BTreeMap<String, (&Source, Spanned<RawJail>)> = base
            .jails
            .into_iter()
            .map(|(n, j)| (n, (&base_src, j)))
            .collect();
        for (n, j) in raw.jails {
            let merged = match jails.remove(&n) {
                Some((_, old)) => {
                    let span = j.span();
                    Spanned::new(span, j.into_inner().over(old.into_inner()))
                }
                None => j,
            };
            jails.insert(n, (&src, merged));
        }
        resolve_jails(jails, &(&src, raw.filters), &mut cfg, &mut m);
        if m.0.is_empty() {
            Ok(cfg)
        } else {
            m.0.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            Err(ConfigErrors(m.0))
        }
    }

    /// The effective configuration as TOML (`banner check-config --dump`): every key with
    /// the value banner runs on, the embedded default's included.
    pub fn dump(&self) -> String {
        use std::fmt::Write as _;
        // TOML's own quoting: patterns and paths may hold quotes and backslashes.
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let list = |v: &[String]| {
            let quoted: Vec<String> = v.iter().map(|s| q(s)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let nets = |v: &[IpPrefix]| list(&v.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        let fmt_d = crate::duration::format_duration;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# effective configuration of {}",
            self.origin.replace(['\n', '\r'], " ")
        );
        let _ = writeln!(out, "[banner]");
        let _ = writeln!(out, "interfaces = {}", list(&self.interfaces));
        let _ = writeln!(out, "backend = {}", q(self.backend.name()));
        for (key, path) in [
            ("socket", &self.socket),
            ("state_dir", &self.state_dir),
            ("bpffs_dir", &self.bpffs_dir),
        ] {
            let _ = writeln!(out, "{key} = {}", q(&path.display().to_string()));
        }
        let _ = writeln!(out, "keep_on_exit = {}", self.keep_on_exit);
        let _ = writeln!(
            out,
            "hosts_deny_path = {}",
            q(&self.hosts_deny_path.display().to_string())
        );
        let _ = writeln!(out, "max_exact_bans = {}", self.max_exact_bans);
        let _ = writeln!(out, "max_prefix_bans = {}", self.max_prefix_bans);
        let _ = writeln!(out, "\n[defaults]");
        let _ = writeln!(out, "bantime = \"{}\"", self.bantime);
        let _ = writeln!(out, "findtime = \"{}\"", fmt_d(self.findtime));
        let _ = writeln!(out, "maxretry = {}", self.maxretry);
        let _ = writeln!(out, "blocktype = \"{}\"", self.blocktype);
        let _ = writeln!(out, "ignoreip = {}", nets(&self.ignoreip));
        let _ = writeln!(out, "ignoreself = {}", self.ignoreself);
        let _ = writeln!(
            out,
            "ignore_attached_subnets = {}",
            self.ignore_attached_subnets
        );
        let _ = writeln!(out, "ipv6_prefix = {}", self.ipv6_prefix);
        let _ = writeln!(out, "max_tracked = {}", self.max_tracked);
        let _ = writeln!(
            out,
            "usedns = \"{}\"",
            if self.usedns { "yes" } else { "no" }
        );
        let _ = writeln!(
            out,
            "filter_dir = {}",
            q(&self.filter_dir.display().to_string())
        );
        let policy = |out: &mut String, p: &JailPolicy| {
            let _ = writeln!(out, "bantime = \"{}\"", p.bantime);
            let _ = writeln!(out, "findtime = \"{}\"", fmt_d(p.findtime));
            let _ = writeln!(out, "maxretry = {}", p.maxretry);
            let _ = writeln!(out, "blocktype = \"{}\"", p.blocktype);
            let _ = writeln!(
                out,
                "bantime_increment = {{ enabled = {}, factor = {:?}, maxtime = \"{}\" }}",
                p.increment.enabled,
                p.increment.factor,
                fmt_d(p.increment.maxtime)
            );
        };
        for j in &self.jails {
            let _ = writeln!(out, "\n[jails.{}]", j.name);
            let _ = writeln!(out, "filter = {}", q(&j.filter_name));
            let _ = writeln!(out, "logpath = {}", list(&j.logpaths));
            let _ = writeln!(out, "journalmatch = {}", list(&j.journalmatch));
            policy(&mut out, &j.policy);
            let _ = writeln!(out, "ignoreip = {}", nets(&j.ignoreip));
            let _ = writeln!(out, "hosts_deny = {}", j.hosts_deny);
            let _ = writeln!(out, "prefer_journal = {}", j.prefer_journal);
        }
        let mut filters: Vec<(&str, &FilterSpec)> = Vec::new();
        for j in &self.jails {
            if let Some(spec) = &j.inline_filter {
                let name = j.filter_name.split('[').next().unwrap_or(&j.filter_name);
                if !filters.iter().any(|(n, _)| *n == name) {
                    filters.push((name, spec));
                }
            }
        }
        for (name, spec) in filters {
            let _ = writeln!(out, "\n[filters.{name}]");
            let _ = writeln!(out, "failregex = {}", list(&spec.failregex));
            let _ = writeln!(out, "ignoreregex = {}", list(&spec.ignoreregex));
            if let Some(d) = &spec.datepattern {
                let _ = writeln!(out, "datepattern = {}", q(d));
            }
            if let Some(p) = &spec.prefregex {
                let _ = writeln!(out, "prefregex = {}", q(p));
            }
        }
        match &self.recidive {
            Some(r) => {
                let _ = writeln!(out, "\n[jails.{RECIDIVE}]");
                policy(&mut out, r);
            }
            None => {
                let _ = writeln!(out, "\n[jails.{RECIDIVE}]\nenabled = false");
            }
        }
        out
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
            bantime: BanLength::For(Duration::from_secs(3_600)),
            findtime: Duration::from_secs(600),
            maxretry: 3,
            blocktype: BlockType::Tarpit,
            ignoreip: Vec::new(),
            warnings: Vec::new(),
            ignoreself: true,
            ignore_attached_subnets: true,
            ipv6_prefix: 64,
            increment: Increment::default(),
            max_tracked: 1_000_000,
            usedns: false,
            filter_dir: PathBuf::from(crate::filter::FAIL2BAN_FILTER_DIR),
            jails: Vec::new(),
            recidive: None,
        }
    }

    /// The numbers a jail gets where it says nothing itself.
    pub fn default_policy(&self) -> JailPolicy {
        JailPolicy {
            bantime: self.bantime,
            findtime: self.findtime,
            maxretry: self.maxretry,
            blocktype: self.blocktype,
            increment: self.increment,
            max_tracked: self.max_tracked,
            ipv6_prefix: self.ipv6_prefix,
        }
    }

    pub fn jail(&self, name: &str) -> Option<&JailConfig> {
        self.jails.iter().find(|j| j.name == name)
    }
}

fn resolve_banner(src: &Source, raw: RawBanner, cfg: &mut Config, m: &mut Mistakes) {
    if let Some(ifaces) = raw.interfaces {
        cfg.interfaces = Vec::new();
        for i in ifaces {
            let name = i.get_ref();
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                m.0.push(src.at(&i, format!("`{name}` is not a valid interface name")));
                continue;
            }
            cfg.interfaces.push(name.clone());
        }
    }
    if let Some(b) = raw.backend {
        if let Some(v) = m.check(b.get_ref().parse().map_err(|e: String| src.at(&b, e))) {
            cfg.backend = v;
        }
    }
    let path = |v: &Spanned<String>| -> Result<PathBuf, ConfigError> {
        let p = PathBuf::from(v.get_ref());
        if !p.is_absolute() {
            return Err(src.at(v, format!("`{}` must be an absolute path", v.get_ref())));
        }
        Ok(p)
    };
    for (value, slot) in [
        (&raw.socket, &mut cfg.socket),
        (&raw.state_dir, &mut cfg.state_dir),
        (&raw.bpffs_dir, &mut cfg.bpffs_dir),
        (&raw.hosts_deny_path, &mut cfg.hosts_deny_path),
    ] {
        if let Some(p) = value.as_ref().and_then(|v| m.check(path(v))) {
            *slot = p;
        }
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
    if let Some(v) = raw
        .max_exact_bans
        .as_ref()
        .and_then(|v| m.check(count(v, "max_exact_bans")))
    {
        cfg.max_exact_bans = v;
    }
    if let Some(v) = raw
        .max_prefix_bans
        .as_ref()
        .and_then(|v| m.check(count(v, "max_prefix_bans")))
    {
        cfg.max_prefix_bans = v;
    }
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

fn resolve_defaults(src: &Source, raw: RawDefaults, cfg: &mut Config, m: &mut Mistakes) {
    if let Some(v) = raw
        .bantime
        .as_ref()
        .and_then(|v| m.check(ban_length(src, v, "bantime")))
    {
        cfg.bantime = v;
    }
    if let Some(v) = raw
        .findtime
        .as_ref()
        .and_then(|v| m.check(duration(src, v, "findtime")))
    {
        cfg.findtime = v;
    }
    if let Some(v) = raw
        .maxretry
        .as_ref()
        .and_then(|v| m.check(maxretry(src, v)))
    {
        cfg.maxretry = v;
    }
    if let Some(v) = raw
        .blocktype
        .as_ref()
        .and_then(|v| m.check(blocktype(src, v)))
    {
        cfg.blocktype = v;
    }
    if let Some(list) = &raw.ignoreip {
        cfg.ignoreip = ignoreip(src, list, m);
    }
    if let Some(v) = raw.ignoreself {
        cfg.ignoreself = v;
    }
    if let Some(v) = raw.ignore_attached_subnets {
        cfg.ignore_attached_subnets = v;
    }
    if let Some(v) = &raw.ipv6_prefix {
        if let Some(n) = m.check(
            u8::try_from(*v.get_ref())
                .ok()
                .filter(|n| (32..=128).contains(n))
                .ok_or_else(|| src.at(v, "ipv6_prefix must be between 32 and 128")),
        ) {
            cfg.ipv6_prefix = n;
        }
    }
    if let Some(inc) = &raw.bantime_increment {
        if let Some(v) = m.check(increment(src, inc, cfg.increment)) {
            cfg.increment = v;
        }
    }
    if let Some(v) = raw
        .max_tracked
        .as_ref()
        .and_then(|v| m.check(max_tracked(src, v)))
    {
        cfg.max_tracked = v;
    }
    if let Some(v) = raw.usedns.as_ref().and_then(|v| m.check(usedns(src, v))) {
        cfg.usedns = v;
    }
    if let Some(v) = &raw.filter_dir {
        if v.get_ref().starts_with('/') {
            cfg.filter_dir = PathBuf::from(v.get_ref());
        } else {
            m.0.push(src.at(v, "filter_dir must be an absolute path"));
        }
    }
}

/// `drop` or `tarpit`, nothing else: a word banner does not enforce must not quietly mean drop.
fn blocktype(src: &Source, v: &Spanned<String>) -> Result<BlockType, ConfigError> {
    v.get_ref().parse().map_err(|e| src.at(v, format!("{e}")))
}

/// An allowlist, each entry checked; bad entries are reported, good ones kept.
fn ignoreip(src: &Source, list: &[Spanned<String>], m: &mut Mistakes) -> Vec<IpPrefix> {
    list.iter()
        .filter_map(|entry| {
            m.check(
                entry
                    .get_ref()
                    .parse()
                    .map_err(|e| src.at(entry, format!("ignoreip: {e}"))),
            )
        })
        .collect()
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

/// Resolve every jail. Each comes with the source its keys were read from (the file, or the
/// embedded default for jails the file does not mention); filters come from the file.
fn resolve_jails(
    raw: BTreeMap<String, (&Source, Spanned<RawJail>)>,
    filters: &(&Source, BTreeMap<String, Spanned<RawFilter>>),
    cfg: &mut Config,
    m: &mut Mistakes,
) {
    for (name, (src, spanned)) in &raw {
        let before = m.0.len();
        if let Some(jail) = resolve_jail(src, name, spanned, filters, cfg, m) {
            // A jail with any mistake is left out; its mistakes are reported.
            if m.0.len() == before {
                match jail {
                    Resolved::Log(j) => cfg.jails.push(*j),
                    Resolved::Recidive(p) => cfg.recidive = p,
                    Resolved::Disabled => {}
                }
            }
        }
    }
}

enum Resolved {
    Log(Box<JailConfig>),
    Recidive(Option<JailPolicy>),
    Disabled,
}

fn resolve_jail(
    src: &Source,
    name: &str,
    spanned: &Spanned<RawJail>,
    filters: &(&Source, BTreeMap<String, Spanned<RawFilter>>),
    cfg: &mut Config,
    m: &mut Mistakes,
) -> Option<Resolved> {
    if let Err(e) = jail_name(name) {
        m.0.push(src.at(spanned, e));
        return None;
    }
    let j = spanned.get_ref();
    let policy = jail_policy(src, name, j, cfg.default_policy(), m);
    let use_dns = match &j.usedns {
        Some(v) => m.check(usedns(src, v)).unwrap_or(cfg.usedns),
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
                m.0.push(src.at(
                    spanned,
                    format!("the recidive jail counts other jails' bans; it takes no {what}"),
                ));
            }
        }
        return Some(Resolved::Recidive(enabled.then_some(policy)));
    }
    if !enabled {
        // A jail turned off is not checked further: its log may well not exist here.
        return Some(Resolved::Disabled);
    }
    let ignoreip = ignoreip(src, j.ignoreip.as_deref().unwrap_or_default(), m);
    let (logpaths, journalmatch) = jail_sources(src, name, j, cfg, m);
    let (filter_name, filter, inline_filter) = jail_filter(
        src,
        name,
        spanned,
        filters,
        logpaths.is_empty(),
        use_dns,
        cfg,
        m,
    )?;
    // A filter that says which journal entries it reads (fail2ban's journalmatch) serves a
    // jail that names neither a log nor a match of its own.
    let journalmatch = if journalmatch.is_empty() && logpaths.is_empty() {
        filter.journalmatch()
    } else {
        journalmatch
    };
    if logpaths.is_empty() && journalmatch.is_empty() {
        m.0.push(src.at(
            spanned,
            format!("jail {name} reads nothing: give it a logpath or a journalmatch"),
        ));
        return None;
    }
    Some(Resolved::Log(Box::new(JailConfig {
        name: name.to_string(),
        filter_name,
        filter: Arc::new(filter),
        logpaths,
        journalmatch,
        policy,
        ignoreip,
        hosts_deny: j.hosts_deny.unwrap_or(false),
        prefer_journal: j.prefer_journal.unwrap_or(true),
        inline_filter,
    })))
}

/// A jail's name: letters, digits, `-` and `_`, and none of the origins' reserved names.
fn jail_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "jail name `{name}` may hold only letters, digits, - and _"
        ));
    }
    if crate::model::JailId::RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is reserved for bans no jail made (`manual`: by hand, `restored`: adopted from the kernel); name the jail otherwise"
        ));
    }
    Ok(())
}

/// A jail's numbers: its own keys over `base` ([defaults], or fail2ban's recidive numbers
/// for the recidive jail).
fn jail_policy(
    src: &Source,
    name: &str,
    j: &RawJail,
    mut policy: JailPolicy,
    m: &mut Mistakes,
) -> JailPolicy {
    if name == RECIDIVE {
        // fail2ban's recidive numbers, unless the jail says otherwise.
        policy.bantime = BanLength::For(Duration::from_secs(7 * 86_400));
        policy.findtime = Duration::from_secs(86_400);
        policy.maxretry = 5;
    }
    if let Some(v) = j
        .bantime
        .as_ref()
        .and_then(|v| m.check(ban_length(src, v, "bantime")))
    {
        policy.bantime = v;
    }
    if let Some(v) = j
        .findtime
        .as_ref()
        .and_then(|v| m.check(duration(src, v, "findtime")))
    {
        policy.findtime = v;
    }
    if let Some(v) = j.maxretry.as_ref().and_then(|v| m.check(maxretry(src, v))) {
        policy.maxretry = v;
    }
    if let Some(v) = j
        .blocktype
        .as_ref()
        .and_then(|v| m.check(blocktype(src, v)))
    {
        policy.blocktype = v;
    }
    if let Some(inc) = &j.bantime_increment {
        if let Some(v) = m.check(increment(src, inc, policy.increment)) {
            policy.increment = v;
        }
    }
    if let Some(v) = j
        .max_tracked
        .as_ref()
        .and_then(|v| m.check(max_tracked(src, v)))
    {
        policy.max_tracked = v;
    }
    policy
}

/// What a jail reads: its log paths (each checked on disk) and its journal matches.
fn jail_sources(
    src: &Source,
    name: &str,
    j: &RawJail,
    cfg: &mut Config,
    m: &mut Mistakes,
) -> (Vec<String>, Vec<String>) {
    let logpaths = j
        .logpath
        .as_ref()
        .map(|l| l.get_ref().0.clone())
        .unwrap_or_default();
    if let Some(l) = &j.logpath {
        for p in &l.get_ref().0 {
            match check_logpath(p) {
                Ok(None) => {}
                Ok(Some(warning)) => cfg.warnings.push(format!("[{name}] {warning}")),
                Err(e) => m.0.push(src.at(l, e)),
            }
        }
    }
    let journalmatch = j
        .journalmatch
        .as_ref()
        .map(|l| l.get_ref().0.clone())
        .unwrap_or_default();
    if let Some(jm) = &j.journalmatch {
        for entry in &jm.get_ref().0 {
            for term in entry.split_whitespace() {
                let ok = term.split_once('=').is_some_and(|(f, _)| {
                    !f.is_empty()
                        && f.bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                });
                if !ok {
                    m.0.push(src.at(
                        jm,
                        format!("journalmatch `{term}` is not FIELD=value (FIELD in capitals)"),
                    ));
                }
            }
        }
    }
    (logpaths, journalmatch)
}

/// A jail's filter, compiled: a `[filters.NAME]` table, a built-in, or a fail2ban filter file
/// (with its options); with the name `status` shows and the table it came from.
#[allow(clippy::too_many_arguments)]
fn jail_filter(
    src: &Source,
    name: &str,
    spanned: &Spanned<RawJail>,
    (filter_src, filters): &(&Source, BTreeMap<String, Spanned<RawFilter>>),
    journal: bool,
    use_dns: bool,
    cfg: &Config,
    m: &mut Mistakes,
) -> Option<(String, Filter, Option<FilterSpec>)> {
    let j = spanned.get_ref();
    let filter_text = j.filter.as_ref().map_or(name, |f| f.get_ref().as_str());
    let filter_at = j
        .filter
        .as_ref()
        .map(|f| f.span())
        .or_else(|| j.mode.as_ref().map(|md| md.span()))
        .unwrap_or(spanned.span());
    let (filter_name, mut options) =
        match crate::filter::f2b::definition::split_options(filter_text) {
            Ok(v) => v,
            Err(e) => {
                m.0.push(src.error(Some(filter_at.clone()), e));
                return None;
            }
        };
    if let Some(md) = &j.mode {
        options.insert("mode".into(), md.get_ref().clone());
    }
    let inline_filter = filters.get(&filter_name).map(|f| spec_of(f.get_ref()));
    let filter = if let Some(raw_filter) = filters.get(&filter_name) {
        if let Some(k) = options.keys().find(|k| *k != "mode") {
            m.0.push(src.error(
                Some(filter_at),
                format!("[filters.{filter_name}] takes no option `{k}`"),
            ));
            return None;
        }
        m.check(compile_filter(
            filter_src,
            &filter_name,
            raw_filter.get_ref(),
            raw_filter.span(),
            use_dns,
        ))?
    } else {
        // fail2ban's rule: a filter reading the journal sees `host ident[pid]: message`.
        m.check(
            load_filter(&filter_name, &options, &cfg.filter_dir, use_dns, journal).map_err(|e| {
                match e {
                    FilterLoadError::Fail2ban(e) if e.origin.line > 0 => ConfigError {
                        file: e.origin.file.display().to_string(),
                        line: e.origin.line,
                        column: 0,
                        message: format!("filter of jail {name}: {}", e.message),
                    },
                    FilterLoadError::Toml(e) if e.line > 0 => e,
                    other => src.error(Some(filter_at), other.to_string()),
                }
            }),
        )?
    };
    let shown = if options.is_empty()
        || options.get("mode").is_some_and(|md| md == "normal") && options.len() == 1
    {
        filter_name
    } else {
        let opts: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{filter_name}[{}]", opts.join(", "))
    };
    Some((shown, filter, inline_filter))
}

fn maxretry(src: &Source, v: &Spanned<i64>) -> Result<u32, ConfigError> {
    u32::try_from(*v.get_ref())
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| src.at(v, "maxretry must be between 1 and 1000"))
}

/// A log path may be missing (it is watched for, and a warning says so) but must be a
/// readable regular file (or FIFO) if it exists. Opening never blocks: a FIFO is opened
/// non-blocking, a device is refused before any open.
fn check_logpath(p: &str) -> Result<Option<String>, String> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    if !p.starts_with('/') {
        return Err(format!("logpath `{p}` must be absolute"));
    }
    let paths: Vec<PathBuf> = crate::source::file::expand(p)
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    if paths.is_empty() {
        return Ok(Some(format!(
            "logpath {p} does not exist (yet); banner reads it once it appears"
        )));
    }
    for path in paths {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(format!("logpath {} is a directory", path.display()));
        }
        if !kind.is_file() {
            let what = if kind.is_fifo() {
                "a FIFO"
            } else {
                "a device or socket"
            };
            return Err(format!(
                "logpath {} is {what}, not a regular file: banner follows the file your syslog writes",
                path.display()
            ));
        }
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| format!("logpath {} cannot be read: {e}", path.display()))?;
    }
    Ok(None)
}

fn spec_of(f: &RawFilter) -> FilterSpec {
    FilterSpec {
        failregex: f.failregex.iter().map(|r| r.get_ref().clone()).collect(),
        ignoreregex: f.ignoreregex.iter().map(|r| r.get_ref().clone()).collect(),
        datepattern: f.datepattern.as_ref().map(|d| d.get_ref().clone()),
        prefregex: f.prefregex.as_ref().map(|d| d.get_ref().clone()),
    }
}

fn compile_filter(
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

/// A filter in a file of its own: the keys of a `[filters.NAME]` table at top level.
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
        Config::parse(text, "t.toml").unwrap_err().first().clone()
    }

    #[test]
    fn the_cli_reads_the_socket_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("banner.toml");
        // A jail whose filter file does not exist: the full parse fails, the socket is read.
        std::fs::write(
            &file,
            "[banner]\nsocket = \"/tmp/x.sock\"\n[jails.x]\nfilter = \"/nonexistent.conf\"\nlogpath = \"/tmp/x.log\"\n",
        )
        .unwrap();
        assert!(Config::load(&file).is_err());
        assert_eq!(Config::socket_of(&file), Some(PathBuf::from("/tmp/x.sock")));
        std::fs::write(&file, "[banner]\nsocket = \"relative.sock\"\n").unwrap();
        assert_eq!(Config::socket_of(&file), None);
        std::fs::write(&file, "[defaults]\nbantime = \"1h\"\n").unwrap();
        assert_eq!(Config::socket_of(&file), None);
    }

    #[test]
    fn the_embedded_default_has_the_seed_numbers() {
        let c = Config::embedded().unwrap();
        assert_eq!(c.bantime, BanLength::For(Duration::from_secs(3_600)));
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
        assert_eq!(c.bantime, BanLength::For(Duration::from_secs(90)));
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
        assert!(c.recidive.is_some(), "the default's recidive stays on");
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
        let e = err("[jails.web]\nfilter = \"sshd\"\n");
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
        // The origins that are not jails keep their names: a jail called so would pass for
        // bans made by hand or adopted from the kernel.
        for name in ["manual", "restored"] {
            let e = err(&format!("[jails.{name}]\nlogpath = \"/tmp/x.log\"\n"));
            assert!(e.message.contains("is reserved"), "{e}");
            assert_eq!(e.line, 1, "{e}");
        }
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
        assert!(c.jail("app").is_some());
        std::fs::write(&f, "failregex = ['^denied$']\n").unwrap();
        let e = Config::parse(
            &format!(
                "[jails.app]\nlogpath = \"/tmp/x.log\"\nfilter = \"{}\"\n",
                f.display()
            ),
            "t.toml",
        )
        .unwrap_err();
        let e = e.first();
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
        let e = e.first();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/banner.toml:0:0: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn a_file_layers_over_the_embedded_default() {
        // Only an allowlist: the sshd and recidive jails keep running (issue 9, item A2).
        let c = Config::parse("[defaults]\nignoreip = [\"198.18.0.0/15\"]\n", "t.toml").unwrap();
        assert_eq!(c.ignoreip.len(), 1);
        let sshd = c.jail("sshd").expect("the default's sshd jail stays");
        assert_eq!(sshd.logpaths, vec!["/var/log/auth.log"]);
        assert!(c.recidive.is_some());
        // A jail named in the file takes its keys over the default's, key by key; the
        // file's [defaults] reach the default's jails.
        let c = Config::parse(
            "[defaults]\nmaxretry = 7\n[jails.sshd]\nbantime = \"2h\"\n",
            "t.toml",
        )
        .unwrap();
        let sshd = c.jail("sshd").unwrap();
        assert_eq!(sshd.policy.maxretry, 7);
        assert_eq!(
            sshd.policy.bantime,
            BanLength::For(Duration::from_secs(7200))
        );
        assert_eq!(
            sshd.journalmatch.len(),
            2,
            "the default's journalmatch stays"
        );
        // enabled = false turns a default jail off.
        let c = Config::parse(
            "[jails.sshd]\nenabled = false\n[jails.recidive]\nenabled = false\n",
            "t.toml",
        )
        .unwrap();
        assert!(c.jail("sshd").is_none());
        assert!(c.recidive.is_none());
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let e = Config::parse(
            "[defaults]\nbantime = \"-1h\"\nmaxretry = 0\nignoreip = [\"nope\", \"10.0.0.0/33\"]\n\
             [jails.app]\nfilter = \"sshd\"\nlogpath = \"relative.log\"\nblocktype = \"reject\"\n",
            "t.toml",
        )
        .unwrap_err();
        let places: Vec<(usize, &str)> = e.0.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(e.0.len(), 6, "{e}");
        assert_eq!(places[0].0, 2, "{e}");
        assert!(places[0].1.contains("bantime"), "{e}");
        assert_eq!(places[1].0, 3, "{e}");
        assert_eq!((places[2].0, places[3].0), (4, 4), "{e}");
        assert!(places[4].1.contains("must be absolute"), "{e}");
        assert_eq!(places[4].0, 7, "{e}");
        assert!(places[5].1.contains("reject"), "{e}");
        // One line per mistake, each file:line:column.
        assert_eq!(e.to_string().lines().count(), 6);
        assert!(e.to_string().lines().all(|l| l.starts_with("t.toml:")));
    }

    #[test]
    fn blocktype_is_drop_or_tarpit_only() {
        let e = err("[defaults]\nblocktype = \"reject\"\n");
        assert_eq!(e.line, 2);
        let e = err("[jails.sshd]\nblocktype = \"REJECT\"\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(Config::parse("[defaults]\nblocktype = \"drop\"\n", "t").is_ok());
    }

    #[test]
    fn a_permanent_default_bantime_reaches_the_jails() {
        let c = Config::parse("[defaults]\nbantime = \"permanent\"\n", "t.toml").unwrap();
        assert_eq!(c.bantime, BanLength::Permanent);
        assert_eq!(c.jail("sshd").unwrap().policy.bantime, BanLength::Permanent);
    }

    #[test]
    fn fail2ban_filter_files_serve_jails_by_path_or_by_name() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().display().to_string();
        std::fs::write(
            d.path().join("web-auth.conf"),
            "[Definition]\nfailregex = ^<mode> denied <HOST>$\nmode = normal\njournalmatch = _SYSTEMD_UNIT=web.service + _COMM=web\n",
        )
        .unwrap();
        let log = d.path().join("web.log");
        std::fs::write(&log, "").unwrap();
        let text = format!(
            "[defaults]\nfilter_dir = \"{dir}\"\n[jails.web]\nfilter = \"web-auth[mode=strict]\"\nlogpath = \"{}\"\n[jails.byjournal]\nfilter = \"{dir}/web-auth.conf\"\n",
            log.display()
        );
        let c = Config::parse(&text, "t.toml").unwrap();
        let web = c.jail("web").unwrap();
        assert_eq!(web.filter_name, "web-auth[mode=strict]");
        let meta = crate::filter::LineMeta::arrived(std::time::SystemTime::now());
        let mut cache = crate::filter::date::DateCache::default();
        assert!(matches!(
            web.filter
                .examine("strict denied 198.18.0.9", &meta, &mut cache),
            crate::filter::Examined::Failure(_)
        ));
        assert!(matches!(
            web.filter
                .examine("normal denied 198.18.0.9", &meta, &mut cache),
            crate::filter::Examined::NoMatch
        ));
        // No logpath, no journalmatch: the filter's own journalmatch is used.
        let j = c.jail("byjournal").unwrap();
        assert_eq!(j.journalmatch, ["_SYSTEMD_UNIT=web.service", "_COMM=web"]);
    }

    #[test]
    fn a_filter_that_cannot_be_had_is_named_with_where() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().display().to_string();
        std::fs::write(
            d.path().join("broken.conf"),
            "[Definition]\n\nfailregex = ^bad (<HOST>$\n",
        )
        .unwrap();
        let e = err(&format!(
            "[defaults]\nfilter_dir = \"{dir}\"\n[jails.x]\nfilter = \"broken\"\njournalmatch = \"_COMM=x\"\n"
        ));
        assert!(e.file.ends_with("broken.conf") && e.line == 3, "{e}");
        assert!(e.message.contains("^bad (<HOST>$"), "{e}");
        let e = err(&format!(
            "[defaults]\nfilter_dir = \"{dir}\"\n[jails.x]\nfilter = \"nothere\"\njournalmatch = \"_COMM=x\"\n"
        ));
        assert!(
            e.message.contains("no filter named `nothere`") && e.message.contains("nothere.conf"),
            "{e}"
        );
        let e = err("[jails.x]\nfilter = \"sshd[colour=red]\"\njournalmatch = \"_COMM=x\"\n");
        assert!(e.message.contains("takes only `mode`"), "{e}");
        let e = err("[defaults]\nfilter_dir = \"relative\"\n");
        assert!(e.message.contains("absolute"), "{e}");
    }

    #[test]
    fn a_missing_logpath_warns_and_a_device_is_refused() {
        let c = Config::parse(
            "[jails.sshd]\nlogpath = \"/nonexistent/banner/auth.log\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("/nonexistent/banner/auth.log does not exist")),
            "{:?}",
            c.warnings
        );
        let e = err("[jails.sshd]\nlogpath = \"/dev/zero\"\n");
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    #[test]
    fn the_dump_is_a_config_that_reads_back_the_same() {
        let c = Config::parse(
            "[defaults]\nmaxretry = 4\nignoreip = [\"198.18.0.0/15\"]\n[jails.sshd]\nbantime = \"permanent\"\n",
            "t.toml",
        )
        .unwrap();
        let text = c.dump();
        assert!(text.contains("[jails.sshd]"), "{text}");
        assert!(text.contains("maxretry = 4"), "{text}");
        let again = Config::parse(&text, "dump.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            again.dump().lines().skip(1).collect::<Vec<_>>(),
            text.lines().skip(1).collect::<Vec<_>>()
        );
        assert_eq!(
            again.jail("sshd").unwrap().policy.bantime,
            BanLength::Permanent
        );
    }

    #[test]
    fn the_dump_carries_inline_filters_and_odd_strings() {
        // Found by the config fuzz target: a jail whose filter is a [filters.NAME] table dumped
        // without that table, so the dump did not read back ("no filter named `app`").
        let text = "[defaults]\nignoreip = [\"198.18.0.0/15\"]\n[jails.sshd]\nbantime = \"permanent\"\n[jails.app]\nlogpath = \"/var/log/app/*.log\"\n[filters.app]\nfailregex = ['^denied \"<HOST>\" \\\\d+$']\nignoreregex = ['^x']\n";
        let c = Config::parse(text, "t.toml").unwrap();
        let dumped = c.dump();
        assert!(dumped.contains("[filters.app]"), "{dumped}");
        let again = Config::parse(&dumped, "dump.toml").unwrap_or_else(|e| panic!("{e}\n{dumped}"));
        assert_eq!(
            again.jail("app").unwrap().inline_filter,
            c.jail("app").unwrap().inline_filter
        );
    }
}

#[cfg(test)]
/// What a configuration allows on a given host.
mod allowlist_tests {
    use super::*;
    use crate::{bans::IgnoreList, sys::IfAddr};

    fn addr(iface: &str, ip: &str, subnet: &str) -> IfAddr {
        IfAddr {
            iface: iface.into(),
            addr: ip.parse().unwrap(),
            subnet: Some(subnet.parse().unwrap()),
        }
    }

    fn covered(list: &IgnoreList, ip: &str) -> Option<String> {
        list.covering(&IpPrefix::host(ip.parse().unwrap()))
            .map(|e| e.why.clone())
    }

    #[test]
    fn the_guarded_interfaces_subnet_is_not_ignored_but_the_lan_is() {
        // A gateway: WAN (guarded) in a CGNAT-like range, LAN behind it (issue 9, item A1).
        let mut cfg = Config::embedded().unwrap();
        cfg.interfaces = vec!["wan0".into()];
        let addrs = [
            addr("lo", "127.0.0.1", "127.0.0.0/8"),
            addr("wan0", "198.18.8.1", "198.18.8.0/24"),
            addr("lan0", "198.19.1.1", "198.19.1.0/24"),
            addr("wan0", "fe80::1", "fe80::/64"),
        ];
        let list = cfg.allowlist(&addrs);
        assert_eq!(
            covered(&list, "198.18.8.2"),
            None,
            "a WAN neighbour can be banned"
        );
        assert_eq!(
            covered(&list, "198.18.8.1").as_deref(),
            Some("own address on wan0")
        );
        assert_eq!(
            covered(&list, "198.19.1.77").as_deref(),
            Some("subnet of lan0 (not guarded)")
        );
        assert_eq!(
            covered(&list, "fe80::2"),
            None,
            "link-local is anyone on the wire"
        );
        assert_eq!(covered(&list, "127.0.0.9").as_deref(), Some("loopback"));
        // ignoreip may name the WAN subnet on purpose.
        cfg.ignoreip = vec!["198.18.8.0/24".parse().unwrap()];
        let list = cfg.allowlist(&addrs);
        assert_eq!(covered(&list, "198.18.8.2").as_deref(), Some("ignoreip"));
        // Turned off, only the host's own addresses and loopback stay.
        cfg.ignoreip.clear();
        cfg.ignore_attached_subnets = false;
        let list = cfg.allowlist(&addrs);
        assert_eq!(covered(&list, "198.19.1.77"), None);
        assert!(covered(&list, "198.19.1.1").is_some());
    }
}
