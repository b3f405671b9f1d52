//! Frames of devices without a link layer (tun, WireGuard, PPP, ipip) start at the IP header.
//! These helpers give such a frame a stand-in Ethernet header and take it off again, so the
//! Ethernet walk serves them unchanged.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};

use crate::parse::{ptr_at, ETH_HLEN};

/// Prepend an Ethernet header whose EtherType follows the IP version nibble, and whose
/// addresses are zero (so the tarpit's group-address check lets replies through; the MACs are
/// dropped with the header before the frame leaves). None: not IP, or no headroom.
#[inline(always)]
pub fn push_ethernet(ctx: &XdpContext) -> Option<()> {
    // Read through a whole minimal IPv4 header: a one-byte check at offset 0 compiles to a
    // comparison the verifier does not accept as a bound.
    let ip = ptr_at::<[u8; 20]>(ctx, 0)?;
    // SAFETY: ptr_at checked the bounds.
    let ethertype: u16 = match unsafe { (*ip)[0] } >> 4 {
        4 => 0x0800,
        6 => 0x86dd,
        _ => return None,
    };
    // SAFETY: growing the head by a constant; the kernel checks the headroom and fails
    // cleanly, and every packet pointer is re-read from ctx afterwards.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx.cast(), -(ETH_HLEN as i32)) } != 0 {
        return None;
    }
    let eth = ptr_at::<[u8; ETH_HLEN]>(ctx, 0)? as *mut [u8; ETH_HLEN];
    let mut header = [0u8; ETH_HLEN];
    header[12..].copy_from_slice(&ethertype.to_be_bytes());
    // SAFETY: ptr_at checked the 14 bytes are inside the frame; XDP frames are writable.
    unsafe { *eth = header };
    Some(())
}

/// Take the stand-in header off again.
#[inline(always)]
pub fn pop_ethernet(ctx: &XdpContext) -> Option<()> {
    // SAFETY: shrinking the head by the constant pushed above; the kernel checks the length.
    (unsafe { bpf_xdp_adjust_head(ctx.ctx.cast(), ETH_HLEN as i32) } == 0).then_some(())
}
