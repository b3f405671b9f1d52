use super::*;

fn err(text: &str) -> ConfigError {
    Config::parse(text, "t.toml").unwrap_err().first().clone()
}

#[test]
fn the_cli_reads_the_socket_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("banner.toml");
    // A jail whose filter file does not exist: the full parse fails, the socket is read.
    std::fs::write(
        &file,
        "[banner]\nsocket = \"/tmp/x.sock\"\n[jails.x]\nfilter = \"/nonexistent.conf\"\nlogpath = \"/tmp/x.log\"\n",
    )
    .unwrap();
    assert!(Config::load(&file).is_err());
    assert_eq!(Config::socket_of(&file), Some(PathBuf::from("/tmp/x.sock")));
    std::fs::write(&file, "[banner]\nsocket = \"relative.sock\"\n").unwrap();
    assert_eq!(Config::socket_of(&file), None);
    std::fs::write(&file, "[defaults]\nbantime = \"1h\"\n").unwrap();
    assert_eq!(Config::socket_of(&file), None);
}

#[test]
fn the_embedded_default_has_the_seed_numbers() {
    let c = Config::embedded().unwrap();
    assert_eq!(c.bantime, BanLength::For(Duration::from_secs(3_600)));
    assert_eq!(c.findtime, Duration::from_secs(600));
    assert_eq!(c.maxretry, 3);
    assert_eq!(c.blocktype, BlockType::Tarpit);
    assert!(c.ignoreself);
    assert!(c.ignore_attached_subnets);
    assert_eq!(c.backend, BackendChoice::Auto);
    assert!(
        c.interfaces.is_empty(),
        "default: the default route's interfaces"
    );
}

#[test]
fn an_empty_file_means_the_defaults() {
    let c = Config::parse("", "t.toml").unwrap();
    let d = Config::embedded().unwrap();
    assert_eq!(c.bantime, d.bantime);
    assert_eq!(c.socket, d.socket);
}

#[test]
fn values_are_read() {
    let c = Config::parse(
        r#"
[banner]
interfaces = ["veth0", "eth1"]
backend = "xdp-generic"
socket = "/tmp/b.sock"
keep_on_exit = true
max_exact_bans = 10

[defaults]
bantime = 90
findtime = "1h30m"
maxretry = 5
blocktype = "drop"
ignoreip = ["198.18.0.0/15", "2001:db8::1"]
ignore_attached_subnets = false
"#,
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.interfaces, vec!["veth0", "eth1"]);
    assert_eq!(c.backend, BackendChoice::XdpGeneric);
    assert_eq!(c.socket, PathBuf::from("/tmp/b.sock"));
    assert!(c.keep_on_exit);
    assert_eq!(c.max_exact_bans, 10);
    assert_eq!(c.bantime, BanLength::For(Duration::from_secs(90)));
    assert_eq!(c.findtime, Duration::from_secs(5_400));
    assert_eq!(c.maxretry, 5);
    assert_eq!(c.blocktype, BlockType::Drop);
    assert_eq!(c.ignoreip.len(), 2);
    assert!(!c.ignore_attached_subnets);
}

