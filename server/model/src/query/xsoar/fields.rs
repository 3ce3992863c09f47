//! Each XSOAR indicator field as native terms.
//!
//! | XSOAR                          | Taxiway                                          |
//! |--------------------------------|--------------------------------------------------|
//! | `type`                         | see [`types`](super::types)                      |
//! | `score`, `verdict`, `reputation` | `confidence` bands (see [`SCORE_BANDS`])       |
//! | `tags`                         | `labels`                                         |
//! | `sourceBrands`, `sourceInstances` | `source` (the collection an object was posted to) |
//! | `expirationStatus`             | `revoked` and `valid_until` against `now`        |
//! | `value`                        | `ioc_value` or `name`                            |
//! | `firstSeen`                    | `created`                                        |
//! | `lastSeen`, `modified`         | `modified`                                       |
//! | `expiration`                   | `valid_until`                                    |
//!
//! Any other field is an error naming it: Taxiway cannot honour it, and a query
//! quietly matching nothing would look like an empty feed.

use super::dates::{self, When};
use super::error::{quote, XsoarQueryError};
use super::native::Native;
use super::parser::{Term, Value};
use super::types;
use crate::query::ast::Cmp;

/// XSOAR score → STIX 2.1 confidence (Appendix A, "None / Low / Med / High"):
/// (score, verdict, lowest confidence, highest confidence). Score 0 also matches an
/// object without `confidence`.
pub const SCORE_BANDS: [(u8, &str, u8, u8); 4] = [
    (0, "Unknown", 0, 0),
    (1, "Good", 1, 29),
    (2, "Suspicious", 30, 69),
    (3, "Malicious", 70, 100),
];

/// The native expression for one XSOAR term.
pub(crate) fn translate(input: &str, term: &Term) -> Result<Native, XsoarQueryError> {
    let field = term.field.to_ascii_lowercase();
    match field.as_str() {
        "type" => indicator_type(input, term),
        "score" => score(input, term),
        "verdict" | "reputation" => verdict(input, term),
        "tags" => text(input, term, "labels"),
        "sourcebrands" | "sourceinstances" => text(input, term, "source"),
        "expirationstatus" => expiration_status(input, term),
        "value" => {
            unordered(input, term)?;
            Ok(Native::Or(vec![
                Native::pattern("ioc_value", &term.value.pieces),
                Native::pattern("name", &term.value.pieces),
            ]))
        }
        "firstseen" => time(input, term, "created"),
        "lastseen" | "modified" => time(input, term, "modified"),
        "expiration" => time(input, term, "valid_until"),
        _ => Err(unsupported(input, term)),
    }
}

/// Why a field cannot be translated, naming it.
fn unsupported(input: &str, term: &Term) -> XsoarQueryError {
    let field = quote(&term.field);
    let why = match term.field.to_ascii_lowercase().as_str() {
        "investigationids" | "relatedinccount" | "incidents" => {
            "it refers to XSOAR incidents, which Taxiway does not have"
        }
        "aggregatedreliability"
        | "reliability"
        | "comments"
        | "sourcetimestamp"
        | "timestamp"
        | "indicator_type"
        | "manualscore"
        | "ismanual"
        | "isdetectable"
        | "ispreventable" => "it is XSOAR bookkeeping that STIX objects do not carry",
        f if f.starts_with("customfields") => {
            "custom fields are XSOAR's own; STIX has no such property"
        }
        _ => {
            "it is not an XSOAR indicator field Taxiway knows (custom fields cannot be \
             translated); Taxiway translates type, score, verdict, reputation, tags, \
             sourceBrands, sourceInstances, expirationStatus, value, firstSeen, lastSeen, \
             modified and expiration"
        }
    };
    XsoarQueryError::at(
        input,
        term.field_at,
        format!("field {field} cannot be translated: {why}"),
    )
}

/// Refuses `:>` and friends on a field whose values have no order.
fn unordered(input: &str, term: &Term) -> Result<(), XsoarQueryError> {
    if term.cmp == Cmp::Eq {
        return Ok(());
    }
    Err(XsoarQueryError::at(
        input,
        term.field_at + term.field.len(),
        format!(
            "expected ':' ({} values have no order), found {}",
            quote(&term.field),
            quote(term.cmp.as_str())
        ),
    ))
}

/// The value without wildcards, or an error saying what was expected instead.
fn fixed<'a>(input: &str, term: &'a Term, expected: &str) -> Result<&'a str, XsoarQueryError> {
    term.value
        .fixed()
        .ok_or_else(|| value_error(input, term, expected))
}

fn value_error(input: &str, term: &Term, expected: &str) -> XsoarQueryError {
    XsoarQueryError::at(
        input,
        term.value.at,
        format!(
            "expected {expected} after {}, found {}",
            quote(&format!("{}{}", term.field, term.cmp.as_str())),
            quote(&term.value.written)
        ),
    )
}

fn indicator_type(input: &str, term: &Term) -> Result<Native, XsoarQueryError> {
    unordered(input, term)?;
    let name = fixed(input, term, "one indicator type (no wildcards)")?;
    types::native(name).ok_or_else(|| {
        XsoarQueryError::at(
            input,
            term.value.at,
            format!(
                "indicator type {} cannot be translated: Taxiway knows {}",
                quote(name),
                types::KNOWN
            ),
        )
    })
}

