//! Port scopes: which transport ports a ban covers. A jail with `ports` bans only those ports
//! of an address (fail2ban's `port = ssh` with its multiport actions); every other ban covers
//! the whole address, which stays the default and the kernel program's fast path.

use std::{fmt, str::FromStr, sync::Arc};

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A transport protocol a scope names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    /// The IP protocol number.
    pub fn number(&self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }
}

/// The ports a ban covers, per protocol: sorted, disjoint, non-adjacent ranges, so two equal
/// scopes compare equal however they were written. Never empty (see [`PortScope::new`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortScope {
    tcp: Vec<PortRange>,
    udp: Vec<PortRange>,
}

/// What a ban covers: None for the whole address, else its ports.
pub type Scope = Option<Arc<PortScope>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("`{0}` is no port, range (1000-2000) or service name")]
    BadPort(String),
    #[error("port range `{0}` runs backwards")]
    Backwards(String),
    #[error("port 0 cannot be banned (`{0}`)")]
    Zero(String),
    #[error("service `{name}` is not in {file} for {protocol}")]
    UnknownService {
        name: String,
        protocol: &'static str,
        file: String,
    },
    #[error("`{0}` is not a protocol (expected tcp, udp or both)")]
    BadProtocol(String),
    #[error("a port scope needs at least one port")]
    Empty,
    #[error("`{0}` is not a port scope (expected e.g. `tcp:22,1000-2000 udp:53`)")]
    BadScope(String),
}

/// Sort and merge ranges that overlap or touch.
fn normalise(mut ranges: Vec<PortRange>) -> Vec<PortRange> {
    ranges.sort_unstable();
    let mut out: Vec<PortRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if u32::from(r.first) <= u32::from(last.last) + 1 => {
                last.last = last.last.max(r.last);
            }
            _ => out.push(r),
        }
    }
    out
}

impl PortScope {
    /// A scope of these ranges; an empty one is refused (it would ban nothing).
    pub fn new(tcp: Vec<PortRange>, udp: Vec<PortRange>) -> Result<Self, ScopeError> {
        if tcp.is_empty() && udp.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(Self {
            tcp: normalise(tcp),
            udp: normalise(udp),
        })
    }

    /// The same ranges for each protocol of `protocols`.
    pub fn of(protocols: &[Protocol], ranges: Vec<PortRange>) -> Result<Self, ScopeError> {
        let pick = |p| {
            if protocols.contains(&p) {
                ranges.clone()
            } else {
                Vec::new()
            }
        };
        Self::new(pick(Protocol::Tcp), pick(Protocol::Udp))
    }

    pub fn ranges(&self, protocol: Protocol) -> &[PortRange] {
        match protocol {
            Protocol::Tcp => &self.tcp,
            Protocol::Udp => &self.udp,
        }
    }

    pub fn contains(&self, protocol: Protocol, port: u16) -> bool {
        self.ranges(protocol)
            .iter()
            .any(|r| r.first <= port && port <= r.last)
    }

    /// Every port of both.
    pub fn union(&self, other: &PortScope) -> PortScope {
        let join =
            |a: &[PortRange], b: &[PortRange]| normalise(a.iter().chain(b).copied().collect());
        PortScope {
            tcp: join(&self.tcp, &other.tcp),
            udp: join(&self.udp, &other.udp),
        }
    }

    /// A jail's `ports` and `protocol` that make this scope (a jail's scope has the same
    /// ranges for each of its protocols).
    pub fn config_form(&self) -> (Vec<String>, &'static str) {
        let protocol = match (self.tcp.is_empty(), self.udp.is_empty()) {
            (false, false) => "both",
            (false, true) => "tcp",
            _ => "udp",
        };
        let ranges = if self.tcp.is_empty() {
            &self.udp
        } else {
            &self.tcp
        };
        (ranges.iter().map(ToString::to_string).collect(), protocol)
    }

    /// One bit per port (bit `p % 64` of word `p / 64`), the layout the kernel program reads.
    pub fn bitmap(&self, protocol: Protocol) -> [u64; 1024] {
        let mut words = [0u64; 1024];
        for r in self.ranges(protocol) {
            for p in r.first..=r.last {
                words[usize::from(p >> 6)] |= 1 << (p & 63);
            }
        }
        words
    }

