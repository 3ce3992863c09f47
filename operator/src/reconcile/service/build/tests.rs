use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::json;
use taxiway_model::config::CONFIG_FILE;

use super::*;
use crate::credentials::{hash_users, Argon2Hasher, FILE_NAME};
use crate::reconcile::service::fixtures;
use crate::reconcile::service::inputs::Inputs;
use crate::reconcile::service::validate::{validate, ProblemKind};

fn desired_with(
    inputs: &Inputs,
    hasher: &Argon2Hasher,
    previous: Option<&CredentialsFile>,
) -> Desired {
    let settings = Settings::default();
    let validated = validate(inputs, &settings);
    let credentials = hash_users(&validated.users, previous, hasher).expect("hashes");
    build(&inputs.service, &validated, &credentials, &settings).expect("builds")
}

fn desired(inputs: &Inputs) -> Desired {
    desired_with(inputs, &Argon2Hasher::default(), None)
}

fn pod(d: &Desired) -> &PodSpec {
    d.deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec")
}

fn server(d: &Desired) -> &Container {
    &pod(d).containers[0]
}

fn config_text(d: &Desired) -> String {
    d.config_map
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|data| data.get(CONFIG_FILE))
        .cloned()
        .expect("taxiway.toml")
}

#[test]
fn the_rendered_config_is_one_the_server_accepts() {
    let d = desired(&fixtures::inputs(fixtures::two_collections()));
    let text = config_text(&d);
    let parsed = taxiway_model::config::parse(&text).expect("the server accepts it");
    assert_eq!(parsed.collections.len(), 2);
    assert!(parsed.collections.iter().any(|c| c.is_writable()));
    assert_eq!(parsed.config.service.title, "ACME threat feeds");
    for secret in ["alice-pw", "alice-key", "bob-pw", "KEY"] {
        assert!(!text.contains(secret), "{secret} leaked into the ConfigMap");
    }
}

#[test]
fn the_credentials_secret_holds_hashes_only() {
    let d = desired(&fixtures::inputs(vec![]));
    let bytes = &d.credentials.data.as_ref().expect("data")[FILE_NAME].0;
    let file = CredentialsFile::parse(bytes).expect("users file");
    let alice = file.user("alice").expect("alice");
    let verifier = Argon2Hasher::default();
    use crate::credentials::SecretHasher;
    assert!(verifier.verify("alice-pw", alice.password_hash.as_deref().expect("hash")));
    assert!(verifier.verify("alice-key", alice.api_key_hash.as_deref().expect("key")));
    assert!(file.user("bob").expect("bob").locked);
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains("alice-pw") && !text.contains("bob-pw"));
}

#[test]
fn every_object_is_owned_by_the_service_and_labelled() {
    let d = desired(&fixtures::inputs(vec![]));
    let metas = [
        &d.config_map.as_ref().expect("cm").metadata,
        &d.credentials.metadata,
        &d.data_claim.as_ref().expect("pvc").metadata,
        &d.service.metadata,
        &d.deployment.metadata,
        &d.ingress.as_ref().expect("ingress").metadata,
    ];
    for meta in metas {
        let owners = meta.owner_references.as_ref().expect("owners");
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "TaxiiService");
        assert_eq!(owners[0].name, "feeds");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(meta.namespace.as_deref(), Some(fixtures::NS));
        let labels = meta.labels.as_ref().expect("labels");
        assert_eq!(labels[names::MANAGED_BY.0], names::MANAGED_BY.1);
    }
    assert_eq!(
        d.config_map.expect("cm").metadata.name.as_deref(),
        Some("feeds-config")
    );
    assert_eq!(
        d.credentials.metadata.name.as_deref(),
        Some("feeds-credentials")
    );
    assert_eq!(
        d.data_claim.as_ref().expect("pvc").metadata.name.as_deref(),
        Some("feeds-data")
    );
}

