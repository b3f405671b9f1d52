//! The tarpit: answer a banned TCP client from the NIC so its connections hang, with
//! xtables-addons' TARPIT semantics ("tarpit" mode), and without any state:
//!
//! - SYN without ACK: SYN/ACK with window 5 and no options; ack = their seq + 1.
//! - ACK without SYN, RST or FIN: ACK with window 0 acknowledging what they sent.
//! - SYN/ACK from them: RST.
//! - RST, FIN, anything without ACK, fragments, non-unicast destinations, a bad incoming
//!   checksum, and every non-TCP packet: no answer (dropped).
//!
//! The reply is written over the incoming frame (MACs, addresses and ports swapped, VLAN tags
//! kept, IP options and extension headers dropped), checksums computed here since XDP_TX has
//! no offload, and the frame cut to its new length. Our sequence number comes from the
//! 4-tuple and a secret, so nothing is stored per connection.
//!
//! On a gateway the banned packet may be addressed to a host behind it: the reply then
//! speaks for that host (its address as source), which is the point: the attacker's
//! connections to anything behind the gateway hang, and no packet of theirs reaches it.

use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use banner_common::{tarpit_isn_v4, tarpit_isn_v6, TARPIT_SYN_WINDOW, TARPIT_TTL};

use crate::parse::{ptr_at, read_be16, read_u8, Packet, Source, IPPROTO_TCP};

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
/// Longest segment whose checksum we verify (and so answer). A tarpitted client is offered a
/// window of 5 bytes, then 0: its segments are a SYN (header and options, at most 60 bytes),
/// ACKs and zero-window probes with at most 5 bytes of data. Anything longer broke the
/// window and is dropped unanswered. The bound also keeps the verifier's walk of the
/// checksum loop small.
const MAX_SEGMENT: usize = 128;

pub enum Tarpit {
    /// The frame now holds the reply: send it back (XDP_TX).
    Reply,
    /// No answer is due: drop.
    Drop,
    /// Could not shape the reply (the kernel refused to cut the frame): drop, and count it.
    Failed,
}

/// The fields of the incoming segment the reply needs.
struct Seg {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: u32,
}

