//! The control protocol's adapter (fail2ban's Transmitter): turns a [`Request`] into the
//! core's typed commands and what they return into a [`Response`]. The only module of the
//! daemon that knows the wire format.

use super::core::{Core, ManualBan, Refused};
use crate::{
    bans::{BanOutcome, BanView},
    protocol::{
        BanInfo, BanLine, BanResult, JailStatus, Outcome, Request, Response, SourceInfo, Stats,
    },
    source::{positions::SourceStatus, SourceCounters},
};

/// Answer one request on the core (Reload is the supervisor's, which restarts sources).
pub fn answer(core: &mut Core, request: Request) -> Response {
    match request {
        Request::Ping {} => Response::Pong,
        Request::Ban {
            targets,
            duration,
            blocktype,
            jail,
            skip_allowlisted,
        } => ban(
            core,
            ManualBan {
                targets,
                length: duration,
                blocktype,
                jail,
                skip_allowlisted,
            },
        ),
        Request::Unban { targets, all, jail } => unban(core, &targets, all, jail.as_deref()),
        // A streamed list is written by the connection itself (`list_for_stream`).
        Request::List { .. } => match core.list() {
            Ok(views) => {
                let dry_run = !core.manager().enforces();
                Response::List {
                    bans: views.iter().map(|v| ban_info(v, dry_run)).collect(),
                }
            }
            Err(e) => Response::error(e.to_string()),
        },
        Request::Stats {} => match core.counters() {
            Ok(c) => {
                let m = core.manager();
                let s = m.stats();
                Response::Stats {
                    stats: Stats {
                        backend: m.backend_name(),
                        packets: c.named().map(|(n, v)| (n.to_string(), v)).collect(),
                        bans_active: m.active_count() as u64,
                        bans_total: s.bans_total,
                        unbans_total: s.unbans_total,
                        expired_total: s.expired_total,
                        refused_allowlisted: s.refused_allowlisted,
                        refused_full: s.refused_full,
                        backend_errors: s.backend_errors,
                    },
                }
            }
            Err(e) => Response::error(e.to_string()),
        },
        Request::Status { jail } => status(core, jail.as_deref()),
        Request::Reload {} => Response::error("reload is handled by the daemon's supervisor"),
    }
}

fn refused(r: Refused) -> Response {
    Response::Error {
        message: r.message,
        index: r.index,
    }
}

/// The bans for a streamed list, and whether they are a dry run's: the core only copies
/// them; the connection encodes and writes them off the core.
pub fn list_for_stream(core: &mut Core) -> Result<(Vec<BanView>, bool), String> {
    let views = core.list().map_err(|e| e.to_string())?;
    Ok((views, !core.manager().enforces()))
}

pub fn ban_info(v: &BanView, dry_run: bool) -> BanInfo {
    let ports = v.ban.scope.as_ref().map(ToString::to_string);
    BanInfo::from(&ban_line(v, ports.as_deref(), dry_run))
}

/// [`ban_info`] borrowed, for the streamed list (`ports`: the ban's scope as text).
pub fn ban_line<'a>(v: &'a BanView, ports: Option<&'a str>, dry_run: bool) -> BanLine<'a> {
    BanLine {
        ip: v.ban.target,
        jail: v.ban.jail.as_str(),
        blocktype: v.ban.blocktype,
        banned_at: v.ban.banned_at,
        expires_at: v.ban.expires_at,
        dropped: v.hits.dropped,
        tarpitted: v.hits.tarpitted,
        last_seen: v.hits.last_seen,
        count: v.ban.count,
        ports,
        dry_run,
    }
}

fn ban(core: &mut Core, cmd: ManualBan) -> Response {
    let done = match core.ban_by_hand(cmd) {
        Ok(done) => done,
        Err(r) => return refused(r),
    };
    let allow = core.manager().ignore_list();
    let results = done
        .outcomes
        .iter()
        .map(|o| {
            let b = o.ban();
            BanResult {
                ip: b.target,
                outcome: match o {
                    BanOutcome::New(_) => Outcome::Banned,
                    BanOutcome::Extended(_) => Outcome::Extended,
                    BanOutcome::Unchanged(_) => Outcome::Unchanged,
                },
                expires_at: b.expires_at,
                notes: allow
                    .inside(&b.target)
                    .map(|e| format!("{} ({}) inside stays allowed", e.net, e.why))
                    .collect(),
            }
        })
        .collect();
    Response::Banned {
        results,
        skipped: done.skipped,
    }
}

