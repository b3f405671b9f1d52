//! `[jails.NAME]`: each jail's numbers, sources and filter.

use super::*;
use crate::scope::{parse_ports, parse_protocols, PortScope, Protocol, Scope, SERVICES};

/// Resolve every jail from the text. Each comes with the source its keys were read from
/// (the file, or the embedded default for jails the file does not mention); filters come
/// from the file. Log jails are planned: what they name on disk is checked next
/// ([`Plan::check_files`]).
pub(super) fn resolve_jails(
    raw: BTreeMap<String, (&Source, Spanned<RawJail>)>,
    filters: &(&Source, BTreeMap<String, Spanned<RawFilter>>),
    cfg: &mut Config,
    m: &mut Mistakes,
) -> Vec<PlannedJail> {
    let mut planned = Vec::new();
    for (name, (src, spanned)) in &raw {
        let before = m.0.len();
        let Some(jail) = resolve_jail(src, name, spanned, filters, cfg, m) else {
            continue;
        };
        // A jail with any mistake is left out; its mistakes are reported (its files are
        // still checked, so that one run reports them all).
        let sound = m.0.len() == before;
        match jail {
            Resolved::Log(mut j) => {
                j.sound = sound;
                planned.push(*j);
            }
            Resolved::Recidive(p) if sound => cfg.recidive = p,
            Resolved::Recidive(_) | Resolved::Disabled => {}
        }
    }
    planned
}

pub(super) enum Resolved {
    Log(Box<PlannedJail>),
    Recidive(Option<JailPolicy>),
    Disabled,
}

/// A log jail as its text says: all but what it needs from the disk (its log paths
/// checked, a filter file read).
pub(super) struct PlannedJail {
    name: String,
    /// None when the filter's text has a mistake (reported).
    filter: Option<FilterPlan>,
    inline_filter: Option<FilterSpec>,
    logpaths: Vec<String>,
    /// The `logpath` key, for mistakes in a path.
    logpath_at: Option<Where>,
    journalmatch: Vec<String>,
    policy: JailPolicy,
    ignoreip: Vec<IpPrefix>,
    hosts_deny: bool,
    prefer_journal: bool,
    syslog: bool,
    syslog_hosts: Vec<String>,
    /// The jail's table, for a jail that reads nothing.
    at: Where,
    /// Its text holds no mistake (else it is checked, reported and left out).
    sound: bool,
}

impl PlannedJail {
    /// The jail, its log paths checked and its filter at hand; None (with the mistakes
    /// recorded) when it cannot run.
    pub(super) fn check_files(
        self,
        cfg: &mut Config,
        mistakes: &mut Vec<ConfigError>,
    ) -> Option<JailConfig> {
        let name = self.name;
        for p in &self.logpaths {
            match check_logpath(p) {
                Ok(None) => {}
                Ok(Some(warning)) => cfg.warnings.push(format!("[{name}] {warning}")),
                // At the `logpath` key (a jail with paths has one; else at its table).
                Err(e) => mistakes.push(self.logpath_at.as_ref().unwrap_or(&self.at).error(e)),
            }
        }
        let (filter_name, filter) = self.filter?.load(&name, &cfg.filter_dir, mistakes)?;
        // A filter that says which journal entries it reads (fail2ban's journalmatch)
        // serves a jail that names neither a log nor a match of its own.
        let journalmatch = if self.journalmatch.is_empty() && self.logpaths.is_empty() {
            filter.journalmatch()
        } else {
            self.journalmatch
        };
        if self.logpaths.is_empty() && journalmatch.is_empty() && !self.syslog {
            mistakes.push(self.at.error(format!(
                "jail {name} reads nothing: give it a logpath, a journalmatch or source = \"syslog\""
            )));
            return None;
        }
        self.sound.then(|| JailConfig {
            name,
            filter_name,
            filter: Arc::new(filter),
            logpaths: self.logpaths,
            journalmatch,
            policy: self.policy,
            ignoreip: self.ignoreip,
            hosts_deny: self.hosts_deny,
            prefer_journal: self.prefer_journal,
            inline_filter: self.inline_filter,
            syslog: self.syslog,
            syslog_hosts: self.syslog_hosts,
        })
    }
}

