//! The `filters` section: lines/s of banner and of fail2ban-regex on corpus-shaped logs
//! (fail2ban's own sample lines for a filter, repeated), with fail2ban's own filter.d files
//! read by banner, and banner's built-in filter where it has one. Both run in the same run,
//! on the same log.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use banner::{
    filter::{date::DateCache, Filter, LineMeta},
    source::{file::FileFollower, file::SourceContext, positions::PositionBook, SourceCounters},
};
use tests::report::Filters;

const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";
const FILTER_DIR: &str = "/etc/fail2ban/filter.d";
/// The filters whose filter.d files are measured against fail2ban (issue 10's list).
const FILTERS: &[&str] = &["sshd", "nginx-http-auth", "postfix", "dovecot"];

/// The filters measured: [`FILTERS`] first, then (unless `quick`) every other built-in
/// that fail2ban has a sample and a filter.d file for, so that each built-in is seen
/// beside fail2ban-regex on its own corpus-shaped log.
fn measured(quick: bool) -> Vec<&'static str> {
    let mut names = FILTERS.to_vec();
    if !quick {
        names.extend(banner::filter::builtin::names().filter(|n| {
            !FILTERS.contains(n)
                && Path::new(LOGS).join(n).is_file()
                && Path::new(FILTER_DIR).join(format!("{n}.conf")).is_file()
        }));
    }
    names
}

/// fail2ban's sample for `name` without its comments, repeated to `lines` lines.
fn corpus_shaped(name: &str, lines: usize, dir: &Path) -> Result<PathBuf, String> {
    let sample = std::fs::read_to_string(Path::new(LOGS).join(name))
        .map_err(|e| format!("fail2ban's sample for {name}: {e} (fail2ban not installed?)"))?;
    let base: Vec<&str> = sample
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    if base.is_empty() {
        return Err(format!("the sample for {name} has no lines"));
    }
    let mut text = String::with_capacity(lines * 100);
    for i in 0..lines {
        text.push_str(base[i % base.len()]);
        text.push('\n');
    }
    let path = dir.join(format!("{name}.log"));
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Median seconds to run `filter` over `log` on the daemon's path (file follower, line
/// splitter, filter), and the failure lines found.
pub fn time_filter(make: &dyn Fn() -> Filter, log: &Path, runs: usize) -> (f64, u64) {
    let mut timings = Vec::new();
    let mut matched = 0;
    for _ in 0..runs {
        let ctx = SourceContext {
            jail: "bench".into(),
            filter: Arc::new(make()),
            sink: Arc::new(|_: &str, _| true),
            book: PositionBook::in_memory(),
            counters: Arc::new(SourceCounters::default()),
        };
        let mut cache = DateCache::default();
        let mut follower = FileFollower::new(log);
        let mut failures = Vec::new();
        // fail2ban's samples are from the 2000s and 2010s: read them as of their time, as
        // fail2ban's own tests do, so year-less stamps land where they belong.
        let meta = LineMeta::arrived(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_124_013_600),
        );
        let start = std::time::Instant::now();
        loop {
            let progress = follower
                .poll(None, &mut |l| {
                    ctx.examine_line(l, &meta, &mut cache, &mut failures)
                })
                .expect("read the log");
            failures.clear();
            if !progress.more {
                break;
            }
        }
        timings.push(start.elapsed().as_secs_f64());
        matched = SourceCounters::get(&ctx.counters.failure_lines);
    }
    (super::median(timings), matched)
}

/// fail2ban-regex over `log` with `filter`: seconds and matched lines.
pub fn fail2ban_regex(log: &Path, filter: &Path) -> Result<(f64, u64), String> {
    let start = std::time::Instant::now();
    let out = std::process::Command::new("fail2ban-regex")
        .arg(log)
        .arg(filter)
        .output()
        .map_err(|e| format!("fail2ban-regex: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    // "Lines: 1000000 lines, 0 ignored, 300000 matched, 700000 missed"
    let matched = text
        .lines()
        .find(|l| l.starts_with("Lines:"))
        .and_then(|l| l.split(',').find(|p| p.contains("matched")))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            format!(
                "fail2ban-regex printed no summary: {}",
                text.lines().last().unwrap_or("")
            )
        })?;
    Ok((secs, matched))
}

