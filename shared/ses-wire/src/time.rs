//! Lenient parsing of the timestamps SES writes.
//!
//! SES documents ISO 8601 but its own examples use several spellings: `2016-01-27T14:59:38.237Z`,
//! `2012-05-25T14:59:38.623-07:00` and `2018-10-08T14:05:45 +0000` (a space and an offset without
//! a colon, which RFC 3339 parsers reject). Depends only on `chrono`.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};

/// Offset-carrying layouts tried after RFC 3339. chrono's `%z` skips leading spaces and accepts
/// `+0000` and `+00:00`; `%.f` makes the fraction optional.
const WITH_OFFSET: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"];

/// Layouts without an offset; SES writes UTC, so such a value is read as UTC.
const WITHOUT_OFFSET: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];

/// Parses an SES timestamp into UTC.
///
/// Accepts RFC 3339 (`Z` or `±hh:mm`, with or without fractional seconds), `T` or space between
/// date and time, an offset written `±hhmm` or `±hh:mm` with or without a space before it, and no
/// offset at all (read as UTC). Surrounding whitespace is ignored. Returns `None` for anything
/// else.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    parse_any_layout(text.trim()).filter(|at| (1..=9999).contains(&at.year()))
}

/// Tries every spelling. chrono's `%Y` also takes signed years of five or more digits, which no
/// SES timestamp has and which would overflow the expiry arithmetic near the end of chrono's
/// range: [`parse_timestamp`] keeps four-digit years only.
fn parse_any_layout(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&Utc));
    }

    for layout in WITH_OFFSET {
        if let Ok(parsed) = DateTime::parse_from_str(text, layout) {
            return Some(parsed.with_timezone(&Utc));
        }
    }

    WITHOUT_OFFSET
        .iter()
        .find_map(|layout| NaiveDateTime::parse_from_str(text, layout).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_documented_spelling_parses_to_the_same_instant_as_its_rfc3339_form() {
        let cases = [
            ("2016-01-27T14:59:38.237Z", "2016-01-27T14:59:38.237Z"),
            ("2012-05-25T14:59:38.623-07:00", "2012-05-25T21:59:38.623Z"),
            ("2018-10-08T14:05:45 +0000", "2018-10-08T14:05:45Z"),
            ("2018-10-08T14:05:45+0000", "2018-10-08T14:05:45Z"),
            ("2018-10-08T14:05:45.120 +0200", "2018-10-08T12:05:45.120Z"),
            ("2018-10-08 14:05:45 +00:00", "2018-10-08T14:05:45Z"),
            ("2018-10-08T14:05:45Z", "2018-10-08T14:05:45Z"),
            ("2018-10-08T14:05:45", "2018-10-08T14:05:45Z"),
            ("2018-10-08T14:05:45.5", "2018-10-08T14:05:45.500Z"),
            ("  2016-01-27T14:59:38.237Z\n", "2016-01-27T14:59:38.237Z"),
        ];

        for (input, expected) in cases {
            assert_eq!(parse_timestamp(input), Some(utc(expected)), "input {input:?}");
        }
    }

    #[test]
    fn text_that_is_not_a_timestamp_is_rejected() {
        for input in
            ["", "yesterday", "2018-10-08", "14:05:45", "2018-13-08T14:05:45Z", "1697997660"]
        {
            assert_eq!(parse_timestamp(input), None, "input {input:?}");
        }
    }
}
