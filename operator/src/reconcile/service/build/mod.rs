//! Build: the desired objects for a validated TaxiiService. Pure: no client.

mod config;
mod disruption;
mod monitoring;
mod network;
mod storage;
mod workload;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::DynamicObject;
use kube::{Resource, ResourceExt};

use super::inputs::Settings;
use super::validate::Validated;
use crate::crd::{StorageType, TaxiiService};
use crate::credentials::CredentialsFile;
use crate::names;

pub use monitoring::{MONITORING_GROUP, MONITORING_VERSION};
pub use network::{GATEWAY_GROUP, HTTP_ROUTE_VERSION};
pub use workload::{
    ADMIN_PORT, CONFIG_DIR, CREDENTIALS_DIR, DATABASE_CA_DIR, DATABASE_DIR, DATA_DIR, FEEDS_DIR,
    TAXII_PORT, TLS_DIR,
};

/// Why the objects could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The TaxiiService lacks a field every stored object has.
    #[error("the TaxiiService has no {0}")]
    Missing(&'static str),
    /// An object could not be rendered.
    #[error("cannot render the {kind}: {message}")]
    Object {
        /// Which kind.
        kind: &'static str,
        /// Why.
        message: String,
    },
    /// A file could not be rendered.
    #[error("cannot render {file}: {message}")]
    Render {
        /// Which file.
        file: &'static str,
        /// Why.
        message: String,
    },
}

/// Everything a TaxiiService renders to.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The config ConfigMap; `None` when the spec is invalid (the live one is kept).
    pub config_map: Option<ConfigMap>,
    /// The generated credentials Secret.
    pub credentials: Secret,
    /// The generated feeds Secret (the TaxiiFeeds' credential files), rendered with the
    /// ConfigMap: `None` when the spec is invalid (the live one is kept, as the
    /// configuration naming its files is).
    pub feeds_secret: Option<Secret>,
    /// The PVC of the embedded store; `None` on PostgreSQL (an existing claim is kept:
    /// it may hold data to migrate).
    pub data_claim: Option<PersistentVolumeClaim>,
    /// The Service.
    pub service: Service,
    /// The Deployment.
    pub deployment: Deployment,
    /// The Ingress, when configured.
    pub ingress: Option<Ingress>,
    /// The PodDisruptionBudget, with several replicas on PostgreSQL.
    pub disruption_budget: Option<PodDisruptionBudget>,
    /// The NetworkPolicy of `spec.networkPolicy`.
    pub network_policy: Optional<NetworkPolicy>,
    /// The Gateway API `HTTPRoute` of `spec.gateway`.
    pub http_route: Optional<DynamicObject>,
    /// The prometheus-operator `PodMonitor` of `spec.monitoring`.
    pub pod_monitor: Optional<DynamicObject>,
    /// The prometheus-operator `PrometheusRule` of `spec.monitoring`.
    pub prometheus_rule: Optional<DynamicObject>,
}

/// What becomes of an object the spec may or may not ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum Optional<T> {
    /// Wanted as it is here.
    Wanted(T),
    /// Not wanted: deleted if the TaxiiService owns one.
    Unwanted,
    /// Its settings are invalid: the live one, if any, is left as it is.
    Unchanged,
}

impl<T> Optional<T> {
    /// The wanted object, if any.
    pub fn wanted(&self) -> Option<&T> {
        match self {
            Optional::Wanted(object) => Some(object),
            _ => None,
        }
    }
}

/// Build every object of `service` from its validation and hashed credentials.
pub fn build(
    service: &TaxiiService,
    validated: &Validated,
    credentials: &CredentialsFile,
    settings: &Settings,
) -> Result<Desired, BuildError> {
    let owner = service
        .controller_owner_ref(&())
        .ok_or(BuildError::Missing("metadata.uid"))?;
    let namespace = service
        .namespace()
        .ok_or(BuildError::Missing("metadata.namespace"))?;
    let name = service.name_any();
    let meta = |object_name: String| ObjectMeta {
        name: Some(object_name),
        namespace: Some(namespace.clone()),
        labels: Some(names::labels(&name)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    let config_map = match &validated.config {
        Some(config) => Some(config::config_map(
            meta(names::config_map(&name)),
            config,
            &namespace,
            &name,
        )?),
        None => None,
    };
    let render_error = |kind: &'static str| {
        move |e: serde_json::Error| BuildError::Object {
            kind,
            message: e.to_string(),
        }
    };
    let monitoring = service.spec.monitoring.as_ref();
    let pod_monitor = match monitoring.filter(|m| m.pod_monitor) {
        None => Optional::Unwanted,
        Some(_) if validated.monitoring_unrenderable() => Optional::Unchanged,
        Some(m) => Optional::Wanted(
            monitoring::pod_monitor(meta(names::workload(&name)), &name, m)
                .map_err(render_error("PodMonitor"))?,
        ),
    };
    let prometheus_rule = match monitoring.filter(|m| m.prometheus_rule) {
        None => Optional::Unwanted,
        Some(_) if validated.monitoring_unrenderable() => Optional::Unchanged,
        Some(m) => Optional::Wanted(
            monitoring::prometheus_rule(meta(names::workload(&name)), &namespace, &name, m)
                .map_err(render_error("PrometheusRule"))?,
        ),
    };
    Ok(Desired {
        pod_monitor,
        prometheus_rule,
        config_map,
        credentials: config::credentials_secret(
            meta(names::credentials_secret(&name)),
            credentials,
        )?,
        feeds_secret: validated.config.as_ref().map(|_| {
            config::feeds_secret(meta(names::feeds_secret(&name)), &validated.feeds.files)
        }),
        data_claim: (service.spec.storage.type_ == StorageType::Embedded)
            .then(|| storage::data_claim(meta(names::data_claim(&name)), &service.spec.storage)),
        service: network::service(meta(names::workload(&name)), service, validated),
        deployment: workload::deployment(
            meta(names::workload(&name)),
            service,
            validated,
            settings,
        ),
        ingress: service
            .spec
            .ingress
            .as_ref()
            .map(|ingress| network::ingress(meta(names::workload(&name)), &name, ingress)),
        disruption_budget: disruption::disruption_budget(
            meta(names::workload(&name)),
            service,
            &name,
            validated.replicas,
        ),
        network_policy: match service.spec.network_policy.as_ref().filter(|p| p.enabled) {
            None => Optional::Unwanted,
            Some(_) if validated.network_policy_invalid() => Optional::Unchanged,
            Some(policy) => Optional::Wanted(network::network_policy(
                meta(names::workload(&name)),
                &name,
                policy,
                settings.operator_namespace.as_deref(),
            )),
        },
        http_route: match &service.spec.gateway {
            None => Optional::Unwanted,
            Some(_) if validated.gateway_unrenderable() => Optional::Unchanged,
            Some(gateway) => Optional::Wanted(
                network::http_route(meta(names::workload(&name)), &name, gateway, validated.port)
                    .map_err(|e| BuildError::Object {
                    kind: "HTTPRoute",
                    message: e.to_string(),
                })?,
            ),
        },
    })
}

/// The owner reference every rendered object carries.
pub fn owner_of(service: &TaxiiService) -> Option<OwnerReference> {
    service.controller_owner_ref(&())
}

#[cfg(test)]
mod tests;
