//! `banner unban ADDR[/LEN]... | --all`

use std::path::Path;

use super::{request, unexpected, CliError, CliResult};
use crate::{
    addr::IpPrefix,
    protocol::{Request, Response},
};

#[derive(Debug, clap::Args)]
pub struct UnbanArgs {
    /// Addresses or prefixes to unban.
    #[arg(
        value_name = "ADDR[/LEN]",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub targets: Vec<String>,
    /// Lift every ban (of the jail, with --jail).
    #[arg(long)]
    pub all: bool,
    /// Only bans made by this jail.
    #[arg(long, value_name = "NAME")]
    pub jail: Option<String>,
}

pub fn run(socket: &Path, args: UnbanArgs) -> CliResult {
    let mut targets = Vec::new();
    for t in &args.targets {
        let p = t
            .parse::<IpPrefix>()
            .map_err(|e| CliError::usage(e.to_string()))?;
        targets.push(p);
    }
    let reply = request(
        socket,
        &Request::Unban {
            targets,
            all: args.all,
            jail: args.jail.clone(),
        },
    )?;
    let Response::Unbanned {
        targets,
        not_banned,
        still_covered,
    } = reply
    else {
        return Err(unexpected(&reply));
    };
    if args.all {
        println!("unbanned {} targets", targets.len());
    } else {
        for t in &targets {
            println!("unbanned {t}");
        }
    }
    for t in &not_banned {
        match still_covered.iter().find(|(c, _)| c == t) {
            Some((_, by)) => println!(
                "{t} was not banned itself, but stays blocked by the ban of {by} (unban {by} to lift it)"
            ),
            None => println!("{t} was not banned"),
        }
    }
    // Asked to lift a block that stays in force: say so in the exit code too.
    if !still_covered.is_empty() {
        return Err(CliError::failed(format!(
            "{} of the targets stay blocked by a covering ban",
            still_covered.len()
        )));
    }
    Ok(())
}