#[test]
fn the_deployment_mounts_directories_and_runs_locked_down() {
    let d = desired(&fixtures::inputs(vec![]));
    let spec = d.deployment.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate")
    );
    let c = server(&d);
    let mounts = c.volume_mounts.as_ref().expect("mounts");
    assert!(mounts
        .iter()
        .all(|m| m.sub_path.is_none() && m.sub_path_expr.is_none()));
    let mounted = |path: &str| {
        mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("nothing at {path}"))
    };
    assert_eq!(mounted(CONFIG_DIR).name, "config");
    assert_eq!(mounted(CREDENTIALS_DIR).name, "credentials");
    assert_eq!(mounted(TLS_DIR).name, "tls");
    assert_eq!(mounted(DATA_DIR).read_only, None);
    assert_eq!(mounted(CONFIG_DIR).read_only, Some(true));
    let args = c.args.as_ref().expect("args");
    for arg in [
        "serve".to_string(),
        format!("--config-dir={CONFIG_DIR}"),
        format!("--credentials-dir={CREDENTIALS_DIR}"),
        format!("--tls-dir={TLS_DIR}"),
        format!("--data-dir={DATA_DIR}"),
        format!("--admin-listen=0.0.0.0:{ADMIN_PORT}"),
    ] {
        assert!(args.contains(&arg), "missing {arg} in {args:?}");
    }

    let sc = c
        .security_context
        .as_ref()
        .expect("container security context");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );
    let psc = pod(&d)
        .security_context
        .as_ref()
        .expect("pod security context");
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(pod(&d).automount_service_account_token, Some(false));

    for (probe, path) in [
        (&c.readiness_probe, "/readyz"),
        (&c.liveness_probe, "/healthz"),
        (&c.startup_probe, "/healthz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("http probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("admin".into()));
    }
    let admin = c
        .ports
        .as_ref()
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some("admin")))
        .expect("admin port");
    assert_eq!(admin.container_port, ADMIN_PORT);
    let resources = c.resources.as_ref().expect("resources");
    assert!(resources
        .requests
        .as_ref()
        .is_some_and(|r| r.contains_key("memory")));
    assert!(resources
        .limits
        .as_ref()
        .is_some_and(|r| r.contains_key("memory")));
}

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn tls_is_projected_without_the_issuers_ca_and_with_the_client_ca() {
    let d = desired(&fixtures::inputs(vec![]));
    let tls = pod(&d)
        .volumes
        .as_ref()
        .and_then(|v| v.iter().find(|v| v.name == "tls"))
        .and_then(|v| v.projected.as_ref())
        .expect("projected tls volume");
    let sources = tls.sources.as_ref().expect("sources");
    let secret = sources[0].secret.as_ref().expect("tls secret");
    assert_eq!(secret.name, "feeds-tls");
    let keys: Vec<_> = secret
        .items
        .iter()
        .flatten()
        .map(|i| (i.key.as_str(), i.path.as_str()))
        .collect();
    assert_eq!(keys, [("tls.crt", "tls.crt"), ("tls.key", "tls.key")]);
    let ca = sources[1].config_map.as_ref().expect("client CA");
    assert_eq!(ca.name, "partners-ca");
    assert_eq!(ca.items.as_ref().expect("items")[0].path, "ca.crt");
}

#[test]
fn service_pvc_and_ingress_follow_the_spec() {
    let d = desired(&fixtures::inputs(vec![]));
    let svc = d.service.spec.as_ref().expect("service spec");
    assert_eq!(svc.type_.as_deref(), Some("ClusterIP"));
    let port = &svc.ports.as_ref().expect("ports")[0];
    assert_eq!(port.port, 443);
    assert_eq!(port.target_port, Some(IntOrString::String("taxii".into())));
    assert_eq!(svc.selector, Some(names::selector_labels("feeds")));

    let pvc = d
        .data_claim
        .as_ref()
        .expect("pvc")
        .spec
        .as_ref()
        .expect("pvc spec");
    assert_eq!(pvc.storage_class_name.as_deref(), Some("fast"));
    let size = pvc
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(|r| r["storage"].0.clone());
    assert_eq!(size.as_deref(), Some("5Gi"));

    let ingress = d
        .ingress
        .as_ref()
        .and_then(|i| i.spec.as_ref())
        .expect("ingress");
    assert_eq!(ingress.ingress_class_name.as_deref(), Some("nginx"));
    let rule = &ingress.rules.as_ref().expect("rules")[0];
    assert_eq!(rule.host.as_deref(), Some("taxii.example.com"));
    let tls = &ingress.tls.as_ref().expect("tls")[0];
    assert_eq!(tls.secret_name.as_deref(), Some("taxii-example-tls"));
}

#[test]
fn a_collection_change_changes_only_the_config_map() {
    let hasher = Argon2Hasher::default();
    let before_inputs = fixtures::inputs(fixtures::two_collections());
    let before = desired_with(&before_inputs, &hasher, None);
    let previous =
        CredentialsFile::parse(&before.credentials.data.as_ref().expect("data")[FILE_NAME].0)
            .expect("users");

    let mut collections = fixtures::two_collections();
    collections[1].spec.query = Some("type:indicator and confidence:>=90".into());
    let after = desired_with(&fixtures::inputs(collections), &hasher, Some(&previous));

    assert_ne!(after.config_map, before.config_map);
    assert!(config_text(&after).contains("confidence:>=90"));
    assert_eq!(after.credentials, before.credentials);
    assert_eq!(after.deployment, before.deployment);
    assert_eq!(after.service, before.service);
    assert_eq!(after.data_claim, before.data_claim);
    assert_eq!(after.ingress, before.ingress);
}

#[test]
fn a_password_change_changes_only_the_credentials() {
    let hasher = Argon2Hasher::default();
    let inputs = fixtures::inputs(fixtures::two_collections());
    let before = desired_with(&inputs, &hasher, None);
    let previous =
        CredentialsFile::parse(&before.credentials.data.as_ref().expect("data")[FILE_NAME].0)
            .expect("users");

    let again = desired_with(&inputs, &hasher, Some(&previous));
    assert_eq!(
        again, before,
        "unchanged inputs must render identical objects"
    );

    let mut changed = fixtures::inputs(fixtures::two_collections());
    changed.secrets.insert(
        "bob".into(),
        fixtures::secret(
            "bob",
            "kubernetes.io/basic-auth",
            &[("username", "bob"), ("password", "new")],
        ),
    );
    let after = desired_with(&changed, &hasher, Some(&previous));
    assert_ne!(after.credentials, before.credentials);
    assert_eq!(after.config_map, before.config_map);
    assert_eq!(after.deployment, before.deployment);
}

