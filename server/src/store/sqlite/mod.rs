//! The embedded store: SQLite (bundled) in WAL mode on the data directory.
//!
//! One writer connection serialises writes (SQLite allows one writer at a time anyway),
//! which also makes `date_added` stamps follow commit order. Reads use a pool of
//! read-only connections and never wait for writers.

mod backend;
mod backup;
mod checkpointer;
pub(crate) mod db_file;
mod entries;
mod feed_state;
mod gathered_log;
mod handle;
mod ingest;
mod inner;
mod log_restart;
mod read;
mod rebuilder;
mod schema;
mod statistics;
mod views;

pub use backup::{backup, backup_to_writer, restore};
pub use db_file::DB_FILE;
pub use handle::SqliteStore;
