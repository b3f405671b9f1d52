//! The XDP backend: loads banner's program, attaches it to the interfaces, and keeps the ban
//! maps. Maps and links are pinned under the bpffs directory so that enforcement outlives the
//! controller (a crash or SIGKILL leaves the NIC still dropping) and the next start adopts them
//! without a gap: the new program replaces the old one atomically on the same link, and reuses
//! the same maps.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use aya::{
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, Map, MapData, MapError, MapType, PerCpuArray},
    programs::{
        links::{FdLink, PinnedLink},
        Xdp, XdpMode,
    },
    Ebpf, EbpfLoader,
};
use banner_common::{
    counter, map_name, AllowEntry, BanEntry, Ipv4Key, Ipv4PrefixKey, Ipv6Key, MapCapacity, MapKind,
    Settings, PROGRAM_NAME, PROGRAM_NAME_L3,
};

use super::{Backend, BackendError, Capacity, Counters, Enforced, Health, Hits, Slot};
use crate::{
    addr::IpPrefix,
    model::{BlockSpec, BlockType},
    sys,
};

/// The compiled kernel program, embedded at build time (see build.rs).
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/banner"));

/// How to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic per interface.
    Auto,
    /// Native only: fail where the driver has no XDP support.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

#[derive(Clone, Debug)]
pub struct XdpOptions {
    pub interfaces: Vec<String>,
    pub mode: AttachMode,
    pub bpffs_dir: PathBuf,
    pub max_exact_bans: u32,
    pub max_prefix_bans: u32,
}

/// What one `test_run` saw.
#[derive(Debug, Clone)]
pub struct TestRunOutcome {
    /// The XDP action (XDP_PASS = 2, XDP_DROP = 1, XDP_TX = 3, XDP_ABORTED = 0).
    pub action: u32,
    /// Mean duration of one run, as the kernel measured it.
    pub duration: Duration,
    /// The frame after the program (the reply, for XDP_TX).
    pub frame: Vec<u8>,
}

struct Attachment {
    iface: String,
    how: String,
    /// None for a netlink attachment (kernels without bpf_link), which cannot be pinned.
    link: Option<PinnedLink>,
    /// The interface's index when attached: a deleted and re-created interface (driver
    /// reload, hotplug, a VPN restart) gets a new one, and our program is not on it.
    ifindex: Option<u32>,
    /// The interface is gone, or re-attaching failed: nothing is enforced on it.
    lost: bool,
}

