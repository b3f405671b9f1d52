//! Loading, pinning and attaching: the program and its maps are pinned under the bpffs
//! directory and adopted by the next start; pinned maps of another layout (checked against
//! banner-common's contract table) are replaced.

use std::{
    fs,
    path::{Path, PathBuf},
};

use aya::{
    maps::{MapData, MapType},
    programs::{
        links::{FdLink, PinnedLink},
        Xdp, XdpMode,
    },
    Ebpf,
};
use banner_common::{map_name, MapCapacity, MapKind, PROGRAM_NAME, PROGRAM_NAME_L3};

use super::{AttachMode, Attachment, XdpOptions};
use crate::backend::BackendError;

/// The interface's index, if it exists.
pub(super) fn ifindex_of(iface: &str) -> Option<u32> {
    fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// An error with its chain of causes ("`bpf_link_create` failed: Operation not supported").
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

pub(super) fn setup(msg: impl Into<String>) -> BackendError {
    BackendError::Setup(msg.into())
}

/// Expected shape of each pinned map, from the contract table: type, key size, value size,
/// max entries.
fn expected_shape(name: &str, opts: &XdpOptions) -> Option<(MapType, u32, u32, Option<u32>)> {
    let spec = banner_common::map_spec(name)?;
    let kind = match spec.kind {
        MapKind::Hash => MapType::Hash,
        MapKind::LpmTrie => MapType::LpmTrie,
        MapKind::Array => MapType::Array,
        MapKind::PerCpuArray => MapType::PerCpuArray,
    };
    let max = match spec.capacity {
        MapCapacity::Fixed(n) => n,
        MapCapacity::ExactBans => opts.max_exact_bans,
        MapCapacity::PrefixBans => opts.max_prefix_bans,
    };
    Some((kind, spec.key_size, spec.value_size, Some(max)))
}

/// A pinned map left by an older banner with another layout cannot be reused; unpin it so a
/// fresh one is made (the ban state is restored from the state directory anyway).
pub(super) fn drop_incompatible_pins(opts: &XdpOptions) -> Result<(), BackendError> {
    for name in map_name::ALL {
        let path = opts.bpffs_dir.join(name);
        if !path.exists() {
            continue;
        }
        let Some((ty, key, value, max)) = expected_shape(name, opts) else {
            continue;
        };
        let compatible = MapData::from_pin(&path)
            .and_then(|m| m.info())
            .map(|info| {
                info.map_type().ok() == Some(ty)
                    && info.key_size() == key
                    && info.value_size() == value
                    && max.is_none_or(|m| info.max_entries() == m)
            })
            .unwrap_or(false);
        if !compatible {
            log::warn!(
                "pinned map {} does not match this banner's layout or size; replacing it",
                path.display()
            );
            fs::remove_file(&path).map_err(|source| BackendError::Io {
                context: format!("removing {}", path.display()),
                source,
            })?;
        }
    }
    Ok(())
}

/// An exclusive lock on the bpffs directory itself (flock works on a directory fd on bpffs).
pub(super) fn lock_dir(dir: &Path) -> Result<nix::fcntl::Flock<fs::File>, BackendError> {
    let file = fs::File::open(dir).map_err(|source| BackendError::Io {
        context: format!("opening {}", dir.display()),
        source,
    })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        BackendError::Busy(format!(
            "another banner daemon uses the bpffs directory {} ({e}); give this one its own bpffs_dir",
            dir.display()
        ))
    })
}

pub(super) fn link_pin_path(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("link_{iface}"))
}

