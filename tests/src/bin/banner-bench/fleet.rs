//! The fleet and gateway sections.
//!
//! `crowdsec`: CrowdSec's decisions from `cscli decisions import` to enforced, for banner
//! with XDP, banner with nftables and CrowdSec's own firewall bouncer (nftables mode), one
//! at a time on the same LAPI; and a ban decided by gateway A's jail to enforced on gateway
//! B. `syslog`: lines received and judged from a peer namespace over TCP and UDP.

use std::{
    io::Write as _,
    net::IpAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    crowdsec::Lapi,
    report::{CrowdSecBench, SyslogBench},
    wait_until, Daemon, Lab,
};

/// The i-th decision's address: 198.19.0.0/16 first, then IPv6 (never a lab's address).
fn decision_addr(i: usize) -> String {
    if i < 65_536 {
        format!("198.19.{}.{}", i >> 8, i & 0xff)
    } else {
        format!("2001:db8:ffff::{:x}:{:x}", i >> 16, i & 0xffff)
    }
}

fn active_bans(d: &Daemon) -> u64 {
    d.cli_json(&["stats", "--json"])["bans_active"]
        .as_u64()
        .unwrap_or(0)
}

/// Elements in the firewall bouncer's two sets, in the lab's namespace.
fn bouncer_elements(lab: &Lab) -> u64 {
    let mut n = 0;
    for (family, table, set) in [
        ("ip", "crowdsec", "crowdsec-blacklists"),
        ("ip6", "crowdsec6", "crowdsec6-blacklists"),
    ] {
        let out = lab.exec(&["nft", "-j", "list", "set", family, table, set]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        n += v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["set"]["elem"].as_array())
            .map(|e| e.len() as u64)
            .sum::<u64>();
    }
    n
}

/// CrowdSec's firewall bouncer in the lab's namespace, nftables mode, asking every second.
struct FirewallBouncer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl FirewallBouncer {
    fn start(lab: &Lab, lapi: &Lapi, key: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("bouncer.yaml");
        std::fs::write(
            &config,
            format!(
                "mode: nftables\npid_dir: {d}\nupdate_frequency: 1s\ndaemonize: false\nlog_mode: file\nlog_dir: {d}\nlog_level: info\n\
                 api_url: {url}/\napi_key: {key}\ninsecure_skip_verify: false\ndisable_ipv6: false\ndeny_action: DROP\ndeny_log: false\n\
                 supported_decisions_types:\n  - ban\nblacklists_ipv4: crowdsec-blacklists\nblacklists_ipv6: crowdsec6-blacklists\n\
                 nftables:\n  ipv4:\n    enabled: true\n    set-only: false\n    table: crowdsec\n    chain: crowdsec-chain\n  ipv6:\n    enabled: true\n    set-only: false\n    table: crowdsec6\n    chain: crowdsec6-chain\n\
                 prometheus:\n  enabled: false\n  listen_addr: 127.0.0.1\n  listen_port: 60601\n",
                d = dir.path().display(),
                url = lapi.url(),
            ),
        )
        .expect("bouncer config");
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns, "crowdsec-firewall-bouncer", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start crowdsec-firewall-bouncer");
        Self { child, _dir: dir }
    }
}

impl Drop for FirewallBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn section(lapi: &Lapi, key: &str, extra: &str) -> String {
    format!("{}{extra}", lapi.banner_section(key))
}

