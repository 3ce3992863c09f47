//! The collection query language: `type:indicator and confidence:>=70 and tlp:<=green`.
//!
//! A [`Query`] is parsed once (with positioned, human-readable errors) and then
//! evaluated against millions of object versions, so everything that can be
//! worked out ahead — lower-casing, wildcard compilation, value types, field
//! kinds — is done at parse time. See `docs/query-language.md` for the language.

mod ast;
mod boolean;
mod error;
mod eval;
mod facts;
mod literal;
mod parser;
mod syntax;
mod term;
mod text;
mod tokens;
pub mod xsoar;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use error::ParseError;
pub use facts::ObjectFacts;

/// A parsed collection query, kept with the text it was written as.
#[derive(Debug, Clone)]
pub struct Query {
    text: String,
    expr: ast::Expr,
    relative: bool,
}

impl Query {
    /// Parses query text; the error names the column, what was expected and what was found.
    pub fn parse(text: &str) -> Result<Query, ParseError> {
        let mut expr = parser::parse(text)?;
        let relative = expr.uses_relative_time();
        expr.cheap_first();
        Ok(Query {
            text: text.to_owned(),
            expr,
            relative,
        })
    }

    /// The query as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the object version described by `facts` belongs to the query's results at `now_us`.
    pub fn matches(&self, facts: &ObjectFacts<'_>, now_us: i64) -> bool {
        eval::matches(&self.expr, facts, now_us)
    }

    /// The top-level STIX properties the query's terms read, in query order
    /// (`external_references` for `external_references.source_name:x`); derived
    /// fields such as `ioc_type` or `tlp` are not properties.
    pub fn properties(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.expr.property_heads(&mut out);
        out
    }

    /// Whether the result depends on the evaluation time (`now`, `now-30d`…) and must be refreshed.
    pub fn uses_relative_time(&self) -> bool {
        self.relative
    }
}

/// Two queries are the same if they are written the same.
impl PartialEq for Query {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Query {}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Query {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Query::parse(text)
    }
}

/// Serialised as its text.
impl Serialize for Query {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Deserialised from its text, failing with the parse error.
impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Query::parse(&text).map_err(|e| serde::de::Error::custom(format!("invalid query: {e}")))
    }
}
