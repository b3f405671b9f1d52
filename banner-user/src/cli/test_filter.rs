//! `banner test-filter FILTER LOG`: what a filter makes of a log (fail2ban-regex's job).
//!
//! It runs the daemon's own path: the file source's line splitter, the filter a jail would
//! get for the same `filter =` text (built-in, fail2ban filter.d file, or banner TOML
//! filter file), and its multi-line and connection state across the log, line by line.

use std::{
    collections::BTreeMap,
    io::Read as _,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use super::{CliError, CliResult};
use crate::{
    config::load_filter,
    filter::{date::DateCache, f2b::definition::split_options, Examined, Filter, LineMeta},
    source::LineSplitter,
};

#[derive(Debug, clap::Args)]
pub struct TestFilterArgs {
    /// A built-in filter (`sshd`), a fail2ban filter file or name (`nginx-http-auth`,
    /// `/etc/fail2ban/filter.d/postfix.conf`), a banner TOML filter file, or `all` (every
    /// built-in); fail2ban's options may follow in brackets: `sshd[mode=aggressive]`.
    pub filter: String,
    /// The log to read; `-` for standard input.
    pub log: String,
    /// One JSON object per line that produced a failure.
    #[arg(long)]
    pub json: bool,
    /// `file`: lines as a log file holds them; `journal`: journal entries rendered as
    /// `HOST IDENT[PID]: MESSAGE`, which the filter sees as banner's journald source would.
    #[arg(long, value_name = "TYPE", default_value = "file")]
    pub logtype: String,
    /// The reference time for year-less timestamps (RFC 3339 or unix seconds).
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Also print each matched line with its host and the pattern that matched.
    #[arg(long)]
    pub verbose: bool,
    /// Where fail2ban filter names are looked up.
    #[arg(long, value_name = "DIR", default_value = crate::filter::FAIL2BAN_FILTER_DIR)]
    pub filter_dir: PathBuf,
}

#[derive(Debug, Serialize)]
struct JsonHit<'a> {
    line: usize,
    host: &'a str,
    /// Whether banner would ban it (an address, not a hostname or other id).
    ban: bool,
    time: Option<String>,
    filter: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Default)]
struct Summary {
    lines: usize,
    matched: usize,
    ignored: usize,
    missed: usize,
    timed: usize,
    /// Failures by host text.
    hosts: BTreeMap<String, usize>,
    /// Hits per (filter, pattern index).
    patterns: BTreeMap<(usize, usize), usize>,
}

pub fn run(args: TestFilterArgs) -> CliResult {
    let journal = match args.logtype.as_str() {
        "file" => false,
        "journal" => true,
        other => {
            return Err(CliError::usage(format!(
                "--logtype must be `file` or `journal`, not `{other}`"
            )))
        }
    };
    let now = match &args.now {
        Some(t) => parse_now(t).map_err(CliError::usage)?,
        None => SystemTime::now(),
    };
    let filters = filters_for(&args, journal)?;
    let mut input: Box<dyn std::io::Read> = if args.log == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&args.log)
                .map_err(|e| CliError::failed(format!("{}: {e}", args.log)))?,
        )
    };
    let mut splitter = LineSplitter::default();
    let mut cache = DateCache::default();
    let mut summary = Summary::default();
    let mut emitted = 0usize;
    let mut out = std::io::stdout().lock();
    let mut error: Option<CliError> = None;
    let mut handle = |raw: &[u8], truncated: u64| {
        emitted += 1;
        // Overlong lines are dropped whole (as the daemon drops them): count them in.
        let number = emitted + truncated as usize;
        summary.lines += 1;
        let (text, meta) = if journal {
            crate::filter::journal_entry(raw, now)
        } else {
            (raw.to_vec(), LineMeta::arrived(now))
        };
        let mut any = false;
        let mut ignored = false;
        for (fi, filter) in filters.iter().enumerate() {
            let (verdict, rule) = filter.explain(&text, &meta, &mut cache);
            let failures = match verdict {
                Examined::Failure(f) => vec![(f.addr.to_string(), true, Some(f))],
                Examined::Failures(v) => v
                    .into_iter()
                    .map(|f| (f.addr.to_string(), true, Some(f)))
                    .collect(),
                Examined::BadHost(h) => vec![(h, false, None)],
                Examined::Ignored => {
                    ignored = true;
                    Vec::new()
                }
                Examined::NoMatch | Examined::Foreign => Vec::new(),
            };
            for (host, ban, failure) in failures {
                any = true;
                *summary.hosts.entry(host.clone()).or_default() += 1;
                *summary.patterns.entry((fi, rule.unwrap_or(0))).or_default() += 1;
                let time = failure
                    .as_ref()
                    .map(|f| f.time)
                    .filter(|t| *t != meta.arrival || meta.time.is_some());
                if time.is_some() {
                    summary.timed += 1;
                }
                if args.json {
                    let hit = JsonHit {
                        line: number,
                        host: &host,
                        ban,
                        time: time.map(rfc3339),
                        filter: filter.name(),
                        user: failure.as_ref().and_then(|f| f.user.as_deref()),
                    };
                    if let Ok(text) = serde_json::to_string(&hit) {
                        use std::io::Write as _;
                        if writeln!(out, "{text}").is_err() && error.is_none() {
                            error = Some(CliError::failed("cannot write to standard output"));
                        }
                    }
                } else if args.verbose {
                    let pattern = rule
                        .and_then(|r| filter.patterns().get(r).cloned())
                        .unwrap_or_default();
                    println!(
                        "{number}: {host}{} [{}] {}\n    matched by: {pattern}",
                        if ban {
                            ""
                        } else {
                            " (not an address: not banned)"
                        },
                        filter.name(),
                        String::from_utf8_lossy(raw)
                    );
                }
            }
        }
        if any {
            summary.matched += 1;
        } else if ignored {
            summary.ignored += 1;
        } else {
            summary.missed += 1;
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::failed(format!("{}: {e}", args.log))),
        };
        let truncated = splitter.truncated;
        splitter.push(&buf[..n], &mut |line| handle(line, truncated));
    }
    let truncated = splitter.truncated;
    splitter.flush(&mut |line| handle(line, truncated));
    if let Some(e) = error {
        return Err(e);
    }
    if !args.json {
        print_summary(&summary, &filters, splitter.truncated);
    }
    Ok(())
}

