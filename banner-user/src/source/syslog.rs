//! The syslog receiver: the hosts behind a gateway send their logs (RFC 3164 or RFC 5424,
//! over UDP, or TCP framed by octet counting or newlines as RFC 6587 has it), and the jails
//! with `source = "syslog"` judge them as they judge a syslog file: each message becomes the
//! line a file would hold (`DATE HOST TAG[PID]: MESSAGE`, control characters escaped as
//! rsyslog does), so the same filters apply. The address banned is the one the filter finds
//! in the message, never the sender's.
//!
//! Nothing is taken from a sender outside `allowed_senders` (dropped and counted, never
//! parsed); each sender is held to `rate_limit` lines a second; a line over `max_line` is
//! dropped whole and counted, as a file's is: a cut message must never be matched.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Instant, SystemTime},
};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

use super::file::SourceContext;
use crate::{
    addr::IpPrefix,
    filter::{date::DateCache, Failure, LineMeta},
    source::SourceCounters,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// One address to listen on: `udp://0.0.0.0:514`, `tcp://[::]:514`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (transport, rest) = if let Some(r) = s.strip_prefix("udp://") {
            (Transport::Udp, r)
        } else if let Some(r) = s.strip_prefix("tcp://") {
            (Transport::Tcp, r)
        } else {
            return Err(format!(
                "`{s}`: listen on udp://ADDRESS:PORT or tcp://ADDRESS:PORT"
            ));
        };
        let addr = rest
            .parse()
            .map_err(|_| format!("`{s}`: `{rest}` is not ADDRESS:PORT ([::]:514 for IPv6)"))?;
        Ok(Self { transport, addr })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        write!(f, "{t}://{}", self.addr)
    }
}

/// `[syslog]`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    pub listen: Vec<Listen>,
    /// Who may send (none: nobody).
    pub allowed_senders: Vec<IpPrefix>,
    /// Longest message taken, in bytes.
    pub max_line: usize,
    /// Lines a second taken from one sender; more are dropped and counted.
    pub rate_limit: u32,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            allowed_senders: Vec::new(),
            max_line: 8192,
            rate_limit: 20_000,
        }
    }
}

/// One message as a syslog file would hold it, and the host it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub host: String,
    pub line: Vec<u8>,
}

/// Why a message was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    NoPriority,
    BadPriority,
    Empty,
    BadHeader,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoPriority => "no <PRI> at the start",
            Self::BadPriority => "a <PRI> that is no priority (0-191)",
            Self::Empty => "nothing after the priority",
            Self::BadHeader => "an RFC 5424 header with missing fields",
        })
    }
}

