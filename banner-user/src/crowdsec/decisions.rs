//! CrowdSec's decisions as its Local API sends them (`GET /v1/decisions/stream`), read and
//! checked. Nothing here trusts the answer: each decision is read on its own, so one with a
//! wrong type, an address that is none, or a prefix that would cover half the Internet is
//! refused with its reason while the others are kept.

use std::{net::IpAddr, time::Duration};

use serde::Deserialize;

use crate::addr::{fold_mapped, IpPrefix};

/// What a decision asks of a bouncer (CrowdSec's `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Remedy {
    Ban,
    Captcha,
}

/// One decision, checked: a target banner can enforce and how long it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// LAPI's id for it: several decisions may name one target, and each is deleted by id.
    pub id: i64,
    /// Who made it: `cscli`, `crowdsec` (an agent's scenario), `CAPI` (the community list),
    /// `lists`, ...
    pub origin: String,
    pub scenario: String,
    pub target: IpPrefix,
    pub remedy: Remedy,
    /// How long it still holds, as LAPI counted when it answered (zero for one that ended).
    pub remaining: Duration,
}

/// A decision that was not taken, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Its id, where it had a readable one.
    pub id: Option<i64>,
    /// Its value as sent (cut short), for the log.
    pub value: String,
    pub why: String,
}

/// One answer of the stream: decisions new since the last, and decisions deleted or expired.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub new: Vec<Decision>,
    pub deleted: Vec<Decision>,
    pub refused: Vec<Refusal>,
}

/// What a bouncer takes from LAPI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Enforce `captcha` decisions too (as bans: banner has no captcha to show).
    pub captcha: bool,
    /// Origins to take (empty: every one).
    pub origins: Vec<String>,
    /// The broadest ranges taken: a decision for 0.0.0.0/0, from a bug or a hostile
    /// server, must not cut the host off the Internet.
    pub min_prefix_v4: u8,
    pub min_prefix_v6: u8,
    /// The longest a decision is held (longer ones are cut to this).
    pub max_duration: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            captcha: false,
            origins: Vec::new(),
            min_prefix_v4: 8,
            min_prefix_v6: 32,
            max_duration: Duration::from_secs(365 * 86_400),
        }
    }
}

/// The answer was no stream at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("the answer is not the decision stream's JSON ({0})")]
    NotJson(String),
    #[error("the answer holds {0} decisions, more than the {1} taken in one answer")]
    TooMany(usize, usize),
}

/// Most decisions taken from one answer: far above CrowdSec's community list (tens of
/// thousands), far below what would exhaust memory.
pub const MAX_DECISIONS: usize = 2_000_000;

#[derive(Deserialize)]
struct RawStream {
    #[serde(default)]
    new: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    deleted: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawDecision {
    id: i64,
    origin: String,
    #[serde(default)]
    scenario: Option<String>,
    scope: String,
    value: String,
    #[serde(rename = "type")]
    kind: String,
    duration: String,
    #[serde(default)]
    simulated: Option<bool>,
}

/// Read one answer of `/v1/decisions/stream`.
pub fn parse_stream(body: &[u8], rules: &Rules) -> Result<Stream, StreamError> {
    // serde would also read a struct from an array; LAPI's answer is an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(StreamError::NotJson("not a JSON object".into()));
    }
    let raw: RawStream =
        serde_json::from_slice(body).map_err(|e| StreamError::NotJson(e.to_string()))?;
    let (new, deleted) = (raw.new.unwrap_or_default(), raw.deleted.unwrap_or_default());
    if new.len() + deleted.len() > MAX_DECISIONS {
        return Err(StreamError::TooMany(
            new.len() + deleted.len(),
            MAX_DECISIONS,
        ));
    }
    let mut stream = Stream::default();
    for (values, deleting) in [(new, false), (deleted, true)] {
        for value in values {
            match read_decision(&value, rules, deleting) {
                Ok(d) if deleting => stream.deleted.push(d),
                Ok(d) => stream.new.push(d),
                Err(r) => stream.refused.push(r),
            }
        }
    }
    Ok(stream)
}