#[test]
fn pod_spec_changes_change_the_deployment() {
    let inputs = fixtures::inputs(vec![]);
    let before = desired(&inputs);
    let mut changed = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["image"] = json!("registry.example.com/taxiway-server:2.0.0");
    changed.service = fixtures::service(spec);
    let after = desired(&changed);
    assert_ne!(after.deployment, before.deployment);
    assert_eq!(
        server(&after).image.as_deref(),
        Some("registry.example.com/taxiway-server:2.0.0")
    );
}

#[test]
fn without_tls_there_is_no_tls_volume_and_port_80() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec.as_object_mut().map(|s| s.remove("tls"));
    inputs.service = fixtures::service(spec);
    let d = desired(&inputs);
    assert!(pod(&d).volumes.iter().flatten().all(|v| v.name != "tls"));
    let args = server(&d).args.clone().unwrap_or_default();
    assert!(!args.iter().any(|a| a.starts_with("--tls-dir")));
    assert_eq!(
        d.service.spec.expect("spec").ports.expect("ports")[0].port,
        80
    );
}

#[test]
fn an_invalid_spec_renders_no_config_map() {
    let mut inputs = fixtures::inputs(fixtures::two_collections());
    let mut spec = fixtures::full_spec();
    spec["defaultApiRoot"] = json!("elsewhere");
    inputs.service = fixtures::service(spec);
    assert!(desired(&inputs).config_map.is_none());
}

fn on_postgres(replicas: i32, ca_secret: bool) -> Inputs {
    let mut spec = fixtures::full_spec();
    spec["replicas"] = json!(replicas);
    spec["storage"] = json!({
        "type": "postgres",
        "postgres": {"secretName": "feeds-db", "tls": "verify-full", "poolSize": 8}
    });
    if ca_secret {
        spec["storage"]["postgres"]["caSecretName"] = json!("db-ca");
    }
    let mut inputs = fixtures::inputs(fixtures::two_collections());
    inputs.service = fixtures::service(spec);
    for secret in [
        fixtures::secret(
            "feeds-db",
            "Opaque",
            &[("uri", "postgres://taxiway:s3cr3t-pw@db:5432/taxiway")],
        ),
        fixtures::secret("db-ca", "Opaque", &[("ca.crt", "PEM")]),
    ] {
        let name = secret.metadata.name.clone().unwrap_or_default();
        inputs.secrets.insert(name, secret);
    }
    inputs
}

#[test]
fn on_postgres_replicas_roll_one_at_a_time_without_a_claim() {
    let inputs = on_postgres(3, false);
    let validated = validate(&inputs, &Settings::default());
    assert_eq!(
        validated.problems,
        vec![],
        "three replicas are fine on PostgreSQL"
    );
    let d = desired(&inputs);
    let spec = d.deployment.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let strategy = spec.strategy.as_ref().expect("strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = strategy.rolling_update.as_ref().expect("rolling update");
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
    assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));
    assert!(d.data_claim.is_none(), "no PVC on PostgreSQL");
    let volumes = pod(&d).volumes.as_ref().expect("volumes");
    let data = volumes.iter().find(|v| v.name == "data").expect("data");
    assert!(data.empty_dir.is_some() && data.persistent_volume_claim.is_none());
    let db = volumes
        .iter()
        .find(|v| v.name == "database")
        .expect("database");
    assert_eq!(
        db.secret.as_ref().and_then(|s| s.secret_name.as_deref()),
        Some("feeds-db")
    );
    let mounts = server(&d).volume_mounts.as_ref().expect("mounts");
    assert!(mounts.iter().any(|m| m.name == "database"
        && m.mount_path == DATABASE_DIR
        && m.read_only == Some(true)));
    assert!(pod(&d)
        .termination_grace_period_seconds
        .is_some_and(|s| s > 30));
    let pdb = d.disruption_budget.as_ref().expect("PodDisruptionBudget");
    let pdb_spec = pdb.spec.as_ref().expect("pdb spec");
    assert_eq!(pdb_spec.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        pdb_spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone()),
        Some(crate::names::selector_labels("feeds"))
    );
}

#[test]
fn on_postgres_the_config_names_the_mounted_secret_never_its_contents() {
    let d = desired(&on_postgres(2, true));
    let text = config_text(&d);
    let parsed = taxiway_model::config::parse(&text).expect("the server accepts it");
    let store = &parsed.config.store;
    assert_eq!(store.backend, taxiway_model::config::StoreBackend::Postgres);
    let pg = store.postgres.as_ref().expect("[store.postgres]");
    assert_eq!(
        pg.secret_dir.as_deref(),
        Some(std::path::Path::new(DATABASE_DIR))
    );
    assert_eq!(pg.pool_size, 8);
    assert_eq!(
        pg.ca_file.as_deref(),
        Some(
            std::path::Path::new(DATABASE_CA_DIR)
                .join("ca.crt")
                .as_path()
        )
    );
    assert!(parsed.config.server.shutdown_delay_secs > 0);
    for secret in ["s3cr3t-pw", "postgres://"] {
        assert!(!text.contains(secret), "{secret} leaked into the ConfigMap");
    }
    let volumes = pod(&d).volumes.as_ref().expect("volumes");
    let ca = volumes
        .iter()
        .find(|v| v.name == "database-ca")
        .expect("ca volume");
    let items = ca
        .secret
        .as_ref()
        .and_then(|s| s.items.clone())
        .expect("items");
    assert_eq!(
        (items[0].key.as_str(), items[0].path.as_str()),
        ("ca.crt", "ca.crt")
    );
}

