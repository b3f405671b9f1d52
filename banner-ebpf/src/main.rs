//! banner's XDP program: drop (or, for tarpit bans, answer) packets from banned sources at the
//! NIC, before the kernel spends anything on them.
//!
//! The controller owns every map write except the counters; the program only reads bans and
//! bumps counters. All maps are declared here, together, so the contract with
//! `banner-common` is visible in one place.
#![no_std]
#![no_main]

mod l3;
mod lookup;
mod parse;
mod tarpit;

use aya_ebpf::{
    bindings::{xdp_action, BPF_F_NO_PREALLOC},
    btf_maps::{Array, HashMap, LpmTrie, PerCpuArray},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use banner_common::{
    counter, same_name, AllowEntry, BanEntry, BlockType, Ipv4Key, Ipv4PrefixKey, Ipv6Key,
    PortSet, Settings, DEFAULT_MAX_EXACT_BANS, DEFAULT_MAX_PREFIX_BANS, MAPS, MAX_ALLOW_ENTRIES,
    MAX_SCOPES,
};
use core::mem::size_of;

// Plain hash maps, not LRU: a full map must refuse a new ban rather than evict another one.
// No preallocation, so memory follows the number of bans rather than the configured maximum.
const NO_PREALLOC: usize = BPF_F_NO_PREALLOC as usize;
const MAX_EXACT: usize = DEFAULT_MAX_EXACT_BANS as usize;
const MAX_PREFIX: usize = DEFAULT_MAX_PREFIX_BANS as usize;
const MAX_ALLOW: usize = MAX_ALLOW_ENTRIES as usize;
const MAX_SCOPE: usize = MAX_SCOPES as usize;

#[btf_map(name = "bans_v4")]
static BANS_V4: HashMap<Ipv4Key, BanEntry, MAX_EXACT, NO_PREALLOC> = HashMap::new();
#[btf_map(name = "bans_v6")]
static BANS_V6: HashMap<Ipv6Key, BanEntry, MAX_EXACT, NO_PREALLOC> = HashMap::new();
#[btf_map(name = "prefix_v4")]
static PREFIX_V4: LpmTrie<Ipv4PrefixKey, BanEntry, MAX_PREFIX> = LpmTrie::new();
#[btf_map(name = "prefix_v6")]
static PREFIX_V6: LpmTrie<Ipv6Key, BanEntry, MAX_PREFIX> = LpmTrie::new();
#[btf_map(name = "allow_v4")]
static ALLOW_V4: LpmTrie<Ipv4Key, AllowEntry, MAX_ALLOW> = LpmTrie::new();
#[btf_map(name = "allow_v6")]
static ALLOW_V6: LpmTrie<Ipv6Key, AllowEntry, MAX_ALLOW> = LpmTrie::new();
#[btf_map(name = "counters")]
static COUNTERS: PerCpuArray<u64, { counter::COUNT as usize }> = PerCpuArray::new();
#[btf_map(name = "settings")]
static SETTINGS: Array<Settings, 1> = Array::new();
#[btf_map(name = "scopes")]
static SCOPES: Array<PortSet, MAX_SCOPE> = Array::new();

// The contract (banner_common::MAPS) and these declarations agree: the names the attributes
// must spell out as literals, and the key and value types used above. A build error if not.
const _: () = {
    const fn agrees(i: usize, name: &str, key: usize, value: usize) -> bool {
        let m = &MAPS[i];
        same_name(m.name, name) && m.key_size as usize == key && m.value_size as usize == value
    }
    const LPM: usize = 4;
    let ban = size_of::<BanEntry>();
    let allow = size_of::<AllowEntry>();
    assert!(agrees(0, "bans_v4", size_of::<Ipv4Key>(), ban));
    assert!(agrees(1, "bans_v6", size_of::<Ipv6Key>(), ban));
    assert!(agrees(2, "prefix_v4", LPM + size_of::<Ipv4PrefixKey>(), ban));
    assert!(agrees(3, "prefix_v6", LPM + size_of::<Ipv6Key>(), ban));
    assert!(agrees(4, "allow_v4", LPM + size_of::<Ipv4Key>(), allow));
    assert!(agrees(5, "allow_v6", LPM + size_of::<Ipv6Key>(), allow));
    assert!(agrees(6, "counters", 4, size_of::<u64>()));
    assert!(agrees(7, "settings", 4, size_of::<Settings>()));
    assert!(agrees(8, "scopes", 4, size_of::<PortSet>()));
};

/// The program for Ethernet interfaces.
#[xdp]
pub fn banner_xdp(ctx: XdpContext) -> u32 {
    finish(try_banner(&ctx))
}

/// The program for interfaces without a link header (tun, WireGuard, PPP, ipip), whose
/// frames start at the IP header.
///
/// It puts a stand-in Ethernet header in front, runs the same walk, lookups and tarpit as
/// the Ethernet program, and takes the header off again before the frame goes on (to the
/// stack, or back out for a tarpit reply). One walk for both keeps one set of verifier-proven
/// bounds checks: a walk starting at offset 0 compiles into checks the verifier rejects.
#[xdp]
pub fn banner_xdp_l3(ctx: XdpContext) -> u32 {
    if l3::push_ethernet(&ctx).is_none() {
        count(counter::UNPARSED);
        return xdp_action::XDP_PASS;
    }
    let verdict = try_banner(&ctx);
    if l3::pop_ethernet(&ctx).is_none() {
        // The frame cannot go on with our header in front: never pass a damaged packet.
        count(counter::ABORTED);
        return xdp_action::XDP_DROP;
    }
    finish(verdict)
}

#[inline(always)]
fn finish(action: Verdict) -> u32 {
    let index = match action {
        Verdict::Pass(reason) => reason,
        Verdict::Drop => counter::DROPPED,
        Verdict::Tarpit => counter::TARPITTED,
        Verdict::Aborted => counter::ABORTED,
    };
    count(index);
    match action {
        Verdict::Pass(_) => xdp_action::XDP_PASS,
        Verdict::Drop | Verdict::Aborted => xdp_action::XDP_DROP,
        Verdict::Tarpit => xdp_action::XDP_TX,
    }
}

/// What to do with a frame, and for a passed frame which counter says why.
#[derive(Clone, Copy)]
enum Verdict {
    Pass(u32),
    Drop,
    /// The frame holds a tarpit reply: send it back.
    Tarpit,
    /// Something of ours failed (the reply could not be shaped): dropped, and counted apart.
    Aborted,
}

#[inline(always)]
fn try_banner(ctx: &XdpContext) -> Verdict {
    let Some(packet) = parse::parse(ctx) else {
        // Never abort or drop what we do not understand: it is not ours to judge.
        return Verdict::Pass(counter::UNPARSED);
    };
    let (ban, known_now) = match lookup::find_ban(&packet.source) {
        lookup::Found::Ban(ban, now) => (ban, now),
        lookup::Found::Expired => return Verdict::Pass(counter::EXPIRED),
        lookup::Found::Nothing => return Verdict::Pass(counter::PASSED),
    };
    // The allowlist wins over any ban. It is consulted only once a ban matched, which gives the
    // same answer as checking it first while keeping the clean path to one hash lookup.
    if lookup::allowed(&packet.source) {
        return Verdict::Pass(counter::ALLOWLISTED);
    }
    // The exact lookup already read the clock; a prefix ban still needs it.
    let now = match known_now {
        Some(now) => now,
        // SAFETY: the helper has no preconditions.
        None => unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() },
    };
    // SAFETY: `ban` points into a map value; the kernel keeps it valid for this run of the
    // program. Controller updates replace whole entries, so a torn read only costs one
    // packet's verdict.
    if unsafe { (*ban).expired_at(now) } {
        return Verdict::Pass(counter::EXPIRED);
    }
    // A port-scoped ban: the unscoped fast path pays one compare.
    // SAFETY: as above.
    let scope = unsafe { (*ban).scope };
    if scope != 0 && !lookup::in_scope(ctx, &packet, scope) {
        return Verdict::Pass(counter::PASSED);
    }
    // SAFETY: as above.
    if unsafe { (*ban).blocktype } == BlockType::Tarpit as u32 {
        let key = SETTINGS.get(0).map_or([0; 2], |s| s.tarpit_key);
        return match tarpit::respond(ctx, &packet, &key) {
            tarpit::Tarpit::Reply => {
                lookup::record_hit(ban, now, true);
                Verdict::Tarpit
            }
            tarpit::Tarpit::Drop => {
                lookup::record_hit(ban, now, false);
                Verdict::Drop
            }
            tarpit::Tarpit::Failed => {
                lookup::record_hit(ban, now, false);
                Verdict::Aborted
            }
        };
    }
    lookup::record_hit(ban, now, false);
    Verdict::Drop
}

#[inline(always)]
fn count(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *slot += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
