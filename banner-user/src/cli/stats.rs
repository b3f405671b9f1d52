//! `banner stats [--json]`

use std::path::Path;

use super::{request, table, unexpected, CliResult};
use banner_common::counter;

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
    let mut rows = vec![
        row("backend", stats.backend.clone()),
        row("active bans", stats.bans_active.to_string()),
    ];
    // Every counter of the contract, whatever this banner's backend counts.
    for (name, label) in counter::NAMES.iter().zip(counter::LABELS) {
        let value = stats.packets.get(*name).copied().unwrap_or(0);
        rows.push(row(label, value.to_string()));
    }
    for (label, value) in [
        ("bans made", stats.bans_total),
        ("unbans", stats.unbans_total),
        ("bans expired", stats.expired_total),
        ("refused: allowlisted", stats.refused_allowlisted),
        ("refused: map full", stats.refused_full),
        ("backend errors", stats.backend_errors),
    ] {
        rows.push(row(label, value.to_string()));
    }
    print!("{}", table::render(&["STAT", "VALUE"], &rows));
    Ok(())
}

fn row(label: &str, value: String) -> Vec<String> {
    vec![label.to_string(), value]
}
