//! The PostgreSQL store as a [`Store`]: requests, background rebuilds under the
//! view's advisory lock, and maintenance claimed by one replica per interval.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::Client;

use super::handle::PostgresStore;
use super::ingest::PgIngest;
use super::read;
use super::rebuilder::{PgRebuild, PgReevaluation};
use super::schema;
use super::views;
use crate::stix::timestamp::{format_taxii, now_us};
use crate::store::add_objects::{AddObjects, Status};
use crate::store::backend::Store;
use crate::store::error::StoreError;
use crate::store::ingest::{self as write, Target};
use crate::store::listing::{Listing, ObjectsPage, Page, PageGeneration, VersionMatch};
use crate::store::rebuild::{self, Filled};
use crate::store::registry::ViewState;
use crate::store::setup::StoreSetup;
use crate::store::stats::{CollectionSize, StoreStats};

/// How stale the registry used for metrics may be.
pub const REGISTRY_MAX_AGE: Duration = Duration::from_secs(1);

impl PostgresStore {
    fn spawn_rebuild(&self, view_id: i64) {
        {
            let Ok(mut running) = self.inner.running.lock() else {
                return;
            };
            if !running.insert(view_id) {
                return;
            }
        }
        let store = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = store.rebuild(view_id).await;
            if let Ok(mut running) = store.inner.running.lock() {
                running.remove(&view_id);
            }
            match result {
                Ok(true) => tracing::info!(
                    view_id,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "query collection rebuilt"
                ),
                Ok(false) => {
                    tracing::debug!(
                        view_id,
                        "rebuild not needed here (superseded or another replica has it)"
                    )
                }
                Err(e) => {
                    tracing::error!(view_id, error = %e, "query collection rebuild failed; will retry on next maintenance")
                }
            }
        });
    }

    /// Rebuild a view if no other replica is: the view's advisory lock is held by the
    /// session of one connection for the whole rebuild, and the batches run on that
    /// same connection (so a pool of one connection suffices).
    async fn rebuild(&self, view_id: i64) -> Result<bool, StoreError> {
        let mut conn = self.client().await?;
        let key = (view_id & 0x7fff_ffff) as i32;
        let got: bool = conn
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&schema::REBUILD_NAMESPACE, &key],
            )
            .await?
            .get(0);
        if !got {
            return Ok(false);
        }
        let result = self.rebuild_locked(view_id, &mut conn).await;
        let unlocked = conn
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&schema::REBUILD_NAMESPACE, &key],
            )
            .await;
        if unlocked.is_err() {
            // Close that connection: the lock goes with its session.
            drop(deadpool_postgres::Object::take(conn));
        } else {
            drop(conn);
        }
        let finished = result?;
        if finished {
            self.inner.rebuilds.fetch_add(1, Ordering::Relaxed);
            self.analyze_entries().await;
            self.purge_retired().await?;
        }
        Ok(finished)
    }

    /// Planner statistics for a view just put live. PostgreSQL knows nothing of a view
    /// created since `entries` was last analysed (autovacuum waits for a tenth of the
    /// table to change) and plans lookups in it as for one row: after a query change
    /// at 1M objects, ingest's per-object lookups in the new view scanned all of it
    /// (POST 7,100–8,800 objects/s; 13,100 once analysed). `ANALYZE` samples the table
    /// (0.2 s at 1M), outside the clock lock; a failure costs plans, not data.
    async fn analyze_entries(&self) {
        let analyzed = async {
            self.client()
                .await?
                .batch_execute("ANALYZE entries")
                .await?;
            Ok::<_, StoreError>(())
        };
        if let Err(error) = analyzed.await {
            tracing::warn!(%error, "ANALYZE entries after a query collection rebuild failed");
        }
    }

    async fn rebuild_locked(&self, view_id: i64, client: &mut Client) -> Result<bool, StoreError> {
        let mut batches = PgRebuild {
            store: self,
            client,
        };
        loop {
            match rebuild::rebuild_batch(&mut batches, view_id).await? {
                Filled::More => continue,
                Filled::Superseded => return Ok(false),
                Filled::Switched => return Ok(true),
            }
        }
    }

    async fn purge_retired(&self) -> Result<(), StoreError> {
        rebuild::purge_retired(&mut self.clone()).await
    }

    /// Claim this interval's maintenance for this replica; false if another replica
    /// did it less than half an interval ago.
    async fn claim_maintenance(&self) -> Result<bool, StoreError> {
        let half_us = (self.inner.refresh_secs.load(Ordering::Relaxed) as i64) * 500_000;
        let now = now_us();
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE maintenance SET last_us = $1 WHERE last_us <= $2",
                &[&now, &(now - half_us)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn refresh_relative(&self) -> Result<(), StoreError> {
        let registry = {
            let client = self.client().await?;
            self.fresh_registry(&client, Duration::ZERO).await?
        };
        for (view_id, query) in rebuild::relative_time_views(&registry) {
            let mut after = 0;
            loop {
                let (_permit, client) = self.write_client().await?;
                let mut batch = PgReevaluation {
                    store: self,
                    registry: &registry,
                    client,
                };
                match rebuild::reevaluate_batch(&mut batch, view_id, &query, after).await? {
                    Some(vid) => after = vid,
                    None => break,
                }
            }
        }
        Ok(())
    }
}

/// Above this many rows, `/metrics` reports PostgreSQL's estimate of the number of
/// object versions instead of counting them.
const EXACT_COUNT_BELOW: f32 = 100_000.0;

/// How many object versions the store holds, for `/metrics` on every replica at every
/// scrape: `count(*)` reads the whole table, so a large table is not counted but
/// estimated (`pg_class.reltuples`, kept up to date by autovacuum's `ANALYZE`). A small
/// or never analysed table is counted exactly.
async fn object_versions(client: &Client) -> Result<i64, StoreError> {
    let estimate: f32 = client
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'object_versions'::regclass",
            &[],
        )
        .await?
        .get(0);
    if estimate >= EXACT_COUNT_BELOW {
        return Ok(estimate as i64);
    }
    Ok(client
        .query_one("SELECT count(*) FROM object_versions", &[])
        .await?
        .get(0))
}

