//! ops: what running banner as a service costs. A Prometheus scrape of `/metrics` with no
//! ban and with many (1M in the full run), and the detection latency (failure line -> ban in
//! the kernel map) without actions and with a slow action run on every ban: actions run on
//! their own workers, so the second must match the first.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use tests::{
    free_port, http_get,
    report::{measured, Ops},
};

use crate::{ban_latency, lab_with_sshd_jail};

/// The slow action: a command that outlasts many bans.
const SLOW: &[&str] = &["/bin/sleep", "2"];

/// One scrape as Prometheus makes it (asking for OpenMetrics), read to the end: its time and
/// the size of its text.
fn scrape(port: u16) -> (f64, usize) {
    let start = Instant::now();
    let (status, body) = http_get(
        port,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    );
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, "HTTP/1.1 200 OK", "scrape: {body}");
    (ms, body.len())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// `n` distinct addresses: 198.19.0.0/16 first, then single IPv6 addresses of 2001:db8::/32.
fn addresses(n: u64) -> String {
    let mut out = String::with_capacity(n as usize * 24);
    for i in 0..n {
        if i < 60_000 {
            out.push_str(&format!("198.19.{}.{}\n", i / 250, i % 250 + 1));
        } else {
            out.push_str(&format!("2001:db8:{:x}:{:x}::1\n", i >> 16, i & 0xffff));
        }
    }
    out
}

/// `banner list ARGS` run to the end, its output thrown away: seconds.
fn list_secs(d: &tests::Daemon, args: &[&str]) -> f64 {
    let start = Instant::now();
    let status = std::process::Command::new(tests::process::banner_bin())
        .arg("--socket")
        .arg(&d.socket)
        .arg("list")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run banner list");
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "banner list {args:?}: {status}");
    secs
}

pub fn bench_ops(quick: bool) -> Ops {
    let bans: u64 = if quick { 10_000 } else { 1_000_000 };
    let scrapes = if quick { 20 } else { 200 };
    let latency_n: u32 = if quick { 30 } else { 500 };
    let mut out = Ops {
        scrape_bans: bans,
        scrapes: scrapes as u64,
        slow_action: SLOW.join(" "),
        ..Ops::default()
    };

    // Scrapes, with no ban and then with `bans`.
    {
        let port = free_port(Ipv4Addr::LOCALHOST.into());
        let (_lab, dir, _log, d) =
            lab_with_sshd_jail(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
        let mut idle: Vec<f64> = (0..scrapes).map(|_| scrape(port).0).collect();
        idle.sort_by(f64::total_cmp);
        out.scrape_idle_p50_ms = measured(percentile(&idle, 0.5));
        let list = dir.path().join("bans.txt");
        std::fs::write(&list, addresses(bans)).expect("write the ban list");
        d.cli_ok(&[
            "ban",
            "--file",
            &list.display().to_string(),
            "--for",
            "1d",
            "--blocktype",
            "drop",
        ]);
        // The core finishes the batch after it answers (its events published, the state
        // settled): the scrapes right after it wait for that, once. Timed apart.
        let settle = Instant::now();
        let mut first = Vec::new();
        while settle.elapsed() < Duration::from_secs(2) {
            first.push(scrape(port).0);
        }
        out.scrape_after_load_max_ms = first.iter().copied().reduce(f64::max);
        let mut loaded = Vec::with_capacity(scrapes);
        for _ in 0..scrapes {
            let (ms, bytes) = scrape(port);
            loaded.push(ms);
            out.scrape_bytes = bytes as u64;
        }
        loaded.sort_by(f64::total_cmp);
        out.scrape_p50_ms = measured(percentile(&loaded, 0.5));
        out.scrape_p99_ms = measured(percentile(&loaded, 0.99));
        out.scrape_max_ms = loaded.last().copied();
        out.list_secs = measured(list_secs(&d, &[]));
        out.list_json_secs = measured(list_secs(&d, &["--json"]));
        // Settled: housekeeping gives the batch's freed memory back (every 2 s, one late).
        std::thread::sleep(Duration::from_secs(5));
        out.rss_mb_bans = d.pid().map(crate::rss_mb);
    }

    // Ban latency without actions, then with the slow action on every ban (one daemon each,
    // the same addresses).
    {
        let (_lab, _dir, log, d) = lab_with_sshd_jail("maxretry = 1");
        out.latency_no_action = ban_latency(&d, &log, latency_n);
    }
    {
        let argv: Vec<String> = SLOW.iter().map(|a| format!("\"{a}\"")).collect();
        let (_lab, _dir, log, d) = lab_with_sshd_jail(&format!(
            "maxretry = 1\nactions = [\"slow\"]\n[actions.slow]\non_ban = [{}]\ntimeout = \"10s\"\n",
            argv.join(", ")
        ));
        out.latency_slow_action = ban_latency(&d, &log, latency_n);
        // The action did run (its workers were busy the whole time): the log says so only on
        // failure, so look for the sleeping commands.
        let running = std::process::Command::new("pgrep")
            .args(["-f", &SLOW.join(" ")])
            .output()
            .map(|o| {
                o.stdout
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .unwrap_or(0);
        assert!(running > 0, "the slow action never ran:\n{}", d.log_text());
    }
    out
}
