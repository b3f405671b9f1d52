//! The configuration reference: every section and key the file takes, what it means and its
//! default. `banner generate` renders it as the banner.toml(5) man page, and a unit test holds
//! it to the parser's own list of keys, so the page cannot drift from what the daemon reads.

use std::fmt::Write as _;

/// One `[section]` of the file.
pub struct Section {
    /// As written in the file: `banner`, `jails.NAME`.
    pub name: &'static str,
    pub about: &'static str,
    pub keys: &'static [Key],
}

/// One key of a section.
pub struct Key {
    pub name: &'static str,
    /// The value's form, as it is written.
    pub value: &'static str,
    /// What it is when absent; empty when it has no default (required, or off).
    pub default: &'static str,
    pub about: &'static str,
}

const fn key(
    name: &'static str,
    value: &'static str,
    default: &'static str,
    about: &'static str,
) -> Key {
    Key {
        name,
        value,
        default,
        about,
    }
}

/// Keys a jail shares with `[defaults]`, where they apply to every jail.
macro_rules! policy_keys {
    () => {
        [
            key("bantime", "DURATION | \"permanent\"", "\"1h\"", "How long a ban lasts."),
            key("findtime", "DURATION", "\"10m\"", "The window in which maxretry failures make a ban."),
            key("maxretry", "INTEGER", "3", "Failures within findtime that make a ban."),
            key("blocktype", "\"tarpit\" | \"drop\"", "\"tarpit\"",
                "tarpit answers a banned address's TCP from the NIC so its connections hang, and drops the rest; drop drops everything. nftables has no tarpit and drops."),
            key("ignoreip", "[ADDRESS | PREFIX, ...]", "[]",
                "Addresses and prefixes never banned, on top of loopback and the host's own addresses."),
            key("bantime_increment", "{ enabled = BOOL, factor = FLOAT, maxtime = DURATION }",
                "{ enabled = false, factor = 2.0, maxtime = \"1w\" }",
                "Repeat bans of one address last bantime times factor to the power of earlier bans, up to maxtime."),
            key("max_tracked", "INTEGER", "1000000",
                "Addresses with failures a jail keeps count of; the least recently failing are forgotten first."),
            key("usedns", "\"yes\" | \"no\"", "\"no\"",
                "Whether a hostname in a log line is resolved (waiting at most 2 s) and banned; with no, hostnames never ban."),
        ]
    };
}

const DEFAULTS_KEYS: [Key; 12] = {
    let [bantime, findtime, maxretry, blocktype, ignoreip, increment, max_tracked, usedns] =
        policy_keys!();
    [
        bantime,
        findtime,
        maxretry,
        blocktype,
        ignoreip,
        key("ignoreself", "BOOL", "true", "Never ban the host's own addresses (followed as they change)."),
        key("ignore_attached_subnets", "BOOL", "true",
            "Never ban the subnets of the interfaces banner does not guard (a gateway's LAN); the guarded interface's own subnet is the outside and can be banned."),
        increment,
        max_tracked,
        usedns,
        key("ipv6_prefix", "INTEGER (1-128)", "64",
            "IPv6 failures count, and ban, per prefix of this length; 128 counts each address."),
        key("filter_dir", "PATH", "\"/etc/fail2ban/filter.d\"",
            "Where filter = \"NAME\" finds fail2ban's NAME.conf when NAME is neither built in nor a [filters.NAME]."),
    ]
};

