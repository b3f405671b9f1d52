//! The tarpit's replies, checked field by field on `test_run` output: every case of
//! xt_TARPIT's "tarpit" mode, IPv4 and IPv6, with and without VLAN tags.

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use banner::{backend::Backend as _, model::BlockType};
use banner_common::{tarpit_isn_v4, tarpit_isn_v6};
use tests::{packet::*, Loaded, XDP_DROP, XDP_TX};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const CLIENT4: &str = "198.18.1.7";
const SERVER4: &str = "198.18.0.1";
const CLIENT6: &str = "2001:db8:1::7";
const SERVER6: &str = "2001:db8::1";
const CLIENT_PORT: u16 = 41000;
const SERVER_PORT: u16 = 22;

fn tarpitted(tag: &str) -> Loaded {
    let mut x = Loaded::new(tag, 1024);
    let later = Some(SystemTime::now() + Duration::from_secs(3600));
    x.ban_as(CLIENT4, BlockType::Tarpit, later);
    x.ban_as(CLIENT6, BlockType::Tarpit, later);
    x
}

fn isn(x: &Loaded, client: IpAddr, server: IpAddr) -> u32 {
    let key = x.backend.tarpit_key();
    match (client, server) {
        (IpAddr::V4(c), IpAddr::V4(s)) => {
            tarpit_isn_v4(&key, c.octets(), s.octets(), CLIENT_PORT, SERVER_PORT)
        }
        (IpAddr::V6(c), IpAddr::V6(s)) => {
            tarpit_isn_v6(&key, &c.octets(), &s.octets(), CLIENT_PORT, SERVER_PORT)
        }
        _ => panic!("mixed address families"),
    }
}