#[async_trait]
impl Store for PostgresStore {
    async fn feed_checkpoint(&self, feed: &str) -> Result<Option<String>, StoreError> {
        self.read_feed_checkpoint(feed).await
    }

    async fn save_feed_checkpoint(&self, feed: &str, checkpoint: &str) -> Result<(), StoreError> {
        self.write_feed_checkpoint(feed, checkpoint).await
    }

    async fn feed_run(&self, feed: &str) -> Result<Option<String>, StoreError> {
        self.read_feed_run(feed).await
    }

    async fn save_feed_run(&self, feed: &str, run: &str) -> Result<(), StoreError> {
        self.write_feed_run(feed, run).await
    }

    async fn lease_feed(
        &self,
        feed: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.take_feed_lease(feed, holder, ttl).await
    }

    async fn release_feed(&self, feed: &str, holder: &str) -> Result<(), StoreError> {
        self.drop_feed_lease(feed, holder).await
    }

    async fn apply_config(&self, setup: &StoreSetup) -> Result<(), StoreError> {
        self.inner
            .retention_hours
            .store(setup.status_retention_hours, Ordering::Relaxed);
        self.inner
            .refresh_secs
            .store(setup.refresh_interval_secs, Ordering::Relaxed);
        let (_permit, mut client) = self.write_client().await?;
        let w = self.begin(&mut client).await?;
        let changed = views::apply_config(&w.tx, setup).await?;
        self.commit(w).await?;
        if changed {
            self.invalidate();
        }
        let registry = self.fresh_registry(&client, Duration::ZERO).await?;
        drop(client);
        for view_id in rebuild::building_views(&registry) {
            self.spawn_rebuild(view_id);
        }
        Ok(())
    }

    async fn add_objects(
        &self,
        api_root: &str,
        collection: &str,
        mut request: AddObjects,
    ) -> Result<Status, StoreError> {
        let request_timestamp = format_taxii(now_us());
        let (_permit, mut client) = self.write_client().await?;
        let w = self.begin(&mut client).await?;
        let target = Target {
            registry: &w.registry,
            clock: &w.clock,
            collection,
            view_id: w.registry.stored_view(collection)?,
        };
        let status = write::add_objects(
            &PgIngest(&w.tx),
            &target,
            api_root,
            &mut request,
            request_timestamp,
        )
        .await?;
        self.commit(w).await?;
        Ok(status)
    }

