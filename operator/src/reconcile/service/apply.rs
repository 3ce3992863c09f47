//! Apply: every desired object, written only where it differs, with an Event per write.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::Api;
use kube::core::DynamicObject;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::build::{Desired, Optional};
use crate::crd::TaxiiService;
use crate::names;
use crate::reconcile::apply::{apply, apply_as, delete_owned, Applied};
use crate::reconcile::report::event;
use crate::reconcile::{Context, Error};

/// Apply every desired object, ConfigMap and Secret first so new pods find them.
/// Returns the live Deployment.
pub(super) async fn apply_all(
    ctx: &Context,
    service: &TaxiiService,
    desired: &Desired,
) -> Result<Deployment, Error> {
    let client = &ctx.client;
    let namespace = service
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let owner_uid = service.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let owner_uid = owner_uid.as_str();
    let mut changes: Vec<(&'static str, String, Applied)> = vec![];
    if let Some(cm) = &desired.config_map {
        let api = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
        changes.push((
            "ConfigMap",
            cm.name_any(),
            apply(&api, cm, owner_uid).await?.0,
        ));
    }
    let api = Api::<Secret>::namespaced(client.clone(), &namespace);
    let secret = &desired.credentials;
    changes.push((
        "Secret",
        secret.name_any(),
        apply(&api, secret, owner_uid).await?.0,
    ));
    if let Some(secret) = &desired.feeds_secret {
        changes.push((
            "Secret",
            secret.name_any(),
            apply(&api, secret, owner_uid).await?.0,
        ));
    }
    // A claim no longer wanted (the service moved to PostgreSQL) is kept: it may hold
    // the data to migrate. It goes with the TaxiiService.
    if let Some(pvc) = &desired.data_claim {
        let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace);
        changes.push((
            "PersistentVolumeClaim",
            pvc.name_any(),
            apply(&api, pvc, owner_uid).await?.0,
        ));
    }
    let api = Api::<Service>::namespaced(client.clone(), &namespace);
    let svc = &desired.service;
    changes.push((
        "Service",
        svc.name_any(),
        apply(&api, svc, owner_uid).await?.0,
    ));
    // Before the Deployment: new pods start behind their NetworkPolicy.
    let api = Api::<NetworkPolicy>::namespaced(client.clone(), &namespace);
    match &desired.network_policy {
        Optional::Wanted(policy) => changes.push((
            "NetworkPolicy",
            policy.name_any(),
            apply(&api, policy, owner_uid).await?.0,
        )),
        Optional::Unwanted => {
            let name = names::workload(&service.name_any());
            if delete_owned(&api, &name, owner_uid).await? {
                changes.push(("NetworkPolicy", name, Applied::Deleted));
            }
        }
        Optional::Unchanged => {}
    }
    let api = Api::<Deployment>::namespaced(client.clone(), &namespace);
    let (applied, deployment) = apply(&api, &desired.deployment, owner_uid).await?;
    changes.push(("Deployment", deployment.name_any(), applied));
    let api = Api::<Ingress>::namespaced(client.clone(), &namespace);
    match &desired.ingress {
        Some(ingress) => changes.push((
            "Ingress",
            ingress.name_any(),
            apply(&api, ingress, owner_uid).await?.0,
        )),
        None => {
            let name = names::workload(&service.name_any());
            if delete_owned(&api, &name, owner_uid).await? {
                changes.push(("Ingress", name, Applied::Deleted));
            }
        }
    }
    let workload = names::workload(&service.name_any());
    let optional = [
        ("HTTPRoute", &desired.http_route),
        ("PodMonitor", &desired.pod_monitor),
        ("PrometheusRule", &desired.prometheus_rule),
    ];
    for (kind, object) in optional {
        if matches!(object, Optional::Unchanged) {
            continue;
        }
        // Not served: nothing of this kind can exist (a wanted one is reported).
        let resource = match kind {
            "HTTPRoute" => ctx.http_routes().await,
            "PodMonitor" => ctx.pod_monitors().await,
            _ => ctx.prometheus_rules().await,
        };
        let Some(resource) = resource else { continue };
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource);
        match object {
            Optional::Wanted(object) => {
                let applied = apply_as(&api, object, owner_uid, &resource).await?.0;
                changes.push((kind, object.name_any(), applied));
            }
            Optional::Unwanted => {
                if delete_owned(&api, &workload, owner_uid).await? {
                    changes.push((kind, workload.clone(), Applied::Deleted));
                }
            }
            Optional::Unchanged => {}
        }
    }
    if let Some(resource) = &ctx.disruption_budgets().await {
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, resource);
        let name = names::workload(&service.name_any());
        match &desired.disruption_budget {
            Some(pdb) => {
                let mut value = serde_json::to_value(pdb)?;
                value["apiVersion"] = resource.api_version.clone().into();
                let object: DynamicObject = serde_json::from_value(value)?;
                let applied = apply_as(&api, &object, owner_uid, resource).await?.0;
                changes.push(("PodDisruptionBudget", name, applied));
            }
            None => {
                if delete_owned(&api, &name, owner_uid).await? {
                    changes.push(("PodDisruptionBudget", name, Applied::Deleted));
                }
            }
        }
    }
    let regarding = service.object_ref(&());
    for (kind, name, applied) in changes {
        let verb = match applied {
            Applied::Unchanged => continue,
            Applied::Created => "Created",
            Applied::Updated => "Updated",
            Applied::Deleted => "Deleted",
        };
        // One reason per object (the Event recorder folds Events with the same reason
        // into one series).
        let noun = match kind {
            "ConfigMap" => "Config",
            "Secret" => "Credentials",
            "PersistentVolumeClaim" => "Storage",
            other => other,
        };
        ctx.metrics.wrote(kind);
        tracing::info!(%namespace, kind, %name, verb, "applied");
        let note = format!("{} {kind} {name}", verb.to_lowercase());
        event(
            ctx,
            &regarding,
            EventType::Normal,
            &format!("{noun}{verb}"),
            note,
        )
        .await;
    }
    Ok(deployment)
}