const JAIL_KEYS: [Key; 20] = {
    let [bantime, findtime, maxretry, blocktype, ignoreip, increment, max_tracked, usedns] =
        policy_keys!();
    [
        key("enabled", "BOOL", "true", "false turns the jail off (also one of the embedded default's)."),
        key("filter", "NAME | PATH[OPTIONS]", "the jail's name",
            "A built-in filter, a [filters.NAME] table, or a fail2ban filter.d file (NAME.conf in filter_dir, or a path), with fail2ban's options in brackets: \"postfix[mode=auth]\"."),
        key("mode", "NAME", "the filter's first mode",
            "The filter's variant, as fail2ban's mode option: sshd has normal, ddos, extra and aggressive."),
        key("logpath", "PATH | [PATH, ...]", "",
            "Log files to follow, globs allowed; each must be a regular file (a FIFO or device is refused). A path that does not exist yet is read once it appears."),
        key("journalmatch", "MATCH | [MATCH, ...]", "",
            "journald matches (FIELD=VALUE, alternatives of one another) whose entries the jail reads."),
        bantime,
        findtime,
        maxretry,
        blocktype,
        ignoreip,
        increment,
        max_tracked,
        usedns,
        key("hosts_deny", "BOOL", "false",
            "Also list the jail's bans in hosts_deny_path (TCP Wrappers), between banner's markers."),
        key("prefer_journal", "BOOL", "true",
            "Read only the journal once it holds the jail's entries, and not its syslog files (anyone can write a line there with logger); false reads both."),
        key("source", "\"syslog\"", "", "The jail also reads what the [syslog] receiver takes."),
        key("hosts", "[NAME | ADDRESS, ...]", "all senders",
            "With source = \"syslog\": only messages from these senders."),
        key("ports", "[PORT | \"FROM-TO\" | SERVICE, ...]", "every port",
            "Ban only these ports (numbers, ranges, names from /etc/services), as fail2ban's multiport actions do."),
        key("protocol", "\"tcp\" | \"udp\" | \"both\"", "\"tcp\"", "With ports: the protocol they are of."),
        key("actions", "[NAME, ...]", "[]", "The [actions.NAME] run on the jail's bans and unbans."),
    ]
};

