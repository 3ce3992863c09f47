//! STIX 2.x helpers: patterns, TLP markings, timestamps and 2.0/2.1 conversion.

pub mod convert;
pub mod pattern;
pub mod timestamp;
pub mod tlp;
