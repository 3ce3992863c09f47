//! Writing what the reconcilers found: status subresources and Events.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::events::{Event, EventType};
use serde::Serialize;
use serde_json::json;

use super::{Context, Error};
use crate::names::MANAGER;

/// Write `status` to the status subresource with server-side apply.
pub async fn write_status<S: Serialize>(
    ctx: &Context,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
    status: &S,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, resource);
    let patch = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.wrote(match resource.kind.as_str() {
        "TaxiiService" => "TaxiiService/status",
        "TaxiiFeed" => "TaxiiFeed/status",
        _ => "TaxiiCollection/status",
    });
    Ok(())
}

/// Publish an Event about `regarding`; a failure is logged, never fatal.
pub async fn event(
    ctx: &Context,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, regarding).await {
        tracing::warn!(error = %e, reason, "cannot publish an Event");
    }
}
