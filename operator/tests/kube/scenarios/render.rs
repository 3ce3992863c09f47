//! A complete TaxiiService rendered, then changed collection by collection.

use anyhow::{bail, ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use serde_json::{json, Value};
use taxiway_operator::credentials::{Argon2Hasher, SecretHasher};

use super::tls_secret;
use crate::support::{
    apply, basic_auth, changed, condition, delete, eventually, expect_condition, namespace,
    taxii_collection, taxii_service, Ns, WAIT,
};
use crate::Env;

const NS: &str = "render";
const INBOX_ID: &str = "e78eb331-c15a-463f-ba62-73b2a71a324a";

fn spec(with_ingress: bool) -> Value {
    let mut spec = json!({
        "title": "ACME threat feeds",
        "contact": "soc@example.com",
        "versions": ["2.1"],
        "apiRoots": [{"path": "feeds", "title": "Threat feeds"}],
        "users": [
            {"secretName": "alice", "apiKeyKey": "api-key", "groups": ["soc"]},
            {"secretName": "bob", "locked": true}
        ],
        "tls": {"secretName": "feeds-tls", "clientCa": {"configMapName": "partners-ca"}},
        "storage": {"size": "2Gi"},
        "service": {"type": "ClusterIP"},
    });
    if with_ingress {
        spec["ingress"] = json!({
            "className": "nginx", "host": "taxii.example.com", "tlsSecretName": "taxii-example-com"
        });
    }
    spec
}

fn ns(env: &Env) -> Ns {
    Ns {
        client: env.client.clone(),
        name: NS.into(),
    }
}

/// Everything a service renders, and every status, after applying it as a user would.
pub fn everything(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        apply(
            client,
            basic_auth(
                NS,
                "alice",
                "alice",
                "alice-pw",
                &[("api-key", "alice-key")],
            ),
        )
        .await?;
        apply(client, basic_auth(NS, "bob", "bob", "bob-pw", &[])).await?;
        apply(client, tls_secret(env, NS, "feeds-tls")?).await?;
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "partners-ca", "namespace": NS},
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n...\n"}
            }),
        )
        .await?;
        apply(client, taxii_service(NS, "feeds", spec(true))).await?;
        apply(client, taxii_collection(NS, "inbox", json!({
            "service": "feeds", "id": INBOX_ID, "writable": true, "access": {"write": ["group:soc"]}
        })))
        .await?;
        apply(
            client,
            taxii_collection(
                NS,
                "high-confidence",
                json!({
                    "service": "feeds", "title": "High-confidence IPv4",
                    "query": "type:indicator and ioc_type:ipv4-addr and confidence:>=70"
                }),
            ),
        )
        .await?;
        let ns = ns(env);

        // Statuses.
        let service = ns
            .service_status_where("feeds", "the TaxiiService status", |s| {
                let status = s.status.clone().unwrap_or_default();
                ensure!(
                    status.collections == 2,
                    "{} collections",
                    status.collections
                );
                Ok(())
            })
            .await?;
        let status = service.status.clone().unwrap_or_default();
        expect_condition(&status.conditions, "Degraded", "False", "AsExpected")?;
        // No kubelet: the pod stays Pending, so the rollout never completes.
        expect_condition(&status.conditions, "Ready", "False", "Unavailable")?;
        expect_condition(&status.conditions, "Progressing", "True", "RollingOut")?;
        ensure!(status.users == 1, "bob is locked; {} users", status.users);
        let endpoints = status.endpoints.clone().context("endpoints")?;
        ensure!(
            endpoints.discovery == "https://taxii.example.com/taxii2/",
            "{endpoints:?}"
        );
        ensure!(
            endpoints.in_cluster == "https://feeds.render.svc.cluster.local",
            "{endpoints:?}"
        );

        let inbox = ns
            .collection_status_where("inbox", "inbox status", |_| Ok(()))
            .await?;
        let inbox_status = inbox.status.clone().unwrap_or_default();
        expect_condition(&inbox_status.conditions, "Accepted", "True", "Accepted")?;
        expect_condition(&inbox_status.conditions, "QueryValid", "True", "Writable")?;
        ensure!(
            inbox_status.id.as_deref() == Some(INBOX_ID),
            "pinned id: {:?}",
            inbox_status.id
        );
        let high = ns
            .collection_status_where("high-confidence", "collection status", |_| Ok(()))
            .await?;
        let high_status = high.status.clone().unwrap_or_default();
        expect_condition(&high_status.conditions, "QueryValid", "True", "Valid")?;
        let high_id = high_status.id.clone().context("id")?;
        ensure!(
            Some(&high_id) == high.metadata.uid.as_ref(),
            "the id is metadata.uid"
        );
        ensure!(
            high_status.url.as_deref()
                == Some(&*format!(
                    "https://taxii.example.com/feeds/collections/{high_id}/"
                )),
            "url {:?}",
            high_status.url
        );

        // The config, as the server reads it.
        let text = ns.config_text("feeds").await?;
        let config = taxiway_model::config::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut ids: Vec<&str> = config.collections.iter().map(|c| c.id()).collect();
        ids.sort();
        let mut want = vec![INBOX_ID, high_id.as_str()];
        want.sort();
        ensure!(ids == want, "collections {ids:?}");
        for secret in ["alice-pw", "alice-key", "bob-pw", "PRIVATE KEY"] {
            ensure!(!text.contains(secret), "{secret} in the ConfigMap");
        }

        // Credentials: hashes that verify, never a plaintext.
        let users = ns.credentials("feeds").await?;
        let raw = format!("{users:?}");
        ensure!(!raw.contains("alice-pw") && !raw.contains("bob-pw") && !raw.contains("alice-key"));
        let alice = users.user("alice").context("alice")?;
        let verifier = Argon2Hasher::default();
        ensure!(verifier.verify("alice-pw", alice.password_hash.as_deref().context("hash")?));
        ensure!(verifier.verify(
            "alice-key",
            alice.api_key_hash.as_deref().context("key hash")?
        ));
        ensure!(alice.groups == ["soc"]);
        ensure!(users.user("bob").context("bob")?.locked);

        // The Deployment.
        let uid = service.metadata.uid.clone().context("uid")?;
        let d = ns.api::<Deployment>().get("feeds").await?;
        owned(&d, &uid)?;
        let spec = d.spec.clone().context("spec")?;
        ensure!(spec.replicas == Some(1));
        ensure!(spec.strategy.and_then(|s| s.type_).as_deref() == Some("Recreate"));
        let pod = spec.template.spec.context("pod spec")?;
        let c = &pod.containers[0];
        ensure!(
            c.image.as_deref() == Some("taxiway-server:test"),
            "image {:?}",
            c.image
        );
        let mounts = c.volume_mounts.clone().unwrap_or_default();
        ensure!(
            mounts.iter().all(|m| m.sub_path.is_none()),
            "a subPath mount breaks hot reload"
        );
        let volumes = pod.volumes.clone().unwrap_or_default();
        let volume = |name: &str| {
            volumes
                .iter()
                .find(|v| v.name == name)
                .cloned()
                .context(format!("volume {name}"))
        };
        ensure!(volume("config")?.config_map.map(|c| c.name).as_deref() == Some("feeds-config"));
        ensure!(
            volume("credentials")?
                .secret
                .and_then(|s| s.secret_name)
                .as_deref()
                == Some("feeds-credentials")
        );
        ensure!(
            volume("data")?
                .persistent_volume_claim
                .map(|p| p.claim_name)
                .as_deref()
                == Some("feeds-data")
        );
        let tls = volume("tls")?.projected.context("projected TLS")?;
        let sources = tls.sources.unwrap_or_default();
        ensure!(sources
            .iter()
            .any(|s| s.secret.as_ref().is_some_and(|s| s.name == "feeds-tls")));
        ensure!(sources.iter().any(|s| s
            .config_map
            .as_ref()
            .is_some_and(|c| c.name == "partners-ca")));
        for (probe, path) in [
            (&c.readiness_probe, "/readyz"),
            (&c.liveness_probe, "/healthz"),
        ] {
            let get = probe
                .clone()
                .and_then(|p| p.http_get)
                .context("http probe")?;
            ensure!(get.path.as_deref() == Some(path));
            ensure!(
                get.port
                    == k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                        "admin".into()
                    )
            );
        }
        let sc = c.security_context.clone().context("security context")?;
        ensure!(
            sc.read_only_root_filesystem == Some(true)
                && sc.allow_privilege_escalation == Some(false)
        );
        ensure!(sc.capabilities.and_then(|c| c.drop) == Some(vec!["ALL".into()]));
        let psc = pod
            .security_context
            .clone()
            .context("pod security context")?;
        ensure!(psc.run_as_non_root == Some(true));
        ensure!(psc.seccomp_profile.map(|s| s.type_).as_deref() == Some("RuntimeDefault"));
        ensure!(c
            .resources
            .clone()
            .and_then(|r| r.limits)
            .is_some_and(|l| l.contains_key("memory")));

        // Service, PVC, Ingress, credentials Secret: owned and as specified.
        let svc = ns.api::<Service>().get("feeds").await?;
        owned(&svc, &uid)?;
        let port = &svc.spec.clone().and_then(|s| s.ports).context("ports")?[0];
        ensure!(port.port == 443, "port {}", port.port);
        let pvc = ns.api::<PersistentVolumeClaim>().get("feeds-data").await?;
        owned(&pvc, &uid)?;
        let size = pvc
            .spec
            .clone()
            .and_then(|s| s.resources)
            .and_then(|r| r.requests)
            .map(|r| r["storage"].0.clone());
        ensure!(size.as_deref() == Some("2Gi"), "size {size:?}");
        let ingress = ns.api::<Ingress>().get("feeds").await?;
        owned(&ingress, &uid)?;
        let ingress_spec = ingress.spec.clone().context("ingress spec")?;
        ensure!(ingress_spec.ingress_class_name.as_deref() == Some("nginx"));
        ensure!(
            ingress_spec.rules.unwrap_or_default()[0].host.as_deref() == Some("taxii.example.com")
        );
        owned(&ns.api::<Secret>().get("feeds-credentials").await?, &uid)?;

        // Events.
        eventually("Events about the service", WAIT, || async {
            let events = ns.api::<Event>().list(&Default::default()).await?;
            let reasons: Vec<String> = events
                .items
                .iter()
                .filter_map(|e| e.reason.clone())
                .collect();
            for wanted in ["ConfigCreated", "DeploymentCreated", "Accepted"] {
                ensure!(
                    reasons.iter().any(|r| r == wanted),
                    "no {wanted} Event in {reasons:?}"
                );
            }
            Ok(())
        })
        .await?;
        Ok(())
    })
}

