//! XSOAR's ways of writing a time, as native query times.
//!
//! - `2024-01-01T00:00:00 +0000`, `2024-01-01T08:15:00.5+02:00`, `2024-01-01 08:15Z`: a
//!   moment, converted to UTC (`2024-01-01T06:15:00.500Z`); no offset means UTC;
//! - `2024-01-01`: a whole UTC day;
//! - `7 days ago`, `3 hours ago`, `2 weeks ago`, `1 month ago` (30 days), `1 year ago`
//!   (365 days), `now`, and the native `now-7d`: relative to the evaluation time.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// A time as the native language writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum When {
    /// One moment: an RFC 3339 UTC timestamp or a `now…` relative time.
    At(String),
    /// A whole UTC day: its first moment and the first moment of the next day.
    Day { start: String, next: String },
}

/// What an XSOAR time may look like, for messages.
pub(crate) const FORMS: &str = "a time like \"2024-01-01T00:00:00 +0000\", 2024-01-01, \
     \"7 days ago\" (seconds, minutes, hours, days, weeks, months of 30 days, years of 365 days) or now";

/// Reads an XSOAR time; `None` if the text is none of the forms in [`FORMS`].
pub(crate) fn parse(text: &str) -> Option<When> {
    let text = text.trim();
    if let Some(relative) = relative(text) {
        return relative.map(When::At);
    }
    let (date, rest) = date(text)?;
    if rest.is_empty() {
        let start = date.and_time(NaiveTime::MIN);
        let next = start.checked_add_signed(Duration::days(1))?;
        return Some(When::Day {
            start: rfc3339(start),
            next: rfc3339(next),
        });
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (time, zone) = time(rest)?;
    let offset = zone_offset(zone.trim_start())?;
    let utc = date.and_time(time).checked_sub_signed(offset)?;
    Some(When::At(rfc3339(utc)))
}

/// `N units ago`, `now`, or a native `now±N<unit>`; `Some(None)` for a relative time
/// that is too far away to compute.
fn relative(text: &str) -> Option<Option<String>> {
    let lower = text.to_ascii_lowercase();
    if lower == "now" {
        return Some(Some("now".to_owned()));
    }
    if let Some(rest) = lower
        .strip_prefix("now-")
        .or_else(|| lower.strip_prefix("now+"))
    {
        let digits = rest.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &rest[digits.len()..];
        let ok = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && matches!(unit, "s" | "m" | "h" | "d" | "w");
        return ok.then(|| seconds_ago(digits, 0).map(|_| lower.clone()));
    }
    let words: Vec<&str> = lower.split_whitespace().collect();
    let [amount, unit, "ago"] = words.as_slice() else {
        return None;
    };
    if !amount.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unit = unit.strip_suffix('s').unwrap_or(unit);
    let (per, letter) = match unit {
        "second" | "sec" => (1, 's'),
        "minute" | "min" => (1, 'm'),
        "hour" => (1, 'h'),
        "day" => (1, 'd'),
        "week" => (1, 'w'),
        "month" => (30, 'd'),
        "year" => (365, 'd'),
        _ => return None,
    };
    Some(seconds_ago(amount, per).map(|n| format!("now-{n}{letter}")))
}

/// `amount × per` if it is a time the native language can hold (about ±292,000
/// years in µs); `per` 0 only checks the amount.
fn seconds_ago(amount: &str, per: u64) -> Option<u64> {
    let n: u64 = amount.parse().ok()?;
    let total = n.checked_mul(per.max(1))?;
    // A week in µs is the largest unit; staying under i64::MAX in µs keeps it valid.
    (total <= i64::MAX as u64 / 604_800 / 1_000_000).then_some(total)
}

/// `YYYY-MM-DD` at the start of `text`, and what follows.
fn date(text: &str) -> Option<(NaiveDate, &str)> {
    let (y, rest) = digits(text, 4)?;
    let rest = rest.strip_prefix('-')?;
    let (m, rest) = digits(rest, 2)?;
    let rest = rest.strip_prefix('-')?;
    let (d, rest) = digits(rest, 2)?;
    Some((NaiveDate::from_ymd_opt(y as i32, m, d)?, rest))
}

/// `HH:MM[:SS[.fraction]]` and what follows.
fn time(text: &str) -> Option<(NaiveTime, &str)> {
    let (h, rest) = digits(text, 2)?;
    let rest = rest.strip_prefix(':')?;
    let (m, mut rest) = digits(rest, 2)?;
    let (mut s, mut micros) = (0, 0);
    if let Some(after) = rest.strip_prefix(':') {
        let (sec, after) = digits(after, 2)?;
        s = sec;
        rest = after;
        if let Some(after) = rest.strip_prefix('.') {
            let len = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            if len == 0 {
                return None;
            }
            let fraction: String = after[..len]
                .chars()
                .chain("000000".chars())
                .take(6)
                .collect();
            micros = fraction.parse().ok()?;
            rest = &after[len..];
        }
    }
    Some((NaiveTime::from_hms_micro_opt(h, m, s, micros)?, rest))
}

/// `Z`, `UTC`, nothing, `±HH:MM`, `±HHMM` or `±HH` as an offset east of UTC.
fn zone_offset(zone: &str) -> Option<Duration> {
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") || zone.eq_ignore_ascii_case("utc") {
        return Some(Duration::zero());
    }
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (h, rest) = digits(rest, 2)?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let (m, rest) = if rest.is_empty() {
        (0, rest)
    } else {
        digits(rest, 2)?
    };
    if !rest.is_empty() || h > 23 || m > 59 {
        return None;
    }
    Some(Duration::minutes(sign * i64::from(h * 60 + m)))
}