#[test]
fn one_replica_gets_no_disruption_budget_and_embedded_keeps_recreate() {
    assert!(desired(&on_postgres(1, false)).disruption_budget.is_none());
    let d = desired(&fixtures::inputs(vec![]));
    assert!(d.disruption_budget.is_none());
    let strategy = d.deployment.spec.as_ref().and_then(|s| s.strategy.clone());
    assert_eq!(strategy.and_then(|s| s.type_).as_deref(), Some("Recreate"));
    let text = config_text(&d);
    assert!(!text.contains("postgres"));
}

#[test]
fn a_missing_database_secret_is_reported() {
    let mut inputs = on_postgres(2, true);
    inputs.secrets.remove("feeds-db");
    inputs.secrets.remove("db-ca");
    let v = validate(&inputs, &Settings::default());
    let kinds: Vec<_> = v.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        vec![
            crate::reconcile::service::validate::ProblemKind::InvalidStorageSecret,
            crate::reconcile::service::validate::ProblemKind::InvalidStorageSecret
        ]
    );
    let mut spec = fixtures::full_spec();
    spec["storage"] = json!({"type": "postgres"});
    inputs.service = fixtures::service(spec);
    let v = validate(&inputs, &Settings::default());
    assert!(
        v.config.is_none(),
        "postgres without a database is not rendered"
    );
    assert!(
        v.problems
            .iter()
            .any(|p| p.message.contains("storage.postgres")),
        "{:?}",
        v.problems
    );
}

#[test]
fn connection_limits_reach_the_server_and_roll_the_pods() {
    let plain = desired(&fixtures::inputs(vec![]));
    let annotations = |d: &Desired| {
        d.deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()
    };
    assert!(!annotations(&plain).contains_key(workload::SERVER_SETTINGS));

    let mut spec = fixtures::full_spec();
    spec["limits"] = json!({"maxConnections": 200, "maxRequestsPerClient": 0,
                            "requestTimeoutSeconds": 30, "shutdownDelaySeconds": 7});
    let mut inputs = fixtures::inputs(vec![]);
    inputs.service = fixtures::service(spec.clone());
    let d = desired(&inputs);
    let parsed = taxiway_model::config::parse(&config_text(&d)).expect("accepted");
    let server = &parsed.config.server;
    assert_eq!(server.max_connections, 200);
    assert_eq!(server.max_requests_per_client, 0);
    assert_eq!(server.request_timeout_secs, 30);
    assert_eq!(server.shutdown_delay_secs, 7);
    let first = annotations(&d)[workload::SERVER_SETTINGS].clone();

    spec["limits"]["maxConnections"] = json!(300);
    inputs.service = fixtures::service(spec);
    let changed = annotations(&desired(&inputs))[workload::SERVER_SETTINGS].clone();
    assert_ne!(first, changed, "a [server] change changes the pod template");
}

#[test]
fn switching_the_store_stops_the_old_pods_first() {
    use crate::crd::StorageType;
    use crate::reconcile::service::inputs::LiveDeployment;
    let strategy_of = |inputs: &Inputs| {
        desired(inputs)
            .deployment
            .spec
            .and_then(|s| s.strategy)
            .and_then(|s| s.type_)
    };
    let mut inputs = on_postgres(3, false);
    let embedded = desired(&fixtures::inputs(vec![])).deployment;
    inputs.live = Some(LiveDeployment::of(&embedded));
    assert_eq!(
        inputs.live.and_then(|l| l.storage),
        Some(StorageType::Embedded)
    );
    assert_eq!(strategy_of(&inputs).as_deref(), Some("Recreate"));

    // Applied: the template is on PostgreSQL, but the old pod may still run.
    let mut switching = desired(&inputs).deployment;
    switching.metadata.generation = Some(2);
    switching.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
        observed_generation: Some(2),
        replicas: Some(1),
        updated_replicas: Some(0),
        ..Default::default()
    });
    inputs.live = Some(LiveDeployment::of(&switching));
    assert_eq!(inputs.live.map(|l| l.recreating), Some(true));
    assert_eq!(strategy_of(&inputs).as_deref(), Some("Recreate"));

    // Rolled out: rolling updates from now on.
    switching.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
        observed_generation: Some(2),
        replicas: Some(3),
        updated_replicas: Some(3),
        available_replicas: Some(3),
        ..Default::default()
    });
    inputs.live = Some(LiveDeployment::of(&switching));
    assert_eq!(
        inputs.live,
        Some(LiveDeployment {
            storage: Some(StorageType::Postgres),
            recreating: false
        })
    );
    assert_eq!(strategy_of(&inputs).as_deref(), Some("RollingUpdate"));
}

#[test]
fn the_grace_period_covers_the_shutdown_delay_and_the_drain() {
    let mut inputs = on_postgres(2, false);
    let grace = |d: &Desired| pod(d).termination_grace_period_seconds.unwrap_or_default();
    assert_eq!(grace(&desired(&inputs)), 5 + 30 + 5);
    let mut spec = inputs.service.spec.clone();
    spec.limits = Some(crate::crd::LimitsSpec {
        shutdown_delay_seconds: Some(60),
        ..Default::default()
    });
    inputs.service.spec = spec;
    let d = desired(&inputs);
    assert_eq!(grace(&d), 60 + 30 + 5);
    let parsed = taxiway_model::config::parse(&config_text(&d)).expect("accepted");
    assert_eq!(parsed.config.server.shutdown_delay_secs, 60);
}

