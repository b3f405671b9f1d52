//! The kernel program on made-up frames (BPF_PROG_TEST_RUN): verdicts for every shape of frame
//! the parser must handle, allowlist precedence, expiry, prefixes, counters and map limits.

use banner_common::counter;
use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use banner::{
    addr::IpPrefix,
    backend::{Backend, BackendError},
    model::{BlockSpec, BlockType},
};
use tests::{packet::*, Loaded, XDP_DROP, XDP_PASS};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn in_an_hour() -> Option<SystemTime> {
    Some(SystemTime::now() + Duration::from_secs(3600))
}

const HOST4: &str = "198.18.0.1";
const HOST6: &str = "2001:db8::1";

#[test]
fn ipv4_source_is_dropped_only_while_banned() {
    let mut x = Loaded::new("v4", 1024);
    let banned = udp_frame(ip("198.18.1.7"), ip(HOST4));
    let clean = udp_frame(ip("198.18.1.8"), ip(HOST4));
    assert_eq!(x.verdict(&banned), XDP_PASS);
    x.ban("198.18.1.7", in_an_hour());
    assert_eq!(x.verdict(&banned), XDP_DROP);
    assert_eq!(x.verdict(&clean), XDP_PASS);
    x.backend.unblock(&["198.18.1.7".parse().unwrap()]).unwrap();
    assert_eq!(x.verdict(&banned), XDP_PASS);
}

#[test]
fn ipv6_source_is_dropped_while_banned() {
    let mut x = Loaded::new("v6", 1024);
    let banned = udp_frame(ip("2001:db8:1::7"), ip(HOST6));
    let clean = udp_frame(ip("2001:db8:1::8"), ip(HOST6));
    x.ban("2001:db8:1::7", in_an_hour());
    assert_eq!(x.verdict(&banned), XDP_DROP);
    assert_eq!(x.verdict(&clean), XDP_PASS);
}

#[test]
fn one_and_two_vlan_tags_are_seen_through() {
    let mut x = Loaded::new("vlan", 1024);
    x.ban("198.18.1.7", in_an_hour());
    x.ban("2001:db8:1::7", in_an_hour());
    let udp4 = udp(ip("198.18.1.7"), ip(HOST4), 1, 2, b"x");
    let udp6 = udp(ip("2001:db8:1::7"), ip(HOST6), 1, 2, b"x");
    for vlans in [
        vec![(ETH_P_8021Q, 10)],
        vec![(ETH_P_8021AD, 100), (ETH_P_8021Q, 10)],
    ] {
        let f4 = frame(ip("198.18.1.7"), ip(HOST4), &vlans, PROTO_UDP, &udp4);
        let f6 = frame(ip("2001:db8:1::7"), ip(HOST6), &vlans, PROTO_UDP, &udp6);
        assert_eq!(x.verdict(&f4), XDP_DROP, "v4 behind {vlans:?}");
        assert_eq!(x.verdict(&f6), XDP_DROP, "v6 behind {vlans:?}");
    }
    // A clean source behind two tags passes.
    let clean = udp(ip("198.18.1.9"), ip(HOST4), 1, 2, b"x");
    let f = frame(
        ip("198.18.1.9"),
        ip(HOST4),
        &[(ETH_P_8021AD, 1), (ETH_P_8021Q, 2)],
        PROTO_UDP,
        &clean,
    );
    assert_eq!(x.verdict(&f), XDP_PASS);
}

