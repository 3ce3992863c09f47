//! Turns `field:op value` into a checked [`Term`].
//!
//! Field names are checked only for shape, since any STIX property path is
//! allowed; but a comparison that can never be true for a field we know
//! (`tlp:purple`, `added:>yesterday`, `confidence:>=high`) is refused here, with
//! its position, instead of silently matching nothing.

use super::ast::{Check, Cmp, Term, Test};
use super::error::{describe_at, quote, ParseError};
use super::literal::Literal;
use super::text::TextPattern;
use crate::stix::pattern::canonical_ioc_type;
use crate::stix::tlp::Tlp;

/// The `field:op` part of a word, and where its value starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head<'a> {
    pub field: &'a str,
    pub field_at: usize,
    pub cmp: Cmp,
    /// Byte offset of the `:`.
    pub cmp_at: usize,
    /// Byte offset where the value starts.
    pub value_at: usize,
}

/// A value and where it is written (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValueSpan {
    /// The text between wildcards; one piece means no wildcard.
    pub pieces: Vec<String>,
    pub start: usize,
    pub end: usize,
}

const TLP_LEVELS: &str = "a TLP level (clear, white, green, amber, amber+strict or red)";
const TIME: &str =
    "a time (an RFC 3339 UTC timestamp like 2024-01-31T00:00:00Z, or now, now-24h, now-30d)";

/// Top-level STIX properties that always hold timestamps.
const TIME_PROPERTIES: &[&str] = &[
    "created",
    "modified",
    "valid_from",
    "valid_until",
    "first_seen",
    "last_seen",
    "first_observed",
    "last_observed",
    "published",
    "start_time",
    "stop_time",
    "analysis_started",
    "analysis_ended",
    "submitted",
];

/// Top-level STIX properties that always hold integers.
const NUMBER_PROPERTIES: &[&str] = &["confidence", "number_observed", "count"];

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Splits `field:op…` at the start of a word (bytes `start..end` of `input`).
///
/// Returns the head and the bare value that follows it in the same word (may be empty).
pub(crate) fn head(input: &str, start: usize, end: usize) -> Result<(Head<'_>, &str), ParseError> {
    let word = input.get(start..end).unwrap_or("");
    let field_len = word.find(|c| !is_field_char(c)).unwrap_or(word.len());
    let field = &word[..field_len];
    match (word[field_len..].chars().next(), field.is_empty()) {
        (Some(':'), false) => {}
        (Some(':'), true) => {
            return Err(ParseError::at(
                input,
                start,
                "a field name before ':'",
                "':'",
            ));
        }
        (Some(c), true) => {
            return Err(ParseError::at(
                input,
                start,
                "a term",
                quote(&c.to_string()),
            ));
        }
        (Some(c), false) => {
            return Err(ParseError::at(
                input,
                start + field_len,
                format!("':' after field {}", quote(field)),
                quote(&c.to_string()),
            ));
        }
        (None, _) => {
            return Err(ParseError::at(
                input,
                end,
                format!(
                    "':' and a value after {} (terms are field:value)",
                    quote(field)
                ),
                describe_at(input, end),
            ));
        }
    }
    check_path(input, start, field)?;

    let cmp_at = start + field_len;
    let after_colon = &word[field_len + 1..];
    let (cmp, op_len) = Cmp::after_colon(after_colon);
    let value_at = cmp_at + 1 + op_len;
    let value = &after_colon[op_len..];
    if value.starts_with('=') {
        return Err(ParseError::at(
            input,
            value_at,
            format!(
                "a value after {} (':' already means equals)",
                quote(cmp.as_str())
            ),
            "'='",
        ));
    }
    let head = Head {
        field,
        field_at: start,
        cmp,
        cmp_at,
        value_at,
    };
    Ok((head, value))
}

/// Every `.`-separated name of a path must be non-empty.
fn check_path(input: &str, start: usize, field: &str) -> Result<(), ParseError> {
    let mut offset = 0;
    for segment in field.split('.') {
        if segment.is_empty() {
            return Err(ParseError::at(
                input,
                start + offset,
                "a property name in the field path",
                describe_at(input, start + offset),
            ));
        }
        offset += segment.len() + 1;
    }
    Ok(())
}