#[test]
fn errors_point_at_line_and_column() {
    let e = err("[defaults]\nbantime = \"-5m\"\n");
    assert_eq!((e.line, e.column), (2, 11), "{e}");
    assert!(
        e.to_string()
            .starts_with("t.toml:2:11: bantime: negative duration"),
        "{e}"
    );

    let e = err("[defaults]\nignoreip = [\"198.18.0.0/15\", \"not-an-ip\"]\n");
    assert_eq!((e.line, e.column), (2, 30), "{e}");
    assert!(
        e.message.contains("`not-an-ip` is not an IP address"),
        "{e}"
    );

    let e = err("[banner]\nbackend = \"carrier-pigeon\"\n");
    assert_eq!(e.line, 2);
    assert!(
        e.message.contains("unknown backend `carrier-pigeon`"),
        "{e}"
    );

    let e = err("[defaults]\nmaxretry = 0\n");
    assert!(
        e.message.contains("maxretry must be between 1 and 1000"),
        "{e}"
    );

    let e = err("[banner]\nsocket = \"relative.sock\"\n");
    assert!(e.message.contains("absolute path"), "{e}");
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    let e = err("[defaults]\nbantme = \"1h\"\n");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("unknown field `bantme`"), "{e}");

    let e = err("[banner]\nkeep_on_exit = \"yes\"\n");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("bool"), "{e}");

    let e = err("[nonsense]\n");
    assert!(e.message.contains("unknown field `nonsense`"), "{e}");

    let e = err("[defaults\n");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn the_embedded_default_has_the_sshd_and_recidive_jails() {
    let c = Config::embedded().unwrap();
    let sshd = c.jail("sshd").expect("sshd jail");
    assert_eq!(sshd.logpaths, vec!["/var/log/auth.log"]);
    assert_eq!(
        sshd.journalmatch,
        vec!["_SYSTEMD_UNIT=ssh.service", "_SYSTEMD_UNIT=sshd.service"]
    );
    assert_eq!(sshd.policy.maxretry, 3);
    assert_eq!(sshd.policy.findtime, Duration::from_secs(600));
    assert_eq!(
        sshd.policy.bantime,
        BanLength::For(Duration::from_secs(3600))
    );
    assert_eq!(sshd.policy.blocktype, BlockType::Tarpit);
    let r = c.recidive.expect("recidive on");
    assert_eq!(r.bantime, BanLength::For(Duration::from_secs(7 * 86_400)));
    assert_eq!(r.findtime, Duration::from_secs(86_400));
    assert_eq!(r.maxretry, 5);
    assert_eq!(c.max_tracked, 1_000_000);
    assert!(!c.usedns);
}

#[test]
fn jails_inherit_defaults_and_override_them() {
    let c = Config::parse(
        r#"
[defaults]
maxretry = 4
bantime_increment = { enabled = true, factor = 3.0, maxtime = "2d" }

[jails.sshd]
logpath = "/tmp/definitely-not-there/auth.log"
mode = "aggressive"
bantime = "permanent"

[jails.web]
filter = "web-login"
journalmatch = "_SYSTEMD_UNIT=web.service"
maxretry = 10
findtime = "1h"

[jails.off]
enabled = false
filter = "sshd"
logpath = "/tmp/x.log"

[filters.web-login]
failregex = ['^login failed for \S+ from <HOST>$']
"#,
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.jails.len(), 2, "disabled jails are left out");
    assert!(c.recidive.is_some(), "the default's recidive stays on");
    let sshd = c.jail("sshd").unwrap();
    assert_eq!(sshd.policy.maxretry, 4);
    assert_eq!(sshd.policy.bantime, BanLength::Permanent);
    assert!(sshd.policy.increment.enabled);
    assert_eq!(sshd.policy.increment.factor, 3.0);
    assert_eq!(sshd.filter_name, "sshd[mode=aggressive]");
    let web = c.jail("web").unwrap();
    assert_eq!(web.policy.maxretry, 10);
    assert_eq!(web.policy.findtime, Duration::from_secs(3600));
    assert_eq!(web.journalmatch, vec!["_SYSTEMD_UNIT=web.service"]);
    // A recidive jail that names no numbers gets recidive's (1w, 1d, 5), not [defaults].
    let r = Config::parse("[jails.recidive]\n", "t.toml")
        .unwrap()
        .recidive
        .unwrap();
    assert_eq!(
        (r.bantime, r.findtime, r.maxretry),
        (
            BanLength::For(Duration::from_secs(604_800)),
            Duration::from_secs(86_400),
            5
        )
    );
}

