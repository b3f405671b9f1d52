//! `banner import fail2ban` on this machine's own fail2ban setup (Debian's package, which
//! `cargo xtask setup` installs): what it writes is a configuration `check-config` accepts.

use std::process::Command;

#[test]
fn the_installed_fail2ban_setup_imports_into_a_config_that_checks_out() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("banner.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_banner"))
        .args(["import", "fail2ban", "/etc/fail2ban", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("[jails.sshd]"), "{text}");
    // What has no equivalent is said on stderr and in the file.
    let stderr = String::from_utf8_lossy(&run.stderr);
    for line in stderr.lines() {
        let note = line.strip_prefix("banner: not carried over: ").expect(line);
        assert!(text.contains(note), "{note} missing from the file");
    }
    let check = Command::new(env!("CARGO_BIN_EXE_banner"))
        .arg("check-config")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_banner"))
        .args(["import", "fail2ban"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a fail2ban configuration directory"));
}
