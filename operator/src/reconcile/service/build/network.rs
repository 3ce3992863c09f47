//! The Service in front of the server pods, the optional Ingress, Gateway API
//! `HTTPRoute` and NetworkPolicy.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS, NetworkPolicy,
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::DynamicObject;
use kube::ResourceExt;
use serde_json::{json, Value};

use super::super::validate::Validated;
use super::workload::{ADMIN_PORT, TAXII_PORT};
use crate::crd::{
    GatewaySpec, IngressSpec, ServiceNetworkPolicy, TaxiiService, MONITORING_NAMESPACE_LABEL,
};
use crate::names;

/// Name of the TAXII port on the pod and the Service.
pub const TAXII_PORT_NAME: &str = "taxii";

/// The label naming a namespace, set by the API server on every namespace.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The Service: the TAXII port only (the admin port is for probes and Prometheus).
pub fn service(mut meta: ObjectMeta, service: &TaxiiService, validated: &Validated) -> Service {
    let exposure = &service.spec.service;
    if !exposure.annotations.is_empty() {
        meta.annotations = Some(exposure.annotations.clone());
    }
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(exposure.type_.as_str().into()),
            selector: Some(names::selector_labels(&service.name_any())),
            ports: Some(vec![ServicePort {
                name: Some(TAXII_PORT_NAME.into()),
                port: validated.port,
                target_port: Some(IntOrString::String(TAXII_PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Ingress routing `host` + `path` to the Service's TAXII port.
pub fn ingress(mut meta: ObjectMeta, service_name: &str, spec: &IngressSpec) -> Ingress {
    if !spec.annotations.is_empty() {
        meta.annotations = Some(spec.annotations.clone());
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: names::workload(service_name),
            port: Some(ServiceBackendPort {
                name: Some(TAXII_PORT_NAME.into()),
                number: None,
            }),
        }),
        resource: None,
    };
    Ingress {
        metadata: meta,
        spec: Some(K8sIngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(spec.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(spec.path.clone()),
                        path_type: "Prefix".into(),
                        backend,
                    }],
                }),
            }]),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(vec![spec.host.clone()]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            ..K8sIngressSpec::default()
        }),
        ..Ingress::default()
    }
}

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The `HTTPRoute` version rendered.
pub const HTTP_ROUTE_VERSION: &str = "v1";

/// The `HTTPRoute` attaching the Service's TAXII port to the Gateways of `spec`:
/// `hostnames`, and one rule matching the path prefix (not rewritten, as with the
/// Ingress: the server serves under the prefix of its external URL). The backend's
/// `group` is left to its default (`""`, the core group): an explicit empty string
/// is refused by some API servers' server-side apply.
pub fn http_route(
    mut meta: ObjectMeta,
    service_name: &str,
    spec: &GatewaySpec,
    port: i32,
) -> Result<DynamicObject, serde_json::Error> {
    if !spec.annotations.is_empty() {
        meta.annotations = Some(spec.annotations.clone());
    }
    let parent_refs: Vec<Value> = spec
        .parent_refs
        .iter()
        .map(|parent| {
            let mut reference = json!({
                "group": GATEWAY_GROUP,
                "kind": "Gateway",
                "name": parent.name,
            });
            if let Some(namespace) = &parent.namespace {
                reference["namespace"] = json!(namespace);
            }
            if let Some(section) = &parent.section_name {
                reference["sectionName"] = json!(section);
            }
            reference
        })
        .collect();
    let mut route_spec = json!({
        "parentRefs": parent_refs,
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": spec.path}}],
            "backendRefs": [{
                "kind": "Service",
                "name": names::workload(service_name),
                "port": port,
            }],
        }],
    });
    if !spec.hostnames.is_empty() {
        route_spec["hostnames"] = json!(spec.hostnames);
    }
    serde_json::from_value(json!({
        "apiVersion": format!("{GATEWAY_GROUP}/{HTTP_ROUTE_VERSION}"),
        "kind": "HTTPRoute",
        "metadata": meta,
        "spec": route_spec,
    }))
}

/// The NetworkPolicy of the server pods: ingress only, the TAXII port from
/// `spec.from` (anyone when empty), the admin port from `spec.metricsFrom` (namespaces
/// labelled as the monitoring namespace when empty) and from the operator's own
/// namespace when it runs in the cluster (it asks `GET /feeds` there for TaxiiFeeds'
/// status), nothing else. Ports are the pods' numbers, not names: every NetworkPolicy
/// implementation supports those.
pub fn network_policy(
    meta: ObjectMeta,
    service_name: &str,
    spec: &ServiceNetworkPolicy,
    operator_namespace: Option<&str>,
) -> NetworkPolicy {
    let port = |number: i32| {
        Some(vec![NetworkPolicyPort {
            protocol: Some("TCP".into()),
            port: Some(IntOrString::Int(number)),
            end_port: None,
        }])
    };
    let metrics_from = if spec.metrics_from.is_empty() {
        vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    MONITORING_NAMESPACE_LABEL.to_string(),
                    "true".to_string(),
                )])),
                match_expressions: None,
            }),
            ..NetworkPolicyPeer::default()
        }]
    } else {
        spec.metrics_from.clone()
    };
    let mut admin_from = metrics_from;
    if let Some(namespace) = operator_namespace {
        // The label every namespace carries from Kubernetes 1.21 on.
        admin_from.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    NAMESPACE_NAME_LABEL.to_string(),
                    namespace.to_string(),
                )])),
                match_expressions: None,
            }),
            ..NetworkPolicyPeer::default()
        });
    }
    NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(names::selector_labels(service_name)),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    ports: port(TAXII_PORT),
                    from: (!spec.from.is_empty()).then(|| spec.from.clone()),
                },
                NetworkPolicyIngressRule {
                    ports: port(ADMIN_PORT),
                    from: Some(admin_from),
                },
            ]),
            egress: None,
        }),
    }
}
