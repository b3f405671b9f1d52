//! banner as a systemd service: the unit file passes `systemd-analyze verify`, and the daemon
//! speaks the notify protocol (READY once it enforces, WATCHDOG while its core answers,
//! RELOADING/READY around a SIGHUP, STOPPING at the end).

use std::{os::unix::net::UnixDatagram, path::Path, process::Command, time::Duration};

use tests::{banner_bin, sh, Daemon, Lab};

#[test]
fn the_unit_file_verifies() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/banner.service");
    let text = std::fs::read_to_string(&unit).expect("dist/banner.service");
    assert!(text.contains("Type=notify") && text.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    // As installed, but pointing at the binary just built (verify checks that it exists).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("banner.service");
    std::fs::write(
        &copy,
        text.replace("/usr/sbin/banner", &banner_bin().display().to_string()),
    )
    .unwrap();
    // The man pages its Documentation= names exist once the package is installed (the
    // package test verifies with them); not here.
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_daemon_speaks_the_notify_protocol() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let next = || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification in 15 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut d = Daemon::configured(None, &[&lab.host_if], "", "");
    d.envs
        .push(("NOTIFY_SOCKET".into(), path.display().to_string()));
    d.envs.push(("WATCHDOG_USEC".into(), "400000".into()));
    d.spawn();
    assert_eq!(next(), "READY=1");
    // The program is on the interface by the time READY is said.
    assert!(sh("ip", &["link", "show", &lab.host_if]).contains("xdp"));
    assert_eq!(next(), "WATCHDOG=1");
    assert_eq!(next(), "WATCHDOG=1");
    let pid = d.pid().unwrap().to_string();
    sh("kill", &["-HUP", &pid]);
    let mut seen = Vec::new();
    while seen.len() < 8 && !seen.iter().any(|s| s == "READY=1") {
        seen.push(next());
    }
    let reloading = seen.iter().position(|s| s == "RELOADING=1");
    let ready = seen.iter().position(|s| s == "READY=1");
    assert!(
        matches!((reloading, ready), (Some(a), Some(b)) if a < b),
        "{seen:?}"
    );
    d.stop();
    let mut last = Vec::new();
    while let Ok(n) = {
        let mut buf = [0u8; 256];
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        socket
            .recv(&mut buf)
            .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    } {
        last.push(n);
        if last.len() > 20 {
            break;
        }
    }
    assert!(last.iter().any(|s| s == "STOPPING=1"), "{last:?}");
}

/// The man page and completions come from the argument definitions: every subcommand is in
/// them, the page renders with man(1), the bash completion parses.
#[test]
fn the_man_page_and_completions_are_generated_from_the_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(banner_bin())
        .arg("generate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("banner.8"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man");
    let page = String::from_utf8_lossy(&page.stdout);
    let bash = std::fs::read_to_string(dir.path().join("banner.bash")).unwrap();
    let fish = std::fs::read_to_string(dir.path().join("banner.fish")).unwrap();
    let zsh = std::fs::read_to_string(dir.path().join("_banner")).unwrap();
    for sub in [
        "ban",
        "unban",
        "list",
        "status",
        "check-config",
        "test-filter",
        "ping",
    ] {
        assert!(page.contains(sub), "{sub} not in the man page:\n{page}");
        assert!(
            bash.contains(sub) && fish.contains(sub) && zsh.contains(sub),
            "{sub}"
        );
    }
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(dir.path().join("banner.bash"))
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
}
