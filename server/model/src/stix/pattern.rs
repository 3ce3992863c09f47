//! STIX 2.x patterning: just enough of the grammar to pull indicators of compromise out.
//!
//! The whole pattern is parsed (so malformed patterns are rejected), but only
//! `=` comparisons and `IN` sets that are not negated yield [`Ioc`]s: those are the
//! values a consumer can block or hunt for. Everything else (`!=`, `LIKE`,
//! `MATCHES`, ordering, qualifiers, `FOLLOWEDBY`) is parsed and skipped.

use std::fmt::Write as _;

use thiserror::Error;

/// One indicator of compromise found in a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ioc {
    /// `ipv4-addr` for `ipv4-addr:value`; otherwise the canonical object path, e.g. `file:hashes.'SHA-256'`.
    pub ioc_type: String,
    /// The compared value, unescaped (strings) or as written (other literals).
    pub value: String,
}

/// Why a pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at column {position}: {message}")]
pub struct PatternError {
    /// 1-based character column of the problem.
    pub position: usize,
    /// What went wrong.
    pub message: String,
}

/// Deeper nesting of brackets and parentheses is rejected rather than risking the stack.
const MAX_DEPTH: usize = 64;

/// Extracts the IOCs of a STIX pattern, in order of appearance.
pub fn iocs(pattern: &str) -> Result<Vec<Ioc>, PatternError> {
    let tokens = lex(pattern)?;
    let mut parser = Parser::new(pattern, tokens);
    parser.observation_expressions()?;
    parser.expect_end()?;
    Ok(parser.iocs)
}

/// The IOC type an object path such as `file:hashes.SHA-256` yields (`file:hashes.'SHA-256'`), or `None` if it is not a path.
pub fn canonical_ioc_type(path: &str) -> Option<String> {
    let tokens = lex(path).ok()?;
    let mut parser = Parser::new(path, tokens);
    let canonical = parser.object_path().ok()?;
    parser.expect_end().ok()?;
    Some(ioc_type_of(&canonical))
}

/// `X:value` is simply `X`; any other path is its own type.
fn ioc_type_of(canonical_path: &str) -> String {
    canonical_path
        .strip_suffix(":value")
        .unwrap_or(canonical_path)
        .to_owned()
}

const ANY_LITERAL: &[LiteralKind] = &[
    LiteralKind::String,
    LiteralKind::Int,
    LiteralKind::Float,
    LiteralKind::Other,
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Colon,
    Dot,
    Comma,
    Star,
    Cmp(Cmp),
    Ident(String),
    /// A literal; the text is the IOC value it would give.
    Literal(String, LiteralKind),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LiteralKind {
    String,
    Int,
    Float,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Ordered,
}

struct Token {
    tok: Tok,
    /// Byte offset in the pattern.
    at: usize,
}

fn column(input: &str, at: usize) -> usize {
    input.get(..at).map_or(at, |s| s.chars().count()) + 1
}

fn error(input: &str, at: usize, message: impl Into<String>) -> PatternError {
    PatternError {
        position: column(input, at),
        message: message.into(),
    }
}

fn lex(input: &str) -> Result<Vec<Token>, PatternError> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let single = match c {
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ':' => Some(Tok::Colon),
            '.' => Some(Tok::Dot),
            ',' => Some(Tok::Comma),
            '*' => Some(Tok::Star),
            _ => None,
        };
        if let Some(tok) = single {
            chars.next();
            tokens.push(Token { tok, at });
            continue;
        }
        let rest = &input[at..];
        let tok = if let Some((cmp, len)) = comparison(rest) {
            for _ in 0..len {
                chars.next();
            }
            Tok::Cmp(cmp)
        } else if c == '\'' {
            chars.next();
            Tok::Literal(quoted(input, at, &mut chars)?, LiteralKind::String)
        } else if c.is_ascii_digit() || ((c == '-' || c == '+') && starts_number(rest)) {
            number(rest, &mut chars)
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut end = at;
            while let Some(&(i, c)) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            let word = &input[at..end];
            if chars.peek().map(|&(_, c)| c) == Some('\'') {
                prefixed_literal(input, at, word, &mut chars)?
            } else if word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false") {
                Tok::Literal(word.to_ascii_lowercase(), LiteralKind::Other)
            } else {
                Tok::Ident(word.to_owned())
            }
        } else {
            return Err(error(input, at, format!("unexpected character {c:?}")));
        };
        tokens.push(Token { tok, at });
    }
    Ok(tokens)
}

