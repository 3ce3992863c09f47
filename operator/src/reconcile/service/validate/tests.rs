use serde_json::json;
use taxiway_model::query::Query;

use super::*;
use crate::reconcile::service::fixtures::{self, collection, secret};

fn validated(inputs: &Inputs) -> Validated {
    validate(inputs, &Settings::default())
}

fn verdict<'a>(v: &'a Validated, name: &str) -> &'a CollectionVerdict {
    v.collections
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no verdict for {name}"))
}

fn kinds(v: &Validated) -> Vec<ProblemKind> {
    v.problems.iter().map(|p| p.kind).collect()
}

#[test]
fn a_complete_service_validates_cleanly() {
    let v = validated(&fixtures::inputs(fixtures::two_collections()));
    assert_eq!(v.problems, vec![]);
    let config = v.config.as_ref().expect("config");
    assert_eq!(config.collections.len(), 2);
    assert_eq!(v.accepted(), 2);
    assert_eq!(v.replicas, 1);
    assert_eq!(v.port, 443);
    assert_eq!(
        config.service.external_url.as_deref(),
        Some("https://taxii.example.com")
    );
    assert_eq!(v.urls.in_cluster, "https://feeds.intel.svc.cluster.local");
    let inbox = verdict(&v, "inbox");
    assert_eq!(inbox.query, QueryVerdict::Writable);
    assert_eq!(
        inbox.url.as_deref(),
        Some("https://taxii.example.com/feeds/collections/e78eb331-c15a-463f-ba62-73b2a71a324a/")
    );
    assert_eq!(
        verdict(&v, "high-confidence-ipv4").query,
        QueryVerdict::Valid
    );
    let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(v.users[0].api_key.as_deref(), Some("alice-key"));
    assert!(v.users[1].locked);
    assert_eq!(
        v.tls,
        Some(TlsPlan {
            secret_name: "feeds-tls".into(),
            client_ca: Some(CaSource::ConfigMap {
                name: "partners-ca".into(),
                key: "ca.crt".into()
            }),
        })
    );
}

#[test]
fn title_defaults_to_the_name_and_api_root_to_the_first() {
    let v = validated(&fixtures::inputs(fixtures::two_collections()));
    let config = v.config.expect("config");
    let inbox = config
        .collections
        .iter()
        .find(|c| c.id == "e78eb331-c15a-463f-ba62-73b2a71a324a")
        .expect("inbox");
    assert_eq!(inbox.title, "inbox");
    assert_eq!(inbox.api_root, "feeds");
    assert_eq!(inbox.access.write, ["group:soc"]);
}

#[test]
fn a_pinned_id_wins_over_the_uid() {
    let pinned = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b";
    let c = collection(
        "pinned",
        "7c1e0f5a-3b2d-4e6f-8a9b-0c1d2e3f4a5b",
        1,
        json!({"id": pinned, "writable": true}),
    );
    let v = validated(&fixtures::inputs(vec![c]));
    assert_eq!(verdict(&v, "pinned").id.as_deref(), Some(pinned));
    assert_eq!(v.config.expect("config").collections[0].id, pinned);
}

#[test]
fn an_invalid_query_is_reported_with_the_parsers_message() {
    let bad = "type:indicator and (confidence:>=";
    let c = collection(
        "broken",
        "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
        3,
        json!({"query": bad}),
    );
    let mut collections = fixtures::two_collections();
    collections.push(c);
    let v = validated(&fixtures::inputs(collections));
    let broken = verdict(&v, "broken");
    // Whatever the server's parser says is what the operator reports.
    match Query::parse(bad) {
        Err(e) => {
            assert_eq!(broken.query, QueryVerdict::Invalid(e.to_string()));
            let rejection = broken.rejection.as_ref().expect("rejected");
            assert_eq!(rejection.reason, "InvalidQuery");
            assert!(
                rejection.message.contains(&e.to_string()),
                "{}",
                rejection.message
            );
            assert_eq!(v.accepted(), 2);
            assert_eq!(kinds(&v), [ProblemKind::RejectedCollections]);
        }
        Ok(_) => assert_eq!(broken.query, QueryVerdict::Valid),
    }
}

