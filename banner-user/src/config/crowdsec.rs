//! `[crowdsec]`: banner as a bouncer of CrowdSec's Local API. Off unless the section is
//! there.

use super::*;
use crate::crowdsec::{CrowdSecConfig, Rules};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCrowdSec {
    pub(super) lapi_url: Option<Spanned<String>>,
    pub(super) api_key: Option<Spanned<String>>,
    pub(super) pull: Option<bool>,
    pub(super) update_frequency: Option<Spanned<RawDuration>>,
    pub(super) blocktype: Option<Spanned<String>>,
    pub(super) captcha: Option<Spanned<String>>,
    pub(super) origins: Option<Vec<Spanned<String>>>,
    pub(super) min_prefix_v4: Option<Spanned<i64>>,
    pub(super) min_prefix_v6: Option<Spanned<i64>>,
    pub(super) push: Option<bool>,
    pub(super) login: Option<Spanned<String>>,
    pub(super) password: Option<Spanned<String>>,
    pub(super) credentials_file: Option<Spanned<String>>,
    /// PEM file of the CA that signed LAPI's certificate (default: the Mozilla roots).
    pub(super) ca_cert: Option<Spanned<String>>,
    /// PEM certificate and key for LAPI's client-certificate authentication.
    pub(super) cert: Option<Spanned<String>>,
    pub(super) key: Option<Spanned<String>>,
}

/// The update frequencies taken: faster would load LAPI for nothing, slower leaves bans
/// unenforced for too long.
const FREQUENCY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));

/// `http[s]://host[:port][/path]`, without a trailing slash.
fn lapi_url(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err(format!(
            "`{text}` is not an http:// or https:// URL (like http://127.0.0.1:8080)"
        ));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || rest.contains(['?', '#', ' ', '@'])
        || rest.chars().any(|c| c.is_control())
    {
        return Err(format!(
            "`{text}` is not an http:// or https:// URL with a host (like http://127.0.0.1:8080)"
        ));
    }
    Ok(url.to_string())
}