#[test]
fn a_hot_reloaded_limit_does_not_roll_the_pods() {
    let annotation = |limits: serde_json::Value| {
        let mut spec = fixtures::full_spec();
        spec["limits"] = limits;
        let mut inputs = fixtures::inputs(vec![]);
        inputs.service = fixtures::service(spec);
        desired(&inputs)
            .deployment
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| a.get(workload::SERVER_SETTINGS).cloned())
    };
    let a = annotation(json!({"maxConnections": 100, "maxPageSize": 500}));
    let b = annotation(json!({"maxConnections": 100, "maxPageSize": 200}));
    let c = annotation(json!({"maxConnections": 100, "pageCacheBytes": 0}));
    assert!(a.is_some());
    assert_eq!(a, b);
    assert_eq!(a, c, "the page cache is resized on reload");
}

#[test]
fn the_page_cache_budget_is_rendered() {
    let mut spec = fixtures::full_spec();
    spec["limits"] = json!({"pageCacheBytes": 134217728});
    let mut inputs = fixtures::inputs(vec![]);
    inputs.service = fixtures::service(spec);
    let parsed = taxiway_model::config::parse(&config_text(&desired(&inputs))).expect("accepted");
    assert_eq!(parsed.config.limits.page_cache_bytes, 128 * 1024 * 1024);
    let default = taxiway_model::config::parse(&config_text(&desired(&fixtures::inputs(vec![]))))
        .expect("accepted");
    assert_eq!(default.config.limits.page_cache_bytes, 64 * 1024 * 1024);
}

fn with_network_policy(policy: serde_json::Value) -> Inputs {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["networkPolicy"] = policy;
    inputs.service = fixtures::service(spec);
    inputs
}

#[test]
fn the_network_policy_opens_the_taxii_port_to_from_and_the_admin_port_to_monitoring() {
    use k8s_openapi::api::networking::v1::NetworkPolicyIngressRule;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    let d = desired(&with_network_policy(json!({
        "enabled": true,
        "from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
            {"ipBlock": {"cidr": "192.0.2.0/24"}}
        ]
    })));
    let policy = d.network_policy.wanted().expect("a NetworkPolicy");
    assert_eq!(policy.metadata.name.as_deref(), Some("feeds"));
    let owners = policy.metadata.owner_references.as_ref().expect("owners");
    assert_eq!(owners[0].kind, "TaxiiService");
    assert_eq!(owners[0].controller, Some(true));
    let spec = policy.spec.as_ref().expect("spec");
    // It selects exactly the server pods.
    let pod_labels = d
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .expect("pod labels");
    let selector = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .expect("selector");
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_string()][..])
    );
    assert!(
        spec.egress.is_none(),
        "outgoing connections are not restricted"
    );
    let rules = spec.ingress.as_ref().expect("rules");
    assert_eq!(
        rules.len(),
        2,
        "the TAXII port and the admin port, nothing else"
    );
    let port_of = |rule: &NetworkPolicyIngressRule| {
        let ports = rule.ports.as_ref().expect("ports");
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
        ports[0].port.clone()
    };
    assert_eq!(port_of(&rules[0]), Some(IntOrString::Int(TAXII_PORT)));
    let from = rules[0].from.as_ref().expect("from");
    assert_eq!(from.len(), 2);
    assert_eq!(
        from[1].ip_block.as_ref().map(|b| b.cidr.as_str()),
        Some("192.0.2.0/24")
    );
    assert_eq!(port_of(&rules[1]), Some(IntOrString::Int(ADMIN_PORT)));
    let monitoring = rules[1].from.as_ref().expect("metrics from");
    assert_eq!(monitoring.len(), 1);
    let labels = monitoring[0]
        .namespace_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .expect("namespace selector");
    assert_eq!(
        labels
            .get(crate::crd::MONITORING_NAMESPACE_LABEL)
            .map(String::as_str),
        Some("true")
    );
    assert!(monitoring[0].pod_selector.is_none());
}

#[test]
fn the_network_policy_without_peers_opens_only_the_taxii_port_and_metrics_from_wins() {
    let d = desired(&with_network_policy(json!({
        "enabled": true,
        "metricsFrom": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}]
    })));
    let policy = d.network_policy.wanted().expect("a NetworkPolicy");
    let rules = policy
        .spec
        .as_ref()
        .and_then(|s| s.ingress.clone())
        .expect("rules");
    assert!(rules[0].from.is_none(), "the TAXII port from anywhere");
    let metrics = rules[1].from.as_ref().expect("metrics from");
    assert_eq!(metrics.len(), 1);
    assert!(metrics[0].pod_selector.is_some() && metrics[0].namespace_selector.is_none());
}

#[test]
fn a_network_policy_switched_off_is_unwanted_and_an_invalid_one_unchanged() {
    assert_eq!(
        desired(&fixtures::inputs(vec![])).network_policy,
        Optional::Unwanted
    );
    let off = desired(&with_network_policy(json!({"enabled": false})));
    assert_eq!(off.network_policy, Optional::Unwanted);
    let invalid = desired(&with_network_policy(json!({
        "enabled": true, "from": [{}]
    })));
    assert_eq!(invalid.network_policy, Optional::Unchanged);
    assert!(invalid.config_map.is_some(), "everything else is rendered");
}

