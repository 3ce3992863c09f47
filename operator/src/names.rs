//! Names and labels of the objects rendered for a `TaxiiService`.

use std::collections::BTreeMap;

/// The field manager of every server-side apply (one for all objects).
pub const MANAGER: &str = "taxiway-operator";

/// Label every rendered object carries (`app.kubernetes.io/managed-by`).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", MANAGER);

/// Label selector matching every object the operator renders.
pub fn managed_selector() -> String {
    format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
}

/// The rendered config ConfigMap.
pub fn config_map(service: &str) -> String {
    format!("{service}-config")
}

/// The generated credentials Secret.
pub fn credentials_secret(service: &str) -> String {
    format!("{service}-credentials")
}

/// The generated Secret holding the TaxiiFeeds' credential files.
pub fn feeds_secret(service: &str) -> String {
    format!("{service}-feeds")
}

/// The PersistentVolumeClaim of the embedded store.
pub fn data_claim(service: &str) -> String {
    format!("{service}-data")
}

/// Deployment, Service and Ingress share the TaxiiService's name.
pub fn workload(service: &str) -> String {
    service.to_string()
}

/// Labels selecting a service's pods (stable for the Deployment's lifetime).
pub fn selector_labels(service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "taxiway-server".to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            service.to_string(),
        ),
    ])
}

/// The pods' label selector as a string (`status.selector`, for the `scale`
/// subresource).
pub fn selector(service: &str) -> String {
    selector_labels(service)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels of every rendered object.
pub fn labels(service: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(service);
    labels.insert("app.kubernetes.io/component".into(), "taxii-server".into());
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels
}
