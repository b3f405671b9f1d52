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

/// A ban as a streamed list sends it: [`BanInfo`]'s fields, borrowed from the daemon's ban.
#[derive(Debug, Clone, Copy)]
pub struct BanLine<'a> {
    pub ip: IpPrefix,
    pub jail: &'a str,
    pub blocktype: BlockType,
    pub banned_at: SystemTime,
    pub expires_at: Option<SystemTime>,
    pub dropped: u64,
    pub tarpitted: u64,
    pub last_seen: Option<SystemTime>,
    pub count: u32,
    pub ports: Option<&'a str>,
    pub dry_run: bool,
}

impl<'a> From<&'a BanInfo> for BanLine<'a> {
    fn from(b: &'a BanInfo) -> Self {
        Self {
            ip: b.ip,
            jail: &b.jail,
            blocktype: b.blocktype,
            banned_at: b.banned_at,
            expires_at: b.expires_at,
            dropped: b.dropped,
            tarpitted: b.tarpitted,
            last_seen: b.last_seen,
            count: b.count,
            ports: b.ports.as_deref(),
            dry_run: b.dry_run,
        }
    }
}

impl From<&BanLine<'_>> for BanInfo {
    fn from(b: &BanLine<'_>) -> Self {
        Self {
            ip: b.ip,
            jail: b.jail.to_string(),
            blocktype: b.blocktype,
            banned_at: b.banned_at,
            expires_at: b.expires_at,
            hits: b.dropped.saturating_add(b.tarpitted),
            dropped: b.dropped,
            tarpitted: b.tarpitted,
            last_seen: b.last_seen,
            count: b.count,
            ports: b.ports.map(str::to_string),
            dry_run: b.dry_run,
        }
    }
}

/// Writes [`BanLine`]s exactly as serde writes the [`BanInfo`] they stand for, without
/// building one: serde's encoding (an owned jail name, ports and two times formatted per
/// ban, through `fmt`) was most of the daemon's time to send a list of a million bans.
/// Times repeat (a batch of bans shares them), so the last text of each is kept.
#[derive(Debug, Default)]
pub struct BanLineWriter {
    times: [Option<(SystemTime, String)>; 3],
    ip: String,
}

impl BanLineWriter {
    /// One ban as a JSON object (no newline) at the end of `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, b: &BanLine<'_>) {
        self.write_as(out, b, &COMPACT);
    }

    /// The same as `list --json` prints it: serde's pretty form, indented by two more
    /// spaces (an element of the array).
    pub fn write_pretty(&mut self, out: &mut Vec<u8>, b: &BanLine<'_>) {
        self.write_as(out, b, &PRETTY);
    }

    fn write_as(&mut self, out: &mut Vec<u8>, b: &BanLine<'_>, form: &Form) {
        use std::fmt::Write as _;
        let field = |out: &mut Vec<u8>, first: bool, name: &str| {
            out.extend_from_slice(if first { form.open } else { form.next });
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.push(b'"');
            out.extend_from_slice(form.colon);
        };
        self.ip.clear();
        let _ = write!(self.ip, "{}", b.ip);
        field(out, true, "ip");
        json_str(out, &self.ip);
        field(out, false, "jail");
        json_str(out, b.jail);
        field(out, false, "blocktype");
        json_str(out, b.blocktype.as_str());
        field(out, false, "banned_at");
        self.time(out, 0, Some(b.banned_at));
        field(out, false, "expires_at");
        self.time(out, 1, b.expires_at);
        field(out, false, "hits");
        json_u64(out, b.dropped.saturating_add(b.tarpitted));
        field(out, false, "dropped");
        json_u64(out, b.dropped);
        field(out, false, "tarpitted");
        json_u64(out, b.tarpitted);
        field(out, false, "last_seen");
        self.time(out, 2, b.last_seen);
        field(out, false, "count");
        json_u64(out, u64::from(b.count));
        if let Some(ports) = b.ports {
            field(out, false, "ports");
            json_str(out, ports);
        }
        if b.dry_run {
            field(out, false, "dry_run");
            out.extend_from_slice(b"true");
        }
        out.extend_from_slice(form.close);
    }

    fn time(&mut self, out: &mut Vec<u8>, which: usize, t: Option<SystemTime>) {
        let Some(t) = t else {
            out.extend_from_slice(b"null");
            return;
        };
        let text = match &mut self.times[which] {
            Some((at, text)) if *at == t => text,
            slot => &slot.insert((t, crate::clock::rfc3339(t))).1,
        };
        json_str(out, text);
    }
}

/// How a ban's object is laid out.
struct Form {
    open: &'static [u8],
    next: &'static [u8],
    colon: &'static [u8],
    close: &'static [u8],
}

const COMPACT: Form = Form {
    open: b"{",
    next: b",",
    colon: b":",
    close: b"}",
};

const PRETTY: Form = Form {
    open: b"  {\n    ",
    next: b",\n    ",
    colon: b": ",
    close: b"\n  }",
};

/// `s` as a JSON string: copied where nothing needs escaping (names and addresses), else
/// by serde.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn json_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
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

    #[test]
    fn ban_lines_are_written_as_serde_writes_ban_info() {
        use std::time::UNIX_EPOCH;
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let targets = [
            "198.18.0.1",
            "2001:db8::1",
            "198.18.0.0/24",
            "2001:db8:ffff::/48",
        ];
        let jails = ["sshd", "manual", "a \"quoted\" jail", "jäil\twith tab"];
        let mut w = BanLineWriter::default();
        let mut n = 0u64;
        for (i, target) in targets.iter().enumerate() {
            for (j, jail) in jails.iter().enumerate() {
                for variant in 0..4u64 {
                    n += 1;
                    let info = BanInfo {
                        ip: target.parse().unwrap(),
                        jail: jail.to_string(),
                        blocktype: if variant % 2 == 0 {
                            BlockType::Drop
                        } else {
                            BlockType::Tarpit
                        },
                        // Repeated and changing times, so the kept texts are tested too.
                        banned_at: at(1_700_000_000 + (j as u64) * 7),
                        expires_at: (variant != 3).then(|| at(1_700_003_600 + n)),
                        hits: 0,
                        dropped: n * 1_000_003 * (variant & 1),
                        tarpitted: u64::MAX / 4 * (variant >> 1),
                        last_seen: (variant >= 2).then(|| at(1_800_000_000 + i as u64)),
                        count: (n * 3) as u32,
                        ports: (variant == 1).then(|| "tcp:22,1000-2000 udp:53".to_string()),
                        dry_run: variant == 2,
                    };
                    let info = BanInfo {
                        hits: info.dropped + info.tarpitted,
                        ..info
                    };
                    let mut ours = Vec::new();
                    w.write(&mut ours, &BanLine::from(&info));
                    let theirs = serde_json::to_vec(&info).unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&ours),
                        String::from_utf8_lossy(&theirs)
                    );
                    let back: BanInfo = serde_json::from_slice(&ours).unwrap();
                    assert_eq!(back, info);
                    // The owned form built from the borrowed one is the same ban.
                    assert_eq!(BanInfo::from(&BanLine::from(&info)), info);
                    // As an element of `list --json`'s pretty array.
                    let mut ours = Vec::new();
                    w.write_pretty(&mut ours, &BanLine::from(&info));
                    let theirs = serde_json::to_string_pretty(&info).unwrap();
                    let theirs: Vec<String> = theirs.lines().map(|l| format!("  {l}")).collect();
                    assert_eq!(String::from_utf8_lossy(&ours), theirs.join("\n"));
                }
            }
        }
    }
}
