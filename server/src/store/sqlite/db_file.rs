//! Where the embedded store keeps its data.

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "taxiway.db";
