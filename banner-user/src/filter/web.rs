//! Built-in filters for web servers: apache's error log (authentication), access logs
//! (bad bots, scanners looking for admin tools and exploits) and nginx's error log.
//!
//! In an access log the client's address is the line's first field, written by the server
//! before anything the client sent. In error logs the address follows `[client ` (apache)
//! before the message, or `client: ` (nginx) after a path that may hold client text; there
//! every field after the address is read without spaces and the line anchored at its end,
//! so a path cannot carry a second `client: ADDR` that the pattern would take.

use super::{
    builtin::{attempt, Pattern},
    f2b::PrefixRead,
};

pub const APACHE_PROGRAMS: &[&str] = &["httpd", "httpd/*", "apache", "apache2"];
pub const APACHE_AUTH_MODES: &[&str] = &["normal", "aggressive"];

/// `[TIME] [module:level] [pid N[:tid N]] [client ADDR[:PORT]] [AHnnnnn: ]`: the date is read
/// already (own log: what is left is `] `), or a syslog header was. apache writes the
/// client's address there (`%a`), never a name, so no name is read: `<HOST>`'s name
/// branch cost the walk ~700 instructions a line over an IPv6 address and a port.
pub const APACHE_CLIENT: &str = r"^(?:\]\s*)?\[(?:[\w-]*:)?\w+\](?: \[pid \d+(?::\S+ \d+)?\])? \[client \[?<ADDR>\]?(?::\d{1,5})?\] (?:AH\d+: )?";

/// [`APACHE_CLIENT`] read by hand, for the shapes apache writes: `[module:level]` or
/// `[level]`, an optional `[pid N]` or `[pid N:tid N]`, and the client as a dotted quad
/// (with or without a port) or an IPv6 address (bracketed with a port, or bare). It gives
/// the pattern's own reading (the address its `ip4`/`ip6` group takes and where its match
/// ends) or None, and the pattern reads the line: on any byte it does not expect, and on
/// every line that is not ASCII from the client header on (Unicode classes would read
/// more). `read_apache_client_is_the_patterns_reading` holds the two to each other.
pub fn read_apache_client(line: &str) -> Option<PrefixRead> {
    let b = line.as_bytes();
    let mut at = 0;
    let digits = |at: usize| b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    // `(?:\]\s*)?`: the rest of the time apache's own log starts with.
    if b.first() == Some(&b']') {
        at = 1 + b[1..]
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
            .count();
    }
    // `\[(?:[\w-]*:)?\w+\]`
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let module = b.get(at..)?.strip_prefix(b"[")?;
    let name = module.iter().take_while(|c| word(c) || **c == b'-').count();
    let used = match module.get(name) {
        Some(b':') => match module[name + 1..].iter().take_while(|c| word(c)).count() {
            0 => return None,
            level => name + 1 + level,
        },
        // No module: the level alone, one word.
        _ if name == 0 || module[..name].contains(&b'-') => return None,
        _ => name,
    };
    if module.get(used) != Some(&b']') {
        return None;
    }
    at += 1 + used + 1;
    // `(?: \[pid \d+(?::\S+ \d+)?\])?`
    if b[at..].starts_with(b" [pid ") {
        at += 6;
        let n = digits(at);
        if n == 0 {
            return None;
        }
        at += n;
        if b.get(at) == Some(&b':') {
            at += 1;
            let tid = b[at..].iter().take_while(|c| c.is_ascii_graphic()).count();
            if tid == 0 || b.get(at + tid) != Some(&b' ') {
                return None;
            }
            at += tid + 1;
            let n = digits(at);
            if n == 0 {
                return None;
            }
            at += n;
        }
        if b.get(at) != Some(&b']') {
            return None;
        }
        at += 1;
    }
    at += b[at..].starts_with(b" [client ").then_some(9)?;
    if !b[at..].is_ascii() {
        return None;
    }
    let bracketed = b.get(at) == Some(&b'[');
    at += usize::from(bracketed);
    let start = at;
    let (v6, end) = match dotted_quad(&b[at..]) {
        Some(n) => (false, at + n),
        None => {
            let n = b[at..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() || **c == b':')
                .count();
            // Ending in a digit: a trailing `::` is read by the pattern only when it can
            // give a colon back, which this does not follow.
            let text = &line[at..at + n];
            let ends_hex = text.as_bytes().last().is_some_and(u8::is_ascii_hexdigit);
            if !ends_hex || text.parse::<std::net::Ipv6Addr>().is_err() {
                return None;
            }
            (true, at + n)
        }
    };
    at = end;
    if bracketed {
        at += (b.get(at) == Some(&b']')).then_some(1)?;
    }
    // A port after a quad or a bracketed address (a bare IPv6 address's digits are its own).
    if b.get(at) == Some(&b':') && (bracketed || !v6) {
        let n = digits(at + 1);
        if !(1..=5).contains(&n) {
            return None;
        }
        at += 1 + n;
    }
    at += b[at..].starts_with(b"] ").then_some(2)?;
    // `(?:AH\d+: )?`, taken where it leaves a message.
    if b[at..].starts_with(b"AH") {
        let n = digits(at + 2);
        if n > 0 && b[at + 2 + n..].starts_with(b": ") && at + 2 + n + 2 < b.len() {
            at += 2 + n + 2;
        }
    }
    // `(?P<content>.+)$`: at least one byte, and no newline.
    if at >= b.len() || b[at..].contains(&b'\n') {
        return None;
    }
    Some(PrefixRead {
        addr: (start, end),
        v6,
        end: at,
    })
}