#[test]
fn ipv4_options_and_ipv6_extension_headers_do_not_hide_the_source() {
    let mut x = Loaded::new("ext", 1024);
    x.ban("198.18.1.7", in_an_hour());
    x.ban("2001:db8:1::7", in_an_hour());
    // IPv4 with 8 bytes of options (two NOPs + a 4-byte option + padding).
    let seg = tcp(ip("198.18.1.7"), ip(HOST4), 1, 22, 1, 0, TCP_SYN, 1000, b"");
    let p = ipv4(
        [198, 18, 1, 7],
        [198, 18, 0, 1],
        PROTO_TCP,
        &seg,
        &[1, 1, 0x94, 4, 0, 0, 0, 0],
        0,
    );
    assert_eq!(
        x.verdict(&eth(SERVER_MAC, CLIENT_MAC, &[], ETH_P_IPV4, &p)),
        XDP_DROP
    );
    // IPv6 with hop-by-hop and destination options before TCP.
    let src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let dst6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let seg6 = tcp(
        ip("2001:db8:1::7"),
        ip(HOST6),
        1,
        22,
        1,
        0,
        TCP_SYN,
        1000,
        b"",
    );
    let p6 = ipv6(
        src6,
        dst6,
        PROTO_TCP,
        &seg6,
        &[
            (0, vec![0, 0, 1, 4, 0, 0, 0, 0]),
            (60, vec![0, 0, 1, 4, 0, 0, 0, 0]),
        ],
    );
    assert_eq!(
        x.verdict(&eth(SERVER_MAC, CLIENT_MAC, &[], ETH_P_IPV6, &p6)),
        XDP_DROP
    );
}

#[test]
fn truncated_garbage_and_foreign_frames_pass_and_are_counted() {
    let mut x = Loaded::new("junk", 1024);
    x.ban("198.18.1.7", in_an_hour());
    let full = udp_frame(ip("198.18.1.7"), ip(HOST4));
    let before = x.backend.counters().unwrap().get(counter::UNPARSED);
    // Cut inside the IPv4 header (before the source address).
    assert_eq!(x.verdict(&full[..14 + 10]), XDP_PASS);
    // Ethernet header only.
    assert_eq!(x.verdict(&full[..14]), XDP_PASS);
    // A VLAN tag whose inner header is missing.
    assert_eq!(
        x.verdict(&eth(
            SERVER_MAC,
            CLIENT_MAC,
            &[(ETH_P_8021Q, 5)],
            ETH_P_IPV4,
            &[]
        )),
        XDP_PASS
    );
    // IPv4 ethertype but a version-6 header, and an IHL below 5.
    let mut bad_version = full.clone();
    bad_version[14] = 0x65;
    assert_eq!(x.verdict(&bad_version), XDP_PASS);
    let mut bad_ihl = full.clone();
    bad_ihl[14] = 0x44;
    assert_eq!(x.verdict(&bad_ihl), XDP_PASS);
    // ARP and pseudo-random bytes.
    assert_eq!(
        x.verdict(&eth(SERVER_MAC, CLIENT_MAC, &[], ETH_P_ARP, &[0u8; 28])),
        XDP_PASS
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..64)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    assert_eq!(x.verdict(&garbage), XDP_PASS);
    let after = x.backend.counters().unwrap();
    assert!(
        after.get(counter::UNPARSED) >= before + 7,
        "unparsed {} -> {}",
        before,
        after.get(counter::UNPARSED)
    );
    assert_eq!(after.get(counter::ABORTED), 0);
}

#[test]
fn the_allowlist_wins_over_a_ban() {
    let mut x = Loaded::new("allow", 1024);
    x.ban("198.18.1.7", in_an_hour());
    x.ban("2001:db8:1::/64", in_an_hour());
    x.backend
        .set_allowlist(&[
            "198.18.1.0/24".parse().unwrap(),
            "2001:db8:1::7".parse().unwrap(),
        ])
        .unwrap();
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.7"), ip(HOST4))), XDP_PASS);
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:1::7"), ip(HOST6))),
        XDP_PASS
    );
    // The rest of the banned /64 is not allowlisted.
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:1::8"), ip(HOST6))),
        XDP_DROP
    );
    assert!(x.backend.counters().unwrap().get(counter::ALLOWLISTED) >= 2);
    // Shrinking the allowlist takes effect.
    x.backend.set_allowlist(&[]).unwrap();
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.7"), ip(HOST4))), XDP_DROP);
}