/// A plain text field with wildcards.
fn text(input: &str, term: &Term, native: &'static str) -> Result<Native, XsoarQueryError> {
    unordered(input, term)?;
    Ok(Native::pattern(native, &term.value.pieces))
}

fn verdict(input: &str, term: &Term) -> Result<Native, XsoarQueryError> {
    unordered(input, term)?;
    const NAMES: &str = "Malicious (or Bad), Suspicious, Benign (or Good) or Unknown (or None)";
    let name = fixed(input, term, NAMES)?.to_ascii_lowercase();
    let score = match name.as_str() {
        "malicious" | "bad" => 3,
        "suspicious" => 2,
        "benign" | "good" => 1,
        "unknown" | "none" => 0,
        _ => return Err(value_error(input, term, NAMES)),
    };
    Ok(scores(score, score))
}

fn score(input: &str, term: &Term) -> Result<Native, XsoarQueryError> {
    const SCORE: &str = "a score 0 (Unknown), 1 (Good), 2 (Suspicious) or 3 (Malicious)";
    let n: u8 = match fixed(input, term, SCORE)?.parse() {
        Ok(n) if n <= 3 => n,
        _ => return Err(value_error(input, term, SCORE)),
    };
    let (low, high) = match term.cmp {
        Cmp::Eq => (Some(n), Some(n)),
        Cmp::Gt => (n.checked_add(1).filter(|n| *n <= 3), Some(3)),
        Cmp::Ge => (Some(n), Some(3)),
        Cmp::Lt => (Some(0), n.checked_sub(1)),
        Cmp::Le => (Some(0), Some(n)),
    };
    match (low, high) {
        (Some(low), Some(high)) => Ok(scores(low, high)),
        _ => Err(XsoarQueryError::at(
            input,
            term.value.at,
            format!(
                "{} matches no score (scores are 0 to 3)",
                quote(&format!("{}{}{n}", term.field, term.cmp.as_str()))
            ),
        )),
    }
}

/// Objects whose confidence falls in the bands of scores `low..=high`.
fn scores(low: u8, high: u8) -> Native {
    let band = |score: u8| SCORE_BANDS[usize::from(score.min(3))];
    let top = band(high).3;
    let bottom = band(low).2;
    if low == 0 {
        let known = if high == 0 {
            Native::eq("confidence", "0")
        } else {
            Native::compare("confidence", Cmp::Le, top.to_string())
        };
        return Native::Or(vec![Native::present("confidence").not(), known]);
    }
    let from = Native::compare("confidence", Cmp::Ge, bottom.to_string());
    if high == 3 {
        return from;
    }
    Native::And(vec![
        from,
        Native::compare("confidence", Cmp::Le, top.to_string()),
    ])
}

fn expiration_status(input: &str, term: &Term) -> Result<Native, XsoarQueryError> {
    unordered(input, term)?;
    const STATES: &str = "active or expired";
    let state = fixed(input, term, STATES)?.to_ascii_lowercase();
    match state.as_str() {
        "active" => Ok(Native::And(vec![
            Native::eq("revoked", "true").not(),
            Native::Or(vec![
                Native::present("valid_until").not(),
                Native::compare("valid_until", Cmp::Gt, "now"),
            ]),
        ])),
        "expired" => Ok(Native::Or(vec![
            Native::eq("revoked", "true"),
            Native::compare("valid_until", Cmp::Le, "now"),
        ])),
        _ => Err(value_error(input, term, STATES)),
    }
}

/// A time field: XSOAR's time forms, a bare date being a whole UTC day.
fn time(input: &str, term: &Term, native: &'static str) -> Result<Native, XsoarQueryError> {
    let value: &Value = &term.value;
    if value.is_any() && term.cmp == Cmp::Eq {
        return Ok(Native::present(native));
    }
    let text = fixed(input, term, dates::FORMS)?;
    let when = dates::parse(text).ok_or_else(|| value_error(input, term, dates::FORMS))?;
    Ok(match when {
        When::At(t) if term.cmp == Cmp::Eq && t.starts_with("now") => {
            return Err(XsoarQueryError::at(
                input,
                term.value.at,
                format!(
                    "expected a comparison before a relative time (e.g. {}:>=\"7 days ago\"), found {}",
                    term.field,
                    quote(&format!("{}:", term.field))
                ),
            ));
        }
        When::At(t) => Native::compare(native, term.cmp, t),
        When::Day { start, next } => match term.cmp {
            Cmp::Eq => Native::And(vec![
                Native::compare(native, Cmp::Ge, start),
                Native::compare(native, Cmp::Lt, next),
            ]),
            Cmp::Gt => Native::compare(native, Cmp::Ge, next),
            Cmp::Ge => Native::compare(native, Cmp::Ge, start),
            Cmp::Lt => Native::compare(native, Cmp::Lt, start),
            Cmp::Le => Native::compare(native, Cmp::Lt, next),
        },
    })
}
