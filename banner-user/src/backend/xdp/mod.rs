//! The XDP backend: loads banner's program, attaches it to the interfaces, and keeps the ban
//! maps. Maps and links are pinned under the bpffs directory so that enforcement outlives the
//! controller (a crash or SIGKILL leaves the NIC still dropping) and the next start adopts them
//! without a gap: the new program replaces the old one atomically on the same link, and reuses
//! the same maps.
//!
//! `load` loads, pins and attaches; `clock` converts deadlines between the wall clock and the
//! kernel's boot clock; this module keeps the maps.

use std::{collections::HashSet, fs, path::PathBuf, sync::Arc};

use aya::{
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray},
    programs::links::PinnedLink,
    Ebpf, EbpfLoader,
};
use banner_common::{
    counter, map_name, AllowEntry, BanEntry, Ipv4Key, Ipv4PrefixKey, Ipv6Key, PortSet, Settings,
    MAX_SCOPES, PROGRAM_NAME, PROGRAM_NAME_L3,
};

use super::{Backend, BackendError, Capacity, Counters, Enforced, Health, Slot};
use crate::{
    addr::IpPrefix,
    model::BlockSpec,
    scope::{PortScope, Protocol, Scope},
    sys,
};

mod batch;
mod clock;
mod load;

use clock::Now;
pub use load::LinkLayer;
use load::{
    attach, chain, detach, drop_incompatible_pins, ifindex_of, link_layer, link_pin_path, lock_dir,
    program_mut, random_key, setup,
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
#[cfg(feature = "test-support")]
#[derive(Debug, Clone)]
pub struct TestRunOutcome {
    /// The XDP action (XDP_PASS = 2, XDP_DROP = 1, XDP_TX = 3, XDP_ABORTED = 0).
    pub action: u32,
    /// Mean duration of one run, as the kernel measured it.
    pub duration: std::time::Duration,
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

/// Bans in one call from which single addresses are written in batches.
const BATCH_FROM: usize = 64;

/// Single-address bans gathered for one batched write: keys and values side by side, and
/// which ban of the call each came from.
struct Batch<K> {
    keys: Vec<K>,
    values: Vec<BanEntry>,
    index: Vec<usize>,
}

impl<K> Default for Batch<K> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            values: Vec::new(),
            index: Vec::new(),
        }
    }
}

impl<K> Batch<K> {
    fn push(&mut self, key: K, value: BanEntry, index: usize) {
        self.keys.push(key);
        self.values.push(value);
        self.index.push(index);
    }
}

