//! The configuration directory: the model and its validation live in
//! [`taxiway_model::config`] (shared with the operator); the server adds watching the
//! directory for hot reload ([`watch`]).

pub use taxiway_model::config::*;

pub mod watch;