pub(super) fn resolve_jail(
    src: &Source,
    name: &str,
    spanned: &Spanned<RawJail>,
    filters: &(&Source, BTreeMap<String, Spanned<RawFilter>>),
    cfg: &mut Config,
    m: &mut Mistakes,
) -> Option<Resolved> {
    if let Err(e) = jail_name(name) {
        m.0.push(src.at(spanned, e));
        return None;
    }
    let j = spanned.get_ref();
    let mut policy = jail_policy(src, name, j, cfg.default_policy(), m);
    for a in j.actions.iter().flatten() {
        if cfg.actions.contains_key(a.get_ref()) {
            policy.actions.push(a.get_ref().clone());
        } else {
            m.0.push(src.at(a, format!("no [actions.{}] is defined", a.get_ref())));
        }
    }
    let use_dns = match &j.usedns {
        Some(v) => m.check(usedns(src, v)).unwrap_or(cfg.usedns),
        None => cfg.usedns,
    };
    let enabled = j.enabled.unwrap_or(true);
    if name == RECIDIVE {
        for (set, what) in [
            (j.filter.is_some(), "filter"),
            (j.logpath.is_some(), "logpath"),
            (j.journalmatch.is_some(), "journalmatch"),
        ] {
            if set {
                m.0.push(src.at(
                    spanned,
                    format!("the recidive jail counts other jails' bans; it takes no {what}"),
                ));
            }
        }
        return Some(Resolved::Recidive(enabled.then_some(policy)));
    }
    if !enabled {
        // A jail turned off is not checked further: its log may well not exist here.
        return Some(Resolved::Disabled);
    }
    let ignoreip = ignoreip(src, j.ignoreip.as_deref().unwrap_or_default(), m);
    let (logpaths, journalmatch) = jail_sources(src, j, m);
    let (syslog, syslog_hosts) = jail_syslog(src, j, cfg, m);
    // Syslog messages reach the filter as a file's lines, with their header.
    let journal_only = logpaths.is_empty() && !syslog;
    let (filter, inline_filter) =
        jail_filter(src, name, spanned, filters, journal_only, use_dns, m)
            .map_or((None, None), |(plan, inline)| (Some(plan), inline));
    Some(Resolved::Log(Box::new(PlannedJail {
        name: name.to_string(),
        filter,
        inline_filter,
        logpaths,
        logpath_at: j.logpath.as_ref().map(|l| src.locate(Some(l.span()))),
        journalmatch,
        policy,
        ignoreip,
        hosts_deny: j.hosts_deny.unwrap_or(false),
        prefer_journal: j.prefer_journal.unwrap_or(true),
        syslog,
        syslog_hosts,
        at: src.locate(Some(spanned.span())),
        sound: true,
    })))
}

/// A jail's name: letters, digits, `-` and `_`, and none of the origins' reserved names.
pub(super) fn jail_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "jail name `{name}` may hold only letters, digits, - and _"
        ));
    }
    if crate::model::JailId::RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is reserved for bans no jail made (`manual`: by hand, `restored`: adopted from the kernel, `crowdsec`: CrowdSec's decisions); name the jail otherwise"
        ));
    }
    Ok(())
}

/// A jail's numbers: its own keys over `base` ([defaults], or fail2ban's recidive numbers
/// for the recidive jail).
pub(super) fn jail_policy(
    src: &Source,
    name: &str,
    j: &RawJail,
    mut policy: JailPolicy,
    m: &mut Mistakes,
) -> JailPolicy {
    if name == RECIDIVE {
        // fail2ban's recidive numbers, unless the jail says otherwise.
        policy.bantime = BanLength::For(Duration::from_secs(7 * 86_400));
        policy.findtime = Duration::from_secs(86_400);
        policy.maxretry = 5;
    }
    if let Some(v) = j
        .bantime
        .as_ref()
        .and_then(|v| m.check(ban_length(src, v, "bantime")))
    {
        policy.bantime = v;
    }
    if let Some(v) = j
        .findtime
        .as_ref()
        .and_then(|v| m.check(duration(src, v, "findtime")))
    {
        policy.findtime = v;
    }
    if let Some(v) = j.maxretry.as_ref().and_then(|v| m.check(maxretry(src, v))) {
        policy.maxretry = v;
    }
    if let Some(v) = j
        .blocktype
        .as_ref()
        .and_then(|v| m.check(blocktype(src, v)))
    {
        policy.blocktype = v;
    }
    if let Some(inc) = &j.bantime_increment {
        if let Some(v) = m.check(increment(src, inc, policy.increment)) {
            policy.increment = v;
        }
    }
    if let Some(v) = j
        .max_tracked
        .as_ref()
        .and_then(|v| m.check(max_tracked(src, v)))
    {
        policy.max_tracked = v;
    }
    policy.scope = jail_scope(src, j, m);
    policy
}

