//! The engine's matching rules, on small filters written for the test.

use std::collections::BTreeMap;

use super::{definition, Fail2banFilter, HostKind};

const NOW: f64 = 1_124_013_600.0;

fn filter(text: &str, options: &[(&str, &str)]) -> Fail2banFilter {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.conf");
    std::fs::write(&p, text).unwrap();
    let opts: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Fail2banFilter::compile(&definition::load(&p, &opts).unwrap()).unwrap()
}

fn hosts(f: &Fail2banFilter, lines: &[&str]) -> Vec<Option<String>> {
    lines
        .iter()
        .map(|l| {
            f.process(l, None, NOW)
                .into_iter()
                .next()
                .map(|h| h.host.to_string())
        })
        .collect()
}

const CONNECTION_FILTER: &str = r#"
[Definition]
prefregex = ^\s*\S+ svc\[<F-MLFID>\d+</F-MLFID>\]: <F-CONTENT>.+</F-CONTENT>$
failregex = ^<F-NOFAIL>pam failure</F-NOFAIL> rhost=<HOST>$
            ^Failed password for <F-USER>\S+</F-USER> from <HOST>$
            ^<F-MLFFORGET><F-MLFGAINED>Accepted</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>$
            ^<F-MLFFORGET>Disconnected</F-MLFFORGET>$
            ^too many tries$
"#;

#[test]
fn a_nofail_line_counts_only_when_no_success_follows() {
    let f = filter(CONNECTION_FILTER, &[]);
    // Connection 1: a PAM failure then a successful login: nothing.
    // Connection 2: a PAM failure then a disconnect without success... the PAM line alone
    // is no failure; a later "too many tries" names no host but belongs to the connection.
    let got = hosts(
        &f,
        &[
            "Aug 14 11:00:00 h svc[1]: pam failure rhost=192.0.2.1",
            "Aug 14 11:00:01 h svc[1]: Accepted for root from 192.0.2.1",
            "Aug 14 11:00:02 h svc[2]: pam failure rhost=192.0.2.2",
            "Aug 14 11:00:03 h svc[2]: too many tries",
            "Aug 14 11:00:04 h svc[3]: Failed password for a from 192.0.2.3",
            "Aug 14 11:00:05 h svc[4]: Failed password for a from 192.0.2.4",
            "Aug 14 11:00:06 h svc[4]: Accepted for a from 192.0.2.4",
        ],
    );
    assert_eq!(
        got,
        [
            None,
            None,
            None,
            Some("192.0.2.2".into()),
            Some("192.0.2.3".into()),
            Some("192.0.2.4".into()),
            None,
        ]
    );
}

#[test]
fn a_line_from_another_program_never_reaches_the_failregex() {
    let f = filter(CONNECTION_FILTER, &[]);
    assert_eq!(
        hosts(
            &f,
            &["Aug 14 11:00:04 h other[3]: Failed password for a from 192.0.2.3"]
        ),
        [None]
    );
}

#[test]
fn the_time_is_cut_out_and_read() {
    let f = filter("[Definition]\nfailregex = ^ bad from <HOST>$\n", &[]);
    let hit = &f.process("2005-08-14 11:00:00 bad from 192.0.2.9", None, NOW)[0];
    assert_eq!(&*hit.host, "192.0.2.9");
    assert_eq!(hit.kind, HostKind::Ip);
    assert!(hit.time().is_some());
    // A journal entry's time is given; the line has none.
    let hit = &f.process(" bad from 192.0.2.9", Some(NOW), NOW)[0];
    assert_eq!(hit.time(), Some(NOW));
    let epoch = std::time::UNIX_EPOCH;
    assert_eq!(
        hit.at(),
        Some(epoch + std::time::Duration::from_secs(NOW as u64))
    );
    // A time before the epoch is none the daemon uses (it takes the arrival instead).
    let hit = &f.process(" bad from 192.0.2.9", Some(-5.0), NOW)[0];
    assert_eq!((hit.time(), hit.at()), (Some(-5.0), None));
}

#[test]
fn multi_line_failures_take_their_lines_from_the_buffer() {
    let f = filter(
        "[Definition]\nfailregex = ^ start (?P<n>\\d+)\\n.* from <HOST>$\nmaxlines = 2\n",
        &[],
    );
    let got = hosts(
        &f,
        &[
            "2005-08-14 11:00:00 start 1",
            "2005-08-14 11:00:01 from 192.0.2.5",
            "2005-08-14 11:00:02 from 192.0.2.6",
        ],
    );
    assert_eq!(got, [None, Some("192.0.2.5".into()), None]);
}

