//! `[syslog]`: the receiver for the hosts behind a gateway (RFC 3164 and 5424, over UDP
//! and TCP). Off unless the section is there; nothing is accepted until `allowed_senders`
//! names who may send.

use super::*;
use crate::source::syslog::{Listen, SyslogConfig};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSyslog {
    pub(super) listen: Option<Vec<Spanned<String>>>,
    pub(super) allowed_senders: Option<Vec<Spanned<String>>>,
    pub(super) max_line: Option<Spanned<i64>>,
    pub(super) rate_limit: Option<Spanned<i64>>,
}

pub(super) fn resolve_syslog(
    src: &Source,
    raw: Option<Spanned<RawSyslog>>,
    cfg: &mut Config,
    m: &mut Mistakes,
) {
    let Some(raw) = raw else {
        return;
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let mut out = SyslogConfig::default();
    for l in raw.listen.iter().flatten() {
        match l.get_ref().parse::<Listen>() {
            Ok(v) => out.listen.push(v),
            Err(e) => m.0.push(src.at(l, e)),
        }
    }
    if raw.listen.is_none() {
        m.0.push(src.error(
            Some(span.clone()),
            "[syslog] needs listen (like [\"udp://0.0.0.0:514\", \"tcp://0.0.0.0:514\"])",
        ));
    }
    for a in raw.allowed_senders.iter().flatten() {
        match a.get_ref().parse::<IpPrefix>() {
            Ok(net) => out.allowed_senders.push(net),
            Err(e) => m.0.push(src.at(a, format!("allowed_senders: {e}"))),
        }
    }
    if let Some(v) = &raw.max_line {
        match usize::try_from(*v.get_ref())
            .ok()
            .filter(|n| (256..=1 << 20).contains(n))
        {
            Some(n) => out.max_line = n,
            None => {
                m.0.push(src.at(v, "max_line must be between 256 and 1048576 bytes"))
            }
        }
    }
    if let Some(v) = &raw.rate_limit {
        match u32::try_from(*v.get_ref()).ok().filter(|n| *n > 0) {
            Some(n) => out.rate_limit = n,
            None => {
                m.0.push(src.at(v, "rate_limit must be a positive number of lines a second"))
            }
        }
    }
    if out.allowed_senders.is_empty() && raw.listen.is_some() {
        cfg.warnings.push(
            "[syslog] allowed_senders is empty: every message is refused until it names the hosts that may send".into(),
        );
    }
    cfg.syslog = Some(out);
}
