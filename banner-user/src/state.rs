//! Crash-safe persistence of bans: an append-only log, written per batch and fsync'ed by a
//! thread of its own right after (see [`Syncer`]).
//!
//! Each line is `CRC32(hex) JSON\n`. A crash mid-write can only tear the last line; loading
//! stops trusting the file at the first torn line, truncates it away, and keeps every older
//! record. A corrupt line elsewhere (disk damage) is skipped and reported, never fatal.
//! The log is rewritten (temporary file, fsync, rename, fsync of the directory) when it has
//! grown well past the live state.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::{self, Read as _, Seek as _, SeekFrom, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::{addr::IpPrefix, model::BlockType, scope::PortScope};

const LOG_NAME: &str = "bans.log";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot encode a state record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    Ban(BanRecord),
    Unban { target: IpPrefix, at: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanRecord {
    pub target: IpPrefix,
    pub jail: String,
    pub blocktype: BlockType,
    /// Unix seconds.
    pub banned_at: u64,
    /// Unix seconds; None = permanent.
    pub expires_at: Option<u64>,
    pub count: u32,
    /// The ports the ban covers (`tcp:22 udp:53`); absent: the whole address. Records
    /// written before port scopes existed have none, and mean the whole address.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ports")]
    pub ports: Option<PortScope>,
}

/// A scope in the log as its text form, which reads back to the same scope.
mod ports {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::scope::PortScope;

    pub fn serialize<S: Serializer>(v: &Option<PortScope>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(scope) => s.serialize_str(&scope.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PortScope>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// What loading found besides the records.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Bytes of a torn last record that were cut off.
    pub torn_bytes: u64,
    /// Lines in the middle of the log that failed their checksum or did not parse.
    pub corrupt_lines: usize,
}

/// The ban log of one state directory.
pub struct Store {
    path: PathBuf,
    file: Arc<File>,
    /// Records in the file, to decide when to compact.
    records: usize,
    syncer: Syncer,
}

/// fsync on a thread of its own. A record is written (to the page cache, where a crash of
/// the daemon cannot lose it) before `append` returns, and made durable right after: the
/// core, which writes the kernel map before the log anyway, no longer waits for the disk.
/// Waiting was the tail of detection latency (fdatasync here: 0.3 ms typical, 3.5 ms at
/// worst, paid by the next failure in line). Syncs asked while one runs are served by one
/// more (group commit).
struct Syncer {
    shared: Arc<(Mutex<SyncState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SyncState {
    pending: Option<Arc<File>>,
    stop: bool,
    /// Syncs done (for tests).
    done: u64,
}

impl Syncer {
    fn start(path: PathBuf) -> Self {
        let shared = Arc::new((Mutex::new(SyncState::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("banner-fsync".into())
            .spawn(move || Self::run(&theirs, &path))
            .map_err(|e| log::warn!("no fsync thread ({e}): the ban log is synced in line"))
            .ok();
        Self { shared, thread }
    }

    fn run(shared: &(Mutex<SyncState>, Condvar), path: &Path) {
        let (state, wake) = shared;
        loop {
            let file = {
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(f) = s.pending.take() {
                        break f;
                    }
                    if s.stop {
                        return;
                    }
                    s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            };
            if let Err(e) = file.sync_data() {
                log::warn!("syncing {}: {e}", path.display());
            }
            state.lock().unwrap_or_else(|e| e.into_inner()).done += 1;
        }
    }

    /// Make what was written to `file` so far durable, soon.
    fn sync(&self, file: &Arc<File>) -> io::Result<()> {
        if self.thread.is_none() {
            return file.sync_data();
        }
        let (state, wake) = &*self.shared;
        state.lock().unwrap_or_else(|e| e.into_inner()).pending = Some(Arc::clone(file));
        wake.notify_one();
        Ok(())
    }

    #[cfg(test)]
    fn done(&self) -> u64 {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).done
    }
}

impl Drop for Syncer {
    /// The sync asked last is done before the store goes (on shutdown).
    fn drop(&mut self) {
        let (state, wake) = &*self.shared;
        state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Store {
    /// Open (creating) the log in `dir`, returning the store, its records in order, and what
    /// had to be repaired.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Record>, LoadReport), StateError> {
        fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOG_NAME);
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            // Every ban is in here: root's alone, as `banner list` is.
            .mode(0o600)
            .open(&path)
            .map_err(open_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(open_err)?;
        let (records, good_len, corrupt_lines) = decode(&bytes);
        let report = LoadReport {
            torn_bytes: bytes.len() as u64 - good_len,
            corrupt_lines,
        };
        if report.torn_bytes > 0 {
            file.set_len(good_len).map_err(open_err)?;
            file.seek(SeekFrom::End(0)).map_err(open_err)?;
            file.sync_data().map_err(open_err)?;
        }
        let store = Self {
            syncer: Syncer::start(path.clone()),
            path,
            file: Arc::new(file),
            records: records.len(),
        };
        Ok((store, records, report))
    }

    /// Append `records`: written when this returns, durable a moment later (see [`Syncer`]).
    pub fn append(&mut self, records: &[Record]) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 128);
        for r in records {
            encode_into(&mut buf, r)?;
        }
        let write_err = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        (&*self.file).write_all(&buf).map_err(write_err)?;
        self.syncer.sync(&self.file).map_err(write_err)?;
        self.records += records.len();
        Ok(())
    }

    /// Records in the file now.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Should the log be rewritten, given `live` records would describe the whole state?
    pub fn wants_compaction(&self, live: usize) -> bool {
        self.records > 1024 && self.records > live.saturating_mul(2)
    }

    /// Replace the log with exactly `records`, atomically.
    pub fn rewrite(&mut self, records: &[Record]) -> Result<(), StateError> {
        let tmp = self.path.with_extension("log.tmp");
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Write { path, source }
        };
        let mut buf = Vec::with_capacity(records.len() * 128);
        for r in records {
            encode_into(&mut buf, r)?;
        }
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(write_err(&tmp))?;
            f.write_all(&buf).map_err(write_err(&tmp))?;
            f.sync_all().map_err(write_err(&tmp))?;
        }
        fs::rename(&tmp, &self.path).map_err(write_err(&self.path))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(write_err(dir))?;
        }
        self.file = Arc::new(
            OpenOptions::new()
                .read(true)
                .append(true)
                .open(&self.path)
                .map_err(|source| StateError::Open {
                    path: self.path.clone(),
                    source,
                })?,
        );
        self.records = records.len();
        Ok(())
    }
}

fn encode_into(buf: &mut Vec<u8>, record: &Record) -> Result<(), StateError> {
    let json = serde_json::to_vec(record)?;
    let crc = crc32fast::hash(&json);
    buf.extend_from_slice(format!("{crc:08x} ").as_bytes());
    buf.extend_from_slice(&json);
    buf.push(b'\n');
    Ok(())
}

/// Decode the log: the records, the length of the trusted prefix, and the corrupt middle lines.
/// (Public for the fuzzer: any bytes at all must decode without a panic.)
pub fn decode(bytes: &[u8]) -> (Vec<Record>, u64, usize) {
    let mut records = Vec::new();
    let mut corrupt = 0;
    let mut pos = 0usize;
    let mut good_len = 0u64;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // No newline: the write of this record never finished.
            break;
        };
        let line = &bytes[pos..pos + nl];
        let next = pos + nl + 1;
        match decode_line(line) {
            Some(r) => records.push(r),
            // A bad final line is a torn write; a bad line followed by good ones is damage.
            None if next >= bytes.len() => break,
            None => corrupt += 1,
        }
        pos = next;
        good_len = next as u64;
    }
    (records, good_len, corrupt)
}

fn decode_line(line: &[u8]) -> Option<Record> {
    let (crc_hex, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc_hex).ok()?, 16).ok()?;
    if line.get(8) != Some(&b' ') || crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// The state the log describes: active bans and how often each (jail, target) was banned.
#[derive(Debug, Default)]
pub struct Replayed {
    pub active: HashMap<IpPrefix, BanRecord>,
    /// (jail, target) -> (ban count, last ban time).
    pub history: HashMap<(String, IpPrefix), (u32, u64)>,
}

/// Fold the records into the state they leave behind.
pub fn replay(records: &[Record]) -> Replayed {
    let mut out = Replayed::default();
    for r in records {
        match r {
            Record::Ban(b) => {
                let entry = out
                    .history
                    .entry((b.jail.clone(), b.target))
                    .or_insert((0, 0));
                *entry = (entry.0.max(b.count), b.banned_at);
                out.active.insert(b.target, b.clone());
            }
            Record::Unban { target, .. } => {
                out.active.remove(target);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(target: &str, count: u32) -> Record {
        Record::Ban(BanRecord {
            target: target.parse().unwrap(),
            jail: "sshd".into(),
            blocktype: BlockType::Tarpit,
            banned_at: 1_000,
            expires_at: Some(4_600),
            count,
            ports: None,
        })
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, records, report) = Store::open(dir.path()).unwrap();
            assert!(records.is_empty());
            assert_eq!(report, LoadReport::default());
            store
                .append(&[ban("198.18.0.1", 1), ban("2001:db8::1", 1)])
                .unwrap();
            store
                .append(&[Record::Unban {
                    target: "198.18.0.1".parse().unwrap(),
                    at: 2_000,
                }])
                .unwrap();
        }
        let (store, records, _) = Store::open(dir.path()).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(store.len(), 3);
        let state = replay(&records);
        assert_eq!(state.active.len(), 1);
        assert!(state.active.contains_key(&"2001:db8::1".parse().unwrap()));
        assert_eq!(
            state.history[&("sshd".to_string(), "198.18.0.1".parse().unwrap())],
            (1, 1_000)
        );
    }

    #[test]
    fn appends_are_synced_off_the_caller_and_the_last_before_the_store_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _, _) = Store::open(dir.path()).unwrap();
        assert_eq!(store.syncer.done(), 0);
        store.append(&[ban("198.18.0.1", 1)]).unwrap();
        // Written at once: another reader sees it before any sync.
        let text = fs::read_to_string(dir.path().join(LOG_NAME)).unwrap();
        assert!(text.contains("198.18.0.1"), "{text}");
        let start = std::time::Instant::now();
        while store.syncer.done() == 0 && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(store.syncer.done() >= 1, "the fsync thread never synced");
        // Many appends, few syncs at most one each; the one asked last runs before drop.
        for i in 0..100u8 {
            store.append(&[ban(&format!("198.18.1.{i}"), 1)]).unwrap();
        }
        let shared = Arc::clone(&store.syncer.shared);
        drop(store);
        let s = shared.0.lock().unwrap();
        assert!(s.pending.is_none(), "a sync was left undone");
        assert!(s.done >= 2 && s.done <= 101, "{} syncs", s.done);
    }

    #[test]
    fn a_torn_last_write_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, _, _) = Store::open(dir.path()).unwrap();
            store
                .append(&[ban("198.18.0.1", 1), ban("198.18.0.2", 1)])
                .unwrap();
        }
        // Simulate a crash in the middle of writing a third record.
        let path = dir.path().join(LOG_NAME);
        let mut whole = Vec::new();
        encode_into(&mut whole, &ban("198.18.0.3", 1)).unwrap();
        let torn = &whole[..whole.len() / 2];
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(torn).unwrap();
        drop(f);

        let (mut store, records, report) = Store::open(dir.path()).unwrap();
        assert_eq!(records.len(), 2, "both complete records must survive");
        assert_eq!(report.torn_bytes, torn.len() as u64);
        // Appending after the repair yields a clean log.
        store.append(&[ban("198.18.0.4", 1)]).unwrap();
        drop(store);
        let (_, records, report) = Store::open(dir.path()).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(report, LoadReport::default());
    }

    #[test]
    fn a_torn_line_with_its_newline_is_also_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, _, _) = Store::open(dir.path()).unwrap();
            store.append(&[ban("198.18.0.1", 1)]).unwrap();
        }
        let path = dir.path().join(LOG_NAME);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0000abcd {\"op\":\"ban\"\n").unwrap();
        drop(f);
        let (_, records, report) = Store::open(dir.path()).unwrap();
        assert_eq!(records.len(), 1);
        assert!(report.torn_bytes > 0);
    }

    #[test]
    fn a_damaged_middle_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, _, _) = Store::open(dir.path()).unwrap();
            store
                .append(&[
                    ban("198.18.0.1", 1),
                    ban("198.18.0.2", 1),
                    ban("198.18.0.3", 1),
                ])
                .unwrap();
        }
        let path = dir.path().join(LOG_NAME);
        let mut bytes = fs::read(&path).unwrap();
        // Flip a byte inside the second record's JSON.
        let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 20;
        bytes[second] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let (_, records, report) = Store::open(dir.path()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(report.corrupt_lines, 1);
        assert_eq!(report.torn_bytes, 0);
    }

    #[test]
    fn rewrite_replaces_the_log_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _, _) = Store::open(dir.path()).unwrap();
        store
            .append(&[ban("198.18.0.1", 1), ban("198.18.0.2", 1)])
            .unwrap();
        store.rewrite(&[ban("198.18.0.2", 2)]).unwrap();
        store.append(&[ban("198.18.0.5", 1)]).unwrap();
        assert_eq!(store.len(), 2);
        drop(store);
        let (_, records, _) = Store::open(dir.path()).unwrap();
        assert_eq!(records, vec![ban("198.18.0.2", 2), ban("198.18.0.5", 1)]);
        assert!(!dir.path().join("bans.log.tmp").exists());
    }

    #[test]
    fn replay_keeps_the_highest_ban_count() {
        let state = replay(&[
            ban("198.18.0.1", 1),
            ban("198.18.0.1", 2),
            ban("198.18.0.1", 3),
        ]);
        assert_eq!(
            state.history[&("sshd".to_string(), "198.18.0.1".parse().unwrap())].0,
            3
        );
    }
}
