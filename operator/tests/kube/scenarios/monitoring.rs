//! `spec.monitoring`: a PodMonitor and a PrometheusRule, reported while the cluster
//! lacks prometheus-operator's CRDs, rendered once they exist, removed when switched off.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use kube::api::Api;
use kube::core::{DynamicObject, GroupVersionKind};
use serde_json::json;

use crate::support::{
    apply, apply_file, eventually, expect_condition, namespace, taxii_service, Ns, WAIT,
};
use crate::Env;

const NS: &str = "monitoring";
/// The operator looks for a missing API again within 30 seconds.
const DISCOVERY_WAIT: Duration = Duration::from_secs(90);

fn spec(pod_monitor: bool, prometheus_rule: bool) -> serde_json::Value {
    json!({
        "title": "Watched",
        "apiRoots": [{"path": "api", "title": "API"}],
        "monitoring": {
            "podMonitor": pod_monitor,
            "prometheusRule": prometheus_rule,
            "interval": "30s",
            "labels": {"release": "prometheus"}
        }
    })
}

async fn served(env: &Env, kind: &str) -> Result<Api<DynamicObject>> {
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", kind);
    let resource = eventually(&format!("{kind} served"), WAIT, || async {
        Ok(kube::discovery::pinned_kind(&env.client, &gvk).await?.0)
    })
    .await?;
    Ok(Api::namespaced_with(env.client.clone(), NS, &resource))
}

/// Without the CRDs the status says why; with them the PodMonitor and the
/// PrometheusRule render as documented; switched off, both are deleted.
pub fn pod_monitor_and_rules(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        apply(client, taxii_service(NS, "watched", spec(true, true))).await?;
        let s = ns
            .service_status_where("watched", "MonitoringAPIUnavailable", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(
                    &st.conditions,
                    "Degraded",
                    "True",
                    "MonitoringAPIUnavailable",
                )
            })
            .await?;
        let problems = s.status.unwrap_or_default().problems;
        ensure!(
            problems
                .iter()
                .any(|p| p.contains("PodMonitor and PrometheusRule")),
            "{problems:?}"
        );

        apply_file(
            client,
            &env.repo
                .join("operator/tests/kube/fixtures/prometheus-operator-crds.yaml"),
        )
        .await?;
        let monitors = served(env, "PodMonitor").await?;
        let rules = served(env, "PrometheusRule").await?;
        let monitor = eventually("the PodMonitor", DISCOVERY_WAIT, || async {
            monitors
                .get_opt("watched")
                .await?
                .context("no PodMonitor yet")
        })
        .await?;
        ensure!(
            monitor.data["spec"]
                == json!({
                    "selector": {"matchLabels": {
                        "app.kubernetes.io/instance": "watched",
                        "app.kubernetes.io/name": "taxiway-server"
                    }},
                    "podMetricsEndpoints": [
                        {"port": "admin", "path": "/metrics", "scheme": "http", "interval": "30s"}
                    ]
                }),
            "{}",
            monitor.data["spec"]
        );
        let labels = monitor.metadata.labels.clone().unwrap_or_default();
        ensure!(labels.get("release").map(String::as_str) == Some("prometheus"));
        let rule = eventually("the PrometheusRule", WAIT, || async {
            rules
                .get_opt("watched")
                .await?
                .context("no PrometheusRule yet")
        })
        .await?;
        let alerts: Vec<&str> = rule.data["spec"]["groups"][0]["rules"]
            .as_array()
            .context("rules")?
            .iter()
            .filter_map(|r| r["alert"].as_str())
            .collect();
        for alert in [
            "TaxiwayServerDown",
            "TaxiwayServerPodsNotReady",
            "TaxiwayServerErrors",
            "TaxiwayAuthFailuresSpike",
            "TaxiwayReloadFailing",
        ] {
            ensure!(alerts.contains(&alert), "{alert} missing from {alerts:?}");
        }
        ns.service_status_where("watched", "Degraded=False", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;

        apply(client, taxii_service(NS, "watched", spec(false, false))).await?;
        eventually("both deleted", WAIT, || async {
            ensure!(
                monitors.get_opt("watched").await?.is_none(),
                "PodMonitor still there"
            );
            ensure!(
                rules.get_opt("watched").await?.is_none(),
                "PrometheusRule still there"
            );
            Ok(())
        })
        .await?;
        Ok(())
    })
}
