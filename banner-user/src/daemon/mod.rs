//! `banner daemon`: wires the configuration, the sources, the jails, the ban manager, the
//! enforcement backend and the control socket together.
//!
//! The decision core (jails + ban manager, see [`core`]) runs on one plain thread and is the
//! only writer of ban state; the async edges (sources, control socket, signals) send it
//! events over a channel. That keeps every map write in one place and the core free of async.

mod adapter;
mod core;

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{mpsc, Arc},
    thread,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::oneshot,
};

pub use self::core::{Core, Event};
use crate::{
    backend::{
        command::SystemRunner,
        iptables::IptablesBackend,
        nftables::NftablesBackend,
        xdp::{AttachMode, XdpBackend, XdpOptions},
        Backend, BackendError,
    },
    bans::BanManager,
    clock::{Clock, SystemClock},
    config::{BackendChoice, Config},
    protocol::{self, Request, Response},
    source::{
        file::{self, FailureSink, SourceContext},
        journal,
        positions::PositionBook,
        CounterRegistry,
    },
    state::Store,
    sys,
};

/// Command-line overrides of the configuration.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub interfaces: Vec<String>,
    pub backend: Option<BackendChoice>,
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub bpffs_dir: Option<PathBuf>,
    pub keep_on_exit: Option<bool>,
}

impl Overrides {
    pub fn apply(self, cfg: &mut Config) {
        if !self.interfaces.is_empty() {
            cfg.interfaces = self.interfaces;
        }
        if let Some(b) = self.backend {
            cfg.backend = b;
        }
        if let Some(s) = self.socket {
            cfg.socket = s;
        }
        if let Some(s) = self.state_dir {
            cfg.state_dir = s;
        }
        if let Some(s) = self.bpffs_dir {
            cfg.bpffs_dir = s;
        }
        if let Some(k) = self.keep_on_exit {
            cfg.keep_on_exit = k;
        }
    }
}

/// Load the configuration: the given file, else /etc/banner/banner.toml if it exists, else the
/// embedded default.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    let cfg = match path {
        Some(p) => Config::load(p)?,
        None if Path::new(crate::config::DEFAULT_CONFIG_PATH).exists() => {
            Config::load(Path::new(crate::config::DEFAULT_CONFIG_PATH))?
        }
        None => Config::embedded()?,
    };
    Ok(cfg)
}

fn open_xdp(cfg: &Config, mode: AttachMode) -> Result<Box<dyn Backend>, BackendError> {
    let backend = XdpBackend::open(&XdpOptions {
        interfaces: cfg.interfaces.clone(),
        mode,
        bpffs_dir: cfg.bpffs_dir.clone(),
        max_exact_bans: cfg.max_exact_bans,
        max_prefix_bans: cfg.max_prefix_bans,
    })?;
    Ok(Box::new(backend))
}

fn open_nftables() -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(NftablesBackend::open(Box::new(SystemRunner))?))
}

fn open_iptables(cfg: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(IptablesBackend::open(
        Box::new(SystemRunner),
        cfg.max_exact_bans as usize,
    )?))
}

/// The configured backend; `auto` tries XDP (native, then generic), then nftables, then
/// iptables, and says why it moved on.
fn open_backend(cfg: &Config) -> Result<Box<dyn Backend>> {
    let backend = match cfg.backend {
        BackendChoice::Xdp => open_xdp(cfg, AttachMode::Auto)?,
        BackendChoice::XdpGeneric => open_xdp(cfg, AttachMode::Generic)?,
        BackendChoice::Nftables => open_nftables()?,
        BackendChoice::Iptables => open_iptables(cfg)?,
        BackendChoice::None => Box::new(crate::backend::none::NoneBackend::default()),
        BackendChoice::Auto => {
            let mut why = Vec::new();
            let mut chosen = None;
            for (name, attempt) in [
                (
                    "XDP",
                    Box::new(|| open_xdp(cfg, AttachMode::Auto))
                        as Box<dyn Fn() -> Result<Box<dyn Backend>, BackendError>>,
                ),
                ("nftables", Box::new(open_nftables)),
                ("iptables", Box::new(|| open_iptables(cfg))),
            ] {
                match attempt() {
                    Ok(b) => {
                        chosen = Some(b);
                        break;
                    }
                    Err(e @ BackendError::Busy(_)) => return Err(e.into()),
                    Err(e) => {
                        log::warn!("{name} cannot be used ({e}); trying the next backend");
                        why.push(format!("{name}: {e}"));
                    }
                }
            }
            match chosen {
                Some(b) => b,
                None => bail!("no enforcement backend works: {}", why.join("; ")),
            }
        }
    };
    Ok(backend)
}

