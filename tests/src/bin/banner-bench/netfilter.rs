//! Benchmarks of loading bans and of dropping floods, per backend.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant, SystemTime},
};

use banner::{
    addr::IpPrefix,
    backend::{
        command::{CommandRunner, SystemRunner},
        iptables::IptablesBackend,
        nftables::NftablesBackend,
        Backend, BackendError,
    },
    model::{BlockSpec, BlockType},
};
use tests::{
    report::{Bulk, Pps, PpsRun},
    Lab, Loaded,
};

use crate::median;

/// Runs netfilter commands inside a lab's host namespace.
pub struct NsRunner(pub String);

impl CommandRunner for NsRunner {
    fn run(
        &mut self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, BackendError> {
        let mut full = vec!["netns", "exec", self.0.as_str(), program];
        full.extend_from_slice(args);
        SystemRunner.run("ip", &full, stdin)
    }
}

/// `n` bans from 198.19.0.0/16 and 2001:db8:ff00::/40 (the lab's peer is not among them).
fn specs(n: usize, blocktype: BlockType) -> Vec<BlockSpec> {
    let expires_at = Some(SystemTime::now() + Duration::from_secs(3600));
    (0..n)
        .map(|i| {
            let addr = if i < 60_000 {
                IpAddr::V4(Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250 + 1) as u8))
            } else {
                format!("2001:db8:ff00::{:x}:{:x}", i >> 16, i & 0xffff)
                    .parse()
                    .expect("address")
            };
            BlockSpec {
                target: IpPrefix::host(addr),
                blocktype,
                expires_at,
                scope: None,
            }
        })
        .collect()
}

/// banner's nftables or iptables+ipset backend on an isolated lab's host side.
fn netfilter_backend(kind: &str, lab: &Lab, capacity: usize) -> Box<dyn Backend> {
    let runner = Box::new(NsRunner(lab.host_ns.clone().expect("isolated lab")));
    if kind == "nftables" {
        Box::new(NftablesBackend::open(runner).expect("nftables"))
    } else {
        Box::new(IptablesBackend::open(runner, capacity.max(200_000)).expect("iptables"))
    }
}

pub fn bench_bulk(quick: bool) -> Bulk {
    let sizes: &[usize] = if quick {
        &[100, 1_000]
    } else {
        &[1_000, 10_000, 100_000, 1_000_000]
    };
    let per_process: &[usize] = if quick { &[100] } else { &[1_000, 10_000] };
    let runs = 3;
    // A million is loaded once per backend: the figure is seconds, the noise is not.
    let runs_of = |n: usize| if n >= 1_000_000 { 1 } else { runs };
    let capacity = sizes.iter().copied().max().unwrap_or(0) + 1_000;
    let mut out = Bulk {
        sizes: sizes.iter().map(|&n| n as u64).collect(),
        runs,
        ..Bulk::default()
    };
    let mut record = |backend: &str, size: usize, secs: f64| {
        let figures = match backend {
            "xdp" => &mut out.xdp,
            "nftables" => &mut out.nftables,
            "ipset" => &mut out.ipset,
            _ => &mut out.iptables_rule_per_ban,
        };
        figures.insert(size.to_string(), secs);
    };
    for &n in sizes {
        let batch = specs(n, BlockType::Drop);
        let mut t = Vec::new();
        for _ in 0..runs_of(n) {
            let mut x = Loaded::attached("bulk", Vec::new(), capacity.max(200_000) as u32);
            let start = Instant::now();
            x.backend.block(&batch).expect("xdp block");
            t.push(start.elapsed().as_secs_f64());
        }
        record("xdp", n, median(t));
        for kind in ["nftables", "ipset"] {
            let mut t = Vec::new();
            for _ in 0..runs_of(n) {
                let lab = Lab::isolated();
                let mut b = netfilter_backend(kind, &lab, capacity);
                let start = Instant::now();
                b.block(&batch).expect("block");
                t.push(start.elapsed().as_secs_f64());
            }
            record(kind, n, median(t));
        }
    }
    for &n in per_process {
        let lab = Lab::isolated();
        lab.host_exec_ok(&["iptables", "-N", "F2B"]);
        let batch = specs(n, BlockType::Drop);
        let start = Instant::now();
        for s in &batch {
            let addr = s.target.to_string();
            let cmd = if s.target.is_v4() {
                "iptables"
            } else {
                "ip6tables"
            };
            lab.host_exec_ok(&[cmd, "-w", "-A", "F2B", "-s", &addr, "-j", "DROP"]);
        }
        record("iptables_rule_per_ban", n, start.elapsed().as_secs_f64());
    }
    out.xdp_s = out.xdp.clone();
    out
}

