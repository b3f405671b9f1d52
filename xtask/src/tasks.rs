//! `run` and `test`.

use std::{os::unix::process::CommandExt as _, path::PathBuf, process::Command};

use anyhow::{bail, Result};

use crate::{
    setup::{self, Verbosity},
    util::{self, root, run as run_cmd},
};

/// CLI subcommands of `banner`; anything else given to `cargo xtask run` goes to the daemon.
const CLI_COMMANDS: &[&str] = &[
    "daemon",
    "ban",
    "unban",
    "list",
    "stats",
    "status",
    "reload",
    "check-config",
    "help",
    "--help",
    "-h",
    "--version",
    "-V",
];

/// The profile banner ships in (`[profile.dist]` in Cargo.toml: the release build as one
/// link-time-optimised unit, panics abort, dependencies built for size). `cargo xtask run`,
/// `bench` and `package` use it; the tests use the release profile, which links in a
/// fraction of the time.
pub(crate) const DIST_PROFILE: &str = "dist";

/// Builds banner in the shipped profile and gives the binary's path.
pub(crate) fn build_dist() -> Result<PathBuf> {
    Ok(build_dist_with(&[])?.join("banner"))
}

/// Builds banner and `more` (further cargo build arguments) in the shipped profile, and
/// gives the directory they are built in.
pub(crate) fn build_dist_with(more: &[&str]) -> Result<PathBuf> {
    run_cmd(
        Command::new("cargo")
            .current_dir(root())
            .args(["build", "--profile", DIST_PROFILE, "--quiet"])
            .args(["--package", "banner-user"])
            .args(more),
    )?;
    Ok(root().join("target").join(DIST_PROFILE))
}

pub(crate) fn build_release() -> Result<()> {
    run_cmd(Command::new("cargo").current_dir(root()).args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "banner-user",
    ]))
}

/// `cargo xtask run [-- ARGS]`: set up, build, then run banner in the foreground.
pub fn run(args: &[String]) -> Result<()> {
    setup::run(Verbosity::Quiet)?;
    let binary = build_dist()?;
    let mut cmd = Command::new(&binary);
    match args.first() {
        Some(first) if CLI_COMMANDS.contains(&first.as_str()) => {
            cmd.args(args);
        }
        _ => {
            if !util::is_root() {
                bail!("banner daemon needs root (it attaches an XDP program): run `sudo -E cargo xtask run`");
            }
            cmd.arg("daemon").args(args);
        }
    }
    // Replace xtask so signals (Ctrl-C, SIGTERM) reach banner directly.
    let err = cmd.exec();
    bail!("cannot run {}: {err}", binary.display())
}

/// Seconds each fuzz target runs in `cargo xtask test`.
const FUZZ_SMOKE_SECONDS: u64 = 10;

/// `cargo xtask test`: every test, in order of cost.
pub fn test(args: &[String]) -> Result<()> {
    if !util::is_root() {
        bail!("the privileged tests (XDP, network namespaces) need root: run `sudo -E cargo xtask test`");
    }
    setup::run(Verbosity::Quiet)?;
    let root = root();
    eprintln!("xtask: formatting and lints");
    run_cmd(
        Command::new("cargo")
            .current_dir(&root)
            .args(["fmt", "--all", "--check"]),
    )?;
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "clippy",
        "--quiet",
        "--workspace",
        "--all-targets",
        "--release",
        "--",
        "-D",
        "warnings",
    ]))?;
    build_release()?;
    // A short run of every fuzz target, to keep them building and catch the shallow crashes
    // (never a timing). Before the tests, so their summary stays the last thing printed.
    if crate::fuzz::nightly_available() {
        let targets: Vec<String> = crate::fuzz::TARGETS.iter().map(|t| t.to_string()).collect();
        crate::fuzz::run_targets(&targets, FUZZ_SMOKE_SECONDS)?;
    } else {
        eprintln!("xtask: no rustup nightly here: the fuzz targets are not run");
    }
    eprintln!("xtask: unit, kernel and lab tests");
    run_cmd(
        Command::new("cargo")
            .current_dir(&root)
            .env("BANNER_BIN", root.join("target/release/banner"))
            .args(["test", "--workspace", "--release"])
            .args(args),
    )
}