/// Control characters as rsyslog writes them to files (`#012` for a newline), so that a
/// message can never hold a second line.
fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        if b < 0x20 && b != b'\t' || b == 0x7f {
            out.extend_from_slice(format!("#{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// Read one message (a datagram, or a frame of a TCP stream).
pub fn parse(raw: &[u8]) -> Result<Message, Malformed> {
    let mut raw = raw;
    while let Some((&last, rest)) = raw.split_last() {
        if matches!(last, b'\n' | b'\r' | 0) {
            raw = rest;
        } else {
            break;
        }
    }
    let rest = raw.strip_prefix(b"<").ok_or(Malformed::NoPriority)?;
    let close = rest
        .iter()
        .take(4)
        .position(|b| *b == b'>')
        .ok_or(Malformed::BadPriority)?;
    // Read only to be checked: the priority decides nothing here.
    std::str::from_utf8(&rest[..close])
        .ok()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u8>().ok())
        .filter(|p| *p <= 191)
        .ok_or(Malformed::BadPriority)?;
    let body = &rest[close + 1..];
    if body.is_empty() {
        return Err(Malformed::Empty);
    }
    match body.strip_prefix(b"1 ") {
        Some(header) => parse_5424(header),
        None => Ok(parse_3164(body)),
    }
}

/// `MMM dd hh:mm:ss HOST TAG: MSG` is already a file's line; the host is the word after
/// the stamp (none when the sender left the stamp out).
fn parse_3164(body: &[u8]) -> Message {
    let stamped = body.len() > 16
        && body[..3].iter().all(u8::is_ascii_alphabetic)
        && body[3] == b' '
        && body[6] == b' '
        && body[9] == b':'
        && body[12] == b':'
        && body[15] == b' ';
    let host = if stamped {
        body[16..]
            .split(|b| *b == b' ')
            .next()
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mut line = Vec::with_capacity(body.len());
    escape_into(&mut line, body);
    Message { host, line }
}

/// `TIMESTAMP HOST APP PROCID MSGID SD MSG` -> `TIMESTAMP HOST APP[PROCID]: MSG`, what
/// rsyslog writes with its RFC 3339 file format.
fn parse_5424(header: &[u8]) -> Result<Message, Malformed> {
    let mut fields = header.splitn(6, |b| *b == b' ');
    let mut next = || fields.next().ok_or(Malformed::BadHeader);
    let (stamp, host, app, procid, _msgid) = (next()?, next()?, next()?, next()?, next()?);
    let rest = fields.next().unwrap_or_default();
    // Structured data: `-`, or `[...]` elements (a `]` inside a quoted value is escaped).
    let msg = if let Some(r) = rest.strip_prefix(b"-") {
        r
    } else if rest.first() == Some(&b'[') {
        let mut i = 0;
        let mut quoted = false;
        let mut depth_closed = false;
        while i < rest.len() {
            match rest[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => {
                    depth_closed = rest.get(i + 1) != Some(&b'[');
                    if depth_closed {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if !depth_closed {
            return Err(Malformed::BadHeader);
        }
        &rest[i.min(rest.len())..]
    } else {
        return Err(Malformed::BadHeader);
    };
    let msg = msg.strip_prefix(b" ").unwrap_or(msg);
    let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
    let nil = |f: &[u8]| f == b"-";
    let mut line = Vec::with_capacity(header.len() + 8);
    if !nil(stamp) {
        escape_into(&mut line, stamp);
        line.push(b' ');
    }
    let host_text = if nil(host) {
        String::new()
    } else {
        String::from_utf8_lossy(host).into_owned()
    };
    escape_into(&mut line, if nil(host) { b"-" } else { host });
    line.push(b' ');
    escape_into(&mut line, if nil(app) { b"-" } else { app });
    if !nil(procid) {
        line.push(b'[');
        escape_into(&mut line, procid);
        line.push(b']');
    }
    line.extend_from_slice(b": ");
    escape_into(&mut line, msg);
    Ok(Message {
        host: host_text,
        line,
    })
}

/// What one sender sent, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderStatus {
    pub lines: u64,
    /// Over the rate limit.
    pub rate_limited: u64,
    /// Over `max_line`.
    pub truncated: u64,
    pub malformed: u64,
}

/// The receiver as `status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyslogStatus {
    pub listen: Vec<String>,
    /// Messages from senders outside `allowed_senders`.
    pub refused: u64,
    pub senders: BTreeMap<String, SenderStatus>,
}

/// The receiver's counters, shared with the core for `status`.
#[derive(Debug, Default)]
pub struct SyslogStats {
    refused: AtomicU64,
    senders: Mutex<BTreeMap<IpAddr, SenderStatus>>,
    listen: Mutex<Vec<String>>,
}

/// Most senders remembered (counting stops for new ones beyond it).
const MAX_SENDERS: usize = 4096;

impl SyslogStats {
    pub fn status(&self) -> SyslogStatus {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        SyslogStatus {
            listen: self
                .listen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            refused: self.refused.load(Ordering::Relaxed),
            senders: senders
                .iter()
                .map(|(a, s)| (a.to_string(), s.clone()))
                .collect(),
        }
    }

    fn count(&self, sender: IpAddr, f: impl FnOnce(&mut SenderStatus)) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if senders.len() < MAX_SENDERS || senders.contains_key(&sender) {
            f(senders.entry(sender).or_default());
        }
    }
}

/// A jail fed by the receiver.
pub struct SyslogJail {
    pub ctx: SourceContext,
    /// Host names (lower case) or addresses whose messages the jail takes; empty: all.
    pub hosts: Vec<String>,
}

impl SyslogJail {
    fn takes(&self, sender: IpAddr, host: &str) -> bool {
        self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host) || h.parse::<IpAddr>() == Ok(sender))
    }
}

/// A token bucket per sender: `rate` lines a second, a second's worth in reserve.
struct Buckets {
    rate: f64,
    by_sender: HashMap<IpAddr, (f64, Instant)>,
}

impl Buckets {
    fn take(&mut self, sender: IpAddr, now: Instant) -> bool {
        if self.by_sender.len() >= MAX_SENDERS && !self.by_sender.contains_key(&sender) {
            self.by_sender.clear();
        }
        let (tokens, last) = self.by_sender.entry(sender).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The judging side, one per socket: who may send, the jails, their pending failures.
struct Judge {
    cfg: SyslogConfig,
    jails: Arc<Vec<SyslogJail>>,
    stats: Arc<SyslogStats>,
    buckets: Buckets,
    cache: DateCache,
    pending: Vec<Vec<Failure>>,
}

impl Judge {
    fn new(cfg: SyslogConfig, jails: Arc<Vec<SyslogJail>>, stats: Arc<SyslogStats>) -> Self {
        let pending = jails.iter().map(|_| Vec::new()).collect();
        let rate = f64::from(cfg.rate_limit);
        Self {
            cfg,
            jails,
            stats,
            buckets: Buckets {
                rate,
                by_sender: HashMap::new(),
            },
            cache: DateCache::default(),
            pending,
        }
    }

    /// Judge one message from a sender [`admit`] let in.
    fn judge(&mut self, sender: IpAddr, raw: &[u8], now: Instant) {
        if !self.buckets.take(sender, now) {
            self.stats.count(sender, |s| s.rate_limited += 1);
            return;
        }
        if raw.len() > self.cfg.max_line {
            self.too_long(sender);
            return;
        }
        let message = match parse(raw) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count(sender, |s| s.malformed += 1);
                log::debug!("syslog: a message from {sender} refused: {e}");
                return;
            }
        };
        self.stats.count(sender, |s| s.lines += 1);
        let meta = LineMeta::arrived(SystemTime::now());
        for (j, out) in self.jails.iter().zip(self.pending.iter_mut()) {
            if j.takes(sender, &message.host) {
                SourceCounters::add(&j.ctx.counters.lines, 1);
                j.ctx
                    .examine_line(&message.line, &meta, &mut self.cache, out);
            }
        }
    }

    /// A message over `max_line`: dropped whole, counted for the sender and the jails.
    fn too_long(&self, sender: IpAddr) {
        self.stats.count(sender, |s| s.truncated += 1);
        for j in self.jails.iter() {
            SourceCounters::add(&j.ctx.counters.truncated, 1);
        }
    }

    /// Hand what was found to the core; false when it is gone.
    fn flush(&mut self) -> bool {
        for (j, out) in self.jails.iter().zip(self.pending.iter_mut()) {
            if !out.is_empty() && !(j.ctx.sink)(&j.ctx.jail, std::mem::take(out)) {
                return false;
            }
        }
        true
    }
}

/// The sender as it is counted and judged (an IPv4 address mapped into IPv6 as IPv4), if
/// `allowed_senders` lets it in; a refusal is counted.
fn admit(cfg: &SyslogConfig, stats: &SyslogStats, from: IpAddr) -> Option<IpAddr> {
    let sender = crate::addr::fold_mapped(from);
    let ok = cfg.allowed_senders.iter().any(|n| n.contains_addr(sender));
    if !ok {
        stats.refused.fetch_add(1, Ordering::Relaxed);
    }
    ok.then_some(sender)
}

/// Serve every configured socket until aborted. A socket that cannot be bound is logged
/// and left out; the others run.
pub async fn serve(cfg: SyslogConfig, jails: Vec<SyslogJail>, stats: Arc<SyslogStats>) {
    let jails = Arc::new(jails);
    *stats.listen.lock().unwrap_or_else(|e| e.into_inner()) =
        cfg.listen.iter().map(ToString::to_string).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for l in cfg.listen.clone() {
        let judge = Judge::new(cfg.clone(), Arc::clone(&jails), Arc::clone(&stats));
        match l.transport {
            Transport::Udp => match bind_udp(l.addr) {
                Ok(sock) => {
                    tasks.spawn(serve_udp(sock, judge));
                }
                Err(e) => log::error!("syslog: cannot listen on {l}: {e}"),
            },
            Transport::Tcp => match tokio::net::TcpListener::bind(l.addr).await {
                Ok(listener) => {
                    tasks.spawn(serve_tcp(
                        listener,
                        cfg.clone(),
                        Arc::clone(&jails),
                        Arc::clone(&stats),
                    ));
                }
                Err(e) => log::error!("syslog: cannot listen on {l}: {e}"),
            },
        }
        log::info!("syslog: listening on {l}");
    }
    while tasks.join_next().await.is_some() {}
}

/// A UDP socket with a large receive buffer: bursts from many hosts must queue, not drop.
fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let sock = std::net::UdpSocket::bind(addr)?;
    let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::RcvBuf, &(8 << 20));
    sock.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(sock)
}

