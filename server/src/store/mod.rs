//! The object store: every STIX object version with its raw bytes, and the
//! materialised membership of every collection.
//!
//! Collections are isolated: a version row is shared only by collections that were
//! posted the very same bytes, "latest" is decided per stored collection, and a query
//! collection draws only from the stored collections it names (its sources).
//!
//! A collection is read through its *view*: rows `(view, date_added, object version)`.
//! Stored collections get rows when producers POST; query collections get rows when a
//! matching version arrives or when the query is (re)built. Reading a page is an index
//! range scan over one view, so it costs O(page) whatever the size of the store.
//!
//! The rules are written once for both backends: writes in [`ingest`], which views a
//! configuration wants in [`plan`], rebuilds, relative-time re-evaluation and purging
//! in [`rebuild`]. `sqlite` and `postgres` give only their statements, locking and
//! transactions (`IngestTx`, `Rebuilder`, `Reevaluator`, `Purger`).

mod clock;
pub(crate) mod ingest;
pub(crate) mod membership;
pub(crate) mod plan;
pub mod postgres;
pub(crate) mod rebuild;
pub(crate) mod registry;
mod setup;
pub mod sqlite;
pub(crate) mod validate;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use clock::Clock;
pub use setup::{CollectionSetup, StoreSetup};
pub use validate::{validate_object, ObjectError, ValidObject};

/// Microseconds since the Unix epoch (UTC).
pub type Micros = i64;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption, full disk, locked).
    #[error("database error: {0}")]
    Database(String),
    /// The store is not reachable right now (e.g. pool exhausted, database down).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The collection has no view in the store (not a configured collection).
    #[error("unknown collection {0}")]
    UnknownCollection(String),
    /// The collection does not accept writes.
    #[error("collection {0} is read-only")]
    ReadOnly(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    /// Connection problems (no SQLSTATE, class 08, shutdown, too many connections,
    /// serialisation failures) are `Unavailable` (503, retry); the rest are errors.
    fn from(e: tokio_postgres::Error) -> Self {
        let retryable = match e.code() {
            None => true,
            Some(code) => {
                let c = code.code();
                c.starts_with("08")
                    || c.starts_with("53")
                    || c.starts_with("57P")
                    || c == "40001"
                    || c == "40P01"
            }
        };
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        if retryable {
            StoreError::Unavailable(format!("database unreachable: {message}"))
        } else {
            StoreError::Database(message)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        // Whatever stops a new connection (refused, shutting down, not accepting
        // connections, authentication), the store cannot serve now: 503, retry.
        match e {
            deadpool_postgres::PoolError::Backend(e) => match StoreError::from(e) {
                StoreError::Database(m) | StoreError::Unavailable(m) => {
                    StoreError::Unavailable(format!("cannot connect to the database: {m}"))
                }
                other => other,
            },
            other => StoreError::Unavailable(format!("database unreachable: {other}")),
        }
    }
}

/// Which versions of each object a listing returns (`match[version]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMatch {
    /// Every version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// The earliest version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first: bool,
    /// The latest version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
    /// Versions with exactly these `modified` timestamps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<Micros>,
}

impl VersionMatch {
    /// The TAXII default, `last`.
    pub fn last() -> Self {
        VersionMatch {
            last: true,
            ..Default::default()
        }
    }

    /// Every version (the versions endpoint).
    pub fn all() -> Self {
        VersionMatch {
            all: true,
            ..Default::default()
        }
    }
}

/// A listing request over one collection: the TAXII filters plus a page position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// `match[id]` (OR).
    pub ids: Vec<String>,
    /// `match[type]` (OR).
    pub types: Vec<String>,
    /// `match[version]`.
    pub versions: VersionMatch,
    /// `match[spec_version]` (OR); empty = any.
    pub spec_versions: Vec<String>,
    /// Only entries added strictly after this (`added_after` or a cursor position).
    pub after: Option<Micros>,
    /// Page size.
    pub limit: usize,
    /// Whether the raw object bytes are needed (objects) or only metadata (manifest, versions).
    pub with_raw: bool,
    /// With raw bytes: stop before the entry that would bring the page's bytes (each
    /// object counted with one more byte, for the separating comma) over this, keeping
    /// at least one entry; `more` is then true. What a read holds stays within it (plus
    /// one object), however large the objects.
    pub max_bytes: Option<usize>,
}

/// One object version as listed in a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When this version entered the collection.
    pub date_added: Micros,
    /// STIX id.
    pub id: String,
    /// The version: `modified`, else `created`, else the time it was first stored.
    pub version: Micros,
    /// STIX `spec_version` (`2.0` or `2.1`).
    pub spec_version: String,
    /// The object's JSON exactly as it was received (empty unless asked for).
    pub raw: String,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Entries in ascending `date_added` order.
    pub entries: Vec<Entry>,
    /// Whether more entries follow.
    pub more: bool,
}

/// A STIX object as received in an envelope, ready to store.
#[derive(Debug, Clone)]
pub struct NewObject {
    /// The parsed and validated object.
    pub object: ValidObject,
    /// The exact JSON bytes received.
    pub raw: String,
}

/// Outcome of one object of an add-objects request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetail {
    /// STIX id (empty when the object had none).
    pub id: String,
    /// The version (`modified`) as a TAXII timestamp, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Why it failed (failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A TAXII status resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Status id (UUIDv4).
    pub id: String,
    /// `complete` or `pending`.
    pub status: String,
    /// When the request was received (TAXII timestamp).
    pub request_timestamp: String,
    /// Objects in the request.
    pub total_count: u64,
    /// Objects stored (or already present).
    pub success_count: u64,
    /// Objects rejected.
    pub failure_count: u64,
    /// Objects not yet processed.
    pub pending_count: u64,
    /// Stored objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub successes: Vec<StatusDetail>,
    /// Rejected objects, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<StatusDetail>,
    /// Objects still pending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pendings: Vec<StatusDetail>,
}

/// An add-objects request: validated objects plus the failures found while parsing.
#[derive(Debug, Clone, Default)]
pub struct AddObjects {
    /// Objects to store.
    pub objects: Vec<NewObject>,
    /// Objects rejected by validation before reaching the store.
    pub failures: Vec<StatusDetail>,
    /// Who sent it ([`crate::access::Caller::key`]): only they may read its status.
    pub owner: String,
}

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

    /// Make everything written durable in the main database file before the process
    /// exits (no more requests are served). The handle stays usable.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;