/// `ports` and `protocol`: what the jail's bans cover (None: the whole address).
fn jail_scope(src: &Source, j: &RawJail, m: &mut Mistakes) -> Scope {
    let protocols = match &j.protocol {
        Some(p) => {
            if j.ports.is_none() {
                m.0.push(src.at(
                    p,
                    "protocol applies with ports only (without ports a ban covers every protocol)",
                ));
                return None;
            }
            m.check(parse_protocols(p.get_ref()).map_err(|e| src.at(p, e.to_string())))?
        }
        None => vec![Protocol::Tcp],
    };
    let list = j.ports.as_ref()?;
    let items = list.get_ref();
    // Read only when a name needs it.
    let mut services: Option<String> = None;
    let mut ranges = Vec::new();
    for item in items {
        let text = match item.get_ref() {
            RawPort::Number(n) => n.to_string(),
            RawPort::Text(t) => t.clone(),
        };
        let names = text.bytes().any(|b| b.is_ascii_alphabetic());
        let table = if names {
            services.get_or_insert_with(|| std::fs::read_to_string(SERVICES).unwrap_or_default())
        } else {
            ""
        };
        let parsed =
            parse_ports(&text, &protocols, table).map_err(|e| src.at(item, format!("ports: {e}")));
        ranges.extend(m.check(parsed)?);
    }
    let scope = PortScope::of(&protocols, ranges).map_err(|_| {
        src.at(
            list,
            "ports = []: a port scope needs at least one port (leave ports out to ban every port)",
        )
    });
    m.check(scope).map(Arc::new)
}

/// What a jail reads: its log paths (checked on disk later, see [`Plan::check_files`])
/// and its journal matches.
/// `source = "syslog"` and its `hosts`: whether the jail judges what the receiver takes,
/// and from which hosts.
pub(super) fn jail_syslog(
    src: &Source,
    j: &RawJail,
    cfg: &Config,
    m: &mut Mistakes,
) -> (bool, Vec<String>) {
    let syslog = match &j.source {
        None => false,
        Some(v) if v.get_ref() == "syslog" => {
            if cfg.syslog.is_none() {
                m.0.push(src.at(
                    v,
                    "source = \"syslog\" needs a [syslog] section saying where to listen",
                ));
            }
            true
        }
        Some(v) => {
            m.0.push(src.at(
                v,
                format!(
                    "source `{}`: the only source named here is \"syslog\" (files go in logpath, journald in journalmatch)",
                    v.get_ref()
                ),
            ));
            false
        }
    };
    let mut hosts = Vec::new();
    for h in j.hosts.iter().flatten() {
        let name = h.get_ref();
        let ok = !name.is_empty()
            && name.len() <= 255
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !ok {
            m.0.push(src.at(h, format!("hosts: `{name}` is no host name or address")));
        } else if !syslog {
            m.0.push(src.at(h, "hosts applies to source = \"syslog\" only"));
            break;
        } else {
            hosts.push(name.to_ascii_lowercase());
        }
    }
    (syslog, hosts)
}

pub(super) fn jail_sources(
    src: &Source,
    j: &RawJail,
    m: &mut Mistakes,
) -> (Vec<String>, Vec<String>) {
    let logpaths = j
        .logpath
        .as_ref()
        .map(|l| l.get_ref().0.clone())
        .unwrap_or_default();
    let journalmatch = j
        .journalmatch
        .as_ref()
        .map(|l| l.get_ref().0.clone())
        .unwrap_or_default();
    if let Some(jm) = &j.journalmatch {
        for entry in &jm.get_ref().0 {
            for term in entry.split_whitespace() {
                let ok = term.split_once('=').is_some_and(|(f, _)| {
                    !f.is_empty()
                        && f.bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                });
                if !ok {
                    m.0.push(src.at(
                        jm,
                        format!("journalmatch `{term}` is not FIELD=value (FIELD in capitals)"),
                    ));
                }
            }
        }
    }
    (logpaths, journalmatch)
}

