//! The admin listener: probes and metrics, on a port of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// Admin state: the app plus the readiness flag.
#[derive(Clone)]
pub struct Admin {
    /// The service.
    pub app: AppState,
    /// Set once the configuration is applied and listeners are up.
    pub ready: Arc<AtomicBool>,
}

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
