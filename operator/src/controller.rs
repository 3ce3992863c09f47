//! Wiring: the watches that trigger each reconciler, and running both.
//!
//! - TaxiiService reconciler: a service's spec changes (generation, so its own status
//!   writes do not re-trigger it); a TaxiiCollection naming it changes spec, is
//!   created or deleted (or moves to another service); a Secret or ConfigMap it
//!   references or its `spec.userSelector` selects (or selected, before a label
//!   change) changes; an object it owns changes (drift, Deployment rollout) or is
//!   deleted — PodDisruptionBudgets included, watched in the API version the cluster
//!   serves (`policy/v1`, else `policy/v1beta1`), found once at start; and the
//!   optional APIs' HTTPRoutes, PodMonitors and PrometheusRules, each watched from the
//!   moment the cluster serves its kind ([`optional_changes`]).
//! - TaxiiCollection reconciler: a collection's spec changes; a service is created,
//!   changes spec or is deleted (its collections may now wait for it).
//!
//! Custom resources are watched as untyped objects: one object that does not fit the
//! Rust types (say, stored under an older schema) is reported on its status instead of
//! failing the whole list and stalling every reconcile.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::Api;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{predicates, watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::admin::{Phase, Readiness};
use crate::crd::{TaxiiCollection, TaxiiFeed, TaxiiService};
use crate::metrics::Metrics;
use crate::names;
use crate::reconcile::service::build::{
    GATEWAY_GROUP, HTTP_ROUTE_VERSION, MONITORING_GROUP, MONITORING_VERSION,
};
use crate::reconcile::service::inputs::{
    feed_secrets, referenced_config_maps, referenced_secrets, service_of, user_selector, Settings,
};
use crate::reconcile::{collection, feed, service, Context};

/// Where and how the controllers run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch one namespace only; all namespaces when `None`.
    pub namespace: Option<String>,
    /// Rendering settings.
    pub settings: Settings,
    /// Reported as the Events' reporting instance (the pod name).
    pub instance: String,
}