    /// The scope a bitmap pair describes (None if both are empty).
    pub fn from_bitmaps(tcp: &[u64; 1024], udp: &[u64; 1024]) -> Option<PortScope> {
        let ranges = |words: &[u64; 1024]| {
            let mut out = Vec::new();
            for p in 0..=u16::MAX {
                if words[usize::from(p >> 6)] & (1 << (p & 63)) != 0 {
                    out.push(PortRange { first: p, last: p });
                }
            }
            normalise(out)
        };
        PortScope::new(ranges(tcp), ranges(udp)).ok()
    }
}

/// The union of two ban scopes: the whole address wins.
pub fn union(a: &Scope, b: &Scope) -> Scope {
    match (a, b) {
        (Some(a), Some(b)) if a == b => Some(a.clone()),
        (Some(a), Some(b)) => Some(Arc::new(a.union(b))),
        _ => None,
    }
}

/// `scope` for people: `all ports` or its ranges.
pub fn describe(scope: &Scope) -> String {
    scope
        .as_ref()
        .map_or_else(|| "all ports".to_string(), |s| s.to_string())
}

impl fmt::Display for PortScope {
    /// `tcp:22,1000-2000 udp:53`: the form [`FromStr`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for p in [Protocol::Tcp, Protocol::Udp] {
            let ranges = self.ranges(p);
            if ranges.is_empty() {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{}:", p.as_str())?;
            for (i, r) in ranges.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{r}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for PortScope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mut tcp, mut udp) = (Vec::new(), Vec::new());
        for part in s.split_whitespace() {
            let (proto, ports) = part
                .split_once(':')
                .ok_or_else(|| ScopeError::BadScope(s.to_string()))?;
            let list = match proto {
                "tcp" => &mut tcp,
                "udp" => &mut udp,
                _ => return Err(ScopeError::BadScope(s.to_string())),
            };
            for p in ports.split(',') {
                list.push(numeric_range(p)?.ok_or_else(|| ScopeError::BadPort(p.to_string()))?);
            }
        }
        PortScope::new(tcp, udp)
    }
}

/// `22`, `1000-2000` or fail2ban's `1000:2000`; Ok(None) when it is not numeric at all.
fn numeric_range(s: &str) -> Result<Option<PortRange>, ScopeError> {
    let s = s.trim();
    let (a, b) = match s.split_once(['-', ':']) {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s, s),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(a) || !all_digits(b) {
        return Ok(None);
    }
    let num = |t: &str| {
        t.parse::<u16>()
            .map_err(|_| ScopeError::BadPort(s.to_string()))
    };
    let (first, last) = (num(a)?, num(b)?);
    if first == 0 {
        return Err(ScopeError::Zero(s.to_string()));
    }
    if first > last {
        return Err(ScopeError::Backwards(s.to_string()));
    }
    Ok(Some(PortRange { first, last }))
}

/// Where service names are looked up.
pub const SERVICES: &str = "/etc/services";

/// A port as configured (`22`, `"2222"`, `"1000-2000"`, `"ssh"`) for `protocols`: numbers
/// and ranges as they are, names through `services` (the text of /etc/services).
pub fn parse_ports(
    item: &str,
    protocols: &[Protocol],
    services: &str,
) -> Result<Vec<PortRange>, ScopeError> {
    if let Some(r) = numeric_range(item)? {
        return Ok(vec![r]);
    }
    let name = item.trim();
    let named = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !named {
        return Err(ScopeError::BadPort(item.to_string()));
    }
    let mut out = Vec::new();
    for p in protocols {
        let port = service_port(services, name, *p).ok_or_else(|| ScopeError::UnknownService {
            name: name.to_string(),
            protocol: p.as_str(),
            file: SERVICES.to_string(),
        })?;
        out.push(PortRange {
            first: port,
            last: port,
        });
    }
    Ok(out)
}

/// The port of service `name` (or an alias) for `protocol` in services(5) text.
fn service_port(services: &str, name: &str, protocol: Protocol) -> Option<u16> {
    services.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let official = words.next()?;
        let (port, proto) = words.next()?.split_once('/')?;
        if proto != protocol.as_str() {
            return None;
        }
        let mut names = std::iter::once(official).chain(words);
        names
            .any(|n| n == name)
            .then(|| port.parse().ok())
            .flatten()
    })
}