pub(super) fn attach(
    program: &mut Xdp,
    iface: &str,
    mode: AttachMode,
    dir: &Path,
) -> Result<Attachment, BackendError> {
    let pin = link_pin_path(dir, iface);
    // A link pinned by an earlier banner is still attached and enforcing: swap our program
    // into it atomically, so not one packet goes unchecked during the restart.
    if pin.exists() {
        let adopted = PinnedLink::from_pin(&pin)
            .map_err(|e| e.to_string())
            .and_then(|pinned| {
                let fd_link: FdLink = pinned.into();
                let xdp_link =
                    aya::programs::xdp::XdpLink::try_from(fd_link).map_err(|e| e.to_string())?;
                let id = program
                    .attach_to_link(xdp_link)
                    .map_err(|e| e.to_string())?;
                let link = program.take_link(id).map_err(|e| e.to_string())?;
                let fd_link = FdLink::try_from(link).map_err(|e| e.to_string())?;
                // The pin file still names this link; re-pinning would fail with EEXIST.
                fs::remove_file(&pin).map_err(|e| e.to_string())?;
                fd_link.pin(&pin).map_err(|e| e.to_string())
            });
        match adopted {
            Ok(link) => {
                return Ok(Attachment {
                    iface: iface.to_string(),
                    how: "adopted the pinned link (program replaced in place)".into(),
                    link: Some(link),
                    ifindex: ifindex_of(iface),
                    lost: false,
                })
            }
            Err(e) => {
                log::warn!(
                    "cannot adopt pinned link {}: {e}; attaching afresh",
                    pin.display()
                );
                let _ = fs::remove_file(&pin);
            }
        }
    }

    let tries: &[(XdpMode, &str)] = match mode {
        AttachMode::Auto => &[(XdpMode::Driver, "native"), (XdpMode::Skb, "generic (skb)")],
        AttachMode::Native => &[(XdpMode::Driver, "native")],
        AttachMode::Generic => &[(XdpMode::Skb, "generic (skb)")],
    };
    let mut errors = Vec::new();
    for (xdp_mode, label) in tries {
        match program.attach(iface, *xdp_mode) {
            Ok(id) => {
                if !errors.is_empty() {
                    log::warn!("XDP on {iface}: {}; using {label} mode", errors.join("; "));
                }
                let link = program
                    .take_link(id)
                    .map_err(|e| setup(format!("taking the link on {iface}: {e}")))?;
                let how = format!("{label} mode");
                return Ok(match FdLink::try_from(link) {
                    Ok(fd_link) => Attachment {
                        iface: iface.to_string(),
                        how,
                        link: Some(fd_link.pin(&pin).map_err(|e| {
                            setup(format!("pinning the link at {}: {e}", pin.display()))
                        })?),
                        ifindex: ifindex_of(iface),
                        lost: false,
                    },
                    Err(_) => {
                        log::warn!(
                            "XDP on {iface} uses a netlink attachment (no bpf_link on this kernel): it cannot be pinned and ends with this process"
                        );
                        Attachment {
                            iface: iface.to_string(),
                            how: format!("{how}, netlink"),
                            link: None,
                            ifindex: ifindex_of(iface),
                            lost: false,
                        }
                    }
                });
            }
            Err(e) => errors.push(format!("{label} mode failed: {}", chain(&e))),
        }
    }
    Err(setup(format!(
        "cannot attach XDP to {iface}: {}",
        errors.join("; ")
    )))
}

pub(super) fn detach(a: Attachment) {
    if let Some(link) = a.link {
        match link.unpin() {
            // Dropping the last reference to the link detaches the program.
            Ok(fd_link) => drop(fd_link),
            Err(e) => log::warn!("unpinning the link on {}: {e}", a.iface),
        }
    }
}

/// A fresh 128-bit tarpit key from the kernel's CSPRNG. There is no fallback: a guessable key
/// would make the tarpit's sequence numbers predictable, so failing to read one is an error.
pub(super) fn random_key() -> Result<[u64; 2], BackendError> {
    use std::io::Read as _;
    let mut b = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|source| BackendError::Io {
            context: "reading the tarpit key from /dev/urandom".into(),
            source,
        })?;
    let (lo, hi) = b.split_at(8);
    let word = |s: &[u8]| u64::from_ne_bytes(s.try_into().unwrap_or([1; 8]));
    Ok([word(lo), word(hi)])
}

/// What an interface hands XDP at the start of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLayer {
    Ethernet,
    /// No link header: the frame is the IP packet.
    None,
}

impl LinkLayer {
    pub(super) fn program(self) -> &'static str {
        match self {
            Self::Ethernet => PROGRAM_NAME,
            Self::None => PROGRAM_NAME_L3,
        }
    }

    /// The link layer of an ARPHRD_* device type (include/uapi/linux/if_arp.h), if banner's
    /// program can read its frames.
    pub fn of_arphrd(kind: u32) -> Option<Self> {
        match kind {
            // ETHER; LOOPBACK frames carry a (zeroed) Ethernet header too.
            1 | 772 => Some(Self::Ethernet),
            // NONE (tun, WireGuard), TUNNEL (ipip), TUNNEL6 (ip6tnl), PPP, SIT: generic XDP
            // hands over the IP header first.
            65534 | 768 | 769 | 512 | 776 => Some(Self::None),
            _ => None,
        }
    }
}

/// Which program suits `iface`, from its device type; an error names a type we cannot read.
pub(super) fn link_layer(iface: &str) -> Result<LinkLayer, BackendError> {
    let path = format!("/sys/class/net/{iface}/type");
    let text = fs::read_to_string(&path).map_err(|e| {
        setup(if e.kind() == std::io::ErrorKind::NotFound {
            format!("interface {iface} does not exist")
        } else {
            format!("reading {path}: {e}")
        })
    })?;
    let kind: u32 = text
        .trim()
        .parse()
        .map_err(|_| setup(format!("{path}: `{}` is not a device type", text.trim())))?;
    LinkLayer::of_arphrd(kind).ok_or_else(|| {
        setup(format!(
            "interface {iface} has link type {kind} (see if_arp.h), whose frames banner's XDP program cannot read"
        ))
    })
}

pub(super) fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp, BackendError> {
    ebpf.program_mut(name)
        .ok_or_else(|| setup(format!("program {name} missing from the object")))?
        .try_into()
        .map_err(|e| setup(format!("{name} is not an XDP program: {e}")))
}