async fn serve_udp(sock: tokio::net::UdpSocket, mut judge: Judge) {
    let mut buf = vec![0u8; 65_536];
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        let now = Instant::now();
        // Drain what is queued, then hand the failures over in one batch.
        loop {
            match sock.try_recv_from(&mut buf) {
                Ok((n, from)) => {
                    if let Some(sender) = admit(&judge.cfg, &judge.stats, from.ip()) {
                        judge.judge(sender, &buf[..n], now);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("syslog: udp: {e}");
                    break;
                }
            }
        }
        if !judge.flush() {
            return;
        }
    }
}

async fn serve_tcp(
    listener: tokio::net::TcpListener,
    cfg: SyslogConfig,
    jails: Arc<Vec<SyslogJail>>,
    stats: Arc<SyslogStats>,
) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                log::debug!("syslog: tcp accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(sender) = admit(&cfg, &stats, from.ip()) else {
            // Closed at once: nothing of it is read.
            continue;
        };
        let judge = Judge::new(cfg.clone(), Arc::clone(&jails), Arc::clone(&stats));
        tokio::spawn(serve_stream(stream, sender, judge));
    }
}

/// One TCP sender (as [`admit`] gave it): frames by octet counting (`LEN MSG`) or by newline, whichever each
/// frame starts with (RFC 6587).
async fn serve_stream(stream: tokio::net::TcpStream, from: IpAddr, mut judge: Judge) {
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, stream);
    let max = judge.cfg.max_line;
    let mut frame = Vec::with_capacity(1024);
    loop {
        frame.clear();
        let first = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(b) => b[0],
        };
        let read = if first.is_ascii_digit() {
            read_counted(&mut reader, &mut frame, max).await
        } else {
            read_newline(&mut reader, &mut frame, max).await
        };
        match read {
            Ok(Frame::Message) => judge.judge(from, &frame, Instant::now()),
            Ok(Frame::TooLong) => judge.too_long(from),
            Ok(Frame::Bad) => {
                judge.stats.count(from, |s| s.malformed += 1);
                break;
            }
            Err(_) => break,
        }
        if reader.buffer().is_empty() && !judge.flush() {
            return;
        }
    }
    judge.flush();
}

