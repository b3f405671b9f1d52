//! The `banner` binary: argument parsing and dispatch only.

use std::path::PathBuf;

use banner::{
    cli::{self, ban, check_config, import, list, stats, status, test_filter, unban, CliError},
    config::BackendChoice,
    daemon,
};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "banner",
    version,
    about = "Bans attackers at the NIC: log-driven, XDP-enforced"
)]
struct Cli {
    /// Control socket of the daemon (default: /run/banner/banner.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: attach XDP, restore bans, serve the control socket.
    Daemon(DaemonArgs),
    /// Ban addresses or prefixes.
    Ban(ban::BanArgs),
    /// Lift bans.
    Unban(unban::UnbanArgs),
    /// Show active bans.
    List(list::ListArgs),
    /// Show packet and ban counters.
    Stats(stats::StatsArgs),
    /// Show jails: lines read, failures, bans, sources and their positions.
    Status(status::StatusArgs),
    /// Re-read the configuration: keep the bans, add, change or drop jails.
    Reload,
    /// Is the daemon there and answering?
    Ping,
    /// Write the man page (banner.8) and the bash, zsh and fish completions into DIR.
    #[command(hide = true)]
    Generate {
        /// Where to write them (created if missing).
        dir: PathBuf,
    },
    /// Validate a configuration file.
    CheckConfig(check_config::CheckConfigArgs),
    /// Run a filter over a log and show what it finds (fail2ban-regex's job).
    TestFilter(test_filter::TestFilterArgs),
    /// Write a banner.toml equivalent to another tool's setup (`import fail2ban [DIR]`).
    Import(import::ImportArgs),
}

#[derive(Debug, clap::Args)]
struct DaemonArgs {
    /// Configuration file (default: /etc/banner/banner.toml if present, else the embedded default).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Interface to guard (repeatable; default: the default route's).
    #[arg(long = "iface", value_name = "IF")]
    interfaces: Vec<String>,
    /// auto, xdp, xdp-generic, nftables or iptables (auto: XDP where the kernel and driver
    /// allow it, else nftables, else iptables).
    #[arg(long, value_name = "BACKEND")]
    backend: Option<String>,
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    bpffs_dir: Option<PathBuf>,
    /// Leave bans enforced in the kernel when the daemon stops.
    #[arg(long)]
    keep_on_exit: bool,
    /// Observe only (`backend = "none"`): read, judge and log what would be banned, enforce
    /// nothing; the would-be bans are kept in STATE_DIR/dry-run.
    #[arg(long, conflicts_with = "backend")]
    dry_run: bool,
    /// auto (journald's own fields under systemd, else text), text, json (one object a line)
    /// or journal.
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    log_format: String,
}

fn main() {
    // `banner list | head` closes the pipe early: die quietly of SIGPIPE, as ls and cat do,
    // instead of panicking in println! (Rust starts programs with SIGPIPE ignored).
    // SAFETY: setting a signal disposition to its default before any thread is started.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || matches!(
                    e.kind(),
                    ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                let _ = e.print();
                std::process::exit(if e.use_stderr() {
                    cli::EXIT_USAGE
                } else {
                    cli::EXIT_OK
                });
            }
            // One line naming the problem; the full usage is a --help away.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("banner: {first} (see `banner --help`)");
            std::process::exit(cli::EXIT_USAGE);
        }
    };
    let result = match cli.command {
        Command::Daemon(args) => run_daemon(cli.socket, args),
        command => {
            let socket = cli::resolve_socket(cli.socket);
            match command {
                Command::Ban(a) => ban::run(&socket, a),
                Command::Unban(a) => unban::run(&socket, a),
                Command::List(a) => list::run(&socket, a),
                Command::Stats(a) => stats::run(&socket, a),
                Command::Status(a) => status::run(&socket, a),
                Command::Reload => status::reload(&socket),
                Command::Ping => status::ping(&socket),
                Command::Generate { dir } => generate(&dir),
                Command::CheckConfig(a) => check_config::run(a),
                Command::TestFilter(a) => test_filter::run(a),
                Command::Import(a) => import::run(a),
                Command::Daemon(_) => unreachable!("handled above"),
            }
        }
    };
    if let Err(e) = result {
        eprintln!("banner: {}", e.message);
        std::process::exit(e.code);
    }
}

/// The man pages, the commented configuration file and the shell completions, from the
/// argument definitions and the configuration reference themselves, so they never drift from
/// what the binary takes.
fn generate(dir: &std::path::Path) -> cli::CliResult {
    use clap::CommandFactory as _;
    let fail = |what: &str, e: std::io::Error| CliError::failed(format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| fail(&dir.display().to_string(), e))?;
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)
        .map_err(|e| fail("rendering the man page", e))?;
    let reference = banner::config::reference::man_page(env!("CARGO_PKG_VERSION"));
    let sample = banner::config::reference::commented_default();
    for (name, text) in [
        ("banner.8", page),
        ("banner.toml.5", reference.into_bytes()),
        ("banner.toml", sample.into_bytes()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| fail(&path.display().to_string(), e))?;
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut cmd = cmd.clone();
        clap_complete::generate_to(shell, &mut cmd, "banner", dir)
            .map_err(|e| fail(&format!("{shell} completions"), e))?;
    }
    println!(
        "wrote banner.8, banner.toml.5, a commented banner.toml and the bash, zsh and fish completions to {}",
        dir.display()
    );
    Ok(())
}

fn run_daemon(socket: Option<PathBuf>, args: DaemonArgs) -> cli::CliResult {
    let format = args
        .log_format
        .parse::<banner::logging::LogFormat>()
        .map_err(|e| CliError::usage(format!("--log-format: {e}")))?;
    banner::logging::init(format);
    let backend = match &args.backend {
        Some(b) => Some(
            b.parse::<BackendChoice>()
                .map_err(|e| CliError::usage(format!("--backend: {e}")))?,
        ),
        None if args.dry_run => Some(BackendChoice::None),
        None => None,
    };
    let cfg = daemon::load_config(args.config.as_deref())
        .map_err(|e| CliError::failed(format!("{e:#}")))?;
    let overrides = daemon::Overrides {
        interfaces: args.interfaces,
        backend,
        socket,
        state_dir: args.state_dir,
        bpffs_dir: args.bpffs_dir,
        keep_on_exit: args.keep_on_exit.then_some(true),
    };
    daemon::run(args.config, cfg, overrides).map_err(|e| CliError::failed(format!("{e:#}")))
}