#[test]
fn ignoreregex_vetoes_and_hostnames_and_ids_are_told_apart() {
    let f = filter(
        "[Definition]\nfailregex = ^ bad from <HOST>$\n            ^ session <F-ID>\\S+</F-ID> failed$\nignoreregex = from 192\\.0\\.2\\.66$\n",
        &[],
    );
    assert!(f
        .process("2005-08-14 11:00:00 bad from 192.0.2.66", None, NOW)
        .is_empty());
    let h = &f.process("2005-08-14 11:00:00 bad from host.example", None, NOW)[0];
    assert_eq!((&*h.host, &h.kind), ("host.example", &HostKind::Dns));
    let h = &f.process("2005-08-14 11:00:00 session abc failed", None, NOW)[0];
    assert_eq!((&*h.host, &h.kind), ("abc", &HostKind::Id));
}

#[test]
fn compile_errors_name_file_line_and_pattern() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.conf");
    std::fs::write(
        &p,
        "[Definition]\n\nfailregex = ^ok <HOST>$\n            ^broken (<HOST>$\n",
    )
    .unwrap();
    let e = Fail2banFilter::compile(&definition::load(&p, &BTreeMap::new()).unwrap()).unwrap_err();
    assert!(e.origin.file.ends_with("bad.conf"));
    assert_eq!(e.origin.line, 3);
    assert!(e.message.contains("^broken (<HOST>$"), "{e}");
    std::fs::write(&p, "[Definition]\nfailregex = ^no host here$\n").unwrap();
    let e = Fail2banFilter::compile(&definition::load(&p, &BTreeMap::new()).unwrap()).unwrap_err();
    assert!(e.message.contains("nothing in it says who failed"), "{e}");
}

#[test]
fn connections_are_remembered_up_to_the_limit_the_least_recent_forgotten_first() {
    let f = filter(CONNECTION_FILTER, &[]);
    let pam = |id: usize| {
        let ip = format!("198.18.{}.{}", id / 250, id % 250 + 1);
        f.process(
            &format!("Aug 14 11:00:00 h svc[{id}]: pam failure rhost={ip}"),
            None,
            NOW,
        )
    };
    let tries = |id: usize| {
        f.process(
            &format!("Aug 14 11:00:01 h svc[{id}]: too many tries"),
            None,
            NOW,
        )
        .into_iter()
        .next()
        .map(|h| h.host.to_string())
    };
    // One more connection than the table holds: the first is forgotten, the second not.
    // (A line of a connection nobody knows is remembered too, and takes the oldest's place:
    // the known one is asked first.)
    for id in 0..=super::MLFID_MAX {
        assert!(pam(id).is_empty());
    }
    assert_eq!(tries(1).as_deref(), Some("198.18.0.2"));
    assert_eq!(tries(0), None);
    // A connection named again is the newest: it outlives everything opened before the
    // table filled up again.
    assert!(pam(3).is_empty());
    for id in 20_000..20_000 + super::MLFID_MAX - 1 {
        assert!(pam(id).is_empty());
    }
    assert_eq!(tries(3).as_deref(), Some("198.18.0.4"));
    assert_eq!(tries(4), None);
}

#[test]
fn connections_expire_after_their_time() {
    let f = filter(CONNECTION_FILTER, &[]);
    f.process(
        "Aug 14 11:00:00 h svc[7]: pam failure rhost=198.18.0.7",
        None,
        NOW,
    );
    let later = NOW + super::MLFID_TTL + 1.0;
    let hit = f.process("Aug 14 11:10:01 h svc[7]: too many tries", None, later);
    assert!(hit.is_empty(), "{hit:?}");
}

#[test]
fn a_builtin_builds_its_date_templates_only_for_a_line_that_needs_them() {
    let header = super::Header {
        programs: vec!["sshd".into()],
        ..Default::default()
    };
    let f = Fail2banFilter::builtin(
        "t",
        header,
        None,
        &[(r"^Failed for <HOST>$".to_string(), false)],
        &[],
    )
    .unwrap();
    let built =
        |f: &Fail2banFilter| matches!(f.state.lock().unwrap().dates, super::Dates::Built(_));
    // The usual syslog time is read by hand.
    let hit = f.process(
        "Aug 14 11:00:00 h sshd[1]: Failed for 198.18.0.1",
        None,
        NOW,
    );
    assert_eq!(
        hit.first().map(|h| h.host.to_string()).as_deref(),
        Some("198.18.0.1")
    );
    assert!(!built(&f));
    // A weekday and a year around it, as apache and vsftpd write it: by hand too.
    let hit = f.process(
        "Sun Aug 14 11:00:00 2005 h sshd[1]: Failed for 198.18.0.3",
        None,
        NOW,
    );
    assert_eq!(
        hit.first().map(|h| h.host.to_string()).as_deref(),
        Some("198.18.0.3")
    );
    assert!(!built(&f));
    // The year before the time: fail2ban's templates, built now.
    let hit = f.process(
        "Sun Aug 14 2005 11:00:00 h sshd[1]: Failed for 198.18.0.2",
        None,
        NOW,
    );
    assert!(built(&f));
    assert_eq!(
        hit.first().map(|h| h.host.to_string()).as_deref(),
        Some("198.18.0.2")
    );
    assert!(hit.first().and_then(|h| h.time()).is_some());
}

