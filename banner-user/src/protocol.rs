//! The control protocol between the CLI and the daemon: one JSON request per line on a Unix
//! socket, one JSON response per line back, each carrying the protocol's version. Mutating
//! requests are obeyed only when the peer's kernel-reported uid is 0.
//!
//! This module is a leaf: it names addresses, durations and times by their types and knows
//! nothing of the daemon, the ban manager or the backends. The daemon's adapter
//! (`daemon::adapter`) turns requests into the core's commands and its results into
//! responses; the CLI renders responses. Neither side parses text the other produced.

use std::{
    io::{self, BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

use crate::{addr::IpPrefix, duration::BanLength, model::BlockType};

/// The version this banner speaks. A request or reply of another version is refused with
/// both versions named (version 1, before this field existed, sent none).
pub const PROTOCOL: u32 = 2;

/// Longest request line the daemon reads (a `ban --file` of 100k+ entries fits).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Ban each target (one batch: all or nothing).
    Ban {
        targets: Vec<IpPrefix>,
        /// None = the jail's (or the configured) bantime.
        #[serde(default)]
        duration: Option<BanLength>,
        #[serde(default)]
        blocktype: Option<BlockType>,
        #[serde(default)]
        jail: Option<String>,
        /// Leave out targets in the allowlist (with a note) instead of refusing the whole
        /// batch: blocklist feeds are full of them.
        #[serde(default)]
        skip_allowlisted: bool,
    },
    Unban {
        #[serde(default)]
        targets: Vec<IpPrefix>,
        #[serde(default)]
        all: bool,
        /// Only bans made by this jail.
        #[serde(default)]
        jail: Option<String>,
    },
    // Struct variants (not unit ones) so that unknown fields are refused here too.
    List {
        /// Reply [`Response::Listing`] and then one [`BanInfo`] line per ban, written as
        /// they are encoded (a million bans are 260 MB of JSON: one reply line of them
        /// took 20 s and 2 GB to read); without it, one [`Response::List`].
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stream: bool,
    },
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
    pub ip: IpPrefix,
    pub jail: String,
    pub blocktype: BlockType,
    #[serde(with = "time")]
    pub banned_at: SystemTime,
    /// None when permanent.
    #[serde(with = "maybe_time")]
    pub expires_at: Option<SystemTime>,
    /// Packets stopped (dropped + tarpitted).
    pub hits: u64,
    pub dropped: u64,
    pub tarpitted: u64,
    /// The last packet stopped; None if none yet.
    #[serde(with = "maybe_time")]
    pub last_seen: Option<SystemTime>,
    /// How many times this jail has banned this target.
    pub count: u32,
    /// The ports the ban covers (`tcp:22,1000-2000 udp:53`); absent: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    /// A dry run's ban: what banner would do, not enforced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// What a ban request did to one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Banned,
    /// Banned already, now for longer (or another block type).
    Extended,
    /// Banned already at least as long: nothing changed.
    Unchanged,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanResult {
    pub ip: IpPrefix,
    pub outcome: Outcome,
    #[serde(with = "maybe_time")]
    pub expires_at: Option<SystemTime>,
    /// Remarks, e.g. allowlisted addresses inside a banned prefix.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub backend: String,
    /// The backend's packet counters by name (`passed`, `dropped`, ...: the kernel
    /// contract's list), side by side with the rest in JSON.
    #[serde(flatten)]
    pub packets: std::collections::BTreeMap<String, u64>,
    pub bans_active: u64,
    pub bans_total: u64,
    pub unbans_total: u64,
    pub expired_total: u64,
    pub refused_allowlisted: u64,
    pub refused_full: u64,
    pub backend_errors: u64,
}

/// One log source as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub jail: String,
    /// "file" or "journal".
    pub kind: String,
    /// The path, or the journal matches.
    pub name: String,
    /// "following", "waiting for the file to appear", or the last error.
    pub state: String,
    pub lines: u64,
    /// Files: bytes read so far and the file's size.
    pub offset: Option<u64>,
    pub size: Option<u64>,
    /// Journal: the cursor of the last entry read.
    pub cursor: Option<String>,
}

/// One jail as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailStatus {
    pub name: String,
    pub filter: String,
    pub bantime: BanLength,
    #[serde(with = "span")]
    pub findtime: Duration,
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
    pub sources: Vec<SourceInfo>,
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
        targets: Vec<IpPrefix>,
        not_banned: Vec<IpPrefix>,
        /// Targets not banned themselves but still blocked by a ban that covers them:
        /// (target, covering ban).
        #[serde(default)]
        still_covered: Vec<(IpPrefix, IpPrefix)>,
    },
    List {
        bans: Vec<BanInfo>,
    },
    /// The head of a streamed list: `count` lines follow, each one [`BanInfo`] as JSON.
    Listing {
        count: u64,
        /// A dry run: the bans are what banner would do.
        #[serde(default)]
        dry_run: bool,
    },
    Stats {
        stats: Stats,
    },
    Status {
        jails: Vec<JailStatus>,
        /// What enforces the bans, and where it does not (`NOT ENFORCED ...`).
        #[serde(default)]
        enforcement: String,
        /// The CrowdSec link, when configured.
        #[serde(default)]
        crowdsec: Option<crate::crowdsec::LinkStatus>,
        /// The syslog receiver, when configured.
        #[serde(default)]
        syslog: Option<crate::source::syslog::SyslogStatus>,
        /// A dry run: nothing is enforced, the bans are what banner would do.
        #[serde(default)]
        dry_run: bool,
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

/// A line that is not a message of this protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("this daemon speaks protocol {PROTOCOL} and the client protocol {0}: use the `banner` of the same release as the daemon")]
    ClientVersion(u32),
    #[error("the daemon speaks protocol {0} and this banner protocol {PROTOCOL}: use the `banner` of the same release as the daemon{1}")]
    DaemonVersion(u32, String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the daemon sent a reply this banner cannot read: {0}")]
    BadReply(String),
}

/// `value` as one JSON object with the protocol version beside its fields.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    if let Some(map) = json.as_object_mut() {
        map.insert("protocol".into(), PROTOCOL.into());
    }
    let mut line = json.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The version a line claims (1 when it names none) and the line without it.
