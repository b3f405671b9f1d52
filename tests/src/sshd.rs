//! A real OpenSSH server in the lab, and ssh clients from the peer.

use std::{
    net::IpAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{require_root, sh, wait_until, Lab};

/// A real OpenSSH server on a lab address, logging to a file (`sshd -E`: bare messages, no
/// timestamp or pid), stopped on drop.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    child: Child,
}

impl Sshd {
    pub fn start(listen: IpAddr) -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("hostkey");
        sh(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                key.to_str().expect("utf-8 path"),
            ],
        );
        // sshd insists on its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let log = dir.path().join("sshd.log");
        use std::os::unix::process::CommandExt as _;
        let child = Command::new("/usr/sbin/sshd")
            // Its own process group, so the per-connection children go with it on drop.
            .process_group(0)
            .args(["-D", "-f", "/dev/null", "-E"])
            .arg(&log)
            .arg("-h")
            .arg(&key)
            .args([
                "-o",
                &format!("ListenAddress={listen}"),
                "-o",
                "Port=22",
                "-o",
                "PasswordAuthentication=yes",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "UsePAM=no",
                "-o",
                "PidFile=none",
                "-o",
                "LogLevel=INFO",
                // A client banned mid-session leaves its sshd child waiting; bound the wait.
                "-o",
                "LoginGraceTime=10",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let s = Self { dir, log, child };
        assert!(
            wait_until(Duration::from_secs(10), || std::fs::read_to_string(&s.log)
                .is_ok_and(|t| t.contains("Server listening"))),
            "sshd did not start: {}",
            std::fs::read_to_string(&s.log).unwrap_or_default()
        );
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The whole group: the listener and every connection it forked. (By system call: the
        // kill command here has been seen to take a negative pid after a signal as "-1".)
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            if pgid > 1 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lab {
    /// Does sshd greet the peer? (A banned client gets no banner: dropped, or held by the
    /// tarpit.) Bounded to a few seconds.
    pub fn ssh_banner(&self, host: IpAddr) -> bool {
        let host = host.to_string();
        let out = self.exec(&["timeout", "4", "nc", "-w", "3", &host, "22"]);
        String::from_utf8_lossy(&out.stdout).starts_with("SSH-2.0")
    }

    /// One ssh login from the peer with a wrong password (sshpass), optionally from a given
    /// source address. Returns true if ssh got a "Permission denied" (the server answered).
    pub fn ssh_wrong_password(&self, user: &str, src: Option<IpAddr>, host: IpAddr) -> bool {
        let host = host.to_string();
        let src = src.map(|s| s.to_string());
        // Bounded: a ban can land in the middle of this very session, after which the server
        // goes silent; ssh must give up rather than wait forever.
        let mut args = vec![
            "timeout",
            "-k",
            "2",
            "10",
            "sshpass",
            "-p",
            "wrong-password",
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=2",
            "-o",
            "ServerAliveInterval=1",
            "-o",
            "ServerAliveCountMax=2",
            "-l",
            user,
        ];
        if let Some(s) = &src {
            args.extend(["-b", s.as_str()]);
        }
        args.extend([host.as_str(), "true"]);
        let out = self.exec(&args);
        String::from_utf8_lossy(&out.stderr).contains("Permission denied")
    }
}
