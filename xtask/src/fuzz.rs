//! `cargo xtask fuzz [TARGET]... [--time SECONDS]`: run banner's fuzz targets (fuzz/) with
//! cargo-fuzz on rustup's nightly. Each target starts from its committed seeds
//! (fuzz/seeds/TARGET) plus what earlier runs found (fuzz/corpus/TARGET, not committed). A
//! crash stops the run with the input saved under fuzz/artifacts/TARGET; make it a unit test.

use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::util::{output, root, run};

/// Every target, in the order `cargo xtask test` runs them.
pub const TARGETS: &[&str] = &[
    "filter_builtin",
    "filter_custom",
    "config",
    "date",
    "state_log",
    "control",
    "fail2ban_filter",
];

/// Seconds per target when none is given.
const DEFAULT_SECONDS: u64 = 60;

/// Is there a nightly toolchain to build the targets with (sanitizer coverage needs it)?
pub fn nightly_available() -> bool {
    output(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])).is_some()
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let mut targets = Vec::new();
    let mut seconds = DEFAULT_SECONDS;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => {
                let v = it.next().context("--time needs a number of seconds")?;
                seconds = v
                    .parse()
                    .with_context(|| format!("--time: `{v}` is not a number of seconds"))?;
            }
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => bail!(
                "unknown fuzz target `{other}` (targets: {})",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    run_targets(&targets, seconds)
}

/// Build and run each target for `seconds` (a smoke run in `cargo xtask test`; never a timing).
pub fn run_targets(targets: &[String], seconds: u64) -> Result<()> {
    if !nightly_available() {
        bail!("fuzzing needs rustup's nightly toolchain (`rustup toolchain install nightly`)");
    }
    let root = root();
    let fuzz_dir = root.join("fuzz");
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let seeds = fuzz_dir.join("seeds").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root)
            // The fuzz targets exercise user space only: no kernel program needed.
            .env("BANNER_EBPF_STUB", "1")
            .args(["+nightly", "fuzz", "run", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg(target)
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            // Lines and configs, not megabytes.
            "-max_len=8192",
            "-print_final_stats=1",
        ]);
        run(&mut cmd).with_context(|| {
            format!(
                "fuzz target {target} found a crash: the input is under fuzz/artifacts/{target}"
            )
        })?;
    }
    Ok(())
}