#[test]
fn filter_mistakes_point_at_the_pattern() {
    let e = err("[jails.app]\nlogpath = \"/tmp/x.log\"\n[filters.app]\nfailregex = [\n  '^ok <HOST>$',\n  '^no address here$',\n]\n");
    assert_eq!((e.line, e.column), (6, 3), "{e}");
    assert!(e.message.contains("no <HOST>"), "{e}");
    let e =
        err("[jails.app]\nlogpath = \"/tmp/x.log\"\n[filters.app]\nfailregex = ['^(<HOST>$']\n");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("does not compile"), "{e}");
    let e = err("[jails.app]\nlogpath = \"/tmp/x.log\"\nfilter = \"nosuchfilter\"\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("no filter named `nosuchfilter`"), "{e}");
    let e = err("[jails.sshd]\nlogpath = \"/tmp/x.log\"\nmode = \"paranoid\"\n");
    assert!(e.message.contains("no mode `paranoid`"), "{e}");
}

#[test]
fn jails_must_read_something_readable() {
    let e = err("[jails.web]\nfilter = \"sshd\"\n");
    assert!(e.message.contains("reads nothing"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = err(&format!(
        "[jails.sshd]\nlogpath = \"{}\"\n",
        dir.path().display()
    ));
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("is a directory"), "{e}");
    let e = err("[jails.sshd]\nlogpath = \"relative.log\"\n");
    assert!(e.message.contains("must be absolute"), "{e}");
    let e = err("[jails.sshd]\njournalmatch = [\"unit=ssh\"]\n");
    assert!(e.message.contains("FIELD=value"), "{e}");
    let e = err("[jails.recidive]\nlogpath = \"/tmp/x.log\"\n");
    assert!(e.message.contains("takes no logpath"), "{e}");
    // The origins that are not jails keep their names: a jail called so would pass for
    // bans made by hand or adopted from the kernel.
    for name in ["manual", "restored"] {
        let e = err(&format!("[jails.{name}]\nlogpath = \"/tmp/x.log\"\n"));
        assert!(e.message.contains("is reserved"), "{e}");
        assert_eq!(e.line, 1, "{e}");
    }
    let e = err("[jails.sshd]\nlogpath = \"/tmp/x.log\"\nlogpth = 1\n");
    assert!(e.message.contains("unknown field `logpth`"), "{e}");
}

#[test]
fn a_filter_can_live_in_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app.toml");
    std::fs::write(&f, "failregex = ['^denied <HOST>$']\n").unwrap();
    let c = Config::parse(
        &format!(
            "[jails.app]\nlogpath = \"/tmp/x.log\"\nfilter = \"{}\"\n",
            f.display()
        ),
        "t.toml",
    )
    .unwrap();
    assert!(c.jail("app").is_some());
    std::fs::write(&f, "failregex = ['^denied$']\n").unwrap();
    let e = Config::parse(
        &format!(
            "[jails.app]\nlogpath = \"/tmp/x.log\"\nfilter = \"{}\"\n",
            f.display()
        ),
        "t.toml",
    )
    .unwrap_err();
    let e = e.first();
    assert_eq!(
        e.file,
        f.display().to_string(),
        "the error names the filter file"
    );
    assert_eq!(e.line, 1);
}

#[test]
fn a_missing_file_is_named() {
    let e = Config::load(Path::new("/nonexistent/banner.toml")).unwrap_err();
    let e = e.first();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/banner.toml:0:0: cannot read"),
        "{e}"
    );
}

