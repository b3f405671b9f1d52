//! `cargo xtask setup`: install what building, running and testing banner needs, on Debian.
//!
//! Idempotent and silent when everything is there. Steps:
//! 1. Debian packages: the BPF toolchain's pieces, the lab's tools and the peers banner is
//!    compared with. Services that packages would start (sshd, fail2ban, sshguard) are kept
//!    from starting during the install by a temporary policy-rc.d.
//! 2. A compiler that can build `core` for bpfel-unknown-none: rustup's nightly if it has
//!    rust-src, else Debian's rustc-web + rust-web-src linked into rustup as `bpf-system`.
//! 3. bpf-linker, built against a libLLVM whose major version matches that compiler's LLVM
//!    (see shared/TOOLCHAIN.md for why and how).
//! 4. cargo-fuzz, for the fuzz targets (built with rustup's nightly).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::util::{self, output, run_captured};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Say only what is being installed.
    Quiet,
    /// Also confirm when nothing was needed.
    Normal,
}

/// Debian packages and why banner needs them.
const PACKAGES: &[(&str, &str)] = &[
    ("bpftool", "inspect the pinned maps"),
    ("iproute2", "network namespaces and veth pairs for the lab"),
    ("iputils-ping", "lab reachability checks"),
    ("netcat-openbsd", "lab TCP checks"),
    ("procps", "process checks in tests"),
    ("openssh-server", "the real sshd in end-to-end tests"),
    ("openssh-client", "the real ssh client in end-to-end tests"),
    ("sshpass", "failing ssh passwords from a script"),
    ("nftables", "the nftables backend"),
    ("iptables", "the iptables backend"),
    ("ipset", "the iptables backend's sets"),
    ("tcpdump", "watching the lab's wire"),
    ("netsniff-ng", "trafgen for packet-rate benchmarks"),
    ("xdp-tools", "xdp-filter, the XDP peer in benchmarks"),
    ("fail2ban", "the peer banner replaces, for comparisons"),
    ("sshguard", "a peer, for comparisons"),
    (
        "python3",
        "fail2ban-regex, and raw TCP segments in the tarpit lab tests",
    ),
    ("ethtool", "full checksums from the lab's veth peer"),
    ("fonts-dejavu-core", "text in the benchmark charts"),
    (
        "crowdsec",
        "CrowdSec's Local API, which the bouncer's tests run offline",
    ),
    (
        "crowdsec-firewall-bouncer",
        "CrowdSec's own firewall bouncer, banner's peer in `bench crowdsec`",
    ),
    (
        "openssl",
        "a test CA and a certificate for the LAPI served over https in the tests",
    ),
    (
        "systemd",
        "systemd-analyze verify of the unit; journald for the journal tests",
    ),
    ("man-db", "man -l of the generated man page in the tests"),
    (
        "dpkg-dev",
        "dpkg-shlibdeps, the package's library dependencies",
    ),
    ("binutils", "strip, for the package's binary"),
    (
        "lintian",
        "checks the Debian package `cargo xtask package` builds",
    ),
    (
        "prometheus",
        "promtool, which checks the metrics endpoint's output in the tests",
    ),
    (
        "tzdata",
        "time zones with daylight saving, for the date readers' tests",
    ),
];

/// Debian's Rust with its library source: needed only when rustup's nightly has no rust-src.
const DEBIAN_RUST: &[&str] = &["rustc-web", "cargo-web", "rust-web-src"];

/// The rustup name under which Debian's compiler is linked.
pub const SYSTEM_TOOLCHAIN: &str = "bpf-system";
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run(verbosity: Verbosity) -> Result<()> {
    let mut did = false;
    let nightly_ok = has_rust_src("nightly");
    let mut wanted: Vec<&str> = PACKAGES.iter().map(|(p, _)| *p).collect();
    if !nightly_ok {
        wanted.extend(DEBIAN_RUST);
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        if missing.contains(&"crowdsec") {
            offline_crowdsec()?;
        }
        apt_install(&missing)?;
        did = true;
    }

    let toolchain = if nightly_ok {
        "nightly".to_string()
    } else {
        if sysroot(SYSTEM_TOOLCHAIN).is_none() {
            eprintln!("setup: linking Debian's rustc as the rustup toolchain `{SYSTEM_TOOLCHAIN}`");
            run_captured(Command::new("rustup").args([
                "toolchain",
                "link",
                SYSTEM_TOOLCHAIN,
                "/usr",
            ]))?;
            did = true;
        }
        if !has_rust_src(SYSTEM_TOOLCHAIN) {
            bail!("`{SYSTEM_TOOLCHAIN}` has no library source: is rust-web-src installed?");
        }
        SYSTEM_TOOLCHAIN.to_string()
    };

    did |= ensure_bpf_linker(&toolchain)?;
    did |= ensure_cargo_fuzz()?;
    if !did && verbosity == Verbosity::Normal {
        eprintln!("setup: everything is in place (BPF toolchain: {toolchain})");
    }
    Ok(())
}