pub struct XdpBackend {
    dir: PathBuf,
    // Owns the program (and, for unpinned links, the attachments). Dropping it does not detach
    // pinned links.
    ebpf: Ebpf,
    bans_v4: HashMap<MapData, Ipv4Key, BanEntry>,
    bans_v6: HashMap<MapData, Ipv6Key, BanEntry>,
    /// The same two maps' descriptors, for batched writes (aya keeps its own to itself).
    batch_v4: std::os::fd::OwnedFd,
    batch_v6: std::os::fd::OwnedFd,
    /// The kernel refused batched writes (before 5.6): one system call per ban.
    no_batch: bool,
    prefix_v4: LpmTrie<MapData, Ipv4PrefixKey, BanEntry>,
    prefix_v6: LpmTrie<MapData, Ipv6Key, BanEntry>,
    allow_v4: LpmTrie<MapData, Ipv4Key, AllowEntry>,
    allow_v6: LpmTrie<MapData, Ipv6Key, AllowEntry>,
    counters: PerCpuArray<MapData, u64>,
    settings: Array<MapData, Settings>,
    scopes: Array<MapData, PortSet>,
    /// What each slot of `scopes` holds (slot 0, every port, holds nothing). A slot is written
    /// only while no ban refers to it, so a ban's ports never change under it.
    scope_slots: Vec<Option<Arc<PortScope>>>,
    attachments: Vec<Attachment>,
    mode: AttachMode,
    capacity: Capacity,
    /// Held while we own the pins: a second daemon on the same bpffs directory would adopt
    /// our link and maps, lift our bans and remove our pins at its stop.
    _lock: nix::fcntl::Flock<fs::File>,
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
        let fd_of = |m: &aya::maps::Map, name: &str| {
            use std::os::fd::AsFd as _;
            let aya::maps::Map::HashMap(data) = m else {
                return Err(setup(format!("map {name} is not a hash map")));
            };
            data.fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| setup(format!("map {name}: {e}")))
        };
        let v4 = take(map_name::BANS_V4)?;
        let batch_v4 = fd_of(&v4, map_name::BANS_V4)?;
        let bans_v4 = HashMap::try_from(v4).map_err(conv(map_name::BANS_V4))?;
        let v6 = take(map_name::BANS_V6)?;
        let batch_v6 = fd_of(&v6, map_name::BANS_V6)?;
        let bans_v6 = HashMap::try_from(v6).map_err(conv(map_name::BANS_V6))?;
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
        let scopes: Array<MapData, PortSet> =
            Array::try_from(take(map_name::SCOPES)?).map_err(conv(map_name::SCOPES))?;
        // An adopted map keeps its scopes, and the bans pointing at them their ports.
        let scope_slots = (0..MAX_SCOPES)
            .map(|i| match scopes.get(&i, 0) {
                Ok(set) if i > 0 => PortScope::from_bitmaps(&set.tcp, &set.udp).map(Arc::new),
                _ => None,
            })
            .collect();

        let mut backend = Self {
            dir: opts.bpffs_dir.clone(),
            ebpf,
            bans_v4,
            bans_v6,
            batch_v4,
            batch_v6,
            no_batch: false,
            prefix_v4,
            prefix_v6,
            allow_v4,
            allow_v6,
            counters,
            settings,
            scopes,
            scope_slots,
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
    #[cfg(feature = "test-support")]
    pub fn tarpit_key(&self) -> [u64; 2] {
        self.settings.get(&0, 0).map_or([0; 2], |s| s.tarpit_key)
    }

    /// Run the program once per `repeat` on a made-up frame (BPF_PROG_TEST_RUN), without any
    /// interface: the verdict, the mean time per run, and the frame as the program left it.
    #[cfg(feature = "test-support")]
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<TestRunOutcome, BackendError> {
        self.test_run_on(LinkLayer::Ethernet, frame, repeat)
    }

    /// As [`Self::test_run`], with the program for the given kind of interface.
    #[cfg(feature = "test-support")]
    pub fn test_run_on(
        &mut self,
        link: LinkLayer,
        frame: &[u8],
        repeat: u32,
    ) -> Result<TestRunOutcome, BackendError> {
        use aya::programs::{TestRun as _, TestRunOptions};
        let name = link.program();
        let program: &aya::programs::Xdp = self
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

    /// The slot of `scopes` holding `scope` (0 for the whole address), written if new.
    fn scope_slot(&mut self, scope: &Scope) -> Result<u32, BackendError> {
        let Some(wanted) = scope else {
            return Ok(0);
        };
        let found = |slots: &[Option<Arc<PortScope>>]| {
            slots
                .iter()
                .position(|s| s.as_ref() == Some(wanted))
                .map(|i| i as u32)
        };
        if let Some(i) = found(&self.scope_slots) {
            return Ok(i);
        }
        let free = |slots: &[Option<Arc<PortScope>>]| {
            slots
                .iter()
                .skip(1)
                .position(Option::is_none)
                .map(|i| i as u32 + 1)
        };
        if free(&self.scope_slots).is_none() {
            // Free the slots no ban refers to any more (a walk of every ban: rare, as there
            // are only as many scopes as distinct port sets).
            let mut used = vec![false; self.scope_slots.len()];
            let mut mark = |e: BanEntry| {
                if let Some(u) = used.get_mut(e.scope as usize) {
                    *u = true;
                }
            };
            self.bans_v4
                .iter()
                .filter_map(Result::ok)
                .for_each(|(_, e)| mark(e));
            self.bans_v6
                .iter()
                .filter_map(Result::ok)
                .for_each(|(_, e)| mark(e));
            self.prefix_v4
                .iter()
                .filter_map(Result::ok)
                .for_each(|(_, e)| mark(e));
            self.prefix_v6
                .iter()
                .filter_map(Result::ok)
                .for_each(|(_, e)| mark(e));
            for (slot, used) in self.scope_slots.iter_mut().zip(used) {
                if !used {
                    *slot = None;
                }
            }
        }
        let Some(i) = free(&self.scope_slots) else {
            return Err(setup(format!(
                "all {} port-scope slots are in use: ports {wanted} cannot be enforced apart",
                MAX_SCOPES - 1
            )));
        };
        let set = PortSet {
            tcp: wanted.bitmap(Protocol::Tcp),
            udp: wanted.bitmap(Protocol::Udp),
        };
        self.scopes
            .set(i, set, 0)
            .map_err(|source| BackendError::Map {
                op: "writing scope",
                map: map_name::SCOPES,
                target: wanted.to_string(),
                source: Box::new(source),
            })?;
        self.scope_slots[i as usize] = Some(wanted.clone());
        Ok(i)
    }

    /// Every ban in the kernel's maps, handed to `f` as it is read. The exact maps hold the
    /// most bans: read in batches where the kernel can (a million one by one were two
    /// million system calls, seconds of the core's time).
    fn each_ban(&self, mut f: impl FnMut(IpPrefix, &BanEntry)) {
        use std::net::{Ipv4Addr, Ipv6Addr};
        use std::os::fd::AsFd as _;
        let v4 = |k: Ipv4Key| IpPrefix::host(Ipv4Addr::from(k.addr).into());
        let v6 = |k: Ipv6Key| IpPrefix::host(Ipv6Addr::from(k.addr).into());
        let batched = batch::for_each(self.batch_v4.as_fd(), |k, v: BanEntry| f(v4(k), &v));
        if !matches!(batched, Ok(true)) {
            for (k, v) in self.bans_v4.iter().filter_map(Result::ok) {
                f(v4(k), &v);
            }
        }
        let batched = batch::for_each(self.batch_v6.as_fd(), |k, v: BanEntry| f(v6(k), &v));
        if !matches!(batched, Ok(true)) {
            for (k, v) in self.bans_v6.iter().filter_map(Result::ok) {
                f(v6(k), &v);
            }
        }
        for (k, v) in self.prefix_v4.iter().filter_map(Result::ok) {
            let addr = Ipv4Addr::from(k.data().addr).into();
            f(IpPrefix::containing(addr, k.prefix_len() as u8), &v);
        }
        for (k, v) in self.prefix_v6.iter().filter_map(Result::ok) {
            let addr = Ipv6Addr::from(k.data().addr).into();
            f(IpPrefix::containing(addr, k.prefix_len() as u8), &v);
        }
    }

    /// What a ban entry's scope slot stands for.
    fn scope_of(&self, e: &BanEntry) -> Scope {
        match e.scope {
            0 => None,
            // An entry pointing at an empty slot is enforced whole by the kernel program.
            i => self.scope_slots.get(i as usize).cloned().flatten(),
        }
    }

    fn insert(&mut self, spec: &BlockSpec, now: &Now) -> Result<bool, BackendError> {
        let fresh = self.new_entry(spec, now);
        // What the ban says now, over what the kernel counted of it so far.
        let entry = |old: Option<BanEntry>| BanEntry {
            expires_ns: fresh.expires_ns,
            blocktype: fresh.blocktype,
            scope: fresh.scope,
            ..old.unwrap_or_default()
        };
        let slot = Slot::of(&spec.target);
        let target = spec.target;
        let map_err = |source: MapError| ban_error(target, source);
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

    /// Prefixes one by one (a trie takes no batch); single addresses not in the map yet in
    /// batches, those already in it merged one by one (their counters kept).
    fn block_all(
        &mut self,
        bans: &[BlockSpec],
        now: &Now,
        prefixes_changed: &mut bool,
    ) -> Result<(), BackendError> {
        if bans.len() < BATCH_FROM {
            // A jail's ban, a few by hand: one write each is the shortest way into the map.
            for spec in bans {
                *prefixes_changed |= self.insert(spec, now)?;
            }
            return Ok(());
        }
        let mut v4 = Batch::default();
        let mut v6 = Batch::default();
        // Into an empty map (a first start, a big import) nothing needs looking up: one call
        // asks whether it is.
        let empty_v4 = self.bans_v4.keys().next().is_none();
        let empty_v6 = self.bans_v6.keys().next().is_none();
        for (i, spec) in bans.iter().enumerate() {
            match (spec.target.addr(), Slot::of(&spec.target)) {
                // A key already in the map is merged on its own (its counters kept): a
                // lookup costs the kernel far less than a write. (A key twice in one call
                // ends as the later says, as merging it would.)
                (std::net::IpAddr::V4(a), Slot::ExactV4)
                    if !self.no_batch
                        && (empty_v4
                            || self.bans_v4.get(&Ipv4Key { addr: a.octets() }, 0).is_err()) =>
                {
                    let entry = self.new_entry(spec, now);
                    v4.push(Ipv4Key { addr: a.octets() }, entry, i);
                }
                (std::net::IpAddr::V6(a), Slot::ExactV6)
                    if !self.no_batch
                        && (empty_v6
                            || self.bans_v6.get(&Ipv6Key { addr: a.octets() }, 0).is_err()) =>
                {
                    let entry = self.new_entry(spec, now);
                    v6.push(Ipv6Key { addr: a.octets() }, entry, i);
                }
                _ => *prefixes_changed |= self.insert(spec, now)?,
            }
        }
        self.flush(&v4, bans, now, true)?;
        self.flush(&v6, bans, now, false)
    }

    /// The entry a ban not in the map yet gets.
    fn new_entry(&mut self, spec: &BlockSpec, now: &Now) -> BanEntry {
        let scope = self.scope_slot(&spec.scope).unwrap_or_else(|e| {
            // More distinct port sets than slots: ban the whole address rather than none.
            log::warn!("{e}; {} is banned on every port", spec.target);
            0
        });
        BanEntry {
            expires_ns: spec.expires_at.map_or(0, |t| now.boot_deadline(t)),
            blocktype: banner_common::BlockType::from(spec.blocktype) as u32,
            scope,
            ..BanEntry::default()
        }
    }

    fn flush<K>(
        &mut self,
        batch: &Batch<K>,
        bans: &[BlockSpec],
        now: &Now,
        v4: bool,
    ) -> Result<(), BackendError> {
        use std::os::fd::AsFd as _;
        let fd = if v4 { &self.batch_v4 } else { &self.batch_v6 };
        let Err(stopped) = batch::update(fd.as_fd(), &batch.keys, &batch.values) else {
            return Ok(());
        };
        let at = stopped.done;
        let spec = &bans[batch.index[at]];
        match stopped.error.raw_os_error() {
            // A kernel without batched writes: these one by one, and from now on too.
            Some(nix::libc::EINVAL | nix::libc::ENOSYS | nix::libc::EOPNOTSUPP | 524)
                if at == 0 =>
            {
                log::debug!(
                    "batched map writes refused ({}); writing one by one",
                    stopped.error
                );
                self.no_batch = true;
                for &i in &batch.index {
                    self.insert(&bans[i], now)?;
                }
                Ok(())
            }
            _ => Err(ban_error(
                spec.target,
                MapError::SyscallError(aya::sys::SyscallError {
                    call: "bpf_map_update_batch",
                    io_error: stopped.error,
                }),
            )),
        }
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
        let result = self.block_all(bans, &now, &mut prefixes_changed);
        if prefixes_changed {
            self.sync_settings()?;
        }
        result.map_err(|e| match e {
            BackendError::Full { map, target, .. } => BackendError::Full {
                map,
                capacity: self.capacity.of(Slot::of(&target)).unwrap_or(0),
                target,
            },
            e => e,
        })
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
        self.each_ban(|target, v| out.push(now.enforced(target, v, self.scope_of(v))));
        Ok(out)
    }

    fn hits(&mut self) -> Result<Vec<(IpPrefix, super::Hits)>, BackendError> {
        let now = Now::read();
        let mut out = Vec::new();
        // Read whole (the kernel has no other way to find them), kept only when counted.
        self.each_ban(|target, v| {
            let hits = now.hits(v);
            if hits != super::Hits::default() {
                out.push((target, hits));
            }
        });
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
        let mut c = Counters::default();
        for i in 0..counter::COUNT {
            c.add(i, read(i)?);
        }
        Ok(c)
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

/// The map holding a capacity bucket's bans.
pub fn map_of(slot: Slot) -> &'static str {
    match slot {
        Slot::ExactV4 => map_name::BANS_V4,
        Slot::ExactV6 => map_name::BANS_V6,
        Slot::PrefixV4 => map_name::PREFIX_V4,
        Slot::PrefixV6 => map_name::PREFIX_V6,
    }
}

fn is_not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound | MapError::ElementNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc_enoent()),
        _ => false,
    }
}

/// A ban map refused `target`: full, or another failure of the kernel's.
fn ban_error(target: IpPrefix, source: MapError) -> BackendError {
    let map = map_of(Slot::of(&target));
    if is_full(&source) {
        BackendError::Full {
            map,
            capacity: 0,
            target,
        }
    } else {
        BackendError::Map {
            op: "banning",
            map,
            target: target.to_string(),
            source: Box::new(source),
        }
    }
}

fn is_full(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(nix::libc::E2BIG))
}

fn libc_enoent() -> i32 {
    nix::libc::ENOENT
}
