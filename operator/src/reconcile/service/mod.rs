//! The `TaxiiService` reconciler: dereference → validate → build → apply → status.
//!
//! It renders everything a service needs and reports on the service and on every
//! TaxiiCollection naming it. Validate and build are pure and tested on fixtures.

mod apply;
pub mod build;
pub mod inputs;
mod report;
pub mod status;
pub mod validate;

#[cfg(test)]
pub(crate) mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use self::apply::apply_all;
use self::report::{report_collections, report_service, report_unreadable};
use super::report::event;
use super::{Context, Error};
use crate::crd::TaxiiService;
use crate::credentials::hash_users;
use crate::names;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "taxiiservice";

/// How often a healthy service is reconciled anyway (it writes nothing if unchanged).
const RESYNC: Duration = Duration::from_secs(300);

/// How soon a service waiting for an API the cluster does not serve yet (e.g. the
/// Gateway API CRDs) looks again.
const API_RECHECK: Duration = Duration::from_secs(30);

/// Reconcile one TaxiiService.
pub async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.measured(CONTROLLER, &object, run(&object, &ctx)).await
}

/// Retry a failed reconcile with exponential backoff.
pub fn error_policy(object: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry(CONTROLLER, &object, error)
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
    let inputs = inputs::dereference(&ctx.client, service, &ctx.collections, &ctx.feeds).await?;
    let mut validated = validate::validate(&inputs, &ctx.settings);
    if inputs.service.spec.gateway.is_some() && ctx.http_routes().await.is_none() {
        validate::gateway_api_unavailable(&inputs.service, &mut validated);
    }
    if let Some(monitoring) = &inputs.service.spec.monitoring {
        let mut unserved = vec![];
        if monitoring.pod_monitor && ctx.pod_monitors().await.is_none() {
            unserved.push("PodMonitor");
        }
        if monitoring.prometheus_rule && ctx.prometheus_rules().await.is_none() {
            unserved.push("PrometheusRule");
        }
        validate::monitoring_api_unavailable(&unserved, &mut validated);
    }
    if validated.rejected {
        // Nothing is rendered, hashed or changed; what runs keeps running.
        let deployment = Api::<Deployment>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&names::workload(&inputs.service.name_any()))
            .await?;
        report_service(
            ctx,
            &inputs.service,
            &namespace,
            &validated,
            deployment.as_ref(),
            None,
        )
        .await?;
        report_collections(ctx, &inputs, &namespace, &validated).await?;
        return Ok(Action::requeue(RESYNC));
    }
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
    let waiting_for_api = validated.waits_for_api();
    applied.map(|_| Action::requeue(if waiting_for_api { API_RECHECK } else { RESYNC }))
}
