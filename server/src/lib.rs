//! Taxiway: a TAXII 2.0/2.1 threat-intelligence feed server.
//!
//! The server is driven entirely by files (`config/`, `credentials/`, `tls/`) and a data
//! directory holding the embedded store; see `docs/configuration.md`.

pub mod access;
pub mod admin;
pub mod auth;
pub mod clock;
pub mod config;
pub mod import;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod query;
pub mod reload;
pub mod serve;
pub mod state;
pub mod stix;
pub mod store;
pub mod taxii;
pub mod tls;
