//! Timestamps at the start of log lines: RFC 3164 (`Nov 26 01:02:03`, no year, local time),
//! RFC 3339 / ISO 8601 (`2026-11-26T01:02:03.123456+00:00`), TAI64N (`@4000...`), a custom
//! strftime pattern, or none (the line's arrival time is used).
//!
//! Parsing is by hand for the two common forms: it runs on every line and must stay cheap.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike as _, Local, NaiveDate, NaiveDateTime, Offset as _, TimeZone as _};

/// How a filter finds the time of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateMode {
    /// RFC 3339/ISO 8601, RFC 3164 or TAI64N if the line starts with one, else the arrival
    /// time.
    Auto,
    /// A chrono strftime pattern at the start of the line.
    Pattern(String),
    /// Lines carry no time: use the arrival time.
    None,
}

impl DateMode {
    pub fn parse(spec: Option<&str>) -> Result<Self, String> {
        match spec {
            None | Some("auto") => Ok(Self::Auto),
            Some("none" | "") => Ok(Self::None),
            Some(p) => {
                // Check the pattern once, so a typo is a config error and not silence.
                let probe = chrono::format::StrftimeItems::new(p);
                if probe
                    .into_iter()
                    .any(|i| matches!(i, chrono::format::Item::Error))
                {
                    return Err(format!("datepattern `{p}` is not a valid strftime pattern"));
                }
                Ok(Self::Pattern(p.to_string()))
            }
        }
    }
}

/// Local UTC offsets by day, for the days whose offset holds all day (a day the clock
/// changes is asked of the time zone database at every read). Direct-mapped on the day:
/// a live log stays on one day, and a log replayed over months (fail2ban's samples, an
/// archive read after an outage) hits it as well. Two days share a slot only when they
/// are [`OFFSET_DAYS`] apart: with 64 slots, ten dates of a replayed log read in two
/// candidate years took three such pairs, and every line asked the database twice.
#[derive(Debug, Clone)]
pub struct LocalOffsets {
    /// (day since the common era, offset seconds east of UTC), by day modulo the length.
    days: Box<[(i32, i32); OFFSET_DAYS]>,
}

/// Slots of [`LocalOffsets`]: nearly three years of days (8 KiB).
const OFFSET_DAYS: usize = 1024;

impl Default for LocalOffsets {
    fn default() -> Self {
        Self {
            days: Box::new([(i32::MIN, 0); OFFSET_DAYS]),
        }
    }
}

impl LocalOffsets {
    /// The slot of `day` (since the common era).
    fn slot(&self, day: i32) -> usize {
        day.rem_euclid(self.days.len() as i32) as usize
    }

    /// The offset of every time on `day`, where it is remembered.
    fn known(&self, day: i32) -> Option<i32> {
        let (remembered, offset) = self.days[self.slot(day)];
        (remembered == day).then_some(offset)
    }

    /// The offset (seconds east of UTC) of local time `dt`: the earlier where the clock
    /// went back, None where it sprang over `dt`.
    pub fn offset(&mut self, dt: &NaiveDateTime) -> Option<i32> {
        let day = dt.date().num_days_from_ce();
        if let Some(known) = self.known(day) {
            return Some(known);
        }
        let slot = self.slot(day);
        let of = |t: &NaiveDateTime| {
            Local
                .offset_from_local_datetime(t)
                .earliest()
                .map(|o| o.fix().local_minus_utc())
        };
        let first = dt.date().and_hms_opt(0, 0, 0)?;
        let last = dt.date().and_hms_opt(23, 59, 59)?;
        match (of(&first), of(&last)) {
            (Some(a), Some(b)) if a == b => {
                self.days[slot] = (day, a);
                Some(a)
            }
            _ => of(dt),
        }
    }
}

/// Remembers local UTC offsets by day and the year for RFC 3164's missing one, so lines
/// do not consult the time zone database one by one.
#[derive(Debug, Default)]
pub struct DateCache {
    offsets: LocalOffsets,
    /// The local year for "now" in a span of a minute, for RFC 3164's missing year.
    year: Option<(SystemTime, SystemTime, i32)>,
    /// The last RFC 3164 stamp read (to the second): a busy log writes the same second on
    /// many lines in a row.
    stamp: Option<Remembered>,
}

/// An RFC 3164 stamp as read: its 15 bytes, the year "now" was in, its whole second, and
/// the span of "now" in which it reads the same (this minute's year, and "now" on the
/// same side of the day before the stamp), without asking the year again.
#[derive(Debug, Clone, Copy)]
struct Remembered {
    key: [u8; 15],
    year: i32,
    time: SystemTime,
    holds: (SystemTime, SystemTime),
}

impl Remembered {
    fn holds_at(&self, now: SystemTime) -> bool {
        self.holds.0 <= now && now < self.holds.1
    }
}

impl DateCache {
    fn local_offset(&mut self, dt: &NaiveDateTime) -> i32 {
        self.offsets.offset(dt).unwrap_or(0)
    }

