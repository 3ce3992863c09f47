//! The state shared by every handle of the PostgreSQL store: the pool, the readiness
//! probe, the cached view registry and this replica's write permits.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use deadpool_postgres::Pool;
use tokio::sync::Semaphore;

use super::probe;
use super::views::QueryCache;
use crate::store::error::StoreError;
use crate::store::generation_reads::GenerationReads;
use crate::store::registry::Registry;

/// The view registry as last loaded, and when.
pub(super) struct Cached {
    pub(super) registry: Arc<Registry>,
    /// `clock.registry_gen` it was loaded at; -1 = must reload.
    pub(super) generation: i64,
    pub(super) checked: Instant,
}

/// What every handle of one PostgreSQL store shares.
pub(super) struct Inner {
    pub(super) pool: Pool,
    /// Readiness, on a connection of its own (see [`super::probe`]).
    pub(super) probe: probe::Probe,
    pub(super) cache: RwLock<Cached>,
    pub(super) queries: Mutex<QueryCache>,
    pub(super) running: Mutex<HashSet<i64>>,
    /// Write transactions in progress on this replica (see [`super::handle::write_permits`]).
    pub(super) writes: Arc<Semaphore>,
    pub(super) retention_hours: AtomicU64,
    pub(super) refresh_secs: AtomicU64,
    pub(super) rebuilds: AtomicU64,
    /// Page generation reads shared among concurrent pages of a collection.
    pub(super) generations: GenerationReads,
}

/// The error of a store lock poisoned by a panic.
pub(super) fn poisoned<T>(_: T) -> StoreError {
    StoreError::Database("a store lock was poisoned by an earlier panic".into())
}