/// Run both controllers until `shutdown` turns true.
pub async fn run(
    client: Client,
    options: Options,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: watch::Receiver<bool>,
) {
    let service_resource = ApiResource::erase::<TaxiiService>(&());
    let collection_resource = ApiResource::erase::<TaxiiCollection>(&());
    let scope = Scope {
        client: client.clone(),
        namespace: options.namespace.clone(),
    };

    let service_writer = Writer::new(service_resource.clone());
    let services = service_writer.as_reader();
    let service_specs = watcher(scope.dynamic(&service_resource), watcher::Config::default())
        .default_backoff()
        .reflect(service_writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());

    let collection_writer = Writer::new(collection_resource.clone());
    let collections = collection_writer.as_reader();
    let collection_specs = watcher(
        scope.dynamic(&collection_resource),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(collection_writer)
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default());

    let feed_resource = ApiResource::erase::<TaxiiFeed>(&());
    let feed_writer = Writer::new(feed_resource.clone());
    let feeds = feed_writer.as_reader();
    let feed_specs = watcher(scope.dynamic(&feed_resource), watcher::Config::default())
        .default_backoff()
        .reflect(feed_writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: names::MANAGER.into(),
            instance: Some(options.instance.clone()),
        },
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        options.settings.clone(),
        collections.clone(),
        feeds.clone(),
        recorder,
        metrics,
    ));
    let config = controller::Config::default().debounce(Duration::from_millis(300));

    let owned = || watcher::Config::default().labels(&names::managed_selector());
    let (budget_changes, budget_resource) =
        disruption_budget_changes(&scope, ctx.disruption_budgets().await, owned());
    let [routes, monitors, rules] = OptionalKind::ALL
        .map(|kind| optional_changes(Scope::clone(&scope), ctx.clone(), kind, owned()));
    let service_controller =
        Controller::for_stream_with(service_specs, services.clone(), service_resource.clone())
            .with_config(config.clone())
            .watches_stream_with(
                spec_changes(
                    watcher(
                        scope.dynamic(&collection_resource),
                        watcher::Config::default(),
                    )
                    .default_backoff(),
                ),
                collection_to_services(service_resource.clone()),
                collection_resource.clone(),
            )
            .watches_stream_with(
                spec_changes(
                    watcher(scope.dynamic(&feed_resource), watcher::Config::default())
                        .default_backoff(),
                ),
                collection_to_services(service_resource.clone()),
                feed_resource.clone(),
            )
            .watches_stream(
                watcher(
                    scope.typed::<PartialObjectMeta<Secret>>(),
                    watcher::Config::default(),
                )
                .default_backoff()
                .touched_objects(),
                secret_to_services(services.clone(), feeds.clone(), service_resource.clone()),
            )
            .watches_stream(
                watcher(
                    scope.typed::<PartialObjectMeta<ConfigMap>>(),
                    watcher::Config::default(),
                )
                .default_backoff()
                .touched_objects(),
                referencing_services::<ConfigMap>(
                    services.clone(),
                    service_resource.clone(),
                    referenced_config_maps,
                ),
            )
            .owns_stream(
                watcher(scope.typed::<Deployment>(), owned())
                    .default_backoff()
                    .touched_objects(),
            )
            .owns_stream(
                watcher(scope.typed::<Service>(), owned())
                    .default_backoff()
                    .touched_objects(),
            )
            .owns_stream(
                watcher(scope.typed::<PersistentVolumeClaim>(), owned())
                    .default_backoff()
                    .touched_objects(),
            )
            .owns_stream(
                watcher(scope.typed::<Ingress>(), owned())
                    .default_backoff()
                    .touched_objects(),
            )
            .owns_stream(
                watcher(scope.typed::<NetworkPolicy>(), owned())
                    .default_backoff()
                    .touched_objects(),
            )
            .owns_stream_with(budget_changes, budget_resource)
            .owns_stream_with(routes.0, routes.1)
            .owns_stream_with(monitors.0, monitors.1)
            .owns_stream_with(rules.0, rules.1)
            .graceful_shutdown_on(stopped(shutdown.clone()))
            .run(service::reconcile, service::error_policy, ctx.clone())
            .for_each(|result| async move { log_result(service::CONTROLLER, result) });

    let collection_controller = Controller::for_stream_with(
        collection_specs,
        collections.clone(),
        collection_resource.clone(),
    )
    .with_config(config)
    .watches_stream_with(
        spec_changes(
            watcher(scope.dynamic(&service_resource), watcher::Config::default()).default_backoff(),
        ),
        service_to_collections(collections.clone(), collection_resource.clone()),
        service_resource.clone(),
    )
    .graceful_shutdown_on(stopped(shutdown.clone()))
    .run(collection::reconcile, collection::error_policy, ctx.clone())
    .for_each(|result| async move { log_result(collection::CONTROLLER, result) });

    // Feeds: status from the service's decision (`status.feeds`, so every status
    // change of a service is heard, not only spec changes) and the server's report.
    let feed_controller =
        Controller::for_stream_with(feed_specs, feeds.clone(), feed_resource.clone())
            .with_config(controller::Config::default().debounce(Duration::from_millis(300)))
            .watches_stream_with(
                watcher(scope.dynamic(&service_resource), watcher::Config::default())
                    .default_backoff()
                    .touched_objects(),
                service_to_collections(feeds.clone(), feed_resource.clone()),
                service_resource.clone(),
            )
            .graceful_shutdown_on(stopped(shutdown.clone()))
            .run(feed::reconcile, feed::error_policy, ctx.clone())
            .for_each(|result| async move { log_result(feed::CONTROLLER, result) });

    let ready = {
        let (services, collections, feeds) = (services.clone(), collections.clone(), feeds.clone());
        async move {
            if services.wait_until_ready().await.is_ok()
                && collections.wait_until_ready().await.is_ok()
                && feeds.wait_until_ready().await.is_ok()
            {
                readiness.set(Phase::Running);
                tracing::info!("watch caches synced; reconciling");
            }
        }
    };
    tokio::join!(
        service_controller,
        collection_controller,
        feed_controller,
        ready
    );
}

/// Builds `Api`s in the watched scope.
#[derive(Clone)]
struct Scope {
    client: Client,
    namespace: Option<String>,
}

impl Scope {
    fn dynamic(&self, resource: &ApiResource) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    fn typed<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }
}

/// The PodDisruptionBudgets the operator manages, as `resource` (the version the
/// cluster serves) says, with that resource; a stream that never yields when the
/// cluster serves none (the operator then makes none either).
fn disruption_budget_changes(
    scope: &Scope,
    resource: Option<ApiResource>,
    config: watcher::Config,
) -> (
    BoxStream<'static, Result<DynamicObject, watcher::Error>>,
    ApiResource,
) {
    match resource {
        Some(resource) => (
            watcher(scope.dynamic(&resource), config)
                .default_backoff()
                .touched_objects()
                .boxed(),
            resource,
        ),
        None => {
            tracing::warn!("PodDisruptionBudgets are not watched: the cluster serves none");
            (
                futures::stream::pending().boxed(),
                ApiResource::from_gvk(&GroupVersionKind::gvk(
                    "policy",
                    "v1",
                    "PodDisruptionBudget",
                )),
            )
        }
    }
}

