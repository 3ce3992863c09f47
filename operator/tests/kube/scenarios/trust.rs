//! What the operator trusts, and what it lets a TaxiiService do: a credentials Secret
//! it does not own is never read (nor overwritten); hashes with parameters it would
//! not write are re-hashed, never run; an image outside `--allowed-image-prefixes` is
//! rejected; `spec.networkPolicy` renders a NetworkPolicy that is repaired when edited
//! and deleted when switched off; an Ingress without `trustedProxies` warns.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use taxiway_operator::credentials::{Argon2Hasher, CredentialsFile, SecretHasher};

use crate::support::{
    apply, basic_auth, condition, delete, eventually, expect_condition, namespace, taxii_service,
    Ns, WAIT,
};
use crate::Env;

/// Images the test operator allows (`--allowed-image-prefixes`, see operator.rs).
pub const ALLOWED_IMAGE: &str = "registry.example/taxiway/taxiway-server:2";

fn ns(env: &Env, name: &str) -> Ns {
    Ns {
        client: env.client.clone(),
        name: name.into(),
    }
}

fn spec() -> Value {
    json!({
        "title": "Trust", "apiRoots": [{"path": "api", "title": "API"}],
        "users": [{"secretName": "alice"}]
    })
}

/// A `users.toml` whose one hash (of alice's real password) carries `params`: valid
/// PHC, accepted by the server's parser, and days of Argon2 if anyone ran it.
fn planted_users(params: &str) -> Result<String> {
    let real = Argon2Hasher::default()
        .hash("alice-pw")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let absurd = real.replacen("m=19456,t=2,p=1", params, 1);
    ensure!(absurd != real, "unexpected hash format {real}");
    Ok(format!(
        "[[users]]\nname = \"alice\"\npassword_hash = \"{absurd}\"\n"
    ))
}

/// alice's hash as the operator writes it: its own parameters, verifying her password.
fn own_hash(users: &CredentialsFile) -> Result<()> {
    let hash = users
        .user("alice")
        .and_then(|u| u.password_hash.clone())
        .context("no hash for alice")?;
    ensure!(hash.contains("$m=19456,t=2,p=1$"), "parameters of {hash}");
    ensure!(
        Argon2Hasher::default().verify("alice-pw", &hash),
        "alice's hash does not verify her password"
    );
    Ok(())
}

/// A Secret named like the credentials Secret but planted by a namespace user (not
/// owned), with `t=4294967295`: not read (the reconcile does not stall on it), not
/// overwritten (`ApplyFailed`); once it is gone the operator writes its own. Then the
/// operator's own Secret edited to `t=4294967295`: re-hashed at once, never run.
pub fn planted_credentials(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "trust";
        let client = &env.client;
        namespace(client, NS).await?;
        apply(client, basic_auth(NS, "alice", "alice", "alice-pw", &[])).await?;
        let planted_text = planted_users("m=19456,t=4294967295,p=1")?;
        let planted = apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "feeds-credentials", "namespace": NS},
                "type": "Opaque", "stringData": {"users.toml": planted_text}
            }),
        )
        .await?;
        let started = Instant::now();
        apply(client, taxii_service(NS, "feeds", spec())).await?;
        let ns = ns(env, NS);
        let service = ns
            .service_status_where("feeds", "the reconcile to finish (ApplyFailed)", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Degraded", "True", "ApplyFailed")
            })
            .await?;
        let took = started.elapsed();
        ensure!(
            took < Duration::from_secs(20),
            "the reconcile took {took:?}"
        );
        let degraded = condition(
            &service.status.clone().unwrap_or_default().conditions,
            "Degraded",
        )?
        .message
        .clone();
        ensure!(
            degraded.contains("Secret feeds-credentials") && degraded.contains("not owned"),
            "{degraded}"
        );
        let now = ns.api::<Secret>().get("feeds-credentials").await?;
        ensure!(
            now.resource_version() == planted.resource_version(),
            "the planted Secret was written to"
        );

        // Gone: the operator writes its own.
        delete(client, "v1", "Secret", NS, "feeds-credentials").await?;
        eventually("the operator's own credentials", WAIT, || async {
            let secret = ns.api::<Secret>().get("feeds-credentials").await?;
            let uid = service.uid().context("uid")?;
            ensure!(
                secret
                    .owner_references()
                    .iter()
                    .any(|o| o.uid == uid && o.controller == Some(true)),
                "not owned yet"
            );
            own_hash(&ns.credentials("feeds").await?)
        })
        .await?;
        ns.service_status_where("feeds", "Degraded=False", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;

        // Its own Secret edited (the owner references kept): the absurd hash is
        // replaced within seconds, never verified.
        for params in ["m=19456,t=4294967295,p=1", "m=4294967295,t=2,p=1"] {
            let text = planted_users(params)?;
            ns.api::<Secret>()
                .patch(
                    "feeds-credentials",
                    &PatchParams::default(),
                    &Patch::Merge(json!({
                        "data": {"users.toml": ByteString(text.into_bytes())}
                    })),
                )
                .await?;
            eventually(&format!("{params} to be re-hashed"), WAIT, || async {
                own_hash(&ns.credentials("feeds").await?)
            })
            .await?;
        }
        Ok(())
    })
}

