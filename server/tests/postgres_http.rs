//! A PostgreSQL-backed server while its database is unreachable: TAXII requests get
//! 503 TAXII errors with Retry-After, /readyz turns 503 (so the Service routes around
//! the replica) while /healthz stays 200, and both recover without a restart once
//! the database is back. (#[ignore]d: needs `--include-ignored` and `TAXIWAY_TEST_POSTGRES_URL`.)

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::backend::Place;
use common::*;
use tower::ServiceExt;

use taxiway_server::admin::{self, Admin};

async fn status_of(router: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap) {
    let response = router
        .clone()
        .oneshot(
            Request::get(uri)
                .header(header::ACCEPT, TAXII21)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    (response.status(), response.headers().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn database_down_gives_503s_and_unready_then_recovers() {
    let place = Place::new(common::backend::Backend::Postgres).await;
    let Some(db_name) = place.db.as_ref().map(|d| d.name.clone()) else {
        return;
    };
    let app = TestApp::on(place, config("type:indicator")).await;
    let (status, _) = app
        .post(INBOX, vec![indicator(1, 1, "198.51.100.1", 80)])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let admin = admin::router(Admin {
        app: app.state.clone(),
        ready: Arc::new(AtomicBool::new(true)),
    });
    assert_eq!(status_of(&admin, "/readyz").await.0, StatusCode::OK);
    let db = app.db.as_ref().expect("a PostgreSQL app");

    // The database refuses new connections and drops the existing ones.
    db.execute_as_admin(&format!(
        "ALTER DATABASE {db_name} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{db_name}' AND pid != pg_backend_pid()"
    ))
    .await;
    db.wait_disconnected().await;
    let url = objects_url(INBOX);
    let (status, headers) = status_of(&app.router, &url).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(headers[header::CONTENT_TYPE], TAXII21);
    let (status, _) = app
        .post(INBOX, vec![indicator(2, 1, "198.51.100.2", 80)])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        status_of(&admin, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status_of(&admin, "/healthz").await.0, StatusCode::OK);

    // Back: same process, same pool.
    db.execute_as_admin(&format!("ALTER DATABASE {db_name} ALLOW_CONNECTIONS true"))
        .await;
    assert_eq!(status_of(&admin, "/readyz").await.0, StatusCode::OK);
    let (status, _, body) = app.get(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body).len(), 1, "nothing acknowledged was lost");
    let (status, _) = app
        .post(INBOX, vec![indicator(2, 1, "198.51.100.2", 80)])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