/// How often a watch of an optional API's kind looks for it while it is not served.
const OPTIONAL_API_RECHECK: Duration = Duration::from_secs(20);

/// A kind of an optional API the operator renders when the cluster serves it.
#[derive(Clone, Copy, Debug)]
enum OptionalKind {
    /// Gateway API `HTTPRoute` (`spec.gateway`).
    HttpRoute,
    /// prometheus-operator `PodMonitor` (`spec.monitoring.podMonitor`).
    PodMonitor,
    /// prometheus-operator `PrometheusRule` (`spec.monitoring.prometheusRule`).
    PrometheusRule,
}

impl OptionalKind {
    const ALL: [OptionalKind; 3] = [
        OptionalKind::HttpRoute,
        OptionalKind::PodMonitor,
        OptionalKind::PrometheusRule,
    ];

    fn gvk(self) -> GroupVersionKind {
        match self {
            OptionalKind::HttpRoute => {
                GroupVersionKind::gvk(GATEWAY_GROUP, HTTP_ROUTE_VERSION, "HTTPRoute")
            }
            OptionalKind::PodMonitor => {
                GroupVersionKind::gvk(MONITORING_GROUP, MONITORING_VERSION, "PodMonitor")
            }
            OptionalKind::PrometheusRule => {
                GroupVersionKind::gvk(MONITORING_GROUP, MONITORING_VERSION, "PrometheusRule")
            }
        }
    }

    /// The kind as the cluster serves it, through the context's discovery (shared with
    /// the reconciler, which renders the objects); `None` while not served.
    async fn served(self, ctx: &Context) -> Option<ApiResource> {
        match self {
            OptionalKind::HttpRoute => ctx.http_routes().await,
            OptionalKind::PodMonitor => ctx.pod_monitors().await,
            OptionalKind::PrometheusRule => ctx.prometheus_rules().await,
        }
    }
}

/// The operator's objects of an optional API's `kind`, with the resource to name them
/// by: the watch starts once the cluster serves the kind (looked for at start, then
/// every [`OPTIONAL_API_RECHECK`], so CRDs installed later need no restart); until
/// then the stream yields nothing (and nothing of the kind is rendered either). One
/// deleted or edited by hand is then restored at once, as a PodDisruptionBudget is.
fn optional_changes(
    scope: Scope,
    ctx: Arc<Context>,
    kind: OptionalKind,
    config: watcher::Config,
) -> (
    BoxStream<'static, Result<DynamicObject, watcher::Error>>,
    ApiResource,
) {
    let named = ApiResource::from_gvk(&kind.gvk());
    let changes = futures::stream::once(async move {
        let resource = loop {
            if let Some(resource) = kind.served(&ctx).await {
                break resource;
            }
            tokio::time::sleep(OPTIONAL_API_RECHECK).await;
        };
        tracing::info!(kind = %resource.kind, api_version = %resource.api_version, "watching the owned objects of an optional API");
        watcher(scope.dynamic(&resource), config)
            .default_backoff()
            .touched_objects()
    })
    .flatten()
    .boxed();
    (changes, named)
}

async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

fn log_result<E: std::error::Error, Q: std::error::Error>(
    controller: &'static str,
    result: Result<(ObjectRef<DynamicObject>, controller::Action), controller::Error<E, Q>>,
) {
    match result {
        Ok((object, _)) => tracing::debug!(controller, %object, "reconciled"),
        // A trigger for an object deleted meanwhile: nothing to do.
        Err(controller::Error::ObjectNotFound(object)) => {
            tracing::debug!(controller, %object, "object gone")
        }
        Err(controller::Error::ReconcilerFailed(..)) => {}
        Err(e) => tracing::warn!(controller, error = %e, "controller error"),
    }
}