/// The whole file, in the order the page shows it.
pub const SECTIONS: &[Section] = &[
    Section {
        name: "banner",
        about: "The daemon itself: where it enforces and keeps its state.",
        keys: &[
            key("interfaces", "[NAME, ...]", "the default route's interfaces",
                "Interfaces the XDP program guards."),
            key("backend", "\"auto\" | \"xdp\" | \"xdp-generic\" | \"nftables\" | \"iptables\" | \"none\"", "\"auto\"",
                "Where bans are enforced. auto tries XDP native, XDP generic, nftables, then iptables, and logs why it moved on; none is a dry run that judges and logs but enforces nothing."),
            key("socket", "PATH", "\"/run/banner/banner.sock\"", "The control socket (mode 0600, obeys root only)."),
            key("state_dir", "PATH", "\"/var/lib/banner\"", "Bans and read positions, kept across restarts."),
            key("bpffs_dir", "PATH", "\"/sys/fs/bpf/banner\"",
                "Where the XDP program's link and maps are pinned, so bans outlive the daemon."),
            key("keep_on_exit", "BOOL", "false",
                "true leaves the bans enforced in the kernel when banner stops; each still ends at its deadline."),
            key("hosts_deny_path", "PATH", "\"/etc/hosts.deny\"", "The file jails with hosts_deny = true write."),
            key("max_exact_bans", "INTEGER", "1000000", "Capacity of the XDP maps of single addresses."),
            key("max_prefix_bans", "INTEGER", "65536", "Capacity of the XDP maps of prefixes."),
        ],
    },
    Section {
        name: "defaults",
        about: "What every jail gets where it says nothing itself.",
        keys: &DEFAULTS_KEYS,
    },
    Section {
        name: "jails.NAME",
        about: "A jail: the logs it reads, the filter that finds failures in them, and its ban policy. The embedded default has sshd and recidive (which counts the other jails' bans); a file's jail of the same name layers over it key by key.",
        keys: &JAIL_KEYS,
    },
    Section {
        name: "filters.NAME",
        about: "A filter of your own, in fail2ban's terms. Patterns are regular expressions with fail2ban's tags: <HOST> (the address), <F-USER>...</F-USER>, <F-ID>...</F-ID>.",
        keys: &[
            key("failregex", "[REGEX, ...]", "", "A line matching one of these is a failure of the address its <HOST> holds."),
            key("ignoreregex", "[REGEX, ...]", "[]", "A line matching one of these is never a failure."),
            key("datepattern", "PATTERN", "any common timestamp",
                "Where the line's time is, in fail2ban's forms (strftime, {^LN-BEG}, EPOCH, TAI64N)."),
            key("prefregex", "REGEX", "", "A prefix every failure line has, with <F-CONTENT> marking the part failregex reads."),
        ],
    },
    Section {
        name: "actions.NAME",
        about: "A command or webhook run on the bans and unbans of the jails naming it. Placeholders {ip} {jail} {blocktype} {bantime} {failures} {matches} are replaced inside their own argument; no shell reads the command. Actions run on four workers behind a queue of 1024; none runs in a dry run.",
        keys: &[
            key("on_ban", "[PROGRAM, ARG, ...]", "", "Run on a ban; the program is an absolute path."),
            key("on_unban", "[PROGRAM, ARG, ...]", "", "Run on an unban or expiry."),
            key("url", "URL", "", "POST a JSON object (event, ip, jail, blocktype, bantime, failures, matches) here."),
            key("timeout", "DURATION", "\"30s\"", "An action still running after this is killed."),
        ],
    },
    Section {
        name: "metrics",
        about: "Prometheus metrics (GET /metrics, OpenMetrics or the classic text format).",
        keys: &[key("listen", "ADDRESS:PORT", "off", "Where to serve them, e.g. \"127.0.0.1:9661\"; empty: off.")],
    },
    Section {
        name: "crowdsec",
        about: "CrowdSec's Local API: its decisions are enforced like banner's own bans (pull), and the jails' bans are sent to it as alerts (push).",
        keys: &[
            key("lapi_url", "URL", "", "http:// or https:// address of the Local API."),
            key("api_key", "TEXT", "", "The bouncer key (cscli bouncers add)."),
            key("pull", "BOOL", "true", "Enforce LAPI's decisions."),
            key("update_frequency", "DURATION", "\"10s\"", "How often the decision stream is asked for news."),
            key("blocktype", "\"tarpit\" | \"drop\"", "[defaults] blocktype", "For ban decisions."),
            key("captcha", "\"ignore\" | \"drop\" | \"tarpit\"", "\"ignore\"", "What captcha decisions become (banner shows no captcha)."),
            key("origins", "[ORIGIN, ...]", "[] (all)", "Only decisions of these origins: cscli, crowdsec, CAPI, ..."),
            key("min_prefix_v4", "INTEGER", "8", "Broader IPv4 ranges are refused."),
            key("min_prefix_v6", "INTEGER", "32", "Broader IPv6 ranges are refused."),
            key("push", "BOOL", "false", "Send the jails' bans to LAPI as alerts (needs a machine login)."),
            key("login", "NAME", "", "The machine login for push (cscli machines add)."),
            key("password", "TEXT", "", "Its password."),
            key("credentials_file", "PATH", "", "Or both from CrowdSec's local_api_credentials.yaml."),
            key("ca_cert", "PATH", "Mozilla's roots", "https: the CA that signed LAPI's certificate."),
            key("cert", "PATH", "", "https: a client certificate for LAPI's TLS authentication (with key)."),
            key("key", "PATH", "", "Its private key."),
        ],
    },
    Section {
        name: "syslog",
        about: "A syslog receiver (RFC 3164 and 5424, UDP and TCP) for the jails with source = \"syslog\": the servers of a fleet send their logs to the gateway.",
        keys: &[
            key("listen", "[\"udp://ADDRESS:PORT\" | \"tcp://ADDRESS:PORT\", ...]", "", "Where to receive."),
            key("allowed_senders", "[PREFIX, ...]", "none", "Only these senders are heard: nothing is taken until this is set."),
            key("max_line", "INTEGER (256-1048576)", "8192", "Longer messages are dropped whole, never judged cut."),
            key("rate_limit", "INTEGER", "20000", "Lines a second per sender; more are dropped and counted."),
        ],
    },
];

/// Text as roff reads it: backslashes, hyphens and a leading dot or quote escaped.
fn roff(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    if out.starts_with(['.', '\'']) {
        out.insert_str(0, "\\&");
    }
    out
}