/// `tcp`, `udp` or `both` (fail2ban's `protocol`).
pub fn parse_protocols(s: &str) -> Result<Vec<Protocol>, ScopeError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "tcp" => Ok(vec![Protocol::Tcp]),
        "udp" => Ok(vec![Protocol::Udp]),
        "both" | "tcp,udp" | "udp,tcp" => Ok(vec![Protocol::Tcp, Protocol::Udp]),
        _ => Err(ScopeError::BadProtocol(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    const SERVICES_TEXT: &str = "\
# comment
ssh\t\t22/tcp\t\t\t# SSH Remote Login Protocol
domain\t\t53/tcp
domain\t\t53/udp
https\t\t443/tcp
submissions\t465/tcp\t\tssmtp smtps
";

    #[test]
    fn ranges_merge_and_sort_so_equal_scopes_compare_equal() {
        let a = PortScope::new(vec![range(25, 25), range(22, 22), range(23, 24)], vec![]).unwrap();
        let b: PortScope = "tcp:22-25".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "tcp:22-25");
        let c: PortScope = "tcp:80,443 udp:53".parse().unwrap();
        assert_eq!(c.to_string(), "tcp:80,443 udp:53");
        assert_eq!(c.to_string().parse::<PortScope>().unwrap(), c);
        assert!(c.contains(Protocol::Tcp, 443));
        assert!(!c.contains(Protocol::Udp, 443));
        assert!(c.contains(Protocol::Udp, 53));
        assert!(!c.contains(Protocol::Tcp, 53));
    }

    #[test]
    fn ports_parse_as_numbers_ranges_and_service_names() {
        let tcp = [Protocol::Tcp];
        assert_eq!(parse_ports("22", &tcp, ""), Ok(vec![range(22, 22)]));
        assert_eq!(
            parse_ports("1000-2000", &tcp, ""),
            Ok(vec![range(1000, 2000)])
        );
        assert_eq!(
            parse_ports("1000:2000", &tcp, ""),
            Ok(vec![range(1000, 2000)])
        );
        assert_eq!(
            parse_ports("ssh", &tcp, SERVICES_TEXT),
            Ok(vec![range(22, 22)])
        );
        assert_eq!(
            parse_ports("smtps", &tcp, SERVICES_TEXT),
            Ok(vec![range(465, 465)])
        );
        let both = [Protocol::Tcp, Protocol::Udp];
        assert_eq!(
            parse_ports("domain", &both, SERVICES_TEXT),
            Ok(vec![range(53, 53), range(53, 53)])
        );
        assert!(matches!(
            parse_ports("ssh", &[Protocol::Udp], SERVICES_TEXT),
            Err(ScopeError::UnknownService { .. })
        ));
        assert_eq!(
            parse_ports("0", &tcp, ""),
            Err(ScopeError::Zero("0".into()))
        );
        assert_eq!(
            parse_ports("2000-1000", &tcp, ""),
            Err(ScopeError::Backwards("2000-1000".into()))
        );
        assert!(matches!(
            parse_ports("70000", &tcp, ""),
            Err(ScopeError::BadPort(_))
        ));
        assert!(matches!(
            parse_ports("22;rm", &tcp, ""),
            Err(ScopeError::BadPort(_))
        ));
        assert!(matches!(
            parse_protocols("icmp"),
            Err(ScopeError::BadProtocol(_))
        ));
        assert_eq!(parse_protocols("TCP"), Ok(vec![Protocol::Tcp]));
        assert_eq!(PortScope::new(vec![], vec![]), Err(ScopeError::Empty));
    }

    #[test]
    fn the_whole_address_wins_a_union_and_ports_add_up() {
        let ssh: Scope = Some(Arc::new("tcp:22".parse().unwrap()));
        let web: Scope = Some(Arc::new("tcp:80,443".parse().unwrap()));
        assert_eq!(union(&ssh, &None), None);
        assert_eq!(union(&None, &web), None);
        assert_eq!(union(&ssh, &ssh), ssh);
        let both = union(&ssh, &web).unwrap();
        assert_eq!(both.to_string(), "tcp:22,80,443");
        assert_eq!(describe(&None), "all ports");
    }

    #[test]
    fn the_bitmap_holds_exactly_the_scope_and_reads_back() {
        let s: PortScope = "tcp:1,63-65,65535 udp:53".parse().unwrap();
        let tcp = s.bitmap(Protocol::Tcp);
        let udp = s.bitmap(Protocol::Udp);
        assert_eq!(tcp[0], (1 << 1) | (1 << 63));
        assert_eq!(tcp[1], 0b11);
        assert_eq!(tcp[1023], 1 << 63);
        assert_eq!(tcp.iter().map(|w| w.count_ones()).sum::<u32>(), 5);
        assert_eq!(udp[0], 1 << 53);
        assert_eq!(PortScope::from_bitmaps(&tcp, &udp), Some(s));
        assert_eq!(PortScope::from_bitmaps(&[0; 1024], &[0; 1024]), None);
    }
}
