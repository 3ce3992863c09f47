//! The `Store` trait every backend implements, and the shared handle to one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::store::add_objects::{AddObjects, Status};
use crate::store::error::StoreError;
use crate::store::listing::{Listing, ObjectsPage, Page, PageGeneration, VersionMatch};
use crate::store::setup::StoreSetup;
use crate::store::stats::StoreStats;

/// The store behind every TAXII endpoint.
#[async_trait]
pub trait Store: Send + Sync {
    /// Bring views in line with the configuration: create views for new collections,
    /// start background rebuilds of query collections whose query changed.
    async fn apply_config(&self, setup: &StoreSetup) -> Result<(), StoreError>;

    /// Store objects in a writable collection (and every matching query collection),
    /// durably, and record the status resource; returns it.
    async fn add_objects(
        &self,
        api_root: &str,
        collection: &str,
        request: AddObjects,
    ) -> Result<Status, StoreError>;

    /// A page of a collection.
    async fn list(&self, collection: &str, listing: &Listing) -> Result<Page, StoreError>;

    /// A page of a collection's objects as bytes (the objects endpoints): only the
    /// objects' JSON, cut at the listing's `limit` and `max_bytes` (see
    /// [`ObjectsPage::admit`]), copied once from the database's buffers.
    async fn list_objects(
        &self,
        collection: &str,
        listing: &Listing,
    ) -> Result<ObjectsPage, StoreError>;

    /// The generation of the view serving a collection now (`None` while it has none,
    /// or when the backend cannot tell). Read it *before* the page it keys: the page
    /// is then at least as new as its generation. Concurrent callers may share one
    /// read, never one that started before they called (see
    /// `store::generation_reads`).
    async fn page_generation(
        &self,
        _collection: &str,
    ) -> Result<Option<PageGeneration>, StoreError> {
        Ok(None)
    }

    /// How many entries of a collection a listing selects, ignoring `limit` (the
    /// total TAXII 2.0 reports in `Content-Range`). Costs O(matches), unlike `list`.
    async fn count(&self, collection: &str, listing: &Listing) -> Result<u64, StoreError>;

    /// Remove versions of an object from a writable collection; returns how many.
    async fn delete_object(
        &self,
        collection: &str,
        object_id: &str,
        versions: &VersionMatch,
        spec_versions: &[String],
    ) -> Result<u64, StoreError>;

    /// A status resource of this API root created by `owner`, if still kept (another
    /// caller's status is not found).
    async fn status(
        &self,
        api_root: &str,
        id: &str,
        owner: &str,
    ) -> Result<Option<Status>, StoreError>;

    /// Re-evaluate query collections that use relative time and purge expired statuses.
    async fn maintain(&self) -> Result<(), StoreError>;

    /// Figures for metrics.
    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Whether every query collection is built (readiness is not gated on it, metrics are).
    async fn ready(&self) -> bool;

    /// Whether the store can serve requests right now (readiness is gated on it): the
    /// embedded store always can; PostgreSQL must answer a trivial query.
    async fn reachable(&self) -> bool {
        true
    }

    /// The checkpoint a feed saved last (`[[feeds]]`: where its next pull starts), if any.
    async fn feed_checkpoint(&self, feed: &str) -> Result<Option<String>, StoreError>;

    /// Save a feed's checkpoint (kept when the feed is removed from the configuration).
    async fn save_feed_checkpoint(&self, feed: &str, checkpoint: &str) -> Result<(), StoreError>;

    /// The record of `feed`'s runs saved last (the JSON of a
    /// [`taxiway_model::feed_status::FeedRun`]), if any.
    async fn feed_run(&self, feed: &str) -> Result<Option<String>, StoreError>;

    /// Save the record of `feed`'s runs (JSON), leaving its checkpoint and lease as
    /// they are.
    async fn save_feed_run(&self, feed: &str, run: &str) -> Result<(), StoreError>;

    /// Take or renew the lease on running `feed` for `holder` (one per process) for
    /// `ttl`: `true` when `holder` holds it now, `false` while another holder's lease
    /// runs. With several replicas on one database each feed runs on one at a time.
    async fn lease_feed(&self, feed: &str, holder: &str, ttl: Duration)
        -> Result<bool, StoreError>;

    /// Give up `holder`'s lease on `feed` (another process may take it at once).
    async fn release_feed(&self, feed: &str, holder: &str) -> Result<(), StoreError>;

    /// Make everything written durable in the main database file before the process
    /// exits (no more requests are served). The handle stays usable.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;
