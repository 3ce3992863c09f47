//! Storage: the replica count the store can serve, the PostgreSQL Secrets, and the
//! embedded store left behind by a switch to PostgreSQL.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::users::has_key;
use super::{Inputs, Problem, ProblemKind, Warning};
use crate::crd::{PostgresSpec, StorageType};

/// Warning reason: on PostgreSQL with the embedded store's claim still present.
pub const EMBEDDED_STORE_NOT_MIGRATED: &str = "EmbeddedStoreNotMigrated";

/// On PostgreSQL while the embedded store's claim is still there: the operator does not
/// copy the embedded store into PostgreSQL, so say how (until the claim is deleted).
pub(super) fn storage_warnings(inputs: &Inputs) -> Vec<Warning> {
    let service = &inputs.service;
    if service.spec.storage.type_ != StorageType::Postgres || !inputs.embedded_claim {
        return vec![];
    }
    let claim = crate::names::data_claim(&service.name_any());
    vec![Warning {
        reason: EMBEDDED_STORE_NOT_MIGRATED,
        message: format!(
            "storage.type is postgres but the embedded store's PersistentVolumeClaim {claim} \
             is still here: the operator does not copy its objects into PostgreSQL. To keep \
             them, set spec.replicas to 0, run `taxiway-server migrate` in a Job mounting \
             {claim} (docs/scale-out.md, \"Migrating on Kubernetes\"), then restore \
             spec.replicas; delete {claim} once satisfied (this warning goes with it)"
        ),
    }]
}

/// The replicas to run, reporting a count the storage cannot serve.
pub(super) fn validate_replicas(inputs: &Inputs, problems: &mut Vec<Problem>) -> i32 {
    let spec = &inputs.service.spec;
    match spec.storage.type_ {
        StorageType::Embedded if spec.replicas > 1 => {
            problems.push(Problem {
                kind: ProblemKind::UnsupportedReplicas,
                message: format!(
                    "spec.replicas: the embedded store serves one replica, got {}; running 1 \
                     (storage.type: postgres serves any number)",
                    spec.replicas
                ),
            });
            1
        }
        _ => spec.replicas.max(0),
    }
}

/// Check the PostgreSQL Secrets exist and hold what the server reads (keys only: the
/// operator never looks at the values).
pub(super) fn validate_database(inputs: &Inputs, problems: &mut Vec<Problem>) {
    let storage = &inputs.service.spec.storage;
    if storage.type_ != StorageType::Postgres {
        return;
    }
    // A missing `postgres` block is reported by the server's validator (InvalidSpec).
    let Some(pg) = &storage.postgres else {
        return;
    };
    for message in database_problems(pg, |name| inputs.secrets.get(name)) {
        problems.push(Problem {
            kind: ProblemKind::InvalidStorageSecret,
            message,
        });
    }
}

fn database_problems<'a>(
    pg: &PostgresSpec,
    secret: impl Fn(&str) -> Option<&'a Secret>,
) -> Vec<String> {
    let mut problems = vec![];
    match secret(&pg.secret_name) {
        None => problems.push(format!(
            "spec.storage.postgres.secretName: Secret {} not found",
            pg.secret_name
        )),
        Some(s) => {
            let url = ["uri", "url"].iter().any(|k| has_key(s, k));
            let user = ["username", "user"].iter().any(|k| has_key(s, k));
            let parts = has_key(s, "host") && user && has_key(s, "password");
            if !url && !parts {
                problems.push(format!(
                    "spec.storage.postgres.secretName: Secret {} has neither a key uri (or url) \
                     nor the keys host, username (or user) and password",
                    pg.secret_name
                ));
            }
        }
    }
    if let Some(name) = &pg.ca_secret_name {
        match secret(name) {
            None => problems.push(format!(
                "spec.storage.postgres.caSecretName: Secret {name} not found"
            )),
            Some(s) if !has_key(s, &pg.ca_key) => problems.push(format!(
                "spec.storage.postgres.caSecretName: Secret {name} has no key {}",
                pg.ca_key
            )),
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;
    use crate::crd::PostgresTlsMode;

    fn secret(keys: &[&str]) -> Secret {
        Secret {
            data: Some(
                keys.iter()
                    .map(|k| (k.to_string(), ByteString(b"x".to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    fn spec(ca: Option<&str>) -> PostgresSpec {
        PostgresSpec {
            secret_name: "db".into(),
            ca_secret_name: ca.map(str::to_string),
            ca_key: "ca.crt".into(),
            tls: PostgresTlsMode::VerifyFull,
            pool_size: None,
        }
    }

    #[test]
    fn a_url_or_the_parts_of_one_are_enough() {
        for keys in [
            &["uri"][..],
            &["url"],
            &["host", "username", "password"],
            &["host", "user", "password", "port", "dbname"],
        ] {
            let s = secret(keys);
            assert_eq!(
                database_problems(&spec(None), |_| Some(&s)),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn missing_secrets_and_keys_are_named() {
        let problems = database_problems(&spec(Some("db-ca")), |_| None);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("Secret db not found"));
        assert!(problems[1].contains("caSecretName: Secret db-ca not found"));
        let partial = secret(&["host", "password"]);
        let problems = database_problems(&spec(None), |_| Some(&partial));
        assert!(problems[0].contains("neither a key uri"), "{problems:?}");
        let no_ca = secret(&["uri"]);
        let problems = database_problems(&spec(Some("db-ca")), |_| Some(&no_ca));
        assert_eq!(
            problems,
            vec!["spec.storage.postgres.caSecretName: Secret db-ca has no key ca.crt".to_string()]
        );
    }
}
