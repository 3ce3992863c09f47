//! The native query language on the shared boolean structure ([`super::boolean`]):
//! its operands are `field:op value` terms.
//!
//! ```text
//! query   := or EOF
//! or      := and ("or" and)*
//! and     := unary (["and"] unary)*      juxtaposition means and
//! unary   := "not" unary | primary
//! primary := "(" or ")" | term
//! ```
//! Nesting of parentheses and `not` is capped at [`MAX_DEPTH`].

use super::ast::Expr;
use super::boolean::{self, Dialect, Parser};
use super::error::{quote, ParseError};
use super::term::{self, ValueSpan};
use super::tokens::{describe, Spanned};

/// How deeply parentheses and `not` may nest.
pub(crate) const MAX_DEPTH: usize = 64;

/// Parses a whole query.
pub(crate) fn parse(input: &str) -> Result<Expr, ParseError> {
    boolean::parse::<Native>(input)
}

/// The native dialect's part of the grammar: its terms and its wording.
struct Native;

impl Dialect for Native {
    type Expr = Expr;
    type Error = ParseError;
    const MAX_DEPTH: usize = MAX_DEPTH;

    boolean::connectives!(Expr);

    fn word(parser: &mut Parser<'_, Self>, token: &Spanned) -> Result<Expr, ParseError> {
        term(parser, token)
    }

    fn string(input: &str, token: &Spanned) -> ParseError {
        ParseError::at(
            input,
            token.start,
            "a field name and ':' before the string",
            describe(input, token),
        )
    }
}

