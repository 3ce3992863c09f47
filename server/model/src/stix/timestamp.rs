//! STIX/TAXII timestamps as microseconds since the Unix epoch.
//!
//! STIX 2.1 and TAXII 2.1 timestamps are RFC 3339 in UTC with a literal `Z`.
//! The store keeps microseconds, so finer fractions are truncated on parse and
//! every timestamp the server emits carries exactly six fractional digits.

use thiserror::Error;

/// Why a string is not a STIX/TAXII timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid timestamp: {reason}")]
pub struct TimestampError {
    /// What is wrong with the input.
    pub reason: &'static str,
}

const FORMAT: &str = "expected YYYY-MM-DDTHH:MM:SS[.fraction]Z";

fn fail(reason: &'static str) -> TimestampError {
    TimestampError { reason }
}

const US_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Parses `YYYY-MM-DDTHH:MM:SS[.f]Z` (0–9 fractional digits, UTC only) into µs since the epoch.
pub fn parse_timestamp(s: &str) -> Result<i64, TimestampError> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(fail(FORMAT));
    }
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b[i] != c) {
        return Err(fail(FORMAT));
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;

    let mut micros = 0;
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let count = i - start;
        if count == 0 {
            return Err(fail("expected digits after '.'"));
        }
        if count > 9 {
            return Err(fail("at most 9 fractional digits"));
        }
        // Keep the first six digits (µs), padding shorter fractions with zeros.
        for k in 0..6 {
            let d = if start + k < i {
                b[start + k] - b'0'
            } else {
                0
            };
            micros = micros * 10 + i64::from(d);
        }
    }
    match &b[i..] {
        b"Z" => {}
        [b'+' | b'-', ..] => return Err(fail("only UTC ('Z') is accepted, not an offset")),
        _ => return Err(fail(FORMAT)),
    }

    if !(1..=12).contains(&month) {
        return Err(fail("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(fail("day out of range for the month"));
    }
    if hour > 23 {
        return Err(fail("hour out of range"));
    }
    if minute > 59 {
        return Err(fail("minute out of range"));
    }
    if second > 59 {
        return Err(fail("second out of range (leap seconds are not supported)"));
    }

    let days = days_from_civil(i64::from(year), month, day);
    let secs =
        days * SECS_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Ok(secs * US_PER_SEC + micros)
}

/// Formats µs since the epoch as `YYYY-MM-DDTHH:MM:SS.ssssssZ`, clamped to years 0000–9999.
pub fn format_taxii(us: i64) -> String {
    let us = us.clamp(MIN_US, MAX_US);
    let secs = us.div_euclid(US_PER_SEC);
    let micros = us.rem_euclid(US_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // Written digit by digit: `format!` with padding cost ten times as much, and an
    // ingest formats one per object for its status.
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut out[0..4], year);
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], sod / 3600);
    put_digits(&mut out[14..16], sod % 3600 / 60);
    put_digits(&mut out[17..19], sod % 60);
    put_digits(&mut out[20..26], micros);
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

/// Write `n` (not negative, below 10^len) into `out` as zero-padded decimal.
fn put_digits(out: &mut [u8], mut n: i64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The current time in µs since the epoch.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// 0000-01-01T00:00:00Z.
const MIN_US: i64 = -62_167_219_200 * US_PER_SEC;
/// 9999-12-31T23:59:59.999999Z.
const MAX_US: i64 = 253_402_300_800 * US_PER_SEC - 1;

fn digits(b: &[u8]) -> Result<u32, TimestampError> {
    b.iter().try_fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + u32::from(c - b'0'))
        } else {
            Err(fail(FORMAT))
        }
    })
}

fn is_leap(year: u32) -> bool {
    i32::try_from(year).is_ok_and(|y| chrono::NaiveDate::from_ymd_opt(y, 2, 29).is_some())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn chrono_us(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .timestamp_micros()
    }

    #[test]
    fn parses_every_fraction_length() {
        let cases = [
            ("2024-03-05T06:07:08Z", 0),
            ("2024-03-05T06:07:08.1Z", 100_000),
            ("2024-03-05T06:07:08.12Z", 120_000),
            ("2024-03-05T06:07:08.123Z", 123_000),
            ("2024-03-05T06:07:08.1234Z", 123_400),
            ("2024-03-05T06:07:08.12345Z", 123_450),
            ("2024-03-05T06:07:08.123456Z", 123_456),
            ("2024-03-05T06:07:08.1234567Z", 123_456),
            ("2024-03-05T06:07:08.12345678Z", 123_456),
            ("2024-03-05T06:07:08.123456789Z", 123_456),
        ];
        let base = chrono_us("2024-03-05T06:07:08Z");
        for (s, frac) in cases {
            assert_eq!(parse_timestamp(s).unwrap(), base + frac, "{s}");
        }
    }

    #[test]
    fn agrees_with_chrono_across_eras() {
        for s in [
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z",
            "0000-01-01T00:00:00Z",
            "1600-02-29T12:00:00Z",
            "2000-02-29T23:59:59Z",
            "2016-04-06T20:03:48.000Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            assert_eq!(parse_timestamp(s).unwrap(), chrono_us(s), "{s}");
        }
    }

    #[test]
    fn knows_leap_years() {
        assert!(parse_timestamp("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_ok());
        assert!(parse_timestamp("2023-02-29T00:00:00Z").is_err());
        assert!(parse_timestamp("1900-02-29T00:00:00Z").is_err());
        assert!(parse_timestamp("2024-04-31T00:00:00Z").is_err());
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "",
            "2024",
            "2024-01-01",
            "2024-01-01 00:00:00Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01T00:00:00-05:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567890Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00ZZ",
            "2024-01-01T00:00:00.5Z ",
            "+024-01-01T00:00:00Z",
            "２０２４-01-01T00:00:00Z",
            "2024-01-01T00:00:00.５Z",
        ] {
            assert!(parse_timestamp(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn explains_offsets() {
        let err = parse_timestamp("2024-01-01T00:00:00+02:00").unwrap_err();
        assert!(err.to_string().contains("only UTC"), "{err}");
    }

    #[test]
    fn formats_six_digits() {
        assert_eq!(format_taxii(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_taxii(-1), "1969-12-31T23:59:59.999999Z");
        let us = parse_timestamp("2024-02-29T13:14:15.5Z").unwrap();
        assert_eq!(format_taxii(us), "2024-02-29T13:14:15.500000Z");
    }

    #[test]
    fn format_round_trips() {
        for us in [
            0,
            1,
            -1,
            1_709_212_455_123_456,
            MIN_US,
            MAX_US,
            951_782_400_000_000,
        ] {
            assert_eq!(parse_timestamp(&format_taxii(us)).unwrap(), us);
        }
    }

    #[test]
    fn formats_as_chrono_does() {
        let mut us = MIN_US;
        let step = (MAX_US - MIN_US) / 20_011;
        while us <= MAX_US {
            let expected = DateTime::<Utc>::from_timestamp_micros(us)
                .expect("in range")
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            assert_eq!(format_taxii(us), expected, "{us}");
            us += step + 7_654_321;
        }
    }

    #[test]
    fn format_clamps_out_of_range() {
        assert_eq!(format_taxii(i64::MIN), "0000-01-01T00:00:00.000000Z");
        assert_eq!(format_taxii(i64::MAX), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn now_is_recent() {
        let jan_2024 = parse_timestamp("2024-01-01T00:00:00Z").unwrap();
        assert!(now_us() > jan_2024);
    }
}
