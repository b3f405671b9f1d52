//! Ban and allowlist lookups. Exact addresses live in hash maps (the fast path); prefixes in
//! LPM tries, consulted only when the controller says prefix bans exist.

use aya_ebpf::{btf_maps::lpm_trie::Key, programs::XdpContext};
use banner_common::{BanEntry, Ipv4Key, Ipv4PrefixKey, Ipv6Key};

use crate::{
    parse::{read_be16, Packet, Source, IPPROTO_TCP, IPPROTO_UDP},
    ALLOW_V4, ALLOW_V6, BANS_V4, BANS_V6, PREFIX_V4, PREFIX_V6, SCOPES, SETTINGS,
};

/// What the ban lookup found for a source.
pub enum Found {
    /// A ban to enforce (a prefix ban may still be past its deadline: the caller checks),
    /// and the boot-clock time if the lookup already read it (one helper call, not two).
    Ban(*mut BanEntry, Option<u64>),
    /// Only an exact ban past its deadline.
    Expired,
    Nothing,
}

/// The ban that covers `source`: its exact ban, else the longest banned prefix holding it.
///
/// An exact ban past its deadline does not hide a live prefix ban: after a controller crash
/// nobody removes the expired entry, and the address must stay banned by its prefix. (The
/// two pointers are never merged into one value: LLVM turns that into an OR of pointers,
/// which the verifier refuses.)
#[inline(always)]
pub fn find_ban(source: &Source) -> Found {
    let (expired, prefixes) = match source {
        Source::V4(addr) => match BANS_V4.get_ptr_mut(Ipv4Key { addr: *addr }) {
            Some(ban) => match live(ban) {
                Some(now) => return Found::Ban(ban, Some(now)),
                None => (true, SETTINGS.get(0).map_or(0, |s| s.prefix_bans_v4)),
            },
            None => (false, SETTINGS.get(0).map_or(0, |s| s.prefix_bans_v4)),
        },
        Source::V6(addr) => match BANS_V6.get_ptr_mut(Ipv6Key { addr: *addr }) {
            Some(ban) => match live(ban) {
                Some(now) => return Found::Ban(ban, Some(now)),
                None => (true, SETTINGS.get(0).map_or(0, |s| s.prefix_bans_v6)),
            },
            None => (false, SETTINGS.get(0).map_or(0, |s| s.prefix_bans_v6)),
        },
    };
    if prefixes != 0 {
        let prefix = match source {
            Source::V4(addr) => PREFIX_V4.get(&Key::new(
                32,
                Ipv4PrefixKey {
                    addr: *addr,
                    pad: [0; 4],
                },
            )),
            Source::V6(addr) => PREFIX_V6.get(&Key::new(128, Ipv6Key { addr: *addr })),
        };
        if let Some(ban) = prefix {
            return Found::Ban(ban as *const BanEntry as *mut BanEntry, None);
        }
    }
    if expired {
        Found::Expired
    } else {
        Found::Nothing
    }
}

/// The boot-clock time if `ban` is still in force at it, None if it expired.
#[inline(always)]
fn live(ban: *mut BanEntry) -> Option<u64> {
    // SAFETY: `ban` points at a live map value; the helper has no preconditions.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    // SAFETY: as above.
    (!unsafe { (*ban).expired_at(now) }).then_some(now)
}

#[inline(always)]
pub fn allowed(source: &Source) -> bool {
    match source {
        Source::V4(addr) => ALLOW_V4.get(&Key::new(32, Ipv4Key { addr: *addr })).is_some(),
        Source::V6(addr) => ALLOW_V6.get(&Key::new(128, Ipv6Key { addr: *addr })).is_some(),
    }
}

/// Is the packet inside the ports of scope slot `scope`?
///
/// What cannot be judged is enforced, as an unscoped ban would be: a scope slot the map lacks,
/// a fragment (only the first one carries ports, and the rest make the same datagram), a
/// transport header cut short. Protocols without ports (ICMP, ...) are outside every scope.
#[inline(always)]
pub fn in_scope(ctx: &XdpContext, packet: &Packet, scope: u32) -> bool {
    let Some(set) = SCOPES.get(scope) else {
        return true;
    };
    if packet.fragment {
        return true;
    }
    let tcp = match packet.l4_proto {
        IPPROTO_TCP => true,
        IPPROTO_UDP => false,
        _ => return false,
    };
    // The destination port sits at offset 2 of both headers.
    match read_be16(ctx, packet.l4_off + 2) {
        Some(port) => set.holds(tcp, port),
        None => true,
    }
}

/// Count a packet against its ban.
///
/// The entry is shared by all CPUs and the BPF target offers no atomic read-modify-write in
/// stable Rust, so two CPUs hitting the same ban in the same instant can lose one count. The
/// per-CPU totals in `counters` stay exact; these per-ban figures are for `banner list`.
#[inline(always)]
pub fn record_hit(ban: *mut BanEntry, now: u64, tarpitted: bool) {
    // SAFETY: `ban` is a live map value (see the caller), naturally aligned.
    unsafe {
        let field = if tarpitted {
            core::ptr::addr_of_mut!((*ban).tarpitted)
        } else {
            core::ptr::addr_of_mut!((*ban).dropped)
        };
        field.write_volatile(field.read_volatile() + 1);
        core::ptr::addr_of_mut!((*ban).last_seen_ns).write_volatile(now);
    }
}