    /// Local `y-m-d h:m:s.nanos` as a time. Where the day's offset is remembered (nearly
    /// every line) it is counted by hand; chrono builds the date only for a day it asks
    /// the time zone database about. Each line of a replayed log is a new second, and
    /// chrono's date, time and timestamp cost more than the rest of the date's reading.
    fn local(
        &mut self,
        (y, mo, d): (i32, u32, u32),
        (h, mi, s): (u32, u32, u32),
        nanos: u32,
    ) -> Option<SystemTime> {
        let (wall, day) = wall_seconds((y, mo, d), (h, mi, s))?;
        let off = match self.offsets.known(day) {
            Some(off) => off,
            None => {
                let dt = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_nano_opt(h, mi, s, nanos)?;
                self.local_offset(&dt)
            }
        };
        since_epoch(wall - i64::from(off), nanos)
    }

    /// The local year now; recomputed at most once a minute.
    fn year_at(&mut self, now: SystemTime) -> i32 {
        match self.year {
            Some((from, until, y)) if from <= now && now < until => y,
            _ => {
                let local: chrono::DateTime<Local> = now.into();
                let minute = Duration::from_secs(60);
                self.year = Some((
                    now.checked_sub(minute).unwrap_or(now),
                    now.checked_add(minute).unwrap_or(now),
                    local.year(),
                ));
                local.year()
            }
        }
    }
}

/// Parse a timestamp at the start of `line`. Returns the time and the rest of the line after
/// the timestamp and one space.
pub fn parse_leading<'a, L: AsRef<[u8]> + ?Sized>(
    line: &'a L,
    mode: &DateMode,
    now: SystemTime,
    cache: &mut DateCache,
) -> Option<(SystemTime, &'a [u8])> {
    let line = line.as_ref();
    match mode {
        DateMode::None => None,
        DateMode::Auto => same_second(line, now, cache)
            .or_else(|| parse_rfc3339(line, cache))
            .or_else(|| parse_rfc3164(line, now, cache))
            .or_else(|| parse_tai64n(line)),
        DateMode::Pattern(p) => {
            // chrono reads text: take the valid UTF-8 start of the line.
            let text = match std::str::from_utf8(line) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(&line[..e.valid_up_to()]).ok()?,
            };
            let (dt, rest) = NaiveDateTime::parse_and_remainder(text, p).ok()?;
            let off = cache.local_offset(&dt);
            let rest = &line[text.len() - rest.len()..];
            Some((to_system(dt, off)?, rest.strip_prefix(b" ").unwrap_or(rest)))
        }
    }
}

/// `y-m-d h:m:s` read as UTC, in seconds since the epoch, with its day since the common
/// era; None where chrono has no such date or time (February 30th, 24:00, a 60th second).
fn wall_seconds((y, mo, d): (i32, u32, u32), (h, mi, s): (u32, u32, u32)) -> Option<(i64, i32)> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    let years = NaiveDate::MIN.year()..=NaiveDate::MAX.year();
    if !(1..=month_days).contains(&d) || h > 23 || mi > 59 || s > 59 || !years.contains(&y) {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date, with years starting in March
    // so that the leap day is the last of its year.
    let (y, mo, d) = (i64::from(y), i64::from(mo), i64::from(d));
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    // 1970-01-01 is day 719,163 since the common era (chrono's count, 0001-01-01 is day 1).
    Some((secs, (days + 719_163) as i32))
}

