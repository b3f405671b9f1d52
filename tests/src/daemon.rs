//! A banner daemon per test, with its own socket, state and bpffs directories.

use std::{
    path::PathBuf,
    process::{Child, Command, Output},
    thread,
    time::{Duration, Instant},
};

use crate::{banner_bin, require_root, sh, wait_until};

/// A banner daemon for one test, with its own socket, state directory and bpffs directory.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub bpffs_dir: PathBuf,
    /// The namespace the daemon runs in (None: the test's own).
    pub ns: Option<String>,
    /// More arguments of `banner daemon`, and environment, for the next [`Self::spawn`].
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Write a config guarding `ifaces` with `extra` TOML appended (sections [banner] and
    /// [defaults] are open for more keys via `banner_extra`/`defaults_extra`), start it, and
    /// wait until it answers.
    pub fn start(ifaces: &[&str], banner_extra: &str, defaults_extra: &str) -> Self {
        Self::start_in(None, ifaces, banner_extra, defaults_extra)
    }

    /// Start in a namespace (a lab's isolated host side).
    pub fn start_in(
        ns: Option<&str>,
        ifaces: &[&str],
        banner_extra: &str,
        defaults_extra: &str,
    ) -> Self {
        let mut d = Self::configured(ns, ifaces, banner_extra, defaults_extra);
        d.spawn();
        d
    }

    /// Written and ready, not yet started: set `args` or `envs`, then [`Self::spawn`].
    pub fn configured(
        ns: Option<&str>,
        ifaces: &[&str],
        banner_extra: &str,
        defaults_extra: &str,
    ) -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        let tag = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().replace('.', ""))
            .unwrap_or_default();
        let bpffs_dir = PathBuf::from(format!("/sys/fs/bpf/banner-test-{tag}"));
        let socket = dir.path().join("banner.sock");
        let config = dir.path().join("banner.toml");
        let ifaces: Vec<String> = ifaces.iter().map(|i| format!("\"{i}\"")).collect();
        // A config layers over the embedded default: keep the test hermetic by turning off
        // the default's jails (which read the host's own logs) unless the test sets them up.
        let mut off = String::new();
        for jail in ["sshd", "recidive"] {
            if !defaults_extra.contains(&format!("[jails.{jail}]")) {
                off.push_str(&format!("\n[jails.{jail}]\nenabled = false\n"));
            }
        }
        std::fs::write(
            &config,
            format!(
                "[banner]\ninterfaces = [{}]\nsocket = \"{}\"\nstate_dir = \"{}\"\n{}{banner_extra}\n\n[defaults]\nignore_attached_subnets = false\n{defaults_extra}\n{off}",
                ifaces.join(", "),
                socket.display(),
                dir.path().join("state").display(),
                if banner_extra.contains("bpffs_dir") {
                    String::new()
                } else {
                    format!("bpffs_dir = \"{}\"\n", bpffs_dir.display())
                },
            ),
        )
        .expect("write config");
        let d = Self {
            log: dir.path().join("daemon.log"),
            dir,
            config,
            socket,
            bpffs_dir,
            ns: ns.map(str::to_string),
            args: Vec::new(),
            envs: Vec::new(),
            child: None,
        };
        d
    }

    /// (Re)start the daemon process on the same config and state.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open daemon log");
        let mut cmd = match &self.ns {
            // `ip netns exec` execs the program: the child's pid is banner's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(banner_bin());
                c
            }
            None => Command::new(banner_bin()),
        };
        let child = cmd
            .args(["daemon", "--config"])
            .arg(&self.config)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn banner daemon");
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(15), || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "banner daemon exited early ({status}):\n{}",
                        self.log_text()
                    );
                }
            }
            self.cli(&["stats"]).status.success()
        });
        assert!(
            ready,
            "banner daemon did not answer in 15 s:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `banner --socket S ARGS`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(banner_bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run banner")
    }

    /// Run the CLI and insist it succeeds; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "banner {} failed: {}{}\n--- daemon log ---\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let text = self.cli_ok(args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("banner {}: not JSON ({e}): {text}", args.join(" ")))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the controller dies without cleaning anything up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("daemon not running");
        sh("kill", &["-TERM", &c.id().to_string()]);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = c.kill();
                panic!("daemon ignored SIGTERM for 15 s:\n{}", self.log_text());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // Removing the pins (link included) detaches the program and frees the maps.
        let _ = std::fs::remove_dir_all(&self.bpffs_dir);
    }
}
