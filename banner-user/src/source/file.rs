//! Following log files: wake on inotify (with a periodic poll as fallback), survive rotation
//! by rename and by copytruncate, pick up files that appear later, resume after a restart at
//! the saved position when the file is still the same one.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::{self, File},
    io::{self, Read as _, Seek as _, SeekFrom},
    os::unix::fs::{FileExt as _, MetadataExt as _},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use super::{
    positions::{key, FilePosition, PositionBook, Saved, SourceStatus},
    LineSplitter, SourceCounters,
};
use crate::filter::{date::DateCache, Examined, Failure, Filter, Line, LineMeta};

/// Bytes of a file's start that identify it.
const FINGERPRINT_BYTES: usize = 256;
/// Most bytes read from one file before others get a turn, and before its failures go to
/// the core: a poll holds its failures (about 150 bytes each with the line) until then, so
/// 8 MiB of failure lines held 30 MB at once, kept by the allocator after (bench memory),
/// and made the first ban of a large read wait for the whole read.
const READ_BUDGET: u64 = 1 << 20;

/// Follows one path.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    open: Option<OpenFile>,
    splitter: LineSplitter,
    /// The first bytes of the open file, for its fingerprint.
    head: Vec<u8>,
    /// The read buffer, kept: allocating 64 KiB at every poll made glibc consolidate the
    /// small blocks the lines before had freed, 5% of a large read's time.
    buf: Vec<u8>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    dev: u64,
    inode: u64,
    offset: u64,
}

/// What a poll did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The read budget ran out: poll again soon.
    pub more: bool,
    /// The file was replaced (rename rotation) since the last poll.
    pub rotated: bool,
    /// The file shrank under us (copytruncate).
    pub truncated: bool,
}

impl FileFollower {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            open: None,
            splitter: LineSplitter::default(),
            head: Vec::new(),
            buf: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn truncated_lines(&self) -> u64 {
        self.splitter.truncated
    }

