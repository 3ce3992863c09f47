//! Splits XSOAR query text into parentheses, bare words and quoted strings.
//!
//! As in the Threat Intel search bar, a bare word runs until whitespace, a
//! parenthesis or a `"`, so `value:http://x/y?a=b` is one word; a term whose value is
//! quoted (`lastSeen:>="7 days ago"`) is a word followed by an adjacent string.

use super::error::{quote, XsoarQueryError};

/// One lexical unit.
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

/// A token and where it is (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub token: Token,
    pub start: usize,
    pub end: usize,
}

/// Tokenises a whole query.
pub(crate) fn lex(input: &str) -> Result<Vec<Spanned>, XsoarQueryError> {
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

/// A string body after its opening quote: `\"`, `\\` and `\*` are escapes, any other
/// backslash stays as written; an unescaped `*` is a wildcard.
fn quoted(
    input: &str,
    open: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<Vec<String>, XsoarQueryError> {
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
    let column = input[..open].chars().count() + 1;
    Err(XsoarQueryError::at(
        input,
        input.len(),
        format!("expected '\"' to close the string opened at column {column}, found end of query"),
    ))
}

/// The text of a token as written.
pub(crate) fn text<'a>(input: &'a str, token: &Spanned) -> &'a str {
    input.get(token.start..token.end).unwrap_or("")
}

/// How a token appears in a message.
pub(crate) fn describe(input: &str, token: &Spanned) -> String {
    match token.token {
        Token::Open => "'('".to_owned(),
        Token::Close => "')'".to_owned(),
        Token::Word | Token::Quoted(_) => quote(text(input, token)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
