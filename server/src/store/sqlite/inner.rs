//! The state shared by every handle of the SQLite store: one writer connection, a
//! pool of readers, the clock and the view registry.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction};

use super::log_restart::LogRestart;
use crate::store::clock::Clock;
use crate::store::error::StoreError;
use crate::store::generation_reads::GenerationReads;
use crate::store::registry::Registry;

/// What every handle of one SQLite store shares.
pub(super) struct Inner {
    pub(super) writer: Mutex<Connection>,
    pub(super) readers: r2d2::Pool<SqliteConnectionManager>,
    pub(super) clock: Clock,
    pub(super) registry: RwLock<Arc<Registry>>,
    pub(super) running: Mutex<HashSet<i64>>,
    pub(super) retention_hours: AtomicU64,
    /// The checkpointer's request that the next write transaction first finish the
    /// write-ahead log so that it restarts.
    pub(super) log_restart: LogRestart,
    /// Page generation reads shared among concurrent pages of a collection.
    pub(super) generations: GenerationReads,
}

/// The newest `date_added` of the store: one index probe per view, and the newest
/// version's arrival (no table scan).
pub(super) const LAST_STAMP: &str = "SELECT max(m) FROM ( \
       SELECT (SELECT max(date_added) FROM entries e WHERE e.view_id = v.view_id) AS m FROM views v \
       UNION ALL SELECT added_us FROM (SELECT added_us FROM object_versions ORDER BY vid DESC LIMIT 1))";

impl Inner {
    /// A write transaction on `writer` (which holds the store's write lock from its
    /// start), with the clock moved past every stamp in the store: another process
    /// (an `import` beside the server) may have written since, and stamps must follow
    /// commit order across processes too, or a poller resuming from a page's
    /// `X-TAXII-Date-Added-Last` (and a cached page) could miss an entry stamped
    /// before it but committed after.
    pub(super) fn write_transaction<'c>(
        &self,
        writer: &'c mut Connection,
    ) -> Result<Transaction<'c>, StoreError> {
        self.log_restart.serve(writer);
        let tx = writer.transaction()?;
        let last: Option<i64> = tx.prepare_cached(LAST_STAMP)?.query_row([], |r| r.get(0))?;
        self.clock.advance_past(last.unwrap_or(0));
        Ok(tx)
    }
}

/// The error of a store lock poisoned by a panic.
pub(super) fn poisoned<T>(_: T) -> StoreError {
    StoreError::Database("a store lock was poisoned by an earlier panic".into())
}
