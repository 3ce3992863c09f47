//! The chart's Grafana dashboard (charts/taxiway/files/dashboards/taxiway.json) parses,
//! and every Taxiway server metric it queries is in `/metrics` of a running server.
//! (The operator's metrics it queries are checked by operator/tests/dashboard.rs.)

mod common;
#[path = "common/promql.rs"]
mod promql;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::{get, indicator, malware, TestApp, INBOX, TAXII21};
use taxiway_server::admin::{self, Admin};

/// Metrics the dashboard queries that other exporters provide.
const EXTERNAL: &[&str] = &[
    // Prometheus, for every scrape target.
    "up",
    // kube-state-metrics.
    "kube_pod_status_ready",
];

/// The prefix of the operator's metrics, which the server does not export.
const OPERATOR_PREFIX: &str = "taxiway_operator_";

/// `/metrics` of `app`'s admin listener.
async fn scrape(app: &TestApp) -> String {
    let admin = admin::router(Admin {
        app: app.state.clone(),
        ready: Arc::new(AtomicBool::new(true)),
    });
    let response = admin.oneshot(get("/metrics")).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(body.to_vec()).expect("UTF-8 exposition")
}

#[test]
fn the_dashboard_has_panels_with_queries_and_a_datasource_variable() {
    let dashboard = promql::dashboard(env!("CARGO_MANIFEST_DIR"));
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    assert!(dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a prometheus `datasource` variable"
    );
    // Every panel and target reads from that variable, not from one Prometheus.
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
        }
    }
    // Panel ids are unique (Grafana links and edits panels by id).
    let ids: Vec<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "duplicate panel ids");
    assert!(promql::queries(&dashboard).len() >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_metric_the_dashboard_queries_is_in_metrics() {
    let dashboard = promql::dashboard(env!("CARGO_MANIFEST_DIR"));
    let app = TestApp::new().await;
    // A few requests, so that the labelled families have samples too.
    let (status, _, _) = app.get("/taxii2/").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(INBOX, vec![malware(1), indicator(1, 1, "10.0.0.1", 80)])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = app
        .send(
            Request::get(common::objects_url(INBOX))
                .header(header::ACCEPT, TAXII21)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app.get("/feeds/collections/no-such-collection/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = app
        .send(
            Request::get(format!(
                "{}?match[x_unsupported]=1",
                common::objects_url(INBOX)
            ))
            .header(header::ACCEPT, TAXII21)
            .body(Body::empty())
            .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // prometheus-client leaves a labelled family out until it has a sample. Events a
    // short in-process test cannot cheaply provoke (lockouts after repeated argon2
    // failures, limits enforced by the listener, reloads from watched directories) are
    // recorded through the same calls the server makes for them.
    let metrics = &app.state.metrics;
    metrics.auth_failure("unknown_user");
    metrics.lockout("user");
    metrics.limited("per_client");
    metrics.reload(true);
    metrics.credentials_reload(true);
    metrics.tls_reload(false);

    let text = scrape(&app).await;
    let exposed = promql::exposed(&text);
    assert!(
        exposed.contains("taxiway_http_requests_total"),
        "the exposition has the request counter:\n{text}"
    );

    let mut checked = 0;
    let mut missing = Vec::new();
    for (title, expr) in promql::queries(&dashboard) {
        let names = promql::metrics_in(&expr);
        assert!(!names.is_empty(), "{title}: no metric found in {expr}");
        for name in names {
            if EXTERNAL.contains(&name.as_str()) || name.starts_with(OPERATOR_PREFIX) {
                continue;
            }
            assert!(
                name.starts_with("taxiway_"),
                "{title}: {name} is neither Taxiway's nor a listed external metric"
            );
            checked += 1;
            if !exposed.contains(&name) {
                missing.push(format!("{title}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the server does not export:\n{}\n\n/metrics:\n{text}",
        missing.join("\n")
    );
    assert!(checked >= 20, "{checked}");
}
