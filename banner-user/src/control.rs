//! The control protocol between the CLI and the daemon: one JSON request per line on a Unix
//! socket, one JSON response per line back. Mutating requests are obeyed only when the peer's
//! kernel-reported uid is 0.

use std::{
    io::{self, BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{
    backend::Counters,
    bans::{BanView, ManagerStats},
    clock::rfc3339,
    model::BlockType,
};

/// Longest request line the daemon reads (a `ban --file` of 100k+ entries fits).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Ban each target (one batch: all or nothing).
    Ban {
        targets: Vec<String>,
        /// "90s", "1h", "permanent"; None = the configured bantime.
        #[serde(default)]
        duration: Option<String>,
        #[serde(default)]
        blocktype: Option<BlockType>,
        #[serde(default)]
        jail: Option<String>,
        /// Leave out targets in the allowlist (with a note) instead of refusing the whole
        /// batch: blocklist feeds are full of them. Malformed targets still refuse it.
        #[serde(default)]
        skip_allowlisted: bool,
    },
    Unban {
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default)]
        all: bool,
        /// Only bans made by this jail.
        #[serde(default)]
        jail: Option<String>,
    },
    // Struct variants (not unit ones) so that unknown fields are refused here too.
    List {},
    Stats {},
    Ping {},
    Status {
        #[serde(default)]
        jail: Option<String>,
    },
    /// Re-read the configuration: keep the bans, add, change or drop jails.
    Reload {},
}

impl Request {
    /// Whether the request changes state (and so needs root).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Self::Ban { .. } | Self::Unban { .. } | Self::Reload {}
        )
    }
}

/// A ban as `list` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    /// Address or prefix as text.
    pub ip: String,
    pub jail: String,
    pub blocktype: BlockType,
    /// RFC 3339.
    pub banned_at: String,
    /// RFC 3339; null when permanent.
    pub expires_at: Option<String>,
    /// Packets stopped (dropped + tarpitted).
    pub hits: u64,
    pub dropped: u64,
    pub tarpitted: u64,
    /// RFC 3339 of the last packet stopped; null if none yet.
    pub last_seen: Option<String>,
    /// How many times this jail has banned this target.
    pub count: u32,
}

impl From<&BanView> for BanInfo {
    fn from(v: &BanView) -> Self {
        Self {
            ip: v.ban.target.to_string(),
            jail: v.ban.jail.clone(),
            blocktype: v.ban.blocktype,
            banned_at: rfc3339(v.ban.banned_at),
            expires_at: v.ban.expires_at.map(rfc3339),
            hits: v.hits.total(),
            dropped: v.hits.dropped,
            tarpitted: v.hits.tarpitted,
            last_seen: v.hits.last_seen.map(rfc3339),
            count: v.ban.count,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanResult {
    pub ip: String,
    /// "banned", "extended" or "unchanged".
    pub outcome: String,
    pub expires_at: Option<String>,
    /// Remarks, e.g. allowlisted addresses inside a banned prefix.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub backend: String,
    pub passed: u64,
    pub dropped: u64,
    pub tarpitted: u64,
    pub aborted: u64,
    pub allowlisted: u64,
    pub expired: u64,
    pub unparsed: u64,
    pub bans_active: u64,
    pub bans_total: u64,
    pub unbans_total: u64,
    pub expired_total: u64,
    pub refused_allowlisted: u64,
    pub refused_full: u64,
    pub backend_errors: u64,
}

impl Stats {
    pub fn new(backend: String, c: Counters, m: ManagerStats, active: usize) -> Self {
        Self {
            backend,
            passed: c.passed,
            dropped: c.dropped,
            tarpitted: c.tarpitted,
            aborted: c.aborted,
            allowlisted: c.allowlisted,
            expired: c.expired,
            unparsed: c.unparsed,
            bans_active: active as u64,
            bans_total: m.bans_total,
            unbans_total: m.unbans_total,
            expired_total: m.expired_total,
            refused_allowlisted: m.refused_allowlisted,
            refused_full: m.refused_full,
            backend_errors: m.backend_errors,
        }
    }
}

/// One jail as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailStatus {
    pub name: String,
    pub filter: String,
    pub bantime: String,
    pub findtime: String,
    pub maxretry: u32,
    pub blocktype: BlockType,
    /// Lines read by the jail's sources.
    pub lines: u64,
    /// Lines the filter recognised as failures.
    pub failure_lines: u64,
    /// Failures counted toward maxretry.
    pub failures: u64,
    pub bans: u64,
    /// Active bans made by this jail.
    pub banned: u64,
    /// Addresses with failures inside findtime.
    pub tracked: u64,
    pub evicted: u64,
    pub too_old: u64,
    pub folded: u64,
    /// Failures from allowlisted addresses (never counted).
    pub ignored: u64,
    pub bad_host: u64,
    pub truncated_lines: u64,
    pub invalid_utf8_lines: u64,
    pub source_errors: u64,
    pub sources: Vec<crate::source::positions::SourceStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Banned {
        results: Vec<BanResult>,
        /// Targets left out of the batch (request index, why): allowlisted lines of a file.
        #[serde(default)]
        skipped: Vec<(usize, String)>,
    },
    Unbanned {
        targets: Vec<String>,
        not_banned: Vec<String>,
        /// Targets not banned themselves but still blocked by a ban that covers them:
        /// (target, covering ban).
        #[serde(default)]
        still_covered: Vec<(String, String)>,
    },
    List {
        bans: Vec<BanInfo>,
    },
    Stats {
        stats: Stats,
    },
    Status {
        jails: Vec<JailStatus>,
        /// What enforces the bans, and where it does not (`NOT ENFORCED ...`).
        #[serde(default)]
        enforcement: String,
    },
    Reloaded {
        summary: String,
    },
    Pong,
    Error {
        message: String,
        /// For batch requests: which target (0-based) was refused.
        #[serde(default)]
        index: Option<usize>,
    },
}

impl Response {
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error {
            message: message.into(),
            index: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the banner daemon at {path}: {source} (is `banner daemon` running?)")]
    Connect { path: PathBuf, source: io::Error },
    #[error("permission denied on {path}: the control socket obeys root only (run banner as root, e.g. with sudo)")]
    NotRoot { path: PathBuf },
    #[error("talking to the daemon at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the daemon sent a reply this banner cannot read: {0}")]
    Decode(String),
}

/// Send one request and wait for its response.
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let io_err = |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(|source| {
        if source.kind() == io::ErrorKind::PermissionDenied {
            ClientError::NotRoot {
                path: socket.to_path_buf(),
            }
        } else {
            ClientError::Connect {
                path: socket.to_path_buf(),
                source,
            }
        }
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    let mut line = serde_json::to_vec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io_err)?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply).map_err(io_err)?;
    if reply.is_empty() {
        return Err(ClientError::Decode(
            "the daemon closed the connection".into(),
        ));
    }
    serde_json::from_str(&reply).map_err(|e| ClientError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let r = Request::Ban {
            skip_allowlisted: false,
            targets: vec!["198.18.0.1".into()],
            duration: Some("1h".into()),
            blocktype: Some(BlockType::Drop),
            jail: None,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"list","extra":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"selfdestruct"}"#).is_err());
    }

    #[test]
    fn only_ban_and_unban_need_root() {
        assert!(Request::Unban {
            targets: vec![],
            all: true,
            jail: None,
        }
        .mutates());
        assert!(Request::Reload {}.mutates());
        assert!(!Request::Status { jail: None }.mutates());
        assert!(!Request::List {}.mutates());
        assert!(!Request::Stats {}.mutates());
    }
}