/// The length of the dotted quad `b` starts with (four parts of one to three digits),
/// where what follows is no digit or dot.
fn dotted_quad(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    for part in 0..4 {
        let n = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=3).contains(&n) {
            return None;
        }
        at += n;
        if part < 3 {
            at += (b.get(at) == Some(&b'.')).then_some(1)?;
        }
    }
    match b.get(at) {
        Some(c) if c.is_ascii_digit() || *c == b'.' => None,
        _ => Some(at),
    }
}

pub fn apache_auth(_mode: &str) -> Vec<Pattern> {
    let scheme = r"(?:[A-Z]\w+: )?";
    [
        r"client (?:denied by server configuration|used wrong authentication scheme)\b".to_string(),
        r"user (?:<F-USER>[^`].*?</F-USER>)? (?:auth(?:oriz|entic)ation failure|not found|denied by provider)\b".to_string(),
        r"Authorization of user <F-USER>.*?</F-USER> to access .*? failed\b".to_string(),
        format!(r"{scheme}user <F-USER>.*?</F-USER>: password mismatch\b"),
        format!(r"{scheme}user `<F-USER>.*?</F-USER>' in realm `.+' (?:auth(?:oriz|entic)ation failure|not found|denied by provider)\b"),
        format!(r"{scheme}invalid nonce .* received - length is not\b"),
        format!(r"{scheme}realm mismatch - got `.*?' but expected\b"),
        format!(r"{scheme}unknown algorithm `.*?' received\b"),
        r"invalid qop `.*?' received\b".to_string(),
        format!(r"{scheme}invalid nonce .*? received - user attempted time travel\b"),
        r"(?:No h|H)ostname \S+ provided via SNI(?:, but no hostname provided| and hostname \S+ provided| for a name based virtual host)\b".to_string(),
    ]
    .into_iter()
    // Each reads the message after the client header, read once a line as the filter's
    // message prefix (`APACHE_CLIENT`, see builtin.rs).
    .map(|p| attempt(format!("^{p}")))
    .collect()
}

/// mod_evasive's denials count only in `aggressive` mode.
pub fn apache_auth_ignores(mode: &str) -> Vec<String> {
    if mode == "aggressive" {
        Vec::new()
    } else {
        vec![r"^(?:\]\s*)?\[evasive\d*:\S+\]".to_string()]
    }
}

