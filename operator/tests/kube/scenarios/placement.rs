//! Pod placement and identity reaching the pods, and the `scale` subresource.

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use taxiway_operator::crd::TaxiiService;

use crate::support::{apply, eventually, expect_condition, namespace, taxii_service, Ns, WAIT};
use crate::Env;

const NS: &str = "placement";

fn ns(env: &Env) -> Ns {
    Ns {
        client: env.client.clone(),
        name: NS.into(),
    }
}

/// A service on PostgreSQL with every placement and identity setting: they reach the
/// Deployment and the pods the controller-manager creates from it; an invalid label
/// is reported and left out; a changed toleration rolls the pod template.
pub fn settings_reach_the_pods(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = ns(env);
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "feeds-db", "namespace": NS},
                "stringData": {"uri": "postgres://taxiway:pw@db.example:5432/taxiway"}
            }),
        )
        .await?;
        // Admission refuses pods naming an account or a priority class that does not exist.
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "taxii-server", "namespace": NS}
            }),
        )
        .await?;
        apply(
            client,
            json!({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "taxiway-test-intel"}, "value": 1000
            }),
        )
        .await?;
        let mut spec = json!({
            "title": "Placed",
            "apiRoots": [{"path": "api", "title": "API"}],
            "replicas": 1,
            "storage": {"type": "postgres", "postgres": {"secretName": "feeds-db", "tls": "disable"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "intel", "effect": "NoSchedule"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": {
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "feeds"}}
                }
            }]}},
            "topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "feeds"}}
            }],
            "podAnnotations": {"sidecar.istio.io/inject": "true"},
            "podLabels": {"team": "soc", "app.kubernetes.io/instance": "hijack"},
            "priorityClassName": "taxiway-test-intel",
            "imagePullSecrets": [{"name": "registry-creds"}],
            "serviceAccountName": "taxii-server"
        });
        apply(client, taxii_service(NS, "feeds", spec.clone())).await?;
        let s = ns
            .service_status_where("feeds", "InvalidPodSettings", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Degraded", "True", "InvalidPodSettings")
            })
            .await?;
        let problems = s.status.unwrap_or_default().problems;
        ensure!(
            problems.len() == 1 && problems[0].contains("app.kubernetes.io/instance"),
            "{problems:?}"
        );
        let pods: Api<Pod> = ns.api();
        let selector = "app.kubernetes.io/instance=feeds,app.kubernetes.io/name=taxiway-server";
        let pod = eventually("a server pod", WAIT, || async {
            pods.list(&ListParams::default().labels(selector))
                .await?
                .items
                .into_iter()
                .next()
                .context("no pod yet")
        })
        .await?;
        let pod_spec = serde_json::to_value(pod.spec.context("pod spec")?)?;
        ensure!(
            pod_spec["nodeSelector"] == json!({"kubernetes.io/os": "linux"}),
            "{}",
            pod_spec["nodeSelector"]
        );
        let tolerations = pod_spec["tolerations"].as_array().context("tolerations")?;
        ensure!(
            tolerations
                .iter()
                .any(|t| t["key"] == "dedicated" && t["value"] == "intel"),
            "{tolerations:?}"
        );
        ensure!(pod_spec["affinity"]["podAntiAffinity"].is_object());
        ensure!(pod_spec["topologySpreadConstraints"][0]["maxSkew"] == 1);
        ensure!(pod_spec["priorityClassName"] == "taxiway-test-intel");
        ensure!(pod_spec["serviceAccountName"] == "taxii-server");
        ensure!(pod_spec["imagePullSecrets"] == json!([{"name": "registry-creds"}]));
        ensure!(pod_spec["automountServiceAccountToken"] == false);
        let labels = pod.metadata.labels.unwrap_or_default();
        ensure!(labels.get("team").map(String::as_str) == Some("soc"));
        ensure!(labels.get("app.kubernetes.io/instance").map(String::as_str) == Some("feeds"));
        let annotations = pod.metadata.annotations.unwrap_or_default();
        ensure!(
            annotations
                .get("sidecar.istio.io/inject")
                .map(String::as_str)
                == Some("true"),
            "{annotations:?}"
        );

        // A new toleration rolls the pods: a new ReplicaSet's pods carry it.
        spec["tolerations"] = json!([{"key": "dedicated", "operator": "Exists"}]);
        spec["podLabels"] = json!({"team": "soc"});
        apply(client, taxii_service(NS, "feeds", spec)).await?;
        ns.service_status_where("feeds", "Degraded=False", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;
        eventually("a pod with the new toleration", WAIT, || async {
            let found = pods
                .list(&ListParams::default().labels(selector))
                .await?
                .items
                .into_iter()
                .any(|p| {
                    p.spec
                        .and_then(|s| s.tolerations)
                        .unwrap_or_default()
                        .iter()
                        .any(|t| t.operator.as_deref() == Some("Exists"))
                });
            ensure!(found, "no pod of the new template yet");
            Ok(())
        })
        .await?;
        Ok(())
    })
}

