//! What both query dialects (native and XSOAR) say about a place in the query
//! text: its column, how a piece of text is shown, and the error type's part in it.

/// An error type of a query dialect: the lexer and the boolean parser build their
/// errors through it, so each dialect keeps its own type and wording around the
/// shared `expected … found …` core.
pub(crate) trait SyntaxError: Sized {
    /// The error at byte offset `at` of `input`: `expected` was wanted, `found` was there.
    fn expected(input: &str, at: usize, expected: String, found: String) -> Self;
}

/// The 1-based character column of byte offset `at` of `input`.
pub(crate) fn column(input: &str, at: usize) -> usize {
    input.get(..at).map_or(at, |s| s.chars().count()) + 1
}

/// How to show a piece of the query in an error: quoted and shortened.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let head: String = text.chars().take(MAX).collect();
        format!("'{head}…'")
    } else {
        format!("'{text}'")
    }
}

/// What follows byte offset `at` of `input`, described for an error message.
pub(crate) fn describe_at(input: &str, at: usize) -> String {
    match input.get(at..).and_then(|rest| rest.chars().next()) {
        None => "end of query".to_owned(),
        Some(c) if c.is_whitespace() => "a space".to_owned(),
        Some(c) => quote(&c.to_string()),
    }
}
