//! Collections without services, replica counts, unreadable objects, deletion.

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::api::Api;
use kube::core::DynamicObject;
use serde_json::json;
use taxiway_operator::crd::{TaxiiService, TaxiiServiceStatus};

use crate::support::{
    apply, condition, delete, eventually, expect_condition, namespace, taxii_collection,
    taxii_service, Ns, WAIT,
};
use crate::Env;

fn minimal() -> serde_json::Value {
    json!({"title": "Minimal", "apiRoots": [{"path": "api", "title": "API"}]})
}

/// A collection naming a service that does not exist waits and says so, is served once
/// the service exists, and waits again when it is deleted.
pub fn orphan_collection(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "orphans";
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        apply(
            client,
            taxii_collection(
                NS,
                "waiting",
                json!({"service": "later", "query": "type:indicator"}),
            ),
        )
        .await?;
        let c = ns
            .collection_status_where("waiting", "ServiceNotFound", |c| {
                let st = c.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Accepted", "False", "ServiceNotFound")
            })
            .await?;
        let st = c.status.clone().unwrap_or_default();
        let message = &condition(&st.conditions, "Accepted")?.message;
        ensure!(
            message.contains("waiting for TaxiiService later"),
            "{message}"
        );
        expect_condition(&st.conditions, "QueryValid", "True", "Valid")?;
        ensure!(st.id == c.metadata.uid, "id {:?}", st.id);

        apply(client, taxii_service(NS, "later", minimal())).await?;
        let c = ns
            .collection_status_where("waiting", "Accepted once the service exists", |c| {
                let st = c.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Accepted", "True", "Accepted")
            })
            .await?;
        ensure!(c.status.and_then(|s| s.url).is_some(), "no URL");

        delete(client, "taxiway.dev/v1alpha1", "TaxiiService", NS, "later").await?;
        ns.collection_status_where("waiting", "ServiceNotFound again", |c| {
            let st = c.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Accepted", "False", "ServiceNotFound")
        })
        .await?;
        Ok(())
    })
}

/// More than one replica on the embedded store is a validation error on status and
/// runs one; zero scales down.
pub fn replicas(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "replicas";
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        let mut spec = minimal();
        spec["replicas"] = json!(3);
        apply(client, taxii_service(NS, "feeds", spec.clone())).await?;
        let s = ns
            .service_status_where("feeds", "UnsupportedReplicas", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Degraded", "True", "UnsupportedReplicas")
            })
            .await?;
        let message = condition(&s.status.unwrap_or_default().conditions, "Degraded")?
            .message
            .clone();
        ensure!(message.contains("got 3"), "{message}");
        let d = ns.api::<Deployment>().get("feeds").await?;
        ensure!(
            d.spec.and_then(|s| s.replicas) == Some(1),
            "the Deployment must run one replica"
        );

        spec["replicas"] = json!(0);
        apply(client, taxii_service(NS, "feeds", spec)).await?;
        ns.service_status_where("feeds", "ScaledToZero", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Ready", "False", "ScaledToZero")?;
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;
        let d = ns.api::<Deployment>().get("feeds").await?;
        ensure!(d.spec.and_then(|s| s.replicas) == Some(0));
        Ok(())
    })
}

/// An object the schema accepts but the operator cannot read (a count beyond u32)
/// is reported on its status, its collections say why they wait, and the watch goes on:
/// a service created afterwards is rendered.
pub fn malformed(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "malformed";
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        let mut spec = minimal();
        // Beyond u32: the schema's `format: uint32` is not enforced by the API server.
        // (Not `replicas`: the scale subresource makes the API server bound it to int32.)
        spec["auth"] = json!({"maxFailuresPerUser": 5_000_000_000u64});
        apply(client, taxii_service(NS, "unreadable", spec)).await?;
        apply(
            client,
            taxii_collection(
                NS,
                "of-unreadable",
                json!({"service": "unreadable", "writable": true}),
            ),
        )
        .await?;
        // The test cannot read it with the Rust types either: read it untyped.
        let resource = kube::core::ApiResource::erase::<TaxiiService>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
        let degraded = eventually("InvalidSpec on the unreadable service", WAIT, || async {
            let object = api.get("unreadable").await?;
            let status: TaxiiServiceStatus =
                serde_json::from_value(object.data.get("status").cloned().unwrap_or_default())?;
            ensure!(
                status.observed_generation == object.metadata.generation,
                "stale status"
            );
            expect_condition(&status.conditions, "Degraded", "True", "InvalidSpec")?;
            Ok(condition(&status.conditions, "Degraded")?.message.clone())
        })
        .await?;
        ensure!(degraded.contains("5000000000"), "{degraded}");
        ns.collection_status_where("of-unreadable", "ServiceInvalid", |c| {
            let st = c.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Accepted", "False", "ServiceInvalid")
        })
        .await?;

        apply(client, taxii_service(NS, "fine", minimal())).await?;
        eventually("the next service to be rendered", WAIT, || async {
            ns.api::<ConfigMap>().get("fine-config").await?;
            Ok(())
        })
        .await?;
        Ok(())
    })
}

