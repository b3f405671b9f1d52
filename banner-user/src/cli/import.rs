//! `banner import fail2ban [DIR] [-o FILE]`: a fail2ban setup as a banner.toml.

use std::path::PathBuf;

use super::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// What to import from (only `fail2ban` so far).
    #[arg(value_parser = ["fail2ban"])]
    pub from: String,
    /// fail2ban's configuration directory.
    #[arg(default_value = "/etc/fail2ban")]
    pub dir: PathBuf,
    /// Write the configuration here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: ImportArgs) -> CliResult {
    let imported =
        crate::import::fail2ban(&args.dir).map_err(|e| CliError::failed(e.to_string()))?;
    // Check what was written reads back, so a user never installs a config banner refuses.
    crate::config::Config::parse(&imported.toml, "the imported configuration").map_err(|e| {
        CliError::failed(format!(
            "the imported configuration does not check out (a bug in import): {e}"
        ))
    })?;
    for note in &imported.notes {
        eprintln!("banner: not carried over: {note}");
    }
    match &args.output {
        Some(path) => std::fs::write(path, &imported.toml)
            .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?,
        None => print!("{}", imported.toml),
    }
    Ok(())
}
