//! The state shared by every handle of the SQLite store: one writer connection, a
//! pool of readers, the clock and the view registry.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::store::clock::Clock;
use crate::store::error::StoreError;
use crate::store::registry::Registry;

/// What every handle of one SQLite store shares.
pub(super) struct Inner {
    pub(super) writer: Mutex<Connection>,
    pub(super) readers: r2d2::Pool<SqliteConnectionManager>,
    pub(super) clock: Clock,
    pub(super) registry: RwLock<Arc<Registry>>,
    pub(super) running: Mutex<HashSet<i64>>,
    pub(super) retention_hours: AtomicU64,
}

/// The error of a store lock poisoned by a panic.
pub(super) fn poisoned<T>(_: T) -> StoreError {
    StoreError::Database("a store lock was poisoned by an earlier panic".into())
}
