//! Readiness of a PostgreSQL-backed server does not depend on its pool: with every
//! pooled connection busy and the database then vanishing without closing anything
//! (packets dropped, as when its host goes down), `/readyz` turns 503 within a few
//! seconds, and back to 200 once packets flow again. The database sits behind a TCP
//! forwarder of this test that can stop forwarding without closing its sockets (the
//! shared PostgreSQL itself is never stopped). (#[ignore]d: needs `--include-ignored`
//! and `TAXIWAY_TEST_POSTGRES_URL`.)

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use common::backend::TestDb;
use common::*;
use taxiway_server::admin::{self, Admin};
use taxiway_server::auth::Credentials;
use taxiway_server::state::AppState;
use taxiway_server::store::postgres::PostgresStore;
use taxiway_server::store::Store;
use taxiway_server::taxii;

/// Connections in the server's pool.
const POOL: usize = 2;

/// A TCP forwarder that can black-hole its connections: stop moving bytes either way
/// while keeping every socket open, so neither side sees an error or a close.
struct Forwarder {
    address: SocketAddr,
    flowing: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    async fn start(upstream: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (flowing, watching) = watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((downstream, _)) = listener.accept().await {
                let watching = watching.clone();
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (down_read, down_write) = downstream.into_split();
                    let (up_read, up_write) = upstream.into_split();
                    tokio::spawn(pump(down_read, up_write, watching.clone()));
                    pump(up_read, down_write, watching).await;
                });
            }
        });
        Forwarder {
            address,
            flowing,
            task,
        }
    }

    fn black_hole(&self) {
        self.flowing.send_replace(false);
    }

    fn resume(&self) {
        self.flowing.send_replace(true);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copy `from` to `to` while the forwarder is flowing; bytes read just before it stops
/// are held until it flows again.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut flowing: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if flowing.wait_for(|f| *f).await.is_err() {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => Some(read),
            _ = flowing.wait_for(|f| !*f) => None,
        };
        let n = match read {
            None => continue,
            Some(Ok(0)) | Some(Err(_)) => return,
            Some(Ok(n)) => n,
        };
        if flowing.wait_for(|f| *f).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// How long `condition` took to hold, polled until `bound` (then the test fails).
async fn eventually<F, Fut>(bound: Duration, what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn readyz(admin: &axum::Router) -> StatusCode {
    admin
        .clone()
        .oneshot(
            Request::get("/readyz")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible")
        .status()
}

/// The host and port of a `postgres://` URL.
fn host_and_port(url: &str) -> (String, u16) {
    let config: tokio_postgres::Config = url.parse().expect("test URL");
    let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() else {
        panic!("the test PostgreSQL URL names no TCP host");
    };
    (
        host.clone(),
        config.get_ports().first().copied().unwrap_or(5432),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn readiness_follows_a_vanished_database_while_the_pool_is_saturated() {
    let db = TestDb::create().await;
    let (host, port) = host_and_port(&db.url);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve the test PostgreSQL host")
        .next()
        .expect("an address");
    let forwarder = Forwarder::start(upstream).await;
    let through = db
        .url
        .replacen(&format!("{host}:{port}"), &forwarder.address.to_string(), 1);
    assert_ne!(through, db.url, "the server connects through the forwarder");

    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect_url(&through, POOL)
            .await
            .expect("open the PostgreSQL store"),
    );
    let config = config("type:indicator");
    store
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    wait_built(&*store).await;
    let state = AppState::new(config, store.clone(), Credentials::none());
    let router = taxii::router(state.clone());
    let admin = admin::router(Admin {
        app: state,
        ready: Arc::new(AtomicBool::new(true)),
    });
    assert_eq!(readyz(&admin).await, StatusCode::OK);

    // Saturate the pool: lock every table a read goes through (on a connection that
    // does not pass the forwarder), then send as many reads as the pool has connections
    // — each of another collection: concurrent pages of one collection share a single
    // read of its generation (`store::generation_reads`), so they would hold one.
    let mut locker = db.client().await;
    let lock = locker.transaction().await.expect("begin");
    lock.batch_execute(
        "LOCK TABLE clock, views, entries, object_versions IN ACCESS EXCLUSIVE MODE",
    )
    .await
    .expect("lock the tables");
    let collections = [INBOX, INDICATORS];
    assert_eq!(collections.len(), POOL);
    let reads: Vec<_> = collections
        .into_iter()
        .map(|collection| {
            let router = router.clone();
            tokio::spawn(async move {
                router
                    .oneshot(get(&objects_url(collection)))
                    .await
                    .expect("infallible")
                    .status()
            })
        })
        .collect();
    let watcher = db.client().await;
    let name = db.name.clone();
    eventually(
        Duration::from_secs(10),
        "every pooled connection waits",
        || {
            let watcher = &watcher;
            let name = &name;
            async move {
                let waiting: i64 = watcher
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                     AND application_name = 'taxiway-server' AND wait_event_type = 'Lock'",
                        &[name],
                    )
                    .await
                    .expect("pg_stat_activity")
                    .get(0);
                waiting >= POOL as i64
            }
        },
    )
    .await;
    // A saturated pool on a live database is not unready.
    assert_eq!(readyz(&admin).await, StatusCode::OK);

    // The database vanishes: no packet passes, no socket closes.
    forwarder.black_hole();
    let took = eventually(
        Duration::from_secs(8),
        "/readyz turns 503 after the database vanished",
        || async { readyz(&admin).await == StatusCode::SERVICE_UNAVAILABLE },
    )
    .await;
    eprintln!("/readyz turned 503 {took:?} after the database vanished");

    // Packets flow again: ready again, and the waiting reads finish once unlocked.
    forwarder.resume();
    eventually(
        Duration::from_secs(10),
        "/readyz turns 200 after the database came back",
        || async { readyz(&admin).await == StatusCode::OK },
    )
    .await;
    lock.rollback().await.expect("unlock");
    for read in reads {
        assert_eq!(read.await.expect("read task"), StatusCode::OK);
    }
    assert_eq!(readyz(&admin).await, StatusCode::OK);
}
