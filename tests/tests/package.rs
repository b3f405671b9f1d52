//! `cargo xtask package`: the Debian package builds lintian-clean, holds what it should, installs
//! with dpkg into a working banner (binary, config, man pages, completions, unit), keeps an
//! admin's config and banner's state across an upgrade, and leaves nothing behind when purged.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use tests::{banner_bin, sh, sh_ok, sh_quiet};

const STATE: &str = "/var/lib/banner";
/// Where a state directory found before the test waits until the test is over.
const STATE_ASIDE: &str = "/var/lib/banner.package-test-aside";

/// Purges the package however the test ends, and gives back a state directory it set aside.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        sh_quiet("dpkg", &["--purge", "banner"]);
        if Path::new(STATE_ASIDE).exists() {
            let _ = std::fs::remove_dir_all(STATE);
            let _ = std::fs::rename(STATE_ASIDE, STATE);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_debian_package_builds_installs_upgrades_and_purges_clean() {
    assert!(
        sh_ok("dpkg-query", &["-W", "-f=${Status}", "banner"])
            .is_none_or(|s| !s.contains("installed")),
        "a banner package is installed on this machine: this test would replace it; \
         remove it (dpkg --purge banner) to run the test"
    );
    let _guard = Installed;
    if Path::new(STATE).exists() {
        std::fs::rename(STATE, STATE_ASIDE).expect("set the state directory aside");
    }

    // Built from this tree, checked by lintian (which setup installs).
    let out = Command::new("cargo")
        .args(["xtask", "package"])
        .current_dir(root())
        .output()
        .expect("cargo xtask package");
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("lintian: no error or warning"), "{text}");
    let deb = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .expect("the package's path");
    assert!(deb.extension().is_some_and(|e| e == "deb"), "{deb:?}");

    // What it holds, owned by root, with the right modes.
    let listing = sh("dpkg-deb", &["--contents", &deb.display().to_string()]);
    let mut files = BTreeSet::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.get(1), Some(&"root/root"), "{line}");
        let path = fields.last().unwrap().trim_start_matches('.');
        if !fields[0].starts_with('d') {
            files.insert((fields[0].to_string(), path.to_string()));
        }
    }
    let expected = [
        ("-rwxr-xr-x", "/usr/sbin/banner"),
        ("-rw-r--r--", "/etc/banner/banner.toml"),
        ("-rw-r--r--", "/lib/systemd/system/banner.service"),
        ("-rw-r--r--", "/usr/share/man/man8/banner.8.gz"),
        ("-rw-r--r--", "/usr/share/man/man5/banner.toml.5.gz"),
        (
            "-rw-r--r--",
            "/usr/share/bash-completion/completions/banner",
        ),
        ("-rw-r--r--", "/usr/share/zsh/vendor-completions/_banner"),
        (
            "-rw-r--r--",
            "/usr/share/fish/vendor_completions.d/banner.fish",
        ),
        ("-rw-r--r--", "/usr/share/doc/banner/copyright"),
        ("-rw-r--r--", "/usr/share/doc/banner/changelog.gz"),
        ("-rw-r--r--", "/usr/share/doc/banner/README.md.gz"),
        ("-rw-r--r--", "/usr/share/doc/banner/LICENSE-MIT"),
    ];
    let expected: BTreeSet<(String, String)> = expected
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(files, expected);

    // The control area: version from the binary, libc named, the config a conffile, the
    // maintainer scripts shell that parses.
    let version = sh(&banner_bin().display().to_string(), &["--version"]);
    let version = version.split_whitespace().nth(1).unwrap().to_string();
    let fields = sh(
        "dpkg-deb",
        &[
            "--field",
            &deb.display().to_string(),
            "Package",
            "Version",
            "Depends",
        ],
    );
    assert!(fields.contains("Package: banner"), "{fields}");
    assert!(fields.contains(&format!("Version: {version}")), "{fields}");
    assert!(fields.contains("libc6"), "{fields}");
    let control = tempfile::tempdir().unwrap();
    sh(
        "dpkg-deb",
        &[
            "--control",
            &deb.display().to_string(),
            &control.path().display().to_string(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(control.path().join("conffiles")).unwrap(),
        "/etc/banner/banner.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.path().join(script).display().to_string();
        sh("sh", &["-n", &path]);
    }

    // Installed: a banner that runs, reads its config, has its pages and completions.
    let install = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
    assert!(install.status.success(), "{}", said(&install));
    assert_eq!(
        sh("/usr/sbin/banner", &["--version"]).trim(),
        format!("banner {version}")
    );
    let check = Command::new("/usr/sbin/banner")
        .args(["check-config", "/etc/banner/banner.toml"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", said(&check));
    // As shipped, the file is the embedded default, every line commented.
    let dump = |args: &[&str]| sh("/usr/sbin/banner", args);
    assert_eq!(
        dump(&["check-config", "--dump", "/etc/banner/banner.toml"])
            .replace("/etc/banner/banner.toml", "<embedded default>"),
        dump(&["check-config", "--dump"]).replace("/etc/banner/banner.toml", "<embedded default>")
    );
    assert_eq!(sh("dpkg", &["--verify", "banner"]), "");
    for (page, wants) in [
        ("/usr/share/man/man8/banner.8.gz", "check-config"),
        ("/usr/share/man/man5/banner.toml.5.gz", "max_prefix_bans"),
    ] {
        let out = Command::new("man")
            .args(["--warnings", "-l", page])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "{page}: {}", said(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.trim().is_empty(), "{page}: {stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(wants),
            "{page}"
        );
    }
    assert!(sh("man", &["-w", "5", "banner.toml"]).contains("/usr/share/man/man5/"));
    sh(
        "bash",
        &["-n", "/usr/share/bash-completion/completions/banner"],
    );
    let verify = Command::new("systemd-analyze")
        .args(["verify", "/lib/systemd/system/banner.service"])
        .output()
        .unwrap();
    assert!(
        verify.status.success() && said(&verify).trim().is_empty(),
        "{}",
        said(&verify)
    );
    // Enabled on first install, as Debian's fail2ban is.
    let wants = Path::new("/etc/systemd/system/multi-user.target.wants/banner.service");
    assert!(wants.is_symlink(), "the unit is not enabled");

    // An upgrade (the same package again) keeps the admin's config and banner's state.
    let mine = "# mine\n[defaults]\nbantime = \"2h\"\n";
    let conf = "/etc/banner/banner.toml";
    let shipped = std::fs::read_to_string(conf).unwrap();
    std::fs::write(conf, format!("{shipped}{mine}")).unwrap();
    std::fs::create_dir_all(STATE).unwrap();
    std::fs::write(format!("{STATE}/bans.log"), "kept\n").unwrap();
    let again = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
    assert!(again.status.success(), "{}", said(&again));
    assert!(std::fs::read_to_string(conf).unwrap().ends_with(mine));
    assert_eq!(
        std::fs::read_to_string(format!("{STATE}/bans.log")).unwrap(),
        "kept\n"
    );

    // Purged: nothing of it is left.
    let purge = Command::new("dpkg")
        .args(["--purge", "banner"])
        .output()
        .unwrap();
    assert!(purge.status.success(), "{}", said(&purge));
    for (_, path) in &files {
        assert!(!Path::new(path).exists(), "{path} is left");
    }
    for left in [
        "/etc/banner",
        STATE,
        "/etc/systemd/system/multi-user.target.wants/banner.service",
        "/etc/systemd/system/banner.service",
        "/var/lib/systemd/deb-systemd-helper-enabled/banner.service.dsh-also",
        "/var/lib/systemd/deb-systemd-helper-masked/banner.service",
    ] {
        assert!(
            !Path::new(left).exists() && !Path::new(left).is_symlink(),
            "{left} is left"
        );
    }
    assert!(sh_ok("dpkg-query", &["-W", "-f=${Status}", "banner"])
        .is_none_or(|s| !s.contains("installed")));
}