#[test]
fn an_expired_ban_is_not_enforced_even_if_never_removed() {
    let mut x = Loaded::new("expired", 1024);
    x.ban(
        "198.18.1.7",
        Some(SystemTime::now() - Duration::from_secs(5)),
    );
    x.ban(
        "2001:db8:1::7",
        Some(SystemTime::now() + Duration::from_millis(300)),
    );
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.7"), ip(HOST4))), XDP_PASS);
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:1::7"), ip(HOST6))),
        XDP_DROP
    );
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:1::7"), ip(HOST6))),
        XDP_PASS
    );
    assert!(x.backend.counters().unwrap().get(counter::EXPIRED) >= 2);
    // A permanent ban has no deadline.
    x.ban("198.18.1.9", None);
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.9"), ip(HOST4))), XDP_DROP);
}

#[test]
fn prefix_bans_cover_their_range_only() {
    let mut x = Loaded::new("prefix", 1024);
    x.ban("198.18.5.0/24", in_an_hour());
    x.ban("2001:db8:5::/64", in_an_hour());
    assert_eq!(
        x.verdict(&udp_frame(ip("198.18.5.77"), ip(HOST4))),
        XDP_DROP
    );
    assert_eq!(
        x.verdict(&udp_frame(ip("198.18.6.77"), ip(HOST4))),
        XDP_PASS
    );
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:5::abcd"), ip(HOST6))),
        XDP_DROP
    );
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:6::abcd"), ip(HOST6))),
        XDP_PASS
    );
    // Removing the last prefix turns the trie lookup off again, and nothing is dropped.
    x.backend
        .unblock(&[
            "198.18.5.0/24".parse().unwrap(),
            "2001:db8:5::/64".parse().unwrap(),
        ])
        .unwrap();
    assert_eq!(
        x.verdict(&udp_frame(ip("198.18.5.77"), ip(HOST4))),
        XDP_PASS
    );
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:5::abcd"), ip(HOST6))),
        XDP_PASS
    );
}

#[test]
fn drops_are_counted_per_ban_and_in_total() {
    let mut x = Loaded::new("hits", 1024);
    x.ban("198.18.1.7", in_an_hour());
    let before = x.backend.counters().unwrap();
    let f = udp_frame(ip("198.18.1.7"), ip(HOST4));
    for _ in 0..5 {
        assert_eq!(x.verdict(&f), XDP_DROP);
    }
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.8"), ip(HOST4))), XDP_PASS);
    let after = x.backend.counters().unwrap();
    assert_eq!(
        after.get(counter::DROPPED) - before.get(counter::DROPPED),
        5
    );
    assert_eq!(after.get(counter::PASSED) - before.get(counter::PASSED), 1);
    let listed = x.backend.list().unwrap();
    let ban = listed
        .iter()
        .find(|e| e.target == "198.18.1.7".parse::<IpPrefix>().unwrap())
        .unwrap();
    assert_eq!(ban.hits.dropped, 5);
    assert!(ban.hits.last_seen.is_some());
    // What `banner list` joins: the bans that stopped a packet, exact or prefix, v4 or v6,
    // and only those.
    x.ban("2001:db8:7::1", in_an_hour());
    x.ban("198.18.9.0/24", in_an_hour());
    x.ban("198.18.8.8", in_an_hour());
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:7::1"), ip(HOST6))),
        XDP_DROP
    );
    for _ in 0..2 {
        assert_eq!(
            x.verdict(&udp_frame(ip("198.18.9.200"), ip(HOST4))),
            XDP_DROP
        );
    }
    let mut hits: Vec<(String, u64)> = x
        .backend
        .hits()
        .unwrap()
        .into_iter()
        .map(|(t, h)| {
            assert!(h.last_seen.is_some());
            (t.to_string(), h.dropped)
        })
        .collect();
    hits.sort();
    assert_eq!(
        hits,
        [
            ("198.18.1.7".to_string(), 5),
            ("198.18.9.0/24".to_string(), 2),
            ("2001:db8:7::1".to_string(), 1)
        ]
    );
    // Re-banning (extending) keeps the hit count.
    x.ban(
        "198.18.1.7",
        Some(SystemTime::now() + Duration::from_secs(7200)),
    );
    let ban = x
        .backend
        .list()
        .unwrap()
        .into_iter()
        .find(|e| e.target == ban.target)
        .unwrap();
    assert_eq!(ban.hits.dropped, 5);
}

