//! What the query evaluator is shown of one stored object version.

use serde_json::Value;

/// What a query can see of one object version.
#[derive(Debug, Clone, Copy)]
pub struct ObjectFacts<'a> {
    /// The parsed STIX object.
    pub object: &'a Value,
    /// Names of the stored collections this version was posted to (id, title and alias of each — any may match).
    pub sources: &'a [&'a str],
    /// When the version entered the store, µs since the Unix epoch.
    pub added_us: i64,
}
