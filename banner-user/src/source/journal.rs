//! Following journald through `journalctl --follow --output=json`, resuming after a restart
//! from the last cursor read (saved in the position book).

use std::{
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

use super::{
    file::SourceContext,
    positions::{key, Saved, SourceStatus},
    SourceCounters, MAX_LINE,
};
use crate::filter::{date::DateCache, LineMeta};

/// One journal entry, as much of it as a filter needs.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "__CURSOR")]
    cursor: Option<String>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<String>,
    #[serde(rename = "MESSAGE")]
    message: Option<Message>,
    #[serde(rename = "_PID")]
    pid: Option<String>,
}

/// journald gives MESSAGE as a string, or as a byte array when it is not valid UTF-8.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Message {
    Text(String),
    Bytes(Vec<u8>),
}

/// The journalctl arguments: entries after the cursor (or since `since` ago on a first start)
/// matching any of `matches` (each a space-separated list of FIELD=value that must all hold).
pub fn journalctl_args(
    matches: &[String],
    cursor: Option<&str>,
    since: Duration,
    now: SystemTime,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--follow",
        "--output=json",
        "--no-pager",
        "--all",
        "--lines=all",
        "--output-fields=MESSAGE,_PID",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match cursor {
        Some(c) => args.push(format!("--after-cursor={c}")),
        None => {
            let from = now
                .checked_sub(since)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            args.push(format!("--since=@{from}"));
        }
    }
    args.extend(match_args(matches));
    args
}

/// journalctl's match arguments: each entry's FIELD=value terms (all must hold), the entries
/// joined by `+` (any may).
fn match_args(matches: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        if i > 0 {
            args.push("+".into());
        }
        args.extend(m.split_whitespace().map(str::to_string));
    }
    args
}

/// Follow the journal for one jail until the task is aborted. `since`: how far back to read
/// on a first start (the jail's findtime: older failures would not count anyway).
pub async fn follow(matches: Vec<String>, since: Duration, ctx: SourceContext) {
    let name = matches.join(" + ");
    let k = key(&ctx.jail, "journal", &name);
    ctx.book.set_status(
        &k,
        SourceStatus {
            jail: ctx.jail.clone(),
            kind: "journal".into(),
            name: name.clone(),
            state: "starting".into(),
            lines: 0,
            offset: None,
            size: None,
            cursor: None,
        },
    );
    let mut backoff = Duration::from_secs(1);
    loop {
        let cursor = match ctx.book.get(&k) {
            Some(Saved::Journal { cursor }) => Some(cursor),
            _ => None,
        };
        let args = journalctl_args(&matches, cursor.as_deref(), since, SystemTime::now());
        match run_once(&args, &k, &ctx).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                SourceCounters::add(&ctx.counters.errors, 1);
                log::warn!(
                    "[{}] journal: {e}; retrying in {}s",
                    ctx.jail,
                    backoff.as_secs()
                );
                ctx.book
                    .update_status(&k, |s| s.state = format!("error: {e}"));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn run_once(args: &[String], k: &str, ctx: &SourceContext) -> Result<(), String> {
    let mut child = tokio::process::Command::new("journalctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run journalctl: {e}"))?;
    let stdout = child.stdout.take().ok_or("journalctl has no stdout")?;
    let mut stderr = child.stderr.take().ok_or("journalctl has no stderr")?;
    ctx.book.update_status(k, |s| s.state = "following".into());
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut cache = DateCache::default();
    let mut line = Vec::new();
    let mut failures = Vec::new();
    let mut last_cursor: Option<String> = None;
    let mut read = 0u64;
    loop {
        // Bounded: a huge entry is skipped as it streams by, never buffered whole first.
        match read_line_bounded(&mut reader, &mut line, MAX_LINE * 4)
            .await
            .map_err(|e| format!("reading journalctl: {e}"))?
        {
            LineRead::Eof => break,
            LineRead::TooLong => {
                read += 1;
                SourceCounters::add(&ctx.counters.truncated, 1);
                continue;
            }
            LineRead::Line => read += 1,
        }
        let entry: Entry = match serde_json::from_slice(&line) {
            Ok(e) => e,
            Err(e) => {
                SourceCounters::add(&ctx.counters.errors, 1);
                log::debug!(
                    "[{}] journal: skipping an entry that is not JSON: {e}",
                    ctx.jail
                );
                continue;
            }
        };
        if let Some(c) = entry.cursor.clone() {
            last_cursor = Some(c);
        }
        let text: Vec<u8> = match entry.message {
            Some(Message::Text(t)) => t.into_bytes(),
            Some(Message::Bytes(b)) => b,
            None => continue,
        };
        let meta = LineMeta {
            arrival: SystemTime::now(),
            time: entry
                .realtime
                .and_then(|t| t.parse::<u64>().ok())
                .map(|us| UNIX_EPOCH + Duration::from_micros(us)),
            pid: entry.pid.and_then(|p| p.parse().ok()),
        };
        SourceCounters::add(&ctx.counters.lines, 1);
        if text.len() > MAX_LINE {
            // Dropped whole, as file lines are: a cut message must never be matched.
            SourceCounters::add(&ctx.counters.truncated, 1);
            continue;
        }
        ctx.examine_line(&text, &meta, &mut cache, &mut failures);
        // Hand over a batch whenever journalctl has nothing more queued right now.
        if reader.buffer().is_empty() && !flush(ctx, k, &mut failures, &mut last_cursor, &mut read)
        {
            return Ok(());
        }
    }
    flush(ctx, k, &mut failures, &mut last_cursor, &mut read);
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err).await;
    let status = child.wait().await.map_err(|e| e.to_string())?;
    let err = err.trim();
    Err(if err.is_empty() {
        format!("journalctl exited ({status})")
    } else {
        format!("journalctl exited ({status}): {err}")
    })
}

