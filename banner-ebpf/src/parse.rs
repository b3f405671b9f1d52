//! The header walk: Ethernet, up to two VLAN tags, IPv4 (with options) or IPv6 (with its
//! extension headers), as far as the transport header.
//!
//! Every read is bounds-checked against `data_end` so the verifier accepts it; a frame that is
//! short, not IP, or otherwise odd yields `None` and the caller lets it pass.

use aya_ebpf::programs::XdpContext;

pub const ETH_HLEN: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HLEN: usize = 4;
/// 802.1Q inside 802.1ad (QinQ) is the deepest stacking seen in practice.
const MAX_VLAN_TAGS: usize = 2;
/// Extension headers walked before giving up on finding the transport header.
const MAX_IPV6_EXT_HEADERS: usize = 6;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DSTOPTS: u8 = 60;

/// Source address of the frame, in network byte order.
#[derive(Clone, Copy)]
pub enum Source {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// What the walk found. Offsets are from the start of the frame.
#[derive(Clone, Copy)]
pub struct Packet {
    pub source: Source,
    /// Offset of the IP header.
    pub l3_off: usize,
    /// Offset of the transport header (after IPv4 options or IPv6 extension headers).
    pub l4_off: usize,
    /// Transport protocol (IPv4 protocol / last IPv6 next header).
    pub l4_proto: u8,
    /// Any fragment (first or later): such packets are never answered.
    pub fragment: bool,
}

/// A pointer to a `T` at `off` bytes into the frame, if the frame holds it whole.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

#[inline(always)]
pub fn read_u8(ctx: &XdpContext, off: usize) -> Option<u8> {
    // SAFETY: ptr_at checked that the byte lies inside the frame.
    ptr_at::<u8>(ctx, off).map(|p| unsafe { *p })
}

#[inline(always)]
pub fn read_be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    // SAFETY: ptr_at checked the bounds; packet data has no alignment guarantee.
    ptr_at::<[u8; 2]>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Option<Packet> {
    let mut proto = read_be16(ctx, 12)?;
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        proto = read_be16(ctx, off + 2)?;
        off += VLAN_HLEN;
    }
    match proto {
        ETH_P_IPV4 => parse_ipv4(ctx, off),
        ETH_P_IPV6 => parse_ipv6(ctx, off),
        _ => None,
    }
}

#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, l3_off: usize) -> Option<Packet> {
    // The fixed header through one bounds check (see parse: offset 0 on L3 devices).
    let hdr = ptr_at::<[u8; 20]>(ctx, l3_off)?;
    // SAFETY: ptr_at checked the bounds.
    let hdr = unsafe { &*hdr };
    let ver_ihl = hdr[0];
    let ihl = ((ver_ihl & 0x0f) as usize) * 4;
    if ver_ihl >> 4 != 4 || ihl < 20 {
        return None;
    }
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    let l4_proto = hdr[9];
    let source = Source::V4([hdr[12], hdr[13], hdr[14], hdr[15]]);
    Some(Packet {
        source,
        l3_off,
        l4_off: l3_off + ihl,
        l4_proto,
        // MF set or a non-zero fragment offset.
        fragment: frag & 0x3fff != 0,
    })
}

#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, l3_off: usize) -> Option<Packet> {
    // The fixed header through one bounds check (see parse: offset 0 on L3 devices).
    let hdr = ptr_at::<[u8; 40]>(ctx, l3_off)?;
    // SAFETY: ptr_at checked the bounds.
    let hdr = unsafe { &*hdr };
    if hdr[0] >> 4 != 6 {
        return None;
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&hdr[8..24]);
    let source = Source::V6(src);
    let mut next = hdr[6];
    let mut off = l3_off + 40;
    let mut fragment = false;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if !matches!(
            next,
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS | IPV6_FRAGMENT | IPV6_AH
        ) {
            break;
        }
        // Every extension header starts with (next header, length); read both through one
        // bounds check so the verifier sees the check that guards the read.
        let hdr = ptr_at::<[u8; 2]>(ctx, off)?;
        // SAFETY: ptr_at checked the bounds.
        let [hdr_next, hdr_len] = unsafe { *hdr };
        off += match next {
            IPV6_FRAGMENT => {
                fragment = true;
                8
            }
            IPV6_AH => (hdr_len as usize + 2) * 4,
            _ => (hdr_len as usize + 1) * 8,
        };
        next = hdr_next;
    }
    Some(Packet {
        source,
        l3_off,
        l4_off: off,
        l4_proto: next,
        fragment,
    })
}
