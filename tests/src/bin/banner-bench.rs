//! Measurements that need banner's library (run by `cargo xtask bench`, which also runs the
//! peers and writes the report). Each subcommand prints one JSON object on stdout.
//!
//!   banner-bench [--quick] [--out DIR] [SECTION]...
//!
//! Sections: xdp (ns/packet from BPF_PROG_TEST_RUN, banner and xdp-filter). Writes
//! DIR/report.json and DIR/report.md and prints the Markdown.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::{Duration, SystemTime},
};

use banner::{
    addr::IpPrefix,
    backend::{
        xdp::{AttachMode, XdpBackend, XdpOptions},
        Backend,
    },
    model::{BlockSpec, BlockType},
};
use serde_json::{json, Map, Value};
use tests::packet::udp_frame;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut out_dir = PathBuf::from("target/bench");
    let mut sections: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {}
            "--out" => out_dir = PathBuf::from(it.next().expect("--out needs a directory")),
            s if SECTIONS.contains(&s) => sections.push(s.to_string()),
            other => {
                eprintln!("banner-bench: unknown argument `{other}`\nusage: banner-bench [--quick] [--out DIR] [{}]...", SECTIONS.join("|"));
                std::process::exit(2);
            }
        }
    }
    if sections.is_empty() {
        sections = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let mut report = Map::new();
    report.insert("machine".into(), machine());
    report.insert("quick".into(), json!(quick));
    for section in &sections {
        eprintln!("bench: {section}{}", if quick { " (quick)" } else { "" });
        let value = match section.as_str() {
            "xdp" => bench_xdp(quick),
            _ => unreachable!("checked above"),
        };
        report.insert(section.clone(), value);
    }
    let report = Value::Object(report);
    let json_path = out_dir.join("report.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report).expect("encode"),
    )
    .expect("write report.json");
    let md = markdown(&report);
    std::fs::write(out_dir.join("report.md"), &md).expect("write report.md");
    print!("{md}");
    eprintln!("bench: wrote {} and report.md", json_path.display());
}

const SECTIONS: &[&str] = &["xdp"];

/// The machine the figures come from.
fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({ "cpu": cpu, "cores": cores, "kernel": kernel })
}

fn num(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".into(), |f| format!("{f:.0}"))
}