    /// Read everything new, handing each complete line to `emit`. `resume` is used the first
    /// time the file is opened, if it still fingerprints as the same file.
    pub fn poll(
        &mut self,
        resume: Option<&FilePosition>,
        emit: &mut impl FnMut(&[u8]),
    ) -> io::Result<Progress> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(64 * 1024, 0);
        let progress = self.poll_into(&mut buf, resume, emit);
        self.buf = buf;
        progress
    }

    fn poll_into(
        &mut self,
        buf: &mut [u8],
        resume: Option<&FilePosition>,
        emit: &mut impl FnMut(&[u8]),
    ) -> io::Result<Progress> {
        let mut progress = Progress::default();
        let mut budget = READ_BUDGET;
        let mut resume = resume;
        // Truncated and written past our offset since the last poll: only the changed first
        // bytes tell. Check before reading, or we would read the new data from the old offset.
        if let Some(open) = self.open.as_mut() {
            if !starts_with(&open.file, &self.head) {
                self.splitter.reset();
                open.file.seek(SeekFrom::Start(0))?;
                open.offset = 0;
                self.head.clear();
                progress.truncated = true;
            }
        }
        loop {
            if let Some(open) = self.open.as_mut() {
                loop {
                    if budget == 0 {
                        progress.more = true;
                        return Ok(progress);
                    }
                    let n = open.file.read(buf)?;
                    if n == 0 {
                        break;
                    }
                    let data = &buf[..n];
                    if (open.offset as usize) < FINGERPRINT_BYTES {
                        let want = FINGERPRINT_BYTES - open.offset as usize;
                        self.head.extend_from_slice(&data[..n.min(want)]);
                    }
                    open.offset += n as u64;
                    budget = budget.saturating_sub(n as u64);
                    self.splitter.push(data, emit);
                }
            }
            // At the end of what we hold: is the path still this file?
            let meta = match fs::metadata(&self.path) {
                Ok(m) => m,
                // Gone (rotated away, not yet recreated): keep the old file open, its writer
                // may still be finishing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(progress),
                Err(e) => return Err(e),
            };
            match self.open.as_mut() {
                None => {
                    self.open_file(&meta, resume.take())?;
                }
                Some(open) if (open.dev, open.inode) != (meta.dev(), meta.ino()) => {
                    // Renamed away and replaced: the old file is drained; a last line without
                    // newline will never be finished.
                    self.splitter.flush(emit);
                    self.open = None;
                    self.head.clear();
                    progress.rotated = true;
                    resume = None;
                }
                Some(open) if meta.len() < open.offset || !starts_with(&open.file, &self.head) => {
                    // Copied and truncated: start over from the top of the same file.
                    self.splitter.reset();
                    open.file.seek(SeekFrom::Start(0))?;
                    open.offset = 0;
                    self.head.clear();
                    progress.truncated = true;
                }
                Some(_) => return Ok(progress),
            }
        }
    }

    fn open_file(&mut self, meta: &fs::Metadata, resume: Option<&FilePosition>) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        // A FIFO or a device never ends and has no position to resume: opening one blocked
        // (FIFO) or read forever (/dev/zero). Check before opening, and again on what opened
        // (the path may have changed in between); O_NONBLOCK so the open itself never waits.
        not_a_log(&self.path, meta)?;
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&self.path)?;
        not_a_log(&self.path, &file.metadata()?)?;
        let mut head = vec![0u8; FINGERPRINT_BYTES.min(meta.len() as usize)];
        let got = file.read_at(&mut head, 0)?;
        head.truncate(got);
        let offset = match resume {
            Some(p)
                if p.offset <= meta.len()
                    && head.len() >= p.fp_len as usize
                    && crc32fast::hash(&head[..p.fp_len as usize]) == p.fp =>
            {
                p.offset
            }
            _ => 0,
        };
        file.seek(SeekFrom::Start(offset))?;
        head.truncate(offset.min(FINGERPRINT_BYTES as u64) as usize);
        self.head = head;
        self.splitter.reset();
        self.open = Some(OpenFile {
            file,
            dev: meta.dev(),
            inode: meta.ino(),
            offset,
        });
        Ok(())
    }

    /// Where a restart should continue: after the last complete line handed out.
    pub fn position(&self) -> Option<FilePosition> {
        let open = self.open.as_ref()?;
        let offset = open.offset - self.splitter.pending() as u64;
        let fp_len = self.head.len().min(offset as usize);
        Some(FilePosition {
            offset,
            fp_len: fp_len as u32,
            fp: crc32fast::hash(&self.head[..fp_len]),
            inode: open.inode,
        })
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The open file has no name left (deleted, not renamed by a rotation).
    pub fn deleted(&self) -> bool {
        self.open
            .as_ref()
            .and_then(|o| o.file.metadata().ok())
            .is_some_and(|m| m.nlink() == 0)
    }

    /// Let go of the file (it was deleted and is drained): its descriptor, and with it the
    /// disk space, are freed.
    pub fn close(&mut self) {
        self.open = None;
        self.head.clear();
        self.splitter.reset();
    }
}

/// An error for anything but a regular file.
fn not_a_log(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if meta.file_type().is_file() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{} is not a regular file (FIFOs, devices and sockets are not followed; point logpath at the file your syslog writes)",
        path.display()
    )))
}

/// Does the file still begin with `head`? A copytruncate followed by fast writing can leave
/// the file longer than our offset; its changed first bytes still give it away.
fn starts_with(file: &File, head: &[u8]) -> bool {
    if head.is_empty() {
        return true;
    }
    let mut now = vec![0u8; head.len()];
    matches!(file.read_at(&mut now, 0), Ok(n) if n == head.len() && now == head)
}