pub(super) fn resolve_crowdsec(
    src: &Source,
    raw: Option<Spanned<RawCrowdSec>>,
    cfg: &mut Config,
    m: &mut Mistakes,
) {
    let Some(raw) = raw else {
        return;
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let url = match &raw.lapi_url {
        Some(v) => m.check(lapi_url(v.get_ref()).map_err(|e| src.at(v, e))),
        None => {
            m.0.push(src.error(
                Some(span.clone()),
                "[crowdsec] needs lapi_url (like \"http://127.0.0.1:8080\")",
            ));
            None
        }
    };
    let pull = raw.pull.unwrap_or(true);
    let push = raw.push.unwrap_or(false);
    if !pull && !push {
        m.0.push(src.error(
            Some(span.clone()),
            "[crowdsec] with pull = false and push = false does nothing; remove the section",
        ));
    }
    // The key goes into a header: anything but a token could split it.
    let key = match &raw.api_key {
        Some(v) if !v.get_ref().is_empty() && v.get_ref().bytes().all(|b| b.is_ascii_graphic()) => {
            Some(v.get_ref().clone())
        }
        Some(v) => {
            m.0.push(src.at(v, "api_key must be the key `cscli bouncers add` printed: printable characters, no spaces"));
            None
        }
        None if pull => {
            m.0.push(src.error(
                Some(span.clone()),
                "[crowdsec] needs api_key to pull (`cscli bouncers add banner` prints one)",
            ));
            None
        }
        None => Some(String::new()),
    };
    let text = |v: &Option<Spanned<String>>, what: &str, m: &mut Mistakes| -> Option<String> {
        let v = v.as_ref()?;
        if v.get_ref().is_empty() || v.get_ref().chars().any(char::is_control) {
            m.0.push(src.at(v, format!("{what} must be printable and not empty")));
            return None;
        }
        Some(v.get_ref().clone())
    };
    let login = text(&raw.login, "login", m);
    let password = text(&raw.password, "password", m);
    let mut credentials_file = None;
    if let Some(v) = &raw.credentials_file {
        let p = PathBuf::from(v.get_ref());
        if p.is_absolute() {
            credentials_file = Some(p);
        } else {
            m.0.push(src.at(v, format!("`{}` must be an absolute path", v.get_ref())));
        }
    }
    if push && (login.is_none() || password.is_none()) && credentials_file.is_none() {
        m.0.push(src.error(
            Some(span.clone()),
            "[crowdsec] push = true needs login and password (`cscli machines add banner --password ...`), or credentials_file",
        ));
    }
    let path = |v: &Option<Spanned<String>>, m: &mut Mistakes| -> Option<PathBuf> {
        let v = v.as_ref()?;
        let p = PathBuf::from(v.get_ref());
        if p.is_absolute() {
            Some(p)
        } else {
            m.0.push(src.at(v, format!("`{}` must be an absolute path", v.get_ref())));
            None
        }
    };
    let ca_cert = path(&raw.ca_cert, m);
    let cert = path(&raw.cert, m);
    let client_key = path(&raw.key, m);
    if cert.is_some() != client_key.is_some() {
        m.0.push(src.error(
            Some(span.clone()),
            "[crowdsec] cert and key go together (LAPI's client-certificate authentication)",
        ));
    }
    let tls_keys = ca_cert.is_some() || cert.is_some();
    if tls_keys && url.as_deref().is_some_and(|u| u.starts_with("http://")) {
        if let Some(v) = raw.ca_cert.as_ref().or(raw.cert.as_ref()) {
            m.0.push(src.at(v, "ca_cert, cert and key apply to an https:// lapi_url"));
        }
    }
    let mut frequency = Duration::from_secs(10);
    if let Some(v) = &raw.update_frequency {
        if let Some(d) = m.check(duration(src, v, "update_frequency")) {
            if d < FREQUENCY.0 || d > FREQUENCY.1 {
                m.0.push(src.at(v, "update_frequency must be between 100ms and 1h"));
            } else {
                frequency = d;
            }
        }
    }
    let mut ban_blocktype = cfg.blocktype;
    if let Some(v) = &raw.blocktype {
        if let Some(b) = m.check(
            v.get_ref()
                .parse()
                .map_err(|e: crate::model::BlockTypeError| src.at(v, e.to_string())),
        ) {
            ban_blocktype = b;
        }
    }
    let mut rules = Rules::default();
    let mut captcha_blocktype = BlockType::Drop;
    if let Some(v) = &raw.captcha {
        match v.get_ref().as_str() {
            "ignore" => {}
            other => match other.parse() {
                Ok(b) => {
                    rules.captcha = true;
                    captcha_blocktype = b;
                }
                Err(_) => m.0.push(src.at(
                    v,
                    format!("captcha = `{other}`: expected ignore, drop or tarpit (banner shows no captcha: a captcha decision is ignored or banned)"),
                )),
            },
        }
    }
    for o in raw.origins.iter().flatten() {
        let name = o.get_ref();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            m.0.push(src.at(
                o,
                format!("origin `{name}` may hold only letters, digits, -, _ and ."),
            ));
        } else {
            rules.origins.push(name.clone());
        }
    }
    for (v, max, slot) in [
        (&raw.min_prefix_v4, 32, &mut rules.min_prefix_v4),
        (&raw.min_prefix_v6, 128, &mut rules.min_prefix_v6),
    ] {
        if let Some(v) = v {
            match u8::try_from(*v.get_ref()).ok().filter(|n| *n <= max) {
                Some(n) => *slot = n,
                None => {
                    m.0.push(src.at(v, format!("a prefix length between 0 and {max}")))
                }
            }
        }
    }
    if let (Some(lapi_url), Some(api_key)) = (url, key) {
        cfg.crowdsec = Some(CrowdSecConfig {
            lapi_url,
            api_key,
            pull,
            update_frequency: frequency,
            rules,
            ban_blocktype,
            captcha_blocktype,
            push,
            login,
            password,
            credentials_file,
            ca_cert,
            client_cert: cert.zip(client_key),
        });
    }
}