fn version_of(line: &[u8]) -> Result<(u32, serde_json::Value), String> {
    let mut json: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let map = json
        .as_object_mut()
        .ok_or_else(|| "expected a JSON object".to_string())?;
    let version = match map.remove("protocol") {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("`protocol` must be a version number, not {v}"))?,
    };
    Ok((version, json))
}

/// A request line as the CLI sends it.
pub fn encode_request(request: &Request) -> Vec<u8> {
    encode(request)
}

/// A reply line as the daemon sends it.
pub fn encode_response(response: &Response) -> Vec<u8> {
    encode(response)
}

/// Read a request line (the daemon's side).
pub fn decode_request(line: &[u8]) -> Result<Request, WireError> {
    let (version, json) = version_of(line).map_err(WireError::BadRequest)?;
    if version != PROTOCOL {
        return Err(WireError::ClientVersion(version));
    }
    serde_json::from_value(json).map_err(|e| WireError::BadRequest(e.to_string()))
}

/// Read a reply line (the CLI's side).
pub fn decode_response(line: &[u8]) -> Result<Response, WireError> {
    let (version, json) = version_of(line).map_err(WireError::BadReply)?;
    if version != PROTOCOL {
        // An older daemon refuses the newer request with an error it can still word.
        let said = json
            .get("message")
            .and_then(|m| m.as_str())
            .map(|m| format!(" (it said: {m})"))
            .unwrap_or_default();
        return Err(WireError::DaemonVersion(version, said));
    }
    serde_json::from_value(json).map_err(|e| WireError::BadReply(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the banner daemon at {path}: {source} (is `banner daemon` running?)")]
    Connect { path: PathBuf, source: io::Error },
    #[error("permission denied on {path}: the control socket obeys root only (run banner as root, e.g. with sudo)")]
    NotRoot { path: PathBuf },
    #[error("talking to the daemon at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Wire(#[from] WireError),
    /// The daemon answered with an error.
    #[error("{0}")]
    Refused(String),
}

/// Send one request and wait for its response.
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let mut reader = BufReader::new(connect(socket, request, timeout)?);
    read_reply(&mut reader, socket)
}

/// The error for I/O on the socket at `socket`.
fn io_error(socket: &Path) -> impl Fn(io::Error) -> ClientError + Copy + '_ {
    move |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    }
}

/// Read one reply line.
fn read_reply(reader: &mut impl io::BufRead, socket: &Path) -> Result<Response, ClientError> {
    let mut reply = String::new();
    reader.read_line(&mut reply).map_err(io_error(socket))?;
    if reply.is_empty() {
        return Err(WireError::BadReply("the daemon closed the connection".into()).into());
    }
    Ok(decode_response(reply.as_bytes())?)
}

/// Connect and send `request`.
fn connect(socket: &Path, request: &Request, timeout: Duration) -> Result<UnixStream, ClientError> {
    let io_err = io_error(socket);
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
    stream.write_all(&encode_request(request)).map_err(io_err)?;
    Ok(stream)
}

