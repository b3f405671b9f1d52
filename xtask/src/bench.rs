//! `cargo xtask bench [SECTION]... [--quick]`: measure banner beside its peers in one run.
//! The measuring is done by the `banner-bench` binary (tests crate), which needs banner's
//! library; this task sets up, builds it and runs it as root.

use std::process::Command;

use anyhow::{bail, Result};

use crate::{
    setup::{self, Verbosity},
    tasks::build_dist_with,
    util::{self, root, run as run_cmd},
};

/// Set up, build banner (in the profile it ships in) and one binary of the tests crate, and
/// run that binary as root with BANNER_BIN pointing at the fresh banner.
fn build_and_run(what: &str, binary: &str, configure: impl FnOnce(&mut Command)) -> Result<()> {
    if !util::is_root() {
        bail!("{what} builds network namespaces and loads XDP: run as root");
    }
    setup::run(Verbosity::Quiet)?;
    let built = build_dist_with(&["--package", "tests", "--bin", "banner", "--bin", binary])?;
    let mut cmd = Command::new(built.join(binary));
    cmd.current_dir(root())
        .env("BANNER_BIN", built.join("banner"));
    configure(&mut cmd);
    run_cmd(&mut cmd)
}

/// `cargo xtask demo`: the narrated lab tour (the `banner-demo` binary of the tests crate).
pub fn demo() -> Result<()> {
    build_and_run("the demo", "banner-demo", |cmd| {
        cmd.env("BANNER_LAB_BASE", "200");
    })
}

/// `cargo xtask bench [SECTION]... [--quick]`.
pub fn bench(args: &[String]) -> Result<()> {
    let out = root().join("target/bench");
    build_and_run("the benchmark", "banner-bench", |cmd| {
        cmd.arg("--out").arg(out).args(args);
    })
}