/// Builds the term for `head` and its `value`, refusing comparisons that make no sense.
pub(crate) fn compile(input: &str, head: &Head<'_>, value: ValueSpan) -> Result<Term, ParseError> {
    let source = input.get(head.field_at..value.end).unwrap_or("").into();
    let raw = input.get(value.start..value.end).unwrap_or("");
    let error = |expected: String| ParseError::at(input, value.start, expected, quote(raw));
    let derived = Derived::of(head.field);
    // These fields are only ever text: `now-tv.example` is a value there, not a bad `now-…`.
    let text_only = matches!(
        derived,
        Some(Derived::IocType | Derived::IocValue | Derived::Source)
    );
    let literal = match Literal::new(&value.pieces) {
        Ok(literal) => literal,
        Err(_) if text_only => Literal {
            text: TextPattern::new(&value.pieces),
            number: None,
            boolean: None,
            time: None,
        },
        Err(expected) => return Err(error(expected.to_owned())),
    };
    let op = quote(head.cmp.as_str());
    let ordered = head.cmp != Cmp::Eq;
    if ordered && literal.has_wildcard() {
        return Err(error(format!("a value without '*' after {op}")));
    }
    let any = literal.text == TextPattern::Any;
    let fixed = match value.pieces.as_slice() {
        [whole] => Some(whole.as_str()),
        _ => None,
    };

    let test = match derived {
        Some(Derived::Tlp) if any => Test::Tlp(None),
        Some(Derived::Tlp) => match fixed.and_then(Tlp::parse) {
            Some(level) => Test::Tlp(Some((head.cmp, level))),
            None => return Err(error(TLP_LEVELS.to_owned())),
        },
        Some(Derived::Added) if any => Test::Added(None),
        Some(Derived::Added) => match literal.time {
            Some(time) => Test::Added(Some((head.cmp, time))),
            None => {
                let after = quote(&format!("added{}", head.cmp.as_str()));
                return Err(error(format!("{TIME} after {after}")));
            }
        },
        Some(text_field) => {
            if ordered {
                return Err(ParseError::at(
                    input,
                    head.cmp_at,
                    format!("':' ({} values have no order)", quote(head.field)),
                    op,
                ));
            }
            let pattern = match (text_field, fixed) {
                (Derived::IocType, Some(path)) => match canonical_ioc_type(path) {
                    Some(canonical) => TextPattern::new(&[canonical]),
                    None => literal.text,
                },
                _ => literal.text,
            };
            match text_field {
                Derived::IocType => Test::IocType(pattern),
                Derived::IocValue => Test::IocValue(pattern),
                _ => Test::Source(pattern),
            }
        }
        None => {
            let path = head.field.split('.').map(Box::from).collect();
            let check = if any {
                Check::Exists
            } else {
                check_known_property(head, &literal).map_err(error)?;
                Check::Compare(head.cmp, literal)
            };
            Test::Property { path, check }
        }
    };
    Ok(Term { source, test })
}

/// Refuses values a well-known top-level STIX property can never hold.
///
/// The error is what was expected instead.
fn check_known_property(head: &Head<'_>, literal: &Literal) -> Result<(), String> {
    let after = quote(&format!("{}{}", head.field, head.cmp.as_str()));
    if head.cmp != Cmp::Eq && TIME_PROPERTIES.contains(&head.field) && literal.time.is_none() {
        return Err(format!("{TIME} after {after}"));
    }
    if NUMBER_PROPERTIES.contains(&head.field) && literal.number.is_none() {
        return Err(format!("a number after {after}"));
    }
    Ok(())
}

/// Fields computed from the object rather than read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Derived {
    IocType,
    IocValue,
    Tlp,
    Source,
    Added,
}

