//! Hand-built frames for `test_run`: Ethernet with optional VLAN tags, IPv4 (with options and
//! fragments) and IPv6 (with extension headers), TCP/UDP/ICMP with correct checksums; and a
//! parser for checking the frames the program sends back.

use std::net::IpAddr;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Internet checksum over `data`, starting from a partial sum.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The partial sum of the TCP/UDP pseudo-header.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut bytes = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&[0, proto]);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&(len as u32).to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("pseudo header needs one family"),
    }
    let mut sum = 0u32;
    for c in bytes.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    sum
}

/// A TCP segment (header without options + payload) with its checksum.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut seg = Vec::with_capacity(20 + payload.len());
    seg.extend_from_slice(&sport.to_be_bytes());
    seg.extend_from_slice(&dport.to_be_bytes());
    seg.extend_from_slice(&seq.to_be_bytes());
    seg.extend_from_slice(&ack.to_be_bytes());
    seg.push(5 << 4);
    seg.push(flags);
    seg.extend_from_slice(&window.to_be_bytes());
    seg.extend_from_slice(&[0, 0, 0, 0]);
    seg.extend_from_slice(payload);
    let sum = checksum(&seg, pseudo_header_sum(src, dst, PROTO_TCP, seg.len()));
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    seg
}

pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let sum = checksum(&d, pseudo_header_sum(src, dst, PROTO_UDP, len));
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

/// An ICMP (v4) echo request.
pub fn icmp_echo(id: u16, seq: u16) -> Vec<u8> {
    let mut d = vec![8, 0, 0, 0];
    d.extend_from_slice(&id.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(b"banner-ping");
    let sum = checksum(&d, 0);
    d[2..4].copy_from_slice(&sum.to_be_bytes());
    d
}

/// An IPv4 packet. `options` must be a multiple of 4 bytes.
pub fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    payload: &[u8],
    options: &[u8],
    frag: u16,
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = ihl * 4 + payload.len();
    let mut p = vec![
        0x40 | ihl as u8,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        (frag >> 8) as u8,
        frag as u8,
        64,
        proto,
        0,
        0,
    ];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(options);
    let sum = checksum(&p, 0);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet; `ext` is a chain of (header type, body) inserted before the payload, each
/// body padded by the caller to the header's size rules (first byte = next header is filled in).
pub fn ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    payload: &[u8],
    ext: &[(u8, Vec<u8>)],
) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, (_, body)) in ext.iter().enumerate() {
        let mut b = body.clone();
        b[0] = ext.get(i + 1).map_or(proto, |(t, _)| *t);
        chain.extend_from_slice(&b);
    }
    let first = ext.first().map_or(proto, |(t, _)| *t);
    let plen = chain.len() + payload.len();
    let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, first, 64];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&chain);
    p.extend_from_slice(payload);
    p
}

/// An Ethernet frame with optional VLAN tags (each `(tpid, vid)`), outermost first.
pub fn eth(
    dst: [u8; 6],
    src: [u8; 6],
    vlans: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, vid) in vlans {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(_) => panic!("expected IPv4"),
    }
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(v) => v.octets(),
        IpAddr::V4(_) => panic!("expected IPv6"),
    }
}

/// A complete frame carrying `l4` from `src` to `dst` (family from the addresses).
pub fn frame(src: IpAddr, dst: IpAddr, vlans: &[(u16, u16)], proto: u8, l4: &[u8]) -> Vec<u8> {
    match src {
        IpAddr::V4(_) => eth(
            SERVER_MAC,
            CLIENT_MAC,
            vlans,
            ETH_P_IPV4,
            &ipv4(v4(src), v4(dst), proto, l4, &[], 0),
        ),
        IpAddr::V6(_) => eth(
            SERVER_MAC,
            CLIENT_MAC,
            vlans,
            ETH_P_IPV6,
            &ipv6(v6(src), v6(dst), proto, l4, &[]),
        ),
    }
}

/// A UDP datagram from `src` to `dst`: the plainest "is this source banned" probe.
pub fn udp_frame(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    frame(
        src,
        dst,
        &[],
        PROTO_UDP,
        &udp(src, dst, 40000, 53, b"probe"),
    )
}

