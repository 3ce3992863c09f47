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

mod add_objects;
mod backend;
mod clock;
mod error;
pub mod feed_run;
pub(crate) mod generation_reads;
pub(crate) mod ingest;
mod listing;
pub(crate) mod membership;
mod micros;
pub(crate) mod plan;
pub mod postgres;
pub(crate) mod rebuild;
pub(crate) mod registry;
mod setup;
pub mod sqlite;
mod stats;
pub(crate) mod validate;

pub use add_objects::{AddObjects, NewObject, Status, StatusDetail, StatusResource};
pub use backend::{SharedStore, Store};
pub use clock::Clock;
pub use error::StoreError;
pub use listing::{Entry, Listing, ObjectsPage, Page, PageGeneration, VersionMatch};
pub use micros::Micros;
pub use setup::{CollectionSetup, StoreSetup};
pub use stats::{CollectionSize, StoreStats};
pub use validate::{validate_object, ObjectError, ValidObject};
