//! Where the daemon's log goes and in which shape: text on stderr (the default), one JSON
//! object a line (`--log-format json`), or journald's native protocol with the ban fields as
//! journal fields (`JAIL=`, `IP=`), chosen by itself when systemd runs banner
//! (`--log-format auto`, the default: `$JOURNAL_STREAM` says stderr goes to the journal).
//!
//! Call sites attach fields as log key-values: `log::info!(jail = "sshd", ip = "..."; "...")`.

use std::{fmt::Write as _, io::Write, os::unix::net::UnixDatagram};

/// journald's socket for native messages.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
    Journal,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            "journal" => Ok(Self::Journal),
            other => Err(format!(
                "unknown log format `{other}` (expected auto, text, json or journal)"
            )),
        }
    }
}

/// The record's key-values, as (key, value) text.
fn fields(record: &log::Record) -> Vec<(String, String)> {
    struct Collect(Vec<(String, String)>);
    impl<'kvs> log::kv::VisitSource<'kvs> for Collect {
        fn visit_pair(
            &mut self,
            key: log::kv::Key<'kvs>,
            value: log::kv::Value<'kvs>,
        ) -> Result<(), log::kv::Error> {
            self.0.push((key.to_string(), value.to_string()));
            Ok(())
        }
    }
    let mut c = Collect(Vec::new());
    let _ = record.key_values().visit(&mut c);
    c.0
}

/// One JSON object for a record: time, level, message and its fields.
pub fn json_line(record: &log::Record, time: &str) -> String {
    let mut v = serde_json::json!({
        "time": time,
        "level": record.level().as_str(),
        "message": record.args().to_string(),
    });
    for (k, value) in fields(record) {
        v[k] = serde_json::Value::String(value);
    }
    v.to_string()
}

/// syslog priority of a log level (journald's PRIORITY=).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// A record in journald's native datagram format. Every value goes in the binary form
/// (name, newline, 64-bit little-endian length, bytes, newline), so a value holding a newline
/// can never make a field of its own.
pub fn journal_datagram(record: &log::Record) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    };
    field("MESSAGE", &record.args().to_string());
    field("PRIORITY", &priority(record.level()).to_string());
    field("SYSLOG_IDENTIFIER", "banner");
    for (k, v) in fields(record) {
        // Journal field names: upper-case letters, digits and underscores.
        let name: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            field(&name, &v);
        }
    }
    out
}

/// Sends each record as one datagram to journald; env_logger's filter (`RUST_LOG`) decides
/// which. Not through env_logger's output: it strips control bytes, and the binary field form
/// is made of them.
struct JournalLogger {
    filter: env_logger::Logger,
    socket: UnixDatagram,
}

impl log::Log for JournalLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if self.filter.matches(record) {
            // A full journal loses the line, never the daemon.
            let _ = self.socket.send(&journal_datagram(record));
        }
    }

    fn flush(&self) {}
}

/// Whether systemd connected our stderr to the journal.
fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some() && std::path::Path::new(JOURNAL_SOCKET).exists()
}

/// Install the daemon's logger (level from `RUST_LOG`, default info).
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let format = match format {
        LogFormat::Auto if under_journald() => LogFormat::Journal,
        LogFormat::Auto => LogFormat::Text,
        f => f,
    };
    match format {
        LogFormat::Journal => {
            let socket = UnixDatagram::unbound().and_then(|s| {
                s.connect(JOURNAL_SOCKET)?;
                Ok(s)
            });
            match socket {
                Ok(socket) => {
                    let filter = b.build();
                    let level = filter.filter();
                    if log::set_boxed_logger(Box::new(JournalLogger { filter, socket })).is_ok() {
                        log::set_max_level(level);
                    }
                    return;
                }
                Err(e) => {
                    // Text on stderr rather than no log at all.
                    eprintln!("banner: cannot reach journald at {JOURNAL_SOCKET} ({e}); logging to stderr");
                    b.format_target(false);
                }
            }
        }
        LogFormat::Json => {
            b.format(|buf, record| {
                let time = crate::clock::rfc3339(std::time::SystemTime::now());
                writeln!(buf, "{}", json_line(record, &time))
            });
        }
        LogFormat::Text | LogFormat::Auto => {
            // Fields already appear in the words of the message.
            b.format_target(false);
        }
    }
    b.init();
}

/// `key=value` pairs of a record, for tests and text where wanted.
pub fn describe_fields(record: &log::Record) -> String {
    let mut s = String::new();
    for (k, v) in fields(record) {
        let _ = write!(s, " {k}={v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_record<R>(f: impl FnOnce(&log::Record) -> R) -> R {
        let kvs: &[(&str, &str)] = &[("jail", "sshd"), ("ip", "198.51.100.7")];
        let args = format_args!("[sshd] Ban 198.51.100.7 for 1h\nsecond line");
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Info)
            .key_values(&kvs)
            .build();
        f(&record)
    }

    #[test]
    fn json_lines_carry_the_fields() {
        let line = with_record(|r| json_line(r, "2026-11-27T00:00:00Z"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["jail"], "sshd");
        assert_eq!(v["ip"], "198.51.100.7");
        assert_eq!(v["message"], "[sshd] Ban 198.51.100.7 for 1h\nsecond line");
        assert!(!line.contains('\n'), "one line: {line}");
        assert_eq!(with_record(describe_fields), " jail=sshd ip=198.51.100.7");
    }

    #[test]
    fn journal_datagrams_use_the_binary_form_for_every_field() {
        let d = with_record(journal_datagram);
        let message = "[sshd] Ban 198.51.100.7 for 1h\nsecond line";
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&(message.len() as u64).to_le_bytes());
        want.extend_from_slice(message.as_bytes());
        want.push(b'\n');
        assert!(d.starts_with(&want));
        let text = String::from_utf8_lossy(&d);
        for name in ["PRIORITY\n", "SYSLOG_IDENTIFIER\n", "JAIL\n", "IP\n"] {
            assert!(text.contains(name), "{name} missing: {text:?}");
        }
        // The newline inside the message cannot start a field: the length says where it ends.
        assert!(!text.contains("\nsecond line\nPRIORITY="));
    }
}
