//! Recursive-descent parser for the boolean structure of a query.
//!
//! ```text
//! query   := or EOF
//! or      := and ("or" and)*
//! and     := unary (["and"] unary)*      juxtaposition means and
//! unary   := "not" unary | primary
//! primary := "(" or ")" | term
//! ```
//! Nesting of parentheses and `not` is capped at [`MAX_DEPTH`], so no input can
//! exhaust the stack; long flat chains of `and`/`or` are loops, not recursion.

use super::ast::Expr;
use super::error::{quote, ParseError};
use super::lexer::{describe, lex, word, Spanned, Token};
use super::term::{self, ValueSpan};

/// How deeply parentheses and `not` may nest.
pub(crate) const MAX_DEPTH: usize = 64;

/// Parses a whole query.
pub(crate) fn parse(input: &str) -> Result<Expr, ParseError> {
    let tokens = lex(input)?;
    let mut parser = Parser {
        input,
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.or(None)?;
    if let Some(token) = parser.peek() {
        let found = match token.token {
            Token::Close => "')' with no matching '('".to_owned(),
            _ => describe(input, token),
        };
        return Err(ParseError::at(input, token.start, "end of query", found));
    }
    Ok(expr)
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Spanned>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.pos)
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| {
            t.token == Token::Word && word(self.input, t).eq_ignore_ascii_case(keyword)
        })
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Whether the next token can begin an operand (so juxtaposition means `and`).
    fn starts_operand(&self) -> bool {
        match self.peek().map(|t| &t.token) {
            Some(Token::Open | Token::Quoted(_)) => true,
            Some(Token::Word) => !self.is_keyword("and") && !self.is_keyword("or"),
            Some(Token::Close) | None => false,
        }
    }

    fn or(&mut self, after: Option<&str>) -> Result<Expr, ParseError> {
        let mut items = vec![self.and(after)?];
        while self.eat_keyword("or") {
            items.push(self.and(Some("or"))?);
        }
        Ok(flatten(items, Expr::Or))
    }

    fn and(&mut self, after: Option<&str>) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary(after)?];
        loop {
            if self.eat_keyword("and") {
                items.push(self.unary(Some("and"))?);
            } else if self.starts_operand() {
                items.push(self.unary(None)?);
            } else {
                return Ok(flatten(items, Expr::And));
            }
        }
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Expr, ParseError> {
        if !self.is_keyword("not") {
            return self.primary(after);
        }
        self.enter()?;
        self.pos += 1;
        let inner = self.unary(Some("not"))?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    /// Counts one level of nesting, refusing to go past [`MAX_DEPTH`].
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let at = self.peek().map_or(self.input.len(), |t| t.start);
            return Err(ParseError::at(
                self.input,
                at,
                format!("at most {MAX_DEPTH} levels of parentheses and 'not'"),
                "one more",
            ));
        }
        Ok(())
    }

    fn primary(&mut self, after: Option<&str>) -> Result<Expr, ParseError> {
        let expected = match after {
            Some(keyword) => format!("a term after '{keyword}'"),
            None => "a term".to_owned(),
        };
        let Some(token) = self.peek().cloned() else {
            return Err(ParseError::at(
                self.input,
                self.input.len(),
                expected,
                "end of query",
            ));
        };
        match token.token {
            Token::Open => {
                self.enter()?;
                self.pos += 1;
                let inner = self.or(None)?;
                match self.peek() {
                    Some(t) if t.token == Token::Close => self.pos += 1,
                    next => {
                        let (at, found) = match next {
                            Some(t) => (t.start, describe(self.input, t)),
                            None => (self.input.len(), "end of query".to_owned()),
                        };
                        let open_column = self.input[..token.start].chars().count() + 1;
                        return Err(ParseError::at(
                            self.input,
                            at,
                            format!("')' to close the '(' at column {open_column}"),
                            found,
                        ));
                    }
                }
                self.depth -= 1;
                Ok(inner)
            }
            Token::Word if !self.starts_operand() => Err(ParseError::at(
                self.input,
                token.start,
                expected,
                describe(self.input, &token),
            )),
            Token::Word => self.term(&token),
            Token::Close => Err(ParseError::at(self.input, token.start, expected, "')'")),
            Token::Quoted(_) => Err(ParseError::at(
                self.input,
                token.start,
                "a field name and ':' before the string",
                describe(self.input, &token),
            )),
        }
    }

    /// A `field:op value` term: the value is the rest of the word, or an adjacent string.
    fn term(&mut self, token: &Spanned) -> Result<Expr, ParseError> {
        self.pos += 1;
        let (head, bare) = term::head(self.input, token.start, token.end)?;
        let value = if !bare.is_empty() {
            ValueSpan {
                pieces: bare.split('*').map(str::to_owned).collect(),
                start: head.value_at,
                end: token.end,
            }
        } else {
            match self.peek().cloned() {
                Some(Spanned {
                    token: Token::Quoted(pieces),
                    start,
                    end,
                }) if start == token.end => {
                    self.pos += 1;
                    ValueSpan { pieces, start, end }
                }
                _ => {
                    return Err(ParseError::at(
                        self.input,
                        head.value_at,
                        format!("a value after {}", quote(head.cmp.as_str())),
                        super::error::describe_at(self.input, head.value_at),
                    ));
                }
            }
        };
        if let Some(next) = self.peek() {
            if next.start == value.end && next.token != Token::Close {
                return Err(ParseError::at(
                    self.input,
                    next.start,
                    "a space or ')' after the value (quote values that contain spaces, quotes or parentheses)",
                    describe(self.input, next),
                ));
            }
        }
        term::compile(self.input, &head, value).map(Expr::Term)
    }
}

fn flatten(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    make(items)
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
