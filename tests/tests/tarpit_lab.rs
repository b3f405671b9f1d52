//! The tarpit against a real TCP stack: a client in the peer namespace is held at the NIC.
//!
//! The daemon attaches in native mode. veth delivers frames sent back with XDP_TX only to a
//! peer that runs an XDP program itself, so the peer's end gets a pass-everything one (a real
//! NIC transmits XDP_TX frames by itself). One test runs the tarpit in generic mode too.

use std::{net::TcpListener, time::Duration};

use tests::{wait_until, Daemon, Lab, Sshd};

fn tarpit_lab(backend: &str) -> (Lab, Daemon) {
    let lab = Lab::new();
    lab.full_checksums().peer_xdp_pass();
    let d = Daemon::start(&[&lab.host_if], &format!("backend = \"{backend}\""), "");
    assert!(
        d.cli_ok(&["stats"]).contains(if backend == "xdp" {
            "native"
        } else {
            "generic"
        }),
        "{}",
        d.cli_ok(&["stats"])
    );
    (lab, d)
}

fn ban_counts(d: &Daemon, ip: &str) -> (u64, u64) {
    let list = d.cli_json(&["list", "--json"]);
    let b = list
        .as_array()
        .and_then(|a| a.iter().find(|b| b["ip"] == ip))
        .cloned()
        .unwrap_or_default();
    (
        b["tarpitted"].as_u64().unwrap_or(0),
        b["dropped"].as_u64().unwrap_or(0),
    )
}

#[test]
fn a_tarpitted_client_connects_then_hangs_and_the_host_holds_nothing() {
    let (lab, d) = tarpit_lab("xdp");
    let host = lab.host_v4();
    let listener = TcpListener::bind(format!("{host}:0")).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = lab.peer_v4().to_string();
    d.cli_ok(&["ban", &peer, "--blocktype", "tarpit"]);

    // connect() succeeds, also on a port nothing listens on.
    assert!(
        lab.tcp_connects(host, 5555),
        "connect to a closed port must succeed in the tarpit"
    );
    // The SYN/ACK carries window 5.
    let capture = lab.sh(&format!(
        "timeout 5 tcpdump -n -c 1 -i {} 'tcp[13] == 18' 2>/dev/null & sleep 1; nc -z -w 2 {host} 5556; wait",
        lab.peer_if
    ));
    assert!(
        capture.contains("win 5"),
        "SYN/ACK without window 5: {capture}"
    );

    // Data is held at a zero window; nothing ever comes back.
    let out = lab.sh(&format!(
        "(head -c 100 /dev/zero; sleep 4) | timeout 5 nc {host} {port} > /tmp/banner-tarpit-$$ & sleep 2; ss -tin dst {host}; sleep 3; echo received=$(wc -c < /tmp/banner-tarpit-$$); rm -f /tmp/banner-tarpit-$$"
    ));
    let data_conn = out
        .split("ESTAB")
        .skip(1)
        .find(|c| c.contains(&format!("{host}:{port}")))
        .unwrap_or_else(|| panic!("the client should believe it is connected: {out}"));
    // ss prints snd_wnd only when it is not zero; the sender is limited by our window all along.
    assert!(
        !data_conn.contains("snd_wnd:"),
        "the window should be zero: {data_conn}"
    );
    assert!(
        data_conn.contains("rwnd_limited"),
        "the client should be held by the window: {data_conn}"
    );
    assert!(
        data_conn.contains("notsent:100"),
        "the client's data should wait unsent: {data_conn}"
    );
    assert!(
        out.contains("received=0"),
        "the tarpit must never send data: {out}"
    );
    // The host spent nothing: no socket for the client, and the listener never accepted it.
    // (Only this test's connections: ss lists the whole namespace, where an earlier test's
    // sshd may still hold orphaned sockets to a lab peer with the same address.)
    let host_sockets = tests::sh("ss", &["-tan"]);
    let ours = [
        format!(":{port} "),
        ":5555 ".to_string(),
        ":5556 ".to_string(),
    ];
    assert!(
        !host_sockets
            .lines()
            .any(|l| l.contains(&peer) && ours.iter().any(|p| l.contains(p.as_str()))),
        "the host holds a socket for the client:\n{host_sockets}"
    );
    assert!(
        listener.accept().is_err(),
        "the listening server accepted a tarpitted client"
    );
    let (tarpitted, _) = ban_counts(&d, &peer);
    assert!(tarpitted >= 4, "replies were not counted: {tarpitted}");
}

