//! Issue 9's lab findings, each reproduced: what an attacker, a fault or a new user did to the
//! running daemon. Each test failed on the code before its fix.

use std::{
    os::unix::fs::PermissionsExt as _,
    process::{Command, Stdio},
    time::Duration,
};

use tests::{banner_bin, wait_until, Daemon, Lab};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A daemon config of the test's own (not the helper's: these tests need the embedded
/// default's allowlist, or to clash with another daemon on purpose), without the sshd jail.
/// Returns the command that starts that daemon on `socket`.
fn standalone(
    dir: &std::path::Path,
    iface: &str,
    bpffs_dir: &str,
    socket: &std::path::Path,
) -> Command {
    let cfg = dir.join("banner.toml");
    std::fs::write(
        &cfg,
        format!(
            "[banner]\ninterfaces = [\"{iface}\"]\nstate_dir = \"{}\"\nbpffs_dir = \"{bpffs_dir}\"\n[jails.sshd]\nenabled = false\n",
            dir.join("state").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(banner_bin());
    cmd.arg("--socket")
        .arg(socket)
        .args(["daemon", "--config"])
        .arg(&cfg);
    cmd
}

#[test]
fn the_state_directory_and_its_files_are_root_only() {
    // Item 21: state dir 0755 and bans.log 0644 let any local user read every ban.
    let lab = Lab::new();
    let d = Daemon::start(&[&lab.host_if], "", "");
    d.cli_ok(&["ban", "198.18.9.9"]);
    let state = d.dir.path().join("state");
    assert_eq!(mode(&state), 0o700);
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn a_regular_file_at_the_socket_path_is_never_deleted() {
    // Item 22: a typo in --socket deleted a real file.
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("notes.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let bpffs = format!("/sys/fs/bpf/banner-t-sock-{}", std::process::id());
    let out = standalone(dir.path(), &lab.host_if, &bpffs, &precious)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    // Refused before the backend was opened: nothing attached or pinned behind it.
    assert!(
        !std::path::Path::new(&bpffs)
            .join(banner_common::map_name::BANS_V4)
            .exists(),
        "a failed start left maps pinned under {bpffs}"
    );
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    // Item 24: `banner list | head -3` panicked (rc 101) on the broken pipe.
    let lab = Lab::new();
    let d = Daemon::start(&[&lab.host_if], "", "");
    let targets: Vec<String> = (1..=200)
        .map(|i| format!("198.18.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let mut args = vec!["ban"];
    args.extend(targets.iter().map(String::as_str));
    d.cli_ok(&args);
    for cmd in [["list"], ["status"], ["stats"]] {
        let mut child = Command::new(banner_bin())
            .arg("--socket")
            .arg(&d.socket)
            .args(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the CLI has its answer to print.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{cmd:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{cmd:?}: {err}");
    }
}

#[test]
fn a_user_who_is_not_root_is_told_the_socket_obeys_root_only() {
    // Item 28: the message said "is banner daemon running?".
    let lab = Lab::new();
    let d = Daemon::start(&[&lab.host_if], "", "");
    // Let `nobody` reach the socket's directory, so the socket's own 0600 is what stops it.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(banner_bin())
        .arg("--socket")
        .arg(&d.socket)
        .arg("list")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("obeys root only"), "{err}");
    assert!(!err.contains("is `banner daemon` running"), "{err}");
}

#[test]
fn an_interface_that_does_not_exist_stops_the_daemon() {
    // Item 3: `--iface nosuch0` quietly moved to nftables on every interface.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(banner_bin())
        .arg("--socket")
        .arg(dir.path().join("s.sock"))
        .args(["daemon", "--iface", "nosuch0", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such interface: nosuch0"), "{err}");
    assert!(!dir.path().join("s.sock").exists());
}

#[test]
fn a_neighbour_on_the_guarded_link_can_be_banned() {
    // Item 1: with the old default, `ban` of a WAN neighbour said "in the allowlist (subnet
    // of ...)" and a brute force from there was never banned.
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    // The default (ignore_attached_subnets = true), not the test helper's config.
    let bpffs = format!("/sys/fs/bpf/banner-t-wan-{}", std::process::id());
    let _daemon = Stopped(
        standalone(dir.path(), &lab.host_if, &bpffs, &dir.path().join("s.sock"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let cli = |args: &[&str]| {
        Command::new(banner_bin())
            .arg("--socket")
            .arg(dir.path().join("s.sock"))
            .args(args)
            .output()
            .unwrap()
    };
    assert!(wait_until(Duration::from_secs(15), || cli(&["stats"])
        .status
        .success()));
    let peer = lab.peer_v4().to_string();
    let out = cli(&["ban", &peer]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("allowlist"), "{text}");
    // The host's own address on that link stays protected.
    let own = cli(&["ban", &lab.host_v4().to_string()]);
    assert!(!own.status.success());
    assert!(String::from_utf8_lossy(&own.stderr).contains("own address"));
}

/// A daemon process stopped with SIGTERM (it cleans its pins up) when the test ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_daemon_on_the_same_bpffs_directory_is_refused() {
    // Item 8: only the state dir was locked; a second daemon adopted the first one's link
    // and maps, and its `unban --all` and stop removed the first one's bans and pins.
    let lab = Lab::new();
    let first = Daemon::start(&[&lab.host_if], "", "");
    let peer = lab.peer_v4().to_string();
    first.cli_ok(&["ban", &peer, "--blocktype", "drop"]);
    assert!(!lab.ping(lab.host_v4()));
    let dir = tempfile::tempdir().unwrap();
    let out = standalone(
        dir.path(),
        &lab.host_if,
        &first.bpffs_dir.display().to_string(),
        &dir.path().join("s.sock"),
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another banner daemon uses the bpffs directory"),
        "{err}"
    );
    // The first daemon's ban and pins are untouched.
    assert!(!lab.ping(lab.host_v4()));
    assert!(first
        .bpffs_dir
        .join(banner_common::map_name::BANS_V4)
        .exists());
    assert_eq!(
        first.cli_json(&["list", "--json"]).as_array().map(Vec::len),
        Some(1)
    );
}

/// Descriptors of process `pid` that point at files under `dir`.
fn fds_under(pid: u32, dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .filter(|t| t.starts_with(&dir.display().to_string()))
        .collect()
}

#[test]
fn deleted_glob_files_are_let_go_once_drained() {
    // Item 17: files matched by a glob stayed open after deletion (disk not freed, then fds
    // exhausted).
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[jails.app]\nlogpath = \"{}/*.log\"\n[filters.app]\nfailregex = ['^denied <HOST>$']\n",
            dir.path().display()
        ),
    );
    let pid = d.pid().unwrap();
    for i in 0..20 {
        std::fs::write(dir.path().join(format!("f{i}.log")), "hello\n").unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(10), || fds_under(pid, dir.path()).len()
            == 20),
        "{:?}",
        fds_under(pid, dir.path())
    );
    for i in 0..20 {
        std::fs::remove_file(dir.path().join(format!("f{i}.log"))).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(10), || fds_under(pid, dir.path())
            .is_empty()),
        "still open: {:?}",
        fds_under(pid, dir.path())
    );
    let status = d.cli_json(&["status", "app", "--json"]);
    assert_eq!(
        status["jails"][0]["sources"].as_array().map(Vec::len),
        Some(0),
        "{status}"
    );
}

#[test]
fn a_fifo_or_device_log_stalls_nothing() {
    // Item 12: a FIFO logpath took both runtime threads: the control socket, reload, every
    // source and SIGTERM stopped. /dev/zero burnt a core.
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.log");
    let real = dir.path().join("auth.log");
    std::fs::write(&real, "").unwrap();
    let mut d = Daemon::start(
        &[&lab.host_if],
        "",
        &format!(
            "\n[jails.sshd]\njournalmatch = []\nlogpath = [\"{}\", \"{}\"]\n",
            fifo.display(),
            real.display()
        ),
    );
    // The FIFO appears after start (check-config refuses one that is already there).
    tests::sh("mkfifo", &[fifo.to_str().unwrap()]);
    let sources =
        |d: &Daemon| d.cli_json(&["status", "sshd", "--json"])["jails"][0]["sources"].clone();
    assert!(
        wait_until(Duration::from_secs(10), || sources(&d)
            .to_string()
            .contains("not a regular file")),
        "{}",
        sources(&d)
    );
    // The other source still bans, the socket still answers, SIGTERM still stops.
    let peer = lab.peer_v4();
    let mut lines = String::new();
    for port in 1..=3 {
        lines.push_str(&format!(
            "{} gw sshd[{port}]: Failed password for root from {peer} port {port} ssh2\n",
            chrono_now()
        ));
    }
    std::fs::write(&real, lines).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !lab.ping(lab.host_v4())),
        "{}",
        d.log_text()
    );
    assert!(d.stop().success());
}

/// Now as a syslog (RFC 3164) timestamp.
fn chrono_now() -> String {
    String::from_utf8(
        Command::new("date")
            .args(["+%b %e %H:%M:%S"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim_end()
    .to_string()
}

#[test]
fn a_re_created_interface_gets_the_program_back() {
    // Item 5: after the interface was deleted and re-created, XDP was gone while `stats`
    // still said "xdp" and `list` still showed the ban; nothing was logged.
    let lab = Lab::new();
    let d = Daemon::start(&[&lab.host_if], "", "");
    let peer = lab.peer_v4().to_string();
    d.cli_ok(&["ban", &peer, "--blocktype", "drop"]);
    assert!(!lab.ping(lab.host_v4()));
    // Gone: said so, in stats and in the log.
    tests::sh("ip", &["link", "del", &lab.host_if]);
    assert!(
        wait_until(Duration::from_secs(10), || d
            .cli_ok(&["stats"])
            .contains("NOT ENFORCED")),
        "{}\n{}",
        d.cli_ok(&["stats"]),
        d.log_text()
    );
    assert!(d.log_text().contains("NOT ENFORCED"));
    assert!(d.cli_ok(&["status"]).contains("NOT ENFORCED"));
    // Back (a new interface index): re-attached, the ban holds again.
    lab.recreate_link();
    assert!(
        wait_until(Duration::from_secs(10), || !lab.ping(lab.host_v4())),
        "{}",
        d.log_text()
    );
    assert!(d.log_text().contains("re-attached"), "{}", d.log_text());
    assert!(!d.cli_ok(&["stats"]).contains("NOT ENFORCED"));
}

#[test]
fn an_address_the_host_gains_later_is_never_banned() {
    // Item 9: addresses gained after start (DHCP, SLAAC, a new VIP) could be banned.
    let lab = Lab::new();
    let d = Daemon::start(&[&lab.host_if], "", "");
    let vip = format!("198.18.{}.77", lab.id);
    d.cli_ok(&["ban", &vip]);
    tests::sh(
        "ip",
        &["addr", "add", &format!("{vip}/32"), "dev", &lab.host_if],
    );
    assert!(
        wait_until(Duration::from_secs(10), || d
            .cli_json(&["list", "--json"])
            .as_array()
            .is_some_and(Vec::is_empty)),
        "the host's new address stayed banned:\n{}",
        d.log_text()
    );
    let out = d.cli(&["ban", &vip]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("own address"));
}

#[test]
fn a_daemon_under_ip_netns_exec_warns_that_its_pins_die_with_it() {
    // Item 29: under `ip netns exec` the daemon mounted a private bpffs; after kill -9 its
    // pins were gone and nothing enforced, without a word.
    let lab = Lab::isolated();
    let d = Daemon::start_in(
        lab.host_ns.as_deref(),
        &[&lab.host_if],
        "backend = \"xdp\"",
        "",
    );
    assert!(
        d.log_text().contains("mount namespace of its own"),
        "{}",
        d.log_text()
    );
    // The same daemon started with nsenter --net (the host's mounts) says nothing.
    let lab2 = Lab::new();
    let d2 = Daemon::start(&[&lab2.host_if], "backend = \"xdp\"", "");
    assert!(!d2.log_text().contains("mount namespace of its own"));
}

/// A tun device made by the test (no link header: ARPHRD_NONE), removed when dropped.
struct Tun {
    file: std::fs::File,
    name: String,
}

impl Tun {
    fn new(name: &str) -> Self {
        use std::os::fd::AsRawFd as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .expect("open /dev/net/tun");
        // struct ifreq: the name, then the flags (IFF_TUN | IFF_NO_PI).
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        let flags: i16 = 0x0001 | 0x1000;
        ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
        const TUNSETIFF: u64 = 0x4004_54ca;
        // SAFETY: TUNSETIFF reads and writes one struct ifreq, which `ifr` is large enough for.
        let rc = unsafe { nix::libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) };
        assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
        Self {
            file,
            name: name.to_string(),
        }
    }

    /// Wait up to `limit` for a packet from the kernel.
    fn read(&mut self, limit: Duration) -> Option<Vec<u8>> {
        use std::{io::Read as _, os::fd::AsRawFd as _};
        let mut pfd = nix::libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: nix::libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { nix::libc::poll(&mut pfd, 1, limit.as_millis() as i32) };
        if n <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 2048];
        let got = self.file.read(&mut buf).ok()?;
        buf.truncate(got);
        Some(buf)
    }
}

impl Drop for Tun {
    fn drop(&mut self) {
        tests::sh_quiet("ip", &["link", "del", &self.name]);
    }
}

#[test]
fn a_tun_interface_is_guarded_from_the_ip_header() {
    // Item 4: the program assumed a 14-byte Ethernet header, so on tun/WireGuard/PPP it
    // enforced nothing (a banned source got its echo replies; counted "not parsed").
    use std::io::Write as _;
    use tests::packet::{icmp_echo, ipv4, PROTO_ICMP};
    tests::require_root();
    // Clear of the labs' 198.18.<10..>.0/24 and the bench's 198.18.<150..>.0/24.
    let id = 245;
    let name = format!("bntun{}", std::process::id() % 100_000);
    let mut tun = Tun::new(&name);
    tests::sh(
        "ip",
        &["addr", "add", &format!("198.18.{id}.1/24"), "dev", &name],
    );
    tests::sh("ip", &["link", "set", &name, "up"]);
    let d = Daemon::start(&[&name], "", "");
    assert!(
        d.cli_ok(&["stats"]).contains(&name),
        "{}",
        d.cli_ok(&["stats"])
    );
    let peer = [198, 18, id as u8, 2];
    let mut echo = |seq: u16| -> bool {
        let packet = ipv4(
            peer,
            [198, 18, id as u8, 1],
            PROTO_ICMP,
            &icmp_echo(7, seq),
            &[],
            0,
        );
        tun.file.write_all(&packet).expect("write to tun");
        // Our echo reply (type 0) to the peer, within a second; anything else is skipped.
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            if let Some(p) = tun.read(Duration::from_millis(200)) {
                if p.len() >= 28 && p[9] == PROTO_ICMP && p[16..20] == peer && p[20] == 0 {
                    return true;
                }
            }
        }
        false
    };
    assert!(echo(1), "the clean peer gets its echo reply");
    let peer_s = format!("198.18.{id}.2");
    d.cli_ok(&["ban", &peer_s, "--blocktype", "drop"]);
    assert!(
        !echo(2),
        "a banned source got its echo reply through the tun"
    );
    assert!(
        d.cli_json(&["stats", "--json"])["dropped"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
    d.cli_ok(&["unban", &peer_s]);
    assert!(echo(3));
}