fn read_decision(
    value: &serde_json::Value,
    rules: &Rules,
    deleting: bool,
) -> Result<Decision, Refusal> {
    let raw = RawDecision::deserialize(value).map_err(|e| Refusal {
        id: value.get("id").and_then(serde_json::Value::as_i64),
        value: short(value.get("value").and_then(|v| v.as_str()).unwrap_or("?")),
        why: format!("not a decision: {e}"),
    })?;
    let refuse = |why: String| Refusal {
        id: Some(raw.id),
        value: short(&raw.value),
        why,
    };
    let target = match raw.scope.to_ascii_lowercase().as_str() {
        "ip" => raw
            .value
            .trim()
            .parse::<IpAddr>()
            .map(|a| IpPrefix::host(fold_mapped(a)))
            .map_err(|_| refuse("scope Ip, but the value is no IP address".into()))?,
        "range" => raw
            .value
            .trim()
            .parse::<IpPrefix>()
            .map_err(|e| refuse(format!("scope Range, but the value is no prefix: {e}")))?,
        _ => {
            return Err(refuse(format!(
                "scope `{}` is not enforced (Ip and Range are)",
                short(&raw.scope)
            )))
        }
    };
    let min = if target.is_v4() {
        rules.min_prefix_v4
    } else {
        rules.min_prefix_v6
    };
    // A deletion may name anything: lifting a range never banned does nothing.
    if !deleting && target.prefix_len() < min {
        return Err(refuse(format!(
            "/{} is broader than the /{min} taken (min_prefix_v{})",
            target.prefix_len(),
            if target.is_v4() { 4 } else { 6 }
        )));
    }
    let remedy = match raw.kind.to_ascii_lowercase().as_str() {
        "ban" => Remedy::Ban,
        "captcha" if rules.captcha || deleting => Remedy::Captcha,
        "captcha" => {
            return Err(refuse(
                "type captcha is not enforced (captcha = false)".into(),
            ))
        }
        other => return Err(refuse(format!("type `{other}` is not enforced"))),
    };
    if !rules.origins.is_empty() && !rules.origins.contains(&raw.origin) {
        return Err(refuse(format!("origin `{}` is not taken", raw.origin)));
    }
    if raw.origin.is_empty() || raw.origin.len() > 64 || raw.origin.contains(char::is_control) {
        return Err(refuse(
            "the origin is empty, too long or not printable".into(),
        ));
    }
    if raw.simulated == Some(true) && !deleting {
        return Err(refuse("simulated".into()));
    }
    let remaining = match parse_go_duration(&raw.duration) {
        Ok(d) => d.min(rules.max_duration),
        Err(_) if deleting => Duration::ZERO,
        Err(e) => return Err(refuse(format!("duration `{}`: {e}", short(&raw.duration)))),
    };
    Ok(Decision {
        id: raw.id,
        origin: raw.origin,
        scenario: raw.scenario.map(|s| short(&s)).unwrap_or_default(),
        target,
        remedy,
        remaining,
    })
}