fn owned<K: kube::Resource>(object: &K, uid: &str) -> Result<()> {
    let ok = object
        .owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true) && o.kind == "TaxiiService");
    ensure!(
        ok,
        "{} is not controlled by the TaxiiService",
        object.name_any()
    );
    Ok(())
}

/// Changing a collection changes the ConfigMap and nothing else the service renders (the
/// pods reload it; nothing restarts).
pub fn collection_change(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let ns = ns(env);
        let before = ns.settled_versions("feeds").await?;
        let deployment_generation = ns
            .api::<Deployment>()
            .get("feeds")
            .await?
            .metadata
            .generation;
        apply(
            &env.client,
            taxii_collection(
                NS,
                "high-confidence",
                json!({
                    "service": "feeds", "title": "High-confidence IPv4",
                    "query": "type:indicator and ioc_type:ipv4-addr and confidence:>=90"
                }),
            ),
        )
        .await?;
        eventually("the new query in the ConfigMap", WAIT, || async {
            ensure!(ns.config_text("feeds").await?.contains("confidence:>=90"));
            Ok(())
        })
        .await?;
        ns.collection_status_where("high-confidence", "the collection's status", |_| Ok(()))
            .await?;
        let after = ns.settled_versions("feeds").await?;
        let diff = changed(&before, &after);
        ensure!(
            diff == ["ConfigMap/feeds-config", "TaxiiCollection/high-confidence"],
            "changed: {diff:?}"
        );
        let generation = ns
            .api::<Deployment>()
            .get("feeds")
            .await?
            .metadata
            .generation;
        ensure!(generation == deployment_generation, "the Deployment rolled");
        Ok(())
    })
}

