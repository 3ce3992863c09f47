//! The `TaxiiCollection` reconciler: reports on collections no TaxiiService can serve.
//!
//! A collection whose service exists and can be read is reported on by the service
//! reconciler, which decides on all of a service's collections together (titles and
//! ids must be unique among them). This one covers the rest: a collection naming a
//! missing or unreadable service waits and says so, and a collection whose own spec
//! cannot be read says why.

pub mod status;

use std::sync::Arc;

use kube::api::Api;
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::report::{event, write_status};
use super::{Context, Error};
use crate::conditions::{self, now};
use crate::crd::{TaxiiCollection, TaxiiCollectionStatus, TaxiiService};

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "taxiicollection";

/// Reconcile one TaxiiCollection.
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
    let name = object.name_any();
    let previous: TaxiiCollectionStatus = object
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let collection: TaxiiCollection = match object.clone().try_parse() {
        Ok(c) => c,
        Err(e) => {
            let next = status::unreadable(
                &previous,
                object.metadata.generation,
                &e.to_string(),
                &now(),
            );
            let regarding = object.object_ref(&ctx.collection_resource);
            return write(ctx, &namespace, &name, &previous, next, &regarding).await;
        }
    };
    // Asked of the API, not a cache: a cache that has not seen a new service yet would
    // report it missing after the service reconciler accepted the collection.
    let services: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.service_resource);
    let service_name = &collection.spec.service;
    let next = match services.get_opt(service_name).await? {
        Some(service) if service.clone().try_parse::<TaxiiService>().is_ok() => {
            return Ok(Action::await_change());
        }
        Some(_) => status::not_served(
            &collection,
            "ServiceInvalid",
            format!("TaxiiService {service_name} cannot be read; see its status"),
            &now(),
        ),
        None => status::not_served(
            &collection,
            "ServiceNotFound",
            format!("waiting for TaxiiService {service_name} in namespace {namespace}"),
            &now(),
        ),
    };
    let regarding = collection.object_ref(&());
    write(ctx, &namespace, &name, &previous, next, &regarding).await
}

async fn write(
    ctx: &Context,
    namespace: &str,
    name: &str,
    previous: &TaxiiCollectionStatus,
    next: TaxiiCollectionStatus,
    regarding: &k8s_openapi::api::core::v1::ObjectReference,
) -> Result<Action, Error> {
    if &next == previous {
        return Ok(Action::await_change());
    }
    write_status(ctx, &ctx.collection_resource, namespace, name, &next).await?;
    let accepted = conditions::find(&next.conditions, status::ACCEPTED);
    let before = conditions::find(&previous.conditions, status::ACCEPTED);
    if let Some(accepted) = accepted {
        if before.is_none_or(|b| b.reason != accepted.reason || b.message != accepted.message) {
            tracing::info!(%namespace, collection = %name, reason = %accepted.reason, "not served");
            event(
                ctx,
                regarding,
                EventType::Warning,
                &accepted.reason,
                accepted.message.clone(),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}
