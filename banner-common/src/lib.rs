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
    pub const SCOPES: &str = "scopes";
    /// Every map the controller pins, in a stable order.
    pub const ALL: [&str; 9] = [
        BANS_V4, BANS_V6, PREFIX_V4, PREFIX_V6, ALLOW_V4, ALLOW_V6, COUNTERS, SETTINGS, SCOPES,
    ];
}

/// What kind of kernel map each contract map is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    Hash,
    LpmTrie,
    Array,
    PerCpuArray,
}

/// How many entries a map holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapCapacity {
    /// Always this many.
    Fixed(u32),
    /// The configured exact-ban capacity (`max_exact_bans`, default
    /// [`DEFAULT_MAX_EXACT_BANS`]).
    ExactBans,
    /// The configured prefix-ban capacity (default [`DEFAULT_MAX_PREFIX_BANS`]).
    PrefixBans,
}

/// One map of the contract: its name, kind and the byte sizes the kernel checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: &'static str,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub capacity: MapCapacity,
}

/// An LPM trie's key: the prefix length word, then the data.
const fn lpm_key<T>() -> u32 {
    4 + core::mem::size_of::<T>() as u32
}

const fn size<T>() -> u32 {
    core::mem::size_of::<T>() as u32
}

/// Every map, in [`map_name::ALL`]'s order: the one statement of their shapes, read by the
/// controller to create, check and reuse pinned maps, and checked against the kernel
/// program's own declarations by the asserts in banner-ebpf.
pub const MAPS: [MapSpec; 9] = [
    MapSpec {
        name: map_name::BANS_V4,
        kind: MapKind::Hash,
        key_size: size::<Ipv4Key>(),
        value_size: size::<BanEntry>(),
        capacity: MapCapacity::ExactBans,
    },
    MapSpec {
        name: map_name::BANS_V6,
        kind: MapKind::Hash,
        key_size: size::<Ipv6Key>(),
        value_size: size::<BanEntry>(),
        capacity: MapCapacity::ExactBans,
    },
    MapSpec {
        name: map_name::PREFIX_V4,
        kind: MapKind::LpmTrie,
        key_size: lpm_key::<Ipv4PrefixKey>(),
        value_size: size::<BanEntry>(),
        capacity: MapCapacity::PrefixBans,
    },
    MapSpec {
        name: map_name::PREFIX_V6,
        kind: MapKind::LpmTrie,
        key_size: lpm_key::<Ipv6Key>(),
        value_size: size::<BanEntry>(),
        capacity: MapCapacity::PrefixBans,
    },
    MapSpec {
        name: map_name::ALLOW_V4,
        kind: MapKind::LpmTrie,
        key_size: lpm_key::<Ipv4Key>(),
        value_size: size::<AllowEntry>(),
        capacity: MapCapacity::Fixed(MAX_ALLOW_ENTRIES),
    },
    MapSpec {
        name: map_name::ALLOW_V6,
        kind: MapKind::LpmTrie,
        key_size: lpm_key::<Ipv6Key>(),
        value_size: size::<AllowEntry>(),
        capacity: MapCapacity::Fixed(MAX_ALLOW_ENTRIES),
    },
    MapSpec {
        name: map_name::COUNTERS,
        kind: MapKind::PerCpuArray,
        key_size: 4,
        value_size: 8,
        capacity: MapCapacity::Fixed(counter::COUNT),
    },
    MapSpec {
        name: map_name::SETTINGS,
        kind: MapKind::Array,
        key_size: 4,
        value_size: size::<Settings>(),
        capacity: MapCapacity::Fixed(1),
    },
    MapSpec {
        name: map_name::SCOPES,
        kind: MapKind::Array,
        key_size: 4,
        value_size: size::<PortSet>(),
        capacity: MapCapacity::Fixed(MAX_SCOPES),
    },
];

/// The contract's entry for a map name.
pub fn map_spec(name: &str) -> Option<&'static MapSpec> {
    MAPS.iter().find(|m| m.name.as_bytes() == name.as_bytes())
}

/// Byte equality in a `const` context: lets the kernel program check that the names its
/// map attributes must spell out (the macro takes only a literal) are the contract's.
pub const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Name of the XDP program function in the object file (Ethernet interfaces).
pub const PROGRAM_NAME: &str = "banner_xdp";
/// The same program for interfaces without a link-layer header (tun, WireGuard, PPP, ipip).
pub const PROGRAM_NAME_L3: &str = "banner_xdp_l3";

/// Default capacity of each exact-address ban map (IPv4 and IPv6 separately).
pub const DEFAULT_MAX_EXACT_BANS: u32 = 1_000_000;
/// Default capacity of each prefix ban trie.
pub const DEFAULT_MAX_PREFIX_BANS: u32 = 65_536;
/// Capacity of each allowlist trie.
pub const MAX_ALLOW_ENTRIES: u32 = 16_384;
/// Slots of the port-scope array. Slot 0 is never used: a ban's scope 0 means every port.
/// Each slot is 16 KiB, allocated up front by the kernel, so there are few: one per distinct
/// set of ports the jails ban (their unions included), which is a handful in practice.
pub const MAX_SCOPES: u32 = 32;

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
    /// 0: the ban covers every packet of the source. Else the slot of `scopes` holding the
    /// ports it covers; packets to other ports pass.
    pub scope: u32,
}

