//! `cargo xtask bench [SECTION]... [--quick]`: measure banner beside its peers in one run.
//! The measuring is done by the `banner-bench` binary (tests crate), which needs banner's
//! library; this task sets up, builds it and runs it as root.

use std::process::Command;

use anyhow::{bail, Result};

use crate::{
    setup::{self, Verbosity},
    util::{self, root, run as run_cmd},
};

/// `cargo xtask demo`: the narrated lab tour (the `banner-demo` binary of the tests crate).
pub fn demo() -> Result<()> {
    if !util::is_root() {
        bail!("the demo builds network namespaces and loads XDP: run as root");
    }
    setup::run(Verbosity::Quiet)?;
    let root = root();
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "banner-user",
        "--package",
        "tests",
        "--bin",
        "banner",
        "--bin",
        "banner-demo",
    ]))?;
    run_cmd(
        Command::new(root.join("target/release/banner-demo"))
            .current_dir(&root)
            .env("BANNER_BIN", root.join("target/release/banner"))
            .env("BANNER_LAB_BASE", "200"),
    )
}

pub fn bench(args: &[String]) -> Result<()> {
    if !util::is_root() {
        bail!("benchmarks load XDP programs and build network namespaces: run as root");
    }
    setup::run(Verbosity::Quiet)?;
    let root = root();
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "banner-user",
        "--package",
        "tests",
        "--bin",
        "banner",
        "--bin",
        "banner-bench",
    ]))?;
    run_cmd(
        Command::new(root.join("target/release/banner-bench"))
            .current_dir(&root)
            .env("BANNER_BIN", root.join("target/release/banner"))
            .arg("--out")
            .arg(root.join("target/bench"))
            .args(args),
    )
}