/// What [`read_line_bounded`] found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    Eof,
    /// `buf` holds one line (with its newline, if it had one).
    Line,
    /// The line was longer than the limit: skipped through its newline, `buf` empty.
    TooLong,
}

/// Read one line into `buf` (cleared first), holding at most `limit` bytes of it.
async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let mut skipping = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (skipping, buf.is_empty()) {
                (true, _) => LineRead::TooLong,
                (false, true) => LineRead::Eof,
                (false, false) => LineRead::Line,
            });
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !skipping {
            if buf.len() + take > limit {
                skipping = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if skipping {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

/// Send the failures, then record the cursor (so a restart never skips an entry the core
/// did not get).
fn flush(
    ctx: &SourceContext,
    k: &str,
    failures: &mut Vec<crate::filter::Failure>,
    cursor: &mut Option<String>,
    read: &mut u64,
) -> bool {
    if !failures.is_empty() && !(ctx.sink)(&ctx.jail, std::mem::take(failures)) {
        return false;
    }
    if let Some(c) = cursor.take() {
        ctx.book.set(k, Saved::Journal { cursor: c.clone() });
        let added = std::mem::take(read);
        ctx.book.update_status(k, |s| {
            s.cursor = Some(c);
            s.lines += added;
        });
    }
    true
}

/// Does the journal hold any entry matching `matches`? Asked once at start to decide whether
/// a jail's log files are needed; bounded, so a stuck journalctl cannot hold the start up.
pub async fn has_entries(matches: &[String]) -> bool {
    let mut args: Vec<String> = ["--quiet", "--no-pager", "--lines=1", "--output=cat"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(match_args(matches));
    let run = tokio::process::Command::new("journalctl")
        .args(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(out)) => out.status.success() && !out.stdout.trim_ascii().is_empty(),
        _ => false,
    }
}

/// Is there a journal to read at all (journald running, or journal files present)?
pub fn journal_present() -> bool {
    [
        "/run/systemd/journal/socket",
        "/run/log/journal",
        "/var/log/journal",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_ored_and_fields_inside_one_are_anded() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let args = journalctl_args(
            &[
                "_SYSTEMD_UNIT=ssh.service".into(),
                "_SYSTEMD_UNIT=sshd.service _COMM=sshd".into(),
            ],
            None,
            Duration::from_secs(600),
            now,
        );
        let tail: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .skip_while(|a| a.starts_with("--"))
            .collect();
        assert_eq!(
            tail,
            vec![
                "_SYSTEMD_UNIT=ssh.service",
                "+",
                "_SYSTEMD_UNIT=sshd.service",
                "_COMM=sshd"
            ]
        );
        assert!(args.contains(&"--since=@9400".to_string()));
        let resumed = journalctl_args(
            &["X=1".into()],
            Some("s=abc;i=1"),
            Duration::from_secs(600),
            now,
        );
        assert!(resumed.contains(&"--after-cursor=s=abc;i=1".to_string()));
        assert!(!resumed.iter().any(|a| a.starts_with("--since")));
    }

    #[test]
    fn entries_decode_text_and_byte_messages() {
        let e: Entry = serde_json::from_str(
            r#"{"__CURSOR":"c1","__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE":"hi","_PID":"42"}"#,
        )
        .unwrap();
        assert!(matches!(e.message, Some(Message::Text(ref t)) if t == "hi"));
        let b: Entry =
            serde_json::from_str(r#"{"__CURSOR":"c2","MESSAGE":[104,255,105]}"#).unwrap();
        assert!(matches!(b.message, Some(Message::Bytes(ref v)) if v == &[104, 255, 105]));
    }

    #[tokio::test]
    async fn overlong_entries_are_skipped_without_being_buffered_whole() {
        // Issue 9, item 18: journalctl lines were read whole before the size check.
        let mut data = vec![b'x'; 10_000];
        data.extend_from_slice(b"\nshort\ntail");
        let mut reader = tokio::io::BufReader::with_capacity(64, &data[..]);
        let mut buf = Vec::new();
        let r = read_line_bounded(&mut reader, &mut buf, 100).await.unwrap();
        assert_eq!(r, LineRead::TooLong);
        assert!(buf.capacity() <= 200, "held {} bytes", buf.capacity());
        let r = read_line_bounded(&mut reader, &mut buf, 100).await.unwrap();
        assert_eq!((r, buf.as_slice()), (LineRead::Line, &b"short\n"[..]));
        let r = read_line_bounded(&mut reader, &mut buf, 100).await.unwrap();
        assert_eq!((r, buf.as_slice()), (LineRead::Line, &b"tail"[..]));
        let r = read_line_bounded(&mut reader, &mut buf, 100).await.unwrap();
        assert_eq!(r, LineRead::Eof);
    }
}