#[test]
fn a_file_layers_over_the_embedded_default() {
    // Only an allowlist: the sshd and recidive jails keep running (issue 9, item A2).
    let c = Config::parse("[defaults]\nignoreip = [\"198.18.0.0/15\"]\n", "t.toml").unwrap();
    assert_eq!(c.ignoreip.len(), 1);
    let sshd = c.jail("sshd").expect("the default's sshd jail stays");
    assert_eq!(sshd.logpaths, vec!["/var/log/auth.log"]);
    assert!(c.recidive.is_some());
    // A jail named in the file takes its keys over the default's, key by key; the
    // file's [defaults] reach the default's jails.
    let c = Config::parse(
        "[defaults]\nmaxretry = 7\n[jails.sshd]\nbantime = \"2h\"\n",
        "t.toml",
    )
    .unwrap();
    let sshd = c.jail("sshd").unwrap();
    assert_eq!(sshd.policy.maxretry, 7);
    assert_eq!(
        sshd.policy.bantime,
        BanLength::For(Duration::from_secs(7200))
    );
    assert_eq!(
        sshd.journalmatch.len(),
        2,
        "the default's journalmatch stays"
    );
    // enabled = false turns a default jail off.
    let c = Config::parse(
        "[jails.sshd]\nenabled = false\n[jails.recidive]\nenabled = false\n",
        "t.toml",
    )
    .unwrap();
    assert!(c.jail("sshd").is_none());
    assert!(c.recidive.is_none());
}

#[test]
fn every_mistake_is_reported_with_its_place() {
    let e = Config::parse(
        "[defaults]\nbantime = \"-1h\"\nmaxretry = 0\nignoreip = [\"nope\", \"10.0.0.0/33\"]\n\
         [jails.app]\nfilter = \"sshd\"\nlogpath = \"relative.log\"\nblocktype = \"reject\"\n",
        "t.toml",
    )
    .unwrap_err();
    let places: Vec<(usize, &str)> = e.0.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(e.0.len(), 6, "{e}");
    assert_eq!(places[0].0, 2, "{e}");
    assert!(places[0].1.contains("bantime"), "{e}");
    assert_eq!(places[1].0, 3, "{e}");
    assert_eq!((places[2].0, places[3].0), (4, 4), "{e}");
    assert!(places[4].1.contains("must be absolute"), "{e}");
    assert_eq!(places[4].0, 7, "{e}");
    assert!(places[5].1.contains("reject"), "{e}");
    // One line per mistake, each file:line:column.
    assert_eq!(e.to_string().lines().count(), 6);
    assert!(e.to_string().lines().all(|l| l.starts_with("t.toml:")));
}

#[test]
fn blocktype_is_drop_or_tarpit_only() {
    let e = err("[defaults]\nblocktype = \"reject\"\n");
    assert_eq!(e.line, 2);
    let e = err("[jails.sshd]\nblocktype = \"REJECT\"\n");
    assert_eq!(e.line, 2, "{e}");
    assert!(Config::parse("[defaults]\nblocktype = \"drop\"\n", "t").is_ok());
}

#[test]
fn a_permanent_default_bantime_reaches_the_jails() {
    let c = Config::parse("[defaults]\nbantime = \"permanent\"\n", "t.toml").unwrap();
    assert_eq!(c.bantime, BanLength::Permanent);
    assert_eq!(c.jail("sshd").unwrap().policy.bantime, BanLength::Permanent);
}

#[test]
fn fail2ban_filter_files_serve_jails_by_path_or_by_name() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    std::fs::write(
        d.path().join("web-auth.conf"),
        "[Definition]\nfailregex = ^<mode> denied <HOST>$\nmode = normal\njournalmatch = _SYSTEMD_UNIT=web.service + _COMM=web\n",
    )
    .unwrap();
    let log = d.path().join("web.log");
    std::fs::write(&log, "").unwrap();
    let text = format!(
        "[defaults]\nfilter_dir = \"{dir}\"\n[jails.web]\nfilter = \"web-auth[mode=strict]\"\nlogpath = \"{}\"\n[jails.byjournal]\nfilter = \"{dir}/web-auth.conf\"\n",
        log.display()
    );
    let c = Config::parse(&text, "t.toml").unwrap();
    let web = c.jail("web").unwrap();
    assert_eq!(web.filter_name, "web-auth[mode=strict]");
    let meta = crate::filter::LineMeta::arrived(std::time::SystemTime::now());
    let mut cache = crate::filter::date::DateCache::default();
    assert!(matches!(
        web.filter
            .examine("strict denied 198.18.0.9", &meta, &mut cache),
        crate::filter::Examined::Failure(_)
    ));
    assert!(matches!(
        web.filter
            .examine("normal denied 198.18.0.9", &meta, &mut cache),
        crate::filter::Examined::NoMatch
    ));
    // No logpath, no journalmatch: the filter's own journalmatch is used.
    let j = c.jail("byjournal").unwrap();
    assert_eq!(j.journalmatch, ["_SYSTEMD_UNIT=web.service", "_COMM=web"]);
}