pub fn bench_filters(quick: bool) -> Filters {
    let lines = if quick { 20_000 } else { 200_000 };
    let runs = if quick { 1 } else { 3 };
    let peers = std::env::var_os("BANNER_BENCH_NO_PEERS").is_none();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut results = Filters {
        lines: lines as u64,
        runs: runs as u64,
        by_filter: BTreeMap::new(),
    };
    for name in measured(quick) {
        let r = results.by_filter.entry(name.to_string()).or_default();
        let log = match corpus_shaped(name, lines, dir.path()) {
            Ok(l) => l,
            Err(e) => {
                r.absent = Some(e);
                continue;
            }
        };
        let file = PathBuf::from(FILTER_DIR).join(format!("{name}.conf"));
        let opts = BTreeMap::new();
        let (secs, matched) = time_filter(
            &|| Filter::fail2ban_file(&file, &opts, false).expect("fail2ban's filter reads"),
            &log,
            runs,
        );
        let ours = lines as f64 / secs;
        r.banner_filter_d_lines_per_sec = Some(ours);
        r.banner_filter_d_matched = Some(matched);
        if banner::filter::builtin::find(name).is_some() {
            let (secs, matched) = time_filter(
                &|| Filter::builtin(name, "normal", false).expect("built-in"),
                &log,
                runs,
            );
            r.banner_builtin_lines_per_sec = Some(lines as f64 / secs);
            r.banner_builtin_matched = Some(matched);
        }
        if peers {
            match fail2ban_regex(&log, &file) {
                Ok((secs, matched)) => {
                    let theirs = lines as f64 / secs;
                    r.fail2ban_lines_per_sec = Some(theirs);
                    r.fail2ban_matched = Some(matched);
                    r.banner_filter_d_vs_fail2ban = Some(ours / theirs);
                    r.banner_builtin_vs_fail2ban =
                        r.banner_builtin_lines_per_sec.map(|b| b / theirs);
                }
                Err(e) => r.fail2ban_absent = Some(e),
            }
        }
    }
    results
}

/// The section's table for report.md: issue 10's filters first, then the other built-ins.
pub fn markdown(f: &Filters) -> String {
    let mut out = format!(
        "\n## Filters: fail2ban's filter.d files and banner's built-ins, beside fail2ban-regex with the filter.d file ({} corpus-shaped lines each; median of {} runs)\n\n| filter | banner, filter.d file (lines/s) | banner built-in (lines/s) | fail2ban-regex (lines/s) | filter.d file is | built-in is | lines matched (filter.d / built-in / fail2ban) |\n|---|---|---|---|---|---|---|\n",
        f.lines, f.runs
    );
    let others = f
        .by_filter
        .keys()
        .filter(|n| !FILTERS.contains(&n.as_str()));
    for name in FILTERS.iter().map(|n| n.to_string()).chain(others.cloned()) {
        let Some(r) = f.by_filter.get(&name) else {
            continue;
        };
        if let Some(why) = &r.absent {
            out.push_str(&format!("| {name} | absent: {why} | | | | | |\n"));
            continue;
        }
        let matched = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let ratio = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}x"));
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} / {} / {} |\n",
            super::num(r.banner_filter_d_lines_per_sec),
            super::num(r.banner_builtin_lines_per_sec),
            r.fail2ban_lines_per_sec.map_or_else(
                || r.fail2ban_absent.as_deref().unwrap_or("-").to_string(),
                |v| format!("{v:.0}")
            ),
            ratio(r.banner_filter_d_vs_fail2ban),
            ratio(r.banner_builtin_vs_fail2ban),
            matched(r.banner_filter_d_matched),
            matched(r.banner_builtin_matched),
            matched(r.fail2ban_matched),
        ));
    }
    out
}
