//! Store backends for parametrised tests: SQLite always, PostgreSQL when
//! `TAXIWAY_TEST_POSTGRES_URL` names a server (a superuser URL of a throwaway
//! cluster, e.g. from `tests/pg/provision.sh`). Every PostgreSQL test gets a fresh
//! database, dropped afterwards.

use std::sync::Arc;

use taxiway_server::store::postgres::PostgresStore;
use taxiway_server::store::sqlite::SqliteStore;
use taxiway_server::store::Store;

/// The environment variable naming the test PostgreSQL server.
pub const POSTGRES_URL_ENV: &str = "TAXIWAY_TEST_POSTGRES_URL";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh PostgreSQL database, dropped with the value.
pub struct TestDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user@host:port[/db]
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL server");
    tokio::spawn(connection);
    client
}

impl TestDb {
    /// A new database on the test server. PostgreSQL tests are `#[ignore]`d; asked to
    /// run (`--include-ignored`) without a server they fail, never pass unrun.
    pub async fn create() -> TestDb {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_ENV) else {
            panic!(
                "a PostgreSQL test was asked to run but {POSTGRES_URL_ENV} is not set: \
                 start one with `eval \"$(bash tests/pg/provision.sh)\"` and export it"
            );
        };
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        admin(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        TestDb {
            admin_url,
            name,
            url,
        }
    }

    /// Run SQL in this database (as the superuser).
    pub async fn execute(&self, sql: &str) {
        admin(&self.url)
            .await
            .batch_execute(sql)
            .await
            .expect("test SQL");
    }

    /// Run SQL as the superuser connected to the server's admin database (for
    /// statements about this database, e.g. refusing connections to it).
    pub async fn execute_as_admin(&self, sql: &str) {
        admin(&self.admin_url)
            .await
            .batch_execute(sql)
            .await
            .expect("admin SQL");
    }

    /// Wait until no session is connected to this database (after terminating them:
    /// `pg_terminate_backend` only signals).
    pub async fn wait_disconnected(&self) {
        let client = admin(&self.admin_url).await;
        let what = format!("the sessions of {} to end", self.name);
        super::wait::eventually(&what, async || {
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&self.name],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            n == 0
        })
        .await;
    }

    /// A superuser connection to this database (for holding locks in a test).
    pub async fn client(&self) -> tokio_postgres::Client {
        admin(&self.url).await
    }

    /// Wait until some session of this database waits for a lock in a statement
    /// containing `sql`.
    pub async fn wait_lock_waiter(&self, sql: &str) {
        let client = admin(&self.admin_url).await;
        let pattern = format!("%{sql}%");
        let what = format!("a session of {} to wait for a lock in {sql}", self.name);
        super::wait::eventually(&what, async || {
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                     AND wait_event_type = 'Lock' AND query LIKE $2",
                    &[&self.name, &pattern],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            n > 0
        })
        .await;
    }

    /// Query one bigint.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        admin(&self.url)
            .await
            .query_one(sql, &[])
            .await
            .expect("test SQL")
            .get(0)
    }

    /// Open a store (a "replica") on this database.
    pub async fn open(&self) -> Arc<PostgresStore> {
        Arc::new(
            PostgresStore::connect_url(&self.url, 4)
                .await
                .expect("open the PostgreSQL store"),
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Where a test's store lives; can be opened again (a restart) or twice (replicas).
pub struct Place {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub db: Option<TestDb>,
}

impl Place {
    /// A fresh place (for PostgreSQL, a new database; see [`TestDb::create`]).
    pub async fn new(backend: Backend) -> Place {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDb::create().await),
        };
        Place { backend, dir, db }
    }

    /// Open the store here (without applying a configuration).
    pub async fn open(&self) -> Arc<dyn Store> {
        match &self.db {
            None => Arc::new(SqliteStore::open(self.dir.path(), 2).expect("open")),
            Some(db) => db.open().await,
        }
    }
}

/// Run each test body on every backend. The PostgreSQL ones are `#[ignore]`d: they run
/// with `cargo test -- --include-ignored` and a server in `TAXIWAY_TEST_POSTGRES_URL`
/// (as `tests/run-all.sh` does), and fail without one.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::backend::Place::new(
                        $crate::common::backend::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
                async fn $name() {
                    super::$name($crate::common::backend::Place::new(
                        $crate::common::backend::Backend::Postgres).await).await;
                }
            )*
        }
    };
}