fn filters_for(args: &TestFilterArgs, journal: bool) -> Result<Vec<Filter>, CliError> {
    let (name, options) = split_options(&args.filter).map_err(CliError::usage)?;
    let names: Vec<String> = if name == "all" {
        crate::filter::builtin::names()
            .map(str::to_string)
            .collect()
    } else {
        vec![name]
    };
    names
        .iter()
        .map(|n| {
            load_filter(n, &options, &args.filter_dir, false, journal)
                .map_err(|e| CliError::failed(e.to_string()))
        })
        .collect()
}

fn parse_now(t: &str) -> Result<SystemTime, String> {
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let dt = chrono::DateTime::parse_from_rfc3339(t)
        .map_err(|e| format!("--now `{t}`: neither unix seconds nor RFC 3339 ({e})"))?;
    let secs = u64::try_from(dt.timestamp()).map_err(|_| format!("--now `{t}` is before 1970"))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn print_summary(s: &Summary, filters: &[Filter], truncated: u64) {
    println!();
    println!(
        "Lines: {} lines, {} ignored, {} matched, {} missed{}",
        s.lines,
        s.ignored,
        s.matched,
        s.missed,
        if truncated > 0 {
            format!(" ({truncated} overlong lines dropped)")
        } else {
            String::new()
        }
    );
    println!(
        "Times read from the lines: {} of {} failures",
        s.timed,
        s.hosts.values().sum::<usize>()
    );
    println!();
    println!("Patterns that matched:");
    if s.patterns.is_empty() {
        println!("  (none)");
    }
    for ((fi, ri), n) in &s.patterns {
        let f = &filters[*fi];
        let pattern = f.patterns().get(*ri).cloned().unwrap_or_default();
        println!("  [{n}] {} #{}: {pattern}", f.name(), ri + 1);
    }
    println!();
    println!("Hosts:");
    if s.hosts.is_empty() {
        println!("  (none)");
    }
    let mut hosts: Vec<(&String, &usize)> = s.hosts.iter().collect();
    hosts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (h, n) in hosts {
        println!("  {h:<40} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_entries_are_split_as_journald_would_hand_them() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let (msg, meta) = crate::filter::journal_entry(
            b"srv sshd[42]: Failed password for x from 198.18.0.1 port 1 ssh2",
            now,
        );
        assert_eq!(msg, b"Failed password for x from 198.18.0.1 port 1 ssh2");
        assert_eq!(meta.pid, Some(42));
        assert_eq!(meta.time, Some(now));
        let (msg, meta) = crate::filter::journal_entry(b"no tag here", now);
        assert_eq!(msg, b"no tag here");
        assert_eq!(meta.pid, None);
    }

    #[test]
    fn now_is_unix_seconds_or_rfc3339() {
        assert_eq!(
            parse_now("86400").unwrap(),
            UNIX_EPOCH + Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_now("2005-08-14T10:00:00Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_124_013_600)
        );
        assert!(parse_now("yesterday").unwrap_err().contains("yesterday"));
    }
}