fn unban(
    core: &mut Core,
    targets: &[crate::addr::IpPrefix],
    all: bool,
    jail: Option<&str>,
) -> Response {
    if all {
        return match core.unban_all(jail) {
            Ok(lifted) => Response::Unbanned {
                targets: lifted.iter().map(|b| b.target).collect(),
                not_banned: Vec::new(),
                still_covered: Vec::new(),
            },
            Err(r) => refused(r),
        };
    }
    let done = match core.unban_by_hand(targets, jail) {
        Ok(done) => done,
        Err(r) => return refused(r),
    };
    // An address inside a banned prefix stays blocked: name the prefix rather than let
    // "was not banned" suggest the address now passes.
    let still_covered = done
        .not_banned
        .iter()
        .filter_map(|&t| {
            core.manager()
                .active()
                .filter(|b| b.target != t && b.target.contains(&t))
                .max_by_key(|b| b.target.prefix_len())
                .map(|b| (t, b.target))
        })
        .collect();
    Response::Unbanned {
        targets: done.lifted.iter().map(|b| b.target).collect(),
        not_banned: done.not_banned,
        still_covered,
    }
}

fn source_info(s: SourceStatus) -> SourceInfo {
    SourceInfo {
        jail: s.jail,
        kind: s.kind,
        name: s.name,
        state: s.state,
        lines: s.lines,
        offset: s.offset,
        size: s.size,
        cursor: s.cursor,
    }
}

fn status(core: &Core, only: Option<&str>) -> Response {
    let sources = core.sources();
    let jails: Vec<JailStatus> = core
        .jails()
        .into_iter()
        .filter(|j| only.is_none_or(|o| o == j.name))
        .map(|j| {
            let counter = |f: fn(&SourceCounters) -> &std::sync::atomic::AtomicU64| {
                j.counters.map_or(0, |c| SourceCounters::get(f(c)))
            };
            // A jail that reads no log (recidive) counts the bans it is fed as its lines.
            let failure_lines = match j.counters {
                Some(c) => SourceCounters::get(&c.failure_lines),
                None => j.stats.failures,
            };
            JailStatus {
                name: j.name.to_string(),
                filter: j.filter.to_string(),
                bantime: j.policy.bantime,
                findtime: j.policy.findtime,
                maxretry: j.policy.maxretry,
                blocktype: j.policy.blocktype,
                lines: counter(|c| &c.lines),
                failure_lines,
                failures: j.stats.failures,
                bans: j.stats.bans,
                banned: core
                    .manager()
                    .active_of(&crate::model::JailId::named(j.name)) as u64,
                tracked: j.tracked as u64,
                evicted: j.stats.evicted,
                too_old: j.stats.too_old,
                folded: j.stats.folded,
                ignored: j.ignored + counter(|c| &c.ignored),
                bad_host: counter(|c| &c.bad_host),
                truncated_lines: counter(|c| &c.truncated),
                invalid_utf8_lines: counter(|c| &c.invalid_utf8),
                source_errors: counter(|c| &c.errors),
                sources: sources
                    .iter()
                    .filter(|s| s.jail == j.name)
                    .cloned()
                    .map(source_info)
                    .collect(),
            }
        })
        .collect();
    if let Some(o) = only {
        if jails.is_empty() {
            return Response::error(format!("no jail named `{o}`"));
        }
    }
    Response::Status {
        jails,
        enforcement: core.manager().backend_name(),
        crowdsec: core.crowdsec_status(),
        syslog: core.syslog_status(),
        dry_run: !core.manager().enforces(),
    }
}

/// The metrics endpoint's text: the figures of `stats` and `status`, as OpenMetrics.
pub fn metrics(core: &mut Core) -> String {
    let stats = match answer(core, Request::Stats {}) {
        Response::Stats { stats } => stats,
        _ => return String::new(),
    };
    let Response::Status {
        jails, crowdsec, ..
    } = status(core, None)
    else {
        return String::new();
    };
    let fills: Vec<crate::metrics::Fill> = [
        crate::backend::Slot::ExactV4,
        crate::backend::Slot::ExactV6,
        crate::backend::Slot::PrefixV4,
        crate::backend::Slot::PrefixV6,
    ]
    .into_iter()
    .filter_map(|slot| core.manager().fill(slot))
    .map(|(map, used, cap)| crate::metrics::Fill {
        map,
        used: used as u64,
        capacity: cap as u64,
    })
    .collect();
    crate::metrics::render(&crate::metrics::Snapshot {
        stats: &stats,
        jails: &jails,
        crowdsec: crowdsec.as_ref(),
        fills: &fills,
        dry_run: !core.manager().enforces(),
        detection: Some(core.detection()),
    })
}
