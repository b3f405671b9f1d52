//! Addresses and prefixes as banner bans them.
//!
//! An [`IpPrefix`] is a network address and a prefix length with no host bits set. A full-length
//! prefix is an exact address and prints without `/len`. IPv4-mapped IPv6 (`::ffff:a.b.c.d`)
//! is folded into IPv4 everywhere, so one attacker never holds two bans.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A network: address plus prefix length, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// A number that sorts as the prefix does (IPv4 first, then by address, then length):
    /// compared as one integer, a million sort in a fraction of the time.
    pub fn sort_key(&self) -> (bool, u128, u8) {
        match self.addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), self.len),
            IpAddr::V6(a) => (true, u128::from(a), self.len),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` is not an IP address or prefix")]
    NotAnAddress(String),
    #[error("prefix length `{len}` in `{input}` is not a number")]
    BadLength { input: String, len: String },
    #[error("prefix length /{len} in `{input}` is out of range (0 to {max} for {family})")]
    LengthOutOfRange {
        input: String,
        len: u32,
        max: u8,
        family: &'static str,
    },
    #[error("`{input}` has host bits set; the network is {network}")]
    HostBits { input: String, network: IpPrefix },
}

impl IpPrefix {
    /// A prefix from an address and a length, refusing host bits.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        let input = format!("{addr}/{len}");
        let (addr, len) = canonical(addr, len);
        let max = max_len(&addr);
        if len > max {
            return Err(PrefixError::LengthOutOfRange {
                input,
                len: u32::from(len),
                max,
                family: family(&addr),
            });
        }
        let network = mask(addr, len);
        if network != addr {
            return Err(PrefixError::HostBits {
                input,
                network: Self { addr: network, len },
            });
        }
        Ok(Self { addr, len })
    }

    /// The exact-address prefix (/32 or /128) of `addr`.
    pub fn host(addr: IpAddr) -> Self {
        let addr = fold_mapped(addr);
        Self {
            len: max_len(&addr),
            addr,
        }
    }

    /// The network containing `addr` at `len` bits (host bits cleared).
    pub fn containing(addr: IpAddr, len: u8) -> Self {
        let (addr, len) = canonical(addr, len);
        let len = len.min(max_len(&addr));
        Self {
            addr: mask(addr, len),
            len,
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True for a single address (/32, /128).
    pub fn is_host(&self) -> bool {
        self.len == max_len(&self.addr)
    }

    /// True when `other` lies wholly inside this prefix.
    pub fn contains(&self, other: &IpPrefix) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && other.len >= self.len
            && mask(other.addr, self.len) == self.addr
    }

    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        self.contains(&Self::host(addr))
    }

    /// True when the two prefixes share at least one address.
    pub fn overlaps(&self, other: &IpPrefix) -> bool {
        self.contains(other) || other.contains(self)
    }
}

fn max_len(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn family(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// An address as a log line writes it (`192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`). Forms
/// that parsers disagree on are refused, as fail2ban refuses them: a leading zero
/// (`010.0.0.1`: octal to some, decimal to others) never names an address to ban.
pub fn parse_logged(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    // An IPv6 address has its first colon within five bytes; an IPv4 one has none.
    if bare.bytes().take(5).any(|c| c == b':') {
        if let Some(v6) = hex_v6(bare.as_bytes()) {
            return Some(IpAddr::V6(v6));
        }
    } else if let Some(v4) = dotted_v4(bare.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    bare.parse().ok()
}

/// A dotted quad (`192.0.2.1`) read in one pass, as std reads it: four parts of one to
/// three digits, none above 255, no leading zero. std's parser, generic over both
/// families, cost about 180 instructions on every failure line's address. None for
/// anything else, which std's parser then reads or refuses, so the answer is always std's.
fn dotted_v4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut parts = [0u8; 4];
    let mut i = 0;
    for (n, part) in parts.iter_mut().enumerate() {
        if n > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u32;
        while i - start < 3 && s.get(i).is_some_and(u8::is_ascii_digit) {
            value = value * 10 + u32::from(s[i] - b'0');
            i += 1;
        }
        if i == start || (i - start > 1 && s[start] == b'0') {
            return None;
        }
        *part = u8::try_from(value).ok()?;
    }
    (i == s.len()).then_some(Ipv4Addr::from(parts))
}

/// An IPv6 address written in hex groups only (`2001:db8::1`, what logs nearly always
/// hold), read in one pass: std's parser, generic over every form, cost ~640 instructions
/// on a failure line's address, over a quarter of all that line's reading outside its
/// patterns. None for anything else (an embedded IPv4 address, a malformed text), which
/// std's parser then reads or refuses, so the answer is always std's.
#[inline(never)]
fn hex_v6(s: &[u8]) -> Option<Ipv6Addr> {
    if !(2..=39).contains(&s.len()) {
        return None;
    }
    // Groups before the `::` (or all eight without one), and after it.
    let (mut head, mut tail) = ([0u16; 8], [0u16; 8]);
    let (mut heads, mut tails) = (0, 0);
    let mut gap = false;
    let mut i = 0;
    if s.starts_with(b"::") {
        gap = true;
        i = 2;
    }
    while i < s.len() {
        let start = i;
        let mut group = 0u16;
        while i < s.len() && i - start < 4 {
            let digit = match s[i] {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            group = group << 4 | u16::from(digit);
            i += 1;
        }
        if i == start {
            return None;
        }
        let (groups, count) = if gap {
            (&mut tail, &mut tails)
        } else {
            (&mut head, &mut heads)
        };
        *groups.get_mut(*count)? = group;
        *count += 1;
        match s.get(i..) {
            Some([]) => break,
            // `::`, once, and not where the last group was the eighth.
            Some([b':', b':', ..]) if !gap => {
                gap = true;
                i += 2;
            }
            // A single colon with a group after it.
            Some([b':', next, ..]) if *next != b':' => i += 1,
            _ => return None,
        }
    }
    let mut groups = [0u16; 8];
    match gap {
        // `::` stands for at least one group.
        true if heads + tails <= 7 => {
            groups[..heads].copy_from_slice(&head[..heads]);
            groups[8 - tails..].copy_from_slice(&tail[..tails]);
        }
        false if heads == 8 => groups = head,
        _ => return None,
    }
    Some(Ipv6Addr::from(groups))
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; anything else unchanged.
pub fn fold_mapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

/// Fold a mapped IPv6 prefix of at least /96 into IPv4.
fn canonical(addr: IpAddr, len: u8) -> (IpAddr, u8) {
    match addr {
        IpAddr::V6(v6) if len >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), len - 96),
            None => (addr, len),
        },
        _ => (addr, len),
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        let (addr_part, len_part) = match trimmed.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (trimmed, None),
        };
        // Accept [v6] as some tools print it.
        let addr_part = addr_part
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr_part);
        let addr: IpAddr = addr_part
            .parse()
            .map_err(|_| PrefixError::NotAnAddress(trimmed.to_string()))?;
        let Some(len_part) = len_part else {
            return Ok(Self::host(addr));
        };
        let len: u32 = len_part.parse().map_err(|_| PrefixError::BadLength {
            input: trimmed.to_string(),
            len: len_part.to_string(),
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(PrefixError::LengthOutOfRange {
                input: trimmed.to_string(),
                len,
                max: max as u8,
                family: family(&addr),
            });
        }
        Self::new(addr, len as u8).map_err(|e| match e {
            PrefixError::HostBits { network, .. } => PrefixError::HostBits {
                input: trimmed.to_string(),
                network,
            },
            other => other,
        })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl Serialize for IpPrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Numbers below `n` from a fixed seed: the same texts on every run.
    pub(crate) fn xorshift(mut state: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        }
    }

    /// The dotted-quad reader says what std's parser says: random parts of 0 to 4 digits
    /// (leading zeros, values past 255), 0 to 5 of them, missing and doubled dots, other
    /// bytes. With a colon it may leave the text to std (parse_logged reads it as IPv6).
    #[test]
    fn dotted_quads_read_as_std_reads_them() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d_u64);
        let (mut read, mut refused) = (0, 0);
        for _ in 0..200_000 {
            let mut text = String::new();
            for p in 0..[4, 4, 4, 4, 4, 3, 5, 0][next(8)] {
                if p > 0 {
                    text.push_str([".", ".", ".", ".", ".", ".", "..", ""][next(8)]);
                }
                for d in 0..[1, 1, 2, 2, 3, 3, 3, 4, 0][next(9)] {
                    let digit = match (d, next(10)) {
                        (0, 0) => 0,
                        (0, 1..=6) => 1 + next(2),
                        _ => next(10),
                    };
                    text.push(char::from(b'0' + digit as u8));
                }
            }
            if next(20) == 0 {
                text.insert(next(text.len() + 1), [' ', 'x', ':', '-'][next(4)]);
            }
            let std = text.parse::<Ipv4Addr>().ok();
            let fast = dotted_v4(text.as_bytes());
            assert!(fast.is_none() || fast == std, "{text}");
            if !text.contains(':') {
                assert_eq!(fast, std, "{text}");
                assert_eq!(parse_logged(&text), std.map(IpAddr::V4), "{text}");
            }
            read += usize::from(fast.is_some());
            refused += usize::from(fast.is_none());
        }
        assert!(
            read > 4_000 && refused > 100_000,
            "{read} read, {refused} refused"
        );
    }

    /// The hex-group reader says what std's parser says on every text without a dot
    /// (with one, it leaves the text to std): random groups of 0 to 5 digits in either
    /// case, 0 to 9 of them, single, double and triple colons anywhere, stray bytes.
    #[test]
    fn hex_groups_read_as_std_reads_them() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15_u64);
        let digits = b"0123456789abcdefABCDEF";
        let (mut agreed, mut read) = (0, 0);
        for _ in 0..200_000 {
            let mut text = Vec::new();
            if next(6) == 0 {
                text.extend_from_slice(b"::");
            }
            for g in 0..next(10) {
                if g > 0 {
                    let colons: &[u8] = match next(12) {
                        0 => b"::",
                        1 => b":::",
                        2 => b"",
                        _ => b":",
                    };
                    text.extend_from_slice(colons);
                }
                for _ in 0..[1, 1, 2, 3, 4, 4, 0, 5][next(8)] {
                    text.push(digits[next(digits.len())]);
                }
            }
            match next(10) {
                0 => text.extend_from_slice(b"::"),
                1 => text.push(b':'),
                2 => text.push(b"g. x%"[next(5)]),
                _ => {}
            }
            let Ok(text) = String::from_utf8(text) else {
                continue;
            };
            let std = text.parse::<Ipv6Addr>().ok();
            let fast = hex_v6(text.as_bytes());
            if text.contains('.') {
                assert!(fast.is_none() || fast == std, "{text}");
                continue;
            }
            assert_eq!(fast, std, "{text}");
            agreed += 1;
            read += usize::from(std.is_some());
        }
        assert!(
            agreed > 150_000 && read > 10_000,
            "{agreed} agreed, {read} read"
        );
        // Through the logged form, as before: brackets, mapped and embedded IPv4 by std.
        for text in [
            "2001:db8::1",
            "[2001:db8::1]",
            "::ffff:198.18.0.1",
            "::",
            "1::",
        ] {
            let want = text.trim_matches(['[', ']']).parse::<IpAddr>().ok();
            assert_eq!(parse_logged(text), want, "{text}");
        }
        assert_eq!(parse_logged("2001:db8:::1"), None);
    }

    #[test]
    fn the_sort_key_sorts_as_the_prefix_does() {
        let mut prefixes: Vec<IpPrefix> = [
            "2001:db8::/64",
            "198.18.0.1",
            "198.18.0.0/24",
            "2001:db8::1",
            "10.0.0.1",
            "255.255.255.255",
            "::",
            "198.19.0.0/16",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
        let mut by_key = prefixes.clone();
        prefixes.sort();
        by_key.sort_by_key(IpPrefix::sort_key);
        assert_eq!(prefixes, by_key);
    }

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn exact_addresses_parse_and_print_without_a_length() {
        assert_eq!(p("198.18.0.7").to_string(), "198.18.0.7");
        assert_eq!(p("198.18.0.7").prefix_len(), 32);
        assert_eq!(p("2001:db8::1").to_string(), "2001:db8::1");
        assert_eq!(p("2001:db8::1").prefix_len(), 128);
        assert_eq!(p("198.18.0.7/32").to_string(), "198.18.0.7");
        assert_eq!(p("[2001:db8::1]").to_string(), "2001:db8::1");
    }

    #[test]
    fn prefixes_keep_their_length() {
        assert_eq!(p("198.51.100.0/24").to_string(), "198.51.100.0/24");
        assert_eq!(p("2001:db8:1:2::/64").to_string(), "2001:db8:1:2::/64");
        assert_eq!(p("0.0.0.0/0").prefix_len(), 0);
    }

    #[test]
    fn mapped_ipv6_folds_into_ipv4() {
        assert_eq!(p("::ffff:198.18.0.9").to_string(), "198.18.0.9");
        assert!(p("::ffff:198.18.0.9").is_v4());
        assert_eq!(p("::ffff:198.18.0.0/120").to_string(), "198.18.0.0/24");
    }

    #[test]
    fn bad_input_names_the_problem() {
        assert_eq!(
            "nonsense".parse::<IpPrefix>(),
            Err(PrefixError::NotAnAddress("nonsense".into()))
        );
        assert!(matches!(
            "198.18.0.0/33".parse::<IpPrefix>(),
            Err(PrefixError::LengthOutOfRange {
                len: 33,
                max: 32,
                ..
            })
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<IpPrefix>(),
            Err(PrefixError::LengthOutOfRange {
                len: 129,
                max: 128,
                ..
            })
        ));
        assert!(matches!(
            "198.18.0.0/x".parse::<IpPrefix>(),
            Err(PrefixError::BadLength { .. })
        ));
        assert!(matches!(
            "198.18.0.0/-1".parse::<IpPrefix>(),
            Err(PrefixError::BadLength { .. })
        ));
        let err = "198.51.100.7/24".parse::<IpPrefix>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`198.51.100.7/24` has host bits set; the network is 198.51.100.0/24"
        );
        assert!("198.18.0.300".parse::<IpPrefix>().is_err());
        assert!("".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn containment_respects_family_and_length() {
        let net = p("198.18.0.0/15");
        assert!(net.contains(&p("198.19.255.255")));
        assert!(net.contains(&p("198.18.4.0/24")));
        assert!(!net.contains(&p("198.20.0.1")));
        assert!(!net.contains(&p("198.0.0.0/8")));
        assert!(net.overlaps(&p("198.0.0.0/8")));
        assert!(!p("::/0").contains(&p("198.18.0.1")));
        assert!(p("2001:db8::/32").contains_addr("2001:db8:ffff::1".parse().unwrap()));
        assert_eq!(
            IpPrefix::containing("198.18.7.9".parse().unwrap(), 24).to_string(),
            "198.18.7.0/24"
        );
    }

    #[test]
    fn serde_uses_the_text_form() {
        let json = serde_json::to_string(&p("198.51.100.0/24")).unwrap();
        assert_eq!(json, "\"198.51.100.0/24\"");
        let back: IpPrefix = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p("198.51.100.0/24"));
        assert!(serde_json::from_str::<IpPrefix>("\"bogus\"").is_err());
    }

    #[test]
    fn logged_addresses_parse_strictly() {
        assert_eq!(
            parse_logged("192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            parse_logged("[2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        for odd in [
            "010.0.0.1",
            "192.000.002.001",
            "1.2.3",
            "[1.2.3.4",
            "host.example",
            "",
        ] {
            assert_eq!(parse_logged(odd), None, "{odd}");
        }
    }
}