/// The report as Markdown tables, each banner figure beside its peer.
fn markdown(r: &Value) -> String {
    let m = &r["machine"];
    let mut out = format!(
        "# banner benchmarks\n\nMachine: {} ({} cores), kernel {}.{}\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["kernel"].as_str().unwrap_or("?"),
        if r["quick"] == json!(true) {
            " Quick run: small sizes, not for comparison."
        } else {
            ""
        }
    );
    if let Some(x) = r.get("xdp") {
        out.push_str(&format!(
            "\n## XDP: ns per packet (BPF_PROG_TEST_RUN, median of {} runs of {} packets)\n\n",
            x["samples"], x["repeat"]
        ));
        let counts: Vec<String> = x["ban_counts"]
            .as_array()
            .map(|a| a.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "| packet | {} |\n|---|{}\n",
            counts
                .iter()
                .map(|c| format!("{c} bans"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(counts.len())
        ));
        for (key, label) in [
            ("clean_v4_ns", "clean IPv4"),
            ("banned_v4_ns", "banned IPv4 (drop)"),
            ("clean_v6_ns", "clean IPv6"),
            ("banned_v6_ns", "banned IPv6 (drop)"),
        ] {
            let cells: Vec<String> = counts.iter().map(|c| num(&x[key][c])).collect();
            out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
        }
        let ratio = x["clean_v4_ratio_max_vs_1"].as_f64().unwrap_or(0.0);
        out.push_str(&format!(
            "\nClean IPv4 with the most bans vs 1 ban: {ratio:.2}x (goal: at most 1.3x).\n"
        ));
        match x.get("xdp_filter_clean_v4_ns") {
            Some(xf) => {
                let ours = counts
                    .last()
                    .map(|c| x["clean_v4_ns"][c].as_f64().unwrap_or(0.0))
                    .unwrap_or(0.0);
                let theirs = xf.as_f64().unwrap_or(0.0);
                out.push_str(&format!(
                    "\n| clean IPv4 | ns/packet | vs banner |\n|---|---|---|\n| banner ({} bans) | {} | 1.00x |\n| xdp-filter (xdp-tools, deny-by-IP) | {} | {:.2}x |\n",
                    counts.last().cloned().unwrap_or_default(),
                    num(&json!(ours)),
                    num(xf),
                    if ours > 0.0 { theirs / ours } else { 0.0 }
                ));
            }
            None => out.push_str(&format!(
                "\nxdp-filter: absent ({}).\n",
                x["xdp_filter_absent"].as_str().unwrap_or("?")
            )),
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean ns per run of `frame`, median over `samples` test_runs of `repeat` runs each.
fn ns_per_packet(backend: &mut XdpBackend, frame: &[u8], repeat: u32, samples: usize) -> f64 {
    let runs: Vec<f64> = (0..samples)
        .map(|_| {
            let r = backend.test_run(frame, repeat).expect("test_run");
            r.duration.as_nanos() as f64
        })
        .collect();
    median(runs)
}

/// Filler bans that no probe frame uses: IPv4 from 240.0.0.0/4 (reserved, never routed),
/// IPv6 from 2001:db8:ffff::/48.
fn filler(i: u32) -> (IpPrefix, IpPrefix) {
    let v4 = Ipv4Addr::from(0xf000_0000u32 + i);
    let v6 = Ipv6Addr::from(0x2001_0db8_ffff_0000_0000_0000_0000_0000u128 + u128::from(i));
    (
        IpPrefix::host(IpAddr::V4(v4)),
        IpPrefix::host(IpAddr::V6(v6)),
    )
}

struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_xdp(quick: bool) -> Value {
    let counts: &[u32] = if quick {
        &[1, 1_000, 10_000]
    } else {
        &[1, 10_000, 1_000_000]
    };
    let (repeat, samples) = if quick { (20_000, 3) } else { (1_000_000, 5) };
    let dir = PathBuf::from(format!("/sys/fs/bpf/banner-bench-{}", std::process::id()));
    let _pins = Pins(dir.clone());
    let max = counts.iter().max().copied().unwrap_or(1) + 16;
    let mut backend = XdpBackend::open(&XdpOptions {
        interfaces: Vec::new(),
        mode: AttachMode::Auto,
        bpffs_dir: dir,
        max_exact_bans: max,
        max_prefix_bans: 64,
    })
    .unwrap_or_else(|e| panic!("loading banner's XDP program: {e}"));

    let host4: IpAddr = "198.18.0.1".parse().unwrap();
    let host6: IpAddr = "2001:db8::1".parse().unwrap();
    let bad4: IpAddr = "198.18.1.7".parse().unwrap();
    let bad6: IpAddr = "2001:db8:1::7".parse().unwrap();
    let frames = [
        ("banned_v4_ns", udp_frame(bad4, host4)),
        (
            "clean_v4_ns",
            udp_frame("198.18.1.8".parse().unwrap(), host4),
        ),
        ("banned_v6_ns", udp_frame(bad6, host6)),
        (
            "clean_v6_ns",
            udp_frame("2001:db8:1::8".parse().unwrap(), host6),
        ),
    ];
    let expires_at = Some(SystemTime::now() + Duration::from_secs(3600));
    let spec = |target| BlockSpec {
        target,
        blocktype: BlockType::Drop,
        expires_at,
    };
    backend
        .block(&[spec(IpPrefix::host(bad4)), spec(IpPrefix::host(bad6))])
        .expect("ban probes");

    let mut results: Map<String, Value> = Map::new();
    let mut loaded = 1u32;
    for &n in counts {
        // Top the maps up to n bans per family (the probe is one of them).
        let batch: Vec<BlockSpec> = (loaded..n)
            .flat_map(|i| {
                let (a, b) = filler(i);
                [spec(a), spec(b)]
            })
            .collect();
        for chunk in batch.chunks(100_000) {
            backend.block(chunk).expect("filling the ban maps");
        }
        loaded = n.max(loaded);
        for (name, frame) in &frames {
            let ns = ns_per_packet(&mut backend, frame, repeat, samples);
            results
                .entry(name.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("object")
                .insert(n.to_string(), json!(ns));
        }
    }
    let _ = backend.shutdown(false);
    let clean = &results["clean_v4_ns"];
    let first = clean[counts[0].to_string()].as_f64().unwrap_or(0.0);
    let last = clean[counts[counts.len() - 1].to_string()]
        .as_f64()
        .unwrap_or(0.0);
    results.insert(
        "clean_v4_ratio_max_vs_1".into(),
        json!(if first > 0.0 { last / first } else { 0.0 }),
    );

    match xdp_filter_clean_v4(&frames[1].1, repeat, samples) {
        Ok(ns) => results.insert("xdp_filter_clean_v4_ns".into(), json!(ns)),
        Err(why) => results.insert("xdp_filter_absent".into(), json!(why)),
    };
    results.insert("repeat".into(), json!(repeat));
    results.insert("samples".into(), json!(samples));
    results.insert("ban_counts".into(), json!(counts));
    Value::Object(results)
}

/// xdp-tools' xdp-filter program (deny by IP) on the same clean IPv4 frame, loaded with aya
/// with its maps pinned in a private directory (its object asks for /sys/fs/bpf itself).
fn xdp_filter_clean_v4(frame: &[u8], repeat: u32, samples: usize) -> Result<f64, String> {
    use aya::programs::{TestRun as _, TestRunOptions, Xdp};
    let object = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_ip.o";
    if !std::path::Path::new(object).exists() {
        return Err(format!("{object} not installed (xdp-tools)"));
    }
    let dir = PathBuf::from(format!(
        "/sys/fs/bpf/banner-bench-xf-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let _pins = Pins(dir.clone());
    let mut loader = aya::EbpfLoader::new();
    loader.default_map_pin_directory(&dir);
    let mut ebpf = loader
        .load_file(object)
        .map_err(|e| format!("loading {object}: {e}"))?;
    let name = ebpf
        .programs()
        .map(|(n, _)| n.to_string())
        .next()
        .ok_or("no program in the object")?;
    let prog: &mut Xdp = ebpf
        .program_mut(&name)
        .ok_or("program vanished")?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    prog.load()
        .map_err(|e| format!("the kernel refused xdp-filter: {e}"))?;
    let mut runs = Vec::new();
    for _ in 0..samples {
        let mut out = vec![0u8; frame.len() + 64];
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(|e| format!("test_run: {e}"))?;
        runs.push(r.duration.as_nanos() as f64);
    }
    Ok(median(runs))
}