/// Expand a path whose components may hold `*`, `?` and `[...]` wildcards, in sorted order.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    if !has_wildcard(pattern) {
        return vec![PathBuf::from(pattern)];
    }
    let mut found: Vec<PathBuf> = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    }];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for base in &found {
            if has_wildcard(part) {
                let Ok(entries) = fs::read_dir(base) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| {
                        wildcard_match(part, n) && (!n.starts_with('.') || part.starts_with('.'))
                    })
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                next.push(base.join(part));
            }
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found
}

pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell-style match of one path component.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else {
                    return false;
                };
                let mut set = &p[1..close];
                let negate = matches!(set.first(), Some('!' | '^'));
                if negate {
                    set = &set[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[close + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Where failures go: returns false when the receiver is gone (the daemon is stopping).
pub type FailureSink = Arc<dyn Fn(&str, Vec<Failure>) -> bool + Send + Sync>;

/// Everything a source task needs.
#[derive(Clone)]
pub struct SourceContext {
    pub jail: String,
    pub filter: Arc<Filter>,
    pub sink: FailureSink,
    pub book: PositionBook,
    pub counters: Arc<SourceCounters>,
}

impl SourceContext {
    /// The context for one more source of the jail: the same patterns, with state of its
    /// own. A filter remembers what one stream of lines said (a connection's earlier lines,
    /// the last date seen), and two sources never interleave their streams in it, nor wait
    /// for each other on it when the runtime runs them on two cores.
    pub fn for_another_source(&self) -> Self {
        Self {
            filter: Arc::new(Filter::clone(&self.filter)),
            ..self.clone()
        }
    }

    /// Run one line through the filter; count; collect its failures.
    pub fn examine_line(
        &self,
        raw: &[u8],
        meta: &LineMeta,
        cache: &mut DateCache,
        out: &mut Vec<Failure>,
    ) {
        // Checked once, here; the filter reads the text it is given.
        let line = Line::from(raw);
        if line.text.is_none() {
            // Judged all the same (filters work on bytes); counted for `banner status`.
            SourceCounters::add(&self.counters.invalid_utf8, 1);
        }
        match self.filter.examine(line, meta, cache) {
            Examined::Failure(mut f) => {
                SourceCounters::add(&self.counters.failure_lines, 1);
                f.line = Some(crate::filter::evidence(line));
                out.push(f);
            }
            Examined::Failures(v) => {
                SourceCounters::add(&self.counters.failure_lines, 1);
                let line = crate::filter::evidence(line);
                out.extend(v.into_iter().map(|mut f| {
                    f.line = Some(line.clone());
                    f
                }));
            }
            Examined::BadHost(h) => {
                SourceCounters::add(&self.counters.bad_host, 1);
                log::debug!(
                    "[{}] matched a failure but `{h}` is no address; not banned",
                    self.jail
                );
            }
            Examined::Ignored => SourceCounters::add(&self.counters.ignored, 1),
            Examined::NoMatch | Examined::Foreign => {}
        }
    }
}

/// Poll interval when nothing wakes us (inotify missing, or files on a filesystem it does not
/// see into); also how often globs are re-expanded.
const POLL: Duration = Duration::from_secs(1);

/// Follow every file matching `patterns` for one jail until the task is aborted.
pub async fn follow(patterns: Vec<String>, ctx: SourceContext) {
    let mut followers: BTreeMap<PathBuf, FileFollower> = BTreeMap::new();
    let mut cache = DateCache::default();
    let mut watcher = Watcher::new();
    let mut last_expand: Option<Instant> = None;
    loop {
        if last_expand.is_none_or(|t| t.elapsed() >= POLL) {
            for pattern in &patterns {
                let paths = expand(pattern);
                for p in &paths {
                    followers
                        .entry(p.clone())
                        .or_insert_with(|| FileFollower::new(p.clone()));
                }
                watcher.watch_parent_of(Path::new(pattern));
            }
            last_expand = Some(Instant::now());
        }
        // File reads (and hostname lookups, with usedns) block: tell the runtime, so the
        // control socket, signals and other sources run on its other threads meanwhile.
        let more = tokio::task::block_in_place(|| {
            let mut more = false;
            let mut drained_and_gone = Vec::new();
            for (path, follower) in followers.iter_mut() {
                let (again, lines) = poll_one(path, follower, &ctx, &mut cache);
                more |= again;
                if !again && lines == 0 && follower.is_open() && !path.exists() {
                    drained_and_gone.push(path.clone());
                }
            }
            // A deleted file that has nothing more to give is let go: kept open, it held
            // its disk space and a descriptor forever (glob sources leaked one per file).
            for path in drained_and_gone {
                let fixed = patterns.iter().any(|p| Path::new(p) == path);
                if fixed {
                    // The configured path itself: keep following it, for when it comes back.
                    // Only a deleted file is let go; one renamed by a rotation may still get
                    // its writer's last lines.
                    if let Some(f) = followers.get_mut(&path).filter(|f| f.deleted()) {
                        f.close();
                    }
                } else {
                    followers.remove(&path);
                    ctx.book
                        .forget(&key(&ctx.jail, "file", &path.display().to_string()));
                }
            }
            more
        });
        if more {
            tokio::task::yield_now().await;
            continue;
        }
        watcher.wait(POLL).await;
    }
}

/// Poll one follower; report failures, save position and status. Returns "more to read" and
/// the lines read.
fn poll_one(
    path: &Path,
    f: &mut FileFollower,
    ctx: &SourceContext,
    cache: &mut DateCache,
) -> (bool, u64) {
    let name = path.display().to_string();
    let k = key(&ctx.jail, "file", &name);
    let resume = match ctx.book.get(&k) {
        Some(Saved::File(p)) => Some(p),
        _ => None,
    };
    let truncated_before = f.truncated_lines();
    let meta = LineMeta::arrived(SystemTime::now());
    let mut failures = Vec::new();
    let mut lines = 0u64;
    let result = f.poll(resume.as_ref(), &mut |l| {
        lines += 1;
        ctx.examine_line(l, &meta, cache, &mut failures);
    });
    SourceCounters::add(&ctx.counters.lines, lines);
    SourceCounters::add(
        &ctx.counters.truncated,
        f.truncated_lines() - truncated_before,
    );
    let state = match &result {
        Ok(p) if p.rotated => {
            log::info!("[{}] {name} was rotated; following the new file", ctx.jail);
            "following".to_string()
        }
        Ok(p) if p.truncated => {
            log::info!(
                "[{}] {name} was truncated; reading it from the start",
                ctx.jail
            );
            "following".to_string()
        }
        Ok(_) if f.is_open() => "following".to_string(),
        Ok(_) => "waiting for the file to appear".to_string(),
        Err(e) => {
            SourceCounters::add(&ctx.counters.errors, 1);
            format!("error: {e}")
        }
    };
    if !failures.is_empty() && !(ctx.sink)(&ctx.jail, failures) {
        // The daemon is stopping: do not record a position past lines it never got.
        return (false, lines);
    }
    if let Some(pos) = f.position() {
        ctx.book.set(&k, Saved::File(pos.clone()));
    }
    let size = fs::metadata(path).ok().map(|m| m.len());
    let offset = f.position().map(|p| p.offset);
    let added = lines;
    let mut known = false;
    ctx.book.update_status(&k, |s| {
        known = true;
        s.state = state.clone();
        s.lines += added;
        s.offset = offset;
        s.size = size;
    });
    if !known {
        ctx.book.set_status(
            &k,
            SourceStatus {
                jail: ctx.jail.clone(),
                kind: "file".into(),
                name,
                state,
                lines: added,
                offset,
                size,
                cursor: None,
            },
        );
    }
    (result.is_ok_and(|p| p.more), lines)
}

/// inotify on the directories of the followed files; any event there wakes the follower.
struct Watcher {
    inotify: Option<tokio::io::unix::AsyncFd<inotify::Inotify>>,
    dirs: BTreeSet<PathBuf>,
}

impl Watcher {
    fn new() -> Self {
        let inotify = inotify::Inotify::init()
            .map_err(|e| log::warn!("inotify unavailable ({e}); polling log files every second"))
            .ok()
            .and_then(|i| {
                // SAFETY: the Inotify instance owns its descriptor and keeps it open, unchanged,
                // until it is dropped, which happens only with the AsyncFd that owns it.
                unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        i,
                        tokio::io::Interest::READABLE,
                    )
                }
                .ok()
            });
        Self {
            inotify,
            dirs: BTreeSet::new(),
        }
    }

    /// Watch the directory the pattern's files live in (its last fixed ancestor).
    fn watch_parent_of(&mut self, pattern: &Path) {
        let Some(inotify) = self.inotify.as_mut() else {
            return;
        };
        let dir = pattern
            .ancestors()
            .skip(1)
            .find(|d| !has_wildcard(&d.to_string_lossy()))
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        if self.dirs.contains(&dir) || !dir.is_dir() {
            return;
        }
        use inotify::WatchMask;
        let mask = WatchMask::MODIFY
            | WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE
            | WatchMask::CLOSE_WRITE
            | WatchMask::ATTRIB;
        match inotify.get_mut().watches().add(&dir, mask) {
            Ok(_) => {
                self.dirs.insert(dir);
            }
            Err(e) => log::warn!("cannot watch {}: {e}; polling it", dir.display()),
        }
    }

    /// Wait for an event in a watched directory, or `limit`.
    async fn wait(&mut self, limit: Duration) {
        let Some(inotify) = self.inotify.as_mut() else {
            tokio::time::sleep(limit).await;
            return;
        };
        let woke = tokio::time::timeout(limit, inotify.readable_mut()).await;
        if let Ok(Ok(mut guard)) = woke {
            let mut buf = [0u8; 4096];
            // Drain: we only need to know that something happened.
            loop {
                match guard.get_inner_mut().read_events(&mut buf) {
                    Ok(events) => {
                        if events.count() == 0 {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A second source of a jail judges its own stream: a connection's earlier line read by
    /// one source does not complete a failure in the other (nor do they share a lock).
    #[test]
    fn another_source_of_a_jail_keeps_its_own_connections() {
        let first = SourceContext {
            jail: "sshd".into(),
            filter: Arc::new(Filter::builtin("sshd", "normal", false).unwrap()),
            sink: Arc::new(|_: &str, _| true),
            book: PositionBook::in_memory(),
            counters: Arc::new(SourceCounters::default()),
        };
        let second = first.for_another_source();
        assert!(!Arc::ptr_eq(&first.filter, &second.filter));
        let meta = LineMeta::arrived(std::time::UNIX_EPOCH + Duration::from_secs(1_795_694_400));
        let pam = b"Nov 26 01:02:05 gw sshd[101]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.18.0.13  user=root";
        let end = b"Nov 26 01:02:06 gw sshd[101]: Disconnecting: Too many authentication failures for root [preauth]";
        let judge = |ctx: &SourceContext, line: &[u8]| {
            let mut out = Vec::new();
            ctx.examine_line(line, &meta, &mut DateCache::default(), &mut out);
            out.iter().map(|f| f.addr.to_string()).collect::<Vec<_>>()
        };
        assert!(judge(&first, pam).is_empty());
        // The other source never saw the PAM line: its disconnect names no one.
        assert!(judge(&second, end).is_empty());
        // The source that saw it does.
        assert_eq!(judge(&first, end), ["198.18.0.13"]);
    }

    fn lines(f: &mut FileFollower, resume: Option<&FilePosition>) -> (Vec<String>, Progress) {
        let mut out = Vec::new();
        let p = f
            .poll(resume, &mut |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            })
            .unwrap();
        (out, p)
    }

    fn truncate(path: &Path) {
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn new_lines_are_read_once_and_a_partial_line_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log");
        append(&path, "one\ntwo\nthr");
        let mut f = FileFollower::new(&path);
        assert_eq!(lines(&mut f, None).0, vec!["one", "two"]);
        assert!(lines(&mut f, None).0.is_empty());
        append(&path, "ee\nfour\n");
        assert_eq!(lines(&mut f, None).0, vec!["three", "four"]);
    }

    #[test]
    fn rotation_by_rename_loses_nothing_and_repeats_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log");
        append(&path, "a\n");
        let mut f = FileFollower::new(&path);
        assert_eq!(lines(&mut f, None).0, vec!["a"]);
        // The writer adds a line, the file is renamed, the writer finishes a last line in the
        // old file, and a new file starts.
        append(&path, "b\n");
        fs::rename(&path, dir.path().join("auth.log.1")).unwrap();
        append(&dir.path().join("auth.log.1"), "c");
        append(&path, "d\n");
        let (got, p) = lines(&mut f, None);
        assert!(p.rotated);
        assert_eq!(got, vec!["b", "c", "d"]);
        assert!(lines(&mut f, None).0.is_empty());
    }

    #[test]
    fn copytruncate_restarts_from_the_top() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log");
        append(&path, "a\nb\n");
        let mut f = FileFollower::new(&path);
        assert_eq!(lines(&mut f, None).0.len(), 2);
        fs::copy(&path, dir.path().join("auth.log.1")).unwrap();
        truncate(&path);
        append(&path, "c\n");
        let (got, p) = lines(&mut f, None);
        assert!(p.truncated);
        assert_eq!(got, vec!["c"]);
        // Truncated and refilled past our offset before we looked: the new first bytes tell.
        truncate(&path);
        append(&path, "xxxxxxxx\nyy\n");
        let (got, p) = lines(&mut f, None);
        assert!(p.truncated);
        assert_eq!(got, vec!["xxxxxxxx", "yy"]);
    }

    #[test]
    fn a_file_that_appears_later_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.log");
        let mut f = FileFollower::new(&path);
        assert!(lines(&mut f, None).0.is_empty());
        assert!(!f.is_open());
        append(&path, "x\n");
        assert_eq!(lines(&mut f, None).0, vec!["x"]);
    }

    #[test]
    fn a_restart_resumes_at_the_saved_position_of_the_same_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log");
        append(&path, "one\ntwo\npart");
        let mut f = FileFollower::new(&path);
        lines(&mut f, None);
        let pos = f.position().unwrap();
        assert_eq!(pos.offset, 8, "the partial line is re-read after a restart");
        append(&path, "ial\nthree\n");
        // Restart: a new follower with the saved position.
        let mut g = FileFollower::new(&path);
        assert_eq!(lines(&mut g, Some(&pos)).0, vec!["partial", "three"]);
        // The file was replaced while we were down: read the new one from the start.
        fs::remove_file(&path).unwrap();
        append(&path, "other file\n");
        let mut h = FileFollower::new(&path);
        assert_eq!(lines(&mut h, Some(&pos)).0, vec!["other file"]);
    }

    #[test]
    fn globs_expand_to_matching_files_only() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a.log", "b.log", "c.txt", ".hidden.log"] {
            append(&dir.path().join(n), "x\n");
        }
        fs::create_dir(dir.path().join("sub")).unwrap();
        append(&dir.path().join("sub/d.log"), "x\n");
        let pattern = format!("{}/*.log", dir.path().display());
        let got: Vec<String> = expand(&pattern)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, vec!["a.log", "b.log"]);
        let deep = format!("{}/s*/[a-d].log", dir.path().display());
        assert_eq!(expand(&deep).len(), 1);
        assert!(wildcard_match("auth.log.[!0-9]", "auth.log.x"));
        assert!(!wildcard_match("auth.log.[!0-9]", "auth.log.1"));
        assert!(wildcard_match("a?c*", "abcdef"));
        assert!(!wildcard_match("a?c", "ac"));
    }
}
