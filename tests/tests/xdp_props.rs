//! Properties of the kernel program over many random and mutated frames (BPF_PROG_TEST_RUN),
//! with every source banned as tarpit so the deepest path runs: it never aborts, and a reply
//! it sends is always a valid TCP segment, addressed back to the sender, no larger than the
//! request. (Issue 9, "Keep it hard".)

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use banner::{
    backend::{xdp::LinkLayer, Backend as _},
    model::BlockType,
};
use tests::{packet::*, Loaded, XDP_TX};

/// xorshift64*: a fixed seed, so a failure replays; no crate needed for this.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// A well-formed frame of a random shape: v4 or v6, 0-2 VLAN tags, IPv4 options or IPv6
/// extension headers, TCP with random flags and payload, UDP, ICMP or a fragment.
fn base_frame(rng: &mut Rng) -> Vec<u8> {
    let v6 = rng.below(2) == 1;
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (
            format!(
                "2001:db8:{:x}::{:x}",
                rng.below(0xffff),
                rng.below(0xffff) + 1
            )
            .parse()
            .unwrap(),
            "2001:db8::1".parse().unwrap(),
        )
    } else {
        (
            format!("198.18.{}.{}", rng.below(256), rng.below(254) + 1)
                .parse()
                .unwrap(),
            "198.18.0.1".parse().unwrap(),
        )
    };
    let vlans: Vec<(u16, u16)> = match rng.below(3) {
        0 => vec![],
        1 => vec![(ETH_P_8021Q, rng.below(4095) as u16)],
        _ => vec![(ETH_P_8021AD, 100), (ETH_P_8021Q, 7)],
    };
    let payload: Vec<u8> = (0..rng.below(12)).map(|_| rng.byte()).collect();
    let (proto, l4) = match rng.below(4) {
        0 | 1 => {
            let flags = [
                TCP_SYN,
                TCP_ACK,
                TCP_SYN | TCP_ACK,
                TCP_FIN | TCP_ACK,
                TCP_RST,
                TCP_PSH | TCP_ACK,
                rng.byte(),
            ][rng.below(7)];
            (
                PROTO_TCP,
                tcp(
                    src,
                    dst,
                    40000,
                    22,
                    rng.next() as u32,
                    rng.next() as u32,
                    flags,
                    64240,
                    &payload,
                ),
            )
        }
        2 => (PROTO_UDP, udp(src, dst, 5353, 53, &payload)),
        _ => (if v6 { PROTO_ICMPV6 } else { PROTO_ICMP }, icmp_echo(1, 2)),
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let options: Vec<u8> = (0..4 * rng.below(4)).map(|_| 1).collect();
            let frag = if rng.below(8) == 0 { 0x2000 } else { 0 };
            eth(
                SERVER_MAC,
                CLIENT_MAC,
                &vlans,
                ETH_P_IPV4,
                &ipv4(s.octets(), d.octets(), proto, &l4, &options, frag),
            )
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ext: Vec<(u8, Vec<u8>)> = (0..rng.below(3))
                .map(|_| match rng.below(3) {
                    0 => (0u8, vec![0u8; 8]),
                    1 => (60u8, vec![0u8; 8]),
                    _ => (44u8, vec![0u8; 8]),
                })
                .collect();
            eth(
                SERVER_MAC,
                CLIENT_MAC,
                &vlans,
                ETH_P_IPV6,
                &ipv6(s.octets(), d.octets(), proto, &l4, &ext),
            )
        }
        _ => unreachable!(),
    }
}

/// Damage a frame: flip bits, cut it short, overwrite or insert bytes, or start over random.
fn mutate(rng: &mut Rng, mut f: Vec<u8>) -> Vec<u8> {
    match rng.below(6) {
        0 => f,
        1 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(f.len());
                f[i] ^= 1 << rng.below(8);
            }
            f
        }
        2 => {
            f.truncate(14 + rng.below(f.len().saturating_sub(14) + 1));
            f
        }
        3 => {
            let i = rng.below(f.len());
            f[i] = rng.byte();
            f
        }
        4 => {
            let i = rng.below(f.len());
            let extra: Vec<u8> = (0..rng.below(16)).map(|_| rng.byte()).collect();
            f.splice(i..i, extra);
            f
        }
        _ => (0..14 + rng.below(120)).map(|_| rng.byte()).collect(),
    }
}

