//! `banner check-config [FILE] [--dump]`: validate a configuration without starting anything.

use std::path::PathBuf;

use super::{CliError, CliResult};
use crate::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The file to check (default: /etc/banner/banner.toml, or the embedded default if absent).
    pub file: Option<PathBuf>,
    /// Print the effective configuration: the file layered over the embedded default.
    #[arg(long)]
    pub dump: bool,
}

pub fn run(args: CheckConfigArgs) -> CliResult {
    let path = args
        .file
        .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()));
    let cfg = match &path {
        Some(p) => Config::load(p),
        None => Config::embedded(),
    }
    // Every mistake, one per line, each file:line:column.
    .map_err(|e| CliError::failed(e.to_string()))?;
    for w in &cfg.warnings {
        eprintln!("banner: warning: {w}");
    }
    if args.dump {
        print!("{}", cfg.dump());
    } else {
        println!("{}: OK", cfg.origin);
    }
    Ok(())
}
