//! Ban and allowlist lookups. Exact addresses live in hash maps (the fast path); prefixes in
//! LPM tries, consulted only when the controller says prefix bans exist.

use aya_ebpf::btf_maps::lpm_trie::Key;
use banner_common::{BanEntry, Ipv4Key, Ipv4PrefixKey, Ipv6Key};

use crate::{parse::Source, ALLOW_V4, ALLOW_V6, BANS_V4, BANS_V6, PREFIX_V4, PREFIX_V6, SETTINGS};

#[inline(always)]
pub fn find_ban(source: &Source) -> Option<*mut BanEntry> {
    match source {
        Source::V4(addr) => {
            let key = Ipv4Key { addr: *addr };
            if let Some(ban) = BANS_V4.get_ptr_mut(key) {
                return Some(ban);
            }
            let settings = SETTINGS.get(0)?;
            if settings.prefix_bans_v4 == 0 {
                return None;
            }
            let key = Ipv4PrefixKey {
                addr: *addr,
                pad: [0; 4],
            };
            PREFIX_V4
                .get(&Key::new(32, key))
                .map(|ban| ban as *const BanEntry as *mut BanEntry)
        }
        Source::V6(addr) => {
            let key = Ipv6Key { addr: *addr };
            if let Some(ban) = BANS_V6.get_ptr_mut(key) {
                return Some(ban);
            }
            let settings = SETTINGS.get(0)?;
            if settings.prefix_bans_v6 == 0 {
                return None;
            }
            PREFIX_V6
                .get(&Key::new(128, key))
                .map(|ban| ban as *const BanEntry as *mut BanEntry)
        }
    }
}

#[inline(always)]
pub fn allowed(source: &Source) -> bool {
    match source {
        Source::V4(addr) => ALLOW_V4.get(&Key::new(32, Ipv4Key { addr: *addr })).is_some(),
        Source::V6(addr) => ALLOW_V6.get(&Key::new(128, Ipv6Key { addr: *addr })).is_some(),
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