/// Ask for the list of bans and hand each to `each` as it arrives (see
/// [`Request::List`]); returns how many came and whether they are a dry run's.
pub fn list(
    socket: &Path,
    timeout: Duration,
    mut each: impl FnMut(BanInfo) -> io::Result<()>,
) -> Result<(u64, bool), ClientError> {
    let io_err = io_error(socket);
    let mut reader = BufReader::with_capacity(
        1 << 16,
        connect(socket, &Request::List { stream: true }, timeout)?,
    );
    let (count, dry_run) = match read_reply(&mut reader, socket)? {
        Response::Listing { count, dry_run } => (count, dry_run),
        Response::Error { message, .. } => return Err(ClientError::Refused(message)),
        other => {
            return Err(WireError::BadReply(format!("expected a listing, got {other:?}")).into())
        }
    };
    let mut line = String::new();
    for n in 0..count {
        line.clear();
        if reader.read_line(&mut line).map_err(io_err)? == 0 {
            return Err(WireError::BadReply(format!(
                "the daemon closed the connection after {n} of {count} bans"
            ))
            .into());
        }
        let ban = serde_json::from_str(&line)
            .map_err(|e| WireError::BadReply(format!("ban {} of {count}: {e}", n + 1)))?;
        each(ban).map_err(io_err)?;
    }
    Ok((count, dry_run))
}

/// Times on the wire: RFC 3339 in UTC, whole seconds (what `list --json` always printed);
/// a fraction read is dropped, so what is read is what would be written.
mod time {
    use std::time::{Duration, SystemTime};

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&crate::clock::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        // The form the daemon writes, read by hand; any other RFC 3339 form by chrono.
        let secs = match crate::clock::parse_rfc3339_utc(&text) {
            Some(secs) => secs,
            None => chrono::DateTime::parse_from_rfc3339(&text)
                .map_err(|e| {
                    serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}"))
                })?
                .timestamp(),
        };
        let off = Duration::from_secs(secs.unsigned_abs());
        Ok(if secs >= 0 {
            SystemTime::UNIX_EPOCH + off
        } else {
            SystemTime::UNIX_EPOCH - off
        })
    }
}

