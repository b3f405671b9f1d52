//! A generated sshd auth log for benchmarks: RFC 3164 syslog lines ending at now, a given
//! share of them authentication failures from a pool of IPv4 and IPv6 addresses (from
//! 198.18.0.0/15 and 2001:db8::/32), the rest ordinary sshd, PAM, cron and kernel chatter.

use std::{io::Write as _, path::Path};

/// What went into a generated log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generated {
    pub lines: usize,
    /// Lines the sshd filter in normal mode must recognise.
    pub failure_lines: usize,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Address number `i` of the pool: even ones IPv4, odd ones IPv6.
pub fn pool_address(i: u64) -> String {
    if i.is_multiple_of(2) {
        let n = i / 2;
        format!("198.18.{}.{}", (n / 250) % 256, n % 250 + 1)
    } else {
        format!(
            "2001:db8:{:x}::{:x}",
            (i / 2) / 65_000 + 1,
            (i / 2) % 65_000 + 1
        )
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Local wall-clock parts of a unix time, via `date` once (then stepped by hand).
fn local_parts(unix: u64) -> (usize, u32, u32, u32, u32) {
    let out = std::process::Command::new("date")
        .args(["-d", &format!("@{unix}"), "+%m %d %H %M %S"])
        .output()
        .expect("date");
    let t = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = t
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v[0] as usize - 1, v[1], v[2], v[3], v[4])
}

/// Write `lines` lines to `path`; `failure_share` of them failures from `addresses`
/// addresses. Deterministic for a given seed.
pub fn generate(
    path: &Path,
    lines: usize,
    failure_share: f64,
    addresses: u64,
    seed: u64,
) -> Generated {
    let mut rng = Rng(seed | 1);
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).expect("create log"),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // Spread the log over the last few minutes (inside findtime), 200 lines a second.
    let span = (lines as u64 / 200).max(1);
    let (month, day, mut h, mut m, mut s) = local_parts(now - span);
    let mut failure_lines = 0;
    let threshold = (failure_share * 1_000_000.0) as u64;
    for i in 0..lines {
        if i > 0 && i.is_multiple_of(200) {
            s += 1;
            if s == 60 {
                s = 0;
                m += 1;
                if m == 60 {
                    m = 0;
                    h = (h + 1) % 24;
                }
            }
        }
        let pid = 1000 + rng.below(30_000);
        let port = 1024 + rng.below(60_000);
        let prefix = format!("{} {day:>2} {h:02}:{m:02}:{s:02} gw", MONTHS[month]);
        let line = if rng.below(1_000_000) < threshold {
            failure_lines += 1;
            let addr = pool_address(rng.below(addresses));
            match rng.below(10) {
                0..=3 => format!("{prefix} sshd[{pid}]: Failed password for root from {addr} port {port} ssh2"),
                4..=5 => format!("{prefix} sshd[{pid}]: Invalid user admin{} from {addr} port {port}", rng.below(100)),
                6..=8 => format!("{prefix} sshd[{pid}]: Failed password for invalid user oracle from {addr} port {port} ssh2"),
                _ => format!("{prefix} sshd[{pid}]: Connection closed by authenticating user root {addr} port {port} [preauth]"),
            }
        } else {
            let addr = pool_address(addresses + rng.below(1000));
            match rng.below(8) {
                0 => format!("{prefix} sshd[{pid}]: Accepted publickey for deploy from {addr} port {port} ssh2: ED25519 SHA256:Hx4hq2m0dWZqQkRj1l3VtTqWj9zqk0cX8sE1Zb2yLkQ"),
                1 => format!("{prefix} sshd[{pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"),
                2 => format!("{prefix} sshd[{pid}]: pam_unix(sshd:session): session closed for user deploy"),
                3 => format!("{prefix} sshd[{pid}]: Received disconnect from {addr} port {port}:11: disconnected by user"),
                4 => format!("{prefix} sshd[{pid}]: Disconnected from user deploy {addr} port {port}"),
                5 => format!("{prefix} CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
                6 => format!("{prefix} systemd[1]: Started session-{pid}.scope - Session {pid} of User deploy."),
                _ => format!("{prefix} kernel: [{pid}.{port:06}] eth0: renamed from veth{port}"),
            }
        };
        writeln!(out, "{line}").expect("write log");
    }
    out.flush().expect("flush log");
    Generated {
        lines,
        failure_lines,
    }
}
