//! `banner stats [--json]`

use std::path::Path;

use super::{request, table, unexpected, CliResult};
use crate::protocol::{Request, Response};

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(socket: &Path, args: StatsArgs) -> CliResult {
    let reply = request(socket, &Request::Stats {})?;
    let Response::Stats { stats } = reply else {
        return Err(unexpected(&reply));
    };
    if args.json {
        return super::print_json(&stats);
    }
    let rows: Vec<Vec<String>> = [
        ("backend", stats.backend.clone()),
        ("active bans", stats.bans_active.to_string()),
        ("packets passed", stats.passed.to_string()),
        ("packets dropped", stats.dropped.to_string()),
        ("packets tarpitted", stats.tarpitted.to_string()),
        ("allowlisted hits", stats.allowlisted.to_string()),
        ("expired-ban hits", stats.expired.to_string()),
        ("frames not parsed", stats.unparsed.to_string()),
        ("aborted", stats.aborted.to_string()),
        ("bans made", stats.bans_total.to_string()),
        ("unbans", stats.unbans_total.to_string()),
        ("bans expired", stats.expired_total.to_string()),
        (
            "refused: allowlisted",
            stats.refused_allowlisted.to_string(),
        ),
        ("refused: map full", stats.refused_full.to_string()),
        ("backend errors", stats.backend_errors.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| vec![k.to_string(), v])
    .collect();
    print!("{}", table::render(&["STAT", "VALUE"], &rows));
    Ok(())
}
