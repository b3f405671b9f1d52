//! The built-in `sshd` filter: what OpenSSH logs when authentication fails, in fail2ban's
//! four modes, run by the fail2ban engine (its connection rules: a PAM failure followed by
//! a successful login does not count; a line that names no address belongs to the
//! connection of its pid).
//!
//! Each line found is an *attempt* (one failed try: counts every time) or a *marker* (says
//! the connection failed: counts once per connection, and the connection's next attempt
//! pairs with it instead of counting twice), so one bot connection "Invalid user -> Failed
//! password -> Disconnecting: Too many authentication failures" counts once, not three
//! times (fail2ban counts it three times).
//!
//! Every pattern runs on the `regex` crate (no backtracking) and takes the address from a
//! place the client cannot write into: either the address comes before any client text
//! (a user name, a version string), or what follows it is sshd's own fixed text. Where a
//! user name may hold spaces, two patterns split the cases: a name without spaces, after
//! which sshd's text follows the first address; and a name with spaces, after which the
//! line must end with sshd's own suffix, so the address is the last one. A user named
//! `x from 198.18.9.9 port 22 ssh2` therefore bans its sender, never 198.18.9.9.

/// Program names whose syslog lines the filter reads.
pub const PROGRAMS: &[&str] = &["sshd", "sshd-session"];

/// Modes, as fail2ban names them.
pub const MODES: &[&str] = &["normal", "ddos", "extra", "aggressive"];

/// sshd's level prefixes that may precede a message.
const PREF: &str = r"(?:(?:error|fatal): (?:PAM: )?)?";
/// What sshd may write after an address: the port, the local address, `[preauth]`.
const SUFF: &str = r"(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*";
const ON_PORT: &str = r"(?: (?:port \d+|on \S+)){0,2}";
/// sshd's key description after `ssh2: ` (algorithm and fingerprint, or nothing).
const KEY: &str = r"(?: ssh\d*)?(?:: .*)?";
/// `authenticating user NAME` / `invalid user NAME` in close/disconnect lines.
/// The patterns using it are anchored at both ends: the address is the first one after
/// which only sshd's own suffix follows (a name with spaces cannot move it).
const AUTHNG_USER: &str = r"(?: (?:invalid|authenticating) user <F-USER>(?:\S+|.*?)</F-USER>)?";
/// An algorithm kind in "no matching ... found" (a few words).
const ALG: &str = r"(?:\w+ ){0,2}\w+";

use super::builtin::{attempt, marker, Pattern};

fn failed(method: &str, invalid: &str) -> [String; 2] {
    [
        // A user name without spaces: the first address after it is sshd's.
        format!(
            r"^{PREF}Failed {method} for {invalid}<F-USER>\S+</F-USER> from <HOST>{ON_PORT}{KEY}$"
        ),
        // With spaces: the line ends with sshd's suffix, so the address is the last one.
        format!(
            r"^{PREF}Failed {method} for {invalid}<F-USER>.+</F-USER> from <HOST>{ON_PORT}(?: ssh\d*)?$"
        ),
    ]
}