enum Frame {
    Message,
    TooLong,
    /// The stream cannot be read further (a length that is no number).
    Bad,
}

async fn read_counted(
    reader: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    frame: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Frame> {
    let mut len = Vec::new();
    reader.read_until(b' ', &mut len).await?;
    let Some(n) = std::str::from_utf8(len.strip_suffix(b" ").unwrap_or(b"x"))
        .ok()
        .filter(|t| t.len() <= 9)
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return Ok(Frame::Bad);
    };
    if n as usize > max {
        // Skipped, so the next frame is found where it starts.
        tokio::io::copy(&mut reader.take(n), &mut tokio::io::sink()).await?;
        return Ok(Frame::TooLong);
    }
    frame.resize(n as usize, 0);
    reader.read_exact(frame).await?;
    Ok(Frame::Message)
}

async fn read_newline(
    reader: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    frame: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Frame> {
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            frame.extend_from_slice(&buf[..take]);
            if frame.len() > max + 1 {
                too_long = true;
                frame.clear();
            }
        }
        reader.consume(take);
        if done {
            break;
        }
    }
    Ok(if too_long {
        Frame::TooLong
    } else {
        Frame::Message
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(raw: &str) -> String {
        String::from_utf8(parse(raw.as_bytes()).unwrap().line).unwrap()
    }

    #[test]
    fn rfc_3164_messages_are_the_lines_a_file_holds() {
        let m = parse(b"<38>Nov 27 16:00:01 web1 sshd[4242]: Failed password for root from 198.18.0.7 port 22 ssh2\n").unwrap();
        assert_eq!(m.host, "web1");
        assert_eq!(
            String::from_utf8(m.line).unwrap(),
            "Nov 27 16:00:01 web1 sshd[4242]: Failed password for root from 198.18.0.7 port 22 ssh2"
        );
        // A sender that leaves out the stamp names no host; its text is kept as it is.
        let m = parse(b"<13>sshd[1]: hello").unwrap();
        assert_eq!(
            (m.host.as_str(), m.line.as_slice()),
            ("", &b"sshd[1]: hello"[..])
        );
    }

    #[test]
    fn rfc_5424_messages_become_rsyslog_file_lines() {
        assert_eq!(
            line("<38>1 2026-11-27T16:00:01.5+00:00 web1 sshd 4242 - - Failed password for root from 198.18.0.7 port 22 ssh2"),
            "2026-11-27T16:00:01.5+00:00 web1 sshd[4242]: Failed password for root from 198.18.0.7 port 22 ssh2"
        );
        // Structured data (with a quoted `]`) is skipped; a BOM goes; nil fields too.
        assert_eq!(
            line("<38>1 2026-11-27T16:00:01Z web1 sshd - ID47 [a@1 x=\"q\\]\"][b@2 y=\"1\"] \u{feff}Invalid user x from 198.18.0.8"),
            "2026-11-27T16:00:01Z web1 sshd: Invalid user x from 198.18.0.8"
        );
        assert_eq!(parse(b"<38>1 - - - - - -").unwrap().host, "");
    }

    #[test]
    fn a_message_can_never_hold_a_second_line() {
        let l = line("<38>Nov 27 16:00:01 web1 app: user x\nNov 27 16:00:01 web1 sshd[1]: Failed password for root from 198.18.9.9 port 1 ssh2");
        assert!(!l.contains('\n'));
        assert!(l.contains("user x#012Nov 27"), "{l}");
    }

    #[test]
    fn what_is_no_syslog_message_is_refused_with_its_reason() {
        assert_eq!(parse(b"hello"), Err(Malformed::NoPriority));
        assert_eq!(parse(b"<192>x"), Err(Malformed::BadPriority));
        assert_eq!(parse(b"<a>x"), Err(Malformed::BadPriority));
        assert_eq!(parse(b"<99999>x"), Err(Malformed::BadPriority));
        assert_eq!(parse(b"<13>"), Err(Malformed::Empty));
        assert_eq!(
            parse(b"<13>1 2026-11-27T16:00:01Z web1"),
            Err(Malformed::BadHeader)
        );
        assert_eq!(
            parse(b"<13>1 t h a p m [unclosed"),
            Err(Malformed::BadHeader)
        );
    }

    #[test]
    fn listen_addresses_are_read_with_their_transport() {
        let l: Listen = "udp://0.0.0.0:514".parse().unwrap();
        assert_eq!((l.transport, l.addr.port()), (Transport::Udp, 514));
        let l: Listen = "tcp://[::]:6514".parse().unwrap();
        assert_eq!(l.to_string(), "tcp://[::]:6514");
        for bad in [
            "0.0.0.0:514",
            "udp://0.0.0.0",
            "tcp://host:514",
            "http://0.0.0.0:514",
        ] {
            assert!(bad.parse::<Listen>().is_err(), "{bad}");
        }
    }

    #[test]
    fn each_sender_is_held_to_its_rate() {
        let mut b = Buckets {
            rate: 10.0,
            by_sender: HashMap::new(),
        };
        let (a, c): (IpAddr, IpAddr) =
            ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        let t0 = Instant::now();
        let taken = (0..25).filter(|_| b.take(a, t0)).count();
        assert_eq!(taken, 10, "a second's worth at once");
        assert!(b.take(c, t0), "another sender has its own bucket");
        let later = t0 + std::time::Duration::from_millis(500);
        assert_eq!((0..25).filter(|_| b.take(a, later)).count(), 5);
    }
}