/// A TCP segment in a frame.
#[allow(clippy::too_many_arguments)]
pub fn tcp_frame(
    src: IpAddr,
    dst: IpAddr,
    vlans: &[(u16, u16)],
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let seg = tcp(src, dst, 41000, 22, seq, ack, flags, 64240, payload);
    frame(src, dst, vlans, PROTO_TCP, &seg)
}

/// A parsed reply, for checking what the program sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub vlans: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    /// IPv4 only: identification, flags+fragment field, header checksum valid.
    pub ipv4_id: u16,
    pub ipv4_frag: u16,
    pub ipv4_checksum_ok: bool,
    pub ip_total_len_ok: bool,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub data_offset: u8,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    pub tcp_checksum_ok: bool,
    pub payload_len: usize,
}

/// Parse an Ethernet/[VLAN]/IP/TCP frame; None if it is not one.
pub fn parse_tcp(f: &[u8]) -> Option<Parsed> {
    let mut off = 12;
    let mut vlans = Vec::new();
    let mut et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    while et == ETH_P_8021Q || et == ETH_P_8021AD {
        let vid = u16::from_be_bytes([*f.get(off + 2)?, *f.get(off + 3)?]);
        vlans.push((et, vid));
        off += 4;
        et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    }
    off += 2;
    let (src, dst, ttl, l4, proto, id, frag, csum_ok, len_ok);
    match et {
        ETH_P_IPV4 => {
            let ip = f.get(off..)?;
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            src = IpAddr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
            dst = IpAddr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
            ttl = ip[8];
            proto = ip[9];
            id = u16::from_be_bytes([ip[4], ip[5]]);
            frag = u16::from_be_bytes([ip[6], ip[7]]);
            csum_ok = checksum(ip.get(..ihl)?, 0) == 0;
            len_ok = total == ip.len();
            l4 = ip.get(ihl..total.min(ip.len()))?;
        }
        ETH_P_IPV6 => {
            let ip = f.get(off..)?;
            let plen = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            src = IpAddr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?);
            dst = IpAddr::from(<[u8; 16]>::try_from(ip.get(24..40)?).ok()?);
            ttl = ip[7];
            proto = ip[6];
            id = 0;
            frag = 0;
            csum_ok = true;
            len_ok = plen + 40 == ip.len();
            l4 = ip.get(40..(40 + plen).min(ip.len()))?;
        }
        _ => return None,
    }
    if proto != PROTO_TCP || l4.len() < 20 {
        return None;
    }
    let data_offset = l4[12] >> 4;
    let hlen = usize::from(data_offset) * 4;
    Some(Parsed {
        dst_mac: f[0..6].try_into().ok()?,
        src_mac: f[6..12].try_into().ok()?,
        vlans,
        src,
        dst,
        ttl,
        ipv4_id: id,
        ipv4_frag: frag,
        ipv4_checksum_ok: csum_ok,
        ip_total_len_ok: len_ok,
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        seq: u32::from_be_bytes(l4[4..8].try_into().ok()?),
        ack: u32::from_be_bytes(l4[8..12].try_into().ok()?),
        data_offset,
        flags: l4[13],
        window: u16::from_be_bytes([l4[14], l4[15]]),
        urgent: u16::from_be_bytes([l4[18], l4[19]]),
        tcp_checksum_ok: checksum(l4, pseudo_header_sum(src, dst, PROTO_TCP, l4.len())) == 0,
        payload_len: l4.len().saturating_sub(hlen),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify_to_zero() {
        let src: IpAddr = "198.18.0.2".parse().unwrap();
        let dst: IpAddr = "198.18.0.1".parse().unwrap();
        let f = tcp_frame(src, dst, &[(ETH_P_8021Q, 7)], TCP_SYN, 1000, 0, b"");
        let p = parse_tcp(&f).unwrap();
        assert!(p.ipv4_checksum_ok && p.tcp_checksum_ok && p.ip_total_len_ok);
        assert_eq!(p.vlans, vec![(ETH_P_8021Q, 7)]);
        let src6: IpAddr = "2001:db8::2".parse().unwrap();
        let dst6: IpAddr = "2001:db8::1".parse().unwrap();
        let p = parse_tcp(&tcp_frame(src6, dst6, &[], TCP_ACK, 5, 6, b"hello")).unwrap();
        assert!(p.tcp_checksum_ok);
        assert_eq!(p.payload_len, 5);
    }
}
