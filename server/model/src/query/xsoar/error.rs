//! The error an XSOAR query author sees: where, and what is wrong.

use thiserror::Error;

use crate::query::syntax::{column, SyntaxError};
pub(crate) use crate::query::syntax::{describe_at, quote};

/// Why an XSOAR indicator query cannot be translated into a Taxiway query.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at column {column}: {message}")]
pub struct XsoarQueryError {
    /// 1-based character column in the XSOAR query text.
    pub column: usize,
    /// What is wrong there, naming the field or value concerned.
    pub message: String,
}

impl XsoarQueryError {
    /// An error at byte offset `at` of `input`.
    pub(crate) fn at(input: &str, at: usize, message: impl Into<String>) -> Self {
        XsoarQueryError {
            column: column(input, at),
            message: message.into(),
        }
    }
}

impl SyntaxError for XsoarQueryError {
    fn expected(input: &str, at: usize, expected: String, found: String) -> Self {
        XsoarQueryError::at(input, at, format!("expected {expected}, found {found}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        let e = XsoarQueryError::at("é😈x", "é😈".len(), "bad");
        assert_eq!(e.column, 3);
        assert_eq!(e.to_string(), "at column 3: bad");
    }

    #[test]
    fn describes_what_follows() {
        assert_eq!(describe_at("ab", 2), "end of query");
        assert_eq!(describe_at("a b", 1), "a space");
        assert_eq!(describe_at("a)", 1), "')'");
        assert_eq!(quote(&"a".repeat(50)).chars().count(), 43);
    }
}
