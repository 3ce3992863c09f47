//! The SQLite statements and locking of the shared rebuild, re-evaluation and purge
//! flows ([`crate::store::rebuild`]): a batch runs synchronously on a blocking thread,
//! reading on a pooled reader and writing under the writer lock; the registry lives in
//! memory and is swapped at the switch.

use std::sync::Arc;

use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;

use super::handle::SqliteStore;
use super::inner::{poisoned, Inner};
use super::views;
use crate::query::Query;
use crate::stix::timestamp::now_us;
use crate::store::error::StoreError;
use crate::store::rebuild::{view_in, Batch, Candidate, Filled, Purger, Rebuilder, Reevaluator};
use crate::store::registry::{Registry, ViewState};

/// One rebuild or re-evaluation batch of the SQLite store.
pub(super) struct SqliteBatch<'a> {
    inner: &'a Inner,
    /// The reader the batch is read on, returned before the writer lock is taken.
    reader: Option<PooledConnection<SqliteConnectionManager>>,
}

impl<'a> SqliteBatch<'a> {
    pub(super) fn new(inner: &'a Inner) -> SqliteBatch<'a> {
        SqliteBatch {
            inner,
            reader: None,
        }
    }

    fn reader(&mut self) -> Result<&PooledConnection<SqliteConnectionManager>, StoreError> {
        if self.reader.is_none() {
            self.reader = Some(self.inner.readers.get()?);
        }
        self.reader
            .as_ref()
            .ok_or_else(|| StoreError::Database("no reader".into()))
    }
}

impl Rebuilder for SqliteBatch<'_> {
    async fn registry(&mut self) -> Result<Arc<Registry>, StoreError> {
        Ok(self.inner.registry.read().map_err(poisoned)?.clone())
    }

    async fn progress(&mut self, view_id: i64) -> Result<Option<i64>, StoreError> {
        views::progress(self.reader()?, view_id)
    }

    async fn candidates(&mut self, after_vid: i64) -> Result<Vec<Candidate>, StoreError> {
        views::candidates(self.reader()?, after_vid)
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<Filled, StoreError> {
        self.reader = None;
        let inner = self.inner;
        let view = batch.view;
        let mut writer = inner.writer.lock().map_err(poisoned)?;
        // Re-check under the writer lock: a reload may have superseded the view.
        let registry = inner.registry.read().map_err(poisoned)?.clone();
        if view_in(&registry, view.view_id, ViewState::Building).is_none() {
            return Ok(Filled::Superseded);
        }
        let tx = inner.write_transaction(&mut writer)?;
        if let Some(last) = batch.last_vid() {
            let matching: Vec<&Candidate> = batch
                .candidates
                .iter()
                .zip(batch.early)
                .filter_map(|(c, &wanted)| wanted.then_some(c))
                .collect();
            views::fill(&tx, &inner.clock, view, &matching, last)?;
        }
        if !batch.completes() {
            tx.commit()?;
            return Ok(Filled::More);
        }
        views::switch(&tx, &inner.clock, view)?;
        tx.commit()?;
        *inner.registry.write().map_err(poisoned)? = Arc::new(registry.switched(view));
        Ok(Filled::Switched)
    }
}

impl Reevaluator for SqliteBatch<'_> {
    async fn candidates(&mut self, after_vid: i64) -> Result<Vec<Candidate>, StoreError> {
        views::candidates(self.reader()?, after_vid)
    }

    /// Evaluated under the writer lock, with the registry as it is then.
    async fn reevaluate(
        &mut self,
        view_id: i64,
        query: &Query,
        batch: &[Candidate],
    ) -> Result<bool, StoreError> {
        self.reader = None;
        let inner = self.inner;
        let mut writer = inner.writer.lock().map_err(poisoned)?;
        let registry = inner.registry.read().map_err(poisoned)?.clone();
        let Some(view) = view_in(&registry, view_id, ViewState::Active).cloned() else {
            return Ok(false);
        };
        let tx = inner.write_transaction(&mut writer)?;
        views::reevaluate(&tx, &inner.clock, &view, batch, query, &registry, now_us())?;
        tx.commit()?;
        Ok(true)
    }
}

impl Purger for SqliteStore {
    async fn retired(&mut self) -> Result<Vec<i64>, StoreError> {
        self.blocking(|inner| views::retired(&*inner.readers.get()?))
            .await
    }

    async fn purge_some(&mut self, view_id: i64) -> Result<bool, StoreError> {
        self.blocking(move |inner| {
            let mut writer = inner.writer.lock().map_err(poisoned)?;
            let tx = inner.write_transaction(&mut writer)?;
            let gone = views::purge_some(&tx, view_id)?;
            tx.commit()?;
            Ok(gone)
        })
        .await
    }
}
