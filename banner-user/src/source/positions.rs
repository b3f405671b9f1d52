//! Where each source stopped reading, kept across restarts (`positions.json` in the state
//! directory, rewritten atomically), and what each source is doing, for `banner status`.

use std::{
    collections::BTreeMap,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "positions.json";

/// A read position in a file, with a fingerprint of the file's first bytes so a different
/// file at the same path (rotation while we were down) is recognised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    pub offset: u64,
    /// How many leading bytes the fingerprint covers (at most 256).
    pub fp_len: u32,
    /// CRC32 of those bytes.
    pub fp: u32,
    pub inode: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Saved {
    File(FilePosition),
    Journal { cursor: String },
}

/// What one source is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceStatus {
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

#[derive(Debug, Default)]
struct Book {
    saved: BTreeMap<String, Saved>,
    status: BTreeMap<String, SourceStatus>,
    dirty: bool,
}

/// Shared by the sources (which write) and the daemon (which saves and reports).
#[derive(Clone, Debug)]
pub struct PositionBook {
    inner: Arc<Mutex<Book>>,
    path: Option<PathBuf>,
}

/// The key of a source: its jail, kind and name.
pub fn key(jail: &str, kind: &str, name: &str) -> String {
    format!("{jail}\u{1f}{kind}:{name}")
}

impl PositionBook {
    /// Load the saved positions of `state_dir` (an unreadable file is reported and treated as
    /// empty: sources then start as on a first run).
    pub fn load(state_dir: &Path) -> (Self, Option<String>) {
        let path = state_dir.join(FILE_NAME);
        let mut warning = None;
        let saved = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warning = Some(format!(
                    "{}: {e}; reading sources as on a first start",
                    path.display()
                ));
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                warning = Some(format!("{}: {e}", path.display()));
                BTreeMap::new()
            }
        };
        let book = Book {
            saved,
            ..Book::default()
        };
        (
            Self {
                inner: Arc::new(Mutex::new(book)),
                path: Some(path),
            },
            warning,
        )
    }

    /// A book that is never saved (tests, benchmarks).
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Book::default())),
            path: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // A panicking source task cannot leave the map half-written: every update is one
        // insert. Keep going with what is there.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Saved> {
        self.lock().saved.get(key).cloned()
    }

    pub fn set(&self, key: &str, saved: Saved) {
        let mut b = self.lock();
        if b.saved.get(key) != Some(&saved) {
            b.saved.insert(key.to_string(), saved);
            b.dirty = true;
        }
    }

    pub fn set_status(&self, key: &str, status: SourceStatus) {
        self.lock().status.insert(key.to_string(), status);
    }

    /// Update a source's status in place.
    pub fn update_status(&self, key: &str, f: impl FnOnce(&mut SourceStatus)) {
        if let Some(s) = self.lock().status.get_mut(key) {
            f(s);
        }
    }

    /// Forget a source for good (its file is gone): position and status.
    pub fn forget(&self, key: &str) {
        let mut b = self.lock();
        if b.saved.remove(key).is_some() {
            b.dirty = true;
        }
        b.status.remove(key);
    }

    pub fn remove_status_of_jail(&self, jail: &str) {
        self.lock().status.retain(|_, s| s.jail != jail);
    }

    pub fn clear_status(&self) {
        self.lock().status.clear();
    }

    pub fn statuses(&self) -> Vec<SourceStatus> {
        self.lock().status.values().cloned().collect()
    }

    /// Write the positions if they changed (temporary file, fsync, rename).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = {
            let mut b = self.lock();
            if !b.dirty {
                return Ok(());
            }
            b.dirty = false;
            serde_json::to_vec_pretty(&b.saved).map_err(std::io::Error::other)?
        };
        let tmp = path.with_extension("json.tmp");
        let result = (|| {
            let mut f = {
                use std::os::unix::fs::OpenOptionsExt as _;
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?
            };
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            self.lock().dirty = true;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_a_reload_of_the_book() {
        let dir = tempfile::tempdir().unwrap();
        let (book, warning) = PositionBook::load(dir.path());
        assert!(warning.is_none());
        let pos = Saved::File(FilePosition {
            offset: 123,
            fp_len: 10,
            fp: 7,
            inode: 99,
        });
        book.set(&key("sshd", "file", "/var/log/auth.log"), pos.clone());
        book.set(
            &key("sshd", "journal", "_SYSTEMD_UNIT=ssh.service"),
            Saved::Journal {
                cursor: "s=abc".into(),
            },
        );
        book.save().unwrap();
        let (again, _) = PositionBook::load(dir.path());
        assert_eq!(
            again.get(&key("sshd", "file", "/var/log/auth.log")),
            Some(pos)
        );
        assert!(matches!(
            again.get(&key("sshd", "journal", "_SYSTEMD_UNIT=ssh.service")),
            Some(Saved::Journal { .. })
        ));
    }

    #[test]
    fn a_damaged_positions_file_is_reported_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let (book, warning) = PositionBook::load(dir.path());
        assert!(warning.unwrap().contains("first start"));
        assert!(book.get("x").is_none());
    }
}