fn comparison(rest: &str) -> Option<(Cmp, usize)> {
    [
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        ("<>", Cmp::Ne),
        ("<=", Cmp::Ordered),
        (">=", Cmp::Ordered),
        ("=", Cmp::Eq),
        ("<", Cmp::Ordered),
        (">", Cmp::Ordered),
    ]
    .into_iter()
    .find(|(op, _)| rest.starts_with(op))
    .map(|(op, cmp)| (cmp, op.len()))
}

fn starts_number(rest: &str) -> bool {
    rest[1..].starts_with(|c: char| c.is_ascii_digit())
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// The body of a `'...'` string after its opening quote, with `\'` and `\\` unescaped.
fn quoted(input: &str, open: usize, chars: &mut Chars<'_>) -> Result<String, PatternError> {
    let mut out = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' => return Ok(out),
            '\\' => match chars.peek() {
                Some(&(_, e @ ('\'' | '\\'))) => {
                    out.push(e);
                    chars.next();
                }
                // Not a STIX escape; real feeds write regexes like '\.' so keep it as is.
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Err(error(input, open, "unterminated string"))
}

fn number(rest: &str, chars: &mut Chars<'_>) -> Tok {
    let b = rest.as_bytes();
    let mut len = usize::from(b[0] == b'-' || b[0] == b'+');
    while len < b.len() && b[len].is_ascii_digit() {
        len += 1;
    }
    let mut kind = LiteralKind::Int;
    if len + 1 < b.len() && b[len] == b'.' && b[len + 1].is_ascii_digit() {
        kind = LiteralKind::Float;
        len += 1;
        while len < b.len() && b[len].is_ascii_digit() {
            len += 1;
        }
    }
    for _ in 0..len {
        chars.next();
    }
    Tok::Literal(rest[..len].to_owned(), kind)
}

/// `t'…'` timestamps, `h'…'` hex and `b64'…'` binary literals.
fn prefixed_literal(
    input: &str,
    at: usize,
    prefix: &str,
    chars: &mut Chars<'_>,
) -> Result<Tok, PatternError> {
    let valid: fn(char) -> bool = match prefix {
        "t" => |c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'),
        "h" => |c| c.is_ascii_hexdigit(),
        "b64" => |c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='),
        _ => {
            return Err(error(
                input,
                at,
                format!("unknown literal prefix {prefix:?}"),
            ))
        }
    };
    chars.next();
    let body = quoted(input, at, chars)?;
    if let Some(bad) = body.chars().find(|&c| !valid(c)) {
        return Err(error(
            input,
            at,
            format!("unexpected {bad:?} in {prefix}'…' literal"),
        ));
    }
    if prefix == "h" && body.len() % 2 != 0 {
        return Err(error(input, at, "hex literal with an odd number of digits"));
    }
    Ok(Tok::Literal(body, LiteralKind::Other))
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    iocs: Vec<Ioc>,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, tokens: Vec<Token>) -> Self {
        Parser {
            input,
            tokens,
            pos: 0,
            depth: 0,
            iocs: Vec::new(),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.input.len(), |t| t.at)
    }

    fn fail<T>(&self, expected: &str) -> Result<T, PatternError> {
        let found = match self.peek() {
            None => "end of pattern".to_owned(),
            Some(_) => {
                let rest = &self.input[self.at()..];
                let shown: String = rest.chars().take(20).collect();
                format!("{shown:?}")
            }
        };
        Err(error(
            self.input,
            self.at(),
            format!("expected {expected}, found {found}"),
        ))
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.tokens.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), PatternError> {
        if self.eat(tok) {
            Ok(())
        } else {
            self.fail(what)
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_end(&self) -> Result<(), PatternError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("end of pattern"),
        }
    }

    fn nest(&mut self) -> Result<(), PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(
                self.input,
                self.at(),
                format!("more than {MAX_DEPTH} nested brackets or parentheses"),
            ));
        }
        Ok(())
    }

    /// observation (FOLLOWEDBY | OR | AND observation)*, all treated alike.
    fn observation_expressions(&mut self) -> Result<(), PatternError> {
        self.qualified_observation()?;
        while self.eat_keyword("FOLLOWEDBY") || self.eat_keyword("OR") || self.eat_keyword("AND") {
            self.qualified_observation()?;
        }
        Ok(())
    }

    fn qualified_observation(&mut self) -> Result<(), PatternError> {
        self.nest()?;
        if self.eat(&Tok::LBracket) {
            self.comparison_or()?;
            self.expect(&Tok::RBracket, "']'")?;
        } else if self.eat(&Tok::LParen) {
            self.observation_expressions()?;
            self.expect(&Tok::RParen, "')'")?;
        } else {
            return self.fail("'[' or '('");
        }
        self.depth -= 1;
        self.qualifiers()
    }

    fn qualifiers(&mut self) -> Result<(), PatternError> {
        loop {
            if self.eat_keyword("WITHIN") {
                self.literal_of(
                    &[LiteralKind::Int, LiteralKind::Float],
                    "a number of seconds",
                )?;
                self.expect_keyword("SECONDS")?;
            } else if self.eat_keyword("REPEATS") {
                self.literal_of(&[LiteralKind::Int], "a count")?;
                self.expect_keyword("TIMES")?;
            } else if self.eat_keyword("START") {
                self.literal_of(&[LiteralKind::Other], "a t'…' timestamp")?;
                self.expect_keyword("STOP")?;
                self.literal_of(&[LiteralKind::Other], "a t'…' timestamp")?;
            } else {
                return Ok(());
            }
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), PatternError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            self.fail(keyword)
        }
    }

    fn literal_of(&mut self, kinds: &[LiteralKind], what: &str) -> Result<String, PatternError> {
        match self.peek() {
            Some(Tok::Literal(_, kind)) if kinds.contains(kind) => match self.next() {
                Some(Tok::Literal(text, _)) => Ok(text),
                _ => self.fail(what),
            },
            _ => self.fail(what),
        }
    }

    fn comparison_or(&mut self) -> Result<(), PatternError> {
        self.comparison_and()?;
        while self.eat_keyword("OR") {
            self.comparison_and()?;
        }
        Ok(())
    }

    fn comparison_and(&mut self) -> Result<(), PatternError> {
        self.comparison()?;
        while self.eat_keyword("AND") {
            self.comparison()?;
        }
        Ok(())
    }

    fn comparison(&mut self) -> Result<(), PatternError> {
        if self.eat(&Tok::LParen) {
            self.nest()?;
            self.comparison_or()?;
            self.expect(&Tok::RParen, "')'")?;
            self.depth -= 1;
            return Ok(());
        }
        let exists = self.is_keyword("EXISTS")
            && !matches!(
                self.tokens.get(self.pos + 1).map(|t| &t.tok),
                Some(Tok::Colon)
            );
        if exists {
            self.pos += 1;
            self.object_path()?;
            return Ok(());
        }
        let path = self.object_path()?;
        let yields = !self.eat_keyword("NOT");
        if let Some(Tok::Cmp(cmp)) = self.peek() {
            let cmp = *cmp;
            self.pos += 1;
            let value = self.literal_of(ANY_LITERAL, "a literal")?;
            if yields && cmp == Cmp::Eq {
                self.push_ioc(&path, value);
            }
        } else if self.eat_keyword("IN") {
            let members = self.set_literal()?;
            if yields {
                for value in members {
                    self.push_ioc(&path, value);
                }
            }
        } else if ["LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"]
            .iter()
            .any(|k| self.eat_keyword(k))
        {
            self.literal_of(&[LiteralKind::String], "a string")?;
        } else {
            return self.fail("a comparison operator");
        }
        Ok(())
    }

    /// `( literal, … )`, possibly empty.
    fn set_literal(&mut self) -> Result<Vec<String>, PatternError> {
        self.expect(&Tok::LParen, "'(' after IN")?;
        let mut members = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(members);
        }
        loop {
            members.push(self.literal_of(ANY_LITERAL, "a literal")?);
            if self.eat(&Tok::RParen) {
                return Ok(members);
            }
            self.expect(&Tok::Comma, "',' or ')'")?;
        }
    }

    fn push_ioc(&mut self, path: &str, value: String) {
        let ioc_type = ioc_type_of(path);
        self.iocs.push(Ioc { ioc_type, value });
    }

    /// `type:component(.component | [index])*`, rendered canonically.
    fn object_path(&mut self) -> Result<String, PatternError> {
        let mut out = match self.next() {
            Some(Tok::Ident(object_type)) => object_type,
            _ => {
                self.pos -= 1;
                return self.fail("an object path such as ipv4-addr:value");
            }
        };
        self.expect(&Tok::Colon, "':' after the object type")?;
        out.push(':');
        let mut previous = self.path_component(&mut out, None)?;
        loop {
            if self.eat(&Tok::Dot) {
                previous = self.path_component(&mut out, Some(&previous))?;
            } else if self.eat(&Tok::LBracket) {
                match self.next() {
                    Some(Tok::Star) => out.push_str("[*]"),
                    Some(Tok::Literal(index, LiteralKind::Int)) => {
                        let _ = write!(out, "[{index}]");
                    }
                    _ => {
                        self.pos -= 1;
                        return self.fail("a list index or '*'");
                    }
                }
                self.expect(&Tok::RBracket, "']'")?;
                previous.clear();
            } else {
                return Ok(out);
            }
        }
    }

    /// Appends one property name; hash algorithm names and non-identifiers are quoted.
    fn path_component(
        &mut self,
        out: &mut String,
        previous: Option<&str>,
    ) -> Result<String, PatternError> {
        if previous.is_some() {
            out.push('.');
        }
        let name = match self.next() {
            Some(Tok::Ident(name)) => name,
            Some(Tok::Literal(name, LiteralKind::String)) => name,
            _ => {
                self.pos -= 1;
                return self.fail("a property name");
            }
        };
        let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        let hash_name = previous.is_some_and(|p| p.eq_ignore_ascii_case("hashes"));
        if plain && !hash_name {
            out.push_str(&name);
        } else {
            out.push('\'');
            for c in name.chars() {
                if c == '\'' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('\'');
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ioc(ioc_type: &str, value: &str) -> Ioc {
        Ioc {
            ioc_type: ioc_type.to_owned(),
            value: value.to_owned(),
        }
    }

    fn ok(pattern: &str) -> Vec<Ioc> {
        iocs(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    #[test]
    fn simple_observables() {
        assert_eq!(
            ok("[ipv4-addr:value = '1.2.3.4']"),
            [ioc("ipv4-addr", "1.2.3.4")]
        );
        assert_eq!(
            ok("[ipv6-addr:value = '2001:db8::1']"),
            [ioc("ipv6-addr", "2001:db8::1")]
        );
        assert_eq!(
            ok("[domain-name:value = 'evil.com']"),
            [ioc("domain-name", "evil.com")]
        );
        assert_eq!(
            ok("[url:value = 'http://evil.com/a?b=c&d=(e)']"),
            [ioc("url", "http://evil.com/a?b=c&d=(e)")]
        );
        assert_eq!(
            ok("[email-addr:value = 'bad@evil.com']"),
            [ioc("email-addr", "bad@evil.com")]
        );
    }

    #[test]
    fn hashes_are_canonical() {
        let sha = "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f";
        assert_eq!(
            ok(&format!("[file:hashes.'SHA-256' = '{sha}']")),
            [ioc("file:hashes.'SHA-256'", sha)]
        );
        assert_eq!(
            ok("[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"),
            [ioc("file:hashes.'MD5'", "d41d8cd98f00b204e9800998ecf8427e")]
        );
    }

    #[test]
    fn double_quotes_are_an_error() {
        assert!(iocs("[file:hashes.\"SHA-1\" = 'x']").is_err());
    }

    #[test]
    fn other_paths_keep_their_shape() {
        assert_eq!(
            ok("[email-message:from_ref.value = 'ceo@evil.com']"),
            [ioc("email-message:from_ref.value", "ceo@evil.com")]
        );
        assert_eq!(
            ok("[network-traffic:dst_ref.value = '10.0.0.1' AND network-traffic:dst_port = 443]"),
            [
                ioc("network-traffic:dst_ref.value", "10.0.0.1"),
                ioc("network-traffic:dst_port", "443")
            ]
        );
        assert_eq!(
            ok("[file:extensions.'windows-pebinary-ext'.sections[*].hashes.'SHA-256' = 'ab']"),
            [ioc(
                "file:extensions.'windows-pebinary-ext'.sections[*].hashes.'SHA-256'",
                "ab"
            )]
        );
        assert_eq!(
            ok("[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Software\\\\Run']"),
            [ioc(
                "windows-registry-key:key",
                "HKEY_LOCAL_MACHINE\\Software\\Run"
            )]
        );
        assert_eq!(
            ok("[process:arguments[0] = '-enc']"),
            [ioc("process:arguments[0]", "-enc")]
        );
    }

    #[test]
    fn boolean_combinations_and_sequences() {
        let p = "[ipv4-addr:value = '1.1.1.1' OR ipv4-addr:value = '2.2.2.2'] \
                 AND [domain-name:value = 'a.example'] \
                 OR ([url:value = 'http://b.example/'] FOLLOWEDBY [file:name = 'x.exe'])";
        assert_eq!(
            ok(p),
            [
                ioc("ipv4-addr", "1.1.1.1"),
                ioc("ipv4-addr", "2.2.2.2"),
                ioc("domain-name", "a.example"),
                ioc("url", "http://b.example/"),
                ioc("file:name", "x.exe"),
            ]
        );
        assert_eq!(
            ok("[(ipv4-addr:value = '1.1.1.1' OR (ipv4-addr:value = '2.2.2.2'))]").len(),
            2
        );
    }

    #[test]
    fn qualifiers_are_skipped() {
        assert_eq!(
            ok("[domain-name:value = 'a.example'] REPEATS 5 TIMES WITHIN 10 SECONDS"),
            [ioc("domain-name", "a.example")]
        );
        assert_eq!(
            ok("([file:name = 'a'] FOLLOWEDBY [file:name = 'b']) WITHIN 1.5 SECONDS"),
            [ioc("file:name", "a"), ioc("file:name", "b")]
        );
        assert_eq!(
            ok("[ipv4-addr:value = '9.9.9.9'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00.123Z'"),
            [ioc("ipv4-addr", "9.9.9.9")]
        );
    }

    #[test]
    fn in_sets_yield_every_member() {
        assert_eq!(
            ok("[ipv4-addr:value IN ('1.1.1.1', '2.2.2.2')]"),
            [ioc("ipv4-addr", "1.1.1.1"), ioc("ipv4-addr", "2.2.2.2")]
        );
        assert_eq!(ok("[ipv4-addr:value IN ()]"), []);
        assert_eq!(ok("[ipv4-addr:value NOT IN ('1.1.1.1')]"), []);
    }

    #[test]
    fn only_positive_equality_yields() {
        for p in [
            "[ipv4-addr:value != '1.1.1.1']",
            "[ipv4-addr:value <> '1.1.1.1']",
            "[ipv4-addr:value NOT = '1.1.1.1']",
            "[domain-name:value LIKE '%.evil.com']",
            "[url:value MATCHES '^https?://evil\\.com/']",
            "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
            "[ipv4-addr:value ISSUPERSET '198.51.100.0/24']",
            "[file:size > 1024]",
            "[file:size >= 1024 AND file:size <= 2048]",
            "[file:created < t'2016-01-01T00:00:00Z']",
            "[EXISTS windows-registry-key:values]",
        ] {
            assert_eq!(ok(p), [], "{p}");
        }
        assert_eq!(
            ok("[ipv4-addr:value == '1.1.1.1']"),
            [ioc("ipv4-addr", "1.1.1.1")]
        );
    }

    #[test]
    fn escapes_and_literals() {
        assert_eq!(
            ok(r"[file:name = 'it\'s.exe']"),
            [ioc("file:name", "it's.exe")]
        );
        assert_eq!(ok(r"[file:name = 'a\\b']"), [ioc("file:name", r"a\b")]);
        assert_eq!(ok(r"[file:name = 'a\.b']"), [ioc("file:name", r"a\.b")]);
        assert_eq!(
            ok("[artifact:payload_bin = b64'aGVsbG8=']"),
            [ioc("artifact:payload_bin", "aGVsbG8=")]
        );
        assert_eq!(
            ok("[file:magic_number_hex = h'ffd8']"),
            [ioc("file:magic_number_hex", "ffd8")]
        );
        assert_eq!(ok("[file:size = -1]"), [ioc("file:size", "-1")]);
        assert_eq!(ok("[x-custom:score = 2.5]"), [ioc("x-custom:score", "2.5")]);
        assert_eq!(
            ok("[file:is_encrypted = true]"),
            [ioc("file:is_encrypted", "true")]
        );
        assert_eq!(ok("[file:name = '']"), [ioc("file:name", "")]);
        assert_eq!(ok("[file:name = 'évil 😈']"), [ioc("file:name", "évil 😈")]);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            ok("[ipv4-addr:value = '1.1.1.1' or ipv4-addr:value in ('2.2.2.2')] followedby [file:name = 'x'] within 5 seconds").len(),
            3
        );
    }

    #[test]
    fn real_feed_patterns() {
        // Shapes seen in OpenCTI, MISP and AlienVault OTX exports.
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "[file:hashes.'SHA-256' = '4bac27393bdd9777ce02453256c5577cd02275510b2227f473d03f533924f877' OR file:hashes.MD5 = 'e3b0c44298fc1c149afbf4c8996fb924' OR file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
                &[
                    ("file:hashes.'SHA-256'", "4bac27393bdd9777ce02453256c5577cd02275510b2227f473d03f533924f877"),
                    ("file:hashes.'MD5'", "e3b0c44298fc1c149afbf4c8996fb924"),
                    ("file:hashes.'SHA-1'", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
                ],
            ),
            (
                "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.33/32']",
                &[
                    ("network-traffic:dst_ref.type", "ipv4-addr"),
                    ("network-traffic:dst_ref.value", "203.0.113.33/32"),
                ],
            ),
            (
                "[url:value = 'hxxp://198.51.100.7:8080/bins/mozi.m']",
                &[("url", "hxxp://198.51.100.7:8080/bins/mozi.m")],
            ),
            (
                "[x509-certificate:hashes.'SHA-1' = 'a1b2']",
                &[("x509-certificate:hashes.'SHA-1'", "a1b2")],
            ),
            (
                "[email-message:subject = 'Invoice \\'overdue\\''] AND [email-message:from_ref.value = 'billing@evil.example']",
                &[
                    ("email-message:subject", "Invoice 'overdue'"),
                    ("email-message:from_ref.value", "billing@evil.example"),
                ],
            ),
        ];
        for (pattern, expected) in cases {
            let got = ok(pattern);
            let expected: Vec<Ioc> = expected.iter().map(|(t, v)| ioc(t, v)).collect();
            assert_eq!(got, expected, "{pattern}");
        }
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for p in [
            "",
            "ipv4-addr:value = '1.1.1.1'",
            "[ipv4-addr:value = '1.1.1.1'",
            "[ipv4-addr:value = '1.1.1.1']]",
            "[ipv4-addr:value = '1.1.1.1",
            "[ipv4-addr:value '1.1.1.1']",
            "[ipv4-addr = '1.1.1.1']",
            "[:value = '1.1.1.1']",
            "[ipv4-addr:value = ]",
            "[ipv4-addr:value = '1' AND]",
            "[ipv4-addr:value = '1'] AND",
            "[ipv4-addr:value = '1'] [ipv4-addr:value = '2']",
            "[ipv4-addr:value IN ('1',)]",
            "[ipv4-addr:value IN '1']",
            "[file:hashes.MD5 = h'abc']",
            "[file:hashes.MD5 = h'zz']",
            "[file:name = x'abc']",
            "[file:name LIKE 5]",
            "[a:b = '1'] WITHIN SECONDS",
            "[a:b = '1'] REPEATS 1.5 TIMES",
            "[a:b = '1'] START t'2016-01-01T00:00:00Z'",
            "[a:b[x] = '1']",
            "[a:b = '1' ; DROP TABLE]",
            "[a:b = #]",
        ] {
            assert!(iocs(p).is_err(), "{p:?} should be rejected");
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = iocs("[ipv4-addr:value = '1.1.1.1' AND]").unwrap_err();
        assert_eq!(err.position, 33);
        assert!(err.message.contains("found \"]\""), "{err}");
        let err = iocs("[file:name = 'é' ; x]").unwrap_err();
        assert_eq!(err.position, 18);
        let err = iocs("[file:name = 'unterminated]").unwrap_err();
        assert_eq!(err.position, 14);
        assert!(err.message.contains("unterminated"));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}[a:b = '1']{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = iocs(&deep).unwrap_err();
        assert!(err.message.contains("nested"), "{err}");
        let deep = format!("[{}a:b = '1'{}]", "(".repeat(10_000), ")".repeat(10_000));
        assert!(iocs(&deep).is_err());
        let fine = format!("{}[a:b = '1']{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(ok(&fine).len(), 1);
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "[",
            "]",
            "'",
            "\\",
            "[a:",
            "[a:b",
            "[a:b =",
            "[a:b = '",
            "[a:b = t'",
            "[a:b = -",
            "[a:b = +",
            "[a:b = 1.",
            "[a:b[",
            "[a:b[1",
            "[a:b.",
            "[a:'",
            "h'",
            "b64'",
            "t'",
            "[a:b = 'x'] START",
            "[a:b = 'x'] WITHIN",
            "[a:b = 'x'] REPEATS",
            "(",
            ")",
            "[]",
            "[()]",
            "[a:b IN (",
            "[a:b IN ('x'",
            "[EXISTS]",
            "[EXISTS a]",
            "ß",
            "🦀[a:b='x']",
            "[a:b = '\u{0}']",
            "[a:b = 'x']\u{200b}",
            "[a:b=='x'==]",
            "[a:b = --1]",
            "[NOT a:b = 'x']",
        ];
        for s in samples {
            let _ = iocs(s);
            let _ = canonical_ioc_type(s);
        }
        let long = format!("[{}]", vec!["a:b = 'x'"; 5000].join(" OR "));
        assert_eq!(ok(&long).len(), 5000);
        // Every prefix of a valid pattern, cut at each char boundary.
        let full =
            "[file:hashes.'SHA-256' = 'é\\'x' OR ipv4-addr:value IN ('1', 2)] WITHIN 5 SECONDS";
        for (i, _) in full.char_indices() {
            let _ = iocs(&full[..i]);
        }
    }

    #[test]
    fn canonicalises_paths_on_their_own() {
        assert_eq!(
            canonical_ioc_type("file:hashes.SHA-256").as_deref(),
            Some("file:hashes.'SHA-256'")
        );
        assert_eq!(
            canonical_ioc_type("file:hashes.'SHA-256'").as_deref(),
            Some("file:hashes.'SHA-256'")
        );
        assert_eq!(
            canonical_ioc_type("file:hashes.md5").as_deref(),
            Some("file:hashes.'md5'")
        );
        assert_eq!(
            canonical_ioc_type("ipv4-addr:value").as_deref(),
            Some("ipv4-addr")
        );
        assert_eq!(canonical_ioc_type("ipv4-addr"), None);
        assert_eq!(canonical_ioc_type("file:name extra"), None);
        assert_eq!(canonical_ioc_type(""), None);
    }
}