#[test]
fn an_invalid_query_edit_keeps_the_last_valid_query_serving() {
    let id = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
    let bad = "type:malware and (name:";
    let mut collections = fixtures::two_collections();
    collections.push(collection("edited", id, 3, json!({"query": bad})));
    let mut inputs = fixtures::inputs(collections);
    inputs
        .previous_queries
        .insert(id.to_string(), "type:malware".to_string());
    let v = validated(&inputs);
    let edited = verdict(&v, "edited");
    assert!(matches!(edited.query, QueryVerdict::Invalid(_)));
    assert_eq!(edited.rejection, None);
    assert_eq!(edited.previous_query.as_deref(), Some("type:malware"));
    assert!(edited.url.as_deref().is_some_and(|u| u.contains(id)));
    let config = v.config.expect("config");
    let served = config
        .collections
        .iter()
        .find(|c| c.id == id)
        .expect("still served");
    assert_eq!(served.query.as_deref(), Some("type:malware"));
    assert_eq!(v.problems, vec![]);
}

#[test]
fn an_invalid_query_without_a_valid_predecessor_is_rejected() {
    let id = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
    let mut collections = fixtures::two_collections();
    collections.push(collection("edited", id, 3, json!({"query": "name:("})));
    let mut inputs = fixtures::inputs(collections);
    // A previous query that no longer parses either is never resurrected.
    inputs
        .previous_queries
        .insert(id.to_string(), "type:(".to_string());
    let v = validated(&inputs);
    let edited = verdict(&v, "edited");
    assert_eq!(edited.previous_query, None);
    assert_eq!(
        edited.rejection.as_ref().map(|r| r.reason),
        Some("InvalidQuery")
    );
}

#[test]
fn the_younger_of_two_same_titles_is_rejected_and_the_older_keeps_serving() {
    let older = collection(
        "older",
        "11111111-1111-4111-8111-111111111111",
        1,
        json!({"title": "IOCs", "writable": true}),
    );
    let younger = collection(
        "younger",
        "22222222-2222-4222-8222-222222222222",
        5,
        json!({"title": "IOCs", "query": "type:indicator"}),
    );
    // Input order must not matter: creation time decides.
    let v = validated(&fixtures::inputs(vec![younger, older]));
    assert!(verdict(&v, "older").rejection.is_none());
    let rejection = verdict(&v, "younger").rejection.clone().expect("rejected");
    assert_eq!(rejection.reason, "Invalid");
    assert!(
        rejection.message.starts_with("spec.title"),
        "{}",
        rejection.message
    );
    assert!(
        rejection.message.contains("duplicate title"),
        "{}",
        rejection.message
    );
    assert_eq!(
        v.problems,
        vec![Problem {
            kind: ProblemKind::RejectedCollections,
            message: "collections not served: younger".into()
        }]
    );
}

#[test]
fn query_and_writable_together_or_neither_are_rejected() {
    let both = collection(
        "both",
        "33333333-3333-4333-8333-333333333333",
        1,
        json!({"query": "type:indicator", "writable": true}),
    );
    let neither = collection(
        "neither",
        "44444444-4444-4444-8444-444444444444",
        2,
        json!({}),
    );
    let v = validated(&fixtures::inputs(vec![both, neither]));
    assert!(verdict(&v, "both")
        .rejection
        .as_ref()
        .is_some_and(|r| r.message.contains("not both")));
    assert_eq!(verdict(&v, "neither").query, QueryVerdict::Missing);
    assert!(verdict(&v, "neither").rejection.is_some());
    assert_eq!(v.accepted(), 0);
}

#[test]
fn an_unknown_api_root_is_named_in_the_collections_terms() {
    let c = collection(
        "lost",
        "55555555-5555-4555-8555-555555555555",
        1,
        json!({"apiRoot": "nowhere", "writable": true}),
    );
    let v = validated(&fixtures::inputs(vec![c]));
    let rejection = verdict(&v, "lost").rejection.clone().expect("rejected");
    assert!(
        rejection.message.starts_with("spec.apiRoot:"),
        "{}",
        rejection.message
    );
    assert!(verdict(&v, "lost").url.is_none());
}

