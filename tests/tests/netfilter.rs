//! The nftables and iptables backends in the lab. The host side runs in a namespace of its
//! own, so its tables, chains and sets are the test's alone and vanish with it.

use std::time::Duration;

use tests::{wait_until, Daemon, Lab};

/// A daemon on an isolated host side with the given backend.
fn start(lab: &Lab, backend: &str, defaults_extra: &str) -> Daemon {
    Daemon::start_in(
        lab.host_ns.as_deref(),
        &[&lab.host_if],
        &format!("backend = \"{backend}\""),
        defaults_extra,
    )
}

fn listed(d: &Daemon) -> usize {
    d.cli_json(&["list", "--json"])
        .as_array()
        .map_or(0, Vec::len)
}

fn ban_unban_prefix_ipv6_and_stats(backend: &str) {
    let lab = Lab::isolated();
    let d = start(&lab, backend, "");
    assert!(
        d.cli_ok(&["stats"]).contains(backend),
        "{}",
        d.cli_ok(&["stats"])
    );
    let host = lab.host_v4();
    let peer = lab.peer_v4().to_string();
    assert!(lab.ping(host));
    d.cli_ok(&["ban", &peer, "--blocktype", "drop"]);
    assert!(!lab.ping(host), "{backend}: banned peer still answered");
    d.cli_ok(&["unban", &peer]);
    assert!(lab.ping(host), "{backend}: unban did not lift");
    // A prefix.
    let net = format!("198.18.{}.0/25", lab.id);
    d.cli_ok(&["ban", &net]);
    assert!(!lab.ping(host));
    d.cli_ok(&["unban", &net]);
    assert!(lab.ping(host));
    // IPv6.
    let host6 = lab.host_v6();
    assert!(wait_until(Duration::from_secs(5), || lab.ping(host6)));
    d.cli_ok(&["ban", &lab.peer_v6().to_string()]);
    assert!(!lab.ping(host6), "{backend}: IPv6 ban not enforced");
    // Counters and hits, like the XDP backend's.
    d.cli_ok(&["ban", &peer]);
    for _ in 0..2 {
        assert!(!lab.ping(host));
    }
    let stats = d.cli_json(&["stats", "--json"]);
    assert!(
        stats["dropped"].as_u64().unwrap_or(0) >= 2,
        "{backend}: {stats}"
    );
    let list = d.cli_json(&["list", "--json"]);
    let ban = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["ip"] == peer.as_str())
        .unwrap();
    assert!(ban["hits"].as_u64().unwrap_or(0) >= 2, "{backend}: {list}");
}

fn kernel_timeout_restart_and_user_rules(
    backend: &str,
    user_rule: &[&str],
    user_rule_check: &[&str],
) {
    let lab = Lab::isolated();
    lab.host_exec_ok(user_rule);
    let mut d = start(&lab, backend, "");
    let host = lab.host_v4();
    let peer = lab.peer_v4().to_string();
    // Restart reuses: a ban made before a crash is still enforced and listed after it.
    d.cli_ok(&["ban", &peer, "--for", "1h"]);
    d.kill9();
    assert!(
        !lab.ping(host),
        "{backend}: enforcement stopped with the controller"
    );
    d.spawn();
    assert!(!lab.ping(host));
    assert_eq!(d.cli_json(&["list", "--json"])[0]["ip"], peer);
    d.cli_ok(&["unban", &peer]);
    // Expiry by the kernel's own timeout: with the controller dead, the ban still lifts.
    d.cli_ok(&["ban", &peer, "--for", "2s"]);
    assert!(!lab.ping(host));
    d.kill9();
    assert!(
        wait_until(Duration::from_secs(8), || lab.ping(host)),
        "{backend}: the kernel did not expire the ban"
    );
    d.spawn();
    // A clean stop removes our objects; the user's rule survives start and stop.
    assert!(d.stop().success());
    let check = lab.host_exec(user_rule_check);
    assert!(
        check.status.success(),
        "{backend}: the user's rule is gone: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

fn bulk_file_and_hosts_deny(backend: &str) {
    let lab = Lab::isolated();
    let dir = tempfile::tempdir().unwrap();
    let hosts_deny = dir.path().join("hosts.deny");
    std::fs::write(&hosts_deny, "sshd: 192.0.2.1\n").unwrap();
    let log = dir.path().join("auth.log");
    let d = Daemon::start_in(
        lab.host_ns.as_deref(),
        &[&lab.host_if],
        &format!(
            "backend = \"{backend}\"\nhosts_deny_path = \"{}\"",
            hosts_deny.display()
        ),
        &format!(
            "\n[jails.sshd]\nlogpath = \"{}\"\njournalmatch = []\nhosts_deny = true\n",
            log.display()
        ),
    );
    // 10k bans from a file in one batch.
    let list = dir.path().join("list.txt");
    let mut text = String::from("# bulk\n");
    for i in 0..10_000u32 {
        text.push_str(&format!("198.19.{}.{}\n", i / 250, i % 250 + 1));
    }
    std::fs::write(&list, text).unwrap();
    let start = std::time::Instant::now();
    d.cli_ok(&["ban", "--file", list.to_str().unwrap(), "--for", "1h"]);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{backend}: 10k bans took {:?}",
        start.elapsed()
    );
    assert_eq!(listed(&d), 10_000);
    // hosts.deny: a jail ban appears in our block; the unban takes it out; other lines stay.
    let peer = lab.peer_v4().to_string();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    use std::io::Write as _;
    for port in 1..=3 {
        writeln!(f, "Failed password for root from {peer} port {port} ssh2").unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(
            &hosts_deny
        )
        .unwrap_or_default()
        .contains(&format!("ALL: {peer}"))),
        "{backend}: hosts.deny never listed the ban: {}",
        std::fs::read_to_string(&hosts_deny).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&hosts_deny).unwrap();
    assert!(
        text.starts_with("sshd: 192.0.2.1\n# banner begin\n"),
        "{text}"
    );
    assert!(
        !text.contains("198.19.0.1"),
        "manual bans stay out of hosts.deny: {text}"
    );
    d.cli_ok(&["unban", &peer]);
    assert!(wait_until(
        Duration::from_secs(5),
        || std::fs::read_to_string(&hosts_deny).unwrap_or_default() == "sshd: 192.0.2.1\n"
    ));
}