/// Import `n` decisions, then wait until `count` says all are enforced: (import seconds,
/// seconds from the import's start to all enforced).
///
/// LAPI's SQLite may refuse a large import while bouncers' pulls write their last-pull
/// times ("database is locked"): the import is then cleared and made again, at most three
/// times.
/// The seconds from the import's start to all enforced, or how many were enforced when
/// `limit` ran out.
fn import_and_wait(
    lapi: &Lapi,
    csv: &Path,
    n: usize,
    count: &dyn Fn() -> u64,
    limit: Duration,
) -> (f64, Result<f64, u64>) {
    let mut attempt = 0;
    let (start, imported) = loop {
        attempt += 1;
        let start = Instant::now();
        let out = lapi.try_cscli(&["decisions", "import", "-i", &csv.display().to_string()]);
        let imported = start.elapsed().as_secs_f64();
        if out.status.success() {
            break (start, imported);
        }
        let why = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            attempt < 3 && why.contains("database is locked"),
            "cscli decisions import failed: {why}"
        );
        eprintln!("bench: crowdsec: LAPI's database was locked during the import; again");
        clear(lapi, count);
    };
    let done = wait_until(limit, || count() >= n as u64);
    let total = start.elapsed().as_secs_f64();
    let enforced = count();
    (imported, if done { Ok(total) } else { Err(enforced) })
}

/// How long banner may take to enforce every decision: far past its figures, so only a
/// decision it never enforces fails the section.
const BANNER_LIMIT: Duration = Duration::from_secs(300);
/// How long the peer is given: what it has not enforced by then is reported as missed.
const PEER_LIMIT: Duration = Duration::from_secs(120);

/// banner must enforce every decision LAPI holds.
fn enforced_all(who: &str, n: usize, total: Result<f64, u64>) -> f64 {
    total.unwrap_or_else(|enforced| {
        panic!(
            "{who} enforced {enforced} of {n} decisions in {} s",
            BANNER_LIMIT.as_secs()
        )
    })
}

fn clear(lapi: &Lapi, count: &dyn Fn() -> u64) {
    lapi.cscli(&["decisions", "delete", "--all"]);
    assert!(
        wait_until(Duration::from_secs(120), || count() == 0),
        "decisions still enforced after delete --all: {}",
        count()
    );
}

pub fn bench_crowdsec(quick: bool) -> CrowdSecBench {
    let sizes: Vec<usize> = if quick {
        vec![1000]
    } else {
        vec![1000, 10_000, 100_000]
    };
    let lab = Lab::new();
    let lapi = Lapi::start_on(lab.host_v4());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut out = CrowdSecBench {
        sizes: sizes.iter().map(|n| *n as u64).collect(),
        ..CrowdSecBench::default()
    };
    let fwb_present = Command::new("crowdsec-firewall-bouncer")
        .arg("-h")
        .output()
        .is_ok();
    if !fwb_present {
        out.firewall_bouncer_absent = Some("crowdsec-firewall-bouncer is not installed".into());
    }
    let (key_xdp, key_nft, key_fwb) = (
        lapi.bouncer_key("bench-xdp"),
        lapi.bouncer_key("bench-nft"),
        lapi.bouncer_key("bench-fwb"),
    );
    for &n in &sizes {
        let csv = dir.path().join(format!("decisions-{n}.csv"));
        let mut text = String::from("duration,scope,value\n");
        for i in 0..n {
            text.push_str(&format!("4h,ip,{}\n", decision_addr(i)));
        }
        std::fs::write(&csv, text).expect("write decisions");
        let key = n.to_string();

        eprintln!("bench: crowdsec: {n} decisions into banner (XDP)");
        {
            let d = Daemon::start(&[&lab.host_if], "", &section(&lapi, &key_xdp, ""));
            let count = || active_bans(&d);
            let (imported, total) = import_and_wait(&lapi, &csv, n, &count, BANNER_LIMIT);
            out.import_s.insert(key.clone(), imported);
            out.banner_xdp_s
                .insert(key.clone(), enforced_all("banner XDP", n, total));
            clear(&lapi, &count);
        }
        eprintln!("bench: crowdsec: {n} decisions into banner (nftables)");
        {
            let d = Daemon::start_in(
                Some(&lab.ns),
                &[&lab.peer_if],
                "backend = \"nftables\"",
                &section(&lapi, &key_nft, ""),
            );
            let count = || active_bans(&d);
            let (_, total) = import_and_wait(&lapi, &csv, n, &count, BANNER_LIMIT);
            out.banner_nftables_s
                .insert(key.clone(), enforced_all("banner nftables", n, total));
            clear(&lapi, &count);
        }
        if fwb_present {
            eprintln!("bench: crowdsec: {n} decisions into crowdsec-firewall-bouncer");
            let _fwb = FirewallBouncer::start(&lab, &lapi, &key_fwb);
            let count = || bouncer_elements(&lab);
            // Its tables exist once it has pulled for the first time.
            wait_until(Duration::from_secs(30), || {
                lab.exec(&["nft", "list", "table", "ip", "crowdsec"])
                    .status
                    .success()
            });
            match import_and_wait(&lapi, &csv, n, &count, PEER_LIMIT).1 {
                Ok(total) => {
                    out.firewall_bouncer_s.insert(key.clone(), total);
                }
                Err(enforced) => {
                    out.firewall_bouncer_missed
                        .insert(key.clone(), n as u64 - enforced.min(n as u64));
                }
            }
            // Its lifting is not measured (it took minutes for 100k): LAPI is emptied, the
            // bouncer stopped and its tables removed, so the next size starts clean.
            lapi.cscli(&["decisions", "delete", "--all"]);
            drop(_fwb);
            for (family, table) in [("ip", "crowdsec"), ("ip6", "crowdsec6")] {
                let _ = lab.exec(&["nft", "delete", "table", family, table]);
            }
        }
    }
    // On a LAPI of its own: the one above holds the history of 100k decisions imported and
    // deleted, which slows its every query (p99 2.9 s there, 1.0 s on a fresh one).
    drop(lapi);
    propagation(&Lapi::start(), quick, &mut out);
    out
}