/// A prefregex's header is matched for its span alone where it names no group, and with
/// its groups where it does: either way the content and the groups are what the whole
/// prefregex gives, for a line whose header the failregex must not see and one it must.
#[test]
fn a_header_without_groups_is_matched_for_its_span_alone() {
    let plain = super::pyre::Re::fail2ban(r"^\S+ (?:auth: )?<F-CONTENT>.+</F-CONTENT>$", false)
        .unwrap()
        .without_content_tail()
        .expect("a header");
    let named =
        super::pyre::Re::fail2ban(r"^<F-MLFID>\S+</F-MLFID> <F-CONTENT>.+</F-CONTENT>$", false)
            .unwrap()
            .without_content_tail()
            .expect("a header");
    let line = "host auth: failure from 198.18.0.1";
    let m = super::head_match(&plain, line).expect("matches");
    assert_eq!((m.start, m.end, m.groups.len()), (0, 11, 0));
    let m = super::head_match(&named, line).expect("matches");
    assert_eq!((m.start, m.end), (0, 5));
    let mlfid = named
        .names
        .iter()
        .find(|(_, n)| n.as_str() == "mlfid")
        .unwrap()
        .0;
    assert_eq!(m.groups.get(mlfid).copied().flatten(), Some((0, 4)));
    assert!(super::head_match(&plain, "nospace").is_none());
    // Through the filter: the failregex sees the content, as before.
    let f = filter(
        "[Definition]\nprefregex = ^\\S+ (?:auth: )?<F-CONTENT>.+</F-CONTENT>$\nfailregex = ^failure from <HOST>$\n",
        &[],
    );
    assert_eq!(
        hosts(
            &f,
            &[
                line,
                "host failure from 198.18.0.2",
                "host auth: auth: failure from 198.18.0.3"
            ]
        ),
        [
            Some("198.18.0.1".to_string()),
            Some("198.18.0.2".to_string()),
            None
        ]
    );
}

/// The daemon's hit carries the user and leaves the other captured fields out (it reads
/// no other); `process`, which test-filter and fail2ban's corpus read, carries them all.
#[test]
fn the_daemons_hit_carries_the_user_and_not_every_field() {
    let f = filter(
        "[Definition]\nfailregex = ^fail <F-USER>\\S+</F-USER> port <F-PORT>\\d+</F-PORT> from <HOST>$\n",
        &[],
    );
    let line = "fail joe port 22 from 198.18.0.1";
    let full = f.process(line, None, NOW).pop().expect("a hit");
    assert_eq!(full.fields.get("user"), Some("joe"));
    assert_eq!(full.fields.get("fport"), Some("22"));
    assert_eq!(full.user.as_deref(), Some("joe"));
    let arrival = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(NOW);
    let lean = f.process_for_ban(line, None, None, arrival).expect("a hit");
    assert_eq!(lean.user.as_deref(), Some("joe"));
    assert_eq!(lean.fields.get("fport"), None);
    assert_eq!(lean.host.to_string(), full.host.to_string());
    // And the next `process` carries every field again.
    let again = f.process(line, None, NOW).pop().expect("a hit");
    assert_eq!(again.fields.get("fport"), Some("22"));
}

