//! `banner status [JAIL] [--json]` and `banner reload`. `--json` prints one object:
//! `{"enforcement", "crowdsec", "syslog", "jails"}`.

use std::path::Path;

use super::{request, table, unexpected, CliResult};
use crate::{
    duration::format_duration,
    protocol::{Request, Response},
};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this jail.
    pub jail: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(socket: &Path, args: StatusArgs) -> CliResult {
    let reply = request(
        socket,
        &Request::Status {
            jail: args.jail.clone(),
        },
    )?;
    let Response::Status {
        jails,
        enforcement,
        crowdsec,
        syslog,
        dry_run,
    } = reply
    else {
        return Err(unexpected(&reply));
    };
    if args.json {
        // Everything the table shows: the enforcement, the CrowdSec link and the syslog
        // receiver (null when not configured), and the jails.
        return super::print_json(&serde_json::json!({
            "enforcement": enforcement,
            "crowdsec": crowdsec,
            "syslog": syslog,
            "dry_run": dry_run,
            "jails": jails,
        }));
    }
    // First, so an interface that lost its program is the first thing seen.
    if dry_run {
        println!("DRY RUN: nothing is enforced; the bans counted below are what banner would ban");
    }
    println!("enforcing with {enforcement}");
    if let Some(c) = &crowdsec {
        println!("{}", describe_link(c));
    }
    if let Some(s) = &syslog {
        println!(
            "syslog on {}: {} messages refused (sender not allowed)",
            s.listen.join(", "),
            s.refused
        );
        for (sender, c) in &s.senders {
            println!(
                "  {sender}: {} lines, {} over the rate limit, {} too long, {} malformed",
                c.lines, c.rate_limited, c.truncated, c.malformed
            );
        }
    }
    println!();
    if jails.is_empty() {
        println!("no jails");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = jails
        .iter()
        .map(|j| {
            vec![
                j.name.clone(),
                j.filter.clone(),
                j.lines.to_string(),
                j.failures.to_string(),
                j.bans.to_string(),
                j.banned.to_string(),
                j.tracked.to_string(),
                format!("{} in {}", j.maxretry, format_duration(j.findtime)),
                format!("{} {}", j.bantime, j.blocktype),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "JAIL", "FILTER", "LINES", "FAILURES", "BANS", "BANNED", "TRACKED", "MAXRETRY",
                "BAN"
            ],
            &rows
        )
    );
    let sources: Vec<Vec<String>> = jails
        .iter()
        .flat_map(|j| j.sources.iter())
        .map(|s| {
            let position = match (s.offset, s.size, &s.cursor) {
                (Some(o), Some(size), _) => format!("{o}/{size} bytes"),
                (Some(o), None, _) => format!("{o} bytes"),
                (_, _, Some(c)) => format!("cursor {}", shorten(c)),
                _ => "-".into(),
            };
            vec![
                s.jail.clone(),
                s.kind.clone(),
                s.name.clone(),
                s.lines.to_string(),
                position,
                s.state.clone(),
            ]
        })
        .collect();
    if !sources.is_empty() {
        println!();
        print!(
            "{}",
            table::render(
                &["JAIL", "SOURCE", "NAME", "LINES", "POSITION", "STATE"],
                &sources
            )
        );
    }
    Ok(())
}

fn shorten(cursor: &str) -> String {
    if cursor.len() > 24 {
        format!("{}...", &cursor[..24])
    } else {
        cursor.to_string()
    }
}

/// `banner ping`: one round trip to the daemon.
pub fn ping(socket: &Path) -> CliResult {
    let reply = request(socket, &Request::Ping {})?;
    let Response::Pong = reply else {
        return Err(unexpected(&reply));
    };
    println!("banner daemon at {} answers", socket.display());
    Ok(())
}

pub fn reload(socket: &Path) -> CliResult {
    let reply = request(socket, &Request::Reload {})?;
    let Response::Reloaded { summary } = reply else {
        return Err(unexpected(&reply));
    };
    println!("reloaded: {summary}");
    Ok(())
}

/// The CrowdSec link in a line: its state and what it holds.
fn describe_link(c: &crate::crowdsec::LinkStatus) -> String {
    let mut line = format!(
        "CrowdSec LAPI {}: {}, {} decisions held, {} answers, {} refused, {} allowlisted",
        c.lapi_url, c.state, c.decisions, c.pulls, c.refused, c.allowlisted
    );
    if let Some(why) = &c.why {
        line.push_str(&format!(" ({why})"));
    }
    line
}
