//! Builds the XDP program (banner-ebpf) and leaves it in OUT_DIR for `include_bytes!`
//! (what aya-build does, with quiet output).
//!
//! The kernel crate needs a compiler that can build `core` for bpfel-unknown-none and a
//! bpf-linker whose LLVM matches it. This script picks the toolchain itself so that a plain
//! `cargo build` works wherever `cargo xtask setup` has run:
//!   1. `BANNER_BPF_TOOLCHAIN` if set (any name `rustup run` accepts);
//!   2. rustup's `nightly`, if it has the `rust-src` component;
//!   3. `bpf-system`: Debian's rustc-web + rust-web-src linked into rustup by xtask setup,
//!      used with RUSTC_BOOTSTRAP=1 for `-Z build-std=core`.
//!
//! `BANNER_EBPF_STUB=1` skips the kernel build and embeds an empty object instead, so
//! `cargo check`/`clippy` of user space work on any machine (the daemon then refuses to start
//! with a message saying so).

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{anyhow, bail, Context as _, Result};

const STUB_VAR: &str = "BANNER_EBPF_STUB";
const TOOLCHAIN_VAR: &str = "BANNER_BPF_TOOLCHAIN";

fn main() -> Result<()> {
    // Relative relocations packed (DT_RELR, glibc 2.36 and binutils 2.38 on): the loader reads
    // a table of about 10 kB at start instead of 330 kB, and those pages stay out of the
    // daemon's resident set. The binary stays position-independent.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    println!("cargo:rerun-if-env-changed={STUB_VAR}");
    println!("cargo:rerun-if-env-changed={TOOLCHAIN_VAR}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("banner");

    if env::var(STUB_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        println!("cargo:warning={STUB_VAR} is set: embedding an empty XDP object");
        fs::write(&object, []).context("writing the stand-in object")?;
        return Ok(());
    }

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let ebpf_dir = manifest_dir
        .parent()
        .map(|p| p.join("banner-ebpf"))
        .ok_or_else(|| anyhow!("banner-user has no parent directory"))?;

    let common_dir = ebpf_dir.with_file_name("banner-common");
    for dir in [&ebpf_dir, &common_dir] {
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        ebpf_dir.join("Cargo.lock").display()
    );

    let toolchain = pick_toolchain()?;
    if which("bpf-linker").is_none() {
        bail!("bpf-linker is not on PATH: run `cargo xtask setup`, or set {STUB_VAR}=1 to build user space alone");
    }

    // The kernel crate is its own workspace: it builds for another target, with another
    // toolchain, from its own lockfile. Only failures are shown (cargo prints a build
    // script's output when it fails).
    let target_dir = out_dir.join("ebpf-target");
    let rustflags = [
        "--cfg=bpf_target_arch=\"x86_64\"",
        "-Cdebuginfo=2",
        // BTF for the maps, so bpftool prints named fields.
        "-Clink-arg=--btf",
    ]
    .join("\x1f");
    let status = Command::new("rustup")
        .args([
            "run",
            &toolchain,
            "cargo",
            "build",
            "--quiet",
            "--release",
            "--bins",
        ])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&ebpf_dir)
        // Stable compilers (Debian's) need this for -Z build-std; nightly ignores it.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .with_context(|| format!("running `rustup run {toolchain} cargo build` for banner-ebpf"))?;
    if !status.success() {
        bail!("building the XDP program with toolchain `{toolchain}` failed ({status})");
    }
    let built = target_dir.join("bpfel-unknown-none/release/banner");
    fs::copy(&built, &object)
        .with_context(|| format!("copying {} to {}", built.display(), object.display()))?;
    Ok(())
}

fn pick_toolchain() -> Result<String> {
    if let Ok(name) = env::var(TOOLCHAIN_VAR) {
        return Ok(name);
    }
    if has_rust_src("nightly") {
        return Ok("nightly".into());
    }
    if sysroot("bpf-system").is_some() {
        return Ok("bpf-system".into());
    }
    bail!(
        "no toolchain can build the XDP program: need rustup's nightly with rust-src, or \
         Debian's rustc-web linked as `bpf-system`. Run `cargo xtask setup`, set \
         {TOOLCHAIN_VAR}, or set {STUB_VAR}=1 to build user space alone"
    )
}

fn sysroot(toolchain: &str) -> Option<PathBuf> {
    let out = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--print", "sysroot"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn has_rust_src(toolchain: &str) -> bool {
    sysroot(toolchain).is_some_and(|root| {
        root.join("lib/rustlib/src/rust/library/core/Cargo.toml")
            .exists()
    })
}

fn which(program: &str) -> Option<PathBuf> {
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