/// One block call of more single addresses than a batched write takes at once (65,536), IPv4
/// and IPv6, with an address already banned among them: every new one is enforced, and the
/// one already there keeps its hit count (it is merged, not overwritten). The list, read in
/// batches of 65,536 too (two for the IPv6 map), holds each ban once.
#[test]
fn a_large_block_is_written_in_batches_and_keeps_what_a_ban_counted() {
    let mut x = Loaded::new("batch", 200_000);
    x.ban("198.18.1.7", in_an_hour());
    let f = udp_frame(ip("198.18.1.7"), ip(HOST4));
    for _ in 0..3 {
        assert_eq!(x.verdict(&f), XDP_DROP);
    }
    let later = Some(SystemTime::now() + Duration::from_secs(7200));
    let spec = |target: IpPrefix| BlockSpec {
        target,
        blocktype: BlockType::Drop,
        expires_at: later,
        scope: None,
    };
    let mut batch: Vec<BlockSpec> = (0..60_000u32)
        .map(|i| {
            spec(IpPrefix::host(IpAddr::from([
                198,
                19,
                (i / 250) as u8,
                (i % 250 + 1) as u8,
            ])))
        })
        .collect();
    batch.push(spec("198.18.1.7".parse().unwrap()));
    batch.extend((0..70_000u32).map(|i| {
        spec(IpPrefix::host(
            format!("2001:db8:ff00::{:x}:{:x}", (i + 1) >> 16, (i + 1) & 0xffff)
                .parse::<IpAddr>()
                .unwrap(),
        ))
    }));
    x.backend.block(&batch).unwrap();
    let listed = x.backend.list().unwrap();
    assert_eq!(listed.len(), 130_001);
    let listed_targets: std::collections::BTreeSet<IpPrefix> =
        listed.iter().map(|e| e.target).collect();
    let banned: std::collections::BTreeSet<IpPrefix> = batch.iter().map(|b| b.target).collect();
    assert_eq!(listed_targets, banned, "each ban listed once");
    let kept = listed
        .iter()
        .find(|e| e.target == "198.18.1.7".parse::<IpPrefix>().unwrap())
        .unwrap();
    assert_eq!(kept.hits.dropped, 3, "the merged ban lost its count");
    let hits = x.backend.hits().unwrap();
    assert_eq!(hits.len(), 1, "only the ban that stopped packets: {hits:?}");
    assert_eq!((hits[0].0, hits[0].1.dropped), (kept.target, 3));
    for probe in ["198.19.0.1", "198.19.239.250", "198.18.1.7"] {
        assert_eq!(
            x.verdict(&udp_frame(ip(probe), ip(HOST4))),
            XDP_DROP,
            "{probe}"
        );
    }
    for probe in ["2001:db8:ff00::1", "2001:db8:ff00::1:1170"] {
        assert_eq!(
            x.verdict(&udp_frame(ip(probe), ip(HOST6))),
            XDP_DROP,
            "{probe}"
        );
    }
    assert_eq!(
        x.verdict(&udp_frame(ip("198.19.240.1"), ip(HOST4))),
        XDP_PASS
    );
}

