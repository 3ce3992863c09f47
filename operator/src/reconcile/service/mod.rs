//! The `TaxiiService` reconciler: dereference → validate → build → apply → status.
//!
//! It renders everything a service needs and reports on the service and on every
//! TaxiiCollection naming it. Validate and build are pure and tested on fixtures.

pub mod build;
pub mod inputs;
pub mod status;
pub mod validate;

#[cfg(test)]
pub(crate) mod fixtures;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::Api;
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use self::build::Desired;
use self::validate::Validated;
use super::apply::{apply, delete_owned, Applied};
use super::collection::status as collection_status;
use super::report::{event, write_status};
use super::{Context, Error};
use crate::conditions::{self, now};
use crate::crd::{TaxiiService, TaxiiServiceStatus};
use crate::credentials::hash_users;
use crate::names;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "taxiiservice";

/// How often a healthy service is reconciled anyway (it writes nothing if unchanged).
const RESYNC: Duration = Duration::from_secs(300);

/// Reconcile one TaxiiService.
pub async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = run(&object, &ctx).await;
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    match &result {
        Ok(_) => ctx.succeeded(&object),
        Err(e) => ctx.metrics.failed(CONTROLLER, e.metric_label()),
    }
    result
}

/// Retry a failed reconcile with exponential backoff.
pub fn error_policy(object: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&object);
    tracing::warn!(
        service = %object.name_any(),
        namespace = %object.namespace().unwrap_or_default(),
        %error,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn run(object: &DynamicObject, ctx: &Context) -> Result<Action, Error> {
    let namespace = object
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let service: TaxiiService = match object.clone().try_parse() {
        Ok(service) => service,
        Err(e) => {
            report_unreadable(object, &namespace, &e.to_string(), ctx).await?;
            return Ok(Action::await_change());
        }
    };
    let inputs = inputs::dereference(&ctx.client, service, &ctx.collections).await?;
    let validated = validate::validate(&inputs, &ctx.settings);
    let credentials = {
        // Argon2 takes tens of milliseconds per new hash: keep it off the async workers.
        let users = validated.users.clone();
        let previous = inputs.previous_credentials.clone();
        let hasher = ctx.hasher.clone();
        tokio::task::spawn_blocking(move || hash_users(&users, previous.as_ref(), hasher.as_ref()))
            .await
            .map_err(|e| Error::Hash(crate::credentials::HashError(e.to_string())))??
    };
    let desired = build::build(&inputs.service, &validated, &credentials, &ctx.settings)?;

    let applied = apply_all(ctx, &inputs.service, &desired).await;
    let deployment = match &applied {
        Ok(deployment) => Some(deployment.clone()),
        Err(_) => Api::<Deployment>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&names::workload(&inputs.service.name_any()))
            .await
            .ok()
            .flatten(),
    };
    let apply_error = applied.as_ref().err().map(ToString::to_string);
    let regarding = inputs.service.object_ref(&());
    if let Some(error) = &apply_error {
        event(
            ctx,
            &regarding,
            EventType::Warning,
            "ApplyFailed",
            error.clone(),
        )
        .await;
    }

    report_service(
        ctx,
        &inputs.service,
        &namespace,
        &validated,
        deployment.as_ref(),
        apply_error.as_deref(),
    )
    .await?;
    report_collections(ctx, &inputs, &namespace, &validated).await?;
    applied.map(|_| Action::requeue(RESYNC))
}

/// Apply every desired object, ConfigMap and Secret first so new pods find them.
/// Returns the live Deployment.
async fn apply_all(
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
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace);
    let pvc = &desired.data_claim;
    changes.push((
        "PersistentVolumeClaim",
        pvc.name_any(),
        apply(&api, pvc, owner_uid).await?.0,
    ));
    let api = Api::<Service>::namespaced(client.clone(), &namespace);
    let svc = &desired.service;
    changes.push((
        "Service",
        svc.name_any(),
        apply(&api, svc, owner_uid).await?.0,
    ));
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

