//! The table of banner's built-in filters: for each, the programs whose syslog lines it
//! reads, its modes (the first is the default; `normal` is always accepted) and its patterns.
//!
//! Every built-in runs on the `regex` crate (no backtracking, refused at build) and takes the
//! address from where the service writes it, before any client text or followed only by the
//! service's own fixed text, so a client cannot choose the address a line bans.

use super::{f2b, mail, nginx, services, sshd, web};

/// A failregex and whether it is a marker (counts once per connection; see `sshd`).
pub type Pattern = (String, bool);

pub fn attempt(p: impl Into<String>) -> Pattern {
    (p.into(), false)
}

pub fn marker(p: impl Into<String>) -> Pattern {
    (p.into(), true)
}

pub struct Builtin {
    pub name: &'static str,
    /// Syslog program names (`x*`: any starting with `x`); empty: the service's own log file.
    pub programs: &'static [&'static str],
    /// Whether a tag after a host may lack a pid (the service logs so).
    pub pid_optional: bool,
    /// Lines are tied into connections by pid (sshd).
    pub connections: bool,
    /// The service's own log (no syslog header) is read as well as its syslog lines.
    pub optional_header: bool,
    /// A web server's access log: the address first, the time in the first `[...]`.
    pub access_log: bool,
    /// Modes; the first is the default, which `normal` also names.
    pub modes: &'static [&'static str],
    pub patterns: fn(&str) -> Vec<Pattern>,
    /// What the service writes before every message its patterns read (fail2ban's
    /// prefregex without its content): matched once a line, its first way taken, and the
    /// patterns read what follows it.
    pub message_prefix: Option<&'static str>,
    /// The message prefix read by hand where the line has the service's usual shape (the
    /// prefix pattern reads the rest, and a test holds the two to each other).
    pub read_prefix: Option<f2b::PrefixReader>,
    /// Per mode: lines the filter must never count, whatever a failregex says (what a
    /// look-ahead would exclude in fail2ban's pattern).
    pub ignores: fn(&str) -> Vec<String>,
    /// The units journald files the service's lines under (`banner import` writes them for
    /// a systemd-backend jail). Only `_SYSTEMD_UNIT`, which journald sets: `_COMM` is the
    /// process name, which any local user can give a process of their own.
    pub journalmatch: &'static [&'static str],
}

impl Builtin {
    /// The mode's canonical name, or None when the filter has no such mode.
    pub fn mode<'a>(&self, mode: &'a str) -> Option<&'a str> {
        if self.modes.contains(&mode) {
            Some(mode)
        } else if mode == "normal" {
            self.modes.first().copied()
        } else {
            None
        }
    }
}

const fn syslog(
    name: &'static str,
    programs: &'static [&'static str],
    modes: &'static [&'static str],
    patterns: fn(&str) -> Vec<Pattern>,
    journalmatch: &'static [&'static str],
) -> Builtin {
    Builtin {
        name,
        programs,
        pid_optional: false,
        connections: false,
        optional_header: false,
        access_log: false,
        modes,
        patterns,
        message_prefix: None,
        read_prefix: None,
        ignores: no_ignores,
        journalmatch,
    }
}

const fn own_log(
    name: &'static str,
    modes: &'static [&'static str],
    patterns: fn(&str) -> Vec<Pattern>,
) -> Builtin {
    syslog(name, &[], modes, patterns, &[])
}

const NORMAL: &[&str] = &["normal"];

fn no_ignores(_mode: &str) -> Vec<String> {
    Vec::new()
}

