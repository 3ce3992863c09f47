//! The store's unit of time.

/// Microseconds since the Unix epoch (UTC).
pub type Micros = i64;