#[test]
fn write_access_on_a_query_collection_is_rejected() {
    let c = collection(
        "view",
        "66666666-6666-4666-8666-666666666666",
        1,
        json!({"query": "type:indicator", "access": {"write": ["alice"]}}),
    );
    let v = validated(&fixtures::inputs(vec![c]));
    let rejection = verdict(&v, "view").rejection.clone().expect("rejected");
    assert!(
        rejection.message.starts_with("spec.access.write"),
        "{}",
        rejection.message
    );
}

#[test]
fn broken_user_secrets_are_reported_and_do_not_affect_other_users() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["users"] = json!([
        {"secretName": "alice", "apiKeyKey": "api-key"},
        {"secretName": "missing"},
        {"secretName": "opaque"},
        {"secretName": "no-password"},
        {"secretName": "no-api-key", "apiKeyKey": "api-key"},
        {"secretName": "alice-again"},
        {"secretName": "bob"}
    ]);
    inputs.service = fixtures::service(spec);
    for s in [
        secret("opaque", "Opaque", &[("username", "o"), ("password", "p")]),
        secret("no-password", BASIC_AUTH, &[("username", "np")]),
        secret(
            "no-api-key",
            BASIC_AUTH,
            &[("username", "nk"), ("password", "p")],
        ),
        secret(
            "alice-again",
            BASIC_AUTH,
            &[("username", "alice"), ("password", "x")],
        ),
    ] {
        inputs
            .secrets
            .insert(s.metadata.name.clone().unwrap_or_default(), s);
    }
    let v = validated(&inputs);
    let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    let messages: Vec<_> = v.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "spec.users[1]: Secret missing not found; the user cannot sign in",
            "spec.users[2]: Secret opaque has type Opaque, expected kubernetes.io/basic-auth; the user cannot sign in",
            "spec.users[3]: Secret no-password has no key password; the user cannot sign in",
            "spec.users[4]: Secret no-api-key has no key api-key; the user cannot sign in",
            "spec.users[5]: Secret alice-again username alice is already used by another user; the user cannot sign in",
        ]
    );
    assert!(v
        .problems
        .iter()
        .all(|p| p.kind == ProblemKind::InvalidUserSecret));
}

#[test]
fn too_many_replicas_run_one_and_say_so() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["replicas"] = json!(3);
    inputs.service = fixtures::service(spec);
    let v = validated(&inputs);
    assert_eq!(v.replicas, 1);
    assert_eq!(kinds(&v), [ProblemKind::UnsupportedReplicas]);
    assert!(v.problems[0].message.contains("got 3"));
}

#[test]
fn an_unusable_tls_secret_is_reported_but_tls_is_never_dropped() {
    let mut inputs = fixtures::inputs(vec![]);
    inputs.secrets.remove("feeds-tls");
    let v = validated(&inputs);
    assert_eq!(kinds(&v), [ProblemKind::InvalidTls]);
    assert!(v.tls.is_some());
    assert_eq!(v.port, 443);

    inputs.secrets.insert(
        "feeds-tls".into(),
        secret("feeds-tls", "Opaque", &[("tls.crt", "C")]),
    );
    let v = validated(&inputs);
    let messages: Vec<_> = v.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "spec.tls.secretName: Secret feeds-tls has type Opaque, expected kubernetes.io/tls",
            "spec.tls.secretName: Secret feeds-tls has no key tls.key",
        ]
    );
}

#[test]
fn a_missing_client_ca_is_reported() {
    let mut inputs = fixtures::inputs(vec![]);
    inputs.config_maps.clear();
    let v = validated(&inputs);
    assert_eq!(
        v.problems,
        vec![Problem {
            kind: ProblemKind::InvalidTls,
            message: "spec.tls.clientCa: ConfigMap partners-ca not found".into()
        }]
    );
}

#[test]
fn an_invalid_service_spec_keeps_the_old_config_and_holds_collections() {
    let mut inputs = fixtures::inputs(fixtures::two_collections());
    let mut spec = fixtures::full_spec();
    spec["defaultApiRoot"] = json!("elsewhere");
    inputs.service = fixtures::service(spec);
    let v = validated(&inputs);
    assert!(v.config.is_none());
    assert_eq!(kinds(&v), [ProblemKind::InvalidSpec]);
    assert!(
        v.problems[0].message.starts_with("spec.defaultApiRoot:"),
        "{}",
        v.problems[0].message
    );
    assert!(v.collections.iter().all(|c| c
        .rejection
        .as_ref()
        .is_some_and(|r| r.reason == "ServiceInvalid")));
}

