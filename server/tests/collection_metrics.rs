//! Per-collection request and object counters in `/metrics`: labelled by configured
//! API roots and collections only, so their cardinality is bounded by the
//! configuration.

mod common;

use axum::http::StatusCode;
use common::*;

/// The value of the series `name{labels}` in `metrics`, if it is exported.
fn series(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let head = format!("{name}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&head))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn requests_and_objects_are_counted_per_configured_collection() {
    let app = TestApp::new().await;
    let objects = vec![
        indicator(1, 1, "10.0.0.1", 50),
        indicator(2, 1, "10.0.0.2", 50),
    ];
    let (s, status) = app.post(INBOX, objects).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{status}");
    assert_eq!(status["success_count"], 2, "{status}");
    for _ in 0..2 {
        let (s, _, v) = app.get(&objects_url(INBOX)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(ids(&v).len(), 2, "{v}");
    }
    let (s, _, _) = app
        .get(&format!("/feeds/collections/{INBOX}/objects/not-an-id/"))
        .await;
    assert!(s.is_client_error(), "{s}");
    // Unknown collections and API roots have no series of their own.
    let unknown = "9d6b7c1e-0000-4000-8000-000000000000";
    let (s, _, _) = app.get(&objects_url(unknown)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = app
        .get(&format!("/nowhere/collections/{INBOX}/objects/"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = app.get("/feeds/collections/").await;
    assert_eq!(s, StatusCode::OK);

    let metrics = app.state.metrics.render(None);
    let requests = "taxiway_collection_requests_total";
    let inbox = format!(r#"api_root="feeds",collection="{INBOX}""#);
    assert_eq!(
        series(
            &metrics,
            requests,
            &format!(r#"{inbox},endpoint="objects",status_class="2xx""#)
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        series(
            &metrics,
            requests,
            &format!(r#"{inbox},endpoint="object",status_class="4xx""#)
        ),
        Some(1.0),
        "{metrics}"
    );
    let objects = "taxiway_collection_objects_total";
    assert_eq!(
        series(
            &metrics,
            objects,
            &format!(r#"{inbox},direction="accepted""#)
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, objects, &format!(r#"{inbox},direction="served""#)),
        Some(4.0),
        "{metrics}"
    );
    assert!(!metrics.contains(unknown), "{metrics}");
    assert!(!metrics.contains("nowhere"), "{metrics}");
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("taxiway_collection_"))
    {
        assert!(line.contains("collection=\""), "{line}");
        assert!(!line.contains("user"), "{line}");
    }
}
