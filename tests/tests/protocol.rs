//! The control socket's wire protocol, spoken by hand to a running daemon: a client of
//! another version, and a malformed request, are refused by name and change nothing.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    time::Duration,
};

use tests::{Daemon, Lab};

/// Send one raw line; the daemon's raw reply line.
fn exchange(d: &Daemon, line: &str) -> String {
    let mut s = UnixStream::connect(&d.socket).expect("the control socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    reply
}

fn active_bans(d: &Daemon) -> usize {
    d.cli_json(&["list", "--json"])
        .as_array()
        .expect("a JSON array")
        .len()
}

#[test]
fn a_client_of_another_version_or_a_bad_request_bans_nothing() {
    let lab = Lab::new();
    let d = Daemon::start(&[&lab.host_if], "", "");
    // What a version-1 CLI sent: no `protocol` field.
    let reply = exchange(&d, r#"{"cmd":"ban","targets":["198.18.9.9"]}"#);
    assert!(
        reply.contains("speaks protocol 2") && reply.contains("client protocol 1"),
        "{reply}"
    );
    // The reply itself says its version, so a newer or older CLI can tell.
    assert!(reply.contains(r#""protocol":2"#), "{reply}");
    let reply = exchange(&d, r#"{"protocol":9,"cmd":"list"}"#);
    assert!(reply.contains("client protocol 9"), "{reply}");
    // A malformed target or duration is named; the batch is not applied.
    let reply = exchange(
        &d,
        r#"{"protocol":2,"cmd":"ban","targets":["198.18.9.9","198.18.300.1"]}"#,
    );
    assert!(reply.contains("198.18.300.1"), "{reply}");
    let reply = exchange(
        &d,
        r#"{"protocol":2,"cmd":"ban","targets":["198.18.9.9"],"duration":"-1h"}"#,
    );
    assert!(reply.contains("negative"), "{reply}");
    assert_eq!(active_bans(&d), 0);
    // The same request in this version is obeyed, with a typed outcome.
    let reply = exchange(&d, r#"{"protocol":2,"cmd":"ban","targets":["198.18.9.9"]}"#);
    assert!(reply.contains(r#""outcome":"banned""#), "{reply}");
    assert_eq!(active_bans(&d), 1);
}
