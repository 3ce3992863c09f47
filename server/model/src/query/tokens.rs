//! The tokens both query dialects are written in: parentheses, bare words and
//! quoted strings.
//!
//! A bare word runs until whitespace, a parenthesis or a `"`, so it can hold the
//! characters IOC values are made of (`http://x/y?a=b`, `file:hashes.'SHA-256'`).
//! A term like `field:>=value` is one word; each dialect's parser splits it.

use super::syntax::{column, quote, SyntaxError};

/// One lexical unit of a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// `(`
    Open,
    /// `)`
    Close,
    /// A run of other characters; its text is `input[start..end]`.
    Word,
    /// A `"…"` string, unescaped and cut at its unescaped `*` wildcards.
    Quoted(Vec<String>),
}

/// A token and where it is in the input (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub token: Token,
    pub start: usize,
    pub end: usize,
}

/// Tokenises a whole query; an unterminated string is the only error.
pub(crate) fn scan<E: SyntaxError>(input: &str) -> Result<Vec<Spanned>, E> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            '"' => Token::Quoted(quoted(input, start, &mut chars)?),
            _ => {
                while chars.peek().is_some_and(|&(_, c)| !ends_word(c)) {
                    chars.next();
                }
                Token::Word
            }
        };
        let end = chars.peek().map_or(input.len(), |&(i, _)| i);
        tokens.push(Spanned { token, start, end });
    }
    Ok(tokens)
}

fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

/// Reads a string body after its opening quote: `\"`, `\\` and `\*` are escapes;
/// any other backslash stays as written (so `"C:\Windows"` needs no doubling); an
/// unescaped `*` is a wildcard.
fn quoted<E: SyntaxError>(
    input: &str,
    open: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<Vec<String>, E> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => {
                pieces.push(piece);
                return Ok(pieces);
            }
            '*' => pieces.push(std::mem::take(&mut piece)),
            '\\' => match chars.peek() {
                Some(&(_, e @ ('"' | '\\' | '*'))) => {
                    piece.push(e);
                    chars.next();
                }
                _ => piece.push('\\'),
            },
            c => piece.push(c),
        }
    }
    Err(E::expected(
        input,
        input.len(),
        format!(
            "'\"' to close the string opened at column {}",
            column(input, open)
        ),
        "end of query".to_owned(),
    ))
}

/// The text of a token as written.
pub(crate) fn word<'a>(input: &'a str, token: &Spanned) -> &'a str {
    input.get(token.start..token.end).unwrap_or("")
}

/// How a token appears in an error message.
pub(crate) fn describe(input: &str, token: &Spanned) -> String {
    match token.token {
        Token::Open => "'('".to_owned(),
        Token::Close => "')'".to_owned(),
        Token::Word | Token::Quoted(_) => quote(word(input, token)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ParseError;

    /// The tokens as the native dialect reads them.
    fn lex(input: &str) -> Result<Vec<Spanned>, ParseError> {
        scan(input)
    }

    fn kinds(input: &str) -> Vec<(Token, &str)> {
        lex(input)
            .unwrap()
            .into_iter()
            .map(|t| {
                let text = &input[t.start..t.end];
                (t.token, text)
            })
            .collect()
    }

    #[test]
    fn words_keep_ioc_characters() {
        assert_eq!(
            kinds("ioc_value:http://evil.example:8080/a?b=c&d=@e+f"),
            [(
                Token::Word,
                "ioc_value:http://evil.example:8080/a?b=c&d=@e+f"
            )]
        );
        assert_eq!(
            kinds("ioc_type:file:hashes.'SHA-256'"),
            [(Token::Word, "ioc_type:file:hashes.'SHA-256'")]
        );
    }

    #[test]
    fn parentheses_and_spaces_split_words() {
        assert_eq!(
            kinds("(a:b\tor\nc:d)"),
            [
                (Token::Open, "("),
                (Token::Word, "a:b"),
                (Token::Word, "or"),
                (Token::Word, "c:d"),
                (Token::Close, ")"),
            ]
        );
    }

    #[test]
    fn quoted_strings_unescape_and_split_at_wildcards() {
        let tokens = lex(r#"name:"a \"b\" \\ c*d\*e C:\x""#).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].end, tokens[1].start, "adjacent");
        assert_eq!(
            tokens[1].token,
            Token::Quoted(vec![r#"a "b" \ c"#.to_owned(), r"d*e C:\x".to_owned()])
        );
    }

    #[test]
    fn unterminated_string_is_an_error() {
        let err = lex(r#"name:"abc"#).unwrap_err();
        assert_eq!(err.position, 10);
        assert!(err.expected.contains("opened at column 6"), "{err}");
        assert!(lex(r#"name:"abc\""#).is_err());
    }

    #[test]
    fn unicode_words() {
        assert_eq!(
            kinds("name:日本語 x"),
            [(Token::Word, "name:日本語"), (Token::Word, "x")]
        );
        assert_eq!(kinds("\u{3000}a:b\u{3000}"), [(Token::Word, "a:b")]);
    }

    /// The XSOAR dialect reads the same tokens, with its own error type.
    mod xsoar {
        use super::{kinds, scan, Spanned, Token};
        use crate::query::xsoar::XsoarQueryError;

        fn lex(input: &str) -> Result<Vec<Spanned>, XsoarQueryError> {
            scan(input)
        }

        #[test]
        fn words_strings_and_parentheses() {
            assert_eq!(
                kinds(r#"(type:IP -tags:x)lastSeen:>="7 days ago""#),
                [
                    (Token::Open, "("),
                    (Token::Word, "type:IP"),
                    (Token::Word, "-tags:x"),
                    (Token::Close, ")"),
                    (Token::Word, "lastSeen:>="),
                    (Token::Quoted(vec!["7 days ago".into()]), r#""7 days ago""#),
                ]
            );
        }

        #[test]
        fn strings_unescape_and_split_at_wildcards() {
            let tokens = lex(r#""a \"b\" *c\*d C:\x""#).unwrap();
            assert_eq!(
                tokens[0].token,
                Token::Quoted(vec![r#"a "b" "#.into(), r"c*d C:\x".into()])
            );
        }

        #[test]
        fn an_unterminated_string_names_where_it_opened() {
            let e = lex(r#"tags:"abc"#).unwrap_err();
            assert_eq!(e.column, 10);
            assert!(e.message.contains("opened at column 6"), "{e}");
        }
    }
}
