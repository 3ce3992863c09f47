//! The SQLite store as a [`Store`]: requests, background rebuilds and maintenance.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::params;

use super::entries::ViewKind;
use super::handle::SqliteStore;
use super::ingest::SqliteIngest;
use super::inner::poisoned;
use super::read;
use super::rebuilder::SqliteBatch;
use super::statistics;
use super::views;
use crate::stix::timestamp::{format_taxii, now_us};
use crate::store::add_objects::{AddObjects, Status};
use crate::store::backend::Store;
use crate::store::error::StoreError;
use crate::store::ingest::{self as write, run_ready, Target};
use crate::store::listing::{Listing, ObjectsPage, Page, PageGeneration, VersionMatch};
use crate::store::rebuild::{self, Filled};
use crate::store::registry::ViewState;
use crate::store::setup::StoreSetup;
use crate::store::stats::{CollectionSize, StoreStats};

impl SqliteStore {
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
            let started = std::time::Instant::now();
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
                Ok(false) => tracing::info!(view_id, "rebuild superseded"),
                Err(e) => {
                    tracing::error!(view_id, error = %e, "query collection rebuild failed; will retry on next maintenance")
                }
            }
        });
    }

    /// Fill a building view batch by batch, then switch it live. `Ok(false)` if the
    /// view was superseded (query changed again) before it finished.
    async fn rebuild(&self, view_id: i64) -> Result<bool, StoreError> {
        loop {
            let filled = self
                .blocking(move |inner| {
                    run_ready(rebuild::rebuild_batch(
                        &mut SqliteBatch::new(inner),
                        view_id,
                    ))?
                })
                .await?;
            match filled {
                Filled::More => continue,
                Filled::Superseded => return Ok(false),
                Filled::Switched => {
                    self.purge_retired().await?;
                    return Ok(true);
                }
            }
        }
    }

    async fn purge_retired(&self) -> Result<(), StoreError> {
        rebuild::purge_retired(&mut self.clone()).await
    }

    /// Re-evaluate live query views that use relative time.
    async fn refresh_relative(&self) -> Result<(), StoreError> {
        let registry = self.registry()?;
        for (view_id, query) in rebuild::relative_time_views(&registry) {
            let mut after = 0;
            loop {
                let query = query.clone();
                let next = self
                    .blocking(move |inner| {
                        run_ready(rebuild::reevaluate_batch(
                            &mut SqliteBatch::new(inner),
                            view_id,
                            &query,
                            after,
                        ))?
                    })
                    .await?;
                match next {
                    Some(vid) => after = vid,
                    None => break,
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn apply_config(&self, setup: &StoreSetup) -> Result<(), StoreError> {
        let setup = setup.clone();
        let building = self
            .blocking(move |inner| {
                let mut writer = inner.writer.lock().map_err(poisoned)?;
                let tx = inner.write_transaction(&mut writer)?;
                let (registry, building) = views::apply_config(&tx, &setup)?;
                tx.commit()?;
                // Swapped while still holding the writer lock: no ingest sees a view
                // set that differs from what the database says.
                *inner.registry.write().map_err(poisoned)? = Arc::new(registry);
                inner
                    .retention_hours
                    .store(setup.status_retention_hours, Ordering::Relaxed);
                Ok(building)
            })
            .await?;
        for view_id in building {
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
        let api_root = api_root.to_string();
        let collection = collection.to_string();
        self.blocking(move |inner| {
            let request_timestamp = format_taxii(now_us());
            let mut writer = inner.writer.lock().map_err(poisoned)?;
            let registry = inner.registry.read().map_err(poisoned)?.clone();
            let view_id = registry.stored_view(&collection)?;
            let tx = inner.write_transaction(&mut writer)?;
            let target = Target {
                registry: &registry,
                clock: &inner.clock,
                collection: &collection,
                view_id,
            };
            let status = run_ready(write::add_objects(
                &SqliteIngest::new(&tx, &registry),
                &target,
                &api_root,
                &mut request,
                request_timestamp,
            ))??;
            tx.commit()?;
            // The parsed objects are freed after the writer's lock is released.
            drop(writer);
            drop(request);
            Ok(status)
        })
        .await
    }

    async fn list(&self, collection: &str, listing: &Listing) -> Result<Page, StoreError> {
        let Some(view_id) = self.registry()?.active(collection).map(|v| v.view_id) else {
            // A new query collection whose first build has not finished yet.
            return Ok(Page::default());
        };
        let listing = listing.clone();
        self.blocking(move |inner| read::list(&*inner.readers.get()?, view_id, &listing))
            .await
    }

    async fn list_objects(
        &self,
        collection: &str,
        listing: &Listing,
    ) -> Result<ObjectsPage, StoreError> {
        let Some((view_id, kind)) = self.registry()?.active(collection).map(|v| {
            let kind = match v.query {
                Some(_) => ViewKind::Query,
                None => ViewKind::Stored,
            };
            (v.view_id, kind)
        }) else {
            return Ok(ObjectsPage::default());
        };
        let listing = listing.clone();
        self.blocking(move |inner| {
            read::list_objects(&*inner.readers.get()?, view_id, kind, &listing)
        })
        .await
    }

    async fn page_generation(
        &self,
        collection: &str,
    ) -> Result<Option<PageGeneration>, StoreError> {
        let read = || async {
            let Some(view_id) = self.registry()?.active(collection).map(|v| v.view_id) else {
                return Ok(None);
            };
            self.blocking(move |inner| read::generation(&*inner.readers.get()?, view_id))
                .await
        };
        self.inner.generations.read(collection, read).await
    }

    async fn count(&self, collection: &str, listing: &Listing) -> Result<u64, StoreError> {
        let Some(view_id) = self.registry()?.active(collection).map(|v| v.view_id) else {
            return Ok(0);
        };
        let listing = listing.clone();
        self.blocking(move |inner| read::count(&*inner.readers.get()?, view_id, &listing))
            .await
    }

    async fn delete_object(
        &self,
        collection: &str,
        object_id: &str,
        versions: &VersionMatch,
        spec_versions: &[String],
    ) -> Result<u64, StoreError> {
        let collection = collection.to_string();
        let object_id = object_id.to_string();
        let versions = versions.clone();
        let spec_versions = spec_versions.to_vec();
        self.blocking(move |inner| {
            let mut writer = inner.writer.lock().map_err(poisoned)?;
            let registry = inner.registry.read().map_err(poisoned)?.clone();
            let view_id = registry.stored_view(&collection)?;
            let tx = inner.write_transaction(&mut writer)?;
            let target = Target {
                registry: &registry,
                clock: &inner.clock,
                collection: &collection,
                view_id,
            };
            let n = run_ready(write::delete_object(
                &SqliteIngest::new(&tx, &registry),
                &target,
                &object_id,
                &versions,
                &spec_versions,
            ))??;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn status(
        &self,
        api_root: &str,
        id: &str,
        owner: &str,
    ) -> Result<Option<Status>, StoreError> {
        let api_root = api_root.to_string();
        let id = id.to_string();
        let owner = owner.to_string();
        self.blocking(move |inner| read::status(&*inner.readers.get()?, &api_root, &id, &owner))
            .await
    }

    async fn maintain(&self) -> Result<(), StoreError> {
        self.refresh_relative().await?;
        self.blocking(|inner| {
            let hours = inner.retention_hours.load(Ordering::Relaxed) as i64;
            let mut writer = inner.writer.lock().map_err(poisoned)?;
            let tx = inner.write_transaction(&mut writer)?;
            views::purge_statuses(&tx, now_us() - hours * 3_600_000_000)?;
            tx.commit()?;
            statistics::refresh(&writer)?;
            Ok(())
        })
        .await?;
        // Resume rebuilds that failed or were interrupted.
        let registry = self.registry()?;
        for view_id in rebuild::building_views(&registry) {
            self.spawn_rebuild(view_id);
        }
        self.purge_retired().await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let registry = self.registry()?;
        self.blocking(move |inner| {
            let conn = inner.readers.get()?;
            // Kept by the writing transactions (schema steps 6, 7): one row, not a count
            // of the table.
            let object_versions: i64 = conn.query_row(
                "SELECT n FROM counts WHERE name = 'object_versions'",
                [],
                |r| r.get(0),
            )?;
            let mut collections = Vec::new();
            let mut rebuilding = 0;
            let mut size = conn.prepare_cached("SELECT size FROM views WHERE view_id = ?1")?;
            for view in &registry.views {
                match view.state {
                    ViewState::Building => rebuilding += 1,
                    ViewState::Active => {
                        let entries: i64 = size.query_row(params![view.view_id], |r| r.get(0))?;
                        collections.push(CollectionSize {
                            collection: view.collection.clone(),
                            entries: entries.max(0) as u64,
                        });
                    }
                }
            }
            Ok(StoreStats {
                object_versions: object_versions.max(0) as u64,
                collections,
                rebuilding,
            })
        })
        .await
    }

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

    async fn ready(&self) -> bool {
        self.registry()
            .map(|r| r.views.iter().all(|v| v.state == ViewState::Active))
            .unwrap_or(false)
    }

    /// Checkpoint the write-ahead log into `taxiway.db` and truncate it, so the data
    /// directory is complete in one file (the last connection's close removes the WAL).
    async fn close(&self) -> Result<(), StoreError> {
        let checkpointer = self.checkpointer.clone();
        self.blocking(move |inner| {
            checkpointer.stop();
            let writer = inner.writer.lock().map_err(poisoned)?;
            let (busy, _, _): (i64, i64, i64) =
                writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            if busy != 0 {
                return Err(StoreError::Unavailable(
                    "a reader kept the write-ahead log from being checkpointed".into(),
                ));
            }
            Ok(())
        })
        .await
    }
}
