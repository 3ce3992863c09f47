//! The error a query author sees.

use thiserror::Error;

use super::syntax::{column, SyntaxError};
pub(crate) use super::syntax::{describe_at, quote};

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

impl SyntaxError for ParseError {
    fn expected(input: &str, at: usize, expected: String, found: String) -> Self {
        ParseError::at(input, at, expected, found)
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
