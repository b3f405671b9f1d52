//! The contract between banner's XDP program and its controller: map names, map key and
//! value layouts, counter indices and defaults.
//!
//! Every type here is `#[repr(C)]` with explicit padding fields, so the kernel program, the
//! controller and `bpftool` (through BTF) all see the same bytes. The size asserts at the bottom
//! fail the build if a field change would silently move another one.
#![no_std]

/// Names of the maps, as declared in the ELF object and as pinned under the bpffs directory.
/// The kernel caps object names at 15 characters; these fit.
pub mod map_name {
    pub const BANS_V4: &str = "bans_v4";
    pub const BANS_V6: &str = "bans_v6";
    pub const PREFIX_V4: &str = "prefix_v4";
    pub const PREFIX_V6: &str = "prefix_v6";
    pub const ALLOW_V4: &str = "allow_v4";
    pub const ALLOW_V6: &str = "allow_v6";
    pub const COUNTERS: &str = "counters";
    pub const SETTINGS: &str = "settings";
    /// Every map the controller pins, in a stable order.
    pub const ALL: [&str; 8] = [
        BANS_V4, BANS_V6, PREFIX_V4, PREFIX_V6, ALLOW_V4, ALLOW_V6, COUNTERS, SETTINGS,
    ];
}

/// Name of the XDP program function in the object file.
pub const PROGRAM_NAME: &str = "banner_xdp";

/// Default capacity of each exact-address ban map (IPv4 and IPv6 separately).
pub const DEFAULT_MAX_EXACT_BANS: u32 = 1_000_000;
/// Default capacity of each prefix ban trie.
pub const DEFAULT_MAX_PREFIX_BANS: u32 = 65_536;
/// Capacity of each allowlist trie.
pub const MAX_ALLOW_ENTRIES: u32 = 16_384;

/// How a banned source is treated.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockType {
    /// Drop every packet.
    Drop = 0,
    /// Answer TCP so the client's connections hang; drop everything else.
    Tarpit = 1,
}

impl BlockType {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::Drop),
            1 => Some(Self::Tarpit),
            _ => None,
        }
    }
}

/// Key of the exact IPv4 ban map: the source address in network byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ipv4Key {
    pub addr: [u8; 4],
}

/// Data part of the IPv4 prefix-ban trie key. The kernel stores a trie value right after the
/// key data, so four bytes of padding keep the 8-byte aligned [`BanEntry`] aligned. Prefix
/// lengths never exceed 32, so the padding is never matched.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ipv4PrefixKey {
    pub addr: [u8; 4],
    pub pad: [u8; 4],
}

/// Key of the exact IPv6 ban map: the source address in network byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ipv6Key {
    pub addr: [u8; 16],
}

/// One ban as the kernel program enforces it. The same value type serves the exact maps and the
/// prefix tries.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BanEntry {
    /// Deadline on CLOCK_BOOTTIME in ns (what `bpf_ktime_get_boot_ns` reads); 0 = permanent.
    /// Past the deadline the program ignores the entry, so a dead controller cannot leave a
    /// ban behind forever.
    pub expires_ns: u64,
    /// Packets dropped for this ban (updated by the program).
    pub dropped: u64,
    /// Packets answered by the tarpit for this ban (updated by the program).
    pub tarpitted: u64,
    /// CLOCK_BOOTTIME ns of the last packet that hit this ban; 0 = never.
    pub last_seen_ns: u64,
    /// A [`BlockType`] as u32.
    pub blocktype: u32,
    /// Reserved, zero. Explicit so the struct has no implicit padding.
    pub flags: u32,
}

impl BanEntry {
    /// True when the entry should no longer be enforced at boot-clock time `now_ns`.
    #[inline(always)]
    pub const fn expired_at(&self, now_ns: u64) -> bool {
        self.expires_ns != 0 && now_ns >= self.expires_ns
    }
}

/// Value of the allowlist tries. Present means allowed; the value itself is unused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AllowEntry {
    pub flags: u32,
}

/// Runtime switches read by the program on every packet (one entry, index 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// Number of IPv4 prefix bans; 0 lets the program skip the IPv4 trie lookup.
    pub prefix_bans_v4: u32,
    /// Number of IPv6 prefix bans; 0 lets the program skip the IPv6 trie lookup.
    pub prefix_bans_v6: u32,
    /// Mixed into the tarpit's sequence numbers (derived from the 4-tuple, so nothing is
    /// stored per connection) so they cannot be predicted from outside.
    pub tarpit_secret: u32,
    /// Reserved, zero.
    pub flags: u32,
}

/// The tarpit's SYN/ACK window: small, so the client trickles data.
pub const TARPIT_SYN_WINDOW: u16 = 5;
/// TTL / hop limit of tarpit replies.
pub const TARPIT_TTL: u8 = 64;

