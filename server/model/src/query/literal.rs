//! Values as written in a query, with every meaning each can have.
//!
//! `70` is text, and a number; `true` is text, and a boolean;
//! `2024-01-31T00:00:00Z` and `now-30d` are text, and times. Which meaning a
//! comparison uses depends on the property value it meets (see `eval`), so the
//! query author never has to declare types. Quoting only changes tokenisation.

use super::text::TextPattern;
use crate::stix::timestamp::parse_timestamp;

/// A point in time a query compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Time {
    /// A fixed instant, µs since the epoch.
    At(i64),
    /// Evaluation time plus this many µs (negative for the past).
    Now(i64),
}

impl Time {
    /// The instant this stands for when evaluated at `now_us`.
    pub(crate) fn resolve(self, now_us: i64) -> i64 {
        match self {
            Time::At(us) => us,
            Time::Now(offset) => now_us.saturating_add(offset),
        }
    }
}

/// A query value, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Literal {
    /// As text (always available).
    pub text: TextPattern,
    /// As a number, if it is one.
    pub number: Option<f64>,
    /// As a boolean, if it is `true` or `false`.
    pub boolean: Option<bool>,
    /// As a time, if it is an RFC 3339 UTC timestamp or `now[±N unit]`.
    pub time: Option<Time>,
}

/// Why a value is malformed; becomes the `expected` of a parse error.
pub(crate) const RELATIVE_TIME: &str =
    "a relative time like now-30d (a whole number and one of the units s, m, h, d, w)";

impl Literal {
    /// Compiles a value from its pieces between wildcards.
    pub(crate) fn new(pieces: &[String]) -> Result<Literal, &'static str> {
        let text = TextPattern::new(pieces);
        let [whole] = pieces else {
            return Ok(Literal {
                text,
                number: None,
                boolean: None,
                time: None,
            });
        };
        let time = match relative_time(whole) {
            Some(Ok(offset)) => Some(Time::Now(offset)),
            Some(Err(())) => return Err(RELATIVE_TIME),
            None => parse_timestamp(whole).ok().map(Time::At),
        };
        Ok(Literal {
            text,
            number: number(whole),
            boolean: boolean(whole),
            time,
        })
    }

    /// Whether the value is a wildcard pattern rather than one fixed text.
    pub(crate) fn has_wildcard(&self) -> bool {
        !matches!(self.text, TextPattern::Exact(_))
    }
}

/// `now`, `now-30d`, `now+1h` → offset in µs; `None` if the text is not about `now`.
fn relative_time(text: &str) -> Option<Result<i64, ()>> {
    let lower = text.to_ascii_lowercase();
    if lower == "now" {
        return Some(Ok(0));
    }
    let rest = lower.strip_prefix("now")?;
    let (sign, rest) = match rest.as_bytes().first() {
        Some(b'+') => (1, &rest[1..]),
        Some(b'-') => (-1, &rest[1..]),
        _ => return None,
    };
    Some(offset(rest).map(|us| sign * us))
}

fn offset(amount_unit: &str) -> Result<i64, ()> {
    let unit_at = amount_unit.find(|c: char| !c.is_ascii_digit()).ok_or(())?;
    let (amount, unit) = amount_unit.split_at(unit_at);
    let seconds: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(()),
    };
    let amount: i64 = amount.parse().map_err(|_| ())?;
    amount
        .checked_mul(seconds)
        .and_then(|s| s.checked_mul(1_000_000))
        .ok_or(())
}

/// Plain decimal numbers only: no `inf`, `nan`, hex, or leading `.`.
pub(crate) fn number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(text: &str) -> Literal {
        let pieces: Vec<String> = text.split('*').map(str::to_owned).collect();
        Literal::new(&pieces).unwrap()
    }

    const H: i64 = 3_600_000_000;

    #[test]
    fn numbers() {
        assert_eq!(lit("70").number, Some(70.0));
        assert_eq!(lit("-5").number, Some(-5.0));
        assert_eq!(lit("+5").number, Some(5.0));
        assert_eq!(lit("2.5").number, Some(2.5));
        assert_eq!(lit("1e3").number, Some(1000.0));
        for not_a_number in [
            "1.2.3.4", "inf", "NaN", ".5", "5.", "0x10", "1e999", "7*", "", "-", "1e",
        ] {
            assert_eq!(lit(not_a_number).number, None, "{not_a_number}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(lit("true").boolean, Some(true));
        assert_eq!(lit("FALSE").boolean, Some(false));
        assert_eq!(lit("yes").boolean, None);
    }

    #[test]
    fn absolute_times() {
        assert_eq!(
            lit("2024-01-01T00:00:00Z").time,
            Some(Time::At(1_704_067_200_000_000))
        );
        assert_eq!(lit("2024-01-01").time, None);
        assert_eq!(lit("2024-01-01T00:00:00+01:00").time, None);
    }

    #[test]
    fn relative_times() {
        assert_eq!(lit("now").time, Some(Time::Now(0)));
        assert_eq!(lit("NOW").time, Some(Time::Now(0)));
        assert_eq!(lit("now-24h").time, Some(Time::Now(-24 * H)));
        assert_eq!(lit("now+1h").time, Some(Time::Now(H)));
        assert_eq!(lit("now-30s").time, Some(Time::Now(-30_000_000)));
        assert_eq!(lit("now-5m").time, Some(Time::Now(-300_000_000)));
        assert_eq!(lit("now-30d").time, Some(Time::Now(-30 * 24 * H)));
        assert_eq!(lit("now-2w").time, Some(Time::Now(-14 * 24 * H)));
        assert_eq!(lit("nowhere").time, None);
        assert_eq!(lit("now*").time, None);
    }

    #[test]
    fn malformed_relative_times_are_rejected() {
        for bad in [
            "now-",
            "now-30",
            "now-30x",
            "now-d",
            "now--1d",
            "now-1.5h",
            "now-99999999999999w",
            "now-1d2h",
        ] {
            let pieces = vec![bad.to_owned()];
            assert_eq!(Literal::new(&pieces), Err(RELATIVE_TIME), "{bad}");
        }
    }

    #[test]
    fn resolves_against_now() {
        assert_eq!(Time::Now(-H).resolve(10 * H), 9 * H);
        assert_eq!(Time::At(5).resolve(10 * H), 5);
        assert_eq!(Time::Now(i64::MIN).resolve(-1), i64::MIN);
    }

    #[test]
    fn wildcards_have_only_text() {
        let l = lit("12*");
        assert!(l.has_wildcard());
        assert_eq!((l.number, l.boolean, l.time), (None, None, None));
        assert!(!lit("12").has_wildcard());
    }
}