fn with_pod_settings(settings: serde_json::Value) -> Inputs {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    for (key, value) in settings.as_object().expect("an object") {
        spec[key] = value.clone();
    }
    inputs.service = fixtures::service(spec);
    inputs
}

fn template_meta(d: &Desired) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    d.deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .expect("template metadata")
}

#[test]
fn placement_and_identity_reach_the_pod_template() {
    let inputs = with_pod_settings(json!({
        "nodeSelector": {"kubernetes.io/os": "linux", "node-role.example.com/intel": ""},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "intel", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "feeds"}}
            }
        }]}},
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "feeds"}}
        }],
        "podAnnotations": {"sidecar.istio.io/inject": "true"},
        "podLabels": {"team": "soc"},
        "priorityClassName": "intel-critical",
        "imagePullSecrets": [{"name": "registry-creds"}],
        "serviceAccountName": "taxii-server"
    }));
    let validated = validate(&inputs, &Settings::default());
    assert!(validated.problems.is_empty(), "{:?}", validated.problems);
    let d = desired(&inputs);
    let pod = serde_json::to_value(pod(&d)).expect("serialises");
    assert_eq!(
        pod["nodeSelector"],
        json!({"kubernetes.io/os": "linux", "node-role.example.com/intel": ""})
    );
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "intel", "effect": "NoSchedule"}])
    );
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
            ["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
    assert_eq!(pod["priorityClassName"], "intel-critical");
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry-creds"}]));
    assert_eq!(pod["serviceAccountName"], "taxii-server");
    // The server never calls the API: no token, whichever account it runs as.
    assert_eq!(pod["automountServiceAccountToken"], false);
    let meta = template_meta(&d);
    let labels = meta.labels.as_ref().expect("labels");
    assert_eq!(labels["team"], "soc");
    assert_eq!(labels["app.kubernetes.io/instance"], "feeds");
    let annotations = meta.annotations.as_ref().expect("annotations");
    assert_eq!(annotations["sidecar.istio.io/inject"], "true");
    assert_eq!(annotations["prometheus.io/scrape"], "true");
}

#[test]
fn without_pod_settings_the_pod_template_has_none() {
    let d = desired(&fixtures::inputs(vec![]));
    let pod = serde_json::to_value(pod(&d)).expect("serialises");
    for field in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "topologySpreadConstraints",
        "priorityClassName",
        "imagePullSecrets",
        "serviceAccountName",
    ] {
        assert!(pod.get(field).is_none(), "{field}: {}", pod[field]);
    }
}

#[test]
fn pod_settings_cannot_take_the_operators_keys_and_invalid_ones_are_left_out() {
    let inputs = with_pod_settings(json!({
        "podLabels": {
            "app.kubernetes.io/instance": "other",
            "app.kubernetes.io/name": "other",
            "taxiway.dev/x": "y",
            "bad key": "v",
            "tier": "not a value",
            "team": "soc"
        },
        "podAnnotations": {"prometheus.io/port": "1", "taxiway.dev/server-settings": "x", "ok.example/a": "b"},
        "nodeSelector": {"zone": "a b"},
        "priorityClassName": "Not_A_Name",
        "serviceAccountName": "UPPER",
        "imagePullSecrets": [{"name": ""}, {"name": "good"}]
    }));
    let validated = validate(&inputs, &Settings::default());
    let problems: Vec<&str> = validated
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::InvalidPodSettings)
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(problems.len(), 11, "{problems:#?}");
    for field in [
        "spec.podLabels[\"app.kubernetes.io/instance\"]",
        "spec.podLabels[\"bad key\"]",
        "spec.podAnnotations[\"prometheus.io/port\"]",
        "spec.nodeSelector[\"zone\"]",
        "spec.priorityClassName",
        "spec.serviceAccountName",
        "spec.imagePullSecrets[0].name",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(field)),
            "{field} in {problems:#?}"
        );
    }
    let d = desired(&inputs);
    let meta = template_meta(&d);
    let labels = meta.labels.as_ref().expect("labels");
    assert_eq!(labels["app.kubernetes.io/instance"], "feeds");
    assert_eq!(labels["app.kubernetes.io/name"], "taxiway-server");
    assert_eq!(labels["team"], "soc");
    assert!(!labels.contains_key("tier") && !labels.contains_key("taxiway.dev/x"));
    // The selector still selects the pods.
    let selector = d
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .expect("selector");
    assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let annotations = meta.annotations.as_ref().expect("annotations");
    assert_eq!(annotations["prometheus.io/port"], "9090");
    assert_eq!(annotations["ok.example/a"], "b");
    assert!(!annotations.contains_key("taxiway.dev/server-settings"));
    let pod = pod(&d);
    assert_eq!(pod.node_selector, None);
    assert_eq!(pod.priority_class_name, None);
    assert_eq!(pod.service_account_name, None);
    let secrets = pod.image_pull_secrets.as_ref().expect("secrets");
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].name, "good");
}

#[test]
fn a_pod_setting_change_rolls_the_pods() {
    let template = |settings: serde_json::Value| {
        serde_json::to_value(
            desired(&with_pod_settings(settings))
                .deployment
                .spec
                .expect("spec")
                .template,
        )
        .expect("serialises")
    };
    let plain = template(json!({}));
    for settings in [
        json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
        json!({"nodeSelector": {"disk": "ssd"}}),
        json!({"podAnnotations": {"mesh.example/inject": "true"}}),
        json!({"podLabels": {"team": "soc"}}),
        json!({"serviceAccountName": "taxii"}),
    ] {
        assert_ne!(template(settings.clone()), plain, "{settings}");
    }
}

