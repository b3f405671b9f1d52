//! Port-scoped bans in the lab, on each backend: a jail with `ports` bans only those ports of
//! an address, its other ports and ping still pass, and a whole-address ban takes them all.

use tests::{Daemon, Lab};

/// Two ports of the host side that no other lab of the run uses.
fn ports(lab: &Lab) -> (u16, u16) {
    let base = 20_000 + 2 * lab.id as u16;
    (base, base + 1)
}

fn scoped_ban_on(backend: &str) {
    let lab = if backend == "xdp" {
        Lab::new()
    } else {
        Lab::isolated()
    };
    let (ssh, web) = ports(&lab);
    let _listening = lab.host_listen(&[ssh, web]);
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("auth.log");
    std::fs::write(&log, "").expect("log file");
    let jail = format!(
        "[jails.guarded]\nfilter = \"sshd\"\nlogpath = \"{}\"\nports = [{ssh}]\nblocktype = \"drop\"\n",
        log.display()
    );
    let d = Daemon::start_in(
        lab.host_ns.as_deref(),
        &[&lab.host_if],
        &format!("backend = \"{backend}\""),
        &jail,
    );
    let host = lab.host_v4();
    let peer = lab.peer_v4().to_string();
    assert!(lab.tcp_connects(host, ssh) && lab.tcp_connects(host, web));

    // A ban in the jail's name covers the jail's ports.
    d.cli_ok(&["ban", &peer, "--jail", "guarded"]);
    assert!(
        !lab.tcp_connects(host, ssh),
        "{backend}: the banned port still connects"
    );
    assert!(
        lab.tcp_connects(host, web),
        "{backend}: a port outside the scope was blocked"
    );
    assert!(lab.ping(host), "{backend}: ping is outside every scope");
    let list = d.cli_json(&["list", "--json"]);
    assert_eq!(
        list[0]["ports"].as_str(),
        Some(format!("tcp:{ssh}").as_str()),
        "{backend}: {list}"
    );
    assert!(d.cli_ok(&["list"]).contains(&format!("tcp:{ssh}")));

    // A ban of the whole address takes every port.
    d.cli_ok(&["ban", &peer]);
    assert!(!lab.tcp_connects(host, web), "{backend}: whole-address ban");
    assert!(!lab.ping(host));
    let list = d.cli_json(&["list", "--json"]);
    assert!(list[0].get("ports").is_none(), "{backend}: {list}");

    // Lifted: everything passes again.
    d.cli_ok(&["unban", &peer]);
    assert!(lab.tcp_connects(host, ssh) && lab.tcp_connects(host, web));

    // The scope survives a restart of the daemon.
    d.cli_ok(&["ban", &peer, "--jail", "guarded"]);
    let mut d = d;
    d.stop();
    d.spawn();
    let list = d.cli_json(&["list", "--json"]);
    assert_eq!(
        list[0]["ports"].as_str(),
        Some(format!("tcp:{ssh}").as_str()),
        "{backend} after a restart: {list}"
    );
    assert!(!lab.tcp_connects(host, ssh), "{backend} after a restart");
    assert!(lab.tcp_connects(host, web), "{backend} after a restart");
}

#[test]
fn xdp_bans_only_the_jails_ports() {
    scoped_ban_on("xdp");
}

#[test]
fn nftables_bans_only_the_jails_ports() {
    scoped_ban_on("nftables");
}

#[test]
fn iptables_bans_only_the_jails_ports() {
    scoped_ban_on("iptables");
}
