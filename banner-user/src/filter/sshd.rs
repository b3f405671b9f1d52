//! The built-in `sshd` filter: what OpenSSH 9.x logs when authentication fails.
//!
//! Every pattern is anchored at both ends (`^...$`) and takes the address from a place the
//! client cannot write into: either the address comes before any client-controlled text (a
//! user name, a version string), or everything after the address is fixed text written by
//! sshd itself, so with a greedy user field the only address that can match is the real one.
//! A user named `x from 198.18.9.9 port 22 ssh2` therefore bans its sender, never 198.18.9.9.
//!
//! Each pattern is an *attempt* (one failed try: counts every time) or a *marker* (says the
//! session failed: counts once per sshd session, and the next attempt of that session pairs
//! with it instead of counting twice). So one bot session "Invalid user -> Failed password ->
//! Connection closed" is one failure, not three. A session is the sshd pid where the log
//! gives one (syslog, journald), else the client's port (`sshd -E` files carry no pid).

use super::FailureKind::{self, Attempt, Marker};

/// Byte-oriented matching: `.` takes any byte, so a user name that is not valid UTF-8 still
/// matches (and its line is not lost); classes are ASCII, which also keeps the automata small.
const BYTES: &str = "(?-u)";

/// sshd's level prefixes that may precede a message.
const LVL: &str = r"(?:error: |fatal: )?";
/// `ssh2`, optionally followed by the key algorithm and fingerprint sshd prints.
const SSH2_KEY: &str = r"(?: ssh2)?(?:: [A-Za-z0-9@._-]+ SHA256:[A-Za-z0-9+/=]+)?";

/// Program names whose syslog lines the filter reads.
pub const PROGRAMS: &[&str] = &["sshd", "sshd-session"];

pub fn normal() -> Vec<(String, FailureKind)> {
    with_bytes_mode(vec![
        (
            format!(r"^{LVL}Failed (?:password|publickey|keyboard-interactive/pam|keyboard-interactive|hostbased|gssapi-with-mic|none) for (?:invalid user )?<F-USER>.*</F-USER> from <HOST> port <F-PORT>\d+</F-PORT>{SSH2_KEY}$"),
            Attempt,
        ),
        (format!(r"^{LVL}Invalid user <F-USER>.*</F-USER> from <HOST> port <F-PORT>\d+</F-PORT>$"), Marker),
        (
            format!(r"^{LVL}User <F-USER>.+</F-USER> from <HOST> not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups|account is locked|shell does not exist|shell is not executable)$"),
            Marker,
        ),
        (format!(r"^{LVL}ROOT LOGIN REFUSED FROM <HOST>(?: port <F-PORT>\d+</F-PORT>)?$"), Marker),
        (
            format!(r"^{LVL}maximum authentication attempts exceeded for (?:invalid user )?<F-USER>.*</F-USER> from <HOST> port <F-PORT>\d+</F-PORT> ssh2 \[preauth\]$"),
            Marker,
        ),
        (
            format!(r"^{LVL}Disconnecting (?:authenticating|invalid) user <F-USER>.*</F-USER> <HOST> port <F-PORT>\d+</F-PORT>: Too many authentication failures \[preauth\]$"),
            Marker,
        ),
        (
            format!(r"^{LVL}Connection (?:closed|reset) by (?:authenticating|invalid) user <F-USER>.*</F-USER> <HOST> port <F-PORT>\d+</F-PORT> \[preauth\]$"),
            Marker,
        ),
        (
            format!(r"^{LVL}Disconnected from (?:authenticating|invalid) user <F-USER>.*</F-USER> <HOST> port <F-PORT>\d+</F-PORT> \[preauth\]$"),
            Marker,
        ),
        // PAM fields before rhost are fixed-format; the user name comes after the address.
        (
            r"^pam_unix\(sshd:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=<F-USER>.*</F-USER>)?$".to_string(),
            Marker,
        ),
        (
            format!(r"^{LVL}PAM: (?:Authentication failure|User not known to the underlying authentication module) for (?:illegal user |invalid user )?<F-USER>.*</F-USER> from <HOST>$"),
            Marker,
        ),
    ])
}

fn with_bytes_mode(v: Vec<(String, FailureKind)>) -> Vec<(String, FailureKind)> {
    v.into_iter()
        .map(|(p, k)| (format!("{BYTES}{p}"), k))
        .collect()
}

/// Normal, plus what scanners and pre-authentication noise leave behind.
pub fn aggressive() -> Vec<(String, FailureKind)> {
    let mut v = normal();
    v.extend(with_bytes_mode(vec![
        (
            format!(r"^{LVL}Did not receive identification string from <HOST>(?: port <F-PORT>\d+</F-PORT>)?$"),
            Attempt,
        ),
        (
            format!(r"^{LVL}Connection (?:closed|reset) by <HOST> port <F-PORT>\d+</F-PORT> \[preauth\]$"),
            Attempt,
        ),
        (
            format!(r"^{LVL}Disconnected from <HOST> port <F-PORT>\d+</F-PORT> \[preauth\]$"),
            Attempt,
        ),
        (
            format!(r"^{LVL}Timeout before authentication for <HOST> port <F-PORT>\d+</F-PORT>$"),
            Attempt,
        ),
        // The address comes before anything the client chose.
        (
            format!(r"^{LVL}banner exchange: Connection from <HOST> port <F-PORT>\d+</F-PORT>: .*$"),
            Attempt,
        ),
        (
            format!(r"^{LVL}Unable to negotiate with <HOST> port <F-PORT>\d+</F-PORT>: no matching .*$"),
            Attempt,
        ),
        (
            format!(r"^{LVL}ssh_dispatch_run_fatal: Connection from <HOST> port <F-PORT>\d+</F-PORT>: .*$"),
            Attempt,
        ),
        // The version string is the client's; the address after it is sshd's, at the end.
        (
            format!(r"^{LVL}Bad protocol version identification '.*' from <HOST>(?: port <F-PORT>\d+</F-PORT>)?$"),
            Attempt,
        ),
        (
            format!(r"^{LVL}Protocol major versions differ for <HOST>(?: port <F-PORT>\d+</F-PORT>)?: .*$"),
            Attempt,
        ),
    ]));
    v
}
