//! The Deployment running `taxiway-server`.
//!
//! Config, credentials and TLS are mounted as whole directories (never `subPath`: the
//! kubelet updates a mounted ConfigMap or Secret by swapping a `..data` symlink, which a
//! `subPath` mount never sees), so changes to them reach the running server, which
//! reloads them; only pod-spec changes roll the Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, HTTPGetAction, KeyToPath, LocalObjectReference,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecretProjection,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::super::inputs::Settings;
use super::super::validate::{shutdown_delay_secs, CaSource, TlsPlan, Validated};
use super::network::TAXII_PORT_NAME;
use crate::crd::{PostgresSpec, StorageType, TaxiiService};
use crate::names;
use crate::reconcile::apply::fingerprint;
use taxiway_model::config::ServerSettings;

/// Port the server listens on for TAXII inside the pod.
pub const TAXII_PORT: i32 = 9443;
/// Port of the admin listener (`/healthz`, `/readyz`, `/metrics`).
pub const ADMIN_PORT: i32 = 9090;
/// Where the config ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/taxiway/config";
/// Where the credentials Secret is mounted.
pub const CREDENTIALS_DIR: &str = "/etc/taxiway/credentials";
/// Where the generated feeds Secret (TaxiiFeeds' credentials, CAs, client
/// certificates) is mounted.
pub const FEEDS_DIR: &str = "/etc/taxiway/feeds";
/// Where TLS material is mounted.
pub const TLS_DIR: &str = "/etc/taxiway/tls";
/// Where the store's volume is mounted.
pub const DATA_DIR: &str = "/var/lib/taxiway";
/// Where the PostgreSQL Secret is mounted (`storage.type: postgres`).
pub const DATABASE_DIR: &str = "/var/run/taxiway/database";
/// Where the PostgreSQL CA bundle is mounted, when it comes from its own Secret.
pub const DATABASE_CA_DIR: &str = "/var/run/taxiway/database-ca";

/// Name of the admin port on the pod.
pub const ADMIN_PORT_NAME: &str = "admin";
/// Pod annotation: fingerprint of the `[server]` settings the pods started with.
pub const SERVER_SETTINGS: &str = "taxiway.dev/server-settings";
/// The distroless `nonroot` user: any unprivileged id works.
const RUN_AS: i64 = 65532;
/// Files readable by owner and group only (the pod's fsGroup reads them).
const SECRET_MODE: i32 = 0o440;

/// The server Deployment. On the embedded store: one replica at most, replaced with
/// `Recreate` so two pods never open the same store. On PostgreSQL: any number, rolled
/// one new pod at a time with none taken down before its replacement is ready, each
/// pod serving on for a few seconds after SIGTERM (`shutdown_delay_secs`) while the
/// Service stops sending it connections.
pub fn deployment(
    meta: ObjectMeta,
    service: &TaxiiService,
    validated: &Validated,
    settings: &Settings,
) -> Deployment {
    let name = service.name_any();
    let pod = &validated.pod;
    // The user's labels and annotations first: validation left out the operator's keys.
    let mut pod_labels = pod.labels.clone();
    pod_labels.extend(names::labels(&name));
    pod_labels.remove(names::MANAGED_BY.0);
    let mut annotations = pod.annotations.clone();
    annotations.extend([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".to_string(), ADMIN_PORT.to_string()),
        ("prometheus.io/path".to_string(), "/metrics".to_string()),
    ]);
    let spec = &service.spec;
    // The server reads `[server]` only at start: a change to those limits rolls the
    // pods (everything else in the ConfigMap is hot-reloaded).
    if let Some(l) = service
        .spec
        .limits
        .as_ref()
        .filter(|l| l.sets_server_settings())
    {
        // Only those settings: a hot-reloaded limit (page sizes) must not roll pods.
        let value = serde_json::json!([
            l.max_connections,
            l.max_requests_per_client,
            l.request_timeout_seconds,
            l.idle_timeout_seconds,
            l.shutdown_delay_seconds,
        ]);
        annotations.insert(SERVER_SETTINGS.to_string(), fingerprint(&value));
    }
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: Some(validated.replicas),
            selector: LabelSelector {
                match_labels: Some(names::selector_labels(&name)),
                ..LabelSelector::default()
            },
            strategy: Some(strategy(service, validated)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container(service, validated, settings)],
                    volumes: Some(volumes(service, validated.tls.as_ref())),
                    termination_grace_period_seconds: Some(termination_grace_period(service)),
                    node_selector: (!pod.node_selector.is_empty())
                        .then(|| pod.node_selector.clone()),
                    tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
                    affinity: spec.affinity.clone(),
                    topology_spread_constraints: (!spec.topology_spread_constraints.is_empty())
                        .then(|| spec.topology_spread_constraints.clone()),
                    priority_class_name: pod.priority_class_name.clone(),
                    service_account_name: pod.service_account_name.clone(),
                    image_pull_secrets: (!pod.image_pull_secrets.is_empty()).then(|| {
                        pod.image_pull_secrets
                            .iter()
                            .map(|name| LocalObjectReference { name: name.clone() })
                            .collect()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn postgres(service: &TaxiiService) -> Option<&PostgresSpec> {
    let storage = &service.spec.storage;
    match storage.type_ {
        StorageType::Postgres => storage.postgres.as_ref(),
        StorageType::Embedded => None,
    }
}

fn strategy(service: &TaxiiService, validated: &Validated) -> DeploymentStrategy {
    match service.spec.storage.type_ {
        // One pod at a time on the embedded store; and when the store itself changes,
        // the old pods stop before the new ones start.
        StorageType::Embedded => recreate(),
        StorageType::Postgres if validated.storage_switch => recreate(),
        StorageType::Postgres => DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        },
    }
}

fn recreate() -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    }
}