/// Failregexes a line cannot match, told by the byte it starts with or a literal it
/// lacks, are passed over: a line is left with those that start as it does and hold their
/// literals (sshd's filter.d file: one or two of 23), searched in order without the set's
/// pass over all of them; the first in order that matches still wins.
#[test]
fn failregexes_a_line_cannot_match_by_its_literals_are_not_searched() {
    let f = filter(
        r#"
[Definition]
failregex = ^[aA]uthentication failure for <F-USER>\S+</F-USER> from <HOST>$
            ^Failed (?P<cond_inv>invalid user )?<F-USER>(?(cond_inv)\S+|[^:]+)</F-USER> from <HOST>(?: port \d+)?$
            ^User <F-USER>\S+</F-USER> from <HOST> not allowed because not listed in AllowUsers$
            ^User <F-USER>\S+</F-USER> from <HOST> not allowed because listed in DenyUsers$
            from <HOST> refused
"#,
        &[],
    );
    let set = f.fail_set.as_ref().expect("not all anchored: a set");
    let cases = [
        (
            "Authentication failure for bob from 198.18.0.1",
            Some(0b00001),
            Some("198.18.0.1"),
        ),
        (
            "Failed invalid user bob from 198.18.0.2 port 22",
            Some(0b00010),
            Some("198.18.0.2"),
        ),
        (
            "Failed invalid user bob from 198.18.0.3 refused",
            Some(0b10010),
            Some("198.18.0.3"),
        ),
        (
            "User bob from 198.18.0.4 not allowed because listed in DenyUsers",
            Some(0b01000),
            Some("198.18.0.4"),
        ),
        (
            "User bob from 198.18.0.5 not allowed because of the moon",
            Some(0),
            None,
        ),
        (
            "xyz from 198.18.0.6 refused",
            Some(0b10000),
            Some("198.18.0.6"),
        ),
        ("xyz from 198.18.0.7 accepted", Some(0), None),
        // Not ASCII: left to the set (under `(?i)` a `k` matches the Kelvin sign too).
        ("Failed b\u{f6}b from 198.18.0.8", None, Some("198.18.0.8")),
        ("", None, None),
    ];
    for (line, open, host) in cases {
        assert_eq!(set.open(line, &f.fails), open, "{line}");
        assert_eq!(hosts(&f, &[line]), [host.map(str::to_string)], "{line}");
    }
    let kelvin = filter(
        "[Definition]\nfailregex = (?i)^ks <HOST>$\n            from <HOST> refused\n",
        &[],
    );
    assert_eq!(
        hosts(&kelvin, &["KS 198.18.0.8"]),
        [Some("198.18.0.8".to_string())]
    );
    let line = "\u{212a}s 198.18.0.9";
    assert_eq!(hosts(&kelvin, &[line]), [Some("198.18.0.9".to_string())]);
}