/// Run the daemon until SIGTERM/SIGINT; SIGHUP reloads the configuration.
pub fn run(config_path: Option<PathBuf>, mut cfg: Config, overrides: Overrides) -> Result<()> {
    overrides.clone().apply(&mut cfg);
    if !sys::is_root() {
        bail!(
            "banner daemon must run as root: it loads an XDP program and owns the control socket"
        );
    }
    if cfg.interfaces.is_empty() {
        cfg.interfaces = sys::default_route_interfaces();
        if cfg.interfaces.is_empty() {
            bail!("no interface to guard: this host has no default route; set [banner] interfaces or pass --iface");
        }
        log::info!(
            "guarding the default route's interfaces: {}",
            cfg.interfaces.join(", ")
        );
    }
    // A typo must not quietly move enforcement to another backend or guard nothing.
    let missing: Vec<&str> = cfg
        .interfaces
        .iter()
        .filter(|i| !Path::new("/sys/class/net").join(i).exists())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!("no such interface: {} (see `ip link`)", missing.join(", "));
    }
    if cfg.backend == BackendChoice::None {
        // A dry run keeps its would-be bans apart from a real run's.
        cfg.state_dir = cfg.state_dir.join("dry-run");
        log::warn!(
            "dry run: nothing is enforced; what banner would ban is logged, listed and kept in {}",
            cfg.state_dir.display()
        );
    }
    private_state_dir(&cfg.state_dir)?;
    let _lock = lock_state_dir(&cfg.state_dir)?;
    if let Some(c) = cfg.crowdsec.as_ref() {
        // A CA or client certificate that cannot be read stops the start, like a wrong key.
        c.tls().map_err(anyhow::Error::msg)?;
    }
    if let Some(c) = cfg.crowdsec.as_ref().filter(|c| c.pull) {
        // A wrong key never heals by waiting; a LAPI that is down may, and the saved bans
        // hold meanwhile.
        match crate::crowdsec::lapi::Client::new(c).check() {
            Err(
                e @ (crate::crowdsec::lapi::LapiError::Forbidden(_)
                | crate::crowdsec::lapi::LapiError::Tls { .. }),
            ) => bail!("CrowdSec: {e}"),
            Err(e) => log::warn!("CrowdSec: {e}; starting on the saved bans, the link retries"),
            Ok(()) => {}
        }
    }
    let push = push_credentials(cfg.crowdsec.as_ref(), true)?;

    let (store, records, report) = Store::open(&cfg.state_dir)?;
    if report.torn_bytes > 0 {
        log::warn!(
            "the ban log ended in a torn write ({} bytes, from a crash); older bans are intact",
            report.torn_bytes
        );
    }
    if report.corrupt_lines > 0 {
        log::warn!(
            "skipped {} damaged lines in the ban log",
            report.corrupt_lines
        );
    }
    let (book, warning) = PositionBook::load(&cfg.state_dir);
    if let Some(w) = warning {
        log::warn!("{w}");
    }

    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    // The socket before the backend: a start that fails on it (a file in the way, another
    // daemon) must not leave a program attached and maps pinned behind it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = runtime.block_on(async { bind_socket(&cfg.socket) })?;
    // The metrics port too: one in use stops the start before anything is attached.
    let metrics = match cfg.metrics {
        Some(addr) => Some(
            runtime
                .block_on(async { tokio::net::TcpListener::bind(addr).await })
                .with_context(|| format!("[metrics] listen {addr}"))?,
        ),
        None => None,
    };
    let backend = open_backend(&cfg)?;
    let host = sys::interface_addresses();
    let ignore = cfg.allowlist(&host);
    for e in ignore.entries() {
        log::info!("never banned: {} ({})", e.net, e.why);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut manager = BanManager::new(backend, store, clock, ignore);
    let restored = manager.restore(&records)?;
    log::info!(
        "enforcing with {}; {} bans restored, {} expired while down, {} adopted from the kernel",
        manager.backend_name(),
        restored.restored,
        restored.expired_while_down,
        restored.adopted
    );

    let registry = CounterRegistry::default();
    let mut core = Core::new(manager, &cfg, book.clone(), registry.clone());
    core.know_host_addresses(host.clone());
    core.set_crowdsec_push(start_push(cfg.crowdsec.as_ref(), push)?);
    let syslog_stats = Arc::new(crate::source::syslog::SyslogStats::default());
    core.set_syslog_stats(Arc::clone(&syslog_stats));

    let (tx, rx) = mpsc::channel::<Event>();
    let core = thread::Builder::new()
        .name("banner-core".into())
        .spawn(move || core.run(rx))
        .context("starting the core thread")?;

    watch_host(tx.clone(), host);
    log::info!("control socket at {}", cfg.socket.display());
    let socket_path = cfg.socket.clone();
    runtime.block_on(async move {
        let supervisor = Arc::new(tokio::sync::Mutex::new(Supervisor {
            config_path,
            overrides,
            running: cfg.clone(),
            tx: tx.clone(),
            book,
            registry,
            tasks: Vec::new(),
            crowdsec: None,
            syslog_stats,
        }));
        supervisor.lock().await.start_sources(&cfg);
        let server = tokio::spawn(serve(listener, tx.clone(), Arc::clone(&supervisor)));
        let metrics = metrics.map(|l| {
            log::info!(
                "metrics at http://{}/metrics",
                l.local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string())
            );
            tokio::spawn(serve_metrics(l, tx.clone()))
        });
        // Starting freed what only loading needed (the kernel's BTF, about 15 MB parsed).
        sys::give_back_memory();
        // Attached, restored, served: systemd may call the service up.
        sys::notify("READY=1");
        let watchdog = sys::watchdog_period().map(|p| tokio::spawn(watchdog(p, tx.clone())));
        wait_for_stop(&supervisor).await;
        sys::notify("STOPPING=1");
        if let Some(w) = watchdog {
            w.abort();
        }
        log::info!("stopping");
        server.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        supervisor.lock().await.stop_sources().await;
        let _ = tx.send(Event::Shutdown);
    });
    let _ = fs::remove_file(&socket_path);
    match core.join() {
        Ok(result) => Ok(result?),
        Err(_) => bail!("the core thread panicked"),
    }
}

