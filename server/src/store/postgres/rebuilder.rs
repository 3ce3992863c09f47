//! The PostgreSQL statements and locking of the shared rebuild and purge flows
//! ([`crate::store::rebuild`]): a rebuild batch is read on the connection holding the
//! view's advisory lock and written under the clock lock, where it is decided again on
//! what other replicas changed meanwhile ([`views::decide`]); the registry is the
//! database's, reloaded after the switch.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Client;

use super::{views, PostgresStore, RETIRED_GRACE_US};
use crate::stix::timestamp::now_us;
use crate::store::rebuild::{Batch, Candidate, Filled, Purger, Rebuilder};
use crate::store::registry::{Registry, ViewState};
use crate::store::StoreError;

/// The rebuild of one view on the connection holding its advisory lock.
pub(super) struct PgRebuild<'a> {
    pub store: &'a PostgresStore,
    pub client: &'a mut Client,
}

impl Rebuilder for PgRebuild<'_> {
    async fn registry(&mut self) -> Result<Arc<Registry>, StoreError> {
        self.store.fresh_registry(self.client, Duration::ZERO).await
    }

    async fn progress(&mut self, view_id: i64) -> Result<Option<i64>, StoreError> {
        views::progress(&*self.client, view_id).await
    }

    async fn candidates(&mut self, after_vid: i64) -> Result<Vec<Candidate>, StoreError> {
        views::candidates(&*self.client, after_vid).await
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<Filled, StoreError> {
        let w = self.store.begin(self.client).await?;
        // Re-check under the clock lock: a reload may have superseded the view.
        let Some(view) = w
            .registry
            .view(batch.view.view_id)
            .filter(|v| v.state == ViewState::Building)
            .cloned()
        else {
            return Ok(Filled::Superseded);
        };
        if let Some(last) = batch.last_vid() {
            let decided = views::decide(
                &w.tx,
                &view,
                batch.candidates,
                batch.early,
                batch.registry,
                &w.registry,
                batch.query,
                batch.now,
            )
            .await?;
            views::fill(&w.tx, &w.clock, &view, batch.candidates, &decided, last).await?;
        }
        if !batch.completes() {
            self.store.commit(w).await?;
            return Ok(Filled::More);
        }
        views::switch(&w.tx, &w.clock, &view).await?;
        self.store.commit(w).await?;
        self.store.invalidate();
        Ok(Filled::Switched)
    }
}

impl Purger for PostgresStore {
    /// Views retired long enough ago (replicas with an older registry may still read
    /// them a little while).
    async fn retired(&mut self) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        views::retired(&client, now_us() - RETIRED_GRACE_US).await
    }

    async fn purge_some(&mut self, view_id: i64) -> Result<bool, StoreError> {
        let (_permit, mut client) = self.write_client().await?;
        let w = self.begin(&mut client).await?;
        let gone = views::purge_some(&w.tx, view_id).await?;
        self.commit(w).await?;
        Ok(gone)
    }
}
