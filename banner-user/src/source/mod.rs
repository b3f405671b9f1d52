//! The source stage: log lines from files and from journald.
//!
//! Sources run as async tasks. Each one reads lines, runs them through its jail's filter,
//! and hands the failures to the core; it records how far it has read in the shared
//! [`positions::PositionBook`], which the daemon saves so a restart continues where it
//! stopped.

pub mod file;
pub mod journal;
pub mod positions;

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
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// Inside an overlong line, after its first MAX_LINE bytes were emitted.
    skipping: bool,
    /// Lines cut at MAX_LINE.
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
                    } else if self.partial.is_empty() {
                        if head.len() > MAX_LINE {
                            self.truncated += 1;
                            emit(&head[..MAX_LINE]);
                        } else {
                            emit(strip_cr(head));
                        }
                    } else {
                        let room = MAX_LINE - self.partial.len();
                        self.partial
                            .extend_from_slice(&head[..head.len().min(room)]);
                        if head.len() > room {
                            self.truncated += 1;
                        }
                        emit(strip_cr(&self.partial));
                        self.partial.clear();
                    }
                    data = rest;
                }
                None => {
                    if !self.skipping {
                        let room = MAX_LINE - self.partial.len();
                        self.partial
                            .extend_from_slice(&data[..data.len().min(room)]);
                        if data.len() >= room && self.partial.len() == MAX_LINE {
                            // Emit what fits now; drop the rest of this line.
                            self.truncated += 1;
                            emit(&self.partial);
                            self.partial.clear();
                            self.skipping = true;
                        }
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
    }

    /// Forget a partial line (the file was truncated under it).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = false;
    }

    pub fn pending(&self) -> usize {
        self.partial.len()
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
    fn overlong_lines_are_cut_and_counted_and_the_next_line_survives() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let (out, s) = split(&[&long, b"\nnext\n"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1], b"next");
        assert_eq!(s.truncated, 1);
        // The same, with the long line arriving in small pieces.
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in long.chunks(1000) {
            s.push(chunk, &mut |l| out.push(l.len()));
        }
        s.push(b"\nok\n", &mut |l| out.push(l.len()));
        assert_eq!(out, vec![MAX_LINE, 2]);
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