/// The CrowdSec watcher's credentials, if `[crowdsec] push = true`; at start a login is
/// tried too, so wrong ones stop banner with a clear error before anything is attached; a
/// LAPI that is down only warns (the pusher retries).
fn push_credentials(
    cfg: Option<&crate::crowdsec::CrowdSecConfig>,
    at_start: bool,
) -> Result<Option<crate::crowdsec::push::Credentials>> {
    let Some(c) = cfg.filter(|c| c.push) else {
        return Ok(None);
    };
    let credentials = c.credentials().map_err(anyhow::Error::msg)?;
    if at_start {
        let tls = c.tls().map_err(anyhow::Error::msg)?;
        let agent = crate::crowdsec::lapi::agent(Duration::from_secs(10), tls);
        match crate::crowdsec::push::login(&agent, &c.lapi_url, &credentials) {
            Err(
                e @ (crate::crowdsec::lapi::LapiError::Refused(_)
                | crate::crowdsec::lapi::LapiError::Tls { .. }),
            ) => bail!("CrowdSec: {e}"),
            Err(e) => log::warn!("CrowdSec: {e}; bans will be pushed once LAPI answers"),
            Ok(_) => {}
        }
    }
    Ok(Some(credentials))
}

/// The subscriber that pushes the jails' bans, with its thread.
fn start_push(
    cfg: Option<&crate::crowdsec::CrowdSecConfig>,
    credentials: Option<crate::crowdsec::push::Credentials>,
) -> Result<Option<Box<dyn crate::subscribers::Subscriber>>> {
    let (Some(c), Some(credentials)) = (cfg, credentials) else {
        return Ok(None);
    };
    log::info!(
        "CrowdSec: pushing the jails' bans to {} as watcher `{}`",
        c.lapi_url,
        credentials.login
    );
    let tls = c.tls().map_err(anyhow::Error::msg)?;
    let pusher = crate::crowdsec::push::start(c.lapi_url.clone(), credentials, tls)
        .context("starting the CrowdSec push thread")?;
    Ok(Some(Box::new(pusher)))
}

