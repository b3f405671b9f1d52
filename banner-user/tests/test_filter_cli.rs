//! `banner test-filter` run as a user runs it, on fail2ban's sample logs.

use std::process::Command;

const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

fn banner(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_banner"))
        .args(args)
        .output()
        .expect("banner runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_names_line_host_time_and_filter_for_a_filter_d_file() {
    let log = format!("{LOGS}/nginx-http-auth");
    let (code, out, err) = banner(&["test-filter", "nginx-http-auth", &log, "--json"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let hits: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every line the annotations of the default mode (the sample's first block) say must
    // match is found, and every hit is on a line annotated to match in some mode.
    let lines: Vec<&str> = text.lines().collect();
    let annotated_true = |n: usize| n >= 2 && lines[n - 2].contains("\"match\": true");
    let first_block: Vec<usize> = (1..=lines.len())
        .take_while(|n| *n == 1 || !lines[n - 1].contains("filterOptions"))
        .filter(|n| annotated_true(*n))
        .collect();
    assert!(first_block.len() >= 5);
    let hit_lines: Vec<usize> = hits
        .iter()
        .map(|h| h["line"].as_u64().unwrap() as usize)
        .collect();
    for n in &first_block {
        assert!(hit_lines.contains(n), "line {n} not found:\n{out}");
    }
    for n in &hit_lines {
        assert!(
            annotated_true(*n),
            "line {n} is not annotated to match:\n{out}"
        );
    }
    for h in &hits {
        // The line number points at the line that holds the host.
        let n = h["line"].as_u64().unwrap() as usize;
        let line = text.lines().nth(n - 1).unwrap();
        assert!(line.contains(h["host"].as_str().unwrap()), "{h} vs {line}");
        assert_eq!(h["filter"], "nginx-http-auth");
        assert!(h["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{h}");
    }
}

#[test]
fn journal_entries_and_modes_reach_the_built_in_filter() {
    // Read from standard input, as journal entries, in aggressive mode.
    let log = std::fs::read(format!("{LOGS}/sshd-journal")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_banner"))
        .args([
            "test-filter",
            "sshd[mode=aggressive]",
            "-",
            "--logtype",
            "journal",
            "--json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&log).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // "srv sshd[1]: Did not receive identification string from 192.0.2.x" style lines only
    // match in aggressive mode.
    let normal = Command::new(env!("CARGO_BIN_EXE_banner"))
        .args([
            "test-filter",
            "sshd",
            &format!("{LOGS}/sshd-journal"),
            "--logtype",
            "journal",
            "--json",
        ])
        .output()
        .unwrap();
    let normal = String::from_utf8_lossy(&normal.stdout);
    assert!(
        text.lines().count() > normal.lines().count(),
        "aggressive finds more:\n{text}\nvs\n{normal}"
    );
    assert!(normal.lines().count() >= 10, "{normal}");
}

#[test]
fn mistakes_are_named() {
    let (code, _, err) = banner(&["test-filter", "no-such-filter", "/dev/null"]);
    assert_eq!(code, 1);
    assert!(err.contains("no filter named `no-such-filter`"), "{err}");
    let (code, _, err) = banner(&["test-filter", "sshd[mode=paranoid]", "/dev/null"]);
    assert_eq!(code, 1);
    assert!(err.contains("paranoid"), "{err}");
    let (code, _, err) = banner(&["test-filter", "sshd", "/nonexistent/log"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/log"), "{err}");
    let (code, _, err) = banner(&["test-filter", "sshd", "/dev/null", "--now", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn the_summary_counts_lines_and_hosts() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("auth.log");
    std::fs::write(
        &log,
        "Nov 26 01:00:00 gw sshd[7]: Failed password for root from 198.18.0.5 port 1 ssh2\n\
         Nov 26 01:00:01 gw sshd[7]: Failed password for root from 198.18.0.5 port 1 ssh2\n\
         Nov 26 01:00:02 gw sshd[8]: Accepted password for me from 198.18.0.6 port 2 ssh2\n",
    )
    .unwrap();
    let (code, out, err) = banner(&["test-filter", "sshd", log.to_str().unwrap(), "--verbose"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Lines: 3 lines, 0 ignored, 2 matched, 1 missed"),
        "{out}"
    );
    assert!(
        out.contains("198.18.0.5") && !out.contains("198.18.0.6"),
        "{out}"
    );
    assert!(out.contains("1: 198.18.0.5 [sshd]"), "{out}");
}
