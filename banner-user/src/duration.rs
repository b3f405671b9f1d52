//! Durations as users write them: `90s`, `10m`, `1h`, `1d`, `1w`, combinations such as `1h30m`,
//! or plain seconds (`3600`). Zero and negative durations are refused: a ban or window of no
//! length is always a mistake.

use std::{fmt, time::Duration};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative duration `{0}`: durations must be positive (use `permanent` for a ban that never expires)")]
    Negative(String),
    #[error("zero duration `{0}`: durations must be positive")]
    Zero(String),
    #[error(
        "`{input}` is not a duration: {why} (write e.g. 90s, 10m, 1h, 1d, 1w or plain seconds)"
    )]
    Invalid { input: String, why: String },
    #[error("duration `{0}` is too long (at most 100 years; use `permanent` for a ban that never expires)")]
    Overflow(String),
}

/// A century: longer is a typo, and would overflow time arithmetic further on.
const MAX_SECS: u64 = 100 * 365 * 86_400;

/// Parse a positive duration.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    let invalid = |why: &str| DurationError::Invalid {
        input: text.to_string(),
        why: why.to_string(),
    };
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid("expected a number"));
        }
        let (number, tail) = rest.split_at(digits);
        let value: u64 = number
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_string()))?;
        let tail = tail.trim_start();
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            // A bare number is seconds, but only on its own: `1h30` is ambiguous.
            "" if total == 0 && tail.is_empty() => 1,
            "" => return Err(invalid("every number after the first needs a unit")),
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3_600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            other => return Err(invalid(&format!("unknown unit `{other}`"))),
        };
        total = value
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        rest = tail.trim_start();
    }
    if total == 0 {
        return Err(DurationError::Zero(text.to_string()));
    }
    if total > MAX_SECS {
        return Err(DurationError::Overflow(text.to_string()));
    }
    Ok(Duration::from_secs(total))
}

/// A ban's length: for some time, or until unbanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanLength {
    For(Duration),
    Permanent,
}

impl BanLength {
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        match input.trim() {
            "permanent" | "forever" => Ok(Self::Permanent),
            other => parse_duration(other).map(Self::For),
        }
    }
}

impl fmt::Display for BanLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::For(d) => f.write_str(&format_duration(*d)),
            Self::Permanent => f.write_str("permanent"),
        }
    }
}

/// As users write it (`1h`, `permanent`), so configs, the control protocol and JSON output
/// read the same.
impl serde::Serialize for BanLength {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for BanLength {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The shortest exact form: `1h`, `1h30m`, `1w2d`, `45s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, scale) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= scale {
            out.push_str(&format!("{}{unit}", secs / scale));
            secs %= scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .as_secs()
    }

    #[test]
    fn units_scale_as_documented() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("1h"), 3_600);
        assert_eq!(secs("1d"), 86_400);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs("3600"), 3_600);
        assert_eq!(secs("1h30m"), 5_400);
        assert_eq!(secs("1h 30m"), 5_400);
        assert_eq!(secs("2 days"), 172_800);
    }

    #[test]
    fn zero_negative_and_garbage_are_refused() {
        assert_eq!(parse_duration("0"), Err(DurationError::Zero("0".into())));
        assert_eq!(parse_duration("0s"), Err(DurationError::Zero("0s".into())));
        assert_eq!(
            parse_duration("-5m"),
            Err(DurationError::Negative("-5m".into()))
        );
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("10x"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration("h"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration("1h30"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999w"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_duration("5300w"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn formatting_round_trips() {
        for s in ["1h", "1h30m", "1w2d", "45s", "10m", "1d1s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn ban_length_knows_permanent() {
        assert_eq!(BanLength::parse("permanent"), Ok(BanLength::Permanent));
        assert_eq!(
            BanLength::parse("1h"),
            Ok(BanLength::For(Duration::from_secs(3600)))
        );
        assert!(BanLength::parse("-1").is_err());
    }
}