async fn report_service(
    ctx: &Context,
    service: &TaxiiService,
    namespace: &str,
    validated: &Validated,
    deployment: Option<&Deployment>,
    apply_error: Option<&str>,
) -> Result<(), Error> {
    let previous = service.status.clone().unwrap_or_default();
    let next = status::service_status(service, validated, deployment, apply_error, &now());
    if next == previous {
        return Ok(());
    }
    write_status(
        ctx,
        &ctx.service_resource,
        namespace,
        &service.name_any(),
        &next,
    )
    .await?;
    tracing::info!(%namespace, summary = %status::summary(service, &next), "status updated");
    let regarding = service.object_ref(&());
    let was_degraded = conditions::is(
        &previous.conditions,
        status::DEGRADED,
        conditions::Status::True,
    );
    if let Some(degraded) = conditions::find(&next.conditions, status::DEGRADED) {
        let now_degraded = degraded.status == "True";
        let message_changed = conditions::find(&previous.conditions, status::DEGRADED)
            .is_none_or(|c| c.message != degraded.message);
        if now_degraded && message_changed && apply_error.is_none() {
            event(
                ctx,
                &regarding,
                EventType::Warning,
                &degraded.reason,
                degraded.message.clone(),
            )
            .await;
        } else if was_degraded && !now_degraded {
            event(
                ctx,
                &regarding,
                EventType::Normal,
                "Recovered",
                "no problems left".into(),
            )
            .await;
        }
    }
    let was_ready = conditions::is(
        &previous.conditions,
        status::READY,
        conditions::Status::True,
    );
    let is_ready = conditions::is(&next.conditions, status::READY, conditions::Status::True);
    if is_ready && !was_ready {
        event(
            ctx,
            &regarding,
            EventType::Normal,
            "Ready",
            status::summary(service, &next),
        )
        .await;
    }
    Ok(())
}

async fn report_collections(
    ctx: &Context,
    inputs: &inputs::Inputs,
    namespace: &str,
    validated: &Validated,
) -> Result<(), Error> {
    let now = now();
    for verdict in &validated.collections {
        let Some(collection) = inputs
            .collections
            .iter()
            .find(|c| c.name_any() == verdict.name)
        else {
            continue;
        };
        let next = collection_status::from_verdict(collection, verdict, &now);
        let previous = collection.status.clone().unwrap_or_default();
        if next == previous {
            continue;
        }
        write_status(
            ctx,
            &ctx.collection_resource,
            namespace,
            &verdict.name,
            &next,
        )
        .await?;
        let regarding = collection.object_ref(&());
        for type_ in [collection_status::ACCEPTED, collection_status::QUERY_VALID] {
            let (Some(now_c), before) = (
                conditions::find(&next.conditions, type_),
                conditions::find(&previous.conditions, type_),
            ) else {
                continue;
            };
            let changed =
                before.is_none_or(|b| b.status != now_c.status || b.message != now_c.message);
            if changed && now_c.status == "False" {
                event(
                    ctx,
                    &regarding,
                    EventType::Warning,
                    &now_c.reason,
                    now_c.message.clone(),
                )
                .await;
            } else if changed && type_ == collection_status::ACCEPTED && now_c.status == "True" {
                let note = format!("served at {}", next.url.as_deref().unwrap_or("?"));
                event(ctx, &regarding, EventType::Normal, "Accepted", note).await;
            }
        }
    }
    Ok(())
}

async fn report_unreadable(
    object: &DynamicObject,
    namespace: &str,
    error: &str,
    ctx: &Context,
) -> Result<(), Error> {
    let previous: TaxiiServiceStatus = object
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let name = object.name_any();
    let next =
        status::unreadable_status(&name, &previous, object.metadata.generation, error, &now());
    if next != previous {
        tracing::warn!(%namespace, service = %name, %error, "TaxiiService cannot be read");
        write_status(ctx, &ctx.service_resource, namespace, &name, &next).await?;
        let regarding = object.object_ref(&ctx.service_resource);
        event(
            ctx,
            &regarding,
            EventType::Warning,
            "InvalidSpec",
            error.to_string(),
        )
        .await;
    }
    Ok(())
}
