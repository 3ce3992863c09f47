//! The embedded store: SQLite (bundled) in WAL mode on the data directory.
//!
//! One writer connection serialises writes (SQLite allows one writer at a time anyway),
//! which also makes `date_added` stamps follow commit order. Reads use a pool of
//! read-only connections and never wait for writers.

mod entries;
mod ingest;
mod read;
mod rebuilder;
mod schema;
mod views;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection};

use super::{
    AddObjects, Clock, CollectionSize, Listing, Page, Status, Store, StoreError, StoreSetup,
    StoreStats, VersionMatch,
};
use crate::stix::timestamp::{format_taxii, now_us};
use crate::store::ingest::{self as write, run_ready, Target};
use crate::store::rebuild::{self, Filled};
use crate::store::registry::{Registry, ViewState};
use ingest::SqliteIngest;
use rebuilder::SqliteBatch;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "taxiway.db";

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    clock: Clock,
    registry: RwLock<Arc<Registry>>,
    running: Mutex<HashSet<i64>>,
    retention_hours: AtomicU64,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Database("a store lock was poisoned by an earlier panic".into())
}

impl SqliteStore {
    /// Open (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path, readers: u32) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Database(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        let mut writer = Connection::open(&path)?;
        schema::configure(&writer, true)?;
        schema::migrate(&mut writer)?;
        let last: Option<i64> = writer.query_row(
            // One index probe per view and one for the newest version: no table scans at start-up.
            "SELECT max(m) FROM ( \
               SELECT (SELECT max(date_added) FROM entries e WHERE e.view_id = v.view_id) AS m FROM views v \
               UNION ALL SELECT added_us FROM (SELECT added_us FROM object_versions ORDER BY vid DESC LIMIT 1))",
            [],
            |r| r.get(0),
        )?;
        let manager = SqliteConnectionManager::file(&path).with_init(|c| {
            schema::configure(c, false).map_err(|e| match e {
                StoreError::Database(m) | StoreError::Unavailable(m) => {
                    rusqlite::Error::InvalidParameterName(m)
                }
                other => rusqlite::Error::InvalidParameterName(other.to_string()),
            })
        });
        let readers = r2d2::Pool::builder()
            .max_size(readers.max(1))
            .min_idle(Some(1))
            .build(manager)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                clock: Clock::starting_after(last.unwrap_or(0)),
                registry: RwLock::new(Arc::new(Registry::default())),
                running: Mutex::new(HashSet::new()),
                retention_hours: AtomicU64::new(48),
            }),
        })
    }

    fn registry(&self) -> Result<Arc<Registry>, StoreError> {
        Ok(self.inner.registry.read().map_err(poisoned)?.clone())
    }

    /// Run blocking store work off the async runtime.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }

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
                let tx = writer.transaction()?;
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
        request: AddObjects,
    ) -> Result<Status, StoreError> {
        let api_root = api_root.to_string();
        let collection = collection.to_string();
        self.blocking(move |inner| {
            let request_timestamp = format_taxii(now_us());
            let mut writer = inner.writer.lock().map_err(poisoned)?;
            let registry = inner.registry.read().map_err(poisoned)?.clone();
            let view_id = registry.stored_view(&collection)?;
            let tx = writer.transaction()?;
            let target = Target {
                registry: &registry,
                clock: &inner.clock,
                collection: &collection,
                view_id,
            };
            let status = run_ready(write::add_objects(
                &SqliteIngest(&tx),
                &target,
                &api_root,
                request,
                request_timestamp,
            ))??;
            tx.commit()?;
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
            let tx = writer.transaction()?;
            let target = Target {
                registry: &registry,
                clock: &inner.clock,
                collection: &collection,
                view_id,
            };
            let n = run_ready(write::delete_object(
                &SqliteIngest(&tx),
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
            let tx = writer.transaction()?;
            views::purge_statuses(&tx, now_us() - hours * 3_600_000_000)?;
            tx.commit()?;
            schema::optimize(&writer)?;
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
            let object_versions: i64 =
                conn.query_row("SELECT count(*) FROM object_versions", [], |r| r.get(0))?;
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

    async fn ready(&self) -> bool {
        self.registry()
            .map(|r| r.views.iter().all(|v| v.state == ViewState::Active))
            .unwrap_or(false)
    }

    /// Checkpoint the write-ahead log into `taxiway.db` and truncate it, so the data
    /// directory is complete in one file (the last connection's close removes the WAL).
    async fn close(&self) -> Result<(), StoreError> {
        self.blocking(|inner| {
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

/// Write a consistent copy of the store in `data_dir` to `target` while it may be
/// serving (SQLite `VACUUM INTO`: a transactionally consistent, compacted snapshot).
pub fn backup(data_dir: &Path, target: &Path) -> Result<(), StoreError> {
    if target.exists() {
        return Err(StoreError::Database(format!(
            "{} already exists; refusing to overwrite a backup",
            target.display()
        )));
    }
    let source = data_dir.join(DB_FILE);
    if !source.exists() {
        return Err(StoreError::Database(format!(
            "no store at {}",
            source.display()
        )));
    }
    let conn = Connection::open_with_flags(&source, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = target
        .to_str()
        .ok_or_else(|| StoreError::Database("the backup path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", params![target])?;
    Ok(())
}