/// Objects whose spec changed (a new generation), were created, or were deleted;
/// status-only and metadata-only updates are dropped.
fn spec_changes<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + Send + 'static,
{
    let mut seen: HashMap<(Option<String>, String, Option<String>), Option<i64>> = HashMap::new();
    events.flat_map(move |event| {
        let out: Vec<Result<K, watcher::Error>> = match event {
            Err(e) => vec![Err(e)],
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                let key = (obj.namespace(), obj.name_any(), obj.uid());
                let generation = obj.meta().generation;
                if seen.insert(key, generation) == Some(generation) {
                    vec![]
                } else {
                    vec![Ok(obj)]
                }
            }
            Ok(watcher::Event::Delete(obj)) => {
                seen.remove(&(obj.namespace(), obj.name_any(), obj.uid()));
                vec![Ok(obj)]
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => vec![],
        };
        futures::stream::iter(out)
    })
}

/// A collection (or feed) → the service it names, and the one it named before if it
/// moved.
fn collection_to_services(
    resource: ApiResource,
) -> impl Fn(DynamicObject) -> Vec<ObjectRef<DynamicObject>> + Send + Sync + 'static {
    let named: Mutex<HashMap<(String, String), String>> = Mutex::new(HashMap::new());
    move |collection| {
        let Some(namespace) = collection.namespace() else {
            return vec![];
        };
        let key = (namespace.clone(), collection.name_any());
        let current = service_of(&collection).map(str::to_string);
        let before = named.lock().ok().and_then(|mut named| match &current {
            Some(service) => named.insert(key, service.clone()),
            None => named.remove(&key),
        });
        let mut services: Vec<String> = current.into_iter().chain(before).collect();
        services.dedup();
        services
            .iter()
            .map(|s| ObjectRef::new_with(s, resource.clone()).within(&namespace))
            .collect()
    }
}

/// A service → every collection (or feed) naming it (from that kind's cache).
fn service_to_collections(
    collections: Store<DynamicObject>,
    resource: ApiResource,
) -> impl Fn(DynamicObject) -> Vec<ObjectRef<DynamicObject>> + Send + Sync + 'static {
    move |service| {
        let namespace = service.namespace();
        let name = service.name_any();
        collections
            .state()
            .iter()
            .filter(|c| c.namespace() == namespace && service_of(c) == Some(name.as_str()))
            .filter_map(|c| {
                let ns = c.namespace()?;
                Some(ObjectRef::new_with(&c.name_any(), resource.clone()).within(&ns))
            })
            .collect()
    }
}

/// A Secret or ConfigMap → the services owning it or referencing it by name.
fn referencing_services<K>(
    services: Store<DynamicObject>,
    resource: ApiResource,
    references: fn(&TaxiiService) -> Vec<String>,
) -> impl Fn(PartialObjectMeta<K>) -> Vec<ObjectRef<DynamicObject>> + Send + Sync + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    move |object| {
        let Some(namespace) = object.namespace() else {
            return vec![];
        };
        let name = object.name_any();
        let owners = object
            .owner_references()
            .iter()
            .filter(|o| o.kind == resource.kind && o.api_version == resource.api_version)
            .map(|o| o.name.clone());
        let referencing = services
            .state()
            .into_iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|s| {
                s.as_ref()
                    .clone()
                    .try_parse::<TaxiiService>()
                    .is_ok_and(|svc| references(&svc).contains(&name))
            })
            .map(|s| s.name_any());
        let mut names: Vec<String> = owners.chain(referencing).collect();
        names.sort();
        names.dedup();
        names
            .iter()
            .map(|n| ObjectRef::new_with(n, resource.clone()).within(&namespace))
            .collect()
    }
}

/// A Secret → the services owning or referencing it, and those whose
/// `spec.userSelector` selects it now or selected it at its previous event (so that
/// removing the label removes the user at once, not at the next resync).
fn secret_to_services(
    services: Store<DynamicObject>,
    feeds: Store<DynamicObject>,
    resource: ApiResource,
) -> impl Fn(PartialObjectMeta<Secret>) -> Vec<ObjectRef<DynamicObject>> + Send + Sync + 'static {
    let referencing =
        referencing_services::<Secret>(services.clone(), resource.clone(), referenced_secrets);
    let selected_by: Mutex<HashMap<(String, String), Vec<String>>> = Mutex::new(HashMap::new());
    move |secret| {
        let mut refs = referencing(secret.clone());
        let Some(namespace) = secret.namespace() else {
            return refs;
        };
        refs.extend(
            services_of_feeds_using(&feeds, &namespace, &secret.name_any())
                .iter()
                .map(|n| ObjectRef::new_with(n, resource.clone()).within(&namespace)),
        );
        let labels = secret.labels().clone();
        let now: Vec<String> = services
            .state()
            .into_iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|s| {
                s.as_ref()
                    .clone()
                    .try_parse::<TaxiiService>()
                    .ok()
                    .and_then(|svc| user_selector(&svc))
                    .is_some_and(|selector| selector.matches(&labels))
            })
            .map(|s| s.name_any())
            .collect();
        let key = (namespace.clone(), secret.name_any());
        let before = selected_by.lock().ok().and_then(|mut selected_by| {
            // Bounded: entries of deleted Secrets would otherwise stay forever.
            if selected_by.len() > 10_000 {
                selected_by.clear();
            }
            if now.is_empty() {
                selected_by.remove(&key)
            } else {
                selected_by.insert(key, now.clone())
            }
        });
        let mut names: Vec<String> = now
            .into_iter()
            .chain(before.into_iter().flatten())
            .collect();
        names.sort();
        names.dedup();
        refs.extend(
            names
                .iter()
                .map(|n| ObjectRef::new_with(n, resource.clone()).within(&namespace)),
        );
        refs
    }
}