/// The ports a scoped ban covers: one bit per port (bit `p % 64` of word `p / 64`), for TCP
/// and for UDP. A bitmap, not a list of ranges, so the check is one load whatever the scope.
/// Fragments of a scoped source's packets are enforced as if in scope (only the first carries
/// ports); other protocols pass.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSet {
    pub tcp: [u64; 1024],
    pub udp: [u64; 1024],
}

impl PortSet {
    pub const EMPTY: PortSet = PortSet {
        tcp: [0; 1024],
        udp: [0; 1024],
    };

    /// Does the set hold `port` of protocol `tcp` (else UDP)?
    #[inline(always)]
    pub fn holds(&self, tcp: bool, port: u16) -> bool {
        let words = if tcp { &self.tcp } else { &self.udp };
        words[(port >> 6) as usize] & (1u64 << (port & 63)) != 0
    }
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
    /// The 128-bit SipHash key of the tarpit's sequence numbers (see [`tarpit_isn_v4`]):
    /// derived from the 4-tuple, so nothing is stored per connection, and keyed, so one
    /// SYN/ACK reveals nothing that predicts another.
    pub tarpit_key: [u64; 2],
    /// Reserved, zero.
    pub flags: u32,
    /// Reserved, zero. Explicit so the struct has no implicit padding.
    pub pad: u32,
}

/// The tarpit's SYN/ACK window: small, so the client trickles data.
pub const TARPIT_SYN_WINDOW: u16 = 5;
/// TTL / hop limit of tarpit replies.
pub const TARPIT_TTL: u8 = 64;

/// One SipHash round (SipHash-2-4 as in Aumasson and Bernstein's paper).
#[inline(always)]
const fn sip_round(mut v: [u64; 4]) -> [u64; 4] {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
    v
}