/// A TCP segment with SYN options (MSS, SACK-permitted, timestamps, wscale: 20 bytes), as a
/// real client sends.
fn syn_with_options(client: IpAddr, server: IpAddr, vlans: &[(u16, u16)], seq: u32) -> Vec<u8> {
    let mut seg = tcp(
        client,
        server,
        CLIENT_PORT,
        SERVER_PORT,
        seq,
        0,
        TCP_SYN,
        64240,
        b"",
    );
    let options: [u8; 20] = [
        2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    seg.extend_from_slice(&options);
    seg[12] = (((20 + options.len()) / 4) << 4) as u8;
    seg[16] = 0;
    seg[17] = 0;
    let sum = checksum(
        &seg,
        pseudo_header_sum(client, server, PROTO_TCP, seg.len()),
    );
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    frame(client, server, vlans, PROTO_TCP, &seg)
}

/// Check the parts every reply shares: swapped MACs, addresses, ports; TTL 64; IPv4 DF and
/// ID 0; both checksums; no options, no payload; the frame cut to the reply.
fn assert_reply_frame(
    reply: &[u8],
    client: IpAddr,
    server: IpAddr,
    vlans: &[(u16, u16)],
) -> Parsed {
    let p = parse_tcp(reply).expect("the reply is a TCP frame");
    assert_eq!(p.dst_mac, CLIENT_MAC, "reply goes back to the client's MAC");
    assert_eq!(p.src_mac, SERVER_MAC);
    assert_eq!(p.vlans, vlans, "VLAN tags kept");
    assert_eq!((p.src, p.dst), (server, client), "addresses swapped");
    assert_eq!(
        (p.sport, p.dport),
        (SERVER_PORT, CLIENT_PORT),
        "ports swapped"
    );
    assert_eq!(p.ttl, 64);
    assert!(p.tcp_checksum_ok, "TCP checksum");
    assert!(p.ip_total_len_ok, "IP length matches the frame");
    assert_eq!(p.data_offset, 5, "no TCP options");
    assert_eq!(p.payload_len, 0);
    assert_eq!(p.urgent, 0);
    if client.is_ipv4() {
        assert!(p.ipv4_checksum_ok, "IPv4 header checksum");
        assert_eq!(p.ipv4_id, 0);
        assert_eq!(p.ipv4_frag, 0x4000, "DF set, no fragment offset");
        assert_eq!(reply.len(), 14 + 4 * vlans.len() + 20 + 20);
    } else {
        assert_eq!(reply.len(), 14 + 4 * vlans.len() + 40 + 20);
    }
    p
}

#[test]
fn a_syn_gets_a_syn_ack_with_window_5_ipv4_ipv6_and_vlans() {
    let mut x = tarpitted("syn");
    for (client, server) in [(ip(CLIENT4), ip(SERVER4)), (ip(CLIENT6), ip(SERVER6))] {
        for vlans in [
            vec![],
            vec![(ETH_P_8021Q, 7)],
            vec![(ETH_P_8021AD, 100), (ETH_P_8021Q, 7)],
        ] {
            let (action, reply) = x.run(&syn_with_options(client, server, &vlans, 1_000_000));
            assert_eq!(action, XDP_TX, "{client} behind {vlans:?}");
            let p = assert_reply_frame(&reply, client, server, &vlans);
            assert_eq!(p.flags, TCP_SYN | TCP_ACK);
            assert_eq!(p.window, 5);
            assert_eq!(p.ack, 1_000_001, "ack = their seq + 1");
            assert_eq!(
                p.seq,
                isn(&x, client, server),
                "seq derived from the 4-tuple"
            );
        }
    }
}

#[test]
fn data_is_acknowledged_with_a_zero_window() {
    let mut x = tarpitted("ack");
    for (client, server) in [(ip(CLIENT4), ip(SERVER4)), (ip(CLIENT6), ip(SERVER6))] {
        let ours = isn(&x, client, server).wrapping_add(1);
        // The handshake's final ACK, then 5 bytes of data, then a zero-window probe.
        for (payload, flags) in [
            (&b""[..], TCP_ACK),
            (b"SSH-2", TCP_ACK | TCP_PSH),
            (b"x", TCP_ACK),
        ] {
            let f = tcp_frame(
                client,
                server,
                &[(ETH_P_8021Q, 9)],
                flags,
                5000,
                ours,
                payload,
            );
            let (action, reply) = x.run(&f);
            assert_eq!(action, XDP_TX);
            let p = assert_reply_frame(&reply, client, server, &[(ETH_P_8021Q, 9)]);
            assert_eq!(p.flags, TCP_ACK);
            assert_eq!(p.window, 0);
            assert_eq!(
                p.ack,
                5000 + payload.len() as u32,
                "acknowledges what they sent"
            );
            assert_eq!(p.seq, ours);
        }
    }
}

#[test]
fn a_syn_ack_from_them_gets_a_reset() {
    let mut x = tarpitted("rst");
    for (client, server) in [(ip(CLIENT4), ip(SERVER4)), (ip(CLIENT6), ip(SERVER6))] {
        let f = tcp_frame(client, server, &[], TCP_SYN | TCP_ACK, 77, 123_456, b"");
        let (action, reply) = x.run(&f);
        assert_eq!(action, XDP_TX);
        let p = assert_reply_frame(&reply, client, server, &[]);
        assert_eq!(p.flags, TCP_RST);
        assert_eq!(p.seq, 123_456, "RST at their ack");
    }
}

#[test]
fn rst_fin_and_ackless_segments_get_no_answer() {
    let mut x = tarpitted("quiet");
    for (client, server) in [(ip(CLIENT4), ip(SERVER4)), (ip(CLIENT6), ip(SERVER6))] {
        for flags in [
            TCP_RST,
            TCP_RST | TCP_ACK,
            TCP_FIN | TCP_ACK,
            TCP_FIN,
            TCP_PSH,
            0,
        ] {
            let f = tcp_frame(client, server, &[], flags, 1, 2, b"");
            assert_eq!(x.verdict(&f), XDP_DROP, "flags {flags:#x} from {client}");
        }
    }
}

#[test]
fn fragments_group_destinations_bad_checksums_and_non_tcp_are_dropped() {
    let mut x = tarpitted("never");
    let (c, s) = (ip(CLIENT4), ip(SERVER4));
    // A first fragment (MF set) and a later one.
    let seg = tcp(c, s, CLIENT_PORT, SERVER_PORT, 1, 0, TCP_SYN, 1000, b"");
    for frag in [0x2000u16, 0x0010] {
        let f = eth(
            SERVER_MAC,
            CLIENT_MAC,
            &[],
            ETH_P_IPV4,
            &ipv4([198, 18, 1, 7], [198, 18, 0, 1], PROTO_TCP, &seg, &[], frag),
        );
        assert_eq!(x.verdict(&f), XDP_DROP, "fragment {frag:#x}");
    }
    // Broadcast/multicast MACs, and IPv4 broadcast / multicast and IPv6 multicast addresses.
    let mut to_group = tcp_frame(c, s, &[], TCP_SYN, 1, 0, b"");
    to_group[0..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(x.verdict(&to_group), XDP_DROP);
    to_group[0..6].copy_from_slice(&[0x01, 0, 0x5e, 0, 0, 1]);
    assert_eq!(x.verdict(&to_group), XDP_DROP);
    for dst in ["255.255.255.255", "224.0.0.1"] {
        assert_eq!(
            x.verdict(&tcp_frame(c, ip(dst), &[], TCP_SYN, 1, 0, b"")),
            XDP_DROP,
            "{dst}"
        );
    }
    assert_eq!(
        x.verdict(&tcp_frame(
            ip(CLIENT6),
            ip("ff02::1"),
            &[],
            TCP_SYN,
            1,
            0,
            b""
        )),
        XDP_DROP
    );
    // A wrong TCP checksum.
    let mut bad = tcp_frame(c, s, &[], TCP_SYN, 1, 0, b"");
    let last = bad.len() - 1;
    bad[last - 3] ^= 0x55;
    assert_eq!(x.verdict(&bad), XDP_DROP);
    let mut bad6 = tcp_frame(ip(CLIENT6), ip(SERVER6), &[], TCP_ACK, 1, 2, b"data!");
    let last = bad6.len() - 1;
    bad6[last] ^= 1;
    assert_eq!(x.verdict(&bad6), XDP_DROP);
    // UDP and ICMP from a tarpitted source.
    assert_eq!(x.verdict(&udp_frame(c, s)), XDP_DROP);
    assert_eq!(
        x.verdict(&frame(c, s, &[], PROTO_ICMP, &icmp_echo(1, 1))),
        XDP_DROP
    );
    // More data than the window ever allowed.
    assert_eq!(
        x.verdict(&tcp_frame(c, s, &[], TCP_ACK, 1, 2, &[0u8; 400])),
        XDP_DROP
    );
}

#[test]
fn ipv6_extension_headers_and_ipv4_options_are_left_out_of_the_reply() {
    let mut x = tarpitted("exthdr");
    let (c, s) = (ip(CLIENT6), ip(SERVER6));
    let seg = tcp(c, s, CLIENT_PORT, SERVER_PORT, 99, 0, TCP_SYN, 1000, b"");
    let IpAddr::V6(c6) = c else { unreachable!() };
    let IpAddr::V6(s6) = s else { unreachable!() };
    let p6 = ipv6(
        c6.octets(),
        s6.octets(),
        PROTO_TCP,
        &seg,
        &[(60, vec![0, 0, 1, 4, 0, 0, 0, 0])],
    );
    let (action, reply) = x.run(&eth(SERVER_MAC, CLIENT_MAC, &[], ETH_P_IPV6, &p6));
    assert_eq!(action, XDP_TX);
    let p = assert_reply_frame(&reply, c, s, &[]);
    assert_eq!((p.flags, p.ack), (TCP_SYN | TCP_ACK, 100));

    let (c4, s4) = (ip(CLIENT4), ip(SERVER4));
    let seg = tcp(c4, s4, CLIENT_PORT, SERVER_PORT, 7, 0, TCP_SYN, 1000, b"");
    let p4 = ipv4(
        [198, 18, 1, 7],
        [198, 18, 0, 1],
        PROTO_TCP,
        &seg,
        &[1, 1, 1, 0],
        0,
    );
    let (action, reply) = x.run(&eth(SERVER_MAC, CLIENT_MAC, &[], ETH_P_IPV4, &p4));
    assert_eq!(action, XDP_TX);
    let p = assert_reply_frame(&reply, c4, s4, &[]);
    assert_eq!(p.ack, 8);
}

#[test]
fn tarpitted_and_dropped_packets_are_counted_apart() {
    let mut x = tarpitted("count");
    let before = x.backend.counters().unwrap();
    let (c, s) = (ip(CLIENT4), ip(SERVER4));
    assert_eq!(x.verdict(&syn_with_options(c, s, &[], 1)), XDP_TX);
    assert_eq!(x.verdict(&tcp_frame(c, s, &[], TCP_ACK, 2, 3, b"")), XDP_TX);
    assert_eq!(x.verdict(&udp_frame(c, s)), XDP_DROP);
    let after = x.backend.counters().unwrap();
    assert_eq!(
        after.get(banner_common::counter::TARPITTED)
            - before.get(banner_common::counter::TARPITTED),
        2
    );
    assert_eq!(
        after.get(banner_common::counter::DROPPED) - before.get(banner_common::counter::DROPPED),
        1
    );
    let ban = x
        .backend
        .list()
        .unwrap()
        .into_iter()
        .find(|e| e.target.to_string() == CLIENT4)
        .unwrap();
    assert_eq!((ban.hits.tarpitted, ban.hits.dropped), (2, 1));
    // A drop ban never answers, even a SYN.
    x.ban_as(
        CLIENT4,
        BlockType::Drop,
        Some(SystemTime::now() + Duration::from_secs(60)),
    );
    assert_eq!(x.verdict(&syn_with_options(c, s, &[], 1)), XDP_DROP);
}

#[test]
fn sources_no_host_can_own_are_never_answered() {
    // Forged sources (a banned prefix can cover them): answering reflects at a group, at
    // nobody or at ourselves (issue 9, item 19).
    let mut x = Loaded::new("tarpit-sources", 1024);
    let later = Some(SystemTime::now() + Duration::from_secs(3600));
    for net in ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"] {
        x.ban_as(net, BlockType::Tarpit, later);
    }
    for (src, dst) in [
        ("0.0.0.0", SERVER4),
        ("127.0.0.1", SERVER4),
        ("224.0.0.1", SERVER4),
        ("239.255.255.250", SERVER4),
        ("255.255.255.255", SERVER4),
        ("240.0.0.1", SERVER4),
        ("::", SERVER6),
        ("::1", SERVER6),
        ("ff02::1", SERVER6),
    ] {
        let (action, _) = x.run(&syn_with_options(ip(src), ip(dst), &[], 1));
        assert_eq!(action, XDP_DROP, "a SYN from {src} must not be answered");
    }
    // An ordinary address under the same bans is still answered.
    let (action, _) = x.run(&syn_with_options(ip(CLIENT4), ip(SERVER4), &[], 1));
    assert_eq!(action, XDP_TX);
    let (action, _) = x.run(&syn_with_options(ip(CLIENT6), ip(SERVER6), &[], 1));
    assert_eq!(action, XDP_TX);
}

#[test]
fn sequence_numbers_are_keyed_and_differ_between_keys() {
    // Two loads get two random keys: the same SYN gets different sequence numbers, and each
    // is what SipHash under that load's key gives.
    let mut a = tarpitted("key-a");
    let mut b = tarpitted("key-b");
    assert_ne!(a.backend.tarpit_key(), b.backend.tarpit_key());
    assert_ne!(a.backend.tarpit_key(), [0; 2]);
    let syn = syn_with_options(ip(CLIENT4), ip(SERVER4), &[], 7);
    let seq_a = parse_tcp(&a.run(&syn).1).unwrap().seq;
    let seq_b = parse_tcp(&b.run(&syn).1).unwrap().seq;
    assert_eq!(seq_a, isn(&a, ip(CLIENT4), ip(SERVER4)));
    assert_eq!(seq_b, isn(&b, ip(CLIENT4), ip(SERVER4)));
    assert_ne!(seq_a, seq_b);
}

#[test]
fn l3_devices_get_replies_without_a_link_header() {
    use banner::backend::xdp::LinkLayer;
    let mut x = tarpitted("tarpit-l3");
    let syn = syn_with_options(ip(CLIENT4), ip(SERVER4), &[], 1_000);
    let out = x
        .backend
        .test_run_on(LinkLayer::None, &syn[14..], 1)
        .expect("test_run");
    assert_eq!(out.action, XDP_TX);
    assert_eq!(out.frame.len(), 40, "IPv4 + TCP, no MACs");
    // Parse it by putting the request's Ethernet header (swapped) back in front.
    let mut framed = syn[6..12].to_vec();
    framed.extend_from_slice(&syn[..6]);
    framed.extend_from_slice(&syn[12..14]);
    framed.extend_from_slice(&out.frame);
    let p = assert_reply_frame(&framed, ip(CLIENT4), ip(SERVER4), &[]);
    assert_eq!(p.flags, TCP_SYN | TCP_ACK);
    assert_eq!(p.ack, 1_001);
}

/// Pins a gone run left behind (an aborted bench, a killed test) are removed when the
/// program is next loaded; a live process's are kept.
#[test]
fn pins_of_a_gone_run_are_swept_on_the_next_load() {
    // Above any pid the kernel hands out (pid_max is at most 2^22).
    let gone = std::path::PathBuf::from("/sys/fs/bpf/banner-t-sweep-4294967290");
    let live =
        std::path::PathBuf::from(format!("/sys/fs/bpf/banner-t-sweep-{}", std::process::id()));
    for dir in [&gone, &live] {
        let _ = std::fs::create_dir(dir);
        assert!(dir.is_dir(), "{}", dir.display());
    }
    let loaded = Loaded::new("sweep-load", 16);
    let swept = !gone.exists();
    let kept = live.is_dir();
    let _ = std::fs::remove_dir_all(&gone);
    let _ = std::fs::remove_dir_all(&live);
    drop(loaded);
    assert!(swept, "a gone run's pins are removed");
    assert!(kept, "a live process's pins are kept");
}
