//! TLS: the certificate Secret and the optional client CA.

use super::users::has_key;
use super::{CaSource, Inputs, Problem, ProblemKind, TlsPlan, TLS};

pub(super) fn validate_tls(inputs: &Inputs, problems: &mut Vec<Problem>) -> Option<TlsPlan> {
    let tls = inputs.service.spec.tls.as_ref()?;
    let mut problem = |message: String| {
        problems.push(Problem {
            kind: ProblemKind::InvalidTls,
            message,
        })
    };
    match inputs.secrets.get(&tls.secret_name) {
        None => problem(format!(
            "spec.tls.secretName: Secret {} not found",
            tls.secret_name
        )),
        Some(secret) => {
            if secret.type_.as_deref() != Some(TLS) {
                problem(format!(
                    "spec.tls.secretName: Secret {} has type {}, expected {TLS}",
                    tls.secret_name,
                    secret.type_.as_deref().unwrap_or("Opaque")
                ));
            }
            for key in ["tls.crt", "tls.key"] {
                if !has_key(secret, key) {
                    problem(format!(
                        "spec.tls.secretName: Secret {} has no key {key}",
                        tls.secret_name
                    ));
                }
            }
        }
    }
    let client_ca = match &tls.client_ca {
        None => None,
        Some(ca) => match (&ca.secret_name, &ca.config_map_name) {
            (Some(name), None) => {
                match inputs.secrets.get(name) {
                    None => problem(format!("spec.tls.clientCa: Secret {name} not found")),
                    Some(s) if !has_key(s, &ca.key) => problem(format!(
                        "spec.tls.clientCa: Secret {name} has no key {}",
                        ca.key
                    )),
                    Some(_) => {}
                }
                Some(CaSource::Secret {
                    name: name.clone(),
                    key: ca.key.clone(),
                })
            }
            (None, Some(name)) => {
                let found = inputs.config_maps.get(name);
                let has = found.is_some_and(|cm| {
                    cm.data.as_ref().is_some_and(|d| d.contains_key(&ca.key))
                        || cm
                            .binary_data
                            .as_ref()
                            .is_some_and(|d| d.contains_key(&ca.key))
                });
                match found {
                    None => problem(format!("spec.tls.clientCa: ConfigMap {name} not found")),
                    Some(_) if !has => problem(format!(
                        "spec.tls.clientCa: ConfigMap {name} has no key {}",
                        ca.key
                    )),
                    Some(_) => {}
                }
                Some(CaSource::ConfigMap {
                    name: name.clone(),
                    key: ca.key.clone(),
                })
            }
            _ => {
                problem(
                    "spec.tls.clientCa: set exactly one of secretName and configMapName; client certificates are not verified"
                        .into(),
                );
                None
            }
        },
    };
    Some(TlsPlan {
        secret_name: tls.secret_name.clone(),
        client_ca,
    })
}
