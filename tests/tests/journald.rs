//! The journald source against a real systemd-journald: failures written with systemd-cat
//! ban their sender, and the cursor carries across a restart.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tests::{wait_until, Daemon, Lab};

/// systemd-journald for the test, started only if none runs; stopped (and its runtime files
/// removed) on drop.
struct Journald {
    child: Option<Child>,
    created: Vec<&'static str>,
}

impl Journald {
    fn ensure() -> Self {
        tests::require_root();
        let socket = Path::new("/run/systemd/journal/socket");
        if socket.exists() {
            return Self {
                child: None,
                created: Vec::new(),
            };
        }
        let created: Vec<&'static str> = ["/run/systemd/journal", "/run/log/journal"]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        let child = Command::new("/lib/systemd/systemd-journald")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        let j = Self {
            child: Some(child),
            created,
        };
        assert!(
            wait_until(Duration::from_secs(10), || socket.exists()),
            "systemd-journald did not come up"
        );
        j
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            for p in &self.created {
                let _ = std::fs::remove_dir_all(p);
            }
        }
    }
}

/// One journald test at a time: the one that started journald stops it when it ends.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn log_as(tag: &str, message: &str) {
    let mut child = Command::new("systemd-cat")
        .args(["-t", tag])
        .stdin(Stdio::piped())
        .spawn()
        .expect("systemd-cat");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{message}\n").as_bytes())
        .expect("write to systemd-cat");
    assert!(child.wait().expect("systemd-cat").success());
}

#[test]
fn journald_failures_ban_and_the_cursor_survives_a_restart() {
    let _one = serial();
    let _journald = Journald::ensure();
    let lab = Lab::new();
    // A tag of our own, so no other entry (or an earlier run's) is read.
    let tag = format!("bnrt{}x{}", lab.id, std::process::id());
    let mut d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!("\n[jails.sshd]\njournalmatch = [\"SYSLOG_IDENTIFIER={tag}\"]\nlogpath = []\n"),
    );
    let status = |d: &Daemon| d.cli_json(&["status", "sshd", "--json"])["jails"][0].clone();
    assert!(
        wait_until(Duration::from_secs(10), || status(&d)["sources"][0]
            ["state"]
            == "following"),
        "journal source never started: {}\n{}",
        status(&d),
        d.log_text()
    );
    let peer = lab.peer_v4().to_string();
    for port in 1..=3 {
        log_as(
            &tag,
            &format!("Failed password for root from {peer} port {port} ssh2"),
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || !lab.ping(lab.host_v4())),
        "journald failures did not ban: {}\n{}",
        status(&d),
        d.log_text()
    );
    let s = status(&d);
    assert_eq!(s["sources"][0]["kind"], "journal", "{s}");
    assert!(
        s["sources"][0]["cursor"]
            .as_str()
            .is_some_and(|c| c.starts_with("s=")),
        "{s}"
    );

    // Restart: the cursor is saved, the three entries are not read again.
    d.cli_ok(&["unban", &peer]);
    assert!(d.stop().success());
    d.spawn();
    assert!(wait_until(Duration::from_secs(10), || status(&d)
        ["sources"][0]["state"]
        == "following"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        status(&d)["failures"],
        0,
        "entries were read twice: {}",
        status(&d)
    );
    assert!(lab.ping(lab.host_v4()));
    for port in 4..=6 {
        log_as(
            &tag,
            &format!("Invalid user admin{port} from {peer} port {port}"),
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || !lab.ping(lab.host_v4())),
        "new entries after the restart were missed: {}",
        status(&d)
    );
}

#[test]
fn the_journal_is_preferred_over_a_syslog_file_anyone_can_write() {
    // Issue 9, item 14: `logger -t sshd "Failed password ... from X"` put a line in
    // /var/log/auth.log (read beside the journal by default) and banned X.
    let _one = serial();
    let _journald = Journald::ensure();
    let lab = Lab::new();
    let tag = format!("bnrp{}x{}", lab.id, std::process::id());
    // The journal already holds this jail's entries (sshd has logged before).
    log_as(&tag, "Server listening on 0.0.0.0 port 22.");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.log");
    std::fs::write(&file, "").unwrap();
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[jails.sshd]\njournalmatch = [\"SYSLOG_IDENTIFIER={tag}\"]\nlogpath = [\"{}\"]\n",
            file.display()
        ),
    );
    assert!(
        wait_until(Duration::from_secs(10), || d
            .log_text()
            .contains("reading the journal only")),
        "{}",
        d.log_text()
    );
    let peer = lab.peer_v4().to_string();
    // Forged lines in the file (even with a pid in the tag) are not read at all.
    let stamp = "Nov 26 01:02:03";
    let mut forged = String::new();
    for port in 1..=4 {
        forged.push_str(&format!(
            "{stamp} gw sshd[999]: Failed password for root from {peer} port {port} ssh2\n"
        ));
    }
    std::fs::write(&file, forged).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(lab.ping(lab.host_v4()), "a forged file line banned");
    // The journal's entries still ban.
    for port in 1..=3 {
        log_as(
            &tag,
            &format!("Failed password for root from {peer} port {port} ssh2"),
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || !lab.ping(lab.host_v4())),
        "{}",
        d.log_text()
    );
}

/// Under systemd (`$JOURNAL_STREAM` set) the daemon logs to journald natively, the ban's jail
/// and address as fields of their own; `--log-format json` writes one object a line.
#[test]
fn ban_lines_reach_the_journal_with_their_fields_and_json_when_asked() {
    let _one = serial();
    let _journald = Journald::ensure();
    let lab = Lab::new();
    let peer = lab.peer_v4().to_string();
    let mut d = Daemon::configured(None, &[&lab.host_if], "", "");
    d.envs.push(("JOURNAL_STREAM".into(), "8:1".into()));
    d.spawn();
    d.cli_ok(&["ban", &peer, "--for", "1h"]);
    let entries = || {
        let out = Command::new("journalctl")
            .args(["--no-pager", "-o", "json", "SYSLOG_IDENTIFIER=banner"])
            .arg(format!("IP={peer}"))
            .output()
            .expect("journalctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        wait_until(Duration::from_secs(10), || entries()
            .contains(&format!("[manual] Ban {peer} for 1h"))),
        "not in the journal: {}\n{}",
        entries(),
        d.log_text()
    );
    let entry: serde_json::Value = entries()
        .lines()
        .rev()
        .find(|l| l.contains("] Ban "))
        .map(|l| serde_json::from_str(l).expect("journalctl -o json"))
        .expect("an entry");
    assert_eq!(entry["JAIL"], "manual", "{entry}");
    assert_eq!(entry["PRIORITY"], "6", "{entry}");
    assert!(
        !d.log_text().contains("] Ban "),
        "went to stderr too: {}",
        d.log_text()
    );
    d.stop();

    // --log-format json: one object a line on stderr, with the fields.
    d.envs.clear();
    d.args = vec!["--log-format".into(), "json".into()];
    d.spawn();
    d.cli_ok(&["unban", &peer]);
    let line = d
        .log_text()
        .lines()
        .find(|l| l.contains("Unban"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no Unban line: {}", d.log_text()));
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["ip"], peer.as_str(), "{v}");
    assert_eq!(v["jail"], "manual", "{v}");
    assert_eq!(v["level"], "INFO", "{v}");
}
