//! banner as a CrowdSec bouncer, against Debian's real CrowdSec Local API (run per test,
//! offline) and against a hostile one made up here. Root: labs and XDP.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::TcpListener,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use tests::{crowdsec::Lapi, wait_until, Daemon, Lab};

/// The targets `banner list --json` shows, with their origin.
fn listed(d: &Daemon) -> Vec<(String, String)> {
    let v = d.cli_json(&["list", "--json"]);
    let mut out: Vec<(String, String)> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|b| {
            (
                b["ip"].as_str().unwrap_or_default().to_string(),
                b["jail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn holds(d: &Daemon, target: &str) -> bool {
    listed(d).iter().any(|(t, _)| t == target)
}

fn status_line(d: &Daemon) -> String {
    d.cli_ok(&["status"])
        .lines()
        .find(|l| l.starts_with("CrowdSec"))
        .unwrap_or_default()
        .to_string()
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn two_gateways_enforce_lapi_decisions_lift_deletions_and_ride_out_an_outage() {
    let mut lapi = Lapi::start();
    let (a, b) = (Lab::new(), Lab::new());
    let ga = Daemon::start(
        &[&a.host_if],
        "",
        &lapi.banner_section(&lapi.bouncer_key("gw-a")),
    );
    let gb = Daemon::start(
        &[&b.host_if],
        "",
        &lapi.banner_section(&lapi.bouncer_key("gw-b")),
    );
    assert!(
        a.ping(a.host_v4()) && b.ping(b.host_v4()),
        "the labs answer before any ban"
    );

    // An address behind gateway A, and gateway B's whole peer /24 (its own address inside
    // stays reachable: the allowlist wins inside a range).
    let one = a.peer_v4().to_string();
    let range = format!("198.18.{}.0/24", b.id);
    lapi.cscli(&["decisions", "add", "--ip", &one, "--duration", "1h"]);
    lapi.cscli(&["decisions", "add", "--range", &range, "--duration", "2h"]);
    for g in [&ga, &gb] {
        assert!(
            wait_until(WAIT, || holds(g, &one) && holds(g, &range)),
            "not enforced: {:?}\n{}",
            listed(g),
            g.log_text()
        );
        assert!(listed(g)
            .iter()
            .all(|(_, origin)| origin == "crowdsec:cscli"));
    }
    assert!(!a.ping(a.host_v4()), "gateway A drops the banned address");
    assert!(!b.ping(b.host_v4()), "gateway B drops the banned range");
    assert!(
        status_line(&ga).contains(": up, 2 decisions held"),
        "{}",
        status_line(&ga)
    );

    // Deleted in LAPI: lifted on both.
    lapi.cscli(&["decisions", "delete", "--ip", &one]);
    for g in [&ga, &gb] {
        assert!(wait_until(WAIT, || !holds(g, &one)), "{:?}", listed(g));
        assert!(holds(g, &range));
    }
    assert!(a.ping(a.host_v4()), "lifted at the NIC too");

    // LAPI down: the bans stay, the link says so once.
    lapi.stop();
    assert!(
        wait_until(WAIT, || status_line(&ga).contains(": down")),
        "{}",
        status_line(&ga)
    );
    thread::sleep(Duration::from_secs(3));
    assert!(holds(&ga, &range) && holds(&gb, &range));
    assert!(!b.ping(b.host_v4()));
    let downs = ga.log_text().matches("cannot reach LAPI").count();
    assert_eq!(
        downs,
        1,
        "one line per outage, not one per retry:\n{}",
        ga.log_text()
    );

    // Back up, and the range deleted at once, while the gateways still wait out their
    // backoff: the whole set asked after the outage no longer holds it.
    lapi.spawn();
    lapi.cscli(&["decisions", "delete", "--range", &range]);
    for g in [&ga, &gb] {
        assert!(
            wait_until(WAIT, || !holds(g, &range)),
            "the resync missed a deletion: {:?}\n{}",
            listed(g),
            g.log_text()
        );
        assert!(status_line(g).contains(": up"), "{}", status_line(g));
    }
    assert!(b.ping(b.host_v4()));
}

#[test]
fn crowdsec_bans_are_kept_across_a_restart_with_lapi_down() {
    let mut lapi = Lapi::start();
    let lab = Lab::new();
    let mut d = Daemon::start(
        &[&lab.host_if],
        "",
        &lapi.banner_section(&lapi.bouncer_key("gw")),
    );
    let peer = lab.peer_v4().to_string();
    lapi.cscli(&["decisions", "add", "--ip", &peer, "--duration", "1h"]);
    assert!(wait_until(WAIT, || holds(&d, &peer)));
    lapi.stop();
    d.stop();
    d.spawn();
    // No gap: enforced from the saved state before LAPI could be asked.
    assert!(holds(&d, &peer), "{}", d.log_text());
    assert!(!lab.ping(lab.host_v4()));
}

#[test]
fn a_bad_bouncer_key_or_watcher_login_stops_the_start_with_a_clear_error() {
    let lapi = Lapi::start();
    let lab = Lab::new();
    let key = lapi.bouncer_key("gw");
    let cases = [
        (lapi.banner_section("not-a-key"), vec!["api_key", "403"]),
        (
            format!(
                "{}push = true\nlogin = \"nobody\"\npassword = \"wrong\"\n",
                lapi.banner_section(&key)
            ),
            vec!["watcher login `nobody`", "login and password"],
        ),
    ];
    for (section, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("banner.toml");
        std::fs::write(
            &config,
            format!(
                "[banner]\ninterfaces = [\"{}\"]\nsocket = \"{}/s.sock\"\nstate_dir = \"{}/state\"\nbpffs_dir = \"/sys/fs/bpf/banner-test-badkey\"\n[jails.sshd]\nenabled = false\n[jails.recidive]\nenabled = false\n{section}",
                lab.host_if,
                dir.path().display(),
                dir.path().display(),
            ),
        )
        .unwrap();
        let out = std::process::Command::new(tests::banner_bin())
            .args(["daemon", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let attached = tests::sh("ip", &["link", "show", &lab.host_if]).contains("xdp");
        let pinned = std::path::Path::new("/sys/fs/bpf/banner-test-badkey").exists();
        let _ = std::fs::remove_dir_all("/sys/fs/bpf/banner-test-badkey");
        assert!(!attached && !pinned, "a refused start left XDP behind");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started: {err}");
        for w in words {
            assert!(err.contains(w), "no `{w}` in: {err}");
        }
    }
}

/// A made-up LAPI serving `answer` to every request, counting requests.
struct FakeLapi {
    port: u16,
    stop: Arc<AtomicBool>,
    answer: Arc<Mutex<String>>,
}

impl FakeLapi {
    fn start(answer: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(Mutex::new(answer.to_string()));
        let (flag, body) = (Arc::clone(&stop), Arc::clone(&answer));
        thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body = body.lock().unwrap().clone();
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Self { port, stop, answer }
    }
}

impl Drop for FakeLapi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_hostile_lapi_cannot_ban_the_allowlist_or_the_internet() {
    let lab = Lab::new();
    let own = lab.host_v4().to_string();
    let peer = lab.peer_v4().to_string();
    let d = |id: u32, scope: &str, value: &str| {
        format!(
            r#"{{"id":{id},"origin":"cscli","scenario":"x","scope":"{scope}","value":"{value}","type":"ban","duration":"1h"}}"#
        )
    };
    let answer = format!(
        r#"{{"new":[{},{},{},{},{},{{"id":"7","value":"198.18.9.9"}}],"deleted":null}}"#,
        d(1, "Range", "0.0.0.0/0"),
        d(2, "Ip", &own),
        d(3, "Ip", "127.0.0.1"),
        d(4, "Ip", "198.18.0.1 -j ACCEPT"),
        d(5, "Ip", &peer),
    );
    let fake = FakeLapi::start(&answer);
    let section = format!(
        "\n[crowdsec]\nlapi_url = \"http://127.0.0.1:{}\"\napi_key = \"k\"\nupdate_frequency = \"1s\"\n",
        fake.port
    );
    let daemon = Daemon::start(&[&lab.host_if], "", &section);
    assert!(
        wait_until(WAIT, || holds(&daemon, &peer)),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        listed(&daemon),
        [(peer.clone(), "crowdsec:cscli".to_string())]
    );
    let log = daemon.log_text();
    for words in [
        "/0 is broader than the /8",
        "no IP address",
        "not a decision",
    ] {
        assert!(log.contains(words), "no `{words}` in:\n{log}");
    }
    assert!(log.contains(&format!("{own} is in the allowlist")), "{log}");

    // Then it answers with garbage: refused whole, the ban held, the link down.
    *fake.answer.lock().unwrap() = "<html>502 Bad Gateway</html>".into();
    assert!(
        wait_until(WAIT, || status_line(&daemon).contains(": down")),
        "{}",
        status_line(&daemon)
    );
    assert!(
        status_line(&daemon).contains("not the decision stream"),
        "{}",
        status_line(&daemon)
    );
    assert!(holds(&daemon, &peer));
}

#[test]
fn a_ban_one_gateway_decides_is_pushed_and_enforced_on_the_other() {
    let lapi = Lapi::start();
    let creds = lapi.dir.path().join("gw-a.yaml");
    lapi.cscli(&[
        "machines",
        "add",
        "gw-a",
        "--password",
        "gw-a-secret-1234",
        "--force",
        "-f",
        &creds.display().to_string(),
    ]);
    let (a, b) = (Lab::new(), Lab::new());
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let jail = format!(
        "\n[jails.app]\nlogpath = \"{}\"\nmaxretry = 2\n[filters.app]\nfailregex = ['^login failed from <HOST>$']\n",
        log.display()
    );
    let ga = Daemon::start(
        &[&a.host_if],
        "",
        &format!(
            "{jail}{}push = true\ncredentials_file = \"{}\"\n",
            lapi.banner_section(&lapi.bouncer_key("gw-a")),
            creds.display()
        ),
    );
    let gb = Daemon::start(
        &[&b.host_if],
        "",
        &lapi.banner_section(&lapi.bouncer_key("gw-b")),
    );
    assert!(
        ga.log_text().contains("as watcher `gw-a`"),
        "{}",
        ga.log_text()
    );

    // Gateway A's jail bans B's peer; B has seen no failure of it.
    let attacker = b.peer_v4().to_string();
    assert!(b.ping(b.host_v4()));
    std::fs::write(
        &log,
        format!("login failed from {attacker}\nlogin failed from {attacker}\n"),
    )
    .unwrap();
    assert!(
        wait_until(WAIT, || holds(&ga, &attacker)),
        "{}",
        ga.log_text()
    );
    assert!(
        wait_until(WAIT, || holds(&gb, &attacker)),
        "gateway B never enforced A's ban: {:?}\n{}\n{}",
        listed(&gb),
        ga.log_text(),
        lapi.log_text()
    );
    assert_eq!(
        listed(&gb),
        [(attacker.clone(), "crowdsec:crowdsec".to_string())]
    );
    assert!(!b.ping(b.host_v4()), "enforced at B's NIC");
    // A keeps its own jail's ban, and what it pulled back from LAPI is not pushed again.
    assert_eq!(listed(&ga), [(attacker.clone(), "app".to_string())]);
    thread::sleep(Duration::from_secs(3));
    let alerts: serde_json::Value =
        serde_json::from_str(&lapi.cscli(&["alerts", "list", "-o", "json"])).unwrap();
    let alerts = alerts.as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["scenario"], "banner/app");
    assert_eq!(alerts[0]["source"]["ip"], attacker.as_str());
}

#[test]
fn lapi_over_https_is_trusted_by_its_ca_only() {
    let lapi = Lapi::start_tls();
    assert!(lapi.url().starts_with("https://"));
    let lab = Lab::new();
    let key = lapi.bouncer_key("gw");
    let section = format!(
        "{}ca_cert = \"{}\"\n",
        lapi.banner_section(&key),
        lapi.ca_cert().display()
    );
    let d = Daemon::start(&[&lab.host_if], "", &section);
    let peer = lab.peer_v4().to_string();
    lapi.cscli(&["decisions", "add", "--ip", &peer, "--duration", "1h"]);
    assert!(
        wait_until(WAIT, || holds(&d, &peer)),
        "{}\n{}",
        d.log_text(),
        status_line(&d)
    );
    assert!(!lab.ping(lab.host_v4()));
    assert!(status_line(&d).contains("https://"), "{}", status_line(&d));
    // `status --json` carries the link too, beside the enforcement and the jails.
    let status = d.cli_json(&["status", "--json"]);
    assert!(status["crowdsec"].is_object(), "{status}");
    assert!(status["syslog"].is_null(), "{status}");
    assert!(
        status["enforcement"].as_str().unwrap_or("").contains("xdp"),
        "{status}"
    );
    assert!(status["jails"].is_array(), "{status}");
    drop(d);

    // Without the CA, LAPI's certificate is not trusted: a mistake waiting never mends, so
    // the start stops and says why, leaving nothing attached.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("banner.toml");
    std::fs::write(
        &config,
        format!(
            "[banner]\ninterfaces = [\"{}\"]\nsocket = \"{}/s.sock\"\nstate_dir = \"{}/state\"\nbpffs_dir = \"/sys/fs/bpf/banner-test-badca\"\n[jails.sshd]\nenabled = false\n[jails.recidive]\nenabled = false\n{}",
            lab.host_if,
            dir.path().display(),
            dir.path().display(),
            lapi.banner_section(&key),
        ),
    )
    .unwrap();
    // Bounded: a daemon that started anyway is stopped after 60 s, and the test fails.
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(tests::banner_bin())
        .args(["daemon", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let pinned = std::path::Path::new("/sys/fs/bpf/banner-test-badca").exists();
    let _ = std::fs::remove_dir_all("/sys/fs/bpf/banner-test-badca");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {err}");
    assert!(!pinned, "a refused start left XDP behind");
    assert!(
        err.contains("certificate") && err.contains("ca_cert"),
        "{err}"
    );
}