impl Derived {
    fn of(field: &str) -> Option<Derived> {
        [
            ("ioc_type", Derived::IocType),
            ("ioc_value", Derived::IocValue),
            ("tlp", Derived::Tlp),
            ("source", Derived::Source),
            ("added", Derived::Added),
        ]
        .into_iter()
        .find(|(name, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, derived)| derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(word: &str) -> Result<(Head<'_>, &str), ParseError> {
        head(word, 0, word.len())
    }

    fn term(word: &str) -> Result<Term, ParseError> {
        let (head, value) = split(word)?;
        let value = ValueSpan {
            pieces: value.split('*').map(str::to_owned).collect(),
            start: head.value_at,
            end: word.len(),
        };
        compile(word, &head, value)
    }

    #[test]
    fn splits_field_operator_and_value() {
        let (h, v) = split("confidence:>=70").unwrap();
        assert_eq!(
            (h.field, h.cmp, h.value_at, v),
            ("confidence", Cmp::Ge, 13, "70")
        );
        let (h, v) = split("a.b-c_d:<x").unwrap();
        assert_eq!((h.field, h.cmp, v), ("a.b-c_d", Cmp::Lt, "x"));
        let (h, v) = split("ioc_type:file:hashes.'SHA-256'").unwrap();
        assert_eq!(
            (h.field, h.cmp, v),
            ("ioc_type", Cmp::Eq, "file:hashes.'SHA-256'")
        );
        let (h, v) = split("name:").unwrap();
        assert_eq!((h.cmp, v), (Cmp::Eq, ""));
    }

    #[test]
    fn refuses_malformed_heads() {
        let cases = [
            (
                "labels",
                7,
                "':' and a value after 'labels' (terms are field:value)",
            ),
            (":x", 1, "a field name before ':'"),
            ("ty$pe:x", 3, "':' after field 'ty'"),
            ("a..b:x", 3, "a property name in the field path"),
            (".a:x", 1, "a property name in the field path"),
            ("a.:x", 3, "a property name in the field path"),
            ("*:x", 1, "a term"),
            ("a:=5", 3, "a value after ':' (':' already means equals)"),
            ("a:>=5", 0, ""),
        ];
        for (word, column, expected) in cases {
            match split(word) {
                Ok(_) => assert_eq!(column, 0, "{word} should fail"),
                Err(e) => assert_eq!(
                    (e.position, e.expected.as_str()),
                    (column, expected),
                    "{word}"
                ),
            }
        }
    }

    #[test]
    fn derived_fields_are_recognised_in_any_case() {
        assert!(matches!(
            term("TLP:green").unwrap().test,
            Test::Tlp(Some((Cmp::Eq, Tlp::Green)))
        ));
        assert!(matches!(term("Source:x").unwrap().test, Test::Source(_)));
        assert!(matches!(term("tlp:*").unwrap().test, Test::Tlp(None)));
        assert!(matches!(term("added:*").unwrap().test, Test::Added(None)));
        assert!(matches!(
            term("name:*").unwrap().test,
            Test::Property {
                check: Check::Exists,
                ..
            }
        ));
    }

    #[test]
    fn refuses_values_that_never_match() {
        let cases = [
            ("tlp:purple", 5, TLP_LEVELS.to_owned()),
            ("tlp:gr*", 5, TLP_LEVELS.to_owned()),
            ("tlp:>gr*", 6, "a value without '*' after ':>'".to_owned()),
            ("added:>yesterday", 8, format!("{TIME} after 'added:>'")),
            (
                "modified:>2024-01-01",
                11,
                format!("{TIME} after 'modified:>'"),
            ),
            (
                "confidence:>=high",
                14,
                "a number after 'confidence:>='".to_owned(),
            ),
            (
                "confidence:high",
                12,
                "a number after 'confidence:'".to_owned(),
            ),
            ("name:>foo*", 7, "a value without '*' after ':>'".to_owned()),
        ];
        for (word, column, expected) in cases {
            let e = term(word).unwrap_err();
            assert_eq!((e.position, e.expected), (column, expected), "{word}");
        }
        let e = term("source:>x").unwrap_err();
        assert_eq!((e.position, e.found.as_str()), (7, "':>'"));
        assert!(term("ioc_value:<=5").is_err());
        assert!(term("ioc_type:>a").is_err());
    }

    #[test]
    fn accepts_sensible_comparisons() {
        for ok in [
            "modified:2024-01*",
            "modified:>now-30d",
            "confidence:*",
            "confidence:70",
            "name:>m",
            "x_custom_score:>=7.5",
            "tlp:<=amber+strict",
            "tlp:tlp:red",
        ] {
            assert!(term(ok).is_ok(), "{ok}");
        }
    }

    /// Fuzzing regression (fuzz_pattern, corpus `regress-ioc-*-now-prefix`): an IOC
    /// whose value or type starts with `now-`/`now+` could not be queried at all, since
    /// the value was refused as a malformed relative time.
    #[test]
    fn text_only_fields_take_values_that_start_like_now() {
        for ok in [
            "ioc_value:now-tv.example",
            "ioc_value:now+1x",
            "ioc_type:now-i:au",
            "ioc_type:x-now:value",
            "source:now-feed",
        ] {
            assert!(term(ok).is_ok(), "{ok}");
        }
        let Test::IocValue(pattern) = term("ioc_value:NOW-TV.example").unwrap().test else {
            panic!("not an ioc_value term");
        };
        assert!(pattern.matches("now-tv.example"));
        for still_refused in ["added:>now-30x", "modified:>now-1d2h", "name:now-"] {
            assert!(term(still_refused).is_err(), "{still_refused}");
        }
    }

    #[test]
    fn ioc_types_are_canonicalised() {
        let Test::IocType(pattern) = term("ioc_type:file:hashes.SHA-256").unwrap().test else {
            panic!("not an ioc_type term");
        };
        assert!(pattern.matches("file:hashes.'SHA-256'"));
        let Test::IocType(pattern) = term("ioc_type:ipv4-addr:value").unwrap().test else {
            panic!("not an ioc_type term");
        };
        assert!(pattern.matches("ipv4-addr"));
    }
}
