//! The `banner` command line: one module per subcommand, sharing output helpers.

pub mod ban;
pub mod check_config;
pub mod import;
pub mod list;
pub mod stats;
pub mod status;
pub mod table;
pub mod test_filter;
pub mod unban;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::protocol::{self, Request, Response};

/// Exit codes: success, refused/failed, bad usage.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// A CLI failure: the message to print (one line) and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: i32,
    /// For a refused batch: which entry the daemon refused.
    pub index: Option<usize>,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_USAGE,
            index: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_FAILED,
            index: None,
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// Where the daemon listens: --socket, else $BANNER_SOCKET, else the installed config's
/// socket (read alone: the CLI never compiles the daemon's filters), else the default.
pub fn resolve_socket(flag: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    if let Some(p) = std::env::var_os("BANNER_SOCKET") {
        return PathBuf::from(p);
    }
    crate::config::Config::socket_of(Path::new(crate::config::DEFAULT_CONFIG_PATH))
        .unwrap_or_else(|| PathBuf::from("/run/banner/banner.sock"))
}

/// Send a request; daemon-side errors become CLI errors.
pub fn request(socket: &Path, req: &Request) -> Result<Response, CliError> {
    // Bulk bans can take a while to apply and fsync.
    let timeout = Duration::from_secs(300);
    match protocol::call(socket, req, timeout) {
        Ok(Response::Error { message, index }) => Err(CliError {
            index,
            ..CliError::failed(message)
        }),
        Ok(r) => Ok(r),
        Err(e) => Err(CliError::failed(e.to_string())),
    }
}

pub fn unexpected(r: &Response) -> CliError {
    CliError::failed(format!("unexpected reply from the daemon: {r:?}"))
}

/// `--json` output: pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}