    async fn list(&self, collection: &str, listing: &Listing) -> Result<Page, StoreError> {
        // The serving view is resolved in the query itself: never a stale registry.
        let client = self.client().await?;
        read::list(&client, collection, listing).await
    }

    async fn list_objects(
        &self,
        collection: &str,
        listing: &Listing,
    ) -> Result<ObjectsPage, StoreError> {
        let client = self.client().await?;
        read::list_objects(&client, collection, listing).await
    }

    async fn page_generation(
        &self,
        collection: &str,
    ) -> Result<Option<PageGeneration>, StoreError> {
        let read = || async {
            let client = self.client().await?;
            read::generation(&client, collection).await
        };
        self.inner.generations.read(collection, read).await
    }

    async fn count(&self, collection: &str, listing: &Listing) -> Result<u64, StoreError> {
        let client = self.client().await?;
        read::count(&client, collection, listing).await
    }

    async fn delete_object(
        &self,
        collection: &str,
        object_id: &str,
        versions: &VersionMatch,
        spec_versions: &[String],
    ) -> Result<u64, StoreError> {
        let (_permit, mut client) = self.write_client().await?;
        let w = self.begin(&mut client).await?;
        let target = Target {
            registry: &w.registry,
            clock: &w.clock,
            collection,
            view_id: w.registry.stored_view(collection)?,
        };
        let n = write::delete_object(
            &PgIngest(&w.tx),
            &target,
            object_id,
            versions,
            spec_versions,
        )
        .await?;
        self.commit(w).await?;
        Ok(n)
    }

    async fn status(
        &self,
        api_root: &str,
        id: &str,
        owner: &str,
    ) -> Result<Option<Status>, StoreError> {
        let client = self.client().await?;
        read::status(&client, api_root, id, owner).await
    }

    async fn maintain(&self) -> Result<(), StoreError> {
        if self.claim_maintenance().await? {
            self.refresh_relative().await?;
            let hours = self.inner.retention_hours.load(Ordering::Relaxed) as i64;
            let (_permit, mut client) = self.write_client().await?;
            let w = self.begin(&mut client).await?;
            views::purge_statuses(&w.tx, now_us() - hours * 3_600_000_000).await?;
            self.commit(w).await?;
        }
        // Building views: rebuild here unless another replica holds the view's lock
        // (this also takes over the rebuild of a replica that died).
        let registry = {
            let client = self.client().await?;
            self.fresh_registry(&client, Duration::ZERO).await?
        };
        for view_id in rebuild::building_views(&registry) {
            self.spawn_rebuild(view_id);
        }
        self.purge_retired().await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let client = self.client().await?;
        let registry = self.fresh_registry(&client, REGISTRY_MAX_AGE).await?;
        let object_versions = object_versions(&client).await?;
        let mut collections = Vec::new();
        let mut rebuilding = 0;
        let sizes = client
            .query(
                "SELECT view_id, size FROM views WHERE state = 'active'",
                &[],
            )
            .await?;
        let size_of = |view_id: i64| {
            sizes
                .iter()
                .find(|r| r.get::<_, i64>(0) == view_id)
                .map(|r| r.get::<_, i64>(1))
                .unwrap_or(0)
        };
        for view in &registry.views {
            match view.state {
                ViewState::Building => rebuilding += 1,
                ViewState::Active => collections.push(CollectionSize {
                    collection: view.collection.clone(),
                    entries: size_of(view.view_id).max(0) as u64,
                }),
            }
        }
        Ok(StoreStats {
            object_versions: object_versions.max(0) as u64,
            collections,
            rebuilding,
        })
    }

    async fn ready(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        self.fresh_registry(&client, Duration::ZERO)
            .await
            .map(|r| r.views.iter().all(|v| v.state == ViewState::Active))
            .unwrap_or(false)
    }

    async fn reachable(&self) -> bool {
        self.inner.probe.reachable().await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.pool.close();
        self.inner.probe.close().await;
        Ok(())
    }
}