#[test]
fn without_tls_or_ingress_urls_are_plain_http_in_the_cluster() {
    let mut inputs = fixtures::inputs(fixtures::two_collections());
    let mut spec = fixtures::full_spec();
    spec.as_object_mut().map(|s| {
        s.remove("tls");
        s.remove("ingress")
    });
    inputs.service = fixtures::service(spec);
    let v = validated(&inputs);
    assert_eq!(v.port, 80);
    assert!(v.tls.is_none());
    assert_eq!(v.urls.external, None);
    assert_eq!(
        verdict(&v, "inbox").url.as_deref(),
        Some("http://feeds.intel.svc.cluster.local/feeds/collections/e78eb331-c15a-463f-ba62-73b2a71a324a/")
    );
    assert_eq!(v.config.expect("config").service.external_url, None);
}

#[test]
fn auth_settings_and_trusted_proxies_reach_the_config() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["trustedProxies"] = json!(["10.0.0.0/8"]);
    spec["auth"] = json!({"maxFailuresPerUser": 3, "lockoutSeconds": 60, "clientCertUser": "san"});
    inputs.service = fixtures::service(spec);
    let v = validated(&inputs);
    assert_eq!(v.problems, vec![]);
    let config = v.config.expect("config");
    assert_eq!(config.service.trusted_proxies, ["10.0.0.0/8"]);
    assert_eq!(config.auth.max_failures_per_user, 3);
    assert_eq!(
        config.auth.max_failures_per_address, 30,
        "server default kept"
    );
    assert_eq!(config.auth.lockout_secs.get(), 60);
    assert_eq!(
        config.auth.client_cert_user,
        taxiway_model::config::ClientCertUser::San
    );
}

#[test]
fn a_bad_trusted_proxy_is_named_in_the_specs_terms() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["trustedProxies"] = json!(["not-an-address"]);
    inputs.service = fixtures::service(spec);
    let v = validated(&inputs);
    assert_eq!(kinds(&v), [ProblemKind::InvalidSpec]);
    assert!(
        v.problems[0].message.starts_with("spec.trustedProxies"),
        "{}",
        v.problems[0].message
    );
}

#[test]
fn user_names_and_groups_the_server_refuses_are_reported() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["users"] = json!([
        {"secretName": "alice", "groups": ["two words"]},
        {"secretName": "bob"}
    ]);
    inputs.service = fixtures::service(spec);
    let v = validated(&inputs);
    let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["bob"]);
    assert!(
        v.problems[0]
            .message
            .contains("groups[0]: must be non-empty with no spaces"),
        "{}",
        v.problems[0].message
    );
}

#[test]
fn an_api_key_only_secret_is_a_user_without_a_password() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["users"] = json!([{"secretName": "bot", "apiKeyKey": "api-key"}]);
    inputs.service = fixtures::service(spec);
    inputs.secrets.insert(
        "bot".into(),
        secret("bot", BASIC_AUTH, &[("username", "bot"), ("api-key", "k")]),
    );
    let v = validated(&inputs);
    assert_eq!(v.problems, vec![]);
    assert_eq!(v.users[0].password, None);
    assert_eq!(v.users[0].api_key.as_deref(), Some("k"));
}

#[test]
fn an_ingress_without_trusted_proxies_is_a_warning_not_a_problem() {
    let v = validated(&fixtures::inputs(vec![]));
    assert_eq!(v.problems, vec![]);
    assert_eq!(v.warnings.len(), 1);
    assert_eq!(v.warnings[0].reason, INGRESS_WITHOUT_TRUSTED_PROXIES);
    assert!(
        v.warnings[0].message.contains("spec.trustedProxies"),
        "{}",
        v.warnings[0].message
    );

    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["trustedProxies"] = json!(["10.244.0.0/16"]);
    inputs.service = fixtures::service(spec);
    assert_eq!(validated(&inputs).warnings, vec![]);

    let mut spec = fixtures::full_spec();
    spec.as_object_mut().map(|s| s.remove("ingress"));
    inputs.service = fixtures::service(spec);
    assert_eq!(
        validated(&inputs).warnings,
        vec![],
        "no Ingress, no warning"
    );
}

