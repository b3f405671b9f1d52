//! The privileged test lab: network namespaces joined to the host by veth pairs, a banner
//! daemon per test, and hand-built frames for `test_run`.
//!
//! Everything a test creates (namespace, interfaces, pinned maps, state directory, daemon
//! process) belongs to a guard that removes it on drop, so a failing (panicking) test cleans
//! up too. Addresses come only from 198.18.0.0/15 and 2001:db8::/32. Every wait is bounded.

pub mod authlog;
pub mod packet;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

/// Panic unless root: these tests load XDP programs and create namespaces.
pub fn require_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "privileged tests need root: run them through `cargo xtask test`"
    );
}

/// The banner binary under test: $BANNER_BIN (set by xtask), else the release build.
pub fn banner_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BANNER_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = root.join("target/release/banner");
    assert!(
        bin.exists(),
        "{} missing: run through `cargo xtask test`",
        bin.display()
    );
    bin
}

/// Run a command, panicking with its output if it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command; its stdout if it succeeded.
pub fn sh_ok(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run a command, ignoring failure (for cleanup).
pub fn sh_quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Poll `check` until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// Lab ids are unique within a test process; the offset keeps test binaries (which cargo
/// runs one after another) apart in case one leaves something behind.
fn next_lab_id() -> u32 {
    let base = std::env::var("BANNER_LAB_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    base + NEXT_LAB.fetch_add(1, Ordering::SeqCst)
}

/// One peer namespace joined to the host (the test's own namespace) by a veth pair.
///
/// Host side: `bnt<id>h` with 198.18.<id>.1/24 and 2001:db8:<id>::1/64.
/// Peer side: `bnt<id>p` in namespace `bnt<id>` with 198.18.<id>.2/24 and 2001:db8:<id>::2/64,
/// plus any extra addresses a test adds.
pub struct Lab {
    pub id: u32,
    pub ns: String,
    pub host_if: String,
    pub peer_if: String,
    /// The host side's own namespace, for labs whose host side must not share the test's
    /// (netfilter backends: their tables, chains and sets are per namespace).
    pub host_ns: Option<String>,
}

impl Lab {
    pub fn new() -> Self {
        require_root();
        let id = next_lab_id();
        assert!(id < 250, "too many labs in one run");
        let lab = Self {
            id,
            ns: format!("bnt{id}"),
            host_if: format!("bnt{id}h"),
            peer_if: format!("bnt{id}p"),
            host_ns: None,
        };
        // Leftovers of an earlier, killed run.
        sh_quiet("ip", &["link", "del", &lab.host_if]);
        sh_quiet("ip", &["netns", "del", &lab.ns]);
        sh("ip", &["netns", "add", &lab.ns]);
        lab.wire();
        lab.exec_ok(&["ip", "link", "set", "lo", "up"]);
        lab
    }

    /// The veth pair: host end here, peer end in the lab's namespace, both addressed and up.
    fn wire(&self) {
        sh(
            "ip",
            &[
                "link",
                "add",
                &self.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &self.peer_if,
            ],
        );
        sh("ip", &["link", "set", &self.peer_if, "netns", &self.ns]);
        sh(
            "ip",
            &[
                "addr",
                "add",
                &format!("198.18.{}.1/24", self.id),
                "dev",
                &self.host_if,
            ],
        );
        sh(
            "ip",
            &[
                "-6",
                "addr",
                "add",
                &format!("2001:db8:{}::1/64", self.id),
                "dev",
                &self.host_if,
                "nodad",
            ],
        );
        sh("ip", &["link", "set", &self.host_if, "up"]);
        self.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("198.18.{}.2/24", self.id),
            "dev",
            &self.peer_if,
        ]);
        self.exec_ok(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("2001:db8:{}::2/64", self.id),
            "dev",
            &self.peer_if,
            "nodad",
        ]);
        self.exec_ok(&["ip", "link", "set", &self.peer_if, "up"]);
    }

    /// Delete the pair and make it again under the same names and addresses, as a driver
    /// reload, hotplug or VPN restart does: the host end gets a new interface index.
    pub fn recreate_link(&self) {
        assert!(
            self.host_ns.is_none(),
            "only for labs whose host side is the test's"
        );
        // (Already gone if the test deleted it.)
        sh_quiet("ip", &["link", "del", &self.host_if]);
        self.wire();
    }

    /// A lab whose host side lives in a namespace of its own (`bnt<id>x`), with loopback up.
    pub fn isolated() -> Self {
        let mut lab = Self::new();
        let host_ns = format!("{}x", lab.ns);
        sh_quiet("ip", &["netns", "del", &host_ns]);
        sh("ip", &["netns", "add", &host_ns]);
        lab.host_ns = Some(host_ns.clone());
        sh("ip", &["link", "set", &lab.host_if, "netns", &host_ns]);
        lab.host_exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("198.18.{}.1/24", lab.id),
            "dev",
            &lab.host_if,
        ]);
        lab.host_exec_ok(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("2001:db8:{}::1/64", lab.id),
            "dev",
            &lab.host_if,
            "nodad",
        ]);
        lab.host_exec_ok(&["ip", "link", "set", &lab.host_if, "up"]);
        lab.host_exec_ok(&["ip", "link", "set", "lo", "up"]);
        lab
    }

    /// Run a command on the host side (its namespace, if isolated).
    pub fn host_exec(&self, args: &[&str]) -> Output {
        let mut cmd = match &self.host_ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(args);
                c
            }
            None => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
        };
        cmd.output()
            .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")))
    }

    pub fn host_exec_ok(&self, args: &[&str]) -> String {
        let out = self.host_exec(args);
        assert!(
            out.status.success(),
            "host side: {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn host_v4(&self) -> IpAddr {
        format!("198.18.{}.1", self.id)
            .parse()
            .expect("valid address")
    }

    pub fn peer_v4(&self) -> IpAddr {
        format!("198.18.{}.2", self.id)
            .parse()
            .expect("valid address")
    }

    pub fn host_v6(&self) -> IpAddr {
        format!("2001:db8:{}::1", self.id)
            .parse()
            .expect("valid address")
    }

    pub fn peer_v6(&self) -> IpAddr {
        format!("2001:db8:{}::2", self.id)
            .parse()
            .expect("valid address")
    }

    /// Another address on the peer, 198.18.<id>.<last>.
    pub fn add_peer_v4(&self, last: u8) -> IpAddr {
        let a = format!("198.18.{}.{last}", self.id);
        self.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            &self.peer_if,
        ]);
        a.parse().expect("valid address")
    }

    /// Make the peer send complete checksums, as frames arriving from a real wire carry.
    /// (veth leaves TCP checksums to an offload that never happens, and the tarpit refuses
    /// to answer a segment whose checksum is wrong.)
    pub fn full_checksums(&self) -> &Self {
        self.exec_ok(&["ethtool", "-K", &self.peer_if, "tx", "off"]);
        self
    }

    /// Attach a pass-everything XDP program (banner's own, with no bans) to the peer's end, in
    /// native mode. veth hands frames sent back with XDP_TX only to a peer that runs XDP
    /// itself; a real NIC needs no such help.
    pub fn peer_xdp_pass(&self) -> &Self {
        // One file per lab: tests of one binary run in parallel in one process, and a shared
        // name let one test truncate or remove the object while `ip` of another was reading it.
        let obj =
            std::env::temp_dir().join(format!("banner-pass-{}-{}.o", std::process::id(), self.ns));
        std::fs::write(&obj, banner::backend::xdp::EBPF_OBJECT).expect("write the XDP object");
        sh(
            "ip",
            &[
                "-n",
                &self.ns,
                "link",
                "set",
                "dev",
                &self.peer_if,
                "xdpdrv",
                "obj",
                obj.to_str().expect("utf-8"),
                "sec",
                "xdp",
            ],
        );
        let _ = std::fs::remove_file(&obj);
        self
    }

    /// Run a shell script in the peer namespace; returns stdout.
    pub fn sh(&self, script: &str) -> String {
        let out = self.exec(&["sh", "-c", script]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a command in the peer namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {}: {e}", self.ns))
    }

    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "in {}: {} failed: {}",
            self.ns,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One ping from the peer (optionally from a given source address), one second to answer.
    pub fn ping_from(&self, src: Option<IpAddr>, dst: IpAddr) -> bool {
        let dst = dst.to_string();
        let src = src.map(|s| s.to_string());
        let mut args = vec!["ping", "-n", "-q", "-c", "1", "-W", "1"];
        if let Some(s) = &src {
            args.extend(["-I", s.as_str()]);
        }
        args.push(&dst);
        self.exec(&args).status.success()
    }

    pub fn ping(&self, dst: IpAddr) -> bool {
        self.ping_from(None, dst)
    }

    /// A TCP connect from the peer to dst:port, one second to complete.
    pub fn tcp_connects(&self, dst: IpAddr, port: u16) -> bool {
        let dst = dst.to_string();
        let port = port.to_string();
        self.exec(&["nc", "-z", "-w", "1", &dst, &port])
            .status
            .success()
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        sh_quiet("ip", &["link", "del", &self.host_if]);
        sh_quiet("ip", &["netns", "del", &self.ns]);
        if let Some(ns) = &self.host_ns {
            // Deleting the namespace deletes its veth end, tables, chains and sets with it.
            sh_quiet("ip", &["netns", "del", ns]);
        }
    }
}

