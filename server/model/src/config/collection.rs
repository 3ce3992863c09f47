//! A collection after validation: its settings, and whether it stores what is posted
//! or is a query view (with the query compiled).

use std::sync::Arc;

use super::model::Collection;
use crate::query::Query;

/// What a collection is.
#[derive(Debug, Clone)]
pub enum CollectionKind {
    /// Holds what producers POST to it.
    Stored,
    /// A read-only view: every stored object matching the query.
    Query(Arc<Query>),
}

/// A collection whose settings were validated and whose query is compiled.
#[derive(Debug, Clone)]
pub struct CollectionConfig {
    /// The configured settings.
    pub settings: Collection,
    /// Stored or query.
    pub kind: CollectionKind,
    /// Query collections: ids of the writable collections the query draws from, in
    /// configuration order (resolved from `sources`, or the safe default). Empty for
    /// writable collections.
    pub sources: Vec<String>,
    /// Where it is configured, for messages: `collections[2]` (in `taxiway.toml`) or
    /// `collections.json "Phishing URLs"`.
    pub at: String,
}

impl CollectionConfig {
    /// The TAXII collection id.
    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// The native query of a query collection (an XSOAR query as translated).
    pub fn native_query(&self) -> Option<&str> {
        match &self.kind {
            CollectionKind::Query(query) => Some(query.text()),
            CollectionKind::Stored => None,
        }
    }

    /// Whether producers may POST to it.
    pub fn is_writable(&self) -> bool {
        matches!(self.kind, CollectionKind::Stored)
    }

    /// Names a `source:` query term can use for this collection: id, title and alias.
    pub fn source_names(&self) -> Vec<String> {
        let mut names = vec![self.settings.id.clone(), self.settings.title.clone()];
        names.extend(self.settings.alias.clone());
        names
    }
}