#[test]
fn a_network_policy_peer_the_api_would_refuse_is_reported() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["networkPolicy"] = json!({
        "enabled": true,
        "from": [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}],
        "metricsFrom": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]
    });
    inputs.service = fixtures::service(spec.clone());
    let v = validated(&inputs);
    assert_eq!(kinds(&v), [ProblemKind::InvalidNetworkPolicy]);
    assert!(
        v.problems[0]
            .message
            .starts_with("spec.networkPolicy.metricsFrom[0]: ipBlock.cidr"),
        "{}",
        v.problems[0].message
    );
    assert!(v.network_policy_invalid());
    assert!(v.config.is_some(), "the rest is served as usual");

    // Switched off, its peers do not matter.
    spec["networkPolicy"]["enabled"] = json!(false);
    inputs.service = fixtures::service(spec);
    assert_eq!(validated(&inputs).problems, vec![]);
}

#[test]
fn an_image_outside_the_allow_list_rejects_the_whole_service() {
    let settings = Settings {
        allowed_image_prefixes: vec!["ghcr.io/acme/".into()],
        ..Settings::default()
    };
    let mut inputs = fixtures::inputs(fixtures::two_collections());
    let v = validate(&inputs, &settings);
    assert!(!v.rejected, "no spec.image: the operator's own image");
    assert_eq!(v.problems, vec![]);

    let mut spec = fixtures::full_spec();
    spec["image"] = json!("ghcr.io/acme/taxiway-server:2.0");
    inputs.service = fixtures::service(spec.clone());
    assert!(!validate(&inputs, &settings).rejected);

    spec["image"] = json!("docker.io/miner/xmrig:latest");
    inputs.service = fixtures::service(spec);
    let v = validate(&inputs, &settings);
    assert!(v.rejected);
    assert_eq!(kinds(&v), [ProblemKind::ImageNotAllowed]);
    assert!(
        v.problems[0]
            .message
            .contains("docker.io/miner/xmrig:latest")
            && v.problems[0].message.contains("ghcr.io/acme/"),
        "{}",
        v.problems[0].message
    );
    for c in &v.collections {
        let r = c.rejection.as_ref().expect("not served");
        assert_eq!(r.reason, "ServiceInvalid");
        assert!(r.message.contains("image is not allowed"), "{}", r.message);
        assert!(c.url.is_none());
    }
    assert!(validate(&inputs, &Settings::default()).problems.is_empty());
}

#[test]
fn query_collections_draw_from_named_taxii_collections_and_warn_when_wider() {
    let collections = vec![
        collection(
            "inbox",
            "e78eb331-c15a-463f-ba62-73b2a71a324a",
            1,
            json!({"writable": true, "access": {"read": ["group:soc"], "write": ["group:soc"]}}),
        ),
        // Created before its source: writable collections are admitted first anyway.
        collection(
            "published",
            "1032cbac-1483-48ad-b107-b3b6a12c65ad",
            0,
            json!({"query": "type:indicator", "sources": ["inbox"],
                   "access": {"read": ["group:siem"]}}),
        ),
        collection(
            "defaulted",
            "2032cbac-1483-48ad-b107-b3b6a12c65ad",
            2,
            json!({"query": "type:indicator", "access": {"read": ["group:siem"]}}),
        ),
        collection(
            "dangling",
            "3032cbac-1483-48ad-b107-b3b6a12c65ad",
            3,
            json!({"query": "type:indicator", "sources": ["no-such-inbox"]}),
        ),
    ];
    let v = validated(&fixtures::inputs(collections));
    let config = v.config.as_ref().expect("config");
    let published = config
        .collections
        .iter()
        .find(|c| c.id == "1032cbac-1483-48ad-b107-b3b6a12c65ad")
        .expect("served");
    assert_eq!(
        published.sources,
        Some(vec!["e78eb331-c15a-463f-ba62-73b2a71a324a".to_string()]),
        "a TaxiiCollection name becomes its collection id in the server config"
    );
    let p = verdict(&v, "published");
    assert!(p.rejection.is_none(), "{:?}", p.rejection);
    assert_eq!(p.sources, vec!["inbox".to_string()]);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("readable more widely")),
        "{:?}",
        p.warnings
    );
    let d = verdict(&v, "defaulted");
    assert!(d.sources.is_empty());
    assert!(
        d.warnings.iter().any(|w| w.contains("does not draw from")),
        "{:?}",
        d.warnings
    );
    let rejection = verdict(&v, "dangling").rejection.clone().expect("rejected");
    assert!(
        rejection.message.starts_with("spec.sources"),
        "{}",
        rejection.message
    );
}