/// A jail's filter: a `[filters.NAME]` table or a built-in, compiled; or a filter file
/// (fail2ban's, with its options, or banner's TOML), to be read with the rest of the files;
/// with the `[filters.NAME]` table it came from.
#[allow(clippy::too_many_arguments)]
pub(super) fn jail_filter(
    src: &Source,
    name: &str,
    spanned: &Spanned<RawJail>,
    (filter_src, filters): &(&Source, BTreeMap<String, Spanned<RawFilter>>),
    journal: bool,
    use_dns: bool,
    m: &mut Mistakes,
) -> Option<(FilterPlan, Option<FilterSpec>)> {
    let j = spanned.get_ref();
    let filter_text = j.filter.as_ref().map_or(name, |f| f.get_ref().as_str());
    let filter_at = j
        .filter
        .as_ref()
        .map(|f| f.span())
        .or_else(|| j.mode.as_ref().map(|md| md.span()))
        .unwrap_or(spanned.span());
    let (filter_name, mut options) =
        match crate::filter::f2b::definition::split_options(filter_text) {
            Ok(v) => v,
            Err(e) => {
                m.0.push(src.error(Some(filter_at.clone()), e));
                return None;
            }
        };
    if let Some(md) = &j.mode {
        options.insert("mode".into(), md.get_ref().clone());
    }
    let shown = if options.is_empty()
        || options.get("mode").is_some_and(|md| md == "normal") && options.len() == 1
    {
        filter_name.clone()
    } else {
        let opts: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{filter_name}[{}]", opts.join(", "))
    };
    let inline_filter = filters.get(&filter_name).map(|f| spec_of(f.get_ref()));
    let at = src.locate(Some(filter_at.clone()));
    let plan = if let Some(raw_filter) = filters.get(&filter_name) {
        if let Some(k) = options.keys().find(|k| *k != "mode") {
            m.0.push(src.error(
                Some(filter_at),
                format!("[filters.{filter_name}] takes no option `{k}`"),
            ));
            return None;
        }
        let filter = m.check(compile_filter(
            filter_src,
            &filter_name,
            raw_filter.get_ref(),
            raw_filter.span(),
            use_dns,
        ))?;
        FilterPlan::Ready { filter, shown }
    } else {
        let named = NamedFilter {
            name: filter_name,
            options,
            use_dns,
            journal,
            at,
            shown,
        };
        m.check(FilterPlan::named(named, name))?
    };
    Some((plan, inline_filter))
}

pub(super) fn maxretry(src: &Source, v: &Spanned<i64>) -> Result<u32, ConfigError> {
    u32::try_from(*v.get_ref())
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| src.at(v, "maxretry must be between 1 and 1000"))
}

/// `[actions.NAME]`: an argument list per event and/or a webhook, with a timeout.
pub(super) fn resolve_actions(
    src: &Source,
    raw: BTreeMap<String, Spanned<RawAction>>,
    cfg: &mut Config,
    m: &mut Mistakes,
) {
    use crate::subscribers::actions::{unknown_placeholder, ActionConfig};
    for (name, spanned) in raw {
        if let Err(e) = jail_name(&name) {
            m.0.push(src.at(&spanned, e.replace("jail name", "action name")));
            continue;
        }
        let a = spanned.get_ref();
        let mut argv = |list: &Option<Vec<Spanned<String>>>, key: &str| -> Vec<String> {
            let mut out = Vec::new();
            for (i, arg) in list.iter().flatten().enumerate() {
                if let Some(p) = unknown_placeholder(arg.get_ref()) {
                    m.0.push(src.at(
                        arg,
                        format!("{key}: unknown placeholder {p} (known: {{ip}} {{jail}} {{blocktype}} {{bantime}} {{failures}} {{matches}})"),
                    ));
                } else if i == 0 && !arg.get_ref().starts_with('/') {
                    m.0.push(src.at(
                        arg,
                        format!(
                            "{key}: the program must be an absolute path (`{}`); no shell runs it",
                            arg.get_ref()
                        ),
                    ));
                }
                out.push(arg.get_ref().clone());
            }
            out
        };
        let on_ban = argv(&a.on_ban, "on_ban");
        let on_unban = argv(&a.on_unban, "on_unban");
        let url = a.url.as_ref().and_then(|u| {
            let ok = (u.get_ref().starts_with("http://") || u.get_ref().starts_with("https://"))
                && !u
                    .get_ref()
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control());
            if ok {
                Some(u.get_ref().clone())
            } else {
                m.0.push(src.at(u, format!("url `{}` is not an http(s):// URL", u.get_ref())));
                None
            }
        });
        if on_ban.is_empty() && on_unban.is_empty() && a.url.is_none() {
            m.0.push(src.at(
                &spanned,
                format!("[actions.{name}] does nothing: give on_ban, on_unban or url"),
            ));
        }
        let mut timeout = Duration::from_secs(30);
        if let Some(v) = &a.timeout {
            if let Some(d) = m.check(duration(src, v, "timeout")) {
                if d.is_zero() || d > Duration::from_secs(3600) {
                    m.0.push(src.at(v, "timeout must be between 1s and 1h"));
                } else {
                    timeout = d;
                }
            }
        }
        cfg.actions.insert(
            name.clone(),
            ActionConfig {
                name,
                on_ban,
                on_unban,
                url,
                timeout,
            },
        );
    }
}
