//! Built-in filters for nginx's error log (`2024/11/26 01:02:03 [error] 123#0: *4 ...`):
//! `nginx-http-auth` (basic-auth failures; with `mode = "aggressive"` also TLS handshakes
//! that only scanners send) and `nginx-limit-req` (requests over a `limit_req` zone).
//!
//! nginx writes the client's address after the message, and the message may hold client
//! text (a user name): each pattern is anchored at the end with nginx's own fields after
//! the address (`server`, `request`, `host`), so the address is the one nginx wrote.

use super::builtin::Pattern;

pub const HTTP_AUTH_MODES: &[&str] = &["auth", "fallback", "aggressive"];

/// `[error] 123#0: *4 `: level, pid#thread, connection.
const HEAD: &str = r"^\s*\[[a-z]+\] \d+#\d+: \*\d+ ";
/// What nginx writes after the client's address for a request.
const REQUEST_TAIL: &str =
    r#", server: \S*, request: "\S+ \S+ HTTP/\d+\.\d+", host: "\S+"(?:, referrer: "\S+")?\s*$"#;

pub fn http_auth(mode: &str) -> Vec<Pattern> {
    let auth = (
        format!(
            r#"{HEAD}user "(?:[^"]*|.*)":? (?:password mismatch|was not found in "[^"]*"), client: <HOST>{REQUEST_TAIL}"#
        ),
        false,
    );
    // A TLS record too long or too short for the handshake: what scanners send.
    let fallback = (
        format!(
            r"{HEAD}SSL_do_handshake\(\) failed \(SSL: error:\S+(?: \S+){{1,3}} too (?:long|short)\)[^,]*, client: <HOST>"
        ),
        false,
    );
    match mode {
        "fallback" => vec![fallback],
        "aggressive" => vec![auth, fallback],
        _ => vec![auth],
    }
}

pub fn limit_req(_mode: &str) -> Vec<Pattern> {
    vec![(
        format!(r#"{HEAD}limiting requests, excess: [\d.]+ by zone "[^"]+", client: <HOST>,"#),
        false,
    )]
}
