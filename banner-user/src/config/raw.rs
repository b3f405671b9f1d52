//! The file as written: serde structs with every key known and every value spanned.

use super::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) banner: RawBanner,
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default)]
    pub(super) jails: BTreeMap<String, Spanned<RawJail>>,
    #[serde(default)]
    pub(super) filters: BTreeMap<String, Spanned<RawFilter>>,
    pub(super) crowdsec: Option<Spanned<RawCrowdSec>>,
    pub(super) syslog: Option<Spanned<RawSyslog>>,
    pub(super) metrics: Option<RawMetrics>,
    #[serde(default)]
    pub(super) actions: BTreeMap<String, Spanned<RawAction>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub(super) on_ban: Option<Vec<Spanned<String>>>,
    pub(super) on_unban: Option<Vec<Spanned<String>>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<RawDuration>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    /// `"127.0.0.1:9661"`; empty: off.
    pub(super) listen: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBanner {
    pub(super) interfaces: Option<Vec<Spanned<String>>>,
    pub(super) backend: Option<Spanned<String>>,
    pub(super) socket: Option<Spanned<String>>,
    pub(super) state_dir: Option<Spanned<String>>,
    pub(super) bpffs_dir: Option<Spanned<String>>,
    pub(super) keep_on_exit: Option<bool>,
    pub(super) hosts_deny_path: Option<Spanned<String>>,
    pub(super) max_exact_bans: Option<Spanned<i64>>,
    pub(super) max_prefix_bans: Option<Spanned<i64>>,
}

/// A duration written as a string ("10m") or as seconds (600).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Text(String),
    Seconds(i64),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) bantime: Option<Spanned<RawDuration>>,
    pub(super) findtime: Option<Spanned<RawDuration>>,
    pub(super) maxretry: Option<Spanned<i64>>,
    pub(super) blocktype: Option<Spanned<String>>,
    pub(super) ignoreip: Option<Vec<Spanned<String>>>,
    pub(super) ignoreself: Option<bool>,
    pub(super) ignore_attached_subnets: Option<bool>,
    pub(super) bantime_increment: Option<RawIncrement>,
    pub(super) max_tracked: Option<Spanned<i64>>,
    pub(super) usedns: Option<Spanned<String>>,
    pub(super) ipv6_prefix: Option<Spanned<i64>>,
    pub(super) filter_dir: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIncrement {
    pub(super) enabled: Option<bool>,
    pub(super) factor: Option<Spanned<f64>>,
    pub(super) maxtime: Option<Spanned<RawDuration>>,
}

/// A string or a list of strings (`logpath = "/var/log/auth.log"` or `[...]`).
#[derive(Debug)]
pub(super) struct OneOrMany(pub(super) Vec<String>);

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
pub(super) struct RawJail {
    // Every key optional: a jail in the file layers over the embedded default's jail of the
    // same name, key by key (the way jail.local layers over jail.conf).
    pub(super) enabled: Option<bool>,
    pub(super) filter: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) logpath: Option<Spanned<OneOrMany>>,
    pub(super) journalmatch: Option<Spanned<OneOrMany>>,
    pub(super) bantime: Option<Spanned<RawDuration>>,
    pub(super) findtime: Option<Spanned<RawDuration>>,
    pub(super) maxretry: Option<Spanned<i64>>,
    pub(super) blocktype: Option<Spanned<String>>,
    pub(super) ignoreip: Option<Vec<Spanned<String>>>,
    pub(super) bantime_increment: Option<RawIncrement>,
    pub(super) max_tracked: Option<Spanned<i64>>,
    pub(super) usedns: Option<Spanned<String>>,
    pub(super) hosts_deny: Option<bool>,
    pub(super) prefer_journal: Option<bool>,
    /// `"syslog"`: the jail also reads what the syslog receiver takes.
    pub(super) source: Option<Spanned<String>>,
    /// With `source = "syslog"`: only messages from these hosts (name or address).
    pub(super) hosts: Option<Vec<Spanned<String>>>,
    /// Ban only these ports (`[22, "2222", "1000-2000", "ssh"]`); absent: the whole address.
    pub(super) ports: Option<Spanned<Vec<Spanned<RawPort>>>>,
    /// With `ports`: `tcp` (the default), `udp` or `both`.
    pub(super) protocol: Option<Spanned<String>>,
    /// `[actions.NAME]` to run on this jail's bans and unbans.
    pub(super) actions: Option<Vec<Spanned<String>>>,
}

/// A port as written: a number, or text (a number, a range, a service name).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawPort {
    Number(i64),
    Text(String),
}

impl RawJail {
    /// This jail's keys, and `base`'s where this one says nothing.
    pub(super) fn over(self, base: RawJail) -> RawJail {
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
            source: self.source.or(base.source),
            hosts: self.hosts.or(base.hosts),
            ports: self.ports.or(base.ports),
            protocol: self.protocol.or(base.protocol),
            actions: self.actions.or(base.actions),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilter {
    #[serde(default)]
    pub(super) failregex: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) ignoreregex: Vec<Spanned<String>>,
    pub(super) datepattern: Option<Spanned<String>>,
    pub(super) prefregex: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------------------------
// Resolved: what the daemon runs on.
