//! The PostgreSQL store handle: connecting and migrating, connections for reads and
//! for writes, the cached view registry, and write transactions holding the clock row.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::{Client, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connect;
use super::inner::{poisoned, Cached, Inner};
use super::probe;
use super::schema;
use super::tx::Tx;
use super::views::{self, QueryCache};
use crate::config::{PostgresSettings, PostgresTls};
use crate::store::clock::Clock;
use crate::store::error::StoreError;
use crate::store::generation_reads::GenerationReads;
use crate::store::micros::Micros;
use crate::store::registry::Registry;

/// How long a write may wait for one of this replica's write permits.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// Write transactions of one replica at a time: a quarter of its pool (at least one),
/// so most connections stay free for reads while writers queue for the clock row.
pub fn write_permits(pool_size: usize) -> usize {
    (pool_size / 4).max(1)
}

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pub(super) inner: Arc<Inner>,
}

/// A write transaction holding the clock row.
pub(super) struct Write<'a> {
    pub(super) tx: Tx<'a>,
    pub(super) clock: Clock,
    pub(super) start: Micros,
    pub(super) registry: Arc<Registry>,
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
                generations: GenerationReads::default(),
            }),
        })
    }

    /// Query-view rebuilds this handle finished (tests: exactly one replica rebuilds).
    pub fn rebuilds_finished(&self) -> u64 {
        self.inner.rebuilds.load(Ordering::Relaxed)
    }

    pub(super) async fn client(&self) -> Result<Client, StoreError> {
        Ok(self.inner.pool.get().await?)
    }

    /// A connection for a write transaction, with one of this replica's write permits.
    /// Writers queue for the clock row; without a bound, a burst of writes would park
    /// every pooled connection on that lock and starve reads (and `/readyz`). The
    /// permit is taken before the connection, so waiting writers hold none.
    pub(super) async fn write_client(&self) -> Result<(OwnedSemaphorePermit, Client), StoreError> {
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

    pub(super) fn cached(&self) -> Result<(Arc<Registry>, i64, Instant), StoreError> {
        let c = self.inner.cache.read().map_err(poisoned)?;
        Ok((c.registry.clone(), c.generation, c.checked))
    }

    pub(super) fn invalidate(&self) {
        if let Ok(mut c) = self.inner.cache.write() {
            c.generation = -1;
        }
    }

    /// The registry at `generation`, reloading it through `client` if the cache is older.
    pub(super) async fn registry_at<C: deadpool_postgres::GenericClient>(
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
    pub(super) async fn fresh_registry(
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
    pub(super) async fn begin<'a>(&self, client: &'a mut Client) -> Result<Write<'a>, StoreError> {
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

    pub(super) async fn commit(&self, w: Write<'_>) -> Result<(), StoreError> {
        let last = w.clock.last();
        if last > w.start {
            w.tx.execute("UPDATE clock SET last = $1", &[&last]).await?;
        }
        w.tx.commit().await?;
        Ok(())
    }
}