#[test]
fn a_filter_that_cannot_be_had_is_named_with_where() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    std::fs::write(
        d.path().join("broken.conf"),
        "[Definition]\n\nfailregex = ^bad (<HOST>$\n",
    )
    .unwrap();
    let e = err(&format!(
        "[defaults]\nfilter_dir = \"{dir}\"\n[jails.x]\nfilter = \"broken\"\njournalmatch = \"_COMM=x\"\n"
    ));
    assert!(e.file.ends_with("broken.conf") && e.line == 3, "{e}");
    assert!(e.message.contains("^bad (<HOST>$"), "{e}");
    let e = err(&format!(
        "[defaults]\nfilter_dir = \"{dir}\"\n[jails.x]\nfilter = \"nothere\"\njournalmatch = \"_COMM=x\"\n"
    ));
    assert!(
        e.message.contains("no filter named `nothere`") && e.message.contains("nothere.conf"),
        "{e}"
    );
    let e = err("[jails.x]\nfilter = \"sshd[colour=red]\"\njournalmatch = \"_COMM=x\"\n");
    assert!(e.message.contains("takes only `mode`"), "{e}");
    let e = err("[defaults]\nfilter_dir = \"relative\"\n");
    assert!(e.message.contains("absolute"), "{e}");
}

#[test]
fn a_missing_logpath_warns_and_a_device_is_refused() {
    let c = Config::parse(
        "[jails.sshd]\nlogpath = \"/nonexistent/banner/auth.log\"\n",
        "t.toml",
    )
    .unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("/nonexistent/banner/auth.log does not exist")),
        "{:?}",
        c.warnings
    );
    let e = err("[jails.sshd]\nlogpath = \"/dev/zero\"\n");
    assert!(e.message.contains("not a regular file"), "{e}");
}

#[test]
fn the_dump_is_a_config_that_reads_back_the_same() {
    let c = Config::parse(
        "[defaults]\nmaxretry = 4\nignoreip = [\"198.18.0.0/15\"]\n[jails.sshd]\nbantime = \"permanent\"\n",
        "t.toml",
    )
    .unwrap();
    let text = c.dump();
    assert!(text.contains("[jails.sshd]"), "{text}");
    assert!(text.contains("maxretry = 4"), "{text}");
    let again = Config::parse(&text, "dump.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        again.dump().lines().skip(1).collect::<Vec<_>>(),
        text.lines().skip(1).collect::<Vec<_>>()
    );
    assert_eq!(
        again.jail("sshd").unwrap().policy.bantime,
        BanLength::Permanent
    );
}

#[test]
fn the_dump_carries_inline_filters_and_odd_strings() {
    // Found by the config fuzz target: a jail whose filter is a [filters.NAME] table dumped
    // without that table, so the dump did not read back ("no filter named `app`").
    let text = "[defaults]\nignoreip = [\"198.18.0.0/15\"]\n[jails.sshd]\nbantime = \"permanent\"\n[jails.app]\nlogpath = \"/var/log/app/*.log\"\n[filters.app]\nfailregex = ['^denied \"<HOST>\" \\\\d+$']\nignoreregex = ['^x']\n";
    let c = Config::parse(text, "t.toml").unwrap();
    let dumped = c.dump();
    assert!(dumped.contains("[filters.app]"), "{dumped}");
    let again = Config::parse(&dumped, "dump.toml").unwrap_or_else(|e| panic!("{e}\n{dumped}"));
    assert_eq!(
        again.jail("app").unwrap().inline_filter,
        c.jail("app").unwrap().inline_filter
    );
}

