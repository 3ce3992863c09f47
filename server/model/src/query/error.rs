//! The error a query author sees.

use thiserror::Error;

/// Why a query text is not a valid query: where, what was expected, and what was there.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at column {position}: expected {expected}, found {found}")]
pub struct ParseError {
    /// 1-based character column in the query text.
    pub position: usize,
    /// What the parser expected there, e.g. `a value after ':>='`.
    pub expected: String,
    /// What it found instead, e.g. `end of query`.
    pub found: String,
}

impl ParseError {
    /// An error at byte offset `at` of `input`.
    pub(crate) fn at(
        input: &str,
        at: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        ParseError {
            position: column(input, at),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// The 1-based character column of byte offset `at`.
fn column(input: &str, at: usize) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let err = ParseError::at("é😈x", "é😈".len(), "a term", "'x'");
        assert_eq!(err.position, 3);
        assert_eq!(err.to_string(), "at column 3: expected a term, found 'x'");
    }

    #[test]
    fn long_text_is_shortened() {
        let long = "a".repeat(100);
        assert_eq!(quote(&long).chars().count(), 43);
    }

    #[test]
    fn describes_what_follows() {
        assert_eq!(describe_at("ab", 2), "end of query");
        assert_eq!(describe_at("a b", 1), "a space");
        assert_eq!(describe_at("a)", 1), "')'");
    }
}
