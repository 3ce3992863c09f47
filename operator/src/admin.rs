//! The admin listener: `/healthz`, `/readyz` and `/metrics` on a port of its own.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// Where this replica is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Starting: not ready.
    Starting = 0,
    /// Waiting for the leader Lease: ready (a healthy standby).
    Standby = 1,
    /// Leading, watches not synced yet: not ready.
    Syncing = 2,
    /// Leading with every watch cache synced: ready.
    Running = 3,
}

/// The phase, shared between the controllers and the admin listener.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicU8>);

impl Readiness {
    /// Move to `phase`.
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Release);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            1 => Phase::Standby,
            2 => Phase::Syncing,
            3 => Phase::Running,
            _ => Phase::Starting,
        }
    }
}

#[derive(Clone)]
struct Admin {
    readiness: Readiness,
    metrics: Arc<Metrics>,
}

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router(readiness: Readiness, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(Admin { readiness, metrics })
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.readiness.phase() {
        Phase::Running => (StatusCode::OK, "ready\n"),
        Phase::Standby => (StatusCode::OK, "ready (standby: another replica leads)\n"),
        Phase::Syncing => (StatusCode::SERVICE_UNAVAILABLE, "syncing watch caches\n"),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
    }
}

async fn render_metrics(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn status(readiness: &Readiness, path: &str) -> StatusCode {
        let app = router(readiness.clone(), Arc::new(Metrics::new()));
        let request = Request::get(path).body(Body::empty()).expect("request");
        app.oneshot(request).await.expect("response").status()
    }

    #[tokio::test]
    async fn ready_only_when_synced_or_standing_by() {
        let readiness = Readiness::default();
        assert_eq!(status(&readiness, "/healthz").await, StatusCode::OK);
        assert_eq!(
            status(&readiness, "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set(Phase::Standby);
        assert_eq!(status(&readiness, "/readyz").await, StatusCode::OK);
        readiness.set(Phase::Syncing);
        assert_eq!(
            status(&readiness, "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set(Phase::Running);
        assert_eq!(status(&readiness, "/readyz").await, StatusCode::OK);
        assert_eq!(status(&readiness, "/metrics").await, StatusCode::OK);
    }
}