/// Every built-in filter, by name.
pub static BUILTINS: &[Builtin] = &[
    Builtin {
        connections: true,
        ..syslog(
            "sshd",
            sshd::PROGRAMS,
            sshd::MODES,
            sshd::patterns,
            &["_SYSTEMD_UNIT=ssh.service", "_SYSTEMD_UNIT=sshd.service"],
        )
    },
    own_log("nginx-http-auth", nginx::HTTP_AUTH_MODES, nginx::http_auth),
    own_log("nginx-limit-req", NORMAL, nginx::limit_req),
    Builtin {
        ignores: mail::postfix_ignores,
        ..syslog(
            "postfix",
            &["postfix*"],
            mail::POSTFIX_MODES,
            mail::postfix,
            &[
                "_SYSTEMD_UNIT=postfix.service",
                "_SYSTEMD_UNIT=postfix@-.service",
            ],
        )
    },
    Builtin {
        pid_optional: true,
        optional_header: true,
        message_prefix: Some(mail::DC_PREFIX),
        ..syslog(
            "dovecot",
            &["dovecot", "dovecot-auth", "auth"],
            mail::DOVECOT_MODES,
            mail::dovecot,
            &["_SYSTEMD_UNIT=dovecot.service"],
        )
    },
    Builtin {
        optional_header: true,
        ..syslog(
            "exim",
            &["exim", "exim4"],
            mail::EXIM_MODES,
            mail::exim,
            &["_SYSTEMD_UNIT=exim4.service", "_SYSTEMD_UNIT=exim.service"],
        )
    },
    Builtin {
        optional_header: true,
        ..syslog(
            "exim-spam",
            &["exim", "exim4"],
            NORMAL,
            mail::exim_spam,
            &["_SYSTEMD_UNIT=exim4.service", "_SYSTEMD_UNIT=exim.service"],
        )
    },
    syslog(
        "sendmail-auth",
        &["sendmail", "sm-mta", "sm-acceptingconnections"],
        NORMAL,
        mail::sendmail_auth,
        &["_SYSTEMD_UNIT=sendmail.service"],
    ),
    Builtin {
        pid_optional: true,
        ..syslog(
            "courier-auth",
            mail::COURIER_PROGRAMS,
            NORMAL,
            mail::courier_auth,
            &[
                "_SYSTEMD_UNIT=courier-imap.service",
                "_SYSTEMD_UNIT=courier-pop.service",
            ],
        )
    },
    Builtin {
        pid_optional: true,
        optional_header: true,
        ..syslog(
            "vsftpd",
            &["vsftpd"],
            NORMAL,
            services::vsftpd,
            &["_SYSTEMD_UNIT=vsftpd.service"],
        )
    },
    Builtin {
        optional_header: true,
        ..syslog(
            "proftpd",
            &["proftpd"],
            NORMAL,
            services::proftpd,
            &["_SYSTEMD_UNIT=proftpd.service"],
        )
    },
    Builtin {
        pid_optional: true,
        ..syslog(
            "pure-ftpd",
            &["pure-ftpd"],
            NORMAL,
            services::pure_ftpd,
            &["_SYSTEMD_UNIT=pure-ftpd.service"],
        )
    },
    Builtin {
        pid_optional: true,
        ..syslog("pam-generic", &["*"], NORMAL, services::pam_generic, &[])
    },
    Builtin {
        pid_optional: true,
        optional_header: true,
        ..syslog(
            "mysqld-auth",
            &["mysqld", "mariadbd"],
            NORMAL,
            services::mysqld_auth,
            &[
                "_SYSTEMD_UNIT=mysql.service",
                "_SYSTEMD_UNIT=mariadb.service",
            ],
        )
    },
    Builtin {
        optional_header: true,
        ..syslog(
            "named-refused",
            &["named", "named-*"],
            NORMAL,
            services::named_refused,
            &["_SYSTEMD_UNIT=named.service", "_SYSTEMD_UNIT=bind9.service"],
        )
    },
    own_log("grafana", NORMAL, services::grafana),
    Builtin {
        pid_optional: true,
        optional_header: true,
        ignores: web::apache_auth_ignores,
        message_prefix: Some(web::APACHE_CLIENT),
        read_prefix: Some(web::read_apache_client),
        ..syslog(
            "apache-auth",
            web::APACHE_PROGRAMS,
            web::APACHE_AUTH_MODES,
            web::apache_auth,
            &[
                "_SYSTEMD_UNIT=apache2.service",
                "_SYSTEMD_UNIT=httpd.service",
            ],
        )
    },
    Builtin {
        access_log: true,
        ..own_log("apache-badbots", NORMAL, web::badbots)
    },
    Builtin {
        access_log: true,
        ..own_log("nginx-botsearch", NORMAL, web::botsearch)
    },
    Builtin {
        access_log: true,
        ..own_log("web-probes", NORMAL, web::probes)
    },
    Builtin {
        optional_header: true,
        pid_optional: true,
        ..syslog(
            "gitea",
            &["gitea"],
            NORMAL,
            services::gitea,
            &["_SYSTEMD_UNIT=gitea.service"],
        )
    },
    syslog(
        "cockpit",
        &["cockpit-session", "cockpit-ws"],
        NORMAL,
        services::cockpit,
        &["_SYSTEMD_UNIT=cockpit.service"],
    ),
    syslog(
        "openvpn",
        &["openvpn", "ovpn-*"],
        NORMAL,
        services::openvpn,
        &[
            "_SYSTEMD_UNIT=openvpn.service",
            "_SYSTEMD_UNIT=openvpn-server@server.service",
        ],
    ),
];

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The names of all built-ins, in the table's order.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}
