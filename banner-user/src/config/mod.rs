//! Configuration: TOML parsed into raw serde structs (every key known, every value spanned),
//! then resolved into validated settings. Every error names `file:line:column` and what is
//! wrong there; nothing starts on a config with an error.
//!
//! One file per section: `raw` (the file as written), `banner`, `defaults`, `jails`,
//! `filters`, and `files` (what the configuration names on disk).

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

mod banner;
mod crowdsec;
mod defaults;
mod files;
mod filters;
mod jails;
mod raw;
pub mod reference;
mod syslog;

pub use self::filters::{load_filter, FilterLoadError};
use self::{
    banner::*, crowdsec::*, defaults::*, files::*, filters::*, jails::*, raw::*, syslog::*,
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
        self.locate(span).error(message)
    }

    /// Where `span` is, kept for a mistake found once the text is gone (on disk).
    fn locate(&self, span: Option<Range<usize>>) -> Where {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        Where {
            file: self.name.to_string(),
            line,
            column,
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.error(Some(value.span()), message)
    }
}

/// A place in a configuration file.
#[derive(Clone, Debug)]
struct Where {
    file: String,
    line: usize,
    column: usize,
}

impl Where {
    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// A configuration whose text has been read and checked, before anything it names on disk
/// is looked at: its log paths are checked and its filter files read by
/// [`Plan::check_files`], the pass the daemon runs at start and on reload, and
/// `check-config` runs. The text pass never touches the filesystem.
pub struct Plan {
    cfg: Config,
    jails: Vec<PlannedJail>,
    mistakes: Vec<ConfigError>,
}

impl Plan {
    /// The mistakes the text holds (every one).
    pub fn text_mistakes(&self) -> &[ConfigError] {
        &self.mistakes
    }

    /// Check what the configuration names on disk (log paths, filter files) and finish
    /// its jails. Every mistake, the text's and the files', is reported together.
    pub fn check_files(self) -> Result<Config, ConfigErrors> {
        let Plan {
            mut cfg,
            jails,
            mut mistakes,
        } = self;
        for jail in jails {
            let before = mistakes.len();
            if let Some(j) = jail.check_files(&mut cfg, &mut mistakes) {
                if mistakes.len() == before {
                    cfg.jails.push(j);
                }
            }
        }
        if mistakes.is_empty() {
            Ok(cfg)
        } else {
            mistakes.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            Err(ConfigErrors(mistakes))
        }
    }
}

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
    /// Nothing enforced: a dry run, to watch what banner would ban.
    None,
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
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown backend `{other}` (expected auto, xdp, xdp-generic, nftables, iptables or none)"
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
            Self::None => "none",
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
    /// Also judge what the syslog receiver takes (`source = "syslog"`).
    pub syslog: bool,
    /// With `syslog`: only from these hosts (lower-case names or addresses; empty: all).
    pub syslog_hosts: Vec<String>,
}

impl JailConfig {
    pub fn source_count(&self) -> usize {
        self.logpaths.len() + usize::from(!self.journalmatch.is_empty()) + usize::from(self.syslog)
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
    /// The CrowdSec link, if `[crowdsec]` is there.
    pub crowdsec: Option<crate::crowdsec::CrowdSecConfig>,
    /// The syslog receiver, if `[syslog]` is there.
    pub syslog: Option<crate::source::syslog::SyslogConfig>,
    /// Where the Prometheus metrics are served (`[metrics] listen`); None: off.
    pub metrics: Option<std::net::SocketAddr>,
    /// `[actions.NAME]`, by name.
    pub actions: BTreeMap<String, crate::subscribers::actions::ActionConfig>,
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
        Self::plan(text, name)?.check_files()
    }

