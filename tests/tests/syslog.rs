//! The syslog receiver in the lab: RFC 3164 over UDP, RFC 5424 over TCP with octet
//! counting and with newlines, senders outside `allowed_senders` refused, hosts chosen per
//! jail, and the address banned always the message's, never the sender's. Root: XDP.

use std::{
    io::Write as _,
    net::{TcpStream, UdpSocket},
    time::Duration,
};

use tests::{wait_until, Daemon, Lab};

fn free_port() -> u16 {
    // One port for both transports: UDP and TCP ports are separate spaces, so take one
    // that is free in both.
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

fn banned(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .cli_json(&["list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["ip"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// Now, as `date` writes it with `format` (the messages must be inside findtime).
fn now(args: &[&str]) -> String {
    tests::sh("date", args).trim().to_string()
}

fn failed(host: &str, addr: &str, i: u32) -> String {
    format!(
        "{} {host} sshd[{}]: Failed password for root from {addr} port 4{i}000 ssh2",
        now(&["+%b %e %H:%M:%S"]),
        100 + i
    )
}

#[test]
fn hosts_behind_the_gateway_are_judged_by_their_messages_never_their_address() {
    let lab = Lab::new();
    let port = free_port();
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[syslog]\nlisten = [\"udp://127.0.0.1:{port}\", \"tcp://127.0.0.1:{port}\"]\nallowed_senders = [\"127.0.0.1\"]\n\
             [jails.sshd]\nlogpath = []\njournalmatch = []\nsource = \"syslog\"\nhosts = [\"web1\", \"db1\"]\n"
        ),
    );
    assert!(wait_until(Duration::from_secs(10), || d
        .log_text()
        .contains(&format!("listening on tcp://127.0.0.1:{port}"))));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |msg: &str| {
        udp.send_to(msg.as_bytes(), ("127.0.0.1", port)).unwrap();
    };

    // RFC 3164 over UDP from web1: three failures of 198.18.50.7 ban it.
    for i in 1..=3 {
        send(&format!("<38>{}", failed("web1", "198.18.50.7", i)));
    }
    // A host the jail does not take: never counted.
    for i in 1..=3 {
        send(&format!("<38>{}", failed("printer", "198.18.50.8", i)));
    }
    // A line that would ban if a message could hold two.
    for i in 1..=3 {
        let stamp = now(&["+%b %e %H:%M:%S"]);
        send(&format!(
            "<38>{stamp} web1 app: x\n{}",
            failed("web1", "198.18.50.9", i)
        ));
    }
    assert!(
        wait_until(Duration::from_secs(10), || banned(&d) == ["198.18.50.7"]),
        "{:?}\n{}",
        banned(&d),
        d.log_text()
    );

    // RFC 5424 over TCP, octet-counted and newline-framed on one connection, from db1.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let msg = |i: u32| {
        format!(
            "<38>1 {} db1 sshd {} - - Invalid user admin from 198.18.51.{i} port 22",
            now(&["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
            200 + i
        )
    };
    let counted = msg(1);
    write!(tcp, "{} {counted}", counted.len()).unwrap();
    for i in 2..=3 {
        writeln!(tcp, "{}", msg(i).replace("198.18.51.", "198.18.51.1")).unwrap();
    }
    // Three invalid users from one address, each framing.
    let one = "198.18.52.4";
    let framed = |i: u32| {
        format!(
            "<38>1 {} db1 sshd {} - - Invalid user u{i} from {one} port 22",
            now(&["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
            300 + i
        )
    };
    let f1 = framed(1);
    write!(
        tcp,
        "{} {f1}{}\n{} {}",
        f1.len(),
        framed(2),
        framed(3).len(),
        framed(3)
    )
    .unwrap();
    tcp.flush().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || banned(&d)
            .contains(&one.to_string())),
        "{:?}\n{}",
        banned(&d),
        d.log_text()
    );
    assert_eq!(
        banned(&d),
        ["198.18.50.7", one],
        "one address each, the senders' never"
    );

    // A sender outside allowed_senders: refused before it is read.
    let outsider = UdpSocket::bind("127.0.0.2:0").unwrap();
    for i in 1..=3 {
        outsider
            .send_to(
                format!("<38>{}", failed("web1", "198.18.53.1", i)).as_bytes(),
                ("127.0.0.1", port),
            )
            .unwrap();
    }
    let status = || d.cli_ok(&["status"]);
    assert!(
        wait_until(Duration::from_secs(10), || status()
            .contains("3 messages refused")),
        "{}",
        status()
    );
    assert!(status().contains("127.0.0.1: 15 lines"), "{}", status());
    assert!(!banned(&d).contains(&"198.18.53.1".to_string()));
}

#[test]
fn a_flood_from_one_sender_is_held_to_its_rate_and_long_lines_are_dropped() {
    let lab = Lab::new();
    let port = free_port();
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[syslog]\nlisten = [\"udp://127.0.0.1:{port}\"]\nallowed_senders = [\"127.0.0.0/8\"]\nrate_limit = 100\nmax_line = 512\n\
             [jails.sshd]\nlogpath = []\njournalmatch = []\nsource = \"syslog\"\n"
        ),
    );
    assert!(wait_until(Duration::from_secs(10), || d
        .log_text()
        .contains("listening on udp")));
    let udp = UdpSocket::bind("127.0.0.3:0").unwrap();
    // A failure padded past max_line must not count (a cut line is never judged).
    for i in 1..=3 {
        let long = format!("<38>{} {}", failed("h", "198.18.54.1", i), "x".repeat(600));
        udp.send_to(long.as_bytes(), ("127.0.0.1", port)).unwrap();
    }
    for _ in 0..1000 {
        udp.send_to(b"<38>Nov 27 16:00:01 h cron[1]: noise", ("127.0.0.1", port))
            .unwrap();
    }
    let status = || d.cli_ok(&["status"]);
    assert!(
        wait_until(Duration::from_secs(10), || status().contains("127.0.0.3:")),
        "{}",
        status()
    );
    std::thread::sleep(Duration::from_millis(500));
    let line = status()
        .lines()
        .find(|l| l.contains("127.0.0.3:"))
        .unwrap()
        .to_string();
    let number = |words: &str| -> u64 {
        let before = line.split(words).next().unwrap();
        before
            .rsplit([' ', ':'])
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(number(" too long"), 3, "{line}");
    let (lines, limited) = (number(" lines"), number(" over the rate limit"));
    assert_eq!(lines + limited + 3, 1003, "{line}");
    // 100 in reserve, and 100 a second after: the sending takes well under a second.
    assert!(
        lines <= 200 && limited >= 800,
        "held to about 100 a second: {line}"
    );
    assert!(banned(&d).is_empty());
}