/// Deleting a TaxiiService deletes everything it owns (the controller-manager's garbage
/// collector follows the ownerReferences).
pub fn garbage_collection(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let ns = Ns {
            client: env.client.clone(),
            name: "render".into(),
        };
        ns.api::<Deployment>()
            .get("feeds")
            .await
            .context("the render scenario's Deployment")?;
        delete(
            &env.client,
            "taxiway.dev/v1alpha1",
            "TaxiiService",
            "render",
            "feeds",
        )
        .await?;
        eventually("owned objects to be collected", WAIT, || async {
            ensure!(
                ns.api::<Deployment>().get_opt("feeds").await?.is_none(),
                "Deployment"
            );
            ensure!(
                ns.api::<ConfigMap>()
                    .get_opt("feeds-config")
                    .await?
                    .is_none(),
                "ConfigMap"
            );
            ensure!(
                ns.api::<Secret>()
                    .get_opt("feeds-credentials")
                    .await?
                    .is_none(),
                "Secret"
            );
            ensure!(
                ns.api::<Service>().get_opt("feeds").await?.is_none(),
                "Service"
            );
            ensure!(
                ns.api::<PersistentVolumeClaim>()
                    .get_opt("feeds-data")
                    .await?
                    .is_none(),
                "PVC"
            );
            Ok(())
        })
        .await?;
        // The user's own Secrets are not the operator's to delete.
        ensure!(
            ns.api::<Secret>().get_opt("alice").await?.is_some(),
            "a user Secret was deleted"
        );
        Ok(())
    })
}

/// On PostgreSQL: several replicas rolled without downtime, no PVC, a
/// PodDisruptionBudget while there are two or more, the database Secret mounted and
/// never copied into the ConfigMap, and a missing Secret reported.
pub fn postgres_replicas(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "scale-out";
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        let url = "postgres://taxiway:db-pass-123@db.example:5432/taxiway";
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "feeds-db", "namespace": NS},
            "stringData": {"uri": url}
        });
        apply(client, secret).await?;
        let mut spec = minimal();
        spec["replicas"] = json!(3);
        spec["storage"] = json!({
            "type": "postgres",
            "postgres": {"secretName": "feeds-db", "tls": "disable"}
        });
        apply(client, taxii_service(NS, "feeds", spec.clone())).await?;
        ns.service_status_where("feeds", "Degraded=False with 3 replicas", |s| {
            let st = s.status.clone().unwrap_or_default();
            ensure!(
                st.observed_generation == s.metadata.generation,
                "not observed yet"
            );
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;
        let d = ns.api::<Deployment>().get("feeds").await?;
        let d_spec = d.spec.context("deployment spec")?;
        ensure!(d_spec.replicas == Some(3), "{:?}", d_spec.replicas);
        let strategy = d_spec.strategy.context("strategy")?;
        ensure!(strategy.type_.as_deref() == Some("RollingUpdate"));
        let text = ns.config_text("feeds").await?;
        ensure!(text.contains("backend = \"postgres\""), "{text}");
        ensure!(!text.contains("db-pass-123") && !text.contains("postgres://"));
        ensure!(
            ns.api::<PersistentVolumeClaim>()
                .get_opt("feeds-data")
                .await?
                .is_none(),
            "no PVC on PostgreSQL"
        );
        let mut pdb_resource = None;
        for version in ["v1", "v1beta1"] {
            let gvk = kube::core::GroupVersionKind::gvk("policy", version, "PodDisruptionBudget");
            if let Ok((resource, _)) = kube::discovery::pinned_kind(client, &gvk).await {
                pdb_resource = Some(resource);
                break;
            }
        }
        let pdb_resource = pdb_resource.context("the API serves PodDisruptionBudgets")?;
        let pdbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &pdb_resource);
        let pdb = eventually("a PodDisruptionBudget", WAIT, || async {
            pdbs.get_opt("feeds")
                .await?
                .context("no PodDisruptionBudget yet")
        })
        .await?;
        ensure!(
            pdb.data["spec"]["maxUnavailable"] == json!(1),
            "{:?}",
            pdb.data
        );

        spec["replicas"] = json!(1);
        apply(client, taxii_service(NS, "feeds", spec.clone())).await?;
        eventually("the budget removed at one replica", WAIT, || async {
            ensure!(pdbs.get_opt("feeds").await?.is_none(), "still there");
            Ok(())
        })
        .await?;

        delete(client, "v1", "Secret", NS, "feeds-db").await?;
        ns.service_status_where("feeds", "InvalidStorageSecret", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "True", "InvalidStorageSecret")
        })
        .await?;
        Ok(())
    })
}
