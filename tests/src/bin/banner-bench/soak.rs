//! soak: the daemon under hours of ordinary life, compressed: failures and noise appended to
//! its log, the log rotated every minute, reloads, bans and unbans by hand, 100k bans loaded.
//! RSS, open descriptors and CPU time are sampled; the report gives their growth per hour
//! (the goal is flat). `BANNER_SOAK_MINUTES` sets the length (default 30; `--quick`: 20 s).

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use ::tests::report::{measured, Soak};

/// Descriptors the process holds.
fn fds(pid: u32) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(f64::NAN, |d| d.count() as f64)
}

/// User + system CPU seconds the process has used.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Least-squares slope of `y` over `x`.
fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let num: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let den: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

pub fn bench_soak(quick: bool) -> Soak {
    let minutes: f64 = if quick {
        20.0 / 60.0
    } else {
        std::env::var("BANNER_SOAK_MINUTES")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(30.0)
    };
    let length = Duration::from_secs_f64(minutes * 60.0);
    let (rotate_every, reload_every, sample_every) = if quick {
        (
            Duration::from_secs(5),
            Duration::from_secs(7),
            Duration::from_secs(1),
        )
    } else {
        (
            Duration::from_secs(60),
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
    };
    let (_lab, dir, log, d) = super::lab_with_sshd_jail("");
    let pid = d.pid().expect("daemon pid");

    // The standing ban set.
    let loaded: u32 = if quick { 5_000 } else { 100_000 };
    let list = dir.path().join("feed.txt");
    let mut feed = String::new();
    for i in 0..loaded {
        feed.push_str(&format!(
            "2001:db8:ffff:{:x}:{:x}::1\n",
            i >> 16,
            i & 0xffff
        ));
    }
    std::fs::write(&list, feed).expect("write the feed");
    d.cli_ok(&[
        "ban",
        "--file",
        list.to_str().expect("utf-8 path"),
        "--for",
        "1d",
    ]);

    let start = Instant::now();
    let (mut last_rotate, mut last_reload, mut last_sample) = (start, start, start - sample_every);
    let mut times = Vec::new();
    let mut rss = Vec::new();
    let mut fd = Vec::new();
    let mut cpu = Vec::new();
    let mut lines = 0u64;
    let mut rotations = 0u32;
    let mut reloads = 0u32;
    let mut seq = 0u32;
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open the log");
    while start.elapsed() < length {
        // A tenth of a second of traffic: 90% noise, 10% failures from many addresses (some
        // reach maxretry and are banned; the rest age out of the window).
        let mut batch = String::new();
        for _ in 0..200 {
            seq = seq.wrapping_add(1);
            let addr = format!("198.19.{}.{}", (seq / 7) % 200, (seq / 3) % 250 + 1);
            if seq.is_multiple_of(10) {
                batch.push_str(&format!(
                    "Failed password for root from {addr} port {} ssh2\n",
                    1024 + seq % 60000
                ));
            } else {
                batch.push_str(&format!(
                    "Accepted publickey for alice from {addr} port {} ssh2\n",
                    1024 + seq % 60000
                ));
            }
            lines += 1;
        }
        out.write_all(batch.as_bytes()).expect("append to the log");
        if last_rotate.elapsed() >= rotate_every {
            // Rename rotation: the old file moves away, a new one takes its name.
            let old = log.with_extension("log.1");
            std::fs::rename(&log, &old).expect("rotate");
            out = std::fs::File::create(&log).expect("new log");
            last_rotate = Instant::now();
            rotations += 1;
        }
        if last_reload.elapsed() >= reload_every {
            d.cli_ok(&["reload"]);
            for k in 0..10 {
                let a = format!("198.19.250.{}", k + 1);
                d.cli_ok(&["ban", &a, "--for", "1h"]);
                d.cli_ok(&["unban", &a]);
            }
            last_reload = Instant::now();
            reloads += 1;
        }
        if last_sample.elapsed() >= sample_every {
            times.push(start.elapsed().as_secs_f64() / 3600.0);
            rss.push(super::rss_mb(pid));
            fd.push(fds(pid));
            cpu.push(cpu_secs(pid));
            last_sample = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Growth after the warm-up (the first tenth: the ban set and windows filling).
    let from = times.len() / 10;
    let (t, r, f) = (&times[from..], &rss[from..], &fd[from..]);
    let hours = start.elapsed().as_secs_f64() / 3600.0;
    let cpu_used = cpu.last().copied().unwrap_or(0.0) - cpu.first().copied().unwrap_or(0.0);
    let status = d.cli_json(&["status", "sshd", "--json"]);
    Soak {
        minutes,
        lines,
        rotations: u64::from(rotations),
        reloads: u64::from(reloads),
        bans_loaded: u64::from(loaded),
        jail_bans: status["jails"][0]["bans"].as_u64(),
        samples: times.len() as u64,
        rss_mb_start: r.first().copied().and_then(measured),
        rss_mb_end: r.last().copied().and_then(measured),
        rss_mb_per_hour: measured(slope(t, r)),
        fds_start: f.first().copied().and_then(measured),
        fds_end: f.last().copied().and_then(measured),
        fds_per_hour: measured(slope(t, f)),
        cpu_percent: measured(100.0 * cpu_used / (hours * 3600.0)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line_is_its_gradient() {
        assert!((super::slope(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]) - 2.0).abs() < 1e-9);
        assert_eq!(super::slope(&[0.0, 1.0], &[4.0, 4.0]), 0.0);
    }
}