/// Seconds Kubernetes waits after SIGTERM before it kills a pod: the shutdown delay,
/// the server's drain of in-flight requests, and a margin.
fn termination_grace_period(service: &TaxiiService) -> i64 {
    let delay = i64::try_from(shutdown_delay_secs(service)).unwrap_or(i64::MAX / 2);
    let drain = i64::try_from(ServerSettings::default().drain_timeout_secs).unwrap_or(30);
    delay.saturating_add(drain).saturating_add(5)
}

fn container(service: &TaxiiService, validated: &Validated, settings: &Settings) -> Container {
    let spec = &service.spec;
    let mut args: Vec<String> = vec![
        "serve".into(),
        format!("--config-dir={CONFIG_DIR}"),
        format!("--credentials-dir={CREDENTIALS_DIR}"),
        format!("--data-dir={DATA_DIR}"),
    ];
    if validated.tls.is_some() {
        args.push(format!("--tls-dir={TLS_DIR}"));
    }
    args.extend([
        format!("--listen=0.0.0.0:{TAXII_PORT}"),
        format!("--admin-listen=0.0.0.0:{ADMIN_PORT}"),
        "--log-json".into(),
    ]);
    let mut mounts = vec![
        mount("config", CONFIG_DIR, true),
        mount("credentials", CREDENTIALS_DIR, true),
        mount("feeds", FEEDS_DIR, true),
        mount("data", DATA_DIR, false),
        mount("tmp", "/tmp", false),
    ];
    if validated.tls.is_some() {
        mounts.push(mount("tls", TLS_DIR, true));
    }
    if let Some(pg) = postgres(service) {
        mounts.push(mount("database", DATABASE_DIR, true));
        if pg.ca_secret_name.is_some() {
            mounts.push(mount("database-ca", DATABASE_CA_DIR, true));
        }
    }
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(ADMIN_PORT_NAME.into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    };
    Container {
        name: "taxiway-server".into(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| settings.server_image.clone()),
        ),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        args: Some(args),
        ports: Some(vec![
            ContainerPort {
                name: Some(TAXII_PORT_NAME.into()),
                container_port: TAXII_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(ADMIN_PORT_NAME.into()),
                container_port: ADMIN_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        // The store may take a while to open on a large data directory.
        startup_probe: Some(probe("/healthz", 2, 60)),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        readiness_probe: Some(probe("/readyz", 5, 2)),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_string());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), q("100m")),
            ("memory".to_string(), q("128Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), q("512Mi"))])),
        ..ResourceRequirements::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        // The API drops `readOnly: false`; sending it would look like drift forever.
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn volumes(taxii_service: &TaxiiService, tls: Option<&TlsPlan>) -> Vec<Volume> {
    let service = taxii_service.name_any();
    let service = service.as_str();
    let pg = postgres(taxii_service);
    // On PostgreSQL the data directory holds nothing that must survive the pod.
    let data = match pg {
        None => Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: names::data_claim(service),
                read_only: None,
            }),
            ..Volume::default()
        },
        Some(_) => Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    };
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::config_map(service),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "credentials".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names::credentials_secret(service)),
                default_mode: Some(SECRET_MODE),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "feeds".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names::feeds_secret(service)),
                default_mode: Some(SECRET_MODE),
                // Rendered with the configuration: a pod never waits for it.
                optional: Some(true),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        data,
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    if let Some(tls) = tls {
        volumes.push(Volume {
            name: "tls".into(),
            projected: Some(tls_projection(tls)),
            ..Volume::default()
        });
    }
    if let Some(pg) = pg {
        volumes.push(Volume {
            name: "database".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(pg.secret_name.clone()),
                default_mode: Some(SECRET_MODE),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        if let Some(ca) = &pg.ca_secret_name {
            volumes.push(Volume {
                name: "database-ca".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(ca.clone()),
                    default_mode: Some(SECRET_MODE),
                    items: Some(vec![KeyToPath {
                        key: pg.ca_key.clone(),
                        path: "ca.crt".into(),
                        mode: None,
                    }]),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
    }
    volumes
}

/// `tls.crt` and `tls.key` from the TLS Secret (not its `ca.crt`: cert-manager puts its
/// issuer there, which must not turn into a client CA) and `ca.crt` only from the
/// configured client CA. A projected volume updates atomically like a Secret volume.
fn tls_projection(tls: &TlsPlan) -> ProjectedVolumeSource {
    let item = |key: &str, path: &str| KeyToPath {
        key: key.into(),
        path: path.into(),
        mode: None,
    };
    let mut sources = vec![VolumeProjection {
        secret: Some(SecretProjection {
            name: tls.secret_name.clone(),
            items: Some(vec![item("tls.crt", "tls.crt"), item("tls.key", "tls.key")]),
            optional: None,
        }),
        ..VolumeProjection::default()
    }];
    match &tls.client_ca {
        Some(CaSource::Secret { name, key }) => sources.push(VolumeProjection {
            secret: Some(SecretProjection {
                name: name.clone(),
                items: Some(vec![item(key, "ca.crt")]),
                optional: None,
            }),
            ..VolumeProjection::default()
        }),
        Some(CaSource::ConfigMap { name, key }) => sources.push(VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: name.clone(),
                items: Some(vec![item(key, "ca.crt")]),
                optional: None,
            }),
            ..VolumeProjection::default()
        }),
        None => {}
    }
    ProjectedVolumeSource {
        default_mode: Some(SECRET_MODE),
        sources: Some(sources),
    }
}