/// Check one verdict: no abort, and a reply is a valid segment back to the sender.
fn check(request: &[u8], action: u32, reply: &[u8], l3: bool) {
    assert_ne!(action, 0, "XDP_ABORTED on {request:02x?}");
    if action != XDP_TX {
        return;
    }
    assert!(
        reply.len() <= request.len(),
        "reply of {} bytes to a request of {}: {request:02x?}",
        reply.len(),
        request.len()
    );
    // L3 frames have no Ethernet header: give both a stand-in to parse them alike.
    let framed = |f: &[u8]| -> Vec<u8> {
        if l3 {
            let ethertype = if f.first().is_some_and(|b| b >> 4 == 6) {
                ETH_P_IPV6
            } else {
                ETH_P_IPV4
            };
            eth([0; 6], [0; 6], &[], ethertype, f)
        } else {
            f.to_vec()
        }
    };
    let request = framed(request);
    let rep = parse_tcp(&framed(reply)).unwrap_or_else(|| panic!("reply is not TCP: {reply:02x?}"));
    assert!(
        rep.tcp_checksum_ok && rep.ipv4_checksum_ok && rep.ip_total_len_ok,
        "{rep:?}"
    );
    assert_eq!(rep.payload_len, 0);
    assert!(rep.window <= 5);
    // Back to the sender: the request's addresses, swapped.
    let (src, dst) = addresses(&request).expect("a tarpit reply answers IP only");
    assert_eq!(
        (rep.src, rep.dst),
        (dst, src),
        "reply goes back to the sender"
    );
    if let Some(req) = parse_tcp(&request) {
        // (Requests with IPv6 extension headers are beyond this little parser.)
        if req.sport != 0 || req.dport != 0 {
            assert_eq!((rep.sport, rep.dport), (req.dport, req.sport));
        }
    }
    if !l3 {
        assert_eq!(
            (rep.src_mac, rep.dst_mac),
            (
                request[0..6].try_into().unwrap(),
                request[6..12].try_into().unwrap()
            )
        );
    }
}

/// Source and destination of an Ethernet/[VLAN]/IP frame.
fn addresses(f: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let mut off = 12;
    let mut et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    while et == ETH_P_8021Q || et == ETH_P_8021AD {
        off += 4;
        et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    }
    let ip = f.get(off + 2..)?;
    match et {
        ETH_P_IPV4 => Some((
            IpAddr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?),
            IpAddr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?),
        )),
        ETH_P_IPV6 => Some((
            IpAddr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?),
            IpAddr::from(<[u8; 16]>::try_from(ip.get(24..40)?).ok()?),
        )),
        _ => None,
    }
}

#[test]
fn random_and_mutated_frames_never_abort_and_replies_are_always_valid() {
    let mut x = Loaded::new("props", 1024);
    let later = Some(SystemTime::now() + Duration::from_secs(3600));
    // Everything banned, as tarpit: every frame that parses reaches the tarpit.
    for net in ["0.0.0.0/0", "::/0"] {
        x.ban_as(net, BlockType::Tarpit, later);
    }
    let before = x.backend.counters().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut replies = 0;
    for _ in 0..6_000 {
        let base = base_frame(&mut rng);
        let frame = mutate(&mut rng, base);
        let (action, reply) = x.run(&frame);
        check(&frame, action, &reply, false);
        replies += usize::from(action == XDP_TX);
        // The same bytes from the IP header on, through the L3 program.
        let l3 = &frame[14.min(frame.len())..];
        if l3.len() >= 14 {
            let out = x
                .backend
                .test_run_on(LinkLayer::None, l3, 1)
                .expect("test_run");
            check(l3, out.action, &out.frame, true);
            replies += usize::from(out.action == XDP_TX);
        }
    }
    let after = x.backend.counters().unwrap();
    assert_eq!(
        after.get(banner_common::counter::ABORTED),
        before.get(banner_common::counter::ABORTED),
        "the program failed to shape a reply"
    );
    // The property held on real replies, not vacuously.
    assert!(replies > 500, "only {replies} replies");
}
