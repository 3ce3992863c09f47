//! STIX helpers: timestamps, TLP markings and indicator patterns.
pub mod convert;
pub mod timestamp;
