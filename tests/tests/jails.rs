//! Log-driven jails in the lab: failures written to a log file or to journald ban their
//! sender at the NIC; old lines, restarts and reloads behave as a fail2ban user expects.

use std::{
    io::Write as _,
    path::Path,
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tests::{sh, wait_until, Daemon, Lab};

/// RFC 3339 UTC time `ago` seconds before now, as a syslog-style line prefix.
fn stamp(ago: u64) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - ago;
    sh(
        "date",
        &["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%SZ"],
    )
    .trim()
    .to_string()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn failed(addr: &str, pid: u32, ago: u64) -> String {
    format!(
        "{} gw sshd[{pid}]: Failed password for root from {addr} port {} ssh2",
        stamp(ago),
        40000 + pid
    )
}

fn sshd_jail(log: &Path) -> String {
    format!(
        "\n[jails.sshd]\nlogpath = \"{}\"\njournalmatch = []\n",
        log.display()
    )
}

fn status(d: &Daemon, jail: &str) -> serde_json::Value {
    let v = d.cli_json(&["status", jail, "--json"]);
    v["jails"][0].clone()
}

#[test]
fn maxretry_failures_in_a_log_ban_the_sender_at_the_nic() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let d = Daemon::start(&[&lab.host_if], "", &sshd_jail(&log));
    let peer = lab.peer_v4().to_string();
    assert!(lab.ping(lab.host_v4()));
    append(&log, &[failed(&peer, 1, 0), failed(&peer, 2, 0)]);
    assert!(wait_until(Duration::from_secs(5), || status(&d, "sshd")
        ["failures"]
        == 2));
    assert!(
        lab.ping(lab.host_v4()),
        "two failures must not ban (maxretry 3)"
    );
    append(&log, &[failed(&peer, 3, 0)]);
    assert!(
        wait_until(Duration::from_secs(5), || !lab.ping(lab.host_v4())),
        "the third failure did not ban:\n{}",
        d.log_text()
    );
    let list = d.cli_json(&["list", "--json"]);
    assert_eq!(list[0]["ip"], peer);
    assert_eq!(list[0]["jail"], "sshd");
    assert_eq!(list[0]["blocktype"], "tarpit");
    let s = status(&d, "sshd");
    assert_eq!(s["lines"], 3, "{s}");
    assert_eq!(s["bans"], 1, "{s}");
    assert_eq!(s["banned"], 1, "{s}");
    assert_eq!(s["sources"][0]["kind"], "file", "{s}");
    assert_eq!(s["sources"][0]["offset"], s["sources"][0]["size"], "{s}");
    // The log tells the story in fail2ban's words.
    let log = d.log_text();
    for want in [
        format!("[sshd] Found {peer} (1/3 in 10m)"),
        format!("[sshd] Found {peer} (2/3 in 10m)"),
        format!("[sshd] Found {peer} (3/3 in 10m)"),
        format!("[sshd] Ban {peer} for 1h (tarpit, ban #1, 3 failures"),
    ] {
        assert!(log.contains(&want), "no `{want}` in:\n{log}");
    }
}

#[test]
fn old_lines_and_other_programs_never_ban() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let peer = lab.peer_v4().to_string();
    // Written before banner starts: read at first start, but 20 minutes old.
    append(
        &log,
        &(1..=5).map(|i| failed(&peer, i, 1200)).collect::<Vec<_>>(),
    );
    let d = Daemon::start(&[&lab.host_if], "", &sshd_jail(&log));
    assert!(wait_until(Duration::from_secs(5), || status(&d, "sshd")
        ["too_old"]
        == 5));
    // Fresh lines, but written by another program.
    let fake: Vec<String> = (1..=5)
        .map(|i| {
            format!(
                "{} gw evil[{i}]: Failed password for root from {peer} port 1 ssh2",
                stamp(0)
            )
        })
        .collect();
    append(&log, &fake);
    assert!(wait_until(Duration::from_secs(5), || status(&d, "sshd")
        ["lines"]
        == 10));
    assert!(lab.ping(lab.host_v4()));
    assert_eq!(
        d.cli_json(&["list", "--json"]).as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn a_restart_continues_the_log_where_it_stopped() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let mut d = Daemon::start(&[&lab.host_if], "", &sshd_jail(&log));
    let peer = lab.peer_v4().to_string();
    append(
        &log,
        &(1..=3).map(|i| failed(&peer, i, 0)).collect::<Vec<_>>(),
    );
    assert!(wait_until(Duration::from_secs(5), || !lab.ping(lab.host_v4())));
    d.cli_ok(&["unban", &peer]);
    assert!(d.stop().success());
    d.spawn();
    // The three lines were read before the restart: they must not be read (and ban) again.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&d, "sshd")["lines"], 0, "{}", d.log_text());
    assert!(
        lab.ping(lab.host_v4()),
        "old lines were read again after the restart"
    );
    // New lines after the restart are read.
    append(
        &log,
        &(4..=6).map(|i| failed(&peer, i, 0)).collect::<Vec<_>>(),
    );
    assert!(wait_until(Duration::from_secs(5), || !lab.ping(lab.host_v4())));
}

