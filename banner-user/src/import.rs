//! `banner import fail2ban`: a fail2ban setup (jail.conf, jail.d, jail.local, the filters
//! they name and the iptables blocktype) written as a banner.toml that layers over banner's
//! embedded default.
//!
//! fail2ban's precedence is kept: jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, each
//! with its includes (paths-*.conf), `%(x)s` interpolated (`%(__name__)s` is the jail's
//! name). What banner has no equivalent for is never dropped silently: it is listed in the
//! output as comments, and returned for the caller to print.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use crate::{
    duration::{format_duration, BanLength},
    filter::f2b::{
        definition::{self, split_options},
        ini::{IniError, Merged},
    },
};

/// The configuration written, and what could not be carried over.
#[derive(Debug)]
pub struct Imported {
    pub toml: String,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} is not a fail2ban configuration directory (no jail.conf or jail.local)")]
    NotFail2ban(PathBuf),
    #[error(transparent)]
    Ini(#[from] IniError),
    #[error("{origin}: {message}")]
    Value { origin: String, message: String },
}

/// Jails banner runs by default: turned off explicitly when fail2ban does not enable them.
const BANNER_DEFAULT_JAILS: &[&str] = &["sshd", "recidive"];

/// Keys of a jail that banner reads (or deliberately ignores) rather than listing them as
/// not carried over.
const UNDERSTOOD: &[&str] = &[
    "enabled",
    "filter",
    "mode",
    "logpath",
    "backend",
    "bantime",
    "findtime",
    "maxretry",
    "ignoreip",
    "usedns",
    "bantime.increment",
    "bantime.factor",
    "bantime.maxtime",
    "journalmatch",
    // Ports and protocols: carried over as the jail's `ports` (see `jail_ports`).
    "port",
    "protocol",
    "action_",
    "chain",
    "banaction",
    "banaction_allports",
    "action",
    "logencoding",
    "__name__",
];

