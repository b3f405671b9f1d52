//! Small facts about the host: clocks, bpffs, interfaces and their addresses.

use std::{
    collections::BTreeMap,
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
};

use crate::addr::IpPrefix;

/// CLOCK_BOOTTIME in ns: the clock `bpf_ktime_get_boot_ns` reads.
pub fn boottime_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    // CLOCK_BOOTTIME cannot fail on Linux >= 2.6.39 with a valid clock id.
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|ts| ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
        .unwrap_or(0)
}

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const DEFAULT_BPFFS: &str = "/sys/fs/bpf";

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == BPF_FS_MAGIC)
}

/// Make sure `dir` is (or will be created) on a bpffs, mounting one at /sys/fs/bpf if that is
/// where it belongs and nothing is mounted there yet.
pub fn ensure_bpffs(dir: &Path) -> Result<(), String> {
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    if is_bpffs(&existing) {
        return Ok(());
    }
    let default = Path::new(DEFAULT_BPFFS);
    if dir.starts_with(default) {
        fs::create_dir_all(default).map_err(|e| format!("creating {DEFAULT_BPFFS}: {e}"))?;
        nix::mount::mount(
            Some("bpf"),
            default,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| format!("mounting bpffs on {DEFAULT_BPFFS}: {e}"))?;
        log::info!("mounted bpffs on {DEFAULT_BPFFS}");
        return Ok(());
    }
    Err(format!(
        "{} is not on a bpffs (mount one with `mount -t bpf bpf {}`)",
        dir.display(),
        existing.display()
    ))
}

/// Does this process live in a mount namespace of its own (as under `ip netns exec`, which
/// also mounts a private /sys)? A bpffs mounted there dies with the process, and with it the
/// pins that keep XDP enforcing after a crash.
///
/// Told by comparing with the parent's: `ip netns exec` unshares the mount namespace and then
/// execs banner, so the parent (the shell, the service manager) is still in the old one.
/// (PID 1 is no reference: in containers and sandboxes it often lives elsewhere anyway.)
pub fn private_mount_namespace() -> bool {
    let parent = nix::unistd::getppid();
    match (
        fs::read_link("/proc/self/ns/mnt"),
        fs::read_link(format!("/proc/{parent}/ns/mnt")),
    ) {
        (Ok(mine), Ok(theirs)) => mine != theirs,
        _ => false,
    }
}

/// One address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub iface: String,
    pub addr: IpAddr,
    /// The attached subnet (address with the netmask applied).
    pub subnet: Option<IpPrefix>,
}

/// Every address configured on this host (in this network namespace).
pub fn interface_addresses() -> Vec<IfAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in addrs {
        let Some(addr) = ifa.address.as_ref().and_then(sockaddr_ip) else {
            continue;
        };
        let subnet = ifa
            .netmask
            .as_ref()
            .and_then(sockaddr_ip)
            .map(|mask| IpPrefix::containing(addr, mask_len(mask)));
        out.push(IfAddr {
            iface: ifa.interface_name.clone(),
            addr,
            subnet,
        });
    }
    out
}

fn sockaddr_ip(s: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

fn mask_len(mask: IpAddr) -> u8 {
    match mask {
        IpAddr::V4(m) => u32::from(m).count_ones() as u8,
        IpAddr::V6(m) => u128::from(m).count_ones() as u8,
    }
}

/// Interfaces that carry a default route (IPv4 or IPv6), in a stable order.
pub fn default_route_interfaces() -> Vec<String> {
    let mut found = BTreeMap::new();
    if let Ok(text) = fs::read_to_string("/proc/net/route") {
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            if cols.len() > 7 && cols[1] == "00000000" && cols[7] == "00000000" {
                found.insert(cols[0].to_string(), ());
            }
        }
    }
    if let Ok(text) = fs::read_to_string("/proc/net/ipv6_route") {
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // dest dest_len src src_len next_hop metric refcnt use flags iface
            if cols.len() == 10
                && cols[0].bytes().all(|b| b == b'0')
                && cols[1] == "00"
                && cols[9] != "lo"
            {
                found.insert(cols[9].to_string(), ());
            }
        }
    }
    found.into_keys().collect()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Tell systemd how the service is (`READY=1`, `WATCHDOG=1`, `RELOADING=1`, `STOPPING=1`), on
/// the datagram socket `$NOTIFY_SOCKET` names (a path, or `@name` in the abstract namespace).
/// Nothing when banner does not run under systemd's `Type=notify`.
pub fn notify(state: &str) {
    use std::os::unix::net::UnixDatagram;
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = target.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), Path::new(&target)),
    };
    if let Err(e) = sent {
        log::debug!("sd_notify {state}: {e}");
    }
}

/// The watchdog period systemd asks for (`WatchdogSec=`), if any and meant for us.
pub fn watchdog_period() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| std::time::Duration::from_micros(usec))
}

/// Return the allocator's free pages to the system, in every thread's arena. glibc keeps
/// what a thread freed for that thread's next allocations, so a burst handled once stays
/// resident for good; this costs a walk of the free lists, so it runs now and then.
pub fn give_back_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only reorganises the allocator's own free lists.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_moves_forward() {
        let a = boottime_ns();
        let b = boottime_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn loopback_is_among_the_host_addresses() {
        let addrs = interface_addresses();
        assert!(
            addrs.iter().any(|a| a.addr.is_loopback()),
            "no loopback in {addrs:?}"
        );
    }

    #[test]
    fn netmasks_become_prefix_lengths() {
        assert_eq!(mask_len("255.255.255.0".parse().unwrap()), 24);
        assert_eq!(mask_len("ffff:ffff:ffff:ffff::".parse().unwrap()), 64);
    }
}