/// `PATCH …/scale` (what `kubectl scale` and an HPA do) changes `spec.replicas`; the
/// Deployment follows on PostgreSQL, and `GET …/scale` shows the pods' selector. On the
/// embedded store a scale above one is refused as `spec.replicas` is.
pub fn scale_subresource(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = ns(env);
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "scaled-db", "namespace": NS},
                "stringData": {"uri": "postgres://taxiway:pw@db.example:5432/taxiway"}
            }),
        )
        .await?;
        // No `replicas` in the applied spec: the scale subresource owns it (as with an HPA).
        apply(
            client,
            taxii_service(
                NS,
                "scaled",
                json!({
                    "title": "Scaled",
                    "apiRoots": [{"path": "api", "title": "API"}],
                    "storage": {"type": "postgres", "postgres": {"secretName": "scaled-db", "tls": "disable"}}
                }),
            ),
        )
        .await?;
        let api: Api<TaxiiService> = ns.api();
        eventually("a Deployment of one replica", WAIT, || async {
            ensure!(replicas_of(&ns, "scaled").await? == Some(1));
            Ok(())
        })
        .await?;
        let scale = json!({"spec": {"replicas": 3}});
        api.patch_scale("scaled", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .context("PATCH scale")?;
        ensure!(
            api.get("scaled").await?.spec.replicas == 3,
            "spec.replicas follows the scale"
        );
        eventually("the Deployment at three replicas", WAIT, || async {
            ensure!(replicas_of(&ns, "scaled").await? == Some(3));
            Ok(())
        })
        .await?;
        let scale = eventually("the scale's selector", WAIT, || async {
            let scale = api.get_scale("scaled").await?;
            let status = scale.status.clone().context("no scale status")?;
            ensure!(
                status.selector.as_deref()
                    == Some(
                        "app.kubernetes.io/instance=scaled,app.kubernetes.io/name=taxiway-server"
                    ),
                "{:?}",
                status.selector
            );
            Ok(scale)
        })
        .await?;
        ensure!(scale.spec.and_then(|s| s.replicas) == Some(3));

        // The embedded store serves one writer: a scale to 2 is reported, not run.
        apply(
            client,
            taxii_service(
                NS,
                "embedded",
                json!({"title": "Embedded", "apiRoots": [{"path": "api", "title": "API"}]}),
            ),
        )
        .await?;
        eventually("the embedded Deployment", WAIT, || async {
            ensure!(replicas_of(&ns, "embedded").await? == Some(1));
            Ok(())
        })
        .await?;
        let scale = json!({"spec": {"replicas": 2}});
        api.patch_scale("embedded", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .context("PATCH scale")?;
        ns.service_status_where("embedded", "UnsupportedReplicas", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "True", "UnsupportedReplicas")
        })
        .await?;
        ensure!(replicas_of(&ns, "embedded").await? == Some(1));
        Ok(())
    })
}

async fn replicas_of(ns: &Ns, name: &str) -> Result<Option<i32>> {
    let d = ns.api::<Deployment>().get(name).await?;
    Ok(d.spec.and_then(|s| s.replicas))
}