/// SipHash-2-4 of `N` little-endian 64-bit words (a message of `8 * N` bytes) under `key`:
/// a keyed PRF, so outputs seen from outside say nothing of the key or of other outputs.
#[inline(always)]
pub const fn siphash24<const N: usize>(key: &[u64; 2], words: &[u64; N]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let mut i = 0;
    while i < N {
        v[3] ^= words[i];
        v = sip_round(sip_round(v));
        v[0] ^= words[i];
        i += 1;
    }
    // The last block holds only the message length (a multiple of 8) in its top byte.
    let last = ((N as u64 * 8) & 0xff) << 56;
    v[3] ^= last;
    v = sip_round(sip_round(v));
    v[0] ^= last;
    v[2] ^= 0xff;
    v = sip_round(sip_round(sip_round(sip_round(v))));
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[inline(always)]
const fn ports_word(client_port: u16, server_port: u16) -> u64 {
    ((client_port as u64) << 16) | server_port as u64
}

/// The tarpit's initial sequence number for an IPv4 connection: SipHash of its 4-tuple under
/// the tarpit key. The kernel program and the tests share it.
#[inline(always)]
pub const fn tarpit_isn_v4(
    key: &[u64; 2],
    client: [u8; 4],
    server: [u8; 4],
    client_port: u16,
    server_port: u16,
) -> u32 {
    let addrs = ((u32::from_be_bytes(client) as u64) << 32) | u32::from_be_bytes(server) as u64;
    siphash24(key, &[addrs, ports_word(client_port, server_port)]) as u32
}

/// As [`tarpit_isn_v4`], for IPv6: the whole addresses go into the hash.
#[inline(always)]
pub const fn tarpit_isn_v6(
    key: &[u64; 2],
    client: &[u8; 16],
    server: &[u8; 16],
    client_port: u16,
    server_port: u16,
) -> u32 {
    let c = u128::from_be_bytes(*client);
    let s = u128::from_be_bytes(*server);
    siphash24(
        key,
        &[
            (c >> 64) as u64,
            c as u64,
            (s >> 64) as u64,
            s as u64,
            ports_word(client_port, server_port),
        ],
    ) as u32
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
    /// Names, in index order: the keys of `banner stats --json` and of nftables' named
    /// counters. The one list of counters; everything else indexes it.
    pub const NAMES: [&str; COUNT as usize] = [
        "passed",
        "dropped",
        "tarpitted",
        "aborted",
        "allowlisted",
        "expired",
        "unparsed",
    ];
    /// What each counts, in words, for tables (same order).
    pub const LABELS: [&str; COUNT as usize] = [
        "packets passed",
        "packets dropped",
        "packets tarpitted",
        "aborted",
        "allowlisted hits",
        "expired-ban hits",
        "frames not parsed",
    ];

    /// The index of a counter by name.
    pub fn index_of(name: &str) -> Option<u32> {
        NAMES.iter().position(|n| *n == name).map(|i| i as u32)
    }
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
    unsafe impl aya::Pod for super::PortSet {}
}

const _: () = {
    assert!(core::mem::size_of::<Ipv4Key>() == 4);
    assert!(core::mem::size_of::<Ipv4PrefixKey>() == 8);
    assert!(core::mem::size_of::<Ipv6Key>() == 16);
    assert!(core::mem::size_of::<BanEntry>() == 40);
    assert!(core::mem::align_of::<BanEntry>() == 8);
    assert!(core::mem::size_of::<AllowEntry>() == 4);
    assert!(core::mem::size_of::<Settings>() == 32);
    assert!(core::mem::size_of::<PortSet>() == 16_384);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn the_map_table_lists_every_map_once_in_order() {
        assert_eq!(MAPS.len(), map_name::ALL.len());
        for (spec, name) in MAPS.iter().zip(map_name::ALL) {
            assert_eq!(spec.name, name);
            assert_eq!(map_spec(name), Some(spec));
            assert!(
                name.len() <= 15,
                "{name}: the kernel cuts object names at 15"
            );
        }
        assert!(map_spec("nosuch").is_none());
        assert!(same_name("bans_v4", map_name::BANS_V4) && !same_name("bans_v", "bans_v4"));
        // An LPM key is the prefix length word, then the address.
        assert_eq!(map_spec(map_name::PREFIX_V4).map(|m| m.key_size), Some(12));
        assert_eq!(map_spec(map_name::ALLOW_V6).map(|m| m.key_size), Some(20));
    }

    #[test]
    fn ban_entry_fields_sit_where_the_kernel_program_reads_them() {
        assert_eq!(offset_of!(BanEntry, expires_ns), 0);
        assert_eq!(offset_of!(BanEntry, dropped), 8);
        assert_eq!(offset_of!(BanEntry, tarpitted), 16);
        assert_eq!(offset_of!(BanEntry, last_seen_ns), 24);
        assert_eq!(offset_of!(BanEntry, blocktype), 32);
        assert_eq!(offset_of!(BanEntry, scope), 36);
    }

    #[test]
    fn settings_fields_sit_at_fixed_offsets() {
        assert_eq!(offset_of!(Settings, prefix_bans_v4), 0);
        assert_eq!(offset_of!(Settings, prefix_bans_v6), 4);
        assert_eq!(offset_of!(Settings, tarpit_key), 8);
        assert_eq!(offset_of!(Settings, flags), 24);
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
    fn siphash_matches_the_reference_vectors() {
        // The paper's test key 00 01 .. 0f; the messages are 00 01 .. (8N-1), whose outputs are
        // rows 8 and 16 of the reference implementation's vectors.h (little-endian).
        let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        let m1 = [0x0706_0504_0302_0100u64];
        assert_eq!(siphash24(&key, &m1), 0x93f5_f579_9a93_2462);
        let m2 = [0x0706_0504_0302_0100u64, 0x0f0e_0d0c_0b0a_0908];
        assert_eq!(siphash24(&key, &m2), 0x3f2a_cc7f_57c2_9bdb);
    }

    #[test]
    fn tarpit_sequence_numbers_depend_on_every_part_of_the_tuple_and_the_key() {
        let k = [1, 2];
        let base = tarpit_isn_v4(&k, [1, 2, 3, 4], [5, 6, 7, 8], 3, 4);
        assert_eq!(base, tarpit_isn_v4(&k, [1, 2, 3, 4], [5, 6, 7, 8], 3, 4));
        for other in [
            tarpit_isn_v4(&k, [1, 2, 3, 9], [5, 6, 7, 8], 3, 4),
            tarpit_isn_v4(&k, [1, 2, 3, 4], [5, 6, 7, 9], 3, 4),
            tarpit_isn_v4(&k, [1, 2, 3, 4], [5, 6, 7, 8], 9, 4),
            tarpit_isn_v4(&k, [1, 2, 3, 4], [5, 6, 7, 8], 3, 9),
            tarpit_isn_v4(&[1, 3], [1, 2, 3, 4], [5, 6, 7, 8], 3, 4),
            tarpit_isn_v4(&[3, 2], [1, 2, 3, 4], [5, 6, 7, 8], 3, 4),
        ] {
            assert_ne!(base, other);
        }
        let a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = a;
        b[7] = 1; // differs only in a word a 32-bit fold would have cancelled
        assert_ne!(
            tarpit_isn_v6(&k, &a, &b, 1, 2),
            tarpit_isn_v6(&k, &b, &b, 1, 2)
        );
    }

    #[test]
    fn a_port_set_holds_exactly_its_bits() {
        let mut set = PortSet::EMPTY;
        set.tcp[0] = 1 << 22;
        set.tcp[1023] = 1 << 63;
        set.udp[0] = 1 << 53;
        assert!(set.holds(true, 22) && set.holds(true, 65_535) && set.holds(false, 53));
        assert!(!set.holds(false, 22) && !set.holds(true, 53) && !set.holds(true, 23));
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