fn mac_bytes(text: &str) -> String {
    text.trim()
        .split(':')
        .map(|b| format!("0x{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Flood `lab`'s host with UDP from the peer for `secs`; returns packets sent.
fn flood(lab: &Lab, secs: u64) -> u64 {
    let host_mac = String::from_utf8_lossy(
        &lab.host_exec(&["cat", &format!("/sys/class/net/{}/address", lab.host_if)])
            .stdout,
    )
    .into_owned();
    let peer_mac = lab.exec_ok(&["cat", &format!("/sys/class/net/{}/address", lab.peer_if)]);
    let (h, p) = (lab.host_v4(), lab.peer_v4());
    let (IpAddr::V4(h), IpAddr::V4(p)) = (h, p) else {
        unreachable!("lab addresses are IPv4")
    };
    let [p0, p1, p2, p3] = p.octets();
    let [h0, h1, h2, h3] = h.octets();
    let conf = format!(
        "{{\n  {},\n  {},\n  0x08, 0x00,\n  0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, csumip(14, 33),\n  {p0}, {p1}, {p2}, {p3},\n  {h0}, {h1}, {h2}, {h3},\n  0x13, 0x89, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,\n}}\n",
        mac_bytes(&host_mac),
        mac_bytes(&peer_mac)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("flood.cfg");
    std::fs::write(&cfg, conf).expect("write trafgen config");
    // The sender on CPU 0; the receiver's NAPI thread is on CPU 1 (see `place`).
    let out = lab.exec(&[
        "taskset",
        "-c",
        "0",
        "timeout",
        "-s",
        "INT",
        &secs.to_string(),
        "trafgen",
        "--dev",
        &lab.peer_if,
        "--conf",
        cfg.to_str().expect("utf-8 path"),
        "--cpus",
        "1",
        // sendto(2), not the TX ring: with the receiver on its own CPU the veth queue
        // fills, and the ring's flushes then failed (EAGAIN) and stalled the sender for
        // most of a run; sendto waits for room instead.
        "--gap",
        "0",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find(|l| l.contains("packets outgoing"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The banned batch for a flood test: `n` bans, the lab's peer among them.
fn with_peer(lab: &Lab, n: usize) -> Vec<BlockSpec> {
    let mut v = specs(n.saturating_sub(1), BlockType::Drop);
    v.push(BlockSpec {
        target: IpPrefix::host(lab.peer_v4()),
        blocktype: BlockType::Drop,
        expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        scope: None,
    });
    v
}

/// Give the receiving veth end its own CPU: GRO on (veth polls with NAPI only then, or with
/// XDP), threaded NAPI, and its `napi/IF-N` kernel thread pinned to CPU 1, while trafgen
/// runs on CPU 0. Without this the receiver's work ran on the sender's CPU, inside its
/// transmit call, and a cheaper backend showed only as more packets sent. Returns what was
/// done, or why not (the flood then runs all the same).
fn place(lab: &Lab) -> String {
    let iface = &lab.host_if;
    let gro = lab.host_exec(&["ethtool", "-K", iface, "gro", "on"]);
    if !gro.status.success() {
        return format!(
            "unpinned: GRO could not be turned on for {iface} ({})",
            String::from_utf8_lossy(&gro.stderr).trim()
        );
    }
    let threaded = format!("echo 1 > /sys/class/net/{iface}/threaded");
    let out = lab.host_exec(&["sh", "-c", &threaded]);
    if !out.status.success() {
        return format!(
            "unpinned: no threaded NAPI on {iface} ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // A kernel thread's name is cut at 15 characters.
    let name: String = format!("napi/{iface}-").chars().take(15).collect();
    let mut pinned = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(&name) {
            continue;
        }
        let pid = entry.file_name().to_string_lossy().into_owned();
        if tests::sh_ok("taskset", &["-pc", "1", &pid]).is_some() {
            pinned.push(comm.trim().to_string());
        }
    }
    if pinned.is_empty() {
        return format!("unpinned: no {name}* thread found");
    }
    format!(
        "trafgen on CPU 0; {iface} with GRO and threaded NAPI, {} on CPU 1",
        pinned.join(", ")
    )
}

/// libxdp's directory in bpffs, which xdp-filter creates and leaves behind, empty.
const LIBXDP_DIR: &str = "/sys/fs/bpf/xdp";

/// xdp-filter's own loader on the lab's host end, unloaded on drop, with libxdp's directory
/// removed if loading made it.
struct XdpFilter {
    iface: String,
    made_dir: bool,
}

impl XdpFilter {
    fn on(iface: &str) -> Self {
        Self {
            iface: iface.to_string(),
            made_dir: !std::path::Path::new(LIBXDP_DIR).exists(),
        }
    }
}

impl Drop for XdpFilter {
    fn drop(&mut self) {
        let _ = std::process::Command::new("xdp-filter")
            .args(["unload", &self.iface])
            .output();
        if self.made_dir {
            // Only when empty: anything else's pins stay.
            let _ = std::fs::remove_dir(LIBXDP_DIR);
        }
    }
}

/// Packets xdp-filter counted for `addr` (`xdp-filter status`, its hit counter).
fn xdp_filter_hits(addr: &str) -> u64 {
    let out = std::process::Command::new("xdp-filter")
        .arg("status")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(addr))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

pub fn bench_pps(quick: bool) -> Pps {
    if tests::sh_ok("which", &["trafgen"]).is_none() {
        return Pps::Absent {
            absent: "trafgen (netsniff-ng) is not installed".into(),
        };
    }
    let secs = if quick { 1 } else { 3 };
    let bans = if quick { 1_000 } else { 10_000 };
    let runs = 3;
    let mut out = PpsRun {
        seconds: secs,
        bans: bans as u64,
        runs: runs as u64,
        ..PpsRun::default()
    };
    // Each figure is the median of `runs` floods, as dropped/s and sent/s.
    let measure = |dropped_now: &mut dyn FnMut() -> u64, lab: &Lab| -> (f64, f64) {
        let mut dropped = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..runs {
            let before = dropped_now();
            let s = flood(lab, secs);
            dropped.push((dropped_now() - before) as f64 / secs as f64);
            sent.push(s as f64 / secs as f64);
        }
        (median(dropped), median(sent))
    };
    // XDP: the host side in the test's namespace, native mode on the veth.
    {
        let lab = Lab::new();
        let mut x = Loaded::attached("pps", vec![lab.host_if.clone()], 200_000);
        x.backend.block(&with_peer(&lab, bans)).expect("xdp bans");
        out.placement = place(&lab);
        let (dropped, sent) = measure(
            &mut || {
                x.backend
                    .counters()
                    .expect("counters")
                    .get(banner_common::counter::DROPPED)
            },
            &lab,
        );
        (out.xdp_10k, out.xdp_10k_sent) = (dropped, sent);
    }
    // xdp-filter, deny by source address (its own table of addresses; one filtered here).
    if tests::sh_ok("which", &["xdp-filter"]).is_some() {
        let lab = Lab::new();
        let filter = XdpFilter::on(&lab.host_if);
        let peer = lab.peer_v4().to_string();
        let loaded = tests::sh_ok("xdp-filter", &["load", &filter.iface, "--mode", "native"])
            .and_then(|_| tests::sh_ok("xdp-filter", &["ip", &peer, "--mode", "src"]));
        if loaded.is_some() {
            place(&lab);
            (out.xdp_filter, out.xdp_filter_sent) = measure(&mut || xdp_filter_hits(&peer), &lab);
        }
    }
    for kind in ["nftables", "ipset"] {
        let lab = Lab::isolated();
        let mut b = netfilter_backend(kind, &lab, 200_000);
        place(&lab);
        b.block(&with_peer(&lab, bans)).expect("bans");
        let (dropped, sent) = measure(
            &mut || {
                b.counters()
                    .expect("counters")
                    .get(banner_common::counter::DROPPED)
            },
            &lab,
        );
        if kind == "nftables" {
            (out.nftables_10k, out.nftables_10k_sent) = (dropped, sent);
        } else {
            (out.ipset_10k, out.ipset_10k_sent) = (dropped, sent);
        }
    }
    // One iptables rule per address, the banned peer's rule last (fail2ban's default action).
    let rule_counts: Vec<usize> = if quick {
        vec![100, 1_000]
    } else {
        vec![100, 1_000, 10_000]
    };
    for &n in &rule_counts {
        let lab = Lab::isolated();
        let mut restore = String::from("*raw\n:F2B - [0:0]\n-A PREROUTING -j F2B\n");
        for s in specs(n.saturating_sub(1), BlockType::Drop)
            .iter()
            .filter(|s| s.target.is_v4())
        {
            restore.push_str(&format!("-A F2B -s {} -j DROP\n", s.target));
        }
        restore.push_str(&format!("-A F2B -s {} -j DROP\nCOMMIT\n", lab.peer_v4()));
        let mut runner = NsRunner(lab.host_ns.clone().expect("isolated"));
        runner
            .run("iptables-restore", &["--noflush"], Some(&restore))
            .expect("load rules");
        place(&lab);
        let sent = flood(&lab, secs);
        let listing = runner
            .run(
                "iptables",
                &["-t", "raw", "-L", "F2B", "-n", "-v", "-x"],
                None,
            )
            .expect("rule counters");
        let dropped: u64 = listing
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        let pps = dropped as f64 / secs as f64;
        out.iptables_rules_pps_by_count.insert(n.to_string(), pps);
        if n == *rule_counts.last().expect("counts") {
            out.iptables_rules_10k = pps;
            out.iptables_rules_10k_sent = sent as f64 / secs as f64;
        }
    }
    Pps::Ran(out)
}