/// Owns the source tasks: starts them, and on reload stops them, has the core apply the new
/// configuration, and starts them again (they resume from the position book).
struct Supervisor {
    config_path: Option<PathBuf>,
    overrides: Overrides,
    running: Config,
    tx: mpsc::Sender<Event>,
    book: PositionBook,
    registry: CounterRegistry,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The CrowdSec link thread's stop: dropping the sender ends it, and the flag keeps
    /// an answer it was still reading from reaching the core.
    crowdsec: Option<(mpsc::Sender<()>, Arc<std::sync::atomic::AtomicBool>)>,
    /// The syslog receiver's counters (kept across reloads, read by `status`).
    syslog_stats: Arc<crate::source::syslog::SyslogStats>,
}

impl Supervisor {
    /// Which sources each jail will run: its log paths, and journald where there is one.
    fn plan(cfg: &Config) -> BTreeMap<String, usize> {
        let journal = journal::journal_present();
        cfg.jails
            .iter()
            .map(|j| {
                let n = j.logpaths.len()
                    + usize::from(journal && !j.journalmatch.is_empty())
                    + usize::from(j.syslog);
                (j.name.clone(), n)
            })
            .collect()
    }

    fn start_crowdsec(&mut self, cfg: &Config) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let Some(c) = cfg.crowdsec.clone().filter(|c| c.pull) else {
            return;
        };
        let (stop, stopped) = mpsc::channel();
        let gone = Arc::new(AtomicBool::new(false));
        let (tx, flag) = (self.tx.clone(), Arc::clone(&gone));
        log::info!(
            "CrowdSec: pulling decisions from {} every {}",
            c.lapi_url,
            crate::duration::format_duration(c.update_frequency)
        );
        let started = crate::crowdsec::lapi::run(c, stopped, move |news| {
            !flag.load(Ordering::SeqCst) && tx.send(Event::CrowdSec(news)).is_ok()
        });
        match started {
            Ok(_) => self.crowdsec = Some((stop, gone)),
            Err(e) => log::error!(
                "CrowdSec: cannot start the link thread ({e}); decisions are not pulled"
            ),
        }
    }

    fn stop_crowdsec(&mut self) {
        if let Some((stop, gone)) = self.crowdsec.take() {
            gone.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(stop);
        }
    }

    fn start_sources(&mut self, cfg: &Config) {
        self.start_crowdsec(cfg);
        let journal = journal::journal_present();
        let tx = self.tx.clone();
        let sink: FailureSink = Arc::new(move |jail: &str, failures| {
            tx.send(Event::Failures {
                jail: jail.to_string(),
                failures,
                found_at: std::time::Instant::now(),
            })
            .is_ok()
        });
        let mut syslog_jails = Vec::new();
        for j in &cfg.jails {
            let ctx = SourceContext {
                jail: j.name.clone(),
                filter: Arc::clone(&j.filter),
                sink: Arc::clone(&sink),
                book: self.book.clone(),
                counters: self.registry.get(&j.name),
            };
            if j.syslog {
                syslog_jails.push(crate::source::syslog::SyslogJail {
                    ctx: ctx.for_another_source(),
                    hosts: j.syslog_hosts.clone(),
                });
                if j.logpaths.is_empty() && j.journalmatch.is_empty() {
                    log_jail(j);
                    continue;
                }
            }
            if !j.logpaths.is_empty() && journal && !j.journalmatch.is_empty() && j.prefer_journal {
                // The journal when it has this jail's entries, else the files as well.
                let (logpaths, matches, findtime) = (
                    j.logpaths.clone(),
                    j.journalmatch.clone(),
                    j.policy.findtime,
                );
                self.tasks.push(tokio::spawn(async move {
                    if journal::has_entries(&matches).await {
                        log::info!(
                            "[{}] reading the journal only, not {}: journald sets _SYSTEMD_UNIT itself, while any local user can write a syslog line with `logger` (prefer_journal = false reads both)",
                            ctx.jail,
                            logpaths.join(", ")
                        );
                        journal::follow(matches, findtime, ctx).await;
                    } else {
                        tokio::join!(
                            file::follow(logpaths, ctx.for_another_source()),
                            journal::follow(matches, findtime, ctx)
                        );
                    }
                }));
                log_jail(j);
                continue;
            }
            if !j.logpaths.is_empty() {
                self.tasks.push(tokio::spawn(file::follow(
                    j.logpaths.clone(),
                    ctx.for_another_source(),
                )));
            }
            if !j.journalmatch.is_empty() {
                if journal {
                    self.tasks.push(tokio::spawn(journal::follow(
                        j.journalmatch.clone(),
                        j.policy.findtime,
                        ctx,
                    )));
                } else {
                    log::info!(
                        "[{}] no journal on this host: reading its log files only",
                        j.name
                    );
                }
            }
            log_jail(j);
        }
        if let (Some(sl), false) = (&cfg.syslog, syslog_jails.is_empty()) {
            self.tasks.push(tokio::spawn(crate::source::syslog::serve(
                sl.clone(),
                syslog_jails,
                Arc::clone(&self.syslog_stats),
            )));
        }
    }

    async fn stop_sources(&mut self) {
        self.stop_crowdsec();
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        self.book.clear_status();
    }

    /// Re-read the configuration file; on any error keep running as before.
    async fn reload(&mut self) -> Result<String, String> {
        let mut cfg = load_config(self.config_path.as_deref()).map_err(|e| format!("{e:#}"))?;
        self.overrides.clone().apply(&mut cfg);
        if cfg.interfaces.is_empty() {
            cfg.interfaces = self.running.interfaces.clone();
        }
        let mut restart_only = Vec::new();
        if cfg.interfaces != self.running.interfaces {
            restart_only.push("interfaces");
        }
        if cfg.backend != self.running.backend {
            restart_only.push("backend");
        }
        if cfg.socket != self.running.socket
            || cfg.state_dir != self.running.state_dir
            || cfg.bpffs_dir != self.running.bpffs_dir
        {
            restart_only.push("socket/state_dir/bpffs_dir");
        }
        let push_settings = |c: &Config| {
            c.crowdsec.as_ref().filter(|c| c.push).map(|c| {
                (
                    c.lapi_url.clone(),
                    c.login.clone(),
                    c.password.clone(),
                    c.credentials_file.clone(),
                )
            })
        };
        let new_push = if push_settings(&cfg) != push_settings(&self.running) {
            let credentials =
                push_credentials(cfg.crowdsec.as_ref(), false).map_err(|e| format!("{e:#}"))?;
            Some(start_push(cfg.crowdsec.as_ref(), credentials).map_err(|e| format!("{e:#}"))?)
        } else {
            None
        };
        self.stop_sources().await;
        if let Some(pusher) = new_push {
            let call = Box::new(move |core: &mut Core| core.set_crowdsec_push(pusher));
            if self.tx.send(Event::Call(call)).is_err() {
                return Err("the daemon is shutting down".into());
            }
        }
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.send(Event::Reload {
            config: Box::new(cfg.clone()),
            sources: Self::plan(&cfg),
            reply,
        });
        if sent.is_err() {
            return Err("the daemon is shutting down".into());
        }
        let mut summary = answer
            .await
            .map_err(|_| "the daemon is shutting down".to_string())?;
        self.start_sources(&cfg);
        if !restart_only.is_empty() {
            summary.push_str(&format!(
                "; not applied until a restart: {}",
                restart_only.join(", ")
            ));
        }
        self.running = cfg;
        log::info!("reloaded: {summary}");
        Ok(summary)
    }
}

