//! The benchmark report (`cargo xtask bench` writes it to report.json) as types: the bench
//! fills them, its Markdown and charts read them, the harness test reads the file back
//! into them. The keys are report.json's own (other tools read the file): a figure that
//! could not be measured is `null`, a peer that is not installed has `*_absent` instead of
//! its figures, a section that broke is `{"failed": why}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Figures by a size (bans loaded, batch size, rule count), keyed as report.json keys them:
/// the size in decimal.
pub type BySize = BTreeMap<String, f64>;

/// A figure that a failed reading (an unreadable /proc file, no samples) leaves out: NaN
/// becomes `null` rather than a number that is none.
pub fn measured(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    /// Each peer's version, null where it is not installed.
    pub peers: BTreeMap<String, Option<String>>,
    pub quick: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse: Option<Section<Parse>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Section<Filters>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Section<Latency>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Section<Memory>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp: Option<Section<Xdp>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<Section<Bulk>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pps: Option<Section<Pps>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Section<Soak>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crowdsec: Option<Section<CrowdSecBench>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<Section<SyslogBench>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Section<Ops>>,
}

impl Report {
    /// The sections that broke, with why.
    pub fn failures(&self) -> Vec<(&'static str, &str)> {
        [
            ("parse", self.parse.as_ref().and_then(Section::failed)),
            ("filters", self.filters.as_ref().and_then(Section::failed)),
            ("latency", self.latency.as_ref().and_then(Section::failed)),
            ("memory", self.memory.as_ref().and_then(Section::failed)),
            ("xdp", self.xdp.as_ref().and_then(Section::failed)),
            ("bulk", self.bulk.as_ref().and_then(Section::failed)),
            ("pps", self.pps.as_ref().and_then(Section::failed)),
            ("soak", self.soak.as_ref().and_then(Section::failed)),
            ("crowdsec", self.crowdsec.as_ref().and_then(Section::failed)),
            ("syslog", self.syslog.as_ref().and_then(Section::failed)),
            ("ops", self.ops.as_ref().and_then(Section::failed)),
        ]
        .into_iter()
        .filter_map(|(name, why)| Some((name, why?)))
        .collect()
    }
}

/// A section's figures, or why it broke (the other sections still ran).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Section<T> {
    Failed { failed: String },
    Ran(T),
}

impl<T> Section<T> {
    pub fn ran(&self) -> Option<&T> {
        match self {
            Self::Ran(t) => Some(t),
            Self::Failed { .. } => None,
        }
    }

    pub fn failed(&self) -> Option<&str> {
        match self {
            Self::Failed { failed } => Some(failed),
            Self::Ran(_) => None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
}

/// One peer's run over the same input: lines per second and lines it matched, or why it
/// was not run.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerRun<'a> {
    Ran { lines_per_sec: f64, matched: u64 },
    Absent(&'a str),
}

fn peer_run<'a>(
    lines_per_sec: Option<f64>,
    matched: Option<u64>,
    absent: Option<&'a str>,
) -> PeerRun<'a> {
    match lines_per_sec {
        Some(lines_per_sec) => PeerRun::Ran {
            lines_per_sec,
            matched: matched.unwrap_or(0),
        },
        None => PeerRun::Absent(absent.unwrap_or("not run")),
    }
}

/// The sshd jail (filter and counting) over a generated auth log, beside fail2ban-regex
/// and sshguard's parser on the same file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Parse {
    pub lines: u64,
    pub failure_lines_generated: u64,
    pub runs: u64,
    pub banner_lines_per_sec: f64,
    /// Two sources, each on its own log and thread (as the daemon's two runtime workers run
    /// them): the lines both read a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_lines_per_sec_2_threads: Option<f64>,
    pub banner_matched: u64,
    pub banner_bans_decided: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban_lines_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban_matched: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban_absent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshguard_lines_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshguard_matched: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshguard_absent: Option<String>,
}

