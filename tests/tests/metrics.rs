//! The Prometheus endpoint in the lab: its figures move as bans happen and packets are
//! dropped, Prometheus' own `promtool` accepts its output, and only /metrics is served.

use std::{
    io::Write as _,
    net::Ipv4Addr,
    process::{Command, Stdio},
    time::Duration,
};

use tests::{free_port, http_get, wait_until, Daemon, Lab};

fn get(port: u16, path: &str) -> (String, String) {
    http_get(port, path, None)
}

/// The value of the sample `name` (with its labels, as written) in exposition text.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_follow_bans_and_pass_promtool() {
    let lab = Lab::new();
    let port = free_port(Ipv4Addr::LOCALHOST.into());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n[jails.sshd]\nlogpath = \"{}\"\njournalmatch = []\n",
            log.display()
        ),
    );
    let (status, before) = get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{before}");
    assert_eq!(value(&before, "banner_bans_active"), Some(0.0), "{before}");

    let peer = lab.peer_v4().to_string();
    d.cli_ok(&["ban", &peer, "--blocktype", "drop"]);
    for _ in 0..3 {
        assert!(!lab.ping(lab.host_v4()));
    }
    let (_, after) = get(port, "/metrics");
    assert_eq!(value(&after, "banner_bans_active"), Some(1.0), "{after}");
    assert_eq!(
        value(&after, "banner_ban_changes_total{change=\"banned\"}"),
        Some(1.0),
        "{after}"
    );
    assert!(
        value(&after, "banner_packets_total{verdict=\"dropped\"}").unwrap_or(0.0) >= 3.0,
        "{after}"
    );
    assert!(
        value(&after, "banner_map_fill_ratio{map=\"bans_v4\"}").unwrap_or(0.0) > 0.0,
        "{after}"
    );

    // Prometheus' own checker reads it (lint problems are reported, format errors fail).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (cargo xtask setup installs Debian's prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(after.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{after}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // What Prometheus asks for: OpenMetrics, the same figures.
    let (_, om) = http_get(
        port,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE banner_packets counter"), "{om}");
    assert_eq!(value(&om, "banner_bans_active"), Some(1.0));

    // A ban made from a log is timed: one observation of the detection latency, well under
    // the histogram's last bound.
    let count = "banner_detection_latency_seconds_count";
    assert_eq!(value(&om, count), Some(0.0), "{om}");
    let stamp = chrono_free_stamp();
    let lines: String = (1..=3)
        .map(|pid| {
            format!(
                "{stamp} gw sshd[{pid}]: Failed password for root from 198.18.7.7 port {} ssh2\n",
                40000 + pid
            )
        })
        .collect();
    std::fs::write(&log, lines).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || value(
            &get(port, "/metrics").1,
            count
        ) == Some(1.0)),
        "{}",
        d.log_text()
    );
    let (_, text) = get(port, "/metrics");
    assert_eq!(
        value(
            &text,
            "banner_detection_latency_seconds_bucket{le=\"10.0\"}"
        ),
        Some(1.0),
        "{text}"
    );

    let (status, _) = get(port, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

/// Now as an RFC 3339 UTC prefix of a syslog line.
fn chrono_free_stamp() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