fn installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.trim_end().ends_with("install ok installed"))
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if !util::is_root() {
        bail!(
            "these Debian packages are missing and installing them needs root: {}",
            packages.join(" ")
        );
    }
    eprintln!("setup: installing {}", packages.join(" "));
    // Keep package scripts from starting sshd, fail2ban or sshguard on this machine: banner's
    // tests start their own, in their own namespaces.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let placed_policy = !policy.exists();
    if placed_policy {
        fs::write(policy, "#!/bin/sh\nexit 101\n").context("writing policy-rc.d")?;
        set_mode(policy, 0o755)?;
    }
    let result = (|| {
        run_captured(Command::new("apt-get").args(["update", "-q"]))?;
        run_captured(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(packages),
        )
    })();
    if placed_policy {
        let _ = fs::remove_file(policy);
    }
    result
}

/// crowdsec's post-install registers with CrowdSec's central API, which fails without the
/// Internet and leaves the package half-installed; a non-empty credentials file written
/// first makes it skip that. banner's tests run their own LAPI with the central API off.
fn offline_crowdsec() -> Result<()> {
    let path = Path::new("/etc/crowdsec/online_api_credentials.yaml");
    if fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    if !util::is_root() {
        bail!(
            "installing crowdsec offline needs root (to write {})",
            path.display()
        );
    }
    fs::create_dir_all("/etc/crowdsec").context("creating /etc/crowdsec")?;
    fs::write(
        path,
        "# Written by banner's `cargo xtask setup`: no central API on this machine.\nurl: https://api.crowdsec.net/\nlogin: offline\npassword: offline\n",
    )
    .with_context(|| format!("writing {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

fn sysroot(toolchain: &str) -> Option<PathBuf> {
    output(Command::new("rustup").args(["run", toolchain, "rustc", "--print", "sysroot"]))
        .map(|s| PathBuf::from(s.trim()))
}

fn has_rust_src(toolchain: &str) -> bool {
    sysroot(toolchain).is_some_and(|root| {
        root.join("lib/rustlib/src/rust/library/core/Cargo.toml")
            .exists()
    })
}

/// LLVM major version of a toolchain's rustc.
fn llvm_major(toolchain: &str) -> Result<u32> {
    let info = output(Command::new("rustup").args(["run", toolchain, "rustc", "-vV"]))
        .with_context(|| format!("cannot run rustc of toolchain `{toolchain}`"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse().ok())
        .with_context(|| format!("rustc of `{toolchain}` does not report its LLVM version"))
}

fn data_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".local/share/banner")
}

/// A libLLVM shared library of the given major version: rustup's toolchains ship one each;
/// Debian's rustc-web brings one too.
fn find_libllvm(major: u32) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(list) = output(Command::new("rustup").args(["toolchain", "list"])) {
        for line in list.lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.is_empty() || name == SYSTEM_TOOLCHAIN {
                continue;
            }
            if let Some(root) = sysroot(name) {
                candidates.push(root.join("lib"));
            }
        }
    }
    candidates.push(PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    let prefix = format!("libLLVM.so.{major}.");
    for dir in candidates {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        names.sort();
        if let Some(lib) = names.pop() {
            return Some(lib);
        }
    }
    None
}

/// cargo-fuzz, for `cargo xtask fuzz` (and the short fuzz runs of `cargo xtask test`).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

fn ensure_cargo_fuzz() -> Result<bool> {
    let have = output(Command::new("cargo").args(["fuzz", "--version"]));
    if have.is_some_and(|v| v.contains(CARGO_FUZZ_VERSION)) {
        return Ok(false);
    }
    eprintln!("setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about a minute)");
    util::run(Command::new("cargo").args([
        "install",
        "--quiet",
        "--locked",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
    ]))?;
    Ok(true)
}

/// Make sure a working bpf-linker for `toolchain`'s LLVM is on PATH. Returns true if it had
/// to build one.
fn ensure_bpf_linker(toolchain: &str) -> Result<bool> {
    let major = llvm_major(toolchain)?;
    let stamp_path = data_dir().join("bpf-linker.stamp");
    let stamp = format!("bpf-linker {BPF_LINKER_VERSION} llvm-{major}\n");
    let works = output(Command::new("bpf-linker").arg("--version")).is_some();
    if works && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(false);
    }
    let lib = find_libllvm(major).with_context(|| {
        format!("no libLLVM of major version {major} (the LLVM of `{toolchain}`) to build bpf-linker against")
    })?;
    // bpf-linker finds libLLVM through an rpath into this folder, so it must stay.
    let prefix = data_dir().join(format!("llvm-{major}"));
    let libdir = prefix.join("lib");
    fs::create_dir_all(&libdir).with_context(|| format!("creating {}", libdir.display()))?;
    let file_name = lib.file_name().context("libLLVM path has no file name")?;
    for name in [Path::new("libLLVM.so"), Path::new(file_name)] {
        let link = libdir.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&lib, &link)
            .with_context(|| format!("linking {} -> {}", link.display(), lib.display()))?;
    }
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against {} (about a minute)",
        lib.display()
    );
    util::run(
        Command::new("cargo")
            .env("LLVM_PREFIX", &prefix)
            .args(["install", "--quiet", "--force", "bpf-linker"])
            .args(["--version", BPF_LINKER_VERSION, "--no-default-features"])
            .args(["--features", &format!("llvm-{major}")]),
    )?;
    if util::which("bpf-linker").is_none() {
        bail!("bpf-linker was installed but is not on PATH: add ~/.cargo/bin to PATH");
    }
    fs::write(&stamp_path, stamp).with_context(|| format!("writing {}", stamp_path.display()))?;
    Ok(true)
}