impl Parse {
    pub fn fail2ban(&self) -> PeerRun<'_> {
        peer_run(
            self.fail2ban_lines_per_sec,
            self.fail2ban_matched,
            self.fail2ban_absent.as_deref(),
        )
    }

    pub fn sshguard(&self) -> PeerRun<'_> {
        peer_run(
            self.sshguard_lines_per_sec,
            self.sshguard_matched,
            self.sshguard_absent.as_deref(),
        )
    }
}

/// fail2ban's filter.d files read by banner, beside fail2ban-regex, per filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filters {
    pub lines: u64,
    pub runs: u64,
    /// By filter name.
    #[serde(flatten)]
    pub by_filter: BTreeMap<String, FilterRun>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FilterRun {
    /// Why the filter was not measured (its sample is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_filter_d_lines_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_filter_d_matched: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_builtin_lines_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_builtin_matched: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban_lines_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban_matched: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_filter_d_vs_fail2ban: Option<f64>,
    /// banner's built-in filter of the same name on the same log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner_builtin_vs_fail2ban: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban_absent: Option<String>,
}

/// What running banner as a service costs: a metrics scrape with many bans, and whether a
/// slow action on ban delays the bans themselves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ops {
    /// Active bans during the loaded scrapes.
    pub scrape_bans: u64,
    /// Milliseconds per GET /metrics (connect to last byte), with no ban and with scrape_bans;
    /// scrape_bytes is the size of the metrics text.
    pub scrape_idle_p50_ms: Option<f64>,
    pub scrape_p50_ms: Option<f64>,
    pub scrape_p99_ms: Option<f64>,
    pub scrape_max_ms: Option<f64>,
    pub scrape_bytes: u64,
    pub scrapes: u64,
    /// The slowest scrape in the 2 s after the bans were loaded, while the core finishes
    /// the batch (the others are taken after).
    pub scrape_after_load_max_ms: Option<f64>,
    /// `banner list` (the table) and `banner list --json` of the scrape_bans bans, seconds
    /// from start to the last line written (to /dev/null).
    #[serde(default)]
    pub list_secs: Option<f64>,
    #[serde(default)]
    pub list_json_secs: Option<f64>,
    /// The daemon's resident set with scrape_bans bans, settled (MB).
    #[serde(default)]
    pub rss_mb_bans: Option<f64>,
    /// Failure line -> ban in the kernel map, without actions and with a slow one (a command
    /// that sleeps) on every ban.
    pub latency_no_action: Latency,
    pub latency_slow_action: Latency,
    pub slow_action: String,
}

/// A failure line appended -> its ban in the kernel map, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub bans: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub timeouts: u64,
    /// The same, while the log takes `flood_lines_per_sec` noise lines besides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_lines_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_max_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_timeouts: Option<u64>,
}

/// The daemon's resident set, idle and with many distinct failing addresses tracked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memory {
    pub rss_mb_idle: Option<f64>,
    pub tracked: u64,
    pub rss_mb_1m_tracked: Option<f64>,
    pub addresses: u64,
    pub ingest_secs: f64,
}

/// ns per packet by BPF_PROG_TEST_RUN, by bans loaded; the tarpit's replies; xdp-filter
/// on the same clean frame.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Xdp {
    pub banned_v4_ns: BySize,
    pub clean_v4_ns: BySize,
    pub banned_v6_ns: BySize,
    pub clean_v6_ns: BySize,
    pub tarpit_syn_ns: f64,
    pub tarpit_ack_ns: f64,
    pub drop_syn_ns: f64,
    /// A ban scoped to tcp:22: a SYN to port 22 (dropped) and to port 80 (passed).
    #[serde(default)]
    pub scoped_in_ns: f64,
    #[serde(default)]
    pub scoped_out_ns: f64,
    pub clean_v4_ratio_max_vs_1: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp_filter_clean_v4_ns: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp_filter_absent: Option<String>,
    pub repeat: u64,
    pub samples: u64,
    pub ban_counts: Vec<u64>,
}