#[test]
fn fin_rst_and_ping_get_no_answer() {
    let (lab, d) = tarpit_lab("xdp");
    let host = lab.host_v4();
    let peer = lab.peer_v4().to_string();
    d.cli_ok(&["ban", &peer, "--blocktype", "tarpit"]);
    let (t0, d0) = ban_counts(&d, &peer);
    assert!(
        !lab.ping(host),
        "ping from a tarpitted client must be dropped"
    );
    let (t1, d1) = ban_counts(&d, &peer);
    assert_eq!(t1, t0, "ping was answered");
    assert!(d1 > d0);
    // A real client cannot even send its FIN: our zero window holds it back. So the FIN is
    // sent raw (FIN|ACK, checksummed); the RST comes from a socket aborted with SO_LINGER 0.
    let script = format!(
        "import socket, struct, time\n\
         def csum(b):\n\
         \x20   if len(b) % 2: b += b'\\0'\n\
         \x20   s = sum(struct.unpack('!%dH' % (len(b) // 2), b))\n\
         \x20   while s >> 16: s = (s & 0xffff) + (s >> 16)\n\
         \x20   return ~s & 0xffff\n\
         src, dst = socket.inet_aton('{peer}'), socket.inet_aton('{host}')\n\
         tcp = struct.pack('!HHIIBBHHH', 40001, 7000, 1000, 2000, 5 << 4, 0x11, 1024, 0, 0)\n\
         c = csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)\n\
         tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]\n\
         raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)\n\
         raw.sendto(tcp, ('{host}', 0))\n\
         r = socket.create_connection(('{host}', 7001), timeout=2)\n\
         r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); r.close()\n\
         time.sleep(0.5)\n"
    );
    let out = lab.exec(&["python3", "-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (t2, d2) = ban_counts(&d, &peer);
    // One handshake (SYN/ACK, ACK) is answered; the FIN and the RST are not.
    assert_eq!(
        t2 - t1,
        2,
        "tarpitted {t1} -> {t2}: only the handshake is answered"
    );
    assert_eq!(d2 - d1, 2, "dropped {d1} -> {d2}: the FIN and the RST");
}

#[test]
fn ssh_from_a_tarpitted_client_hangs_without_a_banner() {
    let lab = Lab::new();
    lab.full_checksums().peer_xdp_pass();
    let sshd = Sshd::start(lab.host_v4());
    let d = Daemon::start(&[&lab.host_if], "", "");
    let host = lab.host_v4();
    let banner = || lab.sh(&format!("timeout 4 nc -w 3 {host} 22 < /dev/null"));
    assert!(
        banner().starts_with("SSH-2.0"),
        "sshd should greet a clean client"
    );
    d.cli_ok(&["ban", &lab.peer_v4().to_string(), "--blocktype", "tarpit"]);
    let start = std::time::Instant::now();
    let got = banner();
    assert!(
        got.is_empty(),
        "a tarpitted client got a server banner: {got:?}"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "the connection did not hang"
    );
    assert!(!sshd
        .log_text()
        .contains(&format!("Connection from {}", lab.peer_v4())));
    d.cli_ok(&["unban", &lab.peer_v4().to_string()]);
    assert!(wait_until(Duration::from_secs(5), || banner().starts_with("SSH-2.0")));
}

#[test]
fn the_tarpit_also_answers_in_generic_mode() {
    let (lab, d) = tarpit_lab("xdp-generic");
    let peer = lab.peer_v4().to_string();
    d.cli_ok(&["ban", &peer, "--blocktype", "tarpit"]);
    assert!(lab.tcp_connects(lab.host_v4(), 5555));
    assert!(ban_counts(&d, &peer).0 >= 2, "no tarpit replies counted");
}
