//! The source stage: log lines from files and from journald.
//!
//! Sources run as async tasks. Each one reads lines, runs them through its jail's filter,
//! and hands the failures to the core; it records how far it has read in the shared
//! [`positions::PositionBook`], which the daemon saves so a restart continues where it
//! stopped.

pub mod file;
pub mod journal;
pub mod positions;
pub mod syslog;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

/// Longest line kept; the rest of a longer line is cut off (and counted).
pub const MAX_LINE: usize = 64 * 1024;

/// Splits a byte stream into lines. Handles `\r\n`, lines over [`MAX_LINE`], and a last line
/// still being written (kept until its newline arrives).
///
/// A line longer than [`MAX_LINE`] is dropped whole and counted, never handed on cut: a cut
/// line's end is not the line's end, so a `$`-anchored pattern would match at the cut and
/// client text placed there (an address of the attacker's choosing) would be taken as the
/// source.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// Inside an overlong line: its bytes are being skipped until its newline.
    skipping: bool,
    /// Bytes of the overlong line skipped so far (a restart re-reads and re-skips it).
    skipped: usize,
    /// Overlong lines dropped.
    pub truncated: u64,
}

impl LineSplitter {
    /// Feed bytes; `emit` gets each complete line (without its line ending).
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            match memchr_newline(data) {
                Some(nl) => {
                    let (head, rest) = (&data[..nl], &data[nl + 1..]);
                    if self.skipping {
                        self.skipping = false;
                        self.skipped = 0;
                    } else if self.partial.len() + head.len() > MAX_LINE {
                        self.truncated += 1;
                        self.partial.clear();
                    } else if self.partial.is_empty() {
                        emit(strip_cr(head));
                    } else {
                        self.partial.extend_from_slice(head);
                        emit(strip_cr(&self.partial));
                        self.partial.clear();
                    }
                    data = rest;
                }
                None => {
                    if self.skipping {
                        self.skipped += data.len();
                    } else if self.partial.len() + data.len() > MAX_LINE {
                        // Too long already: drop what we hold and skip to its newline.
                        self.truncated += 1;
                        self.skipped = self.partial.len() + data.len();
                        self.partial.clear();
                        self.skipping = true;
                    } else {
                        self.partial.extend_from_slice(data);
                    }
                    data = &[];
                }
            }
        }
    }

    /// The file ended for good (rotated away): emit a last line that had no newline.
    pub fn flush(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(strip_cr(&self.partial));
            self.partial.clear();
        }
        self.skipping = false;
        self.skipped = 0;
    }

    /// Forget a partial line (the file was truncated under it).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = false;
        self.skipped = 0;
    }

    /// Bytes read but not yet handed out as a line: a restart resumes before them.
    pub fn pending(&self) -> usize {
        self.partial.len() + self.skipped
    }
}

fn memchr_newline(data: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', data)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Counters a jail's sources share, for `banner status`.
#[derive(Debug, Default)]
pub struct SourceCounters {
    pub lines: AtomicU64,
    pub failure_lines: AtomicU64,
    pub truncated: AtomicU64,
    pub invalid_utf8: AtomicU64,
    pub bad_host: AtomicU64,
    pub ignored: AtomicU64,
    pub errors: AtomicU64,
}

impl SourceCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The counters of every jail, shared by the core (which reports them) and the supervisor
/// (which hands them to the sources it starts). A jail keeps its counters across reloads.
#[derive(Clone, Debug, Default)]
pub struct CounterRegistry(Arc<Mutex<HashMap<String, Arc<SourceCounters>>>>);

impl CounterRegistry {
    pub fn get(&self, jail: &str) -> Arc<SourceCounters> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(jail.to_string()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, LineSplitter) {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l.to_vec()));
        }
        (out, s)
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let (out, s) = split(&[b"one\ntw", b"o\r\nthr", b"ee"]);
        assert_eq!(out, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(
            s.pending(),
            5,
            "the partial last line waits for its newline"
        );
        let (out, _) = split(&[b"a\n\nb\n"]);
        assert_eq!(out, vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn overlong_lines_are_dropped_whole_counted_and_the_next_line_survives() {
        // Issue 9, item 13: the head of an overlong line was matched as a whole line, so `$`
        // anchored at the cut, where client text could place a chosen address.
        let mut long = vec![b'x'; MAX_LINE - 20];
        long.extend_from_slice(b" from 198.18.66.6 port 22 ssh2 and then more client text");
        let (out, s) = split(&[&long, b"\nnext\n"]);
        assert_eq!(
            out,
            vec![b"next".to_vec()],
            "the cut line is never handed on"
        );
        assert_eq!(s.truncated, 1);
        // The same, with the long line arriving in small pieces.
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in long.chunks(1000) {
            s.push(chunk, &mut |l| out.push(l.len()));
        }
        assert_eq!(
            s.pending(),
            long.len(),
            "a restart re-reads (and re-skips) it"
        );
        s.push(b"\nok\n", &mut |l| out.push(l.len()));
        assert_eq!(out, vec![2]);
        assert_eq!(s.truncated, 1);
        assert_eq!(s.pending(), 0);
        // A line of exactly MAX_LINE bytes is whole, and kept.
        let exact = vec![b'y'; MAX_LINE];
        let (out, s) = split(&[&exact[..100], &exact[100..], b"\n"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(s.truncated, 0);
    }

    #[test]
    fn nul_bytes_and_invalid_utf8_are_kept() {
        let (out, _) = split(&[b"a\0b\n\xff\xfebad\n"]);
        assert_eq!(out[0], b"a\0b");
        assert_eq!(out[1], b"\xff\xfebad");
    }

    #[test]
    fn flush_emits_a_final_unterminated_line() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(b"tail without newline", &mut |l| out.push(l.to_vec()));
        assert!(out.is_empty());
        s.flush(&mut |l| out.push(l.to_vec()));
        assert_eq!(out, vec![b"tail without newline".to_vec()]);
    }
}