/// Seconds to apply a batch of bans, per backend and batch size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bulk {
    #[serde(default)]
    pub xdp: BySize,
    /// The same figures as `xdp`, under the name the checks read.
    #[serde(default)]
    pub xdp_s: BySize,
    #[serde(default)]
    pub nftables: BySize,
    #[serde(default)]
    pub ipset: BySize,
    #[serde(default)]
    pub iptables_rule_per_ban: BySize,
    pub sizes: Vec<u64>,
    pub runs: u64,
}

/// Packets per second dropped from a flooding banned address, per backend (or why the
/// flood could not be sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pps {
    Absent { absent: String },
    Ran(PpsRun),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PpsRun {
    pub xdp_10k: f64,
    pub xdp_10k_sent: f64,
    /// xdp-tools' xdp-filter (deny by source address), native mode on the same veth.
    #[serde(default)]
    pub xdp_filter: f64,
    #[serde(default)]
    pub xdp_filter_sent: f64,
    /// How sender and receiver were placed (CPUs, NAPI), or why they could not be.
    #[serde(default)]
    pub placement: String,
    pub nftables_10k: f64,
    pub nftables_10k_sent: f64,
    pub ipset_10k: f64,
    pub ipset_10k_sent: f64,
    pub iptables_rules_10k: f64,
    pub iptables_rules_10k_sent: f64,
    /// Packets/s dropped by one iptables rule per address, by rule count.
    pub iptables_rules_pps_by_count: BySize,
    pub seconds: u64,
    pub bans: u64,
    pub runs: u64,
}

impl PpsRun {
    /// (backend, dropped/s, sent/s), banner's XDP first.
    pub fn rows(&self) -> [(&'static str, f64, f64); 5] {
        [
            ("banner, XDP", self.xdp_10k, self.xdp_10k_sent),
            (
                "xdp-filter (xdp-tools)",
                self.xdp_filter,
                self.xdp_filter_sent,
            ),
            (
                "banner, nftables set",
                self.nftables_10k,
                self.nftables_10k_sent,
            ),
            (
                "banner, iptables + ipset",
                self.ipset_10k,
                self.ipset_10k_sent,
            ),
            (
                "one iptables rule per address",
                self.iptables_rules_10k,
                self.iptables_rules_10k_sent,
            ),
        ]
    }
}

/// Minutes of mixed log traffic: the daemon's memory, descriptors and CPU over time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Soak {
    pub minutes: f64,
    pub lines: u64,
    pub rotations: u64,
    pub reloads: u64,
    pub bans_loaded: u64,
    pub jail_bans: Option<u64>,
    pub samples: u64,
    pub rss_mb_start: Option<f64>,
    pub rss_mb_end: Option<f64>,
    pub rss_mb_per_hour: Option<f64>,
    pub fds_start: Option<f64>,
    pub fds_end: Option<f64>,
    pub fds_per_hour: Option<f64>,
    pub cpu_percent: Option<f64>,
}

/// CrowdSec's decisions, from `cscli decisions import` to enforced, per decision count
/// (seconds from the import's start; the import alone beside them), and one gateway's jail
/// ban to the other gateway's enforcement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CrowdSecBench {
    pub sizes: Vec<u64>,
    pub import_s: BySize,
    pub banner_xdp_s: BySize,
    pub banner_nftables_s: BySize,
    #[serde(default)]
    pub firewall_bouncer_s: BySize,
    /// Decisions the firewall bouncer had not enforced when it was given up on (120 s),
    /// per decision count.
    #[serde(default)]
    pub firewall_bouncer_missed: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall_bouncer_absent: Option<String>,
    /// A ban on gateway A (log line written) to enforced on gateway B, with a 1 s
    /// update_frequency.
    pub propagation_bans: u64,
    pub propagation_p50_s: f64,
    pub propagation_p99_s: f64,
    pub propagation_max_s: f64,
}

/// Syslog lines received and judged from a peer namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyslogBench {
    pub tcp_lines: u64,
    pub tcp_lines_per_sec: f64,
    pub udp_sent: u64,
    pub udp_received: u64,
    pub udp_lines_per_sec: f64,
    /// Share of UDP datagrams lost (0-1).
    pub udp_loss: f64,
}