/// The text pass looks at nothing on disk: a configuration naming a log path that is a
/// directory and a filter file that does not exist reads as text without a mistake; the
/// file pass then finds both, each at its key, together with the text's own mistake in
/// another jail (one run reports everything).
#[test]
fn files_are_checked_in_their_own_pass() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[defaults]\nfilter_dir = \"{}\"\n\n[jails.web]\nlogpath = \"{}\"\nfilter = \"nosuch\"\n\n[jails.mail]\nlogpath = \"/var/log/mail.log\"\nfilter = \"postfix\"\nmaxretry = 0\n",
        dir.path().display(),
        dir.path().display()
    );
    let plan = Config::plan(&text, "t.toml").unwrap();
    let text_lines: Vec<usize> = plan.text_mistakes().iter().map(|e| e.line).collect();
    assert_eq!(text_lines, [11], "{:?}", plan.text_mistakes());
    let errors = plan.check_files().unwrap_err().0;
    let found: Vec<(usize, bool)> = errors
        .iter()
        .map(|e| {
            (
                e.line,
                e.message.contains("nosuch") || e.message.contains("directory"),
            )
        })
        .collect();
    assert_eq!(found, [(5, true), (6, true), (11, false)], "{errors:?}");
    // The same text through `parse` (both passes) says the same.
    assert_eq!(Config::parse(&text, "t.toml").unwrap_err().0, errors);
}

#[test]
fn crowdsec_is_read_with_its_defaults_and_its_mistakes_located() {
    let c = Config::parse(
        "[defaults]\nblocktype = \"drop\"\n[crowdsec]\nlapi_url = \"http://127.0.0.1:8080/\"\napi_key = \"abc123\"\n",
        "t.toml",
    )
    .unwrap();
    let cs = c.crowdsec.as_ref().unwrap();
    assert_eq!(
        cs.lapi_url, "http://127.0.0.1:8080",
        "the trailing slash goes"
    );
    assert_eq!(cs.update_frequency, Duration::from_secs(10));
    assert_eq!(cs.ban_blocktype, BlockType::Drop, "the default blocktype");
    assert!(cs.pull && !cs.rules.captcha && cs.rules.origins.is_empty());
    assert_eq!((cs.rules.min_prefix_v4, cs.rules.min_prefix_v6), (8, 32));
    assert!(Config::parse("", "t.toml").unwrap().crowdsec.is_none());
    // The dump hides the key and reads back the same.
    let dump = c.dump();
    assert!(
        dump.contains("api_key = \"<hidden>\"") && !dump.contains("abc123"),
        "{dump}"
    );

    let cases: &[(&str, usize, &str)] = &[
        ("[crowdsec]\napi_key = \"k\"\n", 1, "needs lapi_url"),
        ("[crowdsec]\nlapi_url = \"http://x\"\n", 1, "needs api_key"),
        (
            "[crowdsec]\nlapi_url = \"http://x\"\napi_key = \"k\"\nca_cert = \"/etc/ca.pem\"\n",
            4,
            "https:// lapi_url",
        ),
        (
            "[crowdsec]\nlapi_url = \"https://x\"\napi_key = \"k\"\ncert = \"/etc/c.pem\"\n",
            1,
            "cert and key go together",
        ),
        (
            "[crowdsec]\nlapi_url = \"https://x\"\napi_key = \"k\"\nca_cert = \"ca.pem\"\n",
            4,
            "absolute path",
        ),
        (
            "[crowdsec]\nlapi_url = \"ftp://x\"\napi_key = \"k\"\n",
            2,
            "not an http:// or https:// URL",
        ),
        (
            "[crowdsec]\nlapi_url = \"http:///v1\"\napi_key = \"k\"\n",
            2,
            "with a host",
        ),
        (
            "[crowdsec]\nlapi_url = \"http://x\"\napi_key = \"a b\\r\\nX-Evil: 1\"\n",
            3,
            "printable",
        ),
        (
            "[crowdsec]\nlapi_url = \"http://x\"\napi_key = \"k\"\nupdate_frequency = \"2h\"\n",
            4,
            "between 100ms and 1h",
        ),
        (
            "[crowdsec]\nlapi_url = \"http://x\"\napi_key = \"k\"\ncaptcha = \"show\"\n",
            4,
            "ignore, drop or tarpit",
        ),
        (
            "[crowdsec]\nlapi_url = \"http://x\"\napi_key = \"k\"\nmin_prefix_v4 = 33\n",
            4,
            "between 0 and 32",
        ),
        (
            "[crowdsec]\nlapi_url = \"http://x\"\napi_key = \"k\"\norigins = [\"a,b\"]\n",
            4,
            "origin `a,b`",
        ),
        (
            "[crowdsec]\nlapi_url = \"http://x\"\napi_key = \"k\"\nbouncer = 1\n",
            4,
            "unknown field",
        ),
    ];
    for (text, line, words) in cases {
        let e = err(text);
        assert_eq!(e.line, *line, "{text}: {e}");
        assert!(e.message.contains(words), "{text}: {e}");
    }
}