fn since_epoch(secs: i64, nanos: u32) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn to_system(dt: NaiveDateTime, offset_secs: i32) -> Option<SystemTime> {
    let secs = dt.and_utc().timestamp() - i64::from(offset_secs);
    let nanos = dt.and_utc().timestamp_subsec_nanos();
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// An optional fraction of a second at `at` (after one of `marks`): its nanoseconds and the
/// index after it.
fn fraction(b: &[u8], at: usize, marks: &[u8]) -> (u32, usize) {
    if !b.get(at).is_some_and(|c| marks.contains(c)) {
        return (0, at);
    }
    let start = at + 1;
    let mut i = start;
    let mut nanos = 0u32;
    while i < b.len() && b[i].is_ascii_digit() {
        if i - start < 9 {
            nanos = nanos * 10 + u32::from(b[i] - b'0');
        }
        i += 1;
    }
    for _ in (i - start).min(9)..9 {
        nanos *= 10;
    }
    (nanos, i)
}

/// `2026-11-26T01:02:03[.frac][Z|±HH:MM|±HHMM]` (or a space instead of `T`). The date's
/// separators may also both be `/` or `.`, as nginx and others write it (`2026/11/26
/// 01:02:03`): fail2ban's ISO template reads those too.
fn parse_rfc3339<'a>(line: &'a [u8], cache: &mut DateCache) -> Option<(SystemTime, &'a [u8])> {
    let b = line;
    if b.len() < 19
        || !matches!(b[4], b'-' | b'/' | b'.')
        || b[7] != b[4]
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (h, mi, s) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    let (nanos, mut i) = fraction(b, 19, b",.");
    let offset = match b.get(i) {
        Some(b'Z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)?;
            let (om, len) = if b.get(i + 3) == Some(&b':') {
                (digits(b, i + 4, 2)?, 6)
            } else {
                (digits(b, i + 3, 2)?, 5)
            };
            i += len;
            let v = (oh * 3600 + om * 60) as i32;
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => {
            let rest = &line[i..];
            let t = cache.local((y as i32, mo, d), (h, mi, s), nanos)?;
            return Some((t, rest.strip_prefix(b" ").unwrap_or(rest)));
        }
    };
    let (wall, _) = wall_seconds((y as i32, mo, d), (h, mi, s))?;
    let rest = &line[i..];
    Some((
        since_epoch(wall - i64::from(offset), nanos)?,
        rest.strip_prefix(b" ").unwrap_or(rest),
    ))
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The line starts with the last RFC 3164 stamp read, to the second and in the two-digit
/// or space-padded day's 15 bytes, with no fraction: a busy log writes the same second on
/// many lines in a row, and reading it again cost more than the rest of a line that
/// another program wrote. Anything else (another second, a fraction, a new year, a stamp
/// ahead of `now`) is read in full by [`parse_rfc3164`].
fn same_second<'a>(
    line: &'a [u8],
    now: SystemTime,
    cache: &mut DateCache,
) -> Option<(SystemTime, &'a [u8])> {
    let r = cache.stamp?;
    // A NUL ends the key of the unpadded day's 14-byte form; that form is read in full.
    if r.key[14] == 0 || line.get(..15)? != r.key || line.get(15) != Some(&b' ') {
        return None;
    }
    if !r.holds_at(now) {
        return None;
    }
    Some((r.time, &line[16..]))
}

/// `Nov 26 01:02:03`, `Nov  6 01:02:03` or `Nov 6 01:02:03` (optionally `.frac`): local time,
/// the year that puts it closest to (not more than a day after) now. The one-digit day
/// without padding is what BSD syslogd and some relays write (fail2ban's template reads it).
fn parse_rfc3164<'a>(
    line: &'a [u8],
    now: SystemTime,
    cache: &mut DateCache,
) -> Option<(SystemTime, &'a [u8])> {
    let b = line;
    if b.len() < 14 || b[3] != b' ' {
        return None;
    }
    let (day, at) = day_at(b, 4)?;
    if b.len() < at + 8 || b[at + 2] != b':' || b[at + 5] != b':' {
        return None;
    }
    let month = month_at(b, 0)?;
    let (nanos, i) = fraction(b, at + 8, b".");
    let year = cache.year_at(now);
    // The stamp's whole second in a given year.
    let second_in = |cache: &mut DateCache, year: i32| -> Option<SystemTime> {
        let (h, mi, s) = (
            digits(b, at, 2)?,
            digits(b, at + 3, 2)?,
            digits(b, at + 6, 2)?,
        );
        cache.local((year, month, day), (h, mi, s), 0)
    };
    // The stamp as written, padded to 15 bytes (the unpadded day's form ends in a NUL).
    let mut key = [0u8; 15];
    key[..at + 8].copy_from_slice(&b[..at + 8]);
    let frac = Duration::from_nanos(u64::from(nanos));
    let whole = match cache.stamp {
        // Read before in this year, and `now` still where that reading holds.
        Some(r) if r.key == key && r.year == year && r.holds_at(now) => r.time,
        _ => read_year(cache, key, year, frac, now, second_in)?,
    };
    let t = whole + frac;
    let rest = &line[i..];
    Some((t, rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// The day at `i` written `dd `, ` d ` or `d `, and where the hour after it starts.
fn day_at(b: &[u8], i: usize) -> Option<(u32, usize)> {
    match (*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?) {
        (b' ', d, b' ') if d.is_ascii_digit() => Some((u32::from(d - b'0'), i + 3)),
        (t, d, b' ') if t.is_ascii_digit() && d.is_ascii_digit() => {
            Some((u32::from(t - b'0') * 10 + u32::from(d - b'0'), i + 3))
        }
        (d, b' ', _) if d.is_ascii_digit() => Some((u32::from(d - b'0'), i + 2)),
        _ => None,
    }
}

/// The month (1-12) whose English abbreviation is at `i`.
fn month_at(b: &[u8], i: usize) -> Option<u32> {
    let name = b.get(i..i + 3)?;
    MONTHS
        .iter()
        .position(|m| name == &m[..])
        .map(|m| m as u32 + 1)
}

/// The whole second of a stamp read for `year`, in the year that puts it not more than a
/// day after `now` (a December line read in January is last year's), remembered with the
/// span of `now` where that reading holds: this minute's year, and `now` on the same side
/// of the day before the stamp. The year is decided once a stamp, not once a line.
fn read_year(
    cache: &mut DateCache,
    key: [u8; 15],
    year: i32,
    frac: Duration,
    now: SystemTime,
    second_in: impl Fn(&mut DateCache, i32) -> Option<SystemTime>,
) -> Option<SystemTime> {
    let day = Duration::from_secs(86_400);
    let this = second_in(cache, year)?;
    let (from, until) = cache.year.map_or((now, now), |(f, u, _)| (f, u));
    let ahead = this.checked_sub(day).unwrap_or(UNIX_EPOCH);
    let (t, holds) = if this + frac > now + day {
        (second_in(cache, year - 1)?, (from, until.min(ahead)))
    } else {
        // A second later, no fraction can take the stamp past a day ahead.
        let after = ahead.checked_add(Duration::from_secs(1)).unwrap_or(ahead);
        (this, (from.max(after), until))
    };
    cache.stamp = Some(Remembered {
        key,
        year,
        time: t,
        holds,
    });
    Some(t)
}

/// The forms of fail2ban's default date templates that `Auto` leaves alone, read by hand at
/// the start of `line` for the built-in filters, which meet them in services' own logs
/// (each cost a search of fail2ban's templates a line, more than the rest of the line):
/// asctime with a weekday and a year (`Sun Jul 28 21:27:56.549667 2013`: apache 2.2's
/// error log, vsftpd's own log) and MySQL's `130324 17:56:13` (or `130324  0:04:00`). Local
/// time, as fail2ban reads them. Anything else, or anything unusual in these (a one-digit
/// minute, a year outside 1900-2099), is None: the caller asks fail2ban's templates. Not
/// part of `Auto`: a banner filter that reads such a line reads it whole.
pub fn parse_service<'a>(line: &'a [u8], cache: &mut DateCache) -> Option<(SystemTime, &'a [u8])> {
    parse_asctime(line, cache).or_else(|| parse_mysql(line, cache))
}

const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// `HH:MM:SS` at `at`.
fn clock(b: &[u8], at: usize) -> Option<(u32, u32, u32)> {
    if b.get(at + 2) != Some(&b':') || b.get(at + 5) != Some(&b':') {
        return None;
    }
    Some((
        digits(b, at, 2)?,
        digits(b, at + 3, 2)?,
        digits(b, at + 6, 2)?,
    ))
}

/// A date ends at a word's end (fail2ban's templates say so): nothing that continues a
/// word follows it.
fn ends_word(b: &[u8], at: usize) -> bool {
    !b.get(at)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `Www Mmm dd HH:MM:SS[.frac] YYYY` (the day also ` d` or `d`).
fn parse_asctime<'a>(b: &'a [u8], cache: &mut DateCache) -> Option<(SystemTime, &'a [u8])> {
    if b.get(3) != Some(&b' ')
        || b.get(7) != Some(&b' ')
        || !WEEKDAYS.iter().any(|w| b.get(..3) == Some(&w[..]))
    {
        return None;
    }
    let month = month_at(b, 4)?;
    let (day, at) = day_at(b, 8)?;
    let time = clock(b, at)?;
    let (nanos, i) = fraction(b, at + 8, b".");
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let year = digits(b, i + 1, 4).filter(|y| (1900..=2099).contains(y))?;
    if !ends_word(b, i + 5) {
        return None;
    }
    Some((
        cache.local((year as i32, month, day), time, nanos)?,
        &b[i + 5..],
    ))
}

/// `YYMMDD HH:MM:SS`, `YYMMDD  H:MM:SS` (fail2ban: the year is 2000's).
fn parse_mysql<'a>(b: &'a [u8], cache: &mut DateCache) -> Option<(SystemTime, &'a [u8])> {
    let (y, mo, d) = (digits(b, 0, 2)?, digits(b, 2, 2)?, digits(b, 4, 2)?);
    if b.get(6) != Some(&b' ') {
        return None;
    }
    // `  ?%H`: a second space may pad the hour, which has one digit or two.
    let at = 7 + usize::from(b.get(7) == Some(&b' '));
    let wide = usize::from(b.get(at + 1) != Some(&b':'));
    let hour = digits(b, at, 1 + wide)?;
    let colon = at + 1 + wide;
    if b.get(colon) != Some(&b':') || b.get(colon + 3) != Some(&b':') {
        return None;
    }
    let time = (hour, digits(b, colon + 1, 2)?, digits(b, colon + 4, 2)?);
    let end = colon + 6;
    if !ends_word(b, end) {
        return None;
    }
    Some((cache.local((2000 + y as i32, mo, d), time, 0)?, &b[end..]))
}

/// `20/Jan/2015:19:53:28 +0100`: a web access log's time (the common log format, between
/// `[` and `]`), which fail2ban's `%d/%b/%ExY:%H:%M:%S %z` template reads. None for
/// another spelling (the caller asks fail2ban's templates).
pub fn parse_clf(b: &[u8]) -> Option<(SystemTime, &[u8])> {
    // Read in place from its fixed 26 bytes: every access log line has one, and the
    // general readers' bounds checks and loops were most of its cost.
    let d: &[u8; 26] = b.get(..26)?.try_into().ok()?;
    if d[2] != b'/' || d[6] != b'/' || d[11] != b':' || d[14] != b':' || d[17] != b':' {
        return None;
    }
    if d[20] != b' ' || !ends_word(b, 26) {
        return None;
    }
    let two = |i: usize| {
        let (tens, ones) = (d[i].wrapping_sub(b'0'), d[i + 1].wrapping_sub(b'0'));
        (tens < 10 && ones < 10).then_some(u32::from(tens) * 10 + u32::from(ones))
    };
    let day = two(0)?;
    let month = month_at(d, 3)?;
    let year = two(7)? * 100 + two(9)?;
    if !(1900..=2099).contains(&year) {
        return None;
    }
    let (h, mi, s) = (two(12)?, two(15)?, two(18)?);
    let sign: i64 = match d[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zone = sign * i64::from(two(22)? * 3600 + two(24)? * 60);
    let (wall, _) = wall_seconds((year as i32, month, day), (h, mi, s))?;
    Some((since_epoch(wall - zone, 0)?, &b[26..]))
}

/// `@4000000037c219bf2ef02e94` (daemontools' and s6's TAI64N label) at the line's start.
fn parse_tai64n(line: &[u8]) -> Option<(SystemTime, &[u8])> {
    let label = line.get(..25)?;
    if label[0] != b'@' || !label[1..].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let secs = tai64n_seconds(label)?;
    Some((
        UNIX_EPOCH.checked_add(Duration::from_secs(secs))?,
        line[25..].trim_ascii_start(),
    ))
}

/// The seconds of a TAI64N label (`@` and 24 hex digits), as fail2ban reads them: the
/// label's 2^62 offset dropped, nanoseconds not kept.
pub fn tai64n_seconds(label: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(label.get(2..17)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike as _;

    /// The hand count of a date's seconds is chrono's, day by day over four centuries'
    /// turns (leap years, 1900 and 2100 not, 2000 yes), and refuses what chrono refuses.
    #[test]
    fn dates_counted_by_hand_are_chronos() {
        let mut day = NaiveDate::from_ymd_opt(1599, 12, 25).unwrap();
        let end = NaiveDate::from_ymd_opt(2401, 3, 2).unwrap();
        let mut checked = 0;
        while day < end {
            let (y, mo, d) = (day.year(), day.month(), day.day());
            for hms in [(0, 0, 0), (13, 7, 9), (23, 59, 59)] {
                let dt = day.and_hms_opt(hms.0, hms.1, hms.2).unwrap();
                let (secs, ce) = wall_seconds((y, mo, d), hms).unwrap();
                assert_eq!(secs, dt.and_utc().timestamp(), "{dt}");
                assert_eq!(ce, day.num_days_from_ce(), "{dt}");
            }
            day = day.succ_opt().unwrap();
            checked += 1;
        }
        assert!(checked > 290_000);
        for y in [1900, 2000, 2024, 2025, 2100] {
            for mo in 0..=13 {
                for d in [0, 1, 28, 29, 30, 31, 32] {
                    let chrono = NaiveDate::from_ymd_opt(y, mo, d).is_some();
                    assert_eq!(
                        wall_seconds((y, mo, d), (0, 0, 0)).is_some(),
                        chrono,
                        "{y}-{mo}-{d}"
                    );
                }
            }
        }
        for hms in [(24, 0, 0), (0, 60, 0), (0, 0, 60)] {
            assert!(wall_seconds((2026, 11, 30), hms).is_none(), "{hms:?}");
        }
    }

    fn unix(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        let mut c = DateCache::default();
        let now = SystemTime::now();
        let (t, rest) = parse_leading(
            "2026-11-26T01:02:03.123456+00:00 host sshd[1]: x",
            &DateMode::Auto,
            now,
            &mut c,
        )
        .unwrap();
        assert_eq!(unix(t), 1_795_654_923);
        assert_eq!(rest, b"host sshd[1]: x");
        let (t2, _) = parse_leading(
            "2026-11-26T02:02:03+01:00 h p: x",
            &DateMode::Auto,
            now,
            &mut c,
        )
        .unwrap();
        assert_eq!(unix(t2), 1_795_654_923);
        let (t3, _) =
            parse_leading("2026-11-26 01:02:03Z h p: x", &DateMode::Auto, now, &mut c).unwrap();
        assert_eq!(unix(t3), 1_795_654_923);
    }

    #[test]
    fn iso_dates_with_slashes_or_dots_read_by_hand() {
        let mut c = DateCache::default();
        let now = SystemTime::now();
        let (t, rest) = parse_leading(
            "2026/11/26 01:02:03Z [error] 1#0: x",
            &DateMode::Auto,
            now,
            &mut c,
        )
        .unwrap();
        assert_eq!(unix(t), 1_795_654_923);
        assert_eq!(rest, b"[error] 1#0: x");
        let (t2, _) =
            parse_leading("2026.11.26 01:02:03Z x", &DateMode::Auto, now, &mut c).unwrap();
        assert_eq!(unix(t2), 1_795_654_923);
        // Mixed separators are no date this reader knows (fail2ban's templates decide).
        assert!(parse_leading("2026/11-26 01:02:03Z x", &DateMode::Auto, now, &mut c).is_none());
        assert!(parse_leading("2026_11_26 01:02:03Z x", &DateMode::Auto, now, &mut c).is_none());
    }

    /// Unix seconds (and nanoseconds) of local `y-m-d h:m:s`, by chrono.
    fn local_unix(y: i32, mo: u32, d: u32, (h, mi, s): (u32, u32, u32)) -> i64 {
        Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(y, mo, d)
                    .unwrap()
                    .and_hms_opt(h, mi, s)
                    .unwrap(),
            )
            .earliest()
            .unwrap()
            .timestamp()
    }

    #[test]
    fn services_own_dates_read_by_hand_in_local_time() {
        let mut c = DateCache::default();
        let at = |line: &str, c: &mut DateCache| {
            let (t, rest) = parse_service(line.as_bytes(), c)?;
            let d = t.duration_since(UNIX_EPOCH).unwrap();
            Some((
                d.as_secs() as i64,
                d.subsec_micros(),
                String::from_utf8(rest.to_vec()).unwrap(),
            ))
        };
        // apache 2.2's error log (inside its `[...]`), with and without a fraction.
        assert_eq!(
            at(
                "Sun Jul 28 21:27:56.549667 2013] [auth_digest:error]",
                &mut c
            ),
            Some((
                local_unix(2013, 7, 28, (21, 27, 56)),
                549_667,
                "] [auth_digest:error]".into()
            ))
        );
        assert_eq!(
            at("Sat Jun 01 02:17:42 2013] [error]", &mut c),
            Some((local_unix(2013, 6, 1, (2, 17, 42)), 0, "] [error]".into()))
        );
        // vsftpd: a space-padded day, and the unpadded one.
        assert_eq!(
            at("Thu Sep  8 00:39:49 2016 [pid 15019]", &mut c),
            Some((
                local_unix(2016, 9, 8, (0, 39, 49)),
                0,
                " [pid 15019]".into()
            ))
        );
        assert_eq!(
            at("Thu Sep 8 00:39:49 2016 x", &mut c).map(|t| t.0),
            Some(local_unix(2016, 9, 8, (0, 39, 49)))
        );
        // MySQL: a two-digit year of the 2000s, the hour padded by a second space.
        assert_eq!(
            at("130324  0:04:00 [Warning]", &mut c),
            Some((local_unix(2013, 3, 24, (0, 4, 0)), 0, " [Warning]".into()))
        );
        assert_eq!(
            at("130324 17:56:13 [Warning]", &mut c),
            Some((
                local_unix(2013, 3, 24, (17, 56, 13)),
                0,
                " [Warning]".into()
            ))
        );
        assert_eq!(
            at("130324 7:56:13 x", &mut c).map(|t| t.0),
            Some(local_unix(2013, 3, 24, (7, 56, 13)))
        );
        // What fail2ban's templates read otherwise, or not at all, is left to them.
        for other in [
            "Xyz Jul 28 21:27:56 2013 x", // no weekday
            "Sun Jul 28 21:27:56 2013x",  // the year runs into a word
            "Sun Jul 28 21:27:56 2213 x", // no year of fail2ban's
            "Sun Jul 28 21:27:56 x",      // no year: the templates guess it
            "Sun Jul 32 21:27:56 2013 x", // no such day
            "Jul 28 21:27:56 2013 x",     // Auto's RFC 3164 reads it
            "131324 17:56:13 x",          // no such month
            "130324 17:5:13 x",           // a one-digit minute
            "1303241 17:56:13 x",
        ] {
            assert_eq!(at(other, &mut c), None, "{other}");
        }
    }

    #[test]
    fn access_log_times_read_by_hand_with_their_zone() {
        let (t, rest) = parse_clf(b"20/Jan/2015:19:53:28 +0100] \"GET /").unwrap();
        // 2015-01-20T18:53:28Z
        assert_eq!(unix(t), 1_421_780_008);
        assert_eq!(rest, b"] \"GET /");
        let (t, _) = parse_clf(b"20/Jan/2015:19:53:28 -0530]").unwrap();
        // 2015-01-21T01:23:28Z
        assert_eq!(unix(t), 1_421_803_408);
        for other in [
            &b"20/Jan/2015:19:53:28]"[..], // no zone: the templates read local time
            b"20/Jan/2015:19:53:28 +01:00]", // another spelling of the zone
            b"20/Jan/2015:24:53:28 +0100]", // no such hour
            b"2/Jan/2015:19:53:28 +0100]",
            b"20/Jxn/2015:19:53:28 +0100]",
            b"20/Jan/2015:19:53:28 +01000",
        ] {
            assert_eq!(parse_clf(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn rfc3164_with_an_unpadded_day_and_tai64n() {
        let mut c = DateCache::default();
        // 2026-11-26T12:00:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_694_400);
        let (a, rest) =
            parse_leading("Nov 6 01:02:03 host p[1]: x", &DateMode::Auto, now, &mut c).unwrap();
        assert_eq!(rest, b"host p[1]: x");
        let (b, _) =
            parse_leading("Nov  6 01:02:03 host p[1]: x", &DateMode::Auto, now, &mut c).unwrap();
        assert_eq!(a, b);
        // The cached stamp of one form is not taken for another day.
        let (c2, _) =
            parse_leading("Nov 7 01:02:03 host p[1]: x", &DateMode::Auto, now, &mut c).unwrap();
        assert_eq!(unix(c2) - unix(a), 86_400);
        assert!(parse_leading("Nov 6 1:02:03 h", &DateMode::Auto, now, &mut c).is_none());
        assert!(parse_leading("Nov 66 01:02:03 h", &DateMode::Auto, now, &mut c).is_none());
        let (t, rest) = parse_leading(
            "@400000004c91b044077a9e94 imap-login: x",
            &DateMode::Auto,
            now,
            &mut c,
        )
        .unwrap();
        assert_eq!(unix(t), 0x4c91b044);
        assert_eq!(rest, b"imap-login: x");
        assert!(
            parse_leading("@40000000zc91b044077a9e94 x", &DateMode::Auto, now, &mut c).is_none()
        );
        assert!(parse_leading("@400000004c91b044 x", &DateMode::Auto, now, &mut c).is_none());
    }

    #[test]
    fn rfc3164_takes_the_nearest_past_year() {
        let mut c = DateCache::default();
        // 2026-11-26T12:00:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_694_400);
        let (t, rest) = parse_leading(
            "Nov 26 01:02:03 host sshd[7]: msg",
            &DateMode::Auto,
            now,
            &mut c,
        )
        .unwrap();
        assert_eq!(rest, b"host sshd[7]: msg");
        let local: chrono::DateTime<Local> = t.into();
        assert_eq!((local.year(), local.month(), local.day()), (2026, 11, 26));
        // A December date seen in late November is last December's.
        let (t, _) =
            parse_leading("Dec 31 23:59:59 host p: x", &DateMode::Auto, now, &mut c).unwrap();
        let local: chrono::DateTime<Local> = t.into();
        assert_eq!(local.year(), 2025);
        // Space-padded day.
        assert!(parse_leading("Nov  6 01:02:03 h p: x", &DateMode::Auto, now, &mut c).is_some());
    }

    #[test]
    fn a_repeated_rfc3164_stamp_reads_the_same_only_in_the_same_year() {
        let mut c = DateCache::default();
        let line = "Dec 31 23:59:59.250 host p: x";
        let read = |c: &mut DateCache, now: u64| {
            let now = UNIX_EPOCH + Duration::from_secs(now);
            let (t, _) = parse_leading(line, &DateMode::Auto, now, c).unwrap();
            let local: chrono::DateTime<Local> = t.into();
            (local.year(), local.timestamp_subsec_millis())
        };
        // Read on 2026-12-31T12:00Z, then twice on 2027-12-31T12:00Z, then in 2026 again:
        // the remembered stamp is not reused across years, and keeps its fraction.
        assert_eq!(read(&mut c, 1_798_718_400), (2026, 250));
        assert_eq!(read(&mut c, 1_830_254_400), (2027, 250));
        assert_eq!(read(&mut c, 1_830_254_400), (2027, 250));
        assert_eq!(read(&mut c, 1_798_718_400), (2026, 250));
        // The same without a fraction (the stamp remembered whole): the same years.
        let whole = |c: &mut DateCache, now: u64| {
            let now = UNIX_EPOCH + Duration::from_secs(now);
            let (t, _) =
                parse_leading("Dec 31 23:59:59 host p: x", &DateMode::Auto, now, c).unwrap();
            chrono::DateTime::<Local>::from(t).year()
        };
        let mut w = DateCache::default();
        assert_eq!(whole(&mut w, 1_798_718_400), 2026);
        assert_eq!(whole(&mut w, 1_798_718_400), 2026);
        assert_eq!(whole(&mut w, 1_830_254_400), 2027);
        assert_eq!(whole(&mut w, 1_830_254_400), 2027);
        assert_eq!(whole(&mut w, 1_798_718_400), 2026);
        // Another stamp after it is read as itself.
        let now = UNIX_EPOCH + Duration::from_secs(1_830_254_400);
        let (t, _) = parse_leading("Dec 31 00:00:01 h p: x", &DateMode::Auto, now, &mut c).unwrap();
        let local: chrono::DateTime<Local> = t.into();
        assert_eq!((local.day(), local.hour(), local.second()), (31, 0, 1));
    }

    /// Lines read one after another (the same second again, in every form of the day,
    /// with and without a fraction, a stamp ahead of now) read as each reads alone.
    #[test]
    fn a_stamp_read_again_reads_as_it_reads_alone() {
        // 2026-11-26T12:00:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_694_400);
        let lines = [
            "Nov 26 01:02:03 host sshd[7]: a",
            "Nov 26 01:02:03 host sshd[7]: b",
            "Nov 26 01:02:03.5 host p: c",
            "Nov 26 01:02:03 host p: d",
            "Nov 26 01:02:03x host p: e",
            "Nov  6 01:02:03 h p: f",
            "Nov  6 01:02:03 h p: g",
            "Nov 6 01:02:03 h p: h",
            "Nov 6 01:02:03 h p: i",
            "Nov 26 01:02:04 h p: j",
            "Dec 31 23:59:59 h p: k",
            "Dec 31 23:59:59 h p: l",
            "Nov 26 01:02:04 h p: m",
        ];
        let mut shared = DateCache::default();
        let mut hits = 0;
        for line in lines {
            let hit = shared
                .stamp
                .is_some_and(|r| line.as_bytes().starts_with(&r.key));
            hits += usize::from(hit);
            let again = parse_leading(line, &DateMode::Auto, now, &mut shared);
            let alone = parse_leading(line, &DateMode::Auto, now, &mut DateCache::default());
            assert_eq!(again, alone, "{line}");
        }
        // The second readings of b, g, l and m's second came from the remembered stamp.
        assert!(hits >= 4, "{hits}");
        assert!(same_second(b"Nov 26 01:02:04 h p: n", now, &mut shared).is_some());
        assert!(same_second(b"Nov 26 01:02:04.1 h p: n", now, &mut shared).is_none());
    }

    /// A stamp more than a day ahead of now is last year's: its year is decided once, and
    /// the next line with the same stamp takes the fast path to the same time. Around the
    /// day ahead, to the second and with fractions, while now moves on, every line reads
    /// as it reads alone.
    #[test]
    fn a_stamp_ahead_of_now_is_read_as_last_years_once() {
        // 2026-11-26T12:00:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_694_400);
        let mut c = DateCache::default();
        let (t, _) = parse_leading("Dec 31 23:59:59 h p: k", &DateMode::Auto, now, &mut c).unwrap();
        assert_eq!(chrono::DateTime::<Local>::from(t).year(), 2025);
        let (again, _) = same_second(b"Dec 31 23:59:59 h p: l", now, &mut c).expect("fast path");
        assert_eq!(again, t);
        let mut shared = DateCache::default();
        let mut read = 0;
        for step in 0..4u64 {
            let now = now + Duration::from_millis(700 * step);
            for k in -3i64..=3 {
                let at = now + Duration::from_secs(86_400);
                let at = if k < 0 {
                    at - Duration::from_secs(k.unsigned_abs())
                } else {
                    at + Duration::from_secs(k.unsigned_abs())
                };
                let stamp = chrono::DateTime::<Local>::from(at).format("%b %e %H:%M:%S");
                for frac in ["", ".5", ".999"] {
                    let line = format!("{stamp}{frac} h p: x");
                    let again = parse_leading(&line, &DateMode::Auto, now, &mut shared);
                    let alone =
                        parse_leading(&line, &DateMode::Auto, now, &mut DateCache::default());
                    assert_eq!(again, alone, "{line} at step {step}");
                    read += usize::from(alone.is_some());
                }
            }
        }
        assert_eq!(read, 4 * 7 * 3);
        // Read again once now has come within a day of it: this year's, as alone.
        let ahead = now + Duration::from_secs(86_401);
        let line = format!(
            "{} h p: x",
            chrono::DateTime::<Local>::from(ahead).format("%b %e %H:%M:%S")
        );
        let mut c = DateCache::default();
        let (first, _) = parse_leading(&line, &DateMode::Auto, now, &mut c).unwrap();
        assert_eq!(chrono::DateTime::<Local>::from(first).year(), 2025);
        let later = now + Duration::from_secs(2);
        let (again, _) = parse_leading(&line, &DateMode::Auto, later, &mut c).unwrap();
        assert_eq!(again, ahead);
    }

    #[test]
    fn lines_without_a_timestamp_are_not_misread() {
        let mut c = DateCache::default();
        let now = SystemTime::now();
        for line in [
            "Failed password for root from 198.18.0.1 port 22 ssh2",
            "Nov 99 01:02:03 host x",
            "2026-13-01T00:00:00Z x",
            "",
        ] {
            assert!(
                parse_leading(line, &DateMode::Auto, now, &mut c).is_none(),
                "{line}"
            );
        }
        assert!(parse_leading("Nov 26 01:02:03 h p: x", &DateMode::None, now, &mut c).is_none());
    }

    #[test]
    fn custom_patterns_parse_and_bad_ones_are_refused() {
        let mut c = DateCache::default();
        let mode = DateMode::parse(Some("%d/%m/%Y %H:%M:%S")).unwrap();
        let (_, rest) = parse_leading(
            "26/11/2026 01:02:03 login failed from 198.18.0.1",
            &mode,
            SystemTime::now(),
            &mut c,
        )
        .unwrap();
        assert_eq!(rest, b"login failed from 198.18.0.1");
        assert!(DateMode::parse(Some("%Q")).is_err());
    }
}