/// A banner daemon for one test, with its own socket, state directory and bpffs directory.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub bpffs_dir: PathBuf,
    /// The namespace the daemon runs in (None: the test's own).
    pub ns: Option<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Write a config guarding `ifaces` with `extra` TOML appended (sections [banner] and
    /// [defaults] are open for more keys via `banner_extra`/`defaults_extra`), start it, and
    /// wait until it answers.
    pub fn start(ifaces: &[&str], banner_extra: &str, defaults_extra: &str) -> Self {
        Self::start_in(None, ifaces, banner_extra, defaults_extra)
    }

    /// Start in a namespace (a lab's isolated host side).
    pub fn start_in(
        ns: Option<&str>,
        ifaces: &[&str],
        banner_extra: &str,
        defaults_extra: &str,
    ) -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        let tag = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().replace('.', ""))
            .unwrap_or_default();
        let bpffs_dir = PathBuf::from(format!("/sys/fs/bpf/banner-test-{tag}"));
        let socket = dir.path().join("banner.sock");
        let config = dir.path().join("banner.toml");
        let ifaces: Vec<String> = ifaces.iter().map(|i| format!("\"{i}\"")).collect();
        // A config layers over the embedded default: keep the test hermetic by turning off
        // the default's jails (which read the host's own logs) unless the test sets them up.
        let mut off = String::new();
        for jail in ["sshd", "recidive"] {
            if !defaults_extra.contains(&format!("[jails.{jail}]")) {
                off.push_str(&format!("\n[jails.{jail}]\nenabled = false\n"));
            }
        }
        std::fs::write(
            &config,
            format!(
                "[banner]\ninterfaces = [{}]\nsocket = \"{}\"\nstate_dir = \"{}\"\n{}{banner_extra}\n\n[defaults]\nignore_attached_subnets = false\n{defaults_extra}\n{off}",
                ifaces.join(", "),
                socket.display(),
                dir.path().join("state").display(),
                if banner_extra.contains("bpffs_dir") {
                    String::new()
                } else {
                    format!("bpffs_dir = \"{}\"\n", bpffs_dir.display())
                },
            ),
        )
        .expect("write config");
        let mut d = Self {
            log: dir.path().join("daemon.log"),
            dir,
            config,
            socket,
            bpffs_dir,
            ns: ns.map(str::to_string),
            child: None,
        };
        d.spawn();
        d
    }

    /// (Re)start the daemon process on the same config and state.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open daemon log");
        let mut cmd = match &self.ns {
            // `ip netns exec` execs the program: the child's pid is banner's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(banner_bin());
                c
            }
            None => Command::new(banner_bin()),
        };
        let child = cmd
            .args(["daemon", "--config"])
            .arg(&self.config)
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn banner daemon");
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(15), || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "banner daemon exited early ({status}):\n{}",
                        self.log_text()
                    );
                }
            }
            self.cli(&["stats"]).status.success()
        });
        assert!(
            ready,
            "banner daemon did not answer in 15 s:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `banner --socket S ARGS`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(banner_bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run banner")
    }

    /// Run the CLI and insist it succeeds; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "banner {} failed: {}{}\n--- daemon log ---\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let text = self.cli_ok(args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("banner {}: not JSON ({e}): {text}", args.join(" ")))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the controller dies without cleaning anything up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("daemon not running");
        sh("kill", &["-TERM", &c.id().to_string()]);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = c.kill();
                panic!("daemon ignored SIGTERM for 15 s:\n{}", self.log_text());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // Removing the pins (link included) detaches the program and frees the maps.
        let _ = std::fs::remove_dir_all(&self.bpffs_dir);
    }
}