#[test]
fn syslog_jails_need_a_receiver_and_read_as_files_do() {
    let c = Config::parse(
        "[syslog]\nlisten = [\"udp://127.0.0.1:5514\", \"tcp://[::1]:5514\"]\nallowed_senders = [\"198.18.0.0/24\"]\n[jails.sshd]\nlogpath = []\njournalmatch = []\nsource = \"syslog\"\nhosts = [\"Web1\", \"198.18.0.5\"]\n",
        "t.toml",
    )
    .unwrap();
    let s = c.syslog.as_ref().unwrap();
    assert_eq!(s.listen.len(), 2);
    assert_eq!((s.max_line, s.rate_limit), (8192, 20_000));
    let j = &c.jails[0];
    assert!(j.syslog && j.logpaths.is_empty());
    assert_eq!(j.syslog_hosts, ["web1", "198.18.0.5"]);
    // With no allowed senders the receiver takes nothing, and says so.
    let c = Config::parse("[syslog]\nlisten = [\"udp://127.0.0.1:5514\"]\n", "t.toml").unwrap();
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("allowed_senders is empty")));

    let cases: &[(&str, usize, &str)] = &[
        (
            "[jails.sshd]\nsource = \"syslog\"\n",
            2,
            "needs a [syslog] section",
        ),
        (
            "[jails.sshd]\nsource = \"kafka\"\n",
            2,
            "only source named here",
        ),
        (
            "[jails.sshd]\nhosts = [\"a\"]\n",
            2,
            "source = \"syslog\" only",
        ),
        ("[syslog]\nlisten = [\"514\"]\n", 2, "udp://ADDRESS:PORT"),
        (
            "[syslog]\nlisten = []\nallowed_senders = [\"10.0.0.0/33\"]\n",
            3,
            "allowed_senders",
        ),
        ("[syslog]\nlisten = []\nmax_line = 10\n", 3, "between 256"),
        ("[syslog]\nallowed_senders = []\n", 1, "needs listen"),
        (
            "[syslog]\nlisten = []\n[jails.sshd]\nsource = \"syslog\"\nhosts = [\"a b\"]\n",
            5,
            "no host name",
        ),
    ];
    for (text, line, words) in cases {
        let e = err(text);
        assert_eq!(e.line, *line, "{text}: {e}");
        assert!(e.message.contains(words), "{text}: {e}");
    }
}

