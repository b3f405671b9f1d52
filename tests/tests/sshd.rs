//! End to end: a real OpenSSH server in the lab, a real ssh client failing passwords from the
//! peer namespace, banner reading sshd's log and banning at the NIC (tarpit, the default: the
//! client's next connection is held and never reaches sshd).

use std::time::Duration;

use tests::{wait_until, Daemon, Lab, Sshd};

/// A lab whose peer behaves like a host on a wire: full checksums, and XDP on its end so the
/// tarpit's replies reach it.
fn wire_lab() -> Lab {
    let lab = Lab::new();
    lab.full_checksums().peer_xdp_pass();
    lab
}

fn jail(sshd: &Sshd, extra: &str) -> String {
    format!(
        "\n[jails.sshd]\nlogpath = \"{}\"\njournalmatch = []\n{extra}\n",
        sshd.log.display()
    )
}

#[test]
fn three_wrong_passwords_ban_the_client_until_bantime() {
    let lab = wire_lab();
    let sshd = Sshd::start(lab.host_v4());
    let d = Daemon::start(&[&lab.host_if], "", &jail(&sshd, "bantime = \"10s\""));
    let host = lab.host_v4();
    assert!(lab.ssh_banner(host));
    for user in ["root", "admin"] {
        assert!(
            lab.ssh_wrong_password(user, None, host),
            "sshd did not answer:\n{}",
            sshd.log_text()
        );
    }
    assert!(
        lab.ssh_banner(host),
        "banned before maxretry:\n{}\n{}",
        sshd.log_text(),
        d.log_text()
    );
    // The third failure bans, possibly before this very session ends.
    lab.ssh_wrong_password("oracle", None, host);
    assert!(
        wait_until(Duration::from_secs(8), || !lab.ssh_banner(host)),
        "not banned after 3 failures:\n{}\n{}",
        sshd.log_text(),
        d.log_text()
    );
    assert!(
        !lab.ssh_wrong_password("root", None, host),
        "a banned client reached sshd"
    );
    let s = d.cli_json(&["status", "sshd", "--json"])["jails"][0].clone();
    assert_eq!(
        s["failures"],
        3,
        "each session counts once: {s}\n{}",
        sshd.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(25), || lab.ssh_banner(host)),
        "still banned after bantime"
    );
}

#[test]
fn a_restart_while_banned_keeps_the_ban() {
    let lab = wire_lab();
    let sshd = Sshd::start(lab.host_v4());
    let mut d = Daemon::start(&[&lab.host_if], "", &jail(&sshd, ""));
    let host = lab.host_v4();
    for _ in 0..3 {
        lab.ssh_wrong_password("test", None, host);
    }
    assert!(wait_until(Duration::from_secs(8), || !lab.ssh_banner(host)));
    assert!(d.stop().success());
    d.spawn();
    assert!(!lab.ssh_banner(host), "the ban was lost over a restart");
    d.kill9();
    assert!(!lab.ssh_banner(host), "the ban was lost when banner died");
    d.spawn();
    assert_eq!(
        d.cli_json(&["list", "--json"])[0]["ip"],
        lab.peer_v4().to_string()
    );
}

#[test]
fn an_ignoreip_client_is_never_banned() {
    let lab = wire_lab();
    let trusted = lab.add_peer_v4(3);
    let sshd = Sshd::start(lab.host_v4());
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!("ignoreip = [\"{trusted}/32\"]\n{}", jail(&sshd, "")),
    );
    let host = lab.host_v4();
    for _ in 0..5 {
        assert!(lab.ssh_wrong_password("root", Some(trusted), host));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        lab.ssh_wrong_password("root", Some(trusted), host),
        "the allowlisted client was cut off"
    );
    let s = d.cli_json(&["status", "sshd", "--json"])["jails"][0].clone();
    assert_eq!(s["failures"], 0, "allowlisted failures must not count: {s}");
    assert!(s["ignored"].as_u64().unwrap_or(0) >= 5, "{s}");
    assert_eq!(
        d.cli_json(&["list", "--json"]).as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn the_injection_username_bans_nothing_it_names() {
    let lab = wire_lab();
    let sshd = Sshd::start(lab.host_v4());
    let d = Daemon::start(&[&lab.host_if], "", &jail(&sshd, "mode = \"aggressive\""));
    let host = lab.host_v4();
    let forged = [
        "x from 198.18.9.9 port 22 ssh2",
        "y 198.18.9.9 port 22 [preauth]",
        "z from 198.18.9.9 port 22",
    ];
    for user in forged {
        lab.ssh_wrong_password(user, None, host);
    }
    assert!(
        wait_until(Duration::from_secs(8), || !lab.ssh_banner(host)),
        "the real sender was not banned:\n{}\n{}",
        sshd.log_text(),
        d.log_text()
    );
    let list = d.cli_json(&["list", "--json"]);
    let ips: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["ip"].as_str())
        .collect();
    assert_eq!(ips, vec![lab.peer_v4().to_string().as_str()], "{list}");
    assert!(
        sshd.log_text().contains("198.18.9.9"),
        "the forged address reached the log"
    );
}
