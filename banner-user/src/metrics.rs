//! `[metrics] listen = "127.0.0.1:9661"`: Prometheus/OpenMetrics text, made with the official
//! `prometheus-client` crate from what `stats` and `status` report, so the endpoint, the CLI
//! and their tests read the same figures. Each scrape builds a fresh registry: every figure is
//! a snapshot of the core's own counters, nothing is kept twice.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{
    crowdsec::LinkStatus,
    protocol::{JailStatus, Stats},
};

/// The default scrape address (CrowdSec's bouncers use 60601 and up; fail2ban exporters
/// 9191): free of both.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9661";

/// The `Content-Type` of an OpenMetrics answer (what Prometheus asks for).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of the classic text format, for scrapers that do not ask for OpenMetrics.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Does an `Accept` header ask for OpenMetrics?
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.contains("application/openmetrics-text")
}

/// OpenMetrics text in Prometheus' classic text format: a counter family is named with its
/// `_total` there (OpenMetrics names it without), and there is no `# EOF`. Older scrapers and
/// `promtool check metrics` read this one.
pub fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

type Labels = Vec<(String, String)>;

/// One kernel map's (or set's) fill: its name, the bans in it and its capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    pub map: &'static str,
    pub used: u64,
    pub capacity: u64,
}

/// Everything a scrape shows.
pub struct Snapshot<'a> {
    pub stats: &'a Stats,
    pub jails: &'a [JailStatus],
    pub crowdsec: Option<&'a LinkStatus>,
    pub fills: &'a [Fill],
    pub dry_run: bool,
    /// Seconds from failures found to their ban in force.
    pub detection: Option<&'a Latency>,
}

/// Bucket bounds of the detection latency, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// A latency histogram the core fills and each scrape shows (clones share the counts).
#[derive(Clone, Debug)]
pub struct Latency {
    histogram: Histogram,
    /// The histogram keeps its count to itself (outside the crate's tests).
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            histogram: Histogram::new(LATENCY_BUCKETS),
            count: Default::default(),
        }
    }
}