/// A real OpenSSH server on a lab address, logging to a file (`sshd -E`: bare messages, no
/// timestamp or pid), stopped on drop.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    child: Child,
}

impl Sshd {
    pub fn start(listen: IpAddr) -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("hostkey");
        sh(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                key.to_str().expect("utf-8 path"),
            ],
        );
        // sshd insists on its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let log = dir.path().join("sshd.log");
        use std::os::unix::process::CommandExt as _;
        let child = Command::new("/usr/sbin/sshd")
            // Its own process group, so the per-connection children go with it on drop.
            .process_group(0)
            .args(["-D", "-f", "/dev/null", "-E"])
            .arg(&log)
            .arg("-h")
            .arg(&key)
            .args([
                "-o",
                &format!("ListenAddress={listen}"),
                "-o",
                "Port=22",
                "-o",
                "PasswordAuthentication=yes",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "UsePAM=no",
                "-o",
                "PidFile=none",
                "-o",
                "LogLevel=INFO",
                // A client banned mid-session leaves its sshd child waiting; bound the wait.
                "-o",
                "LoginGraceTime=10",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let s = Self { dir, log, child };
        assert!(
            wait_until(Duration::from_secs(10), || std::fs::read_to_string(&s.log)
                .is_ok_and(|t| t.contains("Server listening"))),
            "sshd did not start: {}",
            std::fs::read_to_string(&s.log).unwrap_or_default()
        );
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The whole group: the listener and every connection it forked. (By system call: the
        // kill command here has been seen to take a negative pid after a signal as "-1".)
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            if pgid > 1 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lab {
    /// Does sshd greet the peer? (A banned client gets no banner: dropped, or held by the
    /// tarpit.) Bounded to a few seconds.
    pub fn ssh_banner(&self, host: IpAddr) -> bool {
        let host = host.to_string();
        let out = self.exec(&["timeout", "4", "nc", "-w", "3", &host, "22"]);
        String::from_utf8_lossy(&out.stdout).starts_with("SSH-2.0")
    }

    /// One ssh login from the peer with a wrong password (sshpass), optionally from a given
    /// source address. Returns true if ssh got a "Permission denied" (the server answered).
    pub fn ssh_wrong_password(&self, user: &str, src: Option<IpAddr>, host: IpAddr) -> bool {
        let host = host.to_string();
        let src = src.map(|s| s.to_string());
        // Bounded: a ban can land in the middle of this very session, after which the server
        // goes silent; ssh must give up rather than wait forever.
        let mut args = vec![
            "timeout",
            "-k",
            "2",
            "10",
            "sshpass",
            "-p",
            "wrong-password",
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=2",
            "-o",
            "ServerAliveInterval=1",
            "-o",
            "ServerAliveCountMax=2",
            "-l",
            user,
        ];
        if let Some(s) = &src {
            args.extend(["-b", s.as_str()]);
        }
        args.extend([host.as_str(), "true"]);
        let out = self.exec(&args);
        String::from_utf8_lossy(&out.stderr).contains("Permission denied")
    }
}

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

/// banner's XDP program with its own pinned maps, removed (and detached) on drop: loaded
/// alone for `test_run` on made-up frames, or attached to a lab's interfaces. The one way
/// tests and the bench load it.
pub struct Loaded {
    pub backend: banner::backend::xdp::XdpBackend,
    pub dir: PathBuf,
}

impl Loaded {
    pub fn new(tag: &str, max_exact: u32) -> Self {
        Self::attached(tag, Vec::new(), max_exact)
    }

    /// Attached to `interfaces` (none: loaded only).
    pub fn attached(tag: &str, interfaces: Vec<String>, max_exact: u32) -> Self {
        use banner::backend::xdp::{AttachMode, XdpBackend, XdpOptions};
        require_root();
        let dir = PathBuf::from(format!("/sys/fs/bpf/banner-t-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = XdpBackend::open(&XdpOptions {
            interfaces,
            mode: AttachMode::Auto,
            bpffs_dir: dir.clone(),
            max_exact_bans: max_exact,
            max_prefix_bans: 64,
        })
        .unwrap_or_else(|e| {
            // No Loaded to drop: remove what the failed load pinned before saying why.
            let _ = std::fs::remove_dir_all(&dir);
            panic!("loading the XDP program: {e}")
        });
        Self { backend, dir }
    }

    /// Ban `target` (address or prefix) with `blocktype`.
    pub fn ban_as(
        &mut self,
        target: &str,
        blocktype: banner::model::BlockType,
        expires_at: Option<std::time::SystemTime>,
    ) {
        use banner::backend::Backend as _;
        self.backend
            .block(&[banner::model::BlockSpec {
                target: target.parse().expect("test target"),
                blocktype,
                expires_at,
            }])
            .expect("block");
    }

    pub fn ban(&mut self, target: &str, expires_at: Option<std::time::SystemTime>) {
        self.ban_as(target, banner::model::BlockType::Drop, expires_at);
    }

    pub fn verdict(&mut self, frame: &[u8]) -> u32 {
        self.backend.test_run(frame, 1).expect("test_run").action
    }

    /// The verdict and the frame as the program left it.
    pub fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let r = self.backend.test_run(frame, 1).expect("test_run");
        (r.action, r.frame)
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        use banner::backend::Backend as _;
        let _ = self.backend.shutdown(false);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