/// A query the server's parser rejects is reported with the parser's message and kept
/// out of the config; the other collections keep being served. Once a collection has
/// been served, an invalid edit keeps its last valid query serving.
pub fn broken_query(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let ns = ns(env);
        let bad = "type:indicator and (confidence:>=";
        let Err(parse_error) = taxiway_model::query::Query::parse(bad) else {
            bail!("the server's query parser accepts {bad:?}, so this scenario cannot test a rejection");
        };
        let expected = parse_error.to_string();
        apply(
            &env.client,
            taxii_collection(NS, "broken", json!({"service": "feeds", "query": bad})),
        )
        .await?;
        let broken = ns
            .collection_status_where("broken", "QueryValid=False", |c| {
                let status = c.status.clone().unwrap_or_default();
                expect_condition(&status.conditions, "QueryValid", "False", "InvalidQuery")
            })
            .await?;
        let status = broken.status.unwrap_or_default();
        let message = &condition(&status.conditions, "QueryValid")?.message;
        ensure!(
            message == &expected,
            "message {message:?}, parser says {expected:?}"
        );
        expect_condition(&status.conditions, "Accepted", "False", "InvalidQuery")?;
        ensure!(!ns.config_text("feeds").await?.contains("(confidence:>="));
        let service = ns
            .service_status_where("feeds", "Degraded=True", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Degraded", "True", "RejectedCollections")
            })
            .await?;
        let st = service.status.unwrap_or_default();
        ensure!(st.collections == 2, "{} collections served", st.collections);
        ensure!(
            st.problems.iter().any(|p| p.contains("broken")),
            "{:?}",
            st.problems
        );

        // Fixed, it is served.
        apply(
            &env.client,
            taxii_collection(
                NS,
                "broken",
                json!({"service": "feeds", "query": "type:malware"}),
            ),
        )
        .await?;
        ns.collection_status_where("broken", "Accepted=True", |c| {
            let status = c.status.clone().unwrap_or_default();
            expect_condition(&status.conditions, "Accepted", "True", "Accepted")
        })
        .await?;
        ns.service_status_where("feeds", "Degraded=False, 3 collections", |s| {
            let st = s.status.clone().unwrap_or_default();
            ensure!(st.collections == 3, "{} collections", st.collections);
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;

        // Broken again once it has been served: it keeps its last valid query.
        apply(
            &env.client,
            taxii_collection(NS, "broken", json!({"service": "feeds", "query": bad})),
        )
        .await?;
        let kept = ns
            .collection_status_where("broken", "ServingPreviousQuery", |c| {
                let status = c.status.clone().unwrap_or_default();
                expect_condition(&status.conditions, "QueryValid", "False", "InvalidQuery")?;
                expect_condition(
                    &status.conditions,
                    "Accepted",
                    "True",
                    "ServingPreviousQuery",
                )
            })
            .await?;
        ensure!(
            kept.status.and_then(|s| s.url).is_some(),
            "a collection still served keeps its URL on status"
        );
        let config = ns.config_text("feeds").await?;
        ensure!(
            config.contains("type:malware") && !config.contains("(confidence:>="),
            "the rendered config keeps the last valid query: {config}"
        );
        ns.service_status_where("feeds", "still 3 collections", |s| {
            let st = s.status.clone().unwrap_or_default();
            ensure!(st.collections == 3, "{} collections", st.collections);
            Ok(())
        })
        .await?;
        apply(
            &env.client,
            taxii_collection(
                NS,
                "broken",
                json!({"service": "feeds", "query": "type:malware"}),
            ),
        )
        .await?;
        ns.collection_status_where("broken", "Accepted=True/Accepted", |c| {
            let status = c.status.clone().unwrap_or_default();
            expect_condition(&status.conditions, "Accepted", "True", "Accepted")
        })
        .await?;
        Ok(())
    })
}