/// The interface's index, if it exists.
fn ifindex_of(iface: &str) -> Option<u32> {
    fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

pub struct XdpBackend {
    dir: PathBuf,
    // Owns the program (and, for unpinned links, the attachments). Dropping it does not detach
    // pinned links.
    ebpf: Ebpf,
    bans_v4: HashMap<MapData, Ipv4Key, BanEntry>,
    bans_v6: HashMap<MapData, Ipv6Key, BanEntry>,
    prefix_v4: LpmTrie<MapData, Ipv4PrefixKey, BanEntry>,
    prefix_v6: LpmTrie<MapData, Ipv6Key, BanEntry>,
    allow_v4: LpmTrie<MapData, Ipv4Key, AllowEntry>,
    allow_v6: LpmTrie<MapData, Ipv6Key, AllowEntry>,
    counters: PerCpuArray<MapData, u64>,
    settings: Array<MapData, Settings>,
    attachments: Vec<Attachment>,
    mode: AttachMode,
    capacity: Capacity,
    /// Held while we own the pins: a second daemon on the same bpffs directory would adopt
    /// our link and maps, lift our bans and remove our pins at its stop.
    _lock: nix::fcntl::Flock<fs::File>,
}

/// An error with its chain of causes ("`bpf_link_create` failed: Operation not supported").
fn chain(e: &dyn std::error::Error) -> String {
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

fn setup(msg: impl Into<String>) -> BackendError {
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

/// The map holding a capacity bucket's bans.
pub fn map_of(slot: Slot) -> &'static str {
    match slot {
        Slot::ExactV4 => map_name::BANS_V4,
        Slot::ExactV6 => map_name::BANS_V6,
        Slot::PrefixV4 => map_name::PREFIX_V4,
        Slot::PrefixV6 => map_name::PREFIX_V6,
    }
}

/// A pinned map left by an older banner with another layout cannot be reused; unpin it so a
/// fresh one is made (the ban state is restored from the state directory anyway).
fn drop_incompatible_pins(opts: &XdpOptions) -> Result<(), BackendError> {
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
fn lock_dir(dir: &Path) -> Result<nix::fcntl::Flock<fs::File>, BackendError> {
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

fn link_pin_path(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("link_{iface}"))
}

impl XdpBackend {
    /// Load (or adopt) the program and maps and attach to every interface. With no interface
    /// the program is only loaded (for `test_run` and benchmarks).
    pub fn open(opts: &XdpOptions) -> Result<Self, BackendError> {
        if EBPF_OBJECT.is_empty() {
            return Err(setup(
                "this banner was built without its XDP program (BANNER_EBPF_STUB); rebuild with `cargo build --release` after `cargo xtask setup`",
            ));
        }
        sys::ensure_bpffs(&opts.bpffs_dir).map_err(setup)?;
        if sys::private_mount_namespace() {
            log::warn!(
                "banner runs in a mount namespace of its own (`ip netns exec`?): the bpffs under {} is private to it, so its pins die with it and after a crash (kill -9) XDP stops enforcing; start it with `nsenter --net=/run/netns/NAME banner ...` to keep the host's bpffs",
                opts.bpffs_dir.display()
            );
        }
        fs::create_dir_all(&opts.bpffs_dir).map_err(|source| BackendError::Io {
            context: format!("creating {}", opts.bpffs_dir.display()),
            source,
        })?;
        let lock = lock_dir(&opts.bpffs_dir)?;
        drop_incompatible_pins(opts)?;

        let pins: Vec<(&str, PathBuf)> = map_name::ALL
            .iter()
            .map(|n| (*n, opts.bpffs_dir.join(n)))
            .collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        loader
            .map_max_entries(map_name::BANS_V4, opts.max_exact_bans)
            .map_max_entries(map_name::BANS_V6, opts.max_exact_bans)
            .map_max_entries(map_name::PREFIX_V4, opts.max_prefix_bans)
            .map_max_entries(map_name::PREFIX_V6, opts.max_prefix_bans);
        let mut ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|e| setup(format!("loading the XDP program: {}", chain(&e))))?;

        for name in [PROGRAM_NAME, PROGRAM_NAME_L3] {
            program_mut(&mut ebpf, name)?.load().map_err(|e| {
                setup(format!(
                    "the kernel refused the XDP program {name}: {}",
                    chain(&e)
                ))
            })?;
        }

        let mut attachments = Vec::new();
        for iface in &opts.interfaces {
            let attachment = link_layer(iface).and_then(|link| {
                attach(
                    program_mut(&mut ebpf, link.program())?,
                    iface,
                    opts.mode,
                    &opts.bpffs_dir,
                )
            });
            match attachment {
                Ok(a) => {
                    log::info!("XDP: {} on {}", a.how, a.iface);
                    attachments.push(a);
                }
                Err(e) => {
                    // Leave nothing half attached behind us.
                    for a in attachments {
                        detach(a);
                    }
                    return Err(e);
                }
            }
        }

        let mut take = |name: &str| -> Result<Map, BackendError> {
            ebpf.take_map(name)
                .ok_or_else(|| setup(format!("map {name} missing from the object")))
        };
        let conv = |name: &'static str| move |e: MapError| setup(format!("map {name}: {e}"));
        let bans_v4 =
            HashMap::try_from(take(map_name::BANS_V4)?).map_err(conv(map_name::BANS_V4))?;
        let bans_v6 =
            HashMap::try_from(take(map_name::BANS_V6)?).map_err(conv(map_name::BANS_V6))?;
        let prefix_v4 =
            LpmTrie::try_from(take(map_name::PREFIX_V4)?).map_err(conv(map_name::PREFIX_V4))?;
        let prefix_v6 =
            LpmTrie::try_from(take(map_name::PREFIX_V6)?).map_err(conv(map_name::PREFIX_V6))?;
        let allow_v4 =
            LpmTrie::try_from(take(map_name::ALLOW_V4)?).map_err(conv(map_name::ALLOW_V4))?;
        let allow_v6 =
            LpmTrie::try_from(take(map_name::ALLOW_V6)?).map_err(conv(map_name::ALLOW_V6))?;
        let counters =
            PerCpuArray::try_from(take(map_name::COUNTERS)?).map_err(conv(map_name::COUNTERS))?;
        let settings =
            Array::try_from(take(map_name::SETTINGS)?).map_err(conv(map_name::SETTINGS))?;

        let mut backend = Self {
            dir: opts.bpffs_dir.clone(),
            ebpf,
            bans_v4,
            bans_v6,
            prefix_v4,
            prefix_v6,
            allow_v4,
            allow_v6,
            counters,
            settings,
            attachments,
            mode: opts.mode,
            capacity: Capacity {
                exact_v4: Some(opts.max_exact_bans as usize),
                exact_v6: Some(opts.max_exact_bans as usize),
                prefix_v4: Some(opts.max_prefix_bans as usize),
                prefix_v6: Some(opts.max_prefix_bans as usize),
            },
            _lock: lock,
        };
        backend.sync_settings()?;
        Ok(backend)
    }

    /// The key of the tarpit's sequence numbers (tests recompute replies with it).
    pub fn tarpit_key(&self) -> [u64; 2] {
        self.settings.get(&0, 0).map_or([0; 2], |s| s.tarpit_key)
    }

    /// Run the program once per `repeat` on a made-up frame (BPF_PROG_TEST_RUN), without any
    /// interface: the verdict, the mean time per run, and the frame as the program left it.
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<TestRunOutcome, BackendError> {
        self.test_run_on(LinkLayer::Ethernet, frame, repeat)
    }

    /// As [`Self::test_run`], with the program for the given kind of interface.
    pub fn test_run_on(
        &mut self,
        link: LinkLayer,
        frame: &[u8],
        repeat: u32,
    ) -> Result<TestRunOutcome, BackendError> {
        use aya::programs::{TestRun as _, TestRunOptions};
        let name = link.program();
        let program: &Xdp = self
            .ebpf
            .program(name)
            .ok_or_else(|| setup(format!("program {name} missing")))?
            .try_into()
            .map_err(|e| setup(format!("{name}: {e}")))?;
        // Room for a reply longer than the request (headers are rewritten, never grown much).
        let mut out = vec![0u8; frame.len() + 256];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: repeat.max(1),
                ..TestRunOptions::default()
            })
            .map_err(|e| setup(format!("test_run: {e}")))?;
        out.truncate(result.data_size_out as usize);
        Ok(TestRunOutcome {
            action: result.return_value,
            duration: result.duration,
            frame: out,
        })
    }

    /// Tell the program whether the prefix tries need a lookup at all.
    fn sync_settings(&mut self) -> Result<(), BackendError> {
        // An adopted map keeps its key, so tarpitted connections keep their sequence numbers
        // across a restart.
        let key = match self.settings.get(&0, 0) {
            Ok(s) if s.tarpit_key != [0; 2] => s.tarpit_key,
            _ => random_key()?,
        };
        let settings = Settings {
            prefix_bans_v4: self.prefix_v4.keys().count() as u32,
            prefix_bans_v6: self.prefix_v6.keys().count() as u32,
            tarpit_key: key,
            flags: 0,
            pad: 0,
        };
        self.settings
            .set(0, settings, 0)
            .map_err(|source| BackendError::Map {
                op: "updating",
                map: map_name::SETTINGS,
                target: "settings".into(),
                source: Box::new(source),
            })
    }

    fn insert(&mut self, spec: &BlockSpec, now: &Now) -> Result<bool, BackendError> {
        let entry = |old: Option<BanEntry>| BanEntry {
            expires_ns: spec.expires_at.map_or(0, |t| now.boot_deadline(t)),
            blocktype: banner_common::BlockType::from(spec.blocktype) as u32,
            flags: 0,
            ..old.unwrap_or_default()
        };
        let slot = Slot::of(&spec.target);
        let target = spec.target;
        let map_err = |source: MapError| {
            if is_full(&source) {
                BackendError::Full {
                    map: map_of(slot),
                    capacity: 0,
                    target,
                }
            } else {
                BackendError::Map {
                    op: "banning",
                    map: map_of(slot),
                    target: target.to_string(),
                    source: Box::new(source),
                }
            }
        };
        let mut prefix_added = false;
        match (target.addr(), slot) {
            (std::net::IpAddr::V4(a), Slot::ExactV4) => {
                let key = Ipv4Key { addr: a.octets() };
                let old = self.bans_v4.get(&key, 0).ok();
                self.bans_v4.insert(key, entry(old), 0).map_err(map_err)?;
            }
            (std::net::IpAddr::V6(a), Slot::ExactV6) => {
                let key = Ipv6Key { addr: a.octets() };
                let old = self.bans_v6.get(&key, 0).ok();
                self.bans_v6.insert(key, entry(old), 0).map_err(map_err)?;
            }
            (std::net::IpAddr::V4(a), _) => {
                let key = Key::new(
                    u32::from(target.prefix_len()),
                    Ipv4PrefixKey {
                        addr: a.octets(),
                        pad: [0; 4],
                    },
                );
                let old = self.prefix_v4.get(&key, 0).ok();
                prefix_added = old.is_none();
                self.prefix_v4
                    .insert(&key, entry(old), 0)
                    .map_err(map_err)?;
            }
            (std::net::IpAddr::V6(a), _) => {
                let key = Key::new(u32::from(target.prefix_len()), Ipv6Key { addr: a.octets() });
                let old = self.prefix_v6.get(&key, 0).ok();
                prefix_added = old.is_none();
                self.prefix_v6
                    .insert(&key, entry(old), 0)
                    .map_err(map_err)?;
            }
        }
        Ok(prefix_added)
    }

    fn remove(&mut self, target: &IpPrefix) -> Result<bool, BackendError> {
        let slot = Slot::of(target);
        let result = match (target.addr(), slot) {
            (std::net::IpAddr::V4(a), Slot::ExactV4) => {
                self.bans_v4.remove(&Ipv4Key { addr: a.octets() })
            }
            (std::net::IpAddr::V6(a), Slot::ExactV6) => {
                self.bans_v6.remove(&Ipv6Key { addr: a.octets() })
            }
            (std::net::IpAddr::V4(a), _) => self.prefix_v4.remove(&Key::new(
                u32::from(target.prefix_len()),
                Ipv4PrefixKey {
                    addr: a.octets(),
                    pad: [0; 4],
                },
            )),
            (std::net::IpAddr::V6(a), _) => self.prefix_v6.remove(&Key::new(
                u32::from(target.prefix_len()),
                Ipv6Key { addr: a.octets() },
            )),
        };
        match result {
            Ok(()) => Ok(!target.is_host()),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(source) => Err(BackendError::Map {
                op: "unbanning",
                map: map_of(slot),
                target: target.to_string(),
                source: Box::new(source),
            }),
        }
    }
}

