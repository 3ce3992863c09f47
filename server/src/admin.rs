//! The admin listener: probes, metrics and the feeds' status, on a port of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use taxiway_model::feed_status::{FeedReport, FeedsReport, FEEDS_PATH};

use crate::config::ServiceConfig;
use crate::state::AppState;
use crate::store::{feed_run, Store, StoreError};

/// Admin state: the app plus the readiness flag.
#[derive(Clone)]
pub struct Admin {
    /// The service.
    pub app: AppState,
    /// Set once the configuration is applied and listeners are up.
    pub ready: Arc<AtomicBool>,
}

/// `/healthz`, `/readyz`, `/metrics`, `/feeds`.
pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(FEEDS_PATH, get(feeds))
        .with_state(admin)
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    if !admin.ready.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    } else if !admin.app.store.reachable().await {
        // PostgreSQL unreachable: take this replica out of the Service until it is back.
        (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    let stats = admin.app.store.stats().await.ok();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.app.metrics.render(stats),
    )
}

/// `GET /feeds`: every feed of the configuration serving now, in order, with the
/// record of its runs from the store (the same on every replica). JSON
/// (`taxiway_model::feed_status::FeedsReport`); 503 while the store cannot be read.
async fn feeds(State(admin): State<Admin>) -> Response {
    let config = admin.app.config.load_full();
    match feeds_report(&*admin.app.store, &config).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            tracing::warn!(target: "taxiway::feeds", error = %e, "cannot read the feeds' runs");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

/// Every feed `config` names, in its order, with the record of its runs from `store`.
async fn feeds_report(
    store: &dyn Store,
    config: &ServiceConfig,
) -> Result<FeedsReport, StoreError> {
    let mut feeds = Vec::with_capacity(config.config.feeds.len());
    for feed in &config.config.feeds {
        feeds.push(FeedReport {
            name: feed.name.clone(),
            into: feed.into.clone(),
            format: feed.format.as_str().to_string(),
            interval_secs: feed.interval_secs,
            run: feed_run::load(store, &feed.name).await?,
        });
    }
    Ok(FeedsReport { feeds })
}