/// `spec.image` outside `--allowed-image-prefixes`: rejected with `ImageNotAllowed`,
/// nothing rendered; an allowed one renders.
pub fn image_allow_list(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "images";
        let client = &env.client;
        namespace(client, NS).await?;
        apply(client, basic_auth(NS, "alice", "alice", "alice-pw", &[])).await?;
        let mut spec = spec();
        spec["image"] = json!("docker.io/miner/xmrig:latest");
        apply(client, taxii_service(NS, "feeds", spec.clone())).await?;
        let ns = ns(env, NS);
        let service = ns
            .service_status_where("feeds", "ImageNotAllowed", |s| {
                let st = s.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Degraded", "True", "ImageNotAllowed")
            })
            .await?;
        let status = service.status.unwrap_or_default();
        expect_condition(&status.conditions, "Ready", "False", "Unavailable")?;
        ensure!(
            status.problems.len() == 1 && status.problems[0].contains("docker.io/miner/xmrig"),
            "{:?}",
            status.problems
        );
        ensure!(
            ns.api::<Deployment>().get_opt("feeds").await?.is_none(),
            "a Deployment was rendered"
        );
        ensure!(ns
            .api::<ConfigMap>()
            .get_opt("feeds-config")
            .await?
            .is_none());
        ensure!(ns
            .api::<Secret>()
            .get_opt("feeds-credentials")
            .await?
            .is_none());

        spec["image"] = json!(ALLOWED_IMAGE);
        apply(client, taxii_service(NS, "feeds", spec)).await?;
        let deployment = eventually("the Deployment", WAIT, || async {
            ns.api::<Deployment>()
                .get_opt("feeds")
                .await?
                .context("no Deployment yet")
        })
        .await?;
        let image = deployment
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.containers.first().and_then(|c| c.image.clone()));
        ensure!(image.as_deref() == Some(ALLOWED_IMAGE), "{image:?}");
        ns.service_status_where("feeds", "Degraded=False", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;
        Ok(())
    })
}

fn rule_ports(policy: &NetworkPolicy) -> Vec<Option<IntOrString>> {
    policy
        .spec
        .iter()
        .flat_map(|s| s.ingress.iter().flatten())
        .flat_map(|r| r.ports.iter().flatten())
        .map(|p| p.port.clone())
        .collect()
}

/// `spec.networkPolicy` on: an owned NetworkPolicy for the server pods' two ports; an
/// edit to it is undone; an invalid peer leaves it as it is; off: it is deleted. With an
/// Ingress and no `trustedProxies`: a warning on status and a Warning Event.
pub fn network_policy(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        const NS: &str = "netpol";
        let client = &env.client;
        namespace(client, NS).await?;
        apply(client, basic_auth(NS, "alice", "alice", "alice-pw", &[])).await?;
        let mut spec = spec();
        spec["ingress"] = json!({"host": "taxii.example.com"});
        spec["networkPolicy"] = json!({
            "enabled": true,
            "from": [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}]
        });
        apply(client, taxii_service(NS, "feeds", spec.clone())).await?;
        let ns = ns(env, NS);
        let api = ns.api::<NetworkPolicy>();
        let policy = eventually("the NetworkPolicy", WAIT, || async {
            api.get_opt("feeds").await?.context("no NetworkPolicy yet")
        })
        .await?;
        let service = ns.service("feeds").await?;
        let uid = service.uid().context("uid")?;
        ensure!(
            policy
                .owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true)),
            "not owned by the TaxiiService"
        );
        ensure!(
            rule_ports(&policy) == [Some(IntOrString::Int(9443)), Some(IntOrString::Int(9090))],
            "{:?}",
            rule_ports(&policy)
        );

        // The warning: on status, and as a Warning Event; not Degraded.
        let service = ns
            .service_status_where("feeds", "the Ingress warning", |s| {
                let st = s.status.clone().unwrap_or_default();
                ensure!(
                    st.warnings
                        .iter()
                        .any(|w| w.contains("spec.trustedProxies")),
                    "warnings {:?}",
                    st.warnings
                );
                Ok(())
            })
            .await?;
        expect_condition(
            &service.status.unwrap_or_default().conditions,
            "Degraded",
            "False",
            "AsExpected",
        )?;
        eventually("the Warning Event", WAIT, || async {
            let events = ns.api::<Event>().list(&Default::default()).await?;
            ensure!(
                events.items.iter().any(|e| e.reason.as_deref()
                    == Some("IngressWithoutTrustedProxies")
                    && e.type_.as_deref() == Some("Warning")),
                "no IngressWithoutTrustedProxies Event"
            );
            Ok(())
        })
        .await?;

        // An edit opening it to everyone is undone.
        api.patch(
            "feeds",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ingress": [{}]}})),
        )
        .await?;
        eventually("the NetworkPolicy to be repaired", WAIT, || async {
            let live = api.get("feeds").await?;
            ensure!(rule_ports(&live).len() == 2, "{:?}", live.spec);
            Ok(())
        })
        .await?;

        // An invalid peer: reported, and the live policy stays as it is.
        let before = api.get("feeds").await?.resource_version();
        spec["networkPolicy"]["from"] = json!([{"ipBlock": {"cidr": "10.0.0.0/33"}}]);
        apply(client, taxii_service(NS, "feeds", spec.clone())).await?;
        ns.service_status_where("feeds", "InvalidNetworkPolicy", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "True", "InvalidNetworkPolicy")
        })
        .await?;
        ensure!(
            api.get("feeds").await?.resource_version() == before,
            "the NetworkPolicy was changed"
        );

        // Switched off (trustedProxies set too): deleted, and the warning goes.
        spec.as_object_mut().map(|s| s.remove("networkPolicy"));
        spec["trustedProxies"] = json!(["10.244.0.0/16"]);
        apply(client, taxii_service(NS, "feeds", spec)).await?;
        eventually("the NetworkPolicy to go", WAIT, || async {
            ensure!(api.get_opt("feeds").await?.is_none(), "still there");
            Ok(())
        })
        .await?;
        ns.service_status_where("feeds", "no warnings, not Degraded", |s| {
            let st = s.status.clone().unwrap_or_default();
            ensure!(st.warnings.is_empty(), "{:?}", st.warnings);
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;
        Ok(())
    })
}