/// Watch the host on a thread of its own: rtnetlink's link and address groups say when
/// something changes (an interface deleted or re-created, an address gained), and every two
/// seconds without news the addresses are read anyway (a missed message costs at most
/// that). The core hears of every change, with the addresses whenever they differ from
/// `known`; it never reads interfaces itself.
fn watch_host(tx: mpsc::Sender<Event>, mut known: Vec<sys::IfAddr>) {
    use nix::sys::socket::{
        bind, recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
        SockProtocol, SockType,
    };
    // RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR (linux/rtnetlink.h).
    const GROUPS: u32 = 0x1 | 0x10 | 0x100;
    const REREAD: Duration = Duration::from_secs(2);
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .and_then(|fd| {
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &NetlinkAddr::new(0, GROUPS),
        )?;
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(REREAD.as_secs() as _, 0),
        )?;
        Ok(fd)
    });
    let sock = match sock {
        Ok(fd) => Some(fd),
        Err(e) => {
            log::warn!("cannot listen to rtnetlink ({e}); interfaces and addresses are re-checked every 2 s");
            None
        }
    };
    let spawned = thread::Builder::new()
        .name("banner-host".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut sock = sock;
            loop {
                // Did rtnetlink say something changed (else two seconds went by)?
                let news = match &sock {
                    Some(fd) => match recv(
                        std::os::fd::AsRawFd::as_raw_fd(fd),
                        &mut buf,
                        MsgFlags::empty(),
                    ) {
                        // ENOBUFS (a burst overflowed the socket) means "something changed".
                        Ok(_) | Err(nix::errno::Errno::ENOBUFS) => true,
                        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => false,
                        Err(e) => {
                            log::warn!("rtnetlink: {e}; falling back to the 2 s re-check");
                            sock = None;
                            false
                        }
                    },
                    None => {
                        thread::sleep(REREAD);
                        false
                    }
                };
                let now = sys::interface_addresses();
                let addresses = (now != known).then(|| {
                    known = now.clone();
                    now
                });
                if (news || addresses.is_some())
                    && tx.send(Event::HostChanged { addresses }).is_err()
                {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the host watcher thread ({e})");
    }
}

/// The one line each jail logs at start: its filter and numbers.
fn log_jail(j: &crate::config::JailConfig) {
    log::info!(
        "[{}] filter {}, maxretry {} in {}, bantime {}, {}",
        j.name,
        j.filter_name,
        j.policy.maxretry,
        crate::duration::format_duration(j.policy.findtime),
        j.policy.bantime,
        j.policy.blocktype
    );
}

/// Wait for SIGTERM or SIGINT; reload on SIGHUP meanwhile.
async fn wait_for_stop(supervisor: &tokio::sync::Mutex<Supervisor>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        log::warn!("cannot install signal handlers; stop banner with `kill -9` only");
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                sys::notify("RELOADING=1");
                if let Err(e) = supervisor.lock().await.reload().await {
                    log::warn!("reload refused, still running the old configuration: {e}");
                }
                sys::notify("READY=1");
            }
        }
    }
}

