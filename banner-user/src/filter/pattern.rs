//! fail2ban-style pattern tags, translated to Rust `regex` syntax.
//!
//! `<HOST>` (and its aliases `<ADDR>`, `<IP4>`, `<IP6>`) becomes a named group matching an IP
//! address (IPv4, IPv6, `::ffff:a.b.c.d`), or also a hostname when `usedns` allows it.
//! `<F-NAME>...</F-NAME>` becomes the named group `f_name`. Anything else is plain regex.

/// Name of the capture group holding the address.
pub const HOST_GROUP: &str = "host";

/// IPv4 dotted quad, or anything IPv6-shaped (must contain a colon; may end in a dotted quad).
/// The text it captures is then parsed strictly, so the shape only needs to be generous; plain
/// `+` and `*` (no counted repetitions) keep the automaton small, which keeps capturing fast.
const IP_PATTERN: &str = r"(?:\d+(?:\.\d+){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:]+(?:\.\d+){0,3})";
const HOSTNAME_PATTERN: &str = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("has no <HOST> (or <ADDR>): nothing in it says which address failed")]
    NoHost,
    #[error("uses <HOST> more than once")]
    TwoHosts,
    #[error("`<F-{0}>` is never closed with `</F-{0}>`")]
    Unclosed(String),
    #[error("`</F-{0}>` closes nothing")]
    UnopenedClose(String),
    #[error("does not compile: {0}")]
    Regex(String),
}

/// Expand tags. `require_host`: failregexes must name the address; prefregex must not.
pub fn expand(pattern: &str, usedns: bool, require_host: bool) -> Result<String, PatternError> {
    let host = if usedns {
        format!("(?P<{HOST_GROUP}>{IP_PATTERN}|{HOSTNAME_PATTERN})")
    } else {
        format!("(?P<{HOST_GROUP}>{IP_PATTERN})")
    };
    let mut out = String::with_capacity(pattern.len() + 64);
    let mut hosts = 0;
    let mut open: Vec<String> = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find('>') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let tag = &tail[1..end];
        match tag {
            "HOST" | "ADDR" | "IP4" | "IP6" => {
                hosts += 1;
                out.push_str(&host);
            }
            t if t.starts_with("F-") && is_field(&t[2..]) => {
                out.push_str(&format!("(?P<f_{}>", t[2..].to_ascii_lowercase()));
                open.push(t[2..].to_string());
            }
            t if t.starts_with("/F-") && is_field(&t[3..]) => {
                let name = &t[3..];
                match open.pop() {
                    Some(o) if o == name => out.push(')'),
                    _ => return Err(PatternError::UnopenedClose(name.to_string())),
                }
            }
            // Not a tag: a literal `<` (or a regex construct such as `(?P<name>`).
            _ => out.push('<'),
        }
        rest = if matches!(tag, "HOST" | "ADDR" | "IP4" | "IP6")
            || (tag.starts_with("F-") && is_field(&tag[2..]))
            || (tag.starts_with("/F-") && is_field(&tag[3..]))
        {
            &tail[end + 1..]
        } else {
            &tail[1..]
        };
    }
    out.push_str(rest);
    if let Some(name) = open.pop() {
        return Err(PatternError::Unclosed(name));
    }
    match (require_host, hosts) {
        (true, 0) => Err(PatternError::NoHost),
        (_, n) if n > 1 => Err(PatternError::TwoHosts),
        _ => Ok(out),
    }
}

fn is_field(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Compile an expanded pattern. Patterns run on the raw bytes of a line, so a line that is
/// not valid UTF-8 is still matched (and never lost).
pub fn compile(
    pattern: &str,
    usedns: bool,
    require_host: bool,
) -> Result<regex::bytes::Regex, PatternError> {
    let expanded = expand(pattern, usedns, require_host)?;
    regex::bytes::Regex::new(&expanded).map_err(|e| PatternError::Regex(first_line(&e.to_string())))
}

pub(crate) fn first_line(s: &str) -> String {
    // regex errors are multi-line drawings; keep the last line, which says what is wrong.
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_becomes_a_named_ip_group() {
        let re = compile(r"^Failed for .* from <HOST>$", false, true).unwrap();
        for (line, host) in [
            ("Failed for x from 198.18.0.1", "198.18.0.1"),
            ("Failed for x from 2001:db8::1", "2001:db8::1"),
            ("Failed for x from ::ffff:198.18.0.1", "::ffff:198.18.0.1"),
        ] {
            let c = re.captures(line.as_bytes()).unwrap();
            assert_eq!(&c[HOST_GROUP], host.as_bytes());
        }
        assert!(!re.is_match(b"Failed for x from attacker.example"));
    }

    #[test]
    fn usedns_lets_hostnames_through() {
        let re = compile(r"^from <HOST>$", true, true).unwrap();
        assert_eq!(
            &re.captures(b"from mail.example.org").unwrap()[HOST_GROUP],
            b"mail.example.org"
        );
    }

    #[test]
    fn field_tags_become_named_groups() {
        let re = compile(r"^user <F-USER>\S+</F-USER> from <ADDR>$", false, true).unwrap();
        let c = re.captures(b"user root from 198.18.0.1").unwrap();
        assert_eq!(&c["f_user"], b"root");
        assert_eq!(&c[HOST_GROUP], b"198.18.0.1");
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            expand("^no address here$", false, true),
            Err(PatternError::NoHost)
        );
        assert_eq!(
            expand("<HOST> <HOST>", false, true),
            Err(PatternError::TwoHosts)
        );
        assert_eq!(
            expand("<F-USER>x <HOST>", false, true),
            Err(PatternError::Unclosed("USER".into()))
        );
        assert!(matches!(
            compile("(<HOST>", false, true),
            Err(PatternError::Regex(_))
        ));
        // Plain `<` and regex named groups pass through.
        assert!(compile(r"^<(?P<pid>\d+)> <HOST>$", false, true).is_ok());
        assert!(expand("^prefix <F-CONTENT>.+</F-CONTENT>$", false, false).is_ok());
    }
}