fn attach(
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

fn detach(a: Attachment) {
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
fn random_key() -> Result<[u64; 2], BackendError> {
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
    fn program(self) -> &'static str {
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
fn link_layer(iface: &str) -> Result<LinkLayer, BackendError> {
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

fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp, BackendError> {
    ebpf.program_mut(name)
        .ok_or_else(|| setup(format!("program {name} missing from the object")))?
        .try_into()
        .map_err(|e| setup(format!("{name} is not an XDP program: {e}")))
}

fn is_not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound | MapError::ElementNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc_enoent()),
        _ => false,
    }
}

fn is_full(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(nix::libc::E2BIG))
}

fn libc_enoent() -> i32 {
    nix::libc::ENOENT
}

/// Wall clock and boot clock read together, to convert deadlines between them. The kernel
/// program compares against CLOCK_BOOTTIME, which keeps counting through suspend and never
/// jumps with the wall clock.
struct Now {
    wall: SystemTime,
    boot_ns: u64,
}

impl Now {
    fn read() -> Self {
        Self {
            wall: SystemTime::now(),
            boot_ns: sys::boottime_ns(),
        }
    }

    fn boot_deadline(&self, at: SystemTime) -> u64 {
        let ahead = at.duration_since(self.wall).unwrap_or(Duration::ZERO);
        // Never 0: that value means "permanent".
        self.boot_ns
            .saturating_add(ahead.as_nanos().min(u128::from(u64::MAX)) as u64)
            .max(1)
    }