/// An access log's line is told by its shape (three fields, then the bracketed time);
/// anything else is left to the readers of a leading date, which come first there.
#[test]
fn an_access_line_is_told_by_its_fields_before_its_time() {
    let secs = |line: &str| {
        super::access_time(line).map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
    };
    let at = 1_795_654_923; // 2026-11-26T01:02:03Z
    assert_eq!(
        secs(r#"198.18.0.1 - - [26/Nov/2026:01:02:03 +0000] "GET / HTTP/1.1" 404 5"#),
        Some(at)
    );
    assert_eq!(
        secs(r#"2001:db8::1 - frank [26/Nov/2026:02:02:03 +0100] "GET /""#),
        Some(at)
    );
    for other in [
        // A date first: a syslog header, an error log, a template's form.
        r#"Nov 26 01:02:03 host nginx: 198.18.0.1 - - [26/Nov/2026:01:02:03 +0000] "GET /""#,
        "2026/11/26 01:02:03 [error] 5#0: *7 open() failed",
        r#"20261126 01:02:03 198.18.0.1 - - [26/Nov/2026:01:02:03 +0000] "GET /""#,
        // Not the fields, or not the time.
        r#"198.18.0.1  - - [26/Nov/2026:01:02:03 +0000] "GET /""#,
        r#"198.18.0.1 - [26/Nov/2026:01:02:03 +0000] "GET /""#,
        r#"198.18.0.1 - - - [26/Nov/2026:01:02:03 +0000] "GET /""#,
        r#"198.18.0.1 - - [26/Nov/2026 01:02:03] "GET /""#,
        "[26/Nov/2026:01:02:03 +0000]",
        "",
    ] {
        assert_eq!(secs(other), None, "{other}");
    }
}

/// `alt_user` fills an empty or missing `user` and never replaces one; with other
/// compound names beside it, the first in the pattern's order that has a value wins, as
/// fail2ban merges them; `tuple_id` parts join into the id.
#[test]
fn compound_names_fold_into_their_base() {
    use super::{
        fold_compound_names,
        groups::{Groups, Key, Name},
        Text,
    };
    let fold = |pairs: &[(&str, &str)]| {
        let mut g: Groups = pairs
            .iter()
            .map(|(k, v)| (Name::new(k), Text::from(*v)))
            .collect();
        fold_compound_names(&mut g);
        (
            g.get("user").map(str::to_string),
            g.get("fid").map(str::to_string),
        )
    };
    assert_eq!(Name::new("alt_user"), Name::Known(Key::AltUser));
    assert_eq!(fold(&[("alt_user", "bob")]).0.as_deref(), Some("bob"));
    assert_eq!(
        fold(&[("user", ""), ("alt_user", "bob")]).0.as_deref(),
        Some("bob")
    );
    assert_eq!(
        fold(&[("user", "root"), ("alt_user", "bob")]).0.as_deref(),
        Some("root")
    );
    assert_eq!(fold(&[("alt_user", "")]).0, None);
    assert_eq!(
        fold(&[("alt_user", ""), ("alt_user_2", "eve")])
            .0
            .as_deref(),
        Some("eve")
    );
    assert_eq!(
        fold(&[("alt_user_2", "eve"), ("alt_user", "bob")])
            .0
            .as_deref(),
        Some("eve")
    );
    assert_eq!(
        fold(&[("tuple_id", "a"), ("tuple_id_2", "b")]).1.as_deref(),
        Some("a,b")
    );
}

/// apache's client header read by hand gives the header pattern's own reading (the
/// address its group takes, where the message starts) wherever it gives one: on apache's
/// shapes from fail2ban's corpus and the IPv6 forms, and on 300,000 of them changed at
/// random (bytes replaced, dropped, doubled) from a fixed seed.
#[test]
fn read_apache_client_is_the_patterns_reading() {
    use super::{groups::Key, Header};
    use crate::filter::web::{read_apache_client, APACHE_CLIENT};
    let f = Fail2banFilter::builtin(
        "apache",
        Header::default(),
        Some((APACHE_CLIENT, None)),
        &[("^client ".to_string(), false)],
        &[],
    )
    .unwrap();
    let pattern = f.prefregex.as_ref().unwrap();
    let seeds = [
        "] [error] [client 194.228.20.113] user  not found: /",
        "] [error] [client 2606:2800:220:1:248:1893:25c8:1946] user test-ipv6 not found: /",
        "] [authz_owner:error] [pid 17540:tid 140122922129152] [client [2606:2800:220:1:248:1893:25c8:1946]:51548] AH01637: Authorization of user username to access /x failed",
        "] [access_compat:error] [pid 17512:tid 140123104306944] [client 127.0.0.1:51380] AH01797: client denied by server configuration: /var/www/html/noentry/cant_get_me.html",
        "] [authz_core:error] [pid 10691] [client 192.3.9.178:44271] AH01630: client denied",
        "]  [ssl:error] [pid 6586] [client 91.49.82.139:58028] AH02032: Hostname www.testdom.com provided via SNI",
        "[error] [client 198.18.0.1] File does not exist: /srv/http/site/[client 192.168.0.1] user root not found",
        "[auth_digest:error] [client [::1]] AH01790: user `u' in realm `r' not found",
        "] [error] [client 2001:db8::7] x",
        "] [error] [client [2001:db8::]:80] x",
        "] [error] [client ::ffff:198.18.0.2] x",
        "] [error] [client 198.18.0.2:1] AH1: ",
    ];
    let alphabet = b"[]:. -_AHpidclient0123456789abcdefG\t\x0b\n\xc3\xa9";
    let mut next = crate::addr::tests::xorshift(0x9e37_79b9_7f4a_7c15);
    let (mut read, mut compared) = (0, 0);
    for i in 0..300_000 {
        let seed = seeds[i % seeds.len()];
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..if i < seeds.len() { 0 } else { 1 + next(3) } {
            let at = next(bytes.len());
            match next(3) {
                0 => bytes[at] = alphabet[next(alphabet.len())],
                1 if bytes.len() > 1 => drop(bytes.remove(at)),
                _ => bytes.insert(at, bytes[at]),
            }
        }
        let Ok(line) = String::from_utf8(bytes) else {
            continue;
        };
        compared += 1;
        let Some(r) = read_apache_client(&line) else {
            continue;
        };
        read += 1;
        let (groups, content) = f
            .prefix_groups(pattern, &line)
            .unwrap_or_else(|| panic!("read by hand, refused by the pattern: {line:?}"));
        let key = if r.v6 { Key::Ip6 } else { Key::Ip4 };
        let addr = groups.get(key.as_str());
        assert_eq!(
            (addr, groups.len(), content),
            (
                Some(&line[r.addr.0..r.addr.1]),
                1,
                Some((r.end, line.len()))
            ),
            "{line:?}"
        );
    }
    // Every seed, and most of the changed lines that still read, went the quick way.
    assert!(read > compared / 3, "{read} of {compared}");
}
