//! Test scenarios: a TaxiiService with users, TLS and collections, and the Secrets it
//! references, as the API would return them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use serde_json::json;

use super::inputs::Inputs;
use crate::crd::{TaxiiCollection, TaxiiService};

/// The namespace of every fixture.
pub const NS: &str = "intel";

/// A stored TaxiiService named `feeds` with `spec`.
pub fn service(spec: serde_json::Value) -> TaxiiService {
    serde_json::from_value(json!({
        "apiVersion": "taxiway.dev/v1alpha1",
        "kind": "TaxiiService",
        "metadata": {
            "name": "feeds", "namespace": NS, "generation": 3,
            "uid": "0b9d2c1e-5f3a-4c6b-8d7e-1a2b3c4d5e6f"
        },
        "spec": spec,
    }))
    .expect("fixture TaxiiService")
}

/// The spec used by most tests: two users, TLS with a client CA, one API root.
pub fn full_spec() -> serde_json::Value {
    json!({
        "title": "ACME threat feeds",
        "contact": "soc@example.com",
        "versions": ["2.1"],
        "apiRoots": [{"path": "feeds", "title": "Threat feeds"}],
        "users": [
            {"secretName": "alice", "apiKeyKey": "api-key", "groups": ["soc"]},
            {"secretName": "bob", "locked": true}
        ],
        "tls": {"secretName": "feeds-tls", "clientCa": {"configMapName": "partners-ca"}},
        "storage": {"size": "5Gi", "storageClassName": "fast"},
        "replicas": 1,
        "service": {"type": "ClusterIP"},
        "ingress": {"host": "taxii.example.com", "className": "nginx", "path": "/", "tlsSecretName": "taxii-example-tls"}
    })
}

/// A stored TaxiiCollection of `feeds`, created `minute` minutes after the hour.
pub fn collection(name: &str, uid: &str, minute: u32, spec: serde_json::Value) -> TaxiiCollection {
    let mut spec = spec;
    spec["service"] = json!("feeds");
    serde_json::from_value(json!({
        "apiVersion": "taxiway.dev/v1alpha1",
        "kind": "TaxiiCollection",
        "metadata": {
            "name": name, "namespace": NS, "uid": uid, "generation": 1,
            "creationTimestamp": format!("2026-01-01T10:{minute:02}:00Z")
        },
        "spec": spec,
    }))
    .expect("fixture TaxiiCollection")
}

/// A Secret as the API returns it.
pub fn secret(name: &str, type_: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        type_: Some(type_.into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Inputs: the full spec, its Secrets and ConfigMap, and `collections`.
pub fn inputs(collections: Vec<TaxiiCollection>) -> Inputs {
    let secrets = [
        secret(
            "alice",
            "kubernetes.io/basic-auth",
            &[
                ("username", "alice"),
                ("password", "alice-pw"),
                ("api-key", "alice-key"),
            ],
        ),
        secret(
            "bob",
            "kubernetes.io/basic-auth",
            &[("username", "bob"), ("password", "bob-pw")],
        ),
        secret(
            "feeds-tls",
            "kubernetes.io/tls",
            &[("tls.crt", "CERT"), ("tls.key", "KEY")],
        ),
    ];
    let ca = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "partners-ca", "namespace": NS},
        "data": {"ca.crt": "CA"}
    }))
    .expect("fixture ConfigMap");
    Inputs {
        service: service(full_spec()),
        collections,
        feeds: Vec::new(),
        secrets: secrets
            .into_iter()
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
            .collect(),
        selected_secrets: vec![],
        config_maps: BTreeMap::from([("partners-ca".to_string(), ca)]),
        previous_credentials: None,
        previous_queries: BTreeMap::new(),
        previous_collections: Vec::new(),
        live: None,
        embedded_claim: false,
    }
}

/// A writable inbox and a query collection.
pub fn two_collections() -> Vec<TaxiiCollection> {
    vec![
        collection(
            "inbox",
            "e78eb331-c15a-463f-ba62-73b2a71a324a",
            1,
            json!({"writable": true, "access": {"write": ["group:soc"]}}),
        ),
        collection(
            "high-confidence-ipv4",
            "1032cbac-1483-48ad-b107-b3b6a12c65ad",
            2,
            json!({"title": "High-confidence IPv4", "query": "type:indicator and ioc_type:ipv4-addr and confidence:>=70"}),
        ),
    ]
}