/// Hold an exclusive lock on the state directory so two daemons never share it.
fn lock_state_dir(dir: &Path) -> Result<nix::fcntl::Flock<fs::File>> {
    let path = dir.join("lock");
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        anyhow::anyhow!(
            "another banner daemon uses the state directory {} ({e})",
            dir.display()
        )
    })
}

fn bind_socket(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt as _;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if let Ok(meta) = fs::symlink_metadata(path) {
        // Only a stale socket is ours to remove: a typo in --socket must not delete a file.
        if !meta.file_type().is_socket() {
            bail!(
                "{} exists and is not a socket; refusing to replace it (choose another --socket)",
                path.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another banner daemon is listening on {}", path.display());
        }
        fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to root", path.display()))?;
    Ok(listener)
}

/// The state directory holds every ban and read position: root's alone (0700), and any
/// file an older banner left readable is tightened to 0600.
fn private_state_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating state directory {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to root", dir.display()))?;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to root", path.display()))?;
        }
    }
    Ok(())
}

async fn serve(
    listener: UnixListener,
    tx: mpsc::Sender<Event>,
    supervisor: Arc<tokio::sync::Mutex<Supervisor>>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                let supervisor = Arc::clone(&supervisor);
                tokio::spawn(async move {
                    if let Err(e) = handle_connection(stream, tx, supervisor).await {
                        log::debug!("control connection: {e}");
                    }
                });
            }
            Err(e) => {
                log::warn!("accepting a control connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// `WATCHDOG=1` at half systemd's period, each time only after the core answered a call: a
/// stuck core misses the beat and systemd restarts banner (the bans stay in the kernel).
async fn watchdog(period: Duration, tx: mpsc::Sender<Event>) {
    loop {
        tokio::time::sleep(period / 2).await;
        if ask_core(&tx, |_| ()).await.is_none() {
            return;
        }
        sys::notify("WATCHDOG=1");
    }
}

/// Run `f` on the core and wait for what it returns; None when the core is gone (the
/// daemon is stopping).
async fn ask_core<T: Send + 'static>(
    tx: &mpsc::Sender<Event>,
    f: impl FnOnce(&mut Core) -> T + Send + 'static,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    let call = Box::new(move |core: &mut Core| {
        let _ = reply.send(f(core));
    });
    tx.send(Event::Call(call)).ok()?;
    answer.await.ok()
}

