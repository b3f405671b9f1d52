//! What a configuration names on disk: log paths.

use super::*;
/// A log path may be missing (it is watched for, and a warning says so) but must be a
/// readable regular file (or FIFO) if it exists. Opening never blocks: a FIFO is opened
/// non-blocking, a device is refused before any open.
pub(super) fn check_logpath(p: &str) -> Result<Option<String>, String> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    if !p.starts_with('/') {
        return Err(format!("logpath `{p}` must be absolute"));
    }
    let paths: Vec<PathBuf> = crate::source::file::expand(p)
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    if paths.is_empty() {
        return Ok(Some(format!(
            "logpath {p} does not exist (yet); banner reads it once it appears"
        )));
    }
    for path in paths {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(format!("logpath {} is a directory", path.display()));
        }
        if !kind.is_file() {
            let what = if kind.is_fifo() {
                "a FIFO"
            } else {
                "a device or socket"
            };
            return Err(format!(
                "logpath {} is {what}, not a regular file: banner follows the file your syslog writes",
                path.display()
            ));
        }
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| format!("logpath {} cannot be read: {e}", path.display()))?;
    }
    Ok(None)
}
