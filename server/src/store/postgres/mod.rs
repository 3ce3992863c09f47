//! The PostgreSQL store: the same semantics as the embedded store, shared by any
//! number of server replicas.
//!
//! * Every write transaction first locks the single `clock` row (`FOR UPDATE`) and
//!   takes its `date_added` stamps from it (`max(now, last + 1µs)`), so writes from
//!   all replicas are serialised and commit in stamp order: a poller resuming from
//!   `X-TAXII-Date-Added-Last` on any replica never misses a later commit.
//! * The view registry (which views exist, their queries, which is active) lives in
//!   the `views` table. `clock.registry_gen` changes with it; a write transaction
//!   reads it under the clock lock and reloads the registry when it moved, so ingest
//!   always fills the views the database knows about, whatever this replica's config.
//!   Reads resolve the serving view inside their own statement, so a view built or
//!   switched by another replica is served at once (a `next` cursor minted on one
//!   replica is never cut short on another).
//! * A query change is rebuilt by the one replica holding the view's session advisory
//!   lock; the lock goes with the rebuilder's connection if it dies, and another
//!   replica resumes from the view's progress at its next maintenance.
//! * Relative-time maintenance and status purging run on one replica per interval
//!   (a conditional `UPDATE` of the `maintenance` row).

mod connect;
mod copy;
mod entries;
mod ingest;
mod probe;
mod read;
mod rebuilder;
mod schema;
mod views;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::{Client, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use self::copy::{copy_from_sqlite, CopyReport};
pub use self::schema::known_version as schema_version;
use self::views::QueryCache;
use super::{
    AddObjects, Clock, CollectionSize, Listing, Micros, Page, Status, Store, StoreError,
    StoreSetup, StoreStats, VersionMatch,
};
use crate::config::{PostgresSettings, PostgresTls};
use crate::stix::timestamp::{format_taxii, now_us};
use crate::store::ingest::{self as write, Target};
use crate::store::rebuild::{self, Filled};
use crate::store::registry::{Registry, ViewState};
use ingest::PgIngest;
use rebuilder::{PgRebuild, PgReevaluation};

/// A transaction on a pooled connection.
pub(crate) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// How stale the registry used for metrics may be.
pub const REGISTRY_MAX_AGE: Duration = Duration::from_secs(1);

/// How long a write may wait for one of this replica's write permits.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// Write transactions of one replica at a time: a quarter of its pool (at least one),
/// so most connections stay free for reads while writers queue for the clock row.
pub fn write_permits(pool_size: usize) -> usize {
    (pool_size / 4).max(1)
}

/// Rows of a retired view are kept this long, for replicas still reading it.
const RETIRED_GRACE_US: Micros = 30_000_000;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Cached {
    registry: Arc<Registry>,
    /// `clock.registry_gen` it was loaded at; -1 = must reload.
    generation: i64,
    checked: Instant,
}

struct Inner {
    pool: Pool,
    /// Readiness, on a connection of its own (see [`probe`]).
    probe: probe::Probe,
    cache: RwLock<Cached>,
    queries: Mutex<QueryCache>,
    running: Mutex<HashSet<i64>>,
    /// Write transactions in progress on this replica (see [`write_permits`]).
    writes: Arc<Semaphore>,
    retention_hours: AtomicU64,
    refresh_secs: AtomicU64,
    rebuilds: AtomicU64,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Database("a store lock was poisoned by an earlier panic".into())
}

/// A write transaction holding the clock row.
struct Write<'a> {
    tx: Tx<'a>,
    clock: Clock,
    start: Micros,
    registry: Arc<Registry>,
}

impl PostgresStore {
    /// Connect as `settings` say (reading the Secret or environment now) and migrate.
    pub async fn connect(settings: &PostgresSettings) -> Result<PostgresStore, StoreError> {
        let config = connect::pg_config(settings)?;
        let probe = probe::Probe::new(config.clone(), settings)?;
        let pool = connect::pool(config, settings)?;
        Self::open(pool, probe).await
    }

    /// Connect to `url` without TLS (tests, tools); migrates.
    pub async fn connect_url(url: &str, pool_size: usize) -> Result<PostgresStore, StoreError> {
        let settings = PostgresSettings {
            secret_dir: None,
            url_env: None,
            pool_size,
            tls: PostgresTls::Disable,
            ca_file: None,
            connect_timeout_secs: 5,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Database("not a valid postgres:// URL".into()))?;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("taxiway-server");
        connect::detect_dead_peers(&mut config);
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let probe = probe::Probe::new(config.clone(), &settings)?;
        let pool = connect::pool(config, &settings)?;
        Self::open(pool, probe).await
    }