fn with_gateway(gateway: serde_json::Value, ingress: bool) -> Inputs {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    if !ingress {
        spec.as_object_mut().expect("object").remove("ingress");
    }
    spec["gateway"] = gateway;
    inputs.service = fixtures::service(spec);
    inputs
}

#[test]
fn the_gateway_renders_an_http_route_to_the_service() {
    let inputs = with_gateway(
        json!({
            "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
            "hostnames": ["taxii.example.com"],
            "path": "/intel",
            "annotations": {"example.com/team": "soc"}
        }),
        false,
    );
    let validated = validate(&inputs, &Settings::default());
    assert!(validated.problems.is_empty(), "{:?}", validated.problems);
    assert_eq!(
        validated.urls.external.as_deref(),
        Some("https://taxii.example.com/intel")
    );
    let d = desired(&inputs);
    let route = d.http_route.wanted().expect("an HTTPRoute");
    let route = serde_json::to_value(route).expect("serialises");
    assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(route["kind"], "HTTPRoute");
    assert_eq!(route["metadata"]["name"], "feeds");
    assert_eq!(
        route["metadata"]["ownerReferences"][0]["kind"],
        "TaxiiService"
    );
    assert_eq!(
        route["metadata"]["annotations"],
        json!({"example.com/team": "soc"})
    );
    assert_eq!(
        route["spec"],
        json!({
            "parentRefs": [{
                "group": "gateway.networking.k8s.io", "kind": "Gateway",
                "name": "public", "namespace": "gateways", "sectionName": "https"
            }],
            "hostnames": ["taxii.example.com"],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/intel"}}],
                "backendRefs": [{"kind": "Service", "name": "feeds", "port": 443}]
            }]
        })
    );
    // The server is told the prefix, as with an Ingress.
    assert!(config_text(&d).contains("https://taxii.example.com/intel"));
}

#[test]
fn the_gateways_url_follows_its_scheme_and_yields_to_the_ingress_and_external_url() {
    let url = |gateway: serde_json::Value, ingress: bool| {
        validate(&with_gateway(gateway, ingress), &Settings::default())
            .urls
            .external
    };
    let parent = json!([{"name": "public"}]);
    assert_eq!(
        url(
            json!({"parentRefs": parent, "hostnames": ["a.example"], "scheme": "http"}),
            false
        )
        .as_deref(),
        Some("http://a.example")
    );
    assert_eq!(
        url(
            json!({"parentRefs": parent, "hostnames": ["a.example"]}),
            true
        )
        .as_deref(),
        Some("https://taxii.example.com")
    );
    // No host name: URLs follow the request's Host, as without an Ingress.
    assert_eq!(url(json!({"parentRefs": parent}), false), None);
}

#[test]
fn no_gateway_is_unwanted_and_an_invalid_or_unserved_one_unchanged() {
    let d = desired(&fixtures::inputs(vec![]));
    assert_eq!(d.http_route, Optional::Unwanted);

    let inputs = with_gateway(
        json!({"parentRefs": [{"name": "Public_GW"}], "hostnames": ["*.example.com", "UPPER"]}),
        false,
    );
    let validated = validate(&inputs, &Settings::default());
    let problems: Vec<&str> = validated
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::InvalidGateway)
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("spec.gateway.parentRefs[0].name"));
    assert!(problems[1].contains("wildcard"));
    assert!(problems[2].starts_with("spec.gateway.hostnames[1]"));
    assert_eq!(desired(&inputs).http_route, Optional::Unchanged);

    let inputs = with_gateway(json!({"parentRefs": [{"name": "public"}]}), false);
    let settings = Settings::default();
    let mut validated = validate(&inputs, &settings);
    crate::reconcile::service::validate::gateway_api_unavailable(&inputs.service, &mut validated);
    assert_eq!(validated.problems.len(), 1);
    assert_eq!(validated.problems[0].kind.reason(), "GatewayAPIUnavailable");
    assert!(validated.problems[0].message.contains("Gateway API CRDs"));
    let credentials = hash_users(&validated.users, None, &Argon2Hasher::default()).expect("hashes");
    let d = build(&inputs.service, &validated, &credentials, &settings).expect("builds");
    assert_eq!(d.http_route, Optional::Unchanged);
}

#[test]
fn the_gateway_example_renders_its_route() {
    let example = include_str!("../../../../../examples/k8s/taxiiservice-gateway.yaml");
    let mut value: serde_json::Value = serde_saphyr::from_str(example).expect("YAML");
    value["metadata"]["uid"] = json!("0b9d2c1e-5f3a-4c6b-8d7e-1a2b3c4d5e6f");
    let service: TaxiiService = serde_json::from_value(value).expect("a TaxiiService");
    let mut inputs = fixtures::inputs(vec![]);
    inputs.service = service;
    let validated = validate(&inputs, &Settings::default());
    assert!(
        !validated.gateway_unrenderable() && validated.warnings.is_empty(),
        "{:?} {:?}",
        validated.problems,
        validated.warnings
    );
    assert_eq!(
        validated.urls.external.as_deref(),
        Some("https://taxii.example.com/intel")
    );
    let d = desired(&inputs);
    let route = serde_json::to_value(d.http_route.wanted().expect("a route")).expect("JSON");
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "public");
    assert_eq!(route["spec"]["backendRefs"], serde_json::Value::Null);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["port"], 80);
}

