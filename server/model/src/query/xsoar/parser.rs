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
use super::lexer::{describe, lex, text, Spanned, Token};
use crate::query::ast::Cmp;

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
    let mut parser = Parser {
        input,
        tokens: lex(input)?,
        pos: 0,
        depth: 0,
    };
    let expr = parser.or(None)?;
    if let Some(token) = parser.peek() {
        let found = match token.token {
            Token::Close => "')' with no matching '('".to_owned(),
            _ => describe(input, token),
        };
        return Err(XsoarQueryError::at(
            input,
            token.start,
            format!("expected end of query, found {found}"),
        ));
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
            t.token == Token::Word && text(self.input, t).eq_ignore_ascii_case(keyword)
        })
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn starts_operand(&self) -> bool {
        match self.peek().map(|t| &t.token) {
            Some(Token::Open | Token::Quoted(_)) => true,
            Some(Token::Word) => !self.is_keyword("and") && !self.is_keyword("or"),
            Some(Token::Close) | None => false,
        }
    }

    fn or(&mut self, after: Option<&str>) -> Result<Expr, XsoarQueryError> {
        let mut items = vec![self.and(after)?];
        while self.eat_keyword("or") {
            items.push(self.and(Some("or"))?);
        }
        Ok(flatten(items, Expr::Or))
    }

    fn and(&mut self, after: Option<&str>) -> Result<Expr, XsoarQueryError> {
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

    fn unary(&mut self, after: Option<&str>) -> Result<Expr, XsoarQueryError> {
        if !self.is_keyword("not") {
            return self.primary(after);
        }
        self.enter()?;
        self.pos += 1;
        let inner = self.unary(Some("not"))?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn enter(&mut self) -> Result<(), XsoarQueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let at = self.peek().map_or(self.input.len(), |t| t.start);
            return Err(XsoarQueryError::at(
                self.input,
                at,
                format!(
                    "expected at most {MAX_DEPTH} levels of parentheses and 'not', found one more"
                ),
            ));
        }
        Ok(())
    }

    fn primary(&mut self, after: Option<&str>) -> Result<Expr, XsoarQueryError> {
        let expected = match after {
            Some(keyword) => format!("expected a term after '{keyword}'"),
            None => "expected a term".to_owned(),
        };
        let Some(token) = self.peek().cloned() else {
            return Err(XsoarQueryError::at(
                self.input,
                self.input.len(),
                format!("{expected}, found end of query"),
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
                        return Err(XsoarQueryError::at(
                            self.input,
                            at,
                            format!("expected ')' to close the '(' at column {open_column}, found {found}"),
                        ));
                    }
                }
                self.depth -= 1;
                Ok(inner)
            }
            Token::Word if !self.starts_operand() => Err(XsoarQueryError::at(
                self.input,
                token.start,
                format!("{expected}, found {}", describe(self.input, &token)),
            )),
            Token::Word => {
                self.pos += 1;
                let word = text(self.input, &token);
                if let Some(rest) = word.strip_prefix('-') {
                    if rest.is_empty() {
                        return Err(XsoarQueryError::at(
                            self.input,
                            token.end,
                            format!(
                                "expected field:value right after '-', found {}",
                                describe_at(self.input, token.end)
                            ),
                        ));
                    }
                    self.enter()?;
                    let term = self.term(token.start + 1, token.end)?;
                    self.depth -= 1;
                    Ok(Expr::Not(Box::new(Expr::Term(term))))
                } else {
                    self.term(token.start, token.end).map(Expr::Term)
                }
            }
            Token::Close => Err(XsoarQueryError::at(
                self.input,
                token.start,
                format!("{expected}, found ')'"),
            )),
            Token::Quoted(_) => Err(XsoarQueryError::at(
                self.input,
                token.start,
                format!(
                    "expected a field name and ':' before the string {} (free-text search is not supported: write value:\"…\")",
                    describe(self.input, &token)
                ),
            )),
        }
    }

    /// A `field:op value` term written from byte `start` to `end` (a word), with its
    /// value in the word or in an adjacent string.
    fn term(&mut self, start: usize, end: usize) -> Result<Term, XsoarQueryError> {
        let input = self.input;
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
        let (cmp, op_len) = [
            (">=", Cmp::Ge),
            ("<=", Cmp::Le),
            (">", Cmp::Gt),
            ("<", Cmp::Lt),
        ]
        .into_iter()
        .find(|(op, _)| after_colon.starts_with(op))
        .map_or((Cmp::Eq, 0), |(op, cmp)| (cmp, op.len()));
        let value_at = start + colon + 1 + op_len;
        let bare = &after_colon[op_len..];
        let value = if !bare.is_empty() {
            Value {
                pieces: bare.split('*').map(str::to_owned).collect(),
                at: value_at,
                written: bare.to_owned(),
            }
        } else {
            match self.peek().cloned() {
                Some(Spanned {
                    token: Token::Quoted(pieces),
                    start: s,
                    end: e,
                }) if s == end => {
                    self.pos += 1;
                    Value {
                        pieces,
                        at: s,
                        written: input.get(s..e).unwrap_or("").to_owned(),
                    }
                }
                _ => {
                    return Err(XsoarQueryError::at(
                        input,
                        value_at,
                        format!(
                            "expected a value after {}, found {}",
                            quote(&word[..colon + 1 + op_len]),
                            describe_at(input, value_at)
                        ),
                    ));
                }
            }
        };
        if let Some(next) = self.peek() {
            let value_end = value.at + value.written.len();
            if next.start == value_end && next.token != Token::Close {
                return Err(XsoarQueryError::at(
                    input,
                    next.start,
                    format!(
                        "expected a space or ')' after the value (quote values that contain spaces, quotes or parentheses), found {}",
                        describe(input, next)
                    ),
                ));
            }
        }
        Ok(Term {
            field: field.to_owned(),
            field_at: start,
            cmp,
            value,
        })
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