    fn wall_at(&self, boot_ns: u64) -> SystemTime {
        if boot_ns >= self.boot_ns {
            self.wall + Duration::from_nanos(boot_ns - self.boot_ns)
        } else {
            self.wall - Duration::from_nanos(self.boot_ns - boot_ns)
        }
    }

    fn enforced(&self, target: IpPrefix, e: &BanEntry) -> Enforced {
        Enforced {
            target,
            blocktype: match banner_common::BlockType::from_u32(e.blocktype) {
                Some(banner_common::BlockType::Tarpit) => BlockType::Tarpit,
                _ => BlockType::Drop,
            },
            expires_at: (e.expires_ns != 0).then(|| self.wall_at(e.expires_ns)),
            hits: Hits {
                dropped: e.dropped,
                tarpitted: e.tarpitted,
                last_seen: (e.last_seen_ns != 0).then(|| self.wall_at(e.last_seen_ns)),
            },
        }
    }
}

impl Backend for XdpBackend {
    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .attachments
            .iter()
            .map(|a| {
                if a.lost {
                    format!(
                        "{}: NOT ENFORCED (interface gone; re-attached when it returns)",
                        a.iface
                    )
                } else {
                    format!("{}: {}", a.iface, a.how)
                }
            })
            .collect();
        format!("xdp ({})", parts.join(", "))
    }

    fn capacity(&self) -> Capacity {
        self.capacity
    }

    fn container(&self, slot: Slot) -> &'static str {
        map_of(slot)
    }

    fn block(&mut self, bans: &[BlockSpec]) -> Result<(), BackendError> {
        let now = Now::read();
        let mut prefixes_changed = false;
        for spec in bans {
            match self.insert(spec, &now) {
                Ok(added) => prefixes_changed |= added,
                Err(BackendError::Full { map, target, .. }) => {
                    let capacity = self.capacity.of(Slot::of(&target)).unwrap_or(0);
                    if prefixes_changed {
                        self.sync_settings()?;
                    }
                    return Err(BackendError::Full {
                        map,
                        capacity,
                        target,
                    });
                }
                Err(e) => {
                    if prefixes_changed {
                        self.sync_settings()?;
                    }
                    return Err(e);
                }
            }
        }
        if prefixes_changed {
            self.sync_settings()?;
        }
        Ok(())
    }

    fn unblock(&mut self, targets: &[IpPrefix]) -> Result<(), BackendError> {
        let mut prefixes_changed = false;
        for t in targets {
            prefixes_changed |= self.remove(t)?;
        }
        if prefixes_changed {
            self.sync_settings()?;
        }
        Ok(())
    }

    fn set_allowlist(&mut self, nets: &[IpPrefix]) -> Result<(), BackendError> {
        let want: HashSet<IpPrefix> = nets.iter().copied().collect();
        let map_err = |op: &'static str, map: &'static str, t: &IpPrefix| {
            let target = t.to_string();
            move |source| BackendError::Map {
                op,
                map,
                target,
                source: Box::new(source),
            }
        };
        let have_v4: Vec<Key<Ipv4Key>> = self.allow_v4.keys().filter_map(Result::ok).collect();
        for k in have_v4 {
            let p = IpPrefix::containing(
                std::net::Ipv4Addr::from(k.data().addr).into(),
                k.prefix_len() as u8,
            );
            if !want.contains(&p) {
                self.allow_v4
                    .remove(&k)
                    .map_err(map_err("removing", map_name::ALLOW_V4, &p))?;
            }
        }
        let have_v6: Vec<Key<Ipv6Key>> = self.allow_v6.keys().filter_map(Result::ok).collect();
        for k in have_v6 {
            let p = IpPrefix::containing(
                std::net::Ipv6Addr::from(k.data().addr).into(),
                k.prefix_len() as u8,
            );
            if !want.contains(&p) {
                self.allow_v6
                    .remove(&k)
                    .map_err(map_err("removing", map_name::ALLOW_V6, &p))?;
            }
        }
        for p in &want {
            let len = u32::from(p.prefix_len());
            match p.addr() {
                std::net::IpAddr::V4(a) => self
                    .allow_v4
                    .insert(
                        &Key::new(len, Ipv4Key { addr: a.octets() }),
                        AllowEntry::default(),
                        0,
                    )
                    .map_err(map_err("allowing", map_name::ALLOW_V4, p))?,
                std::net::IpAddr::V6(a) => self
                    .allow_v6
                    .insert(
                        &Key::new(len, Ipv6Key { addr: a.octets() }),
                        AllowEntry::default(),
                        0,
                    )
                    .map_err(map_err("allowing", map_name::ALLOW_V6, p))?,
            }
        }
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<Enforced>, BackendError> {
        let now = Now::read();
        let mut out = Vec::new();
        for (k, v) in self.bans_v4.iter().filter_map(Result::ok) {
            out.push(now.enforced(IpPrefix::host(std::net::Ipv4Addr::from(k.addr).into()), &v));
        }
        for (k, v) in self.bans_v6.iter().filter_map(Result::ok) {
            out.push(now.enforced(IpPrefix::host(std::net::Ipv6Addr::from(k.addr).into()), &v));
        }
        for (k, v) in self.prefix_v4.iter().filter_map(Result::ok) {
            let p = IpPrefix::containing(
                std::net::Ipv4Addr::from(k.data().addr).into(),
                k.prefix_len() as u8,
            );
            out.push(now.enforced(p, &v));
        }
        for (k, v) in self.prefix_v6.iter().filter_map(Result::ok) {
            let p = IpPrefix::containing(
                std::net::Ipv6Addr::from(k.data().addr).into(),
                k.prefix_len() as u8,
            );
            out.push(now.enforced(p, &v));
        }
        Ok(out)
    }

    fn counters(&mut self) -> Result<Counters, BackendError> {
        let read = |i: u32| -> Result<u64, BackendError> {
            self.counters
                .get(&i, 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .map_err(|source| BackendError::Map {
                    op: "reading",
                    map: map_name::COUNTERS,
                    target: counter::NAMES[i as usize].into(),
                    source: Box::new(source),
                })
        };
        Ok(Counters {
            passed: read(counter::PASSED)?,
            dropped: read(counter::DROPPED)?,
            tarpitted: read(counter::TARPITTED)?,
            aborted: read(counter::ABORTED)?,
            allowlisted: read(counter::ALLOWLISTED)?,
            expired: read(counter::EXPIRED)?,
            unparsed: read(counter::UNPARSED)?,
        })
    }

    fn check(&mut self) -> Result<Health, BackendError> {
        let mut repaired = Vec::new();
        let mut broken = Vec::new();
        for a in &mut self.attachments {
            let now = ifindex_of(&a.iface);
            if now.is_some() && now == a.ifindex && !a.lost {
                continue;
            }
            let Some(index) = now else {
                a.lost = true;
                broken.push(format!("{} is gone", a.iface));
                continue;
            };
            // Re-created (a new index) or back: the old link died with the old device.
            if let Some(link) = a.link.take() {
                let _ = link.unpin();
            }
            let _ = fs::remove_file(link_pin_path(&self.dir, &a.iface));
            let fresh = link_layer(&a.iface).and_then(|link| {
                attach(
                    program_mut(&mut self.ebpf, link.program())?,
                    &a.iface,
                    self.mode,
                    &self.dir,
                )
            });
            match fresh {
                Ok(new) => {
                    repaired.push(format!(
                        "{} came back (index {index}); XDP re-attached in {}",
                        a.iface, new.how
                    ));
                    *a = new;
                }
                Err(e) => {
                    a.lost = true;
                    a.ifindex = None;
                    broken.push(format!("re-attaching to {}: {e}", a.iface));
                }
            }
        }
        Ok(if !broken.is_empty() {
            Health::NotEnforced(broken.join("; "))
        } else if !repaired.is_empty() {
            Health::Repaired(repaired.join("; "))
        } else {
            Health::Intact
        })
    }

    fn shutdown(&mut self, keep: bool) -> Result<(), BackendError> {
        if keep {
            log::info!(
                "keep_on_exit: leaving the XDP program and bans pinned under {}",
                self.dir.display()
            );
            return Ok(());
        }
        for a in self.attachments.drain(..) {
            detach(a);
        }
        // Our maps stay alive while we hold them; removing the pins lets the kernel free them
        // when this process lets go.
        for name in map_name::ALL {
            let path = self.dir.join(name);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::warn!("removing {}: {e}", path.display());
                }
            }
        }
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}