/// A deleted TaxiiCollection leaves the rendered config.
pub fn deleted_collection(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let ns = ns(env);
        let id = ns
            .collection("high-confidence")
            .await?
            .metadata
            .uid
            .context("uid")?;
        ensure!(ns.config_text("feeds").await?.contains(&id));
        delete(
            &env.client,
            "taxiway.dev/v1alpha1",
            "TaxiiCollection",
            NS,
            "high-confidence",
        )
        .await?;
        eventually("the collection to leave the ConfigMap", WAIT, || async {
            ensure!(!ns.config_text("feeds").await?.contains(&id));
            Ok(())
        })
        .await?;
        ns.service_status_where("feeds", "2 collections", |s| {
            let n = s.status.clone().unwrap_or_default().collections;
            ensure!(n == 2, "{n} collections");
            Ok(())
        })
        .await?;
        Ok(())
    })
}

/// Removing `spec.ingress` deletes the Ingress the operator made.
pub fn ingress_removed(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let ns = ns(env);
        apply(&env.client, taxii_service(NS, "feeds", spec(false))).await?;
        eventually("the Ingress to go", WAIT, || async {
            ensure!(
                ns.api::<Ingress>().get_opt("feeds").await?.is_none(),
                "still there"
            );
            Ok(())
        })
        .await?;
        let service = ns
            .service_status_where("feeds", "status without external URL", |_| Ok(()))
            .await?;
        let endpoints = service
            .status
            .and_then(|s| s.endpoints)
            .context("endpoints")?;
        ensure!(endpoints.external.is_none(), "{endpoints:?}");
        ensure!(
            endpoints.discovery == "https://feeds.render.svc.cluster.local/taxii2/",
            "{endpoints:?}"
        );
        Ok(())
    })
}
