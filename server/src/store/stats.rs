//! Figures about the store, for metrics.

/// Size of one collection, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSize {
    /// Collection id.
    pub collection: String,
    /// Object versions in it.
    pub entries: u64,
}

/// Figures about the store, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Object versions stored.
    pub object_versions: u64,
    /// Entries per configured collection.
    pub collections: Vec<CollectionSize>,
    /// Query collections whose membership is being rebuilt.
    pub rebuilding: u64,
}
