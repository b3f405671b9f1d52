//! `banner list [--json]`

use std::{path::Path, time::SystemTime};

use super::{request, table, unexpected, CliResult};
use crate::protocol::{Request, Response};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(socket: &Path, args: ListArgs) -> CliResult {
    let reply = request(socket, &Request::List {})?;
    let Response::List { bans } = reply else {
        return Err(unexpected(&reply));
    };
    if args.json {
        return super::print_json(&bans);
    }
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
