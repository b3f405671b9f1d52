//! `[banner]`: where banner attaches, listens and keeps its state.

use super::*;

pub(super) fn resolve_banner(src: &Source, raw: RawBanner, cfg: &mut Config, m: &mut Mistakes) {
    if let Some(ifaces) = raw.interfaces {
        cfg.interfaces = Vec::new();
        for i in ifaces {
            let name = i.get_ref();
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                m.0.push(src.at(&i, format!("`{name}` is not a valid interface name")));
                continue;
            }
            cfg.interfaces.push(name.clone());
        }
    }
    if let Some(b) = raw.backend {
        if let Some(v) = m.check(b.get_ref().parse().map_err(|e: String| src.at(&b, e))) {
            cfg.backend = v;
        }
    }
    let path = |v: &Spanned<String>| -> Result<PathBuf, ConfigError> {
        let p = PathBuf::from(v.get_ref());
        if !p.is_absolute() {
            return Err(src.at(v, format!("`{}` must be an absolute path", v.get_ref())));
        }
        Ok(p)
    };
    for (value, slot) in [
        (&raw.socket, &mut cfg.socket),
        (&raw.state_dir, &mut cfg.state_dir),
        (&raw.bpffs_dir, &mut cfg.bpffs_dir),
        (&raw.hosts_deny_path, &mut cfg.hosts_deny_path),
    ] {
        if let Some(p) = value.as_ref().and_then(|v| m.check(path(v))) {
            *slot = p;
        }
    }
    if let Some(k) = raw.keep_on_exit {
        cfg.keep_on_exit = k;
    }
    let count = |v: &Spanned<i64>, what: &str| -> Result<u32, ConfigError> {
        u32::try_from(*v.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| src.at(v, format!("{what} must be between 1 and {}", u32::MAX)))
    };
    if let Some(v) = raw
        .max_exact_bans
        .as_ref()
        .and_then(|v| m.check(count(v, "max_exact_bans")))
    {
        cfg.max_exact_bans = v;
    }
    if let Some(v) = raw
        .max_prefix_bans
        .as_ref()
        .and_then(|v| m.check(count(v, "max_prefix_bans")))
    {
        cfg.max_prefix_bans = v;
    }
}
