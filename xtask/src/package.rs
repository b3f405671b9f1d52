//! `cargo xtask package`: a Debian package of banner, built with dpkg-deb from the release
//! binary and what `banner generate` writes (man pages, completions, the commented config),
//! then checked by lintian.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::{
    setup::{self, Verbosity},
    tasks::build_dist,
    util::{output, root, run, run_captured, which},
};

const DESCRIPTION: &str = "\
Description: intrusion blocker that bans at the NIC with XDP
 banner reads logs (files, journald), recognises authentication failures
 and scans, counts them per source address and bans repeat offenders, as
 fail2ban does. The bans are enforced by an XDP program on the network
 interface, which drops or tarpits the banned addresses' packets before the
 kernel spends anything on them; by nftables or iptables where XDP cannot
 be used.
 .
 It reads fail2ban's filter.d files and imports its jail.local, shares bans
 with CrowdSec's Local API, and serves Prometheus metrics.
";

const MAINTAINER: &str = "The banner developers <banner@packages.invalid>";

/// `cargo xtask package`: builds target/debian/banner_VERSION_ARCH.deb and prints its path.
pub fn package(_args: &[String]) -> Result<()> {
    setup::run(Verbosity::Quiet)?;
    let binary = build_dist()?;
    let root = root();
    let version = output(Command::new(&binary).arg("--version"))
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .context("`banner --version` printed no version")?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))
        .map(|a| a.trim().to_string())
        .context("dpkg --print-architecture")?;
    let out_dir = root.join("target/debian");
    let stage = out_dir.join(format!("banner_{version}_{arch}"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    let generated = out_dir.join("generated");
    if generated.exists() {
        fs::remove_dir_all(&generated)?;
    }
    run_captured(Command::new(&binary).arg("generate").arg(&generated))?;

    let put = |from: &Path, to: &str, mode: u32| install(from, &stage.join(to), mode);
    let stripped = out_dir.join("banner.stripped");
    fs::copy(&binary, &stripped)?;
    run(Command::new("strip")
        .args([
            "--strip-unneeded",
            "--remove-section=.comment",
            "--remove-section=.note",
        ])
        .arg(&stripped))?;
    put(&stripped, "usr/sbin/banner", 0o755)?;
    let doc = "usr/share/doc/banner";
    for (from, to) in [
        (generated.join("banner.toml"), "etc/banner/banner.toml"),
        (
            root.join("dist/banner.service"),
            "lib/systemd/system/banner.service",
        ),
        (
            generated.join("banner.bash"),
            "usr/share/bash-completion/completions/banner",
        ),
        (
            generated.join("_banner"),
            "usr/share/zsh/vendor-completions/_banner",
        ),
        (
            generated.join("banner.fish"),
            "usr/share/fish/vendor_completions.d/banner.fish",
        ),
        (root.join("LICENSE-MIT"), &format!("{doc}/LICENSE-MIT")),
    ] {
        put(&from, to, 0o644)?;
    }
    fs::write(stage.join(doc).join("copyright"), copyright()?)?;
    let changelog = out_dir.join("changelog");
    fs::write(&changelog, changelog_text(&version)?)?;
    for (from, to) in [
        (generated.join("banner.8"), "usr/share/man/man8/banner.8.gz"),
        (
            generated.join("banner.toml.5"),
            "usr/share/man/man5/banner.toml.5.gz",
        ),
        (root.join("README.md"), &format!("{doc}/README.md.gz")),
        (changelog.clone(), &format!("{doc}/changelog.gz")),
    ] {
        gzip(&from, &stage.join(to))?;
    }

    let control = stage.join("DEBIAN");
    fs::create_dir_all(&control)?;
    for script in ["postinst", "prerm", "postrm"] {
        install(
            &root.join("dist/debian").join(script),
            &control.join(script),
            0o755,
        )?;
    }
    fs::write(control.join("conffiles"), "/etc/banner/banner.toml\n")?;
    fs::write(control.join("md5sums"), md5sums(&stage)?)?;
    let depends = shlib_depends(&stripped, &out_dir)?;
    fs::write(
        control.join("control"),
        format!(
            "Package: banner\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {MAINTAINER}\n\
             Installed-Size: {}\nDepends: {depends}\nSuggests: nftables, iptables, ipset, bpftool\n\
             Section: net\nPriority: optional\n{DESCRIPTION}",
            installed_size(&stage)?
        ),
    )?;
    set_modes(&stage)?;

    let deb = out_dir.join(format!("banner_{version}_{arch}.deb"));
    run_captured(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    if which("lintian").is_some() {
        // Errors and warnings fail the package; what lintian only informs about is printed.
        let out = Command::new("lintian")
            .args(["--fail-on", "error,warning", "--no-tag-display-limit"])
            .arg(&deb)
            .output()
            .context("running lintian")?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!(
                "lintian finds fault with {}:\n{}",
                deb.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eprintln!("xtask: lintian: no error or warning");
    } else {
        eprintln!("xtask: lintian is not installed: the package was not checked");
    }
    println!("{}", deb.display());
    Ok(())
}

/// Copy `from` to `to` with `mode`, creating the directories.
fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::copy(from, to).with_context(|| format!("{} -> {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// gzip -9n: no name or time stored, so the same input gives the same bytes.
fn gzip(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    let out = Command::new("gzip")
        .args(["-9n", "-c"])
        .arg(from)
        .output()
        .context("running gzip")?;
    if !out.status.success() {
        bail!("gzip {} failed", from.display());
    }
    fs::write(to, out.stdout)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Every regular file under `dir`, sorted.
fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// DEBIAN/md5sums: every file but the control area's, relative to the root.
fn md5sums(stage: &Path) -> Result<String> {
    let mut out = String::new();
    for path in files(stage)? {
        let rel = path.strip_prefix(stage)?;
        if rel.starts_with("DEBIAN") || rel.starts_with("etc") {
            // dpkg tracks conffiles' sums itself.
            continue;
        }
        let sum = output(Command::new("md5sum").arg(&path))
            .and_then(|s| s.split_whitespace().next().map(str::to_string))
            .with_context(|| format!("md5sum {}", path.display()))?;
        out.push_str(&format!("{sum}  {}\n", rel.display()));
    }
    Ok(out)
}

/// Installed-Size in KiB, as dpkg counts it (each file rounded up).
fn installed_size(stage: &Path) -> Result<u64> {
    let mut kib = 0;
    for path in files(stage)? {
        if !path.strip_prefix(stage)?.starts_with("DEBIAN") {
            kib += fs::metadata(&path)?.len().div_ceil(1024);
        }
    }
    Ok(kib)
}

/// Directories 0755 (dpkg-deb refuses a control directory with other modes).
fn set_modes(dir: &Path) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            set_modes(&path)?;
        }
    }
    Ok(())
}

/// The shared libraries the binary links, as Depends, from dpkg-shlibdeps.
fn shlib_depends(binary: &Path, scratch: &Path) -> Result<String> {
    // dpkg-shlibdeps wants a source package around it; a minimal one will do.
    let src = scratch.join("shlibdeps");
    fs::create_dir_all(src.join("debian"))?;
    fs::write(
        src.join("debian/control"),
        "Source: banner\n\nPackage: banner\nArchitecture: any\n",
    )?;
    let out = Command::new("dpkg-shlibdeps")
        .arg("-O")
        .arg(binary)
        .current_dir(&src)
        .output()
        .context("running dpkg-shlibdeps (dpkg-dev)")?;
    if !out.status.success() {
        bail!(
            "dpkg-shlibdeps failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let depends = text
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .context("dpkg-shlibdeps named no library")?;
    Ok(depends.trim().to_string())
}

fn copyright() -> Result<String> {
    let mit = fs::read_to_string(root().join("LICENSE-MIT"))?;
    let body: String = mit
        .lines()
        .skip_while(|l| !l.starts_with("Permission"))
        .map(|l| {
            if l.is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: banner\n\n\
         Files: *\n\
         Copyright: 2026 The banner developers\n\
         License: MIT or Apache-2.0\n\n\
         License: MIT\n{body}\n\
         License: Apache-2.0\n \
         On Debian systems, the full text of the Apache License, Version 2.0 is in\n \
         /usr/share/common-licenses/Apache-2.0.\n"
    ))
}

/// A native package's changelog: one entry, naming the commit it was built from.
fn changelog_text(version: &str) -> Result<String> {
    let git = |args: &[&str]| output(Command::new("git").current_dir(root()).args(args));
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    // The commit's date keeps the package reproducible; outside git, the build's.
    let date = git(&["log", "-1", "--format=%aD"])
        .or_else(|| output(Command::new("date").arg("-R")))
        .context("no date for the changelog")?;
    let built = match commit.trim() {
        "" => "Built from source.".to_string(),
        c => format!("Built from commit {c}."),
    };
    Ok(format!(
        "banner ({version}) unstable; urgency=medium\n\n  * {built}\n\n -- {MAINTAINER}  {}\n",
        date.trim()
    ))
}