/// The services of the TaxiiFeeds in `namespace` whose credentials, CA or client
/// certificate is the Secret `secret`.
fn services_of_feeds_using(
    feeds: &Store<DynamicObject>,
    namespace: &str,
    secret: &str,
) -> Vec<String> {
    let mut names: Vec<String> = feeds
        .state()
        .iter()
        .filter(|f| f.namespace().as_deref() == Some(namespace))
        .filter_map(|f| f.as_ref().clone().try_parse::<TaxiiFeed>().ok())
        .filter(|f| feed_secrets(f).iter().any(|s| s == secret))
        .map(|f| f.spec.service)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod secret_mapping_tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::core::PartialObjectMetaExt;
    use serde_json::json;

    use super::*;

    fn service(name: &str, selector: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiService",
            "metadata": {"name": name, "namespace": "intel"},
            "spec": {"title": "t", "apiRoots": [{"path": "a", "title": "A"}], "userSelector": selector},
        }))
        .expect("a TaxiiService")
    }

    fn secret(name: &str, namespace: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Secret> {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
        .into_response_partial()
    }

    #[test]
    fn a_secret_maps_to_the_services_selecting_it_now_or_before() {
        let resource = ApiResource::erase::<TaxiiService>(&());
        let mut writer = Writer::new(resource.clone());
        for s in [
            service("soc", json!({"matchLabels": {"taxiway.dev/user": "true"}})),
            service(
                "partners",
                json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["partners"]}]}),
            ),
            service("broken", json!({})),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(s));
        }
        let mut feeds = Writer::new(ApiResource::erase::<TaxiiFeed>(&()));
        feeds.apply_watcher_event(&watcher::Event::Apply(
            serde_json::from_value(json!({
                "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiFeed",
                "metadata": {"name": "partner", "namespace": "intel"},
                "spec": {"service": "hub", "into": "inbox", "url": "https://p/",
                         "credentials": {"secretName": "partner-login"}, "caSecretName": "partner-ca"},
            }))
            .expect("a TaxiiFeed"),
        ));
        let map = secret_to_services(writer.as_reader(), feeds.as_reader(), resource);
        let names = |refs: Vec<ObjectRef<DynamicObject>>| {
            let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
            names.sort();
            names
        };
        for used in ["partner-login", "partner-ca"] {
            assert_eq!(names(map(secret(used, "intel", &[]))), ["hub"], "{used}");
        }
        assert!(names(map(secret("partner-ca", "elsewhere", &[]))).is_empty());
        let labelled = [("taxiway.dev/user", "true"), ("team", "partners")];
        assert_eq!(
            names(map(secret("carol", "intel", &labelled))),
            ["partners", "soc"]
        );
        assert!(
            names(map(secret("carol", "elsewhere", &labelled))).is_empty(),
            "another namespace"
        );
        // Unlabelled: the services that selected it before still hear of it, once.
        assert_eq!(
            names(map(secret("carol", "intel", &[("team", "partners")]))),
            ["partners", "soc"]
        );
        assert_eq!(
            names(map(secret("carol", "intel", &[("team", "partners")]))),
            ["partners"]
        );
        assert!(names(map(secret("carol", "intel", &[]))) == ["partners"]);
        assert!(names(map(secret("carol", "intel", &[]))).is_empty());
        assert!(
            names(map(secret("unrelated", "intel", &[("app", "db")]))).is_empty(),
            "an empty selector selects nothing"
        );
    }
}