/// Exactly `n` ASCII digits at the start of `text`, as a number, and what follows.
fn digits(text: &str, n: usize) -> Option<(u32, &str)> {
    let head = text.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &text[n..]))
}

/// The native (STIX) form: `2024-01-01T00:00:00Z`, with microseconds when there are any.
fn rfc3339(t: NaiveDateTime) -> String {
    if t.and_utc().timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> String {
        match parse(text) {
            Some(When::At(t)) => t,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn xsoar_timestamps_become_utc() {
        assert_eq!(at("2024-01-01T00:00:00 +0000"), "2024-01-01T00:00:00Z");
        assert_eq!(at("2024-01-01T08:15:00 +0200"), "2024-01-01T06:15:00Z");
        assert_eq!(at("2024-01-01T08:15:00+02:00"), "2024-01-01T06:15:00Z");
        assert_eq!(at("2024-01-01T01:00:00 -0130"), "2024-01-01T02:30:00Z");
        assert_eq!(at("2024-01-01T00:30:00+01"), "2023-12-31T23:30:00Z");
        assert_eq!(at("2024-01-01T00:00:00Z"), "2024-01-01T00:00:00Z");
        assert_eq!(at("2024-01-01 08:15"), "2024-01-01T08:15:00Z");
        assert_eq!(
            at("2024-01-01T08:15:00.5 UTC"),
            "2024-01-01T08:15:00.500000Z"
        );
        assert_eq!(
            at("2024-01-01T08:15:00.1234567Z"),
            "2024-01-01T08:15:00.123456Z"
        );
    }

    #[test]
    fn bare_dates_are_whole_days() {
        assert_eq!(
            parse("2024-02-28"),
            Some(When::Day {
                start: "2024-02-28T00:00:00Z".into(),
                next: "2024-02-29T00:00:00Z".into()
            })
        );
    }

    #[test]
    fn relative_times() {
        assert_eq!(at("7 days ago"), "now-7d");
        assert_eq!(at("1 day ago"), "now-1d");
        assert_eq!(at("3 hours ago"), "now-3h");
        assert_eq!(at("2 Weeks Ago"), "now-2w");
        assert_eq!(at("1 month ago"), "now-30d");
        assert_eq!(at("6 months ago"), "now-180d");
        assert_eq!(at("1 year ago"), "now-365d");
        assert_eq!(at("90 seconds ago"), "now-90s");
        assert_eq!(at("15 minutes ago"), "now-15m");
        assert_eq!(at("now"), "now");
        assert_eq!(at("NOW-24h"), "now-24h");
        assert_eq!(at("now+1h"), "now+1h");
    }

    #[test]
    fn not_times() {
        for bad in [
            "yesterday",
            "2024-13-01",
            "2024-02-30",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00 +2500",
            "2024-01-01T00:00:00 CET",
            "2024-1-1",
            "seven days ago",
            "7 fortnights ago",
            "7 days",
            "99999999999999999999 days ago",
            "999999999999 years ago",
            "now-7x",
            "now-d",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