/// The metrics endpoint: `GET /metrics` answered with the core's figures, anything else 404.
/// A scrape reads at most 8 KiB of request in at most 5 s; it never holds the core longer
/// than building the text.
async fn serve_metrics(listener: tokio::net::TcpListener, tx: mpsc::Sender<Event>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), scrape(stream, tx)).await;
        });
    }
}

async fn scrape(stream: tokio::net::TcpStream, tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(8 * 1024));
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    // The rest of the head, unread otherwise (a client may wait for us to take it).
    let mut header = String::new();
    let mut openmetrics = false;
    while reader.read_line(&mut header).await? > 2 {
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("accept") {
                openmetrics = crate::metrics::wants_openmetrics(value);
            }
        }
        header.clear();
    }
    let mut words = request_line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => match ask_core(&tx, adapter::metrics).await {
            Some(text) if openmetrics => ("200 OK", text),
            Some(text) => ("200 OK", crate::metrics::to_classic(&text)),
            None => return Ok(()),
        },
        _ => (
            "404 Not Found",
            "only /metrics is served here\n".to_string(),
        ),
    };
    let content_type = match (status.starts_with("200"), openmetrics) {
        (true, true) => crate::metrics::CONTENT_TYPE,
        (true, false) => crate::metrics::CLASSIC_CONTENT_TYPE,
        _ => "text/plain; charset=utf-8",
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(body.as_bytes()).await?;
    write.shutdown().await
}

/// Answer a streamed `list`: the head, then one line per ban, written in 64 KiB pieces as
/// they are encoded.
async fn stream_list(
    tx: &mpsc::Sender<Event>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
) -> std::io::Result<()> {
    let listed = ask_core(tx, adapter::list_for_stream)
        .await
        .unwrap_or_else(|| Err("the daemon is shutting down".to_string()));
    let (views, dry_run) = match listed {
        Ok(l) => l,
        Err(e) => {
            return write
                .write_all(&protocol::encode_response(&Response::error(e)))
                .await
        }
    };
    let mut out = protocol::encode_response(&Response::Listing {
        count: views.len() as u64,
        dry_run,
    });
    let mut lines = protocol::BanLineWriter::default();
    for v in &views {
        let ports = v.ban.scope.as_ref().map(ToString::to_string);
        lines.write(&mut out, &adapter::ban_line(v, ports.as_deref(), dry_run));
        out.push(b'\n');
        if out.len() >= 1 << 16 {
            write.write_all(&out).await?;
            out.clear();
        }
    }
    write.write_all(&out).await
}

async fn handle_connection(
    stream: UnixStream,
    tx: mpsc::Sender<Event>,
    supervisor: Arc<tokio::sync::Mutex<Supervisor>>,
) -> std::io::Result<()> {
    // The kernel tells us who is on the other end; no client can claim to be root.
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(protocol::MAX_REQUEST_BYTES as u64));
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let response = match protocol::decode_request(line.as_bytes()) {
            Err(e) => Response::error(e.to_string()),
            Ok(request) if request.mutates() && uid != 0 => Response::error(format!(
                "permission denied: only root may ban or unban (you are uid {uid})"
            )),
            Ok(Request::List { stream: true }) => {
                stream_list(&tx, &mut write).await?;
                continue;
            }
            Ok(Request::Reload {}) => match supervisor.lock().await.reload().await {
                Ok(summary) => Response::Reloaded { summary },
                Err(e) => Response::error(format!(
                    "reload refused, still running the old configuration: {e}"
                )),
            },
            Ok(request) => ask_core(&tx, move |core| adapter::answer(core, request))
                .await
                .unwrap_or_else(|| Response::error("the daemon is shutting down")),
        };
        let out = protocol::encode_response(&response);
        write.write_all(&out).await?;
    }
}