/// Gateway A's jail bans (one failure is enough here), pushes; gateway B pulls every
/// second. Seconds from the log line written on A to the ban enforced on B.
fn propagation(lapi: &Lapi, quick: bool, out: &mut CrowdSecBench) {
    let bans = if quick { 20 } else { 200 };
    eprintln!("bench: crowdsec: propagation of {bans} bans from gateway A to B");
    let creds = lapi.dir.path().join("gw-a.yaml");
    lapi.cscli(&[
        "machines",
        "add",
        "bench-gw-a",
        "--password",
        "bench-gw-a-secret-1",
        "--force",
        "-f",
        &creds.display().to_string(),
    ]);
    let (a, b) = (Lab::new(), Lab::new());
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("app.log");
    std::fs::write(&log, "").expect("log");
    let ga = Daemon::start(
        &[&a.host_if],
        "",
        &format!(
            "\n[jails.app]\nlogpath = \"{}\"\nmaxretry = 1\n[filters.app]\nfailregex = ['^login failed from <HOST>$']\n\
             \n[crowdsec]\nlapi_url = \"{}\"\npull = false\npush = true\ncredentials_file = \"{}\"\n",
            log.display(),
            lapi.url(),
            creds.display()
        ),
    );
    let gb = Daemon::start(
        &[&b.host_if],
        "",
        &lapi.banner_section(&lapi.bouncer_key("bench-gw-b")),
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open log");
    let start = Instant::now();
    let mut written = Vec::with_capacity(bans);
    let mut seen: Vec<Option<f64>> = vec![None; bans];
    let target = |i: usize| format!("198.19.250.{}", i % 250 + 1);
    let poll = |seen: &mut Vec<Option<f64>>| {
        let listed = gb.cli_json(&["list", "--json"]);
        let now = start.elapsed().as_secs_f64();
        for b in listed.as_array().into_iter().flatten() {
            let ip = b["ip"].as_str().unwrap_or_default();
            for (i, s) in seen.iter_mut().enumerate() {
                if s.is_none() && ip == target(i) {
                    *s = Some(now);
                }
            }
        }
    };
    for i in 0..bans {
        writeln!(file, "login failed from {}", target(i)).expect("write log");
        written.push(start.elapsed().as_secs_f64());
        poll(&mut seen);
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.iter().any(Option::is_none) && Instant::now() < deadline {
        poll(&mut seen);
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut lat: Vec<f64> = seen
        .iter()
        .zip(&written)
        .map(|(s, w)| s.map_or(f64::NAN, |s| s - w))
        .collect();
    assert!(
        lat.iter().all(|l| l.is_finite()),
        "{} of {bans} bans never reached gateway B:\n{}",
        lat.iter().filter(|l| !l.is_finite()).count(),
        ga.log_text()
    );
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
    out.propagation_bans = bans as u64;
    out.propagation_p50_s = at(0.5);
    out.propagation_p99_s = at(0.99);
    out.propagation_max_s = lat[lat.len() - 1];
}

/// A syslog line of the mix a gateway sees: failures (one in four) and noise.
fn syslog_line(i: usize) -> String {
    if i.is_multiple_of(4) {
        format!(
            "<38>Nov 27 16:00:01 web{} sshd[{}]: Failed password for root from 198.19.{}.{} port 22 ssh2\n",
            i % 7,
            1000 + i % 30_000,
            (i >> 8) & 0xff,
            i & 0xff
        )
    } else {
        format!(
            "<30>Nov 27 16:00:01 web{} CRON[{}]: pam_unix(cron:session): session opened for user root by (uid=0)\n",
            i % 7,
            1000 + i % 30_000
        )
    }
}

fn jail_lines(d: &Daemon) -> u64 {
    d.cli_json(&["status", "--json"])["jails"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|j| j["name"] == "sshd")
        .and_then(|j| j["lines"].as_u64())
        .unwrap_or(0)
}

pub fn bench_syslog(quick: bool) -> SyslogBench {
    let n: usize = if quick { 50_000 } else { 1_000_000 };
    let lab = Lab::new();
    let host: IpAddr = lab.host_v4();
    let port = 5514;
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[syslog]\nlisten = [\"tcp://{host}:{port}\", \"udp://{host}:{port}\"]\nallowed_senders = [\"198.18.{}.0/24\"]\nrate_limit = 100000000\n\
             [jails.sshd]\nlogpath = []\njournalmatch = []\nsource = \"syslog\"\nmaxretry = 1000\n",
            lab.id
        ),
    );
    assert!(
        wait_until(Duration::from_secs(10), || d
            .log_text()
            .contains("listening on udp")),
        "{}",
        d.log_text()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lines.txt");
    let mut text = String::with_capacity(n * 110);
    for i in 0..n {
        text.push_str(&syslog_line(i));
    }
    std::fs::write(&file, &text).expect("write lines");

    // TCP: newline framing from the peer, until banner has judged every line.
    let start = Instant::now();
    let sent = Command::new("ip")
        .args(["netns", "exec", &lab.ns, "nc", "-N", "-w", "5"])
        .arg(host.to_string())
        .arg(port.to_string())
        .stdin(std::fs::File::open(&file).expect("open lines"))
        .output()
        .expect("nc");
    assert!(
        sent.status.success(),
        "nc: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(120), || jail_lines(&d) >= n as u64),
        "{} of {n} TCP lines judged",
        jail_lines(&d)
    );
    let tcp_secs = start.elapsed().as_secs_f64();

    // UDP: one datagram per line, as fast as a sender can; what arrives is counted.
    let before = jail_lines(&d);
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nn=0\nfor l in open(sys.argv[1],'rb'):\n    s.sendto(l,('{host}',{port}))\n    n+=1\nprint(n)\n"
    );
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns, "python3", "-c", &script])
        .arg(&file)
        .output()
        .expect("python3");
    let send_secs = start.elapsed().as_secs_f64();
    let udp_sent: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    // Settled: no more lines for half a second.
    let mut last = jail_lines(&d);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = jail_lines(&d);
        if now == last {
            break;
        }
        last = now;
    }
    let received = last - before;
    SyslogBench {
        tcp_lines: n as u64,
        tcp_lines_per_sec: n as f64 / tcp_secs,
        udp_sent,
        udp_received: received,
        udp_lines_per_sec: received as f64 / send_secs,
        udp_loss: if udp_sent > 0 {
            1.0 - received as f64 / udp_sent as f64
        } else {
            f64::NAN
        },
    }
}
