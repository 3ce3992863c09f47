//! TEMPORARY until the query helper lands.
/// Facts.
pub struct ObjectFacts<'a> {
    pub object: &'a serde_json::Value,
    pub sources: &'a [&'a str],
    pub added_us: i64,
}
/// Err.
#[derive(Debug, thiserror::Error)]
#[error("bad query")]
pub struct ParseError;
/// Query.
#[derive(Debug)]
pub struct Query {
    text: String,
}
impl Query {
    /// Parse.
    pub fn parse(text: &str) -> Result<Query, ParseError> {
        Ok(Query {
            text: text.to_string(),
        })
    }
    /// Text.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// Matches.
    pub fn matches(&self, facts: &ObjectFacts<'_>, _now: i64) -> bool {
        facts.object.get("type").and_then(|t| t.as_str()) == Some("indicator")
            && !self.text.is_empty()
            && facts.added_us > 0
            && !facts.sources.is_empty()
    }
    /// Rel.
    pub fn uses_relative_time(&self) -> bool {
        self.text.contains("now")
    }
}
