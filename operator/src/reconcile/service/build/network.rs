//! The Service in front of the server pods and the optional Ingress.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::super::validate::Validated;
use crate::crd::{IngressSpec, TaxiiService};
use crate::names;

/// Name of the TAXII port on the pod and the Service.
pub const TAXII_PORT_NAME: &str = "taxii";

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