    async fn open(pool: Pool, probe: probe::Probe) -> Result<PostgresStore, StoreError> {
        let mut client = pool.get().await?;
        schema::migrate(&mut client).await?;
        drop(client);
        let writes = Arc::new(Semaphore::new(write_permits(pool.status().max_size)));
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                probe,
                cache: RwLock::new(Cached {
                    registry: Arc::new(Registry::default()),
                    generation: -1,
                    checked: Instant::now(),
                }),
                queries: Mutex::new(QueryCache::new()),
                running: Mutex::new(HashSet::new()),
                writes,
                retention_hours: AtomicU64::new(48),
                refresh_secs: AtomicU64::new(60),
                rebuilds: AtomicU64::new(0),
            }),
        })
    }

    /// Query-view rebuilds this handle finished (tests: exactly one replica rebuilds).
    pub fn rebuilds_finished(&self) -> u64 {
        self.inner.rebuilds.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<Client, StoreError> {
        Ok(self.inner.pool.get().await?)
    }

    /// A connection for a write transaction, with one of this replica's write permits.
    /// Writers queue for the clock row; without a bound, a burst of writes would park
    /// every pooled connection on that lock and starve reads (and `/readyz`). The
    /// permit is taken before the connection, so waiting writers hold none.
    async fn write_client(&self) -> Result<(OwnedSemaphorePermit, Client), StoreError> {
        let permit = tokio::time::timeout(
            WRITE_QUEUE_TIMEOUT,
            self.inner.writes.clone().acquire_owned(),
        )
        .await
        .map_err(|_| {
            StoreError::Unavailable("too many writes waiting for the database; retry".into())
        })?
        .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        Ok((permit, self.client().await?))
    }

    fn cached(&self) -> Result<(Arc<Registry>, i64, Instant), StoreError> {
        let c = self.inner.cache.read().map_err(poisoned)?;
        Ok((c.registry.clone(), c.generation, c.checked))
    }

    fn invalidate(&self) {
        if let Ok(mut c) = self.inner.cache.write() {
            c.generation = -1;
        }
    }

    /// The registry at `generation`, reloading it through `client` if the cache is older.
    async fn registry_at<C: deadpool_postgres::GenericClient>(
        &self,
        client: &C,
        generation: i64,
    ) -> Result<Arc<Registry>, StoreError> {
        let (registry, cached, _) = self.cached()?;
        if cached == generation {
            if let Ok(mut c) = self.inner.cache.write() {
                c.checked = Instant::now();
            }
            return Ok(registry);
        }
        let mut queries = std::mem::take(&mut *self.inner.queries.lock().map_err(poisoned)?);
        let loaded = views::load_registry(client, &mut queries).await;
        *self.inner.queries.lock().map_err(poisoned)? = queries;
        let registry = Arc::new(loaded?);
        let mut c = self.inner.cache.write().map_err(poisoned)?;
        c.registry = registry.clone();
        c.generation = generation;
        c.checked = Instant::now();
        Ok(registry)
    }

    /// A registry no older than `max_age`.
    async fn fresh_registry(
        &self,
        client: &Client,
        max_age: Duration,
    ) -> Result<Arc<Registry>, StoreError> {
        let (registry, generation, checked) = self.cached()?;
        if generation >= 0 && checked.elapsed() < max_age {
            return Ok(registry);
        }
        let current: i64 = client
            .query_one("SELECT registry_gen FROM clock", &[])
            .await?
            .get(0);
        self.registry_at(client, current).await
    }

    /// Begin a write: lock the clock row (serialising writers across replicas).
    async fn begin<'a>(&self, client: &'a mut Client) -> Result<Write<'a>, StoreError> {
        let tx = client.transaction().await?;
        let row = tx
            .query_one("SELECT last, registry_gen FROM clock FOR UPDATE", &[])
            .await?;
        let (last, generation): (i64, i64) = (row.get(0), row.get(1));
        let registry = self.registry_at(&tx, generation).await?;
        Ok(Write {
            tx,
            clock: Clock::starting_after(last),
            start: last,
            registry,
        })
    }

    async fn commit(&self, w: Write<'_>) -> Result<(), StoreError> {
        let last = w.clock.last();
        if last > w.start {
            w.tx.execute("UPDATE clock SET last = $1", &[&last]).await?;
        }
        w.tx.commit().await?;
        Ok(())
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
            self.purge_retired().await?;
        }
        Ok(finished)
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
        request: AddObjects,
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
            request,
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
