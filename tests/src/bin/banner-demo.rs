//! `cargo xtask demo`: a narrated tour in a throw-away lab. An attacker namespace fails ssh
//! passwords against a real sshd; banner reads sshd's log, bans the attacker at the NIC, and
//! the demo shows the ban, the dropped packets, and the unban. Everything is removed at the
//! end (or on Ctrl-C: the guards clean up as the process unwinds).

use std::{thread, time::Duration};

use tests::{sh, Daemon, Lab, Sshd};

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

fn step(title: &str) {
    println!("\n{BOLD}== {title}{RESET}");
    thread::sleep(Duration::from_millis(600));
}

fn say(text: &str) {
    println!("   {text}");
}

fn show(text: &str) {
    for line in text.lines() {
        println!("   {DIM}|{RESET} {line}");
    }
}

fn verdict(ok: bool, yes: &str, no: &str) {
    if ok {
        println!("   {GREEN}{yes}{RESET}");
    } else {
        println!("   {RED}{no}{RESET}");
    }
}

fn main() {
    step("Building the lab");
    let lab = Lab::new();
    // The attacker's end behaves like a host on a wire (full checksums, XDP on its veth end so
    // the tarpit's replies reach it).
    lab.full_checksums().peer_xdp_pass();
    say(&format!(
        "host side {} ({}), attacker namespace {} at {}",
        lab.host_if,
        lab.host_v4(),
        lab.ns,
        lab.peer_v4()
    ));
    let sshd = Sshd::start(lab.host_v4());
    say(&format!(
        "a real OpenSSH server listens on {}:22, logging to {}",
        lab.host_v4(),
        sshd.log.display()
    ));
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[jails.sshd]\nlogpath = \"{}\"\njournalmatch = []\nbantime = \"30s\"\n",
            sshd.log.display()
        ),
    );
    say(&format!(
        "banner guards {} with XDP; the sshd jail bans after 3 failures within 10 minutes (tarpit)",
        lab.host_if
    ));
    let host = lab.host_v4();

    step("The attacker reaches the server");
    verdict(lab.ping(host), "ping: answered", "ping: no answer");
    verdict(
        lab.ssh_banner(host),
        "ssh: the server greets with its banner",
        "ssh: no banner",
    );

    step("The attacker guesses passwords");
    for (i, user) in ["root", "admin", "oracle"].iter().enumerate() {
        let answered = lab.ssh_wrong_password(user, None, host);
        say(&format!(
            "attempt {}: ssh {user}@{host} -> {}",
            i + 1,
            if answered {
                "Permission denied"
            } else {
                "no answer (banned mid-session)"
            }
        ));
        thread::sleep(Duration::from_millis(300));
    }
    say("what sshd logged:");
    show(
        &sshd
            .log_text()
            .lines()
            .filter(|l| !l.starts_with("Server listening"))
            .collect::<Vec<_>>()
            .join("\n"),
    );

    step("banner bans the attacker at the NIC");
    thread::sleep(Duration::from_millis(500));
    show(
        &d.log_text()
            .lines()
            .filter(|l| l.contains("[sshd]"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    show(&d.cli_ok(&["list"]));

    step("The attacker is tarpitted at the NIC: its TCP hangs, the rest is dropped");
    verdict(!lab.ping(host), "ping: dropped", "ping: still answered");
    verdict(
        lab.tcp_connects(host, 22),
        "tcp/22: the handshake succeeds (the NIC answers with a 5-byte window)...",
        "tcp/22: no handshake",
    );
    verdict(
        !lab.ssh_banner(host),
        "...but no SSH banner ever comes: sshd never sees the connection",
        "ssh: the server still greets the attacker",
    );
    show(
        &d.cli_ok(&["stats"])
            .lines()
            .filter(|l| l.contains("dropped") || l.contains("tarpitted") || l.contains("backend"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    say(&format!(
        "the pinned map, as bpftool shows it ({}):",
        d.bpffs_dir.join(banner_common::map_name::BANS_V4).display()
    ));
    show(&sh(
        "bpftool",
        &[
            "map",
            "dump",
            "pinned",
            &d.bpffs_dir
                .join(banner_common::map_name::BANS_V4)
                .to_string_lossy(),
        ],
    ));

    step("The operator lifts the ban");
    show(&d.cli_ok(&["unban", &lab.peer_v4().to_string()]));
    verdict(
        lab.ping(host),
        "ping: answered again",
        "ping: still dropped",
    );
    verdict(
        lab.ssh_banner(host),
        "ssh: the server greets again",
        "ssh: still held",
    );

    step("Cleaning up");
    drop(d);
    drop(sshd);
    drop(lab);
    say("namespace, veth pair, pinned maps, sshd and banner are gone");
}
