//! The optional APIs' objects are watched once their CRDs are served: an HTTPRoute,
//! PodMonitor or PrometheusRule deleted or edited by hand comes back within seconds,
//! not at the next periodic reconcile (five minutes).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use serde_json::json;

use crate::support::{apply, apply_file, eventually, namespace, taxii_service, WAIT};
use crate::Env;

const NS: &str = "restored";
const NAME: &str = "restored";
/// Far below the operator's periodic reconcile (five minutes).
const PROMPTLY: Duration = Duration::from_secs(10);
/// The operator looks for a kind it does not watch yet every 20 seconds.
const WATCH_STARTED: Duration = Duration::from_secs(60);

/// What the operator logs when it starts watching an optional API's kind.
const WATCHING: &str = "watching the owned objects of an optional API";

fn spec() -> serde_json::Value {
    json!({
        "title": "Restored",
        "apiRoots": [{"path": "api", "title": "API"}],
        "trustedProxies": ["10.0.0.0/8"],
        "gateway": {
            "parentRefs": [{"name": "public", "namespace": "gateways"}],
            "hostnames": ["restored.example.com"],
            "path": "/intel"
        },
        "monitoring": {"podMonitor": true, "prometheusRule": true}
    })
}

/// The kind as the API serves it, in this scenario's namespace.
async fn served(env: &Env, group: &str, kind: &str) -> Result<Api<DynamicObject>> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    let resource = eventually(&format!("{kind} served"), WAIT, || async {
        Ok(kube::discovery::pinned_kind(&env.client, &gvk).await?.0)
    })
    .await?;
    Ok(Api::namespaced_with(env.client.clone(), NS, &resource))
}

/// Whether the running operator's log says it watches `kind` (escape codes aside).
async fn operator_watches(env: &Env, kind: &str) -> Result<()> {
    let guard = env.operator.lock().await;
    let op = guard.as_ref().context("no running operator")?;
    let log = std::fs::read_to_string(&op.log)?;
    ensure!(
        log.lines()
            .any(|line| line.contains(WATCHING) && line.contains(kind)),
        "the operator does not watch {kind}s yet"
    );
    Ok(())
}

/// Delete the object by hand; the operator makes it again (a new uid) within seconds.
async fn deleted_comes_back(api: &Api<DynamicObject>, kind: &str) -> Result<()> {
    let first = eventually(&format!("the {kind}"), WAIT, || async {
        api.get_opt(NAME).await?.context("not there yet")
    })
    .await?;
    let first_uid = first.metadata.uid.clone().context("a uid")?;
    api.delete(NAME, &DeleteParams::default()).await?;
    let started = Instant::now();
    let back = eventually(
        &format!("the deleted {kind} restored"),
        PROMPTLY,
        || async {
            let object = api.get_opt(NAME).await?.context("not back yet")?;
            ensure!(
                object.metadata.uid.as_ref() != Some(&first_uid),
                "not deleted yet"
            );
            ensure!(
                object.metadata.deletion_timestamp.is_none(),
                "still being deleted"
            );
            Ok(object)
        },
    )
    .await?;
    ensure!(
        back.data["spec"] == first.data["spec"],
        "the restored {kind} differs: {} vs {}",
        back.data["spec"],
        first.data["spec"]
    );
    let owners = back.metadata.owner_references.clone().unwrap_or_default();
    ensure!(
        owners.len() == 1 && owners[0].kind == "TaxiiService" && owners[0].name == NAME,
        "{owners:?}"
    );
    eprintln!(
        "kube:   the deleted {kind} was back after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// With the Gateway API and prometheus-operator CRDs served, a TaxiiService's
/// HTTPRoute, PodMonitor and PrometheusRule each come back within seconds when
/// deleted by hand, and a hand edit of the route is undone as promptly.
pub fn optional_objects_restored(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        // Applied by the gateway and monitoring scenarios already; again here so that
        // this scenario also runs alone (applying is idempotent).
        for fixture in [
            "gateway-api-httproute-crd.yaml",
            "prometheus-operator-crds.yaml",
        ] {
            apply_file(
                client,
                &env.repo.join("operator/tests/kube/fixtures").join(fixture),
            )
            .await?;
        }
        let routes = served(env, "gateway.networking.k8s.io", "HTTPRoute").await?;
        let monitors = served(env, "monitoring.coreos.com", "PodMonitor").await?;
        let rules = served(env, "monitoring.coreos.com", "PrometheusRule").await?;
        for kind in ["HTTPRoute", "PodMonitor", "PrometheusRule"] {
            eventually(
                &format!("the operator watching {kind}s"),
                WATCH_STARTED,
                || operator_watches(env, kind),
            )
            .await?;
        }

        namespace(client, NS).await?;
        apply(client, taxii_service(NS, NAME, spec())).await?;
        deleted_comes_back(&monitors, "PodMonitor").await?;
        deleted_comes_back(&routes, "HTTPRoute").await?;
        deleted_comes_back(&rules, "PrometheusRule").await?;

        // Edited by hand: the operator's hostnames back within seconds.
        routes
            .patch(
                NAME,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"hostnames": ["elsewhere.example.com"]}})),
            )
            .await?;
        eventually("the edited HTTPRoute repaired", PROMPTLY, || async {
            let route = routes.get_opt(NAME).await?.context("gone")?;
            ensure!(
                route.data["spec"]["hostnames"] == json!(["restored.example.com"]),
                "{}",
                route.data["spec"]["hostnames"]
            );
            Ok(())
        })
        .await?;
        Ok(())
    })
}
