//! Status: of the service and of each of its collections, written only when it
//! changed, with Events on the transitions a user should notice.

use k8s_openapi::api::apps::v1::Deployment;
use kube::core::DynamicObject;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::inputs::Inputs;
use super::status;
use super::validate::Validated;
use crate::conditions::{self, now};
use crate::crd::{TaxiiService, TaxiiServiceStatus};
use crate::reconcile::collection::status as collection_status;
use crate::reconcile::report::{event, write_status};
use crate::reconcile::{Context, Error};

pub(super) async fn report_service(
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
    // Warnings: an Event when one appears (or its message changes).
    for warning in &validated.warnings {
        if !previous.warnings.contains(&warning.message) {
            event(
                ctx,
                &regarding,
                EventType::Warning,
                warning.reason,
                warning.message.clone(),
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

pub(super) async fn report_collections(
    ctx: &Context,
    inputs: &Inputs,
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

pub(super) async fn report_unreadable(
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