/// The tarpit's initial sequence number for a connection, from its 4-tuple (addresses folded
/// to 32 bits by the caller) and the secret. The kernel program and the tests share it.
#[inline(always)]
pub const fn tarpit_isn(
    client: u32,
    server: u32,
    client_port: u16,
    server_port: u16,
    secret: u32,
) -> u32 {
    let mut h = client
        ^ server.rotate_left(13)
        ^ (((client_port as u32) << 16) | server_port as u32)
        ^ secret;
    // murmur3's finaliser: every input bit moves every output bit.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Fold an IPv6 address (network byte order) to 32 bits for [`tarpit_isn`].
#[inline(always)]
pub const fn fold_v6(a: &[u8; 16]) -> u32 {
    let w0 = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
    let w1 = u32::from_be_bytes([a[4], a[5], a[6], a[7]]);
    let w2 = u32::from_be_bytes([a[8], a[9], a[10], a[11]]);
    let w3 = u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
    w0 ^ w1.rotate_left(5) ^ w2.rotate_left(11) ^ w3.rotate_left(17)
}

/// Indices of the per-CPU counters array.
pub mod counter {
    /// Packets let through (no ban, allowlisted, expired, or not understood).
    pub const PASSED: u32 = 0;
    /// Packets dropped for a ban.
    pub const DROPPED: u32 = 1;
    /// Packets answered by the tarpit.
    pub const TARPITTED: u32 = 2;
    /// Packets for which the program failed internally (returned XDP_ABORTED).
    pub const ABORTED: u32 = 3;
    /// Packets from a banned source that the allowlist let through.
    pub const ALLOWLISTED: u32 = 4;
    /// Packets that matched a ban whose deadline had passed.
    pub const EXPIRED: u32 = 5;
    /// Frames passed without inspection: truncated, not IP, or otherwise not understood.
    pub const UNPARSED: u32 = 6;
    /// Number of counters.
    pub const COUNT: u32 = 7;
    /// Names, for display, in index order.
    pub const NAMES: [&str; COUNT as usize] = [
        "passed",
        "dropped",
        "tarpitted",
        "aborted",
        "allowlisted",
        "expired",
        "unparsed",
    ];
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all these are #[repr(C)], contain only integers and have no padding
    // (checked by the size asserts below).
    unsafe impl aya::Pod for super::Ipv4Key {}
    unsafe impl aya::Pod for super::Ipv4PrefixKey {}
    unsafe impl aya::Pod for super::Ipv6Key {}
    unsafe impl aya::Pod for super::BanEntry {}
    unsafe impl aya::Pod for super::AllowEntry {}
    unsafe impl aya::Pod for super::Settings {}
}

const _: () = {
    assert!(core::mem::size_of::<Ipv4Key>() == 4);
    assert!(core::mem::size_of::<Ipv4PrefixKey>() == 8);
    assert!(core::mem::size_of::<Ipv6Key>() == 16);
    assert!(core::mem::size_of::<BanEntry>() == 40);
    assert!(core::mem::align_of::<BanEntry>() == 8);
    assert!(core::mem::size_of::<AllowEntry>() == 4);
    assert!(core::mem::size_of::<Settings>() == 16);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn ban_entry_fields_sit_where_the_kernel_program_reads_them() {
        assert_eq!(offset_of!(BanEntry, expires_ns), 0);
        assert_eq!(offset_of!(BanEntry, dropped), 8);
        assert_eq!(offset_of!(BanEntry, tarpitted), 16);
        assert_eq!(offset_of!(BanEntry, last_seen_ns), 24);
        assert_eq!(offset_of!(BanEntry, blocktype), 32);
        assert_eq!(offset_of!(BanEntry, flags), 36);
    }

    #[test]
    fn settings_fields_sit_at_fixed_offsets() {
        assert_eq!(offset_of!(Settings, prefix_bans_v4), 0);
        assert_eq!(offset_of!(Settings, prefix_bans_v6), 4);
        assert_eq!(offset_of!(Settings, tarpit_secret), 8);
    }

    #[test]
    fn expiry_treats_zero_as_permanent_and_the_deadline_as_expired() {
        let permanent = BanEntry::default();
        assert!(!permanent.expired_at(u64::MAX));
        let timed = BanEntry {
            expires_ns: 100,
            ..BanEntry::default()
        };
        assert!(!timed.expired_at(99));
        assert!(timed.expired_at(100));
        assert!(timed.expired_at(101));
    }

    #[test]
    fn blocktype_round_trips_and_rejects_unknown_values() {
        assert_eq!(
            BlockType::from_u32(BlockType::Drop as u32),
            Some(BlockType::Drop)
        );
        assert_eq!(
            BlockType::from_u32(BlockType::Tarpit as u32),
            Some(BlockType::Tarpit)
        );
        assert_eq!(BlockType::from_u32(2), None);
    }

    #[test]
    fn tarpit_sequence_numbers_depend_on_every_part_of_the_tuple() {
        let base = tarpit_isn(1, 2, 3, 4, 5);
        assert_eq!(base, tarpit_isn(1, 2, 3, 4, 5), "deterministic");
        for other in [
            tarpit_isn(9, 2, 3, 4, 5),
            tarpit_isn(1, 9, 3, 4, 5),
            tarpit_isn(1, 2, 9, 4, 5),
            tarpit_isn(1, 2, 3, 9, 5),
            tarpit_isn(1, 2, 3, 4, 9),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(fold_v6(&[0; 16]), fold_v6(&[1; 16]));
    }

    #[test]
    fn map_names_fit_the_kernel_object_name_limit() {
        for name in map_name::ALL {
            assert!(
                name.len() <= 15,
                "{name} is longer than BPF_OBJ_NAME_LEN - 1"
            );
        }
    }
}