#[test]
fn nftables_bans_unbans_prefixes_ipv6_and_counts() {
    ban_unban_prefix_ipv6_and_stats("nftables");
}

#[test]
fn iptables_bans_unbans_prefixes_ipv6_and_counts() {
    ban_unban_prefix_ipv6_and_stats("iptables");
}

#[test]
fn nftables_kernel_expiry_restart_and_the_users_rules() {
    kernel_timeout_restart_and_user_rules(
        "nftables",
        &["nft", "add table inet usertest; add chain inet usertest c { type filter hook input priority 0; }; add rule inet usertest c ip saddr 198.18.250.250 counter accept"],
        &["nft", "list", "chain", "inet", "usertest", "c"],
    );
}

#[test]
fn iptables_kernel_expiry_restart_and_the_users_rules() {
    kernel_timeout_restart_and_user_rules(
        "iptables",
        &[
            "iptables",
            "-A",
            "INPUT",
            "-s",
            "198.18.250.250",
            "-j",
            "ACCEPT",
        ],
        &[
            "iptables",
            "-C",
            "INPUT",
            "-s",
            "198.18.250.250",
            "-j",
            "ACCEPT",
        ],
    );
}

#[test]
fn nftables_bulk_load_from_a_file_and_hosts_deny() {
    bulk_file_and_hosts_deny("nftables");
}

#[test]
fn iptables_bulk_load_from_a_file_and_hosts_deny() {
    bulk_file_and_hosts_deny("iptables");
}

#[test]
fn auto_falls_through_to_netfilter_when_xdp_cannot_load() {
    let lab = Lab::isolated();
    // A bpffs directory that is not on a bpffs: the XDP backend cannot pin, so auto moves on.
    let d = Daemon::start_in(
        lab.host_ns.as_deref(),
        &[&lab.host_if],
        "backend = \"auto\"\nbpffs_dir = \"/tmp/banner-not-bpffs/pins\"",
        "",
    );
    let stats = d.cli_json(&["stats", "--json"]);
    assert!(
        stats["backend"]
            .as_str()
            .unwrap_or("")
            .starts_with("nftables"),
        "{stats}\n{}",
        d.log_text()
    );
    assert!(
        d.log_text().contains("XDP cannot be used"),
        "{}",
        d.log_text()
    );
    d.cli_ok(&["ban", &lab.peer_v4().to_string()]);
    assert!(!lab.ping(lab.host_v4()));
}

/// Issue 9, item 6: a firewall reload lifted every ban, silently; with nftables later bans
/// and `list` failed for good, with iptables new bans printed "banned" and were not enforced.
fn a_firewall_reload_is_repaired(backend: &str, reload: &[&[&str]]) {
    let lab = Lab::isolated();
    let d = start(&lab, backend, "");
    let host = lab.host_v4();
    let peer = lab.peer_v4().to_string();
    d.cli_ok(&["ban", &peer, "--blocktype", "drop"]);
    assert!(!lab.ping(host));
    for cmd in reload {
        lab.host_exec_ok(cmd);
    }
    assert!(
        wait_until(Duration::from_secs(10), || d
            .log_text()
            .contains("enforcement")),
        "{backend}: the reload went unnoticed:\n{}",
        d.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(10), || !lab.ping(host)),
        "{backend}: the ban was not restored:\n{}",
        d.log_text()
    );
    // A new ban right after another reload is enforced too, and `list` works.
    d.cli_ok(&["unban", &peer]);
    assert!(lab.ping(host));
    for cmd in reload {
        lab.host_exec_ok(cmd);
    }
    d.cli_ok(&["ban", &peer, "--blocktype", "drop"]);
    assert!(
        !lab.ping(host),
        "{backend}: a ban after the reload is not enforced"
    );
    assert_eq!(listed(&d), 1);
}

#[test]
fn nftables_survives_a_ruleset_flush() {
    a_firewall_reload_is_repaired("nftables", &[&["nft", "flush", "ruleset"]]);
}

#[test]
fn iptables_survives_a_raw_table_flush_and_ipset_destroy() {
    a_firewall_reload_is_repaired("iptables", &[&["iptables", "-t", "raw", "-F"]]);
    // A whole reload replaces the raw tables in one step (what iptables-restore of a saved
    // ruleset does), removing banner's chains; `-F` then `-X` as separate commands raced
    // the daemon, which re-adds its jump between the two (`-X`: chain busy).
    let empty_raw = "printf '*raw\\n:PREROUTING ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n'";
    // One shell, so the daemon's repair does not fall between the steps.
    let reload = format!(
        "{empty_raw} | iptables-restore && {empty_raw} | ip6tables-restore && ipset destroy"
    );
    a_firewall_reload_is_repaired("iptables", &[&["sh", "-c", &reload]]);
}
