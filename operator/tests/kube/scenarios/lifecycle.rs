//! Collections without services, replica counts, unreadable objects, deletion.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
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

/// A PodDisruptionBudget of the operator's deleted or edited by hand is restored at
/// once (the operator watches budgets), not at the next periodic reconcile minutes later.
pub fn disruption_budget_restored(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "budgets";
        /// Far below the operator's periodic reconcile (five minutes).
        const PROMPTLY: Duration = Duration::from_secs(10);
        let client = &env.client;
        namespace(client, NS).await?;
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "feeds-db", "namespace": NS},
                "stringData": {"uri": "postgres://taxiway:pw@db.example:5432/taxiway"}
            }),
        )
        .await?;
        let mut spec = minimal();
        spec["replicas"] = json!(2);
        spec["storage"] = json!({
            "type": "postgres",
            "postgres": {"secretName": "feeds-db", "tls": "disable"}
        });
        apply(client, taxii_service(NS, "feeds", spec)).await?;
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
        let first = eventually("a PodDisruptionBudget", WAIT, || async {
            pdbs.get_opt("feeds")
                .await?
                .context("no PodDisruptionBudget yet")
        })
        .await?;
        let first_uid = first.metadata.uid.clone().context("a uid")?;

        // Deleted by hand: back within seconds (a new object).
        pdbs.delete("feeds", &DeleteParams::default()).await?;
        let started = Instant::now();
        eventually("the deleted budget restored", PROMPTLY, || async {
            let pdb = pdbs.get_opt("feeds").await?.context("not back yet")?;
            ensure!(
                pdb.metadata.uid.as_ref() != Some(&first_uid),
                "not deleted yet"
            );
            ensure!(
                pdb.metadata.deletion_timestamp.is_none(),
                "still being deleted"
            );
            ensure!(
                pdb.data["spec"]["maxUnavailable"] == json!(1),
                "{:?}",
                pdb.data
            );
            Ok(())
        })
        .await?;
        eprintln!(
            "kube:   the deleted budget was back after {:.1}s",
            started.elapsed().as_secs_f64()
        );

        // Edited by hand: the operator's value back within seconds.
        pdbs.patch(
            "feeds",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"maxUnavailable": 2}})),
        )
        .await?;
        eventually("the edited budget repaired", PROMPTLY, || async {
            let pdb = pdbs.get_opt("feeds").await?.context("gone")?;
            ensure!(
                pdb.data["spec"]["maxUnavailable"] == json!(1),
                "{:?}",
                pdb.data["spec"]
            );
            Ok(())
        })
        .await?;
        Ok(())
    })
}