/// At most 80 characters of what a server sent, for the log.
fn short(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A Go `time.Duration` as Go prints it (`3h59m55.75s`, `-13.6ms`, `0s`). A negative one is
/// a decision that already ended: zero.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty".into());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| "a number without a unit".to_string())?;
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => return Err(format!("unknown unit `{other}`")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err("a unit without a number".into());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("`{number}` is no number"))?
        };
        let mut part = whole.checked_mul(scale).ok_or("too long")?;
        // Digits past nanoseconds cannot matter; 20 keep the product within u128.
        let mut unit_scale = scale;
        for d in fraction.bytes().take(20) {
            if !d.is_ascii_digit() {
                return Err(format!("`{number}` is no number"));
            }
            unit_scale /= 10;
            part += u128::from(d - b'0') * unit_scale;
        }
        nanos = nanos.checked_add(part).ok_or("too long")?;
        rest = tail;
    }
    if negative {
        return Ok(Duration::ZERO);
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| "too long".to_string())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_as_go_prints_them() {
        let ms = Duration::from_millis;
        assert_eq!(parse_go_duration("3h59m55.5s"), Ok(ms(14_395_500)));
        assert_eq!(
            parse_go_duration("59m59.24983964s"),
            Ok(Duration::new(3599, 249_839_640))
        );
        assert_eq!(parse_go_duration("1.5h"), Ok(ms(5_400_000)));
        assert_eq!(parse_go_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_go_duration("7µs"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_go_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        // An ended decision: LAPI sends deletions with what is left, below zero.
        assert_eq!(parse_go_duration("-13.601759ms"), Ok(Duration::ZERO));
        for bad in [
            "",
            "5",
            "h",
            "5d",
            "1h-5m",
            "1..5s",
            "s5",
            "99999999999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} read");
        }
    }

    /// An answer as LAPI 1.4.6 wrote it in the lab (`cscli decisions add` of an Ip, a Range
    /// and a captcha), with hostile entries mixed in.
    const ANSWER: &str = r#"{"deleted":[{"duration":"-13.6ms","id":9,"origin":"cscli","scenario":"x","scope":"Ip","type":"ban","value":"198.18.0.9"}],
      "new":[
        {"duration":"59m59.2s","id":1,"origin":"cscli","scenario":"test","scope":"Ip","type":"ban","value":"198.18.0.7"},
        {"duration":"1h59m59s","id":2,"origin":"CAPI","scenario":"ssh-bf","scope":"Range","type":"ban","value":"198.18.5.0/24"},
        {"duration":"3h","id":3,"origin":"cscli","scenario":"m","scope":"Ip","type":"captcha","value":"2001:db8::5"},
        {"duration":"1h","id":4,"origin":"cscli","scenario":"evil","scope":"Range","type":"ban","value":"0.0.0.0/0"},
        {"duration":"1h","id":5,"origin":"cscli","scenario":"evil","scope":"Ip","type":"ban","value":"198.18.0.7; rm -rf /"},
        {"duration":"1h","id":"six","origin":"cscli","scope":"Ip","type":"ban","value":"198.18.0.6"},
        {"duration":"1h","id":7,"origin":"cscli","scope":"Country","type":"ban","value":"FR"},
        {"duration":"1h","id":8,"origin":"cscli","scope":"Range","type":"ban","value":"198.18.5.7/24"},
        {"duration":"a week","id":10,"origin":"cscli","scope":"Ip","type":"ban","value":"198.18.0.10"},
        {"duration":"1h","id":11,"origin":"cscli","scope":"Ip","type":"ban","value":"::ffff:198.18.0.11"},
        {"duration":"1h","id":12,"origin":"cscli","scope":"Ip","type":"ban","value":"198.18.0.12","simulated":true}
      ]}"#;

    #[test]
    fn a_stream_keeps_what_it_can_enforce_and_says_why_it_refused_the_rest() {
        let s = parse_stream(ANSWER.as_bytes(), &Rules::default()).unwrap();
        let kept: Vec<(i64, String)> = s.new.iter().map(|d| (d.id, d.target.to_string())).collect();
        assert_eq!(
            kept,
            [
                (1, "198.18.0.7".to_string()),
                (2, "198.18.5.0/24".into()),
                (11, "198.18.0.11".into())
            ]
        );
        assert_eq!(s.new[1].origin, "CAPI");
        assert_eq!(s.new[1].remaining, Duration::from_secs(7199));
        assert_eq!(s.deleted.len(), 1);
        assert_eq!(s.deleted[0].remaining, Duration::ZERO);
        let why = |id: i64| {
            s.refused
                .iter()
                .find(|r| r.id == Some(id))
                .map(|r| r.why.clone())
                .unwrap_or_else(|| panic!("decision {id} not refused"))
        };
        assert!(why(3).contains("captcha"), "{}", why(3));
        assert!(why(4).contains("broader than the /8"), "{}", why(4));
        assert!(why(5).contains("no IP address"), "{}", why(5));
        assert!(why(7).contains("Country"), "{}", why(7));
        assert!(why(8).contains("no prefix"), "{}", why(8));
        assert!(why(10).contains("a week"), "{}", why(10));
        assert!(why(12).contains("simulated"), "{}", why(12));
        // A wrong type is refused on its own, with what could be read of it.
        let six = s.refused.iter().find(|r| r.value == "198.18.0.6").unwrap();
        assert!(six.id.is_none() && six.why.starts_with("not a decision"));
        assert_eq!(s.refused.len(), 8);
    }

    #[test]
    fn rules_choose_captcha_origins_and_breadth() {
        let rules = Rules {
            captcha: true,
            origins: vec!["cscli".into()],
            min_prefix_v4: 0,
            ..Rules::default()
        };
        let s = parse_stream(ANSWER.as_bytes(), &rules).unwrap();
        let ids: Vec<i64> = s.new.iter().map(|d| d.id).collect();
        assert_eq!(ids, [1, 3, 4, 11], "CAPI's refused, captcha and /0 taken");
        assert_eq!(s.new[1].remedy, Remedy::Captcha);
    }

    #[test]
    fn an_answer_that_is_no_stream_is_refused_whole() {
        let rules = Rules::default();
        for bad in [&b"<html>502</html>"[..], b"[]", b"{\"new\": 5}", b""] {
            assert!(
                matches!(parse_stream(bad, &rules), Err(StreamError::NotJson(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // LAPI's empty answer.
        let s = parse_stream(br#"{"deleted":null,"new":null}"#, &rules).unwrap();
        assert_eq!(s, Stream::default());
    }
}
