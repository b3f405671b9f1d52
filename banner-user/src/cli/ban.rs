//! `banner ban ADDR[/LEN]... [--for DURATION] [--blocktype drop|tarpit] [--jail NAME] [--file LIST]`

use std::path::{Path, PathBuf};

use super::{request, unexpected, CliError, CliResult};
use crate::{
    addr::IpPrefix,
    clock::rfc3339,
    duration::BanLength,
    model::BlockType,
    protocol::{Outcome, Request, Response},
};

#[derive(Debug, clap::Args)]
pub struct BanArgs {
    /// Addresses or prefixes to ban (198.51.100.7, 198.51.100.0/24, 2001:db8::/64).
    #[arg(value_name = "ADDR[/LEN]")]
    pub targets: Vec<String>,
    /// How long: 90s, 10m, 1h, 1d, 1w, or `permanent` (default: the configured bantime).
    #[arg(long = "for", value_name = "DURATION", allow_hyphen_values = true)]
    pub duration: Option<String>,
    /// drop, or tarpit (hold TCP connections open at the NIC). Default: the configured one.
    #[arg(long, value_name = "TYPE")]
    pub blocktype: Option<String>,
    /// Jail to account the ban to (default: manual).
    #[arg(long, value_name = "NAME")]
    pub jail: Option<String>,
    /// Read addresses from a file, one per line (# comments and blank lines allowed); all are
    /// applied in one batch, or none if any line is bad.
    #[arg(long, value_name = "LIST")]
    pub file: Option<PathBuf>,
}

/// Where a target came from, to point at it in errors.
#[derive(Debug)]
enum Origin {
    Arg,
    Line(usize),
}

pub fn run(socket: &Path, args: BanArgs) -> CliResult {
    // Everything is validated here first, so a mistake never reaches the daemon.
    let duration = match &args.duration {
        Some(d) => Some(BanLength::parse(d).map_err(|e| CliError::usage(format!("--for: {e}")))?),
        None => None,
    };
    let blocktype = match &args.blocktype {
        Some(b) => Some(
            b.parse::<BlockType>()
                .map_err(|e| CliError::usage(format!("--blocktype: {e}")))?,
        ),
        None => None,
    };
    let mut targets: Vec<(IpPrefix, Origin)> = Vec::new();
    for t in &args.targets {
        let p = t
            .parse::<IpPrefix>()
            .map_err(|e| CliError::usage(e.to_string()))?;
        targets.push((p, Origin::Arg));
    }
    let file_name = args.file.as_ref().map(|f| f.display().to_string());
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
        targets.extend(parse_list(&text).map_err(|(line, e)| {
            CliError::usage(format!(
                "{}:{line}: {e}; nothing was banned",
                file.display()
            ))
        })?);
    }
    if targets.is_empty() {
        return Err(CliError::usage(
            "nothing to ban: give ADDR[/LEN] or --file LIST",
        ));
    }
    let req = Request::Ban {
        targets: targets.iter().map(|(p, _)| *p).collect(),
        duration,
        blocktype,
        jail: args.jail.clone(),
        skip_allowlisted: args.file.is_some(),
    };
    let reply = match request(socket, &req) {
        Err(CliError {
            message,
            index: Some(i),
            ..
        }) => {
            let place = match (targets.get(i).map(|t| &t.1), &file_name) {
                (Some(Origin::Line(n)), Some(f)) => format!("{f}:{n}: "),
                _ => String::new(),
            };
            return Err(CliError::failed(format!(
                "{place}{message}; nothing was banned"
            )));
        }
        other => other?,
    };
    let Response::Banned { results, skipped } = reply else {
        return Err(unexpected(&reply));
    };
    for (index, why) in &skipped {
        let place = match (targets.get(*index).map(|t| &t.1), &file_name) {
            (Some(Origin::Line(n)), Some(f)) => format!("{f}:{n}: "),
            _ => String::new(),
        };
        println!("note: {place}skipped: {why}");
    }
    if results.len() > 20 {
        let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
        println!(
            "{} targets: {} banned, {} extended, {} already banned",
            results.len(),
            count(Outcome::Banned),
            count(Outcome::Extended),
            count(Outcome::Unchanged)
        );
    } else {
        for r in &results {
            let until = r.expires_at.map_or("permanently".to_string(), |t| {
                format!("until {}", rfc3339(t))
            });
            match r.outcome {
                Outcome::Unchanged => println!("{} is already banned {until}", r.ip),
                Outcome::Extended => println!("{} ban extended {until}", r.ip),
                Outcome::Banned => println!("banned {} {until}", r.ip),
            }
        }
    }
    for note in results.iter().flat_map(|r| &r.notes) {
        println!("note: {note}");
    }
    Ok(())
}

/// Parse a ban list: one address or prefix per line, `#` comments, blank lines. Returns the
/// 1-based number of the first bad line with its error.
fn parse_list(text: &str) -> Result<Vec<(IpPrefix, Origin)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let p = line
            .parse::<IpPrefix>()
            .map_err(|e| (i + 1, e.to_string()))?;
        out.push((p, Origin::Line(i + 1)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_allow_comments_and_blank_lines() {
        let list = parse_list("# attackers\n198.18.0.1\n\n2001:db8::/64  # a whole /64\n").unwrap();
        assert_eq!(list.len(), 2);
        assert!(matches!(list[1].1, Origin::Line(4)));
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let err = parse_list("198.18.0.1\n198.18.0.2\nbogus\n198.18.0.3\n").unwrap_err();
        assert_eq!(err.0, 3);
        assert!(err.1.contains("`bogus`"), "{}", err.1);
    }
}