#[test]
fn the_log_is_followed_across_rotation() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let d = Daemon::start(&[&lab.host_if], "", &sshd_jail(&log));
    let peer = lab.peer_v4().to_string();
    append(&log, &[failed(&peer, 1, 0), failed(&peer, 2, 0)]);
    assert!(wait_until(Duration::from_secs(5), || status(&d, "sshd")
        ["failures"]
        == 2));
    std::fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
    append(&log, &[failed(&peer, 3, 0)]);
    assert!(
        wait_until(Duration::from_secs(5), || !lab.ping(lab.host_v4())),
        "the failure in the new file was missed:\n{}",
        d.log_text()
    );
    assert_eq!(
        status(&d, "sshd")["lines"],
        3,
        "a line was read twice or lost"
    );
}

#[test]
fn reload_changes_jails_and_keeps_bans() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let applog = dir.path().join("app.log");
    let d = Daemon::start(&[&lab.host_if], "", &sshd_jail(&log));
    d.cli_ok(&["ban", "198.19.7.7"]);
    let original = std::fs::read_to_string(&d.config).unwrap();
    // Swap the sshd jail for an app jail with its own filter. (A file layers over the
    // embedded default, which has an sshd jail: leaving it out would bring that one back.)
    let with_app = original.replace(
        &sshd_jail(&log),
        &format!(
            "\n[jails.sshd]\nenabled = false\n[jails.app]\nlogpath = \"{}\"\nmaxretry = 2\n[filters.app]\nfailregex = ['^login failed from <HOST>$']\n",
            applog.display()
        ),
    );
    std::fs::write(&d.config, &with_app).unwrap();
    let out = d.cli_ok(&["reload"]);
    assert!(
        out.contains("added: [app]") && out.contains("dropped: [sshd]"),
        "{out}"
    );
    let names: Vec<String> = d.cli_json(&["status", "--json"])["jails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, vec!["app"]);
    assert_eq!(
        d.cli_json(&["list", "--json"])[0]["ip"],
        "198.19.7.7",
        "bans must survive a reload"
    );
    let peer = lab.peer_v4().to_string();
    append(
        &applog,
        &[
            format!("login failed from {peer}"),
            format!("login failed from {peer}"),
        ],
    );
    assert!(wait_until(Duration::from_secs(5), || !lab.ping(lab.host_v4())));
    // A broken config is refused and the running one stays.
    std::fs::write(
        &d.config,
        format!("{with_app}\n[jails.bad]\nlogpath = \"/tmp/x\"\nfilter = \"nope\"\n"),
    )
    .unwrap();
    let out = d.cli(&["reload"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no filter named `nope`") && err.contains(":"),
        "{err}"
    );
    assert_eq!(
        d.cli_json(&["status", "--json"])["jails"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn ban_and_unban_by_jail() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "{}bantime = \"2h\"\nblocktype = \"drop\"\n",
            sshd_jail(&log)
        ),
    );
    d.cli_ok(&["ban", "--jail", "sshd", "198.19.1.1", "198.19.1.2"]);
    d.cli_ok(&["ban", "198.19.1.3"]);
    let list = d.cli_json(&["list", "--json"]);
    let sshd: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["jail"] == "sshd")
        .collect();
    assert_eq!(sshd.len(), 2);
    assert_eq!(sshd[0]["blocktype"], "drop", "the jail's blocktype applies");
    let out = d.cli(&["ban", "--jail", "nosuchjail", "198.19.1.4"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no jail named `nosuchjail`"));
    // unban --jail only touches that jail's bans.
    let out = d.cli_ok(&["unban", "--jail", "sshd", "198.19.1.3"]);
    assert!(out.contains("was not banned"), "{out}");
    d.cli_ok(&["unban", "--jail", "sshd", "--all"]);
    let list = d.cli_json(&["list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["jail"], "manual");
}

#[test]
fn check_config_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("banner.toml");
    std::fs::write(&cfg, "[defaults]\nbantime = \"1h\"\n\n[filters.x]\nfailregex = ['^no host$']\n\n[jails.x]\nlogpath = \"/tmp/x.log\"\n").unwrap();
    let out = Command::new(tests::banner_bin())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:5:14:", cfg.display())), "{err}");
    assert!(err.contains("no <HOST>"), "{err}");
    std::fs::write(
        &cfg,
        "[jails.x]\nlogpath = \"/tmp/x.log\"\n[filters.x]\nfailregex = ['^bad <HOST>$']\n",
    )
    .unwrap();
    let out = Command::new(tests::banner_bin())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The daemon refuses to start on a bad config, naming the same place.
    std::fs::write(&cfg, "[banner]\nbackend = \"fast\"\n").unwrap();
    let out = Command::new(tests::banner_bin())
        .args(["daemon", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(":2:11: unknown backend"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_dry_run_bans_nothing_and_says_what_it_would_ban() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let mut d = Daemon::start(&[&lab.host_if], "backend = \"none\"", &sshd_jail(&log));
    assert!(d.cli_ok(&["ping"]).contains("answers"));
    let peer = lab.peer_v4().to_string();
    append(
        &log,
        &[
            failed(&peer, 1, 0),
            failed(&peer, 2, 0),
            failed(&peer, 3, 0),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(5), || status(&d, "sshd")["bans"] == 1),
        "{}",
        d.log_text()
    );
    // Judged and listed, not enforced: no program on the interface, the peer still reaches us.
    assert!(lab.ping(lab.host_v4()), "a dry run enforced a ban");
    assert!(!sh("ip", &["link", "show", &lab.host_if]).contains("xdp"));
    let list = d.cli_json(&["list", "--json"]);
    assert_eq!(list[0]["ip"], peer);
    assert_eq!(list[0]["dry_run"], true, "{list}");
    let table = d.cli_ok(&["list"]);
    assert!(
        table.contains("DRY RUN") && table.contains("would tarpit"),
        "{table}"
    );
    assert!(d.cli_ok(&["status"]).contains("DRY RUN"));
    assert_eq!(d.cli_json(&["status", "--json"])["dry_run"], true);
    assert!(
        d.log_text()
            .contains(&format!("(dry run, not enforced) [sshd] Ban {peer}")),
        "{}",
        d.log_text()
    );
    // The would-be bans live apart from a real run's state, and survive a restart.
    assert!(d.dir.path().join("state/dry-run").is_dir());
    d.stop();
    d.spawn();
    assert_eq!(d.cli_json(&["list", "--json"])[0]["ip"], peer);
    assert!(lab.ping(lab.host_v4()));
}

/// `[actions.*]`: a jail's bans and unbans run its command (arguments as given, no shell) and
/// post to its webhook; a slow action holds nothing up.
#[test]
fn actions_run_on_ban_and_unban_without_a_shell() {
    use std::io::{BufRead as _, BufReader, Read as _};
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let record = dir.path().join("record");
    // The webhook: a listener taking one POST, its body handed back.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hook.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = hook.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut length = 0;
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 2 {
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            line.clear();
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let _ = std::io::Write::write_all(&mut s, b"HTTP/1.1 204 No Content\r\n\r\n");
        let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
    });
    let jail = format!(
        "{}actions = [\"record\", \"slow\", \"hook\"]\n\
         [actions.record]\n\
         on_ban = [\"/bin/sh\", \"-c\", \"printf 'ban %s %s %s\\\\n' \\\"$1\\\" \\\"$2\\\" \\\"$3\\\" >> {rec}\", \"sh\", \"{{ip}}\", \"{{jail}}\", \"{{matches}}\"]\n\
         on_unban = [\"/bin/sh\", \"-c\", \"printf 'unban %s\\\\n' \\\"$1\\\" >> {rec}\", \"sh\", \"{{ip}}\"]\n\
         [actions.slow]\n\
         on_ban = [\"/bin/sleep\", \"30\"]\n\
         timeout = \"2s\"\n\
         [actions.hook]\n\
         url = \"http://127.0.0.1:{port}/banner\"\n",
        sshd_jail(&log),
        rec = record.display(),
    );
    let d = Daemon::start(&[&lab.host_if], "", &jail);
    let peer = lab.peer_v4().to_string();
    // The attacker's own words in a log line reach the command as one argument, inert.
    let hostile = format!(
        "{} gw sshd[9]: Failed password for $(touch /tmp/banner-action-pwned); from {peer} port 1 ssh2",
        stamp(0)
    );
    append(&log, &[hostile, failed(&peer, 2, 0), failed(&peer, 3, 0)]);
    assert!(
        wait_until(Duration::from_secs(5), || !lab.ping(lab.host_v4())),
        "no ban: {}",
        d.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&record)
            .is_ok_and(|t| t.starts_with(&format!("ban {peer} sshd ")))),
        "on_ban did not run: {:?}\n{}",
        std::fs::read_to_string(&record),
        d.log_text()
    );
    assert!(!Path::new("/tmp/banner-action-pwned").exists());
    let body = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook was called");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"], "ban", "{v}");
    assert_eq!(v["ip"], peer.as_str(), "{v}");
    assert_eq!(v["jail"], "sshd", "{v}");
    assert_eq!(v["failures"], "3", "{v}");

    d.cli_ok(&["unban", &peer]);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&record)
            .is_ok_and(|t| t.contains(&format!("unban {peer}\n")))),
        "on_unban did not run: {:?}",
        std::fs::read_to_string(&record)
    );
    // The slow action was killed at its timeout and said so.
    assert!(
        wait_until(Duration::from_secs(10), || d.log_text().contains(
            "action slow: /bin/sleep still ran after 2s and was killed"
        )),
        "{}",
        d.log_text()
    );
}
