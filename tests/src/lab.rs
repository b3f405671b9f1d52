//! The network lab: a peer namespace joined to the host by a veth pair, removed on drop.

use std::{
    net::IpAddr,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use crate::{require_root, sh, sh_quiet};

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

    /// TCP listeners on the host side (in its namespace, if isolated) on every IPv4 address,
    /// one per port; the kernel completes the handshakes. They go when the guard drops, and
    /// by themselves after two minutes.
    pub fn host_listen(&self, ports: &[u16]) -> Listening {
        use std::io::BufRead as _;
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let script = format!(
            "import socket,sys,time\nss=[]\nfor p in [{}]:\n s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', p)); s.listen(64); ss.append(s)\nprint('ready', flush=True)\ntime.sleep(120)\n",
            list.join(",")
        );
        let mut cmd = match &self.host_ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "python3", "-c", &script]);
                c
            }
            None => {
                let mut c = Command::new("python3");
                c.args(["-c", &script]);
                c
            }
        };
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the host-side listener");
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let guard = Listening(child);
        assert_eq!(line.trim(), "ready", "the host-side listener did not start");
        guard
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

/// Listeners started by [`Lab::host_listen`], stopped on drop.
pub struct Listening(std::process::Child);

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