/// A batched write that fills the map stops at the first ban with no room, names the map,
/// and keeps what went in before it.
#[test]
fn a_batch_into_a_full_map_names_the_map_and_keeps_what_fit() {
    let mut x = Loaded::new("batchfull", 100);
    let batch: Vec<BlockSpec> = (0..200u32)
        .map(|i| BlockSpec {
            target: IpPrefix::host(IpAddr::from([198, 19, 0, (i % 250 + 1) as u8])),
            blocktype: BlockType::Drop,
            expires_at: in_an_hour(),
            scope: None,
        })
        .collect();
    let err = x.backend.block(&batch).unwrap_err();
    assert!(
        matches!(err, BackendError::Full { capacity: 100, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("bans_v4 map is full"), "{err}");
    assert_eq!(x.backend.list().unwrap().len(), 100);
    assert_eq!(x.verdict(&udp_frame(ip("198.19.0.1"), ip(HOST4))), XDP_DROP);
}

#[test]
fn a_full_map_refuses_the_new_ban_and_evicts_nothing() {
    let mut x = Loaded::new("full", 2);
    x.ban("198.18.1.1", in_an_hour());
    x.ban("198.18.1.2", in_an_hour());
    let err = x
        .backend
        .block(&[BlockSpec {
            target: "198.18.1.3".parse().unwrap(),
            blocktype: BlockType::Drop,
            expires_at: in_an_hour(),
            scope: None,
        }])
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Full { capacity: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("bans_v4 map is full"), "{err}");
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.1"), ip(HOST4))), XDP_DROP);
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.2"), ip(HOST4))), XDP_DROP);
    assert_eq!(x.verdict(&udp_frame(ip("198.18.1.3"), ip(HOST4))), XDP_PASS);
}

#[test]
fn bpftool_prints_named_fields_of_pinned_maps() {
    let mut x = Loaded::new("btf", 1024);
    x.ban("198.18.71.2", in_an_hour());
    let out = tests::sh(
        "bpftool",
        &[
            "map",
            "dump",
            "pinned",
            &x.dir
                .join(banner_common::map_name::BANS_V4)
                .to_string_lossy(),
        ],
    );
    assert!(out.contains("\"addr\": [198,18,71,2"), "{out}");
    for field in [
        "expires_ns",
        "dropped",
        "tarpitted",
        "last_seen_ns",
        "blocktype",
    ] {
        assert!(out.contains(field), "bpftool output lacks {field}: {out}");
    }
}

#[test]
fn an_expired_exact_ban_does_not_hide_a_live_prefix_ban() {
    // After kill -9 nobody removes an exact ban past its deadline; the /24 around it must
    // still hold the address (issue 9, item 7).
    let mut x = Loaded::new("exact-under-prefix", 1024);
    x.ban("198.18.5.0/24", in_an_hour());
    x.ban("2001:db8:5::/64", in_an_hour());
    let past = Some(SystemTime::now() - Duration::from_secs(5));
    x.ban("198.18.5.7", past);
    x.ban("2001:db8:5::7", past);
    assert_eq!(x.verdict(&udp_frame(ip("198.18.5.7"), ip(HOST4))), XDP_DROP);
    assert_eq!(
        x.verdict(&udp_frame(ip("2001:db8:5::7"), ip(HOST6))),
        XDP_DROP
    );
    // Without the prefix, the expired exact entry lets the address through, counted expired.
    x.backend
        .unblock(&["198.18.5.0/24".parse().unwrap()])
        .unwrap();
    let before = x.backend.counters().unwrap().get(counter::EXPIRED);
    assert_eq!(x.verdict(&udp_frame(ip("198.18.5.7"), ip(HOST4))), XDP_PASS);
    assert_eq!(
        x.backend.counters().unwrap().get(counter::EXPIRED),
        before + 1
    );
}

/// The IP packet of a frame built by `udp_frame`: what an L3 device (tun, WireGuard, ipip)
/// hands XDP.
fn l3_packet(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    udp_frame(src, dst)[14..].to_vec()
}

#[test]
fn frames_of_interfaces_without_a_link_header_are_read_from_the_ip_header() {
    use banner::backend::xdp::LinkLayer;
    let mut x = Loaded::new("l3", 1024);
    x.ban("198.18.1.7", in_an_hour());
    x.ban("2001:db8:1::7", in_an_hour());
    let run = |x: &mut Loaded, f: &[u8]| {
        x.backend
            .test_run_on(LinkLayer::None, f, 1)
            .expect("test_run")
            .action
    };
    assert_eq!(
        run(&mut x, &l3_packet(ip("198.18.1.7"), ip(HOST4))),
        XDP_DROP
    );
    assert_eq!(
        run(&mut x, &l3_packet(ip("2001:db8:1::7"), ip(HOST6))),
        XDP_DROP
    );
    assert_eq!(
        run(&mut x, &l3_packet(ip("198.18.1.8"), ip(HOST4))),
        XDP_PASS
    );
    // The Ethernet program on the same bytes sees no IP (the L3 device's case before the fix).
    let before = x.backend.counters().unwrap().get(counter::UNPARSED);
    assert_eq!(x.verdict(&l3_packet(ip("198.18.1.7"), ip(HOST4))), XDP_PASS);
    assert_eq!(
        x.backend.counters().unwrap().get(counter::UNPARSED),
        before + 1
    );
    // Garbage with no IP version passes untouched.
    assert_eq!(run(&mut x, &[0x00; 40]), XDP_PASS);
    // Too short for an IPv4 header (test_run needs at least 14 bytes).
    assert_eq!(run(&mut x, &[0x45; 16]), XDP_PASS);
}

#[test]
fn device_types_pick_the_program_or_are_refused() {
    use banner::backend::xdp::LinkLayer;
    assert_eq!(LinkLayer::of_arphrd(1), Some(LinkLayer::Ethernet));
    for l3 in [65534, 768, 769, 512, 776] {
        assert_eq!(LinkLayer::of_arphrd(l3), Some(LinkLayer::None), "{l3}");
    }
    // InfiniBand (32) and raw 802.11 with radiotap (803) have headers we do not read.
    assert_eq!(LinkLayer::of_arphrd(32), None);
    assert_eq!(LinkLayer::of_arphrd(803), None);
}

#[test]
fn a_port_scoped_ban_stops_only_its_ports_and_protocols() {
    let mut x = Loaded::new("scope", 1024);
    let src = ip("198.18.1.9");
    let host = ip(HOST4);
    let tcp_to = |port| {
        frame(
            src,
            host,
            &[],
            PROTO_TCP,
            &tcp(src, host, 41000, port, 1, 0, 0x02, 64240, b""),
        )
    };
    let udp_to = |port| {
        frame(
            src,
            host,
            &[],
            PROTO_UDP,
            &udp(src, host, 40000, port, b"probe"),
        )
    };
    x.ban_scoped(
        "198.18.1.9",
        BlockType::Drop,
        in_an_hour(),
        Some("tcp:22,1000-2000 udp:53"),
    );
    assert_eq!(x.verdict(&tcp_to(22)), XDP_DROP);
    assert_eq!(x.verdict(&tcp_to(1000)), XDP_DROP);
    assert_eq!(x.verdict(&tcp_to(2000)), XDP_DROP);
    assert_eq!(x.verdict(&udp_to(53)), XDP_DROP);
    assert_eq!(x.verdict(&tcp_to(21)), XDP_PASS);
    assert_eq!(x.verdict(&tcp_to(2001)), XDP_PASS);
    assert_eq!(x.verdict(&tcp_to(53)), XDP_PASS, "udp's port is not tcp's");
    assert_eq!(x.verdict(&udp_to(22)), XDP_PASS, "tcp's port is not udp's");
    let ping = frame(src, host, &[], PROTO_ICMP, &icmp_echo(1, 1));
    assert_eq!(x.verdict(&ping), XDP_PASS, "no ports: outside every scope");

    // A tarpit scoped to ssh answers there and lets the web through.
    x.ban_scoped(
        "198.18.1.9",
        BlockType::Tarpit,
        in_an_hour(),
        Some("tcp:22"),
    );
    assert_eq!(x.verdict(&tcp_to(22)), tests::XDP_TX);
    assert_eq!(x.verdict(&tcp_to(443)), XDP_PASS);
    assert_eq!(x.verdict(&udp_to(53)), XDP_PASS, "the scope was replaced");

    // Back to every port; IPv6 and prefixes carry scopes too.
    x.ban("198.18.1.9", in_an_hour());
    assert_eq!(x.verdict(&tcp_to(443)), XDP_DROP);
    let src6 = ip("2001:db8:5::9");
    let host6 = ip(HOST6);
    x.ban_scoped(
        "2001:db8:5::/64",
        BlockType::Drop,
        in_an_hour(),
        Some("tcp:443"),
    );
    let web6 = frame(
        src6,
        host6,
        &[],
        PROTO_TCP,
        &tcp(src6, host6, 41000, 443, 1, 0, 0x02, 64240, b""),
    );
    let ssh6 = frame(
        src6,
        host6,
        &[],
        PROTO_TCP,
        &tcp(src6, host6, 41000, 22, 1, 0, 0x02, 64240, b""),
    );
    assert_eq!(x.verdict(&web6), XDP_DROP);
    assert_eq!(x.verdict(&ssh6), XDP_PASS);
    // list() reads the scopes back.
    let listed = x.backend.list().unwrap();
    let scope_of = |t: &str| {
        let t: IpPrefix = t.parse().unwrap();
        listed
            .iter()
            .find(|e| e.target == t)
            .map(|e| banner::scope::describe(&e.scope))
    };
    assert_eq!(scope_of("2001:db8:5::/64").as_deref(), Some("tcp:443"));
    assert_eq!(scope_of("198.18.1.9").as_deref(), Some("all ports"));
}

#[test]
fn scope_slots_are_reused_and_freed_when_no_ban_needs_them() {
    let mut x = Loaded::new("slots", 1024);
    let max = banner_common::MAX_SCOPES as u16;
    // More distinct scopes over time than there are slots: each earlier ban is lifted first,
    // so its slot is free again.
    for i in 0..max * 2 {
        let target = format!("198.18.2.{}", i % 200 + 1);
        let port = 1000 + i;
        x.ban_scoped(
            &target,
            BlockType::Drop,
            in_an_hour(),
            Some(&format!("tcp:{port}")),
        );
        let src = ip(&target);
        let host = ip(HOST4);
        let to = |p| {
            frame(
                src,
                host,
                &[],
                PROTO_TCP,
                &tcp(src, host, 41000, p, 1, 0, 0x02, 64240, b""),
            )
        };
        assert_eq!(x.verdict(&to(port)), XDP_DROP, "ban {i}");
        assert_eq!(x.verdict(&to(port + 1)), XDP_PASS, "ban {i}");
        x.backend.unblock(&[target.parse().unwrap()]).unwrap();
    }
    // With every slot held, one more scope is enforced on every port rather than not at all.
    for i in 1..max {
        x.ban_scoped(
            &format!("198.18.3.{i}"),
            BlockType::Drop,
            in_an_hour(),
            Some(&format!("tcp:{}", 3000 + i)),
        );
    }
    x.ban_scoped(
        "198.18.4.1",
        BlockType::Drop,
        in_an_hour(),
        Some("tcp:9999"),
    );
    let src = ip("198.18.4.1");
    let host = ip(HOST4);
    let other = frame(
        src,
        host,
        &[],
        PROTO_TCP,
        &tcp(src, host, 41000, 80, 1, 0, 0x02, 64240, b""),
    );
    assert_eq!(x.verdict(&other), XDP_DROP);
}
