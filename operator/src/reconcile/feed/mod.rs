//! The `TaxiiFeed` reconciler: the single writer of a TaxiiFeed's status.
//!
//! Whether a feed is run is the service reconciler's decision (it renders the feeds
//! with the service's configuration and lists its decisions in the TaxiiService's
//! `status.feeds`); how the pulls go is the server's to say (`GET /feeds` on a server
//! pod's admin port, read from the store, so any replica answers). This reconciler
//! reads both and writes `Accepted`, `Ready`, `Syncing` and `Degraded`, the last sync
//! and success times and the objects stored, asking the server again every 30 seconds
//! while the feed runs.

pub mod runtime;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use self::status::{feed_status, Pulls, Service, DEGRADED};
use super::report::{event, write_status};
use super::{Context, Error};
use crate::conditions::{self, now};
use crate::crd::{TaxiiFeed, TaxiiFeedStatus, TaxiiService};
use crate::reconcile::service::validate::feed_server_name;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "taxiifeed";

/// How often a running feed's pulls are looked at.
const POLL: Duration = Duration::from_secs(30);
/// How soon a feed waiting for its service or server is looked at again.
const SOON: Duration = Duration::from_secs(10);

/// Reconcile one TaxiiFeed.
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
    let feed: TaxiiFeed = match object.clone().try_parse() {
        Ok(feed) => feed,
        Err(e) => {
            // The API server's schema makes this rare: say so in the log only.
            tracing::warn!(%namespace, feed = %name, error = %e, "TaxiiFeed cannot be read");
            return Ok(Action::await_change());
        }
    };
    let services: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.service_resource);
    let service = services
        .get_opt(&feed.spec.service)
        .await?
        .map(|s| s.try_parse::<TaxiiService>());
    let admission = match &service {
        Some(Ok(service)) => service
            .status
            .as_ref()
            .and_then(|s| s.feeds.iter().find(|f| f.name == name))
            .filter(|f| f.observed_generation == feed.metadata.generation)
            .cloned(),
        _ => None,
    };
    let decision = match (&service, &admission) {
        (None, _) => Service::Missing,
        (Some(Err(_)), _) => Service::Unreadable,
        (Some(Ok(_)), None) => Service::Pending,
        (Some(Ok(_)), Some(admission)) => Service::Decided(admission),
    };
    let pulls = match &decision {
        Service::Decided(admission) if admission.accepted => {
            match runtime::ask_server(ctx, &namespace, &feed.spec.service).await {
                Ok(report) => {
                    let server_name = feed_server_name(&feed);
                    match report.feeds.into_iter().find(|f| f.name == server_name) {
                        Some(reported) => Pulls::Run(reported.run),
                        None => Pulls::NotLoaded,
                    }
                }
                Err(why) => Pulls::Unreachable(why),
            }
        }
        _ => Pulls::NotAsked,
    };
    let next = feed_status(&feed, decision.clone(), &pulls, &now());
    write(ctx, &feed, &namespace, &name, next).await?;
    Ok(match (&decision, &pulls) {
        (Service::Decided(a), Pulls::Run(Some(_))) if a.accepted => Action::requeue(POLL),
        (Service::Decided(a), _) if a.accepted => Action::requeue(SOON),
        (Service::Pending, _) => Action::requeue(SOON),
        _ => Action::await_change(),
    })
}

async fn write(
    ctx: &Context,
    feed: &TaxiiFeed,
    namespace: &str,
    name: &str,
    next: TaxiiFeedStatus,
) -> Result<(), Error> {
    let previous = feed.status.clone().unwrap_or_default();
    if next == previous {
        return Ok(());
    }
    write_status(ctx, &ctx.feed_resource, namespace, name, &next).await?;
    let degraded = conditions::find(&next.conditions, DEGRADED);
    let before = conditions::find(&previous.conditions, DEGRADED);
    if let Some(degraded) = degraded {
        let changed =
            before.is_none_or(|b| b.status != degraded.status || b.reason != degraded.reason);
        if changed && degraded.status == "True" {
            tracing::info!(%namespace, feed = %name, reason = %degraded.reason, "feed degraded");
            event(
                ctx,
                &feed.object_ref(&()),
                EventType::Warning,
                &degraded.reason,
                degraded.message.clone(),
            )
            .await;
        } else if changed && before.is_some_and(|b| b.status == "True") {
            event(
                ctx,
                &feed.object_ref(&()),
                EventType::Normal,
                "Recovered",
                degraded.message.clone(),
            )
            .await;
        }
    }
    Ok(())
}
