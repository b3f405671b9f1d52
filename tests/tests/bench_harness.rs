//! `cargo xtask bench --quick` must keep working: run the harness small and check that it
//! writes a well-formed report. Never a timing: only that every figure is there and is a
//! measurement (a positive, finite number), and that the charts and Markdown exist. The
//! keys are checked by name (other tools read report.json), and the file must read back
//! as the bench's own report type with no section failed.

use std::process::Command;

use serde_json::Value;

fn number(r: &Value, path: &[&str]) -> f64 {
    let mut v = r;
    for p in path {
        v = &v[*p];
    }
    let n = v
        .as_f64()
        .unwrap_or_else(|| panic!("report.json lacks a number at {}: {v}", path.join(".")));
    assert!(
        n.is_finite() && n > 0.0,
        "{} = {n} is no measurement",
        path.join(".")
    );
    n
}

#[test]
fn the_quick_benchmark_writes_a_well_formed_report() {
    tests::require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_banner-bench"))
        .env("BANNER_BIN", tests::banner_bin())
        .env("BANNER_LAB_BASE", "150")
        .args(["--quick", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "banner-bench --quick failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(dir.path().join("report.json")).unwrap();
    let typed: tests::report::Report =
        serde_json::from_slice(&text).expect("report.json reads as the bench's report");
    assert!(typed.failures().is_empty(), "{:?}", typed.failures());
    assert!(typed.parse.is_some() && typed.xdp.is_some() && typed.soak.is_some());
    let r: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(r["quick"], true);
    assert!(r["machine"]["cpu"].is_string() && r["machine"]["kernel"].is_string());
    assert!(number(&r, &["machine", "cores"]) >= 1.0);
    assert!(r["peers"].is_object());
    number(&r, &["parse", "banner_lines_per_sec"]);
    number(&r, &["parse", "banner_lines_per_sec_2_threads"]);
    // Latency with the log flooded, and the bulk figures under the name the checks read.
    number(&r, &["latency", "flood_lines_per_sec"]);
    assert!(number(&r, &["latency", "flood_p99_ms"]) >= number(&r, &["latency", "flood_p50_ms"]));
    assert_eq!(r["bulk"]["xdp_s"], r["bulk"]["xdp"]);
    // The soak ran: traffic went in, rotations and reloads happened, samples were taken.
    assert!(number(&r, &["soak", "lines"]) > 0.0);
    assert!(number(&r, &["soak", "rotations"]) >= 1.0);
    assert!(number(&r, &["soak", "reloads"]) >= 1.0);
    number(&r, &["soak", "rss_mb_end"]);
    number(&r, &["soak", "fds_end"]);
    assert!(r["soak"]["rss_mb_per_hour"].is_number() && r["soak"]["fds_per_hour"].is_number());
    assert!(number(&r, &["parse", "banner_matched"]) > 0.0);
    for peer in ["fail2ban", "sshguard"] {
        assert!(
            r["parse"][format!("{peer}_lines_per_sec")].is_number()
                || r["parse"][format!("{peer}_absent")].is_string(),
            "{peer}: neither a figure nor a reason it is absent"
        );
    }
    for key in ["1", "1000", "10000"] {
        number(&r, &["xdp", "clean_v4_ns", key]);
        number(&r, &["xdp", "banned_v6_ns", key]);
    }
    assert!(
        r["xdp"]["xdp_filter_clean_v4_ns"].is_number() || r["xdp"]["xdp_filter_absent"].is_string()
    );
    number(&r, &["xdp", "tarpit_syn_ns"]);
    let p50 = number(&r, &["latency", "p50_ms"]);
    assert!(number(&r, &["latency", "p99_ms"]) >= p50);
    number(&r, &["memory", "rss_mb_idle"]);
    // The fleet sections: decisions enforced by each bouncer, propagation, syslog rates.
    for key in ["import_s", "banner_xdp_s", "banner_nftables_s"] {
        number(&r, &["crowdsec", key, "1000"]);
    }
    assert!(
        r["crowdsec"]["firewall_bouncer_s"]["1000"].is_number()
            || r["crowdsec"]["firewall_bouncer_missed"]["1000"].is_number()
            || r["crowdsec"]["firewall_bouncer_absent"].is_string()
    );
    let p50 = number(&r, &["crowdsec", "propagation_p50_s"]);
    assert!(number(&r, &["crowdsec", "propagation_p99_s"]) >= p50);
    number(&r, &["syslog", "tcp_lines_per_sec"]);
    number(&r, &["syslog", "udp_lines_per_sec"]);
    assert!(number(&r, &["syslog", "udp_sent"]) >= number(&r, &["syslog", "udp_received"]));
    number(&r, &["memory", "rss_mb_1m_tracked"]);
    for key in ["xdp_10k", "nftables_10k", "ipset_10k", "iptables_rules_10k"] {
        number(&r, &["pps", key]);
    }
    for backend in ["xdp", "nftables", "ipset", "iptables_rule_per_ban"] {
        number(&r, &["bulk", backend, "100"]);
    }
    // The operations section: scrapes with bans loaded, ban latency with and without a
    // slow action.
    assert_eq!(number(&r, &["ops", "scrape_bans"]), 10_000.0);
    assert!(number(&r, &["ops", "scrape_p99_ms"]) >= number(&r, &["ops", "scrape_p50_ms"]));
    number(&r, &["ops", "scrape_idle_p50_ms"]);
    assert!(number(&r, &["ops", "scrape_bytes"]) > 0.0);
    for run in ["latency_no_action", "latency_slow_action"] {
        number(&r, &["ops", run, "p99_ms"]);
        assert_eq!(r["ops"][run]["timeouts"].as_u64(), Some(0), "{run}");
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for heading in [
        "## Parsing",
        "## Detection latency",
        "## Memory",
        "## Loading bans",
        "## Drop rate",
        "## XDP",
        "## Operations",
    ] {
        assert!(md.contains(heading), "report.md lacks {heading}");
    }
    for chart in [
        "ns_per_packet_vs_bans.png",
        "parse_lines_per_sec.png",
        "pps_per_backend.png",
    ] {
        let bytes = std::fs::read(dir.path().join(chart)).unwrap_or_default();
        assert!(bytes.starts_with(b"\x89PNG"), "{chart} is not a PNG");
    }
}