pub fn fail2ban(dir: &Path) -> Result<Imported, ImportError> {
    let mut order = vec![dir.join("jail.conf")];
    order.extend(sorted_in(&dir.join("jail.d"), "conf"));
    order.push(dir.join("jail.local"));
    order.extend(sorted_in(&dir.join("jail.d"), "local"));
    if !order[0].exists() && !dir.join("jail.local").exists() {
        return Err(ImportError::NotFail2ban(dir.to_path_buf()));
    }
    let merged = Merged::read_in_order(&order)?;
    let mut notes = Vec::new();
    let none = BTreeMap::new();
    let get = |section: &str, key: &str| -> Result<Option<(String, String)>, ImportError> {
        let vars = BTreeMap::from([("__name__".to_string(), section.to_string())]);
        Ok(merged
            .get(section, key, &vars)?
            .map(|v| (v.text.trim().to_string(), v.origin.to_string())))
    };
    let default = |key: &str| -> Result<Option<(String, String)>, ImportError> {
        // [DEFAULT] is held apart from the sections: asking a section nobody has reads it.
        Ok(merged
            .get("DEFAULT", key, &none)?
            .map(|v| (v.text.trim().to_string(), v.origin.to_string())))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from fail2ban ({}) by `banner import fail2ban`.\n# Layered over banner's embedded default: what is not said here is banner's default.\n",
        dir.display()
    );
    // [defaults]
    let _ = writeln!(out, "[defaults]");
    for key in ["bantime", "findtime"] {
        if let Some((v, at)) = default(key)? {
            let _ = writeln!(
                out,
                "{key} = {}",
                toml_str(&length(&v, &at, key == "bantime")?)
            );
        }
    }
    if let Some((v, at)) = default("maxretry")? {
        let _ = writeln!(out, "maxretry = {}", number(&v, &at)?);
    }
    let blocktype = blocktype(dir, &mut notes)?;
    let _ = writeln!(out, "blocktype = {}", toml_str(&blocktype));
    if let Some((v, _)) = default("ignoreip")? {
        let _ = writeln!(
            out,
            "ignoreip = {}",
            toml_list(&ignoreip(&v, "[DEFAULT]", &mut notes))
        );
    }
    if let Some((v, _)) = default("usedns")? {
        // Only an explicit yes: banner bans hostnames from logs only when told to.
        let yes = v == "yes";
        let _ = writeln!(out, "usedns = \"{}\"", if yes { "yes" } else { "no" });
        if v == "warn" {
            notes.push("[DEFAULT] usedns = warn: imported as no (hostnames in logs do not ban; set usedns = \"yes\" to resolve them)".into());
        }
    }
    if let Some(inc) = increment(
        &default("bantime.increment")?,
        &default("bantime.factor")?,
        &default("bantime.maxtime")?,
    )? {
        let _ = writeln!(out, "bantime_increment = {inc}");
    }
    let filter_dir = dir.join("filter.d");
    if filter_dir != Path::new(crate::filter::FAIL2BAN_FILTER_DIR) {
        let _ = writeln!(
            out,
            "filter_dir = {}",
            toml_str(&filter_dir.display().to_string())
        );
    }
    // Jails.
    let mut enabled_jails = Vec::new();
    for name in merged.section_names() {
        let enabled = get(&name, "enabled")?.is_some_and(|(v, _)| truthy(&v));
        if !enabled {
            continue;
        }
        enabled_jails.push(name.clone());
        let _ = writeln!(out, "\n[jails.{}]", toml_key(&name));
        let _ = writeln!(out, "enabled = true");
        for key in ["bantime", "findtime"] {
            if let Some((v, at)) = get(&name, key)? {
                if default(key)?.map(|d| d.0) != Some(v.clone()) {
                    let _ = writeln!(
                        out,
                        "{key} = {}",
                        toml_str(&length(&v, &at, key == "bantime")?)
                    );
                }
            }
        }
        if let Some((v, at)) = get(&name, "maxretry")? {
            if default("maxretry")?.map(|d| d.0) != Some(v.clone()) {
                let _ = writeln!(out, "maxretry = {}", number(&v, &at)?);
            }
        }
        if let Some((v, _)) = get(&name, "ignoreip")? {
            if default("ignoreip")?.map(|d| d.0) != Some(v.clone()) {
                let _ = writeln!(
                    out,
                    "ignoreip = {}",
                    toml_list(&ignoreip(&v, &name, &mut notes))
                );
            }
        }
        if name == "recidive" {
            // banner's recidive counts every jail's bans itself.
            continue;
        }
        let filter_text = get(&name, "filter")?.map_or_else(|| name.clone(), |(v, _)| v);
        let (filter_name, mut options) =
            split_options(&filter_text).map_err(|message| ImportError::Value {
                origin: format!("[{name}] filter"),
                message,
            })?;
        let mode = options.remove("mode").unwrap_or_else(|| "normal".into());
        // banner's own filter where it has one for the name and mode (faster, and held to
        // the same fail2ban samples); else fail2ban's file.
        let builtin = options.is_empty()
            && crate::filter::Filter::builtin(&filter_name, &mode, false).is_ok();
        if builtin {
            let _ = writeln!(out, "filter = {}", toml_str(&filter_name));
            let _ = writeln!(out, "mode = {}", toml_str(&mode));
        } else {
            // The filter.d file, read as fail2ban reads it.
            let mut opts: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if mode != "normal" {
                opts.insert(0, format!("mode={mode}"));
            }
            let path = filter_dir.join(format!("{filter_name}.conf"));
            let shown = if opts.is_empty() {
                path.display().to_string()
            } else {
                format!("{}[{}]", path.display(), opts.join(", "))
            };
            let _ = writeln!(out, "filter = {}", toml_str(&shown));
        }
        let backend = get(&name, "backend")?.map(|(v, _)| v).unwrap_or_default();
        if backend.starts_with("systemd") {
            let _ = writeln!(out, "logpath = []");
            let matches = journalmatch(&filter_name, &filter_dir, &get(&name, "journalmatch")?)?;
            let _ = writeln!(out, "journalmatch = {}", toml_list(&matches));
        } else {
            let paths: Vec<String> = get(&name, "logpath")?
                .map(|(v, _)| {
                    v.split(['\n', ' '])
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(out, "logpath = {}", toml_list(&paths));
            let _ = writeln!(out, "journalmatch = []");
        }
        let raw = |key: &str| get(&name, key).ok().flatten().map(|(v, _)| v);
        let actions = [raw("banaction"), raw("action"), raw("action_")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(lines) = jail_ports(
            &name,
            raw("port").as_deref(),
            raw("protocol").as_deref(),
            &actions,
            &mut notes,
        ) {
            out.push_str(&lines);
        }
        for key in merged.own_keys(&name) {
            if !UNDERSTOOD.contains(&key.as_str()) {
                notes.push(format!(
                    "[{name}] {key} is not carried over (banner has no equivalent)"
                ));
            }
        }
        // An action that does not interpolate (it names things banner does not read) is
        // still worth a note, not a failed import.
        if let Some((action, _)) = get(&name, "action").ok().flatten() {
            let lines: Vec<&str> = action
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if lines
                .iter()
                .any(|l| l.contains("mail") || l.contains("sendmail"))
            {
                notes.push(format!(
                    "[{name}] action sends mail ({}): not carried over; banner bans without mailing",
                    lines.join(" ")
                ));
            } else if lines.len() > 1 {
                notes.push(format!(
                    "[{name}] extra actions not carried over: {}",
                    lines[1..].join(" ")
                ));
            }
        }
    }
    for name in BANNER_DEFAULT_JAILS {
        if !enabled_jails.iter().any(|j| j == name) {
            let _ = writeln!(out, "\n[jails.{name}]\nenabled = false");
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\n# Not carried over (no banner equivalent):");
        for n in &notes {
            let _ = writeln!(out, "#   {n}");
        }
    }
    Ok(Imported { toml: out, notes })
}

fn sorted_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on")
}

/// fail2ban's times (`3600`, `10m`, `1h`, `-1` for permanent) as banner writes them.
fn length(v: &str, at: &str, may_be_permanent: bool) -> Result<String, ImportError> {
    if may_be_permanent && v.starts_with('-') {
        return Ok("permanent".into());
    }
    match BanLength::parse(v) {
        Ok(BanLength::For(d)) => Ok(format_duration(d)),
        Ok(BanLength::Permanent) if may_be_permanent => Ok("permanent".into()),
        Ok(BanLength::Permanent) => Err(ImportError::Value {
            origin: at.into(),
            message: format!("`{v}` cannot be a window"),
        }),
        Err(e) => Err(ImportError::Value {
            origin: at.into(),
            message: e.to_string(),
        }),
    }
}

fn number(v: &str, at: &str) -> Result<u32, ImportError> {
    v.parse().map_err(|_| ImportError::Value {
        origin: at.into(),
        message: format!("`{v}` is not a whole number"),
    })
}

/// fail2ban's ignoreip: addresses, prefixes and hostnames separated by spaces or commas.
/// Hostnames have no banner equivalent (it never resolves to decide who is safe).
fn ignoreip(v: &str, jail: &str, notes: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for item in v.split([' ', ',', '\n']).filter(|s| !s.is_empty()) {
        if item.parse::<crate::addr::IpPrefix>().is_ok() {
            out.push(item.to_string());
        } else {
            notes.push(format!(
                "{jail} ignoreip `{item}`: not an address or prefix, not carried over"
            ));
        }
    }
    out
}

fn increment(
    enabled: &Option<(String, String)>,
    factor: &Option<(String, String)>,
    maxtime: &Option<(String, String)>,
) -> Result<Option<String>, ImportError> {
    let Some((on, _)) = enabled else {
        return Ok(None);
    };
    let mut parts = vec![format!("enabled = {}", truthy(on))];
    if let Some((f, at)) = factor {
        let f: f64 = f.parse().map_err(|_| ImportError::Value {
            origin: at.clone(),
            message: format!("bantime.factor `{f}` is not a number"),
        })?;
        parts.push(format!("factor = {f:?}"));
    }
    if let Some((m, at)) = maxtime {
        parts.push(format!("maxtime = {}", toml_str(&length(m, at, false)?)));
    }
    Ok(Some(format!("{{ {} }}", parts.join(", "))))
}

/// The iptables blocktype a fail2ban setup uses (action.d/iptables*.local overriding the
/// shipped files): TARPIT -> tarpit, DROP -> drop; REJECT (fail2ban's default) has no banner
/// form and becomes drop, with a note.
fn blocktype(dir: &Path, notes: &mut Vec<String>) -> Result<String, ImportError> {
    let action_d = dir.join("action.d");
    let mut found: Option<String> = None;
    for file in ["iptables.conf", "iptables-common.conf"] {
        let path = action_d.join(file);
        let local = path.with_extension("local");
        if !path.exists() && !local.exists() {
            continue;
        }
        // A .local without its .conf (older fail2ban layouts) is read on its own.
        let merged = if path.exists() {
            Merged::read(&path)?
        } else {
            Merged::read_in_order(&[local])?
        };
        let none = BTreeMap::new();
        for section in ["Init", "Definition", "DEFAULT"] {
            let v = if section == "DEFAULT" {
                merged.defaults.get("blocktype").map(|v| v.text.clone())
            } else {
                merged.get(section, "blocktype", &none)?.map(|v| v.text)
            };
            if let Some(v) = v {
                found = Some(v);
                break;
            }
        }
    }
    let Some(v) = found else {
        return Ok("tarpit".into());
    };
    let word = v
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    Ok(match word.as_str() {
        "TARPIT" => "tarpit".into(),
        "DROP" => "drop".into(),
        _ => {
            notes.push(format!(
                "blocktype `{v}`: banner drops or tarpits; imported as drop"
            ));
            "drop".into()
        }
    })
}

/// The journal entries a systemd-backend jail reads: its own journalmatch, else its
/// filter's, else the units banner's built-in of that name knows.
fn journalmatch(
    filter: &str,
    filter_dir: &Path,
    own: &Option<(String, String)>,
) -> Result<Vec<String>, ImportError> {
    let text = match own {
        Some((v, _)) => Some(v.clone()),
        None => {
            let path = filter_dir.join(format!("{filter}.conf"));
            if path.exists() {
                Some(
                    definition::load(&path, &BTreeMap::new())?
                        .journalmatch
                        .join(" + "),
                )
            } else {
                None
            }
        }
    };
    let list: Vec<String> = text
        .unwrap_or_default()
        .split(['+', '\n'])
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if list.is_empty() {
        // A built-in knows its service's units.
        if let Some(b) = crate::filter::builtin::find(filter) {
            return Ok(b.journalmatch.iter().map(|m| m.to_string()).collect());
        }
    }
    Ok(list)
}

/// A jail's `port` and `protocol` as banner's `ports` and `protocol` lines: fail2ban's
/// multiport actions ban only the jail's ports. None where the ban covers every port: an
/// allports action, or a port list that spans them all.
fn jail_ports(
    name: &str,
    port: Option<&str>,
    protocol: Option<&str>,
    actions: &str,
    notes: &mut Vec<String>,
) -> Option<String> {
    use crate::scope::{parse_ports, parse_protocols, PortScope, Protocol, SERVICES};
    let port = port?.trim();
    if actions.contains("allports") || port.is_empty() {
        return None;
    }
    // Per-protocol actions (asterisk: one `protocol="tcp"`, one `protocol="udp"`).
    let both = actions.contains("protocol=\"tcp\"") && actions.contains("protocol=\"udp\"");
    let protocol = if both {
        "both".to_string()
    } else {
        protocol.unwrap_or("tcp").trim().to_string()
    };
    let protocols = match parse_protocols(&protocol) {
        Ok(p) => p,
        Err(e) => {
            notes.push(format!("[{name}] protocol: {e}; banned on every port"));
            return None;
        }
    };
    let services = std::fs::read_to_string(SERVICES).unwrap_or_default();
    let items: Vec<String> = port
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    // fail2ban's [DEFAULT] port = 0:65535: every port (banner refuses port 0 in a scope).
    let whole = |i: &String| matches!(i.replace('-', ":").as_str(), "0:65535" | "1:65535");
    if items.iter().any(whole) {
        return None;
    }
    let mut ranges = Vec::new();
    for item in &items {
        match parse_ports(item, &protocols, &services) {
            Ok(r) => ranges.extend(r),
            Err(e) => {
                notes.push(format!("[{name}] port: {e}; banned on every port"));
                return None;
            }
        }
    }
    let scope = PortScope::of(&protocols, ranges).ok()?;
    let every = |p: Protocol| {
        scope
            .ranges(p)
            .first()
            .is_some_and(|r| r.first == 1 && r.last == u16::MAX)
    };
    if protocols.iter().all(|p| every(*p)) {
        return None;
    }
    // As written (names stay names, so the file reads like the user's own).
    let items: Vec<String> = items.iter().map(|i| i.replace(':', "-")).collect();
    let mut lines = format!("ports = {}\n", toml_list(&items));
    if protocol != "tcp" {
        let _ = writeln!(lines, "protocol = {}", toml_str(&protocol));
    }
    Some(lines)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_key(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        s.to_string()
    } else {
        toml_str(s)
    }
}

fn toml_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The seed's setup: Debian's fail2ban, recidive on, TARPIT, the LAN ignored, 1 hour,
    /// 10 minutes, 3 tries.
    fn seed(dir: &Path) {
        std::fs::create_dir_all(dir.join("jail.d")).unwrap();
        std::fs::create_dir_all(dir.join("action.d")).unwrap();
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        for f in ["jail.conf", "paths-common.conf", "paths-debian.conf"] {
            std::fs::copy(Path::new("/etc/fail2ban").join(f), dir.join(f)).unwrap();
        }
        std::fs::copy(
            "/etc/fail2ban/action.d/iptables.conf",
            dir.join("action.d/iptables.conf"),
        )
        .unwrap();
        for f in [
            "common.conf",
            "sshd.conf",
            "nginx-http-auth.conf",
            "postfix.conf",
            "asterisk.conf",
        ] {
            std::fs::copy(
                Path::new("/etc/fail2ban/filter.d").join(f),
                dir.join("filter.d").join(f),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("jail.d/defaults-debian.conf"),
            "[sshd]\nenabled = true\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("jail.d/recidive.conf"),
            "[recidive]\nenabled = true\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("action.d/iptables-common.local"),
            "[Init]\nblocktype = TARPIT\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("jail.local"),
            "[DEFAULT]\nignoreip = 198.18.7.0/24\n#action = %(action_mw)s\nbantime = 3600\nfindtime = 600\nmaxretry = 3\n\n[nginx-http-auth]\nenabled = true\nlogpath = /var/log/nginx/error.log\naction = %(action_mwl)s\nmaxretry = 2\n\n[postfix]\nenabled = true\nlogpath = /var/log/mail.log\n\n[asterisk]\nenabled = true\nlogpath = /var/log/asterisk/messages\n",
        )
        .unwrap();
    }

    #[test]
    fn the_seed_setup_becomes_an_equivalent_banner_config() {
        let d = tempfile::tempdir().unwrap();
        seed(d.path());
        let imported = fail2ban(d.path()).unwrap();
        let cfg = Config::parse(&imported.toml, "imported.toml")
            .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
        assert_eq!(
            cfg.bantime,
            BanLength::For(std::time::Duration::from_secs(3600)),
            "{}",
            imported.toml
        );
        assert_eq!(cfg.findtime, std::time::Duration::from_secs(600));
        assert_eq!(cfg.maxretry, 3);
        assert_eq!(cfg.blocktype, crate::model::BlockType::Tarpit);
        assert!(
            cfg.ignoreip.contains(&"198.18.7.0/24".parse().unwrap()),
            "{:?}",
            cfg.ignoreip
        );
        assert!(cfg.recidive.is_some(), "recidive stays on");
        let sshd = cfg.jail("sshd").expect("sshd imported");
        assert_eq!(sshd.logpaths, ["/var/log/auth.log"]);
        // fail2ban's multiport action bans the jail's ports only; so does the import.
        let ports = |j: &crate::config::JailConfig| crate::scope::describe(&j.policy.scope);
        assert_eq!(ports(sshd), "tcp:22", "{}", imported.toml);
        let web = cfg
            .jail("nginx-http-auth")
            .expect("nginx-http-auth imported");
        assert_eq!(web.policy.maxretry, 2);
        // banner has its own nginx-http-auth; a filter it has not is fail2ban's file.
        assert_eq!(web.filter_name, "nginx-http-auth");
        let mail = cfg.jail("postfix").expect("postfix imported");
        assert_eq!(mail.filter_name, "postfix[mode=more]");
        let voip = cfg.jail("asterisk").expect("asterisk imported");
        assert_eq!(ports(voip), "tcp:5060-5061 udp:5060-5061");
        assert_eq!(ports(web), "tcp:80,443");
        // recidive bans every port (banaction_allports).
        assert_eq!(cfg.recidive.as_ref().map(|r| r.scope.clone()), Some(None));
        assert!(
            voip.filter_name.contains("filter.d/asterisk.conf"),
            "{}",
            voip.filter_name
        );
        // The mail action is named, not dropped.
        assert!(
            imported
                .notes
                .iter()
                .any(|n| n.contains("nginx-http-auth") && n.contains("mail")),
            "{:?}",
            imported.notes
        );
        assert!(imported.toml.contains("# Not carried over"));
    }

    #[test]
    fn ports_follow_the_action_kind() {
        let mut notes = Vec::new();
        let multiport = "iptables-multiport";
        assert_eq!(
            jail_ports("a", Some("ssh, 2222"), None, multiport, &mut notes).as_deref(),
            Some("ports = [\"ssh\", \"2222\"]\n")
        );
        assert_eq!(
            jail_ports("a", Some("1000:2000"), Some("udp"), multiport, &mut notes).as_deref(),
            Some("ports = [\"1000-2000\"]\nprotocol = \"udp\"\n")
        );
        // Every port: whole-address bans, nothing to say.
        assert_eq!(
            jail_ports("a", Some("0:65535"), None, multiport, &mut notes),
            None
        );
        assert_eq!(
            jail_ports("a", Some("ssh"), None, "iptables-allports", &mut notes),
            None
        );
        assert!(notes.is_empty(), "{notes:?}");
        // What cannot be read is said, and the ban covers every port.
        assert_eq!(
            jail_ports("a", Some("no-such-port-name"), None, multiport, &mut notes),
            None
        );
        assert!(notes[0].contains("no-such-port-name"), "{notes:?}");
    }

    #[test]
    fn disabled_jails_and_reject_are_said_plainly() {
        let d = tempfile::tempdir().unwrap();
        seed(d.path());
        std::fs::remove_file(d.path().join("jail.d/defaults-debian.conf")).unwrap();
        std::fs::remove_file(d.path().join("action.d/iptables-common.local")).unwrap();
        let imported = fail2ban(d.path()).unwrap();
        let cfg = Config::parse(&imported.toml, "imported.toml").unwrap();
        assert!(
            cfg.jail("sshd").is_none(),
            "sshd is off in fail2ban, so in banner"
        );
        assert_eq!(cfg.blocktype, crate::model::BlockType::Drop);
        assert!(
            imported.notes.iter().any(|n| n.contains("REJECT")),
            "{:?}",
            imported.notes
        );
    }

    #[test]
    fn a_directory_without_jails_is_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            fail2ban(d.path()),
            Err(ImportError::NotFail2ban(_))
        ));
        std::fs::write(
            d.path().join("jail.local"),
            "[DEFAULT]\nbantime = soon\n[x]\nenabled = true\n",
        )
        .unwrap();
        let e = fail2ban(d.path()).unwrap_err().to_string();
        assert!(e.contains("jail.local:2") && e.contains("soon"), "{e}");
    }
}
