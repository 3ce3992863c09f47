//! Taxiway's model: what the server and the Kubernetes operator both understand.
//!
//! - [`config`]: `config/taxiway.toml` as written, its validation, and the compiled
//!   [`config::ServiceConfig`] the server serves;
//! - [`query`]: the collection query language;
//! - [`stix`]: STIX 2.x helpers (patterns, TLP markings, timestamps, 2.0/2.1 conversion);
//! - [`auth`]: the credentials directory (`users.toml`), password and API key hashes,
//!   and the `[auth]` settings;
//! - [`access`]: who a caller is and what a collection lets them do;
//! - [`feed_status`]: what `[[feeds]]` runs did, as the server reports it to the operator.
//!
//! This crate reaches no store, no HTTP, no listener and no file watching: those live in
//! the server, which depends on this crate (as does the operator), never the reverse.

pub mod access;
pub mod auth;
pub mod config;
pub mod feed_status;
pub mod query;
pub mod stix;
