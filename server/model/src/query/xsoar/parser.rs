//! Recursive-descent parser for XSOAR indicator queries.
//!
//! ```text
//! query   := or EOF
//! or      := and ("or" and)*
//! and     := unary (["and"] unary)*      side by side means and
//! unary   := "not" unary | primary
//! primary := "(" or ")" | ["-"]term
//! ```
//! Nesting is capped at [`MAX_DEPTH`], below the native parser's cap, so that a
//! translation (which adds a few levels of its own) always parses.

use super::error::{describe_at, quote, XsoarQueryError};
use crate::query::ast::Cmp;
use crate::query::boolean::{self, Dialect, Parser};
use crate::query::tokens::{describe, word as text, Spanned};

/// How deeply parentheses, `not` and `-` may nest.
pub(crate) const MAX_DEPTH: usize = 48;

/// An XSOAR query as parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Term(Term),
}

/// One `field:value` term as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Term {
    /// The field name as written (XSOAR field names ignore case).
    pub field: String,
    /// Byte offset of the field name.
    pub field_at: usize,
    pub cmp: Cmp,
    pub value: Value,
}

/// A term's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Value {
    /// The text between `*` wildcards; one piece means no wildcard.
    pub pieces: Vec<String>,
    /// Byte offset where the value is written.
    pub at: usize,
    /// As written, for messages.
    pub written: String,
}

impl Value {
    /// The value when it has no wildcard.
    pub(crate) fn fixed(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether the value is only wildcards (`field:*`: present).
    pub(crate) fn is_any(&self) -> bool {
        self.pieces.len() > 1 && self.pieces.iter().all(String::is_empty)
    }
}

/// Parses a whole query.
pub(crate) fn parse(input: &str) -> Result<Expr, XsoarQueryError> {
    boolean::parse::<Xsoar>(input)
}

/// The XSOAR dialect's part of the grammar: `-field:value`, its terms and its wording.
struct Xsoar;

impl Dialect for Xsoar {
    type Expr = Expr;
    type Error = XsoarQueryError;
    const MAX_DEPTH: usize = MAX_DEPTH;

    boolean::connectives!(Expr);

    fn word(parser: &mut Parser<'_, Self>, token: &Spanned) -> Result<Expr, XsoarQueryError> {
        let input = parser.input();
        let word = text(input, token);
        if let Some(rest) = word.strip_prefix('-') {
            if rest.is_empty() {
                return Err(XsoarQueryError::at(
                    input,
                    token.end,
                    format!(
                        "expected field:value right after '-', found {}",
                        describe_at(input, token.end)
                    ),
                ));
            }
            parser.enter()?;
            let term = term(parser, token.start + 1, token.end)?;
            parser.leave();
            Ok(Expr::Not(Box::new(Expr::Term(term))))
        } else {
            term(parser, token.start, token.end).map(Expr::Term)
        }
    }