#[test]
fn a_switch_to_postgres_with_the_embedded_claim_kept_warns_how_to_migrate() {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["trustedProxies"] = json!(["10.244.0.0/16"]);
    spec["storage"] = json!({
        "type": "postgres",
        "postgres": {"secretName": "feeds-db", "tls": "disable"}
    });
    inputs.service = fixtures::service(spec.clone());
    inputs.secrets.insert(
        "feeds-db".into(),
        secret("feeds-db", "Opaque", &[("uri", "postgres://u:p@db/taxii")]),
    );
    assert_eq!(validated(&inputs).warnings, vec![], "no claim, no warning");

    inputs.embedded_claim = true;
    let v = validated(&inputs);
    assert_eq!(v.problems, vec![], "a warning, not a problem");
    assert_eq!(v.warnings.len(), 1);
    assert_eq!(v.warnings[0].reason, EMBEDDED_STORE_NOT_MIGRATED);
    let message = &v.warnings[0].message;
    for part in [
        "feeds-data",
        "taxiway-server migrate",
        "docs/scale-out.md",
        "spec.replicas",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }

    spec["storage"] = json!({"type": "embedded"});
    inputs.service = fixtures::service(spec);
    assert_eq!(
        validated(&inputs).warnings,
        vec![],
        "the embedded store's own claim is no leftover"
    );
}

/// A Secret `spec.userSelector` selects (label `taxiway.dev/user: "true"`), with
/// annotations.
fn selected(
    name: &str,
    type_: &str,
    data: &[(&str, &str)],
    annotations: &[(&str, &str)],
) -> k8s_openapi::api::core::v1::Secret {
    let mut s = secret(name, type_, data);
    s.metadata.labels = Some([("taxiway.dev/user".to_string(), "true".to_string())].into());
    s.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    s
}

fn with_selector(
    selector: serde_json::Value,
    selected: Vec<k8s_openapi::api::core::v1::Secret>,
) -> Inputs {
    let mut inputs = fixtures::inputs(vec![]);
    let mut spec = fixtures::full_spec();
    spec["userSelector"] = selector;
    inputs.service = fixtures::service(spec);
    inputs.selected_secrets = selected;
    inputs
}

fn user_selector() -> serde_json::Value {
    json!({"matchLabels": {"taxiway.dev/user": "true"}})
}

