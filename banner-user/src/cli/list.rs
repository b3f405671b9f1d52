//! `banner list [--json]`

use std::{path::Path, time::SystemTime};

use std::io::Write as _;

use super::{table, CliError, CliResult};
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
    let mut bans = Vec::new();
    protocol::list(socket, TIMEOUT, |b| {
        bans.push(b);
        Ok(())
    })
    .map_err(|e| CliError::failed(e.to_string()))?;
    if bans.is_empty() {
        println!("no active bans");
        return Ok(());
    }
    if bans.iter().any(|b| b.dry_run) {
        println!("DRY RUN: nothing is enforced; banner would ban:");
    }
    let now = SystemTime::now();
    let when = |t: Option<SystemTime>| t.map_or_else(|| "-".into(), |t| table::relative(t, now));
    let rows: Vec<Vec<String>> = bans
        .iter()
        .map(|b| {
            vec![
                b.ip.to_string(),
                b.jail.clone(),
                if b.dry_run {
                    format!("would {}", b.blocktype)
                } else {
                    b.blocktype.to_string()
                },
                b.ports.clone().unwrap_or_else(|| "all".into()),
                b.expires_at
                    .map_or("permanent".to_string(), |t| when(Some(t))),
                b.hits.to_string(),
                when(b.last_seen),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["IP", "JAIL", "TYPE", "PORTS", "EXPIRES", "HITS", "LAST HIT"],
            &rows
        )
    );
    Ok(())
}

/// `--json`: the same pretty array as ever, printed as the bans arrive.
fn print_json(socket: &Path) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut first = true;
    protocol::list(socket, TIMEOUT, |b| {
        out.write_all(if first { b"[\n" } else { b",\n" })?;
        first = false;
        let text = serde_json::to_string_pretty(&b).map_err(std::io::Error::other)?;
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                out.write_all(b"\n")?;
            }
            write!(out, "  {line}")?;
        }
        Ok(())
    })
    .map_err(|e| CliError::failed(e.to_string()))?;
    let end: &[u8] = if first { b"[]\n" } else { b"\n]\n" };
    out.write_all(end)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::failed(format!("writing the list: {e}")))
}