fn with_monitoring(monitoring: serde_json::Value) -> Inputs {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["monitoring"] = monitoring;
    inputs.service = fixtures::service(spec);
    inputs
}

#[test]
fn monitoring_renders_a_pod_monitor_and_alerts_for_the_service() {
    let d = desired(&with_monitoring(json!({
        "podMonitor": true, "prometheusRule": true, "interval": "15s",
        "labels": {"release": "prometheus"}
    })));
    let monitor =
        serde_json::to_value(d.pod_monitor.wanted().expect("a PodMonitor")).expect("JSON");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "PodMonitor");
    assert_eq!(monitor["metadata"]["name"], "feeds");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "taxiway-operator"
    );
    assert_eq!(
        monitor["metadata"]["ownerReferences"][0]["kind"],
        "TaxiiService"
    );
    assert_eq!(
        monitor["spec"],
        json!({
            "selector": {"matchLabels": {
                "app.kubernetes.io/instance": "feeds", "app.kubernetes.io/name": "taxiway-server"
            }},
            "podMetricsEndpoints": [{"port": "admin", "path": "/metrics", "scheme": "http", "interval": "15s"}]
        })
    );
    // The port the PodMonitor names is the pod's admin port.
    let ports = server(&d).ports.clone().expect("ports");
    assert!(ports.iter().any(|p| p.name.as_deref() == Some("admin")));

    let rule =
        serde_json::to_value(d.prometheus_rule.wanted().expect("a PrometheusRule")).expect("JSON");
    assert_eq!(rule["kind"], "PrometheusRule");
    let group = &rule["spec"]["groups"][0];
    assert_eq!(group["name"], "taxiway.intel.feeds");
    let rules = group["rules"].as_array().expect("rules");
    let names: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(
        names,
        [
            "TaxiwayServerDown",
            "TaxiwayServerPodsNotReady",
            "TaxiwayServerErrors",
            "TaxiwayAuthFailuresSpike",
            "TaxiwayReloadFailing",
            "TaxiwayCertificateExpiringSoon",
            "TaxiwayRequestsLimited"
        ]
    );
    for r in rules {
        let expr = r["expr"].as_str().expect("expr");
        assert!(
            expr.contains(r#"job="intel/feeds""#) || expr.contains(r#"deployment="feeds""#),
            "{expr}"
        );
        assert!(r["labels"]["severity"].is_string());
        assert!(r["annotations"]["summary"].is_string());
    }
}

#[test]
fn monitoring_switched_off_is_unwanted_and_unserved_unchanged() {
    let d = desired(&fixtures::inputs(vec![]));
    assert_eq!(d.pod_monitor, Optional::Unwanted);
    assert_eq!(d.prometheus_rule, Optional::Unwanted);
    let d = desired(&with_monitoring(json!({"podMonitor": true})));
    assert!(d.pod_monitor.wanted().is_some());
    assert_eq!(d.prometheus_rule, Optional::Unwanted);

    let inputs = with_monitoring(json!({"podMonitor": true, "prometheusRule": true}));
    let settings = Settings::default();
    let mut validated = validate(&inputs, &settings);
    crate::reconcile::service::validate::monitoring_api_unavailable(
        &["PodMonitor", "PrometheusRule"],
        &mut validated,
    );
    assert_eq!(validated.problems.len(), 1);
    assert_eq!(
        validated.problems[0].kind.reason(),
        "MonitoringAPIUnavailable"
    );
    assert!(validated.waits_for_api());
    let credentials = hash_users(&validated.users, None, &Argon2Hasher::default()).expect("hashes");
    let d = build(&inputs.service, &validated, &credentials, &settings).expect("builds");
    assert_eq!(d.pod_monitor, Optional::Unchanged);
    assert_eq!(d.prometheus_rule, Optional::Unchanged);
}

#[test]
fn an_operator_in_the_cluster_may_reach_the_admin_port_for_feed_status() {
    use crate::reconcile::service::build::build;
    use crate::reconcile::service::validate::validate;

    let inputs = with_network_policy(json!({"enabled": true}));
    let settings = Settings {
        operator_namespace: Some("taxiway-system".into()),
        ..Settings::default()
    };
    let validated = validate(&inputs, &settings);
    let desired = build(
        &inputs.service,
        &validated,
        &crate::credentials::CredentialsFile::default(),
        &settings,
    )
    .expect("build");
    let policy = desired.network_policy.wanted().expect("a NetworkPolicy");
    let rules = policy
        .spec
        .as_ref()
        .and_then(|s| s.ingress.clone())
        .expect("rules");
    let admin_from = rules[1].from.clone().expect("admin peers");
    assert_eq!(
        admin_from.len(),
        2,
        "metricsFrom's default and the operator"
    );
    let operator = admin_from[1]
        .namespace_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .expect("namespace selector");
    assert_eq!(
        operator
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some("taxiway-system")
    );
    // Out of the cluster (no $POD_NAMESPACE): only metricsFrom.
    let outside = desired_policy_peers(&inputs);
    assert_eq!(outside, 1);
}

fn desired_policy_peers(inputs: &Inputs) -> usize {
    desired(inputs)
        .network_policy
        .wanted()
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.ingress.as_ref())
        .and_then(|r| r[1].from.as_ref())
        .map_or(0, Vec::len)
}
