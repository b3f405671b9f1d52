//! Measurements that need banner's library (run by `cargo xtask bench`, which also runs the
//! peers and writes the report). Each subcommand prints one JSON object on stdout.
//!
//!   banner-bench [--quick] [--out DIR] [SECTION]...
//!
//! Sections: xdp (ns/packet from BPF_PROG_TEST_RUN, banner and xdp-filter). Writes
//! DIR/report.json and DIR/report.md and prints the Markdown.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::{Duration, SystemTime},
};

use banner::{
    addr::IpPrefix,
    backend::{xdp::XdpBackend, Backend},
    model::{BlockSpec, BlockType},
};
use netfilter::{bench_bulk, bench_pps};
use tests::{
    authlog,
    packet::udp_frame,
    report::{measured, Latency, Machine, Memory, Parse, PeerRun, Pps, Report, Section, Xdp},
};

mod charts;
mod filters;
mod fleet;
mod netfilter;
mod ops;
mod soak;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut out_dir = PathBuf::from("target/bench");
    let mut sections: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {}
            "--out" => out_dir = PathBuf::from(it.next().expect("--out needs a directory")),
            s if SECTIONS.contains(&s) => sections.push(s.to_string()),
            other => {
                eprintln!("banner-bench: unknown argument `{other}`\nusage: banner-bench [--quick] [--out DIR] [{}]...", SECTIONS.join("|"));
                std::process::exit(2);
            }
        }
    }
    if sections.is_empty() {
        sections = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let mut report = Report {
        machine: machine(),
        peers: peers(),
        quick,
        ..Report::default()
    };
    let json_path = out_dir.join("report.json");
    let mut failed = Vec::new();
    for section in &sections {
        eprintln!("bench: {section}{}", if quick { " (quick)" } else { "" });
        match section.as_str() {
            "xdp" => report.xdp = Some(guarded(section, &mut failed, || bench_xdp(quick))),
            "parse" => report.parse = Some(guarded(section, &mut failed, || bench_parse(quick))),
            "filters" => {
                report.filters = Some(guarded(section, &mut failed, || {
                    filters::bench_filters(quick)
                }))
            }
            "latency" => {
                report.latency = Some(guarded(section, &mut failed, || bench_latency(quick)))
            }
            "memory" => report.memory = Some(guarded(section, &mut failed, || bench_memory(quick))),
            "bulk" => report.bulk = Some(guarded(section, &mut failed, || bench_bulk(quick))),
            "pps" => report.pps = Some(guarded(section, &mut failed, || bench_pps(quick))),
            "soak" => report.soak = Some(guarded(section, &mut failed, || soak::bench_soak(quick))),
            "crowdsec" => {
                report.crowdsec = Some(guarded(section, &mut failed, || {
                    fleet::bench_crowdsec(quick)
                }))
            }
            "syslog" => {
                report.syslog = Some(guarded(section, &mut failed, || fleet::bench_syslog(quick)))
            }
            "ops" => report.ops = Some(guarded(section, &mut failed, || ops::bench_ops(quick))),
            _ => unreachable!("checked above"),
        }
        // Written after every section: a run cut short keeps what it measured.
        std::fs::write(
            &json_path,
            serde_json::to_string_pretty(&report).expect("encode"),
        )
        .expect("write report.json");
    }
    let charts = charts::draw(&report, &out_dir);
    let mut md = markdown(&report);
    if !charts.is_empty() {
        md.push_str("\n## Charts\n\n");
        for c in &charts {
            md.push_str(&format!("![{c}]({c})\n"));
        }
    }
    std::fs::write(out_dir.join("report.md"), &md).expect("write report.md");
    print!("{md}");
    eprintln!("bench: wrote {} and report.md", json_path.display());
    if !failed.is_empty() {
        eprintln!("bench: sections that failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}

/// Run one section; one that breaks is reported as such (the others still run and are
/// kept).
fn guarded<T>(
    name: &str,
    failed: &mut Vec<String>,
    section: impl FnOnce() -> T + std::panic::UnwindSafe,
) -> Section<T> {
    std::panic::catch_unwind(section).map_or_else(
        |e| {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            failed.push(name.to_string());
            Section::Failed { failed: why }
        },
        Section::Ran,
    )
}

const SECTIONS: &[&str] = &[
    "parse", "filters", "latency", "memory", "xdp", "bulk", "pps", "soak", "crowdsec", "syslog",
    "ops",
];

/// The machine the figures come from.
fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Machine { cpu, cores, kernel }
}

/// Versions of the tools banner is measured against, or null where absent.
fn peers() -> BTreeMap<String, Option<String>> {
    let version = |program: &str, args: &[&str]| -> Option<String> {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.lines().next().unwrap_or("").trim().to_string()
            })
            .filter(|t| !t.is_empty())
    };
    let dpkg = |pkg: &str| -> Option<String> {
        std::process::Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", pkg])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|t| !t.is_empty())
    };
    [
        ("fail2ban", version("fail2ban-regex", &["--version"])),
        ("sshguard", dpkg("sshguard")),
        ("xdp-tools", dpkg("xdp-tools")),
        ("nftables", version("nft", &["--version"])),
        ("iptables", version("iptables", &["--version"])),
        ("ipset", version("ipset", &["--version"])),
        ("trafgen", dpkg("netsniff-ng")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A figure as the tables show it ("-" where there is none).
pub(crate) fn num(v: Option<f64>) -> String {
    v.filter(|f| f.is_finite())
        .map_or_else(|| "-".into(), |f| format!("{f:.0}"))
}

/// An optional count as the tables show it.
fn count(v: Option<u64>) -> String {
    v.map_or_else(|| "null".into(), |n| n.to_string())
}

/// The report as Markdown tables, each banner figure beside its peer.
fn markdown(r: &Report) -> String {
    let m = &r.machine;
    let mut out = format!(
        "# banner benchmarks\n\nMachine: {} ({} cores), kernel {}.{}\n",
        m.cpu,
        m.cores,
        m.kernel,
        if r.quick {
            " Quick run: small sizes, not for comparison."
        } else {
            ""
        }
    );
    for (name, why) in r.failures() {
        out.push_str(&format!("\n**The {name} section failed**: {why}\n"));
    }
    let list: Vec<String> = r
        .peers
        .iter()
        .map(|(k, v)| format!("{k} {}", v.as_deref().unwrap_or("absent")))
        .collect();
    out.push_str(&format!("\nPeers: {}.\n", list.join("; ")));
    if let Some(p) = r.parse.as_ref().and_then(Section::ran) {
        let ours = p.banner_lines_per_sec;
        out.push_str(&format!(
            "\n## Parsing: the sshd jail over a {}-line auth log (30% failures, 5k v4/v6 addresses; median of {} runs)\n\n| tool | lines/s | failure lines matched | banner is |\n|---|---|---|---|\n| banner (filter + jail, one core) | {} | {} | 1.00x |\n",
            p.lines, p.runs, num(Some(ours)), p.banner_matched
        ));
        if let Some(two) = p.banner_lines_per_sec_2_threads {
            out.push_str(&format!(
                "| banner, two logs on two threads (both together) | {} | | {:.2}x |\n",
                num(Some(two)),
                two / ours
            ));
        }
        for (label, run) in [
            ("fail2ban-regex (fail2ban's sshd filter)", p.fail2ban()),
            ("sshg-parser (sshguard)", p.sshguard()),
        ] {
            match run {
                PeerRun::Ran {
                    lines_per_sec,
                    matched,
                } => out.push_str(&format!(
                    "| {label} | {} | {matched} | {:.1}x faster |\n",
                    num(Some(lines_per_sec)),
                    if lines_per_sec > 0.0 {
                        ours / lines_per_sec
                    } else {
                        0.0
                    }
                )),
                PeerRun::Absent(why) => out.push_str(&format!("| {label} | absent: {why} | | |\n")),
            }
        }
        out.push_str(&format!(
            "\nThe log holds {} failure lines. Neither banner's built-in nor fail2ban's filter counts `Connection closed by authenticating user ... [preauth]` in normal mode (fail2ban's rules, which banner's built-in follows); banner counts one connection's marker and attempt lines once, fail2ban each line.\n",
            p.failure_lines_generated
        ));
    }
    if let Some(f) = r.filters.as_ref().and_then(Section::ran) {
        out.push_str(&filters::markdown(f));
    }
    if let Some(l) = r.latency.as_ref().and_then(Section::ran) {
        let ms = |v: Option<f64>| v.unwrap_or(f64::NAN);
        out.push_str(&format!(
            "\n## Detection latency: line appended -> ban in the kernel map ({} bans, maxretry 1)\n\n| log | p50 | p90 | p99 | max | timeouts |\n|---|---|---|---|---|---|\n| quiet | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} |\n",
            l.bans,
            ms(l.p50_ms),
            ms(l.p90_ms),
            ms(l.p99_ms),
            ms(l.max_ms),
            l.timeouts
        ));
        if let Some(rate) = l.flood_lines_per_sec {
            out.push_str(&format!(
                "| {:.0}k noise lines/s | {:.2} ms | | {:.2} ms | {:.2} ms | {} |\n",
                rate / 1000.0,
                ms(l.flood_p50_ms),
                ms(l.flood_p99_ms),
                ms(l.flood_max_ms),
                l.flood_timeouts.unwrap_or(0)
            ));
        }
    }
    if let Some(o) = r.ops.as_ref().and_then(Section::ran) {
        let ms = |v: Option<f64>| v.unwrap_or(f64::NAN);
        out.push_str(&format!(
            "\n## Operations: metrics scrape and actions\n\nGET /metrics, connect to last byte ({} scrapes; no peer here exposes the same figures):\n\n| bans | p50 | p99 | max | size |\n|---|---|---|---|---|\n| 0 | {:.2} ms | | | |\n| {} | {:.2} ms | {:.2} ms | {:.2} ms | {} bytes |\n\nThe slowest scrape in the 2 s after the bans were loaded (waiting for the core to finish the batch): {:.1} ms.\n\n`banner list` of the {} bans: {:.2} s (table), {:.2} s (`--json`); the daemon's resident set with them: {:.0} MB.\n\nLine appended -> ban in the kernel map ({} bans each), with `{}` run on every ban:\n\n| | p50 | p99 | max | timeouts |\n|---|---|---|---|---|\n| no action | {:.2} ms | {:.2} ms | {:.2} ms | {} |\n| slow action | {:.2} ms | {:.2} ms | {:.2} ms | {} |\n",
            o.scrapes,
            ms(o.scrape_idle_p50_ms),
            o.scrape_bans,
            ms(o.scrape_p50_ms),
            ms(o.scrape_p99_ms),
            ms(o.scrape_max_ms),
            o.scrape_bytes,
            ms(o.scrape_after_load_max_ms),
            o.scrape_bans,
            ms(o.list_secs),
            ms(o.list_json_secs),
            ms(o.rss_mb_bans),
            o.latency_no_action.bans,
            o.slow_action,
            ms(o.latency_no_action.p50_ms),
            ms(o.latency_no_action.p99_ms),
            ms(o.latency_no_action.max_ms),
            o.latency_no_action.timeouts,
            ms(o.latency_slow_action.p50_ms),
            ms(o.latency_slow_action.p99_ms),
            ms(o.latency_slow_action.max_ms),
            o.latency_slow_action.timeouts,
        ));
    }
    if let Some(m) = r.memory.as_ref().and_then(Section::ran) {
        out.push_str(&format!(
            "\n## Memory: daemon resident set\n\n| idle | {} distinct failing addresses tracked |\n|---|---|\n| {:.1} MB | {:.1} MB ({} tracked, read in {:.1} s) |\n",
            m.addresses,
            m.rss_mb_idle.unwrap_or(f64::NAN),
            m.rss_mb_1m_tracked.unwrap_or(f64::NAN),
            m.tracked,
            m.ingest_secs
        ));
    }
    if let Some(s) = r.soak.as_ref().and_then(Section::ran) {
        let f = |v: Option<f64>| v.unwrap_or(f64::NAN);
        out.push_str(&format!(
            "\n## Soak: {:.1} minutes of mixed log traffic ({} lines, {} rotations, {} reloads, {} bans loaded, {} jail bans)\n\n| | start | end | growth per hour |\n|---|---|---|---|\n| RSS | {:.1} MB | {:.1} MB | {:+.2} MB/h |\n| open descriptors | {} | {} | {:+.2}/h |\n\nCPU: {:.2}% of one core on average.\n",
            s.minutes,
            s.lines,
            s.rotations,
            s.reloads,
            s.bans_loaded,
            count(s.jail_bans),
            f(s.rss_mb_start),
            f(s.rss_mb_end),
            f(s.rss_mb_per_hour),
            num(s.fds_start),
            num(s.fds_end),
            f(s.fds_per_hour),
            f(s.cpu_percent),
        ));
    }
    if let Some(b) = r.bulk.as_ref().and_then(Section::ran) {
        let sizes: Vec<String> = b.sizes.iter().map(u64::to_string).collect();
        out.push_str(&format!(
            "\n## Loading bans: seconds to apply a batch (median of {} runs; one process per ban: 1 run)\n\n| backend | {} |\n|---|{}\n",
            b.runs,
            sizes.iter().map(|s| format!("{s} bans")).collect::<Vec<_>>().join(" | "),
            "---|".repeat(sizes.len())
        ));
        for (figures, label) in [
            (&b.xdp, "banner, XDP maps"),
            (&b.nftables, "banner, nftables set (one nft -f batch)"),
            (&b.ipset, "banner, ipset (one ipset restore)"),
            (
                &b.iptables_rule_per_ban,
                "one iptables process and rule per ban (fail2ban's way)",
            ),
        ] {
            let cells: Vec<String> = sizes
                .iter()
                .map(|s| figures.get(s).map_or("-".into(), |v| format!("{v:.3}")))
                .collect();
            out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
        }
        // The ratio that matters: one batch against one process per ban, at the largest size
        // both were measured at.
        if let Some((size, theirs)) = sizes
            .iter()
            .rev()
            .find_map(|s| Some((s, *b.iptables_rule_per_ban.get(s)?)))
        {
            for (figures, label) in [
                (&b.xdp, "XDP"),
                (&b.nftables, "nftables"),
                (&b.ipset, "ipset"),
            ] {
                if let Some(ours) = figures.get(size).filter(|v| **v > 0.0) {
                    out.push_str(&format!(
                        "\nAt {size} bans banner's {label} batch is {:.0}x faster than one process per ban.",
                        theirs / ours
                    ));
                }
            }
            out.push('\n');
        }
    }
    if let Some(Pps::Absent { absent }) = r.pps.as_ref().and_then(Section::ran) {
        out.push_str(&format!(
            "\n## Drop rate: UDP flood from a banned address\n\nNot measured: {absent}.\n"
        ));
    }
    if let Some(Pps::Ran(p)) = r.pps.as_ref().and_then(Section::ran) {
        out.push_str(&format!(
            "\n## Drop rate: UDP flood from a banned address (trafgen, {} s, {} bans loaded, median of {} floods)\n\nPlacement: {}.\n\n| backend | packets/s dropped | sent/s | vs banner XDP |\n|---|---|---|---|\n",
            p.seconds, p.bans, p.runs, p.placement
        ));
        let base = p.xdp_10k;
        for (label, dropped, sent) in p.rows() {
            let ratio = if base > 0.0 {
                format!("{:.2}x", dropped / base)
            } else {
                "-".into()
            };
            out.push_str(&format!(
                "| {label} | {} | {} | {ratio} |\n",
                num(Some(dropped)),
                num(Some(sent))
            ));
        }
    }
    if let Some(x) = r.xdp.as_ref().and_then(Section::ran) {
        out.push_str(&format!(
            "\n## XDP: ns per packet (BPF_PROG_TEST_RUN, median of {} runs of {} packets)\n\n",
            x.samples, x.repeat
        ));
        let counts: Vec<String> = x.ban_counts.iter().map(u64::to_string).collect();
        out.push_str(&format!(
            "| packet | {} |\n|---|{}\n",
            counts
                .iter()
                .map(|c| format!("{c} bans"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(counts.len())
        ));
        for (figures, label) in [
            (&x.clean_v4_ns, "clean IPv4"),
            (&x.banned_v4_ns, "banned IPv4 (drop)"),
            (&x.clean_v6_ns, "clean IPv6"),
            (&x.banned_v6_ns, "banned IPv6 (drop)"),
        ] {
            let cells: Vec<String> = counts
                .iter()
                .map(|c| num(figures.get(c).copied()))
                .collect();
            out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
        }
        out.push_str(&format!(
            "\n| banned IPv4 TCP (single runs, median) | ns/packet |\n|---|---|\n| drop | {} |\n| tarpit: SYN -> SYN/ACK | {} |\n| tarpit: ACK -> zero-window ACK | {} |\n| ban scoped to tcp:22, SYN to 22 (drop) | {} |\n| ban scoped to tcp:22, SYN to 80 (pass) | {} |\n",
            num(Some(x.drop_syn_ns)),
            num(Some(x.tarpit_syn_ns)),
            num(Some(x.tarpit_ack_ns)),
            num(Some(x.scoped_in_ns)),
            num(Some(x.scoped_out_ns))
        ));
        out.push_str(&format!(
            "\nClean IPv4 with the most bans vs 1 ban: {:.2}x (goal: at most 1.3x).\n",
            x.clean_v4_ratio_max_vs_1
        ));
        match x.xdp_filter_clean_v4_ns {
            Some(theirs) => {
                let most = counts.last().cloned().unwrap_or_default();
                let ours = x.clean_v4_ns.get(&most).copied().unwrap_or(0.0);
                out.push_str(&format!(
                    "\n| clean IPv4 | ns/packet | vs banner |\n|---|---|---|\n| banner ({most} bans) | {} | 1.00x |\n| xdp-filter (xdp-tools, deny-by-IP) | {} | {:.2}x |\n",
                    num(Some(ours)),
                    num(Some(theirs)),
                    if ours > 0.0 { theirs / ours } else { 0.0 }
                ));
            }
            None => out.push_str(&format!(
                "\nxdp-filter: absent ({}).\n",
                x.xdp_filter_absent.as_deref().unwrap_or("?")
            )),
        }
    }
    if let Some(c) = r.crowdsec.as_ref().and_then(Section::ran) {
        out.push_str("\n## CrowdSec: decisions from `cscli decisions import` to enforced (seconds from the import's start)\n\n| decisions | import alone | banner XDP | banner nftables | crowdsec-firewall-bouncer (nftables) | bouncer / banner XDP |\n|---|---|---|---|---|---|\n");
        let secs = |m: &tests::report::BySize, k: &str| m.get(k).copied();
        let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.2}"));
        for n in &c.sizes {
            let k = n.to_string();
            let (x, b) = (secs(&c.banner_xdp_s, &k), secs(&c.firewall_bouncer_s, &k));
            let ratio = match (x, b) {
                (Some(x), Some(b)) if x > 0.0 => format!("{:.1}x", b / x),
                _ => "-".into(),
            };
            let peer = match c.firewall_bouncer_missed.get(&k) {
                Some(missed) => format!("never all: {missed} missing after 120 s"),
                None => f(b),
            };
            out.push_str(&format!(
                "| {n} | {} | {} | {} | {peer} | {ratio} |\n",
                f(secs(&c.import_s, &k)),
                f(x),
                f(secs(&c.banner_nftables_s, &k)),
            ));
        }
        if let Some(why) = &c.firewall_bouncer_absent {
            out.push_str(&format!("\ncrowdsec-firewall-bouncer: absent ({why}).\n"));
        }
        out.push_str(&format!(
            "\nPropagation, a jail's ban on gateway A to enforced on gateway B (update_frequency 1 s, {} bans): p50 {:.2} s, p99 {:.2} s, max {:.2} s.\n",
            c.propagation_bans, c.propagation_p50_s, c.propagation_p99_s, c.propagation_max_s
        ));
    }
    if let Some(sl) = r.syslog.as_ref().and_then(Section::ran) {
        out.push_str(&format!(
            "\n## Syslog: lines received and judged from a peer namespace (sshd jail, 1 in 4 a failure)\n\n| transport | lines | lines/s | lost |\n|---|---|---|---|\n| TCP (newline framing) | {} | {} | 0 |\n| UDP (one datagram a line, as fast as python3 sends) | {} of {} | {} | {:.1}% |\n",
            sl.tcp_lines,
            num(Some(sl.tcp_lines_per_sec)),
            sl.udp_received,
            sl.udp_sent,
            num(Some(sl.udp_lines_per_sec)),
            sl.udp_loss * 100.0
        ));
    }
    out
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean ns per run of `frame`, median over `samples` test_runs of `repeat` runs each.
fn ns_per_packet(backend: &mut XdpBackend, frame: &[u8], repeat: u32, samples: usize) -> f64 {
    let runs: Vec<f64> = (0..samples)
        .map(|_| {
            let r = backend.test_run(frame, repeat).expect("test_run");
            r.duration.as_nanos() as f64
        })
        .collect();
    median(runs)
}

/// Filler bans that no probe frame uses: IPv4 from 240.0.0.0/4 (reserved, never routed),
/// IPv6 from 2001:db8:ffff::/48.
fn filler(i: u32) -> (IpPrefix, IpPrefix) {
    let v4 = Ipv4Addr::from(0xf000_0000u32 + i);
    let v6 = Ipv6Addr::from(0x2001_0db8_ffff_0000_0000_0000_0000_0000u128 + u128::from(i));
    (
        IpPrefix::host(IpAddr::V4(v4)),
        IpPrefix::host(IpAddr::V6(v6)),
    )
}

struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_xdp(quick: bool) -> Xdp {
    let counts: &[u32] = if quick {
        &[1, 1_000, 10_000]
    } else {
        &[1, 10_000, 1_000_000]
    };
    let (repeat, samples) = if quick { (20_000, 3) } else { (1_000_000, 5) };
    let max = counts.iter().max().copied().unwrap_or(1) + 16;
    let mut loaded = tests::Loaded::new("bench", max);
    let backend = &mut loaded.backend;

    let host4: IpAddr = "198.18.0.1".parse().unwrap();
    let host6: IpAddr = "2001:db8::1".parse().unwrap();
    let bad4: IpAddr = "198.18.1.7".parse().unwrap();
    let bad6: IpAddr = "2001:db8:1::7".parse().unwrap();
    // Banned and clean, IPv4 and IPv6, in the order of `Xdp`'s figures below.
    let frames = [
        udp_frame(bad4, host4),
        udp_frame("198.18.1.8".parse().unwrap(), host4),
        udp_frame(bad6, host6),
        udp_frame("2001:db8:1::8".parse().unwrap(), host6),
    ];
    let expires_at = Some(SystemTime::now() + Duration::from_secs(3600));
    let spec = |target| BlockSpec {
        target,
        blocktype: BlockType::Drop,
        expires_at,
        scope: None,
    };
    backend
        .block(&[spec(IpPrefix::host(bad4)), spec(IpPrefix::host(bad6))])
        .expect("ban probes");

    let mut x = Xdp {
        repeat: u64::from(repeat),
        samples: samples as u64,
        ban_counts: counts.iter().map(|&n| u64::from(n)).collect(),
        ..Xdp::default()
    };
    let mut loaded = 1u32;
    for &n in counts {
        // Top the maps up to n bans per family (the probe is one of them).
        let batch: Vec<BlockSpec> = (loaded..n)
            .flat_map(|i| {
                let (a, b) = filler(i);
                [spec(a), spec(b)]
            })
            .collect();
        for chunk in batch.chunks(100_000) {
            backend.block(chunk).expect("filling the ban maps");
        }
        loaded = n.max(loaded);
        for (figures, frame) in [
            (&mut x.banned_v4_ns, &frames[0]),
            (&mut x.clean_v4_ns, &frames[1]),
            (&mut x.banned_v6_ns, &frames[2]),
            (&mut x.clean_v6_ns, &frames[3]),
        ] {
            figures.insert(
                n.to_string(),
                ns_per_packet(backend, frame, repeat, samples),
            );
        }
    }
    // The tarpit's replies against a plain drop, for the same kind of packet.
    let tarpit4: IpAddr = "198.18.2.7".parse().unwrap();
    backend
        .block(&[BlockSpec {
            target: IpPrefix::host(tarpit4),
            blocktype: BlockType::Tarpit,
            expires_at,
            scope: None,
        }])
        .expect("tarpit probe");
    use tests::packet::{tcp_frame, TCP_ACK, TCP_SYN};
    // A tarpit reply rewrites the frame, and test_run repeats on the rewritten frame; so
    // these are single runs, many of them, the median taken.
    let singles = if quick { 2_000 } else { 20_000 };
    x.tarpit_syn_ns = ns_per_packet(
        backend,
        &tcp_frame(tarpit4, host4, &[], TCP_SYN, 1, 0, b""),
        1,
        singles,
    );
    x.tarpit_ack_ns = ns_per_packet(
        backend,
        &tcp_frame(tarpit4, host4, &[], TCP_ACK, 1, 2, b""),
        1,
        singles,
    );
    x.drop_syn_ns = ns_per_packet(
        backend,
        &tcp_frame(bad4, host4, &[], TCP_SYN, 1, 0, b""),
        1,
        singles,
    );
    // A port-scoped ban: the port check after the address lookup, inside and outside.
    let scoped4: IpAddr = "198.18.3.7".parse().unwrap();
    backend
        .block(&[BlockSpec {
            target: IpPrefix::host(scoped4),
            blocktype: BlockType::Drop,
            expires_at,
            scope: Some(std::sync::Arc::new("tcp:22".parse().expect("a scope"))),
        }])
        .expect("scoped probe");
    let syn_to = |port| {
        use tests::packet::{frame, tcp, PROTO_TCP};
        let seg = tcp(scoped4, host4, 41000, port, 1, 0, TCP_SYN, 64240, b"");
        frame(scoped4, host4, &[], PROTO_TCP, &seg)
    };
    x.scoped_in_ns = ns_per_packet(backend, &syn_to(22), 1, singles);
    x.scoped_out_ns = ns_per_packet(backend, &syn_to(80), 1, singles);
    let _ = backend.shutdown(false);
    let at = |n: u32| x.clean_v4_ns.get(&n.to_string()).copied().unwrap_or(0.0);
    let (first, last) = (at(counts[0]), at(counts[counts.len() - 1]));
    x.clean_v4_ratio_max_vs_1 = if first > 0.0 { last / first } else { 0.0 };
    match xdp_filter_clean_v4(&frames[1], repeat, samples) {
        Ok(ns) => x.xdp_filter_clean_v4_ns = Some(ns),
        Err(why) => x.xdp_filter_absent = Some(why),
    };
    x
}

/// xdp-tools' xdp-filter program (deny by IP) on the same clean IPv4 frame, loaded with aya
/// with its maps pinned in a private directory (its object asks for /sys/fs/bpf itself).
fn xdp_filter_clean_v4(frame: &[u8], repeat: u32, samples: usize) -> Result<f64, String> {
    use aya::programs::{TestRun as _, TestRunOptions, Xdp};
    let object = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_ip.o";
    if !std::path::Path::new(object).exists() {
        return Err(format!("{object} not installed (xdp-tools)"));
    }
    let dir = PathBuf::from(format!(
        "/sys/fs/bpf/banner-bench-xf-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let _pins = Pins(dir.clone());
    let mut loader = aya::EbpfLoader::new();
    loader.default_map_pin_directory(&dir);
    let mut ebpf = loader
        .load_file(object)
        .map_err(|e| format!("loading {object}: {e}"))?;
    let name = ebpf
        .programs()
        .map(|(n, _)| n.to_string())
        .next()
        .ok_or("no program in the object")?;
    let prog: &mut Xdp = ebpf
        .program_mut(&name)
        .ok_or("program vanished")?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    prog.load()
        .map_err(|e| format!("the kernel refused xdp-filter: {e}"))?;
    let mut runs = Vec::new();
    for _ in 0..samples {
        let mut out = vec![0u8; frame.len() + 64];
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(|e| format!("test_run: {e}"))?;
        runs.push(r.duration.as_nanos() as f64);
    }
    Ok(median(runs))
}

// ---------------------------------------------------------------------------------------------
// parse: lines/s of the sshd jail, beside fail2ban-regex and sshguard's parser, same file.

fn bench_parse(quick: bool) -> Parse {
    let lines = if quick { 20_000 } else { 1_000_000 };
    let runs = if quick { 3 } else { 5 };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    let generated = authlog::generate(&log, lines, 0.3, 5_000, 42);

    let mut timings = Vec::new();
    let mut matched = 0;
    let mut bans = 0;
    // The embedded default's sshd jail, built once, outside the timing, as the daemon builds
    // it at start.
    let cfg = banner::config::Config::embedded().expect("the embedded default");
    let sshd = cfg.jail("sshd").expect("the default sshd jail");
    for _ in 0..runs {
        let secs;
        (secs, matched, bans) = parse_log(&log, sshd);
        timings.push(secs);
    }
    let secs = median(timings);
    let two = parse_two_threads(&log, sshd, runs);
    let mut p = Parse {
        lines: generated.lines as u64,
        failure_lines_generated: generated.failure_lines as u64,
        runs: runs as u64,
        banner_lines_per_sec: lines as f64 / secs,
        banner_lines_per_sec_2_threads: measured(2.0 * lines as f64 / two),
        banner_matched: matched,
        banner_bans_decided: bans,
        ..Parse::default()
    };

    // BANNER_BENCH_NO_PEERS: banner's figures only (while working on them).
    if std::env::var_os("BANNER_BENCH_NO_PEERS").is_some() {
        return p;
    }
    match fail2ban_regex(&log, runs.min(3)) {
        Ok((secs, matched)) => {
            p.fail2ban_lines_per_sec = Some(lines as f64 / secs);
            p.fail2ban_matched = Some(matched);
        }
        Err(why) => p.fail2ban_absent = Some(why),
    }
    match sshg_parser(&log, runs) {
        Ok((secs, matched)) => {
            p.sshguard_lines_per_sec = Some(lines as f64 / secs);
            p.sshguard_matched = Some(matched);
        }
        Err(why) => p.sshguard_absent = Some(why),
    }
    p
}

/// One source over `log` as the daemon runs it (follower, the jail's filter with state of its
/// own) with the jail counting what it finds: the seconds it took, the failure lines matched
/// and the bans decided.
fn parse_log(log: &std::path::Path, sshd: &banner::config::JailConfig) -> (f64, u64, u64) {
    use banner::{
        filter::{date::DateCache, Filter, LineMeta},
        jail::Jail,
        source::{
            file::FileFollower, file::SourceContext, positions::PositionBook, SourceCounters,
        },
    };
    use std::sync::Arc;

    let ctx = SourceContext {
        jail: "sshd".into(),
        filter: Arc::new(Filter::clone(&sshd.filter)),
        sink: Arc::new(|_: &str, _| true),
        book: PositionBook::in_memory(),
        counters: Arc::new(SourceCounters::default()),
    };
    let mut jail = Jail::new("sshd".into(), sshd.policy.clone(), false);
    let mut cache = DateCache::default();
    let mut follower = FileFollower::new(log);
    let mut failures = Vec::new();
    let mut decided = 0u64;
    let start = std::time::Instant::now();
    let now = SystemTime::now();
    let meta = LineMeta::arrived(now);
    loop {
        let progress = follower
            .poll(None, &mut |l| {
                ctx.examine_line(l, &meta, &mut cache, &mut failures)
            })
            .expect("read the log");
        for f in failures.drain(..) {
            if jail.on_failure(&f, now, |_, _| 0).is_some() {
                decided += 1;
            }
        }
        if !progress.more {
            break;
        }
    }
    (
        start.elapsed().as_secs_f64(),
        SourceCounters::get(&ctx.counters.failure_lines),
        decided,
    )
}

/// Seconds for two sources, each on its own copy of `log` and its own thread, to read and
/// judge both (the median of `runs`): what the daemon's two runtime workers do with two logs.
fn parse_two_threads(log: &std::path::Path, sshd: &banner::config::JailConfig, runs: usize) -> f64 {
    let copy = log.with_extension("2");
    std::fs::copy(log, &copy).expect("copy the log");
    let timings = (0..runs)
        .map(|_| {
            std::thread::scope(|s| {
                let a = s.spawn(|| parse_log(log, sshd).0);
                let b = s.spawn(|| parse_log(&copy, sshd).0);
                // Both together take as long as the slower of the two.
                let a = a.join().expect("first source");
                let b = b.join().expect("second source");
                a.max(b)
            })
        })
        .collect();
    let _ = std::fs::remove_file(&copy);
    median(timings)
}

/// fail2ban-regex with fail2ban's own sshd filter: median seconds and matched lines.
fn fail2ban_regex(log: &std::path::Path, runs: usize) -> Result<(f64, u64), String> {
    let filter = std::path::Path::new("/etc/fail2ban/filter.d/sshd.conf");
    if !filter.exists() {
        return Err(format!("{} not installed (fail2ban)", filter.display()));
    }
    let mut timings = Vec::new();
    let mut matched = 0;
    for _ in 0..runs {
        let (secs, m) = filters::fail2ban_regex(log, filter)?;
        timings.push(secs);
        matched = m;
    }
    Ok((median(timings), matched))
}

/// sshguard's log parser (the part that recognises attacks): median seconds, attacks found.
fn sshg_parser(log: &std::path::Path, runs: usize) -> Result<(f64, u64), String> {
    let parser = "/usr/libexec/sshguard/sshg-parser";
    if !std::path::Path::new(parser).exists() {
        return Err(format!("{parser} not installed (sshguard)"));
    }
    let mut timings = Vec::new();
    let mut matched = 0;
    for _ in 0..runs {
        let input = std::fs::File::open(log).map_err(|e| e.to_string())?;
        let start = std::time::Instant::now();
        let out = std::process::Command::new(parser)
            .stdin(input)
            .output()
            .map_err(|e| format!("sshg-parser: {e}"))?;
        timings.push(start.elapsed().as_secs_f64());
        matched = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok((median(timings), matched))
}

// ---------------------------------------------------------------------------------------------
// latency: a failure line appended to the log -> the ban visible in the kernel map.

/// A lab and a daemon whose sshd jail follows an empty log file (returned with its guards).
fn lab_with_sshd_jail(
    extra: &str,
) -> (
    tests::Lab,
    tempfile::TempDir,
    std::path::PathBuf,
    tests::Daemon,
) {
    let lab = tests::Lab::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, b"").expect("create log");
    let d = tests::Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[jails.sshd]\nlogpath = \"{}\"\njournalmatch = []\n{extra}\n",
            log.display()
        ),
    );
    (lab, dir, log, d)
}

fn bench_latency(quick: bool) -> Latency {
    let n: u32 = if quick { 50 } else { 1000 };
    let mut quiet = {
        let (_lab, _dir, log, d) = lab_with_sshd_jail("maxretry = 1");
        ban_latency(&d, &log, n)
    };
    // Again on a fresh daemon while a writer floods the same log with lines that are no
    // failure (100k a second in the full run, in bursts of 1,000 every 10 ms).
    let per_sec: u32 = if quick { 20_000 } else { 100_000 };
    let (_lab, _dir, log, d) = lab_with_sshd_jail("maxretry = 1");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        use std::io::Write as _;
        let (stop, log) = (std::sync::Arc::clone(&stop), log.clone());
        std::thread::spawn(move || {
            let burst = (per_sec / 100) as usize;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .expect("open log");
            let mut written = 0u64;
            let start = std::time::Instant::now();
            let mut tick = 0u32;
            // Bounded: at most ten minutes, whatever the measuring side does.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && tick < 60_000 {
                let mut chunk = String::with_capacity(burst * 80);
                for k in 0..burst {
                    chunk.push_str(&format!(
                        "Accepted publickey for deploy from 198.18.250.{} port {} ssh2: ED25519 SHA256:x\n",
                        k % 200 + 1,
                        20_000 + k
                    ));
                }
                file.write_all(chunk.as_bytes()).expect("flood");
                written += burst as u64;
                tick += 1;
                let due = start + Duration::from_millis(10 * u64::from(tick));
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            written as f64 / start.elapsed().as_secs_f64()
        })
    };
    // The flood reaches its pace before the first failure.
    std::thread::sleep(Duration::from_millis(500));
    let flooded = ban_latency(&d, &log, n);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rate = flood.join().expect("the flood writer");
    quiet.flood_lines_per_sec = measured(rate);
    quiet.flood_p50_ms = flooded.p50_ms;
    quiet.flood_p99_ms = flooded.p99_ms;
    quiet.flood_max_ms = flooded.max_ms;
    quiet.flood_timeouts = Some(flooded.timeouts);
    quiet
}

/// Append `n` failure lines one at a time to the log of `d`'s sshd jail (maxretry 1), each
/// from a new address, and time each from the append to its ban in the kernel map.
pub(crate) fn ban_latency(d: &tests::Daemon, log: &std::path::Path, n: u32) -> Latency {
    use aya::maps::{HashMap as BpfHashMap, Map as BpfMap, MapData};
    use banner_common::{BanEntry, Ipv4Key};
    use std::io::Write as _;

    let map = MapData::from_pin(d.bpffs_dir.join(banner_common::map_name::BANS_V4))
        .expect("open the pinned ban map");
    let map: BpfHashMap<MapData, Ipv4Key, BanEntry> =
        BpfHashMap::try_from(BpfMap::HashMap(map)).expect("ban map type");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("open log");
    let mut samples = Vec::with_capacity(n as usize);
    let mut timeouts = 0u64;
    for i in 0..n {
        let addr = Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250 + 1) as u8);
        let line = format!(
            "Failed password for root from {addr} port {} ssh2\n",
            1024 + i
        );
        file.write_all(line.as_bytes()).expect("append");
        let start = std::time::Instant::now();
        let key = Ipv4Key {
            addr: addr.octets(),
        };
        loop {
            if map.get(&key, 0).is_ok() {
                samples.push(start.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if start.elapsed() > Duration::from_secs(2) {
                timeouts += 1;
                break;
            }
            // Yield, not spin: on two cores a spinning poller kept a daemon thread it had
            // woken waiting for the end of its time slice (3 ms), and that was the p99.
            std::thread::yield_now();
        }
    }
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Latency {
        bans: u64::from(n),
        p50_ms: measured(pct(0.50)),
        p90_ms: measured(pct(0.90)),
        p99_ms: measured(pct(0.99)),
        max_ms: samples.last().copied(),
        timeouts,
        ..Latency::default()
    }
}

// ---------------------------------------------------------------------------------------------
// memory: daemon RSS idle and with many distinct failing addresses tracked.

pub(crate) fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn bench_memory(quick: bool) -> Memory {
    use std::io::Write as _;

    let n: u64 = if quick { 20_000 } else { 1_000_000 };
    let (_lab, _dir, log, d) = lab_with_sshd_jail("");
    let pid = d.pid().expect("daemon pid");
    // Settled: the daemon's housekeeping (every 2 s) gives freed memory back, one round
    // after the work that freed it.
    std::thread::sleep(Duration::from_secs(5));
    let idle = rss_mb(pid);
    // One failure each from n distinct addresses: all tracked, none banned (maxretry 3).
    {
        let mut out = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .expect("log"),
        );
        for i in 0..n {
            // 198.19.0.0/16 stays clear of the lab's own 198.18.<id>.0/24 networks.
            let addr = if i < 60_000 {
                format!("198.19.{}.{}", i / 250, i % 250 + 1)
            } else {
                format!("2001:db8:{:x}:{:x}::1", i >> 16, i & 0xffff)
            };
            writeln!(out, "Failed password for root from {addr} port 22 ssh2").expect("write");
        }
    }
    let start = std::time::Instant::now();
    let mut tracked = 0;
    while start.elapsed() < Duration::from_secs(120) {
        let s = d.cli_json(&["status", "sshd", "--json"]);
        tracked = s["jails"][0]["tracked"].as_u64().unwrap_or(0);
        if tracked >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ingest_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(5));
    let busy = rss_mb(pid);
    Memory {
        rss_mb_idle: measured(idle),
        tracked,
        rss_mb_1m_tracked: measured(busy),
        addresses: n,
        ingest_secs,
    }
}
