//! The PostgreSQL statements and locking of the shared rebuild, re-evaluation and purge
//! flows ([`crate::store::rebuild`]): a batch is evaluated before the clock lock and
//! decided again under it on what other replicas changed meanwhile
//! ([`views::decide`]); a rebuild runs on the connection holding the view's advisory
//! lock; the registry is the database's, reloaded after a switch.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Client;

use super::{views, PostgresStore, RETIRED_GRACE_US};
use crate::query::Query;
use crate::stix::timestamp::now_us;
use crate::store::rebuild::{
    matches, view_in, Batch, Candidate, Filled, Purger, Rebuilder, Reevaluator,
};
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
        let Some(view) = view_in(&w.registry, batch.view.view_id, ViewState::Building).cloned()
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

/// One re-evaluation batch, on a write connection of this replica.
pub(super) struct PgReevaluation<'a> {
    pub store: &'a PostgresStore,
    /// The registry the batch is evaluated with before the clock lock is taken.
    pub registry: &'a Arc<Registry>,
    pub client: Client,
}

impl Reevaluator for PgReevaluation<'_> {
    async fn candidates(&mut self, after_vid: i64) -> Result<Vec<Candidate>, StoreError> {
        views::candidates(&self.client, after_vid).await
    }

    async fn reevaluate(
        &mut self,
        view_id: i64,
        query: &Query,
        batch: &[Candidate],
    ) -> Result<bool, StoreError> {
        // Evaluate before taking the clock lock, then check under it what other
        // writers changed meanwhile (a stale `source:` fact would drop an object and
        // add it back with a new stamp: pollers get it twice).
        let now = now_us();
        let early: Vec<bool> = batch
            .iter()
            .map(|c| matches(self.registry, query, c, now))
            .collect();
        let w = self.store.begin(&mut self.client).await?;
        let Some(view) = view_in(&w.registry, view_id, ViewState::Active).cloned() else {
            return Ok(false);
        };
        let decided = views::decide(
            &w.tx,
            &view,
            batch,
            &early,
            self.registry,
            &w.registry,
            query,
            now,
        )
        .await?;
        views::reevaluate(&w.tx, &w.clock, view_id, batch, &decided).await?;
        self.store.commit(w).await?;
        Ok(true)
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