#[test]
fn a_jail_may_ban_only_its_ports() {
    let c = Config::parse(
        "[jails.sshd]\nports = [22, \"2222\", \"1000-2000\"]\n[jails.dns]\nfilter = \"sshd\"\nlogpath = \"/var/log/auth.log\"\nports = [53]\nprotocol = \"both\"\n",
        "t.toml",
    )
    .unwrap();
    let sshd = c.jail("sshd").unwrap().policy.scope.clone().unwrap();
    assert_eq!(sshd.to_string(), "tcp:22,1000-2000,2222");
    let dns = c.jail("dns").unwrap().policy.scope.clone().unwrap();
    assert_eq!(dns.to_string(), "tcp:53 udp:53");
    // Without ports, the whole address (the default); recidive too.
    let plain = Config::parse("[jails.sshd]\n", "t.toml").unwrap();
    assert_eq!(plain.jail("sshd").unwrap().policy.scope, None);
    assert_eq!(c.recidive.as_ref().unwrap().scope, None);
    // The dump reads back to the same scopes.
    let again = Config::parse(&c.dump(), "dump.toml").unwrap();
    assert_eq!(again.jail("sshd").unwrap().policy.scope, Some(sshd));
    assert_eq!(again.jail("dns").unwrap().policy.scope, Some(dns));
}

#[test]
fn bad_ports_are_located_and_named() {
    let e = err("[jails.sshd]\nports = [22, \"70000\"]\n");
    assert_eq!(
        (e.line, e.message.contains("`70000` is no port")),
        (2, true),
        "{e}"
    );
    let e = err("[jails.sshd]\nports = [\"2000-1000\"]\n");
    assert!(e.message.contains("runs backwards"), "{e}");
    let e = err("[jails.sshd]\nports = [0]\n");
    assert!(e.message.contains("port 0"), "{e}");
    let e = err("[jails.sshd]\nports = []\n");
    assert!(e.message.contains("at least one port"), "{e}");
    let e = err("[jails.sshd]\nports = [\"no-such-service-here\"]\n");
    assert!(e.message.contains("no-such-service-here"), "{e}");
    let e = err("[jails.sshd]\nports = [22]\nprotocol = \"icmp\"\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("tcp, udp or both"), "{e}");
    let e = err("[jails.sshd]\nprotocol = \"udp\"\n");
    assert!(e.message.contains("with ports only"), "{e}");
    let e = err("[jails.sshd]\nports = [22.5]\n");
    assert!(e.line == 2, "{e}");
}

#[test]
fn actions_are_read_checked_and_dumped() {
    let text = "[actions.mail]\non_ban = [\"/usr/sbin/sendmail\", \"-t\", \"abuse@example.org\", \"{ip} {jail}\"]\ntimeout = \"10s\"\n[actions.hook]\nurl = \"http://127.0.0.1:9/ban\"\n[jails.sshd]\nactions = [\"mail\", \"hook\"]\n";
    let c = Config::parse(text, "t.toml").unwrap();
    assert_eq!(c.jail("sshd").unwrap().policy.actions, ["mail", "hook"]);
    assert_eq!(c.actions["mail"].timeout, Duration::from_secs(10));
    assert_eq!(
        c.actions["hook"].url.as_deref(),
        Some("http://127.0.0.1:9/ban")
    );
    let again = Config::parse(&c.dump(), "dump.toml").unwrap();
    assert_eq!(again.actions, c.actions);
    assert_eq!(again.jail("sshd").unwrap().policy.actions, ["mail", "hook"]);

    for (bad, line, words) in [
        (
            "[jails.sshd]\nactions = [\"nope\"]\n",
            2,
            "no [actions.nope]",
        ),
        ("[actions.a]\non_ban = [\"sendmail\"]\n", 2, "absolute path"),
        (
            "[actions.a]\non_ban = [\"/bin/echo\", \"{host}\"]\n",
            2,
            "unknown placeholder {host}",
        ),
        ("[actions.a]\ntimeout = \"5s\"\n", 1, "does nothing"),
        ("[actions.a]\nurl = \"ftp://x\"\n", 2, "not an http(s)"),
    ] {
        let e = err(bad);
        assert!(e.message.contains(words), "{bad}: {e}");
        assert_eq!(e.line, line, "{bad}: {e}");
    }
}