/// The banner.toml(5) man page.
pub fn man_page(version: &str) -> String {
    let mut p = String::new();
    let _ = writeln!(
        p,
        ".TH BANNER.TOML 5 \"\" \"banner {}\" \"File Formats\"",
        roff(version)
    );
    p.push_str(".SH NAME\nbanner.toml \\- configuration of the banner intrusion blocker\n");
    p.push_str(".SH SYNOPSIS\n/etc/banner/banner.toml\n");
    p.push_str(".SH DESCRIPTION\n");
    for para in [
        "banner(8) runs on an embedded default configuration: an sshd jail reading journald and /var/log/auth.log, and a recidive jail, with bantime 1 hour, findtime 10 minutes, maxretry 3 and blocktype tarpit. /etc/banner/banner.toml, or the file given with \\-\\-config, is TOML layered over that default key by key, the way jail.local layers over jail.conf: a file holding only [defaults] ignoreip keeps both jails, and enabled = false turns a jail off.",
        "banner check\\-config FILE reports every mistake as file:line:column, and check\\-config \\-\\-dump prints the effective configuration. The daemon refuses to start on a mistake, and a reload (SIGHUP, banner reload) keeps the running configuration.",
        "A DURATION is a number of seconds or text with a unit: 90s, 10m, 1h, 1d, 1w.",
    ] {
        // Already escaped by hand: these paragraphs name options.
        let _ = writeln!(p, ".PP\n{para}");
    }
    for section in SECTIONS {
        let _ = writeln!(
            p,
            ".SH [{}]",
            roff(&section.name.to_uppercase()).replace("NAME", "\\fINAME\\fR")
        );
        let _ = writeln!(p, ".PP\n{}", roff(section.about));
        for k in section.keys {
            let _ = writeln!(p, ".TP\n\\fB{}\\fR = {}", roff(k.name), roff(k.value));
            let _ = write!(p, "{}", roff(k.about));
            if !k.default.is_empty() {
                let _ = write!(p, " Default: {}.", roff(k.default));
            }
            p.push('\n');
        }
    }
    p.push_str(".SH EXAMPLE\n.nf\n");
    for line in EXAMPLE.lines() {
        let _ = writeln!(p, "{}", roff(line));
    }
    p.push_str(".fi\n.SH FILES\n.TP\n/etc/banner/banner.toml\nThe configuration the daemon reads when no \\-\\-config is given.\n");
    p.push_str(".SH SEE ALSO\n.BR banner (8),\n.BR jail.conf (5)\n");
    p
}

const EXAMPLE: &str = r#"[defaults]
ignoreip = ["192.168.1.0/24"]
bantime_increment = { enabled = true }

[jails.sshd]
ports = ["ssh"]

[jails.nginx]
filter = "nginx-http-auth"
logpath = "/var/log/nginx/error.log"
"#;

