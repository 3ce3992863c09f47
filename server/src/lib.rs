//! Taxiway: a TAXII 2.0/2.1 threat-intelligence feed server.
//!
//! The server is driven entirely by files (`config/`, `credentials/`, `tls/`) and a data
//! directory holding the embedded store; see `docs/configuration.md`.
//!
//! The configuration model, the query language, STIX helpers, access rules and
//! credential files live in the `taxiway-model` crate (shared with the operator) and are
//! re-exported here under their old paths. The public modules are what the binary
//! (`main.rs`), the integration tests (`tests/`) and the fuzz targets use; the rest is
//! `pub(crate)`.

pub mod admin;
pub mod auth;
pub mod clock;
pub mod coding;
pub mod config;
pub mod feeds;
pub mod import;
pub mod limits;
pub mod listener;
pub(crate) mod metrics;
pub mod page_cache;
pub mod reload;
pub mod serve;
pub mod state;
pub mod store;
pub mod taxii;
pub mod tls;

// Moved to the model crate; re-exported under their old paths.
pub use taxiway_model::{access, query, stix};
