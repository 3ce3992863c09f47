//! The server pods' placement and identity (`nodeSelector`, `podLabels`,
//! `podAnnotations`, `priorityClassName`, `serviceAccountName`, `imagePullSecrets`):
//! what the API server would refuse, and the operator's own labels and annotations,
//! are left out and reported, so one bad entry cannot fail the whole apply or break the
//! Deployment's selector.

use std::collections::BTreeMap;

use super::{Inputs, Problem, ProblemKind};

/// Label keys the operator sets on the server pods (the selector among them).
pub const RESERVED_LABELS: [&str; 4] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
];

/// Annotation keys the operator sets on the server pods.
pub const RESERVED_ANNOTATIONS: [&str; 3] = [
    "prometheus.io/scrape",
    "prometheus.io/port",
    "prometheus.io/path",
];

/// The operator's own key prefix, reserved in labels and annotations.
const RESERVED_PREFIX: &str = "taxiway.dev/";

/// The accepted pod settings of the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSettings {
    /// Extra pod labels.
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    pub annotations: BTreeMap<String, String>,
    /// The pod's `nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// The pod's `priorityClassName`.
    pub priority_class_name: Option<String>,
    /// The pod's `serviceAccountName`.
    pub service_account_name: Option<String>,
    /// Names of the pod's `imagePullSecrets`.
    pub image_pull_secrets: Vec<String>,
}

/// The pod settings to render; problems for everything left out.
pub(super) fn validate_pod(inputs: &Inputs, problems: &mut Vec<Problem>) -> PodSettings {
    let spec = &inputs.service.spec;
    let mut report = |message: String| {
        problems.push(Problem {
            kind: ProblemKind::InvalidPodSettings,
            message: format!("{message}; it is left out of the pods"),
        })
    };
    let mut settings = PodSettings::default();
    for (key, value) in &spec.pod_labels {
        let field = format!("spec.podLabels[{key:?}]");
        match check_label(key, value).and_then(|()| not_reserved(key, &RESERVED_LABELS)) {
            Ok(()) => {
                settings.labels.insert(key.clone(), value.clone());
            }
            Err(e) => report(format!("{field}: {e}")),
        }
    }
    for (key, value) in &spec.pod_annotations {
        let field = format!("spec.podAnnotations[{key:?}]");
        match qualified_name(key).and_then(|()| not_reserved(key, &RESERVED_ANNOTATIONS)) {
            Ok(()) => {
                settings.annotations.insert(key.clone(), value.clone());
            }
            Err(e) => report(format!("{field}: {e}")),
        }
    }
    for (key, value) in &spec.node_selector {
        match check_label(key, value) {
            Ok(()) => {
                settings.node_selector.insert(key.clone(), value.clone());
            }
            Err(e) => report(format!("spec.nodeSelector[{key:?}]: {e}")),
        }
    }
    let mut object_name = |field: &str, name: &Option<String>| match name {
        Some(name) => match dns_subdomain(name) {
            Ok(()) => Some(name.clone()),
            Err(e) => {
                report(format!("spec.{field} {name:?}: {e}"));
                None
            }
        },
        None => None,
    };
    settings.priority_class_name = object_name("priorityClassName", &spec.priority_class_name);
    settings.service_account_name = object_name("serviceAccountName", &spec.service_account_name);
    for (i, secret) in spec.image_pull_secrets.iter().enumerate() {
        match dns_subdomain(&secret.name) {
            Ok(()) => settings.image_pull_secrets.push(secret.name.clone()),
            Err(e) => report(format!(
                "spec.imagePullSecrets[{i}].name {:?}: {e}",
                secret.name
            )),
        }
    }
    settings
}

fn not_reserved(key: &str, reserved: &[&str]) -> Result<(), String> {
    if reserved.contains(&key) || key.starts_with(RESERVED_PREFIX) {
        return Err("the operator sets this key itself".into());
    }
    Ok(())
}

/// A label: a qualified-name key and a value of at most 63 characters, empty or
/// alphanumeric at both ends with `-`, `_` and `.` between.
fn check_label(key: &str, value: &str) -> Result<(), String> {
    qualified_name(key)?;
    label_value(value)
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_` or `.`, beginning and
/// ending with a letter or digit.
pub fn label_value(value: &str) -> Result<(), String> {
    if !value.is_empty() && !name_part(value) {
        return Err(format!(
            "the value {value:?} is not a valid label value (at most 63 letters, digits, \
             '-', '_' or '.', beginning and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain, the name at
/// most 63 letters, digits, `-`, `_` or `.`, beginning and ending alphanumeric.
pub fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        dns_subdomain(prefix).map_err(|e| format!("the key's prefix {prefix:?} {e}"))?;
    }
    if name.is_empty() || !name_part(name) {
        return Err(format!(
            "the key {key:?} is not a valid qualified name ([prefix/]name, the name at most \
             63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn name_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    text.len() <= 63
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS subdomain (RFC 1123): at most 253 lowercase letters, digits, `-` and `.`,
/// beginning and ending alphanumeric.
pub fn dns_subdomain(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = name.len() <= 253
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err("is not a DNS subdomain (lowercase letters, digits, '-' and '.')".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_as_the_api_server_would() {
        for good in [
            "team",
            "example.com/team",
            "a.b-c/x_y.z",
            "sidecar.istio.io/inject",
        ] {
            assert_eq!(qualified_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/x",
            "Example.com/x",
            "a/",
            "-x",
            "x-",
            "a/b/c",
            &"x".repeat(64),
        ] {
            assert!(qualified_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_label("tier", ""), Ok(()));
        assert_eq!(check_label("tier", "back_end.1"), Ok(()));
        assert!(check_label("tier", "back end").is_err());
        assert!(check_label("tier", "-x").is_err());
    }

    #[test]
    fn the_operators_keys_are_reserved() {
        assert!(not_reserved("app.kubernetes.io/instance", &RESERVED_LABELS).is_err());
        assert!(not_reserved("taxiway.dev/anything", &RESERVED_LABELS).is_err());
        assert!(not_reserved("prometheus.io/port", &RESERVED_ANNOTATIONS).is_err());
        assert_eq!(
            not_reserved("app.kubernetes.io/part-of", &RESERVED_LABELS),
            Ok(())
        );
    }
}
