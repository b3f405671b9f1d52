//! `banner list [--json]`

use std::{path::Path, time::SystemTime};

use std::{fmt::Write as _, io::Write as _};

use super::{
    table::{self, Table},
    CliError, CliResult,
};
use crate::protocol;

/// How long the daemon may take to start answering (a million bans take about a second).
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(socket: &Path, args: ListArgs) -> CliResult {
    if args.json {
        return print_json(socket);
    }
    let now = SystemTime::now();
    let mut table = Table::new(&["IP", "JAIL", "TYPE", "PORTS", "EXPIRES", "HITS", "LAST HIT"]);
    let mut dry_run = false;
    // Each ban goes into the table as it arrives (nothing else of it is kept).
    protocol::list(socket, TIMEOUT, |b| {
        dry_run |= b.dry_run;
        table.cell_with(|t| {
            let _ = write!(t, "{}", b.ip);
        });
        table.cell(&b.jail);
        table.cell_with(|t| {
            let _ = match b.dry_run {
                true => write!(t, "would {}", b.blocktype),
                false => write!(t, "{}", b.blocktype),
            };
        });
        table.cell(b.ports.as_deref().unwrap_or("all"));
        match b.expires_at {
            Some(t) => table.cell(&table::relative(t, now)),
            None => table.cell("permanent"),
        }
        table.cell_with(|t| {
            let _ = write!(t, "{}", b.hits);
        });
        match b.last_seen {
            Some(t) => table.cell(&table::relative(t, now)),
            None => table.cell("-"),
        }
        Ok(())
    })
    .map_err(|e| CliError::failed(e.to_string()))?;
    if table.rows() == 0 {
        println!("no active bans");
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if dry_run {
        writeln!(out, "DRY RUN: nothing is enforced; banner would ban:")
            .map_err(|e| CliError::failed(format!("writing the list: {e}")))?;
    }
    table
        .write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::failed(format!("writing the list: {e}")))
}

/// `--json`: the same pretty array as ever, printed as the bans arrive.
fn print_json(socket: &Path) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut first = true;
    let mut lines = protocol::BanLineWriter::default();
    let mut text = Vec::new();
    protocol::list(socket, TIMEOUT, |b| {
        out.write_all(if first { b"[\n" } else { b",\n" })?;
        first = false;
        text.clear();
        lines.write_pretty(&mut text, &protocol::BanLine::from(&b));
        out.write_all(&text)
    })
    .map_err(|e| CliError::failed(e.to_string()))?;
    let end: &[u8] = if first { b"[]\n" } else { b"\n]\n" };
    out.write_all(end)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::failed(format!("writing the list: {e}")))
}
