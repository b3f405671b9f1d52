//! The CrowdSec link: banner as a bouncer of CrowdSec's Local API (LAPI). A thread of its
//! own ([`lapi`]) pulls the decision stream and hands each answer to the core, which holds
//! the decisions ([`holdings`]) and bans and lifts through the ban manager like any other
//! origin: the allowlist and the host's own addresses still win, and the bans are saved and
//! restored with the others, so a restart or a LAPI outage leaves no gap.

pub mod decisions;
pub mod holdings;
pub mod lapi;
pub mod push;

use std::{
    path::PathBuf,
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

pub use self::decisions::{Remedy, Rules, Stream};
use crate::model::BlockType;

/// `[crowdsec]`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrowdSecConfig {
    /// LAPI's base URL (`http://127.0.0.1:8080`), without a trailing slash.
    pub lapi_url: String,
    /// The bouncer's key (`cscli bouncers add banner`).
    pub api_key: String,
    /// Take LAPI's decisions.
    pub pull: bool,
    /// How often the stream is asked for news.
    pub update_frequency: Duration,
    pub rules: Rules,
    /// How a `ban` decision is enforced (default: `[defaults] blocktype`).
    pub ban_blocktype: BlockType,
    /// How a `captcha` decision is enforced when taken.
    pub captcha_blocktype: BlockType,
    /// Push the bans banner's jails decide to LAPI, as a watcher.
    pub push: bool,
    /// The watcher's login: given here, or read from `credentials_file` (cscli's
    /// local_api_credentials.yaml) when the daemon starts.
    pub login: Option<String>,
    pub password: Option<String>,
    pub credentials_file: Option<PathBuf>,
    /// PEM file of the CA LAPI's certificate chains to (https; default: the Mozilla roots).
    pub ca_cert: Option<PathBuf>,
    /// PEM certificate and key for LAPI's client-certificate authentication.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl CrowdSecConfig {
    /// The watcher's login and password, from the configuration or its credentials file.
    pub fn credentials(&self) -> Result<push::Credentials, String> {
        if let (Some(login), Some(password)) = (&self.login, &self.password) {
            return Ok(push::Credentials {
                login: login.clone(),
                password: password.clone(),
            });
        }
        let Some(path) = &self.credentials_file else {
            return Err("[crowdsec] push needs login and password, or credentials_file".into());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("[crowdsec] credentials_file {}: {e}", path.display()))?;
        // cscli writes `url: ...`, `login: ...`, `password: ...`, one a line.
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().trim_matches(['"', '\'']).to_string())
                .filter(|v| !v.is_empty())
        };
        match (value("login"), value("password")) {
            (Some(login), Some(password)) => Ok(push::Credentials { login, password }),
            _ => Err(format!(
                "[crowdsec] credentials_file {} holds no login and password",
                path.display()
            )),
        }
    }

    /// The TLS settings of every request to LAPI: its CA and our client certificate, read from
    /// their files (at start, so a bad file stops banner with a clear error).
    pub fn tls(&self) -> Result<ureq::tls::TlsConfig, String> {
        use ureq::tls::{parse_pem, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| format!("[crowdsec] {what} {}: {e}", path.display()))
        };
        let certs = |path: &PathBuf, what: &str| -> Result<Vec<_>, String> {
            let pem = read(path, what)?;
            let mut out = Vec::new();
            for item in parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => out.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(format!("[crowdsec] {what} {}: {e}", path.display())),
                }
            }
            if out.is_empty() {
                return Err(format!(
                    "[crowdsec] {what} {} holds no PEM certificate",
                    path.display()
                ));
            }
            Ok(out)
        };
        let mut tls = TlsConfig::builder();
        if let Some(ca) = &self.ca_cert {
            tls = tls.root_certs(RootCerts::new_with_certs(&certs(ca, "ca_cert")?));
        }
        if let Some((cert, key)) = &self.client_cert {
            let chain = certs(cert, "cert")?;
            let key = PrivateKey::from_pem(&read(key, "key")?)
                .map_err(|e| format!("[crowdsec] key {}: {e}", key.display()))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        Ok(tls.build())
    }

    pub fn blocktype(&self, remedy: Remedy) -> BlockType {
        match remedy {
            Remedy::Ban => self.ban_blocktype,
            Remedy::Captcha => self.captcha_blocktype,
        }
    }
}

/// What the link thread tells the core.
#[derive(Debug)]
pub enum News {
    /// An answer of the stream; `startup` when it is LAPI's whole set.
    Pulled { stream: Stream, startup: bool },
    /// LAPI could not be asked, or its answer was refused whole.
    Down { why: String },
}

/// The link as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub lapi_url: String,
    /// `up`, `down` or `starting`.
    pub state: String,
    /// Why it is down.
    #[serde(default)]
    pub why: Option<String>,
    /// Unix seconds of the last answer taken.
    #[serde(default)]
    pub last_pull: Option<u64>,
    /// Decisions held now.
    pub decisions: u64,
    /// Answers taken, and decisions refused in them (malformed, too broad, not taken).
    pub pulls: u64,
    pub refused: u64,
    /// Decisions not enforced because the allowlist covers their target.
    pub allowlisted: u64,
}

impl LinkStatus {
    pub fn new(lapi_url: &str) -> Self {
        Self {
            lapi_url: lapi_url.to_string(),
            state: "starting".into(),
            why: None,
            last_pull: None,
            decisions: 0,
            pulls: 0,
            refused: 0,
            allowlisted: 0,
        }
    }

    pub fn pulled(&mut self, now: SystemTime) {
        self.state = "up".into();
        self.why = None;
        self.last_pull = Some(crate::clock::unix_secs(now));
        self.pulls += 1;
    }
}