#[test]
fn selected_secrets_are_users_with_their_annotations() {
    let mut unlabelled = secret(
        "unlabelled",
        BASIC_AUTH,
        &[("username", "u"), ("password", "p")],
    );
    unlabelled.metadata.labels =
        Some([("taxiway.dev/user".to_string(), "false".to_string())].into());
    let inputs = with_selector(
        user_selector(),
        vec![
            selected(
                "carol",
                BASIC_AUTH,
                &[("username", "carol"), ("password", "carol-pw")],
                &[
                    (GROUPS_ANNOTATION, " soc, cti,,soc "),
                    (LOCKED_ANNOTATION, "true"),
                ],
            ),
            selected(
                "dave",
                BASIC_AUTH,
                &[("username", "dave"), ("password", "dave-pw")],
                &[(DISABLED_ANNOTATION, "True"), (LOCKED_ANNOTATION, "false")],
            ),
            selected(
                "erin",
                BASIC_AUTH,
                &[("username", "erin-bot"), (API_KEY_KEY, "erin-key")],
                &[],
            ),
            selected("notes", "Opaque", &[], &[]),
            selected("registry", "kubernetes.io/dockerconfigjson", &[], &[]),
            // Named in spec.users: that entry's user (not a conflict with itself).
            selected(
                "alice",
                BASIC_AUTH,
                &[("username", "alice"), ("password", "alice-pw")],
                &[(LOCKED_ANNOTATION, "true")],
            ),
            // Listed by a broader selector than the spec's: not selected.
            unlabelled,
        ],
    );
    let v = validated(&inputs);
    assert_eq!(v.problems, vec![]);
    let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave", "erin-bot"]);
    assert!(!v.users[0].locked, "alice's settings come from spec.users");
    let carol = &v.users[2];
    assert_eq!(carol.groups, ["soc", "cti"]);
    assert!(carol.locked && !carol.disabled);
    assert_eq!(carol.password.as_deref(), Some("carol-pw"));
    let dave = &v.users[3];
    assert!(dave.disabled && !dave.locked);
    let erin = &v.users[4];
    assert_eq!(erin.password, None);
    assert_eq!(erin.api_key.as_deref(), Some("erin-key"));
    assert_eq!(
        v.user_selector,
        Some(SelectorReport {
            users: 3,
            refused: 0,
            ignored: vec!["notes".into(), "registry".into()],
        })
    );
    assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
    let ignored = v
        .warnings
        .iter()
        .find(|w| w.reason == IGNORED_USER_SECRETS)
        .expect("a warning about the ignored Secrets");
    assert!(
        ignored.message.starts_with(
            "spec.userSelector matches 2 Secrets not of type kubernetes.io/basic-auth, ignored: notes, registry"
        ),
        "{}",
        ignored.message
    );

    // The credentials file the server mounts: hashes, flags and groups.
    let hasher = crate::credentials::Argon2Hasher::default();
    let file = crate::credentials::hash_users(&v.users, None, &hasher).expect("hashes");
    let text = String::from_utf8(file.render().expect("renders")).expect("utf-8");
    let loaded = taxiway_model::auth::Credentials::parse(&text).expect("the server loads it");
    assert_eq!(loaded.len(), 5);
    let carol = file.user("carol").expect("carol");
    assert!(carol.locked);
    assert_eq!(carol.groups, ["soc", "cti"]);
    assert!(file.user("dave").expect("dave").disabled);
    assert!(file.user("erin-bot").expect("erin").password_hash.is_none());
    for plain in ["carol-pw", "dave-pw", "erin-key"] {
        assert!(!text.contains(plain), "{plain} in the credentials file");
    }
}

#[test]
fn a_user_name_claimed_twice_is_refused_never_replaced() {
    let inputs = with_selector(
        user_selector(),
        vec![
            // Claims alice, whom spec.users has: spec.users wins, this one is ignored.
            selected(
                "alice-takeover",
                BASIC_AUTH,
                &[("username", "alice"), ("password", "mallory-pw")],
                &[],
            ),
            // Two Secrets claim frank: neither is served.
            selected(
                "frank-1",
                BASIC_AUTH,
                &[("username", "frank"), ("password", "f1")],
                &[],
            ),
            selected(
                "frank-2",
                BASIC_AUTH,
                &[("username", "frank"), ("password", "f2")],
                &[],
            ),
            selected(
                "grace",
                BASIC_AUTH,
                &[("username", "grace"), ("password", "g")],
                &[],
            ),
        ],
    );
    let v = validated(&inputs);
    let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "grace"]);
    assert_eq!(v.users[0].password.as_deref(), Some("alice-pw"));
    assert_eq!(kinds(&v), [ProblemKind::ConflictingUserSecrets; 2]);
    let messages: Vec<_> = v.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "spec.userSelector: Secret alice-takeover claims the user name alice, which spec.users has (Secret alice); the Secret is ignored",
            "spec.userSelector: Secrets frank-1, frank-2 all claim the user name frank; frank cannot sign in until all but one are changed or removed",
        ]
    );
    assert_eq!(
        v.user_selector,
        Some(SelectorReport {
            users: 1,
            refused: 3,
            ignored: vec![],
        })
    );
    let status = crate::reconcile::service::status::service_status(
        &inputs.service,
        &v,
        None,
        None,
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(10).expect("time"),
        ),
    );
    let degraded = crate::conditions::find(&status.conditions, "Degraded").expect("Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "ConflictingUserSecrets")
    );
    let selector = status.user_selector.clone().expect("status.userSelector");
    assert_eq!(
        (selector.users, selector.refused, selector.ignored_secrets),
        (1, 3, 0)
    );
    assert_eq!(status.users, 2, "alice and grace; bob is locked");
    let shown = serde_json::to_string(&status).expect("json");
    for plain in ["mallory-pw", "f1\"", "f2\"", "alice-pw"] {
        assert!(!shown.contains(plain), "{plain} in the status");
    }
}

