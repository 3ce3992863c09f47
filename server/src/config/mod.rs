//! The configuration directory: the model and its validation live in
//! [`taxiway_model::config`] (shared with the operator); watching the directory for hot
//! reload is [`crate::reload`]'s job.

pub use taxiway_model::config::*;
