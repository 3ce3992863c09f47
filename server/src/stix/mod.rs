//! STIX 2.x helpers: patterns, TLP markings and timestamps.

pub mod pattern;
pub mod timestamp;
pub mod tlp;
