//! What the store is told by the configuration: its collections and its maintenance
//! limits, and nothing of listeners or authentication.

use std::sync::Arc;

use crate::config::{CollectionConfig, CollectionKind, StoreSettings};
use crate::query::Query;

/// The collections the store keeps views for, and how it maintains them.
#[derive(Debug, Clone)]
pub struct StoreSetup {
    /// Collections in configuration order.
    pub collections: Vec<CollectionSetup>,
    /// How long (hours) status resources are kept.
    pub status_retention_hours: u64,
    /// How often (seconds) maintenance re-evaluates queries using relative time.
    pub refresh_interval_secs: u64,
}

/// One collection as the store sees it.
#[derive(Debug, Clone)]
pub struct CollectionSetup {
    /// The TAXII collection id.
    pub id: String,
    /// Names a `source:` query term can use for it: id, title and alias.
    pub names: Vec<String>,
    /// A query collection's compiled query; `None` for a writable (stored) collection.
    pub query: Option<Arc<Query>>,
    /// Query collections: ids of the writable collections the query draws from, in
    /// configuration order. Empty for writable collections.
    pub sources: Vec<String>,
}

impl CollectionSetup {
    /// Whether producers may POST to it.
    pub fn is_writable(&self) -> bool {
        self.query.is_none()
    }
}

impl StoreSetup {
    /// The store's part of a validated configuration: its collections and `[store]`.
    pub fn new(collections: &[CollectionConfig], store: &StoreSettings) -> StoreSetup {
        StoreSetup {
            collections: collections.iter().map(CollectionSetup::from).collect(),
            status_retention_hours: store.status_retention_hours,
            refresh_interval_secs: store.refresh_interval_secs,
        }
    }

    /// Writable collections first, then query collections (which name them as sources).
    pub fn stored_first(&self) -> impl Iterator<Item = &CollectionSetup> {
        let stored = self.collections.iter().filter(|c| c.is_writable());
        stored.chain(self.collections.iter().filter(|c| !c.is_writable()))
    }
}

impl From<&CollectionConfig> for CollectionSetup {
    fn from(c: &CollectionConfig) -> CollectionSetup {
        CollectionSetup {
            id: c.id().to_string(),
            names: c.source_names(),
            query: match &c.kind {
                CollectionKind::Stored => None,
                CollectionKind::Query(query) => Some(query.clone()),
            },
            sources: c.sources.clone(),
        }
    }
}
