//! CrowdSec's Local API for one test: Debian's crowdsec run as LAPI only (`-no-cs`), with
//! the central API off, on its own port, database and configuration in a temporary
//! directory; stopped on drop. `cargo xtask setup` installs crowdsec offline.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{require_root, wait_until};

pub struct Lapi {
    pub dir: tempfile::TempDir,
    /// Where it listens (loopback, or a lab's host address for peers in its namespace).
    pub host: std::net::IpAddr,
    pub port: u16,
    /// Served over TLS with a certificate of a test CA (`ca_cert`).
    pub tls: bool,
    config: PathBuf,
    child: Option<Child>,
}

impl Lapi {
    /// Write the configuration, register a machine for cscli, and start LAPI on loopback.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1".parse().expect("an address"))
    }

    /// The same, listening on `host` (reachable from a lab's peer namespace when it is the
    /// lab's host address).
    pub fn start_on(host: std::net::IpAddr) -> Self {
        Self::start_with(host, false)
    }

    /// On loopback over https, its certificate signed by a CA of the test's own
    /// ([`Self::ca_cert`]).
    pub fn start_tls() -> Self {
        Self::start_with("127.0.0.1".parse().expect("an address"), true)
    }

    /// The PEM file of the CA that signed a TLS LAPI's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_with(host: std::net::IpAddr, tls: bool) -> Self {
        require_root();
        assert!(
            Command::new("crowdsec").arg("-version").output().is_ok(),
            "crowdsec is not installed: run `cargo xtask setup`"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let port = crate::free_port(host);
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        // Only what LAPI and cscli read: no acquisition, no central API, no metrics port.
        std::fs::write(
            dir.path().join("profiles.yaml"),
            "name: default_ip_remediation\nfilters:\n - Alert.Remediation == true && Alert.GetScope() == \"Ip\"\ndecisions:\n - type: ban\n   duration: 4h\non_success: break\n",
        )
        .expect("profiles");
        std::fs::write(dir.path().join("simulation.yaml"), "simulation: off\n").expect("sim");
        let config = dir.path().join("config.yaml");
        let (server_tls, skip_verify) = if tls {
            make_certificates(dir.path(), host);
            (
                format!(
                    "    tls:\n      cert_file: {d}/server.pem\n      key_file: {d}/server.key\n"
                ),
                // cscli's own client only: the test trusts its own LAPI.
                "true",
            )
        } else {
            (String::new(), "false")
        };
        std::fs::write(
            &config,
            format!(
                "common:\n  daemonize: false\n  log_media: stdout\n  log_level: info\n  working_dir: .\n\
                 config_paths:\n  config_dir: {d}/\n  data_dir: {d}/data/\n  simulation_path: {d}/simulation.yaml\n  hub_dir: {d}/hub/\n  index_path: {d}/hub/.index.json\n  notification_dir: {d}/notifications/\n  plugin_dir: /usr/lib/crowdsec/plugins/\n\
                 crowdsec_service:\n  acquisition_path: {d}/acquis.yaml\n\
                 cscli:\n  output: human\n\
                 db_config:\n  log_level: info\n  type: sqlite\n  use_wal: true\n  max_open_conns: 1\n  db_path: {d}/crowdsec.db\n  flush:\n    max_items: 5000\n    max_age: 7d\n\
                 api:\n  client:\n    insecure_skip_verify: {skip_verify}\n    credentials_path: {d}/local_api_credentials.yaml\n  server:\n    log_level: info\n    listen_uri: {host}:{port}\n    profiles_path: {d}/profiles.yaml\n{server_tls}    trusted_ips:\n      - 127.0.0.1\n      - {host}\n\
                 prometheus:\n  enabled: false\n"
            ),
        )
        .expect("config");
        let mut lapi = Self {
            dir,
            host,
            port,
            tls,
            config,
            child: None,
        };
        lapi.cscli(&[
            "machines",
            "add",
            "banner-test",
            "--auto",
            "--force",
            "-f",
            &format!("{d}/local_api_credentials.yaml"),
        ]);
        if tls {
            // cscli talks to LAPI by the URL it wrote: make it the https one.
            let creds = dir_file(&lapi, "local_api_credentials.yaml");
            let text = std::fs::read_to_string(&creds).expect("credentials");
            std::fs::write(&creds, text.replace("http://", "https://")).expect("credentials");
        }
        lapi.spawn();
        lapi
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// (Re)start the LAPI process on the same database, and wait until it answers.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "LAPI already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("lapi.log"))
            .expect("LAPI log");
        let child = Command::new("crowdsec")
            .arg("-c")
            .arg(&self.config)
            .arg("-no-cs")
            .current_dir(self.dir.path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start crowdsec");
        self.child = Some(child);
        let (host, port) = (self.host, self.port);
        let up = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect((host, port)).is_ok()
        });
        assert!(up, "LAPI did not listen in 30 s:\n{}", self.log_text());
    }

    /// Stop LAPI (its database stays for `spawn`).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lapi.log")).unwrap_or_default()
    }

    /// `cscli -c CONFIG ARGS`: its output, whether it succeeded or not.
    pub fn try_cscli(&self, args: &[&str]) -> std::process::Output {
        Command::new("cscli")
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run cscli")
    }

    /// `cscli -c CONFIG ARGS`, insisting it succeeds; its stdout.
    pub fn cscli(&self, args: &[&str]) -> String {
        let out = self.try_cscli(args);
        assert!(
            out.status.success(),
            "cscli {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new bouncer's key.
    pub fn bouncer_key(&self, name: &str) -> String {
        self.cscli(&["bouncers", "add", name, "-o", "raw"])
            .trim()
            .to_string()
    }

    /// The `[crowdsec]` section of a banner config pulling from this LAPI every second.
    pub fn banner_section(&self, key: &str) -> String {
        format!(
            "\n[crowdsec]\nlapi_url = \"{}\"\napi_key = \"{key}\"\nupdate_frequency = \"1s\"\n",
            self.url()
        )
    }
}

fn dir_file(lapi: &Lapi, name: &str) -> PathBuf {
    lapi.dir.path().join(name)
}

/// A CA (`ca.pem`) and a server certificate for `host` signed by it (`server.pem`,
/// `server.key`) in `dir`, by openssl.
fn make_certificates(dir: &std::path::Path, host: std::net::IpAddr) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=banner test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=banner test LAPI",
    ]);
    std::fs::write(dir.join("san.ext"), format!("subjectAltName=IP:{host}\n")).expect("san");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

impl Drop for Lapi {
    fn drop(&mut self) {
        self.stop();
    }
}
