//! The XSOAR indicator-query dialect: `type:IP tags:c2 -verdict:Benign`, translated
//! once into the native query language and then parsed as any native query.
//!
//! Cortex XSOAR users bring queries written for its Threat Intel page (the TAXII2
//! Server integration's collections JSON holds them). [`translate`] turns one into the
//! equivalent native text, or refuses it with the column and a message naming what
//! cannot be translated: a field Taxiway cannot honour is an error, never a
//! collection that is quietly empty. The rules are in `docs/migrating.md`.
//!
//! - [`parser`]: `-field:value` and comparisons, on the boolean structure
//!   (`and`/`or`/`not`, parentheses) and the tokens the native language uses too;
//! - [`fields`] and [`types`]: each XSOAR field and indicator type as native terms;
//! - [`dates`]: XSOAR's ways of writing a time;
//! - [`native`]: the native query written out.

mod dates;
mod error;
mod fields;
mod native;
mod parser;
mod types;

#[cfg(test)]
mod tests;

pub use self::error::XsoarQueryError;
pub use self::fields::SCORE_BANDS;

use self::native::Native;
use self::parser::Expr;
use crate::query::Query;

/// Translates an XSOAR indicator query into native Taxiway query text.
///
/// The result always parses with [`Query::parse`]. The error names the column (in
/// the XSOAR text) and what cannot be translated there.
pub fn translate(xsoar: &str) -> Result<String, XsoarQueryError> {
    let expr = parser::parse(xsoar)?;
    let text = to_native(xsoar, &expr)?.render();
    // The grammar and depth cap make this unreachable; checked so a translation can
    // never hand the server a query it refuses.
    Query::parse(&text).map_err(|e| XsoarQueryError {
        column: 1,
        message: format!("the translation {text:?} is not a valid Taxiway query ({e})"),
    })?;
    Ok(text)
}

/// An XSOAR field a native query reads, if any: a property no STIX object has
/// (`tags`, `lastSeen`…) or a `-field` negation, which the native language reads as a
/// property named `-field`. Such a query parses but matches nothing; it was most
/// likely meant as an XSOAR query.
pub fn xsoar_field_in(query: &Query) -> Option<&str> {
    const XSOAR_ONLY: &[&str] = &[
        "tags",
        "verdict",
        "reputation",
        "score",
        "sourcebrands",
        "sourceinstances",
        "expirationstatus",
        "firstseen",
        "lastseen",
        "investigationids",
    ];
    query.properties().into_iter().find(|field| {
        field.starts_with('-') || XSOAR_ONLY.contains(&field.to_ascii_lowercase().as_str())
    })
}

fn to_native(input: &str, expr: &Expr) -> Result<Native, XsoarQueryError> {
    let all = |items: &[Expr]| -> Result<Vec<Native>, XsoarQueryError> {
        items.iter().map(|e| to_native(input, e)).collect()
    };
    Ok(match expr {
        Expr::And(items) => Native::And(all(items)?),
        Expr::Or(items) => Native::Or(all(items)?),
        Expr::Not(inner) => to_native(input, inner)?.not(),
        Expr::Term(term) => fields::translate(input, term)?,
    })
}
