//! Times and durations as operators type them: `2026-11-01`, `2026-11-01T12:00:00Z`, `7d`,
//! `12h`, `2w`. Parsing only; the caller supplies "now", so nothing here reads the clock.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A length of time: `<n>m`, `<n>h`, `<n>d` or `<n>w`.
fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let unit = raw.chars().last()?;
    let number: i64 = raw[..raw.len() - unit.len_utf8()].parse().ok()?;
    if number <= 0 {
        return None;
    }
    match unit {
        'm' => Duration::try_minutes(number),
        'h' => Duration::try_hours(number),
        'd' => Duration::try_days(number),
        'w' => Duration::try_weeks(number),
        _ => None,
    }
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim()).ok().map(|t| t.with_timezone(&Utc))
}

fn parse_date(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

const MOMENT_HELP: &str =
    "expected a date (2026-11-01), an RFC 3339 time (2026-11-01T12:00:00Z) or an age (7d, 12h, 2w)";

/// A point in time given as a date, a time, or an age before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// A UTC day.
    Date(NaiveDate),
    /// An exact time.
    Time(DateTime<Utc>),
    /// This long before now.
    Ago(Duration),
}

impl Moment {
    /// The moment as the start of a range: a date means its first instant.
    pub fn start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Date(date) => midnight(date),
            Self::Time(at) => at,
            Self::Ago(age) => now - age,
        }
    }

    /// The moment as the (exclusive) end of a range: a date means the end of that day.
    pub fn end(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Date(date) => midnight(date) + Duration::days(1),
            Self::Time(at) => at,
            Self::Ago(age) => now - age,
        }
    }
}

impl FromStr for Moment {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        if let Some(date) = parse_date(raw) {
            Ok(Self::Date(date))
        } else if let Some(at) = parse_time(raw) {
            Ok(Self::Time(at))
        } else if let Some(age) = parse_duration(raw) {
            Ok(Self::Ago(age))
        } else {
            Err(MOMENT_HELP.to_owned())
        }
    }
}

/// An end given as a length from now or as a date or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// This long from now.
    For(Duration),
    /// At this time (a date means its first instant).
    Until(DateTime<Utc>),
}

impl Span {
    /// When the span ends, counted from `now`.
    pub fn end(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::For(length) => now + length,
            Self::Until(at) => at,
        }
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        if let Some(length) = parse_duration(raw) {
            Ok(Self::For(length))
        } else if let Some(date) = parse_date(raw) {
            Ok(Self::Until(midnight(date)))
        } else if let Some(at) = parse_time(raw) {
            Ok(Self::Until(at))
        } else {
            Err("expected a length (30d, 12h, 2w), a date (2026-12-01) or an RFC 3339 time"
                .to_owned())
        }
    }
}

/// Parses an expiry column of a CSV file: empty, a date, or an RFC 3339 time.
pub fn parse_expiry(raw: &str) -> Result<Option<DateTime<Utc>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    parse_time(raw)
        .or_else(|| parse_date(raw).map(midnight))
        .map(Some)
        .ok_or_else(|| "expires_at is not a date (2026-12-01) or an RFC 3339 time".to_owned())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 10, 15, 30, 0).unwrap()
    }

    #[test]
    fn dates_cover_whole_days_and_ages_count_back_from_now() {
        let day: Moment = "2026-11-01".parse().unwrap();
        assert_eq!(day.start(now()), Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        assert_eq!(day.end(now()), Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap());
        let week: Moment = "7d".parse().unwrap();
        assert_eq!(week.start(now()), Utc.with_ymd_and_hms(2026, 11, 3, 15, 30, 0).unwrap());
        let exact: Moment = "2026-11-05T08:00:00+01:00".parse().unwrap();
        assert_eq!(exact.start(now()), Utc.with_ymd_and_hms(2026, 11, 5, 7, 0, 0).unwrap());
    }

    #[test]
    fn bad_times_are_refused_with_the_accepted_forms() {
        for raw in ["yesterday", "7x", "-3d", "0d", "2026-13-01", "d", ""] {
            let err = raw.parse::<Moment>().unwrap_err();
            assert!(err.contains("7d"), "{raw}: {err}");
        }
    }

    #[test]
    fn spans_are_lengths_or_ends() {
        assert_eq!("30d".parse::<Span>().unwrap().end(now()), now() + Duration::days(30));
        assert_eq!(
            "2026-12-01".parse::<Span>().unwrap().end(now()),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert!("soon".parse::<Span>().is_err());
    }

    #[test]
    fn csv_expiry_is_optional_but_must_parse_when_present() {
        assert_eq!(parse_expiry(" "), Ok(None));
        assert!(parse_expiry("2026-12-01").unwrap().is_some());
        assert!(parse_expiry("next week").is_err());
    }
}
