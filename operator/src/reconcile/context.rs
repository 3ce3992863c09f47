//! What every reconcile shares: the client, caches, settings, metrics and backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use super::service::build::{
    GATEWAY_GROUP, HTTP_ROUTE_VERSION, MONITORING_GROUP, MONITORING_VERSION,
};
use super::service::inputs::Settings;
use super::Error;
use crate::crd::{TaxiiCollection, TaxiiFeed, TaxiiService};
use crate::credentials::Argon2Hasher;
use crate::metrics::Metrics;

/// How long an optional API found missing is not looked for again.
const REDISCOVER: Duration = Duration::from_secs(20);

/// Longest wait before a failed reconcile is retried.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Shared by both reconcilers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Rendering settings.
    pub settings: Settings,
    /// Every TaxiiCollection the operator watches (the collection controller's cache).
    pub collections: Store<DynamicObject>,
    /// Every TaxiiFeed the operator watches (the feed controller's cache).
    pub feeds: Store<DynamicObject>,
    /// The TaxiiService resource (reconciled as untyped objects, so one object that does
    /// not fit the Rust types cannot stop a watch).
    pub service_resource: ApiResource,
    /// The TaxiiCollection resource.
    pub collection_resource: ApiResource,
    /// The TaxiiFeed resource.
    pub feed_resource: ApiResource,
    /// Asks server pods how their feeds run (`Err`: why it could not be built).
    pub http: Result<reqwest::Client, String>,
    /// Password hashing with its verification memory.
    pub hasher: Arc<Argon2Hasher>,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// PodDisruptionBudgets as the cluster serves them, once discovered.
    disruption_budgets: Mutex<Option<ApiResource>>,
    /// Optional APIs (Gateway API, prometheus-operator) by kind: once discovered, or
    /// when they were last found missing.
    optional: Mutex<HashMap<&'static str, Discovered>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context.
    pub fn new(
        client: Client,
        settings: Settings,
        collections: Store<DynamicObject>,
        feeds: Store<DynamicObject>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Context {
        Context {
            client,
            settings,
            collections,
            feeds,
            service_resource: ApiResource::erase::<TaxiiService>(&()),
            collection_resource: ApiResource::erase::<TaxiiCollection>(&()),
            feed_resource: ApiResource::erase::<TaxiiFeed>(&()),
            http: super::feed::runtime::http_client().map_err(|e| e.to_string()),
            hasher: Arc::new(Argon2Hasher::default()),
            recorder,
            metrics,
            disruption_budgets: Mutex::new(None),
            optional: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// PodDisruptionBudgets as this cluster serves them: `policy/v1`, else
    /// `policy/v1beta1` (Kubernetes before 1.21); discovered on first use and again
    /// after a failure; `None` when the cluster serves neither.
    pub async fn disruption_budgets(&self) -> Option<ApiResource> {
        if let Some(known) = self.disruption_budgets.lock().ok().and_then(|d| d.clone()) {
            return Some(known);
        }
        for version in ["v1", "v1beta1"] {
            let gvk = GroupVersionKind::gvk("policy", version, "PodDisruptionBudget");
            match kube::discovery::pinned_kind(&self.client, &gvk).await {
                Ok((resource, _)) => {
                    if let Ok(mut cached) = self.disruption_budgets.lock() {
                        *cached = Some(resource.clone());
                    }
                    return Some(resource);
                }
                Err(e) => tracing::debug!(version, error = %e, "PodDisruptionBudget not served"),
            }
        }
        tracing::warn!("the cluster serves no PodDisruptionBudget API; running without one");
        None
    }

    /// Gateway API `HTTPRoute`s (`gateway.networking.k8s.io/v1`) when the cluster
    /// serves them: discovered on first use; while missing, looked for again at most
    /// every 20 seconds (so installing the CRDs needs no operator restart).
    pub async fn http_routes(&self) -> Option<ApiResource> {
        self.optional_api(GATEWAY_GROUP, HTTP_ROUTE_VERSION, "HTTPRoute")
            .await
    }

    /// prometheus-operator `PodMonitor`s (`monitoring.coreos.com/v1`), found as
    /// [`Context::http_routes`] are.
    pub async fn pod_monitors(&self) -> Option<ApiResource> {
        self.optional_api(MONITORING_GROUP, MONITORING_VERSION, "PodMonitor")
            .await
    }

    /// prometheus-operator `PrometheusRule`s (`monitoring.coreos.com/v1`), found as
    /// [`Context::http_routes`] are.
    pub async fn prometheus_rules(&self) -> Option<ApiResource> {
        self.optional_api(MONITORING_GROUP, MONITORING_VERSION, "PrometheusRule")
            .await
    }

    async fn optional_api(
        &self,
        group: &str,
        version: &str,
        kind: &'static str,
    ) -> Option<ApiResource> {
        let now = Instant::now();
        if let Ok(known) = self.optional.lock() {
            if let Some(known) = known.get(kind) {
                if known.resource.is_some() {
                    return known.resource.clone();
                }
                if known
                    .missing_since
                    .is_some_and(|t| now.duration_since(t) < REDISCOVER)
                {
                    return None;
                }
            }
        }
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((resource, _)) => Some(resource),
            Err(e) => {
                tracing::debug!(group, version, kind, error = %e, "optional API not served");
                None
            }
        };
        if let Ok(mut known) = self.optional.lock() {
            known.insert(
                kind,
                Discovered {
                    resource: found.clone(),
                    missing_since: found.is_none().then_some(now),
                },
            );
        }
        found
    }

    /// The delay before retrying `object` after another failure: 1 s, doubling, at most
    /// five minutes.
    pub fn backoff(&self, object: &DynamicObject) -> Duration {
        let Ok(mut failures) = self.failures.lock() else {
            return MAX_BACKOFF;
        };
        let count = failures.entry(key(object)).or_insert(0);
        *count = count.saturating_add(1);
        let secs = 1u64
            .checked_shl(count.saturating_sub(1).min(16))
            .unwrap_or(u64::MAX);
        Duration::from_secs(secs).min(MAX_BACKOFF)
    }

    /// One reconcile of `object` by `controller`: timed and counted in metrics, and
    /// its failures forgotten when it succeeds.
    pub async fn measured(
        &self,
        controller: &'static str,
        object: &DynamicObject,
        reconcile: impl std::future::Future<Output = Result<Action, Error>>,
    ) -> Result<Action, Error> {
        let started = Instant::now();
        let result = reconcile.await;
        self.metrics.reconciled(controller, started.elapsed());
        match &result {
            Ok(_) => self.succeeded(object),
            Err(e) => self.metrics.failed(controller, e.metric_label()),
        }
        result
    }

    /// After a failed reconcile of `object`: say so and retry with exponential backoff.
    pub fn retry(&self, controller: &'static str, object: &DynamicObject, error: &Error) -> Action {
        let delay = self.backoff(object);
        tracing::warn!(
            controller,
            object = %object.name_any(),
            namespace = %object.namespace().unwrap_or_default(),
            %error,
            retry_in = ?delay,
            "reconcile failed"
        );
        Action::requeue(delay)
    }

    /// Forget the failures of `object` after a successful reconcile.
    pub fn succeeded(&self, object: &DynamicObject) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&key(object));
        }
    }
}

/// An optional API: its resource once found, else when it was last found missing.
#[derive(Default)]
struct Discovered {
    resource: Option<ApiResource>,
    missing_since: Option<Instant>,
}

fn key(object: &DynamicObject) -> String {
    format!(
        "{}/{}/{}",
        object.types.as_ref().map(|t| t.kind.as_str()).unwrap_or(""),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}
