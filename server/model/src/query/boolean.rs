//! The boolean structure both query dialects share, parsed by recursive descent.
//!
//! ```text
//! query   := or EOF
//! or      := and ("or" and)*
//! and     := unary (["and"] unary)*      juxtaposition means and
//! unary   := "not" unary | primary
//! primary := "(" or ")" | operand        the operand is the dialect's
//! ```
//! Nesting of parentheses and `not` is capped at the dialect's
//! [`Dialect::MAX_DEPTH`], so no input can exhaust the stack; long flat chains of
//! `and`/`or` are loops, not recursion. A [`Dialect`] supplies its expression type,
//! its error type and its operands (terms).

use std::marker::PhantomData;

use super::syntax::SyntaxError;
use super::tokens::{describe, scan, word, Spanned, Token};

/// One query language on top of the shared boolean structure.
pub(crate) trait Dialect: Sized {
    /// A parsed expression.
    type Expr;
    /// The error a query author sees.
    type Error: SyntaxError;
    /// How deeply parentheses and `not` (and whatever the dialect counts) may nest.
    const MAX_DEPTH: usize;

    /// `a and b and …`, of two or more items.
    fn and(items: Vec<Self::Expr>) -> Self::Expr;
    /// `a or b or …`, of two or more items.
    fn or(items: Vec<Self::Expr>) -> Self::Expr;
    /// `not inner`.
    fn not(inner: Self::Expr) -> Self::Expr;
    /// The operand written as `token`, a word that is not a keyword; the parser has
    /// already stepped past it.
    fn word(parser: &mut Parser<'_, Self>, token: &Spanned) -> Result<Self::Expr, Self::Error>;
    /// The error for a quoted string where an operand should begin.
    fn string(input: &str, token: &Spanned) -> Self::Error;
}

/// Writes [`Dialect::and`], [`Dialect::or`] and [`Dialect::not`] in a dialect's
/// `impl`, for an expression enum with `And(Vec<_>)`, `Or(Vec<_>)` and `Not(Box<_>)`.
macro_rules! connectives {
    ($expr:ident) => {
        fn and(items: Vec<$expr>) -> $expr {
            $expr::And(items)
        }

        fn or(items: Vec<$expr>) -> $expr {
            $expr::Or(items)
        }

        fn not(inner: $expr) -> $expr {
            $expr::Not(Box::new(inner))
        }
    };
}
pub(crate) use connectives;

/// Parses a whole query of dialect `D`.
pub(crate) fn parse<D: Dialect>(input: &str) -> Result<D::Expr, D::Error> {
    let mut parser = Parser::<D> {
        input,
        tokens: scan(input)?,
        pos: 0,
        depth: 0,
        dialect: PhantomData,
    };
    let expr = parser.or(None)?;
    if let Some(token) = parser.peek() {
        let found = match token.token {
            Token::Close => "')' with no matching '('".to_owned(),
            _ => describe(input, token),
        };
        return Err(parser.error(token.start, "end of query".to_owned(), found));
    }
    Ok(expr)
}

/// The state of a parse: the tokens, the next one, and how deep the nesting is.
pub(crate) struct Parser<'a, D> {
    input: &'a str,
    tokens: Vec<Spanned>,
    pos: usize,
    depth: usize,
    dialect: PhantomData<D>,
}

impl<'a, D: Dialect> Parser<'a, D> {
    /// The query text.
    pub(crate) fn input(&self) -> &'a str {
        self.input
    }

    /// The next token, if any.
    pub(crate) fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.pos)
    }

    /// The error at byte offset `at`: `expected` was wanted, `found` was there.
    pub(crate) fn error(&self, at: usize, expected: String, found: String) -> D::Error {
        D::Error::expected(self.input, at, expected, found)
    }

    /// Counts one level of nesting, refusing to go past [`Dialect::MAX_DEPTH`].
    pub(crate) fn enter(&mut self) -> Result<(), D::Error> {
        self.depth += 1;
        if self.depth > D::MAX_DEPTH {
            let at = self.peek().map_or(self.input.len(), |t| t.start);
            return Err(self.error(
                at,
                format!("at most {} levels of parentheses and 'not'", D::MAX_DEPTH),
                "one more".to_owned(),
            ));
        }
        Ok(())
    }

    /// Leaves a level of nesting counted by [`Parser::enter`].
    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// The string written right at byte offset `at` (a value after `field:`), taken:
    /// its pieces between wildcards and its span.
    pub(crate) fn adjacent_string(&mut self, at: usize) -> Option<(Vec<String>, usize, usize)> {
        match self.peek().cloned() {
            Some(Spanned {
                token: Token::Quoted(pieces),
                start,
                end,
            }) if start == at => {
                self.pos += 1;
                Some((pieces, start, end))
            }
            _ => None,
        }
    }

    /// Checks that a value ending at byte offset `end` is followed by a space, `)` or
    /// the end of the query.
    pub(crate) fn value_ends(&self, end: usize) -> Result<(), D::Error> {
        match self.peek() {
            Some(next) if next.start == end && next.token != Token::Close => Err(self.error(
                next.start,
                "a space or ')' after the value (quote values that contain spaces, quotes or parentheses)"
                    .to_owned(),
                describe(self.input, next),
            )),
            _ => Ok(()),
        }
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

    fn or(&mut self, after: Option<&str>) -> Result<D::Expr, D::Error> {
        let mut items = vec![self.and(after)?];
        while self.eat_keyword("or") {
            items.push(self.and(Some("or"))?);
        }
        Ok(flatten(items, D::or))
    }

    fn and(&mut self, after: Option<&str>) -> Result<D::Expr, D::Error> {
        let mut items = vec![self.unary(after)?];
        loop {
            if self.eat_keyword("and") {
                items.push(self.unary(Some("and"))?);
            } else if self.starts_operand() {
                items.push(self.unary(None)?);
            } else {
                return Ok(flatten(items, D::and));
            }
        }
    }

    fn unary(&mut self, after: Option<&str>) -> Result<D::Expr, D::Error> {
        if !self.is_keyword("not") {
            return self.primary(after);
        }
        self.enter()?;
        self.pos += 1;
        let inner = self.unary(Some("not"))?;
        self.depth -= 1;
        Ok(D::not(inner))
    }

    fn primary(&mut self, after: Option<&str>) -> Result<D::Expr, D::Error> {
        let expected = match after {
            Some(keyword) => format!("a term after '{keyword}'"),
            None => "a term".to_owned(),
        };
        let Some(token) = self.peek().cloned() else {
            return Err(self.error(self.input.len(), expected, "end of query".to_owned()));
        };
        match token.token {
            Token::Open => self.parenthesised(&token),
            Token::Word if !self.starts_operand() => {
                Err(self.error(token.start, expected, describe(self.input, &token)))
            }
            Token::Word => {
                self.pos += 1;
                D::word(self, &token)
            }
            Token::Close => Err(self.error(token.start, expected, "')'".to_owned())),
            Token::Quoted(_) => Err(D::string(self.input, &token)),
        }
    }

    /// `( or )`, from the `(` token `open`.
    fn parenthesised(&mut self, open: &Spanned) -> Result<D::Expr, D::Error> {
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
                let open_column = self.input[..open.start].chars().count() + 1;
                return Err(self.error(
                    at,
                    format!("')' to close the '(' at column {open_column}"),
                    found,
                ));
            }
        }
        self.depth -= 1;
        Ok(inner)
    }
}

/// One item as itself, several joined by `make`.
fn flatten<E>(mut items: Vec<E>, make: fn(Vec<E>) -> E) -> E {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    make(items)
}