/// A `field:op value` term: the value is the rest of the word, or an adjacent string.
fn term(parser: &mut Parser<'_, Native>, token: &Spanned) -> Result<Expr, ParseError> {
    let input = parser.input();
    let (head, bare) = term::head(input, token.start, token.end)?;
    let value = if !bare.is_empty() {
        ValueSpan {
            pieces: bare.split('*').map(str::to_owned).collect(),
            start: head.value_at,
            end: token.end,
        }
    } else if let Some((pieces, start, end)) = parser.adjacent_string(token.end) {
        ValueSpan { pieces, start, end }
    } else {
        return Err(ParseError::at(
            input,
            head.value_at,
            format!("a value after {}", quote(head.cmp.as_str())),
            super::error::describe_at(input, head.value_at),
        ));
    };
    parser.value_ends(value.end)?;
    term::compile(input, &head, value).map(Expr::Term)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> String {
        parse(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .to_string()
    }

    fn error(query: &str) -> String {
        match parse(query) {
            Ok(expr) => panic!("{query} parsed as {expr}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn precedence_is_not_and_or() {
        assert_eq!(shape("a:1 or b:2 and c:3"), "(a:1 or (b:2 and c:3))");
        assert_eq!(shape("a:1 and b:2 or c:3"), "((a:1 and b:2) or c:3)");
        assert_eq!(shape("not a:1 and b:2"), "(not a:1 and b:2)");
        assert_eq!(shape("not a:1 or not b:2"), "(not a:1 or not b:2)");
        assert_eq!(shape("(a:1 or b:2) and c:3"), "((a:1 or b:2) and c:3)");
        assert_eq!(shape("not (a:1 or b:2)"), "not (a:1 or b:2)");
        assert_eq!(shape("not not a:1"), "not not a:1");
    }

    #[test]
    fn juxtaposition_is_and() {
        assert_eq!(shape("a:1 b:2 c:3"), "(a:1 and b:2 and c:3)");
        assert_eq!(shape("a:1 b:2 or c:3"), "((a:1 and b:2) or c:3)");
        assert_eq!(shape("a:1 not b:2"), "(a:1 and not b:2)");
        assert_eq!(shape("a:1 (b:2 or c:3)"), "(a:1 and (b:2 or c:3))");
        assert_eq!(shape("(a:1)(b:2)"), "(a:1 and b:2)");
    }

    #[test]
    fn keywords_in_any_case() {
        assert_eq!(
            shape("a:1 AND b:2 Or NOT c:3"),
            "((a:1 and b:2) or not c:3)"
        );
        assert_eq!(shape("not(a:1)"), "not a:1");
    }

    #[test]
    fn keyword_named_fields_are_fields() {
        assert_eq!(shape("and:1 or:2 not:3"), "(and:1 and or:2 and not:3)");
    }

    #[test]
    fn quoted_values() {
        assert_eq!(
            shape(r#"labels:"crime ware" or name:"a (b)""#),
            r#"(labels:"crime ware" or name:"a (b)")"#
        );
        assert_eq!(shape(r#"(name:"x")"#), r#"name:"x""#);
        assert_eq!(shape(r#"confidence:>="70""#), r#"confidence:>="70""#);
    }

    #[test]
    fn errors_name_position_expectation_and_finding() {
        let cases = [
            ("", "at column 1: expected a term, found end of query"),
            ("   ", "at column 4: expected a term, found end of query"),
            ("type:indicator and confidence:>=", "at column 33: expected a value after ':>=', found end of query"),
            ("confidence:>= 70", "at column 14: expected a value after ':>=', found a space"),
            ("type:indicator and", "at column 19: expected a term after 'and', found end of query"),
            ("type:indicator or", "at column 18: expected a term after 'or', found end of query"),
            ("not", "at column 4: expected a term after 'not', found end of query"),
            ("and type:x", "at column 1: expected a term, found 'and'"),
            ("a:1 and or b:2", "at column 9: expected a term after 'and', found 'or'"),
            ("(a:1", "at column 5: expected ')' to close the '(' at column 1, found end of query"),
            ("((a:1) b:2", "at column 11: expected ')' to close the '(' at column 1, found end of query"),
            ("a:1)", "at column 4: expected end of query, found ')' with no matching '('"),
            ("()", "at column 2: expected a term, found ')'"),
            ("a:1 and ()", "at column 10: expected a term, found ')'"),
            (r#""apt""#, r#"at column 1: expected a field name and ':' before the string, found '"apt"'"#),
            ("labels apt", "at column 7: expected ':' and a value after 'labels' (terms are field:value), found a space"),
            ("tlp:purple", "at column 5: expected a TLP level (clear, white, green, amber, amber+strict or red), found 'purple'"),
            (r#"name:"a"b"#, "at column 9: expected a space or ')' after the value (quote values that contain spaces, quotes or parentheses), found 'b'"),
            (r#"name:a"b""#, r#"at column 7: expected a space or ')' after the value (quote values that contain spaces, quotes or parentheses), found '"b"'"#),
            ("name:a(b)", "at column 7: expected a space or ')' after the value (quote values that contain spaces, quotes or parentheses), found '('"),
            ("name:", "at column 6: expected a value after ':', found end of query"),
            ("name:(x)", "at column 6: expected a value after ':', found '('"),
        ];
        for (query, message) in cases {
            assert_eq!(error(query), message, "{query:?}");
        }
    }

    #[test]
    fn columns_are_characters() {
        assert_eq!(
            error("name:日本 and tlp:紫"),
            "at column 17: expected a TLP level (clear, white, green, amber, amber+strict or red), found '紫'"
        );
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!("{}a:1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}a:1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let e = parse(&deep).unwrap_err();
        assert_eq!(e.position, MAX_DEPTH + 1);
        assert!(e.expected.contains("at most 64"), "{e}");
        let nots = format!("{}a:1", "not ".repeat(100_000));
        assert!(parse(&nots).is_err());
        let parens = "(".repeat(1_000_000);
        assert!(parse(&parens).is_err());
    }

    #[test]
    fn long_flat_queries_are_fine() {
        let long = vec!["labels:x"; 20_000].join(" or ");
        assert!(parse(&long).is_ok());
        let juxtaposed = vec!["labels:x"; 20_000].join(" ");
        assert!(parse(&juxtaposed).is_ok());
    }

    #[test]
    fn never_panics() {
        let alphabet = [
            "a", ":", ">", "<", "=", "*", "(", ")", "\"", "\\", " ", "and", "or", "not", "tlp",
            "added", "now-", "1", ".", "é", "😈", "\u{0}", "\u{200b}", "\t", "'", "ioc_type",
            "source",
        ];
        // Every string of up to four symbols from the alphabet.
        let n = alphabet.len();
        for len in 1..=4u32 {
            for mut i in 0..n.pow(len) {
                let mut s = String::new();
                for _ in 0..len {
                    s.push_str(alphabet[i % n]);
                    i /= n;
                }
                let _ = parse(&s);
            }
        }
    }
}