mod maybe_time {
    use std::time::SystemTime;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::time::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrapped(#[serde(with = "super::time")] SystemTime);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

/// Windows on the wire: `10m`, `1h30m` (what `status --json` always printed).
mod span {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&crate::duration::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::duration::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daemon stand-in on a socket in a fresh directory: it reads one request and writes
    /// `reply` (lines as given); returns the socket's path and the request it read.
    fn daemon_writing(
        reply: Vec<u8>,
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<Request>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("banner.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let served = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            reader.get_mut().write_all(&reply).unwrap();
            decode_request(line.as_bytes()).unwrap()
        });
        (dir, path, served)
    }

    fn info(ip: &str) -> BanInfo {
        BanInfo {
            ip: ip.parse().unwrap(),
            jail: "sshd".into(),
            blocktype: BlockType::Tarpit,
            banned_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            expires_at: None,
            hits: 2,
            dropped: 0,
            tarpitted: 2,
            last_seen: None,
            count: 1,
            ports: None,
            dry_run: false,
        }
    }

    #[test]
    fn a_streamed_list_hands_over_each_ban_and_its_count() {
        let bans = [info("198.18.0.1"), info("2001:db8::/64")];
        let mut reply = encode_response(&Response::Listing {
            count: 2,
            dry_run: true,
        });
        for b in &bans {
            reply.extend(serde_json::to_vec(b).unwrap());
            reply.push(b'\n');
        }
        let (_dir, path, served) = daemon_writing(reply);
        let mut got = Vec::new();
        let head = list(&path, Duration::from_secs(5), |b| {
            got.push(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(head, (2, true));
        assert_eq!(got, bans);
        assert_eq!(served.join().unwrap(), Request::List { stream: true });
    }

    #[test]
    fn a_streamed_list_cut_short_or_refused_says_so() {
        let mut reply = encode_response(&Response::Listing {
            count: 3,
            dry_run: false,
        });
        reply.extend(serde_json::to_vec(&info("198.18.0.1")).unwrap());
        reply.push(b'\n');
        let (_dir, path, _served) = daemon_writing(reply);
        let err = list(&path, Duration::from_secs(5), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("after 1 of 3 bans"), "{err}");

        let mut reply = encode_response(&Response::Listing {
            count: 1,
            dry_run: false,
        });
        reply.extend(b"{\"ip\":\"no address\"}\n");
        let (_dir, path, _served) = daemon_writing(reply);
        let err = list(&path, Duration::from_secs(5), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("ban 1 of 1"), "{err}");

        let reply = encode_response(&Response::error("the daemon is shutting down"));
        let (_dir, path, _served) = daemon_writing(reply);
        let err = list(&path, Duration::from_secs(5), |_| Ok(())).unwrap_err();
        assert_eq!(err.to_string(), "the daemon is shutting down");
    }

    #[test]
    fn a_list_request_without_stream_is_the_old_one() {
        assert_eq!(
            decode_request(br#"{"protocol":2,"cmd":"list"}"#).unwrap(),
            Request::List { stream: false }
        );
        let line = encode_request(&Request::List { stream: false });
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&line).unwrap(),
            serde_json::json!({"protocol": 2, "cmd": "list"})
        );
    }

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let r = Request::Ban {
            skip_allowlisted: false,
            targets: vec![p("198.18.0.1"), p("2001:db8::/64")],
            duration: Some(BanLength::parse("1h").unwrap()),
            blocktype: Some(BlockType::Drop),
            jail: None,
        };
        assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
        let bad = |s: &str| decode_request(s.as_bytes()).unwrap_err();
        assert!(matches!(
            bad(r#"{"protocol":2,"cmd":"list","extra":1}"#),
            WireError::BadRequest(_)
        ));
        assert!(matches!(
            bad(r#"{"protocol":2,"cmd":"selfdestruct"}"#),
            WireError::BadRequest(_)
        ));
    }

    #[test]
    fn a_malformed_target_is_refused_with_its_text() {
        let e = decode_request(br#"{"protocol":2,"cmd":"ban","targets":["198.18.0.1","bogus"]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("`bogus`"), "{e}");
        let e = decode_request(br#"{"protocol":2,"cmd":"ban","targets":[],"duration":"-5m"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
    }

    #[test]
    fn another_version_is_named_on_both_sides() {
        // A version-1 CLI sent no `protocol` field.
        let e = decode_request(br#"{"cmd":"list"}"#).unwrap_err();
        assert_eq!(e, WireError::ClientVersion(1));
        assert!(e.to_string().contains("speaks protocol 2"), "{e}");
        let e = decode_request(br#"{"protocol":3,"cmd":"list"}"#).unwrap_err();
        assert_eq!(e, WireError::ClientVersion(3));
        // A version-1 daemon refuses the field it does not know, in its own words.
        let e = decode_response(
            br#"{"reply":"error","message":"bad request: unknown field `protocol`"}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("the daemon speaks protocol 1")
                && e.to_string().contains("unknown field"),
            "{e}"
        );
    }

    #[test]
    fn replies_carry_typed_times_and_outcomes() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let r = Response::Banned {
            results: vec![BanResult {
                ip: p("198.18.0.0/24"),
                outcome: Outcome::Extended,
                expires_at: Some(at),
                notes: vec![],
            }],
            skipped: vec![],
        };
        let line = encode_response(&r);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.contains(r#""outcome":"extended""#), "{text}");
        assert!(
            text.contains(r#""expires_at":"2027-01-15T08:00:00Z""#),
            "{text}"
        );
        assert_eq!(decode_response(&line).unwrap(), r);
        // A fraction of a second is dropped on reading, so reading what was written is stable.
        let frac = br#"{"protocol":2,"reply":"banned","results":[{"ip":"198.18.0.1","outcome":"banned","expires_at":"1969-12-31T23:59:58.75Z"}]}"#;
        let read = decode_response(frac).unwrap();
        assert_eq!(decode_response(&encode_response(&read)).unwrap(), read);
        assert!(String::from_utf8(encode_response(&read))
            .unwrap()
            .contains("1969-12-31T23:59:58Z"));
        let bad = br#"{"protocol":2,"reply":"banned","results":[{"ip":"198.18.0.1","outcome":"maybe","expires_at":null}]}"#;
        assert!(matches!(decode_response(bad), Err(WireError::BadReply(_))));
    }

    #[test]
    fn stats_keep_their_flat_json_keys() {
        let stats = Stats {
            backend: "xdp".into(),
            packets: [("dropped".to_string(), 7), ("passed".to_string(), 9)].into(),
            bans_active: 1,
            bans_total: 2,
            unbans_total: 0,
            expired_total: 0,
            refused_allowlisted: 0,
            refused_full: 0,
            backend_errors: 0,
        };
        let json = serde_json::to_value(&stats).unwrap();
        // `stats --json` printed `"dropped": 7` beside `"bans_active"`; it still does.
        assert_eq!(json["dropped"], 7);
        assert_eq!(json["passed"], 9);
        assert_eq!(json["bans_active"], 1);
        assert_eq!(serde_json::from_value::<Stats>(json).unwrap(), stats);
    }

    #[test]
    fn only_ban_unban_and_reload_need_root() {
        assert!(Request::Unban {
            targets: vec![],
            all: true,
            jail: None,
        }
        .mutates());
        assert!(Request::Reload {}.mutates());
        assert!(!Request::Status { jail: None }.mutates());
        assert!(!Request::List { stream: true }.mutates());
        assert!(!Request::Stats {}.mutates());
    }
}
