//! `[defaults]`: the numbers every jail starts from, and the readers of values jails share.

use super::*;

pub(super) fn duration(
    src: &Source,
    v: &Spanned<RawDuration>,
    key: &str,
) -> Result<Duration, ConfigError> {
    match v.get_ref() {
        RawDuration::Text(t) => parse_duration(t).map_err(|e| src.at(v, format!("{key}: {e}"))),
        RawDuration::Seconds(n) if *n > 0 => Ok(Duration::from_secs(*n as u64)),
        RawDuration::Seconds(n) => {
            Err(src.at(v, format!("{key}: {n} is not a positive number of seconds")))
        }
    }
}

pub(super) fn resolve_defaults(src: &Source, raw: RawDefaults, cfg: &mut Config, m: &mut Mistakes) {
    if let Some(v) = raw
        .bantime
        .as_ref()
        .and_then(|v| m.check(ban_length(src, v, "bantime")))
    {
        cfg.bantime = v;
    }
    if let Some(v) = raw
        .findtime
        .as_ref()
        .and_then(|v| m.check(duration(src, v, "findtime")))
    {
        cfg.findtime = v;
    }
    if let Some(v) = raw
        .maxretry
        .as_ref()
        .and_then(|v| m.check(maxretry(src, v)))
    {
        cfg.maxretry = v;
    }
    if let Some(v) = raw
        .blocktype
        .as_ref()
        .and_then(|v| m.check(blocktype(src, v)))
    {
        cfg.blocktype = v;
    }
    if let Some(list) = &raw.ignoreip {
        cfg.ignoreip = ignoreip(src, list, m);
    }
    if let Some(v) = raw.ignoreself {
        cfg.ignoreself = v;
    }
    if let Some(v) = raw.ignore_attached_subnets {
        cfg.ignore_attached_subnets = v;
    }
    if let Some(v) = &raw.ipv6_prefix {
        if let Some(n) = m.check(
            u8::try_from(*v.get_ref())
                .ok()
                .filter(|n| (32..=128).contains(n))
                .ok_or_else(|| src.at(v, "ipv6_prefix must be between 32 and 128")),
        ) {
            cfg.ipv6_prefix = n;
        }
    }
    if let Some(inc) = &raw.bantime_increment {
        if let Some(v) = m.check(increment(src, inc, cfg.increment)) {
            cfg.increment = v;
        }
    }
    if let Some(v) = raw
        .max_tracked
        .as_ref()
        .and_then(|v| m.check(max_tracked(src, v)))
    {
        cfg.max_tracked = v;
    }
    if let Some(v) = raw.usedns.as_ref().and_then(|v| m.check(usedns(src, v))) {
        cfg.usedns = v;
    }
    if let Some(v) = &raw.filter_dir {
        if v.get_ref().starts_with('/') {
            cfg.filter_dir = PathBuf::from(v.get_ref());
        } else {
            m.0.push(src.at(v, "filter_dir must be an absolute path"));
        }
    }
}

/// `drop` or `tarpit`, nothing else: a word banner does not enforce must not quietly mean drop.
pub(super) fn blocktype(src: &Source, v: &Spanned<String>) -> Result<BlockType, ConfigError> {
    v.get_ref().parse().map_err(|e| src.at(v, format!("{e}")))
}

/// An allowlist, each entry checked; bad entries are reported, good ones kept.
pub(super) fn ignoreip(src: &Source, list: &[Spanned<String>], m: &mut Mistakes) -> Vec<IpPrefix> {
    list.iter()
        .filter_map(|entry| {
            m.check(
                entry
                    .get_ref()
                    .parse()
                    .map_err(|e| src.at(entry, format!("ignoreip: {e}"))),
            )
        })
        .collect()
}

pub(super) fn increment(
    src: &Source,
    raw: &RawIncrement,
    base: Increment,
) -> Result<Increment, ConfigError> {
    let mut inc = base;
    if let Some(e) = raw.enabled {
        inc.enabled = e;
    }
    if let Some(f) = &raw.factor {
        let v = *f.get_ref();
        if !(1.0..=100.0).contains(&v) {
            return Err(src.at(f, "bantime_increment.factor must be between 1 and 100"));
        }
        inc.factor = v;
    }
    if let Some(m) = &raw.maxtime {
        inc.maxtime = duration(src, m, "bantime_increment.maxtime")?;
    }
    Ok(inc)
}

pub(super) fn max_tracked(src: &Source, v: &Spanned<i64>) -> Result<usize, ConfigError> {
    usize::try_from(*v.get_ref())
        .ok()
        .filter(|n| (1..=100_000_000).contains(n))
        .ok_or_else(|| src.at(v, "max_tracked must be between 1 and 100000000"))
}

pub(super) fn usedns(src: &Source, v: &Spanned<String>) -> Result<bool, ConfigError> {
    match v.get_ref().as_str() {
        "no" | "false" => Ok(false),
        "yes" | "true" => Ok(true),
        other => Err(src.at(v, format!("usedns must be `yes` or `no`, not `{other}`"))),
    }
}

/// A ban length: a duration, or `permanent`.
pub(super) fn ban_length(
    src: &Source,
    v: &Spanned<RawDuration>,
    key: &str,
) -> Result<BanLength, ConfigError> {
    match v.get_ref() {
        RawDuration::Text(t) if t.trim() == "permanent" => Ok(BanLength::Permanent),
        _ => duration(src, v, key).map(BanLength::For),
    }
}
