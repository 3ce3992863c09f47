//! `spec.monitoring`: a prometheus-operator `PodMonitor` scraping the server pods'
//! admin port, and a `PrometheusRule` with the alerts a TAXII service needs.
//!
//! The alerts query only metrics the server exports (`taxiway_*`, see
//! server/src/metrics.rs; a test keeps them in step), Prometheus' own `up`, and
//! kube-state-metrics' Deployment replicas for readiness.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicObject;
use serde_json::{json, Value};

use super::workload::ADMIN_PORT_NAME;
use crate::crd::MonitoringSpec;
use crate::names;

/// The prometheus-operator API group.
pub const MONITORING_GROUP: &str = "monitoring.coreos.com";
/// The version rendered.
pub const MONITORING_VERSION: &str = "v1";

fn with_labels(mut meta: ObjectMeta, labels: &BTreeMap<String, String>) -> ObjectMeta {
    let mut all = labels.clone();
    all.extend(meta.labels.take().unwrap_or_default());
    meta.labels = Some(all);
    meta
}

fn object(kind: &str, meta: ObjectMeta, spec: Value) -> Result<DynamicObject, serde_json::Error> {
    serde_json::from_value(json!({
        "apiVersion": format!("{MONITORING_GROUP}/{MONITORING_VERSION}"),
        "kind": kind,
        "metadata": meta,
        "spec": spec,
    }))
}

/// The `PodMonitor`: the server pods' `admin` port, `/metrics`. Prometheus names the
/// job `<namespace>/<name>`.
pub fn pod_monitor(
    meta: ObjectMeta,
    service_name: &str,
    spec: &MonitoringSpec,
) -> Result<DynamicObject, serde_json::Error> {
    let mut endpoint = json!({"port": ADMIN_PORT_NAME, "path": "/metrics", "scheme": "http"});
    if let Some(interval) = &spec.interval {
        endpoint["interval"] = json!(interval);
    }
    object(
        "PodMonitor",
        with_labels(meta, &spec.labels),
        json!({
            "selector": {"matchLabels": names::selector_labels(service_name)},
            "podMetricsEndpoints": [endpoint],
        }),
    )
}

/// One alert: name, expression, how long it must hold, severity, summary.
struct Alert {
    name: &'static str,
    expr: String,
    for_: &'static str,
    severity: &'static str,
    summary: &'static str,
}

/// The alerts for the service `name` in `namespace`, whose pods Prometheus scrapes as
/// job `<namespace>/<name>` (the PodMonitor's).
fn alerts(namespace: &str, name: &str) -> Vec<Alert> {
    let job = format!(r#"job="{namespace}/{name}""#);
    vec![
        Alert {
            name: "TaxiwayServerDown",
            expr: format!("absent(up{{{job}}} == 1)"),
            for_: "5m",
            severity: "critical",
            summary: "No server pod of the TaxiiService is up and scraped.",
        },
        Alert {
            name: "TaxiwayServerPodsNotReady",
            expr: format!(
                r#"kube_deployment_status_replicas_available{{namespace="{namespace}",deployment="{name}"}} < kube_deployment_spec_replicas{{namespace="{namespace}",deployment="{name}"}}"#
            ),
            for_: "10m",
            severity: "warning",
            summary: "Server pods of the TaxiiService are not ready (kube-state-metrics).",
        },
        Alert {
            name: "TaxiwayServerErrors",
            expr: format!(
                r#"sum(rate(taxiway_http_requests_total{{{job},status=~"5.."}}[5m])) / sum(rate(taxiway_http_requests_total{{{job}}}[5m])) > 0.05"#
            ),
            for_: "10m",
            severity: "warning",
            summary: "More than 5% of TAXII requests fail with a server error (store or database trouble).",
        },
        Alert {
            name: "TaxiwayAuthFailuresSpike",
            expr: format!("sum(rate(taxiway_auth_failures_total{{{job}}}[5m])) * 60 > 30"),
            for_: "5m",
            severity: "warning",
            summary: "More than 30 refused sign-ins a minute: a misconfigured client or password guessing.",
        },
        Alert {
            name: "TaxiwayReloadFailing",
            expr: format!(
                r#"sum(increase({{__name__=~"taxiway_(config|credentials|tls)_reloads_total",{job},result="error"}}[15m])) > 0"#
            ),
            for_: "0m",
            severity: "warning",
            summary: "A configuration, credentials or certificate reload failed: the server keeps the previous one.",
        },
        Alert {
            name: "TaxiwayCertificateExpiringSoon",
            expr: format!(
                "(taxiway_tls_certificate_expiry_timestamp_seconds{{{job}}} > 0) - time() < 14 * 24 * 3600"
            ),
            for_: "1h",
            severity: "warning",
            summary: "The TLS certificate being served expires in less than 14 days and has not been renewed (or the renewal was not picked up).",
        },
        Alert {
            name: "TaxiwayRequestsLimited",
            expr: format!("sum(rate(taxiway_limited_requests_total{{{job}}}[5m])) * 60 > 60"),
            for_: "15m",
            severity: "info",
            summary: "More than 60 requests a minute are answered by a limit (429/408/503/431).",
        },
    ]
}

/// The `PrometheusRule`: one group of alerts for this service.
pub fn prometheus_rule(
    meta: ObjectMeta,
    namespace: &str,
    service_name: &str,
    spec: &MonitoringSpec,
) -> Result<DynamicObject, serde_json::Error> {
    let rules: Vec<Value> = alerts(namespace, service_name)
        .into_iter()
        .map(|a| {
            json!({
                "alert": a.name,
                "expr": a.expr,
                "for": a.for_,
                "labels": {"severity": a.severity},
                "annotations": {
                    "summary": a.summary,
                    "description": format!("TaxiiService {namespace}/{service_name}: {}", a.summary),
                },
            })
        })
        .collect();
    object(
        "PrometheusRule",
        with_labels(meta, &spec.labels),
        json!({"groups": [{"name": format!("taxiway.{namespace}.{service_name}"), "rules": rules}]}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `taxiway_*` metric an alert queries is one the server registers (counters
    /// are exported with `_total`).
    #[test]
    fn the_alerts_query_metrics_the_server_exports() {
        let server = include_str!("../../../../../server/src/metrics.rs");
        let mut seen = 0;
        for alert in alerts("intel", "feeds") {
            let mut rest = alert.expr.as_str();
            while let Some(at) = rest.find("taxiway_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                let base = name
                    .trim_start_matches("taxiway_")
                    .trim_end_matches("_total");
                let names: Vec<String> = if base.starts_with('(') || name.ends_with('_') {
                    vec![]
                } else {
                    vec![base.to_string()]
                };
                for base in names {
                    assert!(
                        server.contains(&format!("\"{base}\"")),
                        "{} queries {name}, which server/src/metrics.rs does not register",
                        alert.name
                    );
                    seen += 1;
                }
            }
            if alert.name == "TaxiwayReloadFailing" {
                for base in ["config_reloads", "credentials_reloads", "tls_reloads"] {
                    assert!(server.contains(&format!("\"{base}\"")), "{base}");
                }
            }
        }
        assert!(seen >= 4, "{seen}");
    }
}