    fn string(input: &str, token: &Spanned) -> XsoarQueryError {
        XsoarQueryError::at(
            input,
            token.start,
            format!(
                "expected a field name and ':' before the string {} (free-text search is not supported: write value:\"…\")",
                describe(input, token)
            ),
        )
    }
}

/// A `field:op value` term written from byte `start` to `end` (a word), with its
/// value in the word or in an adjacent string.
fn term(parser: &mut Parser<'_, Xsoar>, start: usize, end: usize) -> Result<Term, XsoarQueryError> {
    let input = parser.input();
    let word = input.get(start..end).unwrap_or("");
    let Some(colon) = word.find(':') else {
        return Err(XsoarQueryError::at(
            input,
            start,
            format!(
                "expected field:value, found {} (free-text search is not supported: write value:{word}; \
                 quote values that contain spaces, e.g. type:\"Threat Actor\")",
                quote(word)
            ),
        ));
    };
    let field = &word[..colon];
    if field.is_empty() {
        return Err(XsoarQueryError::at(
            input,
            start,
            "expected a field name before ':'",
        ));
    }
    if let Some(bad) = field
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(XsoarQueryError::at(
            input,
            start + bad.0,
            format!(
                "expected a field name of letters, digits, '_' or '.', found {} in {}",
                quote(&bad.1.to_string()),
                quote(field)
            ),
        ));
    }
    let after_colon = &word[colon + 1..];
    let (cmp, op_len) = Cmp::after_colon(after_colon);
    let value_at = start + colon + 1 + op_len;
    let bare = &after_colon[op_len..];
    let value = if !bare.is_empty() {
        Value {
            pieces: bare.split('*').map(str::to_owned).collect(),
            at: value_at,
            written: bare.to_owned(),
        }
    } else if let Some((pieces, s, e)) = parser.adjacent_string(end) {
        Value {
            pieces,
            at: s,
            written: input.get(s..e).unwrap_or("").to_owned(),
        }
    } else {
        return Err(XsoarQueryError::at(
            input,
            value_at,
            format!(
                "expected a value after {}, found {}",
                quote(&word[..colon + 1 + op_len]),
                describe_at(input, value_at)
            ),
        ));
    };
    parser.value_ends(value.at + value.written.len())?;
    Ok(Term {
        field: field.to_owned(),
        field_at: start,
        cmp,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(e: &Expr) -> String {
        let list = |items: &[Expr], op: &str| {
            let inner: Vec<String> = items.iter().map(shape).collect();
            format!("({})", inner.join(op))
        };
        match e {
            Expr::And(items) => list(items, " and "),
            Expr::Or(items) => list(items, " or "),
            Expr::Not(inner) => format!("not {}", shape(inner)),
            Expr::Term(t) => format!("{}{}{}", t.field, t.cmp.as_str(), t.value.pieces.join("*")),
        }
    }

    fn parsed(query: &str) -> String {
        shape(&parse(query).unwrap_or_else(|e| panic!("{query}: {e}")))
    }

    #[test]
    fn structure_and_precedence() {
        assert_eq!(parsed("type:IP tags:x"), "(type:IP and tags:x)");
        assert_eq!(
            parsed("type:IP AND tags:x Or NOT tags:y"),
            "((type:IP and tags:x) or not tags:y)"
        );
        assert_eq!(parsed("-tags:x"), "not tags:x");
        assert_eq!(
            parsed("(type:IP or type:URL) -tags:x"),
            "((type:IP or type:URL) and not tags:x)"
        );
        assert_eq!(
            parsed(r#"lastSeen:>="7 days ago""#),
            "lastSeen:>=7 days ago"
        );
        assert_eq!(parsed("value:*evil*"), "value:*evil*");
        assert_eq!(parsed("value:http://x/a?b=c:d"), "value:http://x/a?b=c:d");
    }

    #[test]
    fn value_positions() {
        let Expr::Term(t) = parse(r#"lastSeen:>="7 days ago""#).unwrap() else {
            panic!("a term");
        };
        assert_eq!((t.cmp, t.value.at, t.field_at), (Cmp::Ge, 11, 0));
        assert_eq!(t.value.written, r#""7 days ago""#);
        let Expr::Not(inner) = parse("-tags:x").unwrap() else {
            panic!("negated");
        };
        let Expr::Term(t) = *inner else {
            panic!("a term")
        };
        assert_eq!((t.field_at, t.value.at), (1, 6));
    }

    #[test]
    fn errors_have_columns() {
        let cases = [
            ("", 1, "expected a term, found end of query"),
            (
                "type:IP and",
                12,
                "expected a term after 'and', found end of query",
            ),
            (
                "(type:IP",
                9,
                "expected ')' to close the '(' at column 1, found end of query",
            ),
            (
                "type:IP)",
                8,
                "expected end of query, found ')' with no matching '('",
            ),
            (
                "type:",
                6,
                "expected a value after 'type:', found end of query",
            ),
            (
                "lastSeen:>= x",
                12,
                "expected a value after 'lastSeen:>=', found a space",
            ),
            (
                "- tags:x",
                2,
                "expected field:value right after '-', found a space",
            ),
            (":x", 1, "expected a field name before ':'"),
            (r#"tags:"a"b"#, 9, "expected a space or ')' after the value"),
        ];
        for (query, column, message) in cases {
            let e = parse(query).unwrap_err();
            assert_eq!(e.column, column, "{query:?}: {e}");
            assert!(e.message.starts_with(message), "{query:?}: {e}");
        }
        let e = parse("type:IP 8.8.8.8").unwrap_err();
        assert_eq!(e.column, 9);
        assert!(e.message.contains("value:8.8.8.8"), "{e}");
    }

    #[test]
    fn nesting_is_capped() {
        let deep = format!(
            "{}tags:x{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&deep).is_err());
        let ok = format!("{}tags:x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        assert!(parse(&format!("{}tags:x", "not ".repeat(100_000))).is_err());
    }
}
