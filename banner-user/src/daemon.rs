//! `banner daemon`: wires the configuration, the enforcement backend, the ban manager and the
//! control socket together.
//!
//! The decision core (the ban manager) runs on one plain thread and is the only writer of ban
//! state; the async edges (control socket, signals) send it events over a channel. That keeps
//! every map write in one place and the core free of async.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{mpsc, Arc},
    thread,
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context as _, Result};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::oneshot,
};

use crate::{
    addr::IpPrefix,
    backend::{
        xdp::{AttachMode, XdpBackend, XdpOptions},
        Backend,
    },
    bans::{BanManager, BanOutcome, BanRequest, IgnoreList},
    clock::{rfc3339, Clock, SystemClock},
    config::{BackendChoice, Config},
    control::{self, BanInfo, BanResult, Request, Response, Stats},
    duration::BanLength,
    model::{BlockType, MANUAL_JAIL},
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

/// Sources that are never banned: ignoreip, loopback, the host's own addresses and (if asked)
/// the subnets of the interfaces we guard.
pub fn build_ignore_list(cfg: &Config) -> IgnoreList {
    let mut list = IgnoreList::default();
    for net in &cfg.ignoreip {
        list.push(*net, "ignoreip");
    }
    for lo in ["127.0.0.0/8", "::1"] {
        if let Ok(net) = lo.parse::<IpPrefix>() {
            list.push(net, "loopback");
        }
    }
    // The host's own addresses are always protected: banning them would cut the host off.
    for a in sys::interface_addresses() {
        if a.addr.is_loopback() {
            continue;
        }
        list.push(
            IpPrefix::host(a.addr),
            format!("own address on {}", a.iface),
        );
        if cfg.ignore_attached_subnets && cfg.interfaces.contains(&a.iface) {
            if let Some(subnet) = a.subnet.filter(|s| !s.is_host()) {
                list.push(subnet, format!("subnet of {}", a.iface));
            }
        }
    }
    list
}

fn open_backend(cfg: &Config) -> Result<Box<dyn Backend>> {
    let mode = match cfg.backend {
        BackendChoice::Auto | BackendChoice::Xdp => AttachMode::Auto,
        BackendChoice::XdpGeneric => AttachMode::Generic,
    };
    let backend = XdpBackend::open(&XdpOptions {
        interfaces: cfg.interfaces.clone(),
        mode,
        bpffs_dir: cfg.bpffs_dir.clone(),
        max_exact_bans: cfg.max_exact_bans,
        max_prefix_bans: cfg.max_prefix_bans,
    })?;
    Ok(Box::new(backend))
}

/// Events for the core thread.
enum Event {
    Control {
        request: Request,
        reply: oneshot::Sender<Response>,
    },
    Shutdown,
}

/// Run the daemon until SIGTERM/SIGINT.
pub fn run(mut cfg: Config, overrides: Overrides) -> Result<()> {
    overrides.apply(&mut cfg);
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
    fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("creating state directory {}", cfg.state_dir.display()))?;
    let _lock = lock_state_dir(&cfg.state_dir)?;

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

    let backend = open_backend(&cfg)?;
    let ignore = build_ignore_list(&cfg);
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = runtime.block_on(async { bind_socket(&cfg.socket) })?;

    let (tx, rx) = mpsc::channel::<Event>();
    let core_settings = CoreSettings {
        bantime: cfg.bantime,
        blocktype: cfg.blocktype,
        keep_on_exit: cfg.keep_on_exit,
    };
    let core = thread::Builder::new()
        .name("banner-core".into())
        .spawn(move || core_loop(manager, rx, core_settings))
        .context("starting the core thread")?;

    log::info!("control socket at {}", cfg.socket.display());
    let socket_path = cfg.socket.clone();
    runtime.block_on(async move {
        let server = tokio::spawn(serve(listener, tx.clone()));
        wait_for_stop_signal().await;
        log::info!("stopping");
        server.abort();
        let _ = tx.send(Event::Shutdown);
    });
    let _ = fs::remove_file(&socket_path);
    match core.join() {
        Ok(result) => result,
        Err(_) => bail!("the core thread panicked"),
    }
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can only stop on Ctrl-C via the default action.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Hold an exclusive lock on the state directory so two daemons never share it.
fn lock_state_dir(dir: &Path) -> Result<nix::fcntl::Flock<fs::File>> {
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
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
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if path.exists() {
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

async fn serve(listener: UnixListener, tx: mpsc::Sender<Event>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle_connection(stream, tx).await {
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

async fn handle_connection(stream: UnixStream, tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    // The kernel tells us who is on the other end; no client can claim to be root.
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(control::MAX_REQUEST_BYTES as u64));
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::error(format!("bad request: {e}")),
            Ok(request) if request.mutates() && uid != 0 => Response::error(format!(
                "permission denied: only root may ban or unban (you are uid {uid})"
            )),
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                if tx.send(Event::Control { request, reply }).is_err() {
                    Response::error("the daemon is shutting down")
                } else {
                    answer
                        .await
                        .unwrap_or_else(|_| Response::error("the daemon is shutting down"))
                }
            }
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_else(|e| {
            format!("{{\"reply\":\"error\",\"message\":\"encoding the reply: {e}\"}}").into_bytes()
        });
        out.push(b'\n');
        write.write_all(&out).await?;
    }
}

struct CoreSettings {
    bantime: Duration,
    blocktype: BlockType,
    keep_on_exit: bool,
}

fn core_loop(
    mut manager: BanManager,
    rx: mpsc::Receiver<Event>,
    settings: CoreSettings,
) -> Result<()> {
    loop {
        let wait = manager
            .next_deadline()
            .map(|t| {
                t.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            })
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        match rx.recv_timeout(wait) {
            Ok(Event::Control { request, reply }) => {
                let response = handle_request(&mut manager, &settings, request);
                let _ = reply.send(response);
            }
            Ok(Event::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        for ban in manager.expire() {
            log::info!("[{}] unban {} (expired)", ban.jail, ban.target);
        }
    }
    manager.shutdown(settings.keep_on_exit)?;
    if settings.keep_on_exit {
        log::info!(
            "stopped; {} bans stay enforced in the kernel",
            manager.active_count()
        );
    } else {
        log::info!(
            "stopped; XDP detached and kernel bans removed (they are kept in the state dir)"
        );
    }
    Ok(())
}

fn handle_request(manager: &mut BanManager, settings: &CoreSettings, request: Request) -> Response {
    match request {
        Request::Ping {} => Response::Pong,
        Request::Ban {
            targets,
            duration,
            blocktype,
            jail,
        } => {
            let length = match duration.as_deref() {
                None => BanLength::For(settings.bantime),
                Some(d) => match BanLength::parse(d) {
                    Ok(l) => l,
                    Err(e) => return Response::error(e.to_string()),
                },
            };
            let mut requests = Vec::with_capacity(targets.len());
            for (index, t) in targets.iter().enumerate() {
                match t.parse::<IpPrefix>() {
                    Ok(target) => requests.push(BanRequest {
                        target,
                        jail: jail.clone().unwrap_or_else(|| MANUAL_JAIL.to_string()),
                        blocktype: blocktype.unwrap_or(settings.blocktype),
                        length,
                    }),
                    Err(e) => {
                        return Response::Error {
                            message: e.to_string(),
                            index: Some(index),
                        }
                    }
                }
            }
            match manager.ban_batch(&requests) {
                Ok(outcomes) => {
                    let results = outcomes
                        .iter()
                        .map(|o| {
                            let b = o.ban();
                            let (outcome, verb) = match o {
                                BanOutcome::New(_) => ("banned", "ban"),
                                BanOutcome::Extended(_) => ("extended", "extend ban of"),
                                BanOutcome::Unchanged(_) => ("unchanged", ""),
                            };
                            if !verb.is_empty() {
                                log::info!(
                                    "[{}] {verb} {} ({}, {})",
                                    b.jail,
                                    b.target,
                                    b.blocktype,
                                    length
                                );
                            }
                            let notes = manager
                                .ignore_list()
                                .inside(&b.target)
                                .map(|e| format!("{} ({}) inside stays allowed", e.net, e.why))
                                .collect();
                            BanResult {
                                ip: b.target.to_string(),
                                outcome: outcome.into(),
                                expires_at: b.expires_at.map(rfc3339),
                                notes,
                            }
                        })
                        .collect();
                    Response::Banned { results }
                }
                Err(e) => Response::Error {
                    message: e.error.to_string(),
                    index: Some(e.index),
                },
            }
        }
        Request::Unban { targets, all } => {
            if all {
                return match manager.unban_all() {
                    Ok(lifted) => {
                        log::info!("unbanned all ({} bans)", lifted.len());
                        Response::Unbanned {
                            targets: lifted.iter().map(|b| b.target.to_string()).collect(),
                            not_banned: Vec::new(),
                        }
                    }
                    Err(e) => Response::error(e.to_string()),
                };
            }
            let mut parsed = Vec::with_capacity(targets.len());
            for (index, t) in targets.iter().enumerate() {
                match t.parse::<IpPrefix>() {
                    Ok(p) => parsed.push(p),
                    Err(e) => {
                        return Response::Error {
                            message: e.to_string(),
                            index: Some(index),
                        }
                    }
                }
            }
            let mut done = Vec::new();
            let mut not_banned = Vec::new();
            for p in parsed {
                match manager.unban(&p) {
                    Ok(Some(b)) => {
                        log::info!("[{}] unban {}", b.jail, b.target);
                        done.push(p.to_string());
                    }
                    Ok(None) => not_banned.push(p.to_string()),
                    Err(e) => return Response::error(e.to_string()),
                }
            }
            Response::Unbanned {
                targets: done,
                not_banned,
            }
        }
        Request::List {} => match manager.list() {
            Ok(views) => Response::List {
                bans: views.iter().map(BanInfo::from).collect(),
            },
            Err(e) => Response::error(e.to_string()),
        },
        Request::Stats {} => match manager.counters() {
            Ok(c) => Response::Stats {
                stats: Stats::new(
                    manager.backend_name(),
                    c,
                    manager.stats(),
                    manager.active_count(),
                ),
            },
            Err(e) => Response::error(e.to_string()),
        },
    }
}