/// Embedded to PostgreSQL as docs/scale-out.md ("Migrating on Kubernetes") says: the
/// switch with `replicas: 0` keeps the claim, stops the pods, renders the PostgreSQL
/// configuration and warns how to copy the data; the documented Job manifest, taken
/// from the doc, is accepted by the API server and mounts what the server pods mount.
pub fn embedded_to_postgres(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        // The names the documented procedure uses.
        const NS: &str = "threat-intel";
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "taxii-db", "namespace": NS},
                "stringData": {"uri": "postgres://taxiway:pw@db.example:5432/taxiway"}
            }),
        )
        .await?;
        let mut spec = minimal();
        apply(client, taxii_service(NS, "intel", spec.clone())).await?;
        eventually("the embedded store's claim", WAIT, || async {
            ns.api::<PersistentVolumeClaim>()
                .get_opt("intel-data")
                .await?
                .context("no claim yet")
        })
        .await?;
        let on_embedded = ns
            .service_status_where("intel", "observed, embedded", |_| Ok(()))
            .await?;
        ensure!(
            on_embedded.status.unwrap_or_default().warnings.is_empty(),
            "no warning on the embedded store"
        );

        // Step 2: switch and stop in one edit.
        spec["replicas"] = json!(0);
        spec["storage"] = json!({
            "type": "postgres",
            "postgres": {"secretName": "taxii-db", "tls": "disable"}
        });
        apply(client, taxii_service(NS, "intel", spec)).await?;
        ns.service_status_where("intel", "the EmbeddedStoreNotMigrated warning", |s| {
            let warnings = s.status.clone().unwrap_or_default().warnings;
            ensure!(
                warnings.iter().any(|w| w.contains("intel-data")
                    && w.contains("taxiway-server migrate")
                    && w.contains("docs/scale-out.md")),
                "{warnings:?}"
            );
            Ok(())
        })
        .await?;
        let deployment = eventually("the Deployment at 0 on PostgreSQL", WAIT, || async {
            let d = ns.api::<Deployment>().get("intel").await?;
            let spec = d.spec.clone().context("spec")?;
            ensure!(spec.replicas == Some(0), "replicas {:?}", spec.replicas);
            let volumes = spec
                .template
                .spec
                .clone()
                .context("pod")?
                .volumes
                .unwrap_or_default();
            ensure!(
                volumes.iter().any(|v| v.name == "database"),
                "not on PostgreSQL yet"
            );
            Ok(d)
        })
        .await?;
        ensure!(
            ns.api::<PersistentVolumeClaim>()
                .get_opt("intel-data")
                .await?
                .is_some(),
            "the claim is kept"
        );
        let text = ns.config_text("intel").await?;
        ensure!(text.contains("backend = \"postgres\""), "{text}");

        // Step 3: the Job manifest of the doc, with the Deployment's image.
        let pod = deployment
            .spec
            .and_then(|s| s.template.spec)
            .context("pod template")?;
        let server = pod.containers.first().context("server container")?;
        let image = server.image.clone().context("image")?;
        let doc = std::fs::read_to_string(env.repo.join("docs/scale-out.md"))?;
        let manifest = documented_job(&doc)?.replace("SERVER_IMAGE", &image);
        let job: Job = serde_saphyr::from_str(&manifest).context("the documented Job")?;
        ensure!(job.metadata.namespace.as_deref() == Some(NS));
        let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let accepted = jobs
            .create(&params, &job)
            .await
            .context("the API server accepts the documented Job")?;
        let job_pod = accepted
            .spec
            .and_then(|s| s.template.spec)
            .context("job pod")?;
        let job_container = job_pod.containers.first().context("job container")?;

        // Same identity, so the claim's files are readable.
        let ids = |p: &k8s_openapi::api::core::v1::PodSpec| {
            p.security_context
                .as_ref()
                .map(|c| (c.run_as_user, c.run_as_group, c.fs_group))
        };
        ensure!(
            ids(&job_pod) == ids(&pod),
            "{:?} vs {:?}",
            ids(&job_pod),
            ids(&pod)
        );
        // Every volume names an object that exists, as the server pods name it.
        let job_volumes = job_pod.volumes.clone().unwrap_or_default();
        let pod_volumes = pod.volumes.clone().unwrap_or_default();
        let volume = |vs: &[k8s_openapi::api::core::v1::Volume], name: &str| {
            vs.iter().find(|v| v.name == name).cloned()
        };
        let config_map = volume(&job_volumes, "config")
            .and_then(|v| v.config_map)
            .context("config volume")?
            .name;
        ensure!(
            volume(&pod_volumes, "config")
                .and_then(|v| v.config_map)
                .map(|c| c.name)
                == Some(config_map.clone()),
            "the Job mounts the server pods' ConfigMap"
        );
        ensure!(ns.api::<ConfigMap>().get_opt(&config_map).await?.is_some());
        let claim = volume(&job_volumes, "data")
            .and_then(|v| v.persistent_volume_claim)
            .context("data volume")?
            .claim_name;
        ensure!(claim == "intel-data", "{claim}");
        let secret = volume(&job_volumes, "database")
            .and_then(|v| v.secret)
            .and_then(|s| s.secret_name)
            .context("database volume")?;
        ensure!(
            volume(&pod_volumes, "database")
                .and_then(|v| v.secret)
                .and_then(|s| s.secret_name)
                == Some(secret.clone()),
            "the Job mounts the server pods' database Secret"
        );
        ensure!(ns.api::<Secret>().get_opt(&secret).await?.is_some());
        // Mounted where the server pods mount them; the arguments name those paths.
        let path = |c: &k8s_openapi::api::core::v1::Container, name: &str| {
            c.volume_mounts
                .as_ref()
                .and_then(|m| m.iter().find(|m| m.name == name))
                .map(|m| m.mount_path.clone())
        };
        for name in ["config", "data", "database"] {
            ensure!(
                path(job_container, name) == path(server, name),
                "{name}: {:?} vs {:?}",
                path(job_container, name),
                path(server, name)
            );
        }
        let args = job_container.args.clone().unwrap_or_default();
        let server_args = server.args.clone().unwrap_or_default();
        let data_dir = server_args
            .iter()
            .find_map(|a| a.strip_prefix("--data-dir="))
            .context("--data-dir")?;
        let config_arg = server_args
            .iter()
            .find(|a| a.starts_with("--config-dir="))
            .context("--config-dir")?;
        ensure!(
            args.first().map(String::as_str) == Some("migrate")
                && args.contains(&format!("--from-sqlite={data_dir}"))
                && args.contains(config_arg),
            "{args:?}"
        );
        Ok(())
    })
}

/// The Job manifest of the section "Migrating on Kubernetes" of docs/scale-out.md (its
/// first YAML block), without the list indentation.
fn documented_job(doc: &str) -> Result<String> {
    let section = doc
        .split_once("### Migrating on Kubernetes")
        .context("the section in docs/scale-out.md")?
        .1;
    let block = section
        .split_once("```yaml\n")
        .context("a YAML block")?
        .1
        .split_once("```")
        .context("the end of the YAML block")?
        .0;
    let indent = block
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .unwrap_or(0);
    Ok(block
        .lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n"))
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