#[inline(always)]
fn read_be32(ctx: &XdpContext, off: usize) -> Option<u32> {
    // SAFETY: ptr_at checked the bounds; packet data has no alignment guarantee.
    ptr_at::<[u8; 4]>(ctx, off).map(|p| u32::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Sum of 16-bit big-endian words of `len` bytes at `off` (odd tail padded with zero).
#[inline(always)]
fn sum_packet(ctx: &XdpContext, off: usize, len: usize) -> Option<u32> {
    let mut sum = 0u32;
    let mut i = 0usize;
    for _ in 0..MAX_SEGMENT / 2 {
        if i + 2 > len {
            break;
        }
        sum += u32::from(read_be16(ctx, off + i)?);
        i += 2;
    }
    if len & 1 == 1 {
        let last = (len - 1).min(MAX_SEGMENT - 1);
        sum += u32::from(read_u8(ctx, off + last)?) << 8;
    }
    Some(sum)
}

#[inline(always)]
fn sum_bytes<const N: usize>(b: &[u8; N]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i + 1 < N {
        sum += u32::from(u16::from_be_bytes([b[i], b[i + 1]]));
        i += 2;
    }
    sum
}

/// Decide and, where due, write the reply. `packet` is the parsed incoming frame.
#[inline(always)]
pub fn respond(ctx: &XdpContext, packet: &Packet, key: &[u64; 2]) -> Tarpit {
    match build(ctx, packet, key) {
        Some(t) => t,
        // Not something we can safely answer: drop it.
        None => Tarpit::Drop,
    }
}

#[inline(always)]
fn build(ctx: &XdpContext, p: &Packet, key: &[u64; 2]) -> Option<Tarpit> {
    if p.l4_proto != IPPROTO_TCP || p.fragment || !unicast_source(&p.source) {
        return Some(Tarpit::Drop);
    }
    // Never answer a frame sent to a group: the multicast bit of the destination MAC. (Read
    // as the whole address: a one-byte check at offset 0 compiles to a comparison the
    // verifier does not accept as a bound.)
    let dst_mac = ptr_at::<[u8; 6]>(ctx, 0)?;
    // SAFETY: ptr_at checked the bounds.
    if unsafe { (*dst_mac)[0] } & 1 != 0 {
        return Some(Tarpit::Drop);
    }
    let l3 = p.l3_off;
    let l4 = p.l4_off;
    let seg_len = match p.source {
        Source::V4(_) => {
            // 224/4 multicast, 240/4 reserved and the limited broadcast.
            if read_u8(ctx, l3 + 16)? >= 224 {
                return Some(Tarpit::Drop);
            }
            usize::from(read_be16(ctx, l3 + 2)?).checked_sub(l4 - l3)?
        }
        Source::V6(_) => {
            if read_u8(ctx, l3 + 24)? == 0xff {
                return Some(Tarpit::Drop);
            }
            (usize::from(read_be16(ctx, l3 + 4)?) + 40).checked_sub(l4 - l3)?
        }
    };
    if !(20..=MAX_SEGMENT).contains(&seg_len) {
        return Some(Tarpit::Drop);
    }
    let seg = read_segment(ctx, l4, seg_len)?;
    if !checksum_ok(ctx, p, seg_len)? {
        return Some(Tarpit::Drop);
    }

    let syn = seg.flags & TCP_SYN != 0;
    let ack = seg.flags & TCP_ACK != 0;
    let isn = match p.source {
        Source::V4(src) => {
            let dst = ptr_at::<[u8; 4]>(ctx, l3 + 16)?;
            // SAFETY: ptr_at checked the bounds.
            tarpit_isn_v4(key, src, unsafe { *dst }, seg.sport, seg.dport)
        }
        Source::V6(src) => {
            let dst = ptr_at::<[u8; 16]>(ctx, l3 + 24)?;
            // SAFETY: ptr_at checked the bounds.
            tarpit_isn_v6(key, &src, unsafe { &*dst }, seg.sport, seg.dport)
        }
    };
    // (flags, seq, ack, window) of the reply.
    let reply = if syn && !ack {
        (TCP_SYN | TCP_ACK, isn, seg.seq.wrapping_add(1), TARPIT_SYN_WINDOW)
    } else if syn {
        (TCP_RST, seg.ack, 0, 0)
    } else if seg.flags & (TCP_RST | TCP_FIN) != 0 || !ack {
        return Some(Tarpit::Drop);
    } else {
        (TCP_ACK, isn.wrapping_add(1), seg.seq.wrapping_add(seg.payload), 0)
    };
    write_reply(ctx, p, &seg, reply)
}

/// A reply goes to the packet's source: never answer one that no host can own (unspecified,
/// loopback, multicast, broadcast or reserved), whatever the ban says: such sources are forged,
/// and answering them reflects traffic at a group or at ourselves.
#[inline(always)]
fn unicast_source(source: &Source) -> bool {
    match source {
        // 0/8 ("this network"), 127/8 loopback, 224/4 multicast, 240/4 and the broadcast.
        Source::V4(a) => a[0] != 0 && a[0] != 127 && a[0] < 224,
        Source::V6(a) => {
            let word = u128::from_be_bytes(*a);
            // :: unspecified, ::1 loopback, ff00::/8 multicast.
            word > 1 && a[0] != 0xff
        }
    }
}

#[inline(always)]
fn read_segment(ctx: &XdpContext, l4: usize, seg_len: usize) -> Option<Seg> {
    // The fixed header through one bounds check: separate small reads let LLVM re-derive the
    // pointer after the check, which the verifier then cannot see as bounded.
    let hdr = ptr_at::<[u8; 20]>(ctx, l4)?;
    // SAFETY: ptr_at checked the bounds.
    let h = unsafe { &*hdr };
    let doff = usize::from(h[12] >> 4) * 4;
    if doff < 20 || doff > seg_len {
        return None;
    }
    Some(Seg {
        sport: u16::from_be_bytes([h[0], h[1]]),
        dport: u16::from_be_bytes([h[2], h[3]]),
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        flags: h[13],
        payload: (seg_len - doff) as u32,
    })
}

/// Verify the incoming TCP checksum (pseudo-header included).
#[inline(always)]
fn checksum_ok(ctx: &XdpContext, p: &Packet, seg_len: usize) -> Option<bool> {
    let l3 = p.l3_off;
    let mut sum = u32::from(IPPROTO_TCP) + seg_len as u32;
    match p.source {
        Source::V4(_) => {
            let addrs = ptr_at::<[u8; 8]>(ctx, l3 + 12)?;
            // SAFETY: ptr_at checked the bounds.
            sum += sum_bytes(unsafe { &*addrs });
        }
        Source::V6(_) => {
            let addrs = ptr_at::<[u8; 32]>(ctx, l3 + 8)?;
            // SAFETY: ptr_at checked the bounds.
            sum += sum_bytes(unsafe { &*addrs });
        }
    }
    sum += sum_packet(ctx, p.l4_off, seg_len)?;
    Some(fold(sum) == 0xffff)
}

/// Write the reply over the frame and cut the frame after it.
#[inline(always)]
fn write_reply(ctx: &XdpContext, p: &Packet, seg: &Seg, (flags, seq, ack, window): (u8, u32, u32, u16)) -> Option<Tarpit> {
    let l3 = p.l3_off;
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&seg.dport.to_be_bytes());
    tcp[2..4].copy_from_slice(&seg.sport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&window.to_be_bytes());

    // Swap the MACs (VLAN tags between them and the IP header stay as they are).
    let macs = ptr_at::<[u8; 12]>(ctx, 0)? as *mut [u8; 12];
    // SAFETY: ptr_at checked the 12 bytes are inside the frame; XDP frames are writable.
    unsafe {
        let m = *macs;
        let mut swapped = [0u8; 12];
        swapped[..6].copy_from_slice(&m[6..]);
        swapped[6..].copy_from_slice(&m[..6]);
        *macs = swapped;
    }

    let new_len = match p.source {
        Source::V4(src) => {
            let dst = ptr_at::<[u8; 4]>(ctx, l3 + 16)?;
            // SAFETY: ptr_at checked the bounds.
            let dst = unsafe { *dst };
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&40u16.to_be_bytes());
            // ID 0, Don't Fragment.
            ip[6] = 0x40;
            ip[8] = TARPIT_TTL;
            ip[9] = IPPROTO_TCP;
            ip[12..16].copy_from_slice(&dst);
            ip[16..20].copy_from_slice(&src);
            let ip_sum = !fold(sum_bytes(&ip));
            ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
            let pseudo = sum_bytes(&[dst[0], dst[1], dst[2], dst[3], src[0], src[1], src[2], src[3]])
                + u32::from(IPPROTO_TCP)
                + 20;
            let tcp_sum = !fold(pseudo + sum_bytes(&tcp));
            tcp[16..18].copy_from_slice(&tcp_sum.to_be_bytes());
            let out = ptr_at::<[u8; 40]>(ctx, l3)? as *mut [u8; 40];
            let mut both = [0u8; 40];
            both[..20].copy_from_slice(&ip);
            both[20..].copy_from_slice(&tcp);
            // SAFETY: ptr_at checked the 40 bytes are inside the frame.
            unsafe { *out = both };
            l3 + 40
        }
        Source::V6(src) => {
            let dst = ptr_at::<[u8; 16]>(ctx, l3 + 24)?;
            // SAFETY: ptr_at checked the bounds.
            let dst = unsafe { *dst };
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&20u16.to_be_bytes());
            ip[6] = IPPROTO_TCP;
            ip[7] = TARPIT_TTL;
            ip[8..24].copy_from_slice(&dst);
            ip[24..40].copy_from_slice(&src);
            let mut addrs = [0u8; 32];
            addrs.copy_from_slice(&ip[8..40]);
            let pseudo = sum_bytes(&addrs) + u32::from(IPPROTO_TCP) + 20;
            let tcp_sum = !fold(pseudo + sum_bytes(&tcp));
            tcp[16..18].copy_from_slice(&tcp_sum.to_be_bytes());
            let out = ptr_at::<[u8; 60]>(ctx, l3)? as *mut [u8; 60];
            let mut both = [0u8; 60];
            both[..40].copy_from_slice(&ip);
            both[40..].copy_from_slice(&tcp);
            // SAFETY: ptr_at checked the 60 bytes are inside the frame.
            unsafe { *out = both };
            l3 + 60
        }
    };
    let len = ctx.data_end() - ctx.data();
    if new_len < len {
        let delta = new_len as i32 - len as i32;
        // SAFETY: shrinking the frame by a checked amount; no packet pointer is used after.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx.cast(), delta) } != 0 {
            return Some(Tarpit::Failed);
        }
    }
    Some(Tarpit::Reply)
}