    /// The text pass of [`Config::parse`]: the TOML read and every value checked, the
    /// jails planned; nothing on disk is looked at (see [`Plan`]). Err only when the text
    /// is no TOML at all.
    pub fn plan(text: &str, name: &str) -> Result<Plan, ConfigErrors> {
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
        resolve_crowdsec(&src, raw.crowdsec, &mut cfg, &mut m);
        resolve_syslog(&src, raw.syslog, &mut cfg, &mut m);
        // Before the jails, which name them.
        resolve_actions(&src, raw.actions, &mut cfg, &mut m);
        if let Some(v) = raw.metrics.and_then(|r| r.listen) {
            let text = v.get_ref().trim();
            if !text.is_empty() {
                cfg.metrics = m.check(text.parse().map_err(|_| {
                    src.at(
                        &v,
                        format!("metrics listen `{text}` is not ADDRESS:PORT (like \"127.0.0.1:9661\"; empty: off)"),
                    )
                }));
            }
        }
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
        let jails = resolve_jails(jails, &(&src, raw.filters), &mut cfg, &mut m);
        Ok(Plan {
            cfg,
            jails,
            mistakes: m.0,
        })
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
            if !p.actions.is_empty() {
                let _ = writeln!(out, "actions = {}", list(&p.actions));
            }
        };
        for j in &self.jails {
            let _ = writeln!(out, "\n[jails.{}]", j.name);
            let _ = writeln!(out, "filter = {}", q(&j.filter_name));
            let _ = writeln!(out, "logpath = {}", list(&j.logpaths));
            let _ = writeln!(out, "journalmatch = {}", list(&j.journalmatch));
            policy(&mut out, &j.policy);
            if let Some(scope) = &j.policy.scope {
                let (ports, protocol) = scope.config_form();
                let _ = writeln!(out, "ports = {}", list(&ports));
                let _ = writeln!(out, "protocol = \"{protocol}\"");
            }
            let _ = writeln!(out, "ignoreip = {}", nets(&j.ignoreip));
            let _ = writeln!(out, "hosts_deny = {}", j.hosts_deny);
            let _ = writeln!(out, "prefer_journal = {}", j.prefer_journal);
            if j.syslog {
                let _ = writeln!(out, "source = \"syslog\"");
                let _ = writeln!(out, "hosts = {}", list(&j.syslog_hosts));
            }
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
        for a in self.actions.values() {
            let _ = writeln!(out, "\n[actions.{}]", a.name);
            if !a.on_ban.is_empty() {
                let _ = writeln!(out, "on_ban = {}", list(&a.on_ban));
            }
            if !a.on_unban.is_empty() {
                let _ = writeln!(out, "on_unban = {}", list(&a.on_unban));
            }
            if let Some(u) = &a.url {
                let _ = writeln!(out, "url = {}", q(u));
            }
            let _ = writeln!(out, "timeout = \"{}\"", fmt_d(a.timeout));
        }
        if let Some(addr) = &self.metrics {
            let _ = writeln!(out, "\n[metrics]\nlisten = \"{addr}\"");
        }
        if let Some(sl) = &self.syslog {
            let _ = writeln!(out, "\n[syslog]");
            let listen: Vec<String> = sl.listen.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "listen = {}", list(&listen));
            let _ = writeln!(out, "allowed_senders = {}", nets(&sl.allowed_senders));
            let _ = writeln!(out, "max_line = {}", sl.max_line);
            let _ = writeln!(out, "rate_limit = {}", sl.rate_limit);
        }
        if let Some(c) = &self.crowdsec {
            let _ = writeln!(out, "\n[crowdsec]");
            let _ = writeln!(out, "lapi_url = {}", q(&c.lapi_url));
            // A dump is for reading and sharing: the key stays in the file it came from.
            let _ = writeln!(out, "api_key = \"<hidden>\"");
            let _ = writeln!(out, "pull = {}", c.pull);
            let _ = writeln!(out, "update_frequency = \"{}\"", fmt_d(c.update_frequency));
            let _ = writeln!(out, "blocktype = \"{}\"", c.ban_blocktype);
            let captcha = if c.rules.captcha {
                c.captcha_blocktype.as_str()
            } else {
                "ignore"
            };
            let _ = writeln!(out, "captcha = \"{captcha}\"");
            let _ = writeln!(out, "origins = {}", list(&c.rules.origins));
            let _ = writeln!(out, "min_prefix_v4 = {}", c.rules.min_prefix_v4);
            let _ = writeln!(out, "min_prefix_v6 = {}", c.rules.min_prefix_v6);
            let _ = writeln!(out, "push = {}", c.push);
            if let Some(l) = &c.login {
                let _ = writeln!(out, "login = {}", q(l));
            }
            if c.password.is_some() {
                let _ = writeln!(out, "password = \"<hidden>\"");
            }
            if let Some(f) = &c.credentials_file {
                let _ = writeln!(out, "credentials_file = {}", q(&f.display().to_string()));
            }
            if let Some(f) = &c.ca_cert {
                let _ = writeln!(out, "ca_cert = {}", q(&f.display().to_string()));
            }
            if let Some((cert, key)) = &c.client_cert {
                let _ = writeln!(out, "cert = {}", q(&cert.display().to_string()));
                let _ = writeln!(out, "key = {}", q(&key.display().to_string()));
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
            crowdsec: None,
            syslog: None,
            metrics: None,
            actions: BTreeMap::new(),
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
            // Ports are a jail's own: [defaults] bans the whole address.
            scope: None,
            actions: Vec::new(),
        }
    }

    pub fn jail(&self, name: &str) -> Option<&JailConfig> {
        self.jails.iter().find(|j| j.name == name)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
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