impl Latency {
    pub fn observe(&self, d: std::time::Duration) {
        self.histogram.observe(d.as_secs_f64());
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn counter_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    registry.register(name, help, f.clone());
    f
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    registry.register(name, help, f.clone());
    f
}

fn label(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The exposition text of a snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut r = Registry::with_prefix("banner");

    let lines = counter_family(&mut r, "jail_lines", "Lines read by the jail's sources");
    let failures = counter_family(&mut r, "jail_failures", "Failures counted toward maxretry");
    let bans = counter_family(&mut r, "jail_bans", "Bans the jail decided");
    let ignored = counter_family(
        &mut r,
        "jail_ignored",
        "Failures from allowlisted addresses, never counted",
    );
    let banned = gauge_family(&mut r, "jail_banned", "Active bans the jail made");
    let tracked = gauge_family(
        &mut r,
        "jail_tracked",
        "Addresses with failures inside findtime",
    );
    let lag = gauge_family(
        &mut r,
        "source_lag_bytes",
        "Bytes of a log file not read yet",
    );
    for j in s.jails {
        let l = label(&[("jail", &j.name)]);
        lines.get_or_create(&l).inc_by(j.lines);
        failures.get_or_create(&l).inc_by(j.failures);
        bans.get_or_create(&l).inc_by(j.bans);
        ignored.get_or_create(&l).inc_by(j.ignored);
        banned.get_or_create(&l).set(gauge_value(j.banned));
        tracked.get_or_create(&l).set(gauge_value(j.tracked));
        for src in &j.sources {
            if let (Some(offset), Some(size)) = (src.offset, src.size) {
                lag.get_or_create(&label(&[("jail", &j.name), ("source", &src.name)]))
                    .set(gauge_value(size.saturating_sub(offset)));
            }
        }
    }

    let st = s.stats;
    let active = Gauge::<i64>::default();
    active.set(gauge_value(st.bans_active));
    r.register(
        "bans_active",
        if s.dry_run {
            "Bans in force (dry run: bans banner would hold, not enforced)"
        } else {
            "Bans in force"
        },
        active,
    );
    let changes = counter_family(&mut r, "ban_changes", "Bans made, lifted and expired");
    changes
        .get_or_create(&label(&[("change", "banned")]))
        .inc_by(st.bans_total);
    changes
        .get_or_create(&label(&[("change", "unbanned")]))
        .inc_by(st.unbans_total);
    changes
        .get_or_create(&label(&[("change", "expired")]))
        .inc_by(st.expired_total);
    let refused = counter_family(&mut r, "bans_refused", "Bans refused, by reason");
    refused
        .get_or_create(&label(&[("reason", "allowlisted")]))
        .inc_by(st.refused_allowlisted);
    refused
        .get_or_create(&label(&[("reason", "full")]))
        .inc_by(st.refused_full);
    let errors = Counter::<u64>::default();
    errors.inc_by(st.backend_errors);
    r.register(
        "backend_errors",
        "Enforcement backend calls that failed",
        errors,
    );
    let packets = counter_family(
        &mut r,
        "packets",
        "Packets seen by the enforcement backend, by verdict",
    );
    for (verdict, n) in &st.packets {
        packets
            .get_or_create(&label(&[("verdict", verdict)]))
            .inc_by(*n);
    }
    let fill = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    r.register(
        "map_fill_ratio",
        "Share of a kernel ban map in use",
        fill.clone(),
    );
    for f in s.fills {
        if f.capacity > 0 {
            fill.get_or_create(&label(&[("map", f.map)]))
                .set(f.used as f64 / f.capacity as f64);
        }
    }
    if let Some(d) = s.detection {
        r.register(
            "detection_latency_seconds",
            "From failures handed over by a source (its batch read and filtered) to the ban they made in force",
            d.histogram.clone(),
        );
    }
    let dry = Gauge::<i64>::default();
    dry.set(i64::from(s.dry_run));
    r.register("dry_run", "1 when nothing is enforced (dry run)", dry);
    if let Some(c) = s.crowdsec {
        let up = Gauge::<i64>::default();
        up.set(i64::from(c.state == "up"));
        r.register("crowdsec_up", "1 while the CrowdSec LAPI link is up", up);
        let held = Gauge::<i64>::default();
        held.set(gauge_value(c.decisions));
        r.register("crowdsec_decisions", "CrowdSec decisions held", held);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{duration::BanLength, model::BlockType, protocol::SourceInfo};

    fn jail() -> JailStatus {
        JailStatus {
            name: "sshd".into(),
            filter: "sshd".into(),
            bantime: BanLength::For(Duration::from_secs(3600)),
            findtime: Duration::from_secs(600),
            maxretry: 3,
            blocktype: BlockType::Tarpit,
            lines: 120,
            failure_lines: 9,
            failures: 7,
            bans: 2,
            banned: 1,
            tracked: 4,
            evicted: 0,
            too_old: 0,
            folded: 2,
            ignored: 3,
            bad_host: 0,
            truncated_lines: 0,
            invalid_utf8_lines: 0,
            source_errors: 0,
            sources: vec![SourceInfo {
                jail: "sshd".into(),
                kind: "file".into(),
                name: "/var/log/auth.log".into(),
                state: "following".into(),
                lines: 120,
                offset: Some(1000),
                size: Some(1500),
                cursor: None,
            }],
        }
    }

    #[test]
    fn a_snapshot_becomes_openmetrics_text() {
        let stats = Stats {
            backend: "xdp".into(),
            packets: [("dropped".to_string(), 42), ("passed".to_string(), 7)]
                .into_iter()
                .collect(),
            bans_active: 5,
            bans_total: 9,
            unbans_total: 1,
            expired_total: 3,
            refused_allowlisted: 2,
            refused_full: 0,
            backend_errors: 0,
        };
        let mut link = LinkStatus::new("http://127.0.0.1:8080");
        link.state = "up".into();
        link.decisions = 11;
        let detection = Latency::default();
        detection.observe(Duration::from_micros(300));
        detection.observe(Duration::from_millis(3));
        let text = render(&Snapshot {
            stats: &stats,
            jails: &[jail()],
            crowdsec: Some(&link),
            fills: &[Fill {
                map: "bans_v4",
                used: 250_000,
                capacity: 1_000_000,
            }],
            dry_run: false,
            detection: Some(&detection),
        });
        for want in [
            "banner_jail_lines_total{jail=\"sshd\"} 120",
            "banner_jail_failures_total{jail=\"sshd\"} 7",
            "banner_jail_bans_total{jail=\"sshd\"} 2",
            "banner_jail_banned{jail=\"sshd\"} 1",
            "banner_source_lag_bytes{jail=\"sshd\",source=\"/var/log/auth.log\"} 500",
            "banner_bans_active 5",
            "banner_ban_changes_total{change=\"expired\"} 3",
            "banner_bans_refused_total{reason=\"allowlisted\"} 2",
            "banner_packets_total{verdict=\"dropped\"} 42",
            "banner_map_fill_ratio{map=\"bans_v4\"} 0.25",
            "banner_crowdsec_up 1",
            "banner_crowdsec_decisions 11",
            "banner_dry_run 0",
            "# TYPE banner_packets counter",
            "# TYPE banner_detection_latency_seconds histogram",
            "banner_detection_latency_seconds_count 2",
            "banner_detection_latency_seconds_bucket{le=\"0.00025\"} 0",
            "banner_detection_latency_seconds_bucket{le=\"0.0005\"} 1",
            "banner_detection_latency_seconds_bucket{le=\"0.005\"} 2",
        ] {
            assert!(text.contains(want), "no `{want}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        let classic = to_classic(&text);
        assert!(classic.contains("# HELP banner_packets_total Packets seen"));
        assert!(classic.contains("# TYPE banner_packets_total counter"));
        assert!(classic.contains("# TYPE banner_bans_active gauge"));
        assert!(!classic.contains("# EOF"));
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        ));
        assert!(!wants_openmetrics("*/*"));
    }
}