/// The configuration file a package installs: the embedded default with every setting
/// commented out (so the file changes nothing until a line is uncommented), then the optional
/// sections, also commented.
pub fn commented_default() -> String {
    let mut out = String::from(
        "## /etc/banner/banner.toml: layered over banner's embedded default, key by key.\n\
         ## Every setting below is commented out, so this file changes nothing as shipped:\n\
         ## uncomment and edit what you want different. `banner check-config` checks the file,\n\
         ## `banner check-config --dump` prints the result, banner.toml(5) has every key.\n\
         \n",
    );
    for line in super::EMBEDDED_DEFAULT.lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else if line.trim_start().starts_with('#') {
            let _ = writeln!(out, "#{line}");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
    out.push_str(OPTIONAL);
    out
}

/// What the default leaves off, as commented examples.
const OPTIONAL: &str = r#"
## A jail of your own, on a fail2ban filter.d file, banning only its ports:
# [jails.nginx]
# filter = "nginx-http-auth"
# logpath = "/var/log/nginx/error.log"
# ports = ["http", "https"]

## Prometheus metrics:
# [metrics]
# listen = "127.0.0.1:9661"

## A command on each ban of the jails naming it (actions = ["notify"]):
# [actions.notify]
# on_ban = ["/usr/local/bin/notify-ban", "{ip}", "{jail}"]
# timeout = "30s"

## CrowdSec's Local API:
# [crowdsec]
# lapi_url = "http://127.0.0.1:8080"
# api_key = "..."

## A syslog receiver for the jails with source = "syslog":
# [syslog]
# listen = ["udp://10.0.0.1:514"]
# allowed_senders = ["10.0.0.0/24"]
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{raw::RawConfig, Config};

    /// The keys serde names when `text` holds one it does not know.
    fn parser_keys(text: &str) -> Vec<String> {
        let err = toml::from_str::<RawConfig>(text).expect_err("an unknown key is refused");
        let message = err.message().to_string();
        let (_, list) = message
            .split_once("expected one of ")
            .or_else(|| message.split_once("expected "))
            .unwrap_or_else(|| panic!("no list of keys in `{message}`"));
        let mut keys: Vec<String> = list
            .split(", ")
            .map(|k| k.trim().trim_matches('`').to_string())
            .collect();
        keys.sort();
        keys
    }

    fn documented(section: &str) -> Vec<String> {
        let s = SECTIONS
            .iter()
            .find(|s| s.name == section)
            .unwrap_or_else(|| panic!("[{section}] is not in the reference"));
        let mut keys: Vec<String> = s.keys.iter().map(|k| k.name.to_string()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_key_the_parser_takes_is_documented_and_no_other() {
        for (section, probe) in [
            ("banner", "[banner]\nzz_unknown = 1\n"),
            ("defaults", "[defaults]\nzz_unknown = 1\n"),
            ("jails.NAME", "[jails.x]\nzz_unknown = 1\n"),
            ("filters.NAME", "[filters.x]\nzz_unknown = 1\n"),
            ("actions.NAME", "[actions.x]\nzz_unknown = 1\n"),
            ("metrics", "[metrics]\nzz_unknown = 1\n"),
            ("crowdsec", "[crowdsec]\nzz_unknown = 1\n"),
            ("syslog", "[syslog]\nzz_unknown = 1\n"),
        ] {
            assert_eq!(parser_keys(probe), documented(section), "[{section}]");
        }
        let mut sections: Vec<String> = SECTIONS
            .iter()
            .map(|s| s.name.trim_end_matches(".NAME").to_string())
            .collect();
        sections.sort();
        assert_eq!(parser_keys("zz_unknown = 1\n"), sections);
        // The inline table's own keys are named in its value form.
        let increment = parser_keys("[defaults]\nbantime_increment = { zz_unknown = 1 }\n");
        let form = DEFAULTS_KEYS
            .iter()
            .find(|k| k.name == "bantime_increment")
            .map(|k| k.value)
            .unwrap_or_default();
        for k in increment {
            assert!(form.contains(&format!("{k} =")), "bantime_increment.{k}");
        }
    }

    #[test]
    fn the_documented_defaults_are_the_embedded_ones() {
        let cfg = Config::embedded().expect("embedded default");
        let dump = cfg.dump();
        // Each default written as a plain value shows as such in the effective config.
        for (section, key) in [
            ("defaults", "bantime"),
            ("defaults", "findtime"),
            ("defaults", "maxretry"),
            ("defaults", "blocktype"),
            ("defaults", "ipv6_prefix"),
            ("defaults", "max_tracked"),
            ("banner", "socket"),
            ("banner", "state_dir"),
            ("banner", "bpffs_dir"),
            ("banner", "max_exact_bans"),
            ("banner", "max_prefix_bans"),
        ] {
            let k = SECTIONS
                .iter()
                .find(|s| s.name == section)
                .and_then(|s| s.keys.iter().find(|k| k.name == key))
                .unwrap_or_else(|| panic!("{section}.{key}"));
            let line = format!("{key} = {}", k.default);
            assert!(dump.lines().any(|l| l == line), "`{line}` not in:\n{dump}");
        }
    }

    #[test]
    fn the_commented_default_changes_nothing_and_uncommented_is_the_default() {
        let text = commented_default();
        let embedded = Config::embedded().expect("embedded").dump();
        assert!(text.lines().all(|l| l.is_empty() || l.starts_with('#')));
        let as_shipped = Config::parse(&text, "banner.toml").expect("parses");
        assert_eq!(
            as_shipped
                .dump()
                .replace("banner.toml", "<embedded default>"),
            embedded
        );
        // Uncommenting the default's settings gives the default again: the file holds it.
        let uncommented: String = text
            .strip_suffix(OPTIONAL)
            .expect("the optional sections come last")
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| !r.starts_with('#'))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(uncommented, text);
        let cfg = Config::parse(&uncommented, "banner.toml").expect("uncommented parses");
        assert_eq!(
            cfg.dump().replace("banner.toml", "<embedded default>"),
            embedded
        );
    }

    #[test]
    fn the_man_page_names_every_section_and_key() {
        let page = man_page("1.2.3");
        assert!(page.starts_with(".TH BANNER.TOML 5"));
        for s in SECTIONS {
            for k in s.keys {
                assert!(
                    page.contains(&format!("\\fB{}\\fR", roff(k.name))),
                    "{} {}",
                    s.name,
                    k.name
                );
            }
        }
        // No line of text may start a roff request by accident.
        assert!(page.lines().filter(|l| l.starts_with('.')).all(|l| [
            ".TH", ".SH", ".PP", ".TP", ".nf", ".fi", ".BR"
        ]
        .iter()
        .any(|r| l.starts_with(r))));
        assert_eq!(roff(".x-y\\"), "\\&.x\\-y\\e");
    }
}