/// `ADDR - USER [TIME] "`: the start of a common/combined access log line.
const ACCESS: &str = r#"^<HOST> - \S+ \[[^\]]+\] ""#;

/// User agents of e-mail harvesters, trackback spammers and vulnerability scanners.
const BAD_BOTS: &[&str] = &[
    r"EmailCollector",
    r"EmailSiphon",
    r"EmailWolf",
    r"WebEMailExtrac",
    r"ExtractorPro",
    r"Atomic_Email_Hunter/\d",
    r"ContactBot/\d",
    r"autoemailspider",
    r"TrackBack/1\.02",
    r"sogou music spider",
    r"(?:Mozilla/\d+\.\d+ )?Jorgee",
    r"Nikto",
    r"sqlmap/\d",
    r"masscan/\d",
    r"zgrab/\d",
    r"Nmap Scripting Engine",
    r"DirBuster",
    r"WPScan",
];

pub fn badbots(_mode: &str) -> Vec<Pattern> {
    // The user agent is the last quoted field.
    vec![attempt(format!(
        r#"{ACCESS}(?:GET|POST|HEAD) [^"]* HTTP/[\d.]+" \d{{3}} \S+ "[^"]*" "(?:[^"]*[ (;])?(?:{})(?:[ );/][^"]*)?"\s*$"#,
        BAD_BOTS.join("|")
    ))]
}

/// Paths that only scanners ask a site without them for: webmail, phpMyAdmin, WordPress'
/// login, CGI.
const SEARCHED: &str = r"/?(?:roundcube|(?:ext)?mail|horde|(?:v-?)?webmail|(?:typo3/|xampp/|admin/)?(?:pma|(?:php)?[Mm]y[Aa]dmin)|wp-(?:login|signup|admin)\.php|cgi-bin|mysqladmin)";

pub fn botsearch(_mode: &str) -> Vec<Pattern> {
    vec![
        attempt(format!(
            r#"{ACCESS}(?:GET|POST|HEAD) /{SEARCHED}[^,\s]* \S+" 404 ."#
        )),
        // nginx's error log: the path before `client:` is client text (decoded, so it may
        // hold spaces and quotes); every field after the address is read without spaces
        // and the line must end there.
        attempt(format!(
            r#"^\s*\[error\] \d+#\d+: \*\d+ (?:\S+ )?"\S+" (?:failed|is not found) \(2: No such file or directory\), client: <HOST>, server: \S*, request: "(?:GET|POST|HEAD) /{SEARCHED}\S* HTTP/[\d.]+", host: "\S+"(?:, referrer: "\S+")?\s*$"#
        )),
    ]
}

/// What vulnerability scanners ask every site for: secrets, repositories, admin setup
/// scripts, router and framework endpoints.
const PROBED: &str = r"/(?:\.env|\.git/|\.aws/|\.svn/|\.DS_Store|wp-config\.php|wp-admin/setup-config\.php|wp-includes/wlwmanifest\.xml|vendor/phpunit/|phpunit/|boaform/|HNAP1|cgi-bin/|actuator/|solr/|owa/auth|autodiscover/autodiscover\.xml|\.well-known/security\.txt\.bak|config\.json|server-status|console/|manager/html|phpinfo\.php|shell\.php|(?:php)?[Mm]y[Aa]dmin/)";

pub fn probes(_mode: &str) -> Vec<Pattern> {
    vec![
        // WordPress' login and XML-RPC brute force: a failed login answers 200 (the form
        // again), a success redirects (302), so only the former counts.
        attempt(format!(
            r#"{ACCESS}POST /(?:\S*/)?(?:wp-login\.php|xmlrpc\.php)(?:\?\S*)? HTTP/[\d.]+" (?:200|401|403|429) "#
        )),
        attempt(format!(
            r#"{ACCESS}(?:GET|POST|HEAD) (?:/\S*)?{PROBED}\S* HTTP/[\d.]+" (?:400|401|403|404|444) "#
        )),
    ]
}
