//! The error an XSOAR query author sees: where, and what is wrong.

use thiserror::Error;

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
            column: input.get(..at).map_or(at, |s| s.chars().count()) + 1,
            message: message.into(),
        }
    }
}

/// How to show a piece of the query in a message: quoted and shortened.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let head: String = text.chars().take(MAX).collect();
        format!("'{head}…'")
    } else {
        format!("'{text}'")
    }
}

/// What follows byte offset `at` of `input`, described for a message.
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