#[test]
fn a_listed_users_name_stays_reserved_while_its_secret_is_unusable() {
    // bob's Secret (spec.users) loses its password: bob is left out, and a selected
    // Secret claiming "bob" still does not become bob.
    let mut inputs = with_selector(
        user_selector(),
        vec![selected(
            "bob-2",
            BASIC_AUTH,
            &[("username", "bob"), ("password", "other")],
            &[],
        )],
    );
    inputs.secrets.insert(
        "bob".into(),
        secret("bob", BASIC_AUTH, &[("username", "bob")]),
    );
    let v = validated(&inputs);
    let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice"]);
    assert_eq!(
        kinds(&v),
        [
            ProblemKind::ConflictingUserSecrets,
            ProblemKind::InvalidUserSecret
        ]
    );
}

#[test]
fn an_invalid_or_empty_selector_selects_nobody_and_says_why() {
    let secrets = || {
        vec![selected(
            "carol",
            BASIC_AUTH,
            &[("username", "carol"), ("password", "c")],
            &[],
        )]
    };
    for (selector, expected) in [
        (
            json!({"matchExpressions": [{"key": "taxiway.dev/user", "operator": "Equals", "values": ["true"]}]}),
            "spec.userSelector matchExpressions[0]: operator \"Equals\" is not one of In, NotIn, Exists, DoesNotExist; no Secret is selected, no user added",
        ),
        (
            json!({}),
            "spec.userSelector is empty; it would select every kubernetes.io/basic-auth Secret of the namespace",
        ),
    ] {
        let v = validated(&with_selector(selector, secrets()));
        let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"], "spec.users are not affected");
        assert_eq!(kinds(&v), [ProblemKind::InvalidUserSelector]);
        assert!(v.problems[0].message.starts_with(expected), "{}", v.problems[0].message);
        assert_eq!(v.user_selector, Some(SelectorReport::default()));
    }
}

#[test]
fn unusable_selected_secrets_are_reported_one_by_one() {
    let inputs = with_selector(
        json!({"matchExpressions": [{"key": "taxiway.dev/user", "operator": "In", "values": ["true", "yes"]}]}),
        vec![
            selected("no-password", BASIC_AUTH, &[("username", "np")], &[]),
            selected(
                "bad-flag",
                BASIC_AUTH,
                &[("username", "bf"), ("password", "p")],
                &[(LOCKED_ANNOTATION, "yes")],
            ),
            selected(
                "bad-group",
                BASIC_AUTH,
                &[("username", "bg"), ("password", "p")],
                &[(GROUPS_ANNOTATION, "soc,two words")],
            ),
            selected(
                "ok",
                BASIC_AUTH,
                &[("username", "ok"), ("password", "p")],
                &[],
            ),
        ],
    );
    let v = validated(&inputs);
    let names: Vec<_> = v.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "ok"]);
    let messages: Vec<_> = v.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(
        messages[0],
        "spec.userSelector: Secret bad-flag has annotation taxiway.dev/locked: \"yes\", expected \"true\" or \"false\"; the user cannot sign in"
    );
    assert!(
        messages[1]
            .starts_with("spec.userSelector: Secret bad-group is refused by the server: groups[1]"),
        "{}",
        messages[1]
    );
    assert_eq!(
        messages[2],
        "spec.userSelector: Secret no-password has no key password; the user cannot sign in"
    );
    assert!(v
        .problems
        .iter()
        .all(|p| p.kind == ProblemKind::InvalidUserSecret));
    assert_eq!(v.user_selector.as_ref().map(|r| r.refused), Some(3));
}