/// The failregexes of a mode, in the order they are tried.
pub fn patterns(mode: &str) -> Vec<Pattern> {
    let ddos = matches!(mode, "ddos" | "aggressive");
    let extra = matches!(mode, "extra" | "aggressive");
    let mut v: Vec<Pattern> = vec![
        marker(format!(
            r"^{PREF}[aA]uthentication (?:failure|error|failed) for <F-USER>.*</F-USER> from <HOST>(?: via \S+)?{SUFF}$"
        )),
        marker(format!(
            r"^{PREF}User not known to the underlying authentication module for (?:illegal user |invalid user )?<F-USER>.*</F-USER> from <HOST>{SUFF}$"
        )),
    ];
    // A failed public key of an invalid user is a failure; of a valid user it is no failure
    // by itself (the client tries its keys one by one).
    v.extend(failed("publickey", "invalid user ").map(attempt));
    v.extend(
        failed(
            "(?:<F-NOFAIL>publickey</F-NOFAIL>|\\S+)",
            "(?:invalid user )?",
        )
        .map(attempt),
    );
    v.extend([
        marker(format!(r"^{PREF}<F-USER>ROOT</F-USER> LOGIN REFUSED FROM <HOST>")),
        marker(format!(r"^{PREF}[iI](?:llegal|nvalid) user <F-USER>\S*</F-USER> from <HOST>{SUFF}$")),
        marker(format!(r"^{PREF}[iI](?:llegal|nvalid) user <F-USER>.*</F-USER> from <HOST>{SUFF}$")),
        marker(format!(r"^{PREF}User <F-USER>\S+</F-USER> from <HOST> not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups){SUFF}$")),
        marker(format!(r"^{PREF}User <F-USER>.+</F-USER> from <HOST> not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups){SUFF}$")),
        marker(format!(r"^{PREF}refused connect from \S+ \(<HOST>\)")),
        marker(format!(r"^{PREF}Received <F-MLFFORGET>disconnect</F-MLFFORGET> from <HOST>{ON_PORT}:\s*3: .*: Auth fail{SUFF}$")),
        marker(format!(r"^{PREF}<F-NOFAIL>pam_[a-z]+\(sshd:auth\):\s+authentication failure;</F-NOFAIL>(?:\s+(?:(?:logname|e?uid|tty)=\S*)){{0,4}}\s+ruser=<F-ALT_USER>\S*</F-ALT_USER>\s+rhost=<HOST>(?:\s+user=<F-USER>\S*</F-USER>)?{SUFF}$")),
        marker(format!(r"^{PREF}maximum authentication attempts exceeded for (?:invalid user )?<F-USER>.*</F-USER> from <HOST>{ON_PORT}(?: ssh\d*)?{SUFF}$")),
        marker(format!(r"^{PREF}User <F-USER>\S+</F-USER> not allowed because account is locked{SUFF}")),
        marker(format!(r"^{PREF}<F-MLFFORGET>Disconnecting</F-MLFFORGET>(?: from)? (?:invalid|authenticating) user <F-USER>\S+</F-USER> <HOST>{ON_PORT}:\s*Change of username or service not allowed:\s*.*\[preauth\]\s*$")),
        marker(format!(r"^{PREF}Disconnecting: Too many authentication failures(?: for (?:invalid user )?<F-USER>\S+</F-USER>)?{SUFF}$")),
        marker(format!(r"^{PREF}Disconnecting (?:invalid|authenticating) user <F-USER>\S+</F-USER> <HOST>{ON_PORT}: Too many authentication failures{SUFF}$")),
        marker(format!(r"^{PREF}<F-NOFAIL>Received <F-MLFFORGET>disconnect</F-MLFFORGET></F-NOFAIL> from <HOST>{ON_PORT}:\s*11:")),
    ]);
    // How a connection ends: a failure of its own only where the mode says so.
    let closed = r"(?:Connection (?:closed|reset)|Disconnected)";
    if ddos {
        v.push(marker(format!(r"^{PREF}<F-MLFFORGET>{closed}</F-MLFFORGET> (?:by|from){AUTHNG_USER} <HOST>{ON_PORT}\s+\[preauth\]\s*$")));
        v.push(marker(format!(r"^{PREF}<F-NOFAIL><F-MLFFORGET>{closed}</F-MLFFORGET></F-NOFAIL> (?:by|from){AUTHNG_USER} <HOST>(?:{ON_PORT}|\s*)$")));
    } else if extra {
        v.push(marker(format!(r"^{PREF}<F-MLFFORGET>Disconnected</F-MLFFORGET>(?: from)? (?:invalid|authenticating) user <F-USER>\S+</F-USER> <HOST>{ON_PORT} \[preauth\]\s*$")));
    } else {
        v.push(marker(format!(r"^{PREF}<F-NOFAIL><F-MLFFORGET>{closed}</F-MLFFORGET></F-NOFAIL> (?:by|from){AUTHNG_USER} <HOST>(?:{SUFF}|\s*)$")));
    }
    v.push(marker(format!(r"^{PREF}<F-MLFFORGET><F-MLFGAINED>Accepted \w+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>(?:\s|$)")));
    if ddos {
        v.extend([
            attempt(format!(r"^{PREF}Did not receive identification string from <HOST>")),
            attempt(format!(r"^{PREF}kex_exchange_identification: (?:read: )?(?:[Cc]lient sent invalid protocol identifier|[Cc]onnection (?:closed by remote host|reset by peer))")),
            attempt(format!(r"^{PREF}Bad protocol version identification '.*' from <HOST>{ON_PORT}$")),
            attempt(format!(r"^{PREF}<F-NOFAIL>SSH: Server;Ltype:</F-NOFAIL> (?:Authname|Version|Kex);Remote: <HOST>-\d+;[A-Z]\w+:")),
            attempt(format!(r"^{PREF}Read from socket failed: Connection <F-MLFFORGET>reset</F-MLFFORGET> by peer")),
            attempt(format!(r"^{PREF}banner exchange: Connection from <HOST>{ON_PORT}: invalid format")),
        ]);
    }
    if extra {
        v.extend([
            attempt(format!(r"^{PREF}Received <F-MLFFORGET>disconnect</F-MLFFORGET> from <HOST>{ON_PORT}:\s*14: No(?: supported)? authentication methods available")),
            attempt(format!(r"^{PREF}Unable to negotiate with <HOST>{ON_PORT}: no matching {ALG} found\.")),
            attempt(format!(r"^{PREF}Unable to negotiate a {ALG}")),
            attempt(format!(r"^{PREF}no matching {ALG} found:")),
        ]);
    }
    // A connection's first line names its address for the lines that do not.
    v.push(marker(format!(
        r"^{PREF}<F-NOFAIL>Connection from</F-NOFAIL> <HOST>"
    )));
    v
}
